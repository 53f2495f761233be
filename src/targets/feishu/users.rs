//! Feishu ACS users: the list of users in an access-control permission group
//! (`GET /open-apis/acs/v1/users`, paged by `page_token`, `feature.face_uploaded` per user) and
//! one user (`GET /open-apis/acs/v1/users/:user_id`, 1490101 when they are in no group).

use serde_json::Value;

use crate::targets::{RemotePage, RemoteUser};

/// The most users one page holds.
pub(super) const PAGE_SIZE: &str = "50";

pub(super) const LIST_PATH: &str = "/open-apis/acs/v1/users";

fn user(item: &Value) -> Option<RemoteUser> {
    let user_id = item.get("user_id")?.as_str().filter(|s| !s.is_empty())?;
    Some(RemoteUser {
        user_id: user_id.to_string(),
        has_face: item
            .pointer("/feature/face_uploaded")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// One page of the list, from the envelope's `data`.
pub(super) fn parse_page(data: &Value) -> Result<RemotePage, String> {
    let users = data
        .get("items")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(user).collect())
        .unwrap_or_default();
    let has_more = data
        .get("has_more")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let token = data
        .get("page_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    match (has_more, token) {
        (false, _) => Ok(RemotePage {
            users,
            ..RemotePage::default()
        }),
        (true, Some(t)) => Ok(RemotePage {
            users,
            next: Some(t.to_string()),
            ..RemotePage::default()
        }),
        (true, None) => Err("feishu's user list said has_more without a page_token".into()),
    }
}

/// One user, from the envelope's `data` (`{"user": {...}}`).
pub(super) fn parse_user(data: &Value) -> Option<RemoteUser> {
    user(data.get("user")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn u(id: &str, has_face: bool) -> RemoteUser {
        RemoteUser {
            user_id: id.into(),
            has_face,
        }
    }

    #[test]
    fn pages_give_users_with_their_face_flag_and_where_to_go_on() {
        let data = json!({"items": [
            {"user_id": "E1", "feature": {"face_uploaded": true}},
            {"user_id": "E2", "feature": {"card": 1}},
            {"feature": {"face_uploaded": true}},
        ], "has_more": true, "page_token": "tok"});
        assert_eq!(
            parse_page(&data),
            Ok(RemotePage {
                users: vec![u("E1", true), u("E2", false)],
                next: Some("tok".into()),
                ..RemotePage::default()
            })
        );
        assert_eq!(
            parse_page(&json!({"items": [], "has_more": false})),
            Ok(RemotePage::default())
        );
        assert_eq!(parse_page(&json!({})), Ok(RemotePage::default()));
        assert!(parse_page(&json!({"has_more": true})).is_err());
        assert_eq!(
            parse_user(&json!({"user": {"user_id": "E1", "feature": {"face_uploaded": false}}})),
            Some(u("E1", false))
        );
        assert_eq!(parse_user(&json!({})), None);
    }
}
