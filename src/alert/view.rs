//! What the alert rules look at: a snapshot of service, check and SLA state
//! that the engine builds on each tick, including its verdict on the
//! monitor's own network. The rules only read it; nothing flows back.

use std::borrow::Cow;
use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::config::schedule::MaintenanceEffect;
use crate::sla::CheckState;

/// Everything the rules look at, built by the engine on each tick.
///
/// The view borrows its names from the configuration (`Cow::Borrowed`):
/// it lives for one evaluation, and at 10,000 services copying every name
/// each tick would cost megabytes of short-lived strings.
#[derive(Debug, Clone)]
pub struct AlertView<'a> {
    pub now: Timestamp,
    /// This monitor instance (`Config.location`); every alert carries it.
    pub location: Cow<'a, str>,
    /// `Config.server.external_url`, for links back to the status.
    pub external_url: Option<Cow<'a, str>>,
    /// The engine's verdict that every canary check is down, so the
    /// monitor's own network is the likely cause and service states are
    /// unreliable. Decided by the engine as results arrive (it blinds the
    /// state machines with it), never by the rules.
    pub network_degraded: bool,
    pub services: Vec<ServiceView<'a>>,
}

impl<'a> AlertView<'a> {
    /// The check `service/check`, if the view has it.
    pub fn check(&self, service: &str, check: &str) -> Option<&CheckView<'a>> {
        self.services
            .iter()
            .find(|s| s.id == service)
            .and_then(|s| s.checks.iter().find(|c| c.id == check))
    }
}

#[derive(Debug, Clone)]
pub struct ServiceView<'a> {
    pub id: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub category: Cow<'a, str>,
    pub supplier: Cow<'a, str>,
    pub runbook_url: Option<Cow<'a, str>>,
    /// The maintenance window covering the service now, if any.
    pub maintenance: Option<MaintenanceView<'a>>,
    pub checks: Vec<CheckView<'a>>,
    pub slas: Vec<SlaView<'a>>,
    /// Where the service stands in its supplier timeline; `None` for a
    /// service that does not move. Boxed: 150 bytes inline in every
    /// service's view, each tick, though few services move.
    pub migration: Option<Box<MigrationView<'a>>>,
}

/// A service's migration as the cutover rules need it: the phase, the
/// move it belongs to, and whether the service came up after the window.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationView<'a> {
    pub phase: crate::migration::Phase,
    pub from: Cow<'a, str>,
    pub to: Cow<'a, str>,
    /// The cutover's change ticket.
    pub reference: Cow<'a, str>,
    pub window_end: Timestamp,
    /// `window_end + cutover_grace`: the service must be up by then.
    pub grace_end: Timestamp,
    /// How long parity may fail during hypercare.
    pub parity_for: std::time::Duration,
    /// The first instant the service was up (or degraded) after the
    /// window's end; `None` while it has not been.
    pub up_after_window: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceView<'a> {
    /// The change ticket, e.g. `CHG-2026-0142`.
    pub reference: Cow<'a, str>,
    pub effect: MaintenanceEffect,
}

#[derive(Debug, Clone)]
pub struct CheckView<'a> {
    pub id: Cow<'a, str>,
    pub critical: bool,
    /// The confirmed state: after the failure and success thresholds, so
    /// one failed probe is not yet `Down`.
    pub state: CheckState,
    /// When the check went down, back-dated to the first failed probe of
    /// the spell and restored from the store after a restart; it becomes
    /// the alert's `startsAt`, so it must survive restarts.
    pub down_since: Option<Timestamp>,
    /// The typed failure reason of the last probe (`timeout`, `refused`, ...).
    pub reason: Option<Cow<'a, str>>,
    pub detail: Option<Cow<'a, str>>,
    /// Since when the check has been slower than its latency threshold
    /// (while up); `None` when it is not slow.
    pub slow_since: Option<Timestamp>,
    /// Earliest notAfter (Unix seconds) of the certificate chain it saw.
    pub cert_not_after: Option<i64>,
    /// When the check's parity went from match to mismatch (the new
    /// endpoint stopped behaving like its `compare_with` old one); `None`
    /// while matching or without `compare_with`.
    pub parity_failing_since: Option<Timestamp>,
    /// The old endpoint's last probe succeeded; `None` without
    /// `compare_with`.
    pub compare_up: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct SlaView<'a> {
    pub name: Cow<'a, str>,
    /// 0.998 for 99.8%.
    pub objective_ratio: f64,
    /// Over the period to date; `None` when no eligible time yet.
    pub availability: Option<f64>,
    pub budget_remaining_ratio: Option<f64>,
    /// Burn rate per window: keys `5m`, `30m`, `1h`, `2h`, `6h`, `1d`, `3d`.
    pub burn_rates: BTreeMap<Cow<'a, str>, f64>,
}
