//! The item files of a vdir: how they are named, what their version is, how
//! they are read consistently and written atomically. Pure file mechanics;
//! the store in `mod.rs` decides what to write.

use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, Mode, OFlags, Stat};
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// `{mtime}.{nsec:09}-{size}-{ino}`, written without the formatting
/// machinery: a 100k-file listing makes one per file, and `format!` was a
/// fifth of the listing's CPU.
fn version_text(mtime: i64, nsec: i64, size: u64, ino: u64) -> String {
    let (mut a, mut b, mut c, mut d) = (
        itoa::Buffer::new(),
        itoa::Buffer::new(),
        itoa::Buffer::new(),
        itoa::Buffer::new(),
    );
    let (mtime, nsec, size, ino) = (
        a.format(mtime),
        b.format(nsec),
        c.format(size),
        d.format(ino),
    );
    let pad = 9usize.saturating_sub(nsec.len());
    let mut out =
        String::with_capacity(mtime.len() + pad + nsec.len() + size.len() + ino.len() + 3);
    out.push_str(mtime);
    out.push('.');
    out.extend(std::iter::repeat_n('0', pad));
    out.push_str(nsec);
    out.push('-');
    out.push_str(size);
    out.push('-');
    out.push_str(ino);
    out
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
    read_consistent_with(|| File::open(path))
}

/// [`read_consistent`] for the file `name` in the open folder `dir`: one
/// name looked up per file instead of the whole path.
pub(super) fn read_consistent_at(dir: &OwnedFd, name: &str) -> io::Result<Snapshot> {
    read_consistent_with(|| {
        let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        Ok(File::from(fd))
    })
}

fn read_consistent_with(open: impl Fn() -> io::Result<File>) -> io::Result<Snapshot> {
    const ATTEMPTS: usize = 3;
    for _ in 0..ATTEMPTS {
        let mut file = open()?;
        let before = file.metadata()?;
        let bytes = read_up_to(&mut file, before.len())?;
        let after = file.metadata()?;
        if version_of(&before) == version_of(&after) {
            return Ok(Snapshot { bytes, meta: after });
        }
    }
    Err(io::Error::other(format!(
        "the file changed while being read, {ATTEMPTS} times in a row"
    )))
}

/// The first `len` bytes of `file` (fewer if it ends sooner), in one read
/// for a small file. Reading stops at the size the metadata gave instead
/// of asking once more for the end of the file: a file that grew meanwhile
/// has another version, which the stat after the read sees.
fn read_up_to(file: &mut File, len: u64) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0; usize::try_from(len).unwrap_or(0)];
    let mut filled = 0;
    while filled < bytes.len() {
        match file.read(&mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    bytes.truncate(filled);
    Ok(bytes)
}

/// Mode of new item files before the umask, as `std::fs::write` and every
/// editor give them (0644 under the usual umask 022).
const FILE_MODE: u32 = 0o666;

/// Opens a collection's folder, to create and rename item files in it by
/// names relative to it: one path walk per write instead of one per step.
pub(super) fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// What a store has learnt about creating files in its folders, so that
/// later creates go straight to the way that works there.
#[derive(Debug, Default)]
pub(super) struct Creation {
    /// Anonymous files (`O_TMPFILE`), or linking them into a folder, are not
    /// supported here: create through a named temp file and a rename.
    pub(super) rename_only: AtomicBool,
    /// `linkat(AT_EMPTY_PATH)` is refused (older kernels allow it only with
    /// `CAP_DAC_READ_SEARCH`): link through `/proc/self/fd` instead.
    pub(super) link_by_proc: AtomicBool,
}

/// Writes a new file `name` holding `text` into the open folder `dir`, only
/// if no file of that name is there: otherwise fails with `AlreadyExists`
/// and leaves the existing file untouched. Returns the new file's `stat`,
/// which is its metadata as published: linking and renaming keep its
/// modification time, size and inode, so no further `stat` is needed.
///
/// The file appears complete or not at all, and no temp file is left
/// behind. On Linux it is written as an anonymous file (`O_TMPFILE`) and
/// then linked under its name: one directory operation, and `linkat`
/// refuses an existing name atomically. A crash before the link leaves
/// nothing visible (the kernel frees the orphan). Where that is not
/// supported, a hidden temp file is renamed into place (see
/// [`publish_new`]), and `creation` remembers to go that way from then on.
pub(super) fn create_new(
    dir: &OwnedFd,
    name: &str,
    text: &str,
    creation: &Creation,
) -> io::Result<Stat> {
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = creation;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if !creation.rename_only.load(Ordering::Relaxed) {
        match create_anonymous(dir, name, text, creation) {
            Some(done) => return done,
            None => creation.rename_only.store(true, Ordering::Relaxed),
        }
    }
    let (temp, stat) = write_temp(dir, name, text)?;
    publish_new(dir, &temp, name)?;
    Ok(stat)
}

/// [`create_new`] through an anonymous file; `None` when this folder's file
/// system or the kernel does not support it, before anything is visible.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn create_anonymous(
    dir: &OwnedFd,
    name: &str,
    text: &str,
    creation: &Creation,
) -> Option<io::Result<Stat>> {
    use rustix::fs::{linkat, AtFlags, CWD};
    use rustix::io::Errno;
    use std::os::fd::AsRawFd;

    // Kernels without O_TMPFILE see O_DIRECTORY|O_WRONLY and say EISDIR;
    // file systems without it say EOPNOTSUPP.
    let fd = match rustix::fs::openat(
        dir,
        c".",
        OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
        Mode::from_raw_mode(FILE_MODE),
    ) {
        Ok(fd) => fd,
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => return None,
        Err(err) => return Some(Err(err.into())),
    };
    let mut file = File::from(fd);
    let stat = match file
        .write_all(text.as_bytes())
        .and_then(|()| rustix::fs::fstat(&file).map_err(io::Error::from))
    {
        Ok(stat) => stat,
        Err(err) => return Some(Err(err)),
    };
    let exists = || Some(Err(io::Error::from(io::ErrorKind::AlreadyExists)));
    if !creation.link_by_proc.load(Ordering::Relaxed) {
        match linkat(&file, c"", dir, name, AtFlags::EMPTY_PATH) {
            Ok(()) => return Some(Ok(stat)),
            Err(Errno::EXIST) => return exists(),
            // Not permitted to this process: try the /proc way below.
            Err(Errno::NOENT | Errno::PERM) => creation.link_by_proc.store(true, Ordering::Relaxed),
            Err(err) => return Some(Err(err.into())),
        }
    }
    let by_proc = format!("/proc/self/fd/{}", file.as_raw_fd());
    match linkat(CWD, by_proc.as_str(), dir, name, AtFlags::SYMLINK_FOLLOW) {
        Ok(()) => Some(Ok(stat)),
        Err(Errno::EXIST) => exists(),
        // No /proc, or a file system that cannot link: the anonymous file
        // goes away with its descriptor and the caller takes the other way.
        Err(Errno::NOENT | Errno::PERM | Errno::OPNOTSUPP | Errno::INVAL | Errno::XDEV) => None,
        Err(err) => Some(Err(err.into())),
    }
}

/// Writes `text` to a new hidden temp file for `name` in the open folder
/// `dir` (same folder, so a rename is atomic) and returns its name and
/// `stat`, which a rename keeps (see [`create_new`]). Listings skip the
/// temp file: it starts with a dot, and it ends in `.tmp`.
pub(super) fn write_temp(dir: &OwnedFd, name: &str, text: &str) -> io::Result<(String, Stat)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let temp = format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let fd = rustix::fs::openat(
        dir,
        temp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
        Mode::from_raw_mode(FILE_MODE),
    )?;
    let mut file = File::from(fd);
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| rustix::fs::fstat(&file).map_err(io::Error::from));
    match written {
        Ok(stat) => Ok((temp, stat)),
        Err(err) => {
            remove(dir, &temp);
            Err(err)
        }
    }
}

/// Removes a temp file of ours, if it is there.
pub(super) fn remove(dir: &OwnedFd, name: &str) {
    let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
}

/// Moves a complete temp file to `dest` (both in the open folder `dir`) only
/// if `dest` does not exist, so two creators of one item never clobber each
/// other: `renameat2` with `RENAME_NOREPLACE` fails with `AlreadyExists`
/// atomically where a plain rename would silently replace, and costs one
/// directory operation where link + unlink cost two. Where the filesystem
/// lacks it, a hard link does the same; where that fails too,
/// check-then-rename leaves a tiny race. The temp file is gone afterwards
/// either way.
pub(super) fn publish_new(dir: &OwnedFd, temp: &str, dest: &str) -> io::Result<()> {
    use rustix::fs::{linkat, renameat, renameat_with, statat, RenameFlags};
    use rustix::io::Errno;
    let exists = || io::Error::from(io::ErrorKind::AlreadyExists);
    match renameat_with(dir, temp, dir, dest, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(Errno::EXIST) => {
            remove(dir, temp);
            return Err(exists());
        }
        Err(_) => {}
    }
    let result = match linkat(dir, temp, dir, dest, AtFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) => Err(exists()),
        Err(Errno::NOENT) => Err(io::Error::from(io::ErrorKind::NotFound)),
        Err(_) => match statat(dir, dest, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Err(exists()),
            Err(Errno::NOENT) => {
                return renameat(dir, temp, dir, dest).map_err(|err| {
                    remove(dir, temp);
                    err.into()
                })
            }
            Err(err) => Err(err.into()),
        },
    };
    remove(dir, temp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_text_pads_the_nanoseconds() {
        for (mtime, nsec, size, ino) in [
            (1_700_000_000, 5, 400, 123),
            (1_700_000_000, 999_999_999, 0, u64::MAX),
            (-86_400, 0, u64::MAX, 1),
            (0, 120_000_000, 7, 0),
        ] {
            assert_eq!(
                version_text(mtime, nsec, size, ino),
                format!("{mtime}.{nsec:09}-{size}-{ino}")
            );
        }
    }

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
    fn a_file_read_by_name_in_its_folder_reads_as_by_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = "BEGIN:VCARD\r\nUID:a\r\nEND:VCARD\r\n".repeat(300);
        std::fs::write(dir.path().join("a.vcf"), &text).expect("write");
        let folder = open_dir(dir.path()).expect("open folder");
        let by_name = read_consistent_at(&folder, "a.vcf").expect("read by name");
        let by_path = read_consistent(&dir.path().join("a.vcf")).expect("read by path");
        assert_eq!(by_name.bytes, text.as_bytes());
        assert_eq!(by_path.bytes, text.as_bytes());
        assert_eq!(version_of(&by_name.meta), version_of(&by_path.meta));
        let missing = read_consistent_at(&folder, "b.vcf")
            .err()
            .expect("no such file");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    /// The read stops at the size the stat gave; a file that grew or shrank
    /// meanwhile has another version, which the stat after the read sees.
    #[test]
    fn reads_stop_at_the_size_given() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a.vcf");
        std::fs::write(&path, "0123456789").expect("write");
        for (len, expected) in [(0, ""), (4, "0123"), (10, "0123456789"), (20, "0123456789")] {
            let mut file = File::open(&path).expect("open");
            let bytes = read_up_to(&mut file, len).expect("read");
            assert_eq!(bytes, expected.as_bytes(), "{len}");
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
