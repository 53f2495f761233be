//! The clouds faces are delivered to. Each target is one module behind the [`Target`]
//! interface; this file is the registry that names them and builds them from the config.
//!
//! A target knows its own auth, request shape and error codes, and classifies every failure
//! as [`Class::Transient`], [`Class::Permanent`] or [`Class::Fatal`]. It does not retry
//! (beyond a token refresh), rate-limit or record anything: the delivery engine does that, the
//! same way for every target. Targets never touch the file system or the state DB.
//!
//! Beyond uploads, a target may say (through [`Abilities`]) that it can look people up by
//! e-mail or mobile, list the users it holds, check one user, or remove a user; the engine
//! asks before calling the matching method, and every such call is one request it can
//! rate-limit and retry.

pub mod feishu;
pub mod hikvision;
pub mod registry;
pub mod vzicloud;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use crate::config::{Config, DeliveryConfig, OutputFormat};
use crate::doctor::{Check, Probe};
use crate::reason::ReasonCode;
use crate::roster::Person;

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

/// How a roster person is known to a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The id itself: a per-target id column, or the employee id.
    Id(String),
    /// Not known yet: the target looks it up by this e-mail address or mobile number.
    Contact(Contact),
}

/// An e-mail address or a mobile number a target can look a person up by, normalized (e-mail
/// trimmed and lower-case; mobile without spaces, dashes or brackets), so that the same person
/// is one cache entry however the roster spells them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Contact {
    Email(String),
    Mobile(String),
}

impl Contact {
    pub fn email(raw: &str) -> Option<Contact> {
        let e = raw.trim().to_lowercase();
        (!e.is_empty()).then_some(Contact::Email(e))
    }

    pub fn mobile(raw: &str) -> Option<Contact> {
        let m: String = raw
            .chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '(' | ')'))
            .collect();
        (!m.is_empty()).then_some(Contact::Mobile(m))
    }

    /// The address or number itself.
    pub fn value(&self) -> &str {
        match self {
            Self::Email(v) | Self::Mobile(v) => v,
        }
    }

    /// The form the state DB keys the cache by: `email:<address>` or `mobile:<number>`.
    pub fn key(&self) -> String {
        match self {
            Self::Email(v) => format!("email:{v}"),
            Self::Mobile(v) => format!("mobile:{v}"),
        }
    }

    /// Reads [`Contact::key`] back.
    pub fn from_key(key: &str) -> Option<Contact> {
        match key.split_once(':')? {
            ("email", v) => Contact::email(v),
            ("mobile", v) => Contact::mobile(v),
            _ => None,
        }
    }
}

impl std::fmt::Display for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Email(v) => write!(f, "e-mail {v}"),
            Self::Mobile(v) => write!(f, "mobile {v}"),
        }
    }
}

/// What a target answered about one contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The target's id for this person.
    Found(String),
    /// Nobody the app can see has this e-mail or mobile.
    NotFound,
    /// The person has left the organisation.
    Resigned,
}

/// One user a target holds, as its user list shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUser {
    pub user_id: String,
    /// The target holds a face for them (Feishu: `feature.face_uploaded`; a VziCloud user of the
    /// group is there because of a face).
    pub has_face: bool,
}

/// One page of a target's user list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemotePage {
    pub users: Vec<RemoteUser>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<String>,
    /// Where every later page starts, when the first page tells (a list paged by offset, with
    /// its total): the engine then reads those pages concurrently, up to the target's
    /// `concurrency` and within its rate limit, and their own `next` is not followed. Empty:
    /// follow `next`, one page after another.
    pub later: Vec<String>,
}

/// What a target can do beyond uploads. The engine checks before calling the matching method;
/// the default is "nothing more".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Abilities {
    /// [`Target::lookup_ids`] takes at most this many e-mail addresses and this many mobile
    /// numbers a call; 0: the target cannot look people up.
    pub lookup_batch: usize,
    /// [`Target::list_users`] pages through the users the target holds.
    pub list_users: bool,
    /// `sync` lists the users before uploading (needs `list_users` and [`Target::find_user`]):
    /// a user the list does not show, and a check of that one user confirms, cannot receive a
    /// face and is held back with this reason, without an upload.
    pub preflight: Option<ReasonCode>,
    /// [`Target::remove_user`] deletes a user and their faces (`sync --prune`).
    pub remove_users: bool,
    /// [`Target::download`] gives back the face a user holds (`facesync fetch`).
    pub download: bool,
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

    /// A failure to get an answer at all (connect, timeout, a dropped connection). A server
    /// certificate that is not trusted is fatal for the target: every request would meet it.
    pub fn network(target: &str, err: &reqwest::Error) -> Self {
        if let Some(cert) = certificate_error(err) {
            let host = err.url().and_then(|u| u.host_str()).unwrap_or("the server");
            return Self::new(
                Class::Fatal,
                ReasonCode::NetworkError,
                format!(
                    "the TLS certificate of {host} is not trusted ({cert}): if your company \
                     inspects TLS with its own root CA, set `ca_file` under [targets.{target}] \
                     to that CA's PEM file (or install the CA in the operating system's store)"
                ),
            );
        }
        let host = err.url().and_then(|u| u.host_str()).unwrap_or("the server");
        let port = err
            .url()
            .and_then(|u| u.port_or_known_default())
            .map_or(String::new(), |p| format!(":{p}"));
        // reqwest's messages name the URL, whose query may hold a signature: keep it out.
        let detail = err.without_url_message();
        let message = match Unreachable::of(err) {
            Unreachable::Dns => format!(
                "cannot resolve {host} (DNS: {detail}): check base_url under [targets.{target}] \
                 and the machine's DNS settings"
            ),
            Unreachable::Refused => format!(
                "{host}{port} refused the connection (TCP: {detail}): check the port in base_url \
                 under [targets.{target}], that the service is up, and any firewall between"
            ),
            Unreachable::Timeout => format!("timed out: {detail}"),
            Unreachable::Tls => format!(
                "the TLS handshake with {host}{port} failed ({detail}): check that base_url under \
                 [targets.{target}] has the right scheme (https or http) and port"
            ),
            Unreachable::Other if err.is_connect() => format!("cannot connect: {detail}"),
            Unreachable::Other => format!("connection failed: {detail}"),
        };
        Self::new(Class::Transient, ReasonCode::NetworkError, message)
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

/// The TLS certificate error behind a failed request, if that is what it is.
fn certificate_error(err: &reqwest::Error) -> Option<rustls::Error> {
    let mut found = None;
    walk(err, |e| {
        if let Some(tls @ rustls::Error::InvalidCertificate(_)) = e.downcast_ref::<rustls::Error>()
        {
            found = Some(tls.clone());
        }
        found.is_some()
    });
    found
}

/// Which layer kept a request from getting an answer, as far as the error chain tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unreachable {
    /// The host name did not resolve.
    Dns,
    /// Nothing listens on the port (or a firewall says so).
    Refused,
    Timeout,
    /// TLS failed for another reason than the certificate (a plain-HTTP port, a proxy).
    Tls,
    Other,
}

impl Unreachable {
    fn of(err: &reqwest::Error) -> Unreachable {
        if err.is_timeout() {
            return Unreachable::Timeout;
        }
        let mut found = Unreachable::Other;
        walk(err, |e| {
            if e.downcast_ref::<rustls::Error>().is_some() {
                found = Unreachable::Tls;
            } else if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::ConnectionRefused {
                    found = Unreachable::Refused;
                } else if io.kind() == std::io::ErrorKind::TimedOut {
                    found = Unreachable::Timeout;
                }
            }
            // hyper-util's resolver error says "dns error"; getaddrinfo's, "failed to lookup".
            let text = e.to_string();
            if found == Unreachable::Other
                && (text.starts_with("dns error") || text.contains("failed to lookup address"))
            {
                found = Unreachable::Dns;
            }
            found != Unreachable::Other
        });
        found
    }
}

/// Calls `visit` on every error in `err`'s chain until it returns true. rustls's error reaches
/// reqwest inside `io::Error`s (two, nested), whose `source()` skips what they wrap, so every
/// `io::Error` met is opened too.
fn walk(err: &reqwest::Error, mut visit: impl FnMut(&(dyn std::error::Error + 'static)) -> bool) {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if visit(e) {
            return;
        }
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
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
    fn name(&self) -> &str;

    /// Makes the target ready before the first upload (a token, a group). A fatal failure here
    /// stops this target for the run.
    async fn prepare(&self) -> Result<(), Failure>;

    /// Called after [`Target::prepare`] with the ids this run will upload to: a target of
    /// bounded capacity (a door terminal) refuses the run with a fatal failure when they would
    /// not fit, before anything is sent. The default: no limit.
    async fn check_room(&self, _arriving: &[&str]) -> Result<(), Failure> {
        Ok(())
    }

    /// `facesync doctor`'s checks of this target, every request through `probe`, changing
    /// nothing: that it is reachable, accepts the credentials, and whatever else the kind
    /// knows tonight's run needs (scopes, a group, room, the clock). The default: the
    /// preparation, as `reachable` and `credentials`.
    async fn doctor(&self, probe: &Probe<'_>) -> Vec<Check> {
        crate::doctor::prepared(self, probe).await
    }

    /// Delivers one face. Signs (or authenticates) at send time, so a retry is a fresh request.
    async fn upload(&self, upload: &Upload<'_>) -> Result<Receipt, Failure>;

    /// Downloads the face a user holds (`cropped`: the target's face crop), `None` when the
    /// user has none. Only called when [`Abilities::download`] says so.
    async fn download(&self, _user_id: &str, _cropped: bool) -> Result<Option<Vec<u8>>, Failure> {
        Err(no_api(self.name(), "face download"))
    }

    /// What the target can do beyond uploads.
    fn abilities(&self) -> Abilities {
        Abilities::default()
    }

    /// Looks up the ids of people known by e-mail or mobile only: one request, with at most
    /// `abilities().lookup_batch` contacts of each kind. Every contact asked about is answered.
    async fn lookup_ids(&self, _contacts: &[Contact]) -> Result<Vec<(Contact, Lookup)>, Failure> {
        Err(no_api(self.name(), "id lookup"))
    }

    /// One page of the users the target holds; `cursor` is the previous page's `next`.
    async fn list_users(&self, _cursor: Option<&str>) -> Result<RemotePage, Failure> {
        Err(no_api(self.name(), "user list"))
    }

    /// One user, or `None` when the target does not know them (or they may not hold a face).
    async fn find_user(&self, _user_id: &str) -> Result<Option<RemoteUser>, Failure> {
        Err(no_api(self.name(), "user lookup"))
    }

    /// Deletes a user and their faces; a user already gone is a success.
    async fn remove_user(&self, _user_id: &str) -> Result<Receipt, Failure> {
        Err(no_api(self.name(), "user deletion"))
    }
}

/// The failure of a call the target has no API for: the engine asked without checking
/// [`Target::abilities`], which is a bug, and stops the target.
fn no_api(target: &str, what: &str) -> Failure {
    Failure::new(
        Class::Fatal,
        ReasonCode::BadRequest,
        format!("{target} has no {what} API"),
    )
}

/// Builds a configured target's client. Secrets are resolved here, at the last moment.
pub fn build(config: &Config, name: &str) -> Result<Arc<dyn Target>, String> {
    let target = config
        .target(name)
        .ok_or_else(|| format!("no [targets.{name}] section"))?;
    target.settings.build(name)
}

/// How `target` knows `person` (by the target's id column, or as its kind decides), or why the
/// person's id cannot be sent there.
pub fn identity_for(config: &Config, target: &str, person: &Person) -> Result<Identity, String> {
    let settings = &config
        .target(target)
        .ok_or_else(|| format!("no [targets.{target}] section"))?
        .settings;
    settings.identity(person, person.target_ids.get(target).map(String::as_str))
}

/// What is percent-encoded in a path segment or a query value: everything but RFC 3986's
/// unreserved characters (letters, digits, `-` `.` `_` `~`), as the official SDKs do.
/// Sub-delimiters (`!` `$` `&` `+` `=` ...) are encoded too, which every server decodes.
pub(crate) const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One path segment built from data (a user id, a group id), percent-encoded with
/// [`NOT_UNRESERVED`]: every target builds its paths through here. Encoding an unreserved
/// character (`%5F` for `_`) is legal but not safe: a gateway that does not decode it looks
/// up the wrong user, so they go as they are.
///
/// `what` names the value for the error: an empty value, `.` or `..` cannot be a segment
/// (URL parsers remove dot segments, encoded or not), so the request would reach another
/// resource.
pub(crate) fn path_segment(what: &str, value: &str) -> Result<String, Failure> {
    if matches!(value, "" | "." | "..") {
        return Err(Failure::new(
            Class::Permanent,
            ReasonCode::BadTargetId,
            format!("{what} `{value}` cannot be sent in a URL path: fix the id in the roster"),
        ));
    }
    Ok(utf8_percent_encode(value, NOT_UNRESERVED).to_string())
}

/// The HTTP client a target uses: rustls, the configured timeout, a user agent naming us.
/// It trusts the OS's root certificates (where a company's TLS-inspecting CA is usually
/// installed), the bundled Mozilla roots (for machines whose store is empty or stale), and
/// the target's `ca_file`.
pub(crate) fn http_client(delivery: &DeliveryConfig) -> Result<reqwest::Client, String> {
    let timeout = delivery.timeout;
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("facesync/", env!("CARGO_PKG_VERSION")))
        .tls_built_in_native_certs(true)
        .tls_built_in_webpki_certs(true);
    for der in delivery.ca_file.iter().flat_map(|ca| &ca.certs) {
        let cert = reqwest::Certificate::from_der(der)
            .map_err(|e| format!("cannot use a certificate of ca_file: {e}"))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_keep_unreserved_characters_and_encode_the_rest() {
        let check = |value: &str, want: &str| {
            assert_eq!(
                path_segment("id", value).as_deref().map_err(|f| &f.message),
                Ok(want),
                "{value:?}"
            );
        };
        check("ou_7dab8a3d3cdcc9da", "ou_7dab8a3d3cdcc9da");
        check("a.b", "a.b");
        check("a~b", "a~b");
        check("a-b", "a-b");
        check("AZaz09-._~", "AZaz09-._~");
        check("a b", "a%20b");
        check("a/b", "a%2Fb");
        check("张伟", "%E5%BC%A0%E4%BC%9F");
        check("100%", "100%25");
        check("%5F", "%255F");
        check("a?b#c", "a%3Fb%23c");
        check("a+b=c&d", "a%2Bb%3Dc%26d");
        check("...", "...");
    }

    #[test]
    fn values_that_are_no_path_segment_are_refused_by_name() {
        for value in ["", ".", ".."] {
            let f = path_segment("feishu user id", value).unwrap_err();
            assert_eq!(
                (f.class, f.reason),
                (Class::Permanent, ReasonCode::BadTargetId)
            );
            assert!(f.message.contains("feishu user id"), "{}", f.message);
        }
    }

    #[test]
    fn contact_keys_round_trip() {
        for c in [
            Contact::Email("a@b.c".into()),
            Contact::Mobile("+8613800000001".into()),
        ] {
            assert_eq!(Contact::from_key(&c.key()), Some(c));
        }
        assert_eq!(Contact::from_key("phone:1"), None);
        assert_eq!(Contact::from_key("email:"), None);
    }
}
