//! [`SqliteState`]: the embedded [`StateStore`], one SQLite file per config.
//!
//! The file runs in WAL mode with `synchronous=NORMAL`: a commit costs one
//! append to the log and no fsync. A process crash loses nothing; a power
//! cut can lose the last few commits but never leaves one half-applied, and
//! a lost commit only means the next sync meets those items with no link
//! or an older version, a case the planner handles anyway. Every batch is one
//! `IMMEDIATE` transaction built from cached prepared statements, so a
//! writer waits (up to the busy timeout) for another instead of failing
//! midway. A batch handed to [`StateStore::commit_soon`] is committed on a
//! thread of its own that takes the one connection along; every other
//! call, and dropping the state, takes it back first.
//!
//! Records, images and lists are stored as JSON text, readable with the
//! `sqlite3` shell; a value that no longer parses is reported as
//! [`StateError::Corrupt`]. The layout itself lives in [`schema`].

mod schema;
#[cfg(test)]
mod tests;

use crate::background::Background;
use crate::{
    encode, version_key, Batch, Conflict, Image, JournalEntry, Known, Result, Run, Seen, SeenKey,
    Side, StateError, StateStore, WriteOp,
};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::{RefCell, RefMut};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tandem_record::Record;

/// How long a call waits for another process holding the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Enough for every statement below, so none is ever re-prepared.
const STATEMENT_CACHE: usize = 64;

// Sizing, measured on 100k links committed in batches of 1,000 (see the
// `speed_of_100k_links` test). A first sync inserts links in no particular
// key order, so every batch touches about one leaf page per item in each of
// the four link indexes; larger pages, a page cache that holds those
// indexes, and fewer checkpoints together cut the CPU cost by about a third.

/// Bytes per page of a new database (SQLite's default is 4 KiB).
const PAGE_SIZE: i64 = 16 * 1024;
/// Upper bound of the page cache, in KiB; only used as the state grows.
const CACHE_KIB: i64 = 8 * 1024;
/// Pages the WAL may reach before it is copied back into the database.
const CHECKPOINT_PAGES: i64 = 4096;
/// Size the WAL file is cut back to after a checkpoint.
const WAL_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// What Tandem saw last, kept in a SQLite database.
#[derive(Debug)]
pub struct SqliteState {
    slot: RefCell<Slot>,
    path: Option<PathBuf>,
}

/// Where the connection is: here, or on the thread committing a batch
/// handed to [`StateStore::commit_soon`]. Every call takes it back first,
/// so calls happen in the order they were made, as with no thread at all.
#[derive(Debug)]
enum Slot {
    Here(Connection),
    Committing(Background<(Connection, Result<()>)>),
    /// A commit panicked and took the connection with it.
    Lost,
}

impl Slot {
    /// The connection, here again; the error of the commit that had it,
    /// if that failed.
    fn take_back(&mut self) -> Result<&mut Connection> {
        let committed = match std::mem::replace(self, Slot::Lost) {
            Slot::Committing(commit) => {
                let (conn, committed) = commit.finish();
                *self = Slot::Here(conn);
                committed
            }
            other => {
                *self = other;
                Ok(())
            }
        };
        committed?;
        match self {
            Slot::Here(conn) => Ok(conn),
            _ => Err(StateError::Corrupt(
                "the state connection was lost to a failed commit".into(),
            )),
        }
    }
}

impl SqliteState {
    /// The schema version this build reads and writes (`PRAGMA user_version`).
    pub const SCHEMA_VERSION: i64 = schema::SCHEMA_VERSION;

    /// Opens (creating it and its folders if needed) and migrates the
    /// database at `path`.
    pub fn open(path: &Path) -> Result<SqliteState> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StateError::Io {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let open_error = |source| StateError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open_error)?;
        Self::setup(conn, Some(path.to_path_buf())).map_err(|e| match e {
            StateError::Sql(source) => open_error(source),
            other => other,
        })
    }

    /// A private database that lives as long as this value (for tests and
    /// dry runs).
    pub fn in_memory() -> Result<SqliteState> {
        Self::setup(Connection::open_in_memory()?, None)
    }

    fn setup(mut conn: Connection, path: Option<PathBuf>) -> Result<SqliteState> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        if path.is_some() {
            // The page size only takes on a new, empty database, and must
            // be set before WAL mode writes the header.
            conn.pragma_update(None, "page_size", PAGE_SIZE)?;
            // journal_mode answers with the mode it ended up in; a file
            // system without shared memory keeps the old one: slower, safe.
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
        conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)?;
        conn.pragma_update(None, "journal_size_limit", WAL_LIMIT_BYTES)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::migrate(&mut conn)?;
        Ok(SqliteState {
            slot: RefCell::new(Slot::Here(conn)),
            path,
        })
    }

    /// The database file; `None` when in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The connection, once a commit started before this call is done;
    /// that commit's error, if it failed.
    fn conn(&self) -> Result<RefMut<'_, Connection>> {
        let mut slot = self.slot.borrow_mut();
        slot.take_back()?;
        Ok(RefMut::map(slot, |slot| match slot {
            Slot::Here(conn) => conn,
            _ => unreachable!("`take_back` leaves the connection here"),
        }))
    }
}

impl Drop for SqliteState {
    /// Waits for a commit still under way, so the database is left to the
    /// next user (this process or another) with no write half done and no
    /// thread still holding its lock. That commit's error is lost here: the
    /// engine asks for it with [`StateStore::committed`] at the end of
    /// every collection, so only a run already failing for another reason
    /// gets this far with a commit pending. While a panic unwinds, the
    /// commit is left to finish on its own.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = self.slot.get_mut().take_back();
        }
    }
}

/// A write transaction that takes the lock up front, so it waits for other
/// writers instead of failing once it has started writing.
fn write(conn: &mut Connection) -> Result<Transaction<'_>> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

/// Commits a batch in one transaction.
fn commit_on(conn: &mut Connection, batch: &Batch) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let tx = write(conn)?;
    write_batch(&tx, batch)?;
    // Dropping `tx` on any error above rolls the whole batch back.
    tx.commit()?;
    Ok(())
}

impl StateStore for SqliteState {
    fn links(&self, pair: &str, collection: &str) -> Result<Vec<Known>> {
        let conn = self.conn()?;
        // Served from the covering index `links_seen`: base records stay on disk.
        let mut stmt = conn.prepare_cached(
            "SELECT uid, a_id, a_version, b_id, b_version FROM links
             WHERE pair = ?1 AND collection = ?2 ORDER BY uid",
        )?;
        // Sized up front: grown by doubling, a 100k-link vector would hold
        // room for 131k (4 MB unused at the sync's peak).
        let count: i64 = conn
            .prepare_cached("SELECT count(*) FROM links WHERE pair = ?1 AND collection = ?2")?
            .query_row(params![pair, collection], |row| row.get(0))?;
        let mut links = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for link in stmt.query_map(params![pair, collection], known)? {
            links.push(link?);
        }
        Ok(links)
    }

    fn links_touching(
        &self,
        pair: &str,
        collection: &str,
        ids: [&[String]; 2],
    ) -> Result<Vec<Known>> {
        let conn = self.conn()?;
        // One lookup per id through `links_a_id` / `links_b_id` (named:
        // left to itself SQLite scans the covering `links_seen` index
        // instead, 100k entries per id), inside one read transaction so
        // every lookup sees the same snapshot.
        let tx = conn.unchecked_transaction()?;
        let mut found: HashMap<String, Known> = HashMap::new();
        for (side, ids) in [(Side::A, ids[0]), (Side::B, ids[1])] {
            if ids.is_empty() {
                continue;
            }
            let sql = match side {
                Side::A => {
                    "SELECT uid, a_id, a_version, b_id, b_version FROM links INDEXED BY links_a_id
                     WHERE pair = ?1 AND collection = ?2 AND a_id = ?3"
                }
                Side::B => {
                    "SELECT uid, a_id, a_version, b_id, b_version FROM links INDEXED BY links_b_id
                     WHERE pair = ?1 AND collection = ?2 AND b_id = ?3"
                }
            };
            let mut stmt = tx.prepare_cached(sql)?;
            for id in ids {
                let mut rows = stmt.query(params![pair, collection, id])?;
                while let Some(row) = rows.next()? {
                    let link = known(row)?;
                    found.entry(link.uid.clone()).or_insert(link);
                }
            }
        }
        tx.finish()?;
        let mut links: Vec<Known> = found.into_values().collect();
        links.sort_by(|x, y| x.uid.cmp(&y.uid));
        Ok(links)
    }

    fn link_counts(&self, pair: &str, collection: &str) -> Result<[u64; 2]> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT count(a_id), count(b_id) FROM links WHERE pair = ?1 AND collection = ?2",
        )?;
        let (a, b): (i64, i64) = stmt.query_row(params![pair, collection], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        Ok([a as u64, b as u64])
    }

    fn collections(&self, pair: &str) -> Result<Vec<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT collection FROM links WHERE pair = ?1 ORDER BY collection",
        )?;
        let collections = stmt
            .query_map([pair], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(collections)
    }

    fn bases(
        &self,
        pair: &str,
        collection: &str,
        uids: &[String],
    ) -> Result<HashMap<String, Record>> {
        let conn = self.conn()?;
        // One read transaction so every lookup sees the same snapshot.
        let tx = conn.unchecked_transaction()?;
        let mut bases = HashMap::with_capacity(uids.len());
        {
            let mut stmt = tx.prepare_cached(
                "SELECT base FROM links WHERE pair = ?1 AND collection = ?2 AND uid = ?3",
            )?;
            for uid in uids {
                let text: Option<String> = stmt
                    .query_row(params![pair, collection, uid], |row| row.get(0))
                    .optional()?;
                if let Some(text) = text {
                    let what = format!("base record of {uid} in {pair}/{collection}");
                    bases.insert(uid.clone(), from_json(&text, &what)?);
                }
            }
        }
        tx.finish()?;
        Ok(bases)
    }

    fn begin_run(&mut self, command: &str, pairs: &[String]) -> Result<i64> {
        let conn = self.conn()?;
        let pairs = encode(&pairs, "run pairs")?;
        let mut stmt = conn.prepare_cached(
            "INSERT INTO runs (command, pairs, started_at, outcome)
             VALUES (?1, ?2, ?3, 'running')",
        )?;
        Ok(stmt.insert(params![command, pairs, now()])?)
    }

    fn finish_run(&mut self, run: i64, outcome: &str) -> Result<()> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached("UPDATE runs SET finished_at = ?2, outcome = ?3 WHERE id = ?1")?;
        match stmt.execute(params![run, now(), outcome])? {
            0 => Err(StateError::NotFound {
                what: "run",
                id: run,
            }),
            _ => Ok(()),
        }
    }

    fn runs(&self, limit: usize) -> Result<Vec<Run>> {
        let conn = self.conn()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = conn.prepare_cached(
            "SELECT id, command, pairs, started_at, finished_at, outcome FROM runs
             ORDER BY id DESC LIMIT ?1",
        )?;
        let mut rows = stmt.query([limit])?;
        let mut runs = Vec::new();
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let pairs: String = row.get(2)?;
            runs.push(Run {
                id,
                command: row.get(1)?,
                pairs: from_json(&pairs, &format!("pairs of run {id}"))?,
                started_at: row.get(3)?,
                finished_at: row.get(4)?,
                outcome: row.get(5)?,
            });
        }
        Ok(runs)
    }

    fn journal_pending(&mut self, entries: &[JournalEntry]) -> Result<Vec<i64>> {
        let tx = write(self.slot.get_mut().take_back()?)?;
        let mut seqs = Vec::with_capacity(entries.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO journal (run, pair, collection, side, store, op, uid, id,
                     before, after, version_before, version_after, done, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0, ?13)",
            )?;
            for entry in entries {
                let before = opt_json(entry.before.as_ref(), "journal image")?;
                let after = opt_json(entry.after.as_ref(), "journal image")?;
                seqs.push(stmt.insert(params![
                    entry.run,
                    entry.pair,
                    entry.collection,
                    entry.side.as_str(),
                    entry.store,
                    entry.op.as_str(),
                    entry.uid,
                    entry.id,
                    before,
                    after,
                    entry.version_before,
                    entry.version_after,
                    entry.at,
                ])?);
            }
        }
        tx.commit()?;
        Ok(seqs)
    }

    fn journal(&self, run: i64) -> Result<Vec<JournalEntry>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT seq, run, pair, collection, side, store, op, uid, id, before, after,
                 version_before, version_after, done, at
             FROM journal WHERE run = ?1 ORDER BY seq",
        )?;
        let mut rows = stmt.query([run])?;
        let mut entries = Vec::new();
        while let Some(row) = rows.next()? {
            entries.push(journal_entry(row)?);
        }
        Ok(entries)
    }

    fn commit(&mut self, batch: &Batch) -> Result<()> {
        commit_on(self.slot.get_mut().take_back()?, batch)
    }

    fn commit_soon(&mut self, batch: Batch) -> Result<()> {
        let slot = self.slot.get_mut();
        slot.take_back()?;
        if batch.is_empty() {
            return Ok(());
        }
        let Slot::Here(mut conn) = std::mem::replace(slot, Slot::Lost) else {
            unreachable!("`take_back` leaves the connection here")
        };
        *slot = Slot::Committing(Background::start("tandem-state", move || {
            let committed = commit_on(&mut conn, &batch);
            (conn, committed)
        }));
        Ok(())
    }

    fn committed(&mut self) -> Result<()> {
        self.slot.get_mut().take_back().map(|_| ())
    }

    fn conflicts(&self) -> Result<Vec<Conflict>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, run, pair, collection, uid, fields, a, b, base, created_at
             FROM conflicts WHERE settled_at IS NULL ORDER BY created_at, id",
        )?;
        let mut rows = stmt.query([])?;
        let mut conflicts = Vec::new();
        while let Some(row) = rows.next()? {
            conflicts.push(conflict(row)?);
        }
        Ok(conflicts)
    }

    fn conflict(&self, id: i64) -> Result<Conflict> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, run, pair, collection, uid, fields, a, b, base, created_at
             FROM conflicts WHERE id = ?1 AND settled_at IS NULL",
        )?;
        let mut rows = stmt.query([id])?;
        match rows.next()? {
            Some(row) => conflict(row),
            None => Err(StateError::NotFound {
                what: "conflict",
                id,
            }),
        }
    }

    fn settle(&mut self, id: i64) -> Result<()> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "UPDATE conflicts SET settled_at = ?2 WHERE id = ?1 AND settled_at IS NULL",
        )?;
        match stmt.execute(params![id, now()])? {
            0 => Err(StateError::NotFound {
                what: "conflict",
                id,
            }),
            _ => Ok(()),
        }
    }

    fn token(&self, pair: &str, side: Side, collection: &str) -> Result<Option<String>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT token FROM tokens WHERE pair = ?1 AND side = ?2 AND collection = ?3",
        )?;
        Ok(stmt
            .query_row(params![pair, side.as_str(), collection], |row| row.get(0))
            .optional()?)
    }

    fn set_token(
        &mut self,
        pair: &str,
        side: Side,
        collection: &str,
        token: Option<&str>,
    ) -> Result<()> {
        let conn = self.conn()?;
        match token {
            Some(token) => {
                let mut stmt = conn.prepare_cached(
                    "INSERT INTO tokens (pair, side, collection, token) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (pair, side, collection) DO UPDATE SET token = excluded.token",
                )?;
                stmt.execute(params![pair, side.as_str(), collection, token])?;
            }
            None => {
                let mut stmt = conn.prepare_cached(
                    "DELETE FROM tokens WHERE pair = ?1 AND side = ?2 AND collection = ?3",
                )?;
                stmt.execute(params![pair, side.as_str(), collection])?;
            }
        }
        Ok(())
    }
}

/// Every write of a batch, in the order the batch lists them; the caller
/// owns the transaction.
fn write_batch(tx: &Transaction<'_>, batch: &Batch) -> Result<()> {
    let (pair, collection) = (&batch.pair, &batch.collection);

    let mut upsert = tx.prepare_cached(
        "INSERT INTO links (pair, collection, uid, a_id, a_version, b_id, b_version, base)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (pair, collection, uid) DO UPDATE SET
             a_id = excluded.a_id, a_version = excluded.a_version,
             b_id = excluded.b_id, b_version = excluded.b_version,
             base = excluded.base",
    )?;
    for (i, update) in batch.links.iter().enumerate() {
        let link = &update.link;
        let base = match batch.encoded_base(i) {
            Some(json) => std::borrow::Cow::Borrowed(json),
            None => std::borrow::Cow::Owned(encode(&update.base, "base record")?),
        };
        let (a_id, a_version) = seen_columns(link.a.as_ref());
        let (b_id, b_version) = seen_columns(link.b.as_ref());
        upsert.execute(params![
            pair, collection, link.uid, a_id, a_version, b_id, b_version, base
        ])?;
    }

    let mut forget =
        tx.prepare_cached("DELETE FROM links WHERE pair = ?1 AND collection = ?2 AND uid = ?3")?;
    for uid in &batch.forget {
        forget.execute(params![pair, collection, uid])?;
    }

    let mut done = tx.prepare_cached(
        "UPDATE journal SET id = coalesce(?2, id), version_after = ?3, after = coalesce(?4, after), done = 1
         WHERE seq = ?1",
    )?;
    for (i, (seq, id, version_after, after)) in batch.done.iter().enumerate() {
        let after = match batch.encoded_after(i) {
            Some(json) => json.map(std::borrow::Cow::Borrowed),
            None => opt_json(after.as_ref(), "journal image")?.map(std::borrow::Cow::Owned),
        };
        if done.execute(params![seq, id, version_after, after])? == 0 {
            return Err(StateError::NotFound {
                what: "journal entry",
                id: *seq,
            });
        }
    }

    // A conflict carries its own pair and collection. A newer conflict on
    // the same item replaces the open one, so the inbox never asks twice
    // about one item (the `conflicts_open` index enforces it).
    let mut replace = tx.prepare_cached(
        "UPDATE conflicts SET settled_at = ?4
         WHERE pair = ?1 AND collection = ?2 AND uid = ?3 AND settled_at IS NULL",
    )?;
    let mut add = tx.prepare_cached(
        "INSERT INTO conflicts (run, pair, collection, uid, fields, a, b, base, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for conflict in &batch.conflicts {
        let fields = encode(&conflict.fields, "conflict fields")?;
        let a = opt_json(conflict.a.as_ref(), "conflict record")?;
        let b = opt_json(conflict.b.as_ref(), "conflict record")?;
        let base = opt_json(conflict.base.as_ref(), "conflict record")?;
        replace.execute(params![
            conflict.pair,
            conflict.collection,
            conflict.uid,
            conflict.created_at
        ])?;
        add.execute(params![
            conflict.run,
            conflict.pair,
            conflict.collection,
            conflict.uid,
            fields,
            a,
            b,
            base,
            conflict.created_at
        ])?;
    }

    // Settling is idempotent here: the conflict may already have been
    // replaced or resolved, and that must not undo the rest of the batch.
    if !batch.settled.is_empty() {
        let mut settle = tx.prepare_cached(
            "UPDATE conflicts SET settled_at = ?2 WHERE id = ?1 AND settled_at IS NULL",
        )?;
        let at = now();
        for id in &batch.settled {
            settle.execute(params![id, at])?;
        }
    }
    Ok(())
}

/// A link from the columns `uid, a_id, a_version, b_id, b_version`, each
/// version read in place and kept as its key. (The schema's CHECKs keep a
/// side's id and version both set or both NULL.)
fn known(row: &Row<'_>) -> rusqlite::Result<Known> {
    let side = |id: usize| -> rusqlite::Result<Option<SeenKey>> {
        let Some(version) = row.get_ref(id + 1)?.as_str_or_null()? else {
            return Ok(None);
        };
        Ok(Some(SeenKey {
            id: row.get(id)?,
            key: version_key(version),
        }))
    };
    Ok(Known {
        uid: row.get(0)?,
        a: side(1)?,
        b: side(3)?,
    })
}

fn seen_columns(seen: Option<&Seen>) -> (Option<&str>, Option<&str>) {
    match seen {
        Some(seen) => (Some(&seen.id), Some(&seen.version)),
        None => (None, None),
    }
}

fn journal_entry(row: &Row<'_>) -> Result<JournalEntry> {
    let seq: i64 = row.get(0)?;
    let side: String = row.get(4)?;
    let op: String = row.get(6)?;
    let before: Option<String> = row.get(9)?;
    let after: Option<String> = row.get(10)?;
    let what = |column: &str| format!("`{column}` of journal entry {seq}");
    Ok(JournalEntry {
        seq,
        run: row.get(1)?,
        pair: row.get(2)?,
        collection: row.get(3)?,
        side: match side.as_str() {
            "a" => Side::A,
            "b" => Side::B,
            other => return Err(StateError::Corrupt(format!("{}: `{other}`", what("side")))),
        },
        store: row.get(5)?,
        op: match op.as_str() {
            "create" => WriteOp::Create,
            "update" => WriteOp::Update,
            "delete" => WriteOp::Delete,
            other => return Err(StateError::Corrupt(format!("{}: `{other}`", what("op")))),
        },
        uid: row.get(7)?,
        id: row.get(8)?,
        before: before
            .map(|text| from_json::<Image>(&text, &what("before")))
            .transpose()?,
        after: after
            .map(|text| from_json::<Image>(&text, &what("after")))
            .transpose()?,
        version_before: row.get(11)?,
        version_after: row.get(12)?,
        done: row.get(13)?,
        at: row.get(14)?,
    })
}

fn conflict(row: &Row<'_>) -> Result<Conflict> {
    let id: i64 = row.get(0)?;
    let what = |column: &str| format!("`{column}` of conflict {id}");
    let record = |index: usize, column: &str| -> Result<Option<Record>> {
        let text: Option<String> = row.get(index)?;
        text.map(|text| from_json(&text, &what(column))).transpose()
    };
    let fields: String = row.get(5)?;
    Ok(Conflict {
        id,
        run: row.get(1)?,
        pair: row.get(2)?,
        collection: row.get(3)?,
        uid: row.get(4)?,
        fields: from_json(&fields, &what("fields"))?,
        a: record(6, "a")?,
        b: record(7, "b")?,
        base: record(8, "base")?,
        created_at: row.get(9)?,
    })
}

fn opt_json<T: Serialize>(value: Option<&T>, what: &str) -> Result<Option<String>> {
    value.map(|value| encode(value, what)).transpose()
}

fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StateError::Corrupt(format!("{what}: {e}")))
}

/// Unix seconds; only runs and settling stamp their own time.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
