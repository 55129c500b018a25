//! The states of checks and services, and the one rule that turns the
//! states of a service's checks into the state of the service.

use serde::{Deserialize, Serialize};

/// The confirmed state of one check, after its failure and success
/// thresholds (one failed probe is not yet `Down`). The one check state of
/// the crate: the state machines, the status board and the alert view use
/// it, and its words (`up`, `down`, `unknown`) are what the API shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    /// No confirmed verdict yet, or the last result has gone stale.
    Unknown,
    Up,
    Down,
}

impl CheckState {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckState::Unknown => "unknown",
            CheckState::Up => "up",
            CheckState::Down => "down",
        }
    }
}

/// The state of a service. Timelines and accounting only ever hold the
/// four measured states; `Maintenance` is a display state (see
/// [`ServiceState::shown`]).
/// Its words are the `state` of the status API and the `state` label of
/// `continuity_service_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    Up,
    /// Working, but a non-critical check is down or a check is slow.
    Degraded,
    /// A critical check is down.
    Down,
    /// Not known: no data yet, a critical check without a verdict, or the
    /// monitor was not running.
    Unknown,
    /// A maintenance window is open (for display and alerts only).
    Maintenance,
}

impl ServiceState {
    pub const MEASURED: [ServiceState; 4] = [
        ServiceState::Up,
        ServiceState::Degraded,
        ServiceState::Down,
        ServiceState::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Up => "up",
            ServiceState::Degraded => "degraded",
            ServiceState::Down => "down",
            ServiceState::Unknown => "unknown",
            ServiceState::Maintenance => "maintenance",
        }
    }

    pub fn parse(s: &str) -> Option<ServiceState> {
        [
            ServiceState::Up,
            ServiceState::Degraded,
            ServiceState::Down,
            ServiceState::Unknown,
            ServiceState::Maintenance,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Counts as available time in the SLA: up or degraded.
    pub fn is_good(self) -> bool {
        matches!(self, ServiceState::Up | ServiceState::Degraded)
    }

    /// What to show while a maintenance window (of either effect) is open.
    pub fn shown(self, in_maintenance: bool) -> ServiceState {
        if in_maintenance {
            ServiceState::Maintenance
        } else {
            self
        }
    }
}

/// What the service rule needs to know about one check at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckCondition {
    pub critical: bool,
    pub state: CheckState,
    /// The latest result was a success slower than the latency threshold.
    pub slow: bool,
}

impl CheckCondition {
    /// Whether this check is part of why the service is in `service`.
    pub fn explains(&self, service: ServiceState, no_critical_checks: bool) -> bool {
        match service {
            ServiceState::Down => self.critical && self.state == CheckState::Down,
            ServiceState::Unknown => {
                self.state == CheckState::Unknown && (self.critical || no_critical_checks)
            }
            ServiceState::Degraded => {
                (!self.critical && self.state == CheckState::Down)
                    || (self.state == CheckState::Up && self.slow)
            }
            ServiceState::Up | ServiceState::Maintenance => false,
        }
    }
}

/// The service state that follows from its checks:
///
/// 1. any critical check Down → `Down`;
/// 2. else any critical check Unknown → `Unknown` (a service is only Up
///    when every critical check is confirmed Up); a service without
///    critical checks is `Unknown` when all its checks are;
/// 3. else any non-critical check Down, or any Up check slow → `Degraded`;
/// 4. else `Up`. A non-critical check that is Unknown changes nothing.
pub fn service_state(checks: impl IntoIterator<Item = CheckCondition>) -> ServiceState {
    let (mut critical, mut critical_down, mut critical_unknown) = (false, false, false);
    let (mut known, mut degraded) = (false, false);
    for c in checks {
        critical |= c.critical;
        known |= c.state != CheckState::Unknown;
        match (c.critical, c.state) {
            (true, CheckState::Down) => critical_down = true,
            (true, CheckState::Unknown) => critical_unknown = true,
            (false, CheckState::Down) => degraded = true,
            (_, CheckState::Up) => degraded |= c.slow,
            (false, CheckState::Unknown) => {}
        }
    }
    if critical_down {
        ServiceState::Down
    } else if critical_unknown || (!critical && !known) {
        ServiceState::Unknown
    } else if degraded {
        ServiceState::Degraded
    } else {
        ServiceState::Up
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckState::{Down, Unknown, Up};

    fn c(critical: bool, state: CheckState, slow: bool) -> CheckCondition {
        CheckCondition {
            critical,
            state,
            slow,
        }
    }

    #[test]
    fn a_critical_check_down_makes_the_service_down_whatever_else() {
        let s = service_state([
            c(true, Down, false),
            c(true, Unknown, false),
            c(false, Down, false),
        ]);
        assert_eq!(s, ServiceState::Down);
    }

    #[test]
    fn an_unconfirmed_critical_check_makes_the_service_unknown() {
        assert_eq!(
            service_state([c(true, Up, false), c(true, Unknown, false)]),
            ServiceState::Unknown
        );
        assert_eq!(
            service_state([c(true, Unknown, false), c(false, Down, false)]),
            ServiceState::Unknown
        );
    }

    #[test]
    fn a_non_critical_check_down_only_degrades() {
        assert_eq!(
            service_state([c(true, Up, false), c(false, Down, false)]),
            ServiceState::Degraded
        );
    }

    #[test]
    fn a_slow_check_degrades_but_a_slow_unconfirmed_one_does_not() {
        assert_eq!(service_state([c(true, Up, true)]), ServiceState::Degraded);
        assert_eq!(
            service_state([c(true, Up, false), c(false, Up, true)]),
            ServiceState::Degraded
        );
        assert_eq!(
            service_state([c(true, Up, false), c(false, Unknown, true)]),
            ServiceState::Up
        );
    }

    #[test]
    fn a_non_critical_unknown_check_changes_nothing() {
        assert_eq!(
            service_state([c(true, Up, false), c(false, Unknown, false)]),
            ServiceState::Up
        );
    }

    #[test]
    fn without_critical_checks_the_service_is_known_once_any_check_is() {
        assert_eq!(
            service_state([c(false, Unknown, false), c(false, Unknown, false)]),
            ServiceState::Unknown
        );
        assert_eq!(
            service_state([c(false, Up, false), c(false, Unknown, false)]),
            ServiceState::Up
        );
        assert_eq!(
            service_state([c(false, Down, false), c(false, Down, false)]),
            ServiceState::Degraded
        );
        assert_eq!(service_state([]), ServiceState::Unknown);
    }

    #[test]
    fn maintenance_is_shown_over_any_measured_state() {
        assert_eq!(ServiceState::Down.shown(true), ServiceState::Maintenance);
        assert_eq!(ServiceState::Down.shown(false), ServiceState::Down);
        assert!(ServiceState::Degraded.is_good());
        assert!(!ServiceState::Unknown.is_good());
        assert_eq!(
            ServiceState::parse("degraded"),
            Some(ServiceState::Degraded)
        );
    }
}
