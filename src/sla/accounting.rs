//! SLA accounting: how every millisecond of a range is counted, given a
//! service's timeline, a calendar's opening hours and the maintenance
//! windows that exclude time.
//!
//! Each instant of the range lands in exactly one bucket, decided in this
//! order: outside the calendar's hours → `outside_hours`; in an excluding
//! maintenance window → `excluded_maintenance`; state Unknown (or not
//! covered by the timeline) → `unknown`; otherwise it is `eligible`, and
//! is `good` (Up or Degraded) or `down`. So, to the millisecond:
//! `total = outside_hours + excluded_maintenance + unknown + eligible` and
//! `eligible = good + down`.

use serde::{Deserialize, Serialize};

use super::calendar::SlaCalendar;
use super::range::{RangeSet, TimeRange, ms};
use super::state::ServiceState;
use super::timeline::Segment;

/// Milliseconds per bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaFigures {
    /// Wall-clock length of the range.
    pub total: i64,
    pub outside_hours: i64,
    /// Inside hours, in an excluding maintenance window.
    pub excluded_maintenance: i64,
    /// Inside hours, not excluded, state not known.
    pub unknown: i64,
    /// Inside hours, not excluded, state known: `good + down`.
    pub eligible: i64,
    /// Up or Degraded.
    pub good: i64,
    /// The Degraded part of `good`.
    pub degraded: i64,
    pub down: i64,
}

impl SlaFigures {
    /// `good / eligible`; `None` when nothing was eligible (a period with
    /// no opening hours, or only unknown time, has no availability).
    pub fn availability(&self) -> Option<f64> {
        (self.eligible > 0).then(|| self.good as f64 / self.eligible as f64)
    }

    /// Sum of two sets of figures (e.g. of adjacent ranges).
    pub fn plus(&self, other: &SlaFigures) -> SlaFigures {
        SlaFigures {
            total: self.total + other.total,
            outside_hours: self.outside_hours + other.outside_hours,
            excluded_maintenance: self.excluded_maintenance + other.excluded_maintenance,
            unknown: self.unknown + other.unknown,
            eligible: self.eligible + other.eligible,
            good: self.good + other.good,
            degraded: self.degraded + other.degraded,
            down: self.down + other.down,
        }
    }
}

/// Count `range`. `segments` in time order (gaps count as unknown; where
/// two overlap, the earlier-starting one wins); `open` the calendar's
/// opening instants; `excluded` the excluding maintenance windows.
pub fn account(
    segments: &[Segment],
    range: TimeRange,
    open: &RangeSet,
    excluded: &RangeSet,
) -> SlaFigures {
    let open = open.clip(range);
    let candidate = open.subtract(excluded);
    let mut f = SlaFigures {
        total: range.duration_ms(),
        ..SlaFigures::default()
    };
    f.outside_hours = f.total - open.total_ms();
    f.excluded_maintenance = open.total_ms() - candidate.total_ms();

    let sorted;
    let segments = if segments.is_sorted_by_key(|s| s.start) {
        segments
    } else {
        let mut v = segments.to_vec();
        v.sort_by_key(|s| s.start);
        sorted = v;
        &sorted[..]
    };
    let mut j = 0;
    for c in candidate.ranges() {
        let mut pos = c.start;
        while pos < c.end {
            while j < segments.len() && segments[j].end <= pos {
                j += 1;
            }
            let (until, state) = match segments.get(j) {
                Some(s) if s.start <= pos => (s.end.min(c.end), s.state),
                Some(s) => (s.start.min(c.end), ServiceState::Unknown),
                None => (c.end, ServiceState::Unknown),
            };
            let len = ms(until) - ms(pos);
            match state {
                ServiceState::Up => f.good += len,
                ServiceState::Degraded => {
                    f.good += len;
                    f.degraded += len;
                }
                ServiceState::Down => f.down += len,
                // Maintenance is a display state and never measured.
                ServiceState::Unknown | ServiceState::Maintenance => f.unknown += len,
            }
            pos = until;
        }
    }
    f.eligible = f.good + f.down;
    f
}

/// [`account`] with the opening hours taken from `calendar`.
pub fn account_in_calendar(
    segments: &[Segment],
    range: TimeRange,
    calendar: &SlaCalendar,
    excluded: &RangeSet,
) -> SlaFigures {
    account(segments, range, &calendar.open_ranges(range), excluded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::range::tests::{r, ts};
    use jiff::{SignedDuration, Timestamp};
    use proptest::prelude::*;

    fn seg(a: &str, b: &str, state: ServiceState) -> Segment {
        Segment {
            start: ts(a),
            end: ts(b),
            state,
        }
    }

    #[test]
    fn down_outside_hours_and_in_excluded_maintenance_does_not_count() {
        let range = r("2026-11-16T00:00:00Z", "2026-11-17T00:00:00Z");
        let open = RangeSet::from_ranges([r("2026-11-16T08:00:00Z", "2026-11-16T17:00:00Z")]);
        let excluded = RangeSet::from_ranges([r("2026-11-16T07:00:00Z", "2026-11-16T09:00:00Z")]);
        let segments = [
            seg(
                "2026-11-16T00:00:00Z",
                "2026-11-16T08:30:00Z",
                ServiceState::Down,
            ),
            seg(
                "2026-11-16T08:30:00Z",
                "2026-11-16T16:00:00Z",
                ServiceState::Up,
            ),
            seg(
                "2026-11-16T16:00:00Z",
                "2026-11-16T18:00:00Z",
                ServiceState::Down,
            ),
        ];
        let f = account(&segments, range, &open, &excluded);
        let h = 3_600_000;
        assert_eq!(
            f,
            SlaFigures {
                total: 24 * h,
                outside_hours: 15 * h,
                excluded_maintenance: h,
                unknown: 0,
                eligible: 8 * h,
                good: 7 * h,
                degraded: 0,
                down: h,
            }
        );
        assert_eq!(f.availability(), Some(7.0 / 8.0));
    }

    #[test]
    fn gaps_in_the_timeline_count_as_unknown() {
        let range = r("2026-11-16T00:00:00Z", "2026-11-16T01:00:00Z");
        let open = RangeSet::from_ranges([range]);
        let segments = [seg(
            "2026-11-16T00:10:00Z",
            "2026-11-16T00:20:00Z",
            ServiceState::Degraded,
        )];
        let f = account(&segments, range, &open, &RangeSet::new());
        assert_eq!(
            (f.unknown, f.good, f.degraded, f.eligible),
            (3_000_000, 600_000, 600_000, 600_000)
        );
    }

    #[test]
    fn no_eligible_time_means_no_availability() {
        let range = r("2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z");
        let f = account(&[], range, &RangeSet::new(), &RangeSet::new());
        assert_eq!(f.outside_hours, f.total);
        assert_eq!(f.availability(), None);
    }

    #[test]
    fn sub_second_boundaries_still_add_up() {
        let range = r("2026-11-16T00:00:00.250Z", "2026-11-16T00:00:10.999Z");
        let open =
            RangeSet::from_ranges([r("2026-11-16T00:00:01.5Z", "2026-11-16T00:00:09.0005Z")]);
        let segments = [seg(
            "2026-11-16T00:00:03.3333Z",
            "2026-11-16T00:00:07.77Z",
            ServiceState::Down,
        )];
        let f = account(&segments, range, &open, &RangeSet::new());
        assert_eq!(f.total, 10_749);
        assert_eq!(
            f.outside_hours + f.excluded_maintenance + f.unknown + f.eligible,
            f.total
        );
        assert_eq!(f.down, 7_770 - 3_333);
    }

    fn base() -> Timestamp {
        ts("2026-11-16T00:00:00Z")
    }

    fn at(s: u32) -> Timestamp {
        base() + SignedDuration::from_secs(i64::from(s))
    }

    fn ranges_strategy() -> impl Strategy<Value = Vec<(u32, u32)>> {
        prop::collection::vec((0u32..600, 1u32..120), 0..8)
    }

    fn to_set(v: &[(u32, u32)]) -> RangeSet {
        RangeSet::from_ranges(v.iter().map(|&(a, len)| TimeRange::new(at(a), at(a + len))))
    }

    fn state_of(i: u8) -> ServiceState {
        [
            ServiceState::Up,
            ServiceState::Degraded,
            ServiceState::Down,
            ServiceState::Unknown,
        ][usize::from(i % 4)]
    }

    proptest! {
        /// Nothing is silently dropped, and each bucket matches a
        /// second-by-second count.
        #[test]
        fn every_second_is_counted_once(
            open in ranges_strategy(),
            excluded in ranges_strategy(),
            cuts in prop::collection::vec((1u32..80, 0u8..4), 0..12),
            from in 0u32..100,
            len in 0u32..700,
        ) {
            let mut segments = Vec::new();
            let mut t = 20;
            for (d, s) in cuts {
                segments.push(Segment { start: at(t), end: at(t + d), state: state_of(s) });
                t += d;
            }
            let range = TimeRange::new(at(from), at(from + len));
            let (open, excluded) = (to_set(&open), to_set(&excluded));
            let f = account(&segments, range, &open, &excluded);
            prop_assert_eq!(f.outside_hours + f.excluded_maintenance + f.unknown + f.eligible, f.total);
            prop_assert_eq!(f.good + f.down, f.eligible);
            prop_assert!(f.degraded <= f.good);

            let mut want = SlaFigures { total: f.total, ..SlaFigures::default() };
            for s in from..from + len {
                let x = at(s);
                let state = segments.iter().find(|g| g.start <= x && x < g.end).map(|g| g.state);
                let b = if !open.contains(x) {
                    &mut want.outside_hours
                } else if excluded.contains(x) {
                    &mut want.excluded_maintenance
                } else {
                    match state {
                        Some(ServiceState::Up) => &mut want.good,
                        Some(ServiceState::Degraded) => { want.degraded += 1000; &mut want.good }
                        Some(ServiceState::Down) => &mut want.down,
                        _ => &mut want.unknown,
                    }
                };
                *b += 1000;
            }
            want.eligible = want.good + want.down;
            prop_assert_eq!(f, want);
        }
    }
}
