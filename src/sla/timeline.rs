//! A service's state over time, as change points with their causes, that
//! takes back-dated changes: recording a state from an instant earlier
//! than what is already recorded rewrites everything after it, and says
//! which transitions that retracted and which it added.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::check::FirstFailure;
use super::range::TimeRange;
use super::state::{CheckState, ServiceState};

/// `[start, end)` in one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub start: Timestamp,
    pub end: Timestamp,
    pub state: ServiceState,
}

impl Segment {
    pub fn range(&self) -> TimeRange {
        TimeRange::new(self.start, self.end)
    }
}

/// One check's part in a service state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckCause {
    pub check: String,
    pub critical: bool,
    pub state: CheckState,
    pub slow: bool,
    /// For a check that is Down: the first failing probe of the run that
    /// confirmed it.
    pub failure: Option<FirstFailure>,
}

/// A change of service state, with the checks that explain the new state
/// (empty for Up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTransition {
    pub at: Timestamp,
    pub from: ServiceState,
    pub to: ServiceState,
    pub cause: Vec<CheckCause>,
}

/// The service is in `state` from `at` until the next point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatePoint {
    pub at: Timestamp,
    pub state: ServiceState,
    pub cause: Vec<CheckCause>,
}

/// What a rewrite did to the recorded transitions: delete `retracted`,
/// then insert `added` (each keyed by its `at`: a timeline has at most one
/// transition per instant).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelineChange {
    pub retracted: Vec<ServiceTransition>,
    pub added: Vec<ServiceTransition>,
}

impl TimelineChange {
    pub fn is_empty(&self) -> bool {
        self.retracted.is_empty() && self.added.is_empty()
    }
}

/// Change points in time order, never empty, never two equal states in a
/// row; the last state lasts until further notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    points: Vec<StatePoint>,
}

impl Timeline {
    pub fn new(start: Timestamp, state: ServiceState) -> Timeline {
        Timeline {
            points: vec![StatePoint {
                at: start,
                state,
                cause: Vec::new(),
            }],
        }
    }

    /// Rebuild a timeline from stored transitions (in any order).
    pub fn from_transitions(
        start: Timestamp,
        initial: ServiceState,
        transitions: impl IntoIterator<Item = ServiceTransition>,
    ) -> Timeline {
        let mut all: Vec<ServiceTransition> = transitions.into_iter().collect();
        all.sort_by_key(|t| t.at);
        let mut timeline = Timeline::new(start, initial);
        for t in all {
            timeline.record(t.at, t.to, t.cause);
        }
        timeline
    }

    pub fn start(&self) -> Timestamp {
        self.points[0].at
    }

    pub fn current(&self) -> ServiceState {
        self.points
            .last()
            .map_or(ServiceState::Unknown, |p| p.state)
    }

    pub fn points(&self) -> &[StatePoint] {
        &self.points
    }

    /// The state at `t`; `None` before the timeline starts.
    pub fn state_at(&self, t: Timestamp) -> Option<ServiceState> {
        let i = self.points.partition_point(|p| p.at <= t);
        i.checked_sub(1).map(|i| self.points[i].state)
    }

    /// The point in force at `t`.
    pub fn point_at(&self, t: Timestamp) -> Option<&StatePoint> {
        let i = self.points.partition_point(|p| p.at <= t);
        i.checked_sub(1).map(|i| &self.points[i])
    }

    /// The service is in `state` from `at` on: whatever was recorded at or
    /// after `at` is replaced (the back-dated case). An `at` before the
    /// start moves the start.
    pub fn record(
        &mut self,
        at: Timestamp,
        state: ServiceState,
        cause: Vec<CheckCause>,
    ) -> TimelineChange {
        self.replace_from(at, vec![StatePoint { at, state, cause }])
    }

    /// Replace every point at or after `at` with `points` (in time order,
    /// all at or after `at`); a point repeating the state before it is
    /// dropped.
    pub fn replace_from(&mut self, at: Timestamp, points: Vec<StatePoint>) -> TimelineChange {
        let k = self.points.partition_point(|p| p.at < at);
        if k == 0 && points.is_empty() {
            return TimelineChange::default();
        }
        let old_tail = self.points.split_off(k);
        let before = self.points.last().map(|p| p.state);
        let old = transitions_of(before, &old_tail);
        for p in points {
            match self.points.last() {
                Some(last) if p.at < last.at || p.state == last.state => {}
                _ => {
                    super::reserve_one(&mut self.points);
                    self.points.push(p);
                }
            }
        }
        let new = transitions_of(before, &self.points[k..]);
        TimelineChange {
            retracted: old.iter().filter(|t| !new.contains(t)).cloned().collect(),
            added: new.iter().filter(|t| !old.contains(t)).cloned().collect(),
        }
    }

    /// The segments inside `range`; time before the start is not covered
    /// (accounting counts it as unknown).
    pub fn segments(&self, range: TimeRange) -> Vec<Segment> {
        let mut out = Vec::new();
        for (i, p) in self.points.iter().enumerate() {
            let end = self.points.get(i + 1).map_or(range.end, |n| n.at);
            if let Some(r) = TimeRange::new(p.at, end).intersect(&range) {
                out.push(Segment {
                    start: r.start,
                    end: r.end,
                    state: p.state,
                });
            }
        }
        out
    }

    /// Every transition (the start is not one).
    pub fn transitions(&self) -> Vec<ServiceTransition> {
        transitions_of(None, &self.points)
    }

    /// The transitions at instants inside `range`.
    pub fn transitions_in(&self, range: TimeRange) -> Vec<ServiceTransition> {
        self.transitions()
            .into_iter()
            .filter(|t| range.contains(t.at))
            .collect()
    }

    /// Drop points that ended before `t`, keeping the one in force at `t`
    /// (to bound memory in a long-running daemon).
    pub fn forget_before(&mut self, t: Timestamp) {
        let i = self.points.partition_point(|p| p.at <= t);
        if i > 1 {
            self.points.drain(..i - 1);
        }
    }
}

fn transitions_of(before: Option<ServiceState>, points: &[StatePoint]) -> Vec<ServiceTransition> {
    let mut prev = before;
    let mut out = Vec::new();
    for p in points {
        if let Some(from) = prev
            && from != p.state
        {
            out.push(ServiceTransition {
                at: p.at,
                from,
                to: p.state,
                cause: p.cause.clone(),
            });
        }
        prev = Some(p.state);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::check::tests::t;
    use ServiceState::{Degraded, Down, Unknown, Up};

    fn states(tl: &Timeline, range: TimeRange) -> Vec<(i64, i64, ServiceState)> {
        let base = t(0).as_second();
        tl.segments(range)
            .iter()
            .map(|s| {
                (
                    s.start.as_second() - base,
                    s.end.as_second() - base,
                    s.state,
                )
            })
            .collect()
    }

    #[test]
    fn back_dated_down_rewrites_the_later_segments() {
        let mut tl = Timeline::new(t(0), Unknown);
        tl.record(t(100), Up, vec![]);
        // Now is t(400); a check confirms Down back-dated to t(100).
        let change = tl.record(t(100), Down, vec![]);
        assert_eq!(
            states(&tl, TimeRange::new(t(0), t(400))),
            vec![(0, 100, Unknown), (100, 400, Down)]
        );
        assert_eq!(change.retracted.len(), 1);
        assert_eq!(
            (change.retracted[0].from, change.retracted[0].to),
            (Unknown, Up)
        );
        assert_eq!((change.added[0].at, change.added[0].to), (t(100), Down));
    }

    #[test]
    fn back_dated_change_retracts_the_transitions_after_it() {
        let mut tl = Timeline::new(t(0), Unknown);
        tl.record(t(10), Up, vec![]);
        tl.record(t(200), Degraded, vec![]);
        tl.record(t(300), Up, vec![]);
        let change = tl.record(t(150), Down, vec![]);
        let retracted: Vec<_> = change.retracted.iter().map(|t| (t.at, t.to)).collect();
        assert_eq!(retracted, vec![(t(200), Degraded), (t(300), Up)]);
        assert_eq!(change.added.len(), 1);
        assert_eq!(tl.current(), Down);
        assert_eq!(tl.state_at(t(149)), Some(Up));
        assert_eq!(tl.state_at(t(-1)), None);
    }

    #[test]
    fn recording_the_state_already_in_force_changes_nothing() {
        let mut tl = Timeline::new(t(0), Up);
        assert!(tl.record(t(50), Up, vec![]).is_empty());
        assert_eq!(tl.points().len(), 1);
    }

    #[test]
    fn replacing_with_the_same_points_reports_no_change() {
        let mut tl = Timeline::new(t(0), Unknown);
        tl.record(t(10), Up, vec![]);
        tl.record(t(20), Down, vec![]);
        let same = tl.points()[1..].to_vec();
        assert!(tl.replace_from(t(5), same).is_empty());
    }

    #[test]
    fn rebuilding_from_stored_transitions_gives_the_same_timeline() {
        let mut tl = Timeline::new(t(0), Unknown);
        tl.record(t(10), Up, vec![]);
        tl.record(t(20), Down, vec![]);
        tl.record(t(90), Up, vec![]);
        let mut stored = tl.transitions();
        stored.reverse();
        assert_eq!(Timeline::from_transitions(t(0), Unknown, stored), tl);
    }

    #[test]
    fn transitions_round_trip_through_json_for_the_store() {
        let cause = CheckCause {
            check: "home".into(),
            critical: true,
            state: CheckState::Down,
            slow: false,
            failure: Some(FirstFailure {
                at: t(60),
                reason: Some(crate::probe::FailureReason::Tls),
                detail: "certificate expired".into(),
            }),
        };
        let mut tl = Timeline::new(t(0), Up);
        tl.record(t(60), Down, vec![cause]);
        let json = serde_json::to_string(&tl.transitions()).unwrap();
        assert!(
            json.contains(r#""to":"down""#) && json.contains(r#""reason":"tls""#),
            "{json}"
        );
        let back: Vec<ServiceTransition> = serde_json::from_str(&json).unwrap();
        assert_eq!(Timeline::from_transitions(t(0), Up, back), tl);
    }

    #[test]
    fn segments_are_clipped_and_the_last_runs_to_the_end_of_the_range() {
        let mut tl = Timeline::new(t(0), Up);
        tl.record(t(100), Down, vec![]);
        assert_eq!(
            states(&tl, TimeRange::new(t(50), t(130))),
            vec![(50, 100, Up), (100, 130, Down)]
        );
        assert_eq!(
            states(&tl, TimeRange::new(t(-50), t(10))),
            vec![(0, 10, Up)]
        );
    }

    #[test]
    fn forgetting_keeps_the_point_in_force() {
        let mut tl = Timeline::new(t(0), Unknown);
        tl.record(t(10), Up, vec![]);
        tl.record(t(20), Down, vec![]);
        tl.forget_before(t(15));
        assert_eq!(tl.start(), t(10));
        assert_eq!(tl.state_at(t(15)), Some(Up));
    }
}
