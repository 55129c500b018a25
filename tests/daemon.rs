//! The daemon with the minimal configuration from the README, run
//! in-process on a port of its own: scraped, linted by promtool, failing
//! when its target stops, recovering when it returns, and keeping its
//! configuration when a reload is broken. Then the real binary, for what
//! only a process has: the port it logs, SIGHUP and SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::net::TcpSocket;

mod support;
use support::daemon::{Daemon, InProcess, get, metric, request, wait_for};

fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    request(addr, method, path, None, "")
}

/// The minimal configuration from the README, listening on port 0 and
/// probing the portal at `portal`.
fn minimal(portal: SocketAddr) -> String {
    let readme = include_str!("../README.md");
    let block = readme
        .split_once("A minimal configuration:\n\n```yaml\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("README has a minimal configuration")
        .0;
    block
        .lines()
        .map(|line| {
            if let Some((key, _)) = line.split_once("listen: ") {
                format!("{key}listen: 127.0.0.1:0")
            } else if let Some((key, _)) = line.split_once("url: http://") {
                format!("{key}url: http://{portal}/")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A socket bound to `addr` that our other sockets may bind too
/// (`SO_REUSEPORT`; other processes don't set it, so they cannot). Bound
/// but not listening, it holds the port and refuses connections: the
/// portal can go away and come back on the same port without anyone else
/// taking it in between.
fn portal_socket(addr: &str) -> TcpSocket {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseport(true).unwrap();
    socket.bind(addr.parse().unwrap()).unwrap();
    socket
}

/// A citizen portal answering "Welkom" on `socket`, until aborted.
fn serve_portal(rt: &tokio::runtime::Runtime, socket: TcpSocket) -> tokio::task::JoinHandle<()> {
    let listener = {
        let _runtime = rt.enter();
        socket.listen(64).unwrap()
    };
    rt.spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 2048];
                let _ = stream.read(&mut buf).await;
                let body = "<h1>Welkom</h1>";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(resp.as_bytes()).await;
            });
        }
    })
}

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed for this test: apt-get install --no-install-recommends prometheus (scripts/test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn minimal_config_is_scraped_fails_recovers_and_survives_a_broken_reload() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("continuity.yaml");
    let socket = portal_socket("127.0.0.1:0");
    let portal_addr = socket.local_addr().unwrap();
    // The reload endpoint is off unless asked for.
    let minimal = minimal(portal_addr).replace(
        "listen: 127.0.0.1:0",
        "listen: 127.0.0.1:0\n  enable_reload_endpoint: true",
    );
    write(&cfg, &minimal);
    let portal = serve_portal(&rt, socket);

    let daemon = InProcess::start(&cfg);
    let addr = daemon.addr;
    wait_for("/readyz", Duration::from_secs(10), || {
        http(addr, "GET", "/readyz").0 == 200
    });

    // The first probe lands within one interval (10 s) of the start.
    let success =
        "continuity_probe_success{service=\"citizen-portal\",check=\"homepage\",kind=\"http\"}";
    wait_for("a successful probe", Duration::from_secs(15), || {
        metric(&http(addr, "GET", "/metrics").1, success) == Some(1.0)
    });
    let body = http(addr, "GET", "/metrics").1;
    assert_eq!(
        metric(
            &body,
            "continuity_service_up{service=\"citizen-portal\",category=\"portal\",supplier=\"in-house\"}"
        ),
        Some(1.0)
    );
    assert_eq!(metric(&body, "continuity_checks_configured"), Some(1.0));
    assert!(body.contains("continuity_probe_phase_duration_seconds{service=\"citizen-portal\",check=\"homepage\",kind=\"http\",phase=\"connect\"}"));
    promtool_check(&body);
    let (_, status) = http(addr, "GET", "/api/v1/status");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["services"][0]["checks"][0]["last"]["success"], true);
    let (svc, check) = (&status["services"][0], &status["services"][0]["checks"][0]);
    assert_eq!(svc["id"], "citizen-portal");
    assert_eq!(svc["name"], "Citizen portal");
    assert_eq!(svc["category"], "portal");
    assert_eq!(svc["supplier"], "in-house");
    assert_eq!(check["id"], "homepage");
    assert_eq!(check["kind"], "http");
    assert_eq!(check["critical"], true);
    assert_eq!(check["interval_seconds"], 10.0);
    assert!(check["last"]["phases"]["connect"].is_number(), "{check}");

    // Faster probing, and a second service, through a reload.
    let fast = minimal
        .replace("interval: 10s", "interval: 1s")
        .replace("timeout: 5s", "timeout: 500ms")
        + &format!(
            r#"  - id: website
    checks:
      - id: home
        http:
          url: http://{portal_addr}/
"#
        );
    write(&cfg, &fast);
    assert_eq!(http(addr, "POST", "/-/reload").0, 200);
    wait_for(
        "the second service to be probed",
        Duration::from_secs(5),
        || {
            http(addr, "GET", "/metrics")
                .1
                .contains("service=\"website\"")
        },
    );

    // The target stops: the check fails with a typed reason. The port
    // stays ours meanwhile, so that the portal comes back on it.
    let reserved = portal_socket(&portal_addr.to_string());
    portal.abort();
    let _ = rt.block_on(portal);
    wait_for("a failed probe", Duration::from_secs(5), || {
        metric(&http(addr, "GET", "/metrics").1, success) == Some(0.0)
    });
    let body = http(addr, "GET", "/metrics").1;
    assert!(
        metric(&body, "continuity_probe_failures_total{service=\"citizen-portal\",check=\"homepage\",kind=\"http\",reason=\"refused\"}")
            .is_some_and(|v| v >= 1.0),
        "no refused failure counted:\n{body}"
    );

    // It comes back: so does the check.
    let _portal = serve_portal(&rt, reserved);
    wait_for("recovery", Duration::from_secs(5), || {
        metric(&http(addr, "GET", "/metrics").1, success) == Some(1.0)
    });

    // Removing a service by reload removes its series.
    write(
        &cfg,
        &fast.replace("      - id: home\n", "      - id: home2\n"),
    );
    assert_eq!(http(addr, "POST", "/-/reload").0, 200);
    let body = http(addr, "GET", "/metrics").1;
    assert!(
        !body.contains("check=\"home\""),
        "removed check still exported"
    );

    // A broken configuration is rejected whole; the old one keeps running.
    write(&cfg, "services:\n  - id: citizen-portal\n    checks: []\n");
    let (code, text) = http(addr, "POST", "/-/reload");
    assert_eq!(code, 400);
    assert!(text.contains("empty checks list"), "{text}");
    let before = metric(&http(addr, "GET", "/metrics").1, "continuity_probes_total{service=\"citizen-portal\",check=\"homepage\",kind=\"http\",result=\"success\"}").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let body = http(addr, "GET", "/metrics").1;
    assert_eq!(
        metric(&body, "continuity_config_last_reload_successful"),
        Some(0.0)
    );
    let after = metric(&body, "continuity_probes_total{service=\"citizen-portal\",check=\"homepage\",kind=\"http\",result=\"success\"}").unwrap();
    assert!(after > before, "probing stopped after a broken reload");

    // The shutdown future completing stops it gracefully.
    daemon.stop().expect("a clean stop");
}

#[test]
fn the_binary_serves_where_it_logs_reloads_on_sighup_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("continuity.yaml");
    // Nothing needs to answer: this is about the process, not the probes.
    let target = portal_socket("127.0.0.1:0");
    let target_addr = target.local_addr().unwrap();
    let minimal = minimal(target_addr);
    write(&cfg, &minimal);
    let mut daemon = Daemon::start(&cfg);
    let addr = daemon.addr;
    let ready = || get(addr, "/readyz").is_some_and(|b| b == "ready\n");
    wait_for("/readyz", Duration::from_secs(10), ready);
    let configured = || metric(&get(addr, "/metrics")?, "continuity_checks_configured");
    assert_eq!(configured(), Some(1.0));

    // SIGHUP takes the same path as POST /-/reload.
    let bigger = minimal.clone()
        + &format!(
            r#"  - id: website
    checks:
      - id: home
        tcp:
          target: "{target_addr}"
"#
        );
    write(&cfg, &bigger);
    daemon.signal("-HUP");
    wait_for("the reload by SIGHUP", Duration::from_secs(10), || {
        configured() == Some(2.0)
    });

    // A broken file on SIGHUP: rejected, and the daemon keeps serving.
    write(&cfg, "services:\n  - id: citizen-portal\n    checks: []\n");
    daemon.signal("-HUP");
    wait_for("the rejection", Duration::from_secs(10), || {
        get(addr, "/metrics")
            .is_some_and(|m| metric(&m, "continuity_config_last_reload_successful") == Some(0.0))
    });
    assert_eq!(configured(), Some(2.0));
    assert!(ready());

    // SIGTERM stops it gracefully.
    let status = daemon.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn a_store_that_cannot_be_opened_stops_the_start_with_that_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("continuity.yaml");
    let target = portal_socket("127.0.0.1:0");
    write(
        &cfg,
        &(minimal(target.local_addr().unwrap()) + "store:\n  path: history\n"),
    );
    let config = continuity::config::Config::load(&cfg).unwrap();
    // The store's path became a directory after the configuration loaded
    // (loading refuses one): SQLite cannot open it.
    std::fs::create_dir(dir.path().join("history")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = continuity::run(config, listener, std::future::pending())
        .await
        .expect_err("no daemon without its store");
    assert!(
        matches!(err, continuity::daemon::DaemonError::Store(_)),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("cannot open the store: "),
        "{err}"
    );
}
