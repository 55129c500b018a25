//! The management report as data: what every format (HTML, PDF, CSV,
//! JSON, Markdown) shows, built once by [`super::build`] from
//! [`crate::report::sla_report`] rows and serialized as it is for JSON
//! (documented field by field in docs/reports.md).
//!
//! Ratios are ratios (0.9982, not 99.82), durations are seconds, instants
//! are RFC 3339 in UTC; `null` means "no figure" (no eligible time, no
//! result), never zero.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::report::locale::Lang;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Version of this model; bumped when a field changes meaning.
    pub schema: u32,
    pub lang: Lang,
    pub period: ReportPeriod,
    pub generated_at: Timestamp,
    /// The monitor instance (`location`) that made the report.
    pub location: String,
    /// SHA-256 of the configuration the figures were counted with.
    pub config_digest: String,
    pub summary: Summary,
    /// One line per service and SLA.
    pub services: Vec<ServiceLine>,
    /// The service lines rolled up per supplier.
    pub suppliers: Vec<SupplierLine>,
    /// Every incident that overlaps the period, oldest first.
    pub incidents: Vec<IncidentLine>,
    /// Maintenance windows in the period, with the services they cover.
    pub maintenance: Vec<MaintenanceLine>,
    /// Certificates that expire within 30 days of the report's end;
    /// `None` when the report was made without the daemon's latest TLS
    /// results (the command line without a running daemon).
    pub certificates: Option<Vec<CertificateLine>>,
    /// Recomputations that changed figures of the period.
    pub recomputations: Vec<RecomputationLine>,
    /// Before and after a supplier move: every service that had cut over
    /// by the period's end, its baseline judged against hypercare and
    /// steady as of then (the figures of `continuity migration compare`).
    #[serde(default)]
    pub migrations: Vec<MigrationLine>,
    /// The days of the period (for periods up to 62 days), in order.
    pub days: Vec<Day>,
    /// The last twelve periods of the same kind, oldest first, this one last.
    pub trend: Vec<TrendPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportPeriod {
    /// `2026-W48`, `2026-11`, or `START/END` for a chosen range.
    pub label: String,
    /// `week`, `month` or `range`.
    pub kind: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// The IANA zone days and hours are read in.
    pub time_zone: String,
    /// First and last local day, `2026-11-23`.
    pub first_day: String,
    pub last_day: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Services with at least one SLA.
    pub services: usize,
    /// Services that met every SLA with eligible time.
    pub services_met: usize,
    /// Services that missed at least one SLA.
    pub services_missed: usize,
    /// Services without eligible time in the period.
    pub services_without_data: usize,
    /// `service` ids of those that missed, in report order.
    pub missed: Vec<String>,
    /// Good over eligible time, over every service line: the share of the
    /// time that counts in which citizens were served.
    pub availability: Option<f64>,
    pub eligible_seconds: f64,
    pub good_seconds: f64,
    pub down_seconds: f64,
    pub unknown_seconds: f64,
    pub excluded_maintenance_seconds: f64,
    pub incidents: usize,
    /// The same share the period before.
    pub previous_availability: Option<f64>,
    /// The mean of the four periods before this one that have a figure.
    pub four_period_average: Option<f64>,
    /// `availability − previous_availability` (a ratio; 0.001 = 0.1 point).
    pub change_vs_previous: Option<f64>,
    pub change_vs_average: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceLine {
    pub service: String,
    pub name: String,
    pub category: String,
    pub supplier: String,
    pub sla: String,
    /// Percent, e.g. 99.8.
    pub objective: f64,
    pub calendar: String,
    pub availability: Option<f64>,
    pub met: Option<bool>,
    pub eligible_seconds: f64,
    /// Down inside service hours (the calendar's opening time).
    pub down_seconds: f64,
    pub excluded_maintenance_seconds: f64,
    /// Change references of the excluding windows that covered it.
    pub maintenance_references: Vec<String>,
    /// Time without evidence (monitor gaps), inside service hours.
    pub unknown_seconds: f64,
    pub budget_remaining_ratio: Option<f64>,
    pub incidents: usize,
    pub longest_incident_seconds: Option<f64>,
    /// Mean duration of the incidents that ended.
    pub mttr_seconds: Option<f64>,
    /// 95th percentile of the successful probe durations of the service's
    /// checks in the period, in milliseconds (nearest rank).
    pub latency_p95_ms: Option<f64>,
    pub previous_availability: Option<f64>,
    pub change_vs_previous: Option<f64>,
    /// Availability per day of [`Report::days`].
    pub daily: Vec<Option<f64>>,
    /// Set when a recomputation produced these figures.
    pub recomputed: bool,
    /// For a service that cut over within the period (its combined row,
    /// `supplier: "*"`): the suppliers in the order they were responsible,
    /// e.g. `["in-house", "northhost"]`. Absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppliers: Vec<String>,
}

impl ServiceLine {
    /// The supplier as people read it: `in-house → northhost` (with
    /// `arrow` between) for a service that cut over within the period,
    /// else its one supplier.
    pub fn supplier_shown(&self, arrow: &str) -> String {
        if self.suppliers.is_empty() {
            self.supplier.clone()
        } else {
            self.suppliers.join(arrow)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupplierLine {
    pub supplier: String,
    /// Distinct services.
    pub services: usize,
    pub services_met: usize,
    pub services_missed: usize,
    pub availability: Option<f64>,
    pub eligible_seconds: f64,
    pub down_seconds: f64,
    pub excluded_maintenance_seconds: f64,
    pub unknown_seconds: f64,
    pub incidents: usize,
    pub longest_incident_seconds: Option<f64>,
    pub mttr_seconds: Option<f64>,
    pub previous_availability: Option<f64>,
    pub change_vs_previous: Option<f64>,
    pub daily: Vec<Option<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentLine {
    pub service: String,
    pub name: String,
    pub supplier: String,
    pub start: Timestamp,
    /// `None` while still open at the report's end.
    pub end: Option<Timestamp>,
    pub duration_seconds: f64,
    /// Whether any of it fell inside the service hours: the calendar of
    /// the service's first SLA.
    pub inside_service_hours: bool,
    /// The failing checks and their first failure.
    pub cause: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceLine {
    pub reference: String,
    pub description: Option<String>,
    pub start: Timestamp,
    pub end: Timestamp,
    /// `true`: excluded from SLAs; `false`: alerts muted only.
    pub excluded: bool,
    /// Ids of the services it covered.
    pub services: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateLine {
    pub service: String,
    pub check: String,
    pub not_after: Timestamp,
    pub days_left: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecomputationLine {
    pub id: i64,
    pub at: Timestamp,
    pub by: String,
    pub reason: String,
    pub from: Timestamp,
    pub to: Timestamp,
    /// Figures of this report's period (or overlapping it) that changed.
    pub changes: Vec<FigureChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureChange {
    pub service: String,
    pub sla: String,
    pub period: String,
    pub availability_before: Option<f64>,
    pub availability_after: Option<f64>,
    pub down_seconds_before: f64,
    pub down_seconds_after: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Day {
    /// Local date, `2026-11-23`.
    pub date: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Good over eligible time that day, over every service line.
    pub availability: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    pub label: String,
    pub start: Timestamp,
    pub availability: Option<f64>,
    pub services_met: usize,
    pub services_missed: usize,
}

/// One service's move to a new supplier, judged before against after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationLine {
    pub service: String,
    pub name: String,
    pub from: String,
    pub to: String,
    /// The cutover's change reference.
    pub reference: String,
    pub cutover_start: Timestamp,
    pub cutover_end: Timestamp,
    /// The baseline against `hypercare`, and against `steady` once it began.
    pub comparisons: Vec<PhaseVerdictLine>,
}

/// The baseline against one later phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseVerdictLine {
    /// `hypercare` or `steady`.
    pub phase: String,
    /// `better`, `same`, `worse` or `insufficient data`.
    pub overall: String,
    pub measures: Vec<MeasureLine>,
}

/// One measure judged: `availability` (ratio), `incidents_per_week`,
/// `mttr_seconds` or `latency` (p50, milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasureLine {
    pub measure: String,
    pub before: Option<f64>,
    pub after: Option<f64>,
    pub verdict: String,
    /// The test or margin that decided, with its figures.
    pub test: String,
    /// `latency` only: each critical check judged on its own (the
    /// measure's verdict combines them); absent in reports made before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::migration::compare::CheckLatencyVerdict>,
}
