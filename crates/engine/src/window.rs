//! A pair's time window (`window = { past = "30d", future = "365d" }`):
//! which events and tasks take part, judged by their occurrences. A
//! recurring series is one record, in scope when any of its occurrences
//! overlaps `[now - past, now + future)`; a record outside the window is
//! treated like one outside a filter (see `tandem_mapping::Scope`). The
//! same spans bound the occurrences an expanded series lists (`expand.rs`).

use serde::Deserialize;
use std::time::{SystemTime, UNIX_EPOCH};
use tandem_formats::recurrence::{self, Window};
use tandem_formats::FormatError;
use tandem_plan::Direction;
use tandem_record::{Record, Side};

/// The earliest instant a window reaches back to (0001-01-01T00:00:00Z).
const EARLIEST: i64 = -62_135_596_800;
/// The latest instant a window reaches forward to (10000-01-01T00:00:00Z).
const LATEST: i64 = 253_402_300_800;

/// Spans around "now", in seconds; `None` reaches as far as iCalendar goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeWindow {
    pub past: Option<i64>,
    pub future: Option<i64>,
}

/// Reads a span like `30d`, `12h`, `2w`, `90m` or `1w 2d` (also ISO 8601
/// `P30D`): seconds, never negative. Days are 24 hours and weeks 7 days;
/// months and years are refused (their length varies).
pub fn parse_span(text: &str) -> Result<i64, String> {
    let span: jiff::Span = text
        .trim()
        .parse()
        .map_err(|e| format!("`{text}` is not a span like 30d, 12h or 2w: {e}"))?;
    let duration = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|_| format!("`{text}`: use days or weeks, not months or years"))?;
    if duration.is_negative() {
        return Err(format!("`{text}` is negative"));
    }
    Ok(duration.as_secs())
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A pair's `window = { past = "30d", future = "365d" }`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WindowKeys {
    past: Option<String>,
    future: Option<String>,
}

/// A pair's `expand = { future = "90d", past = "0d", side = "a" }`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpandKeys {
    future: String,
    past: Option<String>,
    side: Option<String>,
}

fn spans(what: &str, past: Option<&str>, future: Option<&str>) -> Result<TimeWindow, String> {
    let span = |key: &str, text: Option<&str>| {
        text.map(parse_span)
            .transpose()
            .map_err(|e| format!("{what}.{key}: {e}"))
    };
    Ok(TimeWindow {
        past: span("past", past)?,
        future: span("future", future)?,
    })
}

impl WindowKeys {
    pub(crate) fn read(&self) -> Result<TimeWindow, String> {
        if self.past.is_none() && self.future.is_none() {
            return Err("window: give `past`, `future` or both".into());
        }
        spans("window", self.past.as_deref(), self.future.as_deref())
    }
}

impl ExpandKeys {
    /// The side holding the series, the window, and the pair's direction
    /// (one way from that side; `direction` as configured, if it was).
    pub(crate) fn read(
        &self,
        direction: Option<Direction>,
    ) -> Result<(Side, TimeWindow, Direction), String> {
        let side = match self.side.as_deref() {
            None | Some("a") => Side::A,
            Some("b") => Side::B,
            Some(other) => {
                return Err(format!(
                    "expand.side: unknown side `{other}` (expected a or b)"
                ))
            }
        };
        let from = match side {
            Side::A => Direction::AToB,
            Side::B => Direction::BToA,
        };
        if direction.is_some_and(|d| d != from) {
            return Err(format!(
                "expand: side {side} shows the occurrences of its series and cannot be written, so the pair must flow from it: direction = \"{side}-to-{}\"",
                side.other()
            ));
        }
        let window = spans(
            "expand",
            Some(self.past.as_deref().unwrap_or("0d")),
            Some(&self.future),
        )?;
        Ok((side, window, from))
    }
}

impl TimeWindow {
    /// The window around `now`.
    pub fn at(&self, now: i64) -> Window {
        Window {
            from: self
                .past
                .map_or(EARLIEST, |p| now.saturating_sub(p).max(EARLIEST)),
            to: self
                .future
                .map_or(LATEST, |f| now.saturating_add(f).min(LATEST)),
        }
    }

    /// The window for every instant of the UTC day `day` (days since
    /// 1970-01-01): from the day's start less `past` to its end plus
    /// `future`. An expanded side places its window so, and moves it once
    /// a day (`expand.rs`).
    pub fn on_day(&self, day: i64) -> Window {
        let start = day.saturating_mul(86_400);
        Window {
            from: self.at(start).from,
            to: self.at(start.saturating_add(86_400)).to,
        }
    }

    /// Whether `record` has an occurrence in the window around `now`. A
    /// record with no time at all (a task without start or due date) is
    /// always in scope: there is nothing to judge it by.
    pub fn admits_at(&self, record: &Record, now: i64) -> Result<bool, FormatError> {
        if ["start", "due", "end", "completed"]
            .iter()
            .all(|f| record.get(f).is_none())
        {
            return Ok(true);
        }
        recurrence::any_in(record, self.at(now))
    }
}

impl tandem_mapping::Scope for TimeWindow {
    fn admits(&self, record: &Record) -> Result<bool, String> {
        self.admits_at(record, now())
            .map_err(|e| format!("window: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_record::{Kind, Value};

    const DAY: i64 = 86_400;
    /// 2026-11-28T00:00:00Z.
    const NOW: i64 = 1_795_824_000;

    fn utc(local: &str) -> Value {
        Value::DateTime {
            local: local.into(),
            tz: Some("UTC".into()),
        }
    }

    fn event(uid: &str, start: &str, end: &str) -> Record {
        Record::new(Kind::Event, uid)
            .with("summary", Value::text(uid))
            .with("start", utc(start))
            .with("end", utc(end))
    }

    #[test]
    fn spans() {
        assert_eq!(parse_span("30d"), Ok(30 * DAY));
        assert_eq!(parse_span("12h"), Ok(12 * 3600));
        assert_eq!(parse_span("2w"), Ok(14 * DAY));
        assert_eq!(parse_span("0d"), Ok(0));
        assert_eq!(parse_span("1w 2d"), Ok(9 * DAY));
        for bad in ["", "soon", "3 fortnights", "-2d", "1mo", "1y"] {
            assert!(parse_span(bad).is_err(), "{bad}");
        }
    }

    /// `window` and `expand` as config keys, and their mistakes.
    #[test]
    fn config_keys() {
        use crate::Config;
        use tandem_plan::Direction;
        use tandem_record::Side;
        let pair = "[stores.cal]\ntype = \"vdir\"\npath = \"cal\"\n\n[stores.sheet]\ntype = \"csv\"\npath = \"events.csv\"\n\n[[pairs]]\nname = \"p\"\na = \"cal\"\nb = \"sheet\"\nkind = \"event\"\n";
        let parse = |extra: &str| {
            Config::parse(
                std::path::Path::new("/t/tandem.toml"),
                &format!("{pair}{extra}\n"),
            )
        };
        let c = parse("window = { past = \"30d\", future = \"52w\" }").expect("valid");
        let p = &c.pairs[0];
        assert_eq!(
            p.window,
            Some(TimeWindow {
                past: Some(30 * DAY),
                future: Some(364 * DAY)
            })
        );
        assert!(p.mapping.filters(Side::A) && p.mapping.filters(Side::B));
        assert_eq!(p.policy.direction, Direction::Both);

        let c = parse("expand = { future = \"90d\" }").expect("valid");
        let p = &c.pairs[0];
        assert_eq!(
            p.expand,
            Some((
                Side::A,
                TimeWindow {
                    past: Some(0),
                    future: Some(90 * DAY)
                }
            ))
        );
        assert_eq!(p.policy.direction, Direction::AToB);
        let c = parse(
            "expand = { future = \"1w\", past = \"1d\", side = \"b\" }\ndirection = \"b-to-a\"",
        )
        .expect("valid");
        assert_eq!(c.pairs[0].expand.map(|(side, _)| side), Some(Side::B));

        for (extra, needle) in [
            ("window = { past = \"soon\" }", "window.past"),
            ("window = {}", "window"),
            ("window = { past = \"1d\", futur = \"1d\" }", "futur"),
            ("window = { future = \"3mo\" }", "months"),
            ("expand = { past = \"1d\" }", "future"),
            (
                "expand = { future = \"90d\" }\ndirection = \"b-to-a\"",
                "a-to-b",
            ),
            (
                "expand = { future = \"90d\" }\ndirection = \"both\"",
                "a-to-b",
            ),
            (
                "expand = { future = \"90d\", side = \"b\" }\ndirection = \"a-to-b\"",
                "b-to-a",
            ),
            ("expand = { future = \"90d\", side = \"c\" }", "expand.side"),
        ] {
            let err = parse(extra).expect_err(extra).to_string();
            assert!(err.contains(needle), "{extra}: {err}");
            assert!(err.starts_with("/t/tandem.toml:"), "{err}");
        }
        let contacts = pair.replace("kind = \"event\"", "kind = \"contact\"");
        let err = Config::parse(
            std::path::Path::new("/t/tandem.toml"),
            &format!("{contacts}window = {{ future = \"1d\" }}\n"),
        )
        .expect_err("contacts have no time")
        .to_string();
        assert!(err.contains("events and tasks"), "{err}");
    }

    /// A window placed on a day holds the window around every instant of
    /// that day, and no more.
    #[test]
    fn on_day_covers_the_whole_day() {
        let window = TimeWindow {
            past: Some(DAY),
            future: Some(90 * DAY),
        };
        let day = NOW / DAY;
        let placed = window.on_day(day);
        assert_eq!(placed.from, NOW - DAY);
        assert_eq!(placed.to, NOW + DAY + 90 * DAY);
        for at in [NOW, NOW + DAY / 2, NOW + DAY - 1] {
            let around = window.at(at);
            assert!(placed.from <= around.from && around.to <= placed.to);
        }
        let open = TimeWindow {
            past: None,
            future: Some(DAY),
        };
        assert_eq!(open.on_day(day).from, EARLIEST);
    }

    #[test]
    fn a_series_is_in_scope_while_any_occurrence_is() {
        let window = TimeWindow {
            past: Some(30 * DAY),
            future: Some(365 * DAY),
        };
        // Weekly since 2024, still running: occurrences inside the window.
        let running = event("weekly", "2024-01-01T09:00:00", "2024-01-01T10:00:00").with(
            "recurrence",
            Value::map([("rrule", Value::text("FREQ=WEEKLY"))]),
        );
        // Weekly in 2024 only: every occurrence is long past.
        let ended = event("ended", "2024-01-01T09:00:00", "2024-01-01T10:00:00").with(
            "recurrence",
            Value::map([("rrule", Value::text("FREQ=WEEKLY;UNTIL=20241231T000000Z"))]),
        );
        let old = event("old", "2024-11-01T09:00:00", "2024-11-01T10:00:00");
        let recent = event("recent", "2026-11-20T09:00:00", "2026-11-20T10:00:00");
        let far = event("far", "2028-06-01T09:00:00", "2028-06-01T10:00:00");
        let undated = Record::new(Kind::Task, "todo").with("summary", Value::text("someday"));
        for (record, inside) in [
            (&running, true),
            (&ended, false),
            (&old, false),
            (&recent, true),
            (&far, false),
            (&undated, true),
        ] {
            assert_eq!(
                window.admits_at(record, NOW).expect("judged"),
                inside,
                "{}",
                record.uid
            );
        }
        // No past bound: everything before the future bound is in scope.
        let open = TimeWindow {
            past: None,
            future: Some(DAY),
        };
        assert!(open.admits_at(&old, NOW).expect("judged"));
        assert!(!open.admits_at(&far, NOW).expect("judged"));
    }
}
