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
