//! The `proc` collector: matching processes in a /proc tree, with their age and cost.
//!
//! Reads, under the root it is given: the root listing, `uptime`, `self` (a link, to skip the
//! watchdog itself), `<pid>/cmdline` of every process, `<pid>/stat` only of processes whose
//! command line matches and of their parents, and `<pid>/cgroup` of the matches alone (which
//! container they run in). Opening a /proc file is the whole cost of a scan, so it opens nothing
//! else: never `environ`, never `status`.
//!
//! A process that disappears between the listing and the read is *vanished*: skipped and
//! counted. A process that is there but whose files are truncated or malformed is *unreadable*:
//! counted and reported by pid, so the engine holds its alerts. A root that is missing, denies
//! access, or does not list pid 1 fails the whole collection.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use procfs::process::Stat;
use procfs::{FromRead, Uptime};
use serde::Serialize;

use crate::cgroup::{self, Container};
use crate::mask::mask_cmdline;
use crate::pattern::PatternSet;
use crate::{CollectError, Collector, Observation};

/// `ESRCH`: a /proc file whose process exited after it was opened.
const ESRCH: i32 = 3;

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
        }
    }
}

/// This machine's clock ticks per second (`CLK_TCK`), the unit of `starttime`.
pub fn ticks_per_second() -> u64 {
    procfs::ticks_per_second()
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
#[derive(Debug, Clone)]
pub struct ProcCollector {
    config: ProcConfig,
}

impl ProcCollector {
    pub fn new(config: ProcConfig) -> Self {
        Self { config }
    }

    pub fn root(&self) -> &Path {
        &self.config.root
    }

    /// Scans the tree once.
    ///
    /// # Errors
    /// When the root is missing, unreadable, lists no pid 1, has no readable `uptime`, or a
    /// process's files deny access (hidepid=1): a scan that cannot see everything is not a scan.
    pub fn scan(&self) -> Result<ProcScan, CollectError> {
        let root = &self.config.root;
        let pids = list_pids(root)?;
        if pids.binary_search(&1).is_err() {
            return Err(CollectError::Blind { root: root.clone() });
        }
        let uptime_s = read_uptime(root)?;
        let own_pid = own_pid(root);

        let mut reader = Reader::new(root);
        let mut scan = ProcScan {
            uptime_s,
            ticks_per_second: self.config.ticks_per_second,
            ..ProcScan::default()
        };
        let mut matches: Vec<(Stat, String, Option<Container>)> = Vec::new();
        for &pid in &pids {
            if Some(pid) == own_pid {
                continue;
            }
            let argv = match reader.read(pid, "cmdline")? {
                FileRead::Gone => {
                    scan.vanished += 1;
                    continue;
                }
                FileRead::Failed => {
                    scan.unreadable.push(pid);
                    continue;
                }
                FileRead::Bytes(bytes) => split_cmdline(bytes),
            };
            // Kernel threads and zombies have an empty command line and never match.
            if argv.is_empty() {
                continue;
            }
            let joined = argv.join(" ");
            if !self.config.patterns.is_match(&joined) || self.config.exclude.is_match(&joined) {
                continue;
            }
            match reader.read_stat(pid)? {
                StatRead::Gone => scan.vanished += 1,
                StatRead::Failed => scan.unreadable.push(pid),
                // Their command line is empty on a real kernel; the stat says so for certain.
                StatRead::Stat(stat) if is_zombie_or_kernel_thread(&stat) => {}
                StatRead::Stat(stat) => {
                    // One more small file per match, none per non-match.
                    let container = cgroup::read(root, pid).ok().flatten();
                    matches.push((*stat, mask_cmdline(&argv), container));
                }
            }
        }

        let mut parent_comms: HashMap<u32, Option<String>> = matches
            .iter()
            .map(|(stat, _, _)| (stat.pid as u32, Some(stat.comm.clone())))
            .collect();
        for (stat, cmdline, container) in matches {
            let ppid = stat.ppid as u32;
            let parent_comm = match parent_comms.get(&ppid) {
                Some(known) => known.clone(),
                None => {
                    let comm = reader.parent_comm(ppid)?;
                    parent_comms.insert(ppid, comm.clone());
                    comm
                }
            };
            let mut info = self.process_info(stat, cmdline, parent_comm, uptime_s, &pids);
            info.container = container;
            scan.processes.push(info);
        }
        Ok(scan)
    }

    fn process_info(
        &self,
        stat: Stat,
        cmdline: String,
        parent_comm: Option<String>,
        uptime_s: f64,
        pids: &[u32],
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
            // pgid 0 is no group (pid 1, kernel threads): there is no leader to lose.
            group_leader_alive: pgid == 0 || pids.binary_search(&pgid).is_ok(),
            container: None,
        }
    }
}

impl Collector for ProcCollector {
    fn name(&self) -> &'static str {
        "proc"
    }

    fn collect(&self) -> Result<Observation, CollectError> {
        self.scan().map(Observation::Proc)
    }
}

/// The numeric entries of the root, sorted.
pub(crate) fn list_pids(root: &Path) -> Result<Vec<u32>, CollectError> {
    let entries = std::fs::read_dir(root).map_err(|e| CollectError::from_io(root.into(), e))?;
    let mut pids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| CollectError::from_io(root.into(), e))?;
        if let Some(pid) = entry.file_name().to_str().and_then(parse_pid) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

fn parse_pid(name: &str) -> Option<u32> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok().filter(|&pid| pid > 0)
}

/// The tree's `uptime`, in seconds.
pub(crate) fn read_uptime(root: &Path) -> Result<f64, CollectError> {
    let path = root.join("uptime");
    let mut buf = Vec::new();
    read_file(&path, &mut buf).map_err(|e| CollectError::from_io(path.clone(), e))?;
    let uptime = Uptime::from_read(buf.as_slice()).map_err(|e| CollectError::Malformed {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if !uptime.uptime.is_finite() || uptime.uptime < 0.0 {
        return Err(CollectError::Malformed {
            path,
            reason: format!("uptime {} is not a time", uptime.uptime),
        });
    }
    Ok(uptime.uptime)
}

/// The watchdog's own pid as this tree numbers it: `<root>/self` links to it. A fake tree has
/// no such link, and then nothing is skipped.
fn own_pid(root: &Path) -> Option<u32> {
    let target = std::fs::read_link(root.join("self")).ok()?;
    parse_pid(target.to_str()?)
}

/// Splits a raw `cmdline` into arguments: NUL-separated, trailing NULs dropped, non-UTF-8
/// bytes replaced. Some processes rewrite their argv into one space-separated string padded
/// with NULs (setproctitle); that stays one argument, which reads the same once joined.
pub fn split_cmdline(raw: &[u8]) -> Vec<String> {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let raw = &raw[..end];
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// Parses the contents of a `<pid>/stat` file.
///
/// The shape is checked before procfs parses the fields: procfs slices around the parentheses of
/// `comm` without bounds checks and would panic on a line cut right after them.
///
/// # Errors
/// A reason, when the line is truncated or malformed.
pub fn parse_stat(raw: &[u8]) -> Result<Stat, String> {
    // Checked on the text exactly as procfs sees it: decoded lossily, then trimmed.
    let text = String::from_utf8_lossy(raw);
    let line = text.trim();
    let bytes = line.as_bytes();
    let open = line.find('(').ok_or("no '(' before comm")?;
    // comm may itself hold ") (", so its end is the last ')'.
    let close = line.rfind(')').ok_or("no ')' after comm")?;
    if open < 2 || bytes[open - 1] != b' ' || !bytes[..open - 1].iter().all(u8::is_ascii_digit) {
        return Err("does not start with '<pid> ('".into());
    }
    if close < open || bytes.get(close + 1) != Some(&b' ') || bytes.len() < close + 3 {
        return Err("nothing after comm".into());
    }
    Stat::from_read(line.as_bytes()).map_err(|e| e.to_string())
}

/// What reading one file of a process gave.
enum FileRead<'a> {
    Bytes(&'a [u8]),
    /// The process exited: its directory or file is gone.
    Gone,
    /// The process is there but its file could not be read.
    Failed,
}

pub(crate) enum StatRead {
    Stat(Box<Stat>),
    Gone,
    Failed,
}

/// Reads per-process files into one reused buffer and path.
pub(crate) struct Reader<'r> {
    root: &'r Path,
    path: PathBuf,
    buf: Vec<u8>,
}

impl<'r> Reader<'r> {
    pub(crate) fn new(root: &'r Path) -> Self {
        Self {
            root,
            path: PathBuf::with_capacity(root.as_os_str().len() + 24),
            buf: Vec::with_capacity(4096),
        }
    }

    fn set_path(&mut self, pid: u32, file: &str) {
        self.path.as_mut_os_string().clear();
        self.path.push(self.root);
        self.path.push(pid.to_string());
        self.path.push(file);
    }

    /// Reads `<root>/<pid>/<file>`.
    ///
    /// # Errors
    /// Permission denied: the tree hides processes, so no part of the scan can be trusted.
    fn read(&mut self, pid: u32, file: &str) -> Result<FileRead<'_>, CollectError> {
        self.set_path(pid, file);
        match read_file(&self.path, &mut self.buf) {
            Ok(()) => Ok(FileRead::Bytes(&self.buf)),
            Err(e) if is_gone(&e) => Ok(FileRead::Gone),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                Err(CollectError::PermissionDenied {
                    path: self.path.clone(),
                })
            }
            Err(_) => Ok(FileRead::Failed),
        }
    }

    pub(crate) fn read_stat(&mut self, pid: u32) -> Result<StatRead, CollectError> {
        Ok(match self.read(pid, "stat")? {
            FileRead::Gone => StatRead::Gone,
            FileRead::Failed => StatRead::Failed,
            FileRead::Bytes(bytes) => match parse_stat(bytes) {
                // A stat that names another pid is not this process's.
                Ok(stat) if stat.pid == pid as i32 => StatRead::Stat(Box::new(stat)),
                Ok(_) | Err(_) => StatRead::Failed,
            },
        })
    }

    /// `<root>/<pid>/<file>`; `None` when it is gone or unreadable.
    ///
    /// # Errors
    /// Permission denied.
    pub(crate) fn file(&mut self, pid: u32, file: &str) -> Result<Option<Vec<u8>>, CollectError> {
        Ok(match self.read(pid, file)? {
            FileRead::Bytes(bytes) => Some(bytes.to_vec()),
            FileRead::Gone | FileRead::Failed => None,
        })
    }

    /// The parent's comm; `None` when there is no parent (pid 0) or it cannot be read.
    fn parent_comm(&mut self, ppid: u32) -> Result<Option<String>, CollectError> {
        if ppid == 0 {
            return Ok(None);
        }
        Ok(match self.read_stat(ppid)? {
            StatRead::Stat(stat) => Some(stat.comm),
            StatRead::Gone | StatRead::Failed => None,
        })
    }
}

/// A zombie (or dead) process runs nothing; a kernel thread is not work anyone started.
fn is_zombie_or_kernel_thread(stat: &Stat) -> bool {
    matches!(stat.state, 'Z' | 'X' | 'x') || stat.flags & PF_KTHREAD != 0
}

fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(ESRCH)
}

/// Reads a whole file into `buf` with plain `read` calls. `read_to_end` on a `File` first asks
/// for its size and position (a `statx` and an `lseek`), which /proc files do not have: two
/// wasted syscalls per file, on the hot path of every scan.
fn read_file(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let mut file = File::open(path)?;
    let mut chunk = [0u8; 4096];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL_STAT: &str = "42 (pytest) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 1 0 \
        9280000 10000000 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 \
        0 0 0 0 0 0 0";

    #[test]
    fn a_full_stat_line_parses() {
        let stat = parse_stat(FULL_STAT.as_bytes()).unwrap();
        assert_eq!(
            (stat.pid, stat.ppid, stat.pgrp, stat.session),
            (42, 1, 42, 42)
        );
        assert_eq!(
            (stat.utime, stat.stime, stat.starttime, stat.rss),
            (150, 50, 9280000, 2048)
        );
        assert_eq!(stat.comm, "pytest");
    }

    #[test]
    fn a_comm_holding_parens_and_spaces_parses() {
        let line = FULL_STAT.replace("(pytest)", "(a) (b c)");
        let stat = parse_stat(line.as_bytes()).unwrap();
        assert_eq!(stat.comm, "a) (b c");
        assert_eq!(stat.ppid, 1);
    }

    #[test]
    fn malformed_stat_lines_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            b"",
            b"42",
            b"42 (pytest)",
            b"42 (pytest) ",
            b"42 (pytest) S",
            b"42 (pytest) S 1 42 42 0",
            b"(pytest) S 1",
            b" (pytest) S 1",
            b"x (pytest) S 1",
            b"42 )pytest( S 1",
            b"42 (pytest",
            b"\xff\xfe (pytest) S 1",
            "4é (x) S 1".as_bytes(),
            // Found by fuzzing: procfs trims first, and slicing after ") " then overran.
            b"1 ()  ",
            b"1 (x) \n",
            b"1 (x)\t \t",
        ];
        for case in cases {
            assert!(
                parse_stat(case).is_err(),
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn cmdline_splits_on_nul_and_decodes_lossily() {
        assert_eq!(split_cmdline(b"pytest\0-x\0"), ["pytest", "-x"]);
        assert_eq!(split_cmdline(b"pytest\0\0"), ["pytest"]);
        assert_eq!(split_cmdline(b"a\0\0b\0"), ["a", "", "b"]);
        assert_eq!(split_cmdline(b"nginx: worker"), ["nginx: worker"]);
        assert_eq!(split_cmdline(b"nginx: worker\0\0\0\0"), ["nginx: worker"]);
        assert_eq!(split_cmdline(b"py\xfftest\0"), ["py\u{fffd}test"]);
        assert!(split_cmdline(b"").is_empty());
        assert!(split_cmdline(b"\0").is_empty());
    }

    #[test]
    fn pid_names_are_plain_positive_numbers() {
        assert_eq!(parse_pid("42"), Some(42));
        for name in ["", "0", "+1", "-1", "1a", "self", "99999999999"] {
            assert_eq!(parse_pid(name), None, "{name}");
        }
    }
}
