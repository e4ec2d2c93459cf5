//! The DAV store against real Radicale and Xandikos servers: the shared
//! conformance suite for contacts, events and tasks, then what only a
//! server has (discovery, rewritten items, sync-collection, secrets).

use super::testing::{Server, ServerKind};
use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
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
