//! The emulated VziCloud over loopback: signatures checked as SIGNATURE.md says (and the
//! vendor's own example accepted), face update and register, groups, users and faces, and the
//! QPS and quota limits.
//! Each test starts its own emulator on 127.0.0.1:0.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::*;
use facesync_emulator::{EmulatorConfig, FaceLocation, Secret};
use serde_json::{Value, json};

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
