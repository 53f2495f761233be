//! `facesync fetch` against the emulator, through a gate that holds later downloads: each face
//! is on disk as soon as it arrives (while later ones are still pending), and a fetch killed
//! or shut down half-way leaves only whole files, which the next run keeps.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use common::{Settings, Workspace, emulator};
use facesync::cli::render_summary;
use facesync::fetch::{self, FetchOptions};
use facesync::reason::ReasonCode;
use facesync::store::{AttemptKind, AttemptOutcome};
use facesync_emulator::{Emulator, EmulatorConfig};

const PEOPLE: usize = 8;

/// A loopback proxy in front of the emulator: the first `pass` face downloads go through, every
/// later one is held until the gate opens. The test then knows, without timing, that later
/// downloads are pending while it looks at the folder.
struct Gate {
    url: String,
    open: tokio::sync::watch::Sender<bool>,
    state: Arc<GateState>,
}

struct GateState {
    upstream: String,
    client: reqwest::Client,
    open: tokio::sync::watch::Receiver<bool>,
    pass: usize,
    seen: AtomicUsize,
    held: AtomicUsize,
}

impl Gate {
    async fn start(upstream: &str, pass: usize) -> Gate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (open, rx) = tokio::sync::watch::channel(false);
        let state = Arc::new(GateState {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            open: rx,
            pass,
            seen: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Gate { url, open, state }
    }

    fn held(&self) -> usize {
        self.state.held.load(Ordering::SeqCst)
    }

    fn open(&self) {
        self.open.send_replace(true);
    }
}

async fn forward(State(s): State<Arc<GateState>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    if parts.method == axum::http::Method::GET && parts.uri.path().ends_with("/face") {
        let n = s.seen.fetch_add(1, Ordering::SeqCst);
        if n >= s.pass {
            s.held.fetch_add(1, Ordering::SeqCst);
            let mut open = s.open.clone();
            let _ = open.wait_for(|o| *o).await;
        }
    }
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = s
        .client
        .request(parts.method.clone(), format!("{}{path}", s.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if name != header::HOST {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream.send().await.unwrap();
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}

/// `PEOPLE` people whose faces are on the emulator's Feishu, and a config whose Feishu is
/// reached through `gate`.
async fn workspace(emu: &Emulator) -> Workspace {
    let ws = Workspace::empty();
    ws.add_people((0..PEOPLE).map(|i| format!("P{i:03}")));
    ws.write_config(
        emu,
        &Settings {
            columns: "",
            max_retries: 3,
            feishu: "",
            vzicloud: "enabled = false",
            extra: "",
        },
    );
    let summary = ws.sync(Default::default()).await;
    assert_eq!(
        common::target(&summary, "feishu").delivered,
        PEOPLE,
        "{}",
        render_summary(&summary)
    );
    ws
}

/// Points Feishu at the gate; held requests must not time out while the test looks.
fn through(ws: &Workspace, emu: &Emulator, gate: &Gate) {
    let config = std::fs::read_to_string(ws.config_path()).unwrap();
    let config = config
        .replace(&emu.base_url(), &gate.url)
        .replace("timeout_seconds = 5", "timeout_seconds = 120");
    std::fs::write(ws.config_path(), config).unwrap();
}

/// The names in `dir`: (faces, temporary files).
fn listing(dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.into_iter().partition(|n| !n.starts_with('.'))
}

/// Every face in `dir` is whole: byte for byte what the emulator holds.
fn assert_whole(dir: &Path, emu: &Emulator, faces: &[String]) {
    for name in faces {
        let id = name.strip_suffix(".jpg").expect("a JPEG");
        let held = emu.feishu_face(id).expect("the emulator holds it");
        assert_eq!(
            std::fs::read(dir.join(name)).unwrap(),
            held,
            "{name} is whole"
        );
    }
}

/// Waits until a face is in `dir` while the gate holds a later download, or fails: before
/// faces were written as they arrived, none was written until every download was done.
async fn first_face_while_others_pending(dir: &Path, gate: &Gate) -> Vec<String> {
    for _ in 0..3000 {
        let (faces, _) = listing(dir);
        if !faces.is_empty() && gate.held() > 0 {
            return faces;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "no face was written while later downloads were pending ({} held)",
        gate.held()
    );
}

/// A spawned binary that does not outlive a failing test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_fetch_leaves_only_whole_faces_and_the_next_one_resumes() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(&emu).await;
    let gate = Gate::start(&emu.base_url(), 1).await;
    let direct = std::fs::read_to_string(ws.config_path()).unwrap();
    through(&ws, &emu, &gate);
    let out = ws.path().join("faces");

    let mut child = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_facesync"))
            .args(["--quiet", "fetch", "-c", "config.toml", "--out", "faces"])
            .current_dir(ws.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let faces = first_face_while_others_pending(&out, &gate).await;
    child.0.kill().unwrap(); // SIGKILL: nothing runs after it
    child.0.wait().unwrap();
    // The downloads the gate held were recorded before they went out, and are still in flight.
    let kinds = downloads(&ws).await;
    let found = |d: &[(String, AttemptOutcome)]| {
        d.iter()
            .filter(|(_, o)| *o == AttemptOutcome::Found)
            .count()
    };
    assert_eq!(found(&kinds), 1, "{kinds:?}");
    let held = kinds
        .iter()
        .filter(|(_, o)| *o == AttemptOutcome::InFlight)
        .count();
    assert!(held > 0, "{kinds:?}");

    let (after_kill, temps) = listing(&out);
    assert_eq!(after_kill, faces, "the kill wrote nothing more");
    assert_eq!(after_kill.len(), 1, "only the download that got through");
    assert!(temps.is_empty(), "no temporary file: {temps:?}");
    assert_whole(&out, &emu, &after_kill);

    // A kill in the middle of a write leaves its temporary file; the next run removes it.
    std::fs::write(out.join(".facesync-Ab12Cd.part"), b"\xff\xd8 half a photo").unwrap();
    gate.open();
    let again = tokio::task::block_in_place(|| {
        ws.facesync(&["--quiet", "fetch", "-c", "config.toml", "--out", "faces"])
    });
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(0), "{stdout}");
    let (faces, temps) = listing(&out);
    assert_eq!(faces.len(), PEOPLE, "{faces:?}");
    assert!(temps.is_empty(), "the leftover is gone: {temps:?}");
    assert_whole(&out, &emu, &faces);
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [&(PEOPLE - 1).to_string(), "1", "0", "0", "0"]),
        "7 downloaded, 1 already there: {stdout}"
    );
    assert_eq!(found(&downloads(&ws).await), PEOPLE, "one found per face");

    // The next sync (with the settings the faces were delivered under) closes the killed
    // fetch's downloads as interrupted, and sends nobody again for them: a read changes no
    // one's delivery.
    std::fs::write(ws.config_path(), direct).unwrap();
    let sync = ws.sync(Default::default()).await;
    let feishu = common::target(&sync, "feishu");
    assert_eq!(
        (feishu.unchanged, feishu.requests),
        (PEOPLE, 0),
        "{}",
        render_summary(&sync)
    );
    let after = downloads(&ws).await;
    assert_eq!(
        after
            .iter()
            .filter(|(_, o)| *o == AttemptOutcome::Interrupted)
            .count(),
        held,
        "{after:?}"
    );
    assert_eq!(found(&after), PEOPLE);
    let store = ws.store().await;
    for i in 0..PEOPLE {
        let id = format!("P{i:03}");
        assert_eq!(
            store.attempts(&id, "feishu").await.unwrap().len(),
            1,
            "{id}"
        );
    }
    store.close().await;
    emu.shutdown().await;
}

/// Every `download` attempt in the state DB: (person, outcome), by person then age.
async fn downloads(ws: &Workspace) -> Vec<(String, AttemptOutcome)> {
    let store = ws.store().await;
    let mut all = Vec::new();
    for i in 0..PEOPLE + 1 {
        let id = format!("P{i:03}");
        for entry in store.audit_trail(&id).await.unwrap() {
            if entry.kind == AttemptKind::Download {
                assert_eq!(entry.target, "feishu");
                all.push((id.clone(), entry.attempt.outcome));
            }
        }
    }
    store.close().await;
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_download_is_the_persons_download_attempt_with_its_outcome() {
    // P000 has a face, P001's was removed at Feishu, P002 is no Feishu user (held back by the
    // sync's pre-flight, and refused by the download).
    let emu = emulator(EmulatorConfig {
        absent_users: vec!["P002".into()],
        ..EmulatorConfig::default()
    })
    .await;
    let ws = Workspace::empty();
    ws.add_people((0..3).map(|i| format!("P{i:03}")));
    ws.write_config(
        &emu,
        &Settings {
            columns: "",
            max_retries: 0,
            feishu: "",
            vzicloud: "enabled = false",
            extra: "",
        },
    );
    let sync = ws.sync(Default::default()).await;
    assert_eq!(common::target(&sync, "feishu").delivered, 2);
    assert!(emu.remove_feishu_face("P001"));

    let options = FetchOptions {
        out: ws.path().join("faces"),
        cropped: false,
        force: false,
        progress: Default::default(),
    };
    let summary = fetch::fetch(&ws.config(), "feishu", &options, std::future::pending())
        .await
        .unwrap();
    assert_eq!(summary.downloaded, 1, "{summary:?}");
    assert_eq!(summary.no_face_on_file, ["P001"]);
    assert_eq!(
        summary.failed.values().flatten().collect::<Vec<_>>(),
        ["P002"]
    );

    assert_eq!(
        downloads(&ws).await,
        [
            ("P000".to_string(), AttemptOutcome::Found),
            ("P001".to_string(), AttemptOutcome::NotFound),
            ("P002".to_string(), AttemptOutcome::Permanent),
        ]
    );
    let store = ws.store().await;
    let trail = store.audit_trail("P002").await.unwrap();
    let failed = trail.last().unwrap();
    assert!(failed.attempt.message.is_some(), "{failed:?}");
    // The downloads are a `fetch` run's, and count as nobody's attempts.
    let runs = store.last_runs(1).await.unwrap();
    assert_eq!(
        (runs[0].id, runs[0].kind.as_str(), runs[0].status.as_str()),
        (failed.run_id, "fetch", "completed")
    );
    assert_eq!(runs[0].exit_code, Some(2));
    for (id, uploads) in [("P000", 1), ("P001", 1), ("P002", 0)] {
        assert_eq!(
            store.attempts(id, "feishu").await.unwrap().len(),
            uploads,
            "{id}"
        );
    }
    assert_eq!(
        ws.states("feishu").await[1],
        ("P001".into(), facesync::store::State::Delivered, None),
        "a download that finds no face leaves the row to `verify`"
    );
    store.close().await;
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_shut_down_half_way_keeps_what_arrived_and_says_who_is_left() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(&emu).await;
    let gate = Gate::start(&emu.base_url(), 1).await;
    through(&ws, &emu, &gate);
    let out = ws.path().join("faces");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = FetchOptions {
        out: out.clone(),
        cropped: false,
        force: false,
        progress: Default::default(),
    };
    let config = ws.config();
    let run = tokio::spawn(async move {
        fetch::fetch(&config, "feishu", &options, async {
            let _ = stopped.await;
        })
        .await
        .unwrap()
    });
    first_face_while_others_pending(&out, &gate).await;
    stop.send(()).unwrap();
    // Let the shutdown reach the engine before the held downloads are answered.
    tokio::time::sleep(Duration::from_millis(200)).await;
    gate.open();
    let summary = run.await.unwrap();

    let interrupted = summary
        .failed
        .get(&ReasonCode::Interrupted)
        .map_or(0, Vec::len);
    assert!(interrupted > 0, "the rest were not fetched: {summary:?}");
    assert_eq!(summary.downloaded + interrupted, PEOPLE, "{summary:?}");
    assert_eq!(summary.exit_code(), 2);
    let (faces, temps) = listing(&out);
    assert_eq!(faces.len(), summary.downloaded, "{faces:?}");
    assert!(temps.is_empty(), "{temps:?}");
    assert_whole(&out, &emu, &faces);
    emu.shutdown().await;
}
