//! TLS helpers shared by the http, tls and sip probes: client configurations
//! on the ring provider, a verifier that records the presented chain before
//! judging it (so expiry is known even for a rejected certificate), the
//! handshake itself, and certificate facts for humans.
//!
//! Client configurations are built once per distinct trust and ALPN and
//! shared by every check that asks for the same, CA files keyed by their
//! content rather than their path: 10,000 HTTPS checks of one CA hold one
//! root store and one configuration instead of 10,000 of each.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{FailureReason, ProbeContext, ProbeOutcome, phase, tls_pin};

/// The crypto provider every probe uses. Explicit, so that nothing depends
/// on which provider some other part of the process installed as default.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Which certificates a probe accepts.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The Mozilla root programme (webpki-roots), like a citizen's browser.
    PublicRoots,
    /// Only chains ending in one of these CAs (from a `ca_file`), or the
    /// exact certificate the file holds (a self-signed one).
    Pinned(Arc<CaRoots>),
    /// Any chain with one of these public keys (`tls_pin_sha256`).
    Pins(Arc<[tls_pin::Pin]>),
    /// Anything (`tls_verify: false`); the chain is still recorded.
    Insecure,
}

impl Trust {
    /// Build the trust a spec asks for. `ca_roots` is the parsed `ca_file`.
    pub fn from_spec(tls_verify: bool, ca_roots: Option<Arc<CaRoots>>) -> Trust {
        match (tls_verify, ca_roots) {
            (false, _) => Trust::Insecure,
            (true, Some(roots)) => Trust::Pinned(roots),
            (true, None) => Trust::PublicRoots,
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Trust::PublicRoots => "the public web PKI roots",
            Trust::Pinned(_) => "the configured ca_file",
            Trust::Pins(_) => "the configured tls_pin_sha256",
            Trust::Insecure => "nothing (verification disabled)",
        }
    }

    /// What makes two trusts the same: a CA file counts by its content.
    fn key(&self) -> TrustKey {
        match self {
            Trust::PublicRoots => TrustKey::PublicRoots,
            Trust::Pinned(ca) => TrustKey::Pinned(ca.digest),
            Trust::Pins(pins) => {
                let mut pins = pins.to_vec();
                pins.sort_unstable();
                TrustKey::Pins(pins)
            }
            Trust::Insecure => TrustKey::Insecure,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum TrustKey {
    PublicRoots,
    Pinned([u8; 32]),
    Pins(Vec<tls_pin::Pin>),
    Insecure,
}

/// The CAs of one `ca_file`, with the SHA-256 of the file they came from.
#[derive(Debug)]
pub struct CaRoots {
    digest: [u8; 32],
    roots: Arc<RootCertStore>,
    /// The certificates as given: a server presenting one of these exact
    /// certificates is trusted even when it cannot chain to itself (a
    /// self-signed certificate with `CA:TRUE`, `CaUsedAsEndEntity`).
    certs: Arc<[CertificateDer<'static>]>,
}

/// Values shared while anything still holds them: an entry whose value
/// has been dropped (its checks removed by a reload) is swept later.
struct Interned<K, V> {
    map: HashMap<K, Weak<V>>,
    /// Size of the map after the last sweep; sweeping again only once it
    /// doubles keeps interning amortised O(1).
    swept_at: usize,
}

impl<K: Eq + Hash, V> Interned<K, V> {
    fn new() -> Self {
        Interned {
            map: HashMap::new(),
            swept_at: 0,
        }
    }

    fn get<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.map.get(key).and_then(Weak::upgrade)
    }

    fn insert(&mut self, key: K, value: &Arc<V>) {
        if self.map.len() >= 2 * self.swept_at.max(16) {
            self.map.retain(|_, w| w.strong_count() > 0);
            self.swept_at = self.map.len();
        }
        self.map.insert(key, Arc::downgrade(value));
    }

    fn get_or_try_insert<E>(
        &mut self,
        key: K,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<Arc<V>, E> {
        if let Some(v) = self.get(&key) {
            return Ok(v);
        }
        let v = Arc::new(make()?);
        self.insert(key, &v);
        Ok(v)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Read a `ca_file` for a probe: files with the same content share one
/// root store, whatever their path. A file already read and unchanged
/// since (same inode, size and modification time) is not read again, so
/// 10,000 checks naming one CA cost one read at load, not 10,000.
pub fn shared_ca_file(path: &Path) -> Result<Arc<CaRoots>, String> {
    static BY_CONTENT: OnceLock<Mutex<Interned<[u8; 32], CaRoots>>> = OnceLock::new();
    static BY_FILE: OnceLock<Mutex<Interned<(PathBuf, FileStamp), CaRoots>>> = OnceLock::new();
    let by_file = BY_FILE.get_or_init(|| Mutex::new(Interned::new()));
    let file = FileStamp::of(path).map(|stamp| (path.to_path_buf(), stamp));
    if let Some(roots) = file.as_ref().and_then(|f| lock(by_file).get(f)) {
        return Ok(roots);
    }
    let bytes = crate::config::files::read_bytes(path, crate::config::files::MAX_SIDE_FILE_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    let by_content = BY_CONTENT.get_or_init(|| Mutex::new(Interned::new()));
    let roots = lock(by_content).get_or_try_insert(digest, || -> Result<_, String> {
        let roots = Arc::new(parse_ca_pem(&bytes, path)?);
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .filter_map(Result::ok)
            .collect();
        Ok(CaRoots {
            digest,
            roots,
            certs,
        })
    })?;
    if let Some(file) = file {
        lock(by_file).insert(file, &roots);
    }
    Ok(roots)
}

/// What tells that a file changed without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileStamp {
    device: u64,
    inode: u64,
    len: u64,
    modified: std::time::SystemTime,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            device: m.dev(),
            inode: m.ino(),
            len: m.len(),
            modified: m.modified().ok()?,
        })
    }
}

fn public_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            Arc::new(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        })
        .clone()
}

/// Read a PEM file of CA certificates into a root store. The error is a
/// sentence fit for a configuration issue.
pub fn load_ca_file(path: &Path) -> Result<RootCertStore, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_ca_pem(&bytes, path)
}

fn parse_ca_pem(bytes: &[u8], path: &Path) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    for (i, cert) in CertificateDer::pem_slice_iter(bytes).enumerate() {
        let cert = cert.map_err(|e| {
            format!(
                "{} is not a valid PEM file (certificate {}): {e}",
                path.display(),
                i + 1
            )
        })?;
        store.add(cert).map_err(|e| {
            format!(
                "certificate {} in {} cannot be used as a CA: {e}",
                i + 1,
                path.display()
            )
        })?;
    }
    if store.is_empty() {
        return Err(format!(
            "{} contains no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(store)
}

/// Resolve a file name written in a configuration file against the
/// directory of that file, the way includes are resolved.
pub fn config_relative(config_file: &str, path: &str) -> std::path::PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    Path::new(config_file)
        .parent()
        .unwrap_or(Path::new("."))
        .join(p)
}

/// What the server presented during the handshake and what verification
/// said about it.
#[derive(Debug, Clone, Default)]
pub struct PresentedChain {
    /// Leaf first, then intermediates, as sent.
    pub certs: Vec<CertificateDer<'static>>,
    pub verify_error: Option<rustls::Error>,
}

impl PresentedChain {
    pub fn leaf(&self) -> Option<CertInfo> {
        self.certs.first().and_then(|c| cert_info(c))
    }

    /// The earliest `notAfter` in the chain, Unix seconds.
    pub fn earliest_not_after(&self) -> Option<i64> {
        self.certs
            .iter()
            .filter_map(|c| cert_info(c))
            .map(|i| i.not_after)
            .min()
    }

    /// Facts for `ProbeOutcome::details`.
    pub fn details(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(leaf) = self.leaf() {
            out.push(("cert_subject".to_string(), leaf.subject.clone()));
            out.push(("cert_issuer".to_string(), leaf.issuer.clone()));
            out.push(("cert_not_after".to_string(), format_unix(leaf.not_after)));
            if !leaf.dns_names.is_empty() {
                out.push(("cert_names".to_string(), leaf.dns_names.join(", ")));
            }
        }
        if let Some(earliest) = self.earliest_not_after() {
            out.push((
                "chain_earliest_not_after".to_string(),
                format_unix(earliest),
            ));
        }
        out
    }
}

/// Facts about one certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// DNS names and IP addresses from the subjectAltName extension.
    pub dns_names: Vec<String>,
}

/// Parse the facts people ask about from a DER certificate; `None` when it
/// does not parse (the handshake will then fail on its own).
pub fn cert_info(der: &[u8]) -> Option<CertInfo> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut dns_names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => dns_names.push(n.to_string()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(b) = <[u8; 4]>::try_from(*bytes) {
                        dns_names.push(std::net::Ipv4Addr::from(b).to_string());
                    } else if let Ok(b) = <[u8; 16]>::try_from(*bytes) {
                        dns_names.push(std::net::Ipv6Addr::from(b).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Some(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        dns_names,
    })
}

/// Unix seconds as an RFC 3339 UTC timestamp.
pub fn format_unix(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("unix {secs}"))
}

tokio::task_local! {
    /// Where the verifier records the chain of the handshake running in
    /// this task: the client configuration is shared by many checks, so
    /// the slot cannot live in it.
    static PRESENTED: RefCell<PresentedChain>;
}

/// Records the presented chain, then lets the real verifier judge it.
#[derive(Debug)]
struct RecordingVerifier {
    judge: Judge,
    provider: Arc<CryptoProvider>,
}

/// Who decides whether a chain is trusted.
#[derive(Debug)]
enum Judge {
    /// Every chain (`tls_verify: false`).
    Anything,
    /// webpki against roots; a leaf equal to one of `exact` (the `ca_file`'s
    /// certificates) is trusted when webpki is not.
    Chain {
        webpki: Arc<WebPkiServerVerifier>,
        exact: Arc<[CertificateDer<'static>]>,
    },
    /// A pinned key anywhere in the chain.
    Pins(Arc<[tls_pin::Pin]>),
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = match &self.judge {
            Judge::Chain { webpki, exact } => webpki
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .or_else(|e| {
                    if exact.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
                        tls_pin::check_leaf(end_entity, server_name, now)
                            .map(|()| ServerCertVerified::assertion())
                    } else {
                        Err(e)
                    }
                }),
            Judge::Pins(pins) => {
                let chain: Vec<&CertificateDer<'_>> =
                    std::iter::once(end_entity).chain(intermediates).collect();
                if tls_pin::chain_matches(&chain, pins) {
                    tls_pin::check_leaf(end_entity, server_name, now)
                        .map(|()| ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                        rustls::OtherError(Arc::new(tls_pin::NoPinMatched)),
                    )))
                }
            }
            Judge::Anything => Ok(ServerCertVerified::assertion()),
        };
        // Outside a handshake started by [`handshake`] there is no slot and
        // nobody to tell.
        let _ = PRESENTED.try_with(|seen| {
            let mut seen = seen.borrow_mut();
            seen.certs = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
            seen.verify_error = result.as_ref().err().cloned();
        });
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Even without chain verification the server must prove it holds
        // the key of the certificate it sent.
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration for one trust and ALPN list, shared by every
/// check that asks for the same. Session resumption is off, so sharing it
/// carries nothing from one probe to the next.
#[derive(Debug)]
pub struct TlsClient {
    trust: Trust,
    config: Arc<ClientConfig>,
}

impl TlsClient {
    /// The shared client for `trust` offering `alpn`, built on first use.
    pub fn shared(trust: Trust, alpn: &[&[u8]]) -> Result<Arc<TlsClient>, String> {
        type Key = (TrustKey, Vec<Vec<u8>>);
        static CLIENTS: OnceLock<Mutex<Interned<Key, TlsClient>>> = OnceLock::new();
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let key = (trust.key(), alpn.clone());
        let mut interned = lock(CLIENTS.get_or_init(|| Mutex::new(Interned::new())));
        interned.get_or_try_insert(key, || TlsClient::build(trust, alpn))
    }

    fn build(trust: Trust, alpn: Vec<Vec<u8>>) -> Result<TlsClient, String> {
        let provider = provider();
        let webpki = |roots| {
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| format!("cannot build TLS verifier: {e}"))
        };
        let judge = match &trust {
            Trust::Insecure => Judge::Anything,
            Trust::PublicRoots => Judge::Chain {
                webpki: webpki(public_roots())?,
                exact: Arc::new([]),
            },
            Trust::Pinned(ca) => Judge::Chain {
                webpki: webpki(ca.roots.clone())?,
                exact: ca.certs.clone(),
            },
            Trust::Pins(pins) => Judge::Pins(pins.clone()),
        };
        let verifier = Arc::new(RecordingVerifier {
            judge,
            provider: provider.clone(),
        });
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot build TLS client: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = alpn;
        config.resumption = rustls::client::Resumption::disabled();
        Ok(TlsClient {
            trust,
            config: Arc::new(config),
        })
    }

    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The SHA-256 of the `ca_file` trusted, if any: a check's digest
    /// takes it in, so a CA rotated under the same path is a changed
    /// definition on reload.
    pub fn ca_content(&self) -> Option<[u8; 32]> {
        match &self.trust {
            Trust::Pinned(ca) => Some(ca.digest),
            _ => None,
        }
    }
}

/// The name a certificate is checked against, and sent as SNI (IP
/// addresses are checked against IP SANs and never sent as SNI).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(bare.to_string())
        .map_err(|_| format!("'{host}' is not a valid TLS server name"))
}

/// A finished handshake, or why there is none; the chain is recorded in
/// both cases.
pub struct Handshake {
    pub stream: Option<TlsStream<TcpStream>>,
    pub chain: PresentedChain,
    pub took: Duration,
}

/// Run a TLS handshake over `tcp` before the probe's deadline. On failure
/// the outcome gets a `tls` (or `timeout`) failure saying why; in every case
/// the `tls` phase and the earliest certificate expiry are recorded.
pub async fn handshake(
    tcp: TcpStream,
    client: &TlsClient,
    name: ServerName<'static>,
    ctx: &ProbeContext,
    outcome: &mut ProbeOutcome,
) -> Handshake {
    let connector = TlsConnector::from(client.config.clone());
    let started = tokio::time::Instant::now();
    let shown_name = name_str(&name);
    let (result, chain) = PRESENTED
        .scope(RefCell::default(), async {
            let result =
                tokio::time::timeout_at(ctx.deadline(), connector.connect(name, tcp)).await;
            (result, PRESENTED.with(|seen| seen.take()))
        })
        .await;
    let took = started.elapsed();
    outcome.phase(phase::TLS, took);
    if let Some(earliest) = chain.earliest_not_after() {
        outcome.cert_not_after = Some(outcome.cert_not_after.map_or(earliest, |e| e.min(earliest)));
    }
    let stream = match result {
        Ok(Ok(stream)) => {
            // Facts for `continuity probe` only, see `ProbeContext::details`.
            let (_, session) = stream.get_ref();
            if let Some(v) = session.protocol_version().filter(|_| ctx.details) {
                outcome.detail("tls_version", format!("{v:?}"));
            }
            if let Some(s) = session.negotiated_cipher_suite().filter(|_| ctx.details) {
                outcome.detail("tls_cipher", format!("{:?}", s.suite()));
            }
            Some(stream)
        }
        Ok(Err(e)) => {
            let why = match &chain.verify_error {
                Some(err) => describe_verify_error(err, &chain, &client.trust, &shown_name),
                None => describe_handshake_error(&e),
            };
            outcome.fail(FailureReason::Tls, why);
            None
        }
        Err(_) => {
            outcome.fail(
                FailureReason::Timeout,
                format!(
                    "TLS handshake with {shown_name} did not finish within {}",
                    crate::config::Dur(ctx.timeout)
                ),
            );
            None
        }
    };
    Handshake {
        stream,
        chain,
        took,
    }
}

fn name_str(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

fn describe_handshake_error(e: &std::io::Error) -> String {
    if let Some(err) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return match err {
            rustls::Error::AlertReceived(alert) => {
                format!("TLS handshake failed: server sent alert {alert:?}")
            }
            other => format!("TLS handshake failed: {other}"),
        };
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            "TLS handshake failed: the server closed the connection".to_string()
        }
        std::io::ErrorKind::ConnectionReset => {
            "TLS handshake failed: the server reset the connection".to_string()
        }
        _ => format!("TLS handshake failed: {e}"),
    }
}

/// Why verification rejected a chain, in the words an operator searches
/// for (expired, not valid for this host, unknown issuer), and what to set
/// when the fix is in the check rather than on the server.
pub fn describe_verify_error(
    err: &rustls::Error,
    chain: &PresentedChain,
    trust: &Trust,
    host: &str,
) -> String {
    let leaf = chain.leaf();
    // The pin of the presented certificate, for the sentences that tell
    // how to trust a self-signed one; compare it out of band first.
    let pin_hint = || {
        chain
            .certs
            .first()
            .and_then(|c| tls_pin::spki_pin(c))
            .map(|p| {
                format!(
                    "; if it is your own internal certificate, give it as ca_file, or pin its key with tls_pin_sha256: [\"{}\"] (compare the pin with the server's first)",
                    tls_pin::show_pin(&p)
                )
            })
            .unwrap_or_default()
    };
    let cert = match err {
        rustls::Error::InvalidCertificate(c) => c,
        other => return format!("certificate rejected: {other}"),
    };
    match cert {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            let when = chain
                .earliest_not_after()
                .map(|t| format!(" on {}", format_unix(t)))
                .unwrap_or_default();
            format!("certificate expired{when}: the server needs a renewed certificate")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            let when = leaf
                .map(|l| format!(" (valid from {})", format_unix(l.not_before)))
                .unwrap_or_default();
            format!(
                "certificate is not valid yet{when}: check the clock of the server and of this monitor"
            )
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            let covers = leaf
                .filter(|l| !l.dns_names.is_empty())
                .map(|l| format!(" (it is valid for {})", l.dns_names.join(", ")))
                .unwrap_or_default();
            format!(
                "certificate is not valid for host {host}{covers}: probe a name it covers, or set server_name to one"
            )
        }
        CertificateError::UnknownIssuer => {
            let issuer = leaf
                .as_ref()
                .map(|l| format!(" '{}'", l.issuer))
                .unwrap_or_default();
            let self_signed = leaf.as_ref().is_some_and(|l| l.issuer == l.subject);
            let fix = match trust {
                Trust::PublicRoots if self_signed => {
                    format!(": it is self-signed{}", pin_hint())
                }
                Trust::PublicRoots => {
                    ": set ca_file to the issuing CA's certificate (PEM), or the server must send its intermediate certificates".to_string()
                }
                _ => ": set ca_file to the CA that issued it".to_string(),
            };
            format!(
                "certificate has an unknown issuer{issuer}: not trusted by {}{fix}",
                trust.describe()
            )
        }
        CertificateError::BadSignature
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. } => {
            "certificate signature is invalid or uses an algorithm that is not accepted".to_string()
        }
        CertificateError::Revoked => {
            "certificate is revoked: the server needs a new certificate".to_string()
        }
        CertificateError::BadEncoding => "certificate is not valid DER".to_string(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate is not for TLS servers (its extended key usage lacks serverAuth)"
                .to_string()
        }
        CertificateError::Other(other) => {
            if other.0.downcast_ref::<tls_pin::NoPinMatched>().is_some() {
                let presented = chain
                    .certs
                    .first()
                    .and_then(|c| tls_pin::spki_pin(c))
                    .map(|p| format!(" (the server's key is {})", tls_pin::show_pin(&p)))
                    .unwrap_or_default();
                return format!(
                    "no certificate of the chain has a key in tls_pin_sha256{presented}: the key changed, or the pin is wrong; update the pin once the new key is confirmed"
                );
            }
            match other.0.downcast_ref::<webpki::Error>() {
                Some(webpki::Error::CaUsedAsEndEntity) => format!(
                    "the server's certificate is a CA certificate used as its own (typical of a self-signed certificate made with CA:TRUE), which webpki refuses{}",
                    pin_hint()
                ),
                Some(webpki::Error::EndEntityUsedAsCa) => {
                    "a server certificate was used to sign another: the chain is wrong".to_string()
                }
                Some(webpki::Error::PathLenConstraintViolated) => {
                    "the chain is longer than a CA allows (path length constraint)".to_string()
                }
                Some(webpki::Error::NameConstraintViolation) => {
                    "the certificate's names break its CA's name constraints".to_string()
                }
                Some(webpki::Error::MaximumPathDepthExceeded) => {
                    "the chain is too deep to verify".to_string()
                }
                Some(webpki::Error::UnsupportedCertVersion) => {
                    "the certificate is not X.509 v3 (an old self-signed certificate?): reissue it"
                        .to_string()
                }
                Some(e) => format!("certificate rejected: {e:?}"),
                None => format!("certificate rejected: {other}"),
            }
        }
        other => format!("certificate rejected: {other:?}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed CA certificate named `name`, as PEM.
    pub(crate) fn ca_pem(name: &str) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.self_signed(&key).expect("CA").pem()
    }

    #[test]
    fn ca_files_with_the_same_content_share_one_store_and_one_client() {
        let dir = tempfile::tempdir().unwrap();
        let (one, other) = (ca_pem("one"), ca_pem("other"));
        let write = |name: &str, pem: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        let a = shared_ca_file(&write("a.pem", &one)).unwrap();
        let b = shared_ca_file(&write("copy-of-a.pem", &one)).unwrap();
        let c = shared_ca_file(&write("c.pem", &other)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));

        let http = |ca: &Arc<CaRoots>| {
            TlsClient::shared(Trust::Pinned(ca.clone()), &[b"http/1.1"]).unwrap()
        };
        assert!(Arc::ptr_eq(&http(&a), &http(&b)));
        assert!(!Arc::ptr_eq(&http(&a), &http(&c)));
        let bare = TlsClient::shared(Trust::Pinned(a.clone()), &[]).unwrap();
        assert!(!Arc::ptr_eq(&http(&a), &bare), "ALPN is part of the key");
        let insecure = TlsClient::shared(Trust::Insecure, &[]).unwrap();
        assert!(!Arc::ptr_eq(&bare, &insecure));
    }

    #[test]
    fn a_ca_file_read_once_is_read_again_only_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca_pem("first")).unwrap();
        let first = shared_ca_file(&path).unwrap();
        assert!(Arc::ptr_eq(&first, &shared_ca_file(&path).unwrap()));
        std::fs::write(&path, ca_pem("second, rotated")).unwrap();
        let rotated = shared_ca_file(&path).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &rotated),
            "a rewritten file is read anew"
        );
        assert_ne!(first.digest, rotated.digest);
    }

    #[test]
    fn a_client_nobody_holds_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca_pem("dropped")).unwrap();
        let client = TlsClient::shared(Trust::Pinned(shared_ca_file(&path).unwrap()), &[]).unwrap();
        let weak = Arc::downgrade(&client);
        drop(client);
        assert!(
            weak.upgrade().is_none(),
            "the cache keeps no strong reference"
        );
    }
}
