//! Field-level three-way merge of two versions of a record against their
//! base, with multi-valued fields merged element by element.

use crate::Policy;
use std::collections::BTreeSet;
use tandem_record::{Record, Side, Value};

/// The result of merging two records.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMerge {
    pub merged: Record,
    /// Fields changed differently on both sides that no rule settles.
    pub conflicts: Vec<String>,
    /// Fields changed differently on both sides that a rule settled.
    pub settled: Vec<String>,
}

/// Merges `a` and `b` against `base` (`None`: never synced, every
/// difference is a clash), field by field:
/// a field changed on one side only takes that side's value (without a
/// base, a field only one side has is taken from it); the same
/// change on both sides is no clash; lists merge element-wise (an element
/// stays unless a side removed it, additions from both sides are kept);
/// other clashes go to [`Policy::winner`].
pub fn merge_fields(base: Option<&Record>, a: &Record, b: &Record, policy: &Policy) -> FieldMerge {
    let mut merged = a.clone();
    merged.modified = a.modified.max(b.modified);
    let mut conflicts = Vec::new();
    let mut settled = Vec::new();
    let names: BTreeSet<&String> = a
        .fields
        .keys()
        .chain(b.fields.keys())
        .chain(base.into_iter().flat_map(|r| r.fields.keys()))
        .collect();
    for name in names {
        let va = a.get(name);
        let vb = b.get(name);
        let v0 = base.and_then(|r| r.get(name));
        let value = if Value::same_opt(va, vb) {
            va.cloned()
        } else if base.is_some() && Value::same_opt(va, v0) {
            vb.cloned()
        } else if base.is_some() && Value::same_opt(vb, v0) {
            va.cloned()
        } else if base.is_none() && (va.is_none() || vb.is_none()) {
            // Never synced: a field only one side has is no clash.
            va.or(vb).cloned()
        } else if let Some(list) = merge_lists(v0, va, vb, base.is_some()) {
            Some(list)
        } else {
            match policy.winner(name, a, b) {
                Some(Side::A) => {
                    settled.push(name.clone());
                    va.cloned()
                }
                Some(Side::B) => {
                    settled.push(name.clone());
                    vb.cloned()
                }
                None => {
                    conflicts.push(name.clone());
                    va.cloned()
                }
            }
        };
        match value {
            Some(v) => merged.set(name.clone(), v),
            None => {
                merged.remove(name);
            }
        }
    }
    FieldMerge {
        merged,
        conflicts,
        settled,
    }
}

/// Element-wise merge when every present value is a list (an absent value
/// counts as an empty list). `None` when the field is not list-valued.
fn merge_lists(
    base: Option<&Value>,
    a: Option<&Value>,
    b: Option<&Value>,
    has_base: bool,
) -> Option<Value> {
    fn items(v: Option<&Value>) -> Option<&[Value]> {
        match v {
            None => Some(&[]),
            Some(v) => v.as_list(),
        }
    }
    let (l0, la, lb) = (items(base)?, items(a)?, items(b)?);
    let contains = |list: &[Value], v: &Value| list.iter().any(|x| x.same(v));
    let mut out: Vec<Value> = Vec::new();
    for v in la.iter().chain(lb) {
        if contains(&out, v) {
            continue;
        }
        let (in_a, in_b) = (contains(la, v), contains(lb, v));
        let keep = if has_base && contains(l0, v) {
            // Present before: kept only if neither side removed it.
            in_a && in_b
        } else {
            true
        };
        if keep {
            out.push(v.clone());
        }
    }
    Some(Value::List(out))
}
