//! Wiring: open the store, start its writer and record the run, serve the
//! HTTP endpoints, restore the engine, start alert delivery and probing,
//! in that order, and hand the running parts to the main loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{Daemon, DaemonError, Inbox, load_adhoc, release_freed_memory};
use crate::alert::dispatch::Dispatcher;
use crate::alert::outbox::StoreOutbox;
use crate::alert::rules::AlertRules;
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{Engine, Restorer, StatusBoard};
use crate::scheduler::Scheduler;
use crate::server::{AppState, ReloadRequest};
use crate::store::Store;
use crate::store::writer::{StoreWriter, WriterOptions};
use crate::telemetry::{Telemetry, VersionLabels};

impl Daemon {
    /// Start every part for `config`, serving HTTP on `listener`. Ready
    /// (`/readyz` answers 200) when it returns.
    pub(super) async fn start(
        config: Config,
        listener: TcpListener,
        clock: Clock,
    ) -> Result<(Daemon, Inbox), DaemonError> {
        let telemetry = Arc::new(Telemetry::new());
        telemetry
            .build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        super::reload::mark_loaded(&telemetry);

        // The store: opened (and migrated) before anything runs, so that a
        // store we cannot use stops the daemon at once with a clear error.
        // One daemon per store: the lock comes before anything is opened
        // or migrated.
        let store_config = config.store.clone();
        let (store_lock, store): (_, Arc<dyn Store>) = tokio::task::spawn_blocking(move || {
            let lock = crate::store::lock::lock_exclusive(&store_config.path)?;
            Ok((lock, crate::store::open(&store_config)?))
        })
        .await
        .map_err(DaemonError::StoreOpenPanicked)?
        .map_err(DaemonError::Store)?;
        let writer = StoreWriter::spawn(
            store.clone(),
            WriterOptions::for_config(&config.store, clock.clone()),
        )
        .map_err(DaemonError::Writer)?;
        let run_id = {
            let store = store.clone();
            let now = clock.now();
            tokio::task::spawn_blocking(move || store.start_run(now))
                .await
                .map_err(DaemonError::RunStartPanicked)?
                .map_err(DaemonError::RunStart)?
        };

        let config = Arc::new(config);
        let status = Arc::new(RwLock::new(StatusBoard::default()));
        let (reload_tx, reloads) = mpsc::channel::<ReloadRequest>(4);
        let ready = Arc::new(AtomicBool::new(false));
        let shared_config = Arc::new(RwLock::new(config.clone()));
        let (maint_tx, maintenance) = mpsc::channel::<()>(16);
        let app = crate::server::router(AppState {
            telemetry: telemetry.clone(),
            status: status.clone(),
            reload: reload_tx,
            ready: ready.clone(),
            store: store.clone(),
            config: shared_config.clone(),
            maintenance_changed: maint_tx,
            store_health: writer.health(),
            reload_gate: Default::default(),
            clock: clock.clone(),
        });

        // The probes' descriptors first; our server gets what is left.
        let nofile = super::descriptors::raise_nofile_limit();
        let options = crate::server::conn::ServeOptions {
            limits: config.server.limits,
            connection_cap: super::descriptors::connection_cap(
                config.server.limits.max_connections,
                nofile,
                super::descriptors::reserved(config.defaults.max_concurrency),
            ),
        };
        let (stop_server, stop_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(crate::server::conn::serve(
            listener,
            app,
            options,
            shared_config.clone(),
            telemetry.clone(),
            stop_rx.clone(),
        ));

        // Scheduled management reports: made up at start if one was missed.
        tokio::spawn(
            crate::report::weekly::schedule::ReportScheduler::new(
                shared_config.clone(),
                store.clone(),
                Some(status.clone()),
                Arc::new(clock.clone()),
                Some(telemetry.clone()),
            )
            .run(stop_rx),
        );

        let (reports, report_rx) = mpsc::channel(8192);
        let mut engine = {
            let (config, telemetry, writer, store, clock) = (
                config.clone(),
                telemetry.clone(),
                writer.clone(),
                store.clone(),
                clock.clone(),
            );
            tokio::task::spawn_blocking(move || {
                Engine::new(
                    config,
                    telemetry,
                    status,
                    Box::new(writer),
                    Some(Restorer::new(store)),
                    clock,
                )
            })
            .await
            .map_err(DaemonError::EngineRestorePanicked)?
        };
        load_adhoc(&mut engine, &store).await;
        release_freed_memory();
        let rules = AlertRules::new(&config.alerting);
        let dispatcher = Dispatcher::start(
            &config.alerting,
            Arc::new(StoreOutbox::with_writer(store.clone(), writer.clone())),
            telemetry.clone(),
        )?;
        let scheduler =
            Scheduler::start(&config, telemetry.clone(), reports.clone(), clock.clone());
        ready.store(true, Ordering::Relaxed);
        tracing::info!(
            services = config.services.len(),
            checks = config.check_count(),
            location = %config.location,
            "continuity running"
        );

        let daemon = Daemon {
            config,
            shared_config,
            telemetry,
            store,
            writer,
            run_id,
            engine,
            rules,
            dispatcher,
            scheduler,
            reports,
            ready,
            server,
            stop_server,
            _store_lock: store_lock,
            clock,
        };
        let inbox = Inbox {
            reports: report_rx,
            reloads,
            maintenance,
        };
        Ok((daemon, inbox))
    }
}
