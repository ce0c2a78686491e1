//! Which collectors run, and what their observations mean.
//!
//! Owns the one place where collectors are built, by name, from their settings: a collector
//! that is switched off is never constructed, so it opens nothing. Also owns turning one
//! observation into what the engine and the report need, once per tick: signals, entities to
//! hold or forget, and (for jobs and pressure) what to remember. Observations are derived in the
//! order of [`KNOWN`], so pressure's top consumers can be matched to this tick's proc and jobs
//! entities. It runs nothing on its own; the runner and `once` call the collectors.

use std::sync::Arc;

use watchdog_collectors::jobs::{JobsCollector, JobsConfig, Source};
use watchdog_collectors::pressure::{
    self, PressureCollector, PressureConfig, PressureScan, Sampling, Top,
};
use watchdog_collectors::proc::{Containers, ProcCollector, ProcConfig};
use watchdog_collectors::{Collector, Observation};

use crate::config::{ConfigError, JobsSourceSettings, Settings, PREFIX};
use crate::engine::{AlertState, CollectorTick};
use crate::model::{CollectFailure, JobsMemory, Memory, ProcMemory, Signal, Unix};
use crate::signals;
use crate::signals::proc::GroupBy;

/// Every collector watchdog knows, in the fixed order of reports.
pub const KNOWN: &[&str] = &["proc", "jobs", "pressure"];

/// At most this many matches keep their `stat` open between ticks: each read one holds a page
/// of kernel memory (its seq_file buffer), charged to watchdog's cgroup, so 1,024 of them cost
/// 4 MiB there and save an open and a close each per tick (about 4 us of the 8 an open, read
/// and close of a `stat` takes here).
const KEEP_OPEN_MAX: usize = 1024;

/// How many `stat` files the proc collector may keep open: a quarter of the soft open-file
/// limit in force (which `run` raises to the hard limit before it builds the collectors; see
/// `runner::fds`), at most [`KEEP_OPEN_MAX`]. The rest of the limit stays for the endpoint's
/// connections, the store and the scans' own opens.
pub fn keep_open_budget() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    soft.map_or(KEEP_OPEN_MAX, |soft| {
        usize::try_from(soft / 4).map_or(KEEP_OPEN_MAX, |quarter| quarter.min(KEEP_OPEN_MAX))
    })
}

/// Builds the enabled collectors, in the order of [`KNOWN`]. `sampling` is how the pressure
/// collector takes its two per-process samples: a tick apart in `run`, around a wait in `once`.
///
/// # Errors
/// The jobs HTTP source has no roots to trust at all (no system store, no CA file); the error
/// names `WATCHDOG_CA_FILE`.
pub fn build(
    settings: &Settings,
    sampling: Sampling,
) -> Result<Vec<Arc<dyn Collector>>, ConfigError> {
    let mut built: Vec<Arc<dyn Collector>> = Vec::new();
    if let Some(proc) = &settings.proc {
        // Grouped by pgid, a group shows its oldest member's container alone: only that one's
        // `cgroup` is read.
        let containers = match proc.rules.group_by {
            GroupBy::Pgid => Containers::OldestOfEachGroup,
            GroupBy::Pid => Containers::EveryMatch,
        };
        let config = ProcConfig {
            rescan_ticks: proc.rescan_ticks,
            containers,
            keep_open: match sampling {
                Sampling::Interval => keep_open_budget(),
                // `once` scans once: a file kept open would never be read again, and past 64,
                // 256 and 512 open files the descriptor table grows, each time after an RCU
                // grace period (about 10 ms here) in a process with threads.
                Sampling::Wait(_) => 0,
            },
            ..ProcConfig::with_system_units(
                proc.root.clone(),
                proc.patterns.clone(),
                proc.exclude.clone(),
            )
        };
        built.push(Arc::new(ProcCollector::new(config)));
    }
    if let Some(jobs) = &settings.jobs {
        let source = match &jobs.source {
            JobsSourceSettings::Http { url, token } => Source::Http {
                url: url.to_string(),
                token: token.clone(),
                timeout: jobs.timeout,
                tls: settings.tls.get().map_err(|e| ConfigError {
                    var: format!("{PREFIX}CA_FILE"),
                    value: None,
                    expected: format!("roots to trust for WATCHDOG_JOBS_URL ({e})"),
                })?,
            },
            JobsSourceSettings::Sqlite { path, query } => Source::Sqlite {
                path: path.clone(),
                query: query.clone(),
            },
        };
        built.push(Arc::new(JobsCollector::new(JobsConfig {
            source,
            root: jobs.root.clone(),
            pid_ns: jobs.pid_ns.clone(),
            ticks_per_second: watchdog_collectors::proc::ticks_per_second(),
        })));
    }
    if let Some(pressure) = &settings.pressure {
        built.push(Arc::new(PressureCollector::new(
            PressureConfig::with_system_units(
                pressure.root.clone(),
                pressure.thresholds,
                pressure.top,
                sampling,
            ),
        )));
    }
    Ok(built)
}

/// What one collector did this tick.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: &'static str,
    /// `None` when the collector is switched off.
    pub result: Option<Result<Observation, CollectFailure>>,
}

/// What one observation means: its signals, the entities to hold and to forget, and what its
/// builders remember.
#[derive(Debug, Clone, Default)]
pub struct Derived {
    pub signals: Vec<Signal>,
    pub held: Vec<String>,
    /// Entities to drop without a recovery.
    pub forget: Vec<String>,
    /// What the builders remember: set for jobs and pressure observations.
    pub memory: Option<Memory>,
}

impl Derived {
    /// What the engine needs of it.
    pub fn into_tick(self) -> CollectorTick {
        CollectorTick::Ok {
            signals: self.signals,
            unreadable: self.held,
            forget: self.forget,
            memory: self.memory,
        }
    }
}

/// What the builders know of earlier ticks.
#[derive(Debug, Clone, Copy)]
pub enum Past<'a> {
    /// `once`: there is no earlier tick.
    None,
    /// `run`: what the alert state kept from the last successful tick.
    Kept(&'a AlertState),
}

/// Derives signals from one successful observation, with the builders' settings and memory.
/// `earlier` holds the signals already derived this tick (of the collectors before this one).
pub fn derive(
    observation: &Observation,
    settings: &Settings,
    past: Past<'_>,
    earlier: &[Signal],
    now: Unix,
) -> Derived {
    match observation {
        Observation::Proc(scan) => {
            let Some(proc) = &settings.proc else {
                return Derived::default();
            };
            let none = ProcMemory::default();
            let memory = match past {
                Past::None => &none,
                Past::Kept(state) => state.proc(),
            };
            let built = signals::proc::build(scan, memory, &proc.rules);
            Derived {
                signals: built.signals,
                held: built.held,
                forget: Vec::new(),
                memory: Some(Memory::Proc(built.memory)),
            }
        }
        Observation::Jobs(scan) => {
            let Some(jobs) = &settings.jobs else {
                return Derived::default();
            };
            let none = JobsMemory::default();
            let memory = match past {
                Past::None => &none,
                Past::Kept(state) => state.jobs(),
            };
            let built = signals::jobs::build(scan, memory, now, &jobs.rules);
            Derived {
                signals: built.signals,
                held: built.held,
                forget: built.forget,
                memory: Some(Memory::Jobs(built.memory)),
            }
        }
        Observation::Pressure(scan) => {
            let Some(pressure) = &settings.pressure else {
                return Derived::default();
            };
            let history = match past {
                Past::None => signals::pressure::History::None,
                Past::Kept(state) => signals::pressure::History::Kept(state.pressure()),
            };
            let built = signals::pressure::build(scan, history, earlier, now, &pressure.rules);
            Derived {
                signals: built.signals,
                held: Vec::new(),
                forget: Vec::new(),
                memory: built.memory.map(Memory::Pressure),
            }
        }
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
        Observation::Jobs(scan) => (scan.jobs.len() as u64, 0, scan.unreadable.len() as u64),
        Observation::Pressure(scan) => pressure_counts(scan),
    }
}

/// A pressure scan's counts: the resources it had a source for, and the processes its top
/// sampling lost or could not read.
fn pressure_counts(scan: &PressureScan) -> (u64, u64, u64) {
    let observed = scan
        .resources
        .iter()
        .filter(|r| r.source != pressure::Source::Unavailable)
        .count() as u64;
    match &scan.top {
        Top::Sampled {
            vanished,
            unreadable,
            ..
        } => (observed, *vanished, *unreadable),
        _ => (observed, 0, 0),
    }
}
