//! Reports read from the store: the SLA figures per service, SLA and period
//! that `continuity sla`, the API and the weekly management report share
//! ([`sla`]), and their rendering as a table, JSON or CSV ([`format`]).

pub mod daily;
pub mod format;
pub mod locale;
pub mod sla;
pub mod weekly;

pub use format::{OutputFormat, render};
pub use sla::{
    IncidentSummary, PeriodSelector, RecomputedNote, ReportError, SlaRow, adhoc_spec, sla_report,
    snapshot,
};
