//! A tiny scenario language over the real `tandem` binary and real vdir
//! folders: put files on a side, run a command, look at the folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Scenario {
    pub dir: tempfile::TempDir,
}

/// A vCard 3.0 with a UID and the given content lines.
pub fn card(uid: &str, lines: &[&str]) -> String {
    let mut s = format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\n");
    for l in lines {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s.push_str("END:VCARD\r\n");
    s
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Scenario {
    /// Two vdir stores `a` and `b` and one pair `p` of `kind`; `extra` is
    /// appended to the pair's table.
    pub fn new(kind: &str, extra: &str) -> Scenario {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("a")).expect("mkdir a");
        std::fs::create_dir_all(dir.path().join("b")).expect("mkdir b");
        let s = Scenario { dir };
        s.config(kind, extra);
        s
    }

    pub fn config(&self, kind: &str, extra: &str) {
        let text = format!(
            "[stores.a]\ntype = \"vdir\"\npath = \"a\"\n\n[stores.b]\ntype = \"vdir\"\npath = \"b\"\n\n[[pairs]]\nname = \"p\"\na = \"a\"\nb = \"b\"\nkind = \"{kind}\"\n{extra}\n"
        );
        std::fs::write(self.dir.path().join("tandem.toml"), text).expect("write config");
    }

    pub fn path(&self, side: &str, file: &str) -> PathBuf {
        self.dir.path().join(side).join(file)
    }

    pub fn put(&self, side: &str, file: &str, text: &str) {
        let p = self.path(side, file);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, text).expect("write item");
    }

    pub fn read(&self, side: &str, file: &str) -> String {
        std::fs::read_to_string(self.path(side, file))
            .unwrap_or_else(|e| panic!("read {side}/{file}: {e}"))
    }

    pub fn exists(&self, side: &str, file: &str) -> bool {
        self.path(side, file).exists()
    }

    pub fn remove(&self, side: &str, file: &str) {
        std::fs::remove_file(self.path(side, file)).expect("remove item");
    }

    /// Item files on a side (top folder), sorted.
    pub fn files(&self, side: &str) -> Vec<String> {
        files_in(&self.dir.path().join(side))
    }

    pub fn tandem(&self, args: &[&str]) -> Run {
        self.tandem_env(args, &[])
    }

    pub fn tandem_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tandem"));
        cmd.current_dir(self.dir.path()).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run tandem").into()
    }

    /// `tandem sync`, which must exit 0.
    pub fn sync(&self) -> Run {
        let run = self.tandem(&["sync"]);
        assert_eq!(run.code, 0, "sync failed: {run:?}");
        run
    }
}

pub fn files_in(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The value of the first property line starting with `prop` (e.g. "TITLE").
pub fn prop(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.trim_end_matches('\r');
        let (head, value) = l.split_once(':')?;
        let key = head.split(';').next()?;
        (key.eq_ignore_ascii_case(name)).then(|| value.to_string())
    })
}

/// Every value of a property, sorted.
pub fn props(text: &str, name: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let l = l.trim_end_matches('\r');
            let (head, value) = l.split_once(':')?;
            let key = head.split(';').next()?;
            key.eq_ignore_ascii_case(name).then(|| value.to_string())
        })
        .collect();
    v.sort();
    v
}
