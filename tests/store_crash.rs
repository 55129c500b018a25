//! Crash safety of the store: a process writing hard through the
//! `StoreWriter` is killed with SIGKILL; the store must open cleanly and
//! hold every result acknowledged (flushed) before the kill.
//!
//! The test re-executes its own binary as the writing child, switched by
//! an environment variable.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use continuity::store::{
    BatchStore, Maintenance, ResultRecord, ResultSource, ResultStore, RunStore,
    ServiceTransitionRecord, SqliteStore, StoreWriter, WriteOp, WriterOptions,
};
use jiff::{SignedDuration, Timestamp};

const CHILD_ENV: &str = "CONTINUITY_STORE_CRASH_CHILD";
const CHECKS: u64 = 4;
const STEP_MS: i64 = 1_000;
const PER_FLUSH: u64 = 500;

/// Result number `seq` is timestamped `seq` seconds after six hours ago,
/// so the child's roll-ups pack hours (and merge later arrivals into
/// them) while it writes, and the kill can land in the middle of one.
fn six_hours_ago() -> Timestamp {
    let h = Timestamp::now().as_millisecond().div_euclid(3_600_000) - 6;
    Timestamp::from_millisecond(h * 3_600_000).unwrap()
}

fn result(base: Timestamp, seq: u64) -> ResultRecord {
    ResultRecord {
        service: "portal".into(),
        check: format!("check-{}", seq % CHECKS),
        at: base + SignedDuration::from_millis(seq as i64 * STEP_MS),
        success: !seq.is_multiple_of(17),
        duration: Duration::from_micros(20_000 + seq % 5_000),
        reason: seq.is_multiple_of(17).then(|| "timeout".to_string()),
        detail: seq
            .is_multiple_of(17)
            .then(|| format!("no answer to probe {seq}")),
        source: ResultSource::Live,
    }
}

/// The child: write, flush, announce, forever (until killed).
fn write_until_killed(path: &str) -> ! {
    let store = Arc::new(SqliteStore::open(path.as_ref()).expect("child opens store"));
    let mut maintenance = Maintenance::new(
        Duration::from_secs(35 * 86400),
        Duration::from_secs(400 * 86400),
    );
    maintenance.every = Duration::from_millis(50);
    let options = WriterOptions {
        maintenance: Some(maintenance),
        ..WriterOptions::default()
    };
    let writer = StoreWriter::spawn(store.clone(), options).expect("writer starts");
    let run = store.start_run(Timestamp::now()).expect("run starts");
    let base = six_hours_ago();
    println!("base {}", base.as_millisecond());
    let started = Instant::now();
    let mut seq = 0u64;
    // Never outlive a parent that died: stop on our own after a while.
    while started.elapsed() < Duration::from_secs(60) {
        let ops = (seq..seq + PER_FLUSH).map(|s| WriteOp::Result(result(base, s)));
        writer.submit_all(ops);
        writer.submit(WriteOp::ServiceTransition(ServiceTransitionRecord {
            service: "portal".into(),
            at: Timestamp::now(),
            state: if seq.is_multiple_of(1000) {
                "down"
            } else {
                "up"
            }
            .into(),
            cause: None,
        }));
        writer.submit(WriteOp::Heartbeat {
            run,
            at: Timestamp::now(),
        });
        seq += PER_FLUSH;
        writer.flush_blocking();
        println!("committed {seq}");
    }
    std::process::exit(0)
}

#[test]
fn writer_survives_kill_9_without_losing_acknowledged_results() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        write_until_killed(&path);
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("continuity.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "writer_survives_kill_9_without_losing_acknowledged_results",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    let (lines_tx, lines) = mpsc::channel();
    let (base_tx, base_rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        // The harness prints "test <name> ... " without a newline, so a
        // marker may come after other text.
        let after = |line: &str, marker: &str| {
            line.find(marker)
                .map(|i| line[i + marker.len()..].trim().to_string())
        };
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(n) = after(&line, "committed ") {
                let _ = lines_tx.send(n.parse::<u64>().unwrap());
            } else if let Some(ms) = after(&line, "base ") {
                let _ = base_tx.send(ms.parse::<i64>().unwrap());
            }
        }
    });

    // Kill while it writes: right after an acknowledgement, when the next
    // batch is already being committed.
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut acknowledged = 0;
    let mut flushes = 0;
    while flushes < 60 {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(n) => {
                acknowledged = n;
                flushes += 1;
            }
            Err(e) => {
                let _ = child.kill();
                panic!("child stopped acknowledging after {flushes} flushes: {e}");
            }
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "child must die by SIGKILL");
    // Anything it printed between our last read and the kill was also
    // acknowledged.
    while let Ok(n) = lines.recv_timeout(Duration::from_millis(200)) {
        acknowledged = n;
    }

    let raw = rusqlite::Connection::open(&path).unwrap();
    let integrity: String = raw
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    drop(raw);

    let store = SqliteStore::open(&path).expect("store reopens after the kill");
    let base = Timestamp::from_millisecond(base_rx.recv().unwrap()).unwrap();
    let acknowledged_end = base + SignedDuration::from_millis(acknowledged as i64 * STEP_MS);
    let count = |to: Timestamp| {
        let mut n = 0u64;
        let mut seqs_ok = true;
        store
            .results("portal", None, base, to, &mut |r| {
                let seq = (r.at.as_millisecond() - base.as_millisecond()) / STEP_MS;
                seqs_ok &= r == result(base, seq as u64);
                n += 1;
            })
            .unwrap();
        (n, seqs_ok)
    };
    let (kept, intact) = count(acknowledged_end);
    assert_eq!(kept, acknowledged, "every acknowledged result survives");
    assert!(intact, "results read back exactly as written");
    let (total, _) = count(base + SignedDuration::from_hours(24 * 365));
    assert!(total >= acknowledged);

    let stopped: Vec<Option<i64>> = rusqlite::Connection::open(&path)
        .unwrap()
        .prepare("SELECT stopped_at FROM runs")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(stopped, [None], "a killed run has no stop time");

    // The store keeps working: the hours the child did not finish rolling
    // up are rolled up now, and nothing is lost or doubled by it.
    store.roll_up(Timestamp::now()).unwrap();
    assert_eq!(count(acknowledged_end).0, acknowledged);
}
