//! `continuity report`: which period the reader asked for (`--week`,
//! `--month`, `--from/--to`, else the last complete ISO week in the
//! calendar's time zone), built and rendered in one call.

use std::path::Path;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::{RenderError, ReportFormat, build, render, time_zone};
use crate::config::Config;
use crate::report::locale::Lang;
use crate::report::sla::ReportError;
use crate::sla::{self, Period, SlaPeriod, TimeRange};
use crate::store::Store;

/// The period options as typed.
#[derive(Debug, Clone, Default)]
pub struct PeriodArgs {
    pub week: Option<String>,
    pub month: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{0}")]
    Period(String),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// The period `args` name, read in `tz`, as of `now`.
pub fn period(args: &PeriodArgs, tz: &TimeZone, now: Timestamp) -> Result<Period, CommandError> {
    let bad = |e: String| CommandError::Period(e);
    match (&args.week, &args.month, &args.from, &args.to) {
        (None, None, None, None) => Ok(super::last_complete_week(now, tz)),
        (Some(w), None, None, None) => {
            let p = sla::parse_period_label(w, tz).map_err(|e| bad(format!("--week: {e}")))?;
            if p.kind != SlaPeriod::Week {
                return Err(bad(format!(
                    "--week: '{w}' is not an ISO week (write 2026-W48; for a month use --month 2026-11)"
                )));
            }
            Ok(p)
        }
        (None, Some(m), None, None) => {
            let p = sla::parse_period_label(m, tz).map_err(|e| bad(format!("--month: {e}")))?;
            if p.kind != SlaPeriod::Month {
                return Err(bad(format!(
                    "--month: '{m}' is not a month (write 2026-11; for a week use --week 2026-W48)"
                )));
            }
            Ok(p)
        }
        (None, None, Some(f), Some(t)) => {
            let from = instant(f, tz, now).map_err(|e| bad(format!("--from: {e}")))?;
            let to = instant(t, tz, now).map_err(|e| bad(format!("--to: {e}")))?;
            if to <= from {
                return Err(bad(format!(
                    "--to ({to}) is not after --from ({from}): give the start first"
                )));
            }
            Ok(Period::custom(TimeRange::new(from, to), tz))
        }
        (None, None, Some(_), None) | (None, None, None, Some(_)) => Err(bad(
            "--from and --to go together: give both (e.g. --from 2026-11-01 --to 2026-11-15)"
                .into(),
        )),
        _ => Err(bad(
            "choose one of --week, --month or --from/--to (or none for the last complete week)"
                .into(),
        )),
    }
}

/// A local date (`2026-11-23`, midnight in `tz`), an RFC 3339 instant,
/// `now` or a time before now (`-7d`).
fn instant(s: &str, tz: &TimeZone, now: Timestamp) -> Result<Timestamp, String> {
    if let Ok(d) = s.trim().parse::<jiff::civil::Date>() {
        return Ok(sla::period::local_midnight(d, tz));
    }
    crate::import::parse_time(s, now)
        .map_err(|e| format!("{e} (or write a local date such as 2026-11-23)"))
}

/// The report of the period `args` name, rendered.
pub fn run(
    config: &Config,
    store: &dyn Store,
    args: &PeriodArgs,
    format: ReportFormat,
    lang: Option<Lang>,
    now: Timestamp,
) -> Result<Vec<u8>, CommandError> {
    let tz = time_zone(config);
    let period = period(args, &tz, now)?;
    let lang = lang.unwrap_or(config.reports.language);
    let report = build(config, store, &period, lang, now, None)?;
    Ok(render(
        &report,
        format,
        config.reports.chromium.as_deref().map(Path::new),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ams() -> TimeZone {
        TimeZone::get("Europe/Amsterdam").unwrap()
    }

    #[test]
    fn without_a_period_the_last_complete_iso_week_is_reported() {
        // Monday 30 November 2026 00:30 in Amsterdam: W48 has just closed.
        let now: Timestamp = "2026-11-29T23:30:00Z".parse().unwrap();
        let p = period(&PeriodArgs::default(), &ams(), now).unwrap();
        assert_eq!(p.label(), "2026-W48");
    }

    #[test]
    fn a_month_given_as_a_week_is_refused_with_the_right_option() {
        let args = PeriodArgs {
            week: Some("2026-11".into()),
            ..PeriodArgs::default()
        };
        let e = period(&args, &ams(), Timestamp::now()).unwrap_err();
        assert!(e.to_string().contains("--month 2026-11"), "{e}");
    }

    #[test]
    fn local_dates_bound_a_chosen_range() {
        let args = PeriodArgs {
            from: Some("2026-11-01".into()),
            to: Some("2026-11-15".into()),
            ..PeriodArgs::default()
        };
        let p = period(&args, &ams(), Timestamp::now()).unwrap();
        assert_eq!(p.start(), "2026-10-31T23:00:00Z".parse().unwrap());
        assert!(p.is_custom());
        let only_from = PeriodArgs {
            from: Some("2026-11-01".into()),
            ..PeriodArgs::default()
        };
        assert!(period(&only_from, &ams(), Timestamp::now()).is_err());
    }
}
