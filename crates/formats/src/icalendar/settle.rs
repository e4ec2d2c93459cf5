//! Brings a record about to be written into the one shape parsing reads
//! back: `all_day` agreeing with `start`/`end`, and the canonical spelling
//! of addresses, statuses, roles, recurrence rules and override ranges. A
//! patch compares its result against the settled record, so an equivalent
//! spelling (`MAILTO:Ada@Example.org`, `confirmed`) is not mistaken for a
//! loss.

use super::fields::{
    canonical_partstat, canonical_role, canonical_rrule, canonical_status, THIS_AND_FUTURE,
};
use crate::datetime::{add_days, date_part};
use crate::error::FormatError;
use crate::shape::without_scheme;
use calcard::common::{IanaParse, IanaString};
use tandem_record::{Kind, Record, Value};

/// Settles `record`. `all_day` is the caller's explicit wish when there is
/// one (the field was set in this patch or given to `render`); otherwise
/// `start` decides and `all_day` follows it.
pub(crate) fn settle(record: &mut Record, all_day: Option<bool>) -> Result<(), FormatError> {
    if record.kind == Kind::Event {
        settle_all_day(record, all_day)?;
    }
    if let Some(Value::Text(status)) = record.fields_mut().get_mut("status") {
        *status = canonical_status(status);
    }
    if let Some(Value::Text(organizer)) = record.fields_mut().get_mut("organizer") {
        *organizer = canonical_address(organizer);
    }
    if let Some(Value::List(attendees)) = record.fields_mut().get_mut("attendees") {
        for attendee in attendees.iter_mut() {
            if let Value::Map(map) = attendee {
                for (key, canonical) in [
                    ("email", canonical_address as fn(&str) -> String),
                    ("partstat", canonical_partstat),
                    ("role", canonical_role),
                ] {
                    if let Some(Value::Text(text)) = map.get_mut(key) {
                        *text = canonical(text);
                    }
                }
            }
        }
    }
    if let Some(Value::Map(recurrence)) = record.fields_mut().get_mut("recurrence") {
        if let Some(Value::Text(rule)) = recurrence.get_mut("rrule") {
            if !rule.is_empty() {
                *rule = canonical_rrule(rule)?;
            }
        }
    }
    if let Some(Value::List(overrides)) = record.fields_mut().get_mut("overrides") {
        for instance in overrides.iter_mut() {
            if let Value::Map(map) = instance {
                if let Some(Value::Text(status)) = map.get_mut("status") {
                    *status = canonical_status(status);
                }
                if let Some(Value::Text(range)) = map.get_mut("range") {
                    if range.eq_ignore_ascii_case(THIS_AND_FUTURE) {
                        *range = THIS_AND_FUTURE.to_string();
                    }
                }
            }
        }
    }
    Ok(())
}

/// Makes `start`, `end` and `all_day` agree. An explicit wish converts
/// `start` (an all-day start keeps its date; a timed one starts at
/// midnight, floating); then `end` takes the kind of `start` (an all-day
/// end is exclusive, so it is at least the day after the start); then
/// `all_day` is true exactly when `start` is a date.
fn settle_all_day(record: &mut Record, wish: Option<bool>) -> Result<(), FormatError> {
    if let Some(value) = record.get("all_day") {
        if !matches!(value, Value::Bool(_)) {
            return Err(FormatError::field(
                "all_day",
                format!("expected true or false, found `{value}`"),
            ));
        }
    }
    let Some(start) = record.get("start").cloned() else {
        record.remove("all_day");
        return Ok(());
    };
    let start = match (wish, &start) {
        (Some(true), Value::DateTime { .. }) => Value::Date(day_of(&start, "start")?),
        (Some(false), Value::Date(day)) => midnight(day, None),
        _ => start,
    };
    let end =
        match (&start, record.get("end")) {
            (Value::Date(first), Some(end @ Value::DateTime { .. })) => {
                let last = day_of(end, "end")?;
                Some(if last.as_str() > first.as_str() {
                    Value::Date(last)
                } else {
                    Value::Date(add_days(first, 1).ok_or_else(|| {
                        FormatError::field("end", format!("no day follows {first}"))
                    })?)
                })
            }
            (Value::DateTime { tz, .. }, Some(Value::Date(day))) => Some(midnight(day, tz.clone())),
            (_, other) => other.cloned(),
        };
    let all_day = matches!(start, Value::Date(_));
    record.set("start", start);
    if let Some(end) = end {
        record.set("end", end);
    }
    if all_day {
        record.set("all_day", Value::Bool(true));
    } else {
        record.remove("all_day");
    }
    Ok(())
}

fn day_of(value: &Value, field: &str) -> Result<String, FormatError> {
    date_part(value).map(str::to_string).ok_or_else(|| {
        FormatError::field(
            field,
            format!("expected a date or date-time, found `{value}`"),
        )
    })
}

fn midnight(day: &str, tz: Option<String>) -> Value {
    Value::DateTime {
        local: format!("{day}T00:00:00"),
        tz,
    }
}

/// Calendar addresses: `mailto:` is dropped and mail addresses are
/// lower-cased; other URIs (`urn:uuid:…`) are kept as written.
///
/// A repeated `mailto:mailto:` is dropped whole, so that the result is
/// its own canonical spelling: a patch settles the addresses it reads
/// once more, and an address that changed then would count as another
/// attendee, and its line, with its unknown parameters, would be rewritten.
pub(crate) fn canonical_address(text: &str) -> String {
    let address = without_scheme(text, "mailto");
    let mail = address.len() != text.len();
    if mail || !address.contains(':') {
        address.to_lowercase()
    } else {
        address.to_string()
    }
}

/// The spelling calcard writes for a known value (`CONFIRMED`), or the text
/// as given for an unknown one.
pub(crate) fn canonical_enum<T: IanaParse + IanaString>(text: &str) -> String {
    T::parse(text.as_bytes()).map_or_else(|| text.to_string(), |v| v.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(local: &str, tz: Option<&str>) -> Value {
        Value::DateTime {
            local: local.into(),
            tz: tz.map(str::to_string),
        }
    }

    fn event(start: Value, end: Value) -> Record {
        Record::new(Kind::Event, "e")
            .with("start", start)
            .with("end", end)
    }

    #[test]
    fn all_day_follows_start() {
        let mut r = event(
            Value::Date("2024-01-01".into()),
            Value::Date("2024-01-02".into()),
        );
        settle(&mut r, None).unwrap();
        assert_eq!(r.get("all_day"), Some(&Value::Bool(true)));
        let mut r = event(
            dt("2024-01-01T10:00:00", None),
            dt("2024-01-01T11:00:00", None),
        );
        r.set("all_day", Value::Bool(true));
        settle(&mut r, None).unwrap();
        assert_eq!(r.get("all_day"), None);
    }

    #[test]
    fn an_explicit_wish_converts_start_and_end() {
        let mut r = event(
            dt("2024-01-01T10:00:00", Some("Europe/Berlin")),
            dt("2024-01-01T11:00:00", Some("Europe/Berlin")),
        );
        settle(&mut r, Some(true)).unwrap();
        assert_eq!(r.get("start"), Some(&Value::Date("2024-01-01".into())));
        assert_eq!(r.get("end"), Some(&Value::Date("2024-01-02".into())));
        settle(&mut r, Some(false)).unwrap();
        assert_eq!(r.get("start"), Some(&dt("2024-01-01T00:00:00", None)));
        assert_eq!(r.get("end"), Some(&dt("2024-01-02T00:00:00", None)));
        assert_eq!(r.get("all_day"), None);
    }

    #[test]
    fn spellings_become_canonical() {
        let mut r = Record::new(Kind::Event, "e")
            .with("organizer", Value::text("MAILTO:Boss@Example.org"))
            .with("status", Value::text("confirmed"))
            .with(
                "recurrence",
                Value::map([("rrule", Value::text("FREQ=WEEKLY;BYDAY=MO;COUNT=3"))]),
            );
        settle(&mut r, None).unwrap();
        assert_eq!(r.get("organizer"), Some(&Value::text("boss@example.org")));
        assert_eq!(r.get("status"), Some(&Value::text("CONFIRMED")));
        assert_eq!(
            r.get("recurrence"),
            Some(&Value::map([(
                "rrule",
                Value::text("FREQ=WEEKLY;COUNT=3;BYDAY=MO")
            )]))
        );
        assert_eq!(canonical_address("urn:uuid:ABC"), "urn:uuid:ABC");
    }

    #[test]
    fn a_canonical_address_is_its_own_canonical_spelling() {
        for (written, canonical) in [
            ("MAILTO:Ada@Example.org", "ada@example.org"),
            ("Ada@Example.org", "ada@example.org"),
            ("mailto:mailto:ADA@example.org", "ada@example.org"),
            (
                "mailto:ADA@example.DATE:202E=Dorg",
                "ada@example.date:202e=dorg",
            ),
            ("urn:uuid:ABC", "urn:uuid:ABC"),
            ("mailto:", ""),
        ] {
            assert_eq!(canonical_address(written), canonical, "{written}");
            assert_eq!(canonical_address(canonical), canonical, "{written}");
        }
    }
}
