//! The management report against a seeded week whose figures are worked
//! out by hand below: ISO week 2024-W13 (Monday 25 to Sunday 31 March
//! 2024, Amsterdam), which holds Good Friday (a holiday in the office-hours
//! calendar) and the change to summer time (Sunday 31 March, 167 hours).
//! The CSV and JSON are checked exactly, every figure is checked against
//! `continuity sla --format json` for the same week, and hostile names
//! render as text.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, RwLock};

use continuity::config::Config;
use continuity::import;
use continuity::report::locale::Lang;
use continuity::report::weekly::{self, ReportFormat, build, render};
use continuity::sla;
use continuity::store::SqliteStore;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

/// Long after the week, like `continuity sla` run today.
fn now() -> Timestamp {
    ts("2024-06-01T00:00:00Z")
}

const CONFIG: &str = r#"
store:
  path: continuity.db
calendars:
  office-hours:
    timezone: Europe/Amsterdam
    hours: { mon-fri: "08:00-17:00" }
    holidays: nl
    good_friday: true
maintenances:
  - reference: CHG-2024-0042
    description: Database upgrade
    service: portal
    start: 2024-03-27T12:00:00+01:00
    end: 2024-03-27T13:00:00+01:00
services:
  - id: portal
    name: PORTAL_NAME
    category: portal
    supplier: SUPPLIER
    failure_threshold: 1
    success_threshold: 1
    slas:
      - { name: office-hours, objective: 99.5, calendar: office-hours }
      - { name: round-the-clock, objective: 98.0 }
    checks:
      - id: home
        interval: 60s
        timeout: 10s
        http: { url: "https://portal.example/" }
  - id: phone
    name: Telefonie KCC
    category: telephony
    supplier: telco
    failure_threshold: 1
    success_threshold: 1
    slas:
      - { name: office-hours, objective: 99.8, calendar: office-hours }
    checks:
      - id: sip
        interval: 60s
        timeout: 10s
        latency_threshold: 2s
        http: { url: "https://phone.example/" }
"#;

fn within(t: Timestamp, from: &str, to: &str) -> bool {
    ts(from) <= t && t < ts(to)
}

/// One result a minute per check from Sunday 17 March 22:00 to Monday
/// 1 April 02:00 (local), so both W12 and W13 are fully covered:
///
/// - portal Tue 26 Mar 10:00-10:30 down: inside office hours (1800 s)
/// - portal Wed 27 Mar 12:00-13:00: maintenance CHG-2024-0042 (up)
/// - portal Wed 27 Mar 20:00-21:00 down: outside office hours
/// - portal Fri 29 Mar 10:00-11:00 down: Good Friday, a holiday
/// - phone Thu 28 Mar 09:00-09:02 down: inside office hours (120 s)
/// - phone Sat 30 Mar 00:00-12:00 slow (2.5 s, over its 2 s threshold)
/// - every check: no results Sun 31 Mar 00:00-02:00 UTC, across the DST
///   change (monitor gap)
/// - W12: phone Wed 20 Mar 11:00-11:05 down (300 s)
fn write_history(path: &Path) {
    let mut out = String::from("timestamp,service,check,success,duration_seconds,reason\n");
    let mut t = ts("2024-03-17T22:00:00+01:00");
    while t < ts("2024-04-01T02:00:00+02:00") {
        if !within(t, "2024-03-31T00:00:00Z", "2024-03-31T02:00:00Z") {
            let portal_down = within(t, "2024-03-26T10:00:00+01:00", "2024-03-26T10:30:00+01:00")
                || within(t, "2024-03-27T20:00:00+01:00", "2024-03-27T21:00:00+01:00")
                || within(t, "2024-03-29T10:00:00+01:00", "2024-03-29T11:00:00+01:00");
            let phone_down = within(t, "2024-03-28T09:00:00+01:00", "2024-03-28T09:02:00+01:00")
                || within(t, "2024-03-20T11:00:00+01:00", "2024-03-20T11:05:00+01:00");
            let phone_slow = within(t, "2024-03-30T00:00:00+01:00", "2024-03-30T12:00:00+01:00");
            for (service, check, down, secs) in [
                ("portal", "home", portal_down, "0.1"),
                (
                    "phone",
                    "sip",
                    phone_down,
                    if phone_slow { "2.5" } else { "0.1" },
                ),
            ] {
                if down {
                    out.push_str(&format!("{t},{service},{check},false,10,timeout\n"));
                } else {
                    out.push_str(&format!("{t},{service},{check},true,{secs},\n"));
                }
            }
        }
        t += SignedDuration::from_mins(1);
    }
    std::fs::write(path, out).unwrap();
}

struct Seeded {
    _dir: tempfile::TempDir,
    config_path: std::path::PathBuf,
    cfg: Config,
    store: SqliteStore,
}

fn seeded(portal_name: &str, supplier: &str) -> Seeded {
    seeded_from(
        CONFIG
            .replace("PORTAL_NAME", &serde_json::to_string(portal_name).unwrap())
            .replace("SUPPLIER", &serde_json::to_string(supplier).unwrap()),
    )
}

fn seeded_from(yaml: String) -> Seeded {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("continuity.yaml");
    std::fs::write(&config_path, yaml).unwrap();
    let cfg = Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    let csv = dir.path().join("history.csv");
    write_history(&csv);
    let store = SqliteStore::open(&cfg.store.path).unwrap();
    let rows = import::csv::read(&cfg, &csv, now()).unwrap();
    import::load(&store, rows, false, now()).unwrap();
    Seeded {
        _dir: dir,
        config_path,
        cfg,
        store,
    }
}

fn week(s: &Seeded, lang: Lang) -> weekly::Report {
    let tz = TimeZone::get("Europe/Amsterdam").unwrap();
    let period = sla::parse_period_label("2024-W13", &tz).unwrap();
    build(&s.cfg, &s.store, &period, lang, now(), None).unwrap()
}

// The week by hand. 167 hours (summer time starts on Sunday) = 601,200 s.
// Office hours: Mon-Thu 9 h each (Good Friday closed) = 129,600 s.
const WEEK: f64 = 601_200.0;
const OFFICE: f64 = 129_600.0;
// The gap: last result 23:59:00Z + interval 60 s + timeout 10 s, until
// the first result at 02:00:00Z.
const GAP: f64 = 7_190.0;

// portal / office-hours: the maintenance hour is excluded, Tuesday's half
// hour is down; Wednesday evening and Good Friday are outside its hours.
const P_OFFICE_ELIGIBLE: f64 = OFFICE - 3_600.0;
const P_OFFICE_DOWN: f64 = 1_800.0;
// portal / round-the-clock: every outage counts, the gap is unknown.
const P_24_ELIGIBLE: f64 = WEEK - 3_600.0 - GAP;
const P_24_DOWN: f64 = 1_800.0 + 3_600.0 + 3_600.0;
// phone / office-hours: two minutes on Thursday.
const PHONE_DOWN: f64 = 120.0;

fn ratio(good: f64, eligible: f64) -> f64 {
    good / eligible
}

#[test]
fn seeded_week_figures_match_the_hand_count() {
    let s = seeded("Mijn Gemeente", "acme");
    let r = week(&s, Lang::Nl);

    let p_office = ratio(P_OFFICE_ELIGIBLE - P_OFFICE_DOWN, P_OFFICE_ELIGIBLE);
    let p_24 = ratio(P_24_ELIGIBLE - P_24_DOWN, P_24_ELIGIBLE);
    let phone = ratio(OFFICE - PHONE_DOWN, OFFICE);
    // W12: 168 h, office hours Mon-Fri 45 h; phone down 300 s.
    let prev = |office: f64, week: f64| (office, week);
    let (w12_office, w12_week) = prev(5.0 * 9.0 * 3600.0, 168.0 * 3600.0);
    let w12_p_office = Some(1.0);
    let w12_phone = ratio(w12_office - 300.0, w12_office);

    let services = serde_json::to_value(&r.services).unwrap();
    let expected = json!([
        {
            "service": "portal", "name": "Mijn Gemeente", "category": "portal", "supplier": "acme",
            "sla": "office-hours", "objective": 99.5, "calendar": "office-hours",
            "availability": p_office, "met": false,
            "eligible_seconds": P_OFFICE_ELIGIBLE, "down_seconds": P_OFFICE_DOWN,
            "excluded_maintenance_seconds": 3600.0, "maintenance_references": ["CHG-2024-0042"],
            "unknown_seconds": 0.0,
            // Allowed: 0.5 % of 126,000 s = 630 s; 1,800 s used.
            "budget_remaining_ratio": (630_000.0 - 1_800_000.0) / 630_000.0,
            "incidents": 3, "longest_incident_seconds": 3600.0, "mttr_seconds": 3000.0,
            "latency_p95_ms": 100.0,
            "previous_availability": w12_p_office, "change_vs_previous": p_office - 1.0,
            "daily": [1.0, ratio(32_400.0 - 1_800.0, 32_400.0), 1.0, 1.0, null, null, null],
            "recomputed": false
        },
        {
            "service": "portal", "name": "Mijn Gemeente", "category": "portal", "supplier": "acme",
            "sla": "round-the-clock", "objective": 98.0, "calendar": "24x7",
            "availability": p_24, "met": true,
            "eligible_seconds": P_24_ELIGIBLE, "down_seconds": P_24_DOWN,
            "excluded_maintenance_seconds": 3600.0, "maintenance_references": ["CHG-2024-0042"],
            "unknown_seconds": GAP,
            "budget_remaining_ratio": r.services[1].budget_remaining_ratio,
            "incidents": 3, "longest_incident_seconds": 3600.0, "mttr_seconds": 3000.0,
            "latency_p95_ms": 100.0,
            "previous_availability": 1.0, "change_vs_previous": p_24 - 1.0,
            "daily": [
                1.0,
                ratio(86_400.0 - 1_800.0, 86_400.0),
                ratio(82_800.0 - 3_600.0, 82_800.0),
                1.0,
                ratio(86_400.0 - 3_600.0, 86_400.0),
                1.0,
                1.0
            ],
            "recomputed": false
        },
        {
            "service": "phone", "name": "Telefonie KCC", "category": "telephony", "supplier": "telco",
            "sla": "office-hours", "objective": 99.8, "calendar": "office-hours",
            "availability": phone, "met": true,
            "eligible_seconds": OFFICE, "down_seconds": PHONE_DOWN,
            "excluded_maintenance_seconds": 0.0, "maintenance_references": [],
            "unknown_seconds": 0.0,
            "budget_remaining_ratio": r.services[2].budget_remaining_ratio,
            "incidents": 1, "longest_incident_seconds": 120.0, "mttr_seconds": 120.0,
            // 720 of the week's 9,898 successes took 2.5 s: more than 5 %.
            "latency_p95_ms": 2500.0,
            "previous_availability": w12_phone, "change_vs_previous": phone - w12_phone,
            "daily": [1.0, 1.0, 1.0, ratio(32_400.0 - 120.0, 32_400.0), null, null, null],
            "recomputed": false
        }
    ]);
    assert_eq!(services, expected, "{services:#}");

    // Summary: good over eligible time over the three lines.
    let eligible = P_OFFICE_ELIGIBLE + P_24_ELIGIBLE + OFFICE;
    let good = eligible - P_OFFICE_DOWN - P_24_DOWN - PHONE_DOWN;
    let w12_eligible = w12_office + w12_week + w12_office;
    let w12 = (w12_eligible - 300.0) / w12_eligible;
    let summary = serde_json::to_value(&r.summary).unwrap();
    assert_eq!(
        summary,
        json!({
            "services": 2, "services_met": 1, "services_missed": 1, "services_without_data": 0,
            "missed": ["portal"],
            "availability": good / eligible,
            "eligible_seconds": eligible, "good_seconds": good,
            "down_seconds": P_OFFICE_DOWN + P_24_DOWN + PHONE_DOWN,
            "unknown_seconds": GAP, "excluded_maintenance_seconds": 7200.0,
            "incidents": 4,
            "previous_availability": w12,
            // W11 holds its last two hours (all up), W9 and W10 nothing.
            "four_period_average": (w12 + 1.0) / 2.0,
            "change_vs_previous": good / eligible - w12,
            "change_vs_average": good / eligible - (w12 + 1.0) / 2.0
        }),
        "{summary:#}"
    );

    let incidents: Vec<(String, Timestamp, Option<Timestamp>, f64, bool)> = r
        .incidents
        .iter()
        .map(|i| {
            (
                i.service.clone(),
                i.start,
                i.end,
                i.duration_seconds,
                i.inside_service_hours,
            )
        })
        .collect();
    assert_eq!(
        incidents,
        vec![
            (
                "portal".into(),
                ts("2024-03-26T09:00:00Z"),
                Some(ts("2024-03-26T09:30:00Z")),
                1800.0,
                true
            ),
            (
                "portal".into(),
                ts("2024-03-27T19:00:00Z"),
                Some(ts("2024-03-27T20:00:00Z")),
                3600.0,
                false
            ),
            (
                "phone".into(),
                ts("2024-03-28T08:00:00Z"),
                Some(ts("2024-03-28T08:02:00Z")),
                120.0,
                true
            ),
            // Good Friday: the office-hours calendar is closed.
            (
                "portal".into(),
                ts("2024-03-29T09:00:00Z"),
                Some(ts("2024-03-29T10:00:00Z")),
                3600.0,
                false
            ),
        ]
    );
    assert!(
        r.incidents.iter().all(|i| i.cause.contains("timeout")),
        "{:?}",
        r.incidents
    );

    let suppliers: Vec<(String, usize, usize, Option<f64>, usize)> = r
        .suppliers
        .iter()
        .map(|s| {
            (
                s.supplier.clone(),
                s.services,
                s.services_missed,
                s.availability,
                s.incidents,
            )
        })
        .collect();
    assert_eq!(
        suppliers,
        vec![
            (
                "acme".into(),
                1,
                1,
                Some(
                    (P_OFFICE_ELIGIBLE - P_OFFICE_DOWN + P_24_ELIGIBLE - P_24_DOWN)
                        / (P_OFFICE_ELIGIBLE + P_24_ELIGIBLE)
                ),
                3
            ),
            ("telco".into(), 1, 0, Some(phone), 1),
        ]
    );
    assert_eq!(r.maintenance.len(), 1);
    assert_eq!(r.maintenance[0].services, vec!["portal".to_string()]);
    assert_eq!(r.trend.len(), 12);
    assert_eq!(r.trend[11].label, "2024-W13");
    assert_eq!(r.trend[10].availability, Some(w12));
    assert_eq!(r.trend[9].availability, Some(1.0));
    assert_eq!(r.trend[0].availability, None);
    assert_eq!(r.days.len(), 7);
    assert_eq!(
        r.days[6].end.duration_since(r.days[6].start).as_secs(),
        23 * 3600
    );
    assert_eq!(r.period.first_day, "2024-03-25");
    assert_eq!(r.period.last_day, "2024-03-31");
}

#[test]
fn seeded_week_csv_is_one_exact_row_per_service_and_sla() {
    let s = seeded("Mijn Gemeente", "acme");
    let r = week(&s, Lang::En);
    let csv = String::from_utf8(render(&r, ReportFormat::Csv, None).unwrap()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert_eq!(
        lines[0],
        "period,period_start,period_end,service,name,category,supplier,sla,objective_percent,\
         calendar,availability,met,eligible_seconds,down_seconds,excluded_maintenance_seconds,\
         maintenance_references,unknown_seconds,incidents,longest_incident_seconds,mttr_seconds,\
         latency_p95_ms,previous_availability,change_vs_previous,budget_remaining_ratio,recomputed"
    );
    let p_office = ratio(P_OFFICE_ELIGIBLE - P_OFFICE_DOWN, P_OFFICE_ELIGIBLE);
    // Budget figures are counted in milliseconds.
    let budget = |allowed_ms: f64, used_ms: f64| (allowed_ms - used_ms) / allowed_ms;
    assert_eq!(
        lines[1],
        format!(
            "2024-W13,2024-03-24T23:00:00Z,2024-03-31T22:00:00Z,portal,Mijn Gemeente,portal,acme,\
             office-hours,99.5,office-hours,{p_office},false,126000,1800,3600,CHG-2024-0042,0,3,\
             3600,3000,100,1,{},{},false",
            p_office - 1.0,
            budget(630_000.0, 1_800_000.0)
        )
    );
    let phone = ratio(OFFICE - PHONE_DOWN, OFFICE);
    let w12_phone = ratio(162_000.0 - 300.0, 162_000.0);
    assert_eq!(
        lines[3],
        format!(
            "2024-W13,2024-03-24T23:00:00Z,2024-03-31T22:00:00Z,phone,Telefonie KCC,telephony,\
             telco,office-hours,99.8,office-hours,{phone},true,129600,120,0,,0,1,120,120,2500,\
             {w12_phone},{},{},false",
            phone - w12_phone,
            budget(259_200.0, 120_000.0)
        )
    );
}

/// `target/test-artifacts/`: pages, screenshots and PDFs the tests made,
/// kept for people to look at.
fn artifacts() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the real binary with `args`; its standard output.
fn cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_continuity"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_report_figure_equals_continuity_sla_for_the_same_week() {
    let s = seeded("Mijn Gemeente", "acme");
    let config = s.config_path.to_str().unwrap();
    let sla: Vec<Value> = serde_json::from_str(&cli(&[
        "sla", "--config", config, "--period", "2024-W13", "--format", "json",
    ]))
    .unwrap();
    let report: Value = serde_json::from_str(&cli(&[
        "report", "--config", config, "--week", "2024-W13", "--format", "json", "--lang", "en",
    ]))
    .unwrap();
    let lines = report["services"].as_array().unwrap();
    assert_eq!(lines.len(), sla.len());
    for (line, row) in lines.iter().zip(&sla) {
        for (ours, theirs) in [
            ("service", "service"),
            ("sla", "sla"),
            ("supplier", "supplier"),
            ("objective", "objective"),
            ("availability", "availability"),
            ("met", "met"),
            ("eligible_seconds", "eligible_seconds"),
            ("down_seconds", "down_seconds"),
            ("unknown_seconds", "unknown_seconds"),
            (
                "excluded_maintenance_seconds",
                "excluded_maintenance_seconds",
            ),
            ("budget_remaining_ratio", "budget_remaining_ratio"),
            ("incidents", "incident_count"),
        ] {
            assert_eq!(line[ours], row[theirs], "{ours} of {line}");
        }
    }
    assert_eq!(report["period"]["label"], "2024-W13");
    assert_eq!(report["lang"], "en");

    // The same command writes every format to --out.
    let dir = tempfile::tempdir().unwrap();
    for format in ["html", "csv", "md"] {
        let out = dir.path().join(format!("week.{format}"));
        cli(&[
            "report",
            "--config",
            config,
            "--week",
            "2024-W13",
            "--format",
            format,
            "--out",
            out.to_str().unwrap(),
        ]);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains("Mijn Gemeente"), "{format}: {text}");
    }
}

#[test]
fn dutch_html_reads_naturally_with_local_numbers_and_dates() {
    let s = seeded("Mijn Gemeente", "acme");
    let html =
        String::from_utf8(render(&week(&s, Lang::Nl), ReportFormat::Html, None).unwrap()).unwrap();
    std::fs::write(artifacts().join("report-2024-W13-nl.html"), &html).unwrap();
    for expected in [
        "<html lang=\"nl\">",
        "Beschikbaarheid gemeentelijke diensten — week 13 2024",
        "maandag 25 maart 2024 – zondag 31 maart 2024",
        "Storingen",
        "Gepland onderhoud",
        "binnen openingstijden",
        "buiten openingstijden",
        "98,57 %",
        "CHG-2024-0042",
        "2.500 ms",
        "<svg",
        "<title",
        "<th scope=\"col\">",
    ] {
        assert!(html.contains(expected), "missing {expected:?}");
    }
    let en =
        String::from_utf8(render(&week(&s, Lang::En), ReportFormat::Html, None).unwrap()).unwrap();
    assert!(en.contains("Monday 25 March 2024 – Sunday 31 March 2024"));
    assert!(en.contains("98.57%"));
    assert!(en.contains("inside service hours"));
    // One self-contained file: nothing is fetched.
    for external in ["src=\"http", "href=\"http", "<link", "<script"] {
        assert!(!html.contains(external), "{external}");
    }
}

#[test]
fn the_trend_of_a_chosen_range_has_short_axis_labels_that_never_overlap() {
    let s = seeded("Mijn Gemeente", "acme");
    let tz = TimeZone::get("Europe/Amsterdam").unwrap();
    for (from, to, lang, first) in [
        // A week from Wednesday: eleven such weeks before it.
        (
            "2024-03-20T00:00:00+01:00",
            "2024-03-27T00:00:00+01:00",
            Lang::Nl,
            "3 jan",
        ),
        // Two days: twelve two-day periods.
        (
            "2024-03-25T00:00:00+01:00",
            "2024-03-27T00:00:00+01:00",
            Lang::En,
            "3 Mar",
        ),
    ] {
        let period = sla::Period::custom(sla::TimeRange::new(ts(from), ts(to)), &tz);
        let r = build(&s.cfg, &s.store, &period, lang, now(), None).unwrap();
        let html = String::from_utf8(render(&r, ReportFormat::Html, None).unwrap()).unwrap();
        std::fs::write(
            artifacts().join(format!("report-range-{}.html", lang.tag())),
            &html,
        )
        .unwrap();
        let svg = &html[html.find("aria-labelledby=\"trend-t").unwrap()..];
        let svg = &svg[..svg.find("</svg>").unwrap()];
        let labels: Vec<(f64, &str)> = svg
            .split("<text class=\"axis\" x=\"")
            .skip(1)
            .map(|rest| {
                let x: f64 = rest[..rest.find('"').unwrap()].parse().unwrap();
                (
                    x,
                    &rest[rest.find('>').unwrap() + 1..rest.find("</text>").unwrap()],
                )
            })
            .collect();
        assert!(labels.len() >= 6, "{labels:?}");
        assert_eq!(labels[0].1, first, "{labels:?}");
        for (_, l) in &labels {
            assert!(l.chars().count() <= 6, "{l:?} is not a short date");
            assert!(!l.contains(':') && !l.contains('/'), "{l:?}");
        }
        // About 6.2 px a character at font size 11, and a gap.
        for pair in labels.windows(2) {
            let need = (pair[0].1.len().max(pair[1].1.len()) as f64) * 6.2 + 8.0;
            assert!(pair[1].0 - pair[0].0 >= need, "{pair:?} overlap");
        }
        // The full range is still the dot's tooltip.
        assert!(r.trend[11].label.contains('/'));
        assert!(svg.contains(&format!("<title>{}: ", r.trend[11].label)));
    }
}

#[test]
fn a_service_that_cut_over_in_the_week_names_both_suppliers_in_every_table() {
    let yaml = CONFIG
        .replace("PORTAL_NAME", "\"Mijn Gemeente\"")
        .replace("SUPPLIER", "acme")
        .replace(
            "    supplier: telco\n",
            "    supplier: telco\n    migration:\n      from: telco\n      to: northhost\n      cutover: { start: 2024-03-27T22:00:00+01:00, end: 2024-03-28T06:00:00+01:00, reference: CHG-7 }\n",
        );
    let s = seeded_from(yaml);
    let r = week(&s, Lang::Nl);
    let phone = r.services.iter().find(|l| l.service == "phone").unwrap();
    // JSON keeps the combined row as it is, and says whose it is.
    assert_eq!(phone.supplier, "*");
    assert_eq!(phone.suppliers, ["telco", "northhost"]);
    let json: Value =
        serde_json::from_slice(&render(&r, ReportFormat::Json, None).unwrap()).unwrap();
    let row = |id: &str| {
        json["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["service"] == id)
            .unwrap()
    };
    assert_eq!(row("phone")["supplier"], "*");
    assert_eq!(row("phone")["suppliers"], json!(["telco", "northhost"]));
    assert!(
        row("portal").get("suppliers").is_none(),
        "a service without a cutover has no list"
    );
    // Its incident on Thursday morning is the new supplier's.
    let incident = r.incidents.iter().find(|i| i.service == "phone").unwrap();
    assert_eq!(incident.supplier, "northhost");

    let html = String::from_utf8(render(&r, ReportFormat::Html, None).unwrap()).unwrap();
    std::fs::write(artifacts().join("report-2024-W13-cutover-nl.html"), &html).unwrap();
    assert!(
        html.contains("<bdi>telco</bdi> → <bdi>northhost</bdi>"),
        "no supplier change in the per-service table"
    );
    let md = String::from_utf8(render(&r, ReportFormat::Md, None).unwrap()).unwrap();
    assert!(
        md.lines()
            .any(|l| l.starts_with("| Telefonie KCC | telco → northhost |")),
        "{md}"
    );
    let csv = String::from_utf8(render(&r, ReportFormat::Csv, None).unwrap()).unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let supplier = rows
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "supplier")
        .unwrap();
    let phone_row = rows
        .records()
        .map(Result::unwrap)
        .find(|rec| &rec[3] == "phone")
        .unwrap();
    assert_eq!(&phone_row[supplier], "telco→northhost");
    for table in [&html, &md, &csv] {
        assert!(
            !table.contains("| * |") && !table.contains(",*,"),
            "a bare * is shown"
        );
    }
}

#[test]
fn hostile_names_render_as_text_in_every_format() {
    let long = "Ω".repeat(10_000);
    for (name, supplier) in [
        ("<script>alert(1)</script>", "\"acme\" & 'co' <b>"),
        ("خدمة البلدية الإلكترونية", "مزود"),
        (long.as_str(), "=HYPERLINK(\"http://evil\")"),
    ] {
        let s = seeded(name, supplier);
        let r = week(&s, Lang::Nl);
        let html = String::from_utf8(render(&r, ReportFormat::Html, None).unwrap()).unwrap();
        assert!(!html.contains("<script>"), "raw script tag in HTML");
        assert!(!html.contains("<b>"), "raw markup in HTML");
        if name.starts_with('<') {
            assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
            assert!(
                html.contains("&#34;acme&#34; &amp; &#39;co&#39;")
                    || html.contains("&quot;acme&quot;")
            );
        }
        if name.starts_with('خ') {
            // Isolated, so right-to-left text does not reorder the row.
            assert!(html.contains("<bdi>خدمة البلدية الإلكترونية</bdi>"));
        }
        if name.len() > 1000 {
            assert!(
                html.contains(&long),
                "a long name is kept whole in the tables"
            );
        }
        let md = String::from_utf8(render(&r, ReportFormat::Md, None).unwrap()).unwrap();
        assert!(!md.contains("<script>") && !md.contains("<b>"));
        let csv = String::from_utf8(render(&r, ReportFormat::Csv, None).unwrap()).unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        for rec in reader.records() {
            let rec = rec.unwrap();
            assert_eq!(rec.len(), 25);
            assert!(!rec[6].starts_with('='), "formula in CSV: {}", &rec[6]);
        }
        let json: Value = serde_json::from_str(
            &String::from_utf8(render(&r, ReportFormat::Json, None).unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(json["services"][0]["name"], name);
    }
}

/// Headless Chromium with the report's own flags and `extra`; its
/// standard output and standard error.
fn chromium(profile: &Path, extra: &[String]) -> (String, String) {
    let browser = weekly::pdf::find_chromium(None)
        .unwrap_or_else(|e| panic!("{e} (scripts/test installs it)"));
    let out = Command::new(browser)
        .args(weekly::pdf::headless_args(profile))
        .args(["--enable-logging=stderr", "--v=0"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn html_report_opens_in_chromium_without_console_errors_in_dutch_and_english() {
    let s = seeded("Mijn Gemeente", "acme");
    let dir = tempfile::tempdir().unwrap();
    for (lang, figure, words) in [
        (Lang::Nl, "98,57 %", "Gepland onderhoud"),
        (Lang::En, "98.57%", "Planned maintenance"),
    ] {
        let html = render(&week(&s, lang), ReportFormat::Html, None).unwrap();
        let page = artifacts().join(format!("report-2024-W13-{lang}.html"));
        std::fs::write(&page, &html).unwrap();
        let url = format!("file://{}", page.display());
        let (dom, log) = chromium(&dir.path().join("p"), &["--dump-dom".into(), url.clone()]);
        for bad in ["Uncaught", ":CONSOLE(", "Refused to"] {
            assert!(
                !log.contains(bad),
                "{lang}: {bad} in the browser log:\n{log}"
            );
        }
        for expected in [figure, words, "CHG-2024-0042", "Telefonie KCC", "<svg"] {
            assert!(dom.contains(expected), "{lang}: {expected:?} not rendered");
        }
        let shot = artifacts().join(format!("report-2024-W13-{lang}.png"));
        chromium(
            &dir.path().join("p"),
            &[
                format!("--screenshot={}", shot.display()),
                "--window-size=1280,2400".into(),
                url,
            ],
        );
        assert!(
            std::fs::metadata(&shot).unwrap().len() > 10_000,
            "empty screenshot"
        );
    }
}

#[test]
fn pdf_report_is_a4_with_the_key_figures_in_its_text() {
    let s = seeded("Mijn Gemeente", "acme");
    let pdf = render(&week(&s, Lang::Nl), ReportFormat::Pdf, None).unwrap();
    let path = artifacts().join("report-2024-W13-nl.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let info = Command::new("pdfinfo").arg(&path).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    let pages: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no page count in:\n{info}"));
    assert!((2..=4).contains(&pages), "{pages} pages:\n{info}");
    assert!(info.contains("(A4)"), "{info}");
    let text = Command::new("pdftotext")
        .args(["-layout", path.to_str().unwrap(), "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    for expected in [
        "Beschikbaarheid gemeentelijke diensten",
        "maandag 25 maart 2024",
        "98,57 %",
        "CHG-2024-0042",
        "Telefonie KCC",
        "buiten openingstijden",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} not in the PDF text:\n{text}"
        );
    }
}

#[test]
fn without_chromium_pdf_says_what_to_install_and_html_still_works() {
    let s = seeded("Mijn Gemeente", "acme");
    let yaml = std::fs::read_to_string(&s.config_path).unwrap();
    std::fs::write(
        &s.config_path,
        format!("reports:\n  chromium: /nonexistent/chromium\n{yaml}"),
    )
    .unwrap();
    let config = s.config_path.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_continuity"))
        .args([
            "report", "--config", config, "--week", "2024-W13", "--format", "pdf",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("apt-get install chromium"), "{err}");
    assert!(out.stdout.is_empty());
    let html = cli(&["report", "--config", config, "--week", "2024-W13"]);
    assert!(html.contains("<html lang=\"nl\">"));
}

/// A clock the test moves by hand.
struct TestClock(Mutex<Timestamp>);

impl weekly::schedule::Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn set(&self, t: &str) {
        *self.0.lock().unwrap() = ts(t);
    }
}

/// The seeded configuration with a weekly schedule mailed through an
/// e-mail receiver at `smtp`.
fn scheduled_config(s: &Seeded, smtp: &str) -> Config {
    let yaml = std::fs::read_to_string(&s.config_path).unwrap();
    let yaml = yaml.split("# --- seeded ---\n").last().unwrap().to_string();
    std::fs::write(
        &s.config_path,
        format!(
            r#"reports:
  weekly:
    {{ weekday: monday, time: "07:00", formats: [html, pdf, csv],
      email: {{ to: [directie@gemeente.example] }} }}
alerting:
  receivers:
    - name: mail
      email: {{ smtp: "{smtp}", tls: none, from: "continuity <continuity@gemeente.example>", to: [oncall@gemeente.example] }}
# --- seeded ---
{yaml}"#
        ),
    )
    .unwrap();
    Config::load(&s.config_path).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn scheduled_report_is_made_once_mailed_with_attachments_and_made_up_after_downtime() {
    use continuity::store::Store;
    use weekly::schedule::ReportScheduler;

    let s = seeded("Mijn Gemeente", "acme");
    // First the mail server is down: the send is retried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let cfg = scheduled_config(&s, &closed_addr.to_string());
    let shared = Arc::new(RwLock::new(Arc::new(cfg)));
    let clock = Arc::new(TestClock(Mutex::new(ts("2024-04-01T06:59:00+02:00"))));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&s.cfg.store.path).unwrap());
    let telemetry = Arc::new(continuity::telemetry::Telemetry::new());
    let scheduler = ReportScheduler::new(
        shared.clone(),
        store.clone(),
        None,
        clock.clone(),
        Some(telemetry.clone()),
    );

    // Monday 1 April 06:59: W13 is closed but not due; W12, never made, is.
    let t = scheduler.tick().await.unwrap();
    assert_eq!(t.made, vec!["weekly 2024-W12".to_string()]);
    assert_eq!((t.mails_sent, t.mails_failed), (0, 1));

    // 07:00: W13 is made, once.
    clock.set("2024-04-01T07:00:00+02:00");
    let t = scheduler.tick().await.unwrap();
    assert_eq!(t.made, vec!["weekly 2024-W13".to_string()]);
    assert_eq!(scheduler.tick().await.unwrap().made, Vec::<String>::new());
    let run = store.report_run("weekly", "2024-W13").unwrap().unwrap();
    assert_eq!(run.mail_status, "pending");
    assert!(run.last_error.is_some(), "{run:?}");
    for format in ["html", "pdf", "csv"] {
        let f = store.archived_report("2024-W13", format).unwrap().unwrap();
        assert!(!f.content.is_empty(), "{format}");
    }
    let csv = store.archived_report("2024-W13", "csv").unwrap().unwrap();
    assert!(
        String::from_utf8(csv.content)
            .unwrap()
            .contains("Mijn Gemeente")
    );

    // The mail server comes up; after the back-off both mails go out.
    let (addr, mails) = support::smtp::smtp_sink(None).await;
    *shared.write().unwrap() = Arc::new(scheduled_config(&s, &addr.to_string()));
    clock.set("2024-04-01T07:10:00+02:00");
    let t = scheduler.tick().await.unwrap();
    assert_eq!((t.mails_sent, t.mails_failed), (2, 0), "{t:?}");
    assert_eq!(scheduler.tick().await.unwrap().mails_sent, 0);
    let sent = mails.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    let w13 = sent
        .iter()
        .find(|m| m.data.contains("report-2024-W13.pdf"))
        .expect("the W13 mail");
    assert_eq!(w13.to, vec!["directie@gemeente.example".to_string()]);
    assert!(
        w13.data.contains("Content-Type: text/html"),
        "{}",
        &w13.data[..2000]
    );
    assert!(w13.data.contains("Content-Type: application/pdf"));
    assert!(w13.data.contains("filename=\"report-2024-W13.csv\""));
    assert_eq!(
        store
            .report_run("weekly", "2024-W13")
            .unwrap()
            .unwrap()
            .mail_status,
        "sent"
    );

    // The daemon is down on Monday 8 April; at start on Wednesday the
    // missed W14 report is made up, exactly once, also by a second
    // scheduler (a restart).
    clock.set("2024-04-10T09:00:00+02:00");
    let t = scheduler.tick().await.unwrap();
    assert_eq!(t.made, vec!["weekly 2024-W14".to_string()]);
    let restarted = ReportScheduler::new(shared.clone(), store.clone(), None, clock.clone(), None);
    assert_eq!(restarted.tick().await.unwrap().made, Vec::<String>::new());
    assert_eq!(mails.lock().unwrap().len(), 3);
    let listed = store.archived_reports().unwrap();
    assert_eq!(listed.iter().filter(|f| f.period == "2024-W14").count(), 3);
    let mut metrics = String::new();
    prometheus_client::encoding::text::encode(&mut metrics, &telemetry.registry).unwrap();
    for line in [
        "continuity_reports_total{schedule=\"weekly\",event=\"made\"} 3",
        // W12 at 06:59 and again at 07:00 (its retry was due), W13 at 07:00.
        "continuity_reports_total{schedule=\"weekly\",event=\"mail_failed\"} 3",
        "continuity_reports_total{schedule=\"weekly\",event=\"mail_sent\"} 3",
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
}

#[test]
fn the_daemon_lists_the_archive_and_serves_each_archived_file() {
    use continuity::store::{ArchivedReport, ReportRunRecord, ReportStore};
    use support::daemon::{InProcess, try_request};

    let s = seeded("<i>Mijn</i> Gemeente", "acme");
    let r = week(&s, Lang::Nl);
    let files: Vec<ArchivedReport> = [ReportFormat::Html, ReportFormat::Csv, ReportFormat::Json]
        .into_iter()
        .map(|f| ArchivedReport {
            period: "2024-W13".into(),
            format: f.extension().into(),
            lang: "nl".into(),
            created_at: now(),
            content: render(&r, f, None).unwrap(),
        })
        .collect();
    let run = ReportRunRecord {
        schedule: "weekly".into(),
        period: "2024-W13".into(),
        made_at: now(),
        mail_status: "none".into(),
        attempts: 0,
        next_attempt_at: None,
        last_error: None,
        sent_at: None,
    };
    assert!(s.store.record_report_run(&run, &files).unwrap());
    assert!(
        !s.store.record_report_run(&run, &files).unwrap(),
        "a second record of the same run"
    );

    let d = InProcess::start(&s.config_path);
    let (status, list) = try_request(d.addr, "GET", "/reports/", None, "").unwrap();
    assert_eq!(status, 200);
    for name in ["2024-W13.html", "2024-W13.csv", "2024-W13.json"] {
        assert!(
            list.contains(&format!("href=\"{name}\"")),
            "{name} not listed:\n{list}"
        );
    }
    let (status, csv) = try_request(d.addr, "GET", "/reports/2024-W13.csv", None, "").unwrap();
    assert_eq!(status, 200);
    assert_eq!(csv.as_bytes(), &files[1].content[..]);
    let (status, html) = try_request(d.addr, "GET", "/reports/2024-W13.html", None, "").unwrap();
    assert_eq!(status, 200);
    assert!(html.contains("&lt;i&gt;Mijn&lt;/i&gt; Gemeente") || html.contains("&#60;i&#62;Mijn"));
    let (status, body) = try_request(d.addr, "GET", "/reports/2024-W12.pdf", None, "").unwrap();
    assert_eq!(status, 404);
    assert!(body.contains("/reports/"), "{body}");
    d.stop().unwrap();
}

#[test]
fn a_recomputation_that_changed_the_week_is_listed_with_before_and_after() {
    use continuity::recompute::{RecomputeRequest, recompute};

    let s = seeded("Mijn Gemeente", "acme");
    // The week's figures as reported are on record (as the scheduled
    // report and `continuity sla --record` keep them).
    let reported = continuity::report::sla_report(
        &s.cfg,
        &s.store,
        continuity::report::PeriodSelector::Label("2024-W13".into()),
        None,
        now(),
    )
    .unwrap();
    for row in &reported {
        continuity::store::HistoryStore::insert_sla_snapshot(
            &s.store,
            &continuity::report::snapshot(row, now()),
        )
        .unwrap();
    }
    // The Tuesday outage was planned after all: a window added afterwards.
    let yaml = std::fs::read_to_string(&s.config_path).unwrap().replace(
        "maintenances:\n",
        "maintenances:\n  - reference: CHG-2024-0050\n    description: Late registration\n    service: portal\n    start: 2024-03-26T10:00:00+01:00\n    end: 2024-03-26T10:30:00+01:00\n",
    );
    std::fs::write(&s.config_path, yaml).unwrap();
    let cfg = Config::load(&s.config_path).unwrap_or_else(|e| panic!("{e}"));
    let req = RecomputeRequest {
        from: ts("2024-03-26T00:00:00+01:00"),
        to: ts("2024-03-27T00:00:00+01:00"),
        service: Some("portal".into()),
        reason: "CHG-2024-0050 was planned".into(),
        who: "alice".into(),
    };
    recompute(&cfg, &s.store, &req, now()).unwrap();
    let tz = TimeZone::get("Europe/Amsterdam").unwrap();
    let period = sla::parse_period_label("2024-W13", &tz).unwrap();
    let r = build(&cfg, &s.store, &period, Lang::En, now(), None).unwrap();
    assert_eq!(r.recomputations.len(), 1, "{:?}", r.recomputations);
    let rc = &r.recomputations[0];
    assert_eq!(
        (rc.by.as_str(), rc.reason.as_str()),
        ("alice", "CHG-2024-0050 was planned")
    );
    let office = rc
        .changes
        .iter()
        .find(|c| c.sla == "office-hours" && c.period == "2024-W13")
        .expect("the week's office-hours figures changed");
    assert_eq!(office.down_seconds_before, P_OFFICE_DOWN);
    assert_eq!(office.down_seconds_after, 0.0);
    assert_eq!(office.availability_after, Some(1.0));
    assert!(r.services[0].recomputed);
    let html = String::from_utf8(render(&r, ReportFormat::Html, None).unwrap()).unwrap();
    assert!(html.contains("CHG-2024-0050 was planned"));
}

#[test]
fn a_mistyped_schedule_is_reported_at_its_place_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("continuity.yaml");
    std::fs::write(
        &path,
        "reports:\n  language: de\n  weekly: { weekday: mondy, time: \"7h\", formats: [html, docx], email: { to: [directie@gemeente.example] } }\n",
    )
    .unwrap();
    let e = Config::load(&path).unwrap_err().to_string();
    for expected in [
        "continuity.yaml:2:",
        "unknown language 'de'",
        "'mondy' is not a weekday",
        "did you mean 'monday'?",
        "time '7h' is not a time of day",
        "unknown report format 'docx'",
        "no SMTP server to send it through",
        "alerting.receivers",
    ] {
        assert!(e.contains(expected), "{expected:?} not in:\n{e}");
    }
}
