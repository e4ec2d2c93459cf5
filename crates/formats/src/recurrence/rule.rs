//! One RRULE's instances, iterated by calcard in floating (wall-clock)
//! time, with the work bounded: a DTSTART moved forward by whole periods to
//! just before the range of interest, UNTIL clamped just past it and at
//! most [`MAX_CANDIDATES`] periods after the start, at most `budget`
//! (never more than [`MAX_CANDIDATES`]) instances, and rules too dense to
//! iterate refused. calcard stops iterating once `budget` instances are
//! out, so a caller that needs only the first few asks for few.

use super::{MAX_CANDIDATES, MAX_PER_PERIOD};
use crate::error::shielded;
use calcard::common::timezone::Tz;
use calcard::common::PartialDateTime;
use calcard::icalendar::{
    ICalendar, ICalendarComponent, ICalendarComponentType, ICalendarEntry, ICalendarFrequency,
    ICalendarProperty, ICalendarRecurrenceRule, ICalendarValue,
};
use chrono::{Datelike, NaiveDateTime, NaiveTime, TimeDelta, Timelike};

pub(crate) struct Instances {
    /// Wall-clock starts, ascending.
    pub starts: Vec<NaiveDateTime>,
    /// More instances may exist in the range than could be looked at
    /// (a bound of [`MAX_CANDIDATES`] was hit).
    pub truncated: bool,
    /// The iteration stopped because `budget` instances were out: later
    /// ones may exist in the range, and a larger budget would find them.
    pub exhausted: bool,
}

/// The instances of `rule` (whose UNTIL, if any, is floating wall-clock
/// time) for a series starting at `first`, from `earliest` (if given) up to
/// `latest` (if given), the first `budget` of them at most. Instances
/// before `earliest` may be included.
pub(crate) fn instances(
    rule: &ICalendarRecurrenceRule,
    first: NaiveDateTime,
    date_only: bool,
    latest: Option<NaiveDateTime>,
    earliest: Option<NaiveDateTime>,
    budget: usize,
) -> Result<Instances, String> {
    let budget = budget.clamp(1, MAX_CANDIDATES);
    let none = |truncated| Instances {
        starts: Vec::new(),
        truncated,
        exhausted: false,
    };
    if per_period(rule) > MAX_PER_PERIOD {
        return Ok(none(true));
    }
    // calcard reads years up to 9999 only.
    let last = chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .ok_or("no last date")?;
    let latest = Some(latest.map_or(last, |l| l.min(last)));
    let until = match rule.until.as_ref() {
        None => latest,
        Some(until) => {
            let at = until
                .to_date_time()
                .ok_or("RRULE has an invalid UNTIL")?
                .date_time;
            // An UNTIL date includes the whole of that day.
            let at = if until.has_time() {
                at
            } else {
                at.date().and_hms_opt(23, 59, 59).unwrap_or(at)
            };
            Some(latest.map_or(at, |latest| latest.min(at)))
        }
    };
    // COUNT needs every earlier instance, so such rules start at DTSTART.
    let start = match (rule.count, earliest) {
        (None, Some(earliest)) if earliest > first => shift(rule, first, earliest),
        _ => first,
    };
    // Each period costs calcard a loop whether or not it yields, so no more
    // than MAX_CANDIDATES periods past the start are looked at.
    let budget_end = period_seconds(rule)
        .and_then(|p| TimeDelta::try_seconds(p.saturating_mul(MAX_CANDIDATES as i64)))
        .and_then(|span| start.checked_add_signed(span));
    let cut = match (until, budget_end) {
        (Some(until), Some(end)) => end < until,
        (None, Some(_)) => true,
        (_, None) => false,
    };
    let until = if cut { budget_end } else { until };
    let until = until.map(|u| {
        if date_only {
            u.date().and_time(NaiveTime::MIN)
        } else {
            u
        }
    });
    if until.is_some_and(|u| u < start) {
        return Ok(none(false));
    }
    let mut synthetic = rule.clone();
    synthetic.until = until.map(|u| floating(u, date_only));
    let calendar = ICalendar {
        components: vec![
            ICalendarComponent {
                component_type: ICalendarComponentType::VCalendar,
                entries: Vec::new(),
                component_ids: vec![1],
            },
            ICalendarComponent {
                component_type: ICalendarComponentType::VEvent,
                entries: vec![
                    ICalendarEntry::new(ICalendarProperty::Dtstart).with_value(
                        ICalendarValue::PartialDateTime(Box::new(floating(start, date_only))),
                    ),
                    ICalendarEntry::new(ICalendarProperty::Rrule)
                        .with_value(ICalendarValue::RecurrenceRule(Box::new(synthetic))),
                ],
                component_ids: Vec::new(),
            },
        ],
    };
    let expanded = shielded("expanding a recurrence rule", || {
        calendar.expand_dates(Tz::Floating, budget)
    })
    .map_err(|e| e.message)?;
    if let Some(error) = expanded.errors.first() {
        return Err(format!("RRULE cannot be expanded: {}", error.error));
    }
    let mut starts: Vec<NaiveDateTime> = expanded
        .events
        .iter()
        .filter(|e| e.comp_id == 1)
        .map(|e| e.start.naive_local())
        .collect();
    starts.sort_unstable();
    let finished = rule
        .count
        .is_some_and(|count| starts.len() >= usize::try_from(count).unwrap_or(usize::MAX));
    let exhausted = starts.len() >= budget && !finished;
    let truncated = (exhausted && budget >= MAX_CANDIDATES) || (cut && !finished);
    Ok(Instances {
        starts,
        truncated,
        exhausted,
    })
}

/// Candidates one period of `rule` can produce: the days of the period
/// times the BYHOUR × BYMINUTE × BYSECOND product below the frequency.
fn per_period(rule: &ICalendarRecurrenceRule) -> usize {
    let (days, parts) = match rule.freq {
        ICalendarFrequency::Yearly => (366, 3),
        ICalendarFrequency::Monthly => (31, 3),
        ICalendarFrequency::Weekly => (7, 3),
        ICalendarFrequency::Daily => (1, 3),
        ICalendarFrequency::Hourly => (1, 2),
        ICalendarFrequency::Minutely => (1, 1),
        ICalendarFrequency::Secondly => (1, 0),
    };
    [rule.bysecond.len(), rule.byminute.len(), rule.byhour.len()]
        .iter()
        .take(parts)
        .fold(days, |acc: usize, n| acc.saturating_mul((*n).max(1)))
}

/// `first` moved forward by the most whole periods of `rule` that keep it
/// at or before `earliest`. Whole periods keep every part of the rule that
/// DTSTART supplies (weekday, day of month, time of day) and the INTERVAL
/// alignment; monthly and yearly rules only move when the day of the month
/// exists in every month.
fn shift(
    rule: &ICalendarRecurrenceRule,
    first: NaiveDateTime,
    earliest: NaiveDateTime,
) -> NaiveDateTime {
    let interval = i64::from(rule.interval.unwrap_or(1).max(1));
    let fixed = |unit: i64| {
        let period = unit.saturating_mul(interval);
        let periods = (earliest - first).num_seconds() / period;
        TimeDelta::try_seconds(periods.saturating_mul(period))
            .and_then(|d| first.checked_add_signed(d))
            .unwrap_or(first)
    };
    let months = |unit: i64| {
        if first.day() > 28 {
            return first;
        }
        let span = (i64::from(earliest.year()) - i64::from(first.year())) * 12
            + i64::from(earliest.month())
            - i64::from(first.month());
        let step = unit * interval;
        let moved = (span.max(0) / step) * step;
        u32::try_from(moved)
            .ok()
            .and_then(|m| first.checked_add_months(chrono::Months::new(m)))
            .filter(|m| *m <= earliest)
            .unwrap_or(first)
    };
    match rule.freq {
        ICalendarFrequency::Secondly => fixed(1),
        ICalendarFrequency::Minutely => fixed(60),
        ICalendarFrequency::Hourly => fixed(3_600),
        ICalendarFrequency::Daily => fixed(86_400),
        ICalendarFrequency::Weekly => fixed(7 * 86_400),
        ICalendarFrequency::Monthly => months(1),
        ICalendarFrequency::Yearly => months(12),
    }
}

/// The length of one period of `rule` in seconds (months and years at
/// their shortest).
fn period_seconds(rule: &ICalendarRecurrenceRule) -> Option<i64> {
    let unit: i64 = match rule.freq {
        ICalendarFrequency::Secondly => 1,
        ICalendarFrequency::Minutely => 60,
        ICalendarFrequency::Hourly => 3_600,
        ICalendarFrequency::Daily => 86_400,
        ICalendarFrequency::Weekly => 7 * 86_400,
        ICalendarFrequency::Monthly => 28 * 86_400,
        ICalendarFrequency::Yearly => 365 * 86_400,
    };
    unit.checked_mul(i64::from(rule.interval.unwrap_or(1).max(1)))
}

/// A wall-clock time (or date) as calcard's value without a zone.
pub(crate) fn floating(at: NaiveDateTime, date_only: bool) -> PartialDateTime {
    let small = |n: u32| u8::try_from(n).unwrap_or(u8::MAX);
    let mut pdt = PartialDateTime {
        year: u16::try_from(at.year()).ok(),
        month: Some(small(at.month())),
        day: Some(small(at.day())),
        ..PartialDateTime::default()
    };
    if !date_only {
        pdt.hour = Some(small(at.hour()));
        pdt.minute = Some(small(at.minute()));
        pdt.second = Some(small(at.second()));
    }
    pdt
}
