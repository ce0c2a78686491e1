//! The facts each kind of signal carries. Field names are a contract: operators' tooling reads
//! them in `once --json`, webhooks and `/status`.
//!
//! Policy that more than one text needs is decided once, by the signal builder, and kept here:
//! whether the process was adopted by a reaper, and which kill command is safe to suggest.
//!
//! `Facts` is untagged: each variant is told apart by the fields only it requires (`pid` and
//! `ppid`; `collector`; `job`; `resource` and `threshold_pct`; `sent_by`), so a state file or an
//! outbox read back gives every kind its own variant. The tests below hold it to that.

use serde::{Deserialize, Serialize};

use super::Unix;

/// What a signal knows about its entity, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Facts {
    Proc(ProcFacts),
    Collector(CollectorFacts),
    Job(JobFacts),
    Pressure(PressureFacts),
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
            Facts::Pressure(f) => Some(("resource", f.resource.as_str().to_string())),
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
    /// Where the oldest matching process runs, from its `cgroup`; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerFacts>,
}

/// Where a process runs, as its cgroup path says. Never asked of a container runtime: the
/// names are the kernel's, so an id is the runtime's full id and nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContainerFacts {
    /// `docker`, `podman`, `containerd`, `cri-o`, `kubernetes`, `systemd` or `none`.
    pub runtime: String,
    /// The container id, 64 hex characters.
    pub id: Option<String>,
    /// The Kubernetes pod uid, dashed; never set for a cgroup a user could have named.
    pub pod_uid: Option<String>,
    /// The systemd unit, for `systemd`.
    pub unit: Option<String>,
    /// Set when the cgroup lies in `user@<uid>.service`, whose names that user chose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootless_uid: Option<u32>,
}

/// How many characters of an id people read: `docker ps` prints the first 12.
const SHORT_ID_LEN: usize = 12;

impl ContainerFacts {
    /// The first 12 characters of the id, as `docker ps` prints it.
    pub fn short_id(&self) -> Option<&str> {
        self.id
            .as_deref()
            .map(|id| id.get(..SHORT_ID_LEN).unwrap_or(id))
    }

    /// The first 8 characters of the pod uid: enough to find it in `kubectl get pods -A -o
    /// wide`, short enough for a chat line.
    pub fn short_pod_uid(&self) -> Option<&str> {
        self.pod_uid
            .as_deref()
            .map(|uid| uid.get(..8).unwrap_or(uid))
    }
}

/// A resource the kernel reports pressure stalls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Cpu,
    Memory,
    Io,
}

impl Resource {
    /// Its name in entities (`pressure:cpu`), labels and facts.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::Io => "io",
        }
    }
}

/// Where a resource's figures came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PressureSource {
    /// The kernel's `pressure/<resource>`.
    Psi,
    /// cpu only, where PSI is absent: the load ÷ online CPUs × 100.
    Loadavg,
}

impl PressureSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PressureSource::Psi => "psi",
            PressureSource::Loadavg => "loadavg",
        }
    }
}

/// What per-process sampling gave on the tick the facts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TopStatus {
    /// `WATCHDOG_PRESSURE_TOP=0`: never sampled.
    Off,
    /// No resource was at or above its threshold: nothing was sampled.
    #[default]
    BelowThreshold,
    /// The first tick above a threshold in `run`: the first sample is taken, the rates come
    /// with the next tick.
    Sampling,
    /// Sampled: `top` names the consumers.
    Sampled,
    /// Sampling could not see the processes; the pressure figures still stand.
    Failed,
}

impl TopStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TopStatus::Off => "off",
            TopStatus::BelowThreshold => "below_threshold",
            TopStatus::Sampling => "sampling",
            TopStatus::Sampled => "sampled",
            TopStatus::Failed => "failed",
        }
    }
}

/// The facts of a `host_pressure` signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PressureFacts {
    pub resource: Resource,
    pub source: PressureSource,
    /// Percent; null from `loadavg`, which has no 10-second figure.
    pub some_avg10: Option<f64>,
    /// Percent; what the threshold is compared with. From `loadavg`, the 1-minute load per CPU.
    pub some_avg60: Option<f64>,
    /// Percent; from `loadavg`, the 5-minute load per CPU.
    pub some_avg300: Option<f64>,
    /// Percent; always null for cpu (the kernel reports zeros there since 5.18).
    pub full_avg60: Option<f64>,
    /// The threshold `some_avg60` is compared with (the load threshold for `loadavg`).
    pub threshold_pct: f64,
    /// Unix seconds: since when `some_avg60` has stayed at or above the threshold, as `run`
    /// remembers it; null in `once`, which has no history, and while below.
    pub above_since: Option<Unix>,
    /// The processes that used the most CPU over the last interval, most first.
    #[serde(default)]
    pub top: Vec<TopConsumer>,
    #[serde(default)]
    pub top_status: TopStatus,
    /// Why sampling failed, with `top_status` `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_error: Option<String>,
    /// The command that stops the top consumer, when it is a stuck match (the same command as
    /// its `proc_blocking` or `job_leftover` alert suggests).
    #[serde(default)]
    pub stop: Stop,
}

/// One of the top CPU consumers of a `host_pressure` signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopConsumer {
    pub pid: u32,
    pub comm: String,
    /// Secrets masked, cut to 1024 characters.
    pub cmdline: String,
    /// Percent of one core over the last interval (100 = one core busy).
    pub cpu_pct: f64,
    /// Its parent is pid 1 or a reaper.
    pub orphaned: bool,
    /// The `proc_blocking` or `job_leftover` entity it belongs to this tick, or null.
    pub entity: Option<String>,
    /// How long that entity has been stuck, when it is active: a `proc_blocking` entity's age,
    /// or how long ago a `job_leftover`'s job ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stuck_s: Option<u64>,
    /// Where it runs; null when its `cgroup` could not be read or named nothing trustworthy.
    pub container: Option<ContainerFacts>,
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
    /// Where the job's process runs (for a leftover: where it ran), from its `cgroup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerFacts>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> ContainerFacts {
        ContainerFacts {
            runtime: "docker".into(),
            id: Some("e70105bb87f6".repeat(5) + "abcd"),
            pod_uid: None,
            unit: None,
            rootless_uid: None,
        }
    }

    fn pressure() -> PressureFacts {
        PressureFacts {
            resource: Resource::Cpu,
            source: PressureSource::Psi,
            some_avg10: Some(84.1),
            some_avg60: Some(83.4),
            some_avg300: Some(61.0),
            full_avg60: None,
            threshold_pct: 50.0,
            above_since: Some(1_800_000_000),
            top: vec![TopConsumer {
                pid: 4121,
                comm: "pytest".into(),
                cmdline: "pytest -n 2 --token ***".into(),
                cpu_pct: 190.0,
                orphaned: true,
                entity: Some("proc:4121:1".into()),
                stuck_s: Some(184_980),
                container: Some(container()),
            }],
            top_status: TopStatus::Sampled,
            top_error: None,
            stop: Stop::Group(4121),
        }
    }

    fn variant(facts: &Facts) -> &'static str {
        match facts {
            Facts::Proc(_) => "proc",
            Facts::Collector(_) => "collector",
            Facts::Job(_) => "job",
            Facts::Pressure(_) => "pressure",
            Facts::Test(_) => "test",
        }
    }

    #[test]
    fn every_kind_of_facts_reads_back_as_its_own_variant() {
        let job = JobFacts {
            job: "j-7".into(),
            name: None,
            state: "ended".into(),
            pid: Some(42),
            host_pid: Some(320),
            age_s: 9000,
            reasons: Vec::new(),
            heartbeat_age_s: None,
            pid_comm: None,
            pgid: Some(320),
            session: None,
            members: vec![321],
            ended_s: Some(600),
            stop: Stop::Group(320),
            container: Some(container()),
        };
        let proc = ProcFacts {
            pid: 7,
            ppid: 1,
            pgid: 7,
            session: 7,
            state: 'S',
            comm: "pytest".into(),
            age_s: 7200,
            cmdline: "pytest".into(),
            orphaned: true,
            adopted: true,
            parent: Some("tini".into()),
            group_leader_alive: true,
            cpu_pct: 0.1,
            rss_bytes: 1,
            members: Some(vec![7]),
            group_cpu_pct: Some(0.1),
            group_rss_bytes: Some(1),
            stop: Stop::Group(7),
            container: Some(container()),
        };
        let mut calm = pressure();
        calm.top = Vec::new();
        calm.top_status = TopStatus::BelowThreshold;
        calm.above_since = None;
        calm.stop = Stop::None;
        let all = [
            Facts::Proc(proc),
            Facts::Collector(CollectorFacts {
                collector: "pressure".into(),
                error: "x".into(),
                failed_ticks: 3,
            }),
            Facts::Job(job),
            Facts::Pressure(pressure()),
            Facts::Pressure(calm),
            Facts::Test(TestFacts {
                sent_by: "watchdog test-alert".into(),
            }),
        ];
        for facts in all {
            let json = serde_json::to_string(&facts).unwrap();
            let back: Facts = serde_json::from_str(&json).unwrap();
            assert_eq!(variant(&back), variant(&facts), "{json}");
            assert_eq!(back, facts, "{json}");
        }
    }

    #[test]
    fn pressure_facts_carry_their_contract_fields_with_nulls_where_absent() {
        let json = serde_json::to_value(Facts::Pressure(pressure())).unwrap();
        for field in [
            "resource",
            "source",
            "some_avg10",
            "some_avg60",
            "some_avg300",
            "full_avg60",
            "above_since",
            "top",
        ] {
            assert!(json.get(field).is_some(), "{field} missing: {json}");
        }
        assert_eq!(json["resource"], "cpu");
        assert_eq!(json["source"], "psi");
        assert_eq!(json["full_avg60"], serde_json::Value::Null);
        let top = &json["top"][0];
        for field in [
            "pid",
            "comm",
            "cmdline",
            "cpu_pct",
            "orphaned",
            "entity",
            "container",
        ] {
            assert!(top.get(field).is_some(), "top.{field} missing: {top}");
        }
        assert_eq!(top["container"]["runtime"], "docker");
        assert_eq!(top["container"]["pod_uid"], serde_json::Value::Null);
    }

    #[test]
    fn proc_facts_without_a_container_leave_the_field_out() {
        let json = r#"{"pid": 7, "ppid": 1, "pgid": 7, "session": 7, "state": "S", "comm": "p",
            "age_s": 1, "cmdline": "p", "orphaned": false, "parent": null,
            "group_leader_alive": true, "cpu_pct": 0.0, "rss_bytes": 0}"#;
        let facts: Facts = serde_json::from_str(json).unwrap();
        let Facts::Proc(proc) = &facts else {
            panic!("{facts:?}")
        };
        assert_eq!(proc.container, None);
        let out = serde_json::to_value(&facts).unwrap();
        assert!(out.get("container").is_none(), "{out}");
    }
}
