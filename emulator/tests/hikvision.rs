//! The emulated Hikvision terminals over loopback, through the Digest client of
//! `common` (RFC 7616, MD5 and SHA-256): challenges, logins, lockout, nonce expiry and uses,
//! persons, searches, faces with real photos, the photo checks, busy, late and lost writes,
//! capacity, two terminals, stats. Each test starts its own emulator on 127.0.0.1:0.

mod common;

use std::time::Duration;

use common::*;
use facesync_emulator::{
    DigestAlgorithm, Emulator, EmulatorConfig, HikvisionConfig, Secret, StaleReply,
};
use serde_json::{Value, json};

const INFO: &str = "/ISAPI/System/deviceInfo";

fn config(hikvision: HikvisionConfig) -> EmulatorConfig {
    EmulatorConfig {
        hikvision,
        ..EmulatorConfig::default()
    }
}

/// A terminal with a long nonce lifetime, so real-clock tests never meet a stale nonce.
fn patient() -> HikvisionConfig {
    HikvisionConfig {
        nonce_lifetime: Duration::from_secs(600),
        nonce_max_uses: 10_000,
        ..HikvisionConfig::default()
    }
}

fn face_photo() -> Vec<u8> {
    photo("E1001.jpg")
}

async fn add_person(hik: &Hik, id: &str) {
    let answer = hik
        .json("POST", HIK_RECORD, hik_person(id, "Ana Pérez"))
        .await;
    expect_hik(&answer, 200, "ok", "", &format!("add {id}"));
}

async fn add_face(hik: &Hik, id: &str) -> Answer {
    hik.send(
        "POST",
        HIK_FACE_RECORD,
        &hik_face_form(id, &face_photo(), "img", false, false),
    )
    .await
}

fn search_body(id: &str, position: u64, max: u64) -> Value {
    json!({"UserInfoSearchCond": {"searchID": id, "searchResultPosition": position, "maxResults": max}})
}

fn face_search_body(position: u64, max: u64) -> Value {
    json!({"searchResultPosition": position, "maxResults": max, "faceLibType": "blackFD", "FDID": "1"})
}

// ---- authentication ----

#[tokio::test]
async fn a_request_without_credentials_gets_the_challenge() {
    let emulator = start(EmulatorConfig::default()).await;
    let hik = Hik::new(&emulator, "door1");
    let answer = hik.challenge().await;
    let value = answer.header("www-authenticate").unwrap();
    assert!(
        value.starts_with("Digest realm=\"DS-K1T341AM(door1)\", qop=\"auth\", nonce=\""),
        "{value}"
    );
    assert!(value.ends_with("algorithm=MD5, stale=\"FALSE\""), "{value}");
    let body = String::from_utf8_lossy(&answer.bytes);
    assert!(
        body.contains("<retryLoginTime>5</retryLoginTime>"),
        "{body}"
    );
    assert_eq!(emulator.hikvision_login_failures("door1"), 0);
    let stats = emulator.stats();
    assert_eq!(stats.requests_of("hikvision.challenge"), 1);
    assert_eq!(stats.refusals_of("hikvision.challenge", 401), 1);

    // Basic is answered with a challenge, and is no failed login.
    let basic = hik
        .raw(
            "GET",
            INFO,
            Some("Basic YWRtaW46ZGVtby1oaWt2aXNpb24tcGFzc3dvcmQ="),
            &HikBody::None,
        )
        .await;
    assert_eq!(basic.status, 401);
    assert!(
        basic
            .header("www-authenticate")
            .unwrap()
            .starts_with("Digest ")
    );
    assert_eq!(emulator.hikvision_login_failures("door1"), 0);

    // A terminal not configured is not there; nor is a path beside the prefix.
    let other = Hik::new(&emulator, "door9");
    assert_eq!(
        other.raw("GET", INFO, None, &HikBody::None).await.status,
        404
    );
}

#[tokio::test]
async fn digest_logins_with_md5_sha256_and_sess() {
    for (algorithm, name) in [
        (DigestAlgorithm::Md5, "MD5"),
        (DigestAlgorithm::Sha256, "SHA-256"),
    ] {
        let emulator = start(config(HikvisionConfig {
            algorithm,
            ..HikvisionConfig::default()
        }))
        .await;
        for sess in [false, true] {
            let mut hik = Hik::new(&emulator, "door1");
            hik.sess = sess;
            hik.challenge().await;
            assert_eq!(
                hik.challenge.lock().unwrap().as_ref().unwrap().algorithm,
                name
            );
            let answer = hik.get(INFO).await;
            assert_eq!(answer.status, 200, "{name} sess={sess}");
            let body = String::from_utf8_lossy(&answer.bytes);
            for want in [
                "<deviceName>door1</deviceName>",
                "<model>DS-K1T341AM</model>",
                "<firmwareVersion>V3.16.1</firmwareVersion>",
                "<deviceType>ACS</deviceType>",
                "<serialNumber>",
            ] {
                assert!(body.contains(want), "{want}: {body}");
            }
        }
        assert_eq!(emulator.stats().requests_of("hikvision.device_info"), 2);
    }
}

#[tokio::test]
async fn a_signature_over_another_uri_or_algorithm_is_a_failed_login() {
    let emulator = start(EmulatorConfig::default()).await;
    let hik = Hik::new(&emulator, "door1");
    hik.challenge().await;
    // Signed for the path without its query.
    let auth = hik.authorization("GET", "/ISAPI/AccessControl/UserInfo/Count");
    let path = "/ISAPI/AccessControl/UserInfo/Count?format=json";
    let answer = hik.raw("GET", path, Some(&auth), &HikBody::None).await;
    assert_eq!(answer.status, 401);
    assert_eq!(emulator.hikvision_login_failures("door1"), 1);
    // SHA-256 where the challenge said MD5.
    let mut challenge = hik.challenge.lock().unwrap().clone().unwrap();
    challenge.algorithm = "SHA-256".into();
    challenge.nc = 9;
    let uri = format!("/hikvision/door1{INFO}");
    let auth = digest_authorization(
        &challenge,
        "admin",
        "demo-hikvision-password",
        "GET",
        &uri,
        false,
    );
    assert_eq!(
        hik.raw("GET", INFO, Some(&auth), &HikBody::None)
            .await
            .status,
        401
    );
    assert_eq!(emulator.hikvision_login_failures("door1"), 2);
    // A good login resets the count.
    assert_eq!(hik.get(INFO).await.status, 200);
    assert_eq!(emulator.hikvision_login_failures("door1"), 0);
}

#[tokio::test(start_paused = true)]
async fn wrong_passwords_lock_the_account_until_lockout_for_has_passed() {
    let emulator = start(config(HikvisionConfig {
        lockout_after: 3,
        lockout_for: Duration::from_secs(600),
        nonce_lifetime: Duration::from_secs(3600),
        ..HikvisionConfig::default()
    }))
    .await;
    let wrong = Hik::with_password(&emulator, "door1", "guess");
    let right = Hik::new(&emulator, "door1");
    for (n, left) in [(1, 2), (2, 1)] {
        let answer = wrong.get(INFO).await;
        assert_eq!(answer.status, 401);
        let body = String::from_utf8_lossy(&answer.bytes);
        assert!(body.contains("<lockStatus>unlock</lockStatus>"), "{body}");
        assert!(
            body.contains(&format!("<retryLoginTime>{left}</retryLoginTime>")),
            "{body}"
        );
        assert!(answer.header("www-authenticate").is_some());
        assert_eq!(emulator.hikvision_login_failures("door1"), n);
    }
    let locking = wrong.get(INFO).await;
    let body = String::from_utf8_lossy(&locking.bytes);
    assert!(body.contains("<lockStatus>lock</lockStatus>"), "{body}");
    assert!(body.contains("<unlockTime>600</unlockTime>"), "{body}");

    // Locked: even the right password is refused, and the time left counts down.
    tokio::time::advance(Duration::from_secs(100)).await;
    let locked = right.get(INFO).await;
    assert_eq!(locked.status, 401);
    let body = String::from_utf8_lossy(&locked.bytes);
    assert!(body.contains("<lockStatus>lock</lockStatus>"), "{body}");
    assert!(body.contains("<unlockTime>500</unlockTime>"), "{body}");
    // The other terminal has its own account state.
    assert_eq!(Hik::new(&emulator, "door2").get(INFO).await.status, 200);

    tokio::time::advance(Duration::from_secs(500)).await;
    assert_eq!(right.get(INFO).await.status, 200);
    assert_eq!(emulator.hikvision_login_failures("door1"), 0);
    let stats = emulator.stats();
    assert_eq!(stats.requests_of("hikvision.unauthorized"), 4);
    assert_eq!(stats.refusals_of("hikvision.unauthorized", 401), 4);
}

#[tokio::test(start_paused = true)]
async fn an_expired_nonce_gets_the_stale_reply_the_knob_names() {
    for reply in [
        StaleReply::Stale,
        StaleReply::Bare,
        StaleReply::CountsAsFailure,
    ] {
        let emulator = start(config(HikvisionConfig {
            stale_reply: reply,
            ..HikvisionConfig::default()
        }))
        .await;
        let hik = Hik::new(&emulator, "door1");
        hik.challenge().await;
        assert_eq!(hik.get(INFO).await.status, 200);
        tokio::time::advance(Duration::from_secs(3)).await;
        let auth = hik.authorization("GET", INFO);
        let answer = hik.raw("GET", INFO, Some(&auth), &HikBody::None).await;
        assert_eq!(answer.status, 401, "{reply:?}");
        let challenge = Challenge::parse(answer.header("www-authenticate").unwrap());
        let failures = emulator.hikvision_login_failures("door1");
        match reply {
            StaleReply::Stale => assert_eq!((challenge.stale.as_str(), failures), ("true", 0)),
            StaleReply::Bare => assert_eq!((challenge.stale.as_str(), failures), ("FALSE", 0)),
            StaleReply::CountsAsFailure => {
                assert_eq!((challenge.stale.as_str(), failures), ("FALSE", 1));
            }
        }
        // The new challenge's nonce works.
        *hik.challenge.lock().unwrap() = Some(challenge);
        assert_eq!(hik.get(INFO).await.status, 200, "{reply:?}");
    }
}

#[tokio::test]
async fn a_nonce_serves_nonce_max_uses_requests() {
    let emulator = start(config(HikvisionConfig {
        nonce_max_uses: 3,
        nonce_lifetime: Duration::from_secs(600),
        ..HikvisionConfig::default()
    }))
    .await;
    let hik = Hik::new(&emulator, "door1");
    hik.challenge().await;
    for _ in 0..3 {
        let auth = hik.authorization("GET", INFO);
        assert_eq!(
            hik.raw("GET", INFO, Some(&auth), &HikBody::None)
                .await
                .status,
            200
        );
    }
    let auth = hik.authorization("GET", INFO);
    let used_up = hik.raw("GET", INFO, Some(&auth), &HikBody::None).await;
    assert_eq!(used_up.status, 401);
    assert!(
        used_up
            .header("www-authenticate")
            .unwrap()
            .contains("stale=\"true\"")
    );
    assert_eq!(emulator.hikvision_login_failures("door1"), 0);
    // The same nc twice is a replay: stale too.
    hik.challenge().await;
    let auth = hik.authorization("GET", INFO);
    assert_eq!(
        hik.raw("GET", INFO, Some(&auth), &HikBody::None)
            .await
            .status,
        200
    );
    assert_eq!(
        hik.raw("GET", INFO, Some(&auth), &HikBody::None)
            .await
            .status,
        401
    );
}

// ---- capabilities and persons ----

#[tokio::test]
async fn capabilities_and_counts_follow_the_knobs() {
    let emulator = start(config(HikvisionConfig {
        max_persons: 10,
        max_faces: 5,
        setup: false,
        ..patient()
    }))
    .await;
    let hik = Hik::new(&emulator, "door1");
    let caps = hik.get("/ISAPI/AccessControl/capabilities").await;
    let body = String::from_utf8_lossy(&caps.bytes);
    assert!(
        body.contains("<isSupportUserInfo>true</isSupportUserInfo>"),
        "{body}"
    );
    assert!(
        body.contains("<isSupportFDLib>true</isSupportFDLib>"),
        "{body}"
    );
    let users = hik
        .get("/ISAPI/AccessControl/UserInfo/capabilities?format=json")
        .await;
    let info = &users.json["UserInfo"];
    assert_eq!(info["supportFunction"]["@opt"], "post,delete,put,get");
    assert_eq!(info["maxRecordNum"], 10);
    assert_eq!(info["employeeNo"], json!({"@min": 1, "@max": 32}));
    assert_eq!(info["name"]["@max"], 128);
    assert_eq!(info["UserInfoSearchCond"]["maxResults"]["@max"], 30);
    let faces = hik
        .get("/ISAPI/Intelligent/FDLib/capabilities?format=json")
        .await;
    assert_eq!(faces.json["FDRecordDataMaxNum"], 5);
    assert_eq!(
        faces.json["supportFDFunction"]["@opt"],
        "post,delete,put,get"
    );
    assert_eq!(faces.json["facePicFormat"], json!(["jpg"]));
    assert_eq!(faces.json["FDNameMaxLen"], 48);
    // Without ?format=json.
    let answer = hik.get("/ISAPI/AccessControl/UserInfo/capabilities").await;
    expect_hik(&answer, 400, "badParameters", "format", "no format");
    // SetUp is not offered.
    let answer = hik.json("PUT", HIK_SETUP, hik_person("1", "A")).await;
    expect_hik(&answer, 200, "notSupport", "setUp", "setUp off");
    assert_eq!(answer.json["statusCode"], 4);
    let answer = hik
        .send(
            "PUT",
            HIK_FACE_SETUP,
            &hik_face_form("1", &face_photo(), "img", false, false),
        )
        .await;
    expect_hik(&answer, 200, "notSupport", "setUp", "FDSetUp off");

    add_person(&hik, "1001").await;
    add_person(&hik, "1002").await;
    expect_hik(&add_face(&hik, "1001").await, 200, "ok", "", "face");
    let count = hik
        .get("/ISAPI/AccessControl/UserInfo/Count?format=json")
        .await;
    assert_eq!(count.json["UserInfoCount"]["userNumber"], 2);
    assert_eq!(count.json["UserInfoCount"]["bindFaceUserNumber"], 1);
    let count = hik.get("/ISAPI/Intelligent/FDLib/Count?format=json").await;
    assert_eq!(
        count.json["FDRecordDataInfo"],
        json!([{"FDID": "1", "faceLibType": "blackFD", "name": "", "recordDataNumber": 1}])
    );
    // An unknown ISAPI path.
    let answer = hik.get("/ISAPI/Nothing/Here?format=json").await;
    expect_hik(&answer, 404, "notSupport", "notSupport", "unknown path");
}

#[tokio::test]
async fn persons_are_recorded_modified_set_up_and_deleted() {
    let emulator = start(config(patient())).await;
    let hik = Hik::new(&emulator, "door1");
    add_person(&hik, "1001").await;
    assert_eq!(emulator.hikvision_persons("door1"), ["1001"]);
    let stored = emulator.hikvision_person("door1", "1001").unwrap();
    assert_eq!(stored["name"], "Ana Pérez");

    let again = hik
        .json("POST", HIK_RECORD, hik_person("1001", "Ana"))
        .await;
    expect_hik(
        &again,
        400,
        "employeeNoAlreadyExist",
        "checkUser",
        "record twice",
    );
    assert_eq!(again.json["errorCode"], 1610637344);
    assert_eq!(again.json["statusCode"], 6);
    assert_eq!(again.json["requestURL"], HIK_RECORD);

    let modify = json!({"UserInfo": {"employeeNo": "1001", "name": "Ana María"}});
    expect_hik(
        &hik.json("PUT", HIK_MODIFY, modify.clone()).await,
        200,
        "ok",
        "",
        "modify",
    );
    let stored = emulator.hikvision_person("door1", "1001").unwrap();
    assert_eq!(
        (stored["name"].as_str(), stored["userType"].as_str()),
        (Some("Ana María"), Some("normal"))
    );
    let post = hik.json("POST", HIK_MODIFY, modify).await;
    expect_hik(&post, 400, "methodNotAllowed", "method", "modify by POST");
    let missing = json!({"UserInfo": {"employeeNo": "2002", "name": "B"}});
    let answer = hik.json("PUT", HIK_MODIFY, missing).await;
    expect_hik(
        &answer,
        400,
        "employeeNoNotExist",
        "employeeNo",
        "modify missing",
    );
    assert_eq!(answer.json["errorCode"], 1610637343);

    expect_hik(
        &hik.json("PUT", HIK_SETUP, hik_person("2002", "Bo")).await,
        200,
        "ok",
        "",
        "setUp new",
    );
    expect_hik(
        &hik.json("PUT", HIK_SETUP, hik_person("2002", "Bob")).await,
        200,
        "ok",
        "",
        "setUp again",
    );
    assert_eq!(
        emulator.hikvision_person("door1", "2002").unwrap()["name"],
        "Bob"
    );

    // Refusals, each naming its field.
    let mut no_plan = hik_person("3003", "C");
    no_plan["UserInfo"]
        .as_object_mut()
        .unwrap()
        .remove("RightPlan");
    let mut visitor_of_2040 = hik_person("3003", "C");
    visitor_of_2040["UserInfo"]["Valid"]["endTime"] = json!("2040-01-01T00:00:00");
    let mut admin = hik_person("3003", "C");
    admin["UserInfo"]["userType"] = json!("admin");
    let cases: [(&str, Value, u16, &str, &str); 8] = [
        (
            "no UserInfo",
            json!({"User": {}}),
            400,
            "MessageParametersLack",
            "UserInfo",
        ),
        (
            "no employeeNo",
            json!({"UserInfo": {"name": "x", "RightPlan": []}}),
            400,
            "MessageParametersLack",
            "employeeNo",
        ),
        (
            "no RightPlan",
            no_plan,
            400,
            "MessageParametersLack",
            "RightPlan",
        ),
        (
            "employeeNo too long",
            hik_person(&"9".repeat(33), "C"),
            400,
            "badParameters",
            "employeeNo",
        ),
        (
            "name over 128 bytes",
            hik_person("3003", &"张".repeat(43)),
            400,
            "beyondARGSRangeLimit",
            "name",
        ),
        (
            "Valid out of range",
            visitor_of_2040,
            400,
            "badParameters",
            "Valid.endTime",
        ),
        ("userType", admin, 400, "badParameters", "userType"),
        (
            "a name of 128 bytes",
            hik_person("3003", &"x".repeat(128)),
            200,
            "ok",
            "",
        ),
    ];
    for (case, body, status, sub, msg) in cases {
        expect_hik(
            &hik.json("POST", HIK_RECORD, body).await,
            status,
            sub,
            msg,
            case,
        );
    }
    let broken = HikBody::Raw {
        content_type: "application/json".into(),
        bytes: b"{\"UserInfo\":".to_vec(),
    };
    let answer = hik.send("POST", HIK_RECORD, &broken).await;
    expect_hik(&answer, 400, "badJsonFormat", "JSON", "unparseable");

    // Delete: persons and their faces go; absent ones are fine.
    expect_hik(&add_face(&hik, "1001").await, 200, "ok", "", "face");
    let delete = json!({"UserInfoDelCond": {"EmployeeNoList": [{"employeeNo": "1001"}, {"employeeNo": "nobody"}]}});
    expect_hik(
        &hik.json("PUT", HIK_DELETE, delete).await,
        200,
        "ok",
        "",
        "delete",
    );
    assert_eq!(emulator.hikvision_persons("door1"), ["2002", "3003"]);
    assert!(emulator.hikvision_faces("door1").is_empty());
    let bad = json!({"UserInfoDelCond": {"EmployeeNoList": ["2002"]}});
    let answer = hik.json("PUT", HIK_DELETE, bad).await;
    expect_hik(
        &answer,
        400,
        "badJsonContent",
        "EmployeeNoList",
        "list of strings",
    );

    let stats = emulator.stats();
    assert_eq!(stats.refusals_of("hikvision.user_record", 1610637344), 1);
    assert_eq!(stats.refusals_of("hikvision.user_modify", 1073741828), 1);
    assert_eq!(stats.requests_of("hikvision.user_setup"), 2);
    assert_eq!(
        emulator.hikvision_requests("door1")["hikvision.user_delete"],
        2
    );
}

#[tokio::test]
async fn searches_page_by_search_id_and_a_reuse_matches_nothing() {
    let emulator = start(config(patient())).await;
    let hik = Hik::new(&emulator, "door1");
    for n in 0..31 {
        add_person(&hik, &format!("E{n:03}")).await;
    }
    expect_hik(&add_face(&hik, "E000").await, 200, "ok", "", "face");
    let first = hik.json("POST", HIK_SEARCH, search_body("s1", 0, 30)).await;
    let page = &first.json["UserInfoSearch"];
    assert_eq!(page["responseStatusStrg"], "MORE");
    assert_eq!(
        (page["numOfMatches"].as_u64(), page["totalMatches"].as_u64()),
        (Some(30), Some(31))
    );
    assert_eq!(page["UserInfo"][0]["employeeNo"], "E000");
    assert_eq!(page["UserInfo"][0]["numOfFace"], 1);
    assert_eq!(page["UserInfo"][1]["numOfFace"], 0);
    let second = hik
        .json("POST", HIK_SEARCH, search_body("s1", 30, 30))
        .await;
    let page = &second.json["UserInfoSearch"];
    assert_eq!(page["responseStatusStrg"], "OK");
    assert_eq!(page["UserInfo"], json!([page["UserInfo"][0].clone()]));
    assert_eq!(page["UserInfo"][0]["employeeNo"], "E030");
    // The same searchID from the start again: a reuse.
    let reuse = hik.json("POST", HIK_SEARCH, search_body("s1", 0, 30)).await;
    let page = &reuse.json["UserInfoSearch"];
    assert_eq!(page["responseStatusStrg"], "NO MATCH");
    assert!(page.get("UserInfo").is_none(), "{page}");
    // A fresh id with a list.
    let body = json!({"UserInfoSearchCond": {"searchID": "s2", "searchResultPosition": 0,
        "maxResults": 30, "EmployeeNoList": [{"employeeNo": "E007"}, {"employeeNo": "nobody"}]}});
    let found = hik.json("POST", HIK_SEARCH, body).await;
    assert_eq!(found.json["UserInfoSearch"]["totalMatches"], 1);
    assert_eq!(
        found.json["UserInfoSearch"]["UserInfo"][0]["employeeNo"],
        "E007"
    );
    let none = json!({"UserInfoSearchCond": {"searchID": "s3", "searchResultPosition": 0,
        "maxResults": 30, "EmployeeNoList": [{"employeeNo": "nobody"}]}});
    let answer = hik.json("POST", HIK_SEARCH, none).await;
    assert_eq!(
        answer.json["UserInfoSearch"]["responseStatusStrg"],
        "NO MATCH"
    );
    assert!(answer.json["UserInfoSearch"].get("UserInfo").is_none());

    let cases: [(&str, Value, &str, &str); 4] = [
        (
            "maxResults 31",
            search_body("s4", 0, 31),
            "badParameters",
            "maxResults",
        ),
        (
            "searchID of 33",
            search_body(&"x".repeat(33), 0, 30),
            "badParameters",
            "searchID",
        ),
        (
            "list of strings",
            json!({"UserInfoSearchCond": {"searchID": "s5", "searchResultPosition": 0, "maxResults": 30, "EmployeeNoList": ["E001"]}}),
            "badJsonContent",
            "EmployeeNoList",
        ),
        (
            "no cond",
            json!({}),
            "MessageParametersLack",
            "UserInfoSearchCond",
        ),
    ];
    for (case, body, sub, msg) in cases {
        expect_hik(
            &hik.json("POST", HIK_SEARCH, body).await,
            400,
            sub,
            msg,
            case,
        );
    }
    let get = hik.get(HIK_SEARCH).await;
    assert_eq!(get.status, 404, "a search by GET");
}

// ---- faces ----

#[tokio::test]
async fn faces_are_recorded_set_up_modified_searched_and_deleted() {
    let emulator = start(config(patient())).await;
    let hik = Hik::new(&emulator, "door1");
    let answer = add_face(&hik, "1001").await;
    expect_hik(
        &answer,
        400,
        "employeeNoNotExist",
        "FPID",
        "a face for nobody",
    );
    add_person(&hik, "1001").await;
    let answer = add_face(&hik, "1001").await;
    expect_hik(&answer, 200, "ok", "", "record");
    assert_eq!(answer.json["FPID"], "1001");
    assert_eq!(emulator.hikvision_faces("door1"), ["1001"]);
    assert_eq!(
        emulator.hikvision_face("door1", "1001").unwrap(),
        face_photo()
    );
    let again = add_face(&hik, "1001").await;
    expect_hik(
        &again,
        400,
        "deviceUserAlreadyExistFace",
        "FPID",
        "record twice",
    );
    assert_eq!(again.json["errorCode"], 1610641412);

    // FDModify and FDSetUp replace; FaceImage is taken as the part name too.
    let other = photo("E1002.jpg");
    let answer = hik
        .send(
            "PUT",
            HIK_FACE_MODIFY,
            &hik_face_form("1001", &other, "FaceImage", false, false),
        )
        .await;
    expect_hik(&answer, 200, "ok", "", "modify");
    assert_eq!(emulator.hikvision_face("door1", "1001").unwrap(), other);
    add_person(&hik, "1002").await;
    let answer = hik
        .send(
            "PUT",
            HIK_FACE_MODIFY,
            &hik_face_form("1002", &other, "img", false, false),
        )
        .await;
    expect_hik(
        &answer,
        400,
        "employeeNoNotExist",
        "FPID",
        "modify without a face",
    );
    let answer = hik
        .send(
            "PUT",
            HIK_FACE_SETUP,
            &hik_face_form("1002", &other, "img", false, false),
        )
        .await;
    expect_hik(&answer, 200, "ok", "", "setUp creates");
    // A setUp whose photo cannot be modelled keeps the old face.
    let cat = std::fs::read(fixtures().join("images/cat.jpg")).unwrap();
    let answer = hik
        .send(
            "PUT",
            HIK_FACE_SETUP,
            &hik_face_form("1002", &cat, "img", false, false),
        )
        .await;
    expect_hik(
        &answer,
        400,
        "SubpicAnalysisModelingError",
        "saveFacePic",
        "setUp with a cat",
    );
    assert_eq!(emulator.hikvision_face("door1", "1002").unwrap(), other);

    let found = hik
        .json("POST", HIK_FACE_SEARCH, face_search_body(0, 30))
        .await;
    assert_eq!(found.json["responseStatusStrg"], "OK");
    assert_eq!(found.json["totalMatches"], 2);
    assert_eq!(found.json["MatchList"][0]["FPID"], "1001");
    assert_eq!(found.json["MatchList"][0]["modelData"], "");
    assert!(
        found.json["MatchList"][0]["faceURL"]
            .as_str()
            .unwrap()
            .starts_with("http://")
    );
    let mut one = face_search_body(0, 1);
    one["FPID"] = json!("1002");
    let found = hik.json("POST", HIK_FACE_SEARCH, one).await;
    assert_eq!(found.json["numOfMatches"], 1);
    assert_eq!(found.json["MatchList"][0]["FPID"], "1002");
    let answer = hik
        .json("POST", HIK_FACE_SEARCH, face_search_body(0, 31))
        .await;
    expect_hik(&answer, 400, "badParameters", "maxResults", "31 faces");

    let delete = json!({"FPID": [{"value": "1001"}, {"value": "absent"}]});
    expect_hik(
        &hik.json("PUT", HIK_FACE_DELETE, delete).await,
        200,
        "ok",
        "",
        "delete",
    );
    assert_eq!(emulator.hikvision_faces("door1"), ["1002"]);
    let answer = hik
        .json(
            "PUT",
            "/ISAPI/Intelligent/FDLib/FDSearch/Delete?format=json&FDID=2&faceLibType=blackFD",
            json!({"FPID": [{"value": "1002"}]}),
        )
        .await;
    expect_hik(&answer, 400, "badParameters", "FDID", "delete in FDID 2");
    assert_eq!(
        emulator
            .stats()
            .refusals_of("hikvision.face_setup", 1610612791),
        1
    );
}

/// A copy of a baseline JPEG turned progressive by its frame marker (SOF0 to SOF2): the
/// terminal checks markers.
fn as_progressive(jpeg: &[u8]) -> Vec<u8> {
    let mut bytes = jpeg.to_vec();
    let at = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a SOF0 marker");
    bytes[at + 1] = 0xC2;
    bytes
}

/// The face photo encoded again by `image`, whose encoder samples chroma 4:4:4.
fn as_444(jpeg: &[u8]) -> Vec<u8> {
    let decoded = image::load_from_memory(jpeg).unwrap().to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&decoded)
        .unwrap();
    out
}

#[tokio::test]
async fn photos_and_forms_the_terminal_refuses() {
    let emulator = start(config(HikvisionConfig {
        max_photo_bytes: 100 * 1024,
        ..patient()
    }))
    .await;
    let hik = Hik::new(&emulator, "door1");
    add_person(&hik, "1001").await;
    let face = face_photo();
    let cat = std::fs::read(fixtures().join("images/cat.jpg")).unwrap();
    let mut trailing = face.clone();
    trailing.extend_from_slice(b"\0\0\0\0");
    let mut big = face.clone();
    // Over the limit with a valid file: a comment segment after SOI.
    let comment: Vec<u8> = [&[0xFF, 0xFE, 0xFF, 0xF0][..], &vec![b'x'; 0xFFEE]].concat();
    big.splice(2..2, comment);
    assert!(big.len() > 100 * 1024);
    let png = png(64, 64);
    let form = |image: &[u8]| hik_face_form("1001", image, "img", false, false);
    let cases: [(&str, HikBody, &str, &str); 10] = [
        (
            "a quoted boundary",
            hik_face_form("1001", &face, "img", true, false),
            "badJsonFormat",
            "boundary",
        ),
        (
            "the image first",
            hik_face_form("1001", &face, "img", false, true),
            "badParameters",
            "FaceDataRecord",
        ),
        (
            "an image part named photo",
            hik_face_form("1001", &face, "photo", false, false),
            "badParameters",
            "photo",
        ),
        (
            "no face (a cat)",
            form(&cat),
            "SubpicAnalysisModelingError",
            "saveFacePic",
        ),
        (
            "a PNG",
            form(&png),
            "SubpicAnalysisModelingError",
            "saveFacePic",
        ),
        (
            "progressive",
            form(&as_progressive(&face)),
            "SubpicAnalysisModelingError",
            "PicFeaturePoints",
        ),
        (
            "4:4:4 chroma",
            form(&as_444(&face)),
            "SubpicAnalysisModelingError",
            "PicFeaturePoints",
        ),
        (
            "bytes after EOI",
            form(&trailing),
            "SubpicAnalysisModelingError",
            "PicFeaturePoints",
        ),
        (
            "over max_photo_bytes",
            form(&big),
            "badJsonFormat",
            "faceURL",
        ),
        (
            "base64 in JSON",
            HikBody::Json(
                json!({"faceLibType": "blackFD", "FDID": "1", "FPID": "1001", "faceData": "/9j/4AAQ"}),
            ),
            "badParameters",
            "faceData",
        ),
    ];
    for (case, body, sub, msg) in cases {
        let answer = hik.send("POST", HIK_FACE_RECORD, &body).await;
        expect_hik(&answer, 400, sub, msg, case);
    }
    // The record's own fields.
    for (record, msg) in [
        (
            r#"{"faceLibType":"infraredFD","FDID":"1","FPID":"1001"}"#,
            "faceLibType",
        ),
        (
            r#"{"faceLibType":"blackFD","FDID":"2","FPID":"1001"}"#,
            "FDID",
        ),
        (r#"{"faceLibType":"blackFD","FDID":"1"}"#, "FPID"),
    ] {
        let mut bytes = format!(
            "------X\r\nContent-Disposition: form-data; name=\"FaceDataRecord\"\r\n\r\n{record}\r\n\
             ------X\r\nContent-Disposition: form-data; name=\"img\"; filename=\"a.jpg\"\r\n\
             Content-Type: image/jpeg\r\n\r\n"
        )
        .into_bytes();
        bytes.extend_from_slice(&face);
        bytes.extend_from_slice(b"\r\n------X--\r\n");
        let body = HikBody::Raw {
            content_type: "multipart/form-data; boundary=----X".into(),
            bytes,
        };
        let answer = hik.send("POST", HIK_FACE_RECORD, &body).await;
        assert_eq!(answer.status, 400, "{msg}");
        assert_eq!(answer.json["errorMsg"], msg);
    }
    assert!(emulator.hikvision_faces("door1").is_empty());
    // face_check off: any decodable JPEG models, but the markers are still checked.
    let lenient = start(EmulatorConfig {
        face_check: false,
        ..config(patient())
    })
    .await;
    let hik = Hik::new(&lenient, "door1");
    add_person(&hik, "1001").await;
    expect_hik(
        &hik.send("POST", HIK_FACE_RECORD, &form(&cat)).await,
        200,
        "ok",
        "",
        "a cat, no face check",
    );
}

// ---- what real terminals do on a bad day ----

#[tokio::test]
async fn a_face_write_keeps_the_terminal_busy_for_busy_time() {
    let emulator = start(config(HikvisionConfig {
        busy_time: Duration::from_secs(3),
        ..patient()
    }))
    .await;
    let hik = std::sync::Arc::new(Hik::new(&emulator, "door1"));
    add_person(&hik, "1001").await;
    let writer = {
        let hik = hik.clone();
        tokio::spawn(async move { add_face(&hik, "1001").await })
    };
    // Poll until the write is modelling (generous: decoding and detection come first).
    let poller = Hik::new(&emulator, "door1");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let busy = loop {
        let answer = poller
            .get("/ISAPI/AccessControl/UserInfo/Count?format=json")
            .await;
        if answer.status == 503 || writer.is_finished() || std::time::Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    expect_hik(&busy, 503, "deviceBusy", "busy", "during the write");
    assert_eq!(busy.json["errorCode"], 536870916);
    let searched = poller
        .json("POST", HIK_SEARCH, search_body("b", 0, 30))
        .await;
    expect_hik(
        &searched,
        503,
        "deviceBusy",
        "busy",
        "a search during the write",
    );
    let written = writer.await.unwrap();
    expect_hik(&written, 200, "ok", "", "the write");
    let after = poller
        .get("/ISAPI/AccessControl/UserInfo/Count?format=json")
        .await;
    assert_eq!(after.status, 200);
    assert!(
        emulator
            .stats()
            .refusals_of("hikvision.user_search", 536870916)
            >= 1
    );
}

#[tokio::test(start_paused = true)]
async fn a_late_write_shows_only_after_late_write() {
    let emulator = start(config(HikvisionConfig {
        late_write: Duration::from_secs(5),
        ..patient()
    }))
    .await;
    let hik = Hik::new(&emulator, "door1");
    add_person(&hik, "1001").await;
    expect_hik(&add_face(&hik, "1001").await, 200, "ok", "", "write");
    let found = hik
        .json("POST", HIK_FACE_SEARCH, face_search_body(0, 30))
        .await;
    assert_eq!(found.json["responseStatusStrg"], "NO MATCH");
    assert!(emulator.hikvision_faces("door1").is_empty());
    // Stored though: a second record is refused.
    let again = add_face(&hik, "1001").await;
    expect_hik(
        &again,
        400,
        "deviceUserAlreadyExistFace",
        "FPID",
        "not yet visible",
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    let found = hik
        .json("POST", HIK_FACE_SEARCH, face_search_body(0, 30))
        .await;
    assert_eq!(found.json["MatchList"][0]["FPID"], "1001");
    assert_eq!(emulator.hikvision_faces("door1"), ["1001"]);
}

#[tokio::test]
async fn a_lost_write_is_answered_ok_once_and_never_stored() {
    let emulator = start(config(HikvisionConfig {
        lost_writes: vec!["1001".into()],
        ..patient()
    }))
    .await;
    let hik = Hik::new(&emulator, "door1");
    add_person(&hik, "1001").await;
    expect_hik(&add_face(&hik, "1001").await, 200, "ok", "", "lost");
    assert!(emulator.hikvision_faces("door1").is_empty());
    expect_hik(&add_face(&hik, "1001").await, 200, "ok", "", "again");
    assert_eq!(emulator.hikvision_faces("door1"), ["1001"]);
}

#[tokio::test]
async fn capacity_bounds_persons_and_faces() {
    let emulator = start(config(HikvisionConfig {
        max_persons: 2,
        max_faces: 1,
        ..patient()
    }))
    .await;
    let hik = Hik::new(&emulator, "door1");
    add_person(&hik, "1").await;
    add_person(&hik, "2").await;
    let full = hik.json("POST", HIK_RECORD, hik_person("3", "C")).await;
    expect_hik(&full, 400, "deviceError", "maxRecordNum", "a third person");
    assert_eq!(full.json["errorCode"], 805306369);
    // Replacing an existing one still fits.
    expect_hik(
        &hik.json("PUT", HIK_SETUP, hik_person("2", "B")).await,
        200,
        "ok",
        "",
        "setUp",
    );
    expect_hik(&add_face(&hik, "1").await, 200, "ok", "", "first face");
    let full = add_face(&hik, "2").await;
    expect_hik(
        &full,
        400,
        "deviceError",
        "FDRecordDataMaxNum",
        "a second face",
    );
    let replace = hik
        .send(
            "PUT",
            HIK_FACE_SETUP,
            &hik_face_form("1", &photo("E1002.jpg"), "img", false, false),
        )
        .await;
    expect_hik(&replace, 200, "ok", "", "replacing fits");
}

#[tokio::test]
async fn terminals_are_independent_and_counted_apart() {
    let emulator = start(EmulatorConfig {
        hikvision: HikvisionConfig {
            terminals: vec!["door1".into(), "gate-B".into()],
            password: Secret::new("s3cret"),
            ..patient()
        },
        ..EmulatorConfig::default()
    })
    .await;
    assert!(
        emulator
            .hikvision_url("gate-B")
            .ends_with("/hikvision/gate-B")
    );
    assert!(
        emulator
            .hikvision_url("door1")
            .starts_with(&emulator.base_url())
    );
    let one = Hik::with_password(&emulator, "door1", "s3cret");
    let two = Hik::with_password(&emulator, "gate-B", "s3cret");
    add_person(&one, "1001").await;
    add_person(&two, "2002").await;
    expect_hik(
        &add_face(&one, "1001").await,
        200,
        "ok",
        "",
        "face on door1",
    );
    assert_eq!(emulator.hikvision_persons("door1"), ["1001"]);
    assert_eq!(emulator.hikvision_persons("gate-B"), ["2002"]);
    assert_eq!(emulator.hikvision_faces("gate-B"), Vec::<String>::new());
    // A nonce of one terminal is no good on the other.
    let auth = one.authorization("GET", INFO);
    let auth = auth
        .replace("DS-K1T341AM(door1)", "DS-K1T341AM(gate-B)")
        .replace("/hikvision/door1", "/hikvision/gate-B");
    assert_eq!(
        two.raw("GET", INFO, Some(&auth), &HikBody::None)
            .await
            .status,
        401
    );

    let (a, b) = (
        emulator.hikvision_requests("door1"),
        emulator.hikvision_requests("gate-B"),
    );
    assert_eq!(
        (a["hikvision.user_record"], b["hikvision.user_record"]),
        (1, 1)
    );
    assert_eq!(a["hikvision.face_record"], 1);
    assert!(!b.contains_key("hikvision.face_record"));
    let stats = emulator.stats();
    assert_eq!(stats.requests_of("hikvision.user_record"), 2);
    assert_eq!(stats.requests_of("hikvision.challenge"), 2);
    assert_eq!(stats.requests_of("hikvision.unauthorized"), 1);
}

#[tokio::test]
async fn server_errors_are_a_bare_500() {
    let emulator: Emulator = start(EmulatorConfig {
        error_rate: 1.0,
        ..config(patient())
    })
    .await;
    let hik = Hik::new(&emulator, "door1");
    let answer = hik.raw("GET", INFO, None, &HikBody::None).await;
    assert_eq!((answer.status, answer.bytes.len()), (500, 0));
    assert_eq!(emulator.stats().faults.server_errors, 1);
    assert_eq!(emulator.stats().requests_of("hikvision.device_info"), 1);
}
