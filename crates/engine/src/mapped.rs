//! The mapping step of a sync (`store → record → mapping → plan`): the
//! glue between `sync.rs` and the pair's compiled [`PairMapping`].
//!
//! Items stay in their store's own names wherever a store sees them (the
//! `Fetched` map, updates that patch native text); the planner sees each
//! side's record in the pair's common names, and its writes are translated
//! back before apply. Filters decide which new items take part and which
//! linked items leave; the match ladder pairs new items that no UID pairs.

use crate::config::PairConfig;
use std::collections::{HashMap, HashSet};
use tandem_apply::{Failure, Fetched, Report, Sides};
use tandem_mapping::{OnLeave, PairMapping};
use tandem_plan::{Entry, ItemPlan, Operation, Outcome, Write};
use tandem_record::{Record, Side};
use tandem_state::Conflict;
use tandem_store::Item;

fn failure(sides: Sides<'_>, side: Side, collection: &str, item: &str, reason: String) -> Failure {
    Failure {
        store: sides.name(side).to_string(),
        collection: collection.to_string(),
        item: item.to_string(),
        reason,
    }
}

/// New items of `side` that pass its filter. Items that fail it are left
/// out and their UIDs added to `filtered`, so a same-UID item on the other
/// side is not created over them; an item the filter cannot judge is
/// reported (store, item, reason) and left out too.
pub(crate) fn admit(
    mapping: &PairMapping,
    side: Side,
    items: Vec<Item>,
    sides: Sides<'_>,
    collection: &str,
    report: &mut Report,
    filtered: &mut HashSet<String>,
) -> Vec<Item> {
    if !mapping.filters(side) {
        return items;
    }
    items
        .into_iter()
        .filter(|item| match mapping.admits(side, &item.record) {
            Ok(true) => true,
            Ok(false) => {
                filtered.insert(item.record.uid.clone());
                false
            }
            Err(e) => {
                report.failures.push(failure(
                    sides,
                    side,
                    collection,
                    &item.id,
                    format!("filter_{side}: {e}; skipped"),
                ));
                filtered.insert(item.record.uid.clone());
                false
            }
        })
        .collect()
}

/// `item` as the planner sees it: common names, the link's UID.
pub(crate) fn common(
    mapping: &PairMapping,
    side: Side,
    item: &Item,
    uid: &str,
) -> Result<Record, String> {
    mapping
        .fields
        .to_common(side, &item.record, uid)
        .map_err(|e| {
            format!(
                "map.{}: {}; skipped, nothing done to its twin",
                e.field, e.error
            )
        })
}

/// The plan for a linked item that left its side's filter, if it did.
/// `Err` carries a failure when the filter could not judge it.
pub(crate) fn left_filter(
    pair: &PairConfig,
    entry: &Entry,
    fetched: &Fetched,
) -> Result<Option<ItemPlan>, (Side, String)> {
    let mapping = &pair.mapping;
    for side in Side::BOTH {
        if !mapping.filters(side) {
            continue;
        }
        let Some(item) = fetched.get(&(side, entry.uid.clone())) else {
            continue;
        };
        match mapping.admits(side, &item.record) {
            Ok(true) => {}
            Ok(false) => {
                let mut plan = ItemPlan {
                    uid: entry.uid.clone(),
                    writes: Vec::new(),
                    outcome: Outcome::Forget,
                    reason: "left the filter: unlinked, both copies kept",
                    settled: Vec::new(),
                };
                let other = side.other();
                if let (OnLeave::Delete, Some(twin)) = (mapping.on_leave, entry.side(other)) {
                    if pair.policy.direction.writes(other) {
                        plan.reason = "left the filter: twin deleted";
                        plan.writes.push(Write::Delete {
                            side: other,
                            id: twin.id.clone(),
                            version: twin.version.clone(),
                        });
                    }
                }
                return Ok(Some(plan));
            }
            Err(e) => return Err((side, format!("filter_{side}: {e}; skipped"))),
        }
    }
    Ok(None)
}

/// Translates a plan's writes from common names into each store's names.
/// A field computed from the side being written may change with the write;
/// its new value goes to the other side in the same plan, so a computed
/// field never lags a run behind.
pub(crate) fn to_native(
    mapping: &PairMapping,
    plan: &mut ItemPlan,
    entry: &Entry,
    fetched: &Fetched,
) -> Result<(), (Side, String)> {
    let fields = &mapping.fields;
    if fields.is_identity() {
        return Ok(());
    }
    // Values of fields computed from a written side, as they will read.
    let mut follow: Vec<(Side, Vec<tandem_record::FieldChange>)> = Vec::new();
    for write in &mut plan.writes {
        let side = write.side();
        let native_after = match write {
            Write::Create { record, .. } => {
                *record = fields.to_native(side, record);
                Some(record.clone())
            }
            Write::Update { changes, .. } => {
                *changes = fields.changes_to_native(side, changes);
                fetched.get(&(side, plan.uid.clone())).map(|item| {
                    let mut r = item.record.clone();
                    r.apply(changes);
                    r
                })
            }
            Write::Delete { .. } => None,
        };
        let (Some(native_after), Outcome::Link { base }) = (native_after, &mut plan.outcome) else {
            continue;
        };
        if !fields.computes_from(side) {
            continue;
        }
        let after = fields
            .to_common(side, &native_after, &plan.uid)
            .map_err(|e| (side, format!("map.{}: {}", e.field, e.error)))?;
        let mut changes = Vec::new();
        for field in fields.computed_from(side) {
            if !tandem_record::Value::same_opt(after.get(field), base.get(field)) {
                let value = after.get(field).cloned();
                match &value {
                    Some(v) => base.set(field.to_string(), v.clone()),
                    None => {
                        base.remove(field);
                    }
                }
                changes.push(tandem_record::FieldChange {
                    field: field.to_string(),
                    value,
                });
            }
        }
        if !changes.is_empty() {
            follow.push((side.other(), changes));
        }
    }
    for (side, common_changes) in follow {
        let changes = fields.changes_to_native(side, &common_changes);
        if changes.is_empty() {
            continue;
        }
        if let Some(Write::Update {
            changes: existing, ..
        }) = plan
            .writes
            .iter_mut()
            .find(|w| w.side() == side && matches!(w, Write::Update { .. }))
        {
            existing.retain(|c| !changes.iter().any(|n| n.field == c.field));
            existing.extend(changes);
        } else if let Some(Write::Create { record, .. }) = plan
            .writes
            .iter_mut()
            .find(|w| w.side() == side && matches!(w, Write::Create { .. }))
        {
            record.apply(&changes);
        } else if let Some(current) = entry.side(side) {
            plan.writes.push(Write::Update {
                side,
                id: current.id.clone(),
                version: current.version.clone(),
                changes,
            });
        }
    }
    plan.writes
        .retain(|w| !matches!(w, Write::Update { changes, .. } if changes.is_empty()));
    Ok(())
}

/// Work the ladder found: `(uid, [item on A, item on B])`.
pub(crate) type Paired = Vec<(String, [Option<Item>; 2])>;

/// What the ladder made of the new items no UID paired.
pub(crate) struct Laddered {
    pub work: Paired,
    /// Ambiguous matches for the inbox (one per held item).
    pub conflicts: Vec<Conflict>,
    /// The same, as plan lines.
    pub operations: Vec<Operation>,
}

/// Runs the match ladder over new items no UID paired. A unique match is
/// one record keyed by A's UID; an item with several candidates is held
/// back with them (no twin is created) and goes to the inbox; duplicates
/// inside one side are reported as warnings. Items a user settled with
/// `resolve` (in `keep`) skip the ladder and are synced as records of their own.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ladder(
    pair: &PairConfig,
    unpaired: [Vec<Item>; 2],
    keep: &HashMap<String, Side>,
    sides: Sides<'_>,
    collection: &str,
    run: i64,
    report: &mut Report,
) -> Laddered {
    let mapping = &pair.mapping;
    let mut out = Laddered {
        work: Vec::new(),
        conflicts: Vec::new(),
        operations: Vec::new(),
    };
    let [a_items, b_items] = unpaired;
    let mut pool: [Vec<(Item, Record)>; 2] = [Vec::new(), Vec::new()];
    for (side, items) in [(Side::A, a_items), (Side::B, b_items)] {
        for item in items {
            if keep.contains_key(&item.record.uid) {
                let uid = item.record.uid.clone();
                out.work.push((uid, one(side, item)));
                continue;
            }
            match common(mapping, side, &item, &item.record.uid) {
                Ok(record) => pool[ix(side)].push((item, record)),
                Err(reason) => report
                    .failures
                    .push(failure(sides, side, collection, &item.id, reason)),
            }
        }
    }
    let a: Vec<&Record> = pool[0].iter().map(|(_, r)| r).collect();
    let b: Vec<&Record> = pool[1].iter().map(|(_, r)| r).collect();
    let found = mapping.matcher.pair_up(&a, &b);
    for d in &found.duplicates {
        let ids: Vec<&str> = d
            .items
            .iter()
            .map(|i| pool[ix(d.side)][*i].0.id.as_str())
            .collect();
        tracing::warn!(
            "{}/{collection}: items {} look like one record (same {} `{}`)",
            sides.name(d.side),
            ids.join(", "),
            d.key.as_str(),
            d.value
        );
    }
    let mut used: [HashSet<usize>; 2] = [HashSet::new(), HashSet::new()];
    for m in &found.linked {
        used[0].insert(m.a);
        used[1].insert(m.b);
    }
    for amb in &found.ambiguous {
        let s = ix(amb.side);
        used[s].insert(amb.item);
        used[1 - s].extend(amb.candidates.iter().copied());
        let (item, record) = &pool[s][amb.item];
        let names: Vec<&str> = amb
            .candidates
            .iter()
            .map(|c| pool[1 - s][*c].0.id.as_str())
            .collect();
        tracing::warn!(
            "{}/{collection}: {} matches {} items on {} by {}: {}; held back, see `tandem conflicts`",
            sides.name(amb.side),
            item.id,
            names.len(),
            sides.name(amb.side.other()),
            amb.key.as_str(),
            names.join(", ")
        );
        let first = amb.candidates.first().map(|c| pool[1 - s][*c].1.clone());
        let (mine, theirs) = (Some(record.clone()), first);
        let (ra, rb) = match amb.side {
            Side::A => (mine, theirs),
            Side::B => (theirs, mine),
        };
        let field = format!("match:{}", amb.key.as_str());
        out.operations.push(Operation {
            op: "conflict",
            side: None,
            id: record.uid.clone(),
            fields: vec![field.clone()],
            reason: "several records on the other side match it: held back",
        });
        out.conflicts.push(Conflict {
            id: 0,
            run,
            pair: pair.name.clone(),
            collection: collection.to_string(),
            uid: record.uid.clone(),
            fields: vec![field],
            a: ra,
            b: rb,
            base: None,
            created_at: now(),
        });
    }
    let [pool_a, pool_b] = pool;
    let mut b_slots: Vec<Option<Item>> = pool_b.into_iter().map(|(i, _)| Some(i)).collect();
    let mut a_slots: Vec<Option<Item>> = pool_a.into_iter().map(|(i, _)| Some(i)).collect();
    for m in &found.linked {
        if let (Some(a), Some(b)) = (a_slots[m.a].take(), b_slots[m.b].take()) {
            tracing::info!(
                "{}: {} and {} linked by {}",
                collection,
                a.id,
                b.id,
                m.key.as_str()
            );
            out.work.push((a.record.uid.clone(), [Some(a), Some(b)]));
        }
    }
    for (side, slots) in [(Side::A, a_slots), (Side::B, b_slots)] {
        for (i, slot) in slots.into_iter().enumerate() {
            if let Some(item) = slot.filter(|_| !used[ix(side)].contains(&i)) {
                out.work.push((item.record.uid.clone(), one(side, item)));
            }
        }
    }
    out
}

fn one(side: Side, item: Item) -> [Option<Item>; 2] {
    match side {
        Side::A => [Some(item), None],
        Side::B => [None, Some(item)],
    }
}

fn ix(side: Side) -> usize {
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
