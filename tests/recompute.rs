//! Recomputing after the fact: a maintenance window added to the
//! configuration moves down time to excluded time, a changed threshold
//! rewrites states and incidents exactly as a fresh derivation would, both
//! versions of the figures stay on record, and `continuity sla` shows the
//! recomputed figures with a note.

use std::path::Path;

use continuity::config::Config;
use continuity::import;
use continuity::recompute::{RecomputeError, RecomputeRequest, recompute};
use continuity::report::{self, OutputFormat, PeriodSelector, SlaRow, sla_report};
use continuity::store::{BatchStore, HistoryStore, ServiceTransitionRecord, SqliteStore, WriteOp};
use jiff::{SignedDuration, Timestamp};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

fn now() -> Timestamp {
    ts("2026-12-01T00:00:00Z")
}

const SERVICE: &str = r#"
services:
  - id: portal
    name: Citizen portal
    supplier: acme
    slas:
      - { name: round-the-clock, objective: 99.5, period: week }
    checks:
      - id: home
        interval: 60s
        timeout: 10s
        FAILURE_THRESHOLD
        http: { url: "https://portal.example/" }
"#;

const WINDOW: &str = r#"
maintenances:
  - reference: CHG-2026-0142
    description: storage migration
    service: portal
    start: 2026-11-18T01:30:00+01:00
    end: 2026-11-18T03:30:00+01:00
"#;

/// A configuration file `name` in `dir` (whose store is `dir/continuity.db`).
fn config(dir: &Path, name: &str, failure_threshold: u32, extra: &str) -> Config {
    let path = dir.join(name);
    let service = SERVICE.replace(
        "FAILURE_THRESHOLD",
        &format!("failure_threshold: {failure_threshold}"),
    );
    std::fs::write(
        &path,
        format!("store:\n  path: continuity.db\n{extra}{service}"),
    )
    .unwrap();
    Config::load(&path).unwrap_or_else(|e| panic!("{:?}", e.issues))
}

fn within(t: Timestamp, from: &str, to: &str) -> bool {
    ts(from) <= t && t < ts(to)
}

/// One result a minute from Sunday 15 November 22:00 to Tuesday 24
/// November 02:00 (CET, +01:00), around ISO week 2026-W47:
///
/// - Tue 17 Nov 10:00-10:04 four failures: down with threshold 3, not 5
/// - Wed 18 Nov 02:00-03:00 failing: down either way
/// - Mon 23 Nov 10:00-10:04 four failures: the next week
fn write_history(path: &Path) {
    let mut out = String::from("timestamp,service,check,success,duration_seconds,reason\n");
    let mut t = ts("2026-11-15T22:00:00+01:00");
    while t < ts("2026-11-24T02:00:00+01:00") {
        let failing = within(t, "2026-11-17T10:00:00+01:00", "2026-11-17T10:04:00+01:00")
            || within(t, "2026-11-18T02:00:00+01:00", "2026-11-18T03:00:00+01:00")
            || within(t, "2026-11-23T10:00:00+01:00", "2026-11-23T10:04:00+01:00");
        if failing {
            out.push_str(&format!("{t},portal,home,false,10,timeout\n"));
        } else {
            out.push_str(&format!("{t},portal,home,true,0.1,\n"));
        }
        t += SignedDuration::from_mins(1);
    }
    std::fs::write(path, out).unwrap();
}

/// A store in `dir` holding the history imported with `cfg`.
fn imported(dir: &Path, cfg: &Config) -> SqliteStore {
    let csv = dir.join("history.csv");
    write_history(&csv);
    let store = SqliteStore::open(&cfg.store.path).unwrap();
    let rows = import::csv::read(cfg, &csv, now()).unwrap();
    import::load(&store, rows, false, now()).unwrap();
    store
}

fn week(cfg: &Config, store: &SqliteStore) -> SlaRow {
    let rows = sla_report(
        cfg,
        store,
        PeriodSelector::Label("2026-W47".into()),
        None,
        now(),
    )
    .unwrap();
    assert_eq!(rows.len(), 1);
    rows.into_iter().next().unwrap()
}

fn request(from: &str, to: &str, reason: &str) -> RecomputeRequest {
    RecomputeRequest {
        from: ts(from),
        to: ts(to),
        service: None,
        reason: reason.into(),
        who: "alice".into(),
    }
}

fn spells(store: &SqliteStore, from: &str, to: &str) -> Vec<(Timestamp, Option<Timestamp>)> {
    store
        .incidents(Some("portal"), ts(from), ts(to))
        .unwrap()
        .iter()
        .map(|i| (i.started_at, i.ended_at))
        .collect()
}

#[test]
fn added_maintenance_window_moves_down_time_to_excluded_and_both_versions_stay_on_record() {
    let dir = tempfile::tempdir().unwrap();
    let before_cfg = config(dir.path(), "before.yaml", 3, "");
    let store = imported(dir.path(), &before_cfg);

    // Down: Tue 10:00-10:04 (240 s) + Wed 02:00-03:00 (3600 s).
    let old = week(&before_cfg, &store);
    assert_eq!(
        (old.down_seconds, old.excluded_maintenance_seconds),
        (3_840.0, 0.0)
    );
    // The weekly report put these figures on record.
    store
        .insert_sla_snapshot(&report::snapshot(&old, ts("2026-11-23T06:00:00Z")))
        .unwrap();

    let after_cfg = config(dir.path(), "after.yaml", 3, WINDOW);
    let out = recompute(
        &after_cfg,
        &store,
        &request(
            "2026-11-16T00:00:00+01:00",
            "2026-11-23T00:00:00+01:00",
            "CHG-2026-0142 was approved but missing from the configuration",
        ),
        now(),
    )
    .unwrap();

    // Maintenance does not change what the service did: the stored state
    // is left as it was, only the counting changes.
    let rw = &out.rewrites[0];
    assert_eq!(
        (
            rw.transitions_retracted,
            rw.transitions_written,
            rw.incidents_written
        ),
        (0, 0, 0)
    );
    // Before: the snapshot; after: Wed 01:30-03:30 excluded (7200 s), of
    // which the 02:00-03:00 outage was part.
    assert_eq!(out.before.len(), 1);
    assert!(
        out.before[0].basis.starts_with("snapshot "),
        "{}",
        out.before[0].basis
    );
    assert_eq!(out.before[0].row.down_seconds, 3_840.0);
    let new = &out.after[0];
    assert_eq!(
        (new.down_seconds, new.excluded_maintenance_seconds),
        (240.0, 7_200.0)
    );
    assert_eq!(new.unknown_seconds, old.unknown_seconds);
    assert_eq!(new.eligible_seconds, old.eligible_seconds - 7_200.0);

    // Both versions are on record, against the configuration used.
    let recs = store.recomputations(None, 10).unwrap();
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert_eq!(rec.id, out.id);
    assert_eq!(rec.who, "alice");
    assert_eq!(rec.config_digest, after_cfg.digest);
    assert_ne!(rec.config_digest, before_cfg.digest);
    assert_eq!(
        (rec.from, rec.to),
        (
            ts("2026-11-16T00:00:00+01:00"),
            ts("2026-11-23T00:00:00+01:00")
        )
    );
    assert_eq!(rec.before[0]["down_seconds"], 3_840.0);
    assert_eq!(rec.after[0]["down_seconds"], 240.0);
    assert_eq!(rec.after[0]["excluded_maintenance_seconds"], 7_200.0);
    // Every snapshot of the week is kept, the one before the recomputation
    // too (no role reads them back: ask the file).
    let history: Vec<(Option<i64>, String)> = rusqlite::Connection::open(store.path())
        .unwrap()
        .prepare(
            "SELECT recomputation_id, figures FROM sla_snapshots
             WHERE service = 'portal' AND sla = 'round-the-clock' AND period = '2026-W47'
             ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        history.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![None, Some(out.id)]
    );
    let figures: serde_json::Value = serde_json::from_str(&history[1].1).unwrap();
    assert_eq!(figures["down_seconds"], 240.0);

    // `continuity sla` shows the recomputed figures, with a note.
    let shown = week(&after_cfg, &store);
    assert_eq!(
        (shown.down_seconds, shown.excluded_maintenance_seconds),
        (240.0, 7_200.0)
    );
    let note = shown.recomputed.as_ref().expect("recomputed note");
    assert_eq!((note.id, note.by.as_str()), (out.id, "alice"));
    assert_eq!(note.config_digest, after_cfg.digest);
    let table = report::render(std::slice::from_ref(&shown), OutputFormat::Table);
    let note_line = format!(
        "  recomputed {} by alice: CHG-2026-0142 was approved but missing from the configuration",
        note.at.strftime("%Y-%m-%dT%H:%MZ")
    );
    assert!(table.lines().any(|l| l == note_line), "{table}");
    assert!(
        table.lines().nth(1).unwrap().starts_with("portal "),
        "{table}"
    );
    // Another week is not marked.
    let other = sla_report(
        &after_cfg,
        &store,
        PeriodSelector::Label("2026-W48".into()),
        None,
        now(),
    )
    .unwrap();
    assert!(other[0].recomputed.is_none());
}

#[test]
fn raised_threshold_rewrites_states_and_incidents_as_a_fresh_derivation_would() {
    let dir = tempfile::tempdir().unwrap();
    let three = config(dir.path(), "three.yaml", 3, "");
    let store = imported(dir.path(), &three);
    let (from, to) = ("2026-11-16T00:00:00+01:00", "2026-11-23T00:00:00+01:00");
    assert_eq!(spells(&store, from, "2026-11-24T00:00:00+01:00").len(), 3);

    let five = config(dir.path(), "five.yaml", 5, "");
    let out = recompute(
        &five,
        &store,
        &request(from, to, "contract says 5 failures"),
        now(),
    )
    .unwrap();
    // No snapshot was taken: the old state is counted for the record.
    assert!(out.before[0].basis.starts_with("stored state"));
    assert_eq!(out.before[0].row.down_seconds, 3_840.0);
    assert_eq!(out.after[0].down_seconds, 3_600.0);
    assert_eq!(out.before[0].row.incident_count, 2);
    assert_eq!(out.after[0].incident_count, 1);

    // The four-failure blip is no incident any more; next week's blip,
    // outside the range, is left as it was.
    assert_eq!(
        spells(&store, from, "2026-11-24T00:00:00+01:00"),
        vec![
            (
                ts("2026-11-18T02:00:00+01:00"),
                Some(ts("2026-11-18T03:00:00+01:00"))
            ),
            (
                ts("2026-11-23T10:00:00+01:00"),
                Some(ts("2026-11-23T10:04:00+01:00"))
            ),
        ]
    );

    // The recomputed week is exactly what importing with the new
    // threshold from the start gives.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh_cfg = config(fresh_dir.path(), "five.yaml", 5, "");
    let fresh = imported(fresh_dir.path(), &fresh_cfg);
    let transitions = |s: &SqliteStore| -> Vec<ServiceTransitionRecord> {
        s.service_transitions(Some("portal"), ts(from), ts(to))
            .unwrap()
    };
    assert_eq!(transitions(&store), transitions(&fresh));
    assert_eq!(
        week(&five, &store).down_seconds,
        week(&fresh_cfg, &fresh).down_seconds
    );
}

#[test]
fn an_incident_cut_by_the_range_start_keeps_its_stored_part() {
    let dir = tempfile::tempdir().unwrap();
    let three = config(dir.path(), "three.yaml", 3, "");
    let store = imported(dir.path(), &three);
    let five = config(dir.path(), "five.yaml", 5, "");
    recompute(
        &five,
        &store,
        &request(
            "2026-11-17T10:02:00+01:00",
            "2026-11-18T00:00:00+01:00",
            "edge",
        ),
        now(),
    )
    .unwrap();
    // Before 10:02 the stored state (down from 10:00) stands; from 10:02
    // the recomputed one (up): the incident now ends at the edge.
    assert_eq!(
        spells(
            &store,
            "2026-11-17T00:00:00+01:00",
            "2026-11-18T00:00:00+01:00"
        ),
        vec![(
            ts("2026-11-17T10:00:00+01:00"),
            Some(ts("2026-11-17T10:02:00+01:00"))
        )]
    );
    let states: Vec<(Timestamp, String)> = store
        .service_transitions(
            Some("portal"),
            ts("2026-11-17T09:00:00+01:00"),
            ts("2026-11-17T11:00:00+01:00"),
        )
        .unwrap()
        .into_iter()
        .map(|t| (t.at, t.state))
        .collect();
    assert_eq!(
        states,
        vec![
            (ts("2026-11-15T22:00:00+01:00"), "up".to_string()),
            (ts("2026-11-17T10:00:00+01:00"), "down".to_string()),
            (ts("2026-11-17T10:02:00+01:00"), "up".to_string()),
        ]
    );
}

#[test]
fn an_incident_cut_by_the_range_end_keeps_its_stored_part() {
    let dir = tempfile::tempdir().unwrap();
    let three = config(dir.path(), "three.yaml", 3, "");
    let store = imported(dir.path(), &three);
    let five = config(dir.path(), "five.yaml", 5, "");
    let out = recompute(
        &five,
        &store,
        &request(
            "2026-11-17T00:00:00+01:00",
            "2026-11-17T10:02:00+01:00",
            "edge",
        ),
        now(),
    )
    .unwrap();
    // Up until 10:02 recomputed; from 10:02 the stored state (down until
    // 10:04) stands, joined by a transition at the edge.
    let rw = &out.rewrites[0];
    assert_eq!((rw.transitions_retracted, rw.transitions_written), (1, 1));
    assert_eq!((rw.incidents_retracted, rw.incidents_written), (1, 1));
    assert_eq!(
        spells(
            &store,
            "2026-11-17T00:00:00+01:00",
            "2026-11-18T00:00:00+01:00"
        ),
        vec![(
            ts("2026-11-17T10:02:00+01:00"),
            Some(ts("2026-11-17T10:04:00+01:00"))
        )]
    );
    let states: Vec<(Timestamp, String)> = store
        .service_transitions(
            Some("portal"),
            ts("2026-11-17T09:00:00+01:00"),
            ts("2026-11-17T11:00:00+01:00"),
        )
        .unwrap()
        .into_iter()
        .map(|t| (t.at, t.state))
        .collect();
    assert_eq!(
        states,
        vec![
            (ts("2026-11-15T22:00:00+01:00"), "up".to_string()),
            (ts("2026-11-17T10:02:00+01:00"), "down".to_string()),
            (ts("2026-11-17T10:04:00+01:00"), "up".to_string()),
        ]
    );
}

#[test]
fn recompute_refuses_to_turn_recorded_history_without_raw_results_into_unknown_time() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "c.yaml", 3, "");
    let store = SqliteStore::open(&cfg.store.path).unwrap();
    // State recorded live, raw results since pruned.
    store
        .write_batch(&[WriteOp::ServiceTransition(ServiceTransitionRecord {
            service: "portal".into(),
            at: ts("2026-11-01T00:00:00Z"),
            state: "up".into(),
            cause: Some("[]".into()),
        })])
        .unwrap();
    let err = recompute(
        &cfg,
        &store,
        &request(
            "2026-11-16T00:00:00+01:00",
            "2026-11-23T00:00:00+01:00",
            "x",
        ),
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, RecomputeError::NoResults { .. }), "{err}");
    assert!(err.to_string().contains("pruned"), "{err}");
    assert!(store.recomputations(None, 10).unwrap().is_empty());
    let err = recompute(
        &cfg,
        &store,
        &request(
            "2026-11-23T00:00:00+01:00",
            "2026-11-16T00:00:00+01:00",
            "x",
        ),
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, RecomputeError::EmptyRange(_)), "{err}");
}
