//! What the signal builders remember between ticks, kept with the alert state.
//!
//! The jobs builders remember, per job, its host pid and start time, and its pgid and session
//! only where the job's pid leads them. The proc builder remembers, per process group, its
//! matching members, so a member that cannot be read next tick (and so has no known pgid)
//! still holds its group. decide() carries this memory through and returns it in its outcome,
//! so it is saved in the same write as the alert state it explains.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Unix;

/// What the watchdog remembers of one job, in its own state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// Remembered jobs, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
}
