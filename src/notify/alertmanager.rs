//! The Alertmanager channel: API v2, fed the current set of alerts every tick.
//!
//! Alertmanager is not an event sink: it wants every firing alert re-sent, and resolves one
//! whose `endsAt` passes without a new send. So this channel is fed from the alert state, not
//! from an outbox. Every entity that is active or held is sent each tick with `startsAt` = its
//! `since` and `endsAt` = now + `WATCHDOG_ALERTMANAGER_HOLD_S`; a recovered one is sent with
//! `endsAt` = its recovery time for 15 minutes, as Prometheus does; an always-firing
//! `WatchdogHeartbeat` goes with them, so a watchdog that dies is noticed too. Every alert goes
//! to every URL (members of a cluster gossip silences, not alerts), each URL from its own task
//! that always sends the newest set, so a dead instance delays nobody.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

use super::{body_excerpt, judge_status, judge_transport, NotifyError};
use crate::engine::AlertState;
use crate::model::{mask_url, rfc3339, Alert, EventKind, Kind, Lang, Reason, Unix};
use crate::text;

/// How long a recovered alert is re-sent as resolved, as Prometheus does.
pub const RESOLVED_RESEND_S: i64 = 15 * 60;

/// One alert as `POST /api/v2/alerts` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AmAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
}

/// How requests authenticate.
#[derive(Clone, Default)]
pub enum Auth {
    #[default]
    None,
    Bearer(String),
    Basic {
        user: String,
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    /// Credentials are never shown, not even in a debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "None",
            Auth::Bearer(_) => "Bearer(***)",
            Auth::Basic { .. } => "Basic(***)",
        })
    }
}

/// Posts alert sets to Alertmanager base URLs.
#[derive(Clone)]
pub struct AlertmanagerClient {
    client: reqwest::Client,
    auth: Auth,
}

impl AlertmanagerClient {
    pub fn new(client: reqwest::Client, auth: Auth) -> Self {
        Self { client, auth }
    }

    /// Sends `alerts` to `base`/api/v2/alerts once.
    ///
    /// # Errors
    /// As any notifier: retryable or permanent, never showing the URL's path or credentials.
    pub async fn post(&self, base: &str, alerts: &[AmAlert]) -> Result<(), NotifyError> {
        let url = format!("{base}/api/v2/alerts");
        let mut request = self.client.post(url).json(alerts);
        request = match &self.auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
        };
        let response = request.send().await.map_err(judge_transport)?;
        let status = response.status().as_u16();
        match judge_status(status, None) {
            Ok(()) => Ok(()),
            Err(NotifyError::Permanent { .. }) => {
                let why = body_excerpt(response).await;
                Err(NotifyError::Permanent {
                    reason: format!("HTTP {status}: {why:?}"),
                })
            }
            Err(retryable) => Err(retryable),
        }
    }
}

/// Sends the newest alert set to `base` each time it changes, until aborted. A failure is
/// logged and left: the next tick sends the whole set again.
pub async fn run(
    client: AlertmanagerClient,
    base: String,
    mut sets: watch::Receiver<Arc<Vec<AmAlert>>>,
) {
    let shown = mask_url(&base);
    let mut failing = false;
    while sets.changed().await.is_ok() {
        let alerts = Arc::clone(&sets.borrow_and_update());
        match client.post(&base, &alerts).await {
            Ok(()) => {
                if failing {
                    tracing::info!(alertmanager = %shown, "alertmanager reachable again");
                }
                failing = false;
                tracing::debug!(alertmanager = %shown, alerts = alerts.len(), "sent to alertmanager");
            }
            Err(error) => {
                failing = true;
                tracing::warn!(alertmanager = %shown, "cannot send to alertmanager: {error}");
            }
        }
    }
}

/// Builds the set to send each tick, and remembers recoveries for their 15 minutes.
pub struct Feed {
    host: String,
    lang: Lang,
    started: Unix,
    hold_s: i64,
    /// Recovered alerts and until when they are re-sent.
    resolved: Vec<(Unix, AmAlert)>,
}

impl Feed {
    pub fn new(host: String, lang: Lang, started: Unix, hold_s: u64) -> Self {
        Self {
            host,
            lang,
            started,
            hold_s: hold_s as i64,
            resolved: Vec::new(),
        }
    }

    /// The set for this tick: the heartbeat, every active or held entity, and what recovered
    /// in the last 15 minutes. `recoveries` are this tick's recovery alerts.
    pub fn alerts(&mut self, state: &AlertState, recoveries: &[Alert], now: Unix) -> Vec<AmAlert> {
        for recovery in recoveries.iter().filter(|a| a.event == EventKind::Recovery) {
            let ended = self.alert(recovery, recovery.at);
            self.resolved.retain(|(_, a)| a.labels != ended.labels);
            self.resolved.push((recovery.at + RESOLVED_RESEND_S, ended));
        }
        self.resolved.retain(|(until, _)| *until > now);
        let mut set = vec![self.heartbeat(now)];
        for known in state.entities() {
            let current = Alert {
                event: EventKind::Fire,
                kind: known.kind,
                entity: known.entity.clone(),
                since: known.since,
                at: now,
                facts: known.facts.clone(),
                reason: Reason::WithinCooldown,
            };
            let alert = self.alert(&current, now + self.hold_s);
            // Firing again after a recovery: the firing alert replaces the resolved one.
            self.resolved.retain(|(_, a)| a.labels != alert.labels);
            set.push(alert);
        }
        set.extend(self.resolved.iter().map(|(_, a)| a.clone()));
        set
    }

    /// A test alert for `watchdog test-alert`, resolving by itself a few minutes later.
    pub fn test_alert(&self, now: Unix) -> AmAlert {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".into(), "WatchdogTest".into());
        labels.insert("host".into(), self.host.clone());
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "summary".into(),
            format!("[{}] watchdog test alert: this channel works", self.host),
        );
        annotations.insert(
            "description".into(),
            "Sent by `watchdog test-alert`. Nothing is wrong.".into(),
        );
        AmAlert {
            labels,
            annotations,
            starts_at: rfc3339(now),
            ends_at: rfc3339(now + 300),
        }
    }

    fn heartbeat(&self, now: Unix) -> AmAlert {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".into(), "WatchdogHeartbeat".into());
        labels.insert("host".into(), self.host.clone());
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "summary".into(),
            format!("watchdog on {} is alive", self.host),
        );
        annotations.insert(
            "description".into(),
            "Always firing while watchdog runs: route it to a dead man's switch, which alerts \
             when it stops arriving."
                .into(),
        );
        AmAlert {
            labels,
            annotations,
            starts_at: rfc3339(self.started),
            ends_at: rfc3339(now + self.hold_s),
        }
    }

    fn alert(&self, alert: &Alert, ends_at: Unix) -> AmAlert {
        let (summary, description) = text::render(alert, &self.host, self.lang);
        let mut labels = BTreeMap::new();
        labels.insert("alertname".into(), alertname(alert.kind));
        labels.insert("kind".into(), alert.kind.as_str().into());
        labels.insert("host".into(), self.host.clone());
        labels.insert("entity".into(), alert.entity.clone());
        if let Some((name, value)) = alert.facts.identity_label() {
            labels.insert(name.into(), value);
        }
        let mut annotations = BTreeMap::new();
        annotations.insert("summary".into(), summary);
        annotations.insert("description".into(), description);
        AmAlert {
            labels,
            annotations,
            starts_at: rfc3339(alert.since),
            ends_at: rfc3339(ends_at),
        }
    }
}

/// Alertmanager as a sink of the runner: the feed, the newest set, and one task per URL that
/// sends it. Kept out of the tick loop, which only publishes.
pub struct Sink {
    feed: Feed,
    sets: watch::Sender<Arc<Vec<AmAlert>>>,
    client: AlertmanagerClient,
    urls: Vec<String>,
}

impl Sink {
    pub fn new(client: AlertmanagerClient, urls: Vec<String>, feed: Feed) -> Self {
        Self {
            feed,
            sets: watch::channel(Arc::new(Vec::new())).0,
            client,
            urls,
        }
    }

    /// Publishes this tick's set: every entity of `state`, and this tick's `alerts` recoveries.
    pub fn publish(&mut self, state: &AlertState, alerts: &[Alert], now: Unix) {
        let set = self.feed.alerts(state, alerts, now);
        self.sets.send_replace(Arc::new(set));
    }

    /// Starts one sending task per URL.
    pub fn spawn(&self) -> Vec<tokio::task::JoinHandle<()>> {
        self.urls
            .iter()
            .map(|url| tokio::spawn(run(self.client.clone(), url.clone(), self.sets.subscribe())))
            .collect()
    }
}

/// `proc_blocking` -> `WatchdogProcBlocking`.
pub fn alertname(kind: Kind) -> String {
    let camel: String = kind
        .as_str()
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    format!("Watchdog{camel}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alertnames_are_camel_case_of_the_kind() {
        assert_eq!(alertname(Kind::ProcBlocking), "WatchdogProcBlocking");
        assert_eq!(
            alertname(Kind::CollectorFailing),
            "WatchdogCollectorFailing"
        );
    }
}
