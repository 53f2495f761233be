//! The rows of the state database as Rust types.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

use crate::reason::ReasonCode;

/// A person's state at one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting to be sent.
    Pending,
    /// The target holds this person's current photo.
    Delivered,
    /// The target refused this photo or person for good; not retried until something changes.
    FailedPermanent,
    /// A transient failure that outlasted the retries; retried on the next run.
    FailedRetryable,
    /// The roster row or the photo is not fit to send.
    Invalid,
    /// Left out of a run on purpose (a limit, a target that stopped).
    Skipped,
    /// No longer in the roster: deleted from the target (`sync --prune`).
    Removed,
}

impl State {
    pub const ALL: [State; 7] = [
        State::Pending,
        State::Delivered,
        State::FailedPermanent,
        State::FailedRetryable,
        State::Invalid,
        State::Skipped,
        State::Removed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::FailedPermanent => "failed_permanent",
            Self::FailedRetryable => "failed_retryable",
            Self::Invalid => "invalid",
            Self::Skipped => "skipped",
            Self::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_failed(self) -> bool {
        matches!(self, Self::FailedPermanent | Self::FailedRetryable)
    }
}

/// A roster person as last seen, with the photo hash cache (size + mtime + hash).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonRecord {
    pub person_id: String,
    pub name: String,
    pub roster_row: Option<i64>,
    pub photo_path: Option<String>,
    pub photo_size: Option<i64>,
    pub photo_mtime_ns: Option<i64>,
    pub photo_hash: Option<String>,
}

/// One person at one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub person_id: String,
    pub target: String,
    pub state: State,
    pub source_hash: Option<String>,
    pub fingerprint: Option<String>,
    pub target_user_id: Option<String>,
    pub delivered_source_hash: Option<String>,
    pub delivered_hash: Option<String>,
    pub delivered_fingerprint: Option<String>,
    pub delivered_user_id: Option<String>,
    pub delivered_at: Option<String>,
    pub reason_code: Option<ReasonCode>,
    pub reason: Option<String>,
    pub remote_id: Option<String>,
    pub request_id: Option<String>,
    pub attempts: i64,
    pub updated_at: String,
}

impl DeliveryRecord {
    pub(super) const COLUMNS: &'static str = "person_id, target, state, source_hash, fingerprint,
        target_user_id, delivered_source_hash, delivered_hash, delivered_fingerprint,
        delivered_user_id, delivered_at, reason_code, reason, remote_id, request_id, attempts,
        updated_at";

    /// [`Self::COLUMNS`] of the table aliased `d`, for joins.
    pub(super) const COLUMNS_OF_D: &'static str = "d.person_id, d.target, d.state,
        d.source_hash, d.fingerprint, d.target_user_id, d.delivered_source_hash,
        d.delivered_hash, d.delivered_fingerprint, d.delivered_user_id, d.delivered_at,
        d.reason_code, d.reason, d.remote_id, d.request_id, d.attempts, d.updated_at";

    /// A fresh row for a person and target that have no history.
    pub fn new(person_id: &str, target: &str) -> Self {
        Self {
            person_id: person_id.to_string(),
            target: target.to_string(),
            state: State::Pending,
            source_hash: None,
            fingerprint: None,
            target_user_id: None,
            delivered_source_hash: None,
            delivered_hash: None,
            delivered_fingerprint: None,
            delivered_user_id: None,
            delivered_at: None,
            reason_code: None,
            reason: None,
            remote_id: None,
            request_id: None,
            attempts: 0,
            updated_at: String::new(),
        }
    }

    /// True when the target already holds exactly this photo, made under these settings, for
    /// this user id.
    pub fn holds(&self, source_hash: &str, fingerprint: &str, target_user_id: &str) -> bool {
        self.delivered_source_hash.as_deref() == Some(source_hash)
            && self.delivered_fingerprint.as_deref() == Some(fingerprint)
            && self.delivered_user_id.as_deref() == Some(target_user_id)
    }

    /// True when this row's current state is about exactly this photo, settings and user.
    pub fn is_about(&self, source_hash: &str, fingerprint: &str, target_user_id: &str) -> bool {
        self.source_hash.as_deref() == Some(source_hash)
            && self.fingerprint.as_deref() == Some(fingerprint)
            && self.target_user_id.as_deref() == Some(target_user_id)
    }

    pub(super) fn from_row(r: &SqliteRow) -> Self {
        Self {
            person_id: r.get("person_id"),
            target: r.get("target"),
            state: State::parse(&r.get::<String, _>("state")).unwrap_or(State::Pending),
            source_hash: r.get("source_hash"),
            fingerprint: r.get("fingerprint"),
            target_user_id: r.get("target_user_id"),
            delivered_source_hash: r.get("delivered_source_hash"),
            delivered_hash: r.get("delivered_hash"),
            delivered_fingerprint: r.get("delivered_fingerprint"),
            delivered_user_id: r.get("delivered_user_id"),
            delivered_at: r.get("delivered_at"),
            reason_code: r
                .get::<Option<String>, _>("reason_code")
                .and_then(|c| ReasonCode::parse(&c)),
            reason: r.get("reason"),
            remote_id: r.get("remote_id"),
            request_id: r.get("request_id"),
            attempts: r.get("attempts"),
            updated_at: r.get("updated_at"),
        }
    }
}

/// What a request to a target was for: a change of what the target holds (an upload, a
/// removal) or a read about one person (a check of the user, a download of their face).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    /// A face sent to the target.
    Upload,
    /// A user deleted from the target (`sync --prune`).
    Remove,
    /// One user looked up before uploading (the pre-flight).
    Check,
    /// A face read back from the target (`fetch`).
    Download,
}

impl AttemptKind {
    /// Every kind, changes first.
    pub const ALL: [AttemptKind; 4] = [Self::Upload, Self::Remove, Self::Check, Self::Download];

    /// The kinds that change what the target holds: what a person's attempt counts count.
    pub const CHANGES: [AttemptKind; 2] = [Self::Upload, Self::Remove];

    /// The name stored in `attempts.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Remove => "remove",
            Self::Check => "check",
            Self::Download => "download",
        }
    }

    /// The kind stored as `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// True for an upload or a removal, false for a read.
    pub fn is_change(self) -> bool {
        Self::CHANGES.contains(&self)
    }
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    InFlight,
    Delivered,
    Transient,
    Permanent,
    Fatal,
    Interrupted,
    /// A user deleted from the target (`sync --prune`).
    Removed,
    /// A read answered: the target knows the user (a check), or holds their face (a download).
    Found,
    /// A read answered: the target does not know the user, or holds no face for them.
    NotFound,
}

impl AttemptOutcome {
    const ALL: [AttemptOutcome; 9] = [
        Self::InFlight,
        Self::Delivered,
        Self::Transient,
        Self::Permanent,
        Self::Fatal,
        Self::Interrupted,
        Self::Removed,
        Self::Found,
        Self::NotFound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InFlight => "in_flight",
            Self::Delivered => "delivered",
            Self::Transient => "transient",
            Self::Permanent => "permanent",
            Self::Fatal => "fatal",
            Self::Interrupted => "interrupted",
            Self::Removed => "removed",
            Self::Found => "found",
            Self::NotFound => "not_found",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// One request to a target, as the audit trail keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    pub id: i64,
    pub outcome: AttemptOutcome,
    pub http_status: Option<i64>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
    pub remote_id: Option<String>,
    pub duration_ms: Option<i64>,
}

impl AttemptRecord {
    pub(super) const COLUMNS: &'static str =
        "id, outcome, http_status, code, message, request_id, remote_id, duration_ms";

    pub(super) fn from_row(r: &SqliteRow) -> Self {
        Self {
            id: r.get("id"),
            outcome: AttemptOutcome::parse(&r.get::<String, _>("outcome"))
                .unwrap_or(AttemptOutcome::Interrupted),
            http_status: r.get("http_status"),
            code: r.get("code"),
            message: r.get("message"),
            request_id: r.get("request_id"),
            remote_id: r.get("remote_id"),
            duration_ms: r.get("duration_ms"),
        }
    }
}

/// One entry of a person's audit trail, of any kind: what the request was, where, when, and
/// how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptEntry {
    pub target: String,
    pub kind: AttemptKind,
    pub run_id: i64,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: Option<String>,
    pub attempt: AttemptRecord,
}

impl AttemptEntry {
    pub(super) fn from_row(r: &SqliteRow) -> Self {
        Self {
            target: r.get("target"),
            kind: AttemptKind::parse(&r.get::<String, _>("kind")).unwrap_or(AttemptKind::Upload),
            run_id: r.get("run_id"),
            started_at: r.get("started_at"),
            finished_at: r.get("finished_at"),
            attempt: AttemptRecord::from_row(r),
        }
    }
}

/// An attempt a killed run left in flight, closed as `interrupted` by
/// [`super::Store::recover_in_flight`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub person_id: String,
    pub target: String,
    pub kind: AttemptKind,
}

/// A run, as `status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub kind: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: String,
    pub exit_code: Option<i64>,
    pub summary: Option<serde_json::Value>,
}

impl RunRecord {
    pub(super) fn from_row(r: &SqliteRow) -> Self {
        Self {
            id: r.get("id"),
            kind: r.get("kind"),
            started_at: r.get("started_at"),
            finished_at: r.get("finished_at"),
            status: r.get("status"),
            exit_code: r.get("exit_code"),
            summary: r
                .get::<Option<String>, _>("summary")
                .and_then(|s| serde_json::from_str(&s).ok()),
        }
    }
}

/// How many people are in one state at one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusCount {
    pub target: String,
    pub state: State,
    pub count: i64,
}

/// What a target answered when a person was looked up by e-mail or mobile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdStatus {
    Found,
    NotFound,
    Resigned,
}

impl IdStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Found => "found",
            Self::NotFound => "not_found",
            Self::Resigned => "resigned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Found, Self::NotFound, Self::Resigned]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// A cached lookup: a contact (`email:...` / `mobile:...`) and the target's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    pub target: String,
    /// [`crate::targets::Contact::key`].
    pub contact: String,
    /// The settings the answer is valid under ([`crate::config::IdCache::namespace`]).
    pub namespace: String,
    pub status: IdStatus,
    /// The target's id, when found.
    pub user_id: Option<String>,
    /// When the target answered (RFC 3339, UTC).
    pub resolved_at: String,
}

impl IdentityRecord {
    pub(super) fn from_row(r: &SqliteRow) -> Self {
        Self {
            target: r.get("target"),
            contact: r.get("contact"),
            namespace: r.get("namespace"),
            status: IdStatus::parse(&r.get::<String, _>("status")).unwrap_or(IdStatus::NotFound),
            user_id: r.get("user_id"),
            resolved_at: r.get("resolved_at"),
        }
    }
}

/// One person as a plan compares them with their row at a target: the photo and the user id
/// they have now (`None`: no photo, or an id still to be looked up).
#[derive(Debug, Clone, Copy)]
pub struct Compared<'a> {
    pub person_id: &'a str,
    pub source_hash: Option<&'a str>,
    pub user_id: Option<&'a str>,
}

/// The rows a plan compares with at one target, by index into the people it asked about.
#[derive(Debug, Default)]
pub struct Previous {
    /// True where the target holds exactly this photo under these settings for this id and the
    /// row says delivered: nothing to send and nothing to write. Such rows are not read.
    pub settled: Vec<bool>,
    /// The whole row of every other person who has one.
    pub rows: HashMap<usize, DeliveryRecord>,
}

impl Previous {
    /// The row of the `k`th person, when it was read (it exists and is not settled).
    pub fn row(&self, k: usize) -> Option<&DeliveryRecord> {
        self.rows.get(&k)
    }

    /// True when the `k`th person's row is settled.
    pub fn is_settled(&self, k: usize) -> bool {
        self.settled.get(k).copied().unwrap_or(false)
    }
}
