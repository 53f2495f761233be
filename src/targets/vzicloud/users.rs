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
    // The first page's size (the server may give fewer than asked) and the total place every
    // later page.
    let later = if offset == 0 && next.is_some() {
        (seen..total)
            .step_by(results.len())
            .map(|o| o.to_string())
            .collect()
    } else {
        Vec::new()
    };
    Ok(RemotePage { users, next, later })
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

    #[test]
    fn the_first_page_places_every_later_one_by_its_own_size() {
        let later = |body: &str, offset| parse_page(body, offset).unwrap().later;
        // Asked for more than the server gives: later pages step by what it gave.
        let first = r#"{"results":[{"user_id":"a"},{"user_id":"b"}],"total":7}"#;
        assert_eq!(later(first, 0), ["2", "4", "6"]);
        // Only the first page places the others; a single page has none.
        assert!(later(first, 2).is_empty());
        assert!(later(r#"{"results":[{"user_id":"a"}],"total":1}"#, 0).is_empty());
        assert!(later(r#"{"results":[],"total":3}"#, 0).is_empty());
    }
}
