//! The status board: what `GET /api/v1/status` shows of every service and
//! check, kept by the engine.

use std::sync::{Arc, RwLock};

use serde::Serialize;

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

#[derive(Debug, Clone, Serialize)]
pub struct CheckStatus {
    pub id: String,
    pub kind: &'static str,
    pub critical: bool,
    pub interval_seconds: f64,
    /// Confirmed state after thresholds: `up`, `down` or `unknown`.
    pub state: &'static str,
    /// Since when the confirmed state holds (back-dated to the first probe
    /// of the run that confirmed it).
    pub since: Option<jiff::Timestamp>,
    pub slow: bool,
    pub flapping: bool,
    pub last: Option<LastOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub id: String,
    pub name: String,
    pub category: String,
    pub supplier: String,
    /// `up`, `degraded`, `down`, `maintenance` or `unknown`.
    pub state: &'static str,
    /// 1 when every critical check passed its last probe.
    pub up: bool,
    /// The change ticket of the maintenance window covering it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<String>,
    /// Start of the ongoing incident, if the service is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_since: Option<jiff::Timestamp>,
    pub checks: Vec<CheckStatus>,
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
