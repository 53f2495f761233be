//! The emulated VziCloud FRS: signed requests checked exactly as the vendor's SIGNATURE.md says,
//! face update (UPDATE / REPLACE) and register (APPEND / REPLACE), groups, users and faces, with
//! the error codes of ERROR.md and the paging envelope of SCAN.md.
//!
//! Signatures are verified with the emulator's own implementation of SIGNATURE.md
//! ([`crate::signature`], not facesync's signer), computed over the body as received and the
//! path and non-auth query parameters as received (values url-decoded). The checks run in the documented order: parameters present (1001), `expires`
//! well-formed (1003), not expired (1002: expiry before the signature), a known key (1005), the
//! signature (1004). ERROR.md gives no HTTP status per code; the emulator's are in [`status_of`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use super::EmulatorConfig;
use super::faces::{self, FaceLocation, Problem};
use super::faults::{Api, Refusal, guard};
use super::server::MAX_BODY;
use super::state::{Group, Shared, VziCloudFace, VziUser, lock};
use crate::signature;

/// The largest image VziCloud takes: 2 MB, at most 1920 wide and 1080 high.
const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;
const MAX_WIDTH: u32 = 1920;
const MAX_HEIGHT: u32 = 1080;

const FACES: &str = "/v2/frs/user/apps/{app_id}/faces";
const GROUPS: &str = "/v2/frs/user/apps/{app_id}/groups";
const GROUP: &str = "/v2/frs/user/apps/{app_id}/groups/{group_id}";
const USERS: &str = "/v2/frs/user/apps/{app_id}/groups/{group_id}/users";
const USER: &str = "/v2/frs/user/apps/{app_id}/groups/{group_id}/users/{user_id}";
const USER_FACES: &str = "/v2/frs/user/apps/{app_id}/groups/{group_id}/users/{user_id}/faces";
const USER_FACE: &str =
    "/v2/frs/user/apps/{app_id}/groups/{group_id}/users/{user_id}/faces/{face_id}";

pub(crate) fn routes(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    // Faults first (outermost), then the signature, quota and QPS checks, then the handler.
    let api = |api: Api, route: MethodRouter<Arc<Shared>>| {
        route
            .route_layer(from_fn_with_state(shared.clone(), authenticate))
            .route_layer(from_fn_with_state((shared.clone(), api), guard))
    };
    Router::new()
        .route(
            FACES,
            api(Api::VziFaceUpdate, put(face_update))
                .merge(api(Api::VziFaceRegister, post(face_register))),
        )
        .route(GROUPS, api(Api::VziGroupCreate, post(group_create)))
        .route(GROUP, api(Api::VziGroupView, get(group_view)))
        .route(USERS, api(Api::VziUserList, get(user_list)))
        .route(
            USER,
            api(Api::VziUserView, get(user_view))
                .merge(api(Api::VziUserDelete, delete(user_delete))),
        )
        .route(USER_FACES, api(Api::VziFaceList, get(face_list)))
        .route(USER_FACE, api(Api::VziFaceDelete, delete(face_delete)))
}

// ---- errors ----

/// A refusal: `{error_code, error_message}` with a non-200 status.
#[derive(Debug)]
pub(crate) struct VziError {
    pub(crate) code: i64,
    message: String,
}

impl VziError {
    fn new(code: i64) -> Self {
        Self {
            code,
            message: message_of(code).to_string(),
        }
    }

    /// 1103, naming the parameter and what is wrong with it, as the vendor's message does.
    fn param(name: &str, why: &str) -> Self {
        Self {
            code: 1103,
            message: format!("{} {name}: {why}", message_of(1103)),
        }
    }
}

/// The vendor's message for a code (ERROR.md).
fn message_of(code: i64) -> &'static str {
    match code {
        1000 => "Request url is not exist!",
        1001 => "Authorization params missing!",
        1002 => "Authorization expired!",
        1003 => "Authorization params [expires] error!",
        1004 => "Authorization params [signature] error!",
        1005 => "Authorization params [accesskey_id] error!",
        1016 => "Request rate exceed max qps limit!",
        1017 => "Request count exceed total limit!",
        1101 => "Parse request content to json failed!",
        1102 => "Decode base64 failed!",
        1103 => "Request params error!",
        1107 => "Not support!",
        1108 => "No compute server is available!",
        1110 => "Image decode failed!",
        3002 => "Face not detected!",
        3101 => "Face app is not exist!",
        3201 => "Face group is not exist!",
        3202 => "Face group is already exist!",
        3301 => "Face user is not exist!",
        3401 => "Face is not exist!",
        _ => "Request failed!",
    }
}

/// The HTTP status the emulator answers a code with (ERROR.md only says "not 200").
pub(crate) fn status_of(code: i64) -> StatusCode {
    match code {
        1000 | 3101 | 3201 | 3301 | 3401 => StatusCode::NOT_FOUND,
        1002 | 1004 | 1005 => StatusCode::UNAUTHORIZED,
        1016 => StatusCode::TOO_MANY_REQUESTS,
        1017 => StatusCode::FORBIDDEN,
        1108 => StatusCode::SERVICE_UNAVAILABLE,
        3202 => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for VziError {
    fn into_response(self) -> Response {
        let body = json!({"error_code": self.code, "error_message": self.message});
        let mut response = (status_of(self.code), axum::Json(body)).into_response();
        response.extensions_mut().insert(Refusal(self.code));
        response
    }
}

/// HTTP 503 with 1108 for the `error_rate` knob.
pub(crate) fn server_error() -> Response {
    let mut response = VziError::new(1108).into_response();
    response.extensions_mut().remove::<Refusal>();
    response
}

/// 1000 for a path VziCloud does not serve.
pub(crate) fn url_not_found() -> Response {
    VziError::new(1000).into_response()
}

// ---- signature ----

/// A request as received, for [`verify`].
pub(crate) struct Signed<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    /// The raw query string, without `?`.
    pub(crate) query: &'a str,
    pub(crate) body: &'a [u8],
    pub(crate) content_type: Option<&'a str>,
}

/// Verifies a signed request at Unix time `now`, as SIGNATURE.md says.
pub(crate) fn verify(config: &EmulatorConfig, request: &Signed, now: u64) -> Result<(), VziError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(request.query.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let (Some(accesskey_id), Some(expires), Some(sent)) =
        (get("accesskey_id"), get("expires"), get("signature"))
    else {
        return Err(VziError::new(1001));
    };
    if !expires.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VziError::new(1003));
    }
    let expires_text = expires;
    let expires: u64 = expires.parse().map_err(|_| VziError::new(1003))?;
    if now > expires {
        return Err(VziError::new(1002));
    }
    if accesskey_id != config.vzicloud_accesskey_id {
        return Err(VziError::new(1005));
    }
    // A body is JSON, sent as `application/json`: a signature over another type is no
    // signature VziCloud would accept.
    if !request.body.is_empty() && request.content_type.map(str::trim) != Some(signature::JSON) {
        return Err(VziError::new(1004));
    }
    let resource = signature::canonical_resource(request.path, &pairs);
    let canonical = signature::canonical_string(
        request.method,
        request.body,
        signature::JSON,
        expires_text,
        &resource,
    );
    let expected = signature::signature(config.vzicloud_accesskey_secret.expose(), &canonical);
    if expected != sent {
        return Err(VziError::new(1004));
    }
    Ok(())
}

/// Middleware: the signature, then the QPS limit (1016), then the quota (1017). The body is
/// read here, hashed as received, and handed on unchanged.
async fn authenticate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return VziError::param("body", "larger than the emulator reads").into_response();
    };
    let signed = Signed {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        body: &bytes,
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    };
    if let Err(e) = verify(&shared.config, &signed, shared.unix_now()) {
        return e.into_response();
    }
    let config = &shared.config;
    if let Some(qps) = config.vzicloud_qps
        && shared
            .limits
            .windows
            .admit("vzicloud", qps, config.rate_window)
            .is_err()
    {
        return VziError::new(1016).into_response();
    }
    if let Some(quota) = config.quota
        && !shared.limits.quota.take(quota)
    {
        return VziError::new(1017).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

// ---- request helpers ----

type Params = HashMap<String, String>;

/// The path's app id: a number (1103), the one this emulator serves (3101).
fn app_id(shared: &Shared, params: &Params) -> Result<u64, VziError> {
    let raw = params.get("app_id").map(String::as_str).unwrap_or("");
    let id: u64 = raw
        .parse()
        .map_err(|_| VziError::param("app_id", "not a number"))?;
    if id != shared.config.vzicloud_app_id {
        return Err(VziError::new(3101));
    }
    Ok(id)
}

fn path_param<'a>(params: &'a Params, name: &str) -> &'a str {
    params.get(name).map(String::as_str).unwrap_or("")
}

/// The body as a JSON object (1101 otherwise).
fn object(body: &[u8]) -> Result<Map<String, Value>, VziError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(VziError::new(1101)),
    }
}

/// Typed access to a body's fields; a field of the wrong type is a 1103.
struct Fields(Map<String, Value>);

impl Fields {
    fn optional(&self, name: &str) -> Result<Option<&str>, VziError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(VziError::param(name, "not a string")),
        }
    }

    fn required(&self, name: &str) -> Result<&str, VziError> {
        self.optional(name)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| VziError::param(name, "required"))
    }

    /// A group or user id: letters, digits, underscore, at most 48.
    fn id(&self, name: &str) -> Result<&str, VziError> {
        let id = self.required(name)?;
        if is_vzicloud_id(id) {
            Ok(id)
        } else {
            Err(VziError::param(
                name,
                "only letters, digits and underscores, at most 48",
            ))
        }
    }
}

/// `offset` and `limit` as SCAN.md defines them; `where` filters are not emulated (1107).
struct Paging {
    offset: Option<usize>,
    limit: Option<usize>,
}

impl Paging {
    fn parse(raw: Option<String>) -> Result<Paging, VziError> {
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if get("where").is_some() {
            return Err(VziError {
                code: 1107,
                message: format!("{} where: the emulator does not filter", message_of(1107)),
            });
        }
        let number = |name: &str| -> Result<Option<usize>, VziError> {
            get(name)
                .map(|v| {
                    v.parse::<usize>()
                        .map_err(|_| VziError::param(name, "not a number >= 0"))
                })
                .transpose()
        };
        let paging = Paging {
            offset: number("offset")?,
            limit: number("limit")?,
        };
        if paging.offset.is_some() && paging.limit.is_none() {
            return Err(VziError::param("limit", "required with offset"));
        }
        Ok(paging)
    }

    /// SCAN.md's envelope over `all`. Only the page asked for is turned into JSON: a client
    /// paging through 100,000 users asks for a thousand pages.
    /// Items are skipped before `json` sees them (a `map` before `skip` would build the JSON
    /// of every user before the page, each page).
    fn envelope<T>(
        &self,
        all: impl ExactSizeIterator<Item = T>,
        json: impl FnMut(T) -> Value,
    ) -> Value {
        let total = all.len();
        let results: Vec<Value> = all
            .skip(self.offset.unwrap_or(0))
            .take(self.limit.unwrap_or(usize::MAX))
            .map(json)
            .collect();
        let mut out = json!({"results": results, "total": total});
        if let Some(limit) = self.limit {
            out["limit"] = json!(limit);
        }
        if let Some(offset) = self.offset {
            out["offset"] = json!(offset);
        }
        out
    }
}

fn respond(result: Result<Value, VziError>) -> Response {
    match result {
        Ok(Value::Null) => StatusCode::OK.into_response(),
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

// ---- faces ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    /// PUT: replace the faces of an existing user.
    Update,
    /// PUT or POST: replace the faces, registering the user if missing.
    Replace,
    /// POST: add a face, registering the user if missing.
    Append,
}

async fn face_update(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<Params>,
    body: Bytes,
) -> Response {
    respond(upsert(&shared, &params, &body, true).await)
}

async fn face_register(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<Params>,
    body: Bytes,
) -> Response {
    respond(upsert(&shared, &params, &body, false).await)
}

/// The face update (`put`) and face register endpoints, which differ in their actions and in
/// what happens to a missing group (PUT: 3201, as its description says; POST: created).
async fn upsert(
    shared: &Arc<Shared>,
    params: &Params,
    body: &[u8],
    put: bool,
) -> Result<Value, VziError> {
    let app_id = app_id(shared, params)?;
    let fields = Fields(object(body)?);
    if fields.required("image_type")? != "BASE64" {
        return Err(VziError::param("image_type", "must be BASE64"));
    }
    let image = fields.required("image")?;
    let group_id = fields.id("group_id")?.to_string();
    let user_id = fields.id("user_id")?.to_string();
    let action = match (put, fields.optional("action_type")?) {
        (true, None | Some("UPDATE")) => Action::Update,
        (false, None | Some("APPEND")) => Action::Append,
        (_, Some("REPLACE")) => Action::Replace,
        (_, Some(other)) => {
            return Err(VziError::param(
                "action_type",
                &format!(
                    "`{other}` is not one of {}",
                    if put {
                        "UPDATE, REPLACE"
                    } else {
                        "APPEND, REPLACE"
                    }
                ),
            ));
        }
    };
    {
        let state = lock(&shared.vzicloud);
        match state.groups.get(&group_id) {
            None if put => return Err(VziError::new(3201)),
            Some(g) if action == Action::Update && !g.users.contains_key(&user_id) => {
                return Err(VziError::new(3301));
            }
            _ => {}
        }
    }
    let bytes = BASE64.decode(image).map_err(|_| VziError::new(1102))?;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(VziError::param(
            "image",
            &format!("{} bytes is larger than 2 MB", bytes.len()),
        ));
    }
    let (width, height) = faces::dimensions(&bytes).map_err(|_| VziError::new(1110))?;
    if width > MAX_WIDTH || height > MAX_HEIGHT {
        return Err(VziError::param(
            "image",
            &format!("{width}x{height} is larger than {MAX_WIDTH}x{MAX_HEIGHT}"),
        ));
    }
    let format = faces::sniff(&bytes)
        .map(faces::format_name)
        .ok_or_else(|| VziError::new(1110))?;
    let face_check = shared.config.face_check;
    let (inspected, bytes) = tokio::task::spawn_blocking(move || {
        let inspected = faces::inspect(&bytes, face_check);
        (inspected, bytes)
    })
    .await
    .map_err(|_| VziError::new(1110))?;
    let inspected = inspected.map_err(|p| match p {
        Problem::Undecodable(_) => VziError::new(1110),
        Problem::NoFace => VziError::new(3002),
    })?;
    let location = inspected
        .face
        .map(FaceLocation::from)
        .unwrap_or(FaceLocation {
            width: inspected.width,
            left: 0,
            height: inspected.height,
            top: 0,
        });
    let now = shared.unix_now();
    let face = VziCloudFace {
        face_id: shared.next_id("face"),
        format,
        location,
        create_time: now,
        bytes,
    };
    let out = face_json(app_id, &group_id, &user_id, &face);

    let mut state = lock(&shared.vzicloud);
    if !put && !state.groups.contains_key(&group_id) {
        state.groups.insert(
            group_id.clone(),
            Group {
                name: fields.optional("group_name")?.unwrap_or("").to_string(),
                remark: fields.optional("group_remark")?.unwrap_or("").to_string(),
                create_time: now,
                users: Default::default(),
            },
        );
    }
    // Looked up again: the group or user may have gone while the image was checked.
    let group = state
        .groups
        .get_mut(&group_id)
        .ok_or_else(|| VziError::new(3201))?;
    if !group.users.contains_key(&user_id) {
        if action == Action::Update {
            return Err(VziError::new(3301));
        }
        group.users.insert(
            user_id.clone(),
            VziUser {
                name: String::new(),
                info: String::new(),
                remark: String::new(),
                create_time: now,
                faces: Vec::new(),
            },
        );
    }
    let user = group.users.get_mut(&user_id).expect("inserted above");
    for (field, value) in [
        ("user_name", &mut user.name),
        ("user_info", &mut user.info),
        ("user_remark", &mut user.remark),
    ] {
        if let Some(v) = fields.optional(field)? {
            *value = v.to_string();
        }
    }
    if action != Action::Append {
        user.faces.clear();
    }
    user.faces.push(face);
    Ok(out)
}

fn face_json(app_id: u64, group_id: &str, user_id: &str, face: &VziCloudFace) -> Value {
    json!({
        "app_id": app_id,
        "group_id": group_id,
        "user_id": user_id,
        "face_id": face.face_id,
        "location": serde_json::to_string(&face.location).unwrap_or_default(),
        "format": face.format,
        "create_time": face.create_time,
    })
}

async fn face_list(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<Params>,
    RawQuery(raw): RawQuery,
) -> Response {
    respond((|| {
        let app_id = app_id(&shared, &params)?;
        let paging = Paging::parse(raw)?;
        let (group_id, user_id) = (
            path_param(&params, "group_id"),
            path_param(&params, "user_id"),
        );
        let state = lock(&shared.vzicloud);
        let user = find_user(&state.groups, group_id, user_id)?;
        Ok(paging.envelope(user.faces.iter(), |f| {
            face_json(app_id, group_id, user_id, f)
        }))
    })())
}

async fn face_delete(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<Params>,
    body: Bytes,
) -> Response {
    respond((|| {
        app_id(&shared, &params)?;
        let fields = Fields(object(&body)?);
        let action = fields.required("action_type")?;
        let drop_empty_user = match action {
            "NORMAL" | "FACE" => false,
            "USER" | "USER&FACE" => true,
            other => {
                return Err(VziError::param(
                    "action_type",
                    &format!("`{other}` is not one of NORMAL, USER, FACE, USER&FACE"),
                ));
            }
        };
        let (group_id, user_id, face_id) = (
            path_param(&params, "group_id"),
            path_param(&params, "user_id"),
            path_param(&params, "face_id"),
        );
        let mut state = lock(&shared.vzicloud);
        let group = state
            .groups
            .get_mut(group_id)
            .ok_or_else(|| VziError::new(3201))?;
        let user = group
            .users
            .get_mut(user_id)
            .ok_or_else(|| VziError::new(3301))?;
        let before = user.faces.len();
        user.faces.retain(|f| f.face_id != face_id);
        if user.faces.len() == before {
            return Err(VziError::new(3401));
        }
        if drop_empty_user && user.faces.is_empty() {
            group.users.remove(user_id);
        }
        Ok(Value::Null)
    })())
}

// ---- groups ----

fn group_json(app_id: u64, group_id: &str, group: &Group) -> Value {
    json!({
        "app_id": app_id,
        "group_id": group_id,
        "group_name": group.name,
        "remark": group.remark,
        "create_time": group.create_time,
    })
}

async fn group_create(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<Params>,
    body: Bytes,
) -> Response {
    respond((|| {
        let app_id = app_id(&shared, &params)?;
        let fields = Fields(object(&body)?);
        let group_id = fields.id("group_id")?;
        let group = Group {
            name: fields.optional("group_name")?.unwrap_or("").to_string(),
            remark: fields.optional("remark")?.unwrap_or("").to_string(),
            create_time: shared.unix_now(),
            users: Default::default(),
        };
        let mut state = lock(&shared.vzicloud);
        if state.groups.contains_key(group_id) {
            return Err(VziError::new(3202));
        }
        let out = group_json(app_id, group_id, &group);
        state.groups.insert(group_id.to_string(), group);
        Ok(out)
    })())
}

async fn group_view(State(shared): State<Arc<Shared>>, Path(params): Path<Params>) -> Response {
    respond((|| {
        let app_id = app_id(&shared, &params)?;
        let group_id = path_param(&params, "group_id");
        let state = lock(&shared.vzicloud);
        let group = state
            .groups
            .get(group_id)
            .ok_or_else(|| VziError::new(3201))?;
        Ok(group_json(app_id, group_id, group))
    })())
}

// ---- users ----

fn find_user<'a>(
    groups: &'a std::collections::BTreeMap<String, Group>,
    group_id: &str,
    user_id: &str,
) -> Result<&'a VziUser, VziError> {
    groups
        .get(group_id)
        .ok_or_else(|| VziError::new(3201))?
        .users
        .get(user_id)
        .ok_or_else(|| VziError::new(3301))
}

fn user_json(app_id: u64, group_id: &str, user_id: &str, user: &VziUser) -> Value {
    json!({
        "app_id": app_id,
        "group_id": group_id,
        "user_id": user_id,
        "user_name": user.name,
        "user_info": user.info,
        "remark": user.remark,
        "create_time": user.create_time,
    })
}

async fn user_list(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<Params>,
    RawQuery(raw): RawQuery,
) -> Response {
    respond((|| {
        let app_id = app_id(&shared, &params)?;
        let paging = Paging::parse(raw)?;
        let group_id = path_param(&params, "group_id");
        let state = lock(&shared.vzicloud);
        let group = state
            .groups
            .get(group_id)
            .ok_or_else(|| VziError::new(3201))?;
        Ok(paging.envelope(group.users.iter(), |(uid, u)| {
            user_json(app_id, group_id, uid, u)
        }))
    })())
}

async fn user_view(State(shared): State<Arc<Shared>>, Path(params): Path<Params>) -> Response {
    respond((|| {
        let app_id = app_id(&shared, &params)?;
        let (group_id, user_id) = (
            path_param(&params, "group_id"),
            path_param(&params, "user_id"),
        );
        let state = lock(&shared.vzicloud);
        let user = find_user(&state.groups, group_id, user_id)?;
        Ok(user_json(app_id, group_id, user_id, user))
    })())
}

async fn user_delete(State(shared): State<Arc<Shared>>, Path(params): Path<Params>) -> Response {
    respond((|| {
        app_id(&shared, &params)?;
        let (group_id, user_id) = (
            path_param(&params, "group_id"),
            path_param(&params, "user_id"),
        );
        let mut state = lock(&shared.vzicloud);
        let group = state
            .groups
            .get_mut(group_id)
            .ok_or_else(|| VziError::new(3201))?;
        group
            .users
            .remove(user_id)
            .ok_or_else(|| VziError::new(3301))?;
        Ok(Value::Null)
    })())
}

/// VziCloud ids (user and group), as the vendor's pages define them: letters, digits and
/// underscores, 1 to 48 characters.
fn is_vzicloud_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 48 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    // The worked example of the vendor's SIGNATURE.md.
    const KEY_ID: &str = "7ffG6UFo1135QXbK2gVuiJffadN1YXZC";
    const SECRET: &str = "m4b4gQc0hur8okz7rsR7pLJkoH4OMLYj";
    const BODY: &str = r#"{"name":"测试应用","remark":"无"}"#;
    const EXPIRES: u64 = 1561463558;
    const QUERY: &str = "accesskey_id=7ffG6UFo1135QXbK2gVuiJffadN1YXZC&expires=1561463558&signature=8CXL%2BbRJ%2BWaDQrwg7wWxkdEok0Y%3D";

    fn vendor_config() -> EmulatorConfig {
        EmulatorConfig {
            vzicloud_accesskey_id: KEY_ID.to_string(),
            vzicloud_accesskey_secret: Secret::new(SECRET),
            ..EmulatorConfig::default()
        }
    }

    fn check(method: &str, path: &str, query: &str, body: &str, now: u64, want: Option<i64>) {
        let signed = Signed {
            method,
            path,
            query,
            body: body.as_bytes(),
            content_type: (!body.is_empty()).then_some("application/json"),
        };
        let got = verify(&vendor_config(), &signed, now).err().map(|e| e.code);
        assert_eq!(got, want, "{method} {path}?{query} {body:?} at {now}");
    }

    #[test]
    fn the_vendor_example_verifies_until_it_expires() {
        let path = "/v2/prs/user/apps";
        check("POST", path, QUERY, BODY, EXPIRES - 60, None);
        check("POST", path, QUERY, BODY, EXPIRES, None);
        check("POST", path, QUERY, BODY, EXPIRES + 1, Some(1002));
    }

    #[test]
    fn tampering_with_any_signed_part_is_1004() {
        let now = EXPIRES - 60;
        let path = "/v2/prs/user/apps";
        check(
            "POST",
            path,
            QUERY,
            r#"{"name":"测试应用","remark":"有"}"#,
            now,
            Some(1004),
        );
        check("PUT", path, QUERY, BODY, now, Some(1004));
        check("POST", "/v2/prs/user/apps/2", QUERY, BODY, now, Some(1004));
        check(
            "POST",
            path,
            &format!("{QUERY}&limit=10"),
            BODY,
            now,
            Some(1004),
        );
        // `+` left unencoded in the URL reads as a space.
        let raw_plus = QUERY.replace("%2B", "+");
        check("POST", path, &raw_plus, BODY, now, Some(1004));
    }

    #[test]
    fn auth_parameters_are_checked_in_the_documented_order() {
        let now = EXPIRES - 60;
        let path = "/v2/prs/user/apps";
        for missing in ["accesskey_id", "expires", "signature"] {
            let query: Vec<&str> = QUERY
                .split('&')
                .filter(|p| !p.starts_with(missing))
                .collect();
            check("POST", path, &query.join("&"), BODY, now, Some(1001));
        }
        check(
            "POST",
            path,
            &QUERY.replace("expires=1561463558", "expires="),
            BODY,
            now,
            Some(1001),
        );
        for bad in ["abc", "-1", "+1561463558", "1.5"] {
            let query = QUERY.replace("1561463558", bad);
            check("POST", path, &query, BODY, now, Some(1003));
        }
        // Expired and signed with an unknown key: expiry is checked first.
        let unknown_key = QUERY.replace(KEY_ID, "someone_else");
        check("POST", path, &unknown_key, BODY, EXPIRES + 1, Some(1002));
        check("POST", path, &unknown_key, BODY, now, Some(1005));
    }

    #[test]
    fn a_body_must_be_sent_as_json_to_verify() {
        let signed = Signed {
            method: "POST",
            path: "/v2/prs/user/apps",
            query: QUERY,
            body: BODY.as_bytes(),
            content_type: Some("text/plain"),
        };
        let got = verify(&vendor_config(), &signed, EXPIRES - 60);
        assert_eq!(got.unwrap_err().code, 1004);
    }

    #[test]
    fn every_code_has_a_non_200_status() {
        for code in [
            1000, 1001, 1002, 1003, 1004, 1005, 1016, 1017, 1101, 1102, 1103, 1107, 1108, 1110,
            3002, 3101, 3201, 3202, 3301, 3401,
        ] {
            assert_ne!(status_of(code), StatusCode::OK, "{code}");
            assert_ne!(message_of(code), "Request failed!", "{code}");
        }
    }
}
