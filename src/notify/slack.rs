//! The Slack channel: an incoming webhook (`WATCHDOG_SLACK_WEBHOOK_URL`).
//!
//! Posts `{"text": ...}` in Slack's mrkdwn. Every interpolated value is escaped (`&`, `<`, `>`),
//! so a command line holding `<!channel>` or `<@U123>` pings nobody. 429 is retried after its
//! `Retry-After`; Slack's documented refusals (400 invalid_payload, 403 action_prohibited or
//! invalid_token, 404 no_service, 410 channel_is_archived) are permanent, with Slack's reason in
//! the log line. The URL holds the token and never appears in a message.

use super::{
    body_excerpt, judge_status, judge_transport, retry_after, Notifier, NotifyError, SendFuture,
};
use crate::event::Event;
use crate::model::{escape_markup, EventKind};

pub struct SlackNotifier {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl SlackNotifier {
    pub fn new(client: reqwest::Client, url: reqwest::Url) -> Self {
        Self { client, url }
    }

    async fn post(&self, event: &Event) -> Result<(), NotifyError> {
        let body = serde_json::json!({ "text": message(event) });
        let response = self
            .client
            .post(self.url.clone())
            .json(&body)
            .send()
            .await
            .map_err(judge_transport)?;
        let status = response.status().as_u16();
        let after = retry_after(response.headers());
        match judge_status(status, after) {
            Ok(()) => Ok(()),
            Err(NotifyError::Permanent { .. }) => {
                let why = body_excerpt(response).await;
                Err(NotifyError::Permanent {
                    reason: format!("HTTP {status}: Slack says {why:?}"),
                })
            }
            Err(retryable) => Err(retryable),
        }
    }
}

impl Notifier for SlackNotifier {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn send<'a>(&'a self, event: &'a Event) -> SendFuture<'a> {
        Box::pin(self.post(event))
    }
}

/// The message: an emoji for what happened, the summary in bold, the text below.
pub fn message(event: &Event) -> String {
    let icon = match event.event {
        EventKind::Fire => ":rotating_light:",
        EventKind::Reminder => ":hourglass_flowing_sand:",
        EventKind::Recovery => ":white_check_mark:",
        EventKind::Test => ":wave:",
    };
    format!(
        "{icon} *{}*\n{}",
        escape_markup(&event.summary),
        escape_markup(&event.text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_so_nobody_is_pinged() {
        let event = crate::event::Event::render(
            &crate::model::Alert {
                event: EventKind::Test,
                kind: crate::model::Kind::Test,
                entity: "test".into(),
                since: 0,
                at: 0,
                facts: crate::model::Facts::Test(crate::model::TestFacts {
                    sent_by: "t".into(),
                }),
                reason: crate::model::Reason::Test,
            },
            "h<@U1>",
            crate::model::Lang::En,
        );
        let text = message(&event);
        assert!(text.contains("h&lt;@U1&gt;"), "{text}");
        assert!(!text.contains("<@U1>"), "{text}");
    }
}
