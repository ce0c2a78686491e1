//! Which collectors run, and one pass over them.
//!
//! Owns the one place where collectors are built, by name, from the config: a collector that is
//! switched off is never constructed, so it opens nothing. Also owns turning each collector's
//! outcome into signals. It runs collectors in the calling thread; the daemon's tick loop moves
//! them off the async threads.

use watchdog_collectors::proc::{ProcCollector, ProcConfig};
use watchdog_collectors::{Collector, Observation};

use crate::config::{Config, ConfigError};
use crate::engine::CollectorTick;
use crate::signals::{self, proc::ProcRules, Signal};

/// Every collector watchdog knows, in the fixed order of reports.
pub const KNOWN: &[&str] = &["proc"];

/// Builds the enabled collectors.
///
/// # Errors
/// A setting of an enabled collector that does not validate.
pub fn build(config: &Config) -> Result<Vec<Box<dyn Collector>>, ConfigError> {
    let mut collectors: Vec<Box<dyn Collector>> = Vec::new();
    for &name in KNOWN {
        match name {
            "proc" if config.proc_enabled => {
                let (patterns, exclude) = config.proc_pattern_sets()?;
                collectors.push(Box::new(ProcCollector::new(ProcConfig::with_system_units(
                    config.proc_root.clone(),
                    patterns,
                    exclude,
                ))));
            }
            _ => {}
        }
    }
    Ok(collectors)
}

/// What one collector did this tick.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: &'static str,
    /// `None` when the collector is switched off; the error as a line when it could not look
    /// (its own error, or the daemon's time limit).
    pub result: Option<Result<Observation, String>>,
}

/// Runs every enabled collector once, in order, and reports every known one.
pub fn collect_all(collectors: &[Box<dyn Collector>]) -> Vec<Outcome> {
    KNOWN
        .iter()
        .map(|&name| Outcome {
            name,
            result: collectors
                .iter()
                .find(|c| c.name() == name)
                .map(|c| c.collect().map_err(|e| e.to_string())),
        })
        .collect()
}

/// What the engine needs of one collector's result.
pub fn tick_of(result: &Result<Observation, String>, config: &Config) -> CollectorTick {
    match result {
        Ok(observation) => CollectorTick::Ok {
            signals: signals_of(observation, config),
            unreadable: unreadable_of(observation),
        },
        Err(error) => CollectorTick::Failed {
            error: error.clone(),
        },
    }
}

/// (observed, vanished, unreadable) of an observation.
pub fn counts(observation: &Observation) -> (u64, u64, u64) {
    match observation {
        Observation::Proc(scan) => (
            scan.processes.len() as u64,
            scan.vanished,
            scan.unreadable.len() as u64,
        ),
    }
}

/// The entities an observation saw but could not read, as id prefixes the engine holds.
pub fn unreadable_of(observation: &Observation) -> Vec<String> {
    match observation {
        Observation::Proc(scan) => scan
            .unreadable
            .iter()
            .map(|pid| format!("proc:{pid}"))
            .collect(),
    }
}

/// The signals of one successful observation.
pub fn signals_of(observation: &Observation, config: &Config) -> Vec<Signal> {
    match observation {
        Observation::Proc(scan) => signals::proc::build(
            scan,
            &ProcRules {
                age_threshold_s: config.proc_age_threshold_s(),
                group_by: config.proc_group_by,
            },
        ),
    }
}
