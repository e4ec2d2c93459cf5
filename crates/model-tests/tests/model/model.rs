//! The model: a seeded random generator, the users of both sides (random,
//! correlated creates, per-field updates, deletes), and the oracle — what a
//! sync must leave on each side and in the state, computed from the base
//! the model remembers and the two sides as they were before the sync,
//! following docs/config.md ("How records merge", one-way pairs, `manual`).

use std::collections::{BTreeMap, BTreeSet};
use tandem_plan::{ConflictRule, Direction, Policy};
use tandem_record::{Kind, Record, Side, Value};
use tandem_store::{MemoryStore, ROOT};

/// SplitMix64: small, seedable, stable across platforms and versions.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Single-valued fields the users edit.
pub const SCALARS: [&str; 4] = ["full_name", "org", "title", "note"];
/// Multi-valued fields the users edit element by element.
pub const LISTS: [&str; 2] = ["emails", "categories"];
/// Few values, so that both sides often make the same change.
const WORDS: [&str; 3] = ["x", "y", "z"];
const ELEMENTS: [&str; 4] = ["e1", "e2", "e3", "e4"];

fn is_list(field: &str) -> bool {
    LISTS.contains(&field)
}

/// What the users did, for the figures.
#[derive(Debug, Default, Clone, Copy)]
pub struct UserOps {
    pub creates: u64,
    pub correlated: u64,
    pub updates: u64,
    pub deletes: u64,
}

/// The two sides' users.
pub struct Users {
    /// Every UID a user ever created, on either side.
    pub uids: BTreeSet<String>,
    next_uid: u64,
    clock: i64,
    pub ops: UserOps,
}

impl Users {
    pub fn new() -> Users {
        Users {
            uids: BTreeSet::new(),
            next_uid: 0,
            clock: 1_000,
            ops: UserOps::default(),
        }
    }

    fn stamp(&mut self, rng: &mut Rng) -> Option<i64> {
        self.clock += 1 + rng.below(3) as i64;
        // Some items carry no modification time (newest then falls back).
        (!rng.chance(10)).then_some(self.clock)
    }

    fn random_record(&mut self, rng: &mut Rng, uid: &str) -> Record {
        let mut r = Record::new(Kind::Contact, uid);
        for f in SCALARS {
            if rng.chance(50) {
                r.set(f, Value::text(*rng.pick(&WORDS)));
            }
        }
        for f in LISTS {
            if rng.chance(50) {
                let n = 1 + rng.below(2);
                let list = (0..n).map(|_| Value::text(*rng.pick(&ELEMENTS))).collect();
                r.set(f, Value::List(list));
            }
        }
        r
    }

    /// One field edit: a scalar set or removed, a list element added or removed.
    fn edit_field(&mut self, rng: &mut Rng, r: &mut Record) {
        let fields: Vec<&str> = SCALARS.iter().chain(LISTS.iter()).copied().collect();
        let field = *rng.pick(&fields);
        if is_list(field) {
            let mut items: Vec<Value> = r
                .get(field)
                .and_then(Value::as_list)
                .map(<[Value]>::to_vec)
                .unwrap_or_default();
            if !items.is_empty() && rng.chance(40) {
                let i = rng.below(items.len() as u64) as usize;
                let gone = items[i].clone();
                items.retain(|v| !v.same(&gone));
            } else {
                items.push(Value::text(*rng.pick(&ELEMENTS)));
            }
            r.set(field, Value::List(items));
        } else if rng.chance(20) {
            r.remove(field);
        } else {
            r.set(field, Value::text(*rng.pick(&WORDS)));
        }
    }

    /// Up to `max_ops` random edits on `side`, as that app's user.
    pub fn act(
        &mut self,
        rng: &mut Rng,
        side: Side,
        here: &MemoryStore,
        there: &MemoryStore,
        max_ops: u64,
        log: &mut Vec<String>,
    ) {
        for _ in 0..rng.below(max_ops + 1) {
            let mine = here.records(ROOT);
            let roll = rng.below(100);
            if mine.is_empty() || roll < 35 {
                // Create: sometimes with a UID the other side holds
                // (same record made twice, or a user re-creating it).
                let others: Vec<Record> = there
                    .records(ROOT)
                    .into_iter()
                    .filter(|o| !mine.iter().any(|m| m.uid == o.uid))
                    .collect();
                let mut record = if !others.is_empty() && rng.chance(35) {
                    self.ops.correlated += 1;
                    let mut r = rng.pick(&others).clone();
                    if rng.chance(50) {
                        self.edit_field(rng, &mut r);
                        r.modified = self.stamp(rng);
                    }
                    r
                } else {
                    self.next_uid += 1;
                    let uid = format!("u{}", self.next_uid);
                    let mut r = self.random_record(rng, &uid);
                    r.modified = self.stamp(rng);
                    r
                };
                record.kind = Kind::Contact;
                self.uids.insert(record.uid.clone());
                self.ops.creates += 1;
                log.push(format!("user {side}: create {record:?}"));
                here.insert(ROOT, record);
            } else if roll < 85 {
                let mut r = rng.pick(&mine).clone();
                let n = 1 + rng.below(2);
                // Sometimes a save that changes nothing (the version moves).
                if !rng.chance(5) {
                    for _ in 0..n {
                        self.edit_field(rng, &mut r);
                    }
                }
                r.modified = self.stamp(rng);
                self.ops.updates += 1;
                log.push(format!("user {side}: update {r:?}"));
                here.insert(ROOT, r);
            } else {
                let uid = rng.pick(&mine).uid.clone();
                self.ops.deletes += 1;
                log.push(format!("user {side}: delete {uid}"));
                here.remove(ROOT, &uid);
            }
        }
    }
}

/// What one field must hold after a sync.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Exactly this value (by meaning), or absent.
    Exact(Option<Value>),
    /// A list holding every `must` element and none of `must_not`
    /// (one-way pairs where both sides edited the list: see [`expect`]).
    List {
        must: Vec<Value>,
        must_not: Vec<Value>,
    },
}

/// What an item must look like on one side: every field's rule; fields not
/// named must be absent.
pub type Shape = BTreeMap<String, Rule>;

pub fn exact(r: &Record) -> Shape {
    r.fields
        .iter()
        .map(|(k, v)| (k.clone(), Rule::Exact(Some(v.clone()))))
        .collect()
}

/// Checks `r` against `shape`; the first field that does not fit.
pub fn fits(r: &Record, shape: &Shape) -> Result<(), String> {
    for (field, rule) in shape {
        let have = r.get(field);
        match rule {
            Rule::Exact(want) => {
                if !Value::same_opt(have, want.as_ref()) {
                    return Err(format!("field {field}: have {have:?}, want {want:?}"));
                }
            }
            Rule::List { must, must_not } => {
                let items = have.and_then(Value::as_list).unwrap_or(&[]);
                let has = |v: &Value| items.iter().any(|x| x.same(v));
                if let Some(v) = must.iter().find(|v| !has(v)) {
                    return Err(format!("field {field}: {have:?} lacks {v:?}"));
                }
                if let Some(v) = must_not.iter().find(|v| has(v)) {
                    return Err(format!("field {field}: {have:?} still holds {v:?}"));
                }
            }
        }
    }
    if let Some(extra) = r.fields.keys().find(|k| !shape.contains_key(*k)) {
        return Err(format!(
            "field {extra}: {:?} should be absent",
            r.get(extra)
        ));
    }
    Ok(())
}

/// What a sync must do with one UID.
#[derive(Debug, Clone)]
pub struct Expect {
    pub a: Option<Shape>,
    pub b: Option<Shape>,
    /// The base the state must hold after the sync (`None`: no link).
    pub base: Option<Record>,
    /// The item must be in the conflicts inbox, untouched on both sides.
    pub conflict: bool,
}

impl Expect {
    fn both(r: &Record) -> Expect {
        Expect {
            a: Some(exact(r)),
            b: Some(exact(r)),
            base: Some(r.clone()),
            conflict: false,
        }
    }

    fn gone() -> Expect {
        Expect {
            a: None,
            b: None,
            base: None,
            conflict: false,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut Option<Shape> {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }
}

fn list_items(v: Option<&Value>) -> Vec<Value> {
    v.and_then(Value::as_list)
        .map(<[Value]>::to_vec)
        .unwrap_or_default()
}

fn contains(list: &[Value], v: &Value) -> bool {
    list.iter().any(|x| x.same(v))
}

/// Who wins a scalar field both sides changed differently; `None`: inbox.
fn winner(policy: &Policy, field: &str, a: &Record, b: &Record) -> Option<Side> {
    if let Some(source) = policy.direction.source() {
        return Some(source);
    }
    if let Some(owner) = policy.owners.get(field) {
        return Some(*owner);
    }
    match policy.conflict {
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

/// The documented field merge: one-sided changes taken, same change no
/// clash, lists element by element (an element stays unless a side removed
/// it, additions from both kept; without a base, the union), other clashes
/// to the winner. `Err` names the fields left for the inbox.
fn merge(
    policy: &Policy,
    base: Option<&Record>,
    a: &Record,
    b: &Record,
) -> Result<Record, Vec<String>> {
    let mut out = a.clone();
    let mut clashes = Vec::new();
    let names: BTreeSet<String> = a
        .fields
        .keys()
        .chain(b.fields.keys())
        .chain(base.into_iter().flat_map(|r| r.fields.keys()))
        .cloned()
        .collect();
    for f in names {
        let (va, vb) = (a.get(&f), b.get(&f));
        let v0 = base.and_then(|r| r.get(&f));
        let value = if Value::same_opt(va, vb) {
            va.cloned()
        } else if base.is_some() && Value::same_opt(va, v0) {
            vb.cloned()
        } else if base.is_some() && Value::same_opt(vb, v0) {
            va.cloned()
        } else if is_list(&f) {
            let (l0, la, lb) = (list_items(v0), list_items(va), list_items(vb));
            let mut merged: Vec<Value> = Vec::new();
            for v in la.iter().chain(&lb) {
                let keep = if base.is_some() && contains(&l0, v) {
                    contains(&la, v) && contains(&lb, v)
                } else {
                    true
                };
                if keep && !contains(&merged, v) {
                    merged.push(v.clone());
                }
            }
            Some(Value::List(merged))
        } else if base.is_none() && (va.is_none() || vb.is_none()) {
            va.or(vb).cloned()
        } else {
            match winner(policy, &f, a, b) {
                Some(Side::A) => va.cloned(),
                Some(Side::B) => vb.cloned(),
                None => {
                    clashes.push(f.clone());
                    va.cloned()
                }
            }
        };
        match value {
            Some(v) => out.set(f, v),
            None => {
                out.remove(&f);
            }
        }
    }
    if clashes.is_empty() {
        Ok(out)
    } else {
        Err(clashes)
    }
}

/// What a sync must make of one UID, from the base the model remembers and
/// both sides as they were before the sync.
pub fn expect<'r>(
    policy: &Policy,
    base: Option<&'r Record>,
    a: Option<&'r Record>,
    b: Option<&'r Record>,
) -> Expect {
    let untouched = |conflict| Expect {
        a: a.map(exact),
        b: b.map(exact),
        base: base.cloned(),
        conflict,
    };
    let changed = |r: Option<&Record>| match (r, base) {
        (Some(r), Some(base)) => !r.same_content(base),
        _ => true,
    };
    match policy.direction.source() {
        None => match (base, a, b) {
            (_, None, None) => Expect::gone(),
            (None, Some(r), None) | (None, None, Some(r)) => Expect::both(r),
            (Some(_), Some(r), None) | (Some(_), None, Some(r)) => {
                if changed(Some(r)) {
                    // An edit beats a delete.
                    Expect::both(r)
                } else {
                    Expect::gone()
                }
            }
            (_, Some(ra), Some(rb)) => match merge(policy, base, ra, rb) {
                Ok(m) => Expect::both(&m),
                Err(_) => untouched(true),
            },
        },
        Some(src) => {
            let (s, t) = match src {
                Side::A => (a, b),
                Side::B => (b, a),
            };
            // The merge takes the sides in pair order.
            let ordered = |rs: &'r Record, rt: &'r Record| match src {
                Side::A => (rs, rt),
                Side::B => (rt, rs),
            };
            let mut e = untouched(false);
            match (base, s, t) {
                (_, None, None) => return Expect::gone(),
                // New on the target only: stays there, unlinked.
                (None, None, Some(_)) => e.base = None,
                (None, Some(rs), None) => return Expect::both(rs),
                (None, Some(rs), Some(rt)) => {
                    let (ra, rb) = ordered(rs, rt);
                    let m = merge(policy, None, ra, rb).expect("the source wins");
                    *e.side_mut(src.other()) = Some(exact(&m));
                    e.base = Some(rs.clone());
                }
                (Some(_), None, Some(_)) => {
                    if changed(t) {
                        // Deleted on the source, edited on the target: kept, unlinked.
                        e.base = None;
                    } else {
                        return Expect::gone();
                    }
                }
                // Deleted on the target: restored from the source.
                (Some(_), Some(rs), None) => return Expect::both(rs),
                (Some(b0), Some(rs), Some(rt)) => {
                    let (ra, rb) = ordered(rs, rt);
                    let m = merge(policy, Some(b0), ra, rb).expect("the source wins");
                    let mut shape = exact(&m);
                    for f in LISTS {
                        let (l0, ls, lt) = (
                            list_items(b0.get(f)),
                            list_items(rs.get(f)),
                            list_items(rt.get(f)),
                        );
                        let moved = |l: &[Value]| {
                            !Value::same_opt(
                                Some(&Value::List(l.to_vec())),
                                Some(&Value::List(l0.clone())),
                            )
                        };
                        if moved(&ls) && moved(&lt) && !Value::same_opt(rs.get(f), rt.get(f)) {
                            // Both edited the list: the source's additions and
                            // removals must show; the target's own may or may not
                            // (element merge, or the source's list when the
                            // target's edit was seen at an earlier sync).
                            let must = ls
                                .iter()
                                .filter(|v| !contains(&l0, v) || contains(&lt, v))
                                .cloned()
                                .collect();
                            let all: Vec<Value> =
                                l0.iter().chain(&ls).chain(&lt).cloned().collect();
                            let must_not = all
                                .into_iter()
                                .filter(|v| {
                                    !contains(&ls, v) && (contains(&l0, v) || !contains(&lt, v))
                                })
                                .collect();
                            shape.insert(f.to_string(), Rule::List { must, must_not });
                        }
                    }
                    *e.side_mut(src.other()) = Some(shape);
                    e.base = Some(rs.clone());
                }
            }
            e
        }
    }
}

/// A random policy: direction, conflict rule and per-field owners.
pub fn random_policy(rng: &mut Rng) -> (String, String, Vec<String>) {
    let direction = match rng.below(4) {
        0 | 1 => "both",
        2 => "a-to-b",
        _ => "b-to-a",
    };
    let conflict = *rng.pick(&["a", "b", "newest", "manual"]);
    let mut owners = Vec::new();
    for f in SCALARS.iter().chain(LISTS.iter()) {
        if rng.chance(15) {
            owners.push(format!("{f} = \"{}\"", rng.pick(&["a", "b"])));
        }
    }
    (direction.to_string(), conflict.to_string(), owners)
}

/// True for pairs that write both sides.
pub fn two_way(policy: &Policy) -> bool {
    policy.direction == Direction::Both
}
