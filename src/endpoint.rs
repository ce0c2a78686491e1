//! The HTTP endpoint on `WATCHDOG_LISTEN`: `/metrics`, `/healthz`, `/readyz`, `/status`.
//!
//! Owns the [`View`], what the daemon publishes after every tick for these to read, and the
//! server (hyper, HTTP/1.1, GET only). It never runs a collection or touches alert state:
//! a scrape costs an encode, not a scan. Liveness is about the loop only (a down jobs endpoint
//! must never get the watchdog restarted); readiness also wants every collector seeing and the
//! last commit of the state to have worked.
//!
//! A flood must not cost the daemon its descriptors, its CPU or its probes: connections are
//! capped (at the cap a new one closes the oldest that has not sent a whole request head, so a
//! probe never queues behind idle sockets), a head must be complete within 2 s, and accept
//! errors (EMFILE) back off instead of spinning. With a token set, `/status` (host command
//! lines) and `/metrics` need it; the probes stay open.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::Instant;

use serde::Serialize;

use crate::metrics::Metrics;
use crate::model::{Facts, Kind, Signal};
use crate::report::CollectorReport;
use crate::store::{HistoryEvent, Mark};

/// What `/status` serves: the last tick, as the runner published it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub host: String,
    /// RFC 3339: when the tick was decided.
    pub at: String,
    pub collectors: Vec<CollectorReport>,
    /// Every signal of the tick, as `once --json` shows them.
    pub signals: Vec<Signal>,
    /// Every entity the engine holds: active or held.
    pub alerts: Vec<AlertStatus>,
}

/// One entity the engine holds.
#[derive(Debug, Clone, Serialize)]
pub struct AlertStatus {
    pub kind: Kind,
    pub entity: String,
    /// RFC 3339.
    pub since: String,
    /// RFC 3339.
    pub last_notified: String,
    pub held: bool,
    pub facts: Facts,
}

/// How many of the newest events `/status` shows.
pub const RECENT_EVENTS: usize = 20;

/// Ticks that may pass without one finishing before the loop counts as stalled.
pub const STALL_INTERVALS: u32 = 3;

/// What the endpoint shows, as of the last tick.
pub struct View {
    pub metrics: Metrics,
    /// Whether a commit to the store is in flight.
    committing: std::sync::atomic::AtomicBool,
    interval: Duration,
    fail_ticks: u32,
    inner: Mutex<Published>,
}

struct Published {
    started: Instant,
    last_tick: Option<Instant>,
    /// Per enabled collector: consecutive failed ticks and the last error.
    collectors: Vec<(String, u32, Option<String>)>,
    status: Arc<Status>,
    /// The newest events with where each went, newest first: `/status`'s `events`.
    recent: VecDeque<HistoryEvent>,
    /// Why the last commit of the state failed, while it does.
    store_error: Option<String>,
}

/// What `/status` answers: the last tick, and the newest events as they stand now.
#[derive(Serialize)]
struct StatusPage<'a> {
    #[serde(flatten)]
    status: &'a Status,
    events: &'a VecDeque<HistoryEvent>,
}

impl View {
    pub fn new(interval: Duration, fail_ticks: u32) -> Self {
        Self {
            metrics: Metrics::new(),
            committing: std::sync::atomic::AtomicBool::new(false),
            interval,
            fail_ticks,
            inner: Mutex::new(Published {
                started: Instant::now(),
                last_tick: None,
                collectors: Vec::new(),
                status: Arc::new(Status::default()),
                recent: VecDeque::new(),
                store_error: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Published> {
        // What is published is whole values; a panic elsewhere cannot leave one half-written.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes a finished tick.
    pub fn tick_done(&self, collectors: Vec<(String, u32, Option<String>)>, status: Status) {
        let mut inner = self.lock();
        inner.last_tick = Some(Instant::now());
        inner.collectors = collectors;
        inner.status = Arc::new(status);
    }

    /// `Ok` while ticks finish on schedule; the reason otherwise.
    pub fn live(&self) -> Result<(), String> {
        let inner = self.lock();
        let limit = self.interval.saturating_mul(STALL_INTERVALS);
        let (since, what) = match inner.last_tick {
            Some(at) => (at, "the last tick finished"),
            None => (inner.started, "no tick has finished since start"),
        };
        let elapsed = since.elapsed();
        if elapsed <= limit {
            Ok(())
        } else {
            Err(format!(
                "stalled: {what} {}s ago (limit {}s)",
                elapsed.as_secs(),
                limit.as_secs()
            ))
        }
    }

    /// `Ok` when live and no enabled collector has failed the fail-tick count in a row.
    pub fn ready(&self) -> Result<(), String> {
        self.live()?;
        let inner = self.lock();
        let blind: Vec<String> = inner
            .collectors
            .iter()
            .filter(|(_, streak, _)| *streak >= self.fail_ticks)
            .map(|(name, streak, error)| {
                let error = error.as_deref().unwrap_or("unknown error");
                format!("collector {name} has failed {streak} ticks in a row: {error}")
            })
            .collect();
        let mut reasons = blind;
        if let Some(error) = &inner.store_error {
            reasons.push(format!("the state cannot be saved: {error}"));
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons.join("; "))
        }
    }

    /// Whether a commit to the store is in flight (a paused-clock test holds its clock still
    /// meanwhile: the commit takes real time).
    pub fn committing(&self) -> bool {
        self.committing.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn set_committing(&self, on: bool) {
        self.committing
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Records whether the last commit of the state worked.
    pub fn store_result(&self, result: Result<(), String>) {
        self.lock().store_error = result.err();
    }

    /// Adds newly decided events, newest last in `events`.
    pub fn decided(&self, events: impl IntoIterator<Item = HistoryEvent>) {
        let mut inner = self.lock();
        for event in events {
            inner.recent.push_front(event);
        }
        inner.recent.truncate(RECENT_EVENTS);
    }

    /// Applies a delivery outcome to the event it is about, if it is among the newest.
    pub fn delivery(&self, mark: &Mark) {
        let mut inner = self.lock();
        if let Some(event) = inner.recent.iter_mut().find(|e| e.seq == mark.seq) {
            event.apply(mark);
        }
    }

    /// `/status` as JSON.
    pub fn status_json(&self) -> String {
        let status = self.status();
        let inner = self.lock();
        let page = StatusPage {
            status: &status,
            events: &inner.recent,
        };
        serde_json::to_string_pretty(&page).unwrap_or_default()
    }

    /// The last published status; shared, so a request never copies it under the lock.
    pub fn status(&self) -> Arc<Status> {
        Arc::clone(&self.lock().status)
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn answer(
    view: &View,
    token: Option<&Token>,
    request: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
    }
    let path = request.uri().path();
    if let (Some(token), "/metrics" | "/status") = (token, path) {
        let given = request.headers().get(hyper::header::AUTHORIZATION);
        if !given.is_some_and(|value| token.admits(value.as_bytes())) {
            let mut response = text(
                StatusCode::UNAUTHORIZED,
                "unauthorized: send Authorization: Bearer <WATCHDOG_LISTEN_TOKEN>\n".into(),
            );
            response.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    }
    let probe = |result: Result<(), String>, ok: &str| match result {
        Ok(()) => text(StatusCode::OK, format!("{ok}\n")),
        Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    };
    match path {
        "/metrics" => {
            let mut response = text(StatusCode::OK, view.metrics.encode());
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        "/healthz" => probe(view.live(), "ok"),
        "/readyz" => probe(view.ready(), "ready"),
        "/status" => {
            let body = view.status_json();
            let mut response = text(StatusCode::OK, body + "\n");
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz, /readyz or /status\n".into(),
        ),
    }
}

/// The bearer token of the endpoint. Never shown, not even in a debug print.
#[derive(Clone)]
pub struct Token {
    /// Its SHA-256: what a given token is compared with.
    digest: [u8; 32],
}

impl Token {
    pub fn new(token: &str) -> Self {
        Self {
            digest: sha256(token.as_bytes()),
        }
    }

    /// Whether an `Authorization` value is `Bearer <this token>` (the scheme in any case, as
    /// RFC 9110 has it). The tokens are compared in constant time, as digests, so neither the
    /// bytes nor the length of this one leak through timing.
    pub fn admits(&self, authorization: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        let Some(at) = authorization.iter().position(|&b| b == b' ') else {
            return false;
        };
        let (scheme, rest) = authorization.split_at(at);
        let given = rest.trim_ascii_start();
        scheme.eq_ignore_ascii_case(b"Bearer")
            && !given.is_empty()
            && bool::from(self.digest.ct_eq(&sha256(given)))
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// How long a client may take to send a whole request head, on a new connection and between
/// the requests of a kept-alive one.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(2);

/// The open connections, oldest first, and whether each is waiting for a request head.
struct Connections {
    max: usize,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next: u64,
    /// By id, which grows with age: the first entry is the oldest.
    open: BTreeMap<u64, Open>,
}

struct Open {
    waiting_for_head: bool,
    close: Arc<Notify>,
}

/// One admitted connection; dropping it frees its place.
struct Admitted {
    id: u64,
    close: Arc<Notify>,
    connections: Arc<Connections>,
}

impl Connections {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            table: Mutex::new(Table::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Each change is one insert or remove; a panic elsewhere cannot leave one half-made.
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes room for a new connection: at the cap, the oldest one that has not sent a whole
    /// request head is told to close. `None` when every open one is being answered.
    fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut table = self.lock();
        if table.open.len() >= self.max {
            let oldest_idle = table
                .open
                .iter()
                .find(|(_, open)| open.waiting_for_head)
                .map(|(id, _)| *id)?;
            if let Some(open) = table.open.remove(&oldest_idle) {
                // A permit: it closes even if its task has not reached its wait yet.
                open.close.notify_one();
            }
        }
        let id = table.next;
        table.next += 1;
        let close = Arc::new(Notify::new());
        table.open.insert(
            id,
            Open {
                waiting_for_head: true,
                close: Arc::clone(&close),
            },
        );
        Some(Admitted {
            id,
            close,
            connections: Arc::clone(self),
        })
    }

    fn set_waiting(&self, id: u64, waiting: bool) {
        if let Some(open) = self.lock().open.get_mut(&id) {
            open.waiting_for_head = waiting;
        }
    }

    fn len(&self) -> usize {
        self.lock().open.len()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.connections.lock().open.remove(&self.id);
    }
}

/// The pause after a failed accept: from 10 ms, doubling up to 1 s while accepts keep failing.
/// Retrying at once, as when the open-file limit is reached, only spins.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let wait = Duration::from_millis(10).saturating_mul(1 << self.failures.min(7));
        self.failures = self.failures.saturating_add(1);
        wait.min(Duration::from_secs(1))
    }
}

/// Serves `view` on `listener` until aborted, with at most `max_conn` connections open and,
/// when a `token` is given, `/status` and `/metrics` behind it.
pub async fn serve(listener: TcpListener, view: Arc<View>, max_conn: usize, token: Option<Token>) {
    let connections = Arc::new(Connections::new(max_conn));
    let token = token.map(Arc::new);
    let mut backoff = Backoff::default();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                if backoff.failures > 0 {
                    tracing::info!(failed = backoff.failures, "accepting connections again");
                }
                backoff = Backoff::default();
                stream
            }
            Err(error) => {
                let wait = backoff.next();
                if backoff.failures == 1 {
                    tracing::warn!(%error, "cannot accept a connection; backing off");
                }
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let Some(admitted) = connections.admit() else {
            // Every open connection is being answered: this one waits for none of them.
            tracing::debug!(open = connections.len(), "connection refused at the cap");
            continue;
        };
        let view = Arc::clone(&view);
        let token = token.clone();
        tokio::spawn(async move {
            let (id, close) = (admitted.id, Arc::clone(&admitted.close));
            let connections = Arc::clone(&admitted.connections);
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                // The head is whole: this connection is being answered, not idle.
                connections.set_waiting(id, false);
                let response = answer(&view, token.as_deref(), &request);
                // Answered (synchronously): a kept-alive connection now waits for its next head.
                connections.set_waiting(id, true);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                // Closed to make room: dropping the connection closes its socket.
                () = close.notified() => {}
            }
            drop(admitted);
        });
    }
}

/// `watchdog healthcheck [--ready]`: asks the running daemon's `/healthz` (or `/readyz`) and
/// returns 0 on 200, 1 otherwise, printing why. For images without curl.
pub async fn healthcheck(
    listen: Option<SocketAddr>,
    tls: &crate::tls::SharedConfig,
    ready: bool,
) -> u8 {
    let Some(mut addr) = listen else {
        eprintln!("watchdog: WATCHDOG_LISTEN=off: there is no endpoint to ask");
        return 1;
    };
    // A daemon listening on every address answers on loopback.
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let path = if ready { "readyz" } else { "healthz" };
    // Plain http to loopback, but reqwest has no crypto provider of its own: it needs the TLS
    // config every client shares.
    let tls = match tls.get() {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("watchdog: {e}");
            return 1;
        }
    };
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .tls_backend_preconfigured(rustls::ClientConfig::clone(&tls))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            eprintln!("watchdog: {e}");
            return 1;
        }
    };
    match client.get(format!("http://{addr}/{path}")).send().await {
        Ok(response) => {
            let ok = response.status().is_success();
            let body = response.text().await.unwrap_or_default();
            if ok {
                print!("{body}");
                0
            } else {
                eprint!("watchdog: /{path}: {body}");
                1
            }
        }
        Err(e) => {
            eprintln!(
                "watchdog: cannot reach http://{addr}/{path}: {}",
                e.without_url()
            );
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_stops_finishing_ticks_is_not_live_after_three_intervals() {
        let view = View::new(Duration::from_secs(30), 3);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(
            view.live(),
            Ok(()),
            "a new daemon has three intervals for its first tick"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        let reason = view.live().unwrap_err();
        assert!(
            reason.contains("no tick has finished since start"),
            "{reason}"
        );

        view.tick_done(vec![("proc".into(), 0, None)], Status::default());
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(view.live(), Ok(()), "90 s after the last tick: on schedule");
        tokio::time::advance(Duration::from_secs(1)).await;
        let reason = view.live().unwrap_err();
        assert!(
            reason.contains("stalled: the last tick finished 91s ago (limit 90s)"),
            "{reason}"
        );
        assert!(view.ready().is_err(), "not live is not ready");
    }

    #[tokio::test(start_paused = true)]
    async fn ready_needs_every_collector_below_the_fail_tick_count() {
        let view = View::new(Duration::from_secs(30), 3);
        view.tick_done(
            vec![("proc".into(), 2, Some("boom".into()))],
            Status::default(),
        );
        assert_eq!(view.ready(), Ok(()), "2 failures, the count is 3");
        view.tick_done(
            vec![("proc".into(), 3, Some("boom".into()))],
            Status::default(),
        );
        assert_eq!(
            view.ready(),
            Err("collector proc has failed 3 ticks in a row: boom".into())
        );
        assert_eq!(view.live(), Ok(()));
    }

    #[tokio::test]
    async fn not_ready_while_the_state_cannot_be_committed_and_live_all_along() {
        let view = View::new(Duration::from_secs(30), 3);
        view.tick_done(vec![("proc".into(), 0, None)], Status::default());
        view.store_result(Err("database or disk is full".into()));
        assert_eq!(
            view.ready(),
            Err("the state cannot be saved: database or disk is full".into())
        );
        assert_eq!(view.live(), Ok(()), "a full disk must not get it restarted");
        view.store_result(Ok(()));
        assert_eq!(view.ready(), Ok(()));
    }

    #[test]
    fn status_shows_the_newest_events_as_their_deliveries_stand() {
        use crate::store::{Delivery, DeliveryStatus};
        let view = View::new(Duration::from_secs(30), 3);
        let event = |seq: i64| HistoryEvent {
            seq,
            id: format!("evt_{seq}"),
            event: crate::model::EventKind::Fire,
            kind: Kind::ProcBlocking,
            entity: format!("proc:{seq}:1"),
            host: "h".into(),
            at: "2027-01-15T08:00:00Z".into(),
            summary: "s".into(),
            deliveries: vec![Delivery {
                channel: "webhook".into(),
                status: DeliveryStatus::Queued,
                attempts: 0,
                last_error: None,
            }],
        };
        view.decided((1..=RECENT_EVENTS as i64 + 5).map(event));
        view.delivery(&Mark {
            seq: RECENT_EVENTS as i64 + 5,
            channel: "webhook",
            status: DeliveryStatus::Delivered,
            attempts: 1,
            last_error: None,
        });
        let status: serde_json::Value = serde_json::from_str(&view.status_json()).unwrap();
        let events = status["events"].as_array().unwrap();
        assert_eq!(events.len(), RECENT_EVENTS);
        assert_eq!(
            events[0]["id"],
            format!("evt_{}", RECENT_EVENTS + 5),
            "newest first"
        );
        assert_eq!(events[0]["deliveries"][0]["status"], "delivered");
        assert_eq!(events[1]["deliveries"][0]["status"], "queued");
        assert!(status.get("collectors").is_some(), "the tick's fields stay");
    }

    /// Whether `admitted` was told to close (its permit is waiting).
    async fn told_to_close(admitted: &Admitted) -> bool {
        tokio::time::timeout(Duration::from_millis(10), admitted.close.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_connection_waiting_for_a_head_makes_room() {
        let connections = Arc::new(Connections::new(3));
        let first = connections.admit().unwrap();
        let second = connections.admit().unwrap();
        let third = connections.admit().unwrap();
        // The oldest is being answered: the next oldest idle one goes.
        connections.set_waiting(first.id, false);
        let fourth = connections.admit().unwrap();
        assert!(!told_to_close(&first).await, "being answered");
        assert!(told_to_close(&second).await, "the oldest idle one");
        assert!(!told_to_close(&third).await);
        assert_eq!(connections.len(), 3);
        drop(second);
        assert_eq!(connections.len(), 3, "its place was already taken");

        connections.set_waiting(third.id, false);
        connections.set_waiting(fourth.id, false);
        assert!(
            connections.admit().is_none(),
            "every open one is being answered: the new one is refused"
        );
        drop(third);
        assert!(connections.admit().is_some(), "a place came free");
    }

    #[test]
    fn accept_backoff_doubles_from_10_ms_to_1_s() {
        let mut backoff = Backoff::default();
        let waits: Vec<u128> = (0..10).map(|_| backoff.next().as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
    }

    #[test]
    fn the_token_admits_its_own_bearer_header_only_and_never_shows() {
        let token = Token::new("t0k3n");
        assert!(token.admits(b"Bearer t0k3n"));
        assert!(token.admits(b"bearer  t0k3n"), "the scheme in any case");
        for other in [
            &b"Bearer t0k3"[..],
            b"Bearer t0k3n ",
            b"Bearer T0K3N",
            b"Basic t0k3n",
            b"Bearer ",
            b"t0k3n",
            b"",
        ] {
            assert!(!token.admits(other), "{:?}", String::from_utf8_lossy(other));
        }
        assert!(!format!("{token:?}").contains("t0k3n"));
    }
}
