//! Benchmark of the weekly management report: 1,000 services with two SLAs
//! each (office hours and 24x7), from a store holding the full week (one
//! result a minute per service: 10.08 million results, packed per hour as
//! the import path writes them, plus transitions and incidents of two
//! outages per service). Times building the report model (every
//! `sla_report` call: the week, eleven weeks before it, seven days, and
//! latency p95 from the stored durations) and rendering the HTML, and
//! reports the peak resident memory of the process that does it.
//!
//! `cargo run --release --example report_bench -- [--services 1000] [--dir bench/out/report]`
//!
//! The store is seeded once (kept in `--dir`; delete it to seed anew);
//! the measurement runs in a fresh child process, so its VmHWM (peak RSS,
//! from /proc/self/status) is the report's alone. Target: HTML in < 2 s
//! and < 200 MiB.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use continuity::config::Config;
use continuity::report::locale::Lang;
use continuity::report::weekly::{self, ReportFormat};
use continuity::store::{
    BatchStore, IncidentRecord, ResultRecord, ResultSource, ResultStore, ServiceTransitionRecord,
    SqliteStore, WriteOp,
};
use jiff::{SignedDuration, Timestamp};

const WEEK: &str = "2026-W47";
const WEEK_START: &str = "2026-11-16T00:00:00+01:00";

fn main() {
    let mut services = 1000usize;
    let mut dir = PathBuf::from("bench/out/report");
    let mut measure = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--services" => {
                services = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--services N")
            }
            "--dir" => dir = args.next().map(PathBuf::from).expect("--dir PATH"),
            "--measure" => measure = true,
            other => panic!("unknown argument {other}"),
        }
    }
    std::fs::create_dir_all(&dir).expect("bench dir");
    let config_path = dir.join("continuity.yaml");
    if measure {
        run_measurement(&config_path);
        return;
    }
    write_config(&config_path, services);
    let cfg = Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    if !cfg.store.path.exists() {
        let t = Instant::now();
        seed(&cfg, services);
        println!(
            "seeded {services} services × 1 week in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let out = Command::new(std::env::current_exe().expect("own path"))
        .args(["--measure", "--dir", dir.to_str().expect("utf-8 dir")])
        .output()
        .expect("measurement process");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
}

fn write_config(path: &Path, services: usize) {
    let mut y = String::from(
        "store:\n  path: continuity.db\ncalendars:\n  office-hours:\n    timezone: Europe/Amsterdam\n    hours: { mon-fri: \"08:00-17:00\" }\n    holidays: nl\nservices:\n",
    );
    for i in 0..services {
        y.push_str(&format!(
            "  - id: svc-{i:04}\n    name: Dienst {i}\n    category: cat-{}\n    supplier: supplier-{}\n    slas:\n      - {{ name: office-hours, objective: 99.8, calendar: office-hours }}\n      - {{ name: round-the-clock, objective: 99.5 }}\n    checks:\n      - {{ id: home, interval: 60s, timeout: 10s, http: {{ url: \"https://svc-{i}.example/\" }} }}\n",
            i % 7,
            i % 12
        ));
    }
    std::fs::write(path, y).expect("write config");
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

/// A week (plus an hour before it) of one result a minute per service,
/// hour by hour through the import path; two outages per service.
fn seed(cfg: &Config, services: usize) {
    let store = SqliteStore::open(&cfg.store.path).expect("open store");
    let start = ts(WEEK_START) - SignedDuration::from_hours(1);
    let hours = 24 * 7 + 2;
    // Outage k of service i: 10 to 40 minutes, on different days and hours.
    let outage = |i: usize, k: usize| -> (Timestamp, Timestamp) {
        let day = (i + 3 * k) % 7;
        let hour = 6 + (i * 7 + k * 5) % 14;
        let from = ts(WEEK_START)
            + SignedDuration::from_hours((day * 24 + hour) as i64)
            + SignedDuration::from_mins((i % 4) as i64 * 10);
        (
            from,
            from + SignedDuration::from_mins(10 + (i % 4) as i64 * 10),
        )
    };
    for h in 0..hours {
        let hour = start + SignedDuration::from_hours(h);
        let mut rows = Vec::with_capacity(services * 60);
        for i in 0..services {
            let outages = [outage(i, 0), outage(i, 1)];
            for m in 0..60 {
                let at = hour + SignedDuration::from_mins(m);
                let down = outages.iter().any(|(a, b)| *a <= at && at < *b);
                rows.push(ResultRecord {
                    service: format!("svc-{i:04}"),
                    check: "home".into(),
                    at,
                    success: !down,
                    duration: Duration::from_millis(if down {
                        10_000
                    } else {
                        80 + (m as u64 * 7) % 200
                    }),
                    reason: down.then(|| "timeout".to_string()),
                    detail: None,
                    source: ResultSource::Imported {
                        origin: "report_bench".into(),
                    },
                });
            }
        }
        store
            .insert_results_atomic(&rows, false)
            .expect("insert results");
    }
    let mut ops = Vec::new();
    for i in 0..services {
        let service = format!("svc-{i:04}");
        let transition = |at: Timestamp, state: &str| {
            WriteOp::ServiceTransition(ServiceTransitionRecord {
                service: service.clone(),
                at,
                state: state.into(),
                cause: None,
            })
        };
        ops.push(transition(start, "up"));
        for k in 0..2 {
            let (a, b) = outage(i, k);
            ops.push(transition(a, "down"));
            ops.push(transition(b, "up"));
            ops.push(WriteOp::Incident(IncidentRecord {
                id: 0,
                service: service.clone(),
                started_at: a,
                ended_at: Some(b),
                cause: serde_json::json!([{"check": "home", "critical": true, "state": "down",
                    "slow": false, "failure": {"at": a, "reason": "timeout", "detail": "no answer"}}]),
                evidence: Vec::new(),
            }));
        }
    }
    store.write_batch(&ops).expect("transitions");
    store
        .roll_up(ts(WEEK_START) + SignedDuration::from_hours(24 * 8))
        .expect("roll up");
}

fn run_measurement(config_path: &Path) {
    let cfg = Config::load(config_path).unwrap_or_else(|e| panic!("{e}"));
    let store = SqliteStore::open(&cfg.store.path).expect("open store");
    let tz = weekly::time_zone(&cfg);
    let period = continuity::sla::parse_period_label(WEEK, &tz).expect("week");
    let now = ts("2026-12-01T00:00:00Z");
    let t = Instant::now();
    let report = weekly::build(&cfg, &store, &period, Lang::Nl, now, None).expect("report");
    let built = t.elapsed();
    let html = weekly::render(&report, ReportFormat::Html, None).expect("html");
    let total = t.elapsed();
    let csv = weekly::render(&report, ReportFormat::Csv, None).expect("csv");
    println!(
        "weekly report {WEEK}: {} services, {} service lines, {} incidents",
        cfg.services.len(),
        report.services.len(),
        report.incidents.len()
    );
    let first = &report.services[0];
    println!(
        "first line: availability {:?}, latency p95 {:?} ms, daily {:?}",
        first.availability, first.latency_p95_ms, first.daily
    );
    println!(
        "model {:.3} s + HTML {:.3} s = {:.3} s; HTML {:.1} MiB, CSV {:.1} MiB",
        built.as_secs_f64(),
        (total - built).as_secs_f64(),
        total.as_secs_f64(),
        html.len() as f64 / 1_048_576.0,
        csv.len() as f64 / 1_048_576.0
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or("VmHWM: ?");
    println!(
        "peak RSS ({})",
        hwm.split_whitespace().collect::<Vec<_>>().join(" ")
    );
}
