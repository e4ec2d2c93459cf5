//! The first-sync floor under the vdir store's own write rules: copies every
//! file of SRC into DST the way Tandem must create one, and does nothing else.
//!
//! Each file is read whole, written under a temporary name in DST and
//! renamed into place (an atomic create). Writer threads (two by default,
//! as Tandem's vdir store has on two cores) share the files; whenever
//! `--every` more files are written, a thread of its own flushes the file
//! system (`syncfs`) while the writers go on, and the copy ends with one
//! more flush: what Tandem does before it records a batch. No parsing and
//! no state, so a sync's first run can't be faster than this on the same
//! machine; `cp -r` pays neither for the renames nor for the flushes.
//!
//!     rustc -O --edition 2021 bench/atomic_copy.rs -o atomic_copy
//!     atomic_copy SRC DST [--every N] [--threads T]    (N = 1000, T = 2)
//!
//! `--every 0` flushes only at the end. Standard library only, so the
//! bench script builds it with `rustc` alone.

use std::ffi::{c_int, OsString};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

extern "C" {
    /// Linux `syncfs(2)`: writes back everything of the file system that
    /// holds `fd`.
    fn syncfs(fd: c_int) -> c_int;
}

fn flush(dir: &File) -> io::Result<()> {
    // SAFETY: `dir` is an open descriptor for the whole call.
    if unsafe { syncfs(dir.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads `src` and creates it as `dst/name` by way of a temporary name.
fn copy_one(src: &Path, dst: &Path, name: &OsString) -> io::Result<()> {
    let bytes = fs::read(src)?;
    let mut temp_name = OsString::from(".");
    temp_name.push(name);
    temp_name.push(".tmp");
    let temp = dst.join(&temp_name);
    let mut file = File::create_new(&temp)?;
    file.write_all(&bytes)?;
    drop(file);
    fs::rename(&temp, dst.join(name))
}

fn copy_all(src: &Path, dst: &Path, every: u64, threads: usize) -> io::Result<()> {
    fs::create_dir_all(dst)?;
    let dir = File::open(dst)?;
    let mut files: Vec<(PathBuf, OsString)> = Vec::new();
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            files.push((entry.path(), entry.file_name()));
        }
    }
    let next = AtomicUsize::new(0);
    let written = AtomicU64::new(0);
    let writing = AtomicBool::new(true);
    thread::scope(|scope| -> io::Result<()> {
        let flusher = scope.spawn(|| -> io::Result<()> {
            let mut flushed_at = 0;
            while writing.load(Ordering::Acquire) {
                let now = written.load(Ordering::Acquire);
                if every > 0 && now - flushed_at >= every {
                    flushed_at = now;
                    flush(&dir)?;
                } else {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            Ok(())
        });
        let writers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> io::Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((path, name)) = files.get(i) else {
                            return Ok(());
                        };
                        copy_one(path, dst, name)?;
                        written.fetch_add(1, Ordering::Release);
                    }
                })
            })
            .collect();
        let mut result = Ok(());
        for writer in writers {
            result = result.and(writer.join().expect("a writer panicked"));
        }
        writing.store(false, Ordering::Release);
        result.and(flusher.join().expect("the flusher panicked"))
    })?;
    flush(&dir)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        eprintln!("usage: atomic_copy SRC DST [--every N] [--threads T]");
        ExitCode::from(2)
    };
    let [src, dst, options @ ..] = args.as_slice() else {
        return usage();
    };
    let (mut every, mut threads) = (1000u64, 2usize);
    for option in options.chunks(2) {
        match option {
            [flag, n] if flag == "--every" => match n.parse() {
                Ok(n) => every = n,
                Err(_) => return usage(),
            },
            [flag, n] if flag == "--threads" => match n.parse() {
                Ok(n) if n > 0 => threads = n,
                _ => return usage(),
            },
            _ => return usage(),
        }
    }
    match copy_all(Path::new(src), Path::new(dst), every, threads) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("atomic_copy: {err}");
            ExitCode::FAILURE
        }
    }
}
