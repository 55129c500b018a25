//! Derive a service's timeline, transitions and incidents from its raw
//! results in one pass, through the same [`ServiceTracker`] the live
//! engine uses, so that a recompute gives the live answer exactly.

use jiff::Timestamp;

use super::check::{CheckRules, ProbeResult};
use super::incident::{Incident, incidents};
use super::range::TimeRange;
use super::service::{Ingested, ServiceTracker};
use super::timeline::{Segment, ServiceTransition, Timeline};
use crate::config::Service;

/// Everything derived for one service over a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Derivation {
    /// The state over the range, in order, covering it from the first
    /// result (or the range start) to its end.
    pub segments: Vec<Segment>,
    /// Transitions at instants inside the range.
    pub transitions: Vec<ServiceTransition>,
    /// Incidents overlapping the range, with their true start and end
    /// (which may lie outside it); `end: None` when still Down at the end
    /// of the data.
    pub incidents: Vec<Incident>,
    /// The whole timeline, including warm-up before the range.
    pub timeline: Timeline,
    /// Results ignored (unknown check, out of order, duplicate).
    pub ignored: usize,
}

/// Derive `range` for `service` from `results`, which must be in time
/// order (a result of a check older than that check's previous one, or
/// older than the first result, is ignored and counted) and may start
/// before `range` (warm-up: a check is only Up or
/// Down once a run confirms it) and run past its end (a verdict confirmed
/// after the end is back-dated into it). `complete_until`: every result
/// timestamped at or before it is in `results`; time after the last
/// result that is older than that becomes unknown.
pub fn derive(
    service: &Service,
    results: &[ProbeResult],
    range: TimeRange,
    complete_until: Timestamp,
) -> Derivation {
    let rules: Vec<CheckRules> = service.checks.iter().map(|c| CheckRules::of(c)).collect();
    derive_with_rules(&service.id, &rules, results, range, complete_until)
}

/// [`derive`] from the check rules alone.
pub fn derive_with_rules(
    service_id: &str,
    checks: &[CheckRules],
    results: &[ProbeResult],
    range: TimeRange,
    complete_until: Timestamp,
) -> Derivation {
    let start = results
        .first()
        .map_or(range.start, |first| first.at.min(range.start));
    let mut tracker = ServiceTracker::from_rules(service_id, checks, start);
    let mut ignored = 0;
    for r in results {
        match tracker.ingest(r) {
            Ingested::Ignored => ignored += 1,
            Ingested::Unchanged => {}
            Ingested::ChangedFrom(from) => {
                tracker.recompute(from);
            }
        }
    }
    tracker.advance(complete_until);
    let timeline = tracker.timeline().clone();
    Derivation {
        segments: timeline.segments(range),
        transitions: timeline.transitions_in(range),
        incidents: incidents(&timeline)
            .into_iter()
            .filter(|i| i.start < range.end && i.end.is_none_or(|e| e > range.start))
            .collect(),
        timeline,
        ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schedule::{
        MaintenanceEffect, MaintenanceScope, MaintenanceSpec, MaintenanceTime,
    };
    use crate::probe::FailureReason;
    use crate::sla::accounting::{SlaFigures, account_in_calendar};
    use crate::sla::budget::error_budget;
    use crate::sla::calendar::SlaCalendar;
    use crate::sla::check::tests::check;
    use crate::sla::incident::IncidentChange;
    use crate::sla::maintenance::{ServiceMaintenance, windows};
    use crate::sla::range::tests::{r, ts};
    use crate::sla::service::ServiceUpdate;
    use crate::sla::state::ServiceState::{Degraded, Down, Unknown, Up};
    use jiff::SignedDuration;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn result(id: &str, at: Timestamp, success: bool, millis: u64) -> ProbeResult {
        ProbeResult {
            check_id: id.into(),
            at,
            success,
            duration: Duration::from_millis(millis),
            reason: (!success).then_some(FailureReason::Timeout),
            detail: if success {
                String::new()
            } else {
                format!("no answer at {at}")
            },
        }
    }

    fn within(t: Timestamp, from: &str, to: &str) -> bool {
        ts(from) <= t && t < ts(to)
    }

    /// One check, probed every 60 s (timeout 10 s, so a result stands
    /// 70 s), thresholds 3 down / 2 up, slow above 500 ms, from Sunday
    /// 2027-04-25 22:00 to Monday 2027-05-03 02:00 (all CEST, +02:00):
    ///
    /// - Mon 26 10:00-10:10 slow                → Degraded 600 s (good)
    /// - Tue 27 (King's Day) 10:00-11:00 failing → Down on a holiday
    /// - Wed 28 16:00-18:00 failing              → Down 16:00-18:00, straddling 17:00
    /// - Thu 29 07:30-08:30 failing, maintenance 07:00-09:00 (exclude)
    /// - Thu 29 14:00, 14:01 failing             → two failures confirm nothing
    /// - Fri 30 12:00-12:30 no results           → Unknown 12:00:10-12:30:00
    fn week_of_results() -> Vec<ProbeResult> {
        let mut out = Vec::new();
        let mut t = ts("2027-04-25T22:00:00+02:00");
        while t < ts("2027-05-03T02:00:00+02:00") {
            let gap = within(t, "2027-04-30T12:00:00+02:00", "2027-04-30T12:30:00+02:00");
            let failing = within(t, "2027-04-27T10:00:00+02:00", "2027-04-27T11:00:00+02:00")
                || within(t, "2027-04-28T16:00:00+02:00", "2027-04-28T18:00:00+02:00")
                || within(t, "2027-04-29T07:30:00+02:00", "2027-04-29T08:30:00+02:00")
                || within(t, "2027-04-29T14:00:00+02:00", "2027-04-29T14:02:00+02:00");
            let slow = within(t, "2027-04-26T10:00:00+02:00", "2027-04-26T10:10:00+02:00");
            if !gap {
                out.push(result("home", t, !failing, if slow { 900 } else { 120 }));
            }
            t += SignedDuration::from_mins(1);
        }
        out
    }

    fn office_hours() -> SlaCalendar {
        let mut spec = crate::config::CalendarSpec::always();
        spec.hours = [("mon-fri".to_string(), "08:00-17:00".to_string())].into();
        spec.holidays = "nl".into();
        let mut v = crate::config::Validator::new("t.yaml".into());
        spec.validate(&mut v, crate::config::Location::UNKNOWN);
        assert!(v.issues.is_empty());
        SlaCalendar::new(&spec)
    }

    fn thursday_maintenance() -> MaintenanceSpec {
        MaintenanceSpec {
            reference: "CHG-2027-0042".into(),
            description: Some("database upgrade".into()),
            effect: MaintenanceEffect::Exclude,
            service: None,
            category: None,
            supplier: None,
            all: false,
            start: None,
            end: None,
            recurring: None,
            timezone: "Europe/Amsterdam".into(),
            scope: Some(MaintenanceScope::Service("portal".into())),
            time: Some(MaintenanceTime::Once {
                start: ts("2027-04-29T07:00:00+02:00"),
                end: ts("2027-04-29T09:00:00+02:00"),
            }),
        }
    }

    fn week() -> TimeRange {
        r("2027-04-26T00:00:00+02:00", "2027-05-03T00:00:00+02:00")
    }

    fn derive_week() -> Derivation {
        let mut home = check("home", true);
        home.interval = Duration::from_secs(60);
        derive_with_rules(
            "portal",
            &[home],
            &week_of_results(),
            week(),
            ts("2027-05-03T02:00:00+02:00"),
        )
    }

    #[test]
    fn hand_computed_office_week_matches_to_the_second() {
        let d = derive_week();
        let m = ServiceMaintenance::from_windows(windows(&thursday_maintenance(), week()));
        let f = account_in_calendar(&d.segments, week(), &office_hours(), &m.excluded);
        let s = 1000;
        // Open: Mon, Wed, Thu, Fri 08:00-17:00 = 36 h (Tue is King's Day).
        // Outside hours: 168 h - 36 h.
        // Excluded: Thu 08:00-09:00 (the outage 07:30-08:30 is outside
        //   hours until 08:00 and excluded after).
        // Unknown: Fri 12:00:10-12:30:00 (last result 11:59:00 + 70 s).
        // Down: Wed 16:00-17:00 of the 16:00-18:00 outage.
        // Eligible: 36 h - 1 h - 1790 s; good = eligible - down.
        assert_eq!(
            f,
            SlaFigures {
                total: 604_800 * s,
                outside_hours: 475_200 * s,
                excluded_maintenance: 3_600 * s,
                unknown: 1_790 * s,
                eligible: 124_210 * s,
                good: 120_610 * s,
                degraded: 600 * s,
                down: 3_600 * s,
            }
        );
        assert_eq!(f.availability(), Some(120_610.0 / 124_210.0));

        // 95 % of (36 h - 1 h planned maintenance) = 6300 s allowed.
        let b = error_budget(
            95.0,
            week(),
            week().end,
            &d.segments,
            &office_hours(),
            &m.excluded,
        );
        assert_eq!(
            (b.planned, b.allowed, b.used, b.remaining),
            (126_000 * s, 6_300 * s, 3_600 * s, 2_700 * s)
        );
        assert_eq!(b.remaining_ratio, Some(2_700.0 / 6_300.0));
    }

    #[test]
    fn hand_computed_week_has_the_expected_transitions_and_incidents() {
        let d = derive_week();
        let got: Vec<(Timestamp, _, _)> =
            d.transitions.iter().map(|t| (t.at, t.from, t.to)).collect();
        let at = |s: &str| ts(s);
        assert_eq!(
            got,
            vec![
                (at("2027-04-26T10:00:00+02:00"), Up, Degraded),
                (at("2027-04-26T10:10:00+02:00"), Degraded, Up),
                (at("2027-04-27T10:00:00+02:00"), Up, Down),
                (at("2027-04-27T11:00:00+02:00"), Down, Up),
                (at("2027-04-28T16:00:00+02:00"), Up, Down),
                (at("2027-04-28T18:00:00+02:00"), Down, Up),
                (at("2027-04-29T07:30:00+02:00"), Up, Down),
                (at("2027-04-29T08:30:00+02:00"), Down, Up),
                (at("2027-04-30T12:00:10+02:00"), Up, Unknown),
                (at("2027-04-30T12:30:00+02:00"), Unknown, Up),
            ]
        );
        assert_eq!(d.incidents.len(), 3);
        let wed = &d.incidents[1];
        assert_eq!(
            (wed.start, wed.end),
            (
                at("2027-04-28T16:00:00+02:00"),
                Some(at("2027-04-28T18:00:00+02:00"))
            )
        );
        assert_eq!(wed.duration_ms(week().end), 7_200_000);
        let cause = wed.cause[0].failure.as_ref().unwrap();
        assert_eq!(wed.cause[0].check, "home");
        assert_eq!(cause.reason, Some(FailureReason::Timeout));
        assert_eq!(cause.detail, "no answer at 2027-04-28T14:00:00Z");
        assert_eq!(d.ignored, 0);
        // Warm-up: Up from the first probe on Sunday, before the range.
        assert_eq!(
            d.timeline.state_at(ts("2027-04-25T22:00:00+02:00")),
            Some(Up)
        );
    }

    /// The live engine sees results as probes finish (a slow one after a
    /// later fast one of another check) and advances a watermark as the
    /// clock runs; it must end with the batch's timeline.
    #[test]
    fn live_and_batch_agree() {
        let checks = [check("web", true), check("dns", true), check("mail", false)];
        let mut results = Vec::new();
        let start = ts("2026-11-16T08:00:00Z");
        for k in 0..600i64 {
            let at = start + SignedDuration::from_secs(30 * k);
            let web_ok = !(100..130).contains(&k) && k % 97 != 0;
            let dns_ok = !(120..125).contains(&k) && !(300..340).contains(&k);
            let mail_ok = !(200..260).contains(&k);
            // dns is silent for a while: the monitor could not run it.
            if !(400..420).contains(&k) {
                results.push(result(
                    "dns",
                    at + SignedDuration::from_millis(3),
                    dns_ok,
                    20,
                ));
            }
            results.push(result(
                "web",
                at,
                web_ok,
                if k % 50 < 3 { 800 } else { 100 },
            ));
            results.push(result(
                "mail",
                at + SignedDuration::from_secs(1),
                mail_ok,
                50,
            ));
        }
        let end = start + SignedDuration::from_secs(30 * 600 + 60);
        let range = TimeRange::new(start, end);
        let batch = derive_with_rules("portal", &checks, &results, range, end);

        let mut live = ServiceTracker::from_rules("portal", &checks, start);
        let mut arrivals: Vec<(Timestamp, &ProbeResult)> = results
            .iter()
            .map(|r| {
                let finished = r.at + SignedDuration::try_from(r.duration).unwrap();
                (finished, r)
            })
            .collect();
        arrivals.sort_by_key(|(f, _)| *f);
        // What the lead's store would hold, kept only from the updates.
        let mut stored: BTreeMap<Timestamp, ServiceTransition> = BTreeMap::new();
        let mut stored_incidents: BTreeMap<Timestamp, Incident> = BTreeMap::new();
        let mut persist = |u: ServiceUpdate| {
            for t in u.retracted {
                stored.remove(&t.at);
            }
            for t in u.added {
                stored.insert(t.at, t);
            }
            for c in u.incidents {
                match c {
                    IncidentChange::Opened(i) => {
                        stored_incidents.insert(i.start, i);
                    }
                    IncidentChange::Updated { before, after } => {
                        stored_incidents.remove(&before.start);
                        stored_incidents.insert(after.start, after);
                    }
                    IncidentChange::Retracted(i) => {
                        stored_incidents.remove(&i.start);
                    }
                }
            }
        };
        let mut next_tick = start;
        for (finished, r) in arrivals {
            while next_tick <= finished {
                persist(live.advance(next_tick - SignedDuration::from_secs(15)));
                next_tick += SignedDuration::from_secs(5);
            }
            persist(live.observe(r));
        }
        persist(live.advance(end));
        assert_eq!(live.timeline(), &batch.timeline);
        assert_eq!(
            stored.into_values().collect::<Vec<_>>(),
            batch.timeline.transitions()
        );
        assert_eq!(
            stored_incidents.into_values().collect::<Vec<_>>(),
            incidents(&batch.timeline)
        );
        // web 100..130 (dns joining at 120), dns 300..340; mail only degrades;
        // dns silent 400..420 makes the service unknown.
        assert_eq!(batch.incidents.len(), 2);
        let states: Vec<_> = batch.segments.iter().map(|s| s.state).collect();
        assert!(states.contains(&Degraded) && states.contains(&Unknown));
    }

    /// A week of many services, for timing in release mode:
    /// `CONTINUITY_SLA_BENCH_SERVICES=1000 cargo test --release --lib
    /// sla::batch::tests::derives_a_week_of_services_at_30s -- --nocapture`.
    #[test]
    fn derives_a_week_of_services_at_30s() {
        let services: usize = std::env::var("CONTINUITY_SLA_BENCH_SERVICES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
        let start = ts("2026-11-16T00:00:00+01:00");
        let week = TimeRange::new(start, start + SignedDuration::from_hours(168));
        let per_week = 7 * 24 * 120;
        let rules = [check("home", true)];
        let mut took = std::time::Duration::ZERO;
        let mut incidents = 0;
        for s in 0..services {
            let results: Vec<ProbeResult> = (0..per_week)
                .map(|k| {
                    let at = start + SignedDuration::from_secs(30 * k as i64);
                    // Each service has a 20-minute outage a day, at its own time.
                    let failing = (k + s * 997) % (per_week / 7) < 40;
                    result("home", at, !failing, 100)
                })
                .collect();
            // Only the derivation and the accounting are timed.
            let began = std::time::Instant::now();
            let d = derive_with_rules("svc", &rules, &results, week, week.end);
            let f = account_in_calendar(
                &d.segments,
                week,
                &SlaCalendar::always(),
                &Default::default(),
            );
            took += began.elapsed();
            incidents += d.incidents.len();
            assert_eq!(
                f.outside_hours + f.excluded_maintenance + f.unknown + f.eligible,
                f.total
            );
        }
        println!(
            "{services} services x {per_week} results: {took:?} ({:.0} ns/result), {incidents} incidents",
            took.as_nanos() as f64 / (services * per_week) as f64
        );
        assert!(incidents >= services * 7);
    }
}
