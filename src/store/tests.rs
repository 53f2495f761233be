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
        .begin_attempt(run, "E1", "feishu", AttemptKind::Upload, Some("hash"))
        .await
        .unwrap();
    let check = store
        .begin_attempt(run, "E2", "feishu", AttemptKind::Check, None)
        .await
        .unwrap();
    // The process dies here. The next run:
    assert_eq!(store.close_abandoned_runs().await.unwrap(), 1);
    let mut recovered = store.recover_in_flight().await.unwrap();
    recovered.sort_by(|a, b| a.person_id.cmp(&b.person_id));
    let in_flight = |person: &str, kind| InFlight {
        person_id: person.into(),
        target: "feishu".into(),
        kind,
    };
    assert_eq!(
        recovered,
        vec![
            in_flight("E1", AttemptKind::Upload),
            in_flight("E2", AttemptKind::Check)
        ]
    );
    let attempts = store.attempts("E1", "feishu").await.unwrap();
    assert_eq!(attempts[0].id, attempt);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Interrupted);
    let trail = store.audit_trail("E2").await.unwrap();
    assert_eq!(
        (trail[0].attempt.id, trail[0].kind, trail[0].attempt.outcome),
        (check, AttemptKind::Check, AttemptOutcome::Interrupted)
    );
    assert!(trail[0].finished_at.is_some());
    assert!(
        store.delivery("E2", "feishu").await.unwrap().is_none(),
        "closing a read writes no delivery row"
    );
    assert!(store.recover_in_flight().await.unwrap().is_empty());
}

#[tokio::test]
async fn finishing_an_attempt_writes_the_delivery_in_the_same_transaction() {
    let (_dir, store) = open().await;
    let run = store.begin_run("sync").await.unwrap();
    let id = store
        .begin_attempt(run, "E1", "feishu", AttemptKind::Upload, Some("sent"))
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
    store.finish_attempt(&attempt, Some(&d)).await.unwrap();
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

/// The audit row a read's successful answer leaves.
fn answered(id: i64, outcome: AttemptOutcome) -> AttemptRecord {
    AttemptRecord {
        id,
        outcome,
        http_status: None,
        code: None,
        message: None,
        request_id: None,
        remote_id: None,
        duration_ms: Some(3),
    }
}

#[tokio::test]
async fn every_kind_of_attempt_round_trips_and_only_changes_count() {
    let (_dir, store) = open().await;
    let run = store.begin_run("sync").await.unwrap();
    let mut d = DeliveryRecord::new("E1", "feishu");
    d.state = State::Delivered;
    // (kind, target, sent hash, outcome, the row written with it)
    let cases = [
        (
            AttemptKind::Check,
            "feishu",
            None,
            AttemptOutcome::NotFound,
            None,
        ),
        (
            AttemptKind::Upload,
            "feishu",
            Some("sent"),
            AttemptOutcome::Delivered,
            Some(&d),
        ),
        (
            AttemptKind::Download,
            "feishu",
            None,
            AttemptOutcome::Found,
            None,
        ),
        (
            AttemptKind::Remove,
            "vzicloud",
            None,
            AttemptOutcome::Removed,
            None,
        ),
        (
            AttemptKind::Check,
            "feishu",
            None,
            AttemptOutcome::Found,
            None,
        ),
    ];
    let mut want = Vec::new();
    for (kind, target, sent, outcome, row) in cases {
        let id = store
            .begin_attempt(run, "E1", target, kind, sent)
            .await
            .unwrap();
        let record = answered(id, outcome);
        store.finish_attempt(&record, row).await.unwrap();
        want.push((target.to_string(), kind, run, record));
    }
    let trail: Vec<_> = store
        .audit_trail("E1")
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            assert!(e.finished_at.is_some() && !e.started_at.is_empty());
            (e.target, e.kind, e.run_id, e.attempt)
        })
        .collect();
    assert_eq!(trail, want, "every kind, oldest first");
    assert!(store.audit_trail("E2").await.unwrap().is_empty());

    // What counts for a person: uploads and removals, never reads.
    let feishu = store.attempts("E1", "feishu").await.unwrap();
    assert_eq!(feishu, vec![want[1].3.clone()]);
    let vzicloud = store.attempts("E1", "vzicloud").await.unwrap();
    assert_eq!(vzicloud, vec![want[3].3.clone()]);
    let counts = store.attempt_counts().await.unwrap();
    assert_eq!(counts[&("E1".to_string(), "feishu".to_string())], 1);
    assert_eq!(counts[&("E1".to_string(), "vzicloud".to_string())], 1);
    // Only the upload wrote a row.
    assert_eq!(store.deliveries().await.unwrap().len(), 1);
}

#[test]
fn the_sql_list_of_changes_is_attempt_kind_changes() {
    let listed: Vec<String> = AttemptKind::CHANGES
        .iter()
        .map(|k| format!("'{}'", k.as_str()))
        .collect();
    assert_eq!(CHANGES, format!("({})", listed.join(", ")));
    for kind in AttemptKind::ALL {
        assert_eq!(AttemptKind::parse(kind.as_str()), Some(kind));
        assert_eq!(kind.is_change(), AttemptKind::CHANGES.contains(&kind));
    }
}

#[tokio::test]
async fn attempts_recorded_before_kinds_existed_are_uploads_or_removals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("facesync.db");
    // A state DB as the release before attempt kinds left it.
    {
        let options = SqliteConnectOptions::from_str("sqlite://")
            .unwrap()
            .filename(&path)
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .unwrap();
        let mut before = sqlx::migrate!("./migrations");
        let released: Vec<_> = before
            .migrations
            .iter()
            .filter(|m| m.version < 20261202000001)
            .cloned()
            .collect();
        assert_eq!(released.len(), 2);
        before.migrations = released.into();
        before.run(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO runs (kind, started_at, status) VALUES ('sync', 'then', 'completed');
             INSERT INTO attempts (run_id, person_id, target, sent_hash, started_at, outcome)
             VALUES (1, 'E1', 'feishu', 'h1', 'then', 'delivered'),
                    (1, 'E2', 'vzicloud', NULL, 'then', 'removed'),
                    (1, 'E3', 'vzicloud', NULL, 'then', 'transient'),
                    (1, 'E4', 'feishu', 'h4', 'then', 'interrupted');",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let store = Store::open(&path).await.unwrap();
    for (person, kind) in [
        ("E1", AttemptKind::Upload),
        ("E2", AttemptKind::Remove),
        ("E3", AttemptKind::Remove),
        ("E4", AttemptKind::Upload),
    ] {
        let trail = store.audit_trail(person).await.unwrap();
        assert_eq!(
            trail.iter().map(|e| e.kind).collect::<Vec<_>>(),
            [kind],
            "{person}"
        );
    }
    // Every old row still counts.
    assert_eq!(store.attempt_counts().await.unwrap().len(), 4);
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

#[tokio::test]
async fn the_last_runs_of_a_kind_are_the_newest_of_that_kind_only() {
    let (_dir, store) = open().await;
    for kind in ["sync", "plan", "sync", "verify", "sync"] {
        let run = store.begin_run(kind).await.unwrap();
        store
            .finish_run(run, "completed", 0, &serde_json::json!({ "kind": kind }))
            .await
            .unwrap();
    }
    let ids = |runs: Vec<RunRecord>| runs.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(store.last_runs_of("sync", 2).await.unwrap()), [5, 3]);
    assert_eq!(
        ids(store.last_runs_of("sync", 10).await.unwrap()),
        [5, 3, 1]
    );
    assert_eq!(
        ids(store.last_runs_of("fetch", 10).await.unwrap()),
        Vec::<i64>::new()
    );
}

#[tokio::test]
async fn everyone_but_the_leavers_is_marked_seen_in_one_pass() {
    let (_dir, store) = open().await;
    let first = store.begin_run("sync").await.unwrap();
    let person = |id: &str| PersonRecord {
        person_id: id.into(),
        name: format!("Person {id}"),
        ..PersonRecord::default()
    };
    store
        .save_people(&[person("E1"), person("E2"), person("E3")], first)
        .await
        .unwrap();
    let second = store.begin_run("sync").await.unwrap();
    store.mark_seen_except(&["E2", "E9"], second).await.unwrap();
    let seen: Vec<(String, i64)> =
        sqlx::query_as("SELECT person_id, last_seen_run FROM people ORDER BY person_id")
            .fetch_all(&store.pool)
            .await
            .unwrap();
    assert_eq!(
        seen,
        [
            ("E1".to_string(), second),
            ("E2".to_string(), first),
            ("E3".to_string(), second)
        ]
    );
    let third = store.begin_run("sync").await.unwrap();
    store.mark_seen_except(&[], third).await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM people WHERE last_seen_run = ?")
        .bind(third)
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(n, 3);
}

#[tokio::test]
async fn people_are_read_whole_with_odd_text_and_missing_values() {
    let (_dir, store) = open().await;
    let run = store.begin_run("plan").await.unwrap();
    let odd = PersonRecord {
        person_id: "E\"1\u{1f}\\".into(),
        name: "张伟 \"Zhang\"\n".into(),
        roster_row: Some(9_000_000_000),
        photo_path: Some("sub/é.jpg".into()),
        photo_size: Some(i64::MAX),
        photo_mtime_ns: Some(-1),
        photo_hash: Some("ab".into()),
    };
    let bare = PersonRecord {
        person_id: "E2".into(),
        ..PersonRecord::default()
    };
    store
        .save_people(&[odd.clone(), bare.clone()], run)
        .await
        .unwrap();
    let people = store.people().await.unwrap();
    assert_eq!(people.len(), 2);
    assert_eq!(people[&odd.person_id], odd);
    assert_eq!(people["E2"], bare);
}

#[tokio::test]
async fn only_rows_that_are_not_settled_are_read_for_a_plan() {
    let (_dir, store) = open().await;
    // More rows than one chunk read, so the second chunk's people are compared too.
    let n = READ_CHUNK as usize + 3;
    let ids: Vec<String> = (0..n).map(|i| format!("P{i:05}")).collect();
    let held = |id: &str| {
        let mut d = DeliveryRecord::new(id, "t");
        d.state = State::Delivered;
        d.delivered_source_hash = Some("h".into());
        d.delivered_fingerprint = Some("fp".into());
        d.delivered_user_id = Some(id.into());
        d
    };
    let mut rows: Vec<DeliveryRecord> = ids.iter().map(|id| held(id)).collect();
    rows[1].state = State::FailedRetryable; // held, but the row says failed
    rows[2].delivered_fingerprint = Some("old".into()); // other settings
    rows[3].delivered_source_hash = None; // never held anything
    rows.remove(4); // no row at all
    let mut other = held(&ids[0]);
    other.target = "other".into(); // another target's row: not this one's
    rows.push(other);
    store.save_deliveries(&rows).await.unwrap();

    let mut people: Vec<Compared<'_>> = ids
        .iter()
        .map(|id| Compared {
            person_id: id,
            source_hash: Some("h"),
            user_id: Some(id),
        })
        .collect();
    people[5].source_hash = Some("new"); // a new photo
    people[6].user_id = None; // id to be looked up
    people[7].source_hash = None; // no photo now
    people[n - 1].user_id = Some("someone else"); // in the second chunk: another id
    let previous = store
        .previous_deliveries("t", "fp", &people, true)
        .await
        .unwrap();
    let settled: Vec<usize> = (0..n).filter(|&k| !previous.is_settled(k)).collect();
    assert_eq!(settled, [1, 2, 3, 4, 5, 6, 7, n - 1]);
    let mut read: Vec<usize> = previous.rows.keys().copied().collect();
    read.sort();
    assert_eq!(read, [1, 2, 3, 5, 6, 7, n - 1]);
    assert_eq!(previous.row(1).unwrap().state, State::FailedRetryable);
    assert_eq!(previous.row(n - 1).unwrap().person_id, ids[n - 1]);
    assert_eq!(previous.row(n - 1).unwrap().target, "t");

    // Not settling (--force): every row of the target is read.
    let all = store
        .previous_deliveries("t", "fp", &people, false)
        .await
        .unwrap();
    assert!((0..n).all(|k| !all.is_settled(k)));
    assert_eq!(all.rows.len(), n - 1);
    assert_eq!(
        all.row(0).unwrap().delivered_user_id.as_deref(),
        Some(&*ids[0])
    );
}

#[tokio::test]
async fn the_rows_a_plan_reads_whole_are_looked_up_by_primary_key() {
    let (_dir, store) = open().await;
    // Enough rows for the planner to weigh a scan against a lookup.
    let rows: Vec<DeliveryRecord> = (0..3000)
        .map(|i| DeliveryRecord::new(&format!("P{i:05}"), "t"))
        .collect();
    store.save_deliveries(&rows).await.unwrap();
    sqlx::query("ANALYZE").execute(&store.pool).await.unwrap();
    let explain = format!("EXPLAIN QUERY PLAN {}", rows_of_people_sql());
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(&explain)
        .bind("[]")
        .bind("t")
        .fetch_all(&store.pool)
        .await
        .unwrap();
    let steps: Vec<&str> = plan.iter().map(|(_, _, _, s)| s.as_str()).collect();
    assert!(steps.len() == 2, "{steps:?}");
    assert!(steps[0].starts_with("SCAN j"), "{steps:?}");
    assert!(
        steps[1].starts_with("SEARCH d USING INDEX sqlite_autoindex_deliveries_1"),
        "{steps:?}"
    );
}

#[tokio::test]
async fn people_are_read_in_chunks_each_once() {
    let (_dir, store) = open().await;
    let run = store.begin_run("plan").await.unwrap();
    let n = READ_CHUNK as usize * 2 + 1;
    let people: Vec<PersonRecord> = (0..n)
        .map(|i| PersonRecord {
            person_id: format!("P{i:06}"),
            name: format!("Person {i}"),
            roster_row: Some(i as i64 + 2),
            ..PersonRecord::default()
        })
        .collect();
    store.save_people(&people, run).await.unwrap();
    let mut seen = Vec::new();
    store
        .each_person(|p| seen.push((p.person_id.to_string(), p.roster_row)))
        .await
        .unwrap();
    seen.sort();
    let want: Vec<(String, Option<i64>)> = people
        .iter()
        .map(|p| (p.person_id.clone(), p.roster_row))
        .collect();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn a_targets_delivered_rows_are_read_in_chunks_with_their_names() {
    let (_dir, store) = open().await;
    let run = store.begin_run("sync").await.unwrap();
    // More delivered rows than one chunk, among rows of other states and another target.
    let n = READ_CHUNK as usize + 5;
    let mut rows = Vec::new();
    for i in 0..n {
        let id = format!("P{i:06}");
        let mut d = DeliveryRecord::new(&id, "t");
        d.state = State::Delivered;
        d.delivered_user_id = Some(format!("u{i}"));
        d.delivered_at = (i % 2 == 0).then(|| "2026-12-01T00:00:00Z".to_string());
        rows.push(d);
        let mut other = DeliveryRecord::new(&id, "other");
        other.state = State::Delivered;
        other.delivered_user_id = Some(id.clone());
        rows.push(other);
        if i % 1000 == 0 {
            rows.push(DeliveryRecord::new(&format!("Q{i:06}"), "t")); // pending
        }
    }
    store.save_deliveries(&rows).await.unwrap();
    let people = [
        PersonRecord {
            person_id: "P000001".into(),
            name: "Zoë \"Q\" \\ O'Neil".into(),
            ..PersonRecord::default()
        },
        PersonRecord {
            person_id: format!("P{:06}", n - 1),
            name: "Last".into(),
            ..PersonRecord::default()
        },
    ];
    store.save_people(&people, run).await.unwrap();

    let mut seen = Vec::new();
    store
        .each_delivered("t", |d| {
            seen.push((
                d.person_id.to_string(),
                d.user_id.as_deref().map(str::to_string),
                d.delivered_at.is_some(),
                d.name.as_deref().map(str::to_string),
            ))
        })
        .await
        .unwrap();
    assert_eq!(seen.len(), n);
    seen.sort();
    assert_eq!(
        seen[1],
        (
            "P000001".to_string(),
            Some("u1".to_string()),
            false,
            Some("Zoë \"Q\" \\ O'Neil".to_string())
        )
    );
    assert_eq!(
        seen[0].3, None,
        "a person the people table lacks has no name"
    );
    assert_eq!(seen[n - 1].3.as_deref(), Some("Last"));
    assert!(seen.iter().all(|(id, ..)| id.starts_with('P')));

    // Whole rows by id, at one target; ids without a row there are skipped.
    let ids = ["P000003", "Q000000", "nobody", &format!("P{:06}", n - 1)];
    let mut whole = store.deliveries_at("t", &ids).await.unwrap();
    whole.sort_by(|a, b| a.person_id.cmp(&b.person_id));
    let got: Vec<(&str, &str, State)> = whole
        .iter()
        .map(|d| (d.person_id.as_str(), d.target.as_str(), d.state))
        .collect();
    let last = format!("P{:06}", n - 1);
    assert_eq!(
        got,
        [
            ("P000003", "t", State::Delivered),
            (last.as_str(), "t", State::Delivered),
            ("Q000000", "t", State::Pending),
        ]
    );
}
