//! One daemon per store. Two daemons writing one SQLite file both ran and
//! interleaved their rows (2,530 probes left 1,666 rows); the daemon now
//! holds an exclusive advisory lock (flock) on `<store.path>.lock` for as
//! long as it runs, and a second one is refused with a clear error. The
//! lock goes with the process, also on `kill -9`, so a crash never leaves
//! a stale lock behind. Read-only commands (`continuity sla`, reports) do
//! not take it.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use super::StoreError;

/// The lock on a store, held until dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    pub path: PathBuf,
}

/// Where the lock of the store at `store` lives.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Take the store's lock, or say which daemon-wide error stops us.
pub fn lock_exclusive(store: &Path) -> Result<StoreLock, StoreError> {
    let path = lock_path(store);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Lock {
            path: path.display().to_string(),
            reason: format!("cannot open the lock file: {e}"),
        })?;
    match file.try_lock() {
        Ok(()) => Ok(StoreLock { _file: file, path }),
        Err(TryLockError::WouldBlock) => Err(StoreError::Lock {
            path: path.display().to_string(),
            reason: format!(
                "another continuity daemon is running on the store {}; stop it first, or give this one its own store.path",
                store.display()
            ),
        }),
        Err(TryLockError::Error(e)) => Err(StoreError::Lock {
            path: path.display().to_string(),
            reason: format!("cannot lock: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_store_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("continuity.db");
        let first = lock_exclusive(&store).expect("first lock");
        let err = lock_exclusive(&store).expect_err("second lock").to_string();
        assert!(err.contains("another continuity daemon"), "{err}");
        assert!(err.contains("continuity.db.lock"), "{err}");
        drop(first);
        lock_exclusive(&store).expect("lock after the first is gone");
    }
}
