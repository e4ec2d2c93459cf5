//! Table cells ↔ record values: how a record field sits in one column of a
//! table row, shared by the stores that keep rows (SQL tables, CSV files).
//!
//! A store reads each mapped column as text (a database casts it, a CSV
//! file already is text) and calls [`read_cell`] with the column's
//! [`ColumnType`]; to write, [`write_cell`] turns a field's value into the
//! text the column takes, or fails with a [`CellError`] that the store
//! reports with table, row and column while the other rows go on.
//!
//! The field's name decides the shape of its value: `emails` and `phones`
//! are lists of `{value, type}` maps, `categories`, `urls` and `related_to`
//! lists of text,
//! `start`/`end`/`due`/`completed` date-times, `birthday` a date,
//! `priority`/`percent_complete` integers, `all_day` a boolean, `addresses`,
//! `attendees` and `overrides` nested maps (JSON only); any other field
//! (`custom.*` too) takes the type of its column. A plain text column holds
//! a list as its values separated by commas (types are dropped); a JSON
//! column holds the whole list, types included; an array column (PostgreSQL)
//! holds the values.
//!
//! ```
//! use tandem_formats::row::{read_cell, write_cell, ColumnType};
//! use tandem_record::Value;
//! let emails = Value::List(vec![Value::map([("value", Value::text("ada@example.org"))])]);
//! let cell = write_cell("emails", ColumnType::Text, &emails).unwrap();
//! assert_eq!(cell.as_deref(), Some("ada@example.org"));
//! assert!(read_cell("emails", ColumnType::Text, "ada@example.org").unwrap().same(&emails));
//! ```

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::fmt;
use tandem_record::Value;

/// What a column holds, as far as converting values goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// Text of any length (also what SQLite keeps dates in).
    Text,
    /// Whole numbers.
    Integer,
    /// Exact or floating decimals.
    Decimal,
    /// true / false (also MySQL's `tinyint(1)`).
    Bool,
    /// A calendar date.
    Date,
    /// A wall-clock date-time without a zone.
    Timestamp,
    /// A point in time; the database answers in UTC.
    TimestampTz,
    /// JSON text (`json`, `jsonb`, MariaDB's checked `longtext`).
    Json,
    /// A PostgreSQL array, read as JSON and written as an array literal.
    TextArray,
}

impl ColumnType {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Integer => "integer",
            ColumnType::Decimal => "decimal",
            ColumnType::Bool => "boolean",
            ColumnType::Date => "date",
            ColumnType::Timestamp => "timestamp",
            ColumnType::TimestampTz => "timestamp with time zone",
            ColumnType::Json => "JSON",
            ColumnType::TextArray => "array",
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a cell could not be read or written. The store adds table, row and
/// column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CellError {
    /// A value that a column of this type cannot hold.
    #[error("value `{value}` does not fit a {column} column")]
    DoesNotFit { value: String, column: ColumnType },
    /// A list element that would not read back as one element.
    #[error(
        "list element `{element}` contains a comma, which separates elements in a text column"
    )]
    CommaInElement { element: String },
    /// Cell text that is not what the column or field holds.
    #[error("cannot read `{text}` as {expected}")]
    Unreadable {
        text: String,
        expected: &'static str,
    },
}

/// The shape a field's value has, decided by the field's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A list of `{value, type}` maps (`emails`, `phones`).
    TypedList,
    /// A list of text (`categories`, `urls`, `related_to`).
    List,
    /// Maps or lists of maps, JSON only (`addresses`, `attendees`, `overrides`).
    Nested,
    DateTime,
    Date,
    Integer,
    Bool,
    /// Anything else: the column's type decides.
    Scalar,
}

/// The shape of `field`'s value.
pub fn shape(field: &str) -> Shape {
    match field {
        "emails" | "phones" => Shape::TypedList,
        "categories" | "urls" | "related_to" => Shape::List,
        "addresses" | "attendees" | "overrides" => Shape::Nested,
        "start" | "end" | "due" | "completed" => Shape::DateTime,
        "birthday" => Shape::Date,
        "priority" | "percent_complete" => Shape::Integer,
        "all_day" => Shape::Bool,
        _ => Shape::Scalar,
    }
}

/// Reads the text of a cell of `column` into `field`'s value. Empty text
/// reads as an empty value (the field is absent).
pub fn read_cell(field: &str, column: ColumnType, text: &str) -> Result<Value, CellError> {
    let shape = shape(field);
    if text.is_empty() {
        return Ok(Value::text(""));
    }
    match column {
        ColumnType::Json | ColumnType::TextArray => {
            let json: Json = serde_json::from_str(text).map_err(|_| unreadable(text, "JSON"))?;
            from_json(shape, &json, text)
        }
        _ => match shape {
            Shape::TypedList => Ok(Value::List(
                split(text)
                    .map(|v| Value::map([("value", Value::text(v))]))
                    .collect(),
            )),
            Shape::List => Ok(Value::List(split(text).map(Value::text).collect())),
            Shape::Nested => {
                let json: Json =
                    serde_json::from_str(text).map_err(|_| unreadable(text, "JSON"))?;
                from_json(shape, &json, text)
            }
            Shape::DateTime => read_date_time(text, column == ColumnType::TimestampTz),
            Shape::Date => read_date(text),
            Shape::Integer => read_integer(text),
            Shape::Bool => read_bool(text),
            Shape::Scalar => match column {
                ColumnType::Integer => read_integer(text),
                ColumnType::Decimal => read_decimal(text),
                ColumnType::Bool => read_bool(text),
                ColumnType::Date => read_date(text),
                ColumnType::Timestamp => read_date_time(text, false),
                ColumnType::TimestampTz => read_date_time(text, true),
                _ => Ok(Value::text(text)),
            },
        },
    }
}

/// The text to write into a cell of `column` for `field`'s value; `None`
/// for an empty value (the column is set to NULL or left empty).
pub fn write_cell(
    field: &str,
    column: ColumnType,
    value: &Value,
) -> Result<Option<String>, CellError> {
    if value.is_empty() {
        return Ok(None);
    }
    let shape = shape(field);
    let misfit = || CellError::DoesNotFit {
        value: value.to_string(),
        column,
    };
    let text = match column {
        ColumnType::Json => to_json(value).to_string(),
        ColumnType::TextArray => {
            let elements: Vec<String> = match value {
                Value::List(items) => items.iter().map(element_text).collect(),
                other => vec![element_text(other)],
            };
            array_literal(&elements)
        }
        ColumnType::Text => match (shape, value) {
            (Shape::TypedList | Shape::List, Value::List(items)) => {
                let mut elements = Vec::with_capacity(items.len());
                for item in items {
                    let element = element_text(item);
                    if element.contains(',') {
                        return Err(CellError::CommaInElement { element });
                    }
                    elements.push(element);
                }
                elements.join(", ")
            }
            (_, Value::List(_) | Value::Map(_)) => to_json(value).to_string(),
            (_, Value::DateTime { local, tz }) => match tz.as_deref() {
                None => local.clone(),
                Some("UTC") => format!("{local}Z"),
                Some(zone) => format!("{local} {zone}"),
            },
            (_, other) => other.to_string(),
        },
        ColumnType::Integer => match value {
            Value::Integer(i) => i.to_string(),
            Value::Bool(b) => i64::from(*b).to_string(),
            Value::Text(s) | Value::Decimal(s) if s.trim().parse::<i64>().is_ok() => {
                s.trim().to_string()
            }
            _ => return Err(misfit()),
        },
        ColumnType::Decimal => match value {
            Value::Integer(i) => i.to_string(),
            Value::Decimal(s) | Value::Text(s) if is_decimal(s.trim()) => s.trim().to_string(),
            _ => return Err(misfit()),
        },
        ColumnType::Bool => match value {
            Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
            Value::Integer(0) => "0".to_string(),
            Value::Integer(1) => "1".to_string(),
            Value::Text(s) => match read_bool(s) {
                Ok(Value::Bool(b)) => if b { "1" } else { "0" }.to_string(),
                _ => return Err(misfit()),
            },
            _ => return Err(misfit()),
        },
        ColumnType::Date => match value {
            Value::Date(s) | Value::Text(s) if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() => {
                s.clone()
            }
            _ => return Err(misfit()),
        },
        ColumnType::Timestamp | ColumnType::TimestampTz => match value {
            Value::DateTime { local, tz } => {
                let local = NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S")
                    .map_err(|_| misfit())?
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string();
                match tz.as_deref() {
                    // A zoned column is written in the session's zone (UTC).
                    None | Some("UTC") => local,
                    // A column without a zone keeps the wall-clock time.
                    Some(_) if column == ColumnType::Timestamp => local,
                    Some(zone) => format!("{local} {zone}"),
                }
            }
            Value::Date(s) if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() => {
                format!("{s} 00:00:00")
            }
            Value::Text(s) => match read_date_time(s, column == ColumnType::TimestampTz) {
                Ok(parsed @ Value::DateTime { .. }) => {
                    return write_cell(field, column, &parsed);
                }
                _ => return Err(misfit()),
            },
            _ => return Err(misfit()),
        },
    };
    Ok(Some(text))
}

/// Seconds since the epoch of a version or date-time cell, when it is one
/// (used as a record's modification time).
pub fn timestamp_seconds(text: &str) -> Option<i64> {
    match read_date_time(text, true).ok()? {
        Value::DateTime { local, tz } if tz.as_deref() != Some("") => {
            let local = NaiveDateTime::parse_from_str(&local, "%Y-%m-%dT%H:%M:%S").ok()?;
            Some(local.and_utc().timestamp())
        }
        _ => None,
    }
}

fn unreadable(text: &str, expected: &'static str) -> CellError {
    CellError::Unreadable {
        text: text.to_string(),
        expected,
    }
}

fn split(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The plain text of a list element: a map's `value`, else the value.
fn element_text(value: &Value) -> String {
    match value {
        Value::Map(map) => map.get("value").map(Value::to_string).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// A PostgreSQL array literal of text elements, each quoted.
fn array_literal(elements: &[String]) -> String {
    let quoted: Vec<String> = elements
        .iter()
        .map(|e| format!("\"{}\"", e.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", quoted.join(","))
}

fn read_integer(text: &str) -> Result<Value, CellError> {
    text.trim()
        .parse::<i64>()
        .map(Value::Integer)
        .map_err(|_| unreadable(text, "an integer"))
}

fn is_decimal(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    !(whole.is_empty() && frac.is_empty())
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// A decimal in its shortest exact spelling (`12.50` and `12.5` read alike).
fn read_decimal(text: &str) -> Result<Value, CellError> {
    let text = text.trim();
    if !is_decimal(text) {
        return Err(unreadable(text, "a decimal"));
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    let short = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    };
    Ok(Value::Decimal(short.to_string()))
}

fn read_bool(text: &str) -> Result<Value, CellError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "yes" | "y" | "on" => Ok(Value::Bool(true)),
        "0" | "f" | "false" | "no" | "n" | "off" => Ok(Value::Bool(false)),
        _ => Err(unreadable(text, "a boolean")),
    }
}

fn read_date(text: &str) -> Result<Value, CellError> {
    let text = text.trim();
    let date = text.get(..10).unwrap_or(text);
    let rest = text.get(10..).unwrap_or("");
    let midnight = rest.is_empty()
        || rest
            .trim_start_matches(['T', ' '])
            .trim_start_matches("00:00:00")
            .trim_start_matches(['.', '0'])
            .trim_start_matches(['Z', '+', '0', ':'])
            .is_empty();
    match NaiveDate::parse_from_str(date, "%Y-%m-%d") {
        Ok(_) if midnight => Ok(Value::Date(date.to_string())),
        Ok(_) => read_date_time(text, false),
        // Reduced vCard dates (`--03-14`) stay as text.
        Err(_) if text.starts_with("--") => Ok(Value::Date(text.to_string())),
        Err(_) => Err(unreadable(text, "a date")),
    }
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|±HH[:MM]| Zone/Name]`; fractions are
/// dropped; an offset converts to UTC; no zone is floating unless the
/// column is zoned (then UTC).
fn read_date_time(text: &str, zoned: bool) -> Result<Value, CellError> {
    let text = text.trim();
    let bad = || unreadable(text, "a date-time");
    // Four-digit years only (0000–9999): the head is then exactly 19
    // characters, as written back. (A signed or longer year would be split
    // in the wrong place, and read back differently.)
    let bytes = text.as_bytes();
    if text.len() < 19
        || !text.is_char_boundary(19)
        || !bytes[..4].iter().all(u8::is_ascii_digit)
        || bytes[4] != b'-'
    {
        return Err(bad());
    }
    let (head, mut rest) = text.split_at(19);
    let local = NaiveDateTime::parse_from_str(&head.replacen(' ', "T", 1), "%Y-%m-%dT%H:%M:%S")
        .map_err(|_| bad())?;
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let show = |t: NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let utc = |t: NaiveDateTime| Value::DateTime {
        local: show(t),
        tz: Some("UTC".to_string()),
    };
    if rest.is_empty() {
        return Ok(if zoned {
            utc(local)
        } else {
            Value::DateTime {
                local: show(local),
                tz: None,
            }
        });
    }
    if rest == "Z" || rest == "+00" || rest == "+00:00" || rest == "+0000" || rest == " UTC" {
        return Ok(utc(local));
    }
    if rest.starts_with(['+', '-']) {
        let offset = match rest.len() {
            3 => format!("{rest}:00"),
            5 => format!("{}:{}", &rest[..3], &rest[3..]),
            _ => rest.to_string(),
        };
        let parsed =
            DateTime::parse_from_rfc3339(&format!("{}{offset}", show(local))).map_err(|_| bad())?;
        return Ok(utc(parsed.naive_utc()));
    }
    let zone = rest.trim().trim_start_matches('[').trim_end_matches(']');
    if !zone.is_empty() && !zone.contains(char::is_whitespace) {
        return Ok(Value::DateTime {
            local: show(local),
            tz: Some(zone.to_string()),
        });
    }
    Err(bad())
}

fn from_json(shape: Shape, json: &Json, text: &str) -> Result<Value, CellError> {
    let value = match (shape, json) {
        (Shape::TypedList, Json::Array(items)) => Value::List(
            items
                .iter()
                .map(|item| match item {
                    Json::String(s) => Value::map([("value", Value::text(s.clone()))]),
                    other => json_value(other),
                })
                .collect(),
        ),
        (Shape::TypedList, Json::String(s)) => {
            Value::List(vec![Value::map([("value", Value::text(s.clone()))])])
        }
        (Shape::List, Json::String(s)) => Value::List(vec![Value::text(s.clone())]),
        // A lone number or boolean where a list belongs is a one-element
        // list too, spelled as the cell has it (the cell is that scalar).
        (Shape::TypedList, Json::Number(_) | Json::Bool(_)) => {
            Value::List(vec![Value::map([("value", Value::text(text.trim()))])])
        }
        (Shape::List, Json::Number(_) | Json::Bool(_)) => {
            Value::List(vec![Value::text(text.trim())])
        }
        (Shape::DateTime, Json::String(s)) => read_date_time(s, false)?,
        (Shape::Date, Json::String(s)) => read_date(s)?,
        (Shape::Integer, Json::Number(n)) => {
            Value::Integer(n.as_i64().ok_or_else(|| unreadable(text, "an integer"))?)
        }
        (_, other) => json_value(other),
    };
    Ok(value)
}

fn json_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::text(""),
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Decimal(n.to_string()),
        },
        Json::String(s) => Value::text(s.clone()),
        Json::Array(items) => Value::List(items.iter().map(json_value).collect()),
        Json::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), json_value(v)))
                .filter(|(_, v)| !v.is_empty())
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

fn to_json(value: &Value) -> Json {
    match value {
        Value::Text(s) | Value::Date(s) => Json::String(s.clone()),
        // A decimal read from a JSON number goes back as that number (a
        // string would read back as text); one a JSON number cannot spell
        // exactly stays a string.
        Value::Decimal(s) => match s.parse::<serde_json::Number>() {
            Ok(n) if n.to_string() == *s => Json::Number(n),
            _ => Json::String(s.clone()),
        },
        Value::Integer(i) => Json::from(*i),
        Value::Bool(b) => Json::Bool(*b),
        Value::DateTime { local, tz } => Json::String(match tz.as_deref() {
            None => local.clone(),
            Some("UTC") => format!("{local}Z"),
            Some(zone) => format!("{local} {zone}"),
        }),
        Value::List(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(value: &str, kind: &str) -> Value {
        Value::map([("value", Value::text(value)), ("type", Value::text(kind))])
    }

    #[test]
    fn decimals_in_json_cells_stay_numbers() {
        // A number too large for an integer reads as a decimal in the
        // spelling JSON gives it, and is written back as that number.
        let read = read_cell("addresses", ColumnType::Json, "33333333333333333333333").unwrap();
        assert!(matches!(read, Value::Decimal(_)), "{read:?}");
        let written = write_cell("addresses", ColumnType::Json, &read)
            .unwrap()
            .unwrap();
        assert!(!written.starts_with('"'), "{written}");
        assert!(read_cell("addresses", ColumnType::Json, &written)
            .unwrap()
            .same(&read));
        // One JSON cannot spell exactly stays a string.
        let precise = Value::Decimal("0.10000000000000000000001".into());
        let written = write_cell("custom.x", ColumnType::Json, &precise)
            .unwrap()
            .unwrap();
        assert_eq!(written, "\"0.10000000000000000000001\"");
    }

    #[test]
    fn typed_lists_keep_types_in_json_and_values_in_text() {
        let emails = Value::List(vec![typed("a@x", "home"), typed("b@x", "work")]);
        let json = write_cell("emails", ColumnType::Json, &emails)
            .unwrap()
            .unwrap();
        assert!(read_cell("emails", ColumnType::Json, &json)
            .unwrap()
            .same(&emails));
        let text = write_cell("emails", ColumnType::Text, &emails)
            .unwrap()
            .unwrap();
        assert_eq!(text, "a@x, b@x");
        let back = read_cell("emails", ColumnType::Text, &text).unwrap();
        assert_eq!(back.as_list().unwrap().len(), 2);
        let array = write_cell(
            "categories",
            ColumnType::TextArray,
            &Value::List(vec![Value::text("a\"b")]),
        )
        .unwrap();
        assert_eq!(array.as_deref(), Some("{\"a\\\"b\"}"));
    }

    #[test]
    fn commas_inside_elements_do_not_fit_text() {
        let list = Value::List(vec![Value::text("a,b")]);
        assert!(matches!(
            write_cell("categories", ColumnType::Text, &list),
            Err(CellError::CommaInElement { .. })
        ));
    }

    #[test]
    fn date_times_read_in_many_spellings() {
        let utc = Value::DateTime {
            local: "2025-03-14T09:30:00".into(),
            tz: Some("UTC".into()),
        };
        for text in [
            "2025-03-14 09:30:00+00",
            "2025-03-14T09:30:00Z",
            "2025-03-14 10:30:00.123+01:00",
            "2025-03-14 04:30:00-0500",
        ] {
            assert_eq!(
                read_cell("start", ColumnType::Text, text).unwrap(),
                utc,
                "{text}"
            );
        }
        assert_eq!(
            read_cell("start", ColumnType::TimestampTz, "2025-03-14 09:30:00").unwrap(),
            utc
        );
        let berlin = read_cell(
            "start",
            ColumnType::Text,
            "2025-03-14T09:30:00 Europe/Berlin",
        )
        .unwrap();
        assert_eq!(
            write_cell("start", ColumnType::Text, &berlin)
                .unwrap()
                .as_deref(),
            Some("2025-03-14T09:30:00 Europe/Berlin")
        );
        assert_eq!(
            write_cell("start", ColumnType::Text, &utc)
                .unwrap()
                .as_deref(),
            Some("2025-03-14T09:30:00Z")
        );
        assert_eq!(timestamp_seconds("1970-01-01 00:01:00+00"), Some(60));
    }

    #[test]
    fn scalars_take_the_column_type_and_misfits_are_errors() {
        assert_eq!(
            read_cell("custom.n", ColumnType::Integer, "42").unwrap(),
            Value::Integer(42)
        );
        assert_eq!(
            read_cell("custom.p", ColumnType::Decimal, "12.50").unwrap(),
            Value::Decimal("12.5".into())
        );
        assert_eq!(
            read_cell("custom.b", ColumnType::Bool, "t").unwrap(),
            Value::Bool(true)
        );
        assert_eq!(
            read_cell("custom.t", ColumnType::Text, "42").unwrap(),
            Value::text("42")
        );
        assert!(read_cell("custom.n", ColumnType::Integer, "abc").is_err());
        assert!(matches!(
            write_cell("custom.n", ColumnType::Integer, &Value::text("abc")),
            Err(CellError::DoesNotFit { .. })
        ));
        assert_eq!(
            write_cell("custom.n", ColumnType::Integer, &Value::text(" 7 "))
                .unwrap()
                .as_deref(),
            Some("7")
        );
        assert_eq!(
            write_cell("note", ColumnType::Text, &Value::text("")).unwrap(),
            None
        );
        assert_eq!(
            write_cell(
                "birthday",
                ColumnType::Date,
                &Value::Date("1815-12-10".into())
            )
            .unwrap()
            .as_deref(),
            Some("1815-12-10")
        );
        assert_eq!(
            read_cell("birthday", ColumnType::Date, "1815-12-10").unwrap(),
            Value::Date("1815-12-10".into())
        );
    }
}
