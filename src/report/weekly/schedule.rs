//! Scheduled reports in the daemon (`reports.weekly`, `reports.monthly`):
//! once a period has closed and its send time (`weekday`/`day` at `time`,
//! in the report's time zone) has come, the report is built and rendered
//! on a blocking thread, archived in the store together with the record
//! of the run (so each schedule and period is made exactly once, also when
//! the daemon was down at the send time and makes it up at start), and
//! e-mailed through alerting's first e-mail receiver: the HTML as the
//! body, the PDF and CSV attached. A failed send stays pending in the
//! store and is retried with backoff until it goes out.
//!
//! The clock is injected ([`Clock`]) so tests can step through a week.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use lettre::AsyncTransport;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

use super::model::CertificateLine;
use super::{ReportFormat, render, time_zone};
use crate::alert::notify::Channel;
use crate::config::Config;
use crate::config::reports::{ReportSchedule, ScheduleKind};
use crate::engine::StatusBoard;
use crate::sla::{self, Period, SlaPeriod};
use crate::store::{ArchivedReport, ReportRunRecord, Store};
use crate::telemetry::{ReportLabels, Telemetry};

/// What time it is; the daemon passes its own clock ([`crate::clock::Clock`]),
/// tests their own.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

impl Clock for crate::clock::Clock {
    fn now(&self) -> Timestamp {
        crate::clock::Clock::now(self)
    }
}

/// How often the scheduler looks at the clock: a report goes out at most
/// this long after its send time.
const POLL: Duration = Duration::from_secs(30);

/// Retry delays of a failed send: 1, 2, 4 … minutes, at most an hour.
fn backoff(attempts: u32) -> SignedDuration {
    SignedDuration::from_mins(1i64 << attempts.min(6)).min(SignedDuration::from_hours(1))
}

/// When the report of `period` is due under `schedule`.
pub fn send_time(schedule: &ReportSchedule, period: &Period, tz: &TimeZone) -> Timestamp {
    // The period's end is local midnight of its first day after.
    let first_after = tz.to_datetime(period.end()).date();
    let day = match schedule.kind {
        ScheduleKind::Weekly => {
            let ahead = (schedule.weekday.to_monday_zero_offset()
                - first_after.weekday().to_monday_zero_offset())
            .rem_euclid(7);
            first_after
                .checked_add(jiff::Span::new().days(i64::from(ahead)))
                .unwrap_or(first_after)
        }
        ScheduleKind::Monthly => first_after
            .with()
            .day(schedule.day)
            .build()
            .unwrap_or(first_after),
    };
    tz.to_ambiguous_timestamp(day.to_datetime(schedule.time))
        .compatible()
        .unwrap_or(period.end())
}

/// The latest closed period of `schedule` whose send time has come at `now`.
pub fn due(schedule: &ReportSchedule, now: Timestamp, tz: &TimeZone) -> Period {
    let kind = match schedule.kind {
        ScheduleKind::Weekly => SlaPeriod::Week,
        ScheduleKind::Monthly => SlaPeriod::Month,
    };
    let last = sla::period_containing(kind, now, tz).previous();
    if send_time(schedule, &last, tz) <= now {
        last
    } else {
        last.previous()
    }
}

/// Makes, archives and mails the scheduled reports.
pub struct ReportScheduler {
    config: Arc<RwLock<Arc<Config>>>,
    store: Arc<dyn Store>,
    status: Option<Arc<RwLock<StatusBoard>>>,
    clock: Arc<dyn Clock>,
    telemetry: Option<Arc<Telemetry>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Report(#[from] crate::report::sla::ReportError),
    #[error("the report thread panicked")]
    Panicked,
}

/// What one [`ReportScheduler::tick`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickOutcome {
    /// `weekly 2026-W48` for each run made.
    pub made: Vec<String>,
    pub mails_sent: usize,
    pub mails_failed: usize,
}

impl ReportScheduler {
    pub fn new(
        config: Arc<RwLock<Arc<Config>>>,
        store: Arc<dyn Store>,
        status: Option<Arc<RwLock<StatusBoard>>>,
        clock: Arc<dyn Clock>,
        telemetry: Option<Arc<Telemetry>>,
    ) -> ReportScheduler {
        ReportScheduler {
            config,
            store,
            status,
            clock,
            telemetry,
        }
    }

    fn count(&self, schedule: &str, event: &str) {
        if let Some(t) = &self.telemetry {
            t.reports_total
                .get_or_create(&ReportLabels {
                    schedule: schedule.to_string(),
                    event: event.to_string(),
                })
                .inc();
        }
    }

    fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Until `stop` turns true: a tick now (making up what was missed),
    /// then every 30 s.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if self.config().reports.schedules().next().is_some()
                && let Err(e) = self.tick().await
            {
                tracing::error!(error = %e, "scheduled report failed; retrying in 30 s");
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// Make every due report not made yet, then send the due e-mails.
    pub async fn tick(&self) -> Result<TickOutcome, ScheduleError> {
        let config = self.config();
        let now = self.clock.now();
        let tz = time_zone(&config);
        let mut out = TickOutcome::default();
        for schedule in config.reports.schedules() {
            let period = due(schedule, now, &tz);
            let label = period.label();
            let name = schedule.kind.as_str();
            let store = self.store.clone();
            let exists = {
                let (name, label) = (name.to_string(), label.clone());
                tokio::task::spawn_blocking(move || store.report_run(&name, &label))
                    .await
                    .map_err(|_| ScheduleError::Panicked)??
            };
            if exists.is_some() {
                continue;
            }
            let certificates = self.certificates(now);
            let (config, store, schedule) = (config.clone(), self.store.clone(), schedule.clone());
            let made = tokio::task::spawn_blocking(move || {
                make(
                    &config,
                    store.as_ref(),
                    &schedule,
                    &period,
                    now,
                    certificates,
                )
            })
            .await
            .map_err(|_| ScheduleError::Panicked)
            .and_then(|r| r);
            let made = match made {
                Ok(made) => made,
                Err(e) => {
                    self.count(name, "failed");
                    return Err(e);
                }
            };
            if made {
                self.count(name, "made");
                tracing::info!(schedule = name, period = %label, "report made and archived");
                out.made.push(format!("{name} {label}"));
            }
        }
        let store = self.store.clone();
        let due = tokio::task::spawn_blocking(move || store.report_mails_due(now))
            .await
            .map_err(|_| ScheduleError::Panicked)??;
        for run in due {
            let result = self.send(&config, &run).await;
            let store = self.store.clone();
            let ok = result.is_ok();
            if let Err(e) = &result {
                tracing::warn!(schedule = %run.schedule, period = %run.period, error = %e,
                    attempt = run.attempts + 1, "report e-mail failed; will retry");
            }
            let next = now + backoff(run.attempts);
            let schedule = run.schedule.clone();
            tokio::task::spawn_blocking(move || {
                let outcome = match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err((e.as_str(), next)),
                };
                store.report_mail_attempted(&run.schedule, &run.period, now, outcome)
            })
            .await
            .map_err(|_| ScheduleError::Panicked)??;
            if ok {
                self.count(&schedule, "mail_sent");
                out.mails_sent += 1;
            } else {
                self.count(&schedule, "mail_failed");
                out.mails_failed += 1;
            }
        }
        Ok(out)
    }

    /// Certificates from the status board's latest TLS results.
    fn certificates(&self, now: Timestamp) -> Option<Vec<CertificateLine>> {
        let board = self.status.as_ref()?;
        let board = board
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::new();
        for s in &board.services {
            for c in &s.checks {
                let Some(not_after) = c.last.as_ref().and_then(|l| l.cert_not_after) else {
                    continue;
                };
                let Ok(at) = Timestamp::from_second(not_after) else {
                    continue;
                };
                out.push(CertificateLine {
                    service: s.service.id.clone(),
                    check: c.check.id.clone(),
                    not_after: at,
                    days_left: (not_after - now.as_second()).div_euclid(86_400),
                });
            }
        }
        Some(out)
    }

    async fn send(&self, config: &Config, run: &ReportRunRecord) -> Result<(), String> {
        let schedule = config
            .reports
            .schedules()
            .find(|s| s.kind.as_str() == run.schedule)
            .ok_or_else(|| format!("reports.{} is no longer configured", run.schedule))?;
        let email = config
            .alerting
            .receivers()
            .iter()
            .find_map(|r| match &r.channel {
                Channel::Email(e) => Some(e.clone()),
                _ => None,
            })
            .ok_or("no e-mail receiver under alerting.receivers to send through")?;
        let store = self.store.clone();
        let period = run.period.clone();
        let files = tokio::task::spawn_blocking(move || {
            ["html", "pdf", "csv"]
                .into_iter()
                .map(|f| store.archived_report(&period, f))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let [html, pdf, csv] = <[Option<ArchivedReport>; 3]>::try_from(files)
            .map_err(|_| "archive lookup returned the wrong number of files".to_string())?;
        let message = message(&email.from, &schedule.email_to, &run.period, html, pdf, csv)?;
        let transport =
            crate::alert::notify::email::transport(&email).map_err(|e| e.to_string())?;
        transport.send(message).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Build and render `period` in every format of `schedule`, then record
/// the run with its files; false when it was recorded meanwhile. A PDF
/// that cannot be made (no Chromium) is logged and left out; the other
/// formats are still archived and sent.
fn make(
    config: &Config,
    store: &dyn Store,
    schedule: &ReportSchedule,
    period: &Period,
    now: Timestamp,
    certificates: Option<Vec<CertificateLine>>,
) -> Result<bool, ScheduleError> {
    let lang = config.reports.language;
    let rows = crate::report::sla_report(config, store, super::build::selector(period), None, now)?;
    let report = super::build::build_from(config, store, period, &rows, lang, now, certificates)?;
    let mut files = Vec::new();
    for &format in &schedule.formats {
        match render(&report, format, config.reports.chromium.as_deref()) {
            Ok(content) => files.push(ArchivedReport {
                period: period.label(),
                format: format.extension().to_string(),
                lang: lang.tag().to_string(),
                created_at: now,
                content,
            }),
            Err(e) => tracing::error!(period = %period.label(), %format, error = %e,
                "report format left out"),
        }
    }
    if !schedule.formats.contains(&ReportFormat::Html) {
        // The e-mail's body is the HTML, archived with the run.
        if let Ok(content) = render(&report, ReportFormat::Html, None) {
            files.push(ArchivedReport {
                period: period.label(),
                format: "html".into(),
                lang: lang.tag().to_string(),
                created_at: now,
                content,
            });
        }
    }
    let run = ReportRunRecord {
        schedule: schedule.kind.as_str().to_string(),
        period: period.label(),
        made_at: now,
        mail_status: if schedule.email_to.is_empty() {
            "none".into()
        } else {
            "pending".into()
        },
        attempts: 0,
        next_attempt_at: None,
        last_error: None,
        sent_at: None,
    };
    let made = store.record_report_run(&run, &files)?;
    if made {
        // The figures as reported are the ones on record: a later
        // recomputation shows them as its "before".
        for row in &rows {
            store.insert_sla_snapshot(&crate::report::snapshot(row, now))?;
        }
    }
    Ok(made)
}

/// The e-mail: the HTML report as the body, the PDF and CSV attached.
fn message(
    from: &Mailbox,
    to: &[String],
    period: &str,
    html: Option<ArchivedReport>,
    pdf: Option<ArchivedReport>,
    csv: Option<ArchivedReport>,
) -> Result<lettre::Message, String> {
    let html = html.ok_or_else(|| format!("no HTML of {period} in the archive"))?;
    let body = String::from_utf8_lossy(&html.content).into_owned();
    let title = body
        .split_once("<title>")
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map(|(t, _)| t.replace("&#x2014;", "—").replace("&amp;", "&"))
        .unwrap_or_else(|| format!("Report {period}"));
    let mut builder = lettre::Message::builder().from(from.clone()).subject(title);
    for t in to {
        builder = builder.to(t.parse().map_err(|e| format!("recipient '{t}': {e}"))?);
    }
    let mut parts = MultiPart::mixed().singlepart(
        SinglePart::builder()
            .header(ContentType::TEXT_HTML)
            .body(body),
    );
    if let Some(pdf) = pdf {
        parts = parts.singlepart(Attachment::new(format!("report-{period}.pdf")).body(
            pdf.content,
            ContentType::parse("application/pdf").map_err(|e| e.to_string())?,
        ));
    }
    if let Some(csv) = csv {
        parts = parts.singlepart(Attachment::new(format!("report-{period}.csv")).body(
            csv.content,
            ContentType::parse("text/csv; charset=utf-8").map_err(|e| e.to_string())?,
        ));
    }
    builder.multipart(parts).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{Time, Weekday};

    fn ams() -> TimeZone {
        TimeZone::get("Europe/Amsterdam").unwrap()
    }

    fn weekly() -> ReportSchedule {
        ReportSchedule {
            kind: ScheduleKind::Weekly,
            weekday: Weekday::Monday,
            day: 1,
            time: Time::constant(7, 0, 0, 0),
            formats: vec![ReportFormat::Html],
            email_to: vec![],
        }
    }

    #[test]
    fn a_week_is_due_on_the_monday_after_it_at_seven() {
        let w48 = sla::parse_period_label("2026-W48", &ams()).unwrap();
        assert_eq!(
            send_time(&weekly(), &w48, &ams()),
            "2026-11-30T07:00:00+01:00".parse::<Timestamp>().unwrap()
        );
        let before: Timestamp = "2026-11-30T06:59:00+01:00".parse().unwrap();
        assert_eq!(due(&weekly(), before, &ams()).label(), "2026-W47");
        let at: Timestamp = "2026-11-30T07:00:00+01:00".parse().unwrap();
        assert_eq!(due(&weekly(), at, &ams()).label(), "2026-W48");
    }

    #[test]
    fn a_month_is_due_on_its_configured_day_of_the_next_month() {
        let mut monthly = weekly();
        monthly.kind = ScheduleKind::Monthly;
        monthly.day = 2;
        let nov = sla::parse_period_label("2026-11", &ams()).unwrap();
        assert_eq!(
            send_time(&monthly, &nov, &ams()),
            "2026-12-02T07:00:00+01:00".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn failed_sends_back_off_up_to_an_hour() {
        assert_eq!(backoff(0), SignedDuration::from_mins(1));
        assert_eq!(backoff(3), SignedDuration::from_mins(8));
        assert_eq!(backoff(20), SignedDuration::from_hours(1));
    }
}
