//! `verify`: what each target holds, compared with the roster and the state DB.
//!
//! Every enabled target that can list its users is listed once (page by page, through the
//! target's lane: rate limit, retries); ids the roster lacks are looked up first, as `sync`
//! does. The drift is of two kinds ([`DriftKind`]): people the state DB says are delivered but
//! whose face the target does not hold, and users holding a face that no roster row maps to
//! (leavers: `sync --prune` removes them where the target can delete users). Nothing is
//! changed at the targets. The state DB learns what was found: a delivery the target does not
//! hold becomes `pending` again (so the next sync sends it), and the looked-up ids are cached.

use std::collections::HashMap;
use std::future::Future;

use serde::Serialize;

use crate::config::Config;
use crate::deliver::remote;
use crate::identity::{self, Directory};
use crate::outcome::Outcome;
use crate::session::{Session, fan_out};
use crate::store::{State, Store};
use crate::targets::RemoteUser;

/// What kind of difference a target shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// Delivered according to the state DB, but the target holds no face for the user.
    MissingRemotely,
    /// The target holds a face for a user no roster row maps to.
    NotInRoster,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingRemotely => "missing_remotely",
            Self::NotInRoster => "not_in_roster",
        }
    }
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub kind: DriftKind,
    /// The id the target knows the user by.
    pub user_id: String,
    /// The roster's (or, for a leaver, the state DB's) employee id and name, when known.
    pub person_id: Option<String>,
    pub name: Option<String>,
    pub detail: String,
}

/// One target's check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetCheck {
    pub target: String,
    /// Users the target listed, and how many of them hold a face.
    pub listed: usize,
    pub with_face: usize,
    pub drift: Vec<Drift>,
    /// Why the target could not be checked.
    pub error: Option<String>,
}

/// The whole check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub targets: Vec<TargetCheck>,
}

impl VerifyReport {
    pub fn drift_count(&self) -> usize {
        self.targets.iter().map(|t| t.drift.len()).sum()
    }

    /// Failed when a target could not be checked, needs attention when there is drift.
    pub fn outcome(&self) -> Outcome {
        if self.targets.iter().any(|t| t.error.is_some()) {
            Outcome::Failed
        } else if self.drift_count() > 0 {
            Outcome::NeedsAttention
        } else {
            Outcome::Clean
        }
    }

    /// The exit status: [`VerifyReport::outcome`]'s.
    pub fn exit_code(&self) -> u8 {
        self.outcome().exit_code()
    }
}

/// A person the state DB says the target holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub person_id: String,
    pub name: String,
    pub user_id: String,
    pub delivered_at: Option<String>,
    /// Still in the roster (a leaver's missing face is no drift).
    pub in_roster: bool,
}

/// The drift at one target (pure): `roster` maps the target ids of roster people to their id
/// and name, `delivered` is what the state DB says the target holds, `remote` what it lists.
pub fn compare(
    target: &str,
    roster: &HashMap<String, (String, String)>,
    delivered: &[Delivered],
    remote: &[RemoteUser],
) -> Vec<Drift> {
    let held: HashMap<&str, bool> = remote
        .iter()
        .map(|u| (u.user_id.as_str(), u.has_face))
        .collect();
    let mut drift = Vec::new();
    for d in delivered.iter().filter(|d| d.in_roster) {
        let why = match held.get(d.user_id.as_str()) {
            Some(true) => continue,
            Some(false) => "holds no face for",
            None => "does not list",
        };
        let when = d
            .delivered_at
            .as_deref()
            .map_or(String::new(), |at| format!(" on {at}"));
        drift.push(Drift {
            kind: DriftKind::MissingRemotely,
            user_id: d.user_id.clone(),
            person_id: Some(d.person_id.clone()),
            name: Some(d.name.clone()),
            detail: format!(
                "delivered{when} according to the state DB, but {target} {why} user `{}`: marked pending, the next sync sends it again",
                d.user_id
            ),
        });
    }
    let known: HashMap<&str, &Delivered> =
        delivered.iter().map(|d| (d.user_id.as_str(), d)).collect();
    for u in remote
        .iter()
        .filter(|u| u.has_face && !roster.contains_key(&u.user_id))
    {
        let was = known.get(u.user_id.as_str());
        drift.push(Drift {
            kind: DriftKind::NotInRoster,
            user_id: u.user_id.clone(),
            person_id: was.map(|d| d.person_id.clone()),
            name: was.map(|d| d.name.clone()),
            detail: format!(
                "{target} holds a face for user `{}`, whom no roster row maps to",
                u.user_id
            ),
        });
    }
    drift.sort_by(|a, b| (a.kind, &a.user_id).cmp(&(b.kind, &b.user_id)));
    drift
}

/// Checks the enabled targets (or those named) against the roster and the state DB.
/// `shutdown` resolving stops the reads; the targets not finished are reported as not checked.
pub async fn verify(
    config: &Config,
    wanted: &[String],
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<VerifyReport> {
    let names = crate::session::choose(config, wanted)?;
    let roster = crate::roster::read(&config.roster)?;
    let store = Store::open(&config.state.database).await?;
    let run_id = store.begin_run("verify").await?;
    let session = Session::open(config, &names);
    let watcher = session.watch(shutdown, None, "the targets not read yet are not checked");
    let work = check_all(config, &store, &roster, &session);
    let result = tokio::select! {
        r = work => r,
        never = watcher => match never {},
    };
    let (status, code, summary) = match &result {
        Ok(report) => (
            "completed",
            report.exit_code(),
            serde_json::to_value(report).unwrap_or_default(),
        ),
        Err(e) => (
            "failed",
            Outcome::Failed.exit_code(),
            serde_json::json!({ "error": format!("{e:#}") }),
        ),
    };
    store
        .finish_run(run_id, status, code.into(), &summary)
        .await?;
    store.close().await;
    result
}

async fn check_all(
    config: &Config,
    store: &Store,
    roster: &crate::roster::Roster,
    session: &Session,
) -> anyhow::Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let stop = &session.stop;
    let mut lanes = Vec::new();
    for lane in &session.lanes {
        if lane.target.abilities().list_users {
            lanes.push(lane.clone());
        } else {
            let name = lane.name();
            report.targets.push(TargetCheck {
                target: name.to_string(),
                error: Some(format!("{name} cannot list its users: not checked")),
                ..TargetCheck::default()
            });
        }
    }
    for (name, e) in &session.unavailable {
        report.targets.push(TargetCheck {
            target: name.clone(),
            error: Some(format!("cannot start: {e}")),
            ..TargetCheck::default()
        });
    }
    identity::resolve(config, store, &lanes, &roster.rows, stop).await?;
    let lane_names: Vec<String> = lanes.iter().map(|l| l.name().to_string()).collect();
    let directory = Directory::load(store, config, &lane_names).await?;
    let deliveries = store.deliveries().await?;
    let people = store.people().await?;
    let (directory, deliveries, people) = (&directory, &deliveries, &people);
    let checks = fan_out(&lanes, |lane| async move {
        let name = lane.name();
        let mut check = TargetCheck {
            target: name.to_string(),
            ..TargetCheck::default()
        };
        let mut in_roster: HashMap<String, (String, String)> = HashMap::new();
        let mut roster_people = std::collections::HashSet::new();
        for row in roster.rows.iter().filter(|r| r.finding.is_none()) {
            roster_people.insert(row.person.id.as_str());
            if let Ok(Some(uid)) = directory.user_id(config, name, &row.person) {
                in_roster.insert(uid, (row.person.id.clone(), row.person.name.clone()));
            }
        }
        let delivered: Vec<Delivered> = deliveries
            .values()
            .filter(|d| d.target == name && d.state == State::Delivered)
            .filter_map(|d| {
                Some(Delivered {
                    person_id: d.person_id.clone(),
                    name: people
                        .get(&d.person_id)
                        .map(|p| p.name.clone())
                        .unwrap_or_default(),
                    user_id: d.delivered_user_id.clone()?,
                    delivered_at: d.delivered_at.clone(),
                    in_roster: roster_people.contains(d.person_id.as_str()),
                })
            })
            .collect();
        match remote::list_all(lane, stop).await? {
            Ok(users) => {
                check.listed = users.len();
                check.with_face = users.iter().filter(|u| u.has_face).count();
                check.drift = compare(name, &in_roster, &delivered, &users);
                mark_missing(store, deliveries, name, &check.drift).await?;
            }
            Err(f) => {
                check.error = Some(format!("cannot read the user list: {}", f.message));
            }
        }
        Ok::<_, anyhow::Error>(check)
    })
    .await;
    for check in checks {
        report.targets.push(check?);
    }
    report
        .targets
        .sort_by_key(|t| config.targets.iter().position(|c| c.name == t.target));
    Ok(report)
}

/// Deliveries the target turned out not to hold become pending: nothing is held any more, so
/// the next sync plans an upload.
async fn mark_missing(
    store: &Store,
    deliveries: &HashMap<(String, String), crate::store::DeliveryRecord>,
    target: &str,
    drift: &[Drift],
) -> Result<(), crate::store::StoreError> {
    let rows: Vec<_> = drift
        .iter()
        .filter(|d| d.kind == DriftKind::MissingRemotely)
        .filter_map(|d| deliveries.get(&(d.person_id.clone()?, target.to_string())))
        .map(|row| {
            let mut row = row.clone();
            row.mark_missing_remotely(format!(
                "verify found that {target} no longer holds this face: sent again by the next sync"
            ));
            row
        })
        .collect();
    store.save_deliveries(&rows).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(id: &str, in_roster: bool) -> Delivered {
        Delivered {
            person_id: id.into(),
            name: format!("name {id}"),
            user_id: id.into(),
            delivered_at: Some("2026-03-01T00:00:00Z".into()),
            in_roster,
        }
    }

    fn user(id: &str, has_face: bool) -> RemoteUser {
        RemoteUser {
            user_id: id.into(),
            has_face,
        }
    }

    /// (kind, user id) of each drift.
    fn check(roster: &[&str], db: &[Delivered], remote: &[RemoteUser], want: &[(DriftKind, &str)]) {
        let roster: HashMap<String, (String, String)> = roster
            .iter()
            .map(|id| (id.to_string(), (id.to_string(), String::new())))
            .collect();
        let got: Vec<(DriftKind, String)> = compare("feishu", &roster, db, remote)
            .into_iter()
            .map(|d| (d.kind, d.user_id))
            .collect();
        let want: Vec<(DriftKind, String)> =
            want.iter().map(|(k, u)| (*k, u.to_string())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn drift_is_what_the_db_and_the_target_disagree_on() {
        use DriftKind::*;
        // In sync.
        check(&["A"], &[delivered("A", true)], &[user("A", true)], &[]);
        // The face was removed at the target, or the user is gone.
        check(
            &["A"],
            &[delivered("A", true)],
            &[user("A", false)],
            &[(MissingRemotely, "A")],
        );
        check(
            &["A"],
            &[delivered("A", true)],
            &[],
            &[(MissingRemotely, "A")],
        );
        // A leaver whose face is still there; one without a face is no concern.
        check(
            &["A"],
            &[],
            &[user("A", true), user("Z", true)],
            &[(NotInRoster, "Z")],
        );
        check(&["A"], &[], &[user("Z", false)], &[]);
        // A leaver the DB delivered: gone at the target too is no drift.
        check(&[], &[delivered("L", false)], &[], &[]);
        check(
            &[],
            &[delivered("L", false)],
            &[user("L", true)],
            &[(NotInRoster, "L")],
        );
        // Not delivered yet: not drift, the next sync sends it.
        check(&["A"], &[], &[], &[]);
    }

    #[test]
    fn a_leaver_known_to_the_db_is_named() {
        let drift = compare(
            "vzicloud",
            &HashMap::new(),
            &[delivered("L", false)],
            &[user("L", true)],
        );
        assert_eq!(drift[0].person_id.as_deref(), Some("L"));
        assert_eq!(drift[0].name.as_deref(), Some("name L"));
    }
}
