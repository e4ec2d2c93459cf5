//! Small deterministic cases the randomized model found, kept as scripts.

use crate::harness::{pair_config, Bench};
use tandem_record::{Kind, Record, Value};
use tandem_state::StateStore;
use tandem_store::ROOT;

/// Seed 45: on an `a-to-b` pair, an edit on the target that an earlier sync
/// already saw ("edited on the one-way target: kept", which records the
/// target's new version) was deleted when the source later deleted the
/// item: the target's unmoved version made it look unedited. The docs say
/// an item deleted on the source while edited on the target is kept there
/// and unlinked, whenever the edit was made.
#[test]
fn one_way_target_edit_seen_earlier_survives_a_source_delete() {
    let mut bench = Bench::in_memory(pair_config("a-to-b", "newest", "100%", &[]));
    let card = Record::new(Kind::Contact, "u1").with("org", Value::text("y"));
    bench.a.insert(ROOT, card.clone());
    bench.sync(None, false);
    // The target's user adds a note; the next sync keeps it there.
    let edited = card.with("note", Value::text("x"));
    bench.b.insert(ROOT, edited.clone());
    let kept = bench.sync(None, false);
    assert_eq!(kept.writes, [0, 0]);
    // The source's user deletes the card.
    bench.a.remove(ROOT, "u1");
    let synced = bench.sync(None, true);
    assert_eq!(bench.journaled_deletes(synced.run), [0, 0]);
    let b = bench.b.records(ROOT);
    assert_eq!(b.len(), 1, "the target's edited card is kept");
    assert!(b[0].same_content(&edited));
    assert!(
        bench.state.links("p", ROOT).unwrap().is_empty(),
        "and unlinked"
    );
    // Quiet afterwards.
    assert_eq!(bench.sync(None, false).writes, [0, 0]);
}

/// Seed 3262 (bug, not fixed here): under `manual`, a record made on both
/// sides with a clashing field goes to the inbox without a link. When both
/// users then delete it, no listing or link names the UID any more, so the
/// engine never looks at it and the inbox entry stays open for a record
/// that no longer exists. Expected: the entry is settled.
#[test]
fn inbox_entry_of_an_item_deleted_on_both_sides() {
    let mut bench = Bench::in_memory(pair_config("both", "manual", "100%", &[]));
    bench.a.insert(
        ROOT,
        Record::new(Kind::Contact, "u1").with("note", Value::text("z")),
    );
    bench.b.insert(
        ROOT,
        Record::new(Kind::Contact, "u1").with("note", Value::text("y")),
    );
    bench.sync(None, false);
    assert_eq!(bench.state.conflicts().unwrap().len(), 1);
    bench.a.remove(ROOT, "u1");
    bench.b.remove(ROOT, "u1");
    bench.sync(None, false);
    assert!(bench.state.conflicts().unwrap().is_empty(), "settled");
}
