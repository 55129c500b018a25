//! CSV history files: a header line naming the columns (`timestamp`,
//! `service`, `check`, `success`, and optionally `duration_seconds`,
//! `reason`, `detail`, in any order), then one result per line. RFC 4180
//! quoting is understood, fields are trimmed, blank lines are skipped.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use jiff::Timestamp;

use super::{Fields, ImportError, Place, Rows};
use crate::config::Config;

const REQUIRED: [&str; 4] = ["timestamp", "service", "check", "success"];
const OPTIONAL: [&str; 3] = ["duration_seconds", "reason", "detail"];

/// Column positions from the header.
struct Columns {
    count: usize,
    /// In the order of `REQUIRED` then `OPTIONAL`.
    at: [Option<usize>; 7],
}

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Columns, String> {
        let known: Vec<&str> = REQUIRED.iter().chain(&OPTIONAL).copied().collect();
        let mut at = [None; 7];
        for (i, name) in header.iter().enumerate() {
            let name = name.trim_start_matches('\u{feff}').to_ascii_lowercase();
            let Some(k) = known.iter().position(|k| *k == name) else {
                let hint = crate::config::closest(&name, known.iter().copied())
                    .map(|c| format!("did you mean '{c}'? "))
                    .unwrap_or_default();
                return Err(format!(
                    "line 1: unknown column '{name}' ({hint}the columns are {})",
                    known.join(", ")
                ));
            };
            if at[k].replace(i).is_some() {
                return Err(format!("line 1: column '{name}' appears twice"));
            }
        }
        let missing: Vec<&str> = REQUIRED
            .iter()
            .zip(&at)
            .filter(|(_, i)| i.is_none())
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "line 1: the header lacks column(s) {} (the first line must name the columns, e.g. timestamp,service,check,success,duration_seconds,reason)",
                missing.join(", ")
            ));
        }
        Ok(Columns {
            count: header.len(),
            at,
        })
    }

    fn fields<'r>(&self, r: &'r csv::StringRecord) -> Fields<'r> {
        let get = |k: usize| self.at[k].and_then(|i| r.get(i)).unwrap_or("");
        Fields {
            timestamp: get(0),
            service: get(1),
            check: get(2),
            success: get(3),
            duration_seconds: get(4),
            reason: get(5),
            detail: get(6),
        }
    }
}

/// Read and check every row of the CSV file at `path`; results are stored
/// with origin `csv <path>`.
pub fn read<'c>(config: &'c Config, path: &Path, now: Timestamp) -> Result<Rows<'c>, ImportError> {
    let origin = format!("csv {}", path.display());
    let file = File::open(path).map_err(|source| ImportError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(BufReader::with_capacity(1 << 20, file));
    let mut rows = Rows::new(config, origin.clone(), now);
    let format = |problem: String| ImportError::Format {
        origin: origin.clone(),
        problem,
    };
    let mut record = csv::StringRecord::new();
    let columns = match reader.read_record(&mut record) {
        Ok(true) => Columns::from_header(&record).map_err(format)?,
        Ok(false) => {
            return Err(format(
                "the file is empty; the first line must name the columns: timestamp,service,check,success,duration_seconds,reason".into(),
            ));
        }
        Err(e) => return Err(format(format!("cannot read the header: {e}"))),
    };
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                if record.iter().all(str::is_empty) {
                    continue;
                }
                if record.len() != columns.count {
                    rows.reject(
                        Place::Line(line),
                        format!(
                            "{} field(s), but the header names {} columns",
                            record.len(),
                            columns.count
                        ),
                    );
                    continue;
                }
                rows.add(Place::Line(line), columns.fields(&record));
            }
            Err(e) => match (e.kind(), e.position()) {
                (csv::ErrorKind::Io(_), _) => {
                    return Err(ImportError::Read {
                        path: path.display().to_string(),
                        source: std::io::Error::other(e.to_string()),
                    });
                }
                (csv::ErrorKind::Utf8 { .. }, Some(p)) => {
                    rows.reject(Place::Line(p.line()), "not valid UTF-8 text");
                }
                (_, Some(p)) => rows.reject(Place::Line(p.line()), e.to_string()),
                (_, None) => return Err(format(e.to_string())),
            },
        }
    }
    Ok(rows)
}
