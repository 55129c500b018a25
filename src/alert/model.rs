//! The alert model, in Alertmanager's terms: one [`Alert`] with its label
//! fingerprint, the [`AlertSet`] firing at one moment (what Alertmanager
//! is told), the [`AlertChange`]s receivers hear about, and the alert
//! names the rules use.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::Severity;

/// One alert, in Alertmanager's terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: Timestamp,
    #[serde(
        rename = "generatorURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub generator_url: Option<String>,
}

impl Alert {
    pub fn name(&self) -> &str {
        self.label("alertname")
    }

    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn severity(&self) -> Severity {
        Severity::parse(self.label("severity")).unwrap_or(Severity::None)
    }

    /// Identity of the alert: a hash of its label set, as Alertmanager
    /// identifies alerts.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.labels)
    }

    /// Identity of one incident of the alert (one spell of firing):
    /// fingerprint and start. Stable across restarts as long as `startsAt`
    /// comes from persisted state.
    pub fn incident_id(&self) -> String {
        format!("{}-{}", self.fingerprint(), self.starts_at.as_second())
    }
}

/// A fingerprint of the labels other than `severity`.
pub(super) fn without_severity(a: &Alert) -> String {
    hash_labels(a.labels.iter().filter(|(k, _)| *k != "severity"))
}

pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    hash_labels(labels.iter())
}

fn hash_labels<'a>(labels: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    let mut h = Sha256::new();
    for (k, v) in labels {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

/// The alerts firing at one moment, ordered by fingerprint.
///
/// The alerts are shared (`Arc`) between the rules, this set and the
/// dispatcher's copies of it: in a mass outage there are as many alerts as
/// checks, and each copy of them would cost megabytes every tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertSet {
    pub at: Option<Timestamp>,
    pub alerts: Vec<Arc<Alert>>,
}

impl AlertSet {
    pub fn get(&self, alertname: &str) -> Vec<&Alert> {
        self.alerts
            .iter()
            .filter(|a| a.name() == alertname)
            .map(|a| &**a)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }
}

/// A change receivers should hear about.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertChange {
    Firing(Alert),
    Resolved {
        alert: Alert,
        ended_at: Timestamp,
        /// Why it resolved when not by itself, e.g. `resolved: maintenance
        /// CHG-2026-0142 started`.
        note: Option<String>,
    },
}

impl AlertChange {
    pub fn alert(&self) -> &Alert {
        match self {
            AlertChange::Firing(a) => a,
            AlertChange::Resolved { alert, .. } => alert,
        }
    }

    pub fn is_firing(&self) -> bool {
        matches!(self, AlertChange::Firing(_))
    }
}

/// The `alertname` of every alert the rules raise.
pub mod names {
    pub const SERVICE_DOWN: &str = "ServiceDown";
    pub const SERVICE_DEGRADED: &str = "ServiceDegraded";
    pub const FAST_BURN: &str = "ErrorBudgetFastBurn";
    pub const SLOW_BURN: &str = "ErrorBudgetSlowBurn";
    pub const SLA_BREACHED: &str = "SLABreached";
    pub const CERTIFICATE_EXPIRING: &str = "CertificateExpiring";
    pub const WATCHDOG: &str = "Watchdog";
    pub const NETWORK_DEGRADED: &str = "MonitorNetworkDegraded";
    pub const CUTOVER_OVERRUN: &str = "CutoverOverrun";
    pub const NEW_SUPPLIER_REGRESSION: &str = "NewSupplierRegression";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_depends_on_labels_only() {
        let mut l = BTreeMap::new();
        l.insert("alertname".to_string(), "ServiceDown".to_string());
        l.insert("service".to_string(), "portal".to_string());
        let a = fingerprint(&l);
        l.insert("check".to_string(), "home".to_string());
        assert_ne!(a, fingerprint(&l));
        assert_eq!(a.len(), 16);
    }
}
