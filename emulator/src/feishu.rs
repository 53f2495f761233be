//! The emulated Feishu Open Platform: the tenant access token, and the ACS user and face APIs,
//! as the seed pages and `reference/feishu-acs.md` describe them.
//!
//! Envelope `{code, msg, data}`; business refusals are HTTP 400 with the documented code, token
//! endpoint refusals HTTP 200 with a non-zero code (as observed on the real service). The
//! `user_id_type` mapping between `user_id`, `open_id` and `union_id` is the emulator's own:
//! see [`id_as`].

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::faces::{self, Problem};
use super::faults::{Api, Refusal, guard, reset_seconds};
use super::state::{FeishuFace, Shared, lock};

const TOKEN_PATH: &str = "/open-apis/auth/v3/tenant_access_token/internal";
const FACE_PATH: &str = "/open-apis/acs/v1/users/{user_id}/face";
const USERS_PATH: &str = "/open-apis/acs/v1/users";
const USER_PATH: &str = "/open-apis/acs/v1/users/{user_id}";

/// `page_size` of the user list: the default and the most the API takes.
const DEFAULT_PAGE_SIZE: usize = 20;
const MAX_PAGE_SIZE: usize = 50;

// Codes: the seed pages, reference/feishu-acs.md, and the real token endpoint.
const USER_NOT_FOUND: i64 = 1490101;
const FACE_NOT_FOUND: i64 = 1490107;
const FACE_CROP_FAIL: i64 = 1490108;
const TOKEN_MISSING: i64 = 99991661;
const TOKEN_INVALID: i64 = 99991663;
/// The app lacks a scope the API needs.
const SCOPE_MISSING: i64 = 99991672;
const RATE_LIMITED: i64 = 99991400;
const FIELD_VALIDATION: i64 = 99992402;
const INVALID_PARAM: i64 = 10003;
const APP_REFUSED: i64 = 10014;

pub(crate) fn routes(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    let api = |api: Api, route: MethodRouter<Arc<Shared>>| {
        route.route_layer(axum::middleware::from_fn_with_state(
            (shared.clone(), api),
            guard,
        ))
    };
    Router::new()
        .route(TOKEN_PATH, api(Api::FeishuToken, post(token)))
        .route(
            FACE_PATH,
            api(Api::FeishuFaceUpload, put(upload_face))
                .merge(api(Api::FeishuFaceDownload, get(download_face))),
        )
        .route(USERS_PATH, api(Api::FeishuUserList, get(list_users)))
        .route(USER_PATH, api(Api::FeishuUserGet, get(get_user)))
        .route(
            super::contact::BATCH_GET_ID_PATH,
            api(Api::FeishuBatchGetId, post(super::contact::batch_get_id)),
        )
}

/// A refusal in Feishu's envelope.
#[derive(Debug)]
pub(crate) struct FeishuError {
    status: StatusCode,
    code: i64,
    msg: String,
    field_violations: Vec<(String, String)>,
}

impl FeishuError {
    fn new(status: StatusCode, code: i64, msg: impl Into<String>) -> Self {
        Self {
            status,
            code,
            msg: msg.into(),
            field_violations: Vec::new(),
        }
    }

    fn bad_request(code: i64, msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, msg)
    }

    /// 99992402 with the fields at fault and why.
    pub(super) fn fields(violations: Vec<(String, String)>) -> Self {
        Self {
            field_violations: violations,
            ..Self::bad_request(FIELD_VALIDATION, "field validation failed")
        }
    }

    pub(super) fn field(field: &str, description: impl Into<String>) -> Self {
        Self::fields(vec![(field.to_string(), description.into())])
    }
}

impl IntoResponse for FeishuError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "msg": self.msg, "data": {}});
        if !self.field_violations.is_empty() {
            let violations: Vec<Value> = self
                .field_violations
                .iter()
                .map(|(field, description)| json!({"field": field, "description": description}))
                .collect();
            body["error"] = json!({ "field_violations": violations });
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        response.extensions_mut().insert(Refusal(self.code));
        response
    }
}

/// HTTP 500 for the `error_rate` knob. The docs name no code for it: the emulator's own is -1.
pub(crate) fn server_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({"code": -1, "msg": "internal server error (injected by the emulator)", "data": {}})),
    )
        .into_response()
}

/// HTTP 429, code 99991400, with the gateway's rate-limit headers.
pub(crate) fn rate_limited(limit: u32, wait: std::time::Duration) -> Response {
    let mut response = FeishuError::new(
        StatusCode::TOO_MANY_REQUESTS,
        RATE_LIMITED,
        "request trigger frequency limit",
    )
    .into_response();
    let headers = response.headers_mut();
    headers.insert("x-ogw-ratelimit-limit", HeaderValue::from(limit));
    headers.insert(
        "x-ogw-ratelimit-reset",
        HeaderValue::from(reset_seconds(wait)),
    );
    response
}

pub(super) fn ok(data: Value) -> Response {
    axum::Json(json!({"code": 0, "msg": "success", "data": data})).into_response()
}

// ---- tenant access token ----

async fn token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match issue_token(&shared, &body) {
        Ok((token, expire)) => axum::Json(json!({
            "code": 0,
            "msg": "ok",
            "tenant_access_token": token,
            "expire": expire,
        }))
        .into_response(),
        Err(e) => e.into_response(),
    }
}

fn issue_token(shared: &Shared, body: &[u8]) -> Result<(String, u64), FeishuError> {
    // The real endpoint answers its refusals with HTTP 200.
    let refuse = |code, msg: &str| FeishuError::new(StatusCode::OK, code, msg);
    let value: Value =
        serde_json::from_slice(body).map_err(|_| refuse(INVALID_PARAM, "invalid param"))?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (Some(app_id), Some(app_secret)) = (field("app_id"), field("app_secret")) else {
        return Err(refuse(INVALID_PARAM, "invalid param"));
    };
    let config = &shared.config;
    if app_id != config.feishu_app_id {
        return Err(refuse(APP_REFUSED, "app id not exists"));
    }
    if app_secret != config.feishu_app_secret.expose() {
        return Err(refuse(APP_REFUSED, "app secret invalid"));
    }
    let now = Instant::now();
    let mut state = lock(&shared.feishu);
    state.tokens.retain(|_, expiry| *expiry > now);
    if let Some(latest) = state.latest.clone()
        && let Some(expiry) = state.tokens.get(&latest)
    {
        let remaining = expiry.duration_since(now);
        if remaining > config.token_refresh_window {
            return Ok((latest, remaining.as_secs()));
        }
    }
    let token = format!("t-{}", shared.next_id("token"));
    state
        .tokens
        .insert(token.clone(), now + config.token_lifetime);
    state.latest = Some(token.clone());
    drop(state);
    shared.count_token();
    Ok((token, config.token_lifetime.as_secs()))
}

/// Checks `Authorization: Bearer <tenant_access_token>`.
/// The scope every ACS call needs.
pub(super) const ACS_SCOPE: &str = "acs:users";

/// Checks `Authorization: Bearer <tenant_access_token>`, then that the app was granted
/// `scope` (99991672 when the `feishu_missing_scopes` knob withholds it).
pub(super) fn authorize(
    shared: &Shared,
    headers: &HeaderMap,
    scope: &str,
) -> Result<(), FeishuError> {
    authenticate(shared, headers)?;
    if shared
        .config
        .feishu_missing_scopes
        .iter()
        .any(|s| s == scope)
    {
        return Err(FeishuError::bad_request(
            SCOPE_MISSING,
            format!(
                "Access denied. One of the following scopes is required: [{scope}]. The app \
                 has not been granted it: apply for it in the developer console"
            ),
        ));
    }
    Ok(())
}

/// Checks `Authorization: Bearer <tenant_access_token>`.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<(), FeishuError> {
    let missing = || {
        FeishuError::bad_request(
            TOKEN_MISSING,
            "Missing access token for authorization. Please make a request with token attached.",
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let token = value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(missing)?;
    let valid = lock(&shared.feishu)
        .tokens
        .get(token)
        .is_some_and(|expiry| *expiry > Instant::now());
    if valid {
        Ok(())
    } else {
        Err(FeishuError::bad_request(
            TOKEN_INVALID,
            "Invalid access token for authorization. Please make a request with token attached.",
        ))
    }
}

// ---- user ids ----

/// The kinds of Feishu user id (`user_id_type`): the emulator's own reading of the API, not the
/// client's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserIdType {
    OpenId,
    UnionId,
    UserId,
}

/// How the emulator spells `user_id` as `kind` (see [`super::feishu_user_id_as`]).
pub(crate) fn id_as(user_id: &str, kind: UserIdType) -> String {
    let hex = |prefix: &str| {
        let digits: String = user_id.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{prefix}{digits}")
    };
    match kind {
        UserIdType::UserId => user_id.to_string(),
        UserIdType::OpenId => hex("ou_"),
        UserIdType::UnionId => hex("on_"),
    }
}

/// The `user_id` behind an id of `kind`, if it is spelled as the emulator spells them.
fn user_id_from(id: &str, kind: UserIdType) -> Option<String> {
    let digits = match kind {
        UserIdType::UserId => return (!id.is_empty()).then(|| id.to_string()),
        UserIdType::OpenId => id.strip_prefix("ou_")?,
        UserIdType::UnionId => id.strip_prefix("on_")?,
    };
    if digits.is_empty() || digits.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The query parameters, decoded; the first value of a repeated name wins.
pub(super) fn query(raw: Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `user_id_type`, default `open_id` as the docs say.
pub(super) fn id_type(query: &[(String, String)]) -> Result<UserIdType, FeishuError> {
    match param(query, "user_id_type") {
        None | Some("open_id") => Ok(UserIdType::OpenId),
        Some("union_id") => Ok(UserIdType::UnionId),
        Some("user_id") => Ok(UserIdType::UserId),
        Some(other) => Err(FeishuError::field(
            "user_id_type",
            format!("`{other}` is not one of open_id, union_id, user_id"),
        )),
    }
}

/// The existing user a path id names.
fn resolve_user(shared: &Shared, id: &str, kind: UserIdType) -> Result<String, FeishuError> {
    user_id_from(id, kind)
        .filter(|user_id| shared.feishu_user_exists(user_id))
        .ok_or_else(|| FeishuError::bad_request(USER_NOT_FOUND, "user not found"))
}

// ---- face upload ----

/// One part of a multipart body as received.
struct Part {
    name: String,
    bytes: Bytes,
}

async fn read_parts(
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Vec<Part>, FeishuError> {
    let mut multipart = multipart.map_err(|e| {
        FeishuError::field("files", format!("the body is not multipart/form-data: {e}"))
    })?;
    let mut parts = Vec::new();
    loop {
        let field = multipart.next_field().await.map_err(|e| {
            FeishuError::field("files", format!("the multipart body is malformed: {e}"))
        })?;
        let Some(field) = field else { break };
        // The part's own filename and content type are not checked: the official SDKs differ
        // (Go: `unknown-file`, application/octet-stream; Python: neither).
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| FeishuError::field(&name, format!("the part cannot be read: {e}")))?;
        parts.push(Part { name, bytes });
    }
    Ok(parts)
}

/// The checked form: the image, its declared type (`jpg` | `png`) and its file name.
struct Upload {
    bytes: Bytes,
    file_type: &'static str,
    file_name: String,
}

fn check_parts(parts: Vec<Part>) -> Result<Upload, FeishuError> {
    let mut violations = Vec::new();
    let mut one = |name: &str| -> Option<Bytes> {
        let mut found = parts.iter().filter(|p| p.name == name);
        match (found.next(), found.next()) {
            (None, _) => {
                violations.push((name.to_string(), "required".to_string()));
                None
            }
            (Some(_), Some(_)) => {
                violations.push((name.to_string(), "given more than once".to_string()));
                None
            }
            (Some(p), None) => Some(p.bytes.clone()),
        }
    };
    let files = one("files");
    let file_type = one("file_type");
    let file_name = one("file_name");
    let mut text = |name: &str, bytes: Option<Bytes>| -> Option<String> {
        let bytes = bytes?;
        match String::from_utf8(bytes.to_vec()) {
            Ok(s) => Some(s),
            Err(_) => {
                violations.push((name.to_string(), "not UTF-8 text".to_string()));
                None
            }
        }
    };
    let file_type = text("file_type", file_type);
    let file_name = text("file_name", file_name);
    let file_type = file_type.and_then(|t| match t.as_str() {
        "jpg" => Some("jpg"),
        "png" => Some("png"),
        _ => {
            violations.push((
                "file_type".to_string(),
                format!("`{t}` is not one of jpg, png"),
            ));
            None
        }
    });
    let file_name = file_name.and_then(|n| {
        let has_extension = n
            .rsplit_once('.')
            .is_some_and(|(stem, ext)| !stem.is_empty() && !ext.is_empty());
        if has_extension {
            Some(n)
        } else {
            violations.push((
                "file_name".to_string(),
                format!("`{n}` is not a file name with an extension"),
            ));
            None
        }
    });
    if let Some(f) = &files
        && f.is_empty()
    {
        violations.push(("files".to_string(), "empty".to_string()));
    }
    match (files, file_type, file_name) {
        (Some(bytes), Some(file_type), Some(file_name)) if violations.is_empty() => Ok(Upload {
            bytes,
            file_type,
            file_name,
        }),
        _ => Err(FeishuError::fields(violations)),
    }
}

async fn upload_face(
    State(shared): State<Arc<Shared>>,
    Path(path_id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    // The body is read in full before anything is refused, so a client still sending a large
    // body always reads the refusal instead of a reset connection.
    let parts = read_parts(multipart).await;
    match store_face(&shared, &path_id, raw, &headers, parts).await {
        Ok(()) => ok(json!({})),
        Err(e) => e.into_response(),
    }
}

async fn store_face(
    shared: &Arc<Shared>,
    path_id: &str,
    raw: Option<String>,
    headers: &HeaderMap,
    parts: Result<Vec<Part>, FeishuError>,
) -> Result<(), FeishuError> {
    authorize(shared, headers, ACS_SCOPE)?;
    let query = query(raw);
    let kind = id_type(&query)?;
    let upload = check_parts(parts?)?;
    let user_id = resolve_user(shared, path_id, kind)?;
    let declared = match upload.file_type {
        "png" => image::ImageFormat::Png,
        _ => image::ImageFormat::Jpeg,
    };
    let crop_fail = || FeishuError::bad_request(FACE_CROP_FAIL, "user face crop fail");
    match faces::sniff(&upload.bytes) {
        None => return Err(crop_fail()),
        Some(actual) if actual != declared => {
            return Err(FeishuError::field(
                "file_type",
                format!(
                    "`{}` does not match the file's content ({})",
                    upload.file_type,
                    faces::format_name(actual)
                ),
            ));
        }
        Some(_) => {}
    }
    let face_check = shared.config.face_check;
    let bytes = upload.bytes.clone();
    let inspected = tokio::task::spawn_blocking(move || faces::inspect(&bytes, face_check))
        .await
        .map_err(|_| crop_fail())?;
    let face = match inspected {
        Ok(i) => i.face,
        Err(Problem::Undecodable(_) | Problem::NoFace) => return Err(crop_fail()),
    };
    lock(&shared.feishu).faces.insert(
        user_id,
        FeishuFace {
            bytes: upload.bytes.to_vec(),
            file_type: upload.file_type,
            file_name: upload.file_name,
            face,
        },
    );
    Ok(())
}

// ---- face download ----

/// `is_cropped` as Go's `strconv.ParseBool` reads it (the Python SDK sends `True` / `False`).
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

async fn download_face(
    State(shared): State<Arc<Shared>>,
    Path(path_id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    match face_bytes(&shared, &path_id, raw, &headers).await {
        Ok((bytes, content_type, file_name)) => {
            let disposition = format!("attachment; filename=\"{file_name}\"");
            let mut response = bytes.into_response();
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn face_bytes(
    shared: &Arc<Shared>,
    path_id: &str,
    raw: Option<String>,
    headers: &HeaderMap,
) -> Result<(Vec<u8>, &'static str, String), FeishuError> {
    authorize(shared, headers, ACS_SCOPE)?;
    let query = query(raw);
    let kind = id_type(&query)?;
    let cropped = match param(&query, "is_cropped") {
        None => false,
        Some(v) => parse_bool(v)
            .ok_or_else(|| FeishuError::field("is_cropped", format!("`{v}` is not a boolean")))?,
    };
    let user_id = resolve_user(shared, path_id, kind)?;
    let face = lock(&shared.feishu)
        .faces
        .get(&user_id)
        .cloned()
        .ok_or_else(|| FeishuError::bad_request(FACE_NOT_FOUND, "user face not found"))?;
    let content_type = |file_type| match file_type {
        "png" => "image/png",
        _ => "image/jpeg",
    };
    match (cropped, face.face) {
        (true, Some(rect)) => {
            let bytes = face.bytes;
            let crop = tokio::task::spawn_blocking(move || faces::crop(&bytes, rect))
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or_else(|| FeishuError::bad_request(FACE_CROP_FAIL, "user face crop fail"))?;
            let stem = face
                .file_name
                .rsplit_once('.')
                .map_or(face.file_name.as_str(), |(s, _)| s);
            Ok((crop, "image/jpeg", format!("{stem}_cropped.jpg")))
        }
        // Without face checks there is no face box: the stored image is its own crop.
        _ => Ok((face.bytes, content_type(face.file_type), face.file_name)),
    }
}

// ---- users ----

fn user_json(shared: &Shared, user_id: &str, kind: UserIdType) -> Value {
    let face_uploaded = lock(&shared.feishu).faces.contains_key(user_id);
    json!({
        "user_id": id_as(user_id, kind),
        "feature": {"face_uploaded": face_uploaded},
    })
}

async fn list_users(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    match user_page(&shared, raw, &headers) {
        Ok(data) => ok(data),
        Err(e) => e.into_response(),
    }
}

fn user_page(
    shared: &Shared,
    raw: Option<String>,
    headers: &HeaderMap,
) -> Result<Value, FeishuError> {
    authorize(shared, headers, ACS_SCOPE)?;
    let query = query(raw);
    let kind = id_type(&query)?;
    let page_size = match param(&query, "page_size") {
        None => DEFAULT_PAGE_SIZE,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| {
                FeishuError::field(
                    "page_size",
                    format!("`{v}` is not a number from 1 to {MAX_PAGE_SIZE}"),
                )
            })?,
    };
    // The page token is the last user id of the previous page, base64url-encoded.
    let after = match param(&query, "page_token").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    FeishuError::field("page_token", "not a page token this API issued")
                })?,
        ),
    };
    let users = shared.feishu_listed_users();
    let rest: Vec<&String> = users
        .iter()
        .filter(|u| after.as_ref().is_none_or(|a| u.as_str() > a.as_str()))
        .collect();
    let page = &rest[..rest.len().min(page_size)];
    let has_more = rest.len() > page.len();
    let items: Vec<Value> = page.iter().map(|u| user_json(shared, u, kind)).collect();
    let mut data = json!({"items": items, "has_more": has_more});
    if has_more && let Some(last) = page.last() {
        data["page_token"] = json!(URL_SAFE_NO_PAD.encode(last.as_bytes()));
    }
    Ok(data)
}

async fn get_user(
    State(shared): State<Arc<Shared>>,
    Path(path_id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let found = (|| {
        authorize(&shared, &headers, ACS_SCOPE)?;
        let kind = id_type(&query(raw))?;
        let user_id = resolve_user(&shared, &path_id, kind)?;
        Ok::<_, FeishuError>(json!({"user": user_json(&shared, &user_id, kind)}))
    })();
    match found {
        Ok(data) => ok(data),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_between_kinds_and_back() {
        for user_id in ["E1001", "张伟", "a"] {
            for kind in [UserIdType::UserId, UserIdType::OpenId, UserIdType::UnionId] {
                let id = id_as(user_id, kind);
                assert_eq!(user_id_from(&id, kind).as_deref(), Some(user_id), "{id}");
            }
        }
        assert_eq!(id_as("E1001", UserIdType::OpenId), "ou_4531303031");
        assert_eq!(id_as("E1001", UserIdType::UnionId), "on_4531303031");
    }

    #[test]
    fn ids_not_spelled_as_the_kind_name_nobody() {
        for (id, kind) in [
            ("E1001", UserIdType::OpenId),
            ("ou_4531303031", UserIdType::UnionId),
            ("ou_", UserIdType::OpenId),
            ("ou_453", UserIdType::OpenId),
            ("ou_zz", UserIdType::OpenId),
            ("ou_ff", UserIdType::OpenId),
            ("", UserIdType::UserId),
        ] {
            assert_eq!(user_id_from(id, kind), None, "{id} as {kind:?}");
        }
    }

    #[test]
    fn booleans_read_as_go_reads_them() {
        for (v, want) in [
            ("true", Some(true)),
            ("True", Some(true)),
            ("1", Some(true)),
            ("false", Some(false)),
            ("False", Some(false)),
            ("0", Some(false)),
            ("yes", None),
            ("", None),
        ] {
            assert_eq!(parse_bool(v), want, "{v:?}");
        }
    }

    fn part(name: &str, bytes: &[u8]) -> Part {
        Part {
            name: name.to_string(),
            bytes: Bytes::copy_from_slice(bytes),
        }
    }

    fn violations(parts: Vec<Part>) -> Vec<String> {
        match check_parts(parts) {
            Ok(_) => Vec::new(),
            Err(e) => {
                assert_eq!(e.code, FIELD_VALIDATION);
                e.field_violations.into_iter().map(|(f, _)| f).collect()
            }
        }
    }

    #[test]
    fn forms_need_each_part_once_and_well_formed() {
        let good = || {
            vec![
                part("file_name", b"E1001.jpg"),
                part("files", b"\xff\xd8\xff"),
                part("file_type", b"jpg"),
            ]
        };
        assert!(violations(good()).is_empty());
        let mut extra = good();
        extra.push(part("comment", b"ignored"));
        assert!(violations(extra).is_empty());
        let cases: Vec<(Vec<Part>, &[&str])> = vec![
            (vec![], &["files", "file_type", "file_name"]),
            (
                good().into_iter().filter(|p| p.name != "files").collect(),
                &["files"],
            ),
            (
                good()
                    .into_iter()
                    .filter(|p| p.name != "file_type")
                    .collect(),
                &["file_type"],
            ),
            (
                good()
                    .into_iter()
                    .filter(|p| p.name != "file_name")
                    .collect(),
                &["file_name"],
            ),
            (
                vec![
                    part("files", b"x"),
                    part("file_type", b"jpeg"),
                    part("file_name", b"a.jpg"),
                ],
                &["file_type"],
            ),
            (
                vec![
                    part("files", b"x"),
                    part("file_type", b"gif"),
                    part("file_name", b"a.gif"),
                ],
                &["file_type"],
            ),
            (
                vec![
                    part("files", b"x"),
                    part("file_type", b"jpg"),
                    part("file_name", b"noext"),
                ],
                &["file_name"],
            ),
            (
                vec![
                    part("files", b""),
                    part("file_type", b"jpg"),
                    part("file_name", b"a.jpg"),
                ],
                &["files"],
            ),
            (
                {
                    let mut twice = good();
                    twice.push(part("files", b"y"));
                    twice
                },
                &["files"],
            ),
        ];
        for (parts, want) in cases {
            assert_eq!(violations(parts), want.to_vec());
        }
    }
}
