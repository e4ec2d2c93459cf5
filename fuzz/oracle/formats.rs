//! What every vCard and iCalendar input must satisfy, shared by the `vcard`
//! and `icalendar` fuzz targets and the replay test in
//! crates/formats/tests/fuzz_regressions.rs (which includes this file).
//!
//! Any text may fail to parse, but never panic. What parses must render,
//! when it renders, to text that parses again as the same item; and a patch
//! that succeeds must read back as the original record with the change
//! applied — the contract `tandem_formats::patch` documents. A series
//! expands within its limit and in bounded CPU time, to occurrences inside
//! the window, in order, with distinct keys, each a plain record of the
//! series; `any_in` agrees with `expand`.

use std::collections::BTreeSet;
use std::time::Duration;
use tandem_formats::recurrence::{self, Expansion, Window};
use tandem_formats::{parse, patch, render, Format, FormatError};
use tandem_record::{FieldChange, Record, Value};

/// The vCard path: parse, render, parse; patch.
pub fn vcard(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        item(Format::VCard, text, &vcard_changes());
    }
}

/// The iCalendar path: parse, render, parse; patch; then the series'
/// occurrences over a few windows with a small limit, in bounded time.
pub fn icalendar(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(record) = item(Format::ICalendar, text, &icalendar_changes()) {
            expand(text, &record);
        }
    }
}

/// Most CPU time one expansion may take in an optimised fuzz build. The
/// expansion caps its own work at `recurrence::MAX_CANDIDATES` rule
/// instances: a weekly series over years 1–9999 reaches the cap in about
/// 0.2 s in a release build and 1.4 s in a fuzz build (coverage
/// instrumentation and overflow checks), so a call past this budget is work
/// the cap does not bound. Unoptimised test builds replaying these inputs
/// skip the timing.
const EXPANSION_BUDGET: Duration = Duration::from_secs(3);

/// 2000–2040, a narrow day far in the future, and years 1–9999.
const WINDOWS: [Window; 3] = [
    Window {
        from: 946_684_800,
        to: 2_208_988_800,
    },
    Window {
        from: 32_503_680_000,
        to: 32_503_766_400,
    },
    Window {
        from: -62_135_596_800,
        to: 253_402_300_800,
    },
];
const LIMIT: usize = 50;

/// Expands the series as a record and as native text over one of the
/// windows (picked by a hash of the input: a series that reaches the cap
/// costs a good part of a second in a fuzz build, so one window per input
/// keeps the fuzzer's pace).
fn expand(text: &str, record: &Record) {
    let window = WINDOWS[(fnv(text.as_bytes()) / 7 % WINDOWS.len() as u64) as usize];
    let all = timed(|| recurrence::expand(record, window, LIMIT));
    check_expansion(record, window, &all);
    check_expansion(
        record,
        window,
        &timed(|| recurrence::expand_item(text, window, LIMIT)),
    );
    if let (Ok(any), Ok(all)) = (timed(|| recurrence::any_in(record, window)), &all) {
        assert_eq!(
            any,
            !all.occurrences.is_empty(),
            "any_in disagrees with expand over {window:?}"
        );
    }
}

/// Runs `call`, failing when it takes more than [`EXPANSION_BUDGET`] of
/// this thread's CPU time (so a busy machine does not count).
fn timed<T>(call: impl FnOnce() -> T) -> T {
    let started = thread_cpu_time();
    let out = call();
    if let (Some(started), Some(ended)) = (started, thread_cpu_time()) {
        let took = ended.saturating_sub(started);
        assert!(
            cfg!(test) || took < EXPANSION_BUDGET,
            "one expansion took {took:?} of CPU time"
        );
    }
    out
}

/// The CPU time this thread has used (Linux; `None` elsewhere).
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

fn check_expansion(record: &Record, window: Window, expansion: &Result<Expansion, FormatError>) {
    let Ok(expansion) = expansion else {
        return;
    };
    let occurrences = &expansion.occurrences;
    assert!(
        occurrences.len() <= LIMIT,
        "{} occurrences over a limit of {LIMIT}",
        occurrences.len()
    );
    let mut keys = BTreeSet::new();
    for (n, occurrence) in occurrences.iter().enumerate() {
        assert!(
            window.overlaps(occurrence.start_utc, occurrence.end_utc),
            "occurrence {} ({}..{:?}) is outside {window:?}",
            occurrence.key,
            occurrence.start_utc,
            occurrence.end_utc
        );
        if n > 0 {
            assert!(
                occurrences[n - 1].start_utc <= occurrence.start_utc,
                "occurrences out of order at {}",
                occurrence.key
            );
        }
        assert!(
            keys.insert(occurrence.key.as_str()),
            "two occurrences with key {}",
            occurrence.key
        );
        assert_eq!(occurrence.record.uid, record.uid);
        assert_eq!(occurrence.record.kind, record.kind);
        assert!(
            occurrence.record.get("recurrence").is_none()
                && occurrence.record.get("overrides").is_none(),
            "occurrence {} is still a series",
            occurrence.key
        );
    }
}

/// Parses `text`; checks render and one patch (picked from `changes` by a
/// hash of the input, so the fuzzer reaches all of them). Returns the
/// parsed record.
fn item(format: Format, text: &str, changes: &[FieldChange]) -> Option<Record> {
    let parsed = parse(format, text).ok();
    if let Some(record) = &parsed {
        if let Ok(rendered) = render(format, record) {
            let again = parse(format, &rendered).unwrap_or_else(|err| {
                panic!("a rendered item does not parse: {err}\n{rendered}\nfrom {record:#?}")
            });
            assert_eq!(
                again.kind, record.kind,
                "kind changed by render\n{rendered}"
            );
            assert_eq!(again.uid, record.uid, "UID changed by render\n{rendered}");
        }
    }
    let change = &changes[(fnv(text.as_bytes()) % changes.len() as u64) as usize];
    if let Ok(patched) = patch(format, text, std::slice::from_ref(change)) {
        let got = parse(format, &patched).unwrap_or_else(|err| {
            panic!("a patched item does not parse: {err}\n{patched}\nchange: {change:?}")
        });
        if let Some(mut expected) = parsed.clone() {
            expected.apply(std::slice::from_ref(change));
            // A patch settles `start`, `end` and `all_day` together (an
            // all-day start makes the end a date, and so on): when the change
            // is one of them, the three are left out of the comparison.
            let settled: &[&str] = if TIME_SHAPE.contains(&change.field.as_str()) {
                &TIME_SHAPE
            } else {
                &[]
            };
            let differ: Vec<String> = expected
                .changed_fields(&got)
                .into_iter()
                .filter(|field| !settled.contains(&field.as_str()))
                .collect();
            assert!(
                expected.kind == got.kind && expected.uid == got.uid && differ.is_empty(),
                "the patch does not read back as the change: fields {differ:?} differ\nchange: {change:?}\n{patched}"
            );
        }
    }
    parsed
}

/// The fields an iCalendar patch settles together.
const TIME_SHAPE: [&str; 3] = ["start", "end", "all_day"];

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn set(field: &str, value: Value) -> FieldChange {
    FieldChange {
        field: field.into(),
        value: Some(value),
    }
}

fn unset(field: &str) -> FieldChange {
    FieldChange {
        field: field.into(),
        value: None,
    }
}

fn typed(value: &str, kind: &str) -> Value {
    Value::map([("value", Value::text(value)), ("type", Value::text(kind))])
}

fn vcard_changes() -> Vec<FieldChange> {
    vec![
        set("full_name", Value::text("Ada, Countess; of \\Lovelace")),
        set("given_name", Value::text("Ada")),
        unset("family_name"),
        set("title", Value::text("line one\nline two")),
        unset("note"),
        set(
            "emails",
            Value::List(vec![
                typed("ada@example.org", "home"),
                typed("a@x.test", "work"),
            ]),
        ),
        set(
            "phones",
            Value::List(vec![typed("+44 20 7946 0000", "cell")]),
        ),
        unset("phones"),
        set("birthday", Value::Date("1815-12-10".into())),
        set("birthday", Value::Date("--12-10".into())),
        set(
            "categories",
            Value::List(vec![Value::text("a,b"), Value::text("c")]),
        ),
        set(
            "addresses",
            Value::List(vec![Value::map([
                ("street", Value::text("12 St James's Square")),
                ("locality", Value::text("London")),
                ("type", Value::text("home")),
            ])]),
        ),
        set("org", Value::text("Analytical Engines")),
        set(
            "urls",
            Value::List(vec![Value::text("https://example.org/")]),
        ),
    ]
}

fn datetime(local: &str, tz: Option<&str>) -> Value {
    Value::DateTime {
        local: local.into(),
        tz: tz.map(str::to_string),
    }
}

fn icalendar_changes() -> Vec<FieldChange> {
    vec![
        set("summary", Value::text("Board, meeting; \\ quarterly")),
        unset("summary"),
        set("description", Value::text("line one\nline two")),
        unset("location"),
        set(
            "start",
            datetime("2026-03-29T09:00:00", Some("Europe/Berlin")),
        ),
        set("start", datetime("2026-03-29T09:00:00", Some("UTC"))),
        set("end", datetime("2026-03-29T10:00:00", None)),
        unset("end"),
        set("start", Value::Date("2026-03-29".into())),
        set("all_day", Value::Bool(true)),
        set("status", Value::text("CANCELLED")),
        set("due", datetime("2026-04-01T17:00:00", Some("UTC"))),
        set("percent_complete", Value::Integer(100)),
        set("priority", Value::Integer(1)),
        unset("recurrence"),
        unset("overrides"),
        set(
            "recurrence",
            Value::map([("rrule", Value::text("FREQ=WEEKLY;COUNT=3"))]),
        ),
        set(
            "categories",
            Value::List(vec![Value::text("work"), Value::text("x,y")]),
        ),
        set(
            "attendees",
            Value::List(vec![Value::map([
                ("email", Value::text("grace@example.org")),
                ("cn", Value::text("Grace")),
                ("partstat", Value::text("ACCEPTED")),
            ])]),
        ),
    ]
}
