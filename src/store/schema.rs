//! Versioned schema of the SQLite store. `PRAGMA user_version` holds the
//! number of migration steps applied; opening a store applies the missing
//! steps in order, each in its own transaction, and refuses a store written
//! by a newer continuity.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Marks the file as a continuity store (`PRAGMA application_id`, "cont").
pub const APPLICATION_ID: i32 = 0x636f_6e74;

/// Migration steps: step `i` takes the schema from version `i` to `i + 1`.
/// Append new steps; never edit a released one.
pub const MIGRATIONS: &[&str] = &[V1, V2];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

// Raw results arrive in `results_recent` (one row each) and are packed per
// check and hour into `result_blocks` when the hour is rolled up; see
// docs/store.md for the layout and its measured size. `results_recent` is
// keyed by time first so that inserts append (a batch dirties a few pages,
// not one per check); it only holds the hours not rolled up yet, so finding
// one check's rows in it by scanning a time range is cheap.
// `check_transitions` is unused: the daemon never wrote it (only
// store_bench did). It stays rather than a migration dropping it, which
// would raise the schema version and lock older builds out of the file
// for an empty table.
const V1: &str = r#"
CREATE TABLE services (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE checks (
    id         INTEGER PRIMARY KEY,
    service_id INTEGER NOT NULL REFERENCES services (id),
    name       TEXT NOT NULL,
    UNIQUE (service_id, name)
);
CREATE TABLE reasons (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE sources (
    id     INTEGER PRIMARY KEY,
    origin TEXT NOT NULL UNIQUE
);
CREATE TABLE results_recent (
    check_id    INTEGER NOT NULL,
    ts          INTEGER NOT NULL,
    status      INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    source_id   INTEGER NOT NULL,
    detail      TEXT,
    PRIMARY KEY (ts, check_id)
) WITHOUT ROWID;
CREATE TABLE result_blocks (
    check_id INTEGER NOT NULL,
    hour     INTEGER NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (check_id, hour)
);
CREATE TABLE rollups (
    check_id INTEGER NOT NULL,
    hour     INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    sum_us   INTEGER NOT NULL,
    buckets  BLOB NOT NULL,
    PRIMARY KEY (check_id, hour)
) WITHOUT ROWID;
CREATE TABLE check_transitions (
    id       INTEGER PRIMARY KEY,
    check_id INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    state    TEXT NOT NULL,
    reason   TEXT
);
CREATE INDEX check_transitions_by_check ON check_transitions (check_id, at);
CREATE TABLE service_transitions (
    id         INTEGER PRIMARY KEY,
    service_id INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    state      TEXT NOT NULL,
    cause      TEXT
);
CREATE INDEX service_transitions_by_service ON service_transitions (service_id, at);
CREATE TABLE incidents (
    id         INTEGER PRIMARY KEY,
    service_id INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    cause      TEXT NOT NULL,
    evidence   TEXT NOT NULL,
    UNIQUE (service_id, started_at)
);
CREATE INDEX incidents_open ON incidents (service_id) WHERE ended_at IS NULL;
CREATE TABLE maintenances (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    reference   TEXT NOT NULL,
    description TEXT,
    effect      TEXT NOT NULL CHECK (effect IN ('exclude', 'mute')),
    scope_kind  TEXT NOT NULL,
    scope_value TEXT NOT NULL,
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX maintenances_by_end ON maintenances (ends_at);
CREATE TABLE runs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at        INTEGER NOT NULL,
    last_heartbeat_at INTEGER NOT NULL,
    stopped_at        INTEGER
);
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    receiver        TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'expired')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    last_error      TEXT,
    delivered_at    INTEGER
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE TABLE sla_recomputations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at    INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    config_digest TEXT NOT NULL,
    service       TEXT,
    range_from    INTEGER NOT NULL,
    range_to      INTEGER NOT NULL,
    before        TEXT NOT NULL,
    after         TEXT NOT NULL,
    who           TEXT NOT NULL
);
CREATE TABLE sla_snapshots (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    service          TEXT NOT NULL,
    sla              TEXT NOT NULL,
    period           TEXT NOT NULL,
    computed_at      INTEGER NOT NULL,
    recomputation_id INTEGER REFERENCES sla_recomputations (id),
    figures          TEXT NOT NULL
);
CREATE INDEX sla_snapshots_by_key ON sla_snapshots (service, sla, period, id);
"#;

// Cutover verification rounds (migration awareness): one per cutover of a
// service, replaced if the round is taken again.
const V2: &str = r#"
CREATE TABLE cutover_verifications (
    service   TEXT NOT NULL,
    reference TEXT NOT NULL,
    at        INTEGER NOT NULL,
    passed    INTEGER NOT NULL,
    failing   TEXT NOT NULL,
    PRIMARY KEY (service, reference)
);
"#;

/// Bring the schema of `conn` (the file at `path`) up to date with
/// `steps`.
pub fn migrate(conn: &mut Connection, path: &str, steps: &[&str]) -> Result<(), StoreError> {
    let supported = steps.len() as i64;
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > supported {
        return Err(StoreError::SchemaTooNew {
            path: path.to_string(),
            found: version,
            supported,
        });
    }
    if app_id != APPLICATION_ID {
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'",
            [],
            |r| r.get(0),
        )?;
        if app_id != 0 || tables > 0 {
            return Err(StoreError::NotContinuity {
                path: path.to_string(),
            });
        }
    }
    for (from, step) in steps.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.commit()?;
        tracing::info!(path, version = from + 1, "store schema migrated");
    }
    Ok(())
}
