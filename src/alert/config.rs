//! The `alerting:` section of the configuration: which Alertmanagers get
//! every alert, the thresholds the rules decide with, and the receivers
//! (webhook, Slack, Teams, e-mail) that get notifications through the
//! outbox. Secrets are resolved and matchers compiled when the file loads,
//! so a bad receiver never reaches run time.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Location, Spanned};
use serde::{Deserialize, Deserializer};

pub use super::receiver::{ALERT_LABELS, LabelMatcher, MatchOp, Receiver, ReceiverSpec};
use crate::config::{Dur, KnownNames, Secret, Validator, closest};

/// How urgent an alert is; receivers take alerts at or above their
/// `min_severity`. `page` wakes someone, `ticket` waits for office hours,
/// `none` is for machines (the Watchdog).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    None,
    Ticket,
    Page,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Ticket => "ticket",
            Severity::Page => "page",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "none" => Some(Severity::None),
            "ticket" => Some(Severity::Ticket),
            "page" => Some(Severity::Page),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secret written inline in the YAML (usually as `${ENV}`). Deserialized
/// straight into a [`Secret`] so that debug output of the configuration
/// never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct InlineSecret(pub Secret);

impl fmt::Debug for InlineSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for InlineSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(InlineSecret(Secret::new(String::deserialize(d)?)))
    }
}

/// The `alerting:` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingSpec {
    /// Every Alertmanager of the cluster, each addressed directly (never
    /// through a load balancer): each one gets every alert.
    #[serde(default)]
    pub alertmanagers: Vec<Spanned<String>>,
    /// How often firing alerts are re-sent to Alertmanager.
    #[serde(default = "default_resend")]
    pub resend_interval: Spanned<Dur>,
    /// How long a resolved alert keeps being re-sent to Alertmanager.
    #[serde(default = "default_resolved_resend")]
    pub resolved_resend_for: Spanned<Dur>,
    /// `service-id/check-id` of checks that should always be reachable;
    /// when all of them fail, the monitor's own network is the likely cause.
    #[serde(default)]
    pub canaries: Vec<Spanned<String>>,
    /// Severity of `MonitorNetworkDegraded`.
    #[serde(default = "default_canary_severity")]
    pub canary_severity: Severity,
    #[serde(default)]
    pub burn_rate: BurnRateSpec,
    #[serde(default)]
    pub certificate: CertificateSpec,
    /// How long a check must be degraded before `ServiceDegraded` fires.
    #[serde(default = "default_degraded_for")]
    pub degraded_for: Spanned<Dur>,
    #[serde(default)]
    pub flapping: FlappingSpec,
    /// How long the outbox keeps retrying a notification before it gives up.
    #[serde(default = "default_notification_ttl")]
    pub notification_ttl: Spanned<Dur>,
    /// The receivers as written; [`AlertingSpec::receivers`] has them
    /// checked and compiled.
    #[serde(default, rename = "receivers")]
    pub receiver_specs: Vec<Spanned<ReceiverSpec>>,

    /// Parsed `canaries` (service, check), filled in by `validate`.
    #[serde(skip)]
    pub canary_checks: Vec<(String, String)>,
    /// `receivers` compiled by `validate`: only valid ones, in order.
    #[serde(skip)]
    pub compiled_receivers: Vec<Receiver>,
}

fn default_resend() -> Spanned<Dur> {
    unspanned(Dur(Duration::from_secs(60)))
}
fn default_resolved_resend() -> Spanned<Dur> {
    unspanned(Dur(Duration::from_secs(15 * 60)))
}
fn default_canary_severity() -> Severity {
    Severity::Page
}
fn default_degraded_for() -> Spanned<Dur> {
    unspanned(Dur(Duration::from_secs(5 * 60)))
}
fn default_notification_ttl() -> Spanned<Dur> {
    unspanned(Dur(Duration::from_secs(24 * 3600)))
}

fn unspanned<T>(value: T) -> Spanned<T> {
    Spanned::new(value, Location::UNKNOWN)
}

impl Default for AlertingSpec {
    fn default() -> Self {
        AlertingSpec {
            alertmanagers: Vec::new(),
            resend_interval: default_resend(),
            resolved_resend_for: default_resolved_resend(),
            canaries: Vec::new(),
            canary_severity: default_canary_severity(),
            burn_rate: BurnRateSpec::default(),
            certificate: CertificateSpec::default(),
            degraded_for: default_degraded_for(),
            flapping: FlappingSpec::default(),
            notification_ttl: default_notification_ttl(),
            receiver_specs: Vec::new(),
            canary_checks: Vec::new(),
            compiled_receivers: Vec::new(),
        }
    }
}

/// Multiwindow, multi-burn-rate thresholds (Google SRE workbook, ch. 5):
/// an alert fires when both the long and the short window burn at least
/// `factor` times the sustainable rate.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnRateSpec {
    #[serde(default = "default_page_burns")]
    pub page: Vec<Spanned<BurnWindow>>,
    #[serde(default = "default_ticket_burns")]
    pub ticket: Vec<Spanned<BurnWindow>>,
}

impl Default for BurnRateSpec {
    fn default() -> Self {
        BurnRateSpec {
            page: default_page_burns(),
            ticket: default_ticket_burns(),
        }
    }
}

/// One pair of windows and the burn rate both must reach.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnWindow {
    pub factor: f64,
    pub long: Dur,
    pub short: Dur,
}

impl BurnWindow {
    pub fn new(factor: f64, long_secs: u64, short_secs: u64) -> BurnWindow {
        BurnWindow {
            factor,
            long: Dur(Duration::from_secs(long_secs)),
            short: Dur(Duration::from_secs(short_secs)),
        }
    }
}

const HOUR: u64 = 3600;
const DAY: u64 = 86400;

fn default_page_burns() -> Vec<Spanned<BurnWindow>> {
    vec![
        unspanned(BurnWindow::new(14.4, HOUR, 5 * 60)),
        unspanned(BurnWindow::new(6.0, 6 * HOUR, 30 * 60)),
    ]
}

fn default_ticket_burns() -> Vec<Spanned<BurnWindow>> {
    vec![
        unspanned(BurnWindow::new(3.0, DAY, 2 * HOUR)),
        unspanned(BurnWindow::new(1.0, 3 * DAY, 6 * HOUR)),
    ]
}

/// The windows the SLA engine computes burn rates over; a burn rule can
/// only use these.
pub const BURN_WINDOWS: [&str; 7] = crate::telemetry::BURN_WINDOWS;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateSpec {
    /// A ticket when the certificate expires in fewer days than this.
    #[serde(default = "default_ticket_days")]
    pub ticket_days: Spanned<u32>,
    /// A page when it expires in fewer days than this.
    #[serde(default = "default_page_days")]
    pub page_days: Spanned<u32>,
}

fn default_ticket_days() -> Spanned<u32> {
    unspanned(14)
}
fn default_page_days() -> Spanned<u32> {
    unspanned(3)
}

impl Default for CertificateSpec {
    fn default() -> Self {
        CertificateSpec {
            ticket_days: default_ticket_days(),
            page_days: default_page_days(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlappingSpec {
    /// A check that changes state more than this many times ...
    #[serde(default = "default_flap_changes")]
    pub changes: Spanned<u32>,
    /// ... within this window is flapping.
    #[serde(default = "default_flap_window")]
    pub window: Spanned<Dur>,
    /// At most one notification per alert per this long while flapping.
    #[serde(default = "default_flap_notify")]
    pub notify_every: Spanned<Dur>,
}

fn default_flap_changes() -> Spanned<u32> {
    unspanned(4)
}
fn default_flap_window() -> Spanned<Dur> {
    unspanned(Dur(Duration::from_secs(30 * 60)))
}
fn default_flap_notify() -> Spanned<Dur> {
    unspanned(Dur(Duration::from_secs(30 * 60)))
}

impl Default for FlappingSpec {
    fn default() -> Self {
        FlappingSpec {
            changes: default_flap_changes(),
            window: default_flap_window(),
            notify_every: default_flap_notify(),
        }
    }
}

impl AlertingSpec {
    pub fn resend_interval(&self) -> Duration {
        self.resend_interval.value.0
    }
    pub fn resolved_resend_for(&self) -> Duration {
        self.resolved_resend_for.value.0
    }
    pub fn degraded_for(&self) -> Duration {
        self.degraded_for.value.0
    }
    pub fn notification_ttl(&self) -> Duration {
        self.notification_ttl.value.0
    }

    /// The receivers, checked and compiled (empty before `validate`).
    pub fn receivers(&self) -> &[Receiver] {
        &self.compiled_receivers
    }

    /// Check every field, resolve secrets (files relative to the
    /// configuration file) and compile matchers.
    pub fn validate(&mut self, v: &mut Validator, at: Location, known: &KnownNames) {
        let base = Path::new(v.file().as_ref())
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));

        let mut seen_am = BTreeSet::new();
        for am in &self.alertmanagers {
            if !url_ok(&am.value) {
                v.error(
                    am.referenced,
                    format!("alertmanager '{}' is not an http(s) URL", am.value),
                    Some("write it like http://alertmanager-1.example.org:9093".into()),
                );
            } else if !seen_am.insert(am.value.trim_end_matches('/')) {
                v.error(
                    am.referenced,
                    format!("alertmanager '{}' is listed twice", am.value),
                    Some("list each Alertmanager of the cluster once".into()),
                );
            }
        }
        for (name, d) in [
            ("resend_interval", &self.resend_interval),
            ("resolved_resend_for", &self.resolved_resend_for),
            ("degraded_for", &self.degraded_for),
            ("notification_ttl", &self.notification_ttl),
        ] {
            if d.value.0.is_zero() && name != "degraded_for" {
                v.error(
                    loc(d.referenced, at),
                    format!("alerting.{name} must be longer than zero"),
                    Some(format!(
                        "remove it to use the default, or write e.g. {name}: 1m"
                    )),
                );
            }
        }
        // A notification nobody received within a week is history, not a
        // page; and an expiry beyond the last representable instant made
        // every notification expire at once (999999999d: nothing was sent).
        if self.notification_ttl.value.0 > Duration::from_secs(7 * 86_400) {
            v.error(
                loc(self.notification_ttl.referenced, at),
                format!(
                    "alerting.notification_ttl {} is longer than a week",
                    self.notification_ttl.value
                ),
                Some(
                    "it is how long a notification is retried; the default is 24h, at most 7d"
                        .into(),
                ),
            );
        }
        if self.resend_interval.value.0 > Duration::from_secs(3600) {
            v.error(
                loc(self.resend_interval.referenced, at),
                format!(
                    "alerting.resend_interval {} is longer than an hour",
                    self.resend_interval.value
                ),
                Some(
                    "Alertmanager resolves alerts that are not re-sent: keep it at about 1m".into(),
                ),
            );
        }
        if self.resend_interval.value.0 > Duration::ZERO
            && self.resend_interval.value.0 < Duration::from_secs(1)
        {
            v.error(
                loc(self.resend_interval.referenced, at),
                "alerting.resend_interval is shorter than a second",
                Some(
                    "Alertmanager needs no more than one update a minute: resend_interval: 1m"
                        .into(),
                ),
            );
        }

        self.canary_checks.clear();
        for c in &self.canaries {
            match c.value.split_once('/') {
                Some((service, check)) if !service.is_empty() && !check.is_empty() => {
                    if !known.services.contains(service) {
                        v.error(
                            c.referenced,
                            format!("canary '{}' names unknown service '{service}'", c.value),
                            Some(did_you_mean(service, known.services.iter().copied())),
                        );
                    }
                    self.canary_checks
                        .push((service.to_string(), check.to_string()));
                }
                _ => v.error(
                    c.referenced,
                    format!("canary '{}' is not service-id/check-id", c.value),
                    Some("name a check, e.g. monitor-canary/gateway".into()),
                ),
            }
        }

        self.validate_burns(v, at);
        let cert = &self.certificate;
        if cert.page_days.value > cert.ticket_days.value {
            v.error(
                loc(cert.page_days.referenced, at),
                format!(
                    "certificate.page_days ({}) is more than ticket_days ({})",
                    cert.page_days.value, cert.ticket_days.value
                ),
                Some("a page comes closer to expiry than a ticket: e.g. ticket_days: 14, page_days: 3".into()),
            );
        }
        let f = &self.flapping;
        if f.changes.value == 0 {
            v.error(
                loc(f.changes.referenced, at),
                "flapping.changes must be at least 1",
                Some("the default, 4, marks a check flapping after 5 changes in the window".into()),
            );
        }
        if f.window.value.0.is_zero() {
            v.error(
                loc(f.window.referenced, at),
                "flapping.window must be longer than zero",
                Some("e.g. window: 30m".into()),
            );
        }

        let mut names = BTreeSet::new();
        self.compiled_receivers.clear();
        for r in &self.receiver_specs {
            let r_at = r.referenced;
            let r = &r.value;
            if !names.insert(r.name.value.clone()) {
                v.error(
                    r.name.referenced,
                    format!("receiver '{}' is defined twice", r.name.value),
                    Some("give each receiver a unique name".into()),
                );
            }
            if r.name.value.trim().is_empty() {
                v.error(
                    r.name.referenced,
                    "receiver name is empty",
                    Some("e.g. name: oncall-mail".into()),
                );
            }
            if let Some(compiled) = r.compile(v, r_at, known, &base) {
                self.compiled_receivers.push(compiled);
            }
        }
    }

    fn validate_burns(&self, v: &mut Validator, at: Location) {
        for (severity, list) in [
            ("page", &self.burn_rate.page),
            ("ticket", &self.burn_rate.ticket),
        ] {
            for w in list {
                let place = loc(w.referenced, at);
                if !(w.value.factor > 0.0 && w.value.factor.is_finite()) {
                    v.error(
                        place,
                        format!(
                            "burn_rate.{severity}: factor {} must be a positive number",
                            w.value.factor
                        ),
                        Some("e.g. factor: 14.4 (spends 2% of a 30-day budget in an hour)".into()),
                    );
                }
                for (which, d) in [("long", w.value.long), ("short", w.value.short)] {
                    if window_key(d).is_none() {
                        v.error(
                            place,
                            format!("burn_rate.{severity}: {which} window {d} is not one the SLA engine computes"),
                            Some(format!("use one of {}", BURN_WINDOWS.join(", "))),
                        );
                    }
                }
                if w.value.short.0 >= w.value.long.0 {
                    v.error(
                        place,
                        format!(
                            "burn_rate.{severity}: short window {} is not shorter than long window {}",
                            w.value.short, w.value.long
                        ),
                        Some("the short window confirms the long one is still burning: e.g. long: 1h, short: 5m".into()),
                    );
                }
            }
        }
    }
}

/// The burn-rate key (`5m`, `1h`, `1d`, ...) for a window, when the SLA
/// engine computes it.
pub fn window_key(d: Dur) -> Option<&'static str> {
    let text = d.to_string();
    BURN_WINDOWS.iter().copied().find(|w| *w == text)
}

fn loc(spanned: Location, fallback: Location) -> Location {
    if spanned == Location::UNKNOWN {
        fallback
    } else {
        spanned
    }
}

pub(crate) fn did_you_mean<'a>(word: &str, known: impl Iterator<Item = &'a str> + Clone) -> String {
    match closest(word, known.clone()) {
        Some(best) => format!("did you mean '{best}'?"),
        None => {
            let list: Vec<&str> = known.take(8).collect();
            if list.is_empty() {
                "no services are configured".into()
            } else {
                format!("known: {}", list.join(", "))
            }
        }
    }
}

pub(crate) fn url_ok(s: &str) -> bool {
    s.parse::<http::Uri>()
        .ok()
        .is_some_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_windows_map_to_engine_keys() {
        assert_eq!(window_key(Dur(Duration::from_secs(3600))), Some("1h"));
        assert_eq!(window_key(Dur(Duration::from_secs(3 * 86400))), Some("3d"));
        assert_eq!(window_key(Dur(Duration::from_secs(600))), None);
    }

    #[test]
    fn severities_order_page_above_ticket_above_none() {
        assert!(Severity::Page > Severity::Ticket && Severity::Ticket > Severity::None);
    }

    #[test]
    fn inline_secrets_are_hidden_in_debug_output() {
        let s = InlineSecret(Secret::new("https://hooks.example.org/T000/secret"));
        assert_eq!(format!("{s:?}"), "***");
    }
}
