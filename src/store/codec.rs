//! Compact encodings of the SQLite store: one hour of one check's results
//! packed into a block (about 5 bytes per result instead of ~20 as a row),
//! and the hourly roll-up aggregate with its latency histogram.

/// Upper bounds (inclusive, milliseconds) of the roll-up latency buckets;
/// one more bucket counts everything slower.
pub const LATENCY_BUCKETS_MS: [u64; 10] = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/// Number of buckets in a roll-up (the bounds plus the overflow bucket).
pub const fn bucket_count() -> usize {
    LATENCY_BUCKETS_MS.len() + 1
}

pub(crate) const HOUR_MS: i64 = 3_600_000;

const BLOCK_FORMAT: u8 = 1;

const FAILED: u64 = 1;
const IMPORTED: u64 = 2;
const HAS_DETAIL: u64 = 4;
const FLAG_BITS: u32 = 3;

/// One stored result with interned reason and source ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub ts: i64,
    pub failed: bool,
    /// 0 = no reason; otherwise an id in the `reasons` table.
    pub reason: u64,
    pub duration_us: u64,
    /// 0 = live; otherwise an id in the `sources` table.
    pub source: u64,
    pub detail: Option<String>,
}

pub(crate) fn hour_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(HOUR_MS)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self
                .data
                .get(self.pos)
                .ok_or_else(|| "block ends inside a number".to_string())?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("block holds an over-long number".into())
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| "block ends inside a text".to_string())?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}

/// Pack `entries` (sorted by `ts`, unique, all inside `hour`).
///
/// Timestamps are stored as deltas of deltas: probes run on a fixed
/// interval, so after the first two most cost one byte.
pub(crate) fn encode_block(hour: i64, entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + entries.len() * 6);
    out.push(BLOCK_FORMAT);
    put_varint(&mut out, entries.len() as u64);
    let mut prev_ts = hour * HOUR_MS;
    let mut prev_delta = 0i64;
    for e in entries {
        let delta = e.ts - prev_ts;
        put_varint(&mut out, zigzag(delta - prev_delta));
        prev_delta = delta;
        prev_ts = e.ts;
        let mut flags = e.reason << FLAG_BITS;
        if e.failed {
            flags |= FAILED;
        }
        if e.source != 0 {
            flags |= IMPORTED;
        }
        if e.detail.is_some() {
            flags |= HAS_DETAIL;
        }
        put_varint(&mut out, flags);
        put_varint(&mut out, e.duration_us);
        if e.source != 0 {
            put_varint(&mut out, e.source);
        }
        if let Some(d) = &e.detail {
            put_varint(&mut out, d.len() as u64);
            out.extend_from_slice(d.as_bytes());
        }
    }
    out
}

pub(crate) fn decode_block(hour: i64, data: &[u8]) -> Result<Vec<Entry>, String> {
    let mut r = Reader { data, pos: 0 };
    let format = *data.first().ok_or("empty block")?;
    if format != BLOCK_FORMAT {
        return Err(format!("unknown block format {format}"));
    }
    r.pos = 1;
    let n = r.varint()?;
    // Every entry takes at least three bytes, so a larger count is a lie
    // that must not make us allocate.
    if n > data.len() as u64 {
        return Err(format!("block claims {n} entries in {} bytes", data.len()));
    }
    let mut out = Vec::with_capacity(n as usize);
    let mut prev_ts = hour * HOUR_MS;
    let mut prev_delta = 0i64;
    for _ in 0..n {
        let delta = prev_delta.wrapping_add(unzigzag(r.varint()?));
        let ts = prev_ts.wrapping_add(delta);
        prev_delta = delta;
        prev_ts = ts;
        let flags = r.varint()?;
        let duration_us = r.varint()?;
        let source = if flags & IMPORTED != 0 {
            r.varint()?
        } else {
            0
        };
        let detail = if flags & HAS_DETAIL != 0 {
            let len = r.varint()? as usize;
            let bytes = r.bytes(len)?;
            Some(
                std::str::from_utf8(bytes)
                    .map_err(|_| "detail is not UTF-8".to_string())?
                    .to_string(),
            )
        } else {
            None
        };
        out.push(Entry {
            ts,
            failed: flags & FAILED != 0,
            reason: flags >> FLAG_BITS,
            duration_us,
            source,
            detail,
        });
    }
    if r.pos != data.len() {
        return Err("block has trailing bytes".into());
    }
    Ok(out)
}

/// Count, failures, duration sum and latency histogram of some results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Aggregate {
    pub count: u64,
    pub failures: u64,
    pub sum_us: u64,
    pub buckets: [u64; bucket_count()],
}

impl Aggregate {
    pub fn add(&mut self, failed: bool, duration_us: u64) {
        self.count += 1;
        if failed {
            self.failures += 1;
        }
        self.sum_us = self.sum_us.saturating_add(duration_us);
        let i = LATENCY_BUCKETS_MS
            .iter()
            .position(|&b| duration_us <= b * 1000)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.buckets[i] += 1;
    }

    pub fn merge(&mut self, other: &Aggregate) {
        self.count += other.count;
        self.failures += other.failures;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
    }

    /// Only the non-empty buckets, as (index, count) pairs: an hour of one
    /// check usually fills one or two, so this saves about 6 of 11 bytes
    /// on every roll-up (50 MB a year at 1,000 checks).
    pub fn encode_buckets(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8);
        for (i, &b) in self.buckets.iter().enumerate() {
            if b > 0 {
                put_varint(&mut out, i as u64);
                put_varint(&mut out, b);
            }
        }
        out
    }

    pub fn decode_buckets(data: &[u8]) -> Result<[u64; bucket_count()], String> {
        let mut r = Reader { data, pos: 0 };
        let mut out = [0u64; bucket_count()];
        while r.pos < data.len() {
            let i = r.varint()? as usize;
            let slot = out
                .get_mut(i)
                .ok_or_else(|| format!("roll-up histogram names bucket {i}"))?;
            *slot = r.varint()?;
        }
        Ok(out)
    }
}

/// Merge sorted, unique `new` entries into sorted, unique `old` ones. An
/// entry whose timestamp is already present is dropped (the stored one
/// wins). Returns the merged list and the aggregate of what was added.
pub(crate) fn merge_entries(old: Vec<Entry>, new: Vec<Entry>) -> (Vec<Entry>, Aggregate) {
    let mut added = Aggregate::default();
    let mut out = Vec::with_capacity(old.len() + new.len());
    let mut old = old.into_iter().peekable();
    for e in new {
        while let Some(o) = old.next_if(|o| o.ts < e.ts) {
            out.push(o);
        }
        if old.peek().is_some_and(|o| o.ts == e.ts) {
            continue;
        }
        added.add(e.failed, e.duration_us);
        out.push(e);
    }
    out.extend(old);
    (out, added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(ts: i64) -> Entry {
        Entry {
            ts,
            failed: false,
            reason: 0,
            duration_us: 42_000,
            source: 0,
            detail: None,
        }
    }

    #[test]
    fn regular_results_cost_about_five_bytes_each() {
        let hour = 480_000;
        let entries: Vec<Entry> = (0..120)
            .map(|i| entry(hour * HOUR_MS + i * 30_000 + (i % 7)))
            .collect();
        let data = encode_block(hour, &entries);
        assert!(data.len() < 120 * 6, "{} bytes", data.len());
        assert_eq!(decode_block(hour, &data).unwrap(), entries);
    }

    #[test]
    fn decode_rejects_truncated_block() {
        let hour = 1;
        let mut e = entry(HOUR_MS + 5);
        e.detail = Some("connection refused".into());
        let data = encode_block(hour, &[e]);
        assert!(decode_block(hour, &data[..data.len() - 3]).is_err());
    }

    #[test]
    fn merge_keeps_stored_entry_on_equal_timestamp() {
        let mut stored = entry(10);
        stored.duration_us = 1;
        let mut newer = entry(10);
        newer.duration_us = 2;
        let (merged, added) =
            merge_entries(vec![stored.clone(), entry(30)], vec![newer, entry(20)]);
        assert_eq!(merged, vec![stored, entry(20), entry(30)]);
        assert_eq!(added.count, 1);
    }

    #[test]
    fn histogram_bounds_are_inclusive() {
        let mut a = Aggregate::default();
        a.add(false, 10_000);
        a.add(true, 10_001);
        a.add(false, 60_000_000);
        assert_eq!(a.buckets[0], 1);
        assert_eq!(a.buckets[1], 1);
        assert_eq!(a.buckets[bucket_count() - 1], 1);
        assert_eq!(a.failures, 1);
        assert_eq!(
            Aggregate::decode_buckets(&a.encode_buckets()).unwrap(),
            a.buckets
        );
    }

    proptest! {
        #[test]
        fn block_round_trips(
            offsets in proptest::collection::btree_set(0i64..HOUR_MS, 0..200),
            seed in any::<u64>(),
        ) {
            let hour = 490_123;
            let entries: Vec<Entry> = offsets
                .into_iter()
                .enumerate()
                .map(|(i, off)| {
                    let x = seed.wrapping_mul(i as u64 + 1).rotate_left(i as u32);
                    Entry {
                        ts: hour * HOUR_MS + off,
                        failed: x & 1 == 1,
                        reason: (x >> 1) % 20,
                        duration_us: x >> 20,
                        source: (x >> 8) % 3,
                        detail: (x & 4 == 4).then(|| format!("détail {x}")),
                    }
                })
                .collect();
            let data = encode_block(hour, &entries);
            prop_assert_eq!(decode_block(hour, &data).unwrap(), entries);
        }
    }
}
