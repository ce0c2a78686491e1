//! `watchdog run`: the tick loop.
//!
//! Owns the daemon's life: open the store, load state and outboxes, start one delivery task
//! per channel and the sinks (Alertmanager, heartbeat), then every `WATCHDOG_INTERVAL_S` run
//! one tick: collect ([`schedule`]), derive the signals once, decide, commit, enqueue, publish.
//! On shutdown it abandons an in-flight collection, gives delivery a few seconds, commits the
//! state and returns. It decides nothing itself: decide() does, from what the collectors saw.
//!
//! When to commit ([`commit`]): a tick that decided an event, or changed anything that decides
//! one, is committed before its events go out; a tick that only refreshed facts is committed
//! at most every [`commit::FACTS_EVERY_S`]. While commits fail, decided events are delivered
//! from memory and kept (bounded by `WATCHDOG_OUTBOX_MAX`) for the next commit that works.

mod clock;
mod commit;
mod fds;
pub mod memory;
mod publish;
mod schedule;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use watchdog_collectors::pressure::Sampling;
use watchdog_collectors::{CollectRequest, Collector};

pub use clock::Clock;
pub use schedule::{all_known, Scheduler};

use crate::collect;
use crate::config::{ConfigError, Settings};
use crate::deliver::{self, Channel};
use crate::endpoint::{self, View};
use crate::engine::{self, AlertState, CollectorTick, Reason};
use crate::event::Event;
use crate::model::{Alert, Kind, Unix};
use crate::notify::{self, alertmanager, heartbeat::Heartbeat};
use crate::report::Report;
use crate::store::{Decided, HistoryEvent, Store, StoreError, Writer};

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

/// What one tick did.
#[derive(Debug, Clone)]
pub struct TickReport {
    pub at: Unix,
    /// Each enabled collector's outcome: `Err` with the error when it failed.
    pub collectors: Vec<(&'static str, Result<(), String>)>,
    pub alerts: Vec<Alert>,
    pub decisions: Vec<(Kind, String, Reason)>,
}

/// The daemon between ticks.
pub struct Daemon {
    settings: Settings,
    scheduler: Scheduler,
    state: AlertState,
    store: Store,
    /// The store's writer thread, stopped at shutdown.
    writer: Option<Writer>,
    commits: commit::Commits,
    channels: Vec<Arc<Channel>>,
    alertmanager: Option<alertmanager::Sink>,
    heartbeat: Option<Heartbeat>,
    clock: Clock,
    view: Arc<View>,
    /// Bound at construction, so a taken port stops `run` at start; served by [`serve`].
    listener: Option<std::net::TcpListener>,
}

impl Daemon {
    /// Opens the state dir, loads state and outboxes and builds collectors and channels.
    ///
    /// # Errors
    /// A channel that cannot be set up, a state dir that cannot be written, a taken port.
    pub fn new(settings: Settings, clock: Clock) -> Result<Self, RunError> {
        let collectors = collect::build(&settings, Sampling::Interval)?;
        Self::with_collectors(settings, clock, collectors)
    }

    /// As [`Daemon::new`], with the collectors given rather than built from the settings.
    ///
    /// # Errors
    /// As [`Daemon::new`].
    pub fn with_collectors(
        settings: Settings,
        clock: Clock,
        collectors: Vec<Arc<dyn Collector>>,
    ) -> Result<Self, RunError> {
        let scheduler = Scheduler::new(collectors, settings.runner.collect_timeout);
        let listener = match settings.listen {
            Some(addr) => Some(
                std::net::TcpListener::bind(addr)
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .map_err(|e| RunError::Listen(format!("cannot listen on {addr}: {e}")))?,
            ),
            None => None,
        };
        let view = Arc::new(View::new(
            settings.runner.interval,
            settings.rules.collector_fail_ticks,
        ));
        let delivery = &settings.delivery;
        let names: Vec<&'static str> = delivery.channels.event_channels();
        let (store, loaded, writer) = Store::open(
            &settings.runner.state_dir,
            &names,
            crate::endpoint::RECENT_EVENTS,
        )?;
        let (mut state, rewrite) = commit::parse_state(loaded.state.as_ref());
        for dropped in state.retain_enabled(&scheduler.names()) {
            tracing::info!(
                kind = dropped.kind.as_str(),
                entity = %dropped.entity,
                "no longer watched: its collector is off; forgotten without a recovery"
            );
        }
        view.decided(loaded.recent.into_iter().rev());
        let mut outboxes = loaded.outboxes;
        let built = if delivery.channels.targets().is_empty() {
            // No channel: no client, and the system's roots are never loaded.
            notify::Channels::default()
        } else {
            let tls = settings
                .tls
                .get()
                .map_err(|e| RunError::Http(e.to_string()))?;
            let client = notify::client_with(&tls).map_err(RunError::Http)?;
            notify::Channels::build(&delivery.channels, &client).map_err(RunError::Http)?
        };
        let channels = built
            .events
            .into_iter()
            .map(|notifier| {
                let queued = outboxes
                    .iter_mut()
                    .find(|(name, _)| *name == notifier.name())
                    .map(|(_, queued)| std::mem::take(queued))
                    .unwrap_or_default();
                Arc::new(Channel::new(
                    notifier,
                    queued,
                    store.clone(),
                    delivery.outbox_max,
                    Arc::clone(&view),
                ))
            })
            .collect();
        let alertmanager = built.alertmanager.map(|(client, urls)| {
            let feed = alertmanager::Feed::new(
                settings.host.clone(),
                settings.lang,
                clock.now(),
                delivery.alertmanager_hold_s,
            );
            alertmanager::Sink::new(client, urls, feed)
        });
        let heartbeat = built
            .heartbeat
            .map(|(client, url)| Heartbeat::new(client, url));
        Ok(Self {
            settings,
            scheduler,
            commits: commit::Commits::new(&state, loaded.next_seq, clock.now(), rewrite),
            state,
            store,
            writer: Some(writer),
            channels,
            alertmanager,
            heartbeat,
            clock,
            view,
            listener,
        })
    }

    pub fn state(&self) -> &AlertState {
        &self.state
    }

    pub fn channels(&self) -> &[Arc<Channel>] {
        &self.channels
    }

    /// What the HTTP endpoint shows.
    pub fn view(&self) -> Arc<View> {
        Arc::clone(&self.view)
    }

    /// What this tick's collections need beyond their settings: every process's `stat` while
    /// a leftover watch is open.
    fn collect_request(&self) -> CollectRequest {
        CollectRequest {
            all_processes: self.state.jobs().has_open_watch(),
        }
    }

    /// Runs one tick: collect, derive, decide, save, enqueue, publish.
    pub async fn tick(&mut self) -> TickReport {
        let tick_started = Instant::now();
        let request = self.collect_request();
        let outcomes = self.scheduler.collect(&request).await;
        let at = self.clock.now();
        let (report, ticks) = self.derive(&outcomes, at);
        let summary: Vec<(&'static str, Result<(), String>)> = outcomes
            .iter()
            .map(|(o, _)| match &o.result {
                Some(Err(error)) => (o.name, Err(error.to_string())),
                _ => (o.name, Ok(())),
            })
            .collect();
        let all_ok = summary.iter().all(|(_, r)| r.is_ok());
        let outcome = engine::decide(
            std::mem::take(&mut self.state),
            ticks,
            at,
            &self.settings.rules,
        );
        self.state = outcome.state;
        log_decisions(&outcome.decisions, &summary, &self.state);
        let events: Vec<Decided> = outcome
            .alerts
            .iter()
            .map(|alert| Decided {
                seq: self.commits.number(),
                at: alert.at,
                event: Arc::new(Event::render(
                    alert,
                    &self.settings.host,
                    self.settings.lang,
                )),
            })
            .collect();
        self.commit(&events, at, false).await;
        let names = self.channel_names();
        self.view
            .decided(events.iter().map(|d| HistoryEvent::decided(d, &names)));
        for channel in &self.channels {
            channel.enqueue(&events);
        }
        if let Some(am) = &mut self.alertmanager {
            am.publish(&self.state, &outcome.alerts, at);
        }
        if let (Some(heartbeat), true) = (&mut self.heartbeat, all_ok) {
            heartbeat.beat();
        }
        self.publish(&outcomes, report, all_ok, at, tick_started.elapsed());
        memory::release_free();
        tracing::debug!(at, alerts = events.len(), "tick done");
        TickReport {
            at,
            collectors: summary,
            alerts: outcome.alerts,
            decisions: outcome.decisions,
        }
    }

    /// Derives each observation's signals once: a copy for the report, the rest for decide().
    fn derive(
        &self,
        outcomes: &[(collect::Outcome, Duration)],
        at: Unix,
    ) -> (Report, Vec<(&'static str, CollectorTick)>) {
        let mut signals = Vec::new();
        let mut ticks = Vec::new();
        for (outcome, _) in outcomes {
            match &outcome.result {
                None => {}
                Some(Ok(observation)) => {
                    let past = collect::Past::Kept(&self.state);
                    let derived = collect::derive(observation, &self.settings, past, &signals, at);
                    signals.extend(derived.signals.iter().cloned());
                    ticks.push((outcome.name, derived.into_tick()));
                }
                Some(Err(error)) => ticks.push((
                    outcome.name,
                    CollectorTick::Failed {
                        error: error.clone(),
                    },
                )),
            }
        }
        let report = Report::new(&schedule::all_known(outcomes), signals);
        (report, ticks)
    }

    fn channel_names(&self) -> Vec<&'static str> {
        self.channels.iter().map(|c| c.name()).collect()
    }

    /// Commits this tick when [`commit::Commits`] says it must (always when `force`), with
    /// `events` and any earlier ones whose commit failed; reports the result.
    async fn commit(&mut self, events: &[Decided], at: Unix, force: bool) {
        let names = self.channel_names();
        let Some(tick) = self.commits.prepare(
            &self.state,
            events,
            names,
            at,
            self.settings.runner.history_s,
            self.settings.delivery.outbox_max,
            force,
        ) else {
            return;
        };
        self.view.set_committing(true);
        let result = self.store.commit(tick).await;
        self.view.set_committing(false);
        if result.is_err() {
            self.view.metrics.state_commit_errors.inc();
        }
        self.commits.finished(&result, at, self.store.dir());
        self.view.store_result(result);
    }

    /// Commits the state now, whatever changed: for shutdown, and for tests.
    pub async fn save_state(&mut self) {
        let at = self.clock.now();
        self.commit(&[], at, true).await;
    }

    /// Commits the state, then flushes every delivery mark and stops the store's writer.
    pub async fn close(&mut self) {
        self.save_state().await;
        if let Some(writer) = self.writer.take() {
            // Joining waits for the last batch of marks to be written.
            self.view.set_committing(true);
            let _ = tokio::task::spawn_blocking(move || writer.stop()).await;
            self.view.set_committing(false);
        }
    }
}

fn log_decisions(
    decisions: &[(Kind, String, Reason)],
    summary: &[(&'static str, Result<(), String>)],
    state: &AlertState,
) {
    for (kind, entity, reason) in decisions {
        if *reason == Reason::Forgotten {
            tracing::info!(kind = kind.as_str(), entity = %entity, "no longer watched: forgotten without a recovery");
        } else {
            tracing::debug!(kind = kind.as_str(), entity = %entity, reason = ?reason, "decided");
        }
    }
    for (name, result) in summary {
        if let Err(error) = result {
            let streak = state.fail_streak(name);
            tracing::warn!(
                collector = name,
                failed_ticks = streak,
                "collection failed: {error}"
            );
        }
    }
}

/// Runs the daemon until `shutdown` completes.
///
/// # Errors
/// When it cannot start (see [`Daemon::new`]); once running, nothing stops it but `shutdown`.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    if settings.proc.is_some() {
        if let Some(warning) = crate::hostns::warning(&settings.runner.proc_root) {
            tracing::warn!("{warning}");
        }
    }
    let soft_limit = fds::raise_soft_limit();
    let mut daemon = Daemon::new(settings, Clock::starting_now())?;
    let configured = daemon.settings.endpoint.max_conn;
    // The proc collector's budget of kept files, as it was built just now under the raised limit.
    let kept = if daemon.settings.proc.is_some() {
        collect::keep_open_budget()
    } else {
        0
    };
    let cap = fds::connection_cap(configured, soft_limit, kept);
    if daemon.listener.is_some() {
        tracing::info!(
            max_conn = cap,
            configured,
            soft_limit = ?soft_limit,
            reserve = fds::RESERVE,
            kept_stat_files = kept,
            "connections capped so that the open-file limit keeps a reserve for collections"
        );
    }
    daemon.settings.endpoint.max_conn = cap;
    serve(daemon, shutdown).await;
    Ok(())
}

/// Ticks `daemon` every interval, with a delivery task per channel, until `shutdown`; then
/// gives delivery [`DELIVERY_GRACE`] and saves state.
pub async fn serve(mut daemon: Daemon, shutdown: impl Future<Output = ()>) {
    let interval = daemon.settings.runner.interval;
    tracing::info!(
        host = %daemon.settings.host,
        collectors = ?daemon.scheduler.names(),
        channels = ?daemon.settings.delivery.channels.targets().iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        state_dir = %daemon.store.dir().display(),
        interval_s = interval.as_secs(),
        "watchdog running"
    );
    let retry_max = daemon.settings.delivery.retry_max;
    let mut tasks: Vec<JoinHandle<()>> = daemon
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
                let settings = &daemon.settings.endpoint;
                let token = settings.token.as_deref().map(endpoint::Token::new);
                tasks.push(tokio::spawn(endpoint::serve(
                    listener,
                    daemon.view(),
                    settings.max_conn,
                    token,
                )));
            }
            Err(e) => tracing::error!("cannot serve the HTTP endpoint: {e}"),
        }
    }
    if let Some(am) = &daemon.alertmanager {
        tasks.extend(am.spawn());
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
    for task in tasks {
        task.abort();
    }
    daemon.close().await;
}
