//! Differential test: every fixture (fixtures/images, fixtures/demo/photos) and every generated
//! case (the orientation variants, palette BMPs with a gap, FillOrder 2, 16-bit, alpha, grey,
//! CMYK...) decoded by facesync and by an independent reference, Pillow, driven through
//! tests/reference/pillow_decode.py. A silent garbage decode cannot pass: facesync's picture
//! must match the reference's within a PSNR floor, or be one of the refusals listed here.
//!
//! Two comparisons per file: the decoded, oriented picture at full size (RGB from
//! `decode::decode`, jpeg-decoder for JPEGs), and the normalized output of `prepare` (lossless
//! PNG in a small box, so JPEGs go through the fast path at a reduced DCT scale), against the
//! reference decoded at the same DCT scale and crop (Pillow's `draft`) and resized to the same
//! size by the same resizer: the same picture, not the same picture filtered differently.
//!
//! Needs python3 with Pillow (`python3 -m pip install pillow`; `.ci/test` installs it).
//! Without it the tests fail, unless the developer opted out with `FACESYNC_SKIP_TOOLS=pillow`
//! (never in CI), which compiles them as ignored.

use std::path::Path;
use std::process::Command;

use image::{DynamicImage, RgbImage};

use super::variants::*;
use super::*;

/// Full-size decodes: lossless formats agree to the last bit or two (16-bit rounding, alpha
/// blending); JPEGs differ by IDCT and chroma upsampling, 52 to 72 dB measured. A wrong
/// orientation, swapped channels or a bit-reversed image is below 20 dB.
const DECODED_PSNR: f64 = 40.0;
/// Normalized outputs: the fast path against libjpeg at the same DCT scale, both resized to
/// the output; 34 to 56 dB measured. The garbage of the second test measures 7 to 18 dB.
const NORMALIZED_PSNR: f64 = 30.0;

/// What facesync refuses, by design, and why.
const REFUSED: &[(&str, ReasonCode)] = &[
    ("images/empty.jpg", ReasonCode::CorruptImage),
    ("images/truncated.jpg", ReasonCode::CorruptImage),
    ("images/corrupt.jpg", ReasonCode::CorruptImage),
    ("images/text.jpg", ReasonCode::UnsupportedFormat),
    ("images/iphone.heic", ReasonCode::UnsupportedFormat),
    ("images/bomb.png", ReasonCode::ImageTooLarge),
    ("images/bomb.jpg", ReasonCode::ImageTooLarge),
    ("images/small.jpg", ReasonCode::TooSmall),
];

struct Case {
    name: String,
    bytes: Vec<u8>,
    /// The same picture in a form the reference reads, when it cannot read `bytes` itself.
    reference: Option<Vec<u8>>,
}

fn case(name: impl Into<String>, bytes: Vec<u8>) -> Case {
    Case {
        name: name.into(),
        bytes,
        reference: None,
    }
}

fn fixtures() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut out = Vec::new();
    for dir in ["images", "demo/photos"] {
        let mut names: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for path in names {
            let name = format!("{dir}/{}", path.file_name().unwrap().to_string_lossy());
            out.push(case(name, std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn png_of(image: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn tiff_of<C: tiff::encoder::colortype::ColorType>(w: u32, h: u32, data: &[C::Inner]) -> Vec<u8>
where
    [C::Inner]: tiff::encoder::TiffValue,
{
    let mut out = std::io::Cursor::new(Vec::new());
    tiff::encoder::TiffEncoder::new(&mut out)
        .unwrap()
        .write_image::<C>(w, h, data)
        .unwrap();
    out.into_inner()
}

fn generated() -> Vec<Case> {
    let photo = upright();
    let (w, h) = photo.dimensions();
    let mut out = Vec::new();
    for n in 1..=8 {
        let stored = stored(&photo, n);
        let exif = [&b"Exif\0\0"[..], &exif_block(n, false)].concat();
        out.push(case(
            format!("webp, Exif header, orientation {n}"),
            webp_with_exif(&stored, &exif),
        ));
        let chunk = [TextChunk::Text, TextChunk::Ztxt, TextChunk::Itxt][usize::from(n) % 3];
        out.push(case(
            format!("png, raw profile in {chunk:?}, orientation {n}"),
            png_with_raw_profile(&stored, &exif, chunk),
        ));
    }
    for &(bits, colours) in BMP_CASES {
        for top_down in [false, true] {
            let (bytes, _) = palette_bmp(&photo, bits, colours, 37, top_down);
            out.push(case(
                format!("bmp, {bits}-bit, {colours} colours, gap, top-down {top_down}"),
                bytes,
            ));
        }
    }
    {
        use tiff::encoder::{Compression, DeflateLevel};
        for (compression, name) in [
            (Compression::Uncompressed, "uncompressed"),
            (Compression::Lzw, "LZW"),
            (Compression::Packbits, "PackBits"),
            (Compression::Deflate(DeflateLevel::Fast), "Deflate"),
        ] {
            out.push(Case {
                name: format!("tiff, FillOrder 2, {name}"),
                bytes: tiff_fill_order_2(&photo, compression, 16),
                // Pillow reads FillOrder 2 only for some layouts; the picture is the photo.
                reference: Some(png_of(&DynamicImage::ImageRgb8(photo.clone()))),
            });
        }
    }
    let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(w, h, |x, y| {
        let p = photo.get_pixel(x, y);
        image::Rgba([p[0], p[1], p[2], ((x + y) * 255 / (w + h)) as u8])
    }));
    let grey = DynamicImage::ImageRgb8(photo.clone()).into_luma8();
    let rgb16 = DynamicImage::ImageRgb8(photo.clone()).into_rgb16();
    out.extend([
        case(
            "png, 16-bit RGBA",
            png_of(&DynamicImage::ImageRgba16(rgba.to_rgba16())),
        ),
        case(
            "png, grey with alpha",
            png_of(&DynamicImage::ImageLumaA8(rgba.to_luma_alpha8())),
        ),
        case("png, grey", png_of(&DynamicImage::ImageLuma8(grey.clone()))),
        case(
            "tiff, grey",
            tiff_of::<tiff::encoder::colortype::Gray8>(w, h, grey.as_raw()),
        ),
        case(
            "tiff, 16-bit RGB",
            tiff_of::<tiff::encoder::colortype::RGB16>(w, h, rgb16.as_raw()),
        ),
        case(
            "tiff, RGBA",
            tiff_of::<tiff::encoder::colortype::RGBA8>(w, h, rgba.as_bytes()),
        ),
        case("bmp, RGBA", {
            let mut b = Vec::new();
            rgba.write_to(&mut std::io::Cursor::new(&mut b), image::ImageFormat::Bmp)
                .unwrap();
            b
        }),
    ]);
    let cmyk: Vec<u8> = photo
        .pixels()
        .flat_map(|p| {
            let k = 255 - p.0.iter().max().unwrap();
            let ink = |c: u8| {
                if k == 255 {
                    0
                } else {
                    ((255 - c - k) as u32 * 255 / (255 - k) as u32) as u8
                }
            };
            [ink(p[0]), ink(p[1]), ink(p[2]), k]
        })
        .collect();
    out.push(case(
        "tiff, CMYK",
        tiff_of::<tiff::encoder::colortype::CMYK8>(w, h, &cmyk),
    ));
    out
}

/// Fails, saying how to install it, when python3 with Pillow is missing.
fn require_reference(script: &Path) {
    let ok = Command::new("python3")
        .arg(script)
        .arg("--check")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the reference decoder is missing: install it with `python3 -m pip install pillow` \
         (or `bash .ci/test`), or skip these tests with FACESYNC_SKIP_TOOLS=pillow cargo test"
    );
}

fn read_reference(path: &Path) -> Result<RgbImage, String> {
    let err = path.with_extension(format!(
        "{}.err",
        path.extension().unwrap().to_string_lossy()
    ));
    if let Ok(reason) = std::fs::read_to_string(&err) {
        return Err(reason);
    }
    let rgb = path.with_extension(format!(
        "{}.rgb",
        path.extension().unwrap().to_string_lossy()
    ));
    let bytes = std::fs::read(&rgb).map_err(|e| format!("no reference output: {e}"))?;
    let newline = bytes.iter().position(|&b| b == b'\n').unwrap();
    let size = std::str::from_utf8(&bytes[..newline]).unwrap();
    let (w, h) = size.split_once(' ').unwrap();
    RgbImage::from_raw(
        w.parse().unwrap(),
        h.parse().unwrap(),
        bytes[newline + 1..].to_vec(),
    )
    .ok_or_else(|| "a short reference output".to_string())
}

pub(super) fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let se: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    if se == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0f64.powi(2) / (se / a.as_raw().len() as f64)).log10()
}

/// The normalized profile: face check off (a cat and a group are pictures too), a lossless
/// PNG in a box small enough that JPEGs take the fast path.
fn small() -> (PhotoConfig, Vec<(String, Profile)>) {
    let mut p = photos();
    p.face_check = false;
    let profile = profile(OutputFormat::Png, 180, 180, 10_000_000, 60);
    (p, vec![("reference".into(), profile)])
}

fn normalized(bytes: &[u8]) -> Result<RgbImage, crate::reason::Finding> {
    let (p, profiles) = small();
    let out = prepare(bytes, &p, &profiles)?;
    Ok(image::load_from_memory(&out[0].bytes).unwrap().into_rgb8())
}

/// The stored size facesync decodes a JPEG at for [`small`] (a reduced DCT scale), so the
/// reference decodes at the same scale: the same picture, not the same picture filtered
/// differently.
fn jpeg_scale(bytes: &[u8]) -> Option<(u32, u32, u32)> {
    let (p, profiles) = small();
    let header = decode::header(bytes, &p).ok()?;
    if header.format != image::ImageFormat::Jpeg {
        return None;
    }
    let need = decode_size(&header, &p, &profiles);
    let (w, h) = decode::decode(bytes, &header, &p, need).ok()?.dimensions();
    let swapped = header.upright_size() != (header.width, header.height);
    let (w, h, need) = if swapped {
        (h, w, (need.1, need.0))
    } else {
        (w, h, need)
    };
    Some((
        decode::jpeg_eighths(header.width, header.height, need),
        w,
        h,
    ))
}

/// Compares every case with the reference; returns the problems, one line each.
fn differences(cases: &[Case]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/pillow_decode.py");
    let mut paths = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let reference = c.reference.as_ref().unwrap_or(&c.bytes);
        let path = dir.path().join(format!("{i}.img"));
        std::fs::write(&path, reference).unwrap();
        let scaled = dir.path().join(format!("{i}-small.img"));
        std::fs::write(&scaled, reference).unwrap();
        if let Some((e, w, h)) = c
            .reference
            .is_none()
            .then(|| jpeg_scale(&c.bytes))
            .flatten()
        {
            std::fs::write(scaled.with_extension("img.draft"), format!("{e} {w} {h}")).unwrap();
        }
        paths.push(path);
        paths.push(scaled);
    }
    let run = Command::new("python3")
        .arg(&script)
        .args(&paths)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    let mut problems = Vec::new();
    for (c, path) in cases.iter().zip(paths.chunks(2)) {
        let (path, scaled) = (&path[0], &path[1]);
        let refused = REFUSED
            .iter()
            .find(|(n, _)| *n == c.name)
            .map(|(_, code)| *code);
        let reference = read_reference(path);
        let ours = decoded(&c.bytes);
        let ours = match (ours, refused) {
            (Err(f), Some(code)) if f.code == code => continue,
            (Err(f), _) => {
                problems.push(format!("{}: refused as {:?}: {f}", c.name, f.code));
                continue;
            }
            (Ok(_), Some(code)) => {
                problems.push(format!(
                    "{}: decoded, but should be refused as {code:?}",
                    c.name
                ));
                continue;
            }
            (Ok(ours), None) => ours,
        };
        let reference = match reference {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!(
                    "{}: facesync decodes what the reference cannot ({e})",
                    c.name
                ));
                continue;
            }
        };
        if ours.dimensions() != reference.dimensions() {
            problems.push(format!(
                "{}: {:?} against the reference's {:?}",
                c.name,
                ours.dimensions(),
                reference.dimensions()
            ));
            continue;
        }
        let decoded_psnr = psnr(&ours, &reference);
        let small = normalized(&c.bytes).unwrap_or_else(|f| panic!("{}: {f}", c.name));
        let (w, h) = small.dimensions();
        let scaled = read_reference(scaled).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let theirs = resize::rgb(
            &scaled,
            resize::Region::whole(&scaled),
            w,
            h,
            resize::Quality::Best,
        );
        let normalized_psnr = psnr(&small, &theirs);
        println!(
            "{}: decoded {decoded_psnr:.1} dB, normalized {normalized_psnr:.1} dB",
            c.name
        );
        if decoded_psnr < DECODED_PSNR || normalized_psnr < NORMALIZED_PSNR {
            problems.push(format!(
                "{}: {decoded_psnr:.1} dB decoded (floor {DECODED_PSNR}), {normalized_psnr:.1} dB normalized (floor {NORMALIZED_PSNR}) against the reference",
                c.name
            ));
        }
    }
    problems
}

#[test]
#[cfg_attr(skip_pillow, ignore = "FACESYNC_SKIP_TOOLS names pillow")]
fn every_picture_decodes_as_the_reference_decoder_sees_it() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/pillow_decode.py");
    require_reference(&script);
    let mut cases = fixtures();
    cases.extend(generated());
    let problems = differences(&cases);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The floors catch what this test is for: a bit-reversed TIFF decoded as it stands, a
/// mirrored or rotated picture, and a BMP read from the start of its gap.
#[test]
#[cfg_attr(skip_pillow, ignore = "FACESYNC_SKIP_TOOLS names pillow")]
fn the_reference_comparison_catches_garbage() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/pillow_decode.py");
    require_reference(&script);
    let photo = upright();
    let reference = || Some(png_of(&DynamicImage::ImageRgb8(photo.clone())));
    // Each file claims to be the photo but holds something else.
    let mut noise = tiff_fill_order_2(&photo, tiff::encoder::Compression::Uncompressed, 1000);
    // Cleared FillOrder tag: the reversed bits are now read as they stand.
    let entry = [0x0A, 0x01, 3, 0, 1, 0, 0, 0, 2, 0];
    let at = noise.windows(10).position(|w| w == entry).unwrap();
    noise[at + 8] = 1;
    let mirrored = webp_with_exif(&stored(&photo, 2), &exif_block(1, false));
    let rotated = png_with_raw_profile(&stored(&photo, 3), &exif_block(1, true), TextChunk::Text);
    let (bmp, _) = palette_bmp(&photo, 8, 256, 0, false);
    let mut shifted = bmp.clone();
    // The pixel-data offset moved back into the palette: what a gap-blind reader decodes.
    let offset = u32::from_le_bytes(bmp[10..14].try_into().unwrap()) - 200;
    shifted[10..14].copy_from_slice(&offset.to_le_bytes());
    let cases = [
        ("bit-reversed tiff", noise),
        ("mirrored webp", mirrored),
        ("rotated png", rotated),
        ("bmp read 200 bytes early", shifted),
    ]
    .into_iter()
    .map(|(name, bytes)| Case {
        name: name.into(),
        bytes,
        reference: reference(),
    })
    .collect::<Vec<_>>();
    let problems = differences(&cases);
    assert_eq!(
        problems.len(),
        cases.len(),
        "every garbage decode is caught: {problems:#?}"
    );
}
