//! Self-signed internal certificates (issue 16, "beyond the findings"):
//! the exact certificate given as `ca_file` is trusted, `tls_pin_sha256`
//! trusts a public key instead of a CA, the name and validity dates are
//! still checked either way, and every rejection is a sentence that says
//! what to set. Real TLS servers on 127.0.0.1 with rcgen certificates.

mod support;

use std::time::Duration;

use continuity::config::CheckKind;
use continuity::probe::{self, FailureReason, ProbeOutcome};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use support::*;

/// A self-signed certificate for `localhost` made the way `openssl req
/// -x509` makes one (CA:TRUE), valid from a year ago for `days` days.
fn self_signed(days: i64) -> (TestCert, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "intranet.gemeente.local");
    let now = jiff::Timestamp::now();
    let at = |d: i64| {
        let t = (now + jiff::SignedDuration::from_hours(24 * d))
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date();
        rcgen::date_time_ymd(i32::from(t.year()), t.month() as u8, t.day() as u8)
    };
    params.not_before = at(-365);
    params.not_after = at(days - 365);
    let cert = params.self_signed(&key).unwrap();
    let pem = cert.pem();
    (
        TestCert {
            chain: vec![cert.der().clone()],
            key_der: key.serialize_der(),
            not_after: 0,
        },
        pem,
    )
}

fn pin_of(cert: &TestCert) -> String {
    probe::tls_pin::show_pin(&probe::tls_pin::spki_pin(&cert.chain[0]).unwrap())
}

async fn tls(yaml: &str) -> ProbeOutcome {
    let kind = CheckKind::Tls(spec(yaml));
    probe::run_with_details(&kind, Duration::from_secs(3))
        .await
        .expect("the probe runs")
}

fn failure(o: &ProbeOutcome) -> String {
    let f = o.failure.as_ref().expect("the probe fails");
    assert_eq!(f.reason, FailureReason::Tls, "{}", f.detail);
    f.detail.clone()
}

#[tokio::test]
async fn a_self_signed_certificate_given_as_ca_file_is_trusted() {
    let (cert, pem) = self_signed(730);
    let addr = tls_server(&cert).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("intranet.pem");
    std::fs::write(&ca, pem).unwrap();
    let o = tls(&format!(
        "target: {addr}\nserver_name: localhost\nca_file: {}\n",
        ca.display()
    ))
    .await;
    assert!(o.success(), "{:?}", o.failure);
    // The exact certificate is trusted for its own name only.
    let o = tls(&format!(
        "target: {addr}\nserver_name: other.gemeente.local\nca_file: {}\n",
        ca.display()
    ))
    .await;
    assert!(
        failure(&o).contains("not valid for host other.gemeente.local"),
        "{:?}",
        o.failure
    );
}

#[tokio::test]
async fn a_self_signed_certificate_is_rejected_with_the_pin_to_set() {
    let (cert, _) = self_signed(730);
    let addr = tls_server(&cert).await;
    let o = tls(&format!("target: {addr}\nserver_name: localhost\n")).await;
    let why = failure(&o);
    assert!(!why.contains("OtherError"), "{why}");
    assert!(
        why.contains(&format!("tls_pin_sha256: [\"{}\"]", pin_of(&cert))),
        "{why}"
    );
    assert!(why.contains("ca_file"), "{why}");
}

#[tokio::test]
async fn a_pinned_key_is_trusted_and_another_key_is_not() {
    let (cert, _) = self_signed(730);
    let addr = tls_server(&cert).await;
    let o = tls(&format!(
        "target: {addr}\nserver_name: localhost\ntls_pin_sha256: [\"{}\"]\n",
        pin_of(&cert)
    ))
    .await;
    assert!(o.success(), "{:?}", o.failure);
    let (other, _) = self_signed(730);
    let o = tls(&format!(
        "target: {addr}\nserver_name: localhost\ntls_pin_sha256: [\"{}\"]\n",
        pin_of(&other)
    ))
    .await;
    let why = failure(&o);
    assert!(
        why.contains("no certificate of the chain has a key in tls_pin_sha256"),
        "{why}"
    );
    assert!(why.contains(&pin_of(&cert)), "{why}");
}

#[tokio::test]
async fn a_pinned_certificate_is_still_checked_for_expiry() {
    let (cert, _) = self_signed(200);
    let addr = tls_server(&cert).await;
    let o = tls(&format!(
        "target: {addr}\nserver_name: localhost\ntls_pin_sha256: [\"{}\"]\n",
        pin_of(&cert)
    ))
    .await;
    assert!(
        failure(&o).contains("certificate expired"),
        "{:?}",
        o.failure
    );
}

#[test]
fn pins_and_ca_file_together_are_refused_at_load() {
    let text = "services:\n  - id: intranet\n    checks:\n      - id: tls\n        tls:\n          target: intranet.gemeente.local:443\n          ca_file: ca.pem\n          tls_pin_sha256: [\"abc\"]\n";
    let e = continuity::config::Config::from_str("/tmp/hconfig-pins.yaml", text)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot be combined with ca_file"), "{e}");
    assert!(e.contains("8:28: 'abc' is not a SHA-256 pin"), "{e}");
}
