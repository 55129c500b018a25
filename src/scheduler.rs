//! The scheduler: every check runs on its own interval, at an offset that
//! is stable per check and spread across the interval, so that thousands of
//! checks never fire together. A check never overlaps itself, a slow target
//! never delays another check, and total concurrency is bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use futures::FutureExt;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::config::{Check, Config};
use crate::probe::{self, ProbeOutcome};
use crate::telemetry::{CheckMetrics, Telemetry};

/// One finished probe, on its way to the state engine.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    pub service: Arc<str>,
    pub check: Arc<str>,
    /// When the probe started, wall-clock.
    pub at: jiff::Timestamp,
    /// `Err` when the monitor itself could not run the probe.
    pub outcome: Result<ProbeOutcome, String>,
}

/// The running schedule of one configuration: one driver task that keeps
/// every check's next slot in a heap and starts a task per due probe.
/// Sleeping checks cost a heap entry, not a task each.
pub struct Scheduler {
    driver: JoinHandle<()>,
    /// New configurations for the driver, switched in place.
    updates: mpsc::UnboundedSender<Arc<Config>>,
}

/// Offsets are multiples of this. At 10,000 checks every 10 s about ten
/// probes share a step and start in one wake-up of the scheduler, instead
/// of one wake-up (a thread sleeping and waking) per probe: 12% less CPU
/// per probe in `bench/probe_load`, with the same lag. 1,000 steps in a
/// 10 s interval still spread the checks evenly.
const SLOT_STEP_MS: u64 = 10;

/// A check's stable offset within its interval, so schedules survive
/// restarts and reloads unchanged and spread evenly.
pub fn offset(service: &str, check: &str, interval: Duration) -> Duration {
    // FNV-1a: unlike std's hasher, its output never changes between
    // Rust releases, so offsets stay put across upgrades.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in service.bytes().chain([b'/']).chain(check.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h % ms / SLOT_STEP_MS * SLOT_STEP_MS)
}

/// Milliseconds until the next slot `k * interval + offset` of wall-clock
/// time, so every instance (and every restart) probes at the same phase.
fn until_next_slot(interval: Duration, offset: Duration, now: jiff::Timestamp) -> Duration {
    let now_ms = now.as_millisecond() as u128;
    let interval_ms = interval.as_millis().max(1);
    let phase = (now_ms + interval_ms - offset.as_millis() % interval_ms) % interval_ms;
    Duration::from_millis((interval_ms - phase) as u64 % interval_ms as u64)
}

/// The slot after `due` that is still ahead of `now`: slots missed by a
/// long probe are skipped, not queued.
fn next_slot(due: Instant, interval: Duration, now: Instant) -> Instant {
    let mut next = due + interval;
    if next <= now {
        let behind = now - next;
        let skip = behind.as_nanos() / interval.as_nanos().max(1) + 1;
        next += interval * skip as u32;
    }
    next
}

impl Scheduler {
    /// Start probing every check of `config`.
    pub fn start(
        config: &Config,
        telemetry: Arc<Telemetry>,
        reports: mpsc::Sender<ProbeReport>,
        clock: Clock,
    ) -> Scheduler {
        let extra = verification_slots(config, &clock);
        let shared = Arc::new(Shared {
            clock,
            limit: Semaphore::new(config.defaults.max_concurrency),
            max_concurrency: config.defaults.max_concurrency,
            telemetry: telemetry.clone(),
            reports,
        });
        let jobs = jobs_of(config, &telemetry, &HashMap::new());
        telemetry.checks_configured.set(config.check_count() as i64);
        let (updates, updates_rx) = mpsc::unbounded_channel();
        Scheduler {
            driver: tokio::spawn(drive(jobs, extra, shared, updates_rx)),
            updates,
        }
    }

    /// Probe `config` from now on. Checks whose definition (kind, spec,
    /// interval, timeout) did not change keep their slots and their probes
    /// in flight: a reload, or a loop of them, never cancels those. Probes
    /// of changed or removed checks are abandoned.
    pub fn reconfigure(&self, config: Arc<Config>) {
        let _ = self.updates.send(config);
    }

    /// Stop probing (in-flight probes are abandoned).
    pub async fn stop(self) {
        self.driver.abort();
        let _ = self.driver.await;
    }
}

/// The jobs of `config`; a check in `carried` with the same definition
/// shares its `running` mark, so it does not overlap a probe started
/// under the previous configuration.
fn jobs_of(
    config: &Config,
    telemetry: &Telemetry,
    carried: &HashMap<(&str, &str), &Arc<Job>>,
) -> Vec<Arc<Job>> {
    let mut jobs = Vec::with_capacity(config.check_count());
    for service in &config.services {
        let service_id: Arc<str> = service.id.as_str().into();
        for check in &service.checks {
            let check_id: Arc<str> = check.id.as_str().into();
            let running = carried
                .get(&(service.id.as_str(), check.id.as_str()))
                .filter(|old| same_probe(&old.check, check))
                .map(|old| old.running.clone())
                .unwrap_or_default();
            jobs.push(Arc::new(Job {
                metrics: telemetry
                    .checks
                    .register(&service_id, &check_id, check.kind.name()),
                service: service_id.clone(),
                check_id,
                check: check.clone(),
                running,
            }));
        }
    }
    jobs
}

/// A cutover's verification round: every check of a service probed the
/// moment its cutover window ends, not at its next slot; by job index
/// (checks in configuration order, as [`jobs_of`] numbers them).
fn verification_slots(config: &Config, clock: &Clock) -> BinaryHeap<Reverse<(Instant, usize)>> {
    let wall = clock.now();
    let mut slots = BinaryHeap::new();
    let mut first = 0;
    for service in &config.services {
        let ends = service
            .migrations
            .iter()
            .filter(|m| m.cutover.end > wall)
            .map(|m| clock.instant_at(m.cutover.end));
        for end in ends {
            for c in 0..service.checks.len() {
                slots.push(Reverse((end, first + c)));
            }
        }
        first += service.checks.len();
    }
    slots
}

/// Whether two checks probe alike: same compiled spec (by digest), same
/// interval and timeout. Thresholds and criticality are the engine's.
fn same_probe(a: &Check, b: &Check) -> bool {
    a.kind == b.kind && a.interval == b.interval && a.timeout == b.timeout
}

/// What every probe task shares.
struct Shared {
    clock: Clock,
    limit: Semaphore,
    max_concurrency: usize,
    telemetry: Arc<Telemetry>,
    reports: mpsc::Sender<ProbeReport>,
}

struct Job {
    service: Arc<str>,
    check_id: Arc<str>,
    check: Arc<Check>,
    metrics: CheckMetrics,
    /// A probe of this check is in flight: its next slot is skipped.
    /// Shared with the job of the same check after a reload that left it
    /// unchanged.
    running: Arc<AtomicBool>,
}

/// The due slots of `jobs`, each check's first slot after now.
fn first_slots(
    jobs: &[Arc<Job>],
    start: Instant,
    now: jiff::Timestamp,
) -> BinaryHeap<Reverse<(Instant, usize)>> {
    jobs.iter()
        .enumerate()
        .map(|(i, j)| {
            let interval = j.check.interval;
            let first = until_next_slot(interval, offset(&j.service, &j.check_id, interval), now);
            Reverse((start + first, i))
        })
        .collect()
}

/// The running schedule, owned by the driver task.
struct Schedule {
    jobs: Vec<Arc<Job>>,
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    /// One-off slots (cutover verification rounds), by job index.
    extra: BinaryHeap<Reverse<(Instant, usize)>>,
    /// The probe tasks in flight, by job, to abandon one when its check
    /// changes. Only while they run: a handle kept after its task ended
    /// would keep the task's memory (10,000 finished probes, 16 MiB).
    tasks: HashMap<usize, AbortHandle>,
    /// Which job each task in flight probes.
    jobs_of_tasks: HashMap<tokio::task::Id, usize>,
    shared: Arc<Shared>,
}

impl Schedule {
    /// Collect finished probe tasks and drop their handles.
    fn reap(&mut self, running: &mut JoinSet<()>) {
        while let Some(done) = running.try_join_next_with_id() {
            let id = match done {
                Ok((id, ())) => id,
                Err(e) => e.id(),
            };
            if let Some(i) = self.jobs_of_tasks.remove(&id) {
                self.tasks.remove(&i);
            }
        }
    }

    /// Switch to `config`. A carried check keeps its next slot and its
    /// probe in flight; the probe of a changed or removed check is aborted.
    fn reconfigure(&mut self, config: &Config) {
        let telemetry = self.shared.telemetry.clone();
        let mut next: HashMap<usize, Instant> = HashMap::with_capacity(self.jobs.len());
        for Reverse((at, i)) in self.due.drain() {
            next.insert(i, at);
        }
        let by_key: HashMap<(&str, &str), &Arc<Job>> = self
            .jobs
            .iter()
            .map(|j| ((&*j.service, &*j.check_id), j))
            .collect();
        let old_index: HashMap<(&str, &str), usize> = self
            .jobs
            .iter()
            .enumerate()
            .map(|(i, j)| ((&*j.service, &*j.check_id), i))
            .collect();
        let jobs = jobs_of(config, &telemetry, &by_key);
        let clock = self.shared.clock.clone();
        let (start, now) = (clock.instant(), clock.now());
        let mut due = BinaryHeap::with_capacity(jobs.len());
        let mut tasks: HashMap<usize, AbortHandle> = HashMap::new();
        let mut kept = vec![false; self.jobs.len()];
        for (i, job) in jobs.iter().enumerate() {
            let old = old_index
                .get(&(&*job.service, &*job.check_id))
                .copied()
                .filter(|&o| Arc::ptr_eq(&self.jobs[o].running, &job.running));
            let at = match old {
                Some(o) => {
                    kept[o] = true;
                    if let Some(t) = self.tasks.remove(&o) {
                        tasks.insert(i, t);
                    }
                    next.get(&o).copied()
                }
                None => None,
            };
            let at = at.unwrap_or_else(|| {
                let interval = job.check.interval;
                start
                    + until_next_slot(interval, offset(&job.service, &job.check_id, interval), now)
            });
            due.push(Reverse((at, i)));
        }
        drop(by_key);
        drop(old_index);
        let mut abandoned = 0;
        // What is left in `tasks` probes changed or removed checks.
        for (_, t) in self.tasks.drain() {
            abandoned += usize::from(!t.is_finished());
            t.abort();
        }
        self.jobs_of_tasks = tasks.iter().map(|(&i, t)| (t.id(), i)).collect();
        if config.defaults.max_concurrency != self.shared.max_concurrency {
            self.shared = Arc::new(Shared {
                clock: clock.clone(),
                limit: Semaphore::new(config.defaults.max_concurrency),
                max_concurrency: config.defaults.max_concurrency,
                telemetry: telemetry.clone(),
                reports: self.shared.reports.clone(),
            });
        }
        telemetry.checks_configured.set(config.check_count() as i64);
        tracing::debug!(
            checks = jobs.len(),
            carried = kept.iter().filter(|k| **k).count(),
            abandoned,
            "schedule switched to the new configuration"
        );
        // Verification rounds still ahead, for the checks as they are now.
        self.extra = verification_slots(config, &clock);
        self.jobs = jobs;
        self.due = due;
        self.tasks = tasks;
    }
}

/// Keep every check's next slot and start a probe task when one is due.
/// The next slot is taken when a probe starts; if the probe is still
/// running when that slot comes, the slot is skipped, so a check never
/// overlaps itself. Probes do not wake the driver when they finish: at
/// 1,000 probes a second that would double its turns. Finished tasks are
/// collected whenever the driver wakes anyway. A new configuration from
/// `updates` switches the schedule in place (`Schedule::reconfigure`).
/// Dropping this future (at stop) aborts the probes in flight.
///
/// `extra` holds one-off slots (cutover verification rounds): due once,
/// then gone; skipped like any slot when the check is still probing.
async fn drive(
    jobs: Vec<Arc<Job>>,
    extra: BinaryHeap<Reverse<(Instant, usize)>>,
    shared: Arc<Shared>,
    mut updates: mpsc::UnboundedReceiver<Arc<Config>>,
) {
    let clock = shared.clock.clone();
    let start = clock.instant();
    let mut s = Schedule {
        due: first_slots(&jobs, start, clock.now()),
        extra,
        tasks: HashMap::new(),
        jobs_of_tasks: HashMap::new(),
        jobs,
        shared,
    };
    let mut running: JoinSet<()> = JoinSet::new();
    let mut timer = clock.timer(start);
    let mut listening = true;
    loop {
        let next = s.due.peek().map(|Reverse((at, _))| *at);
        let next_extra = s.extra.peek().map(|Reverse((at, _))| *at);
        let next = next.into_iter().chain(next_extra).min();
        if let Some(at) = next
            && timer.deadline() != at
        {
            timer.reset(at);
        }
        tokio::select! {
            update = updates.recv(), if listening => {
                match update {
                    Some(config) => s.reconfigure(&config),
                    None => listening = false,
                }
                continue;
            }
            () = timer.fired(), if next.is_some() => {}
            // No checks and no more configurations: stay alive until
            // stopped.
            () = std::future::pending(), if next.is_none() && !listening => {}
        }
        s.reap(&mut running);
        let now = clock.instant();
        while let Some(Reverse((at, i))) = s.extra.peek().copied() {
            if at > now {
                break;
            }
            s.extra.pop();
            let job = &s.jobs[i];
            if job.running.swap(true, Ordering::AcqRel) {
                continue;
            }
            let task = running.spawn(run_once(job.clone(), at, s.shared.clone()));
            s.jobs_of_tasks.insert(task.id(), i);
            s.tasks.insert(i, task);
        }
        while let Some(mut top) = s.due.peek_mut() {
            let Reverse((at, i)) = *top;
            if at > now {
                break;
            }
            let job = &s.jobs[i];
            // The check's next slot replaces this one in place: one sift
            // instead of a pop and a push.
            *top = Reverse((next_slot(at, job.check.interval, now), i));
            drop(top);
            // Still probing since an earlier slot: this one is missed.
            if job.running.swap(true, Ordering::AcqRel) {
                continue;
            }
            let task = running.spawn(run_once(job.clone(), at, s.shared.clone()));
            s.jobs_of_tasks.insert(task.id(), i);
            s.tasks.insert(i, task);
        }
    }
}

/// Counts a probe in `continuity_probes_in_flight` until dropped, also
/// when the probe is abandoned or panics.
struct InFlight<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> InFlight<'a> {
    fn new(g: &'a prometheus_client::metrics::gauge::Gauge) -> Self {
        g.inc();
        InFlight(g)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Clears a check's `running` mark when its probe ends, also when the
/// probe is abandoned or panics.
struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// One probe of one check, due at `due`.
async fn run_once(job: Arc<Job>, due: Instant, shared: Arc<Shared>) {
    let _running = Running(&job.running);
    let work = async {
        let Ok(_permit) = shared.limit.acquire().await else {
            return;
        };
        let t = &shared.telemetry;
        let lag = shared.clock.instant().saturating_duration_since(due);
        t.scheduler_lag.observe(lag.as_secs_f64());
        let in_flight = InFlight::new(&t.probes_in_flight);
        let at = shared.clock.now();
        let result = probe::run(&job.check.kind, job.check.timeout).await;
        drop(in_flight);
        drop(_permit);
        let outcome = match result {
            Ok(o) => {
                job.metrics.observe(&o);
                Ok(o)
            }
            Err(e) => {
                job.metrics.monitor_error();
                if let probe::ProbeError::Resource(s) = &e {
                    t.probe_resource_errors_total
                        .get_or_create(&crate::telemetry::ResourceLabels {
                            kind: job.check.kind.name().to_string(),
                            resource: s.resource.to_string(),
                        })
                        .inc();
                    tracing::error!(service = %job.service, check = %job.check_id, error = %e, "the monitor is out of {}: this probe says nothing about the service, its time counts as unknown", s.resource);
                } else {
                    tracing::warn!(service = %job.service, check = %job.check_id, error = %e, "probe could not run");
                }
                Err(e.to_string())
            }
        };
        let report = ProbeReport {
            service: job.service.clone(),
            check: job.check_id.clone(),
            at,
            outcome,
        };
        let _ = shared.reports.send(report).await;
    };
    // A bug in a probe must not end the schedule of its check.
    if std::panic::AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .is_err()
    {
        tracing::error!(service = %job.service, check = %job.check_id, "probe panicked; the check stays scheduled");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stable_and_inside_the_interval() {
        let i = Duration::from_secs(10);
        let a = offset("portal", "home", i);
        assert_eq!(a, offset("portal", "home", i));
        assert!(a < i);
        for n in 0..100 {
            let o = offset("svc", &format!("c{n}"), i);
            assert_eq!(o.as_millis() % SLOT_STEP_MS as u128, 0, "{o:?}");
        }
        let distinct: std::collections::HashSet<_> = (0..1000)
            .map(|n| offset("svc", &format!("c{n}"), i).as_millis() / 100)
            .collect();
        // 1,000 checks over 100 buckets of 100 ms: spread, not bunched.
        assert!(distinct.len() > 90, "only {} buckets used", distinct.len());
    }

    #[test]
    fn missed_slots_are_skipped_not_queued() {
        let t0 = Instant::now();
        let i = Duration::from_secs(10);
        assert_eq!(next_slot(t0, i, t0 + Duration::from_secs(3)), t0 + i);
        // A probe that ran 25 s: the slots at 10 s and 20 s are gone.
        assert_eq!(
            next_slot(t0, i, t0 + Duration::from_secs(25)),
            t0 + Duration::from_secs(30)
        );
    }

    /// A target that accepts and never says a word.
    async fn silent_target() -> std::net::SocketAddr {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                held.push(silent.accept().await.unwrap());
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_storm_of_reloads_never_cancels_the_probe_of_an_unchanged_check() {
        // A target that accepts and never answers: its probe takes the
        // whole timeout, and a reload that cancelled it would hide the
        // outage (no result, the check stays unknown).
        let sa = silent_target().await;
        let yaml = format!(
            "services:\n  - id: s\n    checks:\n      - id: hung\n        interval: 2s\n        timeout: 1500ms\n        tcp:\n          target: {sa}\n          expect: hello\n"
        );
        let config = Arc::new(Config::from_str("t.yaml", &yaml).unwrap());
        let telemetry = Arc::new(Telemetry::new());
        let (tx, mut rx) = mpsc::channel(100);
        let scheduler = Scheduler::start(&config, telemetry.clone(), tx, Clock::system());
        let mut failures = 0;
        let end = Instant::now() + Duration::from_millis(4500);
        let mut storm = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = storm.tick() => {
                    // The same definition, loaded anew each time.
                    scheduler.reconfigure(Arc::new(Config::from_str("t.yaml", &yaml).unwrap()));
                }
                r = rx.recv() => {
                    let r = r.unwrap();
                    assert_eq!(r.outcome.unwrap().reason(), Some(crate::probe::FailureReason::Timeout));
                    failures += 1;
                }
                () = tokio::time::sleep_until(end) => break,
            }
        }
        scheduler.stop().await;
        // Two slots (every 2 s) fall within 4.5 s; each probe takes 1.5 s.
        assert!(failures >= 1, "no probe finished during the reloads");
    }

    #[tokio::test]
    async fn a_changed_check_is_probed_with_its_new_definition_at_once() {
        let sa = silent_target().await;
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ca = closed.local_addr().unwrap();
        drop(closed);
        let yaml = |target| {
            format!(
                "services:\n  - id: s\n    checks:\n      - id: c\n        interval: 1s\n        timeout: 900ms\n        tcp:\n          target: {target}\n          expect: hello\n"
            )
        };
        let telemetry = Arc::new(Telemetry::new());
        let (tx, mut rx) = mpsc::channel(100);
        let scheduler = Scheduler::start(
            &Config::from_str("t.yaml", &yaml(sa)).unwrap(),
            telemetry.clone(),
            tx,
            Clock::system(),
        );
        // Wait for the first (hanging) probe, then change the target.
        while telemetry.probes_in_flight.get() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        scheduler.reconfigure(Arc::new(Config::from_str("t.yaml", &yaml(ca)).unwrap()));
        let r = tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .expect("a report")
            .unwrap();
        // The probe of the old target was abandoned, not reported.
        assert_eq!(
            r.outcome.unwrap().reason(),
            Some(crate::probe::FailureReason::Refused)
        );
        scheduler.stop().await;
    }

    #[tokio::test]
    async fn every_check_of_a_service_is_probed_the_moment_its_cutover_window_ends() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                held.push(listener.accept().await.unwrap());
            }
        });
        // Hourly checks: without the extra slot the next probe would be
        // up to an hour away.
        let end = jiff::Timestamp::now() + jiff::SignedDuration::from_millis(1500);
        let start = end - jiff::SignedDuration::from_hours(1);
        let yaml = format!(
            "services:\n  - id: s\n    migration:\n      from: old\n      to: new\n      cutover: {{ start: {start}, end: {end}, reference: CHG-1 }}\n    checks:\n      - id: a\n        interval: 1h\n        tcp: {{ target: \"{addr}\" }}\n      - id: b\n        interval: 1h\n        tcp: {{ target: \"{addr}\" }}\n"
        );
        let config = Config::from_str("t.yaml", &yaml).unwrap();
        let (tx, mut rx) = mpsc::channel(100);
        let scheduler = Scheduler::start(&config, Arc::new(Telemetry::new()), tx, Clock::system());
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut round = Vec::new();
        while let Ok(Some(r)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            if r.at >= end {
                round.push((r.check.to_string(), r.at));
            }
            if round.len() == 2 {
                break;
            }
        }
        scheduler.stop().await;
        round.sort();
        let checks: Vec<&str> = round.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(checks, ["a", "b"]);
        for (_, at) in &round {
            assert!(
                *at - end < jiff::SignedDuration::from_millis(500),
                "{at} vs {end}"
            );
        }
    }

    #[tokio::test]
    async fn on_a_manual_clock_probes_start_at_their_slots_and_the_verification_round_at_the_window_end()
     {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                held.push(listener.accept().await.unwrap());
            }
        });
        let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let yaml = format!(
            "services:\n  - id: s\n    migration:\n      from: old\n      to: new\n      cutover: {{ start: 2026-03-10T00:03:00Z, end: 2026-03-10T00:07:30.250Z, reference: CHG-1 }}\n    checks:\n      - id: a\n        interval: 5m\n        tcp: {{ target: \"{addr}\" }}\n"
        );
        let config = Config::from_str("t.yaml", &yaml).unwrap();
        let o = offset("s", "a", Duration::from_secs(300));
        let slot = |k: i64| {
            t("2026-03-10T00:00:00Z")
                + jiff::SignedDuration::from_secs(300 * k)
                + jiff::SignedDuration::try_from(o).unwrap()
        };
        let (clock, hand) = Clock::manual(t("2026-03-10T00:00:00Z"));
        let (tx, mut rx) = mpsc::channel(100);
        let scheduler = Scheduler::start(&config, Arc::new(Telemetry::new()), tx, clock);
        let next = |rx: &mut mpsc::Receiver<ProbeReport>| {
            let r = rx.try_recv();
            r.map(|r| r.at).ok()
        };
        let wait = async |rx: &mut mpsc::Receiver<ProbeReport>| {
            tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("a report")
                .unwrap()
                .at
        };
        // A millisecond before the slot nothing runs, however long we wait.
        hand.set(slot(0) - jiff::SignedDuration::from_millis(1));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(next(&mut rx), None);
        hand.set(slot(0));
        assert_eq!(wait(&mut rx).await, slot(0));
        // The window's end comes between two slots: the check is probed
        // at that instant, not at its next slot.
        let end = t("2026-03-10T00:07:30.250Z");
        let mut expected = vec![slot(1), end, slot(2)];
        expected.sort();
        let mut seen = Vec::new();
        for &at in &expected {
            hand.set(at);
            seen.push(wait(&mut rx).await);
        }
        assert_eq!(seen, expected);
        scheduler.stop().await;
    }

    #[tokio::test]
    async fn every_check_runs_each_interval_and_a_hung_one_delays_no_other() {
        // One target answers at once; the other accepts and never answers.
        let quick = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (qa, sa) = (quick.local_addr().unwrap(), silent.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let (mut s, _) = quick.accept().await.unwrap();
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let _ = s.write_all(b"hello\n").await;
                });
            }
        });
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                held.push(silent.accept().await.unwrap());
            }
        });
        let mut yaml = String::from("services:\n  - id: s\n    checks:\n");
        for n in 0..5 {
            yaml.push_str(&format!(
                "      - id: quick{n}\n        interval: 1s\n        timeout: 500ms\n        tcp:\n          target: {qa}\n          expect: hello\n"
            ));
        }
        yaml.push_str(&format!(
            "      - id: hung\n        interval: 1s\n        timeout: 900ms\n        tcp:\n          target: {sa}\n          expect: hello\n"
        ));
        let config = Config::from_str("t.yaml", &yaml).unwrap();
        let telemetry = Arc::new(Telemetry::new());
        let (tx, mut rx) = mpsc::channel(100);
        let scheduler = Scheduler::start(&config, telemetry.clone(), tx, Clock::system());
        let mut seen: std::collections::HashMap<String, Vec<(Instant, bool)>> = Default::default();
        let end = Instant::now() + Duration::from_millis(3500);
        while let Ok(Some(r)) = tokio::time::timeout_at(end, rx.recv()).await {
            let ok = r.outcome.as_ref().is_ok_and(|o| o.success());
            seen.entry(r.check.to_string())
                .or_default()
                .push((Instant::now(), ok));
        }
        scheduler.stop().await;
        for n in 0..5 {
            let runs = &seen[&format!("quick{n}")];
            assert!(runs.len() >= 3, "quick{n} ran {} times", runs.len());
            assert!(runs.iter().all(|r| r.1), "quick{n} failed");
        }
        let hung = &seen["hung"];
        assert!(hung.len() >= 2 && hung.iter().all(|r| !r.1), "{hung:?}");
        // Never overlapping: its reports are at least a timeout apart.
        for w in hung.windows(2) {
            assert!(w[1].0 - w[0].0 >= Duration::from_millis(500));
        }
        // Stopped: nothing is left in flight.
        assert_eq!(telemetry.probes_in_flight.get(), 0);
    }

    #[tokio::test]
    async fn a_probe_longer_than_its_interval_skips_slots_instead_of_overlapping() {
        // A target that accepts and never answers: each probe lasts its
        // whole timeout, three intervals long.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                held.push(silent.accept().await.unwrap());
                log.lock().unwrap().push(Instant::now());
            }
        });
        let yaml = format!(
            "services:\n  - id: s\n    checks:\n      - id: slow\n        interval: 1s\n        timeout: 1s\n        tcp:\n          target: {addr}\n          expect: hello\n"
        );
        let mut config = Config::from_str("t.yaml", &yaml).unwrap();
        // Validation keeps a timeout within the interval; a prober that
        // overruns it (or the backstop's grace) must still not overlap.
        let service = Arc::make_mut(&mut config.services[0]);
        let check = Arc::get_mut(&mut service.checks[0]).expect("not shared yet");
        check.interval = Duration::from_millis(300);
        check.timeout = Duration::from_millis(1000);
        let telemetry = Arc::new(Telemetry::new());
        let (tx, mut rx) = mpsc::channel(100);
        let scheduler = Scheduler::start(&config, telemetry.clone(), tx, Clock::system());
        let end = Instant::now() + Duration::from_millis(3200);
        let mut reports = 0;
        while let Ok(Some(r)) = tokio::time::timeout_at(end, rx.recv()).await {
            assert!(!r.outcome.unwrap().success());
            reports += 1;
            assert!(telemetry.probes_in_flight.get() <= 1);
        }
        scheduler.stop().await;
        let accepted = accepted.lock().unwrap().clone();
        // Overlapping, a probe would start every 300 ms: 10 or more.
        assert!(
            (2..=4).contains(&accepted.len()),
            "{} probes started",
            accepted.len()
        );
        for w in accepted.windows(2) {
            assert!(
                w[1] - w[0] >= Duration::from_millis(950),
                "{:?}",
                w[1] - w[0]
            );
        }
        assert!(reports >= 2, "{reports} reports");
    }

    #[test]
    fn next_slot_is_within_one_interval() {
        let i = Duration::from_secs(10);
        for n in 0..50 {
            let d = until_next_slot(i, Duration::from_millis(n * 199), jiff::Timestamp::now());
            assert!(d < i);
        }
    }
}
