//! [`Folders`]: the collection folders a vdir store writes in, each opened
//! once and used by every write after it, instead of one open (a path walk
//! and a close) per write.
//!
//! An open folder stays the folder it was, even when it is removed or
//! replaced at its path meanwhile: writes made through it then land in the
//! old folder. So every flush checks that each open folder is still the
//! one at its path, and fails when one is not; the batch the flush was for
//! is then not recorded, and the next run finds those items missing and
//! writes them again. The failure sticks for the store's life, because
//! writes that finish after the check may have used the old folder too.

use super::open_folder;
use rustix::fd::OwnedFd;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use tandem_store::{Error, ErrorKind, Result};

/// The folders written in since the store was made.
#[derive(Debug, Default)]
pub(super) struct Folders {
    open: Mutex<HashMap<PathBuf, Folder>>,
    /// The first folder found replaced, once one was.
    replaced: Mutex<Option<PathBuf>>,
}

#[derive(Debug)]
struct Folder {
    fd: Arc<OwnedFd>,
    /// Device and inode when opened: what a check expects at the path.
    identity: (u64, u64),
}

impl Folders {
    /// The open folder at `dir`, opened now if it is not yet.
    pub(super) fn get(&self, dir: &Path) -> Result<Arc<OwnedFd>> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(folder) = open.get(dir) {
            return Ok(Arc::clone(&folder.fd));
        }
        let fd = Arc::new(open_folder(dir)?);
        let stat = rustix::fs::fstat(&*fd).map_err(|err| Error::io(dir.display(), err.into()))?;
        open.insert(
            dir.to_path_buf(),
            Folder {
                fd: Arc::clone(&fd),
                identity: identity(&stat),
            },
        );
        Ok(fd)
    }

    /// Fails when a folder written in was removed or replaced at its path
    /// since it was opened, or ever was before.
    pub(super) fn check(&self) -> Result<()> {
        let mut replaced = self.replaced.lock().unwrap_or_else(PoisonError::into_inner);
        if replaced.is_none() {
            let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            *replaced = open
                .iter()
                .find(|(path, folder)| {
                    rustix::fs::stat(path.as_path())
                        .map_or(true, |now| identity(&now) != folder.identity)
                })
                .map(|(path, _)| path.clone());
        }
        match &*replaced {
            None => Ok(()),
            Some(path) => Err(Error::new(
                ErrorKind::Io,
                format!(
                    "{} was removed or replaced during the sync, so files written in it may \
                     be gone",
                    path.display()
                ),
            )),
        }
    }
}

fn identity(stat: &rustix::fs::Stat) -> (u64, u64) {
    #[allow(clippy::unnecessary_cast)] // the field types differ between targets
    (stat.st_dev as u64, stat.st_ino as u64)
}
