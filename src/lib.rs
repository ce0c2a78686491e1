//! watchdog: notices stuck work on automation hosts, says so once, then says when it is over.
//!
//! Data flows one way: collectors (the `watchdog-collectors` crate) -> observations -> signal
//! builders -> decide() -> alerts -> events -> outboxes -> notifiers. Nothing downstream calls
//! back up, and no module imports one above it (a test, `tests/layers.rs`, keeps it so).
//!
//! - [`model`]: what every stage shares: kinds, facts, signals, alerts, time, language, and the
//!   string helpers more than one stage needs. Imports nothing from the pipeline.
//! - [`config`]: every `WATCHDOG_*` variable, declared once, and the typed settings of each area.
//! - [`collect`]: builds the enabled collectors by name and derives what an observation means.
//! - [`signals`]: the pure builders from observations to per-entity signals.
//! - [`engine`]: `decide()` as a table: classify each entity, apply the reason; the alert state.
//! - [`report`]: one pass as `once` prints it and `/status` serves it.
//! - [`event`]: an alert rendered in the `watchdog.alert.v1` wire format.
//! - [`text`]: alert texts in English and Russian.
//! - [`store`]: one SQLite database for the alert state, outboxes, dead letters and history,
//!   written by one thread, one commit per tick.
//! - [`history`]: `watchdog history`, read-only beside a running daemon.
//! - [`notify`]: one module per channel behind the `Notifier` trait; Alertmanager and the
//!   heartbeat as sinks.
//! - [`deliver`]: each channel's outbox and the task that empties it, with backoff.
//! - [`runner`]: `watchdog run`: the tick loop, collector scheduling, shutdown.
//! - [`endpoint`]: `/metrics`, `/healthz`, `/readyz` and `/status` on `WATCHDOG_LISTEN`.
//! - [`metrics`]: the Prometheus metrics.
//! - [`tls`]: the one TLS client configuration every outbound client uses.
//! - [`once`], [`check_config`], [`test_alert`]: the one-shot commands.
//! - [`hostns`]: the start-up check that the watchdog sees the host's pid namespace.
//! - [`guard`]: `watchdog guard -- CMD`, which runs CMD so that nothing it starts outlives it.
//! - [`duration`]: the one parser of typed durations (`90s`, `30m`, `2h`, `7d`).
//! - [`escape`]: text a process controls (argv, comm) made safe to print.

pub mod check_config;
pub mod collect;
pub mod config;
pub mod deliver;
pub mod duration;
pub mod endpoint;
pub mod engine;
pub mod escape;
pub mod event;
pub mod guard;
pub mod history;
pub mod hostns;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod once;
pub mod report;
pub mod runner;
pub mod signals;
pub mod store;
pub mod test_alert;
pub mod text;
pub mod tls;

/// The exit status for a configuration that cannot be used.
pub const EXIT_BAD_CONFIG: u8 = 2;
