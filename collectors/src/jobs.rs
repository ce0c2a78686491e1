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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::cgroup::{self, Container};
use crate::pattern::PatternSet;
use crate::proc::{list_pids, read_uptime, split_cmdline, Reader, StatRead};
use crate::{CollectError, Collector, Observation};

/// The largest job list read, in bytes.
pub const MAX_BODY: u64 = 16 << 20;

/// One job as the orchestrator lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    /// `7` and `"7"` are the same job.
    pub id: String,
    pub name: Option<String>,
    /// In the orchestrator's pid namespace (see `WATCHDOG_JOBS_PID_NS`).
    pub pid: Option<u32>,
    /// `state` or `status`, as given.
    pub state: String,
    /// Unix seconds.
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub heartbeat_at: Option<i64>,
}

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

/// Where the job list comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Http {
        url: String,
        token: Option<String>,
        timeout: Duration,
        /// Extra PEM roots (`WATCHDOG_CA_FILE`).
        ca_pem: Option<Vec<u8>>,
    },
    Sqlite {
        path: PathBuf,
        query: String,
    },
}

impl Source {
    /// How errors name the source: never the URL's path, query or credentials.
    pub fn describe(&self) -> String {
        match self {
            Source::Http { url, .. } => {
                let origin = url
                    .split_once("://")
                    .map(|(scheme, rest)| {
                        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
                        let host = host.rsplit('@').next().unwrap_or_default();
                        format!("{scheme}://{host}")
                    })
                    .unwrap_or_else(|| "the jobs URL".into());
                format!("job list {origin}")
            }
            Source::Sqlite { path, .. } => format!("job database {}", path.display()),
        }
    }
}

/// What the jobs collector needs.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    pub source: Source,
    pub root: PathBuf,
    /// `WATCHDOG_JOBS_PID_NS` as a pattern for the orchestrator's init; `None` for `host`.
    pub pid_ns: Option<PatternSet>,
    pub ticks_per_second: u64,
    /// Set by the daemon while a leftover watch is open: then every process's `stat` is read.
    pub read_all: Arc<AtomicBool>,
}

pub struct JobsCollector {
    config: JobsConfig,
}

impl JobsCollector {
    pub fn new(config: JobsConfig) -> Self {
        Self { config }
    }

    /// Reads the job list and the /proc facts it needs.
    ///
    /// # Errors
    /// The source cannot be read or answers junk; a job has no usable id; the proc root is
    /// missing, denied or blind; no init matches `WATCHDOG_JOBS_PID_NS`.
    pub fn scan(&self) -> Result<JobsScan, CollectError> {
        let source = &self.config.source;
        let documents = read_source(source)?;
        let (jobs, unreadable) = parse_jobs(&documents).map_err(|reason| CollectError::Source {
            source_name: source.describe(),
            reason,
        })?;
        let root = &self.config.root;
        let pids = list_pids(root)?;
        if pids.binary_search(&1).is_err() {
            return Err(CollectError::Blind { root: root.clone() });
        }
        let uptime_s = read_uptime(root)?;
        let all = self.config.pid_ns.is_some() || self.config.read_all.load(Ordering::Relaxed);
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
        let mut unreadable_pids = std::collections::BTreeSet::new();
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
            Some(init_pattern) => map_namespace(&mut reader, init_pattern, &processes, root)?,
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

    fn collect(&self) -> Result<Observation, CollectError> {
        self.scan().map(Observation::Jobs)
    }
}

/// Maps the innermost pids of the descendants of the orchestrator's init to host pids: the
/// last value of their `NSpid:`. Descent from the init is the test, since `status` names no
/// namespace and `/proc/<pid>/ns/` needs privileges; so a process entered with `docker exec`
/// (not a descendant) is not mapped.
fn map_namespace(
    reader: &mut Reader<'_>,
    init_pattern: &PatternSet,
    processes: &BTreeMap<u32, ProcBrief>,
    root: &Path,
) -> Result<BTreeMap<u32, u32>, CollectError> {
    let mut inits = Vec::new();
    for &pid in processes.keys() {
        if let Some(raw) = reader.file(pid, "cmdline")? {
            let argv = split_cmdline(&raw);
            if !argv.is_empty() && init_pattern.is_match(&argv.join(" ")) {
                inits.push(pid);
            }
        }
    }
    if inits.is_empty() {
        return Err(CollectError::Source {
            source_name: format!("pid namespace under {}", root.display()),
            reason: "no process matches WATCHDOG_JOBS_PID_NS: the orchestrator's init is not found"
                .into(),
        });
    }
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for p in processes.values() {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut mapped = BTreeMap::new();
    let mut stack = inits;
    while let Some(pid) = stack.pop() {
        if let Some(raw) = reader.file(pid, "status")? {
            let status = String::from_utf8_lossy(&raw);
            if let Some(inner) = innermost_pid(&status) {
                mapped.insert(inner, pid);
            }
        }
        stack.extend(children.get(&pid).into_iter().flatten().copied());
    }
    Ok(mapped)
}

/// The last value of a `status` file's `NSpid:` line: the pid in its innermost namespace.
pub fn innermost_pid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// The job documents of the source: one JSON value (HTTP), or one object per row (SQLite).
fn read_source(source: &Source) -> Result<Vec<Value>, CollectError> {
    let fail = |reason: String| CollectError::Source {
        source_name: source.describe(),
        reason,
    };
    match source {
        Source::Http {
            url,
            token,
            timeout,
            ca_pem,
        } => {
            let mut config = ureq::Agent::config_builder()
                .timeout_global(Some(*timeout))
                .http_status_as_error(false);
            if let Some(pem) = ca_pem {
                let certs: Vec<_> = ureq::tls::parse_pem(pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                        _ => None,
                    })
                    .collect();
                config = config.tls_config(
                    ureq::tls::TlsConfig::builder()
                        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                        .build(),
                );
            }
            let agent: ureq::Agent = config.build().into();
            let mut request = agent.get(url.as_str());
            if let Some(token) = token {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            let mut response = request.call().map_err(|e| fail(transport_reason(&e)))?;
            let status = response.status().as_u16();
            if !(200..300).contains(&status) {
                return Err(fail(format!("answered HTTP {status}")));
            }
            let body = response
                .body_mut()
                .with_config()
                .limit(MAX_BODY)
                .read_to_vec()
                .map_err(|e| fail(format!("cannot read the answer: {}", transport_reason(&e))))?;
            let value = serde_json::from_slice(&body)
                .map_err(|e| fail(format!("answered something that is not JSON ({e})")))?;
            Ok(vec![value])
        }
        Source::Sqlite { path, query } => read_sqlite(path, query).map_err(fail),
    }
}

/// A transport error without the URL (which may hold a token in its query).
fn transport_reason(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::Io(e) => format!("could not connect ({})", e.kind()),
        ureq::Error::ConnectionFailed => "could not connect".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::BodyExceedsLimit(limit) => format!("the answer is larger than {limit} bytes"),
        other => format!(
            "request failed ({})",
            other.to_string().split(" for url").next().unwrap_or("")
        ),
    }
}

/// One short read-only query. In WAL mode a reader never blocks the orchestrator's writers;
/// in rollback-journal mode it holds its shared lock only while the query runs.
fn read_sqlite(path: &Path, query: &str) -> Result<Vec<Value>, String> {
    use rusqlite::types::ValueRef;
    use rusqlite::{Connection, OpenFlags};
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open it read-only: {e}"))?;
    connection
        .busy_timeout(Duration::from_millis(500))
        .map_err(|e| e.to_string())?;
    let mut statement = connection
        .prepare(query)
        .map_err(|e| format!("the query fails: {e}"))?;
    let names: Vec<String> = statement
        .column_names()
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    let mut rows = statement
        .query([])
        .map_err(|e| format!("the query fails: {e}"))?;
    let mut documents = Vec::new();
    while let Some(row) = rows.next().map_err(|e| format!("the query fails: {e}"))? {
        let mut object = serde_json::Map::new();
        for (i, name) in names.iter().enumerate() {
            let value = match row.get_ref(i).map_err(|e| e.to_string())? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::from(n),
                ValueRef::Real(x) => Value::from(x),
                ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(_) => Value::String("<blob>".into()),
            };
            object.insert(name.clone(), value);
        }
        documents.push(Value::Object(object));
    }
    Ok(vec![Value::Array(documents)])
}

/// The jobs of a list, and the ids of those with a malformed field with why.
pub type Parsed = (Vec<Job>, Vec<(String, String)>);

/// Parses job documents: each a JSON array of jobs, or an object with a `jobs` array.
///
/// # Errors
/// A document that holds no list, or a job without a usable `id`: the whole collection fails.
pub fn parse_jobs(documents: &[Value]) -> Result<Parsed, String> {
    let mut jobs = Vec::new();
    let mut unreadable = Vec::new();
    for document in documents {
        let list = match document {
            Value::Array(list) => list,
            Value::Object(object) => match object.get("jobs") {
                Some(Value::Array(list)) => list,
                _ => return Err(
                    "the answer holds no job list (an array, or an object with a \"jobs\" array)"
                        .into(),
                ),
            },
            _ => {
                return Err(
                    "the answer holds no job list (an array, or an object with a \"jobs\" array)"
                        .into(),
                )
            }
        };
        for (index, item) in list.iter().enumerate() {
            let id = job_id(item).ok_or_else(|| format!("job #{index} has no usable id"))?;
            match parse_job(&id, item) {
                Ok(job) => jobs.push(job),
                Err(reason) => unreadable.push((id, reason)),
            }
        }
    }
    Ok((jobs, unreadable))
}

/// A string or a whole number; `7` and `"7"` are the same id.
fn job_id(item: &Value) -> Option<String> {
    match item.get("id")? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => n
            .as_u64()
            .map(|n| n.to_string())
            .or_else(|| n.as_i64().map(|n| n.to_string())),
        _ => None,
    }
}

fn parse_job(id: &str, item: &Value) -> Result<Job, String> {
    let pid = match item.get("pid") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("pid {value} is not a process id"))?,
        ),
    };
    let state = match item.get("state").or_else(|| item.get("status")) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(format!("state {other} is not text")),
        None => return Err("has no state or status".into()),
    };
    let started_at = time_field(item, "started_at")?.ok_or("has no started_at")?;
    let name = match item.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("name {other} is not text")),
    };
    Ok(Job {
        id: id.to_string(),
        name,
        pid,
        state,
        started_at,
        ended_at: time_field(item, "ended_at")?,
        heartbeat_at: time_field(item, "heartbeat_at")?,
    })
}

/// A time: RFC 3339 text or Unix seconds; absent or null is `None`.
fn time_field(item: &Value, field: &str) -> Result<Option<i64>, String> {
    match item.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|x| x.is_finite() && *x >= 0.0 && *x < 1e12)
            .map(|x| Some(x as i64))
            .ok_or_else(|| format!("{field} {n} is not a time")),
        Some(Value::String(s)) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(|t| Some(t.unix_timestamp()))
                .map_err(|_| format!("{field} {s:?} is not an RFC 3339 time"))
        }
        Some(other) => Err(format!("{field} {other} is not a time")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nspid_gives_the_innermost_pid() {
        assert_eq!(innermost_pid("Name:\tx\nNSpid:\t510\t7\n"), Some(7));
        assert_eq!(innermost_pid("NSpid:\t510\n"), Some(510));
        assert_eq!(innermost_pid("Name:\tx\n"), None);
    }

    #[test]
    fn describe_never_shows_a_path_query_or_credentials() {
        let source = Source::Http {
            url: "https://u:pw@jobs.example:8443/api/jobs?token=t0k".into(),
            token: None,
            timeout: Duration::from_secs(1),
            ca_pem: None,
        };
        assert_eq!(source.describe(), "job list https://jobs.example:8443");
    }

    #[test]
    fn jobs_parse_from_both_shapes_with_ids_of_either_type() {
        let list = json!([
            {"id": 7, "pid": 42, "state": "running", "started_at": "2026-11-28T08:00:00Z", "extra": 1},
            {"id": "7b", "pid": null, "status": "queued", "started_at": 1795000000, "name": "lint"}
        ]);
        let (jobs, unreadable) = parse_jobs(&[list]).unwrap();
        assert!(unreadable.is_empty());
        assert_eq!(jobs[0].id, "7");
        assert_eq!(jobs[0].pid, Some(42));
        assert_eq!(jobs[0].started_at, 1_795_852_800);
        assert_eq!(
            (jobs[1].pid, jobs[1].state.as_str(), jobs[1].name.as_deref()),
            (None, "queued", Some("lint"))
        );
        let object = json!({"jobs": [{"id": "7", "state": "running", "started_at": 1}]});
        assert_eq!(parse_jobs(&[object]).unwrap().0[0].id, "7");
    }

    #[test]
    fn a_job_without_a_usable_id_fails_the_whole_list() {
        for bad in [
            json!([{"pid": 1, "state": "running", "started_at": 1}]),
            json!([{"id": "", "state": "running", "started_at": 1}]),
            json!([{"id": 1.5, "state": "running", "started_at": 1}]),
            json!([{"id": [1], "state": "running", "started_at": 1}]),
            json!({"items": []}),
            json!("jobs"),
            json!(42),
        ] {
            assert!(parse_jobs(std::slice::from_ref(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_job_with_a_malformed_field_is_unreadable_and_the_rest_are_used() {
        let cases = [
            json!({"id": 1, "pid": -4, "state": "running", "started_at": 1}),
            json!({"id": 1, "pid": "42", "state": "running", "started_at": 1}),
            json!({"id": 1, "state": 3, "started_at": 1}),
            json!({"id": 1, "started_at": 1}),
            json!({"id": 1, "state": "running"}),
            json!({"id": 1, "state": "running", "started_at": "yesterday"}),
            json!({"id": 1, "state": "running", "started_at": 1, "ended_at": true}),
            json!({"id": 1, "state": "running", "started_at": 1, "heartbeat_at": "soon"}),
            json!({"id": 1, "state": "running", "started_at": 1, "name": 5}),
        ];
        for case in cases {
            let list = json!([case.clone(), {"id": 2, "state": "running", "started_at": 1}]);
            let (jobs, unreadable) = parse_jobs(&[list]).unwrap();
            assert_eq!(unreadable.len(), 1, "{case}");
            assert_eq!(unreadable[0].0, "1", "{case}");
            assert_eq!(jobs.len(), 1, "{case}: the other job is used");
        }
    }
}
