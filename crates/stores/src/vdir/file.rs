//! The item files of a vdir: how they are named, what their version is, how
//! they are read consistently and written atomically. Pure file mechanics;
//! the store in `mod.rs` decides what to write.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tandem_store::naming;

/// The file name for a new item with this UID: the UID itself when it is a
/// safe file name, else a name derived from a hash of the UID (shared with
/// the other stores that name items, see [`tandem_store::naming`]).
pub(super) fn name_for_uid(uid: &str, extension: &str) -> String {
    naming::name_for_uid(uid, extension, naming::is_safe_file_name)
}

/// True for a name that can be an item id or a collection name: a single
/// path component that is not hidden. Listings never show other names, so
/// other ids cannot exist in this store.
pub(super) fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\0'])
}

/// True for a listed file name that is an item file: not hidden (which also
/// skips our own temp files) and ending in `.<extension>`, in any case.
pub(super) fn is_item_name(name: &str, extension: &str) -> bool {
    if name.starts_with('.') || name.len() <= extension.len() + 1 {
        return false;
    }
    let (stem, ext) = name.split_at(name.len() - extension.len());
    stem.ends_with('.') && ext.eq_ignore_ascii_case(extension)
}

/// The version of a file: its modification time in nanoseconds, its size and
/// its inode. A rewrite in place changes the time (and usually the size); a
/// replacing rename changes the inode, so every write moves the version.
#[cfg(unix)]
pub(super) fn version_of(meta: &Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    version_text(meta.mtime(), meta.mtime_nsec(), meta.size(), meta.ino())
}

/// [`version_of`] for a raw `stat`, as the listing takes it. (The casts
/// are needed on platforms whose `stat` fields have other widths.)
#[allow(clippy::unnecessary_cast)]
pub(super) fn version_from_stat(stat: &rustix::fs::Stat) -> String {
    version_text(
        stat.st_mtime as i64,
        stat.st_mtime_nsec as i64,
        stat.st_size as u64,
        stat.st_ino as u64,
    )
}

fn version_text(mtime: i64, nsec: i64, size: u64, ino: u64) -> String {
    format!("{mtime}.{nsec:09}-{size}-{ino}")
}

#[cfg(not(unix))]
pub(super) fn version_of(meta: &Metadata) -> String {
    let nanos = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos}-{}", meta.len())
}

/// The modification time in whole seconds since the epoch.
pub(super) fn modified_seconds(meta: &Metadata) -> Option<i64> {
    let since = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    i64::try_from(since.as_secs()).ok()
}

/// A file's bytes and the metadata they belong to.
pub(super) struct Snapshot {
    pub bytes: Vec<u8>,
    pub meta: Metadata,
}

/// Reads a file and the metadata that goes with what was read: the open
/// file is stat'ed before and after reading, and read again if a writer
/// changed it in between. (A writer that replaces the file by renaming does
/// not disturb the open file; its old version is then reported, which later
/// guarded writes catch.)
pub(super) fn read_consistent(path: &Path) -> io::Result<Snapshot> {
    const ATTEMPTS: usize = 3;
    for _ in 0..ATTEMPTS {
        let mut file = File::open(path)?;
        let before = file.metadata()?;
        let mut bytes = Vec::with_capacity(usize::try_from(before.len()).unwrap_or(0) + 1);
        file.read_to_end(&mut bytes)?;
        let after = file.metadata()?;
        if version_of(&before) == version_of(&after) {
            return Ok(Snapshot { bytes, meta: after });
        }
    }
    Err(io::Error::other(format!(
        "the file changed while being read, {ATTEMPTS} times in a row"
    )))
}

/// Writes `text` to a new hidden temp file beside `dest` (same folder, so a
/// rename is atomic) and returns its path and metadata. A rename keeps the
/// file's modification time, size and inode, so the metadata is that of
/// `dest` once the temp file is moved there, with no further `stat`.
/// Listings skip the temp file: it starts with a dot, and it ends in `.tmp`.
pub(super) fn write_temp(dest: &Path, text: &str) -> io::Result<(PathBuf, Metadata)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dest.with_file_name(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.metadata()
        });
    match written {
        Ok(meta) => Ok((temp, meta)),
        Err(err) => {
            let _ = fs::remove_file(&temp);
            Err(err)
        }
    }
}

/// Moves a complete temp file to `dest` only if `dest` does not exist, so
/// two creators of one item never clobber each other: `renameat2` with
/// `RENAME_NOREPLACE` fails with `AlreadyExists` atomically where a plain
/// rename would silently replace, and costs one directory operation where
/// link + unlink cost two. Where the filesystem lacks it, a hard link does
/// the same; where that fails too, check-then-rename leaves a tiny race.
/// The temp file is gone afterwards either way.
pub(super) fn publish_new(temp: &Path, dest: &Path) -> io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, temp, CWD, dest, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(err) if err == rustix::io::Errno::EXIST => {
            let _ = fs::remove_file(temp);
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        Err(_) => {}
    }
    let result = match fs::hard_link(temp, dest) {
        Ok(()) => Ok(()),
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::AlreadyExists | io::ErrorKind::NotFound
            ) =>
        {
            Err(err)
        }
        Err(_) => match fs::symlink_metadata(dest) {
            Ok(_) => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return fs::rename(temp, dest).inspect_err(|_| {
                    let _ = fs::remove_file(temp);
                })
            }
            Err(err) => Err(err),
        },
    };
    let _ = fs::remove_file(temp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_uids_name_their_files() {
        assert_eq!(
            name_for_uid("ada-1@example.org", "vcf"),
            "ada-1@example.org.vcf"
        );
        assert_eq!(name_for_uid("with space", "ics"), "with space.ics");
        for unsafe_uid in [
            "",
            "../../etc/passwd",
            "a/b",
            "a\\b",
            "x\u{0}y",
            "tab\there",
            ".hidden",
            "a..b",
            &"x".repeat(201),
        ] {
            let name = name_for_uid(unsafe_uid, "vcf");
            assert_eq!(name.len(), 36, "{unsafe_uid:?} gave {name}");
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'));
            assert_eq!(name, name_for_uid(unsafe_uid, "vcf"), "deterministic");
        }
    }

    #[test]
    fn item_names_match_the_extension_only() {
        assert!(is_item_name("a.vcf", "vcf"));
        assert!(is_item_name("a.VCF", "vcf"));
        assert!(!is_item_name(".a.vcf", "vcf"));
        assert!(!is_item_name(".a.vcf.1-2.tmp", "vcf"));
        assert!(!is_item_name("a.ics", "vcf"));
        assert!(!is_item_name("avcf", "vcf"));
        assert!(!is_item_name(".vcf", "vcf"));
        assert!(!is_item_name("a.vcf~", "vcf"));
    }
}
