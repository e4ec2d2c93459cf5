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
