//! Store round trips on a real SQLite file.

use super::*;
use crate::reason::ReasonCode;

async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state/facesync.db"))
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn opening_creates_the_file_in_wal_mode_and_reopening_keeps_data() {
    let (dir, store) = open().await;
    let run = store.begin_run("plan").await.unwrap();
    store
        .finish_run(run, "completed", 0, &serde_json::json!({"n": 1}))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    store.close().await;
    let again = Store::open(&dir.path().join("state/facesync.db"))
        .await
        .unwrap();
    let runs = again.last_runs(5).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "completed");
    assert_eq!(runs[0].summary, Some(serde_json::json!({"n": 1})));
}

#[tokio::test]
async fn people_round_trip_and_update_in_place() {
    let (_dir, store) = open().await;
    let run = store.begin_run("plan").await.unwrap();
    let mut p = PersonRecord {
        person_id: "E1".into(),
        name: "张伟".into(),
        roster_row: Some(2),
        photo_path: Some("E1.jpg".into()),
        photo_size: Some(123),
        photo_mtime_ns: Some(456),
        photo_hash: Some("abc".into()),
    };
    store
        .save_people(std::slice::from_ref(&p), run)
        .await
        .unwrap();
    p.photo_hash = Some("def".into());
    store
        .save_people(std::slice::from_ref(&p), run)
        .await
        .unwrap();
    let people = store.people().await.unwrap();
    assert_eq!(people.len(), 1);
    assert_eq!(people["E1"], p);
}

#[tokio::test]
async fn deliveries_round_trip_with_every_field() {
    let (_dir, store) = open().await;
    let mut d = DeliveryRecord::new("E1", "vzicloud");
    d.state = State::FailedPermanent;
    d.source_hash = Some("h".into());
    d.fingerprint = Some("f".into());
    d.target_user_id = Some("E1".into());
    d.reason_code = Some(ReasonCode::UserNotFound);
    d.reason = Some("user not found".into());
    d.request_id = Some("log-1".into());
    d.attempts = 3;
    store
        .save_deliveries(std::slice::from_ref(&d))
        .await
        .unwrap();
    let got = store.delivery("E1", "vzicloud").await.unwrap().unwrap();
    assert!(!got.updated_at.is_empty());
    d.updated_at = got.updated_at.clone();
    assert_eq!(got, d);
    let counts = store.status_counts().await.unwrap();
    assert_eq!(
        counts,
        vec![StatusCount {
            target: "vzicloud".into(),
            state: State::FailedPermanent,
            count: 1
        }]
    );
}

#[tokio::test]
async fn an_attempt_left_in_flight_is_found_by_the_next_run() {
    let (_dir, store) = open().await;
    let run = store.begin_run("sync").await.unwrap();
    let attempt = store
        .begin_attempt(run, "E1", "feishu", Some("hash"))
        .await
        .unwrap();
    // The process dies here. The next run:
    assert_eq!(store.close_abandoned_runs().await.unwrap(), 1);
    let recovered = store.recover_in_flight().await.unwrap();
    assert_eq!(recovered, vec![("E1".to_string(), "feishu".to_string())]);
    let attempts = store.attempts("E1", "feishu").await.unwrap();
    assert_eq!(attempts[0].id, attempt);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Interrupted);
    assert!(store.recover_in_flight().await.unwrap().is_empty());
}

#[tokio::test]
async fn finishing_an_attempt_writes_the_delivery_in_the_same_transaction() {
    let (_dir, store) = open().await;
    let run = store.begin_run("sync").await.unwrap();
    let id = store
        .begin_attempt(run, "E1", "feishu", Some("sent"))
        .await
        .unwrap();
    let mut d = DeliveryRecord::new("E1", "feishu");
    d.state = State::Delivered;
    d.delivered_hash = Some("sent".into());
    d.attempts = 1;
    let attempt = AttemptRecord {
        id,
        outcome: AttemptOutcome::Delivered,
        http_status: Some(200),
        code: Some("0".into()),
        message: Some("success".into()),
        request_id: Some("202611210001".into()),
        remote_id: None,
        duration_ms: Some(12),
    };
    store.finish_attempt(&attempt, &d).await.unwrap();
    assert_eq!(store.attempts("E1", "feishu").await.unwrap(), vec![attempt]);
    assert_eq!(
        store.delivery("E1", "feishu").await.unwrap().unwrap().state,
        State::Delivered
    );
    assert_eq!(
        store.attempt_counts().await.unwrap()[&("E1".to_string(), "feishu".to_string())],
        1
    );
}

#[tokio::test]
async fn bulk_saves_span_several_batches() {
    let (_dir, store) = open().await;
    let rows: Vec<DeliveryRecord> = (0..5000)
        .map(|i| DeliveryRecord::new(&format!("P{i}"), "feishu"))
        .collect();
    store.save_deliveries(&rows).await.unwrap();
    assert_eq!(store.deliveries().await.unwrap().len(), 5000);
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("facesync.db");
    std::fs::write(
        &path,
        b"this is not sqlite, just text that is long enough to matter......",
    )
    .unwrap();
    let err = Store::open(&path).await.unwrap_err().to_string();
    assert!(err.contains("facesync.db"), "{err}");
}

#[tokio::test]
async fn identities_round_trip_and_a_newer_answer_replaces_the_old() {
    let (_dir, store) = open().await;
    let mut found = IdentityRecord {
        target: "feishu".into(),
        contact: "email:a@b.c".into(),
        namespace: "ns".into(),
        status: IdStatus::Found,
        user_id: Some("ou_1".into()),
        resolved_at: "2026-01-01T00:00:00Z".into(),
    };
    let missing = IdentityRecord {
        contact: "mobile:138".into(),
        status: IdStatus::NotFound,
        user_id: None,
        ..found.clone()
    };
    store
        .save_identities(&[found.clone(), missing.clone()])
        .await
        .unwrap();
    found.status = IdStatus::Resigned;
    found.resolved_at = "2026-02-01T00:00:00Z".into();
    store
        .save_identities(std::slice::from_ref(&found))
        .await
        .unwrap();
    let cached = store.identities("feishu").await.unwrap();
    assert_eq!(cached.len(), 2);
    assert_eq!(cached["email:a@b.c"], found);
    assert_eq!(cached["mobile:138"], missing);
    assert!(store.identities("vzicloud").await.unwrap().is_empty());
}
