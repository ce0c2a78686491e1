//! What watchdog can observe, and the blocking readers that observe it.
//!
//! This crate is the leaf of the workspace: observation types, pure parsers and readers that take
//! their root path through a constructor. It has no async runtime and knows nothing of signals or
//! alerting; the root crate turns observations into signals.
//!
//! - [`Collector`]: the object-safe trait every collector implements.
//! - [`proc`]: the `proc` collector, a read-only scan of a /proc tree for matching processes.
//! - [`jobs`]: the `jobs` collector, the orchestrator's job list (HTTP or SQLite) and the /proc
//!   facts of its pids.
//! - [`pressure`]: the `pressure` collector, the host's stall pressure (PSI, or the load average
//!   where PSI is absent) and, only while a resource is under pressure, its top CPU consumers.
//! - [`psi`]: the pure parser of the kernel's PSI files.
//! - [`cgroup`]: which container, pod or unit a process lives in, from its `cgroup` file.
//! - [`mask`]: masking of secrets in command lines, applied before anything leaves a collector.
//! - [`pattern`]: the pattern language of `WATCHDOG_PROC_PATTERNS` and `WATCHDOG_PROC_EXCLUDE`.
//!
//! A collector that could not look returns `Err`; `Ok` with nothing in it means it looked and saw
//! nothing. The two are never confused: an empty result recovers alerts, an error holds them.

pub mod cgroup;
pub mod jobs;
pub mod mask;
pub mod pattern;
pub mod pressure;
pub mod proc;
pub mod psi;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// One source of observations, run once per tick on a blocking thread.
pub trait Collector: Send + Sync {
    /// The collector's name: its module name and its config token (`proc`).
    fn name(&self) -> &'static str;

    /// Looks once.
    ///
    /// # Errors
    /// When the collector could not look at all; see [`CollectError`].
    fn collect(&self) -> Result<Observation, CollectError>;
}

/// What one successful collection saw.
#[derive(Debug, Clone)]
pub enum Observation {
    Proc(proc::ProcScan),
    Jobs(jobs::JobsScan),
    Pressure(pressure::PressureScan),
}

/// Why a collector could not look. Each variant names the path it concerns.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{path}: not found")]
    RootMissing { path: PathBuf },
    #[error(
        "{path}: permission denied (hidepid=1, or not allowed to read other users' processes)"
    )]
    PermissionDenied { path: PathBuf },
    #[error(
        "{root}: pid 1 is not listed, so most processes are hidden from this watchdog \
         (mounted with hidepid=2 without gid=, or not the host's pid namespace)"
    )]
    Blind { root: PathBuf },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: malformed: {reason}")]
    Malformed { path: PathBuf, reason: String },
    /// Neither a source nor its fallback exists (`pressure/cpu` and `loadavg`).
    #[error("neither {path} nor {fallback} exists")]
    NoSource { path: PathBuf, fallback: PathBuf },
    /// A source other than a file: the job list (named without its secrets).
    #[error("{source_name}: {reason}")]
    Source { source_name: String, reason: String },
}

impl CollectError {
    /// Classifies an I/O error on `path`: permission errors are their own variant because they
    /// have their own fix (the hidepid mount options).
    pub fn from_io(path: PathBuf, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::NotFound => CollectError::RootMissing { path },
            io::ErrorKind::PermissionDenied => CollectError::PermissionDenied { path },
            _ => CollectError::Io { path, source },
        }
    }
}

/// Reads a whole small file (a PSI file, `loadavg`, `stat`, a `cgroup`) with plain `read` calls,
/// as `proc`'s `read_file` does and for the same reason: `std::fs::read` first asks for a size
/// that /proc files do not have (a `statx` and an `lseek` wasted per file). A file longer than
/// `limit` bytes is an error of kind `InvalidData`, so a file that is not what it should be
/// cannot make a collector hold it all in memory.
pub(crate) fn read_small(path: &Path, limit: usize) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > limit {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("longer than {limit} bytes"),
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
