use super::*;
use std::time::{Duration, Instant};

fn dt(local: &str, tz: Option<&str>) -> Value {
    Value::DateTime {
        local: local.into(),
        tz: tz.map(str::to_string),
    }
}

fn utc(text: &str) -> i64 {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .unwrap()
        .and_utc()
        .timestamp()
}

fn window(from: &str, to: &str) -> Window {
    Window {
        from: utc(from),
        to: utc(to),
    }
}

fn event(start: Value, end: Option<Value>, rrule: &str) -> Record {
    let mut r = Record::new(Kind::Event, "series")
        .with("summary", Value::text("Standup"))
        .with("start", start);
    if let Some(end) = end {
        r.set("end", end);
    }
    if !rrule.is_empty() {
        r.set("recurrence", Value::map([("rrule", Value::text(rrule))]));
    }
    r
}

fn starts(expansion: &Expansion) -> Vec<i64> {
    expansion.occurrences.iter().map(|o| o.start_utc).collect()
}

fn keys(expansion: &Expansion) -> Vec<&str> {
    expansion
        .occurrences
        .iter()
        .map(|o| o.key.as_str())
        .collect()
}

#[test]
fn weekly_wall_clock_holds_across_dst() {
    let berlin = |l: &str| dt(l, Some("Europe/Berlin"));
    let r = event(
        berlin("2026-03-16T09:00:00"),
        Some(berlin("2026-03-16T09:30:00")),
        "FREQ=WEEKLY;BYDAY=MO",
    );
    let x = expand(
        &r,
        window("2026-03-01T00:00:00", "2026-04-14T00:00:00"),
        100,
    )
    .unwrap();
    // CET (+01:00) before 2026-03-29, CEST (+02:00) after.
    assert_eq!(
        starts(&x),
        vec![
            utc("2026-03-16T08:00:00"),
            utc("2026-03-23T08:00:00"),
            utc("2026-03-30T07:00:00"),
            utc("2026-04-06T07:00:00"),
            utc("2026-04-13T07:00:00"),
        ]
    );
    assert!(!x.truncated);
    for o in &x.occurrences {
        assert_eq!(o.end_utc, Some(o.start_utc + 1800));
        let Some(Value::DateTime { local, tz }) = o.record.get("start") else {
            panic!("start is a date-time")
        };
        assert!(local.ends_with("T09:00:00"), "{local}");
        assert_eq!(tz.as_deref(), Some("Europe/Berlin"));
    }
    assert_eq!(keys(&x)[2], "20260330T090000");
    // And back in October.
    let x = expand(
        &r,
        window("2026-10-19T00:00:00", "2026-10-27T00:00:00"),
        100,
    )
    .unwrap();
    assert_eq!(
        starts(&x),
        vec![utc("2026-10-19T07:00:00"), utc("2026-10-26T08:00:00")]
    );
}

#[test]
fn windows_and_outlook_zone_names_are_iana_zones() {
    let at = |tz: &str| {
        let r = event(dt("2026-07-01T09:00:00", Some(tz)), None, "");
        starts(&expand(&r, window("2026-01-01T00:00:00", "2027-01-01T00:00:00"), 10).unwrap())
    };
    let berlin = at("Europe/Berlin");
    assert_eq!(berlin, vec![utc("2026-07-01T07:00:00")]);
    assert_eq!(at("W. Europe Standard Time"), berlin);
    assert_eq!(
        at("(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"),
        berlin
    );
    assert_eq!(
        at("Pacific Standard Time"),
        vec![utc("2026-07-01T16:00:00")]
    );
    assert_eq!(at("UTC"), vec![utc("2026-07-01T09:00:00")]);
}

#[test]
fn floating_and_all_day_are_read_as_utc() {
    let w = window("2026-12-01T00:00:00", "2026-12-03T00:00:00");
    let floating = event(dt("2026-12-01T09:00:00", None), None, "");
    let x = expand(&floating, w, 10).unwrap();
    assert_eq!(starts(&x), vec![utc("2026-12-01T09:00:00")]);
    assert_eq!(x.occurrences[0].key, "20261201T090000");
    // No end: a date-time has no length.
    assert_eq!(x.occurrences[0].end_utc, Some(utc("2026-12-01T09:00:00")));

    // No end: a date lasts one day, and it overlaps a window that starts
    // in the middle of it.
    let all_day = event(Value::Date("2026-11-30".into()), None, "FREQ=DAILY;COUNT=3")
        .with("all_day", Value::Bool(true));
    let x = expand(
        &all_day,
        window("2026-11-30T12:00:00", "2026-12-02T00:00:00"),
        10,
    )
    .unwrap();
    assert_eq!(keys(&x), vec!["20261130", "20261201"]);
    assert_eq!(x.occurrences[0].end_utc, Some(utc("2026-12-01T00:00:00")));
    assert_eq!(
        x.occurrences[1].record.get("start"),
        Some(&Value::Date("2026-12-01".into()))
    );
    assert_eq!(
        x.occurrences[1].record.get("all_day"),
        Some(&Value::Bool(true))
    );
}

#[test]
fn exdates_rdates_and_overrides() {
    let berlin = |l: &str| dt(l, Some("Europe/Berlin"));
    let mut r = event(
        berlin("2026-01-05T10:00:00"),
        Some(berlin("2026-01-05T11:00:00")),
        "FREQ=WEEKLY;COUNT=6;BYDAY=MO",
    );
    r.set(
        "recurrence",
        Value::map([
            ("rrule", Value::text("FREQ=WEEKLY;COUNT=6;BYDAY=MO")),
            (
                "exdate",
                Value::List(vec![dt("2026-01-12T09:00:00", Some("UTC"))]),
            ),
            ("rdate", Value::List(vec![berlin("2026-01-07T15:00:00")])),
        ]),
    );
    r.set(
        "overrides",
        Value::List(vec![
            // Moved to the afternoon, with its own title.
            Value::map([
                ("recurrence_id", berlin("2026-01-19T10:00:00")),
                ("start", berlin("2026-01-19T14:00:00")),
                ("end", berlin("2026-01-19T15:00:00")),
                ("summary", Value::text("Standup (moved)")),
            ]),
            // Cancelled.
            Value::map([
                ("recurrence_id", berlin("2026-01-26T10:00:00")),
                ("status", Value::text("CANCELLED")),
            ]),
            // Moved out of the window.
            Value::map([
                ("recurrence_id", berlin("2026-02-02T10:00:00")),
                ("start", berlin("2026-03-02T10:00:00")),
                ("end", berlin("2026-03-02T11:00:00")),
            ]),
        ]),
    );
    let x = expand(
        &r,
        window("2026-01-01T00:00:00", "2026-02-28T00:00:00"),
        100,
    )
    .unwrap();
    assert_eq!(
        keys(&x),
        vec![
            "20260105T100000",
            "20260107T150000",
            "20260119T100000",
            "20260209T100000",
        ]
    );
    let moved = &x.occurrences[2];
    assert_eq!(moved.start_utc, utc("2026-01-19T13:00:00"));
    assert_eq!(moved.end_utc, Some(utc("2026-01-19T14:00:00")));
    assert_eq!(
        moved.record.get("summary"),
        Some(&Value::text("Standup (moved)"))
    );
    assert_eq!(
        moved.record.get("start"),
        Some(&berlin("2026-01-19T14:00:00"))
    );
    assert_eq!(moved.record.uid, "series");
    assert_eq!(moved.record.kind, Kind::Event);
    assert!(moved.record.get("recurrence").is_none());
    assert!(moved.record.get("overrides").is_none());
    // An RDATE lasts as long as the master.
    assert_eq!(x.occurrences[1].end_utc, Some(utc("2026-01-07T15:00:00")));
    assert_eq!(
        x.occurrences[1].record.get("end"),
        Some(&berlin("2026-01-07T16:00:00"))
    );

    // The occurrence moved into March shows up in a March window, under
    // its original key.
    let march = expand(
        &r,
        window("2026-03-01T00:00:00", "2026-04-01T00:00:00"),
        100,
    )
    .unwrap();
    assert_eq!(keys(&march), vec!["20260202T100000"]);
}

#[test]
fn durations_come_from_the_item() {
    let item = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:d\r\n\
DTSTAMP:20260101T000000Z\r\nDTSTART:20260105T100000Z\r\nDURATION:PT90M\r\n\
RRULE:FREQ=DAILY;COUNT=2\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let x = expand_item(
        item,
        window("2026-01-01T00:00:00", "2026-02-01T00:00:00"),
        10,
    )
    .unwrap();
    assert_eq!(
        x.occurrences
            .iter()
            .map(|o| o.end_utc.unwrap() - o.start_utc)
            .collect::<Vec<_>>(),
        vec![5400, 5400]
    );
    assert_eq!(keys(&x), vec!["20260105T100000Z", "20260106T100000Z"]);
    // A window that starts during the event still finds it.
    let late = expand_item(
        item,
        window("2026-01-05T11:00:00", "2026-01-05T12:00:00"),
        10,
    )
    .unwrap();
    assert_eq!(keys(&late), vec!["20260105T100000Z"]);
}

#[test]
fn custom_vtimezones_use_their_own_rules() {
    // Outlook's name for a zone it does not map, with the rules inline:
    // +01:00 in winter, +02:00 from the last Sunday of March.
    let item = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n\
BEGIN:VTIMEZONE\r\nTZID:Customized Time Zone\r\n\
BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n\
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n\
BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n\
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:c\r\nDTSTAMP:20260101T000000Z\r\n\
DTSTART;TZID=Customized Time Zone:20260323T090000\r\n\
DTEND;TZID=Customized Time Zone:20260323T100000\r\n\
RRULE:FREQ=WEEKLY;COUNT=2\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let x = expand_item(
        item,
        window("2026-01-01T00:00:00", "2027-01-01T00:00:00"),
        10,
    )
    .unwrap();
    assert_eq!(
        starts(&x),
        vec![utc("2026-03-23T08:00:00"), utc("2026-03-30T07:00:00")]
    );
    assert_eq!(
        x.occurrences[1].record.get("start"),
        Some(&dt("2026-03-30T09:00:00", Some("Customized Time Zone")))
    );
}

#[test]
fn an_end_without_zone_is_read_in_the_zone_of_the_start() {
    // iCal writes `DUE;VALUE=DATE` under a zoned DTSTART; other programs a
    // floating DTEND. Both mean the wall clock where the item happens.
    let new_york = |l: &str| dt(l, Some("America/New_York"));
    let w = window("2004-11-01T00:00:00", "2004-12-01T00:00:00");
    let task = Record::new(Kind::Task, "todo")
        .with("start", new_york("2004-11-12T00:00:00"))
        .with("due", Value::Date("2004-11-14".into()));
    let x = expand(&task, w, 10).unwrap();
    assert_eq!(starts(&x), vec![utc("2004-11-12T05:00:00")]);
    assert_eq!(x.occurrences[0].end_utc, Some(utc("2004-11-14T05:00:00")));

    let floating_end = event(
        new_york("2004-11-12T09:00:00"),
        Some(dt("2004-11-12T10:00:00", None)),
        "FREQ=WEEKLY;COUNT=2",
    );
    let x = expand(&floating_end, w, 10).unwrap();
    let spans: Vec<_> = x
        .occurrences
        .iter()
        .map(|o| (o.start_utc, o.end_utc))
        .collect();
    assert_eq!(
        spans,
        vec![
            (utc("2004-11-12T14:00:00"), Some(utc("2004-11-12T15:00:00"))),
            (utc("2004-11-19T14:00:00"), Some(utc("2004-11-19T15:00:00"))),
        ]
    );

    // Floating and all-day series keep reading their ends as UTC.
    let floating = event(
        dt("2004-11-12T09:00:00", None),
        Some(Value::Date("2004-11-14".into())),
        "",
    );
    let x = expand(&floating, w, 10).unwrap();
    assert_eq!(x.occurrences[0].end_utc, Some(utc("2004-11-14T00:00:00")));
}

#[test]
fn tasks_occur_at_their_dates() {
    let w = window("2026-01-01T00:00:00", "2027-01-01T00:00:00");
    let due_only = Record::new(Kind::Task, "t").with("due", dt("2026-04-15T17:00:00", Some("UTC")));
    let x = expand(&due_only, w, 10).unwrap();
    assert_eq!(starts(&x), vec![utc("2026-04-15T17:00:00")]);
    assert_eq!(x.occurrences[0].end_utc, Some(utc("2026-04-15T17:00:00")));
    assert_eq!(x.occurrences[0].key, "20260415T170000Z");

    let spanning = due_only
        .clone()
        .with("start", Value::Date("2026-04-01".into()));
    let x = expand(
        &spanning,
        window("2026-04-10T00:00:00", "2026-04-11T00:00:00"),
        10,
    )
    .unwrap();
    assert_eq!(x.occurrences.len(), 1);

    let undated = Record::new(Kind::Task, "u").with("summary", Value::text("Someday"));
    assert!(expand(&undated, w, 10).unwrap().occurrences.is_empty());
    assert!(expand(&Record::new(Kind::Contact, "c"), w, 10).is_err());
}

#[test]
fn limit_and_any_in() {
    let r = event(dt("2000-01-01T09:00:00", Some("UTC")), None, "FREQ=DAILY");
    let w = window("2026-01-01T00:00:00", "2026-02-01T00:00:00");
    let x = expand(&r, w, 5).unwrap();
    assert_eq!(x.occurrences.len(), 5);
    assert!(x.truncated);
    assert_eq!(x.occurrences[0].start_utc, utc("2026-01-01T09:00:00"));
    let all = expand(&r, w, 100).unwrap();
    assert_eq!(all.occurrences.len(), 31);
    assert!(!all.truncated);

    assert!(any_in(&r, w).unwrap());
    assert!(!any_in(&r, window("1999-01-01T00:00:00", "1999-12-31T00:00:00")).unwrap());
    let ended = event(
        dt("2000-01-01T09:00:00", Some("UTC")),
        None,
        "FREQ=DAILY;UNTIL=20001231T090000Z",
    );
    assert!(!any_in(&ended, w).unwrap());
    assert_eq!(
        expand(
            &ended,
            window("2000-12-31T00:00:00", "2001-01-02T00:00:00"),
            10
        )
        .unwrap()
        .occurrences
        .len(),
        1
    );
}

#[test]
fn hostile_rules_are_bounded() {
    let w = window("2026-01-01T00:00:00", "2027-01-01T00:00:00");
    let cases = [
        ("2026-01-01T00:00:00", "FREQ=SECONDLY"),
        ("1970-01-01T00:00:00", "FREQ=SECONDLY;COUNT=1000000000"),
        ("2000-01-01T00:00:00", "FREQ=DAILY;COUNT=1000000000"),
        ("2026-01-01T00:00:00", "FREQ=MINUTELY;BYSETPOS=1,2,3,-1,-2,-3;BYSECOND=1,2,3,4,5,6"),
        (
            "2026-01-01T00:00:00",
            "FREQ=YEARLY;BYSETPOS=-1,1,100,200,300;BYMONTH=1,2,3,4,5,6,7,8,9,10,11,12;BYDAY=MO,TU,WE,TH,FR,SA,SU;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;BYMINUTE=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59",
        ),
        ("0001-01-01T00:00:00", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"),
        ("0001-01-01T00:00:00", "FREQ=DAILY;INTERVAL=1;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO"),
        ("0001-01-01T00:00:00", "FREQ=HOURLY;COUNT=1000000000;BYMONTH=2;BYMONTHDAY=29"),
    ];
    for (start, rule) in cases {
        let r = event(dt(start, Some("UTC")), None, rule);
        for w in [w, window("9998-01-01T00:00:00", "9999-12-31T00:00:00")] {
            let began = Instant::now();
            let x = expand(&r, w, 10_000);
            let took = began.elapsed();
            eprintln!("{took:>12?}  {rule} from {start}, window from {}", w.from);
            assert!(
                took < Duration::from_secs(2),
                "{rule} from {start} took {took:?}"
            );
            if let Ok(x) = x {
                assert!(x.occurrences.len() <= 10_000);
            }
        }
    }
    // Unbounded rules report that they were cut short.
    let r = event(
        dt("2026-01-01T00:00:00", Some("UTC")),
        None,
        "FREQ=SECONDLY",
    );
    let x = expand(&r, w, usize::MAX).unwrap();
    assert!(x.truncated);
    assert!(x.occurrences.len() <= MAX_CANDIDATES + 1);
}

#[test]
fn overrides_without_a_master_still_occur() {
    let r = Record::new(Kind::Event, "orphan").with(
        "overrides",
        Value::List(vec![Value::map([
            ("recurrence_id", dt("2026-05-04T09:00:00", Some("UTC"))),
            ("start", dt("2026-05-04T11:00:00", Some("UTC"))),
            ("end", dt("2026-05-04T12:00:00", Some("UTC"))),
            ("summary", Value::text("Moved")),
        ])]),
    );
    let x = expand(&r, window("2026-05-01T00:00:00", "2026-06-01T00:00:00"), 10).unwrap();
    assert_eq!(keys(&x), vec!["20260504T090000Z"]);
    assert_eq!(x.occurrences[0].start_utc, utc("2026-05-04T11:00:00"));
    assert_eq!(x.occurrences[0].end_utc, Some(utc("2026-05-04T12:00:00")));
    assert_eq!(
        x.occurrences[0].record.get("summary"),
        Some(&Value::text("Moved"))
    );
}

/// The reference's own example (recurring-ical-events issue 75): a series
/// every other day at 12:00Z, two THISANDFUTURE overrides and a plain one.
const RANGES: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n\
BEGIN:VEVENT\r\nUID:210\r\nDTSTAMP:20240101T000000Z\r\n\
DTSTART:20240901T120000Z\r\nDTEND:20240901T140000Z\r\n\
RRULE:FREQ=DAILY;INTERVAL=2;UNTIL=20240930\r\nRDATE:20240914T090000Z\r\n\
SUMMARY:ORIGINAL EVENT\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:210\r\nDTSTAMP:20240101T000000Z\r\n\
RECURRENCE-ID;RANGE=THISANDFUTURE:20240913T120000Z\r\n\
DTSTART:20240913T090000Z\r\nDTEND:20240913T160000Z\r\n\
SUMMARY:MODIFIED EVENT\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:210\r\nDTSTAMP:20240101T000000Z\r\n\
RECURRENCE-ID:20240915T120000Z\r\n\
DTSTART:20240915T170000Z\r\nDTEND:20240915T190000Z\r\n\
SUMMARY:MOVED ONCE\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:210\r\nDTSTAMP:20240101T000000Z\r\n\
RECURRENCE-ID;RANGE=THISANDFUTURE:20240921T120000Z\r\n\
DTSTART:20240922T142200Z\r\nDTEND:20240922T161300Z\r\n\
SUMMARY:EDITED EVENT\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

/// (key, start, end, summary) of every occurrence.
fn table(x: &Expansion) -> Vec<(String, i64, i64, String)> {
    x.occurrences
        .iter()
        .map(|o| {
            (
                o.key.clone(),
                o.start_utc,
                o.end_utc.unwrap(),
                o.record.get("summary").unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn this_and_future_moves_every_later_instance() {
    let w = window("2024-09-10T00:00:00", "2024-09-27T00:00:00");
    let x = expand_item(RANGES, w, 100).unwrap();
    let row = |key: &str, start: &str, end: &str, summary: &str| {
        (key.to_string(), utc(start), utc(end), summary.to_string())
    };
    // As recurring-ical-events gives them: from 09-13 on, instances move
    // 3 hours earlier and last 7 hours (the RDATE too); the 09-15 one has
    // its own override; from 09-21 on, a day, 2 h 22 min later, 1 h 51 min.
    assert_eq!(
        table(&x),
        vec![
            row(
                "20240911T120000Z",
                "2024-09-11T12:00:00",
                "2024-09-11T14:00:00",
                "ORIGINAL EVENT"
            ),
            row(
                "20240913T120000Z",
                "2024-09-13T09:00:00",
                "2024-09-13T16:00:00",
                "MODIFIED EVENT"
            ),
            row(
                "20240914T090000Z",
                "2024-09-14T06:00:00",
                "2024-09-14T13:00:00",
                "MODIFIED EVENT"
            ),
            row(
                "20240915T120000Z",
                "2024-09-15T17:00:00",
                "2024-09-15T19:00:00",
                "MOVED ONCE"
            ),
            row(
                "20240917T120000Z",
                "2024-09-17T09:00:00",
                "2024-09-17T16:00:00",
                "MODIFIED EVENT"
            ),
            row(
                "20240919T120000Z",
                "2024-09-19T09:00:00",
                "2024-09-19T16:00:00",
                "MODIFIED EVENT"
            ),
            row(
                "20240921T120000Z",
                "2024-09-22T14:22:00",
                "2024-09-22T16:13:00",
                "EDITED EVENT"
            ),
            row(
                "20240923T120000Z",
                "2024-09-24T14:22:00",
                "2024-09-24T16:13:00",
                "EDITED EVENT"
            ),
            row(
                "20240925T120000Z",
                "2024-09-26T14:22:00",
                "2024-09-26T16:13:00",
                "EDITED EVENT"
            ),
        ]
    );
    // The governed instances' records carry their moved times.
    let sep17 = &x.occurrences[4].record;
    assert_eq!(
        sep17.get("start"),
        Some(&dt("2024-09-17T09:00:00", Some("UTC")))
    );
    assert_eq!(
        sep17.get("end"),
        Some(&dt("2024-09-17T16:00:00", Some("UTC")))
    );

    // The same series as a record: `range` in the overrides' maps, and
    // without it each override governs only its own instance.
    let record = crate::parse(crate::Format::ICalendar, RANGES).unwrap();
    let Some(Value::List(overrides)) = record.get("overrides").cloned() else {
        panic!("overrides")
    };
    let ranges: Vec<Option<&Value>> = overrides
        .iter()
        .map(|o| o.as_map().unwrap().get("range"))
        .collect();
    let ranged = Value::text("THISANDFUTURE");
    assert_eq!(ranges, vec![Some(&ranged), None, Some(&ranged)]);
    assert_eq!(table(&expand(&record, w, 100).unwrap()), table(&x));
    let unranged: Vec<Value> = overrides
        .into_iter()
        .map(|o| {
            let mut map = o.as_map().unwrap().clone();
            map.remove("range");
            Value::Map(map)
        })
        .collect();
    let plain = record.clone().with("overrides", Value::List(unranged));
    let plain = table(&expand(&plain, w, 100).unwrap());
    assert_eq!(plain.len(), 9);
    assert_eq!(plain[4].3, "ORIGINAL EVENT", "09-17 no longer governed");

    // A window sees governed instances where they moved to: the 09-23
    // instance is on 09-24 at 14:22, and nothing is left on 09-23.
    let late = expand_item(
        RANGES,
        window("2024-09-23T00:00:00", "2024-09-24T15:00:00"),
        10,
    )
    .unwrap();
    assert_eq!(keys(&late), vec!["20240923T120000Z"]);
    assert_eq!(starts(&late), vec![utc("2024-09-24T14:22:00")]);
}

#[test]
fn this_and_future_keeps_wall_clock_across_dst() {
    // Weekly Monday 09:00 Berlin; from 03-16 on, an hour later. After the
    // change to summer time (03-29) it is still 10:00 local.
    let item = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n\
BEGIN:VEVENT\r\nUID:w\r\nDTSTAMP:20260101T000000Z\r\n\
DTSTART;TZID=Europe/Berlin:20260302T090000\r\nDTEND;TZID=Europe/Berlin:20260302T093000\r\n\
RRULE:FREQ=WEEKLY;COUNT=6\r\nSUMMARY:Weekly\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:w\r\nDTSTAMP:20260101T000000Z\r\n\
RECURRENCE-ID;TZID=Europe/Berlin;RANGE=THISANDFUTURE:20260316T090000\r\n\
DTSTART;TZID=Europe/Berlin:20260316T100000\r\nDTEND;TZID=Europe/Berlin:20260316T110000\r\n\
SUMMARY:Weekly, later\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let x = expand_item(
        item,
        window("2026-01-01T00:00:00", "2027-01-01T00:00:00"),
        10,
    )
    .unwrap();
    assert_eq!(
        starts(&x),
        vec![
            utc("2026-03-02T08:00:00"),
            utc("2026-03-09T08:00:00"),
            utc("2026-03-16T09:00:00"),
            utc("2026-03-23T09:00:00"),
            utc("2026-03-30T08:00:00"),
            utc("2026-04-06T08:00:00"),
        ]
    );
    for o in &x.occurrences[2..] {
        assert_eq!(
            o.end_utc,
            Some(o.start_utc + 3600),
            "an hour long from 03-16"
        );
        let Some(Value::DateTime { local, .. }) = o.record.get("start") else {
            panic!("a date-time")
        };
        assert!(local.ends_with("T10:00:00"), "{local}");
    }
    assert_eq!(keys(&x)[4], "20260330T090000");

    // Cancelled this and future: the series ends before 03-16.
    let cancelled = item.replace("SUMMARY:Weekly, later", "STATUS:CANCELLED");
    let x = expand_item(
        &cancelled,
        window("2026-01-01T00:00:00", "2027-01-01T00:00:00"),
        10,
    )
    .unwrap();
    assert_eq!(keys(&x), vec!["20260302T090000", "20260309T090000"]);
}

#[test]
fn iteration_stops_at_the_limit() {
    let w = window("2026-01-01T00:00:00", "2027-01-01T00:00:00");
    // Every second for ever, or a billion times: ten wanted, a handful of
    // instances computed, and the result says it was cut short.
    for rule in ["FREQ=SECONDLY", "FREQ=SECONDLY;COUNT=1000000000"] {
        let r = event(dt("2026-01-01T00:00:00", Some("UTC")), None, rule);
        let x = expand(&r, w, 10).unwrap();
        assert_eq!(x.occurrences.len(), 10, "{rule}");
        assert!(x.truncated, "{rule}");
        assert_eq!(x.occurrences[9].start_utc, utc("2026-01-01T00:00:09"));
        assert!(x.candidates < 1_000, "{rule}: {} instances", x.candidates);
        // Without a limit the same rule stops at MAX_CANDIDATES.
        let all = expand(&r, w, usize::MAX).unwrap();
        assert!(all.truncated);
        assert!(all.candidates <= 2 * MAX_CANDIDATES);
    }
    // A window in the middle of a secondly rule: iteration starts just
    // before it, not at DTSTART.
    let r = event(
        dt("2026-01-01T00:00:00", Some("Europe/Berlin")),
        None,
        "FREQ=SECONDLY",
    );
    let x = expand(&r, window("2026-06-01T00:00:00", "2026-06-02T00:00:00"), 3).unwrap();
    assert_eq!(
        starts(&x),
        vec![
            utc("2026-06-01T00:00:00"),
            utc("2026-06-01T00:00:01"),
            utc("2026-06-01T00:00:02")
        ]
    );
    assert!(x.truncated);
    assert!(x.candidates < 40_000, "{} instances", x.candidates);
    // A daily rule over ten thousand years: the first five.
    let r = event(dt("0001-01-01T09:00:00", Some("UTC")), None, "FREQ=DAILY");
    let x = expand(&r, window("0001-01-01T00:00:00", "9999-12-31T00:00:00"), 5).unwrap();
    assert_eq!(x.occurrences.len(), 5);
    assert!(x.truncated);
    assert!(x.candidates < 1_000, "{} instances", x.candidates);
    // Exactly `limit` occurrences: not truncated.
    let r = event(
        dt("2026-01-01T09:00:00", Some("UTC")),
        None,
        "FREQ=DAILY;COUNT=5",
    );
    let x = expand(&r, w, 5).unwrap();
    assert_eq!(x.occurrences.len(), 5);
    assert!(!x.truncated);
}
