//! Feishu's id lookup by e-mail or mobile: `POST /open-apis/contact/v3/users/batch_get_id`
//! (scope `contact:user.id:readonly`), at most 50 e-mail addresses and 50 mobile numbers a
//! call. Resigned users are asked for too (`include_resigned`), so that "resigned" can be told
//! from "not found".

use serde_json::{Value, json};

use crate::targets::{Contact, Lookup};

/// E-mail addresses, and mobile numbers, one call takes.
pub(super) const BATCH: usize = 50;

pub(super) const PATH: &str = "/open-apis/contact/v3/users/batch_get_id";

/// The request body for `contacts` (at most [`BATCH`] of each kind).
pub(super) fn body(contacts: &[Contact]) -> Value {
    let of = |email: bool| -> Vec<&str> {
        contacts
            .iter()
            .filter(|c| matches!(c, Contact::Email(_)) == email)
            .map(Contact::value)
            .collect()
    };
    let mut body = json!({ "include_resigned": true });
    let (emails, mobiles) = (of(true), of(false));
    if !emails.is_empty() {
        body["emails"] = json!(emails);
    }
    if !mobiles.is_empty() {
        body["mobiles"] = json!(mobiles);
    }
    body
}

/// The answer for every contact asked about, from the envelope's `data`: an entry with a
/// `user_id` is found (or resigned, by its status); one without, or none at all, is not found.
pub(super) fn parse(contacts: &[Contact], data: &Value) -> Vec<(Contact, Lookup)> {
    let entries: &[Value] = data
        .get("user_list")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    contacts
        .iter()
        .map(|contact| {
            let entry = entries.iter().find(|e| answers(e, contact));
            let user_id = entry
                .and_then(|e| e.get("user_id"))
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty());
            let resigned = entry
                .and_then(|e| e.pointer("/status/is_resigned"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let lookup = match user_id {
                Some(_) if resigned => Lookup::Resigned,
                Some(id) => Lookup::Found(id.to_string()),
                None => Lookup::NotFound,
            };
            (contact.clone(), lookup)
        })
        .collect()
}

/// Whether a `user_list` entry is the answer about `contact`. A mobile may come back with or
/// without its country code (`+86`).
fn answers(entry: &Value, contact: &Contact) -> bool {
    match contact {
        Contact::Email(want) => entry
            .get("email")
            .and_then(Value::as_str)
            .and_then(Contact::email)
            .is_some_and(|got| got.value() == want),
        Contact::Mobile(want) => entry
            .get("mobile")
            .and_then(Value::as_str)
            .and_then(Contact::mobile)
            .is_some_and(|got| {
                let got = got.value();
                got == want
                    || (got.starts_with('+') && got.ends_with(want.as_str()))
                    || (want.starts_with('+') && want.ends_with(got))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(s: &str) -> Contact {
        Contact::Email(s.into())
    }

    fn mobile(s: &str) -> Contact {
        Contact::Mobile(s.into())
    }

    #[test]
    fn the_body_lists_each_kind_and_asks_for_resigned_users() {
        assert_eq!(
            body(&[email("a@x"), mobile("138"), email("b@x")]),
            json!({"emails": ["a@x", "b@x"], "mobiles": ["138"], "include_resigned": true})
        );
        assert_eq!(
            body(&[mobile("138")]),
            json!({"mobiles": ["138"], "include_resigned": true})
        );
    }

    #[test]
    fn every_contact_gets_an_answer() {
        let data = json!({"user_list": [
            {"user_id": "ou_a", "email": "A@x", "status": {"is_resigned": false}},
            {"email": "gone@x"},
            {"user_id": "ou_r", "email": "r@x", "status": {"is_resigned": true}},
            {"user_id": "ou_m", "mobile": "+8613800000001", "status": {}},
            {"user_id": "", "mobile": "139"},
        ]});
        let asked = [
            email("a@x"),
            email("gone@x"),
            email("r@x"),
            email("never@x"),
            mobile("13800000001"),
            mobile("139"),
        ];
        let want = [
            Lookup::Found("ou_a".into()),
            Lookup::NotFound,
            Lookup::Resigned,
            Lookup::NotFound,
            Lookup::Found("ou_m".into()),
            Lookup::NotFound,
        ];
        let got: Vec<Lookup> = parse(&asked, &data).into_iter().map(|(_, l)| l).collect();
        assert_eq!(got, want);
        assert!(
            parse(&asked, &json!({}))
                .iter()
                .all(|(_, l)| *l == Lookup::NotFound)
        );
    }
}
