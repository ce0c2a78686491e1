//! Which collectors run, and one pass over them.
//!
//! Owns the one place where collectors are built, by name, from the config: a collector that is
//! switched off is never constructed, so it opens nothing. Also owns turning each collector's
//! outcome into what the engine needs: signals, entities to hold, and (for jobs) what to
//! remember. It runs collectors in the calling thread; the daemon's tick loop moves them off
//! the async threads.

use std::time::Duration;

use watchdog_collectors::jobs::{JobsCollector, JobsConfig, Source};
use watchdog_collectors::proc::{ProcCollector, ProcConfig};
use watchdog_collectors::{CollectRequest, Collector, Observation};

use crate::config::{Config, ConfigError, PREFIX};
use crate::engine::{CollectorTick, Unix};
use crate::signals::jobs::{JobsMemory, JobsRules};
use crate::signals::{self, proc::ProcRules, Signal};
use crate::tls::SharedConfig;

/// Every collector watchdog knows, in the fixed order of reports.
pub const KNOWN: &[&str] = &["proc", "jobs"];

/// The enabled collectors.
pub struct Built {
    pub collectors: Vec<Box<dyn Collector>>,
}

/// Builds the enabled collectors; the jobs HTTP source gets the shared TLS config.
///
/// # Errors
/// A setting of an enabled collector that does not validate; no TLS config for the jobs HTTP
/// source (no root to trust at all), which names `WATCHDOG_CA_FILE`.
pub fn build(config: &Config, tls: &SharedConfig) -> Result<Built, ConfigError> {
    let mut built = Built {
        collectors: Vec::new(),
    };
    for &name in KNOWN {
        match name {
            "proc" if config.proc_enabled => {
                let (patterns, exclude) = config.proc_pattern_sets()?;
                built
                    .collectors
                    .push(Box::new(ProcCollector::new(ProcConfig::with_system_units(
                        config.proc_root.clone(),
                        patterns,
                        exclude,
                    ))));
            }
            "jobs" if config.jobs_enabled => {
                let source = if config.jobs_sqlite.is_empty() {
                    Source::Http {
                        url: config.jobs_url.clone(),
                        token: (!config.jobs_token.is_empty()).then(|| config.jobs_token.clone()),
                        timeout: Duration::from_secs(config.collect_timeout_s),
                        tls: tls.get().map_err(|e| ConfigError {
                            var: format!("{PREFIX}CA_FILE"),
                            value: None,
                            expected: format!("roots to trust for WATCHDOG_JOBS_URL ({e})"),
                        })?,
                    }
                } else {
                    Source::Sqlite {
                        path: config.jobs_sqlite.clone().into(),
                        query: config.jobs_query.clone(),
                    }
                };
                built
                    .collectors
                    .push(Box::new(JobsCollector::new(JobsConfig {
                        source,
                        root: config.proc_root.clone(),
                        pid_ns: config.jobs_pid_ns_patterns()?,
                        ticks_per_second: watchdog_collectors::proc::ticks_per_second(),
                    })));
            }
            _ => {}
        }
    }
    Ok(built)
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
pub fn collect_all(collectors: &[Box<dyn Collector>], request: &CollectRequest) -> Vec<Outcome> {
    KNOWN
        .iter()
        .map(|&name| Outcome {
            name,
            result: collectors
                .iter()
                .find(|c| c.name() == name)
                .map(|c| c.collect(request).map_err(|e| e.to_string())),
        })
        .collect()
}

/// What turning observations into signals needs beyond the observation.
pub struct Context<'a> {
    pub config: &'a Config,
    /// What the jobs builders remembered on the last tick.
    pub jobs_memory: &'a JobsMemory,
    pub now: Unix,
}

/// The signals of one observation, the entities to hold, and the jobs memory to keep.
pub struct Derived {
    pub signals: Vec<Signal>,
    pub held: Vec<String>,
    /// Entities to drop without a recovery.
    pub forget: Vec<String>,
    /// Set for a jobs observation.
    pub jobs_memory: Option<JobsMemory>,
}

/// Derives signals from one successful observation.
pub fn derive(observation: &Observation, ctx: &Context<'_>) -> Derived {
    let config = ctx.config;
    match observation {
        Observation::Proc(scan) => Derived {
            signals: signals::proc::build(
                scan,
                &ProcRules {
                    age_threshold_s: config.proc_age_threshold_s(),
                    group_by: config.proc_group_by,
                },
            ),
            forget: Vec::new(),
            held: scan
                .unreadable
                .iter()
                .map(|pid| format!("proc:{pid}"))
                .collect(),
            jobs_memory: None,
        },
        Observation::Jobs(scan) => {
            let built = signals::jobs::build(scan, ctx.jobs_memory, ctx.now, &jobs_rules(config));
            Derived {
                signals: built.signals,
                held: built.held,
                forget: built.forget,
                jobs_memory: Some(built.memory),
            }
        }
    }
}

/// The jobs builders' thresholds from the config.
pub fn jobs_rules(config: &Config) -> JobsRules {
    let on = |seconds: u64| (seconds > 0).then_some(seconds);
    JobsRules {
        running_states: config.jobs_running_state_list(),
        pid_slack_s: config.jobs_pid_slack_s,
        max_running_s: on(config.jobs_max_running_min.saturating_mul(60)),
        heartbeat_s: on(config.jobs_heartbeat_s),
        leftover_grace_s: config.jobs_leftover_grace_s,
        leftover_keep_s: config.jobs_leftover_keep_h.saturating_mul(3600),
    }
}

/// What the engine needs of one collector's result, and the jobs memory it leads to.
pub fn tick_of(
    result: &Result<Observation, String>,
    ctx: &Context<'_>,
) -> (CollectorTick, Option<JobsMemory>) {
    match result {
        Ok(observation) => {
            let derived = derive(observation, ctx);
            (
                CollectorTick::Ok {
                    signals: derived.signals,
                    unreadable: derived.held,
                    forget: derived.forget,
                },
                derived.jobs_memory,
            )
        }
        Err(error) => (
            CollectorTick::Failed {
                error: error.clone(),
            },
            None,
        ),
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
    }
}
