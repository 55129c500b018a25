//! Maintenance windows created through the API, in SQLite
//! ([`MaintenanceStore`]). Deleting one only marks it: the audit trail
//! keeps it until pruning.

use jiff::Timestamp;
use rusqlite::{Row, params};

use super::{SqliteStore, ms, ts_col};
use crate::store::{MaintenanceRecord, MaintenanceStore, StoreError};

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

impl MaintenanceStore for SqliteStore {
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

    fn delete_maintenance(&self, id: i64) -> Result<bool, StoreError> {
        self.write(|tx, _| {
            let n = tx.execute(
                "UPDATE maintenances SET deleted = 1 WHERE id = ?1 AND deleted = 0",
                [id],
            )?;
            Ok(n == 1)
        })
    }
}
