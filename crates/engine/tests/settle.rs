//! Writes are made durable in the background: a batch's flush runs while
//! the next writes are made, and the batch is recorded only once its flush
//! succeeded. A failed flush records nothing of its batch, and the next run
//! links those items without writing them again.

use async_trait::async_trait;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tandem_apply::Sides;
use tandem_engine::{run_pair, Options, SETTLE_EVERY};
use tandem_state::{SqliteState, StateStore};
use tandem_store::{Forward, NewItem, Store, Written, ROOT};
use tandem_stores::vdir::VdirStore;

mod vdir_pair;
use vdir_pair::{pair, vdir};

/// A vdir whose first flush waits until a further item has been created
/// (or 20 s pass), then fails; later flushes are the vdir's own.
struct SlowFirstFlush {
    inner: VdirStore,
    creates: AtomicU64,
    flushed_once: AtomicBool,
    /// Creates made while the first flush was running.
    overlapped: AtomicU64,
}

#[async_trait]
impl Forward for SlowFirstFlush {
    fn inner(&self) -> &dyn Store {
        &self.inner
    }

    async fn create(&self, collection: &str, item: &NewItem) -> tandem_store::Result<Written> {
        let written = self.inner.create(collection, item).await;
        self.creates.fetch_add(1, Ordering::SeqCst);
        written
    }

    async fn flush(&self) -> tandem_store::Result<()> {
        if self.flushed_once.swap(true, Ordering::SeqCst) {
            return self.inner.flush().await;
        }
        let start = self.creates.load(Ordering::SeqCst);
        let began = Instant::now();
        while self.creates.load(Ordering::SeqCst) == start
            && began.elapsed() < Duration::from_secs(20)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.overlapped.store(
            self.creates.load(Ordering::SeqCst) - start,
            Ordering::SeqCst,
        );
        Err(tandem_store::Error::new(
            tandem_store::ErrorKind::Io,
            "disk went away",
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_flushed_while_the_next_is_written_and_recorded_only_once_flushed() {
    let n = 2 * SETTLE_EVERY + 500;
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    for i in 0..n {
        let uid = format!("card-{i:05}");
        std::fs::write(
            a.join(format!("{uid}.vcf")),
            format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Person {i}\r\nEND:VCARD\r\n"),
        )
        .unwrap();
    }
    let store_a = vdir(&a);
    let store_b = SlowFirstFlush {
        inner: vdir(&b),
        creates: AtomicU64::new(0),
        flushed_once: AtomicBool::new(false),
        overlapped: AtomicU64::new(0),
    };
    let pair = pair(dir.path());
    let mut state = SqliteState::in_memory().unwrap();
    let sides = Sides {
        a: &store_a,
        b: &store_b,
        a_name: "a",
        b_name: "b",
    };

    let run = state.begin_run("sync", &["p".to_string()]).unwrap();
    let first = run_pair(&pair, sides, &mut state, run, &Options::default())
        .await
        .unwrap();
    assert_eq!(first.report.created, [0, n]);
    assert!(
        store_b.overlapped.load(Ordering::SeqCst) > 0,
        "items were written while the first batch was being flushed"
    );
    let flush_failures: Vec<_> = first
        .report
        .failures
        .iter()
        .filter(|f| f.item == "(flush)")
        .collect();
    assert_eq!(flush_failures.len(), 1, "{:?}", first.report.failures);
    assert_eq!(
        first.report.failures.len(),
        1,
        "{:?}",
        first.report.failures
    );
    // The first batch was not recorded; every later one was.
    let linked = state.links("p", ROOT).unwrap().len() as u64;
    assert_eq!(linked, n - SETTLE_EVERY);

    // The next run finds the unrecorded items on both sides, the same, and
    // links them without a write.
    let run = state.begin_run("sync", &["p".to_string()]).unwrap();
    let second = run_pair(&pair, sides, &mut state, run, &Options::default())
        .await
        .unwrap();
    assert!(second.report.failures.is_empty(), "{:?}", second.report);
    assert_eq!(second.report.writes(), 0, "{:?}", second.report);
    assert_eq!(state.links("p", ROOT).unwrap().len() as u64, n);
    let files_b = std::fs::read_dir(&b)
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count() as u64;
    assert_eq!(files_b, n);
}
