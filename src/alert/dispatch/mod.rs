//! Delivers what the rules decided. [`Dispatcher::update`] runs on the
//! main loop and only hands the evaluation to the routing thread (a
//! supplier-wide outage is 10,000 changes, and the runtime thread it would
//! otherwise take also runs the scheduler); three concerns run behind it:
//!
//! - [`alertmanager`]: the firing set, posted to every Alertmanager on
//!   every change and every `resend_interval`; stateless.
//! - [`routing`]: which receiver (webhook, Slack, Teams, e-mail) hears of
//!   which change, under which incident and when (grouping); its outbox
//!   items go to the store's writer thread, never to the disk from here.
//! - [`delivery`]: sends what is on disk, one message per group, with
//!   backoff, until it is taken or expires.
//! - [`memory`]: what the disk has not taken within 10 s (full, failing)
//!   is delivered from memory meanwhile, so a full disk never stops a page.

mod alertmanager;
mod delivery;
mod memory;
mod routing;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use self::alertmanager::{AmConfig, AmUpdate};
use self::routing::{Routing, Running};
use super::config::AlertingSpec;
use super::notify;
use super::outbox::{NewItem, OutboxStore};
use super::rules::{Alert, AlertChange, AlertSet};
use crate::telemetry::{AlertLabels, NotificationLabels, Telemetry};

/// How far back the outbox history is read at start-up.
pub const HISTORY_LOOKBACK: Duration = Duration::from_secs(7 * 86400);

/// Timing of the dispatcher; the defaults suit production, tests shorten
/// them.
#[derive(Debug, Clone)]
pub struct DispatchOptions {
    /// How often the outbox is polled for due notifications (it is also
    /// woken at once when new ones reach the disk).
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
    /// Most notifications taken from the outbox per round. A group due
    /// together is one message only if it fits: 20,000 holds every alert
    /// of 10,000 services for two receivers.
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
            batch: 20_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("cannot build the HTTP client for notifications: {0}")]
    HttpClient(String),
    #[error("cannot start the alert routing thread: {0}")]
    Thread(String),
}

struct Shared {
    routing: Mutex<Routing>,
    /// The runtime the routing thread spawns its waits for the disk on.
    runtime: tokio::runtime::Handle,
    outbox: Arc<dyn OutboxStore>,
    telemetry: Arc<Telemetry>,
    http: reqwest::Client,
    opts: DispatchOptions,
    wake: Notify,
    started: Timestamp,
    firing_labels: Mutex<BTreeSet<(String, String)>>,
    /// Notifications the disk did not take in time, delivered from memory.
    memory: Mutex<memory::MemoryQueue>,
}

impl Shared {
    /// Hand notifications to the outbox without waiting for the disk. The
    /// delivery task is woken once they are stored; if they cannot be,
    /// they are offered again with the next update.
    fn queue(self: &Arc<Self>, items: Vec<NewItem>) {
        if items.is_empty() {
            return;
        }
        let mut durable = self.outbox.enqueue_all(&items);
        let shared = self.clone();
        self.runtime.spawn(async move {
            let result = match tokio::time::timeout(memory::DISK_PATIENCE, &mut durable).await {
                Ok(r) => r,
                Err(_) => {
                    // The disk is slow or full: page from memory meanwhile,
                    // and keep waiting for the rows.
                    let held = lock(&shared.memory).hold(&items);
                    tracing::warn!(
                        count = held,
                        "the store has not taken these notifications within 10s; delivering them from memory meanwhile"
                    );
                    shared.wake.notify_one();
                    durable.await
                }
            };
            match result {
                Ok(()) => {
                    lock(&shared.memory).stored(&items);
                    shared.wake.notify_one();
                }
                Err(e) => {
                    shared.telemetry.store_errors_total.inc();
                    tracing::warn!(error = %e, count = items.len(), "cannot queue notifications; delivering them from memory and retrying the store");
                    lock(&shared.memory).hold(&items);
                    shared.wake.notify_one();
                    lock(&shared.routing).unqueued.extend(items);
                }
            }
        });
    }
}

/// Work for the routing thread, in the order the main loop handed it over.
enum Job {
    Update {
        set: AlertSet,
        changes: Vec<AlertChange>,
        at: Timestamp,
    },
    Config(Box<AlertingSpec>),
}

/// The running dispatcher: feed it with [`Dispatcher::update`] after each
/// evaluation of the rules, stop it with [`Dispatcher::shutdown`].
pub struct Dispatcher {
    jobs: mpsc::Sender<Job>,
    router: std::thread::JoinHandle<()>,
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

    /// Start the Alertmanager and delivery tasks. Reads the outbox history
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
        let mut routing = Routing::new(build_receivers(spec, &http), spec.notification_ttl());
        let since = now
            .checked_sub(routing::signed(opts.history_lookback))
            .unwrap_or(Timestamp::UNIX_EPOCH);
        match outbox.history(since) {
            Ok(items) => routing.learn_history(&items),
            Err(e) => tracing::error!(
                error = %e,
                "cannot read the outbox history: alerts firing before the restart may be notified again"
            ),
        }
        let shared = Arc::new(Shared {
            routing: Mutex::new(routing),
            runtime: tokio::runtime::Handle::current(),
            outbox,
            telemetry,
            http,
            opts,
            wake: Notify::new(),
            started: now,
            firing_labels: Mutex::new(BTreeSet::new()),
            memory: Mutex::new(memory::MemoryQueue::default()),
        });
        let (am_tx, am_rx) = watch::channel(AmUpdate::default());
        let (am_config, am_config_rx) = watch::channel(AmConfig::from_spec(spec));
        let (stop, stop_rx) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(alertmanager::alertmanager_task(
                shared.clone(),
                am_rx,
                am_config_rx,
                stop_rx.clone(),
            )),
            tokio::spawn(delivery::delivery_task(shared.clone(), stop_rx)),
        ];
        let (jobs, inbox) = mpsc::channel();
        let router = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("alert-routing".into())
                .spawn(move || route_jobs(&shared, &inbox, &am_tx))
                .map_err(|e| DispatchError::Thread(e.to_string()))?
        };
        Ok(Dispatcher {
            jobs,
            router,
            am_config,
            stop,
            tasks,
        })
    }

    /// Hand over the result of one evaluation: `set` from
    /// `AlertRules::evaluate`, `changes` from `AlertRules::changes`.
    /// Returns at once: the routing thread turns the changes into outbox
    /// items, which the store's writer puts on disk before delivery sees
    /// them.
    pub fn update(&self, set: &AlertSet, changes: Vec<AlertChange>) {
        self.send(Job::Update {
            set: set.clone(),
            changes,
            // The outbox runs on the wall clock, whatever time the view
            // was for.
            at: Timestamp::now(),
        });
    }

    /// Take a reloaded configuration: receivers and Alertmanagers are
    /// rebuilt; what receivers were told is kept.
    pub fn apply_config(&self, spec: &AlertingSpec) {
        self.send(Job::Config(Box::new(spec.clone())));
        self.am_config.send_if_modified(|c| {
            let new = AmConfig::from_spec(spec);
            let changed = *c != new;
            *c = new;
            changed
        });
    }

    fn send(&self, job: Job) {
        if self.jobs.send(job).is_err() {
            tracing::error!("the alert routing thread is gone; notifications are not queued");
        }
    }

    /// Stop: one last delivery round for what is due, then the tasks end.
    /// Nothing is resolved on the way out; Alertmanager lets the alerts
    /// expire unless another instance keeps them firing.
    pub async fn shutdown(self) {
        // What was handed over is queued before the last round.
        drop(self.jobs);
        let router = self.router;
        if tokio::task::spawn_blocking(move || router.join())
            .await
            .is_err()
        {
            tracing::error!("the alert routing thread failed");
        }
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Route jobs until the dispatcher is dropped or shut down.
fn route_jobs(shared: &Arc<Shared>, inbox: &mpsc::Receiver<Job>, am_tx: &watch::Sender<AmUpdate>) {
    while let Ok(job) = inbox.recv() {
        match job {
            Job::Update { set, changes, at } => {
                publish_firing(shared, &set);
                let notes = route_update(shared, &set, &changes, at);
                am_tx.send_replace(AmUpdate { set, notes });
            }
            Job::Config(spec) => apply_receivers(shared, &spec),
        }
    }
}

/// Queue the notifications for one evaluation's changes; the notes of
/// alerts resolved with one, for Alertmanager.
fn route_update(
    shared: &Arc<Shared>,
    set: &AlertSet,
    changes: &[AlertChange],
    now: Timestamp,
) -> BTreeMap<String, String> {
    let mut notes = BTreeMap::new();
    let queued = {
        let mut routing = lock(&shared.routing);
        let mut queued: Vec<NewItem> = std::mem::take(&mut routing.unqueued)
            .into_iter()
            .filter(|i| i.expires_at > now)
            .collect();
        if !changes.is_empty() {
            routing.forget_idle_groups(now);
        }
        let all: Vec<String> = routing.receivers.keys().cloned().collect();
        for change in changes {
            if let AlertChange::Resolved {
                alert,
                note: Some(n),
                ..
            } = change
            {
                notes.insert(alert.fingerprint(), n.clone());
            }
            routing.route(change, now, &all, &mut queued);
        }
        routing.latest = Some(set.clone());
        queued
    };
    shared.queue(queued);
    notes
}

/// Rebuild the receivers from a reloaded configuration; one added by the
/// reload hears about what fires now.
fn apply_receivers(shared: &Arc<Shared>, spec: &AlertingSpec) {
    let receivers = build_receivers(spec, &shared.http);
    let queued = {
        let mut routing = lock(&shared.routing);
        let added: Vec<String> = receivers
            .keys()
            .filter(|name| !routing.receivers.contains_key(*name))
            .cloned()
            .collect();
        routing.receivers = receivers;
        routing.ttl = spec.notification_ttl();
        let now = Timestamp::now();
        let firing = routing.latest.clone().unwrap_or_default().alerts;
        let mut queued = Vec::new();
        for a in firing {
            routing.route(
                &AlertChange::Firing(Alert::clone(&a)),
                now,
                &added,
                &mut queued,
            );
        }
        queued
    };
    shared.queue(queued);
}

fn publish_firing(shared: &Shared, set: &AlertSet) {
    let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
    for a in &set.alerts {
        *counts
            .entry((a.name().to_string(), a.label("severity").to_string()))
            .or_default() += 1;
    }
    let mut seen = lock(&shared.firing_labels);
    for key in seen.iter() {
        if !counts.contains_key(key) {
            shared
                .telemetry
                .alerts_firing
                .get_or_create(&alert_labels(key))
                .set(0);
        }
    }
    for (key, n) in &counts {
        shared
            .telemetry
            .alerts_firing
            .get_or_create(&alert_labels(key))
            .set(*n);
        seen.insert(key.clone());
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

fn build_receivers(spec: &AlertingSpec, http: &reqwest::Client) -> BTreeMap<String, Running> {
    let mut out = BTreeMap::new();
    for r in spec.receivers() {
        match r.channel.notifier(http) {
            Ok(notifier) => {
                out.insert(
                    r.name.clone(),
                    Running {
                        spec: r.clone(),
                        notifier,
                    },
                );
            }
            Err(e) => tracing::error!(
                receiver = %r.name,
                error = %e,
                "receiver cannot be used; its notifications stay queued until they expire"
            ),
        }
    }
    out
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn count(shared: &Shared, receiver: &str, result: &str, n: u64) {
    shared
        .telemetry
        .notifications_total
        .get_or_create(&NotificationLabels {
            receiver: receiver.to_string(),
            result: result.to_string(),
        })
        .inc_by(n);
}
