//! The SQL store against the shared conformance suite on SQLite,
//! PostgreSQL and MariaDB, plus what only a database table has: compare-and-
//! set against other writers, names checked against the catalog, values of
//! the wrong type reported with table, row and column, and a change feed.
//!
//! PostgreSQL and MariaDB are the machine's servers (`.ci/run` starts
//! them); every test makes tables with a random suffix and drops them.

use super::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tandem_store::conformance;
use tempfile::TempDir;

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
const MARIADB: &str = "mysql://root@127.0.0.1:3306/test";

/// One database to make tables in, and the tables made.
struct Db {
    url: String,
    dialect: Dialect,
    admin: AnyPool,
    made: Mutex<Vec<String>>,
    _dir: Option<TempDir>,
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

impl Db {
    async fn open(url: &str) -> Db {
        sqlx::any::install_default_drivers();
        let (url, dir) = if url == "sqlite" {
            let dir = TempDir::new().unwrap();
            let url = format!("sqlite:{}?mode=rwc", dir.path().join("crm.db").display());
            (url, Some(dir))
        } else {
            (url.to_string(), None)
        };
        let admin = AnyPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await
            .unwrap_or_else(|err| panic!("cannot reach {url} (does .ci/run start it?): {err}"));
        Db {
            dialect: Dialect::from_url(&url).unwrap(),
            url,
            admin,
            made: Mutex::new(Vec::new()),
            _dir: dir,
        }
    }

    fn ty(&self, generic: &str) -> &'static str {
        use Dialect::*;
        match (generic, self.dialect) {
            ("key", MySql) => "varchar(191) PRIMARY KEY",
            ("key", _) => "TEXT PRIMARY KEY",
            ("text", MySql) => "varchar(255)",
            ("text", _) => "TEXT",
            ("json", Postgres) => "jsonb",
            ("json", _) => "JSON",
            ("stamp", Postgres) => "timestamptz",
            ("stamp", MySql) => "TIMESTAMP(6) NULL",
            ("stamp", Sqlite) => "DATETIME",
            ("int", _) => "BIGINT",
            (other, _) => panic!("no type {other}"),
        }
    }

    /// Makes a table `{base}_{suffix}` with `columns` (name, generic type).
    async fn table(&self, base: &str, version: &str, columns: &[(&str, &str)]) -> String {
        let name = format!("{base}_{}", suffix());
        let mut defs = vec![
            format!("{} {}", self.dialect.quote("id"), self.ty("key")),
            format!("{} {}", self.dialect.quote("version"), self.ty(version)),
        ];
        for (column, ty) in columns {
            defs.push(format!("{} {}", self.dialect.quote(column), self.ty(ty)));
        }
        self.exec(&format!(
            "CREATE TABLE {} ({})",
            self.dialect.quote(&name),
            defs.join(", ")
        ))
        .await;
        self.made.lock().unwrap().push(name.clone());
        name
    }

    async fn exec(&self, sql: &str) {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&self.admin)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
    }

    async fn text(&self, sql: &str) -> Option<String> {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&self.admin)
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"))
            .try_get(0)
            .unwrap()
    }

    fn store(&self, kind: Kind, table: &TableConfig) -> SqlStore {
        let config = SqlConfig {
            url: self.url.clone(),
            tables: BTreeMap::from([(kind.as_str().to_string(), table.clone())]),
        };
        SqlStore::new(config, kind).unwrap()
    }

    async fn drop_tables(&self) {
        let made: Vec<String> = self.made.lock().unwrap().drain(..).collect();
        for name in made {
            self.exec(&format!("DROP TABLE {}", self.dialect.quote(&name)))
                .await;
        }
    }
}

fn table_config(table: &str, deleted: Option<&str>, columns: &[(&str, &str)]) -> TableConfig {
    TableConfig {
        table: table.to_string(),
        id: "id".into(),
        version: "version".into(),
        deleted: deleted.map(str::to_string),
        columns: columns
            .iter()
            .map(|(f, c)| (f.to_string(), c.to_string()))
            .collect(),
    }
}

/// Field → (column, generic type) for the conformance samples.
fn sample_columns(kind: Kind) -> Vec<(&'static str, &'static str, &'static str)> {
    match kind {
        Kind::Contact => vec![
            ("full_name", "full_name", "text"),
            ("given_name", "first_name", "text"),
            ("family_name", "last_name", "text"),
            ("org", "company", "text"),
            ("emails", "emails", "json"),
            ("phones", "phones", "json"),
            ("note", "note", "text"),
        ],
        Kind::Event => vec![
            ("summary", "summary", "text"),
            ("location", "location", "text"),
            ("description", "description", "text"),
            // `end` is a reserved word: quoting must cope.
            ("start", "start", "stamp"),
            ("end", "end", "stamp"),
        ],
        Kind::Task => vec![
            ("summary", "summary", "text"),
            ("description", "description", "text"),
            ("due", "due", "stamp"),
            ("priority", "priority", "int"),
            ("status", "status", "text"),
        ],
    }
}

async fn run_conformance(url: &str, kind: Kind, version: &str, soft_delete: bool) {
    let db = Db::open(url).await;
    let columns = sample_columns(kind);
    let mut defs: Vec<(&str, &str)> = columns.iter().map(|(_, c, t)| (*c, *t)).collect();
    if soft_delete {
        defs.push(("deleted_at", "stamp"));
    }
    let mapping: Vec<(&str, &str)> = columns.iter().map(|(f, c, _)| (*f, *c)).collect();
    conformance::run(
        || {
            let db = &db;
            let defs = defs.clone();
            let mapping = mapping.clone();
            async move {
                let name = db.table(&format!("conf_{kind}"), version, &defs).await;
                let deleted = soft_delete.then_some("deleted_at");
                db.store(kind, &table_config(&name, deleted, &mapping))
            }
        },
        kind,
    )
    .await;
    db.drop_tables().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_contacts_pass_the_conformance_suite() {
    run_conformance("sqlite", Kind::Contact, "int", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_events_pass_the_conformance_suite() {
    run_conformance("sqlite", Kind::Event, "stamp", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_tasks_pass_the_conformance_suite() {
    run_conformance("sqlite", Kind::Task, "int", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_contacts_pass_the_conformance_suite() {
    run_conformance(POSTGRES, Kind::Contact, "stamp", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_events_pass_the_conformance_suite() {
    run_conformance(POSTGRES, Kind::Event, "int", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_contacts_pass_the_conformance_suite() {
    run_conformance(MARIADB, Kind::Contact, "int", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_events_pass_the_conformance_suite() {
    run_conformance(MARIADB, Kind::Event, "stamp", false).await;
}

fn set(field: &str, value: Value) -> FieldChange {
    FieldChange {
        field: field.into(),
        value: Some(value),
    }
}

fn contact(uid: &str, given: &str) -> NewItem {
    NewItem {
        record: Record::new(Kind::Contact, uid).with("given_name", Value::text(given)),
        raw: None,
    }
}

async fn race(url: &str) {
    let db = Db::open(url).await;
    let name = db
        .table(
            "race",
            "stamp",
            &[("first_name", "text"), ("owner", "text")],
        )
        .await;
    let store = db.store(
        Kind::Contact,
        &table_config(&name, None, &[("given_name", "first_name")]),
    );
    let written = store.create(ROOT, &contact("r1", "Ada")).await.unwrap();
    // The engine flushes before it records a write; the race is between
    // its reading a row and its next write.
    store.flush().await.unwrap();
    let item = store
        .fetch(ROOT, &["r1".into()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    // Another app writes the row between Tandem's listing and its update.
    let q = |c: &str| db.dialect.quote(c);
    db.exec(&format!(
        "UPDATE {} SET {} = 'Augusta', {} = {} WHERE {} = 'r1'",
        q(&name),
        q("first_name"),
        q("version"),
        match db.dialect {
            Dialect::Sqlite => "'2999-01-01 00:00:00.000'",
            Dialect::Postgres => "now() + interval '1 day'",
            Dialect::MySql => "NOW(6) + INTERVAL 1 DAY",
        },
        q("id")
    ))
    .await;
    let err = store
        .update(
            ROOT,
            &item,
            &written.version,
            &[set("given_name", Value::text("Lovelace"))],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::PreconditionFailed, "{err}");
    let first = db
        .text(&format!("SELECT {} FROM {}", q("first_name"), q(&name)))
        .await;
    assert_eq!(
        first.as_deref(),
        Some("Augusta"),
        "the other app's write stays"
    );
    let err = store
        .delete(ROOT, "r1", &written.version)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::PreconditionFailed, "{err}");
    db.drop_tables().await;
}

#[tokio::test]
async fn sqlite_compare_and_set_refuses_a_row_changed_meanwhile() {
    race("sqlite").await;
}

#[tokio::test]
async fn postgres_compare_and_set_refuses_a_row_changed_meanwhile() {
    race(POSTGRES).await;
}

#[tokio::test]
async fn mariadb_compare_and_set_refuses_a_row_changed_meanwhile() {
    race(MARIADB).await;
}

async fn injection(url: &str) {
    let db = Db::open(url).await;
    let name = db.table("inj", "int", &[("first_name", "text")]).await;
    let attempts = [
        table_config(&format!("{name}; DROP TABLE {name}"), None, &[]),
        table_config(&format!("{name}\" --"), None, &[]),
        table_config(
            &name,
            None,
            &[("given_name", "first_name\"; DELETE FROM x; --")],
        ),
        table_config(&name, None, &[("given_name", "first_name`")]),
        table_config(&name, Some("deleted at"), &[]),
        table_config(&name, None, &[("given_name", "x\"; DROP TABLE t; --")]),
        table_config(&name, None, &[("uid", "u'); DROP TABLE t; --")]),
        TableConfig {
            id: "id\" OR 1=1 --".into(),
            ..table_config(&name, None, &[])
        },
        TableConfig {
            version: "version = 0; DROP TABLE t".into(),
            ..table_config(&name, None, &[])
        },
        table_config(&format!("{name}\u{0}"), None, &[]),
    ];
    for table in attempts {
        let config = SqlConfig {
            url: db.url.clone(),
            tables: BTreeMap::from([("contact".to_string(), table.clone())]),
        };
        let err = SqlStore::new(config, Kind::Contact).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "{table:?}");
        assert!(err.message.contains("refused"), "{err}");
    }
    // Plain names that the catalog does not know are refused at check.
    for table in [
        table_config("no_such_table", None, &[]),
        table_config(&name, None, &[("given_name", "no_such_column")]),
    ] {
        let store = db.store(Kind::Contact, &table);
        let err = store.collections().await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "{err}");
        assert!(err.message.contains("no_such"), "{err}");
    }
    let count = db
        .text(&format!(
            "SELECT CAST(COUNT(*) AS {}) FROM {}",
            if db.dialect == Dialect::MySql {
                "CHAR"
            } else {
                "TEXT"
            },
            db.dialect.quote(&name)
        ))
        .await;
    assert_eq!(count.as_deref(), Some("0"), "the table is still there");
    db.drop_tables().await;
}

#[tokio::test]
async fn sqlite_injection_through_names_is_refused() {
    injection("sqlite").await;
}

#[tokio::test]
async fn postgres_injection_through_names_is_refused() {
    injection(POSTGRES).await;
}

#[tokio::test]
async fn mariadb_injection_through_names_is_refused() {
    injection(MARIADB).await;
}

async fn wrong_types(url: &str) {
    let db = Db::open(url).await;
    let name = db
        .table("types", "int", &[("first_name", "text"), ("age", "int")])
        .await;
    let store = db.store(
        Kind::Contact,
        &table_config(
            &name,
            None,
            &[("given_name", "first_name"), ("custom.age", "age")],
        ),
    );
    let ada = NewItem {
        record: Record::new(Kind::Contact, "ada")
            .with("given_name", Value::text("Ada"))
            .with("custom.age", Value::Integer(36)),
        raw: None,
    };
    store.create(ROOT, &ada).await.unwrap();
    let bad = NewItem {
        record: Record::new(Kind::Contact, "bob").with("custom.age", Value::text("forty")),
        raw: None,
    };
    let err = store.create(ROOT, &bad).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    for part in [name.as_str(), "row `bob`", "column `age`", "forty"] {
        assert!(err.message.contains(part), "{part} missing in: {err}");
    }
    let item = store
        .fetch(ROOT, &["ada".into()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let err = store
        .update(
            ROOT,
            &item,
            &item.version,
            &[set("custom.age", Value::text("old"))],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message.contains("row `ada`") && err.message.contains("column `age`"),
        "{err}"
    );
    // The rest still syncs.
    store
        .update(
            ROOT,
            &item,
            &item.version,
            &[set("given_name", Value::text("Augusta"))],
        )
        .await
        .unwrap();
    store.flush().await.unwrap();
    if db.dialect == Dialect::Sqlite {
        // SQLite keeps what another app put in: a text age reads as an
        // item error, and the other rows read fine.
        db.exec(&format!(
            "INSERT INTO {} (id, version, first_name, age) VALUES ('eve', 99, 'Eve', 'unknown')",
            db.dialect.quote(&name)
        ))
        .await;
        let fetched = store
            .fetch(ROOT, &["eve".into(), "ada".into()])
            .await
            .unwrap();
        let err = fetched[0].as_ref().unwrap_err();
        assert_eq!(err.field.as_deref(), Some("custom.age"));
        assert!(
            err.message.contains("row `eve`") && err.message.contains("column `age`"),
            "{err}"
        );
        let ada = fetched[1].as_ref().unwrap();
        assert_eq!(ada.record.get("custom.age"), Some(&Value::Integer(36)));
        assert_eq!(ada.record.get("given_name"), Some(&Value::text("Augusta")));
    }
    db.drop_tables().await;
}

#[tokio::test]
async fn sqlite_wrong_types_are_reported_with_table_row_and_column() {
    wrong_types("sqlite").await;
}

#[tokio::test]
async fn postgres_wrong_types_are_reported_with_table_row_and_column() {
    wrong_types(POSTGRES).await;
}

#[tokio::test]
async fn mariadb_wrong_types_are_reported_with_table_row_and_column() {
    wrong_types(MARIADB).await;
}

async fn change_feed(url: &str, version: &str) {
    let db = Db::open(url).await;
    let name = db
        .table(
            "feed",
            version,
            &[("first_name", "text"), ("deleted_at", "stamp")],
        )
        .await;
    let store = db.store(
        Kind::Contact,
        &table_config(&name, Some("deleted_at"), &[("given_name", "first_name")]),
    );
    let mut written = BTreeMap::new();
    for uid in ["a", "b", "c", "d"] {
        written.insert(uid, store.create(ROOT, &contact(uid, uid)).await.unwrap());
    }
    let first = store.changes_since(ROOT, None).await.unwrap();
    assert_eq!(first.changed.len(), 4);
    let token = first.token.clone();
    assert!(!token.is_empty());
    let none = store.changes_since(ROOT, Some(&token)).await.unwrap();
    assert!(
        none.changed.is_empty() && none.deleted.is_empty(),
        "{none:?}"
    );
    assert_eq!(none.token, token);

    let b = store
        .fetch(ROOT, &["b".into()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let moved = store
        .update(ROOT, &b, &b.version, &[set("given_name", Value::text("B"))])
        .await
        .unwrap();
    store
        .delete(ROOT, "c", &written["c"].version)
        .await
        .unwrap();
    let changes = store.changes_since(ROOT, Some(&token)).await.unwrap();
    assert_eq!(
        changes.changed,
        vec![Listed {
            id: "b".into(),
            version: moved.version
        }]
    );
    assert_eq!(changes.deleted, vec!["c".to_string()]);
    assert_ne!(changes.token, token);
    let after = store
        .changes_since(ROOT, Some(&changes.token))
        .await
        .unwrap();
    assert!(
        after.changed.is_empty() && after.deleted.is_empty(),
        "{after:?}"
    );
    let listed = store.list(ROOT).await.unwrap();
    assert_eq!(listed.len(), 3, "a soft-deleted row is not listed");
    // A UID created again after a soft delete brings the row back.
    store.create(ROOT, &contact("c", "C")).await.unwrap();
    assert_eq!(store.list(ROOT).await.unwrap().len(), 4);
    store.flush().await.unwrap();
    db.drop_tables().await;
}

#[tokio::test]
async fn sqlite_changes_since_returns_only_changed_rows() {
    change_feed("sqlite", "int").await;
}

#[tokio::test]
async fn postgres_changes_since_returns_only_changed_rows() {
    change_feed(POSTGRES, "stamp").await;
}

#[tokio::test]
async fn mariadb_changes_since_returns_only_changed_rows() {
    change_feed(MARIADB, "int").await;
}

#[tokio::test]
async fn without_a_deleted_column_there_is_no_change_feed() {
    let db = Db::open("sqlite").await;
    let name = db.table("nofeed", "int", &[("first_name", "text")]).await;
    let store = db.store(Kind::Contact, &table_config(&name, None, &[]));
    let err = store.changes_since(ROOT, None).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);
    db.drop_tables().await;
}

#[tokio::test]
async fn postgres_arrays_hold_multi_valued_fields() {
    let db = Db::open(POSTGRES).await;
    let name = db.table("arrays", "int", &[]).await;
    db.exec(&format!(
        "ALTER TABLE \"{name}\" ADD COLUMN tags text[], ADD COLUMN mails text"
    ))
    .await;
    let store = db.store(
        Kind::Contact,
        &table_config(&name, None, &[("categories", "tags"), ("emails", "mails")]),
    );
    let tags = Value::List(vec![
        Value::text("vip"),
        Value::text("has \"quotes\", commas"),
    ]);
    let record = Record::new(Kind::Contact, "p1")
        .with("categories", tags.clone())
        .with(
            "emails",
            Value::List(vec![
                Value::map([("value", Value::text("a@x.org"))]),
                Value::map([("value", Value::text("b@x.org"))]),
            ]),
        );
    store
        .create(
            ROOT,
            &NewItem {
                record: record.clone(),
                raw: None,
            },
        )
        .await
        .unwrap();
    let item = store
        .fetch(ROOT, &["p1".into()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert!(item.record.same_content(&record), "{:?}", item.record);
    store.flush().await.unwrap();
    let mails = db.text(&format!("SELECT mails FROM \"{name}\"")).await;
    assert_eq!(mails.as_deref(), Some("a@x.org, b@x.org"));
    db.drop_tables().await;
}

/// Writes share one transaction until `flush`: others see none of them
/// before, all after; a failed write in between undoes only itself, and the
/// store's own reads see its uncommitted writes.
async fn batched(url: &str) {
    let db = Db::open(url).await;
    let name = db
        .table(
            "batch",
            "stamp",
            &[
                ("first_name", "text"),
                ("age", "int"),
                ("deleted_at", "stamp"),
            ],
        )
        .await;
    let store = db.store(
        Kind::Contact,
        &table_config(
            &name,
            Some("deleted_at"),
            &[("given_name", "first_name"), ("custom.age", "age")],
        ),
    );
    let count = format!(
        "SELECT CAST(COUNT(*) AS CHAR(20)) FROM {}",
        db.dialect.quote(&name)
    );
    let count = count.replace(
        "CHAR(20)",
        if db.dialect == Dialect::Postgres {
            "text"
        } else {
            "CHAR(20)"
        },
    );
    store.create(ROOT, &contact("a", "A")).await.unwrap();
    store.flush().await.unwrap();
    store.create(ROOT, &contact("b", "B")).await.unwrap();
    let bad = NewItem {
        record: Record::new(Kind::Contact, "x").with("custom.age", Value::text("old")),
        raw: None,
    };
    assert_eq!(
        store.create(ROOT, &bad).await.unwrap_err().kind,
        ErrorKind::Invalid
    );
    // A clash with a row written in this transaction is refused too.
    let clash = store
        .create(ROOT, &contact("b", "Other"))
        .await
        .unwrap_err();
    assert_eq!(clash.kind, ErrorKind::AlreadyExists, "{clash}");
    let c = store.create(ROOT, &contact("c", "C")).await.unwrap();
    store
        .delete(
            ROOT,
            "a",
            &store
                .list(ROOT)
                .await
                .unwrap()
                .iter()
                .find(|l| l.id == "a")
                .unwrap()
                .version,
        )
        .await
        .unwrap();
    let err = store
        .delete(ROOT, "c", "1999-01-01 00:00:00")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::PreconditionFailed, "{err}");
    // The store sees its own writes.
    let mut listed: Vec<String> = store
        .list(ROOT)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    listed.sort();
    assert_eq!(listed, ["b", "c"]);
    let fetched = store
        .fetch(ROOT, &["c".into()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(fetched.version, c.version);
    let changes = store.changes_since(ROOT, None).await.unwrap();
    assert_eq!(changes.deleted, ["a".to_string()]);
    // Nobody else does, until the flush.
    assert_eq!(db.text(&count).await.as_deref(), Some("1"));
    store.flush().await.unwrap();
    assert_eq!(db.text(&count).await.as_deref(), Some("3"));
    let live = format!("{count} WHERE {} IS NULL", db.dialect.quote("deleted_at"));
    assert_eq!(db.text(&live).await.as_deref(), Some("2"));
    // A flush with nothing written is fine.
    store.flush().await.unwrap();
    db.drop_tables().await;
}

#[tokio::test]
async fn sqlite_writes_share_a_transaction_until_flush() {
    batched("sqlite").await;
}

#[tokio::test]
async fn postgres_writes_share_a_transaction_until_flush() {
    batched(POSTGRES).await;
}

#[tokio::test]
async fn mariadb_writes_share_a_transaction_until_flush() {
    batched(MARIADB).await;
}
