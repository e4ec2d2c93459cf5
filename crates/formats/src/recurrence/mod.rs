//! Occurrences of an event or task series inside a time window: the read
//! side of recurrence, used by window filters and by stores that keep one
//! row per occurrence. A series record (see the table in the `icalendar`
//! module) goes in; plain, non-recurring records of the occurrences that
//! overlap the window come out.
//!
//! The recurrence rule itself is iterated by calcard (its RFC 5545 RRULE
//! engine); this module adds what a series means around the rule: DTSTART
//! always counts as the first occurrence, RDATE adds, EXDATE removes, an
//! override replaces the occurrence it names (and may move it into or out
//! of the window), and an override with `STATUS:CANCELLED` removes it. An
//! override whose occurrence the rule does not produce still occurs, and an
//! item holding only overrides occurs at them.
//!
//! An override of `RECURRENCE-ID;RANGE=THISANDFUTURE` (RFC 5545 §3.2.13;
//! in a record, `range = "THISANDFUTURE"` in its map) also governs every
//! later instance that has no override of its own, up to the next such
//! override: each is moved by the wall-clock difference between the
//! override's start and its RECURRENCE-ID, lasts as long as the override,
//! and takes its summary, description, location and status (cancelled:
//! those instances are cancelled too). EXDATEs still name instances by
//! their original time. This is how recurring-ical-events reads it (which
//! returns cancelled instances instead of dropping them).
//!
//! Times: zoned times are read in their zone — IANA names and Windows names
//! as Outlook and Exchange write them (`W. Europe Standard Time`,
//! `(UTC+01:00) Amsterdam, Berlin, …`) map to the IANA database through
//! calcard; with native text ([`expand_item`]), a VTIMEZONE whose TZID is
//! no such name is read from its own observances. A zone name nothing
//! explains is read as floating. Floating times and all-day dates
//! are read as UTC for window purposes (a floating 09:00 is 09:00 UTC; an
//! all-day event on 2026-12-01 spans `[2026-12-01T00:00Z, 2026-12-02T00:00Z)`),
//! except an end or due without a zone under a zoned start, which is read
//! in the start's zone.
//! A time that falls in a daylight-saving gap is read with the offset before
//! the gap, and a repeated time as its first instance (RFC 5545 §3.3.5). The
//! wall clock is what repeats: a weekly 09:00 Europe/Berlin series is 09:00
//! local every week on both sides of a DST change.
//!
//! Durations: `end` minus `start` (exact for times, whole days for dates);
//! without an `end`, the item's DURATION when expanding native text with
//! [`expand_item`], else the RFC 5545 defaults (a date lasts one day, a
//! date-time has no length); with native text, an RDATE PERIOD and an
//! override's own DURATION also count. A task lasts from `start` to `due`;
//! a task with only a `due` occurs at its `due`, without length.
//!
//! Work is bounded: at most [`MAX_CANDIDATES`] rule instances are looked at
//! per call and at most `limit` occurrences are returned; hitting either
//! sets [`Expansion::truncated`]. The rule is iterated from just before the
//! window to just past it, and in rounds: the first asks for a few more
//! instances than `limit`, each further round for twice as many, and
//! iteration stops as soon as `limit` occurrences (and one more, to know
//! whether to say truncated) are settled — so [`any_in`] and a small
//! `limit` cost a handful of instances even for `FREQ=SECONDLY`. Rules
//! whose every period would produce more than [`MAX_PER_PERIOD`] candidates
//! (a hostile `BYHOUR × BYMINUTE × BYSECOND` product) are not iterated at
//! all, and the expansion is marked truncated.

mod rule;
mod zone;

use crate::datetime::{parse_date, parse_local};
use crate::error::FormatError;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use std::collections::{BTreeMap, BTreeSet};
use tandem_record::{Kind, Record, Value};
use zone::{Zone, Zones};

/// Rule instances looked at per call, at most.
pub const MAX_CANDIDATES: usize = 100_000;

/// Candidates one period of a rule may produce (days in the period times
/// the BYHOUR × BYMINUTE × BYSECOND product); a rule above this is refused.
pub const MAX_PER_PERIOD: usize = 50_000;

/// Half-open UTC window [from, to) in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

impl Window {
    /// Whether `[start, end)` overlaps the window; an occurrence without
    /// length (`end` absent or equal to `start`) overlaps when `start` is in
    /// the window.
    pub fn overlaps(&self, start: i64, end: Option<i64>) -> bool {
        match end {
            Some(end) if end > start => start < self.to && end > self.from,
            _ => start >= self.from && start < self.to,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    /// Stable key of the occurrence: its RECURRENCE-ID as iCalendar text
    /// (`20261201T090000Z`, `20261201T090000` for zoned/floating, `20261201` for dates).
    pub key: String,
    pub start_utc: i64,
    pub end_utc: Option<i64>,
    /// A plain (non-recurring) record of this occurrence: the master's fields with the
    /// override's applied, `start`/`end` set to this occurrence (same zone as the master),
    /// no `recurrence`/`overrides`, same `uid` and `kind` as the series.
    pub record: Record,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expansion {
    pub occurrences: Vec<Occurrence>,
    pub truncated: bool,
    /// Rule instances computed on the way (every round counted): the work
    /// the call did, never more than a small multiple of [`MAX_CANDIDATES`].
    pub candidates: usize,
}

impl Expansion {
    fn empty() -> Expansion {
        Expansion {
            occurrences: Vec::new(),
            truncated: false,
            candidates: 0,
        }
    }
}

/// Occurrences of `record` (an event or task series, or a single item) that overlap `window`,
/// sorted by start; at most `limit` occurrences, and bounded work per call.
pub fn expand(record: &Record, window: Window, limit: usize) -> Result<Expansion, FormatError> {
    expand_with(record, &Context::default(), window, limit)
}

/// Whether any occurrence overlaps `window` (cheap: stops at the first).
pub fn any_in(record: &Record, window: Window) -> Result<bool, FormatError> {
    Ok(!expand(record, window, 1)?.occurrences.is_empty())
}

/// [`expand`] for native iCalendar text (one series, as [`crate::parse`]
/// reads it): also honours what the record does not carry — the master's
/// DURATION and the item's own VTIMEZONE definitions.
pub fn expand_item(text: &str, window: Window, limit: usize) -> Result<Expansion, FormatError> {
    let (record, context) = crate::icalendar::parse_for_expansion(text)?;
    expand_with(&record, &context, window, limit)
}

/// What native text knows beyond the record.
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    /// The master's DURATION in seconds, when it has one instead of an end.
    pub duration: Option<i64>,
    /// The zones the item's VTIMEZONE components define.
    pub zones: Zones,
    /// RDATEs given as PERIODs (the record keeps them as text only).
    pub periods: Vec<(Value, PeriodEnd)>,
    /// Overrides timed by DURATION: RECURRENCE-ID and seconds.
    pub override_durations: Vec<(Value, i64)>,
}

impl Context {
    pub(crate) fn new(calendar: &calcard::icalendar::ICalendar) -> Context {
        Context {
            zones: Zones::of(calendar),
            ..Context::default()
        }
    }
}

/// How an RDATE PERIOD ends.
#[derive(Debug, Clone)]
pub(crate) enum PeriodEnd {
    At(Value),
    After(i64),
}

// ---------------------------------------------------------------- times

/// A date or date-time of the series, in its own zone.
#[derive(Debug, Clone)]
enum Moment {
    Day(NaiveDate),
    Time(NaiveDateTime, Zone),
}

impl Moment {
    fn read(value: &Value, context: &Context, field: &str) -> Result<Moment, FormatError> {
        match value {
            Value::Date(text) => parse_date(text)
                .map(Moment::Day)
                .ok_or_else(|| FormatError::field(field, format!("invalid date `{text}`"))),
            Value::DateTime { local, tz } => {
                let at = parse_local(local).ok_or_else(|| {
                    FormatError::field(field, format!("invalid date-time `{local}`"))
                })?;
                Ok(Moment::Time(at, context.zones.resolve(tz.as_deref())))
            }
            other => Err(FormatError::field(
                field,
                format!("expected a date or date-time, found `{other}`"),
            )),
        }
    }

    /// An end (or due) without a zone of its own — a date, or a floating
    /// time — under a start in a zone is read in the start's zone. RFC 5545
    /// §3.8.2.2 and §3.8.2.3 want the end of the same value type as the
    /// start and later than it; a calendar that mixes them (iCal writes a
    /// DATE DUE under a zoned DTSTART) means the wall-clock time where the
    /// item happens, so `DUE;VALUE=DATE:20041114` under a New York start is
    /// New York's midnight, not UTC's.
    fn in_zone_of(self, start: &Moment) -> Moment {
        match (self, start) {
            (Moment::Day(day), Moment::Time(_, zone)) if *zone != Zone::Floating => {
                Moment::Time(day.and_time(NaiveTime::MIN), zone.clone())
            }
            (Moment::Time(at, Zone::Floating), Moment::Time(_, zone)) => {
                Moment::Time(at, zone.clone())
            }
            (end, _) => end,
        }
    }

    fn utc(&self) -> i64 {
        match self {
            Moment::Day(day) => day.and_time(NaiveTime::MIN).and_utc().timestamp(),
            Moment::Time(at, zone) => zone.to_utc(*at),
        }
    }

    /// The same instant as wall-clock time in `zone` (dates stay dates).
    fn local_in(&self, zone: &Zone) -> NaiveDateTime {
        match self {
            Moment::Day(day) => day.and_time(NaiveTime::MIN),
            Moment::Time(at, own) if own == zone => *at,
            Moment::Time(..) => zone.to_local(self.utc()),
        }
    }

    fn day(&self) -> NaiveDate {
        match self {
            Moment::Day(day) => *day,
            Moment::Time(at, _) => at.date(),
        }
    }
}

// ---------------------------------------------------------------- series

/// How long each occurrence lasts.
#[derive(Debug, Clone, Copy)]
enum Length {
    /// Whole days (all-day events).
    Days(i64),
    /// Exact seconds.
    Seconds(i64),
}

/// One element of `overrides`.
struct Override<'r> {
    id: Moment,
    start: Option<Moment>,
    end: Option<Moment>,
    /// Its DURATION in seconds, when it has no end of its own.
    length: Option<i64>,
    cancelled: bool,
    /// `RANGE=THISANDFUTURE`: it also governs the later instances.
    this_and_future: bool,
    fields: &'r BTreeMap<String, Value>,
}

/// How an instance governed by a `RANGE=THISANDFUTURE` override differs
/// from what the rule gives.
struct Governed<'s, 'r> {
    by: &'s Override<'r>,
    /// Wall-clock shift of the start.
    shift: TimeDelta,
    length: Length,
}

/// A series' timing, read from its record.
struct Series<'r> {
    record: &'r Record,
    start: Moment,
    /// The master's zone name as the record spells it.
    tz: Option<String>,
    /// The zone occurrences are spelled in (`Floating` for all-day).
    zone: Zone,
    length: Length,
    rule: Option<calcard::icalendar::ICalendarRecurrenceRule>,
    rdates: Vec<Moment>,
    /// RDATE PERIODs: wall-clock start and their own length in seconds.
    periods: Vec<(NaiveDateTime, i64)>,
    exdates: Vec<Moment>,
    overrides: Vec<Override<'r>>,
    /// The `RANGE=THISANDFUTURE` overrides (indexes into `overrides`), by
    /// their instance's wall-clock time, ascending.
    ranges: Vec<(NaiveDateTime, usize)>,
}

impl<'r> Series<'r> {
    /// `None` when the record has no date that places it in time.
    fn read(record: &'r Record, context: &Context) -> Result<Option<Series<'r>>, FormatError> {
        let end_field = match record.kind {
            Kind::Event => "end",
            Kind::Task => "due",
            Kind::Contact => {
                return Err(FormatError::new(
                    "a contact has no occurrences; expected an event or a task",
                ))
            }
        };
        let present = |field: &str| record.get(field).filter(|v| !v.is_empty());
        let (first, end) = match (present("start"), present(end_field)) {
            (Some(start), end) => (start, end),
            // A task with only a due date happens at its due date.
            (None, Some(due)) if record.kind == Kind::Task => (due, None),
            // Only overrides (the master lives elsewhere): they are the
            // series; the first one's RECURRENCE-ID stands in for DTSTART.
            (None, _) => match record
                .get("overrides")
                .and_then(Value::as_list)
                .and_then(|list| list.iter().find_map(|o| o.as_map()?.get("recurrence_id")))
            {
                Some(id) => (id, None),
                None => return Ok(None),
            },
        };
        let tz = match first {
            Value::DateTime { tz, .. } => tz.clone(),
            _ => None,
        };
        let start = Moment::read(first, context, "start")?;
        let end = end
            .map(|e| Moment::read(e, context, end_field))
            .transpose()?
            .map(|end| end.in_zone_of(&start));
        let length = match (&start, &end) {
            (Moment::Day(first), Some(Moment::Day(last))) => {
                Length::Days((*last - *first).num_days().max(0))
            }
            (_, Some(end)) => Length::Seconds((end.utc() - start.utc()).max(0)),
            (Moment::Day(_), None) => {
                Length::Days(context.duration.map_or(1, |s| (s / 86_400).max(0)))
            }
            (Moment::Time(..), None) => Length::Seconds(context.duration.unwrap_or(0).max(0)),
        };
        let zone = match &start {
            Moment::Day(_) => Zone::Floating,
            Moment::Time(_, zone) => zone.clone(),
        };
        let mut series = Series {
            record,
            start,
            tz,
            zone,
            length,
            rule: None,
            rdates: Vec::new(),
            periods: Vec::new(),
            exdates: Vec::new(),
            overrides: Vec::new(),
            ranges: Vec::new(),
        };
        if let Some(recurrence) = record.get("recurrence").and_then(Value::as_map) {
            if let Some(rule) = recurrence
                .get("rrule")
                .and_then(Value::as_text)
                .filter(|t| !t.trim().is_empty())
            {
                series.rule = Some(crate::icalendar::parse_rrule(rule, "recurrence")?);
            }
            for (key, list) in [
                ("rdate", &mut series.rdates),
                ("exdate", &mut series.exdates),
            ] {
                for value in recurrence.get(key).and_then(Value::as_list).unwrap_or(&[]) {
                    match value {
                        Value::Date(_) | Value::DateTime { .. } => {
                            list.push(Moment::read(value, context, "recurrence")?);
                        }
                        // A PERIOD RDATE (`start/end`) or an unreadable value.
                        other => tracing::debug!(
                            uid = %record.uid,
                            value = %other,
                            "ignoring a {key} value that is not a date"
                        ),
                    }
                }
            }
        }
        for (start, end) in &context.periods {
            let start = Moment::read(start, context, "recurrence")?;
            let seconds = match end {
                PeriodEnd::At(end) => Moment::read(end, context, "recurrence")?.utc() - start.utc(),
                PeriodEnd::After(seconds) => *seconds,
            };
            series.periods.push((series.local(&start), seconds.max(0)));
            series.rdates.push(start);
        }
        for value in record
            .get("overrides")
            .and_then(Value::as_list)
            .unwrap_or(&[])
        {
            let Some(fields) = value.as_map() else {
                continue;
            };
            let Some(id) = fields.get("recurrence_id").filter(|v| !v.is_empty()) else {
                continue;
            };
            let moment = |key: &str| {
                fields
                    .get(key)
                    .filter(|v| !v.is_empty())
                    .map(|v| Moment::read(v, context, "overrides"))
                    .transpose()
            };
            // The same occurrence overridden twice: the first one counts.
            let id_moment = Moment::read(id, context, "overrides")?;
            let local = series.local(&id_moment);
            if series.overrides.iter().any(|o| series.names(&o.id, local)) {
                continue;
            }
            series.overrides.push(Override {
                id: id_moment,
                start: moment("start")?,
                end: moment("end")?,
                length: context
                    .override_durations
                    .iter()
                    .find(|(rid, _)| rid.same(id))
                    .map(|(_, seconds)| *seconds),
                cancelled: fields
                    .get("status")
                    .and_then(Value::as_text)
                    .is_some_and(|s| s.eq_ignore_ascii_case("CANCELLED")),
                this_and_future: fields
                    .get("range")
                    .and_then(Value::as_text)
                    .is_some_and(|r| r.eq_ignore_ascii_case(crate::icalendar::THIS_AND_FUTURE)),
                fields,
            });
            if series.overrides.last().is_some_and(|o| o.this_and_future) {
                series.ranges.push((local, series.overrides.len() - 1));
            }
        }
        series.ranges.sort();
        Ok(Some(series))
    }

    fn all_day(&self) -> bool {
        matches!(self.start, Moment::Day(_))
    }

    /// A moment as the series' own wall-clock time.
    fn local(&self, m: &Moment) -> NaiveDateTime {
        if self.all_day() {
            m.day().and_time(NaiveTime::MIN)
        } else {
            m.local_in(&self.zone)
        }
    }

    /// The series' own wall-clock time as a moment.
    fn moment(&self, local: NaiveDateTime) -> Moment {
        if self.all_day() {
            Moment::Day(local.date())
        } else {
            Moment::Time(local, self.zone.clone())
        }
    }

    /// Whether `date` (an EXDATE or RECURRENCE-ID) names the occurrence at
    /// wall-clock `local`: by instant, or by day when either is a date.
    fn names(&self, date: &Moment, local: NaiveDateTime) -> bool {
        match (date, self.all_day()) {
            (Moment::Time(..), false) => date.utc() == self.zone.to_utc(local),
            _ => date.day() == local.date(),
        }
    }

    /// The RECURRENCE-ID spelling of an occurrence.
    fn key(&self, local: NaiveDateTime) -> String {
        if self.all_day() {
            local.format("%Y%m%d").to_string()
        } else if self.zone.is_utc() {
            local.format("%Y%m%dT%H%M%SZ").to_string()
        } else {
            local.format("%Y%m%dT%H%M%S").to_string()
        }
    }

    /// A wall-clock time of the series as a record value, spelled with the
    /// master's own zone name.
    fn value(&self, local: NaiveDateTime) -> Value {
        if self.all_day() {
            return Value::Date(local.format("%Y-%m-%d").to_string());
        }
        Value::DateTime {
            local: local.format("%Y-%m-%dT%H:%M:%S").to_string(),
            tz: self.tz.clone(),
        }
    }

    /// The end of an occurrence starting at `start`.
    fn end_after(&self, start: &Moment) -> Option<Moment> {
        self.end_after_by(start, self.length)
    }

    /// The end of an occurrence starting at `start` that lasts `length`.
    fn end_after_by(&self, start: &Moment, length: Length) -> Option<Moment> {
        match (length, start) {
            (Length::Days(days), Moment::Day(day)) => Some(Moment::Day(
                day.checked_add_signed(TimeDelta::try_days(days)?)?,
            )),
            (Length::Days(days), Moment::Time(at, zone)) => Some(Moment::Time(
                at.checked_add_signed(TimeDelta::try_days(days)?)?,
                zone.clone(),
            )),
            (Length::Seconds(seconds), _) => {
                let end = start.utc().checked_add(seconds)?;
                Some(Moment::Time(self.zone.to_local(end), self.zone.clone()))
            }
        }
    }

    /// The rule's instances that can matter for `window`, as wall-clock
    /// starts of the series; the first `budget` of them at most.
    fn rule_instances(
        &self,
        window: Window,
        budget: usize,
    ) -> Result<rule::Instances, FormatError> {
        let Some(rule) = &self.rule else {
            return Ok(rule::Instances {
                starts: Vec::new(),
                truncated: false,
                exhausted: false,
            });
        };
        let mut rule = rule.clone();
        // A UTC UNTIL becomes the series' wall-clock time, as calcard
        // compares it with floating instances.
        if let Some(until) = rule.until.as_mut() {
            if until.tz_hour.is_some() && !self.all_day() {
                let at = until.to_date_time().ok_or_else(|| {
                    FormatError::field("recurrence", "RRULE has an invalid UNTIL")
                })?;
                let utc = at.date_time.and_utc().timestamp()
                    - i64::from(at.offset.map_or(0, |o| o.local_minus_utc()));
                *until = rule::floating(self.zone.to_local(utc), false);
            } else {
                until.tz_hour = None;
                until.tz_minute = None;
                until.tz_minus = false;
            }
        }
        // The window's ends as the series' wall-clock time, widened by what
        // can move an instance's occurrence across them: its length, a
        // THISANDFUTURE shift, and a daylight-saving change.
        let (earlier, later) = self.reach();
        let latest = self
            .local_at(window.to)
            .and_then(|t| t.checked_add_signed(later));
        let earliest = self
            .local_at(window.from)
            .and_then(|t| t.checked_sub_signed(earlier));
        rule::instances(
            &rule,
            self.local(&self.start),
            self.all_day(),
            latest,
            earliest,
            budget,
        )
        .map_err(|e| FormatError::field("recurrence", e))
    }

    /// The wall-clock time of a UTC instant (for all-day series, UTC).
    fn local_at(&self, seconds: i64) -> Option<NaiveDateTime> {
        let utc = chrono::DateTime::from_timestamp(seconds, 0)?.naive_utc();
        Some(if self.all_day() {
            utc
        } else {
            self.zone.to_local(seconds)
        })
    }

    /// How much earlier than its occurrence's end, and later than its
    /// occurrence's start, an instance can be (both never negative).
    fn reach(&self) -> (TimeDelta, TimeDelta) {
        // A wall-clock time in a daylight-saving gap is read with the
        // offset before the gap, so it can fall after later wall-clock
        // times by the size of the change (two hours at most).
        let slack = if self.zone.is_fixed() {
            TimeDelta::zero()
        } else {
            TimeDelta::hours(2)
        };
        let (mut earlier, mut later) =
            (TimeDelta::seconds(self.length_seconds()), TimeDelta::zero());
        for g in (0..self.ranges.len()).filter_map(|at| self.range(at)) {
            let length = TimeDelta::seconds(length_seconds(g.length));
            earlier = earlier.max(g.shift + length);
            later = later.max(-g.shift);
        }
        (earlier + slack, later + slack)
    }

    /// The THISANDFUTURE override governing the instance at wall-clock
    /// `local` (the latest one before it), if any.
    fn governed(&self, local: NaiveDateTime) -> Option<Governed<'_, 'r>> {
        let at = self.ranges.partition_point(|(id, _)| *id < local);
        self.range(at.checked_sub(1)?)
    }

    /// What the `at`-th THISANDFUTURE override does to the instances it
    /// governs.
    fn range(&self, at: usize) -> Option<Governed<'_, 'r>> {
        let (id, index) = self.ranges.get(at)?;
        let by = self.overrides.get(*index)?;
        let start = by.start.as_ref().map_or(*id, |s| self.local(s));
        let length = match (&by.start, &by.end, by.length) {
            (Some(Moment::Day(first)), Some(Moment::Day(last)), _) => {
                Length::Days((*last - *first).num_days().max(0))
            }
            (Some(first), Some(last), _) => Length::Seconds((last.utc() - first.utc()).max(0)),
            (None, Some(last), _) => Length::Seconds((last.utc() - by.id.utc()).max(0)),
            (_, None, Some(seconds)) => Length::Seconds(seconds.max(0)),
            (_, None, None) => self.length,
        };
        Some(Governed {
            by,
            shift: start - *id,
            length,
        })
    }

    fn length_seconds(&self) -> i64 {
        length_seconds(self.length)
    }
}

fn length_seconds(length: Length) -> i64 {
    match length {
        Length::Days(d) => d.saturating_mul(86_400),
        Length::Seconds(s) => s,
    }
}

// ---------------------------------------------------------------- expansion

pub(crate) fn expand_with(
    record: &Record,
    context: &Context,
    window: Window,
    limit: usize,
) -> Result<Expansion, FormatError> {
    let Some(series) = Series::read(record, context)? else {
        return Ok(Expansion::empty());
    };
    // One occurrence past `limit` tells whether to say truncated. The
    // first round asks for that many instances and a few more (some may
    // fall before the window, or be excluded or overridden); each further
    // round for twice as many.
    let wanted = limit.saturating_add(1);
    let mut budget = wanted
        .saturating_add(series.exdates.len() + series.overrides.len())
        .saturating_add(64);
    let mut candidates = 0usize;
    let (mut placed, truncated) = loop {
        let found = series.rule_instances(window, budget)?;
        candidates += found.starts.len();
        let last = found.starts.last().copied();
        let placed = place(&series, found.starts, window);
        if !found.exhausted || budget >= MAX_CANDIDATES {
            let truncated = found.truncated || placed.len() > limit;
            break (placed, truncated);
        }
        // Every instance after the last one computed starts later than
        // this (less what may move it earlier), so occurrences before it
        // are settled; enough of them end the iteration.
        let (_, later) = series.reach();
        let settled_before = last
            .and_then(|l| l.checked_sub_signed(later))
            .map_or(i64::MIN, |l| series.moment(l).utc());
        if placed
            .iter()
            .filter(|p| p.start_utc < settled_before)
            .count()
            >= wanted
        {
            break (placed, true);
        }
        budget = budget.saturating_mul(2).min(MAX_CANDIDATES);
    };
    placed.sort_by_key(|p| (p.start_utc, p.local));
    placed.truncate(limit);
    Ok(Expansion {
        occurrences: placed.into_iter().map(|p| occurrence(&series, p)).collect(),
        truncated,
        candidates,
    })
}

/// The occurrences of `series` that overlap `window`, given the rule's
/// instances (wall-clock starts), unsorted.
fn place<'s, 'r>(
    series: &'s Series<'r>,
    instances: Vec<NaiveDateTime>,
    window: Window,
) -> Vec<Placed<'s, 'r>> {
    // Wall-clock starts of the series: DTSTART always counts as the first
    // occurrence (RFC 5545 §3.8.5.3), then the rule's and the RDATEs.
    let mut starts: BTreeSet<NaiveDateTime> = instances.into_iter().collect();
    if series.all_day() {
        // An all-day series recurs by days: a rule finer than a day (FREQ=
        // HOURLY under a DATE start, which RFC 5545 §3.3.10 does not allow)
        // still yields each day once, as its RECURRENCE-ID names a day.
        starts = starts
            .into_iter()
            .map(|local| local.date().and_time(NaiveTime::MIN))
            .collect();
    }
    starts.insert(series.local(&series.start));
    starts.extend(series.rdates.iter().map(|r| series.local(r)));
    starts.retain(|local| {
        !series.exdates.iter().any(|ex| series.names(ex, *local))
            && !series.overrides.iter().any(|o| series.names(&o.id, *local))
    });

    // Placed first; records are built only for those returned.
    let mut placed: Vec<Placed<'_, '_>> = Vec::new();
    for local in starts {
        let governed = series.governed(local);
        if governed.as_ref().is_some_and(|g| g.by.cancelled) {
            continue;
        }
        let start = match &governed {
            Some(g) => match local.checked_add_signed(g.shift) {
                Some(moved) => series.moment(moved),
                None => continue,
            },
            None => series.moment(local),
        };
        let end = match series.periods.iter().find(|(at, _)| *at == local) {
            Some((_, seconds)) => start
                .utc()
                .checked_add(*seconds)
                .map(|end| Moment::Time(series.zone.to_local(end), series.zone.clone())),
            None => match &governed {
                Some(g) => series.end_after_by(&start, g.length),
                None => series.end_after(&start),
            },
        };
        if window.overlaps(start.utc(), end.as_ref().map(Moment::utc)) {
            let fields = governed.map(|g| g.by);
            placed.push(Placed::new(local, start, end, fields, None));
        }
    }
    // Overrides stand for their occurrence wherever they moved it, unless
    // cancelled or excluded by an EXDATE.
    for instance in series.overrides.iter().filter(|o| !o.cancelled) {
        let local = series.local(&instance.id);
        if series.exdates.iter().any(|ex| series.names(ex, local)) {
            continue;
        }
        let start = instance
            .start
            .clone()
            .unwrap_or_else(|| series.moment(local));
        let end = instance.end.clone().or_else(|| match instance.length {
            Some(seconds) => start
                .utc()
                .checked_add(seconds)
                .map(|end| Moment::Time(series.zone.to_local(end), series.zone.clone())),
            None => series.end_after(&start),
        });
        if window.overlaps(start.utc(), end.as_ref().map(Moment::utc)) {
            placed.push(Placed::new(
                local,
                start,
                end,
                Some(instance),
                Some(instance),
            ));
        }
    }
    placed
}

/// An occurrence found in the window, before its record is built.
struct Placed<'s, 'r> {
    /// The occurrence's original wall-clock start (its RECURRENCE-ID).
    local: NaiveDateTime,
    start: Moment,
    end: Option<Moment>,
    start_utc: i64,
    /// The override whose fields it takes (its own, or a THISANDFUTURE
    /// one before it).
    fields: Option<&'s Override<'r>>,
    /// Its own override, whose times it keeps.
    own: Option<&'s Override<'r>>,
}

impl<'s, 'r> Placed<'s, 'r> {
    fn new(
        local: NaiveDateTime,
        start: Moment,
        end: Option<Moment>,
        fields: Option<&'s Override<'r>>,
        own: Option<&'s Override<'r>>,
    ) -> Self {
        Placed {
            local,
            start_utc: start.utc(),
            start,
            end,
            fields,
            own,
        }
    }
}

fn occurrence(series: &Series<'_>, placed: Placed<'_, '_>) -> Occurrence {
    let Placed {
        local,
        start,
        end,
        start_utc,
        fields,
        own: instance,
    } = placed;
    let mut record = series.record.clone();
    record.remove("recurrence");
    record.remove("overrides");
    if let Some(fields) = fields {
        for key in ["summary", "description", "location", "status"] {
            if let Some(value) = fields.fields.get(key).filter(|v| !v.is_empty()) {
                record.set(key, value.clone());
            }
        }
    }
    // Times are spelled in the master's zone; an override's own time keeps
    // its own spelling only when it is of another kind (a date where the
    // master has date-times, or the other way round).
    let own = |key: &str| instance.and_then(|i| i.fields.get(key));
    let spell = |m: &Moment, own: Option<&Value>| match own {
        Some(value) if matches!(m, Moment::Day(_)) != series.all_day() => value.clone(),
        _ => series.value(series.local(m)),
    };
    match record.kind {
        Kind::Task if record.get("start").is_none() => record.set("due", spell(&start, None)),
        kind => {
            record.set("start", spell(&start, own("start")));
            let end_field = if kind == Kind::Task { "due" } else { "end" };
            let own_end = fields.is_some_and(|i| i.end.is_some());
            if let Some(end) = &end {
                if own_end || series.record.get(end_field).is_some() {
                    record.set(end_field, spell(end, own("end")));
                }
            }
        }
    }
    Occurrence {
        key: series.key(local),
        start_utc,
        end_utc: end.as_ref().map(Moment::utc),
        record,
    }
}

#[cfg(test)]
mod tests;
