//! The `reports:` section: the language management reports are written
//! in, where headless Chromium lives (for PDF), and the weekly and monthly
//! schedules: when, after its period has closed, the daemon makes a report,
//! in which formats, and to whom it e-mails it (through the SMTP settings
//! of alerting's first e-mail receiver).
//!
//! ```yaml
//! reports:
//!   language: nl
//!   weekly:
//!     { weekday: monday, time: "07:00", formats: [html, pdf, csv],
//!       email: { to: [directie@gemeente.example] } }
//!   monthly: { day: 1, time: "07:00", formats: [html, csv] }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use jiff::civil::{Time, Weekday};
use serde::Deserialize;

use super::{Spanned, Validator, closest};
use crate::report::locale::Lang;

/// A form a report is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReportFormat {
    Html,
    Pdf,
    Csv,
    Json,
    Md,
}

impl ReportFormat {
    pub const ALL: [ReportFormat; 5] = [
        ReportFormat::Html,
        ReportFormat::Pdf,
        ReportFormat::Csv,
        ReportFormat::Json,
        ReportFormat::Md,
    ];

    /// The file extension, also the name written in the configuration.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Html => "html",
            ReportFormat::Pdf => "pdf",
            ReportFormat::Csv => "csv",
            ReportFormat::Json => "json",
            ReportFormat::Md => "md",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ReportFormat::Html => "text/html; charset=utf-8",
            ReportFormat::Pdf => "application/pdf",
            ReportFormat::Csv => "text/csv; charset=utf-8",
            ReportFormat::Json => "application/json",
            ReportFormat::Md => "text/markdown; charset=utf-8",
        }
    }
}

impl fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for ReportFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<ReportFormat, String> {
        ReportFormat::ALL
            .into_iter()
            .find(|f| f.extension() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("unknown report format '{s}': use html, pdf, csv, json or md"))
    }
}

/// Which closed period a schedule reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScheduleKind {
    Weekly,
    Monthly,
}

impl ScheduleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleKind::Weekly => "weekly",
            ScheduleKind::Monthly => "monthly",
        }
    }
}

/// A checked `reports.weekly` or `reports.monthly`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSchedule {
    pub kind: ScheduleKind,
    /// Weekly: the day after the week has closed on which to send it.
    pub weekday: Weekday,
    /// Monthly: the day of the month (1–28) on which to send last month's.
    pub day: i8,
    /// Local time (in the report's time zone) on that day.
    pub time: Time,
    /// Made and archived; the e-mail carries the HTML as its body and the
    /// PDF and CSV (when listed) as attachments.
    pub formats: Vec<ReportFormat>,
    /// Recipients; empty means archive only.
    pub email_to: Vec<String>,
}

/// The checked `reports:` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportsConfig {
    pub language: Lang,
    /// `chromium` binary for PDF; `None` searches `PATH`.
    pub chromium: Option<PathBuf>,
    pub weekly: Option<ReportSchedule>,
    pub monthly: Option<ReportSchedule>,
}

impl ReportsConfig {
    pub fn schedules(&self) -> impl Iterator<Item = &ReportSchedule> {
        self.weekly.iter().chain(self.monthly.iter())
    }
}

/// `reports:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReports {
    language: Option<Spanned<String>>,
    chromium: Option<Spanned<String>>,
    weekly: Option<Spanned<RawSchedule>>,
    monthly: Option<Spanned<RawSchedule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    weekday: Option<Spanned<String>>,
    day: Option<Spanned<i64>>,
    time: Option<Spanned<String>>,
    formats: Option<Vec<Spanned<String>>>,
    email: Option<Spanned<RawEmail>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    to: Vec<Spanned<String>>,
}

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("monday", Weekday::Monday),
    ("tuesday", Weekday::Tuesday),
    ("wednesday", Weekday::Wednesday),
    ("thursday", Weekday::Thursday),
    ("friday", Weekday::Friday),
    ("saturday", Weekday::Saturday),
    ("sunday", Weekday::Sunday),
];

/// Check `reports:`; `has_email_receiver` says whether alerting has the
/// SMTP settings an `email:` block needs.
pub fn compile(
    raw: Option<Spanned<RawReports>>,
    v: &mut Validator,
    base: &Path,
    has_email_receiver: bool,
) -> ReportsConfig {
    let Some(raw) = raw else {
        return ReportsConfig::default();
    };
    let raw = raw.value;
    let language = match &raw.language {
        None => Lang::Nl,
        Some(l) => l
            .value
            .parse()
            .unwrap_or_else(|e: crate::report::locale::UnknownLang| {
                v.error(l.referenced, format!("reports.language: {e}"), None);
                Lang::Nl
            }),
    };
    let chromium = raw.chromium.map(|c| {
        let p = PathBuf::from(&c.value);
        if p.components().count() > 1 && p.is_relative() {
            base.join(p)
        } else {
            p
        }
    });
    let weekly = raw
        .weekly
        .map(|s| schedule(ScheduleKind::Weekly, s, v, has_email_receiver));
    let monthly = raw
        .monthly
        .map(|s| schedule(ScheduleKind::Monthly, s, v, has_email_receiver));
    ReportsConfig {
        language,
        chromium,
        weekly,
        monthly,
    }
}

fn schedule(
    kind: ScheduleKind,
    raw: Spanned<RawSchedule>,
    v: &mut Validator,
    has_email_receiver: bool,
) -> ReportSchedule {
    let at = raw.referenced;
    let raw = raw.value;
    let name = format!("reports.{}", kind.as_str());
    let weekday = match (&raw.weekday, kind) {
        (None, _) => Weekday::Monday,
        (Some(w), ScheduleKind::Monthly) => {
            v.error(
                w.referenced,
                format!("{name}: weekday is for the weekly report"),
                Some("a monthly report is sent on a day of the month: write day: 1".into()),
            );
            Weekday::Monday
        }
        (Some(w), ScheduleKind::Weekly) => {
            let word = w.value.trim().to_ascii_lowercase();
            match WEEKDAYS.iter().find(|(n, _)| *n == word) {
                Some((_, d)) => *d,
                None => {
                    let hint = closest(&word, WEEKDAYS.iter().map(|(n, _)| *n))
                        .map(|c| format!("did you mean '{c}'?"))
                        .unwrap_or_else(|| "write monday … sunday".into());
                    v.error(
                        w.referenced,
                        format!("{name}: '{}' is not a weekday", w.value),
                        Some(hint),
                    );
                    Weekday::Monday
                }
            }
        }
    };
    let day = match (&raw.day, kind) {
        (None, _) => 1,
        (Some(d), ScheduleKind::Weekly) => {
            v.error(
                d.referenced,
                format!("{name}: day is for the monthly report"),
                Some("a weekly report is sent on a weekday: write weekday: monday".into()),
            );
            1
        }
        (Some(d), ScheduleKind::Monthly) if (1..=28).contains(&d.value) => d.value as i8,
        (Some(d), ScheduleKind::Monthly) => {
            v.error(
                d.referenced,
                format!("{name}: day {} is not a day every month has", d.value),
                Some("write a day from 1 to 28".into()),
            );
            1
        }
    };
    let time = match &raw.time {
        None => Time::constant(7, 0, 0, 0),
        Some(t) => parse_time(&t.value).unwrap_or_else(|| {
            v.error(
                t.referenced,
                format!("{name}: time '{}' is not a time of day", t.value),
                Some("write HH:MM on the 24-hour clock, quoted: time: \"07:00\"".into()),
            );
            Time::midnight()
        }),
    };
    let mut formats = Vec::new();
    match &raw.formats {
        None => formats.extend([ReportFormat::Html, ReportFormat::Pdf, ReportFormat::Csv]),
        Some(list) => {
            for f in list {
                match f.value.parse::<ReportFormat>() {
                    Ok(f) if !formats.contains(&f) => formats.push(f),
                    Ok(_) => {}
                    Err(e) => v.error(f.referenced, format!("{name}: {e}"), None),
                }
            }
            if list.is_empty() {
                v.error(
                    at,
                    format!("{name}: formats is empty"),
                    Some("list at least one of html, pdf, csv, json, md".into()),
                );
            }
        }
    }
    let mut email_to = Vec::new();
    if let Some(email) = raw.email {
        if email.value.to.is_empty() {
            v.error(
                email.referenced,
                format!("{name}.email: 'to' is empty"),
                Some("list the recipients, e.g. to: [directie@gemeente.example]".into()),
            );
        }
        for to in &email.value.to {
            if to.value.parse::<lettre::message::Mailbox>().is_err() {
                v.error(
                    to.referenced,
                    format!("{name}.email: '{}' is not an e-mail address", to.value),
                    Some("write name@domain, e.g. directie@gemeente.example".into()),
                );
            }
            email_to.push(to.value.clone());
        }
        if !has_email_receiver {
            v.error(
                email.referenced,
                format!("{name}.email: there is no SMTP server to send it through"),
                Some(
                    "reports are sent with the SMTP settings of alerting's first e-mail receiver: \
                     add one under alerting.receivers (email: { smtp: …, from: …, to: … })"
                        .into(),
                ),
            );
        }
    }
    ReportSchedule {
        kind,
        weekday,
        day,
        time,
        formats,
        email_to,
    }
}

/// `07:00`, `7:00`, `07:00:30`.
fn parse_time(s: &str) -> Option<Time> {
    let mut parts = s.trim().split(':');
    let h: i8 = parts.next()?.parse().ok()?;
    let m: i8 = parts.next()?.parse().ok()?;
    let sec: i8 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    if parts.next().is_some() {
        return None;
    }
    Time::new(h, m, sec, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_parse_on_the_24_hour_clock() {
        assert_eq!(parse_time("07:00"), Some(Time::constant(7, 0, 0, 0)));
        assert_eq!(parse_time("23:59:30"), Some(Time::constant(23, 59, 30, 0)));
        assert_eq!(parse_time("24:00"), None);
        assert_eq!(parse_time("7"), None);
    }

    #[test]
    fn formats_parse_from_their_extensions() {
        assert_eq!("PDF".parse::<ReportFormat>(), Ok(ReportFormat::Pdf));
        assert!("docx".parse::<ReportFormat>().unwrap_err().contains("html"));
    }
}
