//! Names of the series Prometheus records from the daemon's metrics, with
//! the rule file `continuity rules` generates (`src/rules/`). Dashboards and
//! the generated alerts query these names, so they are declared here beside
//! the metrics they come from, in the `level:metric:operations` convention
//! of the Prometheus documentation. `docs/metrics.md` ("Recording rules")
//! lists the same.

use super::BURN_WINDOWS;

/// Good / eligible SLA time over a window, per location, service and SLA
/// (labels `location`, `service`, `sla`, `category`, `supplier`).
pub const AVAILABILITY_PREFIX: &str = "service:continuity_sla_availability:ratio_rate";
/// `(1 − availability) / (1 − objective)` over a window: 1 spends the
/// budget exactly over the period (same labels as the availability).
pub const BURN_RATE_PREFIX: &str = "service:continuity_sla_burn_rate:ratio_rate";
/// How many locations see a service down right now (labels `service`,
/// `category`, `supplier`); a location whose own network is degraded (every
/// canary fails) is not counted.
pub const DOWN_LOCATIONS: &str = "service:continuity_service_down_locations:count";

/// `service:continuity_sla_availability:ratio_rate<window>`.
pub fn availability(window: &str) -> String {
    format!("{AVAILABILITY_PREFIX}{window}")
}

/// `service:continuity_sla_burn_rate:ratio_rate<window>`.
pub fn burn_rate(window: &str) -> String {
    format!("{BURN_RATE_PREFIX}{window}")
}

/// Every recorded series name, in the order the rule file records them.
pub fn all() -> Vec<String> {
    let mut names: Vec<String> = BURN_WINDOWS.iter().map(|w| availability(w)).collect();
    names.extend(BURN_WINDOWS.iter().map(|w| burn_rate(w)));
    names.push(DOWN_LOCATIONS.to_string());
    names
}
