//! What `continuity migration status` prints and `GET /api/v1/migrations`
//! returns: every service with its phase, the supplier responsible now,
//! the next cutover, the days of hypercare left and the verification
//! round of its last cutover. One computation, from the configuration and
//! the recorded verification rounds, for both.

use std::fmt::Write as _;

use jiff::Timestamp;
use serde::Serialize;

use super::phase::{Phase, next_cutover, position};
use crate::config::Config;
use crate::config::migration::{Migration, Supplier};
use crate::store::VerificationRecord;

/// One service's place in its supplier timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationStatus {
    pub service: String,
    pub name: String,
    pub category: String,
    pub phase: Phase,
    /// The supplier responsible now.
    pub supplier: Supplier,
    /// The cutover under way, or the next one planned.
    pub next_cutover: Option<CutoverStatus>,
    /// During hypercare: when it ends, and the days left (one decimal).
    pub hypercare_ends: Option<Timestamp>,
    pub hypercare_days_left: Option<f64>,
    /// The verification round of the last cutover that ended; `None`
    /// before any ended, or when none was recorded (the daemon was not
    /// running when the window ended).
    pub verification: Option<VerificationRecord>,
    /// Every cutover of the service, in time order.
    pub timeline: Vec<CutoverStatus>,
}

/// One cutover of a service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CutoverStatus {
    pub from: String,
    pub to: String,
    pub reference: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub hypercare_ends: Timestamp,
    /// The window counts in SLAs (`cutover_counts: true`).
    pub counts: bool,
    pub verification: Option<VerificationRecord>,
}

/// The supplier `id` as listed under `suppliers:`, or with only its id.
pub fn supplier(config: &Config, id: &str) -> Supplier {
    config
        .suppliers
        .get(id)
        .cloned()
        .unwrap_or_else(|| Supplier {
            id: id.to_string(),
            name: id.to_string(),
            lot: None,
            contact: None,
        })
}

/// Every service of `config` at `now`.
pub fn migration_status(
    config: &Config,
    verifications: &[VerificationRecord],
    now: Timestamp,
) -> Vec<MigrationStatus> {
    config
        .services
        .iter()
        .map(|s| {
            let at = position(s, now);
            let verification_of = |m: &Migration| {
                verifications
                    .iter()
                    .rev()
                    .find(|v| v.service == s.id && v.reference == m.cutover.reference)
                    .cloned()
            };
            let cutover = |m: &Migration| CutoverStatus {
                from: m.from.clone(),
                to: m.to.clone(),
                reference: m.cutover.reference.clone(),
                start: m.cutover.start,
                end: m.cutover.end,
                hypercare_ends: m.hypercare_end(),
                counts: m.cutover_counts,
                verification: verification_of(m),
            };
            let in_hypercare = at.phase == Phase::Hypercare;
            let hypercare_ends = at
                .migration
                .filter(|_| in_hypercare)
                .map(|m| m.hypercare_end());
            MigrationStatus {
                service: s.id.clone(),
                name: s.name.clone(),
                category: s.category.clone(),
                phase: at.phase,
                supplier: supplier(config, at.supplier),
                next_cutover: next_cutover(&s.migrations, now).map(cutover),
                hypercare_ends,
                hypercare_days_left: hypercare_ends.map(|end| {
                    let days = (end.as_millisecond() - now.as_millisecond()) as f64 / 86_400_000.0;
                    (days * 10.0).floor() / 10.0
                }),
                verification: super::phase::last_cutover(&s.migrations, now)
                    .and_then(verification_of),
                timeline: s.migrations.iter().map(cutover).collect(),
            }
        })
        .collect()
}

/// The status as a table for people, each column as wide as its widest
/// cell.
pub fn render_table(rows: &[MigrationStatus], now: Timestamp) -> String {
    let header = [
        "SERVICE",
        "PHASE",
        "SUPPLIER",
        "NEXT CUTOVER",
        "HYPERCARE",
        "VERIFICATION",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let next = r.next_cutover.as_ref().map_or("-".to_string(), |c| {
                format!("{} {}→{} {}", c.reference, c.from, c.to, c.start)
            });
            let hypercare = r
                .hypercare_days_left
                .map_or("-".to_string(), |d| format!("{d:.1} d"));
            let verification = match (&r.verification, r.timeline.iter().any(|c| c.end <= now)) {
                (Some(v), _) if v.passed => format!("passed ({})", v.reference),
                (Some(v), _) => format!("FAILED ({}): {}", v.reference, v.failing.join(", ")),
                (None, true) => "not recorded".to_string(),
                (None, false) => "-".to_string(),
            };
            [
                r.service.clone(),
                r.phase.as_str().to_string(),
                r.supplier.id.clone(),
                next,
                hypercare,
                verification,
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let lines = std::iter::once(header.map(str::to_string)).chain(cells);
    for row in lines {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = w - cell.chars().count();
                let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "suppliers:\n  northhost: { name: \"NorthHost B.V.\", lot: Hosting }\nservices:\n  - id: portal\n    supplier: in-house\n    migration:\n      from: in-house\n      to: northhost\n      cutover: { start: 2026-12-05T22:00:00+01:00, end: 2026-12-06T06:00:00+01:00, reference: CHG-1042 }\n      hypercare: 4w\n    checks:\n      - id: home\n        tcp: { target: 127.0.0.1:9 }\n  - id: library\n    supplier: acme\n    checks:\n      - id: home\n        tcp: { target: 127.0.0.1:9 }\n";

    #[test]
    fn status_names_phase_supplier_hypercare_left_and_the_verification() {
        let config = Config::from_str("t.yaml", YAML).unwrap();
        let verified = VerificationRecord {
            service: "portal".into(),
            reference: "CHG-1042".into(),
            at: "2026-12-06T05:00:00.050Z".parse().unwrap(),
            passed: true,
            failing: vec![],
        };
        let now: Timestamp = "2026-12-07T05:00:00Z".parse().unwrap();
        let rows = migration_status(&config, std::slice::from_ref(&verified), now);
        let portal = &rows[0];
        assert_eq!(portal.phase, Phase::Hypercare);
        assert_eq!(portal.supplier.name, "NorthHost B.V.");
        assert_eq!(portal.hypercare_days_left, Some(27.0));
        assert_eq!(portal.verification.as_ref(), Some(&verified));
        assert!(portal.next_cutover.is_none());
        let library = &rows[1];
        assert_eq!(
            (library.phase, library.supplier.id.as_str()),
            (Phase::Steady, "acme")
        );
        let table = render_table(&rows, now);
        assert!(table.contains("passed (CHG-1042)"), "{table}");

        // Before the window: baseline with the old supplier, the cutover next.
        let then = "2026-12-01T00:00:00Z".parse().unwrap();
        let before = migration_status(&config, &[], then);
        assert_eq!(before[0].phase, Phase::Baseline);
        assert_eq!(before[0].supplier.id, "in-house");
        assert_eq!(
            before[0].next_cutover.as_ref().unwrap().reference,
            "CHG-1042"
        );
        assert!(
            render_table(&before, then)
                .lines()
                .nth(1)
                .unwrap()
                .ends_with(" -")
        );
    }
}
