//! `cargo bench --bench scan`: what watchdog costs, against the floor and the peers.
//!
//! It spawns its own population on the live host (5,000 idle processes, 1,000 of them with
//! `pytest` in their argv and 10 of those with `pytest-ten`) and reaps it after; it writes
//! synthetic /proc trees of 1,000, 10,000 and 100,000 processes into a temp dir. The floor is
//! a reader written here that opens `cmdline` of every process and `stat` of the matches (the
//! least a scan from nothing can open); floor (a) adds `stat` of every process.
//!
//! Every comparison is paired: the two sides run alternately in the same window, at least 15
//! pairs, and the figure is the median of the per-pair ratios (MACHINE-NOTES: on this VM a scan
//! after a second of idle costs about twice a back-to-back one, the floor too). It prints:
//! - the first tick (a fresh collector, as `once` builds) and the steady tick (one collector
//!   kept across ticks, as `run` keeps it, default rescan of 10 ticks included) against the
//!   in-process floor, on the live /proc, back to back and after 1 s of idle; the steady tick
//!   also with a task created (`true` run and reaped, untimed) before each, which makes it list
//!   the root again;
//! - `watchdog once --json` against the floor run as a whole process (this bench re-executed);
//! - the synthetic trees: first and steady tick per process, and what the cache holds. Their
//!   steady tick uses `trusting_inodes()`: a tree on tmpfs or ext4 is never remembered by
//!   watchdog, but this bench never replaces a pid directory, so the cache is sound there and
//!   the figure shows how the cache itself scales;
//! - `ps`, decide() for 10,000 entities, and the daemon as operators run it (proc and pressure
//!   collectors, a webhook channel, the database and its history) at 5,000 processes: its mean
//!   tick against `once`'s pass in process, taken in the same window, and its RSS.
//!
//! `WATCHDOG_BENCH_SOAK_S=600` adds an RSS soak at a 1-second interval. `WATCHDOG_BENCH_BIN`
//! measures another build of the daemon (the image's static one); `WATCHDOG_BENCH_ONLY=daemon`
//! runs decide(), the population and the daemon alone. Not part of CI's
//! pass/fail: figures depend on the machine.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use watchdog::engine::{decide, AlertState, CollectorTick, Rules};
use watchdog::model::{Facts, Kind, ProcFacts, Signal, Stop};
use watchdog_collectors::pattern::PatternSet;
use watchdog_collectors::proc::{Containers, ProcCollector, ProcConfig};

const RUNS: usize = 15;
/// Pairs per comparison: at least 15, odd so the median is one of them.
const PAIRS: usize = 21;
/// The default `WATCHDOG_PROC_RESCAN_TICKS`.
const RESCAN: u32 = 10;
/// How many `stat` files `run` keeps open under an open-file limit of 4,096 or more.
const KEEP_OPEN: usize = 1024;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn median_f(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
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

fn once_timed(f: &mut impl FnMut()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// `a` against `b`, alternately first, `pairs` times, each run after `idle` (none: back to back).
/// Medians of each side and of the per-pair ratios a/b.
struct Paired {
    a: Duration,
    b: Duration,
    ratio: f64,
}

fn paired(pairs: usize, idle: Duration, a: impl FnMut(), b: impl FnMut()) -> Paired {
    paired_after(pairs, idle, || {}, a, b)
}

/// As [`paired`], with `before` run untimed before each run of `a`.
fn paired_after(
    pairs: usize,
    idle: Duration,
    mut before: impl FnMut(),
    mut a: impl FnMut(),
    mut b: impl FnMut(),
) -> Paired {
    before();
    a();
    b();
    let (mut xs, mut ys, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..pairs {
        let run = |f: &mut dyn FnMut()| {
            std::thread::sleep(idle);
            let start = Instant::now();
            f();
            start.elapsed()
        };
        let (x, y) = if i % 2 == 0 {
            before();
            let x = run(&mut a);
            (x, run(&mut b))
        } else {
            let y = run(&mut b);
            before();
            (run(&mut a), y)
        };
        ratios.push(x.as_secs_f64() / y.as_secs_f64());
        xs.push(x);
        ys.push(y);
    }
    Paired {
        a: median(xs),
        b: median(ys),
        ratio: median_f(ratios),
    }
}

/// Creates a task and reaps it: the kernel's count of created tasks moves, so the next steady
/// tick lists the root again (as on a host where something forks every interval).
fn fork_one() {
    let _ = Command::new("true").status();
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

/// A collector as `run` and `once` build it with the default settings (grouped by pgid: the
/// container of each group's oldest match alone) and an open-file limit of 4,096 or more (a
/// budget of 1,024 `stat` files kept open).
fn collector(root: &Path, pattern: &str) -> ProcCollector {
    ProcCollector::new(ProcConfig {
        rescan_ticks: RESCAN,
        containers: Containers::OldestOfEachGroup,
        keep_open: KEEP_OPEN,
        ..ProcConfig::with_system_units(
            root.to_path_buf(),
            PatternSet::parse(pattern).unwrap(),
            PatternSet::default(),
        )
    })
}

/// A collector kept across ticks, past two full rescan cycles: the steady state of `run`.
fn warmed(collector: ProcCollector) -> ProcCollector {
    for _ in 0..2 * RESCAN {
        collector.scan().expect("scan");
    }
    collector
}

/// First and steady tick against floor (b) over one root, paired.
fn compare(label: &str, root: &Path, pattern: &str, idle: Duration, kept: &ProcCollector) {
    let n = pids(root).len();
    let needle = pattern.as_bytes();
    let matches = collector(root, pattern).scan().unwrap().processes.len();
    let floor_matches = floor_b(root, needle);
    println!("{label}: {n} processes, {matches} matching `{pattern}` (floor: {floor_matches})");
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    let first = paired(
        PAIRS,
        idle,
        || {
            collector(root, pattern).scan().expect("scan");
        },
        || {
            floor_b(root, needle);
        },
    );
    let steady = paired(
        PAIRS,
        idle,
        || {
            kept.scan().expect("scan");
        },
        || {
            floor_b(root, needle);
        },
    );
    let forking = paired_after(
        PAIRS,
        idle,
        fork_one,
        || {
            kept.scan().expect("scan");
        },
        || {
            floor_b(root, needle);
        },
    );
    for (what, p) in [
        ("first tick ", &first),
        ("steady tick", &steady),
        ("steady, a task created before each", &forking),
    ] {
        println!(
            "  {what} {:8.2} ms {:5.2} us/process | floor (b) {:8.2} ms | ratio {:4.2}x ({PAIRS} pairs)",
            ms(p.a),
            per(p.a),
            ms(p.b),
            p.ratio
        );
    }
    let (ids, bytes) = kept.footprint();
    println!(
        "  cache: {ids} identities, {:.1} KiB ({:.0} bytes each)",
        bytes as f64 / 1024.0,
        bytes as f64 / ids.max(1) as f64
    );
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

/// Idle processes on the live host, reaped when dropped: `idle` plain ones, then `pytest` with
/// `pytest` in their argv, the first `ten` of which say `pytest-ten`.
struct Population(Vec<Child>);

impl Population {
    fn spawn(idle: usize, pytest: usize, ten: usize) -> Self {
        let mut children = Vec::new();
        for i in 0..idle + pytest {
            let name = if i < ten {
                format!("pytest-ten-{i}")
            } else if i < pytest {
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
        // Every exec has landed when every child's cmdline is its own.
        let deadline = Instant::now() + Duration::from_secs(60);
        for child in &children {
            let path = format!("/proc/{}/cmdline", child.id());
            while !fs::read(&path).is_ok_and(|c| c.ends_with(b"3600\0")) {
                assert!(Instant::now() < deadline, "pid {} never exec'd", child.id());
                std::thread::yield_now();
            }
        }
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

fn run_command(program: &str, args: &[&str], envs: &[(&str, &str)]) {
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("runs");
    // `once` exits 1 when something is active; what is timed is the run.
    assert!(status.code().is_some(), "{program} {args:?}: {status}");
}

fn command_time(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Duration {
    time(RUNS, || run_command(program, args, envs))
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

/// A webhook receiver on 127.0.0.1:0 that takes everything, for the daemon's channel.
fn receiver() -> (String, std::thread::JoinHandle<()>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("a loopback port");
    let url = format!("http://{}/hook", server.server_addr());
    let thread = std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let _ = request.respond(tiny_http::Response::empty(200));
        }
    });
    (url, thread)
}

/// `name`'s value in an OpenMetrics text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn scrape(port: u16) -> String {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

/// The daemon as operators run it (proc and pressure collectors, a webhook channel, the
/// database with its history): its tick time against `once`'s pass in process, in the same
/// window, and its memory.
fn daemon(ticks_s: u64, soak_s: u64) {
    use std::io::BufRead;
    let state = tempfile::tempdir().unwrap();
    let (url, _receiver) = receiver();
    // `WATCHDOG_BENCH_BIN`: another build to measure, such as the image's static one.
    let bin = std::env::var("WATCHDOG_BENCH_BIN")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_watchdog").to_string());
    println!("daemon binary: {bin}");
    let mut daemon = Command::new(&bin)
        .arg("run")
        .env_clear()
        .env("WATCHDOG_PROC_ENABLED", "true")
        .env("WATCHDOG_PRESSURE_ENABLED", "true")
        .env("WATCHDOG_WEBHOOK_URL", &url)
        .env("WATCHDOG_INTERVAL_S", "1")
        .env("WATCHDOG_STATE_DIR", state.path())
        .env("WATCHDOG_LISTEN", "127.0.0.1:0")
        .env("WATCHDOG_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = daemon.id();
    let stderr = std::io::BufReader::new(daemon.stderr.take().unwrap());
    let mut lines = stderr.lines();
    let port: u16 = loop {
        let line = lines.next().expect("the daemon logs").unwrap();
        if let Some(at) = line.find("127.0.0.1:") {
            if line.contains("serving /metrics") {
                let digits: String = line[at + 10..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                break digits.parse().unwrap();
            }
        }
    };
    // Drained, so the daemon never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let started = Instant::now();
    // `once`'s pass in process: a fresh collector's scan, taken while the daemon ticks.
    let mut once_samples = Vec::new();
    while started.elapsed() < Duration::from_secs(ticks_s) {
        let fresh = collector(Path::new("/proc"), "pytest");
        let t = Instant::now();
        fresh.scan().expect("scan");
        once_samples.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    once_samples.sort();
    let once = once_samples[once_samples.len() / 2];
    let text = scrape(port);
    let ticks = metric(&text, "watchdog_tick_duration_seconds_count").unwrap_or(0.0);
    let sum = metric(&text, "watchdog_tick_duration_seconds_sum").unwrap_or(0.0);
    let tick = Duration::from_secs_f64(sum / ticks.max(1.0));
    println!(
        "daemon tick (mean of {ticks} ticks, proc + pressure, webhook, history) {:8.2} ms | once's pass in process (median of {}) {:8.2} ms | ratio {:4.2}x",
        ms(tick),
        once_samples.len(),
        ms(once),
        ms(tick) / ms(once)
    );
    let (rss, hwm) = (vm(pid, "VmRSS:"), vm(pid, "VmHWM:"));
    // Anonymous (heap, stacks) apart from file pages (mostly the binary's own code).
    let (anon, file) = (vm(pid, "RssAnon:"), vm(pid, "RssFile:"));
    println!(
        "daemon after {ticks_s} s at 1 s ticks: RSS {:.2} MiB (anon {:.2}, file {:.2}), peak {:.2} MiB",
        rss as f64 / 1024.0,
        anon as f64 / 1024.0,
        file as f64 / 1024.0,
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

/// Set when this bench re-runs itself as the whole-process floor: the needle to match.
const FLOOR_CHILD: &str = "SCAN_BENCH_FLOOR_CHILD";

/// The floor as a whole process, for a fair comparison with `watchdog once`.
fn floor_process(needle: &str) -> Duration {
    let exe = std::env::current_exe().expect("the bench's own path");
    let mut run = || {
        let status = Command::new(&exe)
            .env(FLOOR_CHILD, needle)
            .stdout(Stdio::null())
            .status()
            .expect("runs");
        assert!(status.success());
    };
    once_timed(&mut run)
}

fn vm_self(key: &str) -> u64 {
    vm(std::process::id(), key)
}

/// The first and steady tick over a synthetic tree, with what the cache holds and costs.
fn synthetic_ticks(dir: &Path, n: u32) {
    let root = synthetic(dir, n);
    let rss_before = vm_self("VmRSS:");
    let kept = warmed(collector(&root, "pytest").trusting_inodes());
    let rss_after = vm_self("VmRSS:");
    compare(
        &format!("synthetic tree of {n} (steady: trusting_inodes)"),
        &root,
        "pytest",
        Duration::ZERO,
        &kept,
    );
    println!(
        "  bench RSS {:.1} MiB -> {:.1} MiB with the warmed collector",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    drop(kept);
    let _ = fs::remove_dir_all(&root);
}

fn main() {
    if let Ok(needle) = std::env::var(FLOOR_CHILD) {
        println!("{}", floor_b(Path::new("/proc"), needle.as_bytes()));
        return;
    }
    // `cargo bench` passes --bench; nothing else is taken.
    let soak_s: u64 = std::env::var("WATCHDOG_BENCH_SOAK_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    println!(
        "machine: {} cores, {}; rescan every {RESCAN} ticks",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );

    // `WATCHDOG_BENCH_ONLY=daemon`: the population and the daemon, nothing else.
    if std::env::var("WATCHDOG_BENCH_ONLY").as_deref() == Ok("daemon") {
        let d = decide_10k();
        println!("decide() for 10,000 active entities: {:.2} ms", ms(d));
        let population = Population::spawn(4_000, 1_000, 10);
        daemon(15, soak_s);
        drop(population);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for n in [1_000, 10_000, 100_000] {
        synthetic_ticks(dir.path(), n);
    }

    let population = Population::spawn(4_000, 1_000, 10);
    let live = Path::new("/proc");
    for pattern in ["pytest", "pytest-ten"] {
        let kept = warmed(collector(live, pattern));
        compare(
            "live /proc, back to back",
            live,
            pattern,
            Duration::ZERO,
            &kept,
        );
        compare(
            "live /proc, each run after 1 s idle",
            live,
            pattern,
            Duration::from_secs(1),
            &kept,
        );
    }
    let b = time(RUNS, || {
        floor_b(live, b"pytest");
    });
    let a = time(RUNS, || {
        floor_a(live, b"pytest");
    });
    println!(
        "  floor (a) stat+cmdline of all {:8.2} ms | floor (b) {:8.2} ms",
        ms(a),
        ms(b)
    );
    let once_vars = [
        ("WATCHDOG_PROC_ENABLED", "true"),
        ("WATCHDOG_LISTEN", "off"),
        ("WATCHDOG_LOG", "error"),
    ];
    let whole = paired(
        PAIRS,
        Duration::ZERO,
        || {
            run_command(
                env!("CARGO_BIN_EXE_watchdog"),
                &["once", "--json"],
                &once_vars,
            );
        },
        || {
            floor_process("pytest");
        },
    );
    println!(
        "  watchdog once --json {:8.2} ms | floor (b) as a process {:8.2} ms | ratio {:4.2}x ({PAIRS} pairs)",
        ms(whole.a),
        ms(whole.b),
        whole.ratio
    );
    let ps = command_time("ps", &["-eo", "pid,ppid,etimes,args"], &[]);
    println!(
        "  ps -eo pid,ppid,etimes,args {:8.2} ms ({:.1}x once)",
        ms(ps),
        ms(ps) / ms(whole.a)
    );
    match Command::new("prometheus-process-exporter").arg("--version").output() {
        Ok(_) => println!("  prometheus-process-exporter: installed; scrape it by hand to compare"),
        Err(_) => println!("  prometheus-process-exporter: not installed (apt-get install prometheus-process-exporter)"),
    }
    let d = decide_10k();
    println!("decide() for 10,000 active entities: {:.2} ms", ms(d));
    daemon(15, soak_s);
    drop(population);
}
