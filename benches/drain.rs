//! `cargo bench --bench drain`: how long the release daemon takes to drain 10,000 queued
//! events, how much it writes while doing so, and whether its ticks stay on time meanwhile.
//!
//! It builds a fake /proc of 10,000 stuck `pytest` processes, each in its own process group,
//! so that `watchdog run` really decides 10,000 fires (collector, decide(), one commit of
//! 10,000 events), against a local webhook receiver that answers 503. Once all 10,000 are
//! queued and refused, the receiver switches to 200 and counts distinct event ids. The drain
//! ends when every id has arrived and `/metrics` says `watchdog_outbox_depth` is 0. A 0.1
//! `outbox-webhook.json` import would queue the same events, but would skip the decision and
//! the tick commit that put them there: the fake tree exercises the path a host takes.
//!
//! The daemon is the release binary cargo built for this bench (`CARGO_BIN_EXE_watchdog`: cargo
//! sets it for benches too, and `cargo bench` builds it with the bench profile, which inherits
//! `release`); its path is printed. The state dir is a fresh directory under `/var/tmp`
//! (`WATCHDOG_BENCH_DIR` picks another parent); a tmpfs is refused, since `write_bytes` counts
//! nothing there. Ticks are timed from the daemon's own `tick done` lines (JSON logs, with a
//! filter that enables that line and not the per-entity `decided` lines: 10,000 of those a tick
//! would be the bench's load, not the daemon's). `WATCHDOG_BENCH_RUNS` (default 3) runs it that
//! many times and prints the median. Diagnostics: `WATCHDOG_BENCH_TICKS=1` prints the tick
//! times around the drain, `WATCHDOG_BENCH_STRACE=FILE` attaches `strace -f -c` to the daemon's
//! writes and syncs for the drain (it slows every syscall, so that run's times do not count),
//! `WATCHDOG_BENCH_KEEP=1` keeps the state dir to look at. Not part of CI's pass/fail: figures
//! depend on the machine.

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EVENTS: usize = 10_000;
const INTERVAL_S: u64 = 1;
/// The backoff cap while refused (`WATCHDOG_BENCH_RETRY_MAX_S` sets another): the first retry
/// after the switch comes within it, so the drain measures the store and the channel, not how
/// long the last backoff had left (up to the daemon's default of 300 s).
const RETRY_MAX_S: u64 = 1;
/// `TMPFS_MAGIC` from linux/magic.h.
const TMPFS_MAGIC: i64 = 0x0102_1994;
/// How long the receiver keeps refusing once every event is queued.
const REFUSE_S: u64 = 10;
const DRAIN_LIMIT: Duration = Duration::from_secs(600);
const TARGET_DRAIN_S: f64 = 60.0;
const TARGET_WRITE_BYTES: u64 = 100_000_000;

/// A fake /proc: `uptime`, an init, and `n` pytest processes aged 2 h, each its own group.
fn fake_proc(root: &Path, n: usize) -> std::io::Result<()> {
    fs::create_dir_all(root)?;
    fs::write(root.join("uptime"), "100000.00 180000.00\n")?;
    let process = |pid: usize, ppid: usize, comm: &str, argv: &str, start: u64| {
        let dir = root.join(pid.to_string());
        fs::create_dir(&dir)?;
        fs::write(dir.join("cmdline"), argv)?;
        fs::write(
            dir.join("stat"),
            format!(
                "{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 540 180 0 0 20 0 1 0 \
                 {start} 10485760 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 \
                 0 0 0 0 0 0 0 0 0\n"
            ),
        )
    };
    process(1, 0, "tini", "/sbin/tini\0--\0sleep\0infinity\0", 1000)?;
    for i in 0..n {
        let pid = 1000 + i;
        // Started at 92,800 s of a 100,000 s uptime: 2 h old, past the 60 min threshold.
        process(
            pid,
            1,
            "pytest",
            &format!("/usr/bin/python3\0-m\0pytest\0tests/shard_{i}\0"),
            9_280_000,
        )?;
    }
    Ok(())
}

/// The daemon's log filter: `tick done` at debug, the rest at info; `WATCHDOG_BENCH_LOG` sets
/// another (with `watchdog=debug`, every tick also logs one `decided` line per entity).
fn log_filter() -> String {
    std::env::var("WATCHDOG_BENCH_LOG")
        .unwrap_or_else(|_| "watchdog=info,watchdog::runner[{alerts}]=debug".to_string())
}

/// Refuses a tmpfs, where `write_bytes` reads 0 whatever is written.
fn refuse_tmpfs(dir: &Path) -> Result<(), String> {
    let fs = rustix::fs::statfs(dir).map_err(|e| format!("statfs {}: {e}", dir.display()))?;
    // f_type is `__fsword_t`: i64 on x86_64, narrower or unsigned on other targets.
    #[allow(clippy::useless_conversion)]
    if i64::from(fs.f_type) == TMPFS_MAGIC {
        return Err(format!(
            "{} is on tmpfs: /proc/<pid>/io write_bytes counts nothing there, so the bytes the \
             drain writes could not be measured; set WATCHDOG_BENCH_DIR to a disk-backed directory",
            dir.display()
        ));
    }
    Ok(())
}

/// The webhook receiver: 503 until `accept` is set, then 200; counts distinct event ids.
struct Receiver {
    url: String,
    accept: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    posts: Arc<AtomicUsize>,
    seen: Arc<Mutex<Seen>>,
    server: Arc<tiny_http::Server>,
}

#[derive(Default)]
struct Seen {
    ids: HashSet<String>,
    first_ok: Option<Instant>,
    all: Option<Instant>,
}

impl Receiver {
    fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1:0"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let accept = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let posts = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (serving, ok, no, count, record) = (
            Arc::clone(&server),
            Arc::clone(&accept),
            Arc::clone(&refused),
            Arc::clone(&posts),
            Arc::clone(&seen),
        );
        std::thread::spawn(move || {
            for mut request in serving.incoming_requests() {
                count.fetch_add(1, Ordering::Relaxed);
                let mut body = Vec::new();
                let _ = request.as_reader().read_to_end(&mut body);
                let status = if ok.load(Ordering::SeqCst) {
                    let id = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["id"].as_str().map(str::to_string));
                    let mut seen = record.lock().unwrap();
                    seen.first_ok.get_or_insert_with(Instant::now);
                    if let Some(id) = id {
                        seen.ids.insert(id);
                        if seen.ids.len() == EVENTS && seen.all.is_none() {
                            seen.all = Some(Instant::now());
                        }
                    }
                    200
                } else {
                    no.fetch_add(1, Ordering::Relaxed);
                    503
                };
                let _ = request.respond(tiny_http::Response::empty(status));
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            accept,
            refused,
            posts,
            seen,
            server,
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// `/proc/<pid>/io` fields, in bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Io {
    wchar: u64,
    write_bytes: u64,
}

fn io(pid: u32) -> Io {
    let text = fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Io {
        wchar: field("wchar:"),
        write_bytes: field("write_bytes:"),
    }
}

/// A `/proc/<pid>/status` value in KiB.
fn status_kib(pid: u32, key: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// One plain GET of `/metrics`; the body, or `None` when it did not answer.
fn metrics(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    raw.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

fn outbox_depth(port: u16) -> Option<u64> {
    metrics(port)?.lines().find_map(|line| {
        line.strip_prefix("watchdog_outbox_depth{channel=\"webhook\"} ")
            .and_then(|v| v.trim().parse().ok())
    })
}

/// What the daemon's stderr said: its port, and when each tick was done (its own timestamp).
#[derive(Default)]
struct Log {
    port: Option<u16>,
    ticks: Vec<f64>,
    errors: Vec<String>,
}

fn follow(child: &mut Child) -> Arc<Mutex<Log>> {
    let log = Arc::new(Mutex::new(Log::default()));
    let pipe = child.stderr.take().expect("stderr is piped");
    let writing = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let message = json["fields"]["message"].as_str().unwrap_or_default();
            let mut log = writing.lock().unwrap();
            if message.starts_with("serving /metrics") {
                log.port = json["fields"]["addr"]
                    .as_str()
                    .and_then(|a| a.rsplit(':').next()?.parse().ok());
            } else if message == "tick done" {
                if let Some(at) = json["timestamp"].as_str().and_then(unix_seconds) {
                    log.ticks.push(at);
                }
            } else if json["level"] == "ERROR" && log.errors.len() < 20 {
                log.errors.push(line.clone());
            }
        }
    });
    log
}

/// Seconds since the epoch of an RFC 3339 timestamp.
fn unix_seconds(text: &str) -> Option<f64> {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(at.unix_timestamp_nanos() as f64 / 1e9)
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn wait_for<T>(what: &str, limit: Duration, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(Instant::now() < deadline, "no {what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The figures of one run.
#[derive(Debug, Clone, Copy)]
struct Figures {
    /// From the switch to 200 until every id arrived and the depth read 0.
    drain_s: f64,
    /// From the switch to the first 200.
    first_s: f64,
    /// Written from the start until all 10,000 were queued; then while refused.
    queue: Io,
    refused: Io,
    drain: Io,
    total: Io,
    /// Ticks done during the drain, and the longest gap between two of them.
    ticks: usize,
    max_gap_s: f64,
    /// The longest gap between two ticks over the whole run, the first commit included.
    run_gap_s: f64,
    hwm_kib: u64,
    /// RSS once all 10,000 were queued.
    rss_queued_kib: u64,
    posts: usize,
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_once(bin: &Path, parent: &Path, retry_max_s: u64, run: usize) -> Figures {
    let dir = tempfile::Builder::new()
        .prefix("watchdog-drain-")
        .tempdir_in(parent)
        .expect("a fresh directory under the bench parent");
    let root = dir.path().join("proc");
    let state = dir.path().join("state");
    fake_proc(&root, EVENTS).expect("write the fake /proc");
    let receiver = Receiver::start();
    let vars = [
        ("WATCHDOG_PROC_ENABLED", "true".to_string()),
        ("WATCHDOG_PROC_ROOT", root.display().to_string()),
        ("WATCHDOG_STATE_DIR", state.display().to_string()),
        ("WATCHDOG_INTERVAL_S", INTERVAL_S.to_string()),
        ("WATCHDOG_RETRY_MAX_S", retry_max_s.to_string()),
        ("WATCHDOG_WEBHOOK_URL", receiver.url.clone()),
        ("WATCHDOG_LISTEN", "127.0.0.1:0".to_string()),
        ("WATCHDOG_LOG_FORMAT", "json".to_string()),
        ("WATCHDOG_LOG", log_filter()),
    ];
    if run == 0 {
        let shown: Vec<String> = vars
            .iter()
            .map(|(k, v)| {
                if *k == "WATCHDOG_LOG" {
                    format!("{k}='{v}'")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        println!("daemon: env -i {} {} run", shown.join(" "), bin.display());
    }
    let mut child = Command::new(bin)
        .arg("run")
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the daemon starts");
    let log = follow(&mut child);
    let daemon = Killed(child);
    let pid = daemon.0.id();
    let port = wait_for("serving /metrics line", Duration::from_secs(30), || {
        log.lock().unwrap().port
    });

    // Every event decided, committed and queued, and refused at least once.
    let queued = Instant::now();
    wait_for("full outbox", Duration::from_secs(120), || {
        (outbox_depth(port) == Some(EVENTS as u64) && receiver.refused.load(Ordering::Relaxed) > 0)
            .then_some(())
    });
    let queued_s = queued.elapsed().as_secs_f64();
    let at_queued = io(pid);
    let rss_queued_kib = status_kib(pid, "VmRSS:");
    // Ticks of the steady state under refusal: 10,000 entities within their cooldown, every
    // event retried and refused.
    std::thread::sleep(Duration::from_secs(REFUSE_S));

    let strace = std::env::var_os("WATCHDOG_BENCH_STRACE").map(|out| attach_strace(pid, &out, run));
    let before = io(pid);
    let switched_unix = now_unix();
    let switched = Instant::now();
    receiver.accept.store(true, Ordering::SeqCst);
    let depth_zero = wait_for("drained outbox", DRAIN_LIMIT, || {
        let all = receiver.seen.lock().unwrap().all.is_some();
        (all && outbox_depth(port) == Some(0)).then(Instant::now)
    });
    let drain_s = depth_zero.duration_since(switched).as_secs_f64();
    let drain_end_unix = switched_unix + drain_s;
    let after = io(pid);
    if let Some(strace) = strace {
        detach_strace(strace);
    }
    // One more batch time and a tick, so the last marks are committed in the total.
    std::thread::sleep(Duration::from_millis(1500));
    let total = io(pid);
    let hwm_kib = status_kib(pid, "VmHWM:");
    let first_s = receiver
        .seen
        .lock()
        .unwrap()
        .first_ok
        .map_or(f64::NAN, |t| t.duration_since(switched).as_secs_f64());

    let log = log.lock().unwrap();
    // Ticks around the drain: the last one before the switch, those within it, and the first
    // one after, so a tick held up at either edge still shows as a long gap.
    let mut window: Vec<f64> = Vec::new();
    if let Some(last_before) = log.ticks.iter().rev().find(|t| **t < switched_unix) {
        window.push(*last_before);
    }
    window.extend(
        log.ticks
            .iter()
            .filter(|t| **t >= switched_unix && **t <= drain_end_unix),
    );
    if let Some(first_after) = log.ticks.iter().find(|t| **t > drain_end_unix) {
        window.push(*first_after);
    }
    let longest = |ticks: &[f64]| ticks.windows(2).map(|w| w[1] - w[0]).fold(0.0f64, f64::max);
    let max_gap_s = longest(&window);
    let run_gap_s = longest(&log.ticks);
    if std::env::var_os("WATCHDOG_BENCH_TICKS").is_some() {
        let near: Vec<String> = log
            .ticks
            .iter()
            .filter(|t| **t > switched_unix - 5.0 && **t < drain_end_unix + 5.0)
            .map(|t| format!("{:+.2}", t - switched_unix))
            .collect();
        println!(
            "  ticks done, seconds from the switch (drain ends at {drain_s:+.2}): {}",
            near.join(" ")
        );
    }
    for error in &log.errors {
        println!("  daemon ERROR: {error}");
    }
    let figures = Figures {
        drain_s,
        first_s,
        queue: at_queued,
        refused: Io {
            wchar: before.wchar - at_queued.wchar,
            write_bytes: before.write_bytes - at_queued.write_bytes,
        },
        drain: Io {
            wchar: after.wchar - before.wchar,
            write_bytes: after.write_bytes - before.write_bytes,
        },
        total,
        ticks: window.len().saturating_sub(2),
        max_gap_s,
        run_gap_s,
        hwm_kib,
        rss_queued_kib,
        posts: receiver.posts.load(Ordering::Relaxed),
    };
    println!(
        "run {}: queued in {queued_s:.1} s (write_bytes {:.1} MB, wchar {:.1} MB); refused \
         for {REFUSE_S} s (write_bytes {:.1} MB, wchar {:.1} MB); drain {:.2} s (first 200 after {:.2} s); drained: \
         write_bytes {:.1} MB, wchar {:.1} MB; total: write_bytes {:.1} MB, wchar {:.1} MB; \
         {} ticks in the drain, longest gap {:.2} s ({:.2} s over the whole run); peak RSS {:.1} MiB (RSS {:.1} MiB when queued); {} posts ({} refused)",
        run + 1,
        mb(figures.queue.write_bytes),
        mb(figures.queue.wchar),
        mb(figures.refused.write_bytes),
        mb(figures.refused.wchar),
        figures.drain_s,
        figures.first_s,
        mb(figures.drain.write_bytes),
        mb(figures.drain.wchar),
        mb(figures.total.write_bytes),
        mb(figures.total.wchar),
        figures.ticks,
        figures.max_gap_s,
        figures.run_gap_s,
        figures.hwm_kib as f64 / 1024.0,
        figures.rss_queued_kib as f64 / 1024.0,
        figures.posts,
        receiver.refused.load(Ordering::Relaxed),
    );
    drop(daemon);
    if std::env::var_os("WATCHDOG_BENCH_KEEP").is_some() {
        println!("  kept {}", dir.keep().display());
    }
    figures
}

/// `strace -c` of the daemon's writes and syncs, attached for the drain only: its summary goes
/// to `<out>.<run>`.
fn attach_strace(pid: u32, out: &std::ffi::OsStr, run: usize) -> Child {
    let mut path = out.to_owned();
    path.push(format!(".{}", run + 1));
    let child = Command::new("strace")
        .args([
            "-f",
            "-c",
            "-e",
            "trace=write,pwrite64,writev,fsync,fdatasync",
            "-p",
        ])
        .arg(pid.to_string())
        .arg("-o")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("strace runs");
    // strace attaches to every thread before the drain starts.
    std::thread::sleep(Duration::from_millis(500));
    println!("  strace -c of the drain: {}", Path::new(&path).display());
    child
}

fn detach_strace(mut strace: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status();
    let _ = strace.wait();
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken.
    let runs: usize = std::env::var("WATCHDOG_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(3);
    let parent = std::env::var_os("WATCHDOG_BENCH_DIR")
        .map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from);
    if let Err(reason) = refuse_tmpfs(&parent) {
        eprintln!("drain bench refused: {reason}");
        std::process::exit(2);
    }
    // Built by cargo for this bench with the bench profile (it inherits `release`).
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_watchdog"));
    let retry_max_s: u64 = std::env::var("WATCHDOG_BENCH_RETRY_MAX_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(RETRY_MAX_S);
    println!(
        "machine: {} cores, {}; state under {} (not tmpfs)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        parent.display()
    );
    println!("binary: {}", bin.display());
    println!(
        "{EVENTS} fires queued against 503, then 200; WATCHDOG_INTERVAL_S={INTERVAL_S}, \
         WATCHDOG_RETRY_MAX_S={retry_max_s}; refused for {REFUSE_S} s once all are queued; {runs} runs"
    );
    let all: Vec<Figures> = (0..runs)
        .map(|run| run_once(&bin, &parent, retry_max_s, run))
        .collect();
    let med = |f: fn(&Figures) -> f64| median(all.iter().map(f).collect());
    let drain_s = med(|f| f.drain_s);
    let written = med(|f| f.drain.write_bytes as f64);
    let gap = med(|f| f.max_gap_s);
    let worst_gap = all.iter().map(|f| f.max_gap_s).fold(0.0, f64::max);
    println!(
        "median of {runs}: drain {drain_s:.2} s (target < {TARGET_DRAIN_S} s: {}), drain \
         write_bytes {:.1} MB (target < {} MB: {}), wchar {:.1} MB; total write_bytes {:.1} MB, \
         wchar {:.1} MB; longest tick gap {gap:.2} s (worst {worst_gap:.2} s; no tick later than \
         one interval: {}); peak RSS {:.1} MiB",
        if drain_s < TARGET_DRAIN_S {
            "met"
        } else {
            "MISSED"
        },
        written / 1e6,
        TARGET_WRITE_BYTES / 1_000_000,
        if written < TARGET_WRITE_BYTES as f64 {
            "met"
        } else {
            "MISSED"
        },
        med(|f| f.drain.wchar as f64) / 1e6,
        med(|f| f.total.write_bytes as f64) / 1e6,
        med(|f| f.total.wchar as f64) / 1e6,
        if worst_gap <= 2.0 * INTERVAL_S as f64 {
            "met"
        } else {
            "MISSED"
        },
        med(|f| f.hwm_kib as f64) / 1024.0,
    );
}
