//! A scripted migration: one result a minute around a cutover, with
//! outages before, across the start of, inside and after the window, on a
//! fixed clock (the results carry their own instants and the report is
//! made "as of" a fixed now). Supplier attribution, the combined row and
//! an incident crossing the cutover are checked against figures worked
//! out by hand, to the millisecond (docs/sla.md, "Suppliers and
//! cutovers").

use std::path::Path;

use continuity::config::Config;
use continuity::import;
use continuity::report::{PeriodSelector, SlaRow, sla_report};
use continuity::store::SqliteStore;
use jiff::{SignedDuration, Timestamp};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

fn now() -> Timestamp {
    ts("2026-12-01T00:00:00Z")
}

const CONFIG: &str = r#"
store:
  path: continuity.db
suppliers:
  in-house:  { name: "Gemeente Groningen (in-house)" }
  northhost: { name: "NorthHost B.V.", lot: "Hosting", contact: "servicedesk@northhost.example" }
services:
  - id: citizen-portal
    supplier: in-house
    migration:
      from: in-house
      to: northhost
      cutover: { start: 2026-11-18T22:00:00+01:00, end: 2026-11-19T02:00:00+01:00, reference: CHG-1042 }
      hypercare: 4w
    slas:
      - { name: round-the-clock, objective: 99.5, period: week }
    checks:
      - id: home
        interval: 60s
        timeout: 10s
        failure_threshold: 1
        http: { url: "https://portal.example/" }
"#;

fn within(t: Timestamp, from: &str, to: &str) -> bool {
    ts(from) <= t && t < ts(to)
}

/// One result a minute from Sunday 15 November 22:00 to Tuesday 24
/// November 02:00 (CET), around ISO week 2026-W47, failing:
///
/// - Tue 17 Nov 10:00-10:05, in-house's time: 300 s;
/// - Wed 18 Nov 21:50-22:10, across the cutover's start: 600 s in-house's,
///   600 s inside the window;
/// - Wed 18 Nov 23:00-23:30, inside the window: 1,800 s, excluded;
/// - Fri 20 Nov 14:00-14:07, northhost's time: 420 s.
fn write_history(path: &Path) {
    let mut out = String::from("timestamp,service,check,success,duration_seconds,reason\n");
    let mut t = ts("2026-11-15T22:00:00+01:00");
    while t < ts("2026-11-24T02:00:00+01:00") {
        let failing = within(t, "2026-11-17T10:00:00+01:00", "2026-11-17T10:05:00+01:00")
            || within(t, "2026-11-18T21:50:00+01:00", "2026-11-18T22:10:00+01:00")
            || within(t, "2026-11-18T23:00:00+01:00", "2026-11-18T23:30:00+01:00")
            || within(t, "2026-11-20T14:00:00+01:00", "2026-11-20T14:07:00+01:00");
        if failing {
            out.push_str(&format!("{t},citizen-portal,home,false,10,timeout\n"));
        } else {
            out.push_str(&format!("{t},citizen-portal,home,true,0.1,\n"));
        }
        t += SignedDuration::from_mins(1);
    }
    std::fs::write(path, out).unwrap();
}

fn scripted() -> (tempfile::TempDir, Config, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("continuity.yaml");
    std::fs::write(&path, CONFIG).unwrap();
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let csv = dir.path().join("history.csv");
    write_history(&csv);
    let store = SqliteStore::open(&cfg.store.path).unwrap();
    let rows = import::csv::read(&cfg, &csv, now()).unwrap();
    import::load(&store, rows, false, now()).unwrap();
    (dir, cfg, store)
}

fn week(cfg: &Config, store: &SqliteStore, label: &str) -> Vec<SlaRow> {
    sla_report(cfg, store, PeriodSelector::Label(label.into()), None, now()).unwrap()
}

/// (total, excluded, eligible, good, down) in seconds.
fn figures(r: &SlaRow) -> (f64, f64, f64, f64, f64) {
    (
        r.total_seconds,
        r.excluded_maintenance_seconds,
        r.eligible_seconds,
        r.good_seconds,
        r.down_seconds,
    )
}

#[test]
fn a_week_spanning_the_cutover_gives_one_row_per_supplier_and_the_combined_row() {
    let (_dir, cfg, store) = scripted();
    let rows = week(&cfg, &store, "2026-W47");
    let suppliers: Vec<&str> = rows.iter().map(|r| r.supplier.as_str()).collect();
    assert_eq!(suppliers, ["in-house", "northhost", "*"]);
    let (old, new, all) = (&rows[0], &rows[1], &rows[2]);

    // in-house: Mon 00:00 to Wed 22:00 = 70 h; down 300 + 600 s.
    assert_eq!(figures(old), (252_000.0, 0.0, 252_000.0, 251_100.0, 900.0));
    // 0.5 % of 252,000 s.
    assert_eq!(
        (
            old.budget_planned_seconds,
            old.budget_allowed_seconds,
            old.budget_remaining_seconds
        ),
        (252_000.0, 1_260.0, 360.0)
    );
    // northhost: Wed 22:00 to Mon 00:00 = 98 h, of which the 4 h window is
    // excluded (with the outages inside it); down only the 420 s on Friday.
    assert_eq!(
        figures(new),
        (352_800.0, 14_400.0, 338_400.0, 337_980.0, 420.0)
    );
    assert_eq!(
        (
            new.budget_planned_seconds,
            new.budget_allowed_seconds,
            new.budget_remaining_seconds
        ),
        (338_400.0, 1_692.0, 1_272.0)
    );
    // Combined: the whole week.
    assert_eq!(
        figures(all),
        (604_800.0, 14_400.0, 590_400.0, 589_080.0, 1_320.0)
    );
    assert_eq!(all.budget_allowed_seconds, 2_952.0);
    // Every row reports the week itself.
    for r in &rows {
        assert_eq!(r.period, "2026-W47");
        assert_eq!(r.period_start, ts("2026-11-16T00:00:00+01:00"));
    }
}

#[test]
fn an_incident_across_the_cutover_is_listed_for_both_suppliers_with_its_true_times() {
    let (_dir, cfg, store) = scripted();
    let rows = week(&cfg, &store, "2026-W47");
    let listed = |r: &SlaRow| -> Vec<(Timestamp, Option<Timestamp>, f64)> {
        r.incidents
            .iter()
            .map(|i| (i.start, i.end, i.attributed_seconds))
            .collect()
    };
    let crossing_start = ts("2026-11-18T21:50:00+01:00");
    let crossing_end = Some(ts("2026-11-18T22:10:00+01:00"));
    assert_eq!(
        listed(&rows[0]),
        vec![
            (
                ts("2026-11-17T10:00:00+01:00"),
                Some(ts("2026-11-17T10:05:00+01:00")),
                300.0
            ),
            (crossing_start, crossing_end, 600.0),
        ]
    );
    assert_eq!(
        listed(&rows[1]),
        vec![
            (crossing_start, crossing_end, 600.0),
            (
                ts("2026-11-18T23:00:00+01:00"),
                Some(ts("2026-11-18T23:30:00+01:00")),
                1_800.0
            ),
            (
                ts("2026-11-20T14:00:00+01:00"),
                Some(ts("2026-11-20T14:07:00+01:00")),
                420.0
            ),
        ]
    );
    // Its whole length is on both rows; each counts only its part.
    for r in &rows[..2] {
        let crossing = r
            .incidents
            .iter()
            .find(|i| i.start == crossing_start)
            .unwrap();
        assert_eq!(crossing.duration_seconds, 1_200.0);
    }
    assert_eq!(rows[2].incident_count, 4);
}

#[test]
fn weeks_before_and_after_the_cutover_belong_to_one_supplier_each() {
    let (_dir, cfg, store) = scripted();
    let before = week(&cfg, &store, "2026-W46");
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].supplier, "in-house");
    let after = week(&cfg, &store, "2026-W48");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].supplier, "northhost");
}

#[test]
fn a_cutover_that_counts_is_down_time_of_the_new_supplier() {
    let (dir, _, store) = scripted();
    let path = dir.path().join("counts.yaml");
    std::fs::write(
        &path,
        CONFIG.replace("hypercare: 4w", "hypercare: 4w\n      cutover_counts: true"),
    )
    .unwrap();
    let cfg = Config::load(&path).unwrap();
    let rows = week(&cfg, &store, "2026-W47");
    // The 600 s after the start and the 1,800 s inside the window now
    // count against northhost; nothing is excluded.
    assert_eq!(
        figures(&rows[1]),
        (352_800.0, 0.0, 352_800.0, 349_980.0, 2_820.0)
    );
    assert_eq!(rows[0].down_seconds, 900.0);
}
