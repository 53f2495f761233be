//! Delivery benchmarks against the in-process emulator on loopback: `cargo bench --bench sync`.
//!
//! 1. Throughput: 200 small photos to both targets, no limits anywhere.
//! 2. Rate limit: the emulator limits Feishu uploads to R per second; the achieved rate and the
//!    share of 429 answers.
//! 3. Nightly: 10,000 people synced once, then again with nothing changed (the real binary,
//!    spawned, so its peak memory is its own): the time of the unchanged run and the peak RSS
//!    of both runs.
//!
//! 4. Fetch: every face downloaded back from the emulator's Feishu by the real binary, for two
//!    roster sizes: the peak RSS must not grow with the number of people (`-- --fetch` runs
//!    only this one).
//!
//! 5. Scale (`-- --scale [N]`, default 100,000, run only when asked): N people with small
//!    photos, two VziCloud targets. The real binary does the first sync (time, peak RSS), then,
//!    with nothing changed: `sync` of one target and of both, `plan`, `report --format html`
//!    (with a few hundred people made to need attention), `status` and `verify`, each with its
//!    time and peak RSS. `FACESYNC_BENCH_SCALE_DIR=PATH` keeps the generated folder and the
//!    state DB there and reuses them on the next run (the first sync is then skipped): for
//!    profiling one command again and again.
//!
//! Data is generated into a temp dir (under target/ by default), never committed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use facesync::cli::render_summary;
use facesync::config::Config;
use facesync::deliver::{self, SyncOptions};
use facesync_emulator::{Emulator, EmulatorConfig};

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        println!(
            "facesync sync benchmarks ({} cores)\n",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        let args: Vec<String> = std::env::args().collect();
        if args.iter().any(|a| a == "--fetch") {
            fetch(&[1_000, 5_000]).await;
            return;
        }
        if let Some(i) = args.iter().position(|a| a == "--scale") {
            let n = args
                .get(i + 1)
                .and_then(|n| n.replace(['_', ','], "").parse().ok())
                .unwrap_or(100_000);
            scale(n).await;
            return;
        }
        throughput().await;
        rate_limited(20).await;
        if std::env::args().any(|a| a == "--quick") {
            return;
        }
        nightly(10_000).await;
        fetch(&[1_000, 5_000]).await;
    });
}

fn work_dir() -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&base).expect("bench data dir");
    tempfile::tempdir_in(base).expect("temp dir")
}

/// `n` distinct small JPEGs (240x320, a gradient and the index in the pixels).
fn make_photos(dir: &Path, n: usize) {
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let mut roster = String::from("employee_id,name\n");
    for i in 0..n {
        let id = format!("P{i:06}");
        roster.push_str(&format!("{id},Person {i}\n"));
        let img = image::RgbImage::from_fn(240, 320, |x, y| {
            image::Rgb([
                (x as usize + i) as u8,
                (y as usize * 3 + i / 256) as u8,
                (i % 251) as u8,
            ])
        });
        img.save(photos.join(format!("{id}.jpg"))).unwrap();
    }
    std::fs::write(dir.join("roster.csv"), roster).unwrap();
}

fn write_config(dir: &Path, emu: &Emulator, feishu_rate: f64, burst: u32, vzicloud: bool) {
    let e = emu.config();
    let url = emu.base_url();
    let text = format!(
        r#"[roster]
path = "roster.csv"
[photos]
dir = "photos"
face_check = false
duplicate_photos = "off"
[state]
database = "facesync.db"
[targets.feishu]
base_url = "{url}"
app_id = "{}"
app_secret = "{}"
rate_per_second = {feishu_rate}
burst = {burst}
concurrency = 8
max_retries = 8
[targets.vzicloud]
enabled = {vzicloud}
base_url = "{url}"
app_id = {}
group_id = "staff"
accesskey_id = "{}"
accesskey_secret = "{}"
rate_per_second = 10000
concurrency = 8
"#,
        e.feishu_app_id,
        e.feishu_app_secret.expose(),
        e.vzicloud_app_id,
        e.vzicloud_accesskey_id,
        e.vzicloud_accesskey_secret.expose(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

async fn emulator(config: EmulatorConfig) -> Emulator {
    Emulator::start(
        EmulatorConfig {
            face_check: false,
            ..config
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

async fn sync(dir: &Path) -> deliver::Summary {
    sync_with(dir, SyncOptions::default()).await
}

async fn sync_with(dir: &Path, options: SyncOptions) -> deliver::Summary {
    let config = Config::load(&dir.join("config.toml")).unwrap();
    deliver::run(&config, &options, std::future::pending())
        .await
        .unwrap()
}

/// Records when the first and the last upload finished: the steady-state rate between them
/// leaves out the start of the run (roster, plan, token, the first photos).
#[derive(Default, Clone)]
struct UploadClock(std::sync::Arc<std::sync::Mutex<Uploads>>);

/// When the first and the last upload finished, and how many did.
type Uploads = (Option<Instant>, Option<Instant>, usize);

impl facesync::progress::Progress for UploadClock {
    fn upload_done(&self, _target: &str) {
        let mut t = self.0.lock().unwrap();
        let now = Instant::now();
        t.0.get_or_insert(now);
        t.1 = Some(now);
        t.2 += 1;
    }
}

async fn throughput() {
    let dir = work_dir();
    make_photos(dir.path(), 200);
    let emu = emulator(EmulatorConfig::default()).await;
    write_config(dir.path(), &emu, 10_000.0, 10_000, true);
    let started = Instant::now();
    let summary = sync(dir.path()).await;
    let elapsed = started.elapsed();
    let delivered: usize = summary.targets.iter().map(|t| t.delivered).sum();
    assert_eq!(delivered, 400, "{}", render_summary(&summary));
    println!(
        "throughput: 200 people x 2 targets = {delivered} uploads in {:.2} s: {:.0} uploads/s",
        elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64()
    );
    emu.shutdown().await;
}

async fn rate_limited(rate: u32) {
    let dir = work_dir();
    // Long enough that the start (plan, token, the first photos) is a small part of it.
    let n = rate as usize * 30;
    make_photos(dir.path(), n);
    // The access-control group holds exactly the roster's people, as a real tenant's would.
    let emu = emulator(EmulatorConfig {
        feishu_rate_limit: Some(rate),
        users: Some((0..n).map(|i| format!("P{i:06}")).collect()),
        ..EmulatorConfig::default()
    })
    .await;
    write_config(dir.path(), &emu, f64::from(rate), 1, false);
    let clock = UploadClock::default();
    let options = SyncOptions {
        progress: facesync::progress::Handle::new(clock.clone()),
        ..SyncOptions::default()
    };
    let started = Instant::now();
    let summary = sync_with(dir.path(), options).await;
    let elapsed = started.elapsed();
    let (first, last, done) = *clock.0.lock().unwrap();
    let steady = (done - 1) as f64 / (last.unwrap() - first.unwrap()).as_secs_f64();
    let feishu = summary
        .targets
        .iter()
        .find(|t| t.target == "feishu")
        .unwrap();
    assert_eq!(feishu.delivered, n, "{}", render_summary(&summary));
    let stats = emu.stats();
    let uploads = stats.requests_of("feishu.face_upload");
    let throttled = stats.refusals_of("feishu.face_upload", 99991400);
    println!(
        "rate limit: emulator at R = {rate}/s, client rate_per_second = {rate}, burst = 1: {n} uploads in {:.2} s = {:.2}/s ({:.1}% of R) for the whole command; steady state (first to last upload) {steady:.2}/s ({:.1}% of R); {throttled} of {uploads} requests answered 429 ({:.2}%)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        100.0 * n as f64 / elapsed.as_secs_f64() / f64::from(rate),
        100.0 * steady / f64::from(rate),
        100.0 * throttled as f64 / uploads as f64
    );
    emu.shutdown().await;
}

/// Runs the real binary and returns its wall time and peak RSS (KiB). The peak is the
/// kernel's high-water mark (VmHWM), read from /proc while the process runs: it only grows, so
/// the last reading before exit is the peak.
fn run_binary(dir: &Path) -> (Duration, u64) {
    run_command(dir, &["sync"])
}

/// Runs `facesync --quiet <args> -c <dir>/config.toml`; wall time and peak RSS (KiB).
fn run_command(dir: &Path, args: &[&str]) -> (Duration, u64) {
    run_command_with(dir, args, &[])
}

/// The environment the shipped systemd unit gives the binary (its `Environment=` lines).
fn unit_environment() -> Vec<(String, String)> {
    let unit = include_str!("../dist/facesync.service");
    unit.lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn run_command_with(dir: &Path, args: &[&str], env: &[(String, String)]) -> (Duration, u64) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_facesync"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("--quiet")
        .args(args)
        .arg("-c")
        .arg(dir.join("config.toml"))
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the binary runs");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if let Ok(text) = std::fs::read_to_string(&status_path)
            && let Some(kib) = text
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    // 2: people need attention, which the scale bench makes on purpose.
    assert!(
        matches!(status.code(), Some(0 | 2)),
        "{args:?} failed: {status}"
    );
    (elapsed, peak_kib)
}

async fn nightly(n: usize) {
    let dir = work_dir();
    let started = Instant::now();
    make_photos(dir.path(), n);
    println!(
        "nightly: generated {n} photos in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let emu = emulator(EmulatorConfig::default()).await;
    write_config(dir.path(), &emu, 10_000.0, 10_000, true);
    let dir_path = dir.path().to_path_buf();
    let (first, first_rss) = tokio::task::spawn_blocking({
        let d = dir_path.clone();
        move || run_binary(&d)
    })
    .await
    .unwrap();
    println!(
        "nightly: first sync of {n} people to both targets: {:.1} s ({:.0} uploads/s), peak RSS {} MiB",
        first.as_secs_f64(),
        (2 * n) as f64 / first.as_secs_f64(),
        first_rss / 1024
    );
    let uploads_before = emu.stats().requests_of("feishu.face_upload");
    let (second, rss) = tokio::task::spawn_blocking(move || run_binary(&dir_path))
        .await
        .unwrap();
    assert_eq!(
        emu.stats().requests_of("feishu.face_upload"),
        uploads_before,
        "nothing should be sent"
    );
    println!(
        "nightly: unchanged re-run over {n} people: {:.2} s, peak RSS {} MiB",
        second.as_secs_f64(),
        rss / 1024
    );
    emu.shutdown().await;
}

/// Fetches every face back for each roster size: the photos are uploaded first (in-process),
/// then the real binary downloads them all.
async fn fetch(sizes: &[usize]) {
    for &n in sizes {
        let dir = work_dir();
        make_photos(dir.path(), n);
        let emu = emulator(EmulatorConfig::default()).await;
        write_config(dir.path(), &emu, 10_000.0, 10_000, false);
        let uploaded = sync(dir.path()).await;
        assert_eq!(
            uploaded.targets[0].delivered,
            n,
            "{}",
            render_summary(&uploaded)
        );
        let held: usize = (0..n)
            .filter_map(|i| emu.feishu_face(&format!("P{i:06}")))
            .map(|f| f.len())
            .sum();
        let d = dir.path().to_path_buf();
        let (elapsed, rss) =
            tokio::task::spawn_blocking(move || run_command(&d, &["fetch", "--out", "faces"]))
                .await
                .unwrap();
        let files = std::fs::read_dir(dir.path().join("faces")).unwrap().count();
        assert_eq!(files, n, "every face fetched");
        println!(
            "fetch: {n} people ({:.1} MiB of faces): {:.1} s ({:.0} faces/s), peak RSS {} MiB",
            held as f64 / 1_048_576.0,
            elapsed.as_secs_f64(),
            n as f64 / elapsed.as_secs_f64(),
            rss / 1024
        );
        emu.shutdown().await;
    }
}

/// N people with distinct small photos (240x320 JPEGs), made on every core.
fn make_photos_parallel(dir: &Path, n: usize) {
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let threads = std::thread::available_parallelism().map_or(1, |c| c.get());
    std::thread::scope(|scope| {
        for t in 0..threads {
            let photos = &photos;
            scope.spawn(move || {
                for i in (t..n).step_by(threads) {
                    let img = image::RgbImage::from_fn(240, 320, |x, y| {
                        image::Rgb([
                            (x as usize + i) as u8,
                            (y as usize * 3 + i / 256) as u8,
                            (i % 251) as u8,
                        ])
                    });
                    img.save(photos.join(format!("P{i:06}.jpg"))).unwrap();
                }
            });
        }
    });
    let mut roster = String::from("employee_id,name\n");
    for i in 0..n {
        roster.push_str(&format!("P{i:06},Person {i}\n"));
    }
    std::fs::write(dir.join("roster.csv"), roster).unwrap();
}

/// Two VziCloud targets (`staff`, `staff2`) at the emulator, no limits; `only`: the targets
/// enabled.
fn write_scale_config(dir: &Path, emu: &Emulator, only: &[&str]) {
    let e = emu.config();
    let url = emu.base_url();
    let mut text = String::from(
        "[roster]\npath = \"roster.csv\"\n[photos]\ndir = \"photos\"\nface_check = false\n\
         duplicate_photos = \"off\"\n\
         [state]\ndatabase = \"facesync.db\"\n[report]\nhtml = \"facesync-report.html\"\n",
    );
    for name in ["staff", "staff2"] {
        text.push_str(&format!(
            "[targets.{name}]\nkind = \"vzicloud\"\nenabled = {enabled}\nbase_url = \"{url}\"\n\
             app_id = {app}\ngroup_id = \"{name}\"\naccesskey_id = \"{key}\"\n\
             accesskey_secret = \"{secret}\"\nrate_per_second = 10000\nconcurrency = 8\n",
            enabled = only.contains(&name),
            app = e.vzicloud_app_id,
            key = e.vzicloud_accesskey_id,
            secret = e.vzicloud_accesskey_secret.expose(),
        ));
    }
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn report_line(what: &str, (elapsed, rss): (Duration, u64)) {
    println!(
        "scale: {what}: {:.2} s, peak RSS {} MiB",
        elapsed.as_secs_f64(),
        rss / 1024
    );
}

async fn scale(n: usize) {
    let kept = std::env::var_os("FACESYNC_BENCH_SCALE_DIR").map(PathBuf::from);
    let temp;
    let dir = match &kept {
        Some(path) => {
            std::fs::create_dir_all(path).unwrap();
            path.clone()
        }
        None => {
            temp = work_dir();
            temp.path().to_path_buf()
        }
    };
    let fresh = !dir.join("facesync.db").exists();
    let emu = emulator(EmulatorConfig::default()).await;
    // As the shipped systemd unit runs it (its environment: glibc's trim threshold).
    let env = unit_environment();
    println!("scale: commands run with the unit's environment {env:?}");
    let run = |args: &'static [&'static str]| {
        let d = dir.clone();
        let env = env.clone();
        tokio::task::spawn_blocking(move || run_command_with(&d, args, &env))
    };
    if fresh {
        let started = Instant::now();
        make_photos_parallel(&dir, n);
        println!(
            "scale: generated {n} photos in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        write_scale_config(&dir, &emu, &["staff", "staff2"]);
        let first = run(&["sync"]).await.unwrap();
        report_line(
            &format!(
                "first sync of {n} people to two targets ({} uploads)",
                2 * n
            ),
            first,
        );
        // A few hundred people need attention: their photos are damaged now.
        for i in (0..n).step_by((n / 300).max(1)) {
            std::fs::write(dir.join(format!("photos/P{i:06}.jpg")), b"not a photo").unwrap();
        }
    } else {
        println!("scale: reusing {} (no first sync)", dir.display());
    }
    write_scale_config(&dir, &emu, &["staff"]);
    report_line(
        &format!("unchanged sync, {n} people, one target"),
        run(&["sync"]).await.unwrap(),
    );
    write_scale_config(&dir, &emu, &["staff", "staff2"]);
    report_line(
        &format!("unchanged sync, {n} people, two targets"),
        run(&["sync"]).await.unwrap(),
    );
    report_line(
        &format!("plan, {n} people, two targets"),
        run(&["plan"]).await.unwrap(),
    );
    report_line(
        &format!("status, {n} people"),
        run(&["status"]).await.unwrap(),
    );
    let html = dir.join("bench-report.html");
    report_line(
        &format!("report --format html, {n} people"),
        run(&["report", "--format", "html", "-o", "bench-report.html"])
            .await
            .unwrap(),
    );
    println!(
        "scale: the HTML report is {:.1} MiB",
        std::fs::metadata(&html).map_or(0, |m| m.len()) as f64 / 1_048_576.0
    );
    if fresh {
        // The emulator holds what the first sync sent only in this process.
        report_line(
            &format!("verify, {n} people, two targets"),
            run(&["verify"]).await.unwrap(),
        );
    }
    emu.shutdown().await;
}
