//! The heartbeat: one GET of a healthchecks-style URL per successful tick.
//!
//! Owns the fetch in flight: a beat is skipped while the last is still going, so a slow
//! receiver never piles requests up. It never retries: the next tick's beat is the retry.

use tokio::task::JoinHandle;

use super::{judge_status, judge_transport, NotifyError};
use crate::model::mask_url;

/// The heartbeat URL and its request, if one is still going.
pub struct Heartbeat {
    client: reqwest::Client,
    url: reqwest::Url,
    in_flight: Option<JoinHandle<()>>,
}

impl Heartbeat {
    pub fn new(client: reqwest::Client, url: reqwest::Url) -> Self {
        Self {
            client,
            url,
            in_flight: None,
        }
    }

    /// Fetches the URL in the background, unless the last fetch is still going.
    pub fn beat(&mut self) {
        if self.in_flight.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let (client, url) = (self.client.clone(), self.url.clone());
        self.in_flight = Some(tokio::spawn(async move {
            if let Err(error) = ping(&client, &url).await {
                tracing::warn!(heartbeat = %mask_url(url.as_str()), "heartbeat failed: {error}");
            }
        }));
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
