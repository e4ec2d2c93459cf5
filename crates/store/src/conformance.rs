//! The conformance suite: the behaviour every [`Store`] must show, written
//! once and run against each store's tests, so adding a store means making
//! this pass rather than writing new ad-hoc tests.
//!
//! [`run`] builds a fresh, empty store for every check from the factory it is
//! given and panics with the check's name on the first failure (it is test
//! support code). The sample records and native texts it writes are public
//! too ([`sample`], [`sample_raw`], [`sample_changes`]) for other tests.
//!
//! ```
//! use tandem_record::Kind;
//! use tandem_store::{conformance, MemoryStore};
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! conformance::run(|| async { MemoryStore::new() }, Kind::Contact).await;
//! # });
//! ```

use crate::{Error, ErrorKind, Item, ItemError, NewItem, Raw, Started, Store, Written, ROOT};
use futures_util::{stream, StreamExt};
use std::fmt::Debug;
use std::future::Future;
use tandem_record::{FieldChange, Kind, Record, Value};

/// Runs every check against fresh stores from `make`, writing records of
/// `kind`. Panics naming the failed check. Needs a Tokio runtime with
/// timers (`#[tokio::test]` has them): a call that hangs fails its check
/// after a time limit.
pub async fn run<S, F, Fut>(make: F, kind: Kind)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    empty_root_lists_nothing(&Check::new("empty root lists nothing", kind, make().await)).await;
    created_item_is_listed(&Check::new("created item is listed", kind, make().await)).await;
    fetch_returns_the_record(&Check::new("fetch returns the record", kind, make().await)).await;
    create_is_idempotent(&Check::new("create is idempotent", kind, make().await)).await;
    create_conflicts_on_uid(&Check::new("create conflicts on uid", kind, make().await)).await;
    update_with_right_version(&Check::new("update with right version", kind, make().await)).await;
    update_with_stale_version(&Check::new("update with stale version", kind, make().await)).await;
    delete_with_stale_version(&Check::new("delete with stale version", kind, make().await)).await;
    delete_with_right_version(&Check::new("delete with right version", kind, make().await)).await;
    fetch_of_missing_is_item_error(&Check::new(
        "fetch of missing id is an item error",
        kind,
        make().await,
    ))
    .await;
    update_keeps_unnamed_fields(&Check::new(
        "update keeps unnamed fields",
        kind,
        make().await,
    ))
    .await;
    raw_is_written_as_is(&Check::new("raw item is written as is", kind, make().await)).await;
    collections_are_usable(&Check::new("collections are usable", kind, make().await)).await;
    many_items_list_and_fetch(&Check::new("many items list and fetch", kind, make().await)).await;
    missing_collection_is_not_found(&Check::new(
        "missing collection is not found",
        kind,
        make().await,
    ))
    .await;
    concurrent_writes_are_safe(&Check::new(
        "concurrent writes are safe",
        kind,
        make().await,
    ))
    .await;
    calls_started_and_left_run_on_their_own(&Check::new(
        "calls started and left run on their own",
        kind,
        make().await,
    ))
    .await;
}

/// A sample record of `kind` with list, map, date-time and integer values.
pub fn sample(kind: Kind, uid: &str) -> Record {
    let record = Record::new(kind, uid);
    match kind {
        Kind::Contact => record
            .with("full_name", Value::text("Ada Lovelace"))
            .with("given_name", Value::text("Ada"))
            .with("family_name", Value::text("Lovelace"))
            .with("org", Value::text("Analytical Engines Ltd"))
            .with(
                "emails",
                Value::List(vec![
                    typed("ada@example.org", "home"),
                    typed("countess@example.net", "work"),
                ]),
            )
            .with(
                "phones",
                Value::List(vec![
                    typed("+44 20 7946 0001", "cell"),
                    typed("+44 20 7946 0002", "work"),
                ]),
            )
            .with("note", Value::text("Met at the Babbage lecture")),
        Kind::Event => record
            .with("summary", Value::text("Engine review"))
            .with("location", Value::text("Room 1"))
            .with("description", Value::text("Bring the notes on Note G"))
            .with("start", date_time("2025-03-14T09:30:00"))
            .with("end", date_time("2025-03-14T10:45:00")),
        Kind::Task => record
            .with("summary", Value::text("Write Note G"))
            .with("description", Value::text("The Bernoulli numbers"))
            .with("due", date_time("2025-04-01T17:00:00"))
            .with("priority", Value::Integer(1))
            .with("status", Value::text("NEEDS-ACTION")),
    }
}

/// A multi-valued contact entry (`emails`, `phones`): its value and type.
fn typed(value: &str, kind: &str) -> Value {
    Value::map([("value", Value::text(value)), ("type", Value::text(kind))])
}

fn date_time(local: &str) -> Value {
    Value::DateTime {
        local: local.to_string(),
        tz: Some("UTC".to_string()),
    }
}

/// Changes for a sample record: one field changed, one list grown, one
/// field removed.
pub fn sample_changes(kind: Kind) -> Vec<FieldChange> {
    let set = |field: &str, value: Value| FieldChange {
        field: field.to_string(),
        value: Some(value),
    };
    let unset = |field: &str| FieldChange {
        field: field.to_string(),
        value: None,
    };
    match kind {
        Kind::Contact => vec![
            set("note", Value::text("Met again at the Royal Society")),
            set(
                "emails",
                Value::List(vec![
                    typed("ada@example.org", "home"),
                    typed("countess@example.net", "work"),
                    Value::map([("value", Value::text("ada@engines.example"))]),
                ]),
            ),
            unset("org"),
        ],
        Kind::Event => vec![
            set("summary", Value::text("Engine review (moved)")),
            set("end", date_time("2025-03-14T11:00:00")),
            unset("location"),
        ],
        Kind::Task => vec![
            set("summary", Value::text("Write Note G, final")),
            set("priority", Value::Integer(5)),
            unset("description"),
        ],
    }
}

/// A native text for `kind` (vCard 3.0 or iCalendar) with a property Tandem
/// does not map, as an app would hand it over.
pub fn sample_raw(kind: Kind, uid: &str) -> Raw {
    let (media_type, text) = match kind {
        Kind::Contact => (
            "text/vcard",
            format!(
                "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Grace Hopper\r\n\
                 N:Hopper;Grace;;;\r\nEMAIL;TYPE=WORK:grace@example.org\r\n\
                 X-TANDEM-TEST:kept as is\r\nEND:VCARD\r\n"
            ),
        ),
        Kind::Event => (
            "text/calendar",
            format!(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Tandem//Conformance//EN\r\n\
                 BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20250101T000000Z\r\n\
                 DTSTART:20250314T093000Z\r\nDTEND:20250314T104500Z\r\n\
                 SUMMARY:Compiler talk\r\nX-TANDEM-TEST:kept as is\r\n\
                 END:VEVENT\r\nEND:VCALENDAR\r\n"
            ),
        ),
        Kind::Task => (
            "text/calendar",
            format!(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Tandem//Conformance//EN\r\n\
                 BEGIN:VTODO\r\nUID:{uid}\r\nDTSTAMP:20250101T000000Z\r\n\
                 DUE:20250401T170000Z\r\nSUMMARY:Find the moth\r\nPRIORITY:1\r\n\
                 X-TANDEM-TEST:kept as is\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
            ),
        ),
    };
    Raw {
        media_type: media_type.to_string(),
        text,
    }
}

/// One check's store and name; its helpers panic naming the check.
struct Check<S> {
    name: &'static str,
    kind: Kind,
    store: S,
}

type Fetched = Vec<std::result::Result<Item, ItemError>>;

impl<S: Store> Check<S> {
    fn new(name: &'static str, kind: Kind, store: S) -> Self {
        Check { name, kind, store }
    }

    fn fail(&self, message: impl std::fmt::Display) -> ! {
        panic!(
            "store conformance check `{}` ({}) failed: {message}",
            self.name, self.kind
        )
    }

    fn ensure(&self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.fail(message())
        }
    }

    fn ok<T>(&self, what: &str, result: crate::Result<T>) -> T {
        result.unwrap_or_else(|err| self.fail(format!("{what} failed: {err}")))
    }

    fn err<T: Debug>(&self, what: &str, result: crate::Result<T>, kind: ErrorKind) -> Error {
        match result {
            Ok(value) => self.fail(format!(
                "{what} succeeded with {value:?}, expected {}",
                kind.as_str()
            )),
            Err(err) if err.kind == kind => err,
            Err(err) => self.fail(format!(
                "{what} failed with `{err}`, expected {}",
                kind.as_str()
            )),
        }
    }

    fn sample(&self, uid: &str) -> Record {
        sample(self.kind, uid)
    }

    async fn create(&self, collection: &str, record: &Record) -> Written {
        let item = NewItem {
            record: record.clone(),
            raw: None,
        };
        let written = self.ok(
            &format!("create of `{}`", record.uid),
            self.store.create(collection, &item).await,
        );
        self.ensure(
            !written.id.is_empty() && !written.version.is_empty(),
            || format!("create returned an empty id or version: {written:?}"),
        );
        written
    }

    async fn fetch(&self, collection: &str, ids: &[&str]) -> Fetched {
        let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        let fetched = self.ok(
            &format!("fetch of {ids:?}"),
            self.store.fetch(collection, &ids).await,
        );
        self.ensure(fetched.len() == ids.len(), || {
            format!(
                "fetch of {} ids returned {} results",
                ids.len(),
                fetched.len()
            )
        });
        fetched
    }

    async fn fetch_one(&self, collection: &str, id: &str) -> Item {
        let mut fetched = self.fetch(collection, &[id]).await;
        match fetched.pop() {
            Some(Ok(item)) => {
                self.ensure(item.id == id, || {
                    format!("fetch of `{id}` returned item `{}`", item.id)
                });
                item
            }
            Some(Err(err)) => self.fail(format!("fetch of `{id}` gave an item error: {err}")),
            None => self.fail(format!("fetch of `{id}` returned nothing")),
        }
    }

    async fn listing(&self, collection: &str) -> Vec<(String, String)> {
        let mut listed: Vec<(String, String)> = self
            .ok(
                &format!("list of `{collection}`"),
                self.store.list(collection).await,
            )
            .into_iter()
            .map(|l| (l.id, l.version))
            .collect();
        listed.sort();
        listed
    }

    fn same(&self, what: &str, got: &Record, want: &Record) {
        let mut got = got.clone();
        got.modified = None;
        self.ensure(got.same_content(want), || {
            format!(
                "{what}: the record differs in {:?}\n got: {got:?}\nwant: {want:?}",
                got.changed_fields(want)
            )
        });
    }

    async fn update(&self, current: &Item, expected: &str, changes: &[FieldChange]) -> Written {
        self.ok(
            &format!("update of `{}`", current.id),
            self.store.update(ROOT, current, expected, changes).await,
        )
    }
}

async fn empty_root_lists_nothing<S: Store>(c: &Check<S>) {
    let collections = c.ok("collections", c.store.collections().await);
    c.ensure(collections.iter().any(|name| name == ROOT), || {
        format!("collections {collections:?} lack the root collection")
    });
    let listed = c.listing(ROOT).await;
    c.ensure(listed.is_empty(), || {
        format!("a new store lists {listed:?}")
    });
}

async fn created_item_is_listed<S: Store>(c: &Check<S>) {
    let written = c.create(ROOT, &c.sample("conf-1")).await;
    let listed = c.listing(ROOT).await;
    c.ensure(
        listed == [(written.id.clone(), written.version.clone())],
        || format!("listing {listed:?} is not the created item {written:?}"),
    );
}

async fn fetch_returns_the_record<S: Store>(c: &Check<S>) {
    let record = c.sample("conf-1");
    let written = c.create(ROOT, &record).await;
    let item = c.fetch_one(ROOT, &written.id).await;
    c.ensure(item.version == written.version, || {
        format!(
            "fetched version {} is not the written {}",
            item.version, written.version
        )
    });
    c.same("fetch after create", &item.record, &record);
}

async fn create_is_idempotent<S: Store>(c: &Check<S>) {
    let record = c.sample("conf-1");
    let first = c.create(ROOT, &record).await;
    let second = c.create(ROOT, &record).await;
    c.ensure(first.id == second.id, || {
        format!(
            "the second create wrote `{}`, not `{}`",
            second.id, first.id
        )
    });
    let listed = c.listing(ROOT).await;
    c.ensure(listed.len() == 1, || {
        format!("after two creates of one UID the listing is {listed:?}")
    });
}

async fn create_conflicts_on_uid<S: Store>(c: &Check<S>) {
    let record = c.sample("conf-1");
    let written = c.create(ROOT, &record).await;
    let mut other = record.clone();
    other.apply(&sample_changes(c.kind));
    let item = NewItem {
        record: other,
        raw: None,
    };
    let err = c.err(
        "create of the same UID with other content",
        c.store.create(ROOT, &item).await,
        ErrorKind::AlreadyExists,
    );
    c.ensure(err.id.as_deref() == Some(written.id.as_str()), || {
        format!(
            "AlreadyExists names {:?}, not the existing item `{}`",
            err.id, written.id
        )
    });
    let item = c.fetch_one(ROOT, &written.id).await;
    c.same(
        "the existing item after a refused create",
        &item.record,
        &record,
    );
}

async fn update_with_right_version<S: Store>(c: &Check<S>) {
    let mut record = c.sample("conf-1");
    let written = c.create(ROOT, &record).await;
    let current = c.fetch_one(ROOT, &written.id).await;
    let changes = sample_changes(c.kind);
    let updated = c.update(&current, &written.version, &changes).await;
    c.ensure(updated.id == written.id, || {
        format!("update moved `{}` to `{}`", written.id, updated.id)
    });
    c.ensure(updated.version != written.version, || {
        format!("update kept version {}", written.version)
    });
    record.apply(&changes);
    let item = c.fetch_one(ROOT, &written.id).await;
    c.same("fetch after update", &item.record, &record);
    c.ensure(item.version == updated.version, || {
        format!(
            "fetched version {} is not the updated {}",
            item.version, updated.version
        )
    });
    let listed = c.listing(ROOT).await;
    c.ensure(
        listed == [(updated.id.clone(), updated.version.clone())],
        || format!("listing {listed:?} is not the updated item {updated:?}"),
    );
}

async fn update_with_stale_version<S: Store>(c: &Check<S>) {
    let mut record = c.sample("conf-1");
    let written = c.create(ROOT, &record).await;
    let stale = c.fetch_one(ROOT, &written.id).await;
    let first = vec![sample_changes(c.kind).remove(0)];
    c.update(&stale, &written.version, &first).await;
    record.apply(&first);
    c.err(
        "update with a stale version",
        c.store
            .update(ROOT, &stale, &written.version, &sample_changes(c.kind))
            .await,
        ErrorKind::PreconditionFailed,
    );
    let item = c.fetch_one(ROOT, &written.id).await;
    c.same("content after a refused update", &item.record, &record);
}

async fn delete_with_stale_version<S: Store>(c: &Check<S>) {
    let mut record = c.sample("conf-1");
    let written = c.create(ROOT, &record).await;
    let current = c.fetch_one(ROOT, &written.id).await;
    let first = vec![sample_changes(c.kind).remove(0)];
    let updated = c.update(&current, &written.version, &first).await;
    record.apply(&first);
    c.err(
        "delete with a stale version",
        c.store.delete(ROOT, &written.id, &written.version).await,
        ErrorKind::PreconditionFailed,
    );
    let item = c.fetch_one(ROOT, &written.id).await;
    c.ensure(item.version == updated.version, || {
        format!("a refused delete moved the version to {}", item.version)
    });
    c.same("content after a refused delete", &item.record, &record);
}

async fn delete_with_right_version<S: Store>(c: &Check<S>) {
    let written = c.create(ROOT, &c.sample("conf-1")).await;
    let kept = c.create(ROOT, &c.sample("conf-2")).await;
    c.ok(
        "delete with the right version",
        c.store.delete(ROOT, &written.id, &written.version).await,
    );
    let listed = c.listing(ROOT).await;
    c.ensure(listed == [(kept.id.clone(), kept.version.clone())], || {
        format!("after delete the listing is {listed:?}, expected only {kept:?}")
    });
    let fetched = c.fetch(ROOT, &[&written.id]).await;
    c.ensure(
        matches!(&fetched[..], [Err(e)] if e.kind == ErrorKind::NotFound),
        || format!("fetch of a deleted item gave {fetched:?}"),
    );
    c.err(
        "delete of a deleted item",
        c.store.delete(ROOT, &written.id, &written.version).await,
        ErrorKind::NotFound,
    );
}

async fn fetch_of_missing_is_item_error<S: Store>(c: &Check<S>) {
    let written = c.create(ROOT, &c.sample("conf-1")).await;
    let missing = "conf-missing";
    let fetched = c.fetch(ROOT, &[missing, &written.id]).await;
    let mut found = false;
    let mut missed = false;
    for result in &fetched {
        match result {
            Ok(item) if item.id == written.id => found = true,
            Err(err) if err.id == missing && err.kind == ErrorKind::NotFound => missed = true,
            other => c.fail(format!("unexpected fetch result {other:?}")),
        }
    }
    c.ensure(found && missed, || {
        format!("fetch of a missing and an existing id gave {fetched:?}")
    });
}

async fn update_keeps_unnamed_fields<S: Store>(c: &Check<S>) {
    let mut record = c.sample("conf-1");
    let written = c.create(ROOT, &record).await;
    let current = c.fetch_one(ROOT, &written.id).await;
    let one = vec![sample_changes(c.kind).remove(0)];
    c.update(&current, &written.version, &one).await;
    record.apply(&one);
    let item = c.fetch_one(ROOT, &written.id).await;
    c.same("fields not named in the patch", &item.record, &record);
}

async fn raw_is_written_as_is<S: Store>(c: &Check<S>) {
    let uid = "conf-raw";
    let raw = sample_raw(c.kind, uid);
    let item = NewItem {
        record: c.sample(uid),
        raw: Some(raw.clone()),
    };
    let written = c.ok("create with raw text", c.store.create(ROOT, &item).await);
    let fetched = c.fetch_one(ROOT, &written.id).await;
    c.ensure(fetched.record.uid == uid, || {
        format!("the raw item came back with UID `{}`", fetched.record.uid)
    });
    // Stores that keep no native text (a database table) return none. A
    // server that rewrites what it stores (Radicale sorts properties) may
    // change the text, but never drop what Tandem does not map.
    if let Some(got) = &fetched.raw {
        c.ensure(
            got.text == raw.text
                || (c.store.rewrites_items() && got.text.contains("X-TANDEM-TEST:kept as is")),
            || {
                format!(
                    "the raw text was not kept as is\n got: {:?}\nwant: {:?}",
                    got.text, raw.text
                )
            },
        );
    }
}

async fn collections_are_usable<S: Store>(c: &Check<S>) {
    let name = "conf-collection";
    match c.store.create_collection(name).await {
        // A store that is one collection (a table, a file) refuses others
        // and keeps showing only the root.
        Err(err) if err.kind == ErrorKind::Unsupported => {
            let collections = c.ok("collections", c.store.collections().await);
            c.ensure(collections == [ROOT], || {
                format!("a single-collection store lists collections {collections:?}")
            });
            return;
        }
        other => c.ok("create_collection", other),
    }
    let collections = c.ok("collections", c.store.collections().await);
    c.ensure(
        collections.iter().any(|n| n == name) && collections.iter().any(|n| n == ROOT),
        || format!("collections {collections:?} lack `{name}` or the root"),
    );
    let record = c.sample("conf-in-collection");
    let written = c.create(name, &record).await;
    let listed = c.listing(name).await;
    c.ensure(
        listed == [(written.id.clone(), written.version.clone())],
        || format!("collection listing {listed:?} is not the created item {written:?}"),
    );
    let root = c.listing(ROOT).await;
    c.ensure(root.is_empty(), || {
        format!("an item created in `{name}` shows in the root: {root:?}")
    });
    let item = c.fetch(name, &[&written.id]).await;
    match &item[..] {
        [Ok(item)] => c.same("fetch from a collection", &item.record, &record),
        other => c.fail(format!("fetch from `{name}` gave {other:?}")),
    }
}

async fn many_items_list_and_fetch<S: Store>(c: &Check<S>) {
    let uids: Vec<String> = (0..25).map(|i| format!("conf-many-{i:02}")).collect();
    let mut written = Vec::new();
    for uid in &uids {
        written.push(c.create(ROOT, &c.sample(uid)).await);
    }
    let mut want: Vec<(String, String)> = written
        .iter()
        .map(|w| (w.id.clone(), w.version.clone()))
        .collect();
    want.sort();
    let listed = c.listing(ROOT).await;
    c.ensure(listed == want, || {
        format!("listing {listed:?} is not the created items {want:?}")
    });
    let ids: Vec<&str> = written.iter().map(|w| w.id.as_str()).collect();
    let fetched = c.fetch(ROOT, &ids).await;
    let mut uids_back = Vec::new();
    for result in fetched {
        match result {
            Ok(item) => uids_back.push(item.record.uid),
            Err(err) => c.fail(format!("fetch gave an item error: {err}")),
        }
    }
    uids_back.sort();
    c.ensure(uids_back == uids, || {
        format!("fetch of all items gave UIDs {uids_back:?}")
    });
}

/// What the engine does with every chunk and every settle (see [`Store`]):
/// a write or a flush is polled once and left while other calls are made,
/// and awaited only later. A store whose call needs polling to go on, while
/// holding what the next call waits for, hangs here; the time limit turns
/// that into a failure.
async fn calls_started_and_left_run_on_their_own<S: Store>(c: &Check<S>) {
    let first = c.create(ROOT, &c.sample("conf-left-1")).await;
    let limit = std::time::Duration::from_secs(30);
    let waited = |what: &str| -> ! {
        c.fail(format!(
            "{what} was still waiting after {} s",
            limit.as_secs()
        ))
    };

    let second_record = c.sample("conf-left-2");
    let write = Started::start(c.create(ROOT, &second_record)).await;
    let fetched = tokio::time::timeout(limit, c.fetch_one(ROOT, &first.id))
        .await
        .unwrap_or_else(|_| waited("a fetch made while a started write waited"));
    c.ensure(fetched.version == first.version, || {
        format!(
            "`{}` is at {}, not {}",
            first.id, fetched.version, first.version
        )
    });
    let second = write.finish().await;

    let flush = Started::start(c.store.flush()).await;
    let third = tokio::time::timeout(limit, c.create(ROOT, &c.sample("conf-left-3")))
        .await
        .unwrap_or_else(|_| waited("a write made while a started flush waited"));
    c.ok("the flush", flush.finish().await);
    c.ok("the second flush", c.store.flush().await);

    let mut want: Vec<(String, String)> = [first, second, third]
        .into_iter()
        .map(|w| (w.id, w.version))
        .collect();
    want.sort();
    c.ensure(c.listing(ROOT).await == want, || {
        format!("after the calls and both flushes the listing is not {want:?}")
    });
}

/// As many writes at once as the store says it takes, over three rounds
/// worth of items, creates and then updates, leave every item as written.
async fn concurrent_writes_are_safe<S: Store>(c: &Check<S>) {
    let at_once = c.store.concurrent_writes().clamp(1, 16);
    let n = 3 * at_once;
    let uids: Vec<String> = (0..n).map(|i| format!("conf-at-once-{i:02}")).collect();
    let records: Vec<Record> = uids.iter().map(|uid| c.sample(uid)).collect();
    let written: Vec<Written> = stream::iter(records.iter().map(|r| c.create(ROOT, r)))
        .buffered(at_once)
        .collect()
        .await;
    let mut want: Vec<(String, String)> = written
        .iter()
        .map(|w| (w.id.clone(), w.version.clone()))
        .collect();
    want.sort();
    c.ensure(c.listing(ROOT).await == want, || {
        format!("after {n} creates, {at_once} at once, the listing is not {want:?}")
    });
    let mut items = Vec::new();
    for w in &written {
        items.push(c.fetch_one(ROOT, &w.id).await);
    }
    let changes = sample_changes(c.kind);
    let updated: Vec<Written> = stream::iter(
        items
            .iter()
            .zip(&written)
            .map(|(item, w)| c.update(item, &w.version, &changes)),
    )
    .buffered(at_once)
    .collect()
    .await;
    for (mut record, w) in records.into_iter().zip(&updated) {
        record.apply(&changes);
        let item = c.fetch_one(ROOT, &w.id).await;
        c.same("fetch after updates at once", &item.record, &record);
        c.ensure(item.version == w.version, || {
            format!(
                "`{}` is at {}, not the updated {}",
                w.id, item.version, w.version
            )
        });
    }
}

async fn missing_collection_is_not_found<S: Store>(c: &Check<S>) {
    c.err(
        "list of a missing collection",
        c.store.list("conf-no-such-collection").await,
        ErrorKind::NotFound,
    );
}

#[cfg(test)]
mod tests {
    //! The suite must catch a broken store, not only pass a good one.

    use super::*;
    use crate::{Forward, MemoryStore};
    use async_trait::async_trait;

    /// A store that writes over changes it has not seen.
    struct IgnoresVersions(MemoryStore);

    #[async_trait]
    impl Forward for IgnoresVersions {
        fn inner(&self) -> &dyn Store {
            &self.0
        }
        async fn update(
            &self,
            collection: &str,
            current: &Item,
            _expected: &str,
            changes: &[FieldChange],
        ) -> crate::Result<Written> {
            let now = self.0.item(collection, &current.id).map(|i| i.version);
            let now = now.unwrap_or_default();
            self.0.update(collection, current, &now, changes).await
        }
    }

    #[tokio::test]
    #[should_panic(expected = "store conformance check `update with stale version` (task) failed")]
    async fn catches_a_store_that_ignores_versions() {
        run(|| async { IgnoresVersions(MemoryStore::new()) }, Kind::Task).await;
    }

    #[test]
    fn samples_change_under_their_changes() {
        for kind in Kind::ALL {
            let before = sample(kind, "u");
            let mut after = before.clone();
            after.apply(&sample_changes(kind));
            assert_eq!(before.changed_fields(&after).len(), 3, "{kind}");
            assert!(sample_raw(kind, "u").text.contains("UID:u\r\n"));
        }
    }
}
