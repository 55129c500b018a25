//! Benchmark of history import and of the SLA report.
//!
//! `cargo run --release --example import_bench -- [--days 365] [--services 1000] [--dir DIR]`
//!
//! 1. Import: writes a CSV of one check probed every 30 s for `--days`
//!    days (365: 1 051 200 rows, a 20-minute outage a day), then times the
//!    import code `continuity import --csv` runs: reading and checking the
//!    rows, storing them in one transaction, and rebuilding the service's
//!    state from every stored result.
//! 2. Report: stores a week of state (an outage a day) for `--services`
//!    services with two SLAs each and times `sla_report` over that week.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use continuity::config::Config;
use continuity::import;
use continuity::report::{PeriodSelector, sla_report};
use continuity::store::{
    BatchStore, IncidentRecord, ResultRecord, ResultSource, ResultStore, ServiceTransitionRecord,
    SqliteStore, WriteOp,
};
use jiff::{SignedDuration, Timestamp};

struct Args {
    days: i64,
    services: usize,
    dir: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        days: 365,
        services: 1000,
        dir: std::env::temp_dir().join(format!("continuity-import-bench-{}", std::process::id())),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--days" => a.days = value()?.parse().map_err(|e| format!("--days: {e}"))?,
            "--services" => {
                a.services = value()?.parse().map_err(|e| format!("--services: {e}"))?
            }
            "--dir" => a.dir = PathBuf::from(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        eprintln!("error: cannot create {}: {e}", args.dir.display());
        std::process::exit(1);
    }
    println!("working in {}", args.dir.display());
    import_year(&args);
    report_week(&args);
    let _ = std::fs::remove_dir_all(&args.dir);
}

fn load_config(args: &Args, name: &str, yaml: &str) -> Config {
    let path = args.dir.join(name);
    std::fs::write(&path, yaml).expect("write config");
    Config::load(&path).unwrap_or_else(|e| panic!("config: {:?}", e.issues))
}

fn import_year(args: &Args) {
    let cfg = load_config(
        args,
        "import.yaml",
        r#"store: { path: import.db }
services:
  - id: portal
    slas: [{ name: round-the-clock, objective: 99.5, period: month }]
    checks:
      - id: home
        interval: 30s
        timeout: 10s
        http: { url: "https://portal.example/" }
"#,
    );
    let csv = args.dir.join("year.csv");
    let start: Timestamp = "2025-01-01T00:00:00Z".parse().expect("start");
    let rows = args.days * 2880;
    let began = Instant::now();
    let mut text = String::with_capacity(rows as usize * 60);
    text.push_str("timestamp,service,check,success,duration_seconds,reason\n");
    for k in 0..rows {
        let at = start + SignedDuration::from_secs(30 * k);
        // A 20-minute outage a day, at a different time each day.
        let day = k / 2880;
        let (slot, from) = (k % 2880, (day * 37) % 2840);
        let failing = slot >= from && slot < from + 40;
        if failing {
            let _ = writeln!(text, "{at},portal,home,false,10,timeout");
        } else {
            let _ = writeln!(text, "{at},portal,home,true,0.{:03},", 80 + k % 100);
        }
    }
    std::fs::write(&csv, &text).expect("write csv");
    drop(text);
    println!(
        "import: wrote {rows} rows ({} MB) in {:.1?}",
        std::fs::metadata(&csv)
            .map(|m| m.len() / 1_000_000)
            .unwrap_or(0),
        began.elapsed()
    );

    let store = SqliteStore::open(&cfg.store.path).expect("open store");
    let now = Timestamp::now();
    let began = Instant::now();
    let parsed = import::csv::read(&cfg, &csv, now).expect("read csv");
    let read = began.elapsed();
    let summary = import::load(&store, parsed, false, now).expect("import");
    let total = began.elapsed();
    let s = &summary.services[0];
    println!(
        "import: {} rows read and checked in {read:.2?}; stored and state rebuilt in {:.2?}; total {total:.2?}",
        summary.rows_read,
        total - read
    );
    println!(
        "import: {} imported, {} transitions and {} incidents derived",
        summary.imported, s.transitions_written, s.incidents_written
    );
}

fn report_week(args: &Args) {
    let mut yaml = String::from(
        r#"store: { path: report.db }
calendars:
  office: { timezone: Europe/Amsterdam, hours: { mon-fri: "08:00-17:00" }, holidays: nl }
services:
"#,
    );
    for i in 0..args.services {
        let _ = write!(
            yaml,
            r#"  - id: svc-{i}
    supplier: supplier-{}
    slas:
      - {{ name: round-the-clock, objective: 99.5, period: week }}
      - {{ name: office-hours, objective: 99.8, period: week, calendar: office }}
    checks:
      - {{ id: home, interval: 30s, timeout: 10s, http: {{ url: "https://svc-{i}.example/" }} }}
"#,
            i % 7
        );
    }
    let cfg = load_config(args, "report.yaml", &yaml);
    let store = SqliteStore::open(&cfg.store.path).expect("open store");
    let week_start: Timestamp = "2026-11-16T00:00:00+01:00".parse().expect("week");
    let mut ops = Vec::new();
    let mut last = Vec::new();
    for i in 0..args.services {
        let service = format!("svc-{i}");
        let transition = |at: Timestamp, state: &str| {
            WriteOp::ServiceTransition(ServiceTransitionRecord {
                service: service.clone(),
                at,
                state: state.into(),
                cause: Some("[]".into()),
            })
        };
        ops.push(transition(week_start - SignedDuration::from_hours(2), "up"));
        for day in 0..7 {
            let down = week_start
                + SignedDuration::from_hours(24 * day + 9)
                + SignedDuration::from_mins((i % 60) as i64);
            let up = down + SignedDuration::from_mins(20);
            ops.push(transition(down, "down"));
            ops.push(transition(up, "up"));
            ops.push(WriteOp::Incident(IncidentRecord {
                id: 0,
                service: service.clone(),
                started_at: down,
                ended_at: Some(up),
                cause: serde_json::json!([]),
                evidence: Vec::new(),
            }));
        }
        last.push(ResultRecord {
            service: service.clone(),
            check: "home".into(),
            at: week_start + SignedDuration::from_hours(168) - SignedDuration::from_secs(30),
            success: true,
            duration: std::time::Duration::from_millis(80),
            reason: None,
            detail: None,
            source: ResultSource::Live,
        });
    }
    store.write_batch(&ops).expect("write state");
    store
        .insert_results_atomic(&last, false)
        .expect("write results");
    let now: Timestamp = "2026-11-23T00:00:00+01:00".parse().expect("now");
    for round in ["first", "second"] {
        let began = Instant::now();
        let rows = sla_report(
            &cfg,
            &store,
            PeriodSelector::Label("2026-W47".into()),
            None,
            now,
        )
        .expect("report");
        println!(
            "report: {} services x 2 SLAs over a week: {} rows in {:.1?} ({round} run)",
            args.services,
            rows.len(),
            began.elapsed()
        );
    }
}
