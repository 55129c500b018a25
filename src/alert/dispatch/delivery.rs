//! Delivery: the task that sends what the outbox holds. It sees an item
//! only once the item is on disk (it reads the store, never the routing
//! queue), sends each receiver's due items grouped by the receiver's
//! `group_by` as one message per group, and records the outcome with
//! exponential backoff until an item is taken or expires. Payloads stay
//! JSON text until their group is sent: grouping reads only status,
//! incident and labels, so a flush of 20,000 due items holds their text
//! and one group's decoded notifications at a time. Store calls and
//! decoding run on blocking threads: the runtime they would stall also
//! runs the scheduler.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use super::routing::signed;
use super::{Shared, count, lock, stopped};
use crate::alert::notify::{Message, Notification, Notifier, Status};
use crate::alert::outbox::{OutboxError, OutboxItem, OutboxStore, Settled, backoff};
use crate::store::JsonText;

const SETTLE_LIMIT: Duration = Duration::from_secs(60);

pub(super) async fn delivery_task(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
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
fn reconcile(shared: &Arc<Shared>) {
    let now = Timestamp::now();
    let queued = {
        let mut routing = lock(&shared.routing);
        if routing.reconciled
            || now.duration_since(shared.started) < signed(shared.opts.reconcile_after)
        {
            return;
        }
        let mut out = Vec::new();
        routing.resolve_stale(now, &mut out);
        out
    };
    shared.queue(queued);
}

/// Run a store call on a blocking thread.
async fn blocking<T: Send + 'static>(
    shared: &Shared,
    f: impl FnOnce(&dyn OutboxStore) -> Result<T, OutboxError> + Send + 'static,
) -> Result<T, OutboxError> {
    let outbox = shared.outbox.clone();
    tokio::task::spawn_blocking(move || f(outbox.as_ref()))
        .await
        .unwrap_or_else(|e| Err(OutboxError(format!("outbox call failed: {e}"))))
}

async fn deliver_due(shared: &Arc<Shared>) {
    let now = Timestamp::now();
    // First what waits in memory: the store calls below may be slow while
    // the disk is the trouble.
    deliver_from_memory(shared, now).await;
    match blocking(shared, move |o| o.expire(now)).await {
        Ok(expired) => {
            for item in expired {
                tracing::warn!(
                    receiver = %item.receiver,
                    key = %item.key,
                    attempts = item.attempts,
                    last_error = item.last_error.as_deref().unwrap_or(""),
                    "notification expired undelivered"
                );
                count(shared, &item.receiver, "expired", 1);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot expire old notifications"),
    }
    let batch = shared.opts.batch;
    let due = match blocking(shared, move |o| o.due(now, batch)).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the outbox");
            return;
        }
    };
    // Rows already delivered from memory while the disk was away are
    // settled without being sent again.
    let mut settled_early = Vec::new();
    let due: Vec<OutboxItem> = {
        let mut memory = lock(&shared.memory);
        due.into_iter()
            .filter(|i| {
                let sent = memory.take_delivered(&i.key);
                if sent {
                    settled_early.push(Settled::Delivered { id: i.id, at: now });
                }
                !sent
            })
            .collect()
    };
    // One receiver's messages go out in order; receivers in parallel, so
    // one slow SMTP server does not hold up a webhook.
    let rounds = by_receiver(due).into_values().map(|mut items| {
        // Stores may hand out due items by due time; within a receiver,
        // queue order is what keeps a resolution after its firing.
        items.sort_by_key(|i| i.id);
        deliver_receiver(shared, items)
    });
    let mut settled: Vec<Settled> = futures::future::join_all(rounds)
        .await
        .into_iter()
        .flatten()
        .collect();
    settled.extend(settled_early);
    // The next round reads the outbox again: it must see these outcomes,
    // or it would send the same items twice.
    // A disk that does not come back within a minute must not keep the
    // dispatcher from shutting down.
    if !settled.is_empty() {
        let outbox = shared.outbox.clone();
        let settle = async move {
            tokio::task::spawn_blocking(move || outbox.settle(settled))
                .await
                .map_err(|e| OutboxError(format!("outbox call failed: {e}")))?
                .await
        };
        let recorded = tokio::time::timeout(SETTLE_LIMIT, settle).await;
        let error = match recorded {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("not on disk within {}s", SETTLE_LIMIT.as_secs())),
        };
        if let Some(error) = error {
            shared.telemetry.store_errors_total.inc();
            tracing::warn!(%error, "cannot record delivery outcomes; they may be sent again");
        }
    }
    match blocking(shared, |o| o.queue_length()).await {
        Ok(n) => {
            let held = lock(&shared.memory).len();
            shared
                .telemetry
                .notification_queue_length
                .set((n + held) as i64);
        }
        Err(e) => tracing::warn!(error = %e, "cannot count the outbox"),
    }
}

/// Items by receiver.
fn by_receiver(items: Vec<OutboxItem>) -> BTreeMap<String, Vec<OutboxItem>> {
    let mut per_receiver: BTreeMap<String, Vec<OutboxItem>> = BTreeMap::new();
    for item in items {
        per_receiver
            .entry(item.receiver.clone())
            .or_default()
            .push(item);
    }
    per_receiver
}

/// Send what waits in memory because the disk did not take it, grouped
/// and retried as the outbox's rows are; outcomes stay in memory.
async fn deliver_from_memory(shared: &Arc<Shared>, now: Timestamp) {
    let (due, expired) = lock(&shared.memory).due(now);
    for item in expired {
        tracing::warn!(receiver = %item.receiver, key = %item.key, "notification held in memory expired undelivered");
        count(shared, &item.receiver, "expired", 1);
    }
    if due.is_empty() {
        return;
    }
    let rounds = by_receiver(due).into_values().map(|mut items| {
        // Ids count down in memory: the oldest has the highest.
        items.sort_by_key(|i| std::cmp::Reverse(i.id));
        deliver_receiver(shared, items)
    });
    let settled: Vec<Settled> = futures::future::join_all(rounds)
        .await
        .into_iter()
        .flatten()
        .collect();
    lock(&shared.memory).settle(&settled);
}

/// One group's due items for one receiver, still as stored text: a
/// flush holds every due item of every receiver (20,000 in an outage), and
/// only the group being sent is decoded.
struct Outgoing {
    sender: Arc<dyn Notifier>,
    key: String,
    labels: BTreeMap<String, String>,
    /// (outbox id, attempts so far, expiry) of each notification.
    ids: Vec<(i64, u32, Timestamp)>,
    payloads: Vec<JsonText>,
}

/// What grouping needs of a stored notification; serde skips the rest of
/// the text without building it.
#[derive(serde::Deserialize)]
struct Head {
    status: Status,
    incident: String,
    labels: BTreeMap<String, String>,
}

impl Outgoing {
    /// The message, and the notifications that cannot be read (settled
    /// failed, as an unreadable item is in [`plan`]); `ids` is left with
    /// the notifications the message holds.
    fn message(&mut self, receiver: &str) -> (Message, Vec<Settled>) {
        let mut unreadable = Vec::new();
        let mut ids = Vec::with_capacity(self.ids.len());
        let mut notifications = Vec::with_capacity(self.ids.len());
        let payloads = std::mem::take(&mut self.payloads);
        for (&(id, attempts, expires_at), payload) in self.ids.iter().zip(payloads) {
            match payload.decode::<Notification>() {
                Ok(n) => {
                    notifications.push(n);
                    ids.push((id, attempts, expires_at));
                }
                Err(e) => unreadable.push(unreadable_item(receiver, id, expires_at, &e)),
            }
        }
        self.ids = ids;
        let key = std::mem::take(&mut self.key);
        let labels = std::mem::take(&mut self.labels);
        (
            Message::new(receiver, key, labels, notifications),
            unreadable,
        )
    }
}

/// An item that will never be readable stays on record, due again only
/// when it expires.
fn unreadable_item(
    receiver: &str,
    id: i64,
    expires_at: Timestamp,
    e: &serde_json::Error,
) -> Settled {
    let why = format!("unreadable payload: {e}");
    tracing::warn!(%receiver, id, why = %why, "notification cannot be sent");
    Settled::Failed {
        id,
        next_attempt_at: expires_at,
        error: why,
    }
}

/// Send one receiver's due items, one message per group, groups in the
/// order of their oldest item; the outcomes to record. Sorting and
/// decoding run on blocking threads: a flush of an outage decodes 20,000
/// notifications, and the runtime thread also runs the scheduler.
async fn deliver_receiver(shared: &Arc<Shared>, items: Vec<OutboxItem>) -> Vec<Settled> {
    let receiver = items[0].receiver.clone();
    let planned = {
        let (shared, receiver) = (shared.clone(), receiver.clone());
        tokio::task::spawn_blocking(move || {
            let mut settled = Vec::new();
            let groups = plan(&shared, &receiver, items, &mut settled);
            (groups, settled)
        })
        .await
    };
    let Ok((groups, mut settled)) = planned else {
        tracing::error!(%receiver, "cannot sort due notifications into groups; they stay due");
        return Vec::new();
    };
    for mut out in groups {
        let built = {
            let receiver = receiver.clone();
            tokio::task::spawn_blocking(move || {
                let (message, unreadable) = out.message(&receiver);
                (out, message, unreadable)
            })
            .await
        };
        let Ok((out, m, unreadable)) = built else {
            tracing::error!(%receiver, "cannot decode a group's notifications; they stay due");
            break;
        };
        settled.extend(unreadable);
        if m.notifications.is_empty() {
            continue;
        }
        let limit = shared.opts.http_timeout + Duration::from_secs(30);
        let result = match tokio::time::timeout(limit, out.sender.send(&m)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {}s", limit.as_secs())),
        };
        let sent = m.notifications.len() as u64;
        match result {
            Ok(()) => {
                count(shared, &receiver, "delivered", sent);
                tracing::info!(%receiver, group = %m.group_key, alerts = sent, status = m.status().as_str(), key = %m.idempotency_key, "notification delivered");
                let at = Timestamp::now();
                settled.extend(
                    out.ids
                        .iter()
                        .map(|&(id, _, _)| Settled::Delivered { id, at }),
                );
            }
            Err(error) => {
                count(shared, &receiver, "failed", sent);
                let attempts = out.ids.iter().map(|&(_, a, _)| a).max().unwrap_or(0) + 1;
                let delay = backoff(attempts, shared.opts.retry_base, shared.opts.retry_max);
                let next = Timestamp::now()
                    .checked_add(signed(delay))
                    .unwrap_or_else(|_| Timestamp::now());
                tracing::warn!(%receiver, group = %m.group_key, key = %m.idempotency_key, attempts, %error, retry_in_s = delay.as_secs_f64(), "notification failed");
                // The whole group is due again at the same time, so it
                // stays one message.
                settled.extend(out.ids.iter().map(|&(id, _, _)| Settled::Failed {
                    id,
                    next_attempt_at: next,
                    error: error.clone(),
                }));
                // Later messages of this receiver wait, so that a
                // resolution does not overtake its firing in this round.
                break;
            }
        }
    }
    settled
}

/// Sort due items into groups under the lock; items with nothing to
/// send are settled at once (a resolution for a receiver without
/// `send_resolved`, a firing already resolved, an unreadable payload).
fn plan(
    shared: &Shared,
    receiver: &str,
    items: Vec<OutboxItem>,
    settled: &mut Vec<Settled>,
) -> Vec<Outgoing> {
    let routing = lock(&shared.routing);
    let Some(r) = routing.receivers.get(receiver) else {
        let why = format!("receiver '{receiver}' is no longer configured");
        for item in items {
            tracing::warn!(%receiver, key = %item.key, why = %why, "notification cannot be sent");
            settled.push(Settled::Failed {
                id: item.id,
                next_attempt_at: item.expires_at,
                error: why.clone(),
            });
        }
        return Vec::new();
    };
    // Groups in the order of their oldest item, and where each key is in
    // that list.
    let mut groups: Vec<Outgoing> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for item in items {
        let n = match item.payload.decode::<Head>() {
            Ok(n) => n,
            Err(e) => {
                settled.push(unreadable_item(receiver, item.id, item.expires_at, &e));
                continue;
            }
        };
        let skip = match n.status {
            Status::Resolved if !r.spec.send_resolved => Some("send_resolved is false"),
            Status::Firing
                if routing
                    .closed
                    .contains(&(receiver.to_string(), n.incident.clone())) =>
            {
                Some("resolved before it could be delivered; the resolution says it all")
            }
            _ => None,
        };
        if let Some(why) = skip {
            tracing::debug!(%receiver, key = %item.key, why, "not sent");
            settled.push(Settled::Delivered {
                id: item.id,
                at: Timestamp::now(),
            });
            continue;
        }
        let key = r.spec.grouping.key(&n.labels);
        let at = *index.entry(key.clone()).or_insert_with(|| {
            groups.push(Outgoing {
                sender: r.notifier.clone(),
                key,
                labels: r.spec.grouping.group_labels(&n.labels),
                ids: Vec::new(),
                payloads: Vec::new(),
            });
            groups.len() - 1
        });
        groups[at]
            .ids
            .push((item.id, item.attempts, item.expires_at));
        groups[at].payloads.push(item.payload);
    }
    groups
}
