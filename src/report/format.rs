//! Rendering SLA rows for people and for other tools: an aligned table
//! with a note under each recomputed row, pretty JSON (the rows as they
//! serialize), or CSV with one line per row and the incidents counted.

use std::fmt::Write as _;
use std::str::FromStr;

use jiff::Timestamp;

use super::sla::SlaRow;

/// How `continuity sla` prints its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Csv,
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<OutputFormat, String> {
        match s {
            "table" => Ok(OutputFormat::Table),
            "json" => Ok(OutputFormat::Json),
            "csv" => Ok(OutputFormat::Csv),
            other => Err(format!("unknown format '{other}': use table, json or csv")),
        }
    }
}

/// The rows in `format`, ending with a newline.
pub fn render(rows: &[SlaRow], format: OutputFormat) -> String {
    match format {
        OutputFormat::Table => table(rows),
        OutputFormat::Json => json(rows),
        OutputFormat::Csv => csv(rows),
    }
}

/// Aligned columns, one line per row; under a recomputed row a note line
/// `recomputed 2026-11-28T10:00Z by alice: reason`.
pub fn table(rows: &[SlaRow]) -> String {
    const HEADER: [&str; 12] = [
        "SERVICE",
        "SLA",
        "PERIOD",
        "AVAILABILITY",
        "OBJECTIVE",
        "MET",
        "ELIGIBLE",
        "DOWN",
        "UNKNOWN",
        "EXCLUDED",
        "BUDGET LEFT",
        "INCIDENTS",
    ];
    if rows.is_empty() {
        return "no SLAs to report (no service in the selection has an SLA)\n".into();
    }
    let cells: Vec<[String; 12]> = rows
        .iter()
        .map(|r| {
            [
                r.service.clone(),
                r.sla.clone(),
                r.period.clone(),
                r.availability
                    .map_or("-".into(), |a| format!("{:.3}%", a * 100.0)),
                format!("{}%", r.objective),
                match r.met {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => "-".into(),
                },
                duration(r.eligible_seconds),
                duration(r.down_seconds),
                duration(r.unknown_seconds),
                duration(r.excluded_maintenance_seconds),
                match r.budget_remaining_ratio {
                    Some(ratio) => format!(
                        "{} ({:.1}%)",
                        duration(r.budget_remaining_seconds),
                        ratio * 100.0
                    ),
                    None => duration(r.budget_remaining_seconds),
                },
                r.incident_count.to_string(),
            ]
        })
        .collect();
    let mut widths = HEADER.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut String, cells: &[&str]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            // Text columns align left, figures right.
            if i < 3 {
                let _ = write!(l, "{c:<w$}  ");
            } else {
                let _ = write!(l, "{c:>w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    let mut out = String::new();
    line(&mut out, &HEADER);
    for (r, c) in rows.iter().zip(&cells) {
        line(&mut out, &c.each_ref().map(String::as_str));
        if let Some(n) = &r.recomputed {
            let _ = writeln!(
                out,
                "  recomputed {} by {}: {}",
                minute(n.at),
                n.by,
                n.reason
            );
        }
    }
    out
}

/// The rows as a pretty JSON array.
pub fn json(rows: &[SlaRow]) -> String {
    let mut s = serde_json::to_string_pretty(rows).unwrap_or_else(|_| "[]".into());
    s.push('\n');
    s
}

const CSV_COLUMNS: [&str; 31] = [
    "service",
    "name",
    "category",
    "supplier",
    "sla",
    "objective_percent",
    "calendar",
    "period",
    "period_start",
    "period_end",
    "until",
    "availability",
    "met",
    "total_seconds",
    "eligible_seconds",
    "good_seconds",
    "degraded_seconds",
    "down_seconds",
    "unknown_seconds",
    "excluded_maintenance_seconds",
    "outside_hours_seconds",
    "budget_planned_seconds",
    "budget_allowed_seconds",
    "budget_used_seconds",
    "budget_remaining_seconds",
    "budget_remaining_ratio",
    "incidents",
    "recomputed_at",
    "recomputed_by",
    "recomputed_reason",
    "recomputed_config_digest",
];

/// One line per row with a header; empty cells for absent values
/// (availability without eligible time, a row never recomputed).
pub fn csv(rows: &[SlaRow]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let mut records: Vec<Vec<String>> = vec![CSV_COLUMNS.iter().map(|c| c.to_string()).collect()];
    for r in rows {
        let note = r.recomputed.as_ref();
        records.push(vec![
            r.service.clone(),
            r.name.clone(),
            r.category.clone(),
            r.supplier.clone(),
            r.sla.clone(),
            r.objective.to_string(),
            r.calendar.clone(),
            r.period.clone(),
            r.period_start.to_string(),
            r.period_end.to_string(),
            r.until.to_string(),
            opt(r.availability),
            r.met.map(|m| m.to_string()).unwrap_or_default(),
            r.total_seconds.to_string(),
            r.eligible_seconds.to_string(),
            r.good_seconds.to_string(),
            r.degraded_seconds.to_string(),
            r.down_seconds.to_string(),
            r.unknown_seconds.to_string(),
            r.excluded_maintenance_seconds.to_string(),
            r.outside_hours_seconds.to_string(),
            r.budget_planned_seconds.to_string(),
            r.budget_allowed_seconds.to_string(),
            r.budget_used_seconds.to_string(),
            r.budget_remaining_seconds.to_string(),
            opt(r.budget_remaining_ratio),
            r.incident_count.to_string(),
            note.map(|n| n.at.to_string()).unwrap_or_default(),
            note.map(|n| n.by.clone()).unwrap_or_default(),
            note.map(|n| n.reason.clone()).unwrap_or_default(),
            note.map(|n| n.config_digest.clone()).unwrap_or_default(),
        ]);
    }
    for rec in &records {
        // Writing to a Vec cannot fail.
        let _ = w.write_record(rec);
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// `2026-11-28T10:00Z`.
fn minute(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%MZ").to_string()
}

/// `45h00m00s`, `13m10s`, `7.5s`, `-2m03s`: hours, minutes and seconds,
/// the millisecond part only when there is one.
pub fn duration(seconds: f64) -> String {
    let ms = (seconds * 1000.0).round() as i64;
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
    let frac = match ms % 1000 {
        0 => String::new(),
        f => format!(".{f:03}").trim_end_matches('0').to_string(),
    };
    if h > 0 {
        format!("{sign}{h}h{m:02}m{s:02}{frac}s")
    } else if m > 0 {
        format!("{sign}{m}m{s:02}{frac}s")
    } else {
        format!("{sign}{s}{frac}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_hours_minutes_seconds() {
        assert_eq!(duration(0.0), "0s");
        assert_eq!(duration(7.5), "7.5s");
        assert_eq!(duration(0.25), "0.25s");
        assert_eq!(duration(790.0), "13m10s");
        assert_eq!(duration(162_000.0), "45h00m00s");
        assert_eq!(duration(-123.0), "-2m03s");
        assert_eq!(duration(1353.6), "22m33.6s");
    }

    #[test]
    fn formats_parse_from_their_names() {
        assert_eq!("csv".parse::<OutputFormat>(), Ok(OutputFormat::Csv));
        assert!("xml".parse::<OutputFormat>().is_err());
    }
}
