//! Counters that exist from the start, at zero. A `_total` series that
//! first appears at 1 hides that first increase from `rate()` and
//! `increase()` (Prometheus has no earlier sample to compare with), so an
//! alert on "any failed notification" would miss the first one. Every
//! counter family whose label values the configuration names gets its
//! series at load and at every reload: per receiver and Alertmanager, per
//! report schedule, per configured probe kind. Per-check families are not
//! filled in here (that would add series to every check; see the cost
//! table in docs/metrics.md): the per-kind totals stand in for them.

use super::{NotificationLabels, ReportLabels, ResourceLabels, Telemetry};
use crate::config::Config;

/// What a receiver's delivery can come to (`continuity_notifications_total`).
const NOTIFICATION_RESULTS: [&str; 3] = ["delivered", "failed", "expired"];
/// What an Alertmanager post can come to: it is retried, never expired.
const ALERTMANAGER_RESULTS: [&str; 2] = ["delivered", "failed"];
/// What a scheduled report can come to (`continuity_reports_total`).
const REPORT_EVENTS: [&str; 4] = ["made", "failed", "mail_sent", "mail_failed"];
/// What a probe can run out of (`probe::Shortage::resource`).
const RESOURCES: [&str; 3] = ["descriptors", "buffers", "memory"];

impl Telemetry {
    /// Create, at zero, every counter series `config` names that does not
    /// exist yet; existing ones keep their counts.
    pub(super) fn start_counters_at_zero(&self, config: &Config) {
        let receivers = config.alerting.receivers().iter().map(|r| r.name.clone());
        let alertmanagers = config
            .alerting
            .alertmanagers
            .iter()
            .map(|am| crate::alert::notify::alertmanager::display_name(&am.value));
        let notifications = receivers
            .flat_map(|r| NOTIFICATION_RESULTS.map(|res| (r.clone(), res)))
            .chain(alertmanagers.flat_map(|a| ALERTMANAGER_RESULTS.map(|res| (a.clone(), res))));
        for (receiver, result) in notifications {
            drop(self.notifications_total.get_or_create(&NotificationLabels {
                receiver,
                result: result.to_string(),
            }));
        }
        for schedule in config.reports.schedules() {
            for event in REPORT_EVENTS {
                drop(self.reports_total.get_or_create(&ReportLabels {
                    schedule: schedule.kind.as_str().to_string(),
                    event: event.to_string(),
                }));
            }
        }
        let kinds: std::collections::BTreeSet<&str> = config
            .services
            .iter()
            .flat_map(|s| s.checks.iter().map(|c| c.kind.name()))
            .collect();
        for kind in kinds {
            for resource in RESOURCES {
                drop(
                    self.probe_resource_errors_total
                        .get_or_create(&ResourceLabels {
                            kind: kind.to_string(),
                            resource: resource.to_string(),
                        }),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn config(checks: &str) -> Config {
        Config::from_str(
            "t.yaml",
            &format!(
                "alerting:\n  alertmanagers: [\"http://127.0.0.1:9093\"]\n  receivers:\n    - name: desk\n      webhook: {{ url: \"https://hooks.example.org/desk\" }}\nreports:\n  weekly: {{}}\nservices:\n  - id: portal\n    checks:\n{checks}"
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn counters_the_configuration_names_exist_at_zero_before_anything_happens() {
        let t = Telemetry::new();
        // The scheduler registers each check's series as it starts.
        t.checks
            .register(&Arc::from("portal"), &Arc::from("home"), "http");
        t.retain_config(&config(
            "      - id: home\n        http: { url: \"http://127.0.0.1:1/\" }\n",
        ));
        let text = t.render(false);
        for line in [
            "continuity_notifications_total{receiver=\"desk\",result=\"failed\"} 0",
            "continuity_notifications_total{receiver=\"desk\",result=\"expired\"} 0",
            "continuity_notifications_total{receiver=\"alertmanager:127.0.0.1:9093\",result=\"failed\"} 0",
            "continuity_reports_total{schedule=\"weekly\",event=\"failed\"} 0",
            "continuity_reports_total{schedule=\"weekly\",event=\"mail_failed\"} 0",
            "continuity_probe_resource_errors_total{kind=\"http\",resource=\"descriptors\"} 0",
            "continuity_probe_kind_errors_total{kind=\"http\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert!(!text.contains("kind=\"tcp\""), "a kind nobody configured");
    }

    #[test]
    fn the_per_kind_error_total_counts_every_error_and_survives_a_removed_check() {
        let t = Telemetry::new();
        let gone = t
            .checks
            .register(&Arc::from("portal"), &Arc::from("gone"), "tcp");
        gone.monitor_error();
        gone.monitor_error();
        t.checks
            .register(&Arc::from("portal"), &Arc::from("home"), "tcp")
            .monitor_error();
        let total = |t: &Telemetry| {
            t.render(false)
                .lines()
                .find_map(|l| l.strip_prefix("continuity_probe_kind_errors_total{kind=\"tcp\"} "))
                .map(str::to_string)
        };
        assert_eq!(total(&t).as_deref(), Some("3"));
        t.retain_config(&config(
            "      - id: home\n        tcp: { target: \"127.0.0.1:1\" }\n",
        ));
        assert!(!t.render(false).contains("check=\"gone\""));
        assert_eq!(total(&t).as_deref(), Some("3"), "the total went down");
    }
}
