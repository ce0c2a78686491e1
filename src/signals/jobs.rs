//! The `agent_hung` and `job_leftover` signal builders, and what they remember of jobs.
//!
//! Pure: the jobs and /proc facts of one tick, the memory of the last tick, `now` and the rules
//! in; signals, the new memory and the entities to hold out. `agent_hung` (entity `job:<id>`):
//! a running job whose pid is gone, or belongs to a process that started after the job (the pid
//! was reused), or that has run too long, or whose heartbeat is stale. `job_leftover` (same
//! entity, its own kind): a job that ended while processes of its own process group or session
//! live on past a grace. The memory keeps, per job, its host pid and start time, and its pgid
//! and session only where the job's pid leads them, so a job that shares its orchestrator's
//! group never gets the orchestrator flagged.

use watchdog_collectors::jobs::{Job, JobsScan, ProcBrief};

use super::container_facts;
use crate::model::{Facts, HungReason, JobFacts, JobsMemory, Kind, Remembered, Signal, Stop, Unix};

/// Thresholds of the jobs builders, in seconds; `None` turns a check off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsRules {
    /// Lower-cased states that mean running.
    pub running_states: Vec<String>,
    pub pid_slack_s: u64,
    pub max_running_s: Option<u64>,
    pub heartbeat_s: Option<u64>,
    pub leftover_grace_s: u64,
    pub leftover_keep_s: u64,
}

/// The result of one build.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub signals: Vec<Signal>,
    pub memory: JobsMemory,
    /// Entities the engine must hold: unreadable jobs, and leftover watches this scan could not
    /// judge (it did not read every process).
    pub held: Vec<String>,
    /// Leftover watches that reached `WATCHDOG_JOBS_LEFTOVER_KEEP_H`: no longer watched, which
    /// is not the same as over, so the engine drops them without a recovery.
    pub forget: Vec<String>,
}

fn entity(id: &str) -> String {
    format!("job:{id}")
}

fn secs(d: i64) -> u64 {
    u64::try_from(d).unwrap_or(0)
}

/// Builds the jobs signals of one tick.
pub fn build(scan: &JobsScan, memory: &JobsMemory, now: Unix, rules: &JobsRules) -> Built {
    let mut next = memory.clone();
    let mut signals = Vec::new();
    let mut held: Vec<String> = scan.unreadable.iter().map(|(id, _)| entity(id)).collect();
    let mut listed = std::collections::BTreeSet::new();
    for job in &scan.jobs {
        listed.insert(job.id.clone());
        let running =
            job.ended_at.is_none() && rules.running_states.contains(&job.state.to_lowercase());
        if running {
            signals.push(hung(job, scan, now, rules, &mut next));
        } else {
            // Ended: not hung any more, whatever it was.
            signals.push(Signal {
                kind: Kind::AgentHung,
                entity: entity(&job.id),
                active: false,
                facts: Facts::Job(job_facts(job, None, now)),
            });
            if let Some(known) = next.jobs.get_mut(&job.id) {
                known.ended_at.get_or_insert(job.ended_at.unwrap_or(now));
            }
        }
    }
    for (id, known) in &mut next.jobs {
        if !listed.contains(id) {
            // Gone from the list: it ended now, if it had not already.
            known.ended_at.get_or_insert(now);
        }
    }
    let mut forget = Vec::new();
    let mut expired = Vec::new();
    for (id, known) in &next.jobs {
        let Some(ended_at) = known.ended_at else {
            continue;
        };
        if known.pgid.is_none() && known.session.is_none() {
            // Its pid led neither a group nor a session: nothing of its own to watch.
            forget.push(id.clone());
            continue;
        }
        let ended_s = secs(now - ended_at);
        if ended_s > rules.leftover_keep_s {
            forget.push(id.clone());
            expired.push(entity(id));
            continue;
        }
        if !scan.all_processes {
            // Not every process was read this tick: the watch cannot be judged; hold it.
            held.push(entity(id));
            continue;
        }
        let members: Vec<u32> = scan
            .processes
            .values()
            .filter(|p| Some(p.pgid) == known.pgid || Some(p.session) == known.session)
            .map(|p| p.pid)
            .collect();
        let facts = JobFacts {
            job: id.clone(),
            name: known.name.clone(),
            state: "ended".into(),
            pid: known.pid,
            host_pid: Some(known.host_pid),
            age_s: secs(now - known.started_at),
            reasons: Vec::new(),
            heartbeat_age_s: None,
            pid_comm: None,
            pgid: known.pgid,
            session: known.session,
            stop: job_stop(known.pgid, &members),
            members: members.clone(),
            ended_s: Some(ended_s),
            container: known.container.clone(),
        };
        if members.is_empty() {
            // Nothing of it is left: the watch closes.
            forget.push(id.clone());
        }
        signals.push(Signal {
            kind: Kind::JobLeftover,
            entity: entity(id),
            active: !members.is_empty() && ended_s >= rules.leftover_grace_s,
            facts: Facts::Job(facts),
        });
    }
    for id in forget {
        next.jobs.remove(&id);
    }
    Built {
        signals,
        memory: next,
        held,
        forget: expired,
    }
}

/// The `agent_hung` signal of a running job; remembers it where its pid leads.
fn hung(
    job: &Job,
    scan: &JobsScan,
    now: Unix,
    rules: &JobsRules,
    memory: &mut JobsMemory,
) -> Signal {
    let host_pid = job.pid.and_then(|pid| scan.host_pids.get(&pid).copied());
    let process: Option<&ProcBrief> = host_pid.and_then(|h| scan.processes.get(&h));
    let mut facts = job_facts(job, host_pid, now);
    if job.pid.is_some() {
        match process {
            None => facts.reasons.push(HungReason::PidGone),
            Some(p) => {
                let process_started = now - p.age_s as i64;
                if process_started > job.started_at + rules.pid_slack_s as i64 {
                    facts.reasons.push(HungReason::PidReused);
                    facts.pid_comm = Some(p.comm.clone());
                } else {
                    // Only the job's own process says where the job runs; a reused pid does not.
                    facts.container = p.container.as_ref().map(container_facts);
                    let leads = |id: u32| (id == p.pid).then_some(id);
                    // A tick whose `cgroup` read failed keeps what an earlier one saw of the
                    // same process.
                    let container = facts.container.clone().or_else(|| {
                        memory
                            .jobs
                            .get(&job.id)
                            .filter(|known| known.start_ticks == p.start_ticks)
                            .and_then(|known| known.container.clone())
                    });
                    memory.jobs.insert(
                        job.id.clone(),
                        Remembered {
                            name: job.name.clone(),
                            pid: job.pid,
                            host_pid: p.pid,
                            start_ticks: p.start_ticks,
                            started_at: job.started_at,
                            pgid: leads(p.pgid),
                            session: leads(p.session),
                            ended_at: None,
                            container,
                        },
                    );
                    facts.pgid = leads(p.pgid);
                    facts.session = leads(p.session);
                }
            }
        }
    }
    if rules.max_running_s.is_some_and(|max| facts.age_s > max) {
        facts.reasons.push(HungReason::RunningTooLong);
    }
    if let (Some(limit), Some(beat)) = (rules.heartbeat_s, job.heartbeat_at) {
        let age = secs(now - beat);
        facts.heartbeat_age_s = Some(age);
        if age > limit {
            facts.reasons.push(HungReason::HeartbeatStale);
        }
    }
    facts.stop = job_stop(facts.pgid, &facts.members);
    Signal {
        kind: Kind::AgentHung,
        entity: entity(&job.id),
        active: !facts.reasons.is_empty(),
        facts: Facts::Job(facts),
    }
}

fn job_facts(job: &Job, host_pid: Option<u32>, now: Unix) -> JobFacts {
    JobFacts {
        job: job.id.clone(),
        name: job.name.clone(),
        state: job.state.clone(),
        pid: job.pid,
        host_pid,
        age_s: secs(now - job.started_at),
        reasons: Vec::new(),
        heartbeat_age_s: None,
        pid_comm: None,
        pgid: None,
        session: None,
        members: Vec::new(),
        ended_s: None,
        stop: Stop::None,
        container: None,
    }
}

/// The safe way to stop what is left of a job: its own process group (never 0 or init's),
/// or else the pids that were found.
fn job_stop(pgid: Option<u32>, members: &[u32]) -> Stop {
    match pgid {
        Some(pgid) if pgid > 1 => Stop::Group(pgid),
        _ if !members.is_empty() => Stop::Pids(members.to_vec()),
        _ => Stop::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Unix = 1_800_000_000;

    fn rules() -> JobsRules {
        JobsRules {
            running_states: vec!["running".into()],
            pid_slack_s: 120,
            max_running_s: Some(7200),
            heartbeat_s: Some(300),
            leftover_grace_s: 300,
            leftover_keep_s: 86_400,
        }
    }

    fn job(id: &str, pid: Option<u32>, started_ago: i64) -> Job {
        Job {
            id: id.into(),
            name: Some("fix-bug".into()),
            pid,
            state: "Running".into(),
            started_at: NOW - started_ago,
            ended_at: None,
            heartbeat_at: Some(NOW - 10),
        }
    }

    fn process(pid: u32, pgid: u32, session: u32, age_s: u64) -> ProcBrief {
        ProcBrief {
            pid,
            ppid: 1,
            pgid,
            session,
            start_ticks: 1,
            age_s,
            comm: "agent".into(),
            container: None,
        }
    }

    fn scan(jobs: Vec<Job>, processes: Vec<ProcBrief>, all: bool) -> JobsScan {
        JobsScan {
            host_pids: processes.iter().map(|p| (p.pid, p.pid)).collect(),
            processes: processes.into_iter().map(|p| (p.pid, p)).collect(),
            jobs,
            all_processes: all,
            ..JobsScan::default()
        }
    }

    fn reasons(built: &Built) -> Vec<HungReason> {
        match &built.signals[0].facts {
            Facts::Job(f) => f.reasons.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_running_job_with_a_live_pid_is_not_hung() {
        let built = build(
            &scan(
                vec![job("7", Some(42), 600)],
                vec![process(42, 42, 42, 599)],
                false,
            ),
            &JobsMemory::default(),
            NOW,
            &rules(),
        );
        assert_eq!(built.signals.len(), 1);
        assert!(!built.signals[0].active);
        assert_eq!(built.signals[0].entity, "job:7");
        let known = &built.memory.jobs["7"];
        assert_eq!(
            (known.host_pid, known.pgid, known.session),
            (42, Some(42), Some(42))
        );
    }

    #[test]
    fn each_reason_makes_a_job_hung_with_boundary_pairs() {
        type Case = (&'static str, Job, Vec<ProcBrief>, Vec<HungReason>);
        let mut stale = job("7", Some(42), 600);
        stale.heartbeat_at = Some(NOW - 301);
        let mut fresh = job("7", Some(42), 600);
        fresh.heartbeat_at = Some(NOW - 300);
        let cases: Vec<Case> = vec![
            (
                "pid gone",
                job("7", Some(42), 600),
                vec![],
                vec![HungReason::PidGone],
            ),
            // The process started 121 s after the job: reused; 120 s: within the slack.
            (
                "reused",
                job("7", Some(42), 600),
                vec![process(42, 42, 42, 479)],
                vec![HungReason::PidReused],
            ),
            (
                "slack",
                job("7", Some(42), 600),
                vec![process(42, 42, 42, 480)],
                vec![],
            ),
            (
                "too long",
                job("7", Some(42), 7201),
                vec![process(42, 42, 42, 7201)],
                vec![HungReason::RunningTooLong],
            ),
            (
                "not too long",
                job("7", Some(42), 7200),
                vec![process(42, 42, 42, 7200)],
                vec![],
            ),
            (
                "stale heartbeat",
                stale,
                vec![process(42, 42, 42, 600)],
                vec![HungReason::HeartbeatStale],
            ),
            (
                "fresh heartbeat",
                fresh,
                vec![process(42, 42, 42, 600)],
                vec![],
            ),
            ("no pid, young", job("7", None, 600), vec![], vec![]),
        ];
        for (name, job, processes, want) in cases {
            let built = build(
                &scan(vec![job], processes, false),
                &JobsMemory::default(),
                NOW,
                &rules(),
            );
            assert_eq!(reasons(&built), want, "{name}");
            assert_eq!(built.signals[0].active, !want.is_empty(), "{name}");
        }
    }

    #[test]
    fn checks_that_are_off_never_fire() {
        let mut off = rules();
        off.max_running_s = None;
        off.heartbeat_s = None;
        let mut old = job("7", Some(42), 100_000);
        old.heartbeat_at = Some(NOW - 100_000);
        let built = build(
            &scan(vec![old], vec![process(42, 42, 42, 100_000)], false),
            &JobsMemory::default(),
            NOW,
            &off,
        );
        assert!(!built.signals[0].active);
    }

    #[test]
    fn a_job_in_its_orchestrators_group_leaves_nothing_to_watch() {
        let built = build(
            &scan(
                vec![job("7", Some(42), 60)],
                vec![process(42, 10, 10, 60)],
                false,
            ),
            &JobsMemory::default(),
            NOW,
            &rules(),
        );
        let known = &built.memory.jobs["7"];
        assert_eq!((known.pgid, known.session), (None, None));
        let mut ended = job("7", Some(42), 60);
        ended.state = "done".into();
        let after = build(
            &scan(
                vec![ended],
                vec![process(42, 10, 10, 60), process(10, 10, 10, 9000)],
                true,
            ),
            &built.memory,
            NOW + 1000,
            &rules(),
        );
        assert!(
            after.signals.iter().all(|s| s.kind != Kind::JobLeftover),
            "{:?}",
            after.signals
        );
        assert!(after.memory.jobs.is_empty());
    }

    /// A job remembered as leading group and session 42, ended at NOW.
    fn ended_memory() -> JobsMemory {
        let running = build(
            &scan(
                vec![job("7", Some(42), 60)],
                vec![process(42, 42, 42, 60)],
                false,
            ),
            &JobsMemory::default(),
            NOW - 10,
            &rules(),
        );
        let gone = build(&scan(vec![], vec![], false), &running.memory, NOW, &rules());
        assert_eq!(
            gone.memory.jobs["7"].ended_at,
            Some(NOW),
            "left the list: ended now"
        );
        assert!(gone.memory.has_open_watch());
        gone.memory
    }

    fn docker(id_char: char) -> watchdog_collectors::cgroup::Container {
        watchdog_collectors::cgroup::Container {
            runtime: watchdog_collectors::cgroup::Runtime::Docker,
            id: Some(id_char.to_string().repeat(64)),
            pod_uid: None,
            unit: None,
            rootless_uid: None,
        }
    }

    fn container_of(signal: &Signal) -> Option<String> {
        match &signal.facts {
            Facts::Job(f) => f.container.as_ref().and_then(|c| c.id.clone()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_job_says_where_its_own_process_runs_and_its_leftovers_remember_it() {
        let mut agent = process(42, 42, 42, 60);
        agent.container = Some(docker('a'));
        let running = build(
            &scan(vec![job("7", Some(42), 60)], vec![agent.clone()], false),
            &JobsMemory::default(),
            NOW - 10,
            &rules(),
        );
        assert_eq!(container_of(&running.signals[0]), Some("a".repeat(64)));

        // A tick whose cgroup read failed keeps what the last one saw of the same process.
        let mut unread = agent.clone();
        unread.container = None;
        let again = build(
            &scan(vec![job("7", Some(42), 60)], vec![unread], false),
            &running.memory,
            NOW - 5,
            &rules(),
        );
        assert_eq!(
            again.memory.jobs["7"]
                .container
                .as_ref()
                .and_then(|c| c.id.clone()),
            Some("a".repeat(64))
        );

        let gone = build(&scan(vec![], vec![], false), &again.memory, NOW, &rules());
        let leftover = build(
            &scan(vec![], vec![process(43, 42, 42, 70)], true),
            &gone.memory,
            NOW + 300,
            &rules(),
        );
        let signal = leftover
            .signals
            .iter()
            .find(|s| s.kind == Kind::JobLeftover)
            .expect("a leftover");
        assert_eq!(
            container_of(signal),
            Some("a".repeat(64)),
            "where the job ran"
        );
    }

    #[test]
    fn a_reused_pid_does_not_say_where_the_job_runs() {
        let mut stranger = process(42, 42, 42, 10);
        stranger.container = Some(docker('b'));
        let built = build(
            &scan(vec![job("7", Some(42), 600)], vec![stranger], false),
            &JobsMemory::default(),
            NOW,
            &rules(),
        );
        assert_eq!(reasons(&built), [HungReason::PidReused]);
        assert_eq!(container_of(&built.signals[0]), None);
    }

    #[test]
    fn leftovers_fire_after_the_grace_and_not_before() {
        let memory = ended_memory();
        let leftovers = vec![
            process(43, 42, 42, 70),
            process(44, 44, 42, 70),
            process(99, 99, 99, 70),
        ];
        for (after, active) in [(299, false), (300, true)] {
            let built = build(
                &scan(vec![], leftovers.clone(), true),
                &memory,
                NOW + after,
                &rules(),
            );
            let signal = built
                .signals
                .iter()
                .find(|s| s.kind == Kind::JobLeftover)
                .unwrap();
            assert_eq!(signal.active, active, "{after} s after the end");
            let Facts::Job(f) = &signal.facts else {
                panic!()
            };
            assert_eq!(
                f.members,
                [43, 44],
                "its group and its session, nothing else"
            );
        }
    }

    #[test]
    fn a_watch_recovers_when_no_member_is_left_and_ends_after_the_keep() {
        let memory = ended_memory();
        let empty = build(
            &scan(vec![], vec![process(99, 99, 99, 70)], true),
            &memory,
            NOW + 400,
            &rules(),
        );
        let signal = empty
            .signals
            .iter()
            .find(|s| s.kind == Kind::JobLeftover)
            .unwrap();
        assert!(!signal.active);
        assert!(empty.memory.jobs.is_empty(), "the watch closed");

        let expired = build(
            &scan(vec![], vec![process(43, 42, 42, 70)], true),
            &memory,
            NOW + 86_401,
            &rules(),
        );
        assert!(
            expired.memory.jobs.is_empty(),
            "no longer watched after the keep"
        );
        assert!(expired.signals.is_empty());
        assert_eq!(
            expired.forget,
            ["job:7"],
            "dropped without a recovery: it is not over"
        );
    }

    #[test]
    fn a_watch_that_could_not_be_judged_is_held() {
        let memory = ended_memory();
        let built = build(&scan(vec![], vec![], false), &memory, NOW + 400, &rules());
        assert_eq!(built.held, ["job:7"]);
        assert!(built.signals.is_empty());
        assert_eq!(built.memory, memory);
    }

    #[test]
    fn an_ended_job_in_the_list_recovers_its_hung_signal_and_starts_its_watch() {
        let mut ended = job("7", Some(42), 60);
        ended.state = "failed".into();
        ended.ended_at = Some(NOW - 50);
        let running = build(
            &scan(
                vec![job("7", Some(42), 60)],
                vec![process(42, 42, 42, 60)],
                false,
            ),
            &JobsMemory::default(),
            NOW - 100,
            &rules(),
        );
        let built = build(
            &scan(vec![ended], vec![process(42, 42, 42, 60)], true),
            &running.memory,
            NOW,
            &rules(),
        );
        let hung = built
            .signals
            .iter()
            .find(|s| s.kind == Kind::AgentHung)
            .unwrap();
        assert!(!hung.active);
        assert_eq!(
            built.memory.jobs["7"].ended_at,
            Some(NOW - 50),
            "its own ended_at"
        );
    }
}
