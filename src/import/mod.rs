//! Loading probe history from other tools into the store: CSV and JSON
//! Lines files in one documented format (docs/import.md), and a Prometheus
//! server's `probe_success` over its HTTP API. A file imports whole or not
//! at all, and every bad row is reported with its line; afterwards the
//! state of each service over the imported range is rebuilt from all its
//! stored results ([`crate::recompute::rewrite_service`]), so incidents
//! and SLA figures reflect the history.

pub mod csv;
pub mod jsonl;
pub mod prometheus;

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::config::{Config, Dur, closest};
use crate::probe::FailureReason;
use crate::recompute::{RecomputeError, RewriteSummary, rewrite_service, standing_ms};
use crate::sla::TimeRange;
use crate::sla::range::{from_ms, ms};
use crate::store::{ResultRecord, ResultSource, ResultStore, Store, StoreError};

/// Where a row came from: a line of a file, or a Prometheus sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    Line(u64),
    Sample(Timestamp),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Line(n) => write!(f, "line {n}"),
            Place::Sample(at) => write!(f, "sample at {at}"),
        }
    }
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowProblem {
    pub place: Place,
    pub problem: String,
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.problem)
    }
}

/// Why an import did not happen (nothing was imported), or stopped after
/// the results were stored ([`ImportError::Rebuild`]).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The input as a whole is unusable (no header, an unknown column, a
    /// Prometheus answer that is not one series).
    #[error("{origin}: {problem}")]
    Format { origin: String, problem: String },
    #[error(
        "{origin}: {} bad row(s), nothing was imported (fix them, or pass --skip-bad to import the rest)",
        .problems.len()
    )]
    BadRows {
        origin: String,
        problems: Vec<RowProblem>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the results were imported, but their state could not be rebuilt ({0}); run `continuity recompute` over the imported range"
    )]
    Rebuild(#[from] RecomputeError),
    #[error("prometheus: {0}")]
    Prometheus(String),
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportSummary {
    /// `csv <path>`, `jsonl <path>` or `prometheus <url> <query>`: also the
    /// origin stored with every imported result.
    pub origin: String,
    pub rows_read: usize,
    pub imported: u64,
    /// Rows left out (only with `skip_bad`), in input order.
    pub skipped: Vec<RowProblem>,
    /// First and last imported result (the end is the last one's instant).
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    /// The state rebuilt per service.
    pub services: Vec<RewriteSummary>,
}

/// The fields of one row as text, as read from a file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    pub timestamp: &'a str,
    pub service: &'a str,
    pub check: &'a str,
    pub success: &'a str,
    pub duration_seconds: &'a str,
    pub reason: &'a str,
    pub detail: &'a str,
}

/// Rows checked against the configuration as they are read: the valid
/// ones become results, the others problems with their place.
pub struct Rows<'c> {
    origin: String,
    now: Timestamp,
    services: HashMap<&'c str, (u32, HashMap<&'c str, u32>)>,
    config: &'c Config,
    /// Service, check and millisecond of each valid row, to its place.
    seen: HashMap<(u32, u32, i64), Place>,
    records: Vec<ResultRecord>,
    places: Vec<Place>,
    problems: Vec<RowProblem>,
    read: usize,
}

impl<'c> Rows<'c> {
    /// `origin` is stored with every result; results after `now` are
    /// refused.
    pub fn new(config: &'c Config, origin: String, now: Timestamp) -> Rows<'c> {
        let services = config
            .services
            .iter()
            .enumerate()
            .map(|(si, s)| {
                let checks = s
                    .checks
                    .iter()
                    .enumerate()
                    .map(|(ci, c)| (c.id.as_str(), ci as u32))
                    .collect();
                (s.id.as_str(), (si as u32, checks))
            })
            .collect();
        Rows {
            origin,
            now,
            services,
            config,
            seen: HashMap::new(),
            records: Vec::new(),
            places: Vec::new(),
            problems: Vec::new(),
            read: 0,
        }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn rows_read(&self) -> usize {
        self.read
    }

    pub fn problems(&self) -> &[RowProblem] {
        &self.problems
    }

    /// A row that could not even be split into fields.
    pub fn reject(&mut self, place: Place, problem: impl Into<String>) {
        self.read += 1;
        self.problems.push(RowProblem {
            place,
            problem: problem.into(),
        });
    }

    /// Check one row and keep it as a result, or as a problem.
    pub fn add(&mut self, place: Place, f: Fields<'_>) {
        self.read += 1;
        if let Err(problem) = self.check(place, f) {
            self.problems.push(RowProblem { place, problem });
        }
    }

    fn check(&mut self, place: Place, f: Fields<'_>) -> Result<(), String> {
        let mut problems = Vec::new();
        let ids = self.ids(f.service, f.check);
        if let Err(p) = &ids {
            problems.push(p.clone());
        }
        let at = f.timestamp.parse::<Timestamp>().map_err(|_| {
            format!(
                "timestamp '{}' is not an RFC 3339 instant with an offset (write 2026-10-01T08:00:00+02:00 or 2026-10-01T06:00:00Z)",
                f.timestamp
            )
        });
        let success = match f.success.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!(
                "success '{}' is not true, false, 1 or 0",
                f.success
            )),
        };
        let duration = if f.duration_seconds.is_empty() {
            Ok(Duration::ZERO)
        } else {
            f.duration_seconds
                .parse::<f64>()
                .ok()
                .filter(|d| d.is_finite() && *d >= 0.0 && *d < 1e9)
                // The store keeps microseconds: 0.12 is 120 000 µs, not
                // the 119 999 µs its binary fraction truncates to.
                .map(|d| Duration::from_micros((d * 1e6).round() as u64))
                .ok_or_else(|| {
                    format!(
                        "duration_seconds '{}' is not a number of seconds (write e.g. 0.25)",
                        f.duration_seconds
                    )
                })
        };
        let reason = match f.reason {
            "" => Ok(None),
            r => FailureReason::parse(r).map(Some).ok_or_else(|| {
                let known: Vec<&str> = FailureReason::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown reason '{r}' (reasons: {})", known.join(", "))
            }),
        };
        for p in [
            at.as_ref().err(),
            success.as_ref().err(),
            duration.as_ref().err(),
            reason.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        {
            problems.push(p.clone());
        }
        if let (Ok(true), Ok(Some(r))) = (&success, &reason) {
            problems.push(format!(
                "a successful result has no failure reason (reason '{}'); leave it empty",
                r.as_str()
            ));
        }
        if let Ok(at) = at
            && at > self.now
        {
            problems.push(format!("timestamp {at} is in the future"));
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        let (Ok((si, ci)), Ok(at), Ok(success), Ok(duration), Ok(reason)) =
            (ids, at, success, duration, reason)
        else {
            return Err("invalid row".into());
        };
        let detail = (!success && !f.detail.is_empty()).then(|| f.detail.to_string());
        self.push(place, (si, ci), at, success, duration, reason, detail)
    }

    /// A result read from a source with typed values (a Prometheus sample):
    /// only the service, the check, the time and repeats are checked.
    pub fn add_result(
        &mut self,
        place: Place,
        service: &str,
        check: &str,
        at: Timestamp,
        success: bool,
        detail: Option<String>,
    ) {
        self.read += 1;
        let checked = self.ids(service, check).and_then(|ids| {
            if at > self.now {
                return Err(format!("timestamp {at} is in the future"));
            }
            let detail = if success { None } else { detail };
            self.push(place, ids, at, success, Duration::ZERO, None, detail)
        });
        if let Err(problem) = checked {
            self.problems.push(RowProblem { place, problem });
        }
    }

    /// A result whose service and check are known to be configured.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        place: Place,
        (si, ci): (u32, u32),
        at: Timestamp,
        success: bool,
        duration: Duration,
        reason: Option<FailureReason>,
        detail: Option<String>,
    ) -> Result<(), String> {
        match self.seen.entry((si, ci, ms(at))) {
            Entry::Occupied(first) => {
                return Err(format!(
                    "duplicate of {} (same service, check and millisecond)",
                    first.get()
                ));
            }
            Entry::Vacant(v) => {
                v.insert(place);
            }
        }
        let service = &self.config.services[si as usize];
        self.records.push(ResultRecord {
            service: service.id.clone(),
            check: service.checks[ci as usize].id.clone(),
            at,
            success,
            duration,
            reason: reason.map(|r| r.as_str().to_string()),
            detail,
            source: ResultSource::Imported {
                origin: self.origin.clone(),
            },
        });
        self.places.push(place);
        Ok(())
    }

    fn ids(&self, service: &str, check: &str) -> Result<(u32, u32), String> {
        let Some((si, checks)) = self.services.get(service) else {
            let hint = closest(service, self.services.keys().copied())
                .map(|c| format!(" (did you mean '{c}'?)"))
                .unwrap_or_default();
            return Err(format!("unknown service '{service}'{hint}"));
        };
        match checks.get(check) {
            Some(ci) => Ok((*si, *ci)),
            None => {
                let mut known: Vec<&str> = checks.keys().copied().collect();
                known.sort_unstable();
                Err(format!(
                    "service '{service}' has no check '{check}' (its checks: {})",
                    known.join(", ")
                ))
            }
        }
    }
}

/// Store the rows and rebuild the state of every service they touch.
///
/// Without `skip_bad`, any bad row (including a duplicate of a stored
/// result) fails the whole import with every problem listed, and nothing
/// is stored. With it, bad rows are left out and listed in the summary.
/// The results go in as one transaction; the rebuilt state of each
/// service then in one transaction per service.
pub fn load(
    store: &dyn Store,
    rows: Rows<'_>,
    skip_bad: bool,
    now: Timestamp,
) -> Result<ImportSummary, ImportError> {
    let Rows {
        origin,
        config,
        records,
        places,
        mut problems,
        read,
        ..
    } = rows;
    if !problems.is_empty() && !skip_bad {
        problems.extend(stored_duplicates(store, &records, &places)?);
        problems.sort_by_key(|p| p.place);
        return Err(ImportError::BadRows { origin, problems });
    }
    let report = match store.insert_results_atomic(&records, skip_bad) {
        Ok(r) => r,
        Err(StoreError::Duplicates { rows }) => {
            problems.extend(rows.iter().map(|&i| duplicate(places[i])));
            problems.sort_by_key(|p| p.place);
            return Err(ImportError::BadRows { origin, problems });
        }
        Err(e) => return Err(e.into()),
    };
    problems.extend(report.duplicates.iter().map(|&i| duplicate(places[i])));
    problems.sort_by_key(|p| p.place);

    let left_out: HashSet<usize> = report.duplicates.iter().copied().collect();
    let mut spans: BTreeMap<&str, (Timestamp, Timestamp)> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if left_out.contains(&i) {
            continue;
        }
        spans
            .entry(r.service.as_str())
            .and_modify(|(a, b)| {
                *a = (*a).min(r.at);
                *b = (*b).max(r.at);
            })
            .or_insert((r.at, r.at));
    }
    let spans: Vec<(String, Timestamp, Timestamp)> = spans
        .into_iter()
        .map(|(s, (a, b))| (s.to_string(), a, b))
        .collect();
    drop(records);

    let mut services = Vec::with_capacity(spans.len());
    for (id, first, last) in &spans {
        let Some(service) = config.service(id) else {
            continue;
        };
        // Up to where the last result stops standing, so the state it
        // leads to (unknown, when nothing follows) is rebuilt too.
        let end = from_ms(
            ms(*last)
                .saturating_add(standing_ms(service))
                .saturating_add(1),
        );
        let rw = rewrite_service(store, service, TimeRange::new(*first, end), now)?;
        store.write_batch(&rw.ops).map_err(RecomputeError::from)?;
        services.push(rw.summary);
    }
    Ok(ImportSummary {
        origin,
        rows_read: read,
        imported: report.inserted,
        skipped: problems,
        first: spans.iter().map(|s| s.1).min(),
        last: spans.iter().map(|s| s.2).max(),
        services,
    })
}

fn duplicate(place: Place) -> RowProblem {
    RowProblem {
        place,
        problem: "duplicate of a stored result (same service, check and millisecond)".into(),
    }
}

/// Rows that repeat a stored result, found by reading the stored results
/// of each service and check over the rows' span (to list them along with
/// the other problems, before anything is written).
fn stored_duplicates(
    store: &dyn ResultStore,
    records: &[ResultRecord],
    places: &[Place],
) -> Result<Vec<RowProblem>, StoreError> {
    let mut spans: BTreeMap<(&str, &str), (Timestamp, Timestamp)> = BTreeMap::new();
    for r in records {
        spans
            .entry((r.service.as_str(), r.check.as_str()))
            .and_modify(|(a, b)| {
                *a = (*a).min(r.at);
                *b = (*b).max(r.at);
            })
            .or_insert((r.at, r.at));
    }
    let mut stored: HashSet<(&str, &str, i64)> = HashSet::new();
    for ((service, check), (first, last)) in spans {
        store.results(
            service,
            Some(check),
            first,
            from_ms(ms(last).saturating_add(1)),
            &mut |r| {
                stored.insert((service, check, ms(r.at)));
            },
        )?;
    }
    Ok(records
        .iter()
        .zip(places)
        .filter(|(r, _)| stored.contains(&(r.service.as_str(), r.check.as_str(), ms(r.at))))
        .map(|(_, p)| duplicate(*p))
        .collect())
}

/// An instant on the command line: RFC 3339 with an offset, `now`, or
/// `-` and a duration before now (`-30d`, `-2h30m`).
pub fn parse_time(s: &str, now: Timestamp) -> Result<Timestamp, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(ago) = s.strip_prefix('-') {
        let d = Dur::parse(ago)?;
        let back = i64::try_from(d.0.as_millis()).unwrap_or(i64::MAX);
        return Ok(from_ms(ms(now).saturating_sub(back)));
    }
    s.parse::<Timestamp>().map_err(|_| {
        format!(
            "'{}' is not a time: write RFC 3339 with an offset (2026-10-01T00:00:00+02:00), now, or a time before now like -30d",
            crate::config::error::shorten(s, 40)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_str(
            "t.yaml",
            r#"
services:
  - id: portal
    checks:
      - id: home
        http: { url: "https://portal.example/" }
"#,
        )
        .expect("test config")
    }

    fn row<'a>(ts: &'a str, success: &'a str, reason: &'a str) -> Fields<'a> {
        Fields {
            timestamp: ts,
            service: "portal",
            check: "home",
            success,
            reason,
            ..Fields::default()
        }
    }

    #[test]
    fn every_problem_of_a_row_is_named() {
        let c = config();
        let mut rows = Rows::new(&c, "test".into(), "2026-12-01T00:00:00Z".parse().unwrap());
        rows.add(
            Place::Line(2),
            row("2026-10-01T08:00:00", "yes", "slowness"),
        );
        let p = &rows.problems()[0];
        assert_eq!(p.place, Place::Line(2));
        assert!(p.problem.contains("RFC 3339"), "{}", p.problem);
        assert!(p.problem.contains("success 'yes'"), "{}", p.problem);
        assert!(
            p.problem.contains("unknown reason 'slowness'"),
            "{}",
            p.problem
        );
    }

    #[test]
    fn a_repeated_row_names_the_line_it_repeats() {
        let c = config();
        let mut rows = Rows::new(&c, "test".into(), "2026-12-01T00:00:00Z".parse().unwrap());
        rows.add(Place::Line(2), row("2026-10-01T08:00:00Z", "1", ""));
        rows.add(
            Place::Line(3),
            row("2026-10-01T10:00:00+02:00", "0", "timeout"),
        );
        assert_eq!(rows.problems().len(), 1);
        assert_eq!(rows.problems()[0].place, Place::Line(3));
        assert!(rows.problems()[0].problem.contains("duplicate of line 2"));
    }

    #[test]
    fn results_in_the_future_and_reasons_on_successes_are_refused() {
        let c = config();
        let mut rows = Rows::new(&c, "test".into(), "2026-12-01T00:00:00Z".parse().unwrap());
        rows.add(Place::Line(2), row("2027-01-01T00:00:00Z", "true", ""));
        rows.add(
            Place::Line(3),
            row("2026-10-01T00:00:00Z", "true", "timeout"),
        );
        assert!(rows.problems()[0].problem.contains("in the future"));
        assert!(rows.problems()[1].problem.contains("successful result"));
    }

    #[test]
    fn times_are_absolute_now_or_before_now() {
        let now: Timestamp = "2026-11-20T12:00:00Z".parse().unwrap();
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(
            parse_time("-30d", now),
            Ok("2026-10-21T12:00:00Z".parse().unwrap())
        );
        assert_eq!(
            parse_time("2026-11-01T00:00:00+01:00", now),
            Ok("2026-10-31T23:00:00Z".parse().unwrap())
        );
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("2026-11-01T00:00:00", now).is_err());
    }
}
