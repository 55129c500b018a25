//! Half-open time ranges and normalised sets of them: the interval
//! arithmetic that every SLA figure is built from.
//!
//! All lengths are whole milliseconds, computed as the difference of the
//! two ends' millisecond counts. Because every piece of a partition shares
//! its ends with its neighbours, the pieces always add up exactly to the
//! whole, which is what lets the accounting identities hold to the
//! millisecond.

use jiff::Timestamp;

/// Milliseconds since the Unix epoch (sub-millisecond parts truncated).
pub fn ms(ts: Timestamp) -> i64 {
    ts.as_millisecond()
}

/// The instant `ms` milliseconds after the Unix epoch, saturating at the
/// ends of jiff's range so that no input can panic.
pub fn from_ms(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// `ts` truncated to the millisecond: the SLA code keeps time to the
/// millisecond so that live and recomputed figures agree exactly.
pub fn to_millisecond(ts: Timestamp) -> Timestamp {
    from_ms(ms(ts))
}

/// `[start, end)`. An end before the start is stored as an empty range.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct TimeRange {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl TimeRange {
    pub fn new(start: Timestamp, end: Timestamp) -> TimeRange {
        TimeRange {
            start,
            end: end.max(start),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Length in whole milliseconds.
    pub fn duration_ms(&self) -> i64 {
        (ms(self.end) - ms(self.start)).max(0)
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }

    /// The common part, `None` when they do not overlap.
    pub fn intersect(&self, other: &TimeRange) -> Option<TimeRange> {
        let r = TimeRange {
            start: self.start.max(other.start),
            end: self.end.min(other.end),
        };
        (!r.is_empty()).then_some(r)
    }

    pub fn overlaps(&self, other: &TimeRange) -> bool {
        self.intersect(other).is_some()
    }
}

/// Sorted, disjoint, non-empty ranges; touching ranges are merged, so the
/// set has one canonical form and equality means "the same instants".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<TimeRange>,
}

impl RangeSet {
    pub fn new() -> RangeSet {
        RangeSet::default()
    }

    /// Any ranges, in any order, overlapping or not.
    pub fn from_ranges(ranges: impl IntoIterator<Item = TimeRange>) -> RangeSet {
        let mut v: Vec<TimeRange> = ranges.into_iter().filter(|r| !r.is_empty()).collect();
        v.sort_unstable();
        let mut out: Vec<TimeRange> = Vec::with_capacity(v.len());
        for r in v {
            match out.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => out.push(r),
            }
        }
        RangeSet { ranges: out }
    }

    pub fn ranges(&self) -> &[TimeRange] {
        &self.ranges
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn total_ms(&self) -> i64 {
        self.ranges.iter().map(TimeRange::duration_ms).sum()
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        let i = self.ranges.partition_point(|r| r.end <= t);
        self.ranges.get(i).is_some_and(|r| r.contains(t))
    }

    /// The part of the set inside `range`.
    pub fn clip(&self, range: TimeRange) -> RangeSet {
        let first = self.ranges.partition_point(|r| r.end <= range.start);
        let ranges = self.ranges[first..]
            .iter()
            .take_while(|r| r.start < range.end)
            .filter_map(|r| r.intersect(&range))
            .collect();
        RangeSet { ranges }
    }

    /// Milliseconds of the set inside `range`.
    pub fn overlap_ms(&self, range: TimeRange) -> i64 {
        self.clip(range).total_ms()
    }

    pub fn intersect(&self, other: &RangeSet) -> RangeSet {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            if let Some(r) = a.intersect(&b) {
                out.push(r);
            }
            if a.end <= b.end {
                i += 1;
            } else {
                j += 1;
            }
        }
        RangeSet { ranges: out }
    }

    /// The instants of `self` that are not in `other`.
    pub fn subtract(&self, other: &RangeSet) -> RangeSet {
        let mut out = Vec::new();
        let mut j = 0;
        for &r in &self.ranges {
            let mut start = r.start;
            while j < other.ranges.len() && other.ranges[j].end <= start {
                j += 1;
            }
            let mut k = j;
            while k < other.ranges.len() && other.ranges[k].start < r.end {
                let cut = other.ranges[k];
                if cut.start > start {
                    out.push(TimeRange::new(start, cut.start));
                }
                start = start.max(cut.end);
                if cut.end >= r.end {
                    break;
                }
                k += 1;
            }
            if start < r.end {
                out.push(TimeRange::new(start, r.end));
            }
        }
        RangeSet { ranges: out }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Test helper: an instant written as RFC 3339.
    pub(crate) fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    pub(crate) fn r(a: &str, b: &str) -> TimeRange {
        TimeRange::new(ts(a), ts(b))
    }

    #[test]
    fn range_set_merges_overlapping_and_touching_ranges() {
        let set = RangeSet::from_ranges([
            r("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z"),
            r("2026-01-01T08:00:00Z", "2026-01-01T09:00:00Z"),
            r("2026-01-01T09:00:00Z", "2026-01-01T09:30:00Z"),
            r("2026-01-01T10:30:00Z", "2026-01-01T12:00:00Z"),
        ]);
        assert_eq!(
            set.ranges(),
            &[
                r("2026-01-01T08:00:00Z", "2026-01-01T09:30:00Z"),
                r("2026-01-01T10:00:00Z", "2026-01-01T12:00:00Z"),
            ]
        );
        assert_eq!(set.total_ms(), 3 * 3_600_000 + 1_800_000);
    }

    #[test]
    fn subtract_cuts_holes_and_edges() {
        let a = RangeSet::from_ranges([r("2026-01-01T08:00:00Z", "2026-01-01T17:00:00Z")]);
        let b = RangeSet::from_ranges([
            r("2026-01-01T07:00:00Z", "2026-01-01T09:00:00Z"),
            r("2026-01-01T12:00:00Z", "2026-01-01T13:00:00Z"),
            r("2026-01-01T16:30:00Z", "2026-01-01T18:00:00Z"),
        ]);
        assert_eq!(
            a.subtract(&b).ranges(),
            &[
                r("2026-01-01T09:00:00Z", "2026-01-01T12:00:00Z"),
                r("2026-01-01T13:00:00Z", "2026-01-01T16:30:00Z"),
            ]
        );
        assert_eq!(
            a.intersect(&b).total_ms() + a.subtract(&b).total_ms(),
            a.total_ms()
        );
    }

    #[test]
    fn clip_and_contains_respect_half_open_ends() {
        let a = RangeSet::from_ranges([r("2026-01-01T08:00:00Z", "2026-01-01T17:00:00Z")]);
        assert!(a.contains(ts("2026-01-01T08:00:00Z")));
        assert!(!a.contains(ts("2026-01-01T17:00:00Z")));
        let c = a.clip(r("2026-01-01T16:00:00Z", "2026-01-02T00:00:00Z"));
        assert_eq!(
            c.ranges(),
            &[r("2026-01-01T16:00:00Z", "2026-01-01T17:00:00Z")]
        );
    }

    #[test]
    fn reversed_range_is_empty() {
        let x = r("2026-01-01T10:00:00Z", "2026-01-01T09:00:00Z");
        assert!(x.is_empty());
        assert_eq!(x.duration_ms(), 0);
    }
}
