//! Planning: roster + photo folder + state DB -> an action per person and target.
//!
//! No network. The decision for one person and target is [`decide`], a pure function of the
//! previous delivery row and the current photo hash, settings fingerprint and target user id;
//! everything else here gathers those inputs (reading the roster, scanning the folder, hashing
//! photos whose size or mtime changed, the ids looked up earlier by e-mail or mobile), runs
//! every photo that would be sent through the photo pipeline (so an unfit photo is found now,
//! not by the cloud), and records the findings through the store.

pub mod duplicates;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use futures::StreamExt as _;
use serde::Serialize;

use crate::config::{Config, DuplicatePhotos, Profile};
use crate::delivery::About;
use crate::identity::Directory;
use crate::matching::{self, PhotoFile, PhotoIndex};
use crate::photo::{self, FaceHash, FaceSeen, PhotoStage};
use crate::reason::{Finding, ReasonCode};
use crate::roster::{self, Row};
use crate::store::{Compared, DeliveryRecord, PersonRecord, Previous, State, Store};

mod pick;
pub use pick::Picked;

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
    // The strings are shared: with every item of the same person, and with every item of the
    // same target (a plan of 100,000 people holds one copy of each id, not one per target).
    pub id: Arc<str>,
    pub name: Arc<str>,
    pub target: Arc<str>,
    pub action: Action,
    /// Why it is invalid or skipped.
    pub finding: Option<Finding>,
    /// The photo's path relative to the photo folder (the file this target is sent).
    pub photo: Option<Arc<str>>,
    /// The id the target knows the person by; `None` for an upload whose id is still to be
    /// looked up by e-mail or mobile (`sync` does that first).
    pub target_user_id: Option<Arc<str>>,
    /// The source photo's hash (blake3, hex), when there is a photo.
    pub source_hash: Option<Arc<str>>,
    /// What the quality gate measured on the face for this target, when the photo was checked
    /// (boxed: a plan holds an item per person and target, and few of them were checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<Box<photo::Quality>>,
    /// With `photos.pick = "best"`, when this run chose among the person's several photos:
    /// which and why (shared by the person's items; each upload item's own when the choice
    /// differs by target, and then `photo` is that target's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picked: Option<Arc<Picked>>,
}

/// The plan for a whole roster.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub items: Vec<PlanItem>,
    /// Photo files no roster row refers to.
    pub orphans: Vec<String>,
    /// The targets planned for.
    pub targets: Vec<String>,
    /// The photo folder: a photo's path is this joined with its relative path...
    pub photos_dir: PathBuf,
    /// ...but for the few photos whose path is not (a roster's photo column written with
    /// `\`): kept here by relative path.
    pub photo_paths: HashMap<String, PathBuf>,
    /// What an admin must hear about even when nobody fails (an empty roster).
    pub warnings: Vec<String>,
    /// Photos decoded for their face hash alone (the duplicate check's pre-pass): those
    /// neither prepared by this plan nor known to the state DB.
    pub faces_hashed: usize,
    /// The faces that pre-pass found, by photo path, for the photos to upload: `sync`'s photo
    /// stage takes them instead of searching again.
    pub face_hints: crate::photo::FaceHints,
}

impl Plan {
    pub fn count(&self, target: &str, action: Action) -> usize {
        self.items
            .iter()
            .filter(|i| &*i.target == target && i.action == action)
            .count()
    }

    pub fn has_invalid(&self) -> bool {
        self.items.iter().any(|i| i.action == Action::Invalid)
    }

    /// The photos of row `row`'s items that `keep` keeps, each with those items' indexes, in
    /// target order: one photo, except with `photos.pick = "best"` choosing per target.
    fn photos_of(
        &self,
        row: usize,
        targets: usize,
        keep: impl Fn(&PlanItem) -> bool,
    ) -> Vec<(Arc<str>, Vec<usize>)> {
        let mut by_photo: Vec<(Arc<str>, Vec<usize>)> = Vec::new();
        for k in row * targets..(row + 1) * targets {
            let item = &self.items[k];
            let Some(photo) = item.photo.as_ref().filter(|_| keep(item)) else {
                continue;
            };
            match by_photo.iter_mut().find(|(p, _)| p == photo) {
                Some((_, items)) => items.push(k),
                None => by_photo.push((photo.clone(), vec![k])),
            }
        }
        by_photo
    }

    /// The absolute path of a photo by its path relative to the photo folder (for the photo
    /// stage).
    pub fn photo_path(&self, relative: &str) -> PathBuf {
        self.photo_paths
            .get(relative)
            .cloned()
            .unwrap_or_else(|| self.photos_dir.join(relative))
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
    // Not so a duplicate photo: that depends on the other people's photos, checked every run.
    if prev.state == State::Invalid
        && same
        && let Some(f) = cached_finding()
        && f.code != ReasonCode::DuplicatePhoto
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
///
/// Sized for large rosters (see README, Performance, Scale): the state DB is read in one
/// message a table or target and only the rows that may change are read whole
/// ([`Store::previous_deliveries`]); the roster and the stored people are let go before the
/// items are built; each person's id, name, photo and hash are one allocation shared by all
/// their items; delivery rows are written a batch at a time.
pub async fn build(
    config: &Config,
    store: &Store,
    run_id: i64,
    options: &PlanOptions,
) -> anyhow::Result<Plan> {
    let targets: Vec<Arc<str>> = config
        .enabled_targets()
        .into_iter()
        .filter(|t| options.targets.is_empty() || options.targets.iter().any(|o| o == t))
        .map(Arc::from)
        .collect();
    let target_names: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    let started = std::time::Instant::now();
    let phase = |what: &str| tracing::debug!("plan: {what} after {:?}", started.elapsed());
    let roster = roster::read(&config.roster)?;
    phase("roster read");
    let mut warnings = Vec::new();
    if roster.rows.is_empty() {
        let warning = empty_roster_warning(&roster.file);
        tracing::warn!("{warning}");
        warnings.push(warning);
    }
    let mut matches = {
        let index = PhotoIndex::scan_for(
            &config.photos.dir,
            config.photos.recursive,
            config.photos.pick,
        )?;
        matching::match_rows(&roster.rows, &index)
    };
    // With `photos.pick = "best"`: the people with several candidate photos, each compared
    // with the state DB as one file, the set's size and listing.
    let mut sets = pick::Sets::new(std::mem::take(&mut matches.several));
    sets.stand_in(&mut matches.photos);
    phase("photo folder listed and matched");
    let directory = Directory::load(store, config, &target_names).await?;

    // The stored people, streamed: the hash cache, who changed, who left.
    let (hashes, people, to_save, leavers) = {
        // Each roster id's first row (a later copy of an id is invalid: its row is the first's).
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(roster.rows.len());
        for (i, row) in roster.rows.iter().enumerate() {
            index.entry(row.person.id.as_str()).or_insert(i);
        }
        let mut known: Vec<Option<Known>> = vec![None; roster.rows.len()];
        let mut leavers: Vec<String> = Vec::new();
        store
            .each_person(|stored| {
                let Some(&i) = index.get(&*stored.person_id) else {
                    leavers.push(stored.person_id.to_string());
                    return;
                };
                let row = &roster.rows[i];
                let photo = matches.photos[i].as_ref().ok();
                // A person with several candidates is stored with the one chosen, any of them.
                let path_same = sets
                    .remember(i, stored.photo_path.as_deref())
                    .unwrap_or(stored.photo_path.as_deref() == photo.map(|p| p.relative.as_str()));
                let file_same = photo.is_some_and(|p| {
                    path_same
                        && stored.photo_size == Some(p.size as i64)
                        && stored.photo_mtime_ns == Some(p.mtime_ns)
                });
                known[i] = Some(Known {
                    file_same,
                    row_same: stored.name == row.person.name
                        && stored.roster_row == Some(row.row as i64)
                        && path_same
                        && stored.photo_size == photo.map(|p| p.size as i64)
                        && stored.photo_mtime_ns == photo.map(|p| p.mtime_ns),
                    hash: stored.photo_hash.as_deref().map(Arc::from),
                });
            })
            .await?;
        phase("stored people read");
        // Again, with the photo each set's person is stored with.
        sets.stand_in(&mut matches.photos);
        let mut hashes = hash_photos(&roster.rows, &matches.photos, &known).await;
        let cached = |i: usize| known[i].as_ref().is_some_and(|k| k.file_same);
        sets.hash(cached, &mut hashes).await;
        phase("photos hashed");
        let people: Vec<Shared> = roster
            .rows
            .iter()
            .zip(&matches.photos)
            .zip(&hashes)
            .map(|((row, photo), hash)| Shared {
                row: row.row,
                id: Arc::from(row.person.id.as_str()),
                name: Arc::from(row.person.name.as_str()),
                photo: photo.as_ref().ok().map(|p| Arc::from(p.relative.as_str())),
                hash: hash.as_ref().ok().cloned(),
            })
            .collect();
        // A duplicated id is still a person (reports show their name); a row without an id
        // is not. Only people whose row changed are written; the others are marked seen.
        let mut to_save = Vec::new();
        for (i, row) in roster.rows.iter().enumerate() {
            if row
                .finding
                .as_ref()
                .is_some_and(|f| f.code != ReasonCode::DuplicateId)
            {
                continue;
            }
            let hash = hashes[i].as_deref().ok();
            let same = known[i]
                .as_ref()
                .is_some_and(|k| k.row_same && k.hash.as_deref() == hash);
            if !same {
                let photo = matches.photos[i].as_ref().ok();
                to_save.push(PersonRecord {
                    person_id: row.person.id.clone(),
                    name: row.person.name.clone(),
                    roster_row: Some(row.row as i64),
                    photo_path: photo.map(|p| p.relative.clone()),
                    photo_size: photo.map(|p| p.size as i64),
                    photo_mtime_ns: photo.map(|p| p.mtime_ns),
                    photo_hash: hash.map(str::to_string),
                });
            }
        }
        (hashes, people, to_save, leavers)
    };
    // Duplicate ids share one delivery row: the first copy's finding is recorded.
    let first_copy: Vec<bool> = {
        let mut seen = std::collections::HashSet::with_capacity(people.len());
        people.iter().map(|p| seen.insert(&*p.id)).collect()
    };
    // Each target's user id for each row; then the roster is no longer needed.
    let user_ids: Vec<Vec<Result<Option<Arc<str>>, Finding>>> = targets
        .iter()
        .map(|target| {
            roster
                .rows
                .iter()
                .zip(&people)
                .map(|(row, shared)| {
                    directory
                        .user_id(config, target, &row.person)
                        .map(|uid| uid.map(|u| shared.share_id(u)))
                        .map_err(|f| {
                            Finding::new(f.code, format!("row {}: {}", row.row, f.message))
                        })
                })
                .collect()
        })
        .collect();
    drop(roster);
    drop(directory);
    phase("people compared, user ids known");

    let mut fingerprints = HashMap::new();
    for target in &targets {
        fingerprints.insert(target.clone(), config.delivery_fingerprint(target));
    }
    let mut previous: Vec<Previous> = Vec::with_capacity(targets.len());
    for (t, target) in targets.iter().enumerate() {
        let compared: Vec<Compared<'_>> = people
            .iter()
            .zip(&user_ids[t])
            .map(|(p, uid)| Compared {
                person_id: &p.id,
                source_hash: p.hash.as_deref(),
                user_id: uid.as_ref().ok().and_then(|u| u.as_deref()),
            })
            .collect();
        previous.push(
            store
                .previous_deliveries(target, &fingerprints[target], &compared, !options.force)
                .await?,
        );
    }

    phase("stored deliveries compared");
    let mut plan = Plan {
        photos_dir: config.photos.dir.clone(),
        ..Plan::default()
    };
    // What the items need of the matches: the few paths that are not the folder joined with
    // the relative path, and why a row has no photo. The rest is let go.
    for p in matches.photos.iter().flatten() {
        if p.path != plan.photos_dir.join(&p.relative) {
            plan.photo_paths.insert(p.relative.clone(), p.path.clone());
        }
    }
    let photo_errors: Vec<Option<Finding>> = matches.photos.into_iter().map(Result::err).collect();
    let mut plan = Plan {
        orphans: matches.orphans,
        targets: target_names,
        warnings,
        ..plan
    };
    plan.items.reserve_exact(people.len() * targets.len());
    // Roster order, then target order: row 2 at every target, then row 3, ...
    let mut user_ids: Vec<std::vec::IntoIter<_>> =
        user_ids.into_iter().map(Vec::into_iter).collect();
    // The items of row `i` are `i * targets.len()..(i + 1) * targets.len()`.
    for (i, shared) in people.iter().enumerate() {
        for (t, target) in targets.iter().enumerate() {
            let uid = user_ids[t].next().expect("one user id per row and target");
            let prev = previous[t].row(i);
            let (action, finding) = match (&photo_errors[i], &hashes[i], &uid) {
                (Some(f), _, _) => (Action::Invalid, Some(f.clone())),
                (_, _, Err(f)) => (Action::Invalid, Some(f.clone())),
                (None, Err(f), _) => (Action::Invalid, Some(f.clone())),
                // The target holds this very photo: the row is not even read.
                (None, Ok(_), Ok(Some(_))) if previous[t].is_settled(i) => {
                    if options.only_failed {
                        (Action::Skip, None)
                    } else {
                        (Action::Unchanged, None)
                    }
                }
                (None, Ok(h), Ok(Some(u))) => decide(prev, h, &fingerprints[target], u, options),
                (None, Ok(_), Ok(None)) => (decide_unresolved(prev, options), None),
            };
            plan.items.push(PlanItem {
                row: shared.row,
                id: shared.id.clone(),
                name: shared.name.clone(),
                target: target.clone(),
                action,
                finding,
                photo: shared.photo.clone(),
                target_user_id: uid.ok().flatten(),
                source_hash: shared.hash.clone(),
                quality: None,
                picked: None,
            });
        }
    }
    drop(user_ids);
    drop(photo_errors);

    let picked = pick::choose(config, &mut plan, &sets, targets.len()).await;
    let mut to_save = to_save;
    sets.save_choices(&mut to_save, &plan, picked, targets.len());
    let seen = if options.defer_photo_check {
        Vec::new()
    } else {
        check_photos(config, &mut plan, targets.len(), options).await?
    };
    phase("photos checked");
    let mut duplicate_rows = HashSet::new();
    // The check compares faces: with `face_check = false` no face is looked for, so it is off.
    if config.photos.face_check
        && config.photos.duplicate_photos != DuplicatePhotos::Off
        && !targets.is_empty()
    {
        let (faces, extra) = face_hashes(
            config,
            store,
            &mut plan,
            targets.len(),
            &people,
            &first_copy,
            seen,
        )
        .await?;
        phase("face hashes known");
        duplicate_rows = mark_duplicates(config, &mut plan, targets.len(), &people, &faces, &extra);
        phase("duplicate photos found");
    }
    // A settled row turned invalid by a duplicate photo is written too, from its whole row.
    let mut settled_rows: HashMap<usize, Vec<DeliveryRecord>> = HashMap::new();
    for &i in &duplicate_rows {
        if previous.iter().any(|p| p.is_settled(i)) {
            settled_rows.insert(i, store.deliveries_of(&people[i].id).await?);
        }
    }

    phase("items decided");
    let mut deliveries = Vec::new();
    for (i, &first) in first_copy.iter().enumerate() {
        if !first {
            continue;
        }
        for (t, previous) in previous.iter().enumerate() {
            // A settled row stays as it is (its item is unchanged, or skipped with
            // --only-failed; the photo stage only looks at uploads), unless its photo is
            // another person's.
            let item = &plan.items[i * targets.len() + t];
            let prev = if previous.is_settled(i) {
                match settled_rows.get(&i) {
                    Some(rows) => rows.iter().find(|d| *d.target == *item.target),
                    None => continue,
                }
            } else {
                previous.row(i)
            };
            if let Some(record) = record_for(prev, item, &fingerprints[&item.target]) {
                deliveries.push(record);
            }
            if deliveries.len() >= SAVE_BATCH {
                store.save_deliveries(&deliveries).await?;
                deliveries.clear();
            }
        }
    }
    store.save_deliveries(&deliveries).await?;
    store.save_people(&to_save, run_id).await?;
    let leavers: Vec<&str> = leavers.iter().map(String::as_str).collect();
    store.mark_seen_except(&leavers, run_id).await?;
    phase("recorded");
    Ok(plan)
}

/// What the state DB knew of a roster row's person.
#[derive(Debug, Clone)]
struct Known {
    /// The same photo file: path, size and mtime (its stored hash can be trusted).
    file_same: bool,
    /// The same name, row and photo file: the person need not be written again (if the
    /// hash is the same too).
    row_same: bool,
    hash: Option<Arc<str>>,
}

/// Delivery rows written per call while a plan records its outcome.
const SAVE_BATCH: usize = 2000;

/// What every item of one roster row shares: one allocation each, however many targets.
struct Shared {
    row: usize,
    id: Arc<str>,
    name: Arc<str>,
    photo: Option<Arc<str>>,
    hash: Option<Arc<str>>,
}

impl Shared {
    /// The person's id at a target, sharing the roster id's allocation when they are the same
    /// (most targets know people by their employee id).
    fn share_id(&self, user_id: String) -> Arc<str> {
        if *self.id == *user_id {
            self.id.clone()
        } else {
            Arc::from(user_id)
        }
    }
}

/// Runs the photo of every person with something to upload through the photo pipeline, once
/// for all their targets (with `photos.pick = "best"`, each of a person's photos once for the
/// targets that get it): a photo found unfit turns those items invalid with the finding. With
/// `options.preview`, writes the normalized photos there. Returns what was seen of each
/// prepared photo's face, by roster row index.
async fn check_photos(
    config: &Config,
    plan: &mut Plan,
    targets: usize,
    options: &PlanOptions,
) -> anyhow::Result<Vec<(usize, FaceSeen)>> {
    let stage = PhotoStage::new(config.photos.clone());
    let mut specs = Vec::new();
    for row in 0..plan.items.len() / targets.max(1) {
        // One photo for all the person's uploads, but with `photos.pick = "best"` each target
        // may have its own: the uploads by photo.
        let by_photo = plan.photos_of(row, targets, |item| item.action == Action::Upload);
        // A person is one face for the duplicate check: what is seen of their first photo.
        for (g, (relative, uploads)) in by_photo.into_iter().enumerate() {
            let path = plan.photo_path(&relative);
            let profiles: Vec<(String, Profile)> = uploads
                .iter()
                .filter_map(|&k| {
                    let target = &plan.items[k].target;
                    config
                        .delivery(target)
                        .map(|d| (target.to_string(), d.profile.clone()))
                })
                .collect();
            if uploads.len() == profiles.len() {
                specs.push((uploads, profiles, path, g == 0));
            }
        }
    }
    let jobs = specs.into_iter().map(|(uploads, profiles, path, face)| {
        let stage = stage.clone();
        async move {
            let (seen, result) = stage
                .prepare_file_hashed(path.clone(), profiles.clone())
                .await;
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
            (uploads, per_target, face.then_some(seen))
        }
    });
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    let mut results = futures::stream::iter(jobs).buffer_unordered(parallel);
    let mut seen_all = Vec::new();
    while let Some((uploads, per_target, seen)) = results.next().await {
        if let (Some(&first), Some(seen)) = (uploads.first(), seen) {
            seen_all.push((first / targets.max(1), seen));
        }
        for (k, result) in uploads.into_iter().zip(per_target) {
            let item = &mut plan.items[k];
            match result {
                Ok(outs) => {
                    item.quality = outs.first().and_then(|o| o.quality.clone()).map(Box::new);
                    if let Some(dir) = &options.preview {
                        for out in outs {
                            write_preview(dir, &item.id, &out)?;
                        }
                    }
                }
                Err(f) => {
                    let file = item.photo.as_deref().unwrap_or("photo");
                    item.action = Action::Invalid;
                    item.quality = f.quality;
                    item.finding = Some(Finding::new(f.code, format!("{file}: {}", f.message)));
                }
            }
        }
    }
    Ok(seen_all)
}

/// The face hash of every roster person with a photo (first copies of an id only), by roster
/// row index: what `check_photos` just saw, else what the state DB holds by the photo's source
/// hash, else computed now (the pre-pass, [`crate::photo::face_hash_hinted`]: on a first run,
/// every photo; on a nightly run, the new and changed photos `check_photos` did not prepare,
/// and with `sync`, which prepares as it delivers, all of those). The photo hashed is the one
/// the person's first target gets (with `photos.pick = "best"`, the one chosen). Records the
/// new hashes and forgets those of photos no one has any more. Holds one small entry per
/// person. Also returns, by row, the hashes of the other photos of a person whose targets get
/// different photos (`pick = "best"` choosing per target): looked at when the person is
/// decided, and kept with the set (`<source hash>#<k>`) for the nights they are not.
async fn face_hashes(
    config: &Config,
    store: &Store,
    plan: &mut Plan,
    targets: usize,
    people: &[Shared],
    first_copy: &[bool],
    seen: Vec<(usize, FaceSeen)>,
) -> anyhow::Result<(Vec<Option<FaceHash>>, Vec<(usize, FaceHash)>)> {
    struct Entry {
        row: usize,
        stored: Option<Option<FaceHash>>,
        seen: Option<Option<FaceHash>>,
        /// The stored hashes of the person's further photos (keys `<source hash>#<k>`).
        further: Vec<(String, FaceHash)>,
    }
    let mut by_source: HashMap<Arc<str>, Entry> = HashMap::with_capacity(people.len());
    for (i, person) in people.iter().enumerate() {
        if let (true, Some(hash)) = (first_copy[i], &person.hash) {
            by_source.entry(hash.clone()).or_insert(Entry {
                row: i,
                stored: None,
                seen: None,
                further: Vec::new(),
            });
        }
    }
    for (i, face) in seen {
        if let (Some(hash), Some(looked)) = (&people[i].hash, face.looked())
            && let Some(entry) = by_source.get_mut(hash)
        {
            entry.seen = Some(looked);
        }
    }
    let mut stale = Vec::new();
    store
        .each_face_hash(|source, face| {
            // A further photo's hash: `<source hash>#<k>` (a source hash is hex).
            if let Some((base, _)) = source.split_once(FURTHER) {
                match (by_source.get_mut(base), face) {
                    (Some(entry), Some(f)) => {
                        entry.further.push((source.to_string(), FaceHash(f as u64)))
                    }
                    _ => stale.push(source.to_string()),
                }
                return;
            }
            match by_source.get_mut(source) {
                Some(entry) => entry.stored = Some(face.map(|f| FaceHash(f as u64))),
                None => stale.push(source.to_string()),
            }
        })
        .await?;
    let missing: Vec<(Arc<str>, PathBuf)> = by_source
        .iter()
        .filter(|(_, e)| e.seen.is_none() && e.stored.is_none())
        .filter_map(|(hash, e)| {
            let relative = sent_photo(plan, targets, e.row).or(people[e.row].photo.as_deref())?;
            Some((hash.clone(), plan.photo_path(relative)))
        })
        .collect();
    if !missing.is_empty() {
        tracing::info!(
            "looking for the face in {} photos for the duplicate check",
            missing.len()
        );
    }
    plan.faces_hashed = missing.len();
    let stage = PhotoStage::new(config.photos.clone());
    let jobs = missing.into_iter().map(|(hash, path)| {
        let stage = stage.clone();
        async move {
            let hashed = stage.face_hash_file(path.clone()).await;
            (hash, path, hashed)
        }
    });
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    let mut computed = futures::stream::iter(jobs).buffer_unordered(parallel);
    let mut hints = HashMap::new();
    while let Some((hash, path, (face, hint))) = computed.next().await {
        if let Some(entry) = by_source.get_mut(&hash) {
            entry.seen = Some(face);
            // Only a photo about to be uploaded is prepared again.
            let uploads = |k: usize| plan.items[k].action == Action::Upload;
            if let Some(hint) = hint
                && (entry.row * targets..(entry.row + 1) * targets).any(uploads)
            {
                hints.insert(path, hint);
            }
        }
    }
    plan.face_hints = Arc::new(hints);
    let fresh: Vec<(String, Option<i64>)> = by_source
        .iter()
        .filter_map(|(hash, e)| match e.seen {
            Some(face) if e.stored != Some(face) => {
                Some((hash.to_string(), face.map(|f| f.0 as i64)))
            }
            _ => None,
        })
        .collect();
    store.save_face_hashes(&fresh).await?;
    store.forget_face_hashes(&stale).await?;
    // The further photos of people whose targets get different ones (`pick = "best"`): hashed
    // whenever the person is decided, and kept as `<source hash>#<k>` for the nights they are
    // not (then their items show one photo only).
    let mut others: Vec<(usize, PathBuf)> = Vec::new();
    let mut decided = HashSet::new();
    for i in (0..people.len()).filter(|&i| first_copy[i]) {
        let photos = plan.photos_of(i, targets, |_| true);
        if photos.len() < 2 {
            continue;
        }
        if plan.items[i * targets..(i + 1) * targets]
            .iter()
            .any(|item| item.picked.is_some())
        {
            decided.insert(i);
        }
        // The first is the one hashed above (`sent_photo`).
        others.extend(photos[1..].iter().map(|(p, _)| (i, plan.photo_path(p))));
    }
    let jobs = others.into_iter().map(|(i, path)| {
        let stage = stage.clone();
        async move { (i, stage.face_hash_file(path).await.0) }
    });
    let mut extra: Vec<(usize, FaceHash)> = futures::stream::iter(jobs)
        .buffer_unordered(parallel)
        .filter_map(|(i, face)| async move { face.map(|f| (i, f)) })
        .collect()
        .await;
    extra.sort_unstable();
    // Kept as well as what was kept before: a target not sent to on this run may still hold
    // an earlier choice. They go with the set (a changed set is a new source hash).
    let mut save = Vec::new();
    for (hash, entry) in by_source.iter().filter(|(_, e)| decided.contains(&e.row)) {
        let mut k = entry.further.len();
        for (_, face) in extra.iter().filter(|(i, _)| *i == entry.row) {
            if entry.further.iter().all(|(_, f)| f != face) {
                k += 1;
                save.push((format!("{hash}{FURTHER}{k}"), Some(face.0 as i64)));
            }
        }
    }
    for entry in by_source.values() {
        extra.extend(entry.further.iter().map(|(_, face)| (entry.row, *face)));
    }
    store.save_face_hashes(&save).await?;
    let faces = people
        .iter()
        .enumerate()
        .map(|(i, person)| {
            let entry = by_source.get(person.hash.as_ref()?)?;
            if !first_copy[i] {
                return None;
            }
            entry.seen.or(entry.stored).flatten()
        })
        .collect();
    Ok((faces, extra))
}

/// Separates a source hash from the number of a further photo in the face hash table's keys.
const FURTHER: char = '#';

/// The photo the first target of row `i` gets, when its item names one.
fn sent_photo(plan: &Plan, targets: usize, i: usize) -> Option<&str> {
    plan.items.get(i * targets)?.photo.as_deref()
}

/// Other people named in a `duplicate_photo` message; the rest are counted.
const NAMED: usize = 3;

/// Finds the people whose face hashes are one photo (the same file included) and, with
/// `photos.duplicate_photos = "refuse"`, makes every item of theirs that is not already invalid
/// invalid with `duplicate_photo`; with "warn", adds a warning. Pairs in
/// `photos.allow_same_photo` are left alone. Returns the row indexes made invalid.
fn mark_duplicates(
    config: &Config,
    plan: &mut Plan,
    targets: usize,
    people: &[Shared],
    faces: &[Option<FaceHash>],
    extra: &[(usize, FaceHash)],
) -> HashSet<usize> {
    let allowed: HashSet<(&str, &str)> = config
        .photos
        .allow_same_photo
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let is_allowed = |a: &str, b: &str| {
        !allowed.is_empty() && allowed.contains(&if a <= b { (a, b) } else { (b, a) })
    };
    let near = duplicates::neighbours(
        faces
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.map(|f| (i, f)))
            .chain(extra.iter().copied()),
    );
    let mut marked = HashSet::new();
    // A person with several photos (`extra`) comes once a photo: warned about once.
    let mut warned = HashSet::new();
    for (person, others) in near.each() {
        let me = &people[person];
        let mut named = Vec::new();
        let mut count = 0;
        for other in others {
            if *people[other].id == *me.id || is_allowed(&me.id, &people[other].id) {
                continue;
            }
            count += 1;
            if named.len() < NAMED {
                named.push(&people[other]);
            }
        }
        if count == 0 {
            continue;
        }
        let message = duplicate_message(&named, count);
        match config.photos.duplicate_photos {
            DuplicatePhotos::Refuse => {
                let finding = Finding::new(ReasonCode::DuplicatePhoto, message);
                for item in &mut plan.items[person * targets..(person + 1) * targets] {
                    if item.action != Action::Invalid {
                        item.action = Action::Invalid;
                        item.finding = Some(finding.clone());
                        item.quality = None;
                    }
                }
                marked.insert(person);
            }
            DuplicatePhotos::Warn if warned.insert(person) => {
                let warning = format!("{} (row {}): {message}", me.id, me.row);
                tracing::warn!("{warning}");
                plan.warnings.push(warning);
            }
            DuplicatePhotos::Warn | DuplicatePhotos::Off => {}
        }
    }
    marked
}

/// "the same photo as E1002's (row 17, E1002.jpg) and ...: check who ...".
fn duplicate_message(named: &[&Shared], count: usize) -> String {
    let mut list: Vec<String> = named
        .iter()
        .map(|p| {
            format!(
                "{}'s (row {}, {})",
                p.id,
                p.row,
                p.photo.as_deref().unwrap_or("no photo")
            )
        })
        .collect();
    let more = count - named.len();
    if more > 0 {
        list.push(format!("{more} other people's"));
    }
    let list = match list.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => list.concat(),
    };
    let whose = if count == 1 {
        "if these are the same person under two ids"
    } else {
        "if some are the same person under several ids"
    };
    format!(
        "the same photo as {list}: check who is in this photo; {whose}, allow it with photos.allow_same_photo"
    )
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
                    && p.source_hash.as_deref() == item.source_hash.as_deref()
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
                p.source_hash.as_deref() == item.source_hash.as_deref()
                    && p.fingerprint.as_deref() == Some(fingerprint)
                    && p.target_user_id.as_deref() == item.target_user_id.as_deref()
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
    known: &[Option<Known>],
) -> Vec<Result<Arc<str>, Finding>> {
    let jobs = rows
        .iter()
        .zip(photos)
        .zip(known)
        .map(|((row, photo), known)| {
            let cached = known
                .as_ref()
                .filter(|k| k.file_same)
                .and_then(|k| k.hash.clone());
            let path = photo.as_ref().ok().map(|p| p.path.clone());
            let row_no = row.row;
            async move {
                match (cached, path) {
                    (Some(h), _) => Ok(h),
                    (None, Some(path)) => tokio::task::spawn_blocking(move || hash_file(&path))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()))
                        .map(Arc::from)
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
