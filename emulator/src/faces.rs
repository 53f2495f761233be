//! What both clouds do with an uploaded picture: sniff its format, read its size, decode it
//! (bounded, EXIF orientation applied), find the face, and cut a face crop for downloads.
//!
//! Detection ([`crate::detect`]) runs on a copy scaled to at most [`DETECT_LONG_SIDE`] pixels
//! on the long side, for speed; boxes are mapped back to the image's own pixels.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use serde::Serialize;

use crate::detect;

/// The long side of the copy faces are looked for in.
const DETECT_LONG_SIDE: u32 = 400;

/// A face's place in an image, in the image's pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rect {
    pub(crate) left: u32,
    pub(crate) top: u32,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

/// A face's place as VziCloud reports it (serialized in this field order, as the vendor's
/// example shows: `{"width":149,"left":131,"height":204,"top":49}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FaceLocation {
    pub width: u32,
    pub left: u32,
    pub height: u32,
    pub top: u32,
}

impl From<Rect> for FaceLocation {
    fn from(r: Rect) -> Self {
        Self {
            width: r.width,
            left: r.left,
            height: r.height,
            top: r.top,
        }
    }
}

/// A decoded upload.
#[derive(Debug)]
pub(crate) struct Inspected {
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// The largest face, or `None` when face checks are off.
    pub(crate) face: Option<Rect>,
}

/// Why an upload is not a usable face picture.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    Undecodable(String),
    NoFace,
}

/// The format the bytes are in, from their magic number.
pub(crate) fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    image::guess_format(bytes).ok()
}

/// The lower-case name VziCloud reports a format by (`jpeg`, `png`, ...).
pub(crate) fn format_name(format: ImageFormat) -> String {
    format
        .extensions_str()
        .first()
        .map(|e| if *e == "jpg" { "jpeg" } else { e })
        .unwrap_or("unknown")
        .to_string()
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(20_000);
    limits.max_image_height = Some(20_000);
    limits.max_alloc = Some(512 * 1024 * 1024);
    limits
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, String> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if reader.format().is_none() {
        return Err("not an image format the emulator knows".to_string());
    }
    reader.limits(limits());
    Ok(reader)
}

/// Width and height from the header, without decoding the pixels.
pub(crate) fn dimensions(bytes: &[u8]) -> Result<(u32, u32), String> {
    reader(bytes)?.into_dimensions().map_err(|e| e.to_string())
}

/// Decodes (orientation applied) and, when `face_check`, finds the largest face.
pub(crate) fn inspect(bytes: &[u8], face_check: bool) -> Result<Inspected, Problem> {
    let image = decode(bytes).map_err(Problem::Undecodable)?;
    let (width, height) = (image.width(), image.height());
    if !face_check {
        return Ok(Inspected {
            width,
            height,
            face: None,
        });
    }
    let face = largest_face(&image).ok_or(Problem::NoFace)?;
    Ok(Inspected {
        width,
        height,
        face: Some(face),
    })
}

fn decode(bytes: &[u8]) -> Result<DynamicImage, String> {
    let mut decoder = reader(bytes)?.into_decoder().map_err(|e| e.to_string())?;
    let orientation = decoder.orientation().map_err(|e| e.to_string())?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn largest_face(image: &DynamicImage) -> Option<Rect> {
    let (w, h) = (image.width(), image.height());
    let long = w.max(h);
    let scale = if long > DETECT_LONG_SIDE {
        DETECT_LONG_SIDE as f64 / long as f64
    } else {
        1.0
    };
    let small = if scale < 1.0 {
        image.resize(
            ((w as f64 * scale).round() as u32).max(1),
            ((h as f64 * scale).round() as u32).max(1),
            image::imageops::FilterType::Triangle,
        )
    } else {
        image.clone()
    };
    let faces = detect::faces(&small.to_luma8());
    let best = faces
        .iter()
        .max_by_key(|f| u64::from(f.width) * u64::from(f.height))?;
    let back = |v: f64| (v / scale).round().max(0.0) as u32;
    let left = back(best.x.max(0) as f64).min(w.saturating_sub(1));
    let top = back(best.y.max(0) as f64).min(h.saturating_sub(1));
    Some(Rect {
        left,
        top,
        width: back(best.width as f64).clamp(1, w - left),
        height: back(best.height as f64).clamp(1, h - top),
    })
}

/// A JPEG of the face and a margin of half its size around it: Feishu's `is_cropped=true`.
pub(crate) fn crop(bytes: &[u8], face: Rect) -> Result<Vec<u8>, String> {
    let image = decode(bytes)?;
    let (w, h) = (image.width(), image.height());
    let margin_x = face.width / 2;
    let margin_y = face.height / 2;
    let left = face.left.saturating_sub(margin_x);
    let top = face.top.saturating_sub(margin_y);
    let right = (face.left + face.width + margin_x).min(w);
    let bottom = (face.top + face.height + margin_y).min(h);
    let cropped = image
        .crop_imm(
            left,
            top,
            right.saturating_sub(left).max(1),
            bottom.saturating_sub(top).max(1),
        )
        .to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&cropped)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fixtures/demo/photos")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn demo_photos_show_a_face_except_the_cat() {
        for (name, has_face) in [
            ("E1001.jpg", true),
            ("E1002.jpg", true),
            ("E1014.png", true),
            ("e1011.jpg", false),
        ] {
            let got = inspect(&photo(name), true);
            match has_face {
                true => {
                    let i = got.unwrap_or_else(|e| panic!("{name}: {e:?}"));
                    let f = i.face.unwrap();
                    assert!(f.left + f.width <= i.width && f.top + f.height <= i.height);
                    assert!(f.width >= 20, "{name}: {f:?}");
                }
                false => assert_eq!(got.unwrap_err(), Problem::NoFace, "{name}"),
            }
        }
    }

    #[test]
    fn bytes_that_are_no_image_do_not_decode() {
        for bytes in [&b""[..], b"hello", b"\xff\xd8\xff\xe0 truncated jpeg"] {
            assert!(matches!(
                inspect(bytes, false),
                Err(Problem::Undecodable(_))
            ));
        }
    }

    #[test]
    fn formats_are_named_as_vzicloud_names_them() {
        assert_eq!(format_name(ImageFormat::Jpeg), "jpeg");
        assert_eq!(format_name(ImageFormat::Png), "png");
        assert_eq!(format_name(ImageFormat::WebP), "webp");
    }

    #[test]
    fn a_face_crop_is_a_smaller_jpeg() {
        let bytes = photo("E1001.jpg");
        let face = inspect(&bytes, true).unwrap().face.unwrap();
        let cropped = crop(&bytes, face).unwrap();
        assert_eq!(sniff(&cropped), Some(ImageFormat::Jpeg));
        let (w, h) = dimensions(&cropped).unwrap();
        assert!(
            w <= 2 * face.width && h <= 2 * face.height,
            "{w}x{h} for {face:?}"
        );
    }
}
