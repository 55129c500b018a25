//! Error budgets and burn rates of an SLA, and the multi-window burn-rate
//! alert rule (page on 14.4× over 1 h and 5 m, or 6× over 6 h and 30 m;
//! ticket on 3× over 1 d and 2 h, or 1× over 3 d and 6 h).
//!
//! The objective is taken to four decimals (0.0001 %) and the budget is
//! kept as parts per million, so allowed downtime is exact integer
//! arithmetic: 99.5 % of 126 000 s allows exactly 630 s.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::accounting::{SlaFigures, account};
use super::calendar::SlaCalendar;
use super::range::{RangeSet, TimeRange, from_ms, ms};
use super::timeline::Segment;

const PPM: i64 = 1_000_000;

/// The error budget as a share of eligible time, in parts per million:
/// 99.5 % → 5 000. Clamped to 0..=1 000 000.
pub fn budget_ppm(objective_percent: f64) -> i64 {
    let ppm = ((100.0 - objective_percent) * 10_000.0).round();
    if ppm.is_nan() {
        0
    } else {
        (ppm as i64).clamp(0, PPM)
    }
}

/// Where an SLA stands within one period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ErrorBudget {
    pub period: TimeRange,
    /// The whole period's opening time minus the excluding maintenance
    /// planned in it (ms).
    pub planned: i64,
    /// `planned × (1 − objective)`, rounded down to the millisecond.
    pub allowed: i64,
    /// Down time from the period's start to now.
    pub used: i64,
    /// `allowed − used`; negative once overspent.
    pub remaining: i64,
    /// `remaining / allowed` (below 0 once overspent); `None` when nothing
    /// is allowed (100 % objective, or no opening time).
    pub remaining_ratio: Option<f64>,
    /// The figures from the period's start to now.
    pub to_date: SlaFigures,
}

/// The budget of `period` as of `now` (clamped into the period).
pub fn error_budget(
    objective_percent: f64,
    period: TimeRange,
    now: Timestamp,
    segments: &[Segment],
    calendar: &SlaCalendar,
    excluded: &RangeSet,
) -> ErrorBudget {
    let open = calendar.open_ranges(period);
    let planned = open.subtract(excluded).total_ms();
    let allowed = i64::try_from(
        i128::from(planned) * i128::from(budget_ppm(objective_percent)) / i128::from(PPM),
    )
    .unwrap_or(i64::MAX);
    let now = now.clamp(period.start, period.end);
    let to_date = account(segments, TimeRange::new(period.start, now), &open, excluded);
    let used = to_date.down;
    let remaining = allowed - used;
    ErrorBudget {
        period,
        planned,
        allowed,
        used,
        remaining,
        remaining_ratio: (allowed > 0).then(|| remaining as f64 / allowed as f64),
        to_date,
    }
}

/// The windows burn rates are measured over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum BurnWindow {
    M5,
    M30,
    H1,
    H2,
    H6,
    D1,
    D3,
}

impl BurnWindow {
    pub const ALL: [BurnWindow; 7] = [
        BurnWindow::M5,
        BurnWindow::M30,
        BurnWindow::H1,
        BurnWindow::H2,
        BurnWindow::H6,
        BurnWindow::D1,
        BurnWindow::D3,
    ];

    /// The `window` label of `continuity_sla_burn_rate`.
    pub fn label(self) -> &'static str {
        match self {
            BurnWindow::M5 => "5m",
            BurnWindow::M30 => "30m",
            BurnWindow::H1 => "1h",
            BurnWindow::H2 => "2h",
            BurnWindow::H6 => "6h",
            BurnWindow::D1 => "1d",
            BurnWindow::D3 => "3d",
        }
    }

    pub fn length(self) -> SignedDuration {
        SignedDuration::from_mins(match self {
            BurnWindow::M5 => 5,
            BurnWindow::M30 => 30,
            BurnWindow::H1 => 60,
            BurnWindow::H2 => 120,
            BurnWindow::H6 => 360,
            BurnWindow::D1 => 1440,
            BurnWindow::D3 => 4320,
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One burn rate per window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BurnRates([f64; 7]);

impl BurnRates {
    pub fn from_rates(rates: [f64; 7]) -> BurnRates {
        BurnRates(rates)
    }

    pub fn get(&self, window: BurnWindow) -> f64 {
        self.0[window.index()]
    }

    pub fn iter(&self) -> impl Iterator<Item = (BurnWindow, f64)> + '_ {
        BurnWindow::ALL.into_iter().map(|w| (w, self.get(w)))
    }
}

/// How fast down time spends the budget: `(down / eligible) / (1 −
/// objective)`, over eligible time only. `0` when the window has no
/// eligible time; `+∞` when the objective is 100 % and anything was down.
pub fn burn_rate(figures: &SlaFigures, objective_percent: f64) -> f64 {
    let ppm = budget_ppm(objective_percent);
    if figures.eligible == 0 || figures.down == 0 {
        0.0
    } else if ppm == 0 {
        f64::INFINITY
    } else {
        (figures.down as f64 * PPM as f64) / (figures.eligible as f64 * ppm as f64)
    }
}

/// Burn rates over each window ending at `now`.
pub fn burn_rates(
    objective_percent: f64,
    now: Timestamp,
    segments: &[Segment],
    calendar: &SlaCalendar,
    excluded: &RangeSet,
) -> BurnRates {
    let longest = BurnWindow::D3.length().as_millis() as i64;
    let open = calendar.open_ranges(TimeRange::new(from_ms(ms(now) - longest), now));
    let mut rates = [0.0; 7];
    for w in BurnWindow::ALL {
        let range = TimeRange::new(from_ms(ms(now) - w.length().as_millis() as i64), now);
        rates[w.index()] = burn_rate(
            &account(segments, range, &open, excluded),
            objective_percent,
        );
    }
    BurnRates(rates)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BurnSeverity {
    Ticket,
    Page,
}

/// Fires when both windows burn faster than `factor` (strictly).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BurnRule {
    pub severity: BurnSeverity,
    pub long: BurnWindow,
    pub short: BurnWindow,
    pub factor: f64,
}

/// The multi-window, multi-burn-rate rules of the Google SRE workbook.
pub const BURN_RULES: [BurnRule; 4] = [
    BurnRule {
        severity: BurnSeverity::Page,
        long: BurnWindow::H1,
        short: BurnWindow::M5,
        factor: 14.4,
    },
    BurnRule {
        severity: BurnSeverity::Page,
        long: BurnWindow::H6,
        short: BurnWindow::M30,
        factor: 6.0,
    },
    BurnRule {
        severity: BurnSeverity::Ticket,
        long: BurnWindow::D1,
        short: BurnWindow::H2,
        factor: 3.0,
    },
    BurnRule {
        severity: BurnSeverity::Ticket,
        long: BurnWindow::D3,
        short: BurnWindow::H6,
        factor: 1.0,
    },
];

/// Whether a window's burn rate reaches a rule's factor: the one
/// comparison behind the status, the daemon's alerts and the generated
/// Prometheus rules (`>=` there), so all three fire at the same figure
/// (docs/sla.md, "Burn rates and alerts").
pub fn reaches(rate: f64, factor: f64) -> bool {
    rate >= factor
}

/// The most severe rule that fires, if any.
pub fn burn_alert(rates: &BurnRates, rules: &[BurnRule]) -> Option<BurnSeverity> {
    rules
        .iter()
        .filter(|r| reaches(rates.get(r.long), r.factor) && reaches(rates.get(r.short), r.factor))
        .map(|r| r.severity)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::range::tests::{r, ts};
    use crate::sla::state::ServiceState::{self, Down, Up};

    fn now() -> Timestamp {
        ts("2026-11-20T12:00:00Z")
    }

    fn ago(mins: i64) -> Timestamp {
        now() - SignedDuration::from_mins(mins)
    }

    /// Up for four days, with `down` spells given as (from, to) minutes ago.
    fn history(down: &[(i64, i64)]) -> Vec<Segment> {
        let mut out = Vec::new();
        let mut t = ago(4 * 1440);
        for &(a, b) in down {
            out.push(seg(t, ago(a), Up));
            out.push(seg(ago(a), ago(b), Down));
            t = ago(b);
        }
        out.push(seg(t, now(), Up));
        out
    }

    fn seg(start: Timestamp, end: Timestamp, state: ServiceState) -> Segment {
        Segment { start, end, state }
    }

    fn rates(down: &[(i64, i64)]) -> BurnRates {
        burn_rates(
            99.0,
            now(),
            &history(down),
            &SlaCalendar::always(),
            &RangeSet::new(),
        )
    }

    #[test]
    fn objective_is_exact_to_four_decimals() {
        assert_eq!(budget_ppm(99.5), 5_000);
        assert_eq!(budget_ppm(99.9), 1_000);
        assert_eq!(budget_ppm(99.95), 500);
        assert_eq!(budget_ppm(99.8), 2_000);
        assert_eq!(budget_ppm(100.0), 0);
        assert_eq!(budget_ppm(f64::NAN), 0);
    }

    #[test]
    fn budget_allows_the_objective_share_of_planned_time() {
        let period = r("2026-11-16T00:00:00Z", "2026-11-23T00:00:00Z");
        let excluded = RangeSet::from_ranges([r("2026-11-16T00:00:00Z", "2026-11-16T01:00:00Z")]);
        let segments = [
            seg(period.start, ts("2026-11-17T00:00:00Z"), Up),
            seg(ts("2026-11-17T00:00:00Z"), ts("2026-11-17T00:10:00Z"), Down),
            seg(ts("2026-11-17T00:10:00Z"), ts("2026-11-18T00:00:00Z"), Up),
        ];
        let b = error_budget(
            99.5,
            period,
            ts("2026-11-18T00:00:00Z"),
            &segments,
            &SlaCalendar::always(),
            &excluded,
        );
        assert_eq!(b.planned, 167 * 3_600_000);
        assert_eq!(b.allowed, 3_006_000); // 0.5 % of 167 h = 50 min 6 s
        assert_eq!(b.used, 600_000);
        assert_eq!(b.remaining, 2_406_000);
        assert_eq!(b.remaining_ratio, Some(2_406_000.0 / 3_006_000.0));
        assert_eq!(b.to_date.total, 48 * 3_600_000);
    }

    #[test]
    fn hundred_percent_objective_has_no_ratio_and_infinite_burn() {
        let period = r("2026-11-16T00:00:00Z", "2026-11-17T00:00:00Z");
        let segments = [seg(period.start, period.end, Down)];
        let b = error_budget(
            100.0,
            period,
            period.end,
            &segments,
            &SlaCalendar::always(),
            &RangeSet::new(),
        );
        assert_eq!((b.allowed, b.remaining_ratio), (0, None));
        assert_eq!(burn_rate(&b.to_date, 100.0), f64::INFINITY);
    }

    #[test]
    fn burn_rate_is_zero_without_eligible_time() {
        let f = SlaFigures {
            unknown: 1000,
            total: 1000,
            ..SlaFigures::default()
        };
        assert_eq!(burn_rate(&f, 99.9), 0.0);
    }

    #[test]
    fn down_time_that_ended_exactly_at_a_window_start_does_not_burn_it() {
        // Down from 10 to 5 minutes ago: nothing of it is in the last 5 m.
        let r = rates(&[(10, 5)]);
        assert_eq!(r.get(BurnWindow::M5), 0.0);
        // 5 of 30 minutes down at a 1 % budget: (1/6) / 0.01.
        assert!((r.get(BurnWindow::M30) - 100.0 / 6.0).abs() < 1e-9);
        // One second more reaches into the 5 m window: (1/300) / 0.01.
        let down_until = now() - SignedDuration::from_secs(299);
        let mut h = history(&[]);
        h = vec![
            seg(h[0].start, ago(10), Up),
            seg(ago(10), down_until, Down),
            seg(down_until, now(), Up),
        ];
        let r = burn_rates(99.0, now(), &h, &SlaCalendar::always(), &RangeSet::new());
        assert!((r.get(BurnWindow::M5) - 100.0 / 300.0).abs() < 1e-9);
    }

    #[test]
    fn each_window_sees_exactly_its_own_length() {
        // Down for the minute just inside each window's start.
        for w in BurnWindow::ALL {
            let mins = w.length().as_mins();
            let r = rates(&[(mins, mins - 1)]);
            let want = (1.0 / mins as f64) / 0.01;
            assert!((r.get(w) - want).abs() < 1e-9, "{} {}", w.label(), r.get(w));
            // And the minute just outside it does not count.
            let r = rates(&[(mins + 1, mins)]);
            assert_eq!(r.get(w), 0.0, "{}", w.label());
        }
    }

    #[test]
    fn fast_burn_pages_when_both_windows_exceed_the_factor() {
        // Last 10 minutes down: 1 h = 16.7×, 5 m = 100×.
        assert_eq!(
            burn_alert(&rates(&[(10, 0)]), &BURN_RULES),
            Some(BurnSeverity::Page)
        );
        // The same 10 minutes ending 5 minutes ago: the 5 m window is clean,
        // and 6 h (2.8×) is too slow for the second page rule.
        assert_eq!(burn_alert(&rates(&[(15, 5)]), &BURN_RULES), None);
    }

    #[test]
    fn sustained_burn_pages_through_the_six_hour_rule() {
        // 25 minutes down ending 6 minutes ago: 1 h = 41.7× but 5 m = 0,
        // so rule one is silent; 6 h = 6.9× and 30 m = 80× → page.
        assert_eq!(
            burn_alert(&rates(&[(31, 6)]), &BURN_RULES),
            Some(BurnSeverity::Page)
        );
        // 21 minutes: 6 h = 5.8× stays under 6×.
        assert_eq!(burn_alert(&rates(&[(27, 6)]), &BURN_RULES), None);
    }

    #[test]
    fn slow_burn_opens_a_ticket() {
        // 50 minutes two days ago and 4 minutes three hours ago:
        // 3 d = 1.25×, 6 h = 1.11× → ticket; 1 d = 0.28×, 1 h = 0.
        let r = rates(&[(2 * 1440, 2 * 1440 - 50), (180, 176)]);
        assert!(r.get(BurnWindow::D3) > 1.0 && r.get(BurnWindow::H6) > 1.0);
        assert_eq!(burn_alert(&r, &BURN_RULES), Some(BurnSeverity::Ticket));
        // 45 minutes 1.5 h ago: 1 d = 3.125×, 2 h = 37.5× → ticket.
        // 1 h = 25× but 5 m = 0; 6 h = 12.5× but 30 m = 0: no page.
        assert_eq!(
            burn_alert(&rates(&[(90, 45)]), &BURN_RULES),
            Some(BurnSeverity::Ticket)
        );
    }

    #[test]
    fn a_rule_fires_when_both_windows_reach_the_factor_exactly() {
        let mut v = [0.0; 7];
        v[BurnWindow::H1.index()] = 14.39;
        v[BurnWindow::M5.index()] = 100.0;
        assert_eq!(burn_alert(&BurnRates::from_rates(v), &BURN_RULES), None);
        v[BurnWindow::H1.index()] = 14.4;
        assert_eq!(
            burn_alert(&BurnRates::from_rates(v), &BURN_RULES),
            Some(BurnSeverity::Page)
        );
        // The boundary of deploy/prometheus/tests/burn_days.yml: half the
        // time down against a 50 % objective is a burn of exactly 1.
        let mut t = [0.0; 7];
        t[BurnWindow::D3.index()] = 1.0;
        t[BurnWindow::H6.index()] = 0.99;
        assert_eq!(burn_alert(&BurnRates::from_rates(t), &BURN_RULES), None);
        t[BurnWindow::H6.index()] = (1.0 - 0.5) / (1.0 - 0.5);
        assert_eq!(
            burn_alert(&BurnRates::from_rates(t), &BURN_RULES),
            Some(BurnSeverity::Ticket)
        );
    }

    #[test]
    fn outside_business_hours_nothing_burns() {
        let mut spec = crate::config::CalendarSpec::always();
        spec.hours = [("mon-fri".to_string(), "08:00-17:00".to_string())].into();
        let mut v = crate::config::Validator::new("t.yaml".into());
        spec.validate(&mut v, crate::config::Location::UNKNOWN);
        let cal = SlaCalendar::new(&spec);
        // Friday 2026-11-20 22:00 local, down for the last 3 hours.
        let now = ts("2026-11-20T22:00:00+01:00");
        let segs = [
            seg(
                now - SignedDuration::from_hours(100),
                now - SignedDuration::from_hours(3),
                Up,
            ),
            seg(now - SignedDuration::from_hours(3), now, Down),
        ];
        let r = burn_rates(99.0, now, &segs, &cal, &RangeSet::new());
        for w in [
            BurnWindow::M5,
            BurnWindow::M30,
            BurnWindow::H1,
            BurnWindow::H2,
        ] {
            assert_eq!(r.get(w), 0.0, "{}", w.label());
        }
        // 6 h reaches 16:00-17:00: 1 h eligible, 0 down.
        assert_eq!(r.get(BurnWindow::H6), 0.0);
        // Down from 16:30 instead:
        let segs = [
            seg(
                now - SignedDuration::from_hours(100),
                ts("2026-11-20T16:30:00+01:00"),
                Up,
            ),
            seg(ts("2026-11-20T16:30:00+01:00"), now, Down),
        ];
        let r = burn_rates(99.0, now, &segs, &cal, &RangeSet::new());
        // 6 h window: 16:00-17:00 eligible, half of it down → 0.5 / 0.01.
        assert!((r.get(BurnWindow::H6) - 50.0).abs() < 1e-9);
    }
}
