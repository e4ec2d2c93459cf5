//! The user's settings for one CSV store, as read from the pair's config.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A CSV file with a header row, one record per row.
///
/// ```toml
/// path = "contacts.csv"
/// id = "id"
/// columns = { given_name = "First name", family_name = "Last name", emails = "E-mail" }
/// delimiter = ";"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// The file. A missing file is created (with a header row of the id and
    /// mapped columns) on first write.
    pub path: PathBuf,
    /// The column holding each row's id; unless `uid` is mapped in
    /// `columns`, also the record's UID.
    #[serde(default = "default_id")]
    pub id: String,
    /// Record field → column header. Columns not named here survive every
    /// rewrite as they were.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Columns whose cells hold JSON (lists keep each email's and phone's
    /// type); other columns hold plain text, lists separated by commas.
    #[serde(default)]
    pub json: Vec<String>,
    /// The field separator, one ASCII character.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// The quote character, one ASCII character.
    #[serde(default = "default_quote")]
    pub quote: char,
}

fn default_id() -> String {
    "id".to_string()
}

fn default_delimiter() -> char {
    ','
}

fn default_quote() -> char {
    '"'
}
