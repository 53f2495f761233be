//! The scheduler of one sync: who is sent (the work list, `--limit`), the producer that prepares
//! each photo once for all its targets, and one consumer per lane that delivers at most
//! `concurrency` jobs at once. The use case (`mod.rs`) decides what to run; this decides how.

use std::collections::HashMap;
use std::sync::Arc;

use futures::FutureExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::summary;
use crate::config::{Config, Profile};
use crate::lane::{Job, Lane};
use crate::photo::{Normalized, PhotoStage};
use crate::plan::{self, Action, PlanItem};
use crate::reason::Finding;
use crate::store::{Store, StoreError};

/// Photos the stage found unfit during the run, by target and reason.
#[derive(Default)]
pub(super) struct InvalidCounts(std::sync::Mutex<summary::ReasonCounts>);

impl InvalidCounts {
    fn add(&self, target: &str, code: crate::reason::ReasonCode) {
        let mut counts = self.0.lock().expect("counts lock");
        *counts
            .entry(target.to_string())
            .or_default()
            .entry(code)
            .or_default() += 1;
    }

    pub(super) fn into_inner(self) -> summary::ReasonCounts {
        self.0.into_inner().expect("counts lock")
    }
}

/// One person's photo to upload, with the plan items of the targets that get it: one per person,
/// but with `photos.pick = "best"` a person whose targets get different photos is one per photo.
pub(super) struct Work<'p> {
    pub(super) items: Vec<&'p PlanItem>,
    pub(super) path: std::path::PathBuf,
}

/// The people to upload, in roster order, each with the targets that need them (each photo of a
/// person whose targets get different ones apart, next to each other); `limit` counts people.
pub(super) fn work_list(plan: &plan::Plan, limit: Option<usize>) -> Vec<Work<'_>> {
    let mut order: Vec<(Arc<str>, Arc<str>)> = Vec::new();
    let mut by_photo: HashMap<(Arc<str>, Arc<str>), Work<'_>> = HashMap::new();
    // An upload without a target id is one whose lookup failed or never ran: not sent.
    for item in plan
        .items
        .iter()
        .filter(|i| i.action == Action::Upload && i.target_user_id.is_some())
    {
        let Some(photo) = &item.photo else {
            continue;
        };
        let key = (item.id.clone(), photo.clone());
        by_photo
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Work {
                    items: Vec::new(),
                    path: plan.photo_path(photo),
                }
            })
            .items
            .push(item);
    }
    let mut work: Vec<Work<'_>> = order
        .into_iter()
        .filter_map(|key| by_photo.remove(&key))
        .collect();
    if let Some(n) = limit {
        let mut people = 0;
        let mut last: Option<Arc<str>> = None;
        work.retain(|w| {
            let id = &w.items[0].id;
            if last.as_ref() != Some(id) {
                people += 1;
                last = Some(id.clone());
            }
            people <= n
        });
    }
    work
}

/// What every part of one run's delivery shares.
pub(super) struct Ctx<'a> {
    pub(super) config: &'a Config,
    pub(super) store: &'a Store,
    pub(super) run_id: i64,
    pub(super) lanes: &'a [Arc<Lane>],
    pub(super) stage: PhotoStage,
    /// Ctrl-C or the deadline: take no new work.
    pub(super) stop: &'a CancellationToken,
    pub(super) invalid: &'a InvalidCounts,
    pub(super) progress: &'a crate::progress::Handle,
}

impl Ctx<'_> {
    /// Runs the producer and one consumer per lane until all work is done or stopped.
    pub(super) async fn deliver_all(&self, work: &[Work<'_>]) -> Result<(), StoreError> {
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
                .filter_map(|i| lane_index.get(&*i.target).copied())
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
            let prepared = self.prepare(person, &targets).await;
            // Each person's photo counts once, however often it is prepared again for one
            // target (a finding of one target's profile, a deferred lane's catch-up).
            self.progress.photo_done();
            match prepared {
                Ok(mut photos) => {
                    for (l, permit) in permits {
                        if let Some(job) = self.job_for(person, lanes[l].name(), &mut photos) {
                            permit.send(job);
                        }
                    }
                }
                // One target's budget may be too small where another's is not: each on its own.
                Err(finding) if finding.code.may_be_one_targets() && targets.len() > 1 => {
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

    /// Prepares one person's photo for the given lanes' profiles (one decode); the caller
    /// counts it in the progress.
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
        self.stage.prepare_file(person.path.clone(), profiles).await
    }

    fn job_for(
        &self,
        person: &Work<'_>,
        target: &str,
        photos: &mut Vec<Normalized>,
    ) -> Option<Job> {
        let item = person.items.iter().find(|i| &*i.target == target)?;
        let at = photos.iter().position(|p| p.target == target)?;
        Some(Job {
            person_id: item.id.to_string(),
            name: item.name.to_string(),
            user_id: item.target_user_id.as_deref()?.to_string(),
            source_hash: item.source_hash.as_deref()?.to_string(),
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
            .filter(|item| names.contains(&&*item.target))
            .filter_map(|item| {
                self.invalid.add(&item.target, finding.code);
                let mut invalid = (*item).clone();
                invalid.action = Action::Invalid;
                invalid.finding = Some(finding.clone());
                let prev = previous.iter().find(|d| d.target == *item.target);
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
