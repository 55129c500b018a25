//! `continuity migration …`: the subcommands and their bodies, so that
//! `main.rs` only parses and prints. They read the configuration and, when
//! it exists, the store (the recorded verification rounds and history).

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::status::{migration_status, render_table};
use crate::config::Config;
use crate::store::{StoreError, VerificationRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Subcommand)]
pub enum MigrationCommand {
    /// Every service with its phase, supplier, next cutover, days of
    /// hypercare left and the verification of its last cutover.
    Status {
        #[arg(long, short, default_value = "continuity.yaml")]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Before/after: the service's baseline against its hypercare and
    /// steady phases (availability, incidents, MTTR, latency), with a
    /// verdict per measure and overall.
    Compare {
        #[arg(long, short, default_value = "continuity.yaml")]
        config: PathBuf,
        /// The service to compare.
        #[arg(long)]
        service: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

impl MigrationCommand {
    /// The configuration file the command reads.
    pub fn config(&self) -> &Path {
        match self {
            MigrationCommand::Status { config, .. } | MigrationCommand::Compare { config, .. } => {
                config
            }
        }
    }
}

/// A migration command that could not run.
#[derive(Debug, thiserror::Error)]
pub enum MigrationCliError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Compare(#[from] super::compare::CompareError),
    #[error(
        "no store at {0} (store.path): nothing has been recorded yet; run the daemon or import history first"
    )]
    NoStore(String),
}

/// Run `cmd` against the loaded `config` as of `now`; returns what to print.
pub fn execute(
    cmd: &MigrationCommand,
    config: &Config,
    now: Timestamp,
) -> Result<String, MigrationCliError> {
    match cmd {
        MigrationCommand::Status { format, .. } => {
            let rows = migration_status(config, &recorded_verifications(config)?, now);
            Ok(match format {
                Format::Table => render_table(&rows, now),
                Format::Json => json_line(&serde_json::json!({
                    "generated_at": now,
                    "migrations": rows,
                })),
            })
        }
        MigrationCommand::Compare {
            service, format, ..
        } => {
            if !config.store.path.exists() {
                return Err(MigrationCliError::NoStore(
                    config.store.path.display().to_string(),
                ));
            }
            let store = crate::store::open(&config.store)?;
            let c = super::compare::compare(config, store.as_ref(), service, now)?;
            Ok(match format {
                Format::Table => super::compare::render_table(&c),
                Format::Json => json_line(&serde_json::to_value(&c).unwrap_or_default()),
            })
        }
    }
}

/// The verification rounds on record; none when nothing has been stored
/// yet (a status needs no store: phases come from the configuration).
fn recorded_verifications(config: &Config) -> Result<Vec<VerificationRecord>, StoreError> {
    if !config.store.path.exists() {
        return Ok(Vec::new());
    }
    crate::store::open(&config.store)?.cutover_verifications(None)
}

fn json_line(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}
