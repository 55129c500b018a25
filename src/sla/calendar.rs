//! Business-hours calendars: which instants an SLA counts, given opening
//! hours per weekday in a time zone, public holidays and closed days.
//!
//! Opening hours are local wall-clock times. Each is turned into an
//! instant with jiff's "compatible" rule, so a day's hours are as long as
//! the clock says they are: 08:00-17:00 is 9 h on both DST days, and
//! 00:00-24:00 is 23 h on the last Sunday of March and 25 h on the last
//! Sunday of October (Europe/Amsterdam).

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;

use super::holidays::{Holiday, HolidayOptions, dutch_holiday};
use super::range::{RangeSet, TimeRange};
use crate::config::CalendarSpec;
use crate::config::schedule::ALWAYS;

const DAY_MINUTES: u16 = 24 * 60;

/// A validated calendar ready to compute with.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaCalendar {
    tz: TimeZone,
    /// Monday first; minutes since local midnight, `[open, close)`.
    week: [Vec<(u16, u16)>; 7],
    dutch_holidays: bool,
    options: HolidayOptions,
    closed: BTreeSet<Date>,
}

impl SlaCalendar {
    pub fn new(spec: &CalendarSpec) -> SlaCalendar {
        SlaCalendar {
            tz: spec.tz(),
            week: spec.week.clone(),
            dutch_holidays: spec.holidays == "nl",
            options: HolidayOptions {
                good_friday: spec.good_friday,
                liberation_day: spec.liberation_day,
            },
            closed: spec.closed.iter().copied().collect(),
        }
    }

    /// The built-in `24x7` calendar: every instant counts.
    pub fn always() -> SlaCalendar {
        SlaCalendar::new(&CalendarSpec::always())
    }

    /// The calendar an SLA names: `24x7` or one of `calendars`. A name
    /// that is not there (validation rejects that) counts every instant.
    pub fn named(name: &str, calendars: &BTreeMap<String, CalendarSpec>) -> SlaCalendar {
        match calendars.get(name) {
            Some(spec) if name != ALWAYS => SlaCalendar::new(spec),
            _ => SlaCalendar::always(),
        }
    }

    pub fn tz(&self) -> &TimeZone {
        &self.tz
    }

    /// Open every minute of every day, no holidays, no closed days: the
    /// answer is then independent of the time zone and of DST.
    pub fn is_always_open(&self) -> bool {
        !self.dutch_holidays
            && !self.options.good_friday
            && !self.options.liberation_day
            && self.closed.is_empty()
            && self.week.iter().all(|d| d.as_slice() == [(0, DAY_MINUTES)])
    }

    /// The public holiday on `date`, when this calendar observes one.
    /// `good_friday` and `liberation_day` count even with `holidays: none`:
    /// whoever sets them wants those days closed.
    pub fn holiday(&self, date: Date) -> Option<Holiday> {
        if !(self.dutch_holidays || self.options.good_friday || self.options.liberation_day) {
            return None;
        }
        match dutch_holiday(date, self.options)? {
            h @ (Holiday::GoodFriday | Holiday::LiberationDay) => Some(h),
            h if self.dutch_holidays => Some(h),
            _ => None,
        }
    }

    /// Closed all day: a holiday or a configured closed day.
    pub fn is_closed(&self, date: Date) -> bool {
        self.closed.contains(&date) || self.holiday(date).is_some()
    }

    /// The open instants inside `range`.
    pub fn open_ranges(&self, range: TimeRange) -> RangeSet {
        if range.is_empty() {
            return RangeSet::new();
        }
        if self.is_always_open() {
            return RangeSet::from_ranges([range]);
        }
        let first = self.tz.to_datetime(range.start).date();
        let last = self.tz.to_datetime(range.end).date();
        // Start a day early: a local day's hours never reach past the next
        // local midnight, but the UTC instant of `range.start` may.
        let mut day = first.yesterday().unwrap_or(first);
        let mut out = Vec::new();
        while day <= last {
            if !self.is_closed(day) {
                let hours = &self.week[day.weekday().to_monday_zero_offset() as usize];
                for &(open, close) in hours {
                    if let (Some(a), Some(b)) = (self.instant(day, open), self.instant(day, close))
                        && let Some(r) = TimeRange::new(a, b).intersect(&range)
                    {
                        out.push(r);
                    }
                }
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        RangeSet::from_ranges(out)
    }

    /// Milliseconds of opening time inside `range`.
    pub fn open_ms(&self, range: TimeRange) -> i64 {
        self.open_ranges(range).total_ms()
    }

    /// `minute` minutes after local midnight of `day` (1440 = next
    /// midnight), resolved in a DST gap or fold by the compatible rule.
    fn instant(&self, day: Date, minute: u16) -> Option<Timestamp> {
        let (day, minute) = if minute >= DAY_MINUTES {
            (day.tomorrow().ok()?, 0)
        } else {
            (day, minute)
        };
        let time = Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0).ok()?;
        self.tz
            .to_ambiguous_timestamp(DateTime::from_parts(day, time))
            .compatible()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::range::tests::{r, ts};
    use jiff::civil::date;

    const H: i64 = 3_600_000;

    fn office(hours: &[(&str, &str)], holidays: &str) -> SlaCalendar {
        let mut spec = CalendarSpec::always();
        spec.hours = hours
            .iter()
            .map(|(d, h)| (d.to_string(), h.to_string()))
            .collect();
        spec.holidays = holidays.to_string();
        let mut v = crate::config::Validator::new("test.yaml".into());
        spec.validate(&mut v, crate::config::Location::UNKNOWN);
        assert!(v.issues.is_empty(), "{:?}", v.issues);
        SlaCalendar::new(&spec)
    }

    fn nine_to_five() -> SlaCalendar {
        office(&[("mon-fri", "08:00-17:00")], "nl")
    }

    #[test]
    fn office_day_is_nine_hours_on_both_dst_days() {
        // Spring forward on Sunday 2026-03-29, fall back on Sunday 2026-10-25.
        let cal = office(&[("daily", "08:00-17:00")], "none");
        let spring = cal.open_ranges(r("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"));
        assert_eq!(
            spring.ranges(),
            &[r("2026-03-29T08:00:00+02:00", "2026-03-29T17:00:00+02:00")]
        );
        assert_eq!(spring.total_ms(), 9 * H);
        let autumn = cal.open_ranges(r("2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00"));
        assert_eq!(
            autumn.ranges(),
            &[r("2026-10-25T08:00:00+01:00", "2026-10-25T17:00:00+01:00")]
        );
        assert_eq!(autumn.total_ms(), 9 * H);
    }

    #[test]
    fn whole_day_is_23_hours_in_march_and_25_in_october() {
        let cal = office(&[("daily", "00:00-24:00")], "nl");
        assert!(!cal.is_always_open(), "holidays make it a real calendar");
        let spring = r("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00");
        assert_eq!(cal.open_ms(spring), 23 * H);
        let autumn = r("2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00");
        assert_eq!(cal.open_ms(autumn), 25 * H);
    }

    #[test]
    fn kings_day_week_has_four_office_days() {
        // 2027-04-27 is a Tuesday.
        let cal = nine_to_five();
        let week = r("2027-04-26T00:00:00+02:00", "2027-05-03T00:00:00+02:00");
        let open = cal.open_ranges(week);
        assert_eq!(open.total_ms(), 4 * 9 * H);
        assert!(!open.contains(ts("2027-04-27T10:00:00+02:00")));
        assert!(open.contains(ts("2027-04-26T10:00:00+02:00")));
        assert_eq!(cal.holiday(date(2027, 4, 27)), Some(Holiday::KingsDay));
    }

    #[test]
    fn closed_days_and_split_hours_are_honoured() {
        let mut spec = CalendarSpec::always();
        spec.hours = [("mon-fri".to_string(), "08:00-12:00,13:00-17:00".to_string())].into();
        spec.closed = vec![date(2026, 11, 18)];
        let mut v = crate::config::Validator::new("test.yaml".into());
        spec.validate(&mut v, crate::config::Location::UNKNOWN);
        let cal = SlaCalendar::new(&spec);
        // Mon 16 .. Sun 22 Nov 2026, Wednesday closed.
        let week = r("2026-11-16T00:00:00+01:00", "2026-11-23T00:00:00+01:00");
        assert_eq!(cal.open_ms(week), 4 * 8 * H);
        assert!(
            !cal.open_ranges(week)
                .contains(ts("2026-11-16T12:30:00+01:00"))
        );
    }

    #[test]
    fn always_is_the_whole_range_whatever_the_zone() {
        let cal = SlaCalendar::always();
        assert!(cal.is_always_open());
        let range = r("2026-03-28T13:17:00Z", "2026-03-30T01:02:03Z");
        assert_eq!(cal.open_ranges(range).ranges(), &[range]);
        assert!(cal.holiday(date(2026, 12, 25)).is_none());
    }

    #[test]
    fn hours_are_clipped_to_the_range() {
        let cal = nine_to_five();
        let open = cal.open_ranges(r("2026-11-16T10:30:00+01:00", "2026-11-16T12:00:00+01:00"));
        assert_eq!(open.total_ms(), 90 * 60_000);
    }

    #[test]
    fn good_friday_option_closes_the_day_even_without_holiday_set() {
        let mut spec = CalendarSpec::always();
        spec.good_friday = true;
        let cal = SlaCalendar::new(&spec);
        assert_eq!(cal.holiday(date(2026, 4, 3)), Some(Holiday::GoodFriday));
        assert_eq!(cal.holiday(date(2026, 4, 6)), None);
        assert_eq!(
            cal.open_ms(r("2026-04-03T00:00:00+02:00", "2026-04-04T00:00:00+02:00")),
            0
        );
    }
}
