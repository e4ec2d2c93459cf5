//! Field-level three-way merge of two versions of a record against their
//! base: scalars field by field, lists element by element, maps key by key,
//! lists of identified elements (a series' overrides, an event's attendees)
//! element by element matched by their key, and a recurring series' rule
//! kept together with the occurrences it generates.

use crate::Policy;
use std::collections::{BTreeMap, BTreeSet};
use tandem_record::{Record, Side, Value};

/// Lists whose elements are maps with an identity, by field, with the key
/// naming each element: such lists merge element by element matched by
/// key (text keys compare case-insensitively), and each element merges
/// field by field against the same element in the base. A list never ends
/// up with two elements of one key.
pub const KEYED_LISTS: &[(&str, &str)] = &[("overrides", "recurrence_id"), ("attendees", "email")];

/// The parts of a recurring series that together decide its occurrences.
/// When one side changed the rule ([`RULE`]) and the other changed any of
/// these differently, the series is settled as one unit: the winner's
/// parts all together, so no occurrence is duplicated or orphaned.
pub const SERIES: &[&str] = &["start", "end", "due", "all_day", "recurrence", "overrides"];

/// The parts of a series that define its rule: the master's start (and
/// whether it is all-day) and `recurrence.rrule`.
pub const RULE: &[&str] = &["start", "all_day", "recurrence.rrule"];

/// Series parts compared one by one (a `recurrence` sub-key counts alone).
const SERIES_PARTS: &[&str] = &[
    "start",
    "end",
    "due",
    "all_day",
    "recurrence.rrule",
    "recurrence.rdate",
    "recurrence.exdate",
    "overrides",
];

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
/// stays unless a side removed it, additions from both sides are kept),
/// [`KEYED_LISTS`] by key with each element merged field by field, and maps
/// key by key; a recurring series whose rule changed on one side while the
/// other changed its occurrences is settled as one unit (see [`SERIES`]);
/// other clashes go to [`Policy::winner`], at the finest level they occur
/// (one field of one override, not the whole list).
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
    let series_unit = series_clash(base, a, b);
    if series_unit {
        let differing: Vec<String> = SERIES
            .iter()
            .filter(|f| !Value::same_opt(a.get(f), b.get(f)))
            .map(|f| f.to_string())
            .collect();
        match policy.winner("recurrence", a, b) {
            Some(side) => {
                let winner = match side {
                    Side::A => a,
                    Side::B => b,
                };
                for field in SERIES {
                    match winner.get(field) {
                        Some(v) => merged.set(*field, v.clone()),
                        None => {
                            merged.remove(field);
                        }
                    }
                }
                settled.extend(differing);
            }
            None => conflicts.extend(differing),
        }
    }
    for name in names {
        if series_unit && SERIES.contains(&name.as_str()) {
            continue;
        }
        let mut clash = Clash {
            winner: policy.winner(name, a, b),
            seen: false,
        };
        let key = KEYED_LISTS
            .iter()
            .find(|(field, _)| *field == name.as_str())
            .map(|(_, key)| *key);
        let value = merge_value(
            base.and_then(|r| r.get(name)),
            a.get(name),
            b.get(name),
            base.is_some(),
            key,
            &mut clash,
        );
        if clash.seen {
            match clash.winner {
                Some(_) => settled.push(name.clone()),
                None => conflicts.push(name.clone()),
            }
        }
        match value {
            Some(v) => merged.set(name.clone(), v),
            None => {
                merged.remove(name);
            }
        }
    }
    conflicts.sort();
    settled.sort();
    FieldMerge {
        merged,
        conflicts,
        settled,
    }
}

/// Who takes a clash inside one field, and whether one happened.
struct Clash {
    /// `None`: nobody (the `manual` policy); A's value stands in the merge,
    /// which is not written.
    winner: Option<Side>,
    seen: bool,
}

/// Three-way merge of one value; `has_base` is false when the enclosing
/// record or element was never synced (a value only one side has is then
/// taken, not seen as a removal).
fn merge_value(
    v0: Option<&Value>,
    va: Option<&Value>,
    vb: Option<&Value>,
    has_base: bool,
    key: Option<&str>,
    clash: &mut Clash,
) -> Option<Value> {
    if Value::same_opt(va, vb) {
        return va.cloned();
    }
    if has_base && Value::same_opt(va, v0) {
        return vb.cloned();
    }
    if has_base && Value::same_opt(vb, v0) {
        return va.cloned();
    }
    if !has_base && (va.is_none() || vb.is_none()) {
        return va.or(vb).cloned();
    }
    if let Some(key) = key {
        if let Some(list) = merge_keyed(v0, va, vb, has_base, key, clash) {
            return Some(list);
        }
    }
    if let Some(list) = merge_lists(v0, va, vb, has_base) {
        return Some(list);
    }
    if let (Some(Value::Map(ma)), Some(Value::Map(mb))) = (va, vb) {
        match v0 {
            Some(Value::Map(m0)) => return Some(merge_maps(Some(m0), ma, mb, clash)),
            // Added on both sides (no base for this value): key by key.
            None => return Some(merge_maps(None, ma, mb, clash)),
            Some(_) => {}
        }
    }
    clash.seen = true;
    match clash.winner {
        Some(Side::B) => vb.cloned(),
        _ => va.cloned(),
    }
}

/// Key-by-key merge of two maps (an override, an attendee, `recurrence`).
fn merge_maps(
    m0: Option<&BTreeMap<String, Value>>,
    ma: &BTreeMap<String, Value>,
    mb: &BTreeMap<String, Value>,
    clash: &mut Clash,
) -> Value {
    let keys: BTreeSet<&String> = ma
        .keys()
        .chain(mb.keys())
        .chain(m0.into_iter().flat_map(|m| m.keys()))
        .collect();
    let mut out = BTreeMap::new();
    for k in keys {
        let v = merge_value(
            m0.and_then(|m| m.get(k)),
            ma.get(k),
            mb.get(k),
            m0.is_some(),
            None,
            clash,
        );
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            out.insert(k.clone(), v);
        }
    }
    Value::Map(out)
}

/// The identity of a keyed list's element: its key's value (text folded
/// for case), or, lacking one, its whole content.
fn element_key(element: &Value, key: &str) -> String {
    match element.as_map().and_then(|m| m.get(key)) {
        Some(Value::Text(s)) => format!("k{}", s.to_lowercase()),
        Some(other) => format!("k{}", other.normalised()),
        None => format!("v{}", element.normalised()),
    }
}

/// Element-by-key merge of a [`KEYED_LISTS`] field; `None` when the field
/// does not hold lists of maps.
fn merge_keyed(
    v0: Option<&Value>,
    va: Option<&Value>,
    vb: Option<&Value>,
    has_base: bool,
    key: &str,
    clash: &mut Clash,
) -> Option<Value> {
    fn maps(v: Option<&Value>) -> Option<&[Value]> {
        let list: &[Value] = match v {
            None => &[],
            Some(v) => v.as_list()?,
        };
        list.iter().all(|e| e.as_map().is_some()).then_some(list)
    }
    let (l0, la, lb) = (maps(v0)?, maps(va)?, maps(vb)?);
    fn index<'v>(list: &'v [Value], key: &str) -> BTreeMap<String, &'v Value> {
        let mut m = BTreeMap::new();
        for e in list {
            m.entry(element_key(e, key)).or_insert(e);
        }
        m
    }
    let (i0, ia, ib) = (index(l0, key), index(la, key), index(lb, key));
    // A's order, then what only B holds.
    let mut order: Vec<String> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for e in la.iter().chain(lb) {
        let k = element_key(e, key);
        if seen.insert(k.clone()) {
            order.push(k);
        }
    }
    let mut out = Vec::new();
    for k in order {
        let element = merge_value(
            i0.get(&k).copied(),
            ia.get(&k).copied(),
            ib.get(&k).copied(),
            has_base,
            None,
            clash,
        );
        if let Some(e) = element.filter(|e| !e.is_empty()) {
            out.push(e);
        }
    }
    Some(Value::List(out))
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

/// One series part of a record (`recurrence.rrule` reaches into the map).
fn part<'r>(record: &'r Record, part: &str) -> Option<&'r Value> {
    match part.split_once('.') {
        Some((field, key)) => record.get(field)?.as_map()?.get(key),
        None => record.get(part),
    }
}

fn differs(x: &Record, y: &Record, parts: &[&str]) -> bool {
    parts
        .iter()
        .any(|p| !Value::same_opt(part(x, p), part(y, p)))
}

/// True when a recurring series must be settled as one unit: one side
/// changed its rule while the other changed some series part to something
/// else, without holding the same new rule itself (never synced: the two
/// rules differ).
fn series_clash(base: Option<&Record>, a: &Record, b: &Record) -> bool {
    let recurring = |r: &Record| r.get("recurrence").is_some() || r.get("overrides").is_some();
    if !(recurring(a) || recurring(b) || base.is_some_and(recurring)) {
        return false;
    }
    let Some(base) = base else {
        return differs(a, b, RULE);
    };
    // `x` moved the rule, `y` does not hold the same rule, and `y` changed
    // a part that `x` does not hold alike.
    let one_way = |x: &Record, y: &Record| {
        differs(base, x, RULE)
            && differs(x, y, RULE)
            && SERIES_PARTS.iter().any(|p| {
                !Value::same_opt(part(y, p), part(base, p))
                    && !Value::same_opt(part(y, p), part(x, p))
            })
    };
    one_way(a, b) || one_way(b, a)
}
