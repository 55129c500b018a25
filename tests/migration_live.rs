//! A cutover on a running daemon (in-process, real local servers): the
//! phase and supplier are on /metrics from the start, the window's end
//! probes every check at once, and that round is recorded as the
//! cutover's verification, shown by `GET /api/v1/migrations`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

mod support;
use support::daemon::{InProcess, metric, request, wait_until};

/// The new supplier's portal: answers every request with 200.
fn new_portal() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nWelkom",
            );
        }
    });
    addr
}

#[test]
fn the_window_end_probes_every_check_and_records_the_verification() {
    let portal = new_portal();
    // A port nothing listens on: the login service did not come across.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let now = jiff::Timestamp::now();
    let start = now - jiff::SignedDuration::from_hours(1);
    let end = jiff::Timestamp::from_millisecond(
        (now + jiff::SignedDuration::from_secs(3)).as_millisecond(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("continuity.yaml");
    std::fs::write(
        &cfg,
        format!(
            "suppliers:\n  northhost: {{ name: \"NorthHost B.V.\" }}\nservices:\n  - id: portal\n    category: portal\n    supplier: in-house\n    migration:\n      from: in-house\n      to: northhost\n      cutover: {{ start: {start}, end: {end}, reference: CHG-7 }}\n      hypercare: 2w\n    checks:\n      - id: home\n        interval: 1h\n        http: {{ url: \"http://{portal}/\" }}\n      - id: login\n        interval: 1h\n        tcp: {{ target: \"{closed}\" }}\n"
        ),
    )
    .unwrap();
    let daemon = InProcess::start(&cfg);
    let listen = daemon.addr;

    // The engine registers the services just after the listener is up:
    // the series appear within a moment of the start, still in the window.
    let metrics = wait_until("the service series", Duration::from_secs(2), || {
        let m = request(listen, "GET", "/metrics", None, "").1;
        m.contains("continuity_service_info{").then_some(m)
    });
    assert_eq!(
        metric(
            &metrics,
            "continuity_service_info{service=\"portal\",supplier=\"northhost\",phase=\"cutover\",category=\"portal\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "continuity_service_phase{service=\"portal\",phase=\"cutover\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "continuity_migration_cutover_end_timestamp_seconds{service=\"portal\",from=\"in-house\",to=\"northhost\",reference=\"CHG-7\"}"
        ),
        Some(end.as_millisecond() as f64 / 1000.0)
    );

    // Hourly checks: only the verification round probes them now.
    let status = wait_until("the verification round", Duration::from_secs(15), || {
        let body: serde_json::Value =
            serde_json::from_str(&request(listen, "GET", "/api/v1/migrations", None, "").1).ok()?;
        let portal = body["migrations"][0].clone();
        (!portal["verification"].is_null()).then_some(portal)
    });
    assert_eq!(status["phase"], "hypercare");
    assert_eq!(status["supplier"]["name"], "NorthHost B.V.");
    let v = &status["verification"];
    assert_eq!(v["reference"], "CHG-7");
    assert_eq!(v["passed"], false);
    let failing: Vec<&str> = v["failing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(failing, ["login: refused"]);
    let verified_at: jiff::Timestamp = v["at"].as_str().unwrap().parse().unwrap();
    assert!(verified_at >= end && verified_at - end < jiff::SignedDuration::from_secs(2));
    let days = status["hypercare_days_left"].as_f64().unwrap();
    assert!((13.9..=14.0).contains(&days), "{days}");

    // Seconds into hypercare, with no baseline on record: no verdict.
    let (code, body) = request(listen, "GET", "/api/v1/migrations/portal/compare", None, "");
    assert_eq!(code, 200, "{body}");
    let compared: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(compared["comparisons"][0]["overall"], "insufficient data");
    // Latency per check: home answered the verification round, login
    // never answered, so only home is listed, with nothing before.
    let latency = &compared["comparisons"][0]["measures"][3];
    assert_eq!(latency["measure"], "latency");
    let checks = latency["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 1, "{latency}");
    assert_eq!(checks[0]["check"], "home");
    assert_eq!(checks[0]["before_samples"], 0);
    assert_eq!(checks[0]["verdict"], "insufficient data");
    assert_eq!(compared["reference"], "CHG-7");
    let (code, body) = request(listen, "GET", "/api/v1/migrations/portl/compare", None, "");
    assert_eq!(code, 404);
    assert!(body.contains("did you mean 'portal'?"), "{body}");
}
