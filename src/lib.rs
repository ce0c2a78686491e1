//! watchdog: notices stuck work on automation hosts, says so once, then says when it is over.
//!
//! Data flows one way: collectors (the `watchdog-collectors` crate) -> observations -> signal
//! builders -> decide() -> alerts -> events -> outboxes -> notifiers. Nothing downstream calls
//! back up.
//!
//! - [`config`]: every `WATCHDOG_*` setting, its default, validation and display.
//! - [`check_config`]: `watchdog check-config`, the effective settings and channels.
//! - [`collect`]: builds the enabled collectors by name and runs one pass over them.
//! - [`signals`]: the pure builders from observations to per-entity signals.
//! - [`engine`]: `decide()` and the alert state: fire, remind, recover, hold.
//! - [`event`]: an alert rendered in the `watchdog.alert.v1` wire format.
//! - [`text`]: alert texts in English and Russian.
//! - [`store`]: state, outboxes and dead letters on disk, written atomically.
//! - [`notify`]: one module per channel behind the `Notifier` trait.
//! - [`deliver`]: each channel's outbox and the task that empties it, with backoff.
//! - [`daemon`]: `watchdog run`, the tick loop and shutdown.
//! - [`endpoint`]: `/metrics`, `/healthz`, `/readyz` and `/status` on `WATCHDOG_LISTEN`.
//! - [`metrics`]: the Prometheus metrics.
//! - [`once`]: `watchdog once`, one pass shown as a table or JSON, and `--check`.
//! - [`test_alert`]: `watchdog test-alert`, one test event to every channel.
//! - [`hostns`]: the start-up check that the watchdog sees the host's pid namespace.
//! - [`guard`]: `watchdog guard -- CMD`, which runs CMD so that nothing it starts outlives it.
//! - [`duration`]: the one parser of typed durations (`90s`, `30m`, `2h`, `7d`).
//! - [`escape`]: text a process controls (argv, comm) made safe to print.

pub mod check_config;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod deliver;
pub mod duration;
pub mod endpoint;
pub mod engine;
pub mod escape;
pub mod event;
pub mod guard;
pub mod hostns;
pub mod metrics;
pub mod notify;
pub mod once;
pub mod signals;
pub mod store;
pub mod test_alert;
pub mod text;

/// The exit status for a configuration that cannot be used.
pub const EXIT_BAD_CONFIG: u8 = 2;
