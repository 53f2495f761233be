//! Photos: decode (bounded), orient, check for one face, normalize to each target's profile.
//!
//! (Interim version: decode and fit to each profile. The full pipeline (orientation, face
//! check, quality search) replaces it.)

pub mod face;

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use image::{DynamicImage, ImageFormat};
use tokio::sync::Semaphore;

use crate::config::{OutputFormat, PhotoConfig, Profile};
use crate::reason::{Finding, ReasonCode};

/// A photo normalized for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub target: String,
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    /// blake3 of `bytes`, hex.
    pub hash: String,
}

/// Decodes once, then normalizes for each (target, profile).
pub fn prepare(
    bytes: &[u8],
    _photos: &PhotoConfig,
    profiles: &[(String, Profile)],
) -> Result<Vec<Normalized>, Finding> {
    let img = image::load_from_memory(bytes)
        .map_err(|e| Finding::new(ReasonCode::CorruptImage, e.to_string()))?;
    let img = DynamicImage::ImageRgb8(img.to_rgb8());
    profiles
        .iter()
        .map(|(target, p)| {
            let fitted = if img.width() > p.max_width || img.height() > p.max_height {
                img.thumbnail(p.max_width, p.max_height)
            } else {
                img.clone()
            };
            let mut out = Vec::new();
            let format = match p.format {
                OutputFormat::Jpeg => ImageFormat::Jpeg,
                OutputFormat::Png => ImageFormat::Png,
            };
            fitted
                .write_to(&mut Cursor::new(&mut out), format)
                .map_err(|e| Finding::new(ReasonCode::CannotFit, e.to_string()))?;
            Ok(Normalized {
                target: target.clone(),
                hash: blake3::hash(&out).to_hex().to_string(),
                bytes: out,
                format: p.format,
                width: fitted.width(),
                height: fitted.height(),
            })
        })
        .collect()
}

/// The photo stage: `prepare` on blocking threads, a bounded number at once.
#[derive(Clone)]
pub struct PhotoStage {
    photos: Arc<PhotoConfig>,
    permits: Arc<Semaphore>,
}

impl PhotoStage {
    pub fn new(photos: PhotoConfig) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            photos: Arc::new(photos),
            permits: Arc::new(Semaphore::new(cores)),
        }
    }

    pub async fn prepare_file(
        &self,
        path: PathBuf,
        profiles: Vec<(String, Profile)>,
    ) -> Result<Vec<Normalized>, Finding> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let photos = self.photos.clone();
        tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&path)
                .map_err(|e| Finding::new(ReasonCode::PhotoUnreadable, e.to_string()))?;
            prepare(&bytes, &photos, &profiles)
        })
        .await
        .map_err(|e| Finding::new(ReasonCode::CorruptImage, format!("the decoder failed: {e}")))?
    }
}
