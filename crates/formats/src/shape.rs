//! Checks that a record value has the shape its field needs before it is
//! written, so a wrong value fails with a message naming the field instead of
//! being coerced into something that reads back differently.

use crate::error::FormatError;
use std::collections::BTreeMap;
use tandem_record::Value;

pub(crate) fn text<'v>(field: &str, value: &'v Value) -> Result<&'v str, FormatError> {
    match value {
        Value::Text(s) => Ok(s),
        other => Err(FormatError::field(
            field,
            format!("expected text, found `{other}`"),
        )),
    }
}

pub(crate) fn list<'v>(field: &str, value: &'v Value) -> Result<&'v [Value], FormatError> {
    match value {
        Value::List(items) => Ok(items),
        other => Err(FormatError::field(
            field,
            format!("expected a list, found `{other}`"),
        )),
    }
}

pub(crate) fn integer(field: &str, value: &Value) -> Result<i64, FormatError> {
    match value {
        Value::Integer(i) => Ok(*i),
        other => Err(FormatError::field(
            field,
            format!("expected an integer, found `{other}`"),
        )),
    }
}

/// A map whose keys are all in `allowed`.
pub(crate) fn map<'v>(
    field: &str,
    value: &'v Value,
    allowed: &[&str],
) -> Result<&'v BTreeMap<String, Value>, FormatError> {
    let Value::Map(map) = value else {
        return Err(FormatError::field(
            field,
            format!(
                "expected a map with keys {}, found `{value}`",
                allowed.join(", ")
            ),
        ));
    };
    if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(FormatError::field(
            field,
            format!("unknown key `{key}` (expected {})", allowed.join(", ")),
        ));
    }
    Ok(map)
}

/// An optional text entry of a map; empty text counts as absent.
pub(crate) fn map_text<'v>(
    field: &str,
    map: &'v BTreeMap<String, Value>,
    key: &str,
) -> Result<Option<&'v str>, FormatError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Text(s)) if s.is_empty() => Ok(None),
        Some(Value::Text(s)) => Ok(Some(s)),
        Some(other) => Err(FormatError::field(
            field,
            format!("`{key}` must be text, found `{other}`"),
        )),
    }
}

/// The text a list element or field holds, for matching elements by value.
pub(crate) fn plain(value: &Value) -> String {
    match value {
        Value::Text(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `text` without its URI `scheme` (`tel`, `mailto`; any case), however
/// often it is repeated: a writer puts at most one back, so a value read
/// with one left could never be written to read back the same.
pub(crate) fn without_scheme<'t>(mut text: &'t str, scheme: &str) -> &'t str {
    while let Some((first, rest)) = text.split_once(':') {
        if !first.eq_ignore_ascii_case(scheme) {
            break;
        }
        text = rest;
    }
    text
}

/// Normalises a comma-separated type list: lower case, sorted, deduplicated,
/// without the types in `implied`.
pub(crate) fn type_list<'a>(parts: impl IntoIterator<Item = &'a str>, implied: &[&str]) -> String {
    let mut types: Vec<String> = parts
        .into_iter()
        .flat_map(|p| p.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty() && !implied.contains(&t.as_str()))
        .collect();
    types.sort();
    types.dedup();
    types.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_lists_are_canonical() {
        assert_eq!(
            type_list(["HOME,work", " pref", "Home"], &["pref"]),
            "home,work"
        );
        assert_eq!(type_list([""], &[]), "");
    }

    #[test]
    fn wrong_shapes_name_the_field() {
        let err = text("summary", &Value::Integer(3)).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("summary"));
        let m = Value::map([("value", Value::text("a")), ("bogus", Value::text("b"))]);
        assert!(map("emails", &m, &["value", "type"]).is_err());
    }
}
