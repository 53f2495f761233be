//! `photos.pick = "best"`: of a person's several candidate photos, the one to send.
//!
//! A person with several candidates has one source hash for the whole set (each file's blake3,
//! in path order), so an unchanged set is unchanged and any added, changed or removed
//! candidate decides again. Only a person with something to upload is decided: every
//! candidate goes through the photo pipeline for each upload target's profile, the quality
//! gate measuring even when `photos.quality = "off"`, and gets a verdict per target. When some
//! candidates pass at every upload target, the person gets one photo: candidates refused at any
//! target are out, and of the others the best [`score`] is sent (a photo sent with a quality
//! warning only when no candidate is free of them). When none passes everywhere, each target
//! gets the best that passes there (a target where none does is invalid). The person's stored
//! photo is one path, the choice of the first target in target order that has one, with the
//! set's total size and a digest of its listing in place of one file's size and mtime, so that
//! the next night finds the set unchanged without reading a photo.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt as _;
use serde::Serialize;

use super::{Action, Plan};
use crate::config::{Config, Profile, QualityGate};
use crate::matching::PhotoFile;
use crate::photo::{PhotoStage, Quality};
use crate::reason::{Finding, ReasonCode};
use crate::store::PersonRecord;

/// The rows with several candidate photos, by row index.
#[derive(Debug, Default)]
pub(super) struct Sets(HashMap<usize, Set>);

/// One person's candidates, in path order.
#[derive(Debug)]
pub(super) struct Set {
    files: Vec<PhotoFile>,
    /// The candidates' total size, stored as the person's photo size.
    size: u64,
    /// A digest of the candidates' paths, sizes and mtimes, stored as the person's photo mtime:
    /// the same listing, the same photos (as one file's size and mtime say it of one file).
    listing: i64,
    /// The candidate chosen on an earlier run, as the state DB remembers it.
    stored: Option<usize>,
}

impl Sets {
    pub(super) fn new(several: HashMap<usize, Vec<PhotoFile>>) -> Self {
        Self(
            several
                .into_iter()
                .map(|(i, files)| {
                    let size = files.iter().map(|f| f.size).sum();
                    let mut digest = blake3::Hasher::new();
                    for f in &files {
                        digest.update(f.relative.as_bytes());
                        digest.update(&[0]);
                        digest.update(&f.size.to_le_bytes());
                        digest.update(&f.mtime_ns.to_le_bytes());
                    }
                    let bytes = digest.finalize();
                    let listing = i64::from_le_bytes(
                        bytes.as_bytes()[..8].try_into().expect("8 of 32 bytes"),
                    );
                    let set = Set {
                        files,
                        size,
                        listing,
                        stored: None,
                    };
                    (i, set)
                })
                .collect(),
        )
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `stored_path` is the photo stored for row `i` (a candidate of its set; then
    /// remembered as the earlier choice), when row `i` has several candidates; `None` when it
    /// has not.
    pub(super) fn remember(&mut self, i: usize, stored_path: Option<&str>) -> Option<bool> {
        let set = self.0.get_mut(&i)?;
        set.stored = set
            .files
            .iter()
            .position(|f| Some(f.relative.as_str()) == stored_path);
        Some(set.stored.is_some())
    }

    /// Makes each set's row photo what the state DB is compared with: the earlier choice (else
    /// the first candidate), with the set's size and listing.
    pub(super) fn stand_in(&self, photos: &mut [Result<PhotoFile, Finding>]) {
        for (&i, set) in &self.0 {
            photos[i] = Ok(PhotoFile {
                size: set.size,
                mtime_ns: set.listing,
                ..set.files[set.stored.unwrap_or(0)].clone()
            });
        }
    }

    /// Hashes the sets whose listing changed (the others keep the stored hash) into `hashes`.
    pub(super) async fn hash(
        &self,
        cached: impl Fn(usize) -> bool,
        hashes: &mut [Result<Arc<str>, Finding>],
    ) {
        let jobs = self
            .0
            .iter()
            .filter(|(i, _)| !cached(**i))
            .map(|(&i, set)| {
                let files: Vec<(String, std::path::PathBuf)> = set
                    .files
                    .iter()
                    .map(|f| (f.relative.clone(), f.path.clone()))
                    .collect();
                async move {
                    let hashed = tokio::task::spawn_blocking(move || set_hash(&files))
                        .await
                        .map_err(|e| std::io::Error::other(e.to_string()))
                        .and_then(|r| r);
                    (i, hashed)
                }
            });
        // A few sets at a time, as single photos are hashed.
        let parallel = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
        let mut results = futures::stream::iter(jobs).buffer_unordered(parallel);
        while let Some((i, hashed)) = results.next().await {
            hashes[i] = hashed.map(Arc::from).map_err(|e| {
                Finding::new(
                    ReasonCode::PhotoUnreadable,
                    format!("cannot read a candidate photo: {e}"),
                )
            });
        }
    }
}

impl Sets {
    /// Writes the photo chosen for each person in `picked` (row index, photo) into their
    /// record in `to_save`, adding one when only the choice changed, so the next run finds
    /// the choice with the set. One path a person, whatever each target was sent: when the
    /// choice differs by target, [`choose`] gives the first target's (by name) that has one.
    /// Which it is changes nothing the next night: the set's hash, size and listing are
    /// compared, and any candidate is taken as the stored choice.
    pub(super) fn save_choices(
        &self,
        to_save: &mut Vec<PersonRecord>,
        plan: &Plan,
        picked: Vec<(usize, Arc<str>)>,
        targets: usize,
    ) {
        if picked.is_empty() {
            return;
        }
        let at: HashMap<String, usize> = to_save
            .iter()
            .enumerate()
            .map(|(k, p)| (p.person_id.clone(), k))
            .collect();
        for (i, photo) in picked {
            let set = &self.0[&i];
            let item = &plan.items[i * targets];
            match at.get(&*item.id) {
                Some(&k) => to_save[k].photo_path = Some(photo.to_string()),
                None if set.stored.is_some_and(|s| *set.files[s].relative == *photo) => {}
                None => to_save.push(PersonRecord {
                    person_id: item.id.to_string(),
                    name: item.name.to_string(),
                    roster_row: Some(item.row as i64),
                    photo_path: Some(photo.to_string()),
                    photo_size: Some(set.size as i64),
                    photo_mtime_ns: Some(set.listing),
                    photo_hash: item.source_hash.as_deref().map(str::to_string),
                }),
            }
        }
    }
}

/// The source hash of several candidates: blake3 of `relative \0 blake3 \n` for each, in path
/// order.
fn set_hash(files: &[(String, std::path::PathBuf)]) -> std::io::Result<String> {
    let mut set = blake3::Hasher::new();
    for (relative, path) in files {
        let hash = super::hash_file(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{relative}: {e}")))?;
        set.update(relative.as_bytes());
        set.update(&[0]);
        set.update(hash.as_bytes());
        set.update(b"\n");
    }
    Ok(set.finalize().to_hex().to_string())
}

/// What the choice among a person's candidates was, for `plan --format json` and the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Picked {
    /// The candidate sent; `None`: none passes (the person, or with `target`, that target's
    /// item, is invalid).
    pub chosen: Option<String>,
    /// Why, in a sentence.
    pub why: String,
    /// Every candidate, in path order.
    pub candidates: Vec<Candidate>,
    /// The one target this choice is for, when no candidate passes at every upload target and
    /// each gets its own (`passes` and `reason` are then this target's); `None`: one choice
    /// for all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// One candidate's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub photo: String,
    /// Why it is out (or, when it passes, the measures outside a requirement that
    /// `photos.quality = "warn"` or `"off"` lets through).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<ReasonCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// [`score`], 0 to 100, when the face was measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measures: Option<Measures>,
    pub passes: bool,
    /// The upload targets that refuse it, in target order (empty: it passes at every one).
    pub refused_for: Vec<String>,
}

/// The measures the score is made of (the eye distance: the least over the targets the choice
/// is for, or that one target's when each target gets its own).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Measures {
    pub eye_distance: f32,
    pub sharpness: f32,
    pub yaw: f32,
    pub roll: f32,
    pub face_luma: f32,
}

// The measures are rounded and never NaN, as [`Quality`]'s.
impl Eq for Picked {}
impl Eq for Candidate {}
impl Eq for Measures {}

impl Picked {
    /// The line the table and the log show: `picked 'E1001 (2).jpg' of 3: it passes and is
    /// sharpest (sharpness 41 vs 23); 'E1001.jpg' refused: face_blurry`; for one target
    /// (`picked 'E1001 (2).jpg' of 2 for feishu: ...; 'E1001.jpg' refused for feishu: ...`).
    pub fn line(&self) -> String {
        let at = self
            .target
            .as_deref()
            .map(|t| format!(" for {t}"))
            .unwrap_or_default();
        let mut line = match &self.chosen {
            Some(c) => format!(
                "picked '{c}' of {}{at}: {}",
                self.candidates.len(),
                self.why
            ),
            None => self.why.clone(),
        };
        for c in self.candidates.iter().filter(|c| !c.passes) {
            if let Some(code) = c.reason_code {
                line.push_str(&format!("; '{}' refused{at}: {code}", c.photo));
            }
        }
        line
    }
}

/// A face's score, 0 to 100, the sum of five parts, each the share of its best:
/// sharpness 40 (sharpness 80 or more scores it all), the face's size 20 (the eyes 100 pixels
/// apart or more, at the smallest target), facing the camera 15 (yaw 0; 45 degrees or more
/// scores none), upright 10 (roll 0; 45 degrees or more none) and exposure 15 (mean brightness
/// 128; 0 or 255 none).
pub(crate) fn score(m: &Measures) -> f32 {
    parts(m).iter().sum::<f32>()
}

fn parts(m: &Measures) -> [f32; 5] {
    let share = |v: f32, full: f32| (v / full).clamp(0.0, 1.0);
    [
        40.0 * share(m.sharpness, 80.0),
        20.0 * share(m.eye_distance, 100.0),
        15.0 * (1.0 - share(m.yaw.abs(), 45.0)),
        10.0 * (1.0 - share(m.roll.abs(), 45.0)),
        15.0 * (1.0 - share((m.face_luma - 128.0).abs(), 128.0)),
    ]
}

/// Why `chosen` beats `other`: the part of the score it gains most on (`None`: a tie).
fn reason_against(chosen: &Measures, other: &Measures) -> Option<String> {
    let (a, b) = (parts(chosen), parts(other));
    let (best, gain) = (0..5)
        .map(|k| (k, a[k] - b[k]))
        .fold((0, f32::MIN), |acc, x| if x.1 > acc.1 { x } else { acc });
    if gain <= 0.0 {
        return None;
    }
    Some(match best {
        0 => format!(
            "is sharpest (sharpness {:.0} vs {:.0})",
            chosen.sharpness, other.sharpness
        ),
        1 => format!(
            "shows the face largest (eyes {:.0} vs {:.0} pixels apart)",
            chosen.eye_distance, other.eye_distance
        ),
        2 => format!(
            "faces the camera best (turned {:.0} vs {:.0} degrees)",
            chosen.yaw.abs(),
            other.yaw.abs()
        ),
        3 => format!(
            "holds the head most upright (tilted {:.0} vs {:.0} degrees)",
            chosen.roll.abs(),
            other.roll.abs()
        ),
        _ => format!(
            "is best exposed (brightness {:.0} vs {:.0} of 255)",
            chosen.face_luma, other.face_luma
        ),
    })
}

/// What the pipeline made of a candidate at one upload target: what the gate measured there
/// (`None`: no face measured), or why it refuses the candidate there.
pub(crate) type AtTarget = Result<Option<Quality>, Finding>;

/// One target's (or every target's) choice: why, and when none passes, the closest candidate
/// and the finding its item is invalid with.
pub(crate) type Decided = (Arc<Picked>, Option<(String, Finding)>);

/// Decides among `files` (path order) from each one's verdict at each of `targets` (upload
/// targets, target order): `verdicts[candidate][target]`. Returns one decision per target:
/// the same one for all when some candidate passes at every target or none passes at any;
/// otherwise each target's own, among the candidates that pass there.
pub(crate) fn decide(
    files: &[&str],
    targets: &[&str],
    verdicts: Vec<Vec<AtTarget>>,
) -> Vec<Decided> {
    let refused_for: Vec<Vec<String>> = verdicts
        .iter()
        .map(|v| {
            targets
                .iter()
                .zip(v)
                .filter(|(_, at)| at.is_err())
                .map(|(t, _)| t.to_string())
                .collect()
        })
        .collect();
    let everywhere = refused_for.iter().any(Vec::is_empty);
    let somewhere = refused_for.iter().any(|r| r.len() < targets.len());
    if everywhere || !somewhere {
        let (candidates, findings): (Vec<_>, Vec<_>) = files
            .iter()
            .zip(&verdicts)
            .zip(&refused_for)
            .map(|((photo, v), r)| candidate(photo, &v.iter().collect::<Vec<_>>(), r))
            .unzip();
        let (picked, finding) = among(candidates, findings, None);
        let picked = Arc::new(picked);
        return vec![(picked, finding); targets.len()];
    }
    targets
        .iter()
        .enumerate()
        .map(|(t, target)| {
            let (candidates, findings): (Vec<_>, Vec<_>) = files
                .iter()
                .zip(&verdicts)
                .zip(&refused_for)
                .map(|((photo, v), r)| candidate(photo, &[&v[t]], r))
                .unzip();
            let (picked, finding) = among(candidates, findings, Some(target));
            (Arc::new(picked), finding)
        })
        .collect()
}

/// One candidate's verdict over `verdicts` (one target's, or every target's: it passes only
/// if every one does, with the least eye distance), and its finding when refused (the first
/// target's that refuses it).
fn candidate(
    photo: &str,
    verdicts: &[&AtTarget],
    refused_for: &[String],
) -> (Candidate, Option<Finding>) {
    let photo = photo.to_string();
    let refused_for = refused_for.to_vec();
    if let Some(Err(f)) = verdicts.iter().find(|v| v.is_err()) {
        let measures = f.quality.as_deref().and_then(|q| measures_of(&[q]));
        let candidate = Candidate {
            photo,
            reason_code: Some(f.code),
            reason: Some(f.message.clone()),
            score: measures.as_ref().map(rounded_score),
            measures,
            passes: false,
            refused_for,
        };
        return (candidate, Some(f.clone()));
    }
    let qualities: Vec<&Quality> = verdicts
        .iter()
        .filter_map(|v| v.as_ref().ok()?.as_ref())
        .collect();
    let measures = measures_of(&qualities);
    let failing = qualities
        .iter()
        .flat_map(|q| q.failing.iter())
        .next()
        .copied();
    let candidate = Candidate {
        photo,
        reason_code: failing,
        reason: None,
        score: measures.as_ref().map(rounded_score),
        measures,
        passes: true,
        refused_for,
    };
    (candidate, None)
}

fn rounded_score(m: &Measures) -> f32 {
    (score(m) * 10.0).round() / 10.0
}

/// Chooses among `candidates` (path order; `findings`: each refused one's): passing without a
/// warning first, then by score, then the first by path; when none passes, the closest. For
/// `target` alone, when the choice differs by target.
fn among(
    candidates: Vec<Candidate>,
    findings: Vec<Option<Finding>>,
    target: Option<&str>,
) -> (Picked, Option<(String, Finding)>) {
    let at = target.map(|t| format!(" for {t}")).unwrap_or_default();
    let target = target.map(str::to_string);
    // Why one photo does not go to every target.
    let differs = if target.is_some() {
        " (no candidate passes at every target: each gets the best that passes there)"
    } else {
        ""
    };
    // Passing without a warning first, then by score; a tie goes to the first by path.
    let rank = |c: &Candidate| (c.reason_code.is_none(), c.score.unwrap_or(0.0));
    let mut order: Vec<usize> = (0..candidates.len())
        .filter(|&k| candidates[k].passes)
        .collect();
    order.sort_by(|&x, &y| {
        let (a, b) = (rank(&candidates[x]), rank(&candidates[y]));
        b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then(x.cmp(&y))
    });
    let n = candidates.len();
    match order.as_slice() {
        [] => {
            // The one that came closest: a face measured (a quality finding) before one that
            // was not, then by score, then by path.
            let best = (0..n)
                .max_by(|&x, &y| {
                    let key = |k: usize| {
                        (
                            candidates[k].measures.is_some(),
                            candidates[k].score.unwrap_or(0.0),
                        )
                    };
                    let (a, b) = (key(x), key(y));
                    a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(y.cmp(&x))
                })
                .expect("several candidates");
            let f = findings[best]
                .clone()
                .expect("a refused candidate has a finding");
            let why = format!(
                "none of the {n} candidate photos passes{at}; the closest, '{}': {}",
                candidates[best].photo, f.message
            );
            let mut finding = Finding::new(f.code, why.clone());
            finding.quality = f.quality;
            let closest = candidates[best].photo.clone();
            let picked = Picked {
                chosen: None,
                why,
                candidates,
                target,
            };
            (picked, Some((closest, finding)))
        }
        [only] => {
            let why = match candidates[*only].reason_code {
                Some(code) => format!("it is the only one that passes (with a warning: {code})"),
                None => "it is the only one that passes".to_string(),
            };
            (
                Picked {
                    chosen: Some(candidates[*only].photo.clone()),
                    why: format!("{why}{differs}"),
                    candidates,
                    target,
                },
                None,
            )
        }
        [first, second, ..] => {
            let (a, b) = (&candidates[*first], &candidates[*second]);
            let why = match (&a.measures, &b.measures, a.reason_code, b.reason_code) {
                (_, _, None, Some(code)) => {
                    format!("it passes without a warning ('{}' has {code})", b.photo)
                }
                (Some(ma), Some(mb), _, _) => {
                    let lead = match a.reason_code {
                        Some(code) => format!("it passes with a warning ({code}) and"),
                        None => "it passes and".to_string(),
                    };
                    match reason_against(ma, mb).filter(|_| a.score != b.score) {
                        Some(than) => format!("{lead} {than}"),
                        None => {
                            format!("it scores as well as '{}' and comes first by name", b.photo)
                        }
                    }
                }
                _ => "it passes and comes first by name".to_string(),
            };
            (
                Picked {
                    chosen: Some(a.photo.clone()),
                    why: format!("{why}{differs}"),
                    candidates,
                    target,
                },
                None,
            )
        }
    }
}

/// The measures of one face over the targets (the eye distance: the least).
fn measures_of(qualities: &[&Quality]) -> Option<Measures> {
    let first = qualities.first()?;
    Some(Measures {
        eye_distance: qualities
            .iter()
            .map(|q| q.eye_distance)
            .fold(f32::MAX, f32::min),
        sharpness: first.sharpness,
        yaw: first.yaw,
        roll: first.roll,
        face_luma: first.face_luma,
    })
}

/// What the pipeline makes of one candidate at each of `profiles`' targets (one decode for
/// all; as in `check_photos`, a finding that may be one target's alone is looked at again for
/// each target on its own, so it refuses the candidate only where it holds).
async fn verdicts(
    stage: &PhotoStage,
    path: &std::path::Path,
    profiles: &[(String, Profile)],
) -> Vec<AtTarget> {
    match stage
        .prepare_file(path.to_path_buf(), profiles.to_vec())
        .await
    {
        Ok(outs) => outs.into_iter().map(|o| Ok(o.quality)).collect(),
        Err(f) if f.code.may_be_one_targets() && profiles.len() > 1 => {
            let mut each = Vec::with_capacity(profiles.len());
            for p in profiles {
                let out = stage
                    .prepare_file(path.to_path_buf(), vec![p.clone()])
                    .await;
                each.push(out.map(|mut outs| outs.pop().and_then(|o| o.quality)));
            }
            each
        }
        Err(f) => vec![Err(f); profiles.len()],
    }
}

/// Chooses for every person with several candidates and something to upload: each upload
/// item's photo becomes the one chosen for its target (with `picked` saying why), or the item
/// turns invalid when none passes there (with the closest candidate as its photo). The
/// person's other items get the person's photo: one choice for all, or when the choice
/// differs by target, the first target's (in target order) that has one. Returns the rows
/// decided and the person's photo, the one the state DB keeps.
pub(super) async fn choose(
    config: &Config,
    plan: &mut Plan,
    sets: &Sets,
    targets: usize,
) -> Vec<(usize, Arc<str>)> {
    if sets.is_empty() || targets == 0 {
        return Vec::new();
    }
    // Measured even with the gate off: a candidate needs a score. "warn" refuses nothing.
    let mut photos = config.photos.clone();
    if photos.quality == QualityGate::Off {
        photos.quality = QualityGate::Warn;
    }
    let stage = PhotoStage::new(photos);
    let mut rows: Vec<usize> = sets.0.keys().copied().collect();
    rows.sort_unstable();
    let mut jobs = Vec::new();
    for i in rows {
        // The upload items (plan item indexes) and their targets' profiles, in target order.
        let (uploads, profiles): (Vec<usize>, Vec<(String, Profile)>) = (i * targets
            ..(i + 1) * targets)
            .filter(|&k| plan.items[k].action == Action::Upload)
            .filter_map(|k| {
                let target = &plan.items[k].target;
                config
                    .delivery(target)
                    .map(|d| (k, (target.to_string(), d.profile.clone())))
            })
            .unzip();
        if profiles.is_empty() {
            continue;
        }
        let set = &sets.0[&i];
        let stage = stage.clone();
        let files: Vec<(String, std::path::PathBuf)> = set
            .files
            .iter()
            .map(|f| (f.relative.clone(), f.path.clone()))
            .collect();
        jobs.push(async move {
            let verdicts = futures::future::join_all(
                files
                    .iter()
                    .map(|(_, path)| verdicts(&stage, path, &profiles)),
            )
            .await;
            let names: Vec<&str> = files.iter().map(|(r, _)| r.as_str()).collect();
            let targets: Vec<&str> = profiles.iter().map(|(t, _)| t.as_str()).collect();
            (i, uploads, decide(&names, &targets, verdicts))
        });
    }
    let mut chosen = Vec::new();
    let mut results = futures::stream::iter(jobs).buffer_unordered(4);
    while let Some((i, uploads, decided)) = results.next().await {
        let id = plan.items[i * targets].id.clone();
        let photo_of = |(picked, finding): &Decided| -> Arc<str> {
            match (&picked.chosen, finding) {
                (Some(c), _) => Arc::from(c.as_str()),
                (None, Some((closest, _))) => Arc::from(closest.as_str()),
                (None, None) => unreachable!("a choice or a finding"),
            }
        };
        for (k, d) in decided.iter().enumerate() {
            if k == 0 || !Arc::ptr_eq(&d.0, &decided[k - 1].0) {
                tracing::info!("{id}: {}", d.0.line());
            }
        }
        let person = decided
            .iter()
            .find(|(picked, _)| picked.chosen.is_some())
            .unwrap_or(&decided[0]);
        let person_photo = photo_of(person);
        for k in i * targets..(i + 1) * targets {
            let item = &mut plan.items[k];
            let Some(d) = uploads.iter().position(|&u| u == k).map(|at| &decided[at]) else {
                item.photo = Some(person_photo.clone());
                // A choice made for another target says nothing of this one.
                item.picked = person.0.target.is_none().then(|| person.0.clone());
                continue;
            };
            item.photo = Some(photo_of(d));
            item.picked = Some(d.0.clone());
            if let Some((_, f)) = &d.1 {
                item.action = Action::Invalid;
                item.quality = f.quality.clone();
                item.finding = Some(Finding::new(f.code, f.message.clone()));
            }
        }
        chosen.push((i, person_photo));
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A candidate the pipeline passed, with these measures (and failing codes).
    fn passed(sharpness: f32, eyes: f32, yaw: f32, failing: &[ReasonCode]) -> AtTarget {
        Ok(Some(quality(sharpness, eyes, yaw, failing)))
    }

    fn quality(sharpness: f32, eyes: f32, yaw: f32, failing: &[ReasonCode]) -> Quality {
        Quality {
            eye_distance: eyes,
            roll: 0.0,
            levelled: 0.0,
            yaw,
            pitch: 0.0,
            sharpness,
            face_luma: 128.0,
            dark_share: 0.0,
            bright_share: 0.0,
            face_fill: 0.2,
            face_centre: [0.5, 0.5],
            landmark_score: 0.9,
            failing: failing.to_vec(),
        }
    }

    fn refused(code: ReasonCode) -> AtTarget {
        Err(Finding::new(code, format!("t: {code}")))
    }

    /// The candidate chosen (or `None`) and the sentence's words, with one target.
    fn check(prepared: Vec<AtTarget>, chosen: Option<&str>, words: &[&str]) {
        let files = ["a.jpg", "b.jpg", "c.jpg"];
        let n = prepared.len();
        let verdicts = prepared.into_iter().map(|p| vec![p]).collect();
        let mut decided = decide(&files[..n], &["t"], verdicts);
        assert_eq!(decided.len(), 1);
        let (picked, finding) = decided.remove(0);
        assert_eq!(picked.chosen.as_deref(), chosen);
        assert_eq!(finding.is_some(), chosen.is_none());
        let line = picked.line();
        for w in words {
            assert!(line.contains(w), "`{line}` should say `{w}`");
        }
    }

    #[test]
    fn the_best_passing_candidate_is_chosen_and_said_why() {
        use ReasonCode::*;
        check(
            vec![
                refused(FaceBlurry),
                passed(23.0, 80.0, 0.0, &[]),
                passed(41.0, 80.0, 0.0, &[]),
            ],
            Some("c.jpg"),
            &[
                "picked 'c.jpg' of 3",
                "sharpest (sharpness 41 vs 23)",
                "'a.jpg' refused: face_blurry",
            ],
        );
        check(
            vec![passed(60.0, 40.0, 0.0, &[]), passed(60.0, 90.0, 0.0, &[])],
            Some("b.jpg"),
            &["largest (eyes 90 vs 40"],
        );
        check(
            vec![passed(60.0, 90.0, 20.0, &[]), passed(60.0, 90.0, -2.0, &[])],
            Some("b.jpg"),
            &["faces the camera best (turned 2 vs 20"],
        );
        // A tie goes to the first by path.
        check(
            vec![passed(60.0, 90.0, 0.0, &[]), passed(60.0, 90.0, 0.0, &[])],
            Some("a.jpg"),
            &["scores as well as 'b.jpg' and comes first by name"],
        );
        check(
            vec![
                refused(NoFace),
                passed(30.0, 50.0, 0.0, &[]),
                refused(MultipleFaces),
            ],
            Some("b.jpg"),
            &["only one that passes", "'c.jpg' refused: multiple_faces"],
        );
        // photos.quality = "warn": a warning loses to a clean photo whatever the score.
        check(
            vec![
                passed(90.0, 90.0, 0.0, &[FaceTurned]),
                passed(20.0, 50.0, 0.0, &[]),
            ],
            Some("b.jpg"),
            &["without a warning ('a.jpg' has face_turned)"],
        );
    }

    #[test]
    fn none_passing_gives_the_closest_candidates_finding() {
        use ReasonCode::*;
        let blurry = Err(Finding::new(FaceBlurry, "t: blurred").with_quality(quality(
            5.0,
            80.0,
            0.0,
            &[FaceBlurry],
        )));
        let mut decided = decide(
            &["a.jpg", "b.jpg"],
            &["t"],
            vec![vec![refused(NoFace)], vec![blurry]],
        );
        let (picked, finding) = decided.remove(0);
        let (closest, finding) = finding.expect("nobody passes");
        assert_eq!(picked.chosen, None);
        assert_eq!(closest, "b.jpg");
        assert_eq!(finding.code, FaceBlurry);
        assert!(finding.quality.is_some());
        assert!(
            finding
                .message
                .contains("none of the 2 candidate photos passes")
                && finding.message.contains("'b.jpg': t: blurred"),
            "{}",
            finding.message
        );
    }

    /// A verdict at one of two targets: `+` passes (sharpness 30 + the number's tens), `e` is
    /// refused as eyes_too_close, `n` as no_face.
    fn at(v: &str, target: &str) -> AtTarget {
        use ReasonCode::*;
        match v {
            "n" => Err(Finding::new(NoFace, format!("{target}: no face"))),
            "e" => Err(Finding::new(EyesTooClose, format!("{target}: eyes"))
                .with_quality(quality(40.0, 20.0, 0.0, &[EyesTooClose]))),
            sharp => Ok(Some(quality(sharp.parse().unwrap(), 80.0, 0.0, &[]))),
        }
    }

    /// Candidates a.jpg, b.jpg, ... with their verdicts at feishu and vzicloud, and what each
    /// target gets: the photo, or `!closest` when none passes there.
    fn check_targets(verdicts: &[(&str, &str)], expected: [&str; 2]) -> Vec<Decided> {
        let files = ["a.jpg", "b.jpg", "c.jpg"];
        let targets = ["feishu", "vzicloud"];
        let n = verdicts.len();
        let at_each = verdicts
            .iter()
            .map(|(f, v)| vec![at(f, "feishu"), at(v, "vzicloud")])
            .collect();
        let decided = decide(&files[..n], &targets, at_each);
        let got: Vec<String> = decided
            .iter()
            .map(|(p, f)| match (&p.chosen, f) {
                (Some(c), _) => c.clone(),
                (None, Some((closest, _))) => format!("!{closest}"),
                (None, None) => panic!("a choice or a finding"),
            })
            .collect();
        assert_eq!(got, expected, "{verdicts:?}");
        decided
    }

    #[test]
    fn a_candidate_refused_at_one_target_only_is_still_sent_to_the_other() {
        // One passes everywhere: one choice for all, as with one target (the sharper b.jpg,
        // refused at feishu, is out).
        let d = check_targets(&[("30", "30"), ("e", "60")], ["a.jpg", "a.jpg"]);
        assert!(Arc::ptr_eq(&d[0].0, &d[1].0), "one choice, shared");
        assert_eq!(d[0].0.target, None);
        assert_eq!(d[0].0.candidates[1].refused_for, ["feishu"]);
        assert!(d[0].0.candidates[0].refused_for.is_empty());
        assert_eq!(
            d[0].0.line(),
            "picked 'a.jpg' of 2: it is the only one that passes; 'b.jpg' refused: eyes_too_close"
        );

        // None passes everywhere: each target its best there.
        let d = check_targets(&[("e", "30"), ("30", "e")], ["b.jpg", "a.jpg"]);
        assert_eq!(d[0].0.target.as_deref(), Some("feishu"));
        assert_eq!(d[1].0.target.as_deref(), Some("vzicloud"));
        assert_eq!(
            d[0].0.line(),
            "picked 'b.jpg' of 2 for feishu: it is the only one that passes (no candidate \
             passes at every target: each gets the best that passes there); 'a.jpg' refused \
             for feishu: eyes_too_close"
        );
        let a = &d[0].0.candidates[0];
        assert_eq!(
            (a.passes, a.refused_for.as_slice()),
            (false, &["feishu".to_string()][..])
        );
        let a = &d[1].0.candidates[0];
        assert_eq!((a.passes, a.reason_code), (true, None));
        assert_eq!(
            a.refused_for,
            ["feishu"],
            "the same verdicts at every target"
        );

        // The same ranking at each target: the sharper of those that pass there.
        check_targets(&[("e", "30"), ("30", "e"), ("50", "n")], ["c.jpg", "a.jpg"]);

        // A target where none passes is invalid with its closest candidate's finding; the
        // other still gets its photo.
        let d = check_targets(&[("e", "30"), ("n", "n")], ["!a.jpg", "a.jpg"]);
        let (_, finding) = d[0].1.as_ref().expect("none passes at feishu");
        assert_eq!(finding.code, ReasonCode::EyesTooClose);
        assert!(
            finding
                .message
                .starts_with("none of the 2 candidate photos passes for feishu; the closest, 'a.jpg': feishu: eyes"),
            "{}",
            finding.message
        );
        assert!(d[1].1.is_none());

        // None passes at any target: one finding for all, as with one target.
        let d = check_targets(&[("e", "n"), ("n", "n")], ["!a.jpg", "!a.jpg"]);
        assert!(Arc::ptr_eq(&d[0].0, &d[1].0));
        assert!(
            d[0].0
                .why
                .starts_with("none of the 2 candidate photos passes; ")
        );
    }

    #[test]
    fn the_score_is_documented_parts_of_100() {
        let m = |sharpness, eye_distance, yaw, roll, face_luma| Measures {
            eye_distance,
            sharpness,
            yaw,
            roll,
            face_luma,
        };
        for (measures, expected) in [
            (m(80.0, 100.0, 0.0, 0.0, 128.0), 100.0),
            (m(200.0, 300.0, 0.0, 0.0, 128.0), 100.0),
            (m(40.0, 100.0, 0.0, 0.0, 128.0), 80.0),
            (m(80.0, 50.0, 0.0, 0.0, 128.0), 90.0),
            (m(80.0, 100.0, -45.0, 0.0, 128.0), 85.0),
            (m(80.0, 100.0, 0.0, 90.0, 128.0), 90.0),
            (m(80.0, 100.0, 0.0, 0.0, 0.0), 85.0),
            (m(0.0, 0.0, 45.0, 45.0, 255.0), 15.0 / 128.0),
        ] {
            assert!((score(&measures) - expected).abs() < 1e-3, "{measures:?}");
        }
    }
}
