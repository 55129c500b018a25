//! The one reload path, for SIGHUP and `POST /-/reload` alike: read the
//! main configuration file again; a file that does not load is rejected
//! whole and the daemon keeps the configuration it has, one that loads
//! replaces it everywhere (probing, engine, alert rules and receivers, the
//! configuration the API serves). Both outcomes are logged and show in
//! `continuity_config_last_reload_successful`. A reload never cancels the
//! probes of unchanged checks, never waits on a failing disk for long, and
//! an identical configuration leaves probing alone; settings only a
//! restart applies are logged and counted in
//! `continuity_config_reload_pending_restart`.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::Daemon;
use crate::config::{Config, ConfigError, ConfigIssue, Place};
use crate::scheduler::ProbeReport;
use crate::telemetry::Telemetry;

/// How long a reload waits for the store to take what was written before
/// it restores changed services from it. A failing disk must not hold the
/// reload (and `/-/reload`) forever: past this, restoring reads what is
/// on disk.
const FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Daemon {
    /// Reload the configuration. Owned and given back because the engine
    /// switches off the async threads (restoring the state of changed
    /// services reads the store). Probing goes on throughout: unchanged
    /// checks keep their probes in flight, and the reports that arrive
    /// meanwhile are taken from `reports` and applied afterwards, so no
    /// probe waits on the disk.
    pub(super) async fn reload(
        mut self,
        reports: &mut mpsc::Receiver<ProbeReport>,
    ) -> (Daemon, Result<(), ConfigError>) {
        let mut new = match load_again(&self.config, &self.telemetry).await {
            Ok(new) => new,
            Err(e) => return (self, Err(e)),
        };
        self.keep_restart_only_settings(&mut new);
        let new = if new.digest == self.config.digest && same_checks(&new, &self.config) {
            // The same files: probing, the engine and the store are left
            // alone, and the compiled checks running now are kept (a second
            // copy would double their memory). What *_file secrets and
            // certificates bring (the API token, TLS, receivers) is taken;
            // a check's rotated secret or CA is not this case (`same_checks`).
            tracing::info!("configuration unchanged; probing goes on as it was");
            let mut kept = (*self.config).clone();
            kept.server = new.server;
            kept.alerting = new.alerting;
            Arc::new(kept)
        } else {
            let new = Arc::new(new);
            self.scheduler.reconfigure(new.clone());
            // Restoring reads what was written: let it reach the disk first,
            // for a while.
            if tokio::time::timeout(FLUSH_LIMIT, self.writer.flush())
                .await
                .is_err()
            {
                tracing::warn!(
                    backlog = self.writer.backlog(),
                    "the store did not take the queued writes within 5s; changed services are restored from what is on disk"
                );
            }
            let (mut engine, cfg) = (self.engine, new.clone());
            let mut applying = tokio::task::spawn_blocking(move || {
                engine.apply_config(cfg);
                engine
            });
            let mut waiting = Vec::new();
            self.engine = loop {
                tokio::select! {
                    done = &mut applying => match done {
                        Ok(e) => break e,
                        Err(e) => std::panic::resume_unwind(e.into_panic()),
                    },
                    Some(r) = reports.recv() => waiting.push(r),
                }
            };
            for r in waiting {
                self.engine.on_report(r);
            }
            new
        };
        self.rules.apply_config(&new.alerting);
        self.dispatcher.apply_config(&new.alerting);
        *self.shared_config.write().expect("config lock") = new.clone();
        self.config = new;
        (self, Ok(()))
    }

    /// `server.listen` and `store.path` take effect only at a restart:
    /// keep the running ones in `new`, and say (log and
    /// `continuity_config_reload_pending_restart`) when the file asks for
    /// others.
    fn keep_restart_only_settings(&self, new: &mut Config) {
        let mut pending = Vec::new();
        if new.server.listen != self.config.server.listen {
            tracing::warn!(
                running = %self.config.server.listen,
                configured = %new.server.listen,
                "server.listen changed; it takes effect at the next restart"
            );
            new.server.listen = self.config.server.listen;
            pending.push("server.listen");
        }
        if new.store.path != self.config.store.path {
            tracing::warn!(
                running = %self.config.store.path.display(),
                configured = %new.store.path.display(),
                "store.path changed; it takes effect at the next restart"
            );
            new.store.path = self.config.store.path.clone();
            pending.push("store.path");
        }
        self.telemetry
            .config_reload_pending_restart
            .set(i64::from(!pending.is_empty()));
    }
}

/// Whether every check compiled to the same definition. The files'
/// digest alone misses a `password_file` or `ca_file` whose content
/// changed under the same path (a rotation): the checks' digests take the
/// content in, so such a reload recompiles probing with the new secret.
fn same_checks(a: &Config, b: &Config) -> bool {
    a.services.len() == b.services.len()
        && a.services.iter().zip(&b.services).all(|(a, b)| {
            a.checks.len() == b.checks.len()
                && a.checks
                    .iter()
                    .zip(&b.checks)
                    .all(|(a, b)| a.kind == b.kind)
        })
}

pub(super) fn mark_loaded(telemetry: &Telemetry) {
    telemetry.config_last_reload_successful.set(1);
    telemetry
        .config_last_reload_success_timestamp
        .set(jiff::Timestamp::now().as_millisecond() as f64 / 1000.0);
}

/// Load the main configuration file of `current` again, off the async
/// threads, and record and log the outcome.
async fn load_again(current: &Config, telemetry: &Telemetry) -> Result<Config, ConfigError> {
    let path: PathBuf = current.files.first().cloned().unwrap_or_default();
    let options = current.options.clone();
    let loaded = tokio::task::spawn_blocking(move || Config::load_with(&path, options))
        .await
        .unwrap_or_else(|e| {
            Err(ConfigError {
                issues: vec![ConfigIssue {
                    place: Place {
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
pub(super) fn hangup_signal() -> HangupSignal {
    HangupSignal(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok())
}

pub(super) struct HangupSignal(Option<tokio::signal::unix::Signal>);

impl HangupSignal {
    pub(super) async fn recv(&mut self) {
        match &mut self.0 {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
}
