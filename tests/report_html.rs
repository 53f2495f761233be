//! The HTML report in a real headless browser: after two syncs with trouble, the page renders,
//! its script runs (the filter counts the rows it shows), the trend chart is parsed as SVG with a
//! bar per run, target and count, and a screenshot is taken. Needs Debian's
//! chromium (`.ci/test` installs it): without it the test fails, unless the developer opted out
//! with `FACESYNC_SKIP_TOOLS=chromium` (never in CI), which compiles it as ignored.

use std::path::{Path, PathBuf};
use std::process::Command;

use facesync_emulator::{Emulator, EmulatorConfig};

fn chromium() -> Option<PathBuf> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

fn headless(browser: &Path, profile: &Path, extra: &[&str], page: &Path) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(skip_chromium, ignore = "FACESYNC_SKIP_TOOLS names chromium")]
async fn the_html_report_renders_and_filters_in_a_real_browser() {
    let browser = chromium().expect(
        "this test needs chromium: `apt-get install chromium` (or `bash .ci/test`), \
         or skip it with FACESYNC_SKIP_TOOLS=chromium cargo test",
    );
    let emu = Emulator::start(
        EmulatorConfig {
            absent_users: vec!["E1002".into()],
            ..EmulatorConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/photos");
    std::fs::create_dir(dir.path().join("photos")).unwrap();
    for (from, to) in [
        ("E1001.jpg", "E1001.jpg"),
        ("E1003.jpg", "E1002.jpg"),
        ("e1011.jpg", "E1003.jpg"),
    ] {
        std::fs::copy(fixtures.join(from), dir.path().join("photos").join(to)).unwrap();
    }
    std::fs::write(
        dir.path().join("roster.csv"),
        "employee_id,name\nE1001,张伟\nE1002,Alice Martin\nE1003,王芳\nE1004,No Photo\n",
    )
    .unwrap();
    let e = emu.config();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[roster]\npath = \"roster.csv\"\n[targets.feishu]\nbase_url = \"{}\"\napp_id = \"{}\"\napp_secret = \"{}\"\n",
            emu.base_url(),
            e.feishu_app_id,
            e.feishu_app_secret.expose()
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_facesync");
    for _ in 0..2 {
        let sync = Command::new(bin)
            .args(["-q", "sync", "-c", "config.toml"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(
            sync.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&sync.stderr)
        );
    }
    let report = Command::new(bin)
        .args([
            "report",
            "-c",
            "config.toml",
            "--format",
            "html",
            "-o",
            "report.html",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(report.status.success());
    let page = dir.path().join("report.html");

    let profile = tempfile::tempdir().unwrap();
    let dom = headless(&browser, profile.path(), &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&dom.stdout);
    // The script ran: by default it shows the three people who need attention.
    assert!(
        dom.contains("3 shown"),
        "the filter script did not run: {dom}"
    );
    assert!(dom.contains("王芳"), "{dom}");
    assert!(
        dom.contains("need nothing") && dom.contains("--format csv"),
        "the page says where everyone else is: {dom}"
    );
    assert!(dom.contains("retake the photo facing the camera"));
    assert!(dom.contains("data:image/jpeg;base64,"));
    // The trend: parsed as inline SVG, each bar an element of its own (none swallowed its
    // neighbours), two runs of the one target's four counts and two durations.
    assert!(dom.contains("<svg class=\"trend\""), "no chart: {dom}");
    assert_eq!(
        dom.matches("<rect class=\"bar\"").count(),
        2 * 4 + 2,
        "{dom}"
    );
    assert!(!dom.contains("</title><rect"), "bars nested in bars: {dom}");
    assert!(dom.contains("The last 2 sync runs"));
    // The second run found E1003 (no face) and E1004 (no photo) invalid again: its bar holds
    // the count.
    assert!(
        dom.contains("data-metric=\"invalid\" data-run=\"2\" data-value=\"2\""),
        "{dom}"
    );

    let shot = std::env::var_os("FACESYNC_REPORT_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("report.png"));
    let out = headless(
        &browser,
        profile.path(),
        &[
            "--window-size=1400,900",
            &format!("--screenshot={}", shot.display()),
        ],
        &page,
    );
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "the screenshot is empty"
    );
    emu.shutdown().await;
}
