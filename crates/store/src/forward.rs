//! Stores that wrap another store: [`Forward`] owns passing every [`Store`]
//! call on to the wrapped store, so a wrapper writes only the calls it
//! changes (a test store that counts fetches, edits a file between two
//! reads, or fails the third write).
//!
//! A type that implements [`Forward`] is a [`Store`]. Each of [`Forward`]'s
//! methods is one of [`Store`]'s with a default body that calls the store
//! [`Forward::inner`] names; a wrapper overrides whole methods, so it can
//! change the arguments (write with another version), the result (lose a
//! reply) or both, and reach its inner store's own API directly.
//!
//! Every method is forwarded, the provided ones (`flush`, `rewrites_items`,
//! `concurrent_writes`, `changes_since`) included, so a wrapper behaves as
//! the store it wraps in everything it does not override. A method added to
//! [`Store`] cannot be missed: without a default the impl below does not
//! compile, and with one `clippy::missing_trait_methods`, denied on that
//! impl, fails the lint.
//!
//! Why a trait with whole-method overrides rather than hooks around each
//! call (`before_fetch`, `after_flush`, …): wrappers change arguments and
//! results as well as add effects, which hooks could only allow with two
//! hooks per method, each as long as the override it replaces.
//!
//! ```
//! use async_trait::async_trait;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use tandem_store::{Forward, Item, ItemError, MemoryStore, Result, Store, ROOT};
//!
//! /// A store that counts the items fetched from it.
//! struct Counting {
//!     inner: MemoryStore,
//!     fetched: AtomicUsize,
//! }
//!
//! #[async_trait]
//! impl Forward for Counting {
//!     fn inner(&self) -> &dyn Store {
//!         &self.inner
//!     }
//!
//!     async fn fetch(
//!         &self,
//!         collection: &str,
//!         ids: &[String],
//!     ) -> Result<Vec<std::result::Result<Item, ItemError>>> {
//!         self.fetched.fetch_add(ids.len(), Ordering::SeqCst);
//!         self.inner.fetch(collection, ids).await
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = Counting { inner: MemoryStore::new(), fetched: AtomicUsize::new(0) };
//! let store: &dyn Store = &store;
//! store.fetch(ROOT, &["a".into(), "b".into()]).await.unwrap();
//! assert_eq!(store.collections().await.unwrap(), [ROOT]);
//! # });
//! ```

use crate::{Changes, Item, ItemError, Listed, NewItem, Result, Store, Written};
use async_trait::async_trait;
use tandem_record::FieldChange;

/// A store that wraps [`Forward::inner`]: every [`Store`] method it does not
/// override is that store's.
#[async_trait]
pub trait Forward: Send + Sync {
    /// The wrapped store.
    fn inner(&self) -> &dyn Store;

    /// [`Store::collections`].
    async fn collections(&self) -> Result<Vec<String>> {
        self.inner().collections().await
    }

    /// [`Store::create_collection`].
    async fn create_collection(&self, name: &str) -> Result<()> {
        self.inner().create_collection(name).await
    }

    /// [`Store::list`].
    async fn list(&self, collection: &str) -> Result<Vec<Listed>> {
        self.inner().list(collection).await
    }

    /// [`Store::fetch`].
    async fn fetch(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<std::result::Result<Item, ItemError>>> {
        self.inner().fetch(collection, ids).await
    }

    /// [`Store::create`].
    async fn create(&self, collection: &str, item: &NewItem) -> Result<Written> {
        self.inner().create(collection, item).await
    }

    /// [`Store::update`].
    async fn update(
        &self,
        collection: &str,
        current: &Item,
        expected: &str,
        changes: &[FieldChange],
    ) -> Result<Written> {
        self.inner()
            .update(collection, current, expected, changes)
            .await
    }

    /// [`Store::delete`].
    async fn delete(&self, collection: &str, id: &str, expected: &str) -> Result<()> {
        self.inner().delete(collection, id, expected).await
    }

    /// [`Store::flush`].
    async fn flush(&self) -> Result<()> {
        self.inner().flush().await
    }

    /// [`Store::rewrites_items`].
    fn rewrites_items(&self) -> bool {
        self.inner().rewrites_items()
    }

    /// [`Store::concurrent_writes`].
    fn concurrent_writes(&self) -> usize {
        self.inner().concurrent_writes()
    }

    /// [`Store::changes_since`].
    async fn changes_since(&self, collection: &str, token: Option<&str>) -> Result<Changes> {
        self.inner().changes_since(collection, token).await
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<T: Forward> Store for T {
    async fn collections(&self) -> Result<Vec<String>> {
        Forward::collections(self).await
    }

    async fn create_collection(&self, name: &str) -> Result<()> {
        Forward::create_collection(self, name).await
    }

    async fn list(&self, collection: &str) -> Result<Vec<Listed>> {
        Forward::list(self, collection).await
    }

    async fn fetch(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<std::result::Result<Item, ItemError>>> {
        Forward::fetch(self, collection, ids).await
    }

    async fn create(&self, collection: &str, item: &NewItem) -> Result<Written> {
        Forward::create(self, collection, item).await
    }

    async fn update(
        &self,
        collection: &str,
        current: &Item,
        expected: &str,
        changes: &[FieldChange],
    ) -> Result<Written> {
        Forward::update(self, collection, current, expected, changes).await
    }

    async fn delete(&self, collection: &str, id: &str, expected: &str) -> Result<()> {
        Forward::delete(self, collection, id, expected).await
    }

    async fn flush(&self) -> Result<()> {
        Forward::flush(self).await
    }

    fn rewrites_items(&self) -> bool {
        Forward::rewrites_items(self)
    }

    fn concurrent_writes(&self) -> usize {
        Forward::concurrent_writes(self)
    }

    async fn changes_since(&self, collection: &str, token: Option<&str>) -> Result<Changes> {
        Forward::changes_since(self, collection, token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{conformance, Error, ErrorKind, MemoryStore, ROOT};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tandem_record::Kind;

    /// A [`MemoryStore`] that answers every provided method otherwise than
    /// [`Store`]'s defaults do, so a forwarder that drops one is caught.
    #[derive(Default)]
    struct Unusual {
        memory: MemoryStore,
        flushes: AtomicUsize,
    }

    #[async_trait]
    impl Forward for Unusual {
        fn inner(&self) -> &dyn Store {
            &self.memory
        }
        async fn flush(&self) -> Result<()> {
            self.flushes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn rewrites_items(&self) -> bool {
            true
        }
        fn concurrent_writes(&self) -> usize {
            7
        }
        async fn changes_since(&self, _collection: &str, token: Option<&str>) -> Result<Changes> {
            Ok(Changes {
                changed: Vec::new(),
                deleted: Vec::new(),
                token: format!("after {}", token.unwrap_or("nothing")),
            })
        }
    }

    /// Forwards everything.
    struct Plain(Unusual);

    impl Forward for Plain {
        fn inner(&self) -> &dyn Store {
            &self.0
        }
    }

    /// Refuses deletes, forwards the rest.
    struct NoDeletes(MemoryStore);

    #[async_trait]
    impl Forward for NoDeletes {
        fn inner(&self) -> &dyn Store {
            &self.0
        }
        async fn delete(&self, _collection: &str, _id: &str, _expected: &str) -> Result<()> {
            Err(Error::new(ErrorKind::Unsupported, "deletes are refused"))
        }
    }

    #[tokio::test]
    async fn a_wrapper_without_overrides_is_the_store_it_wraps() {
        conformance::run(|| async { Plain(Unusual::default()) }, Kind::Contact).await;

        let wrapper = Plain(Unusual::default());
        let store: &dyn Store = &wrapper;
        store.flush().await.expect("flushed");
        store.flush().await.expect("flushed");
        assert_eq!(wrapper.0.flushes.load(Ordering::SeqCst), 2);
        let changes = store.changes_since(ROOT, Some("t")).await.expect("feed");
        assert_eq!(changes.token, "after t");
        assert!(store.rewrites_items());
        assert_eq!(store.concurrent_writes(), 7);
    }

    #[tokio::test]
    async fn an_override_replaces_only_its_method() {
        let memory = MemoryStore::new();
        let written = memory.insert(ROOT, conformance::sample(Kind::Contact, "u"));
        let wrapper = NoDeletes(memory);
        let store: &dyn Store = &wrapper;
        let err = store
            .delete(ROOT, &written.id, &written.version)
            .await
            .expect_err("refused");
        assert_eq!(err.kind, ErrorKind::Unsupported);
        // The rest is the wrapped store's: the item is still there, the
        // defaults are a memory store's.
        assert_eq!(store.list(ROOT).await.expect("listed").len(), 1);
        assert!(!store.rewrites_items());
        assert_eq!(store.concurrent_writes(), 1);
        assert_eq!(
            store.changes_since(ROOT, None).await.map_err(|e| e.kind),
            Err(ErrorKind::Unsupported)
        );
    }
}
