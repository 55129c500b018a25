//! The JSON API of a running daemon (in-process, on a port of its own):
//! maintenance windows guarded by a bearer token take effect at once, and
//! SLA figures and incidents are served from the store.

use std::io::{Read, Write};
use std::time::Duration;

mod support;
use support::daemon::{InProcess, metric, request, wait_for};

#[test]
fn maintenance_windows_through_the_api_and_sla_figures_from_the_store() {
    let target_addr = support::welcome_target();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
    let cfg = dir.path().join("continuity.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server:\n  listen: 127.0.0.1:0\n  api_token_file: token\ndefaults:\n  interval: 1s\n  timeout: 500ms\nservices:\n  - id: portal\n    category: portal\n    supplier: hosting-partner\n    slas:\n      - {{ name: always, objective: 99.5, period: week, calendar: 24x7 }}\n    checks:\n      - id: home\n        http:\n          url: http://{target_addr}/\n"
        ),
    )
    .unwrap();
    let daemon = InProcess::start(&cfg);
    let listen = daemon.addr;
    wait_for("portal up", Duration::from_secs(10), || {
        metric(
            &request(listen, "GET", "/metrics", None, "").1,
            "continuity_service_state{service=\"portal\",state=\"up\"}",
        ) == Some(1.0)
    });

    let now = jiff::Timestamp::now();
    let window = format!(
        r#"{{"reference":"CHG-2026-0142","service":"portal","effect":"exclude","start":"{}","end":"{}"}}"#,
        now - jiff::SignedDuration::from_mins(1),
        now + jiff::SignedDuration::from_hours(1)
    );
    // No token, wrong token: refused.
    assert_eq!(
        request(listen, "POST", "/api/v1/maintenances", None, &window).0,
        401
    );
    assert_eq!(
        request(
            listen,
            "POST",
            "/api/v1/maintenances",
            Some("nope"),
            &window
        )
        .0,
        401
    );
    // A bad window says what is wrong.
    let (code, body) = request(
        listen,
        "POST",
        "/api/v1/maintenances",
        Some("s3cret"),
        r#"{"reference":"CHG-1","service":"portl","start":"2026-12-01T22:00:00+01:00","end":"2026-12-02T02:00:00+01:00"}"#,
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("unknown service 'portl'") && body.contains("did you mean 'portal'"),
        "{body}"
    );

    let (code, body) = request(
        listen,
        "POST",
        "/api/v1/maintenances",
        Some("s3cret"),
        &window,
    );
    assert_eq!(code, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = created["id"].as_i64().unwrap();
    wait_for("the window to take effect", Duration::from_secs(5), || {
        let m = request(listen, "GET", "/metrics", None, "").1;
        metric(&m, "continuity_maintenance_active{service=\"portal\"}") == Some(1.0)
            && metric(
                &m,
                "continuity_service_state{service=\"portal\",state=\"maintenance\"}",
            ) == Some(1.0)
    });
    let (code, body) = request(listen, "GET", "/api/v1/maintenances", Some("s3cret"), "");
    assert_eq!(code, 200);
    assert!(body.contains("CHG-2026-0142"), "{body}");

    // Deleting it ends its effect; it stays on record.
    assert_eq!(
        request(
            listen,
            "DELETE",
            &format!("/api/v1/maintenances/{id}"),
            Some("s3cret"),
            ""
        )
        .0,
        204
    );
    wait_for("the window to end", Duration::from_secs(5), || {
        let m = request(listen, "GET", "/metrics", None, "").1;
        metric(&m, "continuity_maintenance_active{service=\"portal\"}") == Some(0.0)
    });
    assert_eq!(
        request(
            listen,
            "DELETE",
            &format!("/api/v1/maintenances/{id}"),
            Some("s3cret"),
            ""
        )
        .0,
        404
    );

    // SLA figures from the store, the same rows `continuity sla` prints.
    // The store is written in batches: the up time reaches it within ~100 ms.
    let mut body = String::new();
    wait_for(
        "good time in the SLA figures",
        Duration::from_secs(5),
        || {
            let (code, b) = request(listen, "GET", "/api/v1/sla", None, "");
            assert_eq!(code, 200, "{b}");
            body = b;
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            v["slas"][0]["good_seconds"].as_f64().unwrap_or(0.0) > 0.0
        },
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let row = &v["slas"][0];
    assert_eq!(row["service"], "portal", "{body}");
    assert_eq!(row["sla"], "always", "{body}");
    assert_eq!(row["down_seconds"].as_f64(), Some(0.0), "{body}");
    let (code, body) = request(listen, "GET", "/api/v1/sla?period=2026-W99", None, "");
    assert_eq!(code, 400, "{body}");
    let (code, body) = request(listen, "GET", "/api/v1/incidents?from=yesterday", None, "");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("not a time"), "{body}");
    daemon.stop().expect("a clean stop");
}

#[test]
fn a_body_is_read_only_after_the_token_and_no_larger_than_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("continuity.yaml");
    std::fs::write(
        &cfg,
        "server:\n  listen: 127.0.0.1:0\n  api_token: s3cret\nservices:\n  - id: portal\n    checks:\n      - id: home\n        tcp: { target: \"127.0.0.1:9\" }\n",
    )
    .unwrap();
    let daemon = InProcess::start(&cfg);
    // Announce 2 MB and send a little: without the token, the answer comes
    // at once, without waiting for (or holding) the rest.
    let send = |auth: &str, length: usize| {
        let mut s = std::net::TcpStream::connect(daemon.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        write!(
            s,
            "POST /api/v1/maintenances HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{\"reference\":"
        )
        .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).to_string()
    };
    let answer = send("", 2_000_000);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer:?}");
    let answer = send("Authorization: bearer s3cret\r\n", 2_000_000);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert!(
        answer.contains("max_request_body_bytes") || answer.len() < 512,
        "{answer:?}"
    );
}
