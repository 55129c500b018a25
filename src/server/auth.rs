//! Checking a bearer token: the scheme in any case (RFC 7235), and a
//! comparison whose time tells nothing about the token, not even its length
//! (both sides are hashed to 32 bytes first, then compared in constant
//! time).

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

use crate::config::Secret;

/// Why a request was not let in, as a sentence for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("missing bearer token: send Authorization: Bearer <server.api_token>")]
    Missing,
    #[error("wrong bearer token (Authorization: Bearer <server.api_token>)")]
    Wrong,
}

/// The credentials of an `Authorization` header of `scheme` (any case).
fn credentials<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.trim_start().split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| rest.trim_matches(' '))
}

/// Whether `headers` carry `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap, token: &Secret) -> Result<(), Denied> {
    let given = credentials(headers, "bearer").ok_or(Denied::Missing)?;
    if same_secret(given.as_bytes(), token.expose().as_bytes()) {
        Ok(())
    } else {
        Err(Denied::Wrong)
    }
}

/// Constant-time equality of two secrets of any lengths: their SHA-256
/// digests, of equal length, are compared with no early exit.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let token = Secret::new("s3cret");
        for v in [
            "Bearer s3cret",
            "bearer s3cret",
            "BEARER s3cret",
            "bEaReR  s3cret",
        ] {
            assert_eq!(bearer(&with(v), &token), Ok(()), "{v}");
        }
    }

    #[test]
    fn a_wrong_missing_or_other_scheme_token_is_refused() {
        let token = Secret::new("s3cret");
        assert_eq!(bearer(&with("Bearer s3cre"), &token), Err(Denied::Wrong));
        assert_eq!(bearer(&with("Bearer s3cret2"), &token), Err(Denied::Wrong));
        assert_eq!(bearer(&with("Basic s3cret"), &token), Err(Denied::Missing));
        assert_eq!(bearer(&HeaderMap::new(), &token), Err(Denied::Missing));
    }

    #[test]
    fn the_comparison_does_not_depend_on_the_length_of_the_token() {
        // Lengths differ, yet the comparison runs over 32 bytes either
        // way: the digests, never the secrets themselves.
        assert!(!same_secret(b"a", b"a much longer token"));
        assert!(same_secret(b"a much longer token", b"a much longer token"));
    }
}
