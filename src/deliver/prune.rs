//! Leavers: `sync --prune` deletes from a target the users who are no longer in the roster, so
//! their face stops opening doors.
//!
//! After the uploads, the target's user list is read again and every user no roster row maps
//! to is a leaver. Safety first: when more than the configured share of the listed users would
//! go (`prune_max_share`, 5% by default) nothing is deleted unless forced, since a truncated
//! roster export looks exactly like a mass departure. Every deletion is an attempt row written
//! before the request and completed after, with the person's delivery row set to `removed`
//! (reason `left_roster`) in the same transaction. Which targets can delete is theirs to say
//! ([`crate::targets::Abilities::remove_users`]); nothing here names one.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::StreamExt as _;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::remote;
use crate::config::Config;
use crate::delivery::{Attempt, Subject, record_attempt};
use crate::lane::{Lane, Retried};
use crate::plan::{Action, Plan};
use crate::reason::ReasonCode;
use crate::store::{AttemptKind, DeliveryRecord, Store, StoreError};
use crate::targets::{Failure, Receipt};

/// What pruning did at one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PruneOutcome {
    /// Users the target listed.
    pub listed: usize,
    /// Target user ids deleted, sorted.
    pub removed: Vec<String>,
    /// Deletions that failed, by reason.
    pub failed: BTreeMap<ReasonCode, usize>,
    /// Why nothing was deleted: too many would go, or the list could not be read.
    pub refused: Option<String>,
}

/// The users to delete: listed, and no roster row maps to them. Sorted.
pub(crate) fn leavers(listed: &[String], keep: &HashSet<String>) -> Vec<String> {
    let mut out: Vec<String> = listed
        .iter()
        .filter(|u| !keep.contains(*u))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Why deleting `leavers` of `listed` users must wait for `--force`, if it must.
pub(crate) fn too_many(
    target: &str,
    leavers: usize,
    listed: usize,
    max_share: f64,
) -> Option<String> {
    if leavers == 0 || listed == 0 {
        return None;
    }
    let share = leavers as f64 / listed as f64;
    (share > max_share).then(|| {
        format!(
            "not pruned: {leavers} of the {listed} users of {target} ({:.1}%) are not in the roster, \
             more than targets.{target}.prune_max_share ({:.1}%) allows: check that the roster \
             export is complete, or run again with --force to remove them",
            share * 100.0,
            max_share * 100.0
        )
    })
}

/// Prunes one lane's target, if it can delete users. `None` when it cannot, or when the lane
/// stopped or the run is stopping (pruning is new work).
pub(crate) async fn run(
    config: &Config,
    store: &Store,
    run_id: i64,
    lane: &Lane,
    plan: &Plan,
    force: bool,
    stop: &CancellationToken,
) -> Result<Option<PruneOutcome>, StoreError> {
    let name = lane.name();
    let abilities = lane.target.abilities();
    if !(abilities.remove_users && abilities.list_users) {
        tracing::info!(
            target = name,
            "{name} cannot delete users: `facesync verify` lists its leavers (not_in_roster)"
        );
        return Ok(None);
    }
    if lane.stopped.is_cancelled() || stop.is_cancelled() {
        tracing::warn!(
            target = name,
            "{name}: not pruned: the run or the target stopped first"
        );
        return Ok(None);
    }
    let mine = plan.items.iter().filter(|i| &*i.target == name);
    if mine
        .clone()
        .any(|i| i.action == Action::Upload && i.target_user_id.is_none())
    {
        return Ok(Some(PruneOutcome {
            refused: Some(format!(
                "not pruned: some roster people's {name} ids are not known yet, so their users cannot be told from leavers"
            )),
            ..PruneOutcome::default()
        }));
    }
    let keep: HashSet<String> = mine
        .filter_map(|i| i.target_user_id.as_deref().map(str::to_string))
        .collect();
    let listed: Vec<String> = match remote::list_all(lane, stop).await? {
        Ok(users) => users.into_iter().map(|u| u.user_id).collect(),
        Err(f) => {
            return Ok(Some(PruneOutcome {
                refused: Some(format!(
                    "not pruned: cannot read {name}'s user list: {}",
                    f.message
                )),
                ..PruneOutcome::default()
            }));
        }
    };
    let mut outcome = PruneOutcome {
        listed: listed.len(),
        ..PruneOutcome::default()
    };
    let leavers = leavers(&listed, &keep);
    if leavers.is_empty() {
        return Ok(Some(outcome));
    }
    if keep.is_empty() {
        // Every listed user would go: that is an empty or broken export, not a mass departure,
        // and --force is no answer to it.
        tracing::error!(
            target = name,
            "{name}: not pruned: the roster maps nobody to it"
        );
        return Ok(Some(PruneOutcome {
            refused: Some(format!(
                "not pruned: no roster row maps to a {name} user (the roster is empty or every row is invalid), \
                 so every user would be removed; nobody is, even with --force: check the roster export"
            )),
            ..outcome
        }));
    }
    if let Some(why) = too_many(
        name,
        leavers.len(),
        listed.len(),
        config.prune_max_share(name),
    ) {
        if !force {
            tracing::error!(target = name, "{name}: {why}");
            outcome.refused = Some(why);
            return Ok(Some(outcome));
        }
        tracing::warn!(
            target = name,
            "{name}: --force: removing {} leavers",
            leavers.len()
        );
    }

    // The person each remote user was delivered for, to keep their history in one row; never
    // a roster person's row (their old id may linger while their new one is pending).
    let in_roster: HashSet<&str> = plan
        .items
        .iter()
        .filter(|i| &*i.target == name)
        .map(|i| &*i.id)
        .collect();
    let rows: HashMap<String, DeliveryRecord> = store
        .deliveries()
        .await?
        .into_values()
        .filter(|d| d.target == name && !in_roster.contains(d.person_id.as_str()))
        .filter_map(|d| {
            let uid = d
                .delivered_user_id
                .clone()
                .or_else(|| d.target_user_id.clone())?;
            Some((uid, d))
        })
        .collect();
    let deletions = leavers.into_iter().map(|uid| {
        let row = rows.get(&uid).cloned().unwrap_or_else(|| {
            let mut d = DeliveryRecord::new(&uid, name);
            d.target_user_id = Some(uid.clone());
            d
        });
        async move {
            let row = std::sync::Mutex::new(row);
            let done = lane
                .with_retries(stop, || remove_one(lane, store, run_id, &uid, &row))
                .await;
            (uid, done)
        }
    });
    let mut done = futures::stream::iter(deletions).buffer_unordered(lane.concurrency);
    while let Some((uid, result)) = done.next().await {
        match result? {
            Retried::Done(()) => outcome.removed.push(uid),
            Retried::Failed(f) => *outcome.failed.entry(f.reason).or_default() += 1,
            Retried::Stopped { .. } => {
                *outcome.failed.entry(ReasonCode::Interrupted).or_default() += 1
            }
        }
    }
    outcome.removed.sort();
    tracing::info!(
        target = name,
        "{name}: removed {} leaver(s) no longer in the roster",
        outcome.removed.len()
    );
    Ok(Some(outcome))
}

/// One deletion: the attempt row before, the request, the attempt and delivery rows after.
async fn remove_one(
    lane: &Lane,
    store: &Store,
    run_id: i64,
    uid: &str,
    row: &std::sync::Mutex<DeliveryRecord>,
) -> Result<Result<(), Failure>, StoreError> {
    let name = lane.name();
    let attempt = Attempt {
        run_id,
        kind: AttemptKind::Remove,
        sent_hash: None,
        subject: Subject::Change {
            row,
            on_success: &|r: &mut DeliveryRecord, receipt: &Receipt| {
                r.mark_removed(
                    receipt,
                    format!("no longer in the roster: user `{uid}` removed from {name}"),
                );
            },
            on_failure: &|f: &Failure| {
                format!(
                    "not in the roster, but user `{uid}` could not be removed from {name}: {}",
                    f.message
                )
            },
        },
    };
    let result = record_attempt(store, attempt, lane.target.remove_user(uid)).await?;
    Ok(result.map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leavers_are_the_listed_users_no_roster_row_maps_to() {
        let keep: HashSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let cases: &[(&[&str], &[&str])] = &[
            (&[], &[]),
            (&["a", "b"], &[]),
            (&["c", "a", "x"], &["c", "x"]),
            (&["x", "x"], &["x"]),
        ];
        for (listed, want) in cases {
            let listed: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
            assert_eq!(leavers(&listed, &keep), *want, "{listed:?}");
        }
    }

    #[test]
    fn a_mass_deletion_waits_for_force() {
        // (leavers, listed, max share, refused)
        let cases = [
            (0, 0, 0.05, false),
            (0, 100, 0.05, false),
            (5, 100, 0.05, false),
            (6, 100, 0.05, true),
            (1, 10, 0.05, true),
            (1, 10, 0.1, false),
            (10, 10, 1.0, false),
            (1, 1000, 0.0, true),
        ];
        for (leavers, listed, share, refused) in cases {
            let why = too_many("vzicloud", leavers, listed, share);
            assert_eq!(why.is_some(), refused, "{leavers} of {listed} at {share}");
            if let Some(why) = why {
                assert!(
                    why.contains("--force") && why.contains("prune_max_share"),
                    "{why}"
                );
            }
        }
    }
}
