//! Tests of [`SqliteState`]: persistence, migrations, every table's round
//! trip, batch atomicity, and (ignored by default) commit and load speed.

use super::*;
use crate::Link;
use tandem_record::{Kind, Value};

fn contact(uid: &str, name: &str) -> Record {
    Record::new(Kind::Contact, uid)
        .with("full_name", Value::text(name))
        .with(
            "emails",
            Value::List(vec![Value::text(format!("{uid}@example.org"))]),
        )
}

fn seen(id: &str, version: &str) -> Option<Seen> {
    Some(Seen {
        id: id.to_string(),
        version: version.to_string(),
    })
}

fn link(uid: &str, a: Option<Seen>, b: Option<Seen>) -> Link {
    Link {
        uid: uid.to_string(),
        a,
        b,
    }
}

fn update(link: Link, name: &str) -> crate::LinkUpdate {
    let base = contact(&link.uid, name);
    crate::LinkUpdate { link, base }
}

fn entry(run: i64, uid: &str, op: WriteOp, at: i64) -> JournalEntry {
    JournalEntry {
        seq: 0,
        run,
        pair: "p".to_string(),
        collection: "c".to_string(),
        side: Side::B,
        store: "server".to_string(),
        op,
        uid: uid.to_string(),
        id: None,
        before: None,
        after: None,
        version_before: None,
        version_after: None,
        done: false,
        at,
    }
}

fn conflict(run: i64, uid: &str, created_at: i64) -> Conflict {
    Conflict {
        id: 0,
        run,
        pair: "p".to_string(),
        collection: "c".to_string(),
        uid: uid.to_string(),
        fields: vec!["full_name".to_string()],
        a: Some(contact(uid, "Ada A")),
        b: Some(contact(uid, "Ada B")),
        base: Some(contact(uid, "Ada")),
        created_at,
    }
}

fn with_run() -> (SqliteState, i64) {
    let mut state = SqliteState::in_memory().expect("in-memory database");
    let run = state.begin_run("sync", &["p".to_string()]).expect("run");
    (state, run)
}

fn uids(links: &[Known]) -> Vec<&str> {
    links.iter().map(|l| l.uid.as_str()).collect()
}

#[test]
fn a_file_database_keeps_its_data_across_reopens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested/folders/state.db");
    {
        let mut state = SqliteState::open(&path).expect("open");
        assert_eq!(state.path(), Some(path.as_path()));
        let run = state.begin_run("sync", &["p".to_string()]).expect("run");
        let mut batch = Batch::new("p", "c");
        batch
            .links
            .push(update(link("u1", seen("a1", "1"), seen("b1", "e1")), "Ada"));
        state.commit(&batch).expect("commit");
        state
            .set_token("p", Side::B, "c", Some("tok-1"))
            .expect("token");
        state.finish_run(run, "done").expect("finish");
    }
    let state = SqliteState::open(&path).expect("reopen");
    assert_eq!(
        state.links("p", "c").expect("links"),
        vec![Known::from(&link("u1", seen("a1", "1"), seen("b1", "e1")))]
    );
    assert_eq!(
        state.token("p", Side::B, "c").expect("token").as_deref(),
        Some("tok-1")
    );
    let runs = state.runs(10).expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, "done");
    assert!(runs[0].finished_at.is_some());
    let mode: String = state
        .conn()
        .expect("connection")
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
    let page_size: i64 = state
        .conn()
        .expect("connection")
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .expect("page size");
    assert_eq!(page_size, PAGE_SIZE);
}

#[test]
fn migrations_run_once_and_set_the_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    let state = SqliteState::open(&path).expect("open");
    assert_eq!(
        schema::user_version(&state.conn().expect("connection")).expect("version"),
        SqliteState::SCHEMA_VERSION
    );
    drop(state);
    // A second run of migration 1 would fail on `CREATE TABLE links`.
    let state = SqliteState::open(&path).expect("reopen");
    assert_eq!(
        schema::user_version(&state.conn().expect("connection")).expect("version"),
        SqliteState::SCHEMA_VERSION
    );
    let in_memory = SqliteState::in_memory().expect("in memory");
    assert_eq!(in_memory.path(), None);
    assert_eq!(
        schema::user_version(&in_memory.conn().expect("connection")).expect("version"),
        SqliteState::SCHEMA_VERSION
    );
}

/// A version-1 database holds values in the tagged JSON form; it is
/// brought to the current version and its records read as they were.
#[test]
fn a_version_1_database_with_tagged_values_reads_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    drop(SqliteState::open(&path).expect("create"));
    {
        let conn = Connection::open(&path).expect("raw open");
        conn.execute_batch(
            r#"INSERT INTO links (pair, collection, uid, a_id, a_version, b_id, b_version, base)
               VALUES ('p', 'c', 'u1', 'a1', '1', 'b1', '2',
                 '{"kind":"contact","uid":"u1","fields":{"emails":{"list":[{"map":{"type":{"text":"work"},"value":{"text":"ada@example.org"}}}]},"full_name":{"text":"Ada"}},"modified":1700000000}');
               PRAGMA user_version = 1;"#,
        )
        .expect("write a version-1 link");
    }
    let state = SqliteState::open(&path).expect("reopen");
    assert_eq!(
        schema::user_version(&state.conn().expect("connection")).expect("version"),
        SqliteState::SCHEMA_VERSION
    );
    let bases = state.bases("p", "c", &["u1".to_string()]).expect("bases");
    let mut expected = Record::new(Kind::Contact, "u1")
        .with("full_name", Value::text("Ada"))
        .with(
            "emails",
            Value::List(vec![Value::map([
                ("value", Value::text("ada@example.org")),
                ("type", Value::text("work")),
            ])]),
        );
    expected.modified = Some(1_700_000_000);
    assert_eq!(bases.get("u1"), Some(&expected));
}

#[test]
fn a_database_from_a_newer_tandem_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    let newer = SqliteState::SCHEMA_VERSION + 1;
    {
        let conn = Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", newer)
            .expect("set version");
    }
    match SqliteState::open(&path) {
        Err(StateError::TooNew { found, supported }) => {
            assert_eq!(found, newer);
            assert_eq!(supported, SqliteState::SCHEMA_VERSION);
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
}

#[test]
fn links_round_trip_are_replaced_and_forgotten() {
    let mut state = SqliteState::in_memory().expect("open");
    let mut batch = Batch::new("p", "c");
    batch
        .links
        .push(update(link("u2", seen("a2", "1"), None), "Bob"));
    batch
        .links
        .push(update(link("u1", seen("a1", "1"), seen("b1", "e1")), "Ada"));
    batch
        .links
        .push(update(link("u3", None, seen("b3", "e3")), "Cy"));
    state.commit(&batch).expect("commit");
    let mut other = Batch::new("p", "other");
    other.links.push(update(
        link("u1", seen("x", "1"), seen("y", "1")),
        "Elsewhere",
    ));
    state.commit(&other).expect("commit other collection");

    assert_eq!(
        state.links("p", "c").expect("links"),
        vec![
            Known::from(&link("u1", seen("a1", "1"), seen("b1", "e1"))),
            Known::from(&link("u2", seen("a2", "1"), None)),
            Known::from(&link("u3", None, seen("b3", "e3"))),
        ]
    );
    assert_eq!(
        state.collections("p").expect("collections"),
        vec!["c", "other"]
    );
    assert!(state.links("q", "c").expect("links").is_empty());

    // Replace u1 (new versions, new base) and forget u3.
    let mut batch = Batch::new("p", "c");
    batch.links.push(update(
        link("u1", seen("a1", "2"), seen("b1", "e2")),
        "Ada L",
    ));
    batch.forget.push("u3".to_string());
    state.commit(&batch).expect("commit");
    let links = state.links("p", "c").expect("links");
    assert_eq!(uids(&links), vec!["u1", "u2"]);
    assert_eq!(
        links[0],
        Known::from(&link("u1", seen("a1", "2"), seen("b1", "e2")))
    );

    let asked = ["u1", "u3", "nope"].map(String::from);
    let bases = state.bases("p", "c", &asked).expect("bases");
    assert_eq!(bases.len(), 1);
    assert_eq!(bases["u1"], contact("u1", "Ada L"));
    let bases = state
        .bases("p", "other", &["u1".to_string()])
        .expect("bases");
    assert_eq!(bases["u1"], contact("u1", "Elsewhere"));
}

#[test]
fn an_encoded_batch_commits_what_it_holds() {
    let mut state = SqliteState::in_memory().expect("open");
    let mut batch = Batch::new("p", "c");
    batch
        .links
        .push(update(link("u1", seen("a1", "1"), seen("b1", "e1")), "Ada"));
    batch.encode().expect("encode");
    assert!(batch.encoded_base(0).is_some());
    // A link added after encoding: the commit encodes them all itself.
    batch.links.push(update(
        link("u2", seen("a2", "1"), seen("b2", "e1")),
        "Grace",
    ));
    assert_eq!(batch.encoded_base(0), None);
    state.commit(&batch).expect("commit");
    let asked = ["u1", "u2"].map(String::from);
    let bases = state.bases("p", "c", &asked).expect("bases");
    assert_eq!(bases["u1"], contact("u1", "Ada"));
    assert_eq!(bases["u2"], contact("u2", "Grace"));

    // Encoded as it stands, the batch commits the same bases.
    let mut batch = Batch::new("p", "c");
    batch.links.push(update(
        link("u1", seen("a1", "2"), seen("b1", "e2")),
        "Ada L",
    ));
    batch.encode().expect("encode");
    state.commit(&batch).expect("commit");
    let bases = state.bases("p", "c", &asked).expect("bases");
    assert_eq!(bases["u1"], contact("u1", "Ada L"));
}

#[test]
fn an_encoded_batch_marks_its_creates_done_with_their_images() {
    let mut state = SqliteState::in_memory().expect("open");
    let run = state.begin_run("sync", &["p".into()]).expect("run");
    // A create is journaled without its after-image, which comes with its
    // outcome.
    let seqs = state
        .journal_pending(&[
            entry(run, "u1", WriteOp::Create, 1),
            entry(run, "u2", WriteOp::Create, 1),
        ])
        .expect("pending");
    assert!(state.journal(run).expect("journal")[0].after.is_none());
    let image = |name: &str, uid: &str| Image {
        record: contact(uid, name),
        raw: None,
        media_type: None,
    };
    let mut batch = Batch::new("p", "c");
    batch.done.push((
        seqs[0],
        Some("u1.vcf".into()),
        Some("v1".into()),
        Some(image("Ada", "u1")),
    ));
    batch.encode().expect("encode");
    assert_eq!(
        batch.encoded_after(0).map(|json| json.is_some()),
        Some(true)
    );
    // An entry added after encoding: the commit encodes them all itself.
    batch
        .done
        .push((seqs[1], Some("u2.vcf".into()), Some("v1".into()), None));
    assert_eq!(batch.encoded_after(0), None);
    state.commit(&batch).expect("commit");
    let journal = state.journal(run).expect("journal");
    assert!(journal.iter().all(|e| e.done));
    assert_eq!(journal[0].after, Some(image("Ada", "u1")));
    assert_eq!(journal[0].id.as_deref(), Some("u1.vcf"));
    assert_eq!(journal[1].after, None);
}

#[test]
fn a_batch_committed_soon_is_there_for_the_next_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut state = SqliteState::open(&dir.path().join("state.db")).expect("open");
    let mut batch = Batch::new("p", "c");
    batch
        .links
        .push(update(link("u1", seen("a1", "1"), seen("b1", "e1")), "Ada"));
    state.commit_soon(batch).expect("started");
    // Read by `&self`: the call waits for the commit all the same.
    assert_eq!(state.links("p", "c").expect("links").len(), 1);
    state.committed().expect("nothing is pending");
    assert_eq!(state.link_counts("p", "c").expect("counts"), [1, 1]);
}

#[test]
fn a_state_dropped_with_a_commit_under_way_finishes_it_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.db");
    let mut state = SqliteState::open(&path).expect("open");
    let mut batch = Batch::new("p", "c");
    for i in 0..2_000 {
        batch.links.push(update(
            link(&format!("u{i}"), seen(&format!("a{i}"), "1"), None),
            "Ada",
        ));
    }
    state.commit_soon(batch).expect("started");
    drop(state);
    // Opened again at once: the batch is all there, and nothing holds the
    // write lock (a busy database would make this wait, then fail).
    let mut again = SqliteState::open(&path).expect("reopen");
    assert_eq!(again.link_counts("p", "c").expect("counts"), [2_000, 0]);
    again
        .begin_run("sync", &["p".into()])
        .expect("writes at once");
}

#[test]
fn a_failed_commit_made_soon_is_the_next_calls_error_and_leaves_nothing() {
    let mut state = SqliteState::in_memory().expect("open");
    let mut batch = Batch::new("p", "c");
    batch
        .links
        .push(update(link("u1", seen("a1", "1"), None), "Ada"));
    // No journal entry 999: the whole batch is refused.
    batch.done.push((999, None, Some("v".into()), None));
    state.commit_soon(batch).expect("started");
    match state.links("p", "c") {
        Err(StateError::NotFound {
            what: "journal entry",
            id: 999,
        }) => {}
        other => panic!("expected the commit's error, got {other:?}"),
    }
    // Reported once; the state goes on, without the batch.
    assert!(state.links("p", "c").expect("links").is_empty());
    state.committed().expect("nothing is pending");
}

#[test]
fn links_touching_ids_and_counts_per_side() {
    let mut state = SqliteState::in_memory().expect("open");
    let mut batch = Batch::new("p", "c");
    batch
        .links
        .push(update(link("u1", seen("a1", "1"), seen("b1", "e1")), "Ada"));
    batch
        .links
        .push(update(link("u2", seen("a2", "1"), None), "Bob"));
    batch
        .links
        .push(update(link("u3", None, seen("b3", "e3")), "Cy"));
    batch
        .links
        .push(update(link("u4", seen("a4", "1"), seen("b4", "e4")), "Di"));
    state.commit(&batch).expect("commit");
    let mut other = Batch::new("p", "other");
    other.links.push(update(
        link("u9", seen("a1", "1"), seen("b3", "1")),
        "Elsewhere",
    ));
    state.commit(&other).expect("commit other");

    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // u1 is named on both sides and comes back once; an id of one side
    // never matches the other side's column; other collections stay out.
    let (a, b) = (ids(&["a1", "b3", "nope"]), ids(&["b1", "b3", "a2"]));
    let found = state.links_touching("p", "c", [&a, &b]).expect("touching");
    assert_eq!(uids(&found), vec!["u1", "u3"]);
    assert_eq!(
        found[0],
        Known::from(&link("u1", seen("a1", "1"), seen("b1", "e1")))
    );
    assert!(state
        .links_touching("p", "c", [&[], &[]])
        .expect("none")
        .is_empty());
    assert_eq!(state.link_counts("p", "c").expect("counts"), [3, 3]);
    assert_eq!(state.link_counts("q", "c").expect("counts"), [0, 0]);

    // The trait's own versions (over `links`) agree with the indexed ones.
    struct Plain(SqliteState);
    let plain = Plain(state);
    let by_default = crate::StateStore::links_touching(&plain, "p", "c", [&a, &b]);
    assert_eq!(by_default.expect("default"), found);
    assert_eq!(
        crate::StateStore::link_counts(&plain, "p", "c").expect("default counts"),
        [3, 3]
    );

    impl crate::StateStore for Plain {
        fn links(&self, pair: &str, collection: &str) -> crate::Result<Vec<Known>> {
            self.0.links(pair, collection)
        }
        fn collections(&self, pair: &str) -> crate::Result<Vec<String>> {
            self.0.collections(pair)
        }
        fn bases(
            &self,
            pair: &str,
            collection: &str,
            uids: &[String],
        ) -> crate::Result<std::collections::HashMap<String, Record>> {
            self.0.bases(pair, collection, uids)
        }
        fn begin_run(&mut self, _: &str, _: &[String]) -> crate::Result<i64> {
            unreachable!("read-only")
        }
        fn finish_run(&mut self, _: i64, _: &str) -> crate::Result<()> {
            unreachable!("read-only")
        }
        fn runs(&self, limit: usize) -> crate::Result<Vec<crate::Run>> {
            self.0.runs(limit)
        }
        fn journal_pending(&mut self, _: &[JournalEntry]) -> crate::Result<Vec<i64>> {
            unreachable!("read-only")
        }
        fn journal(&self, run: i64) -> crate::Result<Vec<JournalEntry>> {
            self.0.journal(run)
        }
        fn commit(&mut self, _: &Batch) -> crate::Result<()> {
            unreachable!("read-only")
        }
        fn conflicts(&self) -> crate::Result<Vec<Conflict>> {
            self.0.conflicts()
        }
        fn token(&self, pair: &str, side: Side, collection: &str) -> crate::Result<Option<String>> {
            self.0.token(pair, side, collection)
        }
        fn set_token(&mut self, _: &str, _: Side, _: &str, _: Option<&str>) -> crate::Result<()> {
            unreachable!("read-only")
        }
    }
}

#[test]
fn journal_entries_go_from_pending_to_done() {
    let (mut state, run) = with_run();
    let mut update_entry = entry(run, "u1", WriteOp::Update, 100);
    update_entry.id = Some("b1".to_string());
    update_entry.version_before = Some("e1".to_string());
    update_entry.before = Some(Image {
        record: contact("u1", "Ada"),
        raw: Some("BEGIN:VCARD\r\nEND:VCARD\r\n".to_string()),
        media_type: Some("text/vcard".to_string()),
    });
    let create_entry = entry(run, "u2", WriteOp::Create, 101);
    let seqs = state
        .journal_pending(&[update_entry.clone(), create_entry.clone()])
        .expect("pending");
    assert_eq!(seqs.len(), 2);
    assert!(seqs[0] < seqs[1]);

    let journal = state.journal(run).expect("journal");
    assert_eq!(journal.len(), 2);
    assert_eq!(
        journal[0],
        JournalEntry {
            seq: seqs[0],
            ..update_entry.clone()
        }
    );
    assert!(journal.iter().all(|e| !e.done));

    let after = Image {
        record: contact("u2", "Bob"),
        raw: None,
        media_type: None,
    };
    let mut batch = Batch::new("p", "c");
    batch.done.push((
        seqs[1],
        Some("b2".to_string()),
        Some("e9".to_string()),
        Some(after.clone()),
    ));
    // No id given: the update keeps the one it was journaled with.
    batch
        .done
        .push((seqs[0], None, Some("e2".to_string()), None));
    state.commit(&batch).expect("commit");

    let journal = state.journal(run).expect("journal");
    assert_eq!(
        journal[1],
        JournalEntry {
            seq: seqs[1],
            id: Some("b2".to_string()),
            version_after: Some("e9".to_string()),
            after: Some(after),
            done: true,
            ..create_entry
        }
    );
    assert!(journal[0].done);
    assert_eq!(journal[0].id.as_deref(), Some("b1"));
    assert_eq!(journal[0].version_after.as_deref(), Some("e2"));
    assert!(state.journal(run + 1).expect("journal").is_empty());
}

#[test]
fn conflicts_are_added_replaced_and_settled() {
    let (mut state, run) = with_run();
    let mut batch = Batch::new("p", "c");
    batch.conflicts.push(conflict(run, "u1", 10));
    batch.conflicts.push(conflict(run, "u2", 20));
    state.commit(&batch).expect("commit");
    let open = state.conflicts().expect("conflicts");
    assert_eq!(
        open.iter().map(|c| c.uid.as_str()).collect::<Vec<_>>(),
        ["u1", "u2"]
    );
    let first = open[0].clone();
    assert_eq!(
        first,
        Conflict {
            id: first.id,
            ..conflict(run, "u1", 10)
        }
    );
    assert_eq!(state.conflict(first.id).expect("conflict"), first);

    // A newer conflict on u1 replaces the open one.
    let mut batch = Batch::new("p", "c");
    batch.conflicts.push(conflict(run, "u1", 30));
    state.commit(&batch).expect("commit");
    let open = state.conflicts().expect("conflicts");
    assert_eq!(
        open.iter()
            .map(|c| (c.uid.as_str(), c.created_at))
            .collect::<Vec<_>>(),
        [("u2", 20), ("u1", 30)]
    );
    assert!(matches!(
        state.conflict(first.id),
        Err(StateError::NotFound {
            what: "conflict",
            ..
        })
    ));

    // Settled in a batch (twice: settling is idempotent there) …
    let mut batch = Batch::new("p", "c");
    batch.settled.push(open[0].id);
    batch.settled.push(open[0].id);
    batch.settled.push(first.id);
    state.commit(&batch).expect("commit");
    // … or one by one.
    state.settle(open[1].id).expect("settle");
    assert!(state.conflicts().expect("conflicts").is_empty());
    assert!(matches!(
        state.settle(open[1].id),
        Err(StateError::NotFound { .. })
    ));
    assert!(matches!(
        state.conflict(9999),
        Err(StateError::NotFound { .. })
    ));
}

#[test]
fn runs_come_newest_first() {
    let mut state = SqliteState::in_memory().expect("open");
    let first = state.begin_run("sync", &["p".to_string()]).expect("run");
    let second = state
        .begin_run("undo", &["p".to_string(), "q".to_string()])
        .expect("run");
    let third = state.begin_run("sync", &[]).expect("run");
    state.finish_run(second, "stopped").expect("finish");
    let runs = state.runs(2).expect("runs");
    assert_eq!(
        runs.iter().map(|r| r.id).collect::<Vec<_>>(),
        [third, second]
    );
    assert_eq!(runs[0].outcome, "running");
    assert_eq!(runs[0].finished_at, None);
    assert_eq!(runs[1].command, "undo");
    assert_eq!(runs[1].pairs, ["p", "q"]);
    assert_eq!(runs[1].outcome, "stopped");
    assert!(runs[1].finished_at >= Some(runs[1].started_at));
    assert_eq!(state.runs(10).expect("runs").len(), 3);
    assert!(first < second);
    assert!(matches!(
        state.finish_run(third + 1, "done"),
        Err(StateError::NotFound { what: "run", .. })
    ));
}

#[test]
fn tokens_are_kept_per_pair_side_and_collection() {
    let mut state = SqliteState::in_memory().expect("open");
    assert_eq!(state.token("p", Side::A, "c").expect("token"), None);
    state.set_token("p", Side::A, "c", Some("1")).expect("set");
    state.set_token("p", Side::B, "c", Some("x")).expect("set");
    state.set_token("p", Side::A, "c", Some("2")).expect("set");
    assert_eq!(
        state.token("p", Side::A, "c").expect("token").as_deref(),
        Some("2")
    );
    assert_eq!(
        state.token("p", Side::B, "c").expect("token").as_deref(),
        Some("x")
    );
    assert_eq!(state.token("p", Side::A, "d").expect("token"), None);
    state.set_token("p", Side::A, "c", None).expect("clear");
    assert_eq!(state.token("p", Side::A, "c").expect("token"), None);
    assert_eq!(
        state.token("p", Side::B, "c").expect("token").as_deref(),
        Some("x")
    );
}

#[test]
fn a_batch_that_fails_midway_commits_nothing() {
    let (mut state, run) = with_run();
    let mut batch = Batch::new("p", "c");
    batch.links.push(update(
        link("keep", seen("a1", "1"), seen("b1", "1")),
        "Ada",
    ));
    state.commit(&batch).expect("commit");
    let seqs = state
        .journal_pending(&[entry(run, "new", WriteOp::Create, 5)])
        .expect("pending");

    // Links, a forget, a real journal entry and a conflict come before the
    // entry that does not exist.
    let mut batch = Batch::new("p", "c");
    batch
        .links
        .push(update(link("new", seen("a2", "1"), seen("b2", "1")), "Bob"));
    batch.forget.push("keep".to_string());
    batch
        .done
        .push((seqs[0], Some("b2".to_string()), Some("1".to_string()), None));
    batch.done.push((seqs[0] + 100, None, None, None));
    batch.conflicts.push(conflict(run, "new", 7));
    assert!(matches!(
        state.commit(&batch),
        Err(StateError::NotFound {
            what: "journal entry",
            ..
        })
    ));
    assert_eq!(uids(&state.links("p", "c").expect("links")), ["keep"]);
    assert!(!state.journal(run).expect("journal")[0].done);
    assert!(state.conflicts().expect("conflicts").is_empty());

    // The same with the failure at the very end: a conflict of an unknown run.
    batch.done.truncate(1);
    batch.conflicts = vec![conflict(run + 1, "new", 7)];
    assert!(matches!(state.commit(&batch), Err(StateError::Sql(_))));
    assert_eq!(uids(&state.links("p", "c").expect("links")), ["keep"]);
    assert!(!state.journal(run).expect("journal")[0].done);

    // And the state is still usable afterwards.
    batch.conflicts = vec![conflict(run, "new", 7)];
    state.commit(&batch).expect("commit");
    assert_eq!(uids(&state.links("p", "c").expect("links")), ["new"]);
    assert!(state.journal(run).expect("journal")[0].done);
    assert_eq!(state.conflicts().expect("conflicts").len(), 1);
}

#[test]
fn unreadable_json_is_reported_as_corrupt() {
    let (mut state, run) = with_run();
    let mut batch = Batch::new("p", "c");
    batch
        .links
        .push(update(link("u1", seen("a1", "1"), None), "Ada"));
    batch.conflicts.push(conflict(run, "u1", 1));
    state.commit(&batch).expect("commit");
    state
        .conn()
        .expect("connection")
        .execute_batch("UPDATE links SET base = '{\"kind\":'; UPDATE conflicts SET a = 'nope';")
        .expect("damage");

    match state.bases("p", "c", &["u1".to_string()]) {
        Err(StateError::Corrupt(what)) => assert!(what.contains("base record of u1"), "{what}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    match state.conflicts() {
        Err(StateError::Corrupt(what)) => assert!(what.contains("`a` of conflict"), "{what}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Links never read the base, so a sync can still list them.
    assert_eq!(state.links("p", "c").expect("links").len(), 1);
}

#[test]
fn loading_links_uses_the_covering_index() {
    let state = SqliteState::in_memory().expect("open");
    let plan: Vec<String> = state
        .conn()
        .expect("connection")
        .prepare(
            "EXPLAIN QUERY PLAN SELECT uid, a_id, a_version, b_id, b_version FROM links
             WHERE pair = ?1 AND collection = ?2 ORDER BY uid",
        )
        .expect("prepare")
        .query_map(["p", "c"], |row| row.get::<_, String>(3))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("plan");
    assert!(
        plan.iter()
            .any(|step| step.contains("COVERING INDEX links_seen")),
        "{plan:?}"
    );
}

/// Measures the numbers the engine relies on. Run with
/// `cargo test -p tandem-state --release -- --ignored --nocapture speed`.
///
/// Three orders, since a B-tree pays per page touched: links arriving in UID
/// order with ids that follow the UID (files named `<uid>.vcf`), in UID
/// order with unrelated ids, and in no order at all.
#[test]
#[ignore]
fn speed_of_100k_links() {
    for order in [Order::Sorted, Order::RandomIds, Order::Shuffled] {
        measure(order);
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Order {
    Sorted,
    RandomIds,
    Shuffled,
}

fn measure(order: Order) {
    use std::time::Instant;
    const ITEMS: usize = 100_000;
    const BATCH: usize = 1_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut state = SqliteState::open(&dir.path().join("state.db")).expect("open");
    // A realistic contact base: about 400 bytes of JSON.
    let base = |i: usize| {
        Record::new(Kind::Contact, format!("{i:08}-0000-4000-8000-000000000000"))
            .with("full_name", Value::text(format!("Person Number {i}")))
            .with("given_name", Value::text("Person"))
            .with("family_name", Value::text(format!("Number {i}")))
            .with("org", Value::text("Example Industries"))
            .with(
                "emails",
                Value::List(vec![Value::text(format!("person{i}@example.org"))]),
            )
            .with(
                "phones",
                Value::List(vec![Value::text(format!("+1 555 {i:07}"))]),
            )
            .with(
                "addresses",
                Value::List(vec![Value::map([
                    ("street", Value::text(format!("{i} Main Street"))),
                    ("locality", Value::text("Springfield")),
                    ("code", Value::text("12345")),
                ])]),
            )
    };
    // A cheap, fixed permutation and hash (no rand crate needed).
    let scramble = |i: usize| {
        (i as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29)
    };
    let mut items: Vec<usize> = (0..ITEMS).collect();
    if order == Order::Shuffled {
        items.sort_by_key(|&i| scramble(i));
    }
    let batches: Vec<Batch> = items
        .chunks(BATCH)
        .map(|chunk| {
            let mut batch = Batch::new("p", "contacts");
            for &i in chunk {
                let record = base(i);
                let (a_id, b_id) = match order {
                    Order::RandomIds => (
                        format!("{:016x}.vcf", scramble(i)),
                        format!("/dav/me/contacts/{:016x}.vcf", scramble(i + ITEMS)),
                    ),
                    _ => (
                        format!("{}.vcf", record.uid),
                        format!("/dav/me/contacts/{}.vcf", record.uid),
                    ),
                };
                batch.links.push(crate::LinkUpdate {
                    link: link(
                        &record.uid,
                        seen(&a_id, "1700000000.123"),
                        seen(&b_id, "\"etag-0123456789abcdef\""),
                    ),
                    base: record,
                });
            }
            batch
        })
        .collect();
    let start = Instant::now();
    for batch in &batches {
        state.commit(batch).expect("commit");
    }
    let commit = start.elapsed();

    let mut load = std::time::Duration::MAX;
    let mut links = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        links = state.links("p", "contacts").expect("links");
        load = load.min(start.elapsed());
    }
    assert_eq!(links.len(), ITEMS);

    let wanted: Vec<String> = links.iter().take(1_000).map(|l| l.uid.clone()).collect();
    let start = Instant::now();
    let bases = state.bases("p", "contacts", &wanted).expect("bases");
    let lookup = start.elapsed();
    assert_eq!(bases.len(), 1_000);

    eprintln!(
        "{order:?}: commit {ITEMS} links in batches of {BATCH}: {commit:?}; \
         load all links (best of 5): {load:?}; 1000 bases: {lookup:?}"
    );
}
