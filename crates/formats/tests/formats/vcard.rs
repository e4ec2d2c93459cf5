//! vCard: every contact field read, rendered and patched, on 3.0 and 4.0 cards.

use super::*;
use tandem_formats::render;
use tandem_record::Kind;

const APPLE_V3: &str = "BEGIN:VCARD\r\n\
VERSION:3.0\r\n\
PRODID:-//Apple Inc.//iPhone OS 17.0//EN\r\n\
N:Lovelace;Ada;Augusta,King;Lady;\r\n\
FN:Ada Lovelace\r\n\
NICKNAME:Countess,Ada\r\n\
ORG:Analytical Engines;Research;Lab 2\r\n\
TITLE:Programmer\r\n\
item1.EMAIL;type=INTERNET;type=HOME;type=pref:ada@example.org\r\n\
item1.X-ABLabel:_$!<Other>!$_\r\n\
EMAIL;TYPE=work:ada@work.example\r\n\
TEL;type=CELL;type=VOICE;type=pref:+44 20 1234\r\n\
item2.ADR;type=HOME;type=pref:;;12 St James\\, Square;London;;SW1;UK\r\n\
URL:https://ada.example.org\r\n\
BDAY;VALUE=date:1815-12-10\r\n\
NOTE:First line\\nsecond\\, with comma\r\n\
CATEGORIES:math,poetry\r\n\
X-CUSTOM;X-PARAM=\"a:b\";x-odd=1:hello\r\n\
X-SOCIALPROFILE;type=twitter;x-user=ada:https://twitter.com/ada\r\n\
REV:2024-01-02T03:04:05Z\r\n\
UID:ada-1\r\n\
END:VCARD\r\n";

const V4: &str = "BEGIN:VCARD\r\n\
VERSION:4.0\r\n\
UID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1\r\n\
FN;LANGUAGE=en:Grace Hopper\r\n\
N:Hopper;Grace;Brewster;Rear Admiral;\r\n\
EMAIL;TYPE=work;PREF=1:grace@navy.example\r\n\
TEL;VALUE=uri;TYPE=\"voice,cell\":tel:+1-555-0100\r\n\
BDAY:--1209\r\n\
X-GROUP-MEMBER;X-WEIRD=\"quoted;value\":urn:uuid:1\r\n\
REV:20240102T030405Z\r\n\
END:VCARD\r\n";

fn email(value: &str, kind: &str) -> Value {
    Value::map([("value", Value::text(value)), ("type", Value::text(kind))])
}

fn full_contact() -> Record {
    Record::new(Kind::Contact, "c-1")
        .with("full_name", Value::text("Ada Lovelace"))
        .with("given_name", Value::text("Ada"))
        .with("family_name", Value::text("Lovelace"))
        .with("middle_name", Value::text("Augusta"))
        .with("prefix", Value::text("Lady"))
        .with("suffix", Value::text("Countess of Lovelace"))
        .with("nickname", Value::text("Ada"))
        .with("org", Value::text("Analytical Engines"))
        .with("department", Value::text("Research"))
        .with("title", Value::text("Programmer"))
        .with(
            "emails",
            Value::List(vec![
                email("ada@example.org", "home"),
                email("ada@work.example", ""),
            ]),
        )
        .with(
            "phones",
            Value::List(vec![email("+44 20 1234", "cell,voice")]),
        )
        .with(
            "addresses",
            Value::List(vec![Value::map([
                ("street", Value::text("12 St James, Square")),
                ("locality", Value::text("London")),
                ("postal_code", Value::text("SW1")),
                ("country", Value::text("UK")),
                ("type", Value::text("home")),
            ])]),
        )
        .with("urls", texts(&["https://ada.example.org"]))
        .with("birthday", Value::Date("1815-12-10".into()))
        .with(
            "note",
            Value::text("First line\nsecond, with comma; and semicolon"),
        )
        .with("categories", texts(&["math", "poetry"]))
}

#[test]
fn reads_every_field_of_a_3_0_card() {
    let r = parse(Format::VCard, APPLE_V3).unwrap();
    assert_eq!(r.kind, Kind::Contact);
    assert_eq!(r.uid, "ada-1");
    assert_eq!(r.modified, Some(1_704_164_645));
    let expected = Record::new(Kind::Contact, "ada-1")
        .with("full_name", Value::text("Ada Lovelace"))
        .with("family_name", Value::text("Lovelace"))
        .with("given_name", Value::text("Ada"))
        .with("middle_name", Value::text("Augusta,King"))
        .with("prefix", Value::text("Lady"))
        .with("nickname", Value::text("Countess,Ada"))
        .with("org", Value::text("Analytical Engines"))
        .with("department", Value::text("Research"))
        .with("title", Value::text("Programmer"))
        .with(
            "emails",
            Value::List(vec![
                email("ada@work.example", "work"),
                email("ada@example.org", "home"),
            ]),
        )
        .with(
            "phones",
            Value::List(vec![email("+44 20 1234", "cell,voice")]),
        )
        .with(
            "addresses",
            Value::List(vec![Value::map([
                ("street", Value::text("12 St James, Square")),
                ("locality", Value::text("London")),
                ("postal_code", Value::text("SW1")),
                ("country", Value::text("UK")),
                ("type", Value::text("home")),
            ])]),
        )
        .with("urls", texts(&["https://ada.example.org"]))
        .with("birthday", Value::Date("1815-12-10".into()))
        .with("note", Value::text("First line\nsecond, with comma"))
        .with("categories", texts(&["poetry", "math"]));
    assert!(
        r.same_content(&expected),
        "differs in {:?}",
        r.changed_fields(&expected)
    );
}

#[test]
fn reads_a_4_0_card() {
    let r = parse(Format::VCard, V4).unwrap();
    assert_eq!(r.uid, "urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1");
    assert_eq!(r.get("full_name"), Some(&Value::text("Grace Hopper")));
    assert_eq!(r.get("middle_name"), Some(&Value::text("Brewster")));
    assert_eq!(r.get("suffix"), None);
    assert_eq!(
        r.get("emails"),
        Some(&Value::List(vec![email("grace@navy.example", "work")]))
    );
    assert_eq!(
        r.get("phones"),
        Some(&Value::List(vec![email("+1-555-0100", "cell,voice")]))
    );
    assert_eq!(r.get("birthday"), Some(&Value::Date("--12-09".into())));
    assert_eq!(r.modified, Some(1_704_164_645));
}

/// A new value for every field, on both versions; each patch must read back
/// as the original plus the change and may only lose the lines of the
/// properties that hold that field.
#[test]
fn patches_every_field_on_both_versions() {
    let cases: Vec<(FieldChange, &[&str])> = vec![
        (set("full_name", Value::text("Augusta Ada King")), &["FN"]),
        (set("given_name", Value::text("Augusta")), &["N"]),
        (set("family_name", Value::text("King")), &["N"]),
        (set("middle_name", Value::text("Byron")), &["N"]),
        (set("prefix", Value::text("Countess")), &["N"]),
        (set("suffix", Value::text("FRS")), &["N"]),
        (
            set("nickname", Value::text("Enchantress of Numbers")),
            &["NICKNAME"],
        ),
        (set("org", Value::text("Babbage & Co")), &["ORG"]),
        (set("department", Value::text("Poetical Science")), &["ORG"]),
        (set("title", Value::text("Analyst")), &["TITLE"]),
        (
            set(
                "emails",
                Value::List(vec![
                    email("ada@example.org", "home"),
                    email("new@x.example", "work"),
                ]),
            ),
            &["EMAIL"],
        ),
        (
            set("phones", Value::List(vec![email("+44 20 9999", "home")])),
            &["TEL"],
        ),
        (
            set(
                "addresses",
                Value::List(vec![Value::map([
                    ("po_box", Value::text("PO 1")),
                    ("extended", Value::text("Flat 2")),
                    ("street", Value::text("1 Main St")),
                    ("locality", Value::text("Oxford")),
                    ("region", Value::text("Oxon")),
                    ("postal_code", Value::text("OX1")),
                    ("country", Value::text("UK")),
                    ("type", Value::text("work")),
                ])]),
            ),
            &["ADR"],
        ),
        (
            set("urls", texts(&["https://a.example", "https://b.example"])),
            &["URL"],
        ),
        (set("birthday", Value::Date("1816-01-01".into())), &["BDAY"]),
        (set("birthday", Value::Date("--12-10".into())), &["BDAY"]),
        (
            set("birthday", dt("1815-12-10T08:30:00", Some("UTC"))),
            &["BDAY"],
        ),
        (
            set(
                "note",
                Value::text("Line one\nLine two; with, punctuation\\"),
            ),
            &["NOTE"],
        ),
        (
            set("categories", texts(&["science", "math"])),
            &["CATEGORIES"],
        ),
    ];
    for original in [APPLE_V3, V4] {
        for (change, properties) in &cases {
            let text = patched(Format::VCard, original, std::slice::from_ref(change));
            for line in lost_lines(original, &text) {
                let name = line.split([';', ':']).next().unwrap_or_default();
                let name = name
                    .rsplit('.')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                assert!(
                    properties.contains(&name.as_str()),
                    "patching {} lost unrelated line {line:?}:\n{text}",
                    change.field
                );
            }
        }
    }
}

#[test]
fn removes_every_field_on_both_versions() {
    let contact = full_contact();
    for original in [APPLE_V3, V4] {
        for field in Kind::Contact.fields() {
            let text = patched(Format::VCard, original, &[unset(field)]);
            assert!(text.contains("UID:"), "{text}");
        }
        // Removing everything still leaves a valid card with FN (and N on 3.0).
        let all: Vec<FieldChange> = contact.fields.keys().map(|f| unset(f)).collect();
        let text = patched(Format::VCard, original, &all);
        assert!(text.contains("\r\nFN"), "{text}");
        if original == APPLE_V3 {
            assert!(text.contains("\r\nN:;;;;\r\n"), "{text}");
        }
    }
}

#[test]
fn unrelated_lines_survive_byte_for_byte() {
    let text = patched(
        Format::VCard,
        APPLE_V3,
        &[set("title", Value::text("Analyst"))],
    );
    assert!(text.contains("X-CUSTOM;X-PARAM=\"a:b\";x-odd=1:hello\r\n"));
    assert!(text.contains("X-SOCIALPROFILE;type=twitter;x-user=ada:https://twitter.com/ada\r\n"));
    assert!(text.contains("item1.EMAIL;type=INTERNET;type=HOME;type=pref:ada@example.org\r\n"));
    assert!(text.contains("item1.X-ABLabel:_$!<Other>!$_\r\n"));
    assert_eq!(lost_lines(APPLE_V3, &text), vec!["TITLE:Programmer"]);
    assert_eq!(text.lines().count(), APPLE_V3.lines().count());

    let text = patched(Format::VCard, V4, &[set("note", Value::text("hi"))]);
    assert!(text.contains("X-GROUP-MEMBER;X-WEIRD=\"quoted;value\":urn:uuid:1\r\n"));
    assert!(lost_lines(V4, &text).is_empty());
}

#[test]
fn unchanged_list_elements_keep_their_lines() {
    let mut r = parse(Format::VCard, APPLE_V3).unwrap();
    let mut emails = r.get("emails").and_then(Value::as_list).unwrap().to_vec();
    emails.push(email("third@x.example", "other"));
    r.set("emails", Value::List(emails.clone()));
    let text = patched(
        Format::VCard,
        APPLE_V3,
        &[set("emails", Value::List(emails))],
    );
    assert!(lost_lines(APPLE_V3, &text).is_empty(), "{text}");
    assert!(
        text.contains("EMAIL;TYPE=OTHER:third@x.example\r\n")
            || text.contains("EMAIL;TYPE=other:third@x.example\r\n"),
        "{text}"
    );

    // A changed type rewrites that one line but keeps its group and `pref`.
    let emails = Value::List(vec![
        email("ada@example.org", "work"),
        email("ada@work.example", "work"),
    ]);
    let text = patched(Format::VCard, APPLE_V3, &[set("emails", emails)]);
    assert!(
        text.contains("item1.EMAIL;TYPE=INTERNET,pref,WORK:ada@example.org\r\n"),
        "{text}"
    );
    assert!(
        text.contains("EMAIL;TYPE=work:ada@work.example\r\n"),
        "{text}"
    );
}

#[test]
fn equivalent_spellings_are_not_changes() {
    let emails = Value::List(vec![
        email("ada@example.org", "HOME,pref,Internet"),
        email("ada@work.example", "Work"),
    ]);
    let phones = Value::List(vec![email("tel:+44 20 1234", "VOICE,cell")]);
    let changes = [set("emails", emails), set("phones", phones)];
    assert_eq!(patch(Format::VCard, APPLE_V3, &changes).unwrap(), APPLE_V3);
}

#[test]
fn n_patch_keeps_the_other_components() {
    let text = patched(
        Format::VCard,
        APPLE_V3,
        &[set("given_name", Value::text("Augusta"))],
    );
    assert!(
        text.contains("N:Lovelace;Augusta;Augusta,King;Lady;\r\n"),
        "{text}"
    );
    let text = patched(
        Format::VCard,
        APPLE_V3,
        &[set("department", Value::text("Engines"))],
    );
    assert!(
        text.contains("ORG:Analytical Engines;Engines;Lab 2\r\n"),
        "{text}"
    );
}

#[test]
fn version_3_stays_version_3() {
    let text = patched(
        Format::VCard,
        APPLE_V3,
        &[
            set("birthday", Value::Date("--12-10".into())),
            set("full_name", Value::text("Ada")),
        ],
    );
    assert!(text.contains("VERSION:3.0\r\n"));
    assert!(!text.contains("VERSION:4.0"));
    assert!(text.contains("BDAY:--1210\r\n"), "{text}");
    let text = patched(
        Format::VCard,
        V4,
        &[set("birthday", Value::Date("1906-12-09".into()))],
    );
    assert!(text.contains("BDAY:19061209\r\n"), "{text}");
}

#[test]
fn apple_year_less_birthdays() {
    let card = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:b\r\nFN:B\r\nBDAY;X-APPLE-OMIT-YEAR=1604:1604-03-05\r\nEND:VCARD\r\n";
    let r = parse(Format::VCard, card).unwrap();
    assert_eq!(r.get("birthday"), Some(&Value::Date("--03-05".into())));
    let text = patched(
        Format::VCard,
        card,
        &[set("birthday", Value::Date("--04-06".into()))],
    );
    assert!(
        text.contains("BDAY;X-APPLE-OMIT-YEAR=1604:1604-04-06\r\n"),
        "{text}"
    );
    let text = patched(
        Format::VCard,
        card,
        &[set("birthday", Value::Date("1990-04-06".into()))],
    );
    assert!(!text.contains("X-APPLE-OMIT-YEAR"), "{text}");
}

#[test]
fn unreadable_birthdays_are_left_alone() {
    // calcard cannot read this 3.0 spelling; the contact still syncs and the
    // line survives patches of other fields.
    let card = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:b\r\nFN:B\r\nBDAY:--12-10\r\nEND:VCARD\r\n";
    let r = parse(Format::VCard, card).unwrap();
    assert_eq!(r.get("birthday"), None);
    let text = patched(Format::VCard, card, &[set("note", Value::text("n"))]);
    assert!(text.contains("BDAY:--12-10\r\n"));
}

#[test]
fn lf_only_cards_stay_lf_only() {
    let card = APPLE_V3.replace("\r\n", "\n");
    let text = patched(
        Format::VCard,
        &card,
        &[set("title", Value::text("Analyst"))],
    );
    assert!(!text.contains('\r'));
    assert!(text.contains("\nTITLE:Analyst\n"));
}

#[test]
fn no_op_patch_returns_the_original() {
    let r = parse(Format::VCard, APPLE_V3).unwrap();
    let changes: Vec<FieldChange> = r.fields.iter().map(|(k, v)| set(k, v.clone())).collect();
    assert_eq!(patch(Format::VCard, APPLE_V3, &changes).unwrap(), APPLE_V3);
}

#[test]
fn render_then_parse_is_identity() {
    let mut r = full_contact();
    r.modified = Some(1_704_164_645);
    let text = render(Format::VCard, &r).unwrap();
    assert!(text.contains("\r\nREV:20240102T030405Z\r\n"), "{text}");
    assert!(text.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n"), "{text}");
    let back = parse(Format::VCard, &text).unwrap();
    assert_same(&r, &back, &text);

    let minimal = Record::new(Kind::Contact, "m").with("full_name", Value::text("M"));
    let text = render(Format::VCard, &minimal).unwrap();
    assert_same(&minimal, &parse(Format::VCard, &text).unwrap(), &text);
}

#[test]
fn render_derives_a_full_name() {
    let r = Record::new(Kind::Contact, "d")
        .with("given_name", Value::text("Grace"))
        .with("family_name", Value::text("Hopper"));
    let text = render(Format::VCard, &r).unwrap();
    assert!(text.contains("\r\nFN:Grace Hopper\r\n"), "{text}");
    let back = parse(Format::VCard, &text).unwrap();
    assert_eq!(back.get("full_name"), Some(&Value::text("Grace Hopper")));
    assert_eq!(back.get("family_name"), Some(&Value::text("Hopper")));
}

#[test]
fn wrong_values_name_their_field() {
    for (change, field) in [
        (set("title", Value::Integer(3)), "title"),
        (set("emails", Value::text("a@x")), "emails"),
        (
            set("emails", Value::List(vec![Value::text("a@x")])),
            "emails",
        ),
        (
            set("birthday", Value::Date("1815-13-01".into())),
            "birthday",
        ),
        (set("summary", Value::text("x")), "summary"),
        (
            set("custom.shoe_size", Value::Integer(9)),
            "custom.shoe_size",
        ),
    ] {
        let err = patch(Format::VCard, APPLE_V3, &[change]).unwrap_err();
        assert_eq!(err.field.as_deref(), Some(field), "{err}");
    }
    let wrong_kind = Record::new(Kind::Event, "e");
    assert!(render(Format::VCard, &wrong_kind).is_err());
}

#[test]
fn item_level_errors() {
    let no_uid = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:x\r\nEND:VCARD\r\n";
    assert!(parse(Format::VCard, no_uid)
        .unwrap_err()
        .message
        .contains("UID"));
    let two = format!("{APPLE_V3}{V4}");
    let err = parse(Format::VCard, &two).unwrap_err();
    assert!(err.message.contains("ada-1"), "{err}");
    let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    assert!(parse(Format::VCard, ics)
        .unwrap_err()
        .message
        .contains("iCalendar"));
}
