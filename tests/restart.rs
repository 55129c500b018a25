//! `kill -9` in the middle of an outage: after a restart no acknowledged
//! result is lost, the ongoing incident continues as the same incident,
//! the time the daemon was down counts as unknown (not down), and the
//! period-to-date SLA figures come back from the store.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod support;
use support::daemon::{Daemon, get, metric, wait_until as wait_for};

use continuity::store::{HistoryStore, ResultStore};

/// A portal that answers 200 or 503, switchable from the test.
fn portal(healthy: Arc<AtomicBool>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let healthy = healthy.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let (status, body) = if healthy.load(Ordering::SeqCst) {
                    ("200 OK", "Welkom")
                } else {
                    ("503 Service Unavailable", "onderhoud")
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    addr
}

#[test]
fn kill_9_mid_outage_keeps_the_incident_and_counts_the_gap_as_unknown() {
    let healthy = Arc::new(AtomicBool::new(true));
    let target = portal(healthy.clone());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("continuity.db");
    let cfg = dir.path().join("continuity.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server:\n  listen: 127.0.0.1:0\ndefaults:\n  interval: 1s\n  timeout: 500ms\n  failure_threshold: 2\n  success_threshold: 2\nstore:\n  path: {}\nservices:\n  - id: portal\n    slas:\n      - {{ name: always, objective: 99, period: week, calendar: 24x7 }}\n    checks:\n      - id: home\n        http:\n          url: http://{target}/\n",
            db.display()
        ),
    )
    .unwrap();

    let mut daemon = Daemon::start(&cfg);
    let listen = daemon.addr;
    let state = |s: &str| format!("continuity_service_state{{service=\"portal\",state=\"{s}\"}}");
    wait_for("portal up", Duration::from_secs(15), || {
        (metric(&get(listen, "/metrics")?, &state("up"))? == 1.0).then_some(())
    });
    healthy.store(false, Ordering::SeqCst);
    let incident_start = wait_for("an open incident", Duration::from_secs(10), || {
        let body: serde_json::Value =
            serde_json::from_str(&get(listen, "/api/v1/incidents")?).ok()?;
        let list = body["incidents"].as_array()?.clone();
        (list.len() == 1 && list[0]["ongoing"] == true)
            .then(|| list[0]["start"].as_str().unwrap().to_string())
    });
    // Let some down time accrue and be written, then crash hard.
    std::thread::sleep(Duration::from_millis(2500));
    let sla = |listen, what: &str| -> Option<f64> {
        let body: serde_json::Value = serde_json::from_str(&get(listen, "/api/v1/sla")?).ok()?;
        body["slas"][0][what].as_f64()
    };
    let good_before = sla(listen, "good_seconds").unwrap();
    assert!(good_before > 0.0);
    let killed_at = jiff::Timestamp::now();
    daemon.kill();
    std::thread::sleep(Duration::from_secs(4));

    let mut daemon = Daemon::start(&cfg);
    let listen = daemon.addr;
    wait_for("down again after restart", Duration::from_secs(15), || {
        (metric(&get(listen, "/metrics")?, &state("down"))? == 1.0).then_some(())
    });
    // The period-to-date figures are back: the good time before the
    // outage is exactly what it was before the crash.
    let good_after = sla(listen, "good_seconds").unwrap();
    assert!(
        (good_after - good_before).abs() < 0.002,
        "good seconds {good_before} before the crash, {good_after} after"
    );
    assert!(
        sla(listen, "unknown_seconds").unwrap() >= 2.0,
        "the crash gap counts as unknown"
    );
    // The same incident goes on: one incident, same start, still open.
    let body: serde_json::Value =
        serde_json::from_str(&get(listen, "/api/v1/incidents").unwrap()).unwrap();
    let list = body["incidents"].as_array().unwrap();
    assert_eq!(list.len(), 1, "one incident across the restart: {body}");
    assert_eq!(list[0]["start"].as_str().unwrap(), incident_start);
    assert_eq!(list[0]["ongoing"], true);

    // Recovery closes that same incident.
    healthy.store(true, Ordering::SeqCst);
    wait_for("up again", Duration::from_secs(10), || {
        (metric(&get(listen, "/metrics")?, &state("up"))? == 1.0).then_some(())
    });
    // The store is written in batches (within ~100 ms).
    let body = wait_for("the incident to close", Duration::from_secs(5), || {
        let body: serde_json::Value =
            serde_json::from_str(&get(listen, "/api/v1/incidents")?).ok()?;
        (body["incidents"][0]["ongoing"] == false).then_some(body)
    });
    let list = body["incidents"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{body}");
    assert_eq!(list[0]["start"].as_str().unwrap(), incident_start);
    let availability = metric(
        &get(listen, "/metrics").unwrap(),
        "continuity_sla_availability_ratio{service=\"portal\",sla=\"always\",supplier=\"unknown\"}",
    )
    .unwrap();
    assert!(availability < 1.0 && availability > 0.0, "{availability}");
    assert!(daemon.terminate(Duration::from_secs(10)).success());

    // The store's account of the outage: down before the crash, unknown
    // while the daemon was away, down again after; no result lost.
    let store = continuity::store::sqlite::SqliteStore::open(&db).unwrap();
    let from = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10);
    let to = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(1);
    let transitions = store.service_transitions(Some("portal"), from, to).unwrap();
    let states: Vec<&str> = transitions.iter().map(|t| t.state.as_str()).collect();
    let down_unknown_down = states.windows(3).any(|w| w == ["down", "unknown", "down"]);
    assert!(
        down_unknown_down,
        "expected down, unknown, down around the crash: {states:?}"
    );
    let unknown = transitions
        .iter()
        .find(|t| t.state == "unknown" && t.at > killed_at - jiff::SignedDuration::from_secs(3))
        .unwrap();
    assert!(
        unknown.at <= killed_at + jiff::SignedDuration::from_secs(2),
        "unknown from {} but killed at {killed_at}",
        unknown.at
    );
    let mut results = Vec::new();
    store
        .results("portal", Some("home"), from, to, &mut |r| results.push(r))
        .unwrap();
    let before_kill = results.iter().filter(|r| r.at < killed_at).count();
    assert!(
        before_kill >= 5,
        "results before the crash were lost: {before_kill}"
    );
}
