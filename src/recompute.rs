//! Rebuilding stored state from the raw results: a service's transitions
//! and incidents over a range are derived again from every stored result
//! (warm-up before the range, margin after it) with the current
//! configuration, and written in place of the old ones. An import does
//! this for the range it loaded; `continuity recompute` does it for a
//! range and puts the SLA figures before and after on record.
//!
//! Outside the range nothing changes: where the recomputed state at an
//! edge differs from the stored one, a transition at the edge joins the
//! two, and an incident that crosses an edge keeps its stored start or
//! end on the far side.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::{Config, Service, closest};
use crate::report::{PeriodSelector, ReportError, SlaRow, sla_report, snapshot};
use crate::sla::range::{from_ms, ms, to_millisecond};
use crate::sla::{self, ServiceState, ServiceTransition, TimeRange, Timeline};
use crate::store::convert::{
    incident_record, probe_result, stored_timeline, stored_transition, transition_record,
};
use crate::store::{IncidentRecord, RecomputationRecord, SlaSnapshot, Store, StoreError, WriteOp};

/// Why state could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RecomputeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("no service '{id}' in the configuration{hint}")]
    UnknownService { id: String, hint: String },
    #[error("nothing to recompute: {0}")]
    EmptyRange(String),
    #[error(
        "service '{service}' has no raw results from {from} to {until}, but its stored state there is known: the results were pruned (store.retention) or never stored here; recompute from {until} on, or import the results first"
    )]
    NoResults {
        service: String,
        from: Timestamp,
        until: Timestamp,
    },
    #[error(
        "the state was rebuilt, but the recomputation could not be put on record ({0}); run the same recompute again to record it"
    )]
    NotRecorded(StoreError),
}

/// What rebuilding one service's range changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewriteSummary {
    pub service: String,
    /// The range whose transitions were replaced; `None` when nothing of
    /// it was complete yet.
    pub range: Option<TimeRange>,
    /// Raw results read (warm-up and margin included).
    pub results: usize,
    /// Results of checks the configuration no longer has, or out of order.
    pub ignored: usize,
    pub transitions_retracted: usize,
    pub transitions_written: usize,
    pub incidents_retracted: usize,
    pub incidents_written: usize,
}

/// The writes that put a rebuilt range in place, and what they change.
#[derive(Debug, Clone, Default)]
pub struct Rewrite {
    pub summary: RewriteSummary,
    /// Apply in one `Store::write_batch`, in this order.
    pub ops: Vec<WriteOp>,
}

/// Derive `service`'s state over `range` again from all its stored raw
/// results, with its current check rules, and return the writes that
/// replace the stored transitions and incidents of the range. The range
/// end is cut to the instant results are complete up to (now minus the
/// longest timeout and 2 s).
///
/// Refuses ([`RecomputeError::NoResults`]) when the start of the range has
/// no raw results but a known stored state: rebuilding would turn
/// recorded history into unknown time.
pub fn rewrite_service(
    store: &dyn Store,
    service: &Service,
    range: TimeRange,
    now: Timestamp,
) -> Result<Rewrite, RecomputeError> {
    let complete_until = watermark(service, to_millisecond(now));
    let range = TimeRange::new(
        to_millisecond(range.start),
        to_millisecond(range.end).min(complete_until),
    );
    let mut summary = RewriteSummary {
        service: service.id.clone(),
        ..RewriteSummary::default()
    };
    if range.is_empty() {
        return Ok(Rewrite {
            summary,
            ops: Vec::new(),
        });
    }
    summary.range = Some(range);
    let warm = warmup_ms(service);
    let fetch = TimeRange::new(
        shift(range.start, -warm),
        shift(range.end, margin_ms(service)),
    );
    let mut results = Vec::new();
    store.results(&service.id, None, fetch.start, fetch.end, &mut |r| {
        results.push(probe_result(r))
    })?;
    summary.results = results.len();
    let first_result = results.first().map(|r| r.at);
    let derived = sla::derive(service, &results, range, fetch.end.min(complete_until));
    drop(results);
    summary.ignored = derived.ignored;

    // The stored incidents touching the range, and the stored transitions
    // from the start of the first to the end of the last: incidents that
    // cross an edge keep their stored part beyond it.
    let touching = store.incidents(
        Some(&service.id),
        shift(range.start, -1),
        shift(range.end, 1),
    )?;
    let lo = touching
        .iter()
        .map(|i| i.started_at)
        .fold(range.start, Timestamp::min);
    let hi = touching
        .iter()
        .filter_map(|i| i.ended_at)
        .fold(range.end, Timestamp::max);
    let old_records = store.service_transitions(Some(&service.id), lo, shift(hi, 1))?;
    let old: Vec<ServiceTransition> = old_records.iter().map(stored_transition).collect();

    if first_result.is_none_or(|f| f > shift(range.start, warm)) {
        let until = first_result.unwrap_or(range.end).min(range.end);
        let refs: Vec<_> = old_records.iter().collect();
        let known = stored_timeline(lo, &refs)
            .segments(TimeRange::new(range.start, until))
            .iter()
            .any(|s| s.state != ServiceState::Unknown);
        if known {
            return Err(RecomputeError::NoResults {
                service: service.id.clone(),
                from: range.start,
                until,
            });
        }
    }

    let merged = merge(&old, &derived.timeline, lo, range);
    let in_range = |at: Timestamp| range.start <= at && at <= range.end;

    let new_records: Vec<_> = merged
        .transitions()
        .iter()
        .filter(|t| in_range(t.at))
        .map(|t| transition_record(&service.id, t))
        .collect();
    let old_in_range: Vec<_> = old_records.iter().filter(|t| in_range(t.at)).collect();
    let mut ops = Vec::new();
    for o in &old_in_range {
        if !new_records.contains(o) {
            ops.push(WriteOp::RetractServiceTransition {
                service: service.id.clone(),
                at: o.at,
            });
            summary.transitions_retracted += 1;
        }
    }
    for n in &new_records {
        if !old_in_range.contains(&n) {
            ops.push(WriteOp::ServiceTransition(n.clone()));
            summary.transitions_written += 1;
        }
    }

    let new_incidents: Vec<IncidentRecord> = sla::incident::incidents(&merged)
        .iter()
        .filter(|i| i.start <= range.end && i.end.is_none_or(|e| e >= range.start))
        .map(|i| incident_record(&service.id, i))
        .collect();
    let new_starts: HashSet<Timestamp> = new_incidents.iter().map(|i| i.started_at).collect();
    let old_by_start: HashMap<Timestamp, &IncidentRecord> =
        touching.iter().map(|i| (i.started_at, i)).collect();
    for o in &touching {
        if !new_starts.contains(&o.started_at) {
            ops.push(WriteOp::RetractIncident {
                service: service.id.clone(),
                started_at: o.started_at,
            });
            summary.incidents_retracted += 1;
        }
    }
    for n in new_incidents {
        let same = old_by_start
            .get(&n.started_at)
            .is_some_and(|o| o.ended_at == n.ended_at && o.cause == n.cause);
        if !same {
            ops.push(WriteOp::Incident(n));
            summary.incidents_written += 1;
        }
    }
    Ok(Rewrite { summary, ops })
}

/// The stored timeline with `range` replaced by the derived one: stored
/// before the range, derived inside it, stored again from its end on.
fn merge(
    old: &[ServiceTransition],
    derived: &Timeline,
    lo: Timestamp,
    range: TimeRange,
) -> Timeline {
    let before_lo = old
        .iter()
        .rev()
        .find(|t| t.at < lo)
        .map_or(ServiceState::Unknown, |t| t.to);
    let mut points: Vec<ServiceTransition> = old
        .iter()
        .filter(|t| t.at >= lo && t.at < range.start)
        .cloned()
        .collect();
    let at_start = derived.point_at(range.start);
    points.push(ServiceTransition {
        at: range.start,
        from: ServiceState::Unknown,
        to: at_start.map_or(ServiceState::Unknown, |p| p.state),
        cause: at_start.map(|p| p.cause.clone()).unwrap_or_default(),
    });
    points.extend(
        derived
            .points()
            .iter()
            .filter(|p| p.at > range.start && p.at < range.end)
            .map(|p| ServiceTransition {
                at: p.at,
                from: ServiceState::Unknown,
                to: p.state,
                cause: p.cause.clone(),
            }),
    );
    if !old.iter().any(|t| t.at == range.end) {
        // Time after the range keeps its stored state.
        let in_force = old.iter().rev().find(|t| t.at < range.end);
        points.push(ServiceTransition {
            at: range.end,
            from: ServiceState::Unknown,
            to: in_force.map_or(ServiceState::Unknown, |t| t.to),
            cause: in_force.map(|t| t.cause.clone()).unwrap_or_default(),
        });
    }
    points.extend(old.iter().filter(|t| t.at >= range.end).cloned());
    // Starting just before `lo` in the state stored then makes a change at
    // `lo` itself a transition.
    Timeline::from_transitions(shift(lo, -1), before_lo, points)
}

/// A request to recompute a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecomputeRequest {
    pub from: Timestamp,
    pub to: Timestamp,
    /// One service, or every configured service.
    pub service: Option<String>,
    pub reason: String,
    /// Who asked (`$USER`).
    pub who: String,
}

/// Figures as they stood before a recomputation, and where they came from:
/// the latest SLA snapshot of that service, SLA and period when there is
/// one (e.g. from the weekly report), else the stored state counted with
/// the current configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiguresOnRecord {
    pub basis: String,
    #[serde(flatten)]
    pub row: SlaRow,
}

/// What a recomputation did.
#[derive(Debug, Clone, PartialEq)]
pub struct Recomputation {
    /// Id of the recomputation record.
    pub id: i64,
    pub range: TimeRange,
    pub rewrites: Vec<RewriteSummary>,
    pub before: Vec<FiguresOnRecord>,
    pub after: Vec<SlaRow>,
}

/// Rebuild states and incidents of `req.from..req.to` from the stored raw
/// results with `config` (thresholds, calendars, maintenance windows),
/// write them in one transaction in place of the old ones, and put the
/// figures of every period the range touches, before and after, on record
/// (a recomputation record with SLA snapshots of the new figures).
/// `continuity sla` then shows the new figures with a note. The daemon may
/// keep running meanwhile.
pub fn recompute(
    config: &Config,
    store: &dyn Store,
    req: &RecomputeRequest,
    now: Timestamp,
) -> Result<Recomputation, RecomputeError> {
    let now = to_millisecond(now);
    let services: Vec<&Service> = match &req.service {
        None => config.services.iter().map(|s| &**s).collect(),
        Some(id) => vec![config.service(id).ok_or_else(|| {
            let hint = closest(id, config.services.iter().map(|s| s.id.as_str()))
                .map(|c| format!(" (did you mean '{c}'?)"))
                .unwrap_or_default();
            RecomputeError::UnknownService {
                id: id.clone(),
                hint,
            }
        })?],
    };
    let complete = services
        .iter()
        .map(|s| watermark(s, now))
        .min()
        .unwrap_or(now);
    let range = TimeRange::new(
        to_millisecond(req.from),
        to_millisecond(req.to).min(complete),
    );
    if req.from >= req.to {
        return Err(RecomputeError::EmptyRange(format!(
            "the range ends ({}) before it starts ({})",
            req.to, req.from
        )));
    }
    if range.is_empty() {
        return Err(RecomputeError::EmptyRange(format!(
            "the range starts at {}, but results are complete only up to {complete}",
            req.from
        )));
    }
    let selector = PeriodSelector::Overlapping(range);
    let filter = req.service.as_deref();

    let snapshots: HashMap<(String, String, String), SlaSnapshot> = store
        .latest_sla_snapshots(filter)?
        .into_iter()
        .map(|s| ((s.service.clone(), s.sla.clone(), s.period.clone()), s))
        .collect();
    let before: Vec<FiguresOnRecord> = sla_report(config, store, selector.clone(), filter, now)?
        .into_iter()
        .map(|row| {
            let key = (row.service.clone(), row.sla.clone(), row.period.clone());
            let recorded = snapshots.get(&key).and_then(|s| {
                let prev = serde_json::from_value::<SlaRow>(s.figures.clone()).ok()?;
                Some((s, prev))
            });
            match recorded {
                Some((s, prev)) => FiguresOnRecord {
                    basis: format!("snapshot {} computed {}", s.id, s.computed_at),
                    row: prev,
                },
                None => FiguresOnRecord {
                    basis: "stored state counted with the current configuration".into(),
                    row,
                },
            }
        })
        .collect();

    let mut ops = Vec::new();
    let mut rewrites = Vec::with_capacity(services.len());
    for s in &services {
        let rw = rewrite_service(store, s, range, now)?;
        ops.extend(rw.ops);
        rewrites.push(rw.summary);
    }
    store.write_batch(&ops)?;

    let mut after = sla_report(config, store, selector, filter, now)?;
    for row in &mut after {
        // The note would name an earlier recomputation; this one is the
        // record itself.
        row.recomputed = None;
    }
    let snaps: Vec<SlaSnapshot> = after.iter().map(|r| snapshot(r, now)).collect();
    let record = RecomputationRecord {
        id: 0,
        created_at: now,
        reason: req.reason.clone(),
        config_digest: config.digest.clone(),
        service: req.service.clone(),
        from: range.start,
        to: range.end,
        before: serde_json::to_value(&before).unwrap_or_default(),
        after: serde_json::to_value(&after).unwrap_or_default(),
        who: req.who.clone(),
    };
    let id = store
        .insert_recomputation(&record, &snaps)
        .map_err(RecomputeError::NotRecorded)?;
    Ok(Recomputation {
        id,
        range,
        rewrites,
        before,
        after,
    })
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn shift(t: Timestamp, delta_ms: i64) -> Timestamp {
    from_ms(ms(t).saturating_add(delta_ms))
}

/// Results before a range needed for every check to be confirmed once
/// (a verdict needs a full run of its threshold).
pub fn warmup_ms(service: &Service) -> i64 {
    service
        .checks
        .iter()
        .map(|c| {
            let runs = i64::from(c.failure_threshold.max(c.success_threshold)) + 1;
            millis(c.interval)
                .saturating_mul(runs)
                .saturating_add(millis(c.timeout))
        })
        .max()
        .unwrap_or(0)
}

/// Results after a range whose verdicts may be back-dated into it.
pub fn margin_ms(service: &Service) -> i64 {
    service
        .checks
        .iter()
        .map(|c| {
            let runs = i64::from(c.failure_threshold.max(c.success_threshold));
            millis(c.interval)
                .saturating_mul(runs)
                .saturating_add(millis(c.timeout))
        })
        .max()
        .unwrap_or(0)
}

/// How long a result of the service's slowest check stands.
pub fn standing_ms(service: &Service) -> i64 {
    service
        .checks
        .iter()
        .map(|c| millis(c.interval).saturating_add(millis(c.timeout)))
        .max()
        .unwrap_or(0)
}

/// Results of `service` timestamped before this are all stored: a probe
/// still running started less than its timeout ago (plus scheduling
/// slack), as the live engine assumes.
pub fn watermark(service: &Service, now: Timestamp) -> Timestamp {
    let longest = service
        .checks
        .iter()
        .map(|c| millis(c.timeout))
        .max()
        .unwrap_or(0);
    shift(now, -longest.saturating_add(2_000))
}
