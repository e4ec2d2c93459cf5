//! The planner as tables: every (base, A, B) state of an item under every
//! direction, and every (base, A, B) combination of one field's values.

use super::*;
use tandem_record::{Kind, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum S {
    /// Not there.
    Absent,
    /// Version unchanged since the last sync.
    Same,
    /// Version moved, content as the base.
    Touched,
    /// Content changed.
    Changed,
}

fn base() -> Record {
    Record::new(Kind::Contact, "u")
        .with("given_name", Value::text("Ada"))
        .with("title", Value::text("Dev"))
}

fn side_record(side: Side) -> Record {
    // Each side changes a different field, so a two-sided change merges.
    match side {
        Side::A => base().with("title", Value::text("Lead")),
        Side::B => base().with("note", Value::text("met at expo")),
    }
}

fn current(side: Side, s: S) -> Option<Current> {
    let id = format!("{}.vcf", side.as_str());
    match s {
        S::Absent => None,
        S::Same => Some(Current {
            id,
            version: "v1".into(),
            record: None,
            moved: false,
        }),
        S::Touched => Some(Current::moved(id, "v2", base())),
        S::Changed => Some(Current::moved(id, "v2", side_record(side))),
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum W {
    Create(Side),
    Update(Side),
    Delete(Side),
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum O {
    Keep,
    Link,
    Forget,
}

fn summarise(plan: &ItemPlan) -> (Vec<W>, O) {
    let writes = plan
        .writes
        .iter()
        .map(|w| match w {
            Write::Create { side, .. } => W::Create(*side),
            Write::Update { side, .. } => W::Update(*side),
            Write::Delete { side, .. } => W::Delete(*side),
        })
        .collect();
    let outcome = match plan.outcome {
        Outcome::Keep => O::Keep,
        Outcome::Link { .. } => O::Link,
        Outcome::Forget => O::Forget,
        Outcome::Conflict { .. } => panic!("no conflicts in this table"),
    };
    (writes, outcome)
}

/// Every linked state of an item, under each direction.
#[test]
fn linked_item_table() {
    use Side::{A, B};
    use S::*;
    use W::{Create as C, Delete as D, Update as U};
    let both = Direction::Both;
    let ab = Direction::AToB;
    let ba = Direction::BToA;
    #[rustfmt::skip]
    let table: &[(S, S, Direction, &[W], O)] = &[
        (Absent, Absent, both, &[], O::Forget),
        (Absent, Absent, ab, &[], O::Forget),
        (Absent, Same, both, &[D(B)], O::Forget),
        (Absent, Same, ab, &[D(B)], O::Forget),
        (Absent, Same, ba, &[C(A)], O::Link),          // target deleted: restored
        (Absent, Touched, both, &[D(B)], O::Forget),
        (Absent, Changed, both, &[C(A)], O::Link),     // edit beats delete
        (Absent, Changed, ab, &[], O::Forget),         // source gone, target edit kept
        (Absent, Changed, ba, &[C(A)], O::Link),
        (Same, Absent, both, &[D(A)], O::Forget),
        (Same, Absent, ab, &[C(B)], O::Link),          // target deleted: restored
        (Same, Absent, ba, &[D(A)], O::Forget),
        (Changed, Absent, both, &[C(B)], O::Link),
        (Changed, Absent, ba, &[], O::Forget),
        (Same, Same, both, &[], O::Keep),
        (Same, Touched, both, &[], O::Link),           // record the new version only
        (Touched, Touched, both, &[], O::Link),
        (Changed, Same, both, &[U(B)], O::Link),
        (Changed, Same, ab, &[U(B)], O::Link),
        (Changed, Same, ba, &[], O::Link),             // target edit kept
        (Same, Changed, both, &[U(A)], O::Link),
        (Same, Changed, ab, &[], O::Link),
        (Changed, Touched, both, &[U(B)], O::Link),
        (Changed, Changed, both, &[U(A), U(B)], O::Link), // merged
        (Changed, Changed, ab, &[U(B)], O::Link),
        (Changed, Changed, ba, &[U(A)], O::Link),
    ];
    for (sa, sb, direction, writes, outcome) in table {
        let entry = Entry {
            uid: "u".into(),
            base: Some(base()),
            a: current(Side::A, *sa),
            b: current(Side::B, *sb),
        };
        let policy = Policy {
            direction: *direction,
            ..Policy::default()
        };
        let plan = decide(&entry, &policy);
        assert_eq!(
            summarise(&plan),
            (writes.to_vec(), *outcome),
            "A={sa:?} B={sb:?} {direction:?}: {}",
            plan.reason
        );
    }
}

/// A mirroring target (expanded occurrences in a table) follows a delete
/// on the source even when its copy differs from the base.
#[test]
fn mirror_target_follows_source_deletes() {
    let one_way = Policy {
        direction: Direction::AToB,
        ..Policy::default()
    };
    let mirror = Policy {
        mirror: true,
        ..one_way.clone()
    };
    // The target's copy holds fewer fields than the base, version unmoved.
    let partial = Record::new(Kind::Contact, "u").with("given_name", Value::text("Ada"));
    for (b, moved) in [
        (Current::unmoved("b.vcf", "v1", partial.clone()), false),
        (Current::moved("b.vcf", "v2", partial.clone()), true),
    ] {
        let entry = Entry {
            uid: "u".into(),
            base: Some(base()),
            a: None,
            b: Some(b),
        };
        let kept = decide(&entry, &one_way);
        assert!(kept.writes.is_empty(), "moved={moved}: {kept:?}");
        assert_eq!(kept.outcome, Outcome::Forget);
        let mirrored = decide(&entry, &mirror);
        assert_eq!(
            summarise(&mirrored),
            (vec![W::Delete(Side::B)], O::Forget),
            "moved={moved}"
        );
    }
}

#[test]
fn unlinked_item_table() {
    use Side::{A, B};
    #[rustfmt::skip]
    let table: &[(bool, bool, Direction, &[W], O)] = &[
        (false, false, Direction::Both, &[], O::Keep),
        (true, false, Direction::Both, &[W::Create(B)], O::Link),
        (false, true, Direction::Both, &[W::Create(A)], O::Link),
        (true, false, Direction::BToA, &[], O::Keep),
        (false, true, Direction::AToB, &[], O::Keep),
        (true, true, Direction::Both, &[W::Update(A), W::Update(B)], O::Link),
        (true, true, Direction::AToB, &[W::Update(B)], O::Link),
    ];
    for (on_a, on_b, direction, writes, outcome) in table {
        let entry = Entry {
            uid: "u".into(),
            base: None,
            a: on_a.then(|| Current::moved("a.vcf", "1", side_record(Side::A))),
            b: on_b.then(|| Current::moved("b.vcf", "1", side_record(Side::B))),
        };
        let policy = Policy {
            direction: *direction,
            ..Policy::default()
        };
        let plan = decide(&entry, &policy);
        assert_eq!(
            summarise(&plan),
            (writes.to_vec(), *outcome),
            "A={on_a} B={on_b} {direction:?}"
        );
    }
}

#[test]
fn same_uid_and_content_on_both_sides_links_without_writing() {
    let entry = Entry {
        uid: "u".into(),
        base: None,
        a: Some(Current::moved("a.vcf", "1", base())),
        b: Some(Current::moved("b.vcf", "1", base())),
    };
    let plan = decide(&entry, &Policy::default());
    assert!(plan.writes.is_empty());
    assert_eq!(plan.operations(true)[0].op, "link");
}

#[test]
fn create_rules() {
    let entry = Entry {
        uid: "u".into(),
        base: None,
        a: Some(Current::moved("a.vcf", "1", base())),
        b: None,
    };
    let none = Policy {
        no_create: true,
        ..Policy::default()
    };
    assert!(decide(&entry, &none).writes.is_empty());
    let only_to_a = Policy {
        create: Some(Direction::BToA),
        ..Policy::default()
    };
    assert!(decide(&entry, &only_to_a).writes.is_empty());
    let to_b = Policy {
        create: Some(Direction::AToB),
        ..Policy::default()
    };
    assert_eq!(decide(&entry, &to_b).writes.len(), 1);
}

/// One field's value in the field table.
fn v(tag: char) -> Option<Value> {
    match tag {
        '-' => None,
        c => Some(Value::text(c.to_string())),
    }
}

fn with_field(tag: char, modified: Option<i64>) -> Record {
    let mut r = Record::new(Kind::Contact, "u");
    if let Some(value) = v(tag) {
        r.set("title", value);
    }
    r.modified = modified;
    r
}

/// Every combination of (base, A, B) values of one scalar field, under
/// each conflict rule. `-` is absent; x, y, z are distinct values.
#[test]
fn field_table() {
    // (base, a, b) -> merged value for rules where no clash arises, or
    // None when both changed it differently (clash).
    #[rustfmt::skip]
    let table: &[(char, char, char, Option<char>)] = &[
        ('-', '-', '-', Some('-')),
        ('-', 'x', '-', Some('x')),
        ('-', '-', 'x', Some('x')),
        ('-', 'x', 'x', Some('x')),
        ('-', 'x', 'y', None),
        ('x', 'x', 'x', Some('x')),
        ('x', 'y', 'x', Some('y')),
        ('x', 'x', 'y', Some('y')),
        ('x', 'y', 'y', Some('y')),
        ('x', 'y', 'z', None),
        ('x', '-', 'x', Some('-')),
        ('x', 'x', '-', Some('-')),
        ('x', '-', '-', Some('-')),
        ('x', '-', 'y', None),
        ('x', 'y', '-', None),
    ];
    for &(t0, ta, tb, expected) in table {
        let base = with_field(t0, None);
        // B is newer, so `newest` picks B.
        let a = with_field(ta, Some(10));
        let b = with_field(tb, Some(20));
        for rule in [
            ConflictRule::A,
            ConflictRule::B,
            ConflictRule::Newest,
            ConflictRule::Manual,
        ] {
            let policy = Policy {
                conflict: rule,
                ..Policy::default()
            };
            let m = merge_fields(Some(&base), &a, &b, &policy);
            let got = m.merged.get("title").cloned();
            let ctx = format!("base={t0} a={ta} b={tb} {rule:?}");
            match expected {
                Some(e) => {
                    assert_eq!(got, v(e), "{ctx}");
                    assert!(m.conflicts.is_empty() && m.settled.is_empty(), "{ctx}");
                }
                None => match rule {
                    ConflictRule::A => assert_eq!((got, m.settled.len()), (v(ta), 1), "{ctx}"),
                    ConflictRule::B | ConflictRule::Newest => {
                        assert_eq!((got, m.settled.len()), (v(tb), 1), "{ctx}")
                    }
                    ConflictRule::Manual => assert_eq!(m.conflicts, vec!["title"], "{ctx}"),
                },
            }
        }
    }
}

#[test]
fn field_owner_beats_pair_rule_and_one_way_source_beats_both() {
    let base = with_field('x', None);
    let a = with_field('y', Some(10));
    let b = with_field('z', Some(20));
    let mut policy = Policy {
        conflict: ConflictRule::B,
        ..Policy::default()
    };
    policy.owners.insert("title".into(), Side::A);
    assert_eq!(
        merge_fields(Some(&base), &a, &b, &policy)
            .merged
            .get("title"),
        v('y').as_ref()
    );
    policy.direction = Direction::BToA;
    assert_eq!(
        merge_fields(Some(&base), &a, &b, &policy)
            .merged
            .get("title"),
        v('z').as_ref()
    );
}

#[test]
fn newest_ties_and_unknown_times_go_to_a() {
    let base = with_field('x', None);
    let policy = Policy::default();
    for (ma, mb) in [(None, None), (Some(5), Some(5)), (Some(9), None)] {
        let m = merge_fields(
            Some(&base),
            &with_field('y', ma),
            &with_field('z', mb),
            &policy,
        );
        assert_eq!(m.merged.get("title"), v('y').as_ref(), "{ma:?} {mb:?}");
    }
}

fn emails(list: &[&str]) -> Record {
    Record::new(Kind::Contact, "u").with(
        "emails",
        Value::List(list.iter().map(|e| Value::text(*e)).collect()),
    )
}

#[test]
fn lists_merge_element_wise() {
    let policy = Policy {
        conflict: ConflictRule::Manual,
        ..Policy::default()
    };
    // (base, a, b, merged)
    #[rustfmt::skip]
    let table: &[[&[&str]; 4]] = &[
        [&["x"], &["x", "a"], &["x", "b"], &["x", "a", "b"]],   // both add
        [&["x", "y"], &["x"], &["x", "y", "b"], &["x", "b"]],    // A removes, B adds
        [&["x", "y"], &["y"], &["x"], &[]],                      // each removes one
        [&["x"], &[], &["x", "b"], &["b"]],                      // A empties, B adds
        [&[], &["a"], &["b"], &["a", "b"]],
    ];
    for [b0, a, b, want] in table {
        let m = merge_fields(Some(&emails(b0)), &emails(a), &emails(b), &policy);
        assert!(m.conflicts.is_empty());
        assert!(
            m.merged.same_content(&emails(want)),
            "{b0:?} {a:?} {b:?} -> {:?}",
            m.merged
        );
    }
    // Never synced: union.
    let m = merge_fields(None, &emails(&["a", "x"]), &emails(&["x", "b"]), &policy);
    assert!(m.merged.same_content(&emails(&["a", "b", "x"])));
}

#[test]
fn manual_conflict_writes_nothing() {
    let entry = Entry {
        uid: "u".into(),
        base: Some(with_field('x', None)),
        a: Some(Current::moved("a", "2", with_field('y', None))),
        b: Some(Current::moved("b", "2", with_field('z', None))),
    };
    let policy = Policy {
        conflict: ConflictRule::Manual,
        ..Policy::default()
    };
    let plan = decide(&entry, &policy);
    assert!(plan.writes.is_empty());
    assert_eq!(
        plan.outcome,
        Outcome::Conflict {
            fields: vec!["title".into()]
        }
    );
    assert_eq!(plan.operations(false)[0].op, "conflict");
}

#[test]
fn update_carries_only_changed_fields_and_expected_version() {
    let entry = Entry {
        uid: "u".into(),
        base: Some(base()),
        a: Some(Current::moved("a.vcf", "2", side_record(Side::A))),
        b: current(Side::B, S::Same),
    };
    let plan = decide(&entry, &Policy::default());
    match &plan.writes[..] {
        [Write::Update {
            side: Side::B,
            id,
            version,
            changes,
        }] => {
            assert_eq!((id.as_str(), version.as_str()), ("b.vcf", "v1"));
            assert_eq!(changes.len(), 1);
            assert_eq!(changes[0].field, "title");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn brakes() {
    let max = MaxDelete::default();
    let ok = SideCounts {
        linked: 10,
        listed: 10,
        deletes: 0,
    };
    let emptied = SideCounts {
        linked: 10,
        listed: 0,
        deletes: 0,
    };
    let deleting = SideCounts {
        linked: 10,
        listed: 10,
        deletes: 6,
    };
    assert!(check_brakes(ok, ok, max).is_none());
    assert!(matches!(
        check_brakes(emptied, ok, max),
        Some(Brake::SideEmptied { side: Side::A, .. })
    ));
    assert!(matches!(
        check_brakes(ok, deleting, max),
        Some(Brake::TooManyDeletes { side: Side::B, .. })
    ));
    assert!(check_brakes(ok, SideCounts { deletes: 5, ..ok }, max).is_none());
    assert!(check_brakes(ok, deleting, MaxDelete::Count(6)).is_none());
    assert!(check_brakes(ok, deleting, MaxDelete::Count(5)).is_some());
    assert_eq!("25%".parse::<MaxDelete>(), Ok(MaxDelete::Percent(25.0)));
    assert_eq!("7".parse::<MaxDelete>(), Ok(MaxDelete::Count(7)));
    assert!("lots".parse::<MaxDelete>().is_err());
    assert!("120%".parse::<MaxDelete>().is_err());
}

/// A field with its own direction `a-to-b` ("org" below): per situation,
/// which sides get it written and what the base keeps.
#[test]
fn per_field_direction_table() {
    let policy = Policy {
        field_directions: [("org".to_string(), Direction::AToB)].into(),
        ..Policy::default()
    };
    let rec = |org: Option<&str>, title: &str| {
        let r = Record::new(Kind::Contact, "u").with("title", Value::text(title));
        match org {
            Some(o) => r.with("org", Value::text(o)),
            None => r,
        }
    };
    let fields_of = |plan: &ItemPlan, side: Side| -> Vec<String> {
        plan.writes
            .iter()
            .filter(|w| w.side() == side)
            .flat_map(|w| match w {
                Write::Update { changes, .. } => changes.iter().map(|c| c.field.clone()).collect(),
                Write::Create { record, .. } => record.fields.keys().cloned().collect(),
                Write::Delete { .. } => Vec::new(),
            })
            .collect()
    };
    let base_org = |plan: &ItemPlan| match &plan.outcome {
        Outcome::Link { base } => base.get("org").map(|v| v.to_string()),
        other => panic!("expected a link, got {other:?}"),
    };
    let base = rec(Some("Acme"), "Dev");
    let linked = |a: Record, b: Record| Entry {
        uid: "u".into(),
        base: Some(base.clone()),
        a: Some(Current::moved("a", "v2", a)),
        b: Some(Current::moved("b", "v2", b)),
    };
    // (situation, entry, fields written to A, fields written to B, base org)
    #[rustfmt::skip]
    type Row = (&'static str, Entry, Vec<&'static str>, Vec<&'static str>, Option<&'static str>);
    let table: Vec<Row> = vec![
        (
            "source edits org",
            Entry {
                b: Some(Current::unmoved("b", "v1", base.clone())),
                ..linked(rec(Some("Initech"), "Dev"), base.clone())
            },
            vec![],
            vec!["org"],
            Some("Initech"),
        ),
        (
            "target edits org: stays, never flows back",
            Entry {
                a: Some(Current::unmoved("a", "v1", base.clone())),
                ..linked(base.clone(), rec(Some("Globex"), "Dev"))
            },
            vec![],
            vec![],
            Some("Acme"),
        ),
        (
            "target edits org and title: only title flows",
            Entry {
                a: Some(Current::unmoved("a", "v1", base.clone())),
                ..linked(base.clone(), rec(Some("Globex"), "Lead"))
            },
            vec!["title"],
            vec![],
            Some("Acme"),
        ),
        (
            "both edit org: source wins without a conflict",
            linked(rec(Some("Initech"), "Dev"), rec(Some("Globex"), "Dev")),
            vec![],
            vec!["org"],
            Some("Initech"),
        ),
        (
            "new on B: org not created on A",
            Entry {
                uid: "u".into(),
                base: None,
                a: None,
                b: Some(Current::moved("b", "v1", rec(Some("Globex"), "Dev"))),
            },
            vec!["title"],
            vec![],
            None,
        ),
        (
            "new on A: org created on B",
            Entry {
                uid: "u".into(),
                base: None,
                a: Some(Current::moved("a", "v1", rec(Some("Acme"), "Dev"))),
                b: None,
            },
            vec![],
            vec!["org", "title"],
            Some("Acme"),
        ),
        (
            "new on both, orgs differ: A's wins",
            Entry {
                uid: "u".into(),
                base: None,
                a: Some(Current::moved("a", "v1", rec(Some("Acme"), "Dev"))),
                b: Some(Current::moved("b", "v1", rec(Some("Globex"), "Dev"))),
            },
            vec![],
            vec!["org"],
            Some("Acme"),
        ),
        (
            "new on both, only B has org: kept on B, not copied",
            Entry {
                uid: "u".into(),
                base: None,
                a: Some(Current::moved("a", "v1", rec(None, "Dev"))),
                b: Some(Current::moved("b", "v1", rec(Some("Globex"), "Dev"))),
            },
            vec![],
            vec![],
            None,
        ),
    ];
    for (what, entry, to_a, to_b, org) in table {
        let plan = decide(&entry, &policy);
        assert_eq!(fields_of(&plan, Side::A), to_a, "{what}: writes to A");
        assert_eq!(fields_of(&plan, Side::B), to_b, "{what}: writes to B");
        assert_eq!(base_org(&plan).as_deref(), org, "{what}: base org");
    }
    assert_eq!(policy.field_source("org"), Some(Side::A));
    assert!(!policy.writes_field("org", Side::A) && policy.writes_field("title", Side::A));
}

// ---- recurring series and attendees ----

fn at(local: &str) -> Value {
    Value::DateTime {
        local: local.into(),
        tz: Some("Europe/Berlin".into()),
    }
}

/// An override of the occurrence at `local` with the given text fields.
fn occurrence(local: &str, fields: &[(&str, &str)]) -> Value {
    Value::map(
        std::iter::once(("recurrence_id".to_string(), at(local)))
            .chain(fields.iter().map(|(k, v)| (k.to_string(), Value::text(*v)))),
    )
}

fn attendee(email: &str, partstat: &str) -> Value {
    Value::map([
        ("email", Value::text(email)),
        ("partstat", Value::text(partstat)),
    ])
}

/// A weekly standup: two overrides, one cancelled date, two attendees.
fn series() -> Record {
    Record::new(Kind::Event, "s")
        .with("summary", Value::text("Standup"))
        .with("start", at("2026-12-01T09:00:00"))
        .with("end", at("2026-12-01T09:15:00"))
        .with(
            "recurrence",
            Value::map([
                ("rrule", Value::text("FREQ=WEEKLY;COUNT=10")),
                ("exdate", Value::List(vec![at("2026-12-08T09:00:00")])),
            ]),
        )
        .with(
            "overrides",
            Value::List(vec![
                occurrence("2026-12-15T09:00:00", &[("summary", "Standup (long)")]),
                occurrence("2026-12-22T09:00:00", &[("location", "Room 2")]),
            ]),
        )
        .with(
            "attendees",
            Value::List(vec![
                attendee("ada@example.org", "ACCEPTED"),
                attendee("bob@example.org", "NEEDS-ACTION"),
            ]),
        )
}

/// Edits of a series, written against whatever record they are given.
type Edit = fn(&mut Record);

fn list_mut<'r>(r: &'r mut Record, field: &str) -> &'r mut Vec<Value> {
    if r.get(field).is_none() {
        r.fields_mut().insert(field.into(), Value::List(Vec::new()));
    }
    match r.fields_mut().get_mut(field) {
        Some(Value::List(items)) => items,
        other => panic!("{field} is not a list: {other:?}"),
    }
}

fn map_mut(v: &mut Value) -> &mut std::collections::BTreeMap<String, Value> {
    match v {
        Value::Map(m) => m,
        other => panic!("not a map: {other:?}"),
    }
}

/// Sets `field` of the override of `local` (adding the override if missing).
fn set_override(r: &mut Record, local: &str, field: &str, value: Value) {
    let list = list_mut(r, "overrides");
    let rid = at(local);
    let i = match list
        .iter()
        .position(|o| o.as_map().and_then(|m| m.get("recurrence_id")) == Some(&rid))
    {
        Some(i) => i,
        None => {
            list.push(occurrence(local, &[]));
            list.len() - 1
        }
    };
    map_mut(&mut list[i]).insert(field.into(), value);
}

/// Adds an override of `local` that moves it and every later occurrence an
/// hour later (`RANGE=THISANDFUTURE`).
fn add_this_and_future(r: &mut Record, local: &str) {
    let (day, _) = local.split_once('T').expect("a date-time");
    set_override(r, local, "start", at(&format!("{day}T10:00:00")));
    set_override(r, local, "end", at(&format!("{day}T10:15:00")));
    set_override(r, local, "range", Value::text("THISANDFUTURE"));
}

fn remove_override(r: &mut Record, local: &str) {
    let rid = at(local);
    list_mut(r, "overrides")
        .retain(|o| o.as_map().and_then(|m| m.get("recurrence_id")) != Some(&rid));
}

fn recurrence_mut(r: &mut Record) -> &mut std::collections::BTreeMap<String, Value> {
    map_mut(r.fields_mut().get_mut("recurrence").expect("a series"))
}

fn cancel(r: &mut Record, local: &str) {
    match recurrence_mut(r)
        .entry("exdate".into())
        .or_insert(Value::List(Vec::new()))
    {
        Value::List(items) => items.push(at(local)),
        other => panic!("exdate: {other:?}"),
    }
}

fn set_rrule(r: &mut Record, rule: &str) {
    recurrence_mut(r).insert("rrule".into(), Value::text(rule));
}

fn set_partstat(r: &mut Record, email: &str, partstat: &str) {
    for a in list_mut(r, "attendees") {
        let m = map_mut(a);
        if m.get("email")
            .and_then(Value::as_text)
            .map(str::to_lowercase)
            == Some(email.into())
        {
            m.insert("partstat".into(), Value::text(partstat));
        }
    }
}

/// What a row of the series table expects.
enum Expect {
    /// Both edits survive under every policy, nothing clashes.
    Both,
    /// The same thing changed on both sides: under `a` the base with
    /// `a_wins` applied, under `b` and `newest` (B is newer) with `b_wins`;
    /// under `manual` the fields go to the inbox.
    Clash {
        fields: &'static [&'static str],
        a_wins: Edit,
        b_wins: Edit,
    },
}

/// Every case of merging inside a series, under every conflict rule.
#[test]
fn series_table() {
    #[rustfmt::skip]
    let table: Vec<(&str, Edit, Edit, Expect)> = vec![
        (
            "A moves occurrence X, B edits occurrence Y",
            |r| set_override(r, "2026-12-15T09:00:00", "start", at("2026-12-15T10:00:00")),
            |r| set_override(r, "2026-12-22T09:00:00", "summary", Value::text("Retro")),
            Expect::Both,
        ),
        (
            "A and B change different fields of one override",
            |r| set_override(r, "2026-12-15T09:00:00", "location", Value::text("Room 7")),
            |r| set_override(r, "2026-12-15T09:00:00", "description", Value::text("bring notes")),
            Expect::Both,
        ),
        (
            "A and B change the same field of one override",
            |r| set_override(r, "2026-12-15T09:00:00", "summary", Value::text("Planning")),
            |r| set_override(r, "2026-12-15T09:00:00", "summary", Value::text("Review")),
            Expect::Clash {
                fields: &["overrides"],
                a_wins: |r| set_override(r, "2026-12-15T09:00:00", "summary", Value::text("Planning")),
                b_wins: |r| set_override(r, "2026-12-15T09:00:00", "summary", Value::text("Review")),
            },
        ),
        (
            "A adds an override, B renames the series",
            |r| set_override(r, "2026-12-29T09:00:00", "start", at("2026-12-30T09:00:00")),
            |r| r.set("summary", Value::text("Daily sync")),
            Expect::Both,
        ),
        (
            "A adds a THISANDFUTURE override, B renames the series",
            |r| add_this_and_future(r, "2026-12-29T09:00:00"),
            |r| r.set("summary", Value::text("Daily sync")),
            Expect::Both,
        ),
        (
            "A makes an override THISANDFUTURE, B edits its location",
            |r| set_override(r, "2026-12-15T09:00:00", "range", Value::text("THISANDFUTURE")),
            |r| set_override(r, "2026-12-15T09:00:00", "location", Value::text("Room 5")),
            Expect::Both,
        ),
        (
            "A removes an override, B renames the series",
            |r| remove_override(r, "2026-12-22T09:00:00"),
            |r| r.set("summary", Value::text("Daily sync")),
            Expect::Both,
        ),
        (
            "A removes an override B edited",
            |r| remove_override(r, "2026-12-22T09:00:00"),
            |r| set_override(r, "2026-12-22T09:00:00", "location", Value::text("Room 3")),
            Expect::Clash {
                fields: &["overrides"],
                a_wins: |r| remove_override(r, "2026-12-22T09:00:00"),
                b_wins: |r| set_override(r, "2026-12-22T09:00:00", "location", Value::text("Room 3")),
            },
        ),
        (
            "both add an override of one occurrence, different fields",
            |r| set_override(r, "2026-12-29T09:00:00", "summary", Value::text("Last one")),
            |r| set_override(r, "2026-12-29T09:00:00", "location", Value::text("Café")),
            Expect::Both,
        ),
        (
            "both add an override of one occurrence, same field differently",
            |r| set_override(r, "2026-12-29T09:00:00", "summary", Value::text("Last one")),
            |r| set_override(r, "2026-12-29T09:00:00", "summary", Value::text("Party")),
            Expect::Clash {
                fields: &["overrides"],
                a_wins: |r| set_override(r, "2026-12-29T09:00:00", "summary", Value::text("Last one")),
                b_wins: |r| set_override(r, "2026-12-29T09:00:00", "summary", Value::text("Party")),
            },
        ),
        (
            "A cancels one occurrence, B cancels another",
            |r| cancel(r, "2027-01-05T09:00:00"),
            |r| cancel(r, "2027-01-12T09:00:00"),
            Expect::Both,
        ),
        (
            "A cancels one occurrence, B edits another",
            |r| cancel(r, "2027-01-05T09:00:00"),
            |r| set_override(r, "2026-12-22T09:00:00", "summary", Value::text("Retro")),
            Expect::Both,
        ),
        (
            "A moves an occurrence, B renames the series",
            |r| set_override(r, "2026-12-22T09:00:00", "start", at("2026-12-23T09:00:00")),
            |r| r.set("summary", Value::text("Daily sync")),
            Expect::Both,
        ),
        (
            "A changes the rule, B renames the series",
            |r| set_rrule(r, "FREQ=WEEKLY;COUNT=5"),
            |r| r.set("summary", Value::text("Daily sync")),
            Expect::Both,
        ),
        (
            "A changes the rule, B edits an override: the series is one unit",
            |r| set_rrule(r, "FREQ=DAILY;COUNT=10"),
            |r| set_override(r, "2026-12-22T09:00:00", "summary", Value::text("Retro")),
            Expect::Clash {
                fields: &["overrides", "recurrence"],
                a_wins: |r| set_rrule(r, "FREQ=DAILY;COUNT=10"),
                b_wins: |r| set_override(r, "2026-12-22T09:00:00", "summary", Value::text("Retro")),
            },
        ),
        (
            "A edits an override and renames, B moves the series start: one unit, rename kept",
            |r| {
                set_override(r, "2026-12-22T09:00:00", "location", Value::text("Room 9"));
                r.set("summary", Value::text("Daily sync"));
            },
            |r| {
                r.set("start", at("2026-12-01T10:00:00"));
                r.set("end", at("2026-12-01T10:15:00"));
            },
            Expect::Clash {
                fields: &["end", "overrides", "start"], // sorted
                a_wins: |r| {
                    set_override(r, "2026-12-22T09:00:00", "location", Value::text("Room 9"));
                    r.set("summary", Value::text("Daily sync"));
                },
                b_wins: |r| {
                    r.set("start", at("2026-12-01T10:00:00"));
                    r.set("end", at("2026-12-01T10:15:00"));
                    r.set("summary", Value::text("Daily sync"));
                },
            },
        ),
        (
            "A changes the rule, B cancels an occurrence: one unit",
            |r| set_rrule(r, "FREQ=WEEKLY;COUNT=4"),
            |r| cancel(r, "2027-01-05T09:00:00"),
            Expect::Clash {
                fields: &["recurrence"],
                a_wins: |r| set_rrule(r, "FREQ=WEEKLY;COUNT=4"),
                b_wins: |r| cancel(r, "2027-01-05T09:00:00"),
            },
        ),
        (
            "both make the same rule change, B also edits an override",
            |r| set_rrule(r, "FREQ=WEEKLY;COUNT=12"),
            |r| {
                set_rrule(r, "FREQ=WEEKLY;COUNT=12");
                set_override(r, "2026-12-22T09:00:00", "summary", Value::text("Retro"));
            },
            Expect::Both,
        ),
        (
            "A changes one attendee's partstat, B adds an attendee",
            |r| set_partstat(r, "bob@example.org", "ACCEPTED"),
            |r| list_mut(r, "attendees").push(attendee("cy@example.org", "NEEDS-ACTION")),
            Expect::Both,
        ),
        (
            "A and B change different attendees",
            |r| set_partstat(r, "bob@example.org", "ACCEPTED"),
            |r| set_partstat(r, "ada@example.org", "TENTATIVE"),
            Expect::Both,
        ),
        (
            "A and B change one attendee's partstat differently",
            |r| set_partstat(r, "bob@example.org", "ACCEPTED"),
            |r| set_partstat(r, "bob@example.org", "DECLINED"),
            Expect::Clash {
                fields: &["attendees"],
                a_wins: |r| set_partstat(r, "bob@example.org", "ACCEPTED"),
                b_wins: |r| set_partstat(r, "bob@example.org", "DECLINED"),
            },
        ),
        (
            "an attendee's address differs only in case: one attendee",
            |r| {
                list_mut(r, "attendees").retain(|a| a.as_map().and_then(|m| m.get("email")) != Some(&Value::text("bob@example.org")));
                list_mut(r, "attendees").push(attendee("Bob@Example.org", "NEEDS-ACTION"));
            },
            |r| set_partstat(r, "bob@example.org", "ACCEPTED"),
            Expect::Both,
        ),
    ];
    for (what, edit_a, edit_b, expect) in table {
        let base = series();
        let mut a = base.clone();
        edit_a(&mut a);
        a.modified = Some(10);
        let mut b = base.clone();
        edit_b(&mut b);
        b.modified = Some(20);
        for rule in [
            ConflictRule::A,
            ConflictRule::B,
            ConflictRule::Newest,
            ConflictRule::Manual,
        ] {
            let policy = Policy {
                conflict: rule,
                ..Policy::default()
            };
            let m = merge_fields(Some(&base), &a, &b, &policy);
            let ctx = format!("{what} ({rule:?})");
            let with = |edits: &[Edit]| {
                let mut r = base.clone();
                for e in edits {
                    e(&mut r);
                }
                r
            };
            match (&expect, rule) {
                (Expect::Both, _) => {
                    assert!(
                        m.conflicts.is_empty() && m.settled.is_empty(),
                        "{ctx}: {m:?}"
                    );
                    assert!(
                        m.merged.same_content(&with(&[edit_a, edit_b])),
                        "{ctx}: {:#?}",
                        m.merged
                    );
                }
                (Expect::Clash { fields, .. }, ConflictRule::Manual) => {
                    assert_eq!(m.conflicts, fields.to_vec(), "{ctx}");
                }
                (
                    Expect::Clash {
                        fields,
                        a_wins,
                        b_wins,
                    },
                    _,
                ) => {
                    let wins = if rule == ConflictRule::A {
                        a_wins
                    } else {
                        b_wins
                    };
                    assert_eq!(m.settled, fields.to_vec(), "{ctx}");
                    assert!(m.conflicts.is_empty(), "{ctx}");
                    assert!(
                        m.merged.same_content(&with(&[*wins])),
                        "{ctx}: {:#?}",
                        m.merged
                    );
                }
            }
            // Never two overrides of one occurrence.
            if let Some(list) = m.merged.get("overrides").and_then(Value::as_list) {
                let mut ids: Vec<String> = list
                    .iter()
                    .map(|o| {
                        o.as_map()
                            .and_then(|m| m.get("recurrence_id"))
                            .map(|v| v.to_string())
                            .unwrap_or_default()
                    })
                    .collect();
                let n = ids.len();
                ids.sort();
                ids.dedup();
                assert_eq!(ids.len(), n, "{ctx}: duplicated override");
            }
        }
    }
}

/// Two edits of one series flow to both sides through `decide`, and a
/// `manual` rule-versus-occurrence clash writes nothing.
#[test]
fn series_edits_through_decide() {
    let base = series();
    let mut a = base.clone();
    set_override(
        &mut a,
        "2026-12-15T09:00:00",
        "start",
        at("2026-12-15T10:00:00"),
    );
    let mut b = base.clone();
    b.set("summary", Value::text("Daily sync"));
    let entry = Entry {
        uid: "s".into(),
        base: Some(base.clone()),
        a: Some(Current::moved("a.ics", "2", a.clone())),
        b: Some(Current::moved("b.ics", "2", b)),
    };
    let plan = decide(&entry, &Policy::default());
    let fields = |side: Side| -> Vec<String> {
        plan.writes
            .iter()
            .filter(|w| w.side() == side)
            .flat_map(|w| match w {
                Write::Update { changes, .. } => changes.iter().map(|c| c.field.clone()).collect(),
                _ => Vec::new(),
            })
            .collect()
    };
    assert_eq!(fields(Side::A), vec!["summary"]);
    assert_eq!(fields(Side::B), vec!["overrides"]);

    let mut b = base.clone();
    set_rrule(&mut b, "FREQ=DAILY;COUNT=3");
    let entry = Entry {
        b: Some(Current::moved("b.ics", "2", b)),
        ..entry
    };
    let manual = Policy {
        conflict: ConflictRule::Manual,
        ..Policy::default()
    };
    let plan = decide(&entry, &manual);
    assert!(plan.writes.is_empty());
    assert_eq!(
        plan.outcome,
        Outcome::Conflict {
            fields: vec!["overrides".into(), "recurrence".into()]
        }
    );
}

/// A THISANDFUTURE override added on A while B renames the series: B gets
/// the override with its `range`, A gets the new name, the base has both.
#[test]
fn an_added_this_and_future_override_keeps_its_range() {
    let base = series();
    let mut a = base.clone();
    add_this_and_future(&mut a, "2026-12-29T09:00:00");
    let mut b = base.clone();
    b.set("summary", Value::text("Daily sync"));
    let entry = Entry {
        uid: "s".into(),
        base: Some(base.clone()),
        a: Some(Current::moved("a.ics", "2", a.clone())),
        b: Some(Current::moved("b.ics", "2", b)),
    };
    let plan = decide(&entry, &Policy::default());
    assert!(plan.settled.is_empty(), "{plan:?}");
    let written = |side: Side, field: &str| -> Option<Value> {
        plan.writes.iter().find_map(|w| match w {
            Write::Update { changes, .. } if w.side() == side => changes
                .iter()
                .find(|c| c.field == field)
                .and_then(|c| c.value.clone()),
            _ => None,
        })
    };
    let range_of = |overrides: &Value, local: &str| -> Option<Value> {
        overrides
            .as_list()?
            .iter()
            .filter_map(Value::as_map)
            .find(|o| o.get("recurrence_id") == Some(&at(local)))?
            .get("range")
            .cloned()
    };
    let ranged = Some(Value::text("THISANDFUTURE"));
    let to_b = written(Side::B, "overrides").expect("overrides written to B");
    assert_eq!(range_of(&to_b, "2026-12-29T09:00:00"), ranged);
    assert_eq!(range_of(&to_b, "2026-12-15T09:00:00"), None);
    assert!(to_b.same(a.get("overrides").unwrap()), "{to_b:#?}");
    assert_eq!(written(Side::A, "summary"), Some(Value::text("Daily sync")));
    assert_eq!(written(Side::A, "overrides"), None);
    let Outcome::Link { base: merged } = &plan.outcome else {
        panic!("{:?}", plan.outcome)
    };
    assert_eq!(merged.get("summary"), Some(&Value::text("Daily sync")));
    assert_eq!(
        range_of(merged.get("overrides").unwrap(), "2026-12-29T09:00:00"),
        ranged
    );
}

/// A single (non-recurring) event keeps field-by-field merging of its times.
#[test]
fn single_events_merge_times_field_by_field() {
    let base = Record::new(Kind::Event, "e")
        .with("start", at("2026-12-01T09:00:00"))
        .with("end", at("2026-12-01T10:00:00"));
    let a = base.clone().with("start", at("2026-12-01T08:00:00"));
    let b = base.clone().with("end", at("2026-12-01T11:00:00"));
    let m = merge_fields(Some(&base), &a, &b, &Policy::default());
    assert!(m.settled.is_empty());
    assert_eq!(m.merged.get("start"), Some(&at("2026-12-01T08:00:00")));
    assert_eq!(m.merged.get("end"), Some(&at("2026-12-01T11:00:00")));
}
