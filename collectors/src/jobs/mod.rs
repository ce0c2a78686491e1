//! The `jobs` collector: the orchestrator's job list, and the /proc facts of the same moment.
//!
//! Reads the job list from one source, read-only: an HTTP GET of a JSON document, or one short
//! query on a SQLite file. Then it reads, under the proc root, what the jobs need: the `stat` of
//! each job's pid; the `stat` of every process while a leftover watch is open or when job pids
//! are in another pid namespace; and then also the `cmdline` of every process (to find the
//! orchestrator's init) and the `status` of that init's descendants (for `NSpid:`), and the
//! `cgroup` of each job's own host pid (which container it runs in), of no other process. Never
//! `environ`. It knows nothing of signals: which job is hung is the root crate's to decide.
//!
//! A source that cannot be read, answers non-2xx, returns junk or no list, or lists a job with
//! no usable id fails the collection: nothing then tells which jobs are there. A job with an id
//! but another malformed field is *unreadable*: counted, reported by id, the rest used.
//!
//! This file holds the collector; `source` reads the list, `parse` turns it into [`Job`]s, and
//! `pidns` maps job pids from the orchestrator's pid namespace to host pids.

mod parse;
mod pidns;
mod source;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use crate::cgroup::{self, Container};
use crate::pattern::PatternSet;
use crate::proc_root::{list_pids_seeing_all, read_uptime, Reader, StatRead};
use crate::{CollectError, CollectRequest, Collector, Observation};

pub use parse::{parse_jobs, Job, Parsed};
pub use source::{Source, MAX_BODY};

/// What a job's pid points to, from its `stat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcBrief {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    pub session: u32,
    pub start_ticks: u64,
    /// Whole seconds since it started, from the tree's own `uptime`.
    pub age_s: u64,
    pub comm: String,
    /// Where it runs, from its `cgroup`: read for jobs' own pids only, `None` for the rest and
    /// when it cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
}

/// What one successful jobs collection saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobsScan {
    pub jobs: Vec<Job>,
    /// Ids of listed jobs with a malformed field, and why.
    pub unreadable: Vec<(String, String)>,
    /// A job pid (orchestrator's view) -> the host pid it is, for every pid that could be
    /// mapped. Without a namespace mapping, every live pid maps to itself.
    pub host_pids: BTreeMap<u32, u32>,
    /// The `stat` of the processes read, by host pid: the jobs' pids, or every process when
    /// `all_processes`.
    pub processes: BTreeMap<u32, ProcBrief>,
    pub all_processes: bool,
    pub uptime_s: f64,
}

/// What the jobs collector needs.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    pub source: Source,
    pub root: PathBuf,
    /// `WATCHDOG_JOBS_PID_NS` as a pattern for the orchestrator's init; `None` for `host`.
    pub pid_ns: Option<PatternSet>,
    pub ticks_per_second: u64,
}

/// Reads the job list and the /proc facts of its pids.
#[derive(Debug)]
pub struct JobsCollector {
    config: JobsConfig,
}

impl JobsCollector {
    pub fn new(config: JobsConfig) -> Self {
        Self { config }
    }

    /// Reads the job list and the /proc facts it needs: every process's `stat` when the
    /// request asks for all of them or job pids are in another pid namespace, else only the
    /// jobs' pids.
    ///
    /// # Errors
    /// The source cannot be read or answers junk; a job has no usable id; the proc root is
    /// missing, denied or blind; no init matches `WATCHDOG_JOBS_PID_NS`.
    pub fn scan(&self, request: &CollectRequest) -> Result<JobsScan, CollectError> {
        let source = &self.config.source;
        let (jobs, unreadable) = source
            .read()
            .and_then(|documents| parse_jobs(&documents))
            .map_err(|error| CollectError::Source {
                source_name: source.name(),
                error,
            })?;
        let root = &self.config.root;
        let pids = list_pids_seeing_all(root)?;
        let uptime_s = read_uptime(root)?;
        let all = self.config.pid_ns.is_some() || request.all_processes;
        let mut reader = Reader::new(root);
        let tps = self.config.ticks_per_second.max(1) as f64;
        let brief = |stat: procfs::process::Stat| {
            let age = (uptime_s - stat.starttime as f64 / tps).max(0.0).floor() as u64;
            ProcBrief {
                pid: stat.pid as u32,
                ppid: stat.ppid.max(0) as u32,
                pgid: stat.pgrp.max(0) as u32,
                session: stat.session.max(0) as u32,
                start_ticks: stat.starttime,
                age_s: age,
                comm: stat.comm,
                container: None,
            }
        };
        let mut processes = BTreeMap::new();
        // There but unreadable: not gone, so never a reason to call a job's agent dead.
        let mut unreadable_pids = BTreeSet::new();
        let wanted: Vec<u32> = if all {
            pids.clone()
        } else {
            let mut job_pids: Vec<u32> = jobs.iter().filter_map(|j| j.pid).collect();
            job_pids.sort_unstable();
            job_pids.dedup();
            job_pids
        };
        for pid in wanted {
            match reader.read_stat(pid)? {
                StatRead::Stat(stat) => {
                    processes.insert(pid, brief(*stat));
                }
                StatRead::Failed => {
                    unreadable_pids.insert(pid);
                }
                StatRead::Gone => {}
            }
        }
        let host_pids = match &self.config.pid_ns {
            None => jobs
                .iter()
                .filter_map(|j| j.pid)
                .filter(|pid| processes.contains_key(pid))
                .map(|pid| (pid, pid))
                .collect(),
            Some(init_pattern) => {
                pidns::map_namespace(&mut reader, init_pattern, &processes, root)?
            }
        };
        // The jobs' own processes only: `host_pids` also maps every other process of the
        // orchestrator's namespace.
        for host in jobs.iter().filter_map(|j| host_pids.get(&j.pid?)) {
            if let Some(process) = processes.get_mut(host) {
                if process.container.is_none() {
                    process.container = cgroup::read(root, *host).ok().flatten();
                }
            }
        }
        let (jobs, unknown): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|job| {
            let host = job
                .pid
                .map(|pid| host_pids.get(&pid).copied().unwrap_or(pid));
            !host.is_some_and(|h| unreadable_pids.contains(&h))
        });
        let mut unreadable = unreadable;
        unreadable.extend(unknown.into_iter().map(|job| {
            (
                job.id,
                "its process is there but its stat cannot be read".to_string(),
            )
        }));
        Ok(JobsScan {
            jobs,
            unreadable,
            host_pids,
            processes,
            all_processes: all,
            uptime_s,
        })
    }
}

impl Collector for JobsCollector {
    fn name(&self) -> &'static str {
        "jobs"
    }

    fn collect(&self, request: &CollectRequest) -> Result<Observation, CollectError> {
        self.scan(request).map(Observation::Jobs)
    }
}
