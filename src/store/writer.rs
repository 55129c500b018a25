//! The batching writer: probes, the engine and alerting hand their writes to
//! [`StoreWriter::submit`], which never waits for the disk. One thread
//! commits them in batches; when the disk fails it keeps the writes in
//! memory (up to a cap), counts the errors and retries with backoff, so the
//! daemon recovers when the disk does.
//!
//! A caller that must know when its writes are durable (the alert outbox:
//! a notification may be sent only once it is on disk) uses
//! [`StoreWriter::submit_acked`]: the writes join the same batches, and
//! the answer comes when their transaction has committed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use jiff::Timestamp;
use tokio::sync::watch;

use super::{BatchStore, StoreError, WriteOp};

/// Tuning of the writer.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Most writes per transaction.
    pub max_batch: usize,
    /// How long the first write of a batch may wait for company.
    pub max_wait: Duration,
    /// Writes kept in memory while the disk fails; beyond this the oldest
    /// are dropped (and counted).
    pub backlog_cap: usize,
    /// Roll-ups and pruning, run on the writer thread between batches.
    pub maintenance: Option<Maintenance>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            max_batch: 2_000,
            max_wait: Duration::from_millis(100),
            backlog_cap: 1_000_000,
            maintenance: None,
        }
    }
}

impl WriterOptions {
    /// Defaults plus roll-ups and pruning with the configured retentions,
    /// by the daemon's clock.
    pub fn for_config(config: &crate::config::StoreConfig, clock: Clock) -> WriterOptions {
        let mut maintenance = Maintenance::new(config.retention, config.rollup_retention);
        maintenance.clock = clock;
        WriterOptions {
            maintenance: Some(maintenance),
            ..WriterOptions::default()
        }
    }
}

/// Housekeeping the writer runs: roll up completed hours every `every`,
/// and prune once an hour.
#[derive(Debug, Clone)]
pub struct Maintenance {
    pub every: Duration,
    /// An hour is rolled up this long after it ends, so that probes still
    /// running at the hour's end usually land before it is packed (later
    /// ones are merged in at the next roll-up).
    pub grace: Duration,
    pub prune_every: Duration,
    pub retention: Duration,
    pub rollup_retention: Duration,
    /// How often the store's file is checked to still be the one opened
    /// (one `stat`).
    pub identity_every: Duration,
    /// What "now" is for roll-ups and retention (`every` and the other
    /// periods are real time).
    pub clock: Clock,
}

impl Maintenance {
    pub fn new(retention: Duration, rollup_retention: Duration) -> Maintenance {
        Maintenance {
            every: Duration::from_secs(300),
            grace: Duration::from_secs(300),
            prune_every: Duration::from_secs(3600),
            retention,
            rollup_retention,
            identity_every: Duration::from_secs(10),
            clock: Clock::system(),
        }
    }
}

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Handle to the writer thread. Clone it freely; the thread drains what
/// was submitted and stops when the last handle is dropped.
#[derive(Clone)]
pub struct StoreWriter {
    shared: Arc<Shared>,
    _last: Arc<LastHandle>,
}

struct Shared {
    queue: Mutex<Queue>,
    cap: usize,
    /// A batch this long is committed without waiting for more.
    batch: usize,
    wake: Condvar,
    /// Sequence number up to which every write is committed (or dropped).
    done: watch::Receiver<u64>,
    in_flight: AtomicUsize,
    errors: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    committed: AtomicU64,
    /// The last commit's error while the store keeps failing; `None`
    /// once a commit succeeds.
    failing: Mutex<Option<String>>,
    /// What happened to the store's file, while it is not the one opened.
    file_lost: Mutex<Option<String>>,
    /// Times the file was found deleted or replaced.
    file_replaced: AtomicU64,
}

/// What became of writes submitted with [`StoreWriter::submit_acked`]:
/// `Ok` once all of them are committed, [`WriteLost`] when one was dropped
/// or refused (or the writer thread died).
pub type WriteAck = tokio::sync::oneshot::Receiver<Result<(), WriteLost>>;

/// Acknowledged writes that will never be on disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("writes not stored: {0}")]
pub struct WriteLost(pub String);

/// A caller waiting for writes `first..=last` (sequence numbers).
struct Waiter {
    first: u64,
    last: u64,
    lost: Option<String>,
    answer: tokio::sync::oneshot::Sender<Result<(), WriteLost>>,
}

impl Waiter {
    fn covers(&self, seq: u64) -> bool {
        (self.first..=self.last).contains(&seq)
    }
}

struct Queue {
    ops: VecDeque<WriteOp>,
    /// Callers of `submit_acked` not answered yet, in sequence order.
    waiters: VecDeque<Waiter>,
    /// Writes submitted so far; the front of `ops` is number
    /// `submitted - ops.len() + 1`.
    submitted: u64,
    flush_wanted: bool,
    closing: bool,
    /// Set while dropping for the cap, so the warning is logged once per
    /// outage rather than per write.
    dropping: bool,
}

/// Dropped with the last `StoreWriter`: tells the thread to finish.
struct LastHandle(Arc<Shared>);

impl Drop for LastHandle {
    fn drop(&mut self) {
        self.0.lock().closing = true;
        self.0.wake.notify_all();
    }
}

impl Queue {
    /// Write `seq` will never be stored: tell whoever waits for it.
    fn lose(&mut self, seq: u64, why: &str) {
        for w in self.waiters.iter_mut().filter(|w| w.covers(seq)) {
            w.lost.get_or_insert_with(|| why.to_string());
        }
    }

    /// Answer the waiters whose writes are all done up to `seq`.
    fn acknowledge(&mut self, seq: u64) {
        while self.waiters.front().is_some_and(|w| w.last <= seq) {
            let Some(w) = self.waiters.pop_front() else {
                break;
            };
            let _ = w.answer.send(match w.lost {
                None => Ok(()),
                Some(why) => Err(WriteLost(why)),
            });
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StoreWriter {
    /// Start the writer thread on `store`.
    pub fn spawn(
        store: Arc<dyn BatchStore>,
        options: WriterOptions,
    ) -> std::io::Result<StoreWriter> {
        let (done_tx, done_rx) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                ops: VecDeque::new(),
                waiters: VecDeque::new(),
                submitted: 0,
                flush_wanted: false,
                closing: false,
                dropping: false,
            }),
            cap: options.backlog_cap.max(1),
            batch: options.max_batch.max(1),
            wake: Condvar::new(),
            done: done_rx,
            in_flight: AtomicUsize::new(0),
            errors: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            failing: Mutex::new(None),
            file_lost: Mutex::new(None),
            file_replaced: AtomicU64::new(0),
        });
        let thread = Thread {
            store,
            options,
            shared: shared.clone(),
            done: done_tx,
        };
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || thread.run())?;
        Ok(StoreWriter {
            _last: Arc::new(LastHandle(shared.clone())),
            shared,
        })
    }

    /// Queue a write. Never waits for the disk.
    pub fn submit(&self, op: WriteOp) {
        self.submit_all(std::iter::once(op));
    }

    /// Queue several writes, in order.
    pub fn submit_all(&self, ops: impl IntoIterator<Item = WriteOp>) {
        let q = self.shared.lock();
        self.push(q, ops);
    }

    /// Queue writes like [`StoreWriter::submit_all`] (never waiting for
    /// the disk) and learn through the returned [`WriteAck`] when they are
    /// committed.
    pub fn submit_acked(&self, ops: Vec<WriteOp>) -> WriteAck {
        let (answer, ack) = tokio::sync::oneshot::channel();
        let mut q = self.shared.lock();
        if ops.is_empty() {
            let _ = answer.send(Ok(()));
            return ack;
        }
        let first = q.submitted + 1;
        let last = q.submitted + ops.len() as u64;
        q.waiters.push_back(Waiter {
            first,
            last,
            lost: None,
            answer,
        });
        self.push(q, ops);
        ack
    }

    fn push(&self, mut q: MutexGuard<'_, Queue>, ops: impl IntoIterator<Item = WriteOp>) {
        let cap = self.shared.cap;
        let was_empty = q.ops.is_empty();
        for op in ops {
            q.ops.push_back(op);
            q.submitted += 1;
            if q.ops.len() > cap {
                let seq = q.submitted - q.ops.len() as u64 + 1;
                q.lose(seq, "dropped: the store backlog was full");
                q.ops.pop_front();
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                if !q.dropping {
                    q.dropping = true;
                    tracing::error!(
                        cap,
                        "store backlog full: dropping the oldest unwritten results until the disk recovers"
                    );
                }
            }
        }
        // Only an idle thread (empty queue) or a full batch needs waking: a
        // thread gathering a batch wakes at its deadline anyway, and a
        // wake-up per write would be a thousand context switches a second
        // at 10,000 checks.
        let wake = was_empty || q.ops.len() >= self.shared.batch;
        drop(q);
        if wake {
            self.shared.wake.notify_one();
        }
    }

    /// Wait until every write submitted before this call is committed
    /// (or dropped for the backlog cap). Waits as long as the disk fails;
    /// put a timeout around it at shutdown. Returns early only if the
    /// writer thread died, which is logged.
    pub async fn flush(&self) {
        let target = {
            let mut q = self.shared.lock();
            q.flush_wanted = true;
            q.submitted
        };
        self.shared.wake.notify_one();
        let mut done = self.shared.done.clone();
        if done.wait_for(|&d| d >= target).await.is_err() {
            tracing::error!("store writer thread is gone; writes may be lost");
        }
    }

    /// [`StoreWriter::flush`] for threads outside the async runtime.
    /// Do not call from async code.
    pub fn flush_blocking(&self) {
        futures::executor::block_on(self.flush());
    }

    /// Writes submitted but not committed yet.
    pub fn backlog(&self) -> usize {
        self.shared.lock().ops.len() + self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Failed commits and maintenance runs (`continuity_store_errors_total`).
    pub fn errors_total(&self) -> u64 {
        self.shared.errors.load(Ordering::Relaxed)
    }

    /// Writes dropped because the backlog was full.
    pub fn dropped_total(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Writes the store refused as invalid (not a disk problem), dropped
    /// so they cannot block the ones behind them.
    pub fn rejected_total(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }

    /// Writes committed.
    pub fn committed_total(&self) -> u64 {
        self.shared.committed.load(Ordering::Relaxed)
    }

    /// Times the store's file was found deleted or replaced
    /// (`continuity_store_file_replaced_total`).
    pub fn file_replaced_total(&self) -> u64 {
        self.shared.file_replaced.load(Ordering::Relaxed)
    }

    /// Whether the store takes writes, for `/readyz`; it does not keep
    /// the writer thread alive.
    pub fn health(&self) -> StoreHealth {
        StoreHealth(self.shared.clone())
    }
}

/// Whether the store takes writes, as the writer last found.
#[derive(Clone)]
pub struct StoreHealth(Arc<Shared>);

impl StoreHealth {
    /// The error of the last commit, while commits keep failing, or what
    /// happened to the store's file.
    pub fn failing(&self) -> Option<String> {
        let lost = self
            .0
            .file_lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        lost.clone().or_else(|| {
            self.0
                .failing
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        })
    }
}

struct Thread {
    store: Arc<dyn BatchStore>,
    options: WriterOptions,
    shared: Arc<Shared>,
    done: watch::Sender<u64>,
}

impl Thread {
    fn run(self) {
        let mut next_maintenance = Instant::now();
        let mut next_prune = Instant::now();
        let mut next_identity = Instant::now();
        loop {
            let Some((batch, last_seq)) = self.next_batch(next_maintenance.min(next_identity))
            else {
                return;
            };
            if let Some(m) = &self.options.maintenance
                && Instant::now() >= next_identity
            {
                self.check_file();
                next_identity = Instant::now() + m.identity_every;
            }
            if !batch.is_empty() {
                let first_seq = last_seq + 1 - batch.len() as u64;
                self.commit(batch, first_seq);
                self.shared.in_flight.store(0, Ordering::Relaxed);
                self.done.send_replace(last_seq);
                self.shared.lock().acknowledge(last_seq);
            }
            if let Some(m) = &self.options.maintenance
                && Instant::now() >= next_maintenance
            {
                let prune = Instant::now() >= next_prune;
                self.maintain(m, prune);
                next_maintenance = Instant::now() + m.every;
                if prune {
                    next_prune = Instant::now() + m.prune_every;
                }
            }
        }
    }

    /// The next batch and the sequence number of its last write; an empty
    /// batch when maintenance is due; `None` when closing with nothing left.
    fn next_batch(&self, maintenance_at: Instant) -> Option<(Vec<WriteOp>, u64)> {
        let o = &self.options;
        let mut q = self.shared.lock();
        while q.ops.is_empty() {
            if q.closing {
                return None;
            }
            if o.maintenance.is_some() {
                let now = Instant::now();
                if now >= maintenance_at {
                    return Some((Vec::new(), 0));
                }
                q = self
                    .shared
                    .wake
                    .wait_timeout(q, maintenance_at - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            } else {
                q = self
                    .shared
                    .wake
                    .wait(q)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        // Give a lone write a moment to gather company: one commit (and
        // fsync) per batch rather than per write.
        let deadline = Instant::now() + o.max_wait;
        while q.ops.len() < o.max_batch && !q.flush_wanted && !q.closing {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            q = self
                .shared
                .wake
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let n = q.ops.len().min(o.max_batch.max(1));
        let batch: Vec<WriteOp> = q.ops.drain(..n).collect();
        // A burst (start-up, an outage of many services, a disk that was
        // away) leaves the queue with room for all of it; give that back.
        if q.ops.capacity() > 4 * o.max_batch && q.ops.len() < q.ops.capacity() / 4 {
            let keep = q.ops.len().max(o.max_batch);
            q.ops.shrink_to(keep);
        }
        let last_seq = q.submitted - q.ops.len() as u64;
        if q.ops.is_empty() {
            q.flush_wanted = false;
        }
        self.shared.in_flight.store(batch.len(), Ordering::Relaxed);
        Some((batch, last_seq))
    }

    /// Commit `batch`, retrying while the failure is transient. A write
    /// the store refuses outright is found and dropped, so one bad write
    /// cannot hold back everything behind it.
    fn commit(&self, mut batch: Vec<WriteOp>, mut first_seq: u64) {
        let mut backoff = BACKOFF_START;
        let mut failing = false;
        while !batch.is_empty() {
            match self.store.write_batch(&batch) {
                Ok(()) => {
                    self.committed(batch.len(), failing);
                    return;
                }
                Err(e) if e.is_transient() => {
                    self.shared.errors.fetch_add(1, Ordering::Relaxed);
                    *self
                        .shared
                        .failing
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
                    tracing::warn!(
                        error = %e,
                        pending = batch.len(),
                        retry_in = ?backoff,
                        "store write failed; keeping the writes in memory and retrying"
                    );
                    failing = true;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(e) => {
                    self.shared.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, "store refused a batch; writing it one by one");
                    let before = batch.len();
                    batch = self.isolate(batch, first_seq);
                    first_seq += (before - batch.len()) as u64;
                }
            }
        }
    }

    /// Write `batch` one write at a time, dropping the ones the store
    /// refuses. Stops at a transient error and returns what is left.
    fn isolate(&self, batch: Vec<WriteOp>, first_seq: u64) -> Vec<WriteOp> {
        let mut rest = batch.into_iter();
        let mut seq = first_seq;
        while let Some(op) = rest.next() {
            match self.store.write_batch(std::slice::from_ref(&op)) {
                Ok(()) => self.committed(1, false),
                Err(e) if e.is_transient() => {
                    return std::iter::once(op).chain(rest).collect();
                }
                Err(e) => {
                    self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                    self.shared
                        .lock()
                        .lose(seq, &format!("refused by the store: {e}"));
                    tracing::error!(error = %e, write = ?op, "store refused a write; dropped it");
                }
            }
            seq += 1;
        }
        Vec::new()
    }

    fn committed(&self, n: usize, after_failure: bool) {
        self.shared.committed.fetch_add(n as u64, Ordering::Relaxed);
        if after_failure {
            *self
                .shared
                .failing
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
        }
        let was_dropping = std::mem::replace(&mut self.shared.lock().dropping, false);
        if after_failure || was_dropping {
            tracing::info!(
                dropped_total = self.shared.dropped.load(Ordering::Relaxed),
                "store writes succeed again"
            );
        }
    }

    /// Count and log (once per change) the store's file deleted or
    /// replaced under us; `/readyz` says it until it is back.
    fn check_file(&self) {
        let found = self.store.check_file().err();
        let mut lost = self
            .shared
            .file_lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match (&found, lost.is_some()) {
            (Some(e), false) => {
                self.shared.file_replaced.fetch_add(1, Ordering::Relaxed);
                tracing::error!("{e}");
            }
            (None, true) => tracing::info!("the store file is back"),
            _ => {}
        }
        *lost = found;
    }

    fn maintain(&self, m: &Maintenance, prune: bool) {
        let now = m.clock.now();
        let grace = i64::try_from(m.grace.as_millis()).unwrap_or(i64::MAX);
        let before =
            Timestamp::from_millisecond(now.as_millisecond().saturating_sub(grace)).unwrap_or(now);
        let result: Result<(), StoreError> = (|| {
            let hours = self.store.roll_up(before)?;
            if hours > 0 {
                tracing::debug!(hours, "rolled up completed hours");
            }
            if prune {
                let report = self.store.prune(now, m.retention, m.rollup_retention)?;
                tracing::debug!(?report, "pruned the store");
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.shared.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "store maintenance failed; retrying at the next round");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{JsonText, NotificationStore, OutboxRecord, OutboxStatus, SqliteStore};

    fn notification(key: &str) -> WriteOp {
        let now = Timestamp::now();
        WriteOp::Outbox(OutboxRecord {
            id: 0,
            idempotency_key: key.to_string(),
            receiver: "hook".to_string(),
            // A megabyte: the write must grow the file, which is what a
            // full disk refuses.
            payload: JsonText::of(&serde_json::json!({ "pad": "x".repeat(1 << 20) })).unwrap(),
            status: OutboxStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
            expires_at: now,
            last_error: None,
            delivered_at: None,
        })
    }

    fn temp_store() -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("continuity.db")).unwrap();
        (dir, Arc::new(store))
    }

    #[test]
    fn an_acknowledged_write_is_on_disk_when_the_acknowledgement_comes() {
        let (_dir, store) = temp_store();
        let writer = StoreWriter::spawn(store.clone(), WriterOptions::default()).unwrap();
        store.simulate_disk_full(true);
        let mut ack = writer.submit_acked(vec![notification("a"), notification("b")]);
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            ack.try_recv().is_err(),
            "acknowledged while the disk is full"
        );
        assert_eq!(store.outbox_len().unwrap(), 0);
        store.simulate_disk_full(false);
        assert_eq!(futures::executor::block_on(ack).unwrap(), Ok(()));
        assert_eq!(store.outbox_len().unwrap(), 2);
    }

    #[test]
    fn a_write_dropped_for_the_backlog_cap_is_acknowledged_as_lost() {
        let (_dir, store) = temp_store();
        let options = WriterOptions {
            max_batch: 1,
            backlog_cap: 2,
            ..WriterOptions::default()
        };
        let writer = StoreWriter::spawn(store.clone(), options).unwrap();
        store.simulate_disk_full(true);
        let kept = writer.submit_acked(vec![notification("a")]);
        std::thread::sleep(Duration::from_millis(200));
        // "a" is in flight; three more overflow a backlog of two.
        let lost = writer.submit_acked(vec![
            notification("b"),
            notification("c"),
            notification("d"),
        ]);
        store.simulate_disk_full(false);
        assert_eq!(futures::executor::block_on(kept).unwrap(), Ok(()));
        let answer = futures::executor::block_on(lost).unwrap();
        assert!(
            answer.as_ref().is_err_and(|e| e.0.contains("backlog")),
            "{answer:?}"
        );
        assert_eq!(store.outbox_len().unwrap(), 3);
    }
}
