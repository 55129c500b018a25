//! Before and after: a service's baseline (`baseline`, 4 weeks by
//! default, before its last cutover's start) against its hypercare and,
//! once reached, its steady phase, from what the store holds. Each
//! measure gets `better`, `same`, `worse` or `insufficient data`, with the
//! test that decided it; never a naive ratio:
//!
//! - availability in service hours: down minutes per week (in the hours
//!   of the service's first SLA calendar, maintenance excluded), `same`
//!   within a margin of ±5 minutes per week;
//! - incidents per week: the exact test for two Poisson rates, at 98 %
//!   confidence;
//! - mean time to recovery and latency (p50 and p95 are shown): as
//!   Kayenta's judge, a Mann-Whitney U test at 98 % confidence and the
//!   ratio of means against an allowed change of ±25 %; a difference
//!   counts only when it is both significant and larger than allowed.
//!   Latency is judged per critical check, one metric at a time as Kayenta
//!   does: pooling a fast and a slow check would turn a shift in their
//!   mix into a change of speed. The service's latency is `worse` if any
//!   check is worse, else `better` if any is better, else `same`;
//!   `insufficient data` only when no check has enough samples.
//!
//! Overall: `insufficient data` when availability has too little data;
//! otherwise `worse` if any measure is worse, `better` if one is better
//! and none worse, else `same`.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::phase::{Phase, last_cutover};
use super::stats::{mann_whitney_u, mean, percentile, percentile_of_sorted, poisson_rates_p_value};
use crate::config::migration::Migration;
use crate::config::{Config, Service, closest};
use crate::report::sla::{adhoc_spec, horizons};
use crate::sla::{ServiceMaintenance, SlaCalendar, TimeRange};
use crate::store::convert::stored_timeline;
use crate::store::{Store, StoreError};

/// Confidence of the Mann-Whitney and Poisson tests (Kayenta's default).
pub const CONFIDENCE: f64 = 0.98;
/// Allowed change of a mean (latency, time to recovery): ±25 %.
pub const ALLOWED_CHANGE: f64 = 0.25;
/// Availability is the same within this many minutes of down time per
/// week in service hours.
pub const DOWNTIME_MARGIN_MINUTES_PER_WEEK: f64 = 5.0;
/// Less eligible time than this in a window is too little to judge
/// availability.
const MIN_ELIGIBLE: SignedDuration = SignedDuration::from_hours(24);
/// Incident rates are judged over at least a week on each side.
const MIN_RATE_WINDOW: SignedDuration = SignedDuration::from_hours(7 * 24);
/// Fewer samples than these on a side are too few for the rank test.
pub const MIN_LATENCY_SAMPLES: usize = 100;
const MIN_REPAIRS: usize = 5;

const WEEK_MS: f64 = 7.0 * 86_400_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    #[serde(rename = "better")]
    Better,
    #[serde(rename = "same")]
    Same,
    #[serde(rename = "worse")]
    Worse,
    #[serde(rename = "insufficient data")]
    InsufficientData,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Same => "same",
            Verdict::Worse => "worse",
            Verdict::InsufficientData => "insufficient data",
        }
    }
}

/// The figures of one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowFigures {
    pub phase: Phase,
    pub from: Timestamp,
    pub to: Timestamp,
    /// Eligible time in service hours (up, degraded or down; maintenance
    /// and unknown time left out), in hours.
    pub eligible_hours: f64,
    pub availability: Option<f64>,
    pub downtime_minutes_per_week: Option<f64>,
    pub incidents: u64,
    pub incidents_per_week: f64,
    /// Mean time to recovery of the incidents that started and ended in
    /// the window.
    pub mttr_seconds: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_samples: usize,
}

/// One measure judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasureVerdict {
    pub measure: &'static str,
    pub before: Option<f64>,
    pub after: Option<f64>,
    pub verdict: Verdict,
    /// The test and margin that decided, with its figures.
    pub test: String,
    /// `latency` only: each critical check judged on its own samples, in
    /// the configuration's order; the measure's verdict combines them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<CheckLatencyVerdict>>,
}

/// One critical check's latency, baseline against a later phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckLatencyVerdict {
    pub check: String,
    pub before_p50_ms: Option<f64>,
    pub before_p95_ms: Option<f64>,
    pub before_samples: usize,
    pub after_p50_ms: Option<f64>,
    pub after_p95_ms: Option<f64>,
    pub after_samples: usize,
    /// The Mann-Whitney U test's two-sided p-value, when it ran.
    pub p_value: Option<f64>,
    /// Mean after over mean before, when both are known and the mean
    /// before is not zero.
    pub ratio_of_means: Option<f64>,
    pub verdict: Verdict,
    pub test: String,
}

/// The baseline against one later phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseComparison {
    pub phase: Phase,
    pub measures: Vec<MeasureVerdict>,
    pub overall: Verdict,
}

/// What `migration compare` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub service: String,
    pub reference: String,
    pub from: String,
    pub to: String,
    pub cutover_start: Timestamp,
    pub cutover_end: Timestamp,
    pub windows: Vec<WindowFigures>,
    pub comparisons: Vec<PhaseComparison>,
}

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no service '{id}' in the configuration{hint}")]
    UnknownService { id: String, hint: String },
    #[error(
        "service '{0}' has not cut over yet (no cutover window has ended): there is no after to compare"
    )]
    NotCutOver(String),
}

impl CheckLatencyVerdict {
    /// `p = 0.0000, ratio of means 2.00`, when the test ran.
    fn figures(&self) -> Option<String> {
        let p = self.p_value?;
        Some(format!(
            "p = {p:.4}, ratio of means {}",
            self.ratio_of_means
                .map_or_else(|| "∞".to_string(), |r| format!("{r:.2}"))
        ))
    }
}

/// Samples of one window, beside its figures.
struct Samples {
    figures: WindowFigures,
    eligible_ms: i64,
    /// Each critical check's successful durations in milliseconds, sorted,
    /// in the configuration's order.
    latencies: Vec<(String, Vec<f64>)>,
    repairs: Vec<f64>,
}

impl Samples {
    /// The sorted durations of check `id`; none when it is not critical.
    fn latencies_of(&self, id: &str) -> &[f64] {
        self.latencies
            .iter()
            .find(|(c, _)| c == id)
            .map_or(&[], |(_, v)| v.as_slice())
    }
}

/// Compare `service`'s baseline with its hypercare and steady phases as
/// of `now`.
pub fn compare(
    config: &Config,
    store: &dyn Store,
    service: &str,
    now: Timestamp,
) -> Result<Comparison, CompareError> {
    // The store keeps milliseconds: so do the windows.
    let now = crate::sla::range::to_millisecond(now);
    let s = config
        .service(service)
        .ok_or_else(|| CompareError::UnknownService {
            id: service.to_string(),
            hint: closest(service, config.services.iter().map(|s| s.id.as_str()))
                .map(|c| format!(" (did you mean '{c}'?)"))
                .unwrap_or_default(),
        })?;
    let m = last_cutover(&s.migrations, now)
        .ok_or_else(|| CompareError::NotCutOver(service.to_string()))?;
    let mut windows = vec![(Phase::Baseline, m.baseline_start(), m.cutover.start)];
    let hypercare_end = m.hypercare_end();
    windows.push((Phase::Hypercare, m.cutover.end, hypercare_end.min(now)));
    if now > hypercare_end {
        // Steady lasts until the next move, if one is planned.
        let next = s
            .migrations
            .iter()
            .find(|n| n.cutover.start > m.cutover.start)
            .map_or(now, |n| n.cutover.start.min(now));
        windows.push((Phase::Steady, hypercare_end, next));
    }
    let samples: Vec<Samples> = windows
        .into_iter()
        .map(|(phase, from, to)| window(config, store, s, phase, TimeRange::new(from, to)))
        .collect::<Result<_, _>>()?;
    let comparisons = samples[1..]
        .iter()
        .map(|after| judge(&samples[0], after))
        .collect();
    Ok(comparison(s, m, samples, comparisons))
}

fn comparison(
    s: &Service,
    m: &Migration,
    samples: Vec<Samples>,
    comparisons: Vec<PhaseComparison>,
) -> Comparison {
    Comparison {
        service: s.id.clone(),
        reference: m.cutover.reference.clone(),
        from: m.from.clone(),
        to: m.to.clone(),
        cutover_start: m.cutover.start,
        cutover_end: m.cutover.end,
        windows: samples.into_iter().map(|w| w.figures).collect(),
        comparisons,
    }
}

fn window(
    config: &Config,
    store: &dyn Store,
    s: &Service,
    phase: Phase,
    range: TimeRange,
) -> Result<Samples, StoreError> {
    let calendar = s.slas.first().map_or_else(SlaCalendar::always, |sla| {
        SlaCalendar::named(&sla.calendar, &config.calendars)
    });
    let transitions = store.service_transitions(Some(&s.id), range.start, range.end)?;
    let refs: Vec<_> = transitions.iter().collect();
    let timeline = stored_timeline(range.start, &refs);
    // As in the SLA report: time after the last stored result stops
    // standing is unknown, not the last state stretched to now.
    let known_until = horizons(&[s], &store.last_results()?)[0]
        .map_or(range.end, |h| h.clamp(range.start, range.end));
    let segments = timeline.segments(TimeRange::new(range.start, known_until));
    let specs: Vec<_> = config
        .maintenances
        .iter()
        .cloned()
        .chain(
            store
                .maintenances(range.start, range.end, false)?
                .iter()
                .map(adhoc_spec),
        )
        .collect();
    let maintenance = ServiceMaintenance::for_service(&specs, s, range);
    let open = calendar.open_ranges(range);
    let f = crate::sla::account(&segments, range, &open, &maintenance.excluded);
    let weeks = range.duration_ms() as f64 / WEEK_MS;

    let incidents = store.incidents(Some(&s.id), range.start, range.end)?;
    let started: Vec<_> = incidents
        .iter()
        .filter(|i| range.contains(i.started_at))
        .collect();
    let repairs: Vec<f64> = started
        .iter()
        .filter_map(|i| {
            i.ended_at
                .filter(|e| *e <= range.end)
                .map(|e| (e - i.started_at).as_secs_f64())
        })
        .collect();

    // Latency of successful probes of the critical checks: a failure's
    // duration is its timeout, not the service's speed.
    let mut latencies: Vec<(String, Vec<f64>)> = s
        .checks
        .iter()
        .filter(|c| c.critical)
        .map(|c| (c.id.clone(), Vec::new()))
        .collect();
    store.results(&s.id, None, range.start, range.end, &mut |r| {
        if !r.success {
            return;
        }
        if let Some((_, v)) = latencies.iter_mut().find(|(id, _)| *id == r.check) {
            v.push(r.duration.as_secs_f64() * 1000.0);
        }
    })?;
    for (_, v) in &mut latencies {
        v.sort_by(f64::total_cmp);
    }
    // The window's figures stay those of every critical check together,
    // as they were shown before latency was judged per check.
    let pooled: Vec<&[f64]> = latencies.iter().map(|(_, v)| v.as_slice()).collect();
    let pooled_samples = pooled.iter().map(|v| v.len()).sum();

    let eligible = f.eligible;
    Ok(Samples {
        figures: WindowFigures {
            phase,
            from: range.start,
            to: range.end,
            eligible_hours: eligible as f64 / 3_600_000.0,
            availability: f.availability(),
            downtime_minutes_per_week: (weeks > 0.0 && eligible > 0)
                .then(|| f.down as f64 / 60_000.0 / weeks),
            incidents: started.len() as u64,
            incidents_per_week: if weeks > 0.0 {
                started.len() as f64 / weeks
            } else {
                0.0
            },
            mttr_seconds: mean(&repairs),
            latency_p50_ms: percentile_of_sorted(&pooled, 0.5),
            latency_p95_ms: percentile_of_sorted(&pooled, 0.95),
            latency_samples: pooled_samples,
        },
        eligible_ms: eligible,
        latencies,
        repairs,
    })
}

fn judge(before: &Samples, after: &Samples) -> PhaseComparison {
    let (b, a) = (&before.figures, &after.figures);
    let mut measures = Vec::new();

    let enough = |w: &Samples| w.eligible_ms >= MIN_ELIGIBLE.as_millis() as i64;
    let availability = match (b.downtime_minutes_per_week, a.downtime_minutes_per_week) {
        (Some(db), Some(da)) if enough(before) && enough(after) => {
            let verdict = if da < db - DOWNTIME_MARGIN_MINUTES_PER_WEEK {
                Verdict::Better
            } else if da > db + DOWNTIME_MARGIN_MINUTES_PER_WEEK {
                Verdict::Worse
            } else {
                Verdict::Same
            };
            MeasureVerdict {
                measure: "availability",
                before: b.availability,
                after: a.availability,
                verdict,
                test: format!(
                    "down time in service hours: {db:.1} → {da:.1} min/week; same within ±{DOWNTIME_MARGIN_MINUTES_PER_WEEK} min/week"
                ),
                checks: None,
            }
        }
        _ => MeasureVerdict {
            measure: "availability",
            before: b.availability,
            after: a.availability,
            verdict: Verdict::InsufficientData,
            test: format!(
                "needs {} h of eligible time on each side (has {:.1} h and {:.1} h)",
                MIN_ELIGIBLE.as_hours(),
                b.eligible_hours,
                a.eligible_hours
            ),
            checks: None,
        },
    };
    let overall_blocked = availability.verdict == Verdict::InsufficientData;
    measures.push(availability);

    let span = |w: &WindowFigures| w.to.duration_since(w.from);
    measures.push(if span(b) >= MIN_RATE_WINDOW && span(a) >= MIN_RATE_WINDOW {
        let p = poisson_rates_p_value(
            b.incidents,
            span(b).as_secs_f64(),
            a.incidents,
            span(a).as_secs_f64(),
        );
        let verdict = if p >= 1.0 - CONFIDENCE {
            Verdict::Same
        } else if a.incidents_per_week > b.incidents_per_week {
            Verdict::Worse
        } else {
            Verdict::Better
        };
        MeasureVerdict {
            measure: "incidents_per_week",
            before: Some(b.incidents_per_week),
            after: Some(a.incidents_per_week),
            verdict,
            test: format!(
                "exact test of two Poisson rates ({} vs {} incidents), p = {p:.4}, confidence {CONFIDENCE}",
                b.incidents, a.incidents
            ),
            checks: None,
        }
    } else {
        MeasureVerdict {
            measure: "incidents_per_week",
            before: Some(b.incidents_per_week),
            after: Some(a.incidents_per_week),
            verdict: Verdict::InsufficientData,
            test: "needs a week on each side".to_string(),
            checks: None,
        }
    });
    measures.push(rank_judge(
        "mttr_seconds",
        &before.repairs,
        &after.repairs,
        MIN_REPAIRS,
        b.mttr_seconds,
        a.mttr_seconds,
    ));
    measures.push(latency_judge(before, after));

    // Availability is judged whenever overall is, so something was.
    let overall = if overall_blocked {
        Verdict::InsufficientData
    } else {
        combined(measures.iter().map(|m| m.verdict))
    };
    PhaseComparison {
        phase: a.phase,
        measures,
        overall,
    }
}

/// What Kayenta's judge found on one pair of samples.
struct RankJudgement {
    verdict: Verdict,
    p_value: Option<f64>,
    ratio_of_means: Option<f64>,
    test: String,
}

/// Kayenta's judge on one pair of samples (lower is better): a difference
/// counts when the Mann-Whitney test is significant at [`CONFIDENCE`] and
/// the ratio of means is outside `1 ± ALLOWED_CHANGE`.
fn rank_test(before: &[f64], after: &[f64], min: usize) -> RankJudgement {
    let insufficient = |test: String| RankJudgement {
        verdict: Verdict::InsufficientData,
        p_value: None,
        ratio_of_means: None,
        test,
    };
    if before.len() < min || after.len() < min {
        return insufficient(format!(
            "Mann-Whitney U needs {min} samples on each side (has {} and {})",
            before.len(),
            after.len()
        ));
    }
    let (Some(test), Some(mb), Some(ma)) =
        (mann_whitney_u(before, after), mean(before), mean(after))
    else {
        return insufficient("no samples".to_string());
    };
    let effect = if mb > 0.0 { ma / mb } else { f64::INFINITY };
    let significant = test.p_value < 1.0 - CONFIDENCE;
    let verdict = match (significant, effect) {
        (true, e) if e > 1.0 + ALLOWED_CHANGE => Verdict::Worse,
        (true, e) if e < 1.0 - ALLOWED_CHANGE => Verdict::Better,
        _ => Verdict::Same,
    };
    RankJudgement {
        verdict,
        p_value: Some(test.p_value),
        ratio_of_means: effect.is_finite().then_some(effect),
        test: format!(
            "Mann-Whitney U (confidence {CONFIDENCE}): p = {:.4}; ratio of means {effect:.2}, allowed {:.2}..{:.2}",
            test.p_value,
            1.0 - ALLOWED_CHANGE,
            1.0 + ALLOWED_CHANGE
        ),
    }
}

/// Kayenta's judge on a measure with one pair of samples.
fn rank_judge(
    measure: &'static str,
    before: &[f64],
    after: &[f64],
    min: usize,
    shown_before: Option<f64>,
    shown_after: Option<f64>,
) -> MeasureVerdict {
    let r = rank_test(before, after, min);
    MeasureVerdict {
        measure,
        before: shown_before,
        after: shown_after,
        verdict: r.verdict,
        test: r.test,
        checks: None,
    }
}

/// Latency judged per critical check that has samples on either side, and
/// combined: `worse` if any check is worse, else `better` if any is
/// better, else `same`; `insufficient data` when no check could be judged.
fn latency_judge(before: &Samples, after: &Samples) -> MeasureVerdict {
    let ids = before
        .latencies
        .iter()
        .chain(&after.latencies)
        .filter(|(_, v)| !v.is_empty())
        .map(|(id, _)| id.as_str());
    let mut checks: Vec<CheckLatencyVerdict> = Vec::new();
    for id in ids {
        if checks.iter().any(|c| c.check == id) {
            continue;
        }
        let (b, a) = (before.latencies_of(id), after.latencies_of(id));
        let r = rank_test(b, a, MIN_LATENCY_SAMPLES);
        checks.push(CheckLatencyVerdict {
            check: id.to_string(),
            before_p50_ms: percentile(b, 0.5),
            before_p95_ms: percentile(b, 0.95),
            before_samples: b.len(),
            after_p50_ms: percentile(a, 0.5),
            after_p95_ms: percentile(a, 0.95),
            after_samples: a.len(),
            p_value: r.p_value,
            ratio_of_means: r.ratio_of_means,
            verdict: r.verdict,
            test: r.test,
        });
    }
    let verdict = combined(checks.iter().map(|c| c.verdict));
    let each: Vec<String> = checks
        .iter()
        .map(|c| {
            format!(
                "{} {} ({})",
                c.check,
                c.verdict.as_str(),
                c.figures().unwrap_or_else(|| format!(
                    "{} and {} samples",
                    c.before_samples, c.after_samples
                ))
            )
        })
        .collect();
    let test = format!(
        "{}: {}",
        latency_method(),
        if each.is_empty() {
            "no successful probe of a critical check".to_string()
        } else {
            each.join("; ")
        }
    );
    MeasureVerdict {
        measure: "latency",
        before: before.figures.latency_p50_ms,
        after: after.figures.latency_p50_ms,
        verdict,
        test,
        checks: Some(checks),
    }
}

/// How latency is judged, in a few words (the start of its `test`).
pub fn latency_method() -> String {
    format!(
        "Mann-Whitney U (confidence {CONFIDENCE}, {MIN_LATENCY_SAMPLES} samples a side) and ratio of means (allowed {:.2}..{:.2}) per check, the worst counts",
        1.0 - ALLOWED_CHANGE,
        1.0 + ALLOWED_CHANGE
    )
}

/// The verdict of several: `worse` if any is worse, else `better` if any
/// is better, else `same`; `insufficient data` when none was judged.
fn combined(verdicts: impl Iterator<Item = Verdict>) -> Verdict {
    let judged: Vec<Verdict> = verdicts
        .filter(|v| *v != Verdict::InsufficientData)
        .collect();
    if judged.is_empty() {
        Verdict::InsufficientData
    } else if judged.contains(&Verdict::Worse) {
        Verdict::Worse
    } else if judged.contains(&Verdict::Better) {
        Verdict::Better
    } else {
        Verdict::Same
    }
}

/// The comparison as a table for people.
pub fn render_table(c: &Comparison) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} → {} (cutover {}, {:.0} to {:.0})",
        c.service, c.from, c.to, c.reference, c.cutover_start, c.cutover_end
    );
    for w in &c.windows {
        let _ = writeln!(
            out,
            "  {:<9} {:.0} to {:.0}: availability {}, {} incidents ({:.2}/week), MTTR {}, latency p50 {} p95 {} ({} samples)",
            w.phase.as_str(),
            w.from,
            w.to,
            w.availability
                .map_or("-".into(), |a| format!("{:.4}%", a * 100.0)),
            w.incidents,
            w.incidents_per_week,
            w.mttr_seconds.map_or("-".into(), |s| format!("{s:.0}s")),
            ms(w.latency_p50_ms),
            ms(w.latency_p95_ms),
            w.latency_samples
        );
    }
    for p in &c.comparisons {
        let _ = writeln!(
            out,
            "baseline vs {}: {}",
            p.phase.as_str(),
            p.overall.as_str()
        );
        for m in &p.measures {
            let checks = m.checks.as_deref().unwrap_or_default();
            // With a line per check below, the measure's line names the
            // method only.
            let test = if checks.is_empty() {
                m.test.clone()
            } else {
                latency_method()
            };
            let _ = writeln!(out, "  {:<19} {:<17} {test}", m.measure, m.verdict.as_str());
            for c in checks {
                let decided = c.figures().unwrap_or_else(|| c.test.clone());
                let _ = writeln!(
                    out,
                    "    {:<17} {:<17} p50 {} → {}, p95 {} → {} ({} → {} samples); {decided}",
                    c.check,
                    c.verdict.as_str(),
                    ms(c.before_p50_ms),
                    ms(c.after_p50_ms),
                    ms(c.before_p95_ms),
                    ms(c.after_p95_ms),
                    c.before_samples,
                    c.after_samples,
                );
            }
        }
    }
    out
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}ms"))
}

/// Every judged measure by name, for callers that look one up.
pub fn verdicts(p: &PhaseComparison) -> BTreeMap<&'static str, Verdict> {
    p.measures.iter().map(|m| (m.measure, m.verdict)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` durations around `ms` (±5 %), the same spread for every
    /// multiple of 100: a check whose speed did not change gives the same
    /// values before and after.
    fn around(ms: f64, n: usize) -> Vec<f64> {
        let mut v: Vec<f64> = (0..n)
            .map(|i| ms * (0.95 + 0.1 * ((i * 37) % 100) as f64 / 100.0))
            .collect();
        v.sort_by(f64::total_cmp);
        v
    }

    /// A week of a window with these checks' durations and nothing else
    /// against it.
    fn window(phase: Phase, checks: Vec<(&str, Vec<f64>)>) -> Samples {
        let mut pooled: Vec<f64> = checks.iter().flat_map(|(_, v)| v).copied().collect();
        pooled.sort_by(f64::total_cmp);
        let from: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        Samples {
            figures: WindowFigures {
                phase,
                from,
                to: from + SignedDuration::from_hours(7 * 24),
                eligible_hours: 168.0,
                availability: Some(1.0),
                downtime_minutes_per_week: Some(0.0),
                incidents: 0,
                incidents_per_week: 0.0,
                mttr_seconds: None,
                latency_p50_ms: percentile(&pooled, 0.5),
                latency_p95_ms: percentile(&pooled, 0.95),
                latency_samples: pooled.len(),
            },
            eligible_ms: 7 * 86_400_000,
            latencies: checks
                .into_iter()
                .map(|(id, v)| (id.to_string(), v))
                .collect(),
            repairs: Vec::new(),
        }
    }

    fn latency(p: &PhaseComparison) -> &MeasureVerdict {
        p.measures.iter().find(|m| m.measure == "latency").unwrap()
    }

    /// The latency measure of a baseline with `before`'s checks against a
    /// hypercare with `after`'s.
    fn latency_judged(
        before: Vec<(&str, Vec<f64>)>,
        after: Vec<(&str, Vec<f64>)>,
    ) -> MeasureVerdict {
        let judged = judge(
            &window(Phase::Baseline, before),
            &window(Phase::Hypercare, after),
        );
        latency(&judged).clone()
    }

    fn check_verdicts(m: &MeasureVerdict) -> Vec<(&str, Verdict)> {
        m.checks
            .iter()
            .flatten()
            .map(|c| (c.check.as_str(), c.verdict))
            .collect()
    }

    #[test]
    fn a_shift_in_the_mix_of_a_fast_and_a_slow_check_is_not_a_change_of_speed() {
        // Neither check changed speed; after the move the slow search is
        // probed more often (say, a shorter interval) than the fast home.
        let before = window(
            Phase::Baseline,
            vec![
                ("home", around(100.0, 900)),
                ("search", around(1000.0, 100)),
            ],
        );
        let after = window(
            Phase::Hypercare,
            vec![
                ("home", around(100.0, 100)),
                ("search", around(1000.0, 900)),
            ],
        );
        // Pooled, the samples look much slower: the trap judged per check
        // avoids.
        let pooled = |w: &Samples| -> Vec<f64> {
            w.latencies.iter().flat_map(|(_, v)| v).copied().collect()
        };
        let naive = rank_test(&pooled(&before), &pooled(&after), MIN_LATENCY_SAMPLES);
        assert_eq!(naive.verdict, Verdict::Worse);

        let judged = judge(&before, &after);
        let m = latency(&judged);
        assert_eq!(
            check_verdicts(m),
            [("home", Verdict::Same), ("search", Verdict::Same)]
        );
        assert_eq!(m.verdict, Verdict::Same);
        assert_eq!(judged.overall, Verdict::Same);
        // Identical values on both sides: ratio 1, p = 1.
        let home = &m.checks.as_ref().unwrap()[0];
        assert_eq!(home.ratio_of_means.map(|r| (r * 1e9).round()), Some(1e9));
        assert_eq!(home.p_value, Some(1.0));
        assert_eq!((home.before_samples, home.after_samples), (900, 100));
        // The shown service-wide p50 still moves with the mix.
        assert!(m.after.unwrap() > m.before.unwrap() * 5.0);
    }

    #[test]
    fn one_check_worse_and_another_better_make_the_service_worse() {
        let before = window(
            Phase::Baseline,
            vec![("home", around(100.0, 500)), ("login", around(400.0, 500))],
        );
        let after = window(
            Phase::Steady,
            vec![("home", around(200.0, 500)), ("login", around(200.0, 500))],
        );
        let judged = judge(&before, &after);
        let m = latency(&judged);
        assert_eq!(
            check_verdicts(m),
            [("home", Verdict::Worse), ("login", Verdict::Better)]
        );
        assert_eq!(m.verdict, Verdict::Worse);
        assert_eq!(judged.overall, Verdict::Worse);
        assert!(m.test.contains("home worse"), "{}", m.test);
        assert!(m.test.contains("login better"), "{}", m.test);
        let home = &m.checks.as_ref().unwrap()[0];
        assert_eq!(home.ratio_of_means.map(|r| (r * 1e9).round()), Some(2e9));
    }

    #[test]
    fn a_check_with_too_few_samples_is_insufficient_data_on_its_own() {
        let m = latency_judged(
            vec![("home", around(100.0, 500)), ("login", around(400.0, 99))],
            vec![("home", around(60.0, 500)), ("login", around(900.0, 500))],
        );
        // login is three times slower, but 99 samples are too few to say.
        assert_eq!(
            check_verdicts(&m),
            [
                ("home", Verdict::Better),
                ("login", Verdict::InsufficientData)
            ]
        );
        assert_eq!(m.verdict, Verdict::Better);
        assert!(
            m.test
                .contains("login insufficient data (99 and 500 samples)")
        );
    }

    #[test]
    fn latency_is_insufficient_data_only_when_no_check_has_enough() {
        // api has samples only after the move (a check added with it).
        let m = latency_judged(
            vec![("home", around(100.0, 50)), ("api", Vec::new())],
            vec![("home", around(100.0, 500)), ("api", around(100.0, 500))],
        );
        assert_eq!(
            check_verdicts(&m),
            [
                ("home", Verdict::InsufficientData),
                ("api", Verdict::InsufficientData)
            ]
        );
        assert_eq!(m.verdict, Verdict::InsufficientData);
        let api = &m.checks.unwrap()[1];
        assert_eq!((api.before_samples, api.before_p50_ms), (0, None));
    }

    #[test]
    fn a_critical_check_never_answering_successfully_is_left_out() {
        let m = latency_judged(
            vec![("home", around(100.0, 500)), ("down", Vec::new())],
            vec![("home", around(100.0, 500)), ("down", Vec::new())],
        );
        assert_eq!(check_verdicts(&m), [("home", Verdict::Same)]);
    }
}
