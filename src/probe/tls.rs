//! TLS probe: handshake with `host:port` on a fresh connection and report
//! the certificate chain, its earliest expiry and whether it is trusted.

use std::sync::Arc;

use crate::config::{Location, Spanned};
use rustls::pki_types::ServerName;
use serde::Deserialize;

use super::net::{checked_target, connect};
use super::parity::{self, CertificateFacts, CompareSpec, Observed, OldSide};
use super::tls_pin;
use super::tls_util::{self, CaRoots, TlsClient, Trust, format_unix};
use super::{FailureReason, ProbeContext, ProbeError, ProbeOutcome, Prober, SpecDigest};
use crate::config::Validator;

#[derive(Debug, Clone, PartialEq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    /// `host:port`, e.g. `portal.gemeente.nl:443`.
    pub target: Spanned<String>,
    /// SNI and the name the certificate must cover; defaults to the host.
    #[serde(default)]
    pub server_name: Option<Spanned<String>>,
    /// `false` accepts any certificate (its expiry is still reported).
    #[serde(default = "yes")]
    pub tls_verify: bool,
    /// PEM file of the CA(s) to trust instead of the public roots.
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    /// SHA-256 pins of public keys to trust instead of any CA.
    #[serde(default)]
    pub tls_pin_sha256: Option<Spanned<Vec<Spanned<String>>>>,
    /// Fail with `expectation` when the chain expires sooner than this.
    #[serde(default)]
    pub min_days_valid: Option<u32>,
    /// The old endpoint, probed side by side with this one while old and
    /// new run in parallel.
    #[serde(default)]
    pub compare_with: Option<Spanned<String>>,
    /// What parity compares; the kind's default aspects when absent.
    #[serde(default)]
    pub compare: Option<Spanned<CompareSpec>>,
}

fn yes() -> bool {
    true
}

/// A compiled tls check.
#[derive(Debug)]
pub struct TlsProbe {
    digest: SpecDigest,
    host: String,
    port: u16,
    name: ServerName<'static>,
    client: Arc<TlsClient>,
    min_days_valid: Option<u32>,
    /// The old endpoint and what to compare with it (`compare_with`).
    parity: Option<Box<OldSide<TlsProbe>>>,
}

impl TlsProbe {
    /// The old side, for a `compare_with` check.
    pub fn parity(&self) -> Option<&OldSide<TlsProbe>> {
        self.parity.as_deref()
    }
}

impl Prober for TlsProbe {
    type Spec = TlsSpec;

    fn compile(spec: TlsSpec, at: Location, v: &mut Validator) -> Option<TlsProbe> {
        let target = checked_target(&spec.target, v);
        let name = match (&spec.server_name, &target) {
            (Some(n), _) => checked_server_name(n, v),
            (None, Some((host, _))) => {
                checked_server_name(&Spanned::new(host.clone(), spec.target.referenced), v)
            }
            (None, None) => None,
        };
        let parity = parity::compile_old_side(
            parity::TLS,
            spec.compare_with.as_ref(),
            spec.compare.as_ref(),
            &spec.target.value,
            |with| TlsSpec {
                target: with,
                compare_with: None,
                compare: None,
                ..spec.clone()
            },
            at,
            v,
        );
        let client = tls_client(
            spec.ca_file.as_ref(),
            spec.tls_pin_sha256.as_ref(),
            spec.tls_verify,
            &[],
            at,
            v,
        )?;
        let ((host, port), parity) = (target?, parity?);
        Some(TlsProbe {
            digest: SpecDigest::of(&(&spec, client.ca_content())),
            host,
            port,
            name: name?,
            client,
            min_days_valid: spec.min_days_valid,
            parity,
        })
    }

    fn digest(&self) -> SpecDigest {
        self.digest
    }

    async fn probe(&self, ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
        let mut outcome = ProbeOutcome::default();
        let Some(tcp) = connect(&self.host, self.port, ctx, &mut outcome).await else {
            return Ok(outcome);
        };
        let hs = tls_util::handshake(tcp, &self.client, self.name.clone(), ctx, &mut outcome).await;
        if ctx.details {
            for (k, val) in hs.chain.details() {
                outcome.detail(k, val);
            }
        }
        if ctx.observe
            && let Some(leaf) = hs.chain.leaf()
        {
            let mut sans = leaf.dns_names.clone();
            sans.sort();
            sans.dedup();
            outcome.observed = Some(Box::new(Observed {
                certificate: Some(CertificateFacts {
                    issuer: leaf.issuer.clone(),
                    sans,
                    not_after: leaf.not_after,
                }),
                ..Observed::default()
            }));
        }
        if hs.stream.is_none() {
            return Ok(outcome);
        }
        if let (Some(min_days), Some(earliest)) = (self.min_days_valid, outcome.cert_not_after) {
            min_days_valid(min_days, earliest, &mut outcome);
        }
        Ok(outcome)
    }
}

/// Check a `server_name` (or a host used as one).
pub(crate) fn checked_server_name(
    name: &Spanned<String>,
    v: &mut Validator,
) -> Option<ServerName<'static>> {
    match tls_util::server_name(&name.value) {
        Ok(n) => Some(n),
        Err(msg) => {
            v.error(
                name.referenced,
                msg,
                Some("write a DNS name like portal.gemeente.nl or an IP address".into()),
            );
            None
        }
    }
}

/// The shared TLS client a spec's `tls_verify` and `ca_file` ask for, the
/// file relative to the configuration file. `None` means an error was
/// recorded.
pub(crate) fn tls_client(
    ca_file: Option<&Spanned<String>>,
    pins: Option<&Spanned<Vec<Spanned<String>>>>,
    tls_verify: bool,
    alpn: &[&[u8]],
    at: Location,
    v: &mut Validator,
) -> Option<Arc<TlsClient>> {
    let trust = match pins {
        Some(pins) => Trust::Pins(pinned_keys(pins, ca_file.is_some(), tls_verify, v)?),
        None => Trust::from_spec(tls_verify, ca_roots(ca_file, tls_verify, v)?),
    };
    match TlsClient::shared(trust, alpn) {
        Ok(client) => Some(client),
        Err(msg) => {
            v.error(at, msg, None);
            None
        }
    }
}

/// A spec's `tls_pin_sha256`, checked; `None` means an error was recorded.
fn pinned_keys(
    pins: &Spanned<Vec<Spanned<String>>>,
    with_ca_file: bool,
    tls_verify: bool,
    v: &mut Validator,
) -> Option<Arc<[tls_pin::Pin]>> {
    let mut ok = true;
    if with_ca_file || !tls_verify {
        v.error(
            pins.referenced,
            "tls_pin_sha256 replaces the CA check: it cannot be combined with ca_file or tls_verify: false",
            Some("keep tls_pin_sha256 alone, or ca_file alone (a self-signed certificate given as ca_file is accepted as it is)".into()),
        );
        ok = false;
    }
    if pins.value.is_empty() {
        v.error(
            pins.referenced,
            "tls_pin_sha256 is empty",
            Some("list the SHA-256 of the server's public key; the error of a probe without it shows the key's pin".into()),
        );
        ok = false;
    }
    let mut parsed = Vec::new();
    for pin in &pins.value {
        match tls_pin::parse_pin(&pin.value) {
            Ok(p) => parsed.push(p),
            Err(msg) => {
                v.error(
                    pin.referenced,
                    msg,
                    Some("e.g. openssl x509 -pubkey -noout -in cert.pem | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64".into()),
                );
                ok = false;
            }
        }
    }
    ok.then(|| parsed.into())
}

/// Load a spec's `ca_file`, relative to the configuration file. `None`
/// means an error was recorded; `Some(None)` means no file was given.
fn ca_roots(
    ca_file: Option<&Spanned<String>>,
    tls_verify: bool,
    v: &mut Validator,
) -> Option<Option<Arc<CaRoots>>> {
    let Some(file) = ca_file else {
        return Some(None);
    };
    if !tls_verify {
        v.error(
            file.referenced,
            "ca_file has no effect with tls_verify: false",
            Some("remove ca_file, or remove tls_verify: false to verify against it".into()),
        );
        return None;
    }
    let path = tls_util::config_relative(v.file(), &file.value);
    match tls_util::shared_ca_file(&path) {
        Ok(roots) => Some(Some(roots)),
        Err(msg) => {
            v.error(
                file.referenced,
                format!("ca_file: {msg}"),
                Some(
                    "give a PEM file with the CA certificate(s); relative paths are relative to this configuration file"
                        .into(),
                ),
            );
            None
        }
    }
}

/// Fail with `expectation` when the chain's earliest expiry is closer than
/// `min_days` days.
fn min_days_valid(min_days: u32, earliest: i64, outcome: &mut ProbeOutcome) {
    let now = jiff::Timestamp::now().as_second();
    let left_days = (earliest - now) / 86400;
    outcome.detail("days_valid", left_days.to_string());
    if earliest - now < i64::from(min_days) * 86400 {
        let when = if earliest < now {
            format!("expired on {}", format_unix(earliest))
        } else {
            format!("expires on {} (in {left_days} days)", format_unix(earliest))
        };
        outcome.fail(
            FailureReason::Expectation,
            format!("certificate chain {when}, less than min_days_valid {min_days}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(yaml: &str) -> (Option<TlsProbe>, Vec<String>) {
        crate::probe::compile_yaml("/etc/continuity/checks.yaml", yaml)
    }

    #[test]
    fn defaults_verify_against_public_roots() {
        let (probe, issues) = validated("target: portal.gemeente.nl:443\n");
        assert!(issues.is_empty(), "{issues:?}");
        let c = probe.expect("compiled");
        assert!(matches!(c.client.trust(), Trust::PublicRoots));
        assert_eq!(c.name, ServerName::try_from("portal.gemeente.nl").unwrap());
    }

    #[test]
    fn a_ca_file_rotated_under_the_same_path_changes_the_digest() {
        use crate::probe::Prober;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("checks.yaml").display().to_string();
        let compile = |ca: &str| {
            std::fs::write(dir.path().join("ca.pem"), tls_util::tests::ca_pem(ca)).unwrap();
            let (probe, issues) = crate::probe::compile_yaml::<TlsProbe>(
                &config,
                "target: a.nl:443\nca_file: ca.pem\n",
            );
            assert!(issues.is_empty(), "{issues:?}");
            probe.unwrap().digest()
        };
        let before = compile("before");
        assert_ne!(before, compile("rotated"));
    }

    #[test]
    fn unreadable_ca_file_is_an_error_at_its_place_relative_to_the_config() {
        let (_, issues) = validated("target: a.nl:443\nca_file: certs/missing-ca.pem\n");
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(
            issues[0].starts_with("/etc/continuity/checks.yaml:2:10: ca_file: cannot read /etc/continuity/certs/missing-ca.pem"),
            "{issues:?}"
        );
    }

    #[test]
    fn ca_file_without_certificates_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let (_, issues) = validated(&format!("target: a.nl:443\nca_file: {}\n", path.display()));
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(
            issues[0].contains("contains no PEM certificate"),
            "{issues:?}"
        );
    }

    #[test]
    fn ca_file_with_verification_off_is_contradictory() {
        let (_, issues) = validated("target: a.nl:443\ntls_verify: false\nca_file: ca.pem\n");
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(
            issues[0].contains("no effect with tls_verify: false"),
            "{issues:?}"
        );
    }

    #[test]
    fn invalid_server_name_is_reported() {
        let (_, issues) = validated("target: a.nl:443\nserver_name: 'not a name!'\n");
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(
            issues[0].contains("is not a valid TLS server name"),
            "{issues:?}"
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_saphyr::from_str::<TlsSpec>("target: a.nl:443\nmin_days: 3\n").unwrap_err();
        assert!(
            err.to_string().contains("unknown field `min_days`"),
            "{err}"
        );
    }
}
