//! The management report (weekly, monthly or any range): one model
//! ([`model::Report`], built by [`build::build`] from the SLA rows of
//! [`crate::report::sla_report`]) rendered as HTML, PDF, CSV, JSON or
//! Markdown ([`render`]), in Dutch or English. `continuity report` and the
//! daemon's scheduled reports both come through here.

pub mod build;
pub mod charts;
pub mod command;
pub mod csv;
pub mod html;
pub mod markdown;
pub mod model;
pub mod pdf;
pub mod schedule;
pub mod text;
pub mod view;

use std::path::Path;

pub use build::{build, last_complete_month, last_complete_week, time_zone};
pub use model::Report;

pub use crate::config::reports::ReportFormat;

/// A report that could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot render the report as HTML: {0}")]
    Html(#[from] askama::Error),
    #[error(transparent)]
    Pdf(#[from] pdf::PdfError),
}

/// `report` in `format`; `chromium` is `reports.chromium` (PDF only).
pub fn render(
    report: &Report,
    format: ReportFormat,
    chromium: Option<&Path>,
) -> Result<Vec<u8>, RenderError> {
    Ok(match format {
        ReportFormat::Html => html::render(report)?.into_bytes(),
        ReportFormat::Pdf => {
            let browser = pdf::find_chromium(chromium)?;
            pdf::html_to_pdf(&html::render(report)?, &browser)?
        }
        ReportFormat::Csv => csv::render(report).into_bytes(),
        ReportFormat::Json => json(report).into_bytes(),
        ReportFormat::Md => markdown::render(report).into_bytes(),
    })
}

/// The model as pretty JSON, ending with a newline.
pub fn json(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}
