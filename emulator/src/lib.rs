//! A local stand-in for Feishu ACS and VziCloud FRS, strict as the vendors' docs read: the demo,
//! the tests and admins trying a config talk to it instead of the real clouds.
//!
//! One server answers both clouds on one port: Feishu under `/open-apis`, VziCloud under `/v2`,
//! Hikvision access-control terminals under `/hikvision/<terminal>` ([`Emulator::hikvision_url`]),
//! and the inspection path [`STATS_PATH`]. A request the real service would refuse is refused
//! with the same HTTP status and vendor code. Knobs in [`EmulatorConfig`] add what a real cloud
//! does on a bad day: rate limits, latency, 5xx answers, dropped connections, an exhausted quota,
//! expiring tokens, users that do not exist. Every random choice is drawn from the seed, so a
//! run of sequential requests is reproducible.
//!
//! The terminals (DS-K1T341AM, ISAPI, [`HikvisionConfig`]) each hold their own persons, faces,
//! nonces, failed logins, lock and searches. Every request needs HTTP Digest (RFC 7616, MD5 or
//! SHA-256) with a short-lived nonce; wrong passwords lock the account; persons and faces are
//! written and searched as the reference describes (`ResponseStatus` answers, the reference's
//! codes), photos must be baseline 4:2:0 JPEGs showing a face; and a terminal can be busy while
//! it models a face (`deviceBusy`), show a face only some time after its OK, or lose a write.
//!
//! The emulator shares no code with facesync: this crate does not depend on it (the compiler
//! checks that), and has its own VziCloud signature check (written from SIGNATURE.md), face
//! detector and secret type, so a client bug cannot be mirrored by an emulator bug.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use facesync_emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::start(EmulatorConfig::default(), "127.0.0.1:0".parse().unwrap()).await?;
//! let base_url = emulator.base_url(); // http://127.0.0.1:PORT, both clouds
//! let door1 = emulator.hikvision_url("door1"); // http://127.0.0.1:PORT/hikvision/door1
//! // ... point a client at base_url ...
//! println!("{:?}", emulator.stats().requests);
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```

mod contact;
mod detect;
mod faces;
mod faults;
mod feishu;
mod hikvision;
mod secret;
mod server;
mod signature;
mod state;
mod vzicloud;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use self::feishu::UserIdType;
pub use secret::Secret;

pub use faces::FaceLocation;
pub use hikvision::{
    DEMO_HIKVISION_PASSWORD, DEMO_HIKVISION_USERNAME, DigestAlgorithm, HikvisionConfig, StaleReply,
};
pub use state::{FaultStats, Stats, VziCloudFace};

/// The Feishu app id the default configuration accepts.
pub const DEMO_FEISHU_APP_ID: &str = "cli_demo";
/// The Feishu app secret the default configuration accepts.
pub const DEMO_FEISHU_APP_SECRET: &str = "demo-feishu-secret";
/// The VziCloud access key id the default configuration accepts.
pub const DEMO_VZICLOUD_ACCESSKEY_ID: &str = "demo_key";
/// The VziCloud access key secret the default configuration accepts.
pub const DEMO_VZICLOUD_ACCESSKEY_SECRET: &str = "demo-vzicloud-secret";
/// The VziCloud application id the default configuration serves.
pub const DEMO_VZICLOUD_APP_ID: u64 = 2;
/// The reserved path that answers the emulator's [`Stats`] as JSON.
pub const STATS_PATH: &str = "/__emulator/stats";

/// What the emulator accepts and how it misbehaves. `Default` accepts the demo credentials and
/// behaves like a healthy cloud where every Feishu user exists.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Feishu: the app id and secret the token endpoint accepts.
    pub feishu_app_id: String,
    pub feishu_app_secret: Secret,
    /// VziCloud: the one access key it knows, and the one application id it serves.
    pub vzicloud_accesskey_id: String,
    pub vzicloud_accesskey_secret: Secret,
    pub vzicloud_app_id: u64,
    /// Feishu users (by `user_id`) that are in an access-control permission group. `None`: every
    /// user exists. The others are refused with 1490101.
    pub users: Option<Vec<String>>,
    /// Feishu users (by `user_id`) that do not exist even when `users` is `None`.
    pub absent_users: Vec<String>,
    /// Feishu's contact directory: who `batch_get_id` finds by e-mail or mobile. A resigned
    /// user is found only when the request includes resigned users, and is in no access group.
    pub directory: Vec<DirectoryUser>,
    /// VziCloud groups that exist from the start (others must be created first).
    pub vzicloud_groups: Vec<String>,
    /// How long a Feishu tenant access token lives (the real one: 2 h).
    pub token_lifetime: Duration,
    /// Asking for a token when less than this remains of the current one issues a new one (the
    /// old stays valid until it expires); asking earlier returns the current one (real: 30 min).
    pub token_refresh_window: Duration,
    /// Feishu: requests per `rate_window` each API accepts before answering HTTP 429, code
    /// 99991400, with `x-ogw-ratelimit-limit` and `x-ogw-ratelimit-reset`. `None`: no limit.
    pub feishu_rate_limit: Option<u32>,
    /// VziCloud: signed requests per `rate_window` before 1016. `None`: no limit.
    pub vzicloud_qps: Option<u32>,
    /// The sliding window both rate limits count in (default 1 s, so the limits are per second).
    pub rate_window: Duration,
    /// Added before every cloud request is answered.
    pub latency: Duration,
    /// Share (0 to 1) of requests answered with a server error (Feishu HTTP 500, VziCloud
    /// HTTP 503 with 1108) before anything is done.
    pub error_rate: f64,
    /// Share (0 to 1) of requests whose connection is closed without an answer, before
    /// anything is done.
    pub drop_rate: f64,
    /// VziCloud: signed requests served in total before every further one gets 1017.
    pub quota: Option<u64>,
    /// Seeds faults, tokens, face ids and log ids: the same requests in the same order get the
    /// same answers.
    pub seed: u64,
    /// Detect faces in uploads (1490108 / 3002 when there is none; a terminal's
    /// `SubpicAnalysisModelingError`). Off: any image decodes (any decodable JPEG models).
    pub face_check: bool,
    /// Feishu scopes the app was not granted (`acs:users`, `contact:user.id:readonly`): the
    /// APIs needing one answer 99991672.
    pub feishu_missing_scopes: Vec<String>,
    /// Seconds (signed) added to the emulator's clock: the `Date` header of every answer,
    /// VziCloud's signature expiry check, and the terminals' `System/time`. A skewed server.
    pub clock_offset: i64,
    /// The Hikvision terminals and their knobs. `latency`, `error_rate` (HTTP 500, no body),
    /// `drop_rate`, `seed` and `face_check` apply to them too.
    pub hikvision: HikvisionConfig,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            feishu_app_id: DEMO_FEISHU_APP_ID.to_string(),
            feishu_app_secret: Secret::new(DEMO_FEISHU_APP_SECRET),
            vzicloud_accesskey_id: DEMO_VZICLOUD_ACCESSKEY_ID.to_string(),
            vzicloud_accesskey_secret: Secret::new(DEMO_VZICLOUD_ACCESSKEY_SECRET),
            vzicloud_app_id: DEMO_VZICLOUD_APP_ID,
            users: None,
            absent_users: Vec::new(),
            directory: Vec::new(),
            vzicloud_groups: Vec::new(),
            token_lifetime: Duration::from_secs(2 * 3600),
            token_refresh_window: Duration::from_secs(30 * 60),
            feishu_rate_limit: None,
            vzicloud_qps: None,
            rate_window: Duration::from_secs(1),
            latency: Duration::ZERO,
            error_rate: 0.0,
            drop_rate: 0.0,
            quota: None,
            seed: 0,
            face_check: true,
            feishu_missing_scopes: Vec::new(),
            clock_offset: 0,
            hikvision: HikvisionConfig::default(),
        }
    }
}

impl EmulatorConfig {
    /// Checks the knobs; the message names the knob and its allowed range.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("drop_rate", self.drop_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, not {rate}"));
            }
        }
        if self.error_rate + self.drop_rate > 1.0 {
            return Err("error_rate + drop_rate must not exceed 1".to_string());
        }
        for (name, limit) in [
            ("feishu_rate_limit", self.feishu_rate_limit),
            ("vzicloud_qps", self.vzicloud_qps),
        ] {
            if limit == Some(0) {
                return Err(format!(
                    "{name} must be at least 1 (leave it unset for no limit)"
                ));
            }
        }
        if self.token_lifetime.is_zero() {
            return Err("token_lifetime must be longer than zero".to_string());
        }
        if self.rate_window.is_zero() {
            return Err("rate_window must be longer than zero".to_string());
        }
        if self.feishu_app_id.is_empty() || self.vzicloud_accesskey_id.is_empty() {
            return Err(
                "the Feishu app id and the VziCloud access key id must not be empty".into(),
            );
        }
        self.hikvision.validate()
    }
}

/// A person in Feishu's contact directory (the emulator's `directory` knob).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DirectoryUser {
    /// The tenant's `user_id`; `open_id` and `union_id` follow from it ([`feishu_user_id_as`]).
    pub user_id: String,
    /// Matched case-insensitively.
    pub email: Option<String>,
    /// Matched as written, or without its `+86` country code.
    pub mobile: Option<String>,
    pub resigned: bool,
}

impl DirectoryUser {
    /// Reads a directory CSV: a header naming `user_id` and any of `email`, `mobile`,
    /// `resigned` (`true`/`false`, `1`/`0`, `yes`/`no`; empty is false).
    pub fn parse_csv(text: &str) -> Result<Vec<DirectoryUser>, String> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| format!("cannot read the header: {e}"))?
            .iter()
            .map(str::to_lowercase)
            .collect();
        let column = |name: &str| header.iter().position(|h| h == name);
        let user_id = column("user_id")
            .ok_or("the header names no `user_id` column (user_id,email,mobile,resigned)")?;
        let (email, mobile, resigned) = (column("email"), column("mobile"), column("resigned"));
        let mut users = Vec::new();
        for (n, record) in reader.records().enumerate() {
            let line = n + 2;
            let record = record.map_err(|e| format!("line {line}: {e}"))?;
            let cell = |i: Option<usize>| {
                i.and_then(|i| record.get(i))
                    .map(str::to_string)
                    .filter(|v| !v.is_empty())
            };
            let Some(id) = cell(Some(user_id)) else {
                return Err(format!("line {line}: empty user_id"));
            };
            let resigned = match cell(resigned).map(|v| v.to_lowercase()).as_deref() {
                None | Some("false" | "0" | "no") => false,
                Some("true" | "1" | "yes") => true,
                Some(other) => {
                    return Err(format!(
                        "line {line}: resigned `{other}` is not true or false"
                    ));
                }
            };
            users.push(DirectoryUser {
                user_id: id,
                email: cell(email),
                mobile: cell(mobile),
                resigned,
            });
        }
        Ok(users)
    }
}

/// A running emulator. Dropping it stops it too; [`Emulator::shutdown`] also waits.
pub struct Emulator {
    shared: Arc<state::Shared>,
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Emulator {
    /// Binds `addr` (use `127.0.0.1:0` in tests for a free port) and serves in the background.
    pub async fn start(config: EmulatorConfig, addr: SocketAddr) -> std::io::Result<Emulator> {
        config
            .validate()
            .map_err(|m| std::io::Error::new(std::io::ErrorKind::InvalidInput, m))?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(state::Shared::new(config));
        let (stop, stopped) = oneshot::channel::<()>();
        let app = server::app(shared.clone());
        let task = tokio::spawn(server::serve(listener, app, async move {
            let _ = stopped.await;
        }));
        Ok(Emulator {
            shared,
            addr,
            stop,
            task,
        })
    }

    /// `http://HOST:PORT`: the base URL of both clouds (Feishu under `/open-apis`, VziCloud
    /// under `/v2`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The knobs it runs with.
    pub fn config(&self) -> &EmulatorConfig {
        &self.shared.config
    }

    /// Requests by kind, refusals by kind and code, faults, and what each user holds.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The bytes of the face a Feishu user (by `user_id`) holds, exactly as uploaded.
    pub fn feishu_face(&self, user_id: &str) -> Option<Vec<u8>> {
        self.shared.feishu_face(user_id)
    }

    /// The users of a VziCloud group, sorted; empty when the group does not exist.
    pub fn vzicloud_users(&self, group_id: &str) -> Vec<String> {
        self.shared.vzicloud_users(group_id)
    }

    /// The faces a VziCloud user holds (with their ids and bytes), oldest first.
    pub fn vzicloud_faces(&self, group_id: &str, user_id: &str) -> Vec<VziCloudFace> {
        self.shared.vzicloud_faces(group_id, user_id)
    }

    /// The VziCloud groups, sorted.
    pub fn vzicloud_groups(&self) -> Vec<String> {
        self.shared.vzicloud_groups()
    }

    /// Deletes a Feishu user's face, as an admin can in the Feishu console (the API has no
    /// such call): their `face_uploaded` turns false. False when they held none.
    pub fn remove_feishu_face(&self, user_id: &str) -> bool {
        state::lock(&self.shared.feishu)
            .faces
            .remove(user_id)
            .is_some()
    }

    /// Deletes a user of a VziCloud group, as another client of the same app could. False when
    /// there was no such user.
    pub fn remove_vzicloud_user(&self, group_id: &str, user_id: &str) -> bool {
        state::lock(&self.shared.vzicloud)
            .groups
            .get_mut(group_id)
            .is_some_and(|g| g.users.remove(user_id).is_some())
    }

    /// Adds a user without a face to a VziCloud group (made if missing), as another client of
    /// the same app could: for lists longer than a test cares to upload.
    pub fn add_vzicloud_user(&self, group_id: &str, user_id: &str) {
        let mut state = state::lock(&self.shared.vzicloud);
        let group = state
            .groups
            .entry(group_id.to_string())
            .or_insert_with(|| state::Group {
                name: String::new(),
                remark: String::new(),
                create_time: 0,
                users: Default::default(),
            });
        group.users.insert(
            user_id.to_string(),
            state::VziUser {
                name: String::new(),
                info: String::new(),
                remark: String::new(),
                create_time: 0,
                faces: Vec::new(),
            },
        );
    }

    /// `{base_url}/hikvision/{terminal}`: the base URL of one Hikvision terminal (its ISAPI
    /// paths follow: `.../hikvision/door1/ISAPI/System/deviceInfo`).
    pub fn hikvision_url(&self, terminal: &str) -> String {
        format!("{}{}{terminal}", self.base_url(), hikvision::PREFIX)
    }

    /// The employeeNos a terminal holds, sorted; empty for an unknown terminal.
    pub fn hikvision_persons(&self, terminal: &str) -> Vec<String> {
        self.shared.hikvision_persons(terminal)
    }

    /// The `UserInfo` object a terminal stores for a person, as sent (Modify's fields merged).
    pub fn hikvision_person(&self, terminal: &str, employee_no: &str) -> Option<serde_json::Value> {
        self.shared.hikvision_person(terminal, employee_no)
    }

    /// The FPIDs holding a face a search would show (stored, and past `late_write`), sorted.
    pub fn hikvision_faces(&self, terminal: &str) -> Vec<String> {
        self.shared.hikvision_faces(terminal)
    }

    /// The bytes of a person's visible face, exactly as uploaded.
    pub fn hikvision_face(&self, terminal: &str, employee_no: &str) -> Option<Vec<u8>> {
        self.shared.hikvision_face(terminal, employee_no)
    }

    /// Failed logins in a row a terminal has counted (a successful login resets the count, and
    /// so does the end of a lock).
    pub fn hikvision_login_failures(&self, terminal: &str) -> u32 {
        self.shared.hikvision_login_failures(terminal)
    }

    /// A terminal's requests by api key (`hikvision.user_record`, `hikvision.challenge`, ...).
    pub fn hikvision_requests(&self, terminal: &str) -> BTreeMap<String, u64> {
        self.shared.hikvision_requests(terminal)
    }

    /// Stops accepting, closes every connection, and waits for the server task to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// How the emulator spells a Feishu user's id in `kind`, given their `user_id`.
///
/// The mapping is the emulator's own (the real one is Feishu's secret), deterministic and
/// reversible: `user_id` is the id itself, `open_id` is `ou_` and `union_id` is `on_` followed
/// by the lower-case hex of the user id's UTF-8 bytes (`E1001` is `ou_4531303031`).
pub fn feishu_user_id_as(user_id: &str, kind: UserIdType) -> String {
    feishu::id_as(user_id, kind)
}
