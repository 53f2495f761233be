//! Emulated Hikvision access-control terminals (DS-K1T341AM, ISAPI), as strict as
//! `reference/hikvision-isapi.md` reads: each terminal named in [`HikvisionConfig::terminals`]
//! is served under `/hikvision/<terminal>` on the emulator's one port, with its own persons,
//! faces, nonces, failed-login counter, lock, busy flag and searches.
//!
//! - Every ISAPI request needs HTTP Digest (RFC 7616, `qop=auth`, MD5 or SHA-256 as the knob
//!   says, `-sess` accepted; [`digest`]). A request without credentials, or with Basic, gets the
//!   challenge; a wrong password or user counts as a failed login and `lockout_after` of them
//!   lock the account for `lockout_for` (every request then gets `lockStatus lock`). A nonce
//!   lives `nonce_lifetime` and serves `nonce_max_uses` requests; after that a correct response
//!   gets the [`StaleReply`] the knob names.
//! - Persons (`UserInfo` Record / Modify / SetUp / Search / Delete, [`persons`]) and faces in
//!   FDID 1 (`FaceDataRecord` / `FDSetUp` / `FDModify` multipart uploads, `FDSearch`,
//!   `FDSearch/Delete`, [`face`]), with capacities, the searchID rules, and a photo check of
//!   the JPEG's markers ([`jpeg`]) and of the face (`face_check`).
//! - The trouble real terminals make: `busy_time` (a face write holds the terminal, which
//!   answers `deviceBusy` to everything else meanwhile), `late_write` (a face shows in searches
//!   only that long after the OK), `lost_writes` (a first write answered OK and dropped).
//! - Answers are ISAPI's `ResponseStatus`, with the codes of one table ([`status`]).
//!
//! All times are tokio's, so tests with a paused clock can move nonces, locks and late writes.

mod digest;
mod face;
mod jpeg;
mod persons;
mod status;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::faults::{self, Api, Fate, Refusal};
use crate::secret::Secret;
use crate::server::MAX_BODY;
use crate::state::{Shared, lock};
use status::{Refused, XML};

/// The Hikvision user name the default configuration accepts.
pub const DEMO_HIKVISION_USERNAME: &str = "admin";
/// The Hikvision password the default configuration accepts.
pub const DEMO_HIKVISION_PASSWORD: &str = "demo-hikvision-password";

/// The path prefix terminals are served under: `/hikvision/<terminal>/ISAPI/...`.
pub(crate) const PREFIX: &str = "/hikvision/";

/// The model every terminal reports, and names its realm after.
const MODEL: &str = "DS-K1T341AM";
/// `FDNameMaxLen`: the longest `name` a face record takes, in bytes.
const FD_NAME_MAX_BYTES: usize = 48;
/// `maxResults` of a search: at most this many per page.
const MAX_RESULTS: u64 = 30;
/// The longest `searchID` taken.
const SEARCH_ID_MAX: usize = 32;

/// The digest algorithm a terminal's challenge names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// `algorithm=MD5` (`MD5-sess` accepted too).
    #[default]
    Md5,
    /// `algorithm=SHA-256` (`SHA-256-sess` accepted too).
    Sha256,
}

/// How a terminal answers a correct response over a stale (expired or used-up) nonce; the
/// three replies seen on real firmware (reference §1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StaleReply {
    /// 401 with a new challenge carrying `stale="true"`.
    #[default]
    Stale,
    /// 401 with a new challenge and no stale flag (`stale="FALSE"`, as a first challenge).
    Bare,
    /// The 401 of a wrong password: a new challenge without the stale flag, and it counts as a
    /// failed login (DS-K1T804AMF).
    CountsAsFailure,
}

/// The Hikvision terminals' knobs ([`crate::EmulatorConfig::hikvision`]). `Default` serves
/// `door1` and `door2` with the demo credentials and behaves like a healthy DS-K1T341AM.
#[derive(Clone, Debug)]
pub struct HikvisionConfig {
    /// The terminals served, each under `/hikvision/<name>`: distinct names of 1 to 32 letters,
    /// digits, `_` or `-`.
    pub terminals: Vec<String>,
    /// The one account every terminal has: its user name ...
    pub username: String,
    /// ... and its password.
    pub password: Secret,
    /// The algorithm the challenge names.
    pub algorithm: DigestAlgorithm,
    /// How long a nonce is good for after it was issued (real terminals: about 3 s).
    pub nonce_lifetime: Duration,
    /// How many requests one nonce serves (K1T323: about 8).
    pub nonce_max_uses: u32,
    /// The answer to a correct response over a stale nonce.
    pub stale_reply: StaleReply,
    /// Failed logins (in a row: a success resets the count) that lock the account ...
    pub lockout_after: u32,
    /// ... for this long.
    pub lockout_for: Duration,
    /// Persons a terminal holds at most (`UserInfo` `maxRecordNum`).
    pub max_persons: u32,
    /// Faces a terminal holds at most (`FDRecordDataMaxNum`).
    pub max_faces: u32,
    /// Whether `UserInfo/SetUp` and `FDSetUp` exist (listed as `setUp` in the capabilities);
    /// false: they answer `notSupport`.
    pub setup: bool,
    /// How long a face write keeps the terminal busy ("modelling") before its OK; any
    /// authenticated request arriving meanwhile gets `deviceBusy`. Zero: no wait.
    pub busy_time: Duration,
    /// How long after its OK a stored face shows in searches and counts.
    pub late_write: Duration,
    /// FPIDs whose first face write is answered OK and never stored.
    pub lost_writes: Vec<String>,
    /// The largest photo taken, in bytes (larger: `badJsonFormat` `faceURL`).
    pub max_photo_bytes: usize,
    /// The longest person `name`, in bytes (`UserInfo` `name` `@max`).
    pub name_max_bytes: usize,
}

impl Default for HikvisionConfig {
    fn default() -> Self {
        Self {
            terminals: vec!["door1".to_string(), "door2".to_string()],
            username: DEMO_HIKVISION_USERNAME.to_string(),
            password: Secret::new(DEMO_HIKVISION_PASSWORD),
            algorithm: DigestAlgorithm::Md5,
            nonce_lifetime: Duration::from_secs(3),
            nonce_max_uses: 8,
            stale_reply: StaleReply::Stale,
            lockout_after: 5,
            lockout_for: Duration::from_secs(1800),
            max_persons: 1500,
            max_faces: 1500,
            setup: true,
            busy_time: Duration::ZERO,
            late_write: Duration::ZERO,
            lost_writes: Vec::new(),
            max_photo_bytes: 200 * 1024,
            name_max_bytes: 128,
        }
    }
}

impl HikvisionConfig {
    /// Checks the knobs; the message names the knob (as `hikvision.<knob>`) and what it takes.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = HashSet::new();
        for name in &self.terminals {
            if !is_terminal_name(name) {
                return Err(format!(
                    "hikvision.terminals: `{name}` is not 1 to 32 letters, digits, `_` or `-`"
                ));
            }
            if !seen.insert(name) {
                return Err(format!("hikvision.terminals: `{name}` is named twice"));
            }
        }
        if self.username.is_empty() || self.username.contains(['"', ':', '\\']) {
            return Err("hikvision.username must not be empty nor hold `\"`, `:` or `\\`".into());
        }
        for (name, d) in [
            ("nonce_lifetime", self.nonce_lifetime),
            ("lockout_for", self.lockout_for),
        ] {
            if d.is_zero() {
                return Err(format!("hikvision.{name} must be longer than zero"));
            }
        }
        for (name, n) in [
            ("nonce_max_uses", self.nonce_max_uses),
            ("lockout_after", self.lockout_after),
            ("max_persons", self.max_persons),
            ("max_faces", self.max_faces),
        ] {
            if n == 0 {
                return Err(format!("hikvision.{name} must be at least 1"));
            }
        }
        for (name, n) in [
            ("max_photo_bytes", self.max_photo_bytes),
            ("name_max_bytes", self.name_max_bytes),
        ] {
            if n == 0 {
                return Err(format!("hikvision.{name} must be at least 1"));
            }
        }
        if let Some(id) = self.lost_writes.iter().find(|id| !is_employee_no(id)) {
            return Err(format!(
                "hikvision.lost_writes: `{id}` is not an employeeNo (1 to 32 bytes)"
            ));
        }
        Ok(())
    }
}

/// A terminal name: 1 to 32 of `[A-Za-z0-9_-]`.
fn is_terminal_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An `employeeNo` (and so an FPID): a string of 1 to 32 bytes.
fn is_employee_no(id: &str) -> bool {
    (1..=32).contains(&id.len())
}

// ---- state ----

/// Every terminal's state, by name; each behind its own short-lived lock.
pub(crate) struct Terminals {
    by_name: BTreeMap<String, Mutex<Terminal>>,
}

impl Terminals {
    pub(crate) fn new(config: &HikvisionConfig, seed: u64) -> Self {
        let by_name = config
            .terminals
            .iter()
            .map(|name| {
                let mut hasher = blake3::Hasher::new();
                hasher.update(&seed.to_le_bytes());
                hasher.update(b"hikvision-opaque");
                hasher.update(name.as_bytes());
                let terminal = Terminal {
                    opaque: hasher.finalize().to_hex()[..32].to_string(),
                    ..Terminal::default()
                };
                (name.clone(), Mutex::new(terminal))
            })
            .collect();
        Self { by_name }
    }

    fn get(&self, name: &str) -> Option<&Mutex<Terminal>> {
        self.by_name.get(name)
    }
}

/// One terminal.
#[derive(Default)]
struct Terminal {
    /// The stored `UserInfo` objects, by employeeNo.
    persons: BTreeMap<String, Map<String, Value>>,
    /// Faces in FDID 1, by FPID (= employeeNo), visible or not yet.
    faces: BTreeMap<String, Face>,
    nonces: HashMap<String, Nonce>,
    opaque: String,
    /// Failed logins in a row.
    failures: u32,
    locked_until: Option<Instant>,
    busy_until: Option<Instant>,
    /// Person searches by searchID: the position each continues at.
    user_searches: HashMap<String, u64>,
    /// Face searches by searchID.
    face_searches: HashMap<String, u64>,
    /// FPIDs of `lost_writes` whose first write was dropped already.
    lost: HashSet<String>,
    /// Requests by api key.
    requests: BTreeMap<String, u64>,
}

struct Nonce {
    issued: Instant,
    uses: u32,
    /// The `nc` values already used with it (a repeat is a replay).
    counts: HashSet<String>,
}

/// A stored face.
struct Face {
    bytes: Vec<u8>,
    visible_at: Instant,
}

impl Face {
    fn visible(&self, now: Instant) -> bool {
        self.visible_at <= now
    }
}

impl Terminal {
    fn busy(&self, now: Instant) -> bool {
        self.busy_until.is_some_and(|until| now < until)
    }

    fn visible_faces(&self, now: Instant) -> impl Iterator<Item = (&String, &Face)> {
        self.faces.iter().filter(move |(_, f)| f.visible(now))
    }
}

/// Where a search continues: `position` of a known searchID at any other place than where it
/// stopped is a reuse, answered with no match.
fn search_admits(searches: &HashMap<String, u64>, id: &str, position: u64) -> bool {
    searches.get(id).is_none_or(|next| *next == position)
}

// ---- inspection ----

impl Shared {
    fn terminal(&self, name: &str) -> Option<std::sync::MutexGuard<'_, Terminal>> {
        self.hikvision.get(name).map(lock)
    }

    pub(crate) fn hikvision_persons(&self, terminal: &str) -> Vec<String> {
        self.terminal(terminal)
            .map(|t| t.persons.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn hikvision_person(&self, terminal: &str, employee_no: &str) -> Option<Value> {
        self.terminal(terminal)?
            .persons
            .get(employee_no)
            .map(|p| Value::Object(p.clone()))
    }

    pub(crate) fn hikvision_faces(&self, terminal: &str) -> Vec<String> {
        let now = Instant::now();
        self.terminal(terminal)
            .map(|t| t.visible_faces(now).map(|(id, _)| id.clone()).collect())
            .unwrap_or_default()
    }

    pub(crate) fn hikvision_face(&self, terminal: &str, employee_no: &str) -> Option<Vec<u8>> {
        let now = Instant::now();
        self.terminal(terminal)?
            .faces
            .get(employee_no)
            .filter(|f| f.visible(now))
            .map(|f| f.bytes.clone())
    }

    pub(crate) fn hikvision_login_failures(&self, terminal: &str) -> u32 {
        let now = Instant::now();
        self.terminal(terminal)
            .filter(|t| t.locked_until.is_none_or(|until| now < until))
            .map(|t| t.failures)
            .unwrap_or(0)
    }

    pub(crate) fn hikvision_requests(&self, terminal: &str) -> BTreeMap<String, u64> {
        self.terminal(terminal)
            .map(|t| t.requests.clone())
            .unwrap_or_default()
    }

    /// Counts a request in the stats and in its terminal's own counts.
    fn count_hikvision(&self, terminal: &str, api: Api) {
        self.count_request(api);
        if let Some(mut t) = self.terminal(terminal) {
            *t.requests.entry(api.name().to_string()).or_insert(0) += 1;
        }
    }
}

// ---- endpoints ----

/// What an endpoint does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    DeviceInfo,
    SystemTime,
    AccessCapabilities,
    UserCapabilities,
    UserCount,
    FaceCapabilities,
    FaceCount,
    UserWrite(persons::Write),
    UserSearch,
    UserDelete,
    FaceWrite(face::Write),
    FaceSearch,
    FaceDelete,
}

/// The ISAPI paths a terminal serves: path, method, what it does, its api key, and whether
/// it answers JSON (and so needs `?format=json`).
const ENDPOINTS: [(&str, Method, Op, Api, bool); 17] = [
    (
        "/ISAPI/System/deviceInfo",
        Method::GET,
        Op::DeviceInfo,
        Api::HikDeviceInfo,
        false,
    ),
    (
        "/ISAPI/System/time",
        Method::GET,
        Op::SystemTime,
        Api::HikSystemTime,
        false,
    ),
    (
        "/ISAPI/AccessControl/capabilities",
        Method::GET,
        Op::AccessCapabilities,
        Api::HikAccessCapabilities,
        false,
    ),
    (
        "/ISAPI/AccessControl/UserInfo/capabilities",
        Method::GET,
        Op::UserCapabilities,
        Api::HikUserCapabilities,
        true,
    ),
    (
        "/ISAPI/AccessControl/UserInfo/Count",
        Method::GET,
        Op::UserCount,
        Api::HikUserCount,
        true,
    ),
    (
        "/ISAPI/Intelligent/FDLib/capabilities",
        Method::GET,
        Op::FaceCapabilities,
        Api::HikFaceCapabilities,
        true,
    ),
    (
        "/ISAPI/Intelligent/FDLib/Count",
        Method::GET,
        Op::FaceCount,
        Api::HikFaceCount,
        true,
    ),
    (
        "/ISAPI/AccessControl/UserInfo/Record",
        Method::POST,
        Op::UserWrite(persons::Write::Record),
        Api::HikUserRecord,
        true,
    ),
    (
        "/ISAPI/AccessControl/UserInfo/Modify",
        Method::PUT,
        Op::UserWrite(persons::Write::Modify),
        Api::HikUserModify,
        true,
    ),
    (
        "/ISAPI/AccessControl/UserInfo/SetUp",
        Method::PUT,
        Op::UserWrite(persons::Write::SetUp),
        Api::HikUserSetup,
        true,
    ),
    (
        "/ISAPI/AccessControl/UserInfo/Search",
        Method::POST,
        Op::UserSearch,
        Api::HikUserSearch,
        true,
    ),
    (
        "/ISAPI/AccessControl/UserInfo/Delete",
        Method::PUT,
        Op::UserDelete,
        Api::HikUserDelete,
        true,
    ),
    (
        "/ISAPI/Intelligent/FDLib/FaceDataRecord",
        Method::POST,
        Op::FaceWrite(face::Write::Record),
        Api::HikFaceRecord,
        true,
    ),
    (
        "/ISAPI/Intelligent/FDLib/FDSetUp",
        Method::PUT,
        Op::FaceWrite(face::Write::SetUp),
        Api::HikFaceSetup,
        true,
    ),
    (
        "/ISAPI/Intelligent/FDLib/FDModify",
        Method::PUT,
        Op::FaceWrite(face::Write::Modify),
        Api::HikFaceModify,
        true,
    ),
    (
        "/ISAPI/Intelligent/FDLib/FDSearch",
        Method::POST,
        Op::FaceSearch,
        Api::HikFaceSearch,
        true,
    ),
    (
        "/ISAPI/Intelligent/FDLib/FDSearch/Delete",
        Method::PUT,
        Op::FaceDelete,
        Api::HikFaceDelete,
        true,
    ),
];

/// What a request asks for.
enum Route {
    /// A known path with its method.
    Serve { op: Op, api: Api, json: bool },
    /// A known path with another method: `methodNotAllowed` (a search read with GET: 404).
    WrongMethod {
        api: Api,
        not_found: bool,
        json: bool,
    },
    /// A path no terminal serves.
    Unknown,
}

fn route(method: &Method, path: &str) -> Route {
    let Some((_, want, op, api, json)) = ENDPOINTS.iter().find(|(p, ..)| *p == path) else {
        return Route::Unknown;
    };
    if method == want {
        Route::Serve {
            op: *op,
            api: *api,
            json: *json,
        }
    } else {
        Route::WrongMethod {
            api: *api,
            not_found: *op == Op::UserSearch && method == Method::GET,
            json: *json,
        }
    }
}

/// The answer to every request under `/hikvision/`: the terminal, the faults, the digest
/// check, the busy flag, then the endpoint.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let full = request.uri().path().to_string();
    let Some((terminal, path)) = full
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('/'))
        .map(|(t, p)| (t.to_string(), format!("/{p}")))
        .filter(|(t, _)| shared.hikvision.get(t).is_some())
    else {
        faults::drain(request).await;
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    };
    let request_url = match request.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let route = route(request.method(), &path);
    let endpoint_api = match route {
        Route::Serve { api, .. } | Route::WrongMethod { api, .. } => api,
        Route::Unknown => Api::HikUnknown,
    };
    let config = &shared.config;
    let fate = shared
        .limits
        .fate(config.seed, config.drop_rate, config.error_rate);
    if fate != Fate::Serve {
        shared.count_hikvision(&terminal, endpoint_api);
    }
    let request = match faults::apply(&shared, endpoint_api, fate, request).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    if let Some((api, response)) = authenticate(&shared, &terminal, &request) {
        shared.count_hikvision(&terminal, api);
        faults::record(&shared, api, &response);
        faults::drain(request).await;
        return response;
    }
    shared.count_hikvision(&terminal, endpoint_api);
    let busy = shared
        .terminal(&terminal)
        .is_some_and(|t| t.busy(Instant::now()));
    let response = match route {
        _ if busy => {
            faults::drain(request).await;
            let xml = matches!(route, Route::Serve { json: false, .. });
            Refused::new(status::DEVICE_BUSY, "busy").answer(&request_url, xml)
        }
        Route::Unknown => {
            faults::drain(request).await;
            Refused::new(status::NOT_FOUND, "notSupport").answer(&request_url, false)
        }
        Route::WrongMethod {
            not_found, json, ..
        } => {
            faults::drain(request).await;
            let code = if not_found {
                status::NOT_FOUND
            } else {
                status::METHOD_NOT_ALLOWED
            };
            Refused::new(code, "method").answer(&request_url, !json)
        }
        Route::Serve { op, json, .. } => {
            let at = Call {
                shared: &shared,
                terminal: &terminal,
                request_url: &request_url,
            };
            match serve(&at, op, json, request).await {
                Ok(response) => response,
                Err(refused) => refused.answer(&request_url, !json),
            }
        }
    };
    faults::record(&shared, endpoint_api, &response);
    response
}

/// One authenticated request to one terminal.
struct Call<'a> {
    shared: &'a Arc<Shared>,
    terminal: &'a str,
    /// The path and query after the terminal prefix (a `ResponseStatus`'s `requestURL`).
    request_url: &'a str,
}

impl Call<'_> {
    fn config(&self) -> &HikvisionConfig {
        &self.shared.config.hikvision
    }

    /// The terminal's state; the terminal exists (checked before any call).
    fn state(&self) -> std::sync::MutexGuard<'_, Terminal> {
        lock(
            self.shared
                .hikvision
                .get(self.terminal)
                .expect("a call is made only to a configured terminal"),
        )
    }
}

async fn serve(at: &Call<'_>, op: Op, json: bool, request: Request) -> Result<Response, Refused> {
    let format_json = request
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "format" && v == "json"))
        .unwrap_or(false);
    if json && !format_json {
        faults::drain(request).await;
        return Err(Refused::bad("format"));
    }
    if let Op::FaceWrite(write) = op {
        return face::write(at, write, request).await;
    }
    let query = request.uri().query().unwrap_or("").to_string();
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|_| Refused::new(status::BAD_JSON_FORMAT, "body"))?;
    let now = Instant::now();
    let config = at.config();
    match op {
        Op::DeviceInfo => Ok(xml(device_info(at.terminal))),
        Op::SystemTime => Ok(xml(system_time(at.shared.now()))),
        Op::AccessCapabilities => Ok(xml(ACCESS_CAPABILITIES.to_string())),
        Op::UserCapabilities => Ok(axum::Json(persons::capabilities(config)).into_response()),
        Op::UserCount => {
            let t = at.state();
            let bound = t.visible_faces(now).count();
            Ok(axum::Json(json!({"UserInfoCount": {
                "userNumber": t.persons.len(),
                "bindFaceUserNumber": bound,
                "bindFingerprintUserNumber": 0,
                "bindCardUserNumber": 0,
            }}))
            .into_response())
        }
        Op::FaceCapabilities => Ok(axum::Json(face::capabilities(config)).into_response()),
        Op::FaceCount => {
            let faces = at.state().visible_faces(now).count();
            Ok(axum::Json(json!({"FDRecordDataInfo": [{
                "FDID": "1",
                "faceLibType": "blackFD",
                "name": "",
                "recordDataNumber": faces,
            }]}))
            .into_response())
        }
        Op::UserWrite(write) => persons::write(at, write, &body),
        Op::UserSearch => persons::search(at, &body),
        Op::UserDelete => persons::delete(at, &body),
        Op::FaceSearch => face::search(at, &body, &host),
        Op::FaceDelete => face::delete(at, &query, &body),
        Op::FaceWrite(_) => unreachable!("face writes are served above"),
    }
}

fn xml(body: String) -> Response {
    ([(header::CONTENT_TYPE, XML)], body).into_response()
}

/// `System/time` as the terminals answer it (XML even on current firmware): the local time
/// with its offset. The emulator's terminals keep UTC, on the emulator's clock.
fn system_time(now: std::time::SystemTime) -> String {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <Time version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\n\
         <timeMode>manual</timeMode>\n\
         <localTime>{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00</localTime>\n\
         <timeZone>CST+0:00:00</timeZone>\n</Time>\n",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
    )
}

/// The calendar date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn device_info(terminal: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(terminal.as_bytes());
    let serial = hasher.finalize().to_hex()[..9].to_uppercase();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <DeviceInfo version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\n\
         <deviceName>{}</deviceName>\n<deviceID>{}</deviceID>\n<model>{MODEL}</model>\n\
         <serialNumber>{MODEL}20240101V031601ENG{serial}</serialNumber>\n\
         <macAddress>00:00:5e:00:53:01</macAddress>\n<firmwareVersion>V3.16.1</firmwareVersion>\n\
         <firmwareReleasedDate>build 240101</firmwareReleasedDate>\n<deviceType>ACS</deviceType>\n\
         <subDeviceType>accessControlTerminal</subDeviceType>\n</DeviceInfo>\n",
        status::xml_escape(terminal),
        status::xml_escape(terminal),
    )
}

const ACCESS_CAPABILITIES: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<AccessControl version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\n\
<isSupportUserInfo>true</isSupportUserInfo>\n<isSupportFDLib>true</isSupportFDLib>\n\
<isSupportUserInfoDetailDelete>false</isSupportUserInfoDetailDelete>\n\
<isSupportCaptureFace>false</isSupportCaptureFace>\n\
<EmployeeNoInfo>\n<employeeNo min=\"1\" max=\"32\"/>\n</EmployeeNoInfo>\n</AccessControl>\n";

/// HTTP 500 with no body, for the `error_rate` knob.
pub(crate) fn server_error() -> Response {
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

// ---- authentication ----

/// The digest check of one request: `None` when it passes, else the 401 to answer with the api
/// key it counts under (`hikvision.challenge` or `hikvision.unauthorized`).
fn authenticate(shared: &Shared, terminal: &str, request: &Request) -> Option<(Api, Response)> {
    let config = &shared.config.hikvision;
    let realm = format!("{MODEL}({terminal})");
    let now = Instant::now();
    let Some(mut t) = shared.terminal(terminal) else {
        unreachable!("the terminal was looked up before")
    };
    if t.locked_until.is_some_and(|until| now >= until) {
        t.locked_until = None;
        t.failures = 0;
    }
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let parsed = header.and_then(digest::parse);
    let Some(parsed) = parsed else {
        tracing::debug!("hikvision {terminal}: no digest credentials, challenged");
        let response = unauthorized(shared, &mut t, &realm, now, false);
        return Some((Api::HikChallenge, response));
    };
    if t.locked_until.is_some() {
        tracing::debug!("hikvision {terminal}: the account is locked");
        return Some((
            Api::HikUnauthorized,
            unauthorized(shared, &mut t, &realm, now, false),
        ));
    }
    let uri = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let checked = parsed.and_then(|c| {
        let expected = digest::Expected {
            username: &config.username,
            password: config.password.expose(),
            realm: &realm,
            algorithm: config.algorithm,
            method: request.method().as_str(),
            uri,
        };
        digest::verify(&c, &expected).map(|()| c)
    });
    let credentials = match checked {
        Ok(c) => c,
        Err(why) => {
            tracing::debug!("hikvision {terminal}: failed login: {why}");
            return Some((
                Api::HikUnauthorized,
                failed_login(shared, &mut t, &realm, now),
            ));
        }
    };
    let lifetime = config.nonce_lifetime;
    let max_uses = config.nonce_max_uses;
    let nc = credentials.nc.unwrap_or_default();
    let fresh = match t.nonces.get_mut(&credentials.nonce) {
        Some(n) if now.duration_since(n.issued) < lifetime && n.uses < max_uses => {
            n.uses += 1;
            n.counts.insert(nc)
        }
        _ => false,
    };
    if !fresh {
        tracing::debug!(
            "hikvision {terminal}: a stale nonce ({:?})",
            config.stale_reply
        );
        let response = match config.stale_reply {
            StaleReply::Stale => unauthorized(shared, &mut t, &realm, now, true),
            StaleReply::Bare => unauthorized(shared, &mut t, &realm, now, false),
            StaleReply::CountsAsFailure => failed_login(shared, &mut t, &realm, now),
        };
        return Some((Api::HikUnauthorized, response));
    }
    t.failures = 0;
    None
}

/// A failed login: counted, locking the account at `lockout_after`, answered with a 401.
fn failed_login(shared: &Shared, t: &mut Terminal, realm: &str, now: Instant) -> Response {
    let config = &shared.config.hikvision;
    t.failures += 1;
    if t.failures >= config.lockout_after {
        t.locked_until = Some(now + config.lockout_for);
    }
    unauthorized(shared, t, realm, now, false)
}

/// HTTP 401: a fresh challenge and the `userCheck` body of the account's state.
fn unauthorized(
    shared: &Shared,
    t: &mut Terminal,
    realm: &str,
    now: Instant,
    stale: bool,
) -> Response {
    let config = &shared.config.hikvision;
    let nonce = issue_nonce(shared, t, now);
    let challenge = digest::challenge(realm, &nonce, &t.opaque, config.algorithm, stale);
    let (lock_status, unlock_time, retries) = match t.locked_until {
        Some(until) => (
            "lock",
            until.duration_since(now).as_secs_f64().ceil() as u64,
            0,
        ),
        None => ("unlock", 0, config.lockout_after.saturating_sub(t.failures)),
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<userCheck version=\"2.0\" \
         xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\n<statusValue>401</statusValue>\n\
         <statusString>Unauthorized</statusString>\n<lockStatus>{lock_status}</lockStatus>\n\
         <unlockTime>{unlock_time}</unlockTime>\n<retryLoginTime>{retries}</retryLoginTime>\n\
         </userCheck>\n"
    );
    let mut response = (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, challenge),
            (header::CONTENT_TYPE, XML.to_string()),
        ],
        body,
    )
        .into_response();
    response.extensions_mut().insert(Refusal(401));
    response
}

/// A new nonce, remembered with its time; nonces past their lifetime are forgotten (an
/// unknown nonce is as stale as an expired one).
fn issue_nonce(shared: &Shared, t: &mut Terminal, now: Instant) -> String {
    let lifetime = shared.config.hikvision.nonce_lifetime;
    t.nonces
        .retain(|_, n| now.duration_since(n.issued) < lifetime);
    let nonce = shared.next_id("hikvision-nonce");
    t.nonces.insert(
        nonce.clone(),
        Nonce {
            issued: now,
            uses: 0,
            counts: HashSet::new(),
        },
    );
    nonce
}

// ---- request bodies ----

/// The body as a JSON object (`badJsonFormat` otherwise).
fn object(body: &Bytes) -> Result<Map<String, Value>, Refused> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Refused::new(status::BAD_JSON_FORMAT, "JSON")),
    }
}

/// A string field of `map`: `lack` when absent, `badParameters` when not a string.
fn string<'a>(map: &'a Map<String, Value>, name: &str, path: &str) -> Result<&'a str, Refused> {
    match map.get(name) {
        None | Some(Value::Null) => Err(Refused::lack(path)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Refused::bad(path)),
    }
}

/// A whole number field of `map`: `lack` when absent, `badParameters` when not a number >= 0.
fn number(map: &Map<String, Value>, name: &str) -> Result<u64, Refused> {
    match map.get(name) {
        None | Some(Value::Null) => Err(Refused::lack(name)),
        Some(v) => v.as_u64().ok_or_else(|| Refused::bad(name)),
    }
}

/// A search's paging: `searchResultPosition` and `maxResults` (1 to 30).
fn paging(map: &Map<String, Value>) -> Result<(u64, u64), Refused> {
    let position = number(map, "searchResultPosition")?;
    let max = number(map, "maxResults")?;
    if !(1..=MAX_RESULTS).contains(&max) {
        return Err(Refused::bad("maxResults"));
    }
    Ok((position, max))
}

/// A searchID: at most 32 characters.
fn search_id(map: &Map<String, Value>, required: bool) -> Result<Option<String>, Refused> {
    match map.get("searchID") {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(Refused::lack("searchID")),
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= SEARCH_ID_MAX => {
            Ok(Some(s.clone()))
        }
        Some(_) => Err(Refused::bad("searchID")),
    }
}

/// `responseStatusStrg` of a page of `count` results at `position` of `total`.
fn response_status(position: u64, count: usize, total: usize) -> &'static str {
    if count == 0 {
        "NO MATCH"
    } else if position as usize + count < total {
        "MORE"
    } else {
        "OK"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_names_and_knobs_are_checked() {
        assert_eq!(HikvisionConfig::default().validate(), Ok(()));
        for (change, want) in [
            (
                (|c: &mut HikvisionConfig| c.terminals = vec!["a b".into()]) as fn(&mut _),
                "terminals",
            ),
            (|c| c.terminals = vec![String::new()], "terminals"),
            (|c| c.terminals = vec!["x".repeat(33)], "terminals"),
            (|c| c.terminals = vec!["d".into(), "d".into()], "twice"),
            (|c| c.nonce_max_uses = 0, "nonce_max_uses"),
            (|c| c.lockout_after = 0, "lockout_after"),
            (|c| c.nonce_lifetime = Duration::ZERO, "nonce_lifetime"),
            (|c| c.username = String::new(), "username"),
            (|c| c.lost_writes = vec!["x".repeat(33)], "lost_writes"),
        ] {
            let mut config = HikvisionConfig::default();
            change(&mut config);
            let err = config.validate().unwrap_err();
            assert!(err.contains(want), "{want}: {err}");
        }
        let ok = HikvisionConfig {
            terminals: vec!["Gate_7-b".into(), "x".repeat(32)],
            ..HikvisionConfig::default()
        };
        assert_eq!(ok.validate(), Ok(()));
    }

    #[test]
    fn system_time_is_the_local_time_with_its_offset() {
        let at = |secs: u64| system_time(std::time::UNIX_EPOCH + Duration::from_secs(secs));
        assert!(at(0).contains("<localTime>1970-01-01T00:00:00+00:00</localTime>"));
        // 2024-02-29 (a leap day) 13:14:15 UTC.
        assert!(at(1_709_212_455).contains("<localTime>2024-02-29T13:14:15+00:00</localTime>"));
        assert!(at(4_102_444_799).contains("<localTime>2099-12-31T23:59:59+00:00</localTime>"));
    }

    #[test]
    fn routes_by_path_then_method() {
        let get = |method: Method, path: &str| match route(&method, path) {
            Route::Serve { api, .. } => format!("serve {}", api.name()),
            Route::WrongMethod { not_found, .. } => format!("wrong {not_found}"),
            Route::Unknown => "unknown".into(),
        };
        assert_eq!(
            get(Method::POST, "/ISAPI/AccessControl/UserInfo/Record"),
            "serve hikvision.user_record"
        );
        assert_eq!(
            get(Method::POST, "/ISAPI/AccessControl/UserInfo/Modify"),
            "wrong false"
        );
        assert_eq!(
            get(Method::GET, "/ISAPI/AccessControl/UserInfo/Search"),
            "wrong true"
        );
        assert_eq!(get(Method::GET, "/ISAPI/Nothing"), "unknown");
    }

    #[test]
    fn searches_continue_only_where_they_stopped() {
        let mut searches = HashMap::new();
        assert!(search_admits(&searches, "a", 0));
        searches.insert("a".to_string(), 30);
        assert!(search_admits(&searches, "a", 30));
        assert!(!search_admits(&searches, "a", 0));
        assert!(!search_admits(&searches, "a", 60));
        assert_eq!(response_status(0, 30, 31), "MORE");
        assert_eq!(response_status(30, 1, 31), "OK");
        assert_eq!(response_status(31, 0, 31), "NO MATCH");
    }
}
