//! Side-by-side probing of an old and a new endpoint (`compare_with`):
//! two local HTTP servers stand for the old and the new supplier, and each
//! way the new one can differ is reported as the right aspect, while what
//! differs on every request (a timestamp) is learned as noise.

mod support;

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use continuity::config::{CheckKind, Config};
use continuity::probe::parity::{Aspect, ParityResult};
use continuity::probe::{self, ProbeOutcome};
use support::daemon::{InProcess, get, metric, wait_until};
use support::*;

const T: Duration = Duration::from_secs(3);

/// One side: what it answers can be changed while it runs. `{n}` in the
/// body becomes a number that differs on every request, as a timestamp or
/// a CSRF token does.
#[derive(Clone)]
struct Side {
    status: Arc<AtomicU16>,
    body: Arc<Mutex<String>>,
    delay_ms: Arc<AtomicU64>,
    server: Arc<HttpServer>,
}

static REQUESTS: AtomicU64 = AtomicU64::new(0);

impl Side {
    async fn start(body: &str) -> Side {
        let status = Arc::new(AtomicU16::new(200));
        let text = Arc::new(Mutex::new(body.to_string()));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (s, b, d) = (status.clone(), text.clone(), delay_ms.clone());
        let handler: Handler = Arc::new(move |_req| {
            let (s, b, d) = (s.clone(), b.clone(), d.clone());
            Box::pin(async move {
                let delay = d.load(Ordering::SeqCst);
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                let n = REQUESTS.fetch_add(1, Ordering::SeqCst) * 7919 + 1_733_526_000;
                let body = b.lock().unwrap().replace("{n}", &n.to_string());
                respond(s.load(Ordering::SeqCst), body)
            })
        });
        Side {
            status,
            body: text,
            delay_ms,
            server: Arc::new(http_server(handler).await),
        }
    }

    fn url(&self) -> String {
        self.server.url("/")
    }

    fn set_body(&self, body: &str) {
        *self.body.lock().unwrap() = body.to_string();
    }
}

const PAGE: &str = "<html><head><meta name=csrf content=\"{n}\"></head><body><h1>Welkom bij de gemeente Groningen</h1><p>Vraag een paspoort aan, meld een verhuizing of bekijk uw afvalkalender.</p><footer>Gegenereerd om {n}</footer></body></html>";
const JSON: &str = r#"{"status":"ok","version":"2.4","generated":"{n}","checks":{"db":"up"}}"#;

async fn probe_pair(old: &Side, new: &Side, extra: &str) -> ProbeOutcome {
    let yaml = format!("url: {}\ncompare_with: {}\n{extra}", new.url(), old.url());
    let kind = CheckKind::Http(spec(&yaml));
    probe::run(&kind, T)
        .await
        .expect("the monitor could run the probe")
}

fn parity(o: &ProbeOutcome) -> &ParityResult {
    o.parity
        .as_deref()
        .expect("a compare_with check reports parity")
}

fn aspects(p: &ParityResult) -> Vec<Aspect> {
    p.mismatches.iter().map(|m| m.aspect).collect()
}

#[tokio::test]
async fn identical_responses_match() {
    let (old, new) = (Side::start(PAGE).await, Side::start(PAGE).await);
    let o = probe_pair(
        &old,
        &new,
        "compare: { status: true, body: similarity, max_latency_ratio: 50 }\n",
    )
    .await;
    assert!(o.success());
    let p = parity(&o);
    assert_eq!(p.matched, Some(true), "{p:?}");
    assert!(p.old_up);
    assert_eq!(p.similarity, Some(1.0), "{p:?}");
    assert!(p.latency_ratio.is_some_and(|r| r > 0.0));
    // Old is asked twice (noise), new once: the same request each time.
    assert_eq!((old.server.connections(), new.server.connections()), (2, 1));
}

#[tokio::test]
async fn a_changed_status_is_a_status_mismatch() {
    let (old, new) = (Side::start(PAGE).await, Side::start(PAGE).await);
    new.status.store(203, Ordering::SeqCst);
    let o = probe_pair(&old, &new, "").await;
    assert!(o.success(), "203 is still a success for the check itself");
    let p = parity(&o);
    assert_eq!(p.matched, Some(false));
    assert_eq!(aspects(p), [Aspect::Status], "{p:?}");
    assert!(
        p.mismatches[0]
            .detail
            .contains("status 203, old answers 200"),
        "{p:?}"
    );
}

#[tokio::test]
async fn a_changed_json_field_is_a_json_fields_mismatch() {
    let (old, new) = (Side::start(JSON).await, Side::start(JSON).await);
    new.set_body(&JSON.replace("2.4", "2.5"));
    let o = probe_pair(
        &old,
        &new,
        "compare: { status: true, body: similarity, json_fields: [/version, /status] }\n",
    )
    .await;
    let p = parity(&o);
    assert_eq!(aspects(p), [Aspect::JsonFields], "{p:?}");
    assert!(
        p.mismatches[0]
            .detail
            .contains("/version is \"2.5\", old has \"2.4\""),
        "{p:?}"
    );
}

#[tokio::test]
async fn a_body_that_differs_beyond_its_volatile_parts_is_a_body_mismatch() {
    let (old, new) = (Side::start(PAGE).await, Side::start(PAGE).await);
    new.set_body("<html><body><h1>Onderhoud</h1><p>Deze dienst is tijdelijk niet beschikbaar. Probeer het later opnieuw.</p><footer>{n}</footer></body></html>");
    let o = probe_pair(&old, &new, "").await;
    let p = parity(&o);
    assert_eq!(aspects(p), [Aspect::Body], "{p:?}");
    assert!(p.similarity.is_some_and(|s| s < 0.9), "{p:?}");
}

#[tokio::test]
async fn a_slow_new_side_is_a_latency_mismatch() {
    let (old, new) = (Side::start(PAGE).await, Side::start(PAGE).await);
    new.delay_ms.store(300, Ordering::SeqCst);
    let o = probe_pair(
        &old,
        &new,
        "compare: { status: true, body: similarity, max_latency_ratio: 1.5 }\n",
    )
    .await;
    let p = parity(&o);
    assert_eq!(aspects(p), [Aspect::Latency], "{p:?}");
    assert!(p.latency_ratio.is_some_and(|r| r > 1.5), "{p:?}");
}

#[tokio::test]
async fn a_timestamp_that_differs_on_every_request_is_learned_as_noise() {
    let (old, new) = (Side::start(PAGE).await, Side::start(PAGE).await);
    // `exact`: without the noise learned from old's two answers, the
    // differing timestamps and tokens alone would be a mismatch.
    let o = probe_pair(&old, &new, "compare: { body: exact }\n").await;
    let p = parity(&o);
    assert_eq!(p.matched, Some(true), "{p:?}");
    assert_eq!(p.similarity, Some(1.0), "{p:?}");
    assert!(p.volatile > 0, "{p:?}");

    let (old, new) = (Side::start(JSON).await, Side::start(JSON).await);
    let o = probe_pair(
        &old,
        &new,
        "compare: { json_fields: [/generated, /version] }\n",
    )
    .await;
    assert_eq!(parity(&o).matched, Some(true), "{:?}", parity(&o));
}

#[tokio::test]
async fn configured_ignore_patterns_hide_volatile_parts() {
    let (old, new) = (
        Side::start("build 1 {n}").await,
        Side::start("build 2 {n}").await,
    );
    let o = probe_pair(&old, &new, "compare: { body: exact }\n").await;
    assert_eq!(aspects(parity(&o)), [Aspect::Body]);
    let o = probe_pair(
        &old,
        &new,
        "compare: { body: exact, ignore: ['build \\d+'] }\n",
    )
    .await;
    assert_eq!(parity(&o).matched, Some(true), "{:?}", parity(&o));
}

#[tokio::test]
async fn parity_is_not_judged_while_the_old_side_is_down() {
    let new = Side::start(PAGE).await;
    let gone = closed_port().await;
    let kind = CheckKind::Http(spec(&format!(
        "url: {}\ncompare_with: http://127.0.0.1:{}/\n",
        new.url(),
        gone.port()
    )));
    let o = probe::run(&kind, T).await.unwrap();
    assert!(o.success(), "the check's own success is about the new side");
    let p = parity(&o);
    assert_eq!((p.matched, p.old_up), (None, false), "{p:?}");
}

#[tokio::test]
async fn a_new_side_that_is_down_mismatches_on_status() {
    let old = Side::start(PAGE).await;
    let gone = closed_port().await;
    let kind = CheckKind::Http(spec(&format!(
        "url: http://127.0.0.1:{}/\ncompare_with: {}\n",
        gone.port(),
        old.url()
    )));
    let o = probe::run(&kind, T).await.unwrap();
    assert!(!o.success());
    assert!(aspects(parity(&o)).contains(&Aspect::Status));
}

fn rejected(check: &str) -> String {
    let yaml =
        format!("services:\n  - id: portal\n    checks:\n      - id: home\n        http:\n{check}");
    match Config::from_str("parity.yaml", &yaml) {
        Ok(_) => panic!("should be rejected:\n{yaml}"),
        Err(e) => e
            .issues
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[test]
fn bad_parity_configuration_is_refused_at_its_place_with_a_fix() {
    let e = rejected(
        "          url: https://portal.new.example/\n          compare_with: http://portal.old.example/\n",
    );
    assert!(
        e.starts_with(
            "parity.yaml:7:25: compare_with 'http://portal.old.example/' uses http, url uses https"
        ),
        "{e}"
    );
    assert!(
        e.contains("compare_with: https://portal.old.example/"),
        "{e}"
    );

    let e = rejected(
        "          url: https://a.example/\n          compare_with: https://b.example/\n          compare: { status: true, bodyy: similarity }\n",
    );
    assert!(
        e.contains("parity.yaml:8:")
            && e.contains("unknown field 'bodyy'")
            && e.contains("did you mean 'body'"),
        "{e}"
    );

    let e = rejected(
        "          url: https://a.example/\n          compare_with: https://b.example/\n          compare: { answers: true }\n",
    );
    assert!(
        e.contains("aspect 'answers' does not apply to a http check")
            && e.contains("status, body, json_fields, latency"),
        "{e}"
    );

    let e = rejected(
        "          url: https://a.example/\n          compare_with: https://b.example/\n          compare: { body: fuzzy }\n",
    );
    assert!(
        e.contains("body 'fuzzy' is not a way to compare bodies"),
        "{e}"
    );

    let e = rejected(
        "          url: https://a.example/\n          compare_with: https://b.example/\n          compare: { ignore: ['csrf=[a-z'] }\n",
    );
    assert!(
        e.contains("parity.yaml:8:") && e.contains("'csrf=[a-z' is not a valid regular expression"),
        "{e}"
    );

    let e = rejected(
        "          url: https://a.example/\n          compare_with: https://b.example/\n          compare: { json_fields: [version] }\n",
    );
    assert!(
        e.contains("'version' is not a JSON pointer") && e.contains("/version"),
        "{e}"
    );

    let e = rejected("          url: https://a.example/\n          compare: { status: true }\n");
    assert!(e.contains("compare without compare_with"), "{e}");
}

#[test]
fn the_issue_example_loads_as_written() {
    let yaml = "services:\n  - id: citizen-portal\n    checks:\n      - id: homepage\n        http:\n          url: https://portal.new.example/\n          compare_with: https://portal.old.example/\n          compare: { status: true, body: similarity, json_fields: [/version, /status], max_latency_ratio: 1.5 }\n";
    Config::from_str("catalogue.yaml", yaml).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_daemon_exports_parity_series_and_shows_since_when_parity_fails() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (old, new) = rt.block_on(async { (Side::start(JSON).await, Side::start(JSON).await) });
    new.set_body(&JSON.replace("2.4", "3.0"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("continuity.yaml");
    std::fs::write(
        &config,
        format!(
            "store:\n  path: {}\nservices:\n  - id: portal\n    checks:\n      - id: home\n        interval: 1s\n        timeout: 900ms\n        http:\n          url: {}\n          compare_with: {}\n          compare: {{ status: true, body: similarity, json_fields: [/version, /status], max_latency_ratio: 1.5 }}\n",
            dir.path().join("store.db").display(),
            new.url(),
            old.url()
        ),
    )
    .unwrap();
    let daemon = InProcess::start(&config);
    let labels = "{service=\"portal\",check=\"home\"}";
    let metrics = wait_until("parity series", Duration::from_secs(15), || {
        get(daemon.addr, "/metrics")
            .filter(|m| m.contains(&format!("continuity_parity_match{labels} 0")))
    });
    assert!(metric(&metrics, "continuity_parity_mismatches_total{service=\"portal\",check=\"home\",aspect=\"json_fields\"}").is_some_and(|n| n >= 1.0), "{metrics}");
    assert_eq!(
        metric(
            &metrics,
            "continuity_parity_mismatches_total{service=\"portal\",check=\"home\",aspect=\"status\"}"
        ),
        Some(0.0)
    );
    assert!(
        metric(
            &metrics,
            &format!("continuity_parity_latency_ratio{labels}")
        )
        .is_some_and(|r| r > 0.0)
    );
    assert!(
        metric(
            &metrics,
            &format!("continuity_parity_similarity_ratio{labels}")
        )
        .is_some_and(|r| r > 0.5 && r < 1.0)
    );
    assert_eq!(
        metric(&metrics, &format!("continuity_parity_compare_up{labels}")),
        Some(1.0)
    );

    let status: serde_json::Value =
        serde_json::from_str(&get(daemon.addr, "/api/v1/status").unwrap()).unwrap();
    let parity = &status["services"][0]["checks"][0]["parity"];
    assert_eq!(parity["matched"], false, "{parity}");
    assert!(parity["failing_since"].is_string(), "{parity}");
    let aspects: Vec<&str> = parity["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["aspect"].as_str())
        .collect();
    assert!(aspects.contains(&"json_fields"), "{parity}");

    new.set_body(JSON);
    wait_until("parity back to match", Duration::from_secs(15), || {
        get(daemon.addr, "/metrics")
            .filter(|m| m.contains(&format!("continuity_parity_match{labels} 1")))
    });
    daemon.stop().unwrap();
    drop(rt);
}

// ------------------------------------------------- the other kinds

async fn run_kind(kind: CheckKind) -> ProbeOutcome {
    probe::run(&kind, T)
        .await
        .expect("the monitor could run the probe")
}

#[tokio::test]
async fn tcp_parity_is_both_connecting() {
    let old = line_server("220 mail.old ESMTP\r\n", |_| String::new()).await;
    let new = line_server("220 mail.new ESMTP\r\n", |_| String::new()).await;
    let o = run_kind(CheckKind::Tcp(spec(&format!(
        "target: {new}\ncompare_with: {old}\n"
    ))))
    .await;
    assert_eq!(parity(&o).matched, Some(true), "{:?}", parity(&o));

    let gone = closed_port().await;
    let o = run_kind(CheckKind::Tcp(spec(&format!(
        "target: {gone}\ncompare_with: {old}\n"
    ))))
    .await;
    assert_eq!(aspects(parity(&o)), [Aspect::Connect], "{:?}", parity(&o));
}

#[tokio::test]
async fn tls_parity_compares_issuer_expiry_and_names() {
    let old_ca = TestCa::new("Old Supplier CA");
    let new_ca = TestCa::new("New Supplier CA");
    let old = tls_server(&old_ca.leaf(&["localhost"], Validity::Current)).await;
    let same = tls_server(&old_ca.leaf(&["localhost"], Validity::Current)).await;
    let other =
        tls_server(&new_ca.leaf(&["localhost", "portal.new.example"], Validity::DaysLeft(10)))
            .await;
    let check = |new: std::net::SocketAddr| {
        CheckKind::Tls(spec(&format!(
            "target: localhost:{}\ncompare_with: localhost:{}\ntls_verify: false\n",
            new.port(),
            old.port()
        )))
    };
    let o = run_kind(check(same)).await;
    assert_eq!(parity(&o).matched, Some(true), "{:?}", parity(&o));

    let o = run_kind(check(other)).await;
    let p = parity(&o);
    assert_eq!(
        aspects(p),
        [Aspect::Issuer, Aspect::Expiry, Aspect::Sans],
        "{p:?}"
    );
    assert!(p.mismatches[0].detail.contains("New Supplier CA"), "{p:?}");
}

/// A DNS server that answers every A question with `ip`.
async fn dns_answering(ip: &'static str) -> std::net::SocketAddr {
    use hickory_proto::op::{Message, OpCode};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record};
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let question = q.queries[0].clone();
            let mut m = Message::response(q.metadata.id, OpCode::Query);
            m.add_query(question.clone());
            m.add_answer(Record::from_rdata(
                question.name().clone(),
                60,
                RData::A(A(ip.parse().unwrap())),
            ));
            let _ = socket.send_to(&m.to_vec().unwrap(), from).await;
        }
    });
    addr
}

#[tokio::test]
async fn dns_parity_compares_the_answer_sets() {
    let old = dns_server(DnsMode::Normal).await;
    let same = dns_server(DnsMode::Normal).await;
    let other = dns_answering("198.51.100.7").await;
    let check = |new: std::net::SocketAddr| {
        CheckKind::Dns(spec(&format!(
            "name: {}\nserver: {new}\ncompare_with: {old}\n",
            zone::PORTAL
        )))
    };
    let o = run_kind(check(same)).await;
    assert_eq!(parity(&o).matched, Some(true), "{:?}", parity(&o));
    let o = run_kind(check(other)).await;
    let p = parity(&o);
    assert_eq!(aspects(p), [Aspect::Answers], "{p:?}");
    assert!(p.mismatches[0].detail.contains("198.51.100.7"), "{p:?}");
}

#[tokio::test]
async fn sip_parity_compares_response_codes() {
    use continuity::probe::sip::responder::{self, LineBehaviour, LineState, StateFn};
    async fn line(state: LineState) -> std::net::SocketAddr {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let f: StateFn = Arc::new(move || state);
        tokio::spawn(responder::serve_udp(
            socket,
            LineBehaviour::default(),
            f,
            std::future::pending(),
        ));
        addr
    }
    let old = line(LineState::Up).await;
    let same = line(LineState::Up).await;
    let down = line(LineState::Unavailable).await;
    let check = |new: std::net::SocketAddr| {
        CheckKind::Sip(Box::new(spec(&format!(
            "uri: sip:ping@127.0.0.1:{}\ncompare_with: sip:ping@127.0.0.1:{}\n",
            new.port(),
            old.port()
        ))))
    };
    let o = run_kind(check(same)).await;
    assert_eq!(parity(&o).matched, Some(true), "{:?}", parity(&o));
    let o = run_kind(check(down)).await;
    let p = parity(&o);
    assert_eq!(aspects(p), [Aspect::Code], "{p:?}");
    assert!(
        p.mismatches[0].detail.contains("SIP 503, old answers 200"),
        "{p:?}"
    );
}

#[test]
fn other_kinds_refuse_aspects_they_cannot_compare() {
    let yaml = "services:\n  - id: mail\n    checks:\n      - id: relay\n        tcp:\n          target: smtp.new.example:25\n          compare_with: smtp.old.example:25\n          compare: { body: similarity }\n";
    let e = Config::from_str("parity.yaml", yaml)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("parity.yaml:8:")
            && e.contains("aspect 'body' does not apply to a tcp check")
            && e.contains("connect, latency"),
        "{e}"
    );
    let yaml = "services:\n  - id: mail\n    checks:\n      - id: relay\n        tcp:\n          target: smtp.new.example:25\n          compare_with: smtp.old.example\n";
    let e = Config::from_str("parity.yaml", yaml)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("parity.yaml:7:25:"),
        "the old target's error is at compare_with: {e}"
    );
}
