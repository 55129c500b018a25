//! The state machine of one service: owns the trackers of its checks,
//! keeps each check's recent history, and derives the service timeline
//! from it with [`service_state`], rewriting it when a check's verdict is
//! back-dated.
//!
//! The live engine and the batch recompute drive the same tracker: feed
//! results with [`ServiceTracker::observe`] and tell it how far results
//! are complete with [`ServiceTracker::advance`]. Results of different
//! checks may arrive out of time order (a slow probe finishes after a
//! later fast one); the timeline ends up the same.

use std::sync::Arc;

use jiff::Timestamp;

use super::check::{CheckEvents, CheckRules, CheckTracker, FirstFailure, FlapPolicy, ProbeResult};
use super::incident::{IncidentChange, diff_incidents, incidents_since};
use super::range::to_millisecond;
use super::state::{CheckCondition, CheckState, ServiceState, service_state};
use super::timeline::{CheckCause, ServiceTransition, StatePoint, Timeline};
use crate::config::Service;

/// What one call changed. Persist it by deleting `retracted` and
/// inserting `added` transitions (keyed by service and `at`), and by
/// applying `incidents` in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceUpdate {
    pub retracted: Vec<ServiceTransition>,
    pub added: Vec<ServiceTransition>,
    pub incidents: Vec<IncidentChange>,
    /// Results that were ignored: an unknown check id, not newer than the
    /// check's previous result, or before the tracker's start.
    pub ignored: usize,
}

impl ServiceUpdate {
    pub fn is_empty(&self) -> bool {
        self.retracted.is_empty() && self.added.is_empty() && self.incidents.is_empty()
    }
}

/// A check's condition from `at` until its next point.
#[derive(Debug, Clone)]
struct CheckPoint {
    at: Timestamp,
    state: CheckState,
    slow: bool,
    failure: Option<Arc<FirstFailure>>,
}

impl CheckPoint {
    fn same_condition(&self, other: &CheckPoint) -> bool {
        self.state == other.state
            && self.slow == other.slow
            && match (&self.failure, &other.failure) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

#[derive(Debug, Clone)]
struct Slot {
    tracker: CheckTracker,
    /// From the tracker's horizon (or earlier) to now.
    history: Vec<CheckPoint>,
}

/// Histories are pruned when one grows past this many points.
const PRUNE_AT: usize = 32;

/// Tracks one service.
#[derive(Debug, Clone)]
pub struct ServiceTracker {
    service_id: String,
    start: Timestamp,
    slots: Vec<Slot>,
    timeline: Timeline,
    no_critical_checks: bool,
}

impl ServiceTracker {
    /// A tracker whose checks (and so the service) are Unknown since `start`.
    pub fn new(service: &Service, start: Timestamp) -> ServiceTracker {
        let rules: Vec<CheckRules> = service.checks.iter().map(|c| CheckRules::of(c)).collect();
        ServiceTracker::from_rules(&service.id, &rules, start)
    }

    pub fn from_rules(service_id: &str, checks: &[CheckRules], start: Timestamp) -> ServiceTracker {
        let start = to_millisecond(start);
        let slots = checks
            .iter()
            .map(|c| Slot {
                tracker: CheckTracker::new(c, start),
                history: vec![CheckPoint {
                    at: start,
                    state: CheckState::Unknown,
                    slow: false,
                    failure: None,
                }],
            })
            .collect::<Vec<_>>();
        ServiceTracker {
            service_id: service_id.to_string(),
            start,
            no_critical_checks: !checks.iter().any(|c| c.critical),
            slots,
            timeline: Timeline::new(start, ServiceState::Unknown),
        }
    }

    pub fn with_flap_policy(mut self, policy: FlapPolicy) -> ServiceTracker {
        for s in &mut self.slots {
            s.tracker = s.tracker.clone().with_flap_policy(policy);
        }
        self
    }

    pub fn service_id(&self) -> &str {
        &self.service_id
    }

    pub fn state(&self) -> ServiceState {
        self.timeline.current()
    }

    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    pub fn checks(&self) -> impl Iterator<Item = &CheckTracker> {
        self.slots.iter().map(|s| &s.tracker)
    }

    pub fn check(&self, id: &str) -> Option<&CheckTracker> {
        self.checks().find(|c| c.id() == id)
    }

    /// Any of its checks is flapping.
    pub fn is_flapping(&self, now: Timestamp) -> bool {
        self.checks().any(|c| c.is_flapping(now))
    }

    /// Everything before this instant is final: no result can rewrite it.
    pub fn settled_before(&self) -> Timestamp {
        self.slots
            .iter()
            .map(|s| s.tracker.horizon())
            .min()
            .unwrap_or(self.start)
            .max(self.start)
    }

    /// Drop timeline points that ended before `t` (and are settled), to
    /// bound memory in a long-running daemon.
    pub fn forget_before(&mut self, t: Timestamp) {
        let t = t.min(self.settled_before());
        self.timeline.forget_before(t);
    }

    /// Feed one result (matched to its check by id).
    pub fn observe(&mut self, result: &ProbeResult) -> ServiceUpdate {
        match self.ingest(result) {
            Ingested::Ignored => ServiceUpdate {
                ignored: 1,
                ..ServiceUpdate::default()
            },
            Ingested::Unchanged => ServiceUpdate::default(),
            Ingested::ChangedFrom(from) => self.recompute(from),
        }
    }

    /// The part of [`ServiceTracker::observe`] that runs for every result;
    /// kept apart so the batch path does not build an empty update per
    /// result.
    pub(crate) fn ingest(&mut self, result: &ProbeResult) -> Ingested {
        let Some(i) = self
            .slots
            .iter()
            .position(|s| s.tracker.id() == result.check_id)
        else {
            return Ingested::Ignored;
        };
        let events = self.slots[i].tracker.observe(result);
        if events.ignored {
            return Ingested::Ignored;
        }
        if events.is_empty() {
            return Ingested::Unchanged;
        }
        let slow = self.slots[i].tracker.is_slow();
        Ingested::ChangedFrom(apply(
            &mut self.slots[i].history,
            &events,
            to_millisecond(result.at),
            slow,
        ))
    }

    /// Every result timestamped at or before `watermark` has been
    /// observed: checks whose last result's standing time (interval +
    /// timeout) ended by then become Unknown from that end. Live, call it
    /// with `now - (longest timeout + a few seconds)` so that probes still
    /// running are not taken for silence; in a batch, with the instant up
    /// to which results are complete.
    pub fn advance(&mut self, watermark: Timestamp) -> ServiceUpdate {
        let mut from: Option<Timestamp> = None;
        for slot in &mut self.slots {
            if let Some(at) = slot.tracker.advance(watermark) {
                let events = CheckEvents {
                    stale_at: Some(at),
                    ..CheckEvents::default()
                };
                let t = apply(&mut slot.history, &events, at, false);
                from = Some(from.map_or(t, |f| f.min(t)));
            }
        }
        match from {
            Some(t) => self.recompute(t),
            None => ServiceUpdate::default(),
        }
    }

    /// Re-derive the timeline from `from` on out of the check histories.
    pub(crate) fn recompute(&mut self, from: Timestamp) -> ServiceUpdate {
        let before_incidents = incidents_since(&self.timeline, from);
        let mut cursor: Vec<usize> = self
            .slots
            .iter()
            .map(|s| {
                s.history
                    .partition_point(|p| p.at <= from)
                    .saturating_sub(1)
            })
            .collect();
        let mut points = Vec::new();
        let mut prev = if from > self.timeline.start() {
            self.timeline.state_at(from_just_before(from))
        } else {
            None
        };
        let mut at = from;
        loop {
            let state = service_state(self.conditions(&cursor));
            if prev != Some(state) {
                points.push(StatePoint {
                    at,
                    state,
                    cause: self.cause(&cursor, state),
                });
                prev = Some(state);
            }
            let next = self
                .slots
                .iter()
                .zip(&cursor)
                .filter_map(|(s, &c)| s.history.get(c + 1).map(|p| p.at))
                .min();
            let Some(next) = next else { break };
            for (s, c) in self.slots.iter().zip(cursor.iter_mut()) {
                if s.history.get(*c + 1).is_some_and(|p| p.at == next) {
                    *c += 1;
                }
            }
            at = next;
        }
        let change = self.timeline.replace_from(from, points);
        let after_incidents = incidents_since(&self.timeline, from);
        self.prune();
        ServiceUpdate {
            retracted: change.retracted,
            added: change.added,
            incidents: diff_incidents(&before_incidents, &after_incidents),
            ignored: 0,
        }
    }

    fn conditions<'a>(&'a self, cursor: &'a [usize]) -> impl Iterator<Item = CheckCondition> + 'a {
        self.slots.iter().zip(cursor).map(|(s, &c)| {
            let p = &s.history[c];
            CheckCondition {
                critical: s.tracker.critical(),
                state: p.state,
                slow: p.slow,
            }
        })
    }

    fn cause(&self, cursor: &[usize], state: ServiceState) -> Vec<CheckCause> {
        self.slots
            .iter()
            .zip(cursor)
            .filter_map(|(s, &c)| {
                let p = &s.history[c];
                let cond = CheckCondition {
                    critical: s.tracker.critical(),
                    state: p.state,
                    slow: p.slow,
                };
                cond.explains(state, self.no_critical_checks)
                    .then(|| CheckCause {
                        check: s.tracker.id().to_string(),
                        critical: cond.critical,
                        state: p.state,
                        slow: p.slow,
                        failure: p.failure.as_deref().cloned(),
                    })
            })
            .collect()
    }

    fn prune(&mut self) {
        if self.slots.iter().all(|s| s.history.len() <= PRUNE_AT) {
            return;
        }
        let horizon = self.settled_before();
        for s in &mut self.slots {
            let keep = s
                .history
                .partition_point(|p| p.at <= horizon)
                .saturating_sub(1);
            if keep > 0 {
                s.history.drain(..keep);
            }
        }
    }
}

/// What one result did to the check histories.
pub(crate) enum Ingested {
    Ignored,
    Unchanged,
    /// The histories changed from this instant on.
    ChangedFrom(Timestamp),
}

fn from_just_before(t: Timestamp) -> Timestamp {
    t.checked_sub(jiff::SignedDuration::from_nanos(1))
        .unwrap_or(t)
}

/// Write a check's events into its history; returns the earliest instant
/// that changed.
fn apply(
    history: &mut Vec<CheckPoint>,
    events: &CheckEvents,
    result_at: Timestamp,
    slow: bool,
) -> Timestamp {
    let mut earliest = result_at;
    if let Some(at) = events.stale_at {
        set_from(history, at, |p| {
            p.state = CheckState::Unknown;
            p.slow = false;
            p.failure = None;
        });
        earliest = earliest.min(at);
    }
    if events.slow_changed {
        set_from(history, result_at, |p| p.slow = slow);
    }
    if let Some(tr) = &events.confirmed {
        set_from(history, tr.at, |p| {
            p.state = tr.to;
            p.failure = tr.failure.clone();
        });
        earliest = earliest.min(tr.at);
    }
    earliest
}

/// Change every point from `at` on, splitting the one in force at `at`.
fn set_from(history: &mut Vec<CheckPoint>, at: Timestamp, mut change: impl FnMut(&mut CheckPoint)) {
    let i = history.partition_point(|p| p.at < at);
    if history.get(i).is_none_or(|p| p.at != at) {
        let template = match i.checked_sub(1) {
            Some(j) => history[j].clone(),
            None => CheckPoint {
                at,
                state: CheckState::Unknown,
                slow: false,
                failure: None,
            },
        };
        super::reserve_one(history);
        history.insert(i, CheckPoint { at, ..template });
    }
    for p in &mut history[i..] {
        change(p);
    }
    // Keep one point per change of condition.
    let from = i.saturating_sub(1);
    let mut w = from;
    for r in from..history.len() {
        if r == from || !history[r].same_condition(&history[w]) {
            if r != from {
                w += 1;
            }
            history.swap(w, r);
        }
    }
    history.truncate(w + 1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::check::tests::{check, fail, ok, slow, t};
    use crate::sla::incident::incidents;
    use crate::sla::range::TimeRange;
    use ServiceState::{Degraded, Down, Unknown, Up};

    fn tracker(checks: &[CheckRules]) -> ServiceTracker {
        ServiceTracker::from_rules("portal", checks, t(0))
    }

    fn segs(s: &ServiceTracker, until: i64) -> Vec<(i64, i64, ServiceState)> {
        let base = t(0).as_second();
        s.timeline()
            .segments(TimeRange::new(t(0), t(until)))
            .iter()
            .map(|g| {
                (
                    g.start.as_second() - base,
                    g.end.as_second() - base,
                    g.state,
                )
            })
            .collect()
    }

    #[test]
    fn service_goes_up_from_the_first_success_once_confirmed() {
        let mut s = tracker(&[check("home", true)]);
        assert!(s.observe(&ok("home", 5)).is_empty());
        let u = s.observe(&ok("home", 35));
        assert_eq!(u.added.len(), 1);
        assert_eq!(
            (u.added[0].at, u.added[0].from, u.added[0].to),
            (t(5), Unknown, Up)
        );
        assert_eq!(segs(&s, 60), vec![(0, 5, Unknown), (5, 60, Up)]);
    }

    #[test]
    fn confirmed_down_is_back_dated_and_carries_its_cause() {
        let mut s = tracker(&[check("home", true)]);
        for at in [0, 30] {
            s.observe(&ok("home", at));
        }
        s.observe(&fail("home", 60, "connect timed out"));
        assert_eq!(s.state(), Up);
        s.observe(&fail("home", 90, "again"));
        let u = s.observe(&fail("home", 120, "and again"));
        assert_eq!(s.state(), Down);
        let tr = &u.added[0];
        assert_eq!((tr.at, tr.from, tr.to), (t(60), Up, Down));
        assert_eq!(tr.cause.len(), 1);
        let f = tr.cause[0].failure.as_ref().unwrap();
        assert_eq!(
            (tr.cause[0].check.as_str(), f.detail.as_str()),
            ("home", "connect timed out")
        );
        assert!(matches!(&u.incidents[..], [IncidentChange::Opened(i)] if i.start == t(60)));
        let u = s.observe(&ok("home", 150));
        assert!(u.is_empty());
        let u = s.observe(&ok("home", 180));
        assert_eq!(u.added[0].at, t(150));
        assert!(
            matches!(&u.incidents[..], [IncidentChange::Updated { after, .. }] if after.end == Some(t(150)))
        );
        assert_eq!(
            segs(&s, 200),
            vec![(0, 60, Up), (60, 150, Down), (150, 200, Up)]
        );
    }

    #[test]
    fn back_dated_critical_down_overrides_a_degradation_recorded_after_it() {
        let mut web = check("web", true);
        web.failure_threshold = 4;
        let mut s = tracker(&[web, check("mail", false)]);
        for at in [0, 30] {
            s.observe(&ok("web", at));
            s.observe(&ok("mail", at + 1));
        }
        // web starts failing at 60 and needs four failures (60..150);
        // mail fails from 61 and is confirmed at 121 → Degraded from 61.
        for k in 0..3 {
            s.observe(&fail("web", 60 + 30 * k, "w"));
            s.observe(&fail("mail", 61 + 30 * k, "m"));
        }
        assert_eq!(s.state(), Degraded);
        // A non-critical check without a verdict changes nothing: Up from 0.
        assert_eq!(segs(&s, 140), vec![(0, 61, Up), (61, 140, Degraded)]);
        let u = s.observe(&fail("web", 150, "w"));
        // Down from 60 replaces the Degraded from 61.
        assert_eq!(segs(&s, 160), vec![(0, 60, Up), (60, 160, Down)]);
        assert_eq!(
            u.retracted.iter().map(|t| t.to).collect::<Vec<_>>(),
            vec![Degraded]
        );
        assert_eq!(
            u.added.iter().map(|t| (t.at, t.to)).collect::<Vec<_>>(),
            vec![(t(60), Down)]
        );
    }

    #[test]
    fn silence_becomes_unknown_not_down() {
        let mut s = tracker(&[check("home", true)]);
        for at in [0, 30, 60] {
            s.observe(&ok("home", at));
        }
        s.advance(t(500));
        // Last result at 60 stands until 60 + 30 + 10 = 100.
        assert_eq!(segs(&s, 500), vec![(0, 100, Up), (100, 500, Unknown)]);
        // Back after the gap: Up again from the first probe once confirmed.
        s.observe(&ok("home", 500));
        s.observe(&ok("home", 530));
        assert_eq!(
            segs(&s, 600),
            vec![(0, 100, Up), (100, 500, Unknown), (500, 600, Up)]
        );
    }

    #[test]
    fn results_of_different_checks_arriving_out_of_order_give_the_same_timeline() {
        let checks = [check("web", true), check("dns", true)];
        let mut in_order = tracker(&checks);
        let mut late = tracker(&checks);
        let results = [
            ok("web", 0),
            ok("dns", 1),
            ok("web", 30),
            ok("dns", 31),
            fail("web", 60, "x"),
            fail("dns", 61, "y"),
            fail("web", 90, "x"),
            fail("dns", 91, "y"),
            fail("web", 120, "x"),
            fail("dns", 121, "y"),
        ];
        for r in &results {
            in_order.observe(r);
        }
        // Every web result arrives after the dns result that follows it.
        for pair in results.chunks(2) {
            late.observe(&pair[1]);
            late.observe(&pair[0]);
        }
        assert_eq!(in_order.timeline(), late.timeline());
        assert_eq!(
            segs(&late, 150),
            vec![(0, 1, Unknown), (1, 60, Up), (60, 150, Down)]
        );
    }

    #[test]
    fn down_cause_lists_every_critical_check_down() {
        let mut s = tracker(&[check("web", true), check("dns", true)]);
        for at in [0, 30] {
            s.observe(&ok("web", at));
            s.observe(&ok("dns", at));
        }
        for at in [60, 90, 120] {
            s.observe(&fail("web", at, "w"));
            s.observe(&fail("dns", at, "d"));
        }
        let inc = incidents(s.timeline());
        assert_eq!(inc.len(), 1);
        let names: Vec<&str> = inc[0].cause.iter().map(|c| c.check.as_str()).collect();
        assert_eq!(names, vec!["web", "dns"]);
    }

    #[test]
    fn slow_results_degrade_the_service_for_as_long_as_they_stand() {
        let mut s = tracker(&[check("home", true)]);
        s.observe(&ok("home", 0));
        s.observe(&ok("home", 30));
        s.observe(&slow("home", 60));
        s.observe(&slow("home", 90));
        s.observe(&ok("home", 120));
        assert_eq!(
            segs(&s, 150),
            vec![(0, 60, Up), (60, 120, Degraded), (120, 150, Up)]
        );
        let degraded = &s.timeline().transitions()[0];
        assert_eq!(degraded.to, Degraded);
        assert!(degraded.cause[0].slow);
    }

    #[test]
    fn results_for_unknown_checks_or_before_the_start_are_ignored() {
        let mut s = tracker(&[check("home", true)]);
        assert_eq!(s.observe(&ok("nope", 10)).ignored, 1);
        assert_eq!(s.observe(&ok("home", -10)).ignored, 1);
        s.observe(&ok("home", 10));
        assert_eq!(s.observe(&ok("home", 10)).ignored, 1);
    }

    #[test]
    fn a_check_that_never_reports_does_not_hold_back_pruning() {
        let mut s = tracker(&[check("web", true), check("icmp", true)]);
        let mut at = 0;
        for _ in 0..100 {
            for _ in 0..3 {
                s.observe(&fail("web", at, "x"));
                at += 30;
            }
            for _ in 0..2 {
                s.observe(&ok("web", at));
                at += 30;
            }
            s.advance(t(at - 15));
        }
        assert_eq!(s.state(), Unknown, "icmp has no verdict");
        assert!(s.slots[0].history.len() <= PRUNE_AT + 2);
    }

    #[test]
    fn long_histories_are_pruned_without_changing_the_result() {
        let mut s = tracker(&[check("home", true)]);
        let mut at = 0;
        for round in 0..200 {
            for _ in 0..3 {
                s.observe(&fail("home", at, "x"));
                at += 30;
            }
            s.observe(&if round % 2 == 0 {
                slow("home", at)
            } else {
                ok("home", at)
            });
            at += 30;
            s.observe(&ok("home", at));
            at += 30;
        }
        assert!(s.slots[0].history.len() <= PRUNE_AT + 2);
        assert_eq!(incidents(s.timeline()).len(), 200);
        assert!(s.settled_before() > t(at - 120));
    }
}
