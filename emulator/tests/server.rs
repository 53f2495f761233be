//! What both clouds share over loopback: paths no cloud serves, the refusal of over-encoded
//! paths, the fault knobs (server errors, dropped connections, seeds, latency on a paused
//! clock, knobs out of range) and the inspection path `/__emulator/stats`.
//! Each test starts its own emulator on 127.0.0.1:0.

mod common;

use std::time::Duration;

use common::*;
use facesync_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};

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

    let url = format!("{}{}", emulator.base_url(), facesync_emulator::STATS_PATH);
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
