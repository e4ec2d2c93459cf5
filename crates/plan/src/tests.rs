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
