//! A running daemon creates no thread between ticks, even at an interval longer than the 10 s
//! an idle tokio blocking thread lives by default: each tick's collections and commit find the
//! threads the last tick used. A thread created is a task the kernel counts, and the proc
//! collector lists /proc again whenever that count moves, so a daemon that made threads every
//! tick would make every one of its own ticks a full listing.

mod common;

use std::collections::BTreeSet;
use std::fs;

use common::Daemon;

/// The daemon's threads, by tid.
fn threads(pid: u32) -> BTreeSet<u32> {
    fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the daemon runs")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

#[test]
fn a_steady_daemon_creates_no_thread_between_ticks_at_an_interval_over_ten_seconds() {
    let state = tempfile::tempdir().unwrap();
    let daemon = Daemon::run(&[
        ("WATCHDOG_PROC_ENABLED", "true".into()),
        ("WATCHDOG_PRESSURE_ENABLED", "true".into()),
        ("WATCHDOG_INTERVAL_S", "11".into()),
        ("WATCHDOG_STATE_DIR", state.path().display().to_string()),
        ("WATCHDOG_LISTEN", "127.0.0.1:0".into()),
        ("WATCHDOG_LOG", "debug".into()),
    ]);
    // The first tick, at start, and the second, 11 s later: both have made their threads.
    daemon.logs.ticks(2);
    let before = threads(daemon.pid());
    daemon.logs.ticks(1);
    let after = threads(daemon.pid());
    assert_eq!(
        before, after,
        "threads were created or ended between ticks 2 and 3"
    );
    daemon.stop();
}
