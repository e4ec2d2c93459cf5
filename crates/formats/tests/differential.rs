//! Differential test of recurrence expansion: every calendar under
//! `tests/corpus/` is split into items (one series each, as a CalDAV server
//! stores them), expanded over a fixed window by Tandem and by the Python
//! library recurring-ical-events (`tests/corpus/expand.py`), and the two
//! occurrence sets — `(uid, start, end)` in UTC seconds — are compared.
//!
//! Every deliberate disagreement is listed in [`KNOWN`] with the exact
//! difference it produces and is asserted, never skipped; the reasons are
//! written out in `tests/corpus/README.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use tandem_formats::recurrence::{expand_item, Window};

/// 2000-01-01T00:00:00Z .. 2030-01-01T00:00:00Z.
const WINDOW: Window = Window {
    from: 946_684_800,
    to: 1_893_456_000,
};

/// Enough for every series of the corpus over the window; a truncated
/// expansion fails the test.
const LIMIT: usize = 50_000;

type Occurrence = (String, i64, Option<i64>);

/// A file on which Tandem deliberately differs (see the corpus README): how
/// many occurrences only the reference finds, how many only Tandem finds,
/// the error Tandem gives for items it refuses, and a repair the reference
/// needs before it can read the file at all (`(what, written as)`; Tandem
/// reads the file as it is).
struct Known {
    file: &'static str,
    only_reference: usize,
    only_tandem: usize,
    refused: Option<&'static str>,
    reference_reads: Option<(&'static str, &'static str)>,
}

const KNOWN: &[Known] = &[
    // An override with STATUS:CANCELLED removes its occurrence (see
    // rie-issue_18_cancel_status.ics).
    Known {
        file: "ical-parser-11complex.ics",
        only_reference: 1,
        only_tandem: 0,
        refused: None,
        reference_reads: None,
    },
    // iCloud writes Berlin's local mean time (+00:53:28) as `+5328`, which
    // the reference cannot parse; Tandem reads Europe/Berlin from the IANA
    // database and never looks at that observance. The reference reads the
    // offset as `+005328` and then agrees exactly.
    Known {
        file: "icalevents-icloud.ics",
        only_reference: 0,
        only_tandem: 0,
        refused: None,
        reference_reads: Some(("TZOFFSETFROM:+5328", "TZOFFSETFROM:+005328")),
    },
    // UNTIL before DTSTART: DTSTART still counts as the first occurrence.
    Known {
        file: "rie-issue_117_until_before_dtstart.ics",
        only_reference: 0,
        only_tandem: 1,
        refused: None,
        reference_reads: None,
    },
    // Two masters share one UID: not one series; Tandem refuses the item.
    Known {
        file: "rie-issue_148_edge_case_1.ics",
        only_reference: 2,
        only_tandem: 0,
        refused: Some("share one UID; expected one master"),
        reference_reads: None,
    },
    Known {
        file: "rie-issue_163_deleted_modification.ics",
        only_reference: 94,
        only_tandem: 0,
        refused: Some("share one UID; expected one master"),
        reference_reads: None,
    },
    // An override with STATUS:CANCELLED removes its occurrence.
    Known {
        file: "rie-issue_18_cancel_status.ics",
        only_reference: 1,
        only_tandem: 0,
        refused: None,
        reference_reads: None,
    },
    // An override of an instance the rule no longer has is kept (the
    // reference drops it when its SEQUENCE is lower than the master's).
    Known {
        file: "rie-issue_253_additional_recurrence_id.ics",
        only_reference: 0,
        only_tandem: 1,
        refused: None,
        reference_reads: None,
    },
    // UNTIL is a DATE under a DATE-TIME DTSTART: Tandem counts that whole
    // day, the reference stops at its midnight. (Its RANGE=THISANDFUTURE
    // overrides agree.)
    Known {
        file: "rie-issue_75_range_parameter.ics",
        only_reference: 0,
        only_tandem: 1,
        refused: None,
        reference_reads: None,
    },
];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("TANDEM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root/.cache/tandem/venv"));
    let python = venv.join("bin/python");
    python.exists().then_some(python)
}

/// Runs expand.py over `items` and returns each item's occurrences (or the
/// reference's error).
fn reference(
    python: &Path,
    items: &[PathBuf],
) -> BTreeMap<PathBuf, Result<Vec<Occurrence>, String>> {
    let output = Command::new(python)
        .arg(corpus().join("expand.py"))
        .arg(WINDOW.from.to_string())
        .arg(WINDOW.to.to_string())
        .args(items)
        .output()
        .expect("run expand.py");
    assert!(
        output.status.success(),
        "expand.py failed (is recurring-ical-events installed in the venv? see .ci/requirements.txt):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut found = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let json: serde_json::Value = serde_json::from_str(line).expect("expand.py prints JSON");
        let item = PathBuf::from(json["item"].as_str().expect("item path"));
        let result = match json.get("error").and_then(|e| e.as_str()) {
            Some(error) => Err(error.to_string()),
            None => Ok(json["occurrences"]
                .as_array()
                .expect("occurrences")
                .iter()
                .map(|o| {
                    (
                        o[0].as_str().expect("uid").to_string(),
                        o[1].as_i64().expect("start"),
                        o[2].as_i64(),
                    )
                })
                .collect()),
        };
        found.insert(item, result);
    }
    found
}

fn tandem(text: &str) -> Result<Vec<Occurrence>, String> {
    let expansion = expand_item(text, WINDOW, LIMIT).map_err(|e| e.to_string())?;
    if expansion.truncated {
        return Err("expansion truncated".into());
    }
    Ok(expansion
        .occurrences
        .into_iter()
        .map(|o| (o.record.uid.clone(), o.start_utc, o.end_utc))
        .collect())
}

/// RFC 5545 requires a UID in every VEVENT and VTODO, and an item cannot
/// be stored without one; some files of the corpus leave it out. Those
/// components get `UID:<file>#<n>` here, before both sides read them.
fn with_uids(text: &str, file: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<(String, bool)> = None;
    let mut depth = 0usize;
    let mut added = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        let upper = bare.to_ascii_uppercase();
        if let Some(name) = upper.strip_prefix("BEGIN:") {
            depth += 1;
            if open.is_none() && matches!(name, "VEVENT" | "VTODO") {
                open = Some((name.to_string(), false));
                depth = 0;
            }
        } else if let Some(name) = upper.strip_prefix("END:") {
            match &open {
                Some((component, has_uid)) if depth == 0 && name == component => {
                    if !has_uid {
                        out.push_str(&format!("UID:{file}#{added}\r\n"));
                        added += 1;
                    }
                    open = None;
                }
                _ => depth = depth.saturating_sub(1),
            }
        } else if depth == 0 && (upper.starts_with("UID:") || upper.starts_with("UID;")) {
            if let Some((_, has_uid)) = open.as_mut() {
                *has_uid = true;
            }
        }
        out.push_str(line);
    }
    out
}

fn counts(list: &[Occurrence]) -> BTreeMap<&Occurrence, usize> {
    let mut map = BTreeMap::new();
    for o in list {
        *map.entry(o).or_default() += 1;
    }
    map
}

/// (occurrences compared, agreements, only in the reference, only in Tandem)
fn compare(
    reference: &[Occurrence],
    ours: &[Occurrence],
) -> (usize, usize, Vec<Occurrence>, Vec<Occurrence>) {
    let (a, b) = (counts(reference), counts(ours));
    let keys: BTreeSet<&&Occurrence> = a.keys().chain(b.keys()).collect();
    let (mut compared, mut agreed) = (0, 0);
    let (mut only_ref, mut only_ours) = (Vec::new(), Vec::new());
    for key in keys {
        let (x, y) = (
            a.get(*key).copied().unwrap_or(0),
            b.get(*key).copied().unwrap_or(0),
        );
        compared += x.max(y);
        agreed += x.min(y);
        only_ref.extend(std::iter::repeat_n((*key).clone(), x.saturating_sub(y)));
        only_ours.extend(std::iter::repeat_n((*key).clone(), y.saturating_sub(x)));
    }
    (compared, agreed, only_ref, only_ours)
}

#[test]
fn expansion_agrees_with_recurring_ical_events() {
    let Some(python) = python() else {
        eprintln!("skipped: no Python venv at $TANDEM_VENV (.ci/run creates it)");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("corpus folder")
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ics"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "the corpus holds {} files", files.len());

    // Split every file into items, written where expand.py can read them.
    let scratch = std::env::temp_dir().join(format!("tandem-differential-{}", std::process::id()));
    let mut items: BTreeMap<String, Vec<(PathBuf, String)>> = BTreeMap::new();
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let text = with_uids(
            &std::fs::read_to_string(file).expect("read corpus file"),
            &name,
        );
        let split = match tandem_formats::split_calendar(&text) {
            Ok(split) => split,
            Err(e) => {
                failures.push(format!("{name}: cannot split: {e}"));
                continue;
            }
        };
        let repair = KNOWN
            .iter()
            .find(|k| k.file == name)
            .and_then(|k| k.reference_reads);
        if let Some((what, _)) = repair {
            if !text.contains(what) {
                failures.push(format!("{name}: listed repair `{what}` not found"));
            }
        }
        let folder = scratch.join(&name);
        std::fs::create_dir_all(&folder).expect("scratch folder");
        for (n, item) in split.into_iter().enumerate() {
            let path = folder.join(format!("{n:04}.ics"));
            let for_reference = match repair {
                Some((what, written_as)) => item.replace(what, written_as),
                None => item.clone(),
            };
            std::fs::write(&path, &for_reference).expect("write item");
            items.entry(name.clone()).or_default().push((path, item));
        }
    }
    let all: Vec<PathBuf> = items.values().flatten().map(|(p, _)| p.clone()).collect();
    let reference = reference(&python, &all);

    println!(
        "{:<64} {:>5} {:>9} {:>9}",
        "file", "items", "compared", "agreed"
    );
    let (mut total_compared, mut total_agreed) = (0, 0);
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let list = items.get(&name).map(Vec::as_slice).unwrap_or_default();
        let (mut expected, mut ours) = (Vec::new(), Vec::new());
        let mut refused = 0;
        for (path, text) in list {
            match reference.get(path) {
                Some(Ok(found)) => expected.extend(found.iter().cloned()),
                Some(Err(e)) => failures.push(format!("{name}: recurring-ical-events: {e}")),
                None => failures.push(format!(
                    "{name}: no reference output for {}",
                    path.display()
                )),
            }
            match tandem(text) {
                Ok(found) => ours.extend(found),
                Err(e) => match KNOWN
                    .iter()
                    .find(|k| k.file == name)
                    .and_then(|k| k.refused)
                {
                    Some(refusal) if e.contains(refusal) => refused += 1,
                    _ => failures.push(format!("{name}: Tandem: {e}")),
                },
            }
        }
        let (compared, agreed, only_ref, only_ours) = compare(&expected, &ours);
        total_compared += compared;
        total_agreed += agreed;
        println!("{name:<64} {:>5} {compared:>9} {agreed:>9}", list.len());
        match KNOWN.iter().find(|k| k.file == name) {
            Some(known) => {
                if known.refused.is_some() && refused == 0 {
                    failures.push(format!("{name}: expected Tandem to refuse an item"));
                }
                if (only_ref.len(), only_ours.len()) != (known.only_reference, known.only_tandem) {
                    failures.push(format!(
                        "{name}: expected the listed disagreement ({} only in the reference, {} only in Tandem), found {} / {} (first {:?} / {:?})",
                        known.only_reference,
                        known.only_tandem,
                        only_ref.len(),
                        only_ours.len(),
                        only_ref.iter().take(3).collect::<Vec<_>>(),
                        only_ours.iter().take(3).collect::<Vec<_>>(),
                    ));
                }
            }
            None if !only_ref.is_empty() || !only_ours.is_empty() => failures.push(format!(
                "{name}: {} only in recurring-ical-events (first {:?}); {} only in Tandem (first {:?})",
                only_ref.len(),
                only_ref.iter().take(3).collect::<Vec<_>>(),
                only_ours.len(),
                only_ours.iter().take(3).collect::<Vec<_>>(),
            )),
            None => {}
        }
    }
    println!(
        "{} files, {} occurrences compared, {} agreements",
        files.len(),
        total_compared,
        total_agreed
    );
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
