//! Benchmark of the public status page: response times of `GET /` for
//! 1,000 services whose store holds 90 days of history, as a browser
//! would fetch it (whole body read), plus the feed and a badge.
//!
//! `cargo run --release --example status_bench -- [--services 1000] [--requests 200] [--outages-per-week 2] [--dump page.html]`
//!
//! The store is seeded before the daemon starts: per service a transition
//! to `up` 91 days ago and outages of 2 to 90 minutes at random times
//! (a fixed seed), each with its incident. Half the services count their
//! days in an office-hours calendar, half around the clock. The daemon runs
//! in this process (`continuity::run` on 127.0.0.1:0) and probes every
//! service with a TCP check against a local listener every 60 s, so the
//! board is live. The first request counts all 90 days (reported apart);
//! the median and p99 are over the requests after it. Target: median
//! under 50 ms.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use continuity::config::Config;
use continuity::store::{
    BatchStore, IncidentRecord, ServiceTransitionRecord, SqliteStore, WriteOp,
};
use jiff::{SignedDuration, Timestamp};

struct Args {
    services: usize,
    requests: usize,
    outages_per_week: f64,
    /// Where to write the first page, to look at.
    dump: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        services: 1000,
        requests: 200,
        outages_per_week: 2.0,
        dump: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--services" => {
                a.services = value()?.parse().map_err(|e| format!("--services: {e}"))?
            }
            "--requests" => {
                a.requests = value()?.parse().map_err(|e| format!("--requests: {e}"))?
            }
            "--outages-per-week" => {
                a.outages_per_week = value()?
                    .parse()
                    .map_err(|e| format!("--outages-per-week: {e}"))?
            }
            "--dump" => a.dump = Some(value()?.into()),
            _ => {
                return Err(
                    "usage: status_bench [--services N] [--requests N] [--outages-per-week F] [--dump PAGE.html]"
                        .into(),
                );
            }
        }
    }
    Ok(a)
}

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let target = std::net::TcpListener::bind("127.0.0.1:0").expect("bind target");
    let target_addr = target.local_addr().expect("target address");
    std::thread::spawn(move || for _ in target.incoming() {});

    let mut yaml = String::from(
        "server:\n  listen: 127.0.0.1:0\nstore:\n  path: continuity.db\ndefaults:\n  interval: 60s\n  timeout: 5s\ncalendars:\n  kantoor:\n    hours: { mon-fri: \"08:00-17:00\" }\n    holidays: nl\nservices:\n",
    );
    let categories = [
        "Loket",
        "Parkeren",
        "Belastingen",
        "Afval",
        "Zorg",
        "Werk",
        "Wonen",
        "Burgerzaken",
    ];
    for i in 0..args.services {
        let calendar = if i % 2 == 0 { "kantoor" } else { "24x7" };
        yaml.push_str(&format!(
            "  - id: dienst-{i}\n    name: Dienst {i} van de gemeente\n    category: {}\n    supplier: leverancier-{}\n    labels: {{ team: team-{} }}\n    slas:\n      - {{ name: sla, objective: 99.5, calendar: {calendar} }}\n    checks:\n      - id: balie\n        tcp: {{ target: \"{target_addr}\" }}\n",
            categories[i % categories.len()],
            i % 7,
            i % 13,
        ));
    }
    let config_path = dir.path().join("continuity.yaml");
    std::fs::write(&config_path, yaml).expect("write config");
    let config = Config::load(&config_path).expect("config");

    let now = Timestamp::now();
    let seeded = Instant::now();
    let (transitions, incidents) = seed(&dir.path().join("continuity.db"), &args, now);
    println!(
        "seeded {} services: {transitions} transitions, {incidents} incidents over 91 days in {:.1} s",
        args.services,
        seeded.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = runtime.spawn(continuity::run(config, listener, async {
        let _ = stopped.await;
    }));
    let start = Instant::now();
    while get(addr, "/readyz").map(|r| r.0) != Some(200) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "daemon not ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "daemon ready after {:.1} s; RSS {} MiB",
        start.elapsed().as_secs_f64(),
        rss_mib()
    );

    let (code, body, first) = timed(addr, "/");
    assert_eq!(code, 200, "{body}");
    if let Some(path) = &args.dump {
        std::fs::write(path, &body).expect("write the page");
    }
    println!(
        "first GET / (counts all 90 days): {:.1} ms, {:.2} MiB of HTML",
        first * 1e3,
        body.len() as f64 / 1048576.0
    );
    report("GET /", addr, "/", args.requests);
    report("GET /?lang=en", addr, "/?lang=en", args.requests / 4);
    report("GET /feed.atom", addr, "/feed.atom", args.requests / 4);
    report(
        "GET /badge/dienst-7.svg",
        addr,
        "/badge/dienst-7.svg",
        args.requests,
    );
    println!(
        "RSS after the requests {} MiB (peak {} MiB)",
        rss_mib(),
        hwm_mib()
    );

    let _ = stop.send(());
    runtime
        .block_on(task)
        .expect("daemon task")
        .expect("daemon ran cleanly");
}

/// Seeds the store; returns the counts of transitions and incidents.
fn seed(db: &std::path::Path, args: &Args, now: Timestamp) -> (usize, usize) {
    let store = SqliteStore::open(db).expect("store");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start = now - SignedDuration::from_hours(24 * 91);
    let span_ms = (now - SignedDuration::from_hours(1)).as_millisecond() - start.as_millisecond();
    let outages = (args.outages_per_week * 13.0).round() as usize;
    let (mut transitions, mut incidents) = (0, 0);
    let mut ops = Vec::new();
    for i in 0..args.services {
        let service = format!("dienst-{i}");
        let mut times: Vec<i64> = (0..outages)
            .map(|_| start.as_millisecond() + rng.below(span_ms as u64) as i64)
            .collect();
        times.sort();
        let at = |ms: i64| Timestamp::from_millisecond(ms).expect("time");
        let t = |at: Timestamp, state: &str| {
            WriteOp::ServiceTransition(ServiceTransitionRecord {
                service: service.clone(),
                at,
                state: state.into(),
                cause: None,
            })
        };
        ops.push(t(start, "up"));
        transitions += 1;
        let mut last_end = start.as_millisecond();
        for down in times {
            if down <= last_end {
                continue;
            }
            let end = down + (2 + rng.below(88) as i64) * 60_000;
            ops.push(t(at(down), "down"));
            ops.push(t(at(end), "up"));
            transitions += 2;
            ops.push(WriteOp::Incident(IncidentRecord {
                id: 0,
                service: service.clone(),
                started_at: at(down),
                ended_at: Some(at(end)),
                cause: serde_json::json!([{
                    "check": "balie", "critical": true, "state": "down", "slow": false,
                    "failure": {"at": at(down).to_string(), "reason": "timeout",
                                "detail": "no answer within 5s"}
                }]),
                evidence: Vec::new(),
            }));
            incidents += 1;
            last_end = end;
        }
        if ops.len() > 20_000 {
            store.write_batch(&ops).expect("seed");
            ops.clear();
        }
    }
    store.write_batch(&ops).expect("seed");
    (transitions, incidents)
}

fn report(what: &str, addr: SocketAddr, path: &str, n: usize) {
    let mut times = Vec::with_capacity(n);
    let mut size = 0;
    for _ in 0..n.max(1) {
        let start = Instant::now();
        let (code, len) = fetch(addr, path).expect("an answer");
        times.push(start.elapsed().as_secs_f64());
        assert_eq!(code, 200, "{path}");
        size = len;
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize] * 1e3;
    println!(
        "{what}: {} requests, median {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} KiB",
        times.len(),
        at(0.5),
        at(0.99),
        at(1.0),
        size / 1024
    );
}

/// One HTTP/1.0 GET as a browser makes it: the whole answer read, not
/// looked at (so the client's own work does not count).
fn fetch(addr: SocketAddr, path: &str) -> Option<(u16, usize)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").ok()?;
    let mut buf = Vec::with_capacity(1 << 20);
    s.read_to_end(&mut buf).ok()?;
    let status = std::str::from_utf8(buf.get(9..12)?).ok()?.parse().ok()?;
    Some((status, buf.len()))
}

fn timed(addr: SocketAddr, path: &str) -> (u16, String, f64) {
    let start = Instant::now();
    let (code, body) = get(addr, path).expect("an answer");
    (code, body, start.elapsed().as_secs_f64())
}

/// One HTTP/1.0 GET, the whole body read.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let status = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Some((status, body.to_string()))
}

fn proc_status(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
        / 1024
}

fn rss_mib() -> u64 {
    proc_status("VmRSS:")
}

fn hwm_mib() -> u64 {
    proc_status("VmHWM:")
}
