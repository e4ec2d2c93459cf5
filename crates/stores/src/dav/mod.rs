//! [`DavStore`]: CardDAV address books and CalDAV calendars on a server
//! (Google, iCloud, Fastmail, Nextcloud, Radicale, Xandikos…).
//!
//! **Layout.** When `url` names an address book or calendar (or a path that
//! does not exist yet), that collection is the root collection and the
//! store holds only it plus the sibling collections named in `collections`
//! or created through [`Store::create_collection`]. Otherwise discovery runs
//! (RFC 6764 / 5397 / 6352 / 4791): the current user's principal at `url`,
//! else at `/.well-known/carddav` or `/.well-known/caldav`, then its home
//! set; every collection of the home set (or those named in `collections`)
//! is a collection named by its last path segment, and the one named
//! `default` is the root collection.
//!
//! **Items.** An item's id is its resource name (the href's last segment)
//! and its version the server's ETag. Listing is one `PROPFIND Depth: 1`
//! for `getetag`; fetching is `addressbook-multiget` / `calendar-multiget`
//! in batches, several in flight. [`Store::changes_since`] answers from
//! `sync-collection` (RFC 6578). Creates `PUT` with `If-None-Match: *` at
//! `UID.vcf` / `UID.ics` when the UID is a plain URL segment, else at a hash
//! of the UID, so a retried create lands on the same resource; updates and
//! deletes carry `If-Match` with the expected ETag, and a 412 is
//! [`ErrorKind::PreconditionFailed`], never retried as an overwrite. After
//! each write the server's own ETag is recorded (asked for with a
//! `PROPFIND` when the `PUT` answer has none, as when the server rewrote
//! the item), and items compare by meaning in the engine, so the next run
//! writes nothing. Updates patch the fetched text through
//! [`tandem_formats::patch`] exactly as the vdir store does.
//!
//! **Why libdav, and what is added around it.** libdav (pimsync's client)
//! builds and parses the WebDAV, CardDAV and CalDAV requests. It leaves the
//! HTTP client to its caller, so [`http::Transport`] supplies it: rustls on
//! `ring` (no aws-lc), keep-alive, `max_connections`, timeouts, retries,
//! same-origin redirects, credentials and response caps. libdav falls short
//! in two places handled here: it maps a 412 on `DELETE` to a plain status
//! (we branch on the status), and its `sync-collection` parser ignores a
//! 507 "truncated" answer (we look for it in the raw answer and fall back to
//! a full listing).

mod config;
pub mod http;
#[cfg(any(test, feature = "testing"))]
pub mod proxy;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;

pub use config::{Credentials, CredentialsError, DavConfig, Secret};

use crate::native;
use ::http::{StatusCode, Uri};
use async_trait::async_trait;
use libdav::caldav::{CalendarComponent, CreateCalendar, FindCalendarHomeSet, FindCalendars};
use libdav::carddav::{CreateAddressBook, FindAddressBookHomeSet, FindAddressBooks};
use libdav::dav::{
    Delete, FindPropertyHrefs, GetEtag, ListResources, Propfind, PutResource, RequestError,
    SyncCollection, WebDavClient, WebDavError,
};
use libdav::names;
use libdav::requests::DavRequest;
use libdav::Depth;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tandem_formats::Format;
use tandem_record::{FieldChange, Kind};
use tandem_store::naming;
use tandem_store::{
    Changes, Error, ErrorKind, Item, ItemError, Listed, NewItem, Result, Store, Written, ROOT,
};
use tokio::sync::OnceCell;

use self::http::{Transport, TransportConfig, TransportError};

/// Items asked for in one multiget.
const MULTIGET_BATCH: usize = 100;

/// Which protocol a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    CardDav,
    CalDav,
}

impl Protocol {
    /// The protocol that carries records of `kind`.
    pub fn for_kind(kind: Kind) -> Protocol {
        match kind {
            Kind::Contact => Protocol::CardDav,
            Kind::Event | Kind::Task => Protocol::CalDav,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Protocol::CardDav => "carddav",
            Protocol::CalDav => "caldav",
        }
    }
}

/// Why a DAV store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("`url` {url:?} is not an http(s) URL")]
    BadUrl { url: String },
    #[error(
        "`url` {url:?} holds a user name or password; put the user name in `username` and the password in password_env, password_file or password_cmd"
    )]
    CredentialsInUrl { url: String },
    #[error(
        "plain http to {host} sends everything in clear; use https or set insecure_http = true"
    )]
    InsecureHttp { host: String },
    #[error("type = \"{store_type}\" cannot hold {kind} records (use {wanted})")]
    WrongKind {
        store_type: String,
        kind: Kind,
        wanted: &'static str,
    },
    #[error("max_connections must be at least 1")]
    NoConnections,
    #[error("collection name {0:?} is not a plain path segment")]
    BadCollection(String),
    #[error("ca_file {path}: {message}")]
    CaFile { path: String, message: String },
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// A CardDAV or CalDAV store. See the module docs.
#[derive(Clone)]
pub struct DavStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DavStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DavStore")
            .field("url", &self.inner.config.url)
            .field("kind", &self.inner.kind)
            .finish_non_exhaustive()
    }
}

struct Inner {
    client: WebDavClient<Transport>,
    kind: Kind,
    protocol: Protocol,
    format: Format,
    config: DavConfig,
    layout: OnceCell<Layout>,
    /// Sibling collections created by this store (collection mode).
    created: Mutex<BTreeSet<String>>,
}

/// Where the store's collections are on the server.
#[derive(Debug, Clone)]
struct Layout {
    /// The home set (or the root collection's parent), ending in `/`.
    home: String,
    /// The root collection's href, ending in `/`.
    root: String,
    /// `url` named one collection: siblings only when asked for.
    single: bool,
}

impl DavStore {
    /// A store speaking `protocol` for records of `kind`. Nothing is sent
    /// until the store is used; the secret is read now.
    pub fn new(
        config: DavConfig,
        protocol: Protocol,
        kind: Kind,
    ) -> std::result::Result<Self, OpenError> {
        if Protocol::for_kind(kind) != protocol {
            return Err(OpenError::WrongKind {
                store_type: protocol.name().to_string(),
                kind,
                wanted: Protocol::for_kind(kind).name(),
            });
        }
        let shown = config::redact_url(&config.url);
        if shown != config.url {
            return Err(OpenError::CredentialsInUrl { url: shown });
        }
        let url: Uri = config.url.parse().map_err(|_| OpenError::BadUrl {
            url: config.url.clone(),
        })?;
        let host = url.host().unwrap_or_default().to_string();
        match url.scheme_str() {
            Some("https") => {}
            Some("http") if config.insecure_http || is_loopback(&host) => {}
            Some("http") => return Err(OpenError::InsecureHttp { host }),
            _ => {
                return Err(OpenError::BadUrl {
                    url: config.url.clone(),
                })
            }
        }
        if host.is_empty() {
            return Err(OpenError::BadUrl {
                url: config.url.clone(),
            });
        }
        if config.max_connections == 0 {
            return Err(OpenError::NoConnections);
        }
        for name in config.collections.iter().flatten() {
            if !is_collection_name(name) {
                return Err(OpenError::BadCollection(name.clone()));
            }
        }
        let extra_roots = match &config.ca_file {
            Some(path) => read_ca_file(path)?,
            None => Vec::new(),
        };
        let transport = Transport::new(TransportConfig {
            origin: url.clone(),
            credentials: config.credentials()?,
            max_connections: config.max_connections,
            timeout: Duration::from_secs(config.timeout.max(1)),
            retries: config.retries,
            extra_roots,
        })?;
        Ok(DavStore {
            inner: Arc::new(Inner {
                client: WebDavClient::new(url, transport),
                kind,
                protocol,
                format: Format::for_kind(kind),
                config,
                layout: OnceCell::new(),
                created: Mutex::new(BTreeSet::new()),
            }),
        })
    }

    /// The href of a collection (discovering the layout on first use).
    pub async fn collection_href(&self, collection: &str) -> Result<String> {
        self.inner.href(collection).await
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn read_ca_file(
    path: &std::path::Path,
) -> std::result::Result<Vec<rustls::pki_types::CertificateDer<'static>>, OpenError> {
    use rustls::pki_types::pem::PemObject;
    let error = |message: String| OpenError::CaFile {
        path: path.display().to_string(),
        message,
    };
    let certs: std::result::Result<Vec<_>, _> =
        rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|err| error(err.to_string()))?
            .collect();
    let certs = certs.map_err(|err| error(err.to_string()))?;
    if certs.is_empty() {
        return Err(error("no certificate in it".into()));
    }
    Ok(certs)
}

/// A collection name that is one path segment.
fn is_collection_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
}

/// The last segment of an href, percent-decoded (`/u/work/` → `work`).
fn last_segment(href: &str) -> String {
    let segment = href
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// `href` with a trailing slash.
fn dir(href: &str) -> String {
    if href.ends_with('/') {
        href.to_string()
    } else {
        format!("{href}/")
    }
}

/// The parent of a collection href (`/u/work/` → `/u/`).
fn parent(href: &str) -> String {
    let trimmed = href.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(at) => trimmed[..=at].to_string(),
        None => "/".to_string(),
    }
}

/// Characters escaped in a collection name put in an href.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'@');

/// The status a DAV error carries, when it is one.
fn status_of(err: &WebDavError<TransportError>) -> Option<StatusCode> {
    match err {
        WebDavError::BadStatusCode(status) => Some(*status),
        WebDavError::PreconditionFailed(_) => Some(StatusCode::PRECONDITION_FAILED),
        _ => None,
    }
}

/// A DAV error as a store error.
fn dav_error(what: &str, err: WebDavError<TransportError>) -> Error {
    let kind = match (&err, status_of(&err)) {
        (_, Some(StatusCode::NOT_FOUND | StatusCode::GONE)) => ErrorKind::NotFound,
        (_, Some(StatusCode::PRECONDITION_FAILED)) => ErrorKind::PreconditionFailed,
        (_, Some(status)) if http::is_passing(status) => ErrorKind::Unavailable,
        // An answer refused whole (a DTD, too large, a redirect elsewhere)
        // is no passing fault.
        (
            WebDavError::Request(RequestError::Client(
                TransportError::Connect { .. } | TransportError::Timeout { .. },
            )),
            _,
        ) => ErrorKind::Unavailable,
        (WebDavError::Request(RequestError::Client(_)), _) => ErrorKind::Invalid,
        (WebDavError::Request(_), _) => ErrorKind::Unavailable,
        _ => ErrorKind::Invalid,
    };
    let hint = match status_of(&err) {
        Some(StatusCode::UNAUTHORIZED) => " (check username and password)",
        Some(StatusCode::FORBIDDEN) => " (the account may not do this)",
        _ => "",
    };
    Error::new(kind, format!("{what}: {err}{hint}"))
}

impl Inner {
    async fn layout(&self) -> Result<&Layout> {
        self.layout.get_or_try_init(|| self.discover()).await
    }

    fn url_path(&self) -> String {
        let path = self.client.base_url().path();
        dir(if path.is_empty() { "/" } else { path })
    }

    /// Finds the root collection and the home set; see the module docs.
    async fn discover(&self) -> Result<Layout> {
        let path = self.url_path();
        let wanted = match self.protocol {
            Protocol::CardDav => names::ADDRESSBOOK,
            Protocol::CalDav => names::CALENDAR,
        };
        match self.resource_type(&path, &wanted).await? {
            // A collection of ours, or one that does not exist yet.
            Some(true) => return Ok(self.single(&path)),
            None if path != "/" => return Ok(self.single(&path)),
            _ => {}
        }
        let principal = match self.principal_at(&path).await? {
            Some(principal) => principal,
            None => {
                let well_known = format!("/.well-known/{}", self.protocol.name());
                self.principal_at(&well_known)
                    .await?
                    .unwrap_or(path.clone())
            }
        };
        let homes = match self.protocol {
            Protocol::CardDav => self
                .client
                .request(FindAddressBookHomeSet::new(&principal))
                .await
                .map(|r| r.home_sets),
            Protocol::CalDav => self
                .client
                .request(FindCalendarHomeSet::new(&principal))
                .await
                .map(|r| r.home_sets),
        }
        .map_err(|err| dav_error(&format!("home set of {principal}"), err))?;
        let home = homes.first().map(|uri| dir(uri.path())).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("{principal} names no {} home set", self.protocol.name()),
            )
        })?;
        tracing::debug!(%principal, %home, "discovered");
        Ok(Layout {
            root: format!("{home}default/"),
            home,
            single: false,
        })
    }

    /// Whether a resource's `resourcetype` holds `wanted`; `None` when the
    /// resource does not exist (a 404, or a 207 whose response says 404).
    async fn resource_type(
        &self,
        path: &str,
        wanted: &libdav::PropertyName<'_, '_>,
    ) -> Result<Option<bool>> {
        let propfind = Propfind::new(path)
            .with_properties(&[&names::RESOURCETYPE])
            .with_depth(Depth::Zero);
        let response = match self.client.request(propfind).await {
            Ok(response) => response,
            Err(err) if status_of(&err) == Some(StatusCode::NOT_FOUND) => return Ok(None),
            Err(err) => return Err(dav_error(&format!("PROPFIND {path}"), err)),
        };
        let doc = response
            .xml_tree()
            .map_err(|err| Error::new(ErrorKind::Invalid, format!("PROPFIND {path}: {err}")))?;
        let gone = doc
            .descendants()
            .filter(|n| n.tag_name() == names::RESPONSE)
            .flat_map(|r| r.children().filter(|n| n.tag_name() == names::STATUS))
            .any(|status| status.text().is_some_and(|t| t.contains(" 404 ")));
        if gone {
            return Ok(None);
        }
        let ours = doc
            .descendants()
            .find(|n| n.tag_name() == names::RESOURCETYPE)
            .is_some_and(|rt| rt.descendants().any(|n| n.tag_name() == *wanted));
        Ok(Some(ours))
    }

    fn single(&self, path: &str) -> Layout {
        Layout {
            home: parent(path),
            root: path.to_string(),
            single: true,
        }
    }

    async fn principal_at(&self, path: &str) -> Result<Option<String>> {
        match self
            .client
            .request(FindPropertyHrefs::new(path, &names::CURRENT_USER_PRINCIPAL))
            .await
        {
            Ok(found) => Ok(found.hrefs.first().map(|uri| dir(uri.path()))),
            Err(err) if status_of(&err).is_some_and(|s| s.is_client_error()) => Ok(None),
            Err(err) => Err(dav_error(&format!("current-user-principal at {path}"), err)),
        }
    }

    async fn href(&self, collection: &str) -> Result<String> {
        let layout = self.layout().await?;
        if collection == ROOT {
            return Ok(layout.root.clone());
        }
        if !is_collection_name(collection) {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("collection name `{collection}` is not a plain path segment"),
            ));
        }
        let segment = percent_encoding::utf8_percent_encode(collection, SEGMENT);
        Ok(format!("{}{segment}/", layout.home))
    }

    /// The id of the item a server's answer names at `href`: its last
    /// segment, as the server spells it, when `href` is a resource directly
    /// inside the collection at `collection` on the store's origin. Any other
    /// href (another collection, `..`, another host) refuses the whole
    /// answer: skipping the item would read as a delete.
    fn member_id(&self, collection: &str, href: &str) -> Result<String> {
        let base = self.client.base_url();
        let path = match href.parse::<Uri>() {
            Ok(uri) if uri.scheme().is_some() => (uri.scheme() == base.scheme()
                && uri.authority() == base.authority())
            .then(|| uri.path().to_string()),
            _ => Some(href.to_string()),
        };
        let member = path.and_then(|path| {
            let (parent, name) = path.rsplit_once('/')?;
            let decoded = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
            let plain = !matches!(decoded.as_ref(), "" | "." | "..")
                && !decoded.contains('/')
                && !decoded.chars().any(char::is_control);
            (plain && same_segments(&format!("{parent}/"), collection)).then(|| name.to_string())
        });
        member.ok_or_else(|| {
            Error::new(
                ErrorKind::Invalid,
                format!(
                    "{collection}: the server's answer names `{}`, which is not an item of this collection; answer refused",
                    href.escape_debug()
                ),
            )
        })
    }

    fn item_href(collection_href: &str, id: &str) -> Result<String> {
        if id.is_empty() || id.contains('/') || id == "." || id == ".." {
            return Err(
                Error::new(ErrorKind::Invalid, "not a resource name of this store").with_id(id),
            );
        }
        Ok(format!("{collection_href}{id}"))
    }

    async fn collections(&self) -> Result<Vec<String>> {
        let layout = self.layout().await?;
        let mut names: BTreeSet<String> = BTreeSet::new();
        if layout.single {
            names.extend(self.config.collections.iter().flatten().cloned());
            if let Ok(created) = self.created.lock() {
                names.extend(created.iter().cloned());
            }
        } else {
            let found = match self.protocol {
                Protocol::CardDav => self
                    .client
                    .request(FindAddressBooks::new(&layout.home))
                    .await
                    .map(|r| r.addressbooks),
                Protocol::CalDav => self
                    .client
                    .request(FindCalendars::new(&layout.home))
                    .await
                    .map(|r| r.calendars),
            }
            .map_err(|err| dav_error(&format!("collections of {}", layout.home), err))?;
            for collection in found {
                if dir(&collection.href) == layout.root {
                    continue;
                }
                let name = last_segment(&collection.href);
                let wanted = self
                    .config
                    .collections
                    .as_ref()
                    .is_none_or(|names| names.contains(&name));
                if wanted && is_collection_name(&name) {
                    names.insert(name);
                }
            }
        }
        let mut list = vec![ROOT.to_string()];
        list.extend(names);
        Ok(list)
    }

    async fn create_collection(&self, name: &str) -> Result<()> {
        let href = self.href(name).await?;
        if !self.config.create_collections {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "collection `{name}` ({href}) is missing on the server and create_collections is off"
                ),
            ));
        }
        let created = match self.protocol {
            Protocol::CardDav => self
                .client
                .request(CreateAddressBook::new(&href))
                .await
                .map(|_| ()),
            Protocol::CalDav => {
                let components = match self.kind {
                    Kind::Task => [CalendarComponent::VTodo],
                    _ => [CalendarComponent::VEvent],
                };
                self.client
                    .request(CreateCalendar::new(&href).with_components(&components))
                    .await
                    .map(|_| ())
            }
        };
        match created {
            Ok(()) => {}
            // Already there (a second run, another client).
            Err(err) if status_of(&err) == Some(StatusCode::METHOD_NOT_ALLOWED) => {}
            Err(err) => return Err(dav_error(&format!("creating {href}"), err)),
        }
        if name != ROOT {
            if let Ok(mut created) = self.created.lock() {
                created.insert(name.to_string());
            }
        }
        Ok(())
    }

    async fn list(&self, collection: &str) -> Result<Vec<Listed>> {
        let href = self.href(collection).await?;
        let listed = self
            .client
            .request(ListResources::new(&href))
            .await
            .map_err(|err| dav_error(&format!("listing {href}"), err))?;
        let mut items = Vec::with_capacity(listed.resources.len());
        for resource in listed.resources {
            if resource.resource_type.is_collection || dir(&resource.href) == href {
                continue;
            }
            let Some(etag) = resource.etag else { continue };
            items.push(Listed {
                id: self.member_id(&href, &resource.href)?,
                version: etag,
            });
        }
        if items.is_empty() {
            // Some servers (Xandikos) answer a missing collection with an
            // empty 207; an empty listing is checked once more.
            let any = libdav::names::COLLECTION;
            if self.resource_type(&href, &any).await?.is_none() {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("{href} is not on the server"),
                ));
            }
        }
        Ok(items)
    }

    async fn fetch_batch(
        &self,
        href: &str,
        ids: &[String],
    ) -> Result<Vec<std::result::Result<Item, ItemError>>> {
        let hrefs: Vec<String> = ids
            .iter()
            .map(|id| Inner::item_href(href, id))
            .collect::<Result<_>>()?;
        let resources = match self.protocol {
            Protocol::CardDav => self
                .client
                .request(libdav::carddav::GetAddressBookResources::new(href).with_hrefs(&hrefs))
                .await
                .map(|r| r.resources),
            Protocol::CalDav => self
                .client
                .request(libdav::caldav::GetCalendarResources::new(href).with_hrefs(&hrefs))
                .await
                .map(|r| r.resources),
        }
        .map_err(|err| dav_error(&format!("multiget in {href}"), err))?;
        let mut by_id: HashMap<String, libdav::FetchedResource> = HashMap::new();
        for resource in resources {
            by_id.insert(self.member_id(href, &resource.href)?, resource);
        }
        Ok(ids
            .iter()
            .map(|id| {
                let missing = || ItemError {
                    id: id.clone(),
                    kind: ErrorKind::NotFound,
                    field: None,
                    message: format!("{href}{id} is not on the server"),
                };
                let resource = by_id.remove(id).ok_or_else(missing)?;
                match resource.content {
                    Ok(content) => {
                        let where_ = format!("{href}{id}");
                        let record = native::parse_item(self.format, id, &where_, &content.data)?;
                        Ok(Item {
                            id: id.clone(),
                            version: content.etag,
                            record,
                            raw: Some(tandem_store::Raw {
                                media_type: self.format.media_type().to_string(),
                                text: content.data,
                            }),
                        })
                    }
                    Err(StatusCode::NOT_FOUND | StatusCode::GONE) => Err(missing()),
                    Err(status) => Err(ItemError {
                        id: id.clone(),
                        kind: ErrorKind::Unavailable,
                        field: None,
                        message: format!("{href}{id}: the server answered {status}"),
                    }),
                }
            })
            .collect())
    }

    /// The ETag of a resource just written, when the PUT answer had none.
    async fn etag_of(&self, href: &str, given: Option<String>) -> Result<String> {
        match given {
            Some(etag) => Ok(etag),
            None => self
                .client
                .request(GetEtag::new(href))
                .await
                .map(|r| r.etag)
                .map_err(|err| dav_error(&format!("ETag of {href}"), err)),
        }
    }

    async fn create(&self, collection: &str, item: &NewItem) -> Result<Written> {
        let text = native::text_to_create(self.format, item)?;
        let href = self.href(collection).await?;
        let name = naming::name_for_uid(
            &item.record.uid,
            self.format.extension(),
            naming::is_safe_url_segment,
        );
        let item_href = format!("{href}{name}");
        let put = PutResource::new(&item_href).create(text, self.format.media_type());
        match self.client.request(put).await {
            Ok(answer) => Ok(Written {
                version: self.etag_of(&item_href, answer.etag).await?,
                id: name,
            }),
            Err(err) if status_of(&err) == Some(StatusCode::PRECONDITION_FAILED) => {
                self.existing(&href, &name, item).await
            }
            Err(err) => Err(dav_error(&format!("PUT {item_href}"), err).with_id(name)),
        }
    }

    /// A create found the resource there: the same item makes it a no-op.
    async fn existing(&self, href: &str, name: &str, item: &NewItem) -> Result<Written> {
        let found = self.fetch_batch(href, &[name.to_string()]).await?;
        let conflict = match found.into_iter().next() {
            Some(Ok(found)) if found.record.uid != item.record.uid => format!(
                "{href}{name} holds another item (UID `{}`)",
                found.record.uid
            ),
            Some(Ok(found)) if found.record.same_content(&item.record) => {
                return Ok(Written {
                    id: name.to_string(),
                    version: found.version,
                })
            }
            Some(Ok(found)) => format!(
                "{href}{name} holds this UID with other content (fields {:?} differ)",
                found.record.changed_fields(&item.record)
            ),
            Some(Err(err)) => format!("{href}{name} exists and cannot be read: {err}"),
            None => format!("{href}{name} exists and cannot be read"),
        };
        Err(Error::new(ErrorKind::AlreadyExists, conflict).with_id(name))
    }

    async fn update(
        &self,
        collection: &str,
        current: &Item,
        expected: &str,
        changes: &[FieldChange],
    ) -> Result<Written> {
        let href = self.href(collection).await?;
        let id = current.id.as_str();
        let item_href = Inner::item_href(&href, id)?;
        let original = match &current.raw {
            Some(raw) if current.version == expected && native::is_format(raw, self.format) => {
                raw.text.clone()
            }
            _ => {
                let fetched = self.fetch_batch(&href, &[id.to_string()]).await?;
                match fetched.into_iter().next() {
                    Some(Ok(item)) if item.version == expected => {
                        item.raw.map(|r| r.text).unwrap_or_default()
                    }
                    Some(Ok(item)) => return Err(stale(&item_href, id, expected, &item.version)),
                    Some(Err(err)) => return Err(Error::new(err.kind, err.message).with_id(id)),
                    None => return Err(Error::new(ErrorKind::NotFound, item_href).with_id(id)),
                }
            }
        };
        let patched = tandem_formats::patch(self.format, &original, changes)
            .map_err(|err| native::format_error(&item_href, err).with_id(id))?;
        let put = PutResource::new(&item_href).update(patched, self.format.media_type(), expected);
        match self.client.request(put).await {
            Ok(answer) => Ok(Written {
                id: id.to_string(),
                version: self.etag_of(&item_href, answer.etag).await?,
            }),
            Err(err) => {
                Err(dav_error(&format!("PUT {item_href} (If-Match {expected})"), err).with_id(id))
            }
        }
    }

    async fn delete(&self, collection: &str, id: &str, expected: &str) -> Result<()> {
        let href = self.href(collection).await?;
        let item_href = Inner::item_href(&href, id)?;
        self.client
            .request(Delete::new(&item_href).with_etag(expected))
            .await
            .map(|_| ())
            .map_err(|err| {
                dav_error(&format!("DELETE {item_href} (If-Match {expected})"), err).with_id(id)
            })
    }

    /// One `sync-collection` report; `None` token: everything, with a token.
    async fn changes_since(&self, collection: &str, token: Option<&str>) -> Result<Changes> {
        let href = self.href(collection).await?;
        let mut report = SyncCollection::new(&href);
        if let Some(token) = token {
            report = report.with_sync_token(token);
        }
        let request = report
            .prepare_request(self.client.base_url().clone())
            .map_err(|err| {
                Error::new(ErrorKind::Invalid, format!("sync-collection {href}: {err}"))
            })?;
        let (head, body) = self.client.request_raw(request).await.map_err(|err| {
            Error::new(
                ErrorKind::Unavailable,
                format!("sync-collection {href}: {err}"),
            )
        })?;
        match head.status {
            StatusCode::NOT_FOUND => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("{href} is not on the server"),
                ))
            }
            StatusCode::FORBIDDEN | StatusCode::CONFLICT if token.is_some() => {
                return Err(Error::new(
                    ErrorKind::PreconditionFailed,
                    format!("sync-collection {href}: the sync token expired; list instead"),
                ))
            }
            StatusCode::FORBIDDEN
            | StatusCode::NOT_IMPLEMENTED
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::BAD_REQUEST => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "{href}: the server has no sync-collection ({})",
                        head.status
                    ),
                ))
            }
            _ => {}
        }
        if String::from_utf8_lossy(&body).contains(" 507 ") {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "sync-collection {href}: the server truncated the answer (507); list instead"
                ),
            ));
        }
        let parsed = report.parse_response(&head, &body).map_err(|err| {
            Error::new(ErrorKind::Invalid, format!("sync-collection {href}: {err}"))
        })?;
        let mut changed = Vec::new();
        for resource in parsed.changed {
            if resource.resource_type.is_collection || dir(&resource.href) == href {
                continue;
            }
            if let Some(version) = resource.etag {
                changed.push(Listed {
                    id: self.member_id(&href, &resource.href)?,
                    version,
                });
            }
        }
        let deleted = parsed
            .deleted
            .iter()
            .map(|h| self.member_id(&href, h))
            .collect::<Result<_>>()?;
        Ok(Changes {
            changed,
            deleted,
            token: parsed.new_sync_token,
        })
    }
}

/// Whether two paths name the same segments once percent-decoded.
fn same_segments(a: &str, b: &str) -> bool {
    fn decode(segment: &str) -> std::borrow::Cow<'_, str> {
        percent_encoding::percent_decode_str(segment).decode_utf8_lossy()
    }
    a.split('/').map(decode).eq(b.split('/').map(decode))
}

fn stale(href: &str, id: &str, expected: &str, actual: &str) -> Error {
    Error::new(
        ErrorKind::PreconditionFailed,
        format!("{href} changed: expected ETag {expected}, found {actual}"),
    )
    .with_id(id)
}

#[async_trait]
impl Store for DavStore {
    async fn collections(&self) -> Result<Vec<String>> {
        self.inner.collections().await
    }

    async fn create_collection(&self, name: &str) -> Result<()> {
        self.inner.create_collection(name).await
    }

    async fn list(&self, collection: &str) -> Result<Vec<Listed>> {
        self.inner.list(collection).await
    }

    async fn fetch(
        &self,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<std::result::Result<Item, ItemError>>> {
        let href = self.inner.href(collection).await?;
        if ids.is_empty() {
            // Still says whether the collection exists.
            self.inner.list(collection).await?;
            return Ok(Vec::new());
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (n, batch) in ids.chunks(MULTIGET_BATCH).enumerate() {
            let inner = Arc::clone(&self.inner);
            let href = href.clone();
            let batch = batch.to_vec();
            tasks.spawn(async move { (n, inner.fetch_batch(&href, &batch).await) });
        }
        let mut parts = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (n, part) = joined
                .map_err(|err| Error::new(ErrorKind::Io, format!("a fetch task failed: {err}")))?;
            parts.push((n, part?));
        }
        parts.sort_by_key(|(n, _)| *n);
        Ok(parts.into_iter().flat_map(|(_, part)| part).collect())
    }

    async fn create(&self, collection: &str, item: &NewItem) -> Result<Written> {
        self.inner.create(collection, item).await
    }

    async fn update(
        &self,
        collection: &str,
        current: &Item,
        expected: &str,
        changes: &[FieldChange],
    ) -> Result<Written> {
        self.inner
            .update(collection, current, expected, changes)
            .await
    }

    async fn delete(&self, collection: &str, id: &str, expected: &str) -> Result<()> {
        self.inner.delete(collection, id, expected).await
    }

    fn rewrites_items(&self) -> bool {
        true
    }

    async fn changes_since(&self, collection: &str, token: Option<&str>) -> Result<Changes> {
        self.inner.changes_since(collection, token).await
    }
}
