//! Safety brakes over MemoryStores and SqliteState: a side suddenly empty,
//! deletions above `max_delete`, the state database deleted or rolled back
//! to an older copy. In every case the run deletes nothing, counted both in
//! the journal and on the stores.
//!
//! Filters do not exist in the engine yet (`crates/engine/src/config.rs`
//! has no filter key), so "a changed filter" is not tested here.

use crate::harness::{pair_config, Bench, Synced};
use crate::model::{random_policy, Rng, Users};
use std::collections::BTreeSet;
use std::path::Path;
use tandem_plan::Brake;
use tandem_record::{Kind, Record, Side, Value};
use tandem_state::SqliteState;
use tandem_store::ROOT;

fn contact(uid: &str, note: &str) -> Record {
    Record::new(Kind::Contact, uid).with("note", Value::text(note))
}

fn uids(bench: &Bench, side: Side) -> BTreeSet<String> {
    bench
        .store(side)
        .records(ROOT)
        .into_iter()
        .map(|r| r.uid)
        .collect()
}

/// Runs a sync and checks it deleted nothing on either side.
fn sync_deleting_nothing(bench: &mut Bench, force: bool) -> Synced {
    let before = [uids(bench, Side::A), uids(bench, Side::B)];
    let synced = bench.sync(None, force);
    assert_eq!(
        bench.journaled_deletes(synced.run),
        [0, 0],
        "journaled deletes"
    );
    for (i, side) in Side::BOTH.into_iter().enumerate() {
        let now = uids(bench, side);
        let gone: Vec<&String> = before[i].difference(&now).collect();
        assert!(gone.is_empty(), "deleted on side {side}: {gone:?}");
    }
    synced
}

/// Ten contacts made on A and synced to B.
fn ten_synced(direction: &str, max_delete: &str) -> Bench {
    let mut bench = Bench::in_memory(pair_config(direction, "newest", max_delete, &[]));
    let source = if direction == "b-to-a" {
        &bench.b
    } else {
        &bench.a
    };
    for i in 0..10 {
        source.insert(ROOT, contact(&format!("c{i}"), "hello"));
    }
    let first = bench.sync(None, false);
    assert!(first.outcome().brake.is_none());
    assert_eq!(bench.counts(), [10, 10]);
    bench
}

#[test]
fn a_side_suddenly_empty_stops_the_run() {
    for direction in ["both", "a-to-b", "b-to-a"] {
        for emptied in Side::BOTH {
            let mut bench = ten_synced(direction, "100%");
            for i in 0..10 {
                bench.store(emptied).remove(ROOT, &format!("c{i}"));
            }
            let synced = sync_deleting_nothing(&mut bench, false);
            assert!(
                matches!(synced.outcome().brake, Some(Brake::SideEmptied { side, linked: 10 }) if side == emptied),
                "{direction}, {emptied} emptied: {:?}",
                synced.outcome().brake
            );
            assert_eq!(
                synced.writes,
                [0, 0],
                "{direction}: a braked run writes nothing"
            );
        }
    }
}

#[test]
fn deletions_above_max_delete_stop_the_run() {
    for (max_delete, removed) in [("50%", 6), ("3", 4), ("0", 1)] {
        let mut bench = ten_synced("both", max_delete);
        for i in 0..removed {
            bench.b.remove(ROOT, &format!("c{i}"));
        }
        let synced = sync_deleting_nothing(&mut bench, false);
        assert!(
            matches!(synced.outcome().brake, Some(Brake::TooManyDeletes { side: Side::A, deletes, .. }) if deletes == removed),
            "max_delete {max_delete}, {removed} removed: {:?}",
            synced.outcome().brake
        );
        assert_eq!(synced.writes, [0, 0]);
    }
    // At the limit the run goes on (the brake is not simply always on).
    let mut bench = ten_synced("both", "3");
    for i in 0..3 {
        bench.b.remove(ROOT, &format!("c{i}"));
    }
    let synced = bench.sync(None, false);
    assert!(synced.outcome().brake.is_none());
    assert_eq!(bench.journaled_deletes(synced.run), [3, 0]);
}

/// Closes the state (checkpointing its WAL into the file) and opens it again.
fn reopen(bench: &mut Bench, path: &Path) {
    let placeholder = SqliteState::in_memory().expect("in-memory state");
    drop(std::mem::replace(&mut bench.state, placeholder));
    bench.state = SqliteState::open(path).expect("reopen state");
}

fn remove_state(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn a_deleted_state_database_deletes_nothing() {
    for direction in ["both", "a-to-b", "b-to-a"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.db");
        let mut bench = Bench::new(
            pair_config(direction, "manual", "50%", &[]),
            SqliteState::open(&path).expect("state"),
        );
        for i in 0..10 {
            bench.a.insert(ROOT, contact(&format!("c{i}"), "hello"));
            bench.b.insert(ROOT, contact(&format!("c{i}"), "hello"));
        }
        bench.sync(None, false);
        // Users delete some, edit some (one edit on both sides, differently).
        for i in 0..3 {
            bench.b.remove(ROOT, &format!("c{i}"));
            bench.a.remove(ROOT, &format!("c{}", i + 3));
        }
        bench.a.insert(ROOT, contact("c6", "from a"));
        bench.b.insert(ROOT, contact("c6", "from b"));
        bench.b.insert(ROOT, contact("c7", "from b"));
        // The state database is lost.
        drop(std::mem::replace(
            &mut bench.state,
            SqliteState::in_memory().expect("in-memory state"),
        ));
        remove_state(&path);
        bench.state = SqliteState::open(&path).expect("fresh state");
        let synced = sync_deleting_nothing(&mut bench, true);
        assert!(synced.outcome().report.failures.is_empty());
        // Nothing is duplicated either: every UID once per side.
        let a = uids(&bench, Side::A);
        let b = uids(&bench, Side::B);
        assert!(a.len() <= 10 && b.len() <= 10, "{a:?} {b:?}");
    }
}

#[test]
fn a_state_rolled_back_to_an_older_copy_deletes_nothing() {
    let cases = 150;
    let mut rolled_back = 0;
    for seed in 0..cases {
        let mut rng = Rng::new(0xB4A4E ^ seed);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.db");
        let (direction, conflict, owners) = random_policy(&mut rng);
        let mut bench = Bench::new(
            pair_config(&direction, &conflict, "50%", &owners),
            SqliteState::open(&path).expect("state"),
        );
        let mut users = Users::new();
        let mut log = Vec::new();
        let mut copies = Vec::new();
        for round in 0..4 {
            users.act(&mut rng, Side::A, &bench.a, &bench.b, 5, &mut log);
            users.act(&mut rng, Side::B, &bench.b, &bench.a, 5, &mut log);
            bench.sync(None, true);
            reopen(&mut bench, &path);
            let copy = dir.path().join(format!("copy-{round}.db"));
            std::fs::copy(&path, &copy).expect("copy state");
            copies.push(copy);
        }
        // Back to a random older copy; the users changed nothing since.
        let older = &copies[rng.below(copies.len() as u64 - 1) as usize];
        drop(std::mem::replace(
            &mut bench.state,
            SqliteState::in_memory().expect("in-memory state"),
        ));
        remove_state(&path);
        std::fs::copy(older, &path).expect("restore copy");
        bench.state = SqliteState::open(&path).expect("rolled-back state");
        let before = bench.counts();
        let synced = sync_deleting_nothing(&mut bench, true);
        assert!(
            synced.outcome().report.failures.is_empty(),
            "seed {seed}: {:?}",
            synced.outcome().report.failures
        );
        assert!(bench.counts()[0] >= before[0] && bench.counts()[1] >= before[1]);
        rolled_back += 1;
    }
    eprintln!("brakes: {rolled_back} rolled-back states, 0 deletions");
}
