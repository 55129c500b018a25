//! The durable record of what continuity saw: probe results, roll-ups,
//! state transitions, incidents, maintenance windows, daemon runs, SLA
//! recomputations and the alert outbox, behind the [`Store`] trait so that a
//! shared PostgreSQL store can replace the embedded SQLite one ([`sqlite`]).
//!
//! Hot paths never touch the disk themselves: they hand [`WriteOp`]s to the
//! batching [`writer::StoreWriter`]. States, reasons and scopes are plain
//! strings so the store does not depend on the engine's enums.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

mod codec;
pub mod schema;
pub mod sqlite;
pub mod writer;

#[cfg(test)]
mod tests;

pub use codec::{LATENCY_BUCKETS_MS, bucket_count};
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use writer::{Maintenance, StoreWriter, WriterOptions};

/// Open the store configured under `store:` (SQLite at `store.path`),
/// creating or migrating its schema.
pub fn open(config: &crate::config::StoreConfig) -> Result<SqliteStore, StoreError> {
    SqliteStore::open(&config.path)
}

/// Where a probe result came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResultSource {
    /// Measured by this daemon.
    #[default]
    Live,
    /// Loaded from a file or another monitor; `origin` names it.
    Imported { origin: String },
}

/// One probe result. Stored with millisecond timestamps and microsecond
/// durations; finer precision is truncated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRecord {
    pub service: String,
    pub check: String,
    /// When the probe started.
    pub at: Timestamp,
    pub success: bool,
    #[serde(rename = "duration_us", with = "micros")]
    pub duration: Duration,
    /// The failure reason (`timeout`, `dns`, ...), normally `None` on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A sentence for humans. Every byte kept on successes costs about
    /// 100 MB per byte over 35 days at 1,000 checks every 30 s, so keep it
    /// for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default)]
    pub source: ResultSource,
}

/// A check changed state (`up`, `down`, `unknown`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckTransitionRecord {
    pub service: String,
    pub check: String,
    pub at: Timestamp,
    pub state: String,
    /// The failure reason that caused it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A service changed state (`up`, `degraded`, `down`, `unknown`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTransitionRecord {
    pub service: String,
    pub at: Timestamp,
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// An incident: a period a service was down, with the failing probes that
/// prove it. Identified by `(service, started_at)` when written; `id` is
/// assigned by the store and ignored on writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRecord {
    pub id: i64,
    pub service: String,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// Why the engine opened it (JSON chosen by the engine).
    pub cause: serde_json::Value,
    pub evidence: Vec<ResultRecord>,
}

/// A maintenance window created at run time through the API. `id` is
/// assigned by the store on insert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceRecord {
    pub id: i64,
    /// The change ticket, e.g. CHG-2026-0142.
    pub reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `exclude` (left out of the SLA, alerts muted) or `mute`.
    pub effect: String,
    /// `service`, `category`, `supplier` or `all`.
    pub scope_kind: String,
    /// The service id, category or supplier; empty for `all`.
    pub scope_value: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub created_at: Timestamp,
    pub created_by: String,
    pub deleted: bool,
}

/// One interval the daemon ran. `stopped_at` stays `None` when it crashed
/// or was killed; `last_heartbeat_at` then bounds when it stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: i64,
    pub started_at: Timestamp,
    pub last_heartbeat_at: Timestamp,
    pub stopped_at: Option<Timestamp>,
}

/// Delivery state of an outbox item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Delivered,
    Expired,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<OutboxStatus> {
        [
            OutboxStatus::Pending,
            OutboxStatus::Delivered,
            OutboxStatus::Expired,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// An alert notification waiting for (or done with) delivery. On enqueue,
/// `id`, `attempts`, `last_error` and `delivered_at` are ignored and
/// `status` is forced to `pending`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRecord {
    pub id: i64,
    /// Same key, same notification: a second enqueue is ignored.
    pub idempotency_key: String,
    pub receiver: String,
    pub payload: serde_json::Value,
    pub status: OutboxStatus,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
}

/// Someone recomputed SLA figures (config change, corrected import...).
/// Both the figures before and after are kept. `id` is assigned on insert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecomputationRecord {
    pub id: i64,
    pub created_at: Timestamp,
    pub reason: String,
    /// Digest of the configuration the new figures were computed with.
    pub config_digest: String,
    /// `None` when every service was recomputed.
    pub service: Option<String>,
    pub from: Timestamp,
    pub to: Timestamp,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    /// Who asked for it (e.g. `$USER`).
    pub who: String,
}

/// SLA figures of one service, SLA and period (e.g. `2026-03`), as computed
/// at `computed_at`. Every computation is kept; the latest one counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaSnapshot {
    pub id: i64,
    pub service: String,
    pub sla: String,
    pub period: String,
    pub computed_at: Timestamp,
    /// Set when the snapshot came from a recomputation.
    pub recomputation_id: Option<i64>,
    pub figures: serde_json::Value,
}

/// Hourly aggregate of one check's results; kept after the raw results
/// are pruned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupRecord {
    pub service: String,
    pub check: String,
    /// Start of the hour (UTC).
    pub hour: Timestamp,
    pub count: u64,
    pub failures: u64,
    /// Sum of all durations, for the mean.
    #[serde(rename = "duration_sum_us", with = "micros")]
    pub duration_sum: Duration,
    /// Non-cumulative counts per latency bucket: `buckets[i]` counts
    /// durations `<= LATENCY_BUCKETS_MS[i]` and above the previous bound;
    /// the last entry counts everything slower than the last bound.
    pub buckets: Vec<u64>,
}

/// What [`Store::insert_results_atomic`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub inserted: u64,
    /// Indexes (into the submitted rows) of rows whose service, check and
    /// timestamp were already stored, or repeated earlier in the same rows.
    pub duplicates: Vec<usize>,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Hours rolled up before pruning, so no result is lost uncounted.
    pub hours_rolled_up: u64,
    /// Raw results removed.
    pub results: u64,
    pub rollups: u64,
    pub check_transitions: u64,
    pub service_transitions: u64,
    pub incidents: u64,
    pub runs: u64,
    pub maintenances: u64,
    pub outbox: u64,
}

/// A write the hot paths hand to the [`StoreWriter`]; applied in batches,
/// one transaction per batch.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// A live result. A second result for the same check and millisecond
    /// is ignored.
    Result(ResultRecord),
    CheckTransition(CheckTransitionRecord),
    ServiceTransition(ServiceTransitionRecord),
    /// Create or replace the incident of `(service, started_at)`: open it,
    /// add evidence, or close it by setting `ended_at`.
    Incident(IncidentRecord),
    /// Delete the service transition at `at` (a back-dated verdict
    /// rewrote it).
    RetractServiceTransition {
        service: String,
        at: Timestamp,
    },
    /// Delete every service transition at or after `from` (state restored
    /// from raw results is rewritten from there).
    RetractServiceTransitionsFrom {
        service: String,
        from: Timestamp,
    },
    /// Delete the incident of `(service, started_at)` (rewritten away or
    /// merged into another).
    RetractIncident {
        service: String,
        started_at: Timestamp,
    },
    /// Close the incident of `(service, started_at)`; a no-op if unknown.
    CloseIncident {
        service: String,
        started_at: Timestamp,
        ended_at: Timestamp,
    },
    Heartbeat {
        run: i64,
        at: Timestamp,
    },
    /// Enqueue a notification; ignored if its idempotency key is known.
    Outbox(OutboxRecord),
    OutboxDelivered {
        id: i64,
        at: Timestamp,
    },
    OutboxFailed {
        id: i64,
        error: String,
        next_attempt_at: Timestamp,
    },
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

/// The persistent store. Methods are synchronous: the SQLite store is
/// written from the writer's own thread and read through
/// `tokio::task::spawn_blocking`. Time ranges are half-open, `[from, to)`.
pub trait Store: Send + Sync {
    // ---- writes ----

    /// Apply `ops` in one transaction: all or nothing.
    fn write_batch(&self, ops: &[WriteOp]) -> Result<(), StoreError>;

    /// Load results (an import) in one transaction: the rows are stored
    /// whole or not at all. A row whose service, check and millisecond are
    /// already stored (or repeated in `rows`) is a duplicate: with
    /// `skip_duplicates` it is left out and reported, otherwise the whole
    /// import fails with [`StoreError::Duplicates`].
    fn insert_results_atomic(
        &self,
        rows: &[ResultRecord],
        skip_duplicates: bool,
    ) -> Result<ImportReport, StoreError>;

    /// Store roll-ups computed elsewhere (moving between stores, history
    /// without raw results), replacing those of the same check and hour.
    fn insert_rollups(&self, rows: &[RollupRecord]) -> Result<(), StoreError>;

    // ---- results ----

    /// Results of `service` (one check or all) in `[from, to)`, oldest
    /// first (ties in check order), handed to `sink` one by one so that a
    /// long range never sits in memory at once. The sink runs inside one
    /// read snapshot; keep it quick (a long one delays WAL checkpoints).
    fn results(
        &self,
        service: &str,
        check: Option<&str>,
        from: Timestamp,
        to: Timestamp,
        sink: &mut dyn FnMut(ResultRecord),
    ) -> Result<(), StoreError>;

    /// [`Store::results`] collected into a `Vec`.
    fn results_vec(
        &self,
        service: &str,
        check: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ResultRecord>, StoreError> {
        let mut out = Vec::new();
        self.results(service, check, from, to, &mut |r| out.push(r))?;
        Ok(out)
    }

    /// The newest result of one check.
    fn last_result(&self, service: &str, check: &str) -> Result<Option<ResultRecord>, StoreError>;

    /// The newest result of every check ever stored (to restore state at
    /// start-up), ordered by service and check.
    fn last_results(&self) -> Result<Vec<ResultRecord>, StoreError>;

    /// Hourly roll-ups of `service` (one check or all) for hours starting
    /// in `[from, to)`, ordered by check then hour. Hours not rolled up yet
    /// are aggregated from the raw results on the fly.
    fn rollups(
        &self,
        service: &str,
        check: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<RollupRecord>, StoreError>;

    // ---- transitions and incidents ----

    /// Check transitions in `[from, to)` of one service (or all), ordered
    /// by service, check and time. Each check's list starts with the
    /// transition in force at `from` (the last one before it), if any.
    fn check_transitions(
        &self,
        service: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<CheckTransitionRecord>, StoreError>;

    /// Service transitions in `[from, to)` of one service (or all), ordered
    /// by service and time. Each service's list starts with the transition
    /// in force at `from` (the last one before it), if any.
    fn service_transitions(
        &self,
        service: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ServiceTransitionRecord>, StoreError>;

    /// Incidents of one service (or all) that overlap `[from, to)`, oldest
    /// first.
    fn incidents(
        &self,
        service: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<IncidentRecord>, StoreError>;

    /// The open (not ended) incident of `service`, the newest if several.
    fn open_incident(&self, service: &str) -> Result<Option<IncidentRecord>, StoreError>;

    /// Every open incident, ordered by service.
    fn open_incidents(&self) -> Result<Vec<IncidentRecord>, StoreError>;

    // ---- runs ----

    /// Record that the daemon started; returns the run id for heartbeats.
    fn start_run(&self, at: Timestamp) -> Result<i64, StoreError>;

    fn heartbeat(&self, run: i64, at: Timestamp) -> Result<(), StoreError> {
        self.write_batch(&[WriteOp::Heartbeat { run, at }])
    }

    /// Record a clean stop.
    fn stop_run(&self, run: i64, at: Timestamp) -> Result<(), StoreError>;

    /// Runs overlapping `[from, to)`, oldest first. A run without
    /// `stopped_at` counts as lasting until its last heartbeat.
    fn runs(&self, from: Timestamp, to: Timestamp) -> Result<Vec<RunRecord>, StoreError>;

    // ---- maintenance windows ----

    /// Returns the new window's id.
    fn insert_maintenance(&self, m: &MaintenanceRecord) -> Result<i64, StoreError>;

    fn maintenance(&self, id: i64) -> Result<Option<MaintenanceRecord>, StoreError>;

    /// Windows overlapping `[from, to)`, by start.
    fn maintenances(
        &self,
        from: Timestamp,
        to: Timestamp,
        include_deleted: bool,
    ) -> Result<Vec<MaintenanceRecord>, StoreError>;

    /// Replace the window with `m.id` (all fields but `id`, `created_at`
    /// and `created_by`); false if there is none.
    fn update_maintenance(&self, m: &MaintenanceRecord) -> Result<bool, StoreError>;

    /// Mark the window deleted (kept for the audit trail); false if there
    /// is none or it was deleted already.
    fn delete_maintenance(&self, id: i64) -> Result<bool, StoreError>;

    // ---- alert outbox ----

    /// False (and nothing changes) when the idempotency key is known.
    fn outbox_enqueue(&self, item: &OutboxRecord) -> Result<bool, StoreError>;

    /// Pending items due at `now` and not expired, oldest due first.
    fn outbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxRecord>, StoreError>;

    fn outbox_by_key(&self, idempotency_key: &str) -> Result<Option<OutboxRecord>, StoreError>;

    fn outbox_delivered(&self, id: i64, at: Timestamp) -> Result<(), StoreError> {
        self.write_batch(&[WriteOp::OutboxDelivered { id, at }])
    }

    /// Count a failed attempt and schedule the next.
    fn outbox_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.write_batch(&[WriteOp::OutboxFailed {
            id,
            error: error.to_string(),
            next_attempt_at,
        }])
    }

    /// Mark pending items whose `expires_at <= now` expired; returns how many.
    fn outbox_expire(&self, now: Timestamp) -> Result<u64, StoreError>;

    /// Pending items.
    fn outbox_len(&self) -> Result<u64, StoreError>;

    /// Mark pending items past `expires_at` expired and return them (the
    /// expired-notification metric is per receiver).
    fn outbox_expire_items(&self, now: Timestamp) -> Result<Vec<OutboxRecord>, StoreError>;

    /// Every item created at or after `since`, any status, oldest first:
    /// what receivers were told before a restart.
    fn outbox_history(&self, since: Timestamp) -> Result<Vec<OutboxRecord>, StoreError>;

    // ---- SLA recomputations and snapshots ----

    /// Store a recomputation with the snapshots it produced (their
    /// `recomputation_id` is set to the new id), in one transaction.
    fn insert_recomputation(
        &self,
        rec: &RecomputationRecord,
        snapshots: &[SlaSnapshot],
    ) -> Result<i64, StoreError>;

    /// Newest first; `service` filters on recomputations of that service.
    fn recomputations(
        &self,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RecomputationRecord>, StoreError>;

    fn insert_sla_snapshot(&self, snapshot: &SlaSnapshot) -> Result<i64, StoreError>;

    /// The newest snapshot per (service, sla, period), ordered by those.
    fn latest_sla_snapshots(&self, service: Option<&str>) -> Result<Vec<SlaSnapshot>, StoreError>;

    /// Every snapshot of one (service, sla, period), oldest first.
    fn sla_snapshot_history(
        &self,
        service: &str,
        sla: &str,
        period: &str,
    ) -> Result<Vec<SlaSnapshot>, StoreError>;

    // ---- housekeeping ----

    /// Roll up every hour that ended at or before `before`: hourly
    /// aggregates are written (and, in SQLite, the hour's raw results are
    /// packed into one compact block). Returns the hours processed.
    fn roll_up(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Drop raw results older than `retention` and roll-ups, transitions,
    /// ended incidents, runs and maintenance windows older than
    /// `rollup_retention` (the last transition before that cutoff is kept:
    /// it is the state in force). Rolls up first, so roll-ups outlive the
    /// raw results. SLA recomputations and snapshots are kept.
    fn prune(
        &self,
        now: Timestamp,
        retention: Duration,
        rollup_retention: Duration,
    ) -> Result<PruneReport, StoreError>;
}

/// Serde for a `Duration` as integer microseconds.
mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(d)?))
    }
}
