//! The writer's side of SQLite ([`BatchStore`]): a batch of [`WriteOp`]s
//! in one transaction, each op handed to its role's file, and the
//! housekeeping between batches (roll-ups, pruning).

use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, params};

use super::blocks::{block_len, seal_hour};
use super::{Ids, SqliteStore, history, ms, outbox, results, runs, ts};
use crate::store::codec::{HOUR_MS, hour_of};
use crate::store::{BatchStore, PruneReport, StoreError, WriteOp};

/// Check-ranges of deletes per prune transaction: keeps the WAL small when
/// a shorter retention suddenly frees months of data.
const PRUNE_CHECKS_PER_TX: usize = 100;

/// One op, by the role it belongs to; all in the batch's transaction.
fn apply(c: &Connection, ids: &mut Ids, op: &WriteOp) -> Result<(), StoreError> {
    match op {
        WriteOp::Result(r) => results::insert_live(c, ids, r)?,
        WriteOp::CutoverVerification(v) => history::write_verification(c, v)?,
        WriteOp::ServiceTransition(t) => history::write_transition(c, ids, t)?,
        WriteOp::Incident(i) => history::write_incident(c, ids, i)?,
        WriteOp::RetractServiceTransition { service, at } => {
            history::retract_transition(c, service, *at)?
        }
        WriteOp::RetractServiceTransitionsFrom { service, from } => {
            history::retract_transitions_from(c, service, *from)?
        }
        WriteOp::RetractIncident {
            service,
            started_at,
        } => history::retract_incident(c, service, *started_at)?,
        WriteOp::CloseIncident {
            service,
            started_at,
            ended_at,
        } => history::close_incident(c, service, *started_at, *ended_at)?,
        WriteOp::Heartbeat { run, at } => runs::heartbeat(c, *run, *at)?,
        WriteOp::Outbox(o) => {
            outbox::enqueue(c, o)?;
        }
        WriteOp::OutboxDelivered { id, at } => outbox::delivered(c, *id, *at)?,
        WriteOp::OutboxFailed {
            id,
            error,
            next_attempt_at,
        } => outbox::failed(c, *id, error, *next_attempt_at)?,
    }
    Ok(())
}

impl BatchStore for SqliteStore {
    fn check_file(&self) -> Result<(), String> {
        self.check_identity()
    }

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
