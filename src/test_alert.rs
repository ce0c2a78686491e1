//! `watchdog test-alert`: one clearly-marked test event to every channel, and what each said.
//!
//! Proves the wiring before anyone trusts it: each event channel gets one event with
//! `"event": "test"`, each Alertmanager a `WatchdogTest` alert that resolves itself five minutes
//! later, the heartbeat URL one fetch. Sent once, directly: no outbox, no retry, no state.

use crate::config::Settings;
use crate::event::Event;
use crate::model::{mask_url, now_unix, Alert, EventKind, Facts, Kind, Reason, TestFacts};
use crate::notify::{self, alertmanager::Feed, heartbeat, Channels};

/// What one channel answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub channel: &'static str,
    /// Where it went, secrets masked.
    pub target: String,
    pub result: Result<(), String>,
}

/// Sends the test to every configured channel.
///
/// # Errors
/// The channels cannot be built (the HTTP client cannot be set up).
pub async fn send_all(settings: &Settings) -> Result<Vec<Outcome>, String> {
    let delivery = &settings.delivery;
    let tls = settings.tls.get().map_err(|e| e.to_string())?;
    let client = notify::client_with(&tls)?;
    let channels = Channels::build(&delivery.channels, &client)?;
    let host = settings.host.clone();
    let now = now_unix();
    let alert = Alert {
        event: EventKind::Test,
        kind: Kind::Test,
        entity: "test".into(),
        since: now,
        at: now,
        facts: Facts::Test(TestFacts {
            sent_by: "watchdog test-alert".into(),
        }),
        reason: Reason::Test,
    };
    let event = Event::render(&alert, &host, settings.lang);
    let targets: Vec<(&str, String)> = delivery.channels.targets();
    let target_of = |name: &str| {
        targets
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    };
    let mut outcomes = Vec::new();
    for notifier in &channels.events {
        let result = notifier.send(&event).await.map_err(|e| e.to_string());
        outcomes.push(Outcome {
            channel: notifier.name(),
            target: target_of(notifier.name()),
            result,
        });
    }
    if let Some((client, urls)) = &channels.alertmanager {
        let test = Feed::new(
            host.clone(),
            settings.lang,
            now,
            delivery.alertmanager_hold_s,
        )
        .test_alert(now);
        for url in urls {
            let result = client
                .post(url, std::slice::from_ref(&test))
                .await
                .map_err(|e| e.to_string());
            outcomes.push(Outcome {
                channel: "alertmanager",
                target: mask_url(url),
                result,
            });
        }
    }
    if let Some((client, url)) = &channels.heartbeat {
        let result = heartbeat::ping(client, url)
            .await
            .map_err(|e| e.to_string());
        outcomes.push(Outcome {
            channel: "heartbeat",
            target: mask_url(url.as_str()),
            result,
        });
    }
    Ok(outcomes)
}

/// Runs `watchdog test-alert`: prints a line per channel; 0 when every one worked, 1 when any
/// failed or none is configured.
pub async fn main(settings: &Settings) -> u8 {
    let outcomes = match send_all(settings).await {
        Ok(outcomes) => outcomes,
        Err(error) => {
            eprintln!("watchdog: {error}");
            return 1;
        }
    };
    if outcomes.is_empty() {
        eprintln!("watchdog: no channel is configured (WATCHDOG_WEBHOOK_URL, WATCHDOG_SLACK_WEBHOOK_URL, WATCHDOG_TELEGRAM_*, WATCHDOG_ALERTMANAGER_URLS, WATCHDOG_HEARTBEAT_URL)");
        return 1;
    }
    let mut failed = 0;
    for o in &outcomes {
        match &o.result {
            Ok(()) => println!("{:<13} {:<40} ok", o.channel, o.target),
            Err(error) => {
                failed += 1;
                println!("{:<13} {:<40} FAILED: {error}", o.channel, o.target);
            }
        }
    }
    u8::from(failed > 0)
}
