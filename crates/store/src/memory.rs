//! [`MemoryStore`]: a [`Store`] held in memory, the reference store the
//! conformance suite is checked against and the app stand-in of the engine's
//! tests.
//!
//! It keeps canonical [`Record`]s only (plus, when a create brought one, the
//! native text it was given). Item ids are the records' UIDs; versions come
//! from one counter per store (`"1"`, `"2"`, …) bumped on every write, so a
//! version is never reused. Besides the [`Store`] trait it has test hooks:
//! [`insert`](MemoryStore::insert) and [`remove`](MemoryStore::remove) play
//! the app's own user, [`records`](MemoryStore::records) shows the content,
//! [`fail_next`](MemoryStore::fail_next) and
//! [`fail_item`](MemoryStore::fail_item) inject faults.
//!
//! Clones share the same data, so a test can hand one clone to the engine and
//! look at the other.

use crate::{
    Error, ErrorKind, Item, ItemError, Listed, NewItem, Raw, Result, Store, Written, ROOT,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tandem_record::{FieldChange, Record};

/// An in-memory store of records, with test hooks. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    collections: BTreeMap<String, BTreeMap<String, Stored>>,
    /// The last version handed out.
    counter: u64,
    /// Faults the next store calls fail with, oldest first.
    faults: VecDeque<ErrorKind>,
    /// Items whose fetch yields an item error of this kind, until cleared.
    bad_items: HashMap<String, ErrorKind>,
    /// Writes made through the [`Store`] trait (not through the test hooks).
    writes: u64,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            collections: BTreeMap::from([(ROOT.to_string(), BTreeMap::new())]),
            counter: 0,
            faults: VecDeque::new(),
            bad_items: HashMap::new(),
            writes: 0,
        }
    }
}

#[derive(Debug, Clone)]
struct Stored {
    version: String,
    record: Record,
    raw: Option<Raw>,
}

impl Inner {
    fn next_version(&mut self) -> String {
        self.counter += 1;
        self.counter.to_string()
    }

    /// Fails the call when a fault is queued.
    fn take_fault(&mut self, call: &str) -> Result<()> {
        match self.faults.pop_front() {
            Some(kind) => Err(Error::new(kind, format!("injected fault in {call}"))),
            None => Ok(()),
        }
    }

    fn collection(&self, name: &str) -> Result<&BTreeMap<String, Stored>> {
        self.collections
            .get(name)
            .ok_or_else(|| missing_collection(name))
    }

    fn collection_mut(&mut self, name: &str) -> Result<&mut BTreeMap<String, Stored>> {
        self.collections
            .get_mut(name)
            .ok_or_else(|| missing_collection(name))
    }
}

fn missing_collection(name: &str) -> Error {
    Error::new(ErrorKind::NotFound, format!("no collection `{name}`"))
}

fn missing_item(id: &str) -> Error {
    Error::new(ErrorKind::NotFound, "no such item").with_id(id)
}

impl MemoryStore {
    /// An empty store holding only the [`ROOT`] collection.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock leaves data that is
        // still consistent (every write is a single map operation), so a
        // poisoned lock is simply taken over.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes `record` as the app's own user would: creates or replaces the
    /// item with its UID (creating the collection if needed) and bumps the
    /// version. Any native text the item had is dropped.
    pub fn insert(&self, collection: &str, record: Record) -> Written {
        let mut inner = self.lock();
        let version = inner.next_version();
        let id = record.uid.clone();
        inner
            .collections
            .entry(collection.to_string())
            .or_default()
            .insert(
                id.clone(),
                Stored {
                    version: version.clone(),
                    record,
                    raw: None,
                },
            );
        Written { id, version }
    }

    /// Deletes an item as the app's own user would; true if it existed.
    pub fn remove(&self, collection: &str, id: &str) -> bool {
        let mut inner = self.lock();
        inner
            .collections
            .get_mut(collection)
            .and_then(|items| items.remove(id))
            .is_some()
    }

    /// The records of a collection sorted by UID (empty if it does not exist).
    pub fn records(&self, collection: &str) -> Vec<Record> {
        let inner = self.lock();
        let mut records: Vec<Record> = inner
            .collections
            .get(collection)
            .map(|items| items.values().map(|s| s.record.clone()).collect())
            .unwrap_or_default();
        records.sort_by(|a, b| a.uid.cmp(&b.uid));
        records
    }

    /// One item as a fetch would return it.
    pub fn item(&self, collection: &str, id: &str) -> Option<Item> {
        let inner = self.lock();
        inner
            .collections
            .get(collection)
            .and_then(|items| items.get(id))
            .map(|s| to_item(id, s))
    }

    /// Makes the next store call (any method of [`Store`]) fail with `kind`.
    /// Calling it several times queues several faults.
    pub fn fail_next(&self, kind: ErrorKind) {
        self.lock().faults.push_back(kind);
    }

    /// Makes every fetch of item `id` (in any collection) yield an
    /// [`ItemError`] of `kind` until [`clear_faults`](Self::clear_faults).
    pub fn fail_item(&self, id: &str, kind: ErrorKind) {
        self.lock().bad_items.insert(id.to_string(), kind);
    }

    /// Drops every queued fault and bad item.
    pub fn clear_faults(&self) {
        let mut inner = self.lock();
        inner.faults.clear();
        inner.bad_items.clear();
    }

    /// How many writes (create, update, delete, create_collection) went
    /// through the [`Store`] trait; test hooks are not counted.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }
}

fn to_item(id: &str, stored: &Stored) -> Item {
    Item {
        id: id.to_string(),
        version: stored.version.clone(),
        record: stored.record.clone(),
        raw: stored.raw.clone(),
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn collections(&self) -> Result<Vec<String>> {
        let mut inner = self.lock();
        inner.take_fault("collections")?;
        Ok(inner.collections.keys().cloned().collect())
    }

    async fn create_collection(&self, name: &str) -> Result<()> {
        let mut inner = self.lock();
        inner.take_fault("create_collection")?;
        if !inner.collections.contains_key(name) {
            inner.collections.insert(name.to_string(), BTreeMap::new());
            inner.writes += 1;
        }
        Ok(())
    }

    async fn list(&self, collection: &str) -> Result<Vec<Listed>> {
        let mut inner = self.lock();
        inner.take_fault("list")?;
        Ok(inner
            .collection(collection)?
            .iter()
            .map(|(id, s)| Listed {
                id: id.clone(),
                version: s.version.clone(),
            })
            .collect())
    }

    async fn fetch(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<std::result::Result<Item, ItemError>>> {
        let mut inner = self.lock();
        inner.take_fault("fetch")?;
        let items = inner.collection(collection)?;
        Ok(ids
            .iter()
            .map(|id| {
                if let Some(kind) = inner.bad_items.get(id) {
                    return Err(ItemError {
                        id: id.clone(),
                        kind: *kind,
                        field: None,
                        message: "injected fault".to_string(),
                    });
                }
                match items.get(id) {
                    Some(stored) => Ok(to_item(id, stored)),
                    None => Err(ItemError {
                        id: id.clone(),
                        kind: ErrorKind::NotFound,
                        field: None,
                        message: "no such item".to_string(),
                    }),
                }
            })
            .collect())
    }

    async fn create(&self, collection: &str, item: &NewItem) -> Result<Written> {
        let mut inner = self.lock();
        inner.take_fault("create")?;
        let uid = &item.record.uid;
        if uid.is_empty() {
            return Err(Error::new(ErrorKind::Invalid, "the record has no UID"));
        }
        if let Some(existing) = inner.collection(collection)?.get(uid) {
            return if existing.record.same_content(&item.record) {
                Ok(Written {
                    id: uid.clone(),
                    version: existing.version.clone(),
                })
            } else {
                Err(Error::new(
                    ErrorKind::AlreadyExists,
                    "an item with this UID exists with other content",
                )
                .with_id(uid.clone()))
            };
        }
        let version = inner.next_version();
        inner.writes += 1;
        inner.collection_mut(collection)?.insert(
            uid.clone(),
            Stored {
                version: version.clone(),
                record: item.record.clone(),
                raw: item.raw.clone(),
            },
        );
        Ok(Written {
            id: uid.clone(),
            version,
        })
    }

    async fn update(
        &self,
        collection: &str,
        current: &Item,
        expected: &str,
        changes: &[FieldChange],
    ) -> Result<Written> {
        let mut inner = self.lock();
        inner.take_fault("update")?;
        let id = current.id.as_str();
        let stored = inner
            .collection(collection)?
            .get(id)
            .ok_or_else(|| missing_item(id))?;
        if stored.version != expected {
            return Err(precondition_failed(id, expected, &stored.version));
        }
        let version = inner.next_version();
        inner.writes += 1;
        let stored = inner
            .collection_mut(collection)?
            .get_mut(id)
            .ok_or_else(|| missing_item(id))?;
        stored.record.apply(changes);
        // The store cannot patch native text, and stale text must not be
        // served as the item's, so it goes.
        stored.raw = None;
        stored.version = version.clone();
        Ok(Written {
            id: id.to_string(),
            version,
        })
    }

    async fn delete(&self, collection: &str, id: &str, expected: &str) -> Result<()> {
        let mut inner = self.lock();
        inner.take_fault("delete")?;
        let stored = inner
            .collection(collection)?
            .get(id)
            .ok_or_else(|| missing_item(id))?;
        if stored.version != expected {
            return Err(precondition_failed(id, expected, &stored.version));
        }
        inner.writes += 1;
        inner.collection_mut(collection)?.remove(id);
        Ok(())
    }
}

fn precondition_failed(id: &str, expected: &str, actual: &str) -> Error {
    Error::new(
        ErrorKind::PreconditionFailed,
        format!("expected version {expected}, found {actual}"),
    )
    .with_id(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_record::{Kind, Value};

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        for kind in Kind::ALL {
            crate::conformance::run(|| async { MemoryStore::new() }, kind).await;
        }
    }

    #[tokio::test]
    async fn hooks_write_as_the_apps_user() {
        let store = MemoryStore::new();
        let first = store.insert(ROOT, Record::new(Kind::Contact, "b"));
        store.insert(ROOT, Record::new(Kind::Contact, "a"));
        let again = store.insert(
            ROOT,
            Record::new(Kind::Contact, "b").with("note", Value::text("n")),
        );
        assert_eq!(first.id, again.id);
        assert_ne!(first.version, again.version);
        let uids: Vec<String> = store.records(ROOT).into_iter().map(|r| r.uid).collect();
        assert_eq!(uids, ["a", "b"]);
        assert!(store.remove(ROOT, "a"));
        assert!(!store.remove(ROOT, "a"));
        assert_eq!(store.list(ROOT).await.unwrap().len(), 1);
        assert_eq!(store.writes(), 0);
    }

    #[tokio::test]
    async fn injected_faults_fail_calls_and_items() {
        let store = MemoryStore::new();
        store.insert(ROOT, Record::new(Kind::Task, "t"));
        store.fail_next(ErrorKind::Unavailable);
        let err = store.list(ROOT).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unavailable);
        assert!(store.list(ROOT).await.is_ok());

        store.fail_item("t", ErrorKind::Invalid);
        let fetched = store.fetch(ROOT, &["t".to_string()]).await.unwrap();
        assert_eq!(fetched[0].as_ref().unwrap_err().kind, ErrorKind::Invalid);
        store.clear_faults();
        assert!(store.fetch(ROOT, &["t".to_string()]).await.unwrap()[0].is_ok());
    }

    #[tokio::test]
    async fn clones_share_data_and_survive_a_poisoned_lock() {
        let store = MemoryStore::new();
        let clone = store.clone();
        let poisoner = store.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.lock();
            panic!("poison the lock");
        })
        .join();
        clone.insert(ROOT, Record::new(Kind::Event, "e"));
        assert_eq!(store.records(ROOT).len(), 1);
    }

    #[tokio::test]
    async fn update_drops_stale_native_text() {
        let store = MemoryStore::new();
        let raw = Raw {
            media_type: "text/vcard".into(),
            text: "BEGIN:VCARD\r\nUID:u\r\nEND:VCARD\r\n".into(),
        };
        let written = store
            .create(
                ROOT,
                &NewItem {
                    record: Record::new(Kind::Contact, "u"),
                    raw: Some(raw),
                },
            )
            .await
            .unwrap();
        let item = store.item(ROOT, "u").unwrap();
        assert!(item.raw.is_some());
        let change = FieldChange {
            field: "note".into(),
            value: Some(Value::text("x")),
        };
        store
            .update(ROOT, &item, &written.version, &[change])
            .await
            .unwrap();
        assert_eq!(store.item(ROOT, "u").unwrap().raw, None);
        assert_eq!(store.writes(), 2);
    }
}
