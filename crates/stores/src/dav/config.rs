//! The user's settings for one CardDAV or CalDAV store, and the secret they
//! name, read once when the store opens and never shown.

use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;

/// A CardDAV (`type = "carddav"`) or CalDAV (`type = "caldav"`) store.
///
/// ```toml
/// url = "https://dav.example.org/"
/// username = "ada"
/// password_env = "DAV_PASSWORD"
/// collections = ["work"]
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DavConfig {
    /// A server root, a principal or one collection. A collection becomes
    /// the root collection; otherwise the home set is discovered and its
    /// collection named `default` is the root collection.
    pub url: String,
    /// The user name for HTTP Basic authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// An environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// A file whose first line is the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A shell command printing the password on its first line.
    #[serde(default)]
    pub password_cmd: Option<String>,
    /// An environment variable holding a bearer token (instead of a user
    /// name and password).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Which collections of the home set to sync, by name; all when unset.
    #[serde(default)]
    pub collections: Option<Vec<String>>,
    /// Create a collection that is missing on this server (MKCOL /
    /// MKCALENDAR). Off by default: a missing collection is an error.
    #[serde(default)]
    pub create_collections: bool,
    /// Requests in flight at once, over keep-alive connections.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds one request may take before it is abandoned (and retried).
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Retries of a request answered 5xx, 429 or 423, or that failed to connect
    /// or timed out, with growing waits (or the server's `Retry-After`).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// A PEM file of certificate authorities trusted besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allow plain `http://` to hosts other than the loopback.
    #[serde(default)]
    pub insecure_http: bool,
}

fn default_max_connections() -> usize {
    4
}

fn default_timeout() -> u64 {
    30
}

fn default_retries() -> u32 {
    4
}

impl DavConfig {
    /// A config for `url` with every other key at its default.
    pub fn new(url: impl Into<String>) -> DavConfig {
        DavConfig {
            url: url.into(),
            username: None,
            password_env: None,
            password_file: None,
            password_cmd: None,
            token_env: None,
            collections: None,
            create_collections: false,
            max_connections: default_max_connections(),
            timeout: default_timeout(),
            retries: default_retries(),
            ca_file: None,
            insecure_http: false,
        }
    }
}

// Names where the secret comes from, never the secret (there is none here).
impl fmt::Debug for DavConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DavConfig")
            .field("url", &redact_url(&self.url))
            .field("username", &self.username)
            .field("password_env", &self.password_env)
            .field("password_file", &self.password_file)
            .field(
                "password_cmd",
                &self.password_cmd.as_ref().map(|_| "<command>"),
            )
            .field("token_env", &self.token_env)
            .field("collections", &self.collections)
            .field("create_collections", &self.create_collections)
            .field("max_connections", &self.max_connections)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("ca_file", &self.ca_file)
            .field("insecure_http", &self.insecure_http)
            .finish()
    }
}

/// `url` with its user information (`user:password@`), if any, shown as
/// `***@`: a URL may be printed, a password in it never.
pub fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |at| at + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |at| start + at);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_string(),
    }
}

/// A password or token: shown as `<redacted>` by `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

/// Why the credentials could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("set only one of password_env, password_file and password_cmd")]
    SeveralPasswords,
    #[error("token_env excludes username and the password keys")]
    TokenWithPassword,
    #[error("a password key needs `username`")]
    PasswordWithoutUser,
    #[error("`username` needs one of password_env, password_file or password_cmd")]
    UserWithoutPassword,
    #[error("environment variable `{0}` is not set")]
    MissingEnv(String),
    #[error("cannot read password_file {path}: {message}")]
    File { path: String, message: String },
    #[error("password_cmd failed: {0}")]
    Command(String),
    #[error("the {0} is empty")]
    Empty(&'static str),
}

impl DavConfig {
    /// Reads the secret the config names (environment, file or command).
    pub fn credentials(&self) -> Result<Credentials, CredentialsError> {
        let sources = [
            self.password_env.is_some(),
            self.password_file.is_some(),
            self.password_cmd.is_some(),
        ]
        .iter()
        .filter(|set| **set)
        .count();
        if let Some(var) = &self.token_env {
            if sources > 0 || self.username.is_some() {
                return Err(CredentialsError::TokenWithPassword);
            }
            let token =
                std::env::var(var).map_err(|_| CredentialsError::MissingEnv(var.clone()))?;
            return non_empty(token.trim(), "token").map(|t| Credentials::Bearer(Secret::new(t)));
        }
        if sources > 1 {
            return Err(CredentialsError::SeveralPasswords);
        }
        let Some(username) = &self.username else {
            return if sources == 0 {
                Ok(Credentials::None)
            } else {
                Err(CredentialsError::PasswordWithoutUser)
            };
        };
        let password = if let Some(var) = &self.password_env {
            std::env::var(var).map_err(|_| CredentialsError::MissingEnv(var.clone()))?
        } else if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path).map_err(|err| CredentialsError::File {
                path: path.display().to_string(),
                message: err.to_string(),
            })?;
            text.lines().next().unwrap_or_default().to_string()
        } else if let Some(cmd) = &self.password_cmd {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::inherit())
                .output()
                .map_err(|err| CredentialsError::Command(err.to_string()))?;
            if !out.status.success() {
                return Err(CredentialsError::Command(format!(
                    "exited with {}",
                    out.status
                )));
            }
            let text = String::from_utf8(out.stdout)
                .map_err(|_| CredentialsError::Command("printed no UTF-8 text".into()))?;
            text.lines().next().unwrap_or_default().to_string()
        } else {
            return Err(CredentialsError::UserWithoutPassword);
        };
        let password = non_empty(password.trim_end_matches(['\r', '\n']), "password")?;
        Ok(Credentials::Basic {
            username: username.clone(),
            password: Secret::new(password),
        })
    }
}

fn non_empty(s: &str, what: &'static str) -> Result<String, CredentialsError> {
    if s.is_empty() {
        Err(CredentialsError::Empty(what))
    } else {
        Ok(s.to_string())
    }
}
