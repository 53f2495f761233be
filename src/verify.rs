//! `verify`: what each target holds, compared with the roster and the state DB.
//!
//! Every enabled target that can list its users is listed once (page by page, through the
//! target's lane: rate limit, retries); ids the roster lacks are looked up first, as `sync`
//! does. The drift is of two kinds ([`DriftKind`]): people the state DB says are delivered but
//! whose face the target does not hold, and users holding a face that no roster row maps to
//! (leavers: `sync --prune` removes them where the target can delete users). Nothing is
//! changed at the targets. The state DB learns what was found: a delivery the target does not
//! hold becomes `pending` again (so the next sync sends it), and the looked-up ids are cached.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use serde::Serialize;

use crate::config::Config;
use crate::deliver::remote;
use crate::identity::{self, Directory};
use crate::outcome::Outcome;
use crate::session::{Session, fan_out};
use crate::store::Store;
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

    /// What the run's row in the state DB keeps: every target's counts and error, and its
    /// first [`SUMMARY_DRIFT`] drifts (the whole list is the command's output; after a target
    /// lost every face, it would make that row hundreds of MB).
    pub fn run_summary(&self) -> serde_json::Value {
        let targets: Vec<serde_json::Value> = self
            .targets
            .iter()
            .map(|t| {
                serde_json::json!({
                    "target": t.target,
                    "listed": t.listed,
                    "with_face": t.with_face,
                    "drift_count": t.drift.len(),
                    "drift": &t.drift[..t.drift.len().min(SUMMARY_DRIFT)],
                    "error": t.error,
                })
            })
            .collect();
        serde_json::json!({ "targets": targets })
    }

    /// The exit status: [`VerifyReport::outcome`]'s.
    pub fn exit_code(&self) -> u8 {
        self.outcome().exit_code()
    }
}

/// Drifts per target kept in the run's row of the state DB.
pub const SUMMARY_DRIFT: usize = 100;

/// A person the state DB says the target holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered<'a> {
    pub person_id: &'a str,
    pub name: &'a str,
    pub user_id: &'a str,
    pub delivered_at: Option<&'a str>,
    /// Still in the roster (a leaver's missing face is no drift).
    pub in_roster: bool,
}

/// The drift at one target, found as the state DB's delivered rows stream past
/// ([`Comparison::delivered`] for each): what the target lists is held once, the rows are not.
pub struct Comparison<'r> {
    target: &'r str,
    /// Whether the target holds a face, by the user ids it lists.
    held: HashMap<&'r str, bool>,
    /// Users holding a face whom no roster row maps to, with the person and name the state DB
    /// knows them by once a delivered row names them.
    strays: HashMap<&'r str, Option<(String, String)>>,
    drift: Vec<Drift>,
}

impl<'r> Comparison<'r> {
    /// `roster` holds the target ids of the roster's people, `remote` what the target lists.
    pub fn new(target: &'r str, roster: &HashSet<String>, remote: &'r [RemoteUser]) -> Self {
        Comparison {
            target,
            held: remote
                .iter()
                .map(|u| (u.user_id.as_str(), u.has_face))
                .collect(),
            strays: remote
                .iter()
                .filter(|u| u.has_face && !roster.contains(&u.user_id))
                .map(|u| (u.user_id.as_str(), None))
                .collect(),
            drift: Vec::new(),
        }
    }

    /// One row the state DB says is delivered.
    pub fn delivered(&mut self, d: &Delivered<'_>) {
        if let Some(known) = self.strays.get_mut(d.user_id) {
            *known = Some((d.person_id.to_string(), d.name.to_string()));
        }
        if !d.in_roster {
            return;
        }
        let why = match self.held.get(d.user_id) {
            Some(true) => return,
            Some(false) => "holds no face for",
            None => "does not list",
        };
        let when = d
            .delivered_at
            .map_or(String::new(), |at| format!(" on {at}"));
        self.drift.push(Drift {
            kind: DriftKind::MissingRemotely,
            user_id: d.user_id.to_string(),
            person_id: Some(d.person_id.to_string()),
            name: Some(d.name.to_string()),
            detail: format!(
                "delivered{when} according to the state DB, but {} {why} user `{}`: marked pending, the next sync sends it again",
                self.target, d.user_id
            ),
        });
    }

    /// The drift, by kind and user id.
    pub fn finish(self) -> Vec<Drift> {
        let target = self.target;
        let mut drift = self.drift;
        drift.extend(self.strays.into_iter().map(|(user_id, was)| {
            let (person_id, name) = was.unzip();
            Drift {
                kind: DriftKind::NotInRoster,
                user_id: user_id.to_string(),
                person_id,
                name,
                detail: format!(
                    "{target} holds a face for user `{user_id}`, whom no roster row maps to"
                ),
            }
        }));
        drift.sort_by(|a, b| (a.kind, &a.user_id).cmp(&(b.kind, &b.user_id)));
        drift
    }
}

/// The drift at one target (pure): `roster` holds the target ids of roster people,
/// `delivered` is what the state DB says the target holds, `remote` what it lists.
pub fn compare(
    target: &str,
    roster: &HashSet<String>,
    delivered: &[Delivered<'_>],
    remote: &[RemoteUser],
) -> Vec<Drift> {
    let mut comparison = Comparison::new(target, roster, remote);
    for d in delivered {
        comparison.delivered(d);
    }
    comparison.finish()
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
        Ok(report) => ("completed", report.exit_code(), report.run_summary()),
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

/// Sized for large rosters (README, Performance, Scale): each target's list is held once, the
/// state DB's delivered rows stream past it a chunk at a time, and only the rows found missing
/// are read whole.
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
    let roster_people: HashSet<&str> = roster
        .rows
        .iter()
        .filter(|r| r.finding.is_none())
        .map(|r| r.person.id.as_str())
        .collect();
    let (directory, roster_people) = (&directory, &roster_people);
    let checks = fan_out(&lanes, |lane| async move {
        let name = lane.name();
        let mut check = TargetCheck {
            target: name.to_string(),
            ..TargetCheck::default()
        };
        let users = match remote::list_all(lane, stop).await? {
            Ok(users) => users,
            Err(f) => {
                check.error = Some(format!("cannot read the user list: {}", f.message));
                return Ok(check);
            }
        };
        check.listed = users.len();
        check.with_face = users.iter().filter(|u| u.has_face).count();
        let in_roster: HashSet<String> = roster
            .rows
            .iter()
            .filter(|r| r.finding.is_none())
            .filter_map(|row| directory.user_id(config, name, &row.person).ok().flatten())
            .collect();
        let mut comparison = Comparison::new(name, &in_roster, &users);
        store
            .each_delivered(name, |row| {
                let Some(user_id) = row.user_id.as_deref() else {
                    return;
                };
                comparison.delivered(&Delivered {
                    person_id: &row.person_id,
                    name: row.name.as_deref().unwrap_or_default(),
                    user_id,
                    delivered_at: row.delivered_at.as_deref(),
                    in_roster: roster_people.contains(&*row.person_id),
                });
            })
            .await?;
        drop(in_roster);
        check.drift = comparison.finish();
        mark_missing(store, name, &check.drift).await?;
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
/// the next sync plans an upload. Read, changed and written a batch at a time.
async fn mark_missing(
    store: &Store,
    target: &str,
    drift: &[Drift],
) -> Result<(), crate::store::StoreError> {
    let missing: Vec<&str> = drift
        .iter()
        .filter(|d| d.kind == DriftKind::MissingRemotely)
        .filter_map(|d| d.person_id.as_deref())
        .collect();
    for chunk in missing.chunks(MARK_BATCH) {
        let mut rows = store.deliveries_at(target, chunk).await?;
        for row in &mut rows {
            row.mark_missing_remotely(format!(
                "verify found that {target} no longer holds this face: sent again by the next sync"
            ));
        }
        store.save_deliveries(&rows).await?;
    }
    Ok(())
}

/// Rows `verify` marks pending per read and write.
const MARK_BATCH: usize = 2000;

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(id: &'static str, in_roster: bool) -> Delivered<'static> {
        Delivered {
            person_id: id,
            name: NAMES.iter().find(|(k, _)| *k == id).map_or("", |(_, n)| n),
            user_id: id,
            delivered_at: Some("2026-03-01T00:00:00Z"),
            in_roster,
        }
    }

    const NAMES: [(&str, &str); 2] = [("A", "name A"), ("L", "name L")];

    fn user(id: &str, has_face: bool) -> RemoteUser {
        RemoteUser {
            user_id: id.into(),
            has_face,
        }
    }

    /// (kind, user id) of each drift.
    fn check(roster: &[&str], db: &[Delivered], remote: &[RemoteUser], want: &[(DriftKind, &str)]) {
        let roster: HashSet<String> = roster.iter().map(|id| id.to_string()).collect();
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
    fn the_run_keeps_every_count_but_only_the_first_drifts() {
        let drift: Vec<Drift> = (0..SUMMARY_DRIFT + 5)
            .map(|i| Drift {
                kind: DriftKind::MissingRemotely,
                user_id: format!("u{i}"),
                person_id: None,
                name: None,
                detail: String::new(),
            })
            .collect();
        let report = VerifyReport {
            targets: vec![TargetCheck {
                target: "lobby".into(),
                listed: 7,
                with_face: 6,
                drift,
                error: None,
            }],
        };
        let summary = report.run_summary();
        let lobby = &summary["targets"][0];
        assert_eq!(lobby["target"], "lobby");
        assert_eq!(lobby["listed"], 7);
        assert_eq!(lobby["drift_count"], SUMMARY_DRIFT + 5);
        let kept = lobby["drift"].as_array().unwrap();
        assert_eq!(kept.len(), SUMMARY_DRIFT);
        assert_eq!(kept[0]["user_id"], "u0");
    }

    #[test]
    fn a_leaver_known_to_the_db_is_named() {
        let drift = compare(
            "vzicloud",
            &HashSet::new(),
            &[delivered("L", false)],
            &[user("L", true)],
        );
        assert_eq!(drift[0].person_id.as_deref(), Some("L"));
        assert_eq!(drift[0].name.as_deref(), Some("name L"));
    }
}
