//! What `/metrics` shows, in OpenMetrics text (prometheus-client).
//!
//! Owns the registry and every metric in it; the daemon and the delivery tasks record into it,
//! the HTTP endpoint encodes it. Names follow Prometheus conventions: units in the name,
//! `_total` on counters. Nothing here reads a clock: callers pass what they measured.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CollectorLabels {
    pub collector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CollectorOutcomeLabels {
    pub collector: String,
    /// `ok` or `failed`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabels {
    pub kind: String,
    /// `active` or `held`.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel: String,
}

/// Every metric watchdog exports.
pub struct Metrics {
    registry: Registry,
    pub tick_duration: Histogram,
    pub collector_runs: Family<CollectorOutcomeLabels, Counter>,
    pub collector_duration: Family<CollectorLabels, Histogram>,
    pub observed: Family<CollectorLabels, Gauge>,
    pub vanished: Family<CollectorLabels, Gauge>,
    pub unreadable: Family<CollectorLabels, Gauge>,
    pub signals: Family<SignalLabels, Gauge>,
    pub events_sent: Family<ChannelLabels, Counter>,
    pub events_failed: Family<ChannelLabels, Counter>,
    pub events_dead_lettered: Family<ChannelLabels, Counter>,
    pub events_dropped: Family<ChannelLabels, Counter>,
    pub outbox_depth: Family<ChannelLabels, Gauge>,
    pub last_successful_tick: Gauge<f64, AtomicU64>,
    pub jobs_open_watches: Gauge,
    pub state_commit_errors: Counter,
}

/// Seconds: from a millisecond to a minute, for ticks and collections.
fn duration_buckets() -> impl Iterator<Item = f64> {
    [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ]
    .into_iter()
}

fn collector_histogram() -> Histogram {
    Histogram::new(duration_buckets())
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let tick_duration = Histogram::new(duration_buckets());
        let collector_runs = Family::<CollectorOutcomeLabels, Counter>::default();
        let collector_duration = Family::<CollectorLabels, Histogram>::new_with_constructor(
            collector_histogram as fn() -> Histogram,
        );
        let (observed, vanished, unreadable) =
            (Family::default(), Family::default(), Family::default());
        let signals = Family::<SignalLabels, Gauge>::default();
        let (events_sent, events_failed, events_dead_lettered, events_dropped) = (
            Family::default(),
            Family::default(),
            Family::default(),
            Family::default(),
        );
        let outbox_depth = Family::<ChannelLabels, Gauge>::default();
        let last_successful_tick = Gauge::<f64, AtomicU64>::default();
        let jobs_open_watches = Gauge::default();
        registry.register(
            "watchdog_jobs_open_watches",
            "Ended jobs whose process group or session is still watched; while any is, the jobs collector reads the stat of every process",
            jobs_open_watches.clone(),
        );

        registry.register(
            "watchdog_tick_duration_seconds",
            "How long a whole tick took",
            tick_duration.clone(),
        );
        registry.register(
            "watchdog_collector_runs",
            "Collections by collector and outcome (ok, failed)",
            collector_runs.clone(),
        );
        registry.register(
            "watchdog_collector_duration_seconds",
            "How long a collection took, up to its time limit",
            collector_duration.clone(),
        );
        registry.register(
            "watchdog_collector_observed",
            "Entities the last successful collection read",
            observed.clone(),
        );
        registry.register(
            "watchdog_collector_vanished",
            "Entities that disappeared between listing and reading in the last successful collection",
            vanished.clone(),
        );
        registry.register(
            "watchdog_collector_unreadable",
            "Entities seen but unreadable in the last successful collection; their alerts are held",
            unreadable.clone(),
        );
        registry.register(
            "watchdog_signals",
            "Entities in the alert state by kind and state (active, held)",
            signals.clone(),
        );
        registry.register(
            "watchdog_events_sent",
            "Events delivered, by channel",
            events_sent.clone(),
        );
        registry.register(
            "watchdog_events_failed",
            "Delivery attempts that failed and will be retried, by channel",
            events_failed.clone(),
        );
        registry.register(
            "watchdog_events_dead_lettered",
            "Events refused for good and moved to the dead-letter file, by channel",
            events_dead_lettered.clone(),
        );
        registry.register(
            "watchdog_events_dropped",
            "Undelivered events dropped because the outbox was full, by channel",
            events_dropped.clone(),
        );
        registry.register(
            "watchdog_outbox_depth",
            "Undelivered events waiting, by channel",
            outbox_depth.clone(),
        );
        let state_commit_errors = Counter::default();
        registry.register(
            "watchdog_state_commit_errors",
            "Ticks whose state and events could not be committed to the database",
            state_commit_errors.clone(),
        );
        registry.register(
            "watchdog_last_successful_tick_timestamp_seconds",
            "Unix time of the last tick in which every enabled collector worked",
            last_successful_tick.clone(),
        );
        Self {
            registry,
            tick_duration,
            collector_runs,
            collector_duration,
            observed,
            vanished,
            unreadable,
            signals,
            events_sent,
            events_failed,
            events_dead_lettered,
            events_dropped,
            outbox_depth,
            last_successful_tick,
            jobs_open_watches,
            state_commit_errors,
        }
    }

    pub fn collector(name: &str) -> CollectorLabels {
        CollectorLabels {
            collector: name.to_string(),
        }
    }

    pub fn channel(name: &str) -> ChannelLabels {
        ChannelLabels {
            channel: name.to_string(),
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
