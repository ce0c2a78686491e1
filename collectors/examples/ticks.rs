//! `cargo run --release --example ticks -- <root> <pattern> <ticks> [fresh]`: drives ticks of
//! one proc collector (or a fresh one per tick) and prints each tick's time and what it found.
//! A profiling aid: `perf record` it, or `strace -c` it.

use std::path::PathBuf;
use std::time::Instant;

use watchdog_collectors::pattern::PatternSet;
use watchdog_collectors::proc::{ProcCollector, ProcConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(root), Some(pattern), Some(ticks)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: ticks <root> <pattern> <ticks> [fresh]");
        std::process::exit(2);
    };
    let ticks: usize = ticks.parse().unwrap_or(10);
    let fresh = args.get(4).is_some_and(|a| a == "fresh");
    let rescan: u32 = std::env::var("RESCAN")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let make = || {
        let patterns = PatternSet::parse(pattern).unwrap_or_default();
        ProcCollector::new(ProcConfig {
            rescan_ticks: rescan,
            keep_open: 1024,
            ..ProcConfig::with_system_units(PathBuf::from(root), patterns, PatternSet::default())
        })
    };
    let kept = make();
    let mut took = Vec::new();
    let mut found = 0;
    for _ in 0..ticks {
        let start = Instant::now();
        let scan = if fresh { make().scan() } else { kept.scan() };
        took.push(start.elapsed());
        match scan {
            Ok(scan) => found = scan.processes.len(),
            Err(e) => eprintln!("scan failed: {e}"),
        }
    }
    took.sort();
    println!(
        "{ticks} ticks, {found} matching; median {:.2} ms",
        took[took.len() / 2].as_secs_f64() * 1000.0
    );
}
