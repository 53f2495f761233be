//! What the emulator's tests share: a reqwest client for loopback, an answer read once, a Feishu
//! client with the official SDKs' form shapes, and a VziCloud client that signs with this file's
//! own signer (SIGNATURE.md again, so the tests check the emulator's verifier instead of
//! agreeing with it by construction; the vendor's worked example anchors both).

// Each test file is its own crate and uses only part of this.
#![allow(dead_code)]

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use facesync_emulator::{Emulator, EmulatorConfig};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha1::Sha1;

pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

pub(crate) fn photo(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("demo/photos").join(name)).unwrap()
}

/// A grey PNG of the given size (no face in it).
pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_pixel(width, height, image::Luma([200]))
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// A JPEG's magic number followed by noise: sniffed as a JPEG, never decoded.
pub(crate) fn garbage_jpeg() -> Vec<u8> {
    let mut bytes = b"\xff\xd8\xff\xe0".to_vec();
    bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8));
    bytes
}

pub(crate) async fn start(config: EmulatorConfig) -> Emulator {
    Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("the emulator starts")
}

pub(crate) fn users(ids: &[&str]) -> Option<Vec<String>> {
    Some(ids.iter().map(|s| s.to_string()).collect())
}

pub(crate) fn client() -> reqwest::Client {
    // No idle pool: its timer would move a paused clock by itself. No proxy: loopback only.
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
        .unwrap()
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An answer: status, headers, body, and the body as JSON (`Null` when it is not JSON).
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) bytes: Vec<u8>,
    pub(crate) json: Value,
}

impl Answer {
    pub(crate) async fn of(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap().to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            bytes,
            json,
        }
    }

    /// The vendor code: Feishu's `code`, VziCloud's `error_code`; 0 for a success.
    pub(crate) fn code(&self) -> i64 {
        self.json["code"]
            .as_i64()
            .or(self.json["error_code"].as_i64())
            .unwrap_or(0)
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[track_caller]
pub(crate) fn expect(answer: &Answer, status: u16, code: i64, case: &str) {
    assert_eq!(
        (answer.status, answer.code()),
        (status, code),
        "{case}: {}",
        String::from_utf8_lossy(&answer.bytes[..answer.bytes.len().min(400)])
    );
}

/// A Feishu client with no SDK in between.
pub(crate) struct Feishu {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
}

impl Feishu {
    pub(crate) fn new(emulator: &Emulator) -> Self {
        Self {
            http: client(),
            base: emulator.base_url(),
        }
    }

    pub(crate) async fn token_answer(&self, body: Value) -> Answer {
        let url = format!(
            "{}/open-apis/auth/v3/tenant_access_token/internal",
            self.base
        );
        Answer::of(self.http.post(url).json(&body).send().await.unwrap()).await
    }

    /// A fresh token for the demo app, and its `expire`.
    pub(crate) async fn token_expire(&self) -> (String, u64) {
        let answer = self
            .token_answer(json!({"app_id": "cli_demo", "app_secret": "demo-feishu-secret"}))
            .await;
        expect(&answer, 200, 0, "token");
        (
            answer.json["tenant_access_token"]
                .as_str()
                .unwrap()
                .to_string(),
            answer.json["expire"].as_u64().unwrap(),
        )
    }

    pub(crate) async fn token(&self) -> String {
        self.token_expire().await.0
    }

    /// `method path` with an `Authorization` header value (or none) and a multipart form.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        authorization: Option<&str>,
        form: Option<Form>,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(a) = authorization {
            request = request.header("authorization", a);
        }
        if let Some(f) = form {
            request = request.multipart(f);
        }
        Answer::of(request.send().await.unwrap()).await
    }

    pub(crate) async fn upload(&self, token: &str, path: &str, form: Form) -> Answer {
        let auth = format!("Bearer {token}");
        self.call(reqwest::Method::PUT, path, Some(&auth), Some(form))
            .await
    }

    pub(crate) async fn get(&self, token: &str, path: &str) -> Answer {
        let auth = format!("Bearer {token}");
        self.call(reqwest::Method::GET, path, Some(&auth), None)
            .await
    }
}

/// Who sends the face form: the shapes of the file part differ.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sdk {
    /// facesync: a real file name and an image content type.
    Facesync,
    /// oapi-sdk-go: `filename="unknown-file"`, application/octet-stream.
    Go,
    /// oapi-sdk-python (requests-toolbelt): no filename, no content type.
    Python,
}

/// Every order of the three parts (Go iterates a map: any order).
pub(crate) const ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

pub(crate) fn sdk_form(
    sdk: Sdk,
    order: [usize; 3],
    bytes: &[u8],
    file_type: &str,
    file_name: &str,
) -> Form {
    let mut form = Form::new();
    for i in order {
        form = match i {
            0 => {
                let part = Part::bytes(bytes.to_vec());
                let part = match sdk {
                    Sdk::Facesync => part
                        .file_name(file_name.to_string())
                        .mime_str(if file_type == "png" {
                            "image/png"
                        } else {
                            "image/jpeg"
                        })
                        .unwrap(),
                    Sdk::Go => part
                        .file_name("unknown-file")
                        .mime_str("application/octet-stream")
                        .unwrap(),
                    Sdk::Python => part,
                };
                form.part("files", part)
            }
            1 => form.text("file_type", file_type.to_string()),
            _ => form.text("file_name", file_name.to_string()),
        };
    }
    form
}

pub(crate) fn form(bytes: &[u8], file_type: &str, file_name: &str) -> Form {
    sdk_form(Sdk::Facesync, [0, 1, 2], bytes, file_type, file_name)
}

pub(crate) fn face_path(id: &str, query: &str) -> String {
    format!("/open-apis/acs/v1/users/{id}/face{query}")
}

/// A VziCloud client that signs with [`sign_query`].
pub(crate) struct Vzi {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) key_id: String,
    pub(crate) secret: String,
}

pub(crate) const APP: &str = "/v2/frs/user/apps/2";

impl Vzi {
    pub(crate) fn new(emulator: &Emulator) -> Self {
        Self::with_key(emulator, "demo_key", "demo-vzicloud-secret")
    }

    pub(crate) fn with_key(emulator: &Emulator, key_id: &str, secret: &str) -> Self {
        Self {
            http: client(),
            base: emulator.base_url(),
            key_id: key_id.to_string(),
            secret: secret.to_string(),
        }
    }

    pub(crate) fn signed(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        body: &[u8],
        expires: u64,
    ) -> String {
        sign_query(
            &self.key_id,
            &self.secret,
            expires,
            method,
            path,
            params,
            body,
        )
    }

    /// Sends exactly this query string and body.
    pub(crate) async fn send_raw(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: Vec<u8>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}?{query}", self.base));
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        Answer::of(request.send().await.unwrap()).await
    }

    /// Signs (expiring in 2 minutes) and sends.
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Answer {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let query = self.signed(method, path, params, &bytes, unix_now() + 120);
        self.send_raw(method, path, &query, bytes).await
    }

    pub(crate) async fn create_group(&self, group_id: &str) -> Answer {
        self.send(
            "POST",
            &format!("{APP}/groups"),
            &[],
            Some(&json!({"group_id": group_id})),
        )
        .await
    }

    pub(crate) async fn put_face(&self, body: &Value) -> Answer {
        self.send("PUT", &format!("{APP}/faces"), &[], Some(body))
            .await
    }
}

pub(crate) fn face_body(group_id: &str, user_id: &str, image: &[u8], action: &str) -> Value {
    json!({
        "image_type": "BASE64",
        "image": BASE64.encode(image),
        "group_id": group_id,
        "user_id": user_id,
        "user_name": "张伟",
        "action_type": action,
    })
}

/// The query string of a signed VziCloud request: `params`, then `accesskey_id`, `expires` and
/// `signature`, every value url-encoded (SIGNATURE.md).
pub(crate) fn sign_query(
    key_id: &str,
    secret: &str,
    expires: u64,
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    body: &[u8],
) -> String {
    let mut sorted: Vec<_> = params.to_vec();
    sorted.sort();
    let mut resource = path.to_string();
    if !sorted.is_empty() {
        let pairs: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
        resource = format!("{path}?{}", pairs.join("&"));
    }
    let (md5, content_type) = match body {
        [] => (String::new(), ""),
        _ => (BASE64.encode(Md5::digest(body)), "application/json"),
    };
    let verb = method.to_ascii_uppercase();
    let canonical = format!("{verb}\n{md5}\n{content_type}\n{expires}\n{resource}");
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(canonical.as_bytes());
    let signature = BASE64.encode(mac.finalize().into_bytes());
    let encode = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let mut query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    query.push(format!("accesskey_id={}", encode(key_id)));
    query.push(format!("expires={expires}"));
    query.push(format!("signature={}", encode(&signature)));
    query.join("&")
}

// ---- Hikvision: an HTTP Digest client (RFC 7616, written here, not the emulator's) ----

/// A digest challenge as a terminal sent it.
#[derive(Clone, Debug)]
pub(crate) struct Challenge {
    pub(crate) realm: String,
    pub(crate) nonce: String,
    pub(crate) opaque: String,
    pub(crate) algorithm: String,
    pub(crate) stale: String,
    /// The requests made with this nonce so far.
    pub(crate) nc: u32,
}

impl Challenge {
    /// Reads a `WWW-Authenticate: Digest ...` value.
    pub(crate) fn parse(value: &str) -> Challenge {
        let rest = value.strip_prefix("Digest ").expect("a Digest challenge");
        let mut params = std::collections::HashMap::new();
        for item in rest.split(", ") {
            let (k, v) = item.split_once('=').expect("key=value");
            params.insert(k.to_string(), v.trim_matches('"').to_string());
        }
        assert_eq!(params["qop"], "auth", "{value}");
        Challenge {
            realm: params["realm"].clone(),
            nonce: params["nonce"].clone(),
            opaque: params["opaque"].clone(),
            algorithm: params["algorithm"].clone(),
            stale: params.get("stale").cloned().unwrap_or_default(),
            nc: 0,
        }
    }
}

fn digest_hex(algorithm: &str, text: &str) -> String {
    let bytes = if algorithm.starts_with("SHA-256") {
        sha2::Sha256::digest(text.as_bytes()).to_vec()
    } else {
        Md5::digest(text.as_bytes()).to_vec()
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Authorization` value for one request under `challenge` (its `nc` already counted).
/// `sess` uses the `-sess` variant of the challenge's algorithm.
pub(crate) fn digest_authorization(
    challenge: &Challenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    sess: bool,
) -> String {
    let algorithm = if sess {
        format!("{}-sess", challenge.algorithm)
    } else {
        challenge.algorithm.clone()
    };
    let nc = format!("{:08x}", challenge.nc);
    let cnonce = format!("cn{}", challenge.nc * 7919);
    let nonce = &challenge.nonce;
    let mut ha1 = digest_hex(
        &algorithm,
        &format!("{username}:{}:{password}", challenge.realm),
    );
    if sess {
        ha1 = digest_hex(&algorithm, &format!("{ha1}:{nonce}:{cnonce}"));
    }
    let ha2 = digest_hex(&algorithm, &format!("{method}:{uri}"));
    let response = digest_hex(
        &algorithm,
        &format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"),
    );
    format!(
        "Digest username=\"{username}\", realm=\"{}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         algorithm={algorithm}, qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\", \
         opaque=\"{}\"",
        challenge.realm, challenge.opaque
    )
}

/// A request body for a terminal.
#[derive(Clone)]
pub(crate) enum HikBody {
    None,
    Json(Value),
    Raw {
        content_type: String,
        bytes: Vec<u8>,
    },
}

/// A client of one terminal: asks for a challenge when it has none, signs every request with
/// the next `nc`, and on `stale="true"` takes the new challenge and tries once more.
pub(crate) struct Hik {
    pub(crate) http: reqwest::Client,
    pub(crate) host: String,
    /// `/hikvision/<terminal>`.
    pub(crate) prefix: String,
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) sess: bool,
    pub(crate) challenge: std::sync::Mutex<Option<Challenge>>,
}

impl Hik {
    pub(crate) fn new(emulator: &Emulator, terminal: &str) -> Self {
        Self::with_password(emulator, terminal, "demo-hikvision-password")
    }

    pub(crate) fn with_password(emulator: &Emulator, terminal: &str, password: &str) -> Self {
        Self {
            http: client(),
            host: emulator.base_url(),
            prefix: format!("/hikvision/{terminal}"),
            username: "admin".to_string(),
            password: password.to_string(),
            sess: false,
            challenge: std::sync::Mutex::new(None),
        }
    }

    /// `path` (with its query) under the terminal, sent with exactly this `Authorization`.
    pub(crate) async fn raw(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: &HikBody,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("{}{}{path}", self.host, self.prefix);
        let mut request = self.http.request(method, url);
        if let Some(a) = authorization {
            request = request.header("authorization", a);
        }
        request = match body {
            HikBody::None => request,
            HikBody::Json(v) => request
                .header("content-type", "application/json")
                .body(serde_json::to_vec(v).unwrap()),
            HikBody::Raw {
                content_type,
                bytes,
            } => request
                .header("content-type", content_type.as_str())
                .body(bytes.clone()),
        };
        Answer::of(request.send().await.unwrap()).await
    }

    /// Asks for a fresh challenge (a request without credentials) and keeps it.
    pub(crate) async fn challenge(&self) -> Answer {
        let answer = self
            .raw("GET", "/ISAPI/System/deviceInfo", None, &HikBody::None)
            .await;
        assert_eq!(answer.status, 401, "a challenge");
        let value = answer.header("www-authenticate").unwrap().to_string();
        *self.challenge.lock().unwrap() = Some(Challenge::parse(&value));
        answer
    }

    /// The `Authorization` for the next request with the kept challenge.
    pub(crate) fn authorization(&self, method: &str, path: &str) -> String {
        let mut kept = self.challenge.lock().unwrap();
        let challenge = kept.as_mut().expect("a challenge first");
        challenge.nc += 1;
        let uri = format!("{}{path}", self.prefix);
        digest_authorization(
            challenge,
            &self.username,
            &self.password,
            method,
            &uri,
            self.sess,
        )
    }

    /// One signed request; on a 401 with `stale="true"` the new challenge is taken and the
    /// request sent once more.
    pub(crate) async fn send(&self, method: &str, path: &str, body: &HikBody) -> Answer {
        if self.challenge.lock().unwrap().is_none() {
            self.challenge().await;
        }
        let auth = self.authorization(method, path);
        let answer = self.raw(method, path, Some(&auth), body).await;
        let stale = answer
            .header("www-authenticate")
            .map(Challenge::parse)
            .filter(|c| c.stale == "true");
        match stale {
            Some(c) if answer.status == 401 => {
                *self.challenge.lock().unwrap() = Some(c);
                let auth = self.authorization(method, path);
                self.raw(method, path, Some(&auth), body).await
            }
            _ => answer,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &HikBody::None).await
    }

    pub(crate) async fn json(&self, method: &str, path: &str, body: Value) -> Answer {
        self.send(method, path, &HikBody::Json(body)).await
    }
}

/// Asserts a terminal's answer: the HTTP status, `subStatusCode` and `errorMsg` (`""`: none).
#[track_caller]
pub(crate) fn expect_hik(answer: &Answer, status: u16, sub: &str, msg: &str, case: &str) {
    let got = (
        answer.status,
        answer.json["subStatusCode"].as_str().unwrap_or(""),
        answer.json["errorMsg"].as_str().unwrap_or(""),
    );
    assert_eq!(
        got,
        (status, sub, msg),
        "{case}: {}",
        String::from_utf8_lossy(&answer.bytes[..answer.bytes.len().min(400)])
    );
}

/// A person as working clients send one.
pub(crate) fn hik_person(employee_no: &str, name: &str) -> Value {
    json!({"UserInfo": {
        "employeeNo": employee_no,
        "name": name,
        "userType": "normal",
        "Valid": {"enable": true, "beginTime": "2020-01-01T00:00:00",
                  "endTime": "2037-12-31T23:59:59", "timeType": "local"},
        "doorRight": "1",
        "RightPlan": [{"doorNo": 1, "planTemplateNo": "1"}],
    }})
}

/// A face upload as the reference shows it: boundary `----X` (quoted when `quoted`), the
/// record part then the image part named `image_part`; `swap` puts the image first.
pub(crate) fn hik_face_form(
    fpid: &str,
    image: &[u8],
    image_part: &str,
    quoted: bool,
    swap: bool,
) -> HikBody {
    let record = format!(r#"{{"faceLibType":"blackFD","FDID":"1","FPID":"{fpid}"}}"#);
    let record_part = format!(
        "------X\r\nContent-Disposition: form-data; name=\"FaceDataRecord\"\r\n\
         Content-Type: application/json\r\n\r\n{record}\r\n"
    )
    .into_bytes();
    let mut image_bytes = format!(
        "------X\r\nContent-Disposition: form-data; name=\"{image_part}\"; \
         filename=\"{fpid}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    .into_bytes();
    image_bytes.extend_from_slice(image);
    image_bytes.extend_from_slice(b"\r\n");
    let mut bytes = Vec::new();
    if swap {
        bytes.extend(image_bytes);
        bytes.extend(record_part);
    } else {
        bytes.extend(record_part);
        bytes.extend(image_bytes);
    }
    bytes.extend_from_slice(b"------X--\r\n");
    let boundary = if quoted { "\"----X\"" } else { "----X" };
    HikBody::Raw {
        content_type: format!("multipart/form-data; boundary={boundary}"),
        bytes,
    }
}

pub(crate) const HIK_RECORD: &str = "/ISAPI/AccessControl/UserInfo/Record?format=json";
pub(crate) const HIK_MODIFY: &str = "/ISAPI/AccessControl/UserInfo/Modify?format=json";
pub(crate) const HIK_SETUP: &str = "/ISAPI/AccessControl/UserInfo/SetUp?format=json";
pub(crate) const HIK_SEARCH: &str = "/ISAPI/AccessControl/UserInfo/Search?format=json";
pub(crate) const HIK_DELETE: &str = "/ISAPI/AccessControl/UserInfo/Delete?format=json";
pub(crate) const HIK_FACE_RECORD: &str = "/ISAPI/Intelligent/FDLib/FaceDataRecord?format=json";
pub(crate) const HIK_FACE_SETUP: &str = "/ISAPI/Intelligent/FDLib/FDSetUp?format=json";
pub(crate) const HIK_FACE_MODIFY: &str = "/ISAPI/Intelligent/FDLib/FDModify?format=json";
pub(crate) const HIK_FACE_SEARCH: &str = "/ISAPI/Intelligent/FDLib/FDSearch?format=json";
pub(crate) const HIK_FACE_DELETE: &str =
    "/ISAPI/Intelligent/FDLib/FDSearch/Delete?format=json&FDID=1&faceLibType=blackFD";
