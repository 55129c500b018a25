//! Benchmark of the SQLite store: disk size of a year of checks with the
//! default retention, ingest rates, and the query behind the SLA report.
//!
//! `cargo run --release --example store_bench -- [--days 365] [--checks 1000] [--quick]`
//!
//! A year is simulated, not replayed in real time: the retention window of
//! raw results is written for real (the newest hours through the batching
//! writer, the rest through the import path straight into packed hours),
//! older hours exist only as roll-ups (what pruning leaves: copies, by SQL,
//! of the roll-ups the import wrote), and service transitions and incidents
//! cover the whole year. Everything simulated is printed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use continuity::store::{
    BatchStore, HistoryStore, IncidentRecord, ResultRecord, ResultSource, ResultStore,
    ServiceTransitionRecord, SqliteOptions, SqliteStore, StoreWriter, Synchronous, WriteOp,
    WriterOptions,
};
use jiff::{SignedDuration, Timestamp};
use rusqlite::params;

struct Args {
    days: i64,
    checks: usize,
    interval_s: i64,
    retention_days: i64,
    live_hours: i64,
    outages_per_week: f64,
    synchronous: Synchronous,
    dir: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        days: 365,
        checks: 1000,
        interval_s: 30,
        retention_days: 35,
        live_hours: 6,
        outages_per_week: 2.0,
        synchronous: Synchronous::Full,
        dir: PathBuf::from("bench/out/store"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--quick" => {
                a.days = 30;
                a.checks = 100;
                a.retention_days = 7;
                a.live_hours = 1;
            }
            "--days" => a.days = value()?.parse().map_err(|e| format!("--days: {e}"))?,
            "--checks" => a.checks = value()?.parse().map_err(|e| format!("--checks: {e}"))?,
            "--interval" => {
                a.interval_s = value()?.parse().map_err(|e| format!("--interval: {e}"))?
            }
            "--retention-days" => {
                a.retention_days = value()?
                    .parse()
                    .map_err(|e| format!("--retention-days: {e}"))?
            }
            "--live-hours" => {
                a.live_hours = value()?.parse().map_err(|e| format!("--live-hours: {e}"))?
            }
            "--sync" => {
                a.synchronous = match value()?.as_str() {
                    "full" => Synchronous::Full,
                    "normal" => Synchronous::Normal,
                    other => return Err(format!("--sync full|normal, not {other}")),
                }
            }
            "--dir" => a.dir = PathBuf::from(value()?),
            "--help" | "-h" => {
                return Err("usage: store_bench [--quick] [--days N] [--checks N] \
                     [--interval SECS] [--retention-days N] [--live-hours N] \
                     [--sync full|normal] [--dir DIR]"
                    .into());
            }
            other => return Err(format!("unknown argument {other} (try --help)")),
        }
    }
    a.retention_days = a.retention_days.min(a.days);
    a.live_hours = a.live_hours.clamp(1, a.retention_days * 24);
    if a.checks == 0 || a.interval_s <= 0 || a.days <= 0 {
        return Err("--checks, --interval and --days must be positive".into());
    }
    Ok(a)
}

/// splitmix64: reproducible data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

const FAILURE_RATE: f64 = 0.005;
const JITTER_MS: u64 = 20;
const REASONS: [&str; 4] = ["timeout", "refused", "status", "dns"];

fn service_name(i: usize) -> String {
    format!("service-{i:04}")
}

/// One probe result of check `i` in slot `slot` (interval counts since the
/// epoch): a fixed phase per check, up to 20 ms of scheduler jitter, a
/// per-check typical latency, 0.5 % failures with a reason and a detail.
fn result(a: &Args, rng: &mut Rng, i: usize, slot: i64) -> ResultRecord {
    let phase_ms = (i as i64 * 7_919) % (a.interval_s * 1000);
    let at_ms = slot * a.interval_s * 1000 + phase_ms + rng.below(JITTER_MS) as i64;
    let typical_us = 20_000 + (i as u64 * 2_654_435_761) % 280_000;
    let fail = rng.chance(FAILURE_RATE);
    let (duration_us, reason, detail) = if fail {
        let r = REASONS[rng.below(REASONS.len() as u64) as usize];
        (
            10_000_000,
            Some(r.to_string()),
            Some(format!("{r}: no usable answer from the service")),
        )
    } else {
        (typical_us * (80 + rng.below(70)) / 100, None, None)
    };
    ResultRecord {
        service: service_name(i),
        check: "home".into(),
        at: Timestamp::from_millisecond(at_ms).expect("timestamp in range"),
        success: !fail,
        duration: Duration::from_micros(duration_us),
        reason,
        detail,
        source: ResultSource::Live,
    }
}

fn slots_in_hour(a: &Args, hour: i64) -> std::ops::Range<i64> {
    let per = a.interval_s * 1000;
    let lo = (hour * 3_600_000).div_euclid(per);
    let hi = ((hour + 1) * 3_600_000).div_euclid(per);
    lo..hi
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn rate(n: u64, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64().max(1e-9)
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&a) {
        eprintln!("store_bench: {e}");
        std::process::exit(1);
    }
}

fn run(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&a.dir)?;
    let path = a.dir.join("bench.db");
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    let options = SqliteOptions {
        synchronous: a.synchronous,
        ..SqliteOptions::default()
    };
    let store = Arc::new(SqliteStore::open_with(&path, options)?);
    let mut rng = Rng(0x00c0_ffee);

    let now_hour = Timestamp::now().as_millisecond().div_euclid(3_600_000);
    let per_hour = 3600 / a.interval_s as u64 * a.checks as u64;
    let raw_hours = a.retention_days * 24;
    let rollup_hours = a.days * 24 - raw_hours;
    println!("store_bench: {}", path.display());
    println!(
        "simulating {} checks (one per service) every {} s for {} days, synchronous={:?}:",
        a.checks, a.interval_s, a.days, a.synchronous
    );
    println!(
        "  raw results for the last {} days (~{} rows; {:.1} % failures with a detail, \
         {} ms scheduler jitter), of which the newest {} h (up to now) go through the batching writer",
        a.retention_days,
        per_hour * raw_hours as u64,
        FAILURE_RATE * 100.0,
        JITTER_MS,
        a.live_hours
    );
    println!(
        "  hourly roll-ups for the {} days before that ({} rows), as pruning leaves them",
        a.days - a.retention_days,
        rollup_hours * a.checks as i64
    );
    println!(
        "  service transitions and incidents (3 failing results as evidence) \
         for {} outages a week per service over all {} days",
        a.outages_per_week, a.days
    );

    // 1. Live path: the newest hours through the StoreWriter.
    let writer = StoreWriter::spawn(store.clone(), WriterOptions::default())?;
    let live_from = now_hour - a.live_hours;
    let now_slot = Timestamp::now().as_millisecond() / (a.interval_s * 1000);
    // Generated first, so that the timing is the writer's alone.
    let mut slots: Vec<Vec<WriteOp>> = Vec::new();
    for hour in live_from..=now_hour {
        for slot in slots_in_hour(a, hour).filter(|&s| s < now_slot) {
            slots.push(
                (0..a.checks)
                    .map(|i| WriteOp::Result(result(a, &mut rng, i, slot)))
                    .collect(),
            );
        }
    }
    let live_rows = slots.iter().map(|s| s.len() as u64).sum::<u64>();
    let started = Instant::now();
    for ops in slots {
        writer.submit_all(ops);
    }
    futures::executor::block_on(writer.flush());
    let live_took = started.elapsed();
    println!(
        "\ningest through StoreWriter: {live_rows} rows in {:.2} s = {:.0} rows/s \
         ({:.0}x the live rate of {:.1} rows/s)",
        live_took.as_secs_f64(),
        rate(live_rows, live_took),
        rate(live_rows, live_took) / (a.checks as f64 / a.interval_s as f64),
        a.checks as f64 / a.interval_s as f64
    );
    let started = Instant::now();
    let hours = store.roll_up(Timestamp::from_millisecond(now_hour * 3_600_000)?)?;
    let rolled = per_hour * hours;
    println!(
        "roll-up of {hours} completed hours ({rolled} rows packed): {:.2} s = {:.0} rows/s",
        started.elapsed().as_secs_f64(),
        rate(rolled, started.elapsed())
    );

    // 2. The rest of the retention window through the import path.
    let started = Instant::now();
    let mut imported = 0u64;
    for hour in (now_hour - raw_hours)..live_from {
        let mut rows = Vec::with_capacity(per_hour as usize);
        for slot in slots_in_hour(a, hour) {
            rows.extend((0..a.checks).map(|i| result(a, &mut rng, i, slot)));
        }
        imported += store.insert_results_atomic(&rows, false)?.inserted;
    }
    let import_took = started.elapsed();
    println!(
        "import (one transaction per hour of all checks): {imported} rows in {:.1} s = {:.0} rows/s",
        import_took.as_secs_f64(),
        rate(imported, import_took)
    );

    // 3. Roll-ups older than the raw retention: the import's roll-ups of
    // the retention window, copied back in time hour by hour. The store
    // has no call for writing roll-ups (the daemon only makes them from
    // results), so this goes straight to the file.
    let started = Instant::now();
    let rollup_from = now_hour - a.days * 24;
    let rollup_to = now_hour - raw_hours;
    let sql = rusqlite::Connection::open(store.path())?;
    let mut copy = sql.prepare(
        "INSERT OR REPLACE INTO rollups (check_id, hour, count, failures, sum_us, buckets)
         SELECT check_id, hour + ?1, count, failures, sum_us, buckets FROM rollups
         WHERE hour >= ?2 AND hour < ?3",
    )?;
    let template = (rollup_to, rollup_to + raw_hours.min(24 * 7));
    let mut rollup_rows = 0u64;
    let mut hour = rollup_from;
    while hour < rollup_to {
        let n = (template.1 - template.0).min(rollup_to - hour);
        rollup_rows += copy.execute(params![hour - template.0, template.0, template.0 + n])? as u64;
        hour += n;
    }
    drop(copy);
    println!(
        "roll-ups of older hours: {rollup_rows} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 4. Transitions and incidents over the whole period.
    let started = Instant::now();
    let span_ms = a.days * 86_400_000;
    let first_ms = (now_hour + 1) * 3_600_000 - span_ms;
    let outages = (a.outages_per_week * a.days as f64 / 7.0).round() as u64;
    let mut ops = Vec::new();
    let (mut transitions, mut incidents) = (0u64, 0u64);
    for i in 0..a.checks {
        let service = service_name(i);
        let mut starts: Vec<i64> = (0..outages)
            .map(|_| first_ms + rng.below(span_ms as u64) as i64)
            .collect();
        starts.sort_unstable();
        let initial = Timestamp::from_millisecond(first_ms)?;
        ops.push(service_transition(&service, initial, "up"));
        for start in starts {
            let down = Timestamp::from_millisecond(start)?;
            let up = down + SignedDuration::from_secs(60 + rng.below(3_600) as i64);
            ops.push(service_transition(&service, down, "down"));
            let evidence = (0..3)
                .map(|k| {
                    let mut r = result(a, &mut rng, i, start / (a.interval_s * 1000) - 2 + k);
                    r.success = false;
                    r.reason = Some("timeout".into());
                    r.detail = Some("timeout: no usable answer from the service".into());
                    r
                })
                .collect();
            ops.push(WriteOp::Incident(IncidentRecord {
                id: 0,
                service: service.clone(),
                started_at: down,
                ended_at: Some(up),
                cause: serde_json::json!({"checks_down": ["home"], "rule": "any"}),
                evidence,
            }));
            ops.push(service_transition(&service, up, "up"));
            transitions += 2;
            incidents += 1;
        }
        if ops.len() > 20_000 {
            store.write_batch(&ops)?;
            ops.clear();
        }
    }
    store.write_batch(&ops)?;
    println!(
        "transitions: {transitions} and incidents: {incidents} in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 5. Steady state: what the hourly maintenance does.
    let started = Instant::now();
    let report = store.prune(
        Timestamp::now(),
        Duration::from_secs(a.retention_days as u64 * 86_400),
        Duration::from_secs(400 * 86_400),
    )?;
    println!(
        "prune at steady state: {:.2} s ({} raw results, {} roll-ups removed)",
        started.elapsed().as_secs_f64(),
        report.results,
        report.rollups
    );
    drop(sql);
    let sql = rusqlite::Connection::open(store.path())?;
    sql.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;

    let bytes = disk_bytes(&path);
    println!(
        "\ndisk: {:.1} MiB ({bytes} bytes), all tables together = {:.2} bytes per raw result kept",
        mib(bytes),
        bytes as f64 / (live_rows + imported) as f64
    );
    let mut by_table = sql.prepare(
        "SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC LIMIT 12",
    )?;
    for row in by_table.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (name, size) = row?;
        println!("  {name:<34} {:>9.1} MiB", mib(size as u64));
    }

    // 6. Queries.
    let to = Timestamp::from_millisecond((now_hour + 1) * 3_600_000)?;
    let from = to - SignedDuration::from_hours(24 * 7);
    for attempt in ["first", "second"] {
        let started = Instant::now();
        let list = store.service_transitions(None, from, to)?;
        let availability = availability(&list, from, to);
        println!(
            "SLA query ({attempt} run): service transitions of {} services over one week \
             ({} rows) + availability: {:.0} ms (mean availability {:.4} %)",
            availability.len(),
            list.len(),
            started.elapsed().as_secs_f64() * 1000.0,
            availability.iter().sum::<f64>() / availability.len().max(1) as f64 * 100.0
        );
    }
    let started = Instant::now();
    let mut week = 0u64;
    store.results(&service_name(0), None, from, to, &mut |_| week += 1)?;
    println!(
        "raw results of one check over one week: {} rows in {:.0} ms",
        week,
        started.elapsed().as_secs_f64() * 1000.0
    );
    let started = Instant::now();
    let year = store.rollups(
        &service_name(0),
        None,
        to - SignedDuration::from_hours(24 * a.days),
        to,
    )?;
    println!(
        "roll-ups of one check over {} days: {} rows in {:.0} ms",
        a.days,
        year.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    let started = Instant::now();
    let last = store.last_results()?;
    println!(
        "last result of every check ({}): {:.0} ms",
        last.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );

    let year_rows = a.checks as f64 * 365.0 * 86_400.0 / a.interval_s as f64;
    println!(
        "\nextrapolated: a year of live results is {:.0} rows; at the measured writer rate \
         that is {:.0} s of writing a year ({:.3} % of the time)",
        year_rows,
        year_rows / rate(live_rows, live_took),
        year_rows / rate(live_rows, live_took) / (365.0 * 86_400.0) * 100.0
    );
    Ok(())
}

/// Bytes on disk: the database file plus its WAL.
fn disk_bytes(path: &std::path::Path) -> u64 {
    let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    size(path.to_path_buf()) + size(PathBuf::from(wal))
}

fn service_transition(service: &str, at: Timestamp, state: &str) -> WriteOp {
    WriteOp::ServiceTransition(ServiceTransitionRecord {
        service: service.to_string(),
        at,
        state: state.into(),
        cause: None,
    })
}

/// Share of `[from, to)` each service was not down, from its transitions
/// (the first one per service is the state in force at `from`).
fn availability(list: &[ServiceTransitionRecord], from: Timestamp, to: Timestamp) -> Vec<f64> {
    let total = (to.as_millisecond() - from.as_millisecond()) as f64;
    let mut out = Vec::new();
    let mut i = 0;
    while i < list.len() {
        let service = &list[i].service;
        let mut down_ms = 0i64;
        let mut state: Option<(&str, i64)> = None;
        while i < list.len() && &list[i].service == service {
            let at = list[i].at.as_millisecond().max(from.as_millisecond());
            if let Some(("down", since)) = state {
                down_ms += at - since;
            }
            state = Some((list[i].state.as_str(), at));
            i += 1;
        }
        if let Some(("down", since)) = state {
            down_ms += to.as_millisecond() - since;
        }
        out.push(1.0 - down_ms as f64 / total);
    }
    out
}
