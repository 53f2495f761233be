//! Feishu ACS: a tenant access token (cached, shared, refreshed), and the face upload
//! (`PUT /open-apis/acs/v1/users/:user_id/face`, multipart `files` / `file_type` / `file_name`).
//! The id lookup by e-mail or mobile is in `feishu/ids.rs`, the ACS user list in
//! `feishu/users.rs`; every JSON call goes through [`Feishu::call`] (token, one refresh).

mod config;
mod ids;
mod users;

pub use self::config::{FeishuConfig, KIND, UserIdType};

use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;

use super::{
    Abilities, Class, Contact, Failure, Lookup, Receipt, RemotePage, RemoteUser, Target, Upload,
    header, http_client, path_segment,
};
use crate::config::OutputFormat;
use crate::doctor::{self, Check, Probe};
use crate::reason::ReasonCode;
use crate::secret::Secret;

/// Token error codes after which a fresh token is fetched and the request tried once more.
const TOKEN_INVALID: &[i64] = &[99991661, 99991663, 99991664, 99991665, 99991677];
/// Throttled: "request trigger frequency limit".
const RATE_LIMITED: i64 = 99991400;
/// The app lacks a scope (acs:users): nothing this run can do.
const SCOPE_MISSING: i64 = 99991672;
const USER_NOT_FOUND: i64 = 1490101;
const FACE_CROP_FAILED: i64 = 1490108;
/// The user has no face on file (download).
const FACE_NOT_FOUND: i64 = 1490107;

/// The Feishu ACS target.
pub struct Feishu {
    /// The target's name (its section's).
    name: String,
    base_url: String,
    app_id: String,
    app_secret: Secret,
    user_id_type: &'static str,
    client: reqwest::Client,
    token: tokio::sync::Mutex<Option<Token>>,
    /// `targets.<name>.preflight`: list the access-control users before uploading.
    preflight: bool,
}

#[derive(Clone)]
struct Token {
    value: Secret,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct Envelope {
    code: i64,
    #[serde(default)]
    msg: String,
}

/// A JSON answer: the envelope with its `data`.
#[derive(Deserialize)]
struct DataEnvelope {
    code: i64,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    data: serde_json::Value,
}

/// How one JSON call ended.
enum Answer {
    Data(serde_json::Value),
    TokenInvalid,
    Fail(Failure),
}

#[derive(Deserialize)]
struct TokenResponse {
    code: i64,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    tenant_access_token: Option<String>,
    #[serde(default)]
    expire: Option<u64>,
}

impl Feishu {
    pub fn new(name: &str, config: &FeishuConfig) -> Result<Self, String> {
        let app_secret = config
            .app_secret
            .resolve(&format!("targets.{name}.app_secret"))?;
        Ok(Self {
            name: name.to_string(),
            base_url: config.delivery.base_url.clone(),
            app_id: config.app_id.clone(),
            app_secret,
            user_id_type: config.user_id_type.as_str(),
            client: http_client(&config.delivery)?,
            token: tokio::sync::Mutex::new(None),
            preflight: config.preflight,
        })
    }

    /// The cached token, or a fresh one. The lock is held while fetching, so concurrent
    /// requests wait for one fetch instead of each making their own.
    async fn token(&self) -> Result<Secret, Failure> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(t.value.clone());
        }
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// Forgets `stale` if it is still the cached token (a newer one is kept).
    async fn invalidate(&self, stale: &Secret) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == *stale) {
            *cached = None;
        }
    }

    async fn fetch_token(&self) -> Result<Token, Failure> {
        let url = format!(
            "{}/open-apis/auth/v3/tenant_access_token/internal",
            self.base_url
        );
        let body = serde_json::json!({
            "app_id": self.app_id,
            "app_secret": self.app_secret.expose(),
        });
        let reply = Reply::read(
            &self.name,
            self.client
                .post(&url)
                .header("Content-Type", "application/json; charset=utf-8")
                .body(body.to_string())
                .send()
                .await,
        )
        .await?;
        let (status, logid, reset) = (reply.status, reply.logid.clone(), reply.reset.clone());
        let parsed: Option<TokenResponse> = serde_json::from_slice(&reply.body).ok();
        match parsed {
            Some(TokenResponse {
                code: 0,
                tenant_access_token: Some(token),
                expire,
                ..
            }) if !token.is_empty() => {
                let lifetime = Duration::from_secs(expire.unwrap_or(7200));
                Ok(Token {
                    value: Secret::new(token),
                    refresh_at: Instant::now() + lifetime - refresh_margin(lifetime),
                })
            }
            Some(TokenResponse { code, msg, .. }) if code != 0 && status < 500 && code != RATE_LIMITED => {
                Err(Failure::new(
                    Class::Fatal,
                    ReasonCode::AuthFailed,
                    format!(
                        "feishu refused the app credentials (code {code}: {msg}): check targets.{}.app_id and the app secret",
                        self.name
                    ),
                )
                .with_http(status, Some(code.to_string()), logid))
            }
            _ => match classify(status, parsed.map(|p| p.code), "token request failed", reset.as_deref(), logid) {
                Verdict::Fail(f) => Err(f),
                _ => Err(Failure::new(
                    Class::Transient,
                    ReasonCode::ServerError,
                    format!("unexpected token response (HTTP {status})"),
                )
                .with_http(status, None, None)),
            },
        }
    }

    /// Sends one JSON API request (built by `request` around a token) and returns the
    /// envelope's `data`. A refused token is dropped, a fresh one fetched and the request sent
    /// once more.
    async fn call(
        &self,
        request: impl Fn(&Secret) -> reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, Failure> {
        let token = self.token().await?;
        match self.send_json(request(&token)).await? {
            Answer::Data(data) => Ok(data),
            Answer::Fail(f) => Err(f),
            Answer::TokenInvalid => {
                self.invalidate(&token).await;
                let fresh = self.token().await?;
                match self.send_json(request(&fresh)).await? {
                    Answer::Data(data) => Ok(data),
                    Answer::Fail(f) => Err(f),
                    Answer::TokenInvalid => Err(Failure::new(
                        Class::Fatal,
                        ReasonCode::AuthFailed,
                        format!(
                            "feishu refused a fresh access token: check targets.{}.app_id and the app secret",
                            self.name
                        ),
                    )),
                }
            }
        }
    }

    async fn send_json(&self, request: reqwest::RequestBuilder) -> Result<Answer, Failure> {
        let reply = Reply::read(&self.name, request.send().await).await?;
        let envelope: Option<DataEnvelope> = serde_json::from_slice(&reply.body).ok();
        let msg = envelope.as_ref().map_or("", |e| e.msg.as_str()).to_string();
        let code = envelope.as_ref().map(|e| e.code);
        Ok(match reply.classify(code, &msg) {
            Verdict::Ok(_) => Answer::Data(envelope.map(|e| e.data).unwrap_or_default()),
            Verdict::TokenInvalid(_) => Answer::TokenInvalid,
            Verdict::Fail(f) => Answer::Fail(f),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn face_url(&self, user_id: &str) -> Result<String, Failure> {
        Ok(format!(
            "{}/{}/face",
            self.url(users::LIST_PATH),
            path_segment("feishu user id", user_id)?
        ))
    }

    /// One download: the bytes, `None` for "no face on file", or the classified failure.
    async fn get_face(
        &self,
        token: &Secret,
        user_id: &str,
        cropped: bool,
    ) -> Result<Result<Option<Vec<u8>>, Verdict>, Failure> {
        let reply = Reply::read(
            &self.name,
            self.client
                .get(self.face_url(user_id)?)
                .query(&[
                    ("is_cropped", if cropped { "true" } else { "false" }),
                    ("user_id_type", self.user_id_type),
                ])
                .bearer_auth(token.expose())
                .send()
                .await,
        )
        .await?;
        if reply.status == 200 && !reply.is_json {
            return Ok(Ok(Some(reply.body)));
        }
        let envelope: Option<Envelope> = serde_json::from_slice(&reply.body).ok();
        if envelope.as_ref().is_some_and(|e| e.code == FACE_NOT_FOUND) {
            return Ok(Ok(None));
        }
        let msg = envelope.as_ref().map_or("", |e| e.msg.as_str()).to_string();
        Ok(Err(reply.classify(envelope.map(|e| e.code), &msg)))
    }

    async fn send_face(&self, token: &Secret, upload: &Upload<'_>) -> Result<Verdict, Failure> {
        let ext = match upload.format {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
        };
        let mime = match upload.format {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
        };
        let file_name = format!("{}.{ext}", upload.person_id);
        let part = Part::bytes(upload.bytes.to_vec())
            .file_name(file_name.clone())
            .mime_str(mime)
            .map_err(|e| Failure::network(&self.name, &e))?;
        let form = Form::new()
            .part("files", part)
            .text("file_type", ext)
            .text("file_name", file_name);
        let reply = Reply::read(
            &self.name,
            self.client
                .put(self.face_url(upload.user_id)?)
                .query(&[("user_id_type", self.user_id_type)])
                .bearer_auth(token.expose())
                .multipart(form)
                .send()
                .await,
        )
        .await?;
        let envelope: Option<Envelope> = serde_json::from_slice(&reply.body).ok();
        let msg = envelope.as_ref().map_or("", |e| e.msg.as_str()).to_string();
        Ok(reply.classify(envelope.map(|e| e.code), &msg))
    }
}

/// How long before expiry a token is replaced: the SDKs use 3 minutes; a short-lived token
/// (an emulator's) keeps at least three quarters of its life.
fn refresh_margin(lifetime: Duration) -> Duration {
    Duration::from_secs(180).min(lifetime / 4)
}

fn request_id(resp: &reqwest::Response) -> Option<String> {
    header(resp, "x-tt-logid").or_else(|| header(resp, "x-request-id"))
}

/// A Feishu response as read off the wire: what classifying it needs, and the body.
struct Reply {
    status: u16,
    /// `X-Tt-Logid`, the id Feishu's support asks for.
    logid: Option<String>,
    /// `x-ogw-ratelimit-reset`, seconds until a throttled API takes requests again.
    reset: Option<String>,
    is_json: bool,
    body: Vec<u8>,
}

impl Reply {
    /// Reads a sent request's response; failing to get one at all is a network failure of the
    /// target named `target`.
    async fn read(
        target: &str,
        sent: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<Reply, Failure> {
        let resp = sent.map_err(|e| Failure::network(target, &e))?;
        let status = resp.status().as_u16();
        let logid = request_id(&resp);
        let reset = header(&resp, "x-ogw-ratelimit-reset");
        let is_json = header(&resp, "content-type").is_some_and(|c| c.contains("json"));
        let body = resp
            .bytes()
            .await
            .map_err(|e| Failure::network(target, &e))?
            .to_vec();
        Ok(Reply {
            status,
            logid,
            reset,
            is_json,
            body,
        })
    }

    fn classify(&self, code: Option<i64>, msg: &str) -> Verdict {
        classify(
            self.status,
            code,
            msg,
            self.reset.as_deref(),
            self.logid.clone(),
        )
    }
}

/// The outcome of one Feishu response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ok(Receipt),
    /// The token was refused: fetch a fresh one and try once more.
    TokenInvalid(Failure),
    Fail(Failure),
}

/// Classifies a Feishu response by HTTP status and the envelope's `code` (which can say
/// failure under HTTP 200, and must be looked at first).
pub(crate) fn classify(
    status: u16,
    code: Option<i64>,
    msg: &str,
    ratelimit_reset: Option<&str>,
    request_id: Option<String>,
) -> Verdict {
    let fail = |class, reason, text: String| {
        Failure::new(class, reason, text).with_http(
            status,
            code.map(|c| c.to_string()),
            request_id.clone(),
        )
    };
    let described = |what: &str| match code {
        Some(c) => format!("{what} (code {c}: {msg})"),
        None => format!("{what} (HTTP {status})"),
    };
    match code {
        Some(0) if status == 200 => Verdict::Ok(Receipt {
            http_status: status,
            remote_id: None,
            request_id,
        }),
        Some(c) if TOKEN_INVALID.contains(&c) => Verdict::TokenInvalid(fail(
            Class::Fatal,
            ReasonCode::AuthFailed,
            described("feishu refused a fresh access token"),
        )),
        Some(RATE_LIMITED) => Verdict::Fail(throttled(
            fail(
                Class::Transient,
                ReasonCode::Throttled,
                described("feishu throttled the request"),
            ),
            ratelimit_reset,
        )),
        _ if status == 429 => Verdict::Fail(throttled(
            fail(
                Class::Transient,
                ReasonCode::Throttled,
                described("feishu throttled the request"),
            ),
            ratelimit_reset,
        )),
        Some(SCOPE_MISSING) => Verdict::Fail(fail(
            Class::Fatal,
            ReasonCode::AuthFailed,
            described(
                "the feishu app lacks a permission: grant acs:users (with contact:user.employee_id:readonly for user_id, and contact:user.id:readonly to look ids up by e-mail or mobile) in the developer console",
            ),
        )),
        Some(USER_NOT_FOUND) => Verdict::Fail(fail(
            Class::Permanent,
            ReasonCode::UserNotFound,
            described("feishu does not know this user or the user is in no access-control group"),
        )),
        Some(FACE_CROP_FAILED) => Verdict::Fail(fail(
            Class::Permanent,
            ReasonCode::FaceRejected,
            described("feishu could not crop a face from the photo"),
        )),
        _ if status >= 500 => Verdict::Fail(fail(
            Class::Transient,
            ReasonCode::ServerError,
            described("feishu server error"),
        )),
        None if status == 200 => Verdict::Fail(fail(
            Class::Transient,
            ReasonCode::ServerError,
            "feishu answered HTTP 200 without a JSON envelope".into(),
        )),
        _ => Verdict::Fail(fail(
            Class::Permanent,
            ReasonCode::BadRequest,
            described("feishu refused the request"),
        )),
    }
}

fn throttled(mut f: Failure, reset: Option<&str>) -> Failure {
    f.pause_target = true;
    f.retry_after = reset
        .and_then(|r| r.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(600.0)));
    f
}

#[async_trait]
impl Target for Feishu {
    fn name(&self) -> &str {
        &self.name
    }

    async fn prepare(&self) -> Result<(), Failure> {
        self.token().await.map(|_| ())
    }

    async fn upload(&self, upload: &Upload<'_>) -> Result<Receipt, Failure> {
        let token = self.token().await?;
        match self.send_face(&token, upload).await? {
            Verdict::Ok(r) => Ok(r),
            Verdict::Fail(f) => Err(f),
            Verdict::TokenInvalid(_) => {
                // Never retry with the token that was just refused.
                self.invalidate(&token).await;
                let fresh = self.token().await?;
                match self.send_face(&fresh, upload).await? {
                    Verdict::Ok(r) => Ok(r),
                    Verdict::Fail(f) | Verdict::TokenInvalid(f) => Err(f),
                }
            }
        }
    }

    /// The token (the app's credentials), an ACS read (`acs:users`), and, when the roster
    /// has people known by e-mail or mobile only, a lookup of one of them
    /// (`contact:user.id:readonly`).
    async fn doctor(&self, probe: &Probe<'_>) -> Vec<Check> {
        let token = probe.run(|| self.token()).await;
        let mut checks = doctor::first_contact(
            &token,
            "the app id and secret are accepted (a tenant access token was issued)",
        );
        if token.is_err() {
            return checks;
        }
        let scope_missing = |f: &Failure| f.code.as_deref() == Some(&SCOPE_MISSING.to_string());
        let needs_employee_id = if self.user_id_type == "user_id" {
            " (with user_id_type = \"user_id\", also contact:user.employee_id:readonly)"
        } else {
            ""
        };
        checks.push(match probe.run(|| self.list_users(None)).await {
            Ok(page) => Check::ok(
                "scope_acs_users",
                format!(
                    "acs:users is granted: the access-control user list reads ({} user(s) on \
                     its first page)",
                    page.users.len()
                ),
            ),
            Err(f) if scope_missing(&f) => Check::failed(
                "scope_acs_users",
                format!(
                    "the app may not read or write access-control users: {}",
                    f.message
                ),
                format!(
                    "grant acs:users{needs_employee_id} to app {} in the Feishu developer \
                     console, then publish a new version of the app",
                    self.app_id
                ),
            ),
            Err(f) => Check::from_failure("scope_acs_users", &f),
        });
        if let Some(first) = probe.contacts.first() {
            let asked = std::slice::from_ref(first);
            checks.push(match probe.run(|| self.lookup_ids(asked)).await {
                Ok(_) => Check::ok(
                    "scope_contact_user_id",
                    format!(
                        "contact:user.id:readonly is granted: the {} people known by e-mail or \
                         mobile only can be looked up",
                        probe.contacts.len()
                    ),
                ),
                Err(f) if scope_missing(&f) => Check::failed(
                    "scope_contact_user_id",
                    format!(
                        "{} people are known by e-mail or mobile only, and the app may not look \
                         them up: {}",
                        probe.contacts.len(),
                        f.message
                    ),
                    format!(
                        "grant contact:user.id:readonly to app {} in the Feishu developer \
                         console and publish a new version, or give those people their id in \
                         the roster column roster.columns.{}_user_id names",
                        self.app_id, self.name
                    ),
                ),
                Err(f) => Check::from_failure("scope_contact_user_id", &f),
            });
        }
        checks
    }

    fn abilities(&self) -> Abilities {
        Abilities {
            lookup_batch: ids::BATCH,
            list_users: true,
            // Only users in an access-control permission group may hold a face (else 1490101).
            preflight: self.preflight.then_some(ReasonCode::NotInAccessGroup),
            remove_users: false,
            download: true,
        }
    }

    async fn lookup_ids(&self, contacts: &[Contact]) -> Result<Vec<(Contact, Lookup)>, Failure> {
        let body = ids::body(contacts).to_string();
        let data = self
            .call(|token| {
                self.client
                    .post(self.url(ids::PATH))
                    .query(&[("user_id_type", self.user_id_type)])
                    .bearer_auth(token.expose())
                    .header("Content-Type", "application/json; charset=utf-8")
                    .body(body.clone())
            })
            .await?;
        Ok(ids::parse(contacts, &data))
    }

    async fn list_users(&self, cursor: Option<&str>) -> Result<RemotePage, Failure> {
        let mut query = vec![
            ("page_size", users::PAGE_SIZE),
            ("user_id_type", self.user_id_type),
        ];
        if let Some(token) = cursor {
            query.push(("page_token", token));
        }
        let data = self
            .call(|token| {
                self.client
                    .get(self.url(users::LIST_PATH))
                    .query(&query)
                    .bearer_auth(token.expose())
            })
            .await?;
        users::parse_page(&data)
            .map_err(|m| Failure::new(Class::Transient, ReasonCode::ServerError, m))
    }

    async fn find_user(&self, user_id: &str) -> Result<Option<RemoteUser>, Failure> {
        let url = format!(
            "{}/{}",
            self.url(users::LIST_PATH),
            path_segment("feishu user id", user_id)?
        );
        let found = self
            .call(|token| {
                self.client
                    .get(&url)
                    .query(&[("user_id_type", self.user_id_type)])
                    .bearer_auth(token.expose())
            })
            .await;
        match found {
            Ok(data) => Ok(users::parse_user(&data)),
            Err(f) if f.code.as_deref() == Some(&USER_NOT_FOUND.to_string()) => Ok(None),
            Err(f) => Err(f),
        }
    }

    async fn download(&self, user_id: &str, cropped: bool) -> Result<Option<Vec<u8>>, Failure> {
        let token = self.token().await?;
        match self.get_face(&token, user_id, cropped).await? {
            Ok(face) => Ok(face),
            Err(Verdict::TokenInvalid(_)) => {
                self.invalidate(&token).await;
                let fresh = self.token().await?;
                match self.get_face(&fresh, user_id, cropped).await? {
                    Ok(face) => Ok(face),
                    Err(Verdict::Fail(f) | Verdict::TokenInvalid(f)) => Err(f),
                    Err(Verdict::Ok(_)) => Ok(None),
                }
            }
            Err(Verdict::Fail(f)) => Err(f),
            Err(Verdict::Ok(_)) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        status: u16,
        code: Option<i64>,
        reset: Option<&str>,
        expected: Option<(Class, ReasonCode)>,
        token: bool,
    ) {
        let v = classify(status, code, "msg", reset, Some("log".into()));
        match (&v, expected, token) {
            (Verdict::Ok(r), None, false) => assert_eq!(r.request_id.as_deref(), Some("log")),
            (Verdict::TokenInvalid(_), _, true) => {}
            (Verdict::Fail(f), Some((class, reason)), false) => {
                assert_eq!((f.class, f.reason), (class, reason), "{status} {code:?}");
                assert_eq!(f.request_id.as_deref(), Some("log"));
            }
            _ => panic!("{status} {code:?}: unexpected {v:?}"),
        }
    }

    #[test]
    fn responses_are_classified_by_code_first() {
        check(200, Some(0), None, None, false);
        check(200, Some(99991663), None, None, true);
        check(400, Some(99991663), None, None, true);
        check(401, Some(99991677), None, None, true);
        check(
            400,
            Some(1490101),
            None,
            Some((Class::Permanent, ReasonCode::UserNotFound)),
            false,
        );
        check(
            400,
            Some(1490108),
            None,
            Some((Class::Permanent, ReasonCode::FaceRejected)),
            false,
        );
        check(
            200,
            Some(1490108),
            None,
            Some((Class::Permanent, ReasonCode::FaceRejected)),
            false,
        );
        check(
            429,
            Some(99991400),
            Some("3"),
            Some((Class::Transient, ReasonCode::Throttled)),
            false,
        );
        check(
            400,
            Some(99991400),
            None,
            Some((Class::Transient, ReasonCode::Throttled)),
            false,
        );
        check(
            429,
            None,
            None,
            Some((Class::Transient, ReasonCode::Throttled)),
            false,
        );
        check(
            403,
            Some(99991672),
            None,
            Some((Class::Fatal, ReasonCode::AuthFailed)),
            false,
        );
        check(
            500,
            None,
            None,
            Some((Class::Transient, ReasonCode::ServerError)),
            false,
        );
        check(
            503,
            Some(1),
            None,
            Some((Class::Transient, ReasonCode::ServerError)),
            false,
        );
        check(
            200,
            None,
            None,
            Some((Class::Transient, ReasonCode::ServerError)),
            false,
        );
        check(
            400,
            Some(1234),
            None,
            Some((Class::Permanent, ReasonCode::BadRequest)),
            false,
        );
    }

    #[test]
    fn throttling_pauses_the_target_for_the_reset_the_server_gives() {
        let Verdict::Fail(f) = classify(429, Some(99991400), "limit", Some("2"), None) else {
            panic!("throttled")
        };
        assert!(f.pause_target);
        assert_eq!(f.retry_after, Some(Duration::from_secs(2)));
        let Verdict::Fail(f) = classify(429, Some(99991400), "limit", Some("soon"), None) else {
            panic!("throttled")
        };
        assert_eq!(f.retry_after, None);
    }

    #[test]
    fn short_lived_tokens_keep_most_of_their_life() {
        assert_eq!(
            refresh_margin(Duration::from_secs(7200)),
            Duration::from_secs(180)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(4)),
            Duration::from_secs(1)
        );
    }
}
