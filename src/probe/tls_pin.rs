//! Trust without a CA, for the self-signed certificates of internal
//! services: a pinned public key (`tls_pin_sha256`, the SHA-256 of a
//! certificate's SubjectPublicKeyInfo, as HPKP and curl's `--pinnedpubkey`
//! write it) or the exact certificate given as `ca_file`. Either replaces
//! the issuer check only: the name and the validity dates of the server's
//! certificate are still checked, and the handshake still proves that the
//! server holds the key.

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, OtherError};
use sha2::{Digest, Sha256};

/// The SHA-256 of a certificate's SubjectPublicKeyInfo.
pub type Pin = [u8; 32];

/// The pin of a DER certificate; `None` when it does not parse.
pub fn spki_pin(der: &[u8]) -> Option<Pin> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(Sha256::digest(cert.tbs_certificate.subject_pki.raw).into())
}

/// A pin as people write it: base64 (`sha256//` prefix optional, as curl
/// writes it) or 64 hex digits, with or without colons.
pub fn parse_pin(written: &str) -> Result<Pin, String> {
    let s = written.trim();
    let s = s.strip_prefix("sha256//").unwrap_or(s);
    let hexed: String = s.chars().filter(|c| *c != ':').collect();
    if hexed.len() == 64 && hexed.chars().all(|c| c.is_ascii_hexdigit()) {
        let mut pin = [0u8; 32];
        hex::decode_to_slice(&hexed, &mut pin).map_err(|e| e.to_string())?;
        return Ok(pin);
    }
    match base64_decode(s) {
        Some(bytes) if bytes.len() == 32 => Ok(bytes.try_into().expect("32 bytes")),
        _ => Err(format!(
            "'{}' is not a SHA-256 pin: write 44 base64 characters or 64 hex digits",
            crate::config::error::shorten(written, 80)
        )),
    }
}

/// A pin as it is shown in messages (base64, as curl and HPKP write it).
pub fn show_pin(pin: &Pin) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(44);
    for chunk in pin.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// No certificate of the presented chain has a pinned key.
#[derive(Debug, thiserror::Error)]
#[error("no certificate of the chain has a pinned public key")]
pub struct NoPinMatched;

/// What still holds for a certificate trusted by pin or by being the exact
/// one configured: it is valid now and for `name`.
pub fn check_leaf(
    der: &CertificateDer<'_>,
    name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let invalid = rustls::Error::InvalidCertificate;
    let info = super::tls_util::cert_info(der).ok_or(invalid(CertificateError::BadEncoding))?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now > info.not_after {
        return Err(invalid(CertificateError::Expired));
    }
    if now < info.not_before {
        return Err(invalid(CertificateError::NotValidYet));
    }
    let cert = webpki::EndEntityCert::try_from(der)
        .map_err(|e| invalid(CertificateError::Other(OtherError(std::sync::Arc::new(e)))))?;
    cert.verify_is_valid_for_subject_name(name)
        .map_err(|_| invalid(CertificateError::NotValidForName))
}

/// Whether any certificate of the chain has one of `pins`.
pub fn chain_matches(chain: &[&CertificateDer<'_>], pins: &[Pin]) -> bool {
    chain
        .iter()
        .filter_map(|c| spki_pin(c))
        .any(|p| pins.contains(&p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_from_base64_and_hex_alike() {
        let pin: Pin = Sha256::digest(b"spki").into();
        let b64 = show_pin(&pin);
        assert_eq!(b64.len(), 44);
        assert_eq!(parse_pin(&b64), Ok(pin));
        assert_eq!(parse_pin(&format!("sha256//{b64}")), Ok(pin));
        assert_eq!(parse_pin(&hex::encode(pin)), Ok(pin));
        assert!(parse_pin("abc").unwrap_err().contains("not a SHA-256 pin"));
    }
}
