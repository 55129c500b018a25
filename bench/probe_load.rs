//! Benchmark: the real daemon with 10,000 HTTP checks at a 10 s interval
//! against local target servers. Reports CPU seconds per 1,000 probes, peak
//! RSS, scheduler lag p50/p99 and the time and size of one `/metrics` scrape.
//!
//! Run: `cargo build --release && cargo run --release --example probe_load -- [--checks 10000] [--seconds 60] [--interval 10] [--https] [--parity] [--outage 0] [--compact]`
//!
//! `--compact` runs the daemon with `metrics: { detail: compact }` and the
//! scrape line then shows what that saves (series and bytes).
//! Targets: <= 0.15 CPU-s per 1,000 probes, < 64 MiB RSS, lag p99 < 10 ms,
//! scrape < 100 ms.
//!
//! `--https` serves the targets over TLS 1.3 with a P-256 certificate from
//! a CA generated for the run, and gives every check that CA as `ca_file`:
//! the memory and CPU of HTTPS probing, with trust shared between checks.
//!
//! `--parity` gives every check a `compare_with` (another target, the same
//! page) comparing status, body similarity and latency: each probe is then
//! three requests (new once, old twice, for the learned noise), and the
//! parity series are in every scrape.
//!
//! `--outage S` then has every target answer 503 for S seconds (a mass
//! outage: every service down, every alert firing) and heal for another S
//! seconds, and reports CPU, memory and alerts for both phases. The
//! services then belong to ten suppliers and two categories, and two
//! receivers take the notifications: a webhook and an SMTP server, both
//! sinks run by the bench, which count the messages; the bench also
//! watches the outbox table to time the last notification reaching disk.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

const TARGETS: usize = 20;

/// Cleared during the `--outage` phase: every target answers 503.
static HEALTHY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to daemon");
    write!(s, "GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf.split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default()
}

/// CPU seconds the process has used: (user, system).
fn cpu_seconds(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime), counted from 1 over the whole line.
    let ticks = |i: usize| f[i].parse::<f64>().unwrap() / 100.0;
    (ticks(11), ticks(12))
}

fn peak_rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn sum_metric(body: &str, prefix: &str) -> f64 {
    body.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Quantile from a Prometheus histogram's cumulative buckets (upper bound
/// of the bucket the quantile falls in).
fn quantile(body: &str, name: &str, q: f64) -> f64 {
    let mut buckets: Vec<(f64, f64)> = body
        .lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    buckets
        .iter()
        .find(|(_, c)| *c >= q * total)
        .map(|b| b.0)
        .unwrap_or(f64::NAN)
}

/// [`quantile`] of what a histogram counted between two scrapes.
fn quantile_between(before: &str, after: &str, name: &str, q: f64) -> f64 {
    let prefix = format!("{name}_bucket");
    let earlier: std::collections::HashMap<&str, f64> = before
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            Some((series, v.parse().ok()?))
        })
        .collect();
    let delta: String = after
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let v: f64 = v.parse().ok()?;
            Some(format!(
                "{series} {}\n",
                v - earlier.get(series).unwrap_or(&0.0)
            ))
        })
        .collect();
    quantile(&delta, name, q)
}

/// The receivers of the `--outage` run: a webhook and an SMTP server that
/// take every message and count it.
struct OutageSinks {
    webhook: SocketAddr,
    smtp: SocketAddr,
    posts: std::sync::Arc<std::sync::atomic::AtomicU64>,
    mails: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl OutageSinks {
    async fn start() -> OutageSinks {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        let posts = Arc::new(AtomicU64::new(0));
        let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let webhook = web.local_addr().unwrap();
        let counter = posts.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = web.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let counter = counter.clone();
                            async move {
                                use http_body_util::BodyExt;
                                let _ = req.into_body().collect().await;
                                counter.fetch_add(1, Ordering::Relaxed);
                                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                                    b"ok",
                                ))))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        let mails = Arc::new(AtomicU64::new(0));
        let smtp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let smtp = smtp_listener.local_addr().unwrap();
        let counter = mails.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = smtp_listener.accept().await {
                tokio::spawn(smtp_session(stream, counter.clone()));
            }
        });
        OutageSinks {
            webhook,
            smtp,
            posts,
            mails,
        }
    }

    /// Ten suppliers and two categories: twenty groups per receiver.
    fn service_labels(i: usize) -> String {
        format!(
            "    supplier: supplier-{}\n    category: cat-{}\n",
            i % 10,
            i % 2
        )
    }

    fn alerting_yaml(&self) -> String {
        format!(
            "alerting:\n  receivers:\n    - name: bench-webhook\n      webhook:\n        url: http://{}/hook\n    - name: bench-mail\n      email:\n        smtp: {}\n        tls: none\n        from: continuity@example.org\n        to: [oncall@example.org]\n",
            self.webhook, self.smtp
        )
    }

    /// Messages taken so far: (webhook posts, mails).
    fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (
            self.posts.load(Ordering::Relaxed),
            self.mails.load(Ordering::Relaxed),
        )
    }
}

/// Just enough ESMTP for lettre without TLS or AUTH: every DATA is one
/// mail counted.
async fn smtp_session(
    stream: tokio::net::TcpStream,
    mails: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut io = BufReader::new(stream);
    if io.get_mut().write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let mut line = String::new();
    loop {
        line.clear();
        if io.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let upper = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if upper == "DATA" {
            if io.get_mut().write_all(b"354 go on\r\n").await.is_err() {
                return;
            }
            loop {
                line.clear();
                if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" {
                    break;
                }
            }
            mails.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            b"250 queued\r\n"
        } else if upper == "QUIT" {
            let _ = io.get_mut().write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"250 ok\r\n"
        };
        if io.get_mut().write_all(reply).await.is_err() {
            return;
        }
    }
}

/// Counts the outbox rows on disk (read-only, beside the daemon's
/// writes) and when their number last changed.
struct OutboxWatch {
    db: Option<rusqlite::Connection>,
    rows: i64,
    at_start: i64,
    last_change: Duration,
}

impl OutboxWatch {
    fn new(path: &std::path::Path) -> OutboxWatch {
        let db =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .ok();
        let mut w = OutboxWatch {
            db,
            rows: 0,
            at_start: 0,
            last_change: Duration::ZERO,
        };
        w.rows = w.count();
        w.at_start = w.rows;
        w
    }

    fn count(&self) -> i64 {
        self.db
            .as_ref()
            .and_then(|c| {
                c.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
                    .ok()
            })
            .unwrap_or(self.rows)
    }

    fn poll(&mut self, phase_start: Instant) {
        let n = self.count();
        if n != self.rows {
            self.rows = n;
            self.last_change = phase_start.elapsed();
        }
    }
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// A CA and a P-256 server certificate for 127.0.0.1 signed by it, as a
/// TLS acceptor for the targets and the CA's PEM file for the checks.
fn https_targets(dir: &std::path::Path) -> (tokio_rustls::TlsAcceptor, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let alg = &rcgen::PKCS_ECDSA_P256_SHA256;
    let ca_key = KeyPair::generate_for(alg).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate_for(alg).unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let ca_file = dir.join("bench-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)),
        ca_file,
    )
}

fn main() {
    let checks = arg("--checks", 10_000) as usize;
    let seconds = arg("--seconds", 60);
    let interval = arg("--interval", 10);
    let parity = flag("--parity");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let https = flag("--https").then(|| https_targets(dir.path()));
    let acceptor = https.as_ref().map(|h| h.0.clone());
    let targets: Vec<SocketAddr> = rt.block_on(async {
        let mut addrs = Vec::new();
        for _ in 0..TARGETS {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.push(l.local_addr().unwrap());
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = l.accept().await else {
                        continue;
                    };
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(|_req| async {
                            let healthy = HEALTHY.load(std::sync::atomic::Ordering::Relaxed);
                            let body: &'static [u8] = if healthy { b"Welkom" } else { b"Storing" };
                            let mut r = Response::new(Full::new(Bytes::from_static(body)));
                            if !healthy {
                                *r.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                            }
                            r.headers_mut()
                                .insert("connection", "close".parse().unwrap());
                            Ok::<_, Infallible>(r)
                        });
                        let mut http = hyper::server::conn::http1::Builder::new();
                        http.keep_alive(false);
                        match acceptor {
                            None => {
                                let io = hyper_util::rt::TokioIo::new(stream);
                                let _ = http.serve_connection(io, svc).await;
                            }
                            Some(tls) => {
                                let Ok(stream) = tls.accept(stream).await else {
                                    return;
                                };
                                let io = hyper_util::rt::TokioIo::new(stream);
                                let _ = http.serve_connection(io, svc).await;
                            }
                        }
                    });
                }
            });
        }
        addrs
    });

    let listen = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let detail = if std::env::args().any(|a| a == "--compact") {
        "compact"
    } else {
        "full"
    };
    let mut yaml = format!(
        "server:\n  listen: {listen}\ndefaults:\n  interval: {interval}s\n  timeout: {}s\nstore:\n  path: {}\nmetrics:\n  detail: {detail}\nservices:\n",
        interval.min(5),
        dir.path().join("bench.db").display()
    );
    let outage = arg("--outage", 0);
    let sinks = (outage > 0).then(|| rt.block_on(OutageSinks::start()));
    // Every check names the CA file; they share one trust store and one
    // TLS client configuration because the file's content is the same.
    let (scheme, ca_line) = match &https {
        Some((_, ca_file)) => (
            "https",
            format!("          ca_file: {}\n", ca_file.display()),
        ),
        None => ("http", String::new()),
    };
    for i in 0..checks {
        let t = targets[i % TARGETS];
        yaml.push_str(&format!(
            "  - id: svc-{i}\n    checks:\n      - id: home\n        http:\n          url: {scheme}://{t}/\n          body_contains: Welkom\n{ca_line}"
        ));
        if parity {
            let old = targets[(i + 1) % TARGETS];
            yaml.push_str(&format!(
                "          compare_with: {scheme}://{old}/\n          compare: {{ status: true, body: similarity, max_latency_ratio: 1.5 }}\n"
            ));
        }
        if sinks.is_some() {
            yaml.push_str(&OutageSinks::service_labels(i));
        }
    }
    if let Some(s) = &sinks {
        yaml.push_str(&s.alerting_yaml());
    }
    let cfg = dir.path().join("bench.yaml");
    std::fs::write(&cfg, yaml).unwrap();

    let exe =
        std::env::var("CONTINUITY_BIN").unwrap_or_else(|_| "target/release/continuity".into());
    // CONTINUITY_WRAP runs the daemon under a profiler, e.g.
    // `CONTINUITY_WRAP="valgrind --tool=massif"`; figures are then the
    // profiler's, not the daemon's.
    let wrap = std::env::var("CONTINUITY_WRAP").unwrap_or_default();
    let mut argv: Vec<&str> = wrap.split_whitespace().collect();
    argv.push(&exe);
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .args(["run", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {exe} ({e}); run `cargo build --release` first"));
    let pid = child.id();
    let start = Instant::now();
    while TcpStream::connect(listen).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(if wrap.is_empty() { 30 } else { 300 }),
            "daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (rss_started, hwm_started) = (status_mib(pid, "VmRSS:"), peak_rss_mib(pid));
    // Warm up for one full interval so every check has run once.
    std::thread::sleep(Duration::from_secs(interval + 2));
    let rss_warm = status_mib(pid, "VmRSS:");
    let m0 = get(listen, "/metrics");
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    let probes0 = sum_metric(&m0, "continuity_probes_total{");
    std::thread::sleep(Duration::from_secs(seconds));
    let hwm_probing = peak_rss_mib(pid);
    let m1 = get(listen, "/metrics");
    // CPU over the window includes this one scrape, as a Prometheus
    // scraping every minute would cost.
    let (cpu1, elapsed) = (cpu_seconds(pid), t0.elapsed());
    // Scrape time as Prometheus sees it: raw bytes, median of three.
    let mut scrapes: Vec<Duration> = (0..3)
        .map(|_| {
            let t = Instant::now();
            let mut s = TcpStream::connect(listen).expect("connect to daemon");
            write!(s, "GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n").unwrap();
            let mut bytes = Vec::with_capacity(m1.len() + 4096);
            s.read_to_end(&mut bytes).unwrap();
            t.elapsed()
        })
        .collect();
    scrapes.sort();
    let scrape = scrapes[1];
    let probes1 = sum_metric(&m1, "continuity_probes_total{");
    let failures: f64 = m1
        .lines()
        .filter(|l| l.starts_with("continuity_probes_total{") && l.contains("result=\"failure\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let probes = probes1 - probes0;
    let (user, system) = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1);
    let cpu = user + system;
    if https.is_some() {
        println!("mode: https (TLS to the targets, one generated CA as ca_file)");
    }
    if parity {
        println!(
            "mode: parity (compare_with on every check: 3 requests per probe; parity matched on {:.0} checks, mismatches so far {:.0})",
            sum_metric(&m1, "continuity_parity_match{"),
            sum_metric(&m1, "continuity_parity_mismatches_total{")
        );
    }
    println!(
        "checks: {checks} at {interval}s interval; measured over {:.1}s",
        elapsed.as_secs_f64()
    );
    println!(
        "probes: {probes:.0} ({:.0}/s), failures so far: {failures:.0}",
        probes / elapsed.as_secs_f64()
    );
    println!(
        "cpu: {cpu:.2}s (user {user:.2}s, system {system:.2}s) -> {:.3} CPU-seconds per 1,000 probes",
        cpu / probes * 1000.0
    );
    println!(
        "peak RSS: {:.1} MiB (RSS when listening {rss_started:.1}, peak by then {hwm_started:.1}; after warm-up {rss_warm:.1}; peak before the scrapes {hwm_probing:.1}; at the end {:.1}, of which anonymous {:.1}, file {:.1})",
        peak_rss_mib(pid),
        status_mib(pid, "VmRSS:"),
        status_mib(pid, "RssAnon:"),
        status_mib(pid, "RssFile:")
    );
    println!(
        "scheduler lag: p50 <= {}s, p99 <= {}s (histogram bucket bounds)",
        quantile(&m1, "continuity_scheduler_lag_seconds", 0.5),
        quantile(&m1, "continuity_scheduler_lag_seconds", 0.99)
    );
    let series = m1
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    println!(
        "/metrics scrape: {:.1} ms (median of 3), {} KiB, {series} series (metrics.detail: {detail})",
        scrape.as_secs_f64() * 1000.0,
        m1.len() / 1024
    );
    if let Some(sinks) = &sinks {
        let db = dir.path().join("bench.db");
        for (phase, healthy) in [
            ("outage (every target answers 503)", false),
            ("recovery", true),
        ] {
            HEALTHY.store(healthy, std::sync::atomic::Ordering::Relaxed);
            let m0 = get(listen, "/metrics");
            let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
            let probes0 = sum_metric(&m0, "continuity_probes_total{");
            let sent0 = sinks.counts();
            let mut outbox = OutboxWatch::new(&db);
            let mut rss_max: f64 = 0.0;
            while t0.elapsed() < Duration::from_secs(outage) {
                std::thread::sleep(Duration::from_millis(250));
                rss_max = rss_max.max(status_mib(pid, "VmRSS:"));
                outbox.poll(t0);
            }
            let t = Instant::now();
            let m1 = get(listen, "/metrics");
            let scrape = t.elapsed();
            let (cpu1, elapsed) = (cpu_seconds(pid), t0.elapsed());
            let probes = sum_metric(&m1, "continuity_probes_total{") - probes0;
            let cpu = (cpu1.0 - cpu0.0) + (cpu1.1 - cpu0.1);
            println!(
                "{phase}, {:.0}s: cpu {cpu:.2}s -> {:.3} CPU-s per 1,000 probes; RSS now {:.1} MiB, highest {rss_max:.1}, peak so far {:.1}; services up {:.0} of {checks}; alerts firing {:.0}; scrape {:.0} ms",
                elapsed.as_secs_f64(),
                cpu / probes * 1000.0,
                status_mib(pid, "VmRSS:"),
                peak_rss_mib(pid),
                sum_metric(&m1, "continuity_service_up{"),
                sum_metric(&m1, "continuity_alerts_firing{"),
                scrape.as_secs_f64() * 1000.0,
            );
            let sent = sinks.counts();
            println!(
                "  scheduler lag in this phase: p50 <= {}s, p99 <= {}s; messages sent: webhook {}, e-mail {}; outbox rows added {}, the last reached disk {:.1}s into the phase",
                quantile_between(&m0, &m1, "continuity_scheduler_lag_seconds", 0.5),
                quantile_between(&m0, &m1, "continuity_scheduler_lag_seconds", 0.99),
                sent.0 - sent0.0,
                sent.1 - sent0.1,
                outbox.rows - outbox.at_start,
                outbox.last_change.as_secs_f64(),
            );
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
}
