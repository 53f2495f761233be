//! The sync engine end to end: the emulator over loopback, a real SQLite file, real photos.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Settings, Workspace, demo_photo, emulator, target};
use facesync::cli::render_summary;
use facesync::deliver::{self, SyncOptions};
use facesync::reason::ReasonCode;
use facesync::store::{AttemptKind, AttemptOutcome, State, Store};
use facesync_emulator::EmulatorConfig;

/// A roster of `n` people P001.. with real face photos, and a config for both targets.
fn workspace(n: usize, emulator: &facesync_emulator::Emulator, extra: &str) -> Workspace {
    let ws = Workspace::empty();
    ws.add_people((1..=n).map(|i| format!("P{i:03}")));
    ws.write_config(
        emulator,
        &Settings {
            columns: "",
            max_retries: 6,
            feishu: "",
            vzicloud: "",
            extra,
        },
    );
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_delivers_to_both_targets_and_a_second_run_sends_nothing() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(6, &emu, "");
    let first = ws.sync(SyncOptions::default()).await;
    assert_eq!(first.exit_code(), 0, "{}", render_summary(&first));
    assert_eq!(target(&first, "feishu").delivered, 6);
    assert_eq!(target(&first, "vzicloud").delivered, 6);
    assert!(emu.feishu_face("P001").is_some());
    assert_eq!(emu.vzicloud_users("staff").len(), 6);
    let report = first.report.clone().expect("sync writes the HTML report");
    assert_eq!(report, ws.path().join("facesync-report.html"));
    // Everyone is delivered: the page counts them and lists nobody.
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(page.contains("12 rows need nothing"), "{page}");
    assert!(!page.contains("P001"), "delivered people are not listed");
    for (id, state, _) in ws.states("vzicloud").await {
        assert_eq!(state, State::Delivered, "{id}");
    }

    let uploads_before = emu.stats().requests_of("feishu.face_upload")
        + emu.stats().requests_of("vzicloud.face_update");
    let second = ws.sync(SyncOptions::default()).await;
    assert_eq!(second.exit_code(), 0);
    assert_eq!(target(&second, "feishu").unchanged, 6);
    assert_eq!(target(&second, "feishu").requests, 0);
    let uploads_after = emu.stats().requests_of("feishu.face_upload")
        + emu.stats().requests_of("vzicloud.face_update");
    assert_eq!(
        uploads_after, uploads_before,
        "an unchanged run must upload nothing"
    );

    // The trend of both runs: the report's chart and status, from the runs' summaries.
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(
        page.contains("<svg class=\"trend\""),
        "no chart in the report"
    );
    assert_eq!(
        page.matches("data-metric=\"delivered\" data-run=").count(),
        4
    );
    let status = ws.facesync(&["status", "-c", "config.toml", "--format", "json"]);
    assert!(status.status.success());
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let trend = json["trend"].as_array().unwrap();
    assert_eq!(trend.len(), 2, "{json}");
    assert!(
        trend[0]["run"].as_i64() < trend[1]["run"].as_i64(),
        "oldest first"
    );
    let counts = |run: usize, t: &str| {
        trend[run]["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["target"] == t)
            .unwrap()
            .clone()
    };
    assert_eq!(counts(0, "feishu")["delivered"], 6);
    assert_eq!(counts(1, "vzicloud")["unchanged"], 6);
    assert_eq!(counts(1, "vzicloud")["failed"], 0);
    assert!(trend[1]["duration_seconds"].as_f64().unwrap() >= 0.0);
    let table = ws.facesync(&["status", "-c", "config.toml", "--runs", "1"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("SYNC RUN") && table.contains("UNCHANGED"),
        "{table}"
    );
    assert_eq!(
        table.lines().filter(|l| l.contains("completed")).count(),
        2 + 2,
        "the last two runs, then the trend's one run with its two targets: {table}"
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_changed_photo_gives_one_upload_per_target() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(4, &emu, "");
    ws.sync(SyncOptions::default()).await;
    let before = emu.stats();
    std::fs::copy(demo_photo("E1014.png"), ws.path().join("photos/P002.jpg")).unwrap();
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(
        target(&summary, "feishu").delivered,
        1,
        "{}",
        render_summary(&summary)
    );
    assert_eq!(target(&summary, "vzicloud").delivered, 1);
    assert_eq!(target(&summary, "feishu").unchanged, 3);
    let after = emu.stats();
    assert_eq!(
        after.requests_of("feishu.face_upload"),
        before.requests_of("feishu.face_upload") + 1
    );
    assert_eq!(
        after.requests_of("vzicloud.face_update"),
        before.requests_of("vzicloud.face_update") + 1
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_fail_permanently_without_an_upload_and_are_not_retried() {
    let emu = emulator(EmulatorConfig {
        absent_users: vec!["P002".into()],
        ..EmulatorConfig::default()
    })
    .await;
    let ws = workspace(3, &emu, "");
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 2);
    let feishu = target(&summary, "feishu");
    assert_eq!(feishu.delivered, 2);
    // Feishu's pre-flight finds P002 in no access-control group: held back, no upload.
    assert_eq!(
        feishu.failed_permanent.get(&ReasonCode::NotInAccessGroup),
        Some(&1)
    );
    assert_eq!(feishu.requests, 2);
    let store = ws.store().await;
    assert!(store.attempts("P002", "feishu").await.unwrap().is_empty());
    // The check of P002 is in P002's audit trail: a read, with the target's answer.
    assert_eq!(
        feishu_checks(&store, "P002").await,
        [AttemptOutcome::NotFound]
    );
    store.close().await;
    // `status --person` lists it with its kind, beside the upload to VziCloud.
    let status = ws.facesync(&[
        "status",
        "-c",
        "config.toml",
        "--person",
        "P002",
        "--format",
        "json",
    ]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let listed: Vec<(&str, &str, &str)> = json["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let field = |k: &str| a[k].as_str().unwrap();
            (field("target"), field("kind"), field("outcome"))
        })
        .collect();
    assert!(listed.contains(&("feishu", "check", "not_found")), "{json}");
    assert!(
        listed.contains(&("vzicloud", "upload", "delivered")),
        "{json}"
    );
    assert_eq!(listed.len(), 2, "{json}");
    let table = ws.facesync(&["status", "-c", "config.toml", "--person", "P002"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("KIND")
            && table
                .lines()
                .any(|l| l.contains("feishu") && l.contains("check")),
        "{table}"
    );
    // VziCloud registers missing users (REPLACE): P002 is delivered there.
    assert_eq!(target(&summary, "vzicloud").delivered, 3);

    // The next run leaves the permanent failure alone; so does --only-failed while the user is
    // still unknown (checked again, not uploaded).
    let again = ws.sync(SyncOptions::default()).await;
    assert_eq!(target(&again, "feishu").requests, 0);
    assert_eq!(
        target(&again, "feishu")
            .failed_permanent
            .get(&ReasonCode::NotInAccessGroup),
        Some(&1)
    );
    let only_failed = SyncOptions {
        plan: facesync::plan::PlanOptions {
            only_failed: true,
            ..Default::default()
        },
        ..SyncOptions::default()
    };
    let retried = ws.sync(only_failed).await;
    assert_eq!(target(&retried, "feishu").requests, 0);
    assert!(target(&retried, "feishu").checks > 0);
    assert_eq!(emu.stats().refusals_of("feishu.face_upload", 1490101), 0);
    let store = ws.store().await;
    assert_eq!(
        feishu_checks(&store, "P002").await,
        [AttemptOutcome::NotFound; 2],
        "checked again by --only-failed, not by the plain run"
    );
    assert!(store.attempts("P002", "feishu").await.unwrap().is_empty());
    store.close().await;
    emu.shutdown().await;
}

/// The outcomes of a person's `check` attempts at Feishu, oldest first.
async fn feishu_checks(store: &Store, person: &str) -> Vec<AttemptOutcome> {
    store
        .audit_trail(person)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.target == "feishu" && e.kind == AttemptKind::Check)
        .map(|e| e.attempt.outcome)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_without_a_face_is_invalid_before_any_upload() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(3, &emu, "");
    std::fs::copy(demo_photo("e1011.jpg"), ws.path().join("photos/P003.jpg")).unwrap();
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 2);
    for t in ["feishu", "vzicloud"] {
        assert_eq!(
            target(&summary, t).invalid.get(&ReasonCode::NoFace),
            Some(&1),
            "{}",
            render_summary(&summary)
        );
        assert_eq!(target(&summary, t).requests, 2);
    }
    let store = ws.store().await;
    assert!(store.attempts("P003", "feishu").await.unwrap().is_empty());
    store.close().await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_storms_are_waited_out_and_everyone_is_delivered() {
    // One request a second, while the client asks for 200 with 4 in flight: even on a busy
    // machine the client outruns the limit, so throttling is certain.
    let emu = emulator(EmulatorConfig {
        feishu_rate_limit: Some(1),
        vzicloud_qps: Some(1),
        ..EmulatorConfig::default()
    })
    .await;
    let ws = workspace(10, &emu, "");
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 0, "{}", render_summary(&summary));
    for t in ["feishu", "vzicloud"] {
        assert_eq!(target(&summary, t).delivered, 10);
        assert!(
            target(&summary, t).throttled > 0,
            "the emulator should have throttled {t}"
        );
    }
    let stats = emu.stats();
    assert!(stats.refusals["feishu.face_upload"]["99991400"] > 0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_dropped_connections_are_retried() {
    // One request in four fails. With 1 + 6 tries a person fails for good with odds of
    // 0.25^7 (about 1 in 16,000), so the run ends with everyone delivered. Which requests fail
    // depends on the order they arrive in, so the seed does not pin the outcome.
    let emu = emulator(EmulatorConfig {
        error_rate: 0.15,
        drop_rate: 0.10,
        seed: 7,
        ..EmulatorConfig::default()
    })
    .await;
    // Enough requests (over 60) that both kinds of fault all but surely happen.
    let ws = workspace(30, &emu, "");
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 0, "{}", render_summary(&summary));
    let retried: usize = summary.targets.iter().map(|t| t.retried).sum();
    assert!(retried > 0, "{}", render_summary(&summary));
    let faults = emu.stats().faults;
    assert!(faults.dropped > 0 && faults.server_errors > 0);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expiring_mid_run_is_refreshed_and_nothing_fails() {
    let emu = emulator(EmulatorConfig {
        token_lifetime: Duration::from_secs(2),
        token_refresh_window: Duration::from_secs(1),
        latency: Duration::from_millis(150),
        ..EmulatorConfig::default()
    })
    .await;
    let ws = workspace(12, &emu, "");
    let summary = ws
        .sync(SyncOptions {
            plan: facesync::plan::PlanOptions {
                targets: vec!["feishu".into()],
                ..Default::default()
            },
            ..SyncOptions::default()
        })
        .await;
    assert_eq!(summary.exit_code(), 0, "{}", render_summary(&summary));
    assert_eq!(target(&summary, "feishu").delivered, 12);
    assert!(
        emu.stats().tokens_issued >= 2,
        "the token should have been renewed"
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_exhausted_on_one_target_stops_it_while_the_other_completes() {
    let emu = emulator(EmulatorConfig {
        quota: Some(4),
        ..EmulatorConfig::default()
    })
    .await;
    let ws = workspace(8, &emu, "");
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 1, "{}", render_summary(&summary));
    let vzi = target(&summary, "vzicloud");
    assert!(
        vzi.stopped.as_deref().unwrap_or("").contains("quota"),
        "{}",
        render_summary(&summary)
    );
    assert!(vzi.delivered < 8);
    assert_eq!(target(&summary, "feishu").delivered, 8);
    // Nobody is lost: every VziCloud person is delivered, or waiting to be retried.
    for (id, state, _) in ws.states("vzicloud").await {
        assert!(
            matches!(
                state,
                State::Delivered | State::Pending | State::FailedRetryable
            ),
            "{id}: {state:?}"
        );
    }
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_stops_that_target_and_the_other_goes_on() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(2, &emu, "");
    let text = std::fs::read_to_string(ws.config_path()).unwrap();
    let text = text.replacen(
        &format!(
            "app_secret = \"{}\"",
            emu.config().feishu_app_secret.expose()
        ),
        "app_secret_env = \"FACESYNC_TEST_NEVER_SET\"",
        1,
    );
    std::fs::write(ws.config_path(), text).unwrap();
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 1);
    assert!(
        target(&summary, "feishu")
            .stopped
            .as_deref()
            .unwrap()
            .contains("FACESYNC_TEST_NEVER_SET")
    );
    assert_eq!(target(&summary, "vzicloud").delivered, 2);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_fatal_for_the_target() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(2, &emu, "");
    let text = std::fs::read_to_string(ws.config_path()).unwrap();
    let text = text.replacen(
        &emu.config().vzicloud_accesskey_secret.expose().to_string(),
        "wrong-secret",
        1,
    );
    std::fs::write(ws.config_path(), text).unwrap();
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 1);
    assert!(target(&summary, "vzicloud").stopped.is_some());
    assert_eq!(target(&summary, "feishu").delivered, 2);
    for (_, state, _) in ws.states("vzicloud").await {
        assert_ne!(
            state,
            State::FailedPermanent,
            "a target's fault is not the person's"
        );
    }
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_leaves_the_rest_for_the_next_run() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(5, &emu, "");
    let limited = ws
        .sync(SyncOptions {
            limit: Some(2),
            ..SyncOptions::default()
        })
        .await;
    assert_eq!(target(&limited, "feishu").delivered, 2);
    assert_eq!(target(&limited, "feishu").not_sent, 3);
    assert_eq!(limited.exit_code(), 2);
    let rest = ws.sync(SyncOptions::default()).await;
    assert_eq!(target(&rest, "feishu").delivered, 3);
    assert_eq!(rest.exit_code(), 0);
    emu.shutdown().await;
}

/// `[targets.lobby]` and `[targets.gate2]`, both `kind = "vzicloud"` with their own groups: two
/// targets with their own state rows, lanes and summary lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_targets_of_one_kind_each_keep_their_own_state() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(4, &emu, "");
    let e = emu.config();
    let section = |name: &str, group: &str| {
        format!(
            "[targets.{name}]\nkind = \"vzicloud\"\nbase_url = \"{}\"\napp_id = {}\n\
             group_id = \"{group}\"\naccesskey_id = \"{}\"\naccesskey_secret = \"{}\"\n\
             rate_per_second = 200\n",
            emu.base_url(),
            e.vzicloud_app_id,
            e.vzicloud_accesskey_id,
            e.vzicloud_accesskey_secret.expose(),
        )
    };
    std::fs::write(
        ws.config_path(),
        format!(
            "[roster]\npath = \"roster.csv\"\n[photos]\ndir = \"photos\"\n\
             duplicate_photos = \"off\"\n[state]\n\
             database = \"facesync.db\"\n{}{}",
            section("lobby", "front"),
            section("gate2", "back")
        ),
    )
    .unwrap();
    let first = ws.sync(SyncOptions::default()).await;
    assert_eq!(first.exit_code(), 0, "{}", render_summary(&first));
    let names: Vec<&str> = first.targets.iter().map(|t| t.target.as_str()).collect();
    assert_eq!(names, ["gate2", "lobby"]);
    for (name, group) in [("lobby", "front"), ("gate2", "back")] {
        assert_eq!(target(&first, name).delivered, 4, "{name}");
        assert_eq!(emu.vzicloud_users(group).len(), 4, "{group}");
        let states = ws.states(name).await;
        assert_eq!(states.len(), 4, "{name}: {states:?}");
        assert!(
            states.iter().all(|(_, s, _)| *s == State::Delivered),
            "{name}: {states:?}"
        );
    }
    assert!(
        ws.states("vzicloud").await.is_empty(),
        "no rows under the kind's name"
    );
    let render = render_summary(&first);
    assert!(
        render.contains("lobby") && render.contains("gate2"),
        "{render}"
    );
    let again = ws.sync(SyncOptions::default()).await;
    for name in ["lobby", "gate2"] {
        assert_eq!(target(&again, name).unchanged, 4, "{name}");
        assert_eq!(target(&again, name).requests, 0, "{name}");
    }
    emu.shutdown().await;
}

/// The emulator answers every request after 800 ms and each target sends at most 4 at a time, so
/// in a run cut at 1 s no more than 8 of the 12 people can be delivered however fast or slow the
/// machine is: the latency is a lower bound, not a race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_duration_stops_taking_work_and_the_next_run_sends_the_rest() {
    let emu = emulator(EmulatorConfig {
        latency: Duration::from_millis(800),
        ..EmulatorConfig::default()
    })
    .await;
    let ws = workspace(12, &emu, "");
    let cut = ws
        .sync(SyncOptions {
            max_duration: Some(Duration::from_secs(1)),
            ..SyncOptions::default()
        })
        .await;
    assert!(!cut.interrupted, "a deadline is not a Ctrl-C");
    assert_eq!(cut.exit_code(), 2, "{}", render_summary(&cut));
    let mut left = HashMap::new();
    for name in ["feishu", "vzicloud"] {
        let t = target(&cut, name);
        assert_eq!(
            t.delivered + t.not_sent,
            12,
            "{name}: {}",
            render_summary(&cut)
        );
        assert!(t.not_sent >= 4, "{name}: {}", render_summary(&cut));
        assert_eq!(
            t.stopped, None,
            "the deadline stops the run, not the target"
        );
        left.insert(name, t.not_sent);
    }
    let store = ws.store().await;
    assert!(
        store.recover_in_flight().await.unwrap().is_empty(),
        "what was in flight at the deadline was finished and recorded"
    );
    store.close().await;
    let rest = ws.sync(SyncOptions::default()).await;
    assert_eq!(rest.exit_code(), 0, "{}", render_summary(&rest));
    for name in ["feishu", "vzicloud"] {
        assert_eq!(target(&rest, name).delivered, left[name], "{name}");
        assert_eq!(target(&rest, name).unchanged, 12 - left[name], "{name}");
    }
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_finishes_what_is_in_flight_and_exits_2() {
    let emu = emulator(EmulatorConfig {
        latency: Duration::from_millis(300),
        ..EmulatorConfig::default()
    })
    .await;
    let ws = workspace(10, &emu, "");
    let shutdown = tokio::time::sleep(Duration::from_millis(700));
    let summary = deliver::run(&ws.config(), &SyncOptions::default(), shutdown)
        .await
        .unwrap();
    assert!(summary.interrupted);
    assert_eq!(summary.exit_code(), 2);
    let store = ws.store().await;
    let in_flight = store.recover_in_flight().await.unwrap();
    assert!(
        in_flight.is_empty(),
        "every request was finished and recorded: {in_flight:?}"
    );
    store.close().await;
    let rest = ws.sync(SyncOptions::default()).await;
    assert_eq!(rest.exit_code(), 0, "{}", render_summary(&rest));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_then_resume_loses_nothing_and_resends_nothing_confirmed() {
    let emu = emulator(EmulatorConfig {
        latency: Duration::from_millis(200),
        ..EmulatorConfig::default()
    })
    .await;
    let ws = workspace(20, &emu, "");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_facesync"))
        .args(["sync", "-c"])
        .arg(ws.config_path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some faces are in, then kill without warning.
    for _ in 0..300 {
        if emu.stats().feishu_faces.len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let store = ws.store().await;
    let confirmed: Vec<(String, String, usize)> = {
        let mut v = Vec::new();
        for d in store
            .deliveries()
            .await
            .unwrap()
            .into_values()
            .filter(|d| d.state == State::Delivered)
        {
            let n = store.attempts(&d.person_id, &d.target).await.unwrap().len();
            v.push((d.person_id, d.target, n));
        }
        v
    };
    store.close().await;
    assert!(
        !confirmed.is_empty(),
        "the kill came before anything was recorded"
    );

    let resumed = ws.sync(SyncOptions::default()).await;
    assert_eq!(resumed.exit_code(), 0, "{}", render_summary(&resumed));
    for t in ["feishu", "vzicloud"] {
        for (id, state, _) in ws.states(t).await {
            assert_eq!(state, State::Delivered, "{t} {id}");
        }
    }
    let store = ws.store().await;
    for (id, t, n) in confirmed {
        assert_eq!(
            store.attempts(&id, &t).await.unwrap().len(),
            n,
            "{t} {id} was sent again"
        );
    }
    store.close().await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_off_lists_nobody_and_still_delivers() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(3, &emu, "");
    let text = std::fs::read_to_string(ws.config_path()).unwrap();
    let text = text.replacen(
        "[targets.vzicloud]",
        "preflight = false\n[targets.vzicloud]",
        1,
    );
    std::fs::write(ws.config_path(), text).unwrap();
    let summary = ws.sync(SyncOptions::default()).await;
    assert_eq!(summary.exit_code(), 0, "{}", render_summary(&summary));
    assert_eq!(target(&summary, "feishu").delivered, 3);
    let stats = emu.stats();
    assert_eq!(
        stats.requests_of("feishu.user_list") + stats.requests_of("feishu.user_get"),
        0
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_on_the_same_state_db_is_refused_while_one_runs() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(1, &emu, "");
    let held = deliver::RunLock::take(&ws.path().join("facesync.db")).unwrap();
    let err = deliver::run(
        &ws.config(),
        &SyncOptions::default(),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<deliver::LockError>(),
            Some(deliver::LockError::Busy { .. })
        ),
        "{err:#}"
    );
    let err = err.to_string();
    assert!(err.contains("another facesync sync is running"), "{err}");
    drop(held);
    assert_eq!(ws.sync(SyncOptions::default()).await.exit_code(), 0);
    emu.shutdown().await;
}

/// `plan --format json`'s items of one person, as JSON.
fn plan_items(ws: &Workspace, id: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["plan", "-c", "config.toml", "--format", "json"];
    args.extend_from_slice(extra);
    let out = ws.facesync(&args);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["id"] == id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pick_best_sends_the_sharp_photo_of_several_and_a_second_run_is_unchanged() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(2, &emu, "");
    let photos = ws.path().join("photos");
    // P001's archive: a blurred copy (first by path), the good photo, and a PNG with no face.
    let good = image::open(photos.join("P001.jpg")).unwrap();
    image::imageops::blur(&good.to_rgb8(), 6.0)
        .save(photos.join("P001 (2).jpg"))
        .unwrap();
    image::RgbImage::from_pixel(400, 500, image::Rgb([128, 128, 128]))
        .save(photos.join("P001.png"))
        .unwrap();

    // The default: several photos are ambiguous (the copy is not even looked at).
    let items = plan_items(&ws, "P001", &[]);
    assert_eq!(items.len(), 2);
    for item in &items {
        assert_eq!(item["reason_code"], "ambiguous_photo", "{item}");
        assert!(item.get("picked").is_none());
    }

    let config = std::fs::read_to_string(ws.config_path()).unwrap();
    std::fs::write(
        ws.config_path(),
        config.replace("dir = \"photos\"\n", "dir = \"photos\"\npick = \"best\"\n"),
    )
    .unwrap();
    let items = plan_items(&ws, "P001", &["--preview", "preview"]);
    assert_eq!(items.len(), 2);
    for item in &items {
        assert_eq!(item["action"], "upload", "{item}");
        assert_eq!(item["photo"], "P001.jpg", "{item}");
        let picked = &item["picked"];
        assert_eq!(picked["chosen"], "P001.jpg", "{picked}");
        let candidates = picked["candidates"].as_array().unwrap();
        let names: Vec<&str> = candidates
            .iter()
            .map(|c| c["photo"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["P001 (2).jpg", "P001.jpg", "P001.png"]);
        assert_eq!(candidates[0]["passes"], false, "{picked}");
        assert_eq!(candidates[1]["passes"], true, "{picked}");
        assert!(candidates[1]["score"].as_f64().unwrap() > 0.0);
        assert_eq!(candidates[2]["passes"], false, "{picked}");
        assert!(
            picked["why"].as_str().unwrap().contains("passes"),
            "{picked}"
        );
    }
    let table = ws.facesync(&["plan", "-c", "config.toml"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("P001: picked 'P001.jpg' of 3: it ")
            && table.contains("'P001 (2).jpg' refused: "),
        "{table}"
    );
    // P002's single photo is matched as before.
    assert_eq!(plan_items(&ws, "P002", &[])[0]["photo"], "P002.jpg");

    let first = ws.sync(SyncOptions::default()).await;
    assert_eq!(first.exit_code(), 0, "{}", render_summary(&first));
    assert_eq!(target(&first, "feishu").delivered, 2);
    // Exactly the chosen photo, normalized as `plan --preview` showed it, was sent.
    let preview = std::fs::read(ws.path().join("preview/feishu/P001.jpg")).unwrap();
    assert_eq!(emu.feishu_face("P001").as_deref(), Some(preview.as_slice()));

    // The same three files: nothing to do, and the choice is remembered.
    let uploads = emu.stats().requests_of("feishu.face_upload");
    let second = ws.sync(SyncOptions::default()).await;
    assert_eq!(
        target(&second, "feishu").unchanged,
        2,
        "{}",
        render_summary(&second)
    );
    assert_eq!(target(&second, "vzicloud").unchanged, 2);
    assert_eq!(emu.stats().requests_of("feishu.face_upload"), uploads);
    for item in plan_items(&ws, "P001", &[]) {
        assert_eq!(item["action"], "unchanged", "{item}");
        assert_eq!(item["photo"], "P001.jpg", "{item}");
    }
    let store = ws.store().await;
    let stored = store.people().await.unwrap()["P001"].clone();
    store.close().await;
    assert_eq!(stored.photo_path.as_deref(), Some("P001.jpg"));

    // A candidate changes: the set is decided again.
    image::imageops::blur(&good.to_rgb8(), 8.0)
        .save(photos.join("P001 (2).jpg"))
        .unwrap();
    let items = plan_items(&ws, "P001", &[]);
    assert!(items.iter().all(|i| i["action"] == "upload"), "{items:?}");
    emu.shutdown().await;
}

/// P001 and P002 with `photos.pick = "best"` (and the duplicate check on or off): Feishu takes
/// at most 420 x 420 and a softer face than the default allows, VziCloud its defaults; P001 has
/// a second candidate, `P001 (2).jpg`, a softened copy of their photo, too blurred for VziCloud.
fn two_profiles_picking_best(emu: &facesync_emulator::Emulator, duplicates: bool) -> Workspace {
    let ws = Workspace::empty();
    ws.add_people((1..=2).map(|i| format!("P{i:03}")));
    ws.write_config(
        emu,
        &Settings {
            columns: "",
            max_retries: 6,
            feishu: "[targets.feishu.profile]\nmax_width = 420\nmax_height = 420\n\
                     max_bytes = 1048576\nmin_sharpness = 5\n",
            vzicloud: "",
            extra: "",
        },
    );
    let mut config = std::fs::read_to_string(ws.config_path())
        .unwrap()
        .replace("dir = \"photos\"\n", "dir = \"photos\"\npick = \"best\"\n");
    if duplicates {
        config = config.replace(
            "duplicate_photos = \"off\"\n",
            "duplicate_photos = \"refuse\"\n",
        );
    }
    std::fs::write(ws.config_path(), config).unwrap();
    let photos = ws.path().join("photos");
    let original = image::open(photos.join("P001.jpg")).unwrap().to_rgb8();
    image::imageops::blur(&original, 0.8)
        .save(photos.join("P001 (2).jpg"))
        .unwrap();
    ws
}

/// Checks that `plan` makes each (id, other) pair's VziCloud item `duplicate_photo` naming the
/// other, then runs a sync.
async fn duplicates_refused_at_vzicloud(
    ws: &Workspace,
    pairs: [(&str, &str); 2],
) -> facesync::deliver::Summary {
    for (id, other) in pairs {
        let items = plan_items(ws, id, &[]);
        let vzicloud = items.iter().find(|i| i["target"] == "vzicloud").unwrap();
        assert_eq!(vzicloud["action"], "invalid", "{vzicloud}");
        assert_eq!(vzicloud["reason_code"], "duplicate_photo", "{vzicloud}");
        assert!(
            vzicloud["reason"].as_str().unwrap().contains(other),
            "{vzicloud}"
        );
    }
    ws.sync(SyncOptions::default()).await
}

/// `face` enlarged and framed wide enough that at Feishu's 420 pixels its eyes are too close,
/// while VziCloud takes it.
fn wide_frame(face: &image::RgbImage) -> image::RgbImage {
    let (w, h) = (face.width() * 8 / 5, face.height() * 8 / 5);
    let larger = image::imageops::resize(face, w, h, image::imageops::Lanczos3);
    let mut frame = image::RgbImage::from_pixel(w * 2, h * 2, image::Rgb([190, 190, 190]));
    image::imageops::overlay(&mut frame, &larger, i64::from(w) / 2, i64::from(h) / 4);
    frame
}

/// Feishu takes at most 420 x 420 (and a softer face than the default allows), VziCloud its
/// default 1920 x 1080; P001's two photos each pass at one target only: `P001.jpg`, the face
/// smaller in a larger frame (900 x 900), has its eyes too close once shrunk for Feishu;
/// `P001 (2).jpg`, a softened copy of the 420 x 420 original, is too blurred for VziCloud.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pick_best_sends_each_target_the_photo_that_passes_there_when_none_passes_at_both() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = two_profiles_picking_best(&emu, false);
    let photos = ws.path().join("photos");
    let original = image::open(photos.join("P001.jpg")).unwrap().to_rgb8();
    let (w, h) = original.dimensions();
    assert_eq!((w, h), (420, 420));
    let larger = image::imageops::resize(&original, 672, 672, image::imageops::Lanczos3);
    let mut frame = image::RgbImage::from_pixel(900, 900, image::Rgb([190, 190, 190]));
    image::imageops::overlay(&mut frame, &larger, 114, 114);
    frame.save(photos.join("P001.jpg")).unwrap();

    let items = plan_items(&ws, "P001", &["--preview", "preview"]);
    let by_target = |items: &[serde_json::Value], t: &str| {
        items
            .iter()
            .find(|i| i["target"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("no {t} item in {items:?}"))
    };
    let (feishu, vzicloud) = (by_target(&items, "feishu"), by_target(&items, "vzicloud"));
    for (item, photo, other, code) in [
        (&feishu, "P001 (2).jpg", "P001.jpg", "eyes_too_close"),
        (&vzicloud, "P001.jpg", "P001 (2).jpg", "face_blurry"),
    ] {
        let target = item["target"].as_str().unwrap();
        assert_eq!(item["action"], "upload", "{item}");
        assert_eq!(item["photo"], photo, "{item}");
        let picked = &item["picked"];
        assert_eq!(picked["chosen"], photo, "{picked}");
        assert_eq!(picked["target"], target, "{picked}");
        assert!(
            picked["why"]
                .as_str()
                .unwrap()
                .contains("no candidate passes at every target"),
            "{picked}"
        );
        let candidates = picked["candidates"].as_array().unwrap();
        let verdict = |name: &str| {
            candidates
                .iter()
                .find(|c| c["photo"] == name)
                .unwrap_or_else(|| panic!("no {name} in {picked}"))
        };
        assert_eq!(verdict(photo)["passes"], true, "{picked}");
        assert_eq!(verdict(other)["passes"], false, "{picked}");
        assert_eq!(verdict(other)["reason_code"], code, "{picked}");
        assert_eq!(verdict(other)["refused_for"], serde_json::json!([target]));
    }
    let table = ws.facesync(&["plan", "-c", "config.toml"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("P001: picked 'P001 (2).jpg' of 2 for feishu: ")
            && table.contains("'P001.jpg' refused for feishu: eyes_too_close")
            && table.contains("P001: picked 'P001.jpg' of 2 for vzicloud: ")
            && table.contains("'P001 (2).jpg' refused for vzicloud: face_blurry"),
        "{table}"
    );

    let first = ws.sync(SyncOptions::default()).await;
    assert_eq!(first.exit_code(), 0, "{}", render_summary(&first));
    assert_eq!(target(&first, "feishu").delivered, 2);
    assert_eq!(target(&first, "vzicloud").delivered, 2);
    // Each target received its own file, normalized as `plan --preview` showed it: Feishu the
    // softened copy (420 x 420), VziCloud the larger frame (900 x 900).
    let to_feishu = emu.feishu_face("P001").expect("P001 at feishu");
    let faces = emu.vzicloud_faces("staff", "P001");
    assert_eq!(faces.len(), 1);
    let to_vzicloud = &faces[0].bytes;
    for (target, received, size) in [
        ("feishu", &to_feishu, (420, 420)),
        ("vzicloud", to_vzicloud, (900, 900)),
    ] {
        let preview = std::fs::read(ws.path().join(format!("preview/{target}/P001.jpg"))).unwrap();
        assert_eq!(received, &preview, "{target}");
        let image = image::load_from_memory(received).unwrap();
        assert_eq!((image.width(), image.height()), size, "{target}");
    }
    // The person's one stored photo: the first target's choice.
    let store = ws.store().await;
    let stored = store.people().await.unwrap()["P001"].clone();
    store.close().await;
    assert_eq!(stored.photo_path.as_deref(), Some("P001 (2).jpg"));

    // The same files the next night: nothing decided or sent again.
    let uploads = emu.stats().requests_of("feishu.face_upload");
    let updates = emu.stats().requests_of("vzicloud.face_update");
    let second = ws.sync(SyncOptions::default()).await;
    assert_eq!(second.exit_code(), 0, "{}", render_summary(&second));
    for t in ["feishu", "vzicloud"] {
        assert_eq!(
            target(&second, t).unchanged,
            2,
            "{}",
            render_summary(&second)
        );
    }
    assert_eq!(emu.stats().requests_of("feishu.face_upload"), uploads);
    assert_eq!(emu.stats().requests_of("vzicloud.face_update"), updates);
    for item in plan_items(&ws, "P001", &[]) {
        assert_eq!(item["action"], "unchanged", "{item}");
        assert!(item.get("picked").is_none(), "not decided again: {item}");
    }
    emu.shutdown().await;
}

/// With `pick = "best"` choosing per target, every photo a person is sent is checked for
/// being someone else's: here the one only VziCloud would get is P002's photo too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pick_best_checks_each_target_s_photo_for_another_person_s() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = two_profiles_picking_best(&emu, true);
    // P001's candidates, as in the test above: a softened copy of their own photo, which only
    // Feishu takes, and a larger framing, which only VziCloud takes; but that one is of P002's
    // face, and it is P002's photo too. P001's first target's photo is not.
    let photos = ws.path().join("photos");
    let theirs = image::open(photos.join("P002.jpg")).unwrap().to_rgb8();
    wide_frame(&theirs).save(photos.join("P001.jpg")).unwrap();
    std::fs::copy(photos.join("P001.jpg"), photos.join("P002.jpg")).unwrap();
    let p001 = plan_items(&ws, "P001", &[]);
    for (target, photo) in [("feishu", "P001 (2).jpg"), ("vzicloud", "P001.jpg")] {
        let item = p001.iter().find(|i| i["target"] == target).unwrap();
        assert_eq!(item["picked"]["chosen"], photo, "{item}");
    }

    let run = duplicates_refused_at_vzicloud(&ws, [("P001", "P002"), ("P002", "P001")]).await;
    assert_eq!(
        target(&run, "vzicloud").delivered,
        0,
        "{}",
        render_summary(&run)
    );
    assert!(emu.vzicloud_faces("staff", "P001").is_empty());
    assert!(emu.vzicloud_faces("staff", "P002").is_empty());
    assert!(emu.feishu_face("P001").is_none());
    emu.shutdown().await;
}

/// A photo only one target got is compared on the nights its person is not decided again
/// too: a new id that arrives with a copy of it is caught, and so is the person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pick_best_keeps_comparing_a_photo_only_one_target_got() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = two_profiles_picking_best(&emu, true);
    // P001's candidates: a softened copy of their photo (Feishu only) and a wide framing of a
    // face no one on the roster has (VziCloud only).
    let photos = ws.path().join("photos");
    let face = image::open(demo_photo("E1005.jpg")).unwrap().to_rgb8();
    wide_frame(&face).save(photos.join("P001.jpg")).unwrap();

    let first = ws.sync(SyncOptions::default()).await;
    assert_eq!(
        target(&first, "feishu").delivered,
        2,
        "{}",
        render_summary(&first)
    );
    assert_eq!(
        target(&first, "vzicloud").delivered,
        2,
        "{}",
        render_summary(&first)
    );
    assert_eq!(emu.vzicloud_faces("staff", "P001").len(), 1);

    // The next night P003 arrives with a copy of the photo only VziCloud got of P001's; P001's
    // set is unchanged, so P001 is not decided again.
    let roster = std::fs::read_to_string(ws.path().join("roster.csv")).unwrap();
    std::fs::write(
        ws.path().join("roster.csv"),
        format!("{roster}P003,Person 3\n"),
    )
    .unwrap();
    std::fs::copy(photos.join("P001.jpg"), photos.join("P003.jpg")).unwrap();
    let second = duplicates_refused_at_vzicloud(&ws, [("P003", "P001"), ("P001", "P003")]).await;
    assert_eq!(
        target(&second, "vzicloud").delivered,
        0,
        "{}",
        render_summary(&second)
    );
    assert!(emu.vzicloud_faces("staff", "P003").is_empty());
    emu.shutdown().await;
}
