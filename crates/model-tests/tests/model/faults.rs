//! Fault injection without touching production code: a [`Store`] wrapper
//! and a [`StateStore`] wrapper that fail, or "crash" (panic with
//! [`Crash`]), at a named [`CrashPoint`]. The driver runs a sync inside
//! `catch_unwind`, so a crash leaves exactly what a killed process would:
//! store writes made so far, state batches committed so far, nothing else.

use async_trait::async_trait;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tandem_record::{FieldChange, Side};
use tandem_state::{Batch, ForwardState, JournalEntry, StateError, StateStore};
use tandem_store::{Error, ErrorKind, Forward, Item, MemoryStore, NewItem, Store, Written};

/// The panic payload of a simulated crash; the panic hook stays quiet for it.
pub struct Crash;

/// Where a run is cut short. `n` counts from 1 over the whole run (both
/// sides' writes, every commit); a point the run never reaches never fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The `n`th store write is journaled as pending but never made.
    BeforeWrite(u64),
    /// The `n`th store write is made, then the process dies: after a store
    /// write, before the state commit.
    AfterWrite(u64),
    /// The `n`th store write is made but its reply is lost (a timeout after
    /// the server applied it); the run goes on.
    LostReply(u64),
    /// The `n`th store write is refused (`Unavailable`); the run goes on.
    WriteRefused(u64),
    /// Flushing `side` fails once: nothing of that chunk is recorded.
    FlushFails(Side),
    /// The `n`th `journal_pending` fails: mid-journal, before any write.
    JournalFails(u64),
    /// The `n`th `journal_pending` succeeds, then the process dies.
    AfterJournal(u64),
    /// The `n`th state commit fails: the batch is not recorded.
    CommitFails(u64),
    /// The `n`th state commit succeeds, then the process dies (between chunks).
    AfterCommit(u64),
}

impl CrashPoint {
    /// The point's name, for the figures.
    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::BeforeWrite(_) => "crash before a store write (journal pending)",
            CrashPoint::AfterWrite(_) => "crash after a store write, before the state commit",
            CrashPoint::LostReply(_) => "store write made, reply lost",
            CrashPoint::WriteRefused(_) => "store write refused",
            CrashPoint::FlushFails(_) => "flush fails",
            CrashPoint::JournalFails(_) => "mid-journal: journal_pending fails",
            CrashPoint::AfterJournal(_) => "crash after journal_pending",
            CrashPoint::CommitFails(_) => "state commit fails",
            CrashPoint::AfterCommit(_) => "crash after a state commit",
        }
    }

    pub const NAMES: usize = 9;

    pub fn index(self) -> usize {
        match self {
            CrashPoint::BeforeWrite(_) => 0,
            CrashPoint::AfterWrite(_) => 1,
            CrashPoint::LostReply(_) => 2,
            CrashPoint::WriteRefused(_) => 3,
            CrashPoint::FlushFails(_) => 4,
            CrashPoint::JournalFails(_) => 5,
            CrashPoint::AfterJournal(_) => 6,
            CrashPoint::CommitFails(_) => 7,
            CrashPoint::AfterCommit(_) => 8,
        }
    }
}

/// One run's fault, shared by the two store wrappers and the state wrapper.
#[derive(Debug)]
pub struct Fault {
    point: Option<CrashPoint>,
    writes: AtomicU64,
    journals: AtomicU64,
    commits: AtomicU64,
    fired: AtomicBool,
}

impl Fault {
    pub fn new(point: Option<CrashPoint>) -> Arc<Fault> {
        Arc::new(Fault {
            point,
            writes: AtomicU64::new(0),
            journals: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            fired: AtomicBool::new(false),
        })
    }

    /// True once the fault happened during the run.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
    }

    fn crash(&self) -> ! {
        self.fire();
        std::panic::panic_any(Crash)
    }
}

fn injected(kind: ErrorKind) -> Error {
    Error::new(kind, "injected fault")
}

/// A [`MemoryStore`] seen through a [`Fault`].
pub struct FaultyStore {
    pub inner: MemoryStore,
    pub side: Side,
    pub fault: Arc<Fault>,
}

impl FaultyStore {
    /// Wraps one write: counts it and applies the fault around `op`.
    async fn write<T, F>(&self, op: F) -> tandem_store::Result<T>
    where
        F: std::future::Future<Output = tandem_store::Result<T>> + Send,
    {
        let n = self.fault.writes.fetch_add(1, Ordering::SeqCst) + 1;
        match self.fault.point {
            Some(CrashPoint::BeforeWrite(k)) if k == n => self.fault.crash(),
            Some(CrashPoint::WriteRefused(k)) if k == n => {
                self.fault.fire();
                return Err(injected(ErrorKind::Unavailable));
            }
            _ => {}
        }
        let result = op.await;
        match self.fault.point {
            Some(CrashPoint::AfterWrite(k)) if k == n && result.is_ok() => self.fault.crash(),
            Some(CrashPoint::LostReply(k)) if k == n && result.is_ok() => {
                self.fault.fire();
                Err(injected(ErrorKind::Unavailable))
            }
            _ => result,
        }
    }
}

#[async_trait]
impl Forward for FaultyStore {
    fn inner(&self) -> &dyn Store {
        &self.inner
    }

    async fn create(&self, collection: &str, item: &NewItem) -> tandem_store::Result<Written> {
        self.write(self.inner.create(collection, item)).await
    }

    async fn update(
        &self,
        collection: &str,
        current: &Item,
        expected: &str,
        changes: &[FieldChange],
    ) -> tandem_store::Result<Written> {
        self.write(self.inner.update(collection, current, expected, changes))
            .await
    }

    async fn delete(&self, collection: &str, id: &str, expected: &str) -> tandem_store::Result<()> {
        self.write(self.inner.delete(collection, id, expected))
            .await
    }

    async fn flush(&self) -> tandem_store::Result<()> {
        if self.fault.point == Some(CrashPoint::FlushFails(self.side)) && !self.fault.fired() {
            self.fault.fire();
            return Err(injected(ErrorKind::Io));
        }
        self.inner.flush().await
    }
}

/// A [`StateStore`] seen through a [`Fault`].
pub struct FaultyState<'s> {
    pub inner: &'s mut dyn StateStore,
    pub fault: Arc<Fault>,
}

fn state_fault() -> StateError {
    StateError::Corrupt("injected fault".into())
}

impl ForwardState for FaultyState<'_> {
    fn inner(&self) -> &dyn StateStore {
        self.inner
    }

    fn inner_mut(&mut self) -> &mut dyn StateStore {
        self.inner
    }

    fn journal_pending(&mut self, entries: &[JournalEntry]) -> tandem_state::Result<Vec<i64>> {
        let n = self.fault.journals.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fault.point == Some(CrashPoint::JournalFails(n)) {
            self.fault.fire();
            return Err(state_fault());
        }
        let seqs = self.inner.journal_pending(entries)?;
        if self.fault.point == Some(CrashPoint::AfterJournal(n)) {
            self.fault.crash();
        }
        Ok(seqs)
    }

    fn commit(&mut self, batch: &Batch) -> tandem_state::Result<()> {
        let n = self.fault.commits.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fault.point == Some(CrashPoint::CommitFails(n)) {
            self.fault.fire();
            return Err(state_fault());
        }
        self.inner.commit(batch)?;
        if self.fault.point == Some(CrashPoint::AfterCommit(n)) {
            self.fault.crash();
        }
        Ok(())
    }

    /// Made at once through `commit` above, so every commit the engine
    /// asks for meets the fault, whichever way it is asked for.
    fn commit_soon(&mut self, batch: Batch) -> tandem_state::Result<()> {
        ForwardState::commit(self, &batch)
    }
}

/// Installs (once) a panic hook that stays quiet for simulated crashes and
/// reports every other panic as usual.
pub fn quiet_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<Crash>().is_none() {
                previous(info);
            }
        }));
    });
}
