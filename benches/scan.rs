//! `cargo bench --bench scan`: what watchdog costs, against the floor and the peers.
//!
//! It spawns its own population on the live host (idle processes, some with `pytest` in their
//! argv) and reaps it after; it writes synthetic /proc trees of 1,000, 10,000 and 30,000
//! processes into a temp dir. It prints, for each population, the proc collector's scan time
//! beside two floor readers written here (the physical limit of the job: (a) read `stat` and
//! `cmdline` of every process, (b) `cmdline` of every process and `stat` only of the matches),
//! `ps -eo pid,ppid,etimes,args` and `watchdog once` on the live host, decide() for 10,000
//! entities, and the daemon's peak RSS at 5,000 processes. Every time is a median, also given
//! as a ratio to floor (b). `WATCHDOG_BENCH_SOAK_S=600` adds an RSS soak at a 1-second interval.
//! Not part of CI's pass/fail: figures depend on the machine.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use watchdog::engine::{decide, AlertState, CollectorTick, Rules};
use watchdog::model::{Facts, Kind, ProcFacts, Signal, Stop};
use watchdog_collectors::pattern::PatternSet;
use watchdog_collectors::proc::{ProcCollector, ProcConfig};

const RUNS: usize = 15;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    f(); // warm the page cache and the dentries
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Reads a file into `buf` with plain reads, as the collector does.
fn read_into(path: &Path, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    let mut chunk = [0u8; 4096];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return false,
        }
    }
}

fn pids(root: &Path) -> Vec<u32> {
    fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Floor (a): `stat` and `cmdline` of every process, a substring match. Returns matches.
fn floor_a(root: &Path, needle: &[u8]) -> usize {
    let (mut stat, mut cmdline, mut path) = (Vec::new(), Vec::new(), PathBuf::new());
    let mut matches = 0;
    for pid in pids(root) {
        path.clear();
        path.push(root);
        path.push(pid.to_string());
        path.push("stat");
        read_into(&path, &mut stat);
        path.set_file_name("cmdline");
        read_into(&path, &mut cmdline);
        matches += usize::from(cmdline.windows(needle.len()).any(|w| w == needle));
    }
    matches
}

/// Floor (b): `cmdline` of every process, `stat` only of the matches.
fn floor_b(root: &Path, needle: &[u8]) -> usize {
    let (mut stat, mut cmdline, mut path) = (Vec::new(), Vec::new(), PathBuf::new());
    let mut matches = 0;
    for pid in pids(root) {
        path.clear();
        path.push(root);
        path.push(pid.to_string());
        path.push("cmdline");
        read_into(&path, &mut cmdline);
        if cmdline.windows(needle.len()).any(|w| w == needle) {
            path.set_file_name("stat");
            read_into(&path, &mut stat);
            matches += 1;
        }
    }
    matches
}

fn collector(root: &Path) -> ProcCollector {
    ProcCollector::new(ProcConfig::with_system_units(
        root.to_path_buf(),
        PatternSet::parse("pytest").unwrap(),
        PatternSet::default(),
    ))
}

/// Scan vs floors over one root; returns floor (b) for ratios.
fn compare(label: &str, root: &Path) -> Duration {
    let n = pids(root).len();
    let scan = time(RUNS, || {
        collector(root).scan().expect("scan");
    });
    let a = time(RUNS, || {
        floor_a(root, b"pytest");
    });
    let b = time(RUNS, || {
        floor_b(root, b"pytest");
    });
    let matches = collector(root).scan().unwrap().processes.len();
    println!("{label}: {n} processes, {matches} matching");
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "  proc collector scan   {:8.2} ms  {:5.2} us/process  {:4.2}x floor (b)",
        ms(scan),
        per(scan),
        ms(scan) / ms(b)
    );
    println!(
        "  floor (a) stat+cmdline{:8.2} ms  {:5.2} us/process  {:4.2}x floor (b)",
        ms(a),
        per(a),
        ms(a) / ms(b)
    );
    println!(
        "  floor (b) cmdline     {:8.2} ms  {:5.2} us/process  1.00x",
        ms(b),
        per(b)
    );
    b
}

/// A synthetic /proc of `n` processes, 5% of them pytest, under `dir`.
fn synthetic(dir: &Path, n: u32) -> PathBuf {
    let root = dir.join(format!("proc-{n}"));
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("uptime"), "100000.00 1.00\n").unwrap();
    for pid in 1..=n {
        let d = root.join(pid.to_string());
        fs::create_dir(&d).unwrap();
        let argv = if pid % 20 == 0 {
            format!("python3\0-m\0pytest\0tests/{pid}\0")
        } else {
            format!("worker\0--id\0{pid}\0")
        };
        fs::write(d.join("cmdline"), argv).unwrap();
        fs::write(
            d.join("stat"),
            format!("{pid} (w) S 1 {pid} {pid} 0 -1 0 0 0 0 0 10 10 0 0 20 0 1 0 {} 1000 100 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n", 9_000_000 + pid),
        )
        .unwrap();
    }
    root
}

/// Idle processes on the live host, reaped when dropped.
struct Population(Vec<Child>);

impl Population {
    fn spawn(idle: usize, pytest: usize) -> Self {
        let mut children = Vec::new();
        for i in 0..idle + pytest {
            let name = if i < pytest {
                format!("pytest-bench-{i}")
            } else {
                format!("idle-bench-{i}")
            };
            let child = Command::new("bash")
                .args(["-c", &format!("exec -a {name} sleep 3600")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("bash runs");
            children.push(child);
        }
        std::thread::sleep(Duration::from_millis(500)); // let every exec land
        Self(children)
    }
}

impl Drop for Population {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

fn command_time(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Duration {
    time(RUNS, || {
        let status = Command::new(program)
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("runs");
        assert!(status.success(), "{program} {args:?}");
    })
}

fn decide_10k() -> Duration {
    let signals: Vec<Signal> = (0..10_000u32)
        .map(|pid| Signal {
            kind: Kind::ProcBlocking,
            entity: format!("proc:{pid}:{}", 9_000_000 + pid),
            active: true,
            facts: Facts::Proc(ProcFacts {
                pid,
                ppid: 1,
                pgid: pid,
                session: pid,
                state: 'S',
                comm: "pytest".into(),
                age_s: 7200,
                cmdline: "python3 -m pytest tests/".into(),
                orphaned: true,
                adopted: true,
                parent: Some("tini".into()),
                group_leader_alive: true,
                cpu_pct: 0.1,
                rss_bytes: 1 << 20,
                members: None,
                group_cpu_pct: None,
                group_rss_bytes: None,
                stop: Stop::Group(pid),
                container: None,
            }),
        })
        .collect();
    let rules = Rules {
        proc_cooldown_s: 1800,
        jobs_cooldown_s: 1800,
        pressure_cooldown_s: 1800,
        collector_fail_ticks: 3,
        collector_fail_cooldown_s: 1800,
    };
    let tick = || {
        vec![(
            "proc",
            CollectorTick::Ok {
                signals: signals.clone(),
                unreadable: Vec::new(),
                forget: Vec::new(),
                memory: None,
            },
        )]
    };
    // A state in which all 10,000 already fired: the steady tick, inside the cooldown.
    let state = decide(AlertState::default(), tick(), 1_800_000_000, &rules).state;
    // decide() takes the state and the tick: each run gets its own, made outside the timing.
    // The results are kept, so what is timed is deciding, not freeing 10,000 entities (the
    // daemon keeps its state from one tick to the next).
    let mut inputs: Vec<_> = (0..=RUNS).map(|_| (state.clone(), tick())).collect();
    let mut kept = Vec::with_capacity(RUNS + 1);
    let took = time(RUNS, || {
        let (state, tick) = inputs.pop().expect("inputs for each run");
        let outcome = decide(state, tick, 1_800_000_060, &rules);
        assert!(outcome.alerts.is_empty());
        kept.push(outcome);
    });
    drop(kept);
    took
}

fn vm(pid: u32, key: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn daemon_rss(ticks_s: u64, soak_s: u64) {
    let state = tempfile::tempdir().unwrap();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_watchdog"))
        .arg("run")
        .env_clear()
        .env("WATCHDOG_PROC_ENABLED", "true")
        .env("WATCHDOG_INTERVAL_S", "1")
        .env("WATCHDOG_STATE_DIR", state.path())
        .env("WATCHDOG_LISTEN", "off")
        .env("WATCHDOG_LOG", "error")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = daemon.id();
    std::thread::sleep(Duration::from_secs(ticks_s));
    let (rss, hwm) = (vm(pid, "VmRSS:"), vm(pid, "VmHWM:"));
    println!(
        "daemon after {ticks_s} ticks at 1 s: RSS {:.1} MiB, peak {:.1} MiB",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    if soak_s > 0 {
        let mut samples = Vec::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(soak_s) {
            std::thread::sleep(Duration::from_secs(10));
            samples.push(vm(pid, "VmRSS:"));
        }
        let (lo, hi) = (samples.iter().min().unwrap(), samples.iter().max().unwrap());
        println!(
            "soak {soak_s} s at 1 s ticks: RSS {:.1}..{:.1} MiB (spread {:.2} MiB), peak {:.1} MiB",
            *lo as f64 / 1024.0,
            *hi as f64 / 1024.0,
            (hi - lo) as f64 / 1024.0,
            vm(pid, "VmHWM:") as f64 / 1024.0
        );
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken.
    let soak_s: u64 = std::env::var("WATCHDOG_BENCH_SOAK_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );

    let dir = tempfile::tempdir().unwrap();
    for n in [1_000, 10_000, 30_000] {
        let root = synthetic(dir.path(), n);
        compare(&format!("synthetic tree of {n}"), &root);
    }

    let population = Population::spawn(4_800, 200);
    let live = Path::new("/proc");
    let b = compare("live /proc", live);
    let ps = command_time("ps", &["-eo", "pid,ppid,etimes,args"], &[]);
    let once = command_time(
        env!("CARGO_BIN_EXE_watchdog"),
        &["once", "--json"],
        &[
            ("WATCHDOG_PROC_ENABLED", "true"),
            ("WATCHDOG_LISTEN", "off"),
            ("WATCHDOG_LOG", "error"),
        ],
    );
    println!(
        "  ps -eo pid,ppid,etimes,args {:8.2} ms  {:5.2}x floor (b)",
        ms(ps),
        ms(ps) / ms(b)
    );
    println!(
        "  watchdog once --json        {:8.2} ms  {:5.2}x floor (b)  ({:.1}x faster than ps)",
        ms(once),
        ms(once) / ms(b),
        ms(ps) / ms(once)
    );
    match Command::new("prometheus-process-exporter").arg("--version").output() {
        Ok(_) => println!("  prometheus-process-exporter: installed; scrape it by hand to compare"),
        Err(_) => println!("  prometheus-process-exporter: not installed (apt-get install prometheus-process-exporter)"),
    }
    let d = decide_10k();
    println!("decide() for 10,000 active entities: {:.2} ms", ms(d));
    daemon_rss(10, soak_s);
    drop(population);
}
