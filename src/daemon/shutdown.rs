//! Graceful shutdown: stop probing, let the results already in flight
//! reach the engine, give queued notifications one last delivery round,
//! flush the store, record the end of the run, and only then close the
//! HTTP server (so `/metrics` answers until the very end).

use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::{Daemon, DaemonError};
use crate::scheduler::ProbeReport;

/// How long the store gets to take the last writes before what is still
/// queued is reported lost.
const FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

impl Daemon {
    /// Take the daemon apart; `reports` is the receiving end of
    /// [`Daemon::reports`], drained once probing has stopped.
    pub(super) async fn shutdown(
        self,
        mut reports: mpsc::Receiver<ProbeReport>,
    ) -> Result<(), DaemonError> {
        let Daemon {
            mut engine,
            scheduler,
            reports: report_tx,
            dispatcher,
            writer,
            store,
            run_id,
            ready,
            server,
            stop_server,
            _store_lock: store_lock,
            clock,
            ..
        } = self;
        tracing::info!("shutting down");
        ready.store(false, Ordering::Relaxed);
        scheduler.stop().await;
        // Results that finished before the stop still reach the engine.
        drop(report_tx);
        while let Some(report) = reports.recv().await {
            engine.on_report(report);
        }
        engine.tick(clock.now());
        // Notifications already queued get one last delivery round; the outbox
        // keeps the rest for the next start.
        dispatcher.shutdown().await;
        // Everything recorded reaches the disk before we say goodbye; a disk
        // that stays broken gets a minute, then what is queued is reported lost.
        if tokio::time::timeout(FLUSH_LIMIT, writer.flush())
            .await
            .is_err()
        {
            tracing::error!(
                backlog = writer.backlog(),
                "the store did not accept the last writes within 60s; they are lost"
            );
        }
        let stopped =
            tokio::task::spawn_blocking(move || store.stop_run(run_id, clock.now())).await;
        match stopped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot record the end of this run"),
            Err(e) => {
                tracing::error!(error = %e, "the task recording the end of this run panicked")
            }
        }
        // Another daemon may take the store only once this run's end is on
        // record.
        drop(store_lock);
        let _ = stop_server.send(true);
        match server.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DaemonError::Server(e)),
            Err(e) => Err(DaemonError::ServerPanicked(e)),
        }
    }
}
