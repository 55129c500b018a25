//! The durable record of what continuity saw: probe results, roll-ups,
//! service transitions, incidents, maintenance windows, daemon runs, SLA
//! recomputations and the alert outbox.
//!
//! Callers see the store by role ([`Store`] and its parts: results, history,
//! maintenance, notifications, runs, and the writer's batches) and hold it
//! as `Arc<dyn Store>` or as the one role they need, so that a shared
//! PostgreSQL store can replace the embedded SQLite one ([`sqlite`])
//! without touching them. [`convert`] is the one place stored records
//! become domain types and back.
//!
//! Hot paths never touch the disk themselves: they hand [`WriteOp`]s to the
//! batching [`writer::StoreWriter`].

use std::sync::Arc;

mod codec;
pub mod convert;
pub mod lock;
mod records;
mod roles;
pub mod schema;
pub mod sqlite;
pub mod writer;

#[cfg(test)]
mod tests;

pub use codec::LATENCY_BUCKETS_MS;
pub use records::{
    ArchivedReport, ArchivedReportInfo, ImportReport, IncidentRecord, JsonText, MaintenanceRecord,
    OutboxRecord, OutboxStatus, PruneReport, RecomputationRecord, ReportRunRecord, ResultRecord,
    ResultSource, RollupRecord, ServiceTransitionRecord, SlaSnapshot, VerificationRecord, WriteOp,
};
pub use roles::{
    BatchStore, HistoryStore, MaintenanceStore, NotificationStore, ReportStore, ResultStore,
    RunStore, Store,
};
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use writer::{Maintenance, StoreWriter, WriterOptions};

/// Open the store configured under `store:` (SQLite at `store.path`),
/// creating or migrating its schema.
pub fn open(config: &crate::config::StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqliteStore::open(&config.path)?))
}

/// The store could not do its job. Data problems found by a caller (a
/// duplicate import) are variants too, so they can be reported precisely.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(
        "cannot open the store at {path}: {source} (check store.path: the directory must exist and be writable)"
    )]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the store at {path} has schema version {found}, but this continuity knows versions up to {supported}: it was written by a newer continuity; run that version, or point store.path at another file"
    )]
    SchemaTooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("{path} holds tables but is not a continuity store; point store.path at a new file")]
    NotContinuity { path: String },
    #[error("{} imported result(s) are already stored, first at row {} (import again with duplicates skipped to load the rest)", .rows.len(), .rows.first().map_or(0, |r| r + 1))]
    Duplicates { rows: Vec<usize> },
    #[error("store lock {path}: {reason}")]
    Lock { path: String, reason: String },
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store holds unreadable data: {0}")]
    Corrupt(String),
    /// A value the store refuses, e.g. a maintenance effect it does not know.
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    /// True when retrying later may succeed (disk full, locked, I/O):
    /// the writer keeps such batches and retries them.
    pub fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            | StoreError::Open {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } => matches!(
                e.code,
                DatabaseBusy
                    | DatabaseLocked
                    | DiskFull
                    | SystemIoFailure
                    | CannotOpen
                    | ReadOnly
                    | OutOfMemory
                    | PermissionDenied
                    | FileLockingProtocolFailed
                    | OperationInterrupted
                    | SchemaChanged
            ),
            _ => false,
        }
    }
}
