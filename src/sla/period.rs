//! SLA periods: ISO weeks (`2026-W47`), calendar months (`2026-11`) and
//! rolling 28-day windows (`28d@2026-11-20T14:00:00Z`), in a calendar's
//! time zone, with labels that parse back to the same period.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::{Date, ISOWeekDate, Weekday};
use jiff::tz::TimeZone;

use super::range::{TimeRange, from_ms, ms};
pub use crate::config::schedule::SlaPeriod;

/// A rolling period is 28 × 24 h of elapsed time, whatever DST does.
pub const ROLLING_MS: i64 = 28 * 24 * 3_600_000;

/// One concrete period `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub kind: SlaPeriod,
    pub range: TimeRange,
    tz: TimeZone,
    /// A range chosen by the reader (a day of a report, `--from/--to`)
    /// rather than a period of `kind`: labelled by its bounds.
    custom: bool,
}

/// A label that names no period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{label}' is not a period: {problem} (write 2026-W47, 2026-11 or 28d@2026-11-20T14:00:00Z)"
)]
pub struct PeriodLabelError {
    pub label: String,
    pub problem: String,
}

impl Period {
    pub fn start(&self) -> Timestamp {
        self.range.start
    }

    pub fn end(&self) -> Timestamp {
        self.range.end
    }

    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.range.contains(t)
    }

    /// Any range `[start, end)` counted as one period, for the days of a
    /// report and for `continuity report --from … --to …`. Its label is
    /// `START/END` (RFC 3339, UTC); its neighbours are the ranges of the
    /// same length before and after it.
    pub fn custom(range: TimeRange, tz: &TimeZone) -> Period {
        Period {
            kind: SlaPeriod::Rolling28d,
            range,
            tz: tz.clone(),
            custom: true,
        }
    }

    /// Whether this is a [`Period::custom`] range.
    pub fn is_custom(&self) -> bool {
        self.custom
    }

    /// `2026-W47`, `2026-11`, `28d@<end in UTC>`, or `START/END` for a
    /// custom range.
    pub fn label(&self) -> String {
        if self.custom {
            return format!("{}/{}", self.range.start, self.range.end);
        }
        match self.kind {
            SlaPeriod::Week => {
                let w = self.tz.to_datetime(self.range.start).date().iso_week_date();
                format!("{:04}-W{:02}", w.year(), w.week())
            }
            SlaPeriod::Month => {
                let d = self.tz.to_datetime(self.range.start).date();
                format!("{:04}-{:02}", d.year(), d.month())
            }
            SlaPeriod::Rolling28d => format!("28d@{}", self.range.end),
        }
    }

    /// The period just before this one (for a rolling period, the 28 days
    /// before its start).
    pub fn previous(&self) -> Period {
        if self.custom {
            let len = self.range.duration_ms();
            let start = from_ms(ms(self.range.start) - len);
            return Period::custom(TimeRange::new(start, self.range.start), &self.tz);
        }
        match self.kind {
            SlaPeriod::Rolling28d => rolling_ending(self.range.start, &self.tz),
            kind => period_containing(kind, from_ms(ms(self.range.start) - 1), &self.tz),
        }
    }

    /// The period just after this one.
    pub fn next(&self) -> Period {
        if self.custom {
            let end = from_ms(ms(self.range.end) + self.range.duration_ms());
            return Period::custom(TimeRange::new(self.range.end, end), &self.tz);
        }
        match self.kind {
            SlaPeriod::Rolling28d => {
                rolling_ending(from_ms(ms(self.range.end) + ROLLING_MS), &self.tz)
            }
            kind => period_containing(kind, self.range.end, &self.tz),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// The first instant of local `day` in `tz`.
pub fn local_midnight(day: Date, tz: &TimeZone) -> Timestamp {
    // A zone that skips midnight starts the day at the first instant after
    // the gap (compatible rule); never fails inside jiff's date range.
    tz.to_ambiguous_timestamp(day.to_datetime(jiff::civil::Time::midnight()))
        .compatible()
        .unwrap_or(Timestamp::MAX)
}

fn day_range(first: Date, next: Option<Date>, tz: &TimeZone) -> TimeRange {
    let start = local_midnight(first, tz);
    let end = next
        .map(|d| local_midnight(d, tz))
        .unwrap_or(Timestamp::MAX);
    TimeRange::new(start, end)
}

/// The calendar day `date` in `tz`: from its local midnight to the next
/// (23 or 25 hours on the DST days).
pub fn calendar_day(date: Date, tz: &TimeZone) -> TimeRange {
    day_range(date, date.tomorrow().ok(), tz)
}

fn week_of(monday: Date, tz: &TimeZone) -> Period {
    let next = monday.checked_add(jiff::Span::new().days(7)).ok();
    Period {
        kind: SlaPeriod::Week,
        range: day_range(monday, next, tz),
        tz: tz.clone(),
        custom: false,
    }
}

fn month_of(first: Date, tz: &TimeZone) -> Period {
    let next = first.checked_add(jiff::Span::new().months(1)).ok();
    Period {
        kind: SlaPeriod::Month,
        range: day_range(first, next, tz),
        tz: tz.clone(),
        custom: false,
    }
}

fn rolling_ending(end: Timestamp, tz: &TimeZone) -> Period {
    Period {
        kind: SlaPeriod::Rolling28d,
        range: TimeRange::new(from_ms(ms(end) - ROLLING_MS), end),
        tz: tz.clone(),
        custom: false,
    }
}

/// The period of `kind` that contains `ts` in time zone `tz`. A rolling
/// period is the 28 days ending at `ts` (`ts` itself excluded).
pub fn period_containing(kind: SlaPeriod, ts: Timestamp, tz: &TimeZone) -> Period {
    let day = tz.to_datetime(ts).date();
    match kind {
        SlaPeriod::Week => {
            let back = i32::from(day.weekday().to_monday_zero_offset());
            let monday = day.checked_sub(jiff::Span::new().days(back)).unwrap_or(day);
            week_of(monday, tz)
        }
        SlaPeriod::Month => month_of(day.first_of_month(), tz),
        SlaPeriod::Rolling28d => rolling_ending(ts, tz),
    }
}

/// Parse `2026-W47`, `2026-11` or `28d@2026-11-20T14:00:00Z`.
pub fn parse_period_label(label: &str, tz: &TimeZone) -> Result<Period, PeriodLabelError> {
    let err = |problem: String| PeriodLabelError {
        label: label.to_string(),
        problem,
    };
    let s = label.trim();
    if let Some(end) = s.strip_prefix("28d@") {
        let end: Timestamp = end
            .parse()
            .map_err(|e| err(format!("the end is not an RFC 3339 instant ({e})")))?;
        return Ok(rolling_ending(end, tz));
    }
    let (year, rest) = s
        .split_once('-')
        .ok_or_else(|| err("expected YEAR-Www or YEAR-MM".into()))?;
    let year: i16 = year
        .parse()
        .ok()
        .filter(|y| (1..=9998).contains(y))
        .ok_or_else(|| err(format!("'{year}' is not a year")))?;
    if let Some(week) = rest.strip_prefix('W').or_else(|| rest.strip_prefix('w')) {
        let week: i8 = week
            .parse()
            .map_err(|_| err(format!("'{week}' is not a week number")))?;
        let weeks = ISOWeekDate::new(year, 1, Weekday::Monday)
            .map(|w| w.weeks_in_year())
            .unwrap_or(52);
        if !(1..=weeks).contains(&week) {
            return Err(err(format!("{year} has ISO weeks 1 to {weeks}")));
        }
        let monday = ISOWeekDate::new(year, week, Weekday::Monday)
            .map_err(|e| err(e.to_string()))?
            .date();
        return Ok(week_of(monday, tz));
    }
    let month: i8 = rest
        .parse()
        .ok()
        .filter(|m| (1..=12).contains(m))
        .ok_or_else(|| {
            err(format!(
                "'{rest}' is not a month 01 to 12 or a week W01 to W53"
            ))
        })?;
    let first = Date::new(year, month, 1).map_err(|e| err(e.to_string()))?;
    Ok(month_of(first, tz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::range::tests::{r, ts};

    fn ams() -> TimeZone {
        TimeZone::get("Europe/Amsterdam").unwrap()
    }

    #[test]
    fn week_runs_monday_midnight_to_monday_midnight_local() {
        let p = period_containing(SlaPeriod::Week, ts("2026-11-20T14:00:00Z"), &ams());
        assert_eq!(
            p.range,
            r("2026-11-16T00:00:00+01:00", "2026-11-23T00:00:00+01:00")
        );
        assert_eq!(p.label(), "2026-W47");
        assert_eq!(parse_period_label("2026-W47", &ams()).unwrap(), p);
    }

    #[test]
    fn week_boundary_is_local_not_utc() {
        // Sunday 23:30 UTC is already Monday 00:30 in Amsterdam.
        let p = period_containing(SlaPeriod::Week, ts("2026-11-22T23:30:00Z"), &ams());
        assert_eq!(p.label(), "2026-W48");
    }

    #[test]
    fn week_across_spring_dst_is_167_hours() {
        let p = parse_period_label("2026-W13", &ams()).unwrap();
        assert_eq!(
            p.range,
            r("2026-03-23T00:00:00+01:00", "2026-03-30T00:00:00+02:00")
        );
        assert_eq!(p.range.duration_ms(), 167 * 3_600_000);
    }

    #[test]
    fn years_with_53_iso_weeks_have_a_w53() {
        // 2026 and 2020 start on a Thursday (2020 is also a leap year).
        let w = parse_period_label("2026-W53", &ams()).unwrap();
        assert_eq!(
            w.range,
            r("2026-12-28T00:00:00+01:00", "2027-01-04T00:00:00+01:00")
        );
        assert_eq!(w.next().label(), "2027-W01");
        assert_eq!(
            parse_period_label("2020-W53", &ams()).unwrap().label(),
            "2020-W53"
        );
        assert_eq!(
            parse_period_label("2021-W01", &ams())
                .unwrap()
                .previous()
                .label(),
            "2020-W53"
        );
        let e = parse_period_label("2027-W53", &ams()).unwrap_err();
        assert!(e.problem.contains("1 to 52"), "{e}");
    }

    #[test]
    fn iso_week_one_can_start_in_the_previous_year() {
        // 2025-12-29 (Monday) is in 2026-W01.
        let p = period_containing(SlaPeriod::Week, ts("2025-12-31T12:00:00Z"), &ams());
        assert_eq!(p.label(), "2026-W01");
        assert_eq!(p.start(), ts("2025-12-29T00:00:00+01:00"));
    }

    #[test]
    fn month_runs_first_to_first_local_and_labels_round_trip() {
        let p = period_containing(SlaPeriod::Month, ts("2026-10-31T23:30:00Z"), &ams());
        assert_eq!(p.label(), "2026-11");
        assert_eq!(
            p.range,
            r("2026-11-01T00:00:00+01:00", "2026-12-01T00:00:00+01:00")
        );
        assert_eq!(p.previous().label(), "2026-10");
        assert_eq!(p.previous().range.duration_ms(), (31 * 24 + 1) * 3_600_000);
        assert_eq!(p.next().next().label(), "2027-01");
        assert_eq!(parse_period_label("2026-11", &ams()).unwrap(), p);
    }

    #[test]
    fn a_calendar_day_runs_midnight_to_midnight_local_and_the_dst_days_differ() {
        let day = |d: i8, m: i8| calendar_day(Date::new(2026, m, d).unwrap(), &ams());
        assert_eq!(
            day(23, 11),
            r("2026-11-23T00:00:00+01:00", "2026-11-24T00:00:00+01:00")
        );
        assert_eq!(day(29, 3).duration_ms(), 23 * 3_600_000);
        assert_eq!(day(25, 10).duration_ms(), 25 * 3_600_000);
    }

    #[test]
    fn rolling_period_is_the_28_days_before_now() {
        let now = ts("2026-11-20T14:00:00Z");
        let p = period_containing(SlaPeriod::Rolling28d, now, &ams());
        assert_eq!(p.range, r("2026-10-23T14:00:00Z", "2026-11-20T14:00:00Z"));
        assert_eq!(p.label(), "28d@2026-11-20T14:00:00Z");
        assert_eq!(parse_period_label(&p.label(), &ams()).unwrap(), p);
        assert_eq!(p.previous().end(), p.start());
        assert_eq!(p.next().start(), p.end());
    }

    #[test]
    fn custom_range_is_labelled_by_its_bounds_and_steps_by_its_length() {
        let p = Period::custom(r("2026-11-23T00:00:00Z", "2026-11-24T00:00:00Z"), &ams());
        assert_eq!(p.label(), "2026-11-23T00:00:00Z/2026-11-24T00:00:00Z");
        assert_eq!(
            p.previous().range,
            r("2026-11-22T00:00:00Z", "2026-11-23T00:00:00Z")
        );
        assert_eq!(p.next().start(), p.end());
        assert!(p.is_custom());
    }

    #[test]
    fn nonsense_labels_are_rejected_with_the_reason() {
        for bad in [
            "2026",
            "2026-13",
            "2026-W00",
            "x-W01",
            "28d@yesterday",
            "2026-Wx",
        ] {
            assert!(parse_period_label(bad, &ams()).is_err(), "{bad}");
        }
    }
}
