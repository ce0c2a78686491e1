//! Notifiers: one module per channel behind one trait, and how their answers are judged.
//!
//! A notifier sends one event and says how it went: delivered, worth retrying, or refused for
//! good. It keeps no queue and never retries by itself: the outbox and the delivery loop
//! ([`crate::deliver`]) own that. No error a notifier returns contains its URL: Slack and
//! Telegram URLs carry their tokens.

pub mod alertmanager;
pub mod heartbeat;
pub mod slack;
pub mod telegram;
pub mod webhook;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use crate::event::Event;
use crate::model::mask_url;

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

/// The channels to build: delivery's own settings, parsed once at start.
#[derive(Debug, Clone, Default)]
pub struct ChannelSettings {
    /// The URL, and the signing key when webhooks are signed.
    pub webhook: Option<(url::Url, Option<Vec<u8>>)>,
    pub slack: Option<url::Url>,
    pub telegram: Option<TelegramSettings>,
    /// Base URLs, trimmed of a trailing `/`.
    pub alertmanager_urls: Vec<String>,
    pub alertmanager_auth: alertmanager::Auth,
    pub heartbeat: Option<url::Url>,
}

/// Telegram's Bot API server, bot token and chat.
#[derive(Clone)]
pub struct TelegramSettings {
    pub api_url: String,
    pub token: String,
    pub chat_id: String,
}

impl std::fmt::Debug for TelegramSettings {
    /// The token is never shown, not even in a debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramSettings")
            .field("api_url", &mask_url(&self.api_url))
            .field("chat_id", &self.chat_id)
            .finish_non_exhaustive()
    }
}

impl ChannelSettings {
    /// The names of the configured event channels, each with its own outbox.
    pub fn event_channels(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.webhook.is_some() {
            names.push("webhook");
        }
        if self.slack.is_some() {
            names.push("slack");
        }
        if self.telegram.is_some() {
            names.push("telegram");
        }
        names
    }

    /// The configured channels as (name, where), secrets masked: for `check-config` and logs.
    pub fn targets(&self) -> Vec<(&'static str, String)> {
        let mut targets = Vec::new();
        if let Some((url, key)) = &self.webhook {
            let signed = if key.is_some() { "signed" } else { "unsigned" };
            targets.push(("webhook", format!("{} ({signed})", mask_url(url.as_str()))));
        }
        if let Some(url) = &self.slack {
            targets.push(("slack", mask_url(url.as_str())));
        }
        if let Some(telegram) = &self.telegram {
            let target = format!("{} chat {}", mask_url(&telegram.api_url), telegram.chat_id);
            targets.push(("telegram", target));
        }
        for url in &self.alertmanager_urls {
            targets.push(("alertmanager", mask_url(url)));
        }
        if let Some(url) = &self.heartbeat {
            targets.push(("heartbeat", mask_url(url.as_str())));
        }
        targets
    }
}

/// Every configured channel, built in one place by name.
#[derive(Default)]
pub struct Channels {
    /// Event channels, each fed from its own outbox.
    pub events: Vec<Box<dyn Notifier>>,
    /// Alertmanager: the client and the base URLs, fed the alert set every tick.
    pub alertmanager: Option<(alertmanager::AlertmanagerClient, Vec<String>)>,
    /// Fetched once per successful tick.
    pub heartbeat: Option<(reqwest::Client, reqwest::Url)>,
}

impl Channels {
    /// Builds the channels `settings` configures, all on `client`.
    ///
    /// # Errors
    /// The Telegram API URL and token do not make a URL.
    pub fn build(settings: &ChannelSettings, client: &reqwest::Client) -> Result<Self, String> {
        let mut channels = Channels {
            events: Vec::new(),
            alertmanager: None,
            heartbeat: None,
        };
        if let Some((url, key)) = &settings.webhook {
            channels.events.push(Box::new(webhook::WebhookNotifier::new(
                client.clone(),
                url.clone(),
                key.clone(),
            )));
        }
        if let Some(url) = &settings.slack {
            channels.events.push(Box::new(slack::SlackNotifier::new(
                client.clone(),
                url.clone(),
            )));
        }
        if let Some(telegram) = &settings.telegram {
            channels
                .events
                .push(Box::new(telegram::TelegramNotifier::new(
                    client.clone(),
                    &telegram.api_url,
                    &telegram.token,
                    &telegram.chat_id,
                )?));
        }
        if !settings.alertmanager_urls.is_empty() {
            channels.alertmanager = Some((
                alertmanager::AlertmanagerClient::new(
                    client.clone(),
                    settings.alertmanager_auth.clone(),
                ),
                settings.alertmanager_urls.clone(),
            ));
        }
        if let Some(url) = &settings.heartbeat {
            channels.heartbeat = Some((client.clone(), url.clone()));
        }
        Ok(channels)
    }
}

/// The HTTP client every notifier uses: no redirects, a timeout per attempt, rustls with the
/// system's roots plus those of `ca_file`.
///
/// # Errors
/// The CA file cannot be read, or the TLS backend cannot be set up.
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
pub fn client_with(tls: &std::sync::Arc<rustls::ClientConfig>) -> Result<reqwest::Client, String> {
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
    crate::model::cut(line, 200)
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
