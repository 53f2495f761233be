//! The emulated Feishu over loopback: tokens (issue, reuse, expiry on a paused clock), Bearer
//! checks, face uploads in every official SDK's shape and every documented refusal, downloads
//! and crops, user lists, log ids, and the per-API rate limit.
//! Each test starts its own emulator on 127.0.0.1:0.

mod common;

use std::time::Duration;

use common::*;
use facesync_emulator::{EmulatorConfig, UserIdType, feishu_user_id_as};
use reqwest::multipart::{Form, Part};
use serde_json::json;

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
