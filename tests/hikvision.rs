//! Door terminals' own flows, beyond the contract suite every kind passes (tests/contract.rs):
//! a refused login never tried twice, late and lost writes, the capacity check, several
//! terminals in one run, firmware without the upsert calls, nonces going stale, SHA-256, and
//! `verify` paging through more than one page of people. Each test runs `sync` (or `verify`)
//! with a real config file and SQLite file against emulated terminals on loopback.

mod common;

use std::time::Duration;

use common::{Workspace, demo_photo, emulator};
use facesync::cli::render_summary;
use facesync::deliver::{Summary, SyncOptions};
use facesync::reason::ReasonCode;
use facesync::store::State;
use facesync::verify::{self, DriftKind};
use facesync_emulator::{DigestAlgorithm, Emulator, EmulatorConfig, HikvisionConfig, StaleReply};

/// Demo photos at least 400 pixels on the shorter side (a terminal's floor).
const BIG_FACES: &[&str] = &[
    "E1001.jpg",
    "E1002.jpg",
    "E1003.jpg",
    "E1004.jpg",
    "E1005.jpg",
    "E1008.jpg",
    "E1009.jpg",
    "E1010.jpg",
];

fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("P{i:03}")).collect()
}

fn terminals(hikvision: HikvisionConfig) -> EmulatorConfig {
    EmulatorConfig {
        hikvision,
        ..EmulatorConfig::default()
    }
}

/// A roster of `people`, each with a photo a terminal takes.
fn roster(ws: &Workspace, people: &[String]) {
    let mut text = String::from("employee_id,name\n");
    for (i, id) in people.iter().enumerate() {
        text.push_str(&format!("{id},Person {id}\n"));
        let photo = ws.path().join(format!("photos/{id}.jpg"));
        if !photo.exists() {
            std::fs::copy(demo_photo(BIG_FACES[i % BIG_FACES.len()]), photo).unwrap();
        }
    }
    std::fs::write(ws.path().join("roster.csv"), text).unwrap();
}

/// One terminal's section, with the emulator's credentials and `extra` keys.
fn section(emu: &Emulator, terminal: &str, extra: &str) -> String {
    section_with(
        emu,
        terminal,
        emu.config().hikvision.password.expose(),
        extra,
    )
}

/// The read-back looks every 100 ms unless `extra` says otherwise.
fn section_with(emu: &Emulator, terminal: &str, password: &str, extra: &str) -> String {
    let interval = if extra.contains("readback_interval_ms") {
        ""
    } else {
        "readback_interval_ms = 100\n"
    };
    format!(
        "[targets.{terminal}]\nkind = \"hikvision\"\nbase_url = \"{url}\"\n\
         username = \"{user}\"\npassword = \"{password}\"\nrate_per_second = 50\n\
         timeout_seconds = 10\n{interval}{extra}\n",
        url = emu.hikvision_url(terminal),
        user = emu.config().hikvision.username,
    )
}

/// Writes `config.toml` with these target sections.
fn configure(ws: &Workspace, sections: &[String]) {
    let text = format!(
        "[roster]\npath = \"roster.csv\"\n[photos]\ndir = \"photos\"\n\
         duplicate_photos = \"off\"\n\
         [state]\ndatabase = \"facesync.db\"\n{}",
        sections.concat()
    );
    std::fs::write(ws.config_path(), text).unwrap();
}

fn summary_of<'a>(summary: &'a Summary, target: &str) -> &'a facesync::deliver::TargetSummary {
    common::target(summary, target)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_is_tried_once_and_stops_only_that_terminal() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = Workspace::empty();
    roster(&ws, &ids(4));
    // door1 with a wrong password, door2 with the right one.
    configure(
        &ws,
        &[
            section_with(&emu, "door1", "wrong-password", ""),
            section(&emu, "door2", ""),
        ],
    );

    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 1, "{}", render_summary(&summary));
    let door1 = summary_of(&summary, "door1");
    let stopped = door1.stopped.as_deref().unwrap_or_default();
    assert!(
        stopped.contains("refused the login") && stopped.contains("does not try again"),
        "{stopped}"
    );
    assert_eq!(door1.delivered, 0);
    assert_eq!(
        emu.hikvision_login_failures("door1"),
        1,
        "one refused login, never a second"
    );
    assert_eq!(
        summary_of(&summary, "door2").delivered,
        4,
        "{}",
        render_summary(&summary)
    );
    assert_eq!(emu.hikvision_faces("door2"), ids(4));
    assert_eq!(emu.hikvision_login_failures("door2"), 0);
    for (id, state, reason) in ws.states("door1").await {
        assert_eq!(state, State::Pending, "{id}");
        assert_eq!(reason, Some(ReasonCode::TargetStopped), "{id}");
    }

    // The next run tries once more, and only once.
    let again = ws.sync(SyncOptions::default()).await;
    assert_eq!(again.exit_code(), 1);
    assert_eq!(emu.hikvision_login_failures("door1"), 2);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_write_is_seen_on_read_back() {
    let emu = emulator(terminals(HikvisionConfig {
        late_write: Duration::from_millis(250),
        ..HikvisionConfig::default()
    }))
    .await;
    let ws = Workspace::empty();
    roster(&ws, &ids(3));
    configure(&ws, &[section(&emu, "door1", "")]);
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 0, "{}", render_summary(&summary));
    let t = summary_of(&summary, "door1");
    assert_eq!(
        (t.delivered, t.retried),
        (3, 0),
        "{}",
        render_summary(&summary)
    );
    assert_eq!(emu.hikvision_faces("door1"), ids(3));
    let searches = emu
        .hikvision_requests("door1")
        .get("hikvision.face_search")
        .copied()
        .unwrap_or(0);
    assert!(
        searches > 3,
        "each face was looked for until it showed: {searches} searches"
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_write_is_face_not_kept_and_sent_again_next_run() {
    let emu = emulator(terminals(HikvisionConfig {
        lost_writes: vec!["P002".into()],
        ..HikvisionConfig::default()
    }))
    .await;
    let ws = Workspace::empty();
    roster(&ws, &ids(3));
    configure(
        &ws,
        &[section(
            &emu,
            "door1",
            "max_retries = 0\nreadback_tries = 3",
        )],
    );
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 2, "{}", render_summary(&summary));
    let t = summary_of(&summary, "door1");
    assert_eq!(
        t.failed_retryable.get(&ReasonCode::FaceNotKept),
        Some(&1),
        "{}",
        render_summary(&summary)
    );
    let states = ws.states("door1").await;
    assert_eq!(
        states[1],
        (
            "P002".into(),
            State::FailedRetryable,
            Some(ReasonCode::FaceNotKept)
        )
    );
    assert_eq!(emu.hikvision_faces("door1"), ["P001", "P003"]);
    let store = ws.store().await;
    let row = store.delivery("P002", "door1").await.unwrap().unwrap();
    store.close().await;
    let message = row.reason.unwrap_or_default();
    assert!(
        message.contains("accepted the face") && message.contains("did not keep it"),
        "{message}"
    );

    let again = ws.sync(SyncOptions::default()).await;
    assert_eq!(again.exit_code(), 0, "{}", render_summary(&again));
    let t = summary_of(&again, "door1");
    assert_eq!(
        (t.delivered, t.unchanged),
        (1, 2),
        "{}",
        render_summary(&again)
    );
    assert_eq!(emu.hikvision_faces("door1"), ids(3));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roster_that_does_not_fit_sends_nothing_to_that_terminal() {
    let emu = emulator(terminals(HikvisionConfig {
        max_persons: 3,
        max_faces: 3,
        ..HikvisionConfig::default()
    }))
    .await;
    let ws = Workspace::empty();
    roster(&ws, &ids(4));
    configure(
        &ws,
        &[section(&emu, "door1", ""), section(&emu, "door2", "")],
    );
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 1, "{}", render_summary(&summary));
    for door in ["door1", "door2"] {
        let t = summary_of(&summary, door);
        let stopped = t.stopped.as_deref().unwrap_or_default();
        assert!(
            stopped.contains("does not fit") && stopped.contains("of its 3 persons"),
            "{door}: {stopped}"
        );
        assert_eq!(t.requests, 0, "{door}: nothing sent");
        assert!(emu.hikvision_persons(door).is_empty(), "{door}");
        let writes: u64 = emu
            .hikvision_requests(door)
            .iter()
            .filter(|(api, _)| api.contains("record") || api.contains("setup"))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(writes, 0, "{door}");
    }
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_the_terminal_holds_already_count_once_against_its_capacity() {
    let emu = emulator(terminals(HikvisionConfig {
        max_persons: 4,
        max_faces: 4,
        ..HikvisionConfig::default()
    }))
    .await;
    let ws = Workspace::empty();
    roster(&ws, &ids(3));
    configure(&ws, &[section(&emu, "door1", "")]);
    assert_eq!(ws.sync(SyncOptions::default()).await.exit_code(), 0);

    // Three new photos and one newcomer: 3 held + 4 arriving looks over 4 by the counts, but
    // only one of the four is new, so it fits.
    for id in ids(3) {
        std::fs::copy(
            demo_photo("E1009.jpg"),
            ws.path().join(format!("photos/{id}.jpg")),
        )
        .unwrap();
    }
    roster(&ws, &ids(4));
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 0, "{}", render_summary(&summary));
    assert_eq!(summary_of(&summary, "door1").delivered, 4);
    assert_eq!(emu.hikvision_faces("door1"), ids(4));

    // A fifth does not fit: the run sends nothing to door1.
    roster(&ws, &ids(5));
    let full = ws.sync(SyncOptions::default()).await;
    assert_eq!(full.exit_code(), 1, "{}", render_summary(&full));
    let t = summary_of(&full, "door1");
    assert!(
        t.stopped
            .as_deref()
            .unwrap_or_default()
            .contains("holds 4 of its 4 persons and this run would add 1"),
        "{:?}",
        t.stopped
    );
    assert_eq!(emu.hikvision_persons("door1"), ids(4));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firmware_without_the_upserts_adds_then_modifies() {
    let emu = emulator(terminals(HikvisionConfig {
        setup: false,
        ..HikvisionConfig::default()
    }))
    .await;
    let ws = Workspace::empty();
    roster(&ws, &ids(2));
    configure(&ws, &[section(&emu, "door1", "")]);
    assert_eq!(ws.sync(SyncOptions::default()).await.exit_code(), 0);
    std::fs::copy(demo_photo("E1009.jpg"), ws.path().join("photos/P001.jpg")).unwrap();
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 0, "{}", render_summary(&summary));
    assert_eq!(summary_of(&summary, "door1").delivered, 1);
    let requests = emu.hikvision_requests("door1");
    let n = |api: &str| requests.get(api).copied().unwrap_or(0);
    assert_eq!(
        n("hikvision.user_setup") + n("hikvision.face_setup"),
        0,
        "{requests:?}"
    );
    // Two adds, then P001 exists: add refused, modify.
    assert_eq!(n("hikvision.user_record"), 3, "{requests:?}");
    assert_eq!(n("hikvision.user_modify"), 1, "{requests:?}");
    assert_eq!(n("hikvision.face_record"), 3, "{requests:?}");
    assert_eq!(n("hikvision.face_modify"), 1, "{requests:?}");
    assert_eq!(emu.hikvision_faces("door1"), ids(2));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_nonces_are_renewed_and_sha_256_is_spoken() {
    // Bare: the expired nonce gets a plain 401 (with a new challenge but no stale flag), which
    // on a nonce's first use would be a refused login; on a reused one it is tried once more.
    for (algorithm, stale_reply) in [
        (DigestAlgorithm::Md5, StaleReply::Stale),
        (DigestAlgorithm::Sha256, StaleReply::Stale),
        (DigestAlgorithm::Md5, StaleReply::Bare),
    ] {
        let emu = emulator(terminals(HikvisionConfig {
            algorithm,
            stale_reply,
            // Shorter than the client's own reuse (1.5 s, 4 uses): stale answers are certain
            // for a nonce used twice, once a read-back waits.
            nonce_lifetime: Duration::from_millis(150),
            nonce_max_uses: 2,
            ..HikvisionConfig::default()
        }))
        .await;
        let ws = Workspace::empty();
        roster(&ws, &ids(3));
        configure(&ws, &[section(&emu, "door1", "readback_interval_ms = 200")]);
        let summary = ws.sync(SyncOptions::default()).await;
        assert_eq!(
            summary.exit_code(),
            0,
            "{algorithm:?}: {}",
            render_summary(&summary)
        );
        assert_eq!(emu.hikvision_faces("door1"), ids(3), "{algorithm:?}");
        assert_eq!(emu.hikvision_login_failures("door1"), 0, "{algorithm:?}");
        emu.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_pages_through_more_than_one_page_and_reports_drift() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = Workspace::empty();
    roster(&ws, &ids(35));
    configure(&ws, &[section(&emu, "door1", "readback_interval_ms = 20")]);
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 0, "{}", render_summary(&summary));

    let searches = || {
        emu.hikvision_requests("door1")
            .get("hikvision.user_search")
            .copied()
            .unwrap_or(0)
    };
    let before = searches();
    let clean = verify::verify(&ws.config(), &[], std::future::pending())
        .await
        .unwrap();
    assert_eq!(clean.exit_code(), 0, "{clean:?}");
    let t = &clean.targets[0];
    assert_eq!((t.listed, t.with_face), (35, 35), "{t:?}");
    let pages = searches() - before;
    assert_eq!(pages, 2, "30 a page: two pages for 35 people");

    // P001's person (and face) deleted on the terminal; P035 leaves the roster.
    let target = facesync::targets::build(&ws.config(), "door1").unwrap();
    target.prepare().await.unwrap();
    target.remove_user("P001").await.unwrap();
    roster(&ws, &ids(34));
    let report = verify::verify(&ws.config(), &[], std::future::pending())
        .await
        .unwrap();
    assert_eq!(report.exit_code(), 2);
    let drift: Vec<(DriftKind, String)> = report.targets[0]
        .drift
        .iter()
        .map(|d| (d.kind, d.user_id.clone()))
        .collect();
    assert_eq!(
        drift,
        [
            (DriftKind::MissingRemotely, "P001".to_string()),
            (DriftKind::NotInRoster, "P035".to_string()),
        ]
    );

    // --prune removes the leaver, face and person.
    let pruned = ws
        .sync(SyncOptions {
            prune: true,
            ..SyncOptions::default()
        })
        .await;
    assert_eq!(
        summary_of(&pruned, "door1").removed,
        1,
        "{}",
        render_summary(&pruned)
    );
    assert!(!emu.hikvision_persons("door1").contains(&"P035".to_string()));
    assert!(
        emu.hikvision_faces("door1").contains(&"P001".to_string()),
        "P001 sent again"
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_cut_to_the_byte_limit_at_a_character_boundary() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = Workspace::empty();
    roster(&ws, &ids(1));
    std::fs::write(
        ws.path().join("roster.csv"),
        "employee_id,name\nP001,欧阳娜娜Ouyang\n",
    )
    .unwrap();
    configure(&ws, &[section(&emu, "door1", "name_max_bytes = 11")]);
    assert_eq!(ws.sync(SyncOptions::default()).await.exit_code(), 0);
    let person = emu.hikvision_person("door1", "P001").unwrap();
    // Characters of 3 bytes: 11 bytes would split the fourth.
    assert_eq!(person["name"].as_str(), Some("欧阳娜"));
    emu.shutdown().await;
}
