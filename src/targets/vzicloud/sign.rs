//! VziCloud request signing (the vendor's SIGNATURE.md), for the client.
//!
//! `signature = base64(hmac_sha1(secret, VERB \n CONTENT_MD5 \n CONTENT_TYPE \n EXPIRES \n
//! CanonicalizedResource))`, placed url-encoded in the query next to `accesskey_id` and
//! `expires`. Signing is pure: the caller passes the expiry, so tests are deterministic.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use percent_encoding::utf8_percent_encode;
use sha1::Sha1;

/// The query parameters the signature itself travels in; they are left out of the
/// canonicalized resource.
pub const AUTH_PARAMS: [&str; 3] = ["accesskey_id", "expires", "signature"];

/// The content type of every signed request that has a body.
pub const JSON: &str = "application/json";

/// base64 of the MD5 of the exact body bytes; empty for no body.
pub fn content_md5(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    BASE64.encode(Md5::digest(body))
}

/// The path, then `?` and the other query parameters sorted by name, values not encoded.
pub fn canonical_resource(path: &str, query: &[(&str, &str)]) -> String {
    let mut params: Vec<_> = query
        .iter()
        .filter(|(k, _)| !AUTH_PARAMS.contains(k))
        .collect();
    if params.is_empty() {
        return path.to_string();
    }
    params.sort();
    let joined: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{path}?{}", joined.join("&"))
}

/// The string that is signed.
pub fn string_to_sign(verb: &str, body: &[u8], expires: u64, resource: &str) -> String {
    let content_type = if body.is_empty() { "" } else { JSON };
    format!(
        "{}\n{}\n{}\n{}\n{}",
        verb.to_ascii_uppercase(),
        content_md5(body),
        content_type,
        expires,
        resource
    )
}

/// The signature, base64 (not yet url-encoded).
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(string_to_sign.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// Url-encodes one query value (`+ / =` become `%2B %2F %3D`).
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, crate::targets::NOT_UNRESERVED).to_string()
}

/// A request's signed query string: the caller's own parameters, then the three auth ones.
pub struct Signing<'a> {
    pub accesskey_id: &'a str,
    pub secret: &'a str,
    pub expires: u64,
}

impl Signing<'_> {
    /// The full query string (without `?`) for `verb path?query` with `body`.
    pub fn query(&self, verb: &str, path: &str, query: &[(&str, &str)], body: &[u8]) -> String {
        let resource = canonical_resource(path, query);
        let sig = signature(
            self.secret,
            &string_to_sign(verb, body, self.expires, &resource),
        );
        let mut parts: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", encode_query_value(v)))
            .collect();
        parts.push(format!(
            "accesskey_id={}",
            encode_query_value(self.accesskey_id)
        ));
        parts.push(format!("expires={}", self.expires));
        parts.push(format!("signature={}", encode_query_value(&sig)));
        parts.join("&")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example of the vendor's SIGNATURE.md.
    const SECRET: &str = "m4b4gQc0hur8okz7rsR7pLJkoH4OMLYj";
    const BODY: &str = r#"{"name":"测试应用","remark":"无"}"#;

    #[test]
    fn the_vendor_test_vector_signs_as_documented() {
        assert_eq!(content_md5(BODY.as_bytes()), "J2bREIXRh58BwcSkG9YNQQ==");
        let sts = string_to_sign("post", BODY.as_bytes(), 1561463558, "/v2/prs/user/apps");
        assert_eq!(
            sts,
            "POST\nJ2bREIXRh58BwcSkG9YNQQ==\napplication/json\n1561463558\n/v2/prs/user/apps"
        );
        assert_eq!(signature(SECRET, &sts), "8CXL+bRJ+WaDQrwg7wWxkdEok0Y=");
        let q = Signing {
            accesskey_id: "7ffG6UFo1135QXbK2gVuiJffadN1YXZC",
            secret: SECRET,
            expires: 1561463558,
        }
        .query("POST", "/v2/prs/user/apps", &[], BODY.as_bytes());
        assert_eq!(
            q,
            "accesskey_id=7ffG6UFo1135QXbK2gVuiJffadN1YXZC&expires=1561463558&signature=8CXL%2BbRJ%2BWaDQrwg7wWxkdEok0Y%3D"
        );
    }

    fn check_resource(path: &str, query: &[(&str, &str)], expected: &str) {
        assert_eq!(canonical_resource(path, query), expected);
    }

    #[test]
    fn canonical_resources_sort_params_and_leave_out_auth_ones() {
        check_resource("/v2/prs/user/apps", &[], "/v2/prs/user/apps");
        check_resource(
            "/v2/prs/user/apps",
            &[("name", "名称"), ("age", "20"), ("id", "1")],
            "/v2/prs/user/apps?age=20&id=1&name=名称",
        );
        check_resource(
            "/p",
            &[("expires", "1"), ("signature", "x"), ("accesskey_id", "k")],
            "/p",
        );
        check_resource(
            "/p",
            &[("limit", "10"), ("expires", "1"), ("offset", "0")],
            "/p?limit=10&offset=0",
        );
    }

    #[test]
    fn a_request_without_body_has_empty_md5_and_content_type() {
        assert_eq!(string_to_sign("GET", b"", 5, "/g"), "GET\n\n\n5\n/g");
    }
}
