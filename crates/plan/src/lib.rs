//! The pure decision at the heart of a sync: given what both sides agreed
//! on at the last sync (the base), what side A holds now and what side B
//! holds now, and the pair's [`Policy`], decide what to write where.
//!
//! No I/O happens here. The engine lists both stores, joins the listings
//! with the saved links into [`Entry`]s, fetches what moved, and hands each
//! entry to [`decide`]; the resulting [`ItemPlan`]s form the printable
//! [`Plan`] that the apply stage executes.
//!
//! ```
//! use tandem_plan::{decide, Current, Entry, Policy, Write};
//! use tandem_record::{Kind, Record, Side, Value};
//!
//! let base = Record::new(Kind::Contact, "u1").with("title", Value::text("Dev"));
//! let on_a = base.clone().with("note", Value::text("met at expo"));
//! let entry = Entry {
//!     uid: "u1".into(),
//!     base: Some(base.clone()),
//!     a: Some(Current::moved("u1.vcf", "v2", on_a)),
//!     b: Some(Current::unmoved("u1.vcf", "v1", base)),
//! };
//! let plan = decide(&entry, &Policy::default());
//! assert!(matches!(&plan.writes[0], Write::Update { side: Side::B, changes, .. } if changes[0].field == "note"));
//! ```

mod brake;
mod merge;
mod policy;

pub use brake::{check_brakes, Brake, MaxDelete, SideCounts};
pub use merge::{merge_fields, FieldMerge, KEYED_LISTS, RULE, SERIES};
pub use policy::{ConflictRule, Direction, Policy};

use serde::Serialize;
use tandem_record::{FieldChange, Record, Side};

/// An item as it is now on one side.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    pub id: String,
    pub version: String,
    /// The item's content; `None` when it was not fetched because its
    /// version did not move.
    pub record: Option<Record>,
    /// True when the version differs from the one saved with the link (or
    /// there is no link).
    pub moved: bool,
}

impl Current {
    pub fn moved(id: impl Into<String>, version: impl Into<String>, record: Record) -> Self {
        Current {
            id: id.into(),
            version: version.into(),
            record: Some(record),
            moved: true,
        }
    }

    pub fn unmoved(id: impl Into<String>, version: impl Into<String>, record: Record) -> Self {
        Current {
            id: id.into(),
            version: version.into(),
            record: Some(record),
            moved: false,
        }
    }
}

/// One record's situation across a pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub uid: String,
    /// The record both sides agreed on at the last sync; `None` when the two
    /// sides were never linked.
    pub base: Option<Record>,
    pub a: Option<Current>,
    pub b: Option<Current>,
}

impl Entry {
    pub fn side(&self, side: Side) -> Option<&Current> {
        match side {
            Side::A => self.a.as_ref(),
            Side::B => self.b.as_ref(),
        }
    }
}

/// A write to one store.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Create the record on `side`, copied from the item on the other side.
    Create { side: Side, record: Record },
    /// Patch the item `id` on `side` with `changes`, if still at `version`.
    Update {
        side: Side,
        id: String,
        version: String,
        changes: Vec<FieldChange>,
    },
    /// Delete the item `id` on `side`, if still at `version`.
    Delete {
        side: Side,
        id: String,
        version: String,
    },
}

impl Write {
    pub fn side(&self) -> Side {
        match self {
            Write::Create { side, .. }
            | Write::Update { side, .. }
            | Write::Delete { side, .. } => *side,
        }
    }
}

/// What the state records for an item once its writes succeeded.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Nothing to record.
    Keep,
    /// Save the link with this base (new link, merged content, new versions).
    Link { base: Record },
    /// Drop the link: the record is gone on both sides, or unlinked.
    Forget,
    /// Same field changed on both sides under the `manual` policy: both
    /// sides stay as they are and the clash goes to the inbox.
    Conflict { fields: Vec<String> },
}

/// The decision for one record.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemPlan {
    pub uid: String,
    pub writes: Vec<Write>,
    pub outcome: Outcome,
    /// Why, in a few words, for `plan` output.
    pub reason: &'static str,
    /// Fields whose clash a policy settled (reported, not written to the inbox).
    pub settled: Vec<String>,
}

impl ItemPlan {
    fn new(uid: &str, reason: &'static str, outcome: Outcome) -> Self {
        ItemPlan {
            uid: uid.to_string(),
            writes: Vec::new(),
            outcome,
            reason,
            settled: Vec::new(),
        }
    }

    /// True when this plan neither writes nor changes what the state shows
    /// to a user (a refreshed version is not news).
    pub fn is_quiet(&self) -> bool {
        self.writes.is_empty() && matches!(self.outcome, Outcome::Keep)
    }

    /// The operations a user sees for this item, in `plan --json` form.
    pub fn operations(&self, new_link: bool) -> Vec<Operation> {
        let mut ops: Vec<Operation> = self
            .writes
            .iter()
            .map(|w| match w {
                Write::Create { side, record } => Operation {
                    op: "create",
                    side: Some(*side),
                    id: self.uid.clone(),
                    fields: record.fields.keys().cloned().collect(),
                    reason: self.reason,
                },
                Write::Update { side, changes, .. } => Operation {
                    op: "update",
                    side: Some(*side),
                    id: self.uid.clone(),
                    fields: changes.iter().map(|c| c.field.clone()).collect(),
                    reason: self.reason,
                },
                Write::Delete { side, .. } => Operation {
                    op: "delete",
                    side: Some(*side),
                    id: self.uid.clone(),
                    fields: Vec::new(),
                    reason: self.reason,
                },
            })
            .collect();
        match &self.outcome {
            Outcome::Conflict { fields } => ops.push(Operation {
                op: "conflict",
                side: None,
                id: self.uid.clone(),
                fields: fields.clone(),
                reason: self.reason,
            }),
            Outcome::Link { .. }
                if new_link
                    && !self
                        .writes
                        .iter()
                        .any(|w| matches!(w, Write::Create { .. })) =>
            {
                ops.push(Operation {
                    op: "link",
                    side: None,
                    id: self.uid.clone(),
                    fields: Vec::new(),
                    reason: self.reason,
                })
            }
            _ => {}
        }
        ops
    }
}

/// One line of a printed plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operation {
    pub op: &'static str,
    /// The side that would be written; none for link and conflict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side: Option<Side>,
    /// The record's UID.
    pub id: String,
    pub fields: Vec<String>,
    pub reason: &'static str,
}

/// A side's state relative to the base.
#[derive(Debug, Clone, Copy)]
enum Seen<'a> {
    Absent,
    /// Present and, as far as content goes, equal to the base.
    Same(&'a Current),
    /// Present with content that differs from the base (or no base).
    Changed(&'a Current, &'a Record),
}

fn observe<'a>(current: Option<&'a Current>, base: Option<&Record>) -> Seen<'a> {
    match (current, base) {
        (None, _) => Seen::Absent,
        (Some(c), Some(base)) => match &c.record {
            Some(r) if c.moved && !r.same_content(base) => Seen::Changed(c, r),
            _ => Seen::Same(c),
        },
        (Some(c), None) => match &c.record {
            Some(r) => Seen::Changed(c, r),
            // Unlinked items are always fetched; without content there is
            // nothing to decide on.
            None => Seen::Same(c),
        },
    }
}

/// Decides what to do with one record. Pure: same input, same plan.
pub fn decide(entry: &Entry, policy: &Policy) -> ItemPlan {
    let base = entry.base.as_ref();
    let a = observe(entry.a.as_ref(), base);
    let b = observe(entry.b.as_ref(), base);
    let uid = entry.uid.as_str();

    match (base, a, b) {
        // ---- never linked ----
        (None, Seen::Absent, Seen::Absent) => {
            ItemPlan::new(uid, "nothing on either side", Outcome::Keep)
        }
        (None, Seen::Changed(_, r), Seen::Absent) => create_from(uid, Side::A, r, policy),
        (None, Seen::Absent, Seen::Changed(_, r)) => create_from(uid, Side::B, r, policy),
        (None, Seen::Changed(ca, ra), Seen::Changed(cb, rb)) => {
            merge(uid, None, (ca, ra), (cb, rb), policy, "new on both sides")
        }
        (None, _, _) => ItemPlan::new(uid, "not fetched", Outcome::Keep),

        // ---- linked ----
        (Some(_), Seen::Absent, Seen::Absent) => {
            ItemPlan::new(uid, "deleted on both sides", Outcome::Forget)
        }
        (Some(base), Seen::Same(ca), Seen::Same(cb)) => {
            if ca.moved || cb.moved {
                ItemPlan::new(
                    uid,
                    "version moved, content unchanged",
                    Outcome::Link { base: base.clone() },
                )
            } else {
                ItemPlan::new(uid, "unchanged", Outcome::Keep)
            }
        }
        (Some(base), Seen::Changed(_, r), Seen::Same(other)) => {
            one_side_changed(uid, Side::A, base, r, other, policy)
        }
        (Some(base), Seen::Same(other), Seen::Changed(_, r)) => {
            one_side_changed(uid, Side::B, base, r, other, policy)
        }
        (Some(base), Seen::Changed(ca, ra), Seen::Changed(cb, rb)) => merge(
            uid,
            Some(base),
            (ca, ra),
            (cb, rb),
            policy,
            "changed on both sides",
        ),
        (Some(base), Seen::Absent, Seen::Same(other)) => {
            deleted_on(uid, Side::A, base, other, policy)
        }
        (Some(base), Seen::Same(other), Seen::Absent) => {
            deleted_on(uid, Side::B, base, other, policy)
        }
        (Some(_), Seen::Absent, Seen::Changed(c, r)) => {
            edit_beats_delete(uid, Side::B, c, r, policy)
        }
        (Some(_), Seen::Changed(c, r), Seen::Absent) => {
            edit_beats_delete(uid, Side::A, c, r, policy)
        }
    }
}

/// A record exists only on `from`: create it on the other side.
fn create_from(uid: &str, from: Side, record: &Record, policy: &Policy) -> ItemPlan {
    let to = from.other();
    if !policy.may_create(to) {
        return ItemPlan::new(
            uid,
            "not created: the pair does not create on this side",
            Outcome::Keep,
        );
    }
    // Fields that flow only from `to` are not copied; the base holds what
    // `to` will hold.
    let record = policy.scoped(record, to);
    let mut plan = ItemPlan::new(
        uid,
        "new",
        Outcome::Link {
            base: record.clone(),
        },
    );
    plan.writes.push(Write::Create { side: to, record });
    plan
}

/// `changed` moved away from the base; the other side did not.
fn one_side_changed(
    uid: &str,
    changed: Side,
    base: &Record,
    record: &Record,
    other: &Current,
    policy: &Policy,
) -> ItemPlan {
    let target = changed.other();
    if !policy.direction.writes(target) {
        // An edit on the target of a one-way pair is kept there; the base
        // stays the source's content so only later source edits flow.
        return ItemPlan::new(
            uid,
            "edited on the one-way target: kept",
            Outcome::Link { base: base.clone() },
        );
    }
    let mut new_base = record.clone();
    pin_one_way_fields(policy, &mut new_base, |side| {
        Some(if side == changed { record } else { base })
    });
    let mut plan = ItemPlan::new(uid, "changed", Outcome::Link { base: new_base });
    let changes = writable(base.diff(record), policy, target);
    if !changes.is_empty() {
        plan.writes.push(Write::Update {
            side: target,
            id: other.id.clone(),
            version: other.version.clone(),
            changes,
        });
    }
    plan
}

/// The item on `gone` was deleted; the other side is as it was.
fn deleted_on(uid: &str, gone: Side, base: &Record, other: &Current, policy: &Policy) -> ItemPlan {
    let keeper = gone.other();
    if policy.direction.source() == Some(gone)
        && !policy.mirror
        && other.record.as_ref().is_some_and(|r| !r.same_content(base))
    {
        // The one-way target holds edits of its own, seen at an earlier
        // sync (so its version did not move now): kept, like an edit made
        // since the last sync.
        return ItemPlan::new(
            uid,
            "source deleted, target edited: target kept and unlinked",
            Outcome::Forget,
        );
    }
    if policy.direction.writes(keeper) {
        let mut plan = ItemPlan::new(uid, "deleted", Outcome::Forget);
        plan.writes.push(Write::Delete {
            side: keeper,
            id: other.id.clone(),
            version: other.version.clone(),
        });
        plan
    } else if policy.direction.writes(gone) {
        // Deleted on the target of a one-way pair: the source restores it.
        let record = policy.scoped(other.record.as_ref().unwrap_or(base), gone);
        let mut plan = ItemPlan::new(
            uid,
            "deleted on the one-way target: restored",
            Outcome::Link {
                base: record.clone(),
            },
        );
        plan.writes.push(Write::Create { side: gone, record });
        plan
    } else {
        ItemPlan::new(uid, "deleted", Outcome::Forget)
    }
}

/// Deleted on one side, edited on the other: the edit wins (unless the
/// edited side mirrors the deleting source).
fn edit_beats_delete(
    uid: &str,
    edited: Side,
    current: &Current,
    record: &Record,
    policy: &Policy,
) -> ItemPlan {
    let gone = edited.other();
    if policy.mirror && policy.direction.source() == Some(gone) {
        let mut plan = ItemPlan::new(uid, "deleted on the source: mirrored", Outcome::Forget);
        plan.writes.push(Write::Delete {
            side: edited,
            id: current.id.clone(),
            version: current.version.clone(),
        });
        return plan;
    }
    if policy.direction.writes(gone) {
        let record = policy.scoped(record, gone);
        let mut plan = ItemPlan::new(
            uid,
            "edited on one side, deleted on the other: edit wins",
            Outcome::Link {
                base: record.clone(),
            },
        );
        plan.writes.push(Write::Create { side: gone, record });
        plan
    } else {
        ItemPlan::new(
            uid,
            "source deleted, target edited: target kept and unlinked",
            Outcome::Forget,
        )
    }
}

/// Both sides hold the record with content of their own: merge field by field.
fn merge(
    uid: &str,
    base: Option<&Record>,
    (ca, ra): (&Current, &Record),
    (cb, rb): (&Current, &Record),
    policy: &Policy,
    reason: &'static str,
) -> ItemPlan {
    let FieldMerge {
        merged,
        conflicts,
        settled,
    } = merge_fields(base, ra, rb, policy);
    if !conflicts.is_empty() {
        let mut plan = ItemPlan::new(
            uid,
            "same field changed on both sides",
            Outcome::Conflict { fields: conflicts },
        );
        plan.settled = settled;
        return plan;
    }
    // On a one-way pair the base is the source's content, so that only the
    // source's later edits flow to the target.
    let new_base = match policy.direction {
        Direction::Both => {
            let mut new_base = merged.clone();
            pin_one_way_fields(policy, &mut new_base, |side| {
                Some(match side {
                    Side::A => ra,
                    Side::B => rb,
                })
            });
            new_base
        }
        Direction::AToB => ra.clone(),
        Direction::BToA => rb.clone(),
    };
    let mut plan = ItemPlan::new(uid, reason, Outcome::Link { base: new_base });
    plan.settled = settled;
    for (side, current, record) in [(Side::A, ca, ra), (Side::B, cb, rb)] {
        if !policy.direction.writes(side) {
            continue;
        }
        let changes = writable(record.diff(&merged), policy, side);
        if !changes.is_empty() {
            plan.writes.push(Write::Update {
                side,
                id: current.id.clone(),
                version: current.version.clone(),
                changes,
            });
        }
    }
    plan
}

/// The changes that may be written to `side` (per-field directions).
fn writable(changes: Vec<FieldChange>, policy: &Policy, side: Side) -> Vec<FieldChange> {
    if policy.field_directions.is_empty() {
        return changes;
    }
    changes
        .into_iter()
        .filter(|c| policy.writes_field(&c.field, side))
        .collect()
}

/// A field flowing one way keeps its source's value in the base, so an
/// edit on its target stays there and never flows back.
fn pin_one_way_fields<'r>(
    policy: &Policy,
    base: &mut Record,
    source_record: impl Fn(Side) -> Option<&'r Record>,
) {
    for (field, direction) in &policy.field_directions {
        let Some(record) = direction.source().and_then(&source_record) else {
            continue;
        };
        match record.get(field) {
            Some(v) => base.set(field.clone(), v.clone()),
            None => {
                base.remove(field);
            }
        }
    }
}

/// A printable plan for one pair.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub items: Vec<ItemPlan>,
}

#[cfg(test)]
mod tests;
