//! vCard 3.0 and 4.0 ↔ contact records: which property holds which field,
//! how a record becomes a new card, and how a patch rewrites only the
//! properties of the fields that changed.
//!
//! | field | property |
//! |---|---|
//! | `full_name` | FN |
//! | `family_name`, `given_name`, `middle_name`, `prefix`, `suffix` | N components 1–5 |
//! | `nickname` | NICKNAME (values joined by `,`) |
//! | `org`, `department` | ORG components 1–2 |
//! | `title`, `note` | TITLE, NOTE |
//! | `emails`, `phones` | EMAIL, TEL as `{value, type}` maps |
//! | `addresses` | ADR as `{po_box, extended, street, locality, region, postal_code, country, type}` |
//! | `urls`, `categories` | URL, CATEGORIES as lists of text |
//! | `birthday` | BDAY as a date (`YYYY-MM-DD`, or reduced `--MM-DD`, `YYYY-MM`, `YYYY`), date-time or text |
//!
//! `uid` comes from UID and `modified` from REV, which is never a field.
//! `type` is the TYPE parameters lower-cased, sorted and joined by `,`,
//! leaving out `pref` (and `internet` for emails), which say nothing the
//! record keeps. A `tel:` scheme on phone numbers (even a repeated one) is
//! left out likewise.
//!
//! FN is required, so removing `full_name` leaves an empty `FN:` (which
//! reads back as absent); on 3.0 cards, where N is required too, removing
//! every name part leaves `N:;;;;`. Patched lines are written in the card's
//! own version.

use crate::datetime::{self, VCARD};
use crate::error::{read_entries, shielded, FormatError};
use crate::patch::{self, Emit, PropertyEdit};
use crate::shape;
use crate::splice::{Scan, Splice};
use calcard::common::{IanaParse, IanaString};
use calcard::vcard::{
    VCard, VCardEntry, VCardParameter, VCardParameterName, VCardParameterValue, VCardProperty,
    VCardType, VCardValue, VCardValueType, VCardVersion,
};
use calcard::Entry;
use std::collections::BTreeSet;
use tandem_record::{FieldChange, Kind, Record, Value};

const N_PARTS: [&str; 5] = [
    "family_name",
    "given_name",
    "middle_name",
    "prefix",
    "suffix",
];
const ADR_PARTS: [&str; 7] = [
    "po_box",
    "extended",
    "street",
    "locality",
    "region",
    "postal_code",
    "country",
];
const EMAIL_IMPLIED_TYPES: [&str; 2] = ["pref", "internet"];
const IMPLIED_TYPES: [&str; 1] = ["pref"];
/// Apple writes year-less birthdays as `1604-MM-DD` with this parameter.
const APPLE_OMIT_YEAR: &str = "X-APPLE-OMIT-YEAR";

pub(crate) fn parse(text: &str) -> Result<Record, FormatError> {
    to_record(&read_card(text)?)
}

pub(crate) fn render(record: &Record) -> Result<String, FormatError> {
    if record.kind != Kind::Contact {
        return Err(FormatError::new(format!(
            "a vCard holds contacts, not a {}",
            record.kind
        )));
    }
    if record.uid.is_empty() {
        return Err(FormatError::new("the record has no UID"));
    }
    for field in record.fields.keys() {
        patch::check_field(Kind::Contact, field)?;
    }
    let mut card = VCard {
        entries: vec![
            VCardEntry::new(VCardProperty::Uid).with_value(record.uid.clone()),
            VCardEntry::new(VCardProperty::Fn).with_value(derived_full_name(record)),
        ],
    };
    if let Some(rev) = record.modified.and_then(datetime::from_unix) {
        card.entries
            .push(VCardEntry::new(VCardProperty::Rev).with_value(VCardValue::PartialDateTime(rev)));
    }
    let changed: BTreeSet<String> = record.fields.keys().cloned().collect();
    for edit in plan(&card, record, &changed, VCardVersion::V4_0)? {
        patch::apply_to_entries(&mut card.entries, &edit, entry_name);
    }
    write_card(&card, VCardVersion::V4_0)
}

pub(crate) fn patch(original: &str, changes: &[FieldChange]) -> Result<String, FormatError> {
    let card = read_card(original)?;
    let record = to_record(&card)?;
    let target = patch::target(&record, changes, |target, changes| {
        settle(target, changes);
        Ok(())
    })?;
    let version = card.version().unwrap_or_default();
    let edits = plan(&card, &target.record, &target.changed, version)?;
    if edits.is_empty() {
        return Ok(original.to_string());
    }
    let mut model = card.clone();
    for edit in &edits {
        patch::apply_to_entries(&mut model.entries, edit, entry_name);
    }

    let scan = Scan::new(original, true);
    let spliced = if scan.component_name(0) == Some("VCARD") {
        let mut splice = Splice::new(original, &scan);
        patch::splice_properties(
            &mut splice,
            &scan,
            &edits,
            |_, name| count(&card, name),
            |entry| write_entry(entry, version),
        )
        .map(|()| splice.finish())
    } else {
        Err("the text does not start with BEGIN:VCARD".to_string())
    };
    patch::choose(
        &target.record,
        spliced,
        || write_card(&model, version),
        parse,
    )
}

// ---------------------------------------------------------------- reading

fn read_card(text: &str) -> Result<VCard, FormatError> {
    let entries = read_entries("parsing vCard", text)?;
    let mut cards = Vec::new();
    for entry in entries {
        match entry {
            Entry::VCard(card) => cards.push(card),
            Entry::ICalendar(_) => {
                return Err(FormatError::new(
                    "expected a vCard, found iCalendar data (BEGIN:VCALENDAR)",
                ))
            }
            other => return Err(FormatError::new(format!("not a valid vCard: {other:?}"))),
        }
    }
    match cards.len() {
        0 => Err(FormatError::new("no vCard found (expected BEGIN:VCARD)")),
        1 => Ok(cards.remove(0)),
        n => {
            let uids: BTreeSet<&str> = cards.iter().filter_map(VCard::uid).collect();
            Err(FormatError::new(format!(
                "{n} vCards in one item (UIDs: {}); expected exactly one",
                uids.into_iter().collect::<Vec<_>>().join(", ")
            )))
        }
    }
}

fn to_record(card: &VCard) -> Result<Record, FormatError> {
    let uid = card
        .property(&VCardProperty::Uid)
        .and_then(|e| e.values.first())
        .map(value_text)
        .filter(|uid| !uid.trim().is_empty())
        .ok_or_else(|| FormatError::new("vCard has no UID property"))?;
    let mut record = Record::new(Kind::Contact, uid);

    record.set("full_name", text_of(card, VCardProperty::Fn));
    if let Some(n) = card.property(&VCardProperty::N) {
        for (i, field) in N_PARTS.iter().enumerate() {
            record.set(*field, Value::Text(component_text(n.values.get(i))));
        }
    }
    if let Some(nick) = card.property(&VCardProperty::Nickname) {
        let names: Vec<String> = nick.values.iter().map(value_text).collect();
        record.set("nickname", Value::Text(names.join(",")));
    }
    if let Some(org) = card.property(&VCardProperty::Org) {
        record.set("org", Value::Text(component_text(org.values.first())));
        record.set("department", Value::Text(component_text(org.values.get(1))));
    }
    record.set("title", text_of(card, VCardProperty::Title));
    record.set("note", text_of(card, VCardProperty::Note));
    record.set(
        "emails",
        Value::List(
            card.properties(&VCardProperty::Email)
                .map(read_email)
                .collect(),
        ),
    );
    record.set(
        "phones",
        Value::List(
            card.properties(&VCardProperty::Tel)
                .map(read_phone)
                .collect(),
        ),
    );
    record.set(
        "addresses",
        Value::List(
            card.properties(&VCardProperty::Adr)
                .map(read_address)
                .collect(),
        ),
    );
    record.set(
        "urls",
        Value::List(
            card.properties(&VCardProperty::Url)
                .filter_map(|e| e.values.first())
                .map(|v| Value::Text(value_text(v)))
                .filter(|v| !v.is_empty())
                .collect(),
        ),
    );
    if let Some(bday) = card.property(&VCardProperty::Bday) {
        // Birthdays are often junk; one that cannot be read leaves the field
        // out (its line stays untouched by patches) instead of failing the
        // whole contact.
        match read_birthday(bday) {
            Ok(value) => record.set("birthday", value),
            Err(error) => tracing::warn!(uid = %record.uid, %error, "ignoring unreadable BDAY"),
        }
    }
    record.set(
        "categories",
        Value::List(
            card.properties(&VCardProperty::Categories)
                .flat_map(|e| e.values.iter())
                .map(|v| Value::Text(value_text(v)))
                .filter(|v| !v.is_empty())
                .collect(),
        ),
    );
    record.modified = card
        .property(&VCardProperty::Rev)
        .and_then(|e| e.values.first())
        .and_then(VCardValue::as_partial_date_time)
        .and_then(datetime::unix_seconds);
    Ok(record)
}

fn value_text(value: &VCardValue) -> String {
    match value {
        VCardValue::Text(s) => s.clone(),
        VCardValue::Component(parts) => parts.join(","),
        VCardValue::Binary(data) => data.to_unwrapped_string(),
        VCardValue::Integer(i) => i.to_string(),
        VCardValue::Float(f) => f.to_string(),
        VCardValue::Boolean(b) => b.to_string(),
        other => other.as_text().unwrap_or_default().to_string(),
    }
}

fn component_text(value: Option<&VCardValue>) -> String {
    value.map(value_text).unwrap_or_default()
}

fn text_of(card: &VCard, property: VCardProperty) -> Value {
    Value::Text(
        card.property(&property)
            .and_then(|e| e.values.first())
            .map(value_text)
            .unwrap_or_default(),
    )
}

fn types_of(entry: &VCardEntry, implied: &[&str]) -> Value {
    let texts: Vec<&str> = entry
        .parameters(&VCardParameterName::Type)
        .filter_map(type_text)
        .collect();
    Value::Text(shape::type_list(texts, implied))
}

fn type_text(param: &VCardParameterValue) -> Option<&str> {
    match param {
        VCardParameterValue::Type(t) => Some(t.as_str()),
        VCardParameterValue::Text(s) => Some(s.as_str()),
        _ => None,
    }
}

fn read_email(entry: &VCardEntry) -> Value {
    Value::map([
        ("value", Value::Text(component_text(entry.values.first()))),
        ("type", types_of(entry, &EMAIL_IMPLIED_TYPES)),
    ])
}

fn read_phone(entry: &VCardEntry) -> Value {
    let number = component_text(entry.values.first());
    let number = shape::without_scheme(&number, "tel").to_string();
    Value::map([
        ("value", Value::Text(number)),
        ("type", types_of(entry, &IMPLIED_TYPES)),
    ])
}

fn read_address(entry: &VCardEntry) -> Value {
    let mut parts: Vec<(&str, Value)> = ADR_PARTS
        .iter()
        .enumerate()
        .map(|(i, key)| (*key, Value::Text(component_text(entry.values.get(i)))))
        .collect();
    parts.push(("type", types_of(entry, &IMPLIED_TYPES)));
    Value::map(parts)
}

fn read_birthday(entry: &VCardEntry) -> Result<Value, FormatError> {
    match entry.values.first() {
        Some(VCardValue::PartialDateTime(pdt)) => {
            let value = datetime::read(pdt, None, VCARD)
                .map_err(|e| FormatError::field("birthday", format!("BDAY: {e}")))?;
            let omitted = apple_omit_year(entry);
            match (&value, pdt.year, pdt.month, pdt.day) {
                (Value::Date(_), Some(year), Some(m), Some(d)) if omitted == Some(year) => {
                    Ok(Value::Date(format!("--{m:02}-{d:02}")))
                }
                _ => Ok(value),
            }
        }
        Some(other) => Ok(Value::Text(value_text(other))),
        None => Ok(Value::Text(String::new())),
    }
}

fn apple_omit_year(entry: &VCardEntry) -> Option<u16> {
    entry
        .params
        .iter()
        .find(|p| is_apple_omit_year(p))
        .and_then(|p| match &p.value {
            VCardParameterValue::Text(s) => s.trim().parse().ok(),
            VCardParameterValue::Integer(i) => u16::try_from(*i).ok(),
            _ => None,
        })
}

// ---------------------------------------------------------------- writing

/// Puts equivalent spellings into the one the card reads back: type lists
/// lower-cased and sorted without implied types, phone numbers without
/// `tel:`. A patch compares its result against the settled record.
///
/// Only the fields named in `changes` are settled: the others keep the
/// spelling they were read with, so they count as unchanged and their lines
/// stay as they are.
fn settle(record: &mut Record, changes: &[FieldChange]) {
    for (field, implied) in [
        ("emails", &EMAIL_IMPLIED_TYPES[..]),
        ("phones", &IMPLIED_TYPES[..]),
        ("addresses", &IMPLIED_TYPES[..]),
    ] {
        if !changes.iter().any(|change| change.field == field) {
            continue;
        }
        let Some(Value::List(items)) = record.fields_mut().get_mut(field) else {
            continue;
        };
        for item in items.iter_mut() {
            let Value::Map(map) = item else { continue };
            if let Some(Value::Text(types)) = map.get_mut("type") {
                *types = shape::type_list([types.as_str()], implied);
            }
            if field == "phones" {
                if let Some(Value::Text(number)) = map.get_mut("value") {
                    *number = shape::without_scheme(number, "tel").to_string();
                }
            }
        }
    }
}

/// FN is required; a record without `full_name` gets one from its name
/// parts, else its organisation, else its first email.
fn derived_full_name(record: &Record) -> String {
    if let Some(Value::Text(name)) = record.get("full_name") {
        return name.clone();
    }
    let parts: Vec<&str> = [
        "prefix",
        "given_name",
        "middle_name",
        "family_name",
        "suffix",
    ]
    .iter()
    .filter_map(|f| record.get(f).and_then(Value::as_text))
    .filter(|s| !s.is_empty())
    .collect();
    if !parts.is_empty() {
        return parts.join(" ");
    }
    if let Some(org) = record.get("org").and_then(Value::as_text) {
        return org.to_string();
    }
    record
        .get("emails")
        .and_then(Value::as_list)
        .and_then(|l| l.first())
        .and_then(Value::as_map)
        .and_then(|m| m.get("value"))
        .and_then(Value::as_text)
        .unwrap_or_default()
        .to_string()
}

/// Plans the property edits that make `card` say what `target` says for
/// every field in `changed`.
fn plan(
    card: &VCard,
    target: &Record,
    changed: &BTreeSet<String>,
    version: VCardVersion,
) -> Result<Vec<PropertyEdit<VCardEntry>>, FormatError> {
    let touched = |fields: &[&str]| fields.iter().any(|f| changed.contains(*f));
    let get = |field: &str| target.get(field);
    let mut edits = Vec::new();

    if touched(&["full_name"]) {
        // FN is required: a removed full name leaves an empty FN, which reads
        // back as absent.
        let value = get("full_name")
            .map(|v| shape::text("full_name", v))
            .transpose()?
            .unwrap_or_default();
        edits.push(replace_first(
            card,
            VCardProperty::Fn,
            Some(text_values(value, false)),
        ));
    }
    if touched(&N_PARTS) {
        edits.push(plan_n(card, target, version)?);
    }
    if touched(&["nickname"]) {
        let values = get("nickname")
            .map(|v| shape::text("nickname", v))
            .transpose()?
            .map(|s| {
                s.split(',')
                    .map(|n| VCardValue::Text(n.to_string()))
                    .collect()
            });
        edits.push(replace_first(card, VCardProperty::Nickname, values));
    }
    if touched(&["org", "department"]) {
        edits.push(plan_org(card, target)?);
    }
    for (field, property) in [
        ("title", VCardProperty::Title),
        ("note", VCardProperty::Note),
    ] {
        if touched(&[field]) {
            let values = get(field)
                .map(|v| shape::text(field, v))
                .transpose()?
                .map(|s| text_values(s, false));
            edits.push(replace_first(card, property, values));
        }
    }
    if touched(&["emails"]) {
        edits.push(plan_list(
            card,
            VCardProperty::Email,
            "emails",
            get("emails"),
            read_email,
            build_email,
        )?);
    }
    if touched(&["phones"]) {
        edits.push(plan_list(
            card,
            VCardProperty::Tel,
            "phones",
            get("phones"),
            read_phone,
            build_phone,
        )?);
    }
    if touched(&["addresses"]) {
        edits.push(plan_list(
            card,
            VCardProperty::Adr,
            "addresses",
            get("addresses"),
            read_address,
            build_address,
        )?);
    }
    if touched(&["urls"]) {
        edits.push(plan_list(
            card,
            VCardProperty::Url,
            "urls",
            get("urls"),
            |e| Value::Text(component_text(e.values.first())),
            |t, v| {
                let url = shape::text("urls", v)?;
                Ok(template(t, VCardProperty::Url)
                    .with_values(vec![VCardValue::Text(url.to_string())]))
            },
        )?);
    }
    if touched(&["birthday"]) {
        let existing = first(card, &VCardProperty::Bday);
        let entry = get("birthday")
            .map(|v| build_birthday(existing, v))
            .transpose()?;
        let mut emit: Vec<Emit<VCardEntry>> = entry.into_iter().map(Emit::New).collect();
        if !emit.is_empty() {
            emit.extend((1..count(card, "BDAY")).map(Emit::Keep));
        }
        edits.push(PropertyEdit::new(0, "BDAY", emit));
    }
    if touched(&["categories"]) {
        let values = match get("categories") {
            None => None,
            Some(v) => Some(
                shape::list("categories", v)?
                    .iter()
                    .map(|c| shape::text("categories", c).map(|c| VCardValue::Text(c.to_string())))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let entry = values.map(|values| {
            template(
                first(card, &VCardProperty::Categories),
                VCardProperty::Categories,
            )
            .with_values(values)
        });
        edits.push(PropertyEdit::new(
            0,
            VCardProperty::Categories.as_str(),
            entry.into_iter().map(Emit::New).collect(),
        ));
    }
    Ok(edits)
}

fn first<'c>(card: &'c VCard, property: &VCardProperty) -> Option<&'c VCardEntry> {
    card.property(property)
}

fn count(card: &VCard, name: &str) -> usize {
    card.entries
        .iter()
        .filter(|e| e.name.as_str().eq_ignore_ascii_case(name))
        .count()
}

fn entry_name(entry: &VCardEntry) -> &str {
    entry.name.as_str()
}

/// A copy of `existing` (keeping group and parameters) or a fresh entry.
fn template(existing: Option<&VCardEntry>, property: VCardProperty) -> VCardEntry {
    existing
        .cloned()
        .unwrap_or_else(|| VCardEntry::new(property))
}

fn text_values(text: &str, split_commas: bool) -> Vec<VCardValue> {
    if text.is_empty() {
        Vec::new()
    } else if split_commas && text.contains(',') {
        vec![VCardValue::Component(
            text.split(',').map(str::to_string).collect(),
        )]
    } else {
        vec![VCardValue::Text(text.to_string())]
    }
}

/// Rewrites the first entry of a single-valued property and keeps any
/// alternates (other languages); `None` removes them all.
fn replace_first(
    card: &VCard,
    property: VCardProperty,
    values: Option<Vec<VCardValue>>,
) -> PropertyEdit<VCardEntry> {
    let name = property.as_str().to_string();
    let emit = match values {
        None => Vec::new(),
        Some(values) => {
            let entry = template(first(card, &property), property).with_values(values);
            std::iter::once(Emit::New(entry))
                .chain((1..count(card, &name)).map(Emit::Keep))
                .collect()
        }
    };
    PropertyEdit::new(0, &name, emit)
}

fn plan_n(
    card: &VCard,
    target: &Record,
    version: VCardVersion,
) -> Result<PropertyEdit<VCardEntry>, FormatError> {
    let existing = first(card, &VCardProperty::N);
    let mut values = Vec::with_capacity(5);
    for field in N_PARTS {
        let text = target
            .get(field)
            .map(|v| shape::text(field, v))
            .transpose()?
            .unwrap_or_default();
        values.push(
            text_values(text, true)
                .pop()
                .unwrap_or_else(|| VCardValue::Text(String::new())),
        );
    }
    let extras: Vec<VCardValue> = existing
        .map(|e| e.values.iter().skip(5).cloned().collect())
        .unwrap_or_default();
    let all_empty = values.iter().all(|v| value_text(v).is_empty())
        && extras.iter().all(|v| value_text(v).is_empty());
    // vCard 3.0 requires N; 4.0 lets it go.
    if all_empty && version == VCardVersion::V4_0 {
        return Ok(PropertyEdit::new(0, "N", Vec::new()));
    }
    values.extend(extras);
    let entry = template(existing, VCardProperty::N).with_values(values);
    let emit = std::iter::once(Emit::New(entry))
        .chain((1..count(card, "N")).map(Emit::Keep))
        .collect();
    Ok(PropertyEdit::new(0, "N", emit))
}

fn plan_org(card: &VCard, target: &Record) -> Result<PropertyEdit<VCardEntry>, FormatError> {
    let existing = first(card, &VCardProperty::Org);
    let mut values = Vec::new();
    for field in ["org", "department"] {
        let text = target
            .get(field)
            .map(|v| shape::text(field, v))
            .transpose()?
            .unwrap_or_default();
        values.push(VCardValue::Text(text.to_string()));
    }
    values.extend(
        existing
            .map(|e| e.values.iter().skip(2).cloned().collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    while values.len() > 1 && values.last().is_some_and(|v| value_text(v).is_empty()) {
        values.pop();
    }
    if values.iter().all(|v| value_text(v).is_empty()) {
        return Ok(PropertyEdit::new(0, "ORG", Vec::new()));
    }
    let entry = template(existing, VCardProperty::Org).with_values(values);
    let emit = std::iter::once(Emit::New(entry))
        .chain((1..count(card, "ORG")).map(Emit::Keep))
        .collect();
    Ok(PropertyEdit::new(0, "ORG", emit))
}

/// Plans a multi-valued property: existing entries that still read as a
/// wanted element are kept byte for byte; an entry whose element changed but
/// kept its identity (same address, same number) is rewritten in place with
/// its group and other parameters; the rest are removed, and new elements go
/// after the kept ones.
fn plan_list(
    card: &VCard,
    property: VCardProperty,
    field: &str,
    wanted: Option<&Value>,
    read: impl Fn(&VCardEntry) -> Value,
    build: impl Fn(Option<&VCardEntry>, &Value) -> Result<VCardEntry, FormatError>,
) -> Result<PropertyEdit<VCardEntry>, FormatError> {
    let name = property.as_str().to_string();
    let wanted = wanted
        .map(|v| shape::list(field, v))
        .transpose()?
        .unwrap_or_default();
    let existing: Vec<&VCardEntry> = card.properties(&property).collect();
    let current: Vec<Value> = existing.iter().map(|e| read(e)).collect();
    let mut used = vec![false; wanted.len()];
    let mut slots: Vec<Option<Emit<VCardEntry>>> = vec![None; existing.len()];

    for (i, now) in current.iter().enumerate() {
        if let Some(j) = (0..wanted.len()).find(|j| !used[*j] && wanted[*j].same(now)) {
            used[j] = true;
            slots[i] = Some(Emit::Keep(i));
        }
    }
    for (i, now) in current.iter().enumerate() {
        if slots[i].is_some() {
            continue;
        }
        if let Some(j) =
            (0..wanted.len()).find(|j| !used[*j] && identity(&wanted[*j]) == identity(now))
        {
            used[j] = true;
            slots[i] = Some(Emit::New(build(existing.get(i).copied(), &wanted[j])?));
        }
    }
    let mut emit: Vec<Emit<VCardEntry>> = slots.into_iter().flatten().collect();
    for (j, value) in wanted.iter().enumerate() {
        if !used[j] && !wanted[..j].iter().any(|earlier| earlier.same(value)) {
            emit.push(Emit::New(build(None, value)?));
        }
    }
    Ok(PropertyEdit::new(0, &name, emit))
}

/// What makes two list elements "the same one, changed": the address or
/// number itself, ignoring its type.
fn identity(value: &Value) -> String {
    match value {
        Value::Map(map) => {
            let mut map = map.clone();
            map.remove("type");
            let key = Value::Map(map).normalised().to_string();
            key.to_lowercase()
        }
        other => shape::plain(other).to_lowercase(),
    }
}

/// Replaces the TYPE parameters, keeping those the record leaves implied
/// (`pref`, `internet`) from the original entry.
fn set_types(entry: &mut VCardEntry, types: Option<&str>, implied: &[&str]) {
    entry.params.retain(|p| {
        p.name != VCardParameterName::Type
            || type_text(&p.value)
                .is_some_and(|t| implied.iter().any(|i| t.eq_ignore_ascii_case(i)))
    });
    for t in types
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let value = match VCardType::parse(t.as_bytes()) {
            Some(known) => VCardParameterValue::Type(known),
            None => VCardParameterValue::Text(t.to_ascii_lowercase()),
        };
        entry.params.push(VCardParameter::typ(value));
    }
}

fn build_email(existing: Option<&VCardEntry>, value: &Value) -> Result<VCardEntry, FormatError> {
    let map = shape::map("emails", value, &["value", "type"])?;
    let address = shape::map_text("emails", map, "value")?
        .ok_or_else(|| FormatError::field("emails", "an email needs a `value`"))?;
    let mut entry = template(existing, VCardProperty::Email)
        .with_values(vec![VCardValue::Text(address.to_string())]);
    set_types(
        &mut entry,
        shape::map_text("emails", map, "type")?,
        &EMAIL_IMPLIED_TYPES,
    );
    Ok(entry)
}

fn build_phone(existing: Option<&VCardEntry>, value: &Value) -> Result<VCardEntry, FormatError> {
    let map = shape::map("phones", value, &["value", "type"])?;
    let number = shape::map_text("phones", map, "value")?
        .ok_or_else(|| FormatError::field("phones", "a phone needs a `value`"))?;
    let mut entry = template(existing, VCardProperty::Tel);
    let is_uri = entry.is_type(&VCardValueType::Uri);
    let number = if is_uri {
        format!("tel:{}", shape::without_scheme(number, "tel"))
    } else {
        number.to_string()
    };
    entry.values = vec![VCardValue::Text(number)];
    set_types(
        &mut entry,
        shape::map_text("phones", map, "type")?,
        &IMPLIED_TYPES,
    );
    Ok(entry)
}

fn build_address(existing: Option<&VCardEntry>, value: &Value) -> Result<VCardEntry, FormatError> {
    let mut allowed = ADR_PARTS.to_vec();
    allowed.push("type");
    let map = shape::map("addresses", value, &allowed)?;
    let mut entry = template(existing, VCardProperty::Adr);
    let extras: Vec<VCardValue> = entry.values.iter().skip(ADR_PARTS.len()).cloned().collect();
    let mut values = Vec::with_capacity(ADR_PARTS.len() + extras.len());
    for key in ADR_PARTS {
        let text = shape::map_text("addresses", map, key)?.unwrap_or_default();
        values.push(VCardValue::Text(text.to_string()));
    }
    values.extend(extras);
    entry.values = values;
    set_types(
        &mut entry,
        shape::map_text("addresses", map, "type")?,
        &IMPLIED_TYPES,
    );
    Ok(entry)
}

fn build_birthday(existing: Option<&VCardEntry>, value: &Value) -> Result<VCardEntry, FormatError> {
    let mut entry = template(existing, VCardProperty::Bday);
    entry.params.retain(|p| p.name != VCardParameterName::Value);
    if let Value::Text(text) = value {
        entry.params.retain(|p| !is_apple_omit_year(p));
        entry.params.push(VCardParameter::new(
            VCardParameterName::Value,
            VCardValueType::Text,
        ));
        entry.values = vec![VCardValue::Text(text.clone())];
        return Ok(entry);
    }
    let native = datetime::write(value, VCARD).map_err(|e| FormatError::field("birthday", e))?;
    let mut pdt = native.value;
    match apple_omit_year(&entry) {
        Some(year) if pdt.year.is_none() && pdt.month.is_some() && pdt.day.is_some() => {
            pdt.year = Some(year)
        }
        Some(_) => entry.params.retain(|p| !is_apple_omit_year(p)),
        None => {}
    }
    entry.values = vec![VCardValue::PartialDateTime(pdt)];
    Ok(entry)
}

fn is_apple_omit_year(param: &VCardParameter) -> bool {
    matches!(&param.name, VCardParameterName::Other(n) if n.eq_ignore_ascii_case(APPLE_OMIT_YEAR))
}

fn write_entry(entry: &VCardEntry, version: VCardVersion) -> Result<String, FormatError> {
    // calcard writes a year-less date as `--12-10` in 3.0 but reads only the
    // 4.0 spelling `--1210` back, which 3.0 readers accept too.
    let is_v4 = version == VCardVersion::V4_0
        || entry
            .values
            .iter()
            .any(|v| matches!(v, VCardValue::PartialDateTime(pdt) if pdt.year.is_none()));
    let mut out = String::new();
    shielded("writing vCard", || entry.write_to(&mut out, is_v4))?
        .map_err(|_| FormatError::new(format!("cannot write {}", entry.name.as_str())))?;
    Ok(out)
}

/// calcard's `VCard::write_to`, with each entry written by [`write_entry`].
fn write_card(card: &VCard, version: VCardVersion) -> Result<String, FormatError> {
    let mut out = format!("BEGIN:VCARD\r\nVERSION:{version}\r\n");
    for entry in &card.entries {
        if !matches!(
            entry.name,
            VCardProperty::Begin | VCardProperty::End | VCardProperty::Version
        ) {
            out.push_str(&write_entry(entry, version)?);
        }
    }
    out.push_str("END:VCARD\r\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phones(value: &str, kind: &str) -> Value {
        Value::List(vec![Value::map([
            ("value", Value::text(value)),
            ("type", Value::text(kind)),
        ])])
    }

    fn set(field: &str, value: Value) -> FieldChange {
        FieldChange {
            field: field.into(),
            value: Some(value),
        }
    }

    #[test]
    fn a_patch_settles_only_the_fields_it_changes() {
        let mut record = Record::new(Kind::Contact, "u").with("phones", phones("tel:+1", "CELL"));
        let before = record.clone();
        settle(&mut record, &[set("urls", Value::List(Vec::new()))]);
        assert_eq!(record, before);
        settle(&mut record, &[set("phones", phones("tel:+1", "CELL"))]);
        assert_eq!(record.get("phones"), Some(&phones("+1", "cell")));

        // The TEL line of a card whose phones the patch does not change stays
        // byte for byte, however odd its spelling.
        let card = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u\r\nFN:A\r\n\
TEL;TYPE=CELL:tel:tel:+44-20-7946-0000\r\nEND:VCARD\r\n";
        let urls = Value::List(vec![Value::text("https://example.org/")]);
        let patched = patch(card, &[set("urls", urls)]).unwrap();
        assert!(
            patched.contains("\r\nTEL;TYPE=CELL:tel:tel:+44-20-7946-0000\r\n"),
            "{patched}"
        );
    }

    #[test]
    fn phone_numbers_read_back_as_written() {
        for line in [
            "TEL:tel:tel:+44-20-7946-0000",
            "TEL;VALUE=uri:tel:TEL:+44-20-7946-0000",
            "TEL;VALUE=uri:tel:+44-20-7946-0000",
            "TEL:+44-20-7946-0000",
        ] {
            for version in ["3.0", "4.0"] {
                let card = format!(
                    "BEGIN:VCARD\r\nVERSION:{version}\r\nUID:u\r\nFN:A\r\n{line}\r\nEND:VCARD\r\n"
                );
                let read = parse(&card).unwrap();
                assert_eq!(
                    read.get("phones"),
                    Some(&phones("+44-20-7946-0000", "")),
                    "{card}"
                );
                // Rewritten with a new type, and rendered afresh, the number
                // reads back as it was read.
                let wanted = phones("+44-20-7946-0000", "cell");
                let patched = patch(&card, &[set("phones", wanted.clone())]).unwrap();
                assert_eq!(
                    parse(&patched).unwrap().get("phones"),
                    Some(&wanted),
                    "{patched}"
                );
                let rendered = render(&read).unwrap();
                assert_eq!(parse(&rendered).unwrap().get("phones"), read.get("phones"));
            }
        }
    }
}
