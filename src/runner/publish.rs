//! What a tick leaves for the endpoint: the metrics and the typed `/status`.
//!
//! Reads the tick's outcomes and the new state; writes only into the [`View`]. It decides
//! nothing and sends nothing.

use std::time::Duration;

use super::Daemon;
use crate::collect::{self, Outcome};
use crate::endpoint::{AlertStatus, Status};
use crate::metrics::{CollectorOutcomeLabels, Metrics, SignalLabels};
use crate::model::{rfc3339, Unix};
use crate::report::Report;

impl Daemon {
    /// Records this tick in the metrics and publishes what the endpoint shows.
    pub(super) fn publish(
        &self,
        outcomes: &[(Outcome, Duration)],
        report: Report,
        all_ok: bool,
        at: Unix,
        took: Duration,
    ) {
        let m = &self.view.metrics;
        let mut collectors = Vec::new();
        for (outcome, waited) in outcomes {
            let labels = Metrics::collector(outcome.name);
            m.collector_duration
                .get_or_create(&labels)
                .observe(waited.as_secs_f64());
            let ok = matches!(outcome.result, Some(Ok(_)));
            m.collector_runs
                .get_or_create(&CollectorOutcomeLabels {
                    collector: outcome.name.to_string(),
                    outcome: if ok { "ok" } else { "failed" }.to_string(),
                })
                .inc();
            if let Some(Ok(observation)) = &outcome.result {
                let (observed, vanished, unreadable) = collect::counts(observation);
                m.observed.get_or_create(&labels).set(observed as i64);
                m.vanished.get_or_create(&labels).set(vanished as i64);
                m.unreadable.get_or_create(&labels).set(unreadable as i64);
            }
            let error = match &outcome.result {
                Some(Err(error)) => Some(error.to_string()),
                _ => None,
            };
            collectors.push((
                outcome.name.to_string(),
                self.state.fail_streak(outcome.name),
                error,
            ));
        }
        m.signals.clear();
        for known in self.state.entities() {
            let state = if known.held { "held" } else { "active" };
            let labels = SignalLabels {
                kind: known.kind.as_str().into(),
                state: state.into(),
            };
            m.signals.get_or_create(&labels).inc();
        }
        for channel in &self.channels {
            m.outbox_depth
                .get_or_create(&Metrics::channel(channel.name()))
                .set(channel.depth() as i64);
        }
        if all_ok {
            m.last_successful_tick.set(at as f64);
        }
        m.tick_duration.observe(took.as_secs_f64());
        m.jobs_open_watches
            .set(self.state.jobs().open_watches() as i64);
        let alerts = self
            .state
            .entities_sorted()
            .into_iter()
            .map(|e| AlertStatus {
                kind: e.kind,
                entity: e.entity.clone(),
                since: rfc3339(e.since),
                last_notified: rfc3339(e.last_notified),
                held: e.held,
                facts: e.facts.clone(),
            })
            .collect();
        let status = Status {
            host: self.settings.host.clone(),
            at: rfc3339(at),
            collectors: report.collectors,
            signals: report.signals,
            alerts,
        };
        self.view.tick_done(collectors, status);
    }
}
