//! The state engine: takes finished probes from the scheduler, keeps the
//! last outcome of every check and derives each service's state, then
//! updates metrics and the status board that the API serves.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::config::Config;
use crate::scheduler::ProbeReport;
use crate::telemetry::{ServiceLabels, Telemetry};

/// The last outcome of a check, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LastOutcome {
    pub at: jiff::Timestamp,
    pub success: bool,
    pub duration_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub phases: HashMap<&'static str, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_not_after: Option<i64>,
    /// The monitor could not run the probe (its own failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckStatus {
    pub id: String,
    pub kind: &'static str,
    pub critical: bool,
    pub interval_seconds: f64,
    pub last: Option<LastOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub id: String,
    pub name: String,
    pub category: String,
    pub supplier: String,
    pub state: String,
    /// 1 when every critical check passed its last probe.
    pub up: bool,
    pub checks: Vec<CheckStatus>,
}

/// What `GET /api/v1/status` returns.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusBoard {
    pub location: String,
    pub services: Vec<ServiceStatus>,
}

pub type SharedStatus = Arc<RwLock<StatusBoard>>;

pub struct Engine {
    config: Arc<Config>,
    telemetry: Arc<Telemetry>,
    status: SharedStatus,
    /// (service, check) -> index into the board.
    index: HashMap<(String, String), (usize, usize)>,
}

impl Engine {
    pub fn new(config: Arc<Config>, telemetry: Arc<Telemetry>, status: SharedStatus) -> Engine {
        let mut e = Engine {
            config: config.clone(),
            telemetry,
            status,
            index: HashMap::new(),
        };
        e.apply_config(config);
        e
    }

    /// Switch to a new configuration, keeping what is known of checks that
    /// stay, and dropping the metrics of services and checks that left.
    pub fn apply_config(&mut self, config: Arc<Config>) {
        let old = std::mem::take(&mut *self.status.write().expect("status lock"));
        let mut old_last: HashMap<(String, String), LastOutcome> = HashMap::new();
        for s in &old.services {
            for c in &s.checks {
                if let Some(l) = &c.last {
                    old_last.insert((s.id.clone(), c.id.clone()), l.clone());
                }
            }
        }
        // Forget what left (or changed kind, category or supplier).
        for s in &self.config.services {
            let labels = service_labels(s);
            let still = config.service(&s.id);
            if still.map(service_labels) != Some(labels.clone()) {
                let slas: Vec<String> = s.slas.iter().map(|x| x.name.clone()).collect();
                self.telemetry.forget_service(&labels, &slas);
            }
            for c in &s.checks {
                let kept = still
                    .and_then(|n| n.checks.iter().find(|x| x.id == c.id))
                    .is_some_and(|n| n.kind.name() == c.kind.name());
                if !kept {
                    self.telemetry.forget_check(&crate::telemetry::CheckLabels {
                        service: s.id.clone(),
                        check: c.id.clone(),
                        kind: c.kind.name().to_string(),
                    });
                    old_last.remove(&(s.id.clone(), c.id.clone()));
                }
            }
        }
        let mut board = StatusBoard {
            location: config.location.clone(),
            services: Vec::with_capacity(config.services.len()),
        };
        self.index.clear();
        for (si, s) in config.services.iter().enumerate() {
            let checks = s
                .checks
                .iter()
                .enumerate()
                .map(|(ci, c)| {
                    self.index.insert((s.id.clone(), c.id.clone()), (si, ci));
                    CheckStatus {
                        id: c.id.clone(),
                        kind: c.kind.name(),
                        critical: c.critical,
                        interval_seconds: c.interval.as_secs_f64(),
                        last: old_last.remove(&(s.id.clone(), c.id.clone())),
                    }
                })
                .collect();
            let mut status = ServiceStatus {
                id: s.id.clone(),
                name: s.name.clone(),
                category: s.category.clone(),
                supplier: s.supplier.clone(),
                state: "unknown".into(),
                up: false,
                checks,
            };
            derive_service(&mut status);
            self.publish_service(s, &status);
            board.services.push(status);
        }
        *self.status.write().expect("status lock") = board;
        self.config = config;
    }

    pub fn on_report(&mut self, r: ProbeReport) {
        let key = (r.service.to_string(), r.check.to_string());
        let Some(&(si, ci)) = self.index.get(&key) else {
            // A probe of a check removed by a reload finished late.
            return;
        };
        let last = match &r.outcome {
            Ok(o) => LastOutcome {
                at: r.at,
                success: o.success(),
                duration_seconds: o.duration.as_secs_f64(),
                reason: o.reason().map(|x| x.as_str().to_string()),
                detail: o.failure.as_ref().map(|f| f.detail.clone()),
                phases: o.phases.iter().map(|(p, d)| (*p, d.as_secs_f64())).collect(),
                http_status: o.http_status,
                sip_code: o.sip_code,
                cert_not_after: o.cert_not_after,
                monitor_error: None,
            },
            Err(e) => LastOutcome {
                at: r.at,
                success: false,
                duration_seconds: 0.0,
                reason: None,
                detail: None,
                phases: HashMap::new(),
                http_status: None,
                sip_code: None,
                cert_not_after: None,
                monitor_error: Some(e.clone()),
            },
        };
        let mut board = self.status.write().expect("status lock");
        let status = &mut board.services[si];
        status.checks[ci].last = Some(last);
        derive_service(status);
        let service = &self.config.services[si];
        self.publish_service(service, status);
    }

    fn publish_service(&self, s: &crate::config::Service, status: &ServiceStatus) {
        self.telemetry
            .service_up
            .get_or_create(&service_labels(s))
            .set(status.up as i64);
        self.telemetry.set_service_state(&s.id, &status.state);
    }
}

fn service_labels(s: &crate::config::Service) -> ServiceLabels {
    ServiceLabels {
        service: s.id.clone(),
        category: s.category.clone(),
        supplier: s.supplier.clone(),
    }
}

/// Service state from the last outcome of each check.
fn derive_service(s: &mut ServiceStatus) {
    let critical_ok = |c: &CheckStatus| c.last.as_ref().is_some_and(|l| l.success);
    let known = |c: &CheckStatus| c.last.as_ref().is_some_and(|l| l.monitor_error.is_none());
    s.up = s.checks.iter().filter(|c| c.critical).all(critical_ok);
    let any_critical_down = s
        .checks
        .iter()
        .any(|c| c.critical && known(c) && !critical_ok(c));
    let any_unknown = s.checks.iter().any(|c| c.critical && !known(c));
    let any_degraded = s
        .checks
        .iter()
        .any(|c| !c.critical && known(c) && !critical_ok(c));
    s.state = if any_critical_down {
        "down"
    } else if any_unknown {
        "unknown"
    } else if any_degraded {
        "degraded"
    } else {
        "up"
    }
    .to_string();
}
