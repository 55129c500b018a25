//! Raw results in SQLite ([`ResultStore`]): imports, range reads and each
//! check's newest result, plus the roll-ups for those who inspect them.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::blocks::{
    block, blocks_range, corrupt_block, entry_from_recent, insert_recent, last_of,
    merge_into_block, recent_keys, recent_range, recent_window,
};
use super::{Ids, Names, SqliteStore, ms, ts, unsigned};
use crate::store::codec::{Aggregate, Entry, HOUR_MS, hour_of};
use crate::store::{ImportReport, ResultRecord, ResultStore, RollupRecord, StoreError};

/// A live result from the writer's batch. A second one for the same check
/// and millisecond is ignored.
pub(super) fn insert_live(
    c: &Connection,
    ids: &mut Ids,
    r: &ResultRecord,
) -> Result<(), StoreError> {
    let check_id = ids.check(c, &r.service, &r.check)?;
    let e = ids.entry(c, r)?;
    insert_recent(c, check_id, &e)?;
    Ok(())
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

impl ResultStore for SqliteStore {
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
}

impl SqliteStore {
    /// Hourly roll-ups of `service` (one check or all) for hours starting
    /// in `[from, to)`, ordered by check then hour. Hours not rolled up yet
    /// are aggregated from the raw results on the fly.
    ///
    /// Not in [`ResultStore`]: no daemon feature reads roll-ups yet; tests
    /// and `store_bench` check what the roll-up and pruning leave.
    pub fn rollups(
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
}
