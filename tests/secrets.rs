//! No secret reaches a log, a report or the database: a sync with known secrets, debug logging
//! to stderr and a JSON log file, then every output is searched for them.

use std::path::{Path, PathBuf};
use std::process::Command;

use facesync_emulator::{Emulator, EmulatorConfig, Secret};

const FEISHU_SECRET: &str = "feishu-secret-Zq81xWv3";
const VZICLOUD_SECRET: &str = "vzicloud-secret-Hm27pLq9";

fn facesync(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_facesync"));
    cmd.args(args).current_dir(cwd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

fn demo_photos() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/photos")
}

/// Asks the emulator for the tenant token with the same credentials: it hands back the one
/// the run used (a token is reissued only in its last 30 minutes).
async fn current_token(emu: &Emulator) -> String {
    let resp: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/open-apis/auth/v3/tenant_access_token/internal",
            emu.base_url()
        ))
        .json(&serde_json::json!({"app_id": "cli_secret_test", "app_secret": FEISHU_SECRET}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    resp["tenant_access_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_tokens_and_signatures_appear_in_no_output() {
    let emu = Emulator::start(
        EmulatorConfig {
            feishu_app_id: "cli_secret_test".into(),
            feishu_app_secret: Secret::new(FEISHU_SECRET),
            vzicloud_accesskey_secret: Secret::new(VZICLOUD_SECRET),
            absent_users: vec!["E1002".into()],
            error_rate: 0.2,
            seed: 3,
            ..EmulatorConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    for name in ["E1001.jpg", "E1002.jpg", "E1003.jpg", "e1011.jpg"] {
        std::fs::copy(
            demo_photos().join(name),
            photos.join(name.to_uppercase().replace(".JPG", ".jpg")),
        )
        .unwrap();
    }
    std::fs::write(
        dir.path().join("roster.csv"),
        "employee_id,name\nE1001,A\nE1002,B\nE1003,C\nE1011,D\n",
    )
    .unwrap();
    // One secret inline (the file is private), one from the environment.
    let config = format!(
        r#"[roster]
path = "roster.csv"
[photos]
dir = "photos"
[state]
database = "facesync.db"
[targets.feishu]
base_url = "{url}"
app_id = "cli_secret_test"
app_secret = "{FEISHU_SECRET}"
[targets.vzicloud]
base_url = "{url}"
app_id = 2
group_id = "staff"
accesskey_id = "{key}"
accesskey_secret_env = "FACESYNC_TEST_VZI_SECRET"
"#,
        url = emu.base_url(),
        key = emu.config().vzicloud_accesskey_id,
    );
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let env = [
        ("FACESYNC_TEST_VZI_SECRET", VZICLOUD_SECRET),
        ("RUST_LOG", "debug"),
    ];

    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    for args in [
        &[
            "--json-log",
            "--log-file",
            "run.log",
            "sync",
            "-c",
            "config.toml",
        ][..],
        &[
            "--log-file",
            "run.log",
            "sync",
            "-c",
            "config.toml",
            "--only-failed",
        ][..],
        &[
            "report",
            "-c",
            "config.toml",
            "--format",
            "json",
            "-o",
            "report.json",
        ][..],
        &[
            "report",
            "-c",
            "config.toml",
            "--format",
            "csv",
            "-o",
            "report.csv",
        ][..],
        &[
            "report",
            "-c",
            "config.toml",
            "--format",
            "html",
            "-o",
            "report.html",
        ][..],
        &["status", "-c", "config.toml", "--format", "json"][..],
        &["fetch", "-c", "config.toml", "--out", "faces"][..],
    ] {
        let out = facesync(args, dir.path(), &env);
        assert_ne!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push((format!("{args:?} stdout"), out.stdout));
        outputs.push((format!("{args:?} stderr"), out.stderr));
    }
    for file in [
        "run.log",
        "report.json",
        "report.csv",
        "report.html",
        "facesync.db",
        "facesync.db-wal",
    ] {
        if let Ok(bytes) = std::fs::read(dir.path().join(file)) {
            outputs.push((file.to_string(), bytes));
        }
    }
    assert!(
        outputs
            .iter()
            .any(|(name, bytes)| name == "run.log" && !bytes.is_empty())
    );

    let token = current_token(&emu).await;
    let needles = [FEISHU_SECRET, VZICLOUD_SECRET, token.as_str(), "signature="];
    for (name, bytes) in &outputs {
        let text = String::from_utf8_lossy(bytes);
        for needle in needles {
            assert!(!text.contains(needle), "`{needle}` found in {name}");
        }
    }
    emu.shutdown().await;
}
