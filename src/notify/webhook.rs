//! The webhook channel: one JSON event per POST, signed by the Standard Webhooks spec.
//!
//! Sends the event's JSON as it is. With a key (`WATCHDOG_WEBHOOK_SECRET=whsec_<base64>`) each
//! attempt is signed afresh: `webhook-id` is the event id (the same on every retry, so receivers
//! can deduplicate), `webhook-timestamp` the attempt's time (receivers reject stale ones), and
//! `webhook-signature` is `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{judge_status, judge_transport, retry_after, Notifier, NotifyError, SendFuture};
use crate::event::Event;

/// Posts events to one URL.
pub struct WebhookNotifier {
    client: reqwest::Client,
    url: reqwest::Url,
    key: Option<Vec<u8>>,
}

impl WebhookNotifier {
    pub fn new(client: reqwest::Client, url: reqwest::Url, key: Option<Vec<u8>>) -> Self {
        Self { client, url, key }
    }

    async fn post(&self, event: &Event) -> Result<(), NotifyError> {
        let body = event.to_json();
        let mut request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(key) = &self.key {
            let timestamp = crate::model::now_unix();
            request = request
                .header("webhook-id", &event.id)
                .header("webhook-timestamp", timestamp.to_string())
                .header(
                    "webhook-signature",
                    signature(key, &event.id, timestamp, &body),
                );
        }
        let response = request.body(body).send().await.map_err(judge_transport)?;
        let status = response.status().as_u16();
        judge_status(status, retry_after(response.headers()))
    }
}

impl Notifier for WebhookNotifier {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send<'a>(&'a self, event: &'a Event) -> SendFuture<'a> {
        Box::pin(self.post(event))
    }
}

/// `v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length; new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_spec_example() {
        // The example of the Standard Webhooks spec: secret, id, timestamp, body and signature.
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
