//! Our own endpoints over HTTPS (`server.tls`, with client certificates
//! when `client_ca_file` is set, renewed certificates taken on reload) and
//! credentials for the read endpoints (`server.read_auth`), while health
//! and readiness stay open. In-process daemons on ports of their own.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;
use support::daemon::{InProcess, request, wait_for};

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A certificate and its key, as PEM, for `name` with `usage`.
fn leaf(ca: &Ca, name: &str, usage: ExtendedKeyUsagePurpose) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// `request` (raw HTTP/1.0) over TLS, trusting `ca_pem`, presenting
/// `client` if given: the status code and the server certificate's subject,
/// or the error.
async fn over_tls(
    addr: SocketAddr,
    ca_pem: &str,
    client: Option<&(String, String)>,
    request: &str,
) -> Result<(u16, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let subject = {
        let (_, conn) = tls.get_ref();
        let der = conn.peer_certificates().unwrap()[0].clone();
        x509_parser::parse_x509_certificate(&der)
            .unwrap()
            .1
            .subject()
            .to_string()
    };
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out);
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {text:?}"))?;
    Ok((status, subject))
}

async fn get_tls(
    addr: SocketAddr,
    ca_pem: &str,
    client: Option<&(String, String)>,
    path: &str,
) -> Result<(u16, String), String> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n");
    over_tls(addr, ca_pem, client, &request).await
}

fn write_tls(dir: &Path, server: &(String, String), client_ca: &Ca) {
    std::fs::write(dir.join("server.pem"), &server.0).unwrap();
    std::fs::write(dir.join("server.key"), &server.1).unwrap();
    std::fs::write(dir.join("clients.pem"), &client_ca.pem).unwrap();
}

#[test]
fn https_with_client_certificates_and_a_renewed_certificate_taken_on_reload() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let server_ca = ca("server CA");
    let client_ca = ca("client CA");
    let first = leaf(&server_ca, "localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let client = leaf(
        &client_ca,
        "prometheus",
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let stranger = leaf(&ca("other"), "mallory", ExtendedKeyUsagePurpose::ClientAuth);
    write_tls(dir.path(), &first, &client_ca);
    let cfg = dir.path().join("continuity.yaml");
    let text = "server:\n  listen: 127.0.0.1:0\n  enable_reload_endpoint: true\n  api_token: t0k3n\n  tls:\n    cert_file: server.pem\n    key_file: server.key\n    client_ca_file: clients.pem\nservices:\n  - id: portal\n    checks:\n      - id: home\n        tcp: { target: \"127.0.0.1:9\" }\n";
    std::fs::write(&cfg, text).unwrap();
    let daemon = InProcess::start(&cfg);
    let addr = daemon.addr;
    let rt = tokio::runtime::Runtime::new().unwrap();

    let (code, subject) = rt
        .block_on(get_tls(addr, &server_ca.pem, Some(&client), "/metrics"))
        .expect("HTTPS with a client certificate");
    assert_eq!(code, 200);
    assert!(subject.contains("localhost"), "{subject}");
    // No client certificate, or one from another CA: no answer.
    assert!(
        rt.block_on(get_tls(addr, &server_ca.pem, None, "/metrics"))
            .is_err()
    );
    assert!(
        rt.block_on(get_tls(addr, &server_ca.pem, Some(&stranger), "/metrics"))
            .is_err()
    );
    // Plain HTTP gets nothing either.
    assert!(support::daemon::try_request(addr, "GET", "/healthz", None, "").is_none());

    // A renewed certificate (from a new CA), taken by the reload.
    let renewed_ca = ca("renewed CA");
    let renewed = leaf(
        &renewed_ca,
        "localhost",
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    write_tls(dir.path(), &renewed, &client_ca);
    // The reload itself goes over HTTPS too.
    let (code, _) = rt
        .block_on(over_tls(
            addr,
            &server_ca.pem,
            Some(&client),
            "POST /-/reload HTTP/1.0\r\nHost: x\r\nAuthorization: bearer t0k3n\r\nContent-Length: 0\r\n\r\n",
        ))
        .expect("reload over HTTPS");
    assert_eq!(code, 200);
    wait_for("the renewed certificate", Duration::from_secs(5), || {
        rt.block_on(get_tls(addr, &renewed_ca.pem, Some(&client), "/healthz"))
            .is_ok_and(|(code, _)| code == 200)
    });
    drop(daemon);
}

#[test]
fn read_endpoints_want_the_read_credentials_and_health_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scrape-token"), "scr4pe\n").unwrap();
    let cfg = dir.path().join("continuity.yaml");
    std::fs::write(
        &cfg,
        "server:\n  listen: 127.0.0.1:0\n  api_token: t0k3n\n  read_auth:\n    bearer_token_file: scrape-token\n    username: prometheus\n    password: s3cret\nservices:\n  - id: portal\n    checks:\n      - id: home\n        tcp: { target: \"127.0.0.1:9\" }\n",
    )
    .unwrap();
    let daemon = InProcess::start(&cfg);
    let addr = daemon.addr;
    let with = |auth: &str, path: &str| {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        use std::io::{Read, Write};
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n{auth}\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    for path in ["/metrics", "/api/v1/status", "/api/v1/incidents"] {
        let r = with("", path);
        assert!(r.starts_with("HTTP/1.0 401"), "{path}: {r}");
        assert!(
            r.contains("www-authenticate: Basic realm=\"continuity\""),
            "{r}"
        );
        assert!(with("Authorization: Bearer wrong\r\n", path).starts_with("HTTP/1.0 401"));
        assert!(
            with("Authorization: Bearer scr4pe\r\n", path).starts_with("HTTP/1.0 200"),
            "{path}"
        );
        // prometheus:s3cret
        assert!(
            with("Authorization: Basic cHJvbWV0aGV1czpzM2NyZXQ=\r\n", path)
                .starts_with("HTTP/1.0 200")
        );
        // The API token reads too.
        assert!(with("Authorization: BEARER t0k3n\r\n", path).starts_with("HTTP/1.0 200"));
    }
    // prometheus:wrong
    assert!(
        with(
            "Authorization: Basic cHJvbWV0aGV1czp3cm9uZw==\r\n",
            "/metrics"
        )
        .starts_with("HTTP/1.0 401")
    );
    assert_eq!(request(addr, "GET", "/healthz", None, "").0, 200);
    assert_eq!(request(addr, "GET", "/readyz", None, "").0, 200);
}
