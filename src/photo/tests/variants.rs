//! Files as common tools write them, made at test time from a real photo (fixtures/images/
//! face.bmp): EXIF orientation in a WebP `EXIF` chunk with the JPEG-style `Exif\0\0` header and
//! in a PNG's ImageMagick text profile (`Raw profile type exif`), palette BMPs whose pixel data
//! starts after a gap, and TIFFs with `FillOrder` 2. Every case is checked on the decoded pixels
//! against the picture it was made from.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};

use super::*;

/// The upright photo every case is made from.
pub(super) fn upright() -> RgbImage {
    image::load_from_memory(&read("face.bmp"))
        .expect("face.bmp decodes")
        .into_rgb8()
}

pub(super) fn orientation(n: u8) -> Orientation {
    Orientation::from_exif(n).expect("1 to 8")
}

/// What a camera stores for `upright` when it writes EXIF orientation `n`: the inverse of what a
/// viewer applies (6 and 8 undo each other; the others undo themselves).
pub(super) fn stored(upright: &RgbImage, n: u8) -> RgbImage {
    let inverse = match n {
        6 => 8,
        8 => 6,
        n => n,
    };
    let mut image = DynamicImage::ImageRgb8(upright.clone());
    image.apply_orientation(orientation(inverse));
    image.into_rgb8()
}

/// A TIFF-structured EXIF block holding only the orientation tag (big- or little-endian).
pub(super) fn exif_block(n: u8, big_endian: bool) -> Vec<u8> {
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend_from_slice(if big_endian { b"MM" } else { b"II" });
    out.extend_from_slice(&u16b(42));
    out.extend_from_slice(&u32b(8));
    out.extend_from_slice(&u16b(1)); // one entry
    out.extend_from_slice(&u16b(0x0112)); // Orientation
    out.extend_from_slice(&u16b(3)); // SHORT
    out.extend_from_slice(&u32b(1));
    out.extend_from_slice(&u16b(u16::from(n)));
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&u32b(0)); // no next IFD
    out
}

fn riff_chunk(out: &mut Vec<u8>, name: &[u8; 4], payload: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    if payload.len() % 2 == 1 {
        out.push(0);
    }
}

/// A lossless WebP of `image` in the extended format, with `exif` as its `EXIF` chunk.
pub(super) fn webp_with_exif(image: &RgbImage, exif: &[u8]) -> Vec<u8> {
    let mut simple = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut simple)
        .encode(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("WebP encodes");
    assert_eq!(&simple[12..16], b"VP8L", "a simple lossless WebP");
    let len = u32::from_le_bytes(simple[16..20].try_into().unwrap()) as usize;
    let bitstream = &simple[20..20 + len];
    let mut vp8x = vec![0x08, 0, 0, 0]; // flags: EXIF present
    vp8x.extend_from_slice(&(image.width() - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(image.height() - 1).to_le_bytes()[..3]);
    let mut chunks = Vec::new();
    riff_chunk(&mut chunks, b"VP8X", &vp8x);
    riff_chunk(&mut chunks, b"VP8L", bitstream);
    riff_chunk(&mut chunks, b"EXIF", exif);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(4 + chunks.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&chunks);
    out
}

#[derive(Debug, Clone, Copy)]
pub(super) enum TextChunk {
    Text,
    Ztxt,
    Itxt,
}

/// A PNG of `image` with `exif` as older ImageMagick versions wrote it: hex in a text chunk
/// named `Raw profile type exif`, "\nexif\n<length, right-aligned in 8>\n<hex, 72 a line>\n".
pub(super) fn png_with_raw_profile(image: &RgbImage, exif: &[u8], chunk: TextChunk) -> Vec<u8> {
    png_with_text(image, &raw_profile(exif, exif.len()), chunk)
}

/// ImageMagick's text form of a profile, saying it holds `len` bytes.
fn raw_profile(exif: &[u8], len: usize) -> String {
    let hex: String = exif.iter().map(|b| format!("{b:02x}")).collect();
    let lines: Vec<&str> = hex
        .as_bytes()
        .chunks(72)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    format!("\nexif\n{len:8}\n{}\n", lines.join("\n"))
}

fn png_with_text(image: &RgbImage, value: &str, chunk: TextChunk) -> Vec<u8> {
    let value = value.to_string();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, image.width(), image.height());
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let key = "Raw profile type exif".to_string();
    match chunk {
        TextChunk::Text => encoder.add_text_chunk(key, value),
        TextChunk::Ztxt => encoder.add_ztxt_chunk(key, value),
        TextChunk::Itxt => encoder.add_itxt_chunk(key, value),
    }
    .expect("the text chunk is valid");
    let mut writer = encoder.write_header().expect("PNG header");
    writer.write_image_data(image.as_raw()).expect("PNG data");
    writer.finish().expect("PNG end");
    out
}

/// Decodes through the pipeline's own decoder, at full size, as upright RGB.
pub(super) fn decoded(bytes: &[u8]) -> Result<RgbImage, crate::reason::Finding> {
    let header = decode::header(bytes, &photos())?;
    let decoded = decode::decode(bytes, &header, &photos(), header.upright_size())?;
    let (w, h) = decoded.dimensions();
    Ok(decoded
        .rgb(resize::Region::of(w, h), w, h, resize::Quality::Best)
        .into_owned())
}

fn assert_same(what: &str, got: &RgbImage, expected: &RgbImage) {
    assert_eq!(got.dimensions(), expected.dimensions(), "{what}: size");
    let wrong = got
        .pixels()
        .zip(expected.pixels())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        wrong,
        0,
        "{what}: {wrong} of {} pixels differ from the upright photo",
        got.width() * got.height()
    );
}

#[test]
fn webp_exif_with_the_jpeg_style_header_is_applied() {
    let upright = upright();
    for n in 1..=8 {
        let image = stored(&upright, n);
        for (exif, how) in [
            (
                [&b"Exif\0\0"[..], &exif_block(n, false)].concat(),
                "Exif\\0\\0 + II",
            ),
            (
                [&b"Exif\0\0"[..], &exif_block(n, true)].concat(),
                "Exif\\0\\0 + MM",
            ),
            (exif_block(n, false), "bare II"),
        ] {
            let what = format!("WebP, orientation {n}, {how}");
            let got =
                decoded(&webp_with_exif(&image, &exif)).unwrap_or_else(|f| panic!("{what}: {f}"));
            assert_same(&what, &got, &upright);
        }
    }
}

#[test]
fn png_exif_in_an_imagemagick_text_profile_is_applied() {
    let upright = upright();
    for n in 1..=8 {
        let image = stored(&upright, n);
        // ImageMagick's profile is the APP1 payload, `Exif\0\0` header included.
        let exif = [&b"Exif\0\0"[..], &exif_block(n, n % 2 == 0)].concat();
        for chunk in [TextChunk::Text, TextChunk::Ztxt, TextChunk::Itxt] {
            let what = format!("PNG, orientation {n}, {chunk:?}");
            let bytes = png_with_raw_profile(&image, &exif, chunk);
            let got = decoded(&bytes).unwrap_or_else(|f| panic!("{what}: {f}"));
            assert_same(&what, &got, &upright);
        }
    }
}

#[test]
fn a_png_text_profile_that_is_damaged_changes_nothing() {
    let upright = upright();
    let exif = [&b"Exif\0\0"[..], &exif_block(6, false)].concat();
    let good = raw_profile(&exif, exif.len());
    for (what, value) in [
        ("a profile longer than its hex", raw_profile(&exif, 9999)),
        (
            "a profile that is not hex",
            good.replace("45786966", "4578zz66"),
        ),
        ("a profile without a length", "\nexif\n".to_string()),
        ("an empty profile", String::new()),
        ("a cut profile", good[..good.len() / 2].to_string()),
    ] {
        let bytes = png_with_text(&upright, &value, TextChunk::Text);
        let got = decoded(&bytes).unwrap_or_else(|f| panic!("{what}: {f}"));
        assert_same(what, &got, &upright);
    }
}

/// A palette BMP of real pixels: the photo's luma in `colours` levels of a tinted palette (so
/// swapped channels show), `bits` per pixel, with `gap` bytes between the palette and the
/// pixel data. Returns the file and the picture it must decode to.
pub(super) fn palette_bmp(
    photo: &RgbImage,
    bits: u16,
    colours: usize,
    gap: usize,
    top_down: bool,
) -> (Vec<u8>, RgbImage) {
    palette_bmp_with(photo, bits, colours, gap, top_down, BmpHeader::Info, true)
}

/// The info header's size: 12 (OS/2 "core", 3-byte palette entries), 40, 108 (V4), 124 (V5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum BmpHeader {
    Core = 12,
    Info = 40,
    V4 = 108,
    V5 = 124,
}

/// [`palette_bmp`] with the header kind, and whether the header says how many colours the
/// palette holds (0 means 2^bits, which is then written in full).
pub(super) fn palette_bmp_with(
    photo: &RgbImage,
    bits: u16,
    colours: usize,
    gap: usize,
    top_down: bool,
    kind: BmpHeader,
    count_colours: bool,
) -> (Vec<u8>, RgbImage) {
    let colours = if count_colours && kind != BmpHeader::Core {
        colours
    } else {
        1 << bits
    };
    let (w, h) = photo.dimensions();
    let palette: Vec<[u8; 3]> = (0..colours)
        .map(|i| {
            let v = (i * 255 / (colours - 1).max(1)) as u8;
            [
                v,
                (u32::from(v) * 9 / 10) as u8,
                (u32::from(v) * 7 / 10) as u8,
            ]
        })
        .collect();
    let grey = DynamicImage::ImageRgb8(photo.clone()).into_luma8();
    let index = |x: u32, y: u32| (usize::from(grey.get_pixel(x, y)[0]) * colours / 256) as u8;
    let row_bytes = (usize::from(bits) * w as usize).div_ceil(32) * 4;
    let entry = if kind == BmpHeader::Core { 3 } else { 4 };
    let header = kind as usize;
    let offset = 14 + header + entry * colours + gap;
    let size = offset + row_bytes * h as usize;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(b"BM");
    out.extend_from_slice(&(size as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(offset as u32).to_le_bytes());
    out.extend_from_slice(&(header as u32).to_le_bytes());
    if kind == BmpHeader::Core {
        assert!(!top_down, "OS/2 bitmaps are bottom-up");
        out.extend_from_slice(&(w as u16).to_le_bytes());
        out.extend_from_slice(&(h as u16).to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&bits.to_le_bytes());
    } else {
        out.extend_from_slice(&(w as i32).to_le_bytes());
        let height = if top_down { -(h as i32) } else { h as i32 };
        out.extend_from_slice(&height.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&bits.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // BI_RGB
        out.extend_from_slice(&((row_bytes * h as usize) as u32).to_le_bytes());
        out.extend_from_slice(&2835u32.to_le_bytes());
        out.extend_from_slice(&2835u32.to_le_bytes());
        let used = if count_colours { colours as u32 } else { 0 };
        out.extend_from_slice(&used.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        // V4 and V5: masks, colour space and gamma unused with BI_RGB; sRGB said as such.
        out.resize(14 + header, 0);
        if header >= 108 {
            out[14 + 56..14 + 60].copy_from_slice(b"BGRs");
        }
    }
    for [r, g, b] in &palette {
        out.extend_from_slice(&[*b, *g, *r, 0][..entry]);
    }
    // What writers leave in the gap varies; bytes that decode as bright pixels make a decoder
    // that reads them show.
    out.extend(std::iter::repeat_n(0xFF, gap));
    let rows: Vec<u32> = if top_down {
        (0..h).collect()
    } else {
        (0..h).rev().collect()
    };
    for y in rows {
        let mut row = vec![0u8; row_bytes];
        for x in 0..w {
            let i = index(x, y);
            let bit = x as usize * usize::from(bits);
            let byte = &mut row[bit / 8];
            *byte |= i << (8 - usize::from(bits) - bit % 8);
        }
        out.extend_from_slice(&row);
    }
    assert_eq!(out.len(), size);
    let expected = RgbImage::from_fn(w, h, |x, y| image::Rgb(palette[usize::from(index(x, y))]));
    (out, expected)
}

pub(super) const BMP_CASES: &[(u16, usize)] = &[(1, 2), (4, 16), (8, 256), (8, 100)];

#[test]
fn palette_bmps_with_a_gap_before_the_pixels_decode_whole() {
    let photo = upright();
    for &(bits, colours) in BMP_CASES {
        for kind in [
            BmpHeader::Core,
            BmpHeader::Info,
            BmpHeader::V4,
            BmpHeader::V5,
        ] {
            for top_down in [false, true] {
                if top_down && kind == BmpHeader::Core {
                    continue;
                }
                for count_colours in [true, false] {
                    for gap in [0, 2, 37, 1024] {
                        let what = format!(
                            "{bits}-bit, {colours} colours (counted: {count_colours}), {kind:?} header, gap {gap}, top-down {top_down}"
                        );
                        let (bytes, expected) = palette_bmp_with(
                            &photo,
                            bits,
                            colours,
                            gap,
                            top_down,
                            kind,
                            count_colours,
                        );
                        let got = decoded(&bytes).unwrap_or_else(|f| panic!("{what}: {f}"));
                        assert_same(&what, &got, &expected);
                    }
                }
            }
        }
    }
}

/// A TIFF of `image` with FillOrder 2: the bytes of every strip bit-reversed, as scanner and
/// fax software store them.
pub(super) fn tiff_fill_order_2(
    image: &RgbImage,
    compression: tiff::encoder::Compression,
    rows_per_strip: u32,
) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    {
        let mut encoder = tiff::encoder::TiffEncoder::new(&mut out)
            .expect("TIFF encoder")
            .with_compression(compression);
        let mut tiff = encoder
            .new_image::<tiff::encoder::colortype::RGB8>(image.width(), image.height())
            .expect("TIFF image");
        tiff.rows_per_strip(rows_per_strip).expect("rows per strip");
        tiff.encoder()
            .write_tag(tiff::tags::Tag::FillOrder, 2u16)
            .expect("FillOrder tag");
        tiff.write_data(image.as_raw()).expect("TIFF data");
    }
    let mut bytes = out.into_inner();
    let mut decoder = tiff::decoder::Decoder::new(Cursor::new(bytes.clone())).expect("reads back");
    let offsets = decoder
        .get_tag_u64_vec(tiff::tags::Tag::StripOffsets)
        .unwrap();
    let counts = decoder
        .get_tag_u64_vec(tiff::tags::Tag::StripByteCounts)
        .unwrap();
    assert!(offsets.len() > 1 || rows_per_strip >= image.height());
    for (&at, &len) in offsets.iter().zip(&counts) {
        for b in &mut bytes[at as usize..(at + len) as usize] {
            *b = b.reverse_bits();
        }
    }
    bytes
}

#[test]
fn tiffs_with_fill_order_2_decode_as_the_photo() {
    use tiff::encoder::Compression;
    let photo = upright();
    for (compression, name) in [
        (Compression::Uncompressed, "uncompressed"),
        (Compression::Lzw, "LZW"),
        (Compression::Packbits, "PackBits"),
        (
            Compression::Deflate(tiff::encoder::DeflateLevel::Fast),
            "Deflate",
        ),
    ] {
        for rows in [7, 1000] {
            let what = format!("FillOrder 2, {name}, {rows} rows a strip");
            let bytes = tiff_fill_order_2(&photo, compression, rows);
            let got = decoded(&bytes).unwrap_or_else(|f| panic!("{what}: {f}"));
            assert_same(&what, &got, &photo);
        }
    }
}

/// The bytes of the first directory entry for `tag` (little-endian SHORT, one value).
fn short_entry(tiff: &[u8], tag: u16, value: u16) -> usize {
    let mut entry = tag.to_le_bytes().to_vec();
    entry.extend_from_slice(&[3, 0, 1, 0, 0, 0]);
    entry.extend_from_slice(&value.to_le_bytes());
    tiff.windows(entry.len())
        .position(|w| w == entry)
        .unwrap_or_else(|| panic!("no entry for tag {tag} = {value}"))
}

#[test]
fn tiffs_whose_fill_order_cannot_be_applied_are_refused_saying_what_to_do() {
    let photo = upright();
    let good = tiff_fill_order_2(&photo, tiff::encoder::Compression::Uncompressed, 16);
    let jpeg_compressed = {
        let mut b = good.clone();
        let at = short_entry(&b, 259, 1);
        b[at + 8] = 7;
        b
    };
    let fill_order_3 = {
        let mut b = good.clone();
        let at = short_entry(&b, 266, 2);
        b[at + 8] = 3;
        b
    };
    let strip_past_the_end = {
        let mut b = tiff_fill_order_2(&photo, tiff::encoder::Compression::Uncompressed, 1000);
        // One strip: its offset (LONG) sits in the StripOffsets entry itself.
        let entry = [0x11, 0x01, 4, 0, 1, 0, 0, 0];
        let at = b.windows(8).position(|w| w == entry).expect("StripOffsets");
        let near_the_end = b.len() as u32 - 1000;
        b[at + 8..at + 12].copy_from_slice(&near_the_end.to_le_bytes());
        b
    };
    for (what, bytes, code, words) in [
        (
            "FillOrder 2 with JPEG compression",
            jpeg_compressed,
            ReasonCode::UnsupportedFormat,
            &["fillorder 2", "compression 7", "re-save it as jpeg or png"][..],
        ),
        (
            "FillOrder 3",
            fill_order_3,
            ReasonCode::CorruptImage,
            &["fillorder is 3", "re-save it as jpeg or png"],
        ),
        (
            "a strip past the end",
            strip_past_the_end,
            ReasonCode::CorruptImage,
            &["runs past the end of the file"],
        ),
    ] {
        let f = decoded(&bytes).expect_err(what);
        assert_eq!(f.code, code, "{what}: {f}");
        let m = f.message.to_lowercase();
        for w in words {
            assert!(m.contains(w), "{what}: `{f}` lacks `{w}`");
        }
        let through_prepare = prepare(&bytes, &photos(), &defaults()).unwrap_err();
        assert_eq!(through_prepare.code, code, "{what}");
    }
}
