//! The pre-flight: before uploading to a target that gates who may hold a face (Feishu: only
//! users in an access-control group), list its users once, then
//! - hold back the people it would refuse: not in the list, and a check of that one user
//!   (recorded as the person's `check` attempt) confirms it. They become `failed_permanent`
//!   with the target's reason, without an upload;
//! - queue again the people the state DB says are delivered but whose face the target no longer
//!   holds (removed on the target's side);
//! - reopen the people held back (or refused as unknown) earlier who are in the list now.
//!
//! Which targets gate, and with what reason, is theirs to say
//! ([`crate::targets::Abilities::preflight`]); nothing here names one.

use std::collections::{BTreeMap, HashMap};

use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use super::remote;
use crate::config::Config;
use crate::delivery::{About, Attempt, Subject, record_attempt};
use crate::lane::{Lane, Purpose, Retried};
use crate::plan::{self, Action, Plan};
use crate::reason::{Finding, ReasonCode};
use crate::store::{AttemptKind, DeliveryRecord, Store, StoreError};

/// Whether a target may hold a user's face: `Some(has_face)` when it lists them (or a check
/// found them), `None` when it confirmed it does not know them. Users missing from the map are
/// unknown (their check failed): their plan stays as it is.
pub(crate) type Presence = HashMap<String, Option<bool>>;

/// What the pre-flight changed in the plan, by index into `plan.items`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Not allowed to hold a face: skipped, failed for good with the target's reason.
    HeldBack(usize),
    /// Delivered per the state DB, but the target holds no face: uploaded again.
    Requeued(usize),
    /// Held back or refused as unknown before, listed now: uploaded.
    Reopened(usize),
}

/// Decides, for every item of `target`, what the target's list says about it (pure).
pub(crate) fn apply(
    plan: &mut Plan,
    target: &str,
    gate: ReasonCode,
    presence: &Presence,
) -> Vec<Change> {
    let mut changes = Vec::new();
    for (k, item) in plan.items.iter_mut().enumerate() {
        if &*item.target != target {
            continue;
        }
        let Some(uid) = item.target_user_id.as_deref() else {
            continue;
        };
        let Some(&listed) = presence.get(uid) else {
            continue;
        };
        let refused_before = item
            .finding
            .as_ref()
            .is_some_and(|f| f.code == gate || f.code == ReasonCode::UserNotFound);
        match (item.action, listed) {
            (Action::Upload | Action::Unchanged, None) => {
                item.action = Action::Skip;
                item.finding = Some(Finding::new(
                    gate,
                    format!(
                        "row {}: {target} does not list user `{uid}` among those who may hold a face (checked before uploading)",
                        item.row
                    ),
                ));
                changes.push(Change::HeldBack(k));
            }
            (Action::Unchanged, Some(false)) => {
                item.action = Action::Upload;
                changes.push(Change::Requeued(k));
            }
            (Action::Skip, Some(_)) if refused_before => {
                item.action = Action::Upload;
                item.finding = None;
                changes.push(Change::Reopened(k));
            }
            _ => {}
        }
    }
    changes
}

/// Runs the pre-flight for one lane, if its target asks for one, and records what changed.
pub(crate) async fn run(
    config: &Config,
    store: &Store,
    run_id: i64,
    lane: &Lane,
    plan: &mut Plan,
    stop: &CancellationToken,
) -> Result<(), StoreError> {
    let name = lane.name();
    let Some(gate) = lane.target.abilities().preflight else {
        return Ok(());
    };
    let concerned = |action: Action, finding: Option<&Finding>| match action {
        Action::Upload | Action::Unchanged => true,
        Action::Skip => {
            finding.is_some_and(|f| f.code == gate || f.code == ReasonCode::UserNotFound)
        }
        Action::Invalid => false,
    };
    let wanted: Vec<(&str, Action, &str)> = plan
        .items
        .iter()
        .filter(|i| &*i.target == name && concerned(i.action, i.finding.as_ref()))
        .filter_map(|i| Some((i.target_user_id.as_deref()?, i.action, &*i.id)))
        .collect();
    if wanted.is_empty() || lane.stopped.is_cancelled() {
        return Ok(());
    }
    let listed = match remote::list_all(lane, stop).await? {
        Ok(users) => users,
        Err(f) => {
            tracing::warn!(
                target = name,
                "{name}: pre-flight skipped, the user list could not be read: {}",
                f.message
            );
            return Ok(());
        }
    };
    let mut presence: Presence = listed
        .into_iter()
        .map(|u| (u.user_id, Some(u.has_face)))
        .collect();

    // A list can lag behind the target (a user added while it was paged): check each missing
    // user once before holding them back. People held back before are not checked again. Each
    // check is recorded as the person's `check` attempt (the first person the id maps to).
    let mut unlisted: BTreeMap<String, String> = BTreeMap::new();
    for (uid, action, person) in wanted {
        if action != Action::Skip && !presence.contains_key(uid) {
            unlisted
                .entry(uid.to_string())
                .or_insert_with(|| person.to_string());
        }
    }
    let checks = unlisted.into_iter().map(|(uid, person)| async move {
        let found = lane
            .with_retries_for(Purpose::Check, stop, || {
                let attempt = Attempt {
                    run_id,
                    kind: AttemptKind::Check,
                    sent_hash: None,
                    subject: Subject::Read {
                        person_id: &person,
                        target: name,
                    },
                };
                record_attempt(store, attempt, lane.target.find_user(&uid))
            })
            .await;
        (uid, found)
    });
    let mut checked = futures::stream::iter(checks).buffer_unordered(lane.concurrency);
    while let Some((uid, found)) = checked.next().await {
        match found? {
            Retried::Done(user) => {
                presence.insert(uid, user.map(|u| u.has_face));
            }
            Retried::Failed(f) => tracing::warn!(
                target = name,
                "{name}: cannot check user `{uid}` before uploading: {}",
                f.message
            ),
            Retried::Stopped { .. } => {}
        }
    }

    let changes = apply(plan, name, gate, &presence);
    if changes.is_empty() {
        return Ok(());
    }
    let fingerprint = config.delivery_fingerprint(name);
    let mut rows = Vec::new();
    let mut counts = [0usize; 3];
    for change in changes {
        let (k, slot) = match change {
            Change::HeldBack(k) => (k, 0),
            Change::Requeued(k) => (k, 1),
            Change::Reopened(k) => (k, 2),
        };
        counts[slot] += 1;
        let item = &plan.items[k];
        // Read one by one: a pre-flight changes few people, and a plan holds no rows.
        let previous = store.delivery(&item.id, name).await?;
        let prev = previous.as_ref();
        match change {
            Change::HeldBack(_) => {
                let finding = item
                    .finding
                    .clone()
                    .expect("a held-back item has a finding");
                tracing::info!("{}: {name}: {finding}", item.id);
                let mut d = prev
                    .cloned()
                    .unwrap_or_else(|| DeliveryRecord::new(&item.id, name));
                d.set_about(About {
                    source_hash: item.source_hash.as_deref(),
                    fingerprint: &fingerprint,
                    user_id: item.target_user_id.as_deref(),
                });
                d.mark_held_back(finding);
                rows.push(d);
            }
            Change::Requeued(_) | Change::Reopened(_) => {
                if matches!(change, Change::Requeued(_)) {
                    tracing::info!(
                        "{}: {name} no longer holds the face the state DB recorded: sent again",
                        item.id
                    );
                }
                rows.extend(plan::record_for(prev, item, &fingerprint));
            }
        }
    }
    store.save_deliveries(&rows).await?;
    tracing::info!(
        target = name,
        "{name}: pre-flight: {} held back, {} queued again (face gone), {} allowed again",
        counts[0],
        counts[1],
        counts[2]
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlanItem;

    fn item(id: &str, action: Action, finding: Option<ReasonCode>) -> PlanItem {
        PlanItem {
            row: 2,
            id: id.into(),
            name: "".into(),
            target: "feishu".into(),
            action,
            finding: finding.map(|c| Finding::new(c, "earlier")),
            photo: Some(format!("{id}.jpg").into()),
            target_user_id: Some(id.into()),
            source_hash: Some("h".into()),
            quality: None,
            picked: None,
        }
    }

    /// One item, one presence: the action and reason after the pre-flight.
    fn check(
        action: Action,
        before: Option<ReasonCode>,
        listed: Option<Option<bool>>,
        want: (Action, Option<ReasonCode>),
    ) {
        let mut plan = Plan {
            items: vec![item("E1", action, before)],
            ..Plan::default()
        };
        let presence: Presence = listed.map(|l| ("E1".to_string(), l)).into_iter().collect();
        apply(&mut plan, "feishu", ReasonCode::NotInAccessGroup, &presence);
        let got = (
            plan.items[0].action,
            plan.items[0].finding.as_ref().map(|f| f.code),
        );
        assert_eq!(got, want, "{action:?} {before:?} listed {listed:?}");
    }

    #[test]
    fn the_user_list_decides_who_is_sent() {
        use Action::*;
        let gate = Some(ReasonCode::NotInAccessGroup);
        let unknown = Some(ReasonCode::UserNotFound);
        let absent = Some(None);
        let with_face = Some(Some(true));
        let without_face = Some(Some(false));
        check(Upload, None, absent, (Skip, gate));
        check(Upload, None, with_face, (Upload, None));
        check(Upload, None, without_face, (Upload, None));
        check(Upload, None, None, (Upload, None));
        check(Unchanged, None, with_face, (Unchanged, None));
        check(Unchanged, None, without_face, (Upload, None));
        check(Unchanged, None, absent, (Skip, gate));
        check(Unchanged, None, None, (Unchanged, None));
        check(Skip, gate, without_face, (Upload, None));
        check(Skip, unknown, with_face, (Upload, None));
        check(Skip, gate, absent, (Skip, gate));
        check(
            Skip,
            Some(ReasonCode::FaceRejected),
            with_face,
            (Skip, Some(ReasonCode::FaceRejected)),
        );
        check(Skip, None, with_face, (Skip, None));
        check(
            Invalid,
            Some(ReasonCode::NoFace),
            absent,
            (Invalid, Some(ReasonCode::NoFace)),
        );
    }

    #[test]
    fn other_targets_items_are_left_alone() {
        let mut other = item("E1", Action::Upload, None);
        other.target = "vzicloud".into();
        let mut plan = Plan {
            items: vec![other],
            ..Plan::default()
        };
        let presence = Presence::from([("E1".to_string(), None)]);
        assert!(apply(&mut plan, "feishu", ReasonCode::NotInAccessGroup, &presence).is_empty());
        assert_eq!(plan.items[0].action, Action::Upload);
    }
}
