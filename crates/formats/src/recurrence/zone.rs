//! Time zones for expansion: a zone name as the record keeps it (IANA,
//! Windows, `(UTC+01:00) …`, `UTC`, floating) or a VTIMEZONE of the item,
//! and the conversions between wall-clock time and UTC seconds.
//!
//! Names go through calcard's `Tz`, which knows the IANA database and the
//! names Outlook and Exchange write. A VTIMEZONE whose TZID calcard does not
//! know is evaluated from its own STANDARD/DAYLIGHT observances (RFC 5545
//! §3.6.5: the offset in effect is that of the last onset before the time);
//! only when that fails does calcard's guess from `X-LIC-LOCATION` or
//! `X-MICROSOFT-CDO-TZID` apply.

use super::{rule, MAX_CANDIDATES};
use crate::datetime;
use calcard::common::timezone::Tz;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarProperty, ICalendarValue,
};
use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

/// Observance onsets are computed up to this year.
const LAST_YEAR: i32 = 2200;

/// A zone occurrences are computed in.
#[derive(Debug, Clone)]
pub(crate) enum Zone {
    /// Floating time, read as UTC.
    Floating,
    /// A zone calcard knows (UTC, IANA, fixed offsets).
    Known(Tz),
    /// A VTIMEZONE's own rules.
    Custom(Arc<Rules>),
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        match (self, other) {
            (Zone::Floating, Zone::Floating) => true,
            (Zone::Known(a), Zone::Known(b)) => a == b,
            (Zone::Custom(a), Zone::Custom(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Zone {
    pub(crate) fn is_utc(&self) -> bool {
        matches!(self, Zone::Known(tz) if *tz == Tz::UTC)
    }

    /// Whether the offset never changes (floating, UTC, a fixed offset):
    /// wall-clock order is then exactly the order in time.
    pub(crate) fn is_fixed(&self) -> bool {
        matches!(
            self,
            Zone::Floating | Zone::Known(Tz::Floating | Tz::Fixed(_))
        ) || self.is_utc()
    }

    /// Unix seconds of a wall-clock time: a repeated time is its first
    /// instance, a skipped one takes the offset from before the gap
    /// (RFC 5545 §3.3.5).
    pub(crate) fn to_utc(&self, at: NaiveDateTime) -> i64 {
        let naive = at.and_utc().timestamp();
        let offset = match self {
            Zone::Floating => 0,
            Zone::Known(tz) => match tz.offset_from_local_datetime(&at) {
                LocalResult::Single(o) | LocalResult::Ambiguous(o, _) => o.fix().local_minus_utc(),
                LocalResult::None => {
                    match tz.offset_from_local_datetime(&(at - TimeDelta::days(1))) {
                        LocalResult::Single(o) | LocalResult::Ambiguous(o, _) => {
                            o.fix().local_minus_utc()
                        }
                        LocalResult::None => 0,
                    }
                }
            },
            Zone::Custom(rules) => rules.offset_for_local(naive),
        };
        naive - i64::from(offset)
    }

    /// The wall-clock time of a UTC instant.
    pub(crate) fn to_local(&self, seconds: i64) -> NaiveDateTime {
        let utc = DateTime::from_timestamp(seconds, 0)
            .unwrap_or_default()
            .naive_utc();
        match self {
            Zone::Floating => utc,
            Zone::Known(tz) => tz.from_utc_datetime(&utc).naive_local(),
            Zone::Custom(rules) => utc + TimeDelta::seconds(i64::from(rules.offset_at(seconds))),
        }
    }
}

/// TZID → zone, for the VTIMEZONEs of one item.
#[derive(Debug, Clone, Default)]
pub(crate) struct Zones {
    by_id: HashMap<String, Zone>,
}

impl Zones {
    /// The zones `calendar`'s VTIMEZONEs define.
    pub(crate) fn of(calendar: &ICalendar) -> Zones {
        let mut by_id = HashMap::new();
        for component in calendar.timezones() {
            let Some(tzid) = component
                .property(&ICalendarProperty::Tzid)
                .and_then(|e| e.values.first())
                .and_then(ICalendarValue::as_text)
            else {
                continue;
            };
            if Tz::from_str(tzid).is_ok() {
                continue;
            }
            let zone = match Rules::read(calendar, component) {
                Some(rules) => Zone::Custom(Arc::new(rules)),
                None => match component.timezone() {
                    Some((_, tz)) => Zone::Known(tz),
                    None => continue,
                },
            };
            by_id.insert(tzid.to_string(), zone);
        }
        Zones { by_id }
    }

    /// The zone a record's `tz` names; unknown names are read as floating.
    pub(crate) fn resolve(&self, name: Option<&str>) -> Zone {
        let Some(name) = name else {
            return Zone::Floating;
        };
        if name == datetime::UTC {
            return Zone::Known(Tz::UTC);
        }
        if let Some(zone) = self.by_id.get(name) {
            return zone.clone();
        }
        if let Some(offset) = datetime::parse_offset_seconds(name) {
            return chrono::FixedOffset::east_opt(offset)
                .map_or(Zone::Floating, |o| Zone::Known(Tz::Fixed(o)));
        }
        match Tz::from_str(name) {
            Ok(tz) => Zone::Known(tz),
            Err(()) => {
                tracing::debug!(tzid = name, "unknown time zone, read as floating");
                Zone::Floating
            }
        }
    }
}

/// A VTIMEZONE's observances as a sorted list of onsets.
#[derive(Debug)]
pub(crate) struct Rules {
    /// (onset in UTC seconds, offset from then on), sorted.
    onsets: Vec<(i64, i32)>,
    /// The offset before the first onset.
    initial: i32,
}

impl Rules {
    fn read(calendar: &ICalendar, vtimezone: &ICalendarComponent) -> Option<Rules> {
        let mut onsets = Vec::new();
        let mut first: Option<(i64, i32)> = None;
        let last = NaiveDate::from_ymd_opt(LAST_YEAR, 1, 1)?.and_hms_opt(0, 0, 0)?;
        for id in &vtimezone.component_ids {
            let observance = calendar.components.get(*id as usize)?;
            if !matches!(
                observance.component_type,
                ICalendarComponentType::Standard | ICalendarComponentType::Daylight
            ) {
                continue;
            }
            let from = offset(observance, &ICalendarProperty::Tzoffsetfrom)?;
            let to = offset(observance, &ICalendarProperty::Tzoffsetto)?;
            let start = match observance
                .property(&ICalendarProperty::Dtstart)
                .and_then(|e| e.values.first())
            {
                Some(ICalendarValue::PartialDateTime(pdt)) => pdt.to_date_time()?.date_time,
                _ => return None,
            };
            let mut locals = vec![start];
            for entry in observance.properties(&ICalendarProperty::Rdate) {
                for value in &entry.values {
                    if let ICalendarValue::PartialDateTime(pdt) = value {
                        locals.extend(pdt.to_date_time().map(|d| d.date_time));
                    }
                }
            }
            for entry in observance.properties(&ICalendarProperty::Rrule) {
                if let Some(ICalendarValue::RecurrenceRule(rule)) = entry.values.first() {
                    // UNTIL of an observance is in UTC; compare it as local
                    // time in the offset the observance starts from.
                    let mut rule = (**rule).clone();
                    if let Some(until) = rule.until.as_mut() {
                        if until.tz_hour.is_some() {
                            let at = until.to_date_time()?;
                            let local = at.date_time + TimeDelta::seconds(i64::from(from));
                            *until = rule::floating(local, false);
                        }
                    }
                    let found =
                        rule::instances(&rule, start, false, Some(last), None, MAX_CANDIDATES)
                            .ok()?;
                    locals.extend(found.starts);
                }
            }
            for local in locals {
                let onset = local.and_utc().timestamp() - i64::from(from);
                if first.is_none_or(|(at, _)| onset < at) {
                    first = Some((onset, from));
                }
                onsets.push((onset, to));
            }
        }
        let (_, initial) = first?;
        onsets.sort_unstable();
        onsets.dedup();
        Some(Rules { onsets, initial })
    }

    /// The offset in effect at a UTC instant.
    fn offset_at(&self, at: i64) -> i32 {
        self.onsets
            .partition_point(|(onset, _)| *onset <= at)
            .checked_sub(1)
            .and_then(|p| self.onsets.get(p))
            .map_or(self.initial, |(_, offset)| *offset)
    }

    /// The offset for a wall-clock time given as naive seconds: the
    /// earliest consistent one, or the one before a gap.
    fn offset_for_local(&self, naive: i64) -> i32 {
        let candidates = [
            self.offset_at(naive - 86_400),
            self.offset_at(naive),
            self.offset_at(naive + 86_400),
        ];
        candidates
            .iter()
            .filter(|o| self.offset_at(naive - i64::from(**o)) == **o)
            .max()
            .copied()
            .unwrap_or(candidates[0])
    }
}

fn offset(observance: &ICalendarComponent, property: &ICalendarProperty) -> Option<i32> {
    match observance.property(property)?.values.first()? {
        ICalendarValue::PartialDateTime(pdt) => {
            let seconds =
                i32::from(pdt.tz_hour?) * 3_600 + i32::from(pdt.tz_minute.unwrap_or(0)) * 60;
            Some(if pdt.tz_minus { -seconds } else { seconds })
        }
        _ => None,
    }
}
