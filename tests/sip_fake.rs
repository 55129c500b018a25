//! SIP over TLS against an in-process SIP phone line behind rustls, with a
//! test CA: verification on by default, `ca_file` pinning, SNI from
//! `server_name`, and `tls_verify: false`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use continuity::probe::Prober;
use continuity::probe::sip::responder::{self, LineBehaviour, LineState};
use continuity::probe::sip::{SipProbe, SipSpec};
use continuity::probe::{FailureReason, ProbeContext, ProbeOutcome, phase};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

struct Pki {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// A test CA and a server certificate for `sip.test`, signed by it.
fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["sip.test".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        chain: vec![leaf.der().clone(), ca.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// A SIP phone line over TLS; reports the SNI each handshake asked for.
async fn tls_line(pki: &Pki) -> (SocketAddr, mpsc::UnboundedReceiver<Option<String>>) {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(pki.chain.clone(), pki.key.clone_key())
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sni_tx, sni_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let sni_tx = sni_tx.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = sni_tx.send(tls.get_ref().1.server_name().map(str::to_string));
                let up: responder::StateFn = Arc::new(|| LineState::Up);
                responder::serve_stream(tls, addr, LineBehaviour::default(), up).await;
            });
        }
    });
    (addr, sni_rx)
}

fn spec(yaml: &str) -> SipProbe {
    let s: SipSpec = serde_saphyr::from_str(yaml).expect("yaml parses");
    continuity::probe::compile(s, "/nonexistent/phones.yaml").unwrap_or_else(|e| panic!("{e}"))
}

async fn run(s: &SipProbe) -> ProbeOutcome {
    s.probe(&ProbeContext::new(Duration::from_secs(3)))
        .await
        .expect("probe runs")
}

#[tokio::test]
async fn sip_over_tls_verifies_against_the_ca_file_and_sends_the_server_name() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let (addr, mut sni) = tls_line(&pki).await;

    let s = spec(&format!(
        "uri: sips:ping@{addr}\nserver_name: sip.test\nca_file: {}\n",
        ca_file.display()
    ));
    let o = run(&s).await;
    assert!(o.success(), "{:?} {:?}", o.failure, o.exchange);
    assert_eq!(o.sip_code, Some(200));
    let phases: Vec<&str> = o.phases.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        phases,
        [phase::RESOLVE, phase::CONNECT, phase::TLS, phase::RESPONSE]
    );
    assert!(o.cert_not_after.is_some());
    assert_eq!(sni.recv().await.unwrap().as_deref(), Some("sip.test"));
    assert!(
        o.exchange[0].contains("> OPTIONS sips:ping@"),
        "{:?}",
        o.exchange
    );

    let call = spec(&format!(
        "uri: sips:1400@{addr}\nmethod: invite\nserver_name: sip.test\nca_file: {}\n",
        ca_file.display()
    ));
    let o = run(&call).await;
    assert!(o.success(), "{:?} {:?}", o.failure, o.exchange);
    assert_eq!(
        o.details.iter().find(|(k, _)| k == "hangup").unwrap().1,
        "BYE answered 200 OK"
    );
}

#[tokio::test]
async fn sip_over_tls_rejects_a_certificate_from_an_unknown_ca() {
    let pki = pki();
    let (addr, _sni) = tls_line(&pki).await;
    let s = spec(&format!(
        "uri: sip:ping@{addr}\ntransport: tls\nserver_name: sip.test\n"
    ));
    let o = run(&s).await;
    assert_eq!(o.reason(), Some(FailureReason::Tls), "{:?}", o.failure);
    assert!(
        o.cert_not_after.is_some(),
        "expiry is known even when untrusted"
    );
}

#[tokio::test]
async fn sip_over_tls_checks_the_name_against_the_certificate() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let (addr, _sni) = tls_line(&pki).await;
    // The certificate is for sip.test, not for the IP address.
    let s = spec(&format!(
        "uri: sips:ping@{addr}\nca_file: {}\n",
        ca_file.display()
    ));
    let o = run(&s).await;
    assert_eq!(o.reason(), Some(FailureReason::Tls), "{:?}", o.failure);
}

#[tokio::test]
async fn sip_over_tls_without_verification_still_works_and_reports_expiry() {
    let pki = pki();
    let (addr, _sni) = tls_line(&pki).await;
    let s = spec(&format!("uri: sips:ping@{addr}\ntls_verify: false\n"));
    let o = run(&s).await;
    assert!(o.success(), "{:?} {:?}", o.failure, o.exchange);
    assert!(o.cert_not_after.is_some());
}
