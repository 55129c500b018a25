//! The one reload path, for SIGHUP and `POST /-/reload` alike: read the
//! main configuration file again; a file that does not load is rejected
//! whole and the daemon keeps the configuration it has, one that loads
//! replaces it everywhere (probing, engine, alert rules and receivers, the
//! configuration the API serves). Both outcomes are logged and show in
//! `continuity_config_last_reload_successful`.

use std::path::PathBuf;
use std::sync::Arc;

use super::Daemon;
use crate::config::{Config, ConfigError, ConfigIssue, Place};
use crate::scheduler::Scheduler;
use crate::telemetry::Telemetry;

impl Daemon {
    /// Reload the configuration. Owned and given back because the engine
    /// switches off the async threads (restoring the state of changed
    /// services reads the store).
    pub(super) async fn reload(mut self) -> (Daemon, Result<(), ConfigError>) {
        let new = match load_again(&self.config, &self.telemetry).await {
            Ok(new) => Arc::new(new),
            Err(e) => return (self, Err(e)),
        };
        self.scheduler.stop().await;
        // Restoring reads what was written: let it reach the disk first.
        self.writer.flush().await;
        let (mut engine, cfg) = (self.engine, new.clone());
        self.engine = match tokio::task::spawn_blocking(move || {
            engine.apply_config(cfg);
            engine
        })
        .await
        {
            Ok(e) => e,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        self.scheduler = Scheduler::start(&new, self.telemetry.clone(), self.reports.clone());
        self.rules.apply_config(&new.alerting);
        self.dispatcher.apply_config(&new.alerting);
        *self.shared_config.write().expect("config lock") = new.clone();
        self.config = new;
        (self, Ok(()))
    }
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
