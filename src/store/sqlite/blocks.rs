//! The packed layout of results in SQLite: one row per result in
//! `results_recent` until its hour is over, then one `result_blocks` BLOB
//! per check and hour (see `codec`) with the hour's roll-up beside it.
//! Reading and writing results, rolling up and pruning all go through
//! these helpers.

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Names, signed, unsigned};
use crate::store::codec::{Aggregate, Entry, HOUR_MS, decode_block, encode_block, merge_entries};
use crate::store::{ResultRecord, StoreError};

pub(super) fn entry_from_recent(row: &Row<'_>, first: usize) -> rusqlite::Result<Entry> {
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

pub(super) fn corrupt_block(check_id: i64, hour: i64, why: String) -> StoreError {
    StoreError::Corrupt(format!(
        "result block of check {check_id}, hour {hour}: {why}"
    ))
}

pub(super) fn insert_recent(c: &Connection, check_id: i64, e: &Entry) -> rusqlite::Result<bool> {
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

pub(super) fn block(c: &Connection, check_id: i64, hour: i64) -> Result<Vec<Entry>, StoreError> {
    let data: Option<Vec<u8>> = c
        .prepare_cached("SELECT data FROM result_blocks WHERE check_id = ?1 AND hour = ?2")?
        .query_row(params![check_id, hour], |r| r.get(0))
        .optional()?;
    match data {
        None => Ok(Vec::new()),
        Some(d) => decode_block(hour, &d).map_err(|why| corrupt_block(check_id, hour, why)),
    }
}

pub(super) fn add_rollup(
    c: &Connection,
    check_id: i64,
    hour: i64,
    add: &Aggregate,
) -> Result<(), StoreError> {
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

pub(super) fn write_rollup(
    c: &Connection,
    check_id: i64,
    hour: i64,
    a: &Aggregate,
) -> rusqlite::Result<()> {
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
pub(super) fn merge_into_block(
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
pub(super) fn seal_hour(c: &Connection, hour: i64) -> Result<(), StoreError> {
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

pub(super) fn recent_range(
    c: &Connection,
    check_id: i64,
    lo: i64,
    hi: i64,
) -> rusqlite::Result<Vec<Entry>> {
    c.prepare_cached(
        "SELECT ts, status, duration_us, source_id, detail FROM results_recent
         WHERE ts >= ?2 AND ts < ?3 AND check_id = ?1 ORDER BY ts",
    )?
    .query_map(params![check_id, lo, hi], |r| entry_from_recent(r, 0))?
    .collect()
}

/// `(check_id, ts)` of every row in `results_recent` within `hour`.
pub(super) fn recent_keys(c: &Connection, hour: i64) -> rusqlite::Result<HashSet<(i64, i64)>> {
    c.prepare_cached("SELECT check_id, ts FROM results_recent WHERE ts >= ?1 AND ts < ?2")?
        .query_map(params![hour * HOUR_MS, (hour + 1) * HOUR_MS], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect()
}

/// Rows of `results_recent` in `[lo, hi)` of the checks in `wanted`
/// (check id to caller's index), in one pass.
pub(super) fn recent_window(
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

pub(super) fn blocks_range(
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
pub(super) fn block_len(head: &[u8]) -> u64 {
    let mut v = 0u64;
    for (i, b) in head.iter().skip(1).take(9).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            break;
        }
    }
    v
}

/// The newest of `recent` (the check's newest row not rolled up) and the
/// last entry of its newest block.
pub(super) fn last_of(
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
