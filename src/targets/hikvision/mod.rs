//! Hikvision access-control terminals (DS-K1T / MinMoe) over ISAPI, one terminal a target.
//!
//! A terminal is not a cloud: it is one small device on the LAN that serves one operation at a
//! time, authenticates every request with HTTP Digest and locks its account after a handful of
//! failed logins, and may answer OK to a face it stores seconds later, or never. So:
//! - **Auth** ([`digest`]): a nonce is used a few times within a second and a half, then a
//!   fresh challenge is fetched (nonces live about 3 s on some firmware and are refused after a
//!   few uses on others); a 401 that says `stale`, or answers a reused nonce, is sent once more
//!   with a fresh one. A 401 to a nonce's first use is a refused login: it is latched, and no
//!   further request goes to that terminal this run.
//! - **Enrolment**: the person first (`UserInfo/SetUp` where the terminal lists `setUp`, else
//!   `Record`, then `Modify` when they exist), then the face (`FDLib/FDSetUp`, else
//!   `FaceDataRecord`, then `FDModify`), multipart with the JSON part first and an unquoted
//!   boundary; then the face is **read back** with `FDSearch` until it shows, or the person is
//!   `face_not_kept` (retryable).
//! - **Room**: before sending, [`Target::check_room`] compares what the run adds with the
//!   terminal's capacity and refuses the whole terminal when it would not fit.
//! - Every answer's body is read ([`isapi`]): a 200 with a status code other than 1 is a
//!   failure.

mod config;
pub(crate) mod digest;
pub(crate) mod isapi;

pub use self::config::{EmployeeNoFormat, HikvisionConfig, KIND, UserType};

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng as _;
use serde_json::{Value, json};
use tokio::time::Instant;

use self::digest::Challenge;
use self::isapi::ResponseStatus;
use super::{
    Abilities, Class, Failure, Receipt, RemotePage, RemoteUser, Target, Upload, http_client,
};
use crate::doctor::{self, Check, Probe};
use crate::reason::ReasonCode;
use crate::secret::Secret;

/// A nonce is reused for at most this long and this many requests, well inside the shortest
/// lifetimes reported (under 3 s; about 8 uses).
const NONCE_MAX_AGE: Duration = Duration::from_millis(1500);
const NONCE_MAX_USES: u32 = 4;

/// The most people one search page holds (every firmware on record caps `maxResults` at 30).
const PAGE: usize = 30;

/// The face library access control uses: FDID 1, visible light.
const FDID: &str = "1";
const FACE_LIB: &str = "blackFD";

/// A Hikvision terminal.
pub struct Hikvision {
    name: String,
    /// The terminal's address, without a trailing slash (may hold a path prefix).
    base_url: String,
    username: String,
    password: Secret,
    settings: HikvisionConfig,
    client: reqwest::Client,
    nonce: Mutex<Option<Nonce>>,
    /// The refused login, once one was met: nothing more is sent to this terminal.
    refused: Mutex<Option<Failure>>,
    /// What the terminal said it can do, read by `prepare`.
    device: Mutex<Device>,
}

/// A challenge in use.
struct Nonce {
    challenge: Challenge,
    since: Instant,
    uses: u32,
}

/// What the capability calls said; until read (the default), only the calls every firmware
/// has are used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Device {
    person_setup: bool,
    face_setup: bool,
    max_persons: Option<u64>,
    max_faces: Option<u64>,
    /// The person name's byte limit the terminal announces.
    name_max: Option<usize>,
}

/// A request body, kept whole so the request can be sent again with a fresh nonce.
enum Body {
    Empty,
    Json(String),
    Multipart { boundary: String, bytes: Vec<u8> },
}

impl Hikvision {
    pub fn new(name: &str, config: &HikvisionConfig) -> Result<Self, String> {
        let password = config
            .password
            .resolve(&format!("targets.{name}.password"))?;
        Ok(Self {
            name: name.to_string(),
            base_url: config.delivery.base_url.trim_end_matches('/').to_string(),
            username: config.username.clone(),
            password,
            settings: config.clone(),
            client: http_client(&config.delivery)?,
            nonce: Mutex::new(None),
            refused: Mutex::new(None),
            device: Mutex::new(Device::default()),
        })
    }

    fn device(&self) -> Device {
        *self.device.lock().expect("device lock")
    }

    /// The `Authorization` header for one request, with a nonce young enough, and the nonce's
    /// use count (1: its first use); `None` when a fresh challenge is needed first.
    fn authorization(&self, method: &str, uri: &str) -> Option<(String, u32)> {
        let mut slot = self.nonce.lock().expect("nonce lock");
        let nonce = slot
            .as_mut()
            .filter(|n| n.since.elapsed() < NONCE_MAX_AGE && n.uses < NONCE_MAX_USES)?;
        nonce.uses += 1;
        let cnonce = format!("{:016x}", rand::rng().random::<u64>());
        let header = nonce.challenge.authorization(
            (&self.username, self.password.expose()),
            method,
            uri,
            nonce.uses,
            &cnonce,
        );
        Some((header, nonce.uses))
    }

    fn keep_challenge(&self, challenge: Challenge) {
        *self.nonce.lock().expect("nonce lock") = Some(Nonce {
            challenge,
            since: Instant::now(),
            uses: 0,
        });
    }

    /// The Digest challenge in a 401, if it carries one we can answer.
    fn challenge_of(&self, resp: &reqwest::Response) -> Result<Option<Challenge>, Failure> {
        let mut last_error = None;
        for value in resp.headers().get_all(reqwest::header::WWW_AUTHENTICATE) {
            let Ok(text) = value.to_str() else { continue };
            match Challenge::parse(text) {
                Ok(c) => return Ok(Some(c)),
                Err(e) => last_error = Some(e),
            }
        }
        match last_error {
            Some(e) => Err(Failure::new(
                Class::Fatal,
                ReasonCode::AuthFailed,
                format!("{}: {e}", self.name),
            )),
            None => Ok(None),
        }
    }

    /// Asks for a fresh challenge with a request that carries no credentials (not a login
    /// attempt: a terminal counts only wrong answers).
    async fn fetch_challenge(&self) -> Result<(), Failure> {
        let url = format!("{}/ISAPI/System/deviceInfo", self.base_url);
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| Failure::network(&self.name, &e))?;
        let status = resp.status().as_u16();
        if status == 401
            && let Some(challenge) = self.challenge_of(&resp)?
        {
            self.keep_challenge(challenge);
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        Err(match status {
            401 => Failure::new(
                Class::Fatal,
                ReasonCode::AuthFailed,
                format!(
                    "{}: the terminal asks for credentials without a Digest challenge: check \
                     that base_url is a Hikvision terminal",
                    self.name
                ),
            ),
            200..=299 => Failure::new(
                Class::Fatal,
                ReasonCode::AuthFailed,
                format!(
                    "{}: the terminal answered without asking for credentials: check that \
                     base_url is the terminal itself, and that its authentication is Digest",
                    self.name
                ),
            ),
            _ => isapi::classify(&self.name, "the device information", status, &body),
        })
    }

    /// One ISAPI request: authenticated, its body read whatever the status. A 401 is sent
    /// again once with a fresh nonce when it may be about the nonce, not the password: when it
    /// says `stale`, or when the nonce had been used before (some firmware answers an expired
    /// nonce with a bare 401). A 401 to a nonce's first use is a refused login: latched, so no
    /// further request goes to this terminal in the run.
    async fn call(
        &self,
        what: &str,
        method: reqwest::Method,
        path: &str,
        body: &Body,
    ) -> Result<(u16, String), Failure> {
        if let Some(f) = self.refused.lock().expect("refused lock").clone() {
            return Err(f);
        }
        let url = format!("{}{path}", self.base_url);
        let uri = reqwest::Url::parse(&url)
            .map(|u| match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_string(),
            })
            .map_err(|e| {
                Failure::new(
                    Class::Fatal,
                    ReasonCode::BadRequest,
                    format!("{}: base_url does not make a URL: {e}", self.name),
                )
            })?;
        let mut renewed = false;
        loop {
            let mut fetched = 0;
            let (header, use_count) = loop {
                if let Some(h) = self.authorization(method.as_str(), &uri) {
                    break h;
                }
                // Concurrent requests may use up a fresh nonce before this one gets to it.
                fetched += 1;
                if fetched > 4 {
                    return Err(Failure::new(
                        Class::Transient,
                        ReasonCode::ServerError,
                        format!(
                            "{}: could not get a usable Digest nonce: concurrent requests used \
                             each fresh one up first; lower concurrency under [targets.{}]",
                            self.name, self.name
                        ),
                    ));
                }
                self.fetch_challenge().await?;
            };
            let mut request = self
                .client
                .request(method.clone(), &url)
                .header(reqwest::header::AUTHORIZATION, header);
            request = match body {
                Body::Empty => request,
                Body::Json(text) => request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(text.clone()),
                Body::Multipart { boundary, bytes } => request
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        format!("multipart/form-data; boundary={boundary}"),
                    )
                    .body(bytes.clone()),
            };
            let resp = request
                .send()
                .await
                .map_err(|e| Failure::network(&self.name, &e))?;
            let status = resp.status().as_u16();
            if status == 401 {
                let challenge = self.challenge_of(&resp).ok().flatten();
                let about_the_nonce = challenge.as_ref().is_some_and(|c| c.stale) || use_count > 1;
                if about_the_nonce && !renewed {
                    tracing::debug!(target = %self.name, "nonce refused: renewed");
                    renewed = true;
                    match challenge {
                        Some(c) => self.keep_challenge(c),
                        None => *self.nonce.lock().expect("nonce lock") = None,
                    }
                    continue;
                }
                let text = resp.text().await.unwrap_or_default();
                let f = isapi::login_refused(&self.name, &self.username, &text);
                *self.refused.lock().expect("refused lock") = Some(f.clone());
                *self.nonce.lock().expect("nonce lock") = None;
                return Err(f);
            }
            let text = resp
                .text()
                .await
                .map_err(|e| Failure::network(&self.name, &e))?;
            tracing::debug!(target = %self.name, %status, "{what}: {method} {path}");
            return Ok((status, text));
        }
    }

    /// A JSON call whose answer is a JSON object other than a status (a search, a count, a
    /// capability); a refusal status is classified.
    async fn read_json(
        &self,
        what: &str,
        method: reqwest::Method,
        path: &str,
        body: &Body,
    ) -> Result<Value, Failure> {
        let (status, text) = self.call(what, method, path, body).await?;
        if let Some(rs) = ResponseStatus::from_body(&text)
            && !rs.ok()
        {
            return Err(isapi::classify(&self.name, what, status, &text));
        }
        if !(200..300).contains(&status) {
            return Err(isapi::classify(&self.name, what, status, &text));
        }
        serde_json::from_str(&text).map_err(|_| {
            Failure::new(
                Class::Transient,
                ReasonCode::ServerError,
                format!("{}: {what}: the answer is not JSON", self.name),
            )
            .with_http(status, None, None)
        })
    }

    /// A write whose answer is a `ResponseStatus`: success only with status code 1.
    async fn write(
        &self,
        what: &str,
        method: reqwest::Method,
        path: &str,
        body: &Body,
    ) -> Result<(), ResponseFailure> {
        let (status, text) = self.call(what, method, path, body).await?;
        match ResponseStatus::from_body(&text) {
            Some(rs) if rs.ok() => Ok(()),
            Some(rs) => Err(ResponseFailure {
                sub: rs.sub().to_string(),
                failure: isapi::classify(&self.name, what, status, &text),
            }),
            None => Err(isapi::classify(&self.name, what, status, &text).into()),
        }
    }

    /// Reads the capabilities: whether `setUp` is offered, the capacity, the name limit.
    async fn read_capabilities(&self) -> Result<Device, Failure> {
        let users = self
            .read_json(
                "the person capabilities",
                reqwest::Method::GET,
                "/ISAPI/AccessControl/UserInfo/capabilities?format=json",
                &Body::Empty,
            )
            .await
            .map_err(|f| match f.reason {
                ReasonCode::NotSupported => Failure {
                    message: format!(
                        "{}: the terminal does not manage people over ISAPI (UserInfo): it may not \
                         be an access-control terminal, or its firmware is too old ({})",
                        self.name, f.message
                    ),
                    ..f
                },
                _ => f,
            })?;
        let faces = self
            .read_json(
                "the face library capabilities",
                reqwest::Method::GET,
                "/ISAPI/Intelligent/FDLib/capabilities?format=json",
                &Body::Empty,
            )
            .await?;
        let user_info = users.get("UserInfo").unwrap_or(&users);
        // Some firmware wraps the face capabilities in `FDLibCap`.
        let faces = faces.get("FDLibCap").unwrap_or(&faces);
        let offers_setup = |v: Option<&Value>| {
            v.and_then(|f| f.get("@opt"))
                .and_then(Value::as_str)
                .is_some_and(|opt| opt.split(',').any(|o| o.trim() == "setUp"))
        };
        Ok(Device {
            person_setup: offers_setup(user_info.get("supportFunction")),
            face_setup: offers_setup(faces.get("supportFDFunction")),
            max_persons: number(user_info.get("maxRecordNum")),
            max_faces: number(faces.get("FDRecordDataMaxNum")),
            name_max: user_info
                .get("name")
                .and_then(|n| number(n.get("@max")))
                .map(|n| n as usize),
        })
    }

    /// The person record as the config says it.
    fn person_body(&self, upload: &Upload<'_>) -> String {
        let s = &self.settings;
        let limit = self
            .device()
            .name_max
            .map_or(s.name_max_bytes, |m| m.min(s.name_max_bytes));
        // A name cut in the middle keeps no trailing space; a person without one goes by
        // their employeeNo (the terminal wants a name).
        let name = match cut(upload.name.trim(), limit).trim_end() {
            "" => cut(upload.user_id, limit),
            name => name,
        };
        let doors: Vec<String> = s.doors.iter().map(u32::to_string).collect();
        let plans: Vec<Value> = s
            .doors
            .iter()
            .map(|d| json!({"doorNo": d, "planTemplateNo": s.plan_template.to_string()}))
            .collect();
        json!({"UserInfo": {
            "employeeNo": upload.user_id,
            "name": name,
            "userType": s.user_type.as_str(),
            "Valid": {
                "enable": true,
                "beginTime": s.valid_from,
                "endTime": s.valid_until,
                "timeType": "local",
            },
            "doorRight": doors.join(","),
            "RightPlan": plans,
            "gender": "unknown",
            "localUIRight": false,
        }})
        .to_string()
    }

    /// Adds the person, or brings their record in step.
    async fn put_person(&self, upload: &Upload<'_>) -> Result<(), Failure> {
        let body = Body::Json(self.person_body(upload));
        if self.device().person_setup {
            return self
                .write(
                    "the person record",
                    reqwest::Method::PUT,
                    "/ISAPI/AccessControl/UserInfo/SetUp?format=json",
                    &body,
                )
                .await
                .map_err(Failure::from);
        }
        match self
            .write(
                "the person record",
                reqwest::Method::POST,
                "/ISAPI/AccessControl/UserInfo/Record?format=json",
                &body,
            )
            .await
        {
            Err(e) if e.sub == "employeeNoAlreadyExist" => self
                .write(
                    "the person record",
                    reqwest::Method::PUT,
                    "/ISAPI/AccessControl/UserInfo/Modify?format=json",
                    &body,
                )
                .await
                .map_err(Failure::from),
            other => other.map_err(Failure::from),
        }
    }

    /// Puts the face: the upsert where offered, else add, then replace when one exists.
    async fn put_face(&self, upload: &Upload<'_>) -> Result<(), Failure> {
        let body = self.face_body(upload);
        let face_write = |method, path| self.write("the face upload", method, path, &body);
        if self.device().face_setup {
            return face_write(
                reqwest::Method::PUT,
                "/ISAPI/Intelligent/FDLib/FDSetUp?format=json",
            )
            .await
            .map_err(Failure::from);
        }
        match face_write(
            reqwest::Method::POST,
            "/ISAPI/Intelligent/FDLib/FaceDataRecord?format=json",
        )
        .await
        {
            Err(e) if e.sub == "deviceUserAlreadyExistFace" => face_write(
                reqwest::Method::PUT,
                "/ISAPI/Intelligent/FDLib/FDModify?format=json",
            )
            .await
            .map_err(Failure::from),
            other => other.map_err(Failure::from),
        }
    }

    /// The multipart body of a face write: the JSON part first (no filename), the JPEG
    /// second; the boundary goes unquoted in the header (a quoted one is `badJsonFormat`).
    fn face_body(&self, upload: &Upload<'_>) -> Body {
        let boundary = format!("----facesync{:016x}", rand::rng().random::<u64>());
        let meta = json!({"faceLibType": FACE_LIB, "FDID": FDID, "FPID": upload.user_id});
        let mut bytes = Vec::with_capacity(upload.bytes.len() + 512);
        bytes.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"FaceDataRecord\"\r\n\
                 Content-Type: application/json\r\n\r\n{meta}\r\n--{boundary}\r\n\
                 Content-Disposition: form-data; name=\"{part}\"; filename=\"face.jpg\"\r\n\
                 Content-Type: image/jpeg\r\n\r\n",
                part = self.settings.face_part
            )
            .as_bytes(),
        );
        bytes.extend_from_slice(upload.bytes);
        bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        Body::Multipart { boundary, bytes }
    }

    /// The terminal's face for `fpid`, as its search shows it now.
    async fn face_shown(&self, fpid: &str) -> Result<bool, Failure> {
        let body = json!({
            "searchResultPosition": 0,
            "maxResults": PAGE,
            "faceLibType": FACE_LIB,
            "FDID": FDID,
            "FPID": fpid,
        });
        let answer = self
            .read_json(
                "the face check",
                reqwest::Method::POST,
                "/ISAPI/Intelligent/FDLib/FDSearch?format=json",
                &Body::Json(body.to_string()),
            )
            .await?;
        Ok(answer
            .get("MatchList")
            .and_then(Value::as_array)
            .is_some_and(|list| {
                list.iter()
                    .any(|m| m.get("FPID").and_then(Value::as_str) == Some(fpid))
            }))
    }

    /// Waits for the face to show: terminals may store it seconds after the OK, or lose it.
    async fn read_back(&self, fpid: &str) -> Result<(), Failure> {
        let tries = self.settings.readback_tries;
        let interval = self.settings.readback_interval;
        for n in 1..=tries {
            match self.face_shown(fpid).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                // A busy terminal is modelling: wait as a busy answer asks, and look again.
                Err(f) if f.reason == ReasonCode::Throttled => {
                    tokio::time::sleep(isapi::BUSY_WAIT).await;
                    continue;
                }
                Err(f) => return Err(f),
            }
            if n < tries {
                tokio::time::sleep(interval).await;
            }
        }
        Err(Failure::new(
            Class::Transient,
            ReasonCode::FaceNotKept,
            format!(
                "{}: the terminal accepted the face of `{fpid}` but did not keep it: it did not \
                 show in {tries} check(s) over {}; it is sent again",
                self.name,
                humantime::format_duration(interval * tries.saturating_sub(1))
            ),
        ))
    }

    /// One page of a person search (`employees`: only those; empty: everyone).
    async fn search_people(
        &self,
        search_id: &str,
        position: usize,
        employees: &[&str],
    ) -> Result<SearchPage, Failure> {
        let mut cond = json!({
            "searchID": search_id,
            "searchResultPosition": position,
            "maxResults": PAGE,
        });
        if !employees.is_empty() {
            cond["EmployeeNoList"] = employees
                .iter()
                .map(|e| json!({"employeeNo": e}))
                .collect::<Vec<_>>()
                .into();
        }
        let answer = self
            .read_json(
                "the person search",
                reqwest::Method::POST,
                "/ISAPI/AccessControl/UserInfo/Search?format=json",
                &Body::Json(json!({"UserInfoSearchCond": cond}).to_string()),
            )
            .await?;
        SearchPage::parse(&answer).ok_or_else(|| {
            Failure::new(
                Class::Transient,
                ReasonCode::ServerError,
                format!(
                    "{}: the person search answered without `UserInfoSearch`",
                    self.name
                ),
            )
        })
    }

    /// Which of `ids` the terminal holds, and whether each holds a face.
    async fn held(&self, ids: &[&str]) -> Result<Vec<RemoteUser>, Failure> {
        let mut out = Vec::new();
        for chunk in ids.chunks(PAGE) {
            let page = self.search_people(&search_id(), 0, chunk).await?;
            out.extend(page.users);
        }
        Ok(out)
    }

    /// How many persons and faces the terminal holds now.
    async fn counts(&self) -> Result<(Option<u64>, Option<u64>), Failure> {
        let users = self
            .read_json(
                "the person count",
                reqwest::Method::GET,
                "/ISAPI/AccessControl/UserInfo/Count?format=json",
                &Body::Empty,
            )
            .await?;
        let users = users.get("UserInfoCount").unwrap_or(&users);
        let persons = number(users.get("userNumber"));
        let faces = match self
            .read_json(
                "the face count",
                reqwest::Method::GET,
                "/ISAPI/Intelligent/FDLib/Count?format=json",
                &Body::Empty,
            )
            .await
        {
            Ok(v) => v
                .get("FDRecordDataInfo")
                .and_then(Value::as_array)
                .map(|libs| {
                    libs.iter()
                        .filter(|l| {
                            l.get("FDID").and_then(Value::as_str) == Some(FDID)
                                || l.get("faceLibType").and_then(Value::as_str) == Some(FACE_LIB)
                        })
                        .filter_map(|l| number(l.get("recordDataNumber")))
                        .sum()
                }),
            // Some firmware counts faces only with the persons (K1A340 not even there).
            Err(f) if f.reason == ReasonCode::NotSupported => {
                number(users.get("bindFaceUserNumber"))
            }
            Err(f) => return Err(f),
        };
        Ok((persons, faces))
    }
}

/// A terminal's clock further off than this is a warning: validity windows are in its time.
const CLOCK_WARNING: i64 = 60;

impl Hikvision {
    /// The terminal's clock (`System/time`, XML), and ours when the answer came.
    async fn terminal_time(
        &self,
    ) -> Result<(Option<std::time::SystemTime>, std::time::SystemTime), Failure> {
        let (status, text) = self
            .call(
                "the clock",
                reqwest::Method::GET,
                "/ISAPI/System/time",
                &Body::Empty,
            )
            .await?;
        if !(200..300).contains(&status)
            || ResponseStatus::from_body(&text).is_some_and(|rs| !rs.ok())
        {
            return Err(isapi::classify(&self.name, "the clock", status, &text));
        }
        Ok((isapi::terminal_time(&text), std::time::SystemTime::now()))
    }

    /// The `capacity` check: what the terminal holds of what it can.
    fn capacity_check(device: Device, persons: Option<u64>, faces: Option<u64>) -> Check {
        let part = |what: &str, held: Option<u64>, max: Option<u64>| match (held, max) {
            (Some(h), Some(m)) => format!("{h} of {m} {what}"),
            (Some(h), None) => format!("{h} {what} (no limit announced)"),
            (None, Some(m)) => format!("? of {m} {what}"),
            (None, None) => format!("an unknown number of {what}"),
        };
        Check::ok(
            "capacity",
            format!(
                "the terminal holds {} and {}",
                part("persons", persons, device.max_persons),
                part("faces", faces, device.max_faces)
            ),
        )
    }

    /// The `clock` check: the terminal's time against ours.
    fn clock_check(
        &self,
        result: Result<(Option<std::time::SystemTime>, std::time::SystemTime), Failure>,
    ) -> Check {
        let advice = "set the terminal's time by NTP (its web page, Configuration > System > \
                      Time Settings): validity windows and access schedules run on its clock";
        match result {
            Ok((Some(terminal), local)) => {
                let skew = doctor::skew(terminal, local);
                let said = format!("the terminal's clock is {}", doctor::describe_skew(skew));
                if skew.abs() > CLOCK_WARNING {
                    Check::warning("clock", said, advice)
                } else {
                    Check::ok("clock", said)
                }
            }
            Ok((None, _)) => Check::warning(
                "clock",
                "the terminal's time gives no offset from UTC: not compared",
                advice,
            ),
            Err(f) => Check::warning(
                "clock",
                format!("the terminal's clock could not be read: {}", f.message),
                advice,
            ),
        }
    }
}

/// A write's refusal, with the sub-status the enrolment flow branches on.
struct ResponseFailure {
    sub: String,
    failure: Failure,
}

impl From<Failure> for ResponseFailure {
    fn from(failure: Failure) -> Self {
        Self {
            sub: String::new(),
            failure,
        }
    }
}

impl From<ResponseFailure> for Failure {
    fn from(f: ResponseFailure) -> Self {
        f.failure
    }
}

/// One page of `UserInfo/Search`.
#[derive(Debug, Default, PartialEq, Eq)]
struct SearchPage {
    users: Vec<RemoteUser>,
    /// `MORE`: another page follows.
    more: bool,
}

impl SearchPage {
    fn parse(answer: &Value) -> Option<SearchPage> {
        let search = answer.get("UserInfoSearch")?;
        let status = search
            .get("responseStatusStrg")
            .and_then(Value::as_str)
            .unwrap_or("");
        let users = search
            .get("UserInfo")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|u| {
                        let id = match u.get("employeeNo")? {
                            Value::String(s) => s.clone(),
                            Value::Number(n) => n.to_string(),
                            _ => return None,
                        };
                        Some(RemoteUser {
                            user_id: id,
                            has_face: number(u.get("numOfFace")).unwrap_or(0) > 0,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(SearchPage {
            users,
            more: status.eq_ignore_ascii_case("MORE"),
        })
    }
}

/// A number sent as a number or as text.
fn number(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A fresh search id: 16 hex digits, within every firmware's cap (20, 32 or 64).
fn search_id() -> String {
    format!("{:016x}", rand::rng().random::<u64>())
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[async_trait]
impl Target for Hikvision {
    fn name(&self) -> &str {
        &self.name
    }

    /// Logs in and reads what the terminal offers (its upsert calls, capacity, name limit).
    async fn prepare(&self) -> Result<(), Failure> {
        let device = self.read_capabilities().await?;
        tracing::debug!(target = %self.name, ?device, "terminal capabilities");
        *self.device.lock().expect("device lock") = device;
        Ok(())
    }

    async fn upload(&self, upload: &Upload<'_>) -> Result<Receipt, Failure> {
        if self.settings.create_persons {
            self.put_person(upload).await?;
        } else if self.held(&[upload.user_id]).await?.is_empty() {
            return Err(Failure::new(
                Class::Permanent,
                ReasonCode::UserNotFound,
                format!(
                    "{}: the terminal has no person with employeeNo `{}`, and create_persons = \
                     false leaves adding people to another system: add them there first",
                    self.name, upload.user_id
                ),
            ));
        }
        self.put_face(upload).await?;
        self.read_back(upload.user_id).await?;
        Ok(Receipt {
            http_status: 200,
            remote_id: None,
            request_id: None,
        })
    }

    /// The login and capabilities (reachable, credentials), what the terminal holds of what
    /// it can, whether the roster fits (the same reads as [`Target::check_room`]), and its
    /// clock.
    async fn doctor(&self, probe: &Probe<'_>) -> Vec<Check> {
        let prepared = probe.run(|| self.prepare()).await;
        let mut checks = doctor::first_contact(
            &prepared,
            format!("the terminal accepts user `{}`", self.username).as_str(),
        );
        if prepared.is_err() {
            return checks;
        }
        match probe.run(|| self.counts()).await {
            Ok((persons, faces)) => {
                checks.push(Self::capacity_check(self.device(), persons, faces));
            }
            Err(f) => checks.push(Check::from_failure("capacity", &f)),
        }
        let arriving: Vec<&str> = probe.ids.iter().map(String::as_str).collect();
        checks.push(match probe.run(|| self.check_room(&arriving)).await {
            Ok(()) => Check::ok(
                "room",
                format!("the roster's {} people fit", arriving.len()),
            ),
            Err(f) => Check::from_failure("room", &f),
        });
        checks.push(self.clock_check(probe.run(|| self.terminal_time()).await));
        checks
    }

    fn abilities(&self) -> Abilities {
        Abilities {
            list_users: true,
            remove_users: true,
            ..Abilities::default()
        }
    }

    /// Refuses the run for this terminal when what it adds would not fit: first from the
    /// counts, and only when those say it might not, from which of `arriving` it holds.
    async fn check_room(&self, arriving: &[&str]) -> Result<(), Failure> {
        let device = self.device();
        if arriving.is_empty() || (device.max_persons.is_none() && device.max_faces.is_none()) {
            return Ok(());
        }
        let (persons, faces) = self.counts().await?;
        let fits = |held: Option<u64>, max: Option<u64>, adding: u64| match (held, max) {
            (Some(h), Some(m)) => h + adding <= m,
            _ => true,
        };
        let n = arriving.len() as u64;
        let creates = self.settings.create_persons;
        if fits(persons, device.max_persons, if creates { n } else { 0 })
            && fits(faces, device.max_faces, n)
        {
            return Ok(());
        }
        let held = self.held(arriving).await?;
        let known: HashSet<&str> = held.iter().map(|u| u.user_id.as_str()).collect();
        let with_face: HashSet<&str> = held
            .iter()
            .filter(|u| u.has_face)
            .map(|u| u.user_id.as_str())
            .collect();
        let new_persons = if creates {
            arriving.iter().filter(|a| !known.contains(**a)).count() as u64
        } else {
            0
        };
        let new_faces = arriving.iter().filter(|a| !with_face.contains(**a)).count() as u64;
        let mut short = Vec::new();
        for (what, held, max, adding) in [
            ("persons", persons, device.max_persons, new_persons),
            ("faces", faces, device.max_faces, new_faces),
        ] {
            if let (Some(h), Some(m)) = (held, max)
                && h + adding > m
            {
                short.push(format!(
                    "it holds {h} of its {m} {what} and this run would add {adding}"
                ));
            }
        }
        if short.is_empty() {
            return Ok(());
        }
        Err(Failure::new(
            Class::Fatal,
            ReasonCode::DeviceFull,
            format!(
                "{}: the roster does not fit the terminal ({}): nothing is sent to it. Remove \
                 leavers (sync --prune), or move some people to another terminal",
                self.name,
                short.join("; ")
            ),
        ))
    }

    /// One page of the terminal's people: a fresh search id for each listing, kept for its
    /// pages (the cursor carries it).
    async fn list_users(&self, cursor: Option<&str>) -> Result<RemotePage, Failure> {
        let (id, position) = match cursor.and_then(|c| c.split_once(':')) {
            Some((id, pos)) => (id.to_string(), pos.parse().unwrap_or(0)),
            None => (search_id(), 0),
        };
        let page = self.search_people(&id, position, &[]).await?;
        let next = match (page.more, page.users.len()) {
            (false, _) => None,
            (true, 0) => {
                return Err(Failure::new(
                    Class::Transient,
                    ReasonCode::ServerError,
                    format!(
                        "{}: the person search said MORE but gave nobody at position {position}",
                        self.name
                    ),
                ));
            }
            (true, n) => Some(format!("{id}:{}", position + n)),
        };
        Ok(RemotePage {
            users: page.users,
            next,
            ..RemotePage::default()
        })
    }

    async fn find_user(&self, user_id: &str) -> Result<Option<RemoteUser>, Failure> {
        Ok(self
            .held(&[user_id])
            .await?
            .into_iter()
            .find(|u| u.user_id == user_id))
    }

    /// Deletes the face, then the person: not every firmware deletes the face with the
    /// person. Someone already gone is a success.
    async fn remove_user(&self, user_id: &str) -> Result<Receipt, Failure> {
        let face = json!({"FPID": [{"value": user_id}]}).to_string();
        match self
            .write(
                "the face deletion",
                reqwest::Method::PUT,
                &format!(
                    "/ISAPI/Intelligent/FDLib/FDSearch/Delete?format=json&FDID={FDID}&faceLibType={FACE_LIB}"
                ),
                &Body::Json(face),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if e.sub == "employeeNoNotExist" => {}
            Err(e) => return Err(e.into()),
        }
        let person = json!({"UserInfoDelCond": {"EmployeeNoList": [{"employeeNo": user_id}]}});
        match self
            .write(
                "the person deletion",
                reqwest::Method::PUT,
                "/ISAPI/AccessControl/UserInfo/Delete?format=json",
                &Body::Json(person.to_string()),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if e.sub == "employeeNoNotExist" => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Receipt {
            http_status: 200,
            ..Receipt::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_at_a_character_boundary() {
        assert_eq!(cut("Ana Pérez", 32), "Ana Pérez");
        assert_eq!(cut("Ana Pérez", 6), "Ana P");
        // "é" is 2 bytes: 6 bytes would split it.
        assert_eq!(cut("Ana Pé", 6), "Ana P");
        assert_eq!(cut("张伟伟", 7), "张伟");
        assert_eq!(cut("", 3), "");
    }

    #[test]
    fn search_pages_read_every_variant_terminals_send() {
        let page = SearchPage::parse(&json!({"UserInfoSearch": {
        "searchID": "a", "responseStatusStrg": "MORE", "numOfMatches": 2, "totalMatches": 40,
        "UserInfo": [
            {"employeeNo": "1001", "numOfFace": 1},
            {"employeeNo": 1002, "numOfFace": "0"},
            {"name": "no id"},
        ]}}))
        .unwrap();
        assert!(page.more);
        assert_eq!(
            page.users,
            [
                RemoteUser {
                    user_id: "1001".into(),
                    has_face: true
                },
                RemoteUser {
                    user_id: "1002".into(),
                    has_face: false
                }
            ]
        );
        for status in ["NO MATCH", "NO_MATCHES", "OK"] {
            let page = SearchPage::parse(
                &json!({"UserInfoSearch": {"responseStatusStrg": status, "numOfMatches": 0}}),
            )
            .unwrap();
            assert_eq!(page, SearchPage::default(), "{status}");
        }
        assert_eq!(SearchPage::parse(&json!({"other": 1})), None);
    }

    #[test]
    fn search_ids_fit_every_firmwares_cap() {
        let a = search_id();
        assert_eq!(a.len(), 16);
        assert_ne!(a, search_id());
    }
}
