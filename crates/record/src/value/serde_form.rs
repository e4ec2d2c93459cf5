//! How a [`Value`] is written as JSON (the state's base records, journal
//! images and conflicts): text as a bare string and lists as a bare array,
//! since nearly every value is one of those; every other kind as a
//! one-key object naming it (`{"integer":3}`, `{"date":"2024-01-31"}`,
//! `{"date_time":{"local":…,"tz":…}}`, `{"map":{…}}`).
//!
//! Reading also takes the tagged spelling of text and lists
//! (`{"text":"…"}`, `{"list":[…]}`) that state databases written before
//! this form hold (schema version 1), so they read unchanged; the state's
//! migration 2 moves the version on, so that builds from before refuse a
//! database they could not read.

use super::Value;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The date-time variant's body, as the tagged form spells it.
#[derive(Serialize, Deserialize)]
struct DateTime<'a> {
    #[serde(borrow)]
    local: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    tz: Option<std::borrow::Cow<'a, str>>,
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Text(s) => serializer.serialize_str(s),
            Value::List(items) => serializer.collect_seq(items),
            Value::Integer(i) => tagged(serializer, "integer", i),
            Value::Decimal(s) => tagged(serializer, "decimal", s),
            Value::Bool(b) => tagged(serializer, "bool", b),
            Value::Date(s) => tagged(serializer, "date", s),
            Value::DateTime { local, tz } => tagged(
                serializer,
                "date_time",
                &DateTime {
                    local: local.as_str().into(),
                    tz: tz.as_deref().map(Into::into),
                },
            ),
            Value::Map(m) => tagged(serializer, "map", m),
        }
    }
}

fn tagged<S: Serializer, T: Serialize + ?Sized>(
    serializer: S,
    tag: &str,
    body: &T,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry(tag, body)?;
    map.end()
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

const TAGS: &[&str] = &[
    "text",
    "integer",
    "decimal",
    "bool",
    "date",
    "date_time",
    "list",
    "map",
];

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an array, or an object with one key naming the kind of value")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Text(s.to_string()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::Text(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Some(tag) = map.next_key::<std::borrow::Cow<'de, str>>()? else {
            return Err(de::Error::invalid_length(0, &self));
        };
        let value = match tag.as_ref() {
            "text" => Value::Text(map.next_value()?),
            "integer" => Value::Integer(map.next_value()?),
            "decimal" => Value::Decimal(map.next_value()?),
            "bool" => Value::Bool(map.next_value()?),
            "date" => Value::Date(map.next_value()?),
            "date_time" => {
                let body: DateTime<'_> = map.next_value()?;
                Value::DateTime {
                    local: body.local.into_owned(),
                    tz: body.tz.map(std::borrow::Cow::into_owned),
                }
            }
            "list" => Value::List(map.next_value()?),
            "map" => Value::Map(map.next_value::<BTreeMap<String, Value>>()?),
            other => return Err(de::Error::unknown_variant(other, TAGS)),
        };
        if map.next_key::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(2, &self));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Value {
        Value::List(vec![
            Value::text("plain"),
            Value::Integer(-3),
            Value::Decimal("19.90".into()),
            Value::Bool(true),
            Value::Date("2024-02-29".into()),
            Value::DateTime {
                local: "2024-02-29T09:30:00".into(),
                tz: Some("Europe/Berlin".into()),
            },
            Value::DateTime {
                local: "2024-02-29T09:30:00".into(),
                tz: None,
            },
            Value::map([
                ("value", Value::text("ada@example.org")),
                ("type", Value::text("work")),
            ]),
            Value::List(vec![]),
        ])
    }

    #[test]
    fn text_and_lists_are_bare_and_the_rest_tagged() {
        let json = serde_json::to_string(&every_kind()).unwrap();
        assert_eq!(
            json,
            r#"["plain",{"integer":-3},{"decimal":"19.90"},{"bool":true},{"date":"2024-02-29"},{"date_time":{"local":"2024-02-29T09:30:00","tz":"Europe/Berlin"}},{"date_time":{"local":"2024-02-29T09:30:00"}},{"map":{"type":"work","value":"ada@example.org"}},[]]"#
        );
        let back: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back, every_kind());
    }

    /// What state databases written before the compact form hold.
    #[test]
    fn the_tagged_form_of_earlier_databases_still_reads() {
        let old = r#"{"list":[{"text":"plain"},{"integer":-3},{"decimal":"19.90"},{"bool":true},{"date":"2024-02-29"},{"date_time":{"local":"2024-02-29T09:30:00","tz":"Europe/Berlin"}},{"date_time":{"local":"2024-02-29T09:30:00"}},{"map":{"type":{"text":"work"},"value":{"text":"ada@example.org"}}},{"list":[]}]}"#;
        let read: Value = serde_json::from_str(old).unwrap();
        assert_eq!(read, every_kind());
    }

    #[test]
    fn strange_objects_are_refused() {
        for bad in [
            r#"{}"#,
            r#"{"colour":"red"}"#,
            r#"{"text":"a","integer":1}"#,
            "3",
        ] {
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad}");
        }
    }
}
