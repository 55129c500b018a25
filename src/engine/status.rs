//! The status board: what `GET /api/v1/status` shows of every service and
//! check, kept by the engine.

use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::config::{Check, Service};
use crate::sla::{CheckState, ServiceState};

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
    /// Shown as a JSON object; a short list costs less than a map per check.
    #[serde(serialize_with = "as_map")]
    pub phases: Vec<(&'static str, f64)>,
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

/// Parity of a `compare_with` check: the last verdict and since when the
/// new side has differed from the old one.
#[derive(Debug, Clone, Serialize)]
pub struct ParityStatus {
    /// The last judged probe matched; `None` until one was judged (the
    /// old side must be up for that).
    pub matched: Option<bool>,
    /// When parity went from match to mismatch; `None` while matching.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<jiff::Timestamp>,
    /// The old endpoint's last probe succeeded.
    pub compare_up: bool,
    /// The aspects that differed in the last judged probe, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mismatches: Vec<crate::probe::parity::Mismatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
}

impl ParityStatus {
    /// Fold in one probe's parity result, at `at`.
    pub fn observe(
        prev: Option<ParityStatus>,
        r: &crate::probe::parity::ParityResult,
        at: jiff::Timestamp,
    ) -> ParityStatus {
        let mut p = prev.unwrap_or(ParityStatus {
            matched: None,
            failing_since: None,
            compare_up: false,
            mismatches: Vec::new(),
            latency_ratio: None,
            similarity: None,
        });
        p.compare_up = r.old_up;
        // Without the old side up nothing was judged: the verdict stands.
        let Some(matched) = r.matched else {
            return p;
        };
        p.failing_since = match (matched, p.failing_since) {
            (true, _) => None,
            (false, Some(since)) => Some(since),
            (false, None) => Some(at),
        };
        p.matched = Some(matched);
        p.mismatches = r.mismatches.clone();
        p.latency_ratio = r.latency_ratio;
        p.similarity = r.similarity;
        p
    }
}

/// A check's live status. What the configuration says of it (id, kind,
/// critical, interval) is read from the shared check spec rather than
/// copied: with 10,000 checks the copies were megabytes.
#[derive(Debug, Clone)]
pub struct CheckStatus {
    pub check: Arc<Check>,
    /// Confirmed state after thresholds; shown as `up`, `down` or
    /// `unknown`.
    pub state: CheckState,
    /// Since when the confirmed state holds (back-dated to the first probe
    /// of the run that confirmed it).
    pub since: Option<jiff::Timestamp>,
    pub slow: bool,
    pub flapping: bool,
    pub last: Option<LastOutcome>,
    /// Boxed: only `compare_with` checks have it.
    pub parity: Option<Box<ParityStatus>>,
}

impl CheckStatus {
    pub fn critical(&self) -> bool {
        self.check.critical
    }
}

impl Serialize for CheckStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            id: &'a str,
            kind: &'static str,
            critical: bool,
            interval_seconds: f64,
            state: CheckState,
            since: Option<jiff::Timestamp>,
            slow: bool,
            flapping: bool,
            last: &'a Option<LastOutcome>,
            #[serde(skip_serializing_if = "Option::is_none")]
            parity: &'a Option<Box<ParityStatus>>,
        }
        Shown {
            id: &self.check.id,
            kind: self.check.kind.name(),
            critical: self.check.critical,
            interval_seconds: self.check.interval.as_secs_f64(),
            state: self.state,
            since: self.since,
            slow: self.slow,
            flapping: self.flapping,
            last: &self.last,
            parity: &self.parity,
        }
        .serialize(s)
    }
}

/// A service's live status; its names come from the shared service spec.
#[derive(Debug, Clone)]
pub struct ServiceStatus {
    pub service: Arc<Service>,
    /// The shown state: measured, or `maintenance` while a window is open,
    /// or `unknown` for `down` while the monitor's network is degraded.
    pub state: ServiceState,
    /// 1 when every critical check passed its last probe.
    pub up: bool,
    /// The change ticket of the maintenance window covering it now.
    pub maintenance: Option<String>,
    /// Start of the ongoing incident, if the service is down.
    pub incident_since: Option<jiff::Timestamp>,
    pub checks: Vec<CheckStatus>,
}

impl Serialize for ServiceStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            id: &'a str,
            name: &'a str,
            category: &'a str,
            supplier: &'a str,
            state: ServiceState,
            up: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            maintenance: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            incident_since: Option<jiff::Timestamp>,
            checks: &'a [CheckStatus],
        }
        let svc = &self.service;
        Shown {
            id: &svc.id,
            name: &svc.name,
            category: &svc.category,
            supplier: &svc.supplier,
            state: self.state,
            up: self.up,
            maintenance: self.maintenance.as_deref(),
            incident_since: self.incident_since,
            checks: &self.checks,
        }
        .serialize(s)
    }
}

/// What `GET /api/v1/status` returns.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusBoard {
    pub location: String,
    pub services: Vec<ServiceStatus>,
}

pub type SharedStatus = Arc<RwLock<StatusBoard>>;

fn as_map<S: serde::Serializer>(phases: &[(&'static str, f64)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(phases.iter().map(|(k, v)| (*k, *v)))
}

/// What the status board keeps of a finished probe.
pub fn last_outcome(r: &crate::scheduler::ProbeReport) -> LastOutcome {
    match &r.outcome {
        Ok(o) => LastOutcome {
            at: r.at,
            success: o.success(),
            duration_seconds: o.duration.as_secs_f64(),
            reason: o.reason().map(|x| x.as_str().to_string()),
            detail: o.failure.as_ref().map(|f| f.detail.clone()),
            phases: o
                .phases
                .iter()
                .map(|(p, d)| (*p, d.as_secs_f64()))
                .collect(),
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
            phases: Vec::new(),
            http_status: None,
            sip_code: None,
            cert_not_after: None,
            monitor_error: Some(e.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_status_json_shows_states_as_the_words_the_api_has_always_used() {
        let config = Config::from_str(
            "t.yaml",
            "services:\n  - id: portal\n    checks:\n      - id: home\n        http:\n          url: http://127.0.0.1:9/\n",
        )
        .unwrap();
        let service = config.services[0].clone();
        let check = service.checks[0].clone();
        let json = |state: ServiceState, check_state: CheckState| {
            let shown = ServiceStatus {
                service: service.clone(),
                state,
                up: false,
                maintenance: None,
                incident_since: None,
                checks: vec![CheckStatus {
                    check: check.clone(),
                    state: check_state,
                    since: None,
                    slow: false,
                    flapping: false,
                    last: None,
                    parity: None,
                }],
            };
            serde_json::to_value(&shown).unwrap()
        };
        for (state, word) in [
            (ServiceState::Up, "up"),
            (ServiceState::Degraded, "degraded"),
            (ServiceState::Down, "down"),
            (ServiceState::Unknown, "unknown"),
            (ServiceState::Maintenance, "maintenance"),
        ] {
            assert_eq!(json(state, CheckState::Up)["state"], word);
        }
        for (state, word) in [
            (CheckState::Up, "up"),
            (CheckState::Down, "down"),
            (CheckState::Unknown, "unknown"),
        ] {
            assert_eq!(json(ServiceState::Up, state)["checks"][0]["state"], word);
        }
    }
}
