//! The CRM example (`examples/crm`) as shipped: a SQLite CRM paired with a
//! folder of vCards and a folder of .ics events, copied to a temp folder
//! and run through the real binary.

use crate::harness::{prop, Scenario};
use std::path::Path;

const NO_WRITES: &str = "created 0/0, updated 0/0, deleted 0/0";

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read example") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A copy of `examples/crm`, never synced before.
fn example() -> Scenario {
    let dir = tempfile::tempdir().expect("temp dir");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/crm");
    copy_tree(&example, dir.path());
    Scenario { dir }
}

fn crm(s: &Scenario) -> rusqlite::Connection {
    rusqlite::Connection::open(s.dir.path().join("crm.db")).expect("open crm.db")
}

/// Runs SQL on the CRM as its own code would: `NOW` stands for the
/// current time in the CRM's `updated_at` format.
fn crm_write(s: &Scenario, sql: &str) {
    let sql = sql.replace("NOW", "strftime('%Y-%m-%d %H:%M:%f', 'now')");
    crm(s).execute_batch(&sql).expect("crm write");
}

/// One text column of one contact row (`None` for NULL or no row).
fn contact(s: &Scenario, id: &str, column: &str) -> Option<String> {
    crm(s)
        .query_row(
            &format!("SELECT {column} FROM contacts WHERE id = ?1"),
            [id],
            |row| row.get(0),
        )
        .ok()
        .flatten()
}

fn count(s: &Scenario, sql: &str) -> i64 {
    crm(s).query_row(sql, [], |row| row.get(0)).expect("count")
}

/// A card's text with one property replaced (or added) and REV set to
/// `rev`, as a contacts app saving an edit would leave it.
fn edit_card(text: &str, name: &str, value: &str, rev: &str) -> String {
    let mut lines: Vec<String> = text
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .filter(|l| !l.starts_with("REV:"))
        .filter(|l| l.split([':', ';']).next() != Some(name))
        .map(str::to_string)
        .collect();
    let end = lines.len() - 1;
    lines.insert(end, format!("{name}:{value}"));
    lines.insert(end, format!("REV:{rev}"));
    lines.join("\r\n") + "\r\n"
}

#[test]
fn crm_example_candidates_owner_and_events() {
    let s = example();

    // First sync. Ada's card (email in other case, phone in another format)
    // is linked to her CRM row, not duplicated, and the two merge (each
    // side's spellings of email and phone are kept, as lists merge); the
    // two other candidates get cards; Grace (alumni) and the deleted
    // Babbage row stay out; Margaret's card matches no candidate and stays
    // in the folder alone.
    let first = s.sync();
    assert!(
        first
            .stdout
            .contains("contacts: created 0/2, updated 1/1, deleted 0/0"),
        "{first:?}"
    );
    assert_eq!(
        s.files("cards"),
        vec!["ada.vcf", "crm-2.vcf", "crm-4.vcf", "margaret.vcf"]
    );
    let ada = s.read("cards", "ada.vcf");
    assert!(ada.contains("UID:phone-ada"), "{ada}");
    assert_eq!(prop(&ada, "NOTE").as_deref(), Some("maria"), "{ada}");
    assert_eq!(prop(&ada, "ORG").as_deref(), Some("Analytical Engines"));
    assert_eq!(prop(&ada, "TITLE").as_deref(), Some("Engineer"));
    let alan = s.read("cards", "crm-2.vcf");
    assert_eq!(prop(&alan, "FN").as_deref(), Some("Alan Turing"), "{alan}");
    assert_eq!(prop(&alan, "NOTE").as_deref(), Some("li"), "{alan}");
    assert_eq!(
        count(&s, "SELECT count(*) FROM contacts"),
        5,
        "no CRM row added"
    );
    // Events: both interviews to the folder, the stand-up into the CRM.
    assert!(
        first
            .stdout
            .contains("events: created 1/2, updated 0/0, deleted 0/0"),
        "{first:?}"
    );
    assert_eq!(
        s.files("calendar"),
        vec!["ev-1.ics", "ev-2.ics", "standup.ics"]
    );
    assert_eq!(
        count(
            &s,
            "SELECT count(*) FROM events WHERE id = 'standup-1' AND title = 'Recruiting stand-up'"
        ),
        1
    );
    let quiet = s.sync();
    assert_eq!(quiet.stdout.matches(NO_WRITES).count(), 2, "{quiet:?}");

    // The owner is the CRM's: the folder's later edit of it is overridden,
    // while its later edit of the title wins under `newest`.
    crm_write(
        &s,
        "UPDATE contacts SET owner = 'maria', job_title = 'Codebreaker', updated_at = NOW
         WHERE id = 'crm-2'",
    );
    let card = edit_card(
        &s.read("cards", "crm-2.vcf"),
        "NOTE",
        "bob",
        "20991231T000000Z",
    );
    let card = edit_card(&card, "TITLE", "Head of research", "20991231T000000Z");
    s.put("cards", "crm-2.vcf", &card);
    s.sync();
    let alan = s.read("cards", "crm-2.vcf");
    assert_eq!(prop(&alan, "NOTE").as_deref(), Some("maria"), "{alan}");
    assert_eq!(prop(&alan, "TITLE").as_deref(), Some("Head of research"));
    assert_eq!(contact(&s, "crm-2", "owner").as_deref(), Some("maria"));
    assert_eq!(
        contact(&s, "crm-2", "job_title").as_deref(),
        Some("Head of research")
    );

    // Untagged in the CRM: unlinked, both copies kept, later edits stay put.
    crm_write(
        &s,
        "UPDATE contacts SET tags = 'hired', job_title = 'Hired', updated_at = NOW
         WHERE id = 'crm-4'",
    );
    let before = s.read("cards", "crm-4.vcf");
    s.sync();
    crm_write(
        &s,
        "UPDATE contacts SET company = 'Elsewhere', updated_at = NOW WHERE id = 'crm-4'",
    );
    s.sync();
    assert_eq!(s.read("cards", "crm-4.vcf"), before);
    assert_eq!(contact(&s, "crm-4", "tags").as_deref(), Some("hired"));
    let status = s.tandem(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    let linked = v["pairs"]
        .as_array()
        .and_then(|pairs| pairs.iter().find(|p| p["name"] == "contacts"))
        .map(|p| p["linked"].clone());
    assert_eq!(linked, Some(serde_json::json!(2)), "{status:?}");

    // A new tagged row gets a card.
    crm_write(
        &s,
        "INSERT INTO contacts (id, first_name, last_name, email, tags, owner, updated_at)
         VALUES ('crm-6', 'Mary', 'Jackson', 'mary@example.org', 'active-candidate', 'li', NOW)",
    );
    let run = s.sync();
    assert!(
        run.stdout
            .contains("contacts: created 0/1, updated 0/0, deleted 0/0"),
        "{run:?}"
    );
    let mary = s.read("cards", "crm-6.vcf");
    assert_eq!(prop(&mary, "FN").as_deref(), Some("Mary Jackson"), "{mary}");
    assert_eq!(prop(&mary, "NOTE").as_deref(), Some("li"), "{mary}");

    // And a rerun is quiet on both pairs.
    let again = s.sync();
    assert_eq!(again.stdout.matches(NO_WRITES).count(), 2, "{again:?}");
}
