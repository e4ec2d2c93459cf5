//! The CSV store against the shared conformance suite, plus what only a
//! rewritten file has: unmapped columns survive, nothing reaches the disk
//! before a flush, a file edited meanwhile is never overwritten.

use super::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use tandem_store::conformance;
use tempfile::TempDir;

fn columns(kind: Kind) -> BTreeMap<String, String> {
    let pairs: &[(&str, &str)] = match kind {
        Kind::Contact => &[
            ("full_name", "Name"),
            ("given_name", "First name"),
            ("family_name", "Last name"),
            ("org", "Company"),
            ("emails", "E-mail"),
            ("phones", "Phone"),
            ("note", "Notes"),
        ],
        Kind::Event => &[
            ("summary", "Title"),
            ("location", "Where"),
            ("description", "Details"),
            ("start", "Start"),
            ("end", "End"),
        ],
        Kind::Task => &[
            ("summary", "Title"),
            ("description", "Details"),
            ("due", "Due"),
            ("priority", "Priority"),
            ("status", "Status"),
        ],
    };
    pairs
        .iter()
        .map(|(f, c)| (f.to_string(), c.to_string()))
        .collect()
}

fn config(path: &Path, kind: Kind) -> CsvConfig {
    CsvConfig {
        path: path.to_path_buf(),
        id: "id".into(),
        columns: columns(kind),
        json: vec!["E-mail".into(), "Phone".into()],
        delimiter: ',',
        quote: '"',
    }
}

async fn run_conformance(kind: Kind) {
    let temp = TempDir::new().unwrap();
    let next = AtomicUsize::new(0);
    conformance::run(
        || {
            let path = temp
                .path()
                .join(format!("{}.csv", next.fetch_add(1, Ordering::Relaxed)));
            let store = CsvStore::new(config(&path, kind), kind).unwrap();
            async move {
                store.create_collection(ROOT).await.unwrap();
                store
            }
        },
        kind,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_pass_the_conformance_suite() {
    run_conformance(Kind::Contact).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_pass_the_conformance_suite() {
    run_conformance(Kind::Event).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_pass_the_conformance_suite() {
    run_conformance(Kind::Task).await;
}

const SHEET: &str = "id;First name;Last name;Tags;Owner notes\n\
                     1;Ada;Lovelace;math, engines;\"keep; me\"\n\
                     2;Grace;Hopper;navy;untouched\n";

fn sheet_store(temp: &TempDir) -> (PathBuf, CsvStore) {
    let path = temp.path().join("people.csv");
    fs::write(&path, SHEET).unwrap();
    let config = CsvConfig {
        path: path.clone(),
        id: "id".into(),
        columns: [
            ("given_name", "First name"),
            ("family_name", "Last name"),
            ("categories", "Tags"),
        ]
        .iter()
        .map(|(f, c)| (f.to_string(), c.to_string()))
        .collect(),
        json: vec![],
        delimiter: ';',
        quote: '"',
    };
    (path, CsvStore::new(config, Kind::Contact).unwrap())
}

fn set(field: &str, value: Value) -> FieldChange {
    FieldChange {
        field: field.into(),
        value: Some(value),
    }
}

#[tokio::test]
async fn rows_read_with_options_and_unmapped_columns_survive_a_rewrite() {
    let temp = TempDir::new().unwrap();
    let (path, store) = sheet_store(&temp);
    let items = store.fetch(ROOT, &["1".into()]).await.unwrap();
    let item = items.into_iter().next().unwrap().unwrap();
    assert_eq!(item.record.uid, "1");
    assert_eq!(item.record.get("given_name"), Some(&Value::text("Ada")));
    assert_eq!(
        item.record.get("categories"),
        Some(&Value::List(vec![
            Value::text("math"),
            Value::text("engines")
        ]))
    );
    let written = store
        .update(
            ROOT,
            &item,
            &item.version,
            &[set("given_name", Value::text("Augusta Ada"))],
        )
        .await
        .unwrap();
    assert_ne!(written.version, item.version);
    store.flush().await.unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        "id;First name;Last name;Tags;Owner notes\n\
         1;Augusta Ada;Lovelace;math, engines;\"keep; me\"\n\
         2;Grace;Hopper;navy;untouched\n"
    );
    let names: Vec<String> = fs::read_dir(temp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["people.csv"], "no temp file left behind");
}

#[tokio::test]
async fn nothing_reaches_the_file_before_a_flush() {
    let temp = TempDir::new().unwrap();
    let (path, store) = sheet_store(&temp);
    let listed = store.list(ROOT).await.unwrap();
    let v2 = listed.iter().find(|l| l.id == "2").unwrap().version.clone();
    store.delete(ROOT, "2", &v2).await.unwrap();
    let record = Record::new(Kind::Contact, "3").with("given_name", Value::text("Edsger"));
    store
        .create(ROOT, &NewItem { record, raw: None })
        .await
        .unwrap();
    assert_eq!(
        store.list(ROOT).await.unwrap().len(),
        2,
        "the store sees its own writes"
    );
    // A crash now (the store dropped without a flush) leaves the old file.
    drop(store);
    assert_eq!(fs::read_to_string(&path).unwrap(), SHEET);
}

#[tokio::test]
async fn a_file_edited_since_it_was_read_is_not_overwritten() {
    let temp = TempDir::new().unwrap();
    let (path, store) = sheet_store(&temp);
    let item = store
        .fetch(ROOT, &["2".into()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    store
        .update(
            ROOT,
            &item,
            &item.version,
            &[set("family_name", Value::text("Murray Hopper"))],
        )
        .await
        .unwrap();
    let edited = SHEET.replace("navy", "navy, cobol");
    fs::write(&path, &edited).unwrap();
    let err = store.flush().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::PreconditionFailed, "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), edited);
    // The next read sees the edit: the row's version (a content hash) moved.
    let again = store
        .fetch(ROOT, &["2".into()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert_ne!(again.version, item.version);
    let err = store
        .update(
            ROOT,
            &item,
            &item.version,
            &[set("family_name", Value::text("x"))],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::PreconditionFailed);
}

#[tokio::test]
async fn a_value_that_does_not_fit_names_file_row_and_column() {
    let temp = TempDir::new().unwrap();
    let (_path, store) = sheet_store(&temp);
    let item = store
        .fetch(ROOT, &["1".into()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let bad = set("categories", Value::List(vec![Value::text("a,b")]));
    let err = store
        .update(ROOT, &item, &item.version, &[bad])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(
        err.message.contains("row `1`") && err.message.contains("column `Tags`"),
        "{err}"
    );
    // The other row still takes writes.
    let other = store
        .fetch(ROOT, &["2".into()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    store
        .update(
            ROOT,
            &other,
            &other.version,
            &[set("given_name", Value::text("G."))],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_missing_file_is_created_with_a_header_on_first_use() {
    let temp = TempDir::new().unwrap();
    let path = temp.path().join("new.csv");
    let store = CsvStore::new(config(&path, Kind::Contact), Kind::Contact).unwrap();
    let err = store.list(ROOT).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    store.create_collection(ROOT).await.unwrap();
    let header = fs::read_to_string(&path).unwrap();
    assert!(header.starts_with("id,"), "{header}");
    assert!(store.list(ROOT).await.unwrap().is_empty());
    let err = store.create_collection("other").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);
}
