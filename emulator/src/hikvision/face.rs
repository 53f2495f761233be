//! Faces in face library FDID 1 (`blackFD`, reference §4): the capabilities, the multipart
//! writes (FaceDataRecord adds, FDSetUp creates or replaces, FDModify replaces), FDSearch and
//! FDSearch/Delete; with the photo checks of §6 and the `busy_time`, `late_write` and
//! `lost_writes` knobs.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::jpeg::{self, Layout};
use super::status::{self, Refused};
use super::{Call, FD_NAME_MAX_BYTES, Face, HikvisionConfig, PREFIX, is_employee_no, object};
use crate::faces::{self, Problem};

/// Which face write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Write {
    /// POST FaceDataRecord: a first face (one stored, even not yet visible:
    /// `deviceUserAlreadyExistFace`).
    Record,
    /// PUT FDSetUp: creates or replaces, when the knob `setup` offers it.
    SetUp,
    /// PUT FDModify: replaces a stored face (none: `employeeNoNotExist`).
    Modify,
}

/// The image part's accepted names: `img` (verified firmware) and `FaceImage` (other
/// integrations) [SK][MF][JV][PYEMU].
const IMAGE_PARTS: [&str; 2] = ["img", "FaceImage"];

/// JSON keys that would carry an image inside the record (refused: base64 in JSON [MF]).
const INLINE_IMAGE_KEYS: [&str; 6] = [
    "img",
    "image",
    "FaceImage",
    "faceImage",
    "faceData",
    "modelData",
];

/// `GET /ISAPI/Intelligent/FDLib/capabilities?format=json` (top level, as most clients read it).
pub(super) fn capabilities(config: &HikvisionConfig) -> Value {
    let functions = if config.setup {
        "post,delete,put,get,setUp"
    } else {
        "post,delete,put,get"
    };
    json!({
        "FDRecordDataMaxNum": config.max_faces,
        "supportFDFunction": {"@opt": functions},
        "facePicFormat": ["jpg"],
        "FDNameMaxLen": FD_NAME_MAX_BYTES,
        "FDMaxNum": 1,
        "faceLibType": {"@opt": "blackFD"},
    })
}

/// One part of the multipart body.
struct Part {
    name: String,
    file_name: Option<String>,
    content_type: Option<String>,
    bytes: Bytes,
}

/// FaceDataRecord, FDSetUp or FDModify.
pub(super) async fn write(
    at: &Call<'_>,
    write: Write,
    request: Request,
) -> Result<Response, Refused> {
    let config = at.config();
    if write == Write::SetUp && !config.setup {
        crate::faults::drain(request).await;
        return Err(Refused::new(status::NOT_SUPPORT, "setUp"));
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (mime, params) = content_type.split_once(';').unwrap_or((&content_type, ""));
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        let body = axum::body::to_bytes(request.into_body(), crate::server::MAX_BODY)
            .await
            .unwrap_or_default();
        return Err(not_multipart(&body));
    }
    let boundary = params
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim());
    match boundary {
        Some(b) if b.starts_with('"') => {
            crate::faults::drain(request).await;
            return Err(Refused::new(status::BAD_JSON_FORMAT, "boundary"));
        }
        Some(b) if !b.is_empty() => {}
        _ => {
            crate::faults::drain(request).await;
            return Err(Refused::new(status::BAD_JSON_FORMAT, "boundary"));
        }
    }
    let parts = read_parts(request).await?;
    let (record, image) = split_parts(parts)?;
    let fpid = record_fpid(&record)?;
    let image = image.ok_or_else(|| match record.get("faceURL") {
        // The terminal would download it; the emulator does not fetch URLs.
        Some(_) => Refused::new(status::NOT_SUPPORT, "faceURL"),
        None => Refused::bad("img"),
    })?;

    // The person and the face as they stand.
    precheck(at, write, &fpid)?;
    if image.len() > config.max_photo_bytes {
        return Err(Refused::new(status::BAD_JSON_FORMAT, "faceURL"));
    }
    match jpeg::check(&image) {
        Ok(()) => {}
        Err(Layout::NotJpeg(why)) => {
            tracing::debug!("hikvision {}: {fpid}: {why}", at.terminal);
            return Err(Refused::new(status::MODELING_ERROR, "saveFacePic"));
        }
        Err(Layout::Unsupported(why)) => {
            tracing::debug!("hikvision {}: {fpid}: {why}", at.terminal);
            return Err(Refused::new(status::MODELING_ERROR, "PicFeaturePoints"));
        }
    }
    let face_check = at.shared.config.face_check;
    let (modelled, image) = tokio::task::spawn_blocking(move || {
        let modelled = faces::inspect(&image, face_check);
        (modelled, image)
    })
    .await
    .map_err(|_| Refused::new(status::MODELING_ERROR, "saveFacePic"))?;
    if let Err(problem) = modelled {
        match problem {
            Problem::NoFace => tracing::debug!("hikvision {}: {fpid}: no face", at.terminal),
            Problem::Undecodable(why) => {
                tracing::debug!("hikvision {}: {fpid}: {why}", at.terminal)
            }
        }
        return Err(Refused::new(status::MODELING_ERROR, "saveFacePic"));
    }

    if !config.busy_time.is_zero() {
        at.state().busy_until = Some(Instant::now() + config.busy_time);
        tokio::time::sleep(config.busy_time).await;
    }
    // Checked again: with no busy time another request may have changed things meanwhile.
    precheck(at, write, &fpid)?;
    let mut t = at.state();
    t.busy_until = None;
    if config.lost_writes.contains(&fpid) && t.lost.insert(fpid.clone()) {
        tracing::debug!(
            "hikvision {}: {fpid}: the write is lost (lost_writes)",
            at.terminal
        );
    } else {
        let visible_at = Instant::now() + config.late_write;
        t.faces.insert(
            fpid.clone(),
            Face {
                bytes: image.to_vec(),
                visible_at,
            },
        );
    }
    drop(t);
    // The `ResponseStatus` of a write, with the FPID the guide says a face write returns.
    Ok(axum::Json(json!({
        "requestURL": at.request_url,
        "statusCode": 1,
        "statusString": "OK",
        "subStatusCode": "ok",
        "FPID": fpid,
    }))
    .into_response())
}

/// A face write's checks against the terminal's state: the person exists, a face exists for
/// Modify and none for Record, and a new face fits.
fn precheck(at: &Call<'_>, write: Write, fpid: &str) -> Result<(), Refused> {
    let t = at.state();
    if !t.persons.contains_key(fpid) {
        return Err(Refused::new(status::EMPLOYEE_NOT_EXIST, "FPID"));
    }
    let has_face = t.faces.contains_key(fpid);
    match write {
        Write::Record if has_face => return Err(Refused::new(status::FACE_EXISTS, "FPID")),
        Write::Modify if !has_face => return Err(Refused::new(status::EMPLOYEE_NOT_EXIST, "FPID")),
        _ => {}
    }
    if !has_face && t.faces.len() >= at.config().max_faces as usize {
        return Err(Refused::new(status::DEVICE_ERROR, "FDRecordDataMaxNum"));
    }
    Ok(())
}

/// The answer to a face write that is not multipart: a JSON record carrying its image is
/// refused for the image, one with a `faceURL` is not emulated, anything else lacks its parts.
fn not_multipart(body: &[u8]) -> Refused {
    let Ok(Value::Object(record)) = serde_json::from_slice::<Value>(body) else {
        return Refused::bad("Content-Type");
    };
    if let Some(key) = INLINE_IMAGE_KEYS.iter().find(|k| record.contains_key(**k)) {
        return Refused::bad(*key);
    }
    if record.contains_key("faceURL") {
        return Refused::new(status::NOT_SUPPORT, "faceURL");
    }
    Refused::bad("Content-Type")
}

async fn read_parts(request: Request) -> Result<Vec<Part>, Refused> {
    let malformed = || Refused::new(status::BAD_JSON_FORMAT, "multipart");
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|_| malformed())?;
    let mut parts = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(|_| malformed())? {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let content_type = field.content_type().map(str::to_string);
        let bytes = field.bytes().await.map_err(|_| malformed())?;
        parts.push(Part {
            name,
            file_name,
            content_type,
            bytes,
        });
        if parts.len() > 4 {
            return Err(Refused::bad("multipart"));
        }
    }
    Ok(parts)
}

/// The record (the first part, `FaceDataRecord`, no filename) and the image (the second part,
/// `img` or `FaceImage`, a JPEG file). The image may be missing: the caller says why that is.
fn split_parts(parts: Vec<Part>) -> Result<(Map<String, Value>, Option<Bytes>), Refused> {
    let mut parts = parts.into_iter();
    let record = match parts.next() {
        None => return Err(Refused::lack("FaceDataRecord")),
        Some(p) if p.name == "FaceDataRecord" && p.file_name.is_none() => p,
        // The image first, or a record sent as a file: the record is not where it must be.
        Some(_) => return Err(Refused::bad("FaceDataRecord")),
    };
    let record = object(&record.bytes)
        .map_err(|_| Refused::new(status::BAD_JSON_FORMAT, "FaceDataRecord"))?;
    if let Some(key) = INLINE_IMAGE_KEYS.iter().find(|k| record.contains_key(**k)) {
        return Err(Refused::bad(*key));
    }
    let image = match parts.next() {
        None => None,
        Some(p) if !IMAGE_PARTS.contains(&p.name.as_str()) => return Err(Refused::bad(p.name)),
        Some(p) if p.file_name.as_deref().is_none_or(str::is_empty) => {
            return Err(Refused::bad("filename"));
        }
        Some(p) if p.content_type.as_deref() != Some("image/jpeg") => {
            return Err(Refused::bad("Content-Type"));
        }
        Some(p) => Some(p.bytes),
    };
    if let Some(extra) = parts.next() {
        return Err(Refused::bad(extra.name));
    }
    Ok((record, image))
}

/// The record's FDID, faceLibType, FPID and name; the FPID.
fn record_fpid(record: &Map<String, Value>) -> Result<String, Refused> {
    if super::string(record, "faceLibType", "faceLibType")? != "blackFD" {
        return Err(Refused::bad("faceLibType"));
    }
    if super::string(record, "FDID", "FDID")? != "1" {
        return Err(Refused::bad("FDID"));
    }
    let fpid = super::string(record, "FPID", "FPID")?;
    if !is_employee_no(fpid) {
        return Err(Refused::bad("FPID"));
    }
    if let Some(name) = record.get("name") {
        let name = name.as_str().ok_or_else(|| Refused::bad("name"))?;
        if name.len() > FD_NAME_MAX_BYTES {
            return Err(Refused::new(status::BEYOND_RANGE, "name"));
        }
    }
    Ok(fpid.to_string())
}

/// `POST /ISAPI/Intelligent/FDLib/FDSearch?format=json`: visible faces, by FPID.
pub(super) fn search(at: &Call<'_>, body: &Bytes, host: &str) -> Result<Response, Refused> {
    let cond = object(body)?;
    let search_id = super::search_id(&cond, false)?;
    let (position, max) = super::paging(&cond)?;
    if super::string(&cond, "faceLibType", "faceLibType")? != "blackFD" {
        return Err(Refused::bad("faceLibType"));
    }
    if super::string(&cond, "FDID", "FDID")? != "1" {
        return Err(Refused::bad("FDID"));
    }
    let fpid = match cond.get("FPID") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Refused::bad("FPID")),
    };
    let now = Instant::now();
    let mut t = at.state();
    let mut out = json!({
        "responseStatusStrg": "NO MATCH",
        "numOfMatches": 0,
        "totalMatches": 0,
    });
    if let Some(id) = &search_id {
        out["searchID"] = json!(id);
        if !super::search_admits(&t.face_searches, id, position) {
            return Ok(axum::Json(out).into_response());
        }
    }
    let matching: Vec<&String> = t
        .visible_faces(now)
        .map(|(id, _)| id)
        .filter(|id| fpid.as_ref().is_none_or(|f| f == *id))
        .collect();
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(usize::try_from(position).unwrap_or(usize::MAX))
        .take(max as usize)
        .map(|id| {
            json!({
                "FPID": id,
                "faceURL": face_url(host, at.terminal, id),
                "modelData": "",
            })
        })
        .collect();
    out["responseStatusStrg"] = json!(super::response_status(position, page.len(), total));
    out["numOfMatches"] = json!(page.len());
    out["totalMatches"] = json!(total);
    let next = position + page.len() as u64;
    out["MatchList"] = Value::Array(page);
    if let Some(id) = search_id {
        t.face_searches.insert(id, next);
    }
    Ok(axum::Json(out).into_response())
}

/// Where a face's picture is, in the form terminals give it (the emulator does not serve it).
fn face_url(host: &str, terminal: &str, fpid: &str) -> String {
    let hex: String = fpid.bytes().map(|b| format!("{b:02x}")).collect();
    format!("http://{host}{PREFIX}{terminal}/LOCALS/pic/enrlFace/0/{hex}.jpg")
}

/// `PUT /ISAPI/Intelligent/FDLib/FDSearch/Delete?format=json&FDID=1&faceLibType=blackFD`.
pub(super) fn delete(at: &Call<'_>, query: &str, body: &Bytes) -> Result<Response, Refused> {
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match param("FDID") {
        None => return Err(Refused::lack("FDID")),
        Some("1") => {}
        Some(_) => return Err(Refused::bad("FDID")),
    }
    match param("faceLibType") {
        None => return Err(Refused::lack("faceLibType")),
        Some("blackFD") => {}
        Some(_) => return Err(Refused::bad("faceLibType")),
    }
    let cond = object(body)?;
    let content = || Refused::new(status::BAD_JSON_CONTENT, "FPID");
    let ids: Vec<String> = match cond.get("FPID") {
        None | Some(Value::Null) => return Err(Refused::lack("FPID")),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.get("value")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(content)
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(content()),
    };
    let mut t = at.state();
    for id in ids {
        t.faces.remove(&id);
    }
    Ok(status::ok(at.request_url))
}
