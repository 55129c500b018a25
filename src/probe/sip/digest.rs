//! Digest access authentication for SIP (RFC 2617 and RFC 7616 as used by
//! RFC 3261 22.4 and RFC 8760): reading `WWW-Authenticate` /
//! `Proxy-Authenticate` challenges and computing `Authorization` values
//! with MD5 or SHA-256, with or without `qop`.

use md5::Md5;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "MD5-SESS" => Some(Algorithm::Md5Sess),
            "SHA-256" => Some(Algorithm::Sha256),
            "SHA-256-SESS" => Some(Algorithm::Sha256Sess),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn strength(self) -> u8 {
        match self {
            Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
            Algorithm::Md5 | Algorithm::Md5Sess => 1,
        }
    }

    fn session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => {
                hex::encode(Sha256::digest(data.as_bytes()))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    Auth,
    AuthInt,
}

/// One digest challenge from a 401 or 407.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The protection chosen from the server's offer (`auth` preferred);
    /// `None` is the RFC 2069 compatible form without `qop`.
    pub qop: Option<Qop>,
    pub stale: bool,
    pub userhash: bool,
}

/// Split `key=value, key="quoted, value"` auth-params.
fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && *c != ',') {
            key.push(c);
        }
        if key.trim().is_empty() && chars.peek().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'=').is_some() {
            while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
            if chars.next_if_eq(&'"').is_some() {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
                while chars.next_if(|c| *c != ',').is_some() {}
            } else {
                while let Some(c) = chars.next_if(|c| *c != ',') {
                    value.push(c);
                }
            }
        }
        out.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
        if chars.peek().is_none() {
            break;
        }
    }
    out
}

/// Why no challenge could be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeError {
    /// Not a Digest challenge (e.g. `Basic`), or no realm/nonce.
    NotDigest,
    UnsupportedAlgorithm(String),
    UnsupportedQop(String),
}

impl std::fmt::Display for ChallengeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChallengeError::NotDigest => f.write_str("no Digest challenge with a realm and nonce"),
            ChallengeError::UnsupportedAlgorithm(a) => {
                write!(
                    f,
                    "digest algorithm {a} is not supported (MD5, SHA-256 and their -sess forms are)"
                )
            }
            ChallengeError::UnsupportedQop(q) => {
                write!(f, "qop=\"{q}\" is not supported (auth and auth-int are)")
            }
        }
    }
}

pub fn parse_challenge(header: &str) -> Result<Challenge, ChallengeError> {
    let header = header.trim();
    let (scheme, rest) = header.split_once([' ', '\t']).unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(ChallengeError::NotDigest);
    }
    let params = auth_params(rest);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (Some(realm), Some(nonce)) = (get("realm"), get("nonce")) else {
        return Err(ChallengeError::NotDigest);
    };
    let algorithm = match get("algorithm") {
        None => Algorithm::Md5,
        Some(a) => {
            Algorithm::parse(a).ok_or_else(|| ChallengeError::UnsupportedAlgorithm(a.into()))?
        }
    };
    let qop = match get("qop") {
        None => None,
        Some(q) => {
            let offered: Vec<String> = q
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect();
            if offered.iter().any(|o| o == "auth") {
                Some(Qop::Auth)
            } else if offered.iter().any(|o| o == "auth-int") {
                Some(Qop::AuthInt)
            } else {
                return Err(ChallengeError::UnsupportedQop(q.into()));
            }
        }
    };
    Ok(Challenge {
        realm: realm.to_string(),
        nonce: nonce.to_string(),
        opaque: get("opaque").map(str::to_string),
        algorithm,
        qop,
        stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        userhash: get("userhash").is_some_and(|s| s.eq_ignore_ascii_case("true")),
    })
}

/// The strongest challenge we can answer among several (RFC 8760 3:
/// servers list SHA-256 before MD5; we prefer it whatever the order).
pub fn best<'a>(headers: impl IntoIterator<Item = &'a str>) -> Result<Challenge, ChallengeError> {
    let mut first_error = None;
    let mut best: Option<Challenge> = None;
    for h in headers {
        match parse_challenge(h) {
            Ok(c) => {
                if best
                    .as_ref()
                    .is_none_or(|b| c.algorithm.strength() > b.algorithm.strength())
                {
                    best = Some(c);
                }
            }
            Err(e) => {
                if first_error.is_none() || matches!(first_error, Some(ChallengeError::NotDigest)) {
                    first_error = Some(e);
                }
            }
        }
    }
    best.ok_or(first_error.unwrap_or(ChallengeError::NotDigest))
}

/// Everything that goes into one `Authorization` value.
pub struct Answer<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    pub body: &'a [u8],
    pub nc: u32,
    pub cnonce: &'a str,
}

/// The `response=` value (RFC 7616 3.4.1).
pub fn response(ch: &Challenge, a: &Answer<'_>) -> String {
    let alg = ch.algorithm;
    let mut ha1 = alg.hash(&format!("{}:{}:{}", a.username, ch.realm, a.password));
    if alg.session() {
        ha1 = alg.hash(&format!("{ha1}:{}:{}", ch.nonce, a.cnonce));
    }
    let ha2 = match ch.qop {
        Some(Qop::AuthInt) => {
            let body_hash = match alg {
                Algorithm::Md5 | Algorithm::Md5Sess => hex::encode(Md5::digest(a.body)),
                Algorithm::Sha256 | Algorithm::Sha256Sess => hex::encode(Sha256::digest(a.body)),
            };
            alg.hash(&format!("{}:{}:{body_hash}", a.method, a.uri))
        }
        _ => alg.hash(&format!("{}:{}", a.method, a.uri)),
    };
    match ch.qop {
        None => alg.hash(&format!("{ha1}:{}:{ha2}", ch.nonce)),
        Some(q) => alg.hash(&format!(
            "{ha1}:{}:{:08x}:{}:{}:{ha2}",
            ch.nonce,
            a.nc,
            a.cnonce,
            qop_name(q)
        )),
    }
}

fn qop_name(q: Qop) -> &'static str {
    match q {
        Qop::Auth => "auth",
        Qop::AuthInt => "auth-int",
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The full `Authorization` / `Proxy-Authorization` header value.
pub fn authorization(ch: &Challenge, a: &Answer<'_>) -> String {
    let username = if ch.userhash {
        ch.algorithm.hash(&format!("{}:{}", a.username, ch.realm))
    } else {
        a.username.to_string()
    };
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{}\", algorithm={}",
        quote(&username),
        quote(&ch.realm),
        quote(&ch.nonce),
        quote(a.uri),
        response(ch, a),
        ch.algorithm.name()
    );
    if let Some(q) = ch.qop {
        out.push_str(&format!(
            ", qop={}, nc={:08x}, cnonce={}",
            qop_name(q),
            a.nc,
            quote(a.cnonce)
        ));
    }
    if let Some(o) = &ch.opaque {
        out.push_str(&format!(", opaque={}", quote(o)));
    }
    if ch.userhash {
        out.push_str(", userhash=true");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_with_qop_matches_rfc_2617_section_3_5() {
        let ch = parse_challenge(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        assert_eq!(ch.algorithm, Algorithm::Md5);
        assert_eq!(ch.qop, Some(Qop::Auth));
        let a = Answer {
            username: "Mufasa",
            password: "Circle Of Life",
            method: "GET",
            uri: "/dir/index.html",
            body: b"",
            nc: 1,
            cnonce: "0a4f113b",
        };
        assert_eq!(response(&ch, &a), "6629fae49393a05397450978507c4ef1");
        let header = authorization(&ch, &a);
        assert!(header.contains("nc=00000001"), "{header}");
        assert!(header.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#));
    }

    fn rfc7616(algorithm: &str) -> Challenge {
        parse_challenge(&format!(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
        ))
        .unwrap()
    }

    const RFC7616_ANSWER: Answer<'static> = Answer {
        username: "Mufasa",
        password: "Circle of Life",
        method: "GET",
        uri: "/dir/index.html",
        body: b"",
        nc: 1,
        cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    };

    #[test]
    fn sha256_matches_rfc_7616_section_3_9_1() {
        let ch = rfc7616("SHA-256");
        assert_eq!(ch.algorithm, Algorithm::Sha256);
        assert_eq!(
            response(&ch, &RFC7616_ANSWER),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn md5_matches_rfc_7616_section_3_9_1() {
        assert_eq!(
            response(&rfc7616("MD5"), &RFC7616_ANSWER),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn without_qop_the_rfc_2069_form_is_used() {
        let ch = parse_challenge(r#"Digest realm="r", nonce="n""#).unwrap();
        assert_eq!(ch.qop, None);
        let a = Answer {
            username: "u",
            password: "p",
            method: "REGISTER",
            uri: "sip:r",
            body: b"",
            nc: 1,
            cnonce: "c",
        };
        let ha1 = hex::encode(Md5::digest(b"u:r:p"));
        let ha2 = hex::encode(Md5::digest(b"REGISTER:sip:r"));
        let want = hex::encode(Md5::digest(format!("{ha1}:n:{ha2}").as_bytes()));
        assert_eq!(response(&ch, &a), want);
        let header = authorization(&ch, &a);
        assert!(!header.contains("qop"), "{header}");
        assert!(!header.contains("cnonce"), "{header}");
    }

    #[test]
    fn the_strongest_answerable_challenge_is_chosen() {
        let md5 = r#"Digest realm="r", nonce="1", algorithm=MD5"#;
        let sha = r#"Digest realm="r", nonce="2", algorithm=SHA-256"#;
        let odd = r#"Digest realm="r", nonce="3", algorithm=SHA-512-256"#;
        assert_eq!(best([md5, odd, sha]).unwrap().nonce, "2");
        assert_eq!(best(["Basic realm=\"r\"", md5]).unwrap().nonce, "1");
        assert_eq!(
            best([odd]),
            Err(ChallengeError::UnsupportedAlgorithm("SHA-512-256".into()))
        );
        assert_eq!(best(["Basic realm=\"x\""]), Err(ChallengeError::NotDigest));
        assert_eq!(
            parse_challenge(r#"Digest realm="r", nonce="n", qop="auth-conf""#),
            Err(ChallengeError::UnsupportedQop("auth-conf".into()))
        );
    }

    proptest::proptest! {
        #[test]
        fn challenge_parsing_never_panics(s in "(Digest )?[a-z=\",\\ -]{0,80}|\\PC{0,60}") {
            if let Ok(ch) = parse_challenge(&s) {
                let _ = authorization(&ch, &RFC7616_ANSWER);
            }
            let _ = best([s.as_str()]);
        }
    }

    #[test]
    fn quoted_values_may_hold_commas_and_escapes() {
        let ch = parse_challenge(r#"Digest realm="a, \"b\"",nonce=abc ,stale=TRUE"#).unwrap();
        assert_eq!(ch.realm, "a, \"b\"");
        assert_eq!(ch.nonce, "abc");
        assert!(ch.stale);
    }
}
