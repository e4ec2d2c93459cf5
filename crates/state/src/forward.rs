//! State stores that wrap another: [`ForwardState`] owns passing every
//! [`StateStore`] call on to the wrapped state, so a wrapper writes only the
//! calls it changes (a test state that counts full loads of the links, or
//! fails the second commit).
//!
//! A type that implements [`ForwardState`] is a [`StateStore`]. Each of
//! [`ForwardState`]'s methods is one of [`StateStore`]'s with a default body
//! that calls the state [`ForwardState::inner`] names, or
//! [`ForwardState::inner_mut`] for the calls that write; a wrapper overrides
//! whole methods, so it can change the arguments, the result or both, and
//! reach its inner state's own API directly.
//!
//! Every method is forwarded, the provided ones (`links_touching`,
//! `link_counts`, `conflict`, `settle`, `commit_soon`, `committed`) included, so a wrapper behaves as
//! the state it wraps in everything it does not override: a wrapped
//! [`SqliteState`](crate::SqliteState) answers `links_touching` from its
//! index, not by loading every link. A provided method is forwarded whole,
//! so the wrapped state's `settle` commits through its own `commit`; a
//! wrapper that changes `commit` and wants `settle` to go through it
//! overrides `settle` too. A method added to [`StateStore`] cannot be
//! missed: without a default the impl below does not compile, and with one
//! `clippy::missing_trait_methods`, denied on that impl, fails the lint.
//!
//! Why a trait with whole-method overrides rather than hooks around each
//! call (`before_commit`, `after_links`, …): wrappers change arguments and
//! results as well as add effects, which hooks could only allow with two
//! hooks per method, each as long as the override it replaces. Why the name
//! is not `Forward`: the engine's tests import `tandem_store::Forward`
//! beside it.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use tandem_state::{ForwardState, Known, Result, SqliteState, StateStore};
//!
//! /// A state that counts full loads of a collection's links.
//! struct Counting {
//!     inner: SqliteState,
//!     full_loads: AtomicUsize,
//! }
//!
//! impl ForwardState for Counting {
//!     fn inner(&self) -> &dyn StateStore {
//!         &self.inner
//!     }
//!
//!     fn inner_mut(&mut self) -> &mut dyn StateStore {
//!         &mut self.inner
//!     }
//!
//!     fn links(&self, pair: &str, collection: &str) -> Result<Vec<Known>> {
//!         self.full_loads.fetch_add(1, Ordering::SeqCst);
//!         self.inner.links(pair, collection)
//!     }
//! }
//!
//! let mut counting = Counting {
//!     inner: SqliteState::in_memory().unwrap(),
//!     full_loads: AtomicUsize::new(0),
//! };
//! let state: &mut dyn StateStore = &mut counting;
//! state.begin_run("sync", &["contacts".into()]).unwrap();
//! assert!(state.links("contacts", "default").unwrap().is_empty());
//! // The SQLite state's own count: no full load.
//! assert_eq!(state.link_counts("contacts", "default").unwrap(), [0, 0]);
//! assert_eq!(counting.full_loads.load(Ordering::SeqCst), 1);
//! ```

use crate::{Batch, Conflict, JournalEntry, Known, Result, Run, Side, StateStore};
use std::collections::HashMap;
use tandem_record::Record;

/// A state store that wraps [`ForwardState::inner`]: every [`StateStore`]
/// method it does not override is that state's.
pub trait ForwardState: Send {
    /// The wrapped state.
    fn inner(&self) -> &dyn StateStore;

    /// The wrapped state, for the calls that write.
    fn inner_mut(&mut self) -> &mut dyn StateStore;

    /// [`StateStore::links`].
    fn links(&self, pair: &str, collection: &str) -> Result<Vec<Known>> {
        self.inner().links(pair, collection)
    }

    /// [`StateStore::links_touching`].
    fn links_touching(
        &self,
        pair: &str,
        collection: &str,
        ids: [&[String]; 2],
    ) -> Result<Vec<Known>> {
        self.inner().links_touching(pair, collection, ids)
    }

    /// [`StateStore::link_counts`].
    fn link_counts(&self, pair: &str, collection: &str) -> Result<[u64; 2]> {
        self.inner().link_counts(pair, collection)
    }

    /// [`StateStore::collections`].
    fn collections(&self, pair: &str) -> Result<Vec<String>> {
        self.inner().collections(pair)
    }

    /// [`StateStore::bases`].
    fn bases(
        &self,
        pair: &str,
        collection: &str,
        uids: &[String],
    ) -> Result<HashMap<String, Record>> {
        self.inner().bases(pair, collection, uids)
    }

    /// [`StateStore::begin_run`].
    fn begin_run(&mut self, command: &str, pairs: &[String]) -> Result<i64> {
        self.inner_mut().begin_run(command, pairs)
    }

    /// [`StateStore::finish_run`].
    fn finish_run(&mut self, run: i64, outcome: &str) -> Result<()> {
        self.inner_mut().finish_run(run, outcome)
    }

    /// [`StateStore::runs`].
    fn runs(&self, limit: usize) -> Result<Vec<Run>> {
        self.inner().runs(limit)
    }

    /// [`StateStore::journal_pending`].
    fn journal_pending(&mut self, entries: &[JournalEntry]) -> Result<Vec<i64>> {
        self.inner_mut().journal_pending(entries)
    }

    /// [`StateStore::journal`].
    fn journal(&self, run: i64) -> Result<Vec<JournalEntry>> {
        self.inner().journal(run)
    }

    /// [`StateStore::commit`].
    fn commit(&mut self, batch: &Batch) -> Result<()> {
        self.inner_mut().commit(batch)
    }

    /// [`StateStore::commit_soon`]; the wrapped state commits through its
    /// own `commit`, so a wrapper that changes `commit` overrides this too.
    fn commit_soon(&mut self, batch: Batch) -> Result<()> {
        self.inner_mut().commit_soon(batch)
    }

    /// [`StateStore::committed`].
    fn committed(&mut self) -> Result<()> {
        self.inner_mut().committed()
    }

    /// [`StateStore::conflicts`].
    fn conflicts(&self) -> Result<Vec<Conflict>> {
        self.inner().conflicts()
    }

    /// [`StateStore::conflict`].
    fn conflict(&self, id: i64) -> Result<Conflict> {
        self.inner().conflict(id)
    }

    /// [`StateStore::settle`].
    fn settle(&mut self, id: i64) -> Result<()> {
        self.inner_mut().settle(id)
    }

    /// [`StateStore::token`].
    fn token(&self, pair: &str, side: Side, collection: &str) -> Result<Option<String>> {
        self.inner().token(pair, side, collection)
    }

    /// [`StateStore::set_token`].
    fn set_token(
        &mut self,
        pair: &str,
        side: Side,
        collection: &str,
        token: Option<&str>,
    ) -> Result<()> {
        self.inner_mut().set_token(pair, side, collection, token)
    }
}

#[deny(clippy::missing_trait_methods)]
impl<T: ForwardState> StateStore for T {
    fn links(&self, pair: &str, collection: &str) -> Result<Vec<Known>> {
        ForwardState::links(self, pair, collection)
    }

    fn links_touching(
        &self,
        pair: &str,
        collection: &str,
        ids: [&[String]; 2],
    ) -> Result<Vec<Known>> {
        ForwardState::links_touching(self, pair, collection, ids)
    }

    fn link_counts(&self, pair: &str, collection: &str) -> Result<[u64; 2]> {
        ForwardState::link_counts(self, pair, collection)
    }

    fn collections(&self, pair: &str) -> Result<Vec<String>> {
        ForwardState::collections(self, pair)
    }

    fn bases(
        &self,
        pair: &str,
        collection: &str,
        uids: &[String],
    ) -> Result<HashMap<String, Record>> {
        ForwardState::bases(self, pair, collection, uids)
    }

    fn begin_run(&mut self, command: &str, pairs: &[String]) -> Result<i64> {
        ForwardState::begin_run(self, command, pairs)
    }

    fn finish_run(&mut self, run: i64, outcome: &str) -> Result<()> {
        ForwardState::finish_run(self, run, outcome)
    }

    fn runs(&self, limit: usize) -> Result<Vec<Run>> {
        ForwardState::runs(self, limit)
    }

    fn journal_pending(&mut self, entries: &[JournalEntry]) -> Result<Vec<i64>> {
        ForwardState::journal_pending(self, entries)
    }

    fn journal(&self, run: i64) -> Result<Vec<JournalEntry>> {
        ForwardState::journal(self, run)
    }

    fn commit(&mut self, batch: &Batch) -> Result<()> {
        ForwardState::commit(self, batch)
    }

    fn commit_soon(&mut self, batch: Batch) -> Result<()> {
        ForwardState::commit_soon(self, batch)
    }

    fn committed(&mut self) -> Result<()> {
        ForwardState::committed(self)
    }

    fn conflicts(&self) -> Result<Vec<Conflict>> {
        ForwardState::conflicts(self)
    }

    fn conflict(&self, id: i64) -> Result<Conflict> {
        ForwardState::conflict(self, id)
    }

    fn settle(&mut self, id: i64) -> Result<()> {
        ForwardState::settle(self, id)
    }

    fn token(&self, pair: &str, side: Side, collection: &str) -> Result<Option<String>> {
        ForwardState::token(self, pair, side, collection)
    }

    fn set_token(
        &mut self,
        pair: &str,
        side: Side,
        collection: &str,
        token: Option<&str>,
    ) -> Result<()> {
        ForwardState::set_token(self, pair, side, collection, token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Link, LinkUpdate, Seen, SqliteState, StateError, WriteOp};
    use tandem_record::{Kind, Value};

    fn link(uid: &str, a: &str, b: &str) -> Link {
        let seen = |id: &str| {
            Some(Seen {
                id: id.to_string(),
                version: "1".to_string(),
            })
        };
        Link {
            uid: uid.to_string(),
            a: seen(a),
            b: seen(b),
        }
    }

    /// A [`SqliteState`] that answers every provided method otherwise than
    /// [`StateStore`]'s defaults (and SQLite's) do, so a forwarder that
    /// drops one is caught.
    struct Unusual {
        sqlite: SqliteState,
        settled: Vec<i64>,
    }

    impl Unusual {
        fn new() -> Self {
            Unusual {
                sqlite: SqliteState::in_memory().expect("state"),
                settled: Vec::new(),
            }
        }
    }

    impl ForwardState for Unusual {
        fn inner(&self) -> &dyn StateStore {
            &self.sqlite
        }
        fn inner_mut(&mut self) -> &mut dyn StateStore {
            &mut self.sqlite
        }
        fn links_touching(&self, _: &str, _: &str, _: [&[String]; 2]) -> Result<Vec<Known>> {
            Ok(vec![Known::from(&link("touched", "a", "b"))])
        }
        fn link_counts(&self, _: &str, _: &str) -> Result<[u64; 2]> {
            Ok([7, 9])
        }
        fn conflict(&self, id: i64) -> Result<Conflict> {
            Ok(Conflict {
                id,
                run: 0,
                pair: "unusual".to_string(),
                collection: String::new(),
                uid: String::new(),
                fields: Vec::new(),
                a: None,
                b: None,
                base: None,
                created_at: 0,
            })
        }
        fn settle(&mut self, id: i64) -> Result<()> {
            self.settled.push(id);
            Ok(())
        }
    }

    /// Forwards everything.
    struct Plain(Unusual);

    impl ForwardState for Plain {
        fn inner(&self) -> &dyn StateStore {
            &self.0
        }
        fn inner_mut(&mut self) -> &mut dyn StateStore {
            &mut self.0
        }
    }

    /// Refuses commits, forwards the rest.
    struct NoCommits(SqliteState);

    impl ForwardState for NoCommits {
        fn inner(&self) -> &dyn StateStore {
            &self.0
        }
        fn inner_mut(&mut self) -> &mut dyn StateStore {
            &mut self.0
        }
        fn commit(&mut self, _batch: &Batch) -> Result<()> {
            Err(StateError::Corrupt("commits are refused".to_string()))
        }
    }

    #[test]
    fn a_wrapper_without_overrides_is_the_state_it_wraps() {
        let mut wrapper = Plain(Unusual::new());
        let state: &mut dyn StateStore = &mut wrapper;

        // Every required method reaches the SQLite state.
        let run = state.begin_run("sync", &["p".to_string()]).expect("run");
        let entry = JournalEntry {
            seq: 0,
            run,
            pair: "p".to_string(),
            collection: "c".to_string(),
            side: Side::B,
            store: "b".to_string(),
            op: WriteOp::Create,
            uid: "u1".to_string(),
            id: None,
            before: None,
            after: None,
            version_before: None,
            version_after: None,
            done: false,
            at: 100,
        };
        let seqs = state.journal_pending(&[entry]).expect("pending");
        let mut batch = Batch::new("p", "c");
        let base = Record::new(Kind::Contact, "u1").with("full_name", Value::text("Ada"));
        batch.links.push(LinkUpdate {
            link: link("u1", "a1", "b1"),
            base: base.clone(),
        });
        batch
            .done
            .push((seqs[0], Some("b1".to_string()), Some("1".to_string()), None));
        state.commit(&batch).expect("commit");
        state
            .set_token("p", Side::A, "c", Some("t1"))
            .expect("token");
        state.finish_run(run, "done").expect("finish");

        assert_eq!(
            state.links("p", "c").expect("links"),
            [Known::from(&link("u1", "a1", "b1"))]
        );
        assert_eq!(state.collections("p").expect("collections"), ["c"]);
        let bases = state.bases("p", "c", &["u1".to_string()]).expect("bases");
        assert_eq!(bases["u1"], base);
        assert_eq!(state.runs(5).expect("runs")[0].outcome, "done");
        let journal = state.journal(run).expect("journal");
        assert_eq!((journal.len(), journal[0].done), (1, true));
        assert!(state.conflicts().expect("conflicts").is_empty());
        assert_eq!(
            state.token("p", Side::A, "c").expect("token").as_deref(),
            Some("t1")
        );
        // What the wrapper wrote is in the SQLite state itself.
        assert_eq!(
            wrapper.0.sqlite.link_counts("p", "c").expect("counts"),
            [1, 1]
        );

        // The provided methods are the wrapped state's too, not the defaults.
        let state: &mut dyn StateStore = &mut wrapper;
        let touching = state
            .links_touching("p", "c", [&[], &[]])
            .expect("touching");
        assert_eq!(touching, [Known::from(&link("touched", "a", "b"))]);
        assert_eq!(state.link_counts("p", "c").expect("counts"), [7, 9]);
        assert_eq!(state.conflict(3).expect("conflict").pair, "unusual");
        state.settle(3).expect("settled");
        assert_eq!(wrapper.0.settled, [3]);
    }

    #[test]
    fn an_override_replaces_only_its_method() {
        let mut wrapper = NoCommits(SqliteState::in_memory().expect("state"));
        let state: &mut dyn StateStore = &mut wrapper;
        let mut batch = Batch::new("p", "c");
        batch.forget.push("u1".to_string());
        let err = state.commit(&batch).expect_err("refused");
        assert!(matches!(err, StateError::Corrupt(_)), "{err}");
        // The rest is the wrapped state's: runs are recorded, the defaults
        // are SQLite's.
        let run = state.begin_run("sync", &["p".to_string()]).expect("run");
        assert_eq!(state.runs(1).expect("runs")[0].id, run);
        assert_eq!(state.link_counts("p", "c").expect("counts"), [0, 0]);
        assert!(matches!(
            state.conflict(1),
            Err(StateError::NotFound {
                what: "conflict",
                id: 1
            })
        ));
    }
}
