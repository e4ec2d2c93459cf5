//! Test support: real Radicale and Xandikos servers, each started on a free
//! 127.0.0.1 port with a temporary storage folder and stopped when dropped.
//!
//! The servers come from the Python virtualenv `.ci/run` builds:
//! `$TANDEM_VENV/bin`, else `~/.cache/tandem/venv/bin`. A missing server is
//! a test failure naming the fix; only outside CI, with `TANDEM_SKIP_DAV=1`
//! set on purpose, does [`Server::start`] return `None` (and say so on
//! stderr) so the caller can skip.

use super::{DavConfig, DavStore, Protocol};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tandem_record::Kind;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Radicale,
    Xandikos,
}

/// A running server; stopped (and its storage removed) on drop.
pub struct Server {
    pub kind: ServerKind,
    pub port: u16,
    child: Child,
    storage: tempfile::TempDir,
}

/// The user tests authenticate as (Radicale takes any name with
/// `auth type = none`; Xandikos ignores credentials).
pub const USER: &str = "user";

/// The virtualenv holding the servers.
pub fn venv() -> PathBuf {
    if let Some(venv) = std::env::var_os("TANDEM_VENV").filter(|v| !v.is_empty()) {
        return PathBuf::from(venv);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/tandem/venv")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

impl Server {
    /// Starts a server, or panics saying why. `None` only when skipping was
    /// asked for outside CI (see the module docs).
    pub fn start(kind: ServerKind) -> Option<Server> {
        let name = match kind {
            ServerKind::Radicale => "radicale",
            ServerKind::Xandikos => "xandikos",
        };
        let bin = venv().join("bin").join(name);
        if !bin.exists() {
            let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
            let skip = std::env::var("TANDEM_SKIP_DAV").is_ok_and(|v| v == "1");
            if skip && !in_ci {
                eprintln!(
                    "SKIPPING DAV TEST: {} not found and TANDEM_SKIP_DAV=1",
                    bin.display()
                );
                return None;
            }
            panic!(
                "{} not found: build the test virtualenv with `bash .ci/run` (or set TANDEM_VENV)",
                bin.display()
            );
        }
        let storage = tempfile::TempDir::new().expect("server storage folder");
        let port = free_port();
        let mut command = Command::new(&bin);
        match kind {
            ServerKind::Radicale => command
                .arg("--config")
                .arg("")
                .arg("--server-hosts")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--storage-filesystem-folder")
                .arg(storage.path())
                .arg("--auth-type")
                .arg("none")
                .arg("--logging-level")
                .arg("error"),
            ServerKind::Xandikos => command
                .arg("serve")
                .arg("-d")
                .arg(storage.path())
                .arg("-l")
                .arg("127.0.0.1")
                .arg("-p")
                .arg(port.to_string())
                .arg("--autocreate")
                .arg("--no-detect-systemd"),
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", bin.display()));
        let mut server = Server {
            kind,
            port,
            child,
            storage,
        };
        server.wait_until_up();
        Some(server)
    }

    fn wait_until_up(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{:?} exited at start with {status}", self.kind);
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{:?} did not listen on port {} within 30 s",
            self.kind, self.port
        );
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The home set path for `protocol`, ending in `/`.
    pub fn home(&self, protocol: Protocol) -> String {
        match (self.kind, protocol) {
            (ServerKind::Radicale, _) => format!("/{USER}/"),
            (ServerKind::Xandikos, Protocol::CardDav) => format!("/{USER}/contacts/"),
            (ServerKind::Xandikos, Protocol::CalDav) => format!("/{USER}/calendars/"),
        }
    }

    /// The URL of a collection `name` for `protocol` (it need not exist).
    pub fn collection_url(&self, protocol: Protocol, name: &str) -> String {
        format!("{}{}{name}/", self.base(), self.home(protocol))
    }

    /// The server's storage folder.
    pub fn storage(&self) -> &Path {
        self.storage.path()
    }

    /// A config for `url` with test credentials (`password_cmd`).
    pub fn config(&self, url: String) -> DavConfig {
        let mut config = DavConfig::new(url);
        config.username = Some(USER.to_string());
        config.password_cmd = Some("echo test-secret".to_string());
        config.create_collections = true;
        config.timeout = 20;
        config
    }

    /// A store on the collection `name` (created when missing, on first
    /// write) for records of `kind`.
    pub fn store(&self, kind: Kind, name: &str) -> DavStore {
        let protocol = Protocol::for_kind(kind);
        DavStore::new(
            self.config(self.collection_url(protocol, name)),
            protocol,
            kind,
        )
        .expect("open a test DAV store")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
