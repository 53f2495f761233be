//! `facesync emulate` (the binary, with the demo credentials or a config's) and the official
//! Feishu Python SDK against the emulator. The emulator's own tests are in emulator/tests/.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use facesync::targets::vzicloud::sign;
use facesync_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("demo/photos").join(name)).unwrap()
}

fn client() -> reqwest::Client {
    // No idle pool, no proxy: loopback only.
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
        .unwrap()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An answer's status and vendor code (Feishu's `code`, VziCloud's `error_code`; 0 for a
/// success), and its body for messages.
struct Answer {
    status: u16,
    code: i64,
    body: String,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let code = json["code"]
            .as_i64()
            .or(json["error_code"].as_i64())
            .unwrap_or(0);
        Answer { status, code, body }
    }
}

#[track_caller]
fn expect(answer: &Answer, status: u16, code: i64, case: &str) {
    assert_eq!(
        (answer.status, answer.code),
        (status, code),
        "{case}: {}",
        answer.body
    );
}

// ---- the official Python SDK ----

/// Needs python3 with lark-oapi (`.ci/test` installs it): without them the test fails, unless the
/// developer opted out with `FACESYNC_SKIP_TOOLS=lark-oapi` (never in CI).
#[tokio::test]
#[cfg_attr(skip_lark_oapi, ignore = "FACESYNC_SKIP_TOOLS names lark-oapi")]
async fn the_official_python_sdk_works_against_the_emulator() {
    const HOW: &str = "`python3 -m pip install lark-oapi` (or `bash .ci/test`), \
                       or skip it with FACESYNC_SKIP_TOOLS=lark-oapi cargo test";
    if let Err(e) = Command::new("python3").arg("--version").output() {
        panic!("this test needs python3 ({e}) with the official Feishu SDK: {HOW}");
    }
    let emulator = Emulator::start(
        EmulatorConfig {
            users: Some(vec!["E1001".to_string(), "E1002".to_string()]),
            ..EmulatorConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/feishu_sdk.py");
    let photo_path = fixtures().join("demo/photos/E1001.jpg");
    let base = emulator.base_url();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(base)
            .args(["cli_demo", "demo-feishu-secret"])
            .arg(photo_path)
            .args(["E1001", "E1015"])
            // Loopback never goes through a proxy a CI machine may name.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_ne!(
        output.status.code(),
        Some(3),
        "this test needs the official Feishu SDK: {HOW}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let steps: std::collections::HashMap<String, Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["step"].as_str().unwrap().to_string(), v)
        })
        .collect();
    assert_eq!(steps["upload"]["code"], 0, "{stderr}");
    assert_eq!(steps["download"]["code"], 0);
    assert_eq!(steps["download"]["same_bytes"], true);
    assert_eq!(steps["download"]["file_name"], "E1001.jpg");
    assert_eq!(steps["download_cropped"]["jpeg"], true);
    assert_eq!(
        steps["list"]["users"],
        json!({"E1001": true, "E1002": false})
    );
    assert_eq!(steps["upload_unknown"]["code"], 1490101);
    let stats = emulator.stats();
    assert_eq!(
        stats.tokens_issued, 1,
        "the SDK fetched one token and reused it"
    );
    assert_eq!(emulator.feishu_face("E1001"), Some(photo("E1001.jpg")));
}

// ---- facesync emulate ----

/// A spawned `facesync emulate`, killed when dropped.
struct Server {
    child: Child,
    lines: Vec<String>,
}

impl Server {
    /// Spawns it and reads its banner, up to the Ctrl-C line.
    fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_facesync"))
            .arg("emulate")
            .args(args)
            .envs(envs.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let done = line.contains("Ctrl-C");
            lines.push(line);
            if done {
                break;
            }
        }
        Server { child, lines }
    }

    fn url(&self) -> String {
        let first = self.lines.first().expect("a banner");
        first.split_whitespace().last().unwrap().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn emulate_help_documents_every_knob() {
    let out = Command::new(env!("CARGO_BIN_EXE_facesync"))
        .args(["emulate", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let (options, examples) = help.split_once("Examples:").expect("an Examples section");
    let knobs = [
        "--listen",
        "--config",
        "--users ",
        "--users-file",
        "--users-roster",
        "--users-column",
        "--absent-users",
        "--groups",
        "--token-lifetime",
        "--token-refresh-window",
        "--feishu-rate-limit",
        "--vzicloud-qps",
        "--rate-window",
        "--latency",
        "--error-rate",
        "--drop-rate",
        "--quota",
        "--seed",
        "--no-face-check",
        "--clock-offset",
        "--feishu-missing-scopes",
        "--hikvision-terminals",
        "--hikvision-password",
        "--hikvision-busy-time",
        "--hikvision-late-write",
        "--hikvision-capacity",
        "--hikvision-nonce-lifetime",
    ];
    for knob in knobs {
        assert!(options.contains(knob), "no option {knob}");
        assert!(examples.contains(knob), "no example of {knob}");
    }
    for mentioned in ["/__emulator/stats", "99991400", "1016", "1017"] {
        assert!(help.contains(mentioned), "no mention of {mentioned}");
    }
}

#[tokio::test]
async fn emulate_without_a_config_accepts_the_demo_credentials() {
    let server = tokio::task::spawn_blocking(|| {
        Server::spawn(&["--listen", "127.0.0.1:0", "--users", "E1001"], &[])
    })
    .await
    .unwrap();
    let banner = server.lines.concat();
    assert!(
        banner.contains("demo-feishu-secret") && banner.contains("demo-vzicloud-secret"),
        "{banner}"
    );
    let url = server.url();
    let token = Answer::of(
        client()
            .post(format!(
                "{url}/open-apis/auth/v3/tenant_access_token/internal"
            ))
            .json(&json!({"app_id": "cli_demo", "app_secret": "demo-feishu-secret"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    expect(&token, 200, 0, "the demo credentials");
    let stats: Value = client()
        .get(format!("{url}/__emulator/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["tokens_issued"], 1);
}

#[tokio::test]
async fn emulate_serves_the_hikvision_terminals_it_names() {
    let server = tokio::task::spawn_blocking(|| {
        Server::spawn(
            &[
                "--listen",
                "127.0.0.1:0",
                "--hikvision-terminals",
                "lobby,gate",
                "--hikvision-password",
                "s3cret-pass",
            ],
            &[],
        )
    })
    .await
    .unwrap();
    let banner = server.lines.concat();
    let url = server.url();
    for terminal in ["lobby", "gate"] {
        let line = format!("base_url = \"{url}/hikvision/{terminal}\"  username = \"admin\"");
        assert!(banner.contains(&line), "{line}: {banner}");
    }
    assert!(!banner.contains("s3cret-pass"), "{banner}");
    let challenge = client()
        .get(format!("{url}/hikvision/lobby/ISAPI/System/deviceInfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(challenge.status(), 401);
    let value = challenge.headers()["www-authenticate"].to_str().unwrap();
    assert!(value.contains("realm=\"DS-K1T341AM(lobby)\""), "{value}");
    let unknown = client()
        .get(format!("{url}/hikvision/door1/ISAPI/System/deviceInfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn emulate_with_a_config_accepts_exactly_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roster.csv"), "employee_id\nE1001\n").unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        r#"
[roster]
path = "roster.csv"
[targets.feishu]
app_id = "cli_real"
app_secret_env = "FACESYNC_EMULATE_TEST_FEISHU"
[targets.vzicloud]
app_id = 7
group_id = "staff"
accesskey_id = "real_key"
accesskey_secret_env = "FACESYNC_EMULATE_TEST_VZICLOUD"
"#,
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let server = tokio::task::spawn_blocking(move || {
        Server::spawn(
            &["--listen", "127.0.0.1:0", "--config", &config_arg],
            &[
                ("FACESYNC_EMULATE_TEST_FEISHU", "real-feishu-secret"),
                ("FACESYNC_EMULATE_TEST_VZICLOUD", "real-vzicloud-secret"),
            ],
        )
    })
    .await
    .unwrap();
    let banner = server.lines.concat();
    assert!(
        !banner.contains("real-feishu-secret") && !banner.contains("real-vzicloud-secret"),
        "{banner}"
    );
    let url = server.url();
    let token = |app_id: &str, secret: &str| {
        let request = client()
            .post(format!(
                "{url}/open-apis/auth/v3/tenant_access_token/internal"
            ))
            .json(&json!({"app_id": app_id, "app_secret": secret}));
        async move { Answer::of(request.send().await.unwrap()).await }
    };
    expect(
        &token("cli_real", "real-feishu-secret").await,
        200,
        0,
        "the config's app",
    );
    expect(
        &token("cli_demo", "demo-feishu-secret").await,
        200,
        10014,
        "the demo app",
    );

    let groups = |key: &str, secret: &str, app: u64| {
        let path = format!("/v2/frs/user/apps/{app}/groups");
        let body = br#"{"group_id":"staff"}"#.to_vec();
        let query = sign::Signing {
            accesskey_id: key,
            secret,
            expires: unix_now() + 60,
        }
        .query("POST", &path, &[], &body);
        let request = client()
            .post(format!("{url}{path}?{query}"))
            .header("content-type", "application/json")
            .body(body);
        async move { Answer::of(request.send().await.unwrap()).await }
    };
    expect(
        &groups("real_key", "real-vzicloud-secret", 7).await,
        200,
        0,
        "the config's key",
    );
    expect(
        &groups("demo_key", "demo-vzicloud-secret", 7).await,
        401,
        1005,
        "the demo key",
    );
    expect(
        &groups("real_key", "real-vzicloud-secret", 2).await,
        404,
        3101,
        "the demo app id",
    );
}

#[tokio::test]
async fn emulate_with_a_config_serves_one_terminal_per_hikvision_target() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roster.csv"), "employee_id\nE1001\n").unwrap();
    let section = |name: &str, password_env: &str| {
        format!(
            "[targets.{name}]\nkind = \"hikvision\"\nbase_url = \"http://10.0.0.21\"\n\
             username = \"installer\"\npassword_env = \"{password_env}\"\n"
        )
    };
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[roster]\npath = \"roster.csv\"\n{}{}",
            section("lobby", "FACESYNC_EMULATE_TEST_HIK"),
            section("gate2", "FACESYNC_EMULATE_TEST_HIK")
        ),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let server = tokio::task::spawn_blocking(move || {
        Server::spawn(
            &["--listen", "127.0.0.1:0", "--config", &config_arg],
            &[("FACESYNC_EMULATE_TEST_HIK", "real-terminal-password")],
        )
    })
    .await
    .unwrap();
    let banner = server.lines.concat();
    assert!(!banner.contains("real-terminal-password"), "{banner}");
    assert!(!banner.contains("/hikvision/door1"), "{banner}");
    let url = server.url();
    for name in ["lobby", "gate2"] {
        assert!(
            banner.contains(&format!("{url}/hikvision/{name}")),
            "{banner}"
        );
        // The product's own client logs in with the config's account (written in a copy).
        let copy = std::fs::read_to_string(&config)
            .unwrap()
            .replace("http://10.0.0.21", &format!("{url}/hikvision/{name}"))
            .replace(
                "password_env = \"FACESYNC_EMULATE_TEST_HIK\"",
                "password = \"real-terminal-password\"",
            );
        let copied = dir.path().join(format!("{name}.toml"));
        std::fs::write(&copied, copy).unwrap();
        let loaded = facesync::config::Config::load(&copied).unwrap();
        let target = facesync::targets::build(&loaded, name).unwrap();
        target
            .prepare()
            .await
            .unwrap_or_else(|f| panic!("{name}: {f}"));
    }
    drop(server);

    // Two terminals with different accounts cannot be emulated by one.
    let mixed = dir.path().join("mixed.toml");
    std::fs::write(
        &mixed,
        std::fs::read_to_string(&config).unwrap().replacen(
            "password_env = \"FACESYNC_EMULATE_TEST_HIK\"",
            "password = \"another\"",
            1,
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_facesync"))
        .args(["emulate", "--listen", "127.0.0.1:0", "--config"])
        .arg(&mixed)
        .env("FACESYNC_EMULATE_TEST_HIK", "real-terminal-password")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("targets.gate2 and targets.lobby log in with different accounts")
            || stderr.contains("targets.lobby and targets.gate2 log in with different accounts"),
        "{stderr}"
    );
}
