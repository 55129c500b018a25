//! Importing probe history: a month of CSV results across the autumn DST
//! change whose SLA figures match a hand computation to the second, bad
//! rows reported by line with nothing half-imported, JSON Lines, and a
//! real Prometheus server read over its HTTP API page by page.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::ports::on_a_free_port;

use continuity::config::Config;
use continuity::import::prometheus::PrometheusSource;
use continuity::import::{self, ImportError, Place};
use continuity::report::{PeriodSelector, SlaRow, sla_report};
use continuity::sla::TimeRange;
use continuity::store::{ResultRecord, ResultSource, ResultStore, SqliteStore};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

/// When the tests run, as far as the import is concerned.
fn november() -> Timestamp {
    ts("2026-11-15T12:00:00Z")
}

struct Setup {
    dir: tempfile::TempDir,
    config: Config,
    store: SqliteStore,
}

/// A configuration (with `store.path` in a fresh directory) and its store.
fn setup(yaml: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("continuity.yaml");
    std::fs::write(&path, format!("store:\n  path: continuity.db\n{yaml}")).unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{:?}", e.issues));
    let store = SqliteStore::open(&config.store.path).unwrap();
    Setup { dir, config, store }
}

/// The portal's stored results (one check or all) in `[from, to)`.
fn portal_results(
    s: &Setup,
    check: Option<&str>,
    from: Timestamp,
    to: Timestamp,
) -> Vec<ResultRecord> {
    let mut out = Vec::new();
    s.store
        .results("portal", check, from, to, &mut |r| out.push(r))
        .unwrap();
    out
}

const PORTAL: &str = r#"
calendars:
  office:
    timezone: Europe/Amsterdam
    hours: { mon-fri: "08:00-17:00" }
    holidays: nl
    closed: [2026-10-16]
maintenances:
  - reference: CHG-2026-0042
    description: database upgrade
    service: portal
    start: 2026-10-22T07:00:00+02:00
    end: 2026-10-22T09:00:00+02:00
services:
  - id: portal
    name: Citizen portal
    category: portal
    supplier: acme
    slas:
      - { name: round-the-clock, objective: 99.5, period: month }
      - { name: office-hours, objective: 99.7, period: month, calendar: office }
    checks:
      - id: home
        interval: 60s
        timeout: 10s
        latency_threshold: 500ms
        http: { url: "https://portal.example/" }
"#;

fn within(t: Timestamp, from: &str, to: &str) -> bool {
    ts(from) <= t && t < ts(to)
}

/// October 2026 in Europe/Amsterdam (1 October 00:00 CEST to 1 November
/// 00:00 CET: 745 h, the clocks go back on Sunday 25 October), one result
/// a minute, timestamps written with their local offset:
///
/// - Tue  6 Oct 12:00-12:30 CEST no results (the monitor was away)
/// - Mon 12 Oct 14:00, 14:01 failing: two failures confirm nothing
/// - Fri 16 Oct 10:00-11:00 CEST failing: a closed day of the office calendar
/// - Mon 19 Oct 10:00-10:10 CEST slow (0.9 s > 500 ms): degraded
/// - Thu 22 Oct 07:30-08:30 CEST failing, inside maintenance 07:00-09:00
/// - Sun 25 Oct 01:30 CEST - 02:30 CET failing: 2 h of elapsed time
///   across the change, though the clock moved only 1 h
/// - Wed 28 Oct 16:30-17:30 CET failing, straddling closing time
fn october_csv(path: &Path) -> usize {
    let tz = TimeZone::get("Europe/Amsterdam").unwrap();
    let mut out = String::from("timestamp,service,check,success,duration_seconds,reason\n");
    let mut t = ts("2026-10-01T00:00:00+02:00");
    let end = ts("2026-11-01T00:00:00+01:00");
    let mut n = 0;
    while t < end {
        let gap = within(t, "2026-10-06T12:00:00+02:00", "2026-10-06T12:30:00+02:00");
        let failing = within(t, "2026-10-12T14:00:00+02:00", "2026-10-12T14:02:00+02:00")
            || within(t, "2026-10-16T10:00:00+02:00", "2026-10-16T11:00:00+02:00")
            || within(t, "2026-10-22T07:30:00+02:00", "2026-10-22T08:30:00+02:00")
            || within(t, "2026-10-25T01:30:00+02:00", "2026-10-25T02:30:00+01:00")
            || within(t, "2026-10-28T16:30:00+01:00", "2026-10-28T17:30:00+01:00");
        let slow = within(t, "2026-10-19T10:00:00+02:00", "2026-10-19T10:10:00+02:00");
        if !gap {
            let local = t
                .to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z");
            if failing {
                out.push_str(&format!("{local},portal,home,false,10,timeout\n"));
            } else {
                let d = if slow { "0.9" } else { "0.12" };
                out.push_str(&format!("{local},portal,home,true,{d},\n"));
            }
            n += 1;
        }
        t += SignedDuration::from_mins(1);
    }
    std::fs::write(path, out).unwrap();
    n
}

fn row<'a>(rows: &'a [SlaRow], sla: &str) -> &'a SlaRow {
    rows.iter().find(|r| r.sla == sla).expect("row of the SLA")
}

#[test]
fn a_month_imported_from_csv_gives_the_hand_computed_figures_to_the_second() {
    let s = setup(PORTAL);
    let csv = s.dir.path().join("october.csv");
    let written = october_csv(&csv);
    assert_eq!(written, 745 * 60 - 30);

    let rows = import::csv::read(&s.config, &csv, november()).unwrap();
    let summary = import::load(&s.store, rows, false, november()).unwrap();
    assert_eq!(summary.rows_read, written);
    assert_eq!(summary.imported, written as u64);
    assert!(summary.skipped.is_empty());
    assert_eq!(summary.first, Some(ts("2026-10-01T00:00:00+02:00")));
    assert_eq!(summary.services.len(), 1);
    assert_eq!(summary.services[0].incidents_written, 4);

    let rows = sla_report(
        &s.config,
        &s.store,
        PeriodSelector::Label("2026-10".into()),
        None,
        november(),
    )
    .unwrap();
    assert_eq!(rows.len(), 2);

    // Round the clock, 99.5 %, October in Amsterdam:
    //   total     = 31 × 24 h + 1 h (the extra hour of 25 Oct) = 745 h = 2 682 000 s
    //   excluded  = maintenance Thu 22 Oct 07:00-09:00           =     7 200 s
    //               (the 07:30-08:30 outage inside it counts as nothing else)
    //   unknown   = Tue 6 Oct 12:00:10-12:30:00 (last result 11:59 + 70 s)
    //                                                            =     1 790 s
    //   down      = Fri 16 Oct 10:00-11:00        3 600
    //             + Sun 25 Oct 01:30 CEST-02:30 CET  7 200 (elapsed, not 3 600)
    //             + Wed 28 Oct 16:30-17:30        3 600          =    14 400 s
    //   eligible  = 2 682 000 - 7 200 - 1 790                   = 2 673 010 s
    //   good      = 2 673 010 - 14 400                          = 2 658 610 s
    //   degraded  = Mon 19 Oct 10:00-10:10                      =       600 s
    //   planned   = 2 682 000 - 7 200 = 2 674 800 s; allowed = 0.5 % = 13 374 s
    //   remaining = 13 374 - 14 400                             =    -1 026 s
    let r = row(&rows, "round-the-clock");
    assert_eq!(r.period, "2026-10");
    assert_eq!(r.period_start, ts("2026-10-01T00:00:00+02:00"));
    assert_eq!(r.period_end, ts("2026-11-01T00:00:00+01:00"));
    assert_eq!(
        (
            r.total_seconds,
            r.outside_hours_seconds,
            r.excluded_maintenance_seconds,
            r.unknown_seconds,
            r.eligible_seconds,
            r.good_seconds,
            r.degraded_seconds,
            r.down_seconds
        ),
        (
            2_682_000.0,
            0.0,
            7_200.0,
            1_790.0,
            2_673_010.0,
            2_658_610.0,
            600.0,
            14_400.0
        )
    );
    assert_eq!(r.availability, Some(2_658_610.0 / 2_673_010.0));
    assert_eq!(
        (
            r.budget_planned_seconds,
            r.budget_allowed_seconds,
            r.budget_used_seconds,
            r.budget_remaining_seconds
        ),
        (2_674_800.0, 13_374.0, 14_400.0, -1_026.0)
    );
    assert_eq!(r.budget_remaining_ratio, Some(-1_026.0 / 13_374.0));
    assert_eq!(r.met, Some(false));
    assert_eq!(
        (r.service.as_str(), r.supplier.as_str()),
        ("portal", "acme")
    );

    // Office hours, 99.7 %: Mon-Fri 08:00-17:00, Dutch holidays (none in
    // October), closed Fri 16 Oct.
    //   open      = 22 weekdays - 1 closed = 21 × 9 h = 189 h   =   680 400 s
    //   outside   = 2 682 000 - 680 400                         = 2 001 600 s
    //               (the Sunday night outage and the closed-day outage fall here)
    //   excluded  = Thu 22 Oct 08:00-09:00 (07:00-08:00 is before opening)
    //                                                            =     3 600 s
    //   unknown   = Tue 6 Oct 12:00:10-12:30:00                 =     1 790 s
    //   down      = Wed 28 Oct 16:30-17:00 (17:00-17:30 is after closing)
    //                                                            =     1 800 s
    //   eligible  = 680 400 - 3 600 - 1 790                     =   675 010 s
    //   good      = 675 010 - 1 800                             =   673 210 s
    //   planned   = 680 400 - 3 600 = 676 800 s; allowed = 0.3 % = 2 030.4 s
    //   remaining = 2 030.4 - 1 800                             =     230.4 s
    let o = row(&rows, "office-hours");
    assert_eq!(
        (
            o.total_seconds,
            o.outside_hours_seconds,
            o.excluded_maintenance_seconds,
            o.unknown_seconds,
            o.eligible_seconds,
            o.good_seconds,
            o.degraded_seconds,
            o.down_seconds
        ),
        (
            2_682_000.0,
            2_001_600.0,
            3_600.0,
            1_790.0,
            675_010.0,
            673_210.0,
            600.0,
            1_800.0
        )
    );
    assert_eq!(o.availability, Some(673_210.0 / 675_010.0));
    assert_eq!(
        (
            o.budget_planned_seconds,
            o.budget_allowed_seconds,
            o.budget_used_seconds,
            o.budget_remaining_seconds
        ),
        (676_800.0, 2_030.4, 1_800.0, 230.4)
    );
    assert_eq!(o.met, Some(true));

    // The four outages are the incidents, with their true times: the
    // maintenance window and the calendar do not make an outage vanish.
    let spells: Vec<(Timestamp, Option<Timestamp>)> =
        o.incidents.iter().map(|i| (i.start, i.end)).collect();
    assert_eq!(
        spells,
        vec![
            (
                ts("2026-10-16T10:00:00+02:00"),
                Some(ts("2026-10-16T11:00:00+02:00"))
            ),
            (
                ts("2026-10-22T07:30:00+02:00"),
                Some(ts("2026-10-22T08:30:00+02:00"))
            ),
            (
                ts("2026-10-25T01:30:00+02:00"),
                Some(ts("2026-10-25T02:30:00+01:00"))
            ),
            (
                ts("2026-10-28T16:30:00+01:00"),
                Some(ts("2026-10-28T17:30:00+01:00"))
            ),
        ]
    );
    assert_eq!(o.incidents[2].duration_seconds, 7_200.0);
    assert!(
        o.incidents[2].cause.starts_with("home: timeout"),
        "{}",
        o.incidents[2].cause
    );
    assert_eq!(r.incident_count, 4);
    assert!(r.recomputed.is_none());
}

#[test]
fn bad_rows_are_listed_by_line_and_nothing_is_imported() {
    let s = setup(PORTAL);
    // One result is stored already: line 8 repeats it.
    let earlier = s.dir.path().join("earlier.csv");
    std::fs::write(
        &earlier,
        "timestamp,service,check,success\n2026-10-01T05:59:00Z,portal,home,true\n",
    )
    .unwrap();
    let rows = import::csv::read(&s.config, &earlier, november()).unwrap();
    assert_eq!(
        import::load(&s.store, rows, false, november())
            .unwrap()
            .imported,
        1
    );

    let rows = import::csv::read(&s.config, &fixture("bad.csv"), november()).unwrap();
    let err = import::load(&s.store, rows, false, november()).unwrap_err();
    let ImportError::BadRows { origin, problems } = err else {
        panic!("expected bad rows, got {err}");
    };
    assert!(origin.ends_with("bad.csv"), "{origin}");
    let lines: Vec<Place> = problems.iter().map(|p| p.place).collect();
    assert_eq!(
        lines,
        [3, 4, 6, 7, 8, 9].map(Place::Line).to_vec(),
        "{problems:#?}"
    );
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(
        text[0].contains("unknown service 'portl' (did you mean 'portal'?)"),
        "{}",
        text[0]
    );
    assert!(
        text[1].contains("timestamp '2026-10-01 08:02'"),
        "{}",
        text[1]
    );
    assert!(text[2].contains("duplicate of line 2"), "{}", text[2]);
    assert!(text[3].contains("success 'maybe'"), "{}", text[3]);
    assert!(
        text[4].contains("duplicate of a stored result"),
        "{}",
        text[4]
    );
    assert!(
        text[5].contains("unknown reason 'certificate'"),
        "{}",
        text[5]
    );
    let stored = portal_results(
        &s,
        None,
        ts("2026-10-01T00:00:00Z"),
        ts("2026-10-02T00:00:00Z"),
    );
    assert_eq!(stored.len(), 1, "nothing of the bad file may be stored");

    let rows = import::csv::read(&s.config, &fixture("bad.csv"), november()).unwrap();
    let summary = import::load(&s.store, rows, true, november()).unwrap();
    assert_eq!(summary.rows_read, 8);
    assert_eq!(summary.imported, 2);
    let skipped: Vec<Place> = summary.skipped.iter().map(|p| p.place).collect();
    assert_eq!(skipped, [3, 4, 6, 7, 8, 9].map(Place::Line).to_vec());
    let stored = portal_results(
        &s,
        None,
        ts("2026-10-01T00:00:00Z"),
        ts("2026-10-02T00:00:00Z"),
    );
    let at: Vec<Timestamp> = stored.iter().map(|r| r.at).collect();
    assert_eq!(
        at,
        vec![
            ts("2026-10-01T07:59:00+02:00"),
            ts("2026-10-01T08:00:00+02:00"),
            ts("2026-10-01T08:03:00+02:00"),
        ]
    );
    assert_eq!(stored[2].reason.as_deref(), Some("timeout"));
}

#[test]
fn a_csv_without_the_required_header_is_refused_whole() {
    let s = setup(PORTAL);
    let path = s.dir.path().join("no-header.csv");
    std::fs::write(&path, "2026-10-01T08:00:00+02:00,portal,home,true,0.1,\n").unwrap();
    let err = import::csv::read(&s.config, &path, november())
        .err()
        .expect("refused");
    assert!(
        err.to_string()
            .contains("unknown column '2026-10-01t08:00:00+02:00'"),
        "{err}"
    );
    std::fs::write(&path, "timestamp,service,check,duration_seconds\n").unwrap();
    let err = import::csv::read(&s.config, &path, november())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("lacks column(s) success"), "{err}");
}

#[test]
fn json_lines_import_with_blank_lines_counted_in_line_numbers() {
    let s = setup(PORTAL);
    let rows = import::jsonl::read(&s.config, &fixture("history.jsonl"), november()).unwrap();
    let err = import::load(&s.store, rows, false, november()).unwrap_err();
    let ImportError::BadRows { problems, .. } = err else {
        panic!("expected bad rows, got {err}");
    };
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].place, Place::Line(6));
    assert!(
        problems[0]
            .problem
            .contains("unknown field 'succes' (did you mean 'success'?")
    );

    let rows = import::jsonl::read(&s.config, &fixture("history.jsonl"), november()).unwrap();
    let summary = import::load(&s.store, rows, true, november()).unwrap();
    assert_eq!((summary.rows_read, summary.imported), (6, 5));
    let stored = portal_results(
        &s,
        Some("home"),
        ts("2026-10-01T00:00:00Z"),
        ts("2026-10-02T00:00:00Z"),
    );
    assert_eq!(stored.len(), 5);
    assert_eq!(stored[1].detail.as_deref(), Some("no answer within 10s"));
    assert_eq!(stored[2].reason.as_deref(), Some("status"));
    assert!(!stored[2].success);
    assert_eq!(stored[0].duration, Duration::from_millis(120));
    let ResultSource::Imported { origin } = &stored[0].source else {
        panic!("imported results say where they came from");
    };
    assert!(
        origin.starts_with("jsonl ") && origin.ends_with("history.jsonl"),
        "{origin}"
    );
}

// ------------------------------------------------------------ Prometheus

/// A binary of Debian's `prometheus` package; the test fails without it.
fn binary(name: &str) -> PathBuf {
    let candidates = [PathBuf::from("/usr/bin").join(name)];
    candidates
        .into_iter()
        .chain(
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(name))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        )
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: run `apt-get install --no-install-recommends prometheus` \
                 (scripts/test installs it)"
            )
        })
}

struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prometheus serving the TSDB blocks in `data` on loopback, ready.
async fn start_prometheus(dir: &Path, data: &Path) -> Prometheus {
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "scrape_configs: []\n").unwrap();
    let log_path = dir.join("prometheus.log");
    on_a_free_port("prometheus", |port| {
        let (config, log_path) = (&config, &log_path);
        async move {
            let log = std::fs::File::create(log_path).unwrap();
            let child = Command::new(binary("prometheus"))
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg("--storage.tsdb.retention.time=100y")
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start prometheus");
            let mut p = Prometheus {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
            let client = reqwest::Client::new();
            // Ours, not another server on the port: it names our data.
            let flags = format!("{}/api/v1/status/flags", p.url);
            let ours = data.display().to_string();
            let began = Instant::now();
            loop {
                if p.child.try_wait().unwrap().is_some() {
                    let log = std::fs::read_to_string(log_path).unwrap_or_default();
                    eprintln!("prometheus exited:\n{log}");
                    return None;
                }
                if let Ok(r) = client.get(format!("{}/-/ready", p.url)).send().await
                    && r.status().is_success()
                    && let Ok(r) = client.get(&flags).send().await
                    && r.text().await.is_ok_and(|text| text.contains(&ours))
                {
                    return Some(p);
                }
                if began.elapsed() > Duration::from_secs(60) {
                    let log = std::fs::read_to_string(log_path).unwrap_or_default();
                    panic!("prometheus did not become ready within 60 s:\n{log}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    })
    .await
}

const PROBED: &str = r#"
services:
  - id: portal
    slas:
      - { name: round-the-clock, objective: 99.5, period: week }
    checks:
      - id: home
        interval: 30s
        timeout: 10s
        http: { url: "https://portal.example/" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_history_is_read_over_http_page_by_page() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = setup(PROBED);
    // Six hours from 08:00 local two days ago: recent enough for any
    // retention, and within one local day (so within one ISO week).
    let tz = TimeZone::get("Europe/Amsterdam").unwrap();
    let day = Timestamp::now().to_zoned_datetime(tz.clone()).date() - 2.days();
    let base = day
        .at(8, 0, 0, 0)
        .to_zoned_datetime(tz)
        .unwrap()
        .timestamp();
    let secs = |t: Timestamp| t.as_second();

    // A sample every 15 s; the portal fails from +2h to +2h30m. A second
    // instance makes a query without matchers ambiguous.
    let mut om = String::from("# TYPE probe_success gauge\n");
    for k in 0..(6 * 240) {
        let t = base + SignedDuration::from_secs(15 * k);
        let up = !within(
            t,
            &(base + SignedDuration::from_mins(120)).to_string(),
            &(base + SignedDuration::from_mins(150)).to_string(),
        );
        om.push_str(&format!(
            "probe_success{{instance=\"https://portal.example/\"}} {} {}\n",
            u8::from(up),
            secs(t)
        ));
        om.push_str(&format!(
            "probe_success{{instance=\"https://other.example/\"}} 1 {}\n",
            secs(t)
        ));
    }
    om.push_str("# EOF\n");
    let om_path = s.dir.path().join("history.om");
    std::fs::write(&om_path, om).unwrap();
    let data = s.dir.path().join("tsdb");
    let out = Command::new(binary("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om_path)
        .arg(&data)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let prom = start_prometheus(s.dir.path(), &data).await;

    let now = Timestamp::now();
    let source = |query: &str| PrometheusSource {
        url: prom.url.clone(),
        query: query.to_string(),
        service: "portal".into(),
        check: "home".into(),
        from: base,
        to: base + SignedDuration::from_hours(6) - SignedDuration::from_secs(30),
        step: Duration::from_secs(30),
        // 720 points in pages of 100: the paging is exercised.
        points_per_page: 100,
    };

    let err = import::prometheus::read(&s.config, &source("probe_success"), now)
        .await
        .err()
        .expect("two series are refused");
    let msg = err.to_string();
    assert!(
        msg.contains("exactly one series")
            && msg.contains(r#"instance="https://portal.example/""#)
            && msg.contains(r#"instance="https://other.example/""#),
        "{msg}"
    );

    let rows = import::prometheus::read(
        &s.config,
        &source(r#"probe_success{instance="https://portal.example/"} * 2"#),
        now,
    )
    .await
    .unwrap();
    let ImportError::BadRows { problems, .. } =
        import::load(&s.store, rows, false, now).unwrap_err()
    else {
        panic!("values other than 0 and 1 are bad rows");
    };
    assert_eq!(problems.len(), 720 - 60);
    assert_eq!(problems[0].place, Place::Sample(base));
    assert!(
        problems[0].problem.contains("value '2'"),
        "{}",
        problems[0].problem
    );

    let query = r#"probe_success{instance="https://portal.example/"}"#;
    let rows = import::prometheus::read(&s.config, &source(query), now)
        .await
        .unwrap();
    let summary = import::load(&s.store, rows, false, now).unwrap();
    assert_eq!((summary.rows_read, summary.imported), (720, 720));

    let stored = portal_results(&s, Some("home"), base, base + SignedDuration::from_hours(6));
    assert_eq!(stored.len(), 720);
    let failures: Vec<_> = stored.iter().filter(|r| !r.success).collect();
    assert_eq!(failures.len(), 60);
    assert_eq!(failures[0].at, base + SignedDuration::from_mins(120));
    assert_eq!(
        failures[0].detail.as_deref(),
        Some("imported from prometheus")
    );
    assert_eq!(
        stored[0].source,
        ResultSource::Imported {
            origin: format!("prometheus {} {query}", prom.url)
        }
    );

    // Up from the first result (base), down 2h00m-2h30m, up again until
    // the last result (base + 5h59m30s) stops standing 40 s later:
    //   known     = 6 h - 30 s + 40 s = 21 610 s
    //   down      = 30 min            =  1 800 s
    //   good      = 21 610 - 1 800    = 19 810 s
    // Everything else of the week up to the report's "now" is unknown.
    let report_now = base + SignedDuration::from_hours(24);
    let rows = sla_report(
        &s.config,
        &s.store,
        PeriodSelector::Overlapping(TimeRange::new(base, base + SignedDuration::from_hours(6))),
        None,
        report_now,
    )
    .unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        (r.eligible_seconds, r.down_seconds, r.good_seconds),
        (21_610.0, 1_800.0, 19_810.0)
    );
    assert_eq!(r.unknown_seconds, r.total_seconds - 21_610.0);
    assert_eq!(r.availability, Some(19_810.0 / 21_610.0));
    assert_eq!(r.incident_count, 1);
    assert_eq!(r.incidents[0].start, base + SignedDuration::from_mins(120));
    assert_eq!(r.incidents[0].duration_seconds, 1_800.0);
}
