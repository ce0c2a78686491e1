//! The `proc_blocking` signal builder.
//!
//! Turns one proc scan into one signal per entity: a process group of matching processes
//! (`WATCHDOG_PROC_GROUP_BY=pgid`) or a single process (`pid`). The entity is named after the
//! group's oldest matching process, `proc:<pid>:<start ticks>`, so a reused pid is a new entity.
//! It is active when that process is strictly older than the threshold.
//!
//! A process that cannot be read has no known pgid, so a group read in part would be named
//! after another member and fire under that name. A group is therefore held whole, with no
//! signal, while the process whose pid is its pgid, or any of its members of the last tick
//! (remembered in [`ProcMemory`]), cannot be read.

use std::collections::{BTreeMap, BTreeSet};

use watchdog_collectors::proc::{ProcScan, ProcessInfo};

use super::container_facts;
use crate::model::{Facts, Kind, ProcFacts, ProcMemory, Signal, Stop};

/// Parents whose adopted children have lost the process that started them: one list, kept
/// with the collectors, which judge `orphaned` for pressure's top consumers by it too.
pub use watchdog_collectors::pressure::REAPERS;

/// How matching processes become entities (`WATCHDOG_PROC_GROUP_BY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// One signal per process group: a shell and its pytest, or its xdist workers, are one alert.
    Pgid,
    /// One signal per process.
    Pid,
}

/// Thresholds the builder applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcRules {
    /// A process older than this, in seconds, is stuck.
    pub age_threshold_s: u64,
    pub group_by: GroupBy,
}

/// The result of one build.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Built {
    pub signals: Vec<Signal>,
    /// Entity id prefixes (`proc:<pid>`) the engine must hold: unreadable processes, and every
    /// pid a half-read group's entity may be named after.
    pub held: Vec<String>,
    /// The members of each group, for the next tick (empty with pid grouping).
    pub memory: ProcMemory,
}

/// Builds one `proc_blocking` signal per entity of `scan`; `previous` is the memory of the
/// last tick that saw the process list.
pub fn build(scan: &ProcScan, previous: &ProcMemory, rules: &ProcRules) -> Built {
    let unreadable: BTreeSet<u32> = scan.unreadable.iter().copied().collect();
    let mut built = Built {
        held: unreadable.iter().map(|pid| held(*pid)).collect(),
        ..Built::default()
    };
    let mut groups: BTreeMap<u32, Vec<&ProcessInfo>> = BTreeMap::new();
    for process in &scan.processes {
        let key = match rules.group_by {
            GroupBy::Pgid => process.pgid,
            GroupBy::Pid => process.pid,
        };
        groups.entry(key).or_default().push(process);
    }
    if rules.group_by == GroupBy::Pid {
        // One process per entity: an unreadable one is held by its own pid above.
        built.signals = groups
            .into_values()
            .map(|members| signal(&members, scan.ticks_per_second, rules))
            .collect();
        return built;
    }
    let pgids: BTreeSet<u32> = groups
        .keys()
        .chain(previous.groups.keys())
        .copied()
        .collect();
    for pgid in pgids {
        let mut members = groups.remove(&pgid).unwrap_or_default();
        let before = previous.groups.get(&pgid).map_or(&[][..], Vec::as_slice);
        let pids = members.iter().map(|p| p.pid);
        // Its leader, or one of its members of the last tick, may be in it or not: unknown.
        let half_read = unreadable.contains(&pgid) || before.iter().any(|p| unreadable.contains(p));
        if half_read {
            // Whatever pid its entity is named after is held, and no signal names another.
            let known: BTreeSet<u32> = before.iter().copied().chain(pids).collect();
            built
                .held
                .extend(known.iter().chain([&pgid]).map(|pid| held(*pid)));
            built
                .memory
                .groups
                .insert(pgid, known.into_iter().collect());
            continue;
        }
        if members.is_empty() {
            // Gone whole: nothing to remember.
            continue;
        }
        members.sort_by_key(|p| (p.start_ticks, p.pid));
        let mut remembered: Vec<u32> = members.iter().map(|p| p.pid).collect();
        remembered.sort_unstable();
        built.memory.groups.insert(pgid, remembered);
        built
            .signals
            .push(signal(&members, scan.ticks_per_second, rules));
    }
    built.held.sort_unstable();
    built.held.dedup();
    built
}

/// The prefix that holds every entity named after `pid`.
fn held(pid: u32) -> String {
    format!("proc:{pid}")
}

/// The signal of one group; `members` is non-empty and sorted oldest first.
fn signal(members: &[&ProcessInfo], ticks_per_second: u64, rules: &ProcRules) -> Signal {
    let oldest = members[0];
    let cpu = |p: &ProcessInfo| cpu_pct(p.cpu_ticks, ticks_per_second, p.age_s);
    let grouped = rules.group_by == GroupBy::Pgid;
    let members_pids: Vec<u32> = members.iter().map(|p| p.pid).collect();
    // A group kill is safe only when the group is the stuck work's own: its leader is one of
    // the matched processes, or gone. Otherwise (pytest in its orchestrator's group, pgid 0
    // or 1) it would take down what started it, so name the pids instead.
    let group_is_its_own =
        oldest.pgid > 1 && (members_pids.contains(&oldest.pgid) || !oldest.group_leader_alive);
    let stop = if group_is_its_own {
        Stop::Group(oldest.pgid)
    } else {
        Stop::Pids(members_pids.clone())
    };
    let facts = ProcFacts {
        pid: oldest.pid,
        ppid: oldest.ppid,
        pgid: oldest.pgid,
        session: oldest.session,
        state: oldest.state,
        comm: oldest.comm.clone(),
        age_s: oldest.age_s,
        cmdline: oldest.cmdline.clone(),
        // Any orphan makes the group's work ownerless, whichever member it is.
        orphaned: members.iter().any(|p| is_orphaned(p)),
        adopted: is_adopted(oldest),
        parent: oldest.parent_comm.clone(),
        group_leader_alive: oldest.group_leader_alive,
        cpu_pct: round1(cpu(oldest)),
        rss_bytes: oldest.rss_bytes,
        members: grouped.then_some(members_pids),
        group_cpu_pct: grouped.then(|| round1(members.iter().map(|p| cpu(p)).sum())),
        group_rss_bytes: grouped.then(|| members.iter().map(|p| p.rss_bytes).sum()),
        stop,
        container: oldest.container.as_ref().map(container_facts),
    };
    Signal {
        kind: Kind::ProcBlocking,
        entity: format!("proc:{}:{}", oldest.pid, oldest.start_ticks),
        active: oldest.age_s > rules.age_threshold_s,
        facts: Facts::Proc(facts),
    }
}

/// Whether nothing that started `process` is left to wait for it: it was adopted by pid 1 or a
/// reaper, or the leader of its process group (what an agent killed mid-run leaves) is gone.
pub fn is_orphaned(process: &ProcessInfo) -> bool {
    is_adopted(process) || !process.group_leader_alive
}

/// Its parent is pid 1 or a reaper: whoever started it is gone, and nothing waits for it.
pub fn is_adopted(process: &ProcessInfo) -> bool {
    process.ppid == 1
        || process
            .parent_comm
            .as_deref()
            .is_some_and(|comm| REAPERS.contains(&comm))
}

/// Lifetime CPU use in percent of one core.
fn cpu_pct(cpu_ticks: u64, ticks_per_second: u64, age_s: u64) -> f64 {
    if age_s == 0 || ticks_per_second == 0 {
        return 0.0;
    }
    cpu_ticks as f64 / ticks_per_second as f64 / age_s as f64 * 100.0
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: u32, pgid: u32, age_s: u64) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid: 10,
            pgid,
            session: pgid,
            state: 'S',
            start_ticks: (100_000 - age_s) * 100,
            age_s,
            cpu_ticks: 0,
            rss_bytes: 4096,
            comm: "pytest".into(),
            cmdline: format!("pytest {pid}"),
            parent_comm: Some("python3".into()),
            group_leader_alive: true,
            container: None,
        }
    }

    fn scan(processes: Vec<ProcessInfo>) -> ProcScan {
        ProcScan {
            uptime_s: 100_000.0,
            ticks_per_second: 100,
            processes,
            ..ProcScan::default()
        }
    }

    /// The signals of a scan with nothing remembered.
    fn signals(scan: &ProcScan, rules: &ProcRules) -> Vec<Signal> {
        build(scan, &ProcMemory::default(), rules).signals
    }

    fn facts(signal: &Signal) -> &ProcFacts {
        match &signal.facts {
            Facts::Proc(facts) => facts,
            other => panic!("not proc facts: {other:?}"),
        }
    }

    const PGID: ProcRules = ProcRules {
        age_threshold_s: 3600,
        group_by: GroupBy::Pgid,
    };
    const PID: ProcRules = ProcRules {
        age_threshold_s: 3600,
        group_by: GroupBy::Pid,
    };

    #[test]
    fn active_iff_strictly_older_than_the_threshold() {
        for (age_s, active) in [(3599, false), (3600, false), (3601, true)] {
            let signals = signals(&scan(vec![process(7, 7, age_s)]), &PGID);
            assert_eq!(signals[0].active, active, "age {age_s}");
        }
    }

    #[test]
    fn a_group_is_one_entity_named_after_its_oldest_member() {
        let signals = signals(
            &scan(vec![
                process(101, 100, 500),
                process(100, 100, 4000),
                process(102, 100, 400),
            ]),
            &PGID,
        );
        assert_eq!(signals.len(), 1);
        assert_eq!(
            signals[0].entity,
            format!("proc:100:{}", (100_000 - 4000) * 100)
        );
        assert!(
            signals[0].active,
            "the group is as old as its oldest member"
        );
        let facts = facts(&signals[0]);
        assert_eq!(facts.members, Some(vec![100, 101, 102]));
        assert_eq!(facts.group_rss_bytes, Some(3 * 4096));
    }

    #[test]
    fn pid_grouping_gives_one_entity_per_process_without_group_facts() {
        let signals = signals(
            &scan(vec![process(100, 100, 4000), process(101, 100, 5)]),
            &PID,
        );
        assert_eq!(signals.len(), 2);
        assert_eq!(signals.iter().filter(|s| s.active).count(), 1);
        assert!(signals.iter().all(|s| facts(s).members.is_none()));
    }

    #[test]
    fn orphaned_means_adopted_by_init_or_a_reaper_or_leaderless() {
        let mut by_init = process(7, 7, 10);
        by_init.ppid = 1;
        let mut by_tini = process(7, 7, 10);
        by_tini.parent_comm = Some("tini".into());
        let mut leaderless = process(8, 7, 10);
        leaderless.group_leader_alive = false;
        let owned = process(7, 7, 10);
        assert!(is_orphaned(&by_init));
        assert!(is_orphaned(&by_tini));
        assert!(is_orphaned(&leaderless));
        assert!(!is_orphaned(&owned));
    }

    #[test]
    fn a_group_says_where_its_oldest_member_runs() {
        use watchdog_collectors::cgroup::{Container, Runtime};
        let mut oldest = process(100, 100, 4000);
        oldest.container = Some(Container {
            runtime: Runtime::Containerd,
            id: Some("c".repeat(64)),
            pod_uid: Some("8ae57dcd-0f37-412d-88b7-e23d65f6cad4".into()),
            unit: None,
            rootless_uid: None,
        });
        let signals = build(
            &scan(vec![process(101, 100, 10), oldest]),
            &ProcMemory::default(),
            &PGID,
        )
        .signals;
        let container = facts(&signals[0]).container.clone().expect("attributed");
        assert_eq!(container.runtime, "containerd");
        assert_eq!(container.short_id(), Some("cccccccccccc"));
        assert_eq!(
            container.pod_uid.as_deref(),
            Some("8ae57dcd-0f37-412d-88b7-e23d65f6cad4")
        );
        let alone = build(
            &scan(vec![process(7, 7, 10)]),
            &ProcMemory::default(),
            &PGID,
        )
        .signals;
        assert_eq!(facts(&alone[0]).container, None, "unknown stays unknown");
    }

    #[test]
    fn cpu_pct_is_a_lifetime_average_of_one_core_with_one_decimal() {
        let mut busy = process(7, 7, 200);
        busy.cpu_ticks = 30_000; // 300 s of CPU in 200 s: one and a half cores
        let mut idle = process(8, 8, 7200);
        idle.cpu_ticks = 720;
        let mut newborn = process(9, 9, 0);
        newborn.cpu_ticks = 5;
        let signals = signals(&scan(vec![busy, idle, newborn]), &PID);
        let pcts: Vec<f64> = signals.iter().map(|s| facts(s).cpu_pct).collect();
        assert_eq!(pcts, [150.0, 0.1, 0.0]);
    }

    /// Process group 100: leader 100, members 101 and 102, all old enough to be active.
    fn group() -> Vec<ProcessInfo> {
        vec![
            process(100, 100, 5000),
            process(101, 100, 4900),
            process(102, 100, 4800),
        ]
    }

    fn unreadable(mut scan: ProcScan, pids: &[u32]) -> ProcScan {
        scan.processes.retain(|p| !pids.contains(&p.pid));
        scan.unreadable = pids.to_vec();
        scan
    }

    #[test]
    fn a_group_read_whole_is_remembered_by_its_members() {
        let built = build(&scan(group()), &ProcMemory::default(), &PGID);
        assert_eq!(built.signals.len(), 1);
        assert!(built.held.is_empty());
        assert_eq!(built.memory.groups[&100], [100, 101, 102]);
    }

    #[test]
    fn a_group_whose_leader_cannot_be_read_is_held_whole_without_a_signal() {
        // Nothing remembered (a first tick): the leader's pid alone tells it is half read.
        let built = build(
            &unreadable(scan(group()), &[100]),
            &ProcMemory::default(),
            &PGID,
        );
        assert!(
            built.signals.is_empty(),
            "not renamed to proc:101: {built:?}"
        );
        assert_eq!(built.held, ["proc:100", "proc:101", "proc:102"]);
        assert_eq!(built.memory.groups[&100], [101, 102]);
    }

    #[test]
    fn a_group_whose_member_of_the_last_tick_cannot_be_read_is_held_whole() {
        let before = build(&scan(group()), &ProcMemory::default(), &PGID).memory;
        for pid in [101, 102] {
            let built = build(&unreadable(scan(group()), &[pid]), &before, &PGID);
            assert!(built.signals.is_empty(), "pid {pid}: {built:?}");
            assert_eq!(
                built.held,
                ["proc:100", "proc:101", "proc:102"],
                "pid {pid}"
            );
            assert_eq!(
                built.memory, before,
                "pid {pid}: remembered whole while held"
            );
        }
    }

    #[test]
    fn a_group_read_whole_again_signals_under_its_old_name() {
        let first = build(&scan(group()), &ProcMemory::default(), &PGID);
        let held = build(&unreadable(scan(group()), &[100]), &first.memory, &PGID);
        let again = build(&scan(group()), &held.memory, &PGID);
        assert_eq!(again.signals, first.signals);
        assert!(again.held.is_empty());
    }

    #[test]
    fn an_unreadable_process_of_another_group_holds_only_itself() {
        let mut processes = group();
        processes.push(process(201, 200, 4000));
        let before = build(&scan(processes.clone()), &ProcMemory::default(), &PGID).memory;
        let built = build(&unreadable(scan(processes), &[201]), &before, &PGID);
        assert_eq!(built.signals.len(), 1, "group 100 is read whole");
        assert_eq!(built.held, ["proc:200", "proc:201"]);
    }

    #[test]
    fn with_pid_grouping_an_unreadable_process_holds_only_itself_and_nothing_is_remembered() {
        let built = build(
            &unreadable(scan(group()), &[100]),
            &ProcMemory::default(),
            &PID,
        );
        assert_eq!(built.signals.len(), 2);
        assert_eq!(built.held, ["proc:100"]);
        assert!(built.memory.is_empty());
    }
}
