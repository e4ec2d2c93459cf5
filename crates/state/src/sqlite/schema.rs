//! The SQLite schema and its migrations: the ordered list of steps that
//! bring any older state database up to the version this Tandem writes.
//!
//! The version lives in `PRAGMA user_version`. Each step runs in its own
//! transaction together with the bump of that number, so a database is
//! always at exactly one known version. Steps are only ever appended: a
//! released step never changes, because databases in the field already ran
//! it.

use crate::{Result, StateError};
use rusqlite::{Connection, TransactionBehavior};

/// Migration `n` (1-based) is `MIGRATIONS[n - 1]`.
const MIGRATIONS: &[&str] = &[MIGRATION_1, MIGRATION_2];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Links, runs, the journal, the conflicts inbox and change-feed tokens.
///
/// `links` keeps the base record in the same row, but `links_seen` covers
/// everything else, so loading the links of a collection (the first step of
/// every sync) reads only that index and never the larger base records.
/// The planner pairs listed items with links by either side's id, hence the
/// two id indexes.
const MIGRATION_1: &str = "
CREATE TABLE links (
    pair       TEXT NOT NULL,
    collection TEXT NOT NULL,
    uid        TEXT NOT NULL,
    a_id       TEXT,
    a_version  TEXT,
    b_id       TEXT,
    b_version  TEXT,
    base       TEXT NOT NULL,
    PRIMARY KEY (pair, collection, uid),
    CHECK ((a_id IS NULL) = (a_version IS NULL)),
    CHECK ((b_id IS NULL) = (b_version IS NULL))
);
CREATE INDEX links_seen ON links (pair, collection, uid, a_id, a_version, b_id, b_version);
CREATE INDEX links_a_id ON links (pair, collection, a_id);
CREATE INDEX links_b_id ON links (pair, collection, b_id);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    command     TEXT NOT NULL,
    pairs       TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    outcome     TEXT NOT NULL
);

CREATE TABLE journal (
    seq            INTEGER PRIMARY KEY,
    run            INTEGER NOT NULL REFERENCES runs (id),
    pair           TEXT NOT NULL,
    collection     TEXT NOT NULL,
    side           TEXT NOT NULL CHECK (side IN ('a', 'b')),
    store          TEXT NOT NULL,
    op             TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
    uid            TEXT NOT NULL,
    id             TEXT,
    before         TEXT,
    after          TEXT,
    version_before TEXT,
    version_after  TEXT,
    done           INTEGER NOT NULL CHECK (done IN (0, 1)),
    at             INTEGER NOT NULL
);
CREATE INDEX journal_run ON journal (run);

CREATE TABLE conflicts (
    id         INTEGER PRIMARY KEY,
    run        INTEGER NOT NULL REFERENCES runs (id),
    pair       TEXT NOT NULL,
    collection TEXT NOT NULL,
    uid        TEXT NOT NULL,
    fields     TEXT NOT NULL,
    a          TEXT,
    b          TEXT,
    base       TEXT,
    created_at INTEGER NOT NULL,
    settled_at INTEGER
);
-- The inbox holds at most one open conflict per item.
CREATE UNIQUE INDEX conflicts_open ON conflicts (pair, collection, uid)
    WHERE settled_at IS NULL;

CREATE TABLE tokens (
    pair       TEXT NOT NULL,
    side       TEXT NOT NULL CHECK (side IN ('a', 'b')),
    collection TEXT NOT NULL,
    token      TEXT NOT NULL,
    PRIMARY KEY (pair, side, collection)
);
";

/// Records and values are written as compact JSON from here on (text as a
/// bare string, a list as a bare array; see `tandem_record::Value`), which
/// builds before it cannot read: the tables stay as they are, and the
/// version moves so that such a build refuses the database as too new
/// instead of failing on its records. Both forms read.
const MIGRATION_2: &str = "-- compact JSON values; no change to the tables";

/// Brings the database up to [`SCHEMA_VERSION`], one transaction per step.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StateError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let applied = usize::try_from(found).map_err(|_| {
        StateError::Corrupt(format!("schema version {found} is not a Tandem version"))
    })?;
    for (version, sql) in (1..).zip(MIGRATIONS).skip(applied) {
        // IMMEDIATE takes the write lock up front, so two processes opening
        // the same new database cannot both run a step: the second waits,
        // then sees the bumped version below and skips it.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if user_version(&tx)? >= version {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

pub(crate) fn user_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}
