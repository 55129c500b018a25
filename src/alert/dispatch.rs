//! Delivers what the rules decided. Two paths:
//!
//! - Alertmanager: stateless. The firing set is posted to every configured
//!   Alertmanager on every change and every `resend_interval`, with
//!   `endsAt` four intervals ahead; resolved alerts are re-sent with their
//!   real `endsAt` for `resolved_resend_for`. Nothing is stored: the next
//!   round repairs any failure.
//! - Receivers (webhook, Slack, Teams, e-mail): each change is written to
//!   the durable outbox first, under a key unique per incident, receiver and
//!   status, then delivered with exponential backoff until it is taken or
//!   expires. Incidents receivers were told about are read back from the
//!   outbox at start-up, so a restarted monitor neither notifies twice nor
//!   forgets to send a resolution.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::config::AlertingSpec;
use super::notify::alertmanager::{self, PostableAlert};
use super::notify::{self, Notification, Notifier, Status};
use super::outbox::{OutboxItem, OutboxStore, backoff};
use super::rules::{Alert, AlertChange, AlertSet};
use crate::telemetry::{AlertLabels, NotificationLabels, Telemetry};

/// How far back the outbox history is read at start-up.
pub const HISTORY_LOOKBACK: Duration = Duration::from_secs(7 * 86400);

/// Timing of the dispatcher; the defaults suit production, tests shorten
/// them.
#[derive(Debug, Clone)]
pub struct DispatchOptions {
    /// How often the outbox is polled for due notifications (it is also
    /// woken at once by new changes).
    pub poll: Duration,
    /// First retry delay; doubles per failed attempt up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Timeout of one HTTP delivery (webhooks and Alertmanager).
    pub http_timeout: Duration,
    /// After a restart, incidents receivers were told about that are not
    /// firing again by then are resolved.
    pub reconcile_after: Duration,
    pub history_lookback: Duration,
    /// Most notifications taken from the outbox per poll.
    pub batch: usize,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            poll: Duration::from_secs(1),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            http_timeout: Duration::from_secs(10),
            reconcile_after: Duration::from_secs(300),
            history_lookback: HISTORY_LOOKBACK,
            batch: 64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("cannot build the HTTP client for notifications: {0}")]
    HttpClient(String),
}

/// Which Alertmanagers get alerts, and how often.
#[derive(Debug, Clone, PartialEq)]
struct AmConfig {
    urls: Vec<String>,
    resend: Duration,
    resolved_for: Duration,
}

impl AmConfig {
    fn from_spec(spec: &AlertingSpec) -> AmConfig {
        AmConfig {
            urls: spec
                .alertmanagers
                .iter()
                .map(|u| u.value.trim_end_matches('/').to_string())
                .collect(),
            resend: spec
                .resend_interval()
                .clamp(Duration::from_millis(100), Duration::from_secs(3600)),
            resolved_for: spec.resolved_resend_for(),
        }
    }
}

/// The firing set and why alerts that left it resolved.
#[derive(Debug, Clone, Default)]
struct AmUpdate {
    set: AlertSet,
    notes: BTreeMap<String, String>,
}

struct Receiver {
    spec: crate::alert::config::ReceiverSpec,
    notifier: Arc<dyn Notifier>,
}

/// An incident a receiver was told is firing and not yet resolved.
#[derive(Debug, Clone)]
struct OpenIncident {
    incident: String,
    alert: Alert,
    /// Learnt from the outbox at start-up rather than in this run.
    from_history: bool,
}

/// A notification the store refused to take; tried again on the next
/// update.
struct Unqueued {
    key: String,
    receiver: String,
    payload: serde_json::Value,
    expires_at: Timestamp,
}

struct Routing {
    receivers: BTreeMap<String, Receiver>,
    ttl: Duration,
    /// (receiver, fingerprint) -> incident.
    open: HashMap<(String, String), OpenIncident>,
    /// Every outbox key seen (history and this run).
    keys: HashSet<String>,
    /// (receiver, incident) resolved: a firing still queued for it is
    /// superseded by the resolution.
    closed: HashSet<(String, String)>,
    unqueued: Vec<Unqueued>,
    latest: Option<AlertSet>,
    reconciled: bool,
}

struct Shared {
    routing: Mutex<Routing>,
    outbox: Arc<dyn OutboxStore>,
    telemetry: Arc<Telemetry>,
    http: reqwest::Client,
    opts: DispatchOptions,
    wake: Notify,
    started: Timestamp,
    firing_labels: Mutex<BTreeSet<(String, String)>>,
}

/// The running dispatcher: feed it with [`Dispatcher::update`] after each
/// evaluation of the rules, stop it with [`Dispatcher::shutdown`].
pub struct Dispatcher {
    shared: Arc<Shared>,
    am_tx: watch::Sender<AmUpdate>,
    am_config: watch::Sender<AmConfig>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Dispatcher {
    /// Start with production timings.
    pub fn start(
        spec: &AlertingSpec,
        outbox: Arc<dyn OutboxStore>,
        telemetry: Arc<Telemetry>,
    ) -> Result<Dispatcher, DispatchError> {
        Dispatcher::start_with(spec, outbox, telemetry, DispatchOptions::default())
    }

    /// Start the Alertmanager and outbox tasks. Reads the outbox history
    /// to learn what receivers were told before a restart.
    pub fn start_with(
        spec: &AlertingSpec,
        outbox: Arc<dyn OutboxStore>,
        telemetry: Arc<Telemetry>,
        opts: DispatchOptions,
    ) -> Result<Dispatcher, DispatchError> {
        let http = notify::http_client(opts.http_timeout)
            .map_err(|e| DispatchError::HttpClient(e.to_string()))?;
        let now = Timestamp::now();
        let mut routing = Routing {
            receivers: build_receivers(spec, &http),
            ttl: spec.notification_ttl(),
            open: HashMap::new(),
            keys: HashSet::new(),
            closed: HashSet::new(),
            unqueued: Vec::new(),
            latest: None,
            reconciled: false,
        };
        let since = now
            .checked_sub(jiff::SignedDuration::try_from(opts.history_lookback).unwrap_or_default())
            .unwrap_or(Timestamp::UNIX_EPOCH);
        match outbox.history(since) {
            Ok(items) => learn_history(&mut routing, &items),
            Err(e) => tracing::error!(
                error = %e,
                "cannot read the outbox history: alerts firing before the restart may be notified again"
            ),
        }
        let shared = Arc::new(Shared {
            routing: Mutex::new(routing),
            outbox,
            telemetry,
            http,
            opts,
            wake: Notify::new(),
            started: now,
            firing_labels: Mutex::new(BTreeSet::new()),
        });
        let (am_tx, am_rx) = watch::channel(AmUpdate::default());
        let (am_config, am_config_rx) = watch::channel(AmConfig::from_spec(spec));
        let (stop, stop_rx) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(alertmanager_task(
                shared.clone(),
                am_rx,
                am_config_rx,
                stop_rx.clone(),
            )),
            tokio::spawn(delivery_task(shared.clone(), stop_rx)),
        ];
        Ok(Dispatcher {
            shared,
            am_tx,
            am_config,
            stop,
            tasks,
        })
    }

    /// Hand over the result of one evaluation: `set` from
    /// `AlertRules::evaluate`, `changes` from `AlertRules::changes`.
    /// Notifications are in the outbox when this returns; delivery happens
    /// in the background.
    pub fn update(&self, set: &AlertSet, changes: &[AlertChange]) {
        // The outbox runs on the wall clock, whatever time the view was for.
        let now = Timestamp::now();
        self.publish_firing(set);
        let mut notes = BTreeMap::new();
        {
            let mut routing = lock(&self.shared.routing);
            retry_unqueued(&self.shared, &mut routing);
            for change in changes {
                if let AlertChange::Resolved {
                    alert,
                    note: Some(n),
                    ..
                } = change
                {
                    notes.insert(alert.fingerprint(), n.clone());
                }
                let all: Vec<String> = routing.receivers.keys().cloned().collect();
                route(&self.shared, &mut routing, change, now, &all);
            }
            routing.latest = Some(set.clone());
        }
        self.am_tx.send_replace(AmUpdate {
            set: set.clone(),
            notes,
        });
        self.shared.wake.notify_one();
    }

    /// Take a reloaded configuration: receivers and Alertmanagers are
    /// rebuilt; what receivers were told is kept.
    pub fn apply_config(&self, spec: &AlertingSpec) {
        let receivers = build_receivers(spec, &self.shared.http);
        {
            let mut routing = lock(&self.shared.routing);
            let added: Vec<String> = receivers
                .keys()
                .filter(|name| !routing.receivers.contains_key(*name))
                .cloned()
                .collect();
            routing.receivers = receivers;
            routing.ttl = spec.notification_ttl();
            // A receiver added by a reload hears about what fires now.
            let now = Timestamp::now();
            let firing = routing.latest.clone().unwrap_or_default().alerts;
            for a in firing {
                route(
                    &self.shared,
                    &mut routing,
                    &AlertChange::Firing(Alert::clone(&a)),
                    now,
                    &added,
                );
            }
        }
        self.am_config.send_if_modified(|c| {
            let new = AmConfig::from_spec(spec);
            let changed = *c != new;
            *c = new;
            changed
        });
    }

    /// Stop: one last delivery round for what is due, then the tasks end.
    /// Nothing is resolved on the way out; Alertmanager lets the alerts
    /// expire unless another instance keeps them firing.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }

    fn publish_firing(&self, set: &AlertSet) {
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        for a in &set.alerts {
            *counts
                .entry((a.name().to_string(), a.label("severity").to_string()))
                .or_default() += 1;
        }
        let mut seen = lock(&self.shared.firing_labels);
        for key in seen.iter() {
            if !counts.contains_key(key) {
                self.shared
                    .telemetry
                    .alerts_firing
                    .get_or_create(&alert_labels(key))
                    .set(0);
            }
        }
        for (key, n) in &counts {
            self.shared
                .telemetry
                .alerts_firing
                .get_or_create(&alert_labels(key))
                .set(*n);
            seen.insert(key.clone());
        }
    }
}

fn alert_labels((alertname, severity): &(String, String)) -> AlertLabels {
    AlertLabels {
        alertname: alertname.clone(),
        severity: severity.clone(),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data stays consistent between statements; a panic elsewhere must
    // not stop alerting.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn build_receivers(spec: &AlertingSpec, http: &reqwest::Client) -> BTreeMap<String, Receiver> {
    let mut out = BTreeMap::new();
    for r in &spec.receivers {
        let r = &r.value;
        match notify::notifier_for(r, http) {
            Ok(notifier) => {
                out.insert(
                    r.name.value.clone(),
                    Receiver {
                        spec: r.clone(),
                        notifier,
                    },
                );
            }
            Err(e) => tracing::error!(
                receiver = %r.name.value,
                error = %e,
                "receiver cannot be used; its notifications stay queued until they expire"
            ),
        }
    }
    out
}

fn outbox_key(incident: &str, receiver: &str, status: Status) -> String {
    format!("{incident}:{receiver}:{}", status.as_str())
}

/// Rebuild what receivers were told from the outbox: incidents with a
/// firing notification and no resolution are open.
fn learn_history(routing: &mut Routing, items: &[OutboxItem]) {
    let mut firing: Vec<(String, Notification)> = Vec::new();
    for item in items {
        routing.keys.insert(item.key.clone());
        let Ok(n) = serde_json::from_value::<Notification>(item.payload.clone()) else {
            continue;
        };
        match n.status {
            Status::Firing => firing.push((item.receiver.clone(), n)),
            Status::Resolved => {
                routing
                    .closed
                    .insert((item.receiver.clone(), n.incident.clone()));
            }
        }
    }
    for (receiver, n) in firing {
        if routing
            .closed
            .contains(&(receiver.clone(), n.incident.clone()))
        {
            continue;
        }
        let alert = Alert {
            labels: n.labels.clone(),
            annotations: n.annotations.clone(),
            starts_at: n.starts_at,
            generator_url: n.generator_url.clone(),
        };
        routing.open.insert(
            (receiver, n.fingerprint.clone()),
            OpenIncident {
                incident: n.incident,
                alert,
                from_history: true,
            },
        );
    }
}

/// Turn one change into outbox entries for those of `receivers` that want
/// it.
fn route(
    shared: &Shared,
    routing: &mut Routing,
    change: &AlertChange,
    now: Timestamp,
    receivers: &[String],
) {
    let alert = change.alert();
    let fp = alert.fingerprint();
    for name in receivers {
        let name = name.as_str();
        if !routing.receivers.contains_key(name) {
            continue;
        }
        let key = (name.to_string(), fp.clone());
        match change {
            AlertChange::Firing(a) => {
                let wants = routing.receivers[name].spec.wants(a.severity(), &a.labels);
                if !wants || routing.open.contains_key(&key) {
                    // Already told (before a restart, or a flapping alert
                    // that never stopped firing for receivers).
                    continue;
                }
                let incident = fresh_incident(routing, name, a);
                let n = Notification::new(Status::Firing, &incident, name, a, None, None);
                enqueue(shared, routing, &n, now);
                routing.open.insert(
                    key,
                    OpenIncident {
                        incident,
                        alert: a.clone(),
                        from_history: false,
                    },
                );
            }
            AlertChange::Resolved {
                alert,
                ended_at,
                note,
            } => {
                let Some(open) = routing.open.remove(&key) else {
                    continue;
                };
                resolve(
                    shared,
                    routing,
                    name,
                    open,
                    alert,
                    *ended_at,
                    note.clone(),
                    now,
                );
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn resolve(
    shared: &Shared,
    routing: &mut Routing,
    receiver: &str,
    open: OpenIncident,
    latest: &Alert,
    ended_at: Timestamp,
    note: Option<String>,
    now: Timestamp,
) {
    // The incident keeps the start receivers were told; the annotations
    // are the latest.
    let mut alert = latest.clone();
    alert.starts_at = open.alert.starts_at;
    let n = Notification::new(
        Status::Resolved,
        &open.incident,
        receiver,
        &alert,
        Some(ended_at),
        note,
    );
    // Queued even for receivers that do not want resolutions: the row
    // records durably that the incident is over (it is never sent).
    enqueue(shared, routing, &n, now);
    routing
        .closed
        .insert((receiver.to_string(), open.incident.clone()));
}

/// The incident id for a new firing: fingerprint and start, with a
/// sequence number when an incident with the same start was already
/// resolved (an alert firing again after a maintenance window).
fn fresh_incident(routing: &Routing, receiver: &str, a: &Alert) -> String {
    let base = a.incident_id();
    let mut id = base.clone();
    let mut n = 1;
    while routing.closed.contains(&(receiver.to_string(), id.clone()))
        || routing
            .keys
            .contains(&outbox_key(&id, receiver, Status::Resolved))
    {
        n += 1;
        id = format!("{base}.{n}");
    }
    id
}

fn enqueue(shared: &Shared, routing: &mut Routing, n: &Notification, now: Timestamp) {
    let key = outbox_key(&n.incident, &n.receiver, n.status);
    let expires_at = now
        .checked_add(jiff::SignedDuration::try_from(routing.ttl).unwrap_or_default())
        .unwrap_or(now);
    let payload = match serde_json::to_value(n) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a notification");
            return;
        }
    };
    routing.keys.insert(key.clone());
    match shared
        .outbox
        .enqueue(&key, &n.receiver, &payload, now, expires_at)
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(%key, "notification already in the outbox");
        }
        Err(e) => {
            shared.telemetry.store_errors_total.inc();
            tracing::warn!(error = %e, %key, "cannot queue a notification; will retry");
            routing.unqueued.push(Unqueued {
                key,
                receiver: n.receiver.clone(),
                payload,
                expires_at,
            });
        }
    }
}

fn retry_unqueued(shared: &Shared, routing: &mut Routing) {
    let now = Timestamp::now();
    let pending = std::mem::take(&mut routing.unqueued);
    for u in pending {
        if u.expires_at <= now {
            continue;
        }
        if let Err(e) = shared
            .outbox
            .enqueue(&u.key, &u.receiver, &u.payload, now, u.expires_at)
        {
            tracing::warn!(error = %e, key = %u.key, "still cannot queue a notification");
            routing.unqueued.push(u);
        }
    }
}

// ------------------------------------------------------------ Alertmanager

async fn alertmanager_task(
    shared: Arc<Shared>,
    mut updates: watch::Receiver<AmUpdate>,
    mut config: watch::Receiver<AmConfig>,
    stop: watch::Receiver<bool>,
) {
    let stopped = stopped(stop);
    tokio::pin!(stopped);
    let mut cfg = config.borrow_and_update().clone();
    let mut ticker = resend_ticker(cfg.resend);
    let mut firing: BTreeMap<String, Arc<Alert>> = BTreeMap::new();
    // fingerprint -> (alert, ended at, note)
    let mut resolved: BTreeMap<String, (Alert, Timestamp)> = BTreeMap::new();
    let mut have_set = false;
    loop {
        tokio::select! {
            changed = updates.changed() => {
                if changed.is_err() { break; }
                let update = updates.borrow_and_update().clone();
                let at = update.set.at.unwrap_or_else(Timestamp::now);
                let next: BTreeMap<String, Arc<Alert>> = update
                    .set
                    .alerts
                    .iter()
                    .map(|a| (a.fingerprint(), a.clone()))
                    .collect();
                let mut news = !have_set;
                have_set = true;
                for (fp, a) in &firing {
                    if !next.contains_key(fp) {
                        let mut a = Alert::clone(a);
                        if let Some(n) = update.notes.get(fp) {
                            a.annotations.insert("resolution_note".into(), n.clone());
                        }
                        resolved.insert(fp.clone(), (a, at));
                        news = true;
                    }
                }
                for fp in next.keys() {
                    resolved.remove(fp);
                    if !firing.contains_key(fp) {
                        news = true;
                    }
                }
                firing = next;
                // Resolved alerts are kept only to be re-sent to an
                // Alertmanager; without one they would pile up.
                if cfg.urls.is_empty() {
                    resolved.clear();
                }
                if news {
                    post_all(&shared, &cfg, &firing, &mut resolved).await;
                }
            }
            _ = ticker.tick() => {
                if have_set {
                    post_all(&shared, &cfg, &firing, &mut resolved).await;
                }
            }
            changed = config.changed() => {
                if changed.is_err() { break; }
                cfg = config.borrow_and_update().clone();
                ticker = resend_ticker(cfg.resend);
            }
            _ = &mut stopped => break,
        }
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn resend_ticker(every: Duration) -> tokio::time::Interval {
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

async fn post_all(
    shared: &Shared,
    cfg: &AmConfig,
    firing: &BTreeMap<String, Arc<Alert>>,
    resolved: &mut BTreeMap<String, (Alert, Timestamp)>,
) {
    if cfg.urls.is_empty() {
        return;
    }
    let now = Timestamp::now();
    let keep = jiff::SignedDuration::try_from(cfg.resolved_for).unwrap_or_default();
    resolved.retain(|_, (_, ended)| now.duration_since(*ended) < keep);
    let ahead = jiff::SignedDuration::try_from(cfg.resend.saturating_mul(4)).unwrap_or_default();
    let ends = now.checked_add(ahead).unwrap_or(now);
    let mut batch: Vec<PostableAlert> = firing
        .values()
        .map(|a| PostableAlert::new(a, ends))
        .collect();
    batch.extend(
        resolved
            .values()
            .map(|(a, ended)| PostableAlert::new(a, *ended)),
    );
    let posts = cfg.urls.iter().map(|url| {
        let batch = &batch;
        async move {
            let result = alertmanager::post(&shared.http, url, batch).await;
            (url, result)
        }
    });
    for (url, result) in futures::future::join_all(posts).await {
        let name = alertmanager::display_name(url);
        let outcome = match &result {
            Ok(()) => "delivered",
            Err(e) => {
                tracing::warn!(alertmanager = %name, error = %e, "cannot post alerts; will re-send");
                "failed"
            }
        };
        count(shared, &name, outcome);
    }
}

fn count(shared: &Shared, receiver: &str, result: &str) {
    shared
        .telemetry
        .notifications_total
        .get_or_create(&NotificationLabels {
            receiver: receiver.to_string(),
            result: result.to_string(),
        })
        .inc();
}

// ---------------------------------------------------------------- outbox

async fn delivery_task(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let stopped = stopped(stop);
    tokio::pin!(stopped);
    loop {
        let stopping = tokio::select! {
            _ = shared.wake.notified() => false,
            _ = tokio::time::sleep(shared.opts.poll) => false,
            _ = &mut stopped => true,
        };
        reconcile(&shared);
        deliver_due(&shared).await;
        if stopping {
            break;
        }
    }
}

/// After a restart: incidents receivers were told about before it, and
/// not firing again once the rules had time to see every check, are over.
fn reconcile(shared: &Shared) {
    let now = Timestamp::now();
    let grace = jiff::SignedDuration::try_from(shared.opts.reconcile_after).unwrap_or_default();
    let mut routing = lock(&shared.routing);
    if routing.reconciled || now.duration_since(shared.started) < grace {
        return;
    }
    let Some(latest) = routing.latest.clone() else {
        return;
    };
    routing.reconciled = true;
    let firing: HashSet<String> = latest.alerts.iter().map(|a| a.fingerprint()).collect();
    let stale: Vec<(String, String)> = routing
        .open
        .iter()
        .filter(|(k, o)| o.from_history && !firing.contains(&k.1))
        .map(|(k, _)| k.clone())
        .collect();
    for key in stale {
        let Some(open) = routing.open.remove(&key) else {
            continue;
        };
        let alert = open.alert.clone();
        tracing::info!(
            receiver = %key.0,
            alert = %alert.name(),
            "resolving an incident that ended while continuity was not running"
        );
        resolve(
            shared,
            &mut routing,
            &key.0,
            open,
            &alert,
            now,
            Some("resolved: no longer firing after continuity restarted".to_string()),
            now,
        );
    }
}

/// What to do with one due item, decided under the lock.
enum Plan {
    Send(Arc<dyn Notifier>, Box<Notification>),
    /// Nothing to send; mark it delivered (a resolution for a receiver
    /// without `send_resolved`, or a firing already resolved).
    Skip(&'static str),
    /// Cannot ever be sent; let it expire.
    Drop(String),
}

async fn deliver_due(shared: &Shared) {
    let now = Timestamp::now();
    match shared.outbox.expire(now) {
        Ok(expired) => {
            for item in expired {
                tracing::warn!(
                    receiver = %item.receiver,
                    key = %item.key,
                    attempts = item.attempts,
                    last_error = item.last_error.as_deref().unwrap_or(""),
                    "notification expired undelivered"
                );
                count(shared, &item.receiver, "expired");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot expire old notifications"),
    }
    let due = match shared.outbox.due(now, shared.opts.batch) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the outbox");
            return;
        }
    };
    // One receiver's notifications go out in order; receivers in parallel,
    // so one slow SMTP server does not hold up a webhook.
    let mut per_receiver: BTreeMap<String, Vec<OutboxItem>> = BTreeMap::new();
    for item in due {
        per_receiver
            .entry(item.receiver.clone())
            .or_default()
            .push(item);
    }
    let rounds = per_receiver.into_values().map(|mut items| {
        // Stores may hand out due items by due time; within a receiver,
        // queue order is what keeps a resolution after its firing.
        items.sort_by_key(|i| i.id);
        deliver_in_order(shared, items)
    });
    futures::future::join_all(rounds).await;
    match shared.outbox.queue_length() {
        Ok(n) => {
            shared.telemetry.notification_queue_length.set(n as i64);
        }
        Err(e) => tracing::warn!(error = %e, "cannot count the outbox"),
    }
}

async fn deliver_in_order(shared: &Shared, items: Vec<OutboxItem>) {
    for item in items {
        let plan = plan(shared, &item);
        let receiver = item.receiver.as_str();
        match plan {
            Plan::Skip(why) => {
                tracing::debug!(%receiver, key = %item.key, why, "not sent");
                if let Err(e) = shared.outbox.mark_delivered(item.id, Timestamp::now()) {
                    tracing::warn!(error = %e, "cannot update the outbox");
                }
            }
            Plan::Drop(why) => {
                tracing::warn!(%receiver, key = %item.key, why = %why, "notification cannot be sent");
                if let Err(e) = shared.outbox.mark_failed(item.id, item.expires_at, &why) {
                    tracing::warn!(error = %e, "cannot update the outbox");
                }
            }
            Plan::Send(notifier, n) => {
                let limit = shared.opts.http_timeout + Duration::from_secs(30);
                let result = match tokio::time::timeout(limit, notifier.send(&n)).await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err(format!("no answer within {}s", limit.as_secs())),
                };
                match result {
                    Ok(()) => {
                        count(shared, receiver, "delivered");
                        tracing::info!(%receiver, alert = %n.alertname(), status = n.status.as_str(), key = %item.key, "notification delivered");
                        if let Err(e) = shared.outbox.mark_delivered(item.id, Timestamp::now()) {
                            tracing::warn!(error = %e, "cannot mark a notification delivered; it may be sent again");
                        }
                    }
                    Err(error) => {
                        count(shared, receiver, "failed");
                        let delay = backoff(
                            item.attempts + 1,
                            shared.opts.retry_base,
                            shared.opts.retry_max,
                        );
                        let next = Timestamp::now()
                            .checked_add(jiff::SignedDuration::try_from(delay).unwrap_or_default())
                            .unwrap_or_else(|_| Timestamp::now());
                        tracing::warn!(%receiver, key = %item.key, attempts = item.attempts + 1, %error, retry_in_s = delay.as_secs_f64(), "notification failed");
                        if let Err(e) = shared.outbox.mark_failed(item.id, next, &error) {
                            tracing::warn!(error = %e, "cannot update the outbox");
                        }
                        // Later notifications of this receiver wait, so that
                        // a resolution never overtakes its firing.
                        break;
                    }
                }
            }
        }
    }
}

fn plan(shared: &Shared, item: &OutboxItem) -> Plan {
    let n = match serde_json::from_value::<Notification>(item.payload.clone()) {
        Ok(n) => n,
        Err(e) => return Plan::Drop(format!("unreadable payload: {e}")),
    };
    let routing = lock(&shared.routing);
    let Some(r) = routing.receivers.get(&item.receiver) else {
        return Plan::Drop(format!(
            "receiver '{}' is no longer configured",
            item.receiver
        ));
    };
    match n.status {
        Status::Resolved if !r.spec.send_resolved => Plan::Skip("send_resolved is false"),
        Status::Firing
            if routing
                .closed
                .contains(&(item.receiver.clone(), n.incident.clone())) =>
        {
            Plan::Skip("resolved before it could be delivered; the resolution says it all")
        }
        _ => Plan::Send(r.notifier.clone(), Box::new(n)),
    }
}
