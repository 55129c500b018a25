//! The daemon's one entry point, [`run`], used by `main` and by the tests:
//! it serves the HTTP endpoints on the given listener, runs the scheduler
//! and the state engine, reloads on SIGHUP or `POST /-/reload`, and stops
//! gracefully when `shutdown` completes.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::alert::dispatch::Dispatcher;
use crate::alert::outbox::StoreOutbox;
use crate::alert::rules::AlertRules;
use crate::config::{Config, ConfigError};
use crate::engine::{Engine, Restorer, StatusBoard};
use crate::scheduler::Scheduler;
use crate::server::{AppState, ReloadRequest};
use crate::store::writer::{StoreWriter, WriterOptions};
use crate::store::{Store, WriteOp};
use crate::telemetry::{Telemetry, VersionLabels};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("HTTP server failed: {0}")]
    Server(#[source] std::io::Error),
    #[error("cannot open the store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot start the store writer: {0}")]
    Writer(#[source] std::io::Error),
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

/// Run the daemon until `shutdown` completes.
///
/// `config` is the validated configuration; reloads read its main file
/// (`config.files[0]`) again.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let telemetry = Arc::new(Telemetry::new());
    telemetry
        .build_info
        .get_or_create(&VersionLabels {
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
        .set(1);
    mark_loaded(&telemetry);

    // The store: opened (and migrated) before anything runs, so that a
    // store we cannot use stops the daemon at once with a clear error.
    let store_config = config.store.clone();
    let store: Arc<dyn Store> =
        tokio::task::spawn_blocking(move || crate::store::open(&store_config))
            .await
            .map_err(|e| DaemonError::Writer(std::io::Error::other(e)))??;
    let writer = StoreWriter::spawn(store.clone(), WriterOptions::for_config(&config.store))
        .map_err(DaemonError::Writer)?;
    let run_id = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.start_run(jiff::Timestamp::now()))
            .await
            .map_err(|e| DaemonError::Writer(std::io::Error::other(e)))??
    };

    let config = Arc::new(config);
    let status = Arc::new(RwLock::new(StatusBoard::default()));
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let ready = Arc::new(AtomicBool::new(false));
    let shared_config = Arc::new(RwLock::new(config.clone()));
    let (maint_tx, mut maint_rx) = mpsc::channel::<()>(16);
    let app = crate::server::router(AppState {
        telemetry: telemetry.clone(),
        status: status.clone(),
        reload: reload_tx,
        ready: ready.clone(),
        store: store.clone(),
        config: shared_config.clone(),
        api_token: config.server.api_token.clone(),
        maintenance_changed: maint_tx,
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|s| *s).await;
            })
            .await
    });

    let (report_tx, mut report_rx) = mpsc::channel(8192);
    let mut engine = {
        let (config, telemetry, writer, store) = (
            config.clone(),
            telemetry.clone(),
            writer.clone(),
            store.clone(),
        );
        tokio::task::spawn_blocking(move || {
            Engine::new(
                config,
                telemetry,
                status,
                Box::new(writer),
                Some(Restorer::new(store)),
            )
        })
        .await
        .map_err(|e| DaemonError::Writer(std::io::Error::other(e)))?
    };
    load_adhoc(&mut engine, &store).await;
    release_freed_memory();
    let mut rules = AlertRules::new(&config.alerting);
    let dispatcher = Dispatcher::start(
        &config.alerting,
        Arc::new(StoreOutbox(store.clone())),
        telemetry.clone(),
    )?;
    let mut scheduler = Scheduler::start(&config, telemetry.clone(), report_tx.clone());
    let mut current = config;
    ready.store(true, Ordering::Relaxed);
    tracing::info!(
        services = current.services.len(),
        checks = current.check_count(),
        location = %current.location,
        "continuity running"
    );

    let mut hangup = hangup_signal();
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
            Some(report) = report_rx.recv(), if !gathering => {
                engine.on_report(report);
                gather.as_mut().reset(tokio::time::Instant::now() + REPORT_GATHER);
                gathering = true;
            }
            () = &mut gather, if gathering => {
                let mut taken = 0;
                while taken < REPORT_BATCH {
                    match report_rx.try_recv() {
                        Ok(report) => engine.on_report(report),
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
            _ = tick.tick() => {
                let now = jiff::Timestamp::now();
                engine.tick(now);
                let set = rules.evaluate(&engine.alert_view(now));
                let changes = rules.changes();
                // Writes the outbox synchronously: a few milliseconds per
                // tick, only when something changed.
                dispatcher.update(&set, &changes);
                engine.set_network_degraded(rules.network_degraded());
                writer.submit(WriteOp::Heartbeat { run: run_id, at: now });
                tokio::task::spawn_blocking(release_freed_memory);
                let errors = writer.errors_total();
                let counted = telemetry.store_errors_total.get();
                if errors > counted {
                    telemetry.store_errors_total.inc_by(errors - counted);
                }
            }
            Some(()) = maint_rx.recv() => load_adhoc(&mut engine, &store).await,
            Some(answer) = reload_rx.recv() => {
                match reload(&current, &telemetry).await {
                    Ok(new) => {
                        let new = Arc::new(new);
                        (engine, scheduler) = switch(engine, scheduler, &new, &telemetry, &report_tx, &writer).await;
                        rules.apply_config(&new.alerting);
                        dispatcher.apply_config(&new.alerting);
                        *shared_config.write().expect("config lock") = new.clone();
                        current = new;
                        let _ = answer.send(Ok(()));
                    }
                    Err(e) => { let _ = answer.send(Err(e.to_string())); }
                }
            }
            _ = hangup.recv() => {
                if let Ok(new) = reload(&current, &telemetry).await {
                    let new = Arc::new(new);
                    (engine, scheduler) = switch(engine, scheduler, &new, &telemetry, &report_tx, &writer).await;
                    rules.apply_config(&new.alerting);
                    dispatcher.apply_config(&new.alerting);
                    *shared_config.write().expect("config lock") = new.clone();
                    current = new;
                }
            }
            _ = &mut shutdown => break,
        }
    }

    tracing::info!("shutting down");
    ready.store(false, Ordering::Relaxed);
    scheduler.stop().await;
    // Results that finished before the stop still reach the engine.
    drop(report_tx);
    while let Some(report) = report_rx.recv().await {
        engine.on_report(report);
    }
    engine.tick(jiff::Timestamp::now());
    // Notifications already queued get one last delivery round; the outbox
    // keeps the rest for the next start.
    dispatcher.shutdown().await;
    // Everything recorded reaches the disk before we say goodbye; a disk
    // that stays broken gets a minute, then what is queued is reported lost.
    if tokio::time::timeout(std::time::Duration::from_secs(60), writer.flush())
        .await
        .is_err()
    {
        tracing::error!(
            backlog = writer.backlog(),
            "the store did not accept the last writes within 60s; they are lost"
        );
    }
    let stopped = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.stop_run(run_id, jiff::Timestamp::now())).await
    };
    if let Ok(Err(e)) = stopped {
        tracing::error!(error = %e, "cannot record the end of this run");
    }
    let _ = stop_tx.send(true);
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(DaemonError::Server(e)),
        Err(e) => Err(DaemonError::Server(std::io::Error::other(e))),
    }
}

/// Stop the scheduler, switch the engine to the new configuration (state
/// of changed services is rebuilt from the store, off the async threads)
/// and start probing with it.
async fn switch(
    mut engine: Engine,
    scheduler: Scheduler,
    new: &Arc<Config>,
    telemetry: &Arc<Telemetry>,
    reports: &mpsc::Sender<crate::scheduler::ProbeReport>,
    writer: &StoreWriter,
) -> (Engine, Scheduler) {
    scheduler.stop().await;
    // Restoring reads what was written: let it reach the disk first.
    writer.flush().await;
    let cfg = new.clone();
    let engine = match tokio::task::spawn_blocking(move || {
        engine.apply_config(cfg);
        engine
    })
    .await
    {
        Ok(e) => e,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    let scheduler = Scheduler::start(new, telemetry.clone(), reports.clone());
    (engine, scheduler)
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

fn mark_loaded(telemetry: &Telemetry) {
    telemetry.config_last_reload_successful.set(1);
    telemetry
        .config_last_reload_success_timestamp
        .set(jiff::Timestamp::now().as_millisecond() as f64 / 1000.0);
}

/// Load the main configuration file again; a bad file is rejected whole
/// and the daemon keeps the configuration it has.
async fn reload(current: &Config, telemetry: &Telemetry) -> Result<Config, ConfigError> {
    let path: PathBuf = current.files.first().cloned().unwrap_or_default();
    let loaded = tokio::task::spawn_blocking(move || Config::load(&path))
        .await
        .unwrap_or_else(|e| {
            Err(ConfigError {
                issues: vec![crate::config::ConfigIssue {
                    place: crate::config::Place {
                        file: "reload".into(),
                        line: 0,
                        column: 0,
                    },
                    message: format!("reload task failed: {e}"),
                    hint: None,
                }],
            })
        });
    match loaded {
        Ok(new) => {
            mark_loaded(telemetry);
            tracing::info!(
                services = new.services.len(),
                checks = new.check_count(),
                "configuration reloaded"
            );
            Ok(new)
        }
        Err(e) => {
            telemetry.config_last_reload_successful.set(0);
            for issue in &e.issues {
                tracing::error!("configuration rejected: {issue}");
            }
            Err(e)
        }
    }
}

/// SIGHUP as a stream; on platforms without it, a stream that never fires.
fn hangup_signal() -> HangupSignal {
    HangupSignal(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok())
}

struct HangupSignal(Option<tokio::signal::unix::Signal>);

impl HangupSignal {
    async fn recv(&mut self) {
        match &mut self.0 {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
}
