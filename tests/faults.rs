//! Fault injection against the real binary: what a hostile client, a
//! clumsy operator or a failing disk did to the daemon before the hardening
//! of issue 16, re-run so that none of it can come back. Each test prints
//! its figures (`cargo test --test faults -- --nocapture`):
//! descriptors held by idle clients at the cap, probes completed during a
//! reload storm against the checks' due slots, probing while the store
//! fails, and how long a shutdown waits for slow clients.
//!
//! The failing store is a small tmpfs filled up; that needs root (mount),
//! and those tests say so and pass without it.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::daemon::{Daemon, get, metric, wait_for, wait_until};

/// A TCP target that accepts and closes at once (a healthy service).
fn healthy_target() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            drop(s);
        }
    });
    addr
}

/// A TCP target that accepts and never answers (a hung service).
fn hung_target() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            held.push(s);
        }
    });
    addr
}

fn scrape(addr: SocketAddr, prefix: &str) -> Option<f64> {
    metric(&get(addr, "/metrics")?, prefix)
}

/// Descriptors the process holds.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Raise this test process's soft descriptor limit to the hard one, for
/// the clients it opens.
fn raise_own_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only touch the struct passed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

fn config(dir: &Path, server: &str, checks: &str) -> std::path::PathBuf {
    let path = dir.join("continuity.yaml");
    std::fs::write(
        &path,
        format!(
            "server:\n  listen: 127.0.0.1:0\n{server}defaults:\n  interval: 1s\n  timeout: 500ms\n  failure_threshold: 2\n  max_concurrency: 8\nservices:\n  - id: portal\n    checks:\n{checks}"
        ),
    )
    .unwrap();
    path
}

fn tcp_check(id: &str, target: SocketAddr, extra: &str) -> String {
    format!("      - id: {id}\n{extra}        tcp:\n          target: \"{target}\"\n")
}

#[test]
fn idle_clients_take_no_descriptor_the_probes_need_and_scrapes_still_answer() {
    raise_own_limit();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "", &tcp_check("home", healthy_target(), ""));
    // 400 descriptors in all: the probes' budget (2 x 8 + 256) leaves the
    // server 128 connections.
    let mut prlimit = Command::new("prlimit");
    prlimit
        .arg("--nofile=400:400")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_continuity"));
    let daemon = Daemon::start_command(prlimit, &cfg);
    let addr = daemon.addr;
    let success = "continuity_probe_success{service=\"portal\",check=\"home\",kind=\"tcp\"}";
    wait_for("a first successful probe", Duration::from_secs(10), || {
        scrape(addr, success) == Some(1.0)
    });

    // 600 clients connect and send nothing: more than the process may
    // open at all.
    let idle: Vec<TcpStream> = (0..600)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok())
        .collect();
    let mut answered = 0;
    let mut most_descriptors = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        most_descriptors = most_descriptors.max(descriptors(daemon.child.id()));
        if get(addr, "/healthz").is_some() {
            answered += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let body = get(addr, "/metrics").expect("/metrics answers");
    let failures = metric(
        &body,
        "continuity_probes_total{service=\"portal\",check=\"home\",kind=\"tcp\",result=\"failure\"}",
    );
    let resource_errors: f64 = body
        .lines()
        .filter(|l| l.starts_with("continuity_probe_resource_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b);
    println!(
        "finding 1: {} idle clients; the daemon held at most {most_descriptors} descriptors (limit 400, server cap {:?}); {answered} of 30 health checks answered meanwhile; probe failures {failures:?}, resource errors {resource_errors}",
        idle.len(),
        metric(&body, "continuity_http_connection_limit"),
    );
    assert_eq!(failures, Some(0.0), "a healthy service was seen failing");
    assert_eq!(metric(&body, success), Some(1.0));
    assert!(most_descriptors < 400, "{most_descriptors} descriptors");
    assert!(
        answered >= 25,
        "only {answered} of 30 health checks answered"
    );
    assert_eq!(
        metric(&body, "continuity_http_connection_limit"),
        Some(128.0)
    );
    drop(idle);
}

#[test]
fn a_storm_of_reloads_hides_no_outage() {
    let dir = tempfile::tempdir().unwrap();
    let check = tcp_check(
        "home",
        hung_target(),
        "        interval: 2s\n        timeout: 1s\n",
    )
    .replace(
        "          target:",
        "          expect: hello\n          target:",
    );
    let cfg = config(dir.path(), "", &check);
    let daemon = Daemon::start(&cfg);
    let addr = daemon.addr;
    wait_for("/readyz", Duration::from_secs(10), || {
        get(addr, "/readyz").is_some_and(|b| b == "ready\n")
    });
    let failures = "continuity_probes_total{service=\"portal\",check=\"home\",kind=\"tcp\",result=\"failure\"}";
    let before = scrape(addr, failures).unwrap_or(0.0);
    // SIGHUP ten times a second for 10 s, half of them with a changed
    // file (another, unrelated check comes and goes).
    let other = tcp_check("other", healthy_target(), "");
    let start = Instant::now();
    let mut reloads = 0;
    while start.elapsed() < Duration::from_secs(10) {
        let text = std::fs::read_to_string(&cfg).unwrap();
        let next = if text.contains("id: other") {
            text.replace(&other, "")
        } else {
            text + &other
        };
        std::fs::write(&cfg, next).unwrap();
        daemon.signal("-HUP");
        reloads += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    // The probe of the last slot ends within its 1 s timeout.
    std::thread::sleep(Duration::from_millis(1500));
    let completed = scrape(addr, failures).unwrap_or(0.0) - before;
    // One slot every 2 s: 5 or 6 of them end within these 11.5 s.
    let slots = 5.0;
    let state = scrape(
        addr,
        "continuity_service_state{service=\"portal\",state=\"down\"}",
    );
    println!(
        "finding 2: {reloads} reloads by SIGHUP in 10 s; {completed} probes of the hung check completed, due slots {slots}; portal down: {state:?}"
    );
    assert!(
        completed >= slots,
        "{completed} probes completed for {slots} slots"
    );
    assert_eq!(state, Some(1.0), "the outage is hidden");
}

#[test]
fn the_reload_endpoint_is_off_unless_enabled_and_then_wants_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "", &tcp_check("home", healthy_target(), ""));
    let daemon = Daemon::start(&cfg);
    let post =
        |token: Option<&str>| support::daemon::request(daemon.addr, "POST", "/-/reload", token, "");
    let (code, body) = post(None);
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("server.enable_reload_endpoint: true"),
        "{body}"
    );
    drop(daemon);

    std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
    let cfg = config(
        dir.path(),
        "  enable_reload_endpoint: true\n  api_token_file: token\n",
        &tcp_check("home", healthy_target(), ""),
    );
    let daemon = Daemon::start(&cfg);
    let post =
        |token: Option<&str>| support::daemon::request(daemon.addr, "POST", "/-/reload", token, "");
    assert_eq!(post(None).0, 401);
    assert_eq!(post(Some("wrong")).0, 401);
    assert_eq!(post(Some("s3cret")).0, 200);
    assert_eq!(post(Some("s3cret")).0, 200);
    assert_eq!(post(Some("s3cret")).0, 200);
    let (code, body) = post(Some("s3cret"));
    assert_eq!(code, 429, "{body}");
    assert!(body.contains("try again in"), "{body}");
}

#[test]
fn a_second_daemon_on_the_same_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "", &tcp_check("home", healthy_target(), ""));
    let first = Daemon::start(&cfg);
    wait_for("/readyz", Duration::from_secs(10), || {
        get(first.addr, "/readyz").is_some()
    });
    let mut second = Daemon::start(&cfg);
    let status = wait_until("the second daemon to exit", Duration::from_secs(10), || {
        second.child.try_wait().unwrap()
    });
    let log = second.log();
    println!("finding 12: the second daemon exited with {status}");
    assert!(!status.success());
    assert!(
        log.contains("another continuity daemon is running on the store"),
        "{log}"
    );
    assert!(
        get(first.addr, "/readyz").is_some(),
        "the first one stopped"
    );
}

#[test]
fn a_store_file_deleted_under_the_daemon_is_counted_and_makes_it_unready() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "", &tcp_check("home", healthy_target(), ""));
    let daemon = Daemon::start(&cfg);
    let addr = daemon.addr;
    wait_for("/readyz", Duration::from_secs(10), || {
        get(addr, "/readyz").is_some_and(|b| b == "ready\n")
    });
    std::fs::remove_file(dir.path().join("continuity.db")).unwrap();
    let deleted = Instant::now();
    // The file's identity is looked at every 10 s.
    wait_for(
        "the deletion to be noticed",
        Duration::from_secs(15),
        || scrape(addr, "continuity_store_file_replaced_total") == Some(1.0),
    );
    let (code, body) = support::daemon::request(addr, "GET", "/readyz", None, "");
    println!(
        "finding 13: the deleted store file was noticed after {:.1}s; /readyz {code}",
        deleted.elapsed().as_secs_f64()
    );
    assert_eq!(code, 503);
    assert!(body.contains("was deleted"), "{body}");
    assert!(daemon.log().contains("was deleted while continuity runs"));
}

#[test]
fn slow_clients_hold_a_shutdown_no_longer_than_its_bound() {
    raise_own_limit();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "  shutdown_timeout: 2s\n",
        &tcp_check("home", healthy_target(), ""),
    );
    let mut daemon = Daemon::start(&cfg);
    let addr = daemon.addr;
    wait_for("/readyz", Duration::from_secs(10), || {
        get(addr, "/readyz").is_some()
    });
    // 100 slowloris clients: headers that never end, a line at a time
    // (under the 10 s header-read timeout, the connections stay open).
    let mut slow: Vec<TcpStream> = (0..100)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    for s in &mut slow {
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
    }
    let feeder = std::thread::spawn(move || {
        for _ in 0..60 {
            for s in &mut slow {
                let _ = s.write_all(b"X-Slow: 1\r\n");
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    let start = Instant::now();
    let status = daemon.terminate(Duration::from_secs(20));
    let took = start.elapsed();
    println!(
        "finding 14: SIGTERM with 100 slow clients: exited {status} after {:.1}s (shutdown_timeout 2s)",
        took.as_secs_f64()
    );
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    drop(feeder);
}

/// A tmpfs of `size` at `dir` (root only); `None` where it cannot be had.
fn small_tmpfs(dir: &Path, size: &str) -> Option<Mount> {
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| Mount(dir.to_path_buf()))
}

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fill the file system at `dir` to the last byte.
fn fill(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small[..]).is_ok() {}
    let _ = f.flush();
    path
}

#[test]
fn probing_and_reloads_go_on_while_the_store_fails_and_readyz_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let Some(_mount) = small_tmpfs(&data, "4m") else {
        println!("finding 3: skipped, a tmpfs cannot be mounted here (needs root)");
        return;
    };
    let cfg = config(
        dir.path(),
        "  enable_reload_endpoint: true\n",
        &tcp_check("home", healthy_target(), ""),
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text + "store:\n  path: data/continuity.db\n").unwrap();
    let daemon = Daemon::start(&cfg);
    let addr = daemon.addr;
    let total = "continuity_probes_total{service=\"portal\",check=\"home\",kind=\"tcp\",result=\"success\"}";
    wait_for("/readyz", Duration::from_secs(10), || {
        get(addr, "/readyz").is_some_and(|b| b == "ready\n")
    });
    let filler = fill(&data);
    wait_for("the store to fail", Duration::from_secs(20), || {
        scrape(addr, "continuity_store_errors_total").is_some_and(|e| e > 0.0)
    });
    let before = scrape(addr, total).unwrap();
    // A reload with a changed file, while the disk is full, answers.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text + "# changed\n").unwrap();
    let asked = Instant::now();
    let (code, body) = support::daemon::request(addr, "POST", "/-/reload", None, "");
    let answered = asked.elapsed();
    assert_eq!(code, 200, "{body}");
    std::thread::sleep(Duration::from_secs(5).saturating_sub(answered));
    let after = scrape(addr, total).unwrap();
    let (code, body) = support::daemon::request(addr, "GET", "/readyz", None, "");
    assert!(
        answered < Duration::from_secs(8),
        "the reload took {answered:?}"
    );
    println!(
        "finding 3: with the store full, {} probes in 5 s (one due per second); the reload answered in {:.1}s; /readyz {code}",
        after - before,
        answered.as_secs_f64()
    );
    assert!(
        after - before >= 4.0,
        "probing stalled: {before} -> {after}"
    );
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("store failing"), "{body}");
    std::fs::remove_file(filler).unwrap();
    wait_for(
        "/readyz after space returns",
        Duration::from_secs(30),
        || get(addr, "/readyz").is_some_and(|b| b == "ready\n"),
    );
}

/// A webhook receiver: every request body it gets.
fn webhook_sink() -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let got: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let kept = got.clone();
    support::daemon::serve(l, move |req| {
        if let Some((_, body)) = req.split_once("\r\n\r\n") {
            kept.lock().unwrap().push(body.to_string());
        }
        (200, String::new())
    });
    (addr, got)
}

#[test]
fn a_full_disk_does_not_stop_pages_and_the_outbox_catches_up_without_repeating() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let Some(_mount) = small_tmpfs(&data, "4m") else {
        println!("finding 11: skipped, a tmpfs cannot be mounted here (needs root)");
        return;
    };
    // A service that greets while healthy and falls silent when not.
    let healthy = std::sync::Arc::new(AtomicBool::new(true));
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = l.local_addr().unwrap();
    let h = healthy.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            let mut s = s;
            if h.load(Ordering::SeqCst) {
                let _ = s.write_all(b"hello\n");
            } else {
                held.push(s);
            }
        }
    });
    let (hook, got) = webhook_sink();
    let path = dir.path().join("continuity.yaml");
    std::fs::write(
        &path,
        format!(
            "server:\n  listen: 127.0.0.1:0\ndefaults:\n  interval: 1s\n  timeout: 500ms\n  failure_threshold: 2\nstore:\n  path: data/continuity.db\nalerting:\n  receivers:\n    - name: oncall\n      min_severity: page\n      group_wait: 0s\n      group_interval: 0s\n      webhook:\n        url: http://{hook}/hook\nservices:\n  - id: portal\n    category: portal\n    supplier: hosting-partner\n    checks:\n      - id: home\n        tcp:\n          target: \"{target}\"\n          expect: hello\n"
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&path);
    let addr = daemon.addr;
    wait_for("the portal up", Duration::from_secs(15), || {
        scrape(
            addr,
            "continuity_service_state{service=\"portal\",state=\"up\"}",
        ) == Some(1.0)
    });
    let filler = fill(&data);
    wait_for("the store to fail", Duration::from_secs(20), || {
        scrape(addr, "continuity_store_errors_total").is_some_and(|e| e > 0.0)
    });
    healthy.store(false, Ordering::SeqCst);
    let down = Instant::now();
    let firing = |got: &std::sync::Mutex<Vec<String>>| {
        got.lock()
            .unwrap()
            .iter()
            .filter(|b| b.contains("ServiceDown") && b.contains("\"status\":\"firing\""))
            .count()
    };
    wait_for(
        "ServiceDown with the disk full",
        Duration::from_secs(60),
        || firing(&got) >= 1,
    );
    let took = down.elapsed();
    // Space returns: the outbox rows are written, and not sent again.
    std::fs::remove_file(filler).unwrap();
    wait_for(
        "/readyz after space returns",
        Duration::from_secs(30),
        || get(addr, "/readyz").is_some_and(|b| b == "ready\n"),
    );
    std::thread::sleep(Duration::from_secs(5));
    let delivered = firing(&got);
    let queued = scrape(addr, "continuity_notification_queue_length");
    println!(
        "finding 11: with the disk full, ServiceDown reached the webhook {:.1}s after the service went down; after space returned: {delivered} firing notification(s) in all, {queued:?} waiting",
        took.as_secs_f64()
    );
    assert_eq!(delivered, 1, "sent again once the disk came back");
    assert_eq!(queued, Some(0.0));
}
