//! Alerts through the real daemon: a target goes down, `ServiceDown`
//! reaches a webhook receiver once; a `kill -9` and restart in the middle
//! of the outage sends no second notification, and the resolution still
//! comes when the target is back.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod support;
use support::daemon::{Daemon, get, metric, serve, wait_for};

fn notifications(sink: &Mutex<Vec<serde_json::Value>>, status: &str) -> usize {
    sink.lock()
        .unwrap()
        .iter()
        .filter(|n| n.to_string().contains("ServiceDown") && n["status"] == status)
        .count()
}

#[test]
fn service_down_is_notified_once_across_a_crash_and_resolves() {
    let healthy = Arc::new(AtomicBool::new(true));
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let target_addr = target.local_addr().unwrap();
    let h = healthy.clone();
    serve(target, move |_| {
        if h.load(Ordering::SeqCst) {
            (200, "Welkom".into())
        } else {
            (503, "weg".into())
        }
    });
    let sink: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let hook = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_addr = hook.local_addr().unwrap();
    let s = sink.clone();
    serve(hook, move |req| {
        if let Some((_, body)) = req.split_once("\r\n\r\n")
            && let Ok(v) = serde_json::from_str(body)
        {
            s.lock().unwrap().push(v);
        }
        (200, "ok".into())
    });

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("continuity.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"location: test-lab
server:
  listen: 127.0.0.1:0
defaults:
  interval: 1s
  timeout: 500ms
  failure_threshold: 2
  success_threshold: 2
store:
  path: {db}
alerting:
  receivers:
    - name: incident-tool
      min_severity: page
      group_wait: 0s
      group_interval: 0s
      webhook:
        url: http://{hook_addr}/hook
services:
  - id: portal
    category: portal
    supplier: hosting-partner
    checks:
      - id: home
        http:
          url: http://{target_addr}/
"#,
            db = dir.path().join("c.db").display()
        ),
    )
    .unwrap();

    let mut daemon = Daemon::start(&cfg);
    wait_for("the portal up", Duration::from_secs(10), || {
        get(daemon.addr, "/metrics").is_some_and(|m| {
            metric(
                &m,
                "continuity_service_state{service=\"portal\",state=\"up\"}",
            ) == Some(1.0)
        })
    });
    healthy.store(false, Ordering::SeqCst);
    wait_for(
        "ServiceDown at the webhook",
        Duration::from_secs(20),
        || notifications(&sink, "firing") >= 1,
    );
    let first = sink
        .lock()
        .unwrap()
        .iter()
        .find(|n| n.to_string().contains("ServiceDown"))
        .cloned()
        .unwrap();
    let text = first.to_string();
    assert!(text.contains("\"service\":\"portal\""), "{text}");
    assert!(text.contains("\"location\":\"test-lab\""), "{text}");
    assert!(text.contains("\"severity\":\"page\""), "{text}");

    // Crash in the middle of the outage, and come back.
    daemon.kill();
    let daemon = Daemon::start(&cfg);
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        notifications(&sink, "firing"),
        1,
        "a second ServiceDown after the restart"
    );

    healthy.store(true, Ordering::SeqCst);
    wait_for("the resolution", Duration::from_secs(20), || {
        notifications(&sink, "resolved") >= 1
    });
    assert_eq!(notifications(&sink, "firing"), 1);
    drop(daemon);
}
