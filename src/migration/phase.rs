//! Where a service stands in its supplier timeline at an instant, and
//! which supplier each stretch of time belongs to: pure functions of the
//! validated timeline (`Service::migrations`) and the instant, so the
//! engine, the metrics, the reports and `migration status` agree.
//!
//! The rules (docs/sla.md, "Suppliers and cutovers"): time before a
//! cutover's start belongs to its `from`, time from the start on to its
//! `to`. The phases are `baseline` (the old supplier, up to the window),
//! `cutover` (the window), `hypercare` (the agreed time after the window)
//! and `steady` (after hypercare, and always for a service that does not
//! move).

use jiff::Timestamp;
use serde::Serialize;

use crate::config::Service;
use crate::config::migration::Migration;
use crate::sla::TimeRange;

/// A service's phase in its supplier timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Baseline,
    Cutover,
    Hypercare,
    Steady,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Baseline,
        Phase::Cutover,
        Phase::Hypercare,
        Phase::Steady,
    ];

    /// The `phase` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Baseline => "baseline",
            Phase::Cutover => "cutover",
            Phase::Hypercare => "hypercare",
            Phase::Steady => "steady",
        }
    }
}

/// A service's place in its timeline at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position<'a> {
    pub phase: Phase,
    /// The supplier the instant is attributed to.
    pub supplier: &'a str,
    /// The migration the phase belongs to: the coming one in `baseline`,
    /// the current or last one otherwise; `None` for a service that does
    /// not move.
    pub migration: Option<&'a Migration>,
}

/// Where `service` stands at `t`.
pub fn position(service: &Service, t: Timestamp) -> Position<'_> {
    position_in(&service.supplier, &service.migrations, t)
}

/// [`position`] on a bare timeline; `supplier` is the service's supplier
/// when it has no migrations.
pub fn position_in<'a>(
    supplier: &'a str,
    migrations: &'a [Migration],
    t: Timestamp,
) -> Position<'a> {
    let Some(first) = migrations.first() else {
        return Position {
            phase: Phase::Steady,
            supplier,
            migration: None,
        };
    };
    // The last move whose window has started.
    let Some(i) = migrations.iter().rposition(|m| m.cutover.start <= t) else {
        return Position {
            phase: Phase::Baseline,
            supplier: &first.from,
            migration: Some(first),
        };
    };
    let m = &migrations[i];
    let phase = if t < m.cutover.end {
        Phase::Cutover
    } else if t < m.hypercare_end() {
        Phase::Hypercare
    } else if let Some(next) = migrations.get(i + 1) {
        // Hypercare is over and another move is planned: the time before
        // it is that move's baseline.
        return Position {
            phase: Phase::Baseline,
            supplier: &m.to,
            migration: Some(next),
        };
    } else {
        Phase::Steady
    };
    Position {
        phase,
        supplier: &m.to,
        migration: Some(m),
    }
}

/// The stretches of `range` and the supplier each belongs to, in time
/// order, split at every cutover's start. A range inside one supplier's
/// time is one stretch.
pub fn supplier_stretches<'a>(
    supplier: &'a str,
    migrations: &'a [Migration],
    range: TimeRange,
) -> Vec<(&'a str, TimeRange)> {
    let mut out = Vec::new();
    if range.is_empty() {
        return out;
    }
    let mut owner: &str = migrations.first().map_or(supplier, |m| &m.from);
    let mut from = range.start;
    for m in migrations {
        let at = m.cutover.start;
        if at <= range.start {
            owner = &m.to;
            continue;
        }
        if at >= range.end {
            break;
        }
        out.push((owner, TimeRange::new(from, at)));
        from = at;
        owner = &m.to;
    }
    out.push((owner, TimeRange::new(from, range.end)));
    out
}

/// The next cutover that has not ended at `t`: the one under way, or the
/// coming one.
pub fn next_cutover(migrations: &[Migration], t: Timestamp) -> Option<&Migration> {
    migrations.iter().find(|m| m.cutover.end > t)
}

/// The last cutover whose window has ended by `t`.
pub fn last_cutover(migrations: &[Migration], t: Timestamp) -> Option<&Migration> {
    migrations.iter().rev().find(|m| m.cutover.end <= t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const TWO_MOVES: &str = "services:\n  - id: portal\n    supplier: in-house\n    migration:\n      - from: in-house\n        to: northhost\n        cutover: { start: 2026-12-05T22:00:00+01:00, end: 2026-12-06T06:00:00+01:00, reference: CHG-1042 }\n        hypercare: 1w\n      - from: northhost\n        to: cloudco\n        cutover: { start: 2027-02-01T20:00:00+01:00, end: 2027-02-01T23:00:00+01:00, reference: CHG-2001 }\n    checks:\n      - id: home\n        tcp: { target: 127.0.0.1:9 }\n";

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn phases_follow_the_timeline_at_its_exact_edges() {
        let config = Config::from_str("t.yaml", TWO_MOVES).unwrap();
        let s = &config.services[0];
        let at = |t: &str| {
            let p = position(s, ts(t));
            (
                p.phase,
                p.supplier,
                p.migration.map(|m| m.cutover.reference.as_str()),
            )
        };
        assert_eq!(
            at("2026-12-05T20:59:59.999Z"),
            (Phase::Baseline, "in-house", Some("CHG-1042"))
        );
        assert_eq!(
            at("2026-12-05T21:00:00Z"),
            (Phase::Cutover, "northhost", Some("CHG-1042"))
        );
        assert_eq!(
            at("2026-12-06T05:00:00Z"),
            (Phase::Hypercare, "northhost", Some("CHG-1042"))
        );
        assert_eq!(
            at("2026-12-13T04:59:59.999Z"),
            (Phase::Hypercare, "northhost", Some("CHG-1042"))
        );
        // After hypercare, with another move planned: its baseline.
        assert_eq!(
            at("2026-12-13T05:00:00Z"),
            (Phase::Baseline, "northhost", Some("CHG-2001"))
        );
        assert_eq!(
            at("2027-03-15T00:00:00Z"),
            (Phase::Steady, "cloudco", Some("CHG-2001"))
        );
    }

    #[test]
    fn a_service_that_does_not_move_is_steady_with_its_own_supplier() {
        let yaml = "services:\n  - id: s\n    supplier: acme\n    checks:\n      - id: c\n        tcp: { target: 127.0.0.1:9 }\n";
        let config = Config::from_str("t.yaml", yaml).unwrap();
        let p = position(&config.services[0], ts("2026-12-01T00:00:00Z"));
        assert_eq!((p.phase, p.supplier), (Phase::Steady, "acme"));
        assert!(p.migration.is_none());
    }

    #[test]
    fn a_range_is_split_at_each_cutover_start() {
        let config = Config::from_str("t.yaml", TWO_MOVES).unwrap();
        let s = &config.services[0];
        let range = TimeRange::new(ts("2026-11-30T23:00:00Z"), ts("2027-03-01T00:00:00Z"));
        let stretches = supplier_stretches(&s.supplier, &s.migrations, range);
        assert_eq!(
            stretches,
            vec![
                (
                    "in-house",
                    TimeRange::new(range.start, ts("2026-12-05T21:00:00Z"))
                ),
                (
                    "northhost",
                    TimeRange::new(ts("2026-12-05T21:00:00Z"), ts("2027-02-01T19:00:00Z"))
                ),
                (
                    "cloudco",
                    TimeRange::new(ts("2027-02-01T19:00:00Z"), range.end)
                ),
            ]
        );
        let inside = TimeRange::new(ts("2026-12-07T00:00:00Z"), ts("2026-12-14T00:00:00Z"));
        assert_eq!(
            supplier_stretches(&s.supplier, &s.migrations, inside),
            vec![("northhost", inside)]
        );
    }
}
