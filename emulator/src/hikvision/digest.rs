//! HTTP Digest as RFC 7616 defines it, with `qop=auth`: the challenge a terminal sends, the
//! parsing of an `Authorization: Digest ...` header, and the check of everything in it except
//! whether the nonce is still good (the terminal's state knows that). Pure.

use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::DigestAlgorithm;

/// The parameters of an `Authorization: Digest` header.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) realm: String,
    pub(crate) nonce: String,
    pub(crate) uri: String,
    pub(crate) response: String,
    pub(crate) algorithm: Option<String>,
    pub(crate) qop: Option<String>,
    pub(crate) nc: Option<String>,
    pub(crate) cnonce: Option<String>,
    pub(crate) userhash: Option<String>,
}

/// What a request must have been signed with.
pub(crate) struct Expected<'a> {
    pub(crate) username: &'a str,
    pub(crate) password: &'a str,
    pub(crate) realm: &'a str,
    pub(crate) algorithm: DigestAlgorithm,
    pub(crate) method: &'a str,
    /// The request's path and query, as sent.
    pub(crate) uri: &'a str,
}

/// The `WWW-Authenticate` value of a challenge.
pub(crate) fn challenge(
    realm: &str,
    nonce: &str,
    opaque: &str,
    algorithm: DigestAlgorithm,
    stale: bool,
) -> String {
    let algorithm = match algorithm {
        DigestAlgorithm::Md5 => "MD5",
        DigestAlgorithm::Sha256 => "SHA-256",
    };
    let stale = if stale { "true" } else { "FALSE" };
    format!(
        "Digest realm=\"{realm}\", qop=\"auth\", nonce=\"{nonce}\", opaque=\"{opaque}\", \
         algorithm={algorithm}, stale=\"{stale}\""
    )
}

/// The scheme's parameters from an `Authorization` value; `None` when the scheme is not
/// Digest. A Digest value that cannot be read is an `Err` naming what is wrong.
pub(crate) fn parse(value: &str) -> Option<Result<Credentials, String>> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    Some(parse_params(rest))
}

fn parse_params(text: &str) -> Result<Credentials, String> {
    let mut c = Credentials::default();
    let mut seen = std::collections::HashSet::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("`{rest}` is not key=value"))?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => match chars.next() {
                        Some((_, escaped)) => value.push(escaped),
                        None => break,
                    },
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    ch => value.push(ch),
                }
            }
            let end = end.ok_or_else(|| format!("{key}: unterminated quoted string"))?;
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        if !seen.insert(key.clone()) {
            return Err(format!("{key} given twice"));
        }
        match key.as_str() {
            "username" => c.username = value,
            "realm" => c.realm = value,
            "nonce" => c.nonce = value,
            "uri" => c.uri = value,
            "response" => c.response = value,
            "algorithm" => c.algorithm = Some(value),
            "qop" => c.qop = Some(value),
            "nc" => c.nc = Some(value),
            "cnonce" => c.cnonce = Some(value),
            "userhash" => c.userhash = Some(value),
            // `opaque` is returned as it came; other parameters are extensions.
            _ => {}
        }
        let after = after.trim_start();
        rest = match after.strip_prefix(',') {
            Some(r) => r.trim_start(),
            None if after.is_empty() => after,
            None => return Err(format!("`{after}`: parameters must be separated by commas")),
        };
    }
    for (name, value) in [
        ("username", &c.username),
        ("realm", &c.realm),
        ("nonce", &c.nonce),
        ("uri", &c.uri),
        ("response", &c.response),
    ] {
        if value.is_empty() {
            return Err(format!("no {name}"));
        }
    }
    Ok(c)
}

/// Checks everything but the nonce's age and uses: `Err` says what does not match.
pub(crate) fn verify(c: &Credentials, e: &Expected) -> Result<(), String> {
    if c.username != e.username {
        return Err(format!("unknown user `{}`", c.username));
    }
    if c.realm != e.realm {
        return Err(format!("realm `{}` is not `{}`", c.realm, e.realm));
    }
    if c.uri != e.uri {
        return Err(format!("uri `{}` is not the request's `{}`", c.uri, e.uri));
    }
    if c.qop.as_deref() != Some("auth") {
        return Err("qop must be auth".to_string());
    }
    if c.userhash.as_deref().is_some_and(|u| u != "false") {
        return Err("userhash is not supported".to_string());
    }
    let nc = c.nc.as_deref().unwrap_or("");
    if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("nc `{nc}` is not 8 hex digits"));
    }
    let cnonce = c.cnonce.as_deref().unwrap_or("");
    if cnonce.is_empty() {
        return Err("no cnonce".to_string());
    }
    let sess = match (e.algorithm, c.algorithm.as_deref()) {
        (DigestAlgorithm::Md5, None | Some("MD5")) => false,
        (DigestAlgorithm::Md5, Some("MD5-sess")) => true,
        (DigestAlgorithm::Sha256, Some("SHA-256")) => false,
        (DigestAlgorithm::Sha256, Some("SHA-256-sess")) => true,
        (_, other) => {
            return Err(format!(
                "algorithm {} is not the challenge's",
                other.unwrap_or("(none: MD5)")
            ));
        }
    };
    let expected = response(e, &c.nonce, nc, cnonce, sess);
    if !expected.eq_ignore_ascii_case(&c.response) {
        return Err("wrong response (password)".to_string());
    }
    Ok(())
}

/// `response` as RFC 7616 §3.4.1 computes it for `qop=auth`.
fn response(e: &Expected, nonce: &str, nc: &str, cnonce: &str, sess: bool) -> String {
    let h = |text: String| hex(e.algorithm, text.as_bytes());
    let mut ha1 = h(format!("{}:{}:{}", e.username, e.realm, e.password));
    if sess {
        ha1 = h(format!("{ha1}:{nonce}:{cnonce}"));
    }
    let ha2 = h(format!("{}:{}", e.method, e.uri));
    h(format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
}

fn hex(algorithm: DigestAlgorithm, data: &[u8]) -> String {
    let bytes = match algorithm {
        DigestAlgorithm::Md5 => Md5::digest(data).to_vec(),
        DigestAlgorithm::Sha256 => Sha256::digest(data).to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1.
    const HEADER: &str = r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=ALG, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="RESPONSE", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;

    fn expected(algorithm: DigestAlgorithm) -> Expected<'static> {
        Expected {
            username: "Mufasa",
            password: "Circle of Life",
            realm: "http-auth@example.org",
            algorithm,
            method: "GET",
            uri: "/dir/index.html",
        }
    }

    fn header(alg: &str, response: &str) -> Credentials {
        let text = HEADER.replace("ALG", alg).replace("RESPONSE", response);
        parse(&text).unwrap().unwrap()
    }

    #[test]
    fn the_rfc_examples_verify() {
        let md5 = header("MD5", "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(verify(&md5, &expected(DigestAlgorithm::Md5)), Ok(()));
        let sha = header(
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        );
        assert_eq!(verify(&sha, &expected(DigestAlgorithm::Sha256)), Ok(()));
        // The right response under the other algorithm is not accepted.
        assert!(verify(&md5, &expected(DigestAlgorithm::Sha256)).is_err());
    }

    #[test]
    fn any_change_fails_and_says_what() {
        let e = expected(DigestAlgorithm::Md5);
        let good = || header("MD5", "8ca523f5e9506fed4657c9700eebdbec");
        type Change = fn(&mut Credentials);
        let cases: [(&str, Change); 7] = [
            ("unknown user", |c| c.username = "Scar".into()),
            ("realm", |c| c.realm = "other".into()),
            ("uri", |c| c.uri = "/dir/index.html?x=1".into()),
            ("qop", |c| c.qop = None),
            ("nc", |c| c.nc = Some("1".into())),
            ("cnonce", |c| c.cnonce = None),
            ("wrong response", |c| c.nonce = "another".into()),
        ];
        for (want, change) in cases {
            let mut c = good();
            change(&mut c);
            let err = verify(&c, &e).unwrap_err();
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn other_schemes_and_broken_headers() {
        assert!(parse("Basic YWRtaW46YWRtaW4=").is_none());
        assert!(parse("digest").unwrap().is_err());
        assert!(parse(r#"Digest username="a"#).unwrap().is_err());
        assert!(parse(r#"Digest username="a" realm="b""#).unwrap().is_err());
        let c = parse(r#"Digest username="a\"b", realm=r, nonce=n, uri="/x", response=00"#)
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "a\"b");
        assert_eq!(c.realm, "r");
    }

    #[test]
    fn a_challenge_names_its_algorithm_and_staleness() {
        let c = challenge("R", "N", "O", DigestAlgorithm::Sha256, true);
        assert_eq!(
            c,
            r#"Digest realm="R", qop="auth", nonce="N", opaque="O", algorithm=SHA-256, stale="true""#
        );
        assert!(challenge("R", "N", "O", DigestAlgorithm::Md5, false).contains("algorithm=MD5,"));
    }
}
