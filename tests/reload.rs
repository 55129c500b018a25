//! What a reload applies and what it cannot: a rotated API token takes
//! effect at once (the old one stops working), so does a check's rotated
//! `password_file` (the same path, a new secret), `server.listen` and
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

/// A SIP registrar on 127.0.0.1 that challenges every REGISTER (digest,
/// MD5) and accepts only `password`; runs until the returned flag is set.
fn registrar(password: &'static str) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use continuity::probe::sip::{digest, message};
    use std::sync::atomic::{AtomicBool, Ordering};
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while !stopped.load(Ordering::Relaxed) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(message::Message::Request(r)) = message::parse(&buf[..n]) else {
                continue;
            };
            let challenge = "Digest realm=\"continuity.test\", nonce=\"n1\"";
            let answer = r.headers.get("authorization").map(|auth| {
                let field = |name: &str| {
                    let at = auth.find(&format!("{name}=")).map(|i| i + name.len() + 1);
                    let rest = at.map_or("", |i| &auth[i..]);
                    rest[..rest.find(',').unwrap_or(rest.len())]
                        .trim_matches('"')
                        .to_string()
                };
                let expected = digest::response(
                    &digest::parse_challenge(challenge).unwrap(),
                    &digest::Answer {
                        username: &field("username"),
                        password,
                        method: &r.method,
                        uri: &field("uri"),
                        body: b"",
                        nc: 0,
                        cnonce: "",
                    },
                );
                field("response") == expected
            });
            let reply = match answer {
                None => message::response_with(
                    &r,
                    401,
                    "Unauthorized",
                    Some("r"),
                    &[("WWW-Authenticate", challenge.to_string())],
                    None,
                ),
                Some(true) => {
                    let contact = r.headers.get("contact").unwrap_or_default();
                    message::response_with(
                        &r,
                        200,
                        "OK",
                        Some("r"),
                        &[("Contact", format!("{contact};expires=60"))],
                        None,
                    )
                }
                Some(false) => message::response_to(&r, 403, "Forbidden", Some("r")),
            };
            let _ = socket.send_to(&reply, from);
        }
    });
    (port, stop)
}

#[test]
fn a_rotated_password_file_reaches_the_check_with_the_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (port, stop) = registrar("new-secret");
    std::fs::write(dir.path().join("token"), "t\n").unwrap();
    std::fs::write(dir.path().join("sip-password"), "old-secret\n").unwrap();
    std::fs::write(
        dir.path().join("continuity.yaml"),
        format!(
            "server:\n  listen: 127.0.0.1:0\n  enable_reload_endpoint: true\n  api_token_file: token\ndefaults:\n  interval: 1s\n  timeout: 800ms\nstore:\n  path: continuity.db\nservices:\n  - id: phones\n    checks:\n      - id: register\n        sip: {{ uri: \"sip:127.0.0.1:{port}\", method: register, username: alice, password_file: sip-password }}\n"
        ),
    )
    .unwrap();
    let daemon = InProcess::start(&dir.path().join("continuity.yaml"));
    let addr = daemon.addr;
    let probes = |result: &str| {
        metric(
            &get(addr, "/metrics").unwrap(),
            &format!(
                "continuity_probes_total{{service=\"phones\",check=\"register\",kind=\"sip\",result=\"{result}\"}}"
            ),
        )
        .unwrap_or(0.0)
    };
    wait_for("the old password refused", Duration::from_secs(5), || {
        probes("failure") >= 1.0
    });
    assert_eq!(
        probes("success"),
        0.0,
        "the registrar took the old password"
    );
    std::fs::write(dir.path().join("sip-password"), "new-secret\n").unwrap();
    let (code, body) = request(addr, "POST", "/-/reload", Some("t"), "");
    assert_eq!(code, 200, "{body}");
    wait_for(
        "a registration with the rotated password",
        Duration::from_secs(5),
        || probes("success") >= 1.0,
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
}
