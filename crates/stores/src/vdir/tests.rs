//! The vdir store against the shared conformance suite, plus what only a
//! folder of files has: file naming, native text kept as is, listings that
//! read no file.

use super::*;
use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;
use tandem_record::{Kind, Value};
use tandem_store::conformance;
use tempfile::TempDir;

fn store_at(path: &Path, kind: Kind) -> VdirStore {
    let config = VdirConfig {
        path: path.to_path_buf(),
        extension: None,
    };
    VdirStore::new(config, Format::for_kind(kind)).unwrap()
}

/// A temp folder with an empty vdir `book` inside, so tests can check that
/// nothing is written beside it.
fn vdir(kind: Kind) -> (TempDir, PathBuf, VdirStore) {
    let temp = TempDir::new().unwrap();
    let root = temp.path().join("book");
    fs::create_dir(&root).unwrap();
    let store = store_at(&root, kind);
    (temp, root, store)
}

async fn run_conformance(kind: Kind) {
    let temp = TempDir::new().unwrap();
    let next = AtomicUsize::new(0);
    let made = Mutex::new(Vec::new());
    conformance::run(
        || {
            let root = temp
                .path()
                .join(next.fetch_add(1, Ordering::Relaxed).to_string());
            fs::create_dir(&root).unwrap();
            made.lock().unwrap().push(root.clone());
            let store = store_at(&root, kind);
            async move { store }
        },
        kind,
    )
    .await;
    // Every write went through a temp file; none may be left behind.
    for root in made.into_inner().unwrap() {
        for entry in fs::read_dir(&root).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(!name.ends_with(".tmp"), "{name} left in {}", root.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_pass_the_conformance_suite() {
    run_conformance(Kind::Contact).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_pass_the_conformance_suite() {
    run_conformance(Kind::Event).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_pass_the_conformance_suite() {
    run_conformance(Kind::Task).await;
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn contact(uid: &str) -> Record {
    Record::new(Kind::Contact, uid).with("full_name", Value::text("Ada Lovelace"))
}

fn new_item(record: Record) -> NewItem {
    NewItem { record, raw: None }
}

fn ids(listed: &[Listed]) -> Vec<String> {
    let mut ids: Vec<String> = listed.iter().map(|l| l.id.clone()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn unsafe_uids_get_generated_names_inside_the_folder() {
    let (temp, root, store) = vdir(Kind::Contact);
    let long = "u".repeat(500);
    let uids = [
        "../../etc/passwd",
        "a/b",
        "x\u{0}y",
        long.as_str(),
        ".hidden",
    ];
    let mut written = Vec::new();
    for uid in uids {
        let w = store.create(ROOT, &new_item(contact(uid))).await.unwrap();
        assert_eq!(
            w.id.len(),
            "0123456789abcdef0123456789abcdef.vcf".len(),
            "{uid:?}"
        );
        assert!(
            w.id.ends_with(".vcf") && !w.id.starts_with('.'),
            "{uid:?}: {}",
            w.id
        );
        let again = store.create(ROOT, &new_item(contact(uid))).await.unwrap();
        assert_eq!(again, w, "re-creating {uid:?} is idempotent");
        written.push(w);
    }
    assert_eq!(
        names_in(temp.path()),
        ["book"],
        "nothing escaped the folder"
    );
    let mut want: Vec<String> = written.iter().map(|w| w.id.clone()).collect();
    want.sort();
    assert_eq!(names_in(&root), want);
    assert_eq!(ids(&store.list(ROOT).await.unwrap()), want);

    let fetched = store.fetch(ROOT, &want).await.unwrap();
    let mut back: Vec<String> = fetched.into_iter().map(|r| r.unwrap().record.uid).collect();
    back.sort();
    let mut sent: Vec<String> = uids.iter().map(|u| u.to_string()).collect();
    sent.sort();
    assert_eq!(back, sent);
}

#[tokio::test]
async fn safe_uids_name_the_file_and_case_matters() {
    let (_temp, root, store) = vdir(Kind::Contact);
    let upper = store.create(ROOT, &new_item(contact("Ada"))).await.unwrap();
    let lower = store.create(ROOT, &new_item(contact("ada"))).await.unwrap();
    assert_eq!(upper.id, "Ada.vcf");
    assert_eq!(lower.id, "ada.vcf");
    assert_eq!(names_in(&root), ["Ada.vcf", "ada.vcf"]);
    assert_eq!(store.list(ROOT).await.unwrap().len(), 2);
}

/// Every hostile UID gets a generated name inside the folder, its item is
/// read back whole, and a second create of it finds it (no twin).
#[tokio::test]
async fn hostile_uids_stay_inside_the_folder() {
    let (temp, root, store) = vdir(Kind::Contact);
    let long = "x".repeat(5000);
    let uids = [
        "..",
        "../..",
        "/etc/passwd",
        "a\\b",
        "nul\u{0}",
        "line\nbreak",
        "esc\u{1b}[2J",
        "del\u{7f}",
        "tab\there",
        "spoof\u{202e}fdp.exe",
        "zero\u{200b}width",
        long.as_str(),
    ];
    for uid in uids {
        let written = store.create(ROOT, &new_item(contact(uid))).await.unwrap();
        assert_eq!(written.id.len(), 36, "{uid:?}: {}", written.id);
        let again = store.create(ROOT, &new_item(contact(uid))).await.unwrap();
        assert_eq!(again, written, "{uid:?}");
    }
    assert_eq!(
        names_in(temp.path()),
        ["book"],
        "nothing escaped the folder"
    );
    let names = names_in(&root);
    assert_eq!(names.len(), uids.len());
    let fetched = store.fetch(ROOT, &names).await.unwrap();
    let mut back: Vec<String> = fetched.into_iter().map(|f| f.unwrap().record.uid).collect();
    back.sort();
    let mut sent: Vec<String> = uids.iter().map(|u| u.to_string()).collect();
    sent.sort();
    assert_eq!(back, sent);
}

/// UIDs differing only by case are two items in two files on a
/// case-sensitive filesystem. (On a case-insensitive one both names are one
/// file: the second create finds the first item there and is refused as
/// `AlreadyExists`, so the first is never overwritten — see
/// `create_refuses_a_file_holding_another_item`.)
#[tokio::test]
async fn uids_differing_by_case_are_two_items() {
    let (_temp, root, store) = vdir(Kind::Contact);
    for uid in ["Alice", "alice", "ALICE"] {
        store
            .create(ROOT, &new_item(contact(uid).with("note", Value::text(uid))))
            .await
            .unwrap();
    }
    assert_eq!(names_in(&root), ["ALICE.vcf", "Alice.vcf", "alice.vcf"]);
    for uid in ["Alice", "alice", "ALICE"] {
        let item = store
            .fetch(ROOT, &[format!("{uid}.vcf")])
            .await
            .unwrap()
            .remove(0)
            .unwrap();
        assert_eq!(item.record.uid, uid);
        assert_eq!(item.record.fields.get("note"), Some(&Value::text(uid)));
    }
}

const CARD_WITH_EXTRAS: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:extras\r\n\
    FN:Grace Hopper\r\nN:Hopper;Grace;;;\r\nNOTE:first note\r\n\
    X-UNKNOWN-THING;X-PARAM=1:keep me\r\nX-ABLABEL:also kept\r\nEND:VCARD\r\n";

#[tokio::test]
async fn unknown_properties_survive_an_update() {
    let (_temp, root, store) = vdir(Kind::Contact);
    fs::write(root.join("extras.vcf"), CARD_WITH_EXTRAS).unwrap();
    let item = store
        .fetch(ROOT, &["extras.vcf".to_string()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(item.record.uid, "extras");
    let change = FieldChange {
        field: "note".to_string(),
        value: Some(Value::text("second note")),
    };
    let version = item.version.clone();
    store
        .update(ROOT, &item, &version, &[change])
        .await
        .unwrap();
    let text = fs::read_to_string(root.join("extras.vcf")).unwrap();
    assert!(text.contains("X-UNKNOWN-THING;X-PARAM=1:keep me"), "{text}");
    assert!(text.contains("X-ABLABEL:also kept"), "{text}");
    assert!(
        text.contains("second note") && !text.contains("first note"),
        "{text}"
    );

    // Without the text in hand the store reads the file itself.
    let mut bare = store
        .fetch(ROOT, &["extras.vcf".to_string()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    bare.raw = None;
    let change = FieldChange {
        field: "note".to_string(),
        value: Some(Value::text("third note")),
    };
    let version = bare.version.clone();
    store
        .update(ROOT, &bare, &version, &[change])
        .await
        .unwrap();
    let text = fs::read_to_string(root.join("extras.vcf")).unwrap();
    assert!(text.contains("X-UNKNOWN-THING;X-PARAM=1:keep me"), "{text}");
    assert!(text.contains("third note"), "{text}");
}

const EVENT_WITH_EXTRAS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n\
    PRODID:-//Some App//EN\r\nBEGIN:VEVENT\r\nUID:meeting\r\n\
    DTSTAMP:20250101T000000Z\r\nDTSTART:20250314T093000Z\r\n\
    DTEND:20250314T100000Z\r\nSUMMARY:Old title\r\nX-APP-COLOR:teal\r\n\
    BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\nTRIGGER:-PT15M\r\n\
    END:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

#[tokio::test]
async fn calendar_extras_survive_an_update() {
    let (_temp, root, store) = vdir(Kind::Event);
    fs::write(root.join("meeting.ics"), EVENT_WITH_EXTRAS).unwrap();
    let item = store
        .fetch(ROOT, &["meeting.ics".to_string()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(item.record.kind, Kind::Event);
    let change = FieldChange {
        field: "summary".to_string(),
        value: Some(Value::text("New title")),
    };
    let version = item.version.clone();
    store
        .update(ROOT, &item, &version, &[change])
        .await
        .unwrap();
    let text = fs::read_to_string(root.join("meeting.ics")).unwrap();
    for kept in [
        "X-APP-COLOR:teal",
        "BEGIN:VALARM",
        "TRIGGER:-PT15M",
        "PRODID:-//Some App//EN",
    ] {
        assert!(text.contains(kept), "{kept} lost:\n{text}");
    }
    assert!(
        text.contains("SUMMARY:New title") && !text.contains("Old title"),
        "{text}"
    );
}

#[tokio::test]
async fn text_in_another_format_is_rendered_anew() {
    let (_temp, root, store) = vdir(Kind::Contact);
    let item = NewItem {
        record: contact("from-calendar"),
        raw: Some(Raw {
            media_type: "text/calendar".to_string(),
            text: EVENT_WITH_EXTRAS.to_string(),
        }),
    };
    let written = store.create(ROOT, &item).await.unwrap();
    let text = fs::read_to_string(root.join(&written.id)).unwrap();
    assert!(text.starts_with("BEGIN:VCARD"), "{text}");
    assert!(text.contains("from-calendar"), "{text}");

    // The store's own format, with parameters, is written as is.
    let card = CARD_WITH_EXTRAS.replace("UID:extras", "UID:as-is");
    let item = NewItem {
        record: contact("as-is"),
        raw: Some(Raw {
            media_type: "text/vcard; charset=utf-8".to_string(),
            text: card.clone(),
        }),
    };
    let written = store.create(ROOT, &item).await.unwrap();
    assert_eq!(fs::read_to_string(root.join(&written.id)).unwrap(), card);
}

#[tokio::test]
async fn listing_reads_no_file_and_fetch_names_a_bad_one() {
    let (_temp, root, store) = vdir(Kind::Contact);
    fs::write(root.join("garbage.vcf"), "this is not a vCard\n\u{1}\u{2}").unwrap();
    let listed = store.list(ROOT).await.unwrap();
    assert_eq!(ids(&listed), ["garbage.vcf"]);
    let fetched = store
        .fetch(ROOT, &["garbage.vcf".to_string()])
        .await
        .unwrap();
    let err = fetched[0].as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(err.id, "garbage.vcf");
    let path = root.join("garbage.vcf");
    assert!(err.message.contains(&path.display().to_string()), "{err}");

    // An unreadable file lists too: only its metadata is looked at.
    fs::write(root.join("binary.vcf"), [0xff, 0xfe, 0x00]).unwrap();
    assert_eq!(store.list(ROOT).await.unwrap().len(), 2);
    let fetched = store
        .fetch(ROOT, &["binary.vcf".to_string()])
        .await
        .unwrap();
    assert_eq!(fetched[0].as_ref().unwrap_err().kind, ErrorKind::Invalid);
}

#[tokio::test]
async fn only_item_files_are_listed() {
    let (_temp, root, store) = vdir(Kind::Contact);
    store
        .create(ROOT, &new_item(contact("kept")))
        .await
        .unwrap();
    for name in [
        ".kept.vcf.123-0.tmp",
        ".hidden.vcf",
        "notes.txt",
        "event.ics",
        "kept.vcf~",
    ] {
        fs::write(root.join(name), "x").unwrap();
    }
    fs::create_dir(root.join("work")).unwrap();
    fs::create_dir(root.join(".git")).unwrap();
    fs::create_dir(root.join("folder.vcf")).unwrap();
    assert_eq!(ids(&store.list(ROOT).await.unwrap()), ["kept.vcf"]);
    assert_eq!(
        store.collections().await.unwrap(),
        ["", "folder.vcf", "work"]
    );
}

#[tokio::test]
async fn outside_writes_move_the_version() {
    let (_temp, root, store) = vdir(Kind::Contact);
    let written = store.create(ROOT, &new_item(contact("ada"))).await.unwrap();
    let path = root.join(&written.id);
    let item = store
        .fetch(ROOT, std::slice::from_ref(&written.id))
        .await
        .unwrap()
        .remove(0)
        .unwrap();

    // An editor that writes a new file and renames it over the old one.
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("Ada Lovelace", "Ada King");
    fs::write(root.join(".edit"), &text).unwrap();
    fs::rename(root.join(".edit"), &path).unwrap();
    let listed = store.list(ROOT).await.unwrap();
    assert_ne!(listed[0].version, written.version);

    // Our stale version is refused and the outside edit stays.
    let change = FieldChange {
        field: "full_name".to_string(),
        value: Some(Value::text("Augusta")),
    };
    let err = store
        .update(ROOT, &item, &written.version, &[change])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::PreconditionFailed);
    assert!(err.message.contains(&path.display().to_string()), "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    let err = store
        .delete(ROOT, &written.id, &written.version)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::PreconditionFailed);
    assert!(path.exists());

    // An editor that rewrites in place.
    let before = store.list(ROOT).await.unwrap().remove(0).version;
    fs::write(&path, text.replace("Ada King", "Ada K.")).unwrap();
    let after = store.list(ROOT).await.unwrap().remove(0).version;
    assert_ne!(before, after);
}

#[tokio::test]
async fn create_refuses_a_file_holding_another_item() {
    let (_temp, root, store) = vdir(Kind::Contact);
    let other = CARD_WITH_EXTRAS.replace("UID:extras", "UID:someone-else");
    fs::write(root.join("extras.vcf"), &other).unwrap();
    let err = store
        .create(ROOT, &new_item(contact("extras")))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
    assert_eq!(err.id.as_deref(), Some("extras.vcf"));
    assert!(err.message.contains("someone-else"), "{err}");
    assert_eq!(fs::read_to_string(root.join("extras.vcf")).unwrap(), other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creators_never_clobber() {
    for round in 0..20 {
        let (_temp, root, store) = vdir(Kind::Contact);
        // Half the rounds through the temp file and rename.
        let rename_only = &store.shared.creation.rename_only;
        rename_only.store(round % 2 == 1, Ordering::Relaxed);
        let uid = format!("race-{round}");
        let a = contact(&uid).with("note", Value::text("from a"));
        let b = contact(&uid).with("note", Value::text("from b"));
        let (sa, sb) = (store.clone(), store.clone());
        let ta = tokio::spawn(async move { sa.create(ROOT, &new_item(a)).await });
        let tb = tokio::spawn(async move { sb.create(ROOT, &new_item(b)).await });
        let (ra, rb) = (ta.await.unwrap(), tb.await.unwrap());
        assert!(
            ra.is_ok() != rb.is_ok(),
            "exactly one creator wins: {ra:?} {rb:?}"
        );
        let loser = ra.as_ref().err().or(rb.as_ref().err()).unwrap();
        assert_eq!(loser.kind, ErrorKind::AlreadyExists);
        let text = fs::read_to_string(root.join(format!("{uid}.vcf"))).unwrap();
        let winner_note = if ra.is_ok() { "from a" } else { "from b" };
        assert!(text.contains(winner_note), "{text}");
        assert_eq!(names_in(&root), [format!("{uid}.vcf")]);
    }
}

/// The ways a create can go: an anonymous file linked by its descriptor,
/// or through `/proc/self/fd`, or a temp file renamed into place.
const CREATE_WAYS: [(&str, bool, bool); 3] = [
    ("anonymous file", false, false),
    ("anonymous file linked through /proc", false, true),
    ("temp file and rename", true, false),
];

/// True when `dir` takes anonymous files (`O_TMPFILE`).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn takes_anonymous_files(dir: &Path) -> bool {
    use rustix::fs::{Mode, OFlags};
    rustix::fs::open(
        dir,
        OFlags::WRONLY | OFlags::TMPFILE,
        Mode::from_raw_mode(0o600),
    )
    .is_ok()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn takes_anonymous_files(_: &Path) -> bool {
    false
}

#[tokio::test]
async fn creates_publish_whole_files_and_never_clobber_every_way() {
    use std::os::unix::fs::PermissionsExt;
    for (way, rename_only, link_by_proc) in CREATE_WAYS {
        let (temp, root, store) = vdir(Kind::Contact);
        let creation = &store.shared.creation;
        creation.rename_only.store(rename_only, Ordering::Relaxed);
        creation.link_by_proc.store(link_by_proc, Ordering::Relaxed);

        let written = store.create(ROOT, &new_item(contact("ada"))).await.unwrap();
        let path = root.join(&written.id);
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("FN:Ada Lovelace\r\n") && text.ends_with("END:VCARD\r\n"),
            "{way}: {text}"
        );
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(written.version, version_of(&meta), "{way}");
        assert_eq!(store.list(ROOT).await.unwrap()[0].version, written.version);
        // The mode any program writing a file gets (0644 under umask 022).
        fs::write(temp.path().join("reference"), "x").unwrap();
        let reference = fs::metadata(temp.path().join("reference")).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            reference.permissions().mode() & 0o7777,
            "{way}"
        );

        // Another item's file under the same name stays untouched.
        let other = CARD_WITH_EXTRAS.replace("UID:extras", "UID:someone-else");
        fs::write(root.join("bob.vcf"), &other).unwrap();
        let before = version_of(&fs::metadata(root.join("bob.vcf")).unwrap());
        let err = store
            .create(ROOT, &new_item(contact("bob")))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::AlreadyExists, "{way}: {err}");
        assert_eq!(fs::read_to_string(root.join("bob.vcf")).unwrap(), other);
        assert_eq!(
            version_of(&fs::metadata(root.join("bob.vcf")).unwrap()),
            before,
            "{way}"
        );
        // Creating the same item again finds it and changes nothing.
        let again = store.create(ROOT, &new_item(contact("ada"))).await.unwrap();
        assert_eq!(again, written, "{way}");
        assert_eq!(
            names_in(&root),
            ["ada.vcf", "bob.vcf"],
            "{way}: temp files left"
        );

        // A forced fallback stays; where anonymous files work, they are used.
        if rename_only {
            assert!(creation.rename_only.load(Ordering::Relaxed), "{way}");
        } else {
            assert_eq!(
                creation.rename_only.load(Ordering::Relaxed),
                !takes_anonymous_files(&root),
                "{way}"
            );
        }
        if link_by_proc {
            assert!(creation.link_by_proc.load(Ordering::Relaxed), "{way}");
        }
    }
}

#[tokio::test]
async fn creates_into_a_missing_or_non_folder_fail_every_way() {
    for (way, rename_only, link_by_proc) in CREATE_WAYS {
        let (_temp, root, store) = vdir(Kind::Contact);
        let creation = &store.shared.creation;
        creation.rename_only.store(rename_only, Ordering::Relaxed);
        creation.link_by_proc.store(link_by_proc, Ordering::Relaxed);
        let err = store
            .create("missing", &new_item(contact("a")))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound, "{way}: {err}");
        fs::write(root.join("plain"), "x").unwrap();
        let err = store
            .create("plain", &new_item(contact("a")))
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "{way}: {err}");
        assert!(err.message.contains("is not a folder"), "{way}: {err}");
        assert_eq!(names_in(&root), ["plain"], "{way}");
    }
}

fn sorted(mut listed: Vec<Listed>) -> Vec<Listed> {
    listed.sort_by(|a, b| a.id.cmp(&b.id));
    listed
}

#[tokio::test]
async fn the_root_listing_reuses_the_names_collections_read() {
    let (_temp, root, store) = vdir(Kind::Contact);
    for uid in ["a", "b", "c"] {
        store.create(ROOT, &new_item(contact(uid))).await.unwrap();
    }
    fs::create_dir(root.join("work")).unwrap();
    fs::create_dir(root.join("folder.vcf")).unwrap();
    fs::write(root.join("notes.txt"), "x").unwrap();
    fs::write(root.join(".hidden.vcf"), "x").unwrap();
    let card = |uid: &str| CARD_WITH_EXTRAS.replace("UID:extras", &format!("UID:{uid}"));
    let alone = sorted(store.list(ROOT).await.unwrap());
    assert_eq!(ids(&alone), ["a.vcf", "b.vcf", "c.vcf"]);
    assert_eq!(
        store.collections().await.unwrap(),
        ["", "folder.vcf", "work"]
    );
    assert_eq!(sorted(store.list(ROOT).await.unwrap()), alone);

    // The names are those of the read: a file gone since is skipped, one
    // made since by another program shows in the next listing, which reads
    // the folder again.
    store.collections().await.unwrap();
    fs::remove_file(root.join("a.vcf")).unwrap();
    fs::write(root.join("late.vcf"), card("late")).unwrap();
    assert_eq!(ids(&store.list(ROOT).await.unwrap()), ["b.vcf", "c.vcf"]);
    assert_eq!(
        ids(&store.list(ROOT).await.unwrap()),
        ["b.vcf", "c.vcf", "late.vcf"]
    );
    // Subfolders are always read.
    fs::write(root.join("work").join("w.vcf"), card("w")).unwrap();
    store.collections().await.unwrap();
    assert_eq!(ids(&store.list("work").await.unwrap()), ["w.vcf"]);

    // Any write through the store in between makes the listing read again.
    store.collections().await.unwrap();
    fs::write(root.join("outside.vcf"), card("outside")).unwrap();
    store.create(ROOT, &new_item(contact("d"))).await.unwrap();
    let all = ["b.vcf", "c.vcf", "d.vcf", "late.vcf", "outside.vcf"];
    assert_eq!(ids(&store.list(ROOT).await.unwrap()), all);
    let d = store
        .list(ROOT)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.id == "d.vcf")
        .unwrap();
    store.collections().await.unwrap();
    store.delete(ROOT, "d.vcf", &d.version).await.unwrap();
    fs::write(root.join("outside2.vcf"), card("outside2")).unwrap();
    let listed = ids(&store.list(ROOT).await.unwrap());
    assert!(listed.contains(&"outside2.vcf".to_string()) && !listed.contains(&"d.vcf".to_string()));
    store.collections().await.unwrap();
    store.flush().await.unwrap();
    fs::write(root.join("outside3.vcf"), card("outside3")).unwrap();
    assert!(ids(&store.list(ROOT).await.unwrap()).contains(&"outside3.vcf".to_string()));

    // Names older than the time bound are not used.
    store.collections().await.unwrap();
    fs::write(root.join("old.vcf"), card("old")).unwrap();
    {
        let mut kept = store.shared.root_names.lock().unwrap();
        let kept = kept.as_mut().expect("collections() kept the root names");
        kept.read_at = kept.read_at.checked_sub(ROOT_NAMES_FRESH).unwrap();
    }
    assert!(ids(&store.list(ROOT).await.unwrap()).contains(&"old.vcf".to_string()));
}

#[tokio::test]
async fn fetch_falls_back_to_the_file_time() {
    let (_temp, root, store) = vdir(Kind::Contact);
    let card = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:plain\r\nFN:Plain\r\nEND:VCARD\r\n";
    fs::write(root.join("plain.vcf"), card).unwrap();
    let meta = fs::metadata(root.join("plain.vcf")).unwrap();
    let item = store
        .fetch(ROOT, &["plain.vcf".to_string()])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(item.record.modified, file::modified_seconds(&meta));
    assert_eq!(item.raw.unwrap().text, card);
    assert_eq!(item.version, version_of(&meta));
}

#[tokio::test]
async fn errors_name_the_path() {
    let temp = TempDir::new().unwrap();
    let missing = temp.path().join("nowhere");
    let store = store_at(&missing, Kind::Contact);
    let err = store.list(ROOT).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(
        err.message.contains(&missing.display().to_string()),
        "{err}"
    );
    let err = store.fetch(ROOT, &["a.vcf".to_string()]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    let err = store
        .create(ROOT, &new_item(contact("a")))
        .await
        .unwrap_err();
    assert!(
        err.message.contains(&missing.display().to_string()),
        "{err}"
    );

    store.create_collection(ROOT).await.unwrap();
    assert!(store.list(ROOT).await.unwrap().is_empty());
    let err = store.list("../escape").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    let fetched = store
        .fetch(ROOT, &["../../etc/passwd".to_string()])
        .await
        .unwrap();
    assert_eq!(fetched[0].as_ref().unwrap_err().kind, ErrorKind::Invalid);
}

#[tokio::test]
async fn flush_syncs_after_writes() {
    let (_temp, _root, store) = vdir(Kind::Task);
    store.flush().await.unwrap();
    let task = Record::new(Kind::Task, "t1").with("summary", Value::text("Sync"));
    store.create(ROOT, &new_item(task)).await.unwrap();
    assert!(store.shared.dirty.load(Ordering::Acquire));
    store.flush().await.unwrap();
    assert!(!store.shared.dirty.load(Ordering::Acquire));
}

/// Writes go through a folder opened once; a folder replaced at its path
/// meanwhile took them along, and the flush says so instead of letting the
/// batch be recorded.
#[tokio::test]
async fn a_folder_replaced_during_a_sync_fails_every_flush_after() {
    let (temp, root, store) = vdir(Kind::Task);
    let task = |uid: &str| Record::new(Kind::Task, uid).with("summary", Value::text("Sync"));
    store.create(ROOT, &new_item(task("t1"))).await.unwrap();
    store.flush().await.unwrap();

    // Someone moves the folder away and puts an empty one in its place.
    let moved = temp.path().join("moved");
    fs::rename(&root, &moved).unwrap();
    fs::create_dir(&root).unwrap();
    store.create(ROOT, &new_item(task("t2"))).await.unwrap();
    assert!(
        moved.join("t2.ics").exists(),
        "written through the open folder"
    );
    assert!(!root.join("t2.ics").exists());
    let err = store.flush().await.unwrap_err();
    assert!(err.message.contains("removed or replaced"), "{err}");
    // Still dirty, and it stays failed: later writes may have gone there too.
    assert!(store.shared.dirty.load(Ordering::Acquire));
    assert!(store.flush().await.is_err());
}

#[test]
fn config_reads_from_toml_and_rejects_unknown_keys() {
    let config: VdirConfig = toml::from_str("path = \"/data/contacts\"\n").unwrap();
    assert_eq!(config.path, PathBuf::from("/data/contacts"));
    assert_eq!(config.extension, None);
    let config: VdirConfig =
        toml::from_str("path = \"/data/cal\"\nextension = \"ical\"\n").unwrap();
    assert_eq!(config.extension.as_deref(), Some("ical"));
    let err = toml::from_str::<VdirConfig>("path = \"/x\"\nextention = \"vcf\"\n").unwrap_err();
    assert!(err.to_string().contains("extention"), "{err}");

    let bad = VdirConfig {
        path: "/x".into(),
        extension: Some("a/b".into()),
    };
    assert_eq!(
        VdirStore::new(bad, Format::VCard).unwrap_err().kind,
        ErrorKind::Invalid
    );
    let custom = VdirConfig {
        path: "/x".into(),
        extension: Some(".ical".into()),
    };
    assert_eq!(
        VdirStore::new(custom, Format::ICalendar)
            .unwrap()
            .shared
            .extension,
        "ical"
    );
}

/// Lists and fetches 100,000 contacts and prints the times. Run with
/// `cargo test -p tandem-stores --release -- --ignored --nocapture large`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes 100,000 files; a benchmark, run by hand"]
async fn large_folder_lists_fast() {
    let (_temp, root, store) = vdir(Kind::Contact);
    const N: usize = 100_000;
    for i in 0..N {
        let card = format!(
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c{i}\r\nFN:Contact {i}\r\n\
             EMAIL:c{i}@example.org\r\nTEL:+1 555 {i:06}\r\nEND:VCARD\r\n"
        );
        fs::write(root.join(format!("c{i}.vcf")), card).unwrap();
    }
    let start = std::time::Instant::now();
    let listed = store.list(ROOT).await.unwrap();
    let list_time = start.elapsed();
    eprintln!("list {N}, first: {list_time:?}");
    for _ in 0..2 {
        let start = std::time::Instant::now();
        assert_eq!(store.list(ROOT).await.unwrap().len(), N);
        eprintln!("list {N}, again: {:?}", start.elapsed());
    }
    assert_eq!(listed.len(), N);
    let ids: Vec<String> = listed.into_iter().map(|l| l.id).collect();
    let start = std::time::Instant::now();
    let fetched = store.fetch(ROOT, &ids).await.unwrap();
    let fetch_time = start.elapsed();
    assert!(fetched.iter().all(|r| r.is_ok()));
    eprintln!("fetch {N}: {fetch_time:?}");
    assert!(
        list_time < std::time::Duration::from_secs(1),
        "{list_time:?}"
    );
}
