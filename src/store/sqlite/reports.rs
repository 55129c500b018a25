//! Scheduled management reports in SQLite ([`ReportStore`]): `report_runs`
//! (one row per schedule and period, so a run is made exactly once, with
//! its e-mail state) and `report_archive` (the rendered files).

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, ms, ts};
use crate::store::{ArchivedReport, ArchivedReportInfo, ReportRunRecord, ReportStore, StoreError};

const RUN_COLUMNS: &str = "schedule, period, made_at, mail_status, attempts, next_attempt_at, \
                           last_error, sent_at";

fn run(r: &Row<'_>) -> rusqlite::Result<(ReportRunRecord, i64, Option<i64>, Option<i64>)> {
    Ok((
        ReportRunRecord {
            schedule: r.get(0)?,
            period: r.get(1)?,
            made_at: Timestamp::UNIX_EPOCH,
            mail_status: r.get(3)?,
            attempts: r.get(4)?,
            next_attempt_at: None,
            last_error: r.get(6)?,
            sent_at: None,
        },
        r.get(2)?,
        r.get(5)?,
        r.get(7)?,
    ))
}

fn finish(
    (mut rec, made, next, sent): (ReportRunRecord, i64, Option<i64>, Option<i64>),
) -> Result<ReportRunRecord, StoreError> {
    rec.made_at = ts(made)?;
    rec.next_attempt_at = next.map(ts).transpose()?;
    rec.sent_at = sent.map(ts).transpose()?;
    Ok(rec)
}

impl ReportStore for SqliteStore {
    fn report_run(
        &self,
        schedule: &str,
        period: &str,
    ) -> Result<Option<ReportRunRecord>, StoreError> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM report_runs WHERE schedule = ?1 AND period = ?2"
            ))?
            .query_row(params![schedule, period], run)
            .optional()?
            .map(finish)
            .transpose()
        })
    }

    fn record_report_run(
        &self,
        r: &ReportRunRecord,
        files: &[ArchivedReport],
    ) -> Result<bool, StoreError> {
        self.write(|tx, _| {
            let added = tx.execute(
                &format!(
                    "INSERT OR IGNORE INTO report_runs ({RUN_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params![
                    r.schedule,
                    r.period,
                    ms(r.made_at),
                    r.mail_status,
                    r.attempts,
                    r.next_attempt_at.map(ms),
                    r.last_error,
                    r.sent_at.map(ms),
                ],
            )?;
            if added == 0 {
                return Ok(false);
            }
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO report_archive (period, format, lang, created_at, content)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for f in files {
                put.execute(params![
                    f.period,
                    f.format,
                    f.lang,
                    ms(f.created_at),
                    f.content
                ])?;
            }
            Ok(true)
        })
    }

    fn report_mails_due(&self, now: Timestamp) -> Result<Vec<ReportRunRecord>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM report_runs
                 WHERE mail_status = 'pending' AND coalesce(next_attempt_at, 0) <= ?1
                 ORDER BY made_at"
            ))?;
            let rows = stmt.query_map([ms(now)], run)?;
            rows.map(|r| finish(r?)).collect()
        })
    }

    fn report_mail_attempted(
        &self,
        schedule: &str,
        period: &str,
        at: Timestamp,
        outcome: Result<(), (&str, Timestamp)>,
    ) -> Result<(), StoreError> {
        self.write(|tx, _| {
            match outcome {
                Ok(()) => tx.execute(
                    "UPDATE report_runs SET mail_status = 'sent', attempts = attempts + 1,
                     sent_at = ?3, next_attempt_at = NULL, last_error = NULL
                     WHERE schedule = ?1 AND period = ?2",
                    params![schedule, period, ms(at)],
                )?,
                Err((error, next)) => tx.execute(
                    "UPDATE report_runs SET attempts = attempts + 1, last_error = ?3,
                     next_attempt_at = ?4 WHERE schedule = ?1 AND period = ?2",
                    params![schedule, period, error, ms(next)],
                )?,
            };
            Ok(())
        })
    }

    fn archived_reports(&self) -> Result<Vec<ArchivedReportInfo>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT period, format, lang, created_at, length(content) FROM report_archive
                 ORDER BY created_at DESC, period DESC, format",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?;
            rows.map(|r| {
                let (period, format, lang, created, bytes) = r?;
                Ok(ArchivedReportInfo {
                    period,
                    format,
                    lang,
                    created_at: ts(created)?,
                    bytes: bytes.max(0) as u64,
                })
            })
            .collect()
        })
    }

    fn archived_report(
        &self,
        period: &str,
        format: &str,
    ) -> Result<Option<ArchivedReport>, StoreError> {
        self.read(|c| {
            let row = c
                .prepare_cached(
                    "SELECT lang, created_at, content FROM report_archive
                     WHERE period = ?1 AND format = ?2",
                )?
                .query_row(params![period, format], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                })
                .optional()?;
            row.map(|(lang, created, content)| {
                Ok(ArchivedReport {
                    period: period.to_string(),
                    format: format.to_string(),
                    lang,
                    created_at: ts(created)?,
                    content,
                })
            })
            .transpose()
        })
    }
}
