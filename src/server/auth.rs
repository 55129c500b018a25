//! Checking credentials: a bearer token or a basic user and password, the
//! scheme in any case (RFC 7235), compared so that the time tells nothing
//! about the secret, not even its length (both sides are hashed to 32
//! bytes first, then compared in constant time). [`read_guard`] guards the
//! read endpoints when `server.read_auth` is set.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;
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

/// Let a request to a read endpoint through when `server.read_auth` is
/// not set, or when it carries one of its credentials (or the API token).
pub async fn read_guard(State(s): State<AppState>, request: Request, next: Next) -> Response {
    let config = s.config();
    let Some(auth) = &config.server.read_auth else {
        return next.run(request).await;
    };
    let headers = request.headers();
    let tokens = [auth.bearer_token.as_ref(), config.server.api_token.as_ref()];
    let bearer_ok = tokens
        .into_iter()
        .flatten()
        .any(|t| bearer(headers, t).is_ok());
    let basic_ok = auth.basic.as_ref().is_some_and(|(user, password)| {
        credentials(headers, "basic").is_some_and(|given| {
            let expected = base64(format!("{user}:{}", password.expose()).as_bytes());
            same_secret(given.as_bytes(), expected.as_bytes())
        })
    });
    if bearer_ok || basic_ok {
        return next.run(request).await;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "this endpoint needs the credentials of server.read_auth (Authorization: Bearer or Basic)\n",
    )
        .into_response();
    if auth.basic.is_some() {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"continuity\""),
        );
    }
    response
}

/// Standard base64 with padding (RFC 4648), for comparing Basic
/// credentials in their encoded form.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ABC[(n >> shift) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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
    fn basic_credentials_are_compared_in_their_base64_form() {
        assert_eq!(base64(b"prometheus:s3cret"), "cHJvbWV0aGV1czpzM2NyZXQ=");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn the_comparison_does_not_depend_on_the_length_of_the_token() {
        // Lengths differ, yet the comparison runs over 32 bytes either
        // way: the digests, never the secrets themselves.
        assert!(!same_secret(b"a", b"a much longer token"));
        assert!(same_secret(b"a much longer token", b"a much longer token"));
    }
}
