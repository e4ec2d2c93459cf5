//! Dates and date-times: calcard's `PartialDateTime` (plus a TZID parameter)
//! to and from [`Value::Date`] / [`Value::DateTime`], validated with chrono.
//!
//! Wall-clock times are kept exactly as written: `20240108T100000` with
//! `TZID=Europe/Berlin` reads as `local: "2024-01-08T10:00:00", tz:
//! Some("Europe/Berlin")`; a trailing `Z` reads as `tz: Some("UTC")`; no zone
//! reads as floating (`tz: None`). Nothing is ever converted between zones.

use calcard::common::PartialDateTime;
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use tandem_record::Value;

/// The zone name used for UTC (`Z`) times.
pub(crate) const UTC: &str = "UTC";

/// Which spellings a format can hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dialect {
    /// vCard allows reduced dates: `--MM-DD`, `YYYY-MM`, `YYYY`.
    pub partial_dates: bool,
    /// vCard writes zones as UTC offsets (`+02:00`), never by name.
    pub offsets: bool,
    /// iCalendar names zones with a TZID parameter.
    pub zone_names: bool,
}

pub(crate) const VCARD: Dialect = Dialect {
    partial_dates: true,
    offsets: true,
    zone_names: false,
};

pub(crate) const ICALENDAR: Dialect = Dialect {
    partial_dates: false,
    offsets: false,
    zone_names: true,
};

/// A value ready to be written: the calcard date-time, the TZID parameter it
/// needs (if any) and whether it is a bare date (`VALUE=DATE`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Native {
    pub value: PartialDateTime,
    pub tzid: Option<String>,
    pub is_date: bool,
}

/// Reads a native date or date-time. Errors describe the value, not the
/// property; callers prefix the property name.
pub(crate) fn read(
    pdt: &PartialDateTime,
    tzid: Option<&str>,
    dialect: Dialect,
) -> Result<Value, String> {
    let invalid = || format!("invalid date or time `{}`", debug_text(pdt));
    match (pdt.year, pdt.month, pdt.day) {
        (Some(y), Some(m), Some(d)) => {
            let date = NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d))
                .ok_or_else(invalid)?;
            if pdt.hour.is_none() {
                return Ok(Value::Date(date.format("%Y-%m-%d").to_string()));
            }
            let time = NaiveTime::from_hms_opt(
                u32::from(pdt.hour.unwrap_or(0)),
                u32::from(pdt.minute.unwrap_or(0)),
                u32::from(pdt.second.unwrap_or(0)),
            )
            .ok_or_else(invalid)?;
            let local = NaiveDateTime::new(date, time)
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string();
            let tz = match (pdt.tz_hour, pdt.tz_minute) {
                (Some(0), None | Some(0)) => Some(UTC.to_string()),
                (Some(h), m) => Some(format!(
                    "{}{:02}:{:02}",
                    if pdt.tz_minus { '-' } else { '+' },
                    h,
                    m.unwrap_or(0)
                )),
                (None, _) => tzid.map(str::to_string),
            };
            Ok(Value::DateTime { local, tz })
        }
        _ if dialect.partial_dates && pdt.hour.is_none() => match (pdt.year, pdt.month, pdt.day) {
            (None, Some(m), Some(d))
                if NaiveDate::from_ymd_opt(2000, m.into(), d.into()).is_some() =>
            {
                Ok(Value::Date(format!("--{m:02}-{d:02}")))
            }
            (Some(y), Some(m), None) if (1..=12).contains(&m) => {
                Ok(Value::Date(format!("{y:04}-{m:02}")))
            }
            (Some(y), None, None) => Ok(Value::Date(format!("{y:04}"))),
            _ => Err(invalid()),
        },
        _ => Err(invalid()),
    }
}

/// Turns a record value into a native date or date-time.
pub(crate) fn write(value: &Value, dialect: Dialect) -> Result<Native, String> {
    match value {
        Value::Date(text) => write_date(text, dialect),
        Value::DateTime { local, tz } => {
            let parsed = parse_local(local).ok_or_else(|| {
                format!("invalid date-time `{local}` (expected YYYY-MM-DDTHH:MM:SS)")
            })?;
            let mut pdt = PartialDateTime {
                year: Some(
                    u16::try_from(parsed.year())
                        .map_err(|_| format!("year out of range in `{local}`"))?,
                ),
                month: Some(small(parsed.month())),
                day: Some(small(parsed.day())),
                hour: Some(small(parsed.hour())),
                minute: Some(small(parsed.minute())),
                second: Some(small(parsed.second())),
                ..PartialDateTime::default()
            };
            let mut tzid = None;
            match tz.as_deref() {
                None => {}
                Some(UTC) => {
                    pdt.tz_hour = Some(0);
                    pdt.tz_minute = Some(0);
                }
                Some(zone) => match parse_offset(zone) {
                    Some((minus, h, m)) if dialect.offsets => {
                        pdt.tz_minus = minus;
                        pdt.tz_hour = Some(h);
                        pdt.tz_minute = Some(m);
                    }
                    _ if dialect.zone_names && !zone.is_empty() && parse_offset(zone).is_none() => {
                        tzid = Some(zone.to_string());
                    }
                    _ => {
                        return Err(format!(
                            "time zone `{zone}` cannot be written here (expected {})",
                            if dialect.offsets {
                                "UTC or an offset like +02:00"
                            } else {
                                "UTC or a time zone name"
                            }
                        ))
                    }
                },
            }
            Ok(Native {
                value: pdt,
                tzid,
                is_date: false,
            })
        }
        other => Err(format!("expected a date or date-time, found `{other}`")),
    }
}

fn write_date(text: &str, dialect: Dialect) -> Result<Native, String> {
    let invalid = || {
        format!(
            "invalid date `{text}` (expected YYYY-MM-DD{})",
            if dialect.partial_dates {
                ", --MM-DD, YYYY-MM or YYYY"
            } else {
                ""
            }
        )
    };
    let pdt = if let Some(date) = parse_date(text) {
        PartialDateTime {
            year: Some(u16::try_from(date.year()).map_err(|_| invalid())?),
            month: Some(small(date.month())),
            day: Some(small(date.day())),
            ..PartialDateTime::default()
        }
    } else if !dialect.partial_dates {
        return Err(invalid());
    } else if let Some(rest) = text.strip_prefix("--") {
        let (m, d) = rest.split_once('-').ok_or_else(invalid)?;
        let (m, d) = (
            digits(m, 2).ok_or_else(invalid)?,
            digits(d, 2).ok_or_else(invalid)?,
        );
        NaiveDate::from_ymd_opt(2000, m, d).ok_or_else(invalid)?;
        PartialDateTime {
            month: Some(small(m)),
            day: Some(small(d)),
            ..PartialDateTime::default()
        }
    } else if let Some((y, m)) = text.split_once('-') {
        let (y, m) = (
            digits(y, 4).ok_or_else(invalid)?,
            digits(m, 2).ok_or_else(invalid)?,
        );
        if !(1..=12).contains(&m) {
            return Err(invalid());
        }
        PartialDateTime {
            year: Some(u16::try_from(y).map_err(|_| invalid())?),
            month: Some(small(m)),
            ..PartialDateTime::default()
        }
    } else {
        let y = digits(text, 4).ok_or_else(invalid)?;
        PartialDateTime {
            year: Some(u16::try_from(y).map_err(|_| invalid())?),
            ..PartialDateTime::default()
        }
    };
    Ok(Native {
        value: pdt,
        tzid: None,
        is_date: true,
    })
}

/// Seconds since the epoch for a REV / LAST-MODIFIED value. Floating times
/// count as UTC; a bare date counts as its midnight.
pub(crate) fn unix_seconds(pdt: &PartialDateTime) -> Option<i64> {
    let date = NaiveDate::from_ymd_opt(
        i32::from(pdt.year?),
        u32::from(pdt.month?),
        u32::from(pdt.day?),
    )?;
    let time = NaiveTime::from_hms_opt(
        u32::from(pdt.hour.unwrap_or(0)),
        u32::from(pdt.minute.unwrap_or(0)),
        u32::from(pdt.second.unwrap_or(0)),
    )?;
    let offset = (i64::from(pdt.tz_hour.unwrap_or(0)) * 60 + i64::from(pdt.tz_minute.unwrap_or(0)))
        * 60
        * if pdt.tz_minus { -1 } else { 1 };
    Some(NaiveDateTime::new(date, time).and_utc().timestamp() - offset)
}

/// The current time in UTC, for DTSTAMP.
pub(crate) fn now_utc() -> PartialDateTime {
    from_unix(chrono::Utc::now().timestamp()).unwrap_or_default()
}

/// A UTC date-time from seconds since the epoch (for REV / LAST-MODIFIED).
pub(crate) fn from_unix(seconds: i64) -> Option<PartialDateTime> {
    let at = chrono::DateTime::from_timestamp(seconds, 0)?.naive_utc();
    Some(PartialDateTime {
        year: u16::try_from(at.year()).ok(),
        month: Some(small(at.month())),
        day: Some(small(at.day())),
        hour: Some(small(at.hour())),
        minute: Some(small(at.minute())),
        second: Some(small(at.second())),
        tz_hour: Some(0),
        tz_minute: Some(0),
        tz_minus: false,
    })
}

/// `YYYY-MM-DD` shifted by whole days.
pub(crate) fn add_days(date: &str, days: i64) -> Option<String> {
    let shifted = parse_date(date)?.checked_add_signed(chrono::TimeDelta::try_days(days)?)?;
    Some(shifted.format("%Y-%m-%d").to_string())
}

/// The `YYYY-MM-DD` part of a date or date-time value.
pub(crate) fn date_part(value: &Value) -> Option<&str> {
    match value {
        Value::Date(d) => Some(d.as_str()),
        Value::DateTime { local, .. } => local.get(..10),
        _ => None,
    }
}

pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 || !text.is_ascii() {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

pub(crate) fn parse_local(text: &str) -> Option<NaiveDateTime> {
    if text.len() != 19 || !text.is_ascii() {
        return None;
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").ok()
}

/// A `+HH:MM`-style zone as seconds east of UTC.
pub(crate) fn parse_offset_seconds(zone: &str) -> Option<i32> {
    let (minus, h, m) = parse_offset(zone)?;
    let seconds = (i32::from(h) * 60 + i32::from(m)) * 60;
    Some(if minus { -seconds } else { seconds })
}

/// `+HH:MM` / `-HH:MM` (also `+HHMM`, `+HH`).
fn parse_offset(zone: &str) -> Option<(bool, u8, u8)> {
    let (minus, rest) = match zone.as_bytes().first()? {
        b'+' => (false, zone.get(1..)?),
        b'-' => (true, zone.get(1..)?),
        _ => return None,
    };
    let rest = rest.replace(':', "");
    let h = digits(rest.get(..2)?, 2)?;
    let m = match rest.get(2..) {
        Some("") | None => 0,
        Some(m) => digits(m, 2)?,
    };
    (h < 24 && m < 60).then_some((minus, small(h), small(m)))
}

fn digits(text: &str, len: usize) -> Option<u32> {
    (text.len() == len && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Month, day, hour, minute and second always fit in a byte.
fn small(n: u32) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

fn debug_text(pdt: &PartialDateTime) -> String {
    let part = |v: Option<u8>| v.map_or("??".to_string(), |v| format!("{v:02}"));
    format!(
        "{}-{}-{}T{}:{}:{}",
        pdt.year.map_or("????".to_string(), |y| format!("{y:04}")),
        part(pdt.month),
        part(pdt.day),
        part(pdt.hour),
        part(pdt.minute),
        part(pdt.second)
    )
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

    #[test]
    fn round_trips_each_spelling() {
        for (value, dialect) in [
            (Value::Date("2024-02-29".into()), ICALENDAR),
            (dt("2024-01-08T10:00:00", None), ICALENDAR),
            (dt("2024-01-08T10:00:00", Some("UTC")), ICALENDAR),
            (dt("2024-01-08T10:00:00", Some("Europe/Berlin")), ICALENDAR),
            (Value::Date("--12-10".into()), VCARD),
            (Value::Date("1815-12".into()), VCARD),
            (Value::Date("1815".into()), VCARD),
            (dt("1815-12-10T08:30:00", Some("+02:00")), VCARD),
            (dt("1815-12-10T08:30:00", Some("-05:30")), VCARD),
        ] {
            let native = write(&value, dialect).unwrap();
            let back = read(&native.value, native.tzid.as_deref(), dialect).unwrap();
            assert_eq!(back, value);
        }
    }

    #[test]
    fn rejects_what_cannot_be_written() {
        assert!(write(&Value::Date("2023-02-29".into()), ICALENDAR).is_err());
        assert!(write(&Value::Date("--12-10".into()), ICALENDAR).is_err());
        assert!(write(&dt("2024-01-08 10:00", None), ICALENDAR).is_err());
        assert!(write(&dt("2024-01-08T10:00:00", Some("Europe/Berlin")), VCARD).is_err());
        assert!(write(&dt("2024-01-08T10:00:00", Some("+02:00")), ICALENDAR).is_err());
        assert!(write(&Value::text("soon"), ICALENDAR).is_err());
    }

    #[test]
    fn rejects_impossible_native_dates() {
        let pdt = PartialDateTime {
            year: Some(2024),
            month: Some(13),
            day: Some(1),
            ..PartialDateTime::default()
        };
        assert!(read(&pdt, None, ICALENDAR).is_err());
    }

    #[test]
    fn timestamps_honour_offsets() {
        let native = write(&dt("1970-01-01T01:00:00", Some("+01:00")), VCARD).unwrap();
        assert_eq!(unix_seconds(&native.value), Some(0));
        let native = write(&dt("1970-01-02T00:00:00", Some("UTC")), ICALENDAR).unwrap();
        assert_eq!(unix_seconds(&native.value), Some(86_400));
    }

    #[test]
    fn unix_seconds_round_trip() {
        let pdt = from_unix(1_704_164_645).unwrap();
        assert_eq!(unix_seconds(&pdt), Some(1_704_164_645));
    }

    #[test]
    fn day_arithmetic() {
        assert_eq!(add_days("2024-02-28", 2).as_deref(), Some("2024-03-01"));
        assert_eq!(
            date_part(&dt("2024-01-08T10:00:00", None)),
            Some("2024-01-08")
        );
    }
}
