//! `facesync doctor`: will tonight's run work? Every check a sync depends on, made without
//! uploading or changing anything: the config, the roster, the photo folder, the state DB and
//! its run lock, then each target's own checks ([`Target::doctor`]), made through the target's
//! lane (rate limit, retries) like every other request.
//!
//! Each [`Check`] is ok, a warning or failed, with what was found and what to do. The library
//! only gathers them; the command line renders them.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::deliver::RunLock;
use crate::lane::{Lane, Purpose, Retried};
use crate::matching::{PhotoIndex, match_rows};
use crate::outcome::Outcome;
use crate::reason::ReasonCode;
use crate::session::{Session, fan_out};
use crate::store::{Health, Store};
use crate::targets::{self, Class, Contact, Failure, Identity, Target};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Tonight's run works, but something needs a look (it may end with exit code 2).
    Warning,
    /// Tonight's run (or this target's part of it) would not work.
    Failed,
}

impl Status {
    /// `ok`, `warning` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Failed => "failed",
        }
    }
}

/// One thing checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, a stable name: `config`, `roster`, `photos`, `state_db`, `run_lock`,
    /// and a target's `reachable`, `credentials`, `clock`, ... (see README).
    pub check: String,
    /// The target it is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it; empty when all is well.
    pub advice: String,
}

impl Check {
    /// A check that passed.
    pub fn ok(check: &str, detail: impl Into<String>) -> Check {
        Check::new(check, Status::Ok, detail.into(), String::new())
    }

    /// A check that found something to look at.
    pub fn warning(check: &str, detail: impl Into<String>, advice: impl Into<String>) -> Check {
        Check::new(check, Status::Warning, detail.into(), advice.into())
    }

    /// A check that failed.
    pub fn failed(check: &str, detail: impl Into<String>, advice: impl Into<String>) -> Check {
        Check::new(check, Status::Failed, detail.into(), advice.into())
    }

    /// A failed request as this check's finding: its message, and its reason's advice.
    pub fn from_failure(check: &str, failure: &Failure) -> Check {
        Check::failed(check, failure.message.clone(), failure.reason.advice())
    }

    fn new(check: &str, status: Status, detail: String, advice: String) -> Check {
        Check {
            check: check.to_string(),
            target: None,
            status,
            detail,
            advice,
        }
    }

    fn about(mut self, target: &str) -> Check {
        self.target = Some(target.to_string());
        self
    }
}

/// Every check made, in order.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// Clean when every check is ok, needs attention with warnings only, failed otherwise.
    pub fn outcome(&self) -> Outcome {
        match self.checks.iter().map(|c| c.status).max() {
            Some(Status::Failed) => Outcome::Failed,
            Some(Status::Warning) => Outcome::NeedsAttention,
            _ => Outcome::Clean,
        }
    }
}

/// What a target's [`Target::doctor`] works with: its lane, through which every request goes
/// ([`Probe::run`]), and what the roster asks of it.
pub struct Probe<'a> {
    lane: &'a Lane,
    stop: &'a CancellationToken,
    /// The ids of the roster's people fit to send (valid, with a photo) as this target knows
    /// them.
    pub ids: &'a [String],
    /// The people of those known only by e-mail or mobile: their ids are looked up.
    pub contacts: &'a [Contact],
}

impl Probe<'_> {
    /// Runs one read through the lane: its rate limit, and retries of transient failures as
    /// `max_retries` says. A fatal answer is this read's failure; it does not stop the lane.
    pub async fn run<T, Fut>(&self, mut op: impl FnMut() -> Fut) -> Result<T, Failure>
    where
        Fut: Future<Output = Result<T, Failure>>,
    {
        let retried = self
            .lane
            .with_retries_for(Purpose::Probe, self.stop, || {
                let attempt = op();
                async move { Ok(attempt.await) }
            })
            .await;
        match retried {
            Ok(Retried::Done(value)) => Ok(value),
            Ok(Retried::Failed(f)) => Err(f),
            Ok(Retried::Stopped { .. }) | Err(_) => Err(Failure::new(
                Class::Fatal,
                ReasonCode::Interrupted,
                "the check was stopped before it finished",
            )),
        }
    }
}

/// The checks of a target's first request (`accepted`: what its success shows, such as "the
/// app credentials are accepted"): `reachable`, then `credentials` when it was reached.
pub fn first_contact<T>(result: &Result<T, Failure>, accepted: &str) -> Vec<Check> {
    match result {
        Err(f) if f.reason == ReasonCode::NetworkError => vec![Check::from_failure("reachable", f)],
        Err(f) => vec![reached(), Check::from_failure("credentials", f)],
        Ok(_) => vec![reached(), Check::ok("credentials", accepted)],
    }
}

/// The `reachable` check of a target that answered.
pub fn reached() -> Check {
    Check::ok(
        "reachable",
        "the target answers (DNS, TCP and TLS are fine)",
    )
}

/// A response's `Date` header as a time.
pub fn http_date(headers: &reqwest::header::HeaderMap) -> Option<SystemTime> {
    let text = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    httpdate::parse_http_date(text).ok()
}

/// How far `server`'s clock is ahead of `local` (negative: behind), in whole seconds.
pub fn skew(server: SystemTime, local: SystemTime) -> i64 {
    match server.duration_since(local) {
        Ok(ahead) => ahead.as_secs_f64().round() as i64,
        Err(behind) => -(behind.duration().as_secs_f64().round() as i64),
    }
}

/// `skew` for people: "37 s ahead of this machine's".
pub fn describe_skew(skew: i64) -> String {
    let by = humantime::format_duration(Duration::from_secs(skew.unsigned_abs()));
    match skew {
        0 => "in step with this machine's".to_string(),
        s if s > 0 => format!("{by} ahead of this machine's"),
        _ => format!("{by} behind this machine's"),
    }
}

/// Every check for the config at `path` and the enabled targets (or those `wanted` names).
/// A config that does not load is itself the one failed check.
pub async fn run(path: &Path, wanted: &[String]) -> Report {
    let mut report = Report::default();
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            report.checks.push(Check::failed(
                "config",
                format!("{e:#}"),
                "fix the config file (`facesync init` writes a commented example)",
            ));
            return report;
        }
    };
    let enabled = config.enabled_targets();
    report.checks.push(Check::ok(
        "config",
        format!(
            "{} loads; enabled targets: {}",
            config.file.display(),
            if enabled.is_empty() {
                "none".to_string()
            } else {
                enabled.join(", ")
            }
        ),
    ));
    for w in &config.warnings {
        report
            .checks
            .push(Check::warning("config", w.clone(), "as the warning says"));
    }
    let unknown: Vec<&String> = wanted
        .iter()
        .filter(|w| !enabled.contains(&w.as_str()))
        .collect();
    if !unknown.is_empty() {
        report.checks.push(Check::failed(
            "config",
            format!(
                "--target {}: not an enabled target",
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!(
                "name one of the enabled targets ({})",
                if enabled.is_empty() {
                    "none".to_string()
                } else {
                    enabled.join(", ")
                }
            ),
        ));
        return report;
    }
    let names: Vec<String> = match crate::session::choose(&config, wanted) {
        Ok(names) => names,
        Err(e) => {
            report.checks.push(Check::failed(
                "config",
                format!("{e:#}"),
                "enable a target in the config",
            ));
            Vec::new()
        }
    };
    let people = roster_and_photos(&config, &names, &mut report.checks);
    state(&config, &mut report.checks).await;
    if !names.is_empty() {
        report
            .checks
            .extend(target_checks(&config, &names, &people).await);
    }
    report
}

/// What the roster asks of each target: the ids of the people fit to send, and the contacts
/// of those known by e-mail or mobile only.
#[derive(Default)]
struct Wanted {
    ids: Vec<String>,
    contacts: Vec<Contact>,
}

/// The roster and photo folder checks, and what the roster asks of each target.
fn roster_and_photos(
    config: &Config,
    names: &[String],
    checks: &mut Vec<Check>,
) -> BTreeMap<String, Wanted> {
    let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
    let index = match PhotoIndex::scan(&config.photos.dir, config.photos.recursive) {
        Ok(index) => {
            checks.push(Check::ok(
                "photos",
                format!(
                    "{} is readable: {} file(s)",
                    config.photos.dir.display(),
                    index.file_count()
                ),
            ));
            Some(index)
        }
        Err(e) => {
            checks.push(Check::failed(
                "photos",
                e.to_string(),
                "check photos.dir in the config: the folder must exist and be readable by the \
                 user the nightly run runs as",
            ));
            None
        }
    };
    let roster = match crate::roster::read(&config.roster) {
        Ok(roster) => roster,
        Err(e) => {
            checks.push(Check::failed(
                "roster",
                e.to_string(),
                "check roster.path and roster.columns in the config, and the file itself",
            ));
            return wanted;
        }
    };
    let mut invalid: BTreeMap<ReasonCode, usize> = BTreeMap::new();
    for row in &roster.rows {
        if let Some(f) = &row.finding {
            *invalid.entry(f.code).or_default() += 1;
        }
    }
    let valid = roster.rows.iter().filter(|r| r.finding.is_none()).count();
    let mut detail = format!(
        "{}: {} row(s), {valid} valid",
        roster.file.display(),
        roster.rows.len()
    );
    let mut advice = Vec::new();
    if !invalid.is_empty() {
        let by: Vec<String> = invalid.iter().map(|(c, n)| format!("{n} {c}")).collect();
        detail.push_str(&format!("; invalid: {}", by.join(", ")));
        advice.push("`facesync plan` lists the invalid rows with what to do".to_string());
    }
    if let Some(index) = &index {
        let matches = match_rows(&roster.rows, index);
        let mut no_photo = 0;
        for (row, photo) in roster.rows.iter().zip(&matches.photos) {
            match photo {
                Ok(_) if row.finding.is_none() => {
                    for name in names {
                        let w = wanted.entry(name.clone()).or_default();
                        match targets::identity_for(config, name, &row.person) {
                            Ok(Identity::Id(id)) => w.ids.push(id),
                            Ok(Identity::Contact(c)) => w.contacts.push(c),
                            Err(_) => {}
                        }
                    }
                }
                Ok(_) => {}
                Err(_) if row.finding.is_none() => no_photo += 1,
                Err(_) => {}
            }
        }
        detail.push_str(&format!("; {no_photo} without a photo matched"));
        if no_photo > 0 {
            advice.push(ReasonCode::NoPhoto.advice().to_string());
        }
    }
    let check = if roster.rows.is_empty() {
        Check::warning(
            "roster",
            detail,
            "the roster has nobody in it: check that it is the right export",
        )
    } else if advice.is_empty() {
        Check::ok("roster", detail)
    } else {
        Check::warning("roster", detail, advice.join("; "))
    };
    checks.push(check);
    wanted
}

/// The state DB and its run lock.
async fn state(config: &Config, checks: &mut Vec<Check>) {
    let database = &config.state.database;
    let held = match RunLock::is_held(database) {
        Ok(true) => {
            checks.push(Check::warning(
                "run_lock",
                format!("a sync is running now on {}", database.display()),
                "let it finish: a sync started meanwhile refuses to run (the lock is next to \
                 the state DB)",
            ));
            true
        }
        Ok(false) => {
            checks.push(Check::ok("run_lock", "no sync is running"));
            false
        }
        Err(e) => {
            checks.push(Check::failed(
                "run_lock",
                e.to_string(),
                "the lock file sits next to the state DB: that folder must be writable",
            ));
            false
        }
    };
    checks.push(match Store::probe(database, !held).await {
        Ok(Health::Missing) => Check::ok(
            "state_db",
            format!(
                "{} does not exist yet: the first run creates it",
                database.display()
            ),
        ),
        Ok(Health::Ready { pending_migrations }) => {
            let mut detail = format!("{} opens and is writable", database.display());
            if held {
                detail = format!(
                    "{} opens (not written to: a sync holds it)",
                    database.display()
                );
            }
            if pending_migrations > 0 {
                detail.push_str(&format!(
                    "; the next run upgrades it ({pending_migrations} migration(s))"
                ));
            }
            Check::ok("state_db", detail)
        }
        Err(e) => Check::failed(
            "state_db",
            e.to_string(),
            "see the message: state.database in the config names the file",
        ),
    });
}

/// Each target's own checks, all targets at once, each through its lane.
async fn target_checks(
    config: &Config,
    names: &[String],
    wanted: &BTreeMap<String, Wanted>,
) -> Vec<Check> {
    let session = Session::open(config, names);
    let empty = &Wanted::default();
    let stop = &session.stop;
    let lanes: &[Arc<Lane>] = &session.lanes;
    let per_lane = fan_out(lanes, |lane| async move {
        let w = wanted.get(lane.name()).unwrap_or(empty);
        let probe = Probe {
            lane,
            stop,
            ids: &w.ids,
            contacts: &w.contacts,
        };
        let name = lane.name().to_string();
        let checks = lane.target.doctor(&probe).await;
        let checks: Vec<Check> = checks.into_iter().map(|c| c.about(&name)).collect();
        (name, checks)
    })
    .await;
    let mut by_name: BTreeMap<String, Vec<Check>> = per_lane.into_iter().collect();
    for (name, why) in &session.unavailable {
        by_name.insert(
            name.clone(),
            vec![
                Check::failed(
                    "credentials",
                    format!("cannot start: {why}"),
                    "set the secret the message names (an environment variable or a file)",
                )
                .about(name),
            ],
        );
    }
    names
        .iter()
        .flat_map(|n| by_name.remove(n).unwrap_or_default())
        .collect()
}

/// What [`Target::doctor`] does unless a kind says more: the target's preparation (a token,
/// a login), as `reachable` and `credentials`.
pub async fn prepared(target: &(impl Target + ?Sized), probe: &Probe<'_>) -> Vec<Check> {
    let result = probe.run(|| target.prepare()).await;
    first_contact(&result, "the target accepts the credentials")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_check_decides_the_outcome() {
        let report = |s: &[Status]| Report {
            checks: s
                .iter()
                .map(|s| Check::new("x", *s, String::new(), String::new()))
                .collect(),
        };
        assert_eq!(report(&[]).outcome(), Outcome::Clean);
        assert_eq!(report(&[Status::Ok]).outcome(), Outcome::Clean);
        assert_eq!(
            report(&[Status::Ok, Status::Warning]).outcome(),
            Outcome::NeedsAttention
        );
        assert_eq!(
            report(&[Status::Failed, Status::Warning]).outcome(),
            Outcome::Failed
        );
    }

    #[test]
    fn skew_is_signed_and_said_in_words() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(skew(t + Duration::from_secs(95), t), 95);
        assert_eq!(skew(t - Duration::from_secs(40), t), -40);
        assert_eq!(describe_skew(95), "1m 35s ahead of this machine's");
        assert_eq!(describe_skew(-40), "40s behind this machine's");
        assert_eq!(describe_skew(0), "in step with this machine's");
    }

    #[test]
    fn a_first_request_that_fails_on_the_network_is_not_a_credentials_problem() {
        let network = Failure::new(Class::Transient, ReasonCode::NetworkError, "refused");
        let auth = Failure::new(Class::Fatal, ReasonCode::AuthFailed, "bad secret");
        let names = |r: &Result<(), Failure>| -> Vec<(String, Status)> {
            first_contact(r, "ok")
                .into_iter()
                .map(|c| (c.check, c.status))
                .collect()
        };
        assert_eq!(
            names(&Err(network)),
            [("reachable".to_string(), Status::Failed)]
        );
        assert_eq!(
            names(&Err(auth)),
            [
                ("reachable".to_string(), Status::Ok),
                ("credentials".to_string(), Status::Failed)
            ]
        );
        assert_eq!(
            names(&Ok(())),
            [
                ("reachable".to_string(), Status::Ok),
                ("credentials".to_string(), Status::Ok)
            ]
        );
    }
}
