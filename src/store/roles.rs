//! What the daemon and the commands ask of a store, one trait per role, so
//! that a caller names the role it needs (the alert outbox takes a
//! [`NotificationStore`], not the whole store) and a second implementation
//! (a shared PostgreSQL store) only has to provide these methods.
//!
//! Every method here has a caller in the daemon or a command. What only
//! tests and benchmarks look at is not: the roll-ups are read back with
//! [`super::SqliteStore::rollups`], the rest with SQL on the file.
//!
//! Methods are synchronous: the SQLite store is written from the writer's
//! own thread and read through `tokio::task::spawn_blocking`. Time ranges
//! are half-open, `[from, to)`.

use std::time::Duration;

use jiff::Timestamp;

use super::{
    ArchivedReport, ArchivedReportInfo, ImportReport, IncidentRecord, MaintenanceRecord,
    OutboxRecord, PruneReport, RecomputationRecord, ReportRunRecord, ResultRecord,
    ServiceTransitionRecord, SlaSnapshot, StoreError, VerificationRecord, WriteOp,
};

/// The batching writer's side: apply its batches, and the housekeeping it
/// runs between them.
pub trait BatchStore: Send + Sync {
    /// Apply `ops` in one transaction: all or nothing.
    fn write_batch(&self, ops: &[WriteOp]) -> Result<(), StoreError>;

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

    /// Whether the store's file is still the one it opened; an `Err` says
    /// what happened to it (deleted, replaced). Writes to a deleted file
    /// succeed without a word and are gone at the next start. Stores
    /// without a file of their own have nothing to check.
    fn check_file(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Raw probe results: live ones arrive through [`BatchStore::write_batch`],
/// imported ones through [`ResultStore::insert_results_atomic`].
pub trait ResultStore: Send + Sync {
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

    /// The newest result of every check ever stored, ordered by service
    /// and check: where each service's stored state stops being backed by
    /// evidence.
    fn last_results(&self) -> Result<Vec<ResultRecord>, StoreError>;
}

/// What the results meant: service transitions, incidents, and the SLA
/// figures computed from them (snapshots and recomputations).
pub trait HistoryStore: Send + Sync {
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

    /// The recorded cutover verification rounds of one service (or all),
    /// ordered by service and time.
    fn cutover_verifications(
        &self,
        service: Option<&str>,
    ) -> Result<Vec<VerificationRecord>, StoreError>;
}

/// Maintenance windows created at run time through the API.
pub trait MaintenanceStore: Send + Sync {
    /// Returns the new window's id.
    fn insert_maintenance(&self, m: &MaintenanceRecord) -> Result<i64, StoreError>;

    /// Windows overlapping `[from, to)`, by start.
    fn maintenances(
        &self,
        from: Timestamp,
        to: Timestamp,
        include_deleted: bool,
    ) -> Result<Vec<MaintenanceRecord>, StoreError>;

    /// Mark the window deleted (kept for the audit trail); false if there
    /// is none or it was deleted already.
    fn delete_maintenance(&self, id: i64) -> Result<bool, StoreError>;
}

/// The alert outbox: notifications waiting for (or done with) delivery.
pub trait NotificationStore: Send + Sync {
    /// False (and nothing changes) when the idempotency key is known.
    fn outbox_enqueue(&self, item: &OutboxRecord) -> Result<bool, StoreError>;

    /// Pending items due at `now` and not expired, oldest due first.
    fn outbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxRecord>, StoreError>;

    fn outbox_delivered(&self, id: i64, at: Timestamp) -> Result<(), StoreError>;

    /// Count a failed attempt and schedule the next.
    fn outbox_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Pending items.
    fn outbox_len(&self) -> Result<u64, StoreError>;

    /// Mark pending items past `expires_at` expired and return them (the
    /// expired-notification metric is per receiver).
    fn outbox_expire_items(&self, now: Timestamp) -> Result<Vec<OutboxRecord>, StoreError>;

    /// Every item created at or after `since`, any status, oldest first:
    /// what receivers were told before a restart.
    fn outbox_history(&self, since: Timestamp) -> Result<Vec<OutboxRecord>, StoreError>;
}

/// The intervals the daemon ran; heartbeats go through
/// [`BatchStore::write_batch`] ([`WriteOp::Heartbeat`]), so that a stalled
/// disk never holds up the loop that sends them.
pub trait RunStore: Send + Sync {
    /// Record that the daemon started; returns the run id for heartbeats.
    fn start_run(&self, at: Timestamp) -> Result<i64, StoreError>;

    /// Record a clean stop.
    fn stop_run(&self, run: i64, at: Timestamp) -> Result<(), StoreError>;
}

/// Scheduled management reports: the runs made (each schedule and period
/// once), their e-mail state and the archive of rendered files.
pub trait ReportStore: Send + Sync {
    /// The run of `schedule` for `period`, if it was made.
    fn report_run(
        &self,
        schedule: &str,
        period: &str,
    ) -> Result<Option<ReportRunRecord>, StoreError>;

    /// Record a run with its rendered files in one transaction; false (and
    /// nothing changes) when that schedule and period was made already.
    fn record_report_run(
        &self,
        run: &ReportRunRecord,
        files: &[ArchivedReport],
    ) -> Result<bool, StoreError>;

    /// Runs whose e-mail is pending and due at `now`.
    fn report_mails_due(&self, now: Timestamp) -> Result<Vec<ReportRunRecord>, StoreError>;

    /// The outcome of a send: sent at `at`, or failed with `error` and
    /// retried at `next_attempt_at`.
    fn report_mail_attempted(
        &self,
        schedule: &str,
        period: &str,
        at: Timestamp,
        outcome: Result<(), (&str, Timestamp)>,
    ) -> Result<(), StoreError>;

    /// Every archived file, newest period first.
    fn archived_reports(&self) -> Result<Vec<ArchivedReportInfo>, StoreError>;

    fn archived_report(
        &self,
        period: &str,
        format: &str,
    ) -> Result<Option<ArchivedReport>, StoreError>;
}

/// Every role at once, for the callers that need several (the daemon's
/// wiring, the SLA report, recomputation). Implemented by anything that
/// implements the roles.
pub trait Store:
    BatchStore
    + ResultStore
    + HistoryStore
    + MaintenanceStore
    + NotificationStore
    + RunStore
    + ReportStore
{
}

impl<T> Store for T where
    T: BatchStore
        + ResultStore
        + HistoryStore
        + MaintenanceStore
        + NotificationStore
        + RunStore
        + ReportStore
{
}
