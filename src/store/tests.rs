//! Specifications of the store: schema versions, results through rows and
//! blocks, imports, retention, the outbox, runs and the batching writer.
//! What no role reads back (runs, every snapshot of a period) is checked
//! with SQL on the file.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::schema::{self, MIGRATIONS};
use super::*;

const HOUR: SignedDuration = SignedDuration::from_hours(1);

fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("continuity.db")).unwrap();
    (dir, store)
}

/// Now, whole milliseconds (what the store keeps).
fn now_ms() -> Timestamp {
    Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap()
}

/// The start of the hour `hours_ago` hours before the current one.
fn hour_start(hours_ago: i64) -> Timestamp {
    let h = Timestamp::now().as_millisecond().div_euclid(3_600_000) - hours_ago;
    Timestamp::from_millisecond(h * 3_600_000).unwrap()
}

fn ok(service: &str, check: &str, at: Timestamp, ms: u64) -> ResultRecord {
    ResultRecord {
        service: service.into(),
        check: check.into(),
        at,
        success: true,
        duration: Duration::from_millis(ms),
        reason: None,
        detail: None,
        source: ResultSource::Live,
    }
}

fn failed(service: &str, check: &str, at: Timestamp, reason: &str) -> ResultRecord {
    ResultRecord {
        success: false,
        reason: Some(reason.into()),
        detail: Some(format!("{reason} after 10 s")),
        ..ok(service, check, at, 10_000)
    }
}

/// `n` results of one check, 30 s apart, from `start`.
fn series(service: &str, check: &str, start: Timestamp, n: usize) -> Vec<ResultRecord> {
    (0..n)
        .map(|i| {
            let at = start + SignedDuration::from_secs(30 * i as i64);
            if i % 10 == 3 {
                failed(service, check, at, "timeout")
            } else {
                ok(service, check, at, 20 + i as u64)
            }
        })
        .collect()
}

fn write_results(store: &SqliteStore, rows: &[ResultRecord]) {
    let ops: Vec<WriteOp> = rows.iter().cloned().map(WriteOp::Result).collect();
    store.write_batch(&ops).unwrap();
}

/// The results of `service` in `[from, to)`, collected.
fn results_vec(
    store: &dyn ResultStore,
    service: &str,
    check: Option<&str>,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<ResultRecord>, StoreError> {
    let mut out = Vec::new();
    store.results(service, check, from, to, &mut |r| out.push(r))?;
    Ok(out)
}

fn last_result(store: &dyn ResultStore, service: &str, check: &str) -> Option<ResultRecord> {
    store
        .last_results()
        .unwrap()
        .into_iter()
        .find(|r| r.service == service && r.check == check)
}

fn outbox_by_key(store: &dyn NotificationStore, key: &str) -> OutboxRecord {
    store
        .outbox_history(Timestamp::MIN)
        .unwrap()
        .into_iter()
        .find(|o| o.idempotency_key == key)
        .expect("outbox item")
}

fn sql(store: &SqliteStore) -> rusqlite::Connection {
    rusqlite::Connection::open(store.path()).unwrap()
}

fn integrity_check(store: &SqliteStore) -> String {
    sql(store)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn user_version(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn migrations_from_empty_reach_latest_version() {
    let (dir, store) = temp_store();
    assert_eq!(
        user_version(&dir.path().join("continuity.db")),
        schema::latest_version()
    );
    assert_eq!(integrity_check(&store), "ok");
    assert_eq!(store.outbox_len().unwrap(), 0);
}

#[test]
fn old_store_is_migrated_step_by_step_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let v1: &[&str] = &["CREATE TABLE notes (text TEXT NOT NULL);"];
    let v2: &[&str] = &[v1[0], "ALTER TABLE notes ADD COLUMN author TEXT;"];
    {
        let mut c = rusqlite::Connection::open(&path).unwrap();
        schema::migrate(&mut c, "old.db", v1).unwrap();
        c.execute("INSERT INTO notes (text) VALUES ('kept')", [])
            .unwrap();
    }
    let mut c = rusqlite::Connection::open(&path).unwrap();
    schema::migrate(&mut c, "old.db", v2).unwrap();
    let (text, author): (String, Option<String>) = c
        .query_row("SELECT text, author FROM notes", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((text.as_str(), author), ("kept", None));
    assert_eq!(user_version(&path), 2);
}

#[test]
fn store_written_by_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("continuity.db");
    drop(SqliteStore::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", MIGRATIONS.len() as i64 + 1)
        .unwrap();
    let err = SqliteStore::open(&path).err().expect("must refuse");
    assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
    assert!(err.to_string().contains("newer continuity"), "{err}");
}

#[test]
fn foreign_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("CREATE TABLE invoices (id INTEGER)", [])
        .unwrap();
    let err = SqliteStore::open(&path).err().expect("must refuse");
    assert!(matches!(err, StoreError::NotContinuity { .. }), "{err}");
}

#[test]
fn missing_directory_is_reported_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/continuity.db");
    let err = SqliteStore::open(&path).err().expect("must fail");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
    assert!(err.to_string().contains("store.path"), "{err}");
}

#[test]
fn results_read_back_the_same_before_and_after_roll_up() {
    let (_dir, store) = temp_store();
    let start = hour_start(3) + SignedDuration::from_millis(1234);
    // 2.5 hours: every result is in an hour that is over.
    let mut rows = series("portal", "home", start, 300);
    rows.extend(series("portal", "login", start, 300));
    rows[5].source = ResultSource::Imported {
        origin: "uptimerobot".into(),
    };
    write_results(&store, &rows);
    let (from, to) = (hour_start(4), now_ms() + HOUR);
    let mut expected = rows.clone();
    expected.sort_by(|a, b| (a.at, &a.check).cmp(&(b.at, &b.check)));

    assert_eq!(
        results_vec(&store, "portal", None, from, to).unwrap(),
        expected
    );
    assert!(store.roll_up(now_ms()).unwrap() >= 3);
    assert_eq!(store.recent_rows(), 0);
    assert_eq!(
        results_vec(&store, "portal", None, from, to).unwrap(),
        expected
    );

    let home: Vec<ResultRecord> = expected
        .iter()
        .filter(|r| r.check == "home")
        .cloned()
        .collect();
    assert_eq!(
        results_vec(&store, "portal", Some("home"), from, to).unwrap(),
        home
    );
    let window = results_vec(&store, "portal", Some("home"), rows[10].at, rows[20].at).unwrap();
    assert_eq!(window, rows[10..20].to_vec());
    assert_eq!(last_result(&store, "portal", "login").as_ref(), rows.last());
    assert!(
        results_vec(&store, "nobody", None, from, to)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn late_result_is_merged_into_a_rolled_up_hour() {
    let (_dir, store) = temp_store();
    let start = hour_start(2);
    let rows = series("portal", "home", start, 10);
    write_results(&store, &rows);
    store.roll_up(now_ms()).unwrap();
    let late = failed(
        "portal",
        "home",
        start + SignedDuration::from_secs(45),
        "dns",
    );
    write_results(&store, std::slice::from_ref(&late));
    store.roll_up(now_ms()).unwrap();

    let got = results_vec(&store, "portal", Some("home"), start, start + HOUR).unwrap();
    assert_eq!(got.len(), 11);
    assert_eq!(got[2], late);
    let rollup = &store
        .rollups("portal", Some("home"), start, start + HOUR)
        .unwrap()[0];
    assert_eq!((rollup.count, rollup.failures), (11, 2));
}

#[test]
fn rollups_count_failures_and_latency_including_hours_not_rolled_up() {
    let (_dir, store) = temp_store();
    let old = hour_start(2);
    let current = hour_start(0);
    write_results(
        &store,
        &[
            ok("portal", "home", old, 5),
            ok("portal", "home", old + SignedDuration::from_secs(30), 300),
            failed(
                "portal",
                "home",
                old + SignedDuration::from_secs(60),
                "timeout",
            ),
            ok("portal", "home", current, 40),
        ],
    );
    store.roll_up(current).unwrap();
    let r = store.rollups("portal", None, old, current + HOUR).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].hour, r[0].count, r[0].failures), (old, 3, 1));
    assert_eq!(r[0].duration_sum, Duration::from_millis(10_305));
    let le = |ms: u64| LATENCY_BUCKETS_MS.iter().position(|&b| b == ms).unwrap();
    assert_eq!(r[0].buckets[le(10)], 1);
    assert_eq!(r[0].buckets[le(500)], 1);
    assert_eq!(r[0].buckets[le(10000)], 1);
    assert_eq!((r[1].hour, r[1].count, r[1].failures), (current, 1, 0));
    assert_eq!(r[1].buckets[le(50)], 1);
}

#[test]
fn prune_keeps_rollups_after_raw_results_are_gone() {
    let (_dir, store) = temp_store();
    let old = hour_start(50);
    let recent = hour_start(2);
    write_results(&store, &series("portal", "home", old, 120));
    write_results(&store, &series("portal", "home", recent, 120));
    // Not rolled up yet: prune must roll up before it drops raw results.
    let report = store
        .prune(
            now_ms(),
            Duration::from_secs(24 * 3600),
            Duration::from_secs(400 * 86400),
        )
        .unwrap();
    assert_eq!(report.results, 120);
    assert_eq!(report.rollups, 0);
    assert!(report.hours_rolled_up >= 1);

    let from = hour_start(60);
    let to = now_ms() + HOUR;
    let raw = results_vec(&store, "portal", None, from, to).unwrap();
    assert_eq!(raw.len(), 120);
    assert!(raw.iter().all(|r| r.at >= recent));
    let rollups = store.rollups("portal", None, from, to).unwrap();
    assert_eq!(rollups[0].hour, old);
    assert_eq!((rollups[0].count, rollups[0].failures), (120, 12));

    let report = store
        .prune(
            now_ms(),
            Duration::from_secs(3600),
            Duration::from_secs(10 * 3600),
        )
        .unwrap();
    assert_eq!(report.rollups, 1);
    assert_eq!(
        store.rollups("portal", None, from, to).unwrap()[0].hour,
        recent
    );
}

#[test]
fn import_with_duplicate_fails_whole_unless_skip_duplicates() {
    let (_dir, store) = temp_store();
    let start = hour_start(30);
    let stored = series("portal", "home", start, 10);
    write_results(&store, &stored);
    store.roll_up(now_ms()).unwrap();

    let origin = ResultSource::Imported {
        origin: "legacy.csv".into(),
    };
    let mut file: Vec<ResultRecord> = series("portal", "home", start - HOUR, 5)
        .into_iter()
        .chain([stored[4].clone()])
        .chain(series("portal", "search", start, 5))
        .collect();
    file.push(file[7].clone());
    for r in &mut file {
        r.source = origin.clone();
    }
    let before = results_vec(&store, "portal", None, start - HOUR * 2, now_ms()).unwrap();

    let err = store.insert_results_atomic(&file, false).unwrap_err();
    match &err {
        StoreError::Duplicates { rows } => assert_eq!(rows, &vec![5, 11]),
        other => panic!("expected duplicates, got {other}"),
    }
    assert!(err.to_string().contains("row 6"), "{err}");
    assert_eq!(
        results_vec(&store, "portal", None, start - HOUR * 2, now_ms()).unwrap(),
        before,
        "a failed import must leave nothing behind"
    );

    let report = store.insert_results_atomic(&file, true).unwrap();
    assert_eq!(report.inserted, 10);
    assert_eq!(report.duplicates, vec![5, 11]);
    let all = results_vec(&store, "portal", None, start - HOUR * 2, now_ms()).unwrap();
    assert_eq!(all.len(), 20);
    assert_eq!(
        all.iter().filter(|r| r.source == origin).count(),
        10,
        "the stored row wins over its duplicate"
    );
    let rollups = store
        .rollups("portal", Some("home"), start - HOUR, start + HOUR)
        .unwrap();
    assert_eq!(rollups.iter().map(|r| r.count).sum::<u64>(), 15);
}

#[test]
fn import_into_the_current_hour_detects_duplicates_of_live_rows() {
    let (_dir, store) = temp_store();
    let live = ok("portal", "home", now_ms(), 30);
    write_results(&store, std::slice::from_ref(&live));
    let err = store
        .insert_results_atomic(std::slice::from_ref(&live), false)
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicates { .. }));
}

#[test]
fn transitions_start_with_the_state_in_force() {
    let (_dir, store) = temp_store();
    let t0 = hour_start(100);
    let ops = [(0, "up"), (10, "down"), (20, "up"), (30, "degraded")].map(|(m, state)| {
        WriteOp::ServiceTransition(ServiceTransitionRecord {
            service: "portal".into(),
            at: t0 + SignedDuration::from_mins(m),
            state: state.into(),
            cause: None,
        })
    });
    store.write_batch(&ops).unwrap();
    let states = |from: i64, to: i64| -> Vec<String> {
        store
            .service_transitions(
                Some("portal"),
                t0 + SignedDuration::from_mins(from),
                t0 + SignedDuration::from_mins(to),
            )
            .unwrap()
            .into_iter()
            .map(|t| t.state)
            .collect()
    };
    assert_eq!(states(15, 31), ["down", "up", "degraded"]);
    assert_eq!(states(-5, 5), ["up"]);
    // Pruning keeps the last transition before the cutoff: the state in force.
    let report = store
        .prune(
            now_ms(),
            Duration::from_secs(3600),
            Duration::from_secs(3600),
        )
        .unwrap();
    assert_eq!(report.service_transitions, 3);
    assert_eq!(states(40, 50), ["degraded"]);
}

#[test]
fn incident_is_opened_updated_and_closed_by_service_and_start() {
    let (_dir, store) = temp_store();
    let start = hour_start(1);
    let evidence = vec![failed("portal", "home", start, "refused")];
    let mut incident = IncidentRecord {
        id: 0,
        service: "portal".into(),
        started_at: start,
        ended_at: None,
        cause: json!({"checks": ["home"]}),
        evidence: evidence.clone(),
    };
    store
        .write_batch(&[WriteOp::Incident(incident.clone())])
        .unwrap();
    incident.evidence.push(failed(
        "portal",
        "home",
        start + SignedDuration::from_secs(30),
        "refused",
    ));
    store
        .write_batch(&[WriteOp::Incident(incident.clone())])
        .unwrap();

    let open = store
        .open_incident("portal")
        .unwrap()
        .expect("open incident");
    assert_eq!(open.evidence.len(), 2);

    let end = start + SignedDuration::from_mins(5);
    store
        .write_batch(&[WriteOp::CloseIncident {
            service: "portal".into(),
            started_at: start,
            ended_at: end,
        }])
        .unwrap();
    assert!(store.open_incident("portal").unwrap().is_none());
    let all = store
        .incidents(Some("portal"), start - HOUR, start + HOUR)
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].ended_at, Some(end));
    assert_eq!(all[0].id, open.id);
    assert!(store.incidents(None, end, end + HOUR).unwrap().is_empty());
}

fn outbox_item(key: &str, now: Timestamp) -> OutboxRecord {
    OutboxRecord {
        id: 0,
        idempotency_key: key.into(),
        receiver: "oncall-sms".into(),
        payload: JsonText::of(&json!({"text": "portal down"})).unwrap(),
        status: OutboxStatus::Pending,
        attempts: 0,
        next_attempt_at: now,
        created_at: now,
        expires_at: now + HOUR,
        last_error: None,
        delivered_at: None,
    }
}

#[test]
fn outbox_enqueue_ignores_duplicate_idempotency_key() {
    let (_dir, store) = temp_store();
    let now = now_ms();
    assert!(
        store
            .outbox_enqueue(&outbox_item("portal-down-1", now))
            .unwrap()
    );
    let mut again = outbox_item("portal-down-1", now);
    again.receiver = "someone-else".into();
    assert!(!store.outbox_enqueue(&again).unwrap());
    store
        .write_batch(&[WriteOp::Outbox(again.clone())])
        .unwrap();
    assert_eq!(store.outbox_len().unwrap(), 1);
    let kept = outbox_by_key(&store, "portal-down-1");
    assert_eq!(kept.receiver, "oncall-sms");
}

#[test]
fn outbox_item_is_retried_delivered_or_expired() {
    let (_dir, store) = temp_store();
    let now = now_ms();
    store.outbox_enqueue(&outbox_item("a", now)).unwrap();
    store.outbox_enqueue(&outbox_item("b", now)).unwrap();
    let due = store.outbox_due(now, 10).unwrap();
    assert_eq!(due.len(), 2);

    let later = now + SignedDuration::from_secs(60);
    store
        .outbox_failed(due[0].id, "503 from gateway", later)
        .unwrap();
    let due_now = store.outbox_due(now, 10).unwrap();
    assert_eq!(due_now.len(), 1);
    assert_eq!(due_now[0].idempotency_key, "b");
    store.outbox_delivered(due_now[0].id, now).unwrap();

    let a = outbox_by_key(&store, "a");
    assert_eq!(
        (a.attempts, a.last_error.as_deref()),
        (1, Some("503 from gateway"))
    );
    let b = outbox_by_key(&store, "b");
    assert_eq!(
        (b.status, b.delivered_at),
        (OutboxStatus::Delivered, Some(now))
    );
    assert_eq!(store.outbox_len().unwrap(), 1);

    assert_eq!(store.outbox_expire_items(now + HOUR).unwrap().len(), 1);
    assert_eq!(store.outbox_len().unwrap(), 0);
    assert!(store.outbox_due(later, 10).unwrap().is_empty());
}

#[test]
fn run_left_by_a_crash_has_no_stopped_at() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("continuity.db");
    let t0 = hour_start(5);
    let beat = t0 + HOUR * 2 + SignedDuration::from_secs(60);
    {
        let store = SqliteStore::open(&path).unwrap();
        let first = store.start_run(t0).unwrap();
        store.stop_run(first, t0 + HOUR).unwrap();
        let crashed = store.start_run(t0 + HOUR * 2).unwrap();
        store
            .write_batch(&[WriteOp::Heartbeat {
                run: crashed,
                at: beat,
            }])
            .unwrap();
        // Dropped without stop_run: as if killed.
    }
    let store = SqliteStore::open(&path).unwrap();
    let runs: Vec<(i64, i64, Option<i64>)> = sql(&store)
        .prepare("SELECT started_at, last_heartbeat_at, stopped_at FROM runs ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let ms = |t: Timestamp| t.as_millisecond();
    assert_eq!(
        runs,
        [
            (ms(t0), ms(t0 + HOUR), Some(ms(t0 + HOUR))),
            (ms(t0 + HOUR * 2), ms(beat), None),
        ]
    );
}

fn window(reference: &str, start: Timestamp) -> MaintenanceRecord {
    MaintenanceRecord {
        id: 0,
        reference: reference.into(),
        description: Some("database upgrade".into()),
        effect: "exclude".into(),
        scope_kind: "service".into(),
        scope_value: "portal".into(),
        start,
        end: start + HOUR,
        created_at: start - HOUR,
        created_by: "alice".into(),
        deleted: false,
    }
}

#[test]
fn maintenance_windows_are_created_listed_and_soft_deleted() {
    let (_dir, store) = temp_store();
    let t0 = hour_start(0);
    let id = store.insert_maintenance(&window("CHG-1", t0)).unwrap();
    let listed = store.maintenances(t0, t0 + HOUR, false).unwrap();
    assert_eq!(
        listed,
        [MaintenanceRecord {
            id,
            ..window("CHG-1", t0)
        }]
    );

    assert!(store.delete_maintenance(id).unwrap());
    assert!(!store.delete_maintenance(id).unwrap());
    assert!(store.maintenances(t0, t0 + HOUR, false).unwrap().is_empty());
    assert_eq!(store.maintenances(t0, t0 + HOUR, true).unwrap().len(), 1);

    let mut bad = window("CHG-2", t0);
    bad.effect = "silence".into();
    let err = store.insert_maintenance(&bad).unwrap_err();
    assert!(err.to_string().contains("'exclude' or 'mute'"), "{err}");
}

#[test]
fn recomputation_keeps_previous_and_new_figures() {
    let (_dir, store) = temp_store();
    let t0 = hour_start(0);
    let snapshot = |figures: serde_json::Value| SlaSnapshot {
        id: 0,
        service: "portal".into(),
        sla: "availability".into(),
        period: "2026-03".into(),
        computed_at: t0,
        recomputation_id: None,
        figures,
    };
    store
        .insert_sla_snapshot(&snapshot(json!({"availability": 0.991})))
        .unwrap();
    let rec = RecomputationRecord {
        id: 0,
        created_at: t0,
        reason: "maintenance CHG-1 was missing".into(),
        config_digest: "sha256:abc".into(),
        service: Some("portal".into()),
        from: t0 - HOUR * 24,
        to: t0,
        before: json!({"availability": 0.991}),
        after: json!({"availability": 0.998}),
        who: "alice".into(),
    };
    let id = store
        .insert_recomputation(&rec, &[snapshot(json!({"availability": 0.998}))])
        .unwrap();

    let latest = store.latest_sla_snapshots(Some("portal")).unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].figures, json!({"availability": 0.998}));
    assert_eq!(latest[0].recomputation_id, Some(id));
    let history: Vec<String> = sql(&store)
        .prepare(
            "SELECT figures FROM sla_snapshots
             WHERE service = 'portal' AND sla = 'availability' AND period = '2026-03' ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        history,
        [r#"{"availability":0.991}"#, r#"{"availability":0.998}"#],
        "the figures before are kept"
    );
    let recs = store.recomputations(Some("portal"), 10).unwrap();
    assert_eq!(recs, vec![RecomputationRecord { id, ..rec }]);
}

fn count_results(store: &SqliteStore, service: &str) -> usize {
    let mut n = 0;
    let far = SignedDuration::from_hours(24 * 365);
    store
        .results(service, None, now_ms() - far, now_ms() + far, &mut |_| {
            n += 1
        })
        .unwrap();
    n
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn writer_commits_everything_submitted_before_flush() {
    let (_dir, store) = temp_store();
    let store = Arc::new(store);
    let writer = StoreWriter::spawn(store.clone(), WriterOptions::default()).unwrap();
    let rows = series("portal", "home", hour_start(1), 5_000);
    writer.submit_all(rows.into_iter().map(WriteOp::Result));
    writer.flush_blocking();
    assert_eq!(count_results(&store, "portal"), 5_000);
    assert_eq!(writer.backlog(), 0);
    assert_eq!(writer.committed_total(), 5_000);
    assert_eq!(writer.errors_total(), 0);
}

#[test]
fn writer_keeps_writes_while_the_disk_is_full_and_recovers() {
    let (_dir, store) = temp_store();
    let store = Arc::new(store);
    let writer = StoreWriter::spawn(store.clone(), WriterOptions::default()).unwrap();
    store.simulate_disk_full(true);
    let rows = series("portal", "home", hour_start(1), 6_000);
    writer.submit_all(rows.into_iter().map(WriteOp::Result));
    wait_until("a failed write", Duration::from_secs(10), || {
        writer.errors_total() > 0
    });
    assert!(writer.backlog() > 0);

    store.simulate_disk_full(false);
    writer.flush_blocking();
    assert_eq!(count_results(&store, "portal"), 6_000);
    assert_eq!(writer.dropped_total(), 0);
    assert_eq!(writer.backlog(), 0);
}

#[test]
fn writer_backlog_drops_the_oldest_writes_beyond_its_cap() {
    let (_dir, store) = temp_store();
    let store = Arc::new(store);
    let options = WriterOptions {
        max_batch: 50,
        backlog_cap: 200,
        ..WriterOptions::default()
    };
    let writer = StoreWriter::spawn(store.clone(), options).unwrap();
    store.simulate_disk_full(true);
    let rows = series("portal", "home", hour_start(1), 3_000);
    let newest = rows.last().cloned().unwrap();
    writer.submit_all(rows.into_iter().map(WriteOp::Result));
    assert!(writer.backlog() <= 250);
    store.simulate_disk_full(false);
    writer.flush_blocking();

    let stored = count_results(&store, "portal") as u64;
    assert!(writer.dropped_total() >= 2_000);
    assert_eq!(stored + writer.dropped_total(), 3_000);
    assert_eq!(
        last_result(store.as_ref(), "portal", "home"),
        Some(newest),
        "the newest writes are the ones kept"
    );
}

#[test]
fn writer_rolls_up_completed_hours_on_its_own() {
    let (_dir, store) = temp_store();
    let store = Arc::new(store);
    let mut maintenance = Maintenance::new(
        Duration::from_secs(35 * 86400),
        Duration::from_secs(400 * 86400),
    );
    maintenance.every = Duration::from_millis(20);
    let options = WriterOptions {
        maintenance: Some(maintenance),
        ..WriterOptions::default()
    };
    let writer = StoreWriter::spawn(store.clone(), options).unwrap();
    writer.submit_all(
        series("portal", "home", hour_start(3), 240)
            .into_iter()
            .map(WriteOp::Result),
    );
    writer.flush_blocking();
    wait_until("the roll-up", Duration::from_secs(10), || {
        store.recent_rows() == 0
    });
    let rollups = store
        .rollups("portal", None, hour_start(3), hour_start(0))
        .unwrap();
    assert_eq!(rollups.iter().map(|r| r.count).sum::<u64>(), 240);
}

#[test]
fn result_record_serializes_duration_in_microseconds() {
    let r = failed("portal", "home", Timestamp::UNIX_EPOCH, "timeout");
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["duration_us"], json!(10_000_000));
    assert_eq!(v["source"], json!({"kind": "live"}));
    let back: ResultRecord = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}

#[test]
fn an_outbox_payload_is_written_as_the_document_it_holds() {
    let payload =
        JsonText::of(&json!({"status": "firing", "labels": {"service": "portal"}})).unwrap();
    let written = serde_json::to_value(&payload).unwrap();
    assert_eq!(written["labels"]["service"], "portal");
    let read: JsonText = serde_json::from_value(written).unwrap();
    assert_eq!(
        read.decode::<serde_json::Value>().unwrap()["status"],
        "firing"
    );
    assert!(JsonText::from_text("{\"unclosed\": ".into()).is_err());
}
