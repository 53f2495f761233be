//! The contract every target kind must pass, as rclone's backends pass one shared suite: each
//! case runs `facesync::deliver::run` with a real config file, a real SQLite state DB and real
//! photos against the emulator on loopback, once per kind.
//!
//! The cases are written once, against the public API, never against a kind. What differs
//! between kinds is a [`Fixture`]: the kind's own keys of a `[targets.NAME]` section, how to make
//! the emulator produce each situation for that kind, and how to read what the emulator holds.
//! A kind gets the whole suite by one line in the `contract!` invocation at the bottom, and
//! [`every_registered_kind_has_a_fixture`] fails for a kind in
//! `facesync::targets::registry::KINDS` without one, so no kind can skip it.
//!
//! Tests are named `<kind>::<case>`, so a failure names the kind; every assertion message does too.

mod common;

use common::{FACES, Workspace, demo_photo, emulator};
use facesync::cli::render_summary;
use facesync::deliver::{Summary, SyncOptions, TargetSummary};
use facesync::reason::ReasonCode;
use facesync::store::State;
use facesync::targets::{Abilities, Target};
use facesync_emulator::Secret;
use facesync_emulator::{Emulator, EmulatorConfig, HikvisionConfig};

/// The section's name: not the kind's, so the suite also checks that nothing keys on the kind.
const NAME: &str = "gate";

/// The VziCloud group the fixture's section names.
const VZI_GROUP: &str = "staff";

/// What the suite needs to know about one kind. Situations whose knobs the emulator shares
/// between clouds (server errors, dropped connections, its face check) need nothing here.
trait Fixture: Sync {
    /// As `kind = "..."` and the registry name it.
    fn kind(&self) -> &'static str;

    /// The section's `base_url`: the emulator's, unless the kind is served under a path.
    fn base_url(&self, emu: &Emulator) -> String {
        emu.base_url()
    }

    /// The kind's own keys of a section at the emulator, with the credentials `credentials`
    /// holds (the emulator's own, or [`Fixture::wrong_credentials`]).
    fn keys(&self, credentials: &EmulatorConfig) -> String;

    /// What a target of this kind, configured by [`Fixture::keys`], announces.
    fn abilities(&self) -> Abilities;

    /// The users holding a face at the emulator, sorted.
    fn held(&self, emu: &Emulator) -> Vec<String>;

    /// The bytes of the (latest) face `user` holds.
    fn face(&self, emu: &Emulator, user: &str) -> Option<Vec<u8>>;

    /// How the target comes not to know `user`, who arrives after the others are enrolled.
    fn unknown_user(&self, user: &str) -> Situation;

    /// The emulator throttling this kind: one request a window, answered with the server's reset.
    fn throttling(&self) -> EmulatorConfig;

    /// `accepted` with this kind's secret changed, to write a section the emulator refuses.
    fn wrong_credentials(&self, accepted: &EmulatorConfig) -> EmulatorConfig;
}

/// One situation made for one kind.
struct Situation {
    emulator: EmulatorConfig,
    /// Added to the section for the run that meets the situation.
    keys: &'static str,
    /// The reason the person's row must end with.
    reason: ReasonCode,
}

struct Feishu;

impl Fixture for Feishu {
    fn kind(&self) -> &'static str {
        "feishu"
    }

    fn keys(&self, e: &EmulatorConfig) -> String {
        format!(
            "app_id = \"{}\"\napp_secret = \"{}\"\n",
            e.feishu_app_id,
            e.feishu_app_secret.expose()
        )
    }

    fn abilities(&self) -> Abilities {
        Abilities {
            lookup_batch: 50,
            list_users: true,
            preflight: Some(ReasonCode::NotInAccessGroup),
            remove_users: false,
            download: true,
        }
    }

    fn held(&self, emu: &Emulator) -> Vec<String> {
        emu.stats().feishu_faces.into_keys().collect()
    }

    fn face(&self, emu: &Emulator, user: &str) -> Option<Vec<u8>> {
        emu.feishu_face(user)
    }

    /// With the pre-flight on, Feishu holds an unknown user back before any upload
    /// (tests/sync.rs covers that); off, the upload itself meets Feishu's 1490101, which is the
    /// answer the contract is about.
    fn unknown_user(&self, user: &str) -> Situation {
        Situation {
            emulator: EmulatorConfig {
                absent_users: vec![user.to_string()],
                ..EmulatorConfig::default()
            },
            keys: "preflight = false",
            reason: ReasonCode::UserNotFound,
        }
    }

    fn throttling(&self) -> EmulatorConfig {
        EmulatorConfig {
            feishu_rate_limit: Some(1),
            ..EmulatorConfig::default()
        }
    }

    fn wrong_credentials(&self, accepted: &EmulatorConfig) -> EmulatorConfig {
        EmulatorConfig {
            feishu_app_secret: Secret::new("wrong-secret"),
            ..accepted.clone()
        }
    }
}

struct Hikvision;

/// The emulated terminal the fixture's section points at.
const TERMINAL: &str = "door1";

impl Fixture for Hikvision {
    fn kind(&self) -> &'static str {
        "hikvision"
    }

    fn base_url(&self, emu: &Emulator) -> String {
        emu.hikvision_url(TERMINAL)
    }

    /// The read-back looks often: the emulator stores faces at once unless told otherwise.
    fn keys(&self, e: &EmulatorConfig) -> String {
        format!(
            "username = \"{}\"\npassword = \"{}\"\nreadback_interval_ms = 50\n",
            e.hikvision.username,
            e.hikvision.password.expose()
        )
    }

    fn abilities(&self) -> Abilities {
        Abilities {
            list_users: true,
            remove_users: true,
            ..Abilities::default()
        }
    }

    fn held(&self, emu: &Emulator) -> Vec<String> {
        emu.hikvision_faces(TERMINAL)
    }

    fn face(&self, emu: &Emulator, user: &str) -> Option<Vec<u8>> {
        emu.hikvision_face(TERMINAL, user)
    }

    /// A terminal adds the people it does not hold, unless another system manages them.
    fn unknown_user(&self, _user: &str) -> Situation {
        Situation {
            emulator: EmulatorConfig::default(),
            keys: "create_persons = false",
            reason: ReasonCode::UserNotFound,
        }
    }

    /// A terminal does not count requests: it answers `deviceBusy` to one that arrives while
    /// it models a face, which four at a time make certain.
    fn throttling(&self) -> EmulatorConfig {
        EmulatorConfig {
            hikvision: HikvisionConfig {
                busy_time: std::time::Duration::from_millis(300),
                ..HikvisionConfig::default()
            },
            ..EmulatorConfig::default()
        }
    }

    fn wrong_credentials(&self, accepted: &EmulatorConfig) -> EmulatorConfig {
        let mut wrong = accepted.clone();
        wrong.hikvision.password = Secret::new("wrong-password");
        wrong
    }
}

struct Vzicloud;

impl Fixture for Vzicloud {
    fn kind(&self) -> &'static str {
        "vzicloud"
    }

    fn keys(&self, e: &EmulatorConfig) -> String {
        format!(
            "app_id = {}\ngroup_id = \"{VZI_GROUP}\"\naccesskey_id = \"{}\"\naccesskey_secret = \"{}\"\n",
            e.vzicloud_app_id,
            e.vzicloud_accesskey_id,
            e.vzicloud_accesskey_secret.expose()
        )
    }

    fn abilities(&self) -> Abilities {
        Abilities {
            list_users: true,
            remove_users: true,
            ..Abilities::default()
        }
    }

    fn held(&self, emu: &Emulator) -> Vec<String> {
        emu.vzicloud_users(VZI_GROUP)
    }

    fn face(&self, emu: &Emulator, user: &str) -> Option<Vec<u8>> {
        emu.vzicloud_faces(VZI_GROUP, user)
            .pop()
            .map(|face| face.bytes)
    }

    /// REPLACE (the default) registers a missing user; UPDATE needs them to exist (3301).
    fn unknown_user(&self, _user: &str) -> Situation {
        Situation {
            emulator: EmulatorConfig::default(),
            keys: "action_type = \"UPDATE\"",
            reason: ReasonCode::UserNotFound,
        }
    }

    fn throttling(&self) -> EmulatorConfig {
        EmulatorConfig {
            vzicloud_qps: Some(1),
            ..EmulatorConfig::default()
        }
    }

    fn wrong_credentials(&self, accepted: &EmulatorConfig) -> EmulatorConfig {
        EmulatorConfig {
            vzicloud_accesskey_secret: Secret::new("wrong-secret"),
            ..accepted.clone()
        }
    }
}

// ---- the workspace the cases share ----

/// `P001`..`Pn`.
fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("P{i:03}")).collect()
}

/// One target of the fixture's kind, named [`NAME`], in a folder with a roster and photos.
struct Bench<'a> {
    fixture: &'a dyn Fixture,
    emu: Emulator,
    ws: Workspace,
}

/// The section's common keys, and what the run's `[photos]` says.
struct Shape {
    concurrency: u32,
    max_retries: u32,
    /// facesync's own face check: off to let a faceless photo reach the target.
    face_check: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            concurrency: 4,
            max_retries: 6,
            face_check: true,
        }
    }
}

impl<'a> Bench<'a> {
    async fn new(fixture: &'a dyn Fixture, config: EmulatorConfig, people: usize) -> Self {
        let bench = Self {
            fixture,
            emu: emulator(config).await,
            ws: Workspace::empty(),
        };
        bench.roster(&ids(people));
        bench
    }

    fn kind(&self) -> &'static str {
        self.fixture.kind()
    }

    /// Writes the roster; each person gets a real face photo unless they have one already.
    fn roster(&self, people: &[String]) {
        let mut roster = String::from("employee_id,name\n");
        for (i, id) in people.iter().enumerate() {
            roster.push_str(&format!("{id},Person {id}\n"));
            let photo = self.photo(id);
            if !photo.exists() {
                std::fs::copy(demo_photo(FACES[i % FACES.len()]), photo).unwrap();
            }
        }
        std::fs::write(self.ws.path().join("roster.csv"), roster).unwrap();
    }

    fn photo(&self, id: &str) -> std::path::PathBuf {
        self.ws.path().join(format!("photos/{id}.jpg"))
    }

    /// Writes `config.toml` with the fixture's section, holding `credentials`, plus `extra`.
    fn configure_with(&self, shape: &Shape, credentials: &EmulatorConfig, extra: &str) {
        let text = format!(
            "[roster]\npath = \"roster.csv\"\n\
             [photos]\ndir = \"photos\"\nface_check = {face_check}\n\
             duplicate_photos = \"off\"\n\
             [state]\ndatabase = \"facesync.db\"\n\
             [targets.{NAME}]\nkind = \"{kind}\"\nbase_url = \"{url}\"\n\
             rate_per_second = 200\nconcurrency = {concurrency}\nmax_retries = {retries}\n\
             timeout_seconds = 5\n{keys}{extra}\n",
            face_check = shape.face_check,
            kind = self.kind(),
            url = self.fixture.base_url(&self.emu),
            concurrency = shape.concurrency,
            retries = shape.max_retries,
            keys = self.fixture.keys(credentials),
        );
        std::fs::write(self.ws.config_path(), text).unwrap();
    }

    fn configure(&self, shape: &Shape, extra: &str) {
        self.configure_with(shape, self.emu.config(), extra);
    }

    async fn sync(&self, options: SyncOptions) -> Summary {
        self.ws.sync(options).await
    }

    /// (person, state, reason) of every row of the target, by person id.
    async fn states(&self) -> Vec<(String, State, Option<ReasonCode>)> {
        self.ws.states(NAME).await
    }

    async fn attempts(&self, person: &str) -> usize {
        let store = self.ws.store().await;
        let n = store.attempts(person, NAME).await.unwrap().len();
        store.close().await;
        n
    }

    /// Every row delivered, and every one of `people` held at the emulator.
    async fn assert_all_delivered(&self, people: &[String], summary: &Summary) {
        let kind = self.kind();
        for (id, state, reason) in self.states().await {
            assert_eq!(
                state,
                State::Delivered,
                "{kind}: {id} ({reason:?})\n{}",
                render_summary(summary)
            );
        }
        assert_eq!(self.fixture.held(&self.emu), people, "{kind}: held faces");
    }

    /// The target built from the written config, as the engine builds it.
    fn target(&self) -> std::sync::Arc<dyn Target> {
        facesync::targets::build(&self.ws.config(), NAME)
            .unwrap_or_else(|e| panic!("{}: cannot build the target: {e}", self.kind()))
    }

    async fn shutdown(self) {
        self.emu.shutdown().await;
    }
}

fn summary_of(summary: &Summary) -> &TargetSummary {
    common::target(summary, NAME)
}

fn pruning() -> SyncOptions {
    // --force: one leaver of a handful is above the default 5% share, and the share is not
    // what this case is about (tests/identity.rs covers it).
    SyncOptions {
        prune: true,
        prune_force: true,
        ..SyncOptions::default()
    }
}

// ---- the cases ----

/// Everyone delivered, the emulator holds each face, and the rows say so.
async fn upload(fixture: &dyn Fixture) {
    let kind = fixture.kind();
    let bench = Bench::new(fixture, EmulatorConfig::default(), 4).await;
    bench.configure(&Shape::default(), "");
    let summary = bench.sync(SyncOptions::default()).await;
    let t = summary_of(&summary);
    assert_eq!(
        summary.exit_code(),
        0,
        "{kind}: {}",
        render_summary(&summary)
    );
    assert_eq!(t.delivered, 4, "{kind}: {}", render_summary(&summary));
    assert_eq!(t.requests, 4, "{kind}: one upload a person");
    assert_eq!((t.retried, t.throttled), (0, 0), "{kind}: a healthy cloud");
    bench.assert_all_delivered(&ids(4), &summary).await;
    for id in ids(4) {
        assert!(
            fixture.face(&bench.emu, &id).is_some_and(|b| !b.is_empty()),
            "{kind}: {id} holds no face bytes"
        );
        assert_eq!(bench.attempts(&id).await, 1, "{kind}: {id}'s attempts");
    }
    bench.shutdown().await;
}

/// A second run over the same photos sends nothing.
async fn unchanged_rerun(fixture: &dyn Fixture) {
    let kind = fixture.kind();
    let bench = Bench::new(fixture, EmulatorConfig::default(), 3).await;
    bench.configure(&Shape::default(), "");
    let first = bench.sync(SyncOptions::default()).await;
    assert_eq!(
        summary_of(&first).delivered,
        3,
        "{kind}: {}",
        render_summary(&first)
    );
    let before = bench.emu.stats().requests;
    let again = bench.sync(SyncOptions::default()).await;
    let t = summary_of(&again);
    assert_eq!(again.exit_code(), 0, "{kind}: {}", render_summary(&again));
    assert_eq!(
        (t.unchanged, t.delivered, t.requests),
        (3, 0, 0),
        "{kind}: {}",
        render_summary(&again)
    );
    // Reads (a pre-flight listing) may go out; no request that changes the target does.
    let after = bench.emu.stats().requests;
    for (api, n) in &after {
        if before.get(api) != Some(n) {
            assert!(
                ![
                    "upload", "update", "register", "delete", "record", "modify", "setup"
                ]
                .iter()
                .any(|verb| api.contains(verb)),
                "{kind}: {api} was sent again ({n} after {:?})",
                before.get(api)
            );
        }
    }
    for id in ids(3) {
        assert_eq!(bench.attempts(&id).await, 1, "{kind}: {id} was sent again");
    }
    bench.shutdown().await;
}

/// One changed photo is sent again, and only that one.
async fn changed_photo(fixture: &dyn Fixture) {
    let kind = fixture.kind();
    let bench = Bench::new(fixture, EmulatorConfig::default(), 3).await;
    bench.configure(&Shape::default(), "");
    bench.sync(SyncOptions::default()).await;
    let before: Vec<_> = ids(3)
        .iter()
        .map(|id| fixture.face(&bench.emu, id))
        .collect();
    std::fs::copy(demo_photo("E1014.png"), bench.photo("P002")).unwrap();
    let summary = bench.sync(SyncOptions::default()).await;
    let t = summary_of(&summary);
    assert_eq!(
        summary.exit_code(),
        0,
        "{kind}: {}",
        render_summary(&summary)
    );
    assert_eq!(
        (t.delivered, t.unchanged, t.requests),
        (1, 2, 1),
        "{kind}: {}",
        render_summary(&summary)
    );
    for (id, old) in ids(3).iter().zip(before) {
        let now = fixture.face(&bench.emu, id);
        assert!(now.is_some(), "{kind}: {id} holds no face");
        assert_eq!(now != old, id == "P002", "{kind}: {id}'s face changed?");
    }
    assert_eq!(bench.attempts("P002").await, 2, "{kind}: P002's attempts");
    assert_eq!(bench.attempts("P001").await, 1, "{kind}: P001's attempts");
    bench.shutdown().await;
}

/// A newcomer the target does not know fails for good with the kind's reason after one
/// attempt; the others are delivered; the next run leaves the failure alone.
async fn unknown_user(fixture: &dyn Fixture) {
    let kind = fixture.kind();
    let situation = fixture.unknown_user("P004");
    let bench = Bench::new(fixture, situation.emulator, 3).await;
    bench.configure(&Shape::default(), "");
    let enrolled = bench.sync(SyncOptions::default()).await;
    assert_eq!(
        enrolled.exit_code(),
        0,
        "{kind}: {}",
        render_summary(&enrolled)
    );

    bench.roster(&ids(4));
    bench.configure(&Shape::default(), situation.keys);
    let summary = bench.sync(SyncOptions::default()).await;
    let t = summary_of(&summary);
    assert_eq!(
        summary.exit_code(),
        2,
        "{kind}: {}",
        render_summary(&summary)
    );
    assert_eq!(
        t.failed_permanent.get(&situation.reason),
        Some(&1),
        "{kind}: {}",
        render_summary(&summary)
    );
    assert_eq!(t.retried, 0, "{kind}: a permanent refusal is not retried");
    let states = bench.states().await;
    assert_eq!(
        states[3],
        (
            "P004".to_string(),
            State::FailedPermanent,
            Some(situation.reason)
        ),
        "{kind}"
    );
    for (id, state, reason) in &states[..3] {
        assert_eq!(*state, State::Delivered, "{kind}: {id} ({reason:?})");
    }
    assert_eq!(bench.attempts("P004").await, 1, "{kind}: P004's attempts");
    assert_eq!(fixture.held(&bench.emu), ids(3), "{kind}: held faces");

    let again = bench.sync(SyncOptions::default()).await;
    let t = summary_of(&again);
    assert_eq!(t.requests, 0, "{kind}: {}", render_summary(&again));
    assert_eq!(
        t.failed_permanent.get(&situation.reason),
        Some(&1),
        "{kind}"
    );
    assert_eq!(
        bench.attempts("P004").await,
        1,
        "{kind}: P004 was sent again"
    );
    bench.shutdown().await;
}

/// A photo without a face, let through by facesync's own check, is refused by the target:
/// failed for good as face_rejected, after one attempt; the others are delivered.
async fn rejected_face(fixture: &dyn Fixture) {
    let kind = fixture.kind();
    let bench = Bench::new(fixture, EmulatorConfig::default(), 3).await;
    // Twice the fixture's size, so that it is big enough for every kind's profile.
    let cat = image::open(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/images/cat.jpg"),
    )
    .unwrap();
    cat.resize(
        cat.width() * 2,
        cat.height() * 2,
        image::imageops::FilterType::Triangle,
    )
    .save(bench.photo("P003"))
    .unwrap();
    bench.configure(
        &Shape {
            face_check: false,
            ..Shape::default()
        },
        "",
    );
    let summary = bench.sync(SyncOptions::default()).await;
    let t = summary_of(&summary);
    assert_eq!(
        summary.exit_code(),
        2,
        "{kind}: {}",
        render_summary(&summary)
    );
    assert_eq!(
        t.failed_permanent.get(&ReasonCode::FaceRejected),
        Some(&1),
        "{kind}: {}",
        render_summary(&summary)
    );
    assert_eq!(t.delivered, 2, "{kind}: {}", render_summary(&summary));
    assert_eq!(t.retried, 0, "{kind}: a permanent refusal is not retried");
    assert_eq!(
        bench.states().await[2],
        (
            "P003".to_string(),
            State::FailedPermanent,
            Some(ReasonCode::FaceRejected)
        ),
        "{kind}"
    );
    assert_eq!(bench.attempts("P003").await, 1, "{kind}: P003's attempts");
    assert_eq!(fixture.held(&bench.emu), ids(2), "{kind}: held faces");
    bench.shutdown().await;
}

/// One request a second, while the target sends up to 4 at once at 200 a second: throttling is
/// certain however fast the machine is. The lane waits out the server's reset and everyone is
/// delivered.
async fn throttling(fixture: &dyn Fixture) {
    let kind = fixture.kind();
    let bench = Bench::new(fixture, fixture.throttling(), 4).await;
    bench.configure(&Shape::default(), "");
    let summary = bench.sync(SyncOptions::default()).await;
    let t = summary_of(&summary);
    assert_eq!(
        summary.exit_code(),
        0,
        "{kind}: {}",
        render_summary(&summary)
    );
    assert_eq!(t.delivered, 4, "{kind}: {}", render_summary(&summary));
    assert!(
        t.throttled > 0,
        "{kind}: not throttled: {}",
        render_summary(&summary)
    );
    assert!(
        bench.emu.stats().refusals.values().any(|by| !by.is_empty()),
        "{kind}: the emulator refused nothing"
    );
    bench.assert_all_delivered(&ids(4), &summary).await;
    bench.shutdown().await;
}

/// The faults case's emulator: one request at a time (`concurrency = 1`, one target) makes the
/// sequence of requests, and so the fate the seed gives each, the same on every run, and the
/// seeds are chosen so the target's own setup request (a token, a group) is served: the outcome
/// is certain, not likely. Even if the order changed, with 1 + 8 tries at 0.3 a person would
/// fail for good only with odds of 0.3^9 (about 1 in 50,000).
fn faults(error_rate: f64, drop_rate: f64) -> EmulatorConfig {
    EmulatorConfig {
        error_rate,
        drop_rate,
        seed: 3,
        ..EmulatorConfig::default()
    }
}

const FAULTY: Shape = Shape {
    concurrency: 1,
    max_retries: 8,
    face_check: true,
};

/// Server errors are retried and everyone is delivered.
async fn server_errors(fixture: &dyn Fixture) {
    retried_to_delivery(fixture, Fault::ServerError).await;
}

/// Connections closed without an answer are retried and everyone is delivered.
async fn dropped_connections(fixture: &dyn Fixture) {
    retried_to_delivery(fixture, Fault::Dropped).await;
}

/// The transport faults the emulator injects for every kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    ServerError,
    Dropped,
}

/// One kind of fault on 30% of the requests: retried, everyone delivered, and only that fault
/// happened.
async fn retried_to_delivery(fixture: &dyn Fixture, fault: Fault) {
    let kind = fixture.kind();
    let config = match fault {
        Fault::ServerError => faults(0.3, 0.0),
        Fault::Dropped => faults(0.0, 0.3),
    };
    let bench = Bench::new(fixture, config, 3).await;
    bench.configure(&FAULTY, "");
    let summary = bench.sync(SyncOptions::default()).await;
    let t = summary_of(&summary);
    assert_eq!(
        summary.exit_code(),
        0,
        "{kind}: {}",
        render_summary(&summary)
    );
    assert_eq!(t.delivered, 3, "{kind}: {}", render_summary(&summary));
    assert!(
        t.retried > 0,
        "{kind}: nothing retried: {}",
        render_summary(&summary)
    );
    let seen = bench.emu.stats().faults;
    let (this, other) = match fault {
        Fault::ServerError => (seen.server_errors, seen.dropped),
        Fault::Dropped => (seen.dropped, seen.server_errors),
    };
    assert!(this > 0, "{kind}: {fault:?}: {seen:?}");
    assert_eq!(other, 0, "{kind}: {fault:?}: {seen:?}");
    bench.assert_all_delivered(&ids(3), &summary).await;
    bench.shutdown().await;
}

/// Credentials the target refuses stop the target (exit 1): nothing delivered, nobody blamed:
/// every person is left for the next run (`failed_retryable` if their upload met the refusal,
/// `pending` if the target stopped before trying them, as a kind that checks its credentials
/// in `prepare` does), none failed for good.
async fn credentials_refused(fixture: &dyn Fixture) {
    let kind = fixture.kind();
    let bench = Bench::new(fixture, EmulatorConfig::default(), 3).await;
    let wrong = fixture.wrong_credentials(bench.emu.config());
    bench.configure_with(&Shape::default(), &wrong, "");
    let summary = bench.sync(SyncOptions::default()).await;
    let t = summary_of(&summary);
    assert_eq!(
        summary.exit_code(),
        1,
        "{kind}: {}",
        render_summary(&summary)
    );
    assert!(t.stopped.is_some(), "{kind}: {}", render_summary(&summary));
    assert_eq!(t.delivered, 0, "{kind}: {}", render_summary(&summary));
    assert!(
        t.failed_permanent.is_empty(),
        "{kind}: {}",
        render_summary(&summary)
    );
    let waiting: usize = t.not_sent + t.failed_retryable.values().sum::<usize>();
    assert_eq!(
        waiting,
        3,
        "{kind}: everyone waits for the next run: {}",
        render_summary(&summary)
    );
    for (id, state, reason) in bench.states().await {
        // Pending: never tried (the target stopped first); failed_retryable: tried and met
        // the refusal. Never failed_permanent.
        let tried = bench.attempts(&id).await > 0;
        let expected = if tried {
            State::FailedRetryable
        } else {
            State::Pending
        };
        assert_eq!(
            state, expected,
            "{kind}: {id} ({reason:?}, tried: {tried}): a target's fault is not the person's"
        );
        if !tried {
            assert_eq!(
                reason,
                Some(ReasonCode::TargetStopped),
                "{kind}: {id}: a person never sent says why"
            );
        }
    }
    assert!(fixture.held(&bench.emu).is_empty(), "{kind}: faces held");
    bench.shutdown().await;
}

/// The target announces what the fixture says; where it lists users, the list shows the
/// delivered ones with a face; where it removes users, `sync --prune` removes a leaver. Where
/// it cannot, the engine's refusal is checked instead: the case is skipped visibly, never
/// silently.
async fn abilities(fixture: &dyn Fixture) {
    let kind = fixture.kind();
    let bench = Bench::new(fixture, EmulatorConfig::default(), 4).await;
    bench.configure(&Shape::default(), "");
    let first = bench.sync(SyncOptions::default()).await;
    assert_eq!(first.exit_code(), 0, "{kind}: {}", render_summary(&first));
    let target = bench.target();
    let abilities = target.abilities();
    assert_eq!(
        abilities,
        fixture.abilities(),
        "{kind}: the target announces other abilities than its fixture says"
    );

    if abilities.list_users {
        let mut listed = Vec::new();
        let mut cursor = None;
        loop {
            let page = target
                .list_users(cursor.as_deref())
                .await
                .unwrap_or_else(|f| panic!("{kind}: list_users: {}", f.message));
            listed.extend(page.users);
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut with_face: Vec<String> = listed
            .iter()
            .filter(|u| u.has_face)
            .map(|u| u.user_id.clone())
            .collect();
        with_face.sort();
        assert_eq!(with_face, ids(4), "{kind}: the listing: {listed:?}");
    } else {
        let before = bench.emu.stats().requests;
        assert!(
            target.list_users(None).await.is_err(),
            "{kind}: lists users without announcing it"
        );
        assert_eq!(bench.emu.stats().requests, before, "{kind}: sent a request");
        eprintln!("{kind}: skipped listing: the kind cannot list users (checked)");
    }

    bench.roster(&ids(3));
    let pruned = bench.sync(pruning()).await;
    let t = summary_of(&pruned);
    assert_eq!(pruned.exit_code(), 0, "{kind}: {}", render_summary(&pruned));
    if abilities.remove_users {
        assert_eq!(t.removed, 1, "{kind}: {}", render_summary(&pruned));
        assert_eq!(fixture.held(&bench.emu), ids(3), "{kind}: held after prune");
        assert_eq!(
            bench.states().await[3],
            (
                "P004".to_string(),
                State::Removed,
                Some(ReasonCode::LeftRoster)
            ),
            "{kind}"
        );
    } else {
        // --prune on a kind that cannot delete: nothing removed, nothing refused, the leaver
        // still held.
        assert_eq!(
            (t.removed, t.prune_refused.as_deref()),
            (0, None),
            "{kind}: {}",
            render_summary(&pruned)
        );
        assert_eq!(fixture.held(&bench.emu), ids(4), "{kind}: held after prune");
        eprintln!("{kind}: skipped prune: the kind cannot remove users (checked)");
    }
    bench.shutdown().await;
}

// ---- registration ----

/// `contract!(kind => Fixture, ...)`: one module per kind with one test per case, and
/// [`FIXTURES`], the list the registry check reads.
macro_rules! contract {
    ($($kind:ident => $fixture:expr),* $(,)?) => {
        /// Every registered fixture.
        static FIXTURES: &[&dyn Fixture] = &[$(&$fixture),*];
        $(contract!(@kind $kind $fixture);)*
    };
    (@kind $kind:ident $fixture:expr) => {
        mod $kind {
            use super::*;
            contract!(@cases $fixture;
                upload, unchanged_rerun, changed_photo, unknown_user, rejected_face,
                throttling, server_errors, dropped_connections, credentials_refused, abilities);

            #[test]
            fn fixture_names_this_kind() {
                assert_eq!($fixture.kind(), stringify!($kind));
            }
        }
    };
    (@cases $fixture:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case(&$fixture).await;
            }
        )*
    };
}

contract! {
    feishu => Feishu,
    vzicloud => Vzicloud,
    hikvision => Hikvision,
}

#[test]
fn every_registered_kind_has_a_fixture() {
    let missing: Vec<&str> = facesync::targets::registry::KINDS
        .iter()
        .map(|k| k.name())
        .filter(|name| !FIXTURES.iter().any(|f| f.kind() == *name))
        .collect();
    assert!(
        missing.is_empty(),
        "kinds without a fixture in tests/contract.rs (add one to `contract!`): {missing:?}"
    );
}
