//! Signals: what one tick concluded about each entity, before any alerting.
//!
//! Owns the signal types and the pure builders that turn a collector's observations into them
//! (one submodule per collector). Builders read nothing and keep nothing: the same observations
//! and thresholds always give the same signals.

pub mod jobs;
pub mod proc;

use serde::{Deserialize, Serialize};

/// What a signal is about. Each kind has its own cooldown and its own alert text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A matching process (or process group) has run past the age threshold.
    ProcBlocking,
    /// A running job whose agent is gone, reused, overdue or silent.
    AgentHung,
    /// An ended job whose processes live on.
    JobLeftover,
    /// The watchdog itself: a collector has failed tick after tick, so it cannot see.
    CollectorFailing,
    /// `watchdog test-alert`: proves a channel works; says nothing about the host.
    Test,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ProcBlocking => "proc_blocking",
            Kind::AgentHung => "agent_hung",
            Kind::JobLeftover => "job_leftover",
            Kind::CollectorFailing => "collector_failing",
            Kind::Test => "test",
        }
    }

    /// The collector whose observations produce this kind; `None` for the watchdog's own.
    pub fn collector(self) -> Option<&'static str> {
        match self {
            Kind::ProcBlocking => Some("proc"),
            Kind::AgentHung | Kind::JobLeftover => Some("jobs"),
            Kind::CollectorFailing | Kind::Test => None,
        }
    }
}

/// One entity's state this tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub kind: Kind,
    /// Stable across ticks for the same thing, different for a different thing (`proc:<pid>:<start ticks>`).
    pub entity: String,
    /// Whether the thing is wrong now.
    pub active: bool,
    pub facts: Facts,
}

/// What a signal knows about its entity, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Facts {
    Proc(proc::ProcFacts),
    Collector(CollectorFacts),
    Job(jobs::JobFacts),
    Test(TestFacts),
}

/// The facts of a test event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestFacts {
    /// What sent it.
    pub sent_by: String,
}

/// The facts of a `collector_failing` alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorFacts {
    pub collector: String,
    /// The last error.
    pub error: String,
    /// Consecutive failed ticks so far.
    pub failed_ticks: u32,
}

/// Sorts signals for display and output: by kind, active first, then by entity id.
pub fn sort(signals: &mut [Signal]) {
    signals.sort_by(|a, b| (a.kind, !a.active, &a.entity).cmp(&(b.kind, !b.active, &b.entity)));
}
