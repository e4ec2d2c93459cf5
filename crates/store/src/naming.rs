//! Names for new items derived from their UID, shared by every store that
//! names items itself (a vdir's file name, a DAV resource's href): the UID
//! when it is safe where the name goes, else a hash of it, so a create
//! retried after a crash lands on the name the first attempt used.

use sha2::{Digest, Sha256};

/// Longest UID used as a name as is (in bytes, before the extension).
pub const MAX_NAME_BYTES: usize = 200;

/// The name for a new item with this UID: `UID.extension` when `is_safe`
/// accepts the UID, else the first 128 bits of its SHA-256 in hex plus the
/// extension. Deterministic, so a retried create finds the same name.
pub fn name_for_uid(uid: &str, extension: &str, is_safe: impl Fn(&str) -> bool) -> String {
    if is_safe(uid) {
        format!("{uid}.{extension}")
    } else {
        let digest = Sha256::digest(uid.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("{hex}.{extension}")
    }
}

/// True when `uid` can be a file name in a folder and nowhere else: one
/// path component, not hidden, printable, free of invisible characters that
/// could disguise a name, and short.
pub fn is_safe_file_name(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= MAX_NAME_BYTES
        && !uid.starts_with('.')
        && !uid.contains("..")
        && uid.chars().all(|c| {
            c != '/'
                && c != '\\'
                && !c.is_control()
                && !is_invisible(c)
                && (c == ' ' || !c.is_whitespace())
        })
}

/// Zero-width and bidirectional formatting characters: a name holding them
/// shows as another name (`a\u{202e}fdp.exe` shows as `aexe.pdf`).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// True when `uid` can be the last segment of a URL path without escaping
/// and without surprising a server: ASCII letters, digits and `-._@+`, not
/// hidden, short.
pub fn is_safe_url_segment(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= MAX_NAME_BYTES
        && !uid.starts_with('.')
        && uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_uids_are_hashed_deterministically() {
        assert_eq!(
            name_for_uid("a-1@x.org", "vcf", is_safe_url_segment),
            "a-1@x.org.vcf"
        );
        let hashed = name_for_uid("a b/c", "ics", is_safe_url_segment);
        assert_eq!(hashed.len(), 36);
        assert_eq!(hashed, name_for_uid("a b/c", "ics", is_safe_url_segment));
        assert!(is_safe_file_name("with space"));
        assert!(!is_safe_url_segment("with space"));
        assert!(!is_safe_url_segment("..x"));
    }

    #[test]
    fn file_names_refuse_what_escapes_or_disguises() {
        let long = "u".repeat(MAX_NAME_BYTES + 1);
        for uid in [
            "",
            "..",
            "../x",
            "a/b",
            "a\\b",
            ".hidden",
            "nul\u{0}",
            "line\nbreak",
            "tab\tx",
            "esc\u{1b}",
            "rtl\u{202e}fdp.exe",
            "zero\u{200b}width",
            "bom\u{feff}",
            long.as_str(),
        ] {
            assert!(!is_safe_file_name(uid), "{uid:?}");
        }
        for uid in ["Ada", "ada", "a b", "ümlaut", "x@y.org", "a.b"] {
            assert!(is_safe_file_name(uid), "{uid:?}");
        }
    }
}
