//! Where one SLA of one service stands now: its current period's figures
//! to date, error budget and burn rates, in one call, for the metrics, the
//! alerts and `/api/v1/sla`.

use jiff::Timestamp;
use serde::Serialize;

use super::accounting::SlaFigures;
use super::budget::{
    BURN_RULES, BurnRates, BurnSeverity, ErrorBudget, burn_alert, burn_rates, error_budget,
};
use super::calendar::SlaCalendar;
use super::period::{Period, period_containing};
use super::range::RangeSet;
use super::timeline::Segment;
use crate::config::SlaSpec;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlaStatus {
    pub sla: String,
    /// The period's label, e.g. `2026-W47`.
    pub period: String,
    /// From the period's start to now.
    pub figures: SlaFigures,
    pub budget: ErrorBudget,
    pub burn: BurnRates,
    /// The burn-rate alert that fires now, if any.
    pub alert: Option<BurnSeverity>,
}

/// `segments` must cover the current period and the three days before
/// `now` (for the longest burn window), up to `now`; `excluded` the
/// service's excluding maintenance over the whole period (planned windows
/// still to come reduce the budget base) and the last three days.
pub fn sla_status(
    spec: &SlaSpec,
    calendar: &SlaCalendar,
    segments: &[Segment],
    excluded: &RangeSet,
    now: Timestamp,
) -> SlaStatus {
    let period: Period = period_containing(spec.period, now, calendar.tz());
    let budget = error_budget(
        spec.objective,
        period.range,
        now,
        segments,
        calendar,
        excluded,
    );
    let burn = burn_rates(spec.objective, now, segments, calendar, excluded);
    SlaStatus {
        sla: spec.name.clone(),
        period: period.label(),
        figures: budget.to_date,
        budget,
        alert: burn_alert(&burn, &BURN_RULES),
        burn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schedule::SlaPeriod;
    use crate::sla::range::tests::ts;
    use crate::sla::state::ServiceState;
    use jiff::SignedDuration;

    #[test]
    fn status_covers_the_period_to_date_and_pages_on_a_fresh_outage() {
        let spec = SlaSpec {
            name: "portal-24x7".into(),
            objective: 99.9,
            period: SlaPeriod::Week,
            calendar: "24x7".into(),
        };
        let now = ts("2026-11-18T12:00:00+01:00");
        let outage = now - SignedDuration::from_mins(20);
        let segments = [
            Segment {
                start: ts("2026-11-10T00:00:00Z"),
                end: outage,
                state: ServiceState::Up,
            },
            Segment {
                start: outage,
                end: now,
                state: ServiceState::Down,
            },
        ];
        let cal = SlaCalendar::named("24x7", &Default::default());
        let s = sla_status(&spec, &cal, &segments, &RangeSet::new(), now);
        assert_eq!(s.period, "2026-W47");
        // Monday 00:00 to Wednesday 12:00 local.
        assert_eq!(s.figures.total, 60 * 3_600_000);
        assert_eq!(s.figures.down, 20 * 60_000);
        // 0.1 % of the whole week (168 h) = 604.8 s.
        assert_eq!(s.budget.allowed, 604_800);
        assert_eq!(s.alert, Some(BurnSeverity::Page));
    }
}
