//! Churn on the live /proc: a helper spawns and reaps short processes (a fixed number, one at
//! a time, so it does not starve the rest of the suite on 2 cores) while the collector scans
//! again and again. Every scan must succeed: a pid that vanishes mid-scan is skipped and
//! counted, never an error, never a panic.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use watchdog_collectors::pattern::PatternSet;
use watchdog_collectors::proc::{ProcCollector, ProcConfig};

const SPAWNS: usize = 2000;

#[test]
fn scans_of_a_churning_proc_never_fail() {
    let marker = format!("churn-{}", std::process::id());
    let done = Arc::new(AtomicBool::new(false));
    let spawner = {
        let (marker, done) = (marker.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            for _ in 0..SPAWNS {
                // Its argv holds the marker, so a scan reads its stat too: two chances to race.
                let status = Command::new("sh")
                    .args(["-c", ":", &marker])
                    .stdout(Stdio::null())
                    .status()
                    .expect("sh runs");
                assert!(status.success());
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let collector = ProcCollector::new(ProcConfig::with_system_units(
        PathBuf::from("/proc"),
        PatternSet::parse(&marker).unwrap(),
        PatternSet::default(),
    ));
    let (mut scans, mut vanished, mut seen) = (0u64, 0u64, 0u64);
    while !done.load(Ordering::SeqCst) || scans < 10 {
        let scan = collector
            .scan()
            .unwrap_or_else(|e| panic!("scan {scans} failed under churn: {e}"));
        scans += 1;
        vanished += scan.vanished;
        seen += scan.processes.len() as u64;
        for process in &scan.processes {
            assert!(process.cmdline.contains(&marker), "{process:?}");
            assert!(process.pid > 0 && !process.comm.is_empty(), "{process:?}");
        }
    }
    spawner.join().expect("the spawner finished");
    println!("{scans} scans under {SPAWNS} spawns: {seen} short processes caught, {vanished} vanished mid-scan");
    assert!(scans >= 10);
}
