//! Faults through the real `tandem` binary: a vdir folder paired with a real
//! Radicale server, reached through a fault-injecting proxy
//! (`tandem_stores::dav::proxy`) or killed mid-run; and secrets that must
//! never reach any output.
//!
//! Each scenario checks the end state on both sides — every UID once on
//! the server (read from Radicale's own storage folder) and once in the
//! folder — and that the sync goes quiet.

use crate::harness::{card, prop, Run, Scenario};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tandem_stores::dav::proxy::{Fault, Proxy};
use tandem_stores::dav::testing::{Server, ServerKind, USER};

const QUIET: &str = "created 0/0, updated 0/0, deleted 0/0";

/// A vdir `a` paired with the CardDAV collection at `url` as `b`.
fn dav_scenario(url: &str, dav_extra: &str) -> Scenario {
    let s = Scenario::new("contact", "");
    write_config(&s, url, dav_extra);
    s
}

fn write_config(s: &Scenario, url: &str, dav_extra: &str) {
    let text = format!(
        "[stores.a]\ntype = \"vdir\"\npath = \"a\"\n\n[stores.b]\ntype = \"carddav\"\nurl = \"{url}\"\nusername = \"{USER}\"\npassword_cmd = \"echo test-secret\"\ncreate_collections = true\n{dav_extra}\n\n[[pairs]]\nname = \"p\"\na = \"a\"\nb = \"b\"\nkind = \"contact\"\nmax_delete = \"100%\"\n"
    );
    std::fs::write(s.dir.path().join("tandem.toml"), text).expect("write config");
}

fn person(i: usize) -> String {
    card(
        &format!("p{i:04}"),
        &[&format!("FN:Person {i}"), "TITLE:Tester"],
    )
}

fn fill(s: &Scenario, n: usize) {
    for i in 0..n {
        s.put("a", &format!("p{i:04}.vcf"), &person(i));
    }
}

/// The UIDs of the items in a Radicale collection, read from its storage.
fn server_uids(server: &Server, collection: &str) -> Vec<String> {
    let dir = server
        .storage()
        .join("collection-root")
        .join(USER)
        .join(collection);
    let mut uids: Vec<String> = crate::harness::files_in(&dir)
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(&name)).expect("read a stored item");
            prop(&text, "UID").unwrap_or_else(|| panic!("{name} has no UID"))
        })
        .collect();
    uids.sort();
    uids
}

/// The UIDs of the cards in the folder.
fn folder_uids(s: &Scenario) -> Vec<String> {
    let mut uids: Vec<String> = s
        .files("a")
        .iter()
        .map(|name| prop(&s.read("a", name), "UID").expect("a UID"))
        .collect();
    uids.sort();
    uids
}

/// Both sides hold the same UIDs, each once.
fn assert_same_once(s: &Scenario, server: &Server, collection: &str, want: usize) {
    let on_server = server_uids(server, collection);
    let in_folder = folder_uids(s);
    let unique: BTreeSet<&String> = on_server.iter().collect();
    assert_eq!(unique.len(), on_server.len(), "a UID twice on the server");
    assert_eq!(on_server.len(), want, "items on the server");
    assert_eq!(in_folder, on_server, "both sides hold the same UIDs");
}

/// Syncs until a run exits 0 and writes nothing; the number of runs.
fn sync_until_quiet(s: &Scenario, max: usize) -> usize {
    for runs in 1..=max {
        let run = s.tandem(&["sync"]);
        if run.code == 0 && run.stdout.contains(QUIET) {
            return runs;
        }
        assert!(matches!(run.code, 0 | 1), "run {runs} ended badly: {run:?}");
    }
    panic!("not quiet after {max} runs");
}

/// A run under faults: done (0) or some items failed (1), never a crash;
/// each failure names the store and collection.
fn faulted_run(s: &Scenario) -> Run {
    let run = s.tandem(&["sync"]);
    assert!(matches!(run.code, 0 | 1), "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    let failures = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:") || l.starts_with("tandem:"));
    for line in failures {
        assert!(
            (line.starts_with("error: b") || line.contains("store `b`"))
                && line.contains("/user/flaky/"),
            "a failure that names no store and collection: {line}\n{run:?}"
        );
    }
    run
}

/// The faults the flaky-server scenario injects, one request in eight.
fn all_faults() -> Vec<Fault> {
    vec![
        Fault::ServerError,
        Fault::TooManyRequests { retry_after: 1 },
        Fault::Delay(Duration::from_millis(1500)),
        Fault::Reset,
        Fault::Truncate,
    ]
}

/// Runs under faults, then without: the number of runs the calm phase took
/// to go quiet (at most 3), after which one more run is quiet too.
fn faulted_then_calm(s: &Scenario, proxy: &Proxy, url: &str, seed: u64) -> (Vec<i32>, usize) {
    write_config(s, url, "timeout = 1\nretries = 1");
    proxy.random(0.125, seed, &all_faults());
    let codes = vec![faulted_run(s).code, faulted_run(s).code];
    proxy.calm();
    write_config(s, url, "");
    let runs = sync_until_quiet(s, 3);
    let after = s.tandem(&["sync"]);
    assert!(after.code == 0 && after.stdout.contains(QUIET), "{after:?}");
    (codes, runs)
}

/// With faults of every kind on one request in eight (a 1 s timeout and one
/// retry, so many surface), runs fail in part but lose and duplicate
/// nothing: an upload of 200 items, then edits, deletes and creates in the
/// folder. Once the faults stop, each phase converges within 3 runs and
/// then stays quiet.
#[test]
fn flaky_server_loses_nothing_and_converges() {
    let Some(server) = Server::start(ServerKind::Radicale) else {
        return;
    };
    let proxy = Proxy::start(server.port);
    let url = proxy.url(&server.collection_url(tandem_stores::dav::Protocol::CardDav, "flaky"));
    let s = dav_scenario(&url, "");
    let n = 200;
    fill(&s, n);
    let started = Instant::now();
    let (codes_upload, runs_upload) = faulted_then_calm(&s, &proxy, &url, 0x7a4d_2026);
    assert_same_once(&s, &server, "flaky", n);

    for i in (0..n).step_by(10) {
        s.put(
            "a",
            &format!("p{i:04}.vcf"),
            &card(
                &format!("p{i:04}"),
                &[&format!("FN:Person {i}"), "TITLE:Edited"],
            ),
        );
    }
    for i in (5..n).step_by(20) {
        s.remove("a", &format!("p{i:04}.vcf"));
    }
    for i in n..n + 20 {
        s.put("a", &format!("p{i:04}.vcf"), &person(i));
    }
    let (codes_edit, runs_edit) = faulted_then_calm(&s, &proxy, &url, 0x7a4d_2027);
    let left = n - n / 20 + 20;
    assert_same_once(&s, &server, "flaky", left);
    let stored = server
        .storage()
        .join("collection-root")
        .join(USER)
        .join("flaky");
    for i in (0..n).step_by(10) {
        let text = std::fs::read_to_string(stored.join(format!("p{i:04}.vcf")))
            .expect("an edited item on the server");
        assert_eq!(prop(&text, "TITLE").as_deref(), Some("Edited"), "p{i:04}");
    }
    let injected = proxy.injected();
    eprintln!(
        "flaky server: {n} items; faults injected {injected:?}; runs under faults exited \
         {codes_upload:?} (upload) and {codes_edit:?} (edits); converged in {runs_upload} and \
         {runs_edit} calm run(s); lost 0, duplicated 0; {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let total: usize = injected.values().sum();
    assert!(injected.len() == 5 && total >= 20, "{injected:?}");
}

/// A server whose ETags change on every answer, without change feeds (so
/// every run lists every item as moved): runs after the upload write
/// nothing on either side, the folder's files are not touched, and an edit
/// still goes through.
#[test]
fn etag_churn_rewrites_nothing() {
    let Some(server) = Server::start(ServerKind::Radicale) else {
        return;
    };
    let proxy = Proxy::start(server.port);
    proxy.etag_churn(true);
    proxy.hide_sync_collection(true);
    let url = proxy.url(&server.collection_url(tandem_stores::dav::Protocol::CardDav, "churn"));
    let s = dav_scenario(&url, "");
    let n = 100;
    fill(&s, n);
    s.sync();
    let stamp = |s: &Scenario| -> BTreeMap<String, (std::time::SystemTime, String)> {
        s.files("a")
            .into_iter()
            .map(|f| {
                let meta = std::fs::metadata(s.path("a", &f)).expect("stat");
                let text = s.read("a", &f);
                (f, (meta.modified().expect("mtime"), text))
            })
            .collect()
    };
    let before = stamp(&s);
    let puts = |proxy: &Proxy| proxy.log().iter().filter(|l| l.method == "PUT").count();
    let puts_before = puts(&proxy);
    for _ in 0..3 {
        let run = s.sync();
        assert!(run.stdout.contains(QUIET), "{run:?}");
    }
    assert_eq!(puts(&proxy), puts_before, "no write to the server");
    assert!(stamp(&s) == before, "no file in the folder rewritten");
    // An edit in the folder reaches the server through the churned ETags.
    s.put(
        "a",
        "p0007.vcf",
        &card("p0007", &["FN:Person 7", "TITLE:Churned"]),
    );
    let run = s.sync();
    assert!(run.stdout.contains("updated 0/1"), "{run:?}");
    let run = s.sync();
    assert!(run.stdout.contains(QUIET), "{run:?}");
    assert_same_once(&s, &server, "churn", n);
}

/// kill -9 of the binary during a 1,000-item upload to Radicale, at
/// seeded random moments and right after a write: the next run finishes,
/// the one after is quiet, and every UID is on the server once.
#[test]
fn kill_during_a_dav_sync_then_rerun_converges() {
    let Some(server) = Server::start(ServerKind::Radicale) else {
        return;
    };
    let url = server.collection_url(tandem_stores::dav::Protocol::CardDav, "big");
    let s = dav_scenario(&url, "");
    let n = 1000;
    fill(&s, n);
    let started = Instant::now();
    let crashed = s.tandem_env(&["sync"], &[("TANDEM_CRASH_AFTER_WRITES", "150")]);
    assert_ne!(crashed.code, 0, "{crashed:?}");
    let after_crash = server_uids(&server, "big").len();
    assert!((150..n).contains(&after_crash), "{after_crash}");
    // kill -9 once the server holds a seeded random number of items more
    // (so the kill lands among the writes), three times.
    let mut rng = fastrand::Rng::with_seed(0x6b696c6c);
    let mut on_server = vec![after_crash];
    let stored = server
        .storage()
        .join("collection-root")
        .join(USER)
        .join("big");
    for _ in 0..3 {
        let before = crate::harness::files_in(&stored).len();
        let target = before + rng.usize(20..150);
        let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
            .current_dir(s.dir.path())
            .arg("sync")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tandem");
        while crate::harness::files_in(&stored).len() < target
            && child.try_wait().expect("poll tandem").is_none()
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        on_server.push(server_uids(&server, "big").len());
    }
    let killed_at = started.elapsed();
    let run = s.sync();
    assert!(run.stdout.contains("0 failed"), "{run:?}");
    let again = s.sync();
    assert!(
        again.stdout.contains(QUIET),
        "quiet on the second run: {again:?}"
    );
    assert_same_once(&s, &server, "big", n);
    eprintln!(
        "kill -9 during a {n}-item DAV upload: items on the server after each crash {on_server:?}; \
         crashes took {:.1} s, whole test {:.1} s",
        killed_at.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// The password never reaches any output of any command, verbose logs
/// included — from a password command, an environment variable, a file,
/// a URL's user information or a SQL URL — nor on a failure.
#[test]
fn secrets_never_reach_any_output() {
    let Some(server) = Server::start(ServerKind::Radicale) else {
        return;
    };
    const SECRET: &str = "S3cr3t-Pw-4711";
    let url = server.collection_url(tandem_stores::dav::Protocol::CardDav, "sec");
    let s = dav_scenario(&url, "");
    fill(&s, 3);
    std::fs::write(s.dir.path().join("pw.txt"), format!("{SECRET}\n")).expect("write pw");
    let check_all = |s: &Scenario, what: &str| {
        let commands: [&[&str]; 8] = [
            &["check"],
            &["plan"],
            &["plan", "--json"],
            &["-vv", "sync"],
            &["-vv", "status"],
            &["status", "--json"],
            &["history", "--json"],
            &["-vv", "conflicts"],
        ];
        for args in commands {
            let run = s.tandem_env(args, &[("TANDEM_TEST_PW", SECRET)]);
            assert!(
                !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
                "{what}: `tandem {}` shows the secret: {run:?}",
                args.join(" ")
            );
        }
    };
    let config = |s: &Scenario, b: &str| {
        let text = format!(
            "[stores.a]\ntype = \"vdir\"\npath = \"a\"\n\n[stores.b]\n{b}\n\n[[pairs]]\nname = \"p\"\na = \"a\"\nb = \"b\"\nkind = \"contact\"\n"
        );
        std::fs::write(s.dir.path().join("tandem.toml"), text).expect("write config");
    };
    let dav = |auth: &str, url: &str| {
        format!("type = \"carddav\"\nurl = \"{url}\"\ncreate_collections = true\n{auth}")
    };
    config(
        &s,
        &dav(
            &format!("username = \"{USER}\"\npassword_cmd = \"echo {SECRET}\""),
            &url,
        ),
    );
    check_all(&s, "password_cmd");
    config(
        &s,
        &dav(
            &format!("username = \"{USER}\"\npassword_env = \"TANDEM_TEST_PW\""),
            &url,
        ),
    );
    check_all(&s, "password_env");
    config(
        &s,
        &dav(
            &format!("username = \"{USER}\"\npassword_file = \"pw.txt\""),
            &url,
        ),
    );
    check_all(&s, "password_file");
    // A server refusing the credentials.
    let proxy = Proxy::start(server.port);
    proxy.random(
        1.0,
        1,
        &[Fault::Answer {
            status: 401,
            headers: vec![("www-authenticate".into(), "Basic realm=\"x\"".into())],
            body: String::new(),
        }],
    );
    config(
        &s,
        &dav(
            &format!("username = \"{USER}\"\npassword_file = \"pw.txt\""),
            &proxy.url(&url),
        ),
    );
    check_all(&s, "refused credentials");
    let run = s.tandem(&["check"]);
    assert!(
        run.stderr.contains("check username and password"),
        "{run:?}"
    );
    // A password in the URL is refused, and not shown either.
    let with_userinfo = url.replacen("http://", &format!("http://{USER}:{SECRET}@"), 1);
    config(&s, &dav("", &with_userinfo));
    check_all(&s, "URL user information");
    let run = s.tandem(&["check"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("***@") && run.stderr.contains("username"),
        "{run:?}"
    );
    // SQL URLs carry their password by design (MariaDB refuses this one:
    // root has none; PostgreSQL trusts and has no such table).
    for sql_url in [
        format!("mysql://root:{SECRET}@127.0.0.1:3306/test"),
        format!("postgres://postgres:{SECRET}@127.0.0.1:5432/test"),
    ] {
        config(
            &s,
            &format!(
                "type = \"sql\"\nurl = \"{sql_url}\"\n[stores.b.tables.contact]\ntable = \"no_such_table_for_secrets\"\nid = \"id\"\nversion = \"version\"\n"
            ),
        );
        check_all(&s, &sql_url);
    }
}
