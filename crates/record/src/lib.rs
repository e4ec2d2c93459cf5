//! The canonical record: the one shape every store's items are read into and
//! every plan is computed on. No I/O lives here.
//!
//! A [`Record`] is a kind, a UID and a map of named fields holding typed
//! [`Value`]s. Multi-valued fields (emails, phones, categories, attendees)
//! are [`Value::List`]s compared as sets; nested records (an address, an
//! attendee, an order line, a recurrence override) are [`Value::Map`]s.
//! Custom fields are named `custom.<name>`.
//!
//! ```
//! use tandem_record::{Kind, Record, Value};
//! let mut a = Record::new(Kind::Contact, "uid-1");
//! a.set("given_name", Value::text("Ada"));
//! a.set("emails", Value::List(vec![Value::text("ada@example.org")]));
//! let mut b = a.clone();
//! b.set("title", Value::text("Engineer"));
//! assert_eq!(a.changed_fields(&b), vec!["title".to_string()]);
//! assert_ne!(a.fingerprint(), b.fingerprint());
//! ```

mod value;

pub use value::Value;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// What a record is. Kinds decide which fields a format maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Contact,
    Event,
    Task,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Contact, Kind::Event, Kind::Task];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Contact => "contact",
            Kind::Event => "event",
            Kind::Task => "task",
        }
    }

    /// The fields Tandem maps for this kind, in display order.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Contact => &[
                "full_name",
                "given_name",
                "family_name",
                "middle_name",
                "prefix",
                "suffix",
                "nickname",
                "org",
                "department",
                "title",
                "emails",
                "phones",
                "addresses",
                "urls",
                "birthday",
                "note",
                "categories",
            ],
            Kind::Event => &[
                "summary",
                "description",
                "location",
                "start",
                "end",
                "all_day",
                "recurrence",
                "overrides",
                "attendees",
                "organizer",
                "status",
                "categories",
            ],
            Kind::Task => &[
                "summary",
                "description",
                "start",
                "due",
                "completed",
                "status",
                "priority",
                "percent_complete",
                "categories",
                "recurrence",
                "related_to",
            ],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "contact" => Ok(Kind::Contact),
            "event" => Ok(Kind::Event),
            "task" => Ok(Kind::Task),
            other => Err(format!(
                "unknown kind `{other}` (expected contact, event or task)"
            )),
        }
    }
}

/// Which side of a pair: every pair syncs store A with store B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    A,
    B,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::A, Side::B];

    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::A => "a",
            Side::B => "b",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One business record in canonical form.
///
/// `modified` is the item's own last-modified time (vCard REV, iCalendar
/// LAST-MODIFIED, or the store's file time) in seconds since the epoch. It
/// only breaks ties under the `newest` conflict policy and is never synced
/// or compared as content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub kind: Kind,
    pub uid: String,
    /// Shared between copies of the record until one of them changes
    /// ([`Record::fields_mut`]): a record passes through several hands in
    /// a sync (the plan's write, the base, the journal), and copying it is
    /// then free.
    #[serde(default, skip_serializing_if = "fields_empty")]
    pub fields: Arc<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<i64>,
}

/// One field's new value in a patch; `None` removes the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub value: Option<Value>,
}

fn fields_empty(fields: &Arc<BTreeMap<String, Value>>) -> bool {
    fields.is_empty()
}

impl Record {
    pub fn new(kind: Kind, uid: impl Into<String>) -> Self {
        Record {
            kind,
            uid: uid.into(),
            fields: Arc::default(),
            modified: None,
        }
    }

    /// The fields, to change: this record's own copy from here on.
    pub fn fields_mut(&mut self) -> &mut BTreeMap<String, Value> {
        Arc::make_mut(&mut self.fields)
    }

    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }

    /// Sets a field; an empty value removes it, so "absent" has one spelling.
    pub fn set(&mut self, field: impl Into<String>, value: Value) {
        let field = field.into();
        if value.is_empty() {
            if self.fields.contains_key(&field) {
                self.fields_mut().remove(&field);
            }
        } else {
            self.fields_mut().insert(field, value);
        }
    }

    pub fn with(mut self, field: impl Into<String>, value: Value) -> Self {
        self.set(field, value);
        self
    }

    pub fn remove(&mut self, field: &str) -> Option<Value> {
        if !self.fields.contains_key(field) {
            return None;
        }
        self.fields_mut().remove(field)
    }

    /// Applies changes in order.
    pub fn apply(&mut self, changes: &[FieldChange]) {
        for change in changes {
            match &change.value {
                Some(v) => self.set(change.field.clone(), v.clone()),
                None => {
                    self.remove(&change.field);
                }
            }
        }
    }

    /// Names of the fields whose meaning differs between `self` and `other`.
    pub fn changed_fields(&self, other: &Record) -> Vec<String> {
        let names: BTreeSet<&String> = self.fields.keys().chain(other.fields.keys()).collect();
        names
            .into_iter()
            .filter(|name| !Value::same_opt(self.fields.get(*name), other.fields.get(*name)))
            .cloned()
            .collect()
    }

    /// The changes that turn `self` into `target`.
    pub fn diff(&self, target: &Record) -> Vec<FieldChange> {
        self.changed_fields(target)
            .into_iter()
            .map(|field| FieldChange {
                value: target.fields.get(&field).cloned(),
                field,
            })
            .collect()
    }

    /// True when both records mean the same thing (kind, UID and fields).
    pub fn same_content(&self, other: &Record) -> bool {
        self.kind == other.kind
            && self.uid == other.uid
            // Equal fields are the common case (a copy); comparing them is
            // far cheaper than normalising every value.
            && (Arc::ptr_eq(&self.fields, &other.fields)
                || self.fields == other.fields
                || self.changed_fields(other).is_empty())
    }

    /// A hash of the normalised content: equal for records that mean the same.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(self.kind.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(self.uid.as_bytes());
        for (name, value) in self.fields.iter() {
            hasher.update([1]);
            hasher.update(name.as_bytes());
            hasher.update([2]);
            value.hash_normalised(&mut |bytes| hasher.update(bytes));
        }
        let digest = hasher.finalize();
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    /// Keeps only the named fields (used by `only_fields` and one-way scopes).
    pub fn retain_fields(&mut self, keep: impl Fn(&str) -> bool) {
        if self.fields.keys().all(|name| keep(name)) {
            return;
        }
        self.fields_mut().retain(|name, _| keep(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_compare_as_sets() {
        let a = Record::new(Kind::Contact, "u").with(
            "emails",
            Value::List(vec![Value::text("a@x"), Value::text("b@x")]),
        );
        let b = Record::new(Kind::Contact, "u").with(
            "emails",
            Value::List(vec![Value::text("b@x"), Value::text("a@x")]),
        );
        assert!(a.same_content(&b));
        assert_eq!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn empty_values_are_absent() {
        let mut r = Record::new(Kind::Task, "t");
        r.set("summary", Value::text(""));
        r.set("categories", Value::List(vec![]));
        assert!(r.fields.is_empty());
    }

    #[test]
    fn diff_then_apply_reaches_target() {
        let base = Record::new(Kind::Event, "e")
            .with("summary", Value::text("old"))
            .with("location", Value::text("Room 1"));
        let target = Record::new(Kind::Event, "e")
            .with("summary", Value::text("new"))
            .with("status", Value::text("CONFIRMED"));
        let mut patched = base.clone();
        patched.apply(&base.diff(&target));
        assert!(patched.same_content(&target));
        assert_eq!(
            base.changed_fields(&target),
            vec!["location", "status", "summary"]
        );
    }

    #[test]
    fn fingerprint_ignores_modified_time() {
        let mut a = Record::new(Kind::Contact, "u").with("note", Value::text("n"));
        let b = a.clone();
        a.modified = Some(42);
        assert_eq!(a.fingerprint(), b.fingerprint());
    }
}
