//! The HTTP endpoint on `WATCHDOG_LISTEN`: `/metrics`, `/healthz`, `/readyz`, `/status`.
//!
//! Owns the [`View`], what the daemon publishes after every tick for these to read, and the
//! server (hyper, HTTP/1.1, GET only). It never runs a collection or touches alert state:
//! a scrape costs an encode, not a scan. Liveness is about the loop only (a down jobs endpoint
//! must never get the watchdog restarted); readiness also wants every collector seeing.

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
use tokio::time::Instant;

use serde::Serialize;

use crate::metrics::Metrics;
use crate::model::{Facts, Kind, Signal};
use crate::report::CollectorReport;

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

/// Ticks that may pass without one finishing before the loop counts as stalled.
pub const STALL_INTERVALS: u32 = 3;

/// What the endpoint shows, as of the last tick.
pub struct View {
    pub metrics: Metrics,
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
}

impl View {
    pub fn new(interval: Duration, fail_ticks: u32) -> Self {
        Self {
            metrics: Metrics::new(),
            interval,
            fail_ticks,
            inner: Mutex::new(Published {
                started: Instant::now(),
                last_tick: None,
                collectors: Vec::new(),
                status: Arc::new(Status::default()),
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
        if blind.is_empty() {
            Ok(())
        } else {
            Err(blind.join("; "))
        }
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

fn answer(view: &View, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
    }
    let probe = |result: Result<(), String>, ok: &str| match result {
        Ok(()) => text(StatusCode::OK, format!("{ok}\n")),
        Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    };
    match request.uri().path() {
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
            let body = serde_json::to_string_pretty(&*view.status()).unwrap_or_default();
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

/// Serves `view` on `listener` until aborted. Slow clients get a header timeout.
pub async fn serve(listener: TcpListener, view: Arc<View>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let view = Arc::clone(&view);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = answer(&view, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service)
                .await;
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
}
