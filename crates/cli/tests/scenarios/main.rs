//! End-to-end scenarios: the real `tandem` binary over real vdir folders.
//! Each test is a short script — change something on a side, sync — with
//! the expected end state beside it.

mod calendar;
mod crm;
mod faults;
mod harness;
mod mapping;

use harness::{card, files_in, prop, props, Scenario};

fn two_cards(s: &Scenario) {
    s.put(
        "a",
        "u1.vcf",
        &card(
            "u1",
            &[
                "FN:Ada Lovelace",
                "N:Lovelace;Ada;;;",
                "TITLE:Analyst",
                "EMAIL;TYPE=work:ada@example.org",
            ],
        ),
    );
    s.put(
        "a",
        "u2.vcf",
        &card(
            "u2",
            &["FN:Alan Turing", "N:Turing;Alan;;;", "ORG:Bletchley"],
        ),
    );
}

#[test]
fn create_update_delete_flow_both_ways() {
    let s = Scenario::new("contact", "");
    two_cards(&s);
    s.put("a", "u3.vcf", &card("u3", &["FN:Grace Hopper"]));
    s.sync();
    assert_eq!(s.files("b"), vec!["u1.vcf", "u2.vcf", "u3.vcf"]);
    assert_eq!(
        prop(&s.read("b", "u1.vcf"), "TITLE").as_deref(),
        Some("Analyst")
    );

    // Create on B flows to A.
    s.put("b", "u4.vcf", &card("u4", &["FN:Katherine Johnson"]));
    // Update on B flows to A.
    s.put(
        "b",
        "u1.vcf",
        &card(
            "u1",
            &[
                "FN:Ada Lovelace",
                "N:Lovelace;Ada;;;",
                "TITLE:Countess",
                "EMAIL;TYPE=work:ada@example.org",
            ],
        ),
    );
    // Delete on A flows to B.
    s.remove("a", "u2.vcf");
    s.sync();
    assert_eq!(s.files("a"), vec!["u1.vcf", "u3.vcf", "u4.vcf"]);
    assert_eq!(s.files("b"), vec!["u1.vcf", "u3.vcf", "u4.vcf"]);
    assert_eq!(
        prop(&s.read("a", "u1.vcf"), "TITLE").as_deref(),
        Some("Countess")
    );
    assert_eq!(
        prop(&s.read("a", "u4.vcf"), "FN").as_deref(),
        Some("Katherine Johnson")
    );
}

#[test]
fn no_op_sync_writes_nothing_and_keeps_mtimes() {
    let s = Scenario::new("contact", "");
    two_cards(&s);
    s.sync();
    let stamp = |side: &str| -> Vec<std::time::SystemTime> {
        s.files(side)
            .iter()
            .map(|f| {
                std::fs::metadata(s.path(side, f))
                    .and_then(|m| m.modified())
                    .expect("mtime")
            })
            .collect()
    };
    let (before_a, before_b) = (stamp("a"), stamp("b"));
    let plan = s.tandem(&["plan", "--json"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(plan.stdout.contains("\"operations\":[]"), "{plan:?}");
    let run = s.sync();
    assert!(
        run.stdout.contains("created 0/0, updated 0/0, deleted 0/0"),
        "{run:?}"
    );
    assert_eq!((stamp("a"), stamp("b")), (before_a, before_b));
}

#[test]
fn different_fields_merge() {
    let s = Scenario::new("contact", "");
    two_cards(&s);
    s.sync();
    s.put(
        "a",
        "u1.vcf",
        &card(
            "u1",
            &[
                "FN:Ada Lovelace",
                "N:Lovelace;Ada;;;",
                "TITLE:Lead",
                "EMAIL;TYPE=work:ada@example.org",
            ],
        ),
    );
    s.put(
        "b",
        "u1.vcf",
        &card(
            "u1",
            &[
                "FN:Ada Lovelace",
                "N:Lovelace;Ada;;;",
                "TITLE:Analyst",
                "EMAIL;TYPE=work:ada@example.org",
                "NOTE:met at expo",
            ],
        ),
    );
    s.sync();
    for side in ["a", "b"] {
        let text = s.read(side, "u1.vcf");
        assert_eq!(
            prop(&text, "TITLE").as_deref(),
            Some("Lead"),
            "{side}: {text}"
        );
        assert_eq!(
            prop(&text, "NOTE").as_deref(),
            Some("met at expo"),
            "{side}: {text}"
        );
    }
}

fn clash(policy: &str, fields: &str) -> Scenario {
    let s = Scenario::new("contact", &format!("conflict = \"{policy}\"\n{fields}"));
    s.put(
        "a",
        "u1.vcf",
        &card("u1", &["FN:Ada", "TITLE:Analyst", "ORG:Acme"]),
    );
    s.sync();
    // A changes first (older REV), B later (newer REV); both change TITLE and ORG.
    s.put(
        "a",
        "u1.vcf",
        &card(
            "u1",
            &[
                "FN:Ada",
                "TITLE:From A",
                "ORG:Org A",
                "REV:20240101T000000Z",
            ],
        ),
    );
    s.put(
        "b",
        "u1.vcf",
        &card(
            "u1",
            &[
                "FN:Ada",
                "TITLE:From B",
                "ORG:Org B",
                "REV:20250101T000000Z",
            ],
        ),
    );
    s
}

#[test]
fn same_field_conflict_under_each_policy() {
    for (policy, want) in [("a", "From A"), ("b", "From B"), ("newest", "From B")] {
        let s = clash(policy, "");
        s.sync();
        for side in ["a", "b"] {
            assert_eq!(
                prop(&s.read(side, "u1.vcf"), "TITLE").as_deref(),
                Some(want),
                "{policy} {side}"
            );
        }
    }
}

#[test]
fn manual_conflicts_wait_in_the_inbox_until_resolved() {
    let s = clash("manual", "");
    let before_a = s.read("a", "u1.vcf");
    let before_b = s.read("b", "u1.vcf");
    let run = s.sync();
    assert!(run.stdout.contains("1 conflict"), "{run:?}");
    assert_eq!(
        (s.read("a", "u1.vcf"), s.read("b", "u1.vcf")),
        (before_a, before_b)
    );
    let list = s.tandem(&["conflicts", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&list.stdout).expect("json");
    let c = &v["conflicts"][0];
    assert_eq!(c["item"], "u1");
    assert_eq!(c["pair"], "p");
    assert_eq!(c["fields"], serde_json::json!(["org", "title"]));
    let id = c["id"].as_i64().expect("id").to_string();
    // A second sync neither writes nor duplicates the inbox entry.
    s.sync();
    let again: serde_json::Value =
        serde_json::from_str(&s.tandem(&["conflicts", "--json"]).stdout).expect("json");
    assert_eq!(again["conflicts"].as_array().map(Vec::len), Some(1));
    let id = again["conflicts"][0]["id"]
        .as_i64()
        .map(|i| i.to_string())
        .unwrap_or(id);
    let r = s.tandem(&["resolve", &id, "--keep", "b"]);
    assert_eq!(r.code, 0, "{r:?}");
    for side in ["a", "b"] {
        let t = s.read(side, "u1.vcf");
        assert_eq!(prop(&t, "TITLE").as_deref(), Some("From B"), "{side}");
        assert_eq!(prop(&t, "ORG").as_deref(), Some("Org B"), "{side}");
    }
    let after: serde_json::Value =
        serde_json::from_str(&s.tandem(&["conflicts", "--json"]).stdout).expect("json");
    assert_eq!(after["conflicts"], serde_json::json!([]));
}

#[test]
fn per_field_owner_wins_its_field_only() {
    // B is newer, so `newest` gives TITLE to B, but ORG belongs to A.
    let s = clash("newest", "[pairs.fields]\norg = \"a\"");
    s.sync();
    for side in ["a", "b"] {
        let t = s.read(side, "u1.vcf");
        assert_eq!(prop(&t, "ORG").as_deref(), Some("Org A"), "{side}");
        assert_eq!(prop(&t, "TITLE").as_deref(), Some("From B"), "{side}");
    }
}

#[test]
fn edit_beats_delete() {
    let s = Scenario::new("contact", "");
    two_cards(&s);
    s.sync();
    s.remove("a", "u1.vcf");
    s.put(
        "b",
        "u1.vcf",
        &card("u1", &["FN:Ada Lovelace", "TITLE:Edited on B"]),
    );
    s.sync();
    assert!(s.exists("a", "u1.vcf"));
    assert_eq!(
        prop(&s.read("a", "u1.vcf"), "TITLE").as_deref(),
        Some("Edited on B")
    );
    // And the other way round.
    s.remove("b", "u2.vcf");
    s.put(
        "a",
        "u2.vcf",
        &card("u2", &["FN:Alan Turing", "ORG:Edited on A"]),
    );
    s.sync();
    assert_eq!(
        prop(&s.read("b", "u2.vcf"), "ORG").as_deref(),
        Some("Edited on A")
    );
}

#[test]
fn multi_valued_fields_merge_element_wise() {
    let s = Scenario::new("contact", "");
    s.put(
        "a",
        "u1.vcf",
        &card("u1", &["FN:Ada", "EMAIL:ada@example.org", "CATEGORIES:vip"]),
    );
    s.sync();
    s.put(
        "a",
        "u1.vcf",
        &card(
            "u1",
            &[
                "FN:Ada",
                "EMAIL:ada@example.org",
                "EMAIL:ada@home.example",
                "CATEGORIES:vip",
            ],
        ),
    );
    s.put(
        "b",
        "u1.vcf",
        &card(
            "u1",
            &[
                "FN:Ada",
                "EMAIL:ada@example.org",
                "EMAIL:lovelace@work.example",
                "CATEGORIES:vip",
            ],
        ),
    );
    s.sync();
    for side in ["a", "b"] {
        assert_eq!(
            props(&s.read(side, "u1.vcf"), "EMAIL"),
            vec![
                "ada@example.org",
                "ada@home.example",
                "lovelace@work.example"
            ],
            "{side}"
        );
    }
}

#[test]
fn same_uid_new_on_both_sides_links_and_merges() {
    let s = Scenario::new("contact", "");
    s.put("a", "x.vcf", &card("same", &["FN:Ada", "TITLE:Analyst"]));
    s.put("b", "y.vcf", &card("same", &["FN:Ada", "NOTE:from b"]));
    let plan = s.tandem(&["plan", "--json"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    s.sync();
    assert_eq!(s.files("a"), vec!["x.vcf"]);
    assert_eq!(s.files("b"), vec!["y.vcf"]);
    for (side, file) in [("a", "x.vcf"), ("b", "y.vcf")] {
        let t = s.read(side, file);
        assert_eq!(prop(&t, "TITLE").as_deref(), Some("Analyst"), "{side}");
        assert_eq!(prop(&t, "NOTE").as_deref(), Some("from b"), "{side}");
    }
    // Identical on both sides: linked without writing.
    let s = Scenario::new("contact", "");
    s.put("a", "x.vcf", &card("same", &["FN:Ada"]));
    s.put("b", "y.vcf", &card("same", &["FN:Ada"]));
    let plan = s.tandem(&["plan", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&plan.stdout).expect("json");
    assert_eq!(
        v["pairs"][0]["operations"],
        serde_json::json!([{"op": "link", "id": "same", "fields": [], "reason": "new on both sides"}])
    );
    let run = s.sync();
    assert!(run.stdout.contains("created 0/0, updated 0/0"), "{run:?}");
}

#[test]
fn brakes_stop_before_any_write_unless_forced() {
    // Too many deletions.
    let s = Scenario::new("contact", "max_delete = \"50%\"");
    for i in 0..4 {
        s.put(
            "a",
            &format!("u{i}.vcf"),
            &card(&format!("u{i}"), &["FN:Someone"]),
        );
    }
    s.sync();
    for i in 0..3 {
        s.remove("a", &format!("u{i}.vcf"));
    }
    let run = s.tandem(&["sync"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("max_delete"), "{run:?}");
    assert_eq!(s.files("b").len(), 4);
    let plan = s.tandem(&["plan"]);
    assert_eq!(plan.code, 3, "{plan:?}");
    let forced = s.tandem(&["sync", "--force"]);
    assert_eq!(forced.code, 0, "{forced:?}");
    assert_eq!(s.files("b"), vec!["u3.vcf"]);

    // A side suddenly empty (say, an unmounted folder).
    let s = Scenario::new("contact", "max_delete = \"100%\"");
    two_cards(&s);
    s.sync();
    std::fs::remove_dir_all(s.dir.path().join("a")).expect("rm a");
    let run = s.tandem(&["sync"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("empty"), "{run:?}");
    assert_eq!(s.files("b").len(), 2);
}

#[test]
fn one_way_pairs_never_write_their_source() {
    let s = Scenario::new("contact", "direction = \"a-to-b\"");
    two_cards(&s);
    s.sync();
    assert_eq!(s.files("b").len(), 2);
    let a_before = s.read("a", "u1.vcf");
    s.put(
        "b",
        "u1.vcf",
        &card("u1", &["FN:Ada Lovelace", "TITLE:Changed on target"]),
    );
    s.put("b", "new.vcf", &card("new", &["FN:Only on B"]));
    s.remove("b", "u2.vcf");
    s.sync();
    assert_eq!(s.read("a", "u1.vcf"), a_before);
    assert_eq!(s.files("a"), vec!["u1.vcf", "u2.vcf"]);
    // The target's deleted item is restored from the source.
    assert!(s.exists("b", "u2.vcf"));
    // A later change on the source flows to the target.
    s.put(
        "a",
        "u2.vcf",
        &card("u2", &["FN:Alan Turing", "ORG:Manchester"]),
    );
    s.sync();
    assert_eq!(
        prop(&s.read("b", "u2.vcf"), "ORG").as_deref(),
        Some("Manchester")
    );
}

#[test]
fn unknown_properties_survive_on_both_sides() {
    let s = Scenario::new("contact", "");
    s.put(
        "a",
        "u1.vcf",
        &card(
            "u1",
            &[
                "FN:Ada",
                "TITLE:Analyst",
                "X-A-ONLY;X-PARAM=keep:secret a",
                "item1.X-ABLABEL:custom label",
            ],
        ),
    );
    s.sync();
    assert!(s.read("b", "u1.vcf").contains("X-A-ONLY"), "copied as is");
    // B gains its own unknown property; A changes a mapped field.
    s.put(
        "b",
        "u1.vcf",
        &s.read("b", "u1.vcf")
            .replace("END:VCARD", "X-B-ONLY:from b\r\nEND:VCARD"),
    );
    s.sync();
    s.put(
        "a",
        "u1.vcf",
        &s.read("a", "u1.vcf").replace("TITLE:Analyst", "TITLE:Lead"),
    );
    s.sync();
    let b = s.read("b", "u1.vcf");
    assert_eq!(prop(&b, "TITLE").as_deref(), Some("Lead"));
    assert!(
        b.contains("X-B-ONLY:from b") && b.contains("X-A-ONLY") && b.contains("X-PARAM=keep"),
        "{b}"
    );
    assert!(b.contains("item1.X-ABLABEL"), "{b}");
}

#[test]
fn undo_restores_a_run() {
    let s = Scenario::new("contact", "max_delete = \"100%\"");
    two_cards(&s);
    s.sync();
    s.put(
        "a",
        "u1.vcf",
        &card(
            "u1",
            &[
                "FN:Ada Lovelace",
                "N:Lovelace;Ada;;;",
                "TITLE:Oops",
                "EMAIL;TYPE=work:ada@example.org",
            ],
        ),
    );
    s.remove("a", "u2.vcf");
    let run = s.sync();
    assert!(!s.exists("b", "u2.vcf"));
    let history = s.tandem(&["history", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&history.stdout).expect("json");
    let last = &v["runs"][0];
    assert_eq!(
        last["writes"].as_array().map(Vec::len),
        Some(2),
        "{history:?}"
    );
    let id = last["run"].as_i64().expect("run id").to_string();
    assert!(run.stdout.contains(&format!("run {id}")));
    let undo = s.tandem(&["undo", &id]);
    assert_eq!(undo.code, 0, "{undo:?}");
    assert!(s.exists("b", "u2.vcf"));
    assert_eq!(
        prop(&s.read("b", "u2.vcf"), "ORG").as_deref(),
        Some("Bletchley")
    );
    assert_eq!(
        prop(&s.read("b", "u1.vcf"), "TITLE").as_deref(),
        Some("Analyst")
    );
    // The next sync carries the restored items back to A.
    s.sync();
    assert!(s.exists("a", "u2.vcf"));
    assert_eq!(
        prop(&s.read("a", "u1.vcf"), "TITLE").as_deref(),
        Some("Analyst")
    );
}

/// A create's after-image is journaled with its outcome, not before the
/// write: history still names the fields it wrote, and undoing the undo of
/// a first sync brings the created items back from that image.
#[test]
fn the_undo_of_an_undone_first_sync_creates_its_items_again() {
    let s = Scenario::new("contact", "max_delete = \"100%\"");
    two_cards(&s);
    s.sync();
    let history = s.tandem(&["history", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&history.stdout).expect("json");
    let first = &v["runs"][0];
    let created = first["writes"].as_array().expect("writes");
    assert_eq!(created.len(), 2, "{history:?}");
    for write in created {
        assert_eq!(write["op"], "create", "{history:?}");
        assert_eq!(write["done"], true, "{history:?}");
        let fields = write["fields"].as_array().expect("fields");
        assert!(fields.iter().any(|f| f == "full_name"), "{history:?}");
    }

    let id = first["run"].as_i64().expect("run id").to_string();
    let undo = s.tandem(&["undo", &id]);
    assert_eq!(undo.code, 0, "{undo:?}");
    assert!(!s.exists("b", "u1.vcf") && !s.exists("b", "u2.vcf"));
    // The undo is the newest run.
    let history = s.tandem(&["history", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&history.stdout).expect("json");
    let undo_id = v["runs"][0]["run"].as_i64().expect("undo run id");
    assert_ne!(undo_id.to_string(), id);
    let undo_id = undo_id.to_string();

    let redo = s.tandem(&["undo", &undo_id]);
    assert_eq!(redo.code, 0, "{redo:?}");
    assert_eq!(
        prop(&s.read("b", "u1.vcf"), "TITLE").as_deref(),
        Some("Analyst")
    );
    assert_eq!(
        prop(&s.read("b", "u2.vcf"), "ORG").as_deref(),
        Some("Bletchley")
    );
}

#[test]
fn a_garbage_file_is_reported_skipped_and_never_deleted_elsewhere() {
    let s = Scenario::new("contact", "");
    two_cards(&s);
    s.sync();
    s.put("a", "u1.vcf", "this is not a vcard\n");
    s.put("a", "junk.vcf", "BEGIN:VCARD\r\nnonsense");
    s.put("a", "u5.vcf", &card("u5", &["FN:Still synced"]));
    let run = s.tandem(&["sync"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("u1.vcf") && run.stderr.contains("junk.vcf"),
        "{run:?}"
    );
    assert!(
        s.exists("b", "u1.vcf"),
        "the twin of an unreadable file is kept"
    );
    assert!(s.exists("b", "u5.vcf"), "the rest syncs");
    assert!(!s.exists("b", "junk.vcf"));
    assert_eq!(
        s.read("a", "u1.vcf"),
        "this is not a vcard\n",
        "the bad file is left alone"
    );
}

#[test]
fn two_files_with_one_uid_are_reported_not_merged() {
    let s = Scenario::new("contact", "");
    s.put("a", "one.vcf", &card("dup", &["FN:First"]));
    s.put("a", "two.vcf", &card("dup", &["FN:Second"]));
    let run = s.tandem(&["sync"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("same UID"), "{run:?}");
    assert_eq!(s.files("b").len(), 1);
}

#[test]
fn config_errors_name_file_and_line_and_exit_2() {
    let s = Scenario::new("contact", "directoin = \"both\"");
    let run = s.tandem(&["sync"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("tandem.toml:") && run.stderr.contains("directoin"),
        "{run:?}"
    );
    let s = Scenario::new("contact", "");
    std::fs::write(
        s.dir.path().join("tandem.toml"),
        "[stores.a]\ntype = \"vdir\"\npath = \"a\"\npth = \"x\"\n",
    )
    .expect("write");
    let run = s.tandem(&["check"]);
    // Stores are opened per pair; with no pair the typo is still found at check.
    assert!(run.code == 0 || run.code == 2, "{run:?}");
}

#[test]
fn subfolders_are_collections_synced_by_name() {
    let s = Scenario::new("contact", "");
    s.put("a", "work/w1.vcf", &card("w1", &["FN:Colleague"]));
    s.put("a", "home/h1.vcf", &card("h1", &["FN:Neighbour"]));
    s.sync();
    assert_eq!(files_in(&s.dir.path().join("b/work")), vec!["w1.vcf"]);
    assert_eq!(files_in(&s.dir.path().join("b/home")), vec!["h1.vcf"]);
}

#[test]
fn events_and_tasks_sync_too() {
    let s = Scenario::new("event", "");
    let ev = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:e1\r\nDTSTAMP:20240101T000000Z\r\nDTSTART;TZID=Europe/Berlin:20240301T090000\r\nDTEND;TZID=Europe/Berlin:20240301T100000\r\nSUMMARY:Standup\r\nRRULE:FREQ=DAILY;COUNT=5\r\nX-KEEP:me\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    s.put("a", "e1.ics", ev);
    s.sync();
    let b = s.read("b", "e1.ics");
    assert!(
        b.contains("SUMMARY:Standup") && b.contains("X-KEEP:me"),
        "{b}"
    );
    s.put(
        "b",
        "e1.ics",
        &b.replace("SUMMARY:Standup", "SUMMARY:Daily standup"),
    );
    s.sync();
    let a = s.read("a", "e1.ics");
    assert!(
        a.contains("SUMMARY:Daily standup") && a.contains("RRULE:FREQ=DAILY;COUNT=5"),
        "{a}"
    );
}

#[test]
fn kill_during_a_large_sync_then_rerun_converges() {
    let s = Scenario::new("contact", "");
    let n = 10_000;
    for i in 0..n {
        s.put(
            "a",
            &format!("c{i:05}.vcf"),
            &card(
                &format!("c{i:05}"),
                &[&format!("FN:Person {i}"), "TITLE:Tester"],
            ),
        );
    }
    // A hard crash mid-run (abort right after the 2500th write, before the
    // state records it) and, again, a kill -9 at an arbitrary moment.
    let crashed = s.tandem_env(&["sync"], &[("TANDEM_CRASH_AFTER_WRITES", "2500")]);
    assert_ne!(crashed.code, 0, "{crashed:?}");
    let partial = s.files("b").len();
    assert!(partial >= 2500 && partial < n, "{partial}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .current_dir(s.dir.path())
        .arg("sync")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(700));
    let _ = child.kill();
    let _ = child.wait();
    let run = s.sync();
    assert!(run.stdout.contains("0 failed"), "{run:?}");
    let files = s.files("b");
    assert_eq!(files.len(), n, "no item missing, none twice");
    for f in files.iter().step_by(997) {
        assert_eq!(s.read("a", f), s.read("b", f));
    }
    // Quiet afterwards.
    let again = s.sync();
    assert!(
        again
            .stdout
            .contains("created 0/0, updated 0/0, deleted 0/0"),
        "{again:?}"
    );
}

#[test]
fn a_pair_whose_server_is_down_does_not_stop_the_next_pair() {
    let s = Scenario::new("contact", "");
    // Pair `down` first: its server refuses connections.
    let config = "[stores.a]\ntype = \"vdir\"\npath = \"a\"\n\n[stores.b]\ntype = \"vdir\"\npath = \"b\"\n\n\
        [stores.gone]\ntype = \"carddav\"\nurl = \"http://127.0.0.1:9/dav/\"\ntimeout = 2\nretries = 0\n\n\
        [[pairs]]\nname = \"down\"\na = \"a\"\nb = \"gone\"\nkind = \"contact\"\n\n\
        [[pairs]]\nname = \"p\"\na = \"a\"\nb = \"b\"\nkind = \"contact\"\n";
    std::fs::write(s.dir.path().join("tandem.toml"), config).expect("write config");
    two_cards(&s);
    let run = s.tandem(&["sync"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("pair `down`"), "{run:?}");
    assert!(run.stderr.contains("gone"), "{run:?}");
    assert!(run.stdout.contains("p: created 0/2"), "{run:?}");
    assert_eq!(s.files("b").len(), 2);
    let history = s.tandem(&["history", "--json"]);
    assert!(history.stdout.contains("partial"), "{history:?}");
}
