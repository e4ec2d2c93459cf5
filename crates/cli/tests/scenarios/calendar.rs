//! Calendars through the real `tandem` binary: recurring series edited on
//! both sides between syncs (vdir ↔ vdir, vdir ↔ Radicale, vdir ↔
//! Xandikos), attendees, tasks, what Tandem does not map, the `window`
//! filter and the `expand` of series into a CSV table.
//!
//! A series is checked by expanding the synced result with
//! `tandem_formats::recurrence`: every occurrence once, as expected.

use crate::harness::{prop, Run, Scenario};
use std::collections::BTreeSet;
use tandem_formats::recurrence::{self, Window};
use tandem_formats::Format;
use tandem_record::{Record, Value};
use tandem_stores::dav::testing::{Server, ServerKind, USER};
use tandem_stores::dav::Protocol;

const QUIET: &str = "created 0/0, updated 0/0, deleted 0/0";

/// The standup series: weekly on Tuesdays from 2026-12-01, eight times, the
/// third one (12-15) moved an hour later, with an alarm, an X- property
/// and two attendees.
fn standup() -> String {
    ics(&[
        strs(&[
            "BEGIN:VEVENT",
            "UID:standup",
            "DTSTAMP:20261101T000000Z",
            "DTSTART:20261201T090000Z",
            "DTEND:20261201T091500Z",
            "RRULE:FREQ=WEEKLY;COUNT=8",
            "SUMMARY:Standup",
            "X-TANDEM-TEST:keep me",
            "ATTENDEE;CN=Ada;PARTSTAT=ACCEPTED:mailto:ada@example.org",
            "ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION:mailto:bob@example.org",
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            "DESCRIPTION:Standup soon",
            "TRIGGER:-PT10M",
            "END:VALARM",
            "END:VEVENT",
        ]),
        override_of("20261215", "10", "Standup (late)"),
    ])
}

fn strs(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| l.to_string()).collect()
}

/// An override moving the 09:00 occurrence of `day` to `hour` o'clock.
fn override_of(day: &str, hour: &str, summary: &str) -> Vec<String> {
    vec![
        "BEGIN:VEVENT".into(),
        "UID:standup".into(),
        "DTSTAMP:20261101T000000Z".into(),
        format!("RECURRENCE-ID:{day}T090000Z"),
        format!("DTSTART:{day}T{hour}0000Z"),
        format!("DTEND:{day}T{hour}1500Z"),
        format!("SUMMARY:{summary}"),
        "END:VEVENT".into(),
    ]
}

/// A VCALENDAR around the given components.
fn ics(components: &[Vec<String>]) -> String {
    let mut out = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Tandem tests//EN\r\n");
    for lines in components {
        for l in lines {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str("END:VCALENDAR\r\n");
    out
}

/// Unfolded lines of an iCalendar text.
fn lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in text.split('\n') {
        let l = l.trim_end_matches('\r');
        match (l.strip_prefix(' ').or(l.strip_prefix('\t')), out.last_mut()) {
            (Some(rest), Some(last)) => last.push_str(rest),
            _ if l.is_empty() => {}
            _ => out.push(l.to_string()),
        }
    }
    out
}

fn join(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\r\n")).collect()
}

fn name_of(line: &str) -> &str {
    line.split([';', ':']).next().unwrap_or_default()
}

/// Replaces every line named `name` whose text contains `needle`.
fn replace_line(text: &str, name: &str, needle: &str, with: &str) -> String {
    let mut found = false;
    let out: Vec<String> = lines(text)
        .into_iter()
        .map(|l| {
            if name_of(&l).eq_ignore_ascii_case(name) && l.contains(needle) {
                found = true;
                with.to_string()
            } else {
                l
            }
        })
        .collect();
    assert!(found, "no {name} line with {needle:?} in\n{text}");
    join(&out)
}

/// Replaces every line that is exactly `line`.
fn replace_exact(text: &str, line: &str, with: &str) -> String {
    let all = lines(text);
    assert!(all.iter().any(|l| l == line), "no line {line:?} in\n{text}");
    let out: Vec<String> = all
        .into_iter()
        .map(|l| if l == line { with.to_string() } else { l })
        .collect();
    join(&out)
}

/// Inserts `new` before the first line named `before` (or equal to it).
fn insert_before(text: &str, before: &str, new: &[String]) -> String {
    let mut out = lines(text);
    let at = out
        .iter()
        .position(|l| name_of(l).eq_ignore_ascii_case(before) || l == before)
        .unwrap_or_else(|| panic!("no {before} line in\n{text}"));
    for (i, l) in new.iter().enumerate() {
        out.insert(at + i, l.clone());
    }
    join(&out)
}

/// Adds override components before `END:VCALENDAR`.
fn add_override(text: &str, component: Vec<String>) -> String {
    insert_before(text, "END:VCALENDAR", &component)
}

fn parse(text: &str) -> Record {
    tandem_formats::parse(Format::ICalendar, text).expect("an iCalendar item")
}

/// The occurrences of a series between 2026-11-01 and 2027-06-01, as
/// (key, start, summary); asserts that no occurrence is there twice.
fn occurrences(text: &str) -> Vec<(String, i64, String)> {
    let window = Window {
        from: 1_793_491_200, // 2026-11-01
        to: 1_811_808_000,   // 2027-06-01
    };
    let expansion = recurrence::expand(&parse(text), window, 1000).expect("expands");
    assert!(!expansion.truncated);
    let out: Vec<(String, i64, String)> = expansion
        .occurrences
        .into_iter()
        .map(|o| {
            let summary = o
                .record
                .get("summary")
                .map(|v| v.to_string())
                .unwrap_or_default();
            (o.key, o.start_utc, summary)
        })
        .collect();
    let keys: BTreeSet<&String> = out.iter().map(|(k, _, _)| k).collect();
    assert_eq!(keys.len(), out.len(), "an occurrence twice: {out:?}");
    out
}

fn keys(text: &str) -> Vec<String> {
    occurrences(text).into_iter().map(|(k, _, _)| k).collect()
}

/// The summary of the occurrence `key`.
fn summary_at(text: &str, key: &str) -> String {
    occurrences(text)
        .into_iter()
        .find(|(k, _, _)| k == key)
        .unwrap_or_else(|| panic!("no occurrence {key}"))
        .2
}

/// One calendar pair `p` under test. Side A is the folder `a`. Side B is
/// the folder `b`, or a CalDAV server: its items are read and edited
/// through a second folder `c` that a pair `q` keeps in step with it.
struct Cal {
    s: Scenario,
    /// The server, when B is one (kept alive for the test).
    server: Option<Server>,
}

impl Cal {
    fn vdir(kind: &str, extra: &str) -> Cal {
        Cal {
            s: Scenario::new(kind, extra),
            server: None,
        }
    }

    /// `None` only when DAV tests are skipped on purpose (see `testing`).
    fn server(which: ServerKind, kind: &str, extra: &str) -> Option<Cal> {
        let server = Server::start(which)?;
        let s = Scenario::new(kind, extra);
        std::fs::create_dir_all(s.dir.path().join("c")).expect("mkdir c");
        let url = server.collection_url(Protocol::CalDav, "cal");
        let text = format!(
            "[stores.a]\ntype = \"vdir\"\npath = \"a\"\n\n[stores.c]\ntype = \"vdir\"\npath = \"c\"\n\n\
             [stores.b]\ntype = \"caldav\"\nurl = \"{url}\"\nusername = \"{USER}\"\npassword_cmd = \"echo test-secret\"\ncreate_collections = true\n\n\
             [[pairs]]\nname = \"p\"\na = \"a\"\nb = \"b\"\nkind = \"{kind}\"\n{extra}\n\n\
             [[pairs]]\nname = \"q\"\na = \"c\"\nb = \"b\"\nkind = \"{kind}\"\n"
        );
        std::fs::write(s.dir.path().join("tandem.toml"), text).expect("write config");
        Some(Cal {
            s,
            server: Some(server),
        })
    }

    /// The folder standing for side B.
    fn b_folder(&self) -> &'static str {
        if self.server.is_some() {
            "c"
        } else {
            "b"
        }
    }

    fn file_of(&self, folder: &str, uid: &str) -> String {
        self.s
            .files(folder)
            .into_iter()
            .find(|f| prop(&self.s.read(folder, f), "UID").as_deref() == Some(uid))
            .unwrap_or_else(|| panic!("no item {uid} in {folder}: {:?}", self.s.files(folder)))
    }

    fn folder(&self, side: &str) -> &'static str {
        match side {
            "a" => "a",
            _ => self.b_folder(),
        }
    }

    /// The text of `uid` on `side` ("a" or "b").
    fn read(&self, side: &str, uid: &str) -> String {
        let folder = self.folder(side);
        self.s.read(folder, &self.file_of(folder, uid))
    }

    /// Edits `uid` on `side`; on a server, the edit is uploaded at once.
    fn edit(&self, side: &str, uid: &str, change: impl FnOnce(&str) -> String) {
        let folder = self.folder(side);
        let file = self.file_of(folder, uid);
        let text = self.s.read(folder, &file);
        self.s.put(folder, &file, &change(&text));
        if side == "b" && self.server.is_some() {
            self.run(&["sync", "q"]);
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        let run = self.s.tandem(args);
        assert_eq!(run.code, 0, "{args:?} failed: {run:?}");
        run
    }

    /// Syncs the pair (and, with a server, brings `c` up to date).
    fn sync(&self) -> Run {
        let run = self.run(&["sync", "p"]);
        if self.server.is_some() {
            self.run(&["sync", "q"]);
        }
        run
    }

    /// Puts `text` on A and syncs it over.
    fn seed(&self, uid: &str, text: &str) {
        self.s.put("a", &format!("{uid}.ics"), text);
        self.sync();
        assert!(self.s.files(self.b_folder()).len() == self.s.files("a").len());
        assert_eq!(
            parse(&self.read("b", uid)).get("summary"),
            parse(text).get("summary")
        );
    }

    /// A rerun changes nothing.
    fn assert_quiet(&self) {
        let run = self.run(&["sync", "p"]);
        assert!(run.stdout.contains(QUIET), "not quiet: {run:?}");
    }

    /// Both sides hold the same series.
    fn assert_same(&self, uid: &str) {
        let (a, b) = (self.read("a", uid), self.read("b", uid));
        assert!(
            parse(&a).same_content(&parse(&b)),
            "sides differ:\n{a}\n---\n{b}"
        );
    }
}

/// Each scenario below, on one setup.
fn on_every_setup(kind: &str, extra: &str, scenario: fn(&Cal)) {
    scenario(&Cal::vdir(kind, extra));
    for which in [ServerKind::Radicale, ServerKind::Xandikos] {
        if let Some(cal) = Cal::server(which, kind, extra) {
            scenario(&cal);
        }
    }
}

/// A moves one occurrence while B renames the series: both.
#[test]
fn move_one_occurrence_while_the_series_is_renamed() {
    on_every_setup("event", "", |cal| {
        cal.seed("standup", &standup());
        cal.edit("a", "standup", |t| {
            add_override(t, override_of("20261222", "11", "Standup"))
        });
        cal.edit("b", "standup", |t| {
            // The master's line only, not the override's.
            replace_exact(t, "SUMMARY:Standup", "SUMMARY:Daily sync")
        });
        cal.sync();
        cal.assert_same("standup");
        let text = cal.read("a", "standup");
        let found = occurrences(&text);
        assert_eq!(found.len(), 8, "{found:?}");
        let dec22 = found
            .iter()
            .find(|(k, _, _)| k == "20261222T090000Z")
            .expect("the moved one");
        assert_eq!(dec22.1, 1_797_937_200, "moved to 11:00 UTC"); // 2026-12-22T11:00Z
        assert_eq!(summary_at(&text, "20261201T090000Z"), "Daily sync");
        assert_eq!(summary_at(&text, "20261215T090000Z"), "Standup (late)");
        // Nothing Tandem does not map was lost on either side.
        for side in ["a", "b"] {
            let text = cal.read(side, "standup");
            for needle in ["BEGIN:VALARM", "TRIGGER:-PT10M", "X-TANDEM-TEST:keep me"] {
                assert!(text.contains(needle), "{side} lost {needle}:\n{text}");
            }
        }
        cal.assert_quiet();
    });
}

/// A moves the late standup while B renames that same occurrence: one
/// override with both edits, never two for one occurrence.
#[test]
fn two_edits_of_one_occurrence() {
    on_every_setup("event", "", |cal| {
        cal.seed("standup", &standup());
        cal.edit("a", "standup", |t| {
            let t = replace_exact(t, "DTSTART:20261215T100000Z", "DTSTART:20261215T110000Z");
            replace_exact(&t, "DTEND:20261215T101500Z", "DTEND:20261215T111500Z")
        });
        cal.edit("b", "standup", |t| {
            replace_line(t, "SUMMARY", "Standup (late)", "SUMMARY:Standup (later)")
        });
        cal.sync();
        cal.assert_same("standup");
        let text = cal.read("b", "standup");
        assert_eq!(
            lines(&text)
                .iter()
                .filter(|l| name_of(l) == "RECURRENCE-ID")
                .count(),
            1,
            "{text}"
        );
        let found = occurrences(&text);
        assert_eq!(found.len(), 8);
        let dec15 = found
            .iter()
            .find(|(k, _, _)| k == "20261215T090000Z")
            .expect("the late one");
        assert_eq!(dec15.1, 1_797_332_400, "moved to 11:00 UTC"); // 2026-12-15T11:00Z
        assert_eq!(dec15.2, "Standup (later)");
        cal.assert_quiet();
    });
}

/// A cancels one occurrence while B edits another: both.
#[test]
fn cancel_one_occurrence_while_another_is_edited() {
    on_every_setup("event", "", |cal| {
        cal.seed("standup", &standup());
        cal.edit("a", "standup", |t| {
            insert_before(t, "SUMMARY", &["EXDATE:20261208T090000Z".to_string()])
        });
        cal.edit("b", "standup", |t| {
            replace_line(
                t,
                "SUMMARY",
                "Standup (late)",
                "SUMMARY:Standup (late, room 2)",
            )
        });
        cal.sync();
        cal.assert_same("standup");
        let text = cal.read("b", "standup");
        let found = keys(&text);
        assert_eq!(found.len(), 7, "{found:?}");
        assert!(!found.contains(&"20261208T090000Z".to_string()));
        assert_eq!(
            summary_at(&text, "20261215T090000Z"),
            "Standup (late, room 2)"
        );
        cal.assert_quiet();
    });
}

/// A shortens the rule while B edits an override: `conflict = "a"` takes
/// A's whole series, no occurrence twice and none orphaned.
#[test]
fn rule_changed_against_an_override_edit_is_settled_whole() {
    on_every_setup("event", "conflict = \"a\"", |cal| {
        cal.seed("standup", &standup());
        cal.edit("a", "standup", |t| {
            replace_line(t, "RRULE", "FREQ", "RRULE:FREQ=WEEKLY;COUNT=3")
        });
        cal.edit("b", "standup", |t| {
            replace_line(t, "SUMMARY", "Standup (late)", "SUMMARY:Standup (B)")
        });
        cal.sync();
        cal.assert_same("standup");
        let text = cal.read("b", "standup");
        assert_eq!(
            keys(&text),
            ["20261201T090000Z", "20261208T090000Z", "20261215T090000Z"]
        );
        assert_eq!(summary_at(&text, "20261215T090000Z"), "Standup (late)");
        cal.assert_quiet();
    });
}

/// Under `manual` the same clash goes to the inbox, both sides untouched;
/// `resolve --keep b` then takes B's whole series.
#[test]
fn rule_changed_against_an_override_edit_under_manual() {
    let cal = Cal::vdir("event", "conflict = \"manual\"");
    cal.seed("standup", &standup());
    cal.edit("a", "standup", |t| {
        replace_line(t, "RRULE", "FREQ", "RRULE:FREQ=WEEKLY;COUNT=3")
    });
    cal.edit("b", "standup", |t| {
        replace_line(t, "SUMMARY", "Standup (late)", "SUMMARY:Standup (B)")
    });
    let (a_before, b_before) = (cal.read("a", "standup"), cal.read("b", "standup"));
    cal.sync();
    assert_eq!(cal.read("a", "standup"), a_before);
    assert_eq!(cal.read("b", "standup"), b_before);
    let listed = cal.run(&["conflicts"]);
    assert!(listed.stdout.contains("standup"), "{listed:?}");
    assert!(listed.stdout.contains("recurrence"), "{listed:?}");
    let id = listed
        .stdout
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())
        .expect("a conflict id")
        .to_string();
    cal.run(&["resolve", &id, "--keep", "b"]);
    cal.assert_same("standup");
    let text = cal.read("a", "standup");
    assert_eq!(keys(&text).len(), 8);
    assert_eq!(summary_at(&text, "20261215T090000Z"), "Standup (B)");
}

/// A accepts for Bob while B renames Bob and invites Cy: all three edits,
/// Bob once.
#[test]
fn attendee_reply_and_new_attendee() {
    on_every_setup("event", "", |cal| {
        cal.seed("standup", &standup());
        cal.edit("a", "standup", |t| {
            replace_line(
                t,
                "ATTENDEE",
                "bob@example.org",
                "ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@example.org",
            )
        });
        cal.edit("b", "standup", |t| {
            let t = replace_line(
                t,
                "ATTENDEE",
                "bob@example.org",
                "ATTENDEE;CN=Bob Baker;PARTSTAT=NEEDS-ACTION:mailto:bob@example.org",
            );
            insert_before(
                &t,
                "ATTENDEE",
                &["ATTENDEE;CN=Cy;PARTSTAT=NEEDS-ACTION:mailto:cy@example.org".to_string()],
            )
        });
        cal.sync();
        cal.assert_same("standup");
        let record = parse(&cal.read("a", "standup"));
        let mut got: Vec<(String, String, String)> = record
            .get("attendees")
            .and_then(Value::as_list)
            .expect("attendees")
            .iter()
            .map(|a| {
                let m = a.as_map().expect("a map");
                (
                    m["email"].to_string(),
                    m["cn"].to_string(),
                    m["partstat"].to_string(),
                )
            })
            .collect();
        got.sort();
        let want = [
            ("ada@example.org", "Ada", "ACCEPTED"),
            ("bob@example.org", "Bob Baker", "ACCEPTED"),
            ("cy@example.org", "Cy", "NEEDS-ACTION"),
        ]
        .map(|(e, c, p)| (e.to_string(), c.to_string(), p.to_string()));
        assert_eq!(got, want);
        cal.assert_quiet();
    });
}

/// A task completed on one side is completed on the other.
#[test]
fn task_completed_on_one_side() {
    on_every_setup("task", "", |cal| {
        let todo = ics(&[strs(&[
            "BEGIN:VTODO",
            "UID:report",
            "DTSTAMP:20261101T000000Z",
            "SUMMARY:Write the report",
            "DUE:20261205T170000Z",
            "STATUS:NEEDS-ACTION",
            "X-TANDEM-TEST:keep me",
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            "DESCRIPTION:Report due",
            "TRIGGER:-PT1H",
            "END:VALARM",
            "END:VTODO",
        ])]);
        cal.seed("report", &todo);
        cal.edit("b", "report", |t| {
            let t = replace_line(t, "STATUS", "NEEDS-ACTION", "STATUS:COMPLETED");
            insert_before(
                &t,
                "END:VTODO",
                &[
                    "COMPLETED:20261203T120000Z".to_string(),
                    "PERCENT-COMPLETE:100".to_string(),
                ],
            )
        });
        cal.sync();
        cal.assert_same("report");
        let text = cal.read("a", "report");
        let record = parse(&text);
        assert_eq!(record.get("status"), Some(&Value::text("COMPLETED")));
        assert!(record.get("completed").is_some(), "{text}");
        assert_eq!(record.get("percent_complete"), Some(&Value::Integer(100)));
        for needle in ["BEGIN:VALARM", "TRIGGER:-PT1H", "X-TANDEM-TEST:keep me"] {
            assert!(text.contains(needle), "lost {needle}:\n{text}");
        }
        cal.assert_quiet();
    });
}

/// `YYYYMMDD` of the day `offset` days from today (UTC).
fn day(offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    jiff::Timestamp::from_second((now / 86_400 + offset) * 86_400)
        .expect("in range")
        .strftime("%Y%m%d")
        .to_string()
}

fn one_off(uid: &str, date: &str) -> String {
    ics(&[vec![
        "BEGIN:VEVENT".into(),
        format!("UID:{uid}"),
        "DTSTAMP:20261101T000000Z".into(),
        format!("DTSTART:{date}T090000Z"),
        format!("DTEND:{date}T100000Z"),
        format!("SUMMARY:{uid}"),
        "END:VEVENT".into(),
    ]])
}

/// `window`: a series with an occurrence inside it takes part whole; a
/// one-off event two years ago is not copied; one next week is.
#[test]
fn window_keeps_series_with_an_occurrence_inside() {
    let window = "window = { past = \"30d\", future = \"365d\" }";
    on_every_setup("event", window, |cal| {
        let s = &cal.s;
        s.put(
            "a",
            "weekly.ics",
            &ics(&[
                strs(&[
                    "BEGIN:VEVENT",
                    "UID:weekly",
                    "DTSTAMP:20240101T000000Z",
                    "DTSTART:20240102T090000Z",
                    "DTEND:20240102T100000Z",
                    "RRULE:FREQ=WEEKLY",
                    "SUMMARY:Weekly since 2024",
                    "END:VEVENT",
                ]),
                strs(&[
                    "BEGIN:VEVENT",
                    "UID:weekly",
                    "DTSTAMP:20240101T000000Z",
                    "RECURRENCE-ID:20240109T090000Z",
                    "DTSTART:20240110T090000Z",
                    "DTEND:20240110T100000Z",
                    "SUMMARY:Moved long ago",
                    "END:VEVENT",
                ]),
            ]),
        );
        s.put("a", "old.ics", &one_off("old", &day(-730)));
        s.put("a", "soon.ics", &one_off("soon", &day(7)));
        let run = cal.sync();
        let folder = cal.b_folder();
        let uids: BTreeSet<String> = s
            .files(folder)
            .iter()
            .map(|f| prop(&s.read(folder, f), "UID").expect("a UID"))
            .collect();
        assert_eq!(
            uids,
            BTreeSet::from(["soon".to_string(), "weekly".to_string()]),
            "{run:?}"
        );
        // The series came whole, its override of an occurrence long past too.
        let weekly = cal.read("b", "weekly");
        assert!(
            lines(&weekly)
                .iter()
                .any(|l| name_of(l) == "RECURRENCE-ID" && l.ends_with(":20240109T090000Z")),
            "{weekly}"
        );
        cal.assert_same("weekly");
        assert!(s.exists("a", "old.ics"), "nothing deleted");
        cal.assert_quiet();
    });
}

/// Europe/Berlin as a VTIMEZONE, the way calendar servers and Apple write it.
fn berlin_vtimezone() -> Vec<String> {
    strs(&[
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Berlin",
        "BEGIN:DAYLIGHT",
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0200",
        "TZNAME:CEST",
        "DTSTART:19700329T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "END:DAYLIGHT",
        "BEGIN:STANDARD",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "TZNAME:CET",
        "DTSTART:19701025T030000",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
        "END:STANDARD",
        "END:VTIMEZONE",
    ])
}

/// The four kinds of time an item can have, as (UID, text).
fn timed_items() -> Vec<(&'static str, String)> {
    // Weekly on Mondays at 09:00 Berlin time across the change to summer
    // time on 2027-03-28.
    let berlin = ics(&[
        berlin_vtimezone(),
        strs(&[
            "BEGIN:VEVENT",
            "UID:berlin",
            "DTSTAMP:20261101T000000Z",
            "DTSTART;TZID=Europe/Berlin:20270315T090000",
            "DTEND;TZID=Europe/Berlin:20270315T093000",
            "RRULE:FREQ=WEEKLY;COUNT=4",
            "SUMMARY:Berlin weekly",
            "END:VEVENT",
        ]),
    ]);
    // Outlook's zone name and its own VTIMEZONE.
    let outlook = ics(&[
        strs(&[
            "BEGIN:VTIMEZONE",
            "TZID:W. Europe Standard Time",
            "BEGIN:STANDARD",
            "DTSTART:16010101T030000",
            "TZOFFSETFROM:+0200",
            "TZOFFSETTO:+0100",
            "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10",
            "END:STANDARD",
            "BEGIN:DAYLIGHT",
            "DTSTART:16010101T020000",
            "TZOFFSETFROM:+0100",
            "TZOFFSETTO:+0200",
            "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3",
            "END:DAYLIGHT",
            "END:VTIMEZONE",
        ]),
        strs(&[
            "BEGIN:VEVENT",
            "UID:outlook",
            "DTSTAMP:20261101T000000Z",
            "DTSTART;TZID=W. Europe Standard Time:20270115T140000",
            "DTEND;TZID=W. Europe Standard Time:20270115T150000",
            "SUMMARY:Outlook meeting",
            "END:VEVENT",
        ]),
    ]);
    let floating = ics(&[strs(&[
        "BEGIN:VEVENT",
        "UID:floating",
        "DTSTAMP:20261101T000000Z",
        "DTSTART:20270201T090000",
        "DTEND:20270201T100000",
        "SUMMARY:Floating breakfast",
        "END:VEVENT",
    ])]);
    let all_day = ics(&[strs(&[
        "BEGIN:VEVENT",
        "UID:allday",
        "DTSTAMP:20261101T000000Z",
        "DTSTART;VALUE=DATE:20270301",
        "DTEND;VALUE=DATE:20270302",
        "SUMMARY:Holiday",
        "END:VEVENT",
    ])]);
    vec![
        ("berlin", berlin),
        ("outlook", outlook),
        ("floating", floating),
        ("allday", all_day),
    ]
}

/// Start and end of an item as its record reads them (wall clock and zone).
fn times(text: &str) -> (Option<Value>, Option<Value>) {
    let record = parse(text);
    (record.get("start").cloned(), record.get("end").cloned())
}

/// (UTC start, wall-clock start) of each occurrence, read from the item's
/// own text (its VTIMEZONE included).
fn wall_clock(text: &str) -> Vec<(i64, String)> {
    let window = Window {
        from: 1_793_491_200, // 2026-11-01
        to: 1_811_808_000,   // 2027-06-01
    };
    recurrence::expand_item(text, window, 100)
        .expect("expands")
        .occurrences
        .into_iter()
        .map(|o| match o.record.get("start") {
            Some(Value::DateTime { local, .. }) => (o.start_utc, local.clone()),
            other => (o.start_utc, format!("{other:?}")),
        })
        .collect()
}

/// Zoned (IANA with VTIMEZONE, across a DST change; Outlook's Windows
/// name), floating and all-day items go A → B, are renamed on B and come
/// back: no wall-clock time moves, on either side.
#[test]
fn time_zones_survive_a_round_trip() {
    on_every_setup("event", "", |cal| {
        let items = timed_items();
        for (uid, text) in &items {
            cal.s.put("a", &format!("{uid}.ics"), text);
        }
        cal.sync();
        for (uid, text) in &items {
            assert_eq!(times(&cal.read("b", uid)), times(text), "{uid} on B");
            cal.edit("b", uid, |t| {
                let summary = prop(t, "SUMMARY").expect("a SUMMARY");
                replace_line(
                    t,
                    "SUMMARY",
                    &summary,
                    &format!("SUMMARY:{summary} (edited on B)"),
                )
            });
        }
        cal.sync();
        for (uid, text) in &items {
            for side in ["a", "b"] {
                let now = cal.read(side, uid);
                assert_eq!(times(&now), times(text), "{uid} on {side}:\n{now}");
                assert!(
                    prop(&now, "SUMMARY").is_some_and(|s| s.ends_with("(edited on B)")),
                    "{uid} on {side}:\n{now}"
                );
            }
            cal.assert_same(uid);
        }
        // 09:00 in Berlin every week: 08:00 UTC in winter, 07:00 in summer.
        let week = 7 * 86_400;
        let march15 = 1_805_097_600; // 2027-03-15T08:00:00Z
        for side in ["a", "b"] {
            assert_eq!(
                wall_clock(&cal.read(side, "berlin")),
                vec![
                    (march15, "2027-03-15T09:00:00".to_string()),
                    (march15 + week, "2027-03-22T09:00:00".to_string()),
                    (march15 + 2 * week - 3600, "2027-03-29T09:00:00".to_string()),
                    (march15 + 3 * week - 3600, "2027-04-05T09:00:00".to_string()),
                ],
                "berlin on {side}"
            );
            assert_eq!(
                wall_clock(&cal.read(side, "outlook")),
                vec![(1_800_018_000, "2027-01-15T14:00:00".to_string())], // 13:00Z
                "outlook on {side}"
            );
            assert_eq!(
                wall_clock(&cal.read(side, "floating")),
                vec![(1_801_472_400, "2027-02-01T09:00:00".to_string())], // read as UTC
                "floating on {side}"
            );
        }
        cal.assert_quiet();
    });
}

/// A weekly standup at 09:00 UTC from 2026-12-01, five times, no overrides.
fn weekly_five() -> Vec<String> {
    strs(&[
        "BEGIN:VEVENT",
        "UID:standup",
        "DTSTAMP:20261101T000000Z",
        "DTSTART:20261201T090000Z",
        "DTEND:20261201T091500Z",
        "RRULE:FREQ=WEEKLY;COUNT=5",
        "SUMMARY:Standup",
        "END:VEVENT",
    ])
}

/// An override `RECURRENCE-ID;RANGE=THISANDFUTURE` moving the 12-15
/// occurrence, and every later one, to 10:00.
fn later_from_dec15() -> Vec<String> {
    let mut later = override_of("20261215", "10", "Standup (later from now on)");
    later[3] = "RECURRENCE-ID;RANGE=THISANDFUTURE:20261215T090000Z".into();
    later
}

/// The occurrences of [`weekly_five`] with [`later_from_dec15`], as
/// (key, start, summary): from 12-15 on, at 10:00 and named so.
fn expected_later_from_dec15() -> Vec<(String, i64, String)> {
    [
        ("20261201T090000Z", 1_796_115_600, "Standup"),
        ("20261208T090000Z", 1_796_720_400, "Standup"),
        (
            "20261215T090000Z",
            1_797_328_800,
            "Standup (later from now on)",
        ),
        (
            "20261222T090000Z",
            1_797_933_600,
            "Standup (later from now on)",
        ),
        (
            "20261229T090000Z",
            1_798_538_400,
            "Standup (later from now on)",
        ),
    ]
    .map(|(k, t, s)| (k.to_string(), t, s.to_string()))
    .to_vec()
}

/// Every RECURRENCE-ID of the item says `RANGE=THISANDFUTURE` (and there
/// is one).
fn ranged(text: &str) -> bool {
    let ids: Vec<String> = lines(text)
        .into_iter()
        .filter(|l| name_of(l) == "RECURRENCE-ID")
        .collect();
    !ids.is_empty()
        && ids
            .iter()
            .all(|l| l.to_ascii_uppercase().contains("RANGE=THISANDFUTURE"))
}

/// The occurrences of an item read from its own text, as (key, start,
/// summary), between 2026-11-01 and 2027-06-01.
fn expanded(text: &str) -> Vec<(String, i64, String)> {
    let window = Window {
        from: 1_793_491_200,
        to: 1_811_808_000,
    };
    recurrence::expand_item(text, window, 100)
        .expect("expands")
        .occurrences
        .into_iter()
        .map(|o| {
            let summary = o.record.get("summary").map(|v| v.to_string());
            (o.key, o.start_utc, summary.unwrap_or_default())
        })
        .collect()
}

/// An override with `RECURRENCE-ID;RANGE=THISANDFUTURE` travels with its
/// parameter: the later occurrences move on both sides alike, an edit of
/// the series on B keeps it, and reruns are quiet.
#[test]
fn this_and_future_override_keeps_its_range() {
    on_every_setup("event", "", |cal| {
        cal.seed("standup", &ics(&[weekly_five(), later_from_dec15()]));
        let expected = expected_later_from_dec15();
        let on_b = cal.read("b", "standup");
        assert!(ranged(&on_b), "{on_b}");
        assert_eq!(expanded(&on_b), expected);
        cal.assert_quiet();

        cal.edit("b", "standup", |t| {
            replace_exact(t, "SUMMARY:Standup", "SUMMARY:Daily sync")
        });
        cal.sync();
        cal.assert_same("standup");
        for side in ["a", "b"] {
            let now = cal.read(side, "standup");
            assert!(ranged(&now), "{side}:\n{now}");
            let found = expanded(&now);
            assert_eq!(found.len(), 5);
            assert_eq!(found[0].2, "Daily sync");
            assert_eq!(found[4], expected[4], "{side}");
        }
        cal.assert_quiet();
    });
}

/// A adds a THISANDFUTURE override to a series already synced: B's copy
/// gets the override with its range, so there too every later occurrence
/// moves, the record reads the same on both sides, and reruns are quiet.
#[test]
fn an_added_this_and_future_override_arrives_with_its_range() {
    on_every_setup("event", "", |cal| {
        cal.seed("standup", &ics(&[weekly_five()]));
        cal.assert_quiet();
        cal.edit("a", "standup", |t| add_override(t, later_from_dec15()));
        let run = cal.sync();
        assert!(run.stdout.contains("updated 0/1"), "{run:?}");
        cal.assert_same("standup");
        let expected = expected_later_from_dec15();
        for side in ["a", "b"] {
            let now = cal.read(side, "standup");
            assert!(ranged(&now), "{side}:\n{now}");
            assert_eq!(expanded(&now), expected, "{side}:\n{now}");
            assert_eq!(occurrences(&now), expected, "{side}, from the record");
        }
        cal.assert_quiet();
    });
}

/// CSV rows of the events table, as (id, title, start), sorted (no cell
/// here holds a comma or a quote).
fn rows(s: &Scenario) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(s.dir.path().join("events.csv")).expect("events.csv");
    let mut lines = text.lines().filter(|l| !l.is_empty());
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column in {header:?}"))
    };
    let (id, title, start) = (column("id"), column("title"), column("start"));
    let mut out: Vec<(String, String, String)> = lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (
                cells[id].to_string(),
                cells[title].to_string(),
                cells[start].to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// `expand`: a weekly series (one occurrence moved, one cancelled) becomes
/// one CSV row per occurrence; edits of the series move the rows.
#[test]
fn expand_a_series_into_a_csv_table() {
    let s = Scenario::new("event", "");
    let start = day(1);
    let third = day(15);
    let text = "[stores.a]\ntype = \"vdir\"\npath = \"a\"\n\n[stores.sheet]\ntype = \"csv\"\npath = \"events.csv\"\nid = \"id\"\ncolumns = { summary = \"title\", start = \"start\" }\n\n\
         [[pairs]]\nname = \"p\"\na = \"a\"\nb = \"sheet\"\nkind = \"event\"\nexpand = { future = \"90d\" }\nmax_delete = \"100%\"\n";
    std::fs::write(s.dir.path().join("tandem.toml"), text).expect("write config");
    let series = |summary: &str, exdates: &[String]| {
        let mut master = vec![
            "BEGIN:VEVENT".to_string(),
            "UID:gym".into(),
            "DTSTAMP:20261101T000000Z".into(),
            format!("DTSTART:{start}T070000Z"),
            format!("DTEND:{start}T080000Z"),
            "RRULE:FREQ=WEEKLY;COUNT=6".into(),
            format!("SUMMARY:{summary}"),
        ];
        for d in exdates {
            master.push(format!("EXDATE:{d}T070000Z"));
        }
        master.push("END:VEVENT".into());
        let moved = vec![
            "BEGIN:VEVENT".to_string(),
            "UID:gym".into(),
            "DTSTAMP:20261101T000000Z".into(),
            format!("RECURRENCE-ID:{third}T070000Z"),
            format!("DTSTART:{third}T180000Z"),
            format!("DTEND:{third}T190000Z"),
            "SUMMARY:Evening gym".into(),
            "END:VEVENT".into(),
        ];
        ics(&[master, moved])
    };
    s.put("a", "gym.ics", &series("Gym", &[day(8)]));
    s.sync();
    let got = rows(&s);
    // Six weeks less the cancelled second one; the third at 18:00.
    assert_eq!(got.len(), 5, "{got:?}");
    let uids: Vec<String> = [1, 15, 22, 29, 36]
        .iter()
        .map(|d| format!("gym/{}T070000Z", day(*d)))
        .collect();
    assert_eq!(got.iter().map(|r| r.0.clone()).collect::<Vec<_>>(), uids);
    let evening = got
        .iter()
        .find(|r| r.1 == "Evening gym")
        .expect("the moved one");
    assert!(evening.2.contains("T18:00:00"), "{evening:?}");
    assert_eq!(got.iter().filter(|r| r.1 == "Gym").count(), 4);
    let again = s.sync();
    assert!(again.stdout.contains(QUIET), "{again:?}");

    // Rename the series and cancel the fourth week: rows follow.
    s.put("a", "gym.ics", &series("Swim", &[day(8), day(22)]));
    let run = s.sync();
    let got = rows(&s);
    assert_eq!(got.len(), 4, "{got:?}\n{run:?}");
    assert!(!got.iter().any(|r| r.0.contains(&day(22))));
    assert_eq!(got.iter().filter(|r| r.1 == "Swim").count(), 3);
    assert_eq!(got.iter().filter(|r| r.1 == "Evening gym").count(), 1);
    let again = s.sync();
    assert!(again.stdout.contains(QUIET), "{again:?}");
    // The series on A was never written.
    assert_eq!(s.read("a", "gym.ics"), series("Swim", &[day(8), day(22)]));

    // A second series comes, the first goes: its rows go with it.
    s.put("a", "yoga.ics", &one_off("yoga", &day(3)));
    s.remove("a", "gym.ics");
    let run = s.sync();
    let got = rows(&s);
    assert_eq!(
        got.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        vec![format!("yoga/{}T090000Z", day(3))],
        "{run:?}"
    );
    let again = s.sync();
    assert!(again.stdout.contains(QUIET), "{again:?}");
}
