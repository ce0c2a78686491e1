//! What watchdog can observe, and the blocking readers that observe it.
//!
//! This crate is the leaf of the workspace: observation types, pure parsers and readers that take
//! their root path through a constructor. It has no async runtime and knows nothing of signals or
//! alerting; the root crate turns observations into signals.
//!
//! - [`Collector`]: the object-safe trait every collector implements, and [`CollectRequest`],
//!   what one tick asks of it.
//! - [`CollectError`]: why a collector could not look, typed, with a stable `kind()`.
//! - [`proc_root`]: reading a /proc tree, shared by both collectors: the listing, `uptime`,
//!   whole-file reads into one buffer, the pid-1 check.
//! - [`parse`]: the pure parsers of /proc files (`stat`, `cmdline`, `uptime`, `NSpid:`).
//! - [`proc`]: the `proc` collector, a read-only scan of a /proc tree for matching processes.
//! - [`proc_cache`]: what the proc collector remembers between ticks, per process instance
//!   (pid and inode), and the rescan that catches an `exec`.
//! - [`jobs`]: the `jobs` collector, the orchestrator's job list (HTTP or SQLite) and the /proc
//!   facts of its pids.
//! - [`pressure`]: the `pressure` collector, the host's stall pressure (PSI, or the load average
//!   where PSI is absent) and, only while a resource is under pressure, its top CPU consumers.
//! - [`psi`]: the pure parser of the kernel's PSI files.
//! - [`cgroup`]: which container, pod or unit a process lives in, from its `cgroup` file.
//! - [`mask`]: masking of secrets in command lines, applied before anything leaves a collector.
//! - [`pattern`]: the pattern language of `WATCHDOG_PROC_PATTERNS` and `WATCHDOG_PROC_EXCLUDE`.
//! - [`regular`]: the check that a file a user points a collector at is a regular file.
//!
//! The one HTTP client here (the jobs source's) is a blocking ureq agent over the rustls
//! `ClientConfig` its constructor is given: this crate picks no crypto provider and no roots.
//!
//! A collector that could not look returns `Err`; `Ok` with nothing in it means it looked and saw
//! nothing. The two are never confused: an empty result recovers alerts, an error holds them.

pub mod cgroup;
mod error;
mod https;
pub mod jobs;
pub mod mask;
pub mod parse;
pub mod pattern;
pub mod pressure;
pub mod proc;
pub mod proc_cache;
pub mod proc_root;
pub mod psi;
pub mod regular;

pub use error::{CollectError, SourceError, SourceName};

/// One source of observations, run once per tick on a blocking thread.
pub trait Collector: Send + Sync {
    /// The collector's name: its module name and its config token (`proc`).
    fn name(&self) -> &'static str;

    /// Looks once. What stays the same from tick to tick came through the constructor; what
    /// changes comes in `request`.
    ///
    /// # Errors
    /// When the collector could not look at all; see [`CollectError`].
    fn collect(&self, request: &CollectRequest) -> Result<Observation, CollectError>;
}

/// What one tick asks of the collectors beyond what their constructors were given.
#[derive(Debug, Clone, Default)]
pub struct CollectRequest {
    /// Read every process's `stat`, not only the jobs' pids: set while a leftover watch is
    /// open, so the processes a finished job left behind can be followed.
    pub all_processes: bool,
}

/// What one successful collection saw.
#[derive(Debug, Clone)]
pub enum Observation {
    Proc(proc::ProcScan),
    Jobs(jobs::JobsScan),
    Pressure(pressure::PressureScan),
}
