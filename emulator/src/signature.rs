//! VziCloud's request signature, as the vendor's SIGNATURE.md defines it, for checking requests.
//!
//! Written from the vendor's page, not taken from facesync's signer: two implementations that
//! agree on the vendor's worked example and on every request facesync's tests send are a check
//! of each other, where a shared one would carry the same mistake to both sides.
//!
//! `signature = base64(HMAC-SHA1(secret, VERB \n CONTENT-MD5 \n CONTENT-TYPE \n EXPIRES \n
//! CanonicalizedResource))`; the resource is the path, then `?` and the query parameters other
//! than the three auth ones sorted by name, `&`-joined, values not url-encoded.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;

/// The parameters the signature travels in, left out of the canonicalized resource.
const AUTH_PARAMS: [&str; 3] = ["signature", "expires", "accesskey_id"];

/// The content type a request with a body must be sent as.
pub(crate) const JSON: &str = "application/json";

/// The canonicalized resource of `path` with the query parameters as received (decoded).
/// SIGNATURE.md sorts by name; parameters of the same name keep a fixed order (by value).
pub(crate) fn canonical_resource(path: &str, params: &[(String, String)]) -> String {
    let mut kept: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .filter(|(k, _)| !AUTH_PARAMS.contains(k))
        .collect();
    if kept.is_empty() {
        return path.to_string();
    }
    kept.sort_unstable();
    let pairs: Vec<String> = kept.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{path}?{}", pairs.join("&"))
}

/// The string a request's signature is over. CONTENT-MD5 and CONTENT-TYPE are empty for a
/// request without a body; `expires` is the parameter's value as sent.
pub(crate) fn canonical_string(
    method: &str,
    body: &[u8],
    content_type: &str,
    expires: &str,
    resource: &str,
) -> String {
    let (md5, content_type) = if body.is_empty() {
        (String::new(), "")
    } else {
        (BASE64.encode(Md5::digest(body)), content_type)
    };
    let verb = method.to_ascii_uppercase();
    [verb.as_str(), &md5, content_type, expires, resource].join("\n")
}

/// base64 of the HMAC-SHA1 of `canonical` under `secret` (as it is before url-encoding).
pub(crate) fn signature(secret: &str, canonical: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(canonical.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_vendor_worked_example_gives_its_signature() {
        // SIGNATURE.md's "完整演示", step by step.
        let body = r#"{"name":"测试应用","remark":"无"}"#.as_bytes();
        let query = params(&[
            ("accesskey_id", "7ffG6UFo1135QXbK2gVuiJffadN1YXZC"),
            ("expires", "1561463558"),
            ("signature", "8CXL+bRJ+WaDQrwg7wWxkdEok0Y="),
        ]);
        let resource = canonical_resource("/v2/prs/user/apps", &query);
        assert_eq!(resource, "/v2/prs/user/apps");
        let canonical = canonical_string("POST", body, JSON, "1561463558", &resource);
        assert_eq!(
            canonical,
            "POST\nJ2bREIXRh58BwcSkG9YNQQ==\napplication/json\n1561463558\n/v2/prs/user/apps"
        );
        assert_eq!(
            signature("m4b4gQc0hur8okz7rsR7pLJkoH4OMLYj", &canonical),
            "8CXL+bRJ+WaDQrwg7wWxkdEok0Y="
        );
    }

    #[test]
    fn resources_sort_parameters_by_name_without_the_auth_ones_or_encoding() {
        for (pairs, want) in [
            (&[][..], "/p"),
            (
                &[("name", "名称"), ("age", "20"), ("id", "1")][..],
                "/p?age=20&id=1&name=名称",
            ),
            (&[("expires", "1"), ("signature", "x+/=")][..], "/p"),
            (
                &[("offset", "0"), ("accesskey_id", "k"), ("limit", "10")][..],
                "/p?limit=10&offset=0",
            ),
            (&[("a", "x y&z")][..], "/p?a=x y&z"),
        ] {
            assert_eq!(canonical_resource("/p", &params(pairs)), want, "{pairs:?}");
        }
    }

    #[test]
    fn a_request_without_a_body_signs_empty_md5_and_type() {
        assert_eq!(
            canonical_string("get", b"", JSON, "5", "/g"),
            "GET\n\n\n5\n/g"
        );
    }
}
