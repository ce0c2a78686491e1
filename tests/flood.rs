//! No flood: `watchdog run` under `prlimit --nofile=1024:1024` (so raising its soft limit to
//! the hard one cannot hide anything) with 2,000 idle connections opened to its endpoint on
//! loopback and held. Meanwhile every `/healthz` probe is answered within 1 s, the daemon uses
//! under a quarter of a core, and no collection fails for lack of descriptors.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{copy_tree, Daemon};

const CONNECTIONS: usize = 2000;
/// The kubelet's default probe timeout.
const PROBE_LIMIT: Duration = Duration::from_secs(1);

/// Raises this test process's own soft open-file limit, so that it can hold the connections.
fn raise_own_limit(needed: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    assert!(
        limit.maximum.is_none_or(|hard| hard >= needed),
        "this test needs {needed} descriptors; the hard limit is {:?}",
        limit.maximum
    );
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )
    .expect("raise the soft open-file limit to the hard one");
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the daemon runs");
    let after_comm = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of the line; the state (field 3) is the first after the comm.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// One `GET path` with every step inside `limit`: (status, body, how long it took).
fn get_within(
    addr: SocketAddr,
    path: &str,
    limit: Duration,
) -> Result<(u16, String, Duration), String> {
    let started = Instant::now();
    let left = || {
        limit
            .checked_sub(started.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no answer within {limit:?}"))
    };
    let mut stream = TcpStream::connect_timeout(&addr, left()?).map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        stream
            .set_read_timeout(Some(left()?))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("{e} after {:?}", started.elapsed())),
        }
    }
    let took = started.elapsed();
    let raw = String::from_utf8_lossy(&raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {raw:?}"))?;
    let body = raw
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body, took))
}

#[test]
fn two_thousand_idle_connections_leave_probes_cpu_and_collections_alone_under_1024_fds() {
    raise_own_limit(CONNECTIONS as u64 + 256);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proc");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proc/orphaned_pytest"),
        &root,
    );
    let mut command = Command::new("prlimit");
    command.args([
        "--nofile=1024:1024",
        "--",
        env!("CARGO_BIN_EXE_watchdog"),
        "run",
    ]);
    let daemon = Daemon::spawn(
        &mut command,
        &[
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("WATCHDOG_PROC_ENABLED", "true".into()),
            ("WATCHDOG_PROC_ROOT", root.display().to_string()),
            (
                "WATCHDOG_STATE_DIR",
                dir.path().join("state").display().to_string(),
            ),
            ("WATCHDOG_INTERVAL_S", "1".into()),
            ("WATCHDOG_LISTEN", "127.0.0.1:0".into()),
            ("WATCHDOG_LOG", "watchdog=debug".into()),
        ],
    );
    let addr: SocketAddr = ([127, 0, 0, 1], daemon.port()).into();
    daemon.logs.ticks(1);

    let pid = daemon.pid();
    let (cpu_before, window) = (cpu_ticks(pid), Instant::now());
    // The flood: connections that never send a byte, opened as fast as they are taken.
    let mut idle = Vec::with_capacity(CONNECTIONS);
    let opening = Instant::now();
    while idle.len() < CONNECTIONS && opening.elapsed() < Duration::from_secs(30) {
        if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            idle.push(stream);
        }
    }
    let opened = opening.elapsed();
    assert_eq!(idle.len(), CONNECTIONS, "every connection was taken");

    for probe in 0..6 {
        let (status, body, took) = get_within(addr, "/healthz", PROBE_LIMIT)
            .unwrap_or_else(|e| panic!("probe {probe} while flooded: {e}"));
        assert_eq!((status, body.as_str()), (200, "ok\n"), "probe {probe}");
        assert!(took < PROBE_LIMIT, "probe {probe} took {took:?}");
        daemon.logs.ticks(1);
    }
    let used_s =
        (cpu_ticks(pid) - cpu_before) as f64 / watchdog_collectors::proc::ticks_per_second() as f64;
    let share = used_s / window.elapsed().as_secs_f64();
    assert!(
        share < 0.25,
        "the daemon used {share:.2} of a core while flooded (opening took {opened:?})"
    );

    let (status, metrics, _) = get_within(addr, "/metrics", Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("/metrics while flooded: {e}"));
    assert_eq!(status, 200);
    let runs = |outcome: &str| -> f64 {
        let prefix =
            format!("watchdog_collector_runs_total{{collector=\"proc\",outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0.0, |value| value.trim().parse().unwrap())
    };
    assert!(runs("ok") >= 6.0, "{metrics}");
    assert_eq!(runs("failed"), 0.0, "a collection failed while flooded");
    let failures: Vec<String> = daemon
        .logs
        .pending()
        .into_iter()
        .filter(|line| line.contains("collection failed") || line.contains("cannot save"))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    drop(idle);
}
