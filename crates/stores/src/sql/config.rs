//! The user's settings for one SQL store, as read from the pair's config.

use serde::Deserialize;
use std::collections::BTreeMap;

/// A database reached by URL, one table per kind of record.
///
/// ```toml
/// url = "postgres://127.0.0.1/crm"
///
/// [tables.contact]
/// table = "contacts"
/// id = "id"
/// version = "updated_at"
/// deleted = "deleted_at"
/// columns = { given_name = "first_name", family_name = "last_name", emails = "email" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    /// `sqlite:crm.db` (a file; `?mode=rwc` creates it), `postgres://…` or
    /// `mysql://…` (MySQL and MariaDB).
    pub url: String,
    /// One table per kind: `contact`, `event` or `task`.
    pub tables: BTreeMap<String, TableConfig>,
}

/// Where one kind of record lives.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The table, optionally schema-qualified (`crm.contacts`; not on SQLite).
    pub table: String,
    /// The primary key column. Its value, as text, is the item's id and,
    /// unless `uid` is mapped in `columns`, the record's UID.
    pub id: String,
    /// A column that changes on every write: an integer (Tandem writes one
    /// more than the table's highest) or a timestamp (Tandem writes the
    /// current time). Index it: changes are found through it.
    pub version: String,
    /// A soft-delete column: a row is deleted when it is not NULL (or true,
    /// for a boolean). Without it, deletes remove the row.
    #[serde(default)]
    pub deleted: Option<String>,
    /// Record field → column. Fields not named here are not synced to this
    /// table; columns not named here are never written.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}
