//! Change feeds across runs, on real databases: a SQLite table (side A)
//! paired with a second table in SQLite or PostgreSQL (side B), both with a
//! version and a soft-delete column.
//!
//! - The token saved after a run moves past the run's own writes, so the
//!   next run does not read them back; a write by someone else made while
//!   the run was writing keeps the older token and is synced next run.
//! - With feeds on both sides a run loads only the links its changes touch,
//!   and still finds deletes and stops at the delete brake.
//! - A first sync longer than one settle batch finishes: the batch's commit
//!   runs while the next batch is written.
//!
//! PostgreSQL is the machine's server (`.ci/run` starts it); tables get a
//! random suffix and are dropped at the end.

use async_trait::async_trait;
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tandem_apply::Sides;
use tandem_engine::{run_pair, Config, Options, PairConfig, PairOutcome, SETTLE_EVERY};
use tandem_record::{FieldChange, Kind, Side, Value};
use tandem_state::{ForwardState, Known, SqliteState, StateStore};
use tandem_store::{Forward, Store, ROOT};
use tandem_stores::sql::{SqlConfig, SqlStore, TableConfig};

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A side's table: its URL, name, and an admin connection.
struct Table {
    url: String,
    name: String,
    admin: AnyPool,
    postgres: bool,
}

fn suffix() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

impl Table {
    /// A fresh contacts table in SQLite (a file in `dir`) or PostgreSQL.
    async fn make(dir: &std::path::Path, db: &str) -> Table {
        sqlx::any::install_default_drivers();
        let postgres = db == "postgres";
        let name = format!("feed_{}", suffix());
        let url = if postgres {
            POSTGRES.to_string()
        } else {
            format!(
                "sqlite:{}?mode=rwc",
                dir.join(format!("{name}.db")).display()
            )
        };
        let admin = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach {url} (does .ci/run start it?): {e}"));
        let (version, deleted) = if postgres {
            ("timestamptz NOT NULL", "timestamptz")
        } else {
            ("INTEGER NOT NULL", "INTEGER")
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE {name} (id TEXT PRIMARY KEY, version {version}, deleted {deleted},
             first_name TEXT, title TEXT)"
        )))
        .execute(&admin)
        .await
        .unwrap();
        Table {
            url,
            name,
            admin,
            postgres,
        }
    }

    fn store(&self) -> SqlStore {
        let table = TableConfig {
            table: self.name.clone(),
            id: "id".into(),
            version: "version".into(),
            deleted: Some("deleted".into()),
            columns: BTreeMap::from([
                ("given_name".to_string(), "first_name".to_string()),
                ("title".to_string(), "title".to_string()),
            ]),
        };
        let config = SqlConfig {
            url: self.url.clone(),
            tables: BTreeMap::from([("contact".to_string(), table)]),
        };
        SqlStore::new(config, Kind::Contact).unwrap()
    }

    async fn sql(&self, text: &str) {
        sqlx::query(sqlx::AssertSqlSafe(text.to_string()))
            .execute(&self.admin)
            .await
            .unwrap();
    }

    /// Live rows: id → title.
    async fn titles(&self) -> BTreeMap<String, String> {
        let store = self.store();
        let ids: Vec<String> = store
            .list(ROOT)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.id)
            .collect();
        store
            .fetch(ROOT, &ids)
            .await
            .unwrap()
            .into_iter()
            .map(|item| {
                let item = item.unwrap();
                let title = match item.record.get("title") {
                    Some(Value::Text(t)) => t.clone(),
                    other => format!("{other:?}"),
                };
                (item.id, title)
            })
            .collect()
    }

    async fn drop_it(&self) {
        if self.postgres {
            self.sql(&format!("DROP TABLE IF EXISTS {}", self.name))
                .await;
        }
    }
}

/// Changes one row's title the way another program would: through a
/// store of its own, committed at once.
async fn write_as_someone_else(table: &Table, id: &str, title: &str) {
    let other = table.store();
    let item = other
        .fetch(ROOT, &[id.to_string()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let change = FieldChange {
        field: "title".into(),
        value: Some(Value::Text(title.into())),
    };
    other
        .update(ROOT, &item, &item.version, &[change])
        .await
        .unwrap();
    other.flush().await.unwrap();
}

/// A pair config over two stores named `a` and `b` (the stores themselves
/// are opened by the test).
fn pair(dir: &std::path::Path, a: &Table, b: &Table) -> PairConfig {
    let store = |t: &Table| {
        format!(
            "type = \"sql\"\nurl = \"{}\"\n[stores.X.tables.contact]\ntable = \"{}\"\nid = \"id\"\nversion = \"version\"\ndeleted = \"deleted\"\ncolumns = {{ given_name = \"first_name\", title = \"title\" }}\n",
            t.url, t.name
        )
    };
    let text = format!(
        "[stores.a]\n{}\n[stores.b]\n{}\n[[pairs]]\nname = \"p\"\na = \"a\"\nb = \"b\"\nkind = \"contact\"\n",
        store(a).replace("stores.X", "stores.a"),
        store(b).replace("stores.X", "stores.b")
    );
    let path = dir.join("tandem.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap().pairs.remove(0)
}

async fn sync(
    pair: &PairConfig,
    a: &dyn Store,
    b: &dyn Store,
    state: &mut dyn StateStore,
) -> PairOutcome {
    let sides = Sides {
        a,
        b,
        a_name: "a",
        b_name: "b",
    };
    let run = state
        .begin_run("sync", std::slice::from_ref(&pair.name))
        .unwrap();
    let outcome = run_pair(pair, sides, state, run, &Options::default())
        .await
        .unwrap();
    state.finish_run(run, "done").unwrap();
    assert!(outcome.report.failures.is_empty(), "{outcome:?}");
    outcome
}

/// The saved feed token of side B, without its config prefix.
fn saved_token(state: &dyn StateStore) -> String {
    let token = state.token("p", Side::B, ROOT).unwrap().expect("a token");
    token.split_once(' ').expect("config prefix").1.to_string()
}

/// The B table as Tandem sees it, plus another program that changes rows
/// right after Tandem's writes are committed — between Tandem's last write
/// and its reading the feed again. (A wrapper around the real store: the
/// only way to place a foreign write at that exact moment.)
struct Interleaved<'t> {
    inner: SqlStore,
    table: &'t Table,
    rows: Vec<&'static str>,
    fired: AtomicBool,
}

#[async_trait]
impl Forward for Interleaved<'_> {
    fn inner(&self) -> &dyn Store {
        &self.inner
    }
    async fn flush(&self) -> tandem_store::Result<()> {
        self.inner.flush().await?;
        if !self.fired.swap(true, Ordering::SeqCst) {
            for id in &self.rows {
                write_as_someone_else(self.table, id, "foreign").await;
            }
        }
        Ok(())
    }
}

async fn seed(a: &Table, n: usize) {
    for i in 1..=n {
        a.sql(&format!(
            "INSERT INTO {} VALUES ('r{i}', {i}, NULL, 'Person {i}', 'Title {i}')",
            a.name
        ))
        .await;
    }
}

/// Changes rows on A the way the CRM's own code would (version bumped).
async fn edit_a(a: &Table, id: &str, title: &str) {
    a.sql(&format!(
        "UPDATE {t} SET title = '{title}', version = (SELECT MAX(version) + 1 FROM {t}) WHERE id = '{id}'",
        t = a.name
    ))
    .await;
}

async fn own_writes_are_skipped_and_foreign_ones_kept(db: &str) {
    let dir = tempfile::tempdir().unwrap();
    let a = Table::make(dir.path(), "sqlite").await;
    let b = Table::make(dir.path(), db).await;
    seed(&a, 5).await;
    let pair = pair(dir.path(), &a, &b);
    let mut state = SqliteState::open(&dir.path().join("state.db")).unwrap();
    let (store_a, store_b) = (a.store(), b.store());

    // The first run writes five rows to B; the saved token is past them.
    let first = sync(&pair, &store_a, &store_b, &mut state).await;
    assert_eq!(first.report.created, [0, 5]);
    let token = saved_token(&state);
    let since = store_b.changes_since(ROOT, Some(&token)).await.unwrap();
    assert!(
        since.changed.is_empty() && since.deleted.is_empty(),
        "token {token} is not past our writes: {since:?}"
    );

    // A run that writes two rows to B while someone else changes r2 (a
    // row we write) and r4 (one we do not) right after our commit.
    edit_a(&a, "r1", "Edited 1").await;
    edit_a(&a, "r2", "Edited 2").await;
    let before = saved_token(&state);
    let racing = Interleaved {
        inner: b.store(),
        table: &b,
        rows: vec!["r2", "r4"],
        fired: AtomicBool::new(false),
    };
    let second = sync(&pair, &store_a, &racing, &mut state).await;
    assert!(racing.fired.load(Ordering::SeqCst), "the other writer ran");
    assert_eq!(second.report.updated, [0, 2]);
    assert_eq!(
        saved_token(&state),
        before,
        "the token may not move past the other writer's changes"
    );

    // So the next run sees them and carries them to A.
    let third = sync(&pair, &store_a, &store_b, &mut state).await;
    assert_eq!(third.report.updated, [2, 0], "{third:?}");
    let titles = a.titles().await;
    assert_eq!(titles["r1"], "Edited 1");
    assert_eq!(titles["r2"], "foreign");
    assert_eq!(titles["r4"], "foreign");
    assert_eq!(a.titles().await, b.titles().await);

    // And the run after that reads nothing back on either side.
    let quiet = sync(&pair, &store_a, &store_b, &mut state).await;
    assert_eq!(quiet.report.writes(), 0);
    assert_eq!(quiet.examined, 0, "{quiet:?}");
    for (side, store) in [(Side::A, &store_a), (Side::B, &store_b)] {
        let token = state.token("p", side, ROOT).unwrap().unwrap();
        let token = token.split_once(' ').unwrap().1;
        let since = store.changes_since(ROOT, Some(token)).await.unwrap();
        assert!(since.changed.is_empty(), "{side:?}: {since:?}");
    }
    b.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_writes_are_skipped_and_foreign_ones_kept_sqlite() {
    own_writes_are_skipped_and_foreign_ones_kept("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_writes_are_skipped_and_foreign_ones_kept_postgres() {
    own_writes_are_skipped_and_foreign_ones_kept("postgres").await;
}

/// A state store that counts full loads of a collection's links. (A
/// wrapper around the real SQLite state, to observe what a run asks it.)
struct Counting {
    inner: SqliteState,
    full_loads: Arc<AtomicUsize>,
}

impl ForwardState for Counting {
    fn inner(&self) -> &dyn StateStore {
        &self.inner
    }
    fn inner_mut(&mut self) -> &mut dyn StateStore {
        &mut self.inner
    }
    fn links(&self, pair: &str, collection: &str) -> tandem_state::Result<Vec<Known>> {
        self.full_loads.fetch_add(1, Ordering::SeqCst);
        self.inner.links(pair, collection)
    }
}

async fn only_touched_links_are_loaded(db: &str) {
    let dir = tempfile::tempdir().unwrap();
    let a = Table::make(dir.path(), "sqlite").await;
    let b = Table::make(dir.path(), db).await;
    seed(&a, 10).await;
    let pair = pair(dir.path(), &a, &b);
    let full_loads = Arc::new(AtomicUsize::new(0));
    let mut state = Counting {
        inner: SqliteState::open(&dir.path().join("state.db")).unwrap(),
        full_loads: full_loads.clone(),
    };
    let (store_a, store_b) = (a.store(), b.store());
    let loads = |f: &Arc<AtomicUsize>| f.swap(0, Ordering::SeqCst);

    sync(&pair, &store_a, &store_b, &mut state).await;
    assert_eq!(loads(&full_loads), 1, "a first run loads every link");

    // An edit and a delete on A, an edit on B: no full load, all synced.
    edit_a(&a, "r1", "Edited on A").await;
    a.sql(&format!(
        "UPDATE {t} SET deleted = 1, version = (SELECT MAX(version) + 1 FROM {t}) WHERE id = 'r2'",
        t = a.name
    ))
    .await;
    write_as_someone_else(&b, "r3", "Edited on B").await;
    let run = sync(&pair, &store_a, &store_b, &mut state).await;
    assert_eq!(loads(&full_loads), 0, "{run:?}");
    assert_eq!(run.report.updated, [1, 1]);
    assert_eq!(run.report.deleted, [0, 1]);
    let titles = b.titles().await;
    assert!(!titles.contains_key("r2"), "the delete reached B");
    assert_eq!(titles["r1"], "Edited on A");
    assert_eq!(a.titles().await["r3"], "Edited on B");

    // A no-op loads nothing either.
    let quiet = sync(&pair, &store_a, &store_b, &mut state).await;
    assert_eq!((loads(&full_loads), quiet.report.writes()), (0, 0));

    // A new row may carry any link's UID: every link is loaded.
    a.sql(&format!(
        "INSERT INTO {} VALUES ('r11', 100, NULL, 'Person 11', 'New')",
        a.name
    ))
    .await;
    let run = sync(&pair, &store_a, &store_b, &mut state).await;
    assert_eq!((loads(&full_loads), run.report.created), (1, [0, 1]));

    // Deleting most rows on A stops at the delete brake, counted over all
    // links though only the deleted ones were loaded.
    a.sql(&format!(
        "UPDATE {t} SET deleted = 1, version = version + 1000 WHERE id IN ('r3', 'r4', 'r5', 'r6', 'r7', 'r8', 'r9')",
        t = a.name
    ))
    .await;
    let sides = Sides {
        a: &store_a,
        b: &store_b,
        a_name: "a",
        b_name: "b",
    };
    let braked = run_pair(&pair, sides, &mut state, 0, &Options::default())
        .await
        .unwrap();
    assert_eq!(loads(&full_loads), 0);
    let brake = braked.brake.expect("the delete brake");
    assert!(brake.to_string().contains("max_delete"), "{brake}");
    assert_eq!(b.titles().await.len(), 10, "nothing deleted");
    b.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_touched_links_are_loaded_sqlite() {
    only_touched_links_are_loaded("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_touched_links_are_loaded_postgres() {
    only_touched_links_are_loaded("postgres").await;
}

/// More rows than two settle batches, into an empty table: each batch's
/// flush (a commit) is started and left while the next batch is written,
/// so a store whose commit waited to be polled again would hang here.
async fn first_sync_longer_than_a_settle_batch(db: &str) {
    let dir = tempfile::tempdir().unwrap();
    let a = Table::make(dir.path(), "sqlite").await;
    let b = Table::make(dir.path(), db).await;
    let n = 2 * SETTLE_EVERY + 1;
    let rows: Vec<String> = (1..=n)
        .map(|i| format!("('r{i}', {i}, NULL, 'Person {i}', 'Title {i}')"))
        .collect();
    a.sql(&format!(
        "INSERT INTO {} VALUES {}",
        a.name,
        rows.join(", ")
    ))
    .await;
    let pair = pair(dir.path(), &a, &b);
    let mut state = SqliteState::open(&dir.path().join("state.db")).unwrap();
    let (store_a, store_b) = (a.store(), b.store());
    let limit = std::time::Duration::from_secs(120);
    let first = tokio::time::timeout(limit, sync(&pair, &store_a, &store_b, &mut state))
        .await
        .expect("the first sync still ran after 120 s");
    assert_eq!(first.report.created, [0, n]);
    let titles = b.titles().await;
    assert_eq!(titles.len() as u64, n);
    assert_eq!(titles, a.titles().await);
    b.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_longer_than_a_settle_batch_sqlite() {
    first_sync_longer_than_a_settle_batch("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_longer_than_a_settle_batch_postgres() {
    first_sync_longer_than_a_settle_batch("postgres").await;
}
