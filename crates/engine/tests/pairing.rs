//! Items new on both sides pair up by UID while only the smaller side's
//! ids are held: the held item is read again when its twin turns up, and
//! one that changed in between is planned again rather than paired with
//! stale content.

use async_trait::async_trait;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use tandem_apply::Sides;
use tandem_engine::{run_pair, Options};
use tandem_state::{SqliteState, StateStore};
use tandem_store::{Forward, Item, ItemError, Store};
use tandem_stores::vdir::VdirStore;

fn card(uid: &str, lines: &[&str]) -> String {
    let mut s = format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\n");
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str("END:VCARD\r\n");
    s
}

mod vdir_pair;
use vdir_pair::{pair, vdir};

/// A vdir whose file `file` is edited, as a user would, right before it is
/// read for the second time. (A wrapper around the real store: the only way
/// to place an edit between the two reads.)
struct EditedBetweenReads {
    inner: VdirStore,
    file: PathBuf,
    text: String,
    reads: Mutex<HashMap<String, usize>>,
}

#[async_trait]
impl Forward for EditedBetweenReads {
    fn inner(&self) -> &dyn Store {
        &self.inner
    }
    async fn fetch(
        &self,
        collection: &str,
        ids: &[String],
    ) -> tandem_store::Result<Vec<Result<Item, ItemError>>> {
        let name = self
            .file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let second = {
            let mut reads = self.reads.lock().unwrap();
            ids.iter().any(|id| {
                let n = reads.entry(id.clone()).or_default();
                *n += 1;
                id.ends_with(&name) && *n == 2
            })
        };
        if second {
            std::fs::write(&self.file, &self.text).unwrap();
        }
        self.inner.fetch(collection, ids).await
    }
}

fn prop(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (head, value) = l.trim_end_matches('\r').split_once(':')?;
        (head.split(';').next()? == name).then(|| value.to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_item_edited_before_its_twin_is_read_is_planned_again() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    // A has fewer new items, so A's are held: `same` pairs with B's y.vcf.
    std::fs::write(a.join("x.vcf"), card("same", &["FN:Ada", "TITLE:Analyst"])).unwrap();
    std::fs::write(b.join("y.vcf"), card("same", &["FN:Ada", "NOTE:from b"])).unwrap();
    std::fs::write(b.join("w.vcf"), card("other", &["FN:Alan"])).unwrap();
    let edited = card("same", &["FN:Ada", "TITLE:Edited between the reads"]);
    let store_a = EditedBetweenReads {
        inner: vdir(&a),
        file: a.join("x.vcf"),
        text: edited,
        reads: Mutex::new(HashMap::new()),
    };
    let store_b = vdir(&b);
    let pair = pair(dir.path());
    let mut state = SqliteState::in_memory().unwrap();
    let run = state.begin_run("sync", &["p".to_string()]).unwrap();
    let sides = Sides {
        a: &store_a,
        b: &store_b,
        a_name: "a",
        b_name: "b",
    };
    let outcome = run_pair(&pair, sides, &mut state, run, &Options::default())
        .await
        .unwrap();
    assert!(outcome.report.failures.is_empty(), "{outcome:?}");
    assert!(
        store_a.reads.lock().unwrap().values().any(|n| *n >= 3),
        "the edited item was read a third time, when planned again"
    );
    // Linked, not duplicated, and merged from the edited text.
    let mut files_a: Vec<_> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    files_a.sort();
    assert_eq!(files_a, vec!["other.vcf", "x.vcf"]);
    assert_eq!(
        std::fs::read_dir(&b)
            .unwrap()
            .filter(|e| !e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.'))
            .count(),
        2
    );
    for path in [a.join("x.vcf"), b.join("y.vcf")] {
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            prop(&text, "TITLE").as_deref(),
            Some("Edited between the reads"),
            "{path:?}: {text}"
        );
        assert_eq!(prop(&text, "NOTE").as_deref(), Some("from b"), "{path:?}");
    }
    // A rerun (with the plain store) has nothing to do.
    let run = state.begin_run("sync", &["p".to_string()]).unwrap();
    let plain_a = vdir(&a);
    let sides = Sides {
        a: &plain_a,
        ..sides
    };
    let again = run_pair(&pair, sides, &mut state, run, &Options::default())
        .await
        .unwrap();
    assert_eq!(again.report.writes(), 0, "{again:?}");
}
