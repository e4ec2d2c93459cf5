//! Scenarios for the mapping step: per-field owners and directions,
//! computed fields, `only_fields`, filters entering and leaving, the
//! duplicate-matching ladder and update-existing-only pairs.

use crate::harness::{card, prop, props, Scenario};

const NO_WRITES: &str = "created 0/0, updated 0/0, deleted 0/0";

fn conflicts(s: &Scenario) -> serde_json::Value {
    let list = s.tandem(&["conflicts", "--json"]);
    serde_json::from_str(&list.stdout).expect("json")
}

#[test]
fn crm_owner_wins_its_field_under_a_table_rule() {
    let s = Scenario::new(
        "contact",
        "conflict = \"b\"\n[pairs.fields]\norg = { owner = \"a\" }\n",
    );
    s.put(
        "a",
        "u1.vcf",
        &card("u1", &["FN:Ada", "ORG:Acme", "TITLE:Dev"]),
    );
    s.sync();
    // Both sides change org and title; A owns org, B wins the rest.
    s.put(
        "a",
        "u1.vcf",
        &card("u1", &["FN:Ada", "ORG:Initech", "TITLE:Lead"]),
    );
    s.put(
        "b",
        "u1.vcf",
        &card("u1", &["FN:Ada", "ORG:Globex", "TITLE:Boss"]),
    );
    s.sync();
    for side in ["a", "b"] {
        let text = s.read(side, "u1.vcf");
        assert_eq!(prop(&text, "ORG").as_deref(), Some("Initech"), "{side}");
        assert_eq!(prop(&text, "TITLE").as_deref(), Some("Boss"), "{side}");
    }
}

#[test]
fn per_field_direction_keeps_target_edits_without_flowing_back() {
    let s = Scenario::new("contact", "[pairs.fields.title]\ndirection = \"a-to-b\"\n");
    s.put("a", "u1.vcf", &card("u1", &["FN:Ada", "TITLE:Dev"]));
    s.sync();
    s.put("b", "u1.vcf", &card("u1", &["FN:Ada", "TITLE:Intern"]));
    s.sync();
    assert_eq!(
        prop(&s.read("a", "u1.vcf"), "TITLE").as_deref(),
        Some("Dev")
    );
    assert_eq!(
        prop(&s.read("b", "u1.vcf"), "TITLE").as_deref(),
        Some("Intern")
    );
    s.put("a", "u1.vcf", &card("u1", &["FN:Ada", "TITLE:Lead"]));
    s.sync();
    assert_eq!(
        prop(&s.read("b", "u1.vcf"), "TITLE").as_deref(),
        Some("Lead")
    );
}

#[test]
fn computed_field_settles_without_ping_pong() {
    let s = Scenario::new(
        "contact",
        "[pairs.map.full_name]\nto_b = \"given_name + ' ' + family_name\"\n\
         [pairs.map.note]\nto_b_const = \"synced by tandem\"\n",
    );
    s.put(
        "a",
        "u1.vcf",
        &card("u1", &["FN:LOVELACE Ada", "N:Lovelace;Ada;;;", "TITLE:Dev"]),
    );
    s.sync();
    let b = s.read("b", "u1.vcf");
    assert_eq!(prop(&b, "FN").as_deref(), Some("Ada Lovelace"), "{b}");
    assert_eq!(prop(&b, "NOTE").as_deref(), Some("synced by tandem"), "{b}");
    // A keeps its own FN: the computed field flows to B only.
    assert_eq!(
        prop(&s.read("a", "u1.vcf"), "FN").as_deref(),
        Some("LOVELACE Ada")
    );
    s.sync();
    let third = s.sync();
    assert!(third.stdout.contains(NO_WRITES), "{third:?}");

    // A name change on A recomputes B's FN in the same run.
    s.put(
        "a",
        "u1.vcf",
        &card("u1", &["FN:LOVELACE Ada", "N:King;Ada;;;", "TITLE:Dev"]),
    );
    s.sync();
    assert_eq!(
        prop(&s.read("b", "u1.vcf"), "FN").as_deref(),
        Some("Ada King")
    );
    let again = s.sync();
    assert!(again.stdout.contains(NO_WRITES), "{again:?}");
}

#[test]
fn only_fields_syncs_a_subset() {
    let s = Scenario::new("contact", "only_fields = [\"full_name\", \"emails\"]\n");
    s.put(
        "a",
        "u1.vcf",
        &card("u1", &["FN:Ada", "TITLE:Dev", "EMAIL:ada@example.org"]),
    );
    s.sync();
    let b = s.read("b", "u1.vcf");
    assert_eq!(props(&b, "EMAIL"), vec!["ada@example.org"]);
    assert_eq!(prop(&b, "TITLE"), None, "{b}");
    s.put(
        "b",
        "u1.vcf",
        &card(
            "u1",
            &[
                "FN:Ada",
                "TITLE:Boss",
                "EMAIL:ada@example.org",
                "EMAIL:ada@home.org",
            ],
        ),
    );
    s.sync();
    let a = s.read("a", "u1.vcf");
    assert_eq!(prop(&a, "TITLE").as_deref(), Some("Dev"), "{a}");
    assert_eq!(props(&a, "EMAIL"), vec!["ada@example.org", "ada@home.org"]);
}

fn candidates(on_leave: &str) -> Scenario {
    let s = Scenario::new(
        "contact",
        &format!("filter_a = \"'active-candidate' in categories\"\non_leave = \"{on_leave}\"\n"),
    );
    s.put(
        "a",
        "u1.vcf",
        &card("u1", &["FN:Ada", "CATEGORIES:active-candidate"]),
    );
    s.put(
        "a",
        "u2.vcf",
        &card("u2", &["FN:Alan", "CATEGORIES:alumni"]),
    );
    s.sync();
    assert_eq!(s.files("b"), vec!["u1.vcf"]);
    // u2 enters the filter: created on B.
    s.put(
        "a",
        "u2.vcf",
        &card("u2", &["FN:Alan", "CATEGORIES:alumni,active-candidate"]),
    );
    s.sync();
    assert_eq!(s.files("b"), vec!["u1.vcf", "u2.vcf"]);
    // u1 leaves it.
    s.put("a", "u1.vcf", &card("u1", &["FN:Ada", "TITLE:Hired"]));
    s.sync();
    s
}

#[test]
fn filter_enter_and_leave_keeps_by_default() {
    let s = candidates("keep");
    assert_eq!(s.files("b"), vec!["u1.vcf", "u2.vcf"]);
    // Unlinked: later edits no longer flow.
    assert_eq!(prop(&s.read("b", "u1.vcf"), "TITLE"), None);
    let again = s.sync();
    assert!(again.stdout.contains(NO_WRITES), "{again:?}");
}

#[test]
fn filter_leave_with_delete_removes_the_twin() {
    let s = candidates("delete");
    assert_eq!(s.files("b"), vec!["u2.vcf"]);
    assert!(s.exists("a", "u1.vcf"));
}

#[test]
fn match_ladder_links_the_same_person_and_holds_ambiguous_ones() {
    let s = Scenario::new(
        "contact",
        "match = [\"email\", \"phone\", \"name\"]\ndefault_region = \"US\"\n",
    );
    s.put(
        "a",
        "crm-1.vcf",
        &card(
            "crm-1",
            &[
                "FN:Ada Lovelace",
                "EMAIL:ADA@Example.org",
                "TEL:+1 202 555 0143",
                "TITLE:Dev",
            ],
        ),
    );
    s.put(
        "b",
        "phone-9.vcf",
        &card(
            "phone-9",
            &[
                "FN:Ada Lovelace",
                "EMAIL:ada@example.org",
                "TEL:(202) 555-0143",
                "NOTE:met at expo",
            ],
        ),
    );
    // Only a phone in common, formatted differently.
    s.put(
        "a",
        "crm-2.vcf",
        &card("crm-2", &["FN:Alan Turing", "TEL:202.555.0199"]),
    );
    s.put(
        "b",
        "phone-7.vcf",
        &card("phone-7", &["FN:A. Turing", "TEL:+12025550199"]),
    );
    // Two CRM records share an email with one phone contact.
    s.put(
        "a",
        "crm-3.vcf",
        &card("crm-3", &["FN:Grace Hopper", "EMAIL:g@navy.mil"]),
    );
    s.put(
        "a",
        "crm-4.vcf",
        &card("crm-4", &["FN:Grace B. Hopper", "EMAIL:G@navy.mil"]),
    );
    s.put(
        "b",
        "phone-3.vcf",
        &card("phone-3", &["FN:Grace", "EMAIL:g@navy.mil"]),
    );
    let run = s.tandem(&["sync"]);
    assert!(run.code == 0, "{run:?}");

    // Linked, not duplicated: each side keeps its own file, merged.
    assert_eq!(
        s.files("a"),
        vec!["crm-1.vcf", "crm-2.vcf", "crm-3.vcf", "crm-4.vcf"]
    );
    assert_eq!(
        s.files("b"),
        vec!["phone-3.vcf", "phone-7.vcf", "phone-9.vcf"]
    );
    assert_eq!(
        prop(&s.read("a", "crm-1.vcf"), "NOTE").as_deref(),
        Some("met at expo")
    );
    assert_eq!(
        prop(&s.read("b", "phone-9.vcf"), "TITLE").as_deref(),
        Some("Dev")
    );
    // The ambiguous one waits in the inbox.
    let inbox = conflicts(&s);
    assert_eq!(
        inbox["conflicts"].as_array().map(Vec::len),
        Some(1),
        "{inbox}"
    );
    assert_eq!(inbox["conflicts"][0]["item"], "phone-3");
    assert_eq!(
        inbox["conflicts"][0]["fields"],
        serde_json::json!(["match:email"])
    );

    // Later runs: nothing to do, no twins, edits flow across the link.
    let again = s.sync();
    assert!(again.stdout.contains(NO_WRITES), "{again:?}");
    s.put(
        "b",
        "phone-9.vcf",
        &card(
            "phone-9",
            &[
                "FN:Ada Lovelace",
                "EMAIL:ada@example.org",
                "TEL:(202) 555-0143",
                "NOTE:met at expo",
                "TITLE:Lead",
            ],
        ),
    );
    s.sync();
    assert_eq!(
        prop(&s.read("a", "crm-1.vcf"), "TITLE").as_deref(),
        Some("Lead")
    );
    assert_eq!(s.files("a").len(), 4);
    assert_eq!(s.files("b").len(), 3);
}

#[test]
fn update_existing_only_creates_nothing() {
    let s = Scenario::new("contact", "");
    s.put("a", "u1.vcf", &card("u1", &["FN:Ada", "TITLE:Dev"]));
    s.sync();
    s.config("contact", "create = \"none\"\n");
    s.put("a", "u1.vcf", &card("u1", &["FN:Ada", "TITLE:Lead"]));
    s.put("a", "u2.vcf", &card("u2", &["FN:Alan"]));
    s.put("b", "u3.vcf", &card("u3", &["FN:Grace"]));
    s.sync();
    assert_eq!(s.files("a"), vec!["u1.vcf", "u2.vcf"]);
    assert_eq!(s.files("b"), vec!["u1.vcf", "u3.vcf"]);
    assert_eq!(
        prop(&s.read("b", "u1.vcf"), "TITLE").as_deref(),
        Some("Lead")
    );
}

/// Ten tagged contacts synced under a filter, then the filter is edited so
/// that none of them match any more.
fn filter_changed_under(on_leave: &str) -> Scenario {
    let pair = |filter: &str| {
        format!("filter_a = \"{filter}\"\non_leave = \"{on_leave}\"\nmax_delete = \"50%\"\n")
    };
    let s = Scenario::new("contact", &pair("'active-candidate' in categories"));
    for i in 0..10 {
        s.put(
            "a",
            &format!("u{i}.vcf"),
            &card(
                &format!("u{i}"),
                &["FN:Someone", "CATEGORIES:active-candidate"],
            ),
        );
    }
    s.sync();
    assert_eq!(s.files("b").len(), 10);
    // A typo in the edited filter: nothing matches it.
    s.config("contact", &pair("'active-candidtae' in categories"));
    s
}

#[test]
fn a_changed_filter_deletes_nothing_by_itself() {
    // Membership is decided when a record changes: editing the filter
    // (here into one that matches nothing) writes nothing, under either
    // `on_leave`, so a typo in a filter can never empty the other side.
    for on_leave in ["keep", "delete"] {
        let s = filter_changed_under(on_leave);
        let run = s.sync();
        assert!(run.stdout.contains(NO_WRITES), "{on_leave}: {run:?}");
        assert_eq!(s.files("a").len(), 10);
        assert_eq!(s.files("b").len(), 10);
        // A record edited afterwards is judged by the new filter.
        s.put(
            "a",
            "u0.vcf",
            &card("u0", &["FN:Someone else", "CATEGORIES:active-candidate"]),
        );
        s.sync();
        assert_eq!(s.files("a").len(), 10);
        let expect = if on_leave == "delete" { 9 } else { 10 };
        assert_eq!(s.files("b").len(), expect, "{on_leave}");
    }
}
