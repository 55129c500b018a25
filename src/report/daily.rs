//! Availability per calendar day of every service: the status page's
//! 90-day bars and its badges' 30-day figure.
//!
//! A day is counted by the SLA code exactly as [`super::sla::sla_report`]
//! counts a period: the stored timeline cut at the service's horizon, the
//! configured and ad-hoc maintenance that excludes time, and the opening
//! hours of the service's first SLA's calendar (`24x7` without an SLA), in
//! that calendar's time zone. Accounting is additive over adjacent ranges,
//! so the seven days of an ISO week add up, to the millisecond, to the
//! week `continuity sla` reports.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;

use super::sla::{horizons, known_segments, maintenance_specs, stored_timelines};
use crate::config::schedule::ALWAYS;
use crate::config::{Config, Service};
use crate::sla::range::to_millisecond;
use crate::sla::{
    RangeSet, Segment, ServiceMaintenance, SlaCalendar, SlaFigures, TimeRange, account,
    calendar_day,
};
use crate::store::{Store, StoreError};

/// One day of one service, in milliseconds per bucket (a day is at most
/// 25 hours, so `u32` holds it; 16 bytes a day keeps 90 days of 10,000
/// services at 14 MB).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCell {
    /// Up or degraded, inside hours and not excluded.
    pub good: u32,
    pub down: u32,
    /// Inside hours, not excluded, state not known (monitor gaps).
    pub unknown: u32,
    /// Inside hours, in an excluding maintenance window.
    pub excluded: u32,
}

impl DayCell {
    fn of(f: &SlaFigures) -> DayCell {
        let c = |ms: i64| u32::try_from(ms.max(0)).unwrap_or(u32::MAX);
        DayCell {
            good: c(f.good),
            down: c(f.down),
            unknown: c(f.unknown),
            excluded: c(f.excluded_maintenance),
        }
    }

    pub fn eligible(&self) -> u64 {
        u64::from(self.good) + u64::from(self.down)
    }

    /// `good / eligible`, as the SLA figures have it; `None` without
    /// eligible time (a closed day, or one the monitor did not see).
    pub fn availability(&self) -> Option<f64> {
        let eligible = self.eligible();
        (eligible > 0).then(|| f64::from(self.good) / eligible as f64)
    }

    /// Whether the calendar had any opening time that day.
    pub fn had_hours(&self) -> bool {
        self.eligible() + u64::from(self.unknown) + u64::from(self.excluded) > 0
    }
}

/// Good and eligible time over several days, for a figure over them.
pub fn availability_over(days: &[DayCell]) -> Option<f64> {
    let good: u64 = days.iter().map(|d| u64::from(d.good)).sum();
    let eligible: u64 = days.iter().map(DayCell::eligible).sum();
    (eligible > 0).then(|| good as f64 / eligible as f64)
}

/// The days of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDays {
    pub service: String,
    /// The objective (percent) of the SLA whose calendar counts the days.
    pub objective: Option<f64>,
    pub calendar: String,
    /// Today in the calendar's time zone, counted up to now.
    pub last_day: Date,
    /// Oldest first; the last one is `last_day`.
    pub days: Vec<DayCell>,
}

impl ServiceDays {
    /// The date of `days[i]`.
    pub fn date(&self, i: usize) -> Date {
        let back = (self.days.len() - 1 - i.min(self.days.len() - 1)) as i64;
        self.last_day
            .checked_sub(jiff::Span::new().days(back))
            .unwrap_or(self.last_day)
    }

    /// This service's days laid over `older` (the same service counted
    /// before): days this one counted win, the rest come from `older`, and
    /// the result is `len` days ending at this one's last day.
    pub fn over(mut self, older: &ServiceDays, len: usize) -> ServiceDays {
        let mut by_date: BTreeMap<Date, DayCell> = (0..older.days.len())
            .map(|i| (older.date(i), older.days[i]))
            .collect();
        for i in 0..self.days.len() {
            by_date.insert(self.date(i), self.days[i]);
        }
        let last = self.last_day;
        self.days = (0..len)
            .rev()
            .map(|back| {
                let d = last
                    .checked_sub(jiff::Span::new().days(back as i64))
                    .unwrap_or(last);
                by_date.get(&d).copied().unwrap_or_default()
            })
            .collect();
        self
    }
}

/// The last `days` calendar days (today included, counted up to `now`)
/// of every service in the configuration, in its order.
pub fn daily_availability(
    config: &Config,
    store: &dyn Store,
    days: usize,
    now: Timestamp,
) -> Result<Vec<ServiceDays>, StoreError> {
    let now = to_millisecond(now);
    let days = days.max(1);
    let services: Vec<&Service> = config.services.iter().map(|s| &**s).collect();
    let mut calendars: BTreeMap<&str, CalendarDays> = BTreeMap::new();
    for s in &services {
        let name = counting_sla(s).map_or(ALWAYS, |(name, _)| name);
        calendars
            .entry(name)
            .or_insert_with(|| CalendarDays::new(name, config, days, now));
    }
    let Some(span_start) = calendars.values().map(|c| c.days[0].0.start).min() else {
        return Ok(Vec::new());
    };
    let span = TimeRange::new(span_start, now);
    let timelines = stored_timelines(store, &services, None, span)?;
    let specs = maintenance_specs(config, store, span)?;
    let horizons = horizons(&services, &store.last_results()?);

    let mut out = Vec::with_capacity(services.len());
    for (si, s) in services.iter().enumerate() {
        let (name, objective) = counting_sla(s).map_or((ALWAYS, None), |(n, o)| (n, Some(o)));
        let cal = &calendars[name];
        let start = cal.days[0].0.start;
        let segments = known_segments(&timelines[si], horizons[si], start, now);
        let excluded =
            ServiceMaintenance::for_service(&specs, s, TimeRange::new(start, now)).excluded;
        let cells = cal
            .days
            .iter()
            .map(|(day, open)| {
                let range = TimeRange::new(day.start, day.end.min(now));
                DayCell::of(&account(within(&segments, range), range, open, &excluded))
            })
            .collect();
        out.push(ServiceDays {
            service: s.id.clone(),
            objective,
            calendar: name.to_string(),
            last_day: cal.last_day,
            days: cells,
        });
    }
    Ok(out)
}

/// The SLA whose calendar counts a service's days: its first.
fn counting_sla(s: &Service) -> Option<(&str, f64)> {
    s.slas.first().map(|x| (x.calendar.as_str(), x.objective))
}

/// A calendar's last `n` days and their opening hours, worked out once
/// for every service that counts in it.
struct CalendarDays {
    last_day: Date,
    days: Vec<(TimeRange, RangeSet)>,
}

impl CalendarDays {
    fn new(name: &str, config: &Config, n: usize, now: Timestamp) -> CalendarDays {
        let calendar = SlaCalendar::named(name, &config.calendars);
        let last_day = calendar.tz().to_datetime(now).date();
        let days = (0..n)
            .rev()
            .map(|back| {
                let date = last_day
                    .checked_sub(jiff::Span::new().days(back as i64))
                    .unwrap_or(last_day);
                let day = calendar_day(date, calendar.tz());
                (day, calendar.open_ranges(day))
            })
            .collect();
        CalendarDays { last_day, days }
    }
}

/// The segments that reach into `range` (segments are in time order and
/// do not overlap), so that each day is counted from its own few.
fn within(segments: &[Segment], range: TimeRange) -> &[Segment] {
    let from = segments.partition_point(|s| s.end <= range.start);
    let to = segments.partition_point(|s| s.start < range.end);
    &segments[from..to.max(from)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sla::{PeriodSelector, sla_report};
    use crate::store::BatchStore;
    use crate::store::{ServiceTransitionRecord, SqliteStore, WriteOp};

    const CONFIG: &str = "calendars:\n  office:\n    hours: { mon-fri: \"08:00-17:00\" }\nmaintenances:\n  - reference: CHG-1\n    service: portal\n    start: 2026-11-18T07:00:00+01:00\n    end: 2026-11-18T09:00:00+01:00\nservices:\n  - id: portal\n    slas:\n      - { name: office, objective: 99.5, period: week, calendar: office }\n    checks:\n      - id: home\n        tcp: {target: 127.0.0.1:9}\n  - id: balie\n    checks:\n      - id: home\n        tcp: {target: 127.0.0.1:9}\n";

    fn transition(service: &str, at: &str, state: &str) -> WriteOp {
        WriteOp::ServiceTransition(ServiceTransitionRecord {
            service: service.into(),
            at: at.parse().unwrap(),
            state: state.into(),
            cause: None,
        })
    }

    fn seeded() -> (tempfile::TempDir, SqliteStore, Config) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("c.db")).unwrap();
        let config = Config::from_str("t.yaml", CONFIG).unwrap();
        let ops = vec![
            transition("portal", "2026-11-10T00:00:00Z", "up"),
            // Tuesday: 30 min down in office hours.
            transition("portal", "2026-11-17T10:00:00+01:00", "down"),
            transition("portal", "2026-11-17T10:30:00+01:00", "up"),
            // Wednesday: down from 07:00 to 08:30, in maintenance till 09:00.
            transition("portal", "2026-11-18T07:00:00+01:00", "down"),
            transition("portal", "2026-11-18T08:30:00+01:00", "up"),
            // Friday evening to Monday: down outside hours only.
            transition("portal", "2026-11-20T18:00:00+01:00", "down"),
            transition("portal", "2026-11-23T07:00:00+01:00", "up"),
            transition("balie", "2026-11-10T00:00:00Z", "up"),
            transition("balie", "2026-11-21T12:00:00+01:00", "down"),
            transition("balie", "2026-11-21T13:00:00+01:00", "up"),
        ];
        store.write_batch(&ops).unwrap();
        (dir, store, config)
    }

    #[test]
    fn each_day_is_counted_in_its_calendar_and_a_week_of_days_is_the_week() {
        let (_dir, store, config) = seeded();
        let now: Timestamp = "2026-11-25T12:00:00+01:00".parse().unwrap();
        let all = daily_availability(&config, &store, 14, now).unwrap();
        let portal = &all[0];
        assert_eq!(portal.last_day, jiff::civil::date(2026, 11, 25));
        assert_eq!(portal.days.len(), 14);
        let day = |d: i8| {
            let i = (0..14)
                .find(|&i| portal.date(i) == jiff::civil::date(2026, 11, d))
                .unwrap();
            portal.days[i]
        };
        let h = 3_600_000;
        // Tuesday: 9 h open, half an hour down.
        assert_eq!(day(17).down, h / 2);
        assert_eq!(day(17).eligible(), 9 * h as u64);
        // Wednesday: 08:00-08:30 down but excluded; 8 h eligible, all up.
        assert_eq!((day(18).down, day(18).excluded), (0, h));
        assert_eq!(day(18).availability(), Some(1.0));
        // Saturday: closed, nothing counted.
        assert!(!day(21).had_hours());
        assert_eq!(day(21).availability(), None);
        // Today counts up to noon: 4 h.
        assert_eq!(day(25).eligible(), 4 * h as u64);

        let week = sla_report(
            &config,
            &store,
            PeriodSelector::Label("2026-W47".into()),
            Some("portal"),
            now,
        )
        .unwrap();
        let w = &week[0];
        let days: Vec<DayCell> = (16..=22).map(day).collect();
        let sum = |f: fn(&DayCell) -> u32| days.iter().map(|d| u64::from(f(d))).sum::<u64>();
        assert_eq!(sum(|d| d.good) as f64 / 1000.0, w.good_seconds);
        assert_eq!(sum(|d| d.down) as f64 / 1000.0, w.down_seconds);
        assert_eq!(
            sum(|d| d.excluded) as f64 / 1000.0,
            w.excluded_maintenance_seconds
        );
        assert_eq!(sum(|d| d.unknown) as f64 / 1000.0, w.unknown_seconds);

        // Without an SLA, every hour counts: Saturday's hour down shows.
        let balie = &all[1];
        assert_eq!(balie.calendar, "24x7");
        let sat = balie.days[(0..14)
            .find(|&i| balie.date(i) == jiff::civil::date(2026, 11, 21))
            .unwrap()];
        assert_eq!(sat.down, h);
        assert_eq!(sat.eligible(), 24 * h as u64);
    }

    #[test]
    fn days_counted_again_replace_the_same_dates_and_the_window_moves() {
        let (_dir, store, config) = seeded();
        let now: Timestamp = "2026-11-25T12:00:00+01:00".parse().unwrap();
        let old = daily_availability(&config, &store, 14, now).unwrap();
        let later: Timestamp = "2026-11-26T09:00:00+01:00".parse().unwrap();
        let recent = daily_availability(&config, &store, 2, later).unwrap();
        let merged = recent[0].clone().over(&old[0], 14);
        let full = daily_availability(&config, &store, 14, later).unwrap();
        assert_eq!(merged, full[0]);
    }
}
