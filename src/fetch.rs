//! Downloading the faces a target holds (Feishu), one file per roster person: for backups
//! before a migration and audits of what the doors hold. Resumable: a file already there is
//! kept unless `force`. Rate-limited and retried exactly like uploads (the same lane), and
//! recorded like them: each download is the person's `download` attempt in the state DB's
//! audit trail, with its outcome (`found`, `not_found`, or how it failed).

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use serde::Serialize;

use crate::config::Config;
use crate::delivery::{Attempt, Subject, record_attempt};
use crate::identity::Directory;
use crate::lane::{Lane, Purpose, Retried};
use crate::outcome::Outcome;
use crate::reason::ReasonCode;
use crate::roster;
use crate::session::Session;
use crate::store::{AttemptKind, Store, StoreError};

/// What `fetch` was asked to do.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub out: PathBuf,
    /// The target's face crop instead of the stored photo.
    pub cropped: bool,
    /// Download again what is already in `out`.
    pub force: bool,
    pub progress: crate::progress::Handle,
}

/// What a fetch did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FetchSummary {
    pub downloaded: usize,
    /// Already in the output folder.
    pub kept: usize,
    /// The target holds no face for these ids.
    pub no_face_on_file: Vec<String>,
    /// Failures by reason, with the ids.
    pub failed: BTreeMap<ReasonCode, Vec<String>>,
    /// Roster rows that cannot be fetched (missing or duplicate id, an id not looked up yet).
    pub invalid_rows: usize,
    /// Why the target stopped, if it did.
    pub stopped: Option<String>,
}

impl FetchSummary {
    /// Failed when the target stopped, needs attention when some downloads failed.
    pub fn outcome(&self) -> Outcome {
        if self.stopped.is_some() {
            Outcome::Failed
        } else if !self.failed.is_empty() {
            Outcome::NeedsAttention
        } else {
            Outcome::Clean
        }
    }

    /// The exit status: [`FetchSummary::outcome`]'s.
    pub fn exit_code(&self) -> u8 {
        self.outcome().exit_code()
    }
}

/// Fetches the face of every roster person from `target_name`. Each download is recorded in
/// the state DB (created if needed) as the person's `download` attempt, within a `fetch` run.
pub async fn fetch(
    config: &Config,
    target_name: &str,
    options: &FetchOptions,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<FetchSummary> {
    if config.target(target_name).is_none() {
        anyhow::bail!(
            "no [targets.{target_name}] section in {}",
            config.file.display()
        );
    }
    let session = Session::open(config, &[target_name.to_string()]);
    let Some(lane) = session.lanes.first() else {
        let why = session
            .unavailable
            .first()
            .map_or("", |(_, why)| why.as_str());
        anyhow::bail!("{target_name}: {why}");
    };
    std::fs::create_dir_all(&options.out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", options.out.display()))?;
    remove_leftovers(&options.out)?;
    let roster = roster::read(&config.roster)?;
    let present = existing_ids(&options.out)?;
    let store = Store::open(&config.state.database).await?;
    let result = async {
        // Ids looked up by e-mail or mobile come from the state DB's cache (sync fills it).
        let directory = Directory::load(&store, config, &[target_name.to_string()]).await?;
        let (mut kept, mut invalid_rows) = (0, 0);
        let mut wanted = Vec::new();
        for row in &roster.rows {
            if row.finding.is_some() {
                invalid_rows += 1;
                continue;
            }
            if !options.force && present.contains(&row.person.id.to_lowercase()) {
                kept += 1;
                continue;
            }
            match directory.user_id(config, target_name, &row.person) {
                Ok(Some(uid)) => wanted.push((row.person.id.clone(), uid)),
                Ok(None) | Err(_) => invalid_rows += 1,
            }
        }
        let run_id = store.begin_run("fetch").await?;
        let result = download(&store, run_id, &session, lane, wanted, options, shutdown)
            .await
            .map(|downloaded| FetchSummary {
                kept,
                invalid_rows,
                ..downloaded
            });
        finish_run(&store, run_id, session.interrupted(), &result).await?;
        result
    }
    .await;
    store.close().await;
    result
}

/// Records how the fetch run `run_id` ended, with its summary or its error.
async fn finish_run(
    store: &Store,
    run_id: i64,
    interrupted: bool,
    result: &anyhow::Result<FetchSummary>,
) -> Result<(), StoreError> {
    match result {
        Ok(summary) => {
            let status = if interrupted {
                "interrupted"
            } else {
                "completed"
            };
            let json = serde_json::to_value(summary).unwrap_or_default();
            store
                .finish_run(run_id, status, summary.exit_code().into(), &json)
                .await
        }
        Err(e) => {
            let json = serde_json::json!({ "error": format!("{e:#}") });
            store.finish_run(run_id, "failed", 1, &json).await
        }
    }
}

/// Downloads the `wanted` (person id, target user id) faces through the lane, each recorded as
/// a `download` attempt of run `run_id`, and writes each as it arrives. The summary counts
/// these downloads only.
async fn download(
    store: &Store,
    run_id: i64,
    session: &Session,
    lane: &Lane,
    wanted: Vec<(String, String)>,
    options: &FetchOptions,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<FetchSummary> {
    let mut summary = FetchSummary::default();
    let target_name = lane.name();
    if let Err(f) = lane.target.prepare().await {
        summary.stopped = Some(f.message);
        return Ok(summary);
    }
    let stop = &session.stop;
    let watcher = session.watch(shutdown, None, "taking no new downloads");
    options.progress.target(target_name, wanted.len() as u64);
    let mut downloads = futures::stream::iter(wanted)
        .map(|(id, uid)| async move {
            let outcome = lane
                .with_retries_for(Purpose::Check, stop, || {
                    let attempt = Attempt {
                        run_id,
                        kind: AttemptKind::Download,
                        sent_hash: None,
                        subject: Subject::Read {
                            person_id: &id,
                            target: target_name,
                        },
                    };
                    record_attempt(store, attempt, lane.target.download(&uid, options.cropped))
                })
                .await;
            (id, outcome)
        })
        .buffer_unordered(lane.concurrency);
    tokio::pin!(watcher);
    // Each face is written as it arrives: memory holds at most `concurrency` of them whatever
    // the roster's size, and a run killed half-way keeps what it had.
    loop {
        let (id, outcome) = tokio::select! {
            next = downloads.next() => match next {
                Some(done) => done,
                None => break,
            },
            _ = &mut watcher => unreachable!("the watcher never finishes"),
        };
        options.progress.upload_done(target_name);
        match outcome? {
            Retried::Done(Some(bytes)) => {
                let dir = options.out.clone();
                tokio::task::spawn_blocking(move || write_face(&dir, &id, &bytes))
                    .await
                    .map_err(|e| anyhow::anyhow!("writing a face failed: {e}"))??;
                summary.downloaded += 1;
            }
            Retried::Done(None) => summary.no_face_on_file.push(id),
            Retried::Failed(f) => summary.failed.entry(f.reason).or_default().push(id),
            Retried::Stopped { .. } => summary
                .failed
                .entry(ReasonCode::Interrupted)
                .or_default()
                .push(id),
        }
    }
    options.progress.finish();
    summary.stopped = lane.stop_message();
    summary.no_face_on_file.sort();
    Ok(summary)
}

/// Temporary files are named `.facesync-<random>.part`: hidden, never taken for a face, and
/// removed by the next fetch if a kill left one behind.
const TEMP_PREFIX: &str = ".facesync-";
const TEMP_SUFFIX: &str = ".part";

fn is_temp(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// Removes the temporary files a killed fetch left in `dir`.
fn remove_leftovers(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if is_temp(&entry.file_name().to_string_lossy()) {
            std::fs::remove_file(entry.path()).map_err(|e| {
                anyhow::anyhow!(
                    "cannot remove {} left by an interrupted fetch: {e}",
                    entry.path().display()
                )
            })?;
        }
    }
    Ok(())
}

/// Lower-case ids that already have a file in the output folder.
fn existing_ids(dir: &Path) -> anyhow::Result<HashSet<String>> {
    let mut ids = HashSet::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some((stem, _)) = name.rsplit_once('.')
            && !stem.is_empty()
            && !stem.starts_with('.')
        {
            ids.insert(stem.to_lowercase());
        }
    }
    Ok(ids)
}

/// Writes `DIR/<id>.<ext>` (extension from the bytes) through a temp file in the same folder,
/// flushed to disk and renamed, so a file is either whole or absent, even after a kill or a
/// power cut: an interrupted fetch never leaves half a photo that the next run would keep.
fn write_face(dir: &Path, id: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    let ext = match image::guess_format(bytes) {
        Ok(image::ImageFormat::Png) => "png",
        Ok(image::ImageFormat::Jpeg) => "jpg",
        Ok(image::ImageFormat::WebP) => "webp",
        Ok(image::ImageFormat::Bmp) => "bmp",
        Ok(image::ImageFormat::Gif) => "gif",
        Ok(image::ImageFormat::Tiff) => "tif",
        _ => "bin",
    };
    let path = dir.join(format!("{id}.{ext}"));
    let failed =
        |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot write {}: {e}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(|e| failed(&e))?;
    tmp.write_all(bytes).map_err(|e| failed(&e))?;
    tmp.as_file().sync_all().map_err(|e| failed(&e))?;
    tmp.persist(&path).map_err(|e| failed(&e))?;
    Ok(path)
}
