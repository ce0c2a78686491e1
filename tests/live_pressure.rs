//! The pressure collector end to end on this machine: real busy loops raise real CPU pressure,
//! and `watchdog once --json --check` sees `pressure:cpu` fire with the busy pids first in `top`.
//!
//! The threshold is set at its least (0.1 %, and a load of 1 % per CPU where PSI is absent), so
//! the test does not wait for PSI's slow one- and five-minute averages to climb on a 2-core
//! machine; what it proves is that real contention reaches the alert and that the processes
//! causing it are the ones named. Each busy process spins on two threads, so on a machine
//! shared with other work the busy ones still use the most CPU. Nothing sleeps to synchronise:
//! it runs `once` (which itself samples for 1 s) until the condition holds or a deadline passes.

use std::collections::BTreeSet;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Set in a busy child: how many threads it spins on.
const BUSY_CHILD: &str = "WATCHDOG_LIVE_BUSY_THREADS";
const BUSY_PROCESSES: usize = 4;
const THREADS_EACH: usize = 2;
const DEADLINE: Duration = Duration::from_secs(90);

/// In a busy child (this test binary re-run with [`BUSY_CHILD`] set), spins until killed.
fn spin_if_busy_child() {
    let Ok(threads) = std::env::var(BUSY_CHILD) else {
        return;
    };
    let threads: usize = threads.parse().unwrap_or(1);
    let spinners: Vec<_> = (1..threads).map(|_| std::thread::spawn(spin)).collect();
    spin();
    drop(spinners);
}

fn spin() {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Kills and reaps the busy children when dropped, pass or fail.
struct Busy(Vec<Child>);

impl Busy {
    fn start() -> Self {
        let exe = std::env::current_exe().expect("the test binary's path");
        let children = (0..BUSY_PROCESSES)
            .map(|_| {
                Command::new(&exe)
                    .args(["--exact", "busy_loops_fire_cpu_pressure_and_lead_the_top"])
                    .args(["--test-threads", "1", "--nocapture"])
                    .env(BUSY_CHILD, THREADS_EACH.to_string())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("the test binary runs again as a busy child")
            })
            .collect();
        Self(children)
    }

    fn pids(&self) -> BTreeSet<u64> {
        self.0.iter().map(|c| u64::from(c.id())).collect()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn once() -> Output {
    Command::new(env!("CARGO_BIN_EXE_watchdog"))
        .args(["once", "--json", "--check"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("WATCHDOG_PRESSURE_ENABLED", "true")
        .env("WATCHDOG_PRESSURE_CPU_PCT", "0.1")
        .env("WATCHDOG_PRESSURE_LOAD_PCT", "1")
        .env("WATCHDOG_PRESSURE_FOR_S", "0")
        .env("WATCHDOG_PRESSURE_TOP", "10")
        .env("WATCHDOG_HOST", "live")
        .output()
        .expect("the watchdog binary runs")
}

/// What one `once` saw of `pressure:cpu`: whether it was active, and the top pids in order.
fn cpu_pressure(output: &Output) -> Option<(bool, Vec<u64>, serde_json::Value)> {
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    let cpu = report["signals"]
        .as_array()?
        .iter()
        .find(|s| s["entity"] == "pressure:cpu")?
        .clone();
    let top = cpu["facts"]["top"]
        .as_array()?
        .iter()
        .filter_map(|t| t["pid"].as_u64())
        .collect();
    Some((cpu["active"] == true, top, cpu))
}

#[test]
fn busy_loops_fire_cpu_pressure_and_lead_the_top() {
    spin_if_busy_child();
    let busy = Busy::start();
    let pids = busy.pids();
    let started = Instant::now();
    let mut last = None;
    let (output, cpu) = loop {
        let output = once();
        if let Some((active, top, cpu)) = cpu_pressure(&output) {
            let first: BTreeSet<u64> = top.iter().take(BUSY_PROCESSES).copied().collect();
            if active && first == pids {
                break (output, cpu);
            }
            last = Some(cpu);
        }
        assert!(
            started.elapsed() < DEADLINE,
            "within {DEADLINE:?}, pressure:cpu never fired with the busy pids {pids:?} first; \
             the last pressure:cpu seen: {last:#?}; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    assert_eq!(
        output.status.code(),
        Some(1),
        "once --check: host_pressure is active"
    );
    let facts = &cpu["facts"];
    assert_eq!(cpu["kind"], "host_pressure");
    assert_eq!(facts["top_status"], "sampled");
    assert!(
        facts["source"] == "psi" || facts["source"] == "loadavg",
        "{facts}"
    );
    for entry in facts["top"].as_array().unwrap().iter().take(BUSY_PROCESSES) {
        let cpu_pct = entry["cpu_pct"].as_f64().unwrap();
        assert!(cpu_pct > 0.0, "a busy loop used CPU: {entry}");
        assert_eq!(
            entry["entity"],
            serde_json::Value::Null,
            "no proc collector here"
        );
        assert!(
            entry["cmdline"]
                .as_str()
                .unwrap()
                .contains("busy_loops_fire_cpu_pressure"),
            "{entry}"
        );
    }
}
