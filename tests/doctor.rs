//! `facesync doctor` against the emulator over loopback, each failure injected: through the
//! library (every check's status) and through the binary (the table, the JSON shape, the exit
//! codes).

mod common;

use std::sync::Arc;

use common::{Settings, Workspace, demo_photo, emulator};
use facesync::doctor::{self, Check, Report, Status};
use facesync_emulator::{Emulator, EmulatorConfig};

const COLUMNS: &str = "id = \"employee_id\"\nname = \"name\"";

/// Three people with photos, both clouds at `emu`; `max_retries` 0 so a closed port fails at
/// once.
fn workspace(emu: &Emulator, feishu: &str, vzicloud: &str) -> Workspace {
    let ws = Workspace::empty();
    ws.add_people(["E1", "E2", "E3"].map(String::from));
    ws.write_config(
        emu,
        &Settings {
            columns: COLUMNS,
            max_retries: 0,
            feishu,
            vzicloud,
            extra: "",
        },
    );
    private(&ws);
    ws
}

/// The config holds secrets: readable by its owner only, or that is a warning.
fn private(ws: &Workspace) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(ws.config_path(), std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The emulator with the `staff` group, so a healthy setup is all ok.
fn healthy() -> EmulatorConfig {
    EmulatorConfig {
        vzicloud_groups: vec!["staff".into()],
        ..EmulatorConfig::default()
    }
}

async fn checks(ws: &Workspace, targets: &[&str]) -> Report {
    let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    doctor::run(&ws.config_path(), &targets).await
}

/// The check named `check` (of `target`, if given).
fn find<'a>(report: &'a Report, target: Option<&str>, check: &str) -> &'a Check {
    report
        .checks
        .iter()
        .find(|c| c.check == check && c.target.as_deref() == target)
        .unwrap_or_else(|| panic!("no check {check} of {target:?} in {:#?}", report.checks))
}

fn status(report: &Report, target: Option<&str>, check: &str) -> Status {
    find(report, target, check).status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_setup_is_all_ok_and_nothing_changes() {
    let emu = emulator(healthy()).await;
    let ws = workspace(&emu, "", "");
    let report = checks(&ws, &[]).await;
    assert!(
        report.checks.iter().all(|c| c.status == Status::Ok),
        "{:#?}",
        report.checks
    );
    for (target, check) in [
        ("feishu", "reachable"),
        ("feishu", "credentials"),
        ("feishu", "scope_acs_users"),
        ("vzicloud", "reachable"),
        ("vzicloud", "clock"),
        ("vzicloud", "credentials"),
        ("vzicloud", "app"),
        ("vzicloud", "group"),
    ] {
        find(&report, Some(target), check);
    }
    for check in ["config", "roster", "photos", "state_db", "run_lock"] {
        find(&report, None, check);
    }
    assert_eq!(report.outcome().exit_code(), 0);
    // Nothing uploaded, created, or written: no face, no state DB, no lock file.
    let stats = emu.stats();
    assert!(emu.feishu_face("E1").is_none());
    assert!(emu.vzicloud_users("staff").is_empty());
    assert_eq!(emu.vzicloud_groups(), ["staff"]);
    assert!(!ws.path().join("facesync.db").exists(), "{stats:?}");
    assert!(!ws.path().join("facesync.db.lock").exists());
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_the_credentials_check() {
    let emu = emulator(healthy()).await;
    let ws = workspace(&emu, "", "");
    let text = std::fs::read_to_string(ws.config_path()).unwrap();
    let text = text
        .replace(emu.config().feishu_app_secret.expose(), "wrong-secret")
        .replace(
            emu.config().vzicloud_accesskey_secret.expose(),
            "wrong-secret",
        );
    std::fs::write(ws.config_path(), text).unwrap();
    let report = checks(&ws, &[]).await;
    for target in ["feishu", "vzicloud"] {
        assert_eq!(status(&report, Some(target), "reachable"), Status::Ok);
        let c = find(&report, Some(target), "credentials");
        assert_eq!(c.status, Status::Failed, "{c:?}");
        assert!(!c.advice.is_empty());
    }
    assert!(
        find(&report, Some("feishu"), "credentials")
            .detail
            .contains("app_id")
    );
    assert_eq!(report.outcome().exit_code(), 1);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_unreachable_with_the_layer_named() {
    let emu = emulator(healthy()).await;
    let ws = workspace(&emu, "", "");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let text = std::fs::read_to_string(ws.config_path())
        .unwrap()
        .replace(&emu.base_url(), &format!("http://{closed}"));
    std::fs::write(ws.config_path(), text).unwrap();
    let report = checks(&ws, &["vzicloud"]).await;
    let c = find(&report, Some("vzicloud"), "reachable");
    assert_eq!(c.status, Status::Failed);
    assert!(
        c.detail.contains("refused the connection (TCP") && c.detail.contains("[targets.vzicloud]"),
        "{}",
        c.detail
    );
    assert!(
        report
            .checks
            .iter()
            .all(|c| c.target.as_deref() != Some("feishu")),
        "--target vzicloud checks only that one"
    );
    assert_eq!(report.outcome().exit_code(), 1);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_unreachable_with_ca_file_advice() {
    let emu = emulator(healthy()).await;
    let ws = workspace(&emu, "", "");
    let front = tls_front().await;
    let text = std::fs::read_to_string(ws.config_path()).unwrap();
    // Only Feishu's base_url goes to the TLS front.
    let text = text.replacen(&emu.base_url(), &front, 1);
    std::fs::write(ws.config_path(), text).unwrap();
    let report = checks(&ws, &["feishu"]).await;
    let c = find(&report, Some("feishu"), "reachable");
    assert_eq!(c.status, Status::Failed);
    assert!(
        c.detail.contains("not trusted") && c.detail.contains("ca_file"),
        "{}",
        c.detail
    );
    emu.shutdown().await;
}

/// A TLS server on loopback whose certificate (self-signed, made now) nobody trusts.
async fn tls_front() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            // The client hangs up during the handshake.
            tokio::spawn(async move { drop(acceptor.accept(stream).await) });
        }
    });
    format!("https://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_server_clock_fails_beyond_the_signature_window_and_warns_before() {
    for (offset, want) in [
        (300, Status::Failed),
        (-45, Status::Warning),
        (45, Status::Warning),
        (5, Status::Ok),
    ] {
        let emu = emulator(EmulatorConfig {
            clock_offset: offset,
            ..healthy()
        })
        .await;
        let ws = workspace(&emu, "", "");
        let report = checks(&ws, &["vzicloud"]).await;
        let c = find(&report, Some("vzicloud"), "clock");
        assert_eq!(c.status, want, "offset {offset}: {c:?}");
        if want == Status::Failed {
            assert!(c.detail.contains("ahead"), "{}", c.detail);
            assert!(c.advice.contains("NTP"));
        }
        emu.shutdown().await;
    }
}

/// A roster with one person known by e-mail only, so ids are looked up.
fn with_contacts(ws: &Workspace) {
    std::fs::write(
        ws.path().join("roster.csv"),
        "employee_id,name,email\nE1,Person 1,\nE2,Person 2,p2@example.com\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(ws.config_path())
        .unwrap()
        .replace(COLUMNS, &format!("{COLUMNS}\nemail = \"email\""));
    std::fs::write(ws.config_path(), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_scopes_fail_their_checks() {
    let emu = emulator(EmulatorConfig {
        feishu_missing_scopes: vec!["acs:users".into(), "contact:user.id:readonly".into()],
        ..healthy()
    })
    .await;
    let ws = workspace(&emu, "", "");
    with_contacts(&ws);
    let report = checks(&ws, &["feishu"]).await;
    assert_eq!(status(&report, Some("feishu"), "credentials"), Status::Ok);
    for check in ["scope_acs_users", "scope_contact_user_id"] {
        let c = find(&report, Some("feishu"), check);
        assert_eq!(c.status, Status::Failed, "{c:?}");
        assert!(c.detail.contains("99991672"), "{}", c.detail);
    }
    assert!(
        find(&report, Some("feishu"), "scope_acs_users")
            .advice
            .contains("acs:users")
    );
    emu.shutdown().await;

    // Granted, the lookup passes.
    let emu = emulator(healthy()).await;
    let ws = workspace(&emu, "", "");
    with_contacts(&ws);
    let report = checks(&ws, &["feishu"]).await;
    assert_eq!(
        status(&report, Some("feishu"), "scope_contact_user_id"),
        Status::Ok
    );
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_group_is_a_warning_and_is_not_created() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(&emu, "", "");
    let report = checks(&ws, &["vzicloud"]).await;
    let c = find(&report, Some("vzicloud"), "group");
    assert_eq!(c.status, Status::Warning, "{c:?}");
    assert!(c.advice.contains("creates it"));
    assert!(emu.vzicloud_groups().is_empty(), "doctor creates nothing");
    assert_eq!(report.outcome().exit_code(), 2);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_terminal_fails_the_room_check_and_its_clock_is_compared() {
    let emu = emulator(EmulatorConfig {
        clock_offset: 120,
        hikvision: facesync_emulator::HikvisionConfig {
            max_persons: 2,
            max_faces: 2,
            ..facesync_emulator::HikvisionConfig::default()
        },
        ..EmulatorConfig::default()
    })
    .await;
    let ws = Workspace::empty();
    ws.add_people(["P001", "P002", "P003"].map(String::from));
    let section = format!(
        "[targets.door1]\nkind = \"hikvision\"\nbase_url = \"{}\"\nusername = \"{}\"\n\
         password = \"{}\"\nmax_retries = 0\n",
        emu.hikvision_url("door1"),
        emu.config().hikvision.username,
        emu.config().hikvision.password.expose(),
    );
    std::fs::write(
        ws.config_path(),
        format!(
            "[roster]\npath = \"roster.csv\"\n[photos]\ndir = \"photos\"\n\
             duplicate_photos = \"off\"\n\
             [state]\ndatabase = \"facesync.db\"\n{section}"
        ),
    )
    .unwrap();
    private(&ws);
    let report = checks(&ws, &[]).await;
    assert_eq!(status(&report, Some("door1"), "credentials"), Status::Ok);
    let capacity = find(&report, Some("door1"), "capacity");
    assert!(
        capacity.detail.contains("0 of 2 persons"),
        "{}",
        capacity.detail
    );
    let room = find(&report, Some("door1"), "room");
    assert_eq!(room.status, Status::Failed, "{room:?}");
    assert!(room.detail.contains("of its 2 persons"), "{}", room.detail);
    let clock = find(&report, Some("door1"), "clock");
    assert_eq!(clock.status, Status::Warning, "{clock:?}");
    assert!(clock.detail.contains("ahead"), "{}", clock.detail);
    assert!(emu.hikvision_persons("door1").is_empty());
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_sync_is_a_warning() {
    let emu = emulator(healthy()).await;
    let ws = workspace(&emu, "", "");
    let lock = facesync::deliver::RunLock::take(&ws.path().join("facesync.db")).unwrap();
    let report = checks(&ws, &["vzicloud"]).await;
    let c = find(&report, None, "run_lock");
    assert_eq!(c.status, Status::Warning, "{c:?}");
    assert!(c.detail.contains("a sync is running now"));
    drop(lock);
    let report = checks(&ws, &["vzicloud"]).await;
    assert_eq!(status(&report, None, "run_lock"), Status::Ok);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_photo_folder_and_a_damaged_state_db_fail() {
    let emu = emulator(healthy()).await;
    let ws = workspace(&emu, "", "");
    // A file where the folder should be stops root too.
    std::fs::remove_dir_all(ws.path().join("photos")).unwrap();
    std::fs::write(ws.path().join("photos"), "not a folder").unwrap();
    std::fs::write(ws.path().join("facesync.db"), "not a database").unwrap();
    let report = checks(&ws, &["vzicloud"]).await;
    let photos = find(&report, None, "photos");
    assert_eq!(photos.status, Status::Failed, "{photos:?}");
    assert!(photos.advice.contains("photos.dir"));
    let db = find(&report, None, "state_db");
    assert_eq!(db.status, Status::Failed, "{db:?}");
    assert!(db.detail.contains("facesync.db"), "{}", db.detail);
    assert_eq!(report.outcome().exit_code(), 1);
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_without_photos_are_counted() {
    let emu = emulator(healthy()).await;
    let ws = workspace(&emu, "", "");
    std::fs::remove_file(ws.path().join("photos/E2.jpg")).unwrap();
    let report = checks(&ws, &["vzicloud"]).await;
    let c = find(&report, None, "roster");
    assert_eq!(c.status, Status::Warning);
    assert!(
        c.detail.contains("3 valid") && c.detail.contains("1 without a photo"),
        "{}",
        c.detail
    );
    emu.shutdown().await;
}

#[test]
fn the_binary_prints_a_table_or_json_and_exits_by_the_worst_check() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt.block_on(emulator(healthy()));
    let ws = workspace(&emu, "", "");
    let out = ws.facesync(&["doctor", "-c", "config.toml"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("STATUS") && stdout.contains("exit code 0"),
        "{stdout}"
    );

    let out = ws.facesync(&["doctor", "-c", "config.toml", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = json.as_array().unwrap();
    assert!(!checks.is_empty());
    for c in checks {
        let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        for key in ["check", "status", "detail", "advice"] {
            assert!(keys.contains(&key), "{c}");
        }
        assert!(["ok", "warning", "failed"].contains(&c["status"].as_str().unwrap()));
    }
    assert!(checks.iter().any(|c| c["target"] == "vzicloud"));
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "config" && c.get("target").is_none())
    );

    // A warning only: exit 2.
    std::fs::remove_file(ws.path().join("photos/E2.jpg")).unwrap();
    let out = ws.facesync(&["doctor", "-c", "config.toml"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::copy(demo_photo("E1002.jpg"), ws.path().join("photos/E2.jpg")).unwrap();

    // A config that does not load is a failed check, printed the same way.
    std::fs::write(ws.config_path(), "[roster\npath = 1").unwrap();
    let out = ws.facesync(&["doctor", "-c", "config.toml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["check"], "config");
    assert_eq!(json[0]["status"], "failed");
    let out = ws.facesync(&["doctor", "-c", "config.toml"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAILED") && stdout.contains("exit code 1"),
        "{stdout}"
    );
    rt.block_on(emu.shutdown());
}
