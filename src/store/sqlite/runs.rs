//! The intervals the daemon ran, in SQLite ([`RunStore`]): a run without
//! `stopped_at` ended in a crash, some time after its last heartbeat.

use jiff::Timestamp;
use rusqlite::{Connection, params};

use super::{SqliteStore, ms};
use crate::store::{RunStore, StoreError};

pub(super) fn heartbeat(c: &Connection, run: i64, at: Timestamp) -> Result<(), StoreError> {
    c.prepare_cached(
        "UPDATE runs SET last_heartbeat_at = max(last_heartbeat_at, ?2) WHERE id = ?1",
    )?
    .execute(params![run, ms(at)])?;
    Ok(())
}

impl RunStore for SqliteStore {
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
}
