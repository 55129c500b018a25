//! The http, tcp, tls, dns and icmp probes against real local servers: what
//! a citizen would see, and which typed reason each way of breaking gives.

mod support;

use std::time::{Duration, Instant};

use continuity::config::CheckKind;
use continuity::probe::{self, FailureReason, ProbeOutcome, phase};
use support::*;

const T: Duration = Duration::from_secs(3);
/// How late a probe may give up after its timeout: scheduling slack on a
/// busy two-core machine, not a performance target.
const SLACK: Duration = Duration::from_millis(1000);

async fn run(kind: CheckKind, timeout: Duration) -> ProbeOutcome {
    probe::run_with_details(&kind, timeout)
        .await
        .expect("the monitor itself could run the probe")
}

async fn http(yaml: &str) -> ProbeOutcome {
    run(CheckKind::Http(spec(yaml)), T).await
}

async fn tcp(yaml: &str, timeout: Duration) -> ProbeOutcome {
    run(CheckKind::Tcp(spec(yaml)), timeout).await
}

async fn tls(yaml: &str, timeout: Duration) -> ProbeOutcome {
    run(CheckKind::Tls(spec(yaml)), timeout).await
}

async fn dns(yaml: &str, timeout: Duration) -> ProbeOutcome {
    run(CheckKind::Dns(spec(yaml)), timeout).await
}

#[track_caller]
fn assert_ok(o: &ProbeOutcome) {
    assert!(
        o.success(),
        "expected success, got {:?}\ndetails: {:?}",
        o.failure,
        o.details
    );
}

#[track_caller]
fn assert_failed(o: &ProbeOutcome, reason: FailureReason, detail_contains: &str) {
    let f = o
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("expected {reason} failure, got success: {:?}", o.details));
    assert_eq!(f.reason, reason, "detail: {}", f.detail);
    assert!(
        f.detail.contains(detail_contains),
        "detail {:?} should contain {:?}",
        f.detail,
        detail_contains
    );
}

fn detail<'a>(o: &'a ProbeOutcome, key: &str) -> Option<&'a str> {
    o.details
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn phase_names(o: &ProbeOutcome) -> Vec<&'static str> {
    o.phases.iter().map(|(n, _)| *n).collect()
}

// ------------------------------------------------------------------ HTTP

#[tokio::test]
async fn http_succeeds_on_the_welcome_page_and_times_each_phase() {
    let server = http_server(portal()).await;
    let o = http(&format!(
        "url: {}\nbody_contains: Welkom\n",
        server.url("/")
    ))
    .await;
    assert_ok(&o);
    assert_eq!(o.http_status, Some(200));
    assert_eq!(
        phase_names(&o),
        [
            phase::RESOLVE,
            phase::CONNECT,
            phase::PROCESSING,
            phase::TRANSFER
        ]
    );
    assert_eq!(detail(&o, "status"), Some("200 OK"));
    assert_eq!(
        detail(&o, "body_bytes"),
        Some(WELKOM.len().to_string().as_str())
    );
    assert!(o.duration > Duration::ZERO);
    assert_eq!(o.cert_not_after, None);
}

#[tokio::test]
async fn the_daemon_probes_without_formatting_details_for_people() {
    let server = http_server(portal()).await;
    let kind = CheckKind::Http(spec(&format!("url: {}\n", server.url("/"))));
    let o = probe::run(&kind, T).await.unwrap();
    assert_ok(&o);
    assert_eq!(o.http_status, Some(200));
    assert!(o.details.is_empty(), "{:?}", o.details);
    let shown = probe::run_with_details(&kind, T).await.unwrap();
    assert_eq!(detail(&shown, "status"), Some("200 OK"));
}

#[tokio::test]
async fn http_fails_with_status_on_a_server_error() {
    let server = http_server(portal()).await;
    let o = http(&format!("url: {}\n", server.url("/error"))).await;
    assert_failed(&o, FailureReason::Status, "status 500, expected 200-399");
    assert_eq!(o.http_status, Some(500));
}

#[tokio::test]
async fn http_accepts_listed_statuses() {
    let server = http_server(portal()).await;
    let o = http(&format!(
        "url: {}\nexpect_status: [\"500-503\"]\n",
        server.url("/error")
    ))
    .await;
    assert_ok(&o);
}

#[tokio::test]
async fn http_uses_a_fresh_connection_for_every_probe() {
    let server = http_server(portal()).await;
    let yaml = format!("url: {}\n", server.url("/"));
    assert_ok(&http(&yaml).await);
    assert_ok(&http(&yaml).await);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn http_follows_a_redirect_chain_on_fresh_connections() {
    let server = http_server(portal()).await;
    let o = http(&format!(
        "url: {}\nbody_contains: Welkom\n",
        server.url("/redirect/3")
    ))
    .await;
    assert_ok(&o);
    assert_eq!(o.http_status, Some(200));
    assert_eq!(server.connections(), 5, "one connection per hop");
    assert!(detail(&o, "redirect_4").is_some(), "{:?}", o.details);
    assert_eq!(detail(&o, "url"), Some(server.url("/").as_str()));
    // Phases are summed over hops: one entry per phase name.
    assert_eq!(
        phase_names(&o),
        [
            phase::RESOLVE,
            phase::CONNECT,
            phase::PROCESSING,
            phase::TRANSFER
        ]
    );
}

#[tokio::test]
async fn http_gives_up_after_max_redirects() {
    let server = http_server(portal()).await;
    let o = http(&format!("url: {}\nmax_redirects: 2\n", server.url("/loop"))).await;
    assert_failed(&o, FailureReason::Status, "more than 2 redirects");
}

#[tokio::test]
async fn http_without_following_checks_the_redirect_itself() {
    let server = http_server(portal()).await;
    let o = http(&format!(
        "url: {}\nfollow_redirects: false\nexpect_status: 302\n",
        server.url("/loop")
    ))
    .await;
    assert_ok(&o);
    assert_eq!(o.http_status, Some(302));
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn http_redirected_post_becomes_get_except_on_307() {
    let server = http_server(portal()).await;
    let o = http(&format!(
        "url: {}\nmethod: POST\nbody: 'a=1'\nbody_contains: 'GET '\n",
        server.url("/see-other")
    ))
    .await;
    assert_ok(&o);
    let o = http(&format!(
        "url: {}\nmethod: POST\nbody: 'a=1'\nbody_contains: 'POST '\n",
        server.url("/temporary")
    ))
    .await;
    assert_ok(&o);
}

#[tokio::test]
async fn http_sends_configured_headers_and_host_header() {
    let server = http_server(portal()).await;
    let o = http(&format!(
        "url: {}\nhost_header: portal.gemeente.nl\nheaders:\n  X-Probe: continuity\nbody_contains: 'GET host=portal.gemeente.nl x-probe=continuity'\n",
        server.url("/echo")
    ))
    .await;
    assert_ok(&o);
}

#[tokio::test]
async fn a_configured_header_replaces_the_default_one() {
    let server = http_server(portal()).await;
    let o = http(&format!(
        "url: {}\nheaders:\n  User-Agent: Citizen/1.0\nbody_contains: 'user-agent=Citizen/1.0'\n",
        server.url("/echo")
    ))
    .await;
    assert_ok(&o);
    let o = http(&format!(
        "url: {}\nbody_contains: 'user-agent=continuity/'\n",
        server.url("/echo")
    ))
    .await;
    assert_ok(&o);
}

#[tokio::test]
async fn http_body_checks_fail_with_body() {
    let server = http_server(portal()).await;
    let o = http(&format!(
        "url: {}\nbody_contains: Storing\n",
        server.url("/")
    ))
    .await;
    assert_failed(&o, FailureReason::Body, "does not contain 'Storing'");
    let o = http(&format!(
        "url: {}\nbody_regex: 'Welkom bij de (provincie|rijksoverheid)'\n",
        server.url("/")
    ))
    .await;
    assert_failed(&o, FailureReason::Body, "does not match");
    let o = http(&format!(
        "url: {}\nbody_regex: 'Welkom bij de (gemeente|provincie)'\n",
        server.url("/")
    ))
    .await;
    assert_ok(&o);
}

#[tokio::test]
async fn http_json_pointers_must_hold_the_expected_values() {
    let server = http_server(portal()).await;
    let url = server.url("/health");
    let ok = http(&format!(
        "url: {url}\njson:\n  - pointer: /status\n    equals: ok\n  - pointer: /checks/db\n    equals: up\n  - pointer: /count\n    equals: 3\n  - pointer: /version\n    equals: '2.4'\n  - pointer: /checks\n"
    ))
    .await;
    assert_ok(&ok);
    assert_eq!(detail(&ok, "json /status"), Some("\"ok\""));

    let wrong = http(&format!(
        "url: {url}\njson: [{{pointer: /checks/db, equals: down}}]\n"
    ))
    .await;
    assert_failed(
        &wrong,
        FailureReason::Expectation,
        "/checks/db is \"up\", expected \"down\"",
    );
    let missing = http(&format!("url: {url}\njson: [{{pointer: /uptime}}]\n")).await;
    assert_failed(&missing, FailureReason::Expectation, "nothing at /uptime");
    let not_json = http(&format!(
        "url: {}\njson: [{{pointer: /status, equals: ok}}]\n",
        server.url("/")
    ))
    .await;
    assert_failed(&not_json, FailureReason::Expectation, "body is not JSON");
}

#[tokio::test]
async fn http_is_slow_when_a_correct_answer_takes_too_long() {
    let server = http_server(portal()).await;
    let o = http(&format!(
        "url: {}\nmax_response_time: 50ms\n",
        server.url("/slow/300")
    ))
    .await;
    assert_failed(&o, FailureReason::Slow, "more than max_response_time 50ms");
    assert_eq!(o.http_status, Some(200));
}

#[tokio::test]
async fn http_times_out_when_the_server_never_answers() {
    let addr = silent_listener().await;
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let o = run(
        CheckKind::Http(spec(&format!("url: http://{addr}/\n"))),
        timeout,
    )
    .await;
    assert_failed(&o, FailureReason::Timeout, "no response headers");
    assert!(
        started.elapsed() < timeout + SLACK,
        "took {:?}",
        started.elapsed()
    );
    assert!(phase_names(&o).contains(&phase::PROCESSING));
}

#[tokio::test]
async fn http_times_out_while_a_body_dribbles_in() {
    let server = http_server(portal()).await;
    let timeout = Duration::from_millis(600);
    let started = Instant::now();
    let o = run(
        CheckKind::Http(spec(&format!("url: {}\n", server.url("/dribble")))),
        timeout,
    )
    .await;
    assert_failed(&o, FailureReason::Timeout, "body not complete");
    assert_eq!(o.http_status, Some(200));
    assert!(
        started.elapsed() < timeout + SLACK,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn http_reads_no_more_than_max_body_bytes_of_an_endless_body() {
    let server = http_server(portal()).await;
    let o = http(&format!(
        "url: {}\nmax_body_bytes: 100000\n",
        server.url("/flood")
    ))
    .await;
    assert_ok(&o);
    assert_eq!(detail(&o, "body_bytes"), Some("100000"));
    assert!(detail(&o, "body_truncated").is_some(), "{:?}", o.details);
}

#[tokio::test]
async fn http_body_checks_run_on_the_part_that_was_read() {
    let server = http_server(portal()).await;
    // "EINDE" sits after the first MiB of /big, beyond the default cap.
    let o = http(&format!(
        "url: {}\nbody_contains: EINDE\n",
        server.url("/big")
    ))
    .await;
    assert_failed(&o, FailureReason::Body, "truncated");
    assert_eq!(detail(&o, "body_bytes"), Some("1048576"));
    let o = http(&format!(
        "url: {}\nbody_contains: EINDE\nmax_body_bytes: 3000000\n",
        server.url("/big")
    ))
    .await;
    assert_ok(&o);
    assert!(detail(&o, "body_truncated").is_none());
}

#[tokio::test]
async fn http_is_refused_on_a_closed_port() {
    let addr = closed_port().await;
    let o = http(&format!("url: http://{addr}/\n")).await;
    assert_failed(&o, FailureReason::Refused, "connection refused");
    assert_eq!(phase_names(&o), [phase::RESOLVE, phase::CONNECT]);
}

#[tokio::test]
async fn http_fails_with_dns_when_the_name_does_not_resolve() {
    let o = http("url: http://nonexistent.invalid/\n").await;
    assert_failed(&o, FailureReason::Dns, "nonexistent.invalid");
    assert_eq!(phase_names(&o), [phase::RESOLVE]);
}

// ----------------------------------------------------------------- HTTPS

struct Pki {
    ca: TestCa,
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        Pki {
            ca: TestCa::new("Continuity Test CA"),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn ca_file(&self) -> String {
        self.ca.write_pem(self.dir.path()).display().to_string()
    }
}

#[tokio::test]
async fn https_with_ca_file_succeeds_and_reports_certificate_expiry() {
    let pki = Pki::new();
    let cert = pki.ca.leaf(&["localhost"], Validity::Current);
    let server = https_server(portal(), &cert).await;
    let o = http(&format!(
        "url: {}\nca_file: {}\nbody_contains: Welkom\n",
        server.url("/"),
        pki.ca_file()
    ))
    .await;
    assert_ok(&o);
    assert_eq!(o.cert_not_after, Some(cert.not_after));
    assert_eq!(
        phase_names(&o),
        [
            phase::RESOLVE,
            phase::CONNECT,
            phase::TLS,
            phase::PROCESSING,
            phase::TRANSFER
        ]
    );
    assert_eq!(detail(&o, "cert_subject"), Some("CN=localhost"));
    assert_eq!(detail(&o, "cert_issuer"), Some("CN=Continuity Test CA"));
}

#[tokio::test]
async fn https_expired_certificate_fails_with_tls_but_still_reports_expiry() {
    let pki = Pki::new();
    let cert = pki.ca.leaf(&["localhost"], Validity::Expired);
    let server = https_server(portal(), &cert).await;
    let o = http(&format!(
        "url: {}\nca_file: {}\n",
        server.url("/"),
        pki.ca_file()
    ))
    .await;
    assert_failed(&o, FailureReason::Tls, "certificate expired on 2021-01-01");
    assert_eq!(o.cert_not_after, Some(cert.not_after));
    assert_eq!(o.http_status, None);
}

#[tokio::test]
async fn https_certificate_for_another_host_fails_with_tls() {
    let pki = Pki::new();
    let cert = pki.ca.leaf(&["other.gemeente.nl"], Validity::Current);
    let server = https_server(portal(), &cert).await;
    let o = http(&format!(
        "url: {}\nca_file: {}\n",
        server.url("/"),
        pki.ca_file()
    ))
    .await;
    assert_failed(
        &o,
        FailureReason::Tls,
        "not valid for host localhost (it is valid for other.gemeente.nl)",
    );
    assert_eq!(o.cert_not_after, Some(cert.not_after));
}

#[tokio::test]
async fn https_private_ca_is_an_unknown_issuer_to_the_public_roots() {
    let pki = Pki::new();
    let cert = pki.ca.leaf(&["localhost"], Validity::Current);
    let server = https_server(portal(), &cert).await;
    let o = http(&format!("url: {}\n", server.url("/"))).await;
    assert_failed(
        &o,
        FailureReason::Tls,
        "unknown issuer 'CN=Continuity Test CA'",
    );
    assert_eq!(o.cert_not_after, Some(cert.not_after));
}

#[tokio::test]
async fn https_without_verification_accepts_an_expired_certificate() {
    let pki = Pki::new();
    let cert = pki.ca.leaf(&["localhost"], Validity::Expired);
    let server = https_server(portal(), &cert).await;
    let o = http(&format!("url: {}\ntls_verify: false\n", server.url("/"))).await;
    assert_ok(&o);
    assert_eq!(o.cert_not_after, Some(cert.not_after));
}

#[tokio::test]
async fn https_server_name_override_is_used_for_verification() {
    let pki = Pki::new();
    let cert = pki.ca.leaf(&["portal.gemeente.nl"], Validity::Current);
    let server = https_server(portal(), &cert).await;
    let url = format!("https://127.0.0.1:{}/echo", server.addr.port());
    let o = http(&format!(
        "url: {url}\nca_file: {}\nhost_header: portal.gemeente.nl\nbody_contains: host=portal.gemeente.nl\n",
        pki.ca_file()
    ))
    .await;
    assert_ok(&o);
}

#[tokio::test]
async fn https_handshake_times_out_against_a_silent_server() {
    let addr = silent_listener().await;
    let timeout = Duration::from_millis(500);
    let o = run(
        CheckKind::Http(spec(&format!("url: https://localhost:{}/\n", addr.port()))),
        timeout,
    )
    .await;
    assert_failed(
        &o,
        FailureReason::Timeout,
        "TLS handshake with localhost did not finish",
    );
}

#[tokio::test]
async fn a_missing_ca_file_is_a_config_error() {
    let s: continuity::probe::http::HttpSpec =
        serde_saphyr::from_str("url: https://localhost/\nca_file: /nonexistent/ca.pem\n").unwrap();
    // A spec compiles only through validation, so a probe can never run
    // with a CA file nobody could read.
    let err = probe::compile::<probe::http::HttpProbe>(s, "test.yaml").unwrap_err();
    assert_eq!(err.issues.len(), 1);
    assert!(
        err.issues[0]
            .message
            .contains("cannot read /nonexistent/ca.pem")
    );
}

// ------------------------------------------------------------------- TLS

#[tokio::test]
async fn tls_probe_reports_the_chain() {
    let pki = Pki::new();
    let cert = pki.ca.leaf(&["localhost"], Validity::Current);
    let addr = tls_server(&cert).await;
    let o = tls(
        &format!(
            "target: localhost:{}\nca_file: {}\n",
            addr.port(),
            pki.ca_file()
        ),
        T,
    )
    .await;
    assert_ok(&o);
    assert_eq!(
        phase_names(&o),
        [phase::RESOLVE, phase::CONNECT, phase::TLS]
    );
    assert_eq!(o.cert_not_after, Some(cert.not_after));
    assert_eq!(detail(&o, "cert_subject"), Some("CN=localhost"));
    assert_eq!(detail(&o, "cert_names"), Some("localhost"));
    assert!(detail(&o, "tls_version").is_some());
}

#[tokio::test]
async fn tls_fails_expectation_when_expiry_is_closer_than_min_days_valid() {
    let pki = Pki::new();
    let cert = pki.ca.leaf(&["localhost"], Validity::DaysLeft(10));
    let addr = tls_server(&cert).await;
    let base = format!(
        "target: localhost:{}\nca_file: {}\n",
        addr.port(),
        pki.ca_file()
    );
    let o = tls(&format!("{base}min_days_valid: 30\n"), T).await;
    assert_failed(
        &o,
        FailureReason::Expectation,
        "less than min_days_valid 30",
    );
    let o = tls(&format!("{base}min_days_valid: 5\n"), T).await;
    assert_ok(&o);

    let expired = pki.ca.leaf(&["localhost"], Validity::Expired);
    let addr = tls_server(&expired).await;
    let o = tls(
        &format!(
            "target: localhost:{}\ntls_verify: false\nmin_days_valid: 1\n",
            addr.port()
        ),
        T,
    )
    .await;
    assert_failed(&o, FailureReason::Expectation, "expired on 2021-01-01");
}

#[tokio::test]
async fn tls_expired_chain_fails_and_reports_its_expiry() {
    let pki = Pki::new();
    let cert = pki.ca.leaf(&["localhost"], Validity::Expired);
    let addr = tls_server(&cert).await;
    let o = tls(
        &format!(
            "target: localhost:{}\nca_file: {}\n",
            addr.port(),
            pki.ca_file()
        ),
        T,
    )
    .await;
    assert_failed(&o, FailureReason::Tls, "expired");
    assert_eq!(o.cert_not_after, Some(cert.not_after));
    assert_eq!(detail(&o, "cert_not_after"), Some("2021-01-01T00:00:00Z"));
}

#[tokio::test]
async fn tls_server_name_decides_which_name_is_checked() {
    let pki = Pki::new();
    let cert = pki.ca.leaf(&["portal.gemeente.nl"], Validity::Current);
    let addr = tls_server(&cert).await;
    let base = format!(
        "target: 127.0.0.1:{}\nca_file: {}\n",
        addr.port(),
        pki.ca_file()
    );
    assert_failed(
        &tls(&base, T).await,
        FailureReason::Tls,
        "not valid for host 127.0.0.1",
    );
    assert_ok(&tls(&format!("{base}server_name: portal.gemeente.nl\n"), T).await);
}

#[tokio::test]
async fn tls_to_a_plain_tcp_service_fails_with_tls() {
    let addr = line_server("220 smtp.gemeente.nl ESMTP\r\n", |_| String::new()).await;
    let o = tls(
        &format!("target: localhost:{}\ntls_verify: false\n", addr.port()),
        T,
    )
    .await;
    assert_failed(&o, FailureReason::Tls, "TLS handshake failed");
}

// ------------------------------------------------------------------- TCP

fn pong(line: &str) -> String {
    if line == "PING" {
        "+PONG\r\n".into()
    } else {
        "-ERR unknown\r\n".into()
    }
}

#[tokio::test]
async fn tcp_send_and_expect_a_matching_reply() {
    let addr = line_server("", pong).await;
    let o = tcp(
        &format!("target: {addr}\nsend: \"PING\\r\\n\"\nexpect: '^\\+PONG'\n"),
        T,
    )
    .await;
    assert_ok(&o);
    assert_eq!(
        phase_names(&o),
        [phase::RESOLVE, phase::CONNECT, phase::RESPONSE]
    );
    assert_eq!(detail(&o, "reply"), Some("+PONG\\r\\n"));
}

#[tokio::test]
async fn tcp_reads_a_greeting_without_sending() {
    let addr = line_server("220 smtp.gemeente.nl ESMTP ready\r\n", pong).await;
    let o = tcp(&format!("target: {addr}\nexpect: '^220 .*ESMTP'\n"), T).await;
    assert_ok(&o);
}

#[tokio::test]
async fn tcp_reply_that_never_matches_times_out_showing_what_came() {
    let addr = line_server("", |_| "-ERR go away\r\n".into()).await;
    // The server keeps the connection open; the reply arrives, then silence.
    let o = tcp(
        &format!("target: {addr}\nsend: \"PING\\n\"\nexpect: PONG\n"),
        Duration::from_millis(500),
    )
    .await;
    assert_failed(
        &o,
        FailureReason::Timeout,
        "no reply matching /PONG/ (got '-ERR go away",
    );
}

#[tokio::test]
async fn tcp_reply_that_does_not_match_fails_expectation_when_the_server_closes() {
    let addr = one_shot_server("554 no service here\r\n").await;
    let o = tcp(&format!("target: {addr}\nexpect: '^220 '\n"), T).await;
    assert_failed(&o, FailureReason::Expectation, "reply '554 no service here");
    let addr = one_shot_server("").await;
    let o = tcp(&format!("target: {addr}\nexpect: '^220 '\n"), T).await;
    assert_failed(
        &o,
        FailureReason::Expectation,
        "closed the connection without replying",
    );
}

#[tokio::test]
async fn tcp_stops_reading_after_64_kib_without_a_match() {
    let server = http_server(portal()).await;
    let o = tcp(
        &format!(
            "target: {}\nsend: 'GET /flood HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n'\nexpect: EINDE\n",
            server.addr
        ),
        T,
    )
    .await;
    assert_failed(
        &o,
        FailureReason::Expectation,
        "first 65536 bytes of the reply do not match /EINDE/",
    );
}

#[tokio::test]
async fn tcp_connect_only_succeeds_when_the_port_is_open() {
    let addr = silent_listener().await;
    let o = tcp(&format!("target: {addr}\n"), T).await;
    assert_ok(&o);
    assert_eq!(phase_names(&o), [phase::RESOLVE, phase::CONNECT]);
}

#[tokio::test]
async fn tcp_is_refused_on_a_closed_port() {
    let addr = closed_port().await;
    let o = tcp(&format!("target: {addr}\n"), T).await;
    assert_failed(&o, FailureReason::Refused, "connection refused");
}

#[tokio::test]
async fn tcp_times_out_when_no_reply_comes() {
    let addr = silent_listener().await;
    let timeout = Duration::from_millis(400);
    let started = Instant::now();
    let o = tcp(
        &format!("target: {addr}\nsend: \"HELLO\\n\"\nexpect: .\n"),
        timeout,
    )
    .await;
    assert_failed(&o, FailureReason::Timeout, "no reply within 400ms");
    assert!(
        started.elapsed() < timeout + SLACK,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn tcp_fails_with_dns_on_an_unknown_name() {
    let o = tcp("target: nonexistent.invalid:25\n", T).await;
    assert_failed(&o, FailureReason::Dns, "does not resolve");
}

// ------------------------------------------------------------------- DNS

#[tokio::test]
async fn dns_answer_matches_expected_addresses() {
    let server = dns_server(DnsMode::Normal).await;
    let o = dns(
        &format!(
            "name: {}\nserver: {server}\nexpect_answers: [{}]\nexpect_min_answers: 2\n",
            zone::PORTAL,
            zone::PORTAL_A[1]
        ),
        T,
    )
    .await;
    assert_ok(&o);
    assert_eq!(phase_names(&o), [phase::RESPONSE]);
    assert_eq!(detail(&o, "rcode"), Some("NOERROR"));
    assert_eq!(detail(&o, "answers"), Some("A 192.0.2.10; A 192.0.2.11"));
}

#[tokio::test]
async fn dns_answers_are_compared_in_canonical_form() {
    let server = dns_server(DnsMode::Normal).await;
    let o = dns(
        &format!(
            "name: {}\ntype: MX\nserver: {server}\nexpect_answers: ['10 Mail.Gemeente.NL.']\n",
            zone::DOMAIN
        ),
        T,
    )
    .await;
    assert_ok(&o);
    let o = dns(
        &format!(
            "name: {}\ntype: TXT\nserver: {server}\nexpect_answers: ['{}']\n",
            zone::DOMAIN,
            zone::TXT
        ),
        T,
    )
    .await;
    assert_ok(&o);
    let o = dns(
        &format!(
            "name: {}\nserver: {server}\nexpect_answers: [{}]\nexpect_min_answers: 2\n",
            zone::WWW,
            zone::PORTAL
        ),
        T,
    )
    .await;
    assert_ok(&o);
}

#[tokio::test]
async fn dns_missing_answer_fails_expectation() {
    let server = dns_server(DnsMode::Normal).await;
    let o = dns(
        &format!(
            "name: {}\nserver: {server}\nexpect_answers: [192.0.2.99]\n",
            zone::PORTAL
        ),
        T,
    )
    .await;
    assert_failed(
        &o,
        FailureReason::Expectation,
        "answer '192.0.2.99' not among the answers",
    );
    let o = dns(
        &format!(
            "name: {}\nserver: {server}\nexpect_min_answers: 3\n",
            zone::PORTAL
        ),
        T,
    )
    .await;
    assert_failed(&o, FailureReason::Expectation, "2 A answers");
}

#[tokio::test]
async fn dns_nxdomain_fails_with_dns_unless_expected() {
    let server = dns_server(DnsMode::Normal).await;
    let o = dns(&format!("name: weg.gemeente.nl\nserver: {server}\n"), T).await;
    assert_failed(&o, FailureReason::Dns, "rcode NXDOMAIN");
    let o = dns(
        &format!("name: weg.gemeente.nl\nserver: {server}\nexpect_rcode: NXDOMAIN\n"),
        T,
    )
    .await;
    assert_ok(&o);
}

#[tokio::test]
async fn dns_ignores_a_reply_with_the_wrong_id() {
    let server = dns_server(DnsMode::WrongIdFirst).await;
    let o = dns(
        &format!(
            "name: {}\nserver: {server}\nexpect_min_answers: 2\n",
            zone::PORTAL
        ),
        T,
    )
    .await;
    assert_ok(&o);
}

#[tokio::test]
async fn dns_times_out_when_the_server_is_silent() {
    let server = dns_server(DnsMode::Silent).await;
    let timeout = Duration::from_millis(400);
    let started = Instant::now();
    let o = dns(
        &format!("name: {}\nserver: {server}\n", zone::PORTAL),
        timeout,
    )
    .await;
    assert_failed(&o, FailureReason::Timeout, "no answer from");
    assert!(
        started.elapsed() < timeout + SLACK,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn dns_garbage_reply_is_malformed() {
    let server = dns_server(DnsMode::Garbage).await;
    let o = dns(
        &format!("name: {}\nserver: {server}\n", zone::PORTAL),
        Duration::from_millis(400),
    )
    .await;
    assert_failed(&o, FailureReason::Malformed, "unparsable reply");
    let o = dns(
        &format!("name: {}\nserver: {server}\ntransport: tcp\n", zone::PORTAL),
        T,
    )
    .await;
    assert_failed(&o, FailureReason::Malformed, "unparsable reply");
}

#[tokio::test]
async fn dns_is_refused_when_nothing_listens() {
    let server = closed_udp_port().await;
    let o = dns(&format!("name: {}\nserver: {server}\n", zone::PORTAL), T).await;
    assert_failed(&o, FailureReason::Refused, "port unreachable");
}

#[tokio::test]
async fn dns_over_tcp_times_connect_and_response() {
    let server = dns_server(DnsMode::WrongIdFirst).await;
    let o = dns(
        &format!(
            "name: {}\nserver: {server}\ntransport: tcp\nexpect_answers: [192.0.2.10]\n",
            zone::PORTAL
        ),
        T,
    )
    .await;
    assert_ok(&o);
    assert_eq!(phase_names(&o), [phase::CONNECT, phase::RESPONSE]);
}

// ------------------------------------------------------------------ ICMP

#[tokio::test]
async fn icmp_echo_to_localhost() {
    let kind = CheckKind::Icmp(spec("host: 127.0.0.1\ncount: 2\n"));
    match probe::run_with_details(&kind, T).await {
        Ok(o) => {
            assert_ok(&o);
            assert_eq!(phase_names(&o), [phase::RTT]);
            assert_eq!(detail(&o, "replies"), Some("2/2"));
        }
        Err(probe::ProbeError::IcmpPermission(msg)) => {
            assert!(
                !running_as_root(),
                "root may open raw ICMP sockets, yet: {msg}"
            );
        }
        Err(other) => panic!("unexpected monitor error: {other}"),
    }
}

#[tokio::test]
async fn icmp_fails_with_dns_on_an_unknown_name() {
    let o = run(CheckKind::Icmp(spec("host: nonexistent.invalid\n")), T).await;
    assert_failed(&o, FailureReason::Dns, "nonexistent.invalid");
}
