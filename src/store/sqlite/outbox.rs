//! The alert outbox in SQLite ([`NotificationStore`]): enqueued once per
//! idempotency key, then delivered, retried or expired.

use jiff::Timestamp;
use rusqlite::types::Type;
use rusqlite::{Connection, Row, params};

use super::{SqliteStore, ms, opt_ts_col, signed, ts_col, unsigned};
use crate::store::{JsonText, NotificationStore, OutboxRecord, OutboxStatus, StoreError};

/// Only a pending item changes: a late report of an item that expired
/// meanwhile leaves it expired.
pub(super) fn delivered(c: &Connection, id: i64, at: Timestamp) -> Result<(), StoreError> {
    c.prepare_cached(
        "UPDATE outbox SET status = 'delivered', delivered_at = ?2, attempts = attempts + 1
         WHERE id = ?1 AND status = 'pending'",
    )?
    .execute(params![id, ms(at)])?;
    Ok(())
}

pub(super) fn failed(
    c: &Connection,
    id: i64,
    error: &str,
    next_attempt_at: Timestamp,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3
         WHERE id = ?1 AND status = 'pending'",
    )?
    .execute(params![id, error, ms(next_attempt_at)])?;
    Ok(())
}

pub(super) fn enqueue(c: &Connection, o: &OutboxRecord) -> Result<bool, StoreError> {
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
            o.payload.text(),
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
        payload: JsonText::from_text(r.get(3)?)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, Type::Text, Box::new(e)))?,
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

impl NotificationStore for SqliteStore {
    fn outbox_delivered(&self, id: i64, at: Timestamp) -> Result<(), StoreError> {
        self.write(|tx, _| delivered(tx, id, at))
    }

    fn outbox_failed(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|tx, _| failed(tx, id, error, next_attempt_at))
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
}
