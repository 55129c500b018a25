//! The records the store keeps, as every implementation reads and writes
//! them, and the writes ([`WriteOp`]) the batching writer hands over.
//! States, reasons and scopes are plain strings so that the store does not
//! depend on the engine's enums; [`super::convert`] turns them into domain
//! types and back.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

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

/// A JSON document kept as its text, shared: an outbox payload is
/// written and read whole, and as a tree (`serde_json::Value`) a
/// notification took about four times its 1.1 KB of text on the heap, with
/// 20,000 of them at once in an outage; the copy the writer takes is a
/// reference, not a second text.
#[derive(Debug, Clone)]
pub struct JsonText(std::sync::Arc<str>);

impl JsonText {
    /// The JSON text of `value`.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Result<JsonText, serde_json::Error> {
        serde_json::to_string(value).map(|t| JsonText(t.into()))
    }

    /// Checked text, as read back from the store.
    pub fn from_text(text: String) -> Result<JsonText, serde_json::Error> {
        serde_json::from_str::<serde::de::IgnoredAny>(&text)?;
        Ok(JsonText(text.into()))
    }

    pub fn text(&self) -> &str {
        &self.0
    }

    /// Decode it into `T`.
    pub fn decode<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &JsonText) -> bool {
        self.text() == other.text()
    }
}

/// Written as the document itself, not as a string holding it.
impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<JsonText, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        Ok(JsonText(raw.get().into()))
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
    pub payload: JsonText,
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

/// What [`crate::store::ResultStore::insert_results_atomic`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub inserted: u64,
    /// Indexes (into the submitted rows) of rows whose service, check and
    /// timestamp were already stored, or repeated earlier in the same rows.
    pub duplicates: Vec<usize>,
}

/// What [`crate::store::BatchStore::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Hours rolled up before pruning, so no result is lost uncounted.
    pub hours_rolled_up: u64,
    /// Raw results removed.
    pub results: u64,
    pub rollups: u64,
    pub service_transitions: u64,
    pub incidents: u64,
    pub runs: u64,
    pub maintenances: u64,
    pub outbox: u64,
}

/// A write the hot paths hand to the [`crate::store::StoreWriter`]; applied in batches,
/// one transaction per batch.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Record (or replace) the verification round of a cutover.
    CutoverVerification(VerificationRecord),
    /// A live result. A second result for the same check and millisecond
    /// is ignored.
    Result(ResultRecord),
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

/// The verification round of a cutover: every check of the service probed
/// at once when the window ended, and what that round found.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VerificationRecord {
    pub service: String,
    /// The cutover's change ticket.
    pub reference: String,
    /// When the round's last probe finished counting (its start instant).
    pub at: Timestamp,
    /// Every check of the round succeeded.
    pub passed: bool,
    /// The checks that failed, with their reason: `home: timeout`.
    pub failing: Vec<String>,
}
