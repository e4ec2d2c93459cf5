//! Hostile and broken inputs: every one must give a `FormatError` or a
//! record, never a panic.

use super::*;
use tandem_formats::render;
use tandem_record::Kind;

const CARD: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u\r\nN:A;B;;;\r\nFN:B A\r\nitem1.EMAIL;type=pref:a@x\r\nBDAY:1990-01-02\r\nEND:VCARD\r\n";
const EVENT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:e\r\nDTSTART;TZID=Europe/Paris:20240101T100000\r\nRRULE:FREQ=DAILY;COUNT=2\r\nEXDATE:20240102T100000\r\nSUMMARY:x\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:e\r\nRECURRENCE-ID:20240101T100000\r\nSUMMARY:y\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

/// A small deterministic generator, so failures reproduce.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn exercise(text: &str) {
    for format in [Format::VCard, Format::ICalendar] {
        let _ = parse(format, text);
        for change in [
            set("summary", Value::text("s")),
            set("full_name", Value::text("f")),
            set("start", dt("2024-01-01T10:00:00", Some("America/New_York"))),
            unset("overrides"),
            set("all_day", Value::Bool(true)),
            set(
                "emails",
                Value::List(vec![Value::map([("value", Value::text("z@x"))])]),
            ),
        ] {
            if let Ok(out) = patch(format, text, std::slice::from_ref(&change)) {
                // Whatever a patch returns must parse again.
                assert!(
                    parse(format, &out).is_ok(),
                    "patch output does not parse:\n{out}"
                );
            }
        }
    }
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for text in [
        "",
        "\0\0\0",
        "hello world",
        ":::;;;===",
        "BEGIN:VCARD",
        "BEGIN:VCARD\r\nEND:VCARD\r\n",
        "BEGIN:VCALENDAR",
        "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
        "END:VCALENDAR\r\nBEGIN:VCALENDAR\r\n",
        "\u{feff}BEGIN:VCARD\r\nUID:\r\nEND:VCARD",
        " \r\n \r\n\t\r\n",
    ] {
        assert!(parse(Format::VCard, text).is_err(), "{text:?}");
        assert!(parse(Format::ICalendar, text).is_err(), "{text:?}");
        exercise(text);
    }
}

#[test]
fn every_truncation_is_survived() {
    for fixture in [CARD, EVENT] {
        for (at, _) in fixture.char_indices() {
            exercise(&fixture[..at]);
        }
    }
}

#[test]
fn random_mutations_are_survived() {
    let pieces = [
        "BEGIN:VEVENT\r\n",
        "END:VEVENT\r\n",
        "BEGIN:VCALENDAR\r\n",
        "END:VCALENDAR\r\n",
        "BEGIN:VCARD\r\n",
        "END:VCARD\r\n",
        "BEGIN:VALARM\r\n",
        "UID:a\r\n",
        "UID:b\r\n",
        "RECURRENCE-ID:20240101\r\n",
        "DTSTART:2024\r\n",
        "DTSTART;VALUE=DATE:20241301\r\n",
        "DTEND;TZID=:x\r\n",
        "RRULE:FREQ=\r\n",
        "EXDATE:,,,\r\n",
        "N:;;;;;;;;\r\n",
        "ADR:;\r\n",
        "BDAY:--\r\n",
        "EMAIL;TYPE=\"\r\n",
        ";:\r\n",
        "\r\n ",
        "\\",
        "=\r\n",
        "ATTENDEE;RSVP=maybe:\r\n",
        "PRIORITY:-99999999999999999999\r\n",
        "X-\u{1F600}:é\r\n",
        "VERSION:3.0\r\n",
        "VERSION:4.0\r\n",
        "item1.",
        "CATEGORIES:,\r\n",
    ];
    let mut noise = Noise(0x5eed_cafe_f00d_beef);
    for _ in 0..400 {
        let mut text = String::new();
        for _ in 0..(noise.next() % 24) {
            text.push_str(noise.pick(&pieces));
        }
        exercise(&text);
        // Splice random pieces into the real fixtures too.
        for fixture in [CARD, EVENT] {
            let lines: Vec<&str> = fixture.split_inclusive("\r\n").collect();
            let at = (noise.next() % lines.len() as u64) as usize;
            let mut mutated: String = lines[..at].concat();
            mutated.push_str(noise.pick(&pieces));
            mutated.push_str(&lines[at..].concat());
            exercise(&mutated);
        }
    }
}

#[test]
fn deep_nesting_and_huge_values() {
    let deep = format!(
        "BEGIN:VCALENDAR\r\n{}BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n{}END:VCALENDAR\r\n",
        "BEGIN:X-NEST\r\n".repeat(5000),
        "END:X-NEST\r\n".repeat(5000)
    );
    exercise(&deep);
    let huge = format!(
        "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:h\r\nFN:x\r\nNOTE:{}\r\nEND:VCARD\r\n",
        "a".repeat(1 << 20)
    );
    let r = parse(Format::VCard, &huge).unwrap();
    assert_eq!(
        r.get("note").and_then(Value::as_text).map(str::len),
        Some(1 << 20)
    );
    exercise(&huge);
}

#[test]
fn render_refuses_unmapped_fields() {
    let r = Record::new(Kind::Contact, "c").with("custom.x", Value::text("y"));
    assert_eq!(
        render(Format::VCard, &r).unwrap_err().field.as_deref(),
        Some("custom.x")
    );
    let r = Record::new(Kind::Event, "").with("summary", Value::text("y"));
    assert!(render(Format::ICalendar, &r).is_err());
}
