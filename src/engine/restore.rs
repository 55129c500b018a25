//! Restoring a service's state from the store at start-up (and when a
//! reload changes how its state is decided): after a crash, an incident
//! still going on continues as the same incident, the time the daemon was
//! down counts as unknown, and the period-to-date figures come back.
//!
//! The stored raw results of the recent past are replayed through a fresh
//! tracker, the same code that saw them live; older time comes from the
//! stored service transitions.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use super::{ServiceRuntime, Sink};
use crate::config::Service;
use crate::sla::{self, ServiceState, ServiceTracker, TimeRange, Timeline};
use crate::store::convert::{incident_record, probe_result, transition_record};
use crate::store::{Store, WriteOp};

/// Minimum stretch of raw results replayed at start-up.
const REPLAY: SignedDuration = SignedDuration::from_mins(15);
/// How far back stored transitions are loaded: the longest SLA period
/// (a month) plus the longest burn window (3 days).
const HISTORY: SignedDuration = SignedDuration::from_hours(24 * 35);

pub struct Restorer {
    store: Arc<dyn Store>,
}

/// Time a tracker needs from its start before its verdicts match the ones
/// made live: every check confirmed at least once.
fn warmup(service: &Service) -> SignedDuration {
    let longest = service
        .checks
        .iter()
        .map(|c| {
            let runs = c.failure_threshold.max(c.success_threshold) + 1;
            c.interval * runs + c.timeout
        })
        .max()
        .unwrap_or_default();
    SignedDuration::try_from(longest).unwrap_or(REPLAY)
}

/// A service's stored timeline over `[from, to)`.
pub fn stored_timeline(
    store: &dyn Store,
    service: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Timeline, crate::store::StoreError> {
    let records = store.service_transitions(Some(service), from, to)?;
    let refs: Vec<_> = records.iter().collect();
    Ok(crate::store::convert::stored_timeline(from, &refs))
}

impl Restorer {
    pub fn new(store: Arc<dyn Store>) -> Restorer {
        Restorer { store }
    }

    pub fn restore(&self, service: &Service, now: Timestamp, sink: &dyn Sink) -> ServiceRuntime {
        let now = sla::range::to_millisecond(now);
        let warmup = warmup(service);
        let open = match self.store.open_incident(&service.id) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(service = %service.id, error = %e, "cannot read the open incident");
                None
            }
        };
        let mut start = now - REPLAY - warmup;
        if let Some(i) = &open {
            start = start.min(i.started_at - warmup);
        }
        let start = sla::range::to_millisecond(start.max(now - HISTORY));
        let mut tracker = ServiceTracker::new(service, start);
        let mut replayed = 0usize;
        let fed = self.store.results(&service.id, None, start, now, &mut |r| {
            replayed += 1;
            tracker.observe(&probe_result(r));
        });
        if let Err(e) = fed {
            tracing::error!(service = %service.id, error = %e, "cannot replay stored results");
        }
        let cut = (start + warmup).min(now);
        let history = match stored_timeline(self.store.as_ref(), &service.id, now - HISTORY, cut) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(service = %service.id, error = %e, "cannot read stored transitions");
                Timeline::new(now - HISTORY, ServiceState::Unknown)
            }
        };

        // From the cut on, the store is made to agree with the tracker.
        let mut ops = vec![WriteOp::RetractServiceTransitionsFrom {
            service: service.id.clone(),
            from: cut,
        }];
        let range = TimeRange::new(cut, now + SignedDuration::from_millis(1));
        ops.extend(
            tracker
                .timeline()
                .transitions_in(range)
                .iter()
                .map(|t| WriteOp::ServiceTransition(transition_record(&service.id, t))),
        );
        let incidents: Vec<sla::Incident> = sla::incident::incidents(tracker.timeline())
            .into_iter()
            .filter(|i| i.end.is_none_or(|e| e > cut))
            .collect();
        for i in &incidents {
            ops.push(WriteOp::Incident(incident_record(&service.id, i)));
        }
        if let Some(stored) = &open
            && !incidents.iter().any(|i| i.start == stored.started_at)
        {
            // The replay does not see that incident going on: it ended
            // while the daemon was away, at the latest where replay begins.
            ops.push(WriteOp::CloseIncident {
                service: service.id.clone(),
                started_at: stored.started_at,
                ended_at: cut.max(stored.started_at),
            });
        }
        sink.write(ops);
        let open_incident = incidents
            .iter()
            .rev()
            .find(|i| i.is_open())
            .map(|i| i.start);
        tracing::debug!(service = %service.id, replayed, %cut, "state restored from the store");
        ServiceRuntime {
            tracker,
            history,
            cut,
            slas: Vec::new(),
            open_incident,
            maintenance: None,
        }
    }
}
