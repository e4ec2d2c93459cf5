//! The boundary between the engine and an app: the [`Store`] trait, its
//! error type, an in-memory store, the conformance suite every store must
//! pass and [`Forward`], the base of stores that wrap another.
//!
//! A store holds *collections* (an address book, a calendar, a table) of
//! *items*. Each item has a store-chosen `id` (a file name, an href, a
//! primary key) and an opaque `version` (file metadata, an ETag, a version
//! column) that changes whenever the item changes. The engine lists
//! `(id, version)` pairs, fetches only the items whose version moved, and
//! writes with the version it expects, so a change it has not seen is never
//! overwritten.
//!
//! Items travel as canonical [`Record`]s plus, where the store keeps a
//! native text (a vCard, an iCalendar object), that text as [`Raw`]. Updates
//! are *patches*: the store applies only the changed fields to its own item,
//! so whatever Tandem does not map survives.

mod error;
mod forward;
mod memory;
mod started;

pub mod conformance;
pub mod naming;

pub use error::{Error, ErrorKind, ItemError, Result};
pub use forward::Forward;
pub use memory::MemoryStore;
pub use started::Started;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tandem_record::{FieldChange, Record};

/// The collection every store has: a vdir's top folder, a table.
pub const ROOT: &str = "";

/// An item's native text and its media type (`text/vcard`, `text/calendar`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Raw {
    pub media_type: String,
    pub text: String,
}

/// One line of a listing: which items exist and at which version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    pub id: String,
    pub version: String,
}

/// A fetched item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    pub version: String,
    pub record: Record,
    pub raw: Option<Raw>,
}

/// What to create: a record and, when copied from a store that keeps the
/// same native format, the source's text (written as is, so nothing is lost).
#[derive(Debug, Clone, PartialEq)]
pub struct NewItem {
    pub record: Record,
    pub raw: Option<Raw>,
}

/// Where a write left an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    pub id: String,
    pub version: String,
}

/// Changes in a collection since a token, for stores with a change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    pub changed: Vec<Listed>,
    pub deleted: Vec<String>,
    pub token: String,
}

/// An app's records, as the engine sees them.
///
/// Writes are guarded: `update` and `delete` take the version the caller
/// last saw and fail with [`ErrorKind::PreconditionFailed`] when the item
/// has moved on. `create` is idempotent by UID: creating an item whose UID
/// the collection already holds with the same content returns that item;
/// with other content it fails with [`ErrorKind::AlreadyExists`].
///
/// Calls are started and left: the engine polls a chunk's writes, a
/// read ahead or a flush once, makes other calls while they run, and
/// awaits them later. So a call must make progress without being polled
/// again (on a thread or task of its own), and must not hold anything that
/// a later call waits for while it waits to be polled. The conformance
/// suite checks this.
#[async_trait]
pub trait Store: Send + Sync {
    /// The collections this store holds; always includes [`ROOT`].
    async fn collections(&self) -> Result<Vec<String>>;

    /// Creates a collection (a subfolder, an address book). A store that is
    /// one collection (a table, a file) answers [`ErrorKind::Unsupported`]
    /// for any name but [`ROOT`].
    async fn create_collection(&self, name: &str) -> Result<()>;

    /// Every item of a collection with its current version.
    async fn list(&self, collection: &str) -> Result<Vec<Listed>>;

    /// Fetches items; one bad item yields an [`ItemError`], not a failed call.
    async fn fetch(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<std::result::Result<Item, ItemError>>>;

    /// Creates an item, idempotently by UID.
    async fn create(&self, collection: &str, item: &NewItem) -> Result<Written>;

    /// Applies `changes` to the item `current` (as fetched), if its version is
    /// still `expected`. Fields not named in `changes`, and everything the
    /// native item holds that Tandem does not map, stay as they are.
    async fn update(
        &self,
        collection: &str,
        current: &Item,
        expected: &str,
        changes: &[FieldChange],
    ) -> Result<Written>;

    /// Deletes an item if its version is still `expected`.
    async fn delete(&self, collection: &str, id: &str, expected: &str) -> Result<()>;

    /// Makes every write so far durable; called before state that records
    /// those writes is committed. The engine goes on writing the next batch
    /// while a flush runs (see above): writes asked for after it began
    /// belong to the next flush.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// True when the app behind the store may rewrite the native text it is
    /// given (a DAV server that sorts properties and unquotes parameters):
    /// a fetched text then means the same as the one written without being
    /// byte for byte the same.
    fn rewrites_items(&self) -> bool {
        false
    }

    /// How many writes the engine may hand over at once, each on a
    /// different item. A folder of files takes many into a queue its own
    /// threads work through (the kernel's work spreads over the cores, and
    /// goes on while the engine plans what comes next); an app that takes
    /// writes one at a time (a DAV server holding a lock, a database
    /// transaction), one.
    fn concurrent_writes(&self) -> usize {
        1
    }

    /// Changes since `token` (`None`: a first token). Stores without a change
    /// feed answer [`ErrorKind::Unsupported`] and the engine lists instead.
    async fn changes_since(&self, _collection: &str, _token: Option<&str>) -> Result<Changes> {
        Err(Error::new(ErrorKind::Unsupported, "no change feed"))
    }
}
