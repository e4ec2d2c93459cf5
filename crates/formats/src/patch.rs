//! The shared shape of a lossless patch: edits planned on calcard's model,
//! applied both to the model and (byte-preservingly) to the original text,
//! then checked by parsing the result back.
//!
//! A patch is planned per native property: "replace every EMAIL line of the
//! vCard with: keep the 1st, keep the 3rd, write this new one". The same plan
//! runs on the model (for a full calcard rewrite) and on the text through
//! [`crate::splice`]. The spliced text is used when it parses back to the
//! expected record; otherwise the full rewrite is tried; otherwise the patch
//! fails with an error naming the fields that would not survive.

use crate::error::FormatError;
use crate::splice::{Piece, Scan, Splice};
use std::collections::BTreeSet;
use tandem_record::{FieldChange, Kind, Record, Value};

/// What goes in place of a property's existing entries.
#[derive(Debug, Clone)]
pub(crate) enum Emit<E> {
    /// The `n`-th existing entry of that property, untouched.
    Keep(usize),
    /// A new or rewritten entry.
    New(E),
}

/// Replace every entry named `name` in component `component` with `emit`.
#[derive(Debug, Clone)]
pub(crate) struct PropertyEdit<E> {
    pub component: usize,
    pub name: String,
    pub emit: Vec<Emit<E>>,
}

impl<E> PropertyEdit<E> {
    pub(crate) fn new(component: usize, name: &str, emit: Vec<Emit<E>>) -> Self {
        PropertyEdit {
            component,
            name: name.to_string(),
            emit,
        }
    }
}

/// Applies an edit to one component's entry list: the emitted entries take
/// the place of the first existing entry of that name (or go last).
pub(crate) fn apply_to_entries<E: Clone>(
    entries: &mut Vec<E>,
    edit: &PropertyEdit<E>,
    name_of: impl Fn(&E) -> &str,
) {
    let positions: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| name_of(e).eq_ignore_ascii_case(&edit.name))
        .map(|(i, _)| i)
        .collect();
    let emitted: Vec<E> = edit
        .emit
        .iter()
        .filter_map(|emit| match emit {
            Emit::Keep(n) => positions.get(*n).and_then(|p| entries.get(*p)).cloned(),
            Emit::New(entry) => Some(entry.clone()),
        })
        .collect();
    let at = positions.first().copied();
    let mut pending = Some(emitted);
    let mut rebuilt = Vec::with_capacity(entries.len() + edit.emit.len());
    for (i, entry) in entries.drain(..).enumerate() {
        if Some(i) == at {
            rebuilt.extend(pending.take().into_iter().flatten());
        }
        if positions.binary_search(&i).is_err() {
            rebuilt.push(entry);
        }
    }
    rebuilt.extend(pending.into_iter().flatten());
    *entries = rebuilt;
}

/// Applies property edits to the original text. `count_in_model` tells how
/// many entries of a property the model holds, so a scan that does not line
/// up with calcard's reading is refused instead of trusted.
pub(crate) fn splice_properties<E>(
    splice: &mut Splice<'_>,
    scan: &Scan,
    edits: &[PropertyEdit<E>],
    count_in_model: impl Fn(usize, &str) -> usize,
    write: impl Fn(&E) -> Result<String, FormatError>,
) -> Result<(), String> {
    for edit in edits {
        if scan.property_count(edit.component, &edit.name)
            != count_in_model(edit.component, &edit.name)
        {
            return Err(format!(
                "{} lines of component {} do not line up with calcard's reading",
                edit.name, edit.component
            ));
        }
        let mut pieces = Vec::with_capacity(edit.emit.len());
        for emit in &edit.emit {
            pieces.push(match emit {
                Emit::Keep(n) => Piece::Keep(*n),
                Emit::New(entry) => Piece::Text(write(entry).map_err(|e| e.to_string())?),
            });
        }
        splice.replace_property(edit.component, &edit.name, &pieces)?;
    }
    Ok(())
}

/// The record a patch must produce, and the fields whose properties it has
/// to touch.
pub(crate) struct Target {
    pub record: Record,
    pub changed: BTreeSet<String>,
}

/// Applies `changes` to the parsed original after checking every field is
/// one this format maps for the record's kind.
pub(crate) fn target(
    original: &Record,
    changes: &[FieldChange],
    settle: impl FnOnce(&mut Record, &[FieldChange]) -> Result<(), FormatError>,
) -> Result<Target, FormatError> {
    for change in changes {
        check_field(original.kind, &change.field)?;
    }
    let mut record = original.clone();
    record.apply(changes);
    settle(&mut record, changes)?;
    let changed = original.changed_fields(&record).into_iter().collect();
    Ok(Target { record, changed })
}

pub(crate) fn check_field(kind: Kind, field: &str) -> Result<(), FormatError> {
    if kind.fields().contains(&field) {
        Ok(())
    } else {
        Err(FormatError::field(
            field,
            format!("not a field this format maps for a {kind}"),
        ))
    }
}

/// The fields (plus `uid`, `kind`, `modified`) where `got` differs from
/// `expected` in meaning.
pub(crate) fn differences(expected: &Record, got: &Record) -> Vec<String> {
    let mut out = Vec::new();
    if expected.kind != got.kind {
        out.push("kind".to_string());
    }
    if expected.uid != got.uid {
        out.push("uid".to_string());
    }
    if expected.modified != got.modified {
        out.push("modified".to_string());
    }
    out.extend(expected.changed_fields(got));
    out
}

/// Picks the text to return: the splice when it reads back as `expected`,
/// else the full rewrite when that does, else an error naming the fields.
pub(crate) fn choose(
    expected: &Record,
    spliced: Result<String, String>,
    rewrite: impl FnOnce() -> Result<String, FormatError>,
    parse: impl Fn(&str) -> Result<Record, FormatError>,
) -> Result<String, FormatError> {
    match spliced {
        Ok(text) => match parse(&text) {
            Ok(got) if differences(expected, &got).is_empty() => return Ok(text),
            Ok(got) => tracing::warn!(
                fields = ?differences(expected, &got),
                "spliced patch did not read back as expected; rewriting the whole item"
            ),
            Err(error) => {
                tracing::warn!(%error, "spliced patch did not parse; rewriting the whole item")
            }
        },
        Err(reason) => tracing::debug!(%reason, "cannot splice; rewriting the whole item"),
    }
    let text = rewrite()?;
    let got = parse(&text)?;
    let diff = differences(expected, &got);
    match diff.first() {
        None => Ok(text),
        Some(first) => {
            let shown = |r: &Record| {
                r.fields
                    .get(first)
                    .map_or_else(|| "nothing".to_string(), Value::to_string)
            };
            Err(FormatError::field(
                first.clone(),
                format!(
                    "cannot be written faithfully: asked for {}, would read back as {} (fields affected: {})",
                    shown(expected),
                    shown(&got),
                    diff.join(", ")
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name<'a>(s: &'a &'static str) -> &'a str {
        s.split(':').next().unwrap_or_default()
    }

    #[test]
    fn edits_take_the_first_slot() {
        let mut entries = vec!["A:1", "B:1", "A:2", "C:1"];
        let edit = PropertyEdit::new(0, "A", vec![Emit::Keep(1), Emit::New("A:3")]);
        apply_to_entries(&mut entries, &edit, name);
        assert_eq!(entries, vec!["A:2", "A:3", "B:1", "C:1"]);
    }

    #[test]
    fn edits_of_absent_properties_append() {
        let mut entries = vec!["B:1"];
        apply_to_entries(
            &mut entries,
            &PropertyEdit::new(0, "A", vec![Emit::New("A:1")]),
            name,
        );
        assert_eq!(entries, vec!["B:1", "A:1"]);
        apply_to_entries(&mut entries, &PropertyEdit::new(0, "B", vec![]), name);
        assert_eq!(entries, vec!["A:1"]);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r = Record::new(Kind::Contact, "u");
        let changes = [FieldChange {
            field: "summary".into(),
            value: None,
        }];
        let err = target(&r, &changes, |_, _| Ok(())).err().unwrap();
        assert_eq!(err.field.as_deref(), Some("summary"));
    }
}
