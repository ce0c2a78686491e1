//! The proc collector and signal builder on this machine's live /proc, against real processes
//! this test spawns, orphans and kills.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use watchdog::config::GroupBy;
use watchdog::model::ProcFacts;
use watchdog::model::{Facts, ProcMemory, Signal};
use watchdog::signals::proc::{build, ProcRules, REAPERS};
use watchdog_collectors::pattern::PatternSet;
use watchdog_collectors::proc::{ProcCollector, ProcConfig};

/// Kills a process group when dropped, so a failing assert leaves nothing behind.
struct GroupGuard(u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .status();
    }
}

/// Starts `sh -c '...; sleep 300; :' <marker>` from a parent shell that exits at once, so the
/// matching shell is orphaned. `setsid` puts it in a process group of its own; without it, it
/// stays in the dead parent's group. Returns (parent pid, orphan pid).
///
/// The orphan prints its own pid once it runs (after `setsid` and `exec`), then lets go of the
/// pipe; reading the pipe to its end is what waits for it to be in place.
fn spawn_orphan(marker: &str, setsid: bool) -> (u32, u32) {
    let launcher = if setsid { "setsid " } else { "" };
    let script = format!(
        "{launcher}sh -c 'echo $$; exec >/dev/null 2>&1 </dev/null; sleep 300; :' {marker} &"
    );
    let child = Command::new("sh")
        .args(["-c", &script])
        .process_group(0)
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh runs");
    let parent = child.id();
    // The parent (the group leader) exits and is reaped here.
    let output = child.wait_with_output().expect("sh runs");
    assert!(output.status.success(), "{output:?}");
    let orphan = String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (parent, orphan)
}

/// The signal of `pid` from a scan of the live /proc for `marker`. A child the orphan is
/// forking carries the same command line until it execs, so other matches may come and go.
fn scan_for(marker: &str, pid: u32) -> Signal {
    let collector = ProcCollector::new(ProcConfig::with_system_units(
        PathBuf::from("/proc"),
        PatternSet::parse(marker).unwrap(),
        PatternSet::default(),
    ));
    let scan = collector.scan().expect("the live /proc can be scanned");
    let signals = build(
        &scan,
        &ProcMemory::default(),
        &ProcRules {
            age_threshold_s: 3600,
            group_by: GroupBy::Pid,
        },
    )
    .signals;
    signals
        .iter()
        .find(|s| facts(s).pid == pid)
        .unwrap_or_else(|| panic!("pid {pid} not found among {signals:?}"))
        .clone()
}

fn facts(signal: &Signal) -> &ProcFacts {
    match &signal.facts {
        Facts::Proc(facts) => facts,
        other => panic!("not proc facts: {other:?}"),
    }
}

/// The comm of a live process, from its stat.
fn comm(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/stat")).unwrap();
    watchdog_collectors::proc::parse_stat(&raw).unwrap().comm
}

#[test]
fn an_orphan_whose_group_leader_died_is_found_and_orphaned() {
    let marker = format!("pytest-watchdog-live-{}-a", std::process::id());
    let (parent, orphan) = spawn_orphan(&marker, false);
    let _guard = GroupGuard(parent);
    let signal = scan_for(&marker, orphan);
    let f = facts(&signal);
    assert_eq!(f.pgid, parent, "it stayed in its dead parent's group");
    assert_ne!(f.ppid, parent, "its parent is gone: it was re-parented");
    assert!(f.orphaned, "the leader of its process group is gone: {f:?}");
    assert!(f.cmdline.contains(&marker), "{}", f.cmdline);
    assert!(f.age_s < 600, "just started: {}", f.age_s);
    assert!(!signal.active);
    assert!(signal.entity.starts_with(&format!("proc:{orphan}:")));
}

#[test]
fn an_orphan_adopted_by_init_or_a_reaper_is_orphaned() {
    let marker = format!("pytest-watchdog-live-{}-b", std::process::id());
    let (parent, orphan) = spawn_orphan(&marker, true);
    let _guard = GroupGuard(orphan);
    let signal = scan_for(&marker, orphan);
    let f = facts(&signal);
    assert_eq!(f.pgid, orphan, "setsid made it its own group's leader");
    assert_ne!(f.ppid, parent, "its parent is gone: it was re-parented");
    let adopter = f.ppid;
    let adopter_comm = comm(adopter);
    assert_eq!(f.parent.as_deref(), Some(adopter_comm.as_str()));
    // Whoever adopted it, the verdict follows who that is: pid 1 or a known reaper make an
    // orphan; a subreaper of some other name (a test harness, say) is not one we know.
    let by_reaper = adopter == 1 || REAPERS.contains(&adopter_comm.as_str());
    assert_eq!(
        f.orphaned, by_reaper,
        "adopted by {adopter} ({adopter_comm})"
    );
}
