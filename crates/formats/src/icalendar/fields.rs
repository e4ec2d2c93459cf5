//! Event and task fields ↔ the properties of one VEVENT/VTODO component:
//! reading a component into fields, and planning the property edits that
//! write a field's new value into it.

use super::settle::{canonical_address, canonical_enum};
use crate::datetime::{self, ICALENDAR};
use crate::error::{shielded, FormatError};
use crate::patch::{Emit, PropertyEdit};
use crate::shape;
use calcard::common::{IanaParse, PartialDateTime};
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarParameter,
    ICalendarParameterName, ICalendarParameterValue, ICalendarParticipationRole,
    ICalendarParticipationStatus, ICalendarPeriod, ICalendarProperty, ICalendarRecurrenceRule,
    ICalendarStatus, ICalendarValue, ICalendarValueType, Uri,
};
use std::collections::BTreeMap;
use tandem_record::{Kind, Record, Value};

/// The keys of one element of `overrides`.
pub(crate) const OVERRIDE_KEYS: [&str; 8] = [
    "recurrence_id",
    "range",
    "summary",
    "description",
    "location",
    "start",
    "end",
    "status",
];
const ATTENDEE_KEYS: [&str; 5] = ["email", "cn", "partstat", "role", "rsvp"];
const RECURRENCE_KEYS: [&str; 3] = ["rrule", "rdate", "exdate"];

/// An override's `range` when its RECURRENCE-ID says `RANGE=THISANDFUTURE`
/// (RFC 5545 §3.2.13): it also governs the later instances. The only range
/// RFC 5545 defines; calcard reads it as `true` and drops any other.
pub(crate) const THIS_AND_FUTURE: &str = "THISANDFUTURE";

// ---------------------------------------------------------------- reading

/// Reads the master component's fields into `record`.
pub(crate) fn read_master(
    comp: &ICalendarComponent,
    kind: Kind,
    record: &mut Record,
) -> Result<(), FormatError> {
    record.set("summary", text_of(comp, &ICalendarProperty::Summary));
    record.set(
        "description",
        text_of(comp, &ICalendarProperty::Description),
    );
    record.set("status", text_of(comp, &ICalendarProperty::Status));
    record.set("categories", categories(comp));
    if let Some(start) = date_of(comp, &ICalendarProperty::Dtstart, "start")? {
        record.set("start", start);
    }
    match kind {
        Kind::Event => {
            record.set("location", text_of(comp, &ICalendarProperty::Location));
            if let Some(end) = date_of(comp, &ICalendarProperty::Dtend, "end")? {
                record.set("end", end);
            }
            if matches!(record.get("start"), Some(Value::Date(_))) {
                record.set("all_day", Value::Bool(true));
            }
            record.set("recurrence", read_recurrence(comp)?);
            record.set(
                "attendees",
                Value::List(
                    comp.properties(&ICalendarProperty::Attendee)
                        .map(read_attendee)
                        .collect(),
                ),
            );
            if let Some(organizer) = comp.property(&ICalendarProperty::Organizer) {
                record.set("organizer", Value::Text(address_of(organizer)));
            }
        }
        Kind::Task => {
            for (field, property) in [
                ("due", ICalendarProperty::Due),
                ("completed", ICalendarProperty::Completed),
            ] {
                if let Some(value) = date_of(comp, &property, field)? {
                    record.set(field, value);
                }
            }
            record.set("recurrence", read_recurrence(comp)?);
            record.set(
                "related_to",
                Value::List(
                    comp.properties(&ICalendarProperty::RelatedTo)
                        .flat_map(|e| e.values.iter())
                        .map(|v| Value::Text(value_text(v)))
                        .filter(|v| !v.is_empty())
                        .collect(),
                ),
            );
            for (field, property) in [
                ("priority", ICalendarProperty::Priority),
                ("percent_complete", ICalendarProperty::PercentComplete),
            ] {
                if let Some(entry) = comp.property(&property) {
                    match entry.values.first() {
                        Some(ICalendarValue::Integer(i)) => record.set(field, Value::Integer(*i)),
                        other => tracing::warn!(
                            uid = %record.uid,
                            value = ?other,
                            "ignoring unreadable {}",
                            property.as_str()
                        ),
                    }
                }
            }
        }
        Kind::Contact => {}
    }
    Ok(())
}

/// One element of `overrides`: the instance it replaces and what differs.
pub(crate) fn read_override(comp: &ICalendarComponent) -> Result<Value, FormatError> {
    let recurrence_id = date_of(comp, &ICalendarProperty::RecurrenceId, "overrides")?
        .unwrap_or_else(|| Value::Text(String::new()));
    let mut map = BTreeMap::new();
    map.insert("recurrence_id".to_string(), recurrence_id);
    if comp
        .property(&ICalendarProperty::RecurrenceId)
        .is_some_and(|e| e.parameter(&ICalendarParameterName::Range) == Some(&RANGED))
    {
        map.insert("range".into(), Value::text(THIS_AND_FUTURE));
    }
    map.insert("summary".into(), text_of(comp, &ICalendarProperty::Summary));
    map.insert(
        "description".into(),
        text_of(comp, &ICalendarProperty::Description),
    );
    map.insert(
        "location".into(),
        text_of(comp, &ICalendarProperty::Location),
    );
    map.insert("status".into(), text_of(comp, &ICalendarProperty::Status));
    for (key, property) in [
        ("start", ICalendarProperty::Dtstart),
        ("end", ICalendarProperty::Dtend),
    ] {
        if let Some(value) = date_of(comp, &property, "overrides")? {
            map.insert(key.into(), value);
        }
    }
    Ok(Value::map(map))
}

/// A component's DURATION in seconds.
pub(crate) fn duration_seconds(comp: &ICalendarComponent) -> Option<i64> {
    match comp
        .property(&ICalendarProperty::Duration)?
        .values
        .first()?
    {
        ICalendarValue::Duration(duration) => duration.to_time_delta().map(|d| d.num_seconds()),
        _ => None,
    }
}

/// A component's RECURRENCE-ID.
pub(crate) fn recurrence_id(comp: &ICalendarComponent) -> Result<Option<Value>, FormatError> {
    date_of(comp, &ICalendarProperty::RecurrenceId, "overrides")
}

/// The PERIOD values of a component's RDATEs (the record keeps them only as
/// text): each start with its end or length.
pub(crate) fn rdate_periods(
    comp: &ICalendarComponent,
) -> Result<Vec<(Value, crate::recurrence::PeriodEnd)>, FormatError> {
    use crate::recurrence::PeriodEnd;
    let mut periods = Vec::new();
    for entry in comp.properties(&ICalendarProperty::Rdate) {
        let date = |pdt: &PartialDateTime| {
            datetime::read(pdt, entry.tz_id(), ICALENDAR)
                .map_err(|e| FormatError::field("recurrence", format!("RDATE: {e}")))
        };
        for value in &entry.values {
            if let ICalendarValue::Period(period) = value {
                periods.push(match period {
                    ICalendarPeriod::Range { start, end } => {
                        (date(start)?, PeriodEnd::At(date(end)?))
                    }
                    ICalendarPeriod::Duration { start, duration } => (
                        date(start)?,
                        PeriodEnd::After(duration.to_time_delta().map_or(0, |d| d.num_seconds())),
                    ),
                });
            }
        }
    }
    Ok(periods)
}

pub(crate) fn last_modified(comp: &ICalendarComponent) -> Option<i64> {
    comp.property(&ICalendarProperty::LastModified)
        .and_then(|e| e.values.first())
        .and_then(ICalendarValue::as_partial_date_time)
        .and_then(datetime::unix_seconds)
}

fn text_of(comp: &ICalendarComponent, property: &ICalendarProperty) -> Value {
    Value::Text(
        comp.property(property)
            .and_then(|e| e.values.first())
            .map(value_text)
            .unwrap_or_default(),
    )
}

fn value_text(value: &ICalendarValue) -> String {
    match value.as_text() {
        Some(text) => text.to_string(),
        None => value
            .clone()
            .into_text()
            .map(|t| t.into_owned())
            .unwrap_or_default(),
    }
}

fn categories(comp: &ICalendarComponent) -> Value {
    Value::List(
        comp.properties(&ICalendarProperty::Categories)
            .flat_map(|e| e.values.iter())
            .map(|v| Value::Text(value_text(v)))
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

fn date_of(
    comp: &ICalendarComponent,
    property: &ICalendarProperty,
    field: &str,
) -> Result<Option<Value>, FormatError> {
    let Some(entry) = comp.property(property) else {
        return Ok(None);
    };
    match entry.values.first() {
        None => Ok(None),
        Some(value) => read_date(value, entry.tz_id())
            .map(Some)
            .map_err(|e| FormatError::field(field, format!("{}: {e}", property.as_str()))),
    }
}

fn read_date(value: &ICalendarValue, tzid: Option<&str>) -> Result<Value, String> {
    match value {
        ICalendarValue::PartialDateTime(pdt) => datetime::read(pdt, tzid, ICALENDAR),
        other => Err(format!("not a date or date-time: `{}`", value_text(other))),
    }
}

fn read_recurrence(comp: &ICalendarComponent) -> Result<Value, FormatError> {
    let rrule = comp
        .property(&ICalendarProperty::Rrule)
        .and_then(|e| e.values.first())
        .map(|v| match v {
            ICalendarValue::RecurrenceRule(rule) => rule.to_string(),
            // calcard read the line as text (a stray byte after the rule,
            // say): a rule that still parses on its own is read in the
            // same canonical order `settle` writes, so patching another
            // field does not look like a change of the rule.
            other => {
                let text = value_text(other);
                canonical_rrule(&text).unwrap_or(text)
            }
        })
        .unwrap_or_default();
    let mut lists = [Vec::new(), Vec::new()];
    for (list, property) in lists
        .iter_mut()
        .zip([ICalendarProperty::Rdate, ICalendarProperty::Exdate])
    {
        for entry in comp.properties(&property) {
            for value in &entry.values {
                list.push(match value {
                    ICalendarValue::PartialDateTime(_) => {
                        read_date(value, entry.tz_id()).map_err(|e| {
                            FormatError::field("recurrence", format!("{}: {e}", property.as_str()))
                        })?
                    }
                    other => Value::Text(value_text(other)),
                });
            }
        }
    }
    let [rdate, exdate] = lists;
    Ok(Value::map([
        ("rrule", Value::Text(rrule)),
        ("rdate", Value::List(rdate)),
        ("exdate", Value::List(exdate)),
    ]))
}

fn read_attendee(entry: &ICalendarEntry) -> Value {
    let param_text = |name: &ICalendarParameterName| {
        entry
            .parameter(name)
            .and_then(ICalendarParameterValue::as_text)
            .map(str::to_string)
            .unwrap_or_default()
    };
    let rsvp = match entry.parameter(&ICalendarParameterName::Rsvp) {
        Some(ICalendarParameterValue::Bool(b)) => Value::Bool(*b),
        Some(other) => Value::Text(other.as_text().unwrap_or_default().to_string()),
        None => Value::Text(String::new()),
    };
    Value::map([
        ("email", Value::Text(address_of(entry))),
        ("cn", Value::Text(param_text(&ICalendarParameterName::Cn))),
        (
            "partstat",
            Value::Text(param_text(&ICalendarParameterName::Partstat)),
        ),
        (
            "role",
            Value::Text(param_text(&ICalendarParameterName::Role)),
        ),
        ("rsvp", rsvp),
    ])
}

/// The calendar address of an ATTENDEE/ORGANIZER, as the record keeps it.
fn address_of(entry: &ICalendarEntry) -> String {
    canonical_address(&entry.values.first().map(value_text).unwrap_or_default())
}

// ---------------------------------------------------------------- writing

/// Plans the edits that write `value` (`None` = remove) for `field` into
/// component `id`. `label` is the record field errors are reported under.
pub(crate) fn plan_field(
    comp: &ICalendarComponent,
    id: usize,
    field: &str,
    value: Option<&Value>,
    label: &str,
) -> Result<Vec<PropertyEdit<ICalendarEntry>>, FormatError> {
    let text = |value: Option<&Value>| -> Result<Option<String>, FormatError> {
        value
            .map(|v| shape::text(label, v).map(str::to_string))
            .transpose()
    };
    let mut edits = Vec::new();
    match field {
        "summary" | "description" | "location" => {
            let property = match field {
                "summary" => ICalendarProperty::Summary,
                "description" => ICalendarProperty::Description,
                _ => ICalendarProperty::Location,
            };
            let values = text(value)?.map(|t| vec![ICalendarValue::Text(t)]);
            edits.push(replace_first(comp, id, property, values));
        }
        "status" => {
            let values = text(value)?.map(|t| {
                vec![match ICalendarStatus::parse(t.as_bytes()) {
                    Some(status) => ICalendarValue::Status(status),
                    None => ICalendarValue::Text(t),
                }]
            });
            edits.push(replace_first(comp, id, ICalendarProperty::Status, values));
        }
        "start" | "end" | "due" | "completed" => {
            let property = match field {
                "start" => ICalendarProperty::Dtstart,
                "end" => ICalendarProperty::Dtend,
                "due" => ICalendarProperty::Due,
                _ => ICalendarProperty::Completed,
            };
            let entry = value
                .map(|v| build_date(comp.property(&property), property.clone(), v, label))
                .transpose()?;
            // DTEND/DUE and DURATION exclude each other.
            if entry.is_some() && matches!(field, "end" | "due") {
                edits.push(PropertyEdit::new(
                    id,
                    ICalendarProperty::Duration.as_str(),
                    Vec::new(),
                ));
            }
            edits.push(PropertyEdit::new(
                id,
                property.as_str(),
                entry.into_iter().map(Emit::New).collect(),
            ));
        }
        "priority" | "percent_complete" => {
            let (property, max) = if field == "priority" {
                (ICalendarProperty::Priority, 9)
            } else {
                (ICalendarProperty::PercentComplete, 100)
            };
            let values = match value {
                None => None,
                Some(v) => {
                    let n = shape::integer(label, v)?;
                    if !(0..=max).contains(&n) {
                        return Err(FormatError::field(
                            label,
                            format!("{}: {n} is outside 0..={max}", property.as_str()),
                        ));
                    }
                    Some(vec![ICalendarValue::Integer(n)])
                }
            };
            edits.push(replace_first(comp, id, property, values));
        }
        "categories" => {
            let entry = match value {
                None => None,
                Some(v) => {
                    let values = shape::list(label, v)?
                        .iter()
                        .map(|c| shape::text(label, c).map(|c| ICalendarValue::Text(c.to_string())))
                        .collect::<Result<Vec<_>, _>>()?;
                    Some(
                        template(
                            comp.property(&ICalendarProperty::Categories),
                            ICalendarProperty::Categories,
                        )
                        .with_values(values),
                    )
                }
            };
            edits.push(PropertyEdit::new(
                id,
                ICalendarProperty::Categories.as_str(),
                entry.into_iter().map(Emit::New).collect(),
            ));
        }
        "organizer" => {
            let entry = match text(value)? {
                None => None,
                Some(address) => {
                    let mut entry = template(
                        comp.property(&ICalendarProperty::Organizer),
                        ICalendarProperty::Organizer,
                    );
                    // Parameters about the previous organizer no longer apply.
                    entry.params.retain(|p| {
                        !matches!(
                            p.name,
                            ICalendarParameterName::Cn
                                | ICalendarParameterName::SentBy
                                | ICalendarParameterName::Dir
                                | ICalendarParameterName::ScheduleStatus
                        )
                    });
                    entry.values = vec![address_value(&address)];
                    Some(entry)
                }
            };
            edits.push(PropertyEdit::new(
                id,
                ICalendarProperty::Organizer.as_str(),
                entry.into_iter().map(Emit::New).collect(),
            ));
        }
        "range" => edits.push(plan_range(comp, id, text(value)?, label)?),
        "attendees" => edits.push(plan_attendees(comp, id, value, label)?),
        "related_to" => edits.push(plan_related(comp, id, value, label)?),
        "recurrence" => edits.extend(plan_recurrence(comp, id, value, label)?),
        other => {
            return Err(FormatError::field(
                label,
                format!("`{other}` cannot be written to iCalendar"),
            ))
        }
    }
    Ok(edits)
}

/// How calcard holds `RANGE=THISANDFUTURE`.
const RANGED: ICalendarParameterValue = ICalendarParameterValue::Bool(true);

/// Sets or removes the RANGE parameter of an override's RECURRENCE-ID; the
/// rest of the line stays as it is.
fn plan_range(
    comp: &ICalendarComponent,
    id: usize,
    range: Option<String>,
    label: &str,
) -> Result<PropertyEdit<ICalendarEntry>, FormatError> {
    let ranged = match range.as_deref() {
        None | Some("") => false,
        Some(r) if r.eq_ignore_ascii_case(THIS_AND_FUTURE) => true,
        Some(other) => {
            return Err(FormatError::field(
                label,
                format!("`range` must be {THIS_AND_FUTURE} or empty, found `{other}`"),
            ))
        }
    };
    let mut entry = comp
        .property(&ICalendarProperty::RecurrenceId)
        .cloned()
        .ok_or_else(|| FormatError::field(label, "`range` needs a RECURRENCE-ID"))?;
    set_param(
        &mut entry,
        ICalendarParameterName::Range,
        ranged.then_some(RANGED),
    );
    let others = comp.properties(&ICalendarProperty::RecurrenceId).count();
    Ok(PropertyEdit::new(
        id,
        ICalendarProperty::RecurrenceId.as_str(),
        std::iter::once(Emit::New(entry))
            .chain((1..others).map(Emit::Keep))
            .collect(),
    ))
}

/// Builds the component of a new override: UID, DTSTAMP, RECURRENCE-ID and
/// the override's fields.
pub(crate) fn new_override(uid: &str, value: &Value) -> Result<ICalendarComponent, FormatError> {
    let map = shape::map("overrides", value, &OVERRIDE_KEYS)?;
    let recurrence_id = map
        .get("recurrence_id")
        .ok_or_else(|| FormatError::field("overrides", "an override needs a `recurrence_id`"))?;
    let mut comp = ICalendarComponent {
        component_type: ICalendarComponentType::VEvent,
        entries: vec![
            ICalendarEntry::new(ICalendarProperty::Uid).with_value(uid.to_string()),
            ICalendarEntry::new(ICalendarProperty::Dtstamp).with_value(datetime::now_utc()),
            build_date(
                None,
                ICalendarProperty::RecurrenceId,
                recurrence_id,
                "overrides",
            )?,
        ],
        component_ids: Vec::new(),
    };
    for key in OVERRIDE_KEYS.iter().skip(1) {
        if let Some(v) = map.get(*key).filter(|v| !v.is_empty()) {
            for edit in plan_field(&comp, 0, key, Some(v), "overrides")? {
                crate::patch::apply_to_entries(&mut comp.entries, &edit, entry_name);
            }
        }
    }
    Ok(comp)
}

pub(crate) fn entry_name(entry: &ICalendarEntry) -> &str {
    entry.name.as_str()
}

fn template(existing: Option<&ICalendarEntry>, property: ICalendarProperty) -> ICalendarEntry {
    existing
        .cloned()
        .unwrap_or_else(|| ICalendarEntry::new(property))
}

/// Rewrites the first entry of a single-valued property and keeps any
/// others (other languages); `None` removes them all. ALTREP points at a
/// rendering of the old text, so it goes.
fn replace_first(
    comp: &ICalendarComponent,
    id: usize,
    property: ICalendarProperty,
    values: Option<Vec<ICalendarValue>>,
) -> PropertyEdit<ICalendarEntry> {
    let name = property.as_str().to_string();
    let emit = match values {
        None => Vec::new(),
        Some(values) => {
            let mut entry =
                template(comp.property(&property), property.clone()).with_values(values);
            entry
                .params
                .retain(|p| p.name != ICalendarParameterName::Altrep);
            let others = comp.properties(&property).count();
            std::iter::once(Emit::New(entry))
                .chain((1..others).map(Emit::Keep))
                .collect()
        }
    };
    PropertyEdit::new(id, &name, emit)
}

/// A DTSTART/DTEND/DUE/COMPLETED/RECURRENCE-ID entry; other parameters of
/// the existing entry are kept, TZID and VALUE follow the new value.
fn build_date(
    existing: Option<&ICalendarEntry>,
    property: ICalendarProperty,
    value: &Value,
    label: &str,
) -> Result<ICalendarEntry, FormatError> {
    let native = datetime::write(value, ICALENDAR)
        .map_err(|e| FormatError::field(label, format!("{}: {e}", property.as_str())))?;
    let mut entry = template(existing, property);
    entry.params.retain(|p| {
        !matches!(
            p.name,
            ICalendarParameterName::Tzid | ICalendarParameterName::Value
        )
    });
    if let Some(tzid) = native.tzid {
        entry
            .params
            .push(ICalendarParameter::new(ICalendarParameterName::Tzid, tzid));
    }
    if native.is_date {
        entry.params.push(ICalendarParameter::new(
            ICalendarParameterName::Value,
            ICalendarValueType::Date,
        ));
    }
    entry.values = vec![ICalendarValue::PartialDateTime(Box::new(native.value))];
    Ok(entry)
}

fn address_value(address: &str) -> ICalendarValue {
    let uri = if address.contains(':') {
        address.to_string()
    } else {
        format!("mailto:{address}")
    };
    ICalendarValue::Uri(Uri::Location(uri))
}

/// Attendees are matched by address: an unchanged attendee keeps its line,
/// a changed one is rewritten with its other parameters, new ones go last.
fn plan_attendees(
    comp: &ICalendarComponent,
    id: usize,
    value: Option<&Value>,
    label: &str,
) -> Result<PropertyEdit<ICalendarEntry>, FormatError> {
    let wanted = value
        .map(|v| shape::list(label, v))
        .transpose()?
        .unwrap_or_default();
    let existing: Vec<&ICalendarEntry> = comp.properties(&ICalendarProperty::Attendee).collect();
    let current: Vec<Value> = existing.iter().map(|e| read_attendee(e)).collect();
    let address = |v: &Value| {
        v.as_map()
            .and_then(|m| m.get("email"))
            .map(shape::plain)
            .unwrap_or_default()
    };
    let mut used = vec![false; wanted.len()];
    let mut slots: Vec<Option<Emit<ICalendarEntry>>> = vec![None; existing.len()];
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
            (0..wanted.len()).find(|j| !used[*j] && address(&wanted[*j]) == address(now))
        {
            used[j] = true;
            slots[i] = Some(Emit::New(build_attendee(
                existing.get(i).copied(),
                &wanted[j],
                label,
            )?));
        }
    }
    let mut emit: Vec<Emit<ICalendarEntry>> = slots.into_iter().flatten().collect();
    for (j, value) in wanted.iter().enumerate() {
        if !used[j] && !wanted[..j].iter().any(|earlier| earlier.same(value)) {
            emit.push(Emit::New(build_attendee(None, value, label)?));
        }
    }
    Ok(PropertyEdit::new(
        id,
        ICalendarProperty::Attendee.as_str(),
        emit,
    ))
}

fn build_attendee(
    existing: Option<&ICalendarEntry>,
    value: &Value,
    label: &str,
) -> Result<ICalendarEntry, FormatError> {
    let map = shape::map(label, value, &ATTENDEE_KEYS)?;
    let email = shape::map_text(label, map, "email")?
        .ok_or_else(|| FormatError::field(label, "an attendee needs an `email`"))?;
    let mut entry = template(existing, ICalendarProperty::Attendee);
    if existing.is_none_or(|e| address_of(e) != canonical_address(email)) {
        entry.values = vec![address_value(email)];
    }
    let cn = shape::map_text(label, map, "cn")?;
    set_param(
        &mut entry,
        ICalendarParameterName::Cn,
        cn.map(|c| ICalendarParameterValue::Text(c.to_string())),
    );
    let partstat = shape::map_text(label, map, "partstat")?.map(|p| {
        ICalendarParticipationStatus::parse(p.as_bytes()).map_or_else(
            || ICalendarParameterValue::Text(p.to_string()),
            ICalendarParameterValue::Partstat,
        )
    });
    set_param(&mut entry, ICalendarParameterName::Partstat, partstat);
    let role = shape::map_text(label, map, "role")?.map(|r| {
        ICalendarParticipationRole::parse(r.as_bytes()).map_or_else(
            || ICalendarParameterValue::Text(r.to_string()),
            ICalendarParameterValue::Role,
        )
    });
    set_param(&mut entry, ICalendarParameterName::Role, role);
    let rsvp = match map.get("rsvp") {
        None => None,
        Some(Value::Bool(b)) => Some(ICalendarParameterValue::Bool(*b)),
        Some(Value::Text(t)) if t.is_empty() => None,
        Some(other) => {
            return Err(FormatError::field(
                label,
                format!("`rsvp` must be true or false, found `{other}`"),
            ))
        }
    };
    set_param(&mut entry, ICalendarParameterName::Rsvp, rsvp);
    Ok(entry)
}

/// Sets a parameter in place (keeping its position), adds it last, or
/// removes it.
fn set_param(
    entry: &mut ICalendarEntry,
    name: ICalendarParameterName,
    value: Option<ICalendarParameterValue>,
) {
    let at = entry.params.iter().position(|p| p.name == name);
    entry.params.retain(|p| p.name != name);
    if let Some(value) = value {
        let param = ICalendarParameter::new(name, value);
        match at {
            Some(at) if at <= entry.params.len() => entry.params.insert(at, param),
            _ => entry.params.push(param),
        }
    }
}

/// RELATED-TO lines naming a UID that is still wanted are kept as they are
/// (with their RELTYPE); the other wanted UIDs get a line each, last.
fn plan_related(
    comp: &ICalendarComponent,
    id: usize,
    value: Option<&Value>,
    label: &str,
) -> Result<PropertyEdit<ICalendarEntry>, FormatError> {
    let mut wanted: Vec<&str> = Vec::new();
    for uid in value
        .map(|v| shape::list(label, v))
        .transpose()?
        .unwrap_or_default()
    {
        let uid = shape::text(label, uid)?;
        if !uid.is_empty() && !wanted.contains(&uid) {
            wanted.push(uid);
        }
    }
    let mut emit = Vec::new();
    for (i, entry) in comp.properties(&ICalendarProperty::RelatedTo).enumerate() {
        let uids: Vec<String> = entry.values.iter().map(value_text).collect();
        if !uids.is_empty() && uids.iter().all(|u| wanted.contains(&u.as_str())) {
            wanted.retain(|w| !uids.iter().any(|u| u == w));
            emit.push(Emit::Keep(i));
        }
    }
    for uid in wanted {
        emit.push(Emit::New(
            ICalendarEntry::new(ICalendarProperty::RelatedTo).with_value(uid.to_string()),
        ));
    }
    Ok(PropertyEdit::new(
        id,
        ICalendarProperty::RelatedTo.as_str(),
        emit,
    ))
}

/// RRULE, RDATE and EXDATE are planned separately, so changing the rule
/// leaves the exception lines as they were.
fn plan_recurrence(
    comp: &ICalendarComponent,
    id: usize,
    value: Option<&Value>,
    label: &str,
) -> Result<Vec<PropertyEdit<ICalendarEntry>>, FormatError> {
    let empty = BTreeMap::new();
    let wanted = match value {
        None => &empty,
        Some(v) => shape::map(label, v, &RECURRENCE_KEYS)?,
    };
    let current = read_recurrence(comp)?;
    let current = current.as_map().unwrap_or(&empty);
    let mut edits = Vec::new();

    if !Value::same_opt(current.get("rrule"), wanted.get("rrule")) {
        let entry = shape::map_text(label, wanted, "rrule")?
            .map(|text| {
                parse_rrule(text, label).map(|rule| {
                    template(
                        comp.property(&ICalendarProperty::Rrule),
                        ICalendarProperty::Rrule,
                    )
                    .with_values(vec![ICalendarValue::RecurrenceRule(Box::new(rule))])
                })
            })
            .transpose()?;
        edits.push(PropertyEdit::new(
            id,
            ICalendarProperty::Rrule.as_str(),
            entry.into_iter().map(Emit::New).collect(),
        ));
    }
    for (key, property) in [
        ("rdate", ICalendarProperty::Rdate),
        ("exdate", ICalendarProperty::Exdate),
    ] {
        if !Value::same_opt(current.get(key), wanted.get(key)) {
            let dates = wanted
                .get(key)
                .map(|v| shape::list(label, v))
                .transpose()?
                .unwrap_or_default();
            edits.push(plan_dates(comp, id, property, dates, label)?);
        }
    }
    Ok(edits)
}

/// RDATE/EXDATE lines whose dates are all still wanted are kept; the other
/// wanted dates are written one line per zone and kind.
fn plan_dates(
    comp: &ICalendarComponent,
    id: usize,
    property: ICalendarProperty,
    wanted: &[Value],
    label: &str,
) -> Result<PropertyEdit<ICalendarEntry>, FormatError> {
    // Keyed by the normalised value, so long EXDATE lists stay linear.
    let key = |v: &Value| format!("{:?}", v.normalised());
    let mut left: BTreeMap<String, &Value> = wanted.iter().map(|v| (key(v), v)).collect();
    let mut emit = Vec::new();
    for (i, entry) in comp.properties(&property).enumerate() {
        let keys: Vec<String> = entry
            .values
            .iter()
            .map(|v| match v {
                ICalendarValue::PartialDateTime(_) => {
                    read_date(v, entry.tz_id()).unwrap_or_else(Value::Text)
                }
                other => Value::Text(value_text(other)),
            })
            .map(|v| key(&v))
            .collect();
        if !keys.is_empty() && keys.iter().all(|k| left.contains_key(k)) {
            for k in &keys {
                left.remove(k);
            }
            emit.push(Emit::Keep(i));
        }
    }
    let mut groups: Vec<(Option<String>, bool, Vec<PartialDateTime>)> = Vec::new();
    for value in left.into_values() {
        let native = datetime::write(value, ICALENDAR)
            .map_err(|e| FormatError::field(label, format!("{}: {e}", property.as_str())))?;
        match groups
            .iter_mut()
            .find(|(tz, is_date, _)| *tz == native.tzid && *is_date == native.is_date)
        {
            Some(group) => group.2.push(native.value),
            None => groups.push((native.tzid, native.is_date, vec![native.value])),
        }
    }
    for (tzid, is_date, values) in groups {
        let mut entry = ICalendarEntry::new(property.clone());
        if let Some(tzid) = tzid {
            entry
                .params
                .push(ICalendarParameter::new(ICalendarParameterName::Tzid, tzid));
        }
        if is_date {
            entry.params.push(ICalendarParameter::new(
                ICalendarParameterName::Value,
                ICalendarValueType::Date,
            ));
        }
        entry.values = values
            .into_iter()
            .map(|v| ICalendarValue::PartialDateTime(Box::new(v)))
            .collect();
        emit.push(Emit::New(entry));
    }
    Ok(PropertyEdit::new(id, property.as_str(), emit))
}

/// Reads an RRULE value with calcard, so it is checked and comes back in
/// calcard's canonical part order.
pub(crate) fn parse_rrule(text: &str, label: &str) -> Result<ICalendarRecurrenceRule, FormatError> {
    let invalid = |why: &str| FormatError::field(label, format!("RRULE `{text}` {why}"));
    if text.chars().any(char::is_control) {
        return Err(invalid("contains control characters"));
    }
    let doc = format!(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nRRULE:{text}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    );
    let parsed = shielded("parsing RRULE", || ICalendar::parse(&doc))?
        .map_err(|_| invalid("cannot be read"))?;
    parsed
        .components
        .iter()
        .flat_map(|c| c.entries.iter())
        .find(|e| e.name == ICalendarProperty::Rrule)
        .and_then(|e| match e.values.first() {
            Some(ICalendarValue::RecurrenceRule(rule)) => Some((**rule).clone()),
            _ => None,
        })
        .ok_or_else(|| invalid("is not a valid recurrence rule"))
}

/// The record spelling of an RRULE: calcard's canonical part order, as
/// reading and writing both keep it.
pub(crate) fn canonical_rrule(text: &str) -> Result<String, FormatError> {
    parse_rrule(text, "recurrence").map(|rule| rule.to_string())
}

/// The record spelling of a participation status or role parameter.
pub(crate) fn canonical_partstat(text: &str) -> String {
    canonical_enum::<ICalendarParticipationStatus>(text)
}

pub(crate) fn canonical_role(text: &str) -> String {
    canonical_enum::<ICalendarParticipationRole>(text)
}

pub(crate) fn canonical_status(text: &str) -> String {
    canonical_enum::<ICalendarStatus>(text)
}
