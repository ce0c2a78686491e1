//! The facts each kind of signal carries. Field names are a contract: operators' tooling reads
//! them in `once --json`, webhooks and `/status`.
//!
//! Policy that more than one text needs is decided once, by the signal builder, and kept here:
//! whether the process was adopted by a reaper, and which kill command is safe to suggest.

use serde::{Deserialize, Serialize};

/// What a signal knows about its entity, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Facts {
    Proc(ProcFacts),
    Collector(CollectorFacts),
    Job(JobFacts),
    Test(TestFacts),
}

impl Facts {
    /// The label that names the thing inside its kind, for label-based sinks (Alertmanager):
    /// stable for the entity's whole life, so a changing fact never splits one alert into two.
    pub fn identity_label(&self) -> Option<(&'static str, String)> {
        match self {
            Facts::Proc(f) => Some(("pid", f.pid.to_string())),
            Facts::Collector(f) => Some(("collector", f.collector.clone())),
            Facts::Job(f) => Some(("job", f.job.clone())),
            Facts::Test(_) => None,
        }
    }
}

/// Which command stops the stuck work without taking down what started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The whole process group is the stuck work's own: `kill -- -<pgid>`.
    Group(u32),
    /// The group is shared with what started it: name these pids instead.
    Pids(Vec<u32>),
    /// Nothing to stop.
    #[default]
    None,
}

impl Stop {
    /// The SIGTERM and SIGKILL commands, or `None` when there is nothing to stop.
    pub fn commands(&self) -> Option<(String, String)> {
        match self {
            Stop::Group(pgid) => Some((
                format!("kill -TERM -- -{pgid}"),
                format!("kill -KILL -- -{pgid}"),
            )),
            Stop::Pids(pids) if !pids.is_empty() => {
                let pids = pids
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(" ");
                Some((format!("kill -TERM {pids}"), format!("kill -KILL {pids}")))
            }
            Stop::Pids(_) | Stop::None => None,
        }
    }
}

/// The facts of a `proc_blocking` signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcFacts {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    pub session: u32,
    pub state: char,
    pub comm: String,
    pub age_s: u64,
    pub cmdline: String,
    /// Its parent is pid 1 or a reaper, or its process group's leader is gone.
    pub orphaned: bool,
    /// Its parent is pid 1 or a reaper: it was adopted, and nothing waits for it.
    #[serde(default)]
    pub adopted: bool,
    /// The parent's comm, when it could be read.
    pub parent: Option<String>,
    /// Whether a process whose pid is `pgid` is alive (always true for pgid 0: no group).
    pub group_leader_alive: bool,
    /// Lifetime average CPU use in percent of one core (100 = one full core), one decimal.
    pub cpu_pct: f64,
    pub rss_bytes: u64,
    /// With pgid grouping: the pids of every matching process of the group, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<u32>>,
    /// With pgid grouping: the members' summed `cpu_pct`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_cpu_pct: Option<f64>,
    /// With pgid grouping: the members' summed `rss_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_rss_bytes: Option<u64>,
    /// The command that stops it safely.
    #[serde(default)]
    pub stop: Stop,
}

/// Why a job looks hung.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HungReason {
    /// Its pid is not alive.
    PidGone,
    /// Its pid belongs to a process that started after the job did (plus the slack).
    PidReused,
    /// It has run past `WATCHDOG_JOBS_MAX_RUNNING_MIN`.
    RunningTooLong,
    /// Its heartbeat is older than `WATCHDOG_JOBS_HEARTBEAT_S`.
    HeartbeatStale,
}

/// The facts of `agent_hung` and `job_leftover` signals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFacts {
    pub job: String,
    pub name: Option<String>,
    pub state: String,
    /// The job's pid as the orchestrator gave it.
    pub pid: Option<u32>,
    /// The same process on the host, when it could be found.
    pub host_pid: Option<u32>,
    /// Seconds since the job started.
    pub age_s: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<HungReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_age_s: Option<u64>,
    /// What the pid now is, when it was reused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_comm: Option<String>,
    /// The job's own process group and session, where its pid led them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u32>,
    /// Processes of that group or session still alive after the job ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<u32>,
    /// Seconds since the job ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_s: Option<u64>,
    /// The command that stops what is left of it safely.
    #[serde(default)]
    pub stop: Stop,
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
