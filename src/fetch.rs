//! Downloading the faces a target holds (Feishu), one file per roster person: for backups
//! before a migration and audits of what the doors hold. Resumable: a file already there is
//! kept unless `force`. Rate-limited and retried exactly like uploads (the same lane).

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt as _;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::outcome::Outcome;
use crate::config::Config;
use crate::lane::{Lane, Purpose, Retried};
use crate::identity::Directory;
use crate::reason::ReasonCode;
use crate::roster;
use crate::targets;

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

/// Fetches the face of every roster person from `target_name`.
pub async fn fetch(
    config: &Config,
    target_name: &str,
    options: &FetchOptions,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<FetchSummary> {
    let delivery = config.delivery(target_name).ok_or_else(|| {
        anyhow::anyhow!(
            "no [targets.{target_name}] section in {}",
            config.file.display()
        )
    })?;
    let target =
        targets::build(config, target_name).map_err(|e| anyhow::anyhow!("{target_name}: {e}"))?;
    std::fs::create_dir_all(&options.out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", options.out.display()))?;
    let roster = roster::read(&config.roster)?;
    let present = existing_ids(&options.out)?;
    // Ids looked up by e-mail or mobile come from the state DB's cache (sync fills it).
    let directory = if config.state.database.exists() {
        let store = crate::store::Store::open(&config.state.database).await?;
        let directory = Directory::load(&store, config, &[target_name.to_string()]).await;
        store.close().await;
        directory?
    } else {
        Directory::default()
    };

    let mut summary = FetchSummary::default();
    let mut wanted = Vec::new();
    for row in &roster.rows {
        if row.finding.is_some() {
            summary.invalid_rows += 1;
            continue;
        }
        if !options.force && present.contains(&row.person.id.to_lowercase()) {
            summary.kept += 1;
            continue;
        }
        match directory.user_id(config, target_name, &row.person) {
            Ok(Some(uid)) => wanted.push((row.person.id.clone(), uid)),
            Ok(None) | Err(_) => summary.invalid_rows += 1,
        }
    }

    let lane = Arc::new(Lane::new(target.clone(), delivery));
    if let Err(f) = target.prepare().await {
        summary.stopped = Some(f.message);
        return Ok(summary);
    }
    let stop = CancellationToken::new();
    let watcher = {
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.cancel();
            std::future::pending::<()>().await
        }
    };
    options.progress.target(target_name, wanted.len() as u64);
    let downloads = futures::stream::iter(wanted)
        .map(|(id, uid)| {
            let (lane, target, stop) = (lane.clone(), target.clone(), stop.clone());
            let cropped = options.cropped;
            async move {
                let outcome = lane
                    .with_retries_for(Purpose::Check, &stop, || async {
                        Ok(target.download(&uid, cropped).await)
                    })
                    .await;
                (id, outcome)
            }
        })
        .buffer_unordered(delivery.concurrency)
        .collect::<Vec<_>>();
    let results = tokio::select! {
        r = downloads => r,
        _ = watcher => unreachable!("the watcher never finishes"),
    };
    for (id, outcome) in results {
        options.progress.upload_done(target_name);
        match outcome? {
            Retried::Done(Some(bytes)) => {
                write_face(&options.out, &id, &bytes)?;
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

/// Lower-case ids that already have a file in the output folder.
fn existing_ids(dir: &Path) -> anyhow::Result<HashSet<String>> {
    let mut ids = HashSet::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some((stem, _)) = name.rsplit_once('.')
            && !stem.starts_with('.')
        {
            ids.insert(stem.to_lowercase());
        }
    }
    Ok(ids)
}

/// Writes `DIR/<id>.<ext>` (extension from the bytes) through a temp file, so an interrupted
/// fetch never leaves half a photo that the next run would keep.
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
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(&path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}
