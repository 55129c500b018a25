//! The `alerting:` section of the configuration: which Alertmanagers get
//! every alert, the thresholds the rules decide with, and the receivers
//! (webhook, Slack, Teams, e-mail) that get notifications through the
//! outbox. Secrets are resolved and matchers compiled when the file loads,
//! so a bad receiver never reaches run time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Location, Spanned};
use serde::{Deserialize, Deserializer};

use crate::config::{Dur, KnownNames, Secret, Validator, closest, expand};

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
    #[serde(default)]
    pub receivers: Vec<Spanned<ReceiverSpec>>,

    /// Parsed `canaries` (service, check), filled in by `validate`.
    #[serde(skip)]
    pub canary_checks: Vec<(String, String)>,
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
            receivers: Vec::new(),
            canary_checks: Vec::new(),
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

/// One destination for notifications, with the alerts it wants.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverSpec {
    pub name: Spanned<String>,
    /// Only alerts at least this severe (page > ticket > none).
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Label matchers, all of which must hold: `value` (equal), `=~regex`,
    /// `!=value` or `!~regex` (regexes match the whole value).
    #[serde(default)]
    pub matchers: BTreeMap<String, String>,
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    pub webhook: Option<WebhookSpec>,
    pub slack: Option<UrlSpec>,
    pub teams: Option<UrlSpec>,
    pub email: Option<EmailSpec>,

    /// Compiled `matchers`, filled in by `validate`.
    #[serde(skip)]
    pub compiled: Vec<LabelMatcher>,
}

fn default_min_severity() -> Severity {
    Severity::Ticket
}
fn default_true() -> bool {
    true
}

/// A webhook URL given inline (`url: ${SLACK_WEBHOOK}`) or in a file
/// (`url_file: /run/secrets/slack`), since the URL itself is the secret.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlSpec {
    pub url: Option<InlineSecret>,
    pub url_file: Option<Spanned<String>>,
    /// The resolved URL, filled in by `validate`.
    #[serde(skip)]
    pub resolved: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    pub url: Option<InlineSecret>,
    pub url_file: Option<Spanned<String>>,
    /// Extra request headers (e.g. `Authorization: Bearer ${TOKEN}`);
    /// values are treated as secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, InlineSecret>,
    #[serde(skip)]
    pub resolved: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587); refuses to send
    /// when the server does not offer it.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption; only for a relay on the same machine.
    None,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSpec {
    /// `host:port`, or `host` for the usual port of `tls`.
    pub smtp: Spanned<String>,
    #[serde(default)]
    pub tls: SmtpTls,
    /// PEM file of the CA that signed the server's certificate, when it is
    /// not publicly trusted (relative to the configuration file).
    pub ca_file: Option<Spanned<String>>,
    pub username: Option<String>,
    pub password: Option<InlineSecret>,
    pub password_file: Option<Spanned<String>>,
    pub from: Spanned<String>,
    pub to: Spanned<Vec<String>>,
    /// Put in front of every subject, e.g. `[continuity]`.
    #[serde(default)]
    pub subject_prefix: Option<String>,

    /// Filled in by `validate`.
    #[serde(skip)]
    pub host: String,
    #[serde(skip)]
    pub port: u16,
    #[serde(skip)]
    pub password_resolved: Option<Secret>,
    #[serde(skip)]
    pub ca_path: Option<PathBuf>,
}

/// The channel a receiver delivers through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Webhook,
    Slack,
    Teams,
    Email,
}

impl ReceiverSpec {
    pub fn channel(&self) -> Option<ChannelKind> {
        if self.webhook.is_some() {
            Some(ChannelKind::Webhook)
        } else if self.slack.is_some() {
            Some(ChannelKind::Slack)
        } else if self.teams.is_some() {
            Some(ChannelKind::Teams)
        } else if self.email.is_some() {
            Some(ChannelKind::Email)
        } else {
            None
        }
    }

    /// Whether this receiver wants an alert with these labels.
    pub fn wants(&self, severity: Severity, labels: &BTreeMap<String, String>) -> bool {
        severity >= self.min_severity && self.compiled.iter().all(|m| m.matches(labels))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// One compiled label matcher. A label the alert does not have matches as
/// the empty string, as in Alertmanager.
#[derive(Clone)]
pub struct LabelMatcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<regex::Regex>,
}

impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label && self.op == other.op && self.value == other.value
    }
}

impl fmt::Debug for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        write!(f, "{}{op}{:?}", self.label, self.value)
    }
}

impl LabelMatcher {
    /// Parse `value`, `=~regex`, `!=value` or `!~regex` for `label`.
    pub fn parse(label: &str, written: &str) -> Result<LabelMatcher, String> {
        let (op, value) = if let Some(r) = written.strip_prefix("=~") {
            (MatchOp::Regex, r)
        } else if let Some(r) = written.strip_prefix("!~") {
            (MatchOp::NotRegex, r)
        } else if let Some(r) = written.strip_prefix("!=") {
            (MatchOp::NotEqual, r)
        } else {
            (MatchOp::Equal, written)
        };
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(regex::Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                    // The regex crate explains over several lines; its last
                    // line says what is wrong.
                    let text = e.to_string();
                    let why = text.lines().last().unwrap_or("").trim().to_string();
                    let why = why.strip_prefix("error: ").unwrap_or(&why).to_string();
                    format!("matcher {label}: '{value}' is not a valid regex: {why}")
                })?)
            }
            _ => None,
        };
        Ok(LabelMatcher {
            label: label.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.label).map(String::as_str).unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(r)) => r.is_match(v),
            (MatchOp::NotRegex, Some(r)) => !r.is_match(v),
            // parse() always compiles a regex for the regex operators.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

/// Labels alerts carry; matchers on other labels can never match.
pub const ALERT_LABELS: [&str; 8] = [
    "alertname",
    "service",
    "category",
    "supplier",
    "severity",
    "location",
    "check",
    "sla",
];

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
        for r in &mut self.receivers {
            let r_at = r.referenced;
            let r = &mut r.value;
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
            validate_receiver(r, v, r_at, known, &base);
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

fn did_you_mean<'a>(word: &str, known: impl Iterator<Item = &'a str> + Clone) -> String {
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

fn url_ok(s: &str) -> bool {
    s.parse::<http::Uri>()
        .ok()
        .is_some_and(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
}

fn validate_receiver(
    r: &mut ReceiverSpec,
    v: &mut Validator,
    at: Location,
    known: &KnownNames,
    base: &Path,
) {
    let name = r.name.value.clone();
    let kinds = [
        r.webhook.is_some(),
        r.slack.is_some(),
        r.teams.is_some(),
        r.email.is_some(),
    ]
    .iter()
    .filter(|k| **k)
    .count();
    if kinds != 1 {
        v.error(
            at,
            format!("receiver '{name}' has {kinds} channel blocks"),
            Some("give each receiver exactly one of webhook, slack, teams or email".into()),
        );
    }

    r.compiled.clear();
    for (label, written) in &r.matchers {
        if !ALERT_LABELS.contains(&label.as_str()) {
            let hint = match closest(label, ALERT_LABELS) {
                Some(best) => format!("did you mean '{best}'?"),
                None => format!("alerts carry {}", ALERT_LABELS.join(", ")),
            };
            v.error(
                at,
                format!("receiver '{name}': matcher on unknown label '{label}'"),
                Some(hint),
            );
            continue;
        }
        match LabelMatcher::parse(label, written) {
            Ok(m) => {
                if m.op == MatchOp::Equal {
                    check_known_value(v, at, &name, &m, known);
                }
                r.compiled.push(m);
            }
            Err(e) => v.error(
                at,
                format!("receiver '{name}': {e}"),
                Some(
                    "regexes use Rust regex syntax and match the whole value, e.g. =~portal-.*"
                        .into(),
                ),
            ),
        }
    }

    let url = |spec_url: &Option<InlineSecret>,
               file: &Option<Spanned<String>>,
               what: &str,
               v: &mut Validator|
     -> Option<Secret> {
        let inline = spec_url.as_ref().map(|s| s.0.expose().to_string());
        let resolved = expand::secret("url", inline, file.as_ref(), base, v);
        match &resolved {
            None if spec_url.is_none() && file.is_none() => v.error(
                at,
                format!("receiver '{name}': {what} has no url"),
                Some("set url: ${WEBHOOK_URL} or url_file: /run/secrets/webhook-url".into()),
            ),
            Some(u) if !url_ok(u.expose()) => v.error(
                file.as_ref().map(|f| f.referenced).unwrap_or(at),
                // The URL is a secret: say what is wrong without it.
                format!("receiver '{name}': {what} url is not an http(s) URL"),
                Some("the url must start with https:// (or http://)".into()),
            ),
            _ => {}
        }
        resolved
    };
    if let Some(w) = &mut r.webhook {
        w.resolved = url(&w.url, &w.url_file, "webhook", v);
        for h in w.headers.keys() {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                v.error(
                    at,
                    format!("receiver '{name}': '{h}' is not a valid header name"),
                    None,
                );
            }
        }
        for (h, value) in &w.headers {
            if http::HeaderValue::from_str(value.0.expose()).is_err() {
                v.error(
                    at,
                    format!(
                        "receiver '{name}': the value of header '{h}' is not a valid header value"
                    ),
                    Some("header values are one line of visible ASCII".into()),
                );
            }
        }
    }
    if let Some(s) = &mut r.slack {
        s.resolved = url(&s.url, &s.url_file, "slack", v);
    }
    if let Some(t) = &mut r.teams {
        t.resolved = url(&t.url, &t.url_file, "teams", v);
    }
    if let Some(e) = &mut r.email {
        validate_email(e, v, &name, base);
    }
}

fn check_known_value(
    v: &mut Validator,
    at: Location,
    receiver: &str,
    m: &LabelMatcher,
    known: &KnownNames,
) {
    let set = match m.label.as_str() {
        "service" => &known.services,
        "category" => &known.categories,
        "supplier" => &known.suppliers,
        "severity" => {
            if Severity::parse(&m.value).is_none() {
                v.error(
                    at,
                    format!("receiver '{receiver}': severity '{}' does not exist", m.value),
                    Some("severities are page, ticket and none; min_severity is usually what you want".into()),
                );
            }
            return;
        }
        _ => return,
    };
    if !set.contains(m.value.as_str()) {
        v.error(
            at,
            format!(
                "receiver '{receiver}': no service has {} '{}', so the matcher never matches",
                m.label, m.value
            ),
            Some(did_you_mean(&m.value, set.iter().copied())),
        );
    }
}

fn validate_email(e: &mut EmailSpec, v: &mut Validator, receiver: &str, base: &Path) {
    let default_port = match e.tls {
        SmtpTls::Starttls => 587,
        SmtpTls::Tls => 465,
        SmtpTls::None => 25,
    };
    let written = e.smtp.value.trim();
    let (host, port) = match written.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') => match p.parse::<u16>() {
            Ok(p) if p > 0 => (h.trim_start_matches('[').trim_end_matches(']'), p),
            _ => {
                v.error(
                    e.smtp.referenced,
                    format!("receiver '{receiver}': smtp '{written}' has an invalid port"),
                    Some("write host:port, e.g. smtp.example.org:587".into()),
                );
                (h, default_port)
            }
        },
        _ => (written, default_port),
    };
    if host.is_empty() {
        v.error(
            e.smtp.referenced,
            format!("receiver '{receiver}': smtp has no host"),
            Some("write host:port, e.g. smtp.example.org:587".into()),
        );
    }
    e.host = host.to_string();
    e.port = port;

    let inline = e.password.as_ref().map(|s| s.0.expose().to_string());
    e.password_resolved = expand::secret("password", inline, e.password_file.as_ref(), base, v);
    if e.password_resolved.is_some() && e.username.is_none() {
        v.error(
            e.smtp.referenced,
            format!("receiver '{receiver}': a password is set without a username"),
            Some("add username:, or remove the password".into()),
        );
    }
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "::1");
    if e.tls == SmtpTls::None && e.username.is_some() && !loopback {
        v.error(
            e.smtp.referenced,
            format!("receiver '{receiver}': tls: none would send the SMTP password in clear text to {host}"),
            Some("use tls: starttls (port 587) or tls (port 465)".into()),
        );
    }
    e.ca_path = None;
    if let Some(ca) = &e.ca_file {
        let path = crate::probe::tls_util::config_relative(v.file(), &ca.value);
        match crate::probe::tls_util::load_ca_file(&path) {
            Ok(_) => e.ca_path = Some(path),
            Err(msg) => v.error(
                ca.referenced,
                format!("receiver '{receiver}': ca_file: {msg}"),
                Some("give a PEM file with the CA certificate(s) of the SMTP server".into()),
            ),
        }
        if e.tls == SmtpTls::None {
            v.error(
                ca.referenced,
                format!("receiver '{receiver}': ca_file is set but tls is none"),
                Some("use tls: starttls or tls, or remove ca_file".into()),
            );
        }
    }
    if e.from.value.parse::<lettre::message::Mailbox>().is_err() {
        v.error(
            e.from.referenced,
            format!(
                "receiver '{receiver}': from '{}' is not an e-mail address",
                e.from.value
            ),
            Some("e.g. from: \"continuity <continuity@example.org>\"".into()),
        );
    }
    if e.to.value.is_empty() {
        v.error(
            e.to.referenced,
            format!("receiver '{receiver}': to is empty"),
            Some("list at least one address, e.g. to: [oncall@example.org]".into()),
        );
    }
    for addr in &e.to.value {
        if addr.parse::<lettre::message::Mailbox>().is_err() {
            v.error(
                e.to.referenced,
                format!("receiver '{receiver}': to address '{addr}' is not an e-mail address"),
                Some("e.g. to: [oncall@example.org]".into()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn matchers_cover_equal_regex_and_negations() {
        let l = labels(&[("category", "telephony"), ("service", "portal-aanvraag")]);
        assert!(
            LabelMatcher::parse("category", "telephony")
                .unwrap()
                .matches(&l)
        );
        assert!(
            LabelMatcher::parse("service", "=~portal-.*")
                .unwrap()
                .matches(&l)
        );
        assert!(
            !LabelMatcher::parse("service", "=~portal")
                .unwrap()
                .matches(&l)
        );
        assert!(
            LabelMatcher::parse("service", "!~mail.*")
                .unwrap()
                .matches(&l)
        );
        assert!(
            !LabelMatcher::parse("category", "!=telephony")
                .unwrap()
                .matches(&l)
        );
        assert!(LabelMatcher::parse("check", "").unwrap().matches(&l));
    }

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
