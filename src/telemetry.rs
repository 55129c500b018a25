//! Every metric continuity exports, declared in one place with its help
//! text, so that names never drift across the code. `docs/metrics.md`
//! documents the same list; dashboards and alerts rely on these names.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::probe::{FailureReason, ProbeOutcome, phase};

pub type GaugeF = Gauge<f64, AtomicU64>;

// Per-check label sets share their names (`Arc<str>`) and use static
// strings for closed sets: with 10,000 checks there are about 250,000 of
// them, and a String per label per series would be tens of megabytes.

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub service: Arc<str>,
    pub check: Arc<str>,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub service: Arc<str>,
    pub check: Arc<str>,
    pub kind: &'static str,
    pub phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub service: Arc<str>,
    pub check: Arc<str>,
    pub kind: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub service: Arc<str>,
    pub check: Arc<str>,
    pub kind: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: String,
    pub category: String,
    pub supplier: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceStateLabels {
    pub service: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceOnly {
    pub service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SlaLabels {
    pub service: String,
    pub sla: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BurnLabels {
    pub service: String,
    pub sla: String,
    pub window: String,
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    pub alertname: String,
    pub severity: String,
}

/// The phases a check may report, so a removed check's series can all be
/// forgotten.
pub const ALL_PHASES: [&str; 9] = [
    phase::RESOLVE,
    phase::CONNECT,
    phase::TLS,
    phase::PROCESSING,
    phase::TRANSFER,
    phase::RESPONSE,
    phase::RINGING,
    phase::ANSWER,
    phase::RTT,
];

pub const SERVICE_STATES: [&str; 5] = ["up", "degraded", "down", "maintenance", "unknown"];
pub const BURN_WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

fn lag_histogram() -> Histogram {
    Histogram::new([
        0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
    ])
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// All metric families, registered in one registry.
pub struct Telemetry {
    pub registry: Registry,
    // Per check.
    pub probe_success: Family<CheckLabels, Gauge>,
    pub probe_duration: Family<CheckLabels, GaugeF>,
    pub probe_phase_duration: Family<PhaseLabels, GaugeF>,
    pub probe_latency: HistogramFamily<CheckLabels>,
    pub probes_total: Family<ResultLabels, Counter>,
    pub probe_failures_total: Family<ReasonLabels, Counter>,
    pub http_status_code: Family<CheckLabels, Gauge>,
    pub sip_response_code: Family<CheckLabels, Gauge>,
    pub tls_cert_not_after: Family<CheckLabels, Gauge>,
    pub probe_errors_total: Family<CheckLabels, Counter>,
    // Per service.
    pub service_up: Family<ServiceLabels, Gauge>,
    pub service_state: Family<ServiceStateLabels, Gauge>,
    pub maintenance_active: Family<ServiceOnly, Gauge>,
    pub incidents_total: Family<ServiceOnly, Counter>,
    // SLAs.
    pub sla_objective: Family<SlaLabels, GaugeF>,
    pub sla_availability: Family<SlaLabels, GaugeF>,
    pub sla_budget_remaining: Family<SlaLabels, GaugeF>,
    pub sla_burn_rate: Family<BurnLabels, GaugeF>,
    pub sla_eligible_seconds: Family<SlaLabels, Counter<f64, AtomicU64>>,
    pub sla_good_seconds: Family<SlaLabels, Counter<f64, AtomicU64>>,
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
    /// Size of the last rendering, to size the next one.
    last_render_len: std::sync::atomic::AtomicUsize,
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
            probe_success: reg!(
                "continuity_probe_success",
                "Whether the last probe of the check succeeded (1) or failed (0)",
                Family::default()
            ),
            probe_duration: reg!(
                "continuity_probe_duration_seconds",
                "Duration of the last probe of the check",
                Family::default()
            ),
            probe_phase_duration: reg!(
                "continuity_probe_phase_duration_seconds",
                "Duration of each phase of the last probe (resolve, connect, tls, processing, transfer, response, ringing, answer, rtt)",
                Family::default()
            ),
            probe_latency: reg!(
                "continuity_probe_latency_seconds",
                "Distribution of probe durations over time",
                Family::new_with_constructor(latency_histogram as fn() -> Histogram)
            ),
            probes_total: reg!(
                "continuity_probes",
                "Probes run, by result (success or failure)",
                Family::default()
            ),
            probe_failures_total: reg!(
                "continuity_probe_failures",
                "Failed probes, by typed failure reason",
                Family::default()
            ),
            http_status_code: reg!(
                "continuity_http_status_code",
                "HTTP status code of the last response of an http check",
                Family::default()
            ),
            sip_response_code: reg!(
                "continuity_sip_response_code",
                "Final SIP response code of the last probe of a sip check",
                Family::default()
            ),
            tls_cert_not_after: reg!(
                "continuity_tls_cert_not_after_timestamp_seconds",
                "Earliest notAfter (Unix time) in the certificate chain last presented to the check",
                Family::default()
            ),
            probe_errors_total: reg!(
                "continuity_probe_errors",
                "Probes the monitor itself could not run (its own failures, not the target's)",
                Family::default()
            ),
            service_up: reg!(
                "continuity_service_up",
                "1 when every critical check of the service passed its last probe",
                Family::default()
            ),
            service_state: reg!(
                "continuity_service_state",
                "Current state of the service (1 for the current state, 0 for the others)",
                Family::default()
            ),
            maintenance_active: reg!(
                "continuity_maintenance_active",
                "1 while a maintenance window covers the service",
                Family::default()
            ),
            incidents_total: reg!(
                "continuity_incidents",
                "Incidents (continuous spells of down) opened for the service",
                Family::default()
            ),
            sla_objective: reg!(
                "continuity_sla_objective_ratio",
                "The SLA objective as a ratio (0.998 for 99.8%)",
                Family::default()
            ),
            sla_availability: reg!(
                "continuity_sla_availability_ratio",
                "Availability over the SLA period to date (good / eligible time)",
                Family::default()
            ),
            sla_budget_remaining: reg!(
                "continuity_sla_error_budget_remaining_ratio",
                "Share of the period's error budget that is left (negative when overspent)",
                Family::default()
            ),
            sla_burn_rate: reg!(
                "continuity_sla_burn_rate",
                "Error budget burn rate over a window, time-based over eligible time (1 = on budget)",
                Family::default()
            ),
            sla_eligible_seconds: reg!(
                "continuity_sla_eligible_seconds",
                "Eligible time counted for the SLA (in calendar hours, not excluded, not unknown)",
                Family::default()
            ),
            sla_good_seconds: reg!(
                "continuity_sla_good_seconds",
                "Eligible time during which the service was up or degraded",
                Family::default()
            ),
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
                "continuity_alerts_firing",
                "Alerts firing right now, by alert name and severity",
                Family::default()
            ),
            registry: Registry::default(),
            last_render_len: Default::default(),
        };
        Telemetry { registry: r, ..t }
    }

    /// Handles on a check's own series, made once when its probe task
    /// starts, so that recording a probe is a few atomic operations rather
    /// than label look-ups and allocations.
    pub fn check_metrics(&self, l: &CheckLabels) -> CheckMetrics {
        CheckMetrics {
            success: self.probe_success.get_or_create_owned(l),
            duration: self.probe_duration.get_or_create_owned(l),
            latency: self.probe_latency.get_or_create_owned(l),
            ok_total: self
                .probes_total
                .get_or_create_owned(&result_labels(l, "success")),
            failed_total: self
                .probes_total
                .get_or_create_owned(&result_labels(l, "failure")),
            phases: Default::default(),
            present: 0,
            labels: l.clone(),
        }
    }

    /// Drop every series of a check that left the configuration.
    pub fn forget_check(&self, l: &CheckLabels) {
        self.probe_success.remove(l);
        self.probe_duration.remove(l);
        self.probe_latency.remove(l);
        self.http_status_code.remove(l);
        self.sip_response_code.remove(l);
        self.tls_cert_not_after.remove(l);
        self.probe_errors_total.remove(l);
        for p in ALL_PHASES {
            self.probe_phase_duration.remove(&phase_labels(l, p));
        }
        for r in ["success", "failure"] {
            self.probes_total.remove(&result_labels(l, r));
        }
        for r in FailureReason::ALL {
            self.probe_failures_total.remove(&reason_labels(l, r));
        }
    }

    /// Drop every series of a service that left the configuration.
    pub fn forget_service(&self, l: &ServiceLabels, slas: &[String]) {
        self.service_up.remove(l);
        for s in SERVICE_STATES {
            self.service_state.remove(&ServiceStateLabels {
                service: l.service.clone(),
                state: s.to_string(),
            });
        }
        let only = ServiceOnly {
            service: l.service.clone(),
        };
        self.maintenance_active.remove(&only);
        self.incidents_total.remove(&only);
        for sla in slas {
            let sl = SlaLabels {
                service: l.service.clone(),
                sla: sla.clone(),
            };
            self.sla_objective.remove(&sl);
            self.sla_availability.remove(&sl);
            self.sla_budget_remaining.remove(&sl);
            self.sla_eligible_seconds.remove(&sl);
            self.sla_good_seconds.remove(&sl);
            for w in BURN_WINDOWS {
                self.sla_burn_rate.remove(&BurnLabels {
                    service: l.service.clone(),
                    sla: sla.clone(),
                    window: w.to_string(),
                });
            }
        }
    }

    /// Set the one-hot service state.
    pub fn set_service_state(&self, service: &str, state: &str) {
        for s in SERVICE_STATES {
            self.service_state
                .get_or_create(&ServiceStateLabels {
                    service: service.to_string(),
                    state: s.to_string(),
                })
                .set((s == state) as i64);
        }
    }

    /// Render in the Prometheus text format (0.0.4), or OpenMetrics.
    pub fn render(&self, openmetrics: bool) -> String {
        // Sized from the last scrape: with 10,000 checks the text is tens of
        // megabytes, and growing a String to that size copies it many times.
        let hint = self
            .last_render_len
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut out = String::with_capacity(hint + hint / 8 + 64 * 1024);
        let res = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        };
        // Writing into a String cannot fail.
        res.expect("encoding metrics into a String");
        self.last_render_len
            .store(out.len(), std::sync::atomic::Ordering::Relaxed);
        out
    }
}

/// A check's series, held by its probe task (see
/// [`Telemetry::check_metrics`]).
pub struct CheckMetrics {
    labels: CheckLabels,
    success: Gauge,
    duration: GaugeF,
    latency: Histogram,
    ok_total: Counter,
    failed_total: Counter,
    /// Phase gauges, made the first time a phase is seen.
    phases: [Option<GaugeF>; ALL_PHASES.len()],
    /// Which phases the last probe reported (bit i: `ALL_PHASES[i]`).
    present: u16,
}

impl CheckMetrics {
    /// Record one probe outcome.
    pub fn observe(&mut self, t: &Telemetry, o: &ProbeOutcome) {
        let secs = o.duration.as_secs_f64();
        self.success.set(o.success() as i64);
        self.duration.set(secs);
        self.latency.observe(secs);
        let mut present = 0u16;
        for (name, took) in &o.phases {
            let Some(i) = ALL_PHASES.iter().position(|p| p == name) else {
                continue;
            };
            present |= 1 << i;
            self.phases[i]
                .get_or_insert_with(|| {
                    t.probe_phase_duration
                        .get_or_create_owned(&phase_labels(&self.labels, ALL_PHASES[i]))
                })
                .set(took.as_secs_f64());
        }
        // Phases not seen this time are dropped, so a stale connect time
        // from an earlier probe never sits beside a failed DNS lookup.
        let gone = self.present & !present;
        if gone != 0 {
            for (i, p) in ALL_PHASES.iter().enumerate() {
                if gone & (1 << i) != 0 {
                    t.probe_phase_duration
                        .remove(&phase_labels(&self.labels, p));
                    self.phases[i] = None;
                }
            }
        }
        self.present = present;
        if let Some(reason) = o.reason() {
            self.failed_total.inc();
            t.probe_failures_total
                .get_or_create(&reason_labels(&self.labels, reason))
                .inc();
        } else {
            self.ok_total.inc();
        }
        if let Some(code) = o.http_status {
            t.http_status_code
                .get_or_create(&self.labels)
                .set(code as i64);
        }
        if let Some(code) = o.sip_code {
            t.sip_response_code
                .get_or_create(&self.labels)
                .set(code as i64);
        }
        if let Some(at) = o.cert_not_after {
            t.tls_cert_not_after.get_or_create(&self.labels).set(at);
        }
    }
}

fn phase_labels(l: &CheckLabels, phase: &'static str) -> PhaseLabels {
    PhaseLabels {
        service: l.service.clone(),
        check: l.check.clone(),
        kind: l.kind,
        phase,
    }
}

fn result_labels(l: &CheckLabels, result: &'static str) -> ResultLabels {
    ResultLabels {
        service: l.service.clone(),
        check: l.check.clone(),
        kind: l.kind,
        result,
    }
}

fn reason_labels(l: &CheckLabels, reason: FailureReason) -> ReasonLabels {
    ReasonLabels {
        service: l.service.clone(),
        check: l.check.clone(),
        kind: l.kind,
        reason: reason.as_str(),
    }
}

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::FailureReason;

    fn labels() -> CheckLabels {
        CheckLabels {
            service: "portal".into(),
            check: "home".into(),
            kind: "http",
        }
    }

    #[test]
    fn failed_probe_counts_its_reason_and_text_format_names_counters_total() {
        let t = Telemetry::new();
        let mut o = ProbeOutcome::failed(FailureReason::Refused, "connection refused");
        o.phase(phase::RESOLVE, std::time::Duration::from_millis(2));
        t.check_metrics(&labels()).observe(&t, &o);
        let text = t.render(false);
        assert!(text.contains("# TYPE continuity_probes_total counter"));
        assert!(text.contains(
            "continuity_probe_failures_total{service=\"portal\",check=\"home\",kind=\"http\",reason=\"refused\"} 1"
        ));
        assert!(text.contains(
            "continuity_probe_success{service=\"portal\",check=\"home\",kind=\"http\"} 0"
        ));
        assert!(!text.contains("# EOF"));
        assert!(t.render(true).ends_with("# EOF\n"));
    }

    #[test]
    fn forgetting_a_check_removes_all_its_series() {
        let t = Telemetry::new();
        let mut o = ProbeOutcome::default();
        o.phase(phase::CONNECT, std::time::Duration::from_millis(1));
        o.http_status = Some(200);
        let mut m = t.check_metrics(&labels());
        m.observe(&t, &o);
        // A later probe without a connect phase drops that series.
        m.observe(
            &t,
            &ProbeOutcome::failed(FailureReason::Dns, "no such host"),
        );
        assert!(!t.render(false).contains("phase=\"connect\""));
        m.observe(&t, &o);
        t.forget_check(&labels());
        assert!(!t.render(false).contains("service=\"portal\""));
    }
}
