//! What a sync run did, per target: counted from the plan and the lanes, printed as a table,
//! stored with the run as JSON, and turned into the exit code.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use super::prune::PruneOutcome;
use crate::lane::Lane;
use crate::outcome::Outcome;
use crate::plan::{Action, Plan};
use crate::reason::ReasonCode;
use crate::store::State;

/// Counts by target, then by reason.
pub type ReasonCounts = HashMap<String, BTreeMap<ReasonCode, usize>>;

/// One target's part of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetSummary {
    pub target: String,
    /// Delivered by this run.
    pub delivered: usize,
    /// Already held by the target: nothing sent.
    pub unchanged: usize,
    /// Not fit to send, by reason.
    pub invalid: BTreeMap<ReasonCode, usize>,
    /// Refused for good (this run, or earlier with the same photo), by reason.
    pub failed_permanent: BTreeMap<ReasonCode, usize>,
    /// Still failing after the retries, or stopped by a fatal error; retried next run.
    pub failed_retryable: BTreeMap<ReasonCode, usize>,
    /// Not sent because the run or the target stopped first.
    pub not_sent: usize,
    /// Left out on purpose (`--only-failed`, `--limit`).
    pub skipped: usize,
    /// Requests that change the target (uploads, deletions), retries among all requests, and
    /// answers that were throttling.
    pub requests: usize,
    pub retried: usize,
    pub throttled: usize,
    /// Requests that only read the target: id lookups, user lists, checks of one user.
    pub checks: usize,
    /// Why the target stopped, if it did.
    pub stopped: Option<String>,
    /// `--prune`: users removed because they left the roster.
    pub removed: usize,
    /// `--prune`: removals that failed, by reason.
    pub remove_failed: BTreeMap<ReasonCode, usize>,
    /// `--prune`: why nothing was removed (too many would go, or the list could not be read).
    pub prune_refused: Option<String>,
}

impl TargetSummary {
    fn troubled(&self) -> usize {
        self.invalid.values().sum::<usize>()
            + self.failed_permanent.values().sum::<usize>()
            + self.failed_retryable.values().sum::<usize>()
            + self.not_sent
            + self.remove_failed.values().sum::<usize>()
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub targets: Vec<TargetSummary>,
    pub orphans: usize,
    /// Ctrl-C stopped the run.
    pub interrupted: bool,
    pub elapsed_seconds: f64,
    /// The HTML report written after the run (`[report] html`).
    pub report: Option<std::path::PathBuf>,
    /// What the plan warned about (an empty roster), printed first.
    pub warnings: Vec<String>,
}

impl Summary {
    pub(super) fn new(
        plan: &Plan,
        lanes: &[Arc<Lane>],
        unavailable: &[(String, String)],
        stage_invalid: &ReasonCounts,
        pruned: &HashMap<String, PruneOutcome>,
        interrupted: bool,
        elapsed: Duration,
    ) -> Self {
        let mut targets = Vec::new();
        for name in &plan.targets {
            let mut t = TargetSummary {
                target: name.clone(),
                ..TargetSummary::default()
            };
            let mut uploads: usize = 0;
            for item in plan.items.iter().filter(|i| &*i.target == name.as_str()) {
                match (item.action, &item.finding) {
                    (Action::Unchanged, _) => t.unchanged += 1,
                    (Action::Invalid, Some(f)) => *t.invalid.entry(f.code).or_default() += 1,
                    (Action::Invalid, None) => {}
                    (Action::Skip, Some(f)) => *t.failed_permanent.entry(f.code).or_default() += 1,
                    (Action::Skip, None) => t.skipped += 1,
                    (Action::Upload, _) => uploads += 1,
                }
            }
            for (code, n) in stage_invalid.get(name).into_iter().flatten() {
                *t.invalid.entry(*code).or_default() += n;
            }
            if let Some(lane) = lanes.iter().find(|l| l.name() == name) {
                let c = &lane.counts;
                t.delivered = c.delivered.load(Ordering::Relaxed);
                t.requests = c.requests.load(Ordering::Relaxed);
                t.retried = c.retried.load(Ordering::Relaxed);
                t.throttled = c.throttled.load(Ordering::Relaxed);
                t.checks = c.checks.load(Ordering::Relaxed);
                for ((state, code), n) in c.failed.lock().expect("counts lock").iter() {
                    let bucket = match state {
                        State::FailedPermanent => &mut t.failed_permanent,
                        _ => &mut t.failed_retryable,
                    };
                    *bucket.entry(*code).or_default() += n;
                }
                t.stopped = lane.stop_message();
            } else if let Some((_, why)) = unavailable.iter().find(|(n, _)| n == name) {
                t.stopped = Some(why.clone());
            }
            // Every planned upload that was not delivered, refused or found invalid was not
            // sent: the run or the target stopped first, or --limit left it out.
            let lane_failed: usize = lanes
                .iter()
                .filter(|l| l.name() == name)
                .flat_map(|l| {
                    l.counts
                        .failed
                        .lock()
                        .expect("counts lock")
                        .values()
                        .copied()
                        .collect::<Vec<_>>()
                })
                .sum();
            let stage: usize = stage_invalid.get(name).map_or(0, |m| m.values().sum());
            t.not_sent = uploads.saturating_sub(t.delivered + lane_failed + stage);
            if let Some(p) = pruned.get(name) {
                t.removed = p.removed.len();
                t.remove_failed = p.failed.clone();
                t.prune_refused = p.refused.clone();
            }
            targets.push(t);
        }
        Self {
            targets,
            orphans: plan.orphans.len(),
            interrupted,
            elapsed_seconds: elapsed.as_secs_f64(),
            report: None,
            warnings: plan.warnings.clone(),
        }
    }

    /// Failed when a target could not work (it stopped on a fatal error) or `--prune` refused;
    /// needs attention when some people are invalid, failed or not sent, or the run was
    /// interrupted; else clean.
    pub fn outcome(&self) -> Outcome {
        if self
            .targets
            .iter()
            .any(|t| t.stopped.is_some() || t.prune_refused.is_some())
        {
            Outcome::Failed
        } else if self.interrupted || self.targets.iter().any(|t| t.troubled() > 0) {
            Outcome::NeedsAttention
        } else {
            Outcome::Clean
        }
    }

    /// The exit status of the run: [`Summary::outcome`]'s.
    pub fn exit_code(&self) -> u8 {
        self.outcome().exit_code()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}
