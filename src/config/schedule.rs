//! SLA, calendar and maintenance-window configuration as written in YAML,
//! validated into typed values that the SLA engine computes with.

use std::collections::BTreeMap;

use crate::config::Location;
use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use serde::Deserialize;

use super::{Dur, KnownNames, Validator, closest};

pub const DEFAULT_TIMEZONE: &str = "Europe/Amsterdam";
/// The built-in calendar that counts every hour of every day.
pub const ALWAYS: &str = "24x7";

// ----------------------------------------------------------------- SLAs

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
pub enum SlaPeriod {
    /// ISO week, Monday 00:00 to Sunday 24:00 in the calendar's time zone.
    #[serde(rename = "week")]
    Week,
    /// Calendar month in the calendar's time zone.
    #[serde(rename = "month")]
    Month,
    /// The last 28 days, rolling.
    #[serde(rename = "28d")]
    Rolling28d,
}

impl SlaPeriod {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaPeriod::Week => "week",
            SlaPeriod::Month => "month",
            SlaPeriod::Rolling28d => "28d",
        }
    }
}

/// One SLA of a service: an availability objective over a period, counted
/// in a calendar's hours.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaSpec {
    pub name: String,
    /// Percent, e.g. 99.8.
    pub objective: f64,
    #[serde(default = "default_period")]
    pub period: SlaPeriod,
    /// A calendar name from `calendars:`, or `24x7`.
    #[serde(default = "default_calendar")]
    pub calendar: String,
}

fn default_period() -> SlaPeriod {
    SlaPeriod::Week
}
fn default_calendar() -> String {
    ALWAYS.to_string()
}

impl SlaSpec {
    /// The objective as a ratio (0.998 for 99.8%).
    pub fn ratio(&self) -> f64 {
        self.objective / 100.0
    }

    pub(crate) fn validate(
        &mut self,
        v: &mut Validator,
        at: Location,
        calendars: &BTreeMap<String, CalendarSpec>,
    ) {
        if self.name.trim().is_empty() {
            v.error(
                at,
                "SLA name is empty",
                Some("e.g. name: office-hours".into()),
            );
        }
        if !(self.objective > 0.0 && self.objective <= 100.0) {
            v.error(
                at,
                format!(
                    "SLA '{}': objective {} is not a percentage between 0 and 100",
                    self.name, self.objective
                ),
                Some("write the percentage, e.g. objective: 99.8".into()),
            );
        }
        if self.calendar != ALWAYS && !calendars.contains_key(&self.calendar) {
            let hint = match closest(&self.calendar, calendars.keys().map(String::as_str)) {
                Some(c) => format!("did you mean '{c}'?"),
                None => format!("define it under calendars:, or use {ALWAYS}"),
            };
            v.error(
                at,
                format!(
                    "SLA '{}' uses unknown calendar '{}'",
                    self.name, self.calendar
                ),
                Some(hint),
            );
        }
    }
}

// ------------------------------------------------------------- calendars

/// Business hours in a time zone, with holidays and closed days.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    #[serde(default = "default_tz_name")]
    pub timezone: String,
    /// Day or day range (`mon-fri`, `sat`, `daily`) to hours
    /// (`08:00-17:00`, or `08:00-12:00,13:00-17:00`).
    #[serde(default)]
    pub hours: BTreeMap<String, String>,
    /// `nl` for the built-in Dutch public holidays, or `none`.
    #[serde(default = "default_holidays")]
    pub holidays: String,
    /// Count Good Friday as a holiday (contracts differ).
    #[serde(default)]
    pub good_friday: bool,
    /// Count Liberation Day (5 May) as a holiday every year (contracts differ).
    #[serde(default)]
    pub liberation_day: bool,
    /// Extra closed days.
    #[serde(default)]
    pub closed: Vec<Date>,

    /// Opening hours per weekday (Monday first), minutes since midnight.
    #[serde(skip)]
    pub week: [Vec<(u16, u16)>; 7],
    #[serde(skip)]
    pub tz: Option<TimeZone>,
}

fn default_tz_name() -> String {
    DEFAULT_TIMEZONE.to_string()
}
fn default_holidays() -> String {
    "none".to_string()
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day_index(s: &str) -> Option<usize> {
    DAYS.iter()
        .position(|d| *d == s.trim().to_ascii_lowercase())
}

fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

fn parse_ranges(s: &str) -> Option<Vec<(u16, u16)>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let (a, b) = part.split_once('-')?;
        let (a, b) = (parse_hhmm(a)?, parse_hhmm(b)?);
        if a >= b {
            return None;
        }
        out.push((a, b));
    }
    out.sort();
    if out.windows(2).any(|w| w[0].1 > w[1].0) {
        return None;
    }
    Some(out)
}

impl CalendarSpec {
    pub fn tz(&self) -> TimeZone {
        self.tz
            .clone()
            .unwrap_or_else(|| TimeZone::get(DEFAULT_TIMEZONE).unwrap_or(TimeZone::UTC))
    }

    /// The built-in calendar that counts every hour.
    pub fn always() -> CalendarSpec {
        let mut c = CalendarSpec {
            timezone: default_tz_name(),
            hours: BTreeMap::new(),
            holidays: default_holidays(),
            good_friday: false,
            liberation_day: false,
            closed: Vec::new(),
            week: Default::default(),
            tz: TimeZone::get(DEFAULT_TIMEZONE).ok(),
        };
        for d in &mut c.week {
            d.push((0, 24 * 60));
        }
        c
    }

    pub(crate) fn validate(&mut self, v: &mut Validator, at: Location) {
        match TimeZone::get(&self.timezone) {
            Ok(tz) => self.tz = Some(tz),
            Err(_) => v.error(
                at,
                format!("unknown time zone '{}'", self.timezone),
                Some(format!(
                    "use an IANA name, e.g. timezone: {DEFAULT_TIMEZONE}"
                )),
            ),
        }
        if !matches!(self.holidays.as_str(), "nl" | "none") {
            v.error(
                at,
                format!("unknown holiday set '{}'", self.holidays),
                Some("use holidays: nl (Dutch public holidays) or holidays: none".into()),
            );
        }
        if self.hours.is_empty() {
            v.error(
                at,
                "calendar has no hours",
                Some("add e.g. hours: { mon-fri: \"08:00-17:00\" }".into()),
            );
        }
        let mut week: [Vec<(u16, u16)>; 7] = Default::default();
        for (days, ranges) in &self.hours {
            let span: Option<Vec<usize>> = match days.trim() {
                "daily" | "all" => Some((0..7).collect()),
                d => match d.split_once('-') {
                    Some((a, b)) => match (day_index(a), day_index(b)) {
                        (Some(a), Some(b)) if a <= b => Some((a..=b).collect()),
                        _ => None,
                    },
                    None => day_index(d).map(|i| vec![i]),
                },
            };
            let Some(span) = span else {
                v.error(
                    at,
                    format!("calendar hours: '{days}' is not a day or day range"),
                    Some("use mon, tue, ... sun, a range like mon-fri, or daily".into()),
                );
                continue;
            };
            let Some(parsed) = parse_ranges(ranges) else {
                v.error(
                    at,
                    format!("calendar hours for '{days}': '{ranges}' is not a list of HH:MM-HH:MM ranges"),
                    Some("write e.g. \"08:00-17:00\" or \"08:00-12:00,13:00-17:00\"; end after start".into()),
                );
                continue;
            };
            for d in span {
                if !week[d].is_empty() {
                    v.error(
                        at,
                        format!("calendar hours: {} is given more than once", DAYS[d]),
                        Some("list each day in one entry only".into()),
                    );
                }
                week[d] = parsed.clone();
            }
        }
        self.week = week;
    }

    pub fn weekday_hours(&self, day: Weekday) -> &[(u16, u16)] {
        &self.week[day.to_monday_zero_offset() as usize]
    }
}

// ---------------------------------------------------- maintenance windows

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceEffect {
    /// Left out of the SLA, and alerts muted.
    Exclude,
    /// Alerts muted, but the time still counts.
    Mute,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recurrence {
    /// Days it recurs on: `mon`..`sun`.
    pub weekdays: Vec<String>,
    /// Local start time, `HH:MM`.
    pub start: String,
    pub duration: Dur,
}

/// What a maintenance window applies to.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceScope {
    Service(String),
    Category(String),
    Supplier(String),
    All,
}

/// When a maintenance window is open.
#[derive(Debug, Clone, PartialEq)]
pub enum MaintenanceTime {
    Once {
        start: Timestamp,
        end: Timestamp,
    },
    Weekly {
        weekdays: Vec<Weekday>,
        start_minute: u16,
        duration: std::time::Duration,
        tz: TimeZone,
    },
}

/// A planned maintenance window with its change ticket.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSpec {
    /// The change ticket, e.g. CHG-2026-0142.
    pub reference: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "default_effect")]
    pub effect: MaintenanceEffect,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub supplier: Option<String>,
    /// Explicitly everything (a window with no scope is an error, so that a
    /// forgotten line never mutes every alert).
    #[serde(default)]
    pub all: bool,
    /// One-off start: RFC 3339 (`2026-12-01T22:00:00+01:00`) or local
    /// `2026-12-01T22:00` in `timezone`.
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub end: Option<String>,
    #[serde(default)]
    pub recurring: Option<Recurrence>,
    #[serde(default = "default_tz_name")]
    pub timezone: String,

    #[serde(skip)]
    pub scope: Option<MaintenanceScope>,
    #[serde(skip)]
    pub time: Option<MaintenanceTime>,
}

fn default_effect() -> MaintenanceEffect {
    MaintenanceEffect::Exclude
}

/// Parse an instant written as RFC 3339 or as a local date-time in `tz`.
pub fn parse_instant(s: &str, tz: &TimeZone) -> Option<Timestamp> {
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    let dt: DateTime = s.trim().replace(' ', "T").parse().ok()?;
    tz.to_ambiguous_zoned_datetime(dt)
        .compatible()
        .ok()
        .map(|z| z.timestamp())
}

impl MaintenanceSpec {
    pub(crate) fn validate(&mut self, v: &mut Validator, at: Location, known: &KnownNames) {
        if self.reference.trim().is_empty() {
            v.error(
                at,
                "maintenance window has an empty reference",
                Some("give the change ticket, e.g. reference: CHG-2026-0142".into()),
            );
        }
        let scopes = [
            self.service.clone().map(MaintenanceScope::Service),
            self.category.clone().map(MaintenanceScope::Category),
            self.supplier.clone().map(MaintenanceScope::Supplier),
            self.all.then_some(MaintenanceScope::All),
        ];
        let mut given: Vec<MaintenanceScope> = scopes.into_iter().flatten().collect();
        match given.len() {
            0 => v.error(
                at,
                format!("maintenance '{}' has no scope", self.reference),
                Some("add one of service:, category:, supplier:, or all: true".into()),
            ),
            1 => {
                let s = given.pop().expect("one scope");
                let (kind, name, set) = match &s {
                    MaintenanceScope::Service(n) => ("service", n, &known.services),
                    MaintenanceScope::Category(n) => ("category", n, &known.categories),
                    MaintenanceScope::Supplier(n) => ("supplier", n, &known.suppliers),
                    MaintenanceScope::All => ("", &String::new(), &known.services),
                };
                if !kind.is_empty() && !set.contains(name.as_str()) {
                    let hint = closest(name, set.iter().copied())
                        .map(|c| format!("did you mean '{c}'?"))
                        .unwrap_or_else(|| format!("no {kind} of that name is configured"));
                    v.error(
                        at,
                        format!("maintenance '{}': unknown {kind} '{name}'", self.reference),
                        Some(hint),
                    );
                }
                self.scope = Some(s);
            }
            _ => v.error(
                at,
                format!("maintenance '{}' has more than one scope", self.reference),
                Some("use one of service:, category:, supplier:, all: per window; add more windows for more".into()),
            ),
        }
        let tz = match TimeZone::get(&self.timezone) {
            Ok(tz) => tz,
            Err(_) => {
                v.error(
                    at,
                    format!("unknown time zone '{}'", self.timezone),
                    Some(format!("use an IANA name, e.g. {DEFAULT_TIMEZONE}")),
                );
                return;
            }
        };
        match (&self.start, &self.end, &self.recurring) {
            (Some(s), Some(e), None) => {
                let (start, end) = (parse_instant(s, &tz), parse_instant(e, &tz));
                match (start, end) {
                    (Some(start), Some(end)) if start < end => {
                        self.time = Some(MaintenanceTime::Once { start, end })
                    }
                    (Some(_), Some(_)) => v.error(
                        at,
                        format!("maintenance '{}' ends before it starts", self.reference),
                        Some("end must be after start".into()),
                    ),
                    _ => v.error(
                        at,
                        format!("maintenance '{}': start or end is not a date-time", self.reference),
                        Some("write 2026-12-01T22:00:00+01:00, or 2026-12-01T22:00 in the window's timezone".into()),
                    ),
                }
            }
            (None, None, Some(r)) => {
                let days: Option<Vec<Weekday>> = r
                    .weekdays
                    .iter()
                    .map(|d| day_index(d).map(|i| Weekday::from_monday_zero_offset(i as i8).expect("0..7")))
                    .collect();
                let start = parse_hhmm(&r.start).filter(|m| *m < 24 * 60);
                match (days, start) {
                    (Some(days), Some(start)) if !days.is_empty() && !r.duration.0.is_zero() => {
                        self.time = Some(MaintenanceTime::Weekly {
                            weekdays: days,
                            start_minute: start,
                            duration: r.duration.0,
                            tz,
                        })
                    }
                    _ => v.error(
                        at,
                        format!("maintenance '{}': recurring needs weekdays (mon..sun), start HH:MM and a positive duration", self.reference),
                        Some("e.g. recurring: { weekdays: [sun], start: \"02:00\", duration: 2h }".into()),
                    ),
                }
            }
            _ => v.error(
                at,
                format!("maintenance '{}' needs either start and end, or recurring", self.reference),
                Some("one-off: start: ... end: ...; weekly: recurring: { weekdays: [sun], start: \"02:00\", duration: 2h }".into()),
            ),
        }
    }
}
