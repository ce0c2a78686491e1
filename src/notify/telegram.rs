//! The Telegram channel: the Bot API's `sendMessage` with HTML parse mode.
//!
//! The message is the summary in bold and the text below it, every interpolated value escaped
//! for HTML. Telegram counts its 4096-character limit on the text after parsing, so the text is
//! cut to fit before it is escaped. 429 is retried after the `retry_after` Telegram gives. The
//! bot token is part of the URL: it never appears in a log line or an error (transport errors
//! are stripped of their URL, and the URL is never formatted).

use std::time::Duration;

use serde::Deserialize;

use super::{judge_status, judge_transport, Notifier, NotifyError, SendFuture};
use crate::event::Event;
use crate::model::{cut, escape_markup};

/// Telegram's limit on a message's text, in characters, after entity parsing.
pub const MAX_CHARS: usize = 4096;

pub struct TelegramNotifier {
    client: reqwest::Client,
    /// `<api>/bot<token>/sendMessage`: holds the token, so it is never printed.
    send_url: reqwest::Url,
    chat_id: String,
}

impl TelegramNotifier {
    /// # Errors
    /// The API URL and token do not make a URL (the message does not show either).
    pub fn new(
        client: reqwest::Client,
        api_url: &str,
        token: &str,
        chat_id: &str,
    ) -> Result<Self, String> {
        let raw = format!("{}/bot{token}/sendMessage", api_url.trim_end_matches('/'));
        let send_url = reqwest::Url::parse(&raw).map_err(|_| {
            "WATCHDOG_TELEGRAM_API_URL and the bot token do not make a URL".to_string()
        })?;
        Ok(Self {
            client,
            send_url,
            chat_id: chat_id.to_string(),
        })
    }

    async fn post(&self, event: &Event) -> Result<(), NotifyError> {
        let body = serde_json::json!({
            "chat_id": self.chat_id,
            "text": message(event),
            "parse_mode": "HTML",
            "disable_web_page_preview": true,
        });
        let response = self
            .client
            .post(self.send_url.clone())
            .json(&body)
            .send()
            .await
            .map_err(judge_transport)?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let answer: Answer = response.json().await.unwrap_or_default();
        let after = answer
            .parameters
            .and_then(|p| p.retry_after)
            .map(Duration::from_secs);
        let why = answer.description.unwrap_or_default();
        match judge_status(status, after) {
            Err(NotifyError::Retryable { retry_after, .. }) => Err(NotifyError::Retryable {
                reason: format!("HTTP {status}: Telegram says {why:?}"),
                retry_after,
            }),
            _ => Err(NotifyError::Permanent {
                reason: format!("HTTP {status}: Telegram says {why:?}"),
            }),
        }
    }
}

impl Notifier for TelegramNotifier {
    fn name(&self) -> &'static str {
        "telegram"
    }

    fn send<'a>(&'a self, event: &'a Event) -> SendFuture<'a> {
        Box::pin(self.post(event))
    }
}

/// The error answer of the Bot API.
#[derive(Debug, Default, Deserialize)]
struct Answer {
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Debug, Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
}

/// `<b>summary</b>`, a blank line, the text; cut to [`MAX_CHARS`] visible characters, then
/// escaped.
pub fn message(event: &Event) -> String {
    let summary = cut(event.summary.clone(), MAX_CHARS);
    let room = MAX_CHARS.saturating_sub(summary.chars().count() + 2);
    let text = cut(event.text.clone(), room);
    if text.is_empty() {
        return format!("<b>{}</b>", escape_markup(&summary));
    }
    format!(
        "<b>{}</b>\n\n{}",
        escape_markup(&summary),
        escape_markup(&text)
    )
}
