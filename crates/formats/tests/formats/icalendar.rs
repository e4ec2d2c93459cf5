//! iCalendar: events (with recurrence and overrides) and tasks read,
//! rendered and patched.

use super::*;
use tandem_formats::render;
use tandem_record::Kind;

const SERIES: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//Example Corp//Cal 1.0//EN\r\n\
X-WR-CALNAME:Work\r\n\
BEGIN:VTIMEZONE\r\n\
TZID:Europe/Berlin\r\n\
BEGIN:STANDARD\r\n\
DTSTART:19701025T030000\r\n\
TZOFFSETFROM:+0200\r\n\
TZOFFSETTO:+0100\r\n\
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n\
END:STANDARD\r\n\
BEGIN:DAYLIGHT\r\n\
DTSTART:19700329T020000\r\n\
TZOFFSETFROM:+0100\r\n\
TZOFFSETTO:+0200\r\n\
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n\
END:DAYLIGHT\r\n\
END:VTIMEZONE\r\n\
BEGIN:VEVENT\r\n\
UID:weekly-sync@example.org\r\n\
DTSTAMP:20240101T000000Z\r\n\
LAST-MODIFIED:20240102T100000Z\r\n\
DTSTART;TZID=Europe/Berlin:20240108T100000\r\n\
DTEND;TZID=Europe/Berlin:20240108T110000\r\n\
SUMMARY;LANGUAGE=en:Weekly sync\r\n\
DESCRIPTION:Agenda:\\n1. status\\, blockers\\n2. next steps; and a very long line that \r\n \
 has to be folded by the writer\r\n\
LOCATION:Room 1\r\n\
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10\r\n\
EXDATE;TZID=Europe/Berlin:20240115T100000\r\n\
ORGANIZER;CN=Boss;X-ODD=\"a;b\":mailto:Boss@Example.org\r\n\
ATTENDEE;CN=Ada;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT;RSVP=TRUE;X-NUM=1:mailto:ADA@example.org\r\n\
ATTENDEE;CUTYPE=ROOM;PARTSTAT=NEEDS-ACTION:mailto:room1@example.org\r\n\
STATUS:CONFIRMED\r\n\
CATEGORIES:work,weekly\r\n\
X-MOZ-GENERATION:3\r\n\
X-CUSTOM;X-FLAG;Y=\"q:v\":kept as is\r\n\
BEGIN:VALARM\r\n\
ACTION:DISPLAY\r\n\
TRIGGER:-PT15M\r\n\
DESCRIPTION:Reminder\r\n\
END:VALARM\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
UID:weekly-sync@example.org\r\n\
DTSTAMP:20240101T000000Z\r\n\
RECURRENCE-ID;TZID=Europe/Berlin:20240122T100000\r\n\
DTSTART;TZID=Europe/Berlin:20240122T120000\r\n\
DTEND;TZID=Europe/Berlin:20240122T130000\r\n\
SUMMARY:Weekly sync (moved)\r\n\
X-OVERRIDE-NOTE:one\r\n\
END:VEVENT\r\n\
BEGIN:VEVENT\r\n\
UID:weekly-sync@example.org\r\n\
DTSTAMP:20240101T000000Z\r\n\
RECURRENCE-ID;TZID=Europe/Berlin:20240129T100000\r\n\
DTSTART;TZID=Europe/Berlin:20240129T100000\r\n\
DTEND;TZID=Europe/Berlin:20240129T100000\r\n\
SUMMARY:Weekly sync\r\n\
STATUS:CANCELLED\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

const TASK: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//Example//Tasks//EN\r\n\
BEGIN:VTODO\r\n\
UID:task-1\r\n\
DTSTAMP:20240101T000000Z\r\n\
LAST-MODIFIED:20240103T000000Z\r\n\
SUMMARY:File taxes\r\n\
DESCRIPTION:All of them\r\n\
DTSTART;VALUE=DATE:20240101\r\n\
DUE:20240415T170000Z\r\n\
COMPLETED:20240410T120000Z\r\n\
STATUS:COMPLETED\r\n\
PRIORITY:1\r\n\
PERCENT-COMPLETE:100\r\n\
CATEGORIES:home\r\n\
X-APPLE-SORT-ORDER:42\r\n\
END:VTODO\r\n\
END:VCALENDAR\r\n";

fn berlin(local: &str) -> Value {
    dt(local, Some("Europe/Berlin"))
}

fn attendee(email: &str, cn: &str, partstat: &str, role: &str, rsvp: Option<bool>) -> Value {
    Value::map([
        ("email", Value::text(email)),
        ("cn", Value::text(cn)),
        ("partstat", Value::text(partstat)),
        ("role", Value::text(role)),
        ("rsvp", rsvp.map_or(Value::text(""), Value::Bool)),
    ])
}

fn instance(entries: &[(&str, Value)]) -> Value {
    Value::map(entries.iter().cloned())
}

fn series_record() -> Record {
    Record::new(Kind::Event, "weekly-sync@example.org")
        .with("summary", Value::text("Weekly sync"))
        .with(
            "description",
            Value::text("Agenda:\n1. status, blockers\n2. next steps; and a very long line that has to be folded by the writer"),
        )
        .with("location", Value::text("Room 1"))
        .with("start", berlin("2024-01-08T10:00:00"))
        .with("end", berlin("2024-01-08T11:00:00"))
        .with(
            "recurrence",
            Value::map([
                ("rrule", Value::text("FREQ=WEEKLY;COUNT=10;BYDAY=MO")),
                ("exdate", Value::List(vec![berlin("2024-01-15T10:00:00")])),
            ]),
        )
        .with(
            "overrides",
            Value::List(vec![
                instance(&[
                    ("recurrence_id", berlin("2024-01-22T10:00:00")),
                    ("start", berlin("2024-01-22T12:00:00")),
                    ("end", berlin("2024-01-22T13:00:00")),
                    ("summary", Value::text("Weekly sync (moved)")),
                ]),
                instance(&[
                    ("recurrence_id", berlin("2024-01-29T10:00:00")),
                    ("start", berlin("2024-01-29T10:00:00")),
                    ("end", berlin("2024-01-29T10:00:00")),
                    ("summary", Value::text("Weekly sync")),
                    ("status", Value::text("CANCELLED")),
                ]),
            ]),
        )
        .with(
            "attendees",
            Value::List(vec![
                attendee("ada@example.org", "Ada", "ACCEPTED", "REQ-PARTICIPANT", Some(true)),
                attendee("room1@example.org", "", "NEEDS-ACTION", "", None),
            ]),
        )
        .with("organizer", Value::text("boss@example.org"))
        .with("status", Value::text("CONFIRMED"))
        .with("categories", texts(&["work", "weekly"]))
}

#[test]
fn a_series_with_overrides_is_one_record() {
    let r = parse(Format::ICalendar, SERIES).unwrap();
    assert_eq!(r.kind, Kind::Event);
    assert_eq!(r.modified, Some(1_704_189_600));
    let expected = series_record();
    assert!(
        r.same_content(&expected),
        "differs in {:?}:\n{r:#?}",
        r.changed_fields(&expected)
    );
    assert_eq!(
        r.get("overrides")
            .and_then(Value::as_list)
            .map(<[Value]>::len),
        Some(2)
    );
}

#[test]
fn patching_the_summary_keeps_everything_else() {
    let text = patched(
        Format::ICalendar,
        SERIES,
        &[set("summary", Value::text("Sync"))],
    );
    assert_eq!(
        lost_lines(SERIES, &text),
        vec!["SUMMARY;LANGUAGE=en:Weekly sync"]
    );
    assert!(text.contains("SUMMARY;LANGUAGE=en:Sync\r\n"), "{text}");
    // Both overrides, the alarm, the time zone and the X- lines are untouched.
    assert!(text.contains("SUMMARY:Weekly sync (moved)\r\nX-OVERRIDE-NOTE:one\r\n"));
    assert!(text.contains("RECURRENCE-ID;TZID=Europe/Berlin:20240129T100000\r\n"));
    assert!(text.contains("X-CUSTOM;X-FLAG;Y=\"q:v\":kept as is\r\n"));
    assert!(text.contains("BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\n"));
    assert_eq!(
        text.len(),
        SERIES.len() - "Weekly sync".len() + "Sync".len()
    );
    let back = parse(Format::ICalendar, &text).unwrap();
    assert_eq!(
        back.get("overrides"),
        parse(Format::ICalendar, SERIES).unwrap().get("overrides")
    );
}

#[test]
fn patches_every_event_field() {
    let cases: Vec<(FieldChange, &[&str])> = vec![
        (
            set("summary", Value::text("New; title, with\nnewline")),
            &["SUMMARY"],
        ),
        (set("description", Value::text("short")), &["DESCRIPTION"]),
        (set("location", Value::text("Room 2")), &["LOCATION"]),
        (set("start", berlin("2024-01-08T09:00:00")), &["DTSTART"]),
        (
            set("start", dt("2024-01-08T08:00:00", Some("UTC"))),
            &["DTSTART"],
        ),
        (set("start", dt("2024-01-08T08:00:00", None)), &["DTSTART"]),
        (set("end", berlin("2024-01-08T12:00:00")), &["DTEND"]),
        (
            set(
                "recurrence",
                Value::map([
                    (
                        "rrule",
                        Value::text("FREQ=DAILY;UNTIL=20240301T000000Z;INTERVAL=2"),
                    ),
                    ("exdate", Value::List(vec![berlin("2024-01-15T10:00:00")])),
                ]),
            ),
            &["RRULE"],
        ),
        (
            set(
                "recurrence",
                Value::map([
                    ("rrule", Value::text("FREQ=WEEKLY;COUNT=10;BYDAY=MO")),
                    (
                        "exdate",
                        Value::List(vec![
                            berlin("2024-01-15T10:00:00"),
                            berlin("2024-02-05T10:00:00"),
                        ]),
                    ),
                    ("rdate", Value::List(vec![Value::Date("2024-03-01".into())])),
                ]),
            ),
            &[],
        ),
        (
            set(
                "attendees",
                Value::List(vec![
                    attendee(
                        "ada@example.org",
                        "Ada",
                        "DECLINED",
                        "REQ-PARTICIPANT",
                        Some(true),
                    ),
                    attendee("room1@example.org", "", "NEEDS-ACTION", "", None),
                    attendee(
                        "grace@example.org",
                        "Grace",
                        "NEEDS-ACTION",
                        "OPT-PARTICIPANT",
                        Some(false),
                    ),
                ]),
            ),
            &["ATTENDEE"],
        ),
        (
            set("organizer", Value::text("chief@example.org")),
            &["ORGANIZER"],
        ),
        (set("status", Value::text("TENTATIVE")), &["STATUS"]),
        (set("categories", texts(&["work"])), &["CATEGORIES"]),
    ];
    for (change, properties) in cases {
        let text = patched(Format::ICalendar, SERIES, std::slice::from_ref(&change));
        for line in lost_lines(SERIES, &text) {
            let name = line.split([';', ':']).next().unwrap_or_default();
            assert!(
                properties.contains(&name),
                "patching {} lost unrelated line {line:?}:\n{text}",
                change.field
            );
        }
        assert!(text.contains("X-OVERRIDE-NOTE:one\r\n"));
    }
}

#[test]
fn removes_every_event_field() {
    for field in Kind::Event.fields() {
        let text = patched(Format::ICalendar, SERIES, &[unset(field)]);
        assert!(text.contains("X-MOZ-GENERATION:3\r\n"), "{text}");
    }
    let text = patched(Format::ICalendar, SERIES, &[unset("overrides")]);
    assert!(!text.contains("RECURRENCE-ID"), "{text}");
    let text = patched(Format::ICalendar, SERIES, &[unset("recurrence")]);
    assert!(
        !text.contains("RRULE:FREQ=WEEKLY") && !text.contains("EXDATE"),
        "{text}"
    );
}

#[test]
fn overrides_are_patched_one_by_one() {
    let original = parse(Format::ICalendar, SERIES).unwrap();
    let overrides = original
        .get("overrides")
        .and_then(Value::as_list)
        .unwrap()
        .to_vec();

    // Change the first override's summary only.
    let mut first = overrides[0].as_map().unwrap().clone();
    first.insert("summary".into(), Value::text("Moved again"));
    let changed = Value::List(vec![Value::Map(first), overrides[1].clone()]);
    let text = patched(Format::ICalendar, SERIES, &[set("overrides", changed)]);
    assert_eq!(
        lost_lines(SERIES, &text),
        vec!["SUMMARY:Weekly sync (moved)"]
    );
    assert!(
        text.contains("SUMMARY:Moved again\r\nX-OVERRIDE-NOTE:one\r\n"),
        "{text}"
    );

    // Drop the second, add a third.
    let third = instance(&[
        ("recurrence_id", berlin("2024-02-05T10:00:00")),
        ("start", berlin("2024-02-05T15:00:00")),
        ("end", berlin("2024-02-05T16:00:00")),
        ("location", Value::text("Cafe")),
    ]);
    let changed = Value::List(vec![overrides[0].clone(), third]);
    let text = patched(Format::ICalendar, SERIES, &[set("overrides", changed)]);
    assert!(!text.contains("20240129T100000"), "{text}");
    assert!(
        text.contains("RECURRENCE-ID;TZID=Europe/Berlin:20240205T100000\r\n"),
        "{text}"
    );
    assert!(text.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
    assert_eq!(text.matches("BEGIN:VEVENT").count(), 3);
}

#[test]
fn master_patches_never_touch_overrides() {
    let changes = [
        set("summary", Value::text("Renamed")),
        set("start", berlin("2024-01-08T09:00:00")),
        set("location", Value::text("Elsewhere")),
    ];
    let text = patched(Format::ICalendar, SERIES, &changes);
    let tail = |t: &str| t[t.find("RECURRENCE-ID").unwrap_or(0)..].to_string();
    assert_eq!(tail(&text), tail(SERIES));
}

#[test]
fn all_day_events() {
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:d\r\nDTSTAMP:20240101T000000Z\r\nDTSTART;VALUE=DATE:20240301\r\nDTEND;VALUE=DATE:20240302\r\nSUMMARY:Holiday\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let r = parse(Format::ICalendar, ics).unwrap();
    assert_eq!(r.get("all_day"), Some(&Value::Bool(true)));
    assert_eq!(r.get("start"), Some(&Value::Date("2024-03-01".into())));
    assert_eq!(r.get("end"), Some(&Value::Date("2024-03-02".into())));
    let text = patched(
        Format::ICalendar,
        ics,
        &[set("end", Value::Date("2024-03-04".into()))],
    );
    assert!(text.contains("DTEND;VALUE=DATE:20240304\r\n"), "{text}");

    // Turning all-day off moves both ends to midnight, floating.
    let text = patch(Format::ICalendar, ics, &[unset("all_day")]).unwrap();
    let back = parse(Format::ICalendar, &text).unwrap();
    assert_eq!(back.get("all_day"), None);
    assert_eq!(back.get("start"), Some(&dt("2024-03-01T00:00:00", None)));
    assert_eq!(back.get("end"), Some(&dt("2024-03-02T00:00:00", None)));

    // And on again from a timed series: the dates of start and end stay.
    let text = patch(
        Format::ICalendar,
        SERIES,
        &[set("all_day", Value::Bool(true))],
    )
    .unwrap();
    let back = parse(Format::ICalendar, &text).unwrap();
    assert_eq!(back.get("all_day"), Some(&Value::Bool(true)));
    assert_eq!(back.get("start"), Some(&Value::Date("2024-01-08".into())));
    assert!(text.contains("DTSTART;VALUE=DATE:20240108\r\n"), "{text}");
    assert!(text.contains("DTEND;VALUE=DATE:20240109\r\n"), "{text}");
}

#[test]
fn duration_events_have_no_end() {
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:dur\r\nDTSTAMP:20240101T000000Z\r\nDTSTART:20240301T100000Z\r\nDURATION:PT1H30M\r\nSUMMARY:Talk\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let r = parse(Format::ICalendar, ics).unwrap();
    assert_eq!(r.get("end"), None);
    let text = patched(
        Format::ICalendar,
        ics,
        &[set("summary", Value::text("Keynote"))],
    );
    assert!(text.contains("DURATION:PT1H30M\r\n"));
    let text = patched(
        Format::ICalendar,
        ics,
        &[set("end", dt("2024-03-01T12:00:00", Some("UTC")))],
    );
    assert!(!text.contains("DURATION"), "{text}");
    assert!(text.contains("DTEND:20240301T120000Z\r\n"), "{text}");
}

#[test]
fn new_time_zones_get_a_vtimezone() {
    let text = patched(
        Format::ICalendar,
        SERIES,
        &[set(
            "end",
            dt("2024-01-08T05:00:00", Some("America/New_York")),
        )],
    );
    assert!(
        text.contains("BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\n"),
        "{text}"
    );
    assert_eq!(text.matches("TZID:Europe/Berlin\r\n").count(), 1);
    let vtimezone = text.find("TZID:America/New_York").unwrap_or(usize::MAX);
    assert!(vtimezone < text.find("BEGIN:VEVENT").unwrap_or(0));
}

#[test]
fn reads_and_patches_every_task_field() {
    let r = parse(Format::ICalendar, TASK).unwrap();
    let expected = Record::new(Kind::Task, "task-1")
        .with("summary", Value::text("File taxes"))
        .with("description", Value::text("All of them"))
        .with("start", Value::Date("2024-01-01".into()))
        .with("due", dt("2024-04-15T17:00:00", Some("UTC")))
        .with("completed", dt("2024-04-10T12:00:00", Some("UTC")))
        .with("status", Value::text("COMPLETED"))
        .with("priority", Value::Integer(1))
        .with("percent_complete", Value::Integer(100))
        .with("categories", texts(&["home"]));
    assert!(
        r.same_content(&expected),
        "differs in {:?}",
        r.changed_fields(&expected)
    );
    assert_eq!(r.modified, Some(1_704_240_000));

    let cases: Vec<(FieldChange, &str)> = vec![
        (set("summary", Value::text("File all taxes")), "SUMMARY"),
        (
            set("description", Value::text("Federal, state")),
            "DESCRIPTION",
        ),
        (set("start", dt("2024-01-02T09:00:00", None)), "DTSTART"),
        (set("due", Value::Date("2024-04-15".into())), "DUE"),
        (
            set("completed", dt("2024-04-11T08:00:00", Some("UTC"))),
            "COMPLETED",
        ),
        (set("status", Value::text("in-process")), "STATUS"),
        (set("priority", Value::Integer(5)), "PRIORITY"),
        (
            set("percent_complete", Value::Integer(40)),
            "PERCENT-COMPLETE",
        ),
        (set("categories", texts(&["home", "money"])), "CATEGORIES"),
    ];
    for (change, property) in cases {
        let text = patch(Format::ICalendar, TASK, std::slice::from_ref(&change)).unwrap();
        let lost = lost_lines(TASK, &text);
        assert!(
            lost.iter().all(|l| l.starts_with(property)),
            "{} lost {lost:?}",
            change.field
        );
        assert!(text.contains("X-APPLE-SORT-ORDER:42\r\n"));
        let mut expected = r.clone();
        expected.apply(std::slice::from_ref(&change));
        if change.field == "status" {
            expected.set("status", Value::text("IN-PROCESS"));
        }
        assert_same(&expected, &parse(Format::ICalendar, &text).unwrap(), &text);
    }
    for field in Kind::Task.fields() {
        patched(Format::ICalendar, TASK, &[unset(field)]);
    }
}

#[test]
fn render_then_parse_is_identity() {
    let mut event = series_record();
    event.modified = Some(1_704_189_600);
    let text = render(Format::ICalendar, &event).unwrap();
    assert!(
        text.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Tandem//EN\r\n"),
        "{text}"
    );
    assert!(
        text.contains("BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"),
        "{text}"
    );
    assert!(text.contains("DTSTAMP:"), "{text}");
    assert_same(&event, &parse(Format::ICalendar, &text).unwrap(), &text);

    let all_day = Record::new(Kind::Event, "holiday")
        .with("summary", Value::text("Holiday"))
        .with("start", Value::Date("2024-12-25".into()))
        .with("end", Value::Date("2024-12-26".into()))
        .with("all_day", Value::Bool(true));
    let text = render(Format::ICalendar, &all_day).unwrap();
    assert_same(&all_day, &parse(Format::ICalendar, &text).unwrap(), &text);

    let task = parse(Format::ICalendar, TASK).unwrap();
    let text = render(Format::ICalendar, &task).unwrap();
    assert!(text.contains("BEGIN:VTODO\r\n"), "{text}");
    assert_same(&task, &parse(Format::ICalendar, &text).unwrap(), &text);
}

#[test]
fn equivalent_spellings_are_not_changes() {
    let changes = [
        set("organizer", Value::text("MAILTO:Boss@Example.org")),
        set("status", Value::text("confirmed")),
        set(
            "recurrence",
            Value::map([
                ("rrule", Value::text("FREQ=WEEKLY;BYDAY=MO;COUNT=10")),
                ("exdate", Value::List(vec![berlin("2024-01-15T10:00:00")])),
            ]),
        ),
    ];
    assert_eq!(patch(Format::ICalendar, SERIES, &changes).unwrap(), SERIES);
}

#[test]
fn wrong_values_name_their_field() {
    for (change, field) in [
        (set("summary", Value::Bool(true)), "summary"),
        (set("start", Value::text("tomorrow")), "start"),
        (
            set("start", dt("2024-01-08T10:00:00", Some("+02:00"))),
            "start",
        ),
        (
            set(
                "recurrence",
                Value::map([("rrule", Value::text("EVERY=day"))]),
            ),
            "recurrence",
        ),
        (
            set(
                "recurrence",
                Value::map([("rrule", Value::text("FREQ=DAILY\r\nX:1"))]),
            ),
            "recurrence",
        ),
        (
            set(
                "attendees",
                Value::List(vec![Value::map([("cn", Value::text("x"))])]),
            ),
            "attendees",
        ),
        (
            set(
                "overrides",
                Value::List(vec![Value::map([("summary", Value::text("x"))])]),
            ),
            "overrides",
        ),
        (set("all_day", Value::text("yes")), "all_day"),
        (set("due", Value::Date("2024-01-01".into())), "due"),
        (set("emails", Value::List(vec![])), "emails"),
    ] {
        let err = patch(Format::ICalendar, SERIES, &[change]).unwrap_err();
        assert_eq!(err.field.as_deref(), Some(field), "{err}");
    }
    let err = patch(
        Format::ICalendar,
        TASK,
        &[set("priority", Value::Integer(12))],
    )
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("priority"));
    assert!(render(Format::ICalendar, &Record::new(Kind::Contact, "c")).is_err());
}

#[test]
fn item_level_errors() {
    let cases = [
        ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "UID"),
        ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:b\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "several UIDs"),
        ("BEGIN:VCALENDAR\r\nBEGIN:VJOURNAL\r\nUID:a\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n", "no VEVENT or VTODO"),
        ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\nBEGIN:VTODO\r\nUID:a\r\nEND:VTODO\r\nEND:VCALENDAR\r\n", "both"),
        ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "master"),
        ("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:x\r\nEND:VCARD\r\n", "vCard"),
        ("BEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\n", "VCALENDAR"),
        ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20241340T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", "DTSTART"),
    ];
    for (text, needle) in cases {
        let err = parse(Format::ICalendar, text).unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
}

#[test]
fn orphan_overrides_parse_but_master_fields_cannot_be_patched() {
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:o\r\nDTSTAMP:20240101T000000Z\r\nRECURRENCE-ID:20240301T100000Z\r\nDTSTART:20240301T110000Z\r\nSUMMARY:Just this one\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let r = parse(Format::ICalendar, ics).unwrap();
    assert_eq!(r.get("summary"), None);
    assert_eq!(
        r.get("overrides")
            .and_then(Value::as_list)
            .map(<[Value]>::len),
        Some(1)
    );
    let err = patch(Format::ICalendar, ics, &[set("summary", Value::text("x"))]).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("summary"));
}

const OUTLOOK: &str = "BEGIN:VCALENDAR\r\n\
METHOD:PUBLISH\r\n\
PRODID:Microsoft Exchange Server 2010\r\n\
VERSION:2.0\r\n\
BEGIN:VTIMEZONE\r\n\
TZID:W. Europe Standard Time\r\n\
BEGIN:STANDARD\r\n\
DTSTART:16010101T030000\r\n\
TZOFFSETFROM:+0200\r\n\
TZOFFSETTO:+0100\r\n\
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\n\
END:STANDARD\r\n\
BEGIN:DAYLIGHT\r\n\
DTSTART:16010101T020000\r\n\
TZOFFSETFROM:+0100\r\n\
TZOFFSETTO:+0200\r\n\
RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r\n\
END:DAYLIGHT\r\n\
END:VTIMEZONE\r\n\
BEGIN:VEVENT\r\n\
ORGANIZER;CN=Boss:mailto:boss@example.org\r\n\
ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=Ada Lovelace:mailto:ada@example.org\r\n\
ATTENDEE;ROLE=OPT-PARTICIPANT;PARTSTAT=TENTATIVE;RSVP=FALSE;CN=\"Babbage, Charles\":mailto:cb@example.org\r\n\
RRULE:FREQ=WEEKLY;UNTIL=20261026T080000Z;INTERVAL=1;BYDAY=MO;WKST=MO\r\n\
SUMMARY;LANGUAGE=en-US:Planning\r\n\
DTSTART;TZID=W. Europe Standard Time:20260316T090000\r\n\
DTEND;TZID=W. Europe Standard Time:20260316T093000\r\n\
UID:040000008200E00074C5B7101A82E00800000000\r\n\
DTSTAMP:20260301T120000Z\r\n\
X-MICROSOFT-CDO-BUSYSTATUS:BUSY\r\n\
BEGIN:VALARM\r\n\
DESCRIPTION:REMINDER\r\n\
TRIGGER;RELATED=START:-PT15M\r\n\
ACTION:DISPLAY\r\n\
END:VALARM\r\n\
END:VEVENT\r\n\
END:VCALENDAR\r\n";

#[test]
fn windows_zone_names_are_kept_verbatim() {
    let r = parse(Format::ICalendar, OUTLOOK).unwrap();
    assert_eq!(
        r.get("start"),
        Some(&dt("2026-03-16T09:00:00", Some("W. Europe Standard Time")))
    );
    // Moving the series by an hour keeps the zone name, the VTIMEZONE and
    // every other line as written.
    let text = patched(
        Format::ICalendar,
        OUTLOOK,
        &[
            set(
                "start",
                dt("2026-03-16T10:00:00", Some("W. Europe Standard Time")),
            ),
            set(
                "end",
                dt("2026-03-16T10:30:00", Some("W. Europe Standard Time")),
            ),
        ],
    );
    assert_eq!(
        lost_lines(OUTLOOK, &text),
        vec![
            "DTSTART;TZID=W. Europe Standard Time:20260316T090000",
            "DTEND;TZID=W. Europe Standard Time:20260316T093000",
        ]
    );
    assert!(
        text.contains("DTSTART;TZID=W. Europe Standard Time:20260316T100000\r\n"),
        "{text}"
    );
    assert_eq!(text.matches("BEGIN:VTIMEZONE").count(), 1);
}

#[test]
fn alarms_and_attendee_parameters_survive_other_patches() {
    let alarm = "BEGIN:VALARM\r\nDESCRIPTION:REMINDER\r\nTRIGGER;RELATED=START:-PT15M\r\nACTION:DISPLAY\r\nEND:VALARM\r\n";
    let attendees = "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=Ada Lovelace:mailto:ada@example.org\r\n\
ATTENDEE;ROLE=OPT-PARTICIPANT;PARTSTAT=TENTATIVE;RSVP=FALSE;CN=\"Babbage, Charles\":mailto:cb@example.org\r\n";
    for change in [
        set("summary", Value::text("Planning (new room)")),
        set("location", Value::text("Room 2")),
        set(
            "start",
            dt("2026-03-16T08:00:00", Some("W. Europe Standard Time")),
        ),
        set(
            "recurrence",
            Value::map([("rrule", Value::text("FREQ=WEEKLY;COUNT=4;BYDAY=MO"))]),
        ),
        set("status", Value::text("CONFIRMED")),
    ] {
        let text = patched(Format::ICalendar, OUTLOOK, std::slice::from_ref(&change));
        assert!(text.contains(alarm), "{}: {text}", change.field);
        assert!(text.contains(attendees), "{}: {text}", change.field);
        assert!(text.contains("X-MICROSOFT-CDO-BUSYSTATUS:BUSY\r\n"));
    }
    let r = parse(Format::ICalendar, OUTLOOK).unwrap();
    assert_eq!(
        r.get("attendees"),
        Some(&Value::List(vec![
            attendee(
                "ada@example.org",
                "Ada Lovelace",
                "NEEDS-ACTION",
                "REQ-PARTICIPANT",
                Some(true)
            ),
            attendee(
                "cb@example.org",
                "Babbage, Charles",
                "TENTATIVE",
                "OPT-PARTICIPANT",
                Some(false)
            ),
        ]))
    );
}

const SUBTASK: &str = "BEGIN:VCALENDAR\r\n\
VERSION:2.0\r\n\
PRODID:-//Example//Tasks//EN\r\n\
BEGIN:VTODO\r\n\
UID:task-2\r\n\
DTSTAMP:20260101T000000Z\r\n\
SUMMARY:Collect receipts\r\n\
RELATED-TO;RELTYPE=PARENT:task-1\r\n\
RELATED-TO:project-7\r\n\
DUE;VALUE=DATE:20260410\r\n\
STATUS:NEEDS-ACTION\r\n\
PERCENT-COMPLETE:20\r\n\
END:VTODO\r\n\
END:VCALENDAR\r\n";

#[test]
fn tasks_keep_their_relations() {
    let r = parse(Format::ICalendar, SUBTASK).unwrap();
    assert_eq!(r.get("related_to"), Some(&texts(&["task-1", "project-7"])));
    // Dropping one relation keeps the other line, parameters and all.
    let text = patched(
        Format::ICalendar,
        SUBTASK,
        &[set("related_to", texts(&["task-1", "task-9"]))],
    );
    assert_eq!(lost_lines(SUBTASK, &text), vec!["RELATED-TO:project-7"]);
    assert!(
        text.contains("RELATED-TO;RELTYPE=PARENT:task-1\r\nRELATED-TO:task-9\r\n"),
        "{text}"
    );
    let text = patched(Format::ICalendar, SUBTASK, &[unset("related_to")]);
    assert!(!text.contains("RELATED-TO"), "{text}");
    // New tasks get their relations written.
    let rendered = render(
        Format::ICalendar,
        &Record::new(Kind::Task, "t3").with("related_to", texts(&["task-1"])),
    )
    .unwrap();
    assert_eq!(
        parse(Format::ICalendar, &rendered)
            .unwrap()
            .get("related_to"),
        Some(&texts(&["task-1"]))
    );
}

#[test]
fn a_task_completed_on_one_side_is_completed_on_the_other() {
    // Side A's copy is completed; side B still has it open.
    let done = [
        set("status", Value::text("COMPLETED")),
        set("completed", dt("2026-04-09T16:45:00", Some("UTC"))),
        set("percent_complete", Value::Integer(100)),
    ];
    let text = patched(Format::ICalendar, SUBTASK, &done);
    assert!(text.contains("STATUS:COMPLETED\r\n"), "{text}");
    assert!(text.contains("COMPLETED:20260409T164500Z\r\n"), "{text}");
    assert!(text.contains("PERCENT-COMPLETE:100\r\n"), "{text}");
    assert!(text.contains("RELATED-TO;RELTYPE=PARENT:task-1\r\n"));
    let back = parse(Format::ICalendar, &text).unwrap();
    assert_eq!(back.get("status"), Some(&Value::text("COMPLETED")));
    assert_eq!(
        back.get("completed"),
        Some(&dt("2026-04-09T16:45:00", Some("UTC")))
    );
    assert_eq!(back.get("percent_complete"), Some(&Value::Integer(100)));
    // Reopening removes the completion again.
    let reopened = patched(
        Format::ICalendar,
        &text,
        &[
            set("status", Value::text("NEEDS-ACTION")),
            unset("completed"),
        ],
    );
    assert!(!reopened.contains("COMPLETED:"), "{reopened}");
}

#[test]
fn a_whole_calendar_splits_into_one_item_per_series() {
    let export = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n\
BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n\
TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n\
BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:STANDARD\r\nDTSTART:19701101T020000\r\n\
TZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n\
BEGIN:VEVENT\r\nUID:a\r\nDTSTART;TZID=Europe/Berlin:20260105T100000\r\nRRULE:FREQ=WEEKLY\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20260105T100000Z\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:a\r\nRECURRENCE-ID;TZID=Europe/Berlin:20260112T100000\r\n\
DTSTART;TZID=Europe/Berlin:20260112T110000\r\nEND:VEVENT\r\n\
BEGIN:VJOURNAL\r\nUID:j\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n";
    let items = tandem_formats::split_calendar(export).unwrap();
    assert_eq!(items.len(), 2);
    let a = parse(Format::ICalendar, &items[0]).unwrap();
    assert_eq!(a.uid, "a");
    assert_eq!(
        a.get("overrides")
            .and_then(Value::as_list)
            .map(<[Value]>::len),
        Some(1)
    );
    assert!(items[0].contains("TZID:Europe/Berlin"));
    assert!(!items[0].contains("America/New_York"));
    assert_eq!(parse(Format::ICalendar, &items[1]).unwrap().uid, "b");
    assert!(!items[1].contains("BEGIN:VTIMEZONE"));
    assert!(!items.iter().any(|i| i.contains("VJOURNAL")));
}

/// SERIES with its first override made `RANGE=THISANDFUTURE`.
fn ranged_series() -> String {
    SERIES.replace(
        "RECURRENCE-ID;TZID=Europe/Berlin:20240122T100000\r\n",
        "RECURRENCE-ID;TZID=Europe/Berlin;RANGE=THISANDFUTURE:20240122T100000\r\n",
    )
}

/// The `range` of each override of `record`, in order.
fn ranges(record: &Record) -> Vec<Option<Value>> {
    record
        .get("overrides")
        .and_then(Value::as_list)
        .unwrap_or_default()
        .iter()
        .map(|o| o.as_map().and_then(|m| m.get("range")).cloned())
        .collect()
}

/// Start (UTC seconds) and summary of every occurrence of a series item.
fn occurrences_of(text: &str) -> Vec<(i64, String)> {
    use tandem_formats::recurrence::{expand_item, Window};
    let window = Window {
        from: 1_704_067_200, // 2024-01-01
        to: 1_735_689_600,   // 2025-01-01
    };
    expand_item(text, window, 100)
        .unwrap()
        .occurrences
        .into_iter()
        .map(|o| {
            let summary = o.record.get("summary").map(|v| v.to_string());
            (o.start_utc, summary.unwrap_or_default())
        })
        .collect()
}

#[test]
fn a_this_and_future_override_keeps_its_range() {
    let text = ranged_series();
    let ranged = Some(Value::text("THISANDFUTURE"));
    let record = parse(Format::ICalendar, &text).unwrap();
    assert_eq!(ranges(&record), vec![ranged.clone(), None]);
    // The record alone means what the text means.
    let from_record = tandem_formats::recurrence::expand(
        &record,
        tandem_formats::recurrence::Window {
            from: 1_704_067_200,
            to: 1_735_689_600,
        },
        100,
    )
    .unwrap();
    let starts: Vec<i64> = from_record
        .occurrences
        .iter()
        .map(|o| o.start_utc)
        .collect();
    assert_eq!(
        starts,
        occurrences_of(&text)
            .into_iter()
            .map(|(s, _)| s)
            .collect::<Vec<_>>()
    );

    // Rendered from the record: the parameter is written.
    let rendered = render(Format::ICalendar, &record).unwrap();
    assert!(
        rendered
            .contains("RECURRENCE-ID;TZID=Europe/Berlin;RANGE=THISANDFUTURE:20240122T100000\r\n"),
        "{rendered}"
    );
    assert_eq!(
        ranges(&parse(Format::ICalendar, &rendered).unwrap()),
        vec![ranged.clone(), None]
    );

    // Patches of the master or of the ranged override leave the line alone.
    let overrides = record.get("overrides").and_then(Value::as_list).unwrap();
    let mut first = overrides[0].as_map().unwrap().clone();
    first.insert("summary".into(), Value::text("Moved for good"));
    let changes = [
        set("summary", Value::text("Sync")),
        set(
            "overrides",
            Value::List(vec![Value::Map(first), overrides[1].clone()]),
        ),
    ];
    let patched_text = patched(Format::ICalendar, &text, &changes);
    assert_eq!(
        lost_lines(&text, &patched_text),
        vec![
            "SUMMARY;LANGUAGE=en:Weekly sync",
            "SUMMARY:Weekly sync (moved)"
        ]
    );

    // Dropping the range rewrites only that RECURRENCE-ID, and the later
    // occurrences go back to where the rule puts them.
    let mut first = overrides[0].as_map().unwrap().clone();
    first.remove("range");
    let unranged = patched(
        Format::ICalendar,
        &text,
        &[set(
            "overrides",
            Value::List(vec![Value::Map(first), overrides[1].clone()]),
        )],
    );
    assert_eq!(unranged, SERIES);
    assert_ne!(occurrences_of(&unranged), occurrences_of(&text));
}

#[test]
fn a_range_added_by_a_patch_is_written() {
    let record = parse(Format::ICalendar, SERIES).unwrap();
    assert_eq!(ranges(&record), vec![None, None]);
    let overrides = record.get("overrides").and_then(Value::as_list).unwrap();

    // An existing override becomes THISANDFUTURE (spelled in lower case):
    // its RECURRENCE-ID gains the parameter, nothing else changes.
    let mut first = overrides[0].as_map().unwrap().clone();
    first.insert("range".into(), Value::text("thisandfuture"));
    let text = patch(
        Format::ICalendar,
        SERIES,
        &[set(
            "overrides",
            Value::List(vec![Value::Map(first), overrides[1].clone()]),
        )],
    )
    .unwrap();
    assert_eq!(text, ranged_series());

    // A new override with a range: its component carries the parameter,
    // and the occurrences after it move with it.
    let third = instance(&[
        ("recurrence_id", berlin("2024-02-05T10:00:00")),
        ("range", Value::text("THISANDFUTURE")),
        ("start", berlin("2024-02-05T15:00:00")),
        ("end", berlin("2024-02-05T16:00:00")),
        ("summary", Value::text("Afternoons from now on")),
    ]);
    let with_third = Value::List(vec![overrides[0].clone(), overrides[1].clone(), third]);
    let text = patched(Format::ICalendar, SERIES, &[set("overrides", with_third)]);
    assert!(
        text.contains("RECURRENCE-ID;TZID=Europe/Berlin;RANGE=THISANDFUTURE:20240205T100000\r\n"),
        "{text}"
    );
    assert_eq!(
        ranges(&parse(Format::ICalendar, &text).unwrap()),
        vec![None, None, Some(Value::text("THISANDFUTURE"))]
    );
    // From 02-05 on (winter time, UTC+1): Mondays 15:00 Berlin, 14:00Z.
    let feb5 = 1_707_091_200; // 2024-02-05T00:00:00Z
    let later: Vec<(i64, String)> = occurrences_of(&text)
        .into_iter()
        .filter(|(start, _)| *start >= feb5)
        .collect();
    let expected: Vec<(i64, String)> = (0..6)
        .map(|week| {
            let start = feb5 + week * 7 * 86_400 + 14 * 3600;
            (start, "Afternoons from now on".to_string())
        })
        .collect();
    assert_eq!(later, expected);

    // A range other than THISANDFUTURE is refused, naming the field.
    let mut first = overrides[0].as_map().unwrap().clone();
    first.insert("range".into(), Value::text("THISANDPRIOR"));
    let err = patch(
        Format::ICalendar,
        SERIES,
        &[set(
            "overrides",
            Value::List(vec![Value::Map(first), overrides[1].clone()]),
        )],
    )
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("overrides"), "{err}");
}
