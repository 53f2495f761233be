//! Decision cases: one previous row, one current photo, one expected action.

use super::*;
use crate::store::State;

const H: &str = "hash-now";
const F: &str = "fp-now";
const U: &str = "E1";

fn delivered(hash: &str, fp: &str) -> DeliveryRecord {
    let mut d = DeliveryRecord::new("E1", "feishu");
    d.state = State::Delivered;
    for (slot, value) in [
        (&mut d.source_hash, hash),
        (&mut d.delivered_source_hash, hash),
        (&mut d.fingerprint, fp),
        (&mut d.delivered_fingerprint, fp),
        (&mut d.target_user_id, U),
        (&mut d.delivered_user_id, U),
    ] {
        *slot = Some(value.to_string());
    }
    d
}

fn with_state(mut d: DeliveryRecord, state: State, code: Option<ReasonCode>) -> DeliveryRecord {
    d.state = state;
    d.reason_code = code;
    d.reason = code.map(|c| format!("because {c}"));
    d
}

fn check(prev: Option<DeliveryRecord>, options: PlanOptions, expected: Action) {
    let (action, _) = decide(prev.as_ref(), H, F, U, &options);
    assert_eq!(action, expected, "prev = {prev:?}, options = {options:?}");
}

fn plain() -> PlanOptions {
    PlanOptions::default()
}
fn force() -> PlanOptions {
    PlanOptions {
        force: true,
        ..PlanOptions::default()
    }
}
fn only_failed() -> PlanOptions {
    PlanOptions {
        only_failed: true,
        ..PlanOptions::default()
    }
}

#[test]
fn new_people_are_uploaded() {
    check(None, plain(), Action::Upload);
    check(None, force(), Action::Upload);
    check(None, only_failed(), Action::Skip);
}

#[test]
fn delivered_and_unchanged_is_not_sent_again() {
    check(Some(delivered(H, F)), plain(), Action::Unchanged);
    check(Some(delivered(H, F)), force(), Action::Upload);
    check(Some(delivered(H, F)), only_failed(), Action::Skip);
}

#[test]
fn a_changed_photo_profile_or_user_id_is_uploaded() {
    check(Some(delivered("old", F)), plain(), Action::Upload);
    check(Some(delivered(H, "old-fp")), plain(), Action::Upload);
    let mut other_user = delivered(H, F);
    other_user.delivered_user_id = Some("E0".into());
    other_user.target_user_id = Some("E0".into());
    check(Some(other_user), plain(), Action::Upload);
}

#[test]
fn a_permanent_failure_waits_for_a_change_or_only_failed() {
    let failed = with_state(
        delivered(H, F),
        State::FailedPermanent,
        Some(ReasonCode::UserNotFound),
    );
    let mut never_delivered = failed.clone();
    never_delivered.delivered_source_hash = None;
    check(Some(never_delivered.clone()), plain(), Action::Skip);
    check(Some(never_delivered.clone()), only_failed(), Action::Upload);
    check(Some(never_delivered.clone()), force(), Action::Upload);
    let mut changed = never_delivered;
    changed.source_hash = Some("old".into());
    check(Some(changed), plain(), Action::Upload);
}

#[test]
fn a_retryable_failure_is_retried() {
    let mut d = with_state(
        delivered("old", F),
        State::FailedRetryable,
        Some(ReasonCode::ServerError),
    );
    d.source_hash = Some(H.into());
    check(Some(d.clone()), plain(), Action::Upload);
    check(Some(d), only_failed(), Action::Upload);
}

#[test]
fn an_unfit_photo_is_not_decoded_again_until_it_changes() {
    let mut d = with_state(
        delivered("old", F),
        State::Invalid,
        Some(ReasonCode::NoFace),
    );
    d.source_hash = Some(H.into());
    let (action, finding) = decide(Some(&d), H, F, U, &plain());
    assert_eq!(action, Action::Invalid);
    assert_eq!(finding.unwrap().code, ReasonCode::NoFace);
    check(Some(d.clone()), force(), Action::Invalid);
    d.source_hash = Some("older".into());
    check(Some(d), plain(), Action::Upload);
}

#[test]
fn a_duplicate_photo_is_decided_again_every_run() {
    // It depends on the other people's photos: the plan finds it again, or not.
    let mut d = with_state(
        delivered("old", F),
        State::Invalid,
        Some(ReasonCode::DuplicatePhoto),
    );
    d.source_hash = Some(H.into());
    check(Some(d.clone()), plain(), Action::Upload);
    check(Some(d), only_failed(), Action::Skip);
}

fn item(action: Action, finding: Option<Finding>) -> PlanItem {
    PlanItem {
        row: 2,
        id: "E1".into(),
        name: "".into(),
        target: "feishu".into(),
        action,
        finding,
        photo: Some("E1.jpg".into()),
        target_user_id: Some(U.into()),
        source_hash: Some(H.into()),
        quality: None,
        picked: None,
    }
}

#[test]
fn recording_keeps_history_and_writes_only_what_changed() {
    // A new upload becomes a pending row about this photo.
    let new = record_for(None, &item(Action::Upload, None), F).unwrap();
    assert_eq!(
        (new.state, new.source_hash.as_deref()),
        (State::Pending, Some(H))
    );
    // Already pending with the same photo: nothing to write.
    assert!(record_for(Some(&new), &item(Action::Upload, None), F).is_none());
    // A changed photo of a delivered person: pending, the delivered columns kept.
    let d = delivered("old", F);
    let changed = record_for(Some(&d), &item(Action::Upload, None), F).unwrap();
    assert_eq!(changed.state, State::Pending);
    assert_eq!(changed.delivered_source_hash.as_deref(), Some("old"));
    // Invalid: the reason is written once.
    let finding = Finding::new(ReasonCode::NoFace, "no face");
    let inv = record_for(None, &item(Action::Invalid, Some(finding.clone())), F).unwrap();
    assert_eq!(inv.reason_code, Some(ReasonCode::NoFace));
    assert!(record_for(Some(&inv), &item(Action::Invalid, Some(finding)), F).is_none());
    // Unchanged and already delivered: nothing to write.
    assert!(record_for(Some(&delivered(H, F)), &item(Action::Unchanged, None), F).is_none());
}

mod on_disk {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::config::Config;

    fn setup() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("roster.csv"),
            "employee_id,name\nE1,A\nE2,B\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("photos")).unwrap();
        std::fs::write(dir.path().join("photos/E1.jpg"), b"first").unwrap();
        std::fs::write(dir.path().join("photos/E2.jpg"), b"other").unwrap();
        let text = "[roster]\npath = \"roster.csv\"\n[targets.feishu]\napp_id = \"cli_x\"\n";
        let config = Config::parse(text, &dir.path().join("config.toml")).unwrap();
        (dir, config)
    }

    /// Writes `bytes` (as many as the file holds) into `path`, keeping its mtime.
    fn rewrite_keeping_mtime(path: &std::path::Path, bytes: &[u8]) {
        let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
        std::fs::write(path, bytes).unwrap();
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }

    async fn hash_of(store: &Store, id: &str) -> String {
        store.people().await.unwrap()[id]
            .photo_hash
            .clone()
            .unwrap()
    }

    #[tokio::test]
    async fn an_untouched_photo_is_not_hashed_again() {
        let (dir, config) = setup();
        let store = Store::open(&config.state.database).await.unwrap();
        let run = store.begin_run("plan").await.unwrap();
        build(&config, &store, run, &PlanOptions::default())
            .await
            .unwrap();
        let first = hash_of(&store, "E1").await;
        assert_eq!(first, blake3::hash(b"first").to_hex().to_string());

        // Same size and mtime, other bytes: the stored hash is trusted (the point of the cache).
        rewrite_keeping_mtime(&dir.path().join("photos/E1.jpg"), b"FIRST");
        build(&config, &store, run, &PlanOptions::default())
            .await
            .unwrap();
        assert_eq!(hash_of(&store, "E1").await, first);

        // A new mtime: hashed again.
        let path = dir.path().join("photos/E1.jpg");
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        build(&config, &store, run, &PlanOptions::default())
            .await
            .unwrap();
        assert_eq!(
            hash_of(&store, "E1").await,
            blake3::hash(b"FIRST").to_hex().to_string()
        );
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/images")
            .join(name)
    }

    /// `setup` with real photos: E1 a face, E2 a cat; both targets enabled.
    fn setup_photos() -> (tempfile::TempDir, Config) {
        let (dir, _) = setup();
        std::fs::copy(fixture("face.jpg"), dir.path().join("photos/E1.jpg")).unwrap();
        std::fs::copy(fixture("cat.jpg"), dir.path().join("photos/E2.jpg")).unwrap();
        let text = "[roster]\npath = \"roster.csv\"\n[targets.feishu]\napp_id = \"cli_x\"\n\
                    [targets.vzicloud]\napp_id = 2\ngroup_id = \"g\"\naccesskey_id = \"k\"\n";
        let config = Config::parse(text, &dir.path().join("config.toml")).unwrap();
        (dir, config)
    }

    async fn plan_once(config: &Config, options: &PlanOptions) -> Plan {
        let store = Store::open(&config.state.database).await.unwrap();
        let run = store.begin_run("plan").await.unwrap();
        let plan = build(config, &store, run, options).await.unwrap();
        store.close().await;
        plan
    }

    fn action_of(plan: &Plan, id: &str, target: &str) -> (Action, Option<ReasonCode>) {
        let item = plan
            .items
            .iter()
            .find(|i| &*i.id == id && &*i.target == target)
            .unwrap();
        (item.action, item.finding.as_ref().map(|f| f.code))
    }

    #[tokio::test]
    async fn plans_check_every_photo_for_every_target() {
        let (_dir, config) = setup_photos();
        let plan = plan_once(&config, &PlanOptions::default()).await;
        for target in ["feishu", "vzicloud"] {
            assert_eq!(action_of(&plan, "E1", target), (Action::Upload, None));
            assert_eq!(
                action_of(&plan, "E2", target),
                (Action::Invalid, Some(ReasonCode::NoFace))
            );
        }
        let store = Store::open(&config.state.database).await.unwrap();
        let rows = store.deliveries().await.unwrap();
        let e2 = &rows[&("E2".into(), "vzicloud".into())];
        assert_eq!(
            (e2.state, e2.reason_code),
            (State::Invalid, Some(ReasonCode::NoFace))
        );
        assert!(
            e2.reason
                .as_deref()
                .unwrap()
                .contains("E2.jpg: no face found")
        );
    }

    #[tokio::test]
    async fn an_unfit_photo_is_not_decoded_again_while_unchanged() {
        let (dir, config) = setup_photos();
        plan_once(&config, &PlanOptions::default()).await;
        // Same size and mtime, bytes no decoder reads: were it decoded again, the verdict
        // would change to unsupported_format; the cached no_face shows it was not.
        let path = dir.path().join("photos/E2.jpg");
        let meta = std::fs::metadata(&path).unwrap();
        std::fs::write(&path, vec![b'x'; meta.len() as usize]).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(meta.modified().unwrap())
            .unwrap();
        let plan = plan_once(&config, &PlanOptions::default()).await;
        assert_eq!(
            action_of(&plan, "E2", "feishu"),
            (Action::Invalid, Some(ReasonCode::NoFace))
        );
        // A real change (a new mtime) is looked at again.
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() + Duration::from_secs(5))
            .unwrap();
        let plan = plan_once(&config, &PlanOptions::default()).await;
        assert_eq!(
            action_of(&plan, "E2", "feishu"),
            (Action::Invalid, Some(ReasonCode::UnsupportedFormat))
        );
    }

    #[tokio::test]
    async fn a_budget_one_target_cannot_meet_leaves_the_other_target_alone() {
        let (dir, _) = setup_photos();
        let text = "[roster]\npath = \"roster.csv\"\n[targets.feishu]\napp_id = \"cli_x\"\n\
                    [targets.vzicloud]\napp_id = 2\ngroup_id = \"g\"\naccesskey_id = \"k\"\n\
                    [targets.vzicloud.profile]\nformat = \"png\"\nmax_width = 2000\n\
                    max_height = 2000\nmax_bytes = 10000\n";
        let config = Config::parse(text, &dir.path().join("config.toml")).unwrap();
        let plan = plan_once(&config, &PlanOptions::default()).await;
        assert_eq!(action_of(&plan, "E1", "feishu"), (Action::Upload, None));
        assert_eq!(
            action_of(&plan, "E1", "vzicloud"),
            (Action::Invalid, Some(ReasonCode::CannotFit))
        );
    }

    #[tokio::test]
    async fn preview_writes_each_normalized_photo_per_target() {
        let (dir, config) = setup_photos();
        let preview = dir.path().join("preview");
        let options = PlanOptions {
            preview: Some(preview.clone()),
            ..PlanOptions::default()
        };
        plan_once(&config, &options).await;
        for target in ["feishu", "vzicloud"] {
            let bytes = std::fs::read(preview.join(target).join("E1.jpg")).unwrap();
            assert_eq!(
                image::guess_format(&bytes).unwrap(),
                image::ImageFormat::Jpeg
            );
            assert!(!preview.join(target).join("E2.jpg").exists());
        }
    }

    #[tokio::test]
    async fn plans_record_pending_and_invalid_rows() {
        let (dir, config) = setup();
        std::fs::copy(fixture("face.jpg"), dir.path().join("photos/E1.jpg")).unwrap();
        std::fs::remove_file(dir.path().join("photos/E2.jpg")).unwrap();
        let store = Store::open(&config.state.database).await.unwrap();
        let run = store.begin_run("plan").await.unwrap();
        let plan = build(&config, &store, run, &PlanOptions::default())
            .await
            .unwrap();
        assert_eq!(plan.count("feishu", Action::Upload), 1);
        assert_eq!(plan.count("feishu", Action::Invalid), 1);
        let rows = store.deliveries().await.unwrap();
        assert_eq!(rows[&("E1".into(), "feishu".into())].state, State::Pending);
        let e2 = &rows[&("E2".into(), "feishu".into())];
        assert_eq!(
            (e2.state, e2.reason_code),
            (State::Invalid, Some(ReasonCode::NoPhoto))
        );
    }

    #[tokio::test]
    async fn pick_best_hashes_the_set_once_and_an_unchanged_set_is_not_read_again() {
        let (dir, _) = setup();
        std::fs::write(dir.path().join("photos/E1 (2).jpg"), b"copy").unwrap();
        let text = "[roster]\npath = \"roster.csv\"\n[photos]\npick = \"best\"\n\
                    [targets.feishu]\napp_id = \"cli_x\"\n";
        let config = Config::parse(text, &dir.path().join("config.toml")).unwrap();
        let store = Store::open(&config.state.database).await.unwrap();
        let run = store.begin_run("plan").await.unwrap();
        let options = PlanOptions {
            defer_photo_check: true,
            ..PlanOptions::default()
        };
        let plan = build(&config, &store, run, &options).await.unwrap();
        let set = |files: &[(&str, &[u8])]| {
            let mut h = blake3::Hasher::new();
            for (name, bytes) in files {
                h.update(name.as_bytes());
                h.update(&[0]);
                h.update(blake3::hash(bytes).to_hex().as_bytes());
                h.update(b"\n");
            }
            h.finalize().to_hex().to_string()
        };
        let first = set(&[("E1 (2).jpg", b"copy"), ("E1.jpg", b"first")]);
        assert_eq!(hash_of(&store, "E1").await, first);
        // One candidate: the file's own hash, as without `pick`.
        assert_eq!(
            hash_of(&store, "E2").await,
            blake3::hash(b"other").to_hex().to_string()
        );
        // Neither is a photo: decided (in a deferred plan too), none passes.
        let e1 = &plan.items[0];
        let picked = e1.picked.as_ref().expect("a choice among two");
        assert_eq!(
            (e1.action, picked.chosen.as_deref()),
            (Action::Invalid, None)
        );
        assert!(
            e1.finding
                .as_ref()
                .is_some_and(|f| f.message.contains("none of the 2 candidate photos")),
            "{e1:?}"
        );

        // Same sizes and mtimes, other bytes: the set is not read, nor decided, again.
        rewrite_keeping_mtime(&dir.path().join("photos/E1.jpg"), b"FIRST");
        let plan = build(&config, &store, run, &options).await.unwrap();
        assert_eq!(hash_of(&store, "E1").await, first);
        assert_eq!(plan.items[0].action, Action::Invalid);
        assert!(plan.items[0].picked.is_none(), "not prepared again");

        // A third candidate: the set changes.
        std::fs::write(dir.path().join("photos/E1(3).png"), b"third").unwrap();
        build(&config, &store, run, &options).await.unwrap();
        assert_eq!(
            hash_of(&store, "E1").await,
            set(&[
                ("E1 (2).jpg", b"copy"),
                ("E1(3).png", b"third"),
                ("E1.jpg", b"FIRST")
            ])
        );
    }

    /// E1 a portrait, E2 the same photo resized and re-saved, E3 a cat; both targets, `photos`
    /// lines added to the config.
    fn setup_copies(photos: &str) -> (tempfile::TempDir, Config) {
        let (dir, _) = setup();
        std::fs::write(
            dir.path().join("roster.csv"),
            "employee_id,name\nE1,A\nE2,B\nE3,C\n",
        )
        .unwrap();
        let portrait = fixture("../faces/obama.jpg");
        std::fs::copy(&portrait, dir.path().join("photos/E1.jpg")).unwrap();
        let face = image::open(&portrait).unwrap().into_rgb8();
        let smaller = image::imageops::resize(
            &face,
            face.width() * 3 / 4,
            face.height() * 3 / 4,
            image::imageops::FilterType::Triangle,
        );
        smaller.save(dir.path().join("photos/E2.jpg")).unwrap();
        std::fs::copy(fixture("cat.jpg"), dir.path().join("photos/E3.jpg")).unwrap();
        let text = format!(
            "[roster]\npath = \"roster.csv\"\n[photos]\n{photos}\n\
             [targets.feishu]\napp_id = \"cli_x\"\n\
             [targets.vzicloud]\napp_id = 2\ngroup_id = \"g\"\naccesskey_id = \"k\"\n"
        );
        let config = Config::parse(&text, &dir.path().join("config.toml")).unwrap();
        (dir, config)
    }

    fn finding_of<'a>(plan: &'a Plan, id: &str, target: &str) -> &'a Finding {
        plan.items
            .iter()
            .find(|i| &*i.id == id && &*i.target == target)
            .and_then(|i| i.finding.as_ref())
            .unwrap_or_else(|| panic!("{id} at {target} has a finding"))
    }

    #[tokio::test]
    async fn one_photo_under_two_ids_is_invalid_for_both_naming_the_other() {
        for defer in [false, true] {
            let (_dir, config) = setup_copies("");
            let options = PlanOptions {
                defer_photo_check: defer,
                ..PlanOptions::default()
            };
            for run in 0..2 {
                let plan = plan_once(&config, &options).await;
                for target in ["feishu", "vzicloud"] {
                    for (id, other, row) in [("E1", "E2", 3), ("E2", "E1", 2)] {
                        assert_eq!(
                            action_of(&plan, id, target),
                            (Action::Invalid, Some(ReasonCode::DuplicatePhoto)),
                            "{id} defer {defer} run {run}"
                        );
                        let f = finding_of(&plan, id, target);
                        assert!(
                            f.message.starts_with(&format!(
                                "the same photo as {other}'s (row {row}, {other}.jpg): check who is in this photo"
                            )),
                            "{}",
                            f.message
                        );
                        assert!(
                            f.message.contains("photos.allow_same_photo"),
                            "{}",
                            f.message
                        );
                    }
                }
                // The sync's plan (deferred) looks at every photo's face once, the cat's too;
                // `plan` saw them all in the photo stage; the next run reads them all.
                let hashed = if defer && run == 0 { 3 } else { 0 };
                assert_eq!(plan.faces_hashed, hashed, "defer {defer} run {run}");
            }
            let store = Store::open(&config.state.database).await.unwrap();
            let rows = store.deliveries().await.unwrap();
            let e1 = &rows[&("E1".into(), "feishu".into())];
            assert_eq!(
                (e1.state, e1.reason_code),
                (State::Invalid, Some(ReasonCode::DuplicatePhoto))
            );
            let mut stored = Vec::new();
            store
                .each_face_hash(|source, face| stored.push((source.to_string(), face)))
                .await
                .unwrap();
            assert_eq!(stored.len(), 3, "{stored:?}");
            assert_eq!(stored.iter().filter(|(_, f)| f.is_none()).count(), 1);
        }
    }

    #[tokio::test]
    async fn allowed_pairs_warnings_and_off_send_both() {
        for photos in [
            "allow_same_photo = [[\"E2\", \"E1\"]]",
            "duplicate_photos = \"warn\"",
            "duplicate_photos = \"off\"",
            // No face looked for, none compared.
            "face_check = false",
        ] {
            let (_dir, config) = setup_copies(photos);
            let plan = plan_once(&config, &PlanOptions::default()).await;
            if photos.starts_with("face_check") {
                assert_eq!(plan.faces_hashed, 0);
            }
            for id in ["E1", "E2"] {
                assert_eq!(
                    action_of(&plan, id, "feishu"),
                    (Action::Upload, None),
                    "{photos}"
                );
            }
            let warned = plan
                .warnings
                .iter()
                .filter(|w| w.contains("the same photo as"))
                .count();
            assert_eq!(
                warned,
                if photos.contains("warn") { 2 } else { 0 },
                "{photos}"
            );
        }
    }

    #[tokio::test]
    async fn a_duplicate_is_looked_at_again_when_the_other_photo_changes() {
        let (dir, config) = setup_copies("");
        let options = PlanOptions {
            defer_photo_check: true,
            ..PlanOptions::default()
        };
        let plan = plan_once(&config, &options).await;
        assert_eq!(
            action_of(&plan, "E1", "feishu"),
            (Action::Invalid, Some(ReasonCode::DuplicatePhoto))
        );
        // E2 gets a photo of their own (here, one without a face): E1 is sent.
        let path = dir.path().join("photos/E2.jpg");
        std::fs::copy(fixture("cat.jpg"), &path).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() + Duration::from_secs(5))
            .unwrap();
        let plan = plan_once(&config, &options).await;
        assert_eq!(action_of(&plan, "E1", "feishu"), (Action::Upload, None));
        assert_eq!(action_of(&plan, "E2", "feishu"), (Action::Upload, None));
        // The cat's hash was known: only the changed file... is the cat's bytes, known too.
        assert_eq!(plan.faces_hashed, 0);
        let store = Store::open(&config.state.database).await.unwrap();
        let rows = store.deliveries().await.unwrap();
        assert_eq!(rows[&("E1".into(), "feishu".into())].state, State::Pending);
        // The resized copy's face hash is forgotten: no one has that photo any more.
        let mut stored = 0;
        store.each_face_hash(|_, _| stored += 1).await.unwrap();
        assert_eq!(stored, 2);
    }
}
