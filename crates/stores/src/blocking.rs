//! Running a file store's synchronous work on tokio's blocking threads,
//! shared by the stores that keep their data in local files (vdir, csv).

use std::sync::Arc;
use tandem_store::{Error, ErrorKind, Result};

/// Runs `work` over `shared` on a blocking thread; a task that died (a
/// panic) becomes an I/O error rather than a crashed run.
pub(crate) async fn on_blocking_thread<S, T>(
    shared: &Arc<S>,
    work: impl FnOnce(&S) -> Result<T> + Send + 'static,
) -> Result<T>
where
    S: Send + Sync + 'static,
    T: Send + 'static,
{
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || work(&shared))
        .await
        .map_err(|err| Error::new(ErrorKind::Io, format!("a file task failed: {err}")))?
}

type Job<S> = Box<dyn FnOnce(&S) + Send>;

/// A few threads of one store's own that take its writes in the order they
/// were handed over. Tokio's blocking pool starts a thread per waiting task
/// (up to 512), so a store there can only be handed a few writes at a time;
/// here any number can be queued at once, and they go on being made while
/// the caller plans the next ones, with no one polling them. The threads
/// start with the first write and end when the store is dropped.
/// Clones share the queue and its threads.
pub(crate) struct WriteQueue<S>(Arc<Queue<S>>);

struct Queue<S> {
    shared: Arc<S>,
    threads: usize,
    jobs: std::sync::OnceLock<std::sync::mpsc::Sender<Job<S>>>,
}

impl<S> Clone for WriteQueue<S> {
    fn clone(&self) -> Self {
        WriteQueue(Arc::clone(&self.0))
    }
}

impl<S> std::fmt::Debug for WriteQueue<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteQueue")
            .field("threads", &self.0.threads)
            .field("started", &self.0.jobs.get().is_some())
            .finish()
    }
}

impl<S: Send + Sync + 'static> WriteQueue<S> {
    pub(crate) fn new(shared: Arc<S>, threads: usize) -> WriteQueue<S> {
        WriteQueue(Arc::new(Queue {
            shared,
            threads: threads.max(1),
            jobs: std::sync::OnceLock::new(),
        }))
    }

    fn sender(&self) -> Result<&std::sync::mpsc::Sender<Job<S>>> {
        let queue = &*self.0;
        if let Some(jobs) = queue.jobs.get() {
            return Ok(jobs);
        }
        let (tx, rx) = std::sync::mpsc::channel::<Job<S>>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for n in 0..queue.threads {
            let (rx, shared) = (Arc::clone(&rx), Arc::clone(&queue.shared));
            std::thread::Builder::new()
                .name(format!("tandem-write-{n}"))
                .spawn(move || loop {
                    // The lock is held only to take the next job.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(&shared),
                        Err(_) => return,
                    }
                })
                .map_err(|err| {
                    Error::new(ErrorKind::Io, format!("cannot start a write thread: {err}"))
                })?;
        }
        Ok(queue.jobs.get_or_init(|| tx))
    }

    /// Queues `work` and waits for its result; a job that panicked becomes
    /// an I/O error rather than a crashed run.
    pub(crate) async fn run<T>(
        &self,
        work: impl FnOnce(&S) -> Result<T> + Send + 'static,
    ) -> Result<T>
    where
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job<S> = Box::new(move |shared| {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(shared)));
            let _ = tx.send(result);
        });
        self.sender()?
            .send(job)
            .map_err(|_| Error::new(ErrorKind::Io, "the write threads are gone"))?;
        match rx.await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::new(ErrorKind::Io, "a write task panicked")),
            Err(_) => Err(Error::new(ErrorKind::Io, "a write task was dropped")),
        }
    }
}
