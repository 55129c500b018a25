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

/// `config` in a fresh directory and its store holding the history
/// `write` makes, imported at `at`.
fn imported(
    config: &str,
    write: fn(&Path),
    at: Timestamp,
) -> (tempfile::TempDir, Config, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("continuity.yaml");
    std::fs::write(&path, config).unwrap();
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let csv = dir.path().join("history.csv");
    write(&csv);
    let store = SqliteStore::open(&cfg.store.path).unwrap();
    let rows = import::csv::read(&cfg, &csv, at).unwrap();
    import::load(&store, rows, false, at).unwrap();
    (dir, cfg, store)
}

fn scripted() -> (tempfile::TempDir, Config, SqliteStore) {
    imported(CONFIG, write_history, now())
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

const COMPARED: &str = r#"
store:
  path: continuity.db
services:
  - id: citizen-portal
    supplier: in-house
    migration:
      from: in-house
      to: northhost
      cutover: { start: 2026-11-18T22:00:00+01:00, end: 2026-11-19T02:00:00+01:00, reference: CHG-1042 }
      baseline: 1w
      hypercare: 1w
    slas:
      - { name: round-the-clock, objective: 99.5, period: week }
    checks:
      - id: home
        interval: 60s
        timeout: 10s
        failure_threshold: 1
        http: { url: "https://portal.example/" }
"#;

/// One result a minute from Wednesday 11 November 21:00 to Thursday 26
/// November 02:00 (CET). The baseline week answers in 100 ms and has two
/// 10-minute outages; hypercare answers in 200 ms and has six.
fn write_compared_history(path: &Path) {
    let mut out = String::from("timestamp,service,check,success,duration_seconds,reason\n");
    compared_rows(&mut out, "home", 0.1, 0.2);
    std::fs::write(path, out).unwrap();
}

/// `check`'s rows of the compared history: one a minute, answering in
/// `before` seconds until the cutover's start and `after` from then on,
/// failing in the eight outages.
fn compared_rows(out: &mut String, check: &str, before: f64, after: f64) {
    let mut t = ts("2026-11-11T21:00:00+01:00");
    let outages = [
        "2026-11-13T10:00:00+01:00",
        "2026-11-16T15:00:00+01:00",
        "2026-11-20T09:00:00+01:00",
        "2026-11-21T09:00:00+01:00",
        "2026-11-22T09:00:00+01:00",
        "2026-11-23T09:00:00+01:00",
        "2026-11-24T09:00:00+01:00",
        "2026-11-25T09:00:00+01:00",
    ];
    while t < ts("2026-11-26T02:00:00+01:00") {
        let failing = outages
            .iter()
            .any(|o| ts(o) <= t && t < ts(o) + SignedDuration::from_mins(10));
        let latency = if t < ts("2026-11-18T22:00:00+01:00") {
            before
        } else {
            after
        };
        if failing {
            out.push_str(&format!("{t},citizen-portal,{check},false,10,timeout\n"));
        } else {
            out.push_str(&format!("{t},citizen-portal,{check},true,{latency},\n"));
        }
        t += SignedDuration::from_mins(1);
    }
}

/// The compared history in a fresh store, imported the day after
/// hypercare ended (so every result up to then is settled).
fn compared() -> (tempfile::TempDir, Config, SqliteStore) {
    imported(
        COMPARED,
        write_compared_history,
        ts("2026-11-27T00:00:00+01:00"),
    )
}

#[test]
fn before_and_after_are_judged_per_measure_with_the_test_that_decided() {
    use continuity::migration::Phase;
    use continuity::migration::compare::{Verdict, compare, verdicts};
    let (_dir, cfg, store) = compared();
    let now = ts("2026-11-26T02:00:00+01:00");

    let c = compare(&cfg, &store, "citizen-portal", now).unwrap();
    // Hypercare ended exactly now: no steady time yet.
    let phases: Vec<Phase> = c.windows.iter().map(|w| w.phase).collect();
    assert_eq!(phases, [Phase::Baseline, Phase::Hypercare]);
    let (before, after) = (&c.windows[0], &c.windows[1]);
    assert_eq!(
        (before.from, before.to),
        (
            ts("2026-11-11T22:00:00+01:00"),
            ts("2026-11-18T22:00:00+01:00")
        )
    );
    assert_eq!(
        (after.from, after.to),
        (
            ts("2026-11-19T02:00:00+01:00"),
            ts("2026-11-26T02:00:00+01:00")
        )
    );
    // A week each, all of it eligible: 1,200 s and 3,600 s down.
    assert_eq!(before.eligible_hours, 168.0);
    assert_eq!(before.availability, Some(603_600.0 / 604_800.0));
    assert_eq!(after.availability, Some(601_200.0 / 604_800.0));
    assert_eq!(before.downtime_minutes_per_week, Some(20.0));
    assert_eq!(after.downtime_minutes_per_week, Some(60.0));
    assert_eq!((before.incidents, after.incidents), (2, 6));
    assert_eq!(
        (before.mttr_seconds, after.mttr_seconds),
        (Some(600.0), Some(600.0))
    );
    assert_eq!(
        (before.latency_p50_ms, after.latency_p95_ms),
        (Some(100.0), Some(200.0))
    );
    // 10,080 minutes, minus the failing ones (20 and 60).
    assert_eq!(
        (before.latency_samples, after.latency_samples),
        (10_060, 10_020)
    );

    let judged = &c.comparisons[0];
    assert_eq!(judged.phase, Phase::Hypercare);
    let v = verdicts(judged);
    // 40 more minutes down a week, beyond the 5-minute margin.
    assert_eq!(v["availability"], Verdict::Worse);
    // 2 against 6 in a week each: p = 0.289 (binomtest(6, 8, 0.5)), not
    // significant at 98 %.
    assert_eq!(v["incidents_per_week"], Verdict::Same);
    // Two and six repairs: too few for a rank test.
    assert_eq!(v["mttr_seconds"], Verdict::InsufficientData);
    // Twice as slow, and significant.
    assert_eq!(v["latency"], Verdict::Worse);
    assert_eq!(judged.overall, Verdict::Worse);
    let latency = judged
        .measures
        .iter()
        .find(|m| m.measure == "latency")
        .unwrap();
    assert!(latency.test.contains("Mann-Whitney U"), "{}", latency.test);
    assert!(
        latency.test.contains("ratio of means 2.00"),
        "{}",
        latency.test
    );
    let availability = &judged.measures[0];
    assert!(
        availability.test.contains("±5 min/week"),
        "{}",
        availability.test
    );
    let incidents = judged
        .measures
        .iter()
        .find(|m| m.measure == "incidents_per_week")
        .unwrap();
    assert!(incidents.test.contains("p = 0.2891"), "{}", incidents.test);
}

/// The compared service with a second critical check, `search`, probed
/// as often and down at the same moments (so availability and incidents
/// are as before), answering in 1 s before the move and 500 ms after.
fn two_checks() -> (tempfile::TempDir, Config, SqliteStore) {
    let config = format!(
        "{COMPARED}      - id: search\n        interval: 60s\n        timeout: 10s\n        failure_threshold: 1\n        http: {{ url: \"https://portal.example/search\" }}\n"
    );
    imported(
        &config,
        |path| {
            let mut out = String::from("timestamp,service,check,success,duration_seconds,reason\n");
            compared_rows(&mut out, "home", 0.1, 0.2);
            compared_rows(&mut out, "search", 1.0, 0.5);
            std::fs::write(path, out).unwrap();
        },
        ts("2026-11-27T00:00:00+01:00"),
    )
}

/// A check's latency as judged: check, p50 and p95 before and after,
/// samples before and after, p-value, ratio of means, verdict.
type CheckFigures<'a> = (
    &'a str,
    (Option<f64>, Option<f64>),
    (Option<f64>, Option<f64>),
    (usize, usize),
    Option<f64>,
    Option<f64>,
    &'a str,
);

#[test]
fn latency_is_judged_per_check_and_the_worst_check_decides() {
    use continuity::migration::compare::{Verdict, compare, verdicts};
    let (_dir, cfg, store) = two_checks();
    let now = ts("2026-11-26T02:00:00+01:00");
    let c = compare(&cfg, &store, "citizen-portal", now).unwrap();
    let (before, after) = (&c.windows[0], &c.windows[1]);
    // The window's figures pool both checks: 2 × 10,060 and 2 × 10,020
    // samples; the nearest-rank p50 is the 10,060th (10,020th) value, the
    // last of home's; p95 the 19,114th (19,038th), one of search's.
    assert_eq!(
        (before.latency_samples, after.latency_samples),
        (20_120, 20_040)
    );
    assert_eq!(
        (before.latency_p50_ms, before.latency_p95_ms),
        (Some(100.0), Some(1_000.0))
    );
    assert_eq!(
        (after.latency_p50_ms, after.latency_p95_ms),
        (Some(200.0), Some(500.0))
    );

    let judged = &c.comparisons[0];
    let latency = judged
        .measures
        .iter()
        .find(|m| m.measure == "latency")
        .unwrap();
    let checks: Vec<CheckFigures> = latency
        .checks
        .as_ref()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x.check.as_str(),
                (x.before_p50_ms, x.before_p95_ms),
                (x.after_p50_ms, x.after_p95_ms),
                (x.before_samples, x.after_samples),
                x.p_value,
                x.ratio_of_means,
                x.verdict.as_str(),
            )
        })
        .collect();
    // Every sample of a side is the same value and the sides do not
    // overlap: U is 0 (or n1 × n2) and z = (n1 n2 / 2 - 0.5) / sigma with
    // the tie-corrected sigma is about 142, whose normal tail (e^-10,000)
    // is 0 in floating point. The ratios are 200/100 and 500/1,000.
    assert_eq!(
        checks,
        [
            (
                "home",
                (Some(100.0), Some(100.0)),
                (Some(200.0), Some(200.0)),
                (10_060, 10_020),
                Some(0.0),
                Some(2.0),
                "worse"
            ),
            (
                "search",
                (Some(1_000.0), Some(1_000.0)),
                (Some(500.0), Some(500.0)),
                (10_060, 10_020),
                Some(0.0),
                Some(0.5),
                "better"
            ),
        ]
    );
    // home twice as slow outweighs search twice as fast.
    assert_eq!(latency.verdict, Verdict::Worse);
    assert!(
        latency
            .test
            .contains("home worse (p = 0.0000, ratio of means 2.00); search better (p = 0.0000, ratio of means 0.50)"),
        "{}",
        latency.test
    );
    // The other measures are those of the one-check history.
    let v = verdicts(judged);
    assert_eq!(
        (v["availability"], v["incidents_per_week"]),
        (Verdict::Worse, Verdict::Same)
    );
    assert_eq!(judged.overall, Verdict::Worse);
}

#[test]
fn the_weekly_report_shows_a_line_per_check_when_a_service_has_several() {
    use continuity::report::locale::Lang;
    use continuity::report::weekly::{self, build::last_complete_week, time_zone};
    let (_dir, cfg, store) = two_checks();
    let now = ts("2026-11-26T02:00:00+01:00");
    let week = last_complete_week(ts("2026-11-30T12:00:00+01:00"), &time_zone(&cfg));
    let report = weekly::build(&cfg, &store, &week, Lang::Nl, now, None).unwrap();
    let latency = report.migrations[0].comparisons[0]
        .measures
        .iter()
        .find(|m| m.measure == "latency")
        .unwrap();
    let checks: Vec<(&str, &str)> = latency
        .checks
        .iter()
        .map(|x| (x.check.as_str(), x.verdict.as_str()))
        .collect();
    assert_eq!(checks, [("home", "worse"), ("search", "better")]);

    let md = weekly::markdown::render(&report);
    assert!(
        md.contains("| ↳ home | 100 ms | 200 ms | ✗ slechter | p95 100 ms → 200 ms · p = 0,0000 · verhouding van de gemiddelden 2,00 |"),
        "{md}"
    );
    assert!(
        md.contains("| ↳ search | 1.000 ms | 500 ms | ✓ beter | p95 1.000 ms → 500 ms · p = 0,0000 · verhouding van de gemiddelden 0,50 |"),
        "{md}"
    );
    let html = weekly::html::render(&report).unwrap();
    assert!(
        html.contains(r#"<th scope="row" class="check"><bdi>search</bdi></th><td class="num">1.000 ms</td><td class="num">500 ms</td><td>✓ beter</td>"#),
        "{html}"
    );
}

#[test]
fn a_day_of_hypercare_is_insufficient_data_not_a_guess() {
    use continuity::migration::compare::{Verdict, compare};
    let (_dir, cfg, store) = compared();
    let now = ts("2026-11-19T14:00:00+01:00");
    let c = compare(&cfg, &store, "citizen-portal", now).unwrap();
    // Twelve hours of hypercare: less than a day of eligible time.
    assert_eq!(
        c.comparisons[0].measures[0].verdict,
        Verdict::InsufficientData
    );
    assert_eq!(c.comparisons[0].overall, Verdict::InsufficientData);
}

#[test]
fn the_compare_command_prints_each_verdict_with_its_test() {
    let (dir, _, store) = compared();
    drop(store);
    let path = dir.path().join("continuity.yaml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_continuity"))
        .args([
            "migration",
            "compare",
            "--service",
            "citizen-portal",
            "--config",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Run now, weeks after: hypercare and steady are both judged.
    assert!(stdout.contains("baseline vs hypercare: worse"), "{stdout}");
    assert!(
        stdout.contains("baseline vs steady: insufficient data"),
        "{stdout}"
    );
    assert!(stdout.contains("Mann-Whitney U"), "{stdout}");
    // The per-check line under latency: 100 ms before, 200 ms after.
    assert!(
        stdout.contains("home              worse             p50 100.0ms → 200.0ms"),
        "{stdout}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_continuity"))
        .args([
            "migration",
            "compare",
            "--service",
            "citizen-portal",
            "--format",
            "json",
            "--config",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let latency = &json["comparisons"][0]["measures"][3];
    assert_eq!(latency["measure"], "latency");
    assert_eq!(
        (latency["before"].as_f64(), latency["after"].as_f64()),
        (Some(100.0), Some(200.0))
    );
    let home = &latency["checks"][0];
    assert_eq!(home["check"], "home");
    assert_eq!(
        (
            home["before_samples"].as_u64(),
            home["after_samples"].as_u64()
        ),
        (Some(10_060), Some(10_020))
    );
    assert_eq!(home["ratio_of_means"].as_f64(), Some(2.0));
    assert_eq!(home["verdict"], "worse");
    assert_eq!(latency["checks"].as_array().map(Vec::len), Some(1));
    // Measures other than latency have no checks.
    assert!(
        json["comparisons"][0]["measures"][0]
            .get("checks")
            .is_none()
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_continuity"))
        .args(["migration", "status", "--format", "json", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["migrations"][0]["phase"], "steady");
    assert_eq!(status["migrations"][0]["supplier"]["id"], "northhost");
}

/// A judged measure: name, before, after, verdict, test.
type Judged<'a> = (&'a str, Option<f64>, Option<f64>, &'a str, &'a str);

#[test]
fn the_weekly_report_shows_before_and_after_as_the_migration_judge_says() {
    use continuity::migration::compare::compare;
    use continuity::report::locale::Lang;
    use continuity::report::weekly::{self, build::last_complete_week, time_zone};
    let (_dir, cfg, store) = compared();
    let now = ts("2026-11-26T02:00:00+01:00");
    let judged = compare(&cfg, &store, "citizen-portal", now).unwrap();
    // The week of the end of hypercare, reported as of `now`.
    let week = last_complete_week(ts("2026-11-30T12:00:00+01:00"), &time_zone(&cfg));
    let report = weekly::build(&cfg, &store, &week, Lang::Nl, now, None).unwrap();

    assert_eq!(report.migrations.len(), 1);
    let m = &report.migrations[0];
    assert_eq!(
        (m.service.as_str(), m.from.as_str(), m.to.as_str()),
        ("citizen-portal", judged.from.as_str(), judged.to.as_str())
    );
    assert_eq!(m.reference, judged.reference);
    assert_eq!(m.comparisons.len(), judged.comparisons.len());
    for (line, p) in m.comparisons.iter().zip(&judged.comparisons) {
        assert_eq!(line.phase, p.phase.as_str());
        assert_eq!(line.overall, p.overall.as_str());
        let measures: Vec<Judged> = line
            .measures
            .iter()
            .map(|x| {
                (
                    x.measure.as_str(),
                    x.before,
                    x.after,
                    x.verdict.as_str(),
                    x.test.as_str(),
                )
            })
            .collect();
        let expected: Vec<Judged> = p
            .measures
            .iter()
            .map(|x| {
                (
                    x.measure,
                    x.before,
                    x.after,
                    x.verdict.as_str(),
                    x.test.as_str(),
                )
            })
            .collect();
        assert_eq!(measures, expected);
    }

    let html = weekly::html::render(&report).unwrap();
    assert!(html.contains("Voor en na de overstap"), "{html}");
    assert!(html.contains(&judged.reference));
    let overall = match judged.comparisons[0].overall.as_str() {
        "better" => "✓ beter",
        "same" => "= gelijk",
        "worse" => "✗ slechter",
        _ => "– te weinig gegevens",
    };
    assert!(html.contains(overall), "{overall} not in the report");
    let md = weekly::markdown::render(&report);
    assert!(md.contains("## Voor en na de overstap"), "{md}");
    // One check: its line would repeat the measure's.
    assert!(!md.contains("↳"), "{md}");
    assert!(!html.contains(r#"class="check""#));

    // A week that ended before the cutover has nothing to compare yet.
    let before = last_complete_week(ts("2026-11-16T12:00:00+01:00"), &time_zone(&cfg));
    let early = weekly::build(&cfg, &store, &before, Lang::Nl, now, None).unwrap();
    assert!(early.migrations.is_empty());
}

#[test]
fn a_week_that_spans_a_cutover_shows_the_service_on_every_day_not_only_the_cutover_day() {
    use continuity::report::locale::Lang;
    use continuity::report::weekly;
    let (_dir, cfg, store) = scripted();
    let week =
        continuity::sla::period::parse_period_label("2026-W47", &weekly::time_zone(&cfg)).unwrap();
    let report = weekly::build(&cfg, &store, &week, Lang::En, now(), None).unwrap();
    let line = &report.services[0];
    // The week's line combines both suppliers; each day is the service's
    // own figure: in-house's on Monday to Tuesday, the combined one on
    // Wednesday (the cutover's start at 22:00), northhost's after.
    assert_eq!(line.supplier, "*");
    let day = |label: &str| {
        let range = continuity::sla::TimeRange::new(
            ts(&format!("{label}T00:00:00+01:00")),
            ts(&format!("{label}T00:00:00+01:00")) + SignedDuration::from_hours(24),
        );
        let rows = sla_report(&cfg, &store, PeriodSelector::Range(range), None, now()).unwrap();
        rows.last().unwrap().availability
    };
    let expected: Vec<Option<f64>> = [
        "2026-11-16",
        "2026-11-17",
        "2026-11-18",
        "2026-11-19",
        "2026-11-20",
        "2026-11-21",
        "2026-11-22",
    ]
    .iter()
    .map(|d| day(d))
    .collect();
    assert!(expected.iter().all(Option::is_some), "{expected:?}");
    assert_eq!(line.daily, expected);
    // Tuesday: in-house down 300 s of the day's 86,400.
    assert_eq!(line.daily[1], Some(86_100.0 / 86_400.0));
}
