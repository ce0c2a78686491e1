//! `watchdog run`: the tick loop.
//!
//! Owns the daemon's life: open the state dir, load state and outboxes, start one delivery task
//! per channel, then every `WATCHDOG_INTERVAL_S` run the collectors, decide, enqueue events and
//! save state. Collectors run on blocking threads with a time limit: one that overruns counts as
//! failed for that tick and keeps its thread (a read stuck on a hung process cannot be
//! cancelled); it is not started again while that thread is busy, so nothing piles up, and the
//! next tick waits on the same run. On shutdown it abandons an in-flight collection, gives
//! delivery a few seconds, saves state and returns. After each tick it publishes metrics and
//! status for the HTTP endpoint.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use watchdog_collectors::{CollectError, CollectRequest, Collector, Observation};

use crate::collect;
use crate::config::mask_url;
use crate::config::{Config, ConfigError};
use crate::deliver::{self, Channel};
use crate::endpoint::{self, View};
use crate::engine::{self, Alert, AlertState, CollectorTick, Reason, Rules, Unix};
use crate::event::rfc3339;
use crate::event::Event;
use crate::metrics::{CollectorOutcomeLabels, Metrics, SignalLabels};
use crate::notify;
use crate::notify::alertmanager::{self, AlertmanagerClient, AmAlert, Feed};
use crate::signals::Kind;
use crate::store::{Store, StoreError};
use crate::tls::SharedConfig;

/// How long delivery may go on after a shutdown signal, inside Docker's 10 s stop grace.
pub const DELIVERY_GRACE: Duration = Duration::from_secs(2);

/// Why `run` could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    StateDir(#[from] StoreError),
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
    #[error("WATCHDOG_LISTEN: {0}")]
    Listen(String),
}

/// The tick's clock: wall time at start plus monotonic time since. Monotonic, so a wall-clock
/// step never fires or recovers anything; and tokio's, so tests can pause and advance it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall_at_start: Unix,
    start: Instant,
}

impl Clock {
    pub fn starting_now() -> Self {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as Unix);
        Self::starting_at(wall)
    }

    pub fn starting_at(wall_at_start: Unix) -> Self {
        Self {
            wall_at_start,
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> Unix {
        self.wall_at_start + self.start.elapsed().as_secs() as Unix
    }
}

/// What one tick did.
#[derive(Debug, Clone)]
pub struct TickReport {
    pub at: Unix,
    /// Each collector's outcome: `Err` with the error when it failed.
    pub collectors: Vec<(&'static str, Result<(), String>)>,
    pub alerts: Vec<Alert>,
    pub decisions: Vec<(Kind, String, Reason)>,
}

/// The daemon between ticks.
pub struct Daemon {
    config: Config,
    host: String,
    rules: Rules,
    collectors: Vec<Arc<dyn Collector>>,
    in_flight: HashMap<&'static str, InFlight>,
    state: AlertState,
    store: Store,
    channels: Vec<Arc<Channel>>,
    alertmanager: Option<AlertmanagerSink>,
    heartbeat: Option<Heartbeat>,
    clock: Clock,
    view: Arc<View>,
    /// Bound at construction, so a taken port stops `run` at start; served by [`serve`].
    listener: Option<std::net::TcpListener>,
}

/// Alertmanager's feed and the newest set, which one task per URL sends.
struct AlertmanagerSink {
    feed: Feed,
    sets: watch::Sender<Arc<Vec<AmAlert>>>,
    client: AlertmanagerClient,
    urls: Vec<String>,
}

/// The heartbeat URL and its request, if one is still going.
struct Heartbeat {
    client: reqwest::Client,
    url: reqwest::Url,
    in_flight: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Fetches the URL in the background, unless the last fetch is still going.
    fn beat(&mut self) {
        if self.in_flight.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let (client, url) = (self.client.clone(), self.url.clone());
        self.in_flight = Some(tokio::spawn(async move {
            if let Err(error) = notify::ping(&client, &url).await {
                tracing::warn!(heartbeat = %mask_url(url.as_str()), "heartbeat failed: {error}");
            }
        }));
    }
}

impl Daemon {
    /// Opens the state dir, loads state and outboxes and builds collectors and channels.
    ///
    /// # Errors
    /// A collector or channel setting that does not validate, or a state dir that cannot be
    /// written.
    pub fn new(config: Config, clock: Clock) -> Result<Self, RunError> {
        // One TLS config for the jobs source and every channel, built when the first asks.
        let tls = SharedConfig::new(config.ca_roots.clone());
        let built = collect::build(&config, &tls)?;
        let collectors = built.collectors.into_iter().map(Arc::from).collect();
        Self::with_parts(config, clock, collectors, &tls)
    }

    /// What this tick asks of the collectors: every process's `stat` while a leftover watch
    /// is open.
    fn collect_request(&self) -> CollectRequest {
        CollectRequest {
            all_processes: self.state.jobs().has_open_watch(),
        }
    }

    /// As [`Daemon::new`], with the collectors given rather than built from the config.
    ///
    /// # Errors
    /// As [`Daemon::new`].
    pub fn with_collectors(
        config: Config,
        clock: Clock,
        collectors: Vec<Arc<dyn Collector>>,
    ) -> Result<Self, RunError> {
        let tls = SharedConfig::new(config.ca_roots.clone());
        Self::with_parts(config, clock, collectors, &tls)
    }

    fn with_parts(
        config: Config,
        clock: Clock,
        collectors: Vec<Arc<dyn Collector>>,
        tls: &SharedConfig,
    ) -> Result<Self, RunError> {
        let store = Store::open(&config.state_dir)?;
        let mut state = store.load_state();
        let enabled: Vec<&str> = collectors.iter().map(|c| c.name()).collect();
        for dropped in state.retain_enabled(&enabled) {
            tracing::info!(
                kind = dropped.kind.as_str(),
                entity = %dropped.entity,
                "no longer watched: its collector is off; forgotten without a recovery"
            );
        }
        let listener = match config.listen_addr() {
            Some(addr) => Some(
                std::net::TcpListener::bind(addr)
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .map_err(|e| RunError::Listen(format!("cannot listen on {addr}: {e}")))?,
            ),
            None => None,
        };
        let view = Arc::new(View::new(config.interval(), config.collector_fail_ticks));
        let built = notify::Channels::build(&config, tls).map_err(RunError::Http)?;
        let channels = built
            .events
            .into_iter()
            .map(|notifier| {
                Arc::new(Channel::new(
                    notifier,
                    store.clone(),
                    config.outbox_max,
                    Arc::clone(&view),
                ))
            })
            .collect();
        let host = resolve_host(&config);
        let alertmanager = built.alertmanager.map(|(client, urls)| AlertmanagerSink {
            feed: Feed::new(
                host.clone(),
                config.lang,
                clock.now(),
                config.alertmanager_hold_s,
            ),
            sets: watch::channel(Arc::new(Vec::new())).0,
            client,
            urls,
        });
        let heartbeat = built.heartbeat.map(|(client, url)| Heartbeat {
            client,
            url,
            in_flight: None,
        });
        Ok(Self {
            view,
            listener,
            alertmanager,
            heartbeat,
            host,
            rules: rules(&config),
            collectors,
            in_flight: HashMap::new(),
            state,
            store,
            channels,
            clock,
            config,
        })
    }

    pub fn state(&self) -> &AlertState {
        &self.state
    }

    pub fn channels(&self) -> &[Arc<Channel>] {
        &self.channels
    }

    /// Runs one tick: collect, decide, enqueue, save, publish.
    pub async fn tick(&mut self) -> TickReport {
        let tick_started = Instant::now();
        let outcomes = self.collect().await;
        let at = self.clock.now();
        let ctx = collect::Context {
            config: &self.config,
            jobs_memory: self.state.jobs(),
            now: at,
        };
        let mut jobs_memory = None;
        let mut collectors: Vec<(&'static str, CollectorTick)> = Vec::new();
        for (o, _) in &outcomes {
            if let Some(result) = &o.result {
                let (tick, memory) = collect::tick_of(result, &ctx);
                jobs_memory = jobs_memory.or(memory);
                collectors.push((o.name, tick));
            }
        }
        // Every known collector, in the fixed order, as `once` shows them; the off ones too.
        let switched_off: Vec<collect::Outcome> = collect::KNOWN
            .iter()
            .filter(|name| !outcomes.iter().any(|(o, _)| o.name == **name))
            .map(|&name| collect::Outcome { name, result: None })
            .collect();
        let mut all: Vec<&collect::Outcome> = outcomes
            .iter()
            .map(|(o, _)| o)
            .chain(switched_off.iter())
            .collect();
        all.sort_by_key(|o| collect::KNOWN.iter().position(|k| *k == o.name));
        let report = crate::once::Report::from_outcomes(all, &ctx);
        // What each collector did, kept for the log and the report; the ticks go to decide().
        let summary: Vec<(&'static str, Result<(), String>)> = collectors
            .iter()
            .map(|(name, tick)| match tick {
                CollectorTick::Ok { .. } => (*name, Ok(())),
                CollectorTick::Failed { error } => (*name, Err(error.clone())),
            })
            .collect();
        let all_ok = summary.iter().all(|(_, r)| r.is_ok());
        let mut outcome =
            engine::decide(std::mem::take(&mut self.state), collectors, at, &self.rules);
        if let Some(memory) = jobs_memory {
            // Only a jobs collection that worked updates what is remembered of jobs.
            outcome.state.set_jobs(memory);
        }
        for (kind, entity, reason) in &outcome.decisions {
            if *reason == engine::Reason::Forgotten {
                tracing::info!(kind = kind.as_str(), entity = %entity, "no longer watched: forgotten without a recovery");
            } else {
                tracing::debug!(kind = kind.as_str(), entity = %entity, reason = ?reason, "decided");
            }
        }
        for (name, result) in &summary {
            if let Err(error) = result {
                let streak = outcome.state.fail_streak(name);
                tracing::warn!(
                    collector = name,
                    failed_ticks = streak,
                    "collection failed: {error}"
                );
            }
        }
        let events: Vec<Event> = outcome
            .alerts
            .iter()
            .map(|alert| Event::render(alert, &self.host, self.config.lang))
            .collect();
        for event in &events {
            tracing::info!(
                event = event.event.as_str(),
                kind = event.kind.as_str(),
                entity = %event.entity,
                id = %event.id,
                "{}",
                event.summary
            );
        }
        for channel in &self.channels {
            channel.enqueue(&events);
        }
        if let Some(am) = &mut self.alertmanager {
            let set = am.feed.alerts(&outcome.state, &outcome.alerts, at);
            am.sets.send_replace(Arc::new(set));
        }
        if let (Some(heartbeat), true) = (&mut self.heartbeat, all_ok) {
            heartbeat.beat();
        }
        self.state = outcome.state;
        self.save_state();
        self.publish(&outcomes, report, all_ok, at, tick_started.elapsed());
        tracing::debug!(at, alerts = events.len(), "tick done");
        TickReport {
            at,
            collectors: summary,
            alerts: outcome.alerts,
            decisions: outcome.decisions,
        }
    }

    /// Records this tick in the metrics and publishes what the endpoint shows.
    fn publish(
        &self,
        outcomes: &[(collect::Outcome, Duration)],
        report: crate::once::Report,
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
                Some(Err(error)) => Some(error.clone()),
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
        let watches = self
            .state
            .jobs()
            .jobs
            .values()
            .filter(|r| r.ended_at.is_some())
            .count();
        m.jobs_open_watches.set(watches as i64);
        let mut known: Vec<&crate::engine::EntityState> = self.state.entities().collect();
        known.sort_by(|a, b| (a.kind, &a.entity).cmp(&(b.kind, &b.entity)));
        let alerts: Vec<serde_json::Value> = known
            .into_iter()
            .map(|e| {
                serde_json::json!({
                    "kind": e.kind,
                    "entity": e.entity,
                    "since": rfc3339(e.since),
                    "last_notified": rfc3339(e.last_notified),
                    "held": e.held,
                    "facts": e.facts,
                })
            })
            .collect();
        let status = serde_json::json!({
            "host": self.host,
            "at": rfc3339(at),
            "collectors": report.collectors,
            "signals": report.signals,
            "alerts": alerts,
        });
        self.view.tick_done(collectors, status);
    }

    /// What the HTTP endpoint shows.
    pub fn view(&self) -> Arc<View> {
        Arc::clone(&self.view)
    }

    pub fn save_state(&self) {
        if let Err(e) = self.store.save_state(&self.state) {
            tracing::error!(dir = %self.store.dir().display(), error = %e, "cannot save alert state");
        }
    }

    /// Runs every collector on a blocking thread, all within one deadline. A collector whose
    /// earlier run is still going is not started again: this tick waits on that same run.
    /// Returns each collector's outcome and how long this tick waited for it.
    async fn collect(&mut self) -> Vec<(collect::Outcome, Duration)> {
        let limit = Duration::from_secs(self.config.collect_timeout_s);
        let started = Instant::now();
        let deadline = started + limit;
        let request = self.collect_request();
        for collector in &self.collectors {
            let name = collector.name();
            if !self.in_flight.contains_key(name) {
                let collector = Arc::clone(collector);
                let request = request.clone();
                let handle = tokio::task::spawn_blocking(move || collector.collect(&request));
                self.in_flight.insert(
                    name,
                    InFlight {
                        started: Instant::now(),
                        handle,
                    },
                );
            }
        }
        let mut outcomes = Vec::new();
        for collector in &self.collectors {
            let name = collector.name();
            let Some(run) = self.in_flight.get_mut(name) else {
                continue;
            };
            let result = match tokio::time::timeout_at(deadline, &mut run.handle).await {
                Err(_elapsed) => {
                    // Its thread stays busy (a read stuck on a hung process cannot be
                    // cancelled); the next tick waits on it rather than start another.
                    let running = run.started.elapsed().as_secs();
                    let error = format!(
                        "timed out: this collection has been running for {running}s, the limit is {}s",
                        limit.as_secs()
                    );
                    outcomes.push((
                        collect::Outcome {
                            name,
                            result: Some(Err(error)),
                        },
                        started.elapsed(),
                    ));
                    continue;
                }
                Ok(Err(join)) => Err(format!("the collector panicked: {join}")),
                Ok(Ok(result)) => result.map_err(|e| e.to_string()),
            };
            self.in_flight.remove(name);
            outcomes.push((
                collect::Outcome {
                    name,
                    result: Some(result),
                },
                started.elapsed(),
            ));
        }
        outcomes
    }
}

/// A collection running on a blocking thread.
struct InFlight {
    started: Instant,
    handle: JoinHandle<Result<Observation, CollectError>>,
}

/// The engine's thresholds from the config.
pub fn rules(config: &Config) -> Rules {
    Rules {
        proc_cooldown_s: config.proc_cooldown_s,
        jobs_cooldown_s: config.jobs_cooldown_s,
        collector_fail_ticks: config.collector_fail_ticks,
        collector_fail_cooldown_s: config.collector_fail_cooldown_s,
    }
}

/// `WATCHDOG_HOST`, or this machine's hostname.
pub fn resolve_host(config: &Config) -> String {
    if !config.host.is_empty() {
        return config.host.clone();
    }
    let uname = rustix::system::uname();
    uname.nodename().to_string_lossy().into_owned()
}

/// Runs the daemon until `shutdown` completes.
///
/// # Errors
/// When it cannot start (see [`Daemon::new`]); once running, nothing stops it but `shutdown`.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    if config.proc_enabled {
        if let Some(warning) = crate::hostns::warning(&config.proc_root) {
            tracing::warn!("{warning}");
        }
    }
    let daemon = Daemon::new(config, Clock::starting_now())?;
    serve(daemon, shutdown).await;
    Ok(())
}

/// Ticks `daemon` every interval, with a delivery task per channel, until `shutdown`; then
/// gives delivery [`DELIVERY_GRACE`] and saves state.
pub async fn serve(mut daemon: Daemon, shutdown: impl Future<Output = ()>) {
    let interval = daemon.config.interval();
    tracing::info!(
        host = %daemon.host,
        collectors = ?daemon.collectors.iter().map(|c| c.name()).collect::<Vec<_>>(),
        channels = ?daemon.config.channels().iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        state_dir = %daemon.store.dir().display(),
        interval_s = interval.as_secs(),
        "watchdog running"
    );
    let retry_max = Duration::from_secs(daemon.config.retry_max_s);
    let mut deliveries: Vec<JoinHandle<()>> = daemon
        .channels
        .iter()
        .map(|channel| tokio::spawn(deliver::run(Arc::clone(channel), retry_max)))
        .collect();
    if let Some(listener) = daemon.listener.take() {
        match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                if let Ok(addr) = listener.local_addr() {
                    tracing::info!(%addr, "serving /metrics, /healthz, /readyz and /status");
                }
                deliveries.push(tokio::spawn(endpoint::serve(listener, daemon.view())));
            }
            Err(e) => tracing::error!("cannot serve the HTTP endpoint: {e}"),
        }
    }
    if let Some(am) = &daemon.alertmanager {
        for url in &am.urls {
            let task = alertmanager::run(am.client.clone(), url.clone(), am.sets.subscribe());
            deliveries.push(tokio::spawn(task));
        }
    }

    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick() => {
                tokio::select! {
                    // Dropping the tick abandons its collection: the state is left as it was.
                    () = &mut shutdown => break,
                    _ = daemon.tick() => {}
                }
            }
        }
    }

    tracing::info!("shutting down");
    for channel in &daemon.channels {
        if !channel.drain(DELIVERY_GRACE).await {
            tracing::warn!(
                channel = channel.name(),
                undelivered = channel.depth(),
                "undelivered events stay in the outbox for the next start"
            );
        }
    }
    for delivery in deliveries {
        delivery.abort();
    }
    daemon.save_state();
}
