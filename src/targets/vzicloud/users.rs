//! VziCloud FRS users of the group: the list (`GET .../groups/:group_id/users`, paged with
//! `offset` and `limit` as SCAN.md says, `{results, total}`) and the deletion of one
//! (`DELETE .../groups/:group_id/users/:user_id`).

use serde_json::Value;

use crate::targets::{RemotePage, RemoteUser};

/// Users asked for per page. SCAN.md sets no maximum; a modest page keeps answers small.
pub(super) const PAGE: usize = 100;

/// One page of the list, asked for at `offset`: every user of the group is there because of
/// a face, so each counts as holding one.
pub(super) fn parse_page(body: &str, offset: usize) -> Result<RemotePage, String> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| format!("vzicloud's user list is not JSON: {e}"))?;
    let results = value
        .get("results")
        .and_then(Value::as_array)
        .ok_or("vzicloud's user list has no `results`")?;
    let users: Vec<RemoteUser> = results
        .iter()
        .filter_map(|r| r.get("user_id")?.as_str())
        .map(|id| RemoteUser {
            user_id: id.to_string(),
            has_face: true,
        })
        .collect();
    let total = value
        .get("total")
        .and_then(Value::as_u64)
        .map_or(0, |t| t as usize);
    let seen = offset + results.len();
    let next = (!results.is_empty() && seen < total).then(|| seen.to_string());
    Ok(RemotePage { users, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, offset: usize, ids: &[&str], next: Option<&str>) {
        let page = parse_page(body, offset).unwrap();
        let got: Vec<&str> = page.users.iter().map(|u| u.user_id.as_str()).collect();
        assert_eq!(
            (got.as_slice(), page.next.as_deref()),
            (ids, next),
            "{body}"
        );
    }

    #[test]
    fn pages_end_when_the_total_is_reached() {
        let two = r#"{"results":[{"user_id":"a"},{"user_id":"b"}],"total":5,"limit":2,"offset":0}"#;
        check(two, 0, &["a", "b"], Some("2"));
        check(two, 3, &["a", "b"], None);
        check(r#"{"results":[],"total":5}"#, 5, &[], None);
        check(
            r#"{"results":[{"user_id":"a"}],"total":1}"#,
            0,
            &["a"],
            None,
        );
        assert!(parse_page("{}", 0).is_err());
        assert!(parse_page("<html>", 0).is_err());
    }
}
