//! What Tandem saw last, per pair: the [`Link`] between an item on side A
//! and its twin on side B, the versions seen at the last sync, the base
//! record both sides agreed on (for field-level merge), the journal of every
//! write (before/after, for `history` and `undo`), the conflicts inbox and
//! the list of runs.
//!
//! [`StateStore`] is the boundary; [`SqliteState`] is the embedded default.
//! The trait is plain synchronous calls on owned data so a PostgreSQL
//! implementation can follow without touching the engine. [`ForwardState`]
//! is the base of state stores that wrap another.
//!
//! Writes to the state come in [`Batch`]es, each committed in one
//! transaction, so a run that dies leaves every item either as it was or
//! fully recorded.

mod background;
mod forward;
mod sqlite;

pub use background::{at_once, Background};
pub use forward::ForwardState;
pub use sqlite::SqliteState;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tandem_record::Record;

pub use tandem_record::Side;

/// An item on one side as last seen: its id and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub id: String,
    pub version: String,
}

/// Two items known to be the same record, without the (larger) base record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub uid: String,
    pub a: Option<Seen>,
    pub b: Option<Seen>,
}

/// A saved link as a scan reads it back: each side's id and the key of the
/// version seen there ([`version_key`]). A scan only compares versions
/// with a listing's, and a write takes the version of the item it
/// fetches, so the version texts are not loaded: at 100k links they would
/// take another 10 MB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub uid: String,
    pub a: Option<SeenKey>,
    pub b: Option<SeenKey>,
}

/// An item on one side as last seen: its id, and its version as a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenKey {
    pub id: String,
    pub key: u64,
}

impl From<&Seen> for SeenKey {
    fn from(seen: &Seen) -> SeenKey {
        SeenKey {
            id: seen.id.clone(),
            key: version_key(&seen.version),
        }
    }
}

impl From<&Link> for Known {
    fn from(link: &Link) -> Known {
        Known {
            uid: link.uid.clone(),
            a: link.a.as_ref().map(SeenKey::from),
            b: link.b.as_ref().map(SeenKey::from),
        }
    }
}

/// The comparable form of a version: equal versions have equal keys, and
/// two different versions of an item share one by chance once in 2^64.
pub fn version_key(version: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x7a4d_656d).hash_one(version)
}

/// A link to save, with the base record both sides now agree on.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkUpdate {
    pub link: Link,
    pub base: Record,
}

/// The write a journal entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteOp {
    Create,
    Update,
    Delete,
}

impl WriteOp {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteOp::Create => "create",
            WriteOp::Update => "update",
            WriteOp::Delete => "delete",
        }
    }
}

/// An item's content at one moment: its record and native text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub record: Record,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// One write to a store, as journaled.
///
/// An entry is added as `pending` before the write is made and marked done
/// (with the version the store answered) in the batch that records its
/// outcome, so a write cut short by a crash is still on record. A create's
/// after-image comes with its outcome: until then the entry says what was
/// to be created where, not with which content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Filled in by the state store.
    #[serde(default)]
    pub seq: i64,
    pub run: i64,
    pub pair: String,
    pub collection: String,
    pub side: Side,
    /// The store's name in the config.
    pub store: String,
    pub op: WriteOp,
    pub uid: String,
    /// The item's id; for a create, filled in when done.
    pub id: Option<String>,
    pub before: Option<Image>,
    pub after: Option<Image>,
    pub version_before: Option<String>,
    pub version_after: Option<String>,
    /// True once the write is known to have happened.
    pub done: bool,
    /// Unix seconds.
    pub at: i64,
}

/// A same-field clash waiting in the inbox (policy `manual`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// Filled in by the state store.
    #[serde(default)]
    pub id: i64,
    pub run: i64,
    pub pair: String,
    pub collection: String,
    pub uid: String,
    pub fields: Vec<String>,
    pub a: Option<Record>,
    pub b: Option<Record>,
    pub base: Option<Record>,
    /// Unix seconds.
    pub created_at: i64,
}

/// One run of `sync` or `undo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: i64,
    /// `sync` or `undo`.
    pub command: String,
    pub pairs: Vec<String>,
    /// Unix seconds.
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// `running`, `done`, `failed`, `stopped` (a safety brake).
    pub outcome: String,
}

/// A journal entry's outcome: `(seq, id, version_after, after)`; `id` is
/// `None` to keep the one journaled (always known except for creates).
pub type JournalDone = (i64, Option<String>, Option<String>, Option<Image>);

/// Everything one step of a run records, committed atomically.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub pair: String,
    pub collection: String,
    /// Links to insert or replace (keyed by UID).
    pub links: Vec<LinkUpdate>,
    /// UIDs whose link is gone (both sides deleted, or unlinked).
    pub forget: Vec<String>,
    /// Journal entries to mark done: `(seq, id, version_after, after)`.
    pub done: Vec<JournalDone>,
    /// Conflicts to add to the inbox; each replaces the open conflict of
    /// the same item, if any.
    pub conflicts: Vec<Conflict>,
    /// Conflicts settled (by `resolve` or because the item was synced);
    /// settling one that is no longer open is not an error.
    pub settled: Vec<i64>,
    /// The batch's records as the state stores them, when [`Batch::encode`]
    /// made them ahead of the commit; a commit encodes what is not here (or
    /// no longer matches the batch) itself.
    encoded: Option<Encoded>,
}

/// A batch's records as JSON, made by [`Batch::encode`].
#[derive(Debug, Clone, PartialEq)]
struct Encoded {
    /// Parallel to `links`: each link's base.
    bases: Vec<String>,
    /// Parallel to `done`: each entry's after-image, if it has one.
    afters: Vec<Option<String>>,
}

impl Batch {
    pub fn new(pair: &str, collection: &str) -> Self {
        Batch {
            pair: pair.to_string(),
            collection: collection.to_string(),
            ..Batch::default()
        }
    }

    /// Encodes the links' base records and the finished journal entries'
    /// after-images as the state stores them, so that the commit does no
    /// more than write. The encoding is the bulk of a commit's CPU time; a
    /// caller that commits on a busy thread does this beforehand on
    /// another. Links or entries added afterwards undo it (the commit then
    /// encodes them all itself).
    pub fn encode(&mut self) -> Result<()> {
        let bases: Vec<String> = self
            .links
            .iter()
            .map(|update| encode(&update.base, "base record"))
            .collect::<Result<_>>()?;
        // A create's after-image is most often its link's base with the
        // item's own modification time: its JSON is then made from the
        // base's rather than encoded a second time.
        let by_uid: HashMap<&str, usize> = self
            .links
            .iter()
            .enumerate()
            .map(|(i, update)| (update.link.uid.as_str(), i))
            .collect();
        let afters = self
            .done
            .iter()
            .map(|(_, _, _, after)| {
                let Some(image) = after else {
                    return Ok(None);
                };
                let from_base = by_uid
                    .get(image.record.uid.as_str())
                    .and_then(|&i| image_from_base(image, &self.links[i].base, &bases[i]));
                match from_base {
                    Some(json) => Ok(Some(json)),
                    None => encode(image, "journal image").map(Some),
                }
            })
            .collect::<Result<_>>()?;
        self.encoded = Some(Encoded { bases, afters });
        Ok(())
    }

    /// What [`Batch::encode`] made, when it was made for the batch as it is now.
    fn encoded(&self) -> Option<&Encoded> {
        self.encoded
            .as_ref()
            .filter(|e| e.bases.len() == self.links.len() && e.afters.len() == self.done.len())
    }

    /// The JSON of `links[i].base`, when [`Batch::encode`] made it.
    pub(crate) fn encoded_base(&self, i: usize) -> Option<&str> {
        self.encoded().map(|e| e.bases[i].as_str())
    }

    /// The JSON of `done[i]`'s after-image (`Some(None)` when it has
    /// none), when [`Batch::encode`] made it.
    pub(crate) fn encoded_after(&self, i: usize) -> Option<Option<&str>> {
        self.encoded().map(|e| e.afters[i].as_deref())
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
            && self.forget.is_empty()
            && self.done.is_empty()
            && self.conflicts.is_empty()
            && self.settled.is_empty()
    }
}

/// The JSON of `image`, made from `base_json` (the JSON of `base`), when
/// the image holds no native text and its record is `base` but for its
/// modification time: exactly what encoding the image gives, as
/// `an_image_made_from_its_base_is_the_image_encoded` checks.
fn image_from_base(image: &Image, base: &Record, base_json: &str) -> Option<String> {
    let record = &image.record;
    let same = image.raw.is_none()
        && image.media_type.is_none()
        && base.modified.is_none()
        && record.kind == base.kind
        && record.uid == base.uid
        && (std::sync::Arc::ptr_eq(&record.fields, &base.fields) || record.fields == base.fields);
    if !same {
        return None;
    }
    // `Record` encodes its fields in order, `modified` last and only when set.
    Some(match record.modified {
        None => format!("{{\"record\":{base_json}}}"),
        Some(modified) => {
            let open = base_json.strip_suffix('}')?;
            format!("{{\"record\":{open},\"modified\":{modified}}}}}")
        }
    })
}

/// `value` as the state stores it: JSON text.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| StateError::Corrupt(format!("cannot write {what} as JSON: {e}")))
}

/// A failed state call.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("state folder {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state database holds a record it cannot read: {0}")]
    Corrupt(String),
    #[error("state database schema version {found} is newer than this Tandem ({supported})")]
    TooNew { found: i64, supported: i64 },
    #[error("no such {what}: {id}")]
    NotFound { what: &'static str, id: i64 },
}

pub type Result<T> = std::result::Result<T, StateError>;

/// Where Tandem keeps what it saw last.
pub trait StateStore: Send {
    /// Every link of a pair's collection, without base records.
    fn links(&self, pair: &str, collection: &str) -> Result<Vec<Known>>;

    /// The links of a pair's collection whose item on A is one of `ids[0]`
    /// or whose item on B is one of `ids[1]`, each once, without base
    /// records. A run that knows what changed on both sides loads only
    /// these.
    fn links_touching(
        &self,
        pair: &str,
        collection: &str,
        ids: [&[String]; 2],
    ) -> Result<Vec<Known>> {
        let wanted: [std::collections::HashSet<&str>; 2] =
            ids.map(|ids| ids.iter().map(String::as_str).collect());
        Ok(self
            .links(pair, collection)?
            .into_iter()
            .filter(|l| {
                l.a.as_ref()
                    .is_some_and(|s| wanted[0].contains(s.id.as_str()))
                    || l.b
                        .as_ref()
                        .is_some_and(|s| wanted[1].contains(s.id.as_str()))
            })
            .collect())
    }

    /// How many links of a pair's collection have an item on A, and on B.
    fn link_counts(&self, pair: &str, collection: &str) -> Result<[u64; 2]> {
        let links = self.links(pair, collection)?;
        Ok([
            links.iter().filter(|l| l.a.is_some()).count() as u64,
            links.iter().filter(|l| l.b.is_some()).count() as u64,
        ])
    }

    /// The collections a pair has links in.
    fn collections(&self, pair: &str) -> Result<Vec<String>>;

    /// The base records of the given UIDs (missing UIDs are left out).
    fn bases(
        &self,
        pair: &str,
        collection: &str,
        uids: &[String],
    ) -> Result<HashMap<String, Record>>;

    /// Starts a run and returns its id.
    fn begin_run(&mut self, command: &str, pairs: &[String]) -> Result<i64>;

    /// Records how a run ended.
    fn finish_run(&mut self, run: i64, outcome: &str) -> Result<()>;

    /// Newest first.
    fn runs(&self, limit: usize) -> Result<Vec<Run>>;

    /// Adds journal entries as pending before their writes; returns their seqs.
    fn journal_pending(&mut self, entries: &[JournalEntry]) -> Result<Vec<i64>>;

    /// A run's journal, in write order.
    fn journal(&self, run: i64) -> Result<Vec<JournalEntry>>;

    /// Commits a batch in one transaction.
    fn commit(&mut self, batch: &Batch) -> Result<()>;

    /// Commits a batch in one transaction, on another thread where the
    /// state can, while the caller goes on with work that does not touch
    /// the state. Every later call waits for that commit first, so calls
    /// still take effect in the order they were made; the commit's error,
    /// if it fails, is the next call's. The default commits at once.
    fn commit_soon(&mut self, batch: Batch) -> Result<()> {
        self.commit(&batch)
    }

    /// Waits for a batch handed to [`StateStore::commit_soon`]; its error,
    /// if it failed, is returned here.
    fn committed(&mut self) -> Result<()> {
        Ok(())
    }

    /// Open conflicts, oldest first.
    fn conflicts(&self) -> Result<Vec<Conflict>>;

    /// One open conflict; `NotFound` when there is none with that id or it
    /// was settled.
    fn conflict(&self, id: i64) -> Result<Conflict> {
        self.conflicts()?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or(StateError::NotFound {
                what: "conflict",
                id,
            })
    }

    /// Settles one open conflict (`tandem resolve`); `NotFound` when it is
    /// not open.
    fn settle(&mut self, id: i64) -> Result<()> {
        let conflict = self.conflict(id)?;
        let mut batch = Batch::new(&conflict.pair, &conflict.collection);
        batch.settled.push(id);
        self.commit(&batch)
    }

    /// A change-feed token (sync-token) saved for a store's collection.
    fn token(&self, pair: &str, side: Side, collection: &str) -> Result<Option<String>>;

    fn set_token(
        &mut self,
        pair: &str,
        side: Side,
        collection: &str,
        token: Option<&str>,
    ) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_record::{Kind, Value};

    fn image(record: Record) -> Image {
        Image {
            record,
            raw: None,
            media_type: None,
        }
    }

    #[test]
    fn an_image_made_from_its_base_is_the_image_encoded() {
        let base = Record::new(Kind::Contact, "u1")
            .with("full_name", Value::text("Ada \"the\" Countess"))
            .with("emails", Value::List(vec![Value::text("ada@example.org")]));
        let empty = Record::new(Kind::Event, "e\\1");
        for base in [base, empty] {
            let base_json = encode(&base, "base").expect("encode");
            let unshared = Record {
                fields: std::sync::Arc::new((*base.fields).clone()),
                ..base.clone()
            };
            for record in [base.clone(), unshared] {
                for modified in [None, Some(1_700_000_000), Some(-5)] {
                    let image = image(Record {
                        modified,
                        ..record.clone()
                    });
                    assert_eq!(
                        image_from_base(&image, &base, &base_json),
                        Some(encode(&image, "image").expect("encode")),
                        "{image:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn an_image_unlike_its_base_is_encoded_on_its_own() {
        let base = Record::new(Kind::Contact, "u1").with("full_name", Value::text("Ada"));
        let base_json = encode(&base, "base").expect("encode");
        let other = image(base.clone().with("title", Value::text("Analyst")));
        assert_eq!(image_from_base(&other, &base, &base_json), None);
        let with_text = Image {
            raw: Some("BEGIN:VCARD".into()),
            media_type: Some("text/vcard".into()),
            ..image(base.clone())
        };
        assert_eq!(image_from_base(&with_text, &base, &base_json), None);

        // Encoding a batch falls back to the image's own JSON.
        let mut batch = Batch::new("p", "c");
        batch.links.push(LinkUpdate {
            link: Link {
                uid: "u1".into(),
                a: None,
                b: None,
            },
            base,
        });
        batch.done.push((1, None, None, Some(other.clone())));
        batch.encode().expect("encode");
        assert_eq!(
            batch.encoded_after(0),
            Some(Some(encode(&other, "image").expect("encode").as_str()))
        );
    }
}
