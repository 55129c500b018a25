//! The scheduler: every check runs on its own interval, at an offset that
//! is stable per check and spread across the interval, so that thousands of
//! checks never fire together. A check never overlaps itself, a slow target
//! never delays another check, and total concurrency is bounded.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

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

/// The running probe tasks of one configuration.
pub struct Scheduler {
    tasks: JoinSet<()>,
}

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
    Duration::from_millis(h % ms)
}

/// Milliseconds until the next slot `k * interval + offset` of wall-clock
/// time, so every instance (and every restart) probes at the same phase.
fn until_next_slot(interval: Duration, offset: Duration) -> Duration {
    let now_ms = jiff::Timestamp::now().as_millisecond() as u128;
    let interval_ms = interval.as_millis().max(1);
    let phase = (now_ms + interval_ms - offset.as_millis() % interval_ms) % interval_ms;
    Duration::from_millis((interval_ms - phase) as u64 % interval_ms as u64)
}

impl Scheduler {
    /// Start one task per check of `config`.
    pub fn start(
        config: &Config,
        telemetry: Arc<Telemetry>,
        reports: mpsc::Sender<ProbeReport>,
    ) -> Scheduler {
        let limit = Arc::new(Semaphore::new(config.defaults.max_concurrency));
        let mut tasks = JoinSet::new();
        for service in &config.services {
            let service_id: Arc<str> = service.id.as_str().into();
            for check in &service.checks {
                let check_id: Arc<str> = check.id.as_str().into();
                let job = Job {
                    metrics: telemetry
                        .checks
                        .register(&service_id, &check_id, check.kind.name()),
                    service: service_id.clone(),
                    check_id,
                    check: check.clone(),
                };
                tasks.spawn(job.run(telemetry.clone(), limit.clone(), reports.clone()));
            }
        }
        telemetry.checks_configured.set(config.check_count() as i64);
        Scheduler { tasks }
    }

    /// Stop every probe task (in-flight probes are abandoned).
    pub async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

struct Job {
    service: Arc<str>,
    check_id: Arc<str>,
    check: Arc<Check>,
    metrics: CheckMetrics,
}

impl Job {
    async fn run(
        self,
        telemetry: Arc<Telemetry>,
        limit: Arc<Semaphore>,
        reports: mpsc::Sender<ProbeReport>,
    ) {
        let interval = self.check.interval;
        let check_id = self.check_id.clone();
        let mut due = Instant::now()
            + until_next_slot(interval, offset(&self.service, &self.check.id, interval));
        loop {
            tokio::time::sleep_until(due).await;
            let Ok(_permit) = limit.acquire().await else {
                return;
            };
            let lag = Instant::now().saturating_duration_since(due);
            telemetry.scheduler_lag.observe(lag.as_secs_f64());
            telemetry.probes_in_flight.inc();
            let at = jiff::Timestamp::now();
            // Boxed: a probe's state (TLS, HTTP, SIP machinery) is many
            // kilobytes; inline, every sleeping task of 10,000 would carry it.
            let result = Box::pin(probe::run(&self.check.kind, self.check.timeout)).await;
            telemetry.probes_in_flight.dec();
            drop(_permit);
            let outcome = match result {
                Ok(o) => {
                    self.metrics.observe(&o);
                    Ok(o)
                }
                Err(e) => {
                    self.metrics.monitor_error();
                    tracing::warn!(service = %self.service, check = %check_id, error = %e, "probe could not run");
                    Err(e.to_string())
                }
            };
            let report = ProbeReport {
                service: self.service.clone(),
                check: check_id.clone(),
                at,
                outcome,
            };
            if Box::pin(reports.send(report)).await.is_err() {
                return;
            }
            // Never overlap: the next run is the next slot after this one
            // finished; slots missed by a long probe are skipped, not queued.
            due += interval;
            let now = Instant::now();
            if due <= now {
                let behind = now - due;
                let skip = behind.as_nanos() / interval.as_nanos().max(1) + 1;
                due += interval * skip as u32;
            }
        }
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
        let distinct: std::collections::HashSet<_> = (0..1000)
            .map(|n| offset("svc", &format!("c{n}"), i).as_millis() / 100)
            .collect();
        // 1,000 checks over 100 buckets of 100 ms: spread, not bunched.
        assert!(distinct.len() > 90, "only {} buckets used", distinct.len());
    }

    #[test]
    fn a_sleeping_check_task_is_small() {
        let check = crate::config::Config::from_str(
            "t.yaml",
            "services:\n  - id: s\n    checks:\n      - id: c\n        http:\n          url: http://127.0.0.1:1/\n",
        )
        .unwrap()
        .services[0]
            .checks[0]
            .clone();
        let telemetry = Arc::new(Telemetry::new());
        let job = Job {
            service: "s".into(),
            check_id: "c".into(),
            check,
            metrics: telemetry.checks.register(&"s".into(), &"c".into(), "http"),
        };
        let (tx, _rx) = mpsc::channel(1);
        let fut = job.run(telemetry, Arc::new(Semaphore::new(1)), tx);
        // Neither the check spec nor the probe state lives in the task.
        assert!(
            std::mem::size_of_val(&fut) < 4096,
            "{} bytes",
            std::mem::size_of_val(&fut)
        );
    }

    #[test]
    fn next_slot_is_within_one_interval() {
        let i = Duration::from_secs(10);
        for n in 0..50 {
            let d = until_next_slot(i, Duration::from_millis(n * 199));
            assert!(d < i);
        }
    }
}
