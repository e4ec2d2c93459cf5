//! The DAV store against real Radicale and Xandikos servers: the shared
//! conformance suite for contacts, events and tasks, then what only a
//! server has (discovery, rewritten items, sync-collection, secrets).

use super::proxy::{Fault, Proxy};
use super::testing::{Server, ServerKind};
use super::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tandem_record::Kind;
use tandem_store::conformance;

async fn run_conformance(server: ServerKind, kind: Kind) {
    let Some(server) = Server::start(server) else {
        return;
    };
    let next = AtomicUsize::new(0);
    conformance::run(
        || {
            let name = format!("c{}", next.fetch_add(1, Ordering::Relaxed));
            let store = server.store(kind, &name);
            async move {
                store
                    .create_collection(ROOT)
                    .await
                    .expect("create the collection");
                store
            }
        },
        kind,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radicale_contacts_pass_the_conformance_suite() {
    run_conformance(ServerKind::Radicale, Kind::Contact).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radicale_events_pass_the_conformance_suite() {
    run_conformance(ServerKind::Radicale, Kind::Event).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radicale_tasks_pass_the_conformance_suite() {
    run_conformance(ServerKind::Radicale, Kind::Task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xandikos_contacts_pass_the_conformance_suite() {
    run_conformance(ServerKind::Xandikos, Kind::Contact).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xandikos_events_pass_the_conformance_suite() {
    run_conformance(ServerKind::Xandikos, Kind::Event).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xandikos_tasks_pass_the_conformance_suite() {
    run_conformance(ServerKind::Xandikos, Kind::Task).await;
}

/// From the server root, discovery finds the home set and its collections.
async fn discovers_from_the_root(kind: ServerKind) {
    let Some(server) = Server::start(kind) else {
        return;
    };
    let book = server.store(Kind::Contact, "work");
    book.create_collection(ROOT).await.unwrap();
    let root = DavStore::new(
        server.config(format!("{}/", server.base())),
        Protocol::CardDav,
        Kind::Contact,
    )
    .unwrap();
    let collections = root.collections().await.unwrap();
    assert!(collections.contains(&"work".to_string()), "{collections:?}");
    assert_eq!(
        root.collection_href("work").await.unwrap(),
        format!("{}work/", server.home(Protocol::CardDav))
    );
    let only = {
        let mut config = server.config(format!("{}/", server.base()));
        config.collections = Some(vec!["other".into()]);
        DavStore::new(config, Protocol::CardDav, Kind::Contact).unwrap()
    };
    assert_eq!(only.collections().await.unwrap(), vec![ROOT.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radicale_discovery() {
    discovers_from_the_root(ServerKind::Radicale).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xandikos_discovery() {
    discovers_from_the_root(ServerKind::Xandikos).await;
}

/// sync-collection: a first token, then only what changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_collection_reports_changes() {
    for kind in [ServerKind::Radicale, ServerKind::Xandikos] {
        let Some(server) = Server::start(kind) else {
            return;
        };
        let store = server.store(Kind::Contact, "feed");
        store.create_collection(ROOT).await.unwrap();
        let item = |uid: &str| NewItem {
            record: conformance::sample(Kind::Contact, uid),
            raw: None,
        };
        let first = store.create(ROOT, &item("a")).await.unwrap();
        let start = store.changes_since(ROOT, None).await.unwrap();
        assert_eq!(start.changed.len(), 1, "{kind:?}");
        let second = store.create(ROOT, &item("b")).await.unwrap();
        store.delete(ROOT, &first.id, &first.version).await.unwrap();
        let delta = store.changes_since(ROOT, Some(&start.token)).await.unwrap();
        assert_eq!(
            delta.changed,
            vec![Listed {
                id: second.id.clone(),
                version: second.version.clone()
            }],
            "{kind:?}"
        );
        assert_eq!(delta.deleted, vec![first.id.clone()], "{kind:?}");
    }
}

/// A UID that is no plain URL segment is stored under a hash of it, and a
/// second create of the same item finds it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_uids_get_hashed_names() {
    let Some(server) = Server::start(ServerKind::Radicale) else {
        return;
    };
    let store = server.store(Kind::Contact, "odd");
    store.create_collection(ROOT).await.unwrap();
    let item = NewItem {
        record: conformance::sample(Kind::Contact, "a b/../c?d"),
        raw: None,
    };
    let first = store.create(ROOT, &item).await.unwrap();
    assert_eq!(first.id.len(), 36, "{}", first.id);
    let again = store.create(ROOT, &item).await.unwrap();
    assert_eq!(again.id, first.id);
    let listed = store.list(ROOT).await.unwrap();
    assert_eq!(listed.len(), 1);
}

#[test]
fn secrets_never_show() {
    let mut config = DavConfig::new("https://dav.example.org/");
    config.username = Some("ada".into());
    config.password_cmd = Some("echo hunter2-secret".into());
    let shown = format!("{config:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let credentials = config.credentials().unwrap();
    let shown = format!("{credentials:?}");
    assert!(
        !shown.contains("hunter2") && shown.contains("<redacted>"),
        "{shown}"
    );
    let store = DavStore::new(config, Protocol::CardDav, Kind::Contact).unwrap();
    assert!(!format!("{store:?}").contains("hunter2"));
}

#[test]
fn plain_http_only_to_the_loopback() {
    let open = |url: &str, insecure: bool| {
        let mut config = DavConfig::new(url);
        config.insecure_http = insecure;
        DavStore::new(config, Protocol::CalDav, Kind::Event)
    };
    assert!(matches!(
        open("http://dav.example.org/", false),
        Err(OpenError::InsecureHttp { .. })
    ));
    assert!(open("http://dav.example.org/", true).is_ok());
    assert!(open("http://127.0.0.1:5232/", false).is_ok());
    assert!(open("http://[::1]:5232/", false).is_ok());
    assert!(matches!(
        open("ftp://x/", false),
        Err(OpenError::BadUrl { .. })
    ));
    assert!(matches!(
        DavStore::new(
            DavConfig::new("https://x/"),
            Protocol::CalDav,
            Kind::Contact
        ),
        Err(OpenError::WrongKind { .. })
    ));
}

#[test]
fn credentials_are_checked() {
    let mut config = DavConfig::new("https://x/");
    config.password_env = Some("TANDEM_TEST_NO_SUCH_VAR".into());
    assert_eq!(
        config.credentials(),
        Err(CredentialsError::PasswordWithoutUser)
    );
    config.username = Some("u".into());
    assert_eq!(
        config.credentials(),
        Err(CredentialsError::MissingEnv(
            "TANDEM_TEST_NO_SUCH_VAR".into()
        ))
    );
    config.password_cmd = Some("echo x".into());
    assert_eq!(
        config.credentials(),
        Err(CredentialsError::SeveralPasswords)
    );
}

// ---------------------------------------------------------------------
// Through the fault-injecting proxy (dav::proxy), real Radicale behind it.

/// A contact store on the collection `name`, reached through `proxy`.
fn proxied(
    server: &Server,
    proxy: &Proxy,
    name: &str,
    tweak: impl FnOnce(&mut DavConfig),
) -> DavStore {
    let url = proxy.url(&server.collection_url(Protocol::CardDav, name));
    let mut config = server.config(url);
    tweak(&mut config);
    DavStore::new(config, Protocol::CardDav, Kind::Contact).unwrap()
}

fn sample(uid: &str) -> NewItem {
    NewItem {
        record: conformance::sample(Kind::Contact, uid),
        raw: None,
    }
}

/// The gap between a faulted request and the next request of its method.
fn gap_after_fault(proxy: &Proxy, kind: &str) -> Duration {
    let log = proxy.log();
    let at = log
        .iter()
        .position(|l| l.fault.as_ref().is_some_and(|f| f.kind() == kind))
        .unwrap_or_else(|| panic!("no {kind} in {log:?}"));
    let retry = log[at + 1..]
        .iter()
        .find(|l| l.method == log[at].method && l.path == log[at].path)
        .unwrap_or_else(|| panic!("no retry after the {kind}: {log:?}"));
    retry.at - log[at].at
}

/// `Retry-After` is waited out before the retry (the cap, 30 s, is in
/// http.rs's unit test); a 503 without it waits the first backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let Some(server) = Server::start(ServerKind::Radicale) else {
        return;
    };
    let proxy = Proxy::start(server.port);
    let store = proxied(&server, &proxy, "wait", |_| {});
    store.create_collection(ROOT).await.unwrap();
    store.create(ROOT, &sample("w1")).await.unwrap();
    assert_eq!(store.list(ROOT).await.unwrap().len(), 1);

    proxy.script(
        Some("PROPFIND"),
        [Fault::TooManyRequests { retry_after: 2 }],
    );
    assert_eq!(store.list(ROOT).await.unwrap().len(), 1);
    let waited = gap_after_fault(&proxy, "429");
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_millis(3500),
        "retried after {waited:?}"
    );

    proxy.script(Some("PROPFIND"), [Fault::ServerError]);
    assert_eq!(store.list(ROOT).await.unwrap().len(), 1);
    let waited = gap_after_fault(&proxy, "503");
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_millis(1500),
        "retried after {waited:?}"
    );
}

/// A reset after the server did the write, and an answer later than the
/// timeout, are retried; the retried create finds its own item there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_and_timeouts_are_retried_without_twins() {
    let Some(server) = Server::start(ServerKind::Radicale) else {
        return;
    };
    let proxy = Proxy::start(server.port);
    let store = proxied(&server, &proxy, "retry", |c| c.timeout = 1);
    store.create_collection(ROOT).await.unwrap();
    proxy.script(Some("PUT"), [Fault::Reset]);
    let first = store.create(ROOT, &sample("r1")).await.unwrap();
    proxy.script(Some("PUT"), [Fault::Delay(Duration::from_secs(2))]);
    let second = store.create(ROOT, &sample("r2")).await.unwrap();
    proxy.script(Some("REPORT"), [Fault::Reset]);
    let fetched = store
        .fetch(ROOT, &[first.id.clone(), second.id.clone()])
        .await
        .unwrap();
    assert!(fetched.iter().all(|f| f.is_ok()), "{fetched:?}");
    assert_eq!(
        proxy.injected(),
        BTreeMap::from([("delay", 1), ("reset", 2)])
    );
    let mut ids = ids_of(&store.list(ROOT).await.unwrap());
    ids.sort();
    assert_eq!(ids, ["r1.vcf", "r2.vcf"]);
}

fn ids_of(listed: &[Listed]) -> Vec<String> {
    listed.iter().map(|l| l.id.clone()).collect()
}

/// A truncated listing or multiget is an error naming the collection, not
/// a panic and not an empty listing; the store works again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_answers_are_a_clear_error() {
    let Some(server) = Server::start(ServerKind::Radicale) else {
        return;
    };
    let proxy = Proxy::start(server.port);
    let store = proxied(&server, &proxy, "cut", |_| {});
    store.create_collection(ROOT).await.unwrap();
    let written = store.create(ROOT, &sample("t1")).await.unwrap();
    store.list(ROOT).await.unwrap();

    proxy.script(Some("PROPFIND"), [Fault::Truncate]);
    let err = store.list(ROOT).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid, "{err}");
    assert!(err.message.contains("/user/cut/"), "{err}");

    proxy.script(Some("REPORT"), [Fault::Truncate]);
    let err = store
        .fetch(ROOT, std::slice::from_ref(&written.id))
        .await
        .unwrap_err();
    assert!(err.message.contains("/user/cut/"), "{err}");
    assert_eq!(proxy.injected(), BTreeMap::from([("truncate", 2)]));

    assert_eq!(store.list(ROOT).await.unwrap().len(), 1);
}

const XXE: &str = r#"<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<d:multistatus xmlns:d="DAV:"><d:response><d:href>/user/x/a.vcf</d:href>
<d:propstat><d:prop><d:getetag>&x;</d:getetag></d:prop>
<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#;

fn billion_laughs() -> String {
    let mut dtd = String::from("<!ENTITY l0 \"lol\">");
    for n in 1..10 {
        let prev = n - 1;
        dtd.push_str(&format!(
            "<!ENTITY l{n} \"{}\">",
            format!("&l{prev};").repeat(10)
        ));
    }
    format!(
        "<?xml version=\"1.0\"?><!DOCTYPE d [{dtd}]><d:multistatus xmlns:d=\"DAV:\"><d:response><d:href>&l9;</d:href></d:response></d:multistatus>"
    )
}

/// XXE and billion laughs in an answer (served by the proxy: no real
/// server sends them, so a canned answer is the only way to test this):
/// refused quickly with a clear error, no file read, no expansion; also
/// when the answer does not say it is XML.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_xml_is_refused() {
    let Some(server) = Server::start(ServerKind::Radicale) else {
        return;
    };
    let proxy = Proxy::start(server.port);
    let store = proxied(&server, &proxy, "x", |_| {});
    store.create_collection(ROOT).await.unwrap();
    store.list(ROOT).await.unwrap();
    for body in [XXE.to_string(), billion_laughs()] {
        for content_type in ["application/xml; charset=utf-8", "text/plain"] {
            proxy.script(
                Some("PROPFIND"),
                [Fault::Answer {
                    status: 207,
                    headers: vec![("content-type".into(), content_type.into())],
                    body: body.clone(),
                }],
            );
            let started = Instant::now();
            let err = store.list(ROOT).await.unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(2));
            assert_eq!(err.kind, ErrorKind::Invalid, "{err}");
            assert!(
                err.message.contains("/user/x/") && err.message.contains("DTD"),
                "{content_type}: {err}"
            );
            assert!(!err.message.contains("root:"), "{err}");
            assert!(!err.message.contains("lollol"), "{err}");
        }
    }
}

/// Hrefs in an answer that name something outside the collection — another
/// collection, a climb with `..`, another host — refuse the answer (a
/// canned answer: real servers do not send these).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hrefs_outside_the_collection_are_refused() {
    let Some(server) = Server::start(ServerKind::Radicale) else {
        return;
    };
    let proxy = Proxy::start(server.port);
    let store = proxied(&server, &proxy, "in", |_| {});
    store.create_collection(ROOT).await.unwrap();
    let written = store.create(ROOT, &sample("h1")).await.unwrap();
    store.list(ROOT).await.unwrap();
    let answer = |href: &str| {
        format!(
            "<?xml version=\"1.0\"?><d:multistatus xmlns:d=\"DAV:\"><d:response><d:href>{href}</d:href><d:propstat><d:prop><d:getetag>\"e\"</d:getetag><d:resourcetype/></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"
        )
    };
    let outside = [
        "/user/other/h1.vcf",
        "/user/in/../other/h1.vcf",
        "/user/in/sub/h1.vcf",
        "/user/in/..",
        "http://evil.example/user/in/h1.vcf",
        "https://127.0.0.1:1/user/in/h1.vcf",
    ];
    for href in outside {
        proxy.script(Some("PROPFIND"), [Fault::xml(207, answer(href))]);
        let err = store.list(ROOT).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid, "{href}: {err}");
        assert!(
            err.message.contains("not an item of this collection") && err.message.contains(href),
            "{href}: {err}"
        );
    }
    // The same checks hold in a multiget's answer.
    let multiget = format!(
        "<?xml version=\"1.0\"?><d:multistatus xmlns:d=\"DAV:\" xmlns:c=\"urn:ietf:params:xml:ns:carddav\"><d:response><d:href>/user/other/{}</d:href><d:propstat><d:prop><d:getetag>\"e\"</d:getetag><c:address-data>BEGIN:VCARD\r\nVERSION:3.0\r\nUID:h1\r\nFN:X\r\nEND:VCARD\r\n</c:address-data></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>",
        written.id
    );
    proxy.script(Some("REPORT"), [Fault::xml(207, multiget)]);
    let err = store
        .fetch(ROOT, std::slice::from_ref(&written.id))
        .await
        .unwrap_err();
    assert!(
        err.message.contains("not an item of this collection"),
        "{err}"
    );
    // An absolute href on the store's own origin is fine.
    let own = format!("http://127.0.0.1:{}/user/in/h1.vcf", proxy.port());
    proxy.script(Some("PROPFIND"), [Fault::xml(207, answer(&own))]);
    assert_eq!(ids_of(&store.list(ROOT).await.unwrap()), ["h1.vcf"]);
}

/// Items with hostile UIDs are created inside the collection, under a hash
/// of the UID, and read back with their UID intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_uids_land_inside_the_collection() {
    let Some(server) = Server::start(ServerKind::Radicale) else {
        return;
    };
    let proxy = Proxy::start(server.port);
    let store = proxied(&server, &proxy, "safe", |_| {});
    store.create_collection(ROOT).await.unwrap();
    let long = "u".repeat(5000);
    let uids = [
        "../../etc/passwd",
        "a/b",
        "..",
        "%2e%2e%2fx",
        "tab\there",
        "esc\u{1b}[31m",
        "nul\u{0}byte",
        long.as_str(),
    ];
    let mut ids = Vec::new();
    for uid in uids {
        let written = store.create(ROOT, &sample(uid)).await.unwrap();
        assert_eq!(written.id.len(), 36, "{uid:?}: {}", written.id);
        ids.push(written.id);
    }
    for logged in proxy.log().iter().filter(|l| l.method == "PUT") {
        let name = logged
            .path
            .strip_prefix("/user/safe/")
            .unwrap_or_else(|| panic!("{logged:?}"));
        assert!(!name.contains('/') && !name.contains('%'), "{logged:?}");
    }
    let fetched = store.fetch(ROOT, &ids).await.unwrap();
    let mut back: Vec<String> = fetched.into_iter().map(|f| f.unwrap().record.uid).collect();
    back.sort();
    // Radicale drops control characters other than tab from what it stores.
    let mut sent: Vec<String> = uids
        .iter()
        .map(|u| {
            u.chars()
                .filter(|c| *c == '\t' || !c.is_control())
                .collect()
        })
        .collect();
    sent.sort();
    assert_eq!(back, sent);
    // On the server's disk, only the collection holds them.
    let stored = server.storage().join("collection-root/user");
    let mut dirs: Vec<String> = std::fs::read_dir(&stored)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    dirs.sort();
    assert_eq!(dirs, ["safe"]);
}

/// A redirect to another origin is not followed: nothing, and no
/// credentials above all, reaches the other origin (a listener there logs
/// every request); a same-origin redirect is followed with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_to_another_origin_are_refused() {
    let Some(server) = Server::start(ServerKind::Radicale) else {
        return;
    };
    let proxy = Proxy::start(server.port);
    let elsewhere = Proxy::start(server.port);
    let store = proxied(&server, &proxy, "r", |_| {});
    store.create_collection(ROOT).await.unwrap();
    store.list(ROOT).await.unwrap();
    for location in [
        format!("http://127.0.0.1:{}/user/r/", elsewhere.port()),
        format!("http://localhost:{}/user/r/", proxy.port()),
        format!("https://127.0.0.1:{}/user/r/", proxy.port()),
    ] {
        proxy.script(Some("PROPFIND"), [Fault::redirect(location.as_str())]);
        let err = store.list(ROOT).await.unwrap_err();
        assert!(
            err.message.contains("another origin") && err.message.contains(&location),
            "{err}"
        );
    }
    assert!(elsewhere.log().is_empty(), "{:?}", elsewhere.log());

    proxy.script(Some("PROPFIND"), [Fault::redirect("/user/r/")]);
    store.list(ROOT).await.unwrap();
    let log = proxy.log();
    let after = &log[log.len() - 2..];
    assert!(after.iter().all(|l| l.authorized), "{after:?}");
}

/// A server whose ETags change on every answer: an update still goes
/// through with the ETag the store last saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etag_churn_still_allows_guarded_writes() {
    let Some(server) = Server::start(ServerKind::Radicale) else {
        return;
    };
    let proxy = Proxy::start(server.port);
    proxy.etag_churn(true);
    let store = proxied(&server, &proxy, "churn", |_| {});
    store.create_collection(ROOT).await.unwrap();
    let written = store.create(ROOT, &sample("c1")).await.unwrap();
    let listed = store.list(ROOT).await.unwrap();
    assert_ne!(listed[0].version, written.version, "the ETag churned");
    let item = store
        .fetch(ROOT, std::slice::from_ref(&written.id))
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let change = tandem_record::FieldChange {
        field: "note".into(),
        value: Some(tandem_record::Value::text("churned")),
    };
    store
        .update(ROOT, &item, &item.version, &[change])
        .await
        .unwrap();
}

/// A password in the URL is refused, and the error shows the URL without it.
#[test]
fn credentials_in_the_url_are_refused_unshown() {
    for url in [
        "https://ada:hunter2-secret@dav.example.org/book/",
        "https://hunter2-secret@dav.example.org/",
        "http://ada:hunter2-secret@127.0.0.1:5232",
    ] {
        let err = DavStore::new(DavConfig::new(url), Protocol::CardDav, Kind::Contact)
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("hunter2") && err.contains("***@") && err.contains("username"),
            "{err}"
        );
        let shown = format!("{:?}", DavConfig::new(url));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
    assert_eq!(
        config::redact_url("https://dav.example.org/a@b/"),
        "https://dav.example.org/a@b/"
    );
}
