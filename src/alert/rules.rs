//! Decides which alerts fire, from a snapshot of service, check and SLA
//! state that the engine hands over every few seconds. Pure logic: no I/O,
//! no clock of its own (time comes from the view), so every rule can be
//! tested on synthetic values.
//!
//! Two outputs per evaluation: the [`AlertSet`] firing now (what
//! Alertmanager is told, re-sent every minute), and the [`AlertChange`]s
//! since the last evaluation (what webhooks and e-mail get, rate-limited
//! for flapping checks).

use std::borrow::Borrow;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::{AlertingSpec, BurnWindow, Severity, window_key};
use crate::config::schedule::MaintenanceEffect;

// ------------------------------------------------------------------ input

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
    pub services: Vec<ServiceView<'a>>,
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceView<'a> {
    /// The change ticket, e.g. `CHG-2026-0142`.
    pub reference: Cow<'a, str>,
    pub effect: MaintenanceEffect,
}

/// The confirmed state of a check: after its failure and success
/// thresholds, so one failed probe is not yet `Down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    Up,
    Down,
    /// Not probed yet, or the monitor could not run the probe.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct CheckView<'a> {
    pub id: Cow<'a, str>,
    pub critical: bool,
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

// ----------------------------------------------------------------- output

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
fn without_severity(a: &Alert) -> String {
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

pub mod names {
    pub const SERVICE_DOWN: &str = "ServiceDown";
    pub const SERVICE_DEGRADED: &str = "ServiceDegraded";
    pub const FAST_BURN: &str = "ErrorBudgetFastBurn";
    pub const SLOW_BURN: &str = "ErrorBudgetSlowBurn";
    pub const SLA_BREACHED: &str = "SLABreached";
    pub const CERTIFICATE_EXPIRING: &str = "CertificateExpiring";
    pub const WATCHDOG: &str = "Watchdog";
    pub const NETWORK_DEGRADED: &str = "MonitorNetworkDegraded";
}

// ------------------------------------------------------------------ rules

/// Thresholds the rules decide with, taken from the `alerting:` section.
#[derive(Debug, Clone)]
struct Thresholds {
    page_burns: Vec<BurnWindow>,
    ticket_burns: Vec<BurnWindow>,
    cert_ticket_days: u32,
    cert_page_days: u32,
    degraded_for: Duration,
    flap_changes: u32,
    flap_window: Duration,
    flap_notify_every: Duration,
    canaries: Vec<(String, String)>,
    canary_severity: Severity,
}

impl Thresholds {
    fn from_spec(spec: &AlertingSpec) -> Thresholds {
        Thresholds {
            page_burns: spec
                .burn_rate
                .page
                .iter()
                .map(|w| w.value.clone())
                .collect(),
            ticket_burns: spec
                .burn_rate
                .ticket
                .iter()
                .map(|w| w.value.clone())
                .collect(),
            cert_ticket_days: spec.certificate.ticket_days.value,
            cert_page_days: spec.certificate.page_days.value,
            degraded_for: spec.degraded_for(),
            flap_changes: spec.flapping.changes.value,
            flap_window: spec.flapping.window.value.0,
            flap_notify_every: spec.flapping.notify_every.value.0,
            canaries: spec.canary_checks.clone(),
            canary_severity: spec.canary_severity,
        }
    }
}

/// State changes of one check within the flapping window.
#[derive(Debug, Default)]
struct FlapTrack {
    last: Option<CheckState>,
    changes: VecDeque<Timestamp>,
    /// The evaluation that last saw the check; older entries belong to
    /// checks a reload removed.
    seen: u64,
}

/// The flap table's key, (service, check), looked up as a pair of `&str`:
/// every check is looked up on every tick, and building two `String`s
/// per lookup would be most of the rules' work at 10,000 checks.
trait CheckKey {
    fn parts(&self) -> (&str, &str);
}

impl CheckKey for (String, String) {
    fn parts(&self) -> (&str, &str) {
        (&self.0, &self.1)
    }
}

impl CheckKey for (&str, &str) {
    fn parts(&self) -> (&str, &str) {
        *self
    }
}

// Hashes exactly as `(String, String)` does, which `Borrow` requires.
impl Hash for dyn CheckKey + '_ {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.parts().hash(h)
    }
}

impl PartialEq for dyn CheckKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn CheckKey + '_ {}

impl<'a> Borrow<dyn CheckKey + 'a> for (String, String) {
    fn borrow(&self) -> &(dyn CheckKey + 'a) {
        self
    }
}

/// What receivers were last told about an alert.
#[derive(Debug, Clone)]
struct Notified {
    firing: bool,
    at: Timestamp,
    /// What they were told, while it fires. A resolved entry only gates
    /// the next notification (its `at`), so it lets go of the alert: after
    /// a mass recovery these entries stay for `notify_every`.
    alert: Option<Arc<Alert>>,
}

/// The alert rules with the little memory they need between evaluations:
/// what fires, what receivers were told, and recent state changes.
#[derive(Debug)]
pub struct AlertRules {
    t: Thresholds,
    started: Option<Timestamp>,
    active: BTreeMap<String, Arc<Alert>>,
    notified: BTreeMap<String, Notified>,
    /// First time a condition without a persisted start was seen.
    first_seen: HashMap<String, Timestamp>,
    flaps: HashMap<(String, String), FlapTrack>,
    /// Counts evaluations, to sweep `flaps` without a set of the keys seen.
    evaluations: u64,
    /// Why a service's alerts are held back right now (maintenance, canary).
    suppressed: HashMap<String, String>,
    network_degraded: bool,
    pending: Vec<AlertChange>,
}

impl AlertRules {
    pub fn new(spec: &AlertingSpec) -> AlertRules {
        AlertRules {
            t: Thresholds::from_spec(spec),
            started: None,
            active: BTreeMap::new(),
            notified: BTreeMap::new(),
            first_seen: HashMap::new(),
            flaps: HashMap::new(),
            evaluations: 0,
            suppressed: HashMap::new(),
            network_degraded: false,
            pending: Vec::new(),
        }
    }

    /// Take new thresholds after a configuration reload; what fires and
    /// what receivers were told is kept.
    pub fn apply_config(&mut self, spec: &AlertingSpec) {
        self.t = Thresholds::from_spec(spec);
    }

    /// Whether the last evaluation found every canary failing: the monitor's
    /// own network is the likely cause, and service states are unreliable.
    pub fn network_degraded(&self) -> bool {
        self.network_degraded
    }

    /// Checks changing state too often right now, as (service, check).
    pub fn flapping_checks(&self) -> Vec<(String, String)> {
        let mut out: Vec<_> = self
            .flaps
            .iter()
            .filter(|(_, f)| f.changes.len() > self.t.flap_changes as usize)
            .map(|(k, _)| k.clone())
            .collect();
        out.sort();
        out
    }

    /// Evaluate every rule against the view; returns the alerts firing now.
    /// Changes for receivers accumulate until [`AlertRules::changes`].
    pub fn evaluate(&mut self, view: &AlertView) -> AlertSet {
        let now = view.now;
        let started = *self.started.get_or_insert(now);
        self.track_flapping(view);
        self.network_degraded = self.canaries_failing(view);

        let mut desired: BTreeMap<String, Arc<Alert>> = BTreeMap::new();
        let mut seen_conditions = BTreeSet::new();
        let mut fixed = vec![self.watchdog(view, started)];
        if self.network_degraded {
            fixed.push(self.network_alert(view));
        }
        for a in fixed {
            self.put(&mut desired, a);
        }
        self.suppressed.clear();
        for s in &view.services {
            if let Some(m) = &s.maintenance {
                self.suppressed.insert(
                    s.id.to_string(),
                    format!("resolved: maintenance {} started", m.reference),
                );
                continue;
            }
            if self.network_degraded {
                self.suppressed.insert(
                    s.id.to_string(),
                    "resolved: every canary check fails, so the monitor's own network is the likely cause (see MonitorNetworkDegraded)".to_string(),
                );
                continue;
            }
            for a in self.service_alerts(view, s, &mut seen_conditions) {
                self.put(&mut desired, a);
            }
        }
        self.first_seen.retain(|k, _| seen_conditions.contains(k));

        // A flapping check keeps its alerts firing until it settles, so a
        // check bouncing between up and down is one incident, not many.
        let mut checks: Option<BTreeSet<(&str, &str)>> = None;
        for (fp, old) in &self.active {
            if desired.contains_key(fp) || !self.is_flapping(old) {
                continue;
            }
            let service = old.label("service");
            if self.suppressed.contains_key(service) {
                continue;
            }
            // Built once, and only when some alert needs it: at 10,000
            // checks recovering together, a scan of the view per alert
            // would be 100 million comparisons.
            let checks = checks.get_or_insert_with(|| {
                view.services
                    .iter()
                    .flat_map(|s| s.checks.iter().map(move |c| (&*s.id, &*c.id)))
                    .collect()
            });
            if checks.contains(&(service, old.label("check"))) {
                let mut kept = Alert::clone(old);
                mark_flapping(&mut kept, &self.t);
                desired.insert(fp.clone(), Arc::new(kept));
            }
        }

        self.active = desired;
        self.diff(now);
        AlertSet {
            at: Some(now),
            alerts: self.active.values().cloned().collect(),
        }
    }

    /// Add an alert to what fires now. An alert that stays firing keeps its
    /// original start, and when nothing else about it changed, the alert
    /// already shared with the dispatcher is kept instead of a new copy.
    fn put(&self, desired: &mut BTreeMap<String, Arc<Alert>>, mut a: Alert) {
        let fp = a.fingerprint();
        let shared = match self.active.get(&fp) {
            Some(old) => {
                a.starts_at = old.starts_at;
                if **old == a { old.clone() } else { Arc::new(a) }
            }
            None => Arc::new(a),
        };
        desired.insert(fp, shared);
    }

    /// The changes since the last call, for receivers.
    pub fn changes(&mut self) -> Vec<AlertChange> {
        std::mem::take(&mut self.pending)
    }

    /// Compare what fires with what receivers were told, and queue the
    /// differences, at most one per `notify_every` for flapping alerts.
    fn diff(&mut self, now: Timestamp) {
        let gate = self.t.flap_notify_every;
        // What fires now by labels without severity, for resolutions that
        // are escalations; built on the first resolution of this round.
        let mut severities: Option<HashMap<String, String>> = None;
        let mut fps: BTreeSet<String> = self.active.keys().cloned().collect();
        fps.extend(
            self.notified
                .iter()
                .filter(|(_, n)| n.firing)
                .map(|(k, _)| k.clone()),
        );
        for fp in fps {
            let current = self.active.get(&fp);
            let told = self.notified.get(&fp);
            let told_firing = told.is_some_and(|n| n.firing);
            if current.is_some() == told_firing {
                if let (Some(a), Some(n)) = (current, self.notified.get_mut(&fp))
                    && n.alert.as_ref().is_some_and(|told| !Arc::ptr_eq(a, told))
                {
                    // Same labels and start; keep the annotations fresh for
                    // the eventual resolution.
                    n.alert = Some(a.clone());
                }
                continue;
            }
            let subject = current.or(told.and_then(|n| n.alert.as_ref()));
            let flapping = subject.is_some_and(|a| self.is_flapping(a));
            if flapping && let Some(n) = told {
                let since = now.duration_since(n.at);
                if since < jiff::SignedDuration::try_from(gate).unwrap_or_default() {
                    continue;
                }
            }
            match current {
                Some(a) => {
                    self.pending.push(AlertChange::Firing(Alert::clone(a)));
                    self.notified.insert(
                        fp,
                        Notified {
                            firing: true,
                            at: now,
                            alert: Some(a.clone()),
                        },
                    );
                }
                None => {
                    let Some(told) = self.notified.get(&fp).and_then(|n| n.alert.clone()) else {
                        continue;
                    };
                    let note = self
                        .suppressed
                        .get(told.label("service"))
                        .cloned()
                        .or_else(|| {
                            let by_key = severities.get_or_insert_with(|| self.severity_by_key());
                            by_key.get(&without_severity(&told)).map(|severity| {
                                format!("resolved: continues at severity {severity}")
                            })
                        });
                    let Some(n) = self.notified.get_mut(&fp) else {
                        continue;
                    };
                    n.firing = false;
                    n.at = now;
                    n.alert = None;
                    self.pending.push(AlertChange::Resolved {
                        alert: Arc::unwrap_or_clone(told),
                        ended_at: now,
                        note,
                    });
                }
            }
        }
        // Resolved entries are only kept while they can still gate a
        // flapping alert.
        let keep = jiff::SignedDuration::try_from(gate).unwrap_or_default();
        self.notified
            .retain(|_, n| n.firing || now.duration_since(n.at) < keep);
    }

    /// The severity of each alert firing now, by its labels without
    /// severity: when the same alert fires again at another severity (a
    /// certificate closer to expiry), the old one resolved because of that.
    fn severity_by_key(&self) -> HashMap<String, String> {
        self.active
            .values()
            .map(|b| (without_severity(b), b.label("severity").to_string()))
            .collect()
    }

    fn track_flapping(&mut self, view: &AlertView) {
        let window = jiff::SignedDuration::try_from(self.t.flap_window).unwrap_or_default();
        self.evaluations += 1;
        let seen = self.evaluations;
        for s in &view.services {
            for c in &s.checks {
                let key: (&str, &str) = (&s.id, &c.id);
                let key = &key as &dyn CheckKey;
                if !self.flaps.contains_key(key) {
                    let owned = (s.id.to_string(), c.id.to_string());
                    self.flaps.insert(owned, FlapTrack::default());
                }
                let Some(track) = self.flaps.get_mut(key) else {
                    continue;
                };
                track.seen = seen;
                if c.state != CheckState::Unknown {
                    if track.last.is_some_and(|l| l != c.state) {
                        track.changes.push_back(view.now);
                    }
                    track.last = Some(c.state);
                }
                while track
                    .changes
                    .front()
                    .is_some_and(|t| view.now.duration_since(*t) > window)
                {
                    track.changes.pop_front();
                }
            }
        }
        self.flaps.retain(|_, t| t.seen == seen);
    }

    fn check_flapping(&self, service: &str, check: &str) -> bool {
        self.flaps
            .get(&(service, check) as &dyn CheckKey)
            .is_some_and(|f| f.changes.len() > self.t.flap_changes as usize)
    }

    fn is_flapping(&self, a: &Alert) -> bool {
        let check = a.label("check");
        !check.is_empty() && self.check_flapping(a.label("service"), check)
    }

    fn canaries_failing(&self, view: &AlertView) -> bool {
        if self.t.canaries.is_empty() {
            return false;
        }
        self.t.canaries.iter().all(|(service, check)| {
            find_check(view, service, check).is_some_and(|c| c.state == CheckState::Down)
        })
    }

    fn watchdog(&self, view: &AlertView, started: Timestamp) -> Alert {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".into(), names::WATCHDOG.into());
        labels.insert("severity".into(), Severity::None.as_str().into());
        labels.insert("location".into(), view.location.to_string());
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "summary".into(),
            format!("continuity at {} is alive", view.location),
        );
        annotations.insert(
            "description".into(),
            "Always firing while the monitor runs. Route it to a dead man's switch: when it stops arriving, the monitor itself is down.".into(),
        );
        Alert {
            labels,
            annotations,
            starts_at: started,
            generator_url: status_url(view, None),
        }
    }

    fn network_alert(&self, view: &AlertView) -> Alert {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".into(), names::NETWORK_DEGRADED.into());
        labels.insert("severity".into(), self.t.canary_severity.as_str().into());
        labels.insert("location".into(), view.location.to_string());
        let mut since = None::<Timestamp>;
        let mut listed = Vec::new();
        for (service, check) in &self.t.canaries {
            if let Some(c) = find_check(view, service, check) {
                // All canaries have been failing since the last one fell.
                since = since.max(c.down_since);
                listed.push(format!(
                    "{service}/{check} ({})",
                    c.reason.as_deref().unwrap_or("failing")
                ));
            }
        }
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "summary".into(),
            format!("The network of the monitor at {} looks down", view.location),
        );
        annotations.insert(
            "description".into(),
            format!(
                "Every canary check fails: {}. These should always be reachable, so the monitor's own network (uplink, DNS, firewall) is the likely cause. Alerts for services from this location are held back and their state is unknown until a canary recovers.",
                listed.join(", ")
            ),
        );
        add_status(&mut annotations, view, None);
        Alert {
            labels,
            annotations,
            starts_at: since.unwrap_or(view.now),
            generator_url: status_url(view, None),
        }
    }

    fn service_alerts(
        &mut self,
        view: &AlertView,
        s: &ServiceView,
        seen: &mut BTreeSet<String>,
    ) -> Vec<Alert> {
        let now = view.now;
        let mut out = Vec::new();
        let degraded_for = jiff::SignedDuration::try_from(self.t.degraded_for).unwrap_or_default();
        for c in &s.checks {
            let flapping = self.check_flapping(&s.id, &c.id);
            if c.state == CheckState::Down && c.critical {
                let mut a = base_alert(view, s, names::SERVICE_DOWN, Severity::Page, Some(&c.id));
                let since = c
                    .down_since
                    .unwrap_or_else(|| self.first_seen(seen, &a, now));
                a.starts_at = since;
                summarize(
                    &mut a,
                    format!("{} is down: check {} fails", s.name, c.id),
                    format!(
                        "Critical check {} of {} ({}) has failed since {}{}. Category {}, supplier {}.",
                        c.id,
                        s.name,
                        s.id,
                        since,
                        failure_text(c),
                        s.category,
                        s.supplier
                    ),
                );
                if flapping {
                    mark_flapping(&mut a, &self.t);
                }
                out.push(a);
            }
            let degraded_since = match c.state {
                CheckState::Down if !c.critical => Some((c.down_since, "fails")),
                CheckState::Up if c.slow_since.is_some() => {
                    Some((c.slow_since, "is slower than its latency threshold"))
                }
                _ => None,
            };
            if let Some((since, what)) = degraded_since {
                let mut a = base_alert(
                    view,
                    s,
                    names::SERVICE_DEGRADED,
                    Severity::Ticket,
                    Some(&c.id),
                );
                let since = since.unwrap_or_else(|| self.first_seen(seen, &a, now));
                if now.duration_since(since) >= degraded_for {
                    a.starts_at = since;
                    let detail = if c.state == CheckState::Down {
                        failure_text(c)
                    } else {
                        String::new()
                    };
                    summarize(
                        &mut a,
                        format!("{} is degraded: check {} {what}", s.name, c.id),
                        format!(
                            "Check {} of {} ({}) {what} since {since}{detail}. The service still works, but worse. Category {}, supplier {}.",
                            c.id, s.name, s.id, s.category, s.supplier
                        ),
                    );
                    if flapping {
                        mark_flapping(&mut a, &self.t);
                    }
                    out.push(a);
                }
            }
            if let Some(not_after) = c.cert_not_after
                && let Some(a) = self.certificate_alert(view, s, c, not_after)
            {
                out.push(a);
            }
        }
        for sla in &s.slas {
            if let Some(a) = self.burn_alert(view, s, sla, seen) {
                out.push(a);
            }
            let breached = sla.budget_remaining_ratio.is_some_and(|b| b <= 0.0)
                || sla.availability.is_some_and(|a| a < sla.objective_ratio);
            if breached {
                let mut a = base_alert(view, s, names::SLA_BREACHED, Severity::Ticket, None);
                a.labels.insert("sla".into(), sla.name.to_string());
                a.starts_at = round_minute(self.first_seen(seen, &a, now));
                summarize(
                    &mut a,
                    format!("{}: SLA {} is breached", s.name, sla.name),
                    format!(
                        "Availability of {} over the SLA period is {} against an objective of {}; the error budget is spent ({} left). Supplier {} is accountable under the contract.",
                        s.name,
                        percent(sla.availability),
                        percent(Some(sla.objective_ratio)),
                        percent(sla.budget_remaining_ratio),
                        s.supplier
                    ),
                );
                out.push(a);
            }
        }
        out
    }

    fn certificate_alert(
        &self,
        view: &AlertView,
        s: &ServiceView,
        c: &CheckView,
        not_after: i64,
    ) -> Option<Alert> {
        let left = not_after - view.now.as_second();
        let (severity, days) = if left < i64::from(self.t.cert_page_days) * 86400 {
            (Severity::Page, self.t.cert_page_days)
        } else if left < i64::from(self.t.cert_ticket_days) * 86400 {
            (Severity::Ticket, self.t.cert_ticket_days)
        } else {
            return None;
        };
        let mut a = base_alert(view, s, names::CERTIFICATE_EXPIRING, severity, Some(&c.id));
        // The moment the threshold was crossed: the same after a restart.
        a.starts_at =
            Timestamp::from_second(not_after - i64::from(days) * 86400).unwrap_or(view.now);
        let expiry = Timestamp::from_second(not_after)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| not_after.to_string());
        let when = if left < 0 {
            format!("expired {} ago", human_days(-left))
        } else {
            format!("expires in {}", human_days(left))
        };
        summarize(
            &mut a,
            format!("{}: TLS certificate seen by check {} {when}", s.name, c.id),
            format!(
                "The certificate chain presented to check {} of {} has its earliest notAfter at {expiry} ({when}). Ask supplier {} to renew it.",
                c.id, s.name, s.supplier
            ),
        );
        Some(a)
    }

    fn burn_alert(
        &mut self,
        view: &AlertView,
        s: &ServiceView,
        sla: &SlaView,
        seen: &mut BTreeSet<String>,
    ) -> Option<Alert> {
        let (name, severity, hit) = if let Some(w) = burning(&self.t.page_burns, &sla.burn_rates) {
            (names::FAST_BURN, Severity::Page, w)
        } else if let Some(w) = burning(&self.t.ticket_burns, &sla.burn_rates) {
            // A fast burn implies a slow one; one alert is enough.
            (names::SLOW_BURN, Severity::Ticket, w)
        } else {
            return None;
        };
        let mut a = base_alert(view, s, name, severity, None);
        a.labels.insert("sla".into(), sla.name.to_string());
        a.starts_at = round_minute(self.first_seen(seen, &a, view.now));
        let (long, short) = (
            window_key(hit.long).unwrap_or("?"),
            window_key(hit.short).unwrap_or("?"),
        );
        let rate = |k: &str| sla.burn_rates.get(k).copied().unwrap_or(0.0);
        summarize(
            &mut a,
            format!(
                "{}: error budget of SLA {} burns {:.1}x too fast",
                s.name,
                sla.name,
                rate(long)
            ),
            format!(
                "SLA {} ({} objective) of {} burns its error budget at {:.1}x over {long} and {:.1}x over {short} (threshold {}x). {} of the budget is left.",
                sla.name,
                percent(Some(sla.objective_ratio)),
                s.name,
                rate(long),
                rate(short),
                hit.factor,
                percent(sla.budget_remaining_ratio)
            ),
        );
        Some(a)
    }

    /// When a condition with no persisted start was first seen; `seen`
    /// collects the conditions still holding, the others are forgotten.
    fn first_seen(&mut self, seen: &mut BTreeSet<String>, a: &Alert, now: Timestamp) -> Timestamp {
        let fp = a.fingerprint();
        seen.insert(fp.clone());
        *self.first_seen.entry(fp).or_insert(now)
    }
}

/// The first burn rule whose long and short windows both reach its factor.
fn burning(rules: &[BurnWindow], rates: &BTreeMap<Cow<str>, f64>) -> Option<BurnWindow> {
    rules
        .iter()
        .find(|w| {
            let over = |d| {
                window_key(d)
                    .and_then(|k| rates.get(k))
                    .is_some_and(|r| *r >= w.factor)
            };
            over(w.long) && over(w.short)
        })
        .cloned()
}

fn find_check<'v, 'a>(
    view: &'v AlertView<'a>,
    service: &str,
    check: &str,
) -> Option<&'v CheckView<'a>> {
    view.services
        .iter()
        .find(|s| s.id == service)
        .and_then(|s| s.checks.iter().find(|c| c.id == check))
}

fn base_alert(
    view: &AlertView,
    s: &ServiceView,
    name: &str,
    severity: Severity,
    check: Option<&str>,
) -> Alert {
    let mut labels = BTreeMap::new();
    labels.insert("alertname".to_string(), name.to_string());
    labels.insert("service".to_string(), s.id.to_string());
    labels.insert("category".to_string(), s.category.to_string());
    labels.insert("supplier".to_string(), s.supplier.to_string());
    labels.insert("severity".to_string(), severity.as_str().to_string());
    labels.insert("location".to_string(), view.location.to_string());
    if let Some(c) = check {
        labels.insert("check".to_string(), c.to_string());
    }
    let mut annotations = BTreeMap::new();
    annotations.insert("service_name".to_string(), s.name.to_string());
    if let Some(r) = &s.runbook_url {
        annotations.insert("runbook_url".to_string(), r.to_string());
    }
    add_status(&mut annotations, view, Some(&s.id));
    Alert {
        labels,
        annotations,
        starts_at: view.now,
        generator_url: status_url(view, Some(&s.id)),
    }
}

fn summarize(a: &mut Alert, summary: String, description: String) {
    a.annotations.insert("summary".into(), summary);
    a.annotations.insert("description".into(), description);
}

fn mark_flapping(a: &mut Alert, t: &Thresholds) {
    if a.annotations.get("flapping").is_some_and(|f| f == "true") {
        return;
    }
    a.annotations.insert("flapping".into(), "true".into());
    if let Some(s) = a.annotations.get_mut("summary") {
        s.push_str(" (flapping)");
    }
    let note = format!(
        " The check is flapping: it changed state more than {} times in {}; this alert stays firing until it settles, and notifications are limited to one per {}.",
        t.flap_changes,
        crate::config::Dur(t.flap_window),
        crate::config::Dur(t.flap_notify_every)
    );
    a.annotations
        .entry("description".into())
        .or_default()
        .push_str(&note);
}

fn status_url(view: &AlertView, service: Option<&str>) -> Option<String> {
    let base = view.external_url.as_deref()?.trim_end_matches('/');
    Some(match service {
        Some(s) => format!("{base}/api/v1/status?service={s}"),
        None => format!("{base}/api/v1/status"),
    })
}

fn add_status(annotations: &mut BTreeMap<String, String>, view: &AlertView, service: Option<&str>) {
    if let Some(u) = status_url(view, service) {
        annotations.insert("status_url".into(), u);
    }
}

fn failure_text(c: &CheckView) -> String {
    match (&c.reason, &c.detail) {
        (Some(r), Some(d)) => format!(" ({r}: {d})"),
        (Some(r), None) => format!(" ({r})"),
        (None, Some(d)) => format!(" ({d})"),
        (None, None) => String::new(),
    }
}

fn percent(r: Option<f64>) -> String {
    match r {
        Some(r) => {
            let p = r * 100.0;
            let s = format!("{p:.3}");
            let s = s.trim_end_matches('0').trim_end_matches('.');
            format!("{s}%")
        }
        None => "unknown".into(),
    }
}

fn human_days(secs: i64) -> String {
    let days = secs / 86400;
    if days >= 1 {
        format!("{days} day{}", if days == 1 { "" } else { "s" })
    } else {
        format!("{} hours", (secs / 3600).max(0))
    }
}

fn round_minute(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second() - t.as_second().rem_euclid(60)).unwrap_or(t)
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

    #[test]
    fn percentages_read_like_contracts() {
        assert_eq!(percent(Some(0.998)), "99.8%");
        assert_eq!(percent(Some(1.0)), "100%");
        assert_eq!(percent(None), "unknown");
    }
}
