//! One photo under two roster ids (`duplicate_photo`) end to end: the binary's plan, syncs to
//! the emulator over loopback, the state DB's face hashes.

mod common;

use common::{Settings, Workspace, demo_photo, emulator, target};
use facesync::cli::render_summary;
use facesync::deliver::SyncOptions;
use facesync::reason::ReasonCode;
use facesync::store::State;
use facesync_emulator::{Emulator, EmulatorConfig};

/// E1001 and E1002 hold one photo (E1002's resized to 60% and re-saved at JPEG quality 70),
/// E1003 another person; `photos` are lines of the `[photos]` section.
fn workspace(emu: &Emulator, photos: &str) -> Workspace {
    let ws = Workspace::empty();
    std::fs::write(
        ws.path().join("roster.csv"),
        "employee_id,name\nE1001,Ann\nE1002,Bo\nE1003,Cy\n",
    )
    .unwrap();
    let original = demo_photo("E1001.jpg");
    std::fs::copy(&original, ws.path().join("photos/E1001.jpg")).unwrap();
    let image = image::open(&original).unwrap().into_rgb8();
    let smaller = image::imageops::resize(
        &image,
        image.width() * 3 / 5,
        image.height() * 3 / 5,
        image::imageops::FilterType::CatmullRom,
    );
    let mut copy = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut copy, 70)
        .encode_image(&smaller)
        .unwrap();
    std::fs::write(ws.path().join("photos/E1002.jpg"), copy).unwrap();
    std::fs::copy(demo_photo("E1003.jpg"), ws.path().join("photos/E1003.jpg")).unwrap();
    configure(&ws, emu, photos);
    ws
}

fn configure(ws: &Workspace, emu: &Emulator, photos: &str) {
    ws.write_config(
        emu,
        &Settings {
            columns: "",
            max_retries: 2,
            feishu: "",
            vzicloud: "",
            extra: "",
        },
    );
    // The shared config turns the check off (its tests reuse photos); here it is the subject.
    let path = ws.config_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace("duplicate_photos = \"off\"\n", &format!("{photos}\n"));
    std::fs::write(&path, text).unwrap();
}

fn plan_lines(ws: &Workspace) -> Vec<serde_json::Value> {
    let out = ws.facesync(&["plan", "-c", "config.toml", "--format", "json"]);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn stored_face_hashes(ws: &Workspace) -> Vec<(String, Option<i64>)> {
    let store = ws.store().await;
    let mut all = Vec::new();
    store
        .each_face_hash(|source, face| all.push((source.to_string(), face)))
        .await
        .unwrap();
    store.close().await;
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_photo_under_two_ids_is_sent_for_neither_until_allowed() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(&emu, "");

    // The plan names each of the pair to the other; the third person is sent.
    let lines = plan_lines(&ws);
    let find = |id: &str, target: &str| {
        lines
            .iter()
            .find(|l| l["id"] == id && l["target"] == target)
            .unwrap_or_else(|| panic!("no line for {id} {target}"))
            .clone()
    };
    for target in ["feishu", "vzicloud"] {
        for (id, other, row) in [("E1001", "E1002", 3), ("E1002", "E1001", 2)] {
            let line = find(id, target);
            assert_eq!(line["action"], "invalid", "{line}");
            assert_eq!(line["reason_code"], "duplicate_photo", "{line}");
            let reason = line["reason"].as_str().unwrap();
            assert!(
                reason.starts_with(&format!(
                    "the same photo as {other}'s (row {row}, {other}.jpg)"
                )),
                "{reason}"
            );
        }
        assert_eq!(find("E1003", target)["action"], "upload");
    }
    assert_eq!(stored_face_hashes(&ws).await.len(), 3);

    // The sync sends only the third person.
    let first = ws.sync(SyncOptions::default()).await;
    assert_eq!(
        target(&first, "feishu").delivered,
        1,
        "{}",
        render_summary(&first)
    );
    assert!(emu.feishu_face("E1003").is_some());
    assert!(emu.feishu_face("E1001").is_none());
    assert!(emu.feishu_face("E1002").is_none());
    assert_eq!(emu.vzicloud_users("staff"), vec!["E1003".to_string()]);
    for (id, state, reason) in ws.states("vzicloud").await {
        if id == "E1003" {
            assert_eq!(state, State::Delivered);
        } else {
            assert_eq!(
                (state, reason),
                (State::Invalid, Some(ReasonCode::DuplicatePhoto)),
                "{id}"
            );
        }
    }
    // Status and the report show them.
    let status = ws.facesync(&["report", "-c", "config.toml", "--format", "csv"]);
    let csv = String::from_utf8(status.stdout).unwrap();
    assert_eq!(csv.matches("duplicate_photo").count(), 4, "{csv}");

    // A nightly run: every face hash comes from the state DB, nothing is decoded for them.
    let before = stored_face_hashes(&ws).await;
    let config = ws.config();
    let store = ws.store().await;
    let run = store.begin_run("plan").await.unwrap();
    let options = facesync::plan::PlanOptions {
        defer_photo_check: true,
        ..Default::default()
    };
    let plan = facesync::plan::build(&config, &store, run, &options)
        .await
        .unwrap();
    store.close().await;
    assert_eq!(plan.faces_hashed, 0);
    assert_eq!(stored_face_hashes(&ws).await, before);

    // The admin says they are one person under two ids: both are sent.
    configure(&ws, &emu, "allow_same_photo = [[\"E1001\", \"E1002\"]]");
    let second = ws.sync(SyncOptions::default()).await;
    assert_eq!(second.exit_code(), 0, "{}", render_summary(&second));
    assert_eq!(target(&second, "feishu").delivered, 2);
    assert!(emu.feishu_face("E1001").is_some());
    assert!(emu.feishu_face("E1002").is_some());
    let mut users = emu.vzicloud_users("staff");
    users.sort();
    assert_eq!(users, ["E1001", "E1002", "E1003"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_hashes_each_face_once_and_a_copy_added_later_stops_both() {
    let emu = emulator(EmulatorConfig::default()).await;
    let ws = workspace(&emu, "");
    // First only E1001 and E1003, both delivered.
    std::fs::write(
        ws.path().join("roster.csv"),
        "employee_id,name\nE1001,Ann\nE1003,Cy\n",
    )
    .unwrap();
    let first = ws.sync(SyncOptions::default()).await;
    assert_eq!(first.exit_code(), 0, "{}", render_summary(&first));
    assert_eq!(target(&first, "feishu").delivered, 2);
    let hashes = stored_face_hashes(&ws).await;
    assert_eq!(hashes.len(), 2);
    assert!(hashes.iter().all(|(_, face)| face.is_some()), "{hashes:?}");

    // E1002 joins with E1001's photo: E1001, delivered and unchanged, is invalid now too, and
    // E1002 is not sent.
    std::fs::write(
        ws.path().join("roster.csv"),
        "employee_id,name\nE1001,Ann\nE1002,Bo\nE1003,Cy\n",
    )
    .unwrap();
    let second = ws.sync(SyncOptions::default()).await;
    assert!(emu.feishu_face("E1002").is_none());
    assert_eq!(
        target(&second, "feishu").requests,
        0,
        "{}",
        render_summary(&second)
    );
    let states = ws.states("feishu").await;
    for id in ["E1001", "E1002"] {
        let (_, state, reason) = states.iter().find(|(p, ..)| p == id).unwrap();
        assert_eq!(
            (*state, *reason),
            (State::Invalid, Some(ReasonCode::DuplicatePhoto)),
            "{id}"
        );
    }
    assert_eq!(stored_face_hashes(&ws).await.len(), 3);
}
