//! The clouds faces are delivered to. Each target is one module behind the [`Target`]
//! interface; this file is the registry that names them and builds them from the config.
//!
//! A target knows its own auth, request shape and error codes, and classifies every failure
//! as [`Class::Transient`], [`Class::Permanent`] or [`Class::Fatal`]. It does not retry
//! (beyond a token refresh), rate-limit or record anything: the delivery engine does that, the
//! same way for every target. Targets never touch the file system or the state DB.

pub mod feishu;
pub mod vzicloud;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{Config, OutputFormat, is_vzicloud_id};
use crate::reason::ReasonCode;
use crate::roster::Person;

/// Every target this build knows, in the order reports list them.
pub const NAMES: &[&str] = &["feishu", "vzicloud"];

/// One face to deliver.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// The roster's employee id.
    pub person_id: &'a str,
    /// The id the target knows the person by.
    pub user_id: &'a str,
    pub name: &'a str,
    pub bytes: &'a [u8],
    pub format: OutputFormat,
}

/// A target's answer to a successful request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    pub http_status: u16,
    /// The vendor's own id for what was stored (VziCloud's face_id).
    pub remote_id: Option<String>,
    /// The request id the vendor's support asks for (Feishu's X-Tt-Logid).
    pub request_id: Option<String>,
}

/// How the engine should treat a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Worth retrying: timeouts, dropped connections, 5xx, throttling, an expired signature.
    Transient,
    /// This person (or this photo) will fail the same way until something changes.
    Permanent,
    /// The target cannot work at all (credentials, scope, quota): stop it for this run.
    Fatal,
}

/// A failed request, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub class: Class,
    pub reason: ReasonCode,
    pub http_status: Option<u16>,
    /// The vendor's error code, as text.
    pub code: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
    /// How long the vendor asked us to wait (a rate-limit reset).
    pub retry_after: Option<Duration>,
    /// True when the whole target should pause, not just this request (throttling).
    pub pause_target: bool,
}

impl Failure {
    pub fn new(class: Class, reason: ReasonCode, message: impl Into<String>) -> Self {
        Self {
            class,
            reason,
            http_status: None,
            code: None,
            message: message.into(),
            request_id: None,
            retry_after: None,
            pause_target: false,
        }
    }

    /// A failure to get an answer at all (connect, timeout, a dropped connection).
    pub fn network(err: &reqwest::Error) -> Self {
        let what = if err.is_timeout() {
            "timed out"
        } else if err.is_connect() {
            "cannot connect"
        } else {
            "connection failed"
        };
        // reqwest's messages name the URL, whose query may hold a signature: keep it out.
        let detail = err.without_url_message();
        Self::new(
            Class::Transient,
            ReasonCode::NetworkError,
            format!("{what}: {detail}"),
        )
    }

    pub fn with_http(
        mut self,
        status: u16,
        code: Option<String>,
        request_id: Option<String>,
    ) -> Self {
        self.http_status = Some(status);
        self.code = code;
        self.request_id = request_id;
        self
    }
}

/// reqwest's error text without the URL (which may carry a signature).
trait WithoutUrl {
    fn without_url_message(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_message(&self) -> String {
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(self);
        let mut parts = Vec::new();
        while let Some(s) = source {
            parts.push(s.to_string());
            source = s.source();
        }
        if parts.is_empty() {
            "no details".to_string()
        } else {
            parts.join(": ")
        }
    }
}

/// A cloud that faces are delivered to.
#[async_trait]
pub trait Target: Send + Sync {
    /// The target's name, as in the config (`[targets.NAME]`) and reports.
    fn name(&self) -> &'static str;

    /// Makes the target ready before the first upload (a token, a group). A fatal failure here
    /// stops this target for the run.
    async fn prepare(&self) -> Result<(), Failure>;

    /// Delivers one face. Signs (or authenticates) at send time, so a retry is a fresh request.
    async fn upload(&self, upload: &Upload<'_>) -> Result<Receipt, Failure>;

    /// Downloads the face a user holds (`cropped`: the target's face crop), `None` when the
    /// user has none. Targets without a download API say so.
    async fn download(&self, _user_id: &str, _cropped: bool) -> Result<Option<Vec<u8>>, Failure> {
        Err(Failure::new(
            Class::Fatal,
            ReasonCode::BadRequest,
            format!("{} has no face download API", self.name()),
        ))
    }
}

/// Builds an enabled target from the config. Secrets are resolved here, at the last moment.
pub fn build(config: &Config, name: &str) -> Result<Arc<dyn Target>, String> {
    match name {
        "feishu" => {
            let c = config
                .feishu
                .as_ref()
                .ok_or("no [targets.feishu] section")?;
            Ok(Arc::new(feishu::Feishu::new(c)?))
        }
        "vzicloud" => {
            let c = config
                .vzicloud
                .as_ref()
                .ok_or("no [targets.vzicloud] section")?;
            Ok(Arc::new(vzicloud::VziCloud::new(c)?))
        }
        other => Err(format!("unknown target `{other}`")),
    }
}

/// The id `target` knows `person` by, or why the person's id cannot be sent there.
pub fn user_id_for(target: &str, person: &Person) -> Result<String, String> {
    match target {
        "feishu" => Ok(person
            .feishu_user_id
            .clone()
            .unwrap_or_else(|| person.id.clone())),
        "vzicloud" => {
            let id = person.vzicloud_user_id.as_deref().unwrap_or(&person.id);
            if is_vzicloud_id(id) {
                Ok(id.to_string())
            } else {
                Err(format!(
                    "VziCloud user id `{id}` is not 1 to 48 letters, digits or underscores: \
                     fix it or map it with roster.columns.vzicloud_user_id"
                ))
            }
        }
        other => Err(format!("unknown target `{other}`")),
    }
}

/// The HTTP client a target uses: rustls, the configured timeout, a user agent naming us.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("facesync/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// A response header as text.
pub(crate) fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
