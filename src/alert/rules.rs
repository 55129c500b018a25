//! Decides which alerts fire, from the [`AlertView`] the engine hands over
//! every few seconds. Pure logic: no I/O, no clock of its own (time comes
//! from the view), so every rule can be tested on synthetic values. The
//! rules only read the view: the engine's verdicts (check states, the
//! network verdict) arrive in it, and nothing is handed back.
//!
//! Two outputs per evaluation: the [`AlertSet`] firing now (what
//! Alertmanager is told, re-sent every minute), and the [`AlertChange`]s
//! since the last evaluation (what webhooks and e-mail get, rate-limited
//! for flapping checks).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::changes::ChangeLog;
use super::config::{AlertingSpec, BurnWindow, Severity, window_key};
use super::flapping::{FlapDetector, FlapLimits};
use super::model::names;
use super::view::{AlertView, CheckView, ServiceView, SlaView};
use crate::sla::CheckState;

// The alert model's old home: `dispatch` and `notify` import it from here.
pub use super::model::{Alert, AlertChange, AlertSet};

/// Thresholds the rules decide with, taken from the `alerting:` section.
#[derive(Debug, Clone)]
struct Thresholds {
    page_burns: Vec<BurnWindow>,
    ticket_burns: Vec<BurnWindow>,
    cert_ticket_days: u32,
    cert_page_days: u32,
    degraded_for: Duration,
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
            canaries: spec.canary_checks.clone(),
            canary_severity: spec.canary_severity,
        }
    }
}

/// The alert rules with the little memory they need between evaluations:
/// what fires, what receivers were told, and recent state changes.
#[derive(Debug)]
pub struct AlertRules {
    t: Thresholds,
    started: Option<Timestamp>,
    active: BTreeMap<String, Arc<Alert>>,
    /// First time a condition without a persisted start was seen.
    first_seen: HashMap<String, Timestamp>,
    flapping: FlapDetector,
    /// Why a service's alerts are held back right now (maintenance, canary).
    suppressed: HashMap<String, String>,
    receivers: ChangeLog,
}

impl AlertRules {
    pub fn new(spec: &AlertingSpec) -> AlertRules {
        AlertRules {
            t: Thresholds::from_spec(spec),
            started: None,
            active: BTreeMap::new(),
            first_seen: HashMap::new(),
            flapping: FlapDetector::new(FlapLimits::from_spec(spec)),
            suppressed: HashMap::new(),
            receivers: ChangeLog::default(),
        }
    }

    /// Take new thresholds after a configuration reload; what fires and
    /// what receivers were told is kept.
    pub fn apply_config(&mut self, spec: &AlertingSpec) {
        self.t = Thresholds::from_spec(spec);
        self.flapping.limits = FlapLimits::from_spec(spec);
    }

    /// Checks changing state too often right now, as (service, check).
    pub fn flapping_checks(&self) -> Vec<(String, String)> {
        self.flapping.flapping_checks()
    }

    /// Evaluate every rule against the view; returns the alerts firing now.
    /// Changes for receivers accumulate until [`AlertRules::changes`].
    pub fn evaluate(&mut self, view: &AlertView) -> AlertSet {
        let now = view.now;
        let started = *self.started.get_or_insert(now);
        self.flapping.track(view);

        let mut desired: BTreeMap<String, Arc<Alert>> = BTreeMap::new();
        let mut seen_conditions = BTreeSet::new();
        let mut fixed = vec![self.watchdog(view, started)];
        if view.network_degraded {
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
            if view.network_degraded {
                self.suppressed.insert(
                    s.id.to_string(),
                    "resolved: every canary check fails, so the monitor's own network is the likely cause (see MonitorNetworkDegraded)".to_string(),
                );
                continue;
            }
            for a in self.service_alerts(view, s, &mut seen_conditions) {
                self.put(&mut desired, a);
            }
            for a in migration_alerts(view, s) {
                self.put(&mut desired, a);
            }
        }
        self.first_seen.retain(|k, _| seen_conditions.contains(k));

        // A flapping check keeps its alerts firing until it settles, so a
        // check bouncing between up and down is one incident, not many.
        let mut checks: Option<BTreeSet<(&str, &str)>> = None;
        for (fp, old) in &self.active {
            if desired.contains_key(fp) || !self.flapping.is_flapping(old) {
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
                self.flapping.mark(&mut kept);
                desired.insert(fp.clone(), Arc::new(kept));
            }
        }

        self.active = desired;
        self.receivers
            .diff(&self.active, &self.suppressed, &self.flapping, now);
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
        self.receivers.take()
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
            if let Some(c) = view.check(service, check) {
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
            let flapping = self.flapping.check_flapping(&s.id, &c.id);
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
                    self.flapping.mark(&mut a);
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
                        self.flapping.mark(&mut a);
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
                    .is_some_and(|r| crate::sla::reaches(*r, w.factor))
            };
            over(w.long) && over(w.short)
        })
        .cloned()
}

/// The cutover rules, paging with `phase`, `from` and `to` so routes can
/// reach the new supplier's desk:
/// - `CutoverOverrun`: `cutover_grace` after the window ended, the service
///   has not been up since the window's end;
/// - `NewSupplierRegression`: in hypercare, the service is down while a
///   check's old (`compare_with`) endpoint answers, or a check's parity
///   has failed for `parity_for`.
fn migration_alerts(view: &AlertView, s: &ServiceView) -> Vec<Alert> {
    let Some(m) = &s.migration else {
        return Vec::new();
    };
    if m.phase != crate::migration::Phase::Hypercare {
        return Vec::new();
    }
    let now = view.now;
    let mut out = Vec::new();
    let labelled = |name: &str, check: Option<&str>| {
        let mut a = base_alert(view, s, name, Severity::Page, check);
        for (k, v) in [
            ("phase", m.phase.as_str()),
            ("from", &m.from),
            ("to", &m.to),
            ("reference", &m.reference),
        ] {
            a.labels.insert(k.to_string(), v.to_string());
        }
        a
    };
    if now >= m.grace_end && m.up_after_window.is_none() {
        let mut a = labelled(names::CUTOVER_OVERRUN, None);
        a.starts_at = m.grace_end;
        let failing: Vec<String> = s
            .checks
            .iter()
            .filter(|c| c.critical && c.state != CheckState::Up)
            .map(|c| format!("{} {}{}", c.id, c.state.as_str(), failure_text(c)))
            .collect();
        summarize(
            &mut a,
            format!(
                "{} is not up after cutover {} from {} to {}",
                s.name, m.reference, m.from, m.to
            ),
            format!(
                "The cutover window {} of {} ({}) ended at {}; the service had to be up by {} and has not been up since. Critical checks: {}.",
                m.reference,
                s.name,
                s.id,
                m.window_end,
                m.grace_end,
                if failing.is_empty() {
                    "no result yet".to_string()
                } else {
                    failing.join("; ")
                }
            ),
        );
        out.push(a);
    }
    let down = s
        .checks
        .iter()
        .find(|c| c.critical && c.state == CheckState::Down);
    let old_up = s.checks.iter().find(|c| c.compare_up == Some(true));
    let parity_for = jiff::SignedDuration::try_from(m.parity_for).unwrap_or_default();
    let parity = s
        .checks
        .iter()
        .filter_map(|c| c.parity_failing_since.map(|t| (c, t)))
        .filter(|(_, t)| now - *t >= parity_for)
        .min_by_key(|(_, t)| *t);
    let regression = match (down, old_up, parity) {
        (Some(c), Some(old), _) => Some((
            c.down_since.unwrap_or(now),
            format!(
                "check {} fails on {} while the old endpoint of {} still answers",
                c.id, m.to, old.id
            ),
        )),
        (_, _, Some((c, since))) => Some((
            since,
            format!(
                "check {} of {} has not matched the old endpoint since {since} (longer than {})",
                c.id,
                m.to,
                crate::config::Dur(m.parity_for)
            ),
        )),
        _ => None,
    };
    if let Some((since, why)) = regression {
        let mut a = labelled(names::NEW_SUPPLIER_REGRESSION, None);
        a.starts_at = since;
        summarize(
            &mut a,
            format!(
                "{} regressed after moving from {} to {}",
                s.name, m.from, m.to
            ),
            format!(
                "During hypercare after {} ({} to {}), {why}.",
                m.reference, m.from, m.to
            ),
        );
        out.push(a);
    }
    out
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
    fn percentages_read_like_contracts() {
        assert_eq!(percent(Some(0.998)), "99.8%");
        assert_eq!(percent(Some(1.0)), "100%");
        assert_eq!(percent(None), "unknown");
    }

    mod cutover {
        use super::super::*;
        use crate::alert::view::MigrationView;
        use crate::migration::Phase;

        fn ts(s: &str) -> Timestamp {
            s.parse().unwrap()
        }

        fn check(id: &str, state: CheckState) -> CheckView<'static> {
            CheckView {
                id: id.to_string().into(),
                critical: true,
                state,
                down_since: (state == CheckState::Down).then(|| ts("2026-12-06T10:00:00Z")),
                reason: None,
                detail: None,
                slow_since: None,
                cert_not_after: None,
                parity_failing_since: None,
                compare_up: None,
            }
        }

        /// The portal, cut over from in-house to northhost; the window
        /// ended at 06:00, grace until 06:15.
        fn view(
            now: &str,
            checks: Vec<CheckView<'static>>,
            up_after: Option<&str>,
        ) -> AlertView<'static> {
            AlertView {
                now: ts(now),
                location: "test".into(),
                external_url: None,
                network_degraded: false,
                services: vec![ServiceView {
                    id: "portal".into(),
                    name: "Citizen portal".into(),
                    category: "portal".into(),
                    supplier: "in-house".into(),
                    runbook_url: None,
                    maintenance: None,
                    checks,
                    slas: Vec::new(),
                    migration: Some(Box::new(MigrationView {
                        phase: Phase::Hypercare,
                        from: "in-house".into(),
                        to: "northhost".into(),
                        reference: "CHG-1042".into(),
                        window_end: ts("2026-12-06T06:00:00Z"),
                        grace_end: ts("2026-12-06T06:15:00Z"),
                        parity_for: Duration::from_secs(15 * 60),
                        up_after_window: up_after.map(ts),
                    })),
                }],
            }
        }

        fn fired(view: &AlertView) -> Vec<Arc<Alert>> {
            let mut rules = AlertRules::new(&AlertingSpec::default());
            rules
                .evaluate(view)
                .alerts
                .into_iter()
                .filter(|a| a.name() != names::WATCHDOG && a.name() != names::SERVICE_DOWN)
                .collect()
        }

        #[test]
        fn cutover_overrun_fires_when_the_service_is_not_up_after_the_grace() {
            let down = || vec![check("home", CheckState::Down)];
            assert!(fired(&view("2026-12-06T06:14:59Z", down(), None)).is_empty());
            let alerts = fired(&view("2026-12-06T06:15:00Z", down(), None));
            assert_eq!(alerts.len(), 1);
            let a = &alerts[0];
            assert_eq!(a.name(), names::CUTOVER_OVERRUN);
            assert_eq!(
                (
                    a.label("phase"),
                    a.label("from"),
                    a.label("to"),
                    a.label("severity")
                ),
                ("hypercare", "in-house", "northhost", "page")
            );
            assert_eq!(a.starts_at, ts("2026-12-06T06:15:00Z"));
            // Up once after the window: the cutover is done, whatever
            // happens later (that is ServiceDown's business).
            assert!(
                fired(&view(
                    "2026-12-06T07:00:00Z",
                    down(),
                    Some("2026-12-06T06:03:00Z")
                ))
                .is_empty()
            );
        }

        #[test]
        fn regression_fires_when_new_is_down_while_old_answers() {
            let mut home = check("home", CheckState::Down);
            home.compare_up = Some(false);
            let v = view(
                "2026-12-08T10:05:00Z",
                vec![home.clone()],
                Some("2026-12-06T06:01:00Z"),
            );
            assert!(
                fired(&v).is_empty(),
                "old down too: not the new supplier's regression"
            );
            home.compare_up = Some(true);
            let alerts = fired(&view(
                "2026-12-08T10:05:00Z",
                vec![home],
                Some("2026-12-06T06:01:00Z"),
            ));
            assert_eq!(alerts.len(), 1);
            assert_eq!(alerts[0].name(), names::NEW_SUPPLIER_REGRESSION);
            assert_eq!(alerts[0].label("to"), "northhost");
            assert_eq!(alerts[0].starts_at, ts("2026-12-06T10:00:00Z"));
        }

        #[test]
        fn regression_fires_when_parity_fails_for_parity_for() {
            let mut home = check("home", CheckState::Up);
            home.parity_failing_since = Some(ts("2026-12-08T10:00:00Z"));
            let at =
                |now: &str| fired(&view(now, vec![home.clone()], Some("2026-12-06T06:01:00Z")));
            assert!(at("2026-12-08T10:14:59Z").is_empty());
            let alerts = at("2026-12-08T10:15:00Z");
            assert_eq!(alerts.len(), 1);
            assert_eq!(alerts[0].name(), names::NEW_SUPPLIER_REGRESSION);
            assert_eq!(alerts[0].label("phase"), "hypercare");
        }

        #[test]
        fn no_cutover_alert_outside_hypercare() {
            let mut v = view(
                "2026-12-06T06:30:00Z",
                vec![check("home", CheckState::Down)],
                None,
            );
            if let Some(m) = &mut v.services[0].migration {
                m.phase = Phase::Steady;
            }
            assert!(fired(&v).is_empty());
        }
    }
}
