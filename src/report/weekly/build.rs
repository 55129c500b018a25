//! Builds the [`Report`] from [`sla_report`] rows: the period itself, the
//! eleven periods before it (trend, last week, four-week average) and
//! each day of it. Every availability, down time and met/missed verdict is
//! a row's figure or a sum of rows' seconds; nothing here counts time.
//!
//! What the rows do not carry comes from the store as it is: latency p95
//! from the stored probe durations, the maintenance windows' references
//! and the recomputations on record.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::model::*;
use crate::config::Config;
use crate::report::locale::Lang;
use crate::report::sla::{
    ALL_SUPPLIERS, PeriodSelector, ReportError, SlaRow, adhoc_spec, sla_report,
};
use crate::sla::{self, Period, SlaCalendar, SlaPeriod, TimeRange};
use crate::store::Store;

/// Version of the JSON model (docs/reports.md).
pub const SCHEMA: u32 = 1;

/// How many periods the trend chart shows, this one included.
const TREND_PERIODS: usize = 12;

/// Daily figures are shown for periods up to this many days.
const MAX_DAYS: i64 = 62;

/// Certificates expiring within this many days are listed.
pub const CERTIFICATE_DAYS: i64 = 30;

/// The time zone a report's days and default week are read in: that of
/// the first SLA's calendar (the municipality's), Amsterdam without SLAs.
pub fn time_zone(config: &Config) -> TimeZone {
    config
        .services
        .iter()
        .flat_map(|s| s.slas.iter())
        .next()
        .map(|spec| {
            SlaCalendar::named(&spec.calendar, &config.calendars)
                .tz()
                .clone()
        })
        .unwrap_or_else(|| TimeZone::get("Europe/Amsterdam").unwrap_or(TimeZone::UTC))
}

/// The last ISO week that has ended at `now` in `tz`.
pub fn last_complete_week(now: Timestamp, tz: &TimeZone) -> Period {
    sla::period_containing(SlaPeriod::Week, now, tz).previous()
}

/// The last calendar month that has ended at `now` in `tz`.
pub fn last_complete_month(now: Timestamp, tz: &TimeZone) -> Period {
    sla::period_containing(SlaPeriod::Month, now, tz).previous()
}

pub fn selector(p: &Period) -> PeriodSelector {
    if p.is_custom() {
        PeriodSelector::Range(p.range)
    } else {
        PeriodSelector::Label(p.label())
    }
}

/// The report of `period` as of `now`.
pub fn build(
    config: &Config,
    store: &dyn Store,
    period: &Period,
    lang: Lang,
    now: Timestamp,
    certificates: Option<Vec<CertificateLine>>,
) -> Result<Report, ReportError> {
    let rows = sla_report(config, store, selector(period), None, now)?;
    build_from(config, store, period, &rows, lang, now, certificates)
}

/// [`build`] from the period's rows, already read (the scheduler also
/// keeps them on record as SLA snapshots).
pub fn build_from(
    config: &Config,
    store: &dyn Store,
    period: &Period,
    rows: &[SlaRow],
    lang: Lang,
    now: Timestamp,
    certificates: Option<Vec<CertificateLine>>,
) -> Result<Report, ReportError> {
    let tz = time_zone(config);
    let lines = service_rows(rows);

    let mut history: Vec<(Period, Vec<SlaRow>)> = Vec::with_capacity(TREND_PERIODS - 1);
    let mut p = period.clone();
    for _ in 1..TREND_PERIODS {
        p = p.previous();
        let r = sla_report(config, store, selector(&p), None, now)?;
        history.push((p.clone(), r));
    }
    let previous = history.first().map(|(_, r)| r.as_slice()).unwrap_or(&[]);
    let prev_by_key: HashMap<Key<'_>, &SlaRow> = previous.iter().map(|r| (key(r), r)).collect();

    let days = days_of(period, &tz);
    let mut day_rows: Vec<DayRows> = Vec::new();
    // Per day, each service's figure as its line reads it: the combined
    // row on the day of its cutover, its one supplier's row on the others
    // (a week that spans a cutover has a combined line, but most of its
    // days do not).
    let mut day_services: Vec<HashMap<(String, String), Option<f64>>> = Vec::new();
    let mut day_figures: Vec<Day> = Vec::new();
    for (date, range) in &days {
        let r = sla_report(config, store, PeriodSelector::Range(*range), None, now)?;
        day_figures.push(Day {
            date: date.to_string(),
            start: range.start,
            end: range.end,
            availability: Totals::of(service_rows(&r)).availability(),
        });
        day_services.push(
            service_rows(&r)
                .into_iter()
                .map(|row| ((row.service.clone(), row.sla.clone()), row.availability))
                .collect(),
        );
        day_rows.push(
            r.iter()
                .map(|row| {
                    (
                        (row.service.clone(), row.sla.clone(), row.supplier.clone()),
                        row.availability,
                    )
                })
                .collect(),
        );
    }
    let daily_of = |r: &SlaRow| -> Vec<Option<f64>> {
        day_services
            .iter()
            .map(|d| {
                d.get(&(r.service.clone(), r.sla.clone()))
                    .copied()
                    .flatten()
            })
            .collect()
    };

    let until = now.clamp(period.start(), period.end());
    let latency = latency_p95(config, store, TimeRange::new(period.start(), until))?;
    let maintenance = maintenance_in(config, store, period.range)?;
    let refs_of = |service: &str| -> Vec<String> {
        let mut refs: Vec<String> = maintenance
            .iter()
            .filter(|m| m.excluded && m.services.iter().any(|s| s == service))
            .map(|m| m.reference.clone())
            .collect();
        refs.dedup();
        refs
    };

    let services: Vec<ServiceLine> = lines
        .iter()
        .map(|r| {
            let prev = prev_by_key.get(&key(r)).and_then(|p| p.availability);
            let (longest, mttr) =
                incident_times(r.incidents.iter().map(|i| (i.end, i.duration_seconds)));
            ServiceLine {
                service: r.service.clone(),
                name: r.name.clone(),
                category: r.category.clone(),
                supplier: r.supplier.clone(),
                sla: r.sla.clone(),
                objective: r.objective,
                calendar: r.calendar.clone(),
                availability: r.availability,
                met: r.met,
                eligible_seconds: r.eligible_seconds,
                down_seconds: r.down_seconds,
                excluded_maintenance_seconds: r.excluded_maintenance_seconds,
                maintenance_references: refs_of(&r.service),
                unknown_seconds: r.unknown_seconds,
                budget_remaining_ratio: r.budget_remaining_ratio,
                incidents: r.incident_count,
                longest_incident_seconds: longest,
                mttr_seconds: mttr,
                latency_p95_ms: latency.get(r.service.as_str()).copied(),
                previous_availability: prev,
                change_vs_previous: diff(r.availability, prev),
                daily: daily_of(r),
                recomputed: r.recomputed.is_some(),
                suppliers: if r.supplier == ALL_SUPPLIERS {
                    suppliers_in(config, &r.service, period.range)
                } else {
                    Vec::new()
                },
            }
        })
        .collect();

    let incidents = incident_lines(config, &lines);
    let suppliers = supplier_lines(rows, previous, &day_rows);

    let mut trend: Vec<TrendPoint> = history
        .iter()
        .rev()
        .map(|(p, r)| trend_point(p, service_rows(r)))
        .collect();
    trend.push(trend_point(period, lines.clone()));

    let totals = Totals::of(lines.iter().copied());
    let previous_availability = Totals::of(service_rows(previous)).availability();
    let averaged: Vec<f64> = history
        .iter()
        .take(4)
        .filter_map(|(_, r)| Totals::of(service_rows(r)).availability())
        .collect();
    let four_period_average =
        (!averaged.is_empty()).then(|| averaged.iter().sum::<f64>() / averaged.len() as f64);
    let verdicts = verdicts(&lines);
    let summary = Summary {
        services: verdicts.len(),
        services_met: verdicts.values().filter(|v| **v == Some(true)).count(),
        services_missed: verdicts.values().filter(|v| **v == Some(false)).count(),
        services_without_data: verdicts.values().filter(|v| v.is_none()).count(),
        missed: ordered_missed(&lines, &verdicts),
        availability: totals.availability(),
        eligible_seconds: totals.eligible,
        good_seconds: totals.good,
        down_seconds: totals.down,
        unknown_seconds: totals.unknown,
        excluded_maintenance_seconds: totals.excluded,
        incidents: incidents.len(),
        previous_availability,
        four_period_average,
        change_vs_previous: diff(totals.availability(), previous_availability),
        change_vs_average: diff(totals.availability(), four_period_average),
    };

    let certificates = certificates.map(|mut c| {
        c.retain(|c| c.days_left < CERTIFICATE_DAYS);
        c.sort_by_key(|c| c.not_after);
        c
    });
    let recomputations = recomputations_of(store, period.range)?;
    let migrations = migrations_of(config, store, period.end().min(now))?;
    let first_day = tz.to_datetime(period.start()).date();
    let last_day = tz
        .to_datetime(sla::range::from_ms(sla::range::ms(period.end()) - 1))
        .date();
    Ok(Report {
        schema: SCHEMA,
        lang,
        period: ReportPeriod {
            label: period.label(),
            kind: if period.is_custom() {
                "range".into()
            } else {
                match period.kind {
                    SlaPeriod::Week => "week".into(),
                    SlaPeriod::Month => "month".into(),
                    SlaPeriod::Rolling28d => "28d".into(),
                }
            },
            start: period.start(),
            end: period.end(),
            time_zone: tz.iana_name().unwrap_or("UTC").to_string(),
            first_day: first_day.to_string(),
            last_day: last_day.to_string(),
        },
        generated_at: now,
        location: config.location.clone(),
        config_digest: config.digest.clone(),
        summary,
        services,
        suppliers,
        incidents,
        maintenance,
        certificates,
        recomputations,
        migrations,
        days: day_figures,
        trend,
    })
}

type Key<'a> = (&'a str, &'a str, &'a str);

/// One day's availability per (service, SLA, supplier).
type DayRows = HashMap<(String, String, String), Option<f64>>;

fn key(r: &SlaRow) -> Key<'_> {
    (&r.service, &r.sla, &r.supplier)
}

/// The rows a service is judged on: for each service and SLA, the row
/// that combines its suppliers (`supplier: "*"`) where the period was
/// split at a cutover, else its one row.
fn service_rows(rows: &[SlaRow]) -> Vec<&SlaRow> {
    let combined: HashSet<(&str, &str)> = rows
        .iter()
        .filter(|r| r.supplier == ALL_SUPPLIERS)
        .map(|r| (r.service.as_str(), r.sla.as_str()))
        .collect();
    rows.iter()
        .filter(|r| {
            r.supplier == ALL_SUPPLIERS || !combined.contains(&(r.service.as_str(), r.sla.as_str()))
        })
        .collect()
}

/// The suppliers responsible for `service` within `range`, in time order
/// (a supplier that comes back after another is listed again).
fn suppliers_in(config: &Config, service: &str, range: TimeRange) -> Vec<String> {
    let Some(s) = config.services.iter().find(|s| s.id == service) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for (supplier, _) in crate::migration::supplier_stretches(&s.supplier, &s.migrations, range) {
        if out.last().is_none_or(|last| last != supplier) {
            out.push(supplier.to_string());
        }
    }
    out
}

/// Seconds summed over rows.
#[derive(Default)]
struct Totals {
    eligible: f64,
    good: f64,
    down: f64,
    unknown: f64,
    excluded: f64,
}

impl Totals {
    fn of<'a>(rows: impl IntoIterator<Item = &'a SlaRow>) -> Totals {
        let mut t = Totals::default();
        for r in rows {
            t.eligible += r.eligible_seconds;
            t.good += r.good_seconds;
            t.down += r.down_seconds;
            t.unknown += r.unknown_seconds;
            t.excluded += r.excluded_maintenance_seconds;
        }
        t
    }

    fn availability(&self) -> Option<f64> {
        (self.eligible > 0.0).then(|| self.good / self.eligible)
    }
}

fn diff(now: Option<f64>, before: Option<f64>) -> Option<f64> {
    Some(now? - before?)
}

/// Per service: `Some(false)` when any SLA was missed, `Some(true)` when
/// every SLA with eligible time was met, `None` without eligible time.
fn verdicts<'a>(lines: &[&'a SlaRow]) -> BTreeMap<&'a str, Option<bool>> {
    let mut out: BTreeMap<&str, Option<bool>> = BTreeMap::new();
    for r in lines {
        let v = out.entry(r.service.as_str()).or_insert(None);
        *v = match (*v, r.met) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), _) | (_, Some(true)) => Some(true),
            _ => None,
        };
    }
    out
}

fn ordered_missed(lines: &[&SlaRow], verdicts: &BTreeMap<&str, Option<bool>>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    lines
        .iter()
        .filter(|r| verdicts.get(r.service.as_str()) == Some(&Some(false)))
        .filter(|r| seen.insert(r.service.as_str()))
        .map(|r| r.service.clone())
        .collect()
}

/// Longest incident and mean time to recovery (of the ended ones).
fn incident_times(
    incidents: impl Iterator<Item = (Option<Timestamp>, f64)>,
) -> (Option<f64>, Option<f64>) {
    let mut longest: Option<f64> = None;
    let (mut sum, mut ended) = (0.0, 0usize);
    for (end, secs) in incidents {
        longest = Some(longest.map_or(secs, |l| l.max(secs)));
        if end.is_some() {
            sum += secs;
            ended += 1;
        }
    }
    (longest, (ended > 0).then(|| sum / ended as f64))
}

fn trend_point(p: &Period, lines: Vec<&SlaRow>) -> TrendPoint {
    let v = verdicts(&lines);
    TrendPoint {
        label: p.label(),
        start: p.start(),
        availability: Totals::of(lines.iter().copied()).availability(),
        services_met: v.values().filter(|v| **v == Some(true)).count(),
        services_missed: v.values().filter(|v| **v == Some(false)).count(),
    }
}

/// Local days `[midnight, next midnight)` of the period, when it is short
/// enough to show day by day.
fn days_of(period: &Period, tz: &TimeZone) -> Vec<(jiff::civil::Date, TimeRange)> {
    let mut out = Vec::new();
    if period.range.duration_ms() > MAX_DAYS * 86_400_000 {
        return out;
    }
    let mut day = tz.to_datetime(period.start()).date();
    loop {
        let start = sla::period::local_midnight(day, tz);
        if start >= period.end() {
            break;
        }
        let Ok(next) = day.tomorrow() else { break };
        let end = sla::period::local_midnight(next, tz).min(period.end());
        out.push((day, TimeRange::new(start.max(period.start()), end)));
        day = next;
    }
    out
}

/// Incidents of the service lines, each once (a service with two SLAs
/// lists its incidents on both rows), oldest first.
fn incident_lines(config: &Config, lines: &[&SlaRow]) -> Vec<IncidentLine> {
    let mut calendars: HashMap<&str, SlaCalendar> = HashMap::new();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for r in lines {
        for i in &r.incidents {
            if !seen.insert((r.service.as_str(), i.start)) {
                continue;
            }
            let end = i.end.unwrap_or(r.until).max(i.start);
            let range = TimeRange::new(i.start, end);
            // The service's first SLA is the one its hours are read from:
            // a 24x7 SLA beside office hours would make every incident
            // "inside" them.
            let inside = config
                .service(&r.service)
                .and_then(|s| s.slas.first())
                .is_some_and(|spec| {
                    calendars
                        .entry(spec.calendar.as_str())
                        .or_insert_with(|| SlaCalendar::named(&spec.calendar, &config.calendars))
                        .open_ms(range)
                        > 0
                });
            // A service that cut over in the period: the supplier(s)
            // responsible while it lasted, never the combined row's `*`.
            let supplier = if r.supplier == ALL_SUPPLIERS {
                let lasted =
                    TimeRange::new(i.start, end.max(i.start + SignedDuration::from_millis(1)));
                suppliers_in(config, &r.service, lasted).join("→")
            } else {
                r.supplier.clone()
            };
            out.push(IncidentLine {
                service: r.service.clone(),
                name: r.name.clone(),
                supplier,
                start: i.start,
                end: i.end,
                duration_seconds: i.duration_seconds,
                inside_service_hours: inside,
                cause: i.cause.clone(),
            });
        }
    }
    out.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then_with(|| a.service.cmp(&b.service))
    });
    out
}

fn supplier_lines(rows: &[SlaRow], previous: &[SlaRow], day_rows: &[DayRows]) -> Vec<SupplierLine> {
    let prev = by_supplier(previous);
    by_supplier(rows)
        .into_iter()
        .map(|(supplier, rs)| {
            let t = Totals::of(rs.iter().copied());
            let v = verdicts(&rs);
            let mut seen = HashSet::new();
            let (longest, mttr) = incident_times(
                rs.iter()
                    .flat_map(|r| r.incidents.iter().map(move |i| (r, i)))
                    .filter(|(r, i)| seen.insert((r.service.as_str(), i.start)))
                    .map(|(_, i)| (i.end, i.duration_seconds)),
            );
            let incidents = seen.len();
            let previous_availability = prev
                .get(&supplier)
                .and_then(|p| Totals::of(p.iter().copied()).availability());
            let daily = day_rows.iter().map(|d| day_share(&rs, d)).collect();
            SupplierLine {
                services: v.len(),
                services_met: v.values().filter(|v| **v == Some(true)).count(),
                services_missed: v.values().filter(|v| **v == Some(false)).count(),
                availability: t.availability(),
                eligible_seconds: t.eligible,
                down_seconds: t.down,
                excluded_maintenance_seconds: t.excluded,
                unknown_seconds: t.unknown,
                incidents,
                longest_incident_seconds: longest,
                mttr_seconds: mttr,
                previous_availability,
                change_vs_previous: diff(t.availability(), previous_availability),
                daily,
                supplier,
            }
        })
        .collect()
}

/// Rows by supplier: every row attributed to one supplier; a combined
/// row would count the same time twice.
fn by_supplier(rows: &[SlaRow]) -> BTreeMap<String, Vec<&SlaRow>> {
    let mut m: BTreeMap<String, Vec<&SlaRow>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.supplier != ALL_SUPPLIERS) {
        m.entry(r.supplier.clone()).or_default().push(r);
    }
    m
}

/// A supplier's availability on one day: the mean of its rows' daily
/// availabilities (each row's own figure for that day).
fn day_share(rows: &[&SlaRow], day: &DayRows) -> Option<f64> {
    let figures: Vec<f64> = rows
        .iter()
        .filter_map(|r| {
            day.get(&(r.service.clone(), r.sla.clone(), r.supplier.clone()))
                .copied()
                .flatten()
        })
        .collect();
    (!figures.is_empty()).then(|| figures.iter().sum::<f64>() / figures.len() as f64)
}

/// 95th percentile (nearest rank) of the successful probe durations per
/// service, in milliseconds, read from the stored results.
fn latency_p95<'a>(
    config: &'a Config,
    store: &dyn Store,
    range: TimeRange,
) -> Result<HashMap<&'a str, f64>, ReportError> {
    let mut out = HashMap::new();
    if range.is_empty() {
        return Ok(out);
    }
    let mut durations: Vec<u32> = Vec::new();
    for s in &config.services {
        if s.slas.is_empty() {
            continue;
        }
        durations.clear();
        store.results(&s.id, None, range.start, range.end, &mut |r| {
            if r.success {
                durations.push(u32::try_from(r.duration.as_micros()).unwrap_or(u32::MAX));
            }
        })?;
        if durations.is_empty() {
            continue;
        }
        let rank = (durations.len() * 95).div_ceil(100).max(1) - 1;
        let (_, p95, _) = durations.select_nth_unstable(rank);
        out.insert(s.id.as_str(), f64::from(*p95) / 1000.0);
    }
    Ok(out)
}

/// Configured and API maintenance windows overlapping `range`, with the
/// services each covered.
fn maintenance_in(
    config: &Config,
    store: &dyn Store,
    range: TimeRange,
) -> Result<Vec<MaintenanceLine>, ReportError> {
    let adhoc: Vec<_> = store
        .maintenances(range.start, range.end, false)?
        .iter()
        .map(adhoc_spec)
        .collect();
    let mut out = Vec::new();
    for spec in config.maintenances.iter().chain(adhoc.iter()) {
        let services: Vec<String> = config
            .services
            .iter()
            .filter(|s| sla::maintenance::applies_to(spec, &s.id, &s.category, &s.supplier))
            .map(|s| s.id.clone())
            .collect();
        for w in sla::maintenance::windows(spec, range) {
            out.push(MaintenanceLine {
                reference: w.reference,
                description: w.description,
                start: w.range.start,
                end: w.range.end,
                excluded: w.effect == crate::config::schedule::MaintenanceEffect::Exclude,
                services: services.clone(),
            });
        }
    }
    out.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then_with(|| a.reference.cmp(&b.reference))
    });
    Ok(out)
}

/// Every service that had cut over by `as_of`, judged before against after
/// by the migration judge ([`crate::migration::compare`]) as of then, so a
/// report of a past week shows what was known at its end.
fn migrations_of(
    config: &Config,
    store: &dyn Store,
    as_of: Timestamp,
) -> Result<Vec<MigrationLine>, ReportError> {
    use crate::migration::compare::{CompareError, compare};
    let mut out = Vec::new();
    for s in &config.services {
        if !s.migrations.iter().any(|m| m.cutover.end <= as_of) {
            continue;
        }
        let c = match compare(config, store, &s.id, as_of) {
            Ok(c) => c,
            Err(CompareError::Store(e)) => return Err(e.into()),
            Err(CompareError::NotCutOver(_) | CompareError::UnknownService { .. }) => continue,
        };
        out.push(MigrationLine {
            service: c.service,
            name: s.name.clone(),
            from: c.from,
            to: c.to,
            reference: c.reference,
            cutover_start: c.cutover_start,
            cutover_end: c.cutover_end,
            comparisons: c
                .comparisons
                .iter()
                .map(|p| PhaseVerdictLine {
                    phase: p.phase.as_str().to_string(),
                    overall: p.overall.as_str().to_string(),
                    measures: p
                        .measures
                        .iter()
                        .map(|m| MeasureLine {
                            measure: m.measure.to_string(),
                            before: m.before,
                            after: m.after,
                            verdict: m.verdict.as_str().to_string(),
                            test: m.test.clone(),
                            checks: m.checks.clone().unwrap_or_default(),
                        })
                        .collect(),
                })
                .collect(),
        });
    }
    Ok(out)
}

/// Recomputations whose range overlaps `range` and that changed a figure
/// (availability or down time) of a period overlapping it.
fn recomputations_of(
    store: &dyn Store,
    range: TimeRange,
) -> Result<Vec<RecomputationLine>, ReportError> {
    let mut out = Vec::new();
    for rec in store.recomputations(None, 1000)? {
        if !TimeRange::new(rec.from, rec.to).overlaps(&range) {
            continue;
        }
        let rows = |v: &serde_json::Value| -> Vec<SlaRow> {
            serde_json::from_value(v.clone()).unwrap_or_default()
        };
        let before = rows(&rec.before);
        let after = rows(&rec.after);
        let changes: Vec<FigureChange> = after
            .iter()
            .filter(|a| TimeRange::new(a.period_start, a.period_end).overlaps(&range))
            .filter_map(|a| {
                let b = before
                    .iter()
                    .find(|b| b.service == a.service && b.sla == a.sla && b.period == a.period)?;
                let changed = b.availability != a.availability
                    || (b.down_seconds - a.down_seconds).abs() >= 0.001;
                changed.then(|| FigureChange {
                    service: a.service.clone(),
                    sla: a.sla.clone(),
                    period: a.period.clone(),
                    availability_before: b.availability,
                    availability_after: a.availability,
                    down_seconds_before: b.down_seconds,
                    down_seconds_after: a.down_seconds,
                })
            })
            .collect();
        if changes.is_empty() {
            continue;
        }
        out.push(RecomputationLine {
            id: rec.id,
            at: rec.created_at,
            by: rec.who,
            reason: rec.reason,
            from: rec.from,
            to: rec.to,
            changes,
        });
    }
    out.sort_by_key(|r| r.at);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_time_to_recovery_counts_only_ended_incidents() {
        let t: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let (longest, mttr) =
            incident_times([(Some(t), 60.0), (Some(t), 180.0), (None, 600.0)].into_iter());
        assert_eq!(longest, Some(600.0));
        assert_eq!(mttr, Some(120.0));
        assert_eq!(incident_times(std::iter::empty()), (None, None));
    }

    #[test]
    fn a_week_across_the_autumn_dst_change_has_seven_local_days() {
        let tz = TimeZone::get("Europe/Amsterdam").unwrap();
        let week = sla::parse_period_label("2026-W43", &tz).unwrap();
        let days = days_of(&week, &tz);
        assert_eq!(days.len(), 7);
        // Sunday 25 October 2026 has 25 hours.
        assert_eq!(days[6].1.duration_ms(), 25 * 3_600_000);
        assert_eq!(days[6].1.end, week.end());
    }
}
