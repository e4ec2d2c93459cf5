//! [`VdirStore`]: a folder of vCard or iCalendar files, one item per file,
//! as kept by vdirsyncer, khard and khal.
//!
//! The configured folder is the root collection; each subfolder (not
//! starting with a dot) is a further collection named by the folder. An
//! item's id is its file name and its version is built from the file's
//! metadata (modification time in nanoseconds, size, inode), so listing a
//! collection costs one directory read and one `stat` per file and reads no
//! file. Fetching reads and parses the files on blocking threads, in
//! parallel. A new item is written as an anonymous file that is then linked
//! under its name (or, where the file system cannot, a hidden temp file
//! renamed into place), never replacing a file that is there; an update
//! writes a hidden temp file renamed over the old one. So an item is always
//! either its old or its new text, and a crash leaves no partial file in
//! sight. Updates patch the file's own text through
//! [`tandem_formats::patch`], so properties Tandem does not map survive.
//! [`Store::flush`] syncs the whole filesystem once instead of each file.
//! Writes go through each folder opened once ([`folders`]), and a flush
//! fails when a folder written in was removed or replaced meanwhile.

mod config;
mod file;
mod folders;
#[cfg(test)]
mod tests;

pub use config::VdirConfig;

use crate::native;
use async_trait::async_trait;
use file::{
    is_item_name, is_plain_name, read_consistent, read_consistent_at, version_from_stat, version_of,
};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tandem_formats::Format;
use tandem_record::{FieldChange, Record};
use tandem_store::{
    Error, ErrorKind, Item, ItemError, Listed, NewItem, Raw, Result, Store, Written, ROOT,
};

/// Fewest items a fetch hands to one blocking thread, so small fetches do
/// not pay for threads they do not need.
const MIN_FETCH_CHUNK: usize = 64;

/// Writes the engine may hand over at once: they wait in the store's queue
/// and are made while the engine plans the next items.
const CONCURRENT_WRITES: usize = 256;

/// Most threads making the queued writes. File creation is mostly kernel
/// work, which then spreads over the cores; there is one thread per core,
/// up to this many, because a folder takes one new name at a time and
/// threads beyond the cores only wait for it, spinning (measured on two
/// cores, 100k creates into one folder: 7.4–8.2 s with two threads,
/// 7.9–8.8 s with four, 8.1–8.4 s with one).
const MAX_WRITE_THREADS: usize = 4;

/// Fewest item files a listing stats on more than one thread.
const PARALLEL_LIST_MIN: usize = 4096;

/// How long the item names found by [`Store::collections`] in the root
/// folder serve the next root listing (see [`RootNames`]).
const ROOT_NAMES_FRESH: Duration = Duration::from_secs(2);

/// A vdir store. See the module docs.
#[derive(Debug, Clone)]
pub struct VdirStore {
    shared: Arc<Shared>,
    /// Creates, updates and deletes, made in the order they are handed over.
    writes: crate::blocking::WriteQueue<Shared>,
}

/// What the blocking tasks need; shared so they can outlive a borrow.
#[derive(Debug)]
struct Shared {
    root: PathBuf,
    format: Format,
    extension: String,
    /// Set by every write, cleared by a successful flush.
    dirty: AtomicBool,
    /// Which way of creating files works in this store's folders.
    creation: file::Creation,
    /// Counts the writes (and flushes) through this store that are over.
    writes: AtomicU64,
    /// The item names the last `collections()` saw in the root folder.
    root_names: Mutex<Option<RootNames>>,
    /// The folders written in, each opened once.
    folders: folders::Folders,
}

/// The item file names a directory read of the root folder found, kept by
/// `collections()` for the `list(ROOT)` that follows it in every sync, so a
/// folder of 100k items is read once instead of twice.
///
/// A slightly old name list gives the same listing as a fresh read would:
/// the listing stats every name anyway, so a name whose file vanished since
/// is skipped, and a changed file shows its new version. Only a file created
/// by someone else after the read is missing, which is as if it had appeared
/// just after the listing: the next run sees it. Writes through this store
/// are never missed: any write drops the list (see [`Shared::writes`]), and
/// it is used once and only within [`ROOT_NAMES_FRESH`] of the read.
#[derive(Debug)]
struct RootNames {
    /// When the read started.
    read_at: Instant,
    /// [`Shared::writes`] when the read started.
    writes: u64,
    /// Names of item files (by [`is_item_name`]), in directory order.
    names: Vec<String>,
    /// Names that are not UTF-8, for the listing to warn about.
    not_utf8: Vec<OsString>,
}

/// Held for the length of a write through the store; counts it as over
/// when dropped, whatever the outcome, which makes kept root names stale.
struct Writing<'a>(&'a AtomicU64);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

impl VdirStore {
    /// A store over `config.path` writing `format` (which also decides the
    /// default file extension). The folder is not touched until used; a
    /// missing folder makes calls fail with [`ErrorKind::NotFound`], and
    /// `create_collection(ROOT)` creates it.
    ///
    /// Fails with [`ErrorKind::Invalid`] when the extension is not a plain
    /// file-name suffix.
    pub fn new(config: VdirConfig, format: Format) -> Result<Self> {
        let extension = match config.extension {
            Some(ext) => ext.trim_start_matches('.').to_string(),
            None => format.extension().to_string(),
        };
        if extension.is_empty()
            || extension.contains(['/', '\\', '\0', '.'])
            || extension.chars().any(char::is_control)
        {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("vdir extension `{extension}` is not a plain file extension"),
            ));
        }
        let shared = Arc::new(Shared {
            root: config.path,
            format,
            extension,
            dirty: AtomicBool::new(false),
            creation: file::Creation::default(),
            writes: AtomicU64::new(0),
            root_names: Mutex::new(None),
            folders: folders::Folders::default(),
        });
        Ok(VdirStore {
            writes: crate::blocking::WriteQueue::new(Arc::clone(&shared), write_threads()),
            shared,
        })
    }

    /// The folder of a collection.
    pub fn collection_path(&self, collection: &str) -> Result<PathBuf> {
        self.shared.dir(collection)
    }

    /// Runs file work on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Shared) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        crate::blocking::on_blocking_thread(&self.shared, work).await
    }
}

impl Shared {
    fn dir(&self, collection: &str) -> Result<PathBuf> {
        if collection == ROOT {
            return Ok(self.root.clone());
        }
        if !is_plain_name(collection) || collection.contains('\\') {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("collection name `{collection}` is not a plain folder name"),
            ));
        }
        Ok(self.root.join(collection))
    }

    /// A collection's folder, which must exist.
    fn existing_dir(&self, collection: &str) -> Result<PathBuf> {
        let dir = self.dir(collection)?;
        match fs::metadata(&dir) {
            Ok(meta) if meta.is_dir() => Ok(dir),
            Ok(_) => Err(Error::new(
                ErrorKind::Invalid,
                format!("{} is not a folder", dir.display()),
            )),
            Err(err) => Err(Error::io(dir.display(), err)),
        }
    }

    fn item_path(&self, dir: &Path, id: &str) -> Result<PathBuf> {
        if is_plain_name(id) {
            Ok(dir.join(id))
        } else {
            Err(Error::new(ErrorKind::Invalid, "not an item file name of this store").with_id(id))
        }
    }

    fn media_type(&self) -> &'static str {
        self.format.media_type()
    }

    /// True when `raw` is text in this store's own format.
    fn is_own_format(&self, raw: &Raw) -> bool {
        native::is_format(raw, self.format)
    }

    /// Marks a write through the store as under way (see [`Writing`]).
    fn writing(&self) -> Writing<'_> {
        Writing(&self.writes)
    }

    /// The root names kept by `collections()`, if still good to use; they
    /// are taken either way, so they serve one listing at most.
    fn take_root_names(&self) -> Option<RootNames> {
        let kept = self
            .root_names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        let fresh = kept.writes == self.writes.load(Ordering::Acquire)
            && kept.read_at.elapsed() < ROOT_NAMES_FRESH;
        fresh.then_some(kept)
    }

    /// The item file names in a folder, by one directory read. Only names
    /// are kept: a listing of 100k files must stay small, and each name
    /// becomes the item's id.
    fn read_item_names(&self, dir: &Path) -> Result<Vec<String>> {
        let read = fs::read_dir(dir).map_err(|err| Error::io(dir.display(), err))?;
        let mut names = Vec::new();
        for entry in read {
            let entry = entry.map_err(|err| Error::io(dir.display(), err))?;
            match entry.file_name().into_string() {
                Ok(name) if is_item_name(&name, &self.extension) => names.push(name),
                Ok(_) => {}
                Err(name) => warn_not_utf8(dir, &name),
            }
        }
        Ok(names)
    }

    fn list(&self, collection: &str) -> Result<Vec<Listed>> {
        let dir = self.dir(collection)?;
        let kept = if collection == ROOT {
            self.take_root_names()
        } else {
            None
        };
        let mut names = match kept {
            Some(kept) => {
                for name in &kept.not_utf8 {
                    warn_not_utf8(&dir, name);
                }
                kept.names
            }
            None => self.read_item_names(&dir)?,
        };
        let fd = rustix::fs::open(
            &dir,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|err| Error::io(dir.display(), err.into()))?;
        // The stats dominate (a few microseconds each, more under a
        // sandboxed kernel), so large folders are stat'ed on every core.
        let threads = if names.len() < PARALLEL_LIST_MIN {
            1
        } else {
            cores()
        };
        if threads == 1 {
            return stat_names(&fd, &dir, names);
        }
        let chunk = names.len().div_ceil(threads);
        let mut parts = Vec::new();
        while names.len() > chunk {
            let rest = names.split_off(chunk);
            parts.push(std::mem::replace(&mut names, rest));
        }
        parts.push(names);
        std::thread::scope(|scope| {
            let workers: Vec<_> = parts
                .into_iter()
                .map(|part| {
                    let (fd, dir) = (&fd, &dir);
                    scope.spawn(move || stat_names(fd, dir, part))
                })
                .collect();
            let mut listed = Vec::new();
            for worker in workers {
                let part = worker.join().map_err(|_| {
                    Error::new(
                        ErrorKind::Io,
                        format!("a thread listing {} panicked", dir.display()),
                    )
                })??;
                if listed.is_empty() {
                    listed = part;
                } else {
                    listed.extend(part);
                }
            }
            Ok(listed)
        })
    }

    /// Reads and parses one item file; `folder` is `dir` opened, when it
    /// could be, to open the file by its name in it.
    fn fetch_one(
        &self,
        dir: &Path,
        folder: Option<&rustix::fd::OwnedFd>,
        id: &str,
    ) -> std::result::Result<Item, ItemError> {
        let item_error = |kind, message: String| ItemError {
            id: id.to_string(),
            kind,
            field: None,
            message,
        };
        let path = self
            .item_path(dir, id)
            .map_err(|err| item_error(err.kind, err.message))?;
        let snapshot = match folder {
            Some(folder) => read_consistent_at(folder, id),
            None => read_consistent(&path),
        };
        let snapshot = snapshot.map_err(|err| {
            let kind = if err.kind() == io::ErrorKind::NotFound {
                ErrorKind::NotFound
            } else {
                ErrorKind::Io
            };
            item_error(kind, format!("{}: {err}", path.display()))
        })?;
        let text = String::from_utf8(snapshot.bytes).map_err(|err| {
            item_error(
                ErrorKind::Invalid,
                format!("{}: not UTF-8 text: {err}", path.display()),
            )
        })?;
        let mut record = native::parse_item(self.format, id, &path.display(), &text)?;
        if record.modified.is_none() {
            record.modified = file::modified_seconds(&snapshot.meta);
        }
        Ok(Item {
            id: id.to_string(),
            version: version_of(&snapshot.meta),
            record,
            raw: Some(Raw {
                media_type: self.media_type().to_string(),
                text,
            }),
        })
    }

    /// Writes a new item file; `Ok(None)` when a file of that name is there
    /// already (see [`Shared::existing`]).
    fn create(&self, collection: &str, uid: &str, text: &str) -> Result<Option<Written>> {
        let dir = self.dir(collection)?;
        let name = file::name_for_uid(uid, &self.extension);
        let folder = self.folders.get(&dir)?;
        let _writing = self.writing();
        self.dirty.store(true, Ordering::Release);
        // No look first: creating refuses to replace a file that is there.
        match file::create_new(&folder, &name, text, &self.creation) {
            Ok(stat) => Ok(Some(Written {
                id: name,
                version: version_from_stat(&stat),
            })),
            // The item is there already (or another writer created it).
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(err) => Err(Error::io(dir.join(&name).display(), err)),
        }
    }

    /// A create found the item's file already there: the same item makes the
    /// create a no-op, anything else is [`ErrorKind::AlreadyExists`].
    fn existing(&self, collection: &str, record: &Record, text: &str) -> Result<Written> {
        let name = &file::name_for_uid(&record.uid, &self.extension);
        let path = &self.existing_dir(collection)?.join(name);
        let snapshot = read_consistent(path).map_err(|err| Error::io(path.display(), err))?;
        let written = Written {
            id: name.to_string(),
            version: version_of(&snapshot.meta),
        };
        if snapshot.bytes == text.as_bytes() {
            return Ok(written);
        }
        let found = std::str::from_utf8(&snapshot.bytes)
            .map_err(|err| err.to_string())
            .and_then(|found| {
                tandem_formats::parse(self.format, found).map_err(|err| err.to_string())
            });
        let conflict = match found {
            Ok(found) if found.uid != record.uid => {
                format!(
                    "{} holds another item (UID `{}`)",
                    path.display(),
                    found.uid
                )
            }
            Ok(found) if found.same_content(record) => return Ok(written),
            Ok(found) => format!(
                "{} holds this UID with other content (fields {:?} differ)",
                path.display(),
                found.changed_fields(record)
            ),
            Err(err) => format!("{} exists and cannot be read: {err}", path.display()),
        };
        Err(Error::new(ErrorKind::AlreadyExists, conflict).with_id(name))
    }

    fn check_version(&self, path: &Path, id: &str, expected: &str) -> Result<()> {
        let meta = fs::metadata(path).map_err(|err| Error::io(path.display(), err).with_id(id))?;
        let actual = version_of(&meta);
        if actual == expected {
            Ok(())
        } else {
            Err(stale(path, id, expected, &actual))
        }
    }

    fn update(
        &self,
        collection: &str,
        current: &Item,
        expected: &str,
        changes: &[FieldChange],
    ) -> Result<Written> {
        let dir = self.dir(collection)?;
        let id = current.id.as_str();
        let path = self.item_path(&dir, id)?;
        self.check_version(&path, id, expected)?;
        let original = match &current.raw {
            Some(raw) if current.version == expected && self.is_own_format(raw) => raw.text.clone(),
            _ => {
                let snapshot =
                    read_consistent(&path).map_err(|err| Error::io(path.display(), err))?;
                let actual = version_of(&snapshot.meta);
                if actual != expected {
                    return Err(stale(&path, id, expected, &actual));
                }
                String::from_utf8(snapshot.bytes).map_err(|err| {
                    Error::new(
                        ErrorKind::Invalid,
                        format!("{}: not UTF-8 text: {err}", path.display()),
                    )
                    .with_id(id)
                })?
            }
        };
        let patched = tandem_formats::patch(self.format, &original, changes)
            .map_err(|err| native::format_error(&path.display(), err).with_id(id))?;
        let folder = self.folders.get(&dir)?;
        let _writing = self.writing();
        let (temp, stat) =
            file::write_temp(&folder, id, &patched).map_err(|err| Error::io(dir.display(), err))?;
        self.dirty.store(true, Ordering::Release);
        // Checked again right before the rename, which narrows the window in
        // which another writer's change could be overwritten to a few
        // instructions (a plain folder offers no compare-and-swap).
        if let Err(err) = self.check_version(&path, id, expected) {
            file::remove(&folder, &temp);
            return Err(err);
        }
        if let Err(err) = rustix::fs::renameat(&folder, temp.as_str(), &folder, id) {
            file::remove(&folder, &temp);
            return Err(Error::io(path.display(), err.into()).with_id(id));
        }
        Ok(Written {
            id: id.to_string(),
            version: version_from_stat(&stat),
        })
    }

    fn delete(&self, collection: &str, id: &str, expected: &str) -> Result<()> {
        let dir = self.dir(collection)?;
        let path = self.item_path(&dir, id)?;
        self.check_version(&path, id, expected)?;
        let _writing = self.writing();
        fs::remove_file(&path).map_err(|err| Error::io(path.display(), err).with_id(id))?;
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// The collections: the root and its subfolders. The item names seen
    /// on the way are kept for the root listing that follows (see
    /// [`RootNames`]).
    fn collections(&self) -> Result<Vec<String>> {
        let root = &self.root;
        let (read_at, writes) = (Instant::now(), self.writes.load(Ordering::Acquire));
        let entries = fs::read_dir(root).map_err(|err| Error::io(root.display(), err))?;
        let (mut names, mut items, mut not_utf8) = (Vec::new(), Vec::new(), Vec::new());
        for entry in entries {
            let entry = entry.map_err(|err| Error::io(root.display(), err))?;
            let name = match entry.file_name().into_string() {
                Ok(name) => name,
                Err(name) => {
                    not_utf8.push(name);
                    continue;
                }
            };
            if !is_plain_name(&name) {
                continue;
            }
            // The type comes with the directory entry (d_type), no stat.
            let is_dir = match entry.file_type() {
                Ok(t) if t.is_symlink() => fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()),
                Ok(t) => t.is_dir(),
                Err(err) => return Err(Error::io(entry.path().display(), err)),
            };
            // As `list` does, every item name is kept whatever its type:
            // the listing's stat leaves out what is not a file.
            match (is_dir, is_item_name(&name, &self.extension)) {
                (true, true) => {
                    items.push(name.clone());
                    names.push(name);
                }
                (true, false) => names.push(name),
                (false, true) => items.push(name),
                (false, false) => {}
            }
        }
        *self
            .root_names
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(RootNames {
            read_at,
            writes,
            names: items,
            not_utf8,
        });
        names.sort();
        names.insert(0, ROOT.to_string());
        Ok(names)
    }

    fn create_collection(&self, name: &str) -> Result<()> {
        let dir = self.dir(name)?;
        let _writing = self.writing();
        let made = if name == ROOT {
            fs::create_dir_all(&dir)
        } else {
            fs::create_dir(&dir)
        };
        match made {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            Err(err) => Err(Error::io(dir.display(), err)),
        }
    }

    /// Syncs the filesystem holding the root folder: one call for all the
    /// files written, where an fsync per file would cost a disk flush each.
    fn flush(&self) -> Result<()> {
        let _writing = self.writing();
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let synced = fs::File::open(&self.root).and_then(|dir| sync_filesystem(&dir));
        synced
            .map_err(|err| Error::io(self.root.display(), err))
            .and_then(|()| self.folders.check())
            .inspect_err(|_| self.dirty.store(true, Ordering::Release))
    }
}

/// The cores this process may run on (1 when that cannot be told): the
/// threads listing, reading and writing spread over them.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// One write thread per core, up to [`MAX_WRITE_THREADS`].
fn write_threads() -> usize {
    cores().min(MAX_WRITE_THREADS)
}

/// Opens a collection's folder for writing files in it; a missing folder is
/// [`ErrorKind::NotFound`], anything else than a folder [`ErrorKind::Invalid`].
fn open_folder(dir: &Path) -> Result<rustix::fd::OwnedFd> {
    file::open_dir(dir).map_err(|err| {
        if err.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) {
            Error::new(
                ErrorKind::Invalid,
                format!("{} is not a folder", dir.display()),
            )
        } else {
            Error::io(dir.display(), err)
        }
    })
}

fn warn_not_utf8(dir: &Path, name: &OsString) {
    tracing::warn!(dir = %dir.display(), ?name, "skipping a file whose name is not UTF-8");
}

#[cfg(target_os = "linux")]
fn sync_filesystem(dir: &fs::File) -> io::Result<()> {
    rustix::fs::syncfs(dir).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn sync_filesystem(dir: &fs::File) -> io::Result<()> {
    dir.sync_all()
}

/// The listing lines of item files found by a directory read: one `stat`
/// each, relative to the open directory; folders and vanished files are
/// skipped, symlinks followed.
/// Stats `names` relative to the open folder `fd` (following symlinks);
/// names that vanished meanwhile or are not regular files are left out.
fn stat_names(fd: &rustix::fd::OwnedFd, dir: &Path, names: Vec<String>) -> Result<Vec<Listed>> {
    let mut listed = Vec::with_capacity(names.len());
    for name in names {
        let stat = match rustix::fs::statat(fd, name.as_str(), rustix::fs::AtFlags::empty()) {
            Ok(stat) => stat,
            // Deleted between the directory read and the stat.
            Err(rustix::io::Errno::NOENT) => continue,
            Err(err) => return Err(Error::io(dir.join(&name).display(), err.into())),
        };
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile {
            listed.push(Listed {
                version: version_from_stat(&stat),
                id: name,
            });
        }
    }
    Ok(listed)
}

fn stale(path: &Path, id: &str, expected: &str, actual: &str) -> Error {
    Error::new(
        ErrorKind::PreconditionFailed,
        format!(
            "{} changed: expected version {expected}, found {actual}",
            path.display()
        ),
    )
    .with_id(id)
}

#[async_trait]
impl Store for VdirStore {
    async fn collections(&self) -> Result<Vec<String>> {
        self.blocking(|shared| shared.collections()).await
    }

    async fn create_collection(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.blocking(move |shared| shared.create_collection(&name))
            .await
    }

    async fn list(&self, collection: &str) -> Result<Vec<Listed>> {
        let collection = collection.to_string();
        self.blocking(move |shared| shared.list(&collection)).await
    }

    async fn fetch(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<std::result::Result<Item, ItemError>>> {
        let dir = self.shared.dir(collection)?;
        // The reads start before the folder is checked, so they are all
        // under way when this future is first polled (a caller may start a
        // fetch and attend to other work before awaiting it).
        // Spread the reads over the cores (parsing is CPU work), in a few
        // chunks per core so one slow chunk does not leave a core idle.
        let threads = cores();
        let chunk = ids.len().div_ceil(threads * 4).max(MIN_FETCH_CHUNK);
        let dir = Arc::new(dir);
        let tasks: Vec<_> = ids
            .chunks(chunk)
            .map(|chunk| {
                let chunk = chunk.to_vec();
                let dir = Arc::clone(&dir);
                let shared = Arc::clone(&self.shared);
                tokio::task::spawn_blocking(move || {
                    // A folder that cannot be opened fails each read
                    // below with the reason, by its path.
                    let folder = file::open_dir(&dir).ok();
                    chunk
                        .iter()
                        .map(|id| shared.fetch_one(&dir, folder.as_ref(), id))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let collection = collection.to_string();
        self.blocking(move |shared| shared.existing_dir(&collection))
            .await?;
        let mut fetched = Vec::with_capacity(ids.len());
        for task in tasks {
            let items = task
                .await
                .map_err(|err| Error::new(ErrorKind::Io, format!("a fetch task failed: {err}")))?;
            fetched.extend(items);
        }
        Ok(fetched)
    }

    async fn create(&self, collection: &str, item: &NewItem) -> Result<Written> {
        let text = native::text_to_create(self.shared.format, item)?;
        let (uid, folder) = (item.record.uid.clone(), collection.to_string());
        let (created, text) = self
            .writes
            .run(move |shared| Ok((shared.create(&folder, &uid, &text)?, text)))
            .await?;
        if let Some(written) = created {
            return Ok(written);
        }
        // Rare: only now is the whole record needed, to compare.
        let (record, collection) = (item.record.clone(), collection.to_string());
        self.blocking(move |shared| shared.existing(&collection, &record, &text))
            .await
    }

    async fn update(
        &self,
        collection: &str,
        current: &Item,
        expected: &str,
        changes: &[FieldChange],
    ) -> Result<Written> {
        let collection = collection.to_string();
        let current = current.clone();
        let expected = expected.to_string();
        let changes = changes.to_vec();
        self.writes
            .run(move |shared| shared.update(&collection, &current, &expected, &changes))
            .await
    }

    async fn delete(&self, collection: &str, id: &str, expected: &str) -> Result<()> {
        let collection = collection.to_string();
        let id = id.to_string();
        let expected = expected.to_string();
        self.writes
            .run(move |shared| shared.delete(&collection, &id, &expected))
            .await
    }

    async fn flush(&self) -> Result<()> {
        self.blocking(|shared| shared.flush()).await
    }

    fn concurrent_writes(&self) -> usize {
        CONCURRENT_WRITES
    }
}
