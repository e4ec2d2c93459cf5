//! Test support: a fault-injecting HTTP proxy between the DAV store and a
//! real server, so retries, resets, truncated answers, ETag churn and hostile
//! answers can be tested against real Radicale or Xandikos data.
//!
//! The proxy listens on a free 127.0.0.1 port, runs on a thread of its own
//! (usable from synchronous tests that drive the `tandem` binary and from
//! async tests alike) and forwards each request to the server unchanged,
//! unless a fault applies to it. Faults are *scripted* (the next requests of
//! a method get these faults, in order) or *random* (each request, with a
//! given probability, gets one of a set of faults, drawn from a seeded
//! generator). Every request is logged with its arrival time, whether it
//! carried an `Authorization` header and the fault it got.
//!
//! What each fault does, and what a real server or network does alike:
//! - [`Fault::ServerError`]: `503`, the server never sees the request (an
//!   overloaded front end).
//! - [`Fault::TooManyRequests`]: `429` with `Retry-After` in seconds, the
//!   server never sees the request (a rate limiter).
//! - [`Fault::Delay`]: the request is done, its answer held back this long
//!   (a slow server; past the client's timeout the answer is lost).
//! - [`Fault::Reset`]: the request is done, then the connection drops half
//!   way through the answer's body (a network failure after a write).
//! - [`Fault::Truncate`]: the request is done and the answer ends half way,
//!   its length consistent (a proxy or server that cuts a large answer).
//! - [`Fault::Answer`]: a canned answer instead of the server's. Used for
//!   what no real server sends on purpose (XXE, billion laughs, hrefs
//!   outside the collection, redirects to another origin), so a mock is the
//!   only way to test Tandem's refusal of them.
//!
//! **ETag churn** ([`Proxy::etag_churn`]) models a server whose ETags change
//! on every answer although the content did not (ETags computed when an
//! item is serialised, or per front-end node): every ETag the proxy passes
//! on gets a fresh `-churnN` suffix, in headers and in `getetag` elements,
//! and `If-Match` suffixes are stripped on the way in, so the server accepts
//! any ETag it handed out for the current content.

use http::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, ETAG, HOST, IF_MATCH};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// What the proxy does to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `503 Service Unavailable`; the request is not forwarded.
    ServerError,
    /// `429 Too Many Requests` with `Retry-After: retry_after`; not forwarded.
    TooManyRequests { retry_after: u64 },
    /// Forwarded; the answer is sent after this delay.
    Delay(Duration),
    /// Forwarded; the connection drops half way through the answer's body.
    Reset,
    /// Forwarded; only the first half of the answer's body is sent (with a
    /// matching `Content-Length`). Applies to answers with a body only.
    Truncate,
    /// Not forwarded; this answer is sent instead.
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
}

impl Fault {
    /// A short name for counting faults by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::ServerError => "503",
            Fault::TooManyRequests { .. } => "429",
            Fault::Delay(_) => "delay",
            Fault::Reset => "reset",
            Fault::Truncate => "truncate",
            Fault::Answer { .. } => "answer",
        }
    }

    /// A canned XML answer (`207 Multi-Status` unless `status` says else).
    pub fn xml(status: u16, body: impl Into<String>) -> Fault {
        Fault::Answer {
            status,
            headers: vec![(
                "content-type".into(),
                "application/xml; charset=utf-8".into(),
            )],
            body: body.into(),
        }
    }

    /// A redirect to `location`.
    pub fn redirect(location: impl Into<String>) -> Fault {
        Fault::Answer {
            status: 302,
            headers: vec![("location".into(), location.into())],
            body: String::new(),
        }
    }
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    /// When the request arrived.
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// The request carried an `Authorization` header.
    pub authorized: bool,
    /// The fault it got, if any (a [`Fault::Truncate`] that found no body
    /// to cut is not counted).
    pub fault: Option<Fault>,
}

/// Random faults: each request gets one of `kinds` with probability `rate`.
struct Random {
    rate: f64,
    kinds: Vec<Fault>,
    rng: fastrand::Rng,
}

#[derive(Default)]
struct Script {
    /// (method or any, fault), taken by the first matching request.
    queue: VecDeque<(Option<String>, Fault)>,
    random: Option<Random>,
}

struct Shared {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    script: Mutex<Script>,
    log: Mutex<Vec<Logged>>,
    churn: AtomicBool,
    no_feed: AtomicBool,
    generation: AtomicU64,
}

/// A running proxy; stopped when dropped.
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// A proxy on a free port forwarding to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared {
            upstream: format!("127.0.0.1:{upstream}"),
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            script: Mutex::new(Script::default()),
            log: Mutex::new(Vec::new()),
            churn: AtomicBool::new(false),
            no_feed: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(serve(listener, serving, stopped));
        });
        Proxy {
            port,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `url` (on the server) with the proxy's port instead of the server's.
    pub fn url(&self, url: &str) -> String {
        let rest = url
            .strip_prefix("http://127.0.0.1:")
            .expect("a 127.0.0.1 URL");
        let path = rest.find('/').map_or("", |at| &rest[at..]);
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next requests with this method (`None`: any) get these faults,
    /// one each, in order.
    pub fn script(&self, method: Option<&str>, faults: impl IntoIterator<Item = Fault>) {
        let mut script = self.shared.script.lock().expect("proxy script");
        for fault in faults {
            script.queue.push_back((method.map(str::to_string), fault));
        }
    }

    /// From now on each request gets one of `kinds` with probability
    /// `rate`, drawn from a generator seeded with `seed`.
    pub fn random(&self, rate: f64, seed: u64, kinds: &[Fault]) {
        let mut script = self.shared.script.lock().expect("proxy script");
        script.random = Some(Random {
            rate,
            kinds: kinds.to_vec(),
            rng: fastrand::Rng::with_seed(seed),
        });
    }

    /// No more faults: scripted and random ones are dropped.
    pub fn calm(&self) {
        let mut script = self.shared.script.lock().expect("proxy script");
        *script = Script::default();
    }

    /// Turns ETag churn on or off (see the module docs).
    pub fn etag_churn(&self, on: bool) {
        self.shared.churn.store(on, Ordering::SeqCst);
    }

    /// Answers `sync-collection` reports with `501 Not Implemented`, as a
    /// server without change feeds does, so every run lists in full.
    pub fn hide_sync_collection(&self, on: bool) {
        self.shared.no_feed.store(on, Ordering::SeqCst);
    }

    /// Every request seen so far.
    pub fn log(&self) -> Vec<Logged> {
        self.shared.log.lock().expect("proxy log").clone()
    }

    /// Faults injected so far, by [`Fault::kind`].
    pub fn injected(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for logged in self.log() {
            if let Some(fault) = &logged.fault {
                *counts.entry(fault.kind()).or_default() += 1;
            }
        }
        counts
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, std::convert::Infallible>(handle(&shared, request).await) }
            });
            // A connection ended by a fault (or by the client) is no error here.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The fault for the next request, if any.
fn next_fault(shared: &Shared, method: &str) -> Option<Fault> {
    let mut script = shared.script.lock().ok()?;
    let at = script
        .queue
        .iter()
        .position(|(m, _)| m.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method)));
    if let Some(at) = at {
        return script.queue.remove(at).map(|(_, fault)| fault);
    }
    let random = script.random.as_mut()?;
    if random.kinds.is_empty() || random.rng.f64() >= random.rate {
        return None;
    }
    let pick = random.rng.usize(..random.kinds.len());
    Some(random.kinds[pick].clone())
}

async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Answer> {
    let at = Instant::now();
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let authorized = request.headers().contains_key(AUTHORIZATION);
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let fault = next_fault(shared, &method);
    let feed = method == "REPORT" && body.windows(15).any(|w| w == b"sync-collection");
    // Logged on arrival, so the log is in the order requests came in.
    let entry = log(
        shared,
        Logged {
            at,
            method,
            path,
            authorized,
            fault: fault.clone(),
        },
    );
    if feed && shared.no_feed.load(Ordering::SeqCst) && fault.is_none() {
        return status_only(StatusCode::NOT_IMPLEMENTED, None);
    }
    let response = match &fault {
        Some(Fault::ServerError) => status_only(StatusCode::SERVICE_UNAVAILABLE, None),
        Some(Fault::TooManyRequests { retry_after }) => {
            status_only(StatusCode::TOO_MANY_REQUESTS, Some(*retry_after))
        }
        Some(Fault::Answer {
            status,
            headers,
            body,
        }) => {
            let mut response = Response::new(Answer::full(Bytes::from(body.clone())));
            *response.status_mut() =
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (
                    http::header::HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        _ => {
            let (head, body) = forward(shared, parts, body).await;
            match &fault {
                Some(Fault::Delay(delay)) => {
                    tokio::time::sleep(*delay).await;
                    respond(head, Answer::full(body))
                }
                Some(Fault::Reset) => {
                    let half = body.slice(..body.len() / 2);
                    let mut response = respond(head, Answer::reset(half));
                    // Promise the whole body (at least one byte), send half.
                    response
                        .headers_mut()
                        .insert(CONTENT_LENGTH, HeaderValue::from(body.len().max(1) as u64));
                    response
                }
                Some(Fault::Truncate) if body.len() > 1 => {
                    respond(head, Answer::full(body.slice(..body.len() / 2)))
                }
                Some(Fault::Truncate) => {
                    // Nothing to cut: no fault after all.
                    if let Ok(mut log) = shared.log.lock() {
                        log[entry].fault = None;
                    }
                    respond(head, Answer::full(body))
                }
                _ => respond(head, Answer::full(body)),
            }
        }
    };
    response
}

/// Adds a request to the log; its index there.
fn log(shared: &Shared, logged: Logged) -> usize {
    let mut log = shared.log.lock().unwrap_or_else(|e| e.into_inner());
    log.push(logged);
    log.len() - 1
}

fn status_only(status: StatusCode, retry_after: Option<u64>) -> Response<Answer> {
    let mut response = Response::new(Answer::full(Bytes::new()));
    *response.status_mut() = status;
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Sends the request to the server; a failure becomes a `502`.
async fn forward(
    shared: &Shared,
    mut parts: http::request::Parts,
    body: Bytes,
) -> (http::response::Parts, Bytes) {
    let churn = shared.churn.load(Ordering::SeqCst);
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("http://{}{path}", shared.upstream)
        .parse()
        .expect("upstream URI");
    parts.headers.insert(
        HOST,
        HeaderValue::from_str(&shared.upstream).expect("host header"),
    );
    if churn {
        if let Some(value) = parts.headers.get(IF_MATCH).and_then(|v| v.to_str().ok()) {
            if let Ok(value) = HeaderValue::from_str(&unchurn(value)) {
                parts.headers.insert(IF_MATCH, value);
            }
        }
    }
    let answer = shared
        .client
        .request(Request::from_parts(parts, Full::new(body)))
        .await;
    let (mut head, body) = match answer {
        Ok(response) => {
            let (head, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (head, body)
        }
        Err(_) => {
            let (head, _) = Response::new(()).into_parts();
            let mut head = head;
            head.status = StatusCode::BAD_GATEWAY;
            (head, Bytes::new())
        }
    };
    if !churn {
        return (head, body);
    }
    let generation = shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(etag) = head.headers.get(ETAG).and_then(|v| v.to_str().ok()) {
        if let Ok(value) = HeaderValue::from_str(&churned(etag, generation)) {
            head.headers.insert(ETAG, value);
        }
    }
    let text = String::from_utf8_lossy(&body);
    let body = if text.contains("getetag>") {
        Bytes::from(churn_xml(&text, generation))
    } else {
        body
    };
    (head, body)
}

fn respond(mut head: http::response::Parts, body: Answer) -> Response<Answer> {
    // hyper frames the answer itself.
    head.headers.remove(CONTENT_LENGTH);
    head.headers.remove(http::header::TRANSFER_ENCODING);
    Response::from_parts(head, body)
}

const CHURN: &str = "-churn";

/// `"abc"` → `"abc-churn7"`.
fn churned(etag: &str, generation: u64) -> String {
    let suffix = format!("{CHURN}{generation}");
    for end in ["&quot;", "\""] {
        if let Some(inner) = etag.strip_suffix(end) {
            if !inner.is_empty() {
                return format!("{inner}{suffix}{end}");
            }
        }
    }
    format!("{etag}{suffix}")
}

/// Undoes [`churned`] in an `If-Match` value.
fn unchurn(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find(CHURN) {
        out.push_str(&rest[..at]);
        let after = &rest[at + CHURN.len()..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// Churns the text of every `getetag` element (any namespace prefix).
fn churn_xml(text: &str, generation: u64) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(at) = rest.find("getetag>") {
        let open_end = at + "getetag>".len();
        let tag_start = rest[..at].rfind('<').unwrap_or(at);
        let is_open = !rest[tag_start..at].contains('/');
        out.push_str(&rest[..open_end]);
        rest = &rest[open_end..];
        if is_open {
            let end = rest.find('<').unwrap_or(rest.len());
            out.push_str(&churned(&rest[..end], generation));
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// An answer body: whole, or cut off by a dropped connection.
pub struct Answer {
    data: Option<Bytes>,
    fail: bool,
}

impl Answer {
    fn full(data: Bytes) -> Answer {
        Answer {
            data: Some(data),
            fail: false,
        }
    }

    fn reset(data: Bytes) -> Answer {
        Answer {
            data: Some(data),
            fail: true,
        }
    }
}

impl Body for Answer {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(data) = self.data.take().filter(|d| !d.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if std::mem::take(&mut self.fail) {
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset by the proxy",
            ))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        !self.fail && self.data.as_ref().is_none_or(Bytes::is_empty)
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.data, self.fail) {
            (Some(data), false) => SizeHint::with_exact(data.len() as u64),
            (None, false) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_suffixes_etags_and_strips_them_back() {
        assert_eq!(churned("\"abc\"", 7), "\"abc-churn7\"");
        assert_eq!(churned("&quot;abc&quot;", 2), "&quot;abc-churn2&quot;");
        assert_eq!(unchurn("\"abc-churn71\""), "\"abc\"");
        let xml = "<D:response><D:getetag>\"e1\"</D:getetag></D:response><getetag>\"e2\"</getetag>";
        assert_eq!(
            churn_xml(xml, 3),
            "<D:response><D:getetag>\"e1-churn3\"</D:getetag></D:response><getetag>\"e2-churn3\"</getetag>"
        );
    }
}
