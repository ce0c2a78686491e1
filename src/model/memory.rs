//! What the signal builders remember between ticks, kept with the alert state.
//!
//! The jobs builders remember, per job, its host pid and start time, and its pgid and session
//! only where the job's pid leads them. The proc builder remembers, per process group, its
//! matching members, so a member that cannot be read next tick (and so has no known pgid) still
//! holds its group. The pressure builder remembers, per resource, since when it has been above
//! (or, while active, below) its threshold. decide() carries this memory
//! through and returns it in its outcome, so it is saved in the same write as the alert state it
//! explains; a collection that failed changes none of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ContainerFacts, Resource, Unix};

/// What the watchdog remembers of one job, in its own state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Remembered {
    pub name: Option<String>,
    pub pid: Option<u32>,
    pub host_pid: u32,
    pub start_ticks: u64,
    pub started_at: Unix,
    pub pgid: Option<u32>,
    pub session: Option<u32>,
    /// When it ended: its `ended_at`, or the first tick it was seen ended or gone from the list.
    pub ended_at: Option<Unix>,
    /// Where its process ran, so its leftovers can say so after it is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerFacts>,
}

/// Remembered jobs, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobsMemory {
    pub jobs: BTreeMap<String, Remembered>,
}

impl JobsMemory {
    /// Whether a leftover watch is open: then every process's `stat` must be read.
    pub fn has_open_watch(&self) -> bool {
        self.jobs
            .values()
            .any(|r| r.ended_at.is_some() && (r.pgid.is_some() || r.session.is_some()))
    }

    /// How many ended jobs are still watched for leftovers.
    pub fn open_watches(&self) -> usize {
        self.jobs.values().filter(|r| r.ended_at.is_some()).count()
    }
}

/// The matching members of each process group the proc builder saw (pgid grouping only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProcMemory {
    /// Member pids by pgid, sorted.
    pub groups: BTreeMap<u32, Vec<u32>>,
}

impl ProcMemory {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// What one collector's builders remember for the next tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Memory {
    Jobs(JobsMemory),
    Proc(ProcMemory),
    Pressure(PressureMemory),
}

/// What the pressure builder remembers of one resource.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PressureTrack {
    /// Whether its entity is active: it stays so until `some avg60` has been below the
    /// threshold for `WATCHDOG_PRESSURE_FOR_S`.
    pub active: bool,
    /// The first tick of the current run at or above the threshold.
    pub above_since: Option<Unix>,
    /// While active: the first tick of the current run below the threshold.
    pub below_since: Option<Unix>,
}

/// Remembered resources; a resource with no source on this host has no entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PressureMemory {
    pub resources: BTreeMap<Resource, PressureTrack>,
}
