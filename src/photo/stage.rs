//! The photo stage for the async engine: reads and prepares photos on blocking threads, at most
//! one photo per core at a time, so a 100,000-person roster never holds more than a few decoded
//! photos in memory and the async runtime is never blocked by CPU work.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::Semaphore;

use super::{
    FaceHash, FaceHint, FaceSeen, Normalized, face_hash_hinted, file_too_large, prepare_hinted,
};
use crate::config::{PhotoConfig, Profile};
use crate::reason::{Finding, ReasonCode};

/// The faces the duplicate pre-pass found, by photo path: the stage that prepares the photo
/// later takes them instead of searching again.
pub type FaceHints = Arc<HashMap<PathBuf, FaceHint>>;

/// Bounded photo preparation; clones share the bound.
#[derive(Debug, Clone)]
pub struct PhotoStage {
    photos: Arc<PhotoConfig>,
    permits: Arc<Semaphore>,
    hints: FaceHints,
}

impl PhotoStage {
    /// A stage running as many photos at once as there are cores.
    pub fn new(photos: PhotoConfig) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::with_parallelism(photos, cores)
    }

    /// A stage running at most `parallel` photos at once (at least one).
    pub fn with_parallelism(photos: PhotoConfig, parallel: usize) -> Self {
        Self {
            photos: Arc::new(photos),
            permits: Arc::new(Semaphore::new(parallel.max(1))),
            hints: FaceHints::default(),
        }
    }

    /// The same stage, taking a photo's faces from `hints` where it has them.
    pub fn with_hints(self, hints: FaceHints) -> Self {
        Self { hints, ..self }
    }

    /// Reads the photo at `path` (refusing files over `photos.max_file_bytes` before reading
    /// them) and prepares it for each (target name, profile).
    pub async fn prepare_file(
        &self,
        path: PathBuf,
        profiles: Vec<(String, Profile)>,
    ) -> Result<Vec<Normalized>, Finding> {
        self.prepare_file_hashed(path, profiles).await.1
    }

    /// [`Self::prepare_file`], with what was seen of the face for the duplicate check.
    pub async fn prepare_file_hashed(
        &self,
        path: PathBuf,
        profiles: Vec<(String, Profile)>,
    ) -> (FaceSeen, Result<Vec<Normalized>, Finding>) {
        let hints = self.hints.clone();
        self.run_bounded(move |photos| {
            let (bytes, modified) = match read_limited(&path, photos.max_file_bytes) {
                Ok(read) => read,
                Err(f) => return (FaceSeen::NotLooked, Err(f)),
            };
            // Only for the file as the pre-pass read it.
            let hint = hints
                .get(&path)
                .filter(|h| h.fits(bytes.len() as u64, modified));
            let prepared = prepare_hinted(&bytes, photos, &profiles, hint);
            super::buffers::give(bytes);
            prepared
        })
        .await
        .unwrap_or_else(|e| {
            (
                FaceSeen::NotLooked,
                Err(Finding::new(
                    ReasonCode::CorruptImage,
                    format!("preparing the photo failed: {e}"),
                )),
            )
        })
    }

    /// The face hash of the photo at `path` alone ([`super::face_hash_of`]: decoded at 1/8 or
    /// the detector's size, nothing encoded); `None` when it has no face or cannot be read or
    /// decoded. With the faces found, when a stage can take them ([`FaceHint`]).
    pub async fn face_hash_file(&self, path: PathBuf) -> (Option<FaceHash>, Option<FaceHint>) {
        self.run_bounded(move |photos| {
            let Ok((bytes, modified)) = read_limited(&path, photos.max_file_bytes) else {
                return (None, None);
            };
            let (hash, hint) = face_hash_hinted(&bytes, photos);
            super::buffers::give(bytes);
            (hash, hint.map(|h| FaceHint { modified, ..h }))
        })
        .await
        .unwrap_or((None, None))
    }

    /// Runs `work` on a blocking thread once the stage has room. The permit moves into the
    /// blocking task: if the caller gives up waiting, the work still counts against the bound
    /// until it really ends.
    async fn run_bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PhotoConfig) -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the stage never closes its semaphore");
        let photos = self.photos.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&photos)
        })
        .await
    }
}

/// The file's bytes, and when it was last modified (what a [`FaceHint`] is checked against).
fn read_limited(
    path: &std::path::Path,
    max: u64,
) -> Result<(Vec<u8>, Option<SystemTime>), Finding> {
    let unreadable = |e: std::io::Error| {
        Finding::new(
            ReasonCode::PhotoUnreadable,
            format!("cannot read {}: {e}", path.display()),
        )
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let metadata = file.metadata().map_err(unreadable)?;
    let len = metadata.len();
    if len > max {
        return Err(file_too_large(len, max));
    }
    let mut bytes = super::buffers::take_empty(len as usize);
    // The file may grow between the size check and the read: never read past the limit.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > max {
        return Err(file_too_large(bytes.len() as u64, max));
    }
    Ok((bytes, metadata.modified().ok()))
}
