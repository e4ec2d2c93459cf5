//! [`Echoes`]: what a run wrote to each side, kept so the engine can tell
//! its own writes from anyone else's when a change feed reports them.
//!
//! After a run writes to a store with a change feed (a SQL version column,
//! DAV sync-collection), the feed lists those writes as changes. Reading
//! them back next run finds nothing to do but costs a fetch per item. The
//! engine reads the feed once more after the last flush: when every change
//! it reports is one recorded here — the same id at the version the write
//! left, or an id this run deleted — the feed's newer token can be saved;
//! any other change keeps the older token, so no one else's write is ever
//! skipped.

use std::collections::HashSet;
use std::hash::BuildHasher;
use tandem_record::Side;
use tandem_store::{Changes, Written};

/// The writes a run made, per side, as digests: a million writes cost
/// about 16 MB. Digests are 64-bit; a foreign change taken for one of ours
/// would need the same digest for another `(id, version)`, which is left
/// to chance at 1 in 2^64 per change.
#[derive(Debug, Default)]
pub struct Echoes {
    hasher: std::hash::RandomState,
    /// `(id, version)` each create or update left, per side.
    written: [HashSet<u64>; 2],
    /// Ids deleted, per side.
    deleted: [HashSet<u64>; 2],
}

impl Echoes {
    fn ix(side: Side) -> usize {
        match side {
            Side::A => 0,
            Side::B => 1,
        }
    }

    /// Records one successful write: where it left the item, or for a
    /// delete (`written` is `None`) the id it removed.
    pub fn record(&mut self, side: Side, id: Option<&str>, written: Option<&Written>) {
        let s = Self::ix(side);
        match written {
            Some(w) => {
                let digest = self.hasher.hash_one((w.id.as_str(), w.version.as_str()));
                self.written[s].insert(digest);
            }
            None => {
                if let Some(id) = id {
                    let digest = self.hasher.hash_one(id);
                    self.deleted[s].insert(digest);
                }
            }
        }
    }

    /// True when this run wrote to `side`.
    pub fn wrote(&self, side: Side) -> bool {
        let s = Self::ix(side);
        !self.written[s].is_empty() || !self.deleted[s].is_empty()
    }

    /// True when every change in `changes` is one of this run's writes to
    /// `side`, at the version it left.
    pub fn only_ours(&self, side: Side, changes: &Changes) -> bool {
        let s = Self::ix(side);
        changes.changed.iter().all(|c| {
            self.written[s].contains(&self.hasher.hash_one((c.id.as_str(), c.version.as_str())))
        }) && changes
            .deleted
            .iter()
            .all(|id| self.deleted[s].contains(&self.hasher.hash_one(id.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_store::Listed;

    fn written(id: &str, version: &str) -> Written {
        Written {
            id: id.into(),
            version: version.into(),
        }
    }

    fn changes(changed: &[(&str, &str)], deleted: &[&str]) -> Changes {
        Changes {
            changed: changed
                .iter()
                .map(|(id, version)| Listed {
                    id: id.to_string(),
                    version: version.to_string(),
                })
                .collect(),
            deleted: deleted.iter().map(|d| d.to_string()).collect(),
            token: "t".into(),
        }
    }

    #[test]
    fn only_this_runs_writes_at_their_versions_count_as_ours() {
        let mut echoes = Echoes::default();
        assert!(!echoes.wrote(Side::B));
        echoes.record(Side::B, None, Some(&written("r1", "5")));
        echoes.record(Side::B, Some("r2"), None);
        assert!(echoes.wrote(Side::B) && !echoes.wrote(Side::A));
        assert!(echoes.only_ours(Side::B, &changes(&[("r1", "5")], &["r2"])));
        assert!(echoes.only_ours(Side::B, &changes(&[], &[])));
        // Someone wrote r1 again after us.
        assert!(!echoes.only_ours(Side::B, &changes(&[("r1", "6")], &[])));
        // Someone changed or deleted a row we did not touch.
        assert!(!echoes.only_ours(Side::B, &changes(&[("r1", "5"), ("r3", "7")], &[])));
        assert!(!echoes.only_ours(Side::B, &changes(&[], &["r1"])));
        // Writes to one side say nothing about the other.
        assert!(!echoes.only_ours(Side::A, &changes(&[("r1", "5")], &[])));
    }
}
