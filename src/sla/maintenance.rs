//! Planned maintenance windows made concrete: a one-off or weekly window
//! expanded into `[start, end)` instants, and which services it covers.
//!
//! A weekly window starts at its local start time, resolved with jiff's
//! "compatible" rule, and lasts its duration in elapsed time. On the
//! spring-forward day a 02:00 start (a time that does not exist in
//! Europe/Amsterdam) begins at 03:00 CEST, the instant 02:00 CET would
//! have been; on the fall-back day 02:00 happens twice and the window
//! begins at the first (02:00 CEST). A 2 h window is 2 h either way.

use jiff::civil::{DateTime, Time};
use jiff::{SignedDuration, Timestamp};

use super::range::{RangeSet, TimeRange};
use crate::config::Service;
use crate::config::schedule::{
    MaintenanceEffect, MaintenanceScope, MaintenanceSpec, MaintenanceTime,
};

/// One concrete occurrence of a maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// The change ticket.
    pub reference: String,
    pub description: Option<String>,
    pub effect: MaintenanceEffect,
    pub range: TimeRange,
}

/// Whether `spec` covers a service. A spec whose scope was not filled
/// in by validation covers nothing.
pub fn applies_to(
    spec: &MaintenanceSpec,
    service_id: &str,
    category: &str,
    supplier: &str,
) -> bool {
    match &spec.scope {
        Some(MaintenanceScope::Service(s)) => s == service_id,
        Some(MaintenanceScope::Category(c)) => c == category,
        Some(MaintenanceScope::Supplier(s)) => s == supplier,
        Some(MaintenanceScope::All) => true,
        None => false,
    }
}

/// Occurrences of `spec` that overlap `within`, unclipped, in time order.
pub fn windows(spec: &MaintenanceSpec, within: TimeRange) -> Vec<MaintenanceWindow> {
    let window = |range: TimeRange| MaintenanceWindow {
        reference: spec.reference.clone(),
        description: spec.description.clone(),
        effect: spec.effect,
        range,
    };
    match &spec.time {
        None => Vec::new(),
        Some(MaintenanceTime::Once { start, end }) => {
            let range = TimeRange::new(*start, *end);
            if range.overlaps(&within) {
                vec![window(range)]
            } else {
                Vec::new()
            }
        }
        Some(MaintenanceTime::Weekly {
            weekdays,
            start_minute,
            duration,
            tz,
        }) => {
            let Ok(duration) = SignedDuration::try_from(*duration) else {
                return Vec::new();
            };
            let Ok(time) = Time::new((start_minute / 60) as i8, (start_minute % 60) as i8, 0, 0)
            else {
                return Vec::new();
            };
            // An occurrence that began up to `duration` (plus a day for the
            // local date shift) before `within` may still reach into it.
            let scan_from = within.start.checked_sub(duration).unwrap_or(Timestamp::MIN);
            let first = tz.to_datetime(scan_from).date();
            let first = first.yesterday().unwrap_or(first);
            let last = tz.to_datetime(within.end).date();
            let mut out = Vec::new();
            let mut day = first;
            while day <= last {
                if weekdays.contains(&day.weekday())
                    && let Ok(start) = tz
                        .to_ambiguous_timestamp(DateTime::from_parts(day, time))
                        .compatible()
                {
                    let end = start.checked_add(duration).unwrap_or(Timestamp::MAX);
                    let range = TimeRange::new(start, end);
                    if range.overlaps(&within) {
                        out.push(window(range));
                    }
                }
                match day.tomorrow() {
                    Ok(next) => day = next,
                    Err(_) => break,
                }
            }
            out
        }
    }
}

/// The maintenance of one service over a range: the windows, and the
/// instants they exclude from the SLA or only mute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceMaintenance {
    /// In start order.
    pub windows: Vec<MaintenanceWindow>,
    /// Instants cut out of the SLA (`effect: exclude`).
    pub excluded: RangeSet,
    /// Instants with alerts muted only (`effect: mute`); they still count.
    pub muted: RangeSet,
}

impl ServiceMaintenance {
    pub fn for_service(
        specs: &[MaintenanceSpec],
        service: &Service,
        within: TimeRange,
    ) -> ServiceMaintenance {
        let mut windows: Vec<MaintenanceWindow> = Vec::new();
        for spec in specs {
            match &spec.scope {
                // A supplier's window covers a service that moves only
                // while the service is that supplier's.
                Some(MaintenanceScope::Supplier(s)) if !service.migrations.is_empty() => {
                    for w in self::windows(spec, within) {
                        windows.extend(supplier_share(service, w, s));
                    }
                }
                _ if applies_to(spec, &service.id, &service.category, &service.supplier) => {
                    windows.extend(self::windows(spec, within));
                }
                _ => {}
            }
        }
        windows.sort_by_key(|w| w.range);
        ServiceMaintenance::from_windows(windows)
    }

    pub fn from_windows(windows: Vec<MaintenanceWindow>) -> ServiceMaintenance {
        let pick = |effect| {
            RangeSet::from_ranges(
                windows
                    .iter()
                    .filter(|w| w.effect == effect)
                    .map(|w| w.range),
            )
        };
        ServiceMaintenance {
            excluded: pick(MaintenanceEffect::Exclude),
            muted: pick(MaintenanceEffect::Mute),
            windows,
        }
    }

    /// The window open at `t`, an excluding one first: it is the stronger.
    pub fn active_at(&self, t: Timestamp) -> Option<&MaintenanceWindow> {
        let open = || self.windows.iter().filter(move |w| w.range.contains(t));
        open()
            .find(|w| w.effect == MaintenanceEffect::Exclude)
            .or_else(|| open().next())
    }
}

/// The parts of window `w` in which `service` belongs to `supplier`, cut
/// at its cutovers' starts.
fn supplier_share(
    service: &Service,
    w: MaintenanceWindow,
    supplier: &str,
) -> Vec<MaintenanceWindow> {
    let mut cuts: Vec<Timestamp> = service
        .migrations
        .iter()
        .map(|m| m.cutover.start)
        .filter(|t| w.range.contains(*t) && *t > w.range.start)
        .collect();
    cuts.insert(0, w.range.start);
    cuts.push(w.range.end);
    cuts.windows(2)
        .filter(|p| {
            crate::config::migration::supplier_at(&service.supplier, &service.migrations, p[0])
                == supplier
        })
        .map(|p| MaintenanceWindow {
            range: TimeRange::new(p[0], p[1]),
            ..w.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suppliers_window_covers_a_moving_service_only_while_it_is_theirs() {
        let yaml = "maintenances:\n  - reference: CHG-9\n    supplier: northhost\n    start: 2026-12-05T20:00:00Z\n    end: 2026-12-05T23:00:00Z\nservices:\n  - id: portal\n    supplier: in-house\n    migration:\n      from: in-house\n      to: northhost\n      cutover: { start: 2026-12-05T21:00:00Z, end: 2026-12-05T22:00:00Z, reference: CHG-1042 }\n    checks:\n      - id: home\n        tcp: { target: 127.0.0.1:9 }\n";
        let config = crate::config::Config::from_str("t.yaml", yaml).unwrap();
        let portal = &config.services[0];
        let m = ServiceMaintenance::for_service(
            &config.maintenances,
            portal,
            TimeRange::new(ts("2026-12-05T00:00:00Z"), ts("2026-12-06T00:00:00Z")),
        );
        let refs: Vec<(&str, TimeRange)> = m
            .windows
            .iter()
            .map(|w| (w.reference.as_str(), w.range))
            .collect();
        // northhost's window from the cutover's start on; the cutover
        // window itself is the service's own.
        assert_eq!(
            refs,
            vec![
                (
                    "CHG-1042",
                    r("2026-12-05T21:00:00Z", "2026-12-05T22:00:00Z")
                ),
                ("CHG-9", r("2026-12-05T21:00:00Z", "2026-12-05T23:00:00Z")),
            ]
        );
    }
    use crate::sla::range::tests::{r, ts};
    use jiff::civil::Weekday;
    use jiff::tz::TimeZone;
    use std::time::Duration;

    fn spec(
        time: MaintenanceTime,
        effect: MaintenanceEffect,
        scope: MaintenanceScope,
    ) -> MaintenanceSpec {
        MaintenanceSpec {
            reference: "CHG-2026-0142".into(),
            description: None,
            effect,
            service: None,
            category: None,
            supplier: None,
            all: false,
            start: None,
            end: None,
            recurring: None,
            timezone: "Europe/Amsterdam".into(),
            scope: Some(scope),
            time: Some(time),
        }
    }

    fn sunday_two_am(hours: u64) -> MaintenanceTime {
        MaintenanceTime::Weekly {
            weekdays: vec![Weekday::Sunday],
            start_minute: 120,
            duration: Duration::from_secs(hours * 3600),
            tz: TimeZone::get("Europe/Amsterdam").unwrap(),
        }
    }

    #[test]
    fn weekly_window_on_spring_forward_day_starts_after_the_gap_and_lasts_its_duration() {
        let s = spec(
            sunday_two_am(2),
            MaintenanceEffect::Exclude,
            MaintenanceScope::All,
        );
        let w = windows(
            &s,
            r("2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"),
        );
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].range,
            r("2026-03-29T03:00:00+02:00", "2026-03-29T05:00:00+02:00")
        );
    }

    #[test]
    fn weekly_window_on_fall_back_day_starts_at_the_first_two_oclock() {
        let s = spec(
            sunday_two_am(2),
            MaintenanceEffect::Exclude,
            MaintenanceScope::All,
        );
        let w = windows(
            &s,
            r("2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00"),
        );
        assert_eq!(
            w[0].range,
            r("2026-10-25T02:00:00+02:00", "2026-10-25T03:00:00+01:00")
        );
        assert_eq!(w[0].range.duration_ms(), 2 * 3_600_000);
    }

    #[test]
    fn weekly_window_that_started_before_the_range_is_included() {
        // Saturday 22:00 for 6 h reaches into Sunday.
        let s = spec(
            MaintenanceTime::Weekly {
                weekdays: vec![Weekday::Saturday],
                start_minute: 22 * 60,
                duration: Duration::from_secs(6 * 3600),
                tz: TimeZone::get("Europe/Amsterdam").unwrap(),
            },
            MaintenanceEffect::Mute,
            MaintenanceScope::All,
        );
        let w = windows(
            &s,
            r("2026-11-22T00:00:00+01:00", "2026-11-23T00:00:00+01:00"),
        );
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].range,
            r("2026-11-21T22:00:00+01:00", "2026-11-22T04:00:00+01:00")
        );
    }

    #[test]
    fn weekly_window_repeats_every_listed_weekday() {
        let mut s = spec(
            sunday_two_am(1),
            MaintenanceEffect::Exclude,
            MaintenanceScope::All,
        );
        if let Some(MaintenanceTime::Weekly { weekdays, .. }) = &mut s.time {
            weekdays.push(Weekday::Wednesday);
        }
        let w = windows(
            &s,
            r("2026-11-01T00:00:00+01:00", "2026-11-15T00:00:00+01:00"),
        );
        let starts: Vec<_> = w.iter().map(|w| w.range.start).collect();
        assert_eq!(
            starts,
            vec![
                ts("2026-11-01T02:00:00+01:00"),
                ts("2026-11-04T02:00:00+01:00"),
                ts("2026-11-08T02:00:00+01:00"),
                ts("2026-11-11T02:00:00+01:00"),
            ]
        );
    }

    #[test]
    fn one_off_window_is_returned_only_when_it_overlaps() {
        let once = MaintenanceTime::Once {
            start: ts("2026-12-01T22:00:00+01:00"),
            end: ts("2026-12-02T01:00:00+01:00"),
        };
        let s = spec(once, MaintenanceEffect::Exclude, MaintenanceScope::All);
        assert_eq!(
            windows(
                &s,
                r("2026-12-02T00:00:00+01:00", "2026-12-03T00:00:00+01:00")
            )
            .len(),
            1
        );
        assert!(
            windows(
                &s,
                r("2026-12-02T01:00:00+01:00", "2026-12-03T00:00:00+01:00")
            )
            .is_empty()
        );
    }

    #[test]
    fn scope_decides_which_services_a_window_covers() {
        let t = sunday_two_am(1);
        let e = MaintenanceEffect::Exclude;
        let by_service = spec(t.clone(), e, MaintenanceScope::Service("portal".into()));
        let by_category = spec(t.clone(), e, MaintenanceScope::Category("phone".into()));
        let by_supplier = spec(t.clone(), e, MaintenanceScope::Supplier("acme".into()));
        assert!(applies_to(&by_service, "portal", "web", "other"));
        assert!(!applies_to(&by_service, "portal-2", "web", "other"));
        assert!(applies_to(&by_category, "x", "phone", "other"));
        assert!(applies_to(&by_supplier, "x", "web", "acme"));
        let mut unvalidated = spec(t, e, MaintenanceScope::All);
        unvalidated.scope = None;
        assert!(!applies_to(&unvalidated, "portal", "web", "acme"));
    }

    #[test]
    fn excluding_window_wins_when_both_kinds_are_open() {
        let m = ServiceMaintenance::from_windows(vec![
            MaintenanceWindow {
                reference: "mute".into(),
                description: None,
                effect: MaintenanceEffect::Mute,
                range: r("2026-11-16T07:00:00Z", "2026-11-16T09:00:00Z"),
            },
            MaintenanceWindow {
                reference: "excl".into(),
                description: None,
                effect: MaintenanceEffect::Exclude,
                range: r("2026-11-16T08:00:00Z", "2026-11-16T10:00:00Z"),
            },
        ]);
        assert_eq!(
            m.active_at(ts("2026-11-16T07:30:00Z")).unwrap().reference,
            "mute"
        );
        assert_eq!(
            m.active_at(ts("2026-11-16T08:30:00Z")).unwrap().reference,
            "excl"
        );
        assert!(m.active_at(ts("2026-11-16T10:00:00Z")).is_none());
        assert_eq!(m.excluded.total_ms(), 2 * 3_600_000);
        assert_eq!(m.muted.total_ms(), 2 * 3_600_000);
    }
}
