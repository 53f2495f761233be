//! Small previews of photos (the HTML report's thumbnails), made by the same bounded decoder
//! as the pipeline: the file size and pixel limits are checked before anything is decoded, the
//! EXIF orientation is applied, and a large JPEG is decoded at 1/8 scale (a 12-megapixel photo
//! costs a few milliseconds and a few hundred kilobytes, not 36 MB).

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::decode;
use super::normalize;
use super::resize::{Quality, Region};
use crate::config::PhotoConfig;
use crate::reason::{Finding, ReasonCode};

/// JPEG quality of previews: small files, and faces still recognisable at 160 px.
const QUALITY: u8 = 80;

/// A JPEG of `bytes` fitted inside `max_side` x `max_side` (never enlarged), upright, or why
/// it cannot be made. Pure and synchronous: call it on a blocking thread.
pub fn thumbnail(bytes: &[u8], photos: &PhotoConfig, max_side: u32) -> Result<Vec<u8>, Finding> {
    catch_unwind(AssertUnwindSafe(|| make(bytes, photos, max_side))).unwrap_or_else(|_| {
        Err(Finding::new(
            ReasonCode::CorruptImage,
            "the image decoder failed on this file",
        ))
    })
}

/// Like [`thumbnail`], with the five landmarks the quality gate measured marked on the face
/// (the eyes joined by their line, so a tilt shows), for a photo the gate refused. Without a
/// single face, the plain thumbnail.
pub fn thumbnail_marked(
    bytes: &[u8],
    photos: &PhotoConfig,
    max_side: u32,
) -> Result<Vec<u8>, Finding> {
    catch_unwind(AssertUnwindSafe(|| make_marked(bytes, photos, max_side))).unwrap_or_else(|_| {
        Err(Finding::new(
            ReasonCode::CorruptImage,
            "the image decoder failed on this file",
        ))
    })
}

/// The size the marked thumbnail's photo is decoded at: enough for the detector and the
/// landmarks on an ordinary portrait, a few milliseconds for a 12-megapixel JPEG.
const MARK_DECODE: u32 = 800;

fn make_marked(bytes: &[u8], photos: &PhotoConfig, max_side: u32) -> Result<Vec<u8>, Finding> {
    if bytes.len() as u64 > photos.max_file_bytes {
        return make(bytes, photos, max_side);
    }
    let limits = PhotoConfig {
        min_short_side: 1,
        ..photos.clone()
    };
    let header = decode::header(bytes, &limits)?;
    let (width, height) = header.upright_size();
    let decoded = decode::decode(
        bytes,
        &header,
        &limits,
        normalize::fit(width, height, MARK_DECODE, MARK_DECODE),
    )?;
    let Ok(face) = super::check::single_face(&decoded.pixels, &limits) else {
        return make(bytes, photos, max_side);
    };
    let l = super::quality::measure(&decoded, &face).landmarks;
    let (dw, dh) = decoded.dimensions();
    let (tw, th) = normalize::fit(dw, dh, max_side, max_side);
    let mut small = decoded
        .rgb(Region::of(dw, dh), tw, th, Quality::Fast)
        .into_owned();
    let k = tw as f32 / dw as f32;
    let at = |p: (f32, f32)| (p.0 * k, p.1 * k);
    let mark = image::Rgb([255, 45, 85]);
    let (a, b) = (at(l.left_eye), at(l.right_eye));
    for i in 0..=32 {
        let t = i as f32 / 32.0;
        dot(
            &mut small,
            (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t),
            0,
            mark,
        );
    }
    for p in [l.left_eye, l.right_eye, l.nose, l.mouth_left, l.mouth_right] {
        dot(&mut small, at(p), 2, mark);
    }
    Ok(normalize::jpeg(&small, QUALITY))
}

/// A filled square of `radius` pixels around `centre`, clipped to the image.
fn dot(image: &mut image::RgbImage, centre: (f32, f32), radius: i32, colour: image::Rgb<u8>) {
    let (cx, cy) = (centre.0.round() as i32, centre.1.round() as i32);
    for y in cy - radius..=cy + radius {
        for x in cx - radius..=cx + radius {
            if x >= 0 && y >= 0 && (x as u32) < image.width() && (y as u32) < image.height() {
                image.put_pixel(x as u32, y as u32, colour);
            }
        }
    }
}

fn make(bytes: &[u8], photos: &PhotoConfig, max_side: u32) -> Result<Vec<u8>, Finding> {
    if bytes.len() as u64 > photos.max_file_bytes {
        return Err(Finding::new(
            ReasonCode::ImageTooLarge,
            "the file is over photos.max_file_bytes",
        ));
    }
    // A photo too small to send still gets a preview: the report shows what is wrong with it.
    let limits = PhotoConfig {
        min_short_side: 1,
        ..photos.clone()
    };
    let header = decode::header(bytes, &limits)?;
    let (width, height) = header.upright_size();
    let (tw, th) = normalize::fit(width, height, max_side, max_side);
    let decoded = decode::decode(bytes, &header, &limits, (tw, th))?;
    let (dw, dh) = decoded.dimensions();
    let small = decoded.rgb(Region::of(dw, dh), tw, th, Quality::Fast);
    Ok(normalize::jpeg(&small, QUALITY))
}
