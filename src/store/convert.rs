//! The one place stored records become domain types and back: a probe
//! outcome as a [`ResultRecord`] and a stored result as the state machine
//! reads it, SLA transitions and incidents as records, and stored
//! transitions as a timeline. The live engine, the start-up restore,
//! recomputation and the SLA report all go through here, so that a result
//! replayed from the store is read exactly as it was live.

use jiff::Timestamp;

use super::{IncidentRecord, ResultRecord, ResultSource, ServiceTransitionRecord};
use crate::probe::{FailureReason, ProbeOutcome};
use crate::sla::range::to_millisecond;
use crate::sla::{Incident, ProbeResult, ServiceState, ServiceTransition, Timeline};

/// A live probe's outcome as stored. The detail is kept for failures
/// only: every byte kept on successes costs about 100 MB over 35 days at
/// 1,000 checks every 30 s.
pub fn result_record(
    service: &str,
    check: &str,
    at: Timestamp,
    outcome: &ProbeOutcome,
) -> ResultRecord {
    ResultRecord {
        service: service.to_string(),
        check: check.to_string(),
        at,
        success: outcome.success(),
        duration: outcome.duration,
        reason: outcome.reason().map(|x| x.as_str().to_string()),
        detail: outcome.failure.as_ref().map(|f| f.detail.clone()),
        source: ResultSource::Live,
    }
}

/// A stored result as the state machine reads it. A reason this version
/// does not know (written by a newer one, or imported) reads as none.
pub fn probe_result(r: ResultRecord) -> ProbeResult {
    ProbeResult {
        check_id: r.check,
        at: r.at,
        success: r.success,
        duration: r.duration,
        reason: r.reason.as_deref().and_then(FailureReason::parse),
        detail: r.detail.unwrap_or_default(),
    }
}

/// A service transition as stored: the new state and its cause (JSON).
pub fn transition_record(service: &str, t: &ServiceTransition) -> ServiceTransitionRecord {
    ServiceTransitionRecord {
        service: service.to_string(),
        at: t.at,
        state: t.to.as_str().to_string(),
        cause: serde_json::to_string(&t.cause).ok(),
    }
}

/// A stored service transition as the SLA code reads it (the store keeps
/// only the new state; `from` is filled in by the timeline).
pub fn stored_transition(r: &ServiceTransitionRecord) -> ServiceTransition {
    ServiceTransition {
        at: r.at,
        from: ServiceState::Unknown,
        to: ServiceState::parse(&r.state).unwrap_or(ServiceState::Unknown),
        cause: r
            .cause
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default(),
    }
}

/// A service's stored timeline from `start` on; the transition in force at
/// `start` (stored earlier) begins it.
pub fn stored_timeline(start: Timestamp, records: &[&ServiceTransitionRecord]) -> Timeline {
    let start = to_millisecond(start);
    Timeline::from_transitions(
        start,
        ServiceState::Unknown,
        records.iter().map(|r| {
            let mut t = stored_transition(r);
            t.at = t.at.max(start);
            t
        }),
    )
}

/// An incident as stored, with no evidence attached.
pub fn incident_record(service: &str, i: &Incident) -> IncidentRecord {
    IncidentRecord {
        id: 0,
        service: service.to_string(),
        started_at: i.start,
        ended_at: i.end,
        cause: serde_json::to_value(&i.cause).unwrap_or_default(),
        evidence: Vec::new(),
    }
}
