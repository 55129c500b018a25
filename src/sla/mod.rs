//! Contract-grade SLA logic as pure code: calendars, periods, maintenance
//! windows, the check and service state machines, timelines, incidents,
//! accounting and error budgets. No I/O and no clocks: the live engine and
//! the batch recompute feed the same functions, so they agree exactly.
//!
//! Time is kept to the millisecond and every duration is a whole number of
//! milliseconds (`i64`); `docs/sla.md` says how each figure is counted.

pub mod accounting;
pub mod batch;
pub mod budget;
pub mod calendar;
pub mod check;
pub mod holidays;
pub mod incident;
pub mod maintenance;
pub mod period;
pub mod range;
pub mod service;
pub mod state;
pub mod status;
pub mod timeline;

/// Make room for one more element, exactly. Histories gain a point only
/// when a condition changes and are pruned, so growing them one point at a
/// time costs little, while the usual doubling would leave megabytes of
/// slack over 10,000 services.
pub(crate) fn reserve_one<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact(1);
    }
}

pub use accounting::{SlaFigures, account, account_in_calendar};
pub use batch::{Derivation, derive, derive_with_rules};
pub use budget::{
    BURN_RULES, BurnRates, BurnRule, BurnSeverity, BurnWindow, ErrorBudget, budget_ppm, burn_alert,
    burn_rate, burn_rates, error_budget, reaches,
};
pub use calendar::SlaCalendar;
pub use check::{CheckRules, CheckTracker, FirstFailure, FlapPolicy, ProbeResult};
pub use holidays::Holiday;
pub use incident::{Incident, IncidentChange};
pub use maintenance::{MaintenanceWindow, ServiceMaintenance};
pub use period::{
    Period, PeriodLabelError, SlaPeriod, calendar_day, parse_period_label, period_containing,
};
pub use range::{RangeSet, TimeRange};
pub use service::{ServiceTracker, ServiceUpdate};
pub use state::{CheckState, ServiceState};
pub use status::{SlaStatus, sla_status};
pub use timeline::{CheckCause, Segment, ServiceTransition, Timeline};
