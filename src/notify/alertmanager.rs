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
use crate::model::{
    mask_url, rfc3339, Alert, ContainerFacts, EventKind, Facts, Kind, Lang, Reason, Unix,
};
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
        annotations.extend(changing_facts(&alert.facts));
        AmAlert {
            labels,
            annotations,
            starts_at: rfc3339(alert.since),
            ends_at: rfc3339(ends_at),
        }
    }
}

/// Facts that change from tick to tick, or go missing on a tick whose read failed: the top
/// consumers, the container id and pod uid. Annotations, never labels: a label that changes
/// splits one alert into two.
fn changing_facts(facts: &Facts) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let container = match facts {
        Facts::Proc(f) => f.container.as_ref(),
        Facts::Job(f) => f.container.as_ref(),
        Facts::Pressure(f) => {
            let top: Vec<String> = f
                .top
                .iter()
                .map(|t| format!("{} pid {} {:.0}%", t.comm, t.pid, t.cpu_pct))
                .collect();
            if !top.is_empty() {
                out.push(("top".to_string(), top.join(", ")));
            }
            f.top.first().and_then(|t| t.container.as_ref())
        }
        Facts::Collector(_) | Facts::Test(_) => None,
    };
    if let Some(ContainerFacts { id, pod_uid, .. }) = container {
        if let Some(id) = id {
            out.push(("container_id".to_string(), id.clone()));
        }
        if let Some(uid) = pod_uid {
            out.push(("pod_uid".to_string(), uid.clone()));
        }
    }
    out
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
    fn host_pressure_is_labelled_by_resource_and_its_changing_facts_are_annotations() {
        let facts: Facts = serde_json::from_value(serde_json::json!({
            "resource": "cpu", "source": "psi", "some_avg10": 88.1, "some_avg60": 83.4,
            "some_avg300": 61.2, "full_avg60": null, "threshold_pct": 50.0,
            "above_since": 1795000000, "top_status": "sampled",
            "top": [{"pid": 4121, "comm": "pytest", "cmdline": "pytest", "cpu_pct": 190.0,
                     "orphaned": true, "entity": "proc:4121:1", "stuck_s": 183600,
                     "container": {"runtime": "containerd", "id": "ab12", "pod_uid": "8ae5-uid",
                                   "unit": null}},
                    {"pid": 500, "comm": "node", "cmdline": "node", "cpu_pct": 3.0,
                     "orphaned": false, "entity": null, "container": null}]
        }))
        .unwrap();
        let alert = Alert {
            event: EventKind::Fire,
            kind: Kind::HostPressure,
            entity: "pressure:cpu".into(),
            since: 1_795_000_300,
            at: 1_795_000_300,
            facts,
            reason: Reason::First,
        };
        let feed = Feed::new("ci-runner-3".into(), Lang::En, 1_795_000_000, 600);
        let am = feed.alert(&alert, 1_795_000_900);
        let labels: Vec<(&str, &str)> = am
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("alertname", "WatchdogHostPressure"),
                ("entity", "pressure:cpu"),
                ("host", "ci-runner-3"),
                ("kind", "host_pressure"),
                ("resource", "cpu"),
            ]
        );
        assert_eq!(
            am.annotations["top"],
            "pytest pid 4121 190%, node pid 500 3%"
        );
        assert_eq!(am.annotations["container_id"], "ab12");
        assert_eq!(am.annotations["pod_uid"], "8ae5-uid");
    }

    #[test]
    fn a_container_is_an_annotation_so_a_failed_cgroup_read_never_splits_an_alert() {
        let proc = |container: serde_json::Value| -> Alert {
            let facts: Facts = serde_json::from_value(serde_json::json!({
                "pid": 7, "ppid": 1, "pgid": 7, "session": 7, "state": "S", "comm": "pytest",
                "age_s": 7200, "cmdline": "pytest", "orphaned": true, "parent": "tini",
                "group_leader_alive": true, "cpu_pct": 0.1, "rss_bytes": 1,
                "container": container
            }))
            .unwrap();
            Alert {
                event: EventKind::Fire,
                kind: Kind::ProcBlocking,
                entity: "proc:7:1".into(),
                since: 1_795_000_000,
                at: 1_795_000_000,
                facts,
                reason: Reason::First,
            }
        };
        let feed = Feed::new("h".into(), Lang::En, 1_795_000_000, 600);
        let seen = feed.alert(
            &proc(
                serde_json::json!({"runtime": "docker", "id": "e701", "pod_uid": null,
                                      "unit": null}),
            ),
            1_795_000_600,
        );
        let unread = feed.alert(&proc(serde_json::Value::Null), 1_795_000_600);
        assert_eq!(seen.labels, unread.labels, "the same alert either way");
        assert_eq!(seen.annotations["container_id"], "e701");
        assert!(!unread.annotations.contains_key("container_id"));
        assert!(!seen.labels.contains_key("container_id"));
    }

    #[test]
    fn alertnames_are_camel_case_of_the_kind() {
        assert_eq!(alertname(Kind::HostPressure), "WatchdogHostPressure");
        assert_eq!(alertname(Kind::ProcBlocking), "WatchdogProcBlocking");
        assert_eq!(
            alertname(Kind::CollectorFailing),
            "WatchdogCollectorFailing"
        );
    }
}
