//! The `proc` collector: matching processes in a /proc tree, with their age and cost.
//!
//! Reads, under the root it is given and through [`crate::proc_root`]: the root listing (pids
//! and their inode numbers; on procfs only when the kernel's count of created tasks, `processes`
//! in the root's `stat`, moved since the last listing, or once per `rescan_ticks` ticks),
//! `uptime`, `self` (a link, to skip the watchdog itself), the presence of `1` (one `lstat`, while
//! a kept listing stands) and of a group leader such a listing still shows, `<pid>/cmdline` of
//! every process it does not know yet, `<pid>/stat` only of processes whose command line matches,
//! of their parents and of processes whose command line is empty (a kernel thread, a zombie, or a
//! zombie leader whose threads run, whose command line it reads through one of them from
//! `<pid>/task/<tid>/cmdline`), and `<pid>/cgroup` once of each new match whose container is
//! shown (which container it runs in: every match's, or with [`Containers::OldestOfEachGroup`]
//! only the oldest's of each process group). Opening a /proc file is the whole cost of a scan,
//! so it opens nothing else: never `environ`, never `status`. On procfs it remembers, per process instance, what it
//! read (see [`crate::proc_cache`]) and re-reads each one's `cmdline` once per `rescan_ticks`
//! ticks, spread over them; it keeps up to `keep_open` matches' `stat` open and reads them again
//! with `pread`. On any other tree every scan reads every `cmdline`.
//!
//! A process that disappears between the listing and the read is *vanished*: skipped and
//! counted. A process that is there but whose files are truncated or malformed is *unreadable*:
//! counted and reported by pid, so the engine holds its alerts. A root that is missing, denies
//! access, or does not list pid 1 fails the whole collection.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use procfs::process::Stat;
use serde::Serialize;

use crate::cgroup::{self, Container};
use crate::mask::mask_cmdline;
use crate::pattern::PatternSet;
use crate::proc_cache::{cacheable, Identities, Lookup, Matched, Pass, DEFAULT_RESCAN_TICKS};
use crate::proc_root::{
    exists, is_procfs, list_entries_seeing_all, own_pid, read_uptime, tasks_created, FileRead,
    PidEntry, Reader, StatRead,
};
use crate::{CollectError, CollectRequest, Collector, Observation};

// Kept here for the root crate, the benches and the fuzz targets, which name them this way.
pub use crate::parse::{parse_stat, split_cmdline};
pub use crate::proc_root::ticks_per_second;

/// `PF_KTHREAD` in the flags field of `stat`: a kernel thread.
const PF_KTHREAD: u32 = 0x0020_0000;

/// What the proc collector needs; everything comes through here, nothing from globals.
#[derive(Debug, Clone)]
pub struct ProcConfig {
    /// The /proc tree to scan: `/proc` on a host, a fixture directory in tests.
    pub root: PathBuf,
    /// A process matches when its joined command line matches one of these...
    pub patterns: PatternSet,
    /// ...and none of these.
    pub exclude: PatternSet,
    /// The kernel's clock ticks per second (`CLK_TCK`), the unit of `starttime` and cpu times.
    pub ticks_per_second: u64,
    /// The page size in bytes, the unit of `rss`.
    pub page_size: u64,
    /// Every remembered process's `cmdline` is read again once per this many ticks (1: every
    /// tick, nothing remembered between them), which is how a process that `exec`s into a match
    /// is caught: its pid and inode stay, only its command line changes.
    pub rescan_ticks: u32,
    /// Whose `cgroup` is read: every match's, or only the oldest match's of each process
    /// group, when only that one's container is ever shown (grouping by pgid).
    pub containers: Containers,
    /// At most this many matches keep their `stat` open between ticks, to be read again with
    /// `pread` instead of being opened by path each tick (0: each tick opens every one). Each
    /// costs a descriptor and a page of kernel memory; see [`crate::proc_cache`].
    pub keep_open: usize,
}

/// Which matches have their container read (their `cgroup` opened once per process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Containers {
    #[default]
    EveryMatch,
    /// The oldest match (by start time, then pid) of each process group.
    OldestOfEachGroup,
}

impl ProcConfig {
    /// A configuration with this machine's clock tick and page size.
    pub fn with_system_units(root: PathBuf, patterns: PatternSet, exclude: PatternSet) -> Self {
        Self {
            root,
            patterns,
            exclude,
            ticks_per_second: ticks_per_second(),
            page_size: procfs::page_size(),
            rescan_ticks: DEFAULT_RESCAN_TICKS,
            containers: Containers::EveryMatch,
            keep_open: 0,
        }
    }
}

/// One matching process as read from its `cmdline` and `stat`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    pub session: u32,
    pub state: char,
    /// Start time in clock ticks after boot: with the pid, it names this process uniquely.
    pub start_ticks: u64,
    /// Whole seconds since it started, from the tree's own `uptime`.
    pub age_s: u64,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
    pub comm: String,
    /// The command line joined with spaces, secrets masked, cut to 1024 characters.
    pub cmdline: String,
    /// The parent's `comm`, when the parent could be read.
    pub parent_comm: Option<String>,
    /// Whether a process whose pid is this process's pgid is alive.
    pub group_leader_alive: bool,
    /// Where it runs, from its `cgroup`; `None` when that could not be read or named no shape
    /// that can be trusted. A missing attribution never drops the process.
    pub container: Option<Container>,
}

/// The result of one successful scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProcScan {
    /// The tree's `uptime`, in seconds.
    pub uptime_s: f64,
    pub ticks_per_second: u64,
    /// Matching processes, ordered by pid.
    pub processes: Vec<ProcessInfo>,
    /// Processes that disappeared between the listing and the read.
    pub vanished: u64,
    /// Processes that are there but could not be read, by pid.
    pub unreadable: Vec<u32>,
}

/// Scans a /proc tree for processes whose command line matches the configured patterns.
///
/// One collector lives across the ticks of `run` and remembers the processes it has read (see
/// [`crate::proc_cache`]); a new one (as `once` builds) starts from a full scan.
#[derive(Debug)]
pub struct ProcCollector {
    config: ProcConfig,
    identities: Mutex<Identities>,
    /// Remember processes even off procfs: see [`ProcCollector::trusting_inodes`].
    trust_inodes: bool,
}

/// A match as one tick read it: its stat, its masked command line, its container if read.
type Found = (Stat, String, Option<Option<Container>>);

impl ProcCollector {
    pub fn new(config: ProcConfig) -> Self {
        let identities = Mutex::new(Identities::new(config.rescan_ticks, config.keep_open));
        Self {
            config,
            identities,
            trust_inodes: false,
        }
    }

    /// For the bench's synthetic trees alone: remember processes as on procfs although the root
    /// is not, on the caller's word that nothing ever replaces a pid directory in it (a tree on
    /// tmpfs or ext4 hands a freed inode number to the next directory, and a replaced one would
    /// be served from the cache). Nothing in watchdog itself calls it.
    #[doc(hidden)]
    pub fn trusting_inodes(mut self) -> Self {
        self.trust_inodes = true;
        self
    }

    pub fn root(&self) -> &Path {
        &self.config.root
    }

    /// How many matches keep their `stat` open.
    pub fn open_files(&self) -> usize {
        self.identities
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .open_files()
    }

    /// How many process instances the collector remembers, and the heap bytes that takes.
    pub fn footprint(&self) -> (usize, usize) {
        self.identities
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .footprint()
    }

    /// Scans the tree once. On procfs, `cmdline` is read only for processes not seen before
    /// and for those whose rescan tick this is; `stat` for every match and its parent.
    ///
    /// # Errors
    /// When the root is missing, unreadable, lists no pid 1, has no readable `uptime`, or a
    /// process's files deny access (hidepid=1): a scan that cannot see everything is not a scan.
    pub fn scan(&self) -> Result<ProcScan, CollectError> {
        // A scan that panicked left the cache empty (its pass owned the entries): usable as is.
        let mut identities = self
            .identities
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let root = &self.config.root;
        let stable = self.trust_inodes || is_procfs(root);
        // Read before the listing: a task created after it moves the count for the next tick.
        // Not on a collector's first tick, which `once` runs alone: the count would only be
        // compared with the next one's.
        let created = (stable && !identities.first_tick())
            .then(|| tasks_created(root, self.trust_inodes))
            .flatten();
        // A kept listing skips the pid-1 check of a fresh one: pid 1 still there is what says the
        // tree has not begun to hide processes (a remount with `hidepid=invisible`), whose files
        // would read as gone while they run.
        let kept = identities
            .reuse_listing(created)
            .filter(|_| exists(root, 1));
        let (entries, fresh) = match kept {
            Some(entries) => (entries, false),
            None => (list_entries_seeing_all(root)?, true),
        };
        let uptime_s = read_uptime(root)?;
        let own_pid = own_pid(root);

        let mut pass = identities.begin(stable, entries.len());
        let mut reader = Reader::new(root);
        let mut scan = ProcScan {
            uptime_s,
            ticks_per_second: self.config.ticks_per_second,
            ..ProcScan::default()
        };
        let mut matches: Vec<Found> = Vec::new();
        // The listing less the processes found gone: what stands for the next tick's.
        let mut listed = Vec::with_capacity(entries.len());
        for &entry in &entries {
            if Some(entry.pid) == own_pid {
                listed.push(entry);
                continue;
            }
            let vanished = scan.vanished;
            let found = match pass.lookup(entry) {
                Lookup::NoMatch => {
                    pass.keep(entry, None);
                    None
                }
                Lookup::Match(known) => {
                    self.read_known(&mut reader, entry, known, &mut pass, &mut scan)?
                }
                Lookup::Unknown => self.read_new(&mut reader, entry, None, &mut pass, &mut scan)?,
                Lookup::Due(was) => self.read_new(&mut reader, entry, was, &mut pass, &mut scan)?,
            };
            if scan.vanished == vanished {
                listed.push(entry);
            }
            matches.extend(found);
        }
        drop(entries);
        self.read_containers(&mut matches, &mut pass);
        identities.finish(pass);

        let mut parent_comms: HashMap<u32, Option<String>> = matches
            .iter()
            .map(|(stat, _, _)| (stat.pid as u32, Some(stat.comm.clone())))
            .collect();
        let matched: HashSet<u32> = parent_comms.keys().copied().collect();
        // A group leader is alive when it is listed; in a listing kept from an earlier tick it
        // may have exited since without being read, so there it is looked up as well.
        let mut leaders: HashMap<u32, bool> = HashMap::new();
        for (stat, cmdline, container) in matches {
            let ppid = stat.ppid as u32;
            let parent_comm = match parent_comms.get(&ppid) {
                Some(known) => known.clone(),
                None => {
                    let comm = parent_comm(&mut reader, ppid)?;
                    parent_comms.insert(ppid, comm.clone());
                    comm
                }
            };
            let pgid = stat.pgrp.max(0) as u32;
            let leader_alive = *leaders.entry(pgid).or_insert_with(|| {
                // pgid 0 is no group (pid 1, kernel threads): there is no leader to lose.
                pgid == 0
                    || (listed.binary_search_by_key(&pgid, |e| e.pid).is_ok()
                        && (fresh || matched.contains(&pgid) || exists(root, pgid)))
            });
            let mut info = self.process_info(stat, cmdline, parent_comm, uptime_s, leader_alive);
            info.container = container.flatten();
            scan.processes.push(info);
        }
        identities.keep_listing(listed, created, fresh);
        Ok(scan)
    }

    /// Reads the `cgroup` of the matches whose container is shown and not known yet: each
    /// match's, or the oldest's of each group. One small file per such process, once.
    fn read_containers(&self, matches: &mut [Found], pass: &mut Pass) {
        let wanted: Vec<bool> = match self.config.containers {
            Containers::EveryMatch => vec![true; matches.len()],
            Containers::OldestOfEachGroup => {
                // The signal builder names a group after its oldest member, the same way.
                let mut oldest: HashMap<i32, (u64, i32)> = HashMap::new();
                for (stat, _, _) in matches.iter() {
                    let key = (stat.starttime, stat.pid);
                    oldest
                        .entry(stat.pgrp)
                        .and_modify(|o| *o = (*o).min(key))
                        .or_insert(key);
                }
                matches
                    .iter()
                    .map(|(stat, _, _)| oldest[&stat.pgrp] == (stat.starttime, stat.pid))
                    .collect()
            }
        };
        for ((stat, _, container), wanted) in matches.iter_mut().zip(wanted) {
            if wanted && container.is_none() {
                let pid = stat.pid as u32;
                let read = cgroup::read(&self.config.root, pid).ok().flatten();
                pass.set_container(pid, read.clone());
                *container = Some(read);
            }
        }
    }

    /// A process the cache knows matched: its `stat` alone, for this tick's facts, read from
    /// the file kept open when there is one.
    fn read_known(
        &self,
        reader: &mut Reader<'_>,
        entry: PidEntry,
        mut known: Box<Matched>,
        pass: &mut Pass,
        scan: &mut ProcScan,
    ) -> Result<Option<Found>, CollectError> {
        let read = match known.stat.take() {
            Some(file) => {
                let read = reader.reread_stat(entry.pid, &file)?;
                known.stat = Some(file);
                read
            }
            None => {
                let (read, file) = reader.open_stat(entry.pid)?;
                known.stat = file;
                read
            }
        };
        match read {
            StatRead::Gone => scan.vanished += 1,
            StatRead::Failed => scan.unreadable.push(entry.pid),
            // Another start time is another process: the inode promise did not hold, so trust
            // nothing remembered of it.
            StatRead::Stat(stat) if stat.starttime != known.start_ticks => {
                return self.read_new(reader, entry, None, pass, scan);
            }
            StatRead::Stat(stat) => {
                let found = (!runs_nothing(&stat))
                    .then(|| (*stat, known.cmdline.clone(), known.container.clone()));
                pass.keep(entry, Some(known));
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// A process not known (new, due for its rescan, or the root is not procfs): its `cmdline`,
    /// and for a match its `stat` and `cgroup`. What was read whole is remembered. `was` is what
    /// a rescan knew of the same instance: a match that still matches reads the `stat` it kept
    /// open and keeps its container.
    fn read_new(
        &self,
        reader: &mut Reader<'_>,
        entry: PidEntry,
        was: Option<Box<Matched>>,
        pass: &mut Pass,
        scan: &mut ProcScan,
    ) -> Result<Option<Found>, CollectError> {
        let pid = entry.pid;
        let (argv, whole) = match reader.read(pid, "cmdline")? {
            FileRead::Gone => {
                scan.vanished += 1;
                return Ok(None);
            }
            FileRead::Failed => {
                scan.unreadable.push(pid);
                return Ok(None);
            }
            FileRead::Bytes(bytes) => (split_cmdline(bytes), cacheable(bytes)),
        };
        // Kernel threads and zombies have an empty command line and never match; a zombie
        // leader whose other threads run has its command line read through one of them.
        let (argv, whole) = if argv.is_empty() {
            match self.read_empty(reader, entry, pass)? {
                Some(read) => read,
                None => return Ok(None),
            }
        } else {
            (argv, whole)
        };
        let joined = argv.join(" ");
        if !self.config.patterns.is_match(&joined) || self.config.exclude.is_match(&joined) {
            if whole {
                pass.keep(entry, None);
            }
            return Ok(None);
        }
        let (container, kept) = match was {
            Some(mut was) => (was.container.take(), was.stat.take()),
            None => (None, None),
        };
        let (read, stat_file) = match kept {
            Some(file) => (reader.reread_stat(pid, &file)?, Some(file)),
            None => reader.open_stat(pid)?,
        };
        match read {
            StatRead::Gone => scan.vanished += 1,
            StatRead::Failed => scan.unreadable.push(pid),
            // Their command line is empty on a real kernel; the stat says so for certain.
            StatRead::Stat(stat) if runs_nothing(&stat) => {}
            StatRead::Stat(stat) => {
                let cmdline = mask_cmdline(&argv);
                if whole {
                    let matched = Matched {
                        cmdline: cmdline.clone(),
                        // Read after the listing, for the matches whose container is shown.
                        container: container.clone(),
                        start_ticks: stat.starttime,
                        stat: stat_file,
                    };
                    pass.keep(entry, Some(Box::new(matched)));
                }
                return Ok(Some((*stat, cmdline, container)));
            }
        }
        Ok(None)
    }

    /// A process whose command line read empty, by its `stat`:
    /// - a zombie leader whose other threads still run (`ps` shows `Zl`: a test runner whose
    ///   main thread ended while a worker hangs) runs its program: its command line is read
    ///   through one of those threads and returned, to be matched as any other;
    /// - a kernel thread or a zombie runs nothing, and is remembered as a non-match. An empty
    ///   command line is never remembered, but what the `stat` says cannot change for the same
    ///   instance: since Linux 6.0 `kernel_execve()` refuses a kernel thread and
    ///   `begin_new_exec()` no longer clears `PF_KTHREAD`. On older kernels a usermode helper
    ///   starts as one and `exec`s, and the rescan reads it again, as it catches any `exec`.
    ///   Without this, each of a host's kernel threads (dozens to thousands) and zombies costs a
    ///   `cmdline` every tick;
    /// - anything else (a process between the halves of an `exec`) is read again next tick.
    fn read_empty(
        &self,
        reader: &mut Reader<'_>,
        entry: PidEntry,
        pass: &mut Pass,
    ) -> Result<Option<(Vec<String>, bool)>, CollectError> {
        let StatRead::Stat(stat) = reader.read_stat(entry.pid)? else {
            return Ok(None);
        };
        if leader_gone_threads_run(&stat) {
            return Ok(reader
                .thread_cmdline(entry.pid)?
                .map(|raw| (split_cmdline(&raw), cacheable(&raw))));
        }
        if runs_nothing(&stat) {
            pass.keep(entry, None);
        }
        Ok(None)
    }

    fn process_info(
        &self,
        stat: Stat,
        cmdline: String,
        parent_comm: Option<String>,
        uptime_s: f64,
        group_leader_alive: bool,
    ) -> ProcessInfo {
        let tps = self.config.ticks_per_second.max(1);
        let started_s = stat.starttime as f64 / tps as f64;
        // A process that started after `uptime` was read shows a negative age: it is new.
        let age_s = (uptime_s - started_s).max(0.0).floor() as u64;
        let pgid = stat.pgrp.max(0) as u32;
        ProcessInfo {
            pid: stat.pid as u32,
            ppid: stat.ppid.max(0) as u32,
            pgid,
            session: stat.session.max(0) as u32,
            state: stat.state,
            start_ticks: stat.starttime,
            age_s,
            cpu_ticks: stat.utime.saturating_add(stat.stime),
            rss_bytes: stat.rss.saturating_mul(self.config.page_size),
            comm: stat.comm,
            cmdline,
            parent_comm,
            group_leader_alive,
            container: None,
        }
    }
}

impl Collector for ProcCollector {
    fn name(&self) -> &'static str {
        "proc"
    }

    /// Scans the same whatever the request: `all_processes` is the jobs collector's.
    fn collect(&self, _request: &CollectRequest) -> Result<Observation, CollectError> {
        self.scan().map(Observation::Proc)
    }
}

/// The parent's comm; `None` when there is no parent (pid 0) or it cannot be read.
///
/// # Errors
/// Permission denied.
fn parent_comm(reader: &mut Reader<'_>, ppid: u32) -> Result<Option<String>, CollectError> {
    if ppid == 0 {
        return Ok(None);
    }
    Ok(match reader.read_stat(ppid)? {
        StatRead::Stat(stat) => Some(stat.comm),
        StatRead::Gone | StatRead::Failed => None,
    })
}

/// A zombie (or dead) process runs nothing; a kernel thread is not work anyone started. A
/// zombie leader whose other threads run is neither: see [`leader_gone_threads_run`].
fn runs_nothing(stat: &Stat) -> bool {
    (matches!(stat.state, 'Z' | 'X' | 'x') && !leader_gone_threads_run(stat))
        || stat.flags & PF_KTHREAD != 0
}

/// The leader (the thread whose id is the pid) exited while other threads run: the kernel
/// keeps it a zombie until the last of them ends, and counts it among the group's threads.
fn leader_gone_threads_run(stat: &Stat) -> bool {
    stat.state == 'Z' && stat.num_threads > 1
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use super::*;

    fn state_of(pid: u32) -> Option<char> {
        let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(&stat).ok().map(|s| s.state)
    }

    #[test]
    fn an_empty_command_line_is_remembered_only_for_a_kernel_thread_or_a_zombie() {
        // A child that exits and is not reaped yet: a zombie, whose cmdline is empty.
        let mut child = Command::new("true").stdout(Stdio::null()).spawn().unwrap();
        let zombie = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while state_of(zombie) != Some('Z') {
            assert!(
                Instant::now() < deadline,
                "pid {zombie} never became a zombie"
            );
            std::thread::yield_now();
        }
        let collector = ProcCollector::new(ProcConfig {
            // No rescan falls in the tick here.
            rescan_ticks: 1000,
            ..ProcConfig::with_system_units(
                PathBuf::from("/proc"),
                PatternSet::parse("pytest").unwrap(),
                PatternSet::default(),
            )
        });
        // kthreadd: pid 2 in the host's namespace, a kernel thread with an empty cmdline.
        let kthreadd = std::fs::read("/proc/2/cmdline").is_ok_and(|c| c.is_empty());
        collector.scan().unwrap();
        {
            // Its stat is read anyway, to tell a zombie leader whose threads run.
            let ids = collector.identities.lock().unwrap();
            assert!(ids.knows(zombie), "the zombie, by its stat");
            assert!(!kthreadd || ids.knows(2), "kthreadd, by its stat");
            assert!(ids.knows(1), "init's command line is whole and kept");
        }
        child.wait().unwrap();
    }

    /// A tree trusted as procfs (as the bench's are) where pid 42 has an empty command line and
    /// a `stat` with `state` and `flags` as given.
    fn empty_cmdline_tree(state: char, flags: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("uptime"), "1000.00 1.00\n").unwrap();
        for (pid, cmdline) in [(1, "init\0"), (42, "")] {
            std::fs::create_dir(root.join(pid.to_string())).unwrap();
            std::fs::write(root.join(format!("{pid}/cmdline")), cmdline).unwrap();
            std::fs::write(
                root.join(format!("{pid}/stat")),
                format!("{pid} (w) {state} 1 {pid} {pid} 0 -1 {flags} 0 0 0 0 10 10 0 0 20 0 1 0 5000 1000 100 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"),
            )
            .unwrap();
        }
        dir
    }

    #[test]
    fn only_a_kernel_thread_or_a_zombie_is_remembered_with_an_empty_command_line() {
        let cases = [
            ('S', 0, false, "a process between the halves of an exec"),
            ('R', 0, false, "a running one"),
            ('S', PF_KTHREAD, true, "a kernel thread"),
            ('Z', 0, true, "a zombie"),
        ];
        for (state, flags, remembered, what) in cases {
            let tree = empty_cmdline_tree(state, flags);
            let collector = ProcCollector::new(ProcConfig {
                rescan_ticks: 1000,
                ..ProcConfig::with_system_units(
                    tree.path().to_path_buf(),
                    PatternSet::parse("pytest").unwrap(),
                    PatternSet::default(),
                )
            })
            .trusting_inodes();
            for _ in 0..3 {
                collector.scan().unwrap();
            }
            let ids = collector.identities.lock().unwrap();
            assert_eq!(ids.knows(42), remembered, "{what}");
        }
    }
}
