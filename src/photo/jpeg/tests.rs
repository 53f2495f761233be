//! The fast path is held to jpeg-decoder's output on every kind of file it accepts, declines
//! what it does not cover, and never panics or accepts a truncated file.

use std::path::Path;

use image::RgbImage;
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use super::{Huffman, Planes, Skip, decode_scaled};

/// The pixel limit the tests decode with (the default `photos.max_pixels`).
const LIMIT: u64 = 50_000_000;
use crate::photo::resize::{self, Quality, Region};

/// The planes as RGB at the luma's size, the way the pipeline converts them (chroma upsampled
/// by the resize filter).
fn rgb(planes: &Planes) -> RgbImage {
    let (w, h) = planes.y.dimensions();
    resize::planes(
        &planes.y,
        planes.chroma.as_ref(),
        Region::of(w, h),
        w,
        h,
        Quality::Best,
    )
}

/// A test picture with what photos have: smooth gradients, sharp edges, colour and noise.
fn picture(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut state = seed | 1;
    RgbImage::from_fn(width, height, |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state % 21) as i32 - 10;
        let edge = if (x / 13 + y / 17) % 2 == 0 { 60 } else { 0 };
        let r = (x * 255 / width.max(1)) as i32 + edge + noise;
        let g = (y * 255 / height.max(1)) as i32 - edge / 2 + noise;
        let b = ((x + y) * 128 / (width + height).max(1)) as i32 + 64 + noise;
        image::Rgb([r, g, b].map(|v| v.clamp(0, 255) as u8))
    })
}

fn encode(
    image: &RgbImage,
    quality: u8,
    sampling: SamplingFactor,
    grey: bool,
    restart: u16,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out, quality);
    e.set_sampling_factor(sampling);
    if restart > 0 {
        e.set_restart_interval(restart);
    }
    let (w, h) = (image.width() as u16, image.height() as u16);
    if grey {
        let luma = image::DynamicImage::ImageRgb8(image.clone()).into_luma8();
        e.encode(luma.as_raw(), w, h, ColorType::Luma).unwrap();
    } else {
        e.encode(image.as_raw(), w, h, ColorType::Rgb).unwrap();
    }
    out
}

/// jpeg-decoder's output at the same scale, as RGB.
fn reference(bytes: &[u8], size: usize) -> RgbImage {
    let mut d = jpeg_decoder::Decoder::new(bytes);
    d.read_info().unwrap();
    let info = d.info().unwrap();
    let want = |len: u16| ((usize::from(len) * size).div_ceil(8)) as u16;
    let (w, h) = d.scale(want(info.width), want(info.height)).unwrap();
    let pixels = d.decode().unwrap();
    let rgb = match d.info().unwrap().pixel_format {
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        other => panic!("unexpected {other:?}"),
    };
    RgbImage::from_raw(u32::from(w), u32::from(h), rgb).unwrap()
}

/// Peak signal-to-noise ratio in dB (infinite when identical) of two sample sequences.
fn psnr(a: impl Iterator<Item = f64>, b: impl Iterator<Item = f64>) -> f64 {
    let (mut se, mut n) = (0.0, 0usize);
    for (x, y) in a.zip(b) {
        se += (x - y).powi(2);
        n += 1;
    }
    10.0 * (255.0f64.powi(2) / (se / n as f64)).log10()
}

/// JPEG's luma (BT.601) of each pixel: exactly the decoded Y whatever the chroma, so it tests
/// the luma path without the chroma upsampling's differences.
fn luma(image: &RgbImage) -> impl Iterator<Item = f64> + '_ {
    image
        .pixels()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
}

fn samples(image: &RgbImage) -> impl Iterator<Item = f64> + '_ {
    image.as_raw().iter().map(|&v| f64::from(v))
}

fn assert_like_reference(bytes: &[u8], size: usize, what: &str) {
    let ours = rgb(&decode_scaled(bytes, size, LIMIT).unwrap_or_else(|e| panic!("{what}: {e:?}")));
    let theirs = reference(bytes, size);
    // Subsampled directions are cropped to an even size (at most one pixel less).
    let (w, h) = ours.dimensions();
    assert!(
        theirs.width() - w <= 1 && theirs.height() - h <= 1,
        "{what}: {:?} against {:?}",
        ours.dimensions(),
        theirs.dimensions()
    );
    let theirs = image::imageops::crop_imm(&theirs, 0, 0, w, h).to_image();
    // Luma: the two differ only in IDCT arithmetic (and where a colour clips).
    let y = psnr(luma(&ours), luma(&theirs));
    // Colour: chroma is upsampled by the resize filter here, by libjpeg-style "fancy"
    // upsampling there, which shows on the test picture's hard colour edges, most of all in
    // tiny images.
    let rgb = psnr(samples(&ours), samples(&theirs));
    // JPEG_PSNR=1 prints every case's figures (what the floors below were chosen from).
    if std::env::var_os("JPEG_PSNR").is_some() {
        eprintln!("{what}: luma {y:.1} rgb {rgb:.1}");
    }
    assert!(y > 38.0, "{what}: luma {y:.1} dB against jpeg-decoder");
    let floor = if ours.width() >= 60 { 29.0 } else { 23.0 };
    assert!(
        rgb > floor,
        "{what}: colour {rgb:.1} dB against jpeg-decoder"
    );
}

#[test]
fn matches_jpeg_decoder_on_every_layout_it_accepts() {
    let samplings = [
        ("4:4:4", SamplingFactor::F_1_1),
        ("4:2:2", SamplingFactor::F_2_1),
        ("4:4:0", SamplingFactor::F_1_2),
        ("4:2:0", SamplingFactor::F_2_2),
    ];
    let sizes = [(8, 8), (17, 33), (250, 333), (401, 299)];
    for (i, &(w, h)) in sizes.iter().enumerate() {
        let image = picture(w, h, i as u64 + 7);
        for (name, sampling) in samplings {
            for grey in [false, true] {
                for restart in [0, 3] {
                    for quality in [60, 95] {
                        let bytes = encode(&image, quality, sampling, grey, restart);
                        for size in [1, 2, 4] {
                            let what = format!(
                                "{w}x{h} {name} grey={grey} restart={restart} q{quality} at {size}/8"
                            );
                            assert_like_reference(&bytes, size, &what);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn follows_the_picture_not_only_the_reference() {
    // A flat colour must come out as that colour (checks the colour conversion's constants
    // independently of jpeg-decoder).
    let flat = RgbImage::from_pixel(64, 48, image::Rgb([200, 40, 90]));
    let bytes = encode(&flat, 100, SamplingFactor::F_2_2, false, 0);
    let out = rgb(&decode_scaled(&bytes, 4, LIMIT).unwrap());
    assert_eq!(out.dimensions(), (32, 24));
    for p in out.pixels() {
        for (got, want) in p.0.iter().zip([200u8, 40, 90]) {
            assert!(got.abs_diff(want) <= 3, "{:?} against [200, 40, 90]", p.0);
        }
    }
}

#[test]
fn matches_jpeg_decoder_on_the_fixture_photos() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut accepted = 0;
    for dir in ["images", "demo/photos"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "jpg") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            if jpeg_decoder::Decoder::new(&bytes[..]).decode().is_err() {
                // Broken on purpose: the fast path must decline them too.
                assert!(
                    decode_scaled(&bytes, 2, LIMIT).is_err(),
                    "{}",
                    path.display()
                );
                continue;
            }
            match decode_scaled(&bytes, 2, LIMIT) {
                Ok(_) => {
                    assert_like_reference(&bytes, 2, &path.display().to_string());
                    accepted += 1;
                }
                Err(Skip::Unsupported(_)) => {}
                Err(e) => panic!("{}: {e:?}", path.display()),
            }
        }
    }
    assert!(
        accepted >= 20,
        "only {accepted} fixture JPEGs took the fast path"
    );
}

#[test]
fn declines_what_it_does_not_cover() {
    let fixture = |name: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/images")
                .join(name),
        )
        .unwrap()
    };
    for (name, why) in [
        ("progressive.jpg", "progressive"),
        ("cmyk.jpg", "neither grey nor three-component"),
    ] {
        match decode_scaled(&fixture(name), 2, LIMIT) {
            Err(Skip::Unsupported(w)) => assert!(w.contains(why), "{name}: {w}"),
            other => panic!("{name}: {:?}", other.map(|p| p.y.dimensions())),
        }
    }
    // Full size is jpeg-decoder's job.
    let bytes = encode(&picture(32, 32, 1), 90, SamplingFactor::F_2_2, false, 0);
    assert!(matches!(
        decode_scaled(&bytes, 8, LIMIT),
        Err(Skip::Unsupported(_))
    ));
    // Not a JPEG at all.
    assert!(matches!(
        decode_scaled(b"GIF89a", 2, LIMIT),
        Err(Skip::Corrupt(_))
    ));
}

#[test]
fn a_truncated_file_is_declined_at_every_length() {
    for restart in [0, 2] {
        let bytes = encode(
            &picture(96, 80, 3),
            90,
            SamplingFactor::F_2_2,
            false,
            restart,
        );
        // Everything but the end-of-image marker is needed.
        for len in 0..bytes.len() - 2 {
            assert!(
                decode_scaled(&bytes[..len], 2, LIMIT).is_err(),
                "cut at {len} of {} (restart {restart}) was accepted",
                bytes.len()
            );
        }
        assert!(decode_scaled(&bytes[..bytes.len() - 2], 2, LIMIT).is_ok());
    }
}

#[test]
fn damaged_files_never_panic() {
    let clean = encode(&picture(120, 90, 5), 85, SamplingFactor::F_2_2, false, 4);
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    for _ in 0..2000 {
        let mut bytes = clean.clone();
        for _ in 0..1 + state % 4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state % bytes.len() as u64) as usize;
            bytes[at] = (state >> 32) as u8;
        }
        for size in [1, 2, 4] {
            // Either answer is fine; a panic or a hang is not.
            let _ = decode_scaled(&bytes, size, LIMIT);
        }
    }
}

/// Where the marker segment `marker` starts (its 0xFF), and its whole length with the marker.
fn segment(bytes: &[u8], marker: u8) -> (usize, usize) {
    let at = bytes
        .windows(2)
        .position(|w| w == [0xFF, marker])
        .expect("the marker is there");
    let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
    (at, len + 2)
}

/// The file with its three components renamed (in the frame header and the scan header).
fn with_component_ids(bytes: &[u8], ids: [u8; 3]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let (sof, _) = segment(bytes, 0xC0);
    let (sos, _) = segment(bytes, 0xDA);
    for (i, id) in ids.into_iter().enumerate() {
        out[sof + 10 + 3 * i] = id;
        out[sos + 5 + 2 * i] = id;
    }
    out
}

#[test]
fn reads_three_components_as_ycbcr_only_where_jpeg_decoder_does() {
    let bytes = encode(&picture(64, 48, 9), 90, SamplingFactor::F_2_2, false, 0);
    assert!(decode_scaled(&bytes, 2, LIMIT).is_ok());
    // libjpeg's big-gamut YCC, plain RGB and big-gamut RGB: not ours to read.
    for ids in [[1, 34, 35], *b"RGB", *b"rgb"] {
        let renamed = with_component_ids(&bytes, ids);
        assert!(
            matches!(decode_scaled(&renamed, 2, LIMIT), Err(Skip::Unsupported(_))),
            "{ids:?}"
        );
    }
}

#[test]
fn a_second_frame_header_or_too_many_pixels_is_declined_before_allocating() {
    let bytes = encode(&picture(64, 48, 9), 90, SamplingFactor::F_2_2, false, 0);
    // The header check sees the first frame only: a second, huge one must not be decoded.
    let (sof, len) = segment(&bytes, 0xC0);
    let mut huge = bytes[sof..sof + len].to_vec();
    huge[5..9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let mut twice = bytes[..sof + len].to_vec();
    twice.extend_from_slice(&huge);
    twice.extend_from_slice(&bytes[sof + len..]);
    assert_eq!(
        decode_scaled(&twice, 2, LIMIT).err(),
        Some(Skip::Unsupported("several frame headers"))
    );
    assert!(matches!(
        decode_scaled(&bytes, 2, 64 * 48 - 1),
        Err(Skip::Corrupt(_))
    ));
}

#[test]
fn an_over_full_huffman_table_is_refused_not_a_panic() {
    // Three codes of one bit, and a table that fills every 2-bit code and asks for one more.
    let mut counts = [0u8; 16];
    counts[0] = 3;
    assert!(Huffman::new(&counts, &[1, 2, 3], true).is_err());
    let mut counts = [0u8; 16];
    counts[1] = 4;
    counts[2] = 1;
    assert!(Huffman::new(&counts, &[1, 2, 3, 4, 5], false).is_err());
    // A complete table is fine.
    let mut counts = [0u8; 16];
    counts[1] = 3;
    counts[2] = 2;
    assert!(Huffman::new(&counts, &[1, 2, 3, 4, 5], false).is_ok());
}

#[test]
fn restart_markers_must_come_in_order() {
    let bytes = encode(&picture(96, 80, 3), 90, SamplingFactor::F_2_2, false, 2);
    assert!(decode_scaled(&bytes, 2, LIMIT).is_ok());
    let (sos, len) = segment(&bytes, 0xDA);
    let first = sos
        + len
        + bytes[sos + len..]
            .windows(2)
            .position(|w| w == [0xFF, 0xD0])
            .expect("a first restart marker");
    let mut swapped = bytes.clone();
    swapped[first + 1] = 0xD1;
    assert!(matches!(
        decode_scaled(&swapped, 2, LIMIT),
        Err(Skip::Corrupt(_))
    ));
}

#[test]
fn the_block_means_are_the_eighth_scale_luma() {
    // Every layout and scale: the means kept beside a larger decode are, pixel for pixel, the
    // luma of a decode at 1/8, and a decode at 1/8 keeps none (it is that picture).
    for (i, &(w, h)) in [(17, 33), (250, 333), (401, 299)].iter().enumerate() {
        let image = picture(w, h, i as u64 + 3);
        for sampling in [
            SamplingFactor::F_1_1,
            SamplingFactor::F_2_1,
            SamplingFactor::F_2_2,
        ] {
            for (grey, restart) in [(false, 0), (true, 0), (false, 3)] {
                let bytes = encode(&image, 90, sampling, grey, restart);
                let eighth = decode_scaled(&bytes, 1, LIMIT).unwrap();
                assert!(eighth.dc.is_none());
                for size in [2, 4] {
                    let planes = decode_scaled(&bytes, size, LIMIT).unwrap();
                    let dc = planes.dc.expect("means beside a larger decode");
                    assert_eq!(
                        dc.dimensions(),
                        eighth.y.dimensions(),
                        "{w}x{h} {sampling:?} at {size}/8"
                    );
                    let (ew, eh) = eighth.y.dimensions();
                    for y in 0..eh {
                        for x in 0..ew {
                            assert_eq!(
                                dc.get_pixel(x, y),
                                eighth.y.get_pixel(x, y),
                                "{w}x{h} {sampling:?} grey={grey} at {size}/8: ({x}, {y})"
                            );
                        }
                    }
                }
            }
        }
    }
}
