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
duplicate_photos = "off"
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
    // The quality gate's measures, per person and target: the eye distance at each target's
    // size (VziCloud's 1080-high box is smaller than Feishu's 1440 for a portrait).
    let (feishu, vzi) = (
        &find("E1001", "feishu")["quality"],
        &find("E1001", "vzicloud")["quality"],
    );
    for key in [
        "roll",
        "yaw",
        "pitch",
        "sharpness",
        "face_luma",
        "face_fill",
    ] {
        assert!(feishu[key].is_number(), "quality lacks {key}: {feishu}");
    }
    assert_eq!(feishu["failing"], serde_json::json!([]));
    let eyes = |q: &serde_json::Value| q["eye_distance"].as_f64().unwrap();
    assert!(
        eyes(feishu) >= eyes(vzi) && eyes(vzi) > 30.0,
        "{feishu} {vzi}"
    );
    // No face, nothing measured.
    assert!(find("E1011", "feishu")["quality"].is_null());
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
fn fetch_refuses_a_target_that_cannot_give_faces_back_before_asking_it() {
    let dir = workspace();
    std::fs::write(
        dir.path().join("vzi.toml"),
        "[roster]\npath = \"roster.csv\"\n[targets.vzicloud]\nbase_url = \"http://127.0.0.1:9\"\n\
         app_id = 2\ngroup_id = \"staff\"\naccesskey_id = \"k\"\naccesskey_secret = \"s\"\n",
    )
    .unwrap();
    for (target, said) in [
        ("vzicloud", "no face download API"),
        ("lobby", "no [targets.lobby] section"),
    ] {
        let out = facesync(
            &[
                "fetch", "-c", "vzi.toml", "--out", "faces", "--target", target,
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(1), "{target}");
        let err = text(&out.stderr);
        assert!(
            err.contains(said) && err.contains(target),
            "{target}: {err}"
        );
        assert!(
            !dir.path().join("faces").exists(),
            "{target}: nothing written"
        );
    }
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
        "demo",
        "init",
        "plan",
        "sync",
        "report",
        "fetch",
        "status",
        "verify",
        "emulate",
        "doctor",
        "completions",
        "man",
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

/// The state DB's error, said once: the path, what is wrong and what to do, and none of
/// sqlx's repetitions ("file is not a database: ... file is not a database").
fn assert_said_once(stderr: &str, path: &str, advice: &[&str]) {
    assert_eq!(
        stderr.matches("error:").count(),
        1,
        "one error line: {stderr}"
    );
    assert!(stderr.contains(path), "names {path}: {stderr}");
    for a in advice {
        assert!(stderr.contains(a), "says `{a}`: {stderr}");
    }
    assert!(
        !stderr.contains("error returned from database") && !stderr.contains("(code:"),
        "sqlx's wording is not repeated: {stderr}"
    );
}

#[test]
fn a_state_db_that_is_not_a_database_is_explained_once_with_the_fix() {
    let dir = workspace();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    std::fs::write(
        dir.path().join("state/facesync.db"),
        "id,name\nthis is a CSV someone saved over the state database\n".repeat(200),
    )
    .unwrap();
    for command in ["plan", "sync", "status"] {
        let out = facesync(&[command, "-c", "config.toml"], dir.path());
        assert_eq!(out.status.code(), Some(1), "{command}");
        let err = text(&out.stderr);
        assert_said_once(
            &err,
            "state/facesync.db",
            &["move it aside", "starts afresh", "sends everyone again"],
        );
        assert_eq!(
            err.matches("not a database").count(),
            1,
            "{command}: said once: {err}"
        );
    }
}

#[test]
fn a_state_db_folder_that_cannot_be_created_names_the_folder_and_the_fix() {
    // Tests run as root, who may write anywhere: a folder under a regular file cannot be
    // made even by root.
    let dir = workspace();
    std::fs::write(dir.path().join("blocker"), "a file, not a folder").unwrap();
    let config = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        config.replace("state/facesync.db", "blocker/facesync.db"),
    )
    .unwrap();
    for command in ["plan", "sync"] {
        let out = facesync(&[command, "-c", "config.toml"], dir.path());
        assert_eq!(out.status.code(), Some(1), "{command}");
        assert_said_once(
            &text(&out.stderr),
            "blocker/facesync.db",
            &[
                "cannot create or write",
                "fix its permissions",
                "state.database",
            ],
        );
    }
}

#[test]
fn log_lines_to_a_pipe_a_file_and_the_log_file_have_no_colour() {
    let dir = workspace();
    // A secret in a config others may read: every command warns, so there is a log line.
    let config = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        config.replacen(
            "app_secret_env = \"FACESYNC_TEST_UNSET\"",
            "app_secret = \"not-a-real-secret\"",
            1,
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            dir.path().join("config.toml"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let run = |stderr: std::process::Stdio| {
        Command::new(env!("CARGO_BIN_EXE_facesync"))
            .args(["--log-file", "facesync.log", "plan", "-c", "config.toml"])
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .status()
            .unwrap()
    };
    // stderr to a pipe (cron mail, a pipeline)
    let piped = Command::new(env!("CARGO_BIN_EXE_facesync"))
        .args(["plan", "-c", "config.toml"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let piped = text(&piped.stderr);
    // stderr to a file (`2> log`)
    let status = run(std::fs::File::create(dir.path().join("stderr.txt"))
        .unwrap()
        .into());
    assert_eq!(status.code(), Some(2), "the demo roster has invalid people");
    let redirected = std::fs::read_to_string(dir.path().join("stderr.txt")).unwrap();
    let log_file = std::fs::read_to_string(dir.path().join("facesync.log")).unwrap();
    for (what, out) in [
        ("pipe", &piped),
        ("2> file", &redirected),
        ("--log-file", &log_file),
    ] {
        assert!(
            out.contains("WARN") && out.contains("readable by other users"),
            "{what}: the config is warned about: {out}"
        );
        assert!(!out.contains('\u{1b}'), "{what}: no escape codes: {out:?}");
    }
}

/// The embedded thumbnail of `id` in an HTML report, decoded.
fn thumbnail_of(page: &str, id: &str) -> Option<image::RgbImage> {
    use base64::Engine as _;
    let alt = page.find(&format!("alt=\"photo of {id}\""))?;
    let prefix = "src=\"data:image/jpeg;base64,";
    let start = page[..alt].rfind(prefix)? + prefix.len();
    let end = start + page[start..].find('"')?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&page[start..end])
        .unwrap();
    Some(image::load_from_memory(&bytes).unwrap().to_rgb8())
}

/// Mean absolute difference per channel of two images of the same size.
fn mean_difference(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

#[test]
fn report_thumbnails_are_upright_and_none_is_made_over_the_pixel_limit() {
    let dir = workspace();
    let photos = dir.path().join("photos");
    std::fs::copy(
        fixtures().join("images/orient-6.jpg"),
        photos.join("R6.jpg"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("roster.csv"),
        "employee_id,name\nR6,Rotated Six\nE1001,Over The Limit\n",
    )
    .unwrap();
    // orient-6 is 300x240 (72,000 pixels); E1001.jpg is 480x600 (288,000): over the limit.
    let config = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        config.replace(
            "dir = \"photos\"",
            "dir = \"photos\"\nmax_pixels = 100000\nmin_short_side = 100",
        ),
    )
    .unwrap();
    let plan = facesync(&["plan", "-c", "config.toml"], dir.path());
    assert!(
        text(&plan.stdout).contains("image_too_large"),
        "{}",
        text(&plan.stdout)
    );
    let out = facesync(
        &[
            "report",
            "-c",
            "config.toml",
            "--format",
            "html",
            "-o",
            "report.html",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();

    let thumb = thumbnail_of(&page, "R6").expect("R6 has a thumbnail");
    assert_eq!(thumb.dimensions(), (128, 160), "upright: taller than wide");
    let upright = image::open(fixtures().join("images/orient-1.jpg"))
        .unwrap()
        .resize_exact(128, 160, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let sideways = image::open(fixtures().join("images/orient-6.jpg"))
        .unwrap()
        .resize_exact(128, 160, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let (good, bad) = (
        mean_difference(&thumb, &upright),
        mean_difference(&thumb, &sideways),
    );
    assert!(
        good < 8.0 && good * 3.0 < bad,
        "like the upright photo ({good:.1}), not the stored one ({bad:.1})"
    );

    assert!(
        thumbnail_of(&page, "E1001").is_none(),
        "no thumbnail over max_pixels"
    );
    assert!(page.contains("image_too_large") && page.contains("no preview"));
}

#[test]
fn completions_are_printed_for_every_shell_and_know_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let bash = facesync(&["completions", "bash"], dir.path());
    assert!(bash.status.success(), "{}", text(&bash.stderr));
    let script = text(&bash.stdout);
    assert!(script.contains("complete -F _facesync"), "{script}");
    for word in [
        "sync",
        "report",
        "status",
        "--max-duration",
        "--only-failed",
    ] {
        assert!(script.contains(word), "bash completion lacks {word}");
    }
    for (shell, mark) in [
        ("zsh", "#compdef facesync"),
        ("fish", "complete -c facesync"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = facesync(&["completions", shell], dir.path());
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains(mark), "{shell}: {script}");
        assert!(script.contains("sync"), "{shell} completion lacks sync");
    }
    let bad = facesync(&["completions", "tcsh"], dir.path());
    assert_eq!(bad.status.code(), Some(2), "clap refuses an unknown shell");
}

#[test]
fn the_man_page_is_roff_naming_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = facesync(&["man"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains(".TH FACESYNC 1"), "{page}");
    assert!(page.contains(".SH NAME") && page.contains(".SH SYNOPSIS"));
    for command in ["sync", "plan", "status", "completions"] {
        assert!(page.contains(command), "the man page lacks {command}");
    }
}
