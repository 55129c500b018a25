//! The demo's history: a simulated week of the citizen portal before its
//! cutover (in-house: slower, three outages) and its hypercare so far
//! (NorthHost: faster, one short outage), stored before the daemon starts.
//! Without it the demo's before/after comparison could only say
//! "insufficient data"; with it, `continuity migration compare --service
//! citizen-portal` and the weekly report's before/after section judge a
//! migration in the demo's first minute. The results go in through the
//! import path, marked with their origin ([`ORIGIN`]), so nothing takes
//! them for measurements.

use jiff::{SignedDuration, Timestamp};

use crate::config::Config;
use crate::config::migration::Migration;
use crate::import::{self, Fields, ImportError, Place, Rows};
use crate::store::Store;

/// The service whose history is simulated.
pub const SERVICE: &str = "citizen-portal";
/// Stored as the origin of every simulated result.
pub const ORIGIN: &str = "continuity demo (simulated history)";

/// Store the simulated history of [`SERVICE`] up to just before `now`,
/// one result per check interval; the number of results stored. A
/// catalogue without the service or its cutover gets none.
pub fn seed(config: &Config, store: &dyn Store, now: Timestamp) -> Result<u64, ImportError> {
    let Some(service) = config.service(SERVICE) else {
        return Ok(0);
    };
    let (Some(m), Some(check)) = (service.migrations.first(), service.checks.first()) else {
        return Ok(0);
    };
    let Ok(interval) = SignedDuration::try_from(check.interval) else {
        return Ok(0);
    };
    let mut rows = Rows::new(config, ORIGIN.to_string(), now);
    // Up to one interval before now: the daemon's own first probe follows.
    let until = now - interval;
    let mut t = m.baseline_start() - SignedDuration::from_mins(10);
    while t < until {
        let (success, millis, reason) = simulated(m, t);
        rows.add(
            Place::Sample(t),
            Fields {
                timestamp: &t.to_string(),
                service: SERVICE,
                check: &check.id,
                success: if success { "true" } else { "false" },
                duration_seconds: &format!("{:.3}", millis / 1000.0),
                reason,
                detail: "",
            },
        );
        t += interval;
    }
    Ok(import::load(store, rows, false, now)?.imported)
}

/// What the portal answered at `t`: success, milliseconds and the reason
/// of a failure. In-house answers in 150–230 ms and was down three times
/// in its last week; during the window the new platform answers 503 while
/// it is set up; NorthHost answers in 90–140 ms and was down once.
fn simulated(m: &Migration, t: Timestamp) -> (bool, f64, &'static str) {
    let (start, end) = (m.cutover.start, m.cutover.end);
    let at = |base: Timestamp, hours: i64, mins: i64| {
        base + SignedDuration::from_hours(hours) + SignedDuration::from_mins(mins)
    };
    let outages = [
        (at(start, -6 * 24 + 10, 12), 14),
        (at(start, -4 * 24 + 3, 40), 35),
        (at(start, -2 * 24 + 14, 5), 9),
        (at(start, 0, 30), 170),
        (at(end, 5, 0), 6),
    ];
    let down = outages
        .iter()
        .any(|&(from, mins)| from <= t && t < from + SignedDuration::from_mins(mins));
    if down {
        return (false, 10.0, "status");
    }
    // A fixed spread per instant (FNV-1a of its millisecond), squared so
    // that most answers are quick and a few are slow.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in t.as_millisecond().to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let u = (h % 10_000) as f64 / 10_000.0;
    let millis = if t < start {
        150.0 + 80.0 * u * u
    } else {
        90.0 + 50.0 * u * u
    };
    (true, millis, "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::compare::{Verdict, compare};

    #[test]
    fn the_simulated_history_gives_the_demo_a_verdict_better_on_availability_and_latency() {
        let now: Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = crate::demo::catalogue_for_tests(now, dir.path());
        let store = crate::store::SqliteStore::open(&config.store.path).unwrap();
        let stored = seed(&config, &store, now).unwrap();
        // From ten minutes before the week's baseline (7 d before the
        // cutover, which started 30 h ago) to half a minute before now,
        // one result every 30 s: (7 d + 30 h + 10 min − 30 s) / 30 s.
        assert_eq!(stored, 23_779);
        let c = compare(&config, &store, SERVICE, now).unwrap();
        let hypercare = &c.comparisons[0];
        let verdict = |name: &str| {
            hypercare
                .measures
                .iter()
                .find(|m| m.measure == name)
                .unwrap()
                .verdict
        };
        assert_eq!(verdict("availability"), Verdict::Better, "{c:?}");
        assert_eq!(verdict("latency"), Verdict::Better, "{c:?}");
        assert_eq!(hypercare.overall, Verdict::Better);
    }
}
