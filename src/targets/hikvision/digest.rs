//! HTTP Digest authentication (RFC 7616) as Hikvision terminals speak it: the challenge a 401
//! carries (`WWW-Authenticate: Digest realm=..., qop="auth", nonce=...`), and the
//! `Authorization` header answering it, for MD5 and SHA-256 and their `-sess` variants.
//!
//! Pure: no I/O. The nonce's lifetime and reuse are the client's business (`super::Auth`).

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// The hash a challenge names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_uppercase().as_str() {
            "MD5" => Some(Self::Md5),
            "MD5-SESS" => Some(Self::Md5Sess),
            "SHA-256" => Some(Self::Sha256),
            "SHA-256-SESS" => Some(Self::Sha256Sess),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Self::Md5 | Self::Md5Sess => hex(&Md5::digest(data.as_bytes())),
            Self::Sha256 | Self::Sha256Sess => hex(&Sha256::digest(data.as_bytes())),
        }
    }

    fn sess(self) -> bool {
        matches!(self, Self::Md5Sess | Self::Sha256Sess)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A parsed `WWW-Authenticate: Digest ...` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub(crate) realm: String,
    pub(crate) nonce: String,
    pub(crate) opaque: Option<String>,
    pub(crate) algorithm: Algorithm,
    /// The server marked the nonce the request used as stale (not the credentials as wrong).
    pub(crate) stale: bool,
}

/// Why a challenge could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChallengeError {
    #[error("the terminal asks for `{0}` authentication, not Digest")]
    NotDigest(String),
    #[error("the Digest challenge has no {0}")]
    Missing(&'static str),
    #[error("the Digest challenge names the algorithm `{0}`, which is not MD5 or SHA-256")]
    Algorithm(String),
    #[error("the Digest challenge offers qop `{0}`, not `auth`")]
    Qop(String),
}

impl Challenge {
    /// Reads one `WWW-Authenticate` header value. A server may send several challenges in
    /// separate headers; the caller picks the first that parses.
    pub(crate) fn parse(header: &str) -> Result<Challenge, ChallengeError> {
        let header = header.trim();
        let (scheme, rest) = header
            .split_once(char::is_whitespace)
            .unwrap_or((header, ""));
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(ChallengeError::NotDigest(scheme.to_string()));
        }
        let params = params(rest);
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let realm = get("realm").ok_or(ChallengeError::Missing("realm"))?;
        let nonce = get("nonce")
            .filter(|n| !n.is_empty())
            .ok_or(ChallengeError::Missing("nonce"))?;
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(&a).ok_or(ChallengeError::Algorithm(a))?,
        };
        // RFC 2069 servers send no qop; every terminal on record sends `auth` (possibly among
        // others). Without `auth`, the answer would be computed another way: refuse clearly.
        if let Some(qop) = get("qop")
            && !qop
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth"))
        {
            return Err(ChallengeError::Qop(qop));
        }
        Ok(Challenge {
            realm,
            nonce,
            opaque: get("opaque"),
            algorithm,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The `Authorization` header value for one request: `uri` is the request target exactly
    /// as sent (path and query), `nc` counts the uses of this nonce from 1, `cnonce` is the
    /// client's fresh random value.
    pub(crate) fn authorization(
        &self,
        credentials: (&str, &str),
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let (username, password) = credentials;
        let a = self.algorithm;
        let mut ha1 = a.hash(&format!("{username}:{}:{password}", self.realm));
        if a.sess() {
            ha1 = a.hash(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = a.hash(&format!("{method}:{uri}"));
        let nc = format!("{nc:08x}");
        let response = a.hash(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce));
        let mut header = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", \
             algorithm={}, qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\"",
            quote(username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
            a.as_str(),
        );
        if let Some(opaque) = &self.opaque {
            header.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
        }
        header
    }
}

/// Escapes a value for a quoted-string.
fn quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `key=value` and `key="quoted, value"` pairs, comma-separated, as RFC 7235's auth-params.
fn params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_string();
        if key.is_empty() && chars.peek().is_none() {
            return out;
        }
        if chars.next_if_eq(&'=').is_none() {
            // A bare token (no value): skip it.
            if key.is_empty() {
                chars.next();
            }
            continue;
        }
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let value = if chars.next_if_eq(&'"').is_some() {
            let mut v = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => v.extend(chars.next()),
                    '"' => break,
                    c => v.push(c),
                }
            }
            v
        } else {
            std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string()
        };
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 section 3.9.1's example.
    const RFC_CHALLENGE_MD5: &str = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    const RFC_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn response_of(header: &str) -> String {
        header
            .split("response=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_string()
    }

    #[test]
    fn the_rfc_7616_examples_give_the_rfcs_responses() {
        let md5 = Challenge::parse(RFC_CHALLENGE_MD5).unwrap();
        assert_eq!(md5.realm, "http-auth@example.org");
        assert_eq!(md5.algorithm, Algorithm::Md5);
        let header = md5.authorization(
            ("Mufasa", "Circle of Life"),
            "GET",
            "/dir/index.html",
            1,
            RFC_CNONCE,
        );
        assert_eq!(response_of(&header), "8ca523f5e9506fed4657c9700eebdbec");
        assert!(header.contains("nc=00000001"), "{header}");
        assert!(
            header.contains(r#"opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#),
            "{header}"
        );

        let sha = Challenge::parse(&RFC_CHALLENGE_MD5.replace("MD5", "SHA-256")).unwrap();
        assert_eq!(sha.algorithm, Algorithm::Sha256);
        let header = sha.authorization(
            ("Mufasa", "Circle of Life"),
            "GET",
            "/dir/index.html",
            1,
            RFC_CNONCE,
        );
        assert_eq!(
            response_of(&header),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert!(header.contains("algorithm=SHA-256"), "{header}");
    }

    #[test]
    fn a_terminals_challenge_parses_with_its_realm_and_stale_flag() {
        let c = Challenge::parse(
            r#"Digest qop="auth", realm="IP Camera(C2183)", nonce="4e6a4d354e7a46434f55553652", stale="FALSE""#,
        )
        .unwrap();
        assert_eq!(c.realm, "IP Camera(C2183)");
        assert_eq!(c.nonce, "4e6a4d354e7a46434f55553652");
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert!(!c.stale);
        assert_eq!(c.opaque, None);
        let stale =
            Challenge::parse(r#"Digest realm="r", nonce="n", qop=auth, stale=TRUE"#).unwrap();
        assert!(stale.stale);
    }

    #[test]
    fn sess_variants_hash_the_nonces_into_ha1() {
        let c = Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth", algorithm=MD5-sess"#)
            .unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5Sess);
        // HA1 = MD5(MD5(u:r:p):n:c); computed by hand with the same formula over the parts.
        let ha1 = Algorithm::Md5.hash(&format!("{}:n:c", Algorithm::Md5.hash("u:r:p")));
        let ha2 = Algorithm::Md5.hash("PUT:/x");
        let want = Algorithm::Md5.hash(&format!("{ha1}:n:00000002:c:auth:{ha2}"));
        let header = c.authorization(("u", "p"), "PUT", "/x", 2, "c");
        assert_eq!(response_of(&header), want);
        assert!(header.contains("algorithm=MD5-sess"), "{header}");
    }

    #[test]
    fn challenges_that_cannot_be_answered_say_why() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="x""#),
            Err(ChallengeError::NotDigest("Basic".into()))
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="x""#),
            Err(ChallengeError::Missing("nonce"))
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="x", nonce="n", algorithm=SHA-512-256"#),
            Err(ChallengeError::Algorithm("SHA-512-256".into()))
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="x", nonce="n", qop="auth-int""#),
            Err(ChallengeError::Qop("auth-int".into()))
        );
    }

    #[test]
    fn quoted_values_keep_commas_and_escapes() {
        let c = Challenge::parse(r#"Digest realm="a, \"b\"", nonce=abc , opaque="""#).unwrap();
        assert_eq!(c.realm, r#"a, "b""#);
        assert_eq!(c.nonce, "abc");
        assert_eq!(c.opaque.as_deref(), Some(""));
        let header = c.authorization(("u", "p"), "GET", "/", 1, "c");
        assert!(header.contains(r#"realm="a, \"b\"""#), "{header}");
    }
}
