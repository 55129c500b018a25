//! JSON Lines history files: one object per line with the fields of the
//! CSV format (`timestamp`, `service`, `check`, `success`, and optionally
//! `duration_seconds`, `reason`, `detail`). Values may be JSON strings,
//! numbers or booleans; `null` counts as absent; blank lines are skipped.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use jiff::Timestamp;
use serde_json::Value;

use super::{Fields, ImportError, Place, Rows};
use crate::config::Config;

const FIELDS: [&str; 7] = [
    "timestamp",
    "service",
    "check",
    "success",
    "duration_seconds",
    "reason",
    "detail",
];
const REQUIRED: usize = 4;

/// Read and check every line of the JSON Lines file at `path`; results are
/// stored with origin `jsonl <path>`.
pub fn read<'c>(config: &'c Config, path: &Path, now: Timestamp) -> Result<Rows<'c>, ImportError> {
    let read_error = |source| ImportError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut rows = Rows::new(config, format!("jsonl {}", path.display()), now);
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(read_error)? == 0 {
            break;
        }
        line += 1;
        let place = Place::Line(line);
        let Ok(text) = std::str::from_utf8(&buf) else {
            rows.reject(place, "not valid UTF-8 text");
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match values(text) {
            Ok(v) => {
                let get = |k: usize| v[k].as_deref().unwrap_or("");
                rows.add(
                    place,
                    Fields {
                        timestamp: get(0),
                        service: get(1),
                        check: get(2),
                        success: get(3),
                        duration_seconds: get(4),
                        reason: get(5),
                        detail: get(6),
                    },
                );
            }
            Err(problem) => rows.reject(place, problem),
        }
    }
    Ok(rows)
}

/// The fields of one line as text, in the order of `FIELDS`.
fn values(text: &str) -> Result<[Option<String>; 7], String> {
    let object: serde_json::Map<String, Value> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
    let mut out: [Option<String>; 7] = Default::default();
    for (key, value) in object {
        let Some(k) = FIELDS.iter().position(|f| *f == key) else {
            let hint = crate::config::closest(&key, FIELDS.iter().copied())
                .map(|c| format!("did you mean '{c}'? "))
                .unwrap_or_default();
            return Err(format!(
                "unknown field '{key}' ({hint}the fields are {})",
                FIELDS.join(", ")
            ));
        };
        out[k] = match value {
            Value::Null => None,
            Value::String(s) => Some(s),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::Array(_) | Value::Object(_) => {
                return Err(format!("field '{key}' must be a string, number or boolean"));
            }
        };
    }
    let missing: Vec<&str> = FIELDS[..REQUIRED]
        .iter()
        .zip(&out)
        .filter(|(_, v)| v.is_none())
        .map(|(f, _)| *f)
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing field(s) {}", missing.join(", ")));
    }
    Ok(out)
}
