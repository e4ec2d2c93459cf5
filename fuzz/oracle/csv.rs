//! What every CSV file must satisfy in the CSV store, shared by the `csv`
//! fuzz target and any replay test that includes this file.
//!
//! The first input byte picks the delimiter, quote and kind; the rest is the
//! file. Any file may be refused, but never with a panic. Every row the
//! store reads must survive a rewrite: writing each mapped field back as
//! the value it was read as, flushing, and reading the file again with a
//! fresh store gives the same ids and the same records. A created row reads
//! back as the record written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use tandem_record::{FieldChange, Kind, Record};
use tandem_store::{Item, NewItem, Store, ROOT};
use tandem_stores::csv::{CsvConfig, CsvStore};

/// Rows whose rewrite is checked per input; the rest are only read.
const ROWS_CHECKED: usize = 8;

/// Record field → column header, one column per value shape of
/// `tandem_formats::row`, two of them holding JSON.
const COLUMNS: [(&str, &str); 11] = [
    ("uid", "uid"),
    ("full_name", "name"),
    ("emails", "emails"),
    ("phones", "phones"),
    ("categories", "tags"),
    ("birthday", "birthday"),
    ("start", "start"),
    ("priority", "priority"),
    ("all_day", "all_day"),
    ("addresses", "addresses"),
    ("custom.note", "note"),
];
const JSON_COLUMNS: [&str; 2] = ["phones", "addresses"];

pub fn csv(data: &[u8]) {
    let Some((&settings, file)) = data.split_first() else {
        return;
    };
    let delimiter = [',', ';', '\t', '|'][usize::from(settings & 3)];
    let quote = ['"', '\''][usize::from((settings >> 2) & 1)];
    let kind = [Kind::Contact, Kind::Event, Kind::Task][usize::from((settings >> 3) % 3)];
    let scratch = Scratch::new();
    std::fs::write(&scratch.path, file).expect("writing the scratch file");
    runtime().block_on(check(&scratch.path, delimiter, quote, kind));
}

async fn check(path: &Path, delimiter: char, quote: char, kind: Kind) {
    let store = open(path, delimiter, quote, kind);
    let Ok(listed) = store.list(ROOT).await else {
        return;
    };
    let ids: Vec<String> = listed.iter().map(|l| l.id.clone()).collect();
    let fetched = store.fetch(ROOT, &ids).await.expect("fetching listed rows");
    assert_eq!(fetched.len(), ids.len(), "fetch answered for other ids");
    let read: Vec<Item> = fetched.into_iter().filter_map(Result::ok).collect();

    // Every mapped field written back as the value it was read as.
    for item in read.iter().take(ROWS_CHECKED) {
        let changes: Vec<FieldChange> = COLUMNS
            .iter()
            .filter(|(field, _)| *field != "uid")
            .map(|(field, _)| FieldChange {
                field: field.to_string(),
                value: item.record.get(field).cloned(),
            })
            .collect();
        store
            .update(ROOT, item, &item.version, &changes)
            .await
            .unwrap_or_else(|err| panic!("rewriting row `{}`: {err}", item.id));
    }
    // A new row holding the first record under an id that needs quoting.
    let created = read.first().map(|item| Record {
        uid: format!("new{delimiter}{quote}\n{}", item.record.uid),
        ..item.record.clone()
    });
    let created = match created {
        Some(record) => {
            let item = NewItem {
                record: record.clone(),
                raw: None,
            };
            store
                .create(ROOT, &item)
                .await
                .ok()
                .map(|written| (written.id, record))
        }
        None => None,
    };
    store.flush().await.expect("flushing the rewritten file");

    let again = open(path, delimiter, quote, kind);
    let mut relisted: Vec<String> = again
        .list(ROOT)
        .await
        .expect("listing the rewritten file")
        .into_iter()
        .map(|l| l.id)
        .collect();
    relisted.sort();
    let mut expected = ids.clone();
    expected.extend(created.iter().map(|(id, _)| id.clone()));
    expected.sort();
    assert_eq!(relisted, expected, "the rewrite changed the row ids");

    let reread = again.fetch(ROOT, &expected).await.expect("fetching again");
    let reread: BTreeMap<String, Record> = reread
        .into_iter()
        .filter_map(Result::ok)
        .map(|item| (item.id, item.record))
        .collect();
    let written = read
        .iter()
        .map(|item| (&item.id, &item.record))
        .chain(created.iter().map(|(id, record)| (id, record)));
    for (id, before) in written {
        let after = reread
            .get(id)
            .unwrap_or_else(|| panic!("row `{id}` no longer reads after the rewrite"));
        assert!(
            before.same_content(after),
            "row `{id}` reads differently after the rewrite: fields {:?}\nbefore: {before:?}\nafter: {after:?}",
            before.changed_fields(after)
        );
    }
}

fn open(path: &Path, delimiter: char, quote: char, kind: Kind) -> CsvStore {
    let config = CsvConfig {
        path: path.to_path_buf(),
        id: "id".into(),
        columns: COLUMNS
            .iter()
            .map(|(field, column)| (field.to_string(), column.to_string()))
            .collect(),
        json: JSON_COLUMNS.iter().map(|c| c.to_string()).collect(),
        delimiter,
        quote,
    };
    CsvStore::new(config, kind).expect("a valid CSV store config")
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime")
    })
}

/// A file of its own in the temp folder (`TMPDIR`; a tmpfs keeps the
/// store's fsyncs cheap), removed when dropped.
struct Scratch {
    dir: PathBuf,
    path: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tandem-fuzz-csv-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("creating the scratch folder");
        let path = dir.join("table.csv");
        Scratch { dir, path }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
