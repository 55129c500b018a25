//! The in-memory fallback of the outbox. A notification is normally sent
//! only once its row is on disk; when the disk does not take it within
//! [`DISK_PATIENCE`] (a full disk, a failing one), it is delivered from
//! here meanwhile, so that a full disk never stops a page. Its row is still
//! written when space returns (the writer keeps it), and a row already
//! delivered from memory is then settled without being sent again.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;

use crate::alert::outbox::{NewItem, OutboxItem, Settled};

/// How long a notification waits for the disk before it is delivered from
/// memory: long enough for a busy disk, short next to a `group_wait`.
pub(super) const DISK_PATIENCE: Duration = Duration::from_secs(10);

/// Most notifications held in memory; beyond this the oldest are dropped
/// (and logged): an outage of 10,000 services for two receivers fits.
const CAP: usize = 20_000;

/// Notifications waiting in memory, with ids of their own (negative, so
/// they never meet an outbox row's).
#[derive(Default)]
pub(super) struct MemoryQueue {
    items: Vec<OutboxItem>,
    /// Keys held or delivered from memory: an item offered again (the
    /// routing thread retries what the store refused) is not held twice.
    seen: HashSet<String>,
    /// Keys delivered from memory whose row is not settled yet.
    delivered: HashSet<String>,
    /// Items handed out by [`MemoryQueue::due`] and not settled yet, by id.
    /// Their rows may reach the disk (and leave `items`) while they are
    /// being sent; a delivery settled then must still be remembered, or
    /// the row would be sent a second time.
    in_flight: HashMap<i64, String>,
    last_id: i64,
}

impl MemoryQueue {
    /// Hold `items` for delivery from memory; the number taken.
    pub(super) fn hold(&mut self, items: &[NewItem]) -> usize {
        let mut taken = 0;
        for i in items {
            if !self.seen.insert(i.key.clone()) {
                continue;
            }
            self.last_id -= 1;
            self.items.push(OutboxItem::pending(self.last_id, i));
            taken += 1;
        }
        if self.items.len() > CAP {
            let dropped = self.items.len() - CAP;
            tracing::error!(
                dropped,
                "too many notifications waiting in memory for the disk; the oldest are dropped"
            );
            self.items.drain(..dropped);
        }
        taken
    }

    /// The disk took these after all: their rows will be delivered.
    pub(super) fn stored(&mut self, items: &[NewItem]) {
        let keys: HashSet<&str> = items.iter().map(|i| i.key.as_str()).collect();
        self.items.retain(|i| !keys.contains(i.key.as_str()));
    }

    /// Items due at `now`; expired ones are dropped (and returned second).
    pub(super) fn due(&mut self, now: Timestamp) -> (Vec<OutboxItem>, Vec<OutboxItem>) {
        let (expired, live): (Vec<_>, Vec<_>) = std::mem::take(&mut self.items)
            .into_iter()
            .partition(|i| i.expires_at <= now);
        self.items = live;
        let due: Vec<OutboxItem> = self
            .items
            .iter()
            .filter(|i| i.next_attempt_at <= now)
            .cloned()
            .collect();
        for i in &due {
            self.in_flight.insert(i.id, i.key.clone());
        }
        (due, expired)
    }

    /// Record what became of items sent from memory.
    pub(super) fn settle(&mut self, outcomes: &[Settled]) {
        for o in outcomes {
            match o {
                Settled::Delivered { id, .. } => {
                    self.items.retain(|i| i.id != *id);
                    if let Some(key) = self.in_flight.remove(id) {
                        self.delivered.insert(key);
                    }
                }
                Settled::Failed {
                    id,
                    next_attempt_at,
                    error,
                } => {
                    self.in_flight.remove(id);
                    if let Some(i) = self.items.iter_mut().find(|i| i.id == *id) {
                        i.attempts += 1;
                        i.next_attempt_at = *next_attempt_at;
                        i.last_error = Some(error.clone());
                    }
                }
            }
        }
    }

    /// Whether the row with `key` was delivered from memory already; it
    /// then counts as delivered, once.
    pub(super) fn take_delivered(&mut self, key: &str) -> bool {
        self.delivered.remove(key)
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::JsonText;

    fn item(key: &str, due: Timestamp) -> NewItem {
        NewItem {
            key: key.into(),
            receiver: "hook".into(),
            payload: JsonText::of(&serde_json::json!({})).unwrap(),
            created_at: due,
            due_at: due,
            expires_at: due + jiff::SignedDuration::from_hours(1),
        }
    }

    #[test]
    fn a_row_stored_while_its_item_is_being_sent_is_not_sent_again() {
        let now = Timestamp::now();
        let mut q = MemoryQueue::default();
        let a = item("a:hook:firing", now);
        q.hold(std::slice::from_ref(&a));
        let (due, _) = q.due(now);
        // The disk takes the row while the message is on its way.
        q.stored(std::slice::from_ref(&a));
        q.settle(&[Settled::Delivered {
            id: due[0].id,
            at: now,
        }]);
        assert!(q.take_delivered("a:hook:firing"));
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn an_item_held_twice_is_sent_once_and_its_row_is_then_not_sent_again() {
        let now = Timestamp::now();
        let mut q = MemoryQueue::default();
        assert_eq!(q.hold(&[item("a:hook:firing", now)]), 1);
        assert_eq!(q.hold(&[item("a:hook:firing", now)]), 0);
        let (due, expired) = q.due(now);
        assert_eq!((due.len(), expired.len()), (1, 0));
        assert!(due[0].id < 0);
        q.settle(&[Settled::Delivered {
            id: due[0].id,
            at: now,
        }]);
        assert_eq!(q.len(), 0);
        assert!(q.take_delivered("a:hook:firing"));
        assert!(!q.take_delivered("a:hook:firing"));
    }

    #[test]
    fn a_failed_item_waits_for_its_retry_and_a_stored_one_leaves_memory() {
        let now = Timestamp::now();
        let mut q = MemoryQueue::default();
        q.hold(&[item("a:hook:firing", now), item("b:hook:firing", now)]);
        let (due, _) = q.due(now);
        q.settle(&[Settled::Failed {
            id: due[0].id,
            next_attempt_at: now + jiff::SignedDuration::from_mins(1),
            error: "503".into(),
        }]);
        assert_eq!(q.due(now).0.len(), 1);
        q.stored(&[item("b:hook:firing", now)]);
        assert_eq!(q.due(now).0.len(), 0);
        assert_eq!(q.len(), 1);
    }
}
