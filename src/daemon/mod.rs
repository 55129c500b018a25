//! The daemon's one entry point, [`run`], used by `main` and by the tests:
//! it wires the parts together (`wiring`), then runs the main loop below,
//! which hands probe reports and ticks to the engine, reloads on SIGHUP or
//! `POST /-/reload` through one path (`reload`), and stops gracefully
//! (`shutdown`) when the `shutdown` future completes.

mod descriptors;
pub mod malloc;
mod reload;
mod shutdown;
mod wiring;

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinHandle};

use crate::alert::dispatch::Dispatcher;
use crate::alert::rules::AlertRules;
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::Engine;
use crate::scheduler::{ProbeReport, Scheduler};
use crate::server::ReloadRequest;
use crate::store::writer::StoreWriter;
use crate::store::{Store, StoreError, WriteOp};
use crate::telemetry::Telemetry;

/// Why the daemon could not start, or did not stop cleanly. Each failure
/// names its own step, so that a panic in one is never reported as another.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("HTTP server failed: {0}")]
    Server(#[source] std::io::Error),
    #[error("HTTP server task panicked: {0}")]
    ServerPanicked(#[source] JoinError),
    #[error("cannot open the store: {0}")]
    Store(#[source] StoreError),
    #[error("store open task panicked: {0}")]
    StoreOpenPanicked(#[source] JoinError),
    #[error("cannot start the store writer: {0}")]
    Writer(#[source] std::io::Error),
    #[error("cannot record the start of this run in the store: {0}")]
    RunStart(#[source] StoreError),
    #[error("run start task panicked: {0}")]
    RunStartPanicked(#[source] JoinError),
    #[error("engine restore panicked: {0}")]
    EngineRestorePanicked(#[source] JoinError),
    #[error("cannot start alert delivery: {0}")]
    Alerts(#[from] crate::alert::dispatch::DispatchError),
}

/// How often the engine re-evaluates staleness, maintenance and SLAs.
const TICK: std::time::Duration = std::time::Duration::from_secs(5);
/// After a report arrives, how long the main loop lets others gather
/// before it takes them all in one turn. At 1,000 probes a second, waking
/// the loop for every report costs more (a thread hand-off each) than the
/// reports themselves; 20 ms is nothing next to a probe interval.
const REPORT_GATHER: std::time::Duration = std::time::Duration::from_millis(20);
/// Reports handled per turn of the main loop, at most, before the other
/// events (tick, reload, shutdown) get their turn.
const REPORT_BATCH: usize = 1024;

/// The running parts, owned by the main loop. Built by `Daemon::start`
/// (wiring.rs), switched by `Daemon::reload` (reload.rs), taken apart by
/// `Daemon::shutdown` (shutdown.rs).
struct Daemon {
    /// The configuration running now; a reload reads its main file again.
    config: Arc<Config>,
    /// The same configuration as the API sees it.
    shared_config: Arc<RwLock<Arc<Config>>>,
    telemetry: Arc<Telemetry>,
    store: Arc<dyn Store>,
    writer: StoreWriter,
    /// This run's row in the store, for heartbeats and its end.
    run_id: i64,
    engine: Engine,
    rules: AlertRules,
    dispatcher: Dispatcher,
    scheduler: Scheduler,
    /// Where probes report; each scheduler gets a clone.
    reports: mpsc::Sender<ProbeReport>,
    /// What `/readyz` answers.
    ready: Arc<AtomicBool>,
    server: JoinHandle<std::io::Result<()>>,
    stop_server: watch::Sender<bool>,
    /// Held while the daemon runs: no second daemon on this store.
    _store_lock: crate::store::lock::StoreLock,
    /// What time it is for every part that decides by the clock.
    clock: Clock,
}

/// What the main loop waits on besides the clock and the signals.
struct Inbox {
    reports: mpsc::Receiver<ProbeReport>,
    /// `POST /-/reload`, each with the channel for its answer.
    reloads: mpsc::Receiver<ReloadRequest>,
    /// The API added or removed a maintenance window.
    maintenance: mpsc::Receiver<()>,
}

/// Run the daemon until `shutdown` completes.
///
/// `config` is the validated configuration; reloads read its main file
/// (`config.files[0]`) again.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    run_on_clock(config, listener, shutdown, Clock::system()).await
}

/// [`run`] on the given clock: the system clock in production, a
/// [`crate::clock::ManualClock`]'s in tests that step through time.
pub async fn run_on_clock(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    clock: Clock,
) -> Result<(), DaemonError> {
    let (mut daemon, mut inbox) = Daemon::start(config, listener, clock).await?;

    let mut hangup = reload::hangup_signal();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    // Armed when a report has arrived: the loop then stops listening for
    // reports until it fires, and takes everything waiting at once.
    let gather = tokio::time::sleep(REPORT_GATHER);
    tokio::pin!(gather);
    let mut gathering = false;
    loop {
        tokio::select! {
            Some(report) = inbox.reports.recv(), if !gathering => {
                daemon.engine.on_report(report);
                gather.as_mut().reset(tokio::time::Instant::now() + REPORT_GATHER);
                gathering = true;
            }
            () = &mut gather, if gathering => {
                let mut taken = 0;
                while taken < REPORT_BATCH {
                    match inbox.reports.try_recv() {
                        Ok(report) => daemon.engine.on_report(report),
                        Err(_) => break,
                    }
                    taken += 1;
                }
                // A full batch means more are waiting: come back at once.
                if taken == REPORT_BATCH {
                    gather.as_mut().reset(tokio::time::Instant::now());
                } else {
                    gathering = false;
                }
            }
            _ = tick.tick() => daemon.tick(),
            Some(()) = inbox.maintenance.recv() => {
                load_adhoc(&mut daemon.engine, &daemon.store).await;
            }
            Some(answer) = inbox.reloads.recv() => {
                let outcome;
                (daemon, outcome) = daemon.reload(&mut inbox.reports).await;
                let _ = answer.send(outcome.map_err(|e| e.to_string()));
            }
            // The outcome is in the log (reload writes it): a signal has
            // no one to answer.
            _ = hangup.recv() => (daemon, _) = daemon.reload(&mut inbox.reports).await,
            _ = &mut shutdown => break,
        }
    }
    daemon.shutdown(inbox.reports).await
}

impl Daemon {
    /// Every [`TICK`]: staleness, maintenance and SLAs, then the alert
    /// rules and their notifications, and the run's heartbeat.
    fn tick(&mut self) {
        let Daemon {
            engine,
            rules,
            dispatcher,
            writer,
            telemetry,
            run_id,
            clock,
            ..
        } = self;
        let now = clock.now();
        engine.tick(now);
        let set = rules.evaluate(&engine.alert_view(now));
        let changes = rules.changes();
        // Never waits for the disk: the routing thread queues the
        // notifications with the writer.
        dispatcher.update(&set, changes);
        writer.submit(WriteOp::Heartbeat {
            run: *run_id,
            at: now,
        });
        tokio::task::spawn_blocking(release_freed_memory);
        let errors = writer.errors_total();
        let counted = telemetry.store_errors_total.get();
        if errors > counted {
            telemetry.store_errors_total.inc_by(errors - counted);
        }
        let replaced = writer.file_replaced_total();
        let counted = telemetry.store_file_replaced_total.get();
        if replaced > counted {
            telemetry
                .store_file_replaced_total
                .inc_by(replaced - counted);
        }
    }
}

/// Loading a large catalogue and restoring its state leave much freed but
/// fragmented heap behind; hand it back to the operating system.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: glibc's malloc_trim only releases free memory; it has no
        // preconditions and is safe to call from any thread.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Give the engine the maintenance windows added through the API.
async fn load_adhoc(engine: &mut Engine, store: &Arc<dyn Store>) {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || crate::server::api::load_adhoc(store.as_ref())).await
    {
        Ok(Ok(specs)) => engine.set_adhoc_maintenances(specs),
        Ok(Err(e)) => tracing::error!(error = %e, "cannot read maintenance windows from the store"),
        Err(e) => tracing::error!(error = %e, "maintenance load task failed"),
    }
}
