//! What Hikvision's ISAPI answers, read defensively: the `ResponseStatus` of writes (a 200 alone
//! is not a success: `statusCode` must be 1), the 401 `userCheck` body, and the
//! classification of every refusal into facesync's classes and reasons. Pure: no I/O.
//!
//! Codes are those of `../shared/reference/hikvision-isapi.md` §5; where firmware disagrees on
//! the HTTP status of an answer, only the body decides.

use std::time::Duration;

use serde::Deserialize;

use crate::reason::ReasonCode;
use crate::targets::{Class, Failure};

/// A write's answer. Fields some firmware leaves out default to nothing.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResponseStatus {
    #[serde(default)]
    pub(crate) status_code: Option<i64>,
    #[serde(default)]
    pub(crate) status_string: Option<String>,
    #[serde(default)]
    pub(crate) sub_status_code: Option<String>,
    /// Decimal in JSON answers (`0x6…` in the guide's hex).
    #[serde(default)]
    pub(crate) error_code: Option<i64>,
    #[serde(default)]
    pub(crate) error_msg: Option<String>,
}

impl ResponseStatus {
    /// The status a JSON body holds, if it is one (bare or wrapped in `ResponseStatus`).
    pub(crate) fn from_body(body: &str) -> Option<ResponseStatus> {
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        let inner = value.get("ResponseStatus").unwrap_or(&value);
        let status: ResponseStatus = serde_json::from_value(inner.clone()).ok()?;
        status.status_code.is_some().then_some(status)
    }

    pub(crate) fn ok(&self) -> bool {
        self.status_code == Some(1)
    }

    pub(crate) fn sub(&self) -> &str {
        self.sub_status_code.as_deref().unwrap_or("")
    }

    fn msg(&self) -> &str {
        self.error_msg.as_deref().unwrap_or("")
    }

    /// `deviceBusy, code 0x20000004, "..."`, for messages.
    fn describe(&self) -> String {
        let mut s = self.sub().to_string();
        if s.is_empty() {
            s = format!("statusCode {}", self.status_code.unwrap_or_default());
        }
        if let Some(code) = self.error_code {
            s.push_str(&format!(", errorCode {code:#x}"));
        }
        if !self.msg().is_empty() {
            s.push_str(&format!(", errorMsg `{}`", self.msg()));
        }
        s
    }
}

/// What a 401's `<userCheck>` body says about the account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UserCheck {
    pub(crate) locked: bool,
    /// Seconds until the lock ends.
    pub(crate) unlock_in: Option<u64>,
    /// Failed logins the terminal still allows before it locks the account.
    pub(crate) attempts_left: Option<u64>,
}

impl UserCheck {
    /// Reads the XML form (`<lockStatus>`, `<unlockTime>`, `<retryLoginTime>`) or the JSON one
    /// (`lockStatus`, `resLockTime`, `retryTimes`); anything else gives nothing.
    pub(crate) fn parse(body: &str) -> UserCheck {
        let find = |names: &[&str]| {
            names.iter().find_map(|name| {
                xml_value(body, name).or_else(|| {
                    let v: serde_json::Value = serde_json::from_str(body).ok()?;
                    let v = v.get(*name).or_else(|| v.get("UserCheck")?.get(*name))?;
                    Some(match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                })
            })
        };
        UserCheck {
            locked: find(&["lockStatus"]).is_some_and(|s| s.eq_ignore_ascii_case("lock")),
            unlock_in: find(&["unlockTime", "resLockTime"]).and_then(|s| s.trim().parse().ok()),
            attempts_left: find(&["retryLoginTime", "retryTimes"])
                .and_then(|s| s.trim().parse().ok()),
        }
    }
}

/// The text of the first `<name>...</name>` element, trimmed.
pub(crate) fn xml_value(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(body[start..end].trim().to_string())
}

/// The failure a 401 means: the terminal refused the login. Never retried: terminals lock the
/// account after a handful of failed logins, and every try counts.
pub(crate) fn login_refused(target: &str, username: &str, body: &str) -> Failure {
    let check = UserCheck::parse(body);
    let state = if check.locked {
        match check.unlock_in {
            Some(s) => format!(
                "the account is locked for another {}",
                humantime::format_duration(Duration::from_secs(s))
            ),
            None => "the account is locked".to_string(),
        }
    } else {
        match check.attempts_left {
            Some(n) => format!("{n} failed login(s) left before the terminal locks the account"),
            None => "the terminal locks the account after a few failed logins".to_string(),
        }
    };
    Failure::new(
        Class::Fatal,
        ReasonCode::AuthFailed,
        format!(
            "{target} refused the login of `{username}` ({state}): check targets.{target}.username \
             and the password (password_env or password); facesync does not try again this run"
        ),
    )
    .with_http(401, Some("401".to_string()), None)
}

/// Classifies an answer that is not a success: `status` is the HTTP status, `what` names the
/// request for messages ("the face upload").
pub(crate) fn classify(target: &str, what: &str, http: u16, body: &str) -> Failure {
    let Some(rs) = ResponseStatus::from_body(body).filter(|rs| !rs.ok()) else {
        let (class, reason, detail) = match http {
            500..=599 => (
                Class::Transient,
                ReasonCode::ServerError,
                "a server error".to_string(),
            ),
            404 => (
                Class::Fatal,
                ReasonCode::NotSupported,
                "HTTP 404: the terminal has no such ISAPI call (check base_url: it is the \
                 terminal's address, such as http://10.0.0.21, with nothing after it)"
                    .to_string(),
            ),
            200..=299 => (
                Class::Transient,
                ReasonCode::ServerError,
                "an answer that is not an ISAPI status".to_string(),
            ),
            _ => (
                Class::Permanent,
                ReasonCode::BadRequest,
                format!("HTTP {http} without an ISAPI status"),
            ),
        };
        return Failure::new(class, reason, format!("{target}: {what}: {detail}"))
            .with_http(http, None, None);
    };
    let code = rs.error_code.map(|c| format!("{c:#x}"));
    let describe = rs.describe();
    let sub = rs.sub();
    let msg = rs.msg();
    let (class, reason, advice): (Class, ReasonCode, String) = match (rs.status_code, sub) {
        (Some(2), _) => (
            Class::Transient,
            ReasonCode::Throttled,
            "the terminal is busy with another operation; facesync waits and sends again".into(),
        ),
        (Some(3), _) if msg.contains("maxRecordNum") || msg.contains("FDRecordDataMaxNum") => (
            Class::Fatal,
            ReasonCode::DeviceFull,
            "the terminal is full: remove leavers (sync --prune) or move people to another terminal"
                .into(),
        ),
        (Some(3), _) => (
            Class::Transient,
            ReasonCode::ServerError,
            "the terminal reported an internal error".into(),
        ),
        (_, "notSupport") => (
            Class::Fatal,
            ReasonCode::NotSupported,
            "the terminal's firmware does not offer this call: check that it is an access-control \
             terminal with person and face management (ISAPI UserInfo and FDLib), or update its \
             firmware"
                .into(),
        ),
        (_, "lowPrivilege") => (
            Class::Fatal,
            ReasonCode::AuthFailed,
            "the account may not manage people: use the terminal's admin account or give this \
             user the person-management permission"
                .into(),
        ),
        (_, "badAuthorization") => (
            Class::Fatal,
            ReasonCode::AuthFailed,
            "the terminal refused the credentials".into(),
        ),
        (_, "employeeNoNotExist") => (
            Class::Permanent,
            ReasonCode::UserNotFound,
            "the terminal has no person with this employeeNo (create_persons = false leaves \
             creating people to another system)"
                .into(),
        ),
        (_, sub) if is_face_refusal(sub) => (
            Class::Permanent,
            ReasonCode::FaceRejected,
            face_advice(sub, msg).into(),
        ),
        (Some(7), _) => (
            Class::Fatal,
            ReasonCode::ServerError,
            "the terminal needs a reboot before it takes more changes".into(),
        ),
        (Some(4), _) => (
            Class::Fatal,
            ReasonCode::BadRequest,
            "the terminal refused the operation".into(),
        ),
        (Some(5 | 6), _) => (
            Class::Permanent,
            ReasonCode::BadRequest,
            if msg.is_empty() {
                "the terminal refused the request's content".into()
            } else {
                format!("the terminal refused the field `{msg}`")
            },
        ),
        _ if http >= 500 => (
            Class::Transient,
            ReasonCode::ServerError,
            "a server error".into(),
        ),
        _ => (
            Class::Permanent,
            ReasonCode::BadRequest,
            "the terminal refused the request".into(),
        ),
    };
    let mut f = Failure::new(
        class,
        reason,
        format!("{target}: {what}: {advice} ({describe})"),
    )
    .with_http(http, code, None);
    if rs.status_code == Some(2) {
        // Busy is the terminal asking to wait: the whole lane waits, as for throttling.
        f.pause_target = true;
        f.retry_after = Some(BUSY_WAIT);
    }
    f
}

/// How long a busy terminal is left alone before the next request: integrators wait about a
/// second (0.9 s, growing) between tries.
pub(crate) const BUSY_WAIT: Duration = Duration::from_secs(1);

/// The refusals that mean "this photo cannot be modelled".
fn is_face_refusal(sub: &str) -> bool {
    matches!(
        sub,
        "SubpicAnalysisModelingError"
            | "PicAnalysisNoTargetError"
            | "multipleFaceObjectError"
            | "picFormatError"
            | "picResolutionInvalidError"
            | "picSizeExceedError"
    )
}

fn face_advice(sub: &str, msg: &str) -> &'static str {
    match (sub, msg) {
        ("multipleFaceObjectError", _) => "the terminal found more than one face in the photo",
        ("PicAnalysisNoTargetError", _) | (_, "saveFacePic") => {
            "the terminal could not find a face it can model: retake the photo facing the \
             camera, evenly lit, the face filling much of the frame"
        }
        (_, "PicFeaturePoints") => {
            "the terminal could not find the face's feature points: retake the photo sharper and \
             facing the camera"
        }
        ("picResolutionInvalidError", _) => {
            "the terminal refused the photo's resolution: check the target's profile"
        }
        ("picSizeExceedError", _) => {
            "the terminal refused the photo's file size: lower profile.max_bytes"
        }
        _ => "the terminal could not model a face from the photo",
    }
}

/// The time a `System/time` answer (XML) gives: `localTime`, with its offset, or else the
/// offset of a POSIX `timeZone` (`CST-8:00:00` is UTC+8); `None` when it says no offset.
pub(crate) fn terminal_time(xml: &str) -> Option<std::time::SystemTime> {
    let local = element(xml, "localTime")?;
    let (clock, offset) = split_offset(local);
    let offset = match offset {
        Some(o) => o,
        None => posix_offset(element(xml, "timeZone")?)?,
    };
    let secs = local_seconds(clock)? - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// The text of the first `<name>` element.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find('<')? + start;
    Some(xml[start..end].trim())
}

/// `2026-03-01T02:00:00+08:00` as the clock part and the offset in seconds (`Z` is 0).
fn split_offset(text: &str) -> (&str, Option<i64>) {
    if let Some(clock) = text.strip_suffix('Z') {
        return (clock, Some(0));
    }
    let tail = text.len().saturating_sub(6);
    match text.get(tail..) {
        Some(off) if off.len() == 6 && (off.starts_with('+') || off.starts_with('-')) => {
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let h: Option<i64> = off.get(1..3).and_then(|h| h.parse().ok());
            let m: Option<i64> = off.get(4..6).and_then(|m| m.parse().ok());
            match (h, m) {
                (Some(h), Some(m)) => (&text[..tail], Some(sign * (h * 3600 + m * 60))),
                _ => (text, None),
            }
        }
        _ => (text, None),
    }
}

/// A POSIX zone (`CST-8:00:00`, `UTC+5:30`) as seconds east of UTC: the sign is inverted.
fn posix_offset(zone: &str) -> Option<i64> {
    let at = zone.find(['+', '-'])?;
    let sign = if zone[at..].starts_with('-') { 1 } else { -1 };
    let mut parts = zone[at + 1..].split(':').map(|p| p.trim().parse::<i64>());
    let h = parts.next()?.ok()?;
    let m = parts.next().and_then(Result::ok).unwrap_or(0);
    let s = parts.next().and_then(Result::ok).unwrap_or(0);
    Some(sign * (h * 3600 + m * 60 + s))
}

/// `YYYY-MM-DDTHH:MM:SS` (fractions ignored) as seconds since the epoch, as if UTC.
fn local_seconds(clock: &str) -> Option<i64> {
    let (date, time) = clock.split_once(['T', ' '])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, mo, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>());
    let (h, mi, sec) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

#[cfg(test)]
mod tests {

    #[test]
    fn terminal_times_are_read_with_their_offset() {
        let at = |secs: u64| Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
        let xml = |local: &str, zone: &str| {
            format!(
                "<Time><timeMode>NTP</timeMode><localTime>{local}</localTime><timeZone>{zone}</timeZone></Time>"
            )
        };
        // 2024-02-29T13:14:15Z is 1709212455.
        assert_eq!(
            terminal_time(&xml("2024-02-29T13:14:15Z", "")),
            at(1_709_212_455)
        );
        assert_eq!(
            terminal_time(&xml("2024-02-29T21:14:15+08:00", "CST-8:00:00")),
            at(1_709_212_455)
        );
        assert_eq!(
            terminal_time(&xml("2024-02-29T08:14:15-05:00", "")),
            at(1_709_212_455)
        );
        // No offset in localTime: the POSIX zone's (its sign inverted).
        assert_eq!(
            terminal_time(&xml("2024-02-29T21:14:15", "CST-8:00:00")),
            at(1_709_212_455)
        );
        assert_eq!(
            terminal_time(&xml("2024-02-29T18:44:15", "IST-5:30")),
            at(1_709_212_455)
        );
        assert_eq!(terminal_time(&xml("2024-02-29T21:14:15", "")), None);
        assert_eq!(terminal_time(&xml("yesterday", "CST-8:00:00")), None);
        assert_eq!(terminal_time("<Time/>"), None);
    }
    use super::*;

    fn status(sc: i64, sub: &str, code: i64, msg: &str) -> String {
        format!(
            r#"{{"requestURL":"/ISAPI/x","statusCode":{sc},"statusString":"s","subStatusCode":"{sub}","errorCode":{code},"errorMsg":"{msg}"}}"#
        )
    }

    fn check(http: u16, body: &str, class: Class, reason: ReasonCode) -> Failure {
        let f = classify("lobby", "the face upload", http, body);
        assert_eq!((f.class, f.reason), (class, reason), "{http} {body}: {f:?}");
        assert!(
            f.message.starts_with("lobby: the face upload: "),
            "{}",
            f.message
        );
        f
    }

    #[test]
    fn refusals_are_classified_by_their_status_not_their_http_code() {
        use Class::*;
        use ReasonCode::*;
        let busy = check(
            503,
            &status(2, "deviceBusy", 536870916, ""),
            Transient,
            Throttled,
        );
        assert!(busy.pause_target);
        assert_eq!(busy.code.as_deref(), Some("0x20000004"));
        check(
            200,
            &status(4, "notSupport", 1073741825, ""),
            Fatal,
            NotSupported,
        );
        check(
            403,
            &status(4, "lowPrivilege", 1073741826, ""),
            Fatal,
            AuthFailed,
        );
        check(
            400,
            &status(6, "SubpicAnalysisModelingError", 1610612791, "saveFacePic"),
            Permanent,
            FaceRejected,
        );
        let points = check(
            400,
            &status(
                6,
                "SubpicAnalysisModelingError",
                1610612791,
                "PicFeaturePoints",
            ),
            Permanent,
            FaceRejected,
        );
        assert!(
            points.message.contains("feature points"),
            "{}",
            points.message
        );
        check(
            400,
            &status(6, "employeeNoNotExist", 1610637343, ""),
            Permanent,
            UserNotFound,
        );
        let bad = check(
            400,
            &status(6, "badParameters", 1610612737, "maxResults"),
            Permanent,
            BadRequest,
        );
        assert!(bad.message.contains("`maxResults`"), "{}", bad.message);
        check(
            400,
            &status(5, "badJsonFormat", 1342177282, ""),
            Permanent,
            BadRequest,
        );
        let full = check(
            400,
            &status(3, "deviceError", 805306369, "maxRecordNum"),
            Fatal,
            DeviceFull,
        );
        assert!(full.message.contains("--prune"), "{}", full.message);
        check(
            500,
            &status(3, "deviceError", 805306369, ""),
            Transient,
            ServerError,
        );
        check(
            200,
            &status(7, "rebootRequired", 1879048193, ""),
            Fatal,
            ServerError,
        );
        check(
            400,
            &status(4, "methodNotAllowed", 1073741828, ""),
            Fatal,
            BadRequest,
        );
    }

    #[test]
    fn answers_without_a_status_are_classified_by_http() {
        use Class::*;
        use ReasonCode::*;
        check(502, "<html>bad gateway</html>", Transient, ServerError);
        check(404, "", Fatal, NotSupported);
        check(200, "{}", Transient, ServerError);
        check(400, "nope", Permanent, BadRequest);
        // A success status is not a refusal to classify: it is treated as no status at all.
        check(200, &status(1, "ok", 1, ""), Transient, ServerError);
    }

    #[test]
    fn a_status_is_read_bare_or_wrapped_and_only_code_1_is_ok() {
        let ok = ResponseStatus::from_body(
            r#"{"statusCode":1,"statusString":"OK","subStatusCode":"ok"}"#,
        )
        .unwrap();
        assert!(ok.ok());
        let wrapped = ResponseStatus::from_body(
            r#"{"ResponseStatus":{"statusCode":6,"subStatusCode":"badParameters"}}"#,
        )
        .unwrap();
        assert!(!wrapped.ok());
        assert_eq!(wrapped.sub(), "badParameters");
        assert_eq!(
            ResponseStatus::from_body(r#"{"UserInfoCount":{"userNumber":3}}"#),
            None
        );
        assert_eq!(ResponseStatus::from_body("not json"), None);
    }

    #[test]
    fn a_refused_login_says_what_is_left_and_is_never_retried() {
        let body = "<?xml version=\"1.0\"?><userCheck><statusValue>401</statusValue>\
            <statusString>Unauthorized</statusString><lockStatus>unlock</lockStatus>\
            <unlockTime>0</unlockTime><retryLoginTime>3</retryLoginTime></userCheck>";
        let f = login_refused("lobby", "admin", body);
        assert_eq!((f.class, f.reason), (Class::Fatal, ReasonCode::AuthFailed));
        assert!(
            f.message.contains("3 failed login(s) left"),
            "{}",
            f.message
        );
        assert!(
            f.message.contains("targets.lobby.username"),
            "{}",
            f.message
        );

        let locked = body
            .replace(">unlock<", ">lock<")
            .replace("<unlockTime>0", "<unlockTime>1500");
        let f = login_refused("lobby", "admin", &locked);
        assert!(
            f.message.contains("locked for another 25m"),
            "{}",
            f.message
        );

        let json = r#"{"lockStatus":"lock","resLockTime":60,"retryTimes":0}"#;
        assert_eq!(
            UserCheck::parse(json),
            UserCheck {
                locked: true,
                unlock_in: Some(60),
                attempts_left: Some(0)
            }
        );
        assert_eq!(UserCheck::parse(""), UserCheck::default());
    }
}
