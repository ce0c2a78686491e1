//! Collector scheduling: every enabled collector on a blocking thread, within one deadline.
//!
//! Owns the in-flight runs. A collector that overruns the limit counts as failed for that tick
//! and keeps its thread (a read stuck on a hung process cannot be cancelled); it is not started
//! again while that thread is busy, so nothing piles up, and the next tick waits on the same
//! run. It decides nothing about what a result means.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use watchdog_collectors::{CollectError, CollectRequest, Collector, Observation};

use crate::collect::{Outcome, KNOWN};
use crate::model::CollectFailure;

/// A collection running on a blocking thread.
struct InFlight {
    started: Instant,
    handle: JoinHandle<Result<Observation, CollectError>>,
}

/// The enabled collectors and their runs in flight.
pub struct Scheduler {
    collectors: Vec<Arc<dyn Collector>>,
    limit: Duration,
    in_flight: HashMap<&'static str, InFlight>,
}

impl Scheduler {
    pub fn new(collectors: Vec<Arc<dyn Collector>>, limit: Duration) -> Self {
        Self {
            collectors,
            limit,
            in_flight: HashMap::new(),
        }
    }

    /// The names of the enabled collectors, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.collectors.iter().map(|c| c.name()).collect()
    }

    /// Runs every collector, all within one deadline. A collector whose earlier run is still
    /// going is not started again: this tick waits on that same run. Returns each enabled
    /// collector's outcome and how long this tick waited for it.
    pub async fn collect(&mut self, request: &CollectRequest) -> Vec<(Outcome, Duration)> {
        let started = Instant::now();
        let deadline = started.checked_add(self.limit).unwrap_or(started);
        for collector in &self.collectors {
            let name = collector.name();
            if !self.in_flight.contains_key(name) {
                let collector = Arc::clone(collector);
                let request = request.clone();
                let handle = tokio::task::spawn_blocking(move || collector.collect(&request));
                let started = Instant::now();
                self.in_flight.insert(name, InFlight { started, handle });
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
                    // Its thread stays busy; the next tick waits on it rather than start another.
                    let failure = CollectFailure::TimedOut {
                        running_s: run.started.elapsed().as_secs(),
                        limit_s: self.limit.as_secs(),
                    };
                    let outcome = Outcome {
                        name,
                        result: Some(Err(failure)),
                    };
                    outcomes.push((outcome, started.elapsed()));
                    continue;
                }
                Ok(Err(join)) => Err(CollectFailure::Panicked(join.to_string())),
                Ok(Ok(result)) => result.map_err(CollectFailure::from),
            };
            self.in_flight.remove(name);
            let outcome = Outcome {
                name,
                result: Some(result),
            };
            outcomes.push((outcome, started.elapsed()));
        }
        outcomes
    }
}

/// Every known collector in the fixed order, as `once` shows them: the switched-off ones too.
pub fn all_known(outcomes: &[(Outcome, Duration)]) -> Vec<Outcome> {
    KNOWN
        .iter()
        .map(|&name| {
            outcomes
                .iter()
                .find(|(o, _)| o.name == name)
                .map_or(Outcome { name, result: None }, |(o, _)| o.clone())
        })
        .collect()
}
