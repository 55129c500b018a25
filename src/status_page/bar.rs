//! A service's 90-day bar: one cell per day, graded by that day's
//! availability against the objective of the SLA it is counted in, drawn
//! as inline SVG. Colour is never the only signal: the worse grades are
//! patterned, days without figures are drawn short, every cell has a title
//! with the day's figures, the figure as a whole has a text alternative,
//! and a line of text under it says the same.
//!
//! With 1,000 services a page holds 90,000 cells, so the markup is written
//! straight into the page's buffer and each day's date is formatted once
//! per page, not once per cell.

use std::collections::HashMap;
use std::fmt::Write;

use jiff::civil::Date;

use super::texts::Texts;
use crate::report::daily::{DayCell, ServiceDays, availability_over};
use crate::report::locale::{self, Lang};

/// Without an SLA, a day counts as below the objective under this.
pub const DEFAULT_OBJECTIVE: f64 = 99.0;

/// A day's grade, worst last among the measured ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DayGrade {
    /// No opening hours that day.
    Closed,
    /// Every opening hour in excluding maintenance.
    Maintenance,
    /// Open, but the monitor has no figures.
    NoData,
    /// No down time.
    Ok,
    /// Down time, availability still at or above the objective.
    Minor,
    /// Availability below the objective.
    Major,
}

impl DayGrade {
    pub const ALL: [DayGrade; 6] = [
        DayGrade::Ok,
        DayGrade::Minor,
        DayGrade::Major,
        DayGrade::Maintenance,
        DayGrade::NoData,
        DayGrade::Closed,
    ];

    pub fn of(day: &DayCell, objective: Option<f64>) -> DayGrade {
        let objective = objective.unwrap_or(DEFAULT_OBJECTIVE);
        match day.availability() {
            None if !day.had_hours() => DayGrade::Closed,
            None if day.unknown == 0 => DayGrade::Maintenance,
            None => DayGrade::NoData,
            Some(_) if day.down == 0 => DayGrade::Ok,
            // In parts per million, as the SLA rows decide `met`.
            Some(_) => {
                let ppm = i128::from(crate::sla::budget_ppm(objective));
                if i128::from(day.down) * 1_000_000 <= day.eligible() as i128 * ppm {
                    DayGrade::Minor
                } else {
                    DayGrade::Major
                }
            }
        }
    }

    /// The id of the grade's cell in the page's shared definitions (one
    /// letter: it is written 90 times per service).
    pub fn class(self) -> &'static str {
        match self {
            DayGrade::Ok => "o",
            DayGrade::Minor => "m",
            DayGrade::Major => "x",
            DayGrade::Maintenance => "w",
            DayGrade::NoData => "n",
            DayGrade::Closed => "c",
        }
    }

    pub fn text(self, t: &Texts) -> &'static str {
        match self {
            DayGrade::Ok => t.day_ok,
            DayGrade::Minor => t.day_minor,
            DayGrade::Major => t.day_major,
            DayGrade::Maintenance => t.day_maintenance,
            DayGrade::NoData => t.day_no_data,
            DayGrade::Closed => t.day_closed,
        }
    }
}

/// A cell's pitch in the bar's coordinates; the cells themselves, one per
/// grade (`#o`, `#m`, …, the short ones drawn short), are defined once in
/// the page and placed with `<use>`, which keeps a cell near 60 bytes.
const CELL: usize = 5;
const HEIGHT: usize = 20;

/// Dates and the titles of uneventful days, formatted once per page and
/// language rather than once per cell.
#[derive(Default)]
pub struct DateLabels {
    by_date: HashMap<Date, String>,
    /// `(date, grade)` to the whole title of a day with nothing to say
    /// but its grade: a clean day, or a closed one.
    titles: HashMap<(Date, bool, DayGrade), String>,
}

impl DateLabels {
    fn get(&mut self, date: Date, lang: Lang) -> &str {
        self.by_date
            .entry(date)
            .or_insert_with(|| locale::date_medium(date, lang))
    }
}

/// A day whose title depends on its date and grade alone.
fn uneventful(day: &DayCell, grade: DayGrade) -> bool {
    day.down == 0
        && day.excluded == 0
        && day.unknown == 0
        && matches!(grade, DayGrade::Ok | DayGrade::Closed)
}

/// Writes the bar of `days` into `out`, and returns the line of text
/// that says what it shows.
pub fn write_bar(
    out: &mut String,
    days: &ServiceDays,
    lang: Lang,
    t: &Texts,
    labels: &mut DateLabels,
) -> String {
    let n = days.days.len();
    let grades: Vec<DayGrade> = days
        .days
        .iter()
        .map(|d| DayGrade::of(d, days.objective))
        .collect();
    let count = |g: DayGrade| grades.iter().filter(|x| **x == g).count();
    let outage_days = count(DayGrade::Minor) + count(DayGrade::Major);
    let overall = availability_over(&days.days);
    let summary = match overall {
        Some(a) => format!(
            "{} {} {} · {} {}",
            locale::percent(a, lang),
            t.available,
            t.in_days,
            outage_days,
            if outage_days == 1 {
                t.day_with_outage
            } else {
                t.days_with_outage
            }
        ),
        None => t.no_figures.to_string(),
    };
    let mut alt = format!("{}: {summary}", t.bar_label);
    for g in [DayGrade::Major, DayGrade::Minor, DayGrade::NoData] {
        if count(g) > 0 {
            let _ = write!(alt, "; {} × {}", count(g), g.text(t));
        }
    }
    let _ = write!(
        out,
        r#"<svg class="bar" viewBox="0 0 {w} {HEIGHT}" preserveAspectRatio="none" role="img" aria-label="{alt}">"#,
        w = n * CELL - 1,
    );
    let mut date = days.date(0);
    for (i, (day, grade)) in days.days.iter().zip(&grades).enumerate() {
        let today = i + 1 == n;
        let _ = write!(out, r##"<use href="#{}" x="{}">"##, grade.class(), i * CELL);
        if uneventful(day, *grade) {
            let key = (date, today, *grade);
            if !labels.titles.contains_key(&key) {
                let mut title = String::new();
                cell_title(
                    &mut title,
                    labels.get(date, lang),
                    today,
                    day,
                    *grade,
                    lang,
                    t,
                );
                labels.titles.insert(key, title);
            }
            out.push_str(&labels.titles[&key]);
        } else {
            let label = labels.get(date, lang).to_string();
            cell_title(out, &label, today, day, *grade, lang, t);
        }
        out.push_str("</use>");
        date = date.tomorrow().unwrap_or(date);
    }
    out.push_str("</svg>");
    summary
}

/// `<title>22 november 2026: 99,31 %, 3 min storing</title>`.
fn cell_title(
    out: &mut String,
    date: &str,
    today: bool,
    day: &DayCell,
    grade: DayGrade,
    lang: Lang,
    t: &Texts,
) {
    out.push_str("<title>");
    out.push_str(date);
    if today {
        let _ = write!(out, " ({})", t.today_so_far);
    }
    out.push_str(": ");
    day_text(out, day, grade, lang, t);
    out.push_str("</title>");
}

/// `99,31 %, 3 min storing, 2 u 00 min onderhoud`.
fn day_text(out: &mut String, day: &DayCell, grade: DayGrade, lang: Lang, t: &Texts) {
    // The figure's label says these are availabilities.
    match day.availability() {
        Some(a) => out.push_str(&locale::percent(a, lang)),
        None => out.push_str(grade.text(t)),
    }
    for (ms, what) in [
        (day.down, t.down_for),
        (day.excluded, t.maintenance_for),
        (day.unknown, t.unmeasured_for),
    ] {
        // Under a second is the edge of a measurement, not news.
        if ms >= 1000 {
            let _ = write!(
                out,
                ", {} {what}",
                locale::duration(f64::from(ms) / 1000.0, lang)
            );
        }
    }
}

/// The legend: each grade's cell, drawn as in the bars, and its text.
pub fn legend(t: &Texts) -> Vec<(&'static str, &'static str)> {
    DayGrade::ALL
        .iter()
        .map(|g| (g.class(), g.text(t)))
        .collect()
}

/// The 30-day availability of a service for its badge.
pub fn last_days(days: &ServiceDays, n: usize) -> Option<f64> {
    availability_over(&days.days[days.days.len().saturating_sub(n)..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status_page::texts::NL;

    fn cell(good: u32, down: u32, unknown: u32, excluded: u32) -> DayCell {
        DayCell {
            good,
            down,
            unknown,
            excluded,
        }
    }

    #[test]
    fn a_day_is_graded_against_its_objective_in_parts_per_million() {
        let h = 3_600_000;
        assert_eq!(
            DayGrade::of(&cell(9 * h, 0, 0, 0), Some(99.5)),
            DayGrade::Ok
        );
        // 99.5 % of 9 h allows 162 s.
        assert_eq!(
            DayGrade::of(&cell(9 * h - 162_000, 162_000, 0, 0), Some(99.5)),
            DayGrade::Minor
        );
        assert_eq!(
            DayGrade::of(&cell(9 * h - 162_001, 162_001, 0, 0), Some(99.5)),
            DayGrade::Major
        );
        assert_eq!(DayGrade::of(&cell(0, 0, 0, 0), None), DayGrade::Closed);
        assert_eq!(DayGrade::of(&cell(0, 0, h, 0), None), DayGrade::NoData);
        assert_eq!(DayGrade::of(&cell(0, 0, 0, h), None), DayGrade::Maintenance);
    }

    #[test]
    fn every_cell_has_a_title_and_the_figure_a_text_alternative() {
        let h = 3_600_000;
        let days = ServiceDays {
            service: "portal".into(),
            objective: Some(99.5),
            calendar: "24x7".into(),
            last_day: jiff::civil::date(2026, 11, 23),
            days: vec![
                cell(24 * h, 0, 0, 0),
                cell(23 * h, h, 0, 0),
                cell(0, 0, 0, 0),
            ],
        };
        let mut out = String::new();
        let summary = write_bar(&mut out, &days, Lang::Nl, &NL, &mut DateLabels::default());
        assert_eq!(out.matches("<title>").count(), 3);
        assert_eq!(out.matches("<use href=").count(), 3);
        assert!(
            out.contains("<title>22 november 2026: 95,83 %, 1 u 00 min storing</title>"),
            "{out}"
        );
        assert!(
            out.contains("23 november 2026 (vandaag tot nu): gesloten"),
            "{out}"
        );
        assert!(
            summary.starts_with("97,91 % beschikbaar in 90 dagen · 1 dag met storing"),
            "{summary}"
        );
        assert!(
            out.contains(r#"aria-label="Beschikbaarheid per dag"#),
            "{out}"
        );
        assert!(out.contains("1 × storing, onder de norm"), "{out}");
    }
}
