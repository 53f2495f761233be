//! The command line end to end: the real binary, spawned, on real files in a temp dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn facesync(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_facesync"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A working folder with the demo roster and photos and a plan-only config.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("demo/roster.csv"),
        dir.path().join("roster.csv"),
    )
    .unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    for entry in std::fs::read_dir(fixtures().join("demo/photos")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), photos.join(entry.file_name())).unwrap();
    }
    std::fs::write(
        dir.path().join("config.toml"),
        r#"
[roster]
path = "roster.csv"
[photos]
dir = "photos"
[state]
database = "state/facesync.db"
[targets.feishu]
app_id = "cli_test"
app_secret_env = "FACESYNC_TEST_UNSET"
[targets.vzicloud]
app_id = 2
group_id = "staff"
accesskey_id = "k"
accesskey_secret_env = "FACESYNC_TEST_UNSET"
"#,
    )
    .unwrap();
    dir
}

#[test]
fn init_writes_the_example_config_and_refuses_to_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = facesync(&["init", "conf"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(dir.path().join("conf/config.toml")).unwrap();
    assert_eq!(
        written,
        std::fs::read_to_string(fixtures().join("../config.example.toml")).unwrap()
    );
    let again = facesync(&["init", "conf"], dir.path());
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("--force"));
    assert!(
        facesync(&["init", "conf", "--force"], dir.path())
            .status
            .success()
    );
}

#[test]
fn plan_json_has_a_line_per_person_and_target_and_exits_2_on_invalid() {
    let dir = workspace();
    let out = facesync(
        &["plan", "-c", "config.toml", "--format", "json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |id: &str, target: &str| {
        lines
            .iter()
            .find(|l| l["id"] == id && l["target"] == target)
            .unwrap_or_else(|| panic!("no line for {id} {target}"))
            .clone()
    };
    for key in [
        "id",
        "name",
        "target",
        "action",
        "reason_code",
        "reason",
        "photo",
    ] {
        assert!(lines[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(find("E1001", "feishu")["action"], "upload");
    assert_eq!(find("E1001", "feishu")["name"], "张伟");
    assert_eq!(find("E1012", "vzicloud")["reason_code"], "no_photo");
    assert_eq!(find("E1013", "feishu")["reason_code"], "duplicate_id");
    assert_eq!(find("E-1016", "vzicloud")["reason_code"], "bad_target_id");
    assert_eq!(find("E-1016", "feishu")["action"], "upload");
    assert_eq!(find("E1011", "feishu")["photo"], "e1011.jpg");
    // e1011.jpg is a cat: the photo pipeline finds no face, for both targets.
    assert_eq!(find("E1011", "feishu")["reason_code"], "no_face");
    assert_eq!(find("E1011", "vzicloud")["reason_code"], "no_face");
    assert_eq!(find("E1014", "vzicloud")["action"], "upload"); // the PNG
    assert!(lines.iter().any(|l| l["orphan_photo"] == "E9999.jpg"));
    // 17 roster rows x 2 targets, plus one orphan line.
    assert_eq!(lines.len(), 17 * 2 + 1);
}

#[test]
fn plan_table_then_status_reads_the_recorded_findings() {
    let dir = workspace();
    let out = facesync(&["plan", "-c", "config.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("no_photo") && stdout.contains("E9999.jpg"),
        "{stdout}"
    );
    let status = facesync(
        &["status", "-c", "config.toml", "--format", "json"],
        dir.path(),
    );
    assert!(status.status.success(), "{}", text(&status.stderr));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let count = |target: &str, state: &str| {
        json["counts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["target"] == target && c["state"] == state)
            .map_or(0, |c| c["count"].as_i64().unwrap())
    };
    // no_photo, duplicate_id, no_face (the cat), bad_target_id
    assert_eq!(count("vzicloud", "invalid"), 4, "{json}");
    assert_eq!(count("feishu", "invalid"), 3); // no_photo, duplicate_id, no_face
    assert_eq!(json["runs"][0]["kind"], "plan");
    assert_eq!(json["runs"][0]["exit_code"], 2);
    let table = facesync(&["status", "-c", "config.toml"], dir.path());
    assert!(text(&table.stdout).contains("INVALID"));
}

#[test]
fn plan_preview_writes_what_each_target_would_receive() {
    let dir = workspace();
    let out = facesync(
        &["plan", "-c", "config.toml", "--preview", "preview"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let preview = dir.path().join("preview");
    let listed = |target: &str| {
        let mut names: Vec<String> = std::fs::read_dir(preview.join(target))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    // Everyone with an upload: not the cat, the missing photo or the duplicate id.
    let feishu = listed("feishu");
    assert_eq!(feishu.len(), 13, "{feishu:?}");
    assert!(
        feishu.contains(&"E1014.jpg".to_string()),
        "the PNG is sent as JPEG"
    );
    assert!(!feishu.iter().any(|n| n.starts_with("E1011")));
    let vzicloud = listed("vzicloud");
    assert_eq!(vzicloud.len(), 12, "{vzicloud:?}"); // and not E-1016
    for name in &vzicloud {
        let img = image::open(preview.join("vzicloud").join(name)).unwrap();
        assert!(img.width() <= 1920 && img.height() <= 1080, "{name}");
    }
}

#[test]
fn a_bad_config_exits_1_naming_the_key() {
    let dir = workspace();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[roster]\npath = \"roster.csv\"\nencodng = \"gbk\"\n",
    )
    .unwrap();
    let out = facesync(&["plan", "-c", "bad.toml"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("encodng") && err.contains("bad.toml"), "{err}");
}

#[test]
fn an_unreadable_roster_exits_1_and_the_run_is_recorded_as_failed() {
    let dir = workspace();
    std::fs::write(dir.path().join("roster.csv"), "staff,name\n1,A\n").unwrap();
    let out = facesync(&["plan", "-c", "config.toml"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("`staff`, `name`"),
        "{}",
        text(&out.stderr)
    );
    let status = facesync(
        &["status", "-c", "config.toml", "--format", "json"],
        dir.path(),
    );
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["runs"][0]["status"], "failed");
}

#[test]
fn a_gbk_roster_from_excel_plans_with_its_chinese_names() {
    let dir = workspace();
    std::fs::copy(
        fixtures().join("rosters/roster-gbk.csv"),
        dir.path().join("roster.csv"),
    )
    .unwrap();
    let out = facesync(
        &["plan", "-c", "config.toml", "--format", "json"],
        dir.path(),
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("\"name\":\"欧阳娜娜\""), "{stdout}");
    assert!(stdout.contains("\"name\":\"张伟\""), "{stdout}");
}

#[test]
fn every_command_has_help_with_an_example() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        "demo", "init", "plan", "sync", "report", "fetch", "status", "verify", "emulate",
    ] {
        let out = facesync(&[cmd, "--help"], dir.path());
        assert!(out.status.success());
        assert!(
            text(&out.stdout).contains("Example"),
            "{cmd} --help has no example"
        );
    }
}

#[test]
fn demo_prints_a_plan_of_the_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let out = facesync(&["demo"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("feishu") && stdout.contains("vzicloud"),
        "{stdout}"
    );
    assert!(stdout.contains("duplicate_id"), "{stdout}");
}
