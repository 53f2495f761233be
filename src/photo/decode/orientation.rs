//! EXIF orientation in the forms common tools store it outside JPEG: a TIFF-structured block
//! with or without JPEG's `Exif\0\0` header (WebP `EXIF` and PNG `eXIf` chunks), and the hex
//! text profile older ImageMagick versions wrote into PNG text chunks.

use std::io::Cursor;

use image::metadata::Orientation;

/// The orientation in an EXIF block. Several WebP and PNG writers copy a JPEG's APP1 payload
/// as it is, `Exif\0\0` header included, where the format wants the bare TIFF structure.
pub(super) fn from_exif(exif: &[u8]) -> Option<Orientation> {
    Orientation::from_exif_chunk(exif.strip_prefix(b"Exif\0\0").unwrap_or(exif))
}

/// The keywords ImageMagick gave an EXIF profile it kept in a PNG text chunk.
const RAW_PROFILE_KEYWORDS: [&str; 2] = ["Raw profile type exif", "Raw profile type APP1"];

/// A profile's text is its hex and a few words; a bigger one is not an EXIF block.
const TEXT_LIMIT: usize = 1 << 20;

/// The orientation in an ImageMagick raw EXIF profile of a PNG's tEXt, zTXt or iTXt chunk
/// (those before the pixel data, where ImageMagick writes them).
pub(super) fn from_png_text(bytes: &[u8]) -> Option<Orientation> {
    let reader = png::Decoder::new(Cursor::new(bytes)).read_info().ok()?;
    let info = reader.info();
    let wanted = |keyword: &str| RAW_PROFILE_KEYWORDS.contains(&keyword);
    let plain = info
        .uncompressed_latin1_text
        .iter()
        .filter(|t| wanted(&t.keyword))
        .map(|t| Some(t.text.clone()));
    let compressed = info
        .compressed_latin1_text
        .iter()
        .filter(|t| wanted(&t.keyword))
        .map(|t| {
            let mut t = t.clone();
            t.decompress_text_with_limit(TEXT_LIMIT).ok()?;
            t.get_text().ok()
        });
    let utf8 = info
        .utf8_text
        .iter()
        .filter(|t| wanted(&t.keyword))
        .map(|t| {
            let mut t = t.clone();
            t.decompress_text_with_limit(TEXT_LIMIT).ok()?;
            t.get_text().ok()
        });
    plain
        .chain(compressed)
        .chain(utf8)
        .flatten()
        .find_map(|text| from_exif(&raw_profile(&text)?))
}

/// Decodes ImageMagick's text form of a profile: "\n<name>\n<length, decimal>\n<hex lines>".
/// `None` when the hex is shorter than the length or not hex.
fn raw_profile(text: &str) -> Option<Vec<u8>> {
    let mut words = text.split_ascii_whitespace();
    let _name = words.next()?;
    let len: usize = words.next()?.parse().ok()?;
    let mut digits = words.flat_map(str::bytes).map(|d| (d as char).to_digit(16));
    let mut out = Vec::with_capacity(len.min(text.len() / 2));
    while out.len() < len {
        let high = digits.next()??;
        let low = digits.next()??;
        out.push((high << 4 | low) as u8);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_profiles_decode_or_are_refused() {
        for (text, expected) in [
            ("\nexif\n       3\n0aff10\n", Some(&[0x0a, 0xff, 0x10][..])),
            ("\nexif\n       3\n0a\nFF\n10\n", Some(&[0x0a, 0xff, 0x10])),
            ("\nexif\n       2\n0aff10\n", Some(&[0x0a, 0xff])),
            ("\nexif\n       4\n0aff10\n", None),
            ("\nexif\n       1\n0g\n", None),
            ("\nexif\n       1\n0", None),
            ("\nexif\n  -1\n00\n", None),
            ("\nexif\n", None),
            ("", None),
            ("\nexif\n       0\n", Some(&[])),
        ] {
            assert_eq!(raw_profile(text).as_deref(), expected, "{text:?}");
        }
    }
}
