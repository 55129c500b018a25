//! Service transitions, incidents, SLA recomputations and snapshots in
//! SQLite ([`HistoryStore`]), and the batch writes that change them.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Ids, SqliteStore, json, json_col, ms, opt_ts_col, signed, ts_col};
use crate::store::{
    HistoryStore, IncidentRecord, RecomputationRecord, ServiceTransitionRecord, SlaSnapshot,
    StoreError, VerificationRecord,
};

/// Record a cutover's verification round, replacing an earlier one.
pub(super) fn write_verification(c: &Connection, v: &VerificationRecord) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO cutover_verifications (service, reference, at, passed, failing)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (service, reference) DO UPDATE SET
           at = excluded.at, passed = excluded.passed, failing = excluded.failing",
    )?
    .execute(params![
        v.service,
        v.reference,
        ms(v.at),
        v.passed,
        json(&v.failing)?
    ])?;
    Ok(())
}

pub(super) fn write_transition(
    c: &Connection,
    ids: &mut Ids,
    t: &ServiceTransitionRecord,
) -> Result<(), StoreError> {
    let service_id = ids.service(c, &t.service)?;
    // A timeline has at most one transition per instant: a rewritten one
    // replaces what was stored.
    c.prepare_cached("DELETE FROM service_transitions WHERE service_id = ?1 AND at = ?2")?
        .execute(params![service_id, ms(t.at)])?;
    c.prepare_cached(
        "INSERT INTO service_transitions (service_id, at, state, cause) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![service_id, ms(t.at), t.state, t.cause])?;
    Ok(())
}

pub(super) fn retract_transition(
    c: &Connection,
    service: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "DELETE FROM service_transitions
         WHERE service_id = (SELECT id FROM services WHERE name = ?1) AND at = ?2",
    )?
    .execute(params![service, ms(at)])?;
    Ok(())
}

pub(super) fn retract_transitions_from(
    c: &Connection,
    service: &str,
    from: Timestamp,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "DELETE FROM service_transitions
         WHERE service_id = (SELECT id FROM services WHERE name = ?1) AND at >= ?2",
    )?
    .execute(params![service, ms(from)])?;
    Ok(())
}

/// Create or replace the incident of `(service, started_at)`.
pub(super) fn write_incident(
    c: &Connection,
    ids: &mut Ids,
    i: &IncidentRecord,
) -> Result<(), StoreError> {
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
    Ok(())
}

pub(super) fn retract_incident(
    c: &Connection,
    service: &str,
    started_at: Timestamp,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "DELETE FROM incidents
         WHERE service_id = (SELECT id FROM services WHERE name = ?1) AND started_at = ?2",
    )?
    .execute(params![service, ms(started_at)])?;
    Ok(())
}

pub(super) fn close_incident(
    c: &Connection,
    service: &str,
    started_at: Timestamp,
    ended_at: Timestamp,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "UPDATE incidents SET ended_at = ?3
         WHERE service_id = (SELECT id FROM services WHERE name = ?1) AND started_at = ?2",
    )?
    .execute(params![service, ms(started_at), ms(ended_at)])?;
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

impl HistoryStore for SqliteStore {
    fn cutover_verifications(
        &self,
        service: Option<&str>,
    ) -> Result<Vec<VerificationRecord>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT service, reference, at, passed, failing FROM cutover_verifications
                 WHERE ?1 IS NULL OR service = ?1 ORDER BY service, at",
            )?;
            let rows = stmt
                .query_map([service], |r| {
                    Ok(VerificationRecord {
                        service: r.get(0)?,
                        reference: r.get(1)?,
                        at: ts_col(r, 2)?,
                        passed: r.get(3)?,
                        failing: json_col(r, 4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
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
}
