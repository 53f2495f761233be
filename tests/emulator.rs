//! The emulator over loopback, as clients and the official SDKs meet it: every documented
//! refusal, the SDKs' request shapes, the knobs, the inspection API and `facesync emulate`.
//! Each test starts its own emulator on 127.0.0.1:0; tests about waiting pause the clock.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use facesync::emulator::UserIdType;
use facesync::emulator::{Emulator, EmulatorConfig, FaceLocation, feishu_user_id_as};
use facesync::secret::Secret;
use facesync::targets::vzicloud::sign;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

// ---- helpers ----

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("demo/photos").join(name)).unwrap()
}

/// A grey PNG of the given size (no face in it).
fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_pixel(width, height, image::Luma([200]))
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// A JPEG's magic number followed by noise: sniffed as a JPEG, never decoded.
fn garbage_jpeg() -> Vec<u8> {
    let mut bytes = b"\xff\xd8\xff\xe0".to_vec();
    bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8));
    bytes
}

async fn start(config: EmulatorConfig) -> Emulator {
    Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("the emulator starts")
}

fn users(ids: &[&str]) -> Option<Vec<String>> {
    Some(ids.iter().map(|s| s.to_string()).collect())
}

fn client() -> reqwest::Client {
    // No idle pool: its timer would move a paused clock by itself. No proxy: loopback only.
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
        .unwrap()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An answer: status, headers, body, and the body as JSON (`Null` when it is not JSON).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
    json: Value,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Answer {
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
    fn code(&self) -> i64 {
        self.json["code"]
            .as_i64()
            .or(self.json["error_code"].as_i64())
            .unwrap_or(0)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[track_caller]
fn expect(answer: &Answer, status: u16, code: i64, case: &str) {
    assert_eq!(
        (answer.status, answer.code()),
        (status, code),
        "{case}: {}",
        String::from_utf8_lossy(&answer.bytes[..answer.bytes.len().min(400)])
    );
}

/// A Feishu client with no SDK in between.
struct Feishu {
    http: reqwest::Client,
    base: String,
}

impl Feishu {
    fn new(emulator: &Emulator) -> Self {
        Self {
            http: client(),
            base: emulator.base_url(),
        }
    }

    async fn token_answer(&self, body: Value) -> Answer {
        let url = format!(
            "{}/open-apis/auth/v3/tenant_access_token/internal",
            self.base
        );
        Answer::of(self.http.post(url).json(&body).send().await.unwrap()).await
    }

    /// A fresh token for the demo app, and its `expire`.
    async fn token_expire(&self) -> (String, u64) {
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

    async fn token(&self) -> String {
        self.token_expire().await.0
    }

    /// `method path` with an `Authorization` header value (or none) and a multipart form.
    async fn call(
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

    async fn upload(&self, token: &str, path: &str, form: Form) -> Answer {
        let auth = format!("Bearer {token}");
        self.call(reqwest::Method::PUT, path, Some(&auth), Some(form))
            .await
    }

    async fn get(&self, token: &str, path: &str) -> Answer {
        let auth = format!("Bearer {token}");
        self.call(reqwest::Method::GET, path, Some(&auth), None)
            .await
    }
}

/// Who sends the face form: the shapes of the file part differ.
#[derive(Clone, Copy, Debug)]
enum Sdk {
    /// facesync: a real file name and an image content type.
    Facesync,
    /// oapi-sdk-go: `filename="unknown-file"`, application/octet-stream.
    Go,
    /// oapi-sdk-python (requests-toolbelt): no filename, no content type.
    Python,
}

/// Every order of the three parts (Go iterates a map: any order).
const ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

fn sdk_form(sdk: Sdk, order: [usize; 3], bytes: &[u8], file_type: &str, file_name: &str) -> Form {
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

fn form(bytes: &[u8], file_type: &str, file_name: &str) -> Form {
    sdk_form(Sdk::Facesync, [0, 1, 2], bytes, file_type, file_name)
}

fn face_path(id: &str, query: &str) -> String {
    format!("/open-apis/acs/v1/users/{id}/face{query}")
}

/// A VziCloud client that signs with the shared signer.
struct Vzi {
    http: reqwest::Client,
    base: String,
    key_id: String,
    secret: String,
}

const APP: &str = "/v2/frs/user/apps/2";

impl Vzi {
    fn new(emulator: &Emulator) -> Self {
        Self::with_key(emulator, "demo_key", "demo-vzicloud-secret")
    }

    fn with_key(emulator: &Emulator, key_id: &str, secret: &str) -> Self {
        Self {
            http: client(),
            base: emulator.base_url(),
            key_id: key_id.to_string(),
            secret: secret.to_string(),
        }
    }

    fn signed(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        body: &[u8],
        expires: u64,
    ) -> String {
        sign::Signing {
            accesskey_id: &self.key_id,
            secret: &self.secret,
            expires,
        }
        .query(method, path, params, body)
    }

    /// Sends exactly this query string and body.
    async fn send_raw(&self, method: &str, path: &str, query: &str, body: Vec<u8>) -> Answer {
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
    async fn send(
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

    async fn create_group(&self, group_id: &str) -> Answer {
        self.send(
            "POST",
            &format!("{APP}/groups"),
            &[],
            Some(&json!({"group_id": group_id})),
        )
        .await
    }

    async fn put_face(&self, body: &Value) -> Answer {
        self.send("PUT", &format!("{APP}/faces"), &[], Some(body))
            .await
    }
}

fn face_body(group_id: &str, user_id: &str, image: &[u8], action: &str) -> Value {
    json!({
        "image_type": "BASE64",
        "image": BASE64.encode(image),
        "group_id": group_id,
        "user_id": user_id,
        "user_name": "张伟",
        "action_type": action,
    })
}

// ---- Feishu: token ----

#[tokio::test]
async fn the_token_endpoint_checks_the_app_credentials() {
    let emulator = start(EmulatorConfig::default()).await;
    let feishu = Feishu::new(&emulator);
    let cases = [
        (
            json!({"app_id": "cli_demo", "app_secret": "demo-feishu-secret"}),
            0,
        ),
        (json!({"app_id": "cli_demo", "app_secret": "wrong"}), 10014),
        (
            json!({"app_id": "cli_other", "app_secret": "demo-feishu-secret"}),
            10014,
        ),
        (json!({"app_id": "cli_demo"}), 10003),
        (json!({"app_id": "", "app_secret": ""}), 10003),
        (json!("not an object"), 10003),
    ];
    for (body, code) in cases {
        let answer = feishu.token_answer(body.clone()).await;
        // The real endpoint answers its refusals with HTTP 200 too.
        expect(&answer, 200, code, &body.to_string());
        assert_eq!(answer.json["tenant_access_token"].is_string(), code == 0);
    }
    let stats = emulator.stats();
    assert_eq!(stats.requests_of("feishu.token"), 6);
    assert_eq!(stats.refusals_of("feishu.token", 10014), 2);
    assert_eq!(stats.tokens_issued, 1);
}

#[tokio::test(start_paused = true)]
async fn tokens_are_reissued_only_near_expiry_and_really_expire() {
    let emulator = start(EmulatorConfig::default()).await;
    let feishu = Feishu::new(&emulator);
    let list = |token: String| {
        let feishu = &feishu;
        async move { feishu.get(&token, "/open-apis/acs/v1/users").await }
    };
    let (first, expire) = feishu.token_expire().await;
    assert_eq!(expire, 7200);

    tokio::time::advance(Duration::from_secs(3600)).await;
    let (again, expire) = feishu.token_expire().await;
    assert_eq!(again, first, "more than 30 min remain: the same token");
    assert!((3590..=3600).contains(&expire), "{expire}");

    tokio::time::advance(Duration::from_secs(1900)).await;
    let (fresh, expire) = feishu.token_expire().await;
    assert_ne!(fresh, first, "less than 30 min remain: a new token");
    assert_eq!(expire, 7200);
    expect(
        &list(first.clone()).await,
        200,
        0,
        "the old token until it expires",
    );

    tokio::time::advance(Duration::from_secs(1800)).await;
    expect(&list(first).await, 400, 99991663, "the expired token");
    expect(&list(fresh).await, 200, 0, "the new token");
    assert_eq!(emulator.stats().tokens_issued, 2);
}

#[tokio::test(start_paused = true)]
async fn a_short_token_lifetime_expires_on_time() {
    let emulator = start(EmulatorConfig {
        token_lifetime: Duration::from_secs(2),
        ..EmulatorConfig::default()
    })
    .await;
    let feishu = Feishu::new(&emulator);
    let (token, expire) = feishu.token_expire().await;
    assert_eq!(expire, 2);
    expect(
        &feishu.get(&token, "/open-apis/acs/v1/users").await,
        200,
        0,
        "fresh",
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    expect(
        &feishu.get(&token, "/open-apis/acs/v1/users").await,
        400,
        99991663,
        "expired",
    );
}

#[tokio::test]
async fn feishu_apis_need_a_valid_bearer_token() {
    let emulator = start(EmulatorConfig::default()).await;
    let feishu = Feishu::new(&emulator);
    let calls = [
        (
            reqwest::Method::PUT,
            face_path("E1001", "?user_id_type=user_id"),
        ),
        (
            reqwest::Method::GET,
            face_path("E1001", "?user_id_type=user_id"),
        ),
        (reqwest::Method::GET, "/open-apis/acs/v1/users".to_string()),
        (
            reqwest::Method::GET,
            "/open-apis/acs/v1/users/E1001?user_id_type=user_id".to_string(),
        ),
    ];
    let headers = [
        (None, 99991661),
        (Some("Basic Y2xpOnNlY3JldA=="), 99991661),
        (Some("Bearer "), 99991661),
        (Some("t-abc"), 99991661),
        (Some("Bearer t-not-issued"), 99991663),
    ];
    for (method, path) in &calls {
        for (authorization, code) in headers {
            let form = (*method == reqwest::Method::PUT)
                .then(|| form(&photo("E1001.jpg"), "jpg", "E1001.jpg"));
            let answer = feishu.call(method.clone(), path, authorization, form).await;
            expect(
                &answer,
                400,
                code,
                &format!("{method} {path} {authorization:?}"),
            );
        }
    }
}

// ---- Feishu: faces ----

#[tokio::test]
async fn face_uploads_shaped_like_each_official_sdk_are_accepted() {
    // Shapes only: face checks are covered elsewhere, and each upload is then quick.
    let emulator = start(EmulatorConfig {
        face_check: false,
        ..EmulatorConfig::default()
    })
    .await;
    let feishu = Feishu::new(&emulator);
    let token = feishu.token().await;
    let jpeg = photo("E1001.jpg");
    let png = photo("E1014.png");
    for sdk in [Sdk::Facesync, Sdk::Go, Sdk::Python] {
        for (i, order) in ORDERS.into_iter().enumerate() {
            let (bytes, file_type) = if i % 2 == 0 {
                (&jpeg, "jpg")
            } else {
                (&png, "png")
            };
            let user = format!("U{i}_{sdk:?}");
            let file_name = format!("{user}.{file_type}");
            let answer = feishu
                .upload(
                    &token,
                    &face_path(&user, "?user_id_type=user_id"),
                    sdk_form(sdk, order, bytes, file_type, &file_name),
                )
                .await;
            expect(&answer, 200, 0, &format!("{sdk:?} {order:?}"));
            assert_eq!(answer.json["msg"], "success");
            assert_eq!(emulator.feishu_face(&user).as_ref(), Some(bytes));
        }
    }
}

#[tokio::test]
async fn face_uploads_are_refused_as_feishu_refuses_them() {
    let emulator = start(EmulatorConfig {
        users: users(&["E1001", "E1002", "E1011", "E1014"]),
        ..EmulatorConfig::default()
    })
    .await;
    let feishu = Feishu::new(&emulator);
    let token = feishu.token().await;
    let (jpeg, png, cat, garbage) = (
        photo("E1001.jpg"),
        photo("E1014.png"),
        photo("e1011.jpg"),
        garbage_jpeg(),
    );
    let open_id = feishu_user_id_as("E1001", UserIdType::OpenId);
    let union_id = feishu_user_id_as("E1002", UserIdType::UnionId);
    let text = b"plain text, no image".as_slice();
    const BY_USER_ID: &str = "?user_id_type=user_id";
    const BY_UNION_ID: &str = "?user_id_type=union_id";
    // (case, path id, query, bytes, file_type, file_name, status, code)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a [u8],
        &'a str,
        &'a str,
        u16,
        i64,
    );
    #[rustfmt::skip]
    let cases: [Case; 14] = [
        ("a known user",                  "E1001",   BY_USER_ID, &jpeg,    "jpg",  "E1001.jpg", 200, 0),
        ("a png",                         "E1014",   BY_USER_ID, &png,     "png",  "E1014.png", 200, 0),
        ("by open_id, the default type",  &open_id,  "",         &jpeg,    "jpg",  "a.jpg",     200, 0),
        ("by union_id",                   &union_id, BY_UNION_ID, &jpeg,   "jpg",  "a.jpg",     200, 0),
        ("a user not in the list",        "E1015",   BY_USER_ID, &jpeg,    "jpg",  "a.jpg",     400, 1490101),
        ("a user_id read as an open_id",  "E1001",   "",         &jpeg,    "jpg",  "a.jpg",     400, 1490101),
        ("an unknown id type",            "E1001",   "?user_id_type=email", &jpeg, "jpg", "a.jpg", 400, 99992402),
        ("a cat: no face",                "E1011",   BY_USER_ID, &cat,     "jpg",  "a.jpg",     400, 1490108),
        ("not an image",                  "E1001",   BY_USER_ID, text,     "jpg",  "a.jpg",     400, 1490108),
        ("a jpeg header over garbage",    "E1001",   BY_USER_ID, &garbage, "jpg",  "a.jpg",     400, 1490108),
        ("png bytes called jpg",          "E1014",   BY_USER_ID, &png,     "jpg",  "a.jpg",     400, 99992402),
        ("jpeg bytes called png",         "E1001",   BY_USER_ID, &jpeg,    "png",  "a.png",     400, 99992402),
        ("file_type jpeg",                "E1001",   BY_USER_ID, &jpeg,    "jpeg", "a.jpeg",    400, 99992402),
        ("a file name with no extension", "E1001",   BY_USER_ID, &jpeg,    "jpg",  "E1001",     400, 99992402),
    ];
    for (case, id, query, bytes, file_type, file_name, status, code) in cases {
        let form = form(bytes, file_type, file_name);
        let answer = feishu.upload(&token, &face_path(id, query), form).await;
        expect(&answer, status, code, case);
        if code == 99992402 {
            let violations = &answer.json["error"]["field_violations"];
            assert!(violations.is_array(), "{case}");
        }
    }
    for missing in ["files", "file_type", "file_name"] {
        let mut form = Form::new();
        if missing != "files" {
            form = form.part("files", Part::bytes(jpeg.clone()));
        }
        if missing != "file_type" {
            form = form.text("file_type", "jpg");
        }
        if missing != "file_name" {
            form = form.text("file_name", "a.jpg");
        }
        let answer = feishu
            .upload(&token, &face_path("E1001", BY_USER_ID), form)
            .await;
        expect(&answer, 400, 99992402, &format!("no {missing} part"));
        assert_eq!(
            answer.json["error"]["field_violations"][0]["field"],
            missing
        );
    }
    // A body that is not multipart at all.
    let answer = Answer::of(
        feishu
            .http
            .put(format!("{}{}", feishu.base, face_path("E1001", BY_USER_ID)))
            .bearer_auth(&token)
            .json(&json!({"files": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    expect(&answer, 400, 99992402, "a json body");
    assert_eq!(emulator.stats().refusals_with(1490108), 3);
}

#[tokio::test]
async fn face_downloads_return_the_stored_bytes_or_a_crop() {
    let emulator = start(EmulatorConfig {
        users: users(&["E1001", "E1002", "E1014"]),
        ..EmulatorConfig::default()
    })
    .await;
    let feishu = Feishu::new(&emulator);
    let token = feishu.token().await;
    let jpeg = photo("E1001.jpg");
    let png = photo("E1014.png");
    for (user, bytes, file_type) in [("E1001", &jpeg, "jpg"), ("E1014", &png, "png")] {
        let path = face_path(user, "?user_id_type=user_id");
        let name = format!("{user}.{file_type}");
        expect(
            &feishu
                .upload(&token, &path, form(bytes, file_type, &name))
                .await,
            200,
            0,
            user,
        );
    }
    let whole = [
        ("E1001", "", &jpeg, "image/jpeg", "E1001.jpg"),
        (
            "E1001",
            "&is_cropped=false",
            &jpeg,
            "image/jpeg",
            "E1001.jpg",
        ),
        (
            "E1001",
            "&is_cropped=False",
            &jpeg,
            "image/jpeg",
            "E1001.jpg",
        ),
        ("E1014", "", &png, "image/png", "E1014.png"),
    ];
    for (user, extra, bytes, content_type, name) in whole {
        let answer = feishu
            .get(
                &token,
                &face_path(user, &format!("?user_id_type=user_id{extra}")),
            )
            .await;
        assert_eq!(answer.status, 200, "{user}{extra}");
        assert_eq!(&answer.bytes, bytes, "{user}{extra}");
        assert_eq!(answer.header("content-type"), Some(content_type));
        assert!(answer.header("content-disposition").unwrap().contains(name));
    }
    for cropped in ["true", "True", "1"] {
        let answer = feishu
            .get(
                &token,
                &face_path(
                    "E1001",
                    &format!("?user_id_type=user_id&is_cropped={cropped}"),
                ),
            )
            .await;
        assert_eq!(answer.status, 200, "{cropped}");
        assert_eq!(answer.header("content-type"), Some("image/jpeg"));
        let crop = image::load_from_memory(&answer.bytes).unwrap();
        let original = image::load_from_memory(&jpeg).unwrap();
        assert!(crop.width() < original.width() && crop.height() < original.height());
    }
    let refused = [
        ("E1002", "", 1490107),
        ("E1015", "", 1490101),
        ("E1001", "&is_cropped=maybe", 99992402),
    ];
    for (user, extra, code) in refused {
        let answer = feishu
            .get(
                &token,
                &face_path(user, &format!("?user_id_type=user_id{extra}")),
            )
            .await;
        expect(&answer, 400, code, &format!("{user}{extra}"));
        assert!(
            answer
                .header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
    }
}

#[tokio::test]
async fn user_lists_page_through_the_users_and_show_who_has_a_face() {
    let emulator = start(EmulatorConfig {
        users: users(&["E1005", "E1003", "E1001", "E1004", "E1002"]),
        ..EmulatorConfig::default()
    })
    .await;
    let feishu = Feishu::new(&emulator);
    let token = feishu.token().await;
    expect(
        &feishu
            .upload(
                &token,
                &face_path("E1002", "?user_id_type=user_id"),
                form(&photo("E1002.jpg"), "jpg", "E1002.jpg"),
            )
            .await,
        200,
        0,
        "upload",
    );

    let mut pages = Vec::new();
    let mut page_token: Option<String> = None;
    loop {
        let mut path = "/open-apis/acs/v1/users?page_size=2&user_id_type=user_id".to_string();
        if let Some(t) = &page_token {
            path.push_str(&format!("&page_token={t}"));
        }
        let answer = feishu.get(&token, &path).await;
        expect(&answer, 200, 0, &path);
        let data = &answer.json["data"];
        let page: Vec<(String, bool)> = data["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["user_id"].as_str().unwrap().to_string(),
                    i["feature"]["face_uploaded"].as_bool().unwrap(),
                )
            })
            .collect();
        pages.push(page);
        if !data["has_more"].as_bool().unwrap() {
            assert!(data.get("page_token").is_none());
            break;
        }
        page_token = Some(data["page_token"].as_str().unwrap().to_string());
    }
    let user = |id: &str, face| (id.to_string(), face);
    assert_eq!(
        pages,
        vec![
            vec![user("E1001", false), user("E1002", true)],
            vec![user("E1003", false), user("E1004", false)],
            vec![user("E1005", false)],
        ]
    );

    let answer = feishu.get(&token, "/open-apis/acs/v1/users").await;
    let ids: Vec<&str> = answer.json["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 5, "the default page holds all five");
    assert_eq!(ids[0], feishu_user_id_as("E1001", UserIdType::OpenId));

    let one = feishu
        .get(&token, "/open-apis/acs/v1/users/E1002?user_id_type=user_id")
        .await;
    expect(&one, 200, 0, "get a user");
    assert_eq!(one.json["data"]["user"]["feature"]["face_uploaded"], true);

    let refused = [
        ("/open-apis/acs/v1/users?page_size=51", 99992402),
        ("/open-apis/acs/v1/users?page_size=0", 99992402),
        ("/open-apis/acs/v1/users?page_size=ten", 99992402),
        ("/open-apis/acs/v1/users?page_token=%21%21", 99992402),
        ("/open-apis/acs/v1/users?user_id_type=mobile", 99992402),
        (
            "/open-apis/acs/v1/users/E1009?user_id_type=user_id",
            1490101,
        ),
    ];
    for (path, code) in refused {
        expect(&feishu.get(&token, path).await, 400, code, path);
    }
}

#[tokio::test]
async fn every_feishu_answer_carries_a_log_id() {
    let emulator = start(EmulatorConfig::default()).await;
    let feishu = Feishu::new(&emulator);
    let token = feishu.token().await;
    let mut answers = vec![
        feishu
            .token_answer(json!({"app_id": "x", "app_secret": "y"}))
            .await,
        feishu
            .upload(
                &token,
                &face_path("E1001", "?user_id_type=user_id"),
                form(&photo("E1001.jpg"), "jpg", "a.jpg"),
            )
            .await,
        feishu
            .get(&token, &face_path("E1001", "?user_id_type=user_id"))
            .await,
        feishu
            .get(&token, &face_path("E1002", "?user_id_type=user_id"))
            .await,
        feishu.get(&token, "/open-apis/acs/v1/users").await,
        feishu.get(&token, "/open-apis/no/such/api").await,
        feishu
            .call(
                reqwest::Method::DELETE,
                "/open-apis/acs/v1/users",
                None,
                None,
            )
            .await,
    ];
    answers.push(
        feishu
            .call(reqwest::Method::GET, "/open-apis/acs/v1/users", None, None)
            .await,
    );
    let mut ids: Vec<String> = answers
        .iter()
        .map(|a| {
            a.header("x-tt-logid")
                .unwrap_or_else(|| panic!("no X-Tt-Logid on a {} answer", a.status))
                .to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), answers.len(), "log ids are unique");
}

#[tokio::test]
async fn feishu_rate_limits_answer_429_with_the_gateway_headers() {
    let emulator = start(EmulatorConfig {
        feishu_rate_limit: Some(2),
        rate_window: Duration::from_secs(3600),
        ..EmulatorConfig::default()
    })
    .await;
    let feishu = Feishu::new(&emulator);
    let token = feishu.token().await;
    feishu.token().await;
    let answer = feishu
        .token_answer(json!({"app_id": "cli_demo", "app_secret": "demo-feishu-secret"}))
        .await;
    expect(
        &answer,
        429,
        99991400,
        "the third token request within the window",
    );
    assert_eq!(answer.header("x-ogw-ratelimit-limit"), Some("2"));
    let reset: u64 = answer
        .header("x-ogw-ratelimit-reset")
        .unwrap()
        .parse()
        .unwrap();
    assert!((3500..=3600).contains(&reset), "{reset}");
    // Each API has its own limit.
    expect(
        &feishu.get(&token, "/open-apis/acs/v1/users").await,
        200,
        0,
        "another API",
    );
    assert_eq!(emulator.stats().refusals_of("feishu.token", 99991400), 1);
}

// ---- VziCloud: signatures ----

#[tokio::test]
async fn vzicloud_checks_signatures_as_signature_md_says() {
    let emulator = start(EmulatorConfig::default()).await;
    let vzi = Vzi::new(&emulator);
    let unknown_key = Vzi::with_key(&emulator, "someone", "demo-vzicloud-secret");
    let wrong_secret = Vzi::with_key(&emulator, "demo_key", "not-the-secret");
    let path = format!("{APP}/groups");
    let body = br#"{"group_id":"staff"}"#.to_vec();
    let other = br#"{"group_id":"staf2"}"#.to_vec();
    let (fresh, past) = (unix_now() + 120, unix_now() - 10);
    let good = vzi.signed("POST", &path, &[], &body, fresh);
    let without = |name: &str| -> String {
        let kept: Vec<&str> = good
            .split('&')
            .filter(|p| !p.starts_with(&format!("{name}=")))
            .collect();
        kept.join("&")
    };
    let not_a_number = good.replace(&format!("expires={fresh}"), "expires=soon");
    // (case, query string, body sent, status, code)
    #[rustfmt::skip]
    let cases: [(&str, String, &[u8], u16, i64); 12] = [
        ("no accesskey_id",             without("accesskey_id"), &body, 400, 1001),
        ("no expires",                  without("expires"), &body, 400, 1001),
        ("no signature",                without("signature"), &body, 400, 1001),
        ("no query",                    String::new(), &body, 400, 1001),
        ("expires not a number",        not_a_number, &body, 400, 1003),
        ("expired",                     vzi.signed("POST", &path, &[], &body, past), &body, 401, 1002),
        ("expired, unknown key: expiry first", unknown_key.signed("POST", &path, &[], &body, past), &body, 401, 1002),
        ("an unknown key",              unknown_key.signed("POST", &path, &[], &body, fresh), &body, 401, 1005),
        ("the wrong secret",            wrong_secret.signed("POST", &path, &[], &body, fresh), &body, 401, 1004),
        ("a tampered body",             good.clone(), &other, 401, 1004),
        ("signed for another method",   vzi.signed("PUT", &path, &[], &body, fresh), &body, 401, 1004),
        ("correctly signed",            good.clone(), &body, 200, 0),
    ];
    for (case, query, sent, status, code) in cases {
        let answer = vzi.send_raw("POST", &path, &query, sent.to_vec()).await;
        expect(&answer, status, code, case);
    }
    // A body sent as another content type cannot match its signature.
    let query = vzi.signed("POST", &path, &[], &other, fresh);
    let request = vzi.http.post(format!("{}{path}?{query}", vzi.base));
    let request = request.header("content-type", "text/plain").body(other);
    let answer = Answer::of(request.send().await.unwrap()).await;
    expect(&answer, 401, 1004, "text/plain");

    // Query parameters other than the auth ones are signed too.
    let users = format!("{APP}/groups/staff/users");
    let paging = [("limit", "10"), ("offset", "0")];
    let signed = vzi.send("GET", &users, &paging, None).await;
    expect(&signed, 200, 0, "paging signed");
    let auth_only = vzi.signed("GET", &users, &[], b"", fresh);
    let unsigned = format!("limit=10&offset=0&{auth_only}");
    let answer = vzi.send_raw("GET", &users, &unsigned, Vec::new()).await;
    expect(&answer, 401, 1004, "paging not signed");
    assert_eq!(emulator.stats().refusals_with(1004), 5);
}

#[tokio::test]
async fn a_request_signed_like_the_vendor_example_is_accepted() {
    // The key of SIGNATURE.md's worked example, on a path the emulator serves, with a fresh
    // expiry (the example's own expired in 2019).
    let emulator = start(EmulatorConfig {
        vzicloud_accesskey_id: "7ffG6UFo1135QXbK2gVuiJffadN1YXZC".to_string(),
        vzicloud_accesskey_secret: Secret::new("m4b4gQc0hur8okz7rsR7pLJkoH4OMLYj"),
        ..EmulatorConfig::default()
    })
    .await;
    let vzi = Vzi::with_key(
        &emulator,
        "7ffG6UFo1135QXbK2gVuiJffadN1YXZC",
        "m4b4gQc0hur8okz7rsR7pLJkoH4OMLYj",
    );
    let path = format!("{APP}/groups");
    let body = r#"{"group_id":"test_group_01","group_name":"测试分组01","remark":"无"}"#;
    let answer = vzi
        .send(
            "POST",
            &path,
            &[],
            Some(&serde_json::from_str(body).unwrap()),
        )
        .await;
    expect(&answer, 200, 0, "the vendor's key");
    assert_eq!(answer.json["group_name"], "测试分组01");
    // The example's own request, replayed: expired.
    let example = "accesskey_id=7ffG6UFo1135QXbK2gVuiJffadN1YXZC&expires=1561463558&signature=8CXL%2BbRJ%2BWaDQrwg7wWxkdEok0Y%3D";
    let replay = vzi
        .send_raw(
            "POST",
            &path,
            example,
            r#"{"name":"测试应用","remark":"无"}"#.as_bytes().to_vec(),
        )
        .await;
    expect(&replay, 401, 1002, "the example's expired signature");
}

// ---- VziCloud: faces, groups, users ----

#[tokio::test]
async fn face_updates_follow_update_and_replace() {
    let emulator = start(EmulatorConfig::default()).await;
    let vzi = Vzi::new(&emulator);
    expect(&vzi.create_group("staff").await, 200, 0, "group");
    let jpeg = photo("E1001.jpg");
    let png = photo("E1014.png");

    let update_missing = vzi
        .put_face(&face_body("staff", "E1001", &jpeg, "UPDATE"))
        .await;
    expect(
        &update_missing,
        404,
        3301,
        "UPDATE of a user that does not exist",
    );
    let mut default_action = face_body("staff", "E1001", &jpeg, "");
    default_action
        .as_object_mut()
        .unwrap()
        .remove("action_type");
    expect(
        &vzi.put_face(&default_action).await,
        404,
        3301,
        "UPDATE is the default",
    );

    let created = vzi
        .put_face(&face_body("staff", "E1001", &jpeg, "REPLACE"))
        .await;
    expect(&created, 200, 0, "REPLACE registers the user");
    let j = &created.json;
    assert_eq!(
        (
            j["app_id"].as_u64(),
            j["group_id"].as_str(),
            j["user_id"].as_str()
        ),
        (Some(2), Some("staff"), Some("E1001"))
    );
    let face_id = j["face_id"].as_str().unwrap();
    assert!(
        face_id.len() == 32 && face_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{face_id}"
    );
    assert_eq!(j["format"], "jpeg");
    assert!(j["create_time"].as_u64().unwrap() > 1_600_000_000);
    let location: FaceLocation = serde_json::from_str(j["location"].as_str().unwrap()).unwrap();
    let (w, h) = image::load_from_memory(&jpeg)
        .map(|i| (i.width(), i.height()))
        .unwrap();
    assert!(location.left + location.width <= w && location.top + location.height <= h);
    assert!(location.width >= 40, "{location:?}");

    let updated = vzi
        .put_face(&face_body("staff", "E1001", &png, "UPDATE"))
        .await;
    expect(&updated, 200, 0, "UPDATE of an existing user");
    assert_eq!(updated.json["format"], "png");
    let faces = emulator.vzicloud_faces("staff", "E1001");
    assert_eq!(faces.len(), 1, "UPDATE replaces every face");
    assert_eq!(faces[0].bytes, png);
    assert_eq!(faces[0].face_id, updated.json["face_id"].as_str().unwrap());

    let register = |action: &str| {
        let mut body = face_body("staff", "E1001", &jpeg, action);
        body["action_type"] = json!(action);
        body
    };
    let faces_url = format!("{APP}/faces");
    expect(
        &vzi.send("POST", &faces_url, &[], Some(&register("APPEND")))
            .await,
        200,
        0,
        "APPEND",
    );
    assert_eq!(emulator.vzicloud_faces("staff", "E1001").len(), 2);
    expect(
        &vzi.send("POST", &faces_url, &[], Some(&register("REPLACE")))
            .await,
        200,
        0,
        "register REPLACE",
    );
    assert_eq!(emulator.vzicloud_faces("staff", "E1001").len(), 1);
    let mut new_group = register("APPEND");
    new_group["group_id"] = json!("night_shift");
    expect(
        &vzi.send("POST", &faces_url, &[], Some(&new_group)).await,
        200,
        0,
        "register creates the group",
    );
    assert_eq!(emulator.vzicloud_groups(), ["night_shift", "staff"]);
    assert_eq!(emulator.vzicloud_users("staff"), ["E1001"]);
}

#[tokio::test]
async fn face_updates_are_refused_as_vzicloud_refuses_them() {
    let emulator = start(EmulatorConfig {
        vzicloud_groups: vec!["staff".to_string()],
        ..EmulatorConfig::default()
    })
    .await;
    let vzi = Vzi::new(&emulator);
    let jpeg = photo("E1001.jpg");
    let good = face_body("staff", "E1001", &jpeg, "REPLACE");
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let image = |bytes: &[u8]| with("image", json!(BASE64.encode(bytes)));
    let data_url = format!("data:image/jpeg;base64,{}", BASE64.encode(&jpeg));
    let over_2_mb = vec![0u8; 2 * 1024 * 1024 + 1];
    // (case, body, status, code)
    #[rustfmt::skip]
    let cases: [(&str, Value, u16, i64); 20] = [
        ("a group that does not exist",  with("group_id", json!("nobody")), 404, 3201),
        ("a user id with a hyphen",      with("user_id", json!("E-1016")), 400, 1103),
        ("a user id of 49 characters",   with("user_id", json!("u".repeat(49))), 400, 1103),
        ("a user id of 48 characters",   with("user_id", json!("u".repeat(48))), 200, 0),
        ("a group id with a space",      with("group_id", json!("my staff")), 400, 1103),
        ("a user id that is a number",   with("user_id", json!(1001)), 400, 1103),
        ("no user id",                   without("user_id"), 400, 1103),
        ("image_type URL",               with("image_type", json!("URL")), 400, 1103),
        ("no image_type",                without("image_type"), 400, 1103),
        ("no image",                     without("image"), 400, 1103),
        ("APPEND on update",             with("action_type", json!("APPEND")), 400, 1103),
        ("a data-URL prefix",            with("image", json!(data_url)), 400, 1102),
        ("not base64",                   with("image", json!("@@not base64@@")), 400, 1102),
        ("larger than 2 MB",             image(&over_2_mb), 400, 1103),
        ("wider than 1920",              image(&png(1921, 100)), 400, 1103),
        ("higher than 1080",             image(&png(100, 1081)), 400, 1103),
        ("bytes that are no image",      image(b"plain text"), 400, 1110),
        ("a jpeg header over garbage",   image(&garbage_jpeg()), 400, 1110),
        ("no face: a cat",               image(&photo("e1011.jpg")), 400, 3002),
        ("no face: grey, at 1920x1080",  image(&png(1920, 1080)), 400, 3002),
    ];
    for (case, body, status, code) in cases {
        expect(&vzi.put_face(&body).await, status, code, case);
    }
    let faces = format!("{APP}/faces");
    let query = vzi.signed("PUT", &faces, &[], b"{not json", unix_now() + 60);
    let not_json = vzi
        .send_raw("PUT", &faces, &query, b"{not json".to_vec())
        .await;
    expect(&not_json, 400, 1101, "a body that is not JSON");
    #[rustfmt::skip]
    let apps = [
        ("/v2/frs/user/apps/3/faces", 404, 3101, "another app"),
        ("/v2/frs/user/apps/two/faces", 400, 1103, "an app id that is no number"),
    ];
    for (path, status, code, case) in apps {
        expect(
            &vzi.send("PUT", path, &[], Some(&good)).await,
            status,
            code,
            case,
        );
    }
}

#[tokio::test]
async fn groups_and_users_are_created_viewed_listed_and_deleted() {
    let emulator = start(EmulatorConfig {
        face_check: false,
        ..EmulatorConfig::default()
    })
    .await;
    let vzi = Vzi::new(&emulator);
    let created = vzi
        .send(
            "POST",
            &format!("{APP}/groups"),
            &[],
            Some(&json!({"group_id": "staff", "group_name": "员工", "remark": "无"})),
        )
        .await;
    expect(&created, 200, 0, "create");
    assert_eq!(created.json["group_name"], "员工");
    expect(&vzi.create_group("staff").await, 409, 3202, "create again");
    expect(
        &vzi.create_group("bad-id").await,
        400,
        1103,
        "a bad group id",
    );
    let viewed = vzi
        .send("GET", &format!("{APP}/groups/staff"), &[], None)
        .await;
    expect(&viewed, 200, 0, "view");
    assert_eq!(viewed.json["remark"], "无");
    expect(
        &vzi.send("GET", &format!("{APP}/groups/none"), &[], None)
            .await,
        404,
        3201,
        "view a missing group",
    );

    for user in ["u1", "u2", "u3"] {
        expect(
            &vzi.put_face(&face_body("staff", user, &photo("E1001.jpg"), "REPLACE"))
                .await,
            200,
            0,
            user,
        );
    }
    let users = format!("{APP}/groups/staff/users");
    let all = vzi.send("GET", &users, &[], None).await;
    expect(&all, 200, 0, "list");
    assert_eq!(all.json["total"], 3);
    assert_eq!(all.json["results"].as_array().unwrap().len(), 3);
    assert!(all.json.get("limit").is_none() && all.json.get("offset").is_none());
    assert_eq!(all.json["results"][0]["user_name"], "张伟");

    let page = vzi
        .send("GET", &users, &[("offset", "1"), ("limit", "1")], None)
        .await;
    expect(&page, 200, 0, "a page");
    assert_eq!(
        (
            page.json["total"].as_u64(),
            page.json["limit"].as_u64(),
            page.json["offset"].as_u64()
        ),
        (Some(3), Some(1), Some(1))
    );
    let ids: Vec<&str> = page.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["u2"]);
    let refused: [(&[(&str, &str)], i64); 4] = [
        (&[("offset", "1")], 1103),
        (&[("limit", "-1")], 1103),
        (&[("limit", "ten")], 1103),
        (&[("where", "W10=")], 1107),
    ];
    for (params, code) in refused {
        expect(
            &vzi.send("GET", &users, params, None).await,
            400,
            code,
            &format!("{params:?}"),
        );
    }
    expect(
        &vzi.send("GET", &format!("{APP}/groups/none/users"), &[], None)
            .await,
        404,
        3201,
        "list a missing group",
    );

    let u1 = format!("{users}/u1");
    let viewed = vzi.send("GET", &u1, &[], None).await;
    expect(&viewed, 200, 0, "view a user");
    assert_eq!(viewed.json["user_id"], "u1");
    let deleted = vzi.send("DELETE", &u1, &[], None).await;
    expect(&deleted, 200, 0, "delete a user");
    assert!(deleted.bytes.is_empty());
    expect(
        &vzi.send("GET", &u1, &[], None).await,
        404,
        3301,
        "view a deleted user",
    );
    expect(
        &vzi.send("DELETE", &u1, &[], None).await,
        404,
        3301,
        "delete again",
    );
    assert_eq!(emulator.vzicloud_users("staff"), ["u2", "u3"]);

    let u2_faces = format!("{users}/u2/faces");
    let faces = vzi.send("GET", &u2_faces, &[], None).await;
    expect(&faces, 200, 0, "list faces");
    assert_eq!(faces.json["total"], 1);
    let face_id = faces.json["results"][0]["face_id"]
        .as_str()
        .unwrap()
        .to_string();
    let face = format!("{u2_faces}/{face_id}");
    expect(
        &vzi.send(
            "DELETE",
            &format!("{u2_faces}/nope"),
            &[],
            Some(&json!({"action_type": "USER"})),
        )
        .await,
        404,
        3401,
        "a missing face",
    );
    expect(
        &vzi.send(
            "DELETE",
            &face,
            &[],
            Some(&json!({"action_type": "EVERYTHING"})),
        )
        .await,
        400,
        1103,
        "a bad action",
    );
    expect(
        &vzi.send("DELETE", &face, &[], Some(&json!({"action_type": "USER"})))
            .await,
        200,
        0,
        "delete the last face",
    );
    assert_eq!(
        emulator.vzicloud_users("staff"),
        ["u3"],
        "USER removes a user left without faces"
    );
}

#[tokio::test]
async fn vzicloud_limits_answer_1016_and_1017() {
    let qps = start(EmulatorConfig {
        vzicloud_qps: Some(1),
        rate_window: Duration::from_secs(3600),
        ..EmulatorConfig::default()
    })
    .await;
    let vzi = Vzi::new(&qps);
    expect(&vzi.create_group("a").await, 200, 0, "first");
    expect(
        &vzi.create_group("b").await,
        429,
        1016,
        "second within the window",
    );

    let quota = start(EmulatorConfig {
        quota: Some(2),
        ..EmulatorConfig::default()
    })
    .await;
    let vzi = Vzi::new(&quota);
    expect(
        &vzi.send_raw("POST", &format!("{APP}/groups"), "", Vec::new())
            .await,
        400,
        1001,
        "unsigned: no quota used",
    );
    expect(&vzi.create_group("a").await, 200, 0, "first");
    expect(
        &vzi.create_group("a").await,
        409,
        3202,
        "second (refused, but served)",
    );
    expect(
        &vzi.create_group("c").await,
        403,
        1017,
        "third: quota used up",
    );
    assert_eq!(quota.stats().refusals_of("vzicloud.group_create", 1017), 1);
}

#[tokio::test]
async fn paths_no_cloud_serves_are_refused_in_each_clouds_way() {
    let emulator = start(EmulatorConfig::default()).await;
    let http = client();
    let base = emulator.base_url();
    let get = |path: &str| {
        let request = http.get(format!("{base}{path}"));
        async move { Answer::of(request.send().await.unwrap()).await }
    };
    expect(
        &get("/v2/frs/user/apps/2/nothing").await,
        404,
        1000,
        "an unknown VziCloud path",
    );
    expect(
        &get("/v2/frs/user/apps/2/faces").await,
        404,
        1000,
        "a VziCloud path with another method",
    );
    let feishu = get("/open-apis/acs/v1/nothing").await;
    assert_eq!(feishu.status, 404);
    assert!(feishu.header("x-tt-logid").is_some());
}

#[tokio::test]
async fn paths_that_encode_an_unreserved_character_are_refused_before_any_cloud() {
    let emulator = start(EmulatorConfig::default()).await;
    let http = client();
    let base = emulator.base_url();
    let refused = [
        (
            "GET",
            "/open-apis/acs/v1/users/ou%5F7dab8a3d/face",
            "%5F",
            '_',
        ),
        (
            "PUT",
            "/open-apis/acs/v1/users/ou%5f7dab8a3d/face",
            "%5f",
            '_',
        ),
        ("GET", "/open-apis/acs/v1/users/a%2Eb", "%2E", '.'),
        ("GET", "/open-apis/acs/v1/users/a%7Eb", "%7E", '~'),
        ("GET", "/open-apis/acs/v1/users/a%2Db", "%2D", '-'),
        (
            "GET",
            "/v2/frs/user/apps/2/groups/st%61ff/users",
            "%61",
            'a',
        ),
        (
            "DELETE",
            "/v2/frs/user/apps/2/groups/staff/users/P%5F1",
            "%5F",
            '_',
        ),
    ];
    for (method, path, escape, c) in refused {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let answer = Answer::of(
            http.request(method, format!("{base}{path}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let body = String::from_utf8_lossy(&answer.bytes).to_string();
        assert_eq!(answer.status, 400, "{path}: {body}");
        for part in [
            "emulator",
            "encodes an unreserved character",
            &format!("`{escape}` is `{c}`"),
        ] {
            assert!(body.contains(part), "{path}: `{body}` should say `{part}`");
        }
    }
    // Encoded reserved and non-ASCII characters, and unreserved ones as they are, pass on to
    // the cloud (which asks for a token).
    for path in [
        "/open-apis/acs/v1/users/ou_7dab8a3d/face",
        "/open-apis/acs/v1/users/a.b~c-d%20e%2Ff%E5%BC%A0%25",
    ] {
        let answer = Answer::of(http.get(format!("{base}{path}")).send().await.unwrap()).await;
        expect(&answer, 400, 99991661, path);
    }
    let stats = emulator.stats();
    assert_eq!(stats.requests_of("feishu.face_download"), 1);
    assert_eq!(stats.requests_of("feishu.user_get"), 1);
}

// ---- knobs ----

#[tokio::test]
async fn server_errors_and_dropped_connections_follow_the_knobs() {
    let failing = start(EmulatorConfig {
        error_rate: 1.0,
        ..EmulatorConfig::default()
    })
    .await;
    let answer = Feishu::new(&failing)
        .token_answer(json!({"app_id": "cli_demo", "app_secret": "demo-feishu-secret"}))
        .await;
    assert_eq!(answer.status, 500);
    expect(
        &Vzi::new(&failing).create_group("staff").await,
        503,
        1108,
        "VziCloud",
    );
    // A large body is read before the early answer, so the client reads the answer rather
    // than a reset connection.
    let large = Feishu::new(&failing)
        .upload(
            "t-any",
            &face_path("E1001", "?user_id_type=user_id"),
            form(&vec![7u8; 8 * 1024 * 1024], "jpg", "a.jpg"),
        )
        .await;
    assert_eq!(large.status, 500);
    let stats = failing.stats();
    assert_eq!(stats.faults.server_errors, 3);
    assert!(failing.vzicloud_groups().is_empty(), "nothing is done");

    let dropping = start(EmulatorConfig {
        drop_rate: 1.0,
        ..EmulatorConfig::default()
    })
    .await;
    let url = format!(
        "{}/open-apis/auth/v3/tenant_access_token/internal",
        dropping.base_url()
    );
    let sent = client().post(url).json(&json!({})).send().await;
    let error = sent.expect_err("the connection closes without an answer");
    assert!(!error.is_timeout(), "{error}");
    assert_eq!(dropping.stats().faults.dropped, 1);
    assert_eq!(dropping.stats().requests_of("feishu.token"), 1);
}

#[tokio::test]
async fn faults_repeat_under_the_same_seed() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let emulator = start(EmulatorConfig {
            error_rate: 0.5,
            seed,
            ..EmulatorConfig::default()
        })
        .await;
        let feishu = Feishu::new(&emulator);
        let mut out = Vec::new();
        for _ in 0..24 {
            let answer = feishu
                .token_answer(json!({"app_id": "cli_demo", "app_secret": "demo-feishu-secret"}))
                .await;
            out.push(answer.status);
        }
        emulator.shutdown().await;
        out
    }
    let first = statuses(42).await;
    assert_eq!(first, statuses(42).await);
    assert!(first.contains(&200) && first.contains(&500), "{first:?}");
    assert_ne!(first, statuses(43).await);
}

#[tokio::test(start_paused = true)]
async fn latency_delays_every_answer() {
    let emulator = start(EmulatorConfig {
        latency: Duration::from_secs(10),
        ..EmulatorConfig::default()
    })
    .await;
    let started = tokio::time::Instant::now();
    Feishu::new(&emulator).token().await;
    assert!(started.elapsed() >= Duration::from_secs(10));
    assert_eq!(emulator.stats().faults.delayed, 1);
}

#[tokio::test]
async fn knobs_out_of_range_are_refused_at_start() {
    let cases = [
        EmulatorConfig {
            error_rate: 1.5,
            ..EmulatorConfig::default()
        },
        EmulatorConfig {
            error_rate: 0.6,
            drop_rate: 0.6,
            ..EmulatorConfig::default()
        },
        EmulatorConfig {
            feishu_rate_limit: Some(0),
            ..EmulatorConfig::default()
        },
        EmulatorConfig {
            token_lifetime: Duration::ZERO,
            ..EmulatorConfig::default()
        },
    ];
    for config in cases {
        let started = Emulator::start(config.clone(), "127.0.0.1:0".parse().unwrap()).await;
        let error = started
            .err()
            .unwrap_or_else(|| panic!("{config:?} started"));
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    }
}

// ---- inspection ----

#[tokio::test]
async fn the_stats_path_reports_requests_refusals_and_faces() {
    let emulator = start(EmulatorConfig::default()).await;
    let feishu = Feishu::new(&emulator);
    let token = feishu.token().await;
    feishu
        .upload(
            &token,
            &face_path("E1001", "?user_id_type=user_id"),
            form(&photo("E1001.jpg"), "jpg", "a.jpg"),
        )
        .await;
    feishu
        .get(&token, &face_path("E1002", "?user_id_type=user_id"))
        .await;
    let vzi = Vzi::new(&emulator);
    vzi.create_group("staff").await;
    vzi.put_face(&face_body("staff", "E1001", &photo("E1001.jpg"), "REPLACE"))
        .await;

    let url = format!("{}{}", emulator.base_url(), facesync::emulator::STATS_PATH);
    let stats: Value = client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests"]["feishu.token"], 1);
    assert_eq!(stats["requests"]["feishu.face_upload"], 1);
    assert_eq!(stats["refusals"]["feishu.face_download"]["1490107"], 1);
    assert_eq!(stats["tokens_issued"], 1);
    assert_eq!(stats["feishu_faces"]["E1001"], photo("E1001.jpg").len());
    let face_ids = stats["vzicloud"]["staff"]["E1001"].as_array().unwrap();
    assert_eq!(face_ids.len(), 1);
    assert_eq!(
        stats["requests"].as_object().unwrap().len(),
        5,
        "the stats path is not counted"
    );
    assert_eq!(
        serde_json::to_value(emulator.stats()).unwrap(),
        stats,
        "the library API and the path agree"
    );
}

// ---- the official Python SDK ----

/// Needs python3 with lark-oapi (`.ci/test` installs it): without them the test fails, unless the
/// developer opted out with `FACESYNC_SKIP_TOOLS=lark-oapi` (never in CI).
#[tokio::test]
#[cfg_attr(skip_lark_oapi, ignore = "FACESYNC_SKIP_TOOLS names lark-oapi")]
async fn the_official_python_sdk_works_against_the_emulator() {
    const HOW: &str = "`python3 -m pip install lark-oapi` (or `bash .ci/test`), \
                       or skip it with FACESYNC_SKIP_TOOLS=lark-oapi cargo test";
    if let Err(e) = Command::new("python3").arg("--version").output() {
        panic!("this test needs python3 ({e}) with the official Feishu SDK: {HOW}");
    }
    let emulator = start(EmulatorConfig {
        users: users(&["E1001", "E1002"]),
        ..EmulatorConfig::default()
    })
    .await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/feishu_sdk.py");
    let photo_path = fixtures().join("demo/photos/E1001.jpg");
    let base = emulator.base_url();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(base)
            .args(["cli_demo", "demo-feishu-secret"])
            .arg(photo_path)
            .args(["E1001", "E1015"])
            // Loopback never goes through a proxy a CI machine may name.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_ne!(
        output.status.code(),
        Some(3),
        "this test needs the official Feishu SDK: {HOW}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let steps: std::collections::HashMap<String, Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["step"].as_str().unwrap().to_string(), v)
        })
        .collect();
    assert_eq!(steps["upload"]["code"], 0, "{stderr}");
    assert_eq!(steps["download"]["code"], 0);
    assert_eq!(steps["download"]["same_bytes"], true);
    assert_eq!(steps["download"]["file_name"], "E1001.jpg");
    assert_eq!(steps["download_cropped"]["jpeg"], true);
    assert_eq!(
        steps["list"]["users"],
        json!({"E1001": true, "E1002": false})
    );
    assert_eq!(steps["upload_unknown"]["code"], 1490101);
    let stats = emulator.stats();
    assert_eq!(
        stats.tokens_issued, 1,
        "the SDK fetched one token and reused it"
    );
    assert_eq!(emulator.feishu_face("E1001"), Some(photo("E1001.jpg")));
}

// ---- facesync emulate ----

/// A spawned `facesync emulate`, killed when dropped.
struct Server {
    child: Child,
    lines: Vec<String>,
}

impl Server {
    /// Spawns it and reads its banner, up to the Ctrl-C line.
    fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_facesync"))
            .arg("emulate")
            .args(args)
            .envs(envs.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let done = line.contains("Ctrl-C");
            lines.push(line);
            if done {
                break;
            }
        }
        Server { child, lines }
    }

    fn url(&self) -> String {
        let first = self.lines.first().expect("a banner");
        first.split_whitespace().last().unwrap().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn emulate_help_documents_every_knob() {
    let out = Command::new(env!("CARGO_BIN_EXE_facesync"))
        .args(["emulate", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let (options, examples) = help.split_once("Examples:").expect("an Examples section");
    let knobs = [
        "--listen",
        "--config",
        "--users ",
        "--users-file",
        "--users-roster",
        "--users-column",
        "--absent-users",
        "--groups",
        "--token-lifetime",
        "--token-refresh-window",
        "--feishu-rate-limit",
        "--vzicloud-qps",
        "--rate-window",
        "--latency",
        "--error-rate",
        "--drop-rate",
        "--quota",
        "--seed",
        "--no-face-check",
    ];
    for knob in knobs {
        assert!(options.contains(knob), "no option {knob}");
        assert!(examples.contains(knob), "no example of {knob}");
    }
    for mentioned in ["/__emulator/stats", "99991400", "1016", "1017"] {
        assert!(help.contains(mentioned), "no mention of {mentioned}");
    }
}

#[tokio::test]
async fn emulate_without_a_config_accepts_the_demo_credentials() {
    let server = tokio::task::spawn_blocking(|| {
        Server::spawn(&["--listen", "127.0.0.1:0", "--users", "E1001"], &[])
    })
    .await
    .unwrap();
    let banner = server.lines.concat();
    assert!(
        banner.contains("demo-feishu-secret") && banner.contains("demo-vzicloud-secret"),
        "{banner}"
    );
    let url = server.url();
    let token = Answer::of(
        client()
            .post(format!(
                "{url}/open-apis/auth/v3/tenant_access_token/internal"
            ))
            .json(&json!({"app_id": "cli_demo", "app_secret": "demo-feishu-secret"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    expect(&token, 200, 0, "the demo credentials");
    let stats: Value = client()
        .get(format!("{url}/__emulator/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["tokens_issued"], 1);
}

#[tokio::test]
async fn emulate_with_a_config_accepts_exactly_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roster.csv"), "employee_id\nE1001\n").unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        r#"
[roster]
path = "roster.csv"
[targets.feishu]
app_id = "cli_real"
app_secret_env = "FACESYNC_EMULATE_TEST_FEISHU"
[targets.vzicloud]
app_id = 7
group_id = "staff"
accesskey_id = "real_key"
accesskey_secret_env = "FACESYNC_EMULATE_TEST_VZICLOUD"
"#,
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let server = tokio::task::spawn_blocking(move || {
        Server::spawn(
            &["--listen", "127.0.0.1:0", "--config", &config_arg],
            &[
                ("FACESYNC_EMULATE_TEST_FEISHU", "real-feishu-secret"),
                ("FACESYNC_EMULATE_TEST_VZICLOUD", "real-vzicloud-secret"),
            ],
        )
    })
    .await
    .unwrap();
    let banner = server.lines.concat();
    assert!(
        !banner.contains("real-feishu-secret") && !banner.contains("real-vzicloud-secret"),
        "{banner}"
    );
    let url = server.url();
    let token = |app_id: &str, secret: &str| {
        let request = client()
            .post(format!(
                "{url}/open-apis/auth/v3/tenant_access_token/internal"
            ))
            .json(&json!({"app_id": app_id, "app_secret": secret}));
        async move { Answer::of(request.send().await.unwrap()).await }
    };
    expect(
        &token("cli_real", "real-feishu-secret").await,
        200,
        0,
        "the config's app",
    );
    expect(
        &token("cli_demo", "demo-feishu-secret").await,
        200,
        10014,
        "the demo app",
    );

    let groups = |key: &str, secret: &str, app: u64| {
        let path = format!("/v2/frs/user/apps/{app}/groups");
        let body = br#"{"group_id":"staff"}"#.to_vec();
        let query = sign::Signing {
            accesskey_id: key,
            secret,
            expires: unix_now() + 60,
        }
        .query("POST", &path, &[], &body);
        let request = client()
            .post(format!("{url}{path}?{query}"))
            .header("content-type", "application/json")
            .body(body);
        async move { Answer::of(request.send().await.unwrap()).await }
    };
    expect(
        &groups("real_key", "real-vzicloud-secret", 7).await,
        200,
        0,
        "the config's key",
    );
    expect(
        &groups("demo_key", "demo-vzicloud-secret", 7).await,
        401,
        1005,
        "the demo key",
    );
    expect(
        &groups("real_key", "real-vzicloud-secret", 2).await,
        404,
        3101,
        "the demo app id",
    );
}
