//! The embedded store: one SQLite file in WAL mode. Writes go through one
//! connection (the writer thread's batches, API writes); reads use a small
//! pool of read-only connections, each query in its own snapshot.
//!
//! Raw results first land one row each in `results_recent`; when their
//! hour is rolled up they are packed per check and hour into
//! `result_blocks` (about 5 bytes a result) and counted into `rollups`.
//!
//! This file holds the connections and what every role shares (interned
//! ids, column conversions); each role's queries are in their own file:
//! `results.rs` (with `blocks.rs`, the packed layout), `history.rs`,
//! `maintenance.rs`, `outbox.rs`, `runs.rs`, and `batch.rs` for the
//! writer's batches and housekeeping.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::types::Type;
use rusqlite::{Connection, Row, Transaction, params};

use super::codec::Entry;
use super::schema;
use super::{ResultRecord, ResultSource, StoreError};

mod batch;
mod blocks;
mod history;
mod maintenance;
mod outbox;
mod reports;
mod results;
mod runs;

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

/// Device and inode of the file at `path`.
fn file_identity(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// The SQLite implementation of every role of [`super::Store`].
pub struct SqliteStore {
    path: PathBuf,
    /// Device and inode of the file opened, to notice it deleted or
    /// replaced (`BatchStore::check_file`).
    identity: Option<(u64, u64)>,
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
            identity: file_identity(path).ok(),
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

    /// `Err` with what happened when the file at our path is no longer the
    /// one opened.
    pub(crate) fn check_identity(&self) -> Result<(), String> {
        let Some(opened) = self.identity else {
            return Ok(());
        };
        match file_identity(&self.path) {
            Ok(now) if now == opened => Ok(()),
            Ok(_) => Err(format!(
                "the store file {} was replaced by another file while continuity runs; what is written now goes to the old file and is lost at restart: restart continuity",
                self.display
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "the store file {} was deleted while continuity runs; what is written now is lost at restart: restore it or restart continuity",
                self.display
            )),
            Err(e) => Err(format!(
                "cannot look at the store file {}: {e}",
                self.display
            )),
        }
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
