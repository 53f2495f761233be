//! The delivery state machine: every change of a person-target row ([`DeliveryRecord`]) goes
//! through these methods, and every request about one person (an upload, a removal, a check,
//! a download) is recorded through [`record_attempt`]. What a state means (what the target
//! holds, which fields are cleared) is decided here once; planning, the lanes, pre-flight,
//! prune and verify only say which transition happened.

use std::future::Future;
use std::time::Instant;

use crate::reason::{Finding, ReasonCode};
use crate::store::{
    AttemptKind, AttemptOutcome, AttemptRecord, DeliveryRecord, State, Store, StoreError,
};
use crate::targets::{Class, Failure, Receipt};

/// What a row's current state is about: the photo, the settings and the target's user id it
/// was decided for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct About<'a> {
    pub(crate) source_hash: Option<&'a str>,
    pub(crate) fingerprint: &'a str,
    pub(crate) user_id: Option<&'a str>,
}

/// What a target confirmed it holds after an upload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held<'a> {
    pub(crate) source_hash: &'a str,
    /// The hash of the bytes sent.
    pub(crate) hash: &'a str,
    pub(crate) fingerprint: &'a str,
    pub(crate) user_id: &'a str,
}

/// The state a failed request leaves a person in. A fatal failure is the target's fault, not
/// the person's: like a transient one, it is retried on the next run.
pub(crate) fn failed_state(class: Class) -> State {
    match class {
        Class::Permanent => State::FailedPermanent,
        Class::Transient | Class::Fatal => State::FailedRetryable,
    }
}

impl DeliveryRecord {
    /// The row is now about this photo, these settings and this id.
    pub(crate) fn set_about(&mut self, about: About<'_>) {
        self.source_hash = about.source_hash.map(str::to_string);
        self.fingerprint = Some(about.fingerprint.to_string());
        self.target_user_id = about.user_id.map(str::to_string);
    }

    fn set_reason(&mut self, reason: Option<(ReasonCode, String)>) {
        let (code, message) = reason.unzip();
        self.reason_code = code;
        self.reason = message;
    }

    /// The target no longer holds what the row says it does: a person who comes back, or
    /// whose face went missing, is sent again.
    fn forget_held(&mut self) {
        self.delivered_source_hash = None;
        self.delivered_hash = None;
        self.delivered_fingerprint = None;
        self.delivered_user_id = None;
    }

    /// Fit to send and waiting for an upload. `restart`: a new photo, new settings or a new id,
    /// so the attempts made for the old one no longer count.
    pub(crate) fn mark_pending(&mut self, restart: bool) {
        self.state = State::Pending;
        self.set_reason(None);
        if restart {
            self.attempts = 0;
        }
    }

    /// Not fit to send, for the finding's reason.
    pub(crate) fn mark_invalid(&mut self, finding: &Finding) {
        self.state = State::Invalid;
        self.set_reason(Some((finding.code, finding.message.clone())));
    }

    /// The target already holds this photo: nothing to send.
    pub(crate) fn mark_unchanged(&mut self) {
        self.state = State::Delivered;
        self.set_reason(None);
    }

    /// The target took the face: the row records what it now holds.
    pub(crate) fn mark_delivered(&mut self, held: Held<'_>, receipt: &Receipt) {
        self.state = State::Delivered;
        self.delivered_source_hash = Some(held.source_hash.to_string());
        self.delivered_hash = Some(held.hash.to_string());
        self.delivered_fingerprint = Some(held.fingerprint.to_string());
        self.delivered_user_id = Some(held.user_id.to_string());
        self.delivered_at = Some(crate::store::now());
        self.set_reason(None);
        self.remote_id = receipt.remote_id.clone();
        self.request_id = receipt.request_id.clone();
    }

    /// A request for this person failed (`message`: the failure as this person's reason).
    pub(crate) fn mark_failed(&mut self, failure: &Failure, message: String) {
        self.state = failed_state(failure.class);
        self.set_reason(Some((failure.reason, message)));
        self.request_id = failure.request_id.clone();
    }

    /// A failure known without a request of this run (an id lookup that kept failing).
    pub(crate) fn mark_failed_without_request(
        &mut self,
        class: Class,
        reason: ReasonCode,
        message: String,
    ) {
        self.state = failed_state(class);
        self.set_reason(Some((reason, message)));
    }

    /// The target cannot take a face for this person (pre-flight), with no upload spent.
    pub(crate) fn mark_held_back(&mut self, finding: Finding) {
        self.state = State::FailedPermanent;
        self.set_reason(Some((finding.code, finding.message)));
    }

    /// The user was deleted from the target (`sync --prune`).
    pub(crate) fn mark_removed(&mut self, receipt: &Receipt, message: String) {
        self.state = State::Removed;
        self.set_reason(Some((ReasonCode::LeftRoster, message)));
        self.forget_held();
        self.remote_id = None;
        self.request_id = receipt.request_id.clone();
    }

    /// The target was found not to hold the face the row recorded (`verify`): pending, so the
    /// next sync sends it again.
    pub(crate) fn mark_missing_remotely(&mut self, message: String) {
        self.state = State::Pending;
        self.forget_held();
        self.reason_code = None;
        self.reason = Some(message);
    }

    /// The run or the target stopped before this job was done. A job never tried stays
    /// pending; one that failed and will be retried keeps its failure unless the target
    /// stopped, which is then the reason.
    pub(crate) fn mark_left_undone(&mut self, tried: bool, reason: ReasonCode, message: String) {
        if !tried {
            self.state = State::Pending;
        }
        if self.state != State::FailedRetryable || reason == ReasonCode::TargetStopped {
            self.set_reason(Some((reason, message)));
        }
    }
}

/// The audit row of an attempt that failed.
pub(crate) fn failed_attempt(
    id: i64,
    failure: &Failure,
    duration_ms: Option<i64>,
) -> AttemptRecord {
    AttemptRecord {
        id,
        outcome: match failure.class {
            Class::Transient => AttemptOutcome::Transient,
            Class::Permanent => AttemptOutcome::Permanent,
            Class::Fatal => AttemptOutcome::Fatal,
        },
        http_status: failure.http_status.map(i64::from),
        code: failure.code.clone(),
        message: Some(failure.message.clone()),
        request_id: failure.request_id.clone(),
        remote_id: None,
        duration_ms,
    }
}

/// A target's success answer, as its attempt row records it.
pub(crate) trait Answer {
    /// The outcome a request of `kind` that got this answer is recorded with.
    fn outcome(&self, kind: AttemptKind) -> AttemptOutcome;
    /// What the vendor said about the request (status, request id, remote id), if it said.
    fn receipt(&self) -> Option<&Receipt>;
}

/// A change's answer: the upload delivered, the removal done.
impl Answer for Receipt {
    fn outcome(&self, kind: AttemptKind) -> AttemptOutcome {
        match kind {
            AttemptKind::Remove => AttemptOutcome::Removed,
            AttemptKind::Upload | AttemptKind::Check | AttemptKind::Download => {
                AttemptOutcome::Delivered
            }
        }
    }

    fn receipt(&self) -> Option<&Receipt> {
        Some(self)
    }
}

/// A read's answer: the user (a check) or the face (a download), if the target has one.
impl<T> Answer for Option<T> {
    fn outcome(&self, _kind: AttemptKind) -> AttemptOutcome {
        match self {
            Some(_) => AttemptOutcome::Found,
            None => AttemptOutcome::NotFound,
        }
    }

    fn receipt(&self) -> Option<&Receipt> {
        None
    }
}

/// What one recorded request is about.
pub(crate) enum Subject<'a, T> {
    /// A change at the target (an upload, a removal): it moves the person's row, written with
    /// the attempt's end.
    Change {
        /// The row as last written; its `person_id` and `target` name the attempt.
        row: &'a std::sync::Mutex<DeliveryRecord>,
        /// The row's transition on success.
        on_success: &'a (dyn Fn(&mut DeliveryRecord, &T) + Sync),
        /// The person's reason on failure, from the failure's message.
        on_failure: &'a (dyn Fn(&Failure) -> String + Sync),
    },
    /// A read about one person (a check, a download): only its outcome is recorded. What the
    /// answer means for the person's row is the caller's to decide.
    Read { person_id: &'a str, target: &'a str },
}

/// One recorded request.
pub(crate) struct Attempt<'a, T> {
    pub(crate) run_id: i64,
    /// An upload or a removal goes with [`Subject::Change`], a check or a download with
    /// [`Subject::Read`].
    pub(crate) kind: AttemptKind,
    /// The hash of the bytes sent, if any.
    pub(crate) sent_hash: Option<&'a str>,
    pub(crate) subject: Subject<'a, T>,
}

/// The one recorded-attempt path, for every request about one person (uploads, removals,
/// checks, downloads): the attempt row is written before the request leaves and completed
/// after, with a change's row transition in the same transaction. So a run killed at any point
/// leaves an in-flight attempt the next run recovers, and a row is never delivered without the
/// target's success answer. Only uploads count in the row's `attempts`.
pub(crate) async fn record_attempt<T: Answer>(
    store: &Store,
    attempt: Attempt<'_, T>,
    request: impl Future<Output = Result<T, Failure>>,
) -> Result<Result<T, Failure>, StoreError> {
    debug_assert_eq!(
        attempt.kind.is_change(),
        matches!(attempt.subject, Subject::Change { .. }),
        "{:?} goes with the other subject",
        attempt.kind
    );
    let (person, target) = match &attempt.subject {
        Subject::Change { row, .. } => {
            let r = row.lock().expect("row lock");
            (r.person_id.clone(), r.target.clone())
        }
        Subject::Read { person_id, target } => (person_id.to_string(), target.to_string()),
    };
    let id = store
        .begin_attempt(
            attempt.run_id,
            &person,
            &target,
            attempt.kind,
            attempt.sent_hash,
        )
        .await?;
    let started = Instant::now();
    let result = request.await;
    let duration_ms = Some(started.elapsed().as_millis() as i64);
    let record = match &result {
        Ok(answer) => {
            let receipt = answer.receipt();
            AttemptRecord {
                id,
                outcome: answer.outcome(attempt.kind),
                http_status: receipt.map(|r| r.http_status.into()),
                code: None,
                message: None,
                request_id: receipt.and_then(|r| r.request_id.clone()),
                remote_id: receipt.and_then(|r| r.remote_id.clone()),
                duration_ms,
            }
        }
        Err(failure) => failed_attempt(id, failure, duration_ms),
    };
    match attempt.subject {
        Subject::Change {
            row,
            on_success,
            on_failure,
        } => {
            let mut r = row.lock().expect("row lock").clone();
            if attempt.kind == AttemptKind::Upload {
                r.attempts += 1;
            }
            match &result {
                Ok(answer) => on_success(&mut r, answer),
                Err(failure) => r.mark_failed(failure, on_failure(failure)),
            }
            store.finish_attempt(&record, Some(&r)).await?;
            *row.lock().expect("row lock") = r;
        }
        Subject::Read { .. } => store.finish_attempt(&record, None).await?,
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(r: &DeliveryRecord) -> [Option<&str>; 4] {
        [
            r.delivered_source_hash.as_deref(),
            r.delivered_hash.as_deref(),
            r.delivered_fingerprint.as_deref(),
            r.delivered_user_id.as_deref(),
        ]
    }

    fn delivered() -> DeliveryRecord {
        let mut r = DeliveryRecord::new("E1", "lobby");
        r.mark_delivered(
            Held {
                source_hash: "s",
                hash: "h",
                fingerprint: "f",
                user_id: "u",
            },
            &Receipt {
                http_status: 200,
                remote_id: Some("face-1".into()),
                request_id: Some("req-1".into()),
            },
        );
        r
    }

    #[tokio::test]
    async fn only_uploads_count_in_the_row_and_a_read_leaves_the_row_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("facesync.db")).await.unwrap();
        let run_id = store.begin_run("sync").await.unwrap();
        let row = std::sync::Mutex::new(DeliveryRecord::new("E1", "lobby"));
        let receipt = || async { Ok(Receipt::default()) };
        let change = |kind| Attempt {
            run_id,
            kind,
            sent_hash: (kind == AttemptKind::Upload).then_some("h"),
            subject: Subject::Change {
                row: &row,
                on_success: &|r: &mut DeliveryRecord, _: &Receipt| r.mark_unchanged(),
                on_failure: &|f: &Failure| f.message.clone(),
            },
        };
        record_attempt(&store, change(AttemptKind::Upload), receipt())
            .await
            .unwrap()
            .unwrap();
        record_attempt(&store, change(AttemptKind::Remove), receipt())
            .await
            .unwrap()
            .unwrap();
        let read = Attempt {
            run_id,
            kind: AttemptKind::Check,
            sent_hash: None,
            subject: Subject::Read {
                person_id: "E2",
                target: "lobby",
            },
        };
        let failed = record_attempt(&store, read, async {
            Err::<Option<()>, _>(Failure::new(
                Class::Transient,
                ReasonCode::ServerError,
                "503",
            ))
        })
        .await
        .unwrap();
        assert!(failed.is_err());

        let stored = store.delivery("E1", "lobby").await.unwrap().unwrap();
        assert_eq!((stored.state, stored.attempts), (State::Delivered, 1));
        assert_eq!(row.lock().unwrap().attempts, 1);
        assert_eq!(store.delivery("E2", "lobby").await.unwrap(), None);
        let trail = store.audit_trail("E2").await.unwrap();
        assert_eq!(
            (trail[0].kind, trail[0].attempt.outcome),
            (AttemptKind::Check, AttemptOutcome::Transient)
        );
        let outcomes: Vec<_> = store
            .audit_trail("E1")
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.attempt.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                (AttemptKind::Upload, AttemptOutcome::Delivered),
                (AttemptKind::Remove, AttemptOutcome::Removed)
            ]
        );
        store.close().await;
    }

    #[test]
    fn a_delivered_row_records_what_is_held_and_clears_the_reason() {
        let r = delivered();
        assert_eq!(r.state, State::Delivered);
        assert_eq!(held(&r), [Some("s"), Some("h"), Some("f"), Some("u")]);
        assert!(r.holds("s", "f", "u"));
        assert_eq!((r.reason_code, r.reason.as_deref()), (None, None));
        assert_eq!(r.remote_id.as_deref(), Some("face-1"));
    }

    #[test]
    fn removal_and_a_missing_face_forget_what_was_held() {
        let mut removed = delivered();
        removed.mark_removed(&Receipt::default(), "gone".into());
        assert_eq!(removed.state, State::Removed);
        assert_eq!(removed.reason_code, Some(ReasonCode::LeftRoster));
        assert_eq!(held(&removed), [None; 4]);
        assert_eq!(removed.remote_id, None);

        let mut missing = delivered();
        missing.mark_missing_remotely("verify found it gone".into());
        assert_eq!(missing.state, State::Pending);
        assert_eq!(held(&missing), [None; 4]);
        assert!(!missing.holds("s", "f", "u"));
    }

    #[test]
    fn a_failure_keeps_what_was_held_and_takes_its_class() {
        for (class, state) in [
            (Class::Permanent, State::FailedPermanent),
            (Class::Transient, State::FailedRetryable),
            (Class::Fatal, State::FailedRetryable),
        ] {
            let mut r = delivered();
            r.mark_failed(
                &Failure::new(class, ReasonCode::ServerError, "boom"),
                "row 2: boom".into(),
            );
            assert_eq!(r.state, state, "{class:?}");
            assert_eq!(r.reason.as_deref(), Some("row 2: boom"));
            assert!(r.holds("s", "f", "u"), "an old delivery is still held");
        }
    }

    #[test]
    fn work_left_undone_keeps_a_retryable_failure_unless_the_target_stopped() {
        let failed = || {
            let mut r = DeliveryRecord::new("E1", "lobby");
            r.mark_failed(
                &Failure::new(Class::Transient, ReasonCode::NetworkError, "reset"),
                "reset".into(),
            );
            r
        };
        let mut r = failed();
        r.mark_left_undone(true, ReasonCode::Interrupted, "the run stopped".into());
        assert_eq!(
            (r.state, r.reason_code),
            (State::FailedRetryable, Some(ReasonCode::NetworkError))
        );
        let mut r = failed();
        r.mark_left_undone(true, ReasonCode::TargetStopped, "the target stopped".into());
        assert_eq!(
            (r.state, r.reason_code),
            (State::FailedRetryable, Some(ReasonCode::TargetStopped))
        );
        let mut r = DeliveryRecord::new("E1", "lobby");
        r.mark_left_undone(false, ReasonCode::Interrupted, "the run stopped".into());
        assert_eq!(
            (r.state, r.reason_code),
            (State::Pending, Some(ReasonCode::Interrupted))
        );
    }
}
