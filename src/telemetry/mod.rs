//! Every metric continuity exports, declared in one place with its help
//! text, so that names never drift across the code. `docs/metrics.md`
//! documents the same list; dashboards and alerts rely on these names.

mod at_zero;
mod check;
pub mod recording;
mod service;
pub mod text;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockWriteGuard};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use check::{CheckMetrics, CheckTable};
pub use service::{ServiceMetrics, ServiceTable};
pub use text::Format;

use crate::config::Config;
use crate::sla::ServiceState;

pub type GaugeF = Gauge<f64, AtomicU64>;

/// A lock on a cell's numbers. A panic elsewhere while it was held cannot
/// leave them worse than losing the metrics would, so it is used anyway.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The cells of the per-check or per-service series, by key.
#[derive(Debug)]
struct Table<K, C> {
    cells: RwLock<BTreeMap<K, Arc<C>>>,
}

impl<K, C> Default for Table<K, C> {
    fn default() -> Self {
        Table {
            cells: RwLock::new(BTreeMap::new()),
        }
    }
}

impl<K: Ord, C> Table<K, C> {
    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<K, Arc<C>>> {
        self.cells.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The cells as they are now, so that a reload is never blocked
    /// behind a slow scraper.
    fn snapshot(&self) -> Vec<Arc<C>> {
        let cells = self.cells.read().unwrap_or_else(|e| e.into_inner());
        cells.values().cloned().collect()
    }
}

/// The per-check and per-service families. Their series live in compact
/// tables (`check.rs`, `service.rs`) rather than prometheus-client
/// families, and are written first in every scrape.
pub mod names {
    use super::text::{Desc, Kind};

    pub const PROBE_SUCCESS: Desc = Desc {
        name: "continuity_probe_success",
        help: "Whether the last probe of the check succeeded (1) or failed (0)",
        kind: Kind::Gauge,
    };
    pub const PROBE_DURATION: Desc = Desc {
        name: "continuity_probe_duration_seconds",
        help: "Duration of the last probe of the check",
        kind: Kind::Gauge,
    };
    pub const PROBE_PHASE_DURATION: Desc = Desc {
        name: "continuity_probe_phase_duration_seconds",
        help: "Duration of each phase of the last probe (resolve, connect, tls, processing, transfer, response, ringing, answer, rtt)",
        kind: Kind::Gauge,
    };
    pub const PROBE_LATENCY: Desc = Desc {
        name: "continuity_probe_latency_seconds",
        help: "Distribution of probe durations over time",
        kind: Kind::Histogram,
    };
    pub const PROBES: Desc = Desc {
        name: "continuity_probes",
        help: "Probes run, by result (success or failure)",
        kind: Kind::Counter,
    };
    pub const PROBE_FAILURES: Desc = Desc {
        name: "continuity_probe_failures",
        help: "Failed probes, by typed failure reason",
        kind: Kind::Counter,
    };
    pub const HTTP_STATUS_CODE: Desc = Desc {
        name: "continuity_http_status_code",
        help: "HTTP status code of the last response of an http check",
        kind: Kind::Gauge,
    };
    pub const SIP_RESPONSE_CODE: Desc = Desc {
        name: "continuity_sip_response_code",
        help: "Final SIP response code of the last probe of a sip check",
        kind: Kind::Gauge,
    };
    pub const TLS_CERT_NOT_AFTER: Desc = Desc {
        name: "continuity_tls_cert_not_after_timestamp_seconds",
        help: "Earliest notAfter (Unix time) in the certificate chain last presented to the check",
        kind: Kind::Gauge,
    };
    pub const PROBE_ERRORS: Desc = Desc {
        name: "continuity_probe_errors",
        help: "Probes the monitor itself could not run (its own failures, not the target's)",
        kind: Kind::Counter,
    };
    pub const PROBE_KIND_ERRORS: Desc = Desc {
        name: "continuity_probe_kind_errors",
        help: "Probes the monitor itself could not run, by kind; every configured kind exists from the start, at zero",
        kind: Kind::Counter,
    };
    pub const SERVICE_UP: Desc = Desc {
        name: "continuity_service_up",
        help: "1 when every critical check of the service passed its last probe",
        kind: Kind::Gauge,
    };
    pub const SERVICE_STATE: Desc = Desc {
        name: "continuity_service_state",
        help: "Current state of the service (1 for the current state, 0 for the others)",
        kind: Kind::Gauge,
    };
    pub const MAINTENANCE_ACTIVE: Desc = Desc {
        name: "continuity_maintenance_active",
        help: "1 while a maintenance window covers the service",
        kind: Kind::Gauge,
    };
    pub const INCIDENTS: Desc = Desc {
        name: "continuity_incidents",
        help: "Incidents (continuous spells of down) opened for the service",
        kind: Kind::Counter,
    };
    pub const SLA_OBJECTIVE: Desc = Desc {
        name: "continuity_sla_objective_ratio",
        help: "The SLA objective as a ratio (0.998 for 99.8%)",
        kind: Kind::Gauge,
    };
    pub const SLA_AVAILABILITY: Desc = Desc {
        name: "continuity_sla_availability_ratio",
        help: "Availability over the SLA period to date (good / eligible time)",
        kind: Kind::Gauge,
    };
    pub const SLA_BUDGET_REMAINING: Desc = Desc {
        name: "continuity_sla_error_budget_remaining_ratio",
        help: "Share of the period's error budget that is left (negative when overspent)",
        kind: Kind::Gauge,
    };
    pub const SLA_BURN_RATE: Desc = Desc {
        name: "continuity_sla_burn_rate",
        help: "Error budget burn rate over a window, time-based over eligible time (1 = on budget)",
        kind: Kind::Gauge,
    };
    pub const SLA_ELIGIBLE_SECONDS: Desc = Desc {
        name: "continuity_sla_eligible_seconds",
        help: "Eligible time counted for the SLA (in calendar hours, not excluded, not unknown)",
        kind: Kind::Counter,
    };
    pub const SLA_GOOD_SECONDS: Desc = Desc {
        name: "continuity_sla_good_seconds",
        help: "Eligible time during which the service was up or degraded",
        kind: Kind::Counter,
    };

    // Migration awareness: where each service stands in its supplier
    // timeline (docs/migration.md).
    pub const SERVICE_INFO: Desc = Desc {
        name: "continuity_service_info",
        help: "Always 1; the service's current supplier and migration phase (baseline, cutover, hypercare, steady) as labels",
        kind: Kind::Gauge,
    };
    pub const SERVICE_PHASE: Desc = Desc {
        name: "continuity_service_phase",
        help: "Current migration phase of the service (1 for the current phase, 0 for the others)",
        kind: Kind::Gauge,
    };
    pub const CUTOVER_START: Desc = Desc {
        name: "continuity_migration_cutover_start_timestamp_seconds",
        help: "Start (Unix time) of a cutover window of the service, from one supplier to another",
        kind: Kind::Gauge,
    };
    pub const CUTOVER_END: Desc = Desc {
        name: "continuity_migration_cutover_end_timestamp_seconds",
        help: "End (Unix time) of a cutover window of the service, from one supplier to another",
        kind: Kind::Gauge,
    };
    // Parity of a `compare_with` check (old and new side by side); the
    // series exist once the check has compared.
    pub const PARITY_MATCH: Desc = Desc {
        name: "continuity_parity_match",
        help: "Whether the new endpoint matched the old one (compare_with) on every compared aspect in the last judged probe (1) or not (0)",
        kind: Kind::Gauge,
    };
    pub const PARITY_MISMATCHES: Desc = Desc {
        name: "continuity_parity_mismatches",
        help: "Probes in which the new endpoint did not match the old one, by aspect (status, body, json_fields, latency, connect, issuer, expiry, sans, answers, code)",
        kind: Kind::Counter,
    };
    pub const PARITY_LATENCY_RATIO: Desc = Desc {
        name: "continuity_parity_latency_ratio",
        help: "The new endpoint's probe time over the old one's, in the last judged probe",
        kind: Kind::Gauge,
    };
    pub const PARITY_SIMILARITY_RATIO: Desc = Desc {
        name: "continuity_parity_similarity_ratio",
        help: "How alike the new body is to the old one (0 to 1, volatile parts aside), in the last judged probe",
        kind: Kind::Gauge,
    };
    pub const PARITY_COMPARE_UP: Desc = Desc {
        name: "continuity_parity_compare_up",
        help: "Whether the old endpoint (compare_with) answered successfully in the last probe (1) or not (0); parity is judged only while it does",
        kind: Kind::Gauge,
    };
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    pub receiver: String,
    pub result: String,
}

/// A scheduled management report: `schedule` (`weekly`, `monthly`),
/// `event` (`made`, `failed`, `mail_sent`, `mail_failed`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReportLabels {
    pub schedule: String,
    pub event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    pub alertname: String,
    pub severity: String,
}

/// A resource of the monitor itself that ran out during a probe.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// The probe's kind (`http`, `tcp`, ...).
    pub kind: String,
    /// `descriptors`, `buffers` or `memory`.
    pub resource: String,
}

/// Every shown service state, in the order the state series are written.
pub const SERVICE_STATES: [ServiceState; 5] = [
    ServiceState::Up,
    ServiceState::Degraded,
    ServiceState::Down,
    ServiceState::Maintenance,
    ServiceState::Unknown,
];
/// The name of `alerts_firing`, which the generated rules read.
pub const ALERTS_FIRING: &str = "continuity_alerts_firing";
pub const BURN_WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// Upper bounds of `continuity_probe_latency_seconds`.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn lag_histogram() -> Histogram {
    Histogram::new([
        0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
    ])
}

/// All metric families, registered in one registry.
pub struct Telemetry {
    pub registry: Registry,
    /// Per-check series.
    pub checks: CheckTable,
    /// `metrics.detail: compact`: per-check latency histograms without
    /// their buckets. Set from the configuration at start and on reload.
    compact: std::sync::atomic::AtomicBool,
    /// Per-service and per-SLA series.
    pub services: ServiceTable,
    // The daemon.
    pub build_info: Family<VersionLabels, Gauge>,
    pub config_last_reload_successful: Gauge,
    pub config_last_reload_success_timestamp: GaugeF,
    pub scheduler_lag: Histogram,
    pub probes_in_flight: Gauge,
    pub checks_configured: Gauge,
    pub store_errors_total: Counter,
    // Alerting.
    pub notifications_total: Family<NotificationLabels, Counter>,
    pub notification_queue_length: Gauge,
    pub alerts_firing: Family<AlertLabels, Gauge>,
    // Scheduled reports.
    pub reports_total: Family<ReportLabels, Counter>,
    // Hardening: the daemon's own resources and server.
    pub probe_resource_errors_total: Family<ResourceLabels, Counter>,
    pub http_connections_open: Gauge,
    pub http_connection_limit: Gauge,
    pub http_accept_errors_total: Counter,
    pub config_reload_pending_restart: Gauge,
    pub store_file_replaced_total: Counter,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Self {
        let mut r = Registry::default();
        macro_rules! reg {
            ($name:expr, $help:expr, $metric:expr) => {{
                let m = $metric;
                r.register($name, $help, m.clone());
                m
            }};
        }
        let t = Telemetry {
            build_info: reg!(
                "continuity_build_info",
                "Build information; the value is always 1",
                Family::default()
            ),
            config_last_reload_successful: reg!(
                "continuity_config_last_reload_successful",
                "Whether the last configuration reload succeeded",
                Gauge::default()
            ),
            config_last_reload_success_timestamp: reg!(
                "continuity_config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful configuration load",
                GaugeF::default()
            ),
            scheduler_lag: reg!(
                "continuity_scheduler_lag_seconds",
                "How late probes started compared to their schedule",
                lag_histogram()
            ),
            probes_in_flight: reg!(
                "continuity_probes_in_flight",
                "Probes running right now",
                Gauge::default()
            ),
            checks_configured: reg!(
                "continuity_checks_configured",
                "Checks in the running configuration",
                Gauge::default()
            ),
            store_errors_total: reg!(
                "continuity_store_errors",
                "Store write failures (the data stays queued and is retried)",
                Counter::default()
            ),
            notifications_total: reg!(
                "continuity_notifications",
                "Notification delivery attempts, by receiver and result",
                Family::default()
            ),
            notification_queue_length: reg!(
                "continuity_notification_queue_length",
                "Notifications waiting in the durable outbox",
                Gauge::default()
            ),
            alerts_firing: reg!(
                ALERTS_FIRING,
                "Alerts firing right now, by alert name and severity",
                Family::default()
            ),
            reports_total: reg!(
                "continuity_reports",
                "Scheduled management reports made or failed, and their e-mails sent or failed",
                Family::default()
            ),
            probe_resource_errors_total: reg!(
                "continuity_probe_resource_errors",
                "Probes that could not run because the monitor itself ran out of a resource (descriptors, buffers, memory); the check's time counts as unknown, never down",
                Family::default()
            ),
            http_connections_open: reg!(
                "continuity_http_connections",
                "Connections to our own HTTP server open right now",
                Gauge::default()
            ),
            http_connection_limit: reg!(
                "continuity_http_connection_limit",
                "Connections our HTTP server serves at once (server.max_connections, lowered to keep the probes' descriptor budget)",
                Gauge::default()
            ),
            http_accept_errors_total: reg!(
                "continuity_http_accept_errors",
                "Failures to accept a connection to our HTTP server (e.g. out of descriptors)",
                Counter::default()
            ),
            config_reload_pending_restart: reg!(
                "continuity_config_reload_pending_restart",
                "1 when the loaded configuration changes something only a restart applies (server.listen, store.path)",
                Gauge::default()
            ),
            store_file_replaced_total: reg!(
                "continuity_store_file_replaced",
                "Times the store's database file was found deleted or replaced under the running daemon",
                Counter::default()
            ),
            checks: CheckTable::default(),
            compact: Default::default(),
            services: ServiceTable::default(),
            registry: Registry::default(),
        };
        Telemetry { registry: r, ..t }
    }

    /// Drop the series of checks and services that are not in `config`,
    /// take its `metrics.detail`, and start the counters it names at zero.
    pub fn retain_config(&self, config: &Config) {
        self.compact.store(
            config.metrics.detail == crate::config::metrics::MetricsDetail::Compact,
            std::sync::atomic::Ordering::Relaxed,
        );
        let services = config.services_by_id();
        self.checks.retain(|service, check, kind| {
            services
                .get(service)
                .and_then(|s| s.checks.iter().find(|c| c.id == check))
                .is_some_and(|c| c.kind.name() == kind)
        });
        self.services
            .retain(|service| services.contains_key(service));
        self.start_counters_at_zero(config);
    }

    /// Write every series in `format`, in chunks of about `chunk` bytes
    /// handed to `emit`; rendering stops when `emit` returns false.
    pub fn render_chunks(
        &self,
        format: Format,
        chunk: usize,
        emit: &mut dyn FnMut(String) -> bool,
    ) {
        let mut w = text::Chunks::new(chunk, emit);
        let compact = self.compact.load(std::sync::atomic::Ordering::Relaxed);
        self.checks.render(&mut w, format, compact);
        self.services.render(&mut w, format);
        if w.closed {
            return;
        }
        // The registry's families come last: its OpenMetrics output ends
        // with the `# EOF` that must close the whole exposition. Writing
        // into a String cannot fail.
        let res = match format {
            Format::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut w.buf, &self.registry)
            }
            Format::Text => {
                prometheus_client::encoding::prometheus_text::encode(&mut w.buf, &self.registry)
            }
        };
        res.expect("encoding metrics into a String");
        w.flush();
    }

    /// The whole exposition as one string (for tests and small outputs).
    pub fn render(&self, openmetrics: bool) -> String {
        let format = if openmetrics {
            Format::OpenMetrics
        } else {
            Format::Text
        };
        let mut out = String::new();
        self.render_chunks(format, 64 * 1024, &mut |c| {
            out.push_str(&c);
            true
        });
        out
    }
}

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{FailureReason, ProbeOutcome, phase};

    fn config(yaml_checks: &str) -> Config {
        Config::from_str(
            "t.yaml",
            &format!("services:\n  - id: portal\n    category: portal\n    checks:\n{yaml_checks}"),
        )
        .unwrap()
    }

    fn home(t: &Telemetry) -> CheckMetrics {
        t.checks
            .register(&Arc::from("portal"), &Arc::from("home"), "http")
    }

    #[test]
    fn failed_probe_counts_its_reason_and_text_format_names_counters_total() {
        let t = Telemetry::new();
        let mut o = ProbeOutcome::failed(FailureReason::Refused, "connection refused");
        o.phase(phase::RESOLVE, std::time::Duration::from_millis(2));
        home(&t).observe(&o);
        let text = t.render(false);
        assert!(text.contains("# TYPE continuity_probes_total counter"));
        assert!(text.contains(
            "continuity_probe_failures_total{service=\"portal\",check=\"home\",kind=\"http\",reason=\"refused\"} 1"
        ));
        assert!(text.contains(
            "continuity_probe_success{service=\"portal\",check=\"home\",kind=\"http\"} 0"
        ));
        assert!(text.contains(
            "continuity_probe_phase_duration_seconds{service=\"portal\",check=\"home\",kind=\"http\",phase=\"resolve\"} 0.002"
        ));
        assert!(!text.contains("# EOF"));
        let om = t.render(true);
        assert!(om.ends_with("# EOF\n"));
        assert_eq!(om.matches("# EOF").count(), 1);
        assert!(om.contains("# TYPE continuity_probes counter\n"));
    }

    #[test]
    fn latency_histogram_is_cumulative_with_sum_and_count() {
        let t = Telemetry::new();
        let m = home(&t);
        for ms in [3, 40, 40, 2000] {
            let o = ProbeOutcome {
                duration: std::time::Duration::from_millis(ms),
                ..Default::default()
            };
            m.observe(&o);
        }
        let text = t.render(false);
        let l = "service=\"portal\",check=\"home\",kind=\"http\"";
        for (le, n) in [("0.005", 1), ("0.05", 3), ("1", 3), ("2.5", 4), ("+Inf", 4)] {
            let line = format!("continuity_probe_latency_seconds_bucket{{{l},le=\"{le}\"}} {n}\n");
            assert!(text.contains(&line), "{line} missing");
        }
        assert!(text.contains(&format!(
            "continuity_probe_latency_seconds_count{{{l}}} 4\n"
        )));
        assert!(text.contains(&format!(
            "continuity_probe_latency_seconds_sum{{{l}}} 2.083\n"
        )));
        assert!(t.render(true).contains(&format!(
            "continuity_probe_latency_seconds_bucket{{{l},le=\"1.0\"}} 3\n"
        )));
    }

    #[test]
    fn a_phase_missing_from_the_last_probe_is_not_shown() {
        let t = Telemetry::new();
        let mut o = ProbeOutcome::default();
        o.phase(phase::CONNECT, std::time::Duration::from_millis(1));
        o.http_status = Some(200);
        let m = home(&t);
        m.observe(&o);
        assert!(t.render(false).contains("phase=\"connect\""));
        m.observe(&ProbeOutcome::failed(FailureReason::Dns, "no such host"));
        let text = t.render(false);
        assert!(!text.contains("phase=\"connect\""));
        // The last status code stays: the DNS failure had none.
        assert!(text.contains(
            "continuity_http_status_code{service=\"portal\",check=\"home\",kind=\"http\"} 200"
        ));
    }

    #[test]
    fn series_of_removed_checks_and_services_are_dropped() {
        let t = Telemetry::new();
        let cfg = config("      - id: home\n        http:\n          url: http://127.0.0.1:1/\n");
        home(&t).observe(&ProbeOutcome::default());
        t.checks
            .register(&Arc::from("portal"), &Arc::from("gone"), "tcp");
        t.services
            .register(&cfg.services[0])
            .set_state(true, ServiceState::Up, false);
        t.retain_config(&cfg);
        let text = t.render(false);
        assert!(text.contains("check=\"home\""));
        assert!(!text.contains("check=\"gone\""));
        assert!(
            text.lines().any(|l| l
                .starts_with("continuity_service_up{service=\"portal\",category=\"portal\",")
                && l.ends_with("} 1")),
            "{text}"
        );
        // Same check id, other kind: the old series go.
        let other = config("      - id: home\n        tcp:\n          target: 127.0.0.1:1\n");
        t.retain_config(&other);
        assert!(!t.render(false).contains("check=\"home\""));
    }

    #[test]
    fn service_state_is_one_hot_and_slas_follow_the_config() {
        let t = Telemetry::new();
        let cfg = Config::from_str(
            "t.yaml",
            "services:\n  - id: portal\n    slas:\n      - name: office\n        objective: 99.5\n    checks:\n      - id: home\n        http:\n          url: http://127.0.0.1:1/\n",
        )
        .unwrap();
        let m = t.services.register(&cfg.services[0]);
        m.set_state(false, ServiceState::Down, false);
        m.add_sla_seconds(0, 60.0, 30.0);
        let text = t.render(false);
        assert!(text.contains("continuity_service_state{service=\"portal\",state=\"down\"} 1\n"));
        assert!(text.contains("continuity_service_state{service=\"portal\",state=\"up\"} 0\n"));
        assert!(
            text.contains(
                "continuity_sla_objective_ratio{service=\"portal\",sla=\"office\",supplier=\"unknown\"} 0.995\n"
            )
        );
        assert!(text.contains(
            "continuity_sla_good_seconds_total{service=\"portal\",sla=\"office\",supplier=\"unknown\"} 30.0\n"
        ));
        // Registering again (a reload) keeps the counts.
        t.services.register(&cfg.services[0]);
        assert!(t.render(false).contains(
            "continuity_sla_eligible_seconds_total{service=\"portal\",sla=\"office\",supplier=\"unknown\"} 60.0\n"
        ));
    }

    #[test]
    fn rendering_stops_when_the_scraper_is_gone() {
        let t = Telemetry::new();
        for i in 0..200 {
            t.checks
                .register(
                    &Arc::from(format!("s{i}").as_str()),
                    &Arc::from("c"),
                    "http",
                )
                .observe(&ProbeOutcome::default());
        }
        let mut chunks = 0;
        t.render_chunks(Format::Text, 1024, &mut |_| {
            chunks += 1;
            false
        });
        assert_eq!(chunks, 1);
    }

    #[test]
    fn compact_detail_keeps_latency_count_and_sum_but_not_buckets() {
        let t = Telemetry::new();
        let cfg = Config::from_str(
            "t.yaml",
            "metrics:\n  detail: compact\nservices:\n  - id: portal\n    category: portal\n    checks:\n      - id: home\n        http: { url: \"http://127.0.0.1:1/\" }\n",
        )
        .unwrap();
        home(&t).observe(&ProbeOutcome::default());
        let full = t.render(false);
        t.retain_config(&cfg);
        let compact = t.render(false);
        let buckets = |text: &str| {
            text.matches("continuity_probe_latency_seconds_bucket{")
                .count()
        };
        assert_eq!(buckets(&full), LATENCY_BUCKETS.len() + 1);
        assert_eq!(buckets(&compact), 1, "only +Inf:\n{compact}");
        for line in [
            "continuity_probe_latency_seconds_bucket{service=\"portal\",check=\"home\",kind=\"http\",le=\"+Inf\"} 1\n",
            "continuity_probe_latency_seconds_count{service=\"portal\",check=\"home\",kind=\"http\"} 1\n",
        ] {
            assert!(compact.contains(line), "{line}");
        }
        assert!(t.render(true).contains("_count{service=\"portal\""));
    }
}
