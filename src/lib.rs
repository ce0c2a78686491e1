//! watchdog: notices stuck work on automation hosts, says so once, then says when it is over.
//!
//! Data flows one way: collectors (the `watchdog-collectors` crate) -> observations -> signal
//! builders -> reports and, later, alerts. Nothing downstream calls back up.
//!
//! - [`config`]: every `WATCHDOG_*` setting, its default, validation and display.
//! - [`collect`]: builds the enabled collectors by name and runs one pass over them.
//! - [`signals`]: the pure builders from observations to per-entity signals.
//! - [`once`]: `watchdog once`, one pass shown as a table or JSON, and `--check`.
//! - [`hostns`]: the start-up check that the watchdog sees the host's pid namespace.

pub mod collect;
pub mod config;
pub mod hostns;
pub mod once;
pub mod signals;

/// The exit status for a configuration that cannot be used.
pub const EXIT_BAD_CONFIG: u8 = 2;
