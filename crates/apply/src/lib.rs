//! Runs the writes a plan decided on, one chunk of items at a time, the
//! only place where Tandem changes a store.
//!
//! For each chunk: every write is first journaled as pending (with the
//! item's before-image), then made with the version the plan expects; what
//! the writes mean for the state gathers in [`Unsettled`]. Every few
//! thousand writes (and at the end) [`settle`] flushes both stores and then
//! one state [`Batch`] records the new links, the finished journal entries
//! and any conflicts. A crash anywhere
//! leaves each item either as it was or written with its outcome re-derived
//! on the next run (a create is found again by its UID, an update shows as
//! the same change on both sides, a delete as gone on both), so a rerun
//! converges without duplicates.
//!
//! An item whose write fails with `PreconditionFailed` changed under us:
//! nothing is overwritten, its link is not advanced, and it is handed back
//! for planning again. Any other failure is reported with store, item and
//! reason, and the rest of the chunk goes on.

mod echo;
mod undo;

pub use echo::Echoes;
pub use undo::{undo_run, UndoReport};

use futures_util::{stream, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tandem_plan::{Entry, ItemPlan, Outcome, Write};
use tandem_record::{Record, Side};
use tandem_state::{
    Background, Batch, Conflict, Image, JournalEntry, Link, LinkUpdate, Seen, StateError,
    StateStore, WriteOp,
};
use tandem_store::{ErrorKind, Item, NewItem, Raw, Started, Store, Written};

/// The two stores of a pair and their names in the config.
#[derive(Clone, Copy)]
pub struct Sides<'a> {
    pub a: &'a dyn Store,
    pub b: &'a dyn Store,
    pub a_name: &'a str,
    pub b_name: &'a str,
}

impl<'a> Sides<'a> {
    pub fn store(&self, side: Side) -> &'a dyn Store {
        match side {
            Side::A => self.a,
            Side::B => self.b,
        }
    }

    pub fn name(&self, side: Side) -> &'a str {
        match side {
            Side::A => self.a_name,
            Side::B => self.b_name,
        }
    }
}

/// Where a chunk is applied.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub run: i64,
    pub pair: &'a str,
    pub collection: &'a str,
    pub sides: Sides<'a>,
}

/// The items fetched for a chunk, by side and UID.
pub type Fetched = HashMap<(Side, String), Item>;

/// One item that could not be synced; the rest of the run went on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The store's name in the config.
    pub store: String,
    pub collection: String,
    /// The item's id in that store (a file name, an href) or its UID.
    pub item: String,
    pub reason: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.collection.is_empty() {
            write!(f, "{}: {}: {}", self.store, self.item, self.reason)
        } else {
            write!(
                f,
                "{}/{}: {}: {}",
                self.store, self.collection, self.item, self.reason
            )
        }
    }
}

/// What a chunk did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Writes made, per side: `[a, b]`.
    pub created: [u64; 2],
    pub updated: [u64; 2],
    pub deleted: [u64; 2],
    /// Items sent to the conflicts inbox.
    pub conflicts: u64,
    pub failures: Vec<Failure>,
    /// UIDs whose item changed between planning and writing.
    pub replan: Vec<String>,
}

impl Report {
    pub fn add(&mut self, other: Report) {
        for i in 0..2 {
            self.created[i] += other.created[i];
            self.updated[i] += other.updated[i];
            self.deleted[i] += other.deleted[i];
        }
        self.conflicts += other.conflicts;
        self.failures.extend(other.failures);
        self.replan.extend(other.replan);
    }

    pub fn writes(&self) -> u64 {
        self.created
            .iter()
            .chain(&self.updated)
            .chain(&self.deleted)
            .sum()
    }
}

fn index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A testing knob: `TANDEM_CRASH_AFTER_WRITES=N` aborts the process right
/// after its Nth store write, before the state records it, so tests can
/// check that a rerun converges.
fn crash_point() {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    static LIMIT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let limit = LIMIT.get_or_init(|| {
        std::env::var("TANDEM_CRASH_AFTER_WRITES")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(limit) = limit {
        if WRITES.fetch_add(1, Ordering::SeqCst) + 1 >= *limit {
            std::process::abort();
        }
    }
}

pub(crate) fn image(item: &Item) -> Image {
    Image {
        record: item.record.clone(),
        raw: item.raw.as_ref().map(|r| r.text.clone()),
        media_type: item.raw.as_ref().map(|r| r.media_type.clone()),
    }
}

pub(crate) fn raw_of(image: &Image) -> Option<Raw> {
    match (&image.raw, &image.media_type) {
        (Some(text), Some(media_type)) => Some(Raw {
            media_type: media_type.clone(),
            text: text.clone(),
        }),
        _ => None,
    }
}

fn journal_entry(
    ctx: &Context<'_>,
    plan: &ItemPlan,
    write: &Write,
    fetched: &Fetched,
) -> JournalEntry {
    let side = write.side();
    let current = fetched.get(&(side, plan.uid.clone()));
    let (op, id, before, after, version_before) = match write {
        // A create's after-image is the record it writes, journaled with
        // its outcome (see `InFlight::finish`): the pending entry is then
        // small, and the image is written once.
        Write::Create { .. } => (WriteOp::Create, None, None, None, None),
        Write::Update {
            id,
            version,
            changes,
            ..
        } => {
            let after = current.map(|c| {
                let mut r = c.record.clone();
                r.apply(changes);
                r
            });
            (
                WriteOp::Update,
                Some(id.clone()),
                current.map(image),
                after,
                Some(version.clone()),
            )
        }
        Write::Delete { id, version, .. } => (
            WriteOp::Delete,
            Some(id.clone()),
            current.map(image),
            None,
            Some(version.clone()),
        ),
    };
    JournalEntry {
        seq: 0,
        run: ctx.run,
        pair: ctx.pair.to_string(),
        collection: ctx.collection.to_string(),
        side,
        store: ctx.sides.name(side).to_string(),
        op,
        uid: plan.uid.clone(),
        id,
        before,
        after: after.map(|record| Image {
            record,
            raw: None,
            media_type: None,
        }),
        version_before,
        version_after: None,
        done: false,
        at: now(),
    }
}

/// Makes one write; returns where the item now is (`None` for a delete).
async fn write_one(
    ctx: &Context<'_>,
    plan: &ItemPlan,
    write: &Write,
    fetched: &Fetched,
) -> Result<Option<Written>, tandem_store::Error> {
    let store = ctx.sides.store(write.side());
    match write {
        Write::Create { side, record } => {
            // Copy the source's own text when it is the same record, so
            // nothing the source holds beyond the mapped fields is lost.
            let raw = fetched
                .get(&(side.other(), plan.uid.clone()))
                .filter(|src| src.record.same_content(record))
                .and_then(|src| src.raw.clone());
            let item = NewItem {
                record: record.clone(),
                raw,
            };
            store.create(ctx.collection, &item).await.map(Some)
        }
        Write::Update {
            side,
            id,
            version,
            changes,
        } => {
            let current = fetched.get(&(*side, plan.uid.clone())).ok_or_else(|| {
                tandem_store::Error::new(
                    ErrorKind::NotFound,
                    "item was not fetched before its update",
                )
                .with_id(id.clone())
            })?;
            store
                .update(ctx.collection, current, version, changes)
                .await
                .map(Some)
        }
        Write::Delete { id, version, .. } => store
            .delete(ctx.collection, id, version)
            .await
            .map(|()| None),
    }
}

fn seen_of(current: Option<&tandem_plan::Current>) -> Option<Seen> {
    current.map(|c| Seen {
        id: c.id.clone(),
        version: c.version.clone(),
    })
}

/// A chunk's plans, read by its writes while they run and by
/// [`InFlight::finish`] afterwards.
struct Chunk {
    entries: Vec<Entry>,
    plans: Vec<ItemPlan>,
    fetched: Fetched,
    open_conflicts: HashMap<String, i64>,
    /// Every write, as (item, index in its plan's writes), in plan order.
    pending: Vec<(usize, usize)>,
    /// The journal sequence number of each pending write.
    seqs: Vec<i64>,
    /// The id each pending write names (to report a failed one).
    journal_ids: Vec<Option<String>>,
}

impl Chunk {
    fn write(&self, at: usize) -> (&ItemPlan, &Write) {
        let (item, write) = self.pending[at];
        let plan = &self.plans[item];
        (plan, &plan.writes[write])
    }
}

/// The outcomes of one item's writes, in order, with the index of its
/// first write in `Chunk::pending`.
type ItemOutcomes = (usize, Vec<Result<Option<Written>, tandem_store::Error>>);

/// A chunk whose writes are under way: journaled as pending and handed to
/// the stores, their outcomes not yet taken. The caller may plan the next
/// chunk meanwhile; a store that writes on its own threads goes on writing
/// while nobody awaits it.
#[must_use = "a chunk's outcomes are only recorded by `finish`"]
pub struct InFlight<'a> {
    ctx: Context<'a>,
    chunk: Arc<Chunk>,
    writes: Started<'a, Vec<ItemOutcomes>>,
}

/// Applies one chunk of item plans: journals every write as pending (with
/// the item's before-image), then starts the writes, each with the version
/// the plan saw; [`InFlight::finish`] takes their outcomes.
///
/// `entries` and `plans` are parallel. `open_conflicts` maps the UIDs of this
/// collection's open inbox entries to their ids, so an item that now syncs
/// settles its conflict.
pub async fn begin_chunk<'a>(
    ctx: &Context<'a>,
    entries: Vec<Entry>,
    plans: Vec<ItemPlan>,
    fetched: Fetched,
    open_conflicts: HashMap<String, i64>,
    state: &mut dyn StateStore,
) -> Result<InFlight<'a>, StateError> {
    let ctx = *ctx;
    // 1. Journal every write as pending, before making any.
    let mut pending = Vec::new();
    let mut journal: Vec<JournalEntry> = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        for (w, write) in plan.writes.iter().enumerate() {
            pending.push((i, w));
            journal.push(journal_entry(&ctx, plan, write, &fetched));
        }
    }
    let seqs = if journal.is_empty() {
        Vec::new()
    } else {
        state.journal_pending(&journal)?
    };
    // Only the ids are needed from here on (to name a failed write).
    let journal_ids: Vec<Option<String>> = journal.into_iter().map(|e| e.id).collect();
    let chunk = Arc::new(Chunk {
        entries,
        plans,
        fetched,
        open_conflicts,
        pending,
        seqs,
        journal_ids,
    });

    // 2. Start the writes: an item's writes one after another (its later
    //    writes skipped once one failed), up to the stores' concurrency of
    //    items at once. Outcomes are taken in plan order, so reports and
    //    state read the same however the writes interleaved.
    let in_flight = Side::BOTH
        .iter()
        .map(|side| ctx.sides.store(*side).concurrent_writes())
        .min()
        .unwrap_or(1)
        .max(1);
    let mut groups = Vec::new();
    let mut at = 0;
    while at < chunk.pending.len() {
        let item = chunk.pending[at].0;
        let len = chunk.pending[at..]
            .iter()
            .take_while(|(i, _)| *i == item)
            .count();
        groups.push((at, len));
        at += len;
    }
    let shared = Arc::clone(&chunk);
    let writes = Started::start(
        stream::iter(groups)
            .map(move |(first, len)| {
                let chunk = Arc::clone(&shared);
                async move {
                    let mut results = Vec::with_capacity(len);
                    for at in first..first + len {
                        let (plan, write) = chunk.write(at);
                        let result = write_one(&ctx, plan, write, &chunk.fetched).await;
                        if result.is_ok() {
                            crash_point();
                        }
                        let stop = result.is_err();
                        results.push(result);
                        if stop {
                            break;
                        }
                    }
                    (first, results)
                }
            })
            .buffered(in_flight)
            .collect::<Vec<_>>(),
    )
    .await;
    Ok(InFlight { ctx, chunk, writes })
}

impl InFlight<'_> {
    /// Waits for the chunk's writes and takes their outcomes: the report,
    /// and for items whose writes all succeeded, what the state is to
    /// record (added to `unsettled`, recorded by [`settle`] once the stores
    /// are flushed); where each write left its item is added to `echoes`.
    pub async fn finish(
        self,
        unsettled: &mut Unsettled,
        echoes: &mut Echoes,
    ) -> Result<Report, StateError> {
        let InFlight { ctx, chunk, writes } = self;
        // The writes' future is gone after this, and with it its hold on
        // the chunk.
        let outcomes = writes.finish().await;
        let mut report = Report::default();
        let mut batch = Batch::new(ctx.pair, ctx.collection);
        let mut written: HashMap<(usize, Side), Option<Written>> = HashMap::new();
        let mut failed = vec![false; chunk.plans.len()];
        for (first, results) in outcomes {
            for (offset, result) in results.into_iter().enumerate() {
                let at = first + offset;
                let (plan, write) = chunk.write(at);
                let item = chunk.pending[at].0;
                let seq = chunk.seqs[at];
                let side = write.side();
                match result {
                    Ok(result) => {
                        let s = index(side);
                        match write {
                            Write::Create { .. } => report.created[s] += 1,
                            Write::Update { .. } => report.updated[s] += 1,
                            Write::Delete { .. } => report.deleted[s] += 1,
                        }
                        let deleted = match write {
                            Write::Delete { id, .. } => Some(id.as_str()),
                            _ => None,
                        };
                        echoes.record(side, deleted, result.as_ref());
                        let after = match write {
                            Write::Create { record, .. } => Some(Image {
                                record: record.clone(),
                                raw: None,
                                media_type: None,
                            }),
                            _ => None,
                        };
                        batch.done.push((
                            seq,
                            result.as_ref().map(|w| w.id.clone()),
                            result.as_ref().map(|w| w.version.clone()),
                            after,
                        ));
                        written.insert((item, side), result);
                    }
                    Err(err) => {
                        failed[item] = true;
                        if err.kind == ErrorKind::PreconditionFailed {
                            tracing::info!(uid = %plan.uid, "changed during the sync; planning again");
                            report.replan.push(plan.uid.clone());
                        } else {
                            let id = err
                                .id
                                .clone()
                                .or_else(|| chunk.journal_ids[at].clone())
                                .unwrap_or_else(|| plan.uid.clone());
                            report.failures.push(Failure {
                                store: ctx.sides.name(side).to_string(),
                                collection: ctx.collection.to_string(),
                                item: id,
                                reason: format!(
                                    "{} failed: {}: {}",
                                    write_name(write),
                                    err.kind.as_str(),
                                    err.message
                                ),
                            });
                        }
                    }
                }
            }
        }

        // 3. Record outcomes for items whose writes all succeeded; they reach
        //    the state when `settle` has made the writes durable. (The writes
        //    are done, so the chunk is no longer shared.)
        let Chunk {
            entries,
            plans,
            fetched,
            open_conflicts,
            ..
        } = Arc::try_unwrap(chunk)
            .unwrap_or_else(|_| unreachable!("the writes' future, the only other holder, is gone"));
        for (i, (plan, entry)) in plans.into_iter().zip(&entries).enumerate() {
            if failed[i] {
                continue;
            }
            match plan.outcome {
                Outcome::Keep => {}
                Outcome::Link { base } => {
                    let seen = |side: Side| match written.get(&(i, side)) {
                        Some(Some(w)) => Some(Seen {
                            id: w.id.clone(),
                            version: w.version.clone(),
                        }),
                        Some(None) => None,
                        None => seen_of(entry.side(side)),
                    };
                    batch.links.push(LinkUpdate {
                        link: Link {
                            uid: plan.uid.clone(),
                            a: seen(Side::A),
                            b: seen(Side::B),
                        },
                        base: Record {
                            modified: None,
                            ..base
                        },
                    });
                    if let Some(id) = open_conflicts.get(&plan.uid) {
                        batch.settled.push(*id);
                    }
                }
                Outcome::Forget => {
                    batch.forget.push(plan.uid.clone());
                    if let Some(id) = open_conflicts.get(&plan.uid) {
                        batch.settled.push(*id);
                    }
                }
                Outcome::Conflict { fields } => {
                    report.conflicts += 1;
                    let record = |side: Side| {
                        fetched
                            .get(&(side, plan.uid.clone()))
                            .map(|i| i.record.clone())
                    };
                    batch.conflicts.push(Conflict {
                        id: 0,
                        run: ctx.run,
                        pair: ctx.pair.to_string(),
                        collection: ctx.collection.to_string(),
                        uid: plan.uid.clone(),
                        fields: fields.clone(),
                        a: record(Side::A),
                        b: record(Side::B),
                        base: entry.base.clone(),
                        created_at: now(),
                    });
                }
            }
        }
        for side in Side::BOTH {
            if written.keys().any(|(_, s)| *s == side) {
                unsettled.touched[index(side)] = true;
            }
        }
        unsettled.writes += written.len() as u64;
        unsettled.absorb(batch);
        Ok(report)
    }
}

/// Outcomes of writes already made but not yet recorded in the state.
///
/// Chunks add to it; [`settle`] flushes the stores they wrote to and then
/// commits everything in one state transaction. Settling every few thousand
/// writes rather than every chunk keeps durable flushes (a `syncfs` per
/// vdir) few, while a crash still loses only state that the next run
/// re-derives.
#[derive(Debug, Default)]
pub struct Unsettled {
    batch: Option<Batch>,
    touched: [bool; 2],
    /// Writes made since the last settle.
    pub writes: u64,
}

impl Unsettled {
    fn absorb(&mut self, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        match &mut self.batch {
            None => self.batch = Some(batch),
            Some(b) => {
                b.links.extend(batch.links);
                b.forget.extend(batch.forget);
                b.done.extend(batch.done);
                b.conflicts.extend(batch.conflicts);
                b.settled.extend(batch.settled);
            }
        }
    }

    /// Items whose outcome waits to be recorded (links, forgotten links,
    /// conflicts), writes or not: a first sync that only links identical
    /// items writes nothing, yet its links must not pile up in memory.
    pub fn items(&self) -> usize {
        self.batch
            .as_ref()
            .map_or(0, |b| b.links.len() + b.forget.len() + b.conflicts.len())
    }

    /// True when nothing waits to be recorded.
    pub fn is_empty(&self) -> bool {
        self.batch.is_none() && self.writes == 0
    }
}

/// Makes the writes behind `unsettled` durable, then records them. When a
/// flush fails nothing is recorded (the next run re-derives those items)
/// and the failure is returned for the report.
pub async fn settle(
    ctx: &Context<'_>,
    unsettled: &mut Unsettled,
    state: &mut dyn StateStore,
) -> Result<Vec<Failure>, StateError> {
    unsettled.begin(ctx).await.finish(state).await
}

impl Unsettled {
    /// Starts making the writes so far durable and takes them over: the
    /// stores' flushes start now (on their own threads, both sides at once)
    /// while the caller goes on writing, and [`Settling::finish`] records
    /// them once the flushes are done. Writes made after this call belong
    /// to the next batch, so a batch is only ever recorded after a flush
    /// that began after all its writes.
    pub async fn begin<'a>(&mut self, ctx: &Context<'a>) -> Settling<'a> {
        let pending = std::mem::take(self);
        let (sides, collection) = (ctx.sides, ctx.collection);
        let touched = pending.touched;
        let flush_side = move |side: Side| async move {
            if !touched[index(side)] {
                return None;
            }
            let err = sides.store(side).flush().await.err()?;
            Some(Failure {
                store: sides.name(side).to_string(),
                collection: collection.to_string(),
                item: "(flush)".into(),
                reason: format!("{err}; the writes of this batch will be checked again next run"),
            })
        };
        let flush = Started::start(async move {
            let (a, b) = futures_util::future::join(flush_side(Side::A), flush_side(Side::B)).await;
            a.or(b)
        })
        .await;
        Settling {
            flush,
            batch: pending.batch.map(encoding),
        }
    }
}

/// A batch of writes whose stores are being flushed; see [`Unsettled::begin`].
#[must_use = "a batch is only recorded by `finish`"]
pub struct Settling<'a> {
    flush: Started<'a, Option<Failure>>,
    /// The batch, being encoded for the state on a thread of its own while
    /// the stores flush, so that the thread driving the sync only commits
    /// it. The encoding takes far less time than the flush, so taking it
    /// does not wait in practice.
    batch: Option<Background<Batch>>,
}

fn encoding(mut batch: Batch) -> Background<Batch> {
    Background::start("tandem-encode", move || {
        // A record that cannot be encoded fails the commit, which encodes
        // it again and reports it.
        let _ = batch.encode();
        batch
    })
}

impl Settling<'_> {
    /// Waits for the flushes, then commits the batch to the state. When a
    /// flush failed nothing is recorded (the next run re-derives those
    /// items) and the failure is returned for the report.
    pub async fn finish(self, state: &mut dyn StateStore) -> Result<Vec<Failure>, StateError> {
        self.record(state, false).await
    }

    /// [`Settling::finish`], with the commit made by
    /// [`StateStore::commit_soon`]: the caller goes on while it is made and
    /// the state's next call waits for it.
    pub async fn finish_soon(self, state: &mut dyn StateStore) -> Result<Vec<Failure>, StateError> {
        self.record(state, true).await
    }

    async fn record(
        self,
        state: &mut dyn StateStore,
        soon: bool,
    ) -> Result<Vec<Failure>, StateError> {
        if let Some(failure) = self.flush.finish().await {
            return Ok(vec![failure]);
        }
        if let Some(batch) = self.batch {
            let batch = batch.finish();
            if soon {
                state.commit_soon(batch)?;
            } else {
                state.commit(&batch)?;
            }
        }
        Ok(Vec::new())
    }
}

fn write_name(write: &Write) -> &'static str {
    match write {
        Write::Create { .. } => "create",
        Write::Update { .. } => "update",
        Write::Delete { .. } => "delete",
    }
}
