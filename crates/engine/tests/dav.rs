//! End-to-end scenarios against real Radicale and Xandikos servers: the
//! engine run from a config file, as `tandem sync` runs it.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use tandem_engine::{Config, Engine, Options, RunOutcome};
use tandem_record::Kind;
use tandem_store::{conformance, NewItem, Store, ROOT};
use tandem_stores::dav::proxy::{Fault, Proxy};
use tandem_stores::dav::testing::{Server, ServerKind, USER};
use tandem_stores::dav::Protocol;

fn card(uid: &str, lines: &[&str]) -> String {
    let mut s = format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\n");
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str("END:VCARD\r\n");
    s
}

/// A config file in `dir` with stores `a` and `b` (TOML tables) and one
/// contact pair `p`.
fn engine(dir: &Path, a: &str, b: &str, extra: &str) -> Engine {
    let text = format!(
        "[stores.a]\n{a}\n\n[stores.b]\n{b}\n\n[[pairs]]\nname = \"p\"\na = \"a\"\nb = \"b\"\nkind = \"contact\"\n{extra}\n"
    );
    let path = dir.join("tandem.toml");
    std::fs::write(&path, text).unwrap();
    Engine::open(Config::load(&path).unwrap()).unwrap()
}

fn dav_table(server: &Server, collection: &str) -> String {
    format!(
        "type = \"carddav\"\nurl = \"{}\"\nusername = \"{USER}\"\npassword_cmd = \"echo test-secret\"\ncreate_collections = true\nretries = 2\n",
        server.collection_url(Protocol::CardDav, collection)
    )
}

async fn sync(engine: &mut Engine, force: bool) -> RunOutcome {
    let opts = Options {
        force,
        ..Options::default()
    };
    engine.sync(&[], &opts).await.unwrap()
}

fn writes(run: &RunOutcome) -> u64 {
    run.pairs.iter().map(|p| p.report.writes()).sum()
}

/// Failed items, plus pairs that stopped on a store error.
fn failures(run: &RunOutcome) -> usize {
    run.errors.len()
        + run
            .pairs
            .iter()
            .map(|p| p.report.failures.len())
            .sum::<usize>()
}

async fn all_notes(store: &dyn Store) -> Vec<(String, String)> {
    let ids: Vec<String> = store
        .list(ROOT)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    let mut notes: Vec<(String, String)> = store
        .fetch(ROOT, &ids)
        .await
        .unwrap()
        .into_iter()
        .map(|item| {
            let item = item.unwrap();
            let note = item
                .record
                .fields
                .get("note")
                .map(|v| format!("{v:?}"))
                .unwrap_or_default();
            (item.record.uid, note)
        })
        .collect();
    notes.sort();
    notes
}

/// vdir → Radicale upload, then a no-op run that writes nothing; an edit on
/// the server comes back to the folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vdir_and_radicale() {
    let Some(server) = Server::start(ServerKind::Radicale) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let vdir = dir.path().join("cards");
    std::fs::create_dir(&vdir).unwrap();
    for i in 0..20 {
        let uid = format!("v{i}");
        std::fs::write(
            vdir.join(format!("{uid}.vcf")),
            card(
                &uid,
                &[
                    &format!("FN:Person {i}"),
                    "NOTE:first",
                    "EMAIL;TYPE=\"work\":p@example.org",
                ],
            ),
        )
        .unwrap();
    }
    let a = "type = \"vdir\"\npath = \"cards\"";
    let mut engine = engine(dir.path(), a, &dav_table(&server, "book"), "");
    let first = sync(&mut engine, false).await;
    assert_eq!(failures(&first), 0, "{first:?}");
    assert_eq!(first.pairs[0].report.created, [0, 20]);
    let again = sync(&mut engine, false).await;
    assert_eq!(
        writes(&again),
        0,
        "a no-op right after an upload: {again:?}"
    );

    // An edit on the server reaches the folder.
    let store = server.store(Kind::Contact, "book");
    let item = store
        .fetch(ROOT, &["v3.vcf".to_string()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let changes = vec![tandem_record::FieldChange {
        field: "note".into(),
        value: Some(tandem_record::Value::text("changed on the server")),
    }];
    store
        .update(ROOT, &item, &item.version, &changes)
        .await
        .unwrap();
    let back = sync(&mut engine, false).await;
    assert_eq!(back.pairs[0].report.updated, [1, 0], "{back:?}");
    let text = std::fs::read_to_string(vdir.join("v3.vcf")).unwrap();
    assert!(text.contains("NOTE:changed on the server"), "{text}");
    assert_eq!(writes(&sync(&mut engine, false).await), 0);
}

/// Both servers already hold the same items (each stored in its own way):
/// the first sync links them and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_items_link_without_writes() {
    let (Some(radicale), Some(xandikos)) = (
        Server::start(ServerKind::Radicale),
        Server::start(ServerKind::Xandikos),
    ) else {
        return;
    };
    for server in [&radicale, &xandikos] {
        let store = server.store(Kind::Contact, "book");
        store.create_collection(ROOT).await.unwrap();
        for i in 0..15 {
            let raw = tandem_store::Raw {
                media_type: "text/vcard".into(),
                text: card(
                    &format!("same-{i}"),
                    &[
                        "FN:Same Person",
                        "N:Person;Same;;;",
                        "EMAIL;TYPE=\"home\",\"pref\":same@example.org",
                        "TEL;TYPE=cell:+1 555 0100",
                        "NOTE:hello\\, world",
                    ],
                ),
            };
            let record = tandem_formats::parse(tandem_formats::Format::VCard, &raw.text).unwrap();
            store
                .create(
                    ROOT,
                    &NewItem {
                        record,
                        raw: Some(raw),
                    },
                )
                .await
                .unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(
        dir.path(),
        &dav_table(&radicale, "book"),
        &dav_table(&xandikos, "book"),
        "",
    );
    let first = sync(&mut engine, false).await;
    assert_eq!(failures(&first), 0, "{first:?}");
    assert_eq!(
        writes(&first),
        0,
        "identical items must link without writes: {first:?}"
    );
    assert_eq!(writes(&sync(&mut engine, false).await), 0);
}

/// Radicale ↔ Xandikos: a field changed on each side merges; the same
/// field changed on both is settled by the pair's rule (here `a`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_merge_and_conflict_across_servers() {
    let (Some(radicale), Some(xandikos)) = (
        Server::start(ServerKind::Radicale),
        Server::start(ServerKind::Xandikos),
    ) else {
        return;
    };
    let a = radicale.store(Kind::Contact, "book");
    a.create_collection(ROOT).await.unwrap();
    for uid in ["m1", "m2"] {
        let item = NewItem {
            record: conformance::sample(Kind::Contact, uid),
            raw: None,
        };
        a.create(ROOT, &item).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut engine = engine(
        dir.path(),
        &dav_table(&radicale, "book"),
        &dav_table(&xandikos, "book"),
        "conflict = \"a\"",
    );
    let first = sync(&mut engine, false).await;
    assert_eq!(first.pairs[0].report.created, [0, 2], "{first:?}");
    let b = xandikos.store(Kind::Contact, "book");
    let set = |field: &str, text: &str| tandem_record::FieldChange {
        field: field.into(),
        value: Some(tandem_record::Value::text(text)),
    };
    let fetch = |store: &tandem_stores::dav::DavStore, id: &str| {
        let store = store.clone();
        let id = id.to_string();
        async move { store.fetch(ROOT, &[id]).await.unwrap().remove(0).unwrap() }
    };
    // m1: different fields on each side; m2: the same field on both.
    let m1a = fetch(&a, "m1.vcf").await;
    a.update(ROOT, &m1a, &m1a.version, &[set("note", "note from A")])
        .await
        .unwrap();
    let m1b = fetch(&b, "m1.vcf").await;
    b.update(ROOT, &m1b, &m1b.version, &[set("title", "title from B")])
        .await
        .unwrap();
    let m2a = fetch(&a, "m2.vcf").await;
    a.update(ROOT, &m2a, &m2a.version, &[set("note", "A wins")])
        .await
        .unwrap();
    let m2b = fetch(&b, "m2.vcf").await;
    b.update(ROOT, &m2b, &m2b.version, &[set("note", "B loses")])
        .await
        .unwrap();
    let run = sync(&mut engine, false).await;
    assert_eq!(failures(&run), 0, "{run:?}");
    for store in [&a, &b] {
        let m1 = fetch(store, "m1.vcf").await.record;
        assert_eq!(
            m1.fields.get("note"),
            Some(&tandem_record::Value::text("note from A"))
        );
        assert_eq!(
            m1.fields.get("title"),
            Some(&tandem_record::Value::text("title from B"))
        );
        let m2 = fetch(store, "m2.vcf").await.record;
        assert_eq!(
            m2.fields.get("note"),
            Some(&tandem_record::Value::text("A wins"))
        );
    }
    assert_eq!(writes(&sync(&mut engine, false).await), 0);
}

/// A collection deleted on the server stops the pair (a side suddenly
/// empty) and nothing is deleted on the other side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_deleted_on_the_server_brakes() {
    let Some(server) = Server::start(ServerKind::Xandikos) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let vdir = dir.path().join("cards");
    std::fs::create_dir(&vdir).unwrap();
    for i in 0..5 {
        std::fs::write(
            vdir.join(format!("d{i}.vcf")),
            card(&format!("d{i}"), &["FN:Doomed"]),
        )
        .unwrap();
    }
    let mut engine = engine(
        dir.path(),
        "type = \"vdir\"\npath = \"cards\"",
        &dav_table(&server, "book"),
        "",
    );
    assert_eq!(
        sync(&mut engine, false).await.pairs[0].report.created,
        [0, 5]
    );
    let status = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "DELETE",
        ])
        .arg(server.collection_url(Protocol::CardDav, "book"))
        .output();
    let deleted = match status {
        Ok(out) => String::from_utf8_lossy(&out.stdout).starts_with('2'),
        Err(_) => false,
    };
    if !deleted {
        // No curl: remove the collection from the server's storage.
        std::fs::remove_dir_all(server.storage().join("user/contacts/book")).unwrap();
    }
    let run = sync(&mut engine, false).await;
    assert!(run.braked(), "{run:?}");
    assert_eq!(
        std::fs::read_dir(&vdir).unwrap().count(),
        5,
        "nothing lost on the folder side"
    );
}

/// A server answering 503 for a while: retries absorb a short outage, a
/// longer one fails the run without losing anything, and the next run
/// converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_for_a_while_then_converges() {
    let Some(server) = Server::start(ServerKind::Radicale) else {
        return;
    };
    // The first eight requests are answered 503, then all pass through.
    let proxy = Proxy::start(server.port);
    proxy.script(None, std::iter::repeat_n(Fault::ServerError, 8));
    let port = proxy.port();
    let dir = tempfile::tempdir().unwrap();
    let vdir = dir.path().join("cards");
    std::fs::create_dir(&vdir).unwrap();
    for i in 0..10 {
        std::fs::write(
            vdir.join(format!("f{i}.vcf")),
            card(&format!("f{i}"), &["FN:Flaky"]),
        )
        .unwrap();
    }
    let b = format!(
        "type = \"carddav\"\nurl = \"http://127.0.0.1:{port}/{USER}/book/\"\nusername = \"{USER}\"\npassword_cmd = \"echo test-secret\"\ncreate_collections = true\nretries = 2\n"
    );
    let mut engine = engine(dir.path(), "type = \"vdir\"\npath = \"cards\"", &b, "");
    let mut runs = 0;
    loop {
        runs += 1;
        let opts = Options::default();
        match engine.sync(&[], &opts).await {
            Ok(run) if failures(&run) == 0 && writes(&run) == 0 => break,
            _ if runs < 6 => continue,
            other => panic!("did not converge after {runs} runs: {other:?}"),
        }
    }
    let store = server.store(Kind::Contact, "book");
    assert_eq!(store.list(ROOT).await.unwrap().len(), 10);
    assert_eq!(all_notes(&store).await.len(), 10);
}

/// What a sync costs on the wire, counted by a proxy on both servers: an
/// upload sends one `PUT` per item (the server's ETag comes back in its
/// answer) plus a fixed few requests per run, and the no-op right after
/// it is one `sync-collection` report after the collection check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_per_upload_and_one_report_per_noop() {
    for kind in [ServerKind::Radicale, ServerKind::Xandikos] {
        let Some(server) = Server::start(kind) else {
            return;
        };
        let proxy = Proxy::start(server.port);
        let dir = tempfile::tempdir().unwrap();
        let vdir = dir.path().join("cards");
        std::fs::create_dir(&vdir).unwrap();
        const N: usize = 25;
        for i in 0..N {
            std::fs::write(
                vdir.join(format!("r{i}.vcf")),
                card(&format!("r{i}"), &[&format!("FN:Counted {i}")]),
            )
            .unwrap();
        }
        let b = format!(
            "type = \"carddav\"\nurl = \"{}\"\nusername = \"{USER}\"\npassword_cmd = \"echo test-secret\"\ncreate_collections = true\n",
            proxy.url(&server.collection_url(Protocol::CardDav, "counted"))
        );
        let mut engine = engine(dir.path(), "type = \"vdir\"\npath = \"cards\"", &b, "");
        let methods = |from: usize| -> Vec<String> {
            proxy.log()[from..]
                .iter()
                .map(|l| l.method.clone())
                .collect()
        };
        let count = |methods: &[String], m: &str| methods.iter().filter(|x| *x == m).count();

        let upload = sync(&mut engine, false).await;
        assert_eq!(failures(&upload), 0, "{kind:?}: {upload:?}");
        assert_eq!(upload.pairs[0].report.created, [0, N as u64], "{kind:?}");
        let sent = methods(0);
        assert_eq!(count(&sent, "PUT"), N, "{kind:?}: {sent:?}");
        // The collection check, its creation, the feed before and after.
        assert!(
            sent.len() <= N + 4,
            "{kind:?}: {} requests: {sent:?}",
            sent.len()
        );

        let before = proxy.log().len();
        let noop = sync(&mut engine, false).await;
        assert_eq!(writes(&noop), 0, "{kind:?}: {noop:?}");
        let sent = methods(before);
        assert_eq!(count(&sent, "REPORT"), 1, "{kind:?}: {sent:?}");
        assert!(
            sent.iter().all(|m| m == "REPORT" || m == "PROPFIND") && sent.len() <= 2,
            "{kind:?}: a no-op sent {sent:?}"
        );
    }
}

/// A store that lets someone else edit the item on the server right before
/// each of its updates: the race between plan and apply.
struct Racing {
    inner: tandem_stores::dav::DavStore,
    other: tandem_stores::dav::DavStore,
    raced: AtomicUsize,
}

#[async_trait::async_trait]
impl tandem_store::Forward for Racing {
    fn inner(&self) -> &dyn Store {
        &self.inner
    }
    async fn update(
        &self,
        c: &str,
        current: &tandem_store::Item,
        expected: &str,
        changes: &[tandem_record::FieldChange],
    ) -> tandem_store::Result<tandem_store::Written> {
        if self.raced.fetch_add(1, Ordering::SeqCst) == 0 {
            let now = self
                .other
                .fetch(c, std::slice::from_ref(&current.id))
                .await?
                .remove(0)
                .map_err(|e| tandem_store::Error::new(e.kind, e.message))?;
            let edit = tandem_record::FieldChange {
                field: "title".into(),
                value: Some(tandem_record::Value::text("edited during the run")),
            };
            self.other.update(c, &now, &now.version, &[edit]).await?;
        }
        self.inner.update(c, current, expected, changes).await
    }
}

/// An item changed on the server between plan and apply: the PUT with
/// `If-Match` gets 412, nothing is overwritten, the item is planned again
/// and both edits end up on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precondition_race_overwrites_nothing() {
    use tandem_state::StateStore;
    let Some(server) = Server::start(ServerKind::Xandikos) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let vdir = dir.path().join("cards");
    std::fs::create_dir(&vdir).unwrap();
    std::fs::write(
        vdir.join("r1.vcf"),
        card("r1", &["FN:Racer", "NOTE:before"]),
    )
    .unwrap();
    let config_path = dir.path().join("tandem.toml");
    std::fs::write(
        &config_path,
        format!(
            "[stores.a]\ntype = \"vdir\"\npath = \"cards\"\n\n[stores.b]\n{}\n[[pairs]]\nname = \"p\"\na = \"a\"\nb = \"b\"\nkind = \"contact\"\n",
            dav_table(&server, "book")
        ),
    )
    .unwrap();
    let config = Config::load(&config_path).unwrap();
    let pair = config.pairs[0].clone();
    let a = tandem_stores::vdir::VdirStore::new(
        tandem_stores::vdir::VdirConfig {
            path: vdir.clone(),
            extension: None,
        },
        tandem_formats::Format::VCard,
    )
    .unwrap();
    let b = Racing {
        inner: server.store(Kind::Contact, "book"),
        other: server.store(Kind::Contact, "book"),
        raced: AtomicUsize::new(0),
    };
    let mut state = tandem_state::SqliteState::open(&dir.path().join("state.db")).unwrap();
    let sides = tandem_apply::Sides {
        a: &a,
        b: &b,
        a_name: "a",
        b_name: "b",
    };
    let opts = Options::default();
    let run = state.begin_run("sync", &["p".to_string()]).unwrap();
    let first = tandem_engine::run_pair(&pair, sides, &mut state, run, &opts)
        .await
        .unwrap();
    assert_eq!(first.report.created, [0, 1]);
    // Change the note in the folder; the server's title changes under the update.
    std::fs::write(vdir.join("r1.vcf"), card("r1", &["FN:Racer", "NOTE:after"])).unwrap();
    let run = state.begin_run("sync", &["p".to_string()]).unwrap();
    let second = tandem_engine::run_pair(&pair, sides, &mut state, run, &opts)
        .await
        .unwrap();
    assert!(second.report.failures.is_empty(), "{second:?}");
    assert_eq!(
        b.raced.load(Ordering::SeqCst),
        2,
        "updated once raced, once planned again"
    );
    let on_server = b
        .inner
        .fetch(ROOT, &["r1.vcf".to_string()])
        .await
        .unwrap()
        .remove(0)
        .unwrap()
        .record;
    assert_eq!(
        on_server.fields.get("title"),
        Some(&tandem_record::Value::text("edited during the run"))
    );
    assert_eq!(
        on_server.fields.get("note"),
        Some(&tandem_record::Value::text("after"))
    );
    let text = std::fs::read_to_string(vdir.join("r1.vcf")).unwrap();
    assert!(text.contains("edited during the run"), "{text}");
}
