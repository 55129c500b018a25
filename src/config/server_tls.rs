//! `server.tls` and `server.read_auth`: HTTPS on our own endpoints (with
//! client certificates when `client_ca_file` is set), and credentials for
//! the read endpoints (`/metrics`, `/api/*`) while the health probes stay
//! open. Certificates are read and checked when the configuration loads,
//! so `continuity check` and a reload reject a bad file; SIGHUP reads them
//! again (a renewed certificate takes effect without a restart).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use super::{Secret, Spanned, Validator, expand};

/// `server.tls` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServerTls {
    cert_file: Spanned<String>,
    key_file: Spanned<String>,
    client_ca_file: Option<Spanned<String>>,
}

/// `server.read_auth` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReadAuth {
    bearer_token: Option<String>,
    bearer_token_file: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password: Option<String>,
    password_file: Option<Spanned<String>>,
}

/// HTTPS on our own endpoints, ready to accept with.
#[derive(Clone)]
pub struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    /// Clients must present a certificate signed by `client_ca_file`.
    pub client_auth: bool,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

/// Who may read `/metrics` and `/api/*`, besides the holder of the API
/// token.
#[derive(Debug, Clone)]
pub struct ReadAuth {
    /// `Authorization: Bearer <token>`.
    pub bearer_token: Option<Secret>,
    /// `Authorization: Basic` with this user and password.
    pub basic: Option<(String, Secret)>,
}

impl RawServerTls {
    pub(super) fn compile(self, base: &Path, v: &mut Validator) -> Option<ServerTls> {
        let read = |f: &Spanned<String>, what: &str, v: &mut Validator| {
            let path = base.join(&f.value);
            match std::fs::read(&path) {
                Ok(b) => Some(b),
                Err(e) => {
                    v.error(
                        f.referenced,
                        format!("cannot read server.tls.{what} {}: {e}", path.display()),
                        Some("the path is relative to the configuration file".into()),
                    );
                    None
                }
            }
        };
        let certs: Vec<CertificateDer<'static>> = read(&self.cert_file, "cert_file", v)
            .map(|b| {
                CertificateDer::pem_slice_iter(&b)
                    .filter_map(Result::ok)
                    .collect()
            })
            .unwrap_or_default();
        let key_pem = read(&self.key_file, "key_file", v);
        let client_ca = self
            .client_ca_file
            .as_ref()
            .map(|f| (f, read(f, "client_ca_file", v)));
        if !v.is_ok() {
            return None;
        }
        if certs.is_empty() {
            v.error(
                self.cert_file.referenced,
                "server.tls.cert_file holds no PEM certificate",
                Some("give the server's certificate (and its chain) as PEM: -----BEGIN CERTIFICATE-----".into()),
            );
            return None;
        }
        let Some(key) = key_pem.and_then(|b| PrivateKeyDer::from_pem_slice(&b).ok()) else {
            v.error(
                self.key_file.referenced,
                "server.tls.key_file holds no PEM private key",
                Some("give the certificate's private key as PEM (PKCS#8, PKCS#1 or SEC1)".into()),
            );
            return None;
        };
        let provider = crate::probe::tls_util::provider();
        let builder = match rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
        {
            Ok(b) => b,
            Err(e) => {
                v.error(self.cert_file.referenced, format!("TLS setup: {e}"), None);
                return None;
            }
        };
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some((f, bytes)) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(&bytes.unwrap_or_default()).flatten() {
                    let _ = roots.add(c);
                }
                if roots.is_empty() {
                    v.error(
                        f.referenced,
                        "server.tls.client_ca_file holds no usable PEM CA certificate",
                        Some("give the CA that signs the clients' certificates, as PEM".into()),
                    );
                    return None;
                }
                match rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                {
                    Ok(verifier) => builder.with_client_cert_verifier(verifier),
                    Err(e) => {
                        v.error(
                            f.referenced,
                            format!("server.tls.client_ca_file: {e}"),
                            None,
                        );
                        return None;
                    }
                }
            }
        };
        match builder.with_single_cert(certs, key) {
            Ok(mut config) => {
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some(ServerTls {
                    config: Arc::new(config),
                    client_auth: self.client_ca_file.is_some(),
                })
            }
            Err(e) => {
                v.error(
                    self.key_file.referenced,
                    format!("server.tls: the key does not fit the certificate: {e}"),
                    Some("cert_file and key_file must be one certificate and its key".into()),
                );
                None
            }
        }
    }
}

impl RawReadAuth {
    pub(super) fn compile(
        self,
        at: super::Location,
        base: &Path,
        v: &mut Validator,
    ) -> Option<ReadAuth> {
        let bearer_token = expand::secret(
            "read_auth.bearer_token",
            self.bearer_token,
            self.bearer_token_file.as_ref(),
            base,
            v,
        );
        let password = expand::secret(
            "read_auth.password",
            self.password,
            self.password_file.as_ref(),
            base,
            v,
        );
        let basic = match (self.username, password) {
            (Some(u), Some(p)) => Some((u.value, p)),
            (None, None) => None,
            (Some(u), None) => {
                v.error(
                    u.referenced,
                    "server.read_auth.username needs a password",
                    Some("add password_file (or password)".into()),
                );
                None
            }
            (None, Some(_)) => {
                v.error(
                    at,
                    "server.read_auth has a password but no username",
                    Some("add username".into()),
                );
                None
            }
        };
        if bearer_token.is_none() && basic.is_none() {
            if v.is_ok() {
                v.error(
                    at,
                    "server.read_auth is empty",
                    Some("set bearer_token_file, or username and password_file".into()),
                );
            }
            return None;
        }
        Some(ReadAuth {
            bearer_token,
            basic,
        })
    }
}
