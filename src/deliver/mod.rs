//! The delivery engine: from a plan to faces delivered, for every target at once.
//!
//! One producer walks the people to upload in roster order, prepares each photo once for every
//! target that needs it (the photo stage bounds the CPU work), and hands each target its job
//! through a bounded channel. Each target is a [`lane::Lane`] with its own rate limiter,
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

pub(crate) mod lane;
pub(crate) mod preflight;
pub mod prune;
pub(crate) mod remote;
pub mod summary;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Profile};
use crate::identity::{self, Unresolved};
use crate::photo::{Normalized, PhotoStage};
use crate::plan::{self, Action, PlanItem, PlanOptions};
use crate::reason::{Finding, ReasonCode};
use crate::store::{DeliveryRecord, State, Store, StoreError};
use crate::targets::{Class, Failure, Target};
use lane::{Job, Lane};
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

/// A target for the run: ready, or why it cannot be used at all (a missing secret).
pub struct TargetSlot {
    pub name: String,
    pub target: Result<Arc<dyn Target>, String>,
}

/// Photos the stage found unfit during the run, by target and reason.
#[derive(Default)]
struct InvalidCounts(std::sync::Mutex<summary::ReasonCounts>);

impl InvalidCounts {
    fn add(&self, target: &str, code: crate::reason::ReasonCode) {
        let mut counts = self.0.lock().expect("counts lock");
        *counts
            .entry(target.to_string())
            .or_default()
            .entry(code)
            .or_default() += 1;
    }

    fn into_inner(self) -> summary::ReasonCounts {
        self.0.into_inner().expect("counts lock")
    }
}

/// One person to upload, with the plan items of the targets that need them.
struct Work<'p> {
    items: Vec<&'p PlanItem>,
    path: std::path::PathBuf,
}

/// Opens the state DB, builds the enabled (or chosen) targets and runs a sync: what `facesync
/// sync` does. A target that cannot be built (a missing secret) is reported as stopped while
/// the others go on.
pub async fn run(
    config: &Config,
    options: &SyncOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<Summary> {
    let names: Vec<&str> = config
        .enabled_targets()
        .into_iter()
        .filter(|t| options.plan.targets.is_empty() || options.plan.targets.iter().any(|o| o == t))
        .collect();
    if names.is_empty() {
        anyhow::bail!(
            "no target is enabled in {}: set `enabled = true` in a [targets.NAME] section",
            config.file.display()
        );
    }
    let slots = names
        .into_iter()
        .map(|name| TargetSlot {
            name: name.to_string(),
            target: crate::targets::build(config, name),
        })
        .collect();
    let _lock = RunLock::take(&config.state.database)?;
    let store = Store::open(&config.state.database).await?;
    let mut result = sync(config, &store, slots, options, shutdown).await;
    if let (Ok(summary), Some(path)) = (&mut result, &config.report.html) {
        match crate::report::write_html_file(&store, config, path).await {
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

impl RunLock {
    pub fn take(database: &std::path::Path) -> anyhow::Result<RunLock> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = std::path::PathBuf::from(name);
        crate::store::create_folder(database)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open lock file {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _held: file }),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another facesync sync is running on {} (lock file {}): wait for it to finish",
                database.display(),
                path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                anyhow::bail!("cannot lock {}: {e}", path.display())
            }
        }
    }
}

/// Runs a sync: plan, prepare, deliver, record. `shutdown` resolving (Ctrl-C) stops new work;
/// requests in flight finish and are recorded.
pub async fn sync(
    config: &Config,
    store: &Store,
    slots: Vec<TargetSlot>,
    options: &SyncOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let abandoned = store.close_abandoned_runs().await?;
    let in_flight = store.recover_in_flight().await?;
    if abandoned > 0 || !in_flight.is_empty() {
        tracing::warn!(
            "a previous run stopped without finishing ({} request(s) in flight): their people are sent again",
            in_flight.len()
        );
    }
    let run_id = store.begin_run("sync").await?;
    let result = run_recorded(config, store, run_id, slots, options, shutdown, started).await;
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
    slots: Vec<TargetSlot>,
    options: &SyncOptions,
    shutdown: impl Future<Output = ()> + Send,
    started: Instant,
) -> anyhow::Result<Summary> {
    let mut plan_options = options.plan.clone();
    plan_options.targets = slots.iter().map(|s| s.name.clone()).collect();
    // The producer below prepares each photo once, as it delivers.
    plan_options.defer_photo_check = true;

    // Lanes for the targets that could be built; the others are stopped from the start. Id
    // lookups and the pre-flight go through the lanes too, so they come first.
    let mut lanes: Vec<Arc<Lane>> = Vec::new();
    let mut unavailable: Vec<(String, String)> = Vec::new();
    for slot in slots {
        match slot.target {
            Ok(target) => {
                let delivery = config
                    .delivery(&slot.name)
                    .ok_or_else(|| anyhow::anyhow!("no settings for target {}", slot.name))?;
                lanes.push(Arc::new(Lane::new(target, delivery)));
            }
            Err(message) => {
                tracing::error!("{}: cannot start: {message}", slot.name);
                unavailable.push((slot.name, message));
            }
        }
    }

    // Ctrl-C or the deadline: no new work. The watcher then waits forever; the run ends when
    // the delivery has finished what was in flight.
    let stop_new_work = CancellationToken::new();
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop_new_work.clone();
        let interrupted = interrupted.clone();
        let deadline = options.max_duration;
        async move {
            let deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown => {
                    tracing::warn!("interrupted: finishing the requests in flight, taking no new work");
                    interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                _ = deadline => tracing::warn!("--max-duration reached: taking no new work"),
            }
            stop.cancel();
            std::future::pending::<std::convert::Infallible>().await
        }
    };

    let progress = &options.progress;
    let delivery = async {
        let unresolved = if lanes.iter().any(|l| l.target.abilities().lookup_batch > 0) {
            let roster = crate::roster::read(&config.roster)?;
            identity::resolve(config, store, &lanes, &roster.rows, &stop_new_work).await?
        } else {
            Unresolved::default()
        };
        let mut plan = plan::build(config, store, run_id, &plan_options).await?;
        for lane in &lanes {
            preflight::run(config, store, lane, &mut plan, &stop_new_work).await?;
        }
        record_unresolved(config, store, &lanes, &plan, &unresolved).await?;
        let plan = plan;

        let work = work_list(&plan, options.limit);
        let invalid = InvalidCounts::default();
        progress.photos(work.len() as u64);
        for lane in &lanes {
            let total = work
                .iter()
                .filter(|w| w.items.iter().any(|i| i.target == lane.name()))
                .count();
            progress.target(lane.name(), total as u64);
        }
        // Prepare every target that has work (token, group) before its first upload.
        let busy = |lane: &Lane| {
            work.iter()
                .any(|w| w.items.iter().any(|i| i.target == lane.name()))
        };
        futures::future::join_all(lanes.iter().filter(|l| busy(l)).map(|lane| async move {
            if let Err(f) = lane.target.prepare().await {
                let f = match f.class {
                    Class::Fatal => f,
                    _ => Failure {
                        message: format!("cannot get ready: {}", f.message),
                        ..f
                    },
                };
                lane.stop(f);
            }
        }))
        .await;
        let ctx = Ctx {
            config,
            store,
            run_id,
            lanes: &lanes,
            stage: PhotoStage::new(config.photos.clone()),
            stop: &stop_new_work,
            invalid: &invalid,
            progress,
        };
        ctx.deliver_all(&work).await?;

        let mut pruned = HashMap::new();
        if options.prune {
            for lane in &lanes {
                let outcome = prune::run(
                    config,
                    store,
                    run_id,
                    lane,
                    &plan,
                    options.prune_force,
                    &stop_new_work,
                )
                .await?;
                if let Some(outcome) = outcome {
                    pruned.insert(lane.name().to_string(), outcome);
                }
            }
        }
        Ok::<_, anyhow::Error>(Summary::new(
            &plan,
            &lanes,
            &unavailable,
            &invalid.into_inner(),
            &pruned,
            interrupted.load(std::sync::atomic::Ordering::SeqCst),
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
            .get(&(item.target.clone(), item.id.clone()))
            .filter(|f| f.class != Class::Fatal)
        else {
            continue;
        };
        let Some(lane) = lanes.iter().find(|l| l.name() == item.target) else {
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

/// The people to upload, in roster order, each with the targets that need them.
fn work_list(plan: &plan::Plan, limit: Option<usize>) -> Vec<Work<'_>> {
    let mut order: Vec<String> = Vec::new();
    let mut by_person: HashMap<String, Work<'_>> = HashMap::new();
    // An upload without a target id is one whose lookup failed or never ran: not sent.
    for item in plan
        .items
        .iter()
        .filter(|i| i.action == Action::Upload && i.target_user_id.is_some())
    {
        let Some(path) = item.photo.as_ref().and_then(|p| plan.photo_paths.get(p)) else {
            continue;
        };
        by_person
            .entry(item.id.clone())
            .or_insert_with(|| {
                order.push(item.id.clone());
                Work {
                    items: Vec::new(),
                    path: path.clone(),
                }
            })
            .items
            .push(item);
    }
    let mut work: Vec<Work<'_>> = order
        .into_iter()
        .filter_map(|id| by_person.remove(&id))
        .collect();
    if let Some(n) = limit {
        work.truncate(n);
    }
    work
}

/// What every part of one run's delivery shares.
struct Ctx<'a> {
    config: &'a Config,
    store: &'a Store,
    run_id: i64,
    lanes: &'a [Arc<Lane>],
    stage: PhotoStage,
    /// Ctrl-C or the deadline: take no new work.
    stop: &'a CancellationToken,
    invalid: &'a InvalidCounts,
    progress: &'a crate::progress::Handle,
}

impl Ctx<'_> {
    /// Runs the producer and one consumer per lane until all work is done or stopped.
    async fn deliver_all(&self, work: &[Work<'_>]) -> Result<(), StoreError> {
        let mut senders = Vec::new();
        let mut consumers = Vec::new();
        for lane in self.lanes {
            let (tx, rx) = mpsc::channel::<Job>(lane.concurrency * 2);
            senders.push(tx);
            consumers.push(consume(
                lane.clone(),
                rx,
                self.store.clone(),
                self.run_id,
                self.stop.clone(),
                self.progress.clone(),
            ));
        }
        let (produced, consumed) = tokio::join!(
            self.produce(senders, work),
            futures::future::join_all(consumers)
        );
        produced?;
        consumed.into_iter().collect()
    }

    /// Prepares photos and hands out jobs: a person goes to every lane that has room now; a
    /// lane that is full gets them later in its own catch-up pass.
    async fn produce(
        &self,
        senders: Vec<mpsc::Sender<Job>>,
        work: &[Work<'_>],
    ) -> Result<(), StoreError> {
        let lanes = self.lanes;
        let lane_index: HashMap<&str, usize> = lanes
            .iter()
            .enumerate()
            .map(|(i, l)| (l.name(), i))
            .collect();
        let mut deferred: Vec<Vec<usize>> = vec![Vec::new(); lanes.len()];
        for (w, person) in work.iter().enumerate() {
            if self.stop.is_cancelled() {
                break;
            }
            let wanted: Vec<usize> = person
                .items
                .iter()
                .filter_map(|i| lane_index.get(i.target.as_str()).copied())
                .filter(|&l| !lanes[l].stopped.is_cancelled())
                .collect();
            if wanted.is_empty() {
                continue;
            }
            // Reserve room in every wanted lane that has it; wait only when none has.
            let mut permits = Vec::new();
            let mut full = Vec::new();
            for &l in &wanted {
                match senders[l].try_reserve() {
                    Ok(p) => permits.push((l, p)),
                    Err(_) => full.push(l),
                }
            }
            if permits.is_empty() {
                let waits = full
                    .iter()
                    .map(|&l| senders[l].reserve().map(move |p| (l, p)).boxed());
                let ((l, permit), _, _) = tokio::select! {
                    r = futures::future::select_all(waits) => r,
                    _ = self.stop.cancelled() => break,
                };
                match permit {
                    Ok(p) => {
                        full.retain(|&x| x != l);
                        permits.push((l, p));
                    }
                    Err(_) => continue,
                }
            }
            for l in full {
                deferred[l].push(w);
            }
            let targets: Vec<usize> = permits.iter().map(|(l, _)| *l).collect();
            match self.prepare(person, &targets).await {
                Ok(mut photos) => {
                    for (l, permit) in permits {
                        if let Some(job) = self.job_for(person, lanes[l].name(), &mut photos) {
                            permit.send(job);
                        }
                    }
                }
                // One target's budget may be too small where another's is not: each on its own.
                Err(finding) if finding.code == ReasonCode::CannotFit && targets.len() > 1 => {
                    for (l, permit) in permits {
                        match self.prepare(person, &[l]).await {
                            Ok(mut photos) => {
                                if let Some(job) =
                                    self.job_for(person, lanes[l].name(), &mut photos)
                                {
                                    permit.send(job);
                                }
                            }
                            Err(finding) => self.record_invalid(person, &[l], &finding).await?,
                        }
                    }
                }
                Err(finding) => self.record_invalid(person, &targets, &finding).await?,
            }
        }
        // Catch-up: each lane's deferred people, lanes in parallel, waiting for room.
        let catch_up = senders.into_iter().enumerate().map(|(l, tx)| {
            let people = std::mem::take(&mut deferred[l]);
            async move {
                for w in people {
                    if self.stop.is_cancelled() || lanes[l].stopped.is_cancelled() {
                        break;
                    }
                    let person = &work[w];
                    match self.prepare(person, &[l]).await {
                        Ok(mut photos) => {
                            if let Some(job) = self.job_for(person, lanes[l].name(), &mut photos)
                                && tx.send(job).await.is_err()
                            {
                                break;
                            }
                        }
                        Err(finding) => self.record_invalid(person, &[l], &finding).await?,
                    }
                }
                Ok::<(), StoreError>(())
            }
        });
        futures::future::join_all(catch_up)
            .await
            .into_iter()
            .collect()
    }

    /// Prepares one person's photo for the given lanes' profiles (one decode).
    async fn prepare(
        &self,
        person: &Work<'_>,
        targets: &[usize],
    ) -> Result<Vec<Normalized>, Finding> {
        let profiles: Vec<(String, Profile)> = targets
            .iter()
            .filter_map(|&l| {
                let name = self.lanes[l].name();
                self.config
                    .delivery(name)
                    .map(|d| (name.to_string(), d.profile.clone()))
            })
            .collect();
        let prepared = self.stage.prepare_file(person.path.clone(), profiles).await;
        self.progress.photo_done();
        prepared
    }

    fn job_for(
        &self,
        person: &Work<'_>,
        target: &str,
        photos: &mut Vec<Normalized>,
    ) -> Option<Job> {
        let item = person.items.iter().find(|i| i.target == target)?;
        let at = photos.iter().position(|p| p.target == target)?;
        Some(Job {
            person_id: item.id.clone(),
            name: item.name.clone(),
            user_id: item.target_user_id.clone()?,
            source_hash: item.source_hash.clone()?,
            fingerprint: self.config.delivery_fingerprint(target),
            photo: photos.swap_remove(at),
        })
    }

    /// A photo the stage found unfit for these lanes' targets: recorded and counted.
    async fn record_invalid(
        &self,
        person: &Work<'_>,
        targets: &[usize],
        finding: &Finding,
    ) -> Result<(), StoreError> {
        let previous = self.store.deliveries_of(&person.items[0].id).await?;
        let names: Vec<&str> = targets.iter().map(|&l| self.lanes[l].name()).collect();
        let rows: Vec<_> = person
            .items
            .iter()
            .filter(|item| names.contains(&item.target.as_str()))
            .filter_map(|item| {
                self.invalid.add(&item.target, finding.code);
                let mut invalid = (*item).clone();
                invalid.action = Action::Invalid;
                invalid.finding = Some(finding.clone());
                let prev = previous.iter().find(|d| d.target == item.target);
                plan::record_for(
                    prev,
                    &invalid,
                    &self.config.delivery_fingerprint(&item.target),
                )
            })
            .collect();
        tracing::info!("{}: {}", person.items[0].id, finding);
        self.store.save_deliveries(&rows).await
    }
}

/// Takes jobs off a lane's queue and delivers them, at most `concurrency` at once.
async fn consume(
    lane: Arc<Lane>,
    mut rx: mpsc::Receiver<Job>,
    store: Store,
    run_id: i64,
    stop_new_work: CancellationToken,
    progress: crate::progress::Handle,
) -> Result<(), StoreError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(lane.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(job) = rx.recv().await {
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        let (lane, store, stop) = (lane.clone(), store.clone(), stop_new_work.clone());
        let progress = progress.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let done = lane.deliver(job, &store, run_id, &stop).await;
            progress.upload_done(lane.name());
            done
        });
        while let Some(done) = tasks.try_join_next() {
            done.expect("delivery task panicked")?;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("delivery task panicked")?;
    }
    Ok(())
}
