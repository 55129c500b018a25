//! The embedded store: one SQLite file in WAL mode. Writes go through one
//! connection (the writer thread's batches, API writes); reads use a small
//! pool of read-only connections, each query in its own snapshot.
//!
//! Raw results first land one row each in `results_recent`; when their
//! hour is rolled up they are packed per check and hour into
//! `result_blocks` (about 5 bytes a result) and counted into `rollups`.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::codec::{Aggregate, Entry, HOUR_MS, decode_block, encode_block, hour_of, merge_entries};
use super::schema;
use super::{
    CheckTransitionRecord, ImportReport, IncidentRecord, MaintenanceRecord, OutboxRecord,
    OutboxStatus, PruneReport, RecomputationRecord, ResultRecord, ResultSource, RollupRecord,
    RunRecord, ServiceTransitionRecord, SlaSnapshot, Store, StoreError, WriteOp,
};

/// How hard a commit pushes to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// Commits survive a crash or `kill -9` of continuity, but the last
    /// ones may be lost if the machine loses power.
    Normal,
    /// Commits survive power loss too: the WAL is fsynced at each commit.
    /// The writer batches, so this costs one fsync per batch.
    Full,
}

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// How long a statement waits for a lock held by another process
    /// (a backup, the sqlite3 shell) before failing.
    pub busy_timeout: Duration,
    /// Page cache of the write connection. Results are appended in time
    /// order, so a few pages are hot; the rest of a larger cache would
    /// only fill up with pages never read again, as resident memory.
    pub cache_mib: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            cache_mib: 2,
        }
    }
}

const READ_POOL: usize = 4;
/// Check-ranges of deletes per prune transaction: keeps the WAL small when
/// a shorter retention suddenly frees months of data.
const PRUNE_CHECKS_PER_TX: usize = 100;

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    display: String,
    options: SqliteOptions,
    writer: Mutex<WriteSide>,
    readers: Mutex<Vec<Connection>>,
}

struct WriteSide {
    conn: Connection,
    ids: Ids,
}

/// A service's checks and their ids.
type CheckIds = Vec<(Box<str>, i64)>;

/// Interned ids of names, cached for the write connection. Cleared when a
/// transaction fails, since its inserts were rolled back.
#[derive(Default)]
struct Ids {
    /// Each service's id and its checks' ids. A short list per service,
    /// not a map: services have a handful of checks, and 10,000
    /// single-check services made 10,000 maps.
    services: HashMap<Box<str>, (i64, CheckIds)>,
    reasons: HashMap<String, u64>,
    sources: HashMap<String, u64>,
}

impl Ids {
    fn clear(&mut self) {
        *self = Ids::default();
    }

    fn service(&mut self, c: &Connection, name: &str) -> rusqlite::Result<i64> {
        if let Some((id, _)) = self.services.get(name) {
            return Ok(*id);
        }
        c.prepare_cached("INSERT INTO services (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")?
            .execute([name])?;
        let id = c
            .prepare_cached("SELECT id FROM services WHERE name = ?1")?
            .query_row([name], |r| r.get(0))?;
        self.services.insert(name.into(), (id, Vec::new()));
        Ok(id)
    }

    fn check(&mut self, c: &Connection, service: &str, check: &str) -> rusqlite::Result<i64> {
        if let Some((_, checks)) = self.services.get(service)
            && let Some((_, id)) = checks.iter().find(|(name, _)| &**name == check)
        {
            return Ok(*id);
        }
        let sid = self.service(c, service)?;
        c.prepare_cached(
            "INSERT INTO checks (service_id, name) VALUES (?1, ?2) ON CONFLICT (service_id, name) DO NOTHING",
        )?
        .execute(params![sid, check])?;
        let id = c
            .prepare_cached("SELECT id FROM checks WHERE service_id = ?1 AND name = ?2")?
            .query_row(params![sid, check], |r| r.get(0))?;
        if let Some((_, checks)) = self.services.get_mut(service) {
            // Most services have one or two checks: no doubling slack.
            checks.reserve_exact(1);
            checks.push((check.into(), id));
        }
        Ok(id)
    }

    fn reason(&mut self, c: &Connection, reason: Option<&str>) -> rusqlite::Result<u64> {
        let Some(name) = reason else { return Ok(0) };
        if let Some(id) = self.reasons.get(name) {
            return Ok(*id);
        }
        c.prepare_cached("INSERT INTO reasons (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")?
            .execute([name])?;
        let id = unsigned(
            c.prepare_cached("SELECT id FROM reasons WHERE name = ?1")?
                .query_row([name], |r| r.get(0))?,
        );
        self.reasons.insert(name.to_string(), id);
        Ok(id)
    }

    fn source(&mut self, c: &Connection, source: &ResultSource) -> rusqlite::Result<u64> {
        let ResultSource::Imported { origin } = source else {
            return Ok(0);
        };
        if let Some(id) = self.sources.get(origin) {
            return Ok(*id);
        }
        c.prepare_cached(
            "INSERT INTO sources (origin) VALUES (?1) ON CONFLICT (origin) DO NOTHING",
        )?
        .execute([origin])?;
        let id = unsigned(
            c.prepare_cached("SELECT id FROM sources WHERE origin = ?1")?
                .query_row([origin], |r| r.get(0))?,
        );
        self.sources.insert(origin.clone(), id);
        Ok(id)
    }

    fn entry(&mut self, c: &Connection, r: &ResultRecord) -> rusqlite::Result<Entry> {
        Ok(Entry {
            ts: ms(r.at),
            failed: !r.success,
            reason: self.reason(c, r.reason.as_deref())?,
            duration_us: micros(r.duration),
            source: self.source(c, &r.source)?,
            detail: r.detail.clone(),
        })
    }
}

/// Reason and source names by id, to turn stored entries back into records.
struct Names {
    reasons: HashMap<u64, String>,
    sources: HashMap<u64, String>,
}

impl Names {
    fn load(c: &Connection) -> rusqlite::Result<Names> {
        let reasons = c
            .prepare_cached("SELECT id, name FROM reasons")?
            .query_map([], |r| Ok((unsigned(r.get(0)?), r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let sources = c
            .prepare_cached("SELECT id, origin FROM sources")?
            .query_map([], |r| Ok((unsigned(r.get(0)?), r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Names { reasons, sources })
    }

    fn record(&self, service: &str, check: &str, e: Entry) -> Result<ResultRecord, StoreError> {
        let reason = match e.reason {
            0 => None,
            id => Some(
                self.reasons
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown reason id {id}")))?,
            ),
        };
        let source = match e.source {
            0 => ResultSource::Live,
            id => ResultSource::Imported {
                origin: self
                    .sources
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown source id {id}")))?,
            },
        };
        Ok(ResultRecord {
            service: service.to_string(),
            check: check.to_string(),
            at: ts(e.ts)?,
            success: !e.failed,
            duration: Duration::from_micros(e.duration_us),
            reason,
            detail: e.detail,
            source,
        })
    }
}

/// SQLite integers are signed; counters and ids here never go negative.
fn unsigned(v: i64) -> u64 {
    v.max(0) as u64
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .min(i64::MAX as u64)
}

fn ts(ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(ms)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {ms} ms: {e}")))
}

fn ts_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Timestamp> {
    let v: i64 = row.get(idx)?;
    Timestamp::from_millisecond(v)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Integer, Box::new(e)))
}

fn opt_ts_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Timestamp>> {
    match row.get::<_, Option<i64>>(idx)? {
        None => Ok(None),
        Some(_) => ts_col(row, idx).map(Some),
    }
}

fn json_col<T: serde::de::DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let s: String = row.get(idx)?;
    serde_json::from_str(&s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(format!("cannot encode JSON: {e}")))
}

fn entry_from_recent(row: &Row<'_>, first: usize) -> rusqlite::Result<Entry> {
    let status = unsigned(row.get(first + 1)?);
    Ok(Entry {
        ts: row.get(first)?,
        failed: status & 1 == 1,
        reason: status >> 1,
        duration_us: unsigned(row.get(first + 2)?),
        source: unsigned(row.get(first + 3)?),
        detail: row.get(first + 4)?,
    })
}

fn corrupt_block(check_id: i64, hour: i64, why: String) -> StoreError {
    StoreError::Corrupt(format!(
        "result block of check {check_id}, hour {hour}: {why}"
    ))
}

fn insert_recent(c: &Connection, check_id: i64, e: &Entry) -> rusqlite::Result<bool> {
    let status = (e.reason << 1) | u64::from(e.failed);
    let n = c
        .prepare_cached(
            "INSERT INTO results_recent (check_id, ts, status, duration_us, source_id, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (check_id, ts) DO NOTHING",
        )?
        .execute(params![
            check_id,
            e.ts,
            signed(status),
            signed(e.duration_us),
            signed(e.source),
            e.detail
        ])?;
    Ok(n == 1)
}

fn block(c: &Connection, check_id: i64, hour: i64) -> Result<Vec<Entry>, StoreError> {
    let data: Option<Vec<u8>> = c
        .prepare_cached("SELECT data FROM result_blocks WHERE check_id = ?1 AND hour = ?2")?
        .query_row(params![check_id, hour], |r| r.get(0))
        .optional()?;
    match data {
        None => Ok(Vec::new()),
        Some(d) => decode_block(hour, &d).map_err(|why| corrupt_block(check_id, hour, why)),
    }
}

fn add_rollup(c: &Connection, check_id: i64, hour: i64, add: &Aggregate) -> Result<(), StoreError> {
    let stored = c
        .prepare_cached(
            "SELECT count, failures, sum_us, buckets FROM rollups WHERE check_id = ?1 AND hour = ?2",
        )?
        .query_row(params![check_id, hour], |r| {
            Ok((
                unsigned(r.get(0)?),
                unsigned(r.get(1)?),
                unsigned(r.get(2)?),
                r.get::<_, Vec<u8>>(3)?,
            ))
        })
        .optional()?;
    let mut total = match stored {
        None => Aggregate::default(),
        Some((count, failures, sum_us, buckets)) => Aggregate {
            count,
            failures,
            sum_us,
            buckets: Aggregate::decode_buckets(&buckets)
                .map_err(|why| corrupt_block(check_id, hour, why))?,
        },
    };
    total.merge(add);
    write_rollup(c, check_id, hour, &total)?;
    Ok(())
}

fn write_rollup(c: &Connection, check_id: i64, hour: i64, a: &Aggregate) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO rollups (check_id, hour, count, failures, sum_us, buckets)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        check_id,
        hour,
        signed(a.count),
        signed(a.failures),
        signed(a.sum_us),
        a.encode_buckets()
    ])?;
    Ok(())
}

/// Merge `new` (sorted, unique) into the check's block of `hour` and add
/// what was really new to the hour's roll-up.
fn merge_into_block(
    c: &Connection,
    check_id: i64,
    hour: i64,
    new: Vec<Entry>,
) -> Result<u64, StoreError> {
    let old = block(c, check_id, hour)?;
    let (merged, added) = merge_entries(old, new);
    if added.count == 0 {
        return Ok(0);
    }
    c.prepare_cached(
        "INSERT INTO result_blocks (check_id, hour, data) VALUES (?1, ?2, ?3)
         ON CONFLICT (check_id, hour) DO UPDATE SET data = excluded.data",
    )?
    .execute(params![check_id, hour, encode_block(hour, &merged)])?;
    add_rollup(c, check_id, hour, &added)?;
    Ok(added.count)
}

/// Pack one hour of `results_recent` into blocks and roll-ups.
fn seal_hour(c: &Connection, hour: i64) -> Result<(), StoreError> {
    let (lo, hi) = (hour * HOUR_MS, (hour + 1) * HOUR_MS);
    let mut by_check: BTreeMap<i64, Vec<Entry>> = BTreeMap::new();
    {
        let mut stmt = c.prepare_cached(
            "SELECT check_id, ts, status, duration_us, source_id, detail
             FROM results_recent WHERE ts >= ?1 AND ts < ?2",
        )?;
        let mut rows = stmt.query(params![lo, hi])?;
        while let Some(row) = rows.next()? {
            by_check
                .entry(row.get(0)?)
                .or_default()
                .push(entry_from_recent(row, 1)?);
        }
    }
    for (check_id, mut entries) in by_check {
        entries.sort_by_key(|e| e.ts);
        merge_into_block(c, check_id, hour, entries)?;
    }
    c.prepare_cached("DELETE FROM results_recent WHERE ts >= ?1 AND ts < ?2")?
        .execute(params![lo, hi])?;
    Ok(())
}

fn apply(c: &Connection, ids: &mut Ids, op: &WriteOp) -> Result<(), StoreError> {
    match op {
        WriteOp::Result(r) => {
            let check_id = ids.check(c, &r.service, &r.check)?;
            let e = ids.entry(c, r)?;
            insert_recent(c, check_id, &e)?;
        }
        WriteOp::CheckTransition(t) => {
            let check_id = ids.check(c, &t.service, &t.check)?;
            c.prepare_cached(
                "INSERT INTO check_transitions (check_id, at, state, reason) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![check_id, ms(t.at), t.state, t.reason])?;
        }
        WriteOp::ServiceTransition(t) => {
            let service_id = ids.service(c, &t.service)?;
            // A timeline has at most one transition per instant: a
            // rewritten one replaces what was stored.
            c.prepare_cached("DELETE FROM service_transitions WHERE service_id = ?1 AND at = ?2")?
                .execute(params![service_id, ms(t.at)])?;
            c.prepare_cached(
                "INSERT INTO service_transitions (service_id, at, state, cause) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![service_id, ms(t.at), t.state, t.cause])?;
        }
        WriteOp::Incident(i) => {
            let service_id = ids.service(c, &i.service)?;
            c.prepare_cached(
                "INSERT INTO incidents (service_id, started_at, ended_at, cause, evidence)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (service_id, started_at) DO UPDATE SET
                   ended_at = excluded.ended_at, cause = excluded.cause, evidence = excluded.evidence",
            )?
            .execute(params![
                service_id,
                ms(i.started_at),
                i.ended_at.map(ms),
                json(&i.cause)?,
                json(&i.evidence)?
            ])?;
        }
        WriteOp::RetractServiceTransition { service, at } => {
            c.prepare_cached(
                "DELETE FROM service_transitions
                 WHERE service_id = (SELECT id FROM services WHERE name = ?1) AND at = ?2",
            )?
            .execute(params![service, ms(*at)])?;
        }
        WriteOp::RetractServiceTransitionsFrom { service, from } => {
            c.prepare_cached(
                "DELETE FROM service_transitions
                 WHERE service_id = (SELECT id FROM services WHERE name = ?1) AND at >= ?2",
            )?
            .execute(params![service, ms(*from)])?;
        }
        WriteOp::RetractIncident {
            service,
            started_at,
        } => {
            c.prepare_cached(
                "DELETE FROM incidents
                 WHERE service_id = (SELECT id FROM services WHERE name = ?1) AND started_at = ?2",
            )?
            .execute(params![service, ms(*started_at)])?;
        }
        WriteOp::CloseIncident {
            service,
            started_at,
            ended_at,
        } => {
            c.prepare_cached(
                "UPDATE incidents SET ended_at = ?3
                 WHERE service_id = (SELECT id FROM services WHERE name = ?1) AND started_at = ?2",
            )?
            .execute(params![service, ms(*started_at), ms(*ended_at)])?;
        }
        WriteOp::Heartbeat { run, at } => {
            c.prepare_cached(
                "UPDATE runs SET last_heartbeat_at = max(last_heartbeat_at, ?2) WHERE id = ?1",
            )?
            .execute(params![run, ms(*at)])?;
        }
        WriteOp::Outbox(o) => {
            enqueue(c, o)?;
        }
        WriteOp::OutboxDelivered { id, at } => {
            c.prepare_cached(
                "UPDATE outbox SET status = 'delivered', delivered_at = ?2, attempts = attempts + 1
                 WHERE id = ?1 AND status = 'pending'",
            )?
            .execute(params![id, ms(*at)])?;
        }
        WriteOp::OutboxFailed {
            id,
            error,
            next_attempt_at,
        } => {
            c.prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3
                 WHERE id = ?1 AND status = 'pending'",
            )?
            .execute(params![id, error, ms(*next_attempt_at)])?;
        }
    }
    Ok(())
}

fn enqueue(c: &Connection, o: &OutboxRecord) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached(
            "INSERT INTO outbox (idempotency_key, receiver, payload, status, attempts,
                                 next_attempt_at, created_at, expires_at)
             VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?5, ?6)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )?
        .execute(params![
            o.idempotency_key,
            o.receiver,
            json(&o.payload)?,
            ms(o.next_attempt_at),
            ms(o.created_at),
            ms(o.expires_at)
        ])?;
    Ok(n == 1)
}

const OUTBOX_COLUMNS: &str = "id, idempotency_key, receiver, payload, status, attempts, \
     next_attempt_at, created_at, expires_at, last_error, delivered_at";

fn outbox_row(r: &Row<'_>) -> rusqlite::Result<OutboxRecord> {
    let status: String = r.get(4)?;
    Ok(OutboxRecord {
        id: r.get(0)?,
        idempotency_key: r.get(1)?,
        receiver: r.get(2)?,
        payload: json_col(r, 3)?,
        status: OutboxStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                4,
                Type::Text,
                format!("unknown outbox status {status:?}").into(),
            )
        })?,
        attempts: r.get(5)?,
        next_attempt_at: ts_col(r, 6)?,
        created_at: ts_col(r, 7)?,
        expires_at: ts_col(r, 8)?,
        last_error: r.get(9)?,
        delivered_at: opt_ts_col(r, 10)?,
    })
}

const MAINTENANCE_COLUMNS: &str = "id, reference, description, effect, scope_kind, scope_value, \
     starts_at, ends_at, created_at, created_by, deleted";

fn maintenance_row(r: &Row<'_>) -> rusqlite::Result<MaintenanceRecord> {
    Ok(MaintenanceRecord {
        id: r.get(0)?,
        reference: r.get(1)?,
        description: r.get(2)?,
        effect: r.get(3)?,
        scope_kind: r.get(4)?,
        scope_value: r.get(5)?,
        start: ts_col(r, 6)?,
        end: ts_col(r, 7)?,
        created_at: ts_col(r, 8)?,
        created_by: r.get(9)?,
        deleted: r.get(10)?,
    })
}

fn check_maintenance(m: &MaintenanceRecord) -> Result<(), StoreError> {
    if !matches!(m.effect.as_str(), "exclude" | "mute") {
        return Err(StoreError::Invalid(format!(
            "maintenance effect must be 'exclude' or 'mute', not {:?}",
            m.effect
        )));
    }
    if m.end <= m.start {
        return Err(StoreError::Invalid(format!(
            "maintenance {} ends ({}) before it starts ({})",
            m.reference, m.end, m.start
        )));
    }
    Ok(())
}

const INCIDENT_SELECT: &str = "SELECT i.id, s.name, i.started_at, i.ended_at, i.cause, i.evidence \
     FROM incidents i JOIN services s ON s.id = i.service_id";

fn incident_row(r: &Row<'_>) -> rusqlite::Result<IncidentRecord> {
    Ok(IncidentRecord {
        id: r.get(0)?,
        service: r.get(1)?,
        started_at: ts_col(r, 2)?,
        ended_at: opt_ts_col(r, 3)?,
        cause: json_col(r, 4)?,
        evidence: json_col(r, 5)?,
    })
}

const RECOMPUTATION_COLUMNS: &str = "id, created_at, reason, config_digest, service, range_from, \
     range_to, before, after, who";

fn recomputation_row(r: &Row<'_>) -> rusqlite::Result<RecomputationRecord> {
    Ok(RecomputationRecord {
        id: r.get(0)?,
        created_at: ts_col(r, 1)?,
        reason: r.get(2)?,
        config_digest: r.get(3)?,
        service: r.get(4)?,
        from: ts_col(r, 5)?,
        to: ts_col(r, 6)?,
        before: json_col(r, 7)?,
        after: json_col(r, 8)?,
        who: r.get(9)?,
    })
}

const SNAPSHOT_COLUMNS: &str = "id, service, sla, period, computed_at, recomputation_id, figures";

fn snapshot_row(r: &Row<'_>) -> rusqlite::Result<SlaSnapshot> {
    Ok(SlaSnapshot {
        id: r.get(0)?,
        service: r.get(1)?,
        sla: r.get(2)?,
        period: r.get(3)?,
        computed_at: ts_col(r, 4)?,
        recomputation_id: r.get(5)?,
        figures: json_col(r, 6)?,
    })
}

fn insert_snapshot(
    c: &Connection,
    s: &SlaSnapshot,
    recomputation: Option<i64>,
) -> Result<i64, StoreError> {
    c.prepare_cached(
        "INSERT INTO sla_snapshots (service, sla, period, computed_at, recomputation_id, figures)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        s.service,
        s.sla,
        s.period,
        ms(s.computed_at),
        recomputation,
        json(&s.figures)?
    ])?;
    Ok(c.last_insert_rowid())
}

fn service_id(c: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached("SELECT id FROM services WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()
}

/// `(id, name)` of the checks of `service` (or only `check`), by name.
fn checks_of(
    c: &Connection,
    service_id: i64,
    check: Option<&str>,
) -> rusqlite::Result<Vec<(i64, String)>> {
    c.prepare_cached(
        "SELECT id, name FROM checks WHERE service_id = ?1 AND (?2 IS NULL OR name = ?2) ORDER BY name",
    )?
    .query_map(params![service_id, check], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect()
}

/// The stored millisecond span `[lo, hi]` of some checks' results.
fn data_span(c: &Connection, checks: &[(i64, String)]) -> rusqlite::Result<Option<(i64, i64)>> {
    let mut span: Option<(i64, i64)> = None;
    let mut widen = |lo: Option<i64>, hi: Option<i64>| {
        if let (Some(lo), Some(hi)) = (lo, hi) {
            span = Some(match span {
                None => (lo, hi),
                Some((a, b)) => (a.min(lo), b.max(hi)),
            });
        }
    };
    for (id, _) in checks {
        let (lo, hi): (Option<i64>, Option<i64>) = c
            .prepare_cached(
                "SELECT min(hour) * 3600000, (max(hour) + 1) * 3600000 FROM result_blocks WHERE check_id = ?1",
            )?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        widen(lo, hi);
    }
    // Of all checks: per check it would take a scan, and a wider span
    // only costs a few empty lookups.
    let (lo, hi): (Option<i64>, Option<i64>) = c
        .prepare_cached("SELECT min(ts), max(ts) + 1 FROM results_recent")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    widen(lo, hi);
    Ok(span)
}

fn recent_range(c: &Connection, check_id: i64, lo: i64, hi: i64) -> rusqlite::Result<Vec<Entry>> {
    c.prepare_cached(
        "SELECT ts, status, duration_us, source_id, detail FROM results_recent
         WHERE ts >= ?2 AND ts < ?3 AND check_id = ?1 ORDER BY ts",
    )?
    .query_map(params![check_id, lo, hi], |r| entry_from_recent(r, 0))?
    .collect()
}

/// `(check_id, ts)` of every row in `results_recent` within `hour`.
fn recent_keys(c: &Connection, hour: i64) -> rusqlite::Result<HashSet<(i64, i64)>> {
    c.prepare_cached("SELECT check_id, ts FROM results_recent WHERE ts >= ?1 AND ts < ?2")?
        .query_map(params![hour * HOUR_MS, (hour + 1) * HOUR_MS], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect()
}

/// Rows of `results_recent` in `[lo, hi)` of the checks in `wanted`
/// (check id to caller's index), in one pass.
fn recent_window(
    c: &Connection,
    lo: i64,
    hi: i64,
    wanted: &HashMap<i64, usize>,
    out: &mut Vec<(usize, Entry)>,
) -> rusqlite::Result<()> {
    let mut stmt = c.prepare_cached(
        "SELECT check_id, ts, status, duration_us, source_id, detail FROM results_recent
         WHERE ts >= ?1 AND ts < ?2",
    )?;
    let mut rows = stmt.query(params![lo, hi])?;
    while let Some(row) = rows.next()? {
        if let Some(&i) = wanted.get(&row.get(0)?) {
            out.push((i, entry_from_recent(row, 1)?));
        }
    }
    Ok(())
}

fn blocks_range(
    c: &Connection,
    check_id: i64,
    hour_lo: i64,
    hour_hi: i64,
) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT hour, data FROM result_blocks WHERE check_id = ?1 AND hour >= ?2 AND hour < ?3 ORDER BY hour",
    )?;
    let mut rows = stmt.query(params![check_id, hour_lo, hour_hi])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let hour: i64 = row.get(0)?;
        let data: Vec<u8> = row.get(1)?;
        out.extend(decode_block(hour, &data).map_err(|why| corrupt_block(check_id, hour, why))?);
    }
    Ok(out)
}

/// Count stored in a block's header, without decoding the entries.
fn block_len(head: &[u8]) -> u64 {
    let mut v = 0u64;
    for (i, b) in head.iter().skip(1).take(9).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            break;
        }
    }
    v
}

impl SqliteStore {
    /// Open (or create) the store at `path` with default options.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, SqliteOptions::default())
    }

    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let display = path.display().to_string();
        let opened = |source| StoreError::Open {
            path: display.clone(),
            source,
        };
        let mut conn = Connection::open(path).map_err(opened)?;
        configure(&conn, &options, true).map_err(opened)?;
        schema::migrate(&mut conn, &display, schema::MIGRATIONS).map_err(|e| match e {
            StoreError::Sqlite(source) => opened(source),
            other => other,
        })?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteStore {
            path: path.to_path_buf(),
            display,
            options,
            writer: Mutex::new(WriteSide {
                conn,
                ids: Ids::default(),
            }),
            readers: Mutex::new(Vec::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes on disk: the database file plus its WAL.
    pub fn disk_bytes(&self) -> u64 {
        let size = |p: PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        size(self.path.clone()) + size(PathBuf::from(wal))
    }

    /// Copy every committed page of the WAL into the database file and
    /// truncate the WAL (SQLite also does this on its own every ~4 MiB).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        w.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// `PRAGMA integrity_check`: `"ok"` or the problems found.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.read(|c| {
            let lines: Vec<String> = c
                .prepare("PRAGMA integrity_check")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(lines.join("\n"))
        })
    }

    /// Write a consistent copy of the store to `dest` (which must not
    /// exist) while it keeps running.
    pub fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        let dest = dest.to_str().ok_or_else(|| {
            StoreError::Invalid(format!("backup path {} is not UTF-8", dest.display()))
        })?;
        // Not a pooled reader: those are query_only, which VACUUM refuses
        // even though it only reads this database.
        let c = Connection::open(&self.path).map_err(|source| StoreError::Open {
            path: self.display.clone(),
            source,
        })?;
        c.busy_timeout(self.options.busy_timeout)?;
        c.execute("VACUUM INTO ?1", [dest])?;
        Ok(())
    }

    /// Bytes used per table and index (from the `dbstat` table), largest
    /// first.
    pub fn space_by_table(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|c| {
            Ok(c.prepare(
                "SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC",
            )?
            .query_map([], |r| Ok((r.get(0)?, unsigned(r.get(1)?))))?
            .collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Limit the file to its current size, so the next growth fails like a
    /// full disk.
    #[cfg(test)]
    pub(crate) fn simulate_disk_full(&self, full: bool) {
        let w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let pages: i64 = if full {
            w.conn
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .unwrap_or(1)
        } else {
            i64::from(u32::MAX - 1)
        };
        let _ = w
            .conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()));
    }

    fn open_reader(&self) -> Result<Connection, StoreError> {
        let c = Connection::open(&self.path).map_err(|source| StoreError::Open {
            path: self.display.clone(),
            source,
        })?;
        configure(&c, &self.options, false)?;
        c.set_prepared_statement_cache_capacity(32);
        Ok(c)
    }

    /// Run `f` in a read transaction, so that it sees one snapshot even
    /// while a roll-up moves results from rows into blocks.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.open_reader()?,
        };
        let out = (|| {
            let tx = conn.transaction()?;
            let v = f(&tx)?;
            tx.commit()?;
            Ok(v)
        })();
        let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < READ_POOL {
            pool.push(conn);
        }
        out
    }

    /// Run `f` in an immediate write transaction on the write connection.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &mut Ids) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let WriteSide { conn, ids } = &mut *guard;
        let out = (|| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let v = f(&tx, ids)?;
            tx.commit()?;
            Ok(v)
        })();
        if out.is_err() {
            ids.clear();
        }
        out
    }
}

/// Append to `out` the transition in force at `from` (by `sql.0`) and
/// those in `[from, to)` (by `sql.1`) of one check or service `id`.
fn transitions_in_force<T>(
    c: &Connection,
    sql: (&str, &str),
    (id, from, to): (i64, i64, i64),
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
    out: &mut Vec<T>,
) -> rusqlite::Result<()> {
    if let Some(t) = c
        .prepare_cached(sql.0)?
        .query_row(params![id, from], &map)
        .optional()?
    {
        out.push(t);
    }
    let mut stmt = c.prepare_cached(sql.1)?;
    for t in stmt.query_map(params![id, from, to], &map)? {
        out.push(t?);
    }
    Ok(())
}

fn configure(c: &Connection, o: &SqliteOptions, writer: bool) -> rusqlite::Result<()> {
    c.busy_timeout(o.busy_timeout)?;
    let mode: String = c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "store is not in WAL mode; crash safety is reduced");
    }
    let sync = match o.synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    c.pragma_update(None, "synchronous", sync)?;
    c.pragma_update(None, "temp_store", "MEMORY")?;
    if writer {
        c.pragma_update(None, "cache_size", -(i64::from(o.cache_mib) * 1024))?;
    } else {
        c.pragma_update(None, "query_only", true)?;
        // Readers scan ranges once; the operating system's page cache
        // holds the file, not each of the pooled connections.
        c.pragma_update(None, "cache_size", -1024)?;
    }
    Ok(())
}

impl Store for SqliteStore {
    fn write_batch(&self, ops: &[WriteOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.write(|tx, ids| {
            for op in ops {
                apply(tx, ids, op)?;
            }
            Ok(())
        })
    }

    fn insert_results_atomic(
        &self,
        rows: &[ResultRecord],
        skip_duplicates: bool,
    ) -> Result<ImportReport, StoreError> {
        // Hours already over go straight into blocks (an import of history
        // need not pass through the row table); the current hour is left to
        // the regular roll-up.
        let current_hour = hour_of(ms(Timestamp::now()));
        self.write(|tx, ids| {
            let mut groups: BTreeMap<(i64, i64), Vec<(usize, Entry)>> = BTreeMap::new();
            for (i, r) in rows.iter().enumerate() {
                let check_id = ids.check(tx, &r.service, &r.check)?;
                let e = ids.entry(tx, r)?;
                groups
                    .entry((check_id, hour_of(e.ts)))
                    .or_default()
                    .push((i, e));
            }
            let mut duplicates = Vec::new();
            let mut fresh: Vec<((i64, i64), Vec<Entry>)> = Vec::with_capacity(groups.len());
            // Rows not rolled up yet, per hour: one scan for all checks.
            let mut recent: HashMap<i64, HashSet<(i64, i64)>> = HashMap::new();
            for ((check_id, hour), mut items) in groups {
                let stored: HashSet<i64> = block(tx, check_id, hour)?
                    .into_iter()
                    .map(|e| e.ts)
                    .collect();
                let recent = match recent.entry(hour) {
                    MapEntry::Occupied(o) => o.into_mut(),
                    MapEntry::Vacant(v) => v.insert(recent_keys(tx, hour)?),
                };
                items.retain(|(i, e)| {
                    let dup = recent.contains(&(check_id, e.ts));
                    if dup {
                        duplicates.push(*i);
                    }
                    !dup
                });
                items.sort_by_key(|(i, e)| (e.ts, *i));
                let mut keep: Vec<Entry> = Vec::with_capacity(items.len());
                for (i, e) in items {
                    if stored.contains(&e.ts) || keep.last().is_some_and(|k| k.ts == e.ts) {
                        duplicates.push(i);
                    } else {
                        keep.push(e);
                    }
                }
                fresh.push(((check_id, hour), keep));
            }
            duplicates.sort_unstable();
            if !duplicates.is_empty() && !skip_duplicates {
                return Err(StoreError::Duplicates { rows: duplicates });
            }
            let mut inserted = 0u64;
            for ((check_id, hour), keep) in fresh {
                if keep.is_empty() {
                    continue;
                }
                inserted += keep.len() as u64;
                if hour < current_hour {
                    merge_into_block(tx, check_id, hour, keep)?;
                } else {
                    for e in &keep {
                        insert_recent(tx, check_id, e)?;
                    }
                }
            }
            Ok(ImportReport {
                inserted,
                duplicates,
            })
        })
    }

    fn insert_rollups(&self, rows: &[RollupRecord]) -> Result<(), StoreError> {
        self.write(|tx, ids| {
            for r in rows {
                let check_id = ids.check(tx, &r.service, &r.check)?;
                let a = Aggregate {
                    count: r.count,
                    failures: r.failures,
                    sum_us: micros(r.duration_sum),
                    buckets: Aggregate::buckets_from(&r.buckets),
                };
                write_rollup(tx, check_id, hour_of(ms(r.hour)), &a)?;
            }
            Ok(())
        })
    }

    fn results(
        &self,
        service: &str,
        check: Option<&str>,
        from: Timestamp,
        to: Timestamp,
        sink: &mut dyn FnMut(ResultRecord),
    ) -> Result<(), StoreError> {
        self.read(|c| {
            let Some(sid) = service_id(c, service)? else {
                return Ok(());
            };
            let checks = checks_of(c, sid, check)?;
            let Some((data_lo, data_hi)) = data_span(c, &checks)? else {
                return Ok(());
            };
            let names = Names::load(c)?;
            let wanted: HashMap<i64, usize> = checks
                .iter()
                .enumerate()
                .map(|(i, (id, _))| (*id, i))
                .collect();
            let (from, to) = (ms(from).max(data_lo), ms(to).min(data_hi));
            // A day at a time: bounded memory, yet few queries.
            const WINDOW: i64 = 24 * HOUR_MS;
            let mut w0 = hour_of(from) * HOUR_MS;
            while w0 < to {
                let w1 = w0 + WINDOW;
                let (lo, hi) = (from.max(w0), to.min(w1));
                let mut batch: Vec<(usize, Entry)> = Vec::new();
                for (ci, (id, _)) in checks.iter().enumerate() {
                    let stored = blocks_range(c, *id, w0 / HOUR_MS, w1 / HOUR_MS)?;
                    batch.extend(
                        stored
                            .into_iter()
                            .filter(|e| e.ts >= lo && e.ts < hi)
                            .map(|e| (ci, e)),
                    );
                }
                recent_window(c, lo, hi, &wanted, &mut batch)?;
                batch.sort_by_key(|(ci, e)| (e.ts, *ci));
                batch.dedup_by_key(|(ci, e)| (e.ts, *ci));
                for (ci, e) in batch {
                    sink(names.record(service, &checks[ci].1, e)?);
                }
                w0 = w1;
            }
            Ok(())
        })
    }

    fn last_result(&self, service: &str, check: &str) -> Result<Option<ResultRecord>, StoreError> {
        self.read(|c| {
            let Some(sid) = service_id(c, service)? else {
                return Ok(None);
            };
            let Some((id, name)) = checks_of(c, sid, Some(check))?.into_iter().next() else {
                return Ok(None);
            };
            let names = Names::load(c)?;
            let recent = last_recent(c, id)?;
            last_of(c, &names, (id, service, &name), recent)
        })
    }

    fn last_results(&self) -> Result<Vec<ResultRecord>, StoreError> {
        self.read(|c| {
            let names = Names::load(c)?;
            let checks: Vec<(i64, String, String)> = c
                .prepare(
                    "SELECT c.id, s.name, c.name FROM checks c JOIN services s ON s.id = c.service_id
                     ORDER BY s.name, c.name",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            // One pass over the rows not rolled up, rather than one per check.
            let mut recent: HashMap<i64, Entry> = HashMap::new();
            {
                let mut stmt = c.prepare_cached(
                    "SELECT check_id, ts, status, duration_us, source_id, detail FROM results_recent
                     ORDER BY ts",
                )?;
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    let e = entry_from_recent(row, 1)?;
                    recent.insert(row.get(0)?, e);
                }
            }
            let mut out = Vec::new();
            for (id, service, check) in checks {
                let newest = recent.remove(&id);
                out.extend(last_of(c, &names, (id, &service, &check), newest)?);
            }
            Ok(out)
        })
    }

    fn rollups(
        &self,
        service: &str,
        check: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<RollupRecord>, StoreError> {
        // Hours *starting* in [from, to).
        let hour_lo = ms(from).div_euclid(HOUR_MS) + i64::from(ms(from).rem_euclid(HOUR_MS) != 0);
        let hour_hi = ms(to).div_euclid(HOUR_MS) + i64::from(ms(to).rem_euclid(HOUR_MS) != 0);
        self.read(|c| {
            let Some(sid) = service_id(c, service)? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for (id, name) in checks_of(c, sid, check)? {
                let mut hours: BTreeMap<i64, Aggregate> = BTreeMap::new();
                let mut stmt = c.prepare_cached(
                    "SELECT hour, count, failures, sum_us, buckets FROM rollups
                     WHERE check_id = ?1 AND hour >= ?2 AND hour < ?3",
                )?;
                let mut rows = stmt.query(params![id, hour_lo, hour_hi])?;
                while let Some(r) = rows.next()? {
                    let hour: i64 = r.get(0)?;
                    let buckets: Vec<u8> = r.get(4)?;
                    hours.insert(
                        hour,
                        Aggregate {
                            count: unsigned(r.get(1)?),
                            failures: unsigned(r.get(2)?),
                            sum_us: unsigned(r.get(3)?),
                            buckets: Aggregate::decode_buckets(&buckets)
                                .map_err(|why| corrupt_block(id, hour, why))?,
                        },
                    );
                }
                for e in recent_range(c, id, hour_lo * HOUR_MS, hour_hi * HOUR_MS)? {
                    hours
                        .entry(hour_of(e.ts))
                        .or_default()
                        .add(e.failed, e.duration_us);
                }
                for (hour, a) in hours {
                    out.push(RollupRecord {
                        service: service.to_string(),
                        check: name.clone(),
                        hour: ts(hour * HOUR_MS)?,
                        count: a.count,
                        failures: a.failures,
                        duration_sum: Duration::from_micros(a.sum_us),
                        buckets: a.buckets.to_vec(),
                    });
                }
            }
            Ok(out)
        })
    }

    fn check_transitions(
        &self,
        service: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<CheckTransitionRecord>, StoreError> {
        self.read(|c| {
            let checks: Vec<(i64, String, String)> = c
                .prepare_cached(
                    "SELECT c.id, s.name, c.name FROM checks c JOIN services s ON s.id = c.service_id
                     WHERE ?1 IS NULL OR s.name = ?1 ORDER BY s.name, c.name",
                )?
                .query_map([service], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::new();
            for (id, service, check) in checks {
                let map = |r: &Row<'_>| {
                    Ok(CheckTransitionRecord {
                        service: service.clone(),
                        check: check.clone(),
                        at: ts_col(r, 0)?,
                        state: r.get(1)?,
                        reason: r.get(2)?,
                    })
                };
                transitions_in_force(
                    c,
                    (
                        "SELECT at, state, reason FROM check_transitions
                         WHERE check_id = ?1 AND at < ?2 ORDER BY at DESC, id DESC LIMIT 1",
                        "SELECT at, state, reason FROM check_transitions
                         WHERE check_id = ?1 AND at >= ?2 AND at < ?3 ORDER BY at, id",
                    ),
                    (id, ms(from), ms(to)),
                    map,
                    &mut out,
                )?;
            }
            Ok(out)
        })
    }

    fn service_transitions(
        &self,
        service: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ServiceTransitionRecord>, StoreError> {
        self.read(|c| {
            let services: Vec<(i64, String)> = c
                .prepare_cached(
                    "SELECT id, name FROM services WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
                )?
                .query_map([service], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut out = Vec::new();
            for (id, name) in services {
                let map = |r: &Row<'_>| {
                    Ok(ServiceTransitionRecord {
                        service: name.clone(),
                        at: ts_col(r, 0)?,
                        state: r.get(1)?,
                        cause: r.get(2)?,
                    })
                };
                transitions_in_force(
                    c,
                    (
                        "SELECT at, state, cause FROM service_transitions
                         WHERE service_id = ?1 AND at < ?2 ORDER BY at DESC, id DESC LIMIT 1",
                        "SELECT at, state, cause FROM service_transitions
                         WHERE service_id = ?1 AND at >= ?2 AND at < ?3 ORDER BY at, id",
                    ),
                    (id, ms(from), ms(to)),
                    map,
                    &mut out,
                )?;
            }
            Ok(out)
        })
    }

    fn incidents(
        &self,
        service: Option<&str>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<IncidentRecord>, StoreError> {
        self.read(|c| {
            let sql = format!(
                "{INCIDENT_SELECT} WHERE i.started_at < ?2 AND (i.ended_at IS NULL OR i.ended_at > ?1)
                 AND (?3 IS NULL OR s.name = ?3) ORDER BY i.started_at, i.id"
            );
            Ok(c.prepare_cached(&sql)?
                .query_map(params![ms(from), ms(to), service], incident_row)?
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    fn open_incident(&self, service: &str) -> Result<Option<IncidentRecord>, StoreError> {
        self.read(|c| {
            let sql = format!(
                "{INCIDENT_SELECT} WHERE s.name = ?1 AND i.ended_at IS NULL
                 ORDER BY i.started_at DESC LIMIT 1"
            );
            Ok(c.prepare_cached(&sql)?
                .query_row([service], incident_row)
                .optional()?)
        })
    }

    fn open_incidents(&self) -> Result<Vec<IncidentRecord>, StoreError> {
        self.read(|c| {
            let sql =
                format!("{INCIDENT_SELECT} WHERE i.ended_at IS NULL ORDER BY s.name, i.started_at");
            Ok(c.prepare_cached(&sql)?
                .query_map([], incident_row)?
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    fn start_run(&self, at: Timestamp) -> Result<i64, StoreError> {
        self.write(|tx, _| {
            tx.execute(
                "INSERT INTO runs (started_at, last_heartbeat_at) VALUES (?1, ?1)",
                [ms(at)],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn stop_run(&self, run: i64, at: Timestamp) -> Result<(), StoreError> {
        self.write(|tx, _| {
            tx.execute(
                "UPDATE runs SET stopped_at = ?2, last_heartbeat_at = max(last_heartbeat_at, ?2)
                 WHERE id = ?1",
                params![run, ms(at)],
            )?;
            Ok(())
        })
    }

    fn runs(&self, from: Timestamp, to: Timestamp) -> Result<Vec<RunRecord>, StoreError> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT id, started_at, last_heartbeat_at, stopped_at FROM runs
                 WHERE started_at < ?2 AND coalesce(stopped_at, last_heartbeat_at) >= ?1
                 ORDER BY started_at, id",
            )?
            .query_map(params![ms(from), ms(to)], |r| {
                Ok(RunRecord {
                    id: r.get(0)?,
                    started_at: ts_col(r, 1)?,
                    last_heartbeat_at: ts_col(r, 2)?,
                    stopped_at: opt_ts_col(r, 3)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?)
        })
    }

    fn insert_maintenance(&self, m: &MaintenanceRecord) -> Result<i64, StoreError> {
        check_maintenance(m)?;
        self.write(|tx, _| {
            tx.execute(
                "INSERT INTO maintenances (reference, description, effect, scope_kind, scope_value,
                                           starts_at, ends_at, created_at, created_by, deleted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    m.reference,
                    m.description,
                    m.effect,
                    m.scope_kind,
                    m.scope_value,
                    ms(m.start),
                    ms(m.end),
                    ms(m.created_at),
                    m.created_by,
                    m.deleted
                ],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn maintenance(&self, id: i64) -> Result<Option<MaintenanceRecord>, StoreError> {
        self.read(|c| {
            let sql = format!("SELECT {MAINTENANCE_COLUMNS} FROM maintenances WHERE id = ?1");
            Ok(c.prepare_cached(&sql)?
                .query_row([id], maintenance_row)
                .optional()?)
        })
    }

    fn maintenances(
        &self,
        from: Timestamp,
        to: Timestamp,
        include_deleted: bool,
    ) -> Result<Vec<MaintenanceRecord>, StoreError> {
        self.read(|c| {
            let sql = format!(
                "SELECT {MAINTENANCE_COLUMNS} FROM maintenances
                 WHERE starts_at < ?2 AND ends_at > ?1 AND (?3 OR deleted = 0)
                 ORDER BY starts_at, id"
            );
            Ok(c.prepare_cached(&sql)?
                .query_map(params![ms(from), ms(to), include_deleted], maintenance_row)?
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    fn update_maintenance(&self, m: &MaintenanceRecord) -> Result<bool, StoreError> {
        check_maintenance(m)?;
        self.write(|tx, _| {
            let n = tx.execute(
                "UPDATE maintenances SET reference = ?2, description = ?3, effect = ?4,
                   scope_kind = ?5, scope_value = ?6, starts_at = ?7, ends_at = ?8, deleted = ?9
                 WHERE id = ?1",
                params![
                    m.id,
                    m.reference,
                    m.description,
                    m.effect,
                    m.scope_kind,
                    m.scope_value,
                    ms(m.start),
                    ms(m.end),
                    m.deleted
                ],
            )?;
            Ok(n == 1)
        })
    }

    fn delete_maintenance(&self, id: i64) -> Result<bool, StoreError> {
        self.write(|tx, _| {
            let n = tx.execute(
                "UPDATE maintenances SET deleted = 1 WHERE id = ?1 AND deleted = 0",
                [id],
            )?;
            Ok(n == 1)
        })
    }

    fn outbox_enqueue(&self, item: &OutboxRecord) -> Result<bool, StoreError> {
        self.write(|tx, _| enqueue(tx, item))
    }

    fn outbox_due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        self.read(|c| {
            let sql = format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox
                 WHERE status = 'pending' AND next_attempt_at <= ?1 AND expires_at > ?1
                 ORDER BY next_attempt_at, id LIMIT ?2"
            );
            Ok(c.prepare_cached(&sql)?
                .query_map(params![ms(now), signed(limit as u64)], outbox_row)?
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    fn outbox_by_key(&self, idempotency_key: &str) -> Result<Option<OutboxRecord>, StoreError> {
        self.read(|c| {
            let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE idempotency_key = ?1");
            Ok(c.prepare_cached(&sql)?
                .query_row([idempotency_key], outbox_row)
                .optional()?)
        })
    }

    fn outbox_expire(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.write(|tx, _| {
            let n = tx.execute(
                "UPDATE outbox SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?1",
                [ms(now)],
            )?;
            Ok(n as u64)
        })
    }

    fn outbox_expire_items(&self, now: Timestamp) -> Result<Vec<OutboxRecord>, StoreError> {
        self.write(|tx, _| {
            let sql = format!(
                "UPDATE outbox SET status = 'expired'
                 WHERE status = 'pending' AND expires_at <= ?1
                 RETURNING {OUTBOX_COLUMNS}"
            );
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt
                .query_map([ms(now)], outbox_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    fn outbox_history(&self, since: Timestamp) -> Result<Vec<OutboxRecord>, StoreError> {
        self.read(|c| {
            let sql =
                format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE created_at >= ?1 ORDER BY id");
            Ok(c.prepare_cached(&sql)?
                .query_map([ms(since)], outbox_row)?
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    fn outbox_len(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            Ok(unsigned(c.query_row(
                "SELECT count(*) FROM outbox WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )?))
        })
    }

    fn insert_recomputation(
        &self,
        rec: &RecomputationRecord,
        snapshots: &[SlaSnapshot],
    ) -> Result<i64, StoreError> {
        self.write(|tx, _| {
            tx.execute(
                "INSERT INTO sla_recomputations (created_at, reason, config_digest, service,
                                                 range_from, range_to, before, after, who)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    ms(rec.created_at),
                    rec.reason,
                    rec.config_digest,
                    rec.service,
                    ms(rec.from),
                    ms(rec.to),
                    json(&rec.before)?,
                    json(&rec.after)?,
                    rec.who
                ],
            )?;
            let id = tx.last_insert_rowid();
            for s in snapshots {
                insert_snapshot(tx, s, Some(id))?;
            }
            Ok(id)
        })
    }

    fn recomputations(
        &self,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RecomputationRecord>, StoreError> {
        self.read(|c| {
            let sql = format!(
                "SELECT {RECOMPUTATION_COLUMNS} FROM sla_recomputations
                 WHERE ?1 IS NULL OR service = ?1 ORDER BY id DESC LIMIT ?2"
            );
            Ok(c.prepare_cached(&sql)?
                .query_map(params![service, signed(limit as u64)], recomputation_row)?
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    fn insert_sla_snapshot(&self, snapshot: &SlaSnapshot) -> Result<i64, StoreError> {
        self.write(|tx, _| insert_snapshot(tx, snapshot, snapshot.recomputation_id))
    }

    fn latest_sla_snapshots(&self, service: Option<&str>) -> Result<Vec<SlaSnapshot>, StoreError> {
        self.read(|c| {
            let sql = format!(
                "SELECT {SNAPSHOT_COLUMNS} FROM sla_snapshots WHERE id IN (
                   SELECT max(id) FROM sla_snapshots WHERE ?1 IS NULL OR service = ?1
                   GROUP BY service, sla, period)
                 ORDER BY service, sla, period"
            );
            Ok(c.prepare_cached(&sql)?
                .query_map([service], snapshot_row)?
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    fn sla_snapshot_history(
        &self,
        service: &str,
        sla: &str,
        period: &str,
    ) -> Result<Vec<SlaSnapshot>, StoreError> {
        self.read(|c| {
            let sql = format!(
                "SELECT {SNAPSHOT_COLUMNS} FROM sla_snapshots
                 WHERE service = ?1 AND sla = ?2 AND period = ?3 ORDER BY id"
            );
            Ok(c.prepare_cached(&sql)?
                .query_map(params![service, sla, period], snapshot_row)?
                .collect::<rusqlite::Result<_>>()?)
        })
    }

    fn roll_up(&self, before: Timestamp) -> Result<u64, StoreError> {
        let cutoff = hour_of(ms(before));
        let mut hours = 0;
        // One transaction per hour: a crash leaves every hour either still
        // in rows or wholly packed, and writers never wait long.
        loop {
            let sealed = self.write(|tx, _| {
                let min: Option<i64> =
                    tx.query_row("SELECT min(ts) FROM results_recent", [], |r| r.get(0))?;
                match min.map(hour_of) {
                    Some(hour) if hour < cutoff => {
                        seal_hour(tx, hour)?;
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            })?;
            if !sealed {
                return Ok(hours);
            }
            hours += 1;
        }
    }

    fn prune(
        &self,
        now: Timestamp,
        retention: Duration,
        rollup_retention: Duration,
    ) -> Result<PruneReport, StoreError> {
        let before =
            |d: Duration| ms(now).saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        // Whole hours only: an hour is kept while any of it is in retention.
        let raw_hour = hour_of(before(retention));
        let rollup_hour = hour_of(before(rollup_retention));
        let cutoff = before(rollup_retention);
        let mut report = PruneReport {
            hours_rolled_up: self.roll_up(ts(raw_hour * HOUR_MS)?)?,
            ..PruneReport::default()
        };
        let (checks, services): (Vec<i64>, Vec<i64>) = self.read(|c| {
            let checks = c
                .prepare("SELECT id FROM checks")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let services = c
                .prepare("SELECT id FROM services")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok((checks, services))
        })?;
        for chunk in checks.chunks(PRUNE_CHECKS_PER_TX) {
            self.write(|tx, _| {
                for id in chunk {
                    let mut heads = tx.prepare_cached(
                        "SELECT substr(data, 1, 10) FROM result_blocks WHERE check_id = ?1 AND hour < ?2",
                    )?;
                    for head in heads.query_map(params![id, raw_hour], |r| r.get::<_, Vec<u8>>(0))? {
                        report.results += block_len(&head?);
                    }
                    tx.prepare_cached("DELETE FROM result_blocks WHERE check_id = ?1 AND hour < ?2")?
                        .execute(params![id, raw_hour])?;
                    report.rollups += tx
                        .prepare_cached("DELETE FROM rollups WHERE check_id = ?1 AND hour < ?2")?
                        .execute(params![id, rollup_hour])? as u64;
                    report.check_transitions += tx
                        .prepare_cached(
                            "DELETE FROM check_transitions WHERE check_id = ?1 AND at < (
                               SELECT at FROM check_transitions WHERE check_id = ?1 AND at < ?2
                               ORDER BY at DESC LIMIT 1)",
                        )?
                        .execute(params![id, cutoff])? as u64;
                }
                Ok(())
            })?;
        }
        self.write(|tx, _| {
            report.results += tx.execute(
                "DELETE FROM results_recent WHERE ts < ?1",
                [raw_hour * HOUR_MS],
            )? as u64;
            for id in &services {
                report.service_transitions +=
                    tx.prepare_cached(
                        "DELETE FROM service_transitions WHERE service_id = ?1 AND at < (
                           SELECT at FROM service_transitions WHERE service_id = ?1 AND at < ?2
                           ORDER BY at DESC LIMIT 1)",
                    )?
                    .execute(params![id, cutoff])? as u64;
            }
            report.incidents += tx.execute(
                "DELETE FROM incidents WHERE ended_at IS NOT NULL AND ended_at < ?1",
                [cutoff],
            )? as u64;
            report.runs += tx.execute(
                "DELETE FROM runs WHERE coalesce(stopped_at, last_heartbeat_at) < ?1",
                [cutoff],
            )? as u64;
            report.maintenances +=
                tx.execute("DELETE FROM maintenances WHERE ends_at < ?1", [cutoff])? as u64;
            report.outbox += tx.execute(
                "DELETE FROM outbox WHERE status <> 'pending' AND created_at < ?1",
                [raw_hour * HOUR_MS],
            )? as u64;
            Ok(())
        })?;
        Ok(report)
    }
}

/// The newest row of one check in `results_recent`.
fn last_recent(c: &Connection, check_id: i64) -> rusqlite::Result<Option<Entry>> {
    c.prepare_cached(
        "SELECT ts, status, duration_us, source_id, detail FROM results_recent
         WHERE check_id = ?1 ORDER BY ts DESC LIMIT 1",
    )?
    .query_row([check_id], |r| entry_from_recent(r, 0))
    .optional()
}

/// The newest of `recent` (the check's newest row not rolled up) and the
/// last entry of its newest block.
fn last_of(
    c: &Connection,
    names: &Names,
    (check_id, service, check): (i64, &str, &str),
    recent: Option<Entry>,
) -> Result<Option<ResultRecord>, StoreError> {
    let packed: Option<(i64, Vec<u8>)> = c
        .prepare_cached(
            "SELECT hour, data FROM result_blocks WHERE check_id = ?1 ORDER BY hour DESC LIMIT 1",
        )?
        .query_row([check_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let packed = match packed {
        None => None,
        Some((hour, data)) => decode_block(hour, &data)
            .map_err(|why| corrupt_block(check_id, hour, why))?
            .pop(),
    };
    let newest = match (recent, packed) {
        (Some(a), Some(b)) => Some(if b.ts > a.ts { b } else { a }),
        (a, b) => a.or(b),
    };
    newest.map(|e| names.record(service, check, e)).transpose()
}

#[cfg(test)]
impl SqliteStore {
    pub(crate) fn recent_rows(&self) -> u64 {
        self.read(|c| {
            Ok(unsigned(c.query_row(
                "SELECT count(*) FROM results_recent",
                [],
                |r| r.get(0),
            )?))
        })
        .unwrap_or(0)
    }
}
