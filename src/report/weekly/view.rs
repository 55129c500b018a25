//! The report as people read it: every figure of the [`Report`] formatted
//! in the reader's language (`99,82 %`, `maandag 23 november 2026`, local
//! times in the report's time zone), shared by the HTML and Markdown
//! renderers so both say exactly the same.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::model::{Report, ServiceLine};
use super::text::{Texts, texts};
use crate::report::locale::{self, Lang};

/// How a figure compares with its objective; the HTML colours it, and
/// every rendering also shows [`Verdict::mark`] so colour is never the
/// only signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    /// Below the objective by less than its allowed down time once more.
    Below,
    /// Further below.
    FarBelow,
    NoData,
}

impl Verdict {
    /// `availability` against `objective` percent.
    pub fn of(availability: Option<f64>, objective: f64) -> Verdict {
        let Some(a) = availability else {
            return Verdict::NoData;
        };
        let target = objective / 100.0;
        let allowed = 1.0 - target;
        if a >= target {
            Verdict::Met
        } else if a >= target - allowed {
            Verdict::Below
        } else {
            Verdict::FarBelow
        }
    }

    pub fn mark(self) -> &'static str {
        match self {
            Verdict::Met => "✓",
            Verdict::Below => "!",
            Verdict::FarBelow => "✗",
            Verdict::NoData => "–",
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Verdict::Met => "ok",
            Verdict::Below => "warn",
            Verdict::FarBelow => "bad",
            Verdict::NoData => "none",
        }
    }
}

pub struct View {
    pub t: &'static Texts,
    pub lang: Lang,
    pub title: String,
    pub period: String,
    pub generated: String,
    pub availability: String,
    pub met_count: String,
    pub missed_names: Vec<String>,
    pub headlines: Vec<String>,
    pub services: Vec<ServiceView>,
    pub suppliers: Vec<SupplierView>,
    pub incidents: Vec<IncidentView>,
    pub maintenance: Vec<MaintenanceView>,
    pub certificates: Option<Vec<CertificateView>>,
    pub recomputations: Vec<RecomputationView>,
    pub migrations: Vec<MigrationView>,
    pub days: Vec<String>,
    pub trend: Vec<(String, String)>,
    /// The trend's axis label of each period, short enough for a chart
    /// (`W47`, `nov`, `23 nov`); the full label stays in `trend`.
    pub trend_axis: Vec<String>,
}

pub struct ServiceView {
    pub name: String,
    pub id: String,
    pub category: String,
    /// `in-house → northhost` for a service that cut over in the period.
    pub supplier: String,
    /// The same as a list, for the HTML to isolate each name (`<bdi>`).
    pub suppliers: Vec<String>,
    pub sla: String,
    pub objective: String,
    pub calendar: String,
    pub availability: String,
    pub verdict: Verdict,
    pub result: String,
    pub down: String,
    pub excluded: String,
    pub references: String,
    pub unknown: String,
    pub incidents: String,
    pub longest: String,
    pub mttr: String,
    pub p95: String,
    pub change: String,
    pub recomputed: bool,
    pub daily: Vec<(String, Verdict)>,
}

pub struct SupplierView {
    pub supplier: String,
    pub services: String,
    pub met: String,
    pub availability: String,
    pub down: String,
    pub excluded: String,
    pub unknown: String,
    pub incidents: String,
    pub longest: String,
    pub mttr: String,
    pub change: String,
    pub verdict: Verdict,
    pub daily: Vec<(String, Verdict)>,
}

pub struct IncidentView {
    pub service: String,
    pub supplier: String,
    pub start: String,
    pub end: String,
    pub duration: String,
    pub hours: String,
    pub inside: bool,
    pub cause: String,
}

pub struct MaintenanceView {
    pub reference: String,
    pub description: String,
    pub start: String,
    pub end: String,
    pub effect: String,
    pub services: String,
}

pub struct CertificateView {
    pub service: String,
    pub check: String,
    pub expires: String,
    pub days_left: String,
}

pub struct RecomputationView {
    pub at: String,
    pub by: String,
    pub reason: String,
    pub changes: Vec<(String, String, String)>,
}

/// A service's move, judged before against after, as the report shows it.
pub struct MigrationView {
    /// `Name: from → to (CHG-1042, cutover 06-12-2026 06:00)`.
    pub caption: String,
    pub phases: Vec<PhaseVerdictView>,
}

pub struct PhaseVerdictView {
    pub heading: String,
    pub overall: &'static str,
    pub measures: Vec<MeasureRow>,
}

/// One line of a phase's table: a measure, or one check's latency under
/// the latency measure.
pub struct MeasureRow {
    pub label: String,
    pub before: String,
    pub after: String,
    pub verdict: &'static str,
    pub test: String,
    /// A check's line, shown indented under its measure.
    pub check: bool,
}

fn verdict(t: &Texts, v: &str) -> &'static str {
    match v {
        "better" => t.verdict_better,
        "same" => t.verdict_same,
        "worse" => t.verdict_worse,
        _ => t.verdict_insufficient,
    }
}

/// A judged measure's label and its before and after figures.
fn measure(t: &Texts, m: &super::model::MeasureLine, lang: Lang) -> (&'static str, String, String) {
    let figure = |v: Option<f64>| -> String {
        match m.measure.as_str() {
            "availability" => percent(v, lang),
            "mttr_seconds" => seconds(v, lang),
            "latency" => millis(v, lang),
            _ => v.map_or_else(|| "–".to_string(), |n| locale::number(n, 2, lang)),
        }
    };
    let label = match m.measure.as_str() {
        "availability" => t.measure_availability,
        "incidents_per_week" => t.measure_incidents,
        "mttr_seconds" => t.measure_mttr,
        _ => t.measure_latency,
    };
    (label, figure(m.before), figure(m.after))
}

/// A measure's rows: the measure, then, for latency judged on more than
/// one check, a short line per check (p50 before and after, p95, and what
/// decided); with a single check the measure's line says it all.
fn measure_rows(t: &Texts, m: &super::model::MeasureLine, lang: Lang) -> Vec<MeasureRow> {
    let (label, before, after) = measure(t, m, lang);
    let per_check = m.checks.len() > 1;
    let mut rows = vec![MeasureRow {
        label: label.to_string(),
        before,
        after,
        verdict: verdict(t, &m.verdict),
        // The checks' figures follow in their own lines.
        test: if per_check {
            crate::migration::compare::latency_method()
        } else {
            m.test.clone()
        },
        check: false,
    }];
    if !per_check {
        return rows;
    }
    rows.extend(m.checks.iter().map(|c| {
        let test = match (c.p_value, c.ratio_of_means) {
            (Some(p), ratio) => format!(
                "p95 {} → {} · p = {} · {} {}",
                millis(c.before_p95_ms, lang),
                millis(c.after_p95_ms, lang),
                locale::number(p, 4, lang),
                t.ratio_of_means,
                ratio.map_or_else(|| "∞".to_string(), |r| locale::number(r, 2, lang))
            ),
            (None, _) => format!(
                "{} {} {} {}, {} {}",
                c.before_samples,
                t.and,
                c.after_samples,
                t.samples,
                crate::migration::compare::MIN_LATENCY_SAMPLES,
                t.needed_each_side
            ),
        };
        MeasureRow {
            label: c.check.clone(),
            before: millis(c.before_p50_ms, lang),
            after: millis(c.after_p50_ms, lang),
            verdict: verdict(t, c.verdict.as_str()),
            test,
            check: true,
        }
    }));
    rows
}

fn millis(v: Option<f64>, lang: Lang) -> String {
    v.map_or_else(
        || "–".to_string(),
        |ms| format!("{} ms", locale::number(ms, 0, lang)),
    )
}

fn percent(v: Option<f64>, lang: Lang) -> String {
    v.map_or_else(|| "–".to_string(), |a| locale::percent(a, lang))
}

fn seconds(v: Option<f64>, lang: Lang) -> String {
    v.map_or_else(|| "–".to_string(), |s| locale::duration(s, lang))
}

/// A change of a ratio in percentage points, signed: `+0,32`, `-1,05`.
pub fn points(change: Option<f64>, lang: Lang) -> String {
    match change {
        None => "–".to_string(),
        Some(c) => {
            let n = locale::number(c * 100.0, 2, lang);
            if n.starts_with('-') || n.chars().all(|ch| ch == '0' || ch == ',' || ch == '.') {
                n
            } else {
                format!("+{n}")
            }
        }
    }
}

fn local(t: Timestamp, tz: &TimeZone, lang: Lang) -> String {
    locale::datetime(tz.to_datetime(t), lang)
}

impl View {
    pub fn of(r: &Report) -> View {
        let lang = r.lang;
        let t = texts(lang);
        let tz = TimeZone::get(&r.period.time_zone).unwrap_or(TimeZone::UTC);
        let first: jiff::civil::Date = r.period.first_day.parse().unwrap_or_default();
        let last: jiff::civil::Date = r.period.last_day.parse().unwrap_or_default();
        let span = format!(
            "{} – {}",
            locale::date_long(first, lang),
            locale::date_long(last, lang)
        );
        let title = match r.period.kind.as_str() {
            "week" => {
                let w = first.iso_week_date();
                format!("{} — {} {} {}", t.title, t.week, w.week(), w.year())
            }
            "month" => format!(
                "{} — {} {}",
                t.title,
                locale::month_name(first.month(), lang),
                first.year()
            ),
            _ => format!("{} — {}", t.title, span),
        };
        let names = |ids: &[String]| -> Vec<String> {
            ids.iter()
                .map(|id| {
                    r.services
                        .iter()
                        .find(|s| &s.service == id)
                        .map_or_else(|| id.clone(), |s| s.name.clone())
                })
                .collect()
        };
        let s = &r.summary;
        let met_count = format!("{} {} {}", s.services_met, t.of, s.services);
        let inside = r
            .incidents
            .iter()
            .filter(|i| i.inside_service_hours)
            .count();
        let headlines = vec![
            format!(
                "{}: {} ({}: {}, {} {}; {}: {}, {} {}).",
                t.availability,
                percent(s.availability, lang),
                t.previous_period,
                percent(s.previous_availability, lang),
                points(s.change_vs_previous, lang),
                t.points,
                t.four_period_average,
                percent(s.four_period_average, lang),
                points(s.change_vs_average, lang),
                t.points,
            ),
            format!("{}: {met_count}.", t.services_met),
            format!(
                "{}: {}, {} {}.",
                t.incidents_title,
                r.incidents.len(),
                inside,
                t.incidents_inside
            ),
        ];
        let services = r
            .services
            .iter()
            .map(|l| service_view(l, lang, t))
            .collect();
        let suppliers = r
            .suppliers
            .iter()
            .map(|l| {
                // A supplier is held to the lowest objective of its services.
                let objective = r
                    .services
                    .iter()
                    .filter(|s| s.supplier == l.supplier)
                    .map(|s| s.objective)
                    .fold(f64::NAN, f64::min);
                let objective = if objective.is_nan() { 0.0 } else { objective };
                SupplierView {
                    supplier: l.supplier.clone(),
                    services: l.services.to_string(),
                    met: format!("{} {} {}", l.services_met, t.of, l.services),
                    availability: percent(l.availability, lang),
                    down: locale::duration(l.down_seconds, lang),
                    excluded: locale::duration(l.excluded_maintenance_seconds, lang),
                    unknown: locale::duration(l.unknown_seconds, lang),
                    incidents: l.incidents.to_string(),
                    longest: seconds(l.longest_incident_seconds, lang),
                    mttr: seconds(l.mttr_seconds, lang),
                    change: points(l.change_vs_previous, lang),
                    verdict: if l.services_missed > 0 {
                        Verdict::of(l.availability, objective).min_below()
                    } else {
                        Verdict::of(l.availability, objective)
                    },
                    daily: daily(&l.daily, objective, lang),
                }
            })
            .collect();
        let incidents = r
            .incidents
            .iter()
            .map(|i| IncidentView {
                service: i.name.clone(),
                supplier: i.supplier.clone(),
                start: local(i.start, &tz, lang),
                end: i
                    .end
                    .map_or_else(|| t.still_open.to_string(), |e| local(e, &tz, lang)),
                duration: locale::duration(i.duration_seconds, lang),
                hours: if i.inside_service_hours {
                    t.inside_hours
                } else {
                    t.outside_hours
                }
                .to_string(),
                inside: i.inside_service_hours,
                cause: i.cause.clone(),
            })
            .collect();
        let maintenance = r
            .maintenance
            .iter()
            .map(|m| MaintenanceView {
                reference: m.reference.clone(),
                description: m.description.clone().unwrap_or_default(),
                start: local(m.start, &tz, lang),
                end: local(m.end, &tz, lang),
                effect: if m.excluded {
                    t.excluded_from_sla
                } else {
                    t.muted_only
                }
                .to_string(),
                services: names(&m.services).join(", "),
            })
            .collect();
        let certificates = r.certificates.as_ref().map(|cs| {
            cs.iter()
                .map(|c| CertificateView {
                    service: names(std::slice::from_ref(&c.service)).join(""),
                    check: c.check.clone(),
                    expires: local(c.not_after, &tz, lang),
                    days_left: c.days_left.to_string(),
                })
                .collect()
        });
        let recomputations = r
            .recomputations
            .iter()
            .map(|rc| RecomputationView {
                at: local(rc.at, &tz, lang),
                by: rc.by.clone(),
                reason: rc.reason.clone(),
                changes: rc
                    .changes
                    .iter()
                    .map(|c| {
                        (
                            format!("{} / {} ({})", c.service, c.sla, c.period),
                            format!(
                                "{} · {}",
                                percent(c.availability_before, lang),
                                locale::duration(c.down_seconds_before, lang)
                            ),
                            format!(
                                "{} · {}",
                                percent(c.availability_after, lang),
                                locale::duration(c.down_seconds_after, lang)
                            ),
                        )
                    })
                    .collect(),
            })
            .collect();
        let migrations = r
            .migrations
            .iter()
            .map(|m| MigrationView {
                caption: format!(
                    "{}: {} → {} ({}, {} {})",
                    m.name,
                    m.from,
                    m.to,
                    m.reference,
                    t.migration_caption,
                    local(m.cutover_end, &tz, lang)
                ),
                phases: m
                    .comparisons
                    .iter()
                    .map(|p| PhaseVerdictView {
                        heading: format!(
                            "{} {}",
                            t.baseline_against,
                            if p.phase == "steady" {
                                t.phase_steady
                            } else {
                                t.phase_hypercare
                            }
                        ),
                        overall: verdict(t, &p.overall),
                        measures: p
                            .measures
                            .iter()
                            .flat_map(|ml| measure_rows(t, ml, lang))
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        let days = r
            .days
            .iter()
            .map(|d| {
                let date: jiff::civil::Date = d.date.parse().unwrap_or_default();
                format!(
                    "{} {}",
                    &locale::weekday(date.weekday(), lang)[..2],
                    locale::date_short(date, lang)
                )
            })
            .collect();
        let trend = r
            .trend
            .iter()
            .map(|p| (p.label.clone(), percent(p.availability, lang)))
            .collect();
        let length = r.period.end.duration_since(r.period.start);
        let trend_axis = r
            .trend
            .iter()
            .map(|p| axis_label(&r.period.kind, &p.label, p.start, length, &tz, lang))
            .collect();
        View {
            t,
            lang,
            title,
            period: span,
            generated: local(r.generated_at, &tz, lang),
            availability: percent(s.availability, lang),
            met_count,
            missed_names: names(&s.missed),
            headlines,
            services,
            suppliers,
            incidents,
            maintenance,
            certificates,
            recomputations,
            migrations,
            days,
            trend,
            trend_axis,
        }
    }
}

/// A period's label on the trend's axis: the ISO week (`W47`), the month
/// (`nov`), or for a chosen range its first local day (`23 nov`, with the
/// hour when periods are shorter than a day). The full label (a range's
/// is two RFC 3339 instants) is the dot's tooltip.
fn axis_label(
    kind: &str,
    label: &str,
    start: Timestamp,
    length: jiff::SignedDuration,
    tz: &TimeZone,
    lang: Lang,
) -> String {
    let at = tz.to_datetime(start);
    match kind {
        "week" => label.rsplit('-').next().unwrap_or(label).to_string(),
        "month" => locale::month_abbr(at.month(), lang).to_string(),
        _ if length < jiff::SignedDuration::from_hours(24) => format!(
            "{} {} {:02}:{:02}",
            at.day(),
            locale::month_abbr(at.month(), lang),
            at.hour(),
            at.minute()
        ),
        _ => format!("{} {}", at.day(), locale::month_abbr(at.month(), lang)),
    }
}

impl Verdict {
    /// A group with a missed SLA never shows as met.
    fn min_below(self) -> Verdict {
        match self {
            Verdict::Met => Verdict::Below,
            v => v,
        }
    }
}

/// Each day's figure and how it compares with `objective`.
fn daily(values: &[Option<f64>], objective: f64, lang: Lang) -> Vec<(String, Verdict)> {
    values
        .iter()
        .map(|v| (percent(*v, lang), Verdict::of(*v, objective)))
        .collect()
}

fn service_view(l: &ServiceLine, lang: Lang, t: &Texts) -> ServiceView {
    let verdict = match l.met {
        Some(true) => Verdict::Met,
        Some(false) => Verdict::of(l.availability, l.objective).min_below(),
        None => Verdict::NoData,
    };
    ServiceView {
        name: l.name.clone(),
        id: l.service.clone(),
        category: l.category.clone(),
        supplier: l.supplier_shown(" → "),
        suppliers: if l.suppliers.is_empty() {
            vec![l.supplier.clone()]
        } else {
            l.suppliers.clone()
        },
        sla: l.sla.clone(),
        objective: locale::percent_with(l.objective / 100.0, 2, lang),
        calendar: l.calendar.clone(),
        availability: percent(l.availability, lang),
        verdict,
        result: match l.met {
            Some(true) => t.met,
            Some(false) => t.missed,
            None => t.no_data,
        }
        .to_string(),
        down: locale::duration(l.down_seconds, lang),
        excluded: locale::duration(l.excluded_maintenance_seconds, lang),
        references: l.maintenance_references.join(", "),
        unknown: locale::duration(l.unknown_seconds, lang),
        incidents: l.incidents.to_string(),
        longest: seconds(l.longest_incident_seconds, lang),
        mttr: seconds(l.mttr_seconds, lang),
        p95: l.latency_p95_ms.map_or_else(
            || "–".to_string(),
            |ms| format!("{} ms", locale::number(ms, 0, lang)),
        ),
        change: points(l.change_vs_previous, lang),
        recomputed: l.recomputed,
        daily: daily(&l.daily, l.objective, lang),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_grade_against_the_objective() {
        assert_eq!(Verdict::of(Some(0.999), 99.8), Verdict::Met);
        assert_eq!(Verdict::of(Some(0.997), 99.8), Verdict::Below);
        assert_eq!(Verdict::of(Some(0.99), 99.8), Verdict::FarBelow);
        assert_eq!(Verdict::of(None, 99.8), Verdict::NoData);
    }

    #[test]
    fn changes_read_as_signed_percentage_points() {
        assert_eq!(points(Some(0.0032), Lang::Nl), "+0,32");
        assert_eq!(points(Some(-0.0105), Lang::En), "-1.05");
        assert_eq!(points(Some(0.0), Lang::En), "0.00");
        assert_eq!(points(None, Lang::Nl), "–");
    }
}
