//! Notifiers: one module per channel behind one trait, and how their answers are judged.
//!
//! A notifier sends one event and says how it went: delivered, worth retrying, or refused for
//! good. It keeps no queue and never retries by itself: the outbox and the delivery loop
//! ([`crate::deliver`]) own that. No error a notifier returns contains its URL: Slack and
//! Telegram URLs carry their tokens.

pub mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::event::Event;

/// How long one delivery attempt may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// A boxed future, so the trait stays object-safe.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>>;

/// One alert channel.
pub trait Notifier: Send + Sync {
    /// The channel's name: its config token and the name of its files and metrics (`webhook`).
    fn name(&self) -> &'static str;

    /// Sends one event once.
    fn send<'a>(&'a self, event: &'a Event) -> SendFuture<'a>;
}

/// Why an event was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// Try again later: 429, 5xx, a timeout, a refused connection.
    #[error("{reason} (will retry)")]
    Retryable {
        reason: String,
        /// When the receiver said when to come back (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// Trying again would get the same answer: 3xx, other 4xx.
    #[error("{reason} (refused for good)")]
    Permanent { reason: String },
}

/// Judges an HTTP status: 2xx delivered; 429 and 5xx retryable; the rest (3xx: redirects are
/// not followed; other 4xx) permanent.
pub fn judge_status(status: u16, retry_after: Option<Duration>) -> Result<(), NotifyError> {
    match status {
        200..=299 => Ok(()),
        429 | 500..=599 => Err(NotifyError::Retryable {
            reason: format!("HTTP {status}"),
            retry_after,
        }),
        _ => Err(NotifyError::Permanent {
            reason: format!("HTTP {status}"),
        }),
    }
}

/// Judges a transport error: all retryable (timeouts, refused connections, resets). The URL,
/// which may hold a token, is stripped from the message.
pub fn judge_transport(error: reqwest::Error) -> NotifyError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    NotifyError::Retryable {
        reason: format!("{kind}: {}", error.without_url()),
        retry_after: None,
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from webhooks and ignored).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The HTTP client every notifier uses: no redirects, a timeout per attempt, rustls.
///
/// # Errors
/// The TLS backend could not be set up.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(SEND_TIMEOUT)
        .connect_timeout(SEND_TIMEOUT)
        .user_agent(concat!("watchdog/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_judged_by_class() {
        let retry = |s| matches!(judge_status(s, None), Err(NotifyError::Retryable { .. }));
        let permanent = |s| matches!(judge_status(s, None), Err(NotifyError::Permanent { .. }));
        for status in [200, 201, 204, 299] {
            assert_eq!(judge_status(status, None), Ok(()), "{status}");
        }
        for status in [429, 500, 502, 503, 504, 599] {
            assert!(retry(status), "{status}");
        }
        for status in [300, 301, 302, 307, 308, 400, 401, 403, 404, 410, 413, 422] {
            assert!(permanent(status), "{status}");
        }
    }
}
