//! The delivery engine: from a plan to faces delivered, for every target at once.
//!
//! One producer walks the people to upload in roster order, prepares each photo once for every
//! target that needs it (the photo stage bounds the CPU work), and hands each target its job
//! through a bounded channel. Each target is a [`Lane`] with its own rate limiter,
//! concurrency cap and pause gate, so a slow target does not hold back a fast one: when a
//! target's queue is full the producer moves on and keeps that person for the target's own
//! catch-up pass (the photo is prepared again then, instead of being held in memory).
//!
//! Around the deliveries, each through the same lanes: before planning, ids the roster lacks
//! are looked up ([`crate::identity`]); before uploading, a target that gates who may hold a
//! face is listed once ([`preflight`]); after the uploads, `--prune` deletes leavers from the
//! targets that can ([`prune`]).
//!
//! The engine names no concrete target: it takes [`Target`]s and asks their
//! [`crate::targets::Abilities`].

pub(crate) mod preflight;
pub mod prune;
pub(crate) mod remote;
mod schedule;
pub mod summary;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;

use self::schedule::{Ctx, InvalidCounts, work_list};
use crate::config::Config;
use crate::identity::{self, Unresolved};
use crate::lane::{Lane, Purpose, Retried};
use crate::photo::PhotoStage;
use crate::plan::{self, Action, PlanOptions};
use crate::session::{Session, fan_out};
use crate::store::{DeliveryRecord, State, Store, StoreError};
use crate::targets::{Class, Failure};
pub use prune::PruneOutcome;
pub use summary::{Summary, TargetSummary};

/// What `sync` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    pub plan: PlanOptions,
    /// At most this many people are uploaded this run.
    pub limit: Option<usize>,
    /// Stop taking new work after this long.
    pub max_duration: Option<Duration>,
    /// Where progress is shown.
    pub progress: crate::progress::Handle,
    /// After the uploads, delete from the targets that can the users no longer in the roster.
    pub prune: bool,
    /// Prune even more than the configured share of a target's users.
    pub prune_force: bool,
}

/// Opens the state DB, builds the enabled (or chosen) targets and runs a sync: what `facesync
/// sync` does. A target that cannot be built (a missing secret) is reported as stopped while
/// the others go on.
pub async fn run(
    config: &Config,
    options: &SyncOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<Summary> {
    let names = crate::session::choose(config, &options.plan.targets)?;
    let session = Session::open(config, &names);
    let _lock = RunLock::take(&config.state.database)?;
    let store = Store::open(&config.state.database).await?;
    let mut result = sync(config, &store, session, options, shutdown).await;
    if let (Ok(summary), Some(path)) = (&mut result, &config.report.html) {
        let started = Instant::now();
        let written = crate::report::write_html_file(&store, config, path).await;
        tracing::debug!("the HTML report took {:?}", started.elapsed());
        match written {
            Ok(()) => summary.report = Some(path.clone()),
            Err(e) => tracing::warn!("cannot write the HTML report: {e:#}"),
        }
    }
    store.close().await;
    result
}

/// One sync at a time per state DB: a second one (a manual run during the nightly one) would
/// send the same people twice. The OS releases the lock when the process ends, however it ends.
pub struct RunLock {
    _held: std::fs::File,
}

/// Why the run lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another facesync sync is running on {} (lock file {}): wait for it to finish",
        database.display(),
        lock.display()
    )]
    Busy {
        database: std::path::PathBuf,
        lock: std::path::PathBuf,
    },
    #[error("cannot lock {}: {source}", lock.display())]
    Io {
        lock: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Folder(#[from] crate::store::StoreError),
}

impl RunLock {
    /// The lock file of the state DB at `database`.
    fn path(database: &std::path::Path) -> std::path::PathBuf {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        std::path::PathBuf::from(name)
    }

    /// True when a sync holds the lock now. The lock is tried and let go at once; nothing is
    /// created (no lock file: nobody holds it).
    pub fn is_held(database: &std::path::Path) -> Result<bool, LockError> {
        let lock = Self::path(database);
        let file = match std::fs::OpenOptions::new().write(true).open(&lock) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(LockError::Io { lock, source }),
        };
        match file.try_lock() {
            Ok(()) => Ok(false),
            Err(std::fs::TryLockError::WouldBlock) => Ok(true),
            Err(std::fs::TryLockError::Error(source)) => Err(LockError::Io { lock, source }),
        }
    }

    /// Takes the lock of the state DB at `database` (creating its folder and lock file), or
    /// says who holds it.
    pub fn take(database: &std::path::Path) -> Result<RunLock, LockError> {
        let lock = Self::path(database);
        crate::store::create_folder(database)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|source| LockError::Io {
                lock: lock.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _held: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Busy {
                database: database.to_path_buf(),
                lock,
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(LockError::Io { lock, source }),
        }
    }
}

/// Runs a sync: plan, prepare, deliver, record. `shutdown` resolving (Ctrl-C) stops new work;
/// requests in flight finish and are recorded.
pub async fn sync(
    config: &Config,
    store: &Store,
    session: Session,
    options: &SyncOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let abandoned = store.close_abandoned_runs().await?;
    // A read left in flight (a check, a download) is closed as interrupted and changes
    // nobody's state; an upload or removal left in flight is done again where the plan says so.
    let in_flight = store.recover_in_flight().await?;
    if abandoned > 0 || !in_flight.is_empty() {
        let changes = in_flight.iter().filter(|a| a.kind.is_change()).count();
        tracing::warn!(
            "a previous run stopped without finishing: {changes} upload(s) or removal(s) in \
             flight are tried again, {} check(s) or download(s) in flight are closed as \
             interrupted",
            in_flight.len() - changes
        );
    }
    let run_id = store.begin_run("sync").await?;
    let result = run_recorded(config, store, run_id, session, options, shutdown, started).await;
    match &result {
        Ok(summary) => {
            store
                .finish_run(
                    run_id,
                    if summary.interrupted {
                        "interrupted"
                    } else {
                        "completed"
                    },
                    summary.exit_code().into(),
                    &summary.to_json(),
                )
                .await?
        }
        Err(e) => {
            store
                .finish_run(
                    run_id,
                    "failed",
                    1,
                    &serde_json::json!({ "error": format!("{e:#}") }),
                )
                .await?
        }
    }
    result
}

async fn run_recorded(
    config: &Config,
    store: &Store,
    run_id: i64,
    session: Session,
    options: &SyncOptions,
    shutdown: impl Future<Output = ()> + Send,
    started: Instant,
) -> anyhow::Result<Summary> {
    let mut plan_options = options.plan.clone();
    plan_options.targets = session.names.clone();
    // The producer below prepares each photo once, as it delivers.
    plan_options.defer_photo_check = true;

    // Lanes for the targets that could be built; the others are stopped from the start. Id
    // lookups and the pre-flight go through the lanes too, so they come first. Ctrl-C or the
    // deadline: no new work; the run ends when what was in flight has finished.
    let lanes = session.lanes.as_slice();
    let unavailable = session.unavailable.as_slice();
    let stop_new_work = &session.stop;
    let watcher = session.watch(
        shutdown,
        options.max_duration,
        "finishing the requests in flight, taking no new work",
    );

    let progress = &options.progress;
    let delivery = async {
        let unresolved = if lanes.iter().any(|l| l.target.abilities().lookup_batch > 0) {
            let roster = crate::roster::read(&config.roster)?;
            identity::resolve(config, store, lanes, &roster.rows, stop_new_work).await?
        } else {
            Unresolved::default()
        };
        let mut plan = plan::build(config, store, run_id, &plan_options).await?;
        for lane in lanes {
            preflight::run(config, store, run_id, lane, &mut plan, stop_new_work).await?;
        }
        record_unresolved(config, store, lanes, &plan, &unresolved).await?;
        let plan = plan;

        let work = work_list(&plan, options.limit);
        let invalid = InvalidCounts::default();
        progress.photos(work.len() as u64);
        for lane in lanes {
            let total = work
                .iter()
                .filter(|w| w.items.iter().any(|i| &*i.target == lane.name()))
                .count();
            progress.target(lane.name(), total as u64);
        }
        // Prepare every target that has work (token, group) before its first upload.
        let busy = |lane: &Lane| {
            work.iter()
                .any(|w| w.items.iter().any(|i| &*i.target == lane.name()))
        };
        let work_ref = &work;
        fan_out(lanes, |lane| async move {
            if !busy(lane) {
                return;
            }
            // Through the lane: a transient failure (a 5xx, a busy device) is retried like
            // any request; a fatal one stops the lane there.
            let ready = lane
                .with_retries_for(Purpose::Check, stop_new_work, || async {
                    Ok(lane.target.prepare().await)
                })
                .await;
            match ready {
                Ok(Retried::Done(())) => {}
                Ok(Retried::Failed(f)) => {
                    let f = match f.class {
                        Class::Fatal => f,
                        _ => Failure {
                            class: Class::Fatal,
                            message: format!("cannot get ready: {}", f.message),
                            ..f
                        },
                    };
                    lane.stop(f);
                    return;
                }
                Ok(Retried::Stopped { .. }) | Err(_) => return,
            }
            let arriving: Vec<&str> = work_ref
                .iter()
                .flat_map(|w| &w.items)
                .filter(|i| &*i.target == lane.name())
                .filter_map(|i| i.target_user_id.as_deref())
                .collect();
            let room = lane
                .with_retries_for(Purpose::Check, stop_new_work, || async {
                    Ok(lane.target.check_room(&arriving).await)
                })
                .await;
            if let Ok(Retried::Failed(f)) = room {
                lane.stop(Failure {
                    class: Class::Fatal,
                    ..f
                });
            }
        })
        .await;
        let ctx = Ctx {
            config,
            store,
            run_id,
            lanes,
            stage: PhotoStage::new(config.photos.clone()).with_hints(plan.face_hints.clone()),
            stop: stop_new_work,
            invalid: &invalid,
            progress,
        };
        ctx.deliver_all(&work).await?;
        if stop_new_work.is_cancelled() || lanes.iter().any(|l| l.stopped.is_cancelled()) {
            record_not_sent(store, lanes, &work).await?;
        }

        let mut pruned = HashMap::new();
        if options.prune {
            for lane in lanes {
                let outcome = prune::run(
                    config,
                    store,
                    run_id,
                    lane,
                    &plan,
                    options.prune_force,
                    stop_new_work,
                )
                .await?;
                if let Some(outcome) = outcome {
                    pruned.insert(lane.name().to_string(), outcome);
                }
            }
        }
        Ok::<_, anyhow::Error>(Summary::new(
            &plan,
            lanes,
            unavailable,
            &invalid.into_inner(),
            &pruned,
            session.interrupted(),
            started.elapsed(),
        ))
    };
    let outcome = tokio::select! {
        r = delivery => r,
        never = watcher.boxed() => match never {},
    };
    stop_new_work.cancel();
    progress.finish();
    outcome
}

/// People the run planned to send but never handed to their lane (the target stopped, Ctrl-C,
/// the deadline): their rows, still pending with no reason, say why they were not sent.
async fn record_not_sent(
    store: &Store,
    lanes: &[Arc<Lane>],
    work: &[schedule::Work<'_>],
) -> Result<(), StoreError> {
    let mut rows = Vec::new();
    for item in work.iter().flat_map(|w| &w.items) {
        let Some(lane) = lanes.iter().find(|l| l.name() == &*item.target) else {
            continue;
        };
        let Some(mut row) = store.delivery(&item.id, &item.target).await? else {
            continue;
        };
        if row.state == State::Pending && row.reason_code.is_none() {
            let (reason, message) = lane.not_sent_reason();
            row.mark_left_undone(false, reason, message);
            rows.push(row);
        }
    }
    store.save_deliveries(&rows).await
}

/// People whose id could not be looked up this run (the lookup failed after its retries):
/// recorded as failed, to be tried again on the next run, and not sent. A lookup stopped by a
/// fatal failure leaves them to the stopped target's "not sent".
async fn record_unresolved(
    config: &Config,
    store: &Store,
    lanes: &[Arc<Lane>],
    plan: &plan::Plan,
    unresolved: &Unresolved,
) -> Result<(), StoreError> {
    if unresolved.failed.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::new();
    for item in plan
        .items
        .iter()
        .filter(|i| i.action == Action::Upload && i.target_user_id.is_none())
    {
        let Some(f) = unresolved
            .failed
            .get(&(item.target.to_string(), item.id.to_string()))
            .filter(|f| f.class != Class::Fatal)
        else {
            continue;
        };
        let Some(lane) = lanes.iter().find(|l| l.name() == &*item.target) else {
            continue;
        };
        lane.counts.fail(State::FailedRetryable, f.reason);
        let mut d = store
            .delivery(&item.id, &item.target)
            .await?
            .unwrap_or_else(|| DeliveryRecord::new(&item.id, &item.target));
        d.set_about(crate::delivery::About {
            source_hash: item.source_hash.as_deref(),
            fingerprint: &config.delivery_fingerprint(&item.target),
            user_id: None,
        });
        d.mark_failed_without_request(
            f.class,
            f.reason,
            format!(
                "row {}: cannot look up the {} id by e-mail or mobile: {}",
                item.row, item.target, f.message
            ),
        );
        rows.push(d);
    }
    store.save_deliveries(&rows).await
}
