//! iCalendar ↔ event and task records: one VCALENDAR holds one series (a
//! VEVENT or VTODO master plus RECURRENCE-ID overrides sharing its UID), and
//! the series is one record.
//!
//! | field | property of the master |
//! |---|---|
//! | `summary`, `description`, `location`, `status` | SUMMARY, DESCRIPTION, LOCATION, STATUS |
//! | `start`, `end`, `due`, `completed` | DTSTART, DTEND, DUE, COMPLETED (date or date-time, TZID kept as `tz`) |
//! | `all_day` | `true` when DTSTART is a DATE, absent otherwise |
//! | `recurrence` | `{rrule, rdate, exdate}`: RRULE text (calcard's canonical order), RDATE and EXDATE dates (events and tasks) |
//! | `overrides` | one `{recurrence_id, range, summary, description, location, start, end, status}` per override component; `range` is `THISANDFUTURE` when RECURRENCE-ID has `RANGE=THISANDFUTURE`, absent otherwise |
//! | `attendees` | ATTENDEE as `{email, cn, partstat, role, rsvp}` |
//! | `organizer` | ORGANIZER address |
//! | `priority`, `percent_complete` | PRIORITY, PERCENT-COMPLETE (integers) |
//! | `categories` | CATEGORIES (all lines, as one list) |
//! | `related_to` | RELATED-TO of a task (the UIDs, all lines, as one list) |
//!
//! `uid` comes from UID and `modified` from the master's LAST-MODIFIED.
//! Addresses drop `mailto:` and are lower-cased. DTEND is read as `end`
//! only when present: an event timed by DURATION has no `end`, and its
//! DURATION is left alone until an `end` is written.

mod fields;
mod settle;

pub(crate) use fields::{parse_rrule, THIS_AND_FUTURE};

use crate::error::{read_entries, shielded, FormatError};
use crate::patch::{self, PropertyEdit};
use crate::splice::{Scan, Splice};
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarParameterName,
    ICalendarProperty, ICalendarValue,
};
use calcard::Entry;
use std::collections::BTreeSet;
use tandem_record::{FieldChange, Kind, Record, Value};

const PRODID: &str = "-//Tandem//EN";

/// The fields that say when an event is, settled together on write.
const TIME_SHAPE: [&str; 3] = ["start", "end", "all_day"];

pub(crate) fn parse(text: &str) -> Result<Record, FormatError> {
    let calendar = read_calendar(text)?;
    let series = Series::find(&calendar)?;
    to_record(&calendar, &series)
}

/// Parses an item for [`crate::recurrence::expand_item`]: the record plus
/// what it does not carry (the master's DURATION, the VTIMEZONE zones).
pub(crate) fn parse_for_expansion(
    text: &str,
) -> Result<(Record, crate::recurrence::Context), FormatError> {
    let calendar = read_calendar(text)?;
    let series = Series::find(&calendar)?;
    let record = to_record(&calendar, &series)?;
    let mut context = crate::recurrence::Context::new(&calendar);
    if let Some(master) = series.master.and_then(|id| calendar.components.get(id)) {
        context.duration = fields::duration_seconds(master);
        context.periods = fields::rdate_periods(master)?;
    }
    for component in series
        .overrides
        .iter()
        .filter_map(|id| calendar.components.get(*id))
    {
        if let (Some(id), Some(seconds)) = (
            fields::recurrence_id(component)?,
            fields::duration_seconds(component),
        ) {
            context.override_durations.push((id, seconds));
        }
    }
    Ok((record, context))
}

/// Splits a whole calendar (an `.ics` export with many series) into items
/// of one series each, as a CalDAV server stores them: the VEVENT/VTODO
/// components sharing a UID, with the VTIMEZONEs they refer to. Components
/// of other types (VJOURNAL, VFREEBUSY) and ones without a UID are left out.
pub(crate) fn split(text: &str) -> Result<Vec<String>, FormatError> {
    let mut items = Vec::new();
    for entry in read_entries("parsing iCalendar", text)? {
        let Entry::ICalendar(calendar) = entry else {
            continue;
        };
        let Some(root) = calendar.components.first() else {
            continue;
        };
        let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
        for id in &root.component_ids {
            let Some(component) = calendar.components.get(*id as usize) else {
                continue;
            };
            if !matches!(
                component.component_type,
                ICalendarComponentType::VEvent | ICalendarComponentType::VTodo
            ) {
                continue;
            }
            let Some(uid) = component.uid().filter(|u| !u.trim().is_empty()) else {
                continue;
            };
            match groups.iter_mut().find(|(u, _)| u == uid) {
                Some((_, ids)) => ids.push(*id),
                None => groups.push((uid.to_string(), vec![*id])),
            }
        }
        for (_, ids) in groups {
            let mut item = calendar.clone();
            let used = zones_named(&ICalendar {
                components: ids
                    .iter()
                    .filter_map(|id| calendar.components.get(*id as usize).cloned())
                    .collect(),
            });
            if let Some(root) = item.components.first_mut() {
                root.component_ids.retain(|id| {
                    ids.contains(id)
                        || calendar
                            .components
                            .get(*id as usize)
                            .and_then(timezone_id)
                            .is_some_and(|tzid| used.contains(tzid))
                });
            }
            items.push(write_calendar(&item)?);
        }
    }
    Ok(items)
}

pub(crate) fn render(record: &Record) -> Result<String, FormatError> {
    let component_type = match record.kind {
        Kind::Event => ICalendarComponentType::VEvent,
        Kind::Task => ICalendarComponentType::VTodo,
        Kind::Contact => {
            return Err(FormatError::new(
                "an iCalendar item holds events or tasks, not a contact",
            ))
        }
    };
    if record.uid.is_empty() {
        return Err(FormatError::new("the record has no UID"));
    }
    for field in record.fields.keys() {
        patch::check_field(record.kind, field)?;
    }
    let mut target = record.clone();
    let wish = match record.get("all_day") {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    };
    settle::settle(&mut target, wish)?;

    let mut master = vec![
        ICalendarEntry::new(ICalendarProperty::Uid).with_value(record.uid.clone()),
        ICalendarEntry::new(ICalendarProperty::Dtstamp).with_value(crate::datetime::now_utc()),
    ];
    if let Some(modified) = record.modified.and_then(crate::datetime::from_unix) {
        master.push(ICalendarEntry::new(ICalendarProperty::LastModified).with_value(modified));
    }
    let calendar = ICalendar {
        components: vec![
            ICalendarComponent {
                component_type: ICalendarComponentType::VCalendar,
                entries: vec![
                    ICalendarEntry::new(ICalendarProperty::Version).with_value("2.0"),
                    ICalendarEntry::new(ICalendarProperty::Prodid).with_value(PRODID),
                ],
                component_ids: vec![1],
            },
            ICalendarComponent {
                component_type,
                entries: master,
                component_ids: Vec::new(),
            },
        ],
    };
    let series = Series {
        kind: record.kind,
        uid: record.uid.clone(),
        master: Some(1),
        overrides: Vec::new(),
    };
    let changed: BTreeSet<String> = target.fields.keys().cloned().collect();
    let plan = plan(&calendar, &series, &target, &changed)?;
    let mut model = plan.apply_to(&calendar, &series);
    add_new_timezones(&calendar, &mut model)?;
    write_calendar(&model)
}

pub(crate) fn patch(original: &str, changes: &[FieldChange]) -> Result<String, FormatError> {
    let calendar = read_calendar(original)?;
    let series = Series::find(&calendar)?;
    let record = to_record(&calendar, &series)?;
    let target = patch::target(&record, changes, |target, changes| {
        let wish = changes
            .iter()
            .any(|c| c.field == "all_day")
            .then(|| target.get("all_day") == Some(&Value::Bool(true)));
        settle::settle(target, wish)?;
        // Only a change to the time shape settles it: otherwise the item
        // keeps it as written (an all-day DTSTART with a date-time DTEND
        // stays so) and a patch of other fields leaves DTEND alone.
        if !changes
            .iter()
            .any(|c| TIME_SHAPE.contains(&c.field.as_str()))
        {
            for field in TIME_SHAPE {
                match record.get(field) {
                    Some(value) => target.set(field, value.clone()),
                    None => {
                        target.remove(field);
                    }
                }
            }
        }
        Ok(())
    })?;
    let plan = plan(&calendar, &series, &target.record, &target.changed)?;
    if plan.is_empty() {
        return Ok(original.to_string());
    }
    let mut model = plan.apply_to(&calendar, &series);
    let timezones = add_new_timezones(&calendar, &mut model)?;
    let scan = Scan::new(original, false);
    let spliced = splice(
        original, &scan, &calendar, &series, &plan, &model, &timezones,
    );
    patch::choose(&target.record, spliced, || write_calendar(&model), parse)
}

// ---------------------------------------------------------------- reading

fn read_calendar(text: &str) -> Result<ICalendar, FormatError> {
    let entries = read_entries("parsing iCalendar", text)?;
    let mut calendars = Vec::new();
    for entry in entries {
        match entry {
            Entry::ICalendar(calendar) => calendars.push(calendar),
            Entry::VCard(_) => {
                return Err(FormatError::new(
                    "expected iCalendar data, found a vCard (BEGIN:VCARD)",
                ))
            }
            Entry::UnexpectedComponentEnd { expected, found } => {
                return Err(FormatError::new(format!(
                    "END:{} where END:{} was expected",
                    found.as_str(),
                    expected.as_str()
                )))
            }
            other => return Err(FormatError::new(format!("not valid iCalendar: {other:?}"))),
        }
    }
    match calendars.len() {
        0 => Err(FormatError::new(
            "no iCalendar object found (expected BEGIN:VCALENDAR)",
        )),
        1 => Ok(calendars.remove(0)),
        n => Err(FormatError::new(format!(
            "{n} VCALENDAR objects in one item; expected exactly one"
        ))),
    }
}

/// The components of the one series an item holds.
struct Series {
    kind: Kind,
    uid: String,
    /// The component without RECURRENCE-ID, if the item has one.
    master: Option<usize>,
    /// Components with RECURRENCE-ID, in text order.
    overrides: Vec<usize>,
}

impl Series {
    fn find(calendar: &ICalendar) -> Result<Series, FormatError> {
        let root = calendar
            .components
            .first()
            .ok_or_else(|| FormatError::new("empty iCalendar object"))?;
        if root.component_type != ICalendarComponentType::VCalendar {
            return Err(FormatError::new(format!(
                "expected BEGIN:VCALENDAR, found BEGIN:{}",
                root.component_type.as_str()
            )));
        }
        let mut kind = None;
        let mut uids = BTreeSet::new();
        let mut masters = Vec::new();
        let mut overrides = Vec::new();
        for id in root.component_ids.iter().map(|id| *id as usize) {
            let Some(component) = calendar.components.get(id) else {
                continue;
            };
            let this = match component.component_type {
                ICalendarComponentType::VEvent => Kind::Event,
                ICalendarComponentType::VTodo => Kind::Task,
                _ => continue,
            };
            if kind.is_some_and(|k| k != this) {
                return Err(FormatError::new(
                    "the VCALENDAR holds both VEVENT and VTODO components; expected one series",
                ));
            }
            kind = Some(this);
            let uid = component
                .uid()
                .filter(|uid| !uid.trim().is_empty())
                .ok_or_else(|| {
                    FormatError::new(format!(
                        "{} without a UID property",
                        component.component_type.as_str()
                    ))
                })?;
            uids.insert(uid.to_string());
            if component.is_recurrence_override() {
                overrides.push(id);
            } else {
                masters.push(id);
            }
        }
        let kind = kind.ok_or_else(|| FormatError::new("no VEVENT or VTODO in the VCALENDAR"))?;
        if uids.len() > 1 {
            return Err(FormatError::new(format!(
                "several UIDs in one item ({}); expected one series",
                uids.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        if masters.len() > 1 {
            return Err(FormatError::new(format!(
                "{} components without RECURRENCE-ID share one UID; expected one master",
                masters.len()
            )));
        }
        Ok(Series {
            kind,
            uid: uids.into_iter().next().unwrap_or_default(),
            master: masters.first().copied(),
            overrides,
        })
    }

    /// The series component that comes last in the text.
    fn last(&self) -> Option<usize> {
        self.master
            .into_iter()
            .chain(self.overrides.iter().copied())
            .max()
    }
}

fn to_record(calendar: &ICalendar, series: &Series) -> Result<Record, FormatError> {
    let mut record = Record::new(series.kind, series.uid.clone());
    if let Some(master) = series.master.and_then(|id| calendar.components.get(id)) {
        fields::read_master(master, series.kind, &mut record)?;
        record.modified = fields::last_modified(master);
    }
    if series.kind == Kind::Event {
        let overrides = series
            .overrides
            .iter()
            .filter_map(|id| calendar.components.get(*id))
            .map(fields::read_override)
            .collect::<Result<Vec<_>, _>>()?;
        record.set("overrides", Value::List(overrides));
    }
    Ok(record)
}

// ---------------------------------------------------------------- writing

/// Everything a patch changes in the calendar.
#[derive(Default)]
struct Plan {
    properties: Vec<PropertyEdit<ICalendarEntry>>,
    /// Override components to drop.
    removed: Vec<usize>,
    /// New override components, to go after the series.
    added: Vec<ICalendarComponent>,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.properties.is_empty() && self.removed.is_empty() && self.added.is_empty()
    }

    /// The patched model, for a full rewrite and for finding new time zones.
    fn apply_to(&self, calendar: &ICalendar, series: &Series) -> ICalendar {
        let mut model = calendar.clone();
        for edit in &self.properties {
            if let Some(component) = model.components.get_mut(edit.component) {
                patch::apply_to_entries(&mut component.entries, edit, fields::entry_name);
            }
        }
        let first_new = model.components.len();
        model.components.extend(self.added.iter().cloned());
        if let Some(root) = model.components.first_mut() {
            root.component_ids
                .retain(|id| !self.removed.contains(&(*id as usize)));
            let mut at = series
                .last()
                .and_then(|last| {
                    root.component_ids
                        .iter()
                        .position(|id| *id as usize == last)
                })
                .map_or(root.component_ids.len(), |p| p + 1);
            for id in first_new..first_new + self.added.len() {
                if let Ok(id) = u32::try_from(id) {
                    root.component_ids
                        .insert(at.min(root.component_ids.len()), id);
                    at += 1;
                }
            }
        }
        model
    }
}

/// Plans the edits for every field in `changed`, in the kind's field order.
fn plan(
    calendar: &ICalendar,
    series: &Series,
    target: &Record,
    changed: &BTreeSet<String>,
) -> Result<Plan, FormatError> {
    let mut plan = Plan::default();
    for field in series
        .kind
        .fields()
        .iter()
        .filter(|f| changed.contains(**f))
    {
        match *field {
            // Settled into `start`/`end`, which are planned themselves.
            "all_day" => {}
            "overrides" => plan_overrides(calendar, series, target.get("overrides"), &mut plan)?,
            _ => {
                let (id, master) = series
                    .master
                    .and_then(|id| calendar.components.get(id).map(|c| (id, c)))
                    .ok_or_else(|| {
                        FormatError::field(
                            *field,
                            "the item has only RECURRENCE-ID overrides, no master component to hold this field",
                        )
                    })?;
                plan.properties.extend(fields::plan_field(
                    master,
                    id,
                    field,
                    target.get(field),
                    field,
                )?);
            }
        }
    }
    Ok(plan)
}

/// Overrides are matched by `recurrence_id`: an unchanged one is left
/// alone, a changed one has only its changed properties rewritten, a
/// missing one is removed and a new one gets a component of its own.
fn plan_overrides(
    calendar: &ICalendar,
    series: &Series,
    wanted: Option<&Value>,
    plan: &mut Plan,
) -> Result<(), FormatError> {
    let wanted = wanted
        .map(|v| crate::shape::list("overrides", v))
        .transpose()?
        .unwrap_or_default();
    let mut existing = Vec::new();
    for id in &series.overrides {
        if let Some(component) = calendar.components.get(*id) {
            existing.push((*id, component, fields::read_override(component)?));
        }
    }
    let mut matched = vec![false; existing.len()];
    let mut seen: Vec<&Value> = Vec::new();
    for value in wanted {
        let map = crate::shape::map("overrides", value, &fields::OVERRIDE_KEYS)?;
        let recurrence_id = map.get("recurrence_id").ok_or_else(|| {
            FormatError::field("overrides", "an override needs a `recurrence_id`")
        })?;
        if seen.iter().any(|r| r.same(recurrence_id)) {
            return Err(FormatError::field(
                "overrides",
                format!("two overrides for recurrence_id {recurrence_id}"),
            ));
        }
        seen.push(recurrence_id);
        let found = existing
            .iter()
            .enumerate()
            .position(|(k, (_, _, current))| {
                !matched[k]
                    && current
                        .as_map()
                        .and_then(|m| m.get("recurrence_id"))
                        .is_some_and(|r| r.same(recurrence_id))
            });
        let Some(k) = found else {
            plan.added.push(fields::new_override(&series.uid, value)?);
            continue;
        };
        matched[k] = true;
        let (id, component, current) = &existing[k];
        if current.same(value) {
            continue;
        }
        let current = current.as_map();
        for key in fields::OVERRIDE_KEYS.iter().skip(1) {
            let now = current.and_then(|m| m.get(*key));
            let new = map.get(*key).filter(|v| !v.is_empty());
            if !Value::same_opt(now, new) {
                plan.properties
                    .extend(fields::plan_field(component, *id, key, new, "overrides")?);
            }
        }
    }
    for (k, (id, _, _)) in existing.iter().enumerate() {
        if !matched[k] {
            plan.removed.push(*id);
        }
    }
    Ok(())
}

/// Adds a VTIMEZONE for each zone the patch starts using that the item
/// neither defines nor already referred to (calcard builds them from the
/// IANA database); returns their component ids in `model`.
fn add_new_timezones(
    original: &ICalendar,
    model: &mut ICalendar,
) -> Result<Vec<usize>, FormatError> {
    let known = zones_named(original);
    let before = model
        .components
        .first()
        .map(|root| root.component_ids.clone())
        .unwrap_or_default();
    let mut updated = model.clone();
    shielded("adding VTIMEZONE components", || {
        updated.add_missing_timezones()
    })?;
    let ids = updated
        .components
        .first()
        .map(|root| root.component_ids.clone())
        .unwrap_or_default();
    let keep: Vec<u32> = ids
        .into_iter()
        .filter(|id| {
            before.contains(id)
                || updated
                    .components
                    .get(*id as usize)
                    .and_then(timezone_id)
                    .is_some_and(|tzid| !known.contains(tzid))
        })
        .collect();
    let added = keep
        .iter()
        .filter(|id| !before.contains(id))
        .map(|id| *id as usize)
        .collect();
    if let Some(root) = updated.components.first_mut() {
        root.component_ids = keep;
    }
    *model = updated;
    Ok(added)
}

/// Every TZID the calendar defines or refers to.
fn zones_named(calendar: &ICalendar) -> BTreeSet<String> {
    let mut zones = BTreeSet::new();
    for component in &calendar.components {
        zones.extend(timezone_id(component).map(str::to_string));
        for entry in &component.entries {
            zones.extend(
                entry
                    .params
                    .iter()
                    .filter(|p| p.name == ICalendarParameterName::Tzid)
                    .filter_map(|p| p.value.as_text())
                    .map(str::to_string),
            );
        }
    }
    zones
}

fn timezone_id(component: &ICalendarComponent) -> Option<&str> {
    if component.component_type != ICalendarComponentType::VTimezone {
        return None;
    }
    component
        .property(&ICalendarProperty::Tzid)
        .and_then(|e| e.values.first())
        .and_then(ICalendarValue::as_text)
}

/// Applies the plan to the original text; an error means "do a full
/// rewrite instead".
fn splice(
    original: &str,
    scan: &Scan,
    calendar: &ICalendar,
    series: &Series,
    plan: &Plan,
    model: &ICalendar,
    timezones: &[usize],
) -> Result<String, String> {
    let aligned = scan.component_count() == calendar.components.len()
        && calendar.components.iter().enumerate().all(|(id, c)| {
            scan.component_name(id)
                .is_some_and(|name| c.component_type.as_str().eq_ignore_ascii_case(name))
        });
    if !aligned {
        return Err("the components found in the text do not line up with calcard's".into());
    }
    let mut splice = Splice::new(original, scan);
    patch::splice_properties(
        &mut splice,
        scan,
        &plan.properties,
        |id, name| {
            calendar.components.get(id).map_or(0, |c| {
                c.entries
                    .iter()
                    .filter(|e| e.name.as_str().eq_ignore_ascii_case(name))
                    .count()
            })
        },
        write_entry,
    )?;
    for id in &plan.removed {
        splice.remove_component(*id);
    }
    let after_series = series
        .last()
        .map_or_else(|| scan.end(0), |last| scan.after(last));
    for component in &plan.added {
        let text = write_component(component).map_err(|e| e.to_string())?;
        splice.insert_before(after_series, &text);
    }
    if !timezones.is_empty() {
        let before_first_item = scan
            .children(0)
            .iter()
            .find(|id| scan.component_name(**id) != Some("VTIMEZONE"))
            .map_or_else(|| scan.end(0), |id| scan.begin(*id));
        for id in timezones {
            let text = write_subtree(model, *id).map_err(|e| e.to_string())?;
            splice.insert_before(before_first_item, &text);
        }
    }
    Ok(splice.finish())
}

fn write_entry(entry: &ICalendarEntry) -> Result<String, FormatError> {
    let mut out = String::new();
    shielded("writing iCalendar", || entry.write_to(&mut out))?
        .map_err(|_| FormatError::new(format!("cannot write {}", entry.name.as_str())))?;
    Ok(unquote_tzid(out))
}

/// calcard quotes a TZID holding spaces (`TZID="W. Europe Standard
/// Time"`); Outlook and Exchange write such names bare, and RFC 5545 needs
/// quotes only around `:`, `;` and `,`. A bare name stays bare, so a
/// rewritten DTSTART reads exactly like the line it replaces.
fn unquote_tzid(line: String) -> String {
    const OPEN: &str = ";TZID=\"";
    let Some(at) = line.find(OPEN) else {
        return line;
    };
    let value_start = at + OPEN.len();
    let Some(len) = line[value_start..].find('"') else {
        return line;
    };
    let value = &line[value_start..value_start + len];
    if value.contains([':', ';', ',', '\r', '\n']) {
        return line;
    }
    format!(
        "{};TZID={}{}",
        &line[..at],
        value,
        &line[value_start + len + 1..]
    )
}

fn write_calendar(calendar: &ICalendar) -> Result<String, FormatError> {
    let mut out = String::new();
    shielded("writing iCalendar", || calendar.write_to(&mut out))?
        .map_err(|_| FormatError::new("cannot write iCalendar"))?;
    Ok(out)
}

/// Writes one childless component on its own.
fn write_component(component: &ICalendarComponent) -> Result<String, FormatError> {
    let mut single = component.clone();
    single.component_ids.clear();
    write_calendar(&ICalendar {
        components: vec![single],
    })
}

/// Writes component `id` of `calendar` with everything inside it (a
/// VTIMEZONE with its STANDARD/DAYLIGHT parts).
fn write_subtree(calendar: &ICalendar, id: usize) -> Result<String, FormatError> {
    let mut tree = ICalendar::default();
    let mut queue = vec![(id, None::<usize>)];
    while let Some((source, parent)) = queue.pop() {
        let Some(component) = calendar.components.get(source) else {
            continue;
        };
        let copy_id = tree.components.len();
        tree.components.push(ICalendarComponent {
            component_type: component.component_type.clone(),
            entries: component.entries.clone(),
            component_ids: Vec::new(),
        });
        if let Some(parent) = parent.and_then(|p| tree.components.get_mut(p)) {
            parent
                .component_ids
                .push(u32::try_from(copy_id).unwrap_or(u32::MAX));
        }
        // Reverse so children keep their order when popped.
        for child in component.component_ids.iter().rev() {
            queue.push((*child as usize, Some(copy_id)));
        }
        if tree.components.len() > calendar.components.len() {
            return Err(FormatError::new("component tree is not a tree"));
        }
    }
    write_calendar(&tree)
}
