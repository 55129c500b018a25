//! Alerting, end to end: the rules on synthetic state (burn-rate windows
//! at their edges, maintenance, canaries, flapping), the configuration,
//! the payloads each channel sends (against fixtures), delivery through the
//! outbox to a local webhook and a local SMTP server, and a real
//! Alertmanager (Debian's prometheus-alertmanager) started by the tests.

mod support;
use support::ports::{free_port, on_a_free_port};
use support::smtp::{parse_mail, smtp_sink};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use continuity::alert::config::{AlertingSpec, Severity};
use continuity::alert::dispatch::{DispatchOptions, Dispatcher};
use continuity::alert::notify::{self, Channel, Notification, Status};
use continuity::alert::outbox::{
    Durable, MemoryOutbox, NewItem, OutboxError, OutboxItem, OutboxState, OutboxStore, Settled,
};
use continuity::alert::rules::AlertRules;
use continuity::alert::view::{AlertView, CheckView, MaintenanceView, ServiceView, SlaView};
use continuity::alert::{Alert, AlertChange, AlertSet};
use continuity::config::Config;
use continuity::config::schedule::MaintenanceEffect;
use continuity::engine::{Engine, NoSink, StatusBoard};
use continuity::probe::{FailureReason, ProbeOutcome};
use continuity::scheduler::ProbeReport;
use continuity::sla::CheckState;
use continuity::telemetry::Telemetry;
use jiff::Timestamp;
use serde_json::Value;
use tokio::net::TcpListener;

// ------------------------------------------------------------- fixtures

const BASE: i64 = 1_772_442_000; // 2026-03-02T09:00:00Z

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(BASE + secs).unwrap()
}

const MIN: i64 = 60;

const SERVICES: &str = r#"
services:
  - id: portal
    name: Citizen portal
    category: portal
    supplier: acme
    runbook_url: https://wiki.example.org/runbooks/portal
    checks:
      - id: home
        http: { url: "http://127.0.0.1:9/" }
      - id: search
        critical: false
        http: { url: "http://127.0.0.1:9/search" }
  - id: phone
    name: Municipal phone line
    category: telephony
    supplier: telco
    checks:
      - id: sip
        tcp: { target: "127.0.0.1:9" }
  - id: monitor-canary
    name: Canary
    category: monitoring
    supplier: in-house
    checks:
      - id: gateway
        tcp: { target: "127.0.0.1:9" }
      - id: resolver
        tcp: { target: "127.0.0.1:9" }
"#;

/// Load a full configuration with `alerting` (indented YAML under
/// `alerting:`) and the services above; panics with the issues if invalid.
fn load(alerting: &str) -> Config {
    let text = main_yaml(alerting);
    Config::from_str("/tmp/continuity-alerting-test.yaml", &text)
        .unwrap_or_else(|e| panic!("configuration is not valid:\n{e}\n{text}"))
}

fn main_yaml(alerting: &str) -> String {
    format!(
        "location: test-loc\nserver:\n  external_url: https://continuity.example.org\nalerting:\n{alerting}\n{SERVICES}"
    )
}

fn load_err(alerting: &str) -> String {
    match Config::from_str("/tmp/continuity-alerting-test.yaml", &main_yaml(alerting)) {
        Ok(_) => panic!("configuration should be rejected:\n{alerting}"),
        Err(e) => e.to_string(),
    }
}

fn spec(alerting: &str) -> AlertingSpec {
    load(alerting).alerting
}

fn check(id: &str, critical: bool) -> CheckView<'static> {
    CheckView {
        id: id.to_string().into(),
        critical,
        state: CheckState::Up,
        down_since: None,
        reason: None,
        detail: None,
        slow_since: None,
        cert_not_after: None,
        parity_failing_since: None,
        compare_up: None,
    }
}

fn service(
    id: &str,
    category: &str,
    supplier: &str,
    checks: Vec<CheckView<'static>>,
) -> ServiceView<'static> {
    ServiceView {
        id: id.to_string().into(),
        name: format!("The {id}").into(),
        category: category.to_string().into(),
        supplier: supplier.to_string().into(),
        runbook_url: None,
        maintenance: None,
        checks,
        slas: Vec::new(),
        migration: None,
    }
}

/// A small world: the portal (home critical, search not), the phone
/// line, and the canary service; everything up.
#[derive(Clone)]
struct World {
    services: Vec<ServiceView<'static>>,
}

impl World {
    fn new() -> World {
        let mut portal = service(
            "portal",
            "portal",
            "acme",
            vec![check("home", true), check("search", false)],
        );
        portal.name = "Citizen portal".into();
        portal.runbook_url = Some("https://wiki.example.org/runbooks/portal".into());
        World {
            services: vec![
                portal,
                service("phone", "telephony", "telco", vec![check("sip", true)]),
                service(
                    "monitor-canary",
                    "monitoring",
                    "in-house",
                    vec![check("gateway", true), check("resolver", true)],
                ),
            ],
        }
    }

    fn svc(&mut self, id: &str) -> &mut ServiceView<'static> {
        self.services.iter_mut().find(|s| s.id == id).unwrap()
    }

    fn chk(&mut self, service: &str, check: &str) -> &mut CheckView<'static> {
        self.svc(service)
            .checks
            .iter_mut()
            .find(|c| c.id == check)
            .unwrap()
    }

    fn down(&mut self, service: &str, check: &str, since: Timestamp) {
        let c = self.chk(service, check);
        c.state = CheckState::Down;
        c.down_since = Some(since);
        c.reason = Some("timeout".into());
        c.detail = Some("no answer within 10s".into());
    }

    fn up(&mut self, service: &str, check: &str) {
        let c = self.chk(service, check);
        c.state = CheckState::Up;
        c.down_since = None;
        c.reason = None;
        c.detail = None;
    }

    fn view(&self, now: Timestamp) -> AlertView<'static> {
        AlertView {
            now,
            location: "test-loc".into(),
            external_url: Some("https://continuity.example.org".into()),
            network_degraded: false,
            services: self.services.clone(),
        }
    }
}

fn names(set: &AlertSet) -> Vec<String> {
    let mut v: Vec<String> = set
        .alerts
        .iter()
        .map(|a| {
            let mut s = a.name().to_string();
            for l in ["service", "check", "sla"] {
                if !a.label(l).is_empty() {
                    s.push('/');
                    s.push_str(a.label(l));
                }
            }
            s
        })
        .collect();
    v.sort();
    v
}

fn change_summary(changes: &[AlertChange]) -> Vec<String> {
    changes
        .iter()
        .filter(|c| c.alert().name() != "Watchdog")
        .map(|c| match c {
            AlertChange::Firing(a) => format!("firing {}", a.name()),
            AlertChange::Resolved { alert, note, .. } => match note {
                Some(n) => format!("resolved {} ({n})", alert.name()),
                None => format!("resolved {}", alert.name()),
            },
        })
        .collect()
}

// ------------------------------------------------------------ the rules

#[test]
fn service_down_fires_for_a_confirmed_down_critical_check_from_its_down_since() {
    let mut rules = AlertRules::new(&spec("  degraded_for: 5m"));
    let mut w = World::new();
    let set = rules.evaluate(&w.view(t(0)));
    assert_eq!(names(&set), ["Watchdog"]);

    w.down("portal", "home", t(-150));
    let set = rules.evaluate(&w.view(t(10)));
    assert_eq!(names(&set), ["ServiceDown/portal/home", "Watchdog"]);
    let a = set.get("ServiceDown")[0];
    let labels: Vec<(&str, &str)> = a
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("alertname", "ServiceDown"),
            ("category", "portal"),
            ("check", "home"),
            ("location", "test-loc"),
            ("service", "portal"),
            ("severity", "page"),
            ("supplier", "acme"),
        ]
    );
    assert_eq!(a.starts_at, t(-150), "startsAt is the persisted down_since");
    assert_eq!(
        a.annotations["runbook_url"],
        "https://wiki.example.org/runbooks/portal"
    );
    assert_eq!(
        a.annotations["status_url"],
        "https://continuity.example.org/api/v1/status?service=portal"
    );
    assert!(a.annotations["description"].contains("timeout: no answer within 10s"));
    assert_eq!(change_summary(&rules.changes()), ["firing ServiceDown"]);

    // Evaluating again changes nothing.
    rules.evaluate(&w.view(t(20)));
    assert!(rules.changes().is_empty());

    w.up("portal", "home");
    let set = rules.evaluate(&w.view(t(30)));
    assert_eq!(names(&set), ["Watchdog"]);
    assert_eq!(change_summary(&rules.changes()), ["resolved ServiceDown"]);
}

#[test]
fn unknown_state_raises_nothing() {
    let mut rules = AlertRules::new(&AlertingSpec::default());
    let mut w = World::new();
    for s in &mut w.services {
        for c in &mut s.checks {
            c.state = CheckState::Unknown;
        }
    }
    let set = rules.evaluate(&w.view(t(0)));
    assert_eq!(names(&set), ["Watchdog"]);
    assert_eq!(set.get("Watchdog")[0].severity(), Severity::None);
}

#[test]
fn degraded_fires_only_after_degraded_for() {
    let mut rules = AlertRules::new(&spec("  degraded_for: 5m"));
    let mut w = World::new();
    w.down("portal", "search", t(0));
    assert_eq!(
        names(&rules.evaluate(&w.view(t(5 * MIN - 1)))),
        ["Watchdog"]
    );
    let set = rules.evaluate(&w.view(t(5 * MIN)));
    assert_eq!(
        names(&set),
        ["ServiceDegraded/portal/search", "Watchdog"],
        "a non-critical check down degrades, it does not page"
    );
    assert_eq!(set.get("ServiceDegraded")[0].severity(), Severity::Ticket);
    assert_eq!(set.get("ServiceDegraded")[0].starts_at, t(0));

    // Slow (but up) counts too, from when it became slow.
    let mut rules = AlertRules::new(&spec("  degraded_for: 5m"));
    let mut w = World::new();
    w.chk("phone", "sip").slow_since = Some(t(0));
    assert_eq!(names(&rules.evaluate(&w.view(t(4 * MIN)))), ["Watchdog"]);
    assert_eq!(
        names(&rules.evaluate(&w.view(t(5 * MIN)))),
        ["ServiceDegraded/phone/sip", "Watchdog"]
    );
}

fn with_burn(rates: &[(&str, f64)]) -> World {
    let mut w = World::new();
    w.svc("portal").slas.push(SlaView {
        name: "office-hours".into(),
        objective_ratio: 0.998,
        availability: Some(0.999),
        budget_remaining_ratio: Some(0.5),
        burn_rates: rates
            .iter()
            .map(|(k, v)| (k.to_string().into(), *v))
            .collect(),
    });
    w
}

fn burn_alerts(spec: &AlertingSpec, rates: &[(&str, f64)]) -> Vec<String> {
    let mut rules = AlertRules::new(spec);
    let set = rules.evaluate(&with_burn(rates).view(t(0)));
    names(&set)
        .into_iter()
        .filter(|n| n.starts_with("ErrorBudget"))
        .collect()
}

#[test]
fn burn_rate_alerts_need_both_windows_at_their_factor() {
    let s = AlertingSpec::default();
    let fast = vec!["ErrorBudgetFastBurn/portal/office-hours".to_string()];
    let slow = vec!["ErrorBudgetSlowBurn/portal/office-hours".to_string()];
    let none: Vec<String> = Vec::new();
    type Case<'a> = (&'a [(&'a str, f64)], &'a Vec<String>);
    let cases: &[Case] = &[
        // 14.4x over 1h and 5m pages; a hair below on either window does not.
        (&[("1h", 14.4), ("5m", 14.4)], &fast),
        (&[("1h", 14.4), ("5m", 14.39)], &none),
        (&[("1h", 14.39), ("5m", 100.0)], &none),
        // 6x over 6h and 30m pages.
        (&[("6h", 6.0), ("30m", 6.0)], &fast),
        (&[("6h", 6.0), ("30m", 5.99)], &none),
        (&[("6h", 5.99), ("30m", 50.0)], &none),
        // 3x over 1d and 2h is a ticket.
        (&[("1d", 3.0), ("2h", 3.0)], &slow),
        (&[("1d", 3.0), ("2h", 2.99)], &none),
        (&[("1d", 2.99), ("2h", 9.0)], &none),
        // 1x over 3d and 6h is a ticket.
        (&[("3d", 1.0), ("6h", 1.0)], &slow),
        (&[("3d", 0.99), ("6h", 5.0)], &none),
        (&[("3d", 1.0), ("6h", 0.99)], &none),
        // Windows the engine did not report do not fire.
        (&[("1h", 100.0)], &none),
        // A fast burn hides the slow burn of the same SLA.
        (
            &[("1h", 20.0), ("5m", 20.0), ("1d", 5.0), ("2h", 5.0)],
            &fast,
        ),
    ];
    for (rates, expected) in cases {
        assert_eq!(&&burn_alerts(&s, rates), expected, "burn rates {rates:?}");
    }
}

#[test]
fn burn_rate_factors_and_windows_are_configurable() {
    let s = spec(
        "  burn_rate:\n    page: [{factor: 10, long: 2h, short: 5m}]\n    ticket: [{factor: 2, long: 1d, short: 1h}]",
    );
    assert_eq!(
        burn_alerts(&s, &[("2h", 10.0), ("5m", 10.0)]),
        ["ErrorBudgetFastBurn/portal/office-hours"]
    );
    assert!(burn_alerts(&s, &[("1h", 14.4), ("5m", 14.4)]).is_empty());
    assert_eq!(
        burn_alerts(&s, &[("1d", 2.0), ("1h", 2.0)]),
        ["ErrorBudgetSlowBurn/portal/office-hours"]
    );
}

#[test]
fn sla_breached_when_the_budget_is_spent() {
    let mut rules = AlertRules::new(&AlertingSpec::default());
    let mut w = with_burn(&[]);
    w.svc("portal").slas[0].budget_remaining_ratio = Some(0.01);
    assert_eq!(names(&rules.evaluate(&w.view(t(0)))), ["Watchdog"]);
    w.svc("portal").slas[0].budget_remaining_ratio = Some(0.0);
    let set = rules.evaluate(&w.view(t(30)));
    assert_eq!(names(&set), ["SLABreached/portal/office-hours", "Watchdog"]);
    assert_eq!(set.get("SLABreached")[0].severity(), Severity::Ticket);
    // Without a budget figure, availability under the objective decides.
    w.svc("portal").slas[0].budget_remaining_ratio = None;
    w.svc("portal").slas[0].availability = Some(0.9979);
    assert_eq!(
        names(&rules.evaluate(&w.view(t(60)))),
        ["SLABreached/portal/office-hours", "Watchdog"]
    );
    assert_eq!(
        change_summary(&rules.changes()),
        ["firing SLABreached"],
        "one incident while it stays breached"
    );
}

#[test]
fn certificate_expiring_is_a_ticket_under_14_days_and_a_page_under_3() {
    let day = 86400;
    let cases = [
        (14 * day, None),
        (14 * day - 1, Some(Severity::Ticket)),
        (3 * day, Some(Severity::Ticket)),
        (3 * day - 1, Some(Severity::Page)),
        (-day, Some(Severity::Page)),
    ];
    for (left, expected) in cases {
        let mut rules = AlertRules::new(&AlertingSpec::default());
        let mut w = World::new();
        let not_after = BASE + left;
        w.chk("portal", "home").cert_not_after = Some(not_after);
        let set = rules.evaluate(&w.view(t(0)));
        let got = set.get("CertificateExpiring");
        assert_eq!(
            got.first().map(|a| a.severity()),
            expected,
            "{left}s before expiry"
        );
        if let Some(a) = got.first() {
            let days = if a.severity() == Severity::Page {
                3
            } else {
                14
            };
            assert_eq!(
                a.starts_at.as_second(),
                not_after - days * day,
                "startsAt is when the threshold was crossed, the same after a restart"
            );
            assert_eq!(a.label("check"), "home");
        }
    }
    let s = spec("  certificate: { ticket_days: 30, page_days: 7 }");
    let mut rules = AlertRules::new(&s);
    let mut w = World::new();
    w.chk("portal", "home").cert_not_after = Some(BASE + 20 * day);
    assert_eq!(
        rules.evaluate(&w.view(t(0))).get("CertificateExpiring")[0].severity(),
        Severity::Ticket
    );
}

#[test]
fn maintenance_resolves_a_firing_alert_with_a_note_and_it_fires_again_after() {
    let mut rules = AlertRules::new(&AlertingSpec::default());
    let mut w = World::new();
    w.down("portal", "home", t(0));
    rules.evaluate(&w.view(t(10)));
    assert_eq!(change_summary(&rules.changes()), ["firing ServiceDown"]);

    for effect in [MaintenanceEffect::Exclude, MaintenanceEffect::Mute] {
        w.svc("portal").maintenance = Some(MaintenanceView {
            reference: "CHG-2026-0142".into(),
            effect,
        });
        let set = rules.evaluate(&w.view(t(20)));
        assert_eq!(names(&set), ["Watchdog"], "{effect:?}");
        let changes = rules.changes();
        if effect == MaintenanceEffect::Exclude {
            assert_eq!(
                change_summary(&changes),
                ["resolved ServiceDown (resolved: maintenance CHG-2026-0142 started)"]
            );
        } else {
            assert!(changes.is_empty(), "still held back: {changes:?}");
        }
        // Nothing new fires inside the window either.
        w.down("phone", "sip", t(15));
        w.svc("phone").maintenance = w.svc("portal").maintenance.clone();
        assert_eq!(names(&rules.evaluate(&w.view(t(25)))), ["Watchdog"]);
        assert!(rules.changes().is_empty());
        w.up("phone", "sip");
        w.svc("phone").maintenance = None;
    }

    w.svc("portal").maintenance = None;
    let set = rules.evaluate(&w.view(t(40)));
    assert_eq!(names(&set), ["ServiceDown/portal/home", "Watchdog"]);
    assert_eq!(change_summary(&rules.changes()), ["firing ServiceDown"]);
}

/// The view as the engine hands it over once it has found every canary
/// down (the engine decides that verdict, the rules only read it).
fn network_degraded(mut view: AlertView<'static>) -> AlertView<'static> {
    view.network_degraded = true;
    view
}

#[test]
fn a_degraded_network_turns_a_flood_into_one_network_alert() {
    let s = spec("  canaries: [monitor-canary/gateway, monitor-canary/resolver]");
    let mut rules = AlertRules::new(&s);
    let mut w = World::new();
    w.down("portal", "home", t(0));
    rules.evaluate(&w.view(t(5)));
    assert_eq!(change_summary(&rules.changes()), ["firing ServiceDown"]);

    // The monitor's uplink goes: every check fails, canaries included.
    w.down("phone", "sip", t(10));
    w.down("portal", "search", t(10));
    w.down("monitor-canary", "gateway", t(10));
    // One canary still up: the engine does not blame the monitor.
    let set = rules.evaluate(&w.view(t(20)));
    assert!(names(&set).contains(&"ServiceDown/phone/sip".to_string()));
    rules.changes();

    w.down("monitor-canary", "resolver", t(30));
    let set = rules.evaluate(&network_degraded(w.view(t(40))));
    assert_eq!(names(&set), ["MonitorNetworkDegraded", "Watchdog"]);
    let net = set.get("MonitorNetworkDegraded")[0];
    assert_eq!(net.starts_at, t(30), "since the last canary fell");
    assert_eq!(net.label("location"), "test-loc");
    assert!(net.annotations["description"].contains("monitor-canary/gateway"));
    let changes = change_summary(&rules.changes());
    assert!(changes.contains(&"firing MonitorNetworkDegraded".to_string()));
    assert!(
        changes
            .iter()
            .filter(|c| c.starts_with("resolved ServiceDown"))
            .all(|c| c.contains("monitor's own network")),
        "{changes:?}"
    );
    assert!(!changes.iter().any(|c| c.starts_with("firing Service")));

    w.up("monitor-canary", "gateway");
    let set = rules.evaluate(&w.view(t(60)));
    assert!(!names(&set).contains(&"MonitorNetworkDegraded".to_string()));
    assert!(names(&set).contains(&"ServiceDown/portal/home".to_string()));
}

#[test]
fn the_engine_finds_every_canary_down_and_the_rules_only_read_its_verdict() {
    let config = Arc::new(load(
        "  canaries: [monitor-canary/gateway, monitor-canary/resolver]",
    ));
    let mut engine = Engine::new(
        config.clone(),
        Arc::new(Telemetry::new()),
        Arc::new(RwLock::new(StatusBoard::default())),
        Box::new(NoSink),
        None,
        continuity::clock::Clock::system(),
    );
    let mut rules = AlertRules::new(&config.alerting);
    // The engine keeps milliseconds.
    let t0 = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap();
    let at = |s: i64| t0 + jiff::SignedDuration::from_secs(s);
    let report = |check: &str, s: i64, ok: bool| {
        let (service, check) = check.split_once('/').unwrap();
        ProbeReport {
            service: service.into(),
            check: check.into(),
            at: at(s),
            outcome: Ok(if ok {
                ProbeOutcome::default()
            } else {
                ProbeOutcome::failed(FailureReason::Timeout, "no answer")
            }),
        }
    };
    let every = [
        "monitor-canary/gateway",
        "monitor-canary/resolver",
        "portal/home",
        "phone/sip",
    ];
    let round = |engine: &mut Engine, s: i64, failing: &[&str]| {
        for c in every {
            engine.on_report(report(c, s, !failing.contains(&c)));
        }
    };
    // One canary down (three failures confirm it) is not the monitor.
    for s in 0..3 {
        round(&mut engine, s, &[every[0], every[2], every[3]]);
    }
    let view = engine.alert_view(at(3));
    assert!(!view.network_degraded);
    let set = rules.evaluate(&view);
    assert!(names(&set).contains(&"ServiceDown/phone/sip".to_string()));
    rules.changes();

    // The monitor's uplink goes: the last canary falls too.
    for s in 3..6 {
        round(&mut engine, s, &every);
    }
    let view = engine.alert_view(at(6));
    assert!(view.network_degraded);
    let set = rules.evaluate(&view);
    assert_eq!(names(&set), ["MonitorNetworkDegraded", "Watchdog"]);
    assert_eq!(
        set.get("MonitorNetworkDegraded")[0].starts_at,
        at(3),
        "since the last canary fell"
    );
    let resolved: Vec<String> = change_summary(&rules.changes())
        .into_iter()
        .filter(|c| c.starts_with("resolved ServiceDown"))
        .collect();
    // The portal, the phone line and the gateway canary's own service.
    assert_eq!(resolved.len(), 3, "{resolved:?}");
    assert!(
        resolved.iter().all(|c| c.contains("monitor's own network")),
        "{resolved:?}"
    );

    // One canary back (two successes): the portal's failures count again
    // and page.
    for s in 6..10 {
        engine.on_report(report("monitor-canary/gateway", s, true));
        engine.on_report(report("portal/home", s, false));
    }
    let set = rules.evaluate(&engine.alert_view(at(10)));
    assert!(!names(&set).contains(&"MonitorNetworkDegraded".to_string()));
    assert!(names(&set).contains(&"ServiceDown/portal/home".to_string()));
}

#[test]
fn a_mass_outage_shares_its_alerts_and_recovers_in_one_evaluation() {
    // 2,000 services down at once (a supplier's network), then back.
    let mut rules = AlertRules::new(&spec(""));
    let mut w = World {
        services: (0..2000)
            .map(|i| {
                service(
                    &format!("svc-{i}"),
                    "hosted-app",
                    "acme",
                    vec![check("home", true)],
                )
            })
            .collect(),
    };
    for i in 0..2000 {
        w.down(&format!("svc-{i}"), "home", t(0));
    }
    let first = rules.evaluate(&w.view(t(60)));
    assert_eq!(first.get("ServiceDown").len(), 2000);
    let fired = rules.changes();
    assert_eq!(
        fired
            .iter()
            .filter(|c| c.alert().name() == "ServiceDown")
            .count(),
        2000
    );
    // Still down a tick later: the same alerts, shared rather than copied
    // (the dispatcher keeps the set too, so a copy per tick adds up).
    let second = rules.evaluate(&w.view(t(65)));
    assert_eq!(second.len(), first.len());
    for (a, b) in first.alerts.iter().zip(&second.alerts) {
        assert!(Arc::ptr_eq(a, b), "{} was copied", a.fingerprint());
    }
    assert!(rules.changes().is_empty());
    for i in 0..2000 {
        w.up(&format!("svc-{i}"), "home");
    }
    let after = rules.evaluate(&w.view(t(70)));
    assert!(after.get("ServiceDown").is_empty());
    let changes = rules.changes();
    assert_eq!(changes.len(), 2000);
    assert!(changes.iter().all(|c| !c.is_firing()));
}

#[test]
fn a_flapping_check_stays_one_incident_and_is_marked_flapping() {
    let s = spec("  flapping: { changes: 4, window: 30m, notify_every: 30m }");
    let mut rules = AlertRules::new(&s);
    let mut w = World::new();
    let mut notifications = Vec::new();
    // Down and up every minute for 20 minutes.
    for minute in 0..20 {
        if minute % 2 == 0 {
            w.down("portal", "home", t(minute * MIN));
        } else {
            w.up("portal", "home");
        }
        let set = rules.evaluate(&w.view(t(minute * MIN)));
        if minute >= 5 {
            let down = set.get("ServiceDown");
            assert_eq!(down.len(), 1, "minute {minute}: held firing while flapping");
            assert_eq!(down[0].annotations["flapping"], "true");
            assert!(down[0].annotations["summary"].ends_with("(flapping)"));
        }
        notifications.extend(change_summary(&rules.changes()));
    }
    assert_eq!(
        notifications,
        [
            "firing ServiceDown",
            "resolved ServiceDown",
            "firing ServiceDown",
            "resolved ServiceDown",
            "firing ServiceDown",
        ],
        "nothing more once it is known to flap"
    );
    assert_eq!(
        rules.flapping_checks(),
        [("portal".to_string(), "home".to_string())]
    );

    // It settles (up); after the window it is no longer flapping and resolves.
    w.up("portal", "home");
    rules.evaluate(&w.view(t(30 * MIN)));
    assert!(rules.changes().is_empty(), "still flapping at 30m");
    rules.evaluate(&w.view(t(50 * MIN)));
    assert_eq!(change_summary(&rules.changes()), ["resolved ServiceDown"]);
    assert!(rules.flapping_checks().is_empty());
}

#[test]
fn a_check_removed_by_a_reload_is_no_longer_tracked_as_flapping() {
    let s = spec("  flapping: { changes: 2, window: 30m, notify_every: 30m }");
    let mut rules = AlertRules::new(&s);
    let mut w = World::new();
    for minute in 0..6 {
        if minute % 2 == 0 {
            w.down("portal", "home", t(minute * MIN));
        } else {
            w.up("portal", "home");
        }
        rules.evaluate(&w.view(t(minute * MIN)));
    }
    assert_eq!(
        rules.flapping_checks(),
        [("portal".to_string(), "home".to_string())]
    );
    // The reload drops the check; other checks keep their tracking.
    w.svc("portal").checks.retain(|c| c.id != "home");
    rules.evaluate(&w.view(t(7 * MIN)));
    assert!(rules.flapping_checks().is_empty());
    // Back again, it starts from a clean history.
    w.svc("portal").checks.push(check("home", true));
    rules.evaluate(&w.view(t(8 * MIN)));
    assert!(rules.flapping_checks().is_empty());
}
#[test]
fn flapping_alerts_notify_at_most_once_per_notify_every() {
    let s = spec("  flapping: { changes: 1, window: 30m, notify_every: 30m }");
    let mut rules = AlertRules::new(&s);
    let mut w = World::new();
    w.down("portal", "home", t(0));
    rules.evaluate(&w.view(t(0)));
    w.up("portal", "home");
    rules.evaluate(&w.view(t(MIN)));
    assert_eq!(
        change_summary(&rules.changes()),
        ["firing ServiceDown", "resolved ServiceDown"]
    );
    // Down again two minutes later: flapping now, and receivers heard
    // about this alert a minute ago, so they wait.
    w.down("portal", "home", t(2 * MIN));
    let set = rules.evaluate(&w.view(t(2 * MIN)));
    assert_eq!(
        set.get("ServiceDown").len(),
        1,
        "Alertmanager still sees it"
    );
    assert!(rules.changes().is_empty());
    rules.evaluate(&w.view(t(30 * MIN)));
    assert!(rules.changes().is_empty());
    rules.evaluate(&w.view(t(31 * MIN)));
    let changes = rules.changes();
    assert_eq!(change_summary(&changes), ["firing ServiceDown"]);
    assert_eq!(changes[0].alert().annotations["flapping"], "true");
}

// --------------------------------------------------------- configuration

#[test]
fn receivers_take_alerts_by_severity_and_matchers() {
    let s = spec(
        r#"  receivers:
    - name: telephony-desk
      min_severity: ticket
      matchers: { category: telephony }
      webhook: { url: "https://hooks.example.org/telephony" }
    - name: portals
      min_severity: page
      matchers: { service: "=~portal|phone", supplier: "!=telco" }
      slack: { url: "https://hooks.slack.example.org/T0/B0/x" }
    - name: machines
      min_severity: none
      matchers: { alertname: "!~Watchdog" }
      teams: { url: "https://prod.example.org/workflows/1" }"#,
    );
    let r = |name: &str| {
        s.receivers()
            .iter()
            .find(|r| r.name == name)
            .unwrap()
            .clone()
    };
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let phone = labels(&[
        ("alertname", "ServiceDown"),
        ("category", "telephony"),
        ("service", "phone"),
        ("supplier", "telco"),
    ]);
    let portal = labels(&[
        ("alertname", "ServiceDown"),
        ("category", "portal"),
        ("service", "portal"),
        ("supplier", "acme"),
    ]);
    let watchdog = labels(&[("alertname", "Watchdog")]);

    let desk = r("telephony-desk");
    assert!(desk.wants(Severity::Page, &phone));
    assert!(desk.wants(Severity::Ticket, &phone));
    assert!(!desk.wants(Severity::None, &phone), "below min_severity");
    assert!(!desk.wants(Severity::Page, &portal), "other category");
    assert!(desk.send_resolved, "send_resolved defaults to true");

    let portals = r("portals");
    assert!(portals.wants(Severity::Page, &portal));
    assert!(!portals.wants(Severity::Ticket, &portal));
    assert!(!portals.wants(Severity::Page, &phone), "supplier != telco");

    let machines = r("machines");
    assert!(machines.wants(Severity::None, &portal));
    assert!(!machines.wants(Severity::None, &watchdog));
}

#[test]
fn secrets_come_from_files_and_never_show_in_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("teams-url");
    std::fs::write(&url_file, "https://prod.example.org/workflows/secret-sig\n").unwrap();
    let pw_file = dir.path().join("smtp-password");
    std::fs::write(&pw_file, "hunter2\n").unwrap();
    let s = spec(&format!(
        r#"  receivers:
    - name: desk
      teams: {{ url_file: "{}" }}
    - name: mail
      email:
        smtp: smtp.example.org
        username: continuity
        password_file: "{}"
        from: "continuity <continuity@example.org>"
        to: [oncall@example.org]"#,
        url_file.display(),
        pw_file.display()
    ));
    let Channel::Teams(desk) = &s.receivers()[0].channel else {
        panic!("desk is a Teams receiver");
    };
    assert_eq!(
        desk.url.expose(),
        "https://prod.example.org/workflows/secret-sig"
    );
    let Channel::Email(mail) = &s.receivers()[1].channel else {
        panic!("mail is an e-mail receiver");
    };
    assert_eq!(mail.password.as_ref().unwrap().expose(), "hunter2");
    assert_eq!((mail.host.as_str(), mail.port), ("smtp.example.org", 587));
    let debug = format!("{s:?}");
    assert!(
        !debug.contains("secret-sig") && !debug.contains("hunter2"),
        "{debug}"
    );
}

#[test]
fn bad_alerting_configuration_is_reported_at_its_place_with_a_fix() {
    let cases = [
        (
            "  canaries: [monitr-canary/gateway]",
            "canary 'monitr-canary/gateway' names unknown service 'monitr-canary' (did you mean 'monitor-canary'?)",
        ),
        ("  canaries: [gateway]", "is not service-id/check-id"),
        (
            "  alertmanagers: [am.example.org:9093]",
            "is not an http(s) URL",
        ),
        (
            "  burn_rate: { page: [{factor: 14.4, long: 90m, short: 5m}] }",
            "long window 1h30m is not one the SLA engine computes",
        ),
        (
            "  burn_rate: { page: [{factor: 14.4, long: 5m, short: 1h}] }",
            "is not shorter than long window",
        ),
        (
            "  certificate: { ticket_days: 3, page_days: 14 }",
            "page_days (14) is more than ticket_days (3)",
        ),
        (
            "  receivers: [{name: a, webhook: {url: 'https://x.example.org'}, slack: {url: 'https://y.example.org'}}]",
            "receiver 'a' has 2 channel blocks",
        ),
        (
            "  receivers: [{name: a, matchers: {service: '=~(portal'}, webhook: {url: 'https://x.example.org'}}]",
            "is not a valid regex",
        ),
        (
            "  receivers: [{name: a, matchers: {categry: portal}, webhook: {url: 'https://x.example.org'}}]",
            "matcher on unknown label 'categry' (did you mean 'category'?)",
        ),
        (
            "  receivers: [{name: a, matchers: {category: telefony}, webhook: {url: 'https://x.example.org'}}]",
            "no service has category 'telefony'",
        ),
        (
            "  receivers: [{name: a, webhook: {}}]",
            "receiver 'a': webhook has no url",
        ),
        (
            "  receivers: [{name: a, slack: {url: 'hooks.slack.com/x'}}]",
            "slack url is not an http(s) URL",
        ),
        (
            "  receivers: [{name: m, email: {smtp: 'smtp.example.org:25', tls: none, username: u, password: p, from: 'a@example.org', to: ['b@example.org']}}]",
            "would send the SMTP password in clear text",
        ),
        (
            "  receivers: [{name: m, email: {smtp: smtp.example.org, from: 'not an address', to: ['b@example.org']}}]",
            "from 'not an address' is not an e-mail address",
        ),
        (
            "  receivers: [{name: a, group_by: [suplier], webhook: {url: 'https://x.example.org'}}]",
            "group_by on unknown label 'suplier' (did you mean 'supplier'?)",
        ),
        (
            "  receivers: [{name: a, group_by: ['...', service], webhook: {url: 'https://x.example.org'}}]",
            "group_by '...' cannot be combined with labels",
        ),
        (
            "  receivers: [{name: a, group_by: [service, service], webhook: {url: 'https://x.example.org'}}]",
            "group_by lists 'service' twice",
        ),
        (
            "  receivers: [{name: a, group_wait: 30 seconds, webhook: {url: 'https://x.example.org'}}]",
            "30 seconds",
        ),
        ("  resend_intervall: 1m", "unknown field 'resend_intervall'"),
    ];
    for (yaml, expected) in cases {
        let err = load_err(yaml);
        assert!(
            err.contains(expected),
            "for {yaml}\nexpected: {expected}\ngot: {err}"
        );
        assert!(
            err.contains("/tmp/continuity-alerting-test.yaml:"),
            "errors carry the file: {err}"
        );
    }
    // A secret URL is never echoed in an error.
    let err = load_err("  receivers: [{name: a, slack: {url: 'hooks.slack.com/T0/secret'}}]");
    assert!(!err.contains("secret"), "{err}");
}

#[test]
fn a_bad_group_by_is_reported_at_its_line_and_column() {
    let err = load_err(
        "  receivers:\n    - name: ops\n      group_by: [supplier, categroy]\n      webhook: {url: 'https://x.example.org'}",
    );
    // main_yaml puts three lines before `alerting:`, so group_by is on line 7.
    assert!(
        err.contains("/tmp/continuity-alerting-test.yaml:7:"),
        "the place of group_by: {err}"
    );
    assert!(err.contains("did you mean 'category'?"), "{err}");
}

#[test]
fn defaults_match_the_documentation() {
    let s = AlertingSpec::default();
    assert_eq!(s.resend_interval(), Duration::from_secs(60));
    assert_eq!(s.resolved_resend_for(), Duration::from_secs(900));
    assert_eq!(s.degraded_for(), Duration::from_secs(300));
    assert_eq!(s.notification_ttl(), Duration::from_secs(86400));
    assert_eq!(s.certificate.ticket_days.value, 14);
    assert_eq!(s.certificate.page_days.value, 3);
    assert_eq!(s.flapping.changes.value, 4);
    let page: Vec<(f64, String, String)> = s
        .burn_rate
        .page
        .iter()
        .map(|w| {
            (
                w.value.factor,
                w.value.long.to_string(),
                w.value.short.to_string(),
            )
        })
        .collect();
    assert_eq!(
        page,
        [
            (14.4, "1h".to_string(), "5m".to_string()),
            (6.0, "6h".to_string(), "30m".to_string())
        ]
    );
    // An empty section is the same as none.
    assert_eq!(spec("  {}"), AlertingSpec::default());
}

// -------------------------------------------------------------- payloads

/// A ServiceDown as the rules raise it, at fixed times.
fn fixture_alert() -> Alert {
    let mut rules = AlertRules::new(&AlertingSpec::default());
    let mut w = World::new();
    w.down("portal", "home", t(-150));
    rules.evaluate(&w.view(t(0))).get("ServiceDown")[0].clone()
}

fn fixture_notifications() -> (Notification, Notification) {
    let a = fixture_alert();
    let incident = a.incident_id();
    let firing = Notification::new(Status::Firing, &incident, "desk", &a, None, None);
    let resolved = Notification::new(
        Status::Resolved,
        &incident,
        "desk",
        &a,
        Some(t(600)),
        Some("resolved: maintenance CHG-2026-0142 started".into()),
    );
    (firing, resolved)
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alerts")
}

/// Compare with a fixture; `CONTINUITY_UPDATE_FIXTURES=1` rewrites it
/// (review the diff before committing).
fn assert_fixture(name: &str, got: &Value) {
    let path = fixture_dir().join(name);
    if std::env::var_os("CONTINUITY_UPDATE_FIXTURES").is_some() {
        std::fs::create_dir_all(fixture_dir()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(got).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (CONTINUITY_UPDATE_FIXTURES=1 writes it)",
            path.display()
        )
    });
    let want: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        got,
        &want,
        "{name} differs from the fixture:\n{}",
        serde_json::to_string_pretty(got).unwrap()
    );
}

#[test]
fn webhook_payload_matches_its_documented_schema() {
    let (firing, resolved) = fixture_notifications();
    let body = notify::webhook::render(&firing);
    assert_fixture("webhook-firing.json", &body);
    assert_fixture("webhook-resolved.json", &notify::webhook::render(&resolved));
    for field in [
        "version",
        "status",
        "idempotency_key",
        "incident",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "note",
    ] {
        assert!(body.get(field).is_some(), "schema field {field}");
    }
    assert_eq!(body["startsAt"], "2026-03-02T08:57:30Z");
}

#[test]
fn slack_payload_has_text_and_a_coloured_attachment() {
    let (firing, resolved) = fixture_notifications();
    let body = notify::slack::render(&firing);
    assert_fixture("slack-firing.json", &body);
    assert_eq!(body["attachments"][0]["color"], "#d00000");
    let body = notify::slack::render(&resolved);
    assert_fixture("slack-resolved.json", &body);
    assert!(
        body["attachments"][0]["text"]
            .as_str()
            .unwrap()
            .contains("maintenance CHG-2026-0142")
    );
}

#[test]
fn teams_payload_is_an_adaptive_card_message() {
    let (firing, resolved) = fixture_notifications();
    let body = notify::teams::render(&firing);
    assert_fixture("teams-firing.json", &body);
    assert_fixture("teams-resolved.json", &notify::teams::render(&resolved));
    assert_eq!(body["type"], "message");
    let att = &body["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(att["content"]["type"], "AdaptiveCard");
    assert_eq!(att["content"]["version"], "1.4");
    let actions: Vec<&str> = att["content"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["Runbook", "Status"]);
}

// ------------------------------------------------------------ local sinks

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: http::HeaderMap,
    body: Value,
}

/// A local HTTP server that records JSON POSTs, and can be told to fail.
#[derive(Clone, Default)]
struct HttpSink {
    got: Arc<Mutex<Vec<Received>>>,
    fail_next: Arc<AtomicUsize>,
    fail_always: Arc<std::sync::atomic::AtomicBool>,
    addr: Arc<Mutex<Option<SocketAddr>>>,
}

impl HttpSink {
    async fn start() -> HttpSink {
        let sink = HttpSink::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        *sink.addr.lock().unwrap() = Some(listener.local_addr().unwrap());
        let state = sink.clone();
        let app = axum::Router::new().fallback(
            move |uri: http::Uri, headers: http::HeaderMap, body: bytes::Bytes| {
                let s = state.clone();
                async move {
                    if s.fail_always.load(Ordering::SeqCst) {
                        return http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    if s.fail_next
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    s.got.lock().unwrap().push(Received {
                        path: uri.path().to_string(),
                        headers,
                        body,
                    });
                    http::StatusCode::OK
                }
            },
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        sink
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr.lock().unwrap().unwrap())
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

async fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ok() {
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fast() -> DispatchOptions {
    DispatchOptions {
        poll: Duration::from_millis(20),
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        http_timeout: Duration::from_secs(2),
        reconcile_after: Duration::from_millis(300),
        ..DispatchOptions::default()
    }
}

fn metric(t: &Telemetry, line_start: &str) -> Option<f64> {
    t.render(false)
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn notifications(t: &Telemetry, receiver: &str, result: &str) -> f64 {
    metric(
        t,
        &format!("continuity_notifications_total{{receiver=\"{receiver}\",result=\"{result}\"}}"),
    )
    .unwrap_or(0.0)
}

fn hook_spec(sink: &HttpSink) -> AlertingSpec {
    spec(&format!(
        "  receivers:\n    - name: hook\n      group_by: ['...']\n      group_wait: 0s\n      group_interval: 0s\n      webhook: {{ url: \"{}\", headers: {{ X-Token: abc }} }}",
        sink.url("/hook")
    ))
}

/// Evaluate and hand the result to the dispatcher, as the engine does.
fn tick(rules: &mut AlertRules, d: &Dispatcher, view: &AlertView) -> AlertSet {
    let set = rules.evaluate(view);
    d.update(&set, rules.changes());
    set
}

fn statuses(got: &[Received]) -> Vec<String> {
    got.iter()
        .map(|r| {
            format!(
                "{} {}",
                r.body["status"].as_str().unwrap_or("?"),
                r.body["labels"]["alertname"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

// ------------------------------------------------------- outbox delivery

#[tokio::test]
async fn webhook_gets_each_change_once_after_retries_with_an_idempotency_key() {
    let sink = HttpSink::start().await;
    sink.fail_next.store(2, Ordering::SeqCst);
    let telemetry = Arc::new(Telemetry::new());
    let outbox = Arc::new(MemoryOutbox::new());
    let d = Dispatcher::start_with(&hook_spec(&sink), outbox.clone(), telemetry.clone(), fast())
        .unwrap();
    let mut rules = AlertRules::new(&AlertingSpec::default());
    let mut w = World::new();
    let now = Timestamp::now();
    w.down("portal", "home", now - jiff::SignedDuration::from_secs(90));
    tick(&mut rules, &d, &w.view(now));
    tick(&mut rules, &d, &w.view(now));
    wait_until("the firing arrives", Duration::from_secs(5), || {
        !sink.got().is_empty()
    })
    .await;
    let first = &sink.got()[0];
    assert_eq!(first.path, "/hook");
    assert_eq!(first.body["status"], "firing");
    assert_eq!(first.body["receiver"], "hook");
    let key = first.body["idempotency_key"].as_str().unwrap().to_string();
    assert_eq!(first.headers["idempotency-key"], key.as_str());
    assert_eq!(first.headers["x-token"], "abc");
    assert_eq!(notifications(&telemetry, "hook", "failed"), 2.0);
    // Counted just after the sink answered.
    wait_until("the delivery counted", Duration::from_secs(5), || {
        notifications(&telemetry, "hook", "delivered") == 1.0
    })
    .await;
    assert_eq!(
        metric(
            &telemetry,
            "continuity_alerts_firing{alertname=\"ServiceDown\",severity=\"page\"}"
        ),
        Some(1.0)
    );

    w.up("portal", "home");
    tick(&mut rules, &d, &w.view(Timestamp::now()));
    wait_until("the resolution arrives", Duration::from_secs(5), || {
        sink.got().len() == 2
    })
    .await;
    let second = &sink.got()[1];
    assert_eq!(second.body["status"], "resolved");
    assert_eq!(second.body["incident"], first.body["incident"]);
    assert!(second.body["endsAt"].is_string());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.got().len(), 2, "nothing is sent twice");
    assert!(
        outbox
            .all()
            .iter()
            .all(|i| i.state == OutboxState::Delivered)
    );
    assert_eq!(
        metric(&telemetry, "continuity_notification_queue_length"),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &telemetry,
            "continuity_alerts_firing{alertname=\"ServiceDown\",severity=\"page\"}"
        ),
        Some(0.0)
    );
    d.shutdown().await;
}

#[tokio::test]
async fn after_maintenance_an_alert_that_fires_again_is_a_new_incident_for_receivers() {
    let sink = HttpSink::start().await;
    let telemetry = Arc::new(Telemetry::new());
    let d = Dispatcher::start_with(
        &hook_spec(&sink),
        Arc::new(MemoryOutbox::new()),
        telemetry,
        fast(),
    )
    .unwrap();
    let mut rules = AlertRules::new(&AlertingSpec::default());
    let mut w = World::new();
    let start = Timestamp::now() - jiff::SignedDuration::from_secs(60);
    w.down("portal", "home", start);
    tick(&mut rules, &d, &w.view(Timestamp::now()));
    wait_until("the firing", Duration::from_secs(5), || {
        sink.got().len() == 1
    })
    .await;
    w.svc("portal").maintenance = Some(MaintenanceView {
        reference: "CHG-2026-0142".into(),
        effect: MaintenanceEffect::Exclude,
    });
    tick(&mut rules, &d, &w.view(Timestamp::now()));
    wait_until("the resolution", Duration::from_secs(5), || {
        sink.got().len() == 2
    })
    .await;
    w.svc("portal").maintenance = None;
    tick(&mut rules, &d, &w.view(Timestamp::now()));
    wait_until("three notifications", Duration::from_secs(5), || {
        sink.got().len() == 3
    })
    .await;
    let got = sink.got();
    assert_eq!(
        statuses(&got),
        [
            "firing ServiceDown",
            "resolved ServiceDown",
            "firing ServiceDown"
        ]
    );
    assert_eq!(
        got[1].body["note"],
        "resolved: maintenance CHG-2026-0142 started"
    );
    assert_ne!(
        got[2].body["incident"], got[0].body["incident"],
        "the same down_since, but a new incident"
    );
    d.shutdown().await;
}

#[tokio::test]
async fn a_resolution_supersedes_a_firing_that_could_not_be_delivered() {
    let sink = HttpSink::start().await;
    sink.fail_always.store(true, Ordering::SeqCst);
    let telemetry = Arc::new(Telemetry::new());
    let d = Dispatcher::start_with(
        &hook_spec(&sink),
        Arc::new(MemoryOutbox::new()),
        telemetry.clone(),
        fast(),
    )
    .unwrap();
    let mut rules = AlertRules::new(&AlertingSpec::default());
    let mut w = World::new();
    w.down("portal", "home", Timestamp::now());
    tick(&mut rules, &d, &w.view(Timestamp::now()));
    wait_until("a failed attempt", Duration::from_secs(5), || {
        notifications(&telemetry, "hook", "failed") >= 1.0
    })
    .await;
    w.up("portal", "home");
    tick(&mut rules, &d, &w.view(Timestamp::now()));
    sink.fail_always.store(false, Ordering::SeqCst);
    wait_until("a delivery", Duration::from_secs(5), || {
        !sink.got().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        statuses(&sink.got()),
        ["resolved ServiceDown"],
        "the receiver never sees a firing after its resolution"
    );
    d.shutdown().await;
}

#[tokio::test]
async fn a_restarted_dispatcher_neither_repeats_a_firing_nor_forgets_the_resolution() {
    let sink = HttpSink::start().await;
    let outbox = Arc::new(MemoryOutbox::new());
    let spec = hook_spec(&sink);
    let now = Timestamp::now();
    let mut w = with_burn(&[]);
    w.down("portal", "home", now - jiff::SignedDuration::from_secs(300));
    w.svc("portal").slas[0].budget_remaining_ratio = Some(-0.2);

    let first =
        Dispatcher::start_with(&spec, outbox.clone(), Arc::new(Telemetry::new()), fast()).unwrap();
    let mut rules = AlertRules::new(&AlertingSpec::default());
    tick(&mut rules, &first, &w.view(now));
    wait_until("two firings", Duration::from_secs(5), || {
        sink.got().len() == 2
    })
    .await;
    first.shutdown().await;

    // The restart: fresh rules and dispatcher, the same store. The SLA
    // breach is seen anew two minutes later, so its startsAt moved.
    let second =
        Dispatcher::start_with(&spec, outbox.clone(), Arc::new(Telemetry::new()), fast()).unwrap();
    let mut rules = AlertRules::new(&AlertingSpec::default());
    let later = now + jiff::SignedDuration::from_secs(120);
    let set = tick(&mut rules, &second, &w.view(later));
    assert_eq!(set.get("SLABreached").len(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut got = statuses(&sink.got());
    got.sort();
    assert_eq!(
        got,
        ["firing SLABreached", "firing ServiceDown"],
        "no second firing after the restart"
    );

    w.up("portal", "home");
    w.svc("portal").slas[0].budget_remaining_ratio = Some(0.5);
    tick(
        &mut rules,
        &second,
        &w.view(later + jiff::SignedDuration::from_secs(30)),
    );
    wait_until("two resolutions", Duration::from_secs(5), || {
        sink.got().len() == 4
    })
    .await;
    let got = sink.got();
    for resolved in &got[2..] {
        assert_eq!(resolved.body["status"], "resolved");
        let fired = got[..2]
            .iter()
            .find(|f| f.body["labels"] == resolved.body["labels"])
            .expect("resolution of a firing");
        assert_eq!(
            resolved.body["incident"], fired.body["incident"],
            "the resolution closes the incident announced before the restart"
        );
    }
    second.shutdown().await;
}

#[tokio::test]
async fn incidents_that_ended_while_the_monitor_was_down_are_resolved_after_the_restart() {
    let sink = HttpSink::start().await;
    let outbox = Arc::new(MemoryOutbox::new());
    let spec = hook_spec(&sink);
    let mut w = World::new();
    w.down("portal", "home", Timestamp::now());
    let first =
        Dispatcher::start_with(&spec, outbox.clone(), Arc::new(Telemetry::new()), fast()).unwrap();
    tick(
        &mut AlertRules::new(&AlertingSpec::default()),
        &first,
        &w.view(Timestamp::now()),
    );
    wait_until("the firing", Duration::from_secs(5), || {
        sink.got().len() == 1
    })
    .await;
    first.shutdown().await;

    w.up("portal", "home");
    let second = Dispatcher::start_with(&spec, outbox, Arc::new(Telemetry::new()), fast()).unwrap();
    let mut rules = AlertRules::new(&AlertingSpec::default());
    tick(&mut rules, &second, &w.view(Timestamp::now()));
    wait_until("the resolution", Duration::from_secs(5), || {
        sink.got().len() == 2
    })
    .await;
    let resolved = &sink.got()[1];
    assert_eq!(resolved.body["status"], "resolved");
    assert_eq!(
        resolved.body["note"],
        "resolved: no longer firing after continuity restarted"
    );
    assert_eq!(resolved.body["incident"], sink.got()[0].body["incident"]);
    second.shutdown().await;
}

// ------------------------------------------------------------ grouping

/// A `ServiceDown` for service `id` of `supplier` and `category`, as the
/// rules raise it.
fn down_alert(id: &str, supplier: &str, category: &str) -> Alert {
    let labels: BTreeMap<String, String> = [
        ("alertname", "ServiceDown"),
        ("severity", "page"),
        ("location", "test-loc"),
        ("service", id),
        ("check", "home"),
        ("supplier", supplier),
        ("category", category),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".to_string(), format!("{id} is down"));
    Alert {
        labels,
        annotations,
        starts_at: t(0),
        generator_url: None,
    }
}

/// Seven services of acme's portals and three of telco's phones.
fn supplier_outage() -> Vec<Alert> {
    (0..10)
        .map(|i| {
            let (supplier, category) = if i < 7 {
                ("acme", "portal")
            } else {
                ("telco", "phone")
            };
            down_alert(&format!("svc-{i}"), supplier, category)
        })
        .collect()
}

fn firing_set(alerts: &[Alert]) -> AlertSet {
    AlertSet {
        at: Some(Timestamp::now()),
        alerts: alerts.iter().cloned().map(Arc::new).collect(),
    }
}

fn grouped_hook_spec(sink: &HttpSink, wait: &str) -> AlertingSpec {
    spec(&format!(
        "  receivers:\n    - name: hook\n      group_wait: {wait}\n      group_interval: 1s\n      webhook: {{ url: \"{}\" }}",
        sink.url("/hook")
    ))
}

/// The services a grouped webhook body lists, sorted.
fn listed(body: &Value) -> Vec<String> {
    let mut out: Vec<String> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["service"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_supplier_wide_outage_is_one_message_per_group_and_so_is_its_resolution() {
    let sink = HttpSink::start().await;
    let d = Dispatcher::start_with(
        &grouped_hook_spec(&sink, "300ms"),
        Arc::new(MemoryOutbox::new()),
        Arc::new(Telemetry::new()),
        fast(),
    )
    .unwrap();
    let alerts = supplier_outage();
    // The outage is seen over several evaluations, as checks fail one by one.
    for chunk in alerts.chunks(4) {
        let changes: Vec<AlertChange> = chunk.iter().cloned().map(AlertChange::Firing).collect();
        d.update(&firing_set(&alerts), changes.clone());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_until("two group messages", Duration::from_secs(5), || {
        sink.got().len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let got = sink.got();
    assert_eq!(got.len(), 2, "one message per group");
    let by_group: BTreeMap<String, &Received> = got
        .iter()
        .map(|r| (r.body["groupKey"].as_str().unwrap().to_string(), r))
        .collect();
    let acme = by_group[r#"{category="portal",supplier="acme"}"#];
    assert_eq!(listed(&acme.body).len(), 7);
    assert_eq!(acme.body["status"], "firing");
    assert_eq!(acme.body["groupLabels"]["supplier"], "acme");
    assert_eq!(
        acme.headers["idempotency-key"].to_str().unwrap(),
        acme.body["idempotency_key"].as_str().unwrap()
    );
    let telco = by_group[r#"{category="phone",supplier="telco"}"#];
    assert_eq!(listed(&telco.body), ["svc-7", "svc-8", "svc-9"]);

    let resolutions: Vec<AlertChange> = alerts
        .iter()
        .cloned()
        .map(|alert| AlertChange::Resolved {
            alert,
            ended_at: Timestamp::now(),
            note: None,
        })
        .collect();
    d.update(&firing_set(&[]), resolutions);
    wait_until("two resolution messages", Duration::from_secs(5), || {
        sink.got().len() == 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let got = sink.got();
    assert_eq!(got.len(), 4, "resolutions grouped the same way");
    for r in &got[2..] {
        assert_eq!(r.body["status"], "resolved");
        let n = listed(&r.body).len();
        assert!(n == 7 || n == 3, "{n} services in one resolution message");
    }
    d.shutdown().await;
}

#[tokio::test]
async fn an_outage_is_one_mail_per_group_listing_its_services() {
    let (addr, mails) = smtp_sink(None).await;
    let s = spec(&format!(
        r#"  receivers:
    - name: oncall-mail
      group_wait: 200ms
      email:
        smtp: "{addr}"
        tls: none
        from: "continuity <continuity@example.org>"
        to: [oncall@example.org]"#
    ));
    let d = Dispatcher::start_with(
        &s,
        Arc::new(MemoryOutbox::new()),
        Arc::new(Telemetry::new()),
        fast(),
    )
    .unwrap();
    let alerts = supplier_outage();
    let changes: Vec<AlertChange> = alerts.iter().cloned().map(AlertChange::Firing).collect();
    d.update(&firing_set(&alerts), changes.clone());
    wait_until("two mails", Duration::from_secs(5), || {
        mails.lock().unwrap().len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 2);
    let acme = mails
        .iter()
        .map(|m| parse_mail(&m.data))
        .find(|p| p.header("Subject").contains("supplier=acme"))
        .expect("a mail for acme's portals");
    assert_eq!(
        acme.header("Subject"),
        "[FIRING:7] ServiceDown (page): category=portal, supplier=acme"
    );
    let text = &acme.parts["text/plain"];
    for i in 0..7 {
        assert!(text.contains(&format!("svc-{i} is down")), "{text}");
    }
    assert!(!text.contains("svc-7"), "{text}");
    d.shutdown().await;
}

#[tokio::test]
async fn a_group_waiting_at_shutdown_is_sent_once_after_the_restart() {
    let sink = HttpSink::start().await;
    let outbox = Arc::new(MemoryOutbox::new());
    let spec = grouped_hook_spec(&sink, "500ms");
    let alerts = supplier_outage();
    let changes: Vec<AlertChange> = alerts.iter().cloned().map(AlertChange::Firing).collect();

    let first =
        Dispatcher::start_with(&spec, outbox.clone(), Arc::new(Telemetry::new()), fast()).unwrap();
    first.update(&firing_set(&alerts), changes.clone());
    first.shutdown().await;
    assert!(sink.got().is_empty(), "the group was still waiting");

    let second =
        Dispatcher::start_with(&spec, outbox.clone(), Arc::new(Telemetry::new()), fast()).unwrap();
    // The rules of the new process see the same alerts fire again.
    second.update(&firing_set(&alerts), changes.clone());
    wait_until("the two group messages", Duration::from_secs(5), || {
        sink.got().len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.got().len(), 2, "nothing sent twice");
    let mut all: Vec<String> = sink.got().iter().flat_map(|r| listed(&r.body)).collect();
    all.sort();
    assert_eq!(all.len(), 10);
    assert_eq!(outbox.all().len(), 10, "one outbox row per alert");
    second.shutdown().await;
}

// ------------------------------------------------ outbox off the main loop

/// An outbox whose disk is slow: queued items reach the store (and become
/// visible to delivery) only when the test says so, or never.
struct SlowDisk {
    inner: MemoryOutbox,
    held: Mutex<Vec<(Vec<NewItem>, tokio::sync::oneshot::Sender<()>)>>,
    offered: AtomicUsize,
}

impl SlowDisk {
    fn new() -> SlowDisk {
        SlowDisk {
            inner: MemoryOutbox::new(),
            held: Mutex::new(Vec::new()),
            offered: AtomicUsize::new(0),
        }
    }

    /// The disk catches up: everything held is written.
    fn catch_up(&self) {
        for (items, done) in self.held.lock().unwrap().drain(..) {
            let _ = futures::executor::block_on(self.inner.enqueue_all(&items));
            let _ = done.send(());
        }
    }
}

impl OutboxStore for SlowDisk {
    fn enqueue(
        &self,
        key: &str,
        receiver: &str,
        payload: &Value,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool, OutboxError> {
        self.inner.enqueue(key, receiver, payload, now, expires_at)
    }
    fn enqueue_all(&self, items: &[NewItem]) -> Durable {
        self.offered.fetch_add(items.len(), Ordering::SeqCst);
        let (done, written) = tokio::sync::oneshot::channel();
        self.held.lock().unwrap().push((items.to_vec(), done));
        Box::pin(async move {
            written
                .await
                .map_err(|_| OutboxError("the disk is gone".into()))
        })
    }
    fn settle(&self, outcomes: Vec<Settled>) -> Durable {
        self.inner.settle(outcomes)
    }
    fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxItem>, OutboxError> {
        self.inner.due(now, limit)
    }
    fn mark_delivered(&self, id: i64, now: Timestamp) -> Result<(), OutboxError> {
        self.inner.mark_delivered(id, now)
    }
    fn mark_failed(&self, id: i64, next: Timestamp, error: &str) -> Result<(), OutboxError> {
        self.inner.mark_failed(id, next, error)
    }
    fn expire(&self, now: Timestamp) -> Result<Vec<OutboxItem>, OutboxError> {
        self.inner.expire(now)
    }
    fn queue_length(&self) -> Result<usize, OutboxError> {
        self.inner.queue_length()
    }
    fn history(&self, since: Timestamp) -> Result<Vec<OutboxItem>, OutboxError> {
        self.inner.history(since)
    }
}

/// A webhook receiver on a [`SlowDisk`].
async fn on_a_slow_disk() -> (HttpSink, Arc<SlowDisk>, Dispatcher) {
    let sink = HttpSink::start().await;
    let disk = Arc::new(SlowDisk::new());
    let d = Dispatcher::start_with(
        &hook_spec(&sink),
        disk.clone(),
        Arc::new(Telemetry::new()),
        fast(),
    )
    .unwrap();
    (sink, disk, d)
}

#[tokio::test]
async fn a_notification_is_sent_only_once_it_is_on_disk() {
    let (sink, disk, d) = on_a_slow_disk().await;
    let alert = down_alert("portal", "acme", "portal");
    d.update(
        &firing_set(std::slice::from_ref(&alert)),
        vec![AlertChange::Firing(alert.clone())],
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.got().is_empty(), "sent before it was on disk");
    disk.catch_up();
    wait_until("the firing", Duration::from_secs(5), || {
        sink.got().len() == 1
    })
    .await;
    assert_eq!(statuses(&sink.got()), ["firing ServiceDown"]);
    d.shutdown().await;
}

#[tokio::test]
async fn a_store_that_does_not_answer_never_holds_up_the_tick() {
    let (sink, disk, d) = on_a_slow_disk().await;
    let alerts: Vec<Alert> = (0..1000)
        .map(|i| down_alert(&format!("svc-{i}"), "acme", "portal"))
        .collect();
    let changes: Vec<AlertChange> = alerts.iter().cloned().map(AlertChange::Firing).collect();
    let started = std::time::Instant::now();
    d.update(&firing_set(&alerts), changes.clone());
    // Generous for a debug build on a busy machine; writing 1,000 rows
    // one fsync each would take seconds.
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "the tick waited {:?}",
        started.elapsed()
    );
    wait_until(
        "the firings offered to the store",
        Duration::from_secs(5),
        || disk.offered.load(Ordering::SeqCst) == 1000,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sink.got().is_empty());
    // A disk that gives up: the notifications are offered again with the
    // next evaluation, not lost.
    disk.held.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_millis(100)).await;
    d.update(&firing_set(&alerts), Vec::new());
    wait_until("the firings offered again", Duration::from_secs(5), || {
        disk.offered.load(Ordering::SeqCst) == 2000
    })
    .await;
    disk.catch_up();
    wait_until("every firing", Duration::from_secs(10), || {
        sink.got().len() == 1000
    })
    .await;
    d.shutdown().await;
}

#[tokio::test]
async fn email_goes_out_over_smtp_with_auth_as_text_and_html() {
    let (addr, mails) = smtp_sink(None).await;
    let s = spec(&format!(
        r#"  receivers:
    - name: oncall-mail
      group_by: ['...']
      group_wait: 0s
      group_interval: 0s
      email:
        smtp: "{addr}"
        tls: none
        username: continuity
        password: s3cret
        from: "continuity <continuity@example.org>"
        to: [oncall@example.org, desk@example.org]
        subject_prefix: "[continuity]""#
    ));
    let telemetry = Arc::new(Telemetry::new());
    let d = Dispatcher::start_with(&s, Arc::new(MemoryOutbox::new()), telemetry.clone(), fast())
        .unwrap();
    let mut rules = AlertRules::new(&AlertingSpec::default());
    let mut w = World::new();
    w.down("portal", "home", Timestamp::now());
    tick(&mut rules, &d, &w.view(Timestamp::now()));
    wait_until("the mail", Duration::from_secs(10), || {
        mails.lock().unwrap().len() == 1
    })
    .await;
    let mail = mails.lock().unwrap()[0].clone();
    assert_eq!(mail.auth.as_deref(), Some("\0continuity\0s3cret"));
    assert_eq!(mail.from, "continuity@example.org");
    assert_eq!(mail.to, ["oncall@example.org", "desk@example.org"]);
    let parsed = parse_mail(&mail.data);
    assert_eq!(
        parsed.header("Subject"),
        "[continuity] [FIRING] ServiceDown (page): Citizen portal is down: check home fails"
    );
    let firing_id = parsed.header("Message-ID").to_string();
    let text = &parsed.parts["text/plain"];
    assert!(
        text.contains("Critical check home of Citizen portal (portal) has failed since"),
        "{text}"
    );
    assert!(
        text.contains("Runbook: https://wiki.example.org/runbooks/portal"),
        "{text}"
    );
    assert!(text.contains("Supplier: acme"), "{text}");
    let html = &parsed.parts["text/html"];
    assert!(
        html.contains("<a href=\"https://wiki.example.org/runbooks/portal\">Runbook</a>"),
        "{html}"
    );
    assert!(
        html.contains("<th align=\"left\">Check</th><td>home</td>"),
        "{html}"
    );

    w.up("portal", "home");
    tick(&mut rules, &d, &w.view(Timestamp::now()));
    wait_until("the resolution mail", Duration::from_secs(10), || {
        mails.lock().unwrap().len() == 2
    })
    .await;
    let parsed = parse_mail(&mails.lock().unwrap()[1].data);
    assert!(
        parsed
            .header("Subject")
            .starts_with("[continuity] [RESOLVED] ServiceDown")
    );
    assert_eq!(
        parsed.header("In-Reply-To"),
        firing_id,
        "threads under the firing mail"
    );
    // The server has the mail once the SMTP transaction ends; the
    // dispatcher counts the delivery just after that.
    wait_until("both deliveries counted", Duration::from_secs(5), || {
        notifications(&telemetry, "oncall-mail", "delivered") == 2.0
    })
    .await;
    d.shutdown().await;
}

#[tokio::test]
async fn email_uses_starttls_and_trusts_only_the_configured_ca() {
    let ca = support::TestCa::new("continuity test SMTP CA");
    let cert = ca.leaf(&["127.0.0.1"], support::Validity::Current);
    let (addr, mails) = smtp_sink(Some(support::tls_acceptor(&cert))).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path());
    let s = spec(&format!(
        r#"  receivers:
    - name: trusted
      group_by: ['...']
      group_wait: 0s
      group_interval: 0s
      email:
        smtp: "{addr}"
        tls: starttls
        ca_file: "{}"
        username: continuity
        password: s3cret
        from: continuity@example.org
        to: [oncall@example.org]
    - name: untrusted
      group_by: ['...']
      group_wait: 0s
      group_interval: 0s
      email:
        smtp: "{addr}"
        tls: starttls
        from: continuity@example.org
        to: [other@example.org]"#,
        ca_file.display()
    ));
    let telemetry = Arc::new(Telemetry::new());
    let d = Dispatcher::start_with(&s, Arc::new(MemoryOutbox::new()), telemetry.clone(), fast())
        .unwrap();
    let mut rules = AlertRules::new(&AlertingSpec::default());
    let mut w = World::new();
    w.down("portal", "home", Timestamp::now());
    tick(&mut rules, &d, &w.view(Timestamp::now()));
    wait_until(
        "the mail and a refused attempt",
        Duration::from_secs(10),
        || {
            mails.lock().unwrap().len() == 1
                && notifications(&telemetry, "untrusted", "failed") >= 1.0
        },
    )
    .await;
    let mail = mails.lock().unwrap()[0].clone();
    assert!(mail.encrypted, "sent after STARTTLS");
    assert_eq!(mail.to, ["oncall@example.org"]);
    assert_eq!(mail.auth.as_deref(), Some("\0continuity\0s3cret"));
    assert_eq!(
        notifications(&telemetry, "untrusted", "delivered"),
        0.0,
        "a certificate from an unknown CA is refused"
    );
    d.shutdown().await;
}

// ---------------------------------------------------------- Alertmanager

fn alertmanager_binary() -> PathBuf {
    let candidates = ["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"];
    if let Some(p) = candidates.iter().map(PathBuf::from).find(|p| p.exists()) {
        return p;
    }
    if let Some(p) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .flat_map(|d| [d.join("prometheus-alertmanager"), d.join("alertmanager")])
            .find(|p| p.exists())
    }) {
        return p;
    }
    panic!(
        "Alertmanager is not installed: run `apt-get install prometheus-alertmanager` \
         (scripts/test installs it)"
    );
}

/// A real Alertmanager on 127.0.0.1, clustering off, notifying a webhook.
struct Alertmanager {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// On a port of its own.
    async fn start(webhook: &str) -> Alertmanager {
        on_a_free_port("Alertmanager", |port| Self::start_on(port, webhook)).await
    }

    /// On `port`; `None` when it did not come up there.
    async fn start_on(port: u16, webhook: &str) -> Option<Alertmanager> {
        let dir = tempfile::tempdir().unwrap();
        // A receiver no route uses, named after our directory: the status
        // page shows it, so we know the server that answers is ours.
        let ours = format!(
            "unused-{}",
            dir.path().file_name().unwrap().to_string_lossy()
        );
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                r#"route:
  receiver: sink
  group_by: [alertname, service, location]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sink
    webhook_configs:
      - url: "{webhook}"
        send_resolved: true
  - name: "{ours}"
"#
            ),
        )
        .unwrap();
        let child = Command::new(alertmanager_binary())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start alertmanager");
        let mut am = Alertmanager {
            child,
            port,
            _dir: dir,
        };
        let http = notify::http_client(Duration::from_secs(2)).unwrap();
        let status = format!("http://127.0.0.1:{port}/api/v2/status");
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if am.child.try_wait().unwrap().is_some() {
                return None;
            }
            if let Ok(r) = http.get(&status).send().await
                && r.status().is_success()
                && r.text().await.is_ok_and(|text| text.contains(&ours))
            {
                return Some(am);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn am_spec(url: &str) -> AlertingSpec {
    spec(&format!(
        "  alertmanagers: [\"{url}\"]\n  resend_interval: 1s\n  resolved_resend_for: 1m"
    ))
}

/// Alertmanager webhook messages about one alert name, as (status, count).
fn am_messages(sink: &HttpSink, alertname: &str) -> Vec<(String, usize)> {
    sink.got()
        .iter()
        .filter(|r| r.body["groupLabels"]["alertname"] == alertname)
        .map(|r| {
            (
                r.body["status"].as_str().unwrap_or("?").to_string(),
                r.body["alerts"].as_array().map(Vec::len).unwrap_or(0),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_down_and_its_resolution_reach_receivers_through_alertmanager() {
    let sink = HttpSink::start().await;
    let am = Alertmanager::start(&sink.url("/am")).await;
    let telemetry = Arc::new(Telemetry::new());
    let d = Dispatcher::start_with(
        &am_spec(&am.url()),
        Arc::new(MemoryOutbox::new()),
        telemetry.clone(),
        fast(),
    )
    .unwrap();
    let mut rules = AlertRules::new(&AlertingSpec::default());
    let mut w = World::new();
    w.down(
        "portal",
        "home",
        Timestamp::now() - jiff::SignedDuration::from_secs(60),
    );
    tick(&mut rules, &d, &w.view(Timestamp::now()));
    wait_until(
        "ServiceDown via Alertmanager",
        Duration::from_secs(15),
        || am_messages(&sink, "ServiceDown").contains(&("firing".into(), 1)),
    )
    .await;
    let msg = sink
        .got()
        .into_iter()
        .find(|r| r.body["groupLabels"]["alertname"] == "ServiceDown")
        .unwrap();
    let alert = &msg.body["alerts"][0];
    assert_eq!(alert["labels"]["service"], "portal");
    assert_eq!(alert["labels"]["severity"], "page");
    assert_eq!(
        alert["generatorURL"],
        "https://continuity.example.org/api/v1/status?service=portal"
    );
    assert!(
        notifications(
            &telemetry,
            &format!("alertmanager:127.0.0.1:{}", am.port),
            "delivered"
        ) >= 1.0
    );

    w.up("portal", "home");
    tick(&mut rules, &d, &w.view(Timestamp::now()));
    wait_until(
        "the resolution via Alertmanager",
        Duration::from_secs(15),
        || am_messages(&sink, "ServiceDown").contains(&("resolved".into(), 1)),
    )
    .await;
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_reaches_an_alertmanager_that_was_down_during_the_outage() {
    let sink = HttpSink::start().await;
    // Alertmanager's address is known before it runs: the port stays free
    // for a while, and another process could take it (then this test
    // fails saying so, it cannot pick another port).
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let telemetry = Arc::new(Telemetry::new());
    let d = Dispatcher::start_with(
        &am_spec(&url),
        Arc::new(MemoryOutbox::new()),
        telemetry.clone(),
        fast(),
    )
    .unwrap();
    let mut rules = AlertRules::new(&AlertingSpec::default());
    let mut w = World::new();
    w.down("phone", "sip", Timestamp::now());
    tick(&mut rules, &d, &w.view(Timestamp::now()));
    let name = format!("alertmanager:127.0.0.1:{port}");
    wait_until("a failed post", Duration::from_secs(10), || {
        notifications(&telemetry, &name, "failed") >= 2.0
    })
    .await;
    // Alertmanager comes back; nothing new happens at the monitor.
    let _am = Alertmanager::start_on(port, &sink.url("/am"))
        .await
        .unwrap_or_else(|| panic!("Alertmanager did not come back on port {port}"));
    wait_until("the re-sent alert arrives", Duration::from_secs(15), || {
        am_messages(&sink, "ServiceDown").contains(&("firing".into(), 1))
    })
    .await;
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_monitors_sending_the_same_alert_notify_once() {
    let sink = HttpSink::start().await;
    let am = Alertmanager::start(&sink.url("/am")).await;
    let down_since = Timestamp::now() - jiff::SignedDuration::from_secs(120);
    let mut pair = Vec::new();
    for _ in 0..2 {
        let d = Dispatcher::start_with(
            &am_spec(&am.url()),
            Arc::new(MemoryOutbox::new()),
            Arc::new(Telemetry::new()),
            fast(),
        )
        .unwrap();
        let mut rules = AlertRules::new(&AlertingSpec::default());
        let mut w = World::new();
        w.down("portal", "home", down_since);
        tick(&mut rules, &d, &w.view(Timestamp::now()));
        pair.push((d, rules, w));
    }
    wait_until(
        "ServiceDown via Alertmanager",
        Duration::from_secs(15),
        || !am_messages(&sink, "ServiceDown").is_empty(),
    )
    .await;
    // Several resend intervals of both monitors, and group intervals of
    // Alertmanager, go by.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        am_messages(&sink, "ServiceDown"),
        [("firing".to_string(), 1)]
    );
    for (d, _, _) in pair {
        d.shutdown().await;
    }
}

#[test]
fn the_sample_alertmanager_configuration_is_valid() {
    let amtool = alertmanager_binary().with_file_name("amtool");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/alertmanager/alertmanager.yml");
    let out = Command::new(&amtool)
        .arg("check-config")
        .arg(&sample)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e} (apt-get install prometheus-alertmanager)",
                amtool.display()
            )
        });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("3 inhibit rules"), "{text}");
}

#[test]
fn a_certificate_closer_to_expiry_moves_from_ticket_to_page_with_a_note() {
    let mut rules = AlertRules::new(&AlertingSpec::default());
    let mut w = World::new();
    let not_after = BASE + 4 * 86400;
    w.chk("portal", "home").cert_not_after = Some(not_after);
    rules.evaluate(&w.view(t(0)));
    assert_eq!(
        change_summary(&rules.changes()),
        ["firing CertificateExpiring"]
    );
    let set = rules.evaluate(&w.view(t(86400 + 1)));
    assert_eq!(set.get("CertificateExpiring")[0].severity(), Severity::Page);
    let mut changes = change_summary(&rules.changes());
    changes.sort();
    assert_eq!(
        changes,
        [
            "firing CertificateExpiring",
            "resolved CertificateExpiring (resolved: continues at severity page)"
        ]
    );
}

#[tokio::test]
async fn a_notification_that_cannot_be_delivered_expires_after_its_ttl() {
    let sink = HttpSink::start().await;
    sink.fail_always.store(true, Ordering::SeqCst);
    let s = spec(&format!(
        "  notification_ttl: 1s\n  receivers:\n    - name: hook\n      group_by: ['...']\n      group_wait: 0s\n      group_interval: 0s\n      webhook: {{ url: \"{}\" }}",
        sink.url("/hook")
    ));
    let telemetry = Arc::new(Telemetry::new());
    let outbox = Arc::new(MemoryOutbox::new());
    let d = Dispatcher::start_with(&s, outbox.clone(), telemetry.clone(), fast()).unwrap();
    let mut rules = AlertRules::new(&AlertingSpec::default());
    let mut w = World::new();
    w.down("portal", "home", Timestamp::now());
    tick(&mut rules, &d, &w.view(Timestamp::now()));
    wait_until("the notification expires", Duration::from_secs(5), || {
        notifications(&telemetry, "hook", "expired") == 1.0
    })
    .await;
    let items = outbox.all();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].state, OutboxState::Expired);
    assert!(items[0].attempts >= 2, "retried until then");
    assert!(items[0].last_error.as_deref().unwrap().contains("HTTP 503"));
    assert!(notifications(&telemetry, "hook", "failed") >= 2.0);
    d.shutdown().await;
}

#[tokio::test]
async fn a_receiver_added_by_a_reload_hears_what_fires_now() {
    let sink = HttpSink::start().await;
    let d = Dispatcher::start_with(
        &AlertingSpec::default(),
        Arc::new(MemoryOutbox::new()),
        Arc::new(Telemetry::new()),
        fast(),
    )
    .unwrap();
    let mut rules = AlertRules::new(&AlertingSpec::default());
    let mut w = World::new();
    w.down("portal", "home", Timestamp::now());
    tick(&mut rules, &d, &w.view(Timestamp::now()));
    d.apply_config(&hook_spec(&sink));
    wait_until("the firing", Duration::from_secs(5), || {
        sink.got().len() == 1
    })
    .await;
    assert_eq!(statuses(&sink.got()), ["firing ServiceDown"]);
    d.shutdown().await;
}

#[test]
fn the_documented_example_configuration_loads() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/alerting.md"))
            .unwrap();
    let start = doc.find("```yaml\nalerting:\n").expect("example in docs") + 8;
    let example = &doc[start..start + doc[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let teams = dir.path().join("teams-url");
    std::fs::write(&teams, "https://prod.example.org/workflows/1").unwrap();
    let password = dir.path().join("smtp-password");
    std::fs::write(&password, "pw").unwrap();
    let example = example
        .replace(
            "${SLACK_WEBHOOK}",
            "https://hooks.slack.example.org/T0/B0/x",
        )
        .replace("${INCIDENT_TOKEN}", "t0ken")
        .replace("/run/secrets/teams-url", &teams.display().to_string())
        .replace(
            "/run/secrets/smtp-password",
            &password.display().to_string(),
        );
    let text = format!("location: test-loc\n{example}{SERVICES}");
    let config = Config::from_str("/tmp/continuity-docs-example.yaml", &text)
        .unwrap_or_else(|e| panic!("the example in docs/alerting.md does not load:\n{e}"));
    let a = &config.alerting;
    assert_eq!(a.alertmanagers.len(), 2);
    assert_eq!(a.receivers().len(), 4);
    assert_eq!(a.canary_checks.len(), 2);
}
