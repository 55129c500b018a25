//! The generated rules in a real Prometheus: it scrapes the daemon every
//! second with `deploy/prometheus/rules.yml` loaded, and after a few scrapes
//! the recorded availability of each SLA agrees with `GET /api/v1/sla`, the
//! daemon's own figure from its store, for a service always up, one always
//! down and one that fails for a stretch in the middle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod support;
use support::daemon::{Daemon, get, wait_until};
use support::ports::free_port;
use support::prometheus::{INTERVAL, Prometheus};
use support::{Handler, closed_port, http_server, respond};

static FLAKY_UP: AtomicBool = AtomicBool::new(true);

fn flaky() -> Handler {
    Arc::new(|_req| {
        Box::pin(async move {
            if FLAKY_UP.load(Ordering::SeqCst) {
                respond(200, "Welkom")
            } else {
                respond(503, "storing")
            }
        })
    })
}

fn catalogue(
    dir: &std::path::Path,
    listen: SocketAddr,
    ok: SocketAddr,
    flaky: SocketAddr,
    down: SocketAddr,
) -> String {
    let service = |id: &str, addr: SocketAddr| {
        format!(
            "  - id: {id}\n    category: portal\n    supplier: acme\n    slas:\n      - {{ name: always, objective: 99.9, period: week, calendar: 24x7 }}\n    checks:\n      - id: home\n        http: {{ url: \"http://{addr}/\" }}\n"
        )
    };
    format!(
        "location: inside\nserver:\n  listen: {listen}\nstore:\n  path: {}\ndefaults:\n  interval: 1s\n  timeout: 700ms\n  failure_threshold: 1\n  success_threshold: 1\nservices:\n{}{}{}",
        dir.join("live.db").display(),
        service("steady", ok),
        service("flaky", flaky),
        service("broken", down)
    )
}

/// (availability, eligible seconds) of each service's SLA in the API.
fn api_figures(daemon: SocketAddr) -> Vec<(String, f64, f64)> {
    let body = get(daemon, "/api/v1/sla").expect("GET /api/v1/sla");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    v["slas"]
        .as_array()
        .expect("slas")
        .iter()
        .filter_map(|r| {
            Some((
                r["service"].as_str()?.to_string(),
                r["availability"].as_f64()?,
                r["eligible_seconds"].as_f64()?,
            ))
        })
        .collect()
}

#[test]
fn recorded_availability_agrees_with_the_daemons_sla_figures() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ok, flaky_server, down) = rt.block_on(async {
        (
            http_server(support::portal()).await,
            http_server(flaky()).await,
            closed_port().await,
        )
    });
    // Prometheus first, so that it scrapes the daemon from its first
    // second: the recorded figures then cover what the store covers.
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let rules =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/rules.yml");
    let prometheus = Prometheus::start(&[(listen, "inside")], &[rules]);
    let cfg = dir.path().join("live.yaml");
    std::fs::write(
        &cfg,
        catalogue(dir.path(), listen, ok.addr, flaky_server.addr, down),
    )
    .unwrap();
    let started = Instant::now();
    let mut daemon = Daemon::start(&cfg);

    // Up for a while, down for ten seconds, up again.
    let at = |secs: u64| {
        let until = started + Duration::from_secs(secs);
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    };
    at(8);
    FLAKY_UP.store(false, Ordering::SeqCst);
    at(18);
    FLAKY_UP.store(true, Ordering::SeqCst);
    at(30);

    let record = "service:continuity_sla_availability:ratio_rate5m";
    let recorded = wait_until(
        "the availability of all three services recorded",
        Duration::from_secs(20),
        || {
            let r = prometheus.query(record);
            (r.len() == 3).then_some(r)
        },
    );
    for s in &recorded {
        for (label, want) in [
            ("location", "inside"),
            ("sla", "always"),
            ("category", "portal"),
            ("supplier", "acme"),
        ] {
            assert_eq!(s.label(label), want, "{label} of {s:?}");
        }
    }
    // Each side counts eligible time up to a different moment: the API to
    // now, the counters to the engine's last tick (seen a scrape later),
    // and Prometheus from its first scrape. Every service is in a steady
    // state at both ends, so that changes only how much of that state is
    // counted: always-up and always-down services agree exactly, and the
    // flaky one's outage, settled on both sides, is the same length. In
    // Prometheus it is `(1 − availability) × eligible seconds it saw`.
    let api = api_figures(daemon.addr);
    let recorded = prometheus.query(record);
    let eligible_seen = prometheus.query(&format!(
        "sum by (service) (increase({}[5m]))",
        "continuity_sla_eligible_seconds_total"
    ));
    let mut report = String::new();
    for s in &recorded {
        let service = s.label("service");
        let (_, a, eligible) = api
            .iter()
            .find(|r| r.0 == service)
            .cloned()
            .expect("API row");
        let seen = eligible_seen
            .iter()
            .find(|e| e.label("service") == service)
            .expect("eligible seconds in Prometheus")
            .value;
        report.push_str(&format!(
            "{service}: prometheus {:.4} of {seen:.1} s eligible, api {a:.4} of {eligible:.1} s\n",
            s.value
        ));
        match service {
            "steady" | "broken" => assert_eq!(s.value, a, "{report}"),
            _ => {
                let (down_prometheus, down_api) = ((1.0 - s.value) * seen, (1.0 - a) * eligible);
                let apart = (down_prometheus - down_api).abs();
                report.push_str(&format!(
                    "  down {down_prometheus:.2} s in prometheus, {down_api:.2} s in the api: {apart:.2} s apart\n"
                ));
                assert!(
                    apart <= INTERVAL.as_secs_f64(),
                    "outage more than one scrape interval apart:\n{report}"
                );
            }
        }
    }
    eprint!("{report}");
    let by = |name: &str| {
        recorded
            .iter()
            .find(|s| s.label("service") == name)
            .unwrap()
            .value
    };
    assert_eq!(by("steady"), 1.0);
    assert_eq!(by("broken"), 0.0);
    let flaky = by("flaky");
    assert!(
        flaky > 0.4 && flaky < 0.9,
        "flaky was down a third of the time: {flaky}"
    );
    drop(prometheus);
    daemon.terminate(Duration::from_secs(20));
}
