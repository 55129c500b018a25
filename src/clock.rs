//! The daemon's one source of time. Every part that decides by the hour
//! (the scheduler's slots, the engine's states, SLAs and phases, the run's
//! heartbeats, the store's roll-up and retention, the API's "now") asks a
//! [`Clock`], never the system directly. In production that is the system
//! clock. A test can run the whole daemon on a [`ManualClock`] instead,
//! and step it through a migration (weeks of baseline, a cutover window,
//! hypercare) in seconds, with every probe at an instant it knows to the
//! millisecond.
//!
//! What stays on real time, on purpose: how long a probe takes and its
//! timeout (the network is real), the main loop's gathering of reports and
//! its 5 s tick (the tick reads the clock for what it decides), and alert
//! delivery (backoff and grouping are about real messages).
//!
//! A manual clock only moves forward. Its monotonic view (`instant`) is
//! the tokio instant at which it was made plus the manual time passed
//! since, so the scheduler can keep working in monotonic instants under
//! either clock.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use tokio::time::Instant;

/// What time it is, for the daemon. Cheap to clone.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Manual>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::system"),
            Some(m) => write!(f, "Clock::manual({})", *m.now.borrow()),
        }
    }
}

struct Manual {
    now: watch::Sender<Timestamp>,
    /// The manual time and the tokio instant it was made at.
    base: (Timestamp, Instant),
}

impl Manual {
    fn instant_of(&self, t: Timestamp) -> Instant {
        let since = t.duration_since(self.base.0);
        self.base.1 + Duration::try_from(since).unwrap_or_default()
    }

    fn wall_of(&self, at: Instant) -> Timestamp {
        let since = at.saturating_duration_since(self.base.1);
        self.base.0 + SignedDuration::try_from(since).unwrap_or(SignedDuration::MAX)
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands at `start` until its [`ManualClock`] moves it.
    pub fn manual(start: Timestamp) -> (Clock, ManualClock) {
        let (now, _) = watch::channel(start);
        let manual = Arc::new(Manual {
            now,
            base: (start, Instant::now()),
        });
        (
            Clock {
                manual: Some(manual.clone()),
            },
            ManualClock { manual },
        )
    }

    /// The wall-clock time now.
    pub fn now(&self) -> Timestamp {
        match &self.manual {
            None => Timestamp::now(),
            Some(m) => *m.now.borrow(),
        }
    }

    /// The monotonic time now: what timers are set against.
    pub fn instant(&self) -> Instant {
        match &self.manual {
            None => Instant::now(),
            Some(m) => m.instant_of(*m.now.borrow()),
        }
    }

    /// The monotonic instant at which wall-clock time `t` comes (now, if
    /// it is past). Under the system clock a wall-clock step after this
    /// call does not move the instant: timers stay monotonic.
    pub fn instant_at(&self, t: Timestamp) -> Instant {
        let (now, mono) = (self.now(), self.instant());
        mono + Duration::try_from(t.duration_since(now)).unwrap_or_default()
    }

    /// A timer on this clock, first due at `at`.
    pub fn timer(&self, at: Instant) -> Timer {
        let waits = match &self.manual {
            None => Waits::System(Box::pin(tokio::time::sleep_until(at))),
            Some(m) => Waits::Manual(m.clone(), m.now.subscribe()),
        };
        Timer {
            waits,
            deadline: at,
        }
    }
}

/// A resettable timer that fires when its clock reaches its deadline.
pub struct Timer {
    waits: Waits,
    deadline: Instant,
}

/// What a timer waits on: tokio's timer, or the manual clock's moves.
enum Waits {
    System(std::pin::Pin<Box<tokio::time::Sleep>>),
    Manual(Arc<Manual>, watch::Receiver<Timestamp>),
}

impl Timer {
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn reset(&mut self, at: Instant) {
        self.deadline = at;
        if let Waits::System(sleep) = &mut self.waits {
            sleep.as_mut().reset(at);
        }
    }

    /// Wait until the deadline has come. Cancel-safe: a wait dropped in a
    /// `select!` loses nothing.
    pub async fn fired(&mut self) {
        match &mut self.waits {
            Waits::System(sleep) => sleep.as_mut().await,
            Waits::Manual(m, rx) => loop {
                if m.instant_of(*rx.borrow_and_update()) >= self.deadline {
                    return;
                }
                if rx.changed().await.is_err() {
                    // The test dropped its handle: time stands still.
                    std::future::pending::<()>().await;
                }
            },
        }
    }
}

/// The handle that moves a manual clock: held by the test that made it.
pub struct ManualClock {
    manual: Arc<Manual>,
}

impl ManualClock {
    pub fn now(&self) -> Timestamp {
        *self.manual.now.borrow()
    }

    /// Move the clock to `t`, waking every timer due by then. Time never
    /// runs backwards: an earlier `t` is refused.
    pub fn set(&self, t: Timestamp) {
        let now = self.now();
        assert!(t >= now, "a manual clock only moves forward ({now} -> {t})");
        self.manual.now.send_replace(t);
    }

    pub fn advance(&self, by: SignedDuration) {
        self.set(self.now() + by);
    }

    /// The wall-clock time of a monotonic instant of this clock.
    pub fn wall_of(&self, at: Instant) -> Timestamp {
        self.manual.wall_of(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn a_manual_timer_fires_when_the_clock_is_moved_past_its_deadline_not_before() {
        let (clock, hand) = Clock::manual(t("2026-03-10T00:00:00Z"));
        let mut timer = clock.timer(clock.instant_at(t("2026-03-10T00:05:00Z")));
        hand.set(t("2026-03-10T00:04:59.999Z"));
        let early = tokio::time::timeout(Duration::from_millis(50), timer.fired()).await;
        assert!(early.is_err(), "fired a millisecond early");
        let waiting = tokio::spawn(async move {
            timer.fired().await;
            timer.deadline()
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        hand.set(t("2026-03-10T00:05:00Z"));
        let deadline = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("fired")
            .unwrap();
        assert_eq!(hand.wall_of(deadline), t("2026-03-10T00:05:00Z"));
        assert_eq!(clock.now(), t("2026-03-10T00:05:00Z"));
    }

    #[tokio::test]
    async fn a_manual_clock_stands_still_while_real_time_passes() {
        let (clock, _hand) = Clock::manual(t("2026-03-10T00:00:00Z"));
        let (now, mono) = (clock.now(), clock.instant());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!((clock.now(), clock.instant()), (now, mono));
    }

    #[test]
    #[should_panic(expected = "only moves forward")]
    fn a_manual_clock_refuses_to_run_backwards() {
        let (_clock, hand) = Clock::manual(t("2026-03-10T00:00:00Z"));
        hand.set(t("2026-03-09T00:00:00Z"));
    }

    #[tokio::test]
    async fn the_system_clock_follows_the_system() {
        let clock = Clock::system();
        let before = Timestamp::now();
        let now = clock.now();
        assert!(now >= before && now <= Timestamp::now());
        let mut timer = clock.timer(clock.instant() + Duration::from_millis(10));
        tokio::time::timeout(Duration::from_secs(5), timer.fired())
            .await
            .expect("a system timer fires");
    }
}
