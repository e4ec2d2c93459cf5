//! Store errors: a call-level [`Error`] with a [`ErrorKind`] callers branch
//! on, and a per-item [`ItemError`] that never stops a run.

use std::fmt;

/// What went wrong, coarse enough to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The item (or collection) does not exist.
    NotFound,
    /// The item changed since the version the caller expected.
    PreconditionFailed,
    /// An item with this UID exists already with other content.
    AlreadyExists,
    /// The store cannot do this (no change feed, read-only).
    Unsupported,
    /// The item or request is malformed (a parse error, a bad value).
    Invalid,
    /// The store could not be reached or answered with a passing fault.
    Unavailable,
    /// Local I/O failed.
    Io,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::PreconditionFailed => "precondition failed",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Io => "i/o error",
        }
    }
}

/// A failed store call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// The item concerned, when the call was about one item.
    pub id: Option<String>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            id: None,
        }
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    pub fn io(context: impl fmt::Display, err: std::io::Error) -> Self {
        let kind = if err.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::Io
        };
        Error::new(kind, format!("{context}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{}: {}: {}", id, self.kind.as_str(), self.message),
            None => write!(f, "{}: {}", self.kind.as_str(), self.message),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// One item that could not be read; the rest of the run goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{id}{}: {message}", field.as_ref().map(|f| format!(" (field {f})")).unwrap_or_default())]
pub struct ItemError {
    pub id: String,
    pub kind: ErrorKind,
    /// The field at fault, when one field is.
    pub field: Option<String>,
    pub message: String,
}

impl ItemError {
    pub fn invalid(id: impl Into<String>, message: impl Into<String>) -> Self {
        ItemError {
            id: id.into(),
            kind: ErrorKind::Invalid,
            field: None,
            message: message.into(),
        }
    }
}
