//! SLA figures per service, SLA and period, computed from what the store
//! holds: the stored service transitions (so a recomputed range counts as
//! recomputed), the configured and ad-hoc maintenance windows and the SLA's
//! calendar, counted by [`crate::sla`] exactly as docs/sla.md says. The
//! CLI (`continuity sla`), the API and the weekly report all call
//! [`sla_report`].

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::schedule::{MaintenanceEffect, MaintenanceScope, MaintenanceTime, SlaPeriod};
use crate::config::{Config, MaintenanceSpec, Service, SlaSpec, closest};
use crate::migration::supplier_stretches;
use crate::sla::range::{from_ms, ms, to_millisecond};
use crate::sla::{
    self, CheckCause, Period, PeriodLabelError, ServiceMaintenance, SlaCalendar, TimeRange,
    Timeline,
};
use crate::store::convert::stored_timeline;
use crate::store::{
    IncidentRecord, MaintenanceRecord, RecomputationRecord, ServiceTransitionRecord, SlaSnapshot,
    Store, StoreError,
};

/// How many of the newest recomputations are searched for the note on a
/// row. Each is one explicit operator action, so a store rarely holds
/// more; older ones still count through the transitions they rewrote.
const RECOMPUTATIONS_SCANNED: usize = 1000;

/// Which period of each SLA to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodSelector {
    /// The period of each SLA's own kind that contains `now`.
    Current,
    /// One labelled period (`2026-W47`, `2026-11`, `28d@…`) for every SLA,
    /// whatever its own period kind: a monthly SLA reported for a week is
    /// counted, and its budget sized, over that week.
    Label(String),
    /// Every period of each SLA's own kind that overlaps the range; for a
    /// rolling SLA, the 28 days ending at the range's end (or now).
    Overlapping(TimeRange),
}

/// A report that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Period(#[from] PeriodLabelError),
    #[error("no service '{id}' in the configuration{hint}")]
    UnknownService { id: String, hint: String },
}

/// One incident of a row's service that overlaps the row's period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentSummary {
    pub start: Timestamp,
    /// `None` while the service is still down.
    pub end: Option<Timestamp>,
    /// From start to end (or to now while open), including any part
    /// outside the period or outside business hours.
    pub duration_seconds: f64,
    /// The part of it inside the row's time: the period, or on a
    /// supplier's row of a period that spans a cutover, that supplier's
    /// share of it (wall-clock, before hours and maintenance).
    #[serde(default)]
    pub attributed_seconds: f64,
    /// The failing checks and first failures that took the service down.
    pub cause: String,
}

/// The latest recomputation that covered a row's service and period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecomputedNote {
    /// Id of the recomputation record.
    pub id: i64,
    pub at: Timestamp,
    pub reason: String,
    /// SHA-256 of the configuration the figures were recomputed with.
    pub config_digest: String,
    pub by: String,
}

/// The figures of one SLA of one service over one period, counted from the
/// period's start up to `until` (the period's end, or now while it runs).
///
/// Durations are seconds with millisecond precision. `availability` is a
/// ratio (0.9975, not 99.75), `None` when no time was eligible; the
/// buckets add up as docs/sla.md says: `total = outside_hours +
/// excluded_maintenance + unknown + eligible` and `eligible = good + down`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaRow {
    pub service: String,
    /// The service's display name.
    pub name: String,
    pub category: String,
    /// The supplier the time is attributed to (docs/sla.md, "Suppliers
    /// and cutovers"); `*` on the combined row of a period that spans a
    /// cutover, whose supplier rows come right before it.
    pub supplier: String,
    pub sla: String,
    /// Percent, e.g. 99.8.
    pub objective: f64,
    pub calendar: String,
    /// The period's label, e.g. `2026-W47`.
    pub period: String,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    /// Figures count up to here: the period's end, or now while it runs.
    pub until: Timestamp,
    pub availability: Option<f64>,
    /// Availability at or above the objective; `None` without eligible time.
    pub met: Option<bool>,
    pub total_seconds: f64,
    pub eligible_seconds: f64,
    /// Up or degraded.
    pub good_seconds: f64,
    /// The degraded part of `good_seconds`.
    pub degraded_seconds: f64,
    pub down_seconds: f64,
    pub unknown_seconds: f64,
    pub excluded_maintenance_seconds: f64,
    pub outside_hours_seconds: f64,
    /// Opening time of the whole period minus the excluding maintenance
    /// planned in it.
    pub budget_planned_seconds: f64,
    /// `planned × (100 − objective) / 100`.
    pub budget_allowed_seconds: f64,
    /// Down time so far.
    pub budget_used_seconds: f64,
    /// `allowed − used`; negative once overspent.
    pub budget_remaining_seconds: f64,
    /// `remaining / allowed`; `None` when nothing is allowed.
    pub budget_remaining_ratio: Option<f64>,
    pub incident_count: usize,
    pub incidents: Vec<IncidentSummary>,
    /// Set when a recomputation covered this service and period: the
    /// figures then come from the recomputed state.
    pub recomputed: Option<RecomputedNote>,
}

/// The figures of every SLA of every service (or of `service` alone) for
/// the selected period, as of `now`.
///
/// The store is read once per kind of record (transitions, incidents,
/// maintenance windows, recomputations, last results) for all services
/// together, so a report over many services costs little more than one
/// over a single service.
///
/// Time after a service's last stored result stops standing
/// (`interval + timeout` after it, for its critical checks) counts as
/// unknown, so a report made while the daemon is stopped does not stretch
/// the last known state up to now.
pub fn sla_report(
    config: &Config,
    store: &dyn Store,
    period: PeriodSelector,
    service: Option<&str>,
    now: Timestamp,
) -> Result<Vec<SlaRow>, ReportError> {
    let now = to_millisecond(now);
    let services: Vec<&Service> = match service {
        None => config.services.iter().map(|s| &**s).collect(),
        Some(id) => vec![
            config
                .service(id)
                .ok_or_else(|| unknown_service(config, id))?,
        ],
    };
    let calendars: BTreeMap<&str, SlaCalendar> = services
        .iter()
        .flat_map(|s| s.slas.iter())
        .map(|spec| {
            (
                spec.calendar.as_str(),
                SlaCalendar::named(&spec.calendar, &config.calendars),
            )
        })
        .collect();

    let mut plans: Vec<(usize, &SlaSpec, Period)> = Vec::new();
    for (si, s) in services.iter().enumerate() {
        for spec in &s.slas {
            let tz = calendars[spec.calendar.as_str()].tz();
            for p in periods(spec.period, &period, tz, now)? {
                plans.push((si, spec, p));
            }
        }
    }
    let Some(span) = span_of(plans.iter().map(|(_, _, p)| p.range)) else {
        return Ok(Vec::new());
    };

    let transitions = store.service_transitions(service, span.start, span.end)?;
    let mut by_service: HashMap<&str, Vec<&ServiceTransitionRecord>> = HashMap::new();
    for t in &transitions {
        by_service.entry(t.service.as_str()).or_default().push(t);
    }
    let mut incidents: HashMap<&str, Vec<&IncidentRecord>> = HashMap::new();
    let stored_incidents = store.incidents(service, span.start, span.end)?;
    for i in &stored_incidents {
        incidents.entry(i.service.as_str()).or_default().push(i);
    }
    let specs: Vec<MaintenanceSpec> = config
        .maintenances
        .iter()
        .cloned()
        .chain(
            store
                .maintenances(span.start, span.end, false)?
                .iter()
                .map(adhoc_spec),
        )
        .collect();
    let recomputations = store.recomputations(None, RECOMPUTATIONS_SCANNED)?;
    let last_results = store.last_results()?;
    let horizons = horizons(&services, &last_results);

    let timelines: Vec<Timeline> = services
        .iter()
        .map(|s| {
            stored_timeline(
                span.start,
                by_service.get(s.id.as_str()).map_or(&[][..], Vec::as_slice),
            )
        })
        .collect();
    let mut maintenance: HashMap<(usize, TimeRange), ServiceMaintenance> = HashMap::new();
    let mut rows = Vec::with_capacity(plans.len());
    for (si, spec, period) in plans {
        let s = services[si];
        let calendar = &calendars[spec.calendar.as_str()];
        let until = now.clamp(period.start(), period.end());
        let known_until = horizons[si].map_or(until, |h| h.clamp(period.start(), until));
        let segments = timelines[si].segments(TimeRange::new(period.start(), known_until));
        let excluded = &maintenance
            .entry((si, period.range))
            .or_insert_with(|| ServiceMaintenance::for_service(&specs, s, period.range))
            .excluded;
        let recomputed = recomputations
            .iter()
            .find(|r| covers(r, &s.id, period.range))
            .map(|r| RecomputedNote {
                id: r.id,
                at: r.created_at,
                reason: r.reason.clone(),
                config_digest: r.config_digest.clone(),
                by: r.who.clone(),
            });
        let service_incidents = incidents.get(s.id.as_str()).map_or(&[][..], Vec::as_slice);
        let count = |supplier: &str, stretches: &[TimeRange]| {
            let budget = budget_over(
                spec.objective,
                period.range,
                stretches,
                until,
                &segments,
                calendar,
                excluded,
            );
            let listed = incidents_in(service_incidents, stretches, until, now);
            row(
                s,
                spec,
                &period,
                supplier,
                until,
                &budget,
                listed,
                recomputed.clone(),
            )
        };
        // A period that spans a cutover: one row per supplier with only
        // its own time, then the combined row (docs/sla.md).
        let stretches = supplier_stretches(&s.supplier, &s.migrations, period.range);
        if let [(supplier, _)] = stretches.as_slice() {
            rows.push(count(supplier, &[period.range]));
            continue;
        }
        let mut suppliers: Vec<&str> = Vec::new();
        for (supplier, _) in &stretches {
            if !suppliers.contains(supplier) {
                suppliers.push(supplier);
            }
        }
        for supplier in suppliers {
            let own: Vec<TimeRange> = stretches
                .iter()
                .filter(|(s, _)| *s == supplier)
                .map(|(_, r)| *r)
                .collect();
            rows.push(count(supplier, &own));
        }
        rows.push(count(ALL_SUPPLIERS, &[period.range]));
    }
    Ok(rows)
}

/// The `supplier` of a service's combined row when a period spans a
/// cutover.
pub const ALL_SUPPLIERS: &str = "*";

/// The error budget of `period` counted over `stretches` of it only (a
/// supplier's share of a period that spans a cutover): opening time,
/// allowance and figures are those of the stretches, as if the rest of
/// the period were not there. One stretch equal to the period is
/// [`sla::error_budget`] exactly.
fn budget_over(
    objective: f64,
    period: TimeRange,
    stretches: &[TimeRange],
    until: Timestamp,
    segments: &[sla::Segment],
    calendar: &SlaCalendar,
    excluded: &sla::RangeSet,
) -> sla::ErrorBudget {
    let parts: Vec<sla::ErrorBudget> = stretches
        .iter()
        .map(|r| {
            sla::error_budget(
                objective,
                *r,
                until.clamp(r.start, r.end),
                segments,
                calendar,
                excluded,
            )
        })
        .collect();
    let planned: i64 = parts.iter().map(|b| b.planned).sum();
    let to_date = parts
        .iter()
        .fold(sla::SlaFigures::default(), |acc, b| acc.plus(&b.to_date));
    let allowed =
        i64::try_from(i128::from(planned) * i128::from(sla::budget_ppm(objective)) / 1_000_000)
            .unwrap_or(i64::MAX);
    let remaining = allowed - to_date.down;
    sla::ErrorBudget {
        period,
        planned,
        allowed,
        used: to_date.down,
        remaining,
        remaining_ratio: (allowed > 0).then(|| remaining as f64 / allowed as f64),
        to_date,
    }
}

/// The incidents that overlap `stretches` before `until`, each with its
/// true start and end and the part of it inside the stretches.
fn incidents_in(
    incidents: &[&IncidentRecord],
    stretches: &[TimeRange],
    until: Timestamp,
    now: Timestamp,
) -> Vec<IncidentSummary> {
    incidents
        .iter()
        .filter_map(|i| {
            let end = i.ended_at.unwrap_or(now).max(i.started_at);
            let mut listed = false;
            let mut inside = 0;
            for r in stretches {
                let r_end = r.end.min(until);
                if i.started_at < r_end && i.ended_at.is_none_or(|e| e > r.start) {
                    listed = true;
                    inside += (ms(end.min(r_end)) - ms(i.started_at.max(r.start))).max(0);
                }
            }
            if !listed {
                return None;
            }
            Some(IncidentSummary {
                start: i.started_at,
                end: i.ended_at,
                duration_seconds: seconds(ms(end) - ms(i.started_at)),
                attributed_seconds: seconds(inside),
                cause: cause_summary(&i.cause),
            })
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn row(
    s: &Service,
    spec: &SlaSpec,
    period: &Period,
    supplier: &str,
    until: Timestamp,
    budget: &sla::ErrorBudget,
    listed: Vec<IncidentSummary>,
    recomputed: Option<RecomputedNote>,
) -> SlaRow {
    let f = budget.to_date;
    let ppm = i128::from(sla::budget_ppm(spec.objective));
    SlaRow {
        service: s.id.clone(),
        name: s.name.clone(),
        category: s.category.clone(),
        supplier: supplier.to_string(),
        sla: spec.name.clone(),
        objective: spec.objective,
        calendar: spec.calendar.clone(),
        period: period.label(),
        period_start: period.start(),
        period_end: period.end(),
        until,
        availability: f.availability(),
        met: (f.eligible > 0)
            .then(|| i128::from(f.down) * 1_000_000 <= i128::from(f.eligible) * ppm),
        total_seconds: seconds(f.total),
        eligible_seconds: seconds(f.eligible),
        good_seconds: seconds(f.good),
        degraded_seconds: seconds(f.degraded),
        down_seconds: seconds(f.down),
        unknown_seconds: seconds(f.unknown),
        excluded_maintenance_seconds: seconds(f.excluded_maintenance),
        outside_hours_seconds: seconds(f.outside_hours),
        budget_planned_seconds: seconds(budget.planned),
        budget_allowed_seconds: seconds(budget.allowed),
        budget_used_seconds: seconds(budget.used),
        budget_remaining_seconds: seconds(budget.remaining),
        budget_remaining_ratio: budget.remaining_ratio,
        incident_count: listed.len(),
        incidents: listed,
        recomputed,
    }
}

/// A maintenance window created at run time (through the API), as the
/// SLA code reads a configured one: a one-off window with its scope and
/// time filled in. The caller leaves out deleted windows. An effect other
/// than `exclude` is taken as `mute`, so that a value the store should
/// never hold cannot take time out of an SLA.
pub fn adhoc_spec(m: &MaintenanceRecord) -> MaintenanceSpec {
    let scope = match m.scope_kind.as_str() {
        "service" => Some(MaintenanceScope::Service(m.scope_value.clone())),
        "category" => Some(MaintenanceScope::Category(m.scope_value.clone())),
        "supplier" => Some(MaintenanceScope::Supplier(m.scope_value.clone())),
        "all" => Some(MaintenanceScope::All),
        _ => None,
    };
    let named = |kind: &str| (m.scope_kind == kind).then(|| m.scope_value.clone());
    MaintenanceSpec {
        reference: m.reference.clone(),
        description: m.description.clone(),
        effect: if m.effect == "exclude" {
            MaintenanceEffect::Exclude
        } else {
            MaintenanceEffect::Mute
        },
        service: named("service"),
        category: named("category"),
        supplier: named("supplier"),
        all: scope == Some(MaintenanceScope::All),
        start: Some(m.start.to_string()),
        end: Some(m.end.to_string()),
        recurring: None,
        timezone: "UTC".into(),
        scope,
        time: Some(MaintenanceTime::Once {
            start: m.start,
            end: m.end,
        }),
    }
}

/// A row as an SLA snapshot to store (`Store::insert_sla_snapshot`, or
/// with a recomputation): the figures on record for its service, SLA and
/// period as of `computed_at`.
pub fn snapshot(row: &SlaRow, computed_at: Timestamp) -> SlaSnapshot {
    SlaSnapshot {
        id: 0,
        service: row.service.clone(),
        sla: row.sla.clone(),
        period: row.period.clone(),
        computed_at,
        recomputation_id: None,
        figures: serde_json::to_value(row).unwrap_or_default(),
    }
}

fn unknown_service(config: &Config, id: &str) -> ReportError {
    let hint = closest(id, config.services.iter().map(|s| s.id.as_str()))
        .map(|c| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default();
    ReportError::UnknownService {
        id: id.to_string(),
        hint,
    }
}

fn periods(
    kind: SlaPeriod,
    selector: &PeriodSelector,
    tz: &jiff::tz::TimeZone,
    now: Timestamp,
) -> Result<Vec<Period>, PeriodLabelError> {
    Ok(match selector {
        PeriodSelector::Current => vec![sla::period_containing(kind, now, tz)],
        PeriodSelector::Label(label) => vec![sla::parse_period_label(label, tz)?],
        PeriodSelector::Overlapping(range) if kind == SlaPeriod::Rolling28d => {
            vec![sla::period_containing(kind, range.end.min(now), tz)]
        }
        PeriodSelector::Overlapping(range) => {
            let mut out = Vec::new();
            let mut p = sla::period_containing(kind, range.start, tz);
            while p.start() < range.end && p.end() > p.start() {
                let next = p.next();
                out.push(p);
                p = next;
            }
            out
        }
    })
}

fn span_of(ranges: impl Iterator<Item = TimeRange>) -> Option<TimeRange> {
    ranges.reduce(|a, b| TimeRange::new(a.start.min(b.start), a.end.max(b.end)))
}

/// Whether a recomputation covered `service` over (part of) `period`.
fn covers(r: &RecomputationRecord, service: &str, period: TimeRange) -> bool {
    r.service.as_deref().is_none_or(|s| s == service)
        && TimeRange::new(r.from, r.to).overlaps(&period)
}

/// Per service, the instant after which its stored state is not backed
/// by results: the earliest instant a critical check's last result stops
/// standing (for a service without critical checks, the latest one).
pub(crate) fn horizons(
    services: &[&Service],
    last: &[crate::store::ResultRecord],
) -> Vec<Option<Timestamp>> {
    let by_check: HashMap<(&str, &str), Timestamp> = last
        .iter()
        .map(|r| ((r.service.as_str(), r.check.as_str()), r.at))
        .collect();
    services
        .iter()
        .map(|s| {
            let critical = s.checks.iter().any(|c| c.critical);
            let standing = s
                .checks
                .iter()
                .filter(|c| c.critical || !critical)
                .filter_map(|c| {
                    let at = by_check.get(&(s.id.as_str(), c.id.as_str()))?;
                    let stands = i64::try_from((c.interval + c.timeout).as_millis()).ok()?;
                    Some(from_ms(ms(*at).saturating_add(stands)))
                });
            if critical {
                standing.min()
            } else {
                standing.max()
            }
        })
        .collect()
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// `home: timeout (no answer after 10s); dns: refused`.
fn cause_summary(cause: &serde_json::Value) -> String {
    match serde_json::from_value::<Vec<CheckCause>>(cause.clone()) {
        Ok(causes) => causes
            .iter()
            .map(|c| match &c.failure {
                Some(f) => {
                    let reason = f.reason.map_or("failed", |r| r.as_str());
                    if f.detail.is_empty() {
                        format!("{}: {reason}", c.check)
                    } else {
                        format!("{}: {reason} ({})", c.check, f.detail)
                    }
                }
                None => format!("{}: {}", c.check, c.state.as_str()),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => cause.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schedule::MaintenanceEffect;

    fn record(kind: &str, value: &str, effect: &str) -> MaintenanceRecord {
        MaintenanceRecord {
            id: 7,
            reference: "CHG-2026-0142".into(),
            description: Some("switch replacement".into()),
            effect: effect.into(),
            scope_kind: kind.into(),
            scope_value: value.into(),
            start: "2026-11-20T22:00:00Z".parse().unwrap(),
            end: "2026-11-21T02:00:00Z".parse().unwrap(),
            created_at: "2026-11-19T10:00:00Z".parse().unwrap(),
            created_by: "api".into(),
            deleted: false,
        }
    }

    #[test]
    fn adhoc_window_becomes_a_one_off_spec_with_its_scope() {
        let spec = adhoc_spec(&record("supplier", "acme", "exclude"));
        assert_eq!(spec.scope, Some(MaintenanceScope::Supplier("acme".into())));
        assert_eq!(spec.supplier.as_deref(), Some("acme"));
        assert_eq!(spec.effect, MaintenanceEffect::Exclude);
        let w = sla::maintenance::windows(
            &spec,
            TimeRange::new(
                "2026-11-20T00:00:00Z".parse().unwrap(),
                "2026-11-22T00:00:00Z".parse().unwrap(),
            ),
        );
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].range.duration_ms(), 4 * 3_600_000);
        assert!(sla::maintenance::applies_to(&spec, "x", "web", "acme"));
        assert!(!sla::maintenance::applies_to(&spec, "x", "web", "other"));
    }

    #[test]
    fn adhoc_window_with_unknown_scope_or_effect_takes_no_time_out() {
        let spec = adhoc_spec(&record("building", "b1", "exclude"));
        assert!(!sla::maintenance::applies_to(&spec, "x", "web", "acme"));
        let all = adhoc_spec(&record("all", "", "pause"));
        assert!(all.all);
        assert_eq!(all.effect, MaintenanceEffect::Mute);
    }

    #[test]
    fn cause_names_each_failing_check_and_its_first_failure() {
        let cause = serde_json::json!([{
            "check": "home", "critical": true, "state": "down", "slow": false,
            "failure": {"at": "2026-11-20T10:00:00Z", "reason": "timeout", "detail": "no answer"}
        }]);
        assert_eq!(cause_summary(&cause), "home: timeout (no answer)");
    }
}
