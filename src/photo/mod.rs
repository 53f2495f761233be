//! Photos: decode (bounded), orient, check for one face, normalize to each target's profile.
//!
//! [`prepare`] is the whole pipeline for one photo, pure and synchronous: bytes in, one
//! [`Normalized`] per target out, or the [`Finding`] that makes the photo unfit. It decodes
//! once, at the smallest scale every output allows. [`PhotoStage`] runs it for the async
//! engine: a few photos at a time per core, on blocking threads. Nothing in this module touches
//! the state DB or the network.

mod buffers;
mod check;
mod decode;
pub mod face;
mod face_hash;
mod jpeg;
#[doc(hidden)]
pub mod labelled;
mod landmarks;
mod normalize;
mod quality;
mod resize;
mod stage;
mod thumbnail;

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

pub use face_hash::{FaceHash, SAME_PHOTO};
pub use quality::Quality;
pub use stage::{FaceHints, PhotoStage};
pub use thumbnail::{thumbnail, thumbnail_marked};

use crate::config::{Crop, OutputFormat, PhotoConfig, Profile, QualityGate};
use crate::reason::{Finding, ReasonCode};

/// A photo normalized for one target: the bytes to send and what they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    pub target: String,
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    /// blake3 of `bytes`, hex.
    pub hash: String,
    /// What the quality gate measured for this target (`None`: the gate is off or no face
    /// was looked for); with `photos.quality = "warn"`, its `failing` may be non-empty.
    pub quality: Option<Quality>,
}

/// Time spent in each step of [`prepare`], added up over calls (for the benchmark and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    /// Reading the header and decoding, orientation included.
    pub decode: Duration,
    pub face_check: Duration,
    /// The quality gate's measures (landmarks, sharpness, exposure) and levelling.
    pub quality: Duration,
    pub resize: Duration,
    /// Encoding, with every try of the quality search.
    pub encode: Duration,
}

/// What [`prepare`] learnt of the photo's face, for the duplicate check (`duplicate_photo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceSeen {
    /// No face was looked for: the face check is off, or the photo failed before.
    NotLooked,
    /// Looked for, and none found.
    NotFound,
    /// The largest face's hash (whatever the face check's verdict on it).
    Hashed(FaceHash),
}

impl FaceSeen {
    /// What the state DB keeps: `None` when nothing was looked for, else the hash if any.
    pub fn looked(self) -> Option<Option<FaceHash>> {
        match self {
            Self::NotLooked => None,
            Self::NotFound => Some(None),
            Self::Hashed(h) => Some(Some(h)),
        }
    }
}

/// The faces the duplicate pre-pass found in a large JPEG's block means ([`face_hash_of`]),
/// handed to the stage that later prepares the same file, so that it does not search again.
/// The stage's own search would give the same faces: it takes its base thumbnail from the same
/// means, and the pre-pass keeps a hint only when no finer search was needed.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceHint {
    /// Largest first, in the coordinates of the means (the photo, upright, at 1/8).
    faces: Vec<face::FaceBox>,
    /// The upright width of the means.
    width: u32,
    /// The file's length and (when [`PhotoStage`] read it) modification time: a file changed
    /// since is searched again ([`FaceHint::fits`]).
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FaceHint {
    /// Whether the hint is about a file of this length and modification time.
    fn fits(&self, len: u64, modified: Option<std::time::SystemTime>) -> bool {
        self.len == len && self.modified == modified
    }
}

/// Decodes `bytes` once, checks them, and normalizes them for each (target name, profile).
/// Pure and synchronous; CPU-bound (tens of milliseconds for a 12-megapixel photo).
pub fn prepare(
    bytes: &[u8],
    photos: &PhotoConfig,
    profiles: &[(String, Profile)],
) -> Result<Vec<Normalized>, Finding> {
    prepare_timed(bytes, photos, profiles, &mut StageTimes::default())
}

/// [`prepare`], with the face's hash when a face was looked for.
pub fn prepare_hashed(
    bytes: &[u8],
    photos: &PhotoConfig,
    profiles: &[(String, Profile)],
) -> (FaceSeen, Result<Vec<Normalized>, Finding>) {
    prepare_hinted(bytes, photos, profiles, None)
}

/// [`prepare_hashed`], taking the faces from `hint` instead of searching for them (the caller
/// knows the hint is about this file; [`PhotoStage`] checks its length and modification time).
/// A hint whose block means are not the decoded photo's is left aside.
pub fn prepare_hinted(
    bytes: &[u8],
    photos: &PhotoConfig,
    profiles: &[(String, Profile)],
    hint: Option<&FaceHint>,
) -> (FaceSeen, Result<Vec<Normalized>, Finding>) {
    let mut seen = FaceSeen::NotLooked;
    let result = guarded(|| {
        prepare_checked(
            bytes,
            photos,
            profiles,
            &mut StageTimes::default(),
            &mut seen,
            hint,
        )
    });
    (seen, result)
}

/// The hash of the photo's largest face, or `None` when there is no face or the photo cannot
/// be decoded: what the duplicate check needs of a photo `prepare` has not seen. Decodes a
/// large JPEG at 1/8 (its block means) when the face is large enough to be found there, else at
/// the face detector's size, whatever the targets' profiles; nothing is resized for a target or
/// encoded.
pub fn face_hash_of(bytes: &[u8], photos: &PhotoConfig) -> Option<FaceHash> {
    face_hash_hinted(bytes, photos).0
}

/// [`face_hash_of`], with the faces found when they came from the block means (see
/// [`FaceHint`]).
pub fn face_hash_hinted(
    bytes: &[u8],
    photos: &PhotoConfig,
) -> (Option<FaceHash>, Option<FaceHint>) {
    guarded(|| {
        if bytes.len() as u64 > photos.max_file_bytes {
            return Ok((None, None));
        }
        let Ok(header) = decode::header(bytes, photos) else {
            return Ok((None, None));
        };
        // A large JPEG decoded at 1/8 (its blocks' means: entropy decoding and next to nothing
        // else) is the face check's base thumbnail already, and that is all the detector needs
        // when the face is as large as in most portraits.
        if let Some(need) = means_size(&header)
            && let Ok(decoded) = decode::decode(bytes, &header, photos, need)
            && let Some(faces) = check::find_faces_in_base(&decoded.pixels, photos)
        {
            let hash = faces.first().map(|f| face_hash::face_hash(&decoded, f));
            let hint = FaceHint {
                faces,
                width: decoded.dimensions().0,
                len: bytes.len() as u64,
                modified: None,
            };
            return Ok((hash, Some(hint)));
        }
        let need = detector_size(&header, photos);
        let Ok(decoded) = decode::decode(bytes, &header, photos, need) else {
            return Ok((None, None));
        };
        let faces = check::find_faces(&decoded.pixels, photos);
        Ok((
            faces.first().map(|f| face_hash::face_hash(&decoded, f)),
            None,
        ))
    })
    .unwrap_or((None, None))
}

/// The faces of `hint` in the decoded image's coordinates, when the image has the same block
/// means (a JPEG decoded by the fast path).
fn hinted_faces(hint: &FaceHint, decoded: &decode::Decoded) -> Option<Vec<face::FaceBox>> {
    let decode::Pixels::Planes { dc: Some(dc), .. } = &decoded.pixels else {
        return None;
    };
    if dc.width() != hint.width {
        return None;
    }
    Some(check::scaled(
        hint.faces.clone(),
        decoded.dimensions().0,
        hint.width,
    ))
}

/// [`prepare`], adding the time of each step to `times`.
pub fn prepare_timed(
    bytes: &[u8],
    photos: &PhotoConfig,
    profiles: &[(String, Profile)],
    times: &mut StageTimes,
) -> Result<Vec<Normalized>, Finding> {
    guarded(|| {
        prepare_checked(
            bytes,
            photos,
            profiles,
            times,
            &mut FaceSeen::NotLooked,
            None,
        )
    })
}

/// Runs `work`, turning a panic into a `corrupt_image` finding: the decoders are not ours, and a
/// panic on a hostile file must cost one photo, not the run.
fn guarded<T>(work: impl FnOnce() -> Result<T, Finding>) -> Result<T, Finding> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        Err(Finding::new(
            ReasonCode::CorruptImage,
            format!("the image decoder failed on this file: {what}"),
        ))
    })
}

fn prepare_checked(
    bytes: &[u8],
    photos: &PhotoConfig,
    profiles: &[(String, Profile)],
    times: &mut StageTimes,
    seen: &mut FaceSeen,
    hint: Option<&FaceHint>,
) -> Result<Vec<Normalized>, Finding> {
    if bytes.len() as u64 > photos.max_file_bytes {
        return Err(file_too_large(bytes.len() as u64, photos.max_file_bytes));
    }
    let started = Instant::now();
    let header = decode::header(bytes, photos)?;
    let need = decode_size(&header, photos, profiles);
    let decoded = decode::decode(bytes, &header, photos, need)?;
    times.decode += started.elapsed();
    let (width, height) = decoded.dimensions();
    let started = Instant::now();
    let face = if photos.face_check || photos.crop == Crop::Portrait {
        let faces = hint
            .and_then(|h| hinted_faces(h, &decoded))
            .unwrap_or_else(|| check::find_faces(&decoded.pixels, photos));
        let verdict = check::classify(&faces, width.min(height), photos);
        match verdict {
            // Hashed below, with the landmarks the gate finds anyway.
            Ok(face) => Some(face),
            Err(finding) => {
                // The largest face, for the duplicate check, even when it cannot be sent.
                *seen = faces.first().map_or(FaceSeen::NotFound, |f| {
                    FaceSeen::Hashed(face_hash::face_hash(&decoded, f))
                });
                if photos.face_check {
                    times.face_check += started.elapsed();
                    return Err(finding);
                }
                None
            }
        }
    } else {
        None
    };
    times.face_check += started.elapsed();
    let region = match (photos.crop, face) {
        (Crop::None, _) => resize::Region::of(width, height),
        (Crop::Portrait, Some(face)) => {
            normalize::portrait(width, height, &face, photos.portrait_margin)
        }
        (Crop::Portrait, None) => normalize::centred_portrait(width, height),
    };
    let started = Instant::now();
    let measures = match face {
        Some(face) if photos.quality != QualityGate::Off => Some(quality::measure(&decoded, &face)),
        _ => None,
    };
    if let Some(face) = &face {
        *seen = FaceSeen::Hashed(match &measures {
            Some(m) => face_hash::face_hash_in(&decoded, m.hash_square),
            None => face_hash::face_hash(&decoded, face),
        });
    }
    times.quality += started.elapsed();
    // Targets with the same profile share one encoding.
    let mut done: HashMap<&Profile, (normalize::Encoded, Option<Quality>)> = HashMap::new();
    let mut out = Vec::with_capacity(profiles.len());
    for (target, profile) in profiles {
        let (encoded, quality) = match done.get(profile) {
            Some(e) => e.clone(),
            None => {
                let level = measures
                    .as_ref()
                    .and_then(|m| quality::level(m, &profile.requirements));
                let e = normalize::encode_for(
                    &decoded,
                    region,
                    level,
                    profile,
                    photos.min_short_side,
                    target,
                    times,
                )?;
                let quality = measures.as_ref().map(|m| {
                    let scale = e.width as f32 / region.width as f32;
                    m.for_target(
                        scale,
                        level.map_or(0.0, |l| l.degrees),
                        &profile.requirements,
                    )
                });
                if photos.quality == QualityGate::Refuse
                    && let Some(q) = &quality
                    && let Some(finding) = quality::finding(q, &profile.requirements, target)
                {
                    return Err(finding.with_quality(q.clone()));
                }
                done.insert(profile, (e.clone(), quality.clone()));
                (e, quality)
            }
        };
        out.push(Normalized {
            target: target.clone(),
            hash: blake3::hash(&encoded.bytes).to_hex().to_string(),
            bytes: encoded.bytes,
            format: profile.format,
            width: encoded.width,
            height: encoded.height,
            quality,
        });
    }
    Ok(out)
}

/// The smallest upright size to decode at: every output's size (they never exceed the
/// source), and enough for the face detector's finest pass.
fn decode_size(
    header: &decode::Header,
    photos: &PhotoConfig,
    profiles: &[(String, Profile)],
) -> (u32, u32) {
    let (w, h) = header.upright_size();
    if photos.crop == Crop::Portrait {
        // The crop may be a small part of the photo: its outputs need the full resolution.
        return (w, h);
    }
    let mut need = (1, 1);
    for (_, p) in profiles {
        let (pw, ph) = normalize::fit(w, h, p.max_width, p.max_height);
        need = (need.0.max(pw), need.1.max(ph));
    }
    if photos.face_check {
        let (fw, fh) = detector_size(header, photos);
        need = (need.0.max(fw), need.1.max(fh));
    }
    need
}

/// The upright size of a JPEG at 1/8, when that is at least the face check's base thumbnail.
fn means_size(header: &decode::Header) -> Option<(u32, u32)> {
    if header.format != image::ImageFormat::Jpeg {
        return None;
    }
    let (w, h) = header.upright_size();
    let (w, h) = (w.div_ceil(8), h.div_ceil(8));
    // Over, not at: a subsampled direction loses a pixel to an even crop.
    (w.min(h) > check::BASE_SHORT).then_some((w, h))
}

/// The upright size the face detector's finest pass needs.
fn detector_size(header: &decode::Header, photos: &PhotoConfig) -> (u32, u32) {
    let (w, h) = header.upright_size();
    let short = w.min(h);
    let want = check::needed_short_side(photos).min(short);
    let k = f64::from(want) / f64::from(short);
    (
        ((f64::from(w) * k).ceil() as u32).min(w),
        ((f64::from(h) * k).ceil() as u32).min(h),
    )
}

fn file_too_large(len: u64, max: u64) -> Finding {
    Finding::new(
        ReasonCode::ImageTooLarge,
        format!(
            "the file is {:.1} MB, over the limit of {:.1} MB (photos.max_file_bytes)",
            len as f64 / 1_048_576.0,
            max as f64 / 1_048_576.0
        ),
    )
}

#[cfg(test)]
mod tests;
