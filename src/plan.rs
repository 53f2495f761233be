//! Planning: roster + photo folder + state DB -> an action per person and target.
//!
//! No network. The decision for one person and target is [`decide`], a pure function of the
//! previous delivery row and the current photo hash, settings fingerprint and target user id;
//! everything else here gathers those inputs (reading the roster, scanning the folder, hashing
//! photos whose size or mtime changed, the ids looked up earlier by e-mail or mobile), runs
//! every photo that would be sent through the photo pipeline (so an unfit photo is found now,
//! not by the cloud), and records the findings through the store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use futures::StreamExt as _;
use serde::Serialize;

use crate::config::{Config, Profile};
use crate::delivery::About;
use crate::identity::Directory;
use crate::matching::{self, PhotoFile, PhotoIndex};
use crate::photo::{self, PhotoStage};
use crate::reason::{Finding, ReasonCode};
use crate::roster::{self, Row};
use crate::store::{DeliveryRecord, PersonRecord, State, Store};

/// What a run would do for one person at one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// New or changed: send it.
    Upload,
    /// The target already holds this photo under these settings.
    Unchanged,
    /// Failed for good with this very photo; left alone until the photo or roster changes (or
    /// `--only-failed` / `--force` is given).
    Skip,
    /// Not fit to send.
    Invalid,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Unchanged => "unchanged",
            Self::Skip => "skip",
            Self::Invalid => "invalid",
        }
    }
}

/// Choices that change what the plan sends.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Resend everything valid, even what is unchanged.
    pub force: bool,
    /// Take only people whose last attempt failed (retryable or permanent).
    pub only_failed: bool,
    /// Targets to plan for; empty means every enabled target.
    pub targets: Vec<String>,
    /// Write each normalized photo as `<dir>/<target>/<id>.<ext>` for an admin to look at.
    pub preview: Option<PathBuf>,
    /// Leave the photo stage to the caller: `sync` prepares each photo once as it delivers,
    /// so planning only decides from hashes and the state DB.
    pub defer_photo_check: bool,
}

/// One line of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanItem {
    pub row: usize,
    pub id: String,
    pub name: String,
    pub target: String,
    pub action: Action,
    /// Why it is invalid or skipped.
    pub finding: Option<Finding>,
    /// The photo's path relative to the photo folder.
    pub photo: Option<String>,
    /// The id the target knows the person by; `None` for an upload whose id is still to be
    /// looked up by e-mail or mobile (`sync` does that first).
    pub target_user_id: Option<String>,
    /// The source photo's hash (blake3, hex), when there is a photo.
    pub source_hash: Option<String>,
    /// What the quality gate measured on the face for this target, when the photo was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<photo::Quality>,
}

/// The plan for a whole roster.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub items: Vec<PlanItem>,
    /// Photo files no roster row refers to.
    pub orphans: Vec<String>,
    /// The targets planned for.
    pub targets: Vec<String>,
    /// Absolute paths of the photos by their relative path (for the photo stage).
    pub photo_paths: HashMap<String, std::path::PathBuf>,
    /// What an admin must hear about even when nobody fails (an empty roster).
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn count(&self, target: &str, action: Action) -> usize {
        self.items
            .iter()
            .filter(|i| i.target == target && i.action == action)
            .count()
    }

    pub fn has_invalid(&self) -> bool {
        self.items.iter().any(|i| i.action == Action::Invalid)
    }
}

/// Decides one person at one target from the previous row and what is there now.
pub fn decide(
    previous: Option<&DeliveryRecord>,
    source_hash: &str,
    fingerprint: &str,
    target_user_id: &str,
    options: &PlanOptions,
) -> (Action, Option<Finding>) {
    let Some(prev) = previous else {
        return if options.only_failed {
            (Action::Skip, None)
        } else {
            (Action::Upload, None)
        };
    };
    let same = prev.is_about(source_hash, fingerprint, target_user_id);
    let cached_finding = || {
        prev.reason_code
            .map(|code| Finding::new(code, prev.reason.clone().unwrap_or_default()))
    };
    // A photo the pipeline already found unfit stays unfit until it changes: not decoded again.
    if prev.state == State::Invalid
        && same
        && let Some(f) = cached_finding()
    {
        return (Action::Invalid, Some(f));
    }
    if options.force {
        return (Action::Upload, None);
    }
    if options.only_failed {
        return if prev.state.is_failed() {
            (Action::Upload, None)
        } else {
            (Action::Skip, None)
        };
    }
    if prev.holds(source_hash, fingerprint, target_user_id) {
        return (Action::Unchanged, None);
    }
    if prev.state == State::FailedPermanent && same {
        return (Action::Skip, cached_finding());
    }
    (Action::Upload, None)
}

/// Decides a person whose target id is not known yet (it is looked up by e-mail or mobile when
/// `sync` runs): sent, unless `--only-failed` and their last attempt did not fail.
pub fn decide_unresolved(previous: Option<&DeliveryRecord>, options: &PlanOptions) -> Action {
    if options.only_failed && !previous.is_some_and(|p| p.state.is_failed()) {
        Action::Skip
    } else {
        Action::Upload
    }
}

/// A roster with a header and no people is almost always a truncated or failed export; it
/// plans nothing and must not pass for a quiet night.
fn empty_roster_warning(path: &std::path::Path) -> String {
    format!(
        "the roster {} has a header but no people: nothing is planned or sent and nobody is \
         pruned; a truncated or failed HR export is the usual cause: check the file and export it again",
        path.display()
    )
}

/// Reads the roster and the photo folder, hashes what changed, decides every person and
/// target, and records the outcome in the store (people, and delivery rows for what is
/// invalid, unchanged or newly pending). `run_id` is the run the people are seen in.
pub async fn build(
    config: &Config,
    store: &Store,
    run_id: i64,
    options: &PlanOptions,
) -> anyhow::Result<Plan> {
    let targets: Vec<String> = config
        .enabled_targets()
        .into_iter()
        .filter(|t| options.targets.is_empty() || options.targets.iter().any(|o| o == t))
        .map(str::to_string)
        .collect();
    let roster = roster::read(&config.roster)?;
    let mut warnings = Vec::new();
    if roster.rows.is_empty() {
        let warning = empty_roster_warning(&roster.file);
        tracing::warn!("{warning}");
        warnings.push(warning);
    }
    let index = PhotoIndex::scan(&config.photos.dir, config.photos.recursive)?;
    let matches = matching::match_rows(&roster.rows, &index);
    let known_people = store.people().await?;
    let hashes = hash_photos(&roster.rows, &matches.photos, &known_people).await;
    // By target, then person: looked up with borrowed ids, without building a key per lookup.
    let previous = store.deliveries_by_target(&targets).await?;
    let previous_of = |person: &str, target: &str| previous.get(target)?.get(person);
    let directory = Directory::load(store, config, &targets).await?;

    let mut plan = Plan {
        orphans: matches.orphans,
        targets: targets.clone(),
        warnings,
        ..Plan::default()
    };
    let mut people = Vec::with_capacity(roster.rows.len());
    let mut fingerprints = HashMap::new();
    for target in &targets {
        fingerprints.insert(target.clone(), config.delivery_fingerprint(target));
    }
    // The items of each row, by index into `plan.items`, for the photo stage.
    let mut row_items: Vec<Vec<usize>> = Vec::with_capacity(roster.rows.len());
    for (i, row) in roster.rows.iter().enumerate() {
        let photo = matches.photos[i].as_ref().ok();
        let hash = &hashes[i];
        // A duplicated id is still a person (reports show their name); a row without an id
        // is not.
        if row
            .finding
            .as_ref()
            .is_none_or(|f| f.code == ReasonCode::DuplicateId)
        {
            people.push(PersonRecord {
                person_id: row.person.id.clone(),
                name: row.person.name.clone(),
                roster_row: Some(row.row as i64),
                photo_path: photo.map(|p| p.relative.clone()),
                photo_size: photo.map(|p| p.size as i64),
                photo_mtime_ns: photo.map(|p| p.mtime_ns),
                photo_hash: hash.as_ref().ok().cloned(),
            });
        }
        if let Some(p) = photo {
            plan.photo_paths.insert(p.relative.clone(), p.path.clone());
        }
        let mut indices = Vec::with_capacity(targets.len());
        for target in &targets {
            let user_id = directory
                .user_id(config, target, &row.person)
                .map_err(|f| Finding::new(f.code, format!("row {}: {}", row.row, f.message)));
            let prev = previous_of(&row.person.id, target);
            let (action, finding) = match (&matches.photos[i], hash, &user_id) {
                (Err(f), _, _) => (Action::Invalid, Some(f.clone())),
                (_, _, Err(f)) => (Action::Invalid, Some(f.clone())),
                (Ok(_), Err(f), _) => (Action::Invalid, Some(f.clone())),
                (Ok(_), Ok(h), Ok(Some(uid))) => {
                    decide(prev, h, &fingerprints[target], uid, options)
                }
                (Ok(_), Ok(_), Ok(None)) => (decide_unresolved(prev, options), None),
            };
            indices.push(plan.items.len());
            plan.items.push(PlanItem {
                row: row.row,
                id: row.person.id.clone(),
                name: row.person.name.clone(),
                target: target.clone(),
                action,
                finding,
                photo: photo.map(|p| p.relative.clone()),
                target_user_id: user_id.ok().flatten(),
                source_hash: hash.as_ref().ok().cloned(),
                quality: None,
            });
        }
        row_items.push(indices);
    }

    if !options.defer_photo_check {
        check_photos(config, &mut plan, &matches.photos, &row_items, options).await?;
    }

    let mut deliveries = Vec::new();
    let mut recorded: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
    for item in &plan.items {
        // Duplicate ids share one delivery row: the first copy's finding is recorded.
        if recorded.insert((item.id.as_str(), item.target.as_str())) {
            let prev = previous_of(&item.id, &item.target);
            if let Some(record) = record_for(prev, item, &fingerprints[&item.target]) {
                deliveries.push(record);
            }
        }
    }
    // Only people whose row changed are written; the others are marked seen in one statement.
    let (changed, same): (Vec<PersonRecord>, Vec<PersonRecord>) = people
        .into_iter()
        .partition(|p| known_people.get(&p.person_id) != Some(p));
    store.save_people(&changed, run_id).await?;
    let same: Vec<&str> = same.iter().map(|p| p.person_id.as_str()).collect();
    store.mark_seen(&same, run_id).await?;
    store.save_deliveries(&deliveries).await?;
    Ok(plan)
}

/// Runs the photo of every person with something to upload through the photo pipeline, once
/// for all their targets: a photo found unfit turns those items invalid with the finding. With
/// `options.preview`, writes the normalized photos there.
async fn check_photos(
    config: &Config,
    plan: &mut Plan,
    photos: &[Result<PhotoFile, Finding>],
    row_items: &[Vec<usize>],
    options: &PlanOptions,
) -> anyhow::Result<()> {
    let stage = PhotoStage::new(config.photos.clone());
    let mut specs = Vec::new();
    for (i, indices) in row_items.iter().enumerate() {
        let Ok(photo) = &photos[i] else { continue };
        let uploads: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|&k| plan.items[k].action == Action::Upload)
            .collect();
        let profiles: Vec<(String, Profile)> = uploads
            .iter()
            .filter_map(|&k| {
                let target = &plan.items[k].target;
                config
                    .delivery(target)
                    .map(|d| (target.clone(), d.profile.clone()))
            })
            .collect();
        if !uploads.is_empty() && uploads.len() == profiles.len() {
            specs.push((uploads, profiles, photo.path.clone()));
        }
    }
    let jobs = specs.into_iter().map(|(uploads, profiles, path)| {
        let stage = stage.clone();
        async move {
            let result = stage.prepare_file(path.clone(), profiles.clone()).await;
            let per_target = match result {
                // One target's budget must not make the photo invalid for the others.
                Err(f) if f.code.may_be_one_targets() && profiles.len() > 1 => {
                    let mut each = Vec::with_capacity(profiles.len());
                    for p in profiles {
                        each.push(stage.prepare_file(path.clone(), vec![p]).await);
                    }
                    each
                }
                Err(f) => vec![Err(f); profiles.len()],
                Ok(outs) => outs.into_iter().map(|o| Ok(vec![o])).collect(),
            };
            (uploads, per_target)
        }
    });
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    let mut results = futures::stream::iter(jobs).buffer_unordered(parallel);
    while let Some((uploads, per_target)) = results.next().await {
        for (k, result) in uploads.into_iter().zip(per_target) {
            let item = &mut plan.items[k];
            match result {
                Ok(outs) => {
                    item.quality = outs.first().and_then(|o| o.quality.clone());
                    if let Some(dir) = &options.preview {
                        for out in outs {
                            write_preview(dir, &item.id, &out)?;
                        }
                    }
                }
                Err(f) => {
                    let file = item.photo.as_deref().unwrap_or("photo");
                    item.action = Action::Invalid;
                    item.quality = f.quality.map(|q| *q);
                    item.finding = Some(Finding::new(f.code, format!("{file}: {}", f.message)));
                }
            }
        }
    }
    Ok(())
}

/// Writes `<dir>/<target>/<id>.<ext>`.
fn write_preview(dir: &Path, id: &str, out: &photo::Normalized) -> anyhow::Result<()> {
    let folder = dir.join(&out.target);
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create preview folder {}", folder.display()))?;
    // Ids come from a spreadsheet: keep them from naming another folder.
    let name: String = id
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | ':') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let name = name.trim_start_matches('.');
    let path = folder.join(format!("{name}.{}", out.format.extension()));
    std::fs::write(&path, &out.bytes)
        .with_context(|| format!("cannot write preview {}", path.display()))
}

/// The delivery row a plan item leads to, or `None` when the row stays as it is.
pub fn record_for(
    prev: Option<&DeliveryRecord>,
    item: &PlanItem,
    fingerprint: &str,
) -> Option<DeliveryRecord> {
    // Decided before the row is copied: on a nightly run nearly every row stays as it is.
    let fresh = || {
        prev.cloned()
            .unwrap_or_else(|| DeliveryRecord::new(&item.id, &item.target))
    };
    let about_now = |d: &mut DeliveryRecord| {
        d.set_about(About {
            source_hash: item.source_hash.as_deref(),
            fingerprint,
            user_id: item.target_user_id.as_deref(),
        })
    };
    match item.action {
        Action::Invalid => {
            let f = item.finding.as_ref()?;
            if prev.is_some_and(|p| {
                p.state == State::Invalid
                    && p.reason_code == Some(f.code)
                    && p.reason.as_deref() == Some(f.message.as_str())
                    && p.source_hash == item.source_hash
            }) {
                return None;
            }
            let mut d = fresh();
            about_now(&mut d);
            d.mark_invalid(f);
            Some(d)
        }
        Action::Unchanged => {
            if prev.is_some_and(|p| p.state == State::Delivered) {
                return None;
            }
            let mut d = fresh();
            about_now(&mut d);
            d.mark_unchanged();
            Some(d)
        }
        Action::Upload => {
            let same = prev.is_some_and(|p| {
                p.source_hash == item.source_hash
                    && p.fingerprint.as_deref() == Some(fingerprint)
                    && p.target_user_id == item.target_user_id
            });
            if same
                && prev.is_some_and(|p| p.state != State::Delivered && p.state != State::Invalid)
            {
                return None; // already pending or failed with this photo: keep its history
            }
            let mut d = fresh();
            about_now(&mut d);
            d.mark_pending(!same);
            Some(d)
        }
        Action::Skip => None,
    }
}

/// Hashes each matched photo, reusing the stored hash when path, size and mtime are unchanged.
/// Hashing runs on blocking threads, a few files at a time.
async fn hash_photos(
    rows: &[Row],
    photos: &[Result<PhotoFile, Finding>],
    known: &HashMap<String, PersonRecord>,
) -> Vec<Result<String, Finding>> {
    let jobs = rows.iter().zip(photos).map(|(row, photo)| {
        let cached = photo.as_ref().ok().and_then(|p| {
            known.get(&row.person.id).and_then(|k| {
                (k.photo_path.as_deref() == Some(p.relative.as_str())
                    && k.photo_size == Some(p.size as i64)
                    && k.photo_mtime_ns == Some(p.mtime_ns))
                .then(|| k.photo_hash.clone())
                .flatten()
            })
        });
        let path = photo.as_ref().ok().map(|p| p.path.clone());
        let row_no = row.row;
        async move {
            match (cached, path) {
                (Some(h), _) => Ok(h),
                (None, Some(path)) => tokio::task::spawn_blocking(move || hash_file(&path))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                    .map_err(|e| {
                        Finding::new(
                            ReasonCode::PhotoUnreadable,
                            format!("row {row_no}: cannot read the photo: {e}"),
                        )
                    }),
                (None, None) => Err(Finding::new(ReasonCode::NoPhoto, "no photo")),
            }
        }
    });
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    futures::stream::iter(jobs)
        .buffered(parallel)
        .collect()
        .await
}

/// blake3 of a file's bytes, hex.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(hasher.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests;
