//! The state machine of one check: thresholds with back-dated verdicts,
//! staleness (time the monitor did not see becomes unknown), latency and
//! flapping.
//!
//! A check is confirmed Down after `failure_threshold` consecutive
//! failures and Up after `success_threshold` consecutive successes; the
//! new state starts at the first probe of the confirming run. It starts
//! Unknown and stays Unknown until a run confirms it either way. A result
//! stands for `interval + timeout` after its timestamp: when nothing newer
//! arrives by then, the check is Unknown from that instant and the next
//! results must confirm it again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::range::{from_ms, ms};
use super::state::CheckState;
use crate::config::Check;
use crate::probe::FailureReason;

/// One probe result as the SLA logic needs it; `at` is when the probe
/// started.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    pub check_id: String,
    pub at: Timestamp,
    pub success: bool,
    pub duration: Duration,
    /// Set for failures; `None` when a stored reason could not be parsed.
    pub reason: Option<FailureReason>,
    pub detail: String,
}

/// The first failing probe of the run that confirmed a check Down: the
/// cause people read in incidents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstFailure {
    pub at: Timestamp,
    pub reason: Option<FailureReason>,
    pub detail: String,
}

/// How many confirmed Up/Down changes within how long make a check
/// flapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlapPolicy {
    pub changes: usize,
    pub window: SignedDuration,
}

impl Default for FlapPolicy {
    /// Six changes (three outages) within an hour.
    fn default() -> Self {
        FlapPolicy {
            changes: 6,
            window: SignedDuration::from_hours(1),
        }
    }
}

/// A confirmed change of a check's state.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckTransition {
    /// Back-dated: the first probe of the confirming run, or the moment
    /// the last result went stale.
    pub at: Timestamp,
    pub from: CheckState,
    pub to: CheckState,
    /// Set when `to` is Down.
    pub failure: Option<Arc<FirstFailure>>,
}

/// What one result (or the passing of time) changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckEvents {
    /// The previous result went stale at this instant: from then on the
    /// check was Unknown and any unconfirmed run was forgotten.
    pub stale_at: Option<Timestamp>,
    /// The slow flag changed at the result's timestamp.
    pub slow_changed: bool,
    /// A run reached its threshold.
    pub confirmed: Option<CheckTransition>,
    /// The result was not newer than the previous one and was ignored.
    pub ignored: bool,
}

impl CheckEvents {
    pub fn is_empty(&self) -> bool {
        self.stale_at.is_none() && !self.slow_changed && self.confirmed.is_none()
    }
}

#[derive(Debug, Clone)]
struct Run {
    success: bool,
    /// Milliseconds: converting every result's instant back to a
    /// `Timestamp` would cost more than the rest of the bookkeeping.
    start_ms: i64,
    count: u32,
    first_failure: Option<Arc<FirstFailure>>,
}

/// The parts of a check's configuration that decide its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRules {
    pub id: String,
    pub critical: bool,
    pub interval: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub latency_threshold: Option<Duration>,
}

impl CheckRules {
    pub fn of(check: &Check) -> CheckRules {
        CheckRules {
            id: check.id.clone(),
            critical: check.critical,
            interval: check.interval,
            timeout: check.timeout,
            failure_threshold: check.failure_threshold,
            success_threshold: check.success_threshold,
            latency_threshold: check.latency_threshold,
        }
    }
}

/// Tracks one check.
#[derive(Debug, Clone)]
pub struct CheckTracker {
    id: String,
    critical: bool,
    failure_threshold: u32,
    success_threshold: u32,
    stale_after_ms: i64,
    latency_threshold: Option<Duration>,
    flap_policy: FlapPolicy,

    state: CheckState,
    since: Timestamp,
    failure: Option<Arc<FirstFailure>>,
    run: Option<Run>,
    last_ms: Option<i64>,
    stale: bool,
    /// Since when results have been successes slower than the latency
    /// threshold (the first such result's time); `None` when not slow.
    slow: Option<Timestamp>,
    last_verdict: Option<CheckState>,
    flips: VecDeque<Timestamp>,
    /// The latest watermark passed to `advance`.
    watermark: Timestamp,
}

impl CheckTracker {
    /// A tracker in state Unknown since `start`.
    pub fn new(check: &CheckRules, start: Timestamp) -> CheckTracker {
        let stale = check.interval.saturating_add(check.timeout);
        CheckTracker {
            id: check.id.clone(),
            critical: check.critical,
            failure_threshold: check.failure_threshold.max(1),
            success_threshold: check.success_threshold.max(1),
            stale_after_ms: i64::try_from(stale.as_millis()).unwrap_or(i64::MAX / 4),
            latency_threshold: check.latency_threshold,
            flap_policy: FlapPolicy::default(),
            state: CheckState::Unknown,
            since: start,
            failure: None,
            run: None,
            last_ms: None,
            stale: false,
            slow: None,
            last_verdict: None,
            flips: VecDeque::new(),
            watermark: start,
        }
    }

    pub fn with_flap_policy(mut self, policy: FlapPolicy) -> CheckTracker {
        self.flap_policy = policy;
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn critical(&self) -> bool {
        self.critical
    }

    pub fn state(&self) -> CheckState {
        self.state
    }

    /// When the current state began (back-dated).
    pub fn since(&self) -> Timestamp {
        self.since
    }

    /// The first failure of the run that made the check Down.
    pub fn failure(&self) -> Option<&FirstFailure> {
        self.failure.as_deref()
    }

    /// The latest result was a success slower than the latency threshold.
    pub fn is_slow(&self) -> bool {
        self.slow.is_some()
    }

    /// When the check became slow: the first of the slow results in a row.
    /// Replayed from the store on restart and reload like every state.
    pub fn slow_since(&self) -> Option<Timestamp> {
        self.slow
    }

    /// How long a result stands before the check becomes Unknown.
    pub fn stale_after(&self) -> SignedDuration {
        SignedDuration::from_millis(self.stale_after_ms)
    }

    /// The earliest instant this tracker can still rewrite: the start of
    /// a run that may yet confirm a change (a verdict is back-dated to
    /// it); otherwise its latest result, or, before any result, the latest
    /// watermark (a first result cannot be older than that).
    pub fn horizon(&self) -> Timestamp {
        if let Some(run) = &self.run {
            let target = if run.success {
                CheckState::Up
            } else {
                CheckState::Down
            };
            if self.state != target {
                return from_ms(run.start_ms);
            }
        }
        match self.last_ms {
            Some(last) if self.stale => from_ms(last.saturating_add(self.stale_after_ms)),
            Some(last) => from_ms(last),
            None => self.since.max(self.watermark),
        }
    }

    /// Confirmed Up/Down changes within the flap window before `now`
    /// reach the policy's count.
    pub fn is_flapping(&self, now: Timestamp) -> bool {
        let from = now
            .checked_sub(self.flap_policy.window)
            .unwrap_or(Timestamp::MIN);
        let recent = self
            .flips
            .iter()
            .filter(|t| **t > from && **t <= now)
            .count();
        self.flap_policy.changes > 0 && recent >= self.flap_policy.changes
    }

    /// Feed one result of this check. Results must come in time order;
    /// one not newer than the previous (or, for the first, older than the
    /// tracker's start) is ignored.
    #[inline]
    pub fn observe(&mut self, result: &ProbeResult) -> CheckEvents {
        let at_ms = ms(result.at);
        let slow = result.success && self.latency_threshold.is_some_and(|t| result.duration > t);
        // Nearly every result just confirms what is already known: in
        // time, same outcome as the run that set the state, same slowness.
        if let (Some(last), Some(run)) = (self.last_ms, &mut self.run)
            && at_ms > last
            && at_ms <= last.saturating_add(self.stale_after_ms)
            && run.success == result.success
            && self.state
                == if result.success {
                    CheckState::Up
                } else {
                    CheckState::Down
                }
            && slow == self.slow.is_some()
        {
            run.count = run.count.saturating_add(1);
            self.last_ms = Some(at_ms);
            return CheckEvents::default();
        }
        let mut events = CheckEvents::default();
        let not_newer = match self.last_ms {
            Some(last) => at_ms <= last,
            None => result.at < self.since,
        };
        if not_newer {
            events.ignored = true;
            return events;
        }
        if let Some(last) = self.last_ms
            && !self.stale
            && at_ms > last.saturating_add(self.stale_after_ms)
        {
            events.stale_at = Some(self.go_stale(last));
        }
        self.last_ms = Some(at_ms);
        self.stale = false;

        if slow != self.slow.is_some() {
            self.slow = slow.then_some(result.at);
            events.slow_changed = true;
        }

        let run = match &mut self.run {
            Some(run) if run.success == result.success => {
                run.count = run.count.saturating_add(1);
                run
            }
            run => run.insert(Run {
                success: result.success,
                start_ms: at_ms,
                count: 1,
                first_failure: (!result.success).then(|| {
                    Arc::new(FirstFailure {
                        at: from_ms(at_ms),
                        reason: result.reason,
                        detail: result.detail.clone(),
                    })
                }),
            }),
        };
        let (target, threshold) = if run.success {
            (CheckState::Up, self.success_threshold)
        } else {
            (CheckState::Down, self.failure_threshold)
        };
        if run.count >= threshold && self.state != target {
            let (start, failure) = (from_ms(run.start_ms), run.first_failure.clone());
            events.confirmed = Some(self.set_state(start, target, failure));
        }
        events
    }

    /// Nothing timestamped at or before `watermark` is still to come: if
    /// the last result's standing time ended by then, the check is Unknown
    /// from that moment. Returns that moment.
    pub fn advance(&mut self, watermark: Timestamp) -> Option<Timestamp> {
        self.watermark = self.watermark.max(watermark);
        let last = self.last_ms?;
        if self.stale || last.saturating_add(self.stale_after_ms) > ms(watermark) {
            return None;
        }
        Some(self.go_stale(last))
    }

    fn go_stale(&mut self, last_ms: i64) -> Timestamp {
        let at = from_ms(last_ms.saturating_add(self.stale_after_ms));
        self.stale = true;
        self.slow = None;
        self.run = None;
        if self.state != CheckState::Unknown {
            self.set_state(at, CheckState::Unknown, None);
        }
        at
    }

    fn set_state(
        &mut self,
        at: Timestamp,
        to: CheckState,
        failure: Option<Arc<FirstFailure>>,
    ) -> CheckTransition {
        let from = self.state;
        self.state = to;
        self.since = at;
        self.failure = failure.clone();
        if to != CheckState::Unknown {
            if self.last_verdict.is_some_and(|v| v != to) {
                self.flips.push_back(at);
                let keep_from = at
                    .checked_sub(self.flap_policy.window)
                    .unwrap_or(Timestamp::MIN);
                while self.flips.front().is_some_and(|t| *t <= keep_from) {
                    self.flips.pop_front();
                }
            }
            self.last_verdict = Some(to);
        }
        CheckTransition {
            at,
            from,
            to,
            failure,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const T0: &str = "2026-11-16T08:00:00Z";

    pub(crate) fn t(secs: i64) -> Timestamp {
        crate::sla::range::tests::ts(T0) + SignedDuration::from_secs(secs)
    }

    /// A check probed every 30 s with a 10 s timeout, thresholds 3 and 2,
    /// slow above 500 ms.
    pub(crate) fn check(id: &str, critical: bool) -> CheckRules {
        CheckRules {
            id: id.into(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            critical,
            failure_threshold: 3,
            success_threshold: 2,
            latency_threshold: Some(Duration::from_millis(500)),
        }
    }

    pub(crate) fn ok(id: &str, secs: i64) -> ProbeResult {
        ProbeResult {
            check_id: id.into(),
            at: t(secs),
            success: true,
            duration: Duration::from_millis(100),
            reason: None,
            detail: String::new(),
        }
    }

    pub(crate) fn slow(id: &str, secs: i64) -> ProbeResult {
        ProbeResult {
            duration: Duration::from_millis(900),
            ..ok(id, secs)
        }
    }

    pub(crate) fn fail(id: &str, secs: i64, detail: &str) -> ProbeResult {
        ProbeResult {
            check_id: id.into(),
            at: t(secs),
            success: false,
            duration: Duration::from_secs(10),
            reason: Some(FailureReason::Timeout),
            detail: detail.into(),
        }
    }

    fn tracker() -> CheckTracker {
        CheckTracker::new(&check("home", true), t(0))
    }

    #[test]
    fn check_stays_unknown_until_a_run_confirms_it() {
        let mut c = tracker();
        assert!(c.observe(&ok("home", 0)).confirmed.is_none());
        assert_eq!(c.state(), CheckState::Unknown);
        let e = c.observe(&ok("home", 30));
        assert_eq!(
            e.confirmed,
            Some(CheckTransition {
                at: t(0),
                from: CheckState::Unknown,
                to: CheckState::Up,
                failure: None
            })
        );
        assert_eq!(c.since(), t(0));
    }

    #[test]
    fn down_is_back_dated_to_the_first_failure_of_the_run() {
        let mut c = tracker();
        c.observe(&ok("home", 0));
        c.observe(&ok("home", 30));
        c.observe(&fail("home", 60, "first"));
        c.observe(&fail("home", 90, "second"));
        assert_eq!(c.state(), CheckState::Up, "two failures do not confirm");
        let e = c.observe(&fail("home", 120, "third"));
        let tr = e.confirmed.expect("confirmed");
        assert_eq!(
            (tr.at, tr.from, tr.to),
            (t(60), CheckState::Up, CheckState::Down)
        );
        let f = tr.failure.expect("cause");
        assert_eq!(
            (f.at, f.reason, f.detail.as_str()),
            (t(60), Some(FailureReason::Timeout), "first")
        );
    }

    #[test]
    fn a_success_breaks_a_failure_run() {
        let mut c = tracker();
        for s in [0, 30] {
            c.observe(&ok("home", s));
        }
        c.observe(&fail("home", 60, "a"));
        c.observe(&fail("home", 90, "b"));
        c.observe(&ok("home", 120));
        c.observe(&fail("home", 150, "c"));
        c.observe(&fail("home", 180, "d"));
        assert_eq!(c.state(), CheckState::Up);
        let tr = c.observe(&fail("home", 210, "e")).confirmed.unwrap();
        assert_eq!(tr.at, t(150));
        assert_eq!(tr.failure.unwrap().detail, "c");
    }

    #[test]
    fn up_is_back_dated_to_the_first_success_of_the_run() {
        let mut c = tracker();
        for s in [0, 30, 60] {
            c.observe(&fail("home", s, "x"));
        }
        assert_eq!(c.state(), CheckState::Down);
        assert!(c.observe(&ok("home", 90)).confirmed.is_none());
        let tr = c.observe(&ok("home", 120)).confirmed.unwrap();
        assert_eq!((tr.at, tr.to), (t(90), CheckState::Up));
        assert!(c.failure().is_none());
    }

    #[test]
    fn a_result_stands_for_interval_plus_timeout_then_the_check_is_unknown() {
        let mut c = tracker();
        c.observe(&ok("home", 0));
        c.observe(&ok("home", 30));
        // Standing time is 30 s + 10 s: a result at 70 s is in time.
        let e = c.observe(&ok("home", 70));
        assert!(e.stale_at.is_none());
        // Next one 41 s later: the previous went stale at 70 + 40 = 110 s.
        let e = c.observe(&ok("home", 111));
        assert_eq!(e.stale_at, Some(t(110)));
        assert_eq!(c.state(), CheckState::Unknown);
        // It needs a fresh confirming run, back-dated to its first probe.
        let tr = c.observe(&ok("home", 141)).confirmed.unwrap();
        assert_eq!(
            (tr.at, tr.from, tr.to),
            (t(111), CheckState::Unknown, CheckState::Up)
        );
    }

    #[test]
    fn advance_marks_staleness_only_once_the_watermark_passes_the_deadline() {
        let mut c = tracker();
        c.observe(&ok("home", 0));
        c.observe(&ok("home", 30));
        assert_eq!(c.advance(t(69)), None);
        assert_eq!(c.advance(t(70)), Some(t(70)));
        assert_eq!(c.state(), CheckState::Unknown);
        assert_eq!(c.advance(t(500)), None, "stale once");
    }

    #[test]
    fn staleness_forgets_an_unconfirmed_run() {
        let mut c = tracker();
        c.observe(&ok("home", 0));
        c.observe(&ok("home", 30));
        c.observe(&fail("home", 60, "a"));
        c.observe(&fail("home", 90, "b"));
        assert_eq!(c.advance(t(1000)), Some(t(130)));
        c.observe(&fail("home", 1000, "c"));
        c.observe(&fail("home", 1030, "d"));
        assert_eq!(c.state(), CheckState::Unknown);
        let tr = c.observe(&fail("home", 1060, "e")).confirmed.unwrap();
        assert_eq!(tr.at, t(1000));
    }

    #[test]
    fn slow_success_marks_the_check_slow_until_a_fast_or_failed_result() {
        let mut c = tracker();
        assert!(!c.observe(&ok("home", 0)).slow_changed);
        assert!(c.observe(&slow("home", 30)).slow_changed);
        assert!(c.is_slow());
        assert!(!c.observe(&slow("home", 60)).slow_changed);
        // Slow since the first slow result, not since the last one.
        assert_eq!(c.slow_since(), Some(t(30)));
        assert!(c.observe(&fail("home", 90, "x")).slow_changed);
        assert!(!c.is_slow());
        assert_eq!(c.slow_since(), None);
        c.observe(&slow("home", 120));
        assert_eq!(c.slow_since(), Some(t(120)));
    }

    #[test]
    fn results_out_of_order_are_ignored() {
        let mut c = tracker();
        c.observe(&ok("home", 30));
        assert!(c.observe(&ok("home", 30)).ignored);
        assert!(c.observe(&ok("home", 0)).ignored);
        assert_eq!(c.state(), CheckState::Unknown);
    }

    #[test]
    fn flapping_counts_up_down_changes_within_the_window() {
        let mut c = tracker().with_flap_policy(FlapPolicy {
            changes: 4,
            window: SignedDuration::from_mins(10),
        });
        let mut s = 0;
        // Unknown→Up is not a flip; then Down, Up, Down, Up: four flips.
        for outcome in [true, false, true, false, true] {
            let n = if outcome { 2 } else { 3 };
            for _ in 0..n {
                if outcome {
                    c.observe(&ok("home", s));
                } else {
                    c.observe(&fail("home", s, "x"));
                }
                s += 30;
            }
        }
        assert!(c.is_flapping(t(s)));
        assert!(
            !c.is_flapping(t(s + 600)),
            "the flips age out of the window"
        );
    }

    #[test]
    fn horizon_is_the_start_of_a_run_that_may_still_be_back_dated() {
        let mut c = tracker();
        assert_eq!(c.horizon(), t(0));
        c.advance(t(20));
        assert_eq!(
            c.horizon(),
            t(20),
            "a first result cannot predate the watermark"
        );
        c.observe(&ok("home", 30));
        assert_eq!(c.horizon(), t(30), "an unconfirmed run");
        c.observe(&ok("home", 60));
        c.observe(&ok("home", 90));
        assert_eq!(
            c.horizon(),
            t(90),
            "a decided run rewrites nothing before now"
        );
        c.observe(&fail("home", 120, "x"));
        c.observe(&fail("home", 150, "x"));
        assert_eq!(c.horizon(), t(120));
        c.advance(t(1000));
        assert_eq!(c.horizon(), t(190), "stale from 150 + 40 s");
    }

    #[test]
    fn threshold_one_reacts_to_the_first_result() {
        let mut ch = check("home", true);
        ch.failure_threshold = 1;
        ch.success_threshold = 1;
        let mut c = CheckTracker::new(&ch, t(0));
        assert_eq!(c.observe(&fail("home", 0, "x")).confirmed.unwrap().at, t(0));
        assert_eq!(c.observe(&ok("home", 30)).confirmed.unwrap().at, t(30));
    }
}
