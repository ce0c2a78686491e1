//! The `proc_blocking` signal builder.
//!
//! Turns one proc scan into one signal per entity: a process group of matching processes
//! (`WATCHDOG_PROC_GROUP_BY=pgid`) or a single process (`pid`). The entity is named after the
//! group's oldest matching process, `proc:<pid>:<start ticks>`, so a reused pid is a new entity.
//! It is active when that process is strictly older than the threshold.

use std::collections::BTreeMap;

use watchdog_collectors::proc::{ProcScan, ProcessInfo};

use super::container_facts;
use crate::model::{Facts, Kind, ProcFacts, Signal, Stop};

/// Parents whose adopted children have lost the process that started them: init systems and
/// the subreapers that container runtimes put at pid 1 or above a container.
pub const REAPERS: &[&str] = &[
    "tini",
    "dumb-init",
    "docker-init",
    "catatonit",
    "s6-svscan",
    "systemd",
    "init",
    "runit",
    "conmon",
    "containerd-shim",
];

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

/// Builds one `proc_blocking` signal per entity of `scan`.
pub fn build(scan: &ProcScan, rules: &ProcRules) -> Vec<Signal> {
    let mut groups: BTreeMap<u32, Vec<&ProcessInfo>> = BTreeMap::new();
    for process in &scan.processes {
        let key = match rules.group_by {
            GroupBy::Pgid => process.pgid,
            GroupBy::Pid => process.pid,
        };
        groups.entry(key).or_default().push(process);
    }
    groups
        .into_values()
        .map(|mut members| {
            members.sort_by_key(|p| (p.start_ticks, p.pid));
            signal(&members, scan.ticks_per_second, rules)
        })
        .collect()
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
            let signals = build(&scan(vec![process(7, 7, age_s)]), &PGID);
            assert_eq!(signals[0].active, active, "age {age_s}");
        }
    }

    #[test]
    fn a_group_is_one_entity_named_after_its_oldest_member() {
        let signals = build(
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
        let signals = build(
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
        let signals = build(&scan(vec![process(101, 100, 10), oldest]), &PGID);
        let container = facts(&signals[0]).container.clone().expect("attributed");
        assert_eq!(container.runtime, "containerd");
        assert_eq!(container.short_id(), Some("cccccccccccc"));
        assert_eq!(
            container.pod_uid.as_deref(),
            Some("8ae57dcd-0f37-412d-88b7-e23d65f6cad4")
        );
        let alone = build(&scan(vec![process(7, 7, 10)]), &PGID);
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
        let signals = build(&scan(vec![busy, idle, newborn]), &PID);
        let pcts: Vec<f64> = signals.iter().map(|s| facts(s).cpu_pct).collect();
        assert_eq!(pcts, [150.0, 0.1, 0.0]);
    }
}
