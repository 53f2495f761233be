//! One target's lane: its rate limit, concurrency cap, pause gate, the one retry loop
//! (`with_retries`) and the delivery of one job. Shared infrastructure: `sync` delivers through
//! lanes, and `verify`, `fetch`, the id lookups, pre-flight and prune send every request through
//! one. The same code serves every target; nothing here names one.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::BackoffBuilder as _;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use crate::config::DeliveryConfig;
use crate::delivery::{About, Attempt, Held, Subject, record_attempt};
use crate::photo::Normalized;
use crate::reason::ReasonCode;
use crate::store::{AttemptKind, DeliveryRecord, State, Store, StoreError};
use crate::targets::{Class, Failure, Receipt, Target, Upload};

/// One person's face for one target, ready to send.
pub(crate) struct Job {
    pub(crate) person_id: String,
    pub(crate) name: String,
    pub(crate) user_id: String,
    pub(crate) source_hash: String,
    pub(crate) fingerprint: String,
    pub(crate) photo: Normalized,
}

/// A request may be throttled this many times its `max_retries` before it is given up.
const THROTTLE_BUDGET_FACTOR: u32 = 10;

/// How a request with retries ended.
pub(crate) enum Retried<T> {
    Done(T),
    Failed(Failure),
    /// The lane or the run stopped before it succeeded or failed for good.
    Stopped {
        tried: bool,
    },
}

/// What a request is for, as the lane counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A change at the target: an upload, a deletion.
    Change,
    /// A read: an id lookup, a page of the user list, a check of one user, a download.
    Check,
    /// A read of `facesync doctor`, counted as a check: a fatal answer is that check's
    /// finding and does not stop the lane, so the target's other checks still run.
    Probe,
}

/// Holds every request of a target while the target is told to back off (429, QPS limit).
#[derive(Default)]
pub(crate) struct PauseGate {
    until: Mutex<Option<tokio::time::Instant>>,
}

impl PauseGate {
    pub(crate) fn pause(&self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        let mut slot = self.until.lock().expect("gate lock");
        if slot.is_none_or(|u| u < until) {
            *slot = Some(until);
        }
    }

    pub(crate) async fn wait(&self) {
        loop {
            let until = *self.until.lock().expect("gate lock");
            match until {
                Some(u) if u > tokio::time::Instant::now() => tokio::time::sleep_until(u).await,
                _ => return,
            }
        }
    }
}

/// What happened in a lane during this run.
#[derive(Debug, Default)]
pub(crate) struct LaneCounts {
    pub(crate) delivered: AtomicUsize,
    pub(crate) retried: AtomicUsize,
    pub(crate) requests: AtomicUsize,
    /// Reads ([`Purpose::Check`]): id lookups, user lists, user checks.
    pub(crate) checks: AtomicUsize,
    pub(crate) throttled: AtomicUsize,
    pub(crate) failed: Mutex<BTreeMap<(State, ReasonCode), usize>>,
}

impl LaneCounts {
    pub(crate) fn fail(&self, state: State, reason: ReasonCode) {
        *self
            .failed
            .lock()
            .expect("counts lock")
            .entry((state, reason))
            .or_default() += 1;
    }
}

/// A target with its limits, as the engine drives it.
pub(crate) struct Lane {
    pub(crate) target: Arc<dyn Target>,
    pub(crate) limiter: DefaultDirectRateLimiter,
    pub(crate) gate: PauseGate,
    pub(crate) max_retries: u32,
    pub(crate) concurrency: usize,
    /// Cancelled when the target hit a fatal error: no more requests to it this run.
    pub(crate) stopped: CancellationToken,
    pub(crate) stop_reason: Mutex<Option<Failure>>,
    pub(crate) counts: LaneCounts,
}

impl Lane {
    pub(crate) fn new(target: Arc<dyn Target>, config: &DeliveryConfig) -> Self {
        let period = Duration::from_secs_f64(1.0 / config.rate_per_second);
        let burst = std::num::NonZeroU32::new(config.burst.max(1)).expect("burst >= 1");
        let quota = Quota::with_period(period)
            .expect("rate_per_second is validated to be positive")
            .allow_burst(burst);
        Self {
            target,
            limiter: RateLimiter::direct(quota),
            gate: PauseGate::default(),
            max_retries: config.max_retries,
            concurrency: config.concurrency,
            stopped: CancellationToken::new(),
            stop_reason: Mutex::new(None),
            counts: LaneCounts::default(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.target.name()
    }

    /// Stops the lane for the rest of the run; the first fatal failure is the one reported.
    pub(crate) fn stop(&self, failure: Failure) {
        let mut reason = self.stop_reason.lock().expect("lane lock");
        if reason.is_none() {
            tracing::error!(
                target = self.name(),
                "stopping {}: {}",
                self.name(),
                failure.message
            );
            *reason = Some(failure);
        }
        self.stopped.cancel();
    }

    pub(crate) fn stop_message(&self) -> Option<String> {
        self.stop_reason
            .lock()
            .expect("lane lock")
            .as_ref()
            .map(|f| f.message.clone())
    }

    /// Runs `op` (one request) until it succeeds, fails for good, or the lane or the run
    /// stops. Before each try it waits for the pause gate and the rate limiter; between
    /// transient failures it backs off (exponential, with jitter, or the server's reset), and
    /// throttling pauses the whole lane; a fatal failure stops the lane. A request already sent
    /// always finishes: only waits are cut short by `stop_new_work`.
    pub(crate) async fn with_retries<T, Fut>(
        &self,
        stop_new_work: &CancellationToken,
        op: impl FnMut() -> Fut,
    ) -> Result<Retried<T>, StoreError>
    where
        Fut: Future<Output = Result<Result<T, Failure>, StoreError>>,
    {
        self.with_retries_for(Purpose::Change, stop_new_work, op)
            .await
    }

    /// [`Lane::with_retries`] for a request of the given purpose (counted apart).
    pub(crate) async fn with_retries_for<T, Fut>(
        &self,
        purpose: Purpose,
        stop_new_work: &CancellationToken,
        mut op: impl FnMut() -> Fut,
    ) -> Result<Retried<T>, StoreError>
    where
        Fut: Future<Output = Result<Result<T, Failure>, StoreError>>,
    {
        let mut backoff = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(30))
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.max_retries as usize)
            .build();
        let mut tries = 0u32;
        let mut throttles = 0u32;
        loop {
            let stopping = tokio::select! {
                biased;
                _ = self.stopped.cancelled() => true,
                _ = stop_new_work.cancelled() => true,
                _ = async {
                    self.gate.wait().await;
                    self.limiter.until_ready().await;
                } => false,
            };
            if stopping {
                return Ok(Retried::Stopped { tried: tries > 0 });
            }
            tries += 1;
            if tries > 1 {
                self.counts.retried.fetch_add(1, Ordering::Relaxed);
            }
            match purpose {
                Purpose::Change => self.counts.requests.fetch_add(1, Ordering::Relaxed),
                Purpose::Check | Purpose::Probe => {
                    self.counts.checks.fetch_add(1, Ordering::Relaxed)
                }
            };
            let failure = match op().await? {
                Ok(value) => return Ok(Retried::Done(value)),
                Err(f) => f,
            };
            if failure.reason == ReasonCode::Throttled {
                self.counts.throttled.fetch_add(1, Ordering::Relaxed);
            }
            match failure.class {
                // Throttling is the target asking us to wait, not the request failing: it has
                // its own, larger budget, and pauses the whole lane for the server's reset.
                Class::Transient if failure.pause_target => {
                    throttles += 1;
                    if throttles > THROTTLE_BUDGET_FACTOR * self.max_retries.max(1) {
                        return Ok(Retried::Failed(failure));
                    }
                    // A reset of "0" would make a storm of immediate retries.
                    let wait = failure
                        .retry_after
                        .filter(|d| *d >= Duration::from_millis(100))
                        .unwrap_or(Duration::from_secs(1));
                    self.gate.pause(wait);
                }
                Class::Transient => {
                    let Some(wait) = backoff.next() else {
                        return Ok(Retried::Failed(failure));
                    };
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop_new_work.cancelled() => {}
                        _ = self.stopped.cancelled() => {}
                    }
                }
                Class::Fatal if purpose == Purpose::Probe => return Ok(Retried::Failed(failure)),
                Class::Fatal => {
                    self.stop(failure.clone());
                    return Ok(Retried::Failed(failure));
                }
                Class::Permanent => return Ok(Retried::Failed(failure)),
            }
        }
    }

    /// Delivers one job with retries, recording every attempt before its request and its
    /// outcome after, together with the person's delivery row.
    pub(crate) async fn deliver(
        &self,
        job: Job,
        store: &Store,
        run_id: i64,
        stop_new_work: &CancellationToken,
    ) -> Result<(), StoreError> {
        let mut row = store
            .delivery(&job.person_id, self.name())
            .await?
            .unwrap_or_else(|| DeliveryRecord::new(&job.person_id, self.name()));
        row.set_about(About {
            source_hash: Some(&job.source_hash),
            fingerprint: &job.fingerprint,
            user_id: Some(&job.user_id),
        });
        // The row as last written; each attempt starts from it and writes it back.
        let row = std::sync::Mutex::new(row);
        let outcome = self
            .with_retries(stop_new_work, || self.attempt(&job, &row, store, run_id))
            .await?;
        let row = row.into_inner().expect("row lock");
        match outcome {
            Retried::Done(()) => {
                self.counts.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Retried::Failed(f) => self.counts.fail(row.state, f.reason),
            Retried::Stopped { tried } => self.leave_undone(row, store, tried).await?,
        }
        Ok(())
    }

    /// One upload: the attempt row before, the request, the attempt and delivery rows after.
    async fn attempt(
        &self,
        job: &Job,
        row: &std::sync::Mutex<DeliveryRecord>,
        store: &Store,
        run_id: i64,
    ) -> Result<Result<(), Failure>, StoreError> {
        let upload = Upload {
            person_id: &job.person_id,
            user_id: &job.user_id,
            name: &job.name,
            bytes: &job.photo.bytes,
            format: job.photo.format,
        };
        let attempt = Attempt {
            run_id,
            kind: AttemptKind::Upload,
            sent_hash: Some(&job.photo.hash),
            subject: Subject::Change {
                row,
                on_success: &|r: &mut DeliveryRecord, receipt: &Receipt| {
                    r.mark_delivered(
                        Held {
                            source_hash: &job.source_hash,
                            hash: &job.photo.hash,
                            fingerprint: &job.fingerprint,
                            user_id: &job.user_id,
                        },
                        receipt,
                    );
                },
                on_failure: &|f: &Failure| f.message.clone(),
            },
        };
        let result = record_attempt(store, attempt, self.target.upload(&upload)).await?;
        Ok(result.map(|_| ()))
    }

    /// A job the run stopped before finishing: it stays pending (or failed_retryable when it
    /// was tried) with the reason, for the next run.
    /// Why a job of this lane was not sent: the target stopped (with its reason), or the run
    /// did (Ctrl-C, the deadline).
    pub(crate) fn not_sent_reason(&self) -> (ReasonCode, String) {
        match (self.stopped.is_cancelled(), self.stop_message()) {
            (true, Some(m)) => (
                ReasonCode::TargetStopped,
                format!("not sent: the target stopped ({m})"),
            ),
            (true, None) => (
                ReasonCode::TargetStopped,
                "not sent: the run stopped first".to_string(),
            ),
            (false, _) => (
                ReasonCode::Interrupted,
                "not sent: the run stopped first".to_string(),
            ),
        }
    }

    async fn leave_undone(
        &self,
        mut row: DeliveryRecord,
        store: &Store,
        tried: bool,
    ) -> Result<(), StoreError> {
        let (reason, message) = self.not_sent_reason();
        row.mark_left_undone(tried, reason, message);
        store.save_deliveries(std::slice::from_ref(&row)).await
    }
}
