//! The `pressure` collector: how starved the host is, and, only while it is, who starves it.
//!
//! Reads, under the proc root it is given, every tick: `pressure/cpu`, `pressure/memory` and
//! `pressure/io`, the kernel's pressure stall information (PSI). While every resource is below
//! its threshold that is all: three small files, nothing per process. Where the cpu file is
//! absent (a kernel before 4.20, or booted with `psi=0`), cpu pressure comes from `loadavg`
//! divided by the CPUs counted in `stat`, and memory and io are unavailable: five opens a tick,
//! three of which fail at once. Only while some
//! resource is at or above its threshold, and `top` is not 0, it samples per-process CPU: the
//! root listing and every process's `stat`, twice (one tick apart, or around a wait), then the
//! `cmdline` and `cgroup` of the top consumers alone (the `top` submodule). It never reads
//! `environ` or `status`,
//! never touches /sys, and never judges: whether pressure has lasted long enough to alert is the
//! root crate's to decide.
//!
//! A missing PSI file is absence (the fallback, or an unavailable resource), not a failure. A
//! PSI file that is there but cannot be read or is not PSI fails the collection, as do a missing
//! cpu source (no PSI and no `loadavg`) and a malformed `loadavg` or `stat`: a failed collection
//! is not an empty one. Per-process sampling never fails the collection, because the pressure it
//! would explain was read; when sampling cannot see, [`Top::Failed`] says where and why.

mod top;

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use top::{Top, TopProcess};

use crate::proc_root::read_small;
use crate::psi::{self, Psi};
use crate::CollectError;
use top::Sample;

/// The collector's name: its module name and its config token.
pub const NAME: &str = "pressure";

/// The most top consumers a collection names.
pub const TOP_MAX: usize = 50;

/// Parents whose adopted children have lost the process that started them: init systems and
/// the subreapers that container runtimes put at pid 1 or above a container. The one list:
/// the root crate's proc builder judges `orphaned` by it too.
pub const REAPERS: &[&str] = &[
    "tini",
    "dumb-init",
    "docker-init",
    "catatonit",
    "s6-svscan",
    "systemd",
    "init",
    "runit",
    "conmon",
    "containerd-shim",
];

/// A PSI file is about 130 bytes.
const PSI_MAX_BYTES: usize = 4096;
const LOADAVG_MAX_BYTES: usize = 4096;
/// `stat` grows with the CPUs and interrupts: a few hundred KiB on the largest hosts.
const STAT_MAX_BYTES: usize = 4 << 20;

/// A resource the kernel reports pressure for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Cpu,
    Memory,
    Io,
}

impl Resource {
    /// In the order the collection reports them.
    pub const ALL: [Resource; 3] = [Resource::Cpu, Resource::Memory, Resource::Io];

    /// The name of its PSI file, its entity suffix (`pressure:cpu`) and its fact value.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::Io => "io",
        }
    }
}

/// Where a resource's figures came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `pressure/<resource>`.
    Psi,
    /// `loadavg` ÷ online CPUs × 100, for cpu where PSI is absent.
    Loadavg,
    /// No source on this host: the PSI file is absent or empty and there is no fallback. Not a
    /// failure: the host simply cannot say.
    Unavailable,
}

/// The percentages at or above which a resource counts as under pressure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// PSI `some avg60` of cpu (`WATCHDOG_PRESSURE_CPU_PCT`).
    pub cpu_pct: f64,
    /// PSI `some avg60` of memory (`WATCHDOG_PRESSURE_MEMORY_PCT`).
    pub memory_pct: f64,
    /// PSI `some avg60` of io (`WATCHDOG_PRESSURE_IO_PCT`).
    pub io_pct: f64,
    /// The 1-minute load per CPU, in percent, where cpu falls back to `loadavg`
    /// (`WATCHDOG_PRESSURE_LOAD_PCT`). Its own setting because a load of 0.5 per CPU is a
    /// healthy host and load also counts tasks waiting on disk (state D).
    pub load_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            cpu_pct: 50.0,
            memory_pct: 10.0,
            io_pct: 30.0,
            load_pct: 150.0,
        }
    }
}

/// How the two per-process samples that `top` compares are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// `run`: each tick's sample is compared with the previous tick's, held in the collector.
    Interval,
    /// `once`: a sample, a wait of this long, another sample.
    Wait(Duration),
}

/// What the pressure collector needs; everything comes through here, nothing from globals.
#[derive(Debug, Clone)]
pub struct PressureConfig {
    /// The /proc tree: `/proc` on a host, a fixture directory in tests.
    pub root: PathBuf,
    pub thresholds: Thresholds,
    /// How many top consumers to name, 0 to [`TOP_MAX`]; 0 never samples processes.
    pub top: usize,
    pub sampling: Sampling,
    /// The kernel's clock ticks per second (`CLK_TCK`), the unit of `utime` and `stime`.
    pub ticks_per_second: u64,
}

impl PressureConfig {
    /// A configuration with this machine's clock tick.
    pub fn with_system_units(
        root: PathBuf,
        thresholds: Thresholds,
        top: usize,
        sampling: Sampling,
    ) -> Self {
        Self {
            root,
            thresholds,
            top,
            sampling,
            ticks_per_second: crate::proc_root::ticks_per_second(),
        }
    }
}

/// The clock the collector measures sample intervals with and waits on in [`Sampling::Wait`].
/// Monotonic: a wall clock that steps would make a rate out of nothing.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
    fn sleep(&self, duration: Duration);
}

/// The monotonic system clock and a real sleep.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// One resource's pressure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourcePressure {
    pub resource: Resource,
    pub source: Source,
    /// Percent; `None` from `loadavg`, which has no 10-second figure.
    pub some_avg10: Option<f64>,
    /// Percent; from `loadavg`, the 1-minute load per CPU.
    pub some_avg60: Option<f64>,
    /// Percent; from `loadavg`, the 5-minute load per CPU.
    pub some_avg300: Option<f64>,
    /// Percent; always `None` for cpu: the kernel has reported zeros for the system-wide cpu
    /// `full` line since 5.18, and a zero would read as "never fully stalled".
    pub full_avg60: Option<f64>,
    /// The threshold `some_avg60` is compared with: the load threshold for `loadavg`.
    pub threshold_pct: f64,
    /// `some_avg60` is at or above `threshold_pct`.
    pub at_or_above: bool,
}

impl ResourcePressure {
    fn new(
        resource: Resource,
        source: Source,
        [some_avg10, some_avg60, some_avg300, full_avg60]: [Option<f64>; 4],
        threshold_pct: f64,
    ) -> Self {
        Self {
            resource,
            source,
            some_avg10,
            some_avg60,
            some_avg300,
            full_avg60,
            threshold_pct,
            at_or_above: some_avg60.is_some_and(|value| value >= threshold_pct),
        }
    }

    fn from_psi(resource: Resource, psi: &Psi, threshold_pct: f64) -> Self {
        let full_avg60 = match resource {
            Resource::Cpu => None,
            Resource::Memory | Resource::Io => psi.full.map(|full| full.avg60),
        };
        let some = psi.some;
        Self::new(
            resource,
            Source::Psi,
            [
                Some(some.avg10),
                Some(some.avg60),
                Some(some.avg300),
                full_avg60,
            ],
            threshold_pct,
        )
    }

    fn unavailable(resource: Resource, threshold_pct: f64) -> Self {
        Self::new(resource, Source::Unavailable, [None; 4], threshold_pct)
    }
}

/// The result of one successful collection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PressureScan {
    /// cpu, memory and io, in that order, each present.
    pub resources: Vec<ResourcePressure>,
    pub top: Top,
}

impl PressureScan {
    pub fn resource(&self, resource: Resource) -> Option<&ResourcePressure> {
        self.resources.iter().find(|r| r.resource == resource)
    }

    /// Whether some resource is at or above its threshold.
    pub fn any_at_or_above(&self) -> bool {
        self.resources.iter().any(|r| r.at_or_above)
    }
}

/// Reads the host's pressure and, while it is high, names the top CPU consumers.
pub struct PressureCollector {
    config: PressureConfig,
    clock: Arc<dyn Clock>,
    /// The previous tick's sample, in [`Sampling::Interval`]. A tick that does not sample
    /// (below threshold, failed) drops it, so a comparison always spans exactly one tick.
    previous: Mutex<Option<Sample>>,
}

impl PressureCollector {
    /// A collector on the system clock.
    pub fn new(config: PressureConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A collector on the given clock: tests pass one whose `sleep` moves time instead of
    /// waiting.
    pub fn with_clock(mut config: PressureConfig, clock: Arc<dyn Clock>) -> Self {
        config.top = config.top.min(TOP_MAX);
        Self {
            config,
            clock,
            previous: Mutex::new(None),
        }
    }

    pub fn root(&self) -> &Path {
        &self.config.root
    }

    /// Reads the three resources once and, while one is at or above its threshold, samples
    /// the top consumers.
    ///
    /// # Errors
    /// A PSI file that is there but cannot be read or is not PSI
    /// ([`CollectError::Io`], [`CollectError::Malformed`], naming the file); no cpu source at
    /// all ([`CollectError::NoSource`]); a `loadavg` or `stat` that cannot be read, is malformed,
    /// or lists no CPU, where cpu falls back to them.
    pub fn scan(&self) -> Result<PressureScan, CollectError> {
        let previous = self.lock_previous().take();
        let resources = self.read_resources()?;
        let top = if self.config.top == 0 {
            Top::Off
        } else if !resources.iter().any(|r| r.at_or_above) {
            Top::BelowThreshold
        } else {
            self.sample_top(previous)
        };
        Ok(PressureScan { resources, top })
    }

    fn lock_previous(&self) -> std::sync::MutexGuard<'_, Option<Sample>> {
        // A panic while the lock was held cannot leave a half-written sample: it is replaced
        // whole. Carry on with what is there.
        self.previous.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn read_resources(&self) -> Result<Vec<ResourcePressure>, CollectError> {
        let thresholds = &self.config.thresholds;
        let mut resources = Vec::with_capacity(Resource::ALL.len());
        for resource in Resource::ALL {
            let threshold = match resource {
                Resource::Cpu => thresholds.cpu_pct,
                Resource::Memory => thresholds.memory_pct,
                Resource::Io => thresholds.io_pct,
            };
            resources.push(match self.read_psi(resource)? {
                Some(psi) => ResourcePressure::from_psi(resource, &psi, threshold),
                None if resource == Resource::Cpu => self.cpu_from_loadavg()?,
                None => ResourcePressure::unavailable(resource, threshold),
            });
        }
        Ok(resources)
    }

    /// `pressure/<resource>`; `None` when the file is absent or has nothing in it.
    fn read_psi(&self, resource: Resource) -> Result<Option<Psi>, CollectError> {
        let path = self.config.root.join("pressure").join(resource.as_str());
        let bytes = match read_small(&path, PSI_MAX_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CollectError::Io { path, source }),
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| CollectError::Malformed {
            path: path.clone(),
            reason: "not UTF-8".into(),
        })?;
        psi::parse(text).map_err(|e| CollectError::Malformed {
            path,
            reason: e.to_string(),
        })
    }

    fn cpu_from_loadavg(&self) -> Result<ResourcePressure, CollectError> {
        let root = &self.config.root;
        let path = root.join("loadavg");
        let bytes = match read_small(&path, LOADAVG_MAX_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CollectError::NoSource {
                    path: root.join("pressure").join("cpu"),
                    fallback: path,
                })
            }
            Err(source) => return Err(CollectError::Io { path, source }),
        };
        let load = parse_loadavg(&String::from_utf8_lossy(&bytes))
            .map_err(|reason| CollectError::Malformed { path, reason })?;

        let path = root.join("stat");
        let stat = read_small(&path, STAT_MAX_BYTES).map_err(|source| CollectError::Io {
            path: path.clone(),
            source,
        })?;
        let cpus = count_online_cpus(&String::from_utf8_lossy(&stat));
        if cpus == 0 {
            return Err(CollectError::Malformed {
                path,
                reason: "no cpuN line: the online CPUs cannot be counted".into(),
            });
        }
        let pct = load_pct(load, cpus).ok_or_else(|| CollectError::Malformed {
            path: root.join("loadavg"),
            reason: "a load too large to be a percentage".into(),
        })?;
        Ok(ResourcePressure::new(
            Resource::Cpu,
            Source::Loadavg,
            [None, Some(pct.0), Some(pct.1), None],
            self.config.thresholds.load_pct,
        ))
    }
}

impl crate::Collector for PressureCollector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn collect(
        &self,
        _request: &crate::CollectRequest,
    ) -> Result<crate::Observation, CollectError> {
        self.scan().map(crate::Observation::Pressure)
    }
}

/// The 1-, 5- and 15-minute load averages of a `loadavg` file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// Parses a `loadavg` file (`0.52 0.58 0.59 1/467 12345`); only the three averages are used.
///
/// # Errors
/// A reason, when fewer than three fields are there or one is not a plain non-negative decimal.
pub fn parse_loadavg(text: &str) -> Result<LoadAvg, String> {
    let mut fields = text.split_ascii_whitespace();
    let mut next = |name: &str| -> Result<f64, String> {
        let field = fields
            .next()
            .ok_or_else(|| format!("no {name} load average"))?;
        psi::plain_decimal(field).ok_or_else(|| {
            let shown: String = field.chars().take(32).collect();
            format!("{name} load average {shown:?} is not a number")
        })
    };
    Ok(LoadAvg {
        one: next("1-minute")?,
        five: next("5-minute")?,
        fifteen: next("15-minute")?,
    })
}

/// The online CPUs in a `stat` file: its distinct `cpuN` lines (the kernel lists online CPUs
/// only). The aggregate `cpu` line is not one.
pub fn count_online_cpus(stat: &str) -> usize {
    stat.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("cpu")?;
            let number = rest.split(|c: char| c.is_ascii_whitespace()).next()?;
            if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            number.parse::<u32>().ok()
        })
        .collect::<BTreeSet<u32>>()
        .len()
}

/// The 1- and 5-minute loads as percent of the CPUs, two decimals; `None` if they overflow.
fn load_pct(load: LoadAvg, cpus: usize) -> Option<(f64, f64)> {
    let pct = |value: f64| {
        let pct = (value / cpus as f64 * 100.0 * 100.0).round() / 100.0;
        pct.is_finite().then_some(pct)
    };
    Some((pct(load.one)?, pct(load.five)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadavg_parses_three_plain_decimals() {
        assert_eq!(
            parse_loadavg("0.52 0.58 0.59 1/467 12345\n"),
            Ok(LoadAvg {
                one: 0.52,
                five: 0.58,
                fifteen: 0.59
            })
        );
        assert_eq!(parse_loadavg("3 2 1").map(|l| l.one), Ok(3.0));
        for text in [
            "",
            "0.52",
            "0.52 0.58",
            "x 1 1",
            "NaN 1 1",
            "inf 1 1",
            "1e3 1 1",
            "-1 1 1",
            "+1 1 1",
            "1..0 1 1",
            ". 1 1",
        ] {
            assert!(parse_loadavg(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn a_load_too_large_for_a_percentage_is_refused() {
        let huge = "9".repeat(400);
        let load = parse_loadavg(&format!("{huge} 1 1"));
        // 400 digits do not fit an f64: refused when parsed, or when made a percentage.
        match load {
            Err(_) => {}
            Ok(load) => assert_eq!(load_pct(load, 1), None),
        }
        let near_max = LoadAvg {
            one: f64::MAX,
            five: 1.0,
            fifteen: 1.0,
        };
        assert_eq!(load_pct(near_max, 1), None);
    }

    #[test]
    fn online_cpus_are_the_distinct_numbered_cpu_lines() {
        let stat = "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 5 0 5 50 0 0 0 0 0 0\n\
                    cpu1 5 0 5 50 0 0 0 0 0 0\nintr 1 2 3\ncpufreq 1\ncpu1 5 0 5\n";
        assert_eq!(count_online_cpus(stat), 2);
        assert_eq!(count_online_cpus("cpu  1 2 3\n"), 0);
        assert_eq!(count_online_cpus(""), 0);
        assert_eq!(count_online_cpus("cpu99999999999 1\n"), 0);
    }

    #[test]
    fn load_is_a_percentage_of_the_online_cpus() {
        let load = LoadAvg {
            one: 3.0,
            five: 1.0,
            fifteen: 0.5,
        };
        assert_eq!(load_pct(load, 2), Some((150.0, 50.0)));
        let third = LoadAvg {
            one: 1.0,
            five: 2.0,
            fifteen: 0.0,
        };
        assert_eq!(load_pct(third, 3), Some((33.33, 66.67)));
    }
}
