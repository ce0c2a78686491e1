//! `watchdog check-config`: the effective settings and channels, secrets masked.
//!
//! Prints what the daemon would run with and fails (status 2) on anything `run` would refuse,
//! and on unknown `WATCHDOG_*` variables, which elsewhere are only a warning. It opens nothing
//! but what the pid-namespace check reads, and only with the proc collector on.

use crate::config::{Config, Settings};
use crate::EXIT_BAD_CONFIG;

/// Runs `watchdog check-config`; `unknown` is how many unknown variables were warned about.
pub fn main(config: &Config, settings: &Settings, unknown: usize) -> u8 {
    if settings.proc.is_some() {
        if let Some(warning) = crate::hostns::warning(&settings.runner.proc_root) {
            tracing::warn!("{warning}");
        }
    }
    for line in config.display_lines() {
        println!("{line}");
    }
    let channels = settings.delivery.channels.targets();
    println!();
    if channels.is_empty() {
        println!("channels: none (alerts are only logged)");
    }
    for (name, target) in channels {
        println!("channel {name}: {target}");
    }
    // Building opens nothing; it proves the collectors can be built as `run` would build them.
    let sampling = watchdog_collectors::pressure::Sampling::Interval;
    if let Err(error) = crate::collect::build(settings, sampling) {
        eprintln!("watchdog: {error}");
        return EXIT_BAD_CONFIG;
    }
    if unknown > 0 {
        eprintln!("watchdog: {unknown} unknown WATCHDOG_* variable(s); see the warnings above");
        return EXIT_BAD_CONFIG;
    }
    0
}
