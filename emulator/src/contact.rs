//! The emulated Feishu contact API: `POST /open-apis/contact/v3/users/batch_get_id`, answered
//! from the `directory` knob ([`super::DirectoryUser`]).
//!
//! Checked as strictly as the docs read: a tenant access token; `user_id_type` one of the
//! three kinds (default `open_id`); a JSON object body whose `emails` and `mobiles` are arrays
//! of at most 50 strings each, not both empty; `include_resigned` a boolean when present.
//! Refusals are 99992402 naming the field. Each e-mail, then each mobile, gets one `user_list`
//! entry in the order asked: with `user_id` and `status` when the directory has the person (a
//! resigned one only with `include_resigned`), the bare e-mail or mobile otherwise, as the real
//! service answers for people it cannot show.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::DirectoryUser;
use super::feishu::{FeishuError, authorize, id_as, id_type, ok, query};
use super::state::Shared;

pub(super) const BATCH_GET_ID_PATH: &str = "/open-apis/contact/v3/users/batch_get_id";

/// The scope `batch_get_id` needs.
const CONTACT_SCOPE: &str = "contact:user.id:readonly";

/// E-mail addresses, and mobile numbers, one request may ask about.
const MAX_PER_KIND: usize = 50;

pub(super) async fn batch_get_id(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match answer(&shared, raw, &headers, &body) {
        Ok(data) => ok(data),
        Err(e) => e.into_response(),
    }
}

fn answer(
    shared: &Shared,
    raw: Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, FeishuError> {
    authorize(shared, headers, CONTACT_SCOPE)?;
    let kind = id_type(&query(raw))?;
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Err(FeishuError::field("body", "not a JSON object"));
    };
    let list = |name: &str| -> Result<Vec<String>, FeishuError> {
        let items = match map.get(name) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(FeishuError::field(name, "not a list")),
        };
        if items.len() > MAX_PER_KIND {
            return Err(FeishuError::field(
                name,
                format!("{} items: at most {MAX_PER_KIND}", items.len()),
            ));
        }
        items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| FeishuError::field(name, "not a list of strings"))
    };
    let emails = list("emails")?;
    let mobiles = list("mobiles")?;
    if emails.is_empty() && mobiles.is_empty() {
        return Err(FeishuError::fields(vec![
            ("emails".into(), "emails and mobiles are both empty".into()),
            ("mobiles".into(), "emails and mobiles are both empty".into()),
        ]));
    }
    let include_resigned = match map.get("include_resigned") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(FeishuError::field("include_resigned", "not a boolean")),
    };
    let directory = &shared.config.directory;
    let entry = |field: &str, asked: &str, found: Option<&DirectoryUser>| match found {
        Some(u) if include_resigned || !u.resigned => json!({
            "user_id": id_as(&u.user_id, kind),
            field: asked,
            "status": {
                "is_frozen": false,
                "is_resigned": u.resigned,
                "is_activated": !u.resigned,
                "is_exited": false,
                "is_unjoin": false,
            },
        }),
        _ => json!({ field: asked }),
    };
    let mut user_list: Vec<Value> = emails
        .iter()
        .map(|e| {
            let found = directory.iter().find(|u| {
                u.email
                    .as_deref()
                    .is_some_and(|d| d.trim().eq_ignore_ascii_case(e.trim()))
            });
            entry("email", e, found)
        })
        .collect();
    user_list.extend(mobiles.iter().map(|m| {
        let found = directory
            .iter()
            .find(|u| u.mobile.as_deref().is_some_and(|d| same_mobile(d, m)));
        entry("mobile", m, found)
    }));
    Ok(json!({ "user_list": user_list }))
}

/// The same number, written with or without the `+86` country code.
fn same_mobile(directory: &str, asked: &str) -> bool {
    let bare = |m: &str| m.trim().trim_start_matches("+86").to_string();
    directory.trim() == asked.trim() || bare(directory) == bare(asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobiles_match_with_or_without_the_country_code() {
        for (d, a, same) in [
            ("13800000001", "13800000001", true),
            ("+8613800000001", "13800000001", true),
            ("13800000001", "+8613800000001", true),
            ("13800000001", "13800000002", false),
            ("+4915100000001", "15100000001", false),
        ] {
            assert_eq!(same_mobile(d, a), same, "{d} {a}");
        }
    }

    #[test]
    fn directory_files_name_their_columns() {
        let users = DirectoryUser::parse_csv(
            "user_id,email,mobile,resigned\nE1,a@x,138,\nE2,,139,yes\nE3,c@x,,0\n",
        )
        .unwrap();
        assert_eq!(
            users,
            [
                DirectoryUser {
                    user_id: "E1".into(),
                    email: Some("a@x".into()),
                    mobile: Some("138".into()),
                    resigned: false,
                },
                DirectoryUser {
                    user_id: "E2".into(),
                    email: None,
                    mobile: Some("139".into()),
                    resigned: true,
                },
                DirectoryUser {
                    user_id: "E3".into(),
                    email: Some("c@x".into()),
                    mobile: None,
                    resigned: false,
                },
            ]
        );
        for (bad, why) in [
            ("email\na@x\n", "user_id"),
            ("user_id,resigned\nE1,maybe\n", "line 2"),
            ("user_id,email\n,a@x\n", "empty user_id"),
        ] {
            let err = DirectoryUser::parse_csv(bad).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }
}
