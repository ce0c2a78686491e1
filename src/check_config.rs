//! `watchdog check-config`: the effective settings and channels, secrets masked.
//!
//! Prints what the daemon would run with and fails (status 2) on anything `run` would refuse,
//! and on unknown `WATCHDOG_*` variables, which elsewhere are only a warning. It opens nothing
//! but `WATCHDOG_CA_FILE`, the system's roots when the jobs source is HTTP (as `run` would),
//! and what the pid-namespace check reads, only with the proc collector on.

use crate::config::Config;
use crate::EXIT_BAD_CONFIG;

/// Runs `watchdog check-config`; `unknown` is how many unknown variables were warned about.
pub fn main(config: &Config, unknown: usize) -> u8 {
    if config.proc_enabled {
        if let Some(warning) = crate::hostns::warning(&config.proc_root) {
            tracing::warn!("{warning}");
        }
    }
    for line in config.display_lines() {
        println!("{line}");
    }
    let channels = config.channels();
    println!();
    if channels.is_empty() {
        println!("channels: none (alerts are only logged)");
    }
    for (name, target) in channels {
        println!("channel {name}: {target}");
    }
    let tls = crate::tls::SharedConfig::new(config.ca_roots.clone());
    if let Err(error) = crate::collect::build(config, &tls) {
        eprintln!("watchdog: {error}");
        return EXIT_BAD_CONFIG;
    }
    if unknown > 0 {
        eprintln!("watchdog: {unknown} unknown WATCHDOG_* variable(s); see the warnings above");
        return EXIT_BAD_CONFIG;
    }
    0
}
