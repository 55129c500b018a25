//! The report as CSV: one line per service and SLA with a header, figures
//! in plain machine form (ratios, seconds, RFC 3339) whatever the report's
//! language, so spreadsheets and scripts read every export the same way.

use super::model::Report;

const COLUMNS: [&str; 25] = [
    "period",
    "period_start",
    "period_end",
    "service",
    "name",
    "category",
    "supplier",
    "sla",
    "objective_percent",
    "calendar",
    "availability",
    "met",
    "eligible_seconds",
    "down_seconds",
    "excluded_maintenance_seconds",
    "maintenance_references",
    "unknown_seconds",
    "incidents",
    "longest_incident_seconds",
    "mttr_seconds",
    "latency_p95_ms",
    "previous_availability",
    "change_vs_previous",
    "budget_remaining_ratio",
    "recomputed",
];

/// A text cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`,
/// tab, carriage return first) gets a leading apostrophe (OWASP's advice
/// against CSV injection); every other cell is as it is.
fn text(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

pub fn render(report: &Report) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(COLUMNS);
    let p = &report.period;
    for s in &report.services {
        let _ = w.write_record([
            p.label.clone(),
            p.start.to_string(),
            p.end.to_string(),
            text(&s.service),
            text(&s.name),
            text(&s.category),
            text(&s.supplier_shown("→")),
            text(&s.sla),
            s.objective.to_string(),
            text(&s.calendar),
            opt(s.availability),
            s.met.map(|m| m.to_string()).unwrap_or_default(),
            s.eligible_seconds.to_string(),
            s.down_seconds.to_string(),
            s.excluded_maintenance_seconds.to_string(),
            text(&s.maintenance_references.join(" ")),
            s.unknown_seconds.to_string(),
            s.incidents.to_string(),
            opt(s.longest_incident_seconds),
            opt(s.mttr_seconds),
            opt(s.latency_p95_ms),
            opt(s.previous_availability),
            opt(s.change_vs_previous),
            opt(s.budget_remaining_ratio),
            s.recomputed.to_string(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_like_names_are_defused() {
        assert_eq!(text("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(text("Burgerzaken"), "Burgerzaken");
    }
}
