//! Identities, pre-flight, verification and leavers end to end: the emulator over loopback, a
//! real SQLite file, real photos. Feishu ids looked up by e-mail or mobile; users outside every
//! access-control group held back without an upload; `verify` drift on both targets;
//! `sync --prune` removing leavers from VziCloud, and refusing a mass deletion.

mod common;

use common::{FACES, Settings, Workspace, demo_photo, emulator, target};
use facesync::cli::render_summary;
use facesync::deliver::SyncOptions;
use facesync::plan::PlanOptions;
use facesync::reason::ReasonCode;
use facesync::store::{AttemptOutcome, State};
use facesync::verify::{self, DriftKind};
use facesync_emulator::{DirectoryUser, Emulator, EmulatorConfig};

/// One roster row: an id, and optionally an e-mail, a mobile and a photo.
#[derive(Clone, Default)]
struct Row {
    id: String,
    email: String,
    mobile: String,
    photo: bool,
}

fn row(id: &str) -> Row {
    Row {
        id: id.into(),
        photo: true,
        ..Row::default()
    }
}

fn with_email(id: &str, email: &str) -> Row {
    Row {
        email: email.into(),
        ..row(id)
    }
}

/// `P001`..`Pn`, each with a photo.
fn people(n: usize) -> Vec<Row> {
    (1..=n).map(|i| row(&format!("P{i:03}"))).collect()
}

fn directory(entries: &[(&str, &str, &str, bool)]) -> Vec<DirectoryUser> {
    entries
        .iter()
        .map(|(user_id, email, mobile, resigned)| DirectoryUser {
            user_id: user_id.to_string(),
            email: (!email.is_empty()).then(|| email.to_string()),
            mobile: (!mobile.is_empty()).then(|| mobile.to_string()),
            resigned: *resigned,
        })
        .collect()
}

/// A roster with e-mail and mobile columns, its photos, and a config for both targets.
fn workspace(emulator: &Emulator, rows: &[Row]) -> Workspace {
    let ws = Workspace::empty();
    write_roster(&ws, rows);
    write_config(&ws, emulator, "", "");
    ws
}

/// Rewrites the roster; photos of people no longer in it stay in the folder (orphans).
fn write_roster(ws: &Workspace, rows: &[Row]) {
    let mut roster = String::from("employee_id,name,email,mobile\n");
    for (i, r) in rows.iter().enumerate() {
        roster.push_str(&format!(
            "{},Person {},{},{}\n",
            r.id, r.id, r.email, r.mobile
        ));
        let photo = ws.path().join(format!("photos/{}.jpg", r.id));
        if r.photo && !photo.exists() {
            std::fs::copy(demo_photo(FACES[i % FACES.len()]), photo).unwrap();
        }
    }
    std::fs::write(ws.path().join("roster.csv"), roster).unwrap();
}

/// The config, with extra keys for each target's section.
fn write_config(ws: &Workspace, emulator: &Emulator, feishu: &str, vzicloud: &str) {
    ws.write_config(
        emulator,
        &Settings {
            columns: "email = \"email\"\nmobile = \"mobile\"",
            max_retries: 3,
            feishu,
            vzicloud,
            extra: "",
        },
    );
}

fn only(target: &str) -> SyncOptions {
    SyncOptions {
        plan: PlanOptions {
            targets: vec![target.into()],
            ..PlanOptions::default()
        },
        ..SyncOptions::default()
    }
}

fn pruning(target: &str, force: bool) -> SyncOptions {
    SyncOptions {
        prune: true,
        prune_force: force,
        ..only(target)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---- ids looked up by e-mail or mobile ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roster_with_only_email_addresses_syncs_to_feishu() {
    let emu = emulator(EmulatorConfig {
        directory: directory(&[
            ("fs_001", "p001@example.com", "", false),
            ("fs_002", "p002@example.com", "", false),
            ("fs_003", "", "+8613800000003", false),
            ("fs_005", "left@example.com", "", true),
        ]),
        ..EmulatorConfig::default()
    })
    .await;
    let rows = vec![
        with_email("P001", "p001@example.com"),
        with_email("P002", " P002@Example.COM "),
        Row {
            mobile: "138-0000-0003".into(),
            ..row("P003")
        },
        with_email("P004", "nobody@example.com"),
        with_email("P005", "left@example.com"),
        row("P006"),
    ];
    let ws = workspace(&emu, &rows);
    let first = ws.sync(only("feishu")).await;
    let feishu = target(&first, "feishu");
    assert_eq!(feishu.delivered, 4, "{}", render_summary(&first));
    assert_eq!(feishu.invalid.get(&ReasonCode::ContactNotFound), Some(&1));
    assert_eq!(feishu.invalid.get(&ReasonCode::UserResigned), Some(&1));
    assert_eq!(first.exit_code(), 2);
    // The faces are held under the ids the directory gave, not the employee ids.
    for (uid, held) in [
        ("fs_001", true),
        ("fs_002", true),
        ("fs_003", true),
        ("P006", true),
        ("P001", false),
        ("fs_005", false),
    ] {
        assert_eq!(emu.feishu_face(uid).is_some(), held, "{uid}");
    }
    let stats = emu.stats();
    assert_eq!(stats.requests_of("feishu.batch_get_id"), 1);
    assert_eq!(stats.refusals.get("feishu.batch_get_id"), None);
    let states = ws.states("feishu").await;
    assert_eq!(
        states,
        [
            ("P001".into(), State::Delivered, None),
            ("P002".into(), State::Delivered, None),
            ("P003".into(), State::Delivered, None),
            (
                "P004".into(),
                State::Invalid,
                Some(ReasonCode::ContactNotFound)
            ),
            (
                "P005".into(),
                State::Invalid,
                Some(ReasonCode::UserResigned)
            ),
            ("P006".into(), State::Delivered, None),
        ]
    );
    let store = ws.store().await;
    let cached = store.identities("feishu").await.unwrap();
    store.close().await;
    assert_eq!(cached.len(), 5, "P006 has no contact to look up");
    assert_eq!(
        cached["email:p002@example.com"].user_id.as_deref(),
        Some("fs_002")
    );

    // The answers are cached: the next run asks nothing and sends nothing.
    let second = ws.sync(only("feishu")).await;
    assert_eq!(target(&second, "feishu").unchanged, 4);
    assert_eq!(target(&second, "feishu").requests, 0);
    assert_eq!(emu.stats().requests_of("feishu.batch_get_id"), 1);

    // An answer older than id_cache_days is asked again (0: on every run).
    write_config(&ws, &emu, "id_cache_days = 0", "");
    let third = ws.sync(only("feishu")).await;
    assert_eq!(
        target(&third, "feishu").unchanged,
        4,
        "{}",
        render_summary(&third)
    );
    assert_eq!(emu.stats().requests_of("feishu.batch_get_id"), 2);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_go_out_in_batches_of_fifty_of_each_kind() {
    let mut dir = Vec::new();
    let mut rows = Vec::new();
    for i in 1..=120 {
        let id = format!("P{i:03}");
        let (email, mobile) = if i <= 110 {
            (format!("{}@example.com", id.to_lowercase()), String::new())
        } else {
            (String::new(), format!("139{i:08}"))
        };
        dir.push(DirectoryUser {
            user_id: format!("fs_{i}"),
            email: (!email.is_empty()).then(|| email.clone()),
            mobile: (!mobile.is_empty()).then(|| mobile.clone()),
            resigned: false,
        });
        rows.push(Row {
            id,
            email,
            mobile,
            photo: false,
        });
    }
    let emu = emulator(EmulatorConfig {
        directory: dir,
        ..EmulatorConfig::default()
    })
    .await;
    let ws = workspace(&emu, &rows);
    let summary = ws.sync(only("feishu")).await;
    assert_eq!(
        target(&summary, "feishu").invalid.get(&ReasonCode::NoPhoto),
        Some(&120)
    );
    // 110 e-mails and 10 mobiles: (50 + 10), 50, 10. The strict emulator refused none.
    let stats = emu.stats();
    assert_eq!(stats.requests_of("feishu.batch_get_id"), 3);
    assert_eq!(stats.refusals.get("feishu.batch_get_id"), None);
    let store = ws.store().await;
    let cached = store.identities("feishu").await.unwrap();
    store.close().await;
    assert_eq!(cached.len(), 120);
    assert!(cached.values().all(|r| r.user_id.is_some()));
    emu.shutdown().await;
}

// ---- pre-flight ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_outside_every_access_group_costs_no_upload() {
    let emu = emulator(EmulatorConfig {
        users: Some(vec!["P001".into(), "P002".into()]),
        ..EmulatorConfig::default()
    })
    .await;
    let ws = workspace(&emu, &people(3));
    let first = ws.sync(only("feishu")).await;
    let feishu = target(&first, "feishu");
    assert_eq!(feishu.delivered, 2, "{}", render_summary(&first));
    assert_eq!(
        feishu.failed_permanent.get(&ReasonCode::NotInAccessGroup),
        Some(&1)
    );
    assert_eq!(first.exit_code(), 2);
    let stats = emu.stats();
    assert_eq!(stats.requests_of("feishu.face_upload"), 2);
    assert_eq!(stats.refusals_of("feishu.face_upload", 1490101), 0);
    assert_eq!(
        stats.requests_of("feishu.user_get"),
        1,
        "P003 is checked once"
    );
    let states = ws.states("feishu").await;
    assert_eq!(
        states[2],
        (
            "P003".into(),
            State::FailedPermanent,
            Some(ReasonCode::NotInAccessGroup)
        )
    );
    let store = ws.store().await;
    assert!(store.attempts("P003", "feishu").await.unwrap().is_empty());
    store.close().await;

    // The next run holds P003 back without checking again.
    let second = ws.sync(only("feishu")).await;
    assert_eq!(
        target(&second, "feishu")
            .failed_permanent
            .get(&ReasonCode::NotInAccessGroup),
        Some(&1)
    );
    let stats = emu.stats();
    assert_eq!(stats.requests_of("feishu.face_upload"), 2);
    assert_eq!(stats.requests_of("feishu.user_get"), 1);

    // A face removed on the Feishu side is sent again.
    assert!(emu.remove_feishu_face("P001"));
    let third = ws.sync(only("feishu")).await;
    assert_eq!(
        target(&third, "feishu").delivered,
        1,
        "{}",
        render_summary(&third)
    );
    assert_eq!(target(&third, "feishu").unchanged, 1);
    assert!(emu.feishu_face("P001").is_some());
    assert_eq!(emu.stats().requests_of("feishu.face_upload"), 3);
    emu.shutdown().await;
}

// ---- verify ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reads_every_page_of_a_long_list_once() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(&emu, &people(1));
    // 250 users: three pages of VziCloud's list, the last two read concurrently.
    let strays: Vec<String> = (0..250).map(|i| format!("X{i:03}")).collect();
    for id in &strays {
        emu.add_vzicloud_user("staff", id);
    }
    let report = verify::verify(&ws.config(), &["vzicloud".into()], std::future::pending())
        .await
        .unwrap();
    let check = &report.targets[0];
    assert_eq!((check.listed, check.with_face), (250, 250), "{check:?}");
    let drift: Vec<(DriftKind, &str)> = check
        .drift
        .iter()
        .map(|d| (d.kind, d.user_id.as_str()))
        .collect();
    let want: Vec<(DriftKind, &str)> = strays
        .iter()
        .map(|id| (DriftKind::NotInRoster, id.as_str()))
        .collect();
    assert_eq!(drift, want);
    assert_eq!(emu.stats().requests_of("vzicloud.user_list"), 3);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_shows_drift_on_both_targets() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(&emu, &people(4));
    let synced = ws.sync(SyncOptions::default()).await;
    assert_eq!(synced.exit_code(), 0, "{}", render_summary(&synced));
    let clean = verify::verify(&ws.config(), &[], std::future::pending())
        .await
        .unwrap();
    assert_eq!(clean.exit_code(), 0, "{clean:?}");
    assert_eq!(clean.targets.len(), 2);
    assert!(
        clean
            .targets
            .iter()
            .all(|t| t.listed == 4 && t.with_face == 4)
    );

    // Faces gone at both targets, and P004 leaves the roster.
    assert!(emu.remove_feishu_face("P001"));
    assert!(emu.remove_vzicloud_user("staff", "P002"));
    write_roster(&ws, &people(3));
    let report = verify::verify(&ws.config(), &[], std::future::pending())
        .await
        .unwrap();
    assert_eq!(report.exit_code(), 2);
    let drift = |name: &str| -> Vec<(DriftKind, String, Option<String>)> {
        report
            .targets
            .iter()
            .find(|t| t.target == name)
            .unwrap()
            .drift
            .iter()
            .map(|d| (d.kind, d.user_id.clone(), d.person_id.clone()))
            .collect()
    };
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        drift("feishu"),
        [
            (DriftKind::MissingRemotely, "P001".into(), some("P001")),
            (DriftKind::NotInRoster, "P004".into(), some("P004")),
        ]
    );
    assert_eq!(
        drift("vzicloud"),
        [
            (DriftKind::MissingRemotely, "P002".into(), some("P002")),
            (DriftKind::NotInRoster, "P004".into(), some("P004")),
        ]
    );

    // The command line: the missing faces are now pending, the leaver is still there.
    let out = ws.facesync(&["verify", "-c", "config.toml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for t in json["targets"].as_array().unwrap() {
        let kinds: Vec<&str> = t["drift"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["not_in_roster"], "{t}");
    }
    let table = ws.facesync(&["verify", "-c", "config.toml"]);
    assert_eq!(table.status.code(), Some(2));
    assert!(
        text(&table.stdout).contains("not_in_roster"),
        "{}",
        text(&table.stdout)
    );

    // The next sync sends the missing faces again, to both targets.
    let resync = ws.sync(SyncOptions::default()).await;
    assert_eq!(
        target(&resync, "feishu").delivered,
        1,
        "{}",
        render_summary(&resync)
    );
    assert_eq!(target(&resync, "vzicloud").delivered, 1);
    assert!(emu.feishu_face("P001").is_some());
    assert!(emu.vzicloud_users("staff").contains(&"P002".to_string()));

    // A target that cannot be read makes verify exit 1.
    let config = std::fs::read_to_string(ws.config_path()).unwrap();
    let secret = emu.config().vzicloud_accesskey_secret.expose().to_string();
    std::fs::write(
        ws.config_path(),
        config.replacen(&secret, "wrong-secret", 1),
    )
    .unwrap();
    let broken = verify::verify(&ws.config(), &["vzicloud".into()], std::future::pending())
        .await
        .unwrap();
    assert_eq!(broken.exit_code(), 1, "{broken:?}");
    emu.shutdown().await;
}

// ---- leavers ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_roster_warns_loudly_and_prunes_nobody_even_with_force() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(&emu, &people(5));
    ws.sync(only("vzicloud")).await;
    assert_eq!(emu.vzicloud_users("staff").len(), 5);
    // A truncated export: the header and nothing else.
    write_roster(&ws, &[]);

    let plan = ws.facesync(&["plan", "-c", "config.toml"]);
    let stderr = text(&plan.stderr);
    assert_eq!(plan.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("has a header but no people") && stderr.contains("truncated"),
        "{stderr}"
    );

    let out = ws.facesync(&[
        "sync",
        "-c",
        "config.toml",
        "--target",
        "vzicloud",
        "--prune",
        "--force",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stderr.contains("has a header but no people"), "{stderr}");
    assert!(
        stdout.contains("WARNING: the roster") && stdout.contains("PRUNE REFUSED"),
        "{stdout}"
    );
    assert!(stdout.contains("even with --force"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "prune refused: {stdout}");
    assert_eq!(emu.vzicloud_users("staff").len(), 5, "nobody was removed");
    assert_eq!(emu.stats().requests_of("vzicloud.user_delete"), 0);

    // Without --prune the empty roster is a warning, not a failure.
    let out = ws.facesync(&["sync", "-c", "config.toml", "--target", "vzicloud"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("WARNING: the roster"));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_leavers_from_vzicloud_and_refuses_a_mass_deletion() {
    let emu = emulator(EmulatorConfig::default()).await;
    let everyone = people(20);
    let ws = workspace(&emu, &everyone);
    ws.sync(only("vzicloud")).await;
    assert_eq!(emu.vzicloud_users("staff").len(), 20);
    let uploads = emu.stats().requests_of("vzicloud.face_update");

    // One of twenty leaves: 5%, within the default share.
    write_roster(&ws, &everyone[..19]);
    let pruned = ws.sync(pruning("vzicloud", false)).await;
    let vzi = target(&pruned, "vzicloud");
    assert_eq!(vzi.removed, 1, "{}", render_summary(&pruned));
    assert_eq!(pruned.exit_code(), 0, "{}", render_summary(&pruned));
    assert!(render_summary(&pruned).contains("removed 1 user(s)"));
    assert!(!emu.vzicloud_users("staff").contains(&"P020".to_string()));
    assert_eq!(emu.stats().requests_of("vzicloud.face_update"), uploads);
    assert_eq!(
        ws.states("vzicloud").await[19],
        ("P020".into(), State::Removed, Some(ReasonCode::LeftRoster))
    );
    let store = ws.store().await;
    let attempts = store.attempts("P020", "vzicloud").await.unwrap();
    assert_eq!(attempts.last().unwrap().outcome, AttemptOutcome::Removed);
    let report = facesync::report::rows(&store).await.unwrap();
    store.close().await;
    let p020 = report
        .iter()
        .find(|r| r.id == "P020" && r.target == "vzicloud")
        .unwrap();
    assert_eq!(
        (p020.state.as_str(), p020.reason_code.as_deref()),
        ("removed", Some("left_roster"))
    );

    // Two of nineteen: more than 5%. Refused, nothing deleted, exit 1 (also from the CLI).
    write_roster(&ws, &everyone[..17]);
    let refused = ws.sync(pruning("vzicloud", false)).await;
    let vzi = target(&refused, "vzicloud");
    assert_eq!(vzi.removed, 0);
    assert!(vzi.prune_refused.as_deref().unwrap().contains("--force"));
    assert_eq!(refused.exit_code(), 1);
    assert!(render_summary(&refused).contains("PRUNE REFUSED"));
    let out = ws.facesync(&[
        "sync",
        "-c",
        "config.toml",
        "--target",
        "vzicloud",
        "--prune",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("PRUNE REFUSED"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(emu.vzicloud_users("staff").len(), 19);

    // A share set higher lets it through; so does --force.
    write_config(&ws, &emu, "", "prune_max_share = 0.2");
    let allowed = ws.sync(pruning("vzicloud", false)).await;
    assert_eq!(
        target(&allowed, "vzicloud").removed,
        2,
        "{}",
        render_summary(&allowed)
    );
    write_config(&ws, &emu, "", "");
    write_roster(&ws, &everyone[..10]);
    let forced = ws.sync(pruning("vzicloud", true)).await;
    assert_eq!(
        target(&forced, "vzicloud").removed,
        7,
        "{}",
        render_summary(&forced)
    );
    assert_eq!(forced.exit_code(), 0);
    assert_eq!(emu.vzicloud_users("staff").len(), 10);
    assert_eq!(
        emu.stats().requests_of("vzicloud.face_update"),
        uploads,
        "pruning uploads nothing"
    );

    // A leaver who comes back is sent again.
    write_roster(&ws, &everyone[..11]);
    let back = ws.sync(only("vzicloud")).await;
    assert_eq!(
        target(&back, "vzicloud").delivered,
        1,
        "{}",
        render_summary(&back)
    );
    assert!(emu.vzicloud_users("staff").contains(&"P011".to_string()));
    emu.shutdown().await;
}

// ---- the emulator's batch_get_id ----

#[tokio::test]
async fn batch_get_id_is_strict_and_answers_each_contact() {
    let emu = emulator(EmulatorConfig {
        directory: directory(&[
            ("E1", "a@example.com", "13800000001", false),
            ("E2", "gone@example.com", "", true),
        ]),
        ..EmulatorConfig::default()
    })
    .await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = emu.base_url();
    let token: serde_json::Value = client
        .post(format!(
            "{base}/open-apis/auth/v3/tenant_access_token/internal"
        ))
        .json(&serde_json::json!({
            "app_id": emu.config().feishu_app_id,
            "app_secret": emu.config().feishu_app_secret.expose(),
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["tenant_access_token"].as_str().unwrap().to_string();
    let call = |query: &str, body: String, auth: bool| {
        let mut request = client
            .post(format!(
                "{base}/open-apis/contact/v3/users/batch_get_id{query}"
            ))
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body);
        if auth {
            request = request.bearer_auth(&token);
        }
        async move {
            let answer: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            answer
        }
    };
    let fifty_one: Vec<String> = (0..51).map(|i| format!("u{i}@x")).collect();
    let refusals = [
        (
            "",
            r#"{"emails":["a@example.com"]}"#.to_string(),
            false,
            99991661,
        ),
        (
            "?user_id_type=email",
            r#"{"emails":["a@x"]}"#.into(),
            true,
            99992402,
        ),
        ("", "emails=a@x".into(), true, 99992402),
        ("", "{}".into(), true, 99992402),
        ("", r#"{"emails":[],"mobiles":[]}"#.into(), true, 99992402),
        ("", r#"{"emails":"a@x"}"#.into(), true, 99992402),
        ("", r#"{"mobiles":[138]}"#.into(), true, 99992402),
        (
            "",
            serde_json::json!({ "emails": fifty_one }).to_string(),
            true,
            99992402,
        ),
        (
            "",
            r#"{"emails":["a@x"],"include_resigned":"yes"}"#.into(),
            true,
            99992402,
        ),
    ];
    for (query, body, auth, code) in refusals {
        let answer = call(query, body.clone(), auth).await;
        assert_eq!(answer["code"], code, "{query} {body}: {answer}");
    }

    let answer = call(
        "?user_id_type=open_id",
        r#"{"emails":["A@example.com","gone@example.com","x@example.com"],"mobiles":["+8613800000001"]}"#
            .into(),
        true,
    )
    .await;
    assert_eq!(answer["code"], 0, "{answer}");
    let list = answer["data"]["user_list"].as_array().unwrap();
    let ids: Vec<Option<&str>> = list.iter().map(|e| e["user_id"].as_str()).collect();
    let open_id = facesync_emulator::feishu_user_id_as("E1", facesync_emulator::UserIdType::OpenId);
    assert_eq!(
        ids,
        [Some(open_id.as_str()), None, None, Some(open_id.as_str())]
    );
    assert_eq!(list[0]["email"], "A@example.com");
    assert_eq!(list[3]["mobile"], "+8613800000001");

    // A resigned user is shown only when asked for, with the status saying so.
    let resigned = call(
        "?user_id_type=user_id",
        r#"{"emails":["gone@example.com"],"include_resigned":true}"#.into(),
        true,
    )
    .await;
    let entry = &resigned["data"]["user_list"][0];
    assert_eq!(entry["user_id"], "E2", "{resigned}");
    assert_eq!(entry["status"]["is_resigned"], true);
    emu.shutdown().await;
}

#[test]
fn verify_and_prune_have_help_with_an_example() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_facesync"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        text(&out.stdout)
    };
    let verify = run(&["verify", "--help"]);
    assert!(
        verify.contains("Example") && verify.contains("facesync verify -c"),
        "{verify}"
    );
    assert!(verify.contains("missing_remotely") && verify.contains("not_in_roster"));
    let sync = run(&["sync", "--help"]);
    assert!(
        sync.contains("--prune") && sync.contains("prune_max_share"),
        "{sync}"
    );
}
