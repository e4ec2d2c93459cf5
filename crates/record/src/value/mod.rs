//! Typed field values and how they compare: lists as sets, maps key by key.

mod serde_form;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// A field's value.
///
/// Dates are `YYYY-MM-DD`; date-times are a local wall-clock time
/// `YYYY-MM-DDTHH:MM:SS` plus an optional zone (`UTC`, an IANA name, or
/// `None` for floating time), so a wall-clock time never shifts. Decimals
/// (prices, quantities) are kept as their exact decimal text.
///
/// As JSON, text is a bare string and a list a bare array; the other kinds
/// are one-key objects naming the kind (`serde_form.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Integer(i64),
    Decimal(String),
    Bool(bool),
    Date(String),
    DateTime {
        local: String,
        tz: Option<String>,
    },
    /// A multi-valued field; compared as a set (order and repeats ignored).
    List(Vec<Value>),
    /// A nested record (an address, an attendee, a line item).
    Map(BTreeMap<String, Value>),
}

impl Value {
    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    /// A map from `(key, value)` pairs; empty values are dropped.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Map(
            entries
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.into(), v))
                .collect(),
        )
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) | Value::Decimal(s) | Value::Date(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Empty text, lists and maps carry no information and count as absent.
    pub fn is_empty(&self) -> bool {
        match self {
            Value::Text(s) => s.is_empty(),
            Value::List(items) => items.is_empty(),
            Value::Map(m) => m.is_empty(),
            _ => false,
        }
    }

    /// Equality by meaning: lists compare as sets, maps key by key.
    pub fn same(&self, other: &Value) -> bool {
        self.normalised() == other.normalised()
    }

    pub fn same_opt(a: Option<&Value>, b: Option<&Value>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same(b),
            (Some(v), None) | (None, Some(v)) => v.is_empty(),
        }
    }

    /// The canonical form: lists sorted and deduplicated, recursively.
    pub fn normalised(&self) -> Value {
        match self {
            Value::List(items) => {
                let mut items: Vec<Value> = items.iter().map(Value::normalised).collect();
                items.sort_by(Value::total_cmp);
                items.dedup();
                Value::List(items)
            }
            Value::Map(m) => Value::Map(
                m.iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.clone(), v.normalised()))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// A total order used only to sort lists into a canonical order.
    pub fn total_cmp(a: &Value, b: &Value) -> Ordering {
        fn rank(v: &Value) -> u8 {
            match v {
                Value::Text(_) => 0,
                Value::Integer(_) => 1,
                Value::Decimal(_) => 2,
                Value::Bool(_) => 3,
                Value::Date(_) => 4,
                Value::DateTime { .. } => 5,
                Value::List(_) => 6,
                Value::Map(_) => 7,
            }
        }
        match (a, b) {
            (Value::Text(x), Value::Text(y))
            | (Value::Decimal(x), Value::Decimal(y))
            | (Value::Date(x), Value::Date(y)) => x.cmp(y),
            (Value::Integer(x), Value::Integer(y)) => x.cmp(y),
            (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
            (Value::DateTime { local: l1, tz: t1 }, Value::DateTime { local: l2, tz: t2 }) => {
                l1.cmp(l2).then_with(|| t1.cmp(t2))
            }
            (Value::List(x), Value::List(y)) => {
                for (p, q) in x.iter().zip(y) {
                    let o = Value::total_cmp(p, q);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                x.len().cmp(&y.len())
            }
            (Value::Map(x), Value::Map(y)) => {
                for ((k1, v1), (k2, v2)) in x.iter().zip(y) {
                    let o = k1.cmp(k2).then_with(|| Value::total_cmp(v1, v2));
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                x.len().cmp(&y.len())
            }
            _ => rank(a).cmp(&rank(b)),
        }
    }

    /// Feeds a stable byte encoding of the normalised value to `sink`.
    pub(crate) fn hash_normalised(&self, sink: &mut dyn FnMut(&[u8])) {
        fn walk(v: &Value, sink: &mut dyn FnMut(&[u8])) {
            match v {
                Value::Text(s) => {
                    sink(b"t");
                    sink(s.as_bytes());
                }
                Value::Integer(i) => {
                    sink(b"i");
                    sink(&i.to_le_bytes());
                }
                Value::Decimal(s) => {
                    sink(b"d");
                    sink(s.as_bytes());
                }
                Value::Bool(b) => sink(if *b { b"T" } else { b"F" }),
                Value::Date(s) => {
                    sink(b"D");
                    sink(s.as_bytes());
                }
                Value::DateTime { local, tz } => {
                    sink(b"DT");
                    sink(local.as_bytes());
                    sink(b"@");
                    sink(tz.as_deref().unwrap_or("").as_bytes());
                }
                Value::List(items) => {
                    sink(b"[");
                    for item in items {
                        walk(item, sink);
                        sink(b",");
                    }
                    sink(b"]");
                }
                Value::Map(m) => {
                    sink(b"{");
                    for (k, item) in m {
                        sink(k.as_bytes());
                        sink(b":");
                        walk(item, sink);
                        sink(b",");
                    }
                    sink(b"}");
                }
            }
        }
        walk(&self.normalised(), sink)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) | Value::Decimal(s) | Value::Date(s) => f.write_str(s),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::DateTime { local, tz: None } => f.write_str(local),
            Value::DateTime {
                local,
                tz: Some(tz),
            } => write!(f, "{local} {tz}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Integer(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
