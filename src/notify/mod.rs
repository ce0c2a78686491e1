//! Notifiers: one module per channel behind one trait, and how their answers are judged.
//!
//! A notifier sends one event and says how it went: delivered, worth retrying, or refused for
//! good. It keeps no queue and never retries by itself: the outbox and the delivery loop
//! ([`crate::deliver`]) own that. No error a notifier returns contains its URL: Slack and
//! Telegram URLs carry their tokens.

pub mod alertmanager;
pub mod slack;
pub mod telegram;
pub mod webhook;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::event::Event;
use crate::tls::SharedConfig;

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

/// Every configured channel, built in one place by name.
pub struct Channels {
    /// Event channels, each fed from its own outbox.
    pub events: Vec<Box<dyn Notifier>>,
    /// Alertmanager: the client and the base URLs, fed the alert set every tick.
    pub alertmanager: Option<(alertmanager::AlertmanagerClient, Vec<String>)>,
    /// Fetched once per successful tick.
    pub heartbeat: Option<(reqwest::Client, reqwest::Url)>,
}

impl Channels {
    /// Builds the channels `config` configures, on the shared TLS config; none when it
    /// configures none (and then the TLS config is not built).
    ///
    /// # Errors
    /// The HTTP client cannot be set up (no root to trust at all).
    pub fn build(config: &crate::config::Config, tls: &SharedConfig) -> Result<Self, String> {
        use crate::config::http_url;
        let mut channels = Channels {
            events: Vec::new(),
            alertmanager: None,
            heartbeat: None,
        };
        if config.channels().is_empty() {
            return Ok(channels);
        }
        let client = client_with(&tls.get().map_err(|e| e.to_string())?)?;
        if let Some(url) = http_url(&config.webhook_url) {
            let key = config.webhook_key();
            channels.events.push(Box::new(webhook::WebhookNotifier::new(
                client.clone(),
                url,
                key,
            )));
        }
        if let Some(url) = http_url(&config.slack_webhook_url) {
            channels
                .events
                .push(Box::new(slack::SlackNotifier::new(client.clone(), url)));
        }
        if !config.telegram_bot_token.is_empty() {
            channels
                .events
                .push(Box::new(telegram::TelegramNotifier::new(
                    client.clone(),
                    &config.telegram_api_url,
                    &config.telegram_bot_token,
                    &config.telegram_chat_id,
                )?));
        }
        let urls = config.alertmanager_url_list();
        if !urls.is_empty() {
            let auth = if !config.alertmanager_bearer_token.is_empty() {
                alertmanager::Auth::Bearer(config.alertmanager_bearer_token.clone())
            } else if let Some((user, password)) = config.alertmanager_basic_auth.split_once(':') {
                alertmanager::Auth::Basic {
                    user: user.into(),
                    password: password.into(),
                }
            } else {
                alertmanager::Auth::None
            };
            channels.alertmanager = Some((
                alertmanager::AlertmanagerClient::new(client.clone(), auth),
                urls,
            ));
        }
        if let Some(url) = http_url(&config.heartbeat_url) {
            channels.heartbeat = Some((client, url));
        }
        Ok(channels)
    }
}

/// Fetches a heartbeat URL once.
///
/// # Errors
/// A transport error or a non-2xx answer.
pub async fn ping(client: &reqwest::Client, url: &reqwest::Url) -> Result<(), NotifyError> {
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(judge_transport)?;
    judge_status(response.status().as_u16(), None)
}

/// A client on its own TLS config, trusting the system's roots plus those of `ca_file`: for a
/// one-off client (tests, tools). The daemon and the commands share one config instead, through
/// [`client_with`].
///
/// # Errors
/// The CA file cannot be used, or the TLS config or the client cannot be set up.
pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, String> {
    let roots = match ca_file {
        Some(path) => crate::tls::load_ca_file(path).map_err(|e| e.to_string())?,
        None => Vec::new(),
    };
    client_with(&crate::tls::client_config(roots).map_err(|e| e.to_string())?)
}

/// The HTTP client every notifier uses: no redirects, a timeout per attempt, and TLS from the
/// shared config (reqwest is built without a crypto provider of its own).
///
/// # Errors
/// The client cannot be set up.
pub fn client_with(tls: &Arc<rustls::ClientConfig>) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(SEND_TIMEOUT)
        .connect_timeout(SEND_TIMEOUT)
        .user_agent(concat!("watchdog/", env!("CARGO_PKG_VERSION")))
        .tls_backend_preconfigured(rustls::ClientConfig::clone(tls))
        .build()
        .map_err(|e| e.without_url().to_string())
}

/// A response body, shortened to one readable line for an error message.
pub async fn body_excerpt(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    watchdog_collectors::mask::cut(line, 200)
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
