//! The one error this crate returns, and the guard that turns a panic inside
//! the calcard parser or writer into that error instead of a crashed run.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Why an item could not be parsed, rendered or patched.
///
/// `field` names the record field at fault when there is one (`"birthday"`,
/// `"overrides"`); `message` names the native property or line at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.field, .message))]
pub struct FormatError {
    pub field: Option<String>,
    pub message: String,
}

fn describe(field: &Option<String>, message: &str) -> String {
    match field {
        Some(field) => format!("field `{field}`: {message}"),
        None => message.to_string(),
    }
}

impl FormatError {
    /// An error about the item as a whole.
    pub fn new(message: impl Into<String>) -> Self {
        FormatError {
            field: None,
            message: message.into(),
        }
    }

    /// An error about one record field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        FormatError {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

/// Runs a calcard call so that a panic inside it becomes a [`FormatError`].
///
/// calcard is a third-party parser we do not fuzz ourselves; one hostile item
/// must fail on its own and never take the whole sync run down with it.
pub(crate) fn shielded<T>(what: &str, call: impl FnOnce() -> T) -> Result<T, FormatError> {
    catch_unwind(AssertUnwindSafe(call))
        .map_err(|_| FormatError::new(format!("{what}: the calcard library panicked")))
}

/// Every entry calcard finds in `text` (lines it cannot read are skipped),
/// read under [`shielded`]; the vCard and iCalendar readers both start here.
pub(crate) fn read_entries(what: &str, text: &str) -> Result<Vec<calcard::Entry>, FormatError> {
    shielded(what, || {
        let mut parser = calcard::Parser::new(text);
        let mut found = Vec::new();
        loop {
            match parser.entry() {
                calcard::Entry::Eof => break,
                calcard::Entry::InvalidLine(_) => continue,
                other => found.push(other),
            }
        }
        found
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_field() {
        let e = FormatError::field("birthday", "BDAY: invalid date `1985-13-40`");
        assert_eq!(
            e.to_string(),
            "field `birthday`: BDAY: invalid date `1985-13-40`"
        );
        assert_eq!(FormatError::new("no UID").to_string(), "no UID");
    }

    #[test]
    fn panics_become_errors() {
        let r: Result<(), _> = shielded("parsing", || panic!("boom"));
        assert!(r.unwrap_err().message.contains("panicked"));
    }
}
