//! The durable outbox between deciding and delivering: a notification is
//! written here first and removed from the queue only once a receiver took
//! it, so a crash, a restart or an unreachable webhook loses nothing. Its
//! unique key is what keeps a restarted monitor from notifying twice.
//!
//! Queuing never waits on the caller's thread: [`OutboxStore::enqueue_all`]
//! hands back a [`Durable`] that resolves once the rows are on disk. The
//! daemon's [`StoreOutbox`] sends them through the store's batching writer
//! thread, so a burst of notifications costs one transaction per batch
//! rather than one fsync each on the main loop. Delivery outcomes
//! ([`OutboxStore::settle`]) are written by the delivery task itself, one
//! transaction per round, on a blocking thread. [`MemoryOutbox`] is the
//! same contract in memory, for tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;

use crate::store::{JsonText, OutboxRecord, OutboxStatus, Store, StoreWriter, WriteOp};

/// Where a notification is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    Pending,
    Delivered,
    /// Gave up: not delivered before `expires_at`.
    Expired,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Delivered => "delivered",
            OutboxState::Expired => "expired",
        }
    }
}

/// One queued notification for one receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    /// Unique across the store: `{incident}:{receiver}:{firing|resolved}`.
    pub key: String,
    pub receiver: String,
    /// A [`crate::alert::notify::Notification`] as JSON; each channel
    /// renders it when it sends, so the stored form does not depend on
    /// any channel's format. Kept as text until it is sent.
    pub payload: JsonText,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub next_attempt_at: Timestamp,
    pub attempts: u32,
    pub state: OutboxState,
    pub last_error: Option<String>,
}

impl OutboxItem {
    /// `item` queued as `id`, not tried yet.
    pub fn pending(id: i64, item: &NewItem) -> OutboxItem {
        OutboxItem {
            id,
            key: item.key.clone(),
            receiver: item.receiver.clone(),
            payload: item.payload.clone(),
            created_at: item.created_at,
            expires_at: item.expires_at,
            next_attempt_at: item.due_at,
            attempts: 0,
            state: OutboxState::Pending,
            last_error: None,
        }
    }
}

/// The store could not do what was asked (disk full, database locked...).
#[derive(Debug, Clone, thiserror::Error)]
#[error("outbox store: {0}")]
pub struct OutboxError(pub String);

impl From<String> for OutboxError {
    fn from(s: String) -> Self {
        OutboxError(s)
    }
}

/// A notification to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewItem {
    /// Unique across the store: `{incident}:{receiver}:{firing|resolved}`.
    pub key: String,
    pub receiver: String,
    pub payload: JsonText,
    pub created_at: Timestamp,
    /// When it may be sent: later than `created_at` while its group
    /// waits for company (`group_wait`, `group_interval`).
    pub due_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    Delivered {
        id: i64,
        at: Timestamp,
    },
    /// `attempts` goes up by one; due again at `next_attempt_at`.
    Failed {
        id: i64,
        next_attempt_at: Timestamp,
        error: String,
    },
}

/// Resolves once the writes it stands for are on disk, or with the reason
/// they never will be.
pub type Durable = BoxFuture<'static, Result<(), OutboxError>>;

fn ready(result: Result<(), OutboxError>) -> Durable {
    Box::pin(std::future::ready(result))
}

/// Durable storage for notifications. Reads are short transactions and
/// may wait for the disk (callers on an async runtime run them on a
/// blocking thread); writes return a [`Durable`] at once. Implementations
/// must be safe to call from several tasks.
///
/// Rows must be kept (delivered or expired) at least as long as
/// [`OutboxStore::history`] is asked to look back (see
/// `dispatch::HISTORY_LOOKBACK`), since both the unique key and the history
/// are what prevent a second notification after a restart.
pub trait OutboxStore: Send + Sync {
    /// Queue a notification, due at once. Returns `false`, changing nothing,
    /// when an item with this key already exists (in any state).
    fn enqueue(
        &self,
        key: &str,
        receiver: &str,
        payload: &serde_json::Value,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool, OutboxError>;

    /// Queue notifications without waiting for the disk; an item whose key
    /// exists (in any state) is left as it is. [`OutboxStore::due`] sees
    /// the items once the returned [`Durable`] has resolved.
    fn enqueue_all(&self, items: &[NewItem]) -> Durable;

    /// Record delivery outcomes. The caller runs it on a blocking thread:
    /// implementations may write before they return, so that a crash
    /// right after a delivery does not send it again.
    fn settle(&self, outcomes: Vec<Settled>) -> Durable;

    /// Pending items whose `next_attempt_at` has come, oldest (lowest id)
    /// first, at most `limit`.
    fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxItem>, OutboxError>;

    fn mark_delivered(&self, id: i64, now: Timestamp) -> Result<(), OutboxError>;

    /// Record a failed attempt: `attempts` goes up by one, the item is due
    /// again at `next_attempt_at`.
    fn mark_failed(
        &self,
        id: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> Result<(), OutboxError>;

    /// Mark pending items past their `expires_at` as expired and return
    /// them (for metrics and the log).
    fn expire(&self, now: Timestamp) -> Result<Vec<OutboxItem>, OutboxError>;

    /// Pending items.
    fn queue_length(&self) -> Result<usize, OutboxError>;

    /// Every item created at or after `since`, in any state, oldest first;
    /// read once at start-up to learn which incidents receivers were told
    /// about before a restart.
    fn history(&self, since: Timestamp) -> Result<Vec<OutboxItem>, OutboxError>;
}

/// Delay after `attempts` failed attempts: `base`, doubling per attempt,
/// at most `max` (the dispatcher uses 5 s doubling to 10 minutes).
pub fn backoff(attempts: u32, base: Duration, max: Duration) -> Duration {
    base.checked_mul(1u32 << attempts.saturating_sub(1).min(20))
        .unwrap_or(max)
        .min(max)
}

/// The outbox in memory: for tests, and the contract a durable store must
/// follow. Share it (`Arc`) between two dispatchers to simulate a restart.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    items: Mutex<Vec<OutboxItem>>,
}

impl MemoryOutbox {
    pub fn new() -> MemoryOutbox {
        MemoryOutbox::default()
    }

    /// Every item, in any state (for tests and inspection).
    pub fn all(&self) -> Vec<OutboxItem> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<OutboxItem>> {
        // A panic elsewhere while holding the lock leaves the data usable.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `i` unless its key is known; whether it was queued.
    fn push(&self, i: &NewItem) -> bool {
        let mut items = self.lock();
        if items.iter().any(|x| x.key == i.key) {
            return false;
        }
        let id = items.last().map(|x| x.id + 1).unwrap_or(1);
        items.push(OutboxItem::pending(id, i));
        true
    }

    fn update(&self, id: i64, f: impl FnOnce(&mut OutboxItem)) -> Result<(), OutboxError> {
        let mut items = self.lock();
        let item = items
            .iter_mut()
            .find(|i| i.id == id)
            .ok_or_else(|| OutboxError(format!("no outbox item {id}")))?;
        f(item);
        Ok(())
    }
}

impl OutboxStore for MemoryOutbox {
    fn enqueue(
        &self,
        key: &str,
        receiver: &str,
        payload: &serde_json::Value,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool, OutboxError> {
        Ok(self.push(&NewItem {
            key: key.to_string(),
            receiver: receiver.to_string(),
            payload: text(payload)?,
            created_at: now,
            due_at: now,
            expires_at,
        }))
    }

    fn enqueue_all(&self, items: &[NewItem]) -> Durable {
        for i in items {
            self.push(i);
        }
        ready(Ok(()))
    }

    fn settle(&self, outcomes: Vec<Settled>) -> Durable {
        for o in outcomes {
            let result = match o {
                Settled::Delivered { id, at } => self.mark_delivered(id, at),
                Settled::Failed {
                    id,
                    next_attempt_at,
                    error,
                } => self.mark_failed(id, next_attempt_at, &error),
            };
            if let Err(e) = result {
                return ready(Err(e));
            }
        }
        ready(Ok(()))
    }

    fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxItem>, OutboxError> {
        Ok(self
            .lock()
            .iter()
            .filter(|i| i.state == OutboxState::Pending && i.next_attempt_at <= now)
            .take(limit)
            .cloned()
            .collect())
    }

    fn mark_delivered(&self, id: i64, _now: Timestamp) -> Result<(), OutboxError> {
        self.update(id, |i| {
            i.state = OutboxState::Delivered;
            i.last_error = None;
        })
    }

    fn mark_failed(
        &self,
        id: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> Result<(), OutboxError> {
        self.update(id, |i| {
            i.attempts += 1;
            i.next_attempt_at = next_attempt_at;
            i.last_error = Some(error.to_string());
        })
    }

    fn expire(&self, now: Timestamp) -> Result<Vec<OutboxItem>, OutboxError> {
        let mut out = Vec::new();
        for i in self.lock().iter_mut() {
            if i.state == OutboxState::Pending && i.expires_at <= now {
                i.state = OutboxState::Expired;
                out.push(i.clone());
            }
        }
        Ok(out)
    }

    fn queue_length(&self) -> Result<usize, OutboxError> {
        Ok(self
            .lock()
            .iter()
            .filter(|i| i.state == OutboxState::Pending)
            .count())
    }

    fn history(&self, since: Timestamp) -> Result<Vec<OutboxItem>, OutboxError> {
        Ok(self
            .lock()
            .iter()
            .filter(|i| i.created_at >= since)
            .cloned()
            .collect())
    }
}

/// The durable outbox: the daemon's store behind [`OutboxStore`]. With a
/// writer, writes join its batches; without one (tools, tests) each call
/// is its own transaction.
pub struct StoreOutbox {
    store: Arc<dyn Store>,
    writer: Option<StoreWriter>,
}

impl StoreOutbox {
    pub fn new(store: Arc<dyn Store>) -> StoreOutbox {
        StoreOutbox {
            store,
            writer: None,
        }
    }

    /// Writes go through `writer`, which commits to `store`.
    pub fn with_writer(store: Arc<dyn Store>, writer: StoreWriter) -> StoreOutbox {
        StoreOutbox {
            store,
            writer: Some(writer),
        }
    }

    fn write(&self, ops: Vec<WriteOp>) -> Durable {
        match &self.writer {
            Some(w) => {
                let ack = w.submit_acked(ops);
                Box::pin(async move {
                    match ack.await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(lost)) => Err(OutboxError(lost.to_string())),
                        Err(_) => Err(OutboxError("the store writer stopped".into())),
                    }
                })
            }
            None => ready(self.store.write_batch(&ops).map_err(store_err)),
        }
    }
}

fn item(r: OutboxRecord) -> OutboxItem {
    OutboxItem {
        id: r.id,
        key: r.idempotency_key,
        receiver: r.receiver,
        payload: r.payload,
        created_at: r.created_at,
        expires_at: r.expires_at,
        next_attempt_at: r.next_attempt_at,
        attempts: r.attempts,
        state: match r.status {
            OutboxStatus::Pending => OutboxState::Pending,
            OutboxStatus::Delivered => OutboxState::Delivered,
            OutboxStatus::Expired => OutboxState::Expired,
        },
        last_error: r.last_error,
    }
}

fn record(i: &NewItem) -> OutboxRecord {
    OutboxRecord {
        id: 0,
        idempotency_key: i.key.clone(),
        receiver: i.receiver.clone(),
        payload: i.payload.clone(),
        status: OutboxStatus::Pending,
        attempts: 0,
        next_attempt_at: i.due_at,
        created_at: i.created_at,
        expires_at: i.expires_at,
        last_error: None,
        delivered_at: None,
    }
}

fn text(payload: &serde_json::Value) -> Result<JsonText, OutboxError> {
    JsonText::of(payload).map_err(|e| OutboxError(format!("cannot encode a payload: {e}")))
}

fn store_err(e: crate::store::StoreError) -> OutboxError {
    OutboxError(e.to_string())
}

impl OutboxStore for StoreOutbox {
    fn enqueue(
        &self,
        key: &str,
        receiver: &str,
        payload: &serde_json::Value,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool, OutboxError> {
        self.store
            .outbox_enqueue(&record(&NewItem {
                key: key.to_string(),
                receiver: receiver.to_string(),
                payload: text(payload)?,
                created_at: now,
                due_at: now,
                expires_at,
            }))
            .map_err(store_err)
    }

    fn enqueue_all(&self, items: &[NewItem]) -> Durable {
        self.write(items.iter().map(|i| WriteOp::Outbox(record(i))).collect())
    }

    /// Written at once, one transaction for the whole delivery round,
    /// rather than through the writer: a delivery must be on record before
    /// the next one, and a crash in the writer's batching wait would send
    /// it again after the restart.
    fn settle(&self, outcomes: Vec<Settled>) -> Durable {
        let ops: Vec<WriteOp> = outcomes
            .into_iter()
            .map(|o| match o {
                Settled::Delivered { id, at } => WriteOp::OutboxDelivered { id, at },
                Settled::Failed {
                    id,
                    next_attempt_at,
                    error,
                } => WriteOp::OutboxFailed {
                    id,
                    error,
                    next_attempt_at,
                },
            })
            .collect();
        ready(self.store.write_batch(&ops).map_err(store_err))
    }

    fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxItem>, OutboxError> {
        Ok(self
            .store
            .outbox_due(now, limit)
            .map_err(store_err)?
            .into_iter()
            .map(item)
            .collect())
    }

    fn mark_delivered(&self, id: i64, now: Timestamp) -> Result<(), OutboxError> {
        self.store.outbox_delivered(id, now).map_err(store_err)
    }

    fn mark_failed(
        &self,
        id: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> Result<(), OutboxError> {
        self.store
            .outbox_failed(id, error, next_attempt_at)
            .map_err(store_err)
    }

    fn expire(&self, now: Timestamp) -> Result<Vec<OutboxItem>, OutboxError> {
        Ok(self
            .store
            .outbox_expire_items(now)
            .map_err(store_err)?
            .into_iter()
            .map(item)
            .collect())
    }

    fn queue_length(&self) -> Result<usize, OutboxError> {
        Ok(self.store.outbox_len().map_err(store_err)? as usize)
    }

    fn history(&self, since: Timestamp) -> Result<Vec<OutboxItem>, OutboxError> {
        Ok(self
            .store
            .outbox_history(since)
            .map_err(store_err)?
            .into_iter()
            .map(item)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn duplicate_key_is_refused_in_any_state() {
        let o = MemoryOutbox::new();
        let p = serde_json::json!({});
        assert!(o.enqueue("k", "r", &p, t(0), t(100)).unwrap());
        let id = o.due(t(0), 10).unwrap()[0].id;
        o.mark_delivered(id, t(1)).unwrap();
        assert!(!o.enqueue("k", "r", &p, t(2), t(100)).unwrap());
        assert_eq!(o.queue_length().unwrap(), 0);
    }

    #[test]
    fn failed_items_wait_for_their_next_attempt_and_then_expire() {
        let o = MemoryOutbox::new();
        o.enqueue("k", "r", &serde_json::json!({}), t(0), t(60))
            .unwrap();
        o.mark_failed(1, t(30), "refused").unwrap();
        assert!(o.due(t(10), 10).unwrap().is_empty());
        assert_eq!(o.due(t(30), 10).unwrap()[0].attempts, 1);
        assert_eq!(o.expire(t(60)).unwrap().len(), 1);
        assert!(o.due(t(61), 10).unwrap().is_empty());
    }

    #[test]
    fn an_item_waiting_for_its_group_is_not_due_before_its_time() {
        let o = MemoryOutbox::new();
        let item = NewItem {
            key: "k".into(),
            receiver: "r".into(),
            payload: JsonText::of(&serde_json::json!({})).unwrap(),
            created_at: t(0),
            due_at: t(30),
            expires_at: t(100),
        };
        futures::executor::block_on(o.enqueue_all(&[item])).unwrap();
        assert!(o.due(t(29), 10).unwrap().is_empty());
        assert_eq!(o.due(t(30), 10).unwrap().len(), 1);
    }

    #[test]
    fn backoff_doubles_from_five_seconds_to_ten_minutes() {
        let b = |n| backoff(n, Duration::from_secs(5), Duration::from_secs(600));
        assert_eq!(b(1), Duration::from_secs(5));
        assert_eq!(b(2), Duration::from_secs(10));
        assert_eq!(b(5), Duration::from_secs(80));
        assert_eq!(b(10), Duration::from_secs(600));
        assert_eq!(b(40), Duration::from_secs(600));
    }
}
