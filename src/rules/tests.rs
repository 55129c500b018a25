//! Unit tests of the generated rule file: its shape, the numbers it shares
//! with the daemon, and its errors. promtool checks and unit-tests the
//! file itself in `tests/prometheus_rules.rs`.

use super::*;
use crate::sla::BURN_RULES;

fn config(alerting: &str) -> Config {
    Config::from_str(
        "t.yaml",
        &format!(
            "{alerting}services:\n  - id: portal\n    category: portal\n    supplier: acme\n    slas:\n      - {{ name: always, objective: 99.9, period: week, calendar: 24x7 }}\n    checks:\n      - id: home\n        tcp: {{ target: 127.0.0.1:1 }}\n"
        ),
    )
    .unwrap()
}

fn opts(quorum: Option<Quorum>) -> RulesOptions {
    RulesOptions {
        quorum,
        job: "continuity".into(),
        kubernetes: false,
        command: "continuity rules --config t.yaml".into(),
    }
}

#[test]
fn default_burn_alerts_use_the_daemons_factors_and_windows() {
    let text = generate(&config(""), &opts(None)).unwrap();
    // The daemon's defaults are the SRE workbook's table in sla::budget.
    for r in BURN_RULES {
        let line = format!(
            "{} >= {}",
            recording::burn_rate(r.long.label()),
            factor(r.factor)
        );
        assert!(text.contains(&line), "missing {line} in\n{text}");
    }
    assert!(text.contains("- alert: ErrorBudgetFastBurn"));
    assert!(text.contains("- alert: ErrorBudgetSlowBurn"));
    assert!(!text.contains("ServiceDownQuorum"));
}

#[test]
fn burn_alerts_follow_the_catalogues_own_thresholds() {
    let c = config(
        "alerting:\n  burn_rate:\n    page:\n      - { factor: 20, long: 2h, short: 5m }\n    ticket: []\n",
    );
    let text = generate(&c, &opts(None)).unwrap();
    assert!(text.contains(&format!("{} >= 20", recording::burn_rate("2h"))));
    assert!(!text.contains(&format!("{} >= 14.4", recording::burn_rate("1h"))));
    assert!(
        text.contains("vector(0) == 1"),
        "no ticket rule: never true"
    );
}

#[test]
fn every_window_is_recorded_from_the_time_based_counters() {
    let text = generate(&config(""), &opts(None)).unwrap();
    for name in recording::all() {
        assert!(text.contains(&format!("- record: {name}\n")), "{name}");
    }
    assert!(text.contains("rate(continuity_sla_good_seconds_total[3d])"));
    assert!(text.contains("rate(continuity_sla_eligible_seconds_total[5m])"));
}

#[test]
fn quorum_alert_needs_k_of_n_locations() {
    let q = Quorum::new(3, 2).unwrap();
    let text = generate(&config(""), &opts(Some(q))).unwrap();
    assert!(text.contains(&format!("{} >= 2", recording::DOWN_LOCATIONS)));
    assert!(text.contains("of 3 locations"));
    // With a location to spare, losing one is a ticket, not a page.
    let absent = text
        .split("- alert: ContinuityMonitorAbsent")
        .nth(1)
        .unwrap();
    assert!(absent.contains("severity: ticket"));
}

#[test]
fn quorum_larger_than_the_locations_is_refused_with_a_fix() {
    let e = Quorum::new(2, 3).unwrap_err();
    assert_eq!(
        e,
        RulesError::QuorumTooLarge {
            needed: 3,
            locations: 2
        }
    );
    assert!(e.to_string().contains("use --quorum 1..=2"));
    assert_eq!(Quorum::new(2, 0).unwrap_err(), RulesError::QuorumZero);
    assert_eq!(Quorum::new(0, 0).unwrap_err(), RulesError::NoLocations);
}

#[test]
fn a_job_name_that_would_break_the_expression_is_refused() {
    let mut o = opts(None);
    o.job = "a\"b".into();
    assert!(matches!(
        generate(&config(""), &o),
        Err(RulesError::BadJob(_))
    ));
}

#[test]
fn kubernetes_output_wraps_the_same_groups_in_a_prometheus_rule() {
    let plain = generate(&config(""), &opts(None)).unwrap();
    let mut o = opts(None);
    o.kubernetes = true;
    let k8s = generate(&config(""), &o).unwrap();
    assert!(k8s.contains("kind: PrometheusRule\n"));
    let indented: String = plain
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("  {l}\n"))
        .collect();
    assert!(k8s.contains(&indented));
}
