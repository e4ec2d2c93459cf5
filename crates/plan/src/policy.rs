//! A pair's rules for the planner: which way data flows, where records may
//! be created, and who wins when both sides changed the same field.

use std::collections::BTreeMap;
use tandem_record::{Record, Side};

/// Which way updates flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Both,
    /// A is the source: B is written, A never is.
    AToB,
    /// B is the source: A is written, B never is.
    BToA,
}

impl Direction {
    /// True when this direction may write to `side`.
    pub fn writes(self, side: Side) -> bool {
        match self {
            Direction::Both => true,
            Direction::AToB => side == Side::B,
            Direction::BToA => side == Side::A,
        }
    }

    /// The one-way source, if any.
    pub fn source(self) -> Option<Side> {
        match self {
            Direction::Both => None,
            Direction::AToB => Some(Side::A),
            Direction::BToA => Some(Side::B),
        }
    }
}

/// Who wins a field changed on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConflictRule {
    A,
    B,
    /// The side whose item was modified last (REV / LAST-MODIFIED, else the
    /// store's own modification time); A on a tie or when neither is known.
    #[default]
    Newest,
    /// Neither: the item goes to the conflicts inbox, both sides untouched.
    Manual,
}

/// Everything the planner needs to know about a pair.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    pub direction: Direction,
    pub conflict: ConflictRule,
    /// Per-field owners: this side wins the field whatever `conflict` says.
    pub owners: BTreeMap<String, Side>,
    /// Where new records may be created; `None` allows what `direction` allows.
    pub create: Option<Direction>,
    /// Creation switched off entirely ("update existing records only").
    pub no_create: bool,
    /// Per-field directions (`[pairs.fields.NAME] direction = "a-to-b"`, and
    /// fields a mapping computes one way): such a field is written only to
    /// its target, its source's value always wins, and the base keeps the
    /// source's value, so a target-only edit stays without flowing back.
    pub field_directions: BTreeMap<String, Direction>,
    /// The one-way target is a view of the source (a table of a calendar's
    /// expanded occurrences): a record gone from the source is deleted on
    /// the target even when the target's copy differs from the base. Such a
    /// target holds only some of the source's fields, so it always differs,
    /// and an edit there must not keep a cancelled occurrence alive.
    pub mirror: bool,
}

impl Policy {
    /// True when a record may be created on `side`.
    pub fn may_create(&self, side: Side) -> bool {
        !self.no_create && self.direction.writes(side) && self.create.is_none_or(|c| c.writes(side))
    }

    /// The side `field` flows from when it flows one way only (by the
    /// pair's direction or its own).
    pub fn field_source(&self, field: &str) -> Option<Side> {
        self.direction
            .source()
            .or_else(|| self.field_directions.get(field).and_then(|d| d.source()))
    }

    /// True when `field` may be written to `side`.
    pub fn writes_field(&self, field: &str, side: Side) -> bool {
        self.direction.writes(side)
            && self
                .field_directions
                .get(field)
                .is_none_or(|d| d.writes(side))
    }

    /// `record` without the fields that may not be written to `side`.
    pub fn scoped(&self, record: &Record, side: Side) -> Record {
        let mut out = record.clone();
        if !self.field_directions.is_empty() {
            out.retain_fields(|f| self.writes_field(f, side));
        }
        out
    }

    /// Who wins `field` when both sides changed it, or `None` for the inbox.
    pub fn winner(&self, field: &str, a: &Record, b: &Record) -> Option<Side> {
        if let Some(source) = self.field_source(field) {
            return Some(source);
        }
        if let Some(owner) = self.owners.get(field) {
            return Some(*owner);
        }
        match self.conflict {
            ConflictRule::A => Some(Side::A),
            ConflictRule::B => Some(Side::B),
            ConflictRule::Newest => match (a.modified, b.modified) {
                (Some(ta), Some(tb)) if tb > ta => Some(Side::B),
                (None, Some(_)) => Some(Side::B),
                _ => Some(Side::A),
            },
            ConflictRule::Manual => None,
        }
    }
}
