//! VziCloud FRS: signed JSON requests; the user group made sure of before uploads, then
//! `PUT /v2/frs/user/apps/:app_id/faces` with UPDATE or REPLACE. The group's user list and the
//! deletion of a user (for `verify` and `sync --prune`) are in `vzicloud/users.rs`.

mod config;
pub mod sign;
mod users;

pub use self::config::{ActionType, KIND, VziCloudConfig, is_vzicloud_id};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use super::{
    Abilities, Class, Failure, Receipt, RemotePage, Target, Upload, http_client, path_segment,
};
use crate::doctor::{self, Check, Probe};
use crate::reason::ReasonCode;
use crate::secret::Secret;

/// How long a signature stays valid. The vendor recommends a short window; requests are
/// signed at send time, so this only has to cover the trip.
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(120);

/// The VziCloud FRS target.
pub struct VziCloud {
    /// The target's name (its section's).
    name: String,
    base_url: String,
    app_id: u64,
    group_id: String,
    accesskey_id: String,
    secret: Secret,
    action_type: ActionType,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: i64,
    #[serde(default)]
    error_message: String,
}

#[derive(Deserialize)]
struct FaceResponse {
    #[serde(default)]
    face_id: Option<String>,
}

impl VziCloud {
    pub fn new(name: &str, config: &VziCloudConfig) -> Result<Self, String> {
        let secret = config
            .accesskey_secret
            .resolve(&format!("targets.{name}.accesskey_secret"))?;
        Ok(Self {
            name: name.to_string(),
            base_url: config.delivery.base_url.clone(),
            app_id: config.app_id,
            group_id: config.group_id.clone(),
            accesskey_id: config.accesskey_id.clone(),
            secret,
            action_type: config.action_type,
            client: http_client(&config.delivery)?,
        })
    }

    /// Sends one signed request; the signature is computed now, over these exact bytes.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(u16, String), Failure> {
        let expires = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            + SIGNATURE_LIFETIME.as_secs();
        let query = sign::Signing {
            accesskey_id: &self.accesskey_id,
            secret: self.secret.expose(),
            expires,
        }
        .query(method.as_str(), path, query, &body);
        let url = format!("{}{path}?{query}", self.base_url);
        let mut request = self.client.request(method, &url);
        if !body.is_empty() {
            request = request.header("Content-Type", sign::JSON).body(body);
        }
        let resp = request
            .send()
            .await
            .map_err(|e| Failure::network(&self.name, &e))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| Failure::network(&self.name, &e))?;
        Ok((status, text))
    }

    fn faces_path(&self) -> String {
        format!("/v2/frs/user/apps/{}/faces", self.app_id)
    }

    fn users_path(&self) -> Result<String, Failure> {
        Ok(format!(
            "/v2/frs/user/apps/{}/groups/{}/users",
            self.app_id,
            path_segment("vzicloud group id", &self.group_id)?
        ))
    }
}

/// Whether the group exists (`doctor`'s read).
enum GroupState {
    Exists,
    /// 3201: the group is not there yet (`sync` creates it).
    Missing,
}

/// A server clock ahead of ours by more than this is a warning: near the signature window.
const SKEW_WARNING: i64 = 30;

impl VziCloud {
    /// An unsigned request, for the server's `Date` (and whether it answers at all): the
    /// server's time, if it said, and ours when the answer came.
    async fn server_time(&self) -> Result<(Option<SystemTime>, SystemTime), Failure> {
        let url = format!("{}/v2/frs/user/apps/{}/groups", self.base_url, self.app_id);
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| Failure::network(&self.name, &e))?;
        Ok((doctor::http_date(resp.headers()), SystemTime::now()))
    }

    /// Reads one user of the group: signed, so it checks the key, the app and the group.
    async fn read_group(&self) -> Result<GroupState, Failure> {
        let (status, text) = self
            .send(
                reqwest::Method::GET,
                &self.users_path()?,
                &[("offset", "0"), ("limit", "1")],
                Vec::new(),
            )
            .await?;
        if status == 200 {
            return Ok(GroupState::Exists);
        }
        let f = classify(status, &text);
        match f.code.as_deref() {
            Some("3201") => Ok(GroupState::Missing),
            _ => Err(f),
        }
    }

    /// The `clock` check from the server's time: a server ahead by the signature's lifetime
    /// or more refuses every signed request as expired.
    fn clock_check(&self, server: Option<SystemTime>, local: SystemTime) -> Check {
        let Some(server) = server else {
            return Check::warning(
                "clock",
                "the server sent no Date header: the clock was not compared",
                "make sure this machine's clock is set by NTP: VziCloud refuses signatures \
                 that expired by its clock",
            );
        };
        let skew = doctor::skew(server, local);
        let lifetime = SIGNATURE_LIFETIME.as_secs() as i64;
        let said = format!("the server's clock is {}", doctor::describe_skew(skew));
        let advice = "set this machine's clock by NTP (timedatectl set-ntp true, or chrony)";
        if skew >= lifetime {
            Check::failed(
                "clock",
                format!(
                    "{said}: every signed request expires ({}s window) before the server \
                     receives it and is refused (1002)",
                    lifetime
                ),
                advice,
            )
        } else if skew.abs() > SKEW_WARNING {
            Check::warning(
                "clock",
                format!("{said}: signatures are valid for {lifetime}s by the server's clock"),
                advice,
            )
        } else {
            Check::ok("clock", said)
        }
    }
}

/// Classifies a non-200 VziCloud answer by its `error_code`.
pub(crate) fn classify(status: u16, body: &str) -> Failure {
    let parsed: Option<ErrorBody> = serde_json::from_str(body).ok();
    let Some(ErrorBody {
        error_code,
        error_message,
    }) = parsed
    else {
        let (class, reason) = if status >= 500 || status == 429 {
            (Class::Transient, ReasonCode::ServerError)
        } else {
            (Class::Permanent, ReasonCode::BadRequest)
        };
        return Failure::new(
            class,
            reason,
            format!("vzicloud answered HTTP {status} without an error code"),
        )
        .with_http(status, None, None);
    };
    let (class, reason, what) = match error_code {
        1002 => (
            Class::Transient,
            ReasonCode::AuthFailed,
            "the signature expired on the way; signed again",
        ),
        1001 | 1003 | 1004 => (
            Class::Fatal,
            ReasonCode::AuthFailed,
            "vzicloud refused the request signature: check accesskey_id and the secret",
        ),
        1005 | 1006 | 2401 | 2402 => (
            Class::Fatal,
            ReasonCode::AuthFailed,
            "vzicloud refused the access key: check the target's accesskey_id and the secret",
        ),
        1012 | 1015 => (
            Class::Fatal,
            ReasonCode::AuthFailed,
            "the access key may not use the face service: ask the ROOT account to grant it",
        ),
        1016 => (
            Class::Transient,
            ReasonCode::Throttled,
            "vzicloud throttled the request (QPS limit)",
        ),
        1017 | 1018 => (
            Class::Fatal,
            ReasonCode::QuotaExhausted,
            "the vzicloud request quota is used up",
        ),
        1106 | 1108 | 1109 => (
            Class::Transient,
            ReasonCode::ServerError,
            "vzicloud could not process the request now",
        ),
        1110 | 3001 | 3002 | 3003 => (
            Class::Permanent,
            ReasonCode::FaceRejected,
            "vzicloud found no usable face in the photo",
        ),
        3301 => (
            Class::Permanent,
            ReasonCode::UserNotFound,
            "vzicloud has no such user (action_type = UPDATE needs the user to exist)",
        ),
        3101 => (
            Class::Fatal,
            ReasonCode::BadRequest,
            "vzicloud has no such face application: check the target's app_id",
        ),
        _ if status >= 500 => (
            Class::Transient,
            ReasonCode::ServerError,
            "vzicloud server error",
        ),
        _ => (
            Class::Permanent,
            ReasonCode::BadRequest,
            "vzicloud refused the request",
        ),
    };
    let mut f = Failure::new(
        class,
        reason,
        format!("{what} (code {error_code}: {error_message})"),
    )
    .with_http(status, Some(error_code.to_string()), None);
    if error_code == 1016 {
        f.pause_target = true;
        f.retry_after = Some(Duration::from_secs(1));
    }
    f
}

#[async_trait]
impl Target for VziCloud {
    fn name(&self) -> &str {
        &self.name
    }

    /// Makes sure the group exists: create it, and take "already exists" (3202) as success.
    async fn prepare(&self) -> Result<(), Failure> {
        let path = format!("/v2/frs/user/apps/{}/groups", self.app_id);
        let body = serde_json::json!({
            "group_id": self.group_id,
            "group_name": self.group_id,
            "remark": "managed by facesync",
        });
        let (status, text) = self
            .send(
                reqwest::Method::POST,
                &path,
                &[],
                body.to_string().into_bytes(),
            )
            .await?;
        if status == 200 {
            return Ok(());
        }
        let f = classify(status, &text);
        if f.code.as_deref() == Some("3202") {
            return Ok(());
        }
        Err(match f.class {
            // A group that cannot be made stops the target: every upload would fail the same way.
            Class::Permanent => Failure {
                class: Class::Fatal,
                message: format!("cannot create group `{}`: {}", self.group_id, f.message),
                ..f
            },
            _ => f,
        })
    }

    async fn upload(&self, upload: &Upload<'_>) -> Result<Receipt, Failure> {
        let body = serde_json::json!({
            "image_type": "BASE64",
            "image": BASE64.encode(upload.bytes),
            "group_id": self.group_id,
            "user_id": upload.user_id,
            "user_name": upload.name,
            "action_type": self.action_type.as_str(),
        });
        let (status, text) = self
            .send(
                reqwest::Method::PUT,
                &self.faces_path(),
                &[],
                body.to_string().into_bytes(),
            )
            .await?;
        if status != 200 {
            return Err(classify(status, &text));
        }
        let face: Option<FaceResponse> = serde_json::from_str(&text).ok();
        Ok(Receipt {
            http_status: status,
            remote_id: face.and_then(|f| f.face_id),
            request_id: None,
        })
    }

    /// Reachable and the clock (an unsigned request's `Date`), then a signed read of the
    /// group: the access key, the app and the group (a missing one is a warning: `sync`
    /// creates it). Unlike `prepare`, nothing is created.
    async fn doctor(&self, probe: &Probe<'_>) -> Vec<Check> {
        let (server, local) = match probe.run(|| self.server_time()).await {
            Ok(times) => times,
            Err(f) => return vec![Check::from_failure("reachable", &f)],
        };
        let clock = self.clock_check(server, local);
        let clock_failed = clock.status == doctor::Status::Failed;
        let mut checks = vec![doctor::reached(), clock];
        if clock_failed {
            return checks;
        }
        let key_ok = || {
            Check::ok(
                "credentials",
                format!(
                    "access key {} and its signatures are accepted",
                    self.accesskey_id
                ),
            )
        };
        let app_ok = || Check::ok("app", format!("face application {} exists", self.app_id));
        match probe.run(|| self.read_group()).await {
            Ok(state) => {
                checks.extend([key_ok(), app_ok()]);
                checks.push(match state {
                    GroupState::Exists => {
                        Check::ok("group", format!("group `{}` exists", self.group_id))
                    }
                    GroupState::Missing => Check::warning(
                        "group",
                        format!("group `{}` does not exist yet", self.group_id),
                        "nothing to do: the next sync creates it (check group_id if it should \
                         exist already)",
                    ),
                });
            }
            Err(f) if f.code.as_deref() == Some("3101") => {
                checks.push(key_ok());
                checks.push(Check::failed(
                    "app",
                    f.message.clone(),
                    format!(
                        "set app_id under [targets.{}] to the id of an application of this \
                         account (VziCloud console, face recognition service)",
                        self.name
                    ),
                ));
            }
            Err(f) => checks.push(Check::from_failure("credentials", &f)),
        }
        checks
    }

    fn abilities(&self) -> Abilities {
        Abilities {
            list_users: true,
            remove_users: true,
            ..Abilities::default()
        }
    }

    /// The group's users; a group that does not exist yet has none.
    async fn list_users(&self, cursor: Option<&str>) -> Result<RemotePage, Failure> {
        let offset: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let (offset_text, limit_text) = (offset.to_string(), users::PAGE.to_string());
        let query = [
            ("offset", offset_text.as_str()),
            ("limit", limit_text.as_str()),
        ];
        let (status, text) = self
            .send(
                reqwest::Method::GET,
                &self.users_path()?,
                &query,
                Vec::new(),
            )
            .await?;
        if status != 200 {
            let f = classify(status, &text);
            return match f.code.as_deref() {
                Some("3201") => Ok(RemotePage::default()),
                _ => Err(f),
            };
        }
        users::parse_page(&text, offset)
            .map_err(|m| Failure::new(Class::Transient, ReasonCode::ServerError, m))
    }

    /// Deletes a user of the group; one already gone (3301, or no group: 3201) is a success.
    async fn remove_user(&self, user_id: &str) -> Result<Receipt, Failure> {
        let path = format!(
            "{}/{}",
            self.users_path()?,
            path_segment("vzicloud user id", user_id)?
        );
        let (status, text) = self
            .send(reqwest::Method::DELETE, &path, &[], Vec::new())
            .await?;
        if status == 200 {
            return Ok(Receipt {
                http_status: status,
                ..Receipt::default()
            });
        }
        let f = classify(status, &text);
        match f.code.as_deref() {
            Some("3301" | "3201") => Ok(Receipt {
                http_status: status,
                ..Receipt::default()
            }),
            _ => Err(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: &str, class: Class, reason: ReasonCode) {
        let f = classify(status, body);
        assert_eq!((f.class, f.reason), (class, reason), "{status} {body}");
    }

    fn err(code: i64) -> String {
        format!(r#"{{"error_code":{code},"error_message":"x"}}"#)
    }

    #[test]
    fn errors_are_classified_by_code() {
        check(401, &err(1002), Class::Transient, ReasonCode::AuthFailed);
        check(401, &err(1004), Class::Fatal, ReasonCode::AuthFailed);
        check(401, &err(1005), Class::Fatal, ReasonCode::AuthFailed);
        check(429, &err(1016), Class::Transient, ReasonCode::Throttled);
        check(403, &err(1017), Class::Fatal, ReasonCode::QuotaExhausted);
        check(403, &err(1018), Class::Fatal, ReasonCode::QuotaExhausted);
        check(500, &err(1108), Class::Transient, ReasonCode::ServerError);
        check(400, &err(1110), Class::Permanent, ReasonCode::FaceRejected);
        check(400, &err(3002), Class::Permanent, ReasonCode::FaceRejected);
        check(404, &err(3301), Class::Permanent, ReasonCode::UserNotFound);
        check(400, &err(1103), Class::Permanent, ReasonCode::BadRequest);
        check(
            502,
            "<html>bad gateway</html>",
            Class::Transient,
            ReasonCode::ServerError,
        );
        check(400, "", Class::Permanent, ReasonCode::BadRequest);
    }

    #[test]
    fn qps_limits_pause_the_whole_target() {
        let f = classify(429, &err(1016));
        assert!(f.pause_target);
        assert_eq!(f.code.as_deref(), Some("1016"));
    }
}
