//! TLS probe: handshake with `host:port` on a fresh connection and report
//! the certificate chain, its earliest expiry and whether it is trusted.

use std::sync::Arc;

use crate::config::{Location, Spanned};
use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use serde::Deserialize;

use super::tcp::{connect, parse_target, setup_error};
use super::tls_util::{self, Trust, format_unix};
use super::{FailureReason, ProbeContext, ProbeError, ProbeOutcome};
use crate::config::Validator;

#[derive(Debug, Clone, Deserialize)]
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
    /// Fail with `expectation` when the chain expires sooner than this.
    #[serde(default)]
    pub min_days_valid: Option<u32>,
    #[serde(skip)]
    compiled: Option<Arc<CompiledTls>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug)]
struct CompiledTls {
    host: String,
    port: u16,
    name: ServerName<'static>,
    trust: Trust,
}

impl PartialEq for TlsSpec {
    fn eq(&self, other: &Self) -> bool {
        // Positions in the file do not change what a probe does.
        let TlsSpec {
            target,
            server_name,
            tls_verify,
            ca_file,
            min_days_valid,
            compiled: _,
        } = self;
        let value = |s: &Option<Spanned<String>>| s.as_ref().map(|s| s.value.clone());
        target.value == other.target.value
            && value(server_name) == value(&other.server_name)
            && *tls_verify == other.tls_verify
            && value(ca_file) == value(&other.ca_file)
            && *min_days_valid == other.min_days_valid
    }
}

impl TlsSpec {
    pub fn validate(&mut self, v: &mut Validator, _at: Location) {
        self.compiled = self.compile(v).map(Arc::new);
    }

    fn compile(&self, v: &mut Validator) -> Option<CompiledTls> {
        let target = match parse_target(&self.target.value) {
            Ok(t) => Some(t),
            Err((msg, hint)) => {
                v.error(self.target.referenced, msg, Some(hint));
                None
            }
        };
        let name = match (&self.server_name, &target) {
            (Some(n), _) => checked_server_name(n, v),
            (None, Some((host, _))) => {
                checked_server_name(&Spanned::new(host.clone(), self.target.referenced), v)
            }
            (None, None) => None,
        };
        let roots = ca_roots(self.ca_file.as_ref(), self.tls_verify, v)?;
        let (host, port) = target?;
        Some(CompiledTls {
            host,
            port,
            name: name?,
            trust: Trust::from_spec(self.tls_verify, roots),
        })
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

/// Load a spec's `ca_file`, relative to the configuration file. `None`
/// means an error was recorded; `Some(None)` means no file was given.
pub(crate) fn ca_roots(
    ca_file: Option<&Spanned<String>>,
    tls_verify: bool,
    v: &mut Validator,
) -> Option<Option<Arc<RootCertStore>>> {
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
    match tls_util::load_ca_file(&path) {
        Ok(store) => Some(Some(Arc::new(store))),
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

pub async fn probe(spec: &TlsSpec, ctx: &ProbeContext) -> Result<ProbeOutcome, ProbeError> {
    let c = match &spec.compiled {
        Some(c) => c.clone(),
        None => {
            let mut v = Validator::new("tls check".into());
            Arc::new(spec.compile(&mut v).ok_or_else(|| setup_error(v))?)
        }
    };
    let mut outcome = ProbeOutcome::default();
    let Some(tcp) = connect(&c.host, c.port, ctx, &mut outcome).await else {
        return Ok(outcome);
    };
    let hs = tls_util::handshake(tcp, &c.trust, c.name.clone(), &[], ctx, &mut outcome).await?;
    for (k, val) in hs.chain.details() {
        outcome.detail(k, val);
    }
    if hs.stream.is_none() {
        return Ok(outcome);
    }
    if let (Some(min_days), Some(earliest)) = (spec.min_days_valid, outcome.cert_not_after) {
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
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validated(yaml: &str) -> (TlsSpec, Vec<String>) {
        let mut spec: TlsSpec = serde_saphyr::from_str(yaml).expect("yaml parses");
        let mut v = Validator::new("/etc/continuity/checks.yaml".into());
        spec.validate(&mut v, Location::UNKNOWN);
        (spec, v.issues.iter().map(|i| i.to_string()).collect())
    }

    #[test]
    fn defaults_verify_against_public_roots() {
        let (spec, issues) = validated("target: portal.gemeente.nl:443\n");
        assert!(issues.is_empty(), "{issues:?}");
        assert!(spec.tls_verify);
        let c = spec.compiled.expect("compiled");
        assert!(matches!(c.trust, Trust::PublicRoots));
        assert_eq!(c.name, ServerName::try_from("portal.gemeente.nl").unwrap());
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
