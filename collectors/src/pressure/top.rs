//! The pressure collector's top consumers: who used the most CPU between two samples.
//!
//! Owns per-process sampling, which runs only while some resource is at or above its
//! threshold: the root listing and every process's `stat`, twice, then the `cmdline` and
//! `cgroup` of the top consumers alone. A process is compared with its earlier self only (same
//! pid and start time). Sampling never fails the collection: when it cannot see,
//! [`Top::Failed`] says where and why, beside the pressure figures that were read.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::{PressureCollector, Sampling, REAPERS};
use crate::cgroup::{self, Container};
use crate::mask::mask_cmdline;
use crate::parse::{parse_stat, split_cmdline};
use crate::proc_root::{list_pids, read_small};
use crate::CollectError;

const PID_STAT_MAX_BYTES: usize = 4096;
/// Above `ARG_MAX` on any kernel; the masker cuts what it shows to 1024 characters anyway.
const CMDLINE_MAX_BYTES: usize = 8 << 20;

/// `ESRCH`: a /proc file whose process exited after it was opened.
const ESRCH: i32 = 3;

/// One of the processes that used the most CPU between two samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopProcess {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    /// Secrets masked, cut to 1024 characters; empty for a kernel thread or a process that
    /// ended before it was read.
    pub cmdline: String,
    /// CPU used between the two samples, in percent of one core (100 = one core busy), one
    /// decimal.
    pub cpu_pct: f64,
    /// Its parent is pid 1 or one of [`REAPERS`].
    pub orphaned: bool,
    /// Start time in clock ticks after boot: with the pid, it names this process uniquely.
    pub start_ticks: u64,
    /// `None` when its `cgroup` could not be read or names no shape that can be trusted.
    pub container: Option<Container>,
}

/// What per-process sampling gave this tick.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Top {
    /// `top` is 0: processes are never sampled.
    Off,
    /// Every resource is below its threshold: nothing was sampled.
    BelowThreshold,
    /// The first tick at or above a threshold in [`Sampling::Interval`]: there is no earlier
    /// sample to compare with yet. Not an error; the next tick names the consumers.
    Sampling,
    /// Two samples compared.
    Sampled {
        /// The measured time between the two samples, in seconds.
        interval_s: f64,
        /// At most `top`, most CPU first; processes that used none are left out.
        processes: Vec<TopProcess>,
        /// Processes listed that ended before their `stat` was read.
        vanished: u64,
        /// Processes whose `stat` was there but could not be read or parsed.
        unreadable: u64,
    },
    /// Sampling could not see the processes (the root cannot be listed, hides pid 1, or
    /// denies access); the pressure figures beside it still stand.
    Failed { path: PathBuf, reason: String },
}

impl Top {
    /// The consumers named, most CPU first; empty unless [`Top::Sampled`].
    pub fn processes(&self) -> &[TopProcess] {
        match self {
            Top::Sampled { processes, .. } => processes,
            _ => &[],
        }
    }
}

impl PressureCollector {
    pub(super) fn sample_top(&self, previous: Option<Sample>) -> Top {
        match self.config.sampling {
            Sampling::Wait(pause) => {
                let first = match self.take_sample() {
                    Ok(sample) => sample,
                    Err(failed) => return failed,
                };
                self.clock.sleep(pause);
                match self.take_sample() {
                    Ok(second) => self.top_between(&first, &second),
                    Err(failed) => failed,
                }
            }
            Sampling::Interval => {
                let current = match self.take_sample() {
                    Ok(sample) => sample,
                    Err(failed) => return failed,
                };
                let top = match &previous {
                    Some(previous) => self.top_between(previous, &current),
                    None => Top::Sampling,
                };
                *self.lock_previous() = Some(current);
                top
            }
        }
    }

    /// Every process's CPU time, start time, parent and comm.
    ///
    /// Its `Err` is the [`Top::Failed`] to report.
    fn take_sample(&self) -> Result<Sample, Top> {
        let root = &self.config.root;
        let at = self.clock.now();
        let pids = list_pids(root).map_err(|e| failed(root, e))?;
        if pids.binary_search(&1).is_err() {
            return Err(Top::Failed {
                path: root.clone(),
                reason: "pid 1 is not listed, so most processes are hidden (hidepid=2 without \
                         gid=, or not the host's pid namespace)"
                    .into(),
            });
        }
        let mut sample = Sample {
            at,
            processes: HashMap::with_capacity(pids.len()),
            unreadable: HashSet::new(),
            vanished: 0,
        };
        for pid in pids {
            let path = root.join(pid.to_string()).join("stat");
            match read_small(&path, PID_STAT_MAX_BYTES) {
                Ok(bytes) => match parse_stat(&bytes) {
                    // A stat that names another pid is not this process's.
                    Ok(stat) if stat.pid == pid as i32 => {
                        sample.processes.insert(
                            pid,
                            ProcSample {
                                ppid: stat.ppid.max(0) as u32,
                                start_ticks: stat.starttime,
                                cpu_ticks: stat.utime.saturating_add(stat.stime),
                                comm: stat.comm,
                            },
                        );
                    }
                    Ok(_) | Err(_) => {
                        sample.unreadable.insert(pid);
                    }
                },
                Err(e) if is_gone(&e) => sample.vanished += 1,
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    return Err(Top::Failed {
                        path,
                        reason: "permission denied (hidepid=1, or not allowed to read other \
                                 users' processes)"
                            .into(),
                    })
                }
                Err(_) => {
                    sample.unreadable.insert(pid);
                }
            }
        }
        Ok(sample)
    }

    fn top_between(&self, previous: &Sample, current: &Sample) -> Top {
        let interval = current.at.saturating_duration_since(previous.at);
        if interval.is_zero() {
            // No time passed: there is no rate to give. Wait for a later sample.
            return Top::Sampling;
        }
        let interval_s = interval.as_secs_f64();
        let ticks_per_second = self.config.ticks_per_second.max(1) as f64;
        let processes = rank(previous, current, self.config.top)
            .into_iter()
            .filter_map(|(pid, ticks)| {
                let process = current.processes.get(&pid)?;
                let cpu_pct = round1(ticks as f64 / ticks_per_second / interval_s * 100.0);
                Some(self.top_process(pid, process, cpu_pct, current))
            })
            .collect();
        Top::Sampled {
            interval_s,
            processes,
            vanished: current.vanished,
            unreadable: current.unreadable.len() as u64,
        }
    }

    /// Reads what is shown of a top consumer: its `cmdline` and `cgroup`, for these few only.
    fn top_process(
        &self,
        pid: u32,
        process: &ProcSample,
        cpu_pct: f64,
        sample: &Sample,
    ) -> TopProcess {
        let root = &self.config.root;
        let cmdline = read_small(
            &root.join(pid.to_string()).join("cmdline"),
            CMDLINE_MAX_BYTES,
        )
        .map(|raw| mask_cmdline(&split_cmdline(&raw)))
        .unwrap_or_default();
        let parent_is_reaper = sample
            .processes
            .get(&process.ppid)
            .is_some_and(|parent| REAPERS.contains(&parent.comm.as_str()));
        TopProcess {
            pid,
            ppid: process.ppid,
            comm: process.comm.clone(),
            cmdline,
            cpu_pct,
            orphaned: process.ppid == 1 || parent_is_reaper,
            start_ticks: process.start_ticks,
            container: cgroup::read(root, pid).ok().flatten(),
        }
    }
}

/// All processes' CPU counters at one moment.
#[derive(Debug, Clone)]
pub(super) struct Sample {
    /// Taken before the listing: a process missing from the listing started after it.
    at: Instant,
    processes: HashMap<u32, ProcSample>,
    /// Listed, there, but their `stat` could not be read: their counters are unknown.
    unreadable: HashSet<u32>,
    vanished: u64,
}

#[derive(Debug, Clone)]
struct ProcSample {
    ppid: u32,
    start_ticks: u64,
    cpu_ticks: u64,
    comm: String,
}

/// The `n` processes of `current` that used the most CPU since `previous`, as (pid, ticks),
/// most first, ties by pid; processes that used none are left out.
///
/// A process is compared with its earlier self only: a pid whose start time changed is a new
/// process, and a new process's whole CPU time was used after `previous` was taken (it was not
/// listed then). A pid unreadable in `previous` has no known starting point and is left out.
fn rank(previous: &Sample, current: &Sample, n: usize) -> Vec<(u32, u64)> {
    let mut used: Vec<(u32, u64)> = current
        .processes
        .iter()
        .filter_map(|(&pid, now)| {
            let before = match previous.processes.get(&pid) {
                Some(then) if then.start_ticks == now.start_ticks => then.cpu_ticks,
                Some(_) => 0,
                None if previous.unreadable.contains(&pid) => return None,
                None => 0,
            };
            let ticks = now.cpu_ticks.saturating_sub(before);
            (ticks > 0).then_some((pid, ticks))
        })
        .collect();
    used.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    used.truncate(n);
    used
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(ESRCH)
}

/// A listing that failed, as the [`Top::Failed`] that reports it.
fn failed(root: &Path, error: CollectError) -> Top {
    let (path, reason) = match error {
        CollectError::RootMissing { path } => (path, "not found".to_string()),
        CollectError::PermissionDenied { path } => (path, "permission denied".to_string()),
        CollectError::Io { path, source } => (path, source.to_string()),
        other => (root.to_path_buf(), other.to_string()),
    };
    Top::Failed { path, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: Instant, processes: &[(u32, u64, u64)]) -> Sample {
        Sample {
            at,
            processes: processes
                .iter()
                .map(|&(pid, start_ticks, cpu_ticks)| {
                    (
                        pid,
                        ProcSample {
                            ppid: 1,
                            start_ticks,
                            cpu_ticks,
                            comm: format!("p{pid}"),
                        },
                    )
                })
                .collect(),
            unreadable: HashSet::new(),
            vanished: 0,
        }
    }

    #[test]
    fn the_most_cpu_comes_first_and_ties_go_by_pid() {
        let t = Instant::now();
        let before = sample(t, &[(10, 5, 100), (11, 5, 100), (12, 5, 100), (13, 5, 100)]);
        let after = sample(t, &[(10, 5, 150), (11, 5, 300), (12, 5, 150), (13, 5, 100)]);
        assert_eq!(rank(&before, &after, 5), [(11, 200), (10, 50), (12, 50)]);
        assert_eq!(rank(&before, &after, 1), [(11, 200)]);
        assert!(rank(&before, &after, 0).is_empty());
    }

    #[test]
    fn a_reused_pid_is_counted_from_its_own_start() {
        let t = Instant::now();
        let before = sample(t, &[(10, 5, 5000)]);
        let after = sample(t, &[(10, 900, 30)]);
        assert_eq!(rank(&before, &after, 5), [(10, 30)], "not 30 - 5000");
    }

    #[test]
    fn a_new_pid_counts_whole_and_an_unreadable_one_not_at_all() {
        let t = Instant::now();
        let mut before = sample(t, &[]);
        before.unreadable.insert(11);
        let after = sample(t, &[(10, 5, 40), (11, 5, 9000)]);
        assert_eq!(rank(&before, &after, 5), [(10, 40)]);
    }

    #[test]
    fn counters_that_go_backwards_give_nothing_not_a_wrap() {
        let t = Instant::now();
        let before = sample(t, &[(10, 5, 500)]);
        let after = sample(t, &[(10, 5, 400)]);
        assert!(rank(&before, &after, 5).is_empty());
    }

    #[test]
    fn cpu_pct_keeps_one_decimal() {
        assert_eq!(round1(99.04), 99.0);
        assert_eq!(round1(99.05), 99.1);
        assert_eq!(round1(0.04), 0.0);
    }
}
