//! Round trips, patches and hostile inputs through the public API: one test
//! binary with a module per format.

mod garbage;
mod icalendar;
mod vcard;

use tandem_formats::{parse, patch, Format};
use tandem_record::{FieldChange, Record, Value};

pub fn set(field: &str, value: Value) -> FieldChange {
    FieldChange {
        field: field.into(),
        value: Some(value),
    }
}

pub fn unset(field: &str) -> FieldChange {
    FieldChange {
        field: field.into(),
        value: None,
    }
}

pub fn dt(local: &str, tz: Option<&str>) -> Value {
    Value::DateTime {
        local: local.into(),
        tz: tz.map(str::to_string),
    }
}

pub fn texts(items: &[&str]) -> Value {
    Value::List(items.iter().map(|s| Value::text(*s)).collect())
}

/// Patches `original`, checks the result reads back as the original record
/// with the changes applied, and returns the new text.
pub fn patched(format: Format, original: &str, changes: &[FieldChange]) -> String {
    let text = patch(format, original, changes).unwrap_or_else(|e| panic!("patch failed: {e}"));
    let mut expected = parse(format, original).unwrap();
    expected.apply(changes);
    let got =
        parse(format, &text).unwrap_or_else(|e| panic!("patched text does not parse: {e}\n{text}"));
    assert_same(&expected, &got, &text);
    text
}

pub fn assert_same(expected: &Record, got: &Record, text: &str) {
    assert!(
        expected.same_content(got) && expected.modified == got.modified,
        "records differ in {:?}\nexpected: {expected:#?}\ngot: {got:#?}\ntext:\n{text}",
        expected.changed_fields(got)
    );
}

/// The original lines (folded continuations left out) that are not in `text`.
pub fn lost_lines<'a>(original: &'a str, text: &str) -> Vec<&'a str> {
    let kept: Vec<&str> = text.split("\r\n").collect();
    original
        .split("\r\n")
        .filter(|line| !line.starts_with(' ') && !kept.contains(line))
        .collect()
}
