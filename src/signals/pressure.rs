//! The `host_pressure` signal builder.
//!
//! Turns one pressure scan into one signal per resource the host has a source for: entities
//! `pressure:cpu`, `pressure:memory` and `pressure:io`. A resource with no source (no PSI for
//! memory or io) gives no signal: the host cannot say, and that is not a failure.
//!
//! In `run` it keeps, per resource, since when `some avg60` has been at or above its threshold
//! and, while active, since when it has been below: an entity turns active once it has stayed at
//! or above for `WATCHDOG_PRESSURE_FOR_S`, and recovers once it has stayed below as long. A
//! failed read never reaches this builder, so it neither starts nor resets either run. `once` has
//! no history: there an entity is active when both `avg60` and `avg300` are at or above the
//! threshold, PSI's own five-minute window standing in for `FOR_S`.
//!
//! It names the top CPU consumers of a resource that is at or above its threshold, each with the
//! `proc_blocking` or `job_leftover` entity of this tick it belongs to, and, when the top one is
//! a stuck match, the same kill command as that entity's alert. Pure: it reads nothing and keeps
//! nothing; the memory it returns is the engine's to keep.

use watchdog_collectors::pressure::{self, PressureScan, ResourcePressure, Top, TopProcess};

use super::container_facts;
use crate::model::{
    Facts, Kind, PressureFacts, PressureMemory, PressureSource, PressureTrack, Resource, Signal,
    Stop, TopConsumer, TopStatus, Unix,
};

/// The rule the builder applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PressureRules {
    /// How long `some avg60` must stay at or above its threshold to be active, and below it to
    /// recover, in seconds; 0 means at once.
    pub for_s: u64,
}

/// What the builder knows of earlier ticks.
#[derive(Debug, Clone, Copy)]
pub enum History<'a> {
    /// `once`: no earlier tick. avg300 stands in for the `for` window.
    None,
    /// `run`: what the last successful tick remembered.
    Kept(&'a PressureMemory),
}

/// The result of one build.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub signals: Vec<Signal>,
    /// The memory to keep; `None` without history (`once` keeps nothing).
    pub memory: Option<PressureMemory>,
}

/// Builds the `host_pressure` signals of one scan. `others` are this tick's signals of the
/// other collectors, for naming the entity each top consumer belongs to.
pub fn build(
    scan: &PressureScan,
    history: History<'_>,
    others: &[Signal],
    now: Unix,
    rules: &PressureRules,
) -> Built {
    let mut signals = Vec::new();
    let mut memory = PressureMemory::default();
    for resource in &scan.resources {
        let Some((name, source)) = known(resource) else {
            continue;
        };
        let (active, above_since) = match history {
            History::None => (holds_over_five_minutes(resource), None),
            History::Kept(kept) => {
                let before = kept.resources.get(&name).copied().unwrap_or_default();
                let track = step(before, resource.at_or_above, now, rules.for_s);
                memory.resources.insert(name, track);
                // The tick that recovers still says since when it was above, for its text.
                let recovered = before.active && !track.active;
                let above_since = track
                    .above_since
                    .or(before.above_since.filter(|_| recovered));
                (track.active, above_since)
            }
        };
        let (top, top_status, top_error) = if resource.at_or_above {
            top_of(&scan.top, others)
        } else {
            (Vec::new(), TopStatus::BelowThreshold, None)
        };
        let stop = top
            .first()
            .filter(|first| first.stuck_s.is_some())
            .and_then(|first| stop_of(first.pid, others))
            .unwrap_or_default();
        let facts = PressureFacts {
            resource: name,
            source,
            some_avg10: resource.some_avg10,
            some_avg60: resource.some_avg60,
            some_avg300: resource.some_avg300,
            full_avg60: resource.full_avg60,
            threshold_pct: resource.threshold_pct,
            above_since,
            top,
            top_status,
            top_error,
            stop,
        };
        signals.push(Signal {
            kind: Kind::HostPressure,
            entity: format!("pressure:{}", name.as_str()),
            active,
            facts: Facts::Pressure(facts),
        });
    }
    Built {
        signals,
        memory: matches!(history, History::Kept(_)).then_some(memory),
    }
}

/// A resource's model name and source; `None` when the host has no source for it.
fn known(resource: &ResourcePressure) -> Option<(Resource, PressureSource)> {
    let name = match resource.resource {
        pressure::Resource::Cpu => Resource::Cpu,
        pressure::Resource::Memory => Resource::Memory,
        pressure::Resource::Io => Resource::Io,
    };
    let source = match resource.source {
        pressure::Source::Psi => PressureSource::Psi,
        pressure::Source::Loadavg => PressureSource::Loadavg,
        pressure::Source::Unavailable => return None,
    };
    resource.some_avg60.is_some().then_some((name, source))
}

/// `once`'s rule: the one-minute and the five-minute averages are both at or above.
fn holds_over_five_minutes(resource: &ResourcePressure) -> bool {
    resource.at_or_above
        && resource
            .some_avg300
            .is_some_and(|avg300| avg300 >= resource.threshold_pct)
}

/// One tick of a resource's run above or below its threshold.
fn step(before: PressureTrack, above: bool, now: Unix, for_s: u64) -> PressureTrack {
    let mut track = before;
    if above {
        // Above again: a run below that had not lasted `for_s` is forgotten.
        track.below_since = None;
        let since = *track.above_since.get_or_insert(now);
        if elapsed(since, now) >= for_s {
            track.active = true;
        }
    } else if track.active {
        // Active entities recover only after a whole `for_s` below.
        let since = *track.below_since.get_or_insert(now);
        if elapsed(since, now) >= for_s {
            track = PressureTrack::default();
        }
    } else {
        // Below and not active: a run above that had not lasted `for_s` starts over.
        track = PressureTrack::default();
    }
    track
}

fn elapsed(from: Unix, to: Unix) -> u64 {
    u64::try_from(to.saturating_sub(from)).unwrap_or(0)
}

/// The top consumers of this tick, each with its entity, and what sampling said.
fn top_of(top: &Top, others: &[Signal]) -> (Vec<TopConsumer>, TopStatus, Option<String>) {
    match top {
        Top::Off => (Vec::new(), TopStatus::Off, None),
        Top::BelowThreshold => (Vec::new(), TopStatus::BelowThreshold, None),
        Top::Sampling => (Vec::new(), TopStatus::Sampling, None),
        Top::Sampled { processes, .. } => (
            processes.iter().map(|p| consumer(p, others)).collect(),
            TopStatus::Sampled,
            None,
        ),
        Top::Failed { path, reason } => (
            Vec::new(),
            TopStatus::Failed,
            Some(format!("{}: {reason}", path.display())),
        ),
    }
}

fn consumer(process: &TopProcess, others: &[Signal]) -> TopConsumer {
    let owner = owner_of(process.pid, others);
    TopConsumer {
        pid: process.pid,
        comm: process.comm.clone(),
        cmdline: process.cmdline.clone(),
        cpu_pct: process.cpu_pct,
        orphaned: process.orphaned,
        entity: owner.as_ref().map(|o| o.signal.entity.clone()),
        stuck_s: owner.and_then(|o| o.signal.active.then_some(o.stuck_s)),
        container: process.container.as_ref().map(container_facts),
    }
}

/// The entity a pid belongs to this tick, and how long it has been stuck if it is.
struct Owner<'s> {
    signal: &'s Signal,
    stuck_s: u64,
    stop: &'s Stop,
}

/// The `proc_blocking` or `job_leftover` signal whose processes include `pid`: an active one
/// before an inactive one, a `proc_blocking` before a `job_leftover`.
fn owner_of(pid: u32, others: &[Signal]) -> Option<Owner<'_>> {
    let mut found: Vec<Owner<'_>> = others
        .iter()
        .filter_map(|signal| match (&signal.kind, &signal.facts) {
            (Kind::ProcBlocking, Facts::Proc(f)) => {
                let has = match &f.members {
                    Some(members) => members.contains(&pid),
                    None => f.pid == pid,
                };
                has.then_some(Owner {
                    signal,
                    stuck_s: f.age_s,
                    stop: &f.stop,
                })
            }
            (Kind::JobLeftover, Facts::Job(f)) if f.members.contains(&pid) => Some(Owner {
                signal,
                stuck_s: f.ended_s.unwrap_or(0),
                stop: &f.stop,
            }),
            _ => None,
        })
        .collect();
    found.sort_by_key(|o| (!o.signal.active, o.signal.kind != Kind::ProcBlocking));
    found.into_iter().next()
}

/// The kill command of the stuck entity `pid` belongs to.
fn stop_of(pid: u32, others: &[Signal]) -> Option<Stop> {
    owner_of(pid, others)
        .filter(|o| o.signal.active)
        .map(|o| o.stop.clone())
        .filter(|stop| *stop != Stop::None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobFacts, ProcFacts};

    const NOW: Unix = 1_800_000_000;
    const FOR_S: u64 = 300;

    fn resource(name: pressure::Resource, avg60: f64, avg300: f64) -> ResourcePressure {
        ResourcePressure {
            resource: name,
            source: pressure::Source::Psi,
            some_avg10: Some(avg60),
            some_avg60: Some(avg60),
            some_avg300: Some(avg300),
            full_avg60: None,
            threshold_pct: 50.0,
            at_or_above: avg60 >= 50.0,
        }
    }

    fn cpu(avg60: f64) -> PressureScan {
        PressureScan {
            resources: vec![resource(pressure::Resource::Cpu, avg60, avg60)],
            top: Top::BelowThreshold,
        }
    }

    fn run(scan: &PressureScan, kept: &PressureMemory, now: Unix) -> Built {
        build(
            scan,
            History::Kept(kept),
            &[],
            now,
            &PressureRules { for_s: FOR_S },
        )
    }

    fn facts(signal: &Signal) -> &PressureFacts {
        match &signal.facts {
            Facts::Pressure(f) => f,
            other => panic!("not pressure facts: {other:?}"),
        }
    }

    /// Runs ticks of (seconds after the first, cpu avg60) and returns each tick's activity.
    fn ticks(series: &[(i64, f64)], for_s: u64) -> Vec<bool> {
        let mut kept = PressureMemory::default();
        series
            .iter()
            .map(|&(at, avg60)| {
                let built = build(
                    &cpu(avg60),
                    History::Kept(&kept),
                    &[],
                    NOW + at,
                    &PressureRules { for_s },
                );
                kept = built.memory.expect("run keeps memory");
                built.signals[0].active
            })
            .collect()
    }

    #[test]
    fn the_threshold_is_reached_at_its_value_not_before() {
        for (avg60, active) in [(49.99, false), (50.0, true), (50.01, true)] {
            let got = ticks(&[(0, avg60)], 0);
            assert_eq!(got, [active], "avg60 {avg60} with FOR_S=0");
        }
    }

    #[test]
    fn an_entity_fires_once_above_for_the_whole_for_window() {
        for (after, active) in [(299, false), (300, true), (301, true)] {
            let got = ticks(&[(0, 80.0), (after, 80.0)], FOR_S);
            assert_eq!(
                got,
                [false, active],
                "above since 0, seen again at {after}s"
            );
        }
    }

    #[test]
    fn a_dip_below_restarts_the_window_before_it_fires() {
        let got = ticks(
            &[
                (0, 80.0),
                (150, 40.0),
                (200, 80.0),
                (450, 80.0),
                (500, 80.0),
            ],
            FOR_S,
        );
        assert_eq!(
            got,
            [false, false, false, false, true],
            "the run starts again at 200"
        );
    }

    #[test]
    fn an_active_entity_recovers_after_the_whole_window_below() {
        for (after, active) in [(299, true), (300, false), (301, false)] {
            let got = ticks(
                &[(0, 80.0), (300, 80.0), (400, 10.0), (400 + after, 10.0)],
                FOR_S,
            );
            assert_eq!(
                got,
                [false, true, true, active],
                "below since 400, seen at +{after}s"
            );
        }
    }

    #[test]
    fn a_spike_inside_the_recovery_window_keeps_it_active_and_restarts_the_window() {
        let got = ticks(
            &[
                (0, 80.0),
                (300, 80.0),
                (400, 10.0),
                (600, 80.0),
                (700, 10.0),
                (900, 10.0),
                (1000, 10.0),
            ],
            FOR_S,
        );
        assert_eq!(got, [false, true, true, true, true, true, false]);
    }

    #[test]
    fn above_since_is_the_first_tick_above_and_kept_while_active() {
        let mut kept = PressureMemory::default();
        let mut since = Vec::new();
        for (at, avg60) in [
            (0, 80.0),
            (300, 80.0),
            (400, 10.0),
            (700, 10.0),
            (730, 10.0),
        ] {
            let built = run(&cpu(avg60), &kept, NOW + at);
            since.push(facts(&built.signals[0]).above_since);
            kept = built.memory.unwrap();
        }
        // The recovery at 700 still says when the run began; the tick after, nothing does.
        assert_eq!(since, [Some(NOW), Some(NOW), Some(NOW), Some(NOW), None]);
    }

    #[test]
    fn once_counts_active_only_when_avg60_and_avg300_are_both_at_or_above() {
        let cases = [
            (50.0, 50.0, true),
            (50.0, 49.99, false),
            (49.99, 50.0, false),
            (83.4, 61.2, true),
        ];
        for (avg60, avg300, active) in cases {
            let scan = PressureScan {
                resources: vec![resource(pressure::Resource::Cpu, avg60, avg300)],
                top: Top::BelowThreshold,
            };
            let built = build(
                &scan,
                History::None,
                &[],
                NOW,
                &PressureRules { for_s: FOR_S },
            );
            assert_eq!(
                built.signals[0].active, active,
                "avg60 {avg60} avg300 {avg300}"
            );
            assert_eq!(
                facts(&built.signals[0]).above_since,
                None,
                "once has no history"
            );
            assert_eq!(built.memory, None, "once keeps nothing");
        }
    }

    #[test]
    fn a_resource_without_a_source_gives_no_signal_and_no_memory() {
        let mut memory = resource(pressure::Resource::Memory, 0.0, 0.0);
        memory.source = pressure::Source::Unavailable;
        memory.some_avg60 = None;
        let scan = PressureScan {
            resources: vec![resource(pressure::Resource::Cpu, 10.0, 10.0), memory],
            top: Top::BelowThreshold,
        };
        let built = run(&scan, &PressureMemory::default(), NOW);
        let entities: Vec<&str> = built.signals.iter().map(|s| s.entity.as_str()).collect();
        assert_eq!(entities, ["pressure:cpu"]);
        let kept: Vec<Resource> = built.memory.unwrap().resources.into_keys().collect();
        assert_eq!(kept, [Resource::Cpu]);
    }

    fn top_process(pid: u32, cpu_pct: f64) -> TopProcess {
        TopProcess {
            pid,
            ppid: 1,
            comm: format!("p{pid}"),
            cmdline: format!("p{pid} --x"),
            cpu_pct,
            orphaned: true,
            start_ticks: 1,
            container: None,
        }
    }

    fn proc_signal(pid: u32, members: Option<Vec<u32>>, active: bool) -> Signal {
        Signal {
            kind: Kind::ProcBlocking,
            entity: format!("proc:{pid}:1"),
            active,
            facts: Facts::Proc(ProcFacts {
                pid,
                ppid: 1,
                pgid: pid,
                session: pid,
                state: 'R',
                comm: "pytest".into(),
                age_s: 184_980,
                cmdline: "pytest".into(),
                orphaned: true,
                adopted: true,
                parent: Some("tini".into()),
                group_leader_alive: true,
                cpu_pct: 150.0,
                rss_bytes: 1,
                members,
                group_cpu_pct: None,
                group_rss_bytes: None,
                stop: Stop::Group(pid),
                container: None,
            }),
        }
    }

    fn leftover_signal(job: &str, members: Vec<u32>) -> Signal {
        Signal {
            kind: Kind::JobLeftover,
            entity: format!("job:{job}"),
            active: true,
            facts: Facts::Job(JobFacts {
                job: job.into(),
                name: None,
                state: "ended".into(),
                pid: None,
                host_pid: None,
                age_s: 9000,
                reasons: Vec::new(),
                heartbeat_age_s: None,
                pid_comm: None,
                pgid: None,
                session: None,
                stop: Stop::Pids(members.clone()),
                members,
                ended_s: Some(3600),
                container: None,
            }),
        }
    }

    fn starved(top: Vec<TopProcess>) -> PressureScan {
        PressureScan {
            resources: vec![resource(pressure::Resource::Cpu, 83.4, 61.0)],
            top: Top::Sampled {
                interval_s: 10.0,
                processes: top,
                vanished: 0,
                unreadable: 0,
            },
        }
    }

    #[test]
    fn top_consumers_name_their_entity_and_the_stuck_top_one_gets_its_kill_command() {
        let scan = starved(vec![
            top_process(4122, 190.0),
            top_process(700, 99.0),
            top_process(9, 5.0),
        ]);
        let others = [
            proc_signal(4121, Some(vec![4121, 4122]), true),
            leftover_signal("j-7", vec![700]),
        ];
        let built = build(
            &scan,
            History::None,
            &others,
            NOW,
            &PressureRules { for_s: FOR_S },
        );
        let f = facts(&built.signals[0]);
        let named: Vec<(u32, Option<&str>, Option<u64>)> = f
            .top
            .iter()
            .map(|t| (t.pid, t.entity.as_deref(), t.stuck_s))
            .collect();
        assert_eq!(
            named,
            [
                (4122, Some("proc:4121:1"), Some(184_980)),
                (700, Some("job:j-7"), Some(3600)),
                (9, None, None),
            ]
        );
        assert_eq!(f.top_status, TopStatus::Sampled);
        assert_eq!(
            f.stop,
            Stop::Group(4121),
            "the same command as proc_blocking's"
        );
    }

    #[test]
    fn no_kill_command_when_the_top_consumer_is_not_stuck() {
        let scan = starved(vec![top_process(9, 190.0), top_process(4121, 99.0)]);
        let young = [proc_signal(4121, None, false)];
        let built = build(
            &scan,
            History::None,
            &young,
            NOW,
            &PressureRules { for_s: FOR_S },
        );
        let f = facts(&built.signals[0]);
        assert_eq!(f.stop, Stop::None, "the top one matches nothing");
        assert_eq!(f.top[1].entity.as_deref(), Some("proc:4121:1"));
        assert_eq!(
            f.top[1].stuck_s, None,
            "a young match is named but not stuck"
        );

        let scan = starved(vec![top_process(4121, 190.0)]);
        let built = build(
            &scan,
            History::None,
            &young,
            NOW,
            &PressureRules { for_s: FOR_S },
        );
        assert_eq!(
            facts(&built.signals[0]).stop,
            Stop::None,
            "young, so not stuck"
        );
    }

    #[test]
    fn a_resource_below_its_threshold_names_no_consumers() {
        let mut scan = starved(vec![top_process(9, 190.0)]);
        scan.resources
            .push(resource(pressure::Resource::Io, 3.0, 3.0));
        let built = build(
            &scan,
            History::None,
            &[],
            NOW,
            &PressureRules { for_s: FOR_S },
        );
        let io = facts(&built.signals[1]);
        assert_eq!(io.resource, Resource::Io);
        assert!(io.top.is_empty());
        assert_eq!(io.top_status, TopStatus::BelowThreshold);
        assert_eq!(facts(&built.signals[0]).top.len(), 1);
    }

    #[test]
    fn sampling_that_failed_says_where_and_why() {
        let mut scan = starved(Vec::new());
        scan.top = Top::Failed {
            path: "/proc".into(),
            reason: "pid 1 is not listed".into(),
        };
        let built = build(
            &scan,
            History::None,
            &[],
            NOW,
            &PressureRules { for_s: FOR_S },
        );
        let f = facts(&built.signals[0]);
        assert_eq!(f.top_status, TopStatus::Failed);
        assert_eq!(f.top_error.as_deref(), Some("/proc: pid 1 is not listed"));
    }
}
