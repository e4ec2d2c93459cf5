//! The HTTP transport under libdav: one keep-alive connection pool (rustls
//! on the `ring` provider) wrapped in what every request needs — at most
//! `max_connections` in flight, credentials only to the configured origin, a
//! timeout, bounded retries with backoff on 5xx / 429 / 423 / connection failures
//! (honouring `Retry-After`), at most five same-origin redirects, and capped,
//! DTD-free, shallow response bodies. Each answer is logged at debug level
//! with its method, URL, status, size and time (`tandem -vv`), which is how
//! a run's time splits between the server and Tandem.

use super::config::Credentials;
use base64::Engine as _;
use http::header::{HeaderValue, AUTHORIZATION, LOCATION, RETRY_AFTER};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Largest response body read (a listing of 100k items is about 30 MB).
pub(super) const MAX_BODY: usize = 128 * 1024 * 1024;
/// Deepest XML element nesting accepted in a response.
pub(super) const MAX_XML_DEPTH: usize = 64;
/// Most redirects followed for one request.
pub(super) const MAX_REDIRECTS: usize = 5;
/// Longest wait between retries, whatever `Retry-After` says.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);
/// First wait between retries; doubled each time.
const FIRST_RETRY_WAIT: Duration = Duration::from_millis(200);

/// A request that got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot reach {uri}: {message}")]
    Connect { uri: String, message: String },
    #[error("{uri}: no answer within {seconds} s")]
    Timeout { uri: String, seconds: u64 },
    #[error("{uri}: the answer is larger than {MAX_BODY} bytes")]
    TooLarge { uri: String },
    #[error("{uri}: {message}")]
    BadXml { uri: String, message: String },
    #[error("{uri}: more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects { uri: String },
    #[error("{uri}: redirected to another origin ({location}); not followed")]
    CrossOrigin { uri: String, location: String },
    #[error("{uri}: bad redirect location `{location}`")]
    BadLocation { uri: String, location: String },
    #[error("TLS setup: {0}")]
    Tls(String),
}

/// What the transport needs from the config.
pub(super) struct TransportConfig {
    pub origin: Uri,
    pub credentials: Credentials,
    pub max_connections: usize,
    pub timeout: Duration,
    pub retries: u32,
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

/// The tower service libdav sends its requests through. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client<HttpsConnector<HttpConnector>, String>,
    scheme: String,
    authority: String,
    auth: Option<HeaderValue>,
    permits: Semaphore,
    timeout: Duration,
    retries: u32,
}

impl Transport {
    pub(super) fn new(config: TransportConfig) -> Result<Transport, TransportError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        // Redirects stay on the origin, so a plain-http origin never needs a
        // certificate: the system's (a bundle plus a folder of ~150 files,
        // 20–50 ms of a no-op run on a busy machine) are read only for https.
        if config.origin.scheme_str() != Some("http") {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                // A system certificate rustls cannot use is skipped, as curl does.
                let _ = roots.add(cert);
            }
        }
        for cert in config.extra_roots {
            roots
                .add(cert)
                .map_err(|err| TransportError::Tls(format!("ca_file: {err}")))?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| TransportError::Tls(err.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.max_connections.max(1))
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let auth = match &config.credentials {
            Credentials::None => None,
            Credentials::Basic { username, password } => {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()));
                Some(format!("Basic {token}"))
            }
            Credentials::Bearer(token) => Some(format!("Bearer {}", token.expose())),
        };
        let auth = match auth {
            Some(value) => {
                let mut value = HeaderValue::from_str(&value).map_err(|_| {
                    TransportError::Tls("the credentials hold characters a header cannot".into())
                })?;
                // Shown as "Sensitive" by Debug; never logged.
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(Transport {
            inner: Arc::new(Inner {
                client,
                scheme: config.origin.scheme_str().unwrap_or("https").to_string(),
                authority: config
                    .origin
                    .authority()
                    .map(|a| a.as_str().to_string())
                    .unwrap_or_default(),
                auth,
                permits: Semaphore::new(config.max_connections.max(1)),
                timeout: config.timeout,
                retries: config.retries,
            }),
        })
    }
}

impl Inner {
    fn same_origin(&self, uri: &Uri) -> bool {
        uri.scheme_str() == Some(self.scheme.as_str())
            && uri.authority().map(|a| a.as_str()) == Some(self.authority.as_str())
    }

    /// One attempt: a permit, the request, its body read under the cap.
    async fn attempt(
        &self,
        template: &http::request::Parts,
        uri: &Uri,
        body: &str,
    ) -> Result<(http::response::Parts, Bytes), AttemptError> {
        let mut builder = Request::builder()
            .method(template.method.clone())
            .uri(uri.clone())
            .version(template.version);
        for (name, value) in &template.headers {
            if name != AUTHORIZATION {
                builder = builder.header(name, value);
            }
        }
        if let (Some(auth), true) = (&self.auth, self.same_origin(uri)) {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        let request = builder
            .body(body.to_string())
            .map_err(|err| AttemptError::Fatal(connect(uri, err)))?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|err| AttemptError::Fatal(connect(uri, err)))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|err| AttemptError::Passing(connect(uri, err)))?;
            let (parts, body) = response.into_parts();
            let bytes = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|err| {
                    if err.is::<http_body_util::LengthLimitError>() {
                        AttemptError::Fatal(TransportError::TooLarge {
                            uri: uri.to_string(),
                        })
                    } else {
                        AttemptError::Passing(connect(uri, err))
                    }
                })?
                .to_bytes();
            Ok((parts, bytes))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(AttemptError::Passing(TransportError::Timeout {
                uri: uri.to_string(),
                seconds: self.timeout.as_secs(),
            })),
        }
    }

    /// Sends a request: redirects, retries, checks on the body.
    async fn send(
        &self,
        request: Request<String>,
    ) -> Result<Response<Full<Bytes>>, TransportError> {
        let (parts, body) = request.into_parts();
        let mut uri = parts.uri.clone();
        let mut redirects = 0;
        let mut failures = 0u32;
        let started = std::time::Instant::now();
        loop {
            let (head, bytes) = match self.attempt(&parts, &uri, &body).await {
                Ok(answer) => answer,
                Err(AttemptError::Fatal(err)) => return Err(err),
                Err(AttemptError::Passing(err)) => {
                    if failures >= self.retries {
                        return Err(err);
                    }
                    tracing::debug!(%err, "retrying");
                    tokio::time::sleep(backoff(failures, None)).await;
                    failures += 1;
                    continue;
                }
            };
            let status = head.status;
            if is_passing(status) && failures < self.retries {
                let wait = backoff(failures, head.headers.get(RETRY_AFTER));
                tracing::debug!(%uri, %status, ?wait, "server fault; retrying");
                tokio::time::sleep(wait).await;
                failures += 1;
                continue;
            }
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                if let Some(location) = head.headers.get(LOCATION) {
                    let location = String::from_utf8_lossy(location.as_bytes()).into_owned();
                    let next =
                        resolve(&uri, &location).ok_or_else(|| TransportError::BadLocation {
                            uri: uri.to_string(),
                            location: location.clone(),
                        })?;
                    if !self.same_origin(&next) {
                        return Err(TransportError::CrossOrigin {
                            uri: uri.to_string(),
                            location,
                        });
                    }
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        return Err(TransportError::TooManyRedirects {
                            uri: uri.to_string(),
                        });
                    }
                    uri = next;
                    continue;
                }
            }
            check_xml(&head, &bytes).map_err(|message| TransportError::BadXml {
                uri: uri.to_string(),
                message,
            })?;
            tracing::debug!(
                method = %parts.method,
                %uri,
                %status,
                bytes = bytes.len(),
                ms = started.elapsed().as_millis() as u64,
                "answered"
            );
            let mut response = Response::new(Full::new(bytes));
            *response.status_mut() = head.status;
            *response.headers_mut() = head.headers;
            return Ok(response);
        }
    }
}

enum AttemptError {
    /// Worth retrying (connection refused, reset, timed out).
    Passing(TransportError),
    Fatal(TransportError),
}

fn connect(uri: &Uri, err: impl std::fmt::Display) -> TransportError {
    TransportError::Connect {
        uri: uri.to_string(),
        message: err.to_string(),
    }
}

/// An answer worth asking again: a server fault (5xx), a rate limit (429),
/// or a resource locked by another write in progress (423: Xandikos
/// answers so while a concurrent write holds its git index).
pub(crate) fn is_passing(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::LOCKED
}

/// The wait before retry number `failures + 1`: `Retry-After` seconds when
/// the server gave them, else 200 ms doubled per failure; at most 30 s.
fn backoff(failures: u32, retry_after: Option<&HeaderValue>) -> Duration {
    let told = retry_after
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let wait = told.unwrap_or_else(|| FIRST_RETRY_WAIT.saturating_mul(1 << failures.min(8)));
    wait.min(MAX_RETRY_WAIT)
}

/// A redirect's target: an absolute URI, or a path on the same origin.
fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    if let Ok(uri) = location.parse::<Uri>() {
        if uri.scheme().is_some() {
            return Some(uri);
        }
    }
    if !location.starts_with('/') || location.starts_with("//") {
        return None;
    }
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(location.parse().ok()?);
    Uri::from_parts(parts).ok()
}

/// Refuses XML answers with a DTD or nested deeper than [`MAX_XML_DEPTH`]
/// before libdav parses them (roxmltree also refuses DTDs by default). An
/// answer is XML when it says so or when it starts with `<`, whatever its
/// `Content-Type` claims.
fn check_xml(head: &http::response::Parts, body: &[u8]) -> Result<(), String> {
    let is_xml = head
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("xml"))
        || body.trim_ascii_start().starts_with(b"<");
    if !is_xml {
        return Ok(());
    }
    if body
        .windows(9)
        .any(|w| w.eq_ignore_ascii_case(b"<!DOCTYPE"))
    {
        return Err("the XML answer has a DTD; refused".into());
    }
    let depth = xml_depth(body);
    if depth > MAX_XML_DEPTH {
        return Err(format!(
            "the XML answer nests {depth} deep (at most {MAX_XML_DEPTH})"
        ));
    }
    Ok(())
}

/// The deepest element nesting of an XML text, counted from its tags
/// (comments, processing instructions and CDATA are not elements).
pub(super) fn xml_depth(body: &[u8]) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while let Some(offset) = body[i..].iter().position(|b| *b == b'<') {
        let start = i + offset;
        let end = match body[start..].iter().position(|b| *b == b'>') {
            Some(len) => start + len,
            None => break,
        };
        let tag = &body[start + 1..end];
        match tag.first() {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(b'?') | Some(b'!') => {}
            Some(_) if tag.last() == Some(&b'/') => deepest = deepest.max(depth + 1),
            Some(_) => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            None => {}
        }
        i = end + 1;
    }
    deepest
}

impl tower_service::Service<Request<String>> for Transport {
    type Response = Response<Full<Bytes>>;
    type Error = TransportError;
    type Future =
        Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, TransportError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<String>) -> Self::Future {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { inner.send(request).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_elements_only() {
        assert_eq!(
            xml_depth(b"<?xml version='1.0'?><a><b/><c><d>x</d></c></a>"),
            3
        );
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(xml_depth(deep.as_bytes()), 100);
    }

    #[test]
    fn retry_waits_grow_and_honour_retry_after() {
        assert_eq!(backoff(0, None), Duration::from_millis(200));
        assert_eq!(backoff(2, None), Duration::from_millis(800));
        assert_eq!(
            backoff(0, Some(&HeaderValue::from_static("3"))),
            Duration::from_secs(3)
        );
        assert_eq!(
            backoff(0, Some(&HeaderValue::from_static("9999"))),
            MAX_RETRY_WAIT
        );
        assert_eq!(backoff(30, None), MAX_RETRY_WAIT);
    }

    #[test]
    fn redirects_resolve_on_the_origin() {
        let base: Uri = "http://127.0.0.1:8/a/".parse().unwrap();
        assert_eq!(
            resolve(&base, "/b/").unwrap().to_string(),
            "http://127.0.0.1:8/b/"
        );
        assert_eq!(
            resolve(&base, "https://x.org/").unwrap().to_string(),
            "https://x.org/"
        );
        assert!(resolve(&base, "//evil.org/").is_none());
    }
}
