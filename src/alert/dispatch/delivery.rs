//! Delivery: the task that sends what the outbox holds. It sees an item
//! only once the item is on disk (it reads the store, never the routing
//! queue), sends each receiver's due items grouped by the receiver's
//! `group_by` as one message per group, and records the outcome with
//! exponential backoff until an item is taken or expires. Store calls run
//! on blocking threads: the runtime they would stall also runs the
//! scheduler and the main loop.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use super::routing::signed;
use super::{Shared, count, lock, stopped};
use crate::alert::notify::{Message, Notification, Notifier, Status};
use crate::alert::outbox::{OutboxError, OutboxItem, OutboxStore, Settled, backoff};

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
    // One receiver's messages go out in order; receivers in parallel, so
    // one slow SMTP server does not hold up a webhook.
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
        deliver_receiver(shared, items)
    });
    let settled: Vec<Settled> = futures::future::join_all(rounds)
        .await
        .into_iter()
        .flatten()
        .collect();
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
            shared.telemetry.notification_queue_length.set(n as i64);
        }
        Err(e) => tracing::warn!(error = %e, "cannot count the outbox"),
    }
}

/// One group's due items for one receiver, and what becomes of them.
struct Outgoing {
    sender: Arc<dyn Notifier>,
    message: Message,
    ids: Vec<(i64, u32)>,
}

/// One group's notifications while they are gathered.
struct Gathered {
    key: String,
    labels: BTreeMap<String, String>,
    notifications: Vec<Notification>,
    /// (outbox id, attempts so far) of each notification.
    ids: Vec<(i64, u32)>,
}

/// Send one receiver's due items, one message per group, groups in the
/// order of their oldest item; the outcomes to record.
async fn deliver_receiver(shared: &Shared, items: Vec<OutboxItem>) -> Vec<Settled> {
    let mut settled = Vec::new();
    let receiver = items[0].receiver.clone();
    for out in plan(shared, &receiver, items, &mut settled) {
        let limit = shared.opts.http_timeout + Duration::from_secs(30);
        let result = match tokio::time::timeout(limit, out.sender.send(&out.message)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {}s", limit.as_secs())),
        };
        let m = &out.message;
        let sent = m.notifications.len() as u64;
        match result {
            Ok(()) => {
                count(shared, &receiver, "delivered", sent);
                tracing::info!(%receiver, group = %m.group_key, alerts = sent, status = m.status().as_str(), key = %m.idempotency_key, "notification delivered");
                let at = Timestamp::now();
                settled.extend(out.ids.iter().map(|&(id, _)| Settled::Delivered { id, at }));
            }
            Err(error) => {
                count(shared, &receiver, "failed", sent);
                let attempts = out.ids.iter().map(|&(_, a)| a).max().unwrap_or(0) + 1;
                let delay = backoff(attempts, shared.opts.retry_base, shared.opts.retry_max);
                let next = Timestamp::now()
                    .checked_add(signed(delay))
                    .unwrap_or_else(|_| Timestamp::now());
                tracing::warn!(%receiver, group = %m.group_key, key = %m.idempotency_key, attempts, %error, retry_in_s = delay.as_secs_f64(), "notification failed");
                // The whole group is due again at the same time, so it
                // stays one message.
                settled.extend(out.ids.iter().map(|&(id, _)| Settled::Failed {
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

/// Sort due items into messages under the lock; items with nothing to
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
    let mut groups: Vec<Gathered> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for mut item in items {
        // Taken, not copied: a flush of an outage holds 10,000s of these.
        let payload = std::mem::take(&mut item.payload);
        let n = match serde_json::from_value::<Notification>(payload) {
            Ok(n) => n,
            Err(e) => {
                let why = format!("unreadable payload: {e}");
                tracing::warn!(%receiver, key = %item.key, why = %why, "notification cannot be sent");
                settled.push(Settled::Failed {
                    id: item.id,
                    next_attempt_at: item.expires_at,
                    error: why,
                });
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
            groups.push(Gathered {
                key,
                labels: r.spec.grouping.group_labels(&n.labels),
                notifications: Vec::new(),
                ids: Vec::new(),
            });
            groups.len() - 1
        });
        groups[at].notifications.push(n);
        groups[at].ids.push((item.id, item.attempts));
    }
    groups
        .into_iter()
        .map(|g| Outgoing {
            sender: r.notifier.clone(),
            message: Message::new(receiver, g.key, g.labels, g.notifications),
            ids: g.ids,
        })
        .collect()
}
