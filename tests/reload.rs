//! What a reload applies and what it cannot: a rotated API token takes
//! effect at once (the old one stops working), `server.listen` and
//! `store.path` wait for a restart and say so, and an identical file
//! leaves probing alone. In-process daemons on ports of their own.

use std::time::Duration;

mod support;
use support::daemon::{InProcess, get, metric, request, wait_for};

fn write_config(dir: &std::path::Path, extra_server: &str, store: &str) {
    std::fs::write(
        dir.join("continuity.yaml"),
        format!(
            "server:\n  listen: 127.0.0.1:0\n  enable_reload_endpoint: true\n  api_token_file: token\n{extra_server}defaults:\n  interval: 1s\n  timeout: 500ms\nstore:\n  path: {store}\nservices:\n  - id: portal\n    checks:\n      - id: home\n        tcp: {{ target: \"127.0.0.1:9\" }}\n"
        ),
    )
    .unwrap();
}

#[test]
fn a_rotated_api_token_takes_effect_with_the_reload() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "old-token\n").unwrap();
    write_config(dir.path(), "", "continuity.db");
    let daemon = InProcess::start(&dir.path().join("continuity.yaml"));
    let addr = daemon.addr;
    let list = |token| request(addr, "GET", "/api/v1/maintenances", Some(token), "").0;
    assert_eq!(list("old-token"), 200);
    std::fs::write(dir.path().join("token"), "new-token\n").unwrap();
    let (code, body) = request(addr, "POST", "/-/reload", Some("old-token"), "");
    assert_eq!(code, 200, "{body}");
    assert_eq!(list("new-token"), 200);
    assert_eq!(list("old-token"), 401, "the old token still works");
}

#[test]
fn listen_and_store_changes_wait_for_a_restart_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t\n").unwrap();
    write_config(dir.path(), "", "continuity.db");
    let daemon = InProcess::start(&dir.path().join("continuity.yaml"));
    let addr = daemon.addr;
    let pending = || {
        metric(
            &get(addr, "/metrics").unwrap(),
            "continuity_config_reload_pending_restart",
        )
    };
    assert_eq!(pending(), Some(0.0));
    // The file now asks for another store (and the same listen address).
    write_config(dir.path(), "", "elsewhere.db");
    assert_eq!(request(addr, "POST", "/-/reload", Some("t"), "").0, 200);
    assert_eq!(pending(), Some(1.0));
    assert!(
        !dir.path().join("elsewhere.db").exists(),
        "the store moved without a restart"
    );
    // Back to the running store: nothing is pending any more.
    write_config(dir.path(), "", "continuity.db");
    assert_eq!(request(addr, "POST", "/-/reload", Some("t"), "").0, 200);
    assert_eq!(pending(), Some(0.0));
}

#[test]
fn an_identical_file_is_a_reload_that_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t\n").unwrap();
    write_config(dir.path(), "", "continuity.db");
    let daemon = InProcess::start(&dir.path().join("continuity.yaml"));
    let addr = daemon.addr;
    let probes = || {
        metric(
            &get(addr, "/metrics").unwrap(),
            "continuity_probes_total{service=\"portal\",check=\"home\",kind=\"tcp\",result=\"failure\"}",
        )
        .unwrap_or(0.0)
    };
    wait_for("a first probe", Duration::from_secs(5), || probes() >= 1.0);
    for _ in 0..3 {
        let (code, body) = request(addr, "POST", "/-/reload", Some("t"), "");
        assert_eq!(code, 200, "{body}");
    }
    let before = probes();
    std::thread::sleep(Duration::from_millis(2200));
    assert!(probes() >= before + 2.0, "probing stalled after reloads");
    assert_eq!(
        metric(
            &get(addr, "/metrics").unwrap(),
            "continuity_config_last_reload_successful"
        ),
        Some(1.0)
    );
}
