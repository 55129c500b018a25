//! Routing: which receivers hear of a change, under which incident, and
//! when their notification may go out. Each change becomes one outbox
//! item per receiver, keyed per incident, receiver and status; its due
//! time holds it back while its group waits for company (`group_wait`
//! after the group's first notification, then at most one message per
//! `group_interval`), so that delivery finds a group's notifications due
//! together and sends them as one message. What receivers were told is
//! rebuilt from the outbox at start-up, so a restarted monitor neither
//! notifies twice nor forgets to send a resolution.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::alert::notify::{Notification, Notifier, Status};
use crate::alert::outbox::{NewItem, OutboxItem};
use crate::alert::receiver::Receiver;
use crate::alert::rules::{Alert, AlertChange, AlertSet};
use crate::store::JsonText;

/// A receiver ready to send.
pub(super) struct Running {
    pub(super) spec: Receiver,
    pub(super) notifier: Arc<dyn Notifier>,
}

/// An incident a receiver was told is firing and not yet resolved.
#[derive(Debug, Clone)]
pub(super) struct OpenIncident {
    pub(super) incident: String,
    /// Shared by every receiver told of it: 10,000 alerts in an outage,
    /// about 0.9 KiB each.
    pub(super) alert: Arc<Alert>,
    /// Learnt from the outbox at start-up rather than in this run.
    pub(super) from_history: bool,
}

/// What the dispatcher knows about receivers, shared by the tick (which
/// routes changes) and the delivery task (which reads `receivers` and
/// `closed`).
pub(super) struct Routing {
    pub(super) receivers: BTreeMap<String, Running>,
    pub(super) ttl: std::time::Duration,
    /// (receiver, fingerprint) -> incident.
    pub(super) open: HashMap<(String, String), OpenIncident>,
    /// Every outbox key seen (history and this run).
    pub(super) keys: HashSet<String>,
    /// (receiver, incident) resolved: a firing still queued for it is
    /// superseded by the resolution.
    pub(super) closed: HashSet<(String, String)>,
    /// (receiver, group key) -> when the group's latest message is due.
    pub(super) groups: HashMap<(String, String), Timestamp>,
    /// Notifications the store could not take; queued again with the next
    /// update.
    pub(super) unqueued: Vec<NewItem>,
    pub(super) latest: Option<AlertSet>,
    pub(super) reconciled: bool,
}

impl Routing {
    pub(super) fn new(receivers: BTreeMap<String, Running>, ttl: std::time::Duration) -> Routing {
        Routing {
            receivers,
            ttl,
            open: HashMap::new(),
            keys: HashSet::new(),
            closed: HashSet::new(),
            groups: HashMap::new(),
            unqueued: Vec::new(),
            latest: None,
            reconciled: false,
        }
    }

    /// Rebuild what receivers were told from the outbox: incidents with a
    /// firing notification and no resolution are open.
    pub(super) fn learn_history(&mut self, items: &[OutboxItem]) {
        let mut firing: Vec<(String, Notification)> = Vec::new();
        for item in items {
            self.keys.insert(item.key.clone());
            let Ok(n) = item.payload.decode::<Notification>() else {
                continue;
            };
            match n.status {
                Status::Firing => firing.push((item.receiver.clone(), n)),
                Status::Resolved => {
                    self.closed
                        .insert((item.receiver.clone(), n.incident.clone()));
                }
            }
        }
        for (receiver, n) in firing {
            if self
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
            self.open.insert(
                (receiver, n.fingerprint.clone()),
                OpenIncident {
                    incident: n.incident,
                    alert: Arc::new(alert),
                    from_history: true,
                },
            );
        }
    }

    /// Turn one change into outbox items, added to `out`, for those of
    /// `receivers` that want it.
    pub(super) fn route(
        &mut self,
        change: &AlertChange,
        now: Timestamp,
        receivers: &[String],
        out: &mut Vec<NewItem>,
    ) {
        let alert = change.alert();
        let fp = alert.fingerprint();
        let mut shared: Option<Arc<Alert>> = None;
        for name in receivers {
            let name = name.as_str();
            let Some(r) = self.receivers.get(name) else {
                continue;
            };
            let key = (name.to_string(), fp.clone());
            match change {
                AlertChange::Firing(a) => {
                    let wants = r.spec.wants(a.severity(), &a.labels);
                    if !wants || self.open.contains_key(&key) {
                        // Already told (before a restart, or a flapping
                        // alert that never stopped firing for receivers).
                        continue;
                    }
                    let incident = self.fresh_incident(name, a);
                    let n = Notification::new(Status::Firing, &incident, name, a, None, None);
                    self.enqueue(&n, now, out);
                    self.open.insert(
                        key,
                        OpenIncident {
                            incident,
                            alert: shared.get_or_insert_with(|| Arc::new(a.clone())).clone(),
                            from_history: false,
                        },
                    );
                }
                AlertChange::Resolved {
                    alert,
                    ended_at,
                    note,
                } => {
                    let Some(open) = self.open.remove(&key) else {
                        continue;
                    };
                    self.resolve(name, open, alert, *ended_at, note.clone(), now, out);
                }
            }
        }
    }

    /// Queue the resolution of `open` for `receiver`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn resolve(
        &mut self,
        receiver: &str,
        open: OpenIncident,
        latest: &Alert,
        ended_at: Timestamp,
        note: Option<String>,
        now: Timestamp,
        out: &mut Vec<NewItem>,
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
        self.enqueue(&n, now, out);
        self.closed
            .insert((receiver.to_string(), open.incident.clone()));
    }

    /// The incident id for a new firing: fingerprint and start, with a
    /// sequence number when an incident with the same start was already
    /// resolved (an alert firing again after a maintenance window).
    fn fresh_incident(&self, receiver: &str, a: &Alert) -> String {
        let base = a.incident_id();
        let mut id = base.clone();
        let mut n = 1;
        while self.closed.contains(&(receiver.to_string(), id.clone()))
            || self
                .keys
                .contains(&outbox_key(&id, receiver, Status::Resolved))
        {
            n += 1;
            id = format!("{base}.{n}");
        }
        id
    }

    fn enqueue(&mut self, n: &Notification, now: Timestamp, out: &mut Vec<NewItem>) {
        let key = outbox_key(&n.incident, &n.receiver, n.status);
        let expires_at = now.checked_add(signed(self.ttl)).unwrap_or(now);
        let payload = match JsonText::of(n) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a notification");
                return;
            }
        };
        let due_at = self.due_at(&n.receiver, &n.labels, now);
        self.keys.insert(key.clone());
        out.push(NewItem {
            key,
            receiver: n.receiver.clone(),
            payload,
            created_at: now,
            due_at,
            expires_at,
        });
    }

    /// When a notification with `labels` for `receiver` may go out: with
    /// the group's message still waiting, in it; within `group_interval`
    /// of the group's last message, in the next one; else `group_wait`
    /// from now, in a message of its own group.
    fn due_at(
        &mut self,
        receiver: &str,
        labels: &BTreeMap<String, String>,
        now: Timestamp,
    ) -> Timestamp {
        let Some(r) = self.receivers.get(receiver) else {
            return now;
        };
        let g = &r.spec.grouping;
        let key = (receiver.to_string(), g.key(labels));
        let interval = signed(g.interval);
        let fresh = now.checked_add(signed(g.wait)).unwrap_or(now);
        let due = match self.groups.get(&key) {
            Some(&next) if next > now => next,
            Some(&last) => match last.checked_add(interval) {
                Ok(next) if next > now => next,
                _ => fresh,
            },
            None => fresh,
        };
        self.groups.insert(key, due);
        due
    }

    /// Forget groups whose last message is more than `group_interval`
    /// ago: their next notification starts a fresh group.
    pub(super) fn forget_idle_groups(&mut self, now: Timestamp) {
        let receivers = &self.receivers;
        self.groups.retain(|(receiver, _), last| {
            receivers.get(receiver).is_some_and(|r| {
                last.checked_add(signed(r.spec.grouping.interval))
                    .is_ok_and(|until| until > now)
            })
        });
    }

    /// After a restart: incidents receivers were told about before it, and
    /// not firing again by now, are over. Their resolutions go to `out`.
    pub(super) fn resolve_stale(&mut self, now: Timestamp, out: &mut Vec<NewItem>) {
        let Some(latest) = self.latest.clone() else {
            return;
        };
        self.reconciled = true;
        let firing: HashSet<String> = latest.alerts.iter().map(|a| a.fingerprint()).collect();
        let stale: Vec<(String, String)> = self
            .open
            .iter()
            .filter(|(k, o)| o.from_history && !firing.contains(&k.1))
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            let Some(open) = self.open.remove(&key) else {
                continue;
            };
            let alert = open.alert.clone();
            tracing::info!(
                receiver = %key.0,
                alert = %alert.name(),
                "resolving an incident that ended while continuity was not running"
            );
            self.resolve(
                &key.0,
                open,
                &alert,
                now,
                Some("resolved: no longer firing after continuity restarted".to_string()),
                now,
                out,
            );
        }
    }
}

pub(super) fn outbox_key(incident: &str, receiver: &str, status: Status) -> String {
    format!("{incident}:{receiver}:{}", status.as_str())
}

pub(super) fn signed(d: std::time::Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or_default()
}
