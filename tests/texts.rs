//! What a person reads: every event kind in both languages, pinned with insta.

use watchdog::event::Event;
use watchdog::model::{
    Alert, CollectorFacts, ContainerFacts, EventKind, Facts, HungReason, JobFacts, Kind, Lang,
    PressureFacts, PressureSource, ProcFacts, Reason, Resource, Stop, TopConsumer, TopStatus, Unix,
};

const SINCE: Unix = 1_795_000_000; // 2026-11-18T11:06:40Z
const EVENTS: [EventKind; 3] = [EventKind::Fire, EventKind::Reminder, EventKind::Recovery];

fn proc_facts() -> ProcFacts {
    ProcFacts {
        pid: 100,
        ppid: 1,
        pgid: 100,
        session: 100,
        state: 'S',
        comm: "pytest".into(),
        age_s: 7990,
        cmdline: "/usr/bin/python3 -m pytest -n 3 tests/ --token ***".into(),
        orphaned: true,
        adopted: true,
        parent: Some("tini".into()),
        group_leader_alive: true,
        cpu_pct: 1.0,
        rss_bytes: 81_920_000,
        members: Some(vec![100, 101, 102]),
        group_cpu_pct: Some(151.0),
        group_rss_bytes: Some(450_969_600),
        stop: Stop::Group(100),
        container: None,
    }
}

fn alert(event: EventKind, facts: Facts, kind: Kind, entity: &str) -> Alert {
    let at = match event {
        EventKind::Fire => SINCE,
        _ => SINCE + 5400,
    };
    Alert {
        event,
        kind,
        entity: entity.into(),
        since: SINCE,
        at,
        facts,
        reason: Reason::First,
    }
}

fn read(event: &Event) -> String {
    format!("{}\n\n{}", event.summary, event.text)
}

#[test]
fn proc_blocking_texts() {
    for lang in [Lang::En, Lang::Ru] {
        for event in EVENTS {
            let alert = alert(
                event,
                Facts::Proc(proc_facts()),
                Kind::ProcBlocking,
                "proc:100:9200000",
            );
            let rendered = Event::render(&alert, "ci-runner-3", lang);
            let name = format!("proc_blocking_{}_{lang:?}", event.as_str()).to_lowercase();
            insta::assert_snapshot!(name, read(&rendered));
        }
    }
}

#[test]
fn a_process_in_its_orchestrators_group_is_stopped_by_pid_not_by_group() {
    // pytest (pid 30) in the group of a live orchestrator (pgid 10): a group kill would take
    // the orchestrator down with it.
    let facts = ProcFacts {
        pid: 30,
        ppid: 10,
        pgid: 10,
        session: 10,
        orphaned: false,
        adopted: false,
        parent: Some("python3".into()),
        group_leader_alive: true,
        members: Some(vec![30, 31]),
        stop: Stop::Pids(vec![30, 31]),
        ..proc_facts()
    };
    for lang in [Lang::En, Lang::Ru] {
        let alert = alert(
            EventKind::Fire,
            Facts::Proc(facts.clone()),
            Kind::ProcBlocking,
            "proc:30:1",
        );
        let text = Event::render(&alert, "ci-runner-3", lang).text;
        assert!(!text.contains("-- -10"), "{lang:?}: {text}");
        assert!(text.contains("kill -TERM 30 31"), "{lang:?}: {text}");
        insta::assert_snapshot!(
            format!("proc_blocking_shared_group_{lang:?}").to_lowercase(),
            text
        );
    }
}

#[test]
fn a_group_whose_leader_is_gone_is_stopped_as_a_group() {
    let facts = ProcFacts {
        pid: 201,
        ppid: 10,
        pgid: 200,
        parent: Some("python3".into()),
        group_leader_alive: false,
        members: Some(vec![201]),
        adopted: false,
        stop: Stop::Group(200),
        ..proc_facts()
    };
    let alert = alert(
        EventKind::Fire,
        Facts::Proc(facts),
        Kind::ProcBlocking,
        "proc:201:1",
    );
    let text = Event::render(&alert, "h", Lang::En).text;
    assert!(text.contains("kill -TERM -- -200"), "{text}");
    assert!(
        text.contains("the leader of its process group (200) is gone"),
        "{text}"
    );
}

#[test]
fn collector_failing_texts() {
    let facts = Facts::Collector(CollectorFacts {
        collector: "proc".into(),
        error: "/proc: pid 1 is not listed".into(),
        failed_ticks: 3,
    });
    for lang in [Lang::En, Lang::Ru] {
        for event in EVENTS {
            let alert = alert(
                event,
                facts.clone(),
                Kind::CollectorFailing,
                "collector:proc",
            );
            let rendered = Event::render(&alert, "ci-runner-3", lang);
            let name = format!("collector_failing_{}_{lang:?}", event.as_str()).to_lowercase();
            insta::assert_snapshot!(name, read(&rendered));
        }
    }
}

#[test]
fn the_wire_format() {
    let alert = alert(
        EventKind::Recovery,
        Facts::Proc(proc_facts()),
        Kind::ProcBlocking,
        "proc:100:9200000",
    );
    let event = Event::render(&alert, "ci-runner-3", Lang::En);
    let json: serde_json::Value = serde_json::from_str(&event.to_json()).unwrap();
    assert_eq!(json["schema"], "watchdog.alert.v1");
    assert_eq!(json["event"], "recovery");
    assert_eq!(json["since"], "2026-11-18T11:06:40Z");
    assert_eq!(json["at"], "2026-11-18T12:36:40Z");
    assert_eq!(json["duration_s"], 5400);
    assert!(json["id"].as_str().unwrap().starts_with("evt_"));
    insta::assert_snapshot!(serde_json::to_string_pretty(&json).unwrap());
}

#[test]
fn event_ids_differ_per_event_and_repeat_per_decision() {
    let render = |event, at| {
        let mut a = alert(
            event,
            Facts::Proc(proc_facts()),
            Kind::ProcBlocking,
            "proc:100:9200000",
        );
        a.at = at;
        Event::render(&a, "h", Lang::En).id
    };
    assert_eq!(
        render(EventKind::Reminder, SINCE + 60),
        render(EventKind::Reminder, SINCE + 60)
    );
    assert_ne!(
        render(EventKind::Reminder, SINCE + 60),
        render(EventKind::Reminder, SINCE + 61)
    );
    assert_ne!(
        render(EventKind::Reminder, SINCE + 60),
        render(EventKind::Recovery, SINCE + 60)
    );
}

fn job_facts() -> JobFacts {
    JobFacts {
        job: "j-1042".into(),
        name: Some("fix flaky test".into()),
        state: "running".into(),
        pid: Some(42),
        host_pid: Some(320),
        age_s: 9000,
        reasons: vec![HungReason::RunningTooLong, HungReason::HeartbeatStale],
        heartbeat_age_s: Some(1800),
        pid_comm: None,
        pgid: Some(320),
        session: Some(320),
        members: Vec::new(),
        ended_s: None,
        stop: Stop::Group(320),
        container: None,
    }
}

#[test]
fn agent_hung_texts() {
    for lang in [Lang::En, Lang::Ru] {
        for event in EVENTS {
            let alert = alert(
                event,
                Facts::Job(job_facts()),
                Kind::AgentHung,
                "job:j-1042",
            );
            let rendered = Event::render(&alert, "ci-runner-3", lang);
            let name = format!("agent_hung_{}_{lang:?}", event.as_str()).to_lowercase();
            insta::assert_snapshot!(name, read(&rendered));
        }
    }
}

#[test]
fn a_reused_or_vanished_pid_gets_no_kill_command() {
    for (reason, comm) in [
        (HungReason::PidReused, Some("sshd")),
        (HungReason::PidGone, None),
    ] {
        // The builder leaves the group unknown when the pid is not the job's any more.
        let facts = JobFacts {
            reasons: vec![reason],
            pid_comm: comm.map(str::to_string),
            pgid: None,
            session: None,
            stop: Stop::None,
            ..job_facts()
        };
        for lang in [Lang::En, Lang::Ru] {
            let alert = alert(
                EventKind::Fire,
                Facts::Job(facts.clone()),
                Kind::AgentHung,
                "job:j-1042",
            );
            let rendered = Event::render(&alert, "ci-runner-3", lang);
            assert!(
                !rendered.text.contains("kill"),
                "{reason:?} {lang:?}: {}",
                rendered.text
            );
            if reason == HungReason::PidReused {
                assert!(rendered.summary.contains("sshd"), "{}", rendered.summary);
            }
        }
    }
}

#[test]
fn job_leftover_texts() {
    let facts = JobFacts {
        state: "ended".into(),
        reasons: Vec::new(),
        heartbeat_age_s: None,
        pid_comm: None,
        members: vec![321, 322],
        ended_s: Some(900),
        ..job_facts()
    };
    for lang in [Lang::En, Lang::Ru] {
        for event in EVENTS {
            let alert = alert(
                event,
                Facts::Job(facts.clone()),
                Kind::JobLeftover,
                "job:j-1042",
            );
            let rendered = Event::render(&alert, "ci-runner-3", lang);
            let name = format!("job_leftover_{}_{lang:?}", event.as_str()).to_lowercase();
            insta::assert_snapshot!(name, read(&rendered));
            if event == EventKind::Fire {
                assert!(
                    rendered.text.contains("kill -TERM -- -320"),
                    "{lang:?}: {}",
                    rendered.text
                );
            }
        }
    }
}

const DOCKER_ID: &str = "e70105bb87f6ea3dc07daa379f8ebaab8505111542db8099504862ee35c2c2c9";
const POD_UID: &str = "8ae57dcd-0f37-412d-88b7-e23d65f6cad4";

fn docker() -> ContainerFacts {
    ContainerFacts {
        runtime: "docker".into(),
        id: Some(DOCKER_ID.into()),
        pod_uid: None,
        unit: None,
        rootless_uid: None,
    }
}

fn in_pod() -> ContainerFacts {
    ContainerFacts {
        runtime: "containerd".into(),
        id: Some("3f2a9b0c1d2e".repeat(5) + "4f5a"),
        pod_uid: Some(POD_UID.into()),
        unit: None,
        rootless_uid: None,
    }
}

fn consumer(pid: u32, comm: &str, cpu_pct: f64) -> TopConsumer {
    TopConsumer {
        pid,
        comm: comm.into(),
        cmdline: format!("/usr/bin/{comm}"),
        cpu_pct,
        orphaned: false,
        entity: None,
        stuck_s: None,
        container: None,
    }
}

/// cpu starved since 5 minutes before the fire, by an orphaned pytest stuck for 2 days.
fn starved() -> PressureFacts {
    PressureFacts {
        resource: Resource::Cpu,
        source: PressureSource::Psi,
        some_avg10: Some(88.1),
        some_avg60: Some(83.4),
        some_avg300: Some(61.2),
        full_avg60: None,
        threshold_pct: 50.0,
        above_since: Some(SINCE - 300),
        top: vec![
            TopConsumer {
                cmdline: "/usr/bin/python3 -m pytest tests/ -n 2 --token ***".into(),
                orphaned: true,
                entity: Some("proc:4121:1640000".into()),
                stuck_s: Some(183_600),
                container: Some(docker()),
                ..consumer(4121, "pytest", 190.0)
            },
            TopConsumer {
                orphaned: true,
                entity: Some("proc:4121:1640000".into()),
                stuck_s: Some(183_600),
                container: Some(docker()),
                ..consumer(4122, "python3", 99.0)
            },
            TopConsumer {
                entity: Some("job:j-1042".into()),
                stuck_s: Some(900),
                container: Some(in_pod()),
                ..consumer(321, "pytest", 45.5)
            },
            consumer(500, "node", 3.0),
        ],
        top_status: TopStatus::Sampled,
        top_error: None,
        stop: Stop::Group(4121),
    }
}

/// What the recovery tick saw: below the threshold, nobody named.
fn calm(facts: PressureFacts) -> PressureFacts {
    PressureFacts {
        some_avg10: facts.some_avg10.map(|_| 4.0),
        some_avg60: Some(12.5),
        some_avg300: Some(30.0),
        top: Vec::new(),
        top_status: TopStatus::BelowThreshold,
        stop: Stop::None,
        ..facts
    }
}

fn pressure_alert(event: EventKind, facts: &PressureFacts) -> Alert {
    let facts = if event == EventKind::Recovery {
        calm(facts.clone())
    } else {
        facts.clone()
    };
    alert(
        event,
        Facts::Pressure(facts),
        Kind::HostPressure,
        "pressure:cpu",
    )
}

#[test]
fn host_pressure_texts_name_the_culprits_first() {
    for lang in [Lang::En, Lang::Ru] {
        for event in EVENTS {
            let rendered = Event::render(&pressure_alert(event, &starved()), "ci-runner-3", lang);
            let name = format!("host_pressure_{}_{lang:?}", event.as_str()).to_lowercase();
            insta::assert_snapshot!(name, read(&rendered));
            if event != EventKind::Recovery {
                let culprit = rendered.summary.find("pytest pid 4121");
                let figure = rendered.summary.find("83%");
                assert!(
                    culprit.is_some() && figure.is_some(),
                    "{}",
                    rendered.summary
                );
                assert!(
                    rendered.text.starts_with(match lang {
                        Lang::En => "Top CPU consumers",
                        Lang::Ru => "Больше всех CPU",
                    }),
                    "the body opens with the culprits: {}",
                    rendered.text
                );
                assert!(
                    rendered.text.contains("kill -TERM -- -4121"),
                    "{}",
                    rendered.text
                );
                assert!(rendered.text.contains("e70105bb87f6"), "{}", rendered.text);
                assert!(!rendered.text.contains(DOCKER_ID), "the id is cut to 12");
            }
        }
    }
}

#[test]
fn host_pressure_from_loadavg_says_so_and_waits_for_its_first_sample() {
    let facts = PressureFacts {
        source: PressureSource::Loadavg,
        some_avg10: None,
        some_avg60: Some(170.0),
        some_avg300: Some(155.0),
        threshold_pct: 150.0,
        top: Vec::new(),
        top_status: TopStatus::Sampling,
        stop: Stop::None,
        ..starved()
    };
    for lang in [Lang::En, Lang::Ru] {
        for event in EVENTS {
            let rendered = Event::render(&pressure_alert(event, &facts), "ci-runner-3", lang);
            let name = format!("host_pressure_loadavg_{}_{lang:?}", event.as_str()).to_lowercase();
            insta::assert_snapshot!(name, read(&rendered));
            assert!(!rendered.text.contains("kill"), "{}", rendered.text);
            assert!(
                !rendered.text.contains("PSI some"),
                "no PSI here: {}",
                rendered.text
            );
        }
    }
}

#[test]
fn no_kill_command_when_the_top_consumer_is_not_stuck_work() {
    let facts = PressureFacts {
        top: vec![consumer(500, "node", 190.0)],
        stop: Stop::None,
        ..starved()
    };
    for lang in [Lang::En, Lang::Ru] {
        let rendered = Event::render(
            &pressure_alert(EventKind::Fire, &facts),
            "ci-runner-3",
            lang,
        );
        assert!(
            !rendered.text.contains("kill"),
            "{lang:?}: {}",
            rendered.text
        );
        assert!(
            rendered.summary.contains("node pid 500 190%"),
            "{}",
            rendered.summary
        );
    }
}

#[test]
fn proc_and_job_texts_say_where_the_process_runs() {
    let proc = ProcFacts {
        container: Some(docker()),
        ..proc_facts()
    };
    let job = JobFacts {
        container: Some(in_pod()),
        ..job_facts()
    };
    for lang in [Lang::En, Lang::Ru] {
        let stuck = Event::render(
            &alert(
                EventKind::Fire,
                Facts::Proc(proc.clone()),
                Kind::ProcBlocking,
                "proc:100:1",
            ),
            "ci-runner-3",
            lang,
        );
        let hung = Event::render(
            &alert(
                EventKind::Fire,
                Facts::Job(job.clone()),
                Kind::AgentHung,
                "job:j-1042",
            ),
            "ci-runner-3",
            lang,
        );
        insta::assert_snapshot!(
            format!("proc_blocking_in_a_container_{lang:?}").to_lowercase(),
            read(&stuck)
        );
        insta::assert_snapshot!(
            format!("agent_hung_in_a_pod_{lang:?}").to_lowercase(),
            read(&hung)
        );
        let (docker_words, pod_words) = match lang {
            Lang::En => ("in docker container e70105bb87f6", "of pod 8ae57dcd…"),
            Lang::Ru => ("в контейнере docker e70105bb87f6", "пода 8ae57dcd…"),
        };
        assert!(stuck.text.contains(docker_words), "{}", stuck.text);
        assert!(hung.text.contains(pod_words), "{}", hung.text);
    }
    // Without a container, the texts are as they were: no line about where.
    let plain = Event::render(
        &alert(
            EventKind::Fire,
            Facts::Proc(proc_facts()),
            Kind::ProcBlocking,
            "proc:100:1",
        ),
        "ci-runner-3",
        Lang::En,
    );
    assert!(!plain.text.contains("Where it runs"), "{}", plain.text);
}

/// What a process names itself reaches chat and webhook texts visibly escaped: it can neither
/// repaint a terminal nor start a line of its own. The JSON facts keep the raw value.
#[test]
fn a_hostile_comm_and_argv_are_escaped_in_every_text() {
    let facts = ProcFacts {
        comm: "py\u{1b}[31mtest".into(),
        cmdline: "pytest \u{1b}[2J\nFAKE: all clear \u{202e}evil \u{9b}31m".into(),
        parent: Some("ti\u{7}ni".into()),
        ..proc_facts()
    };
    for lang in [Lang::En, Lang::Ru] {
        for event in EVENTS {
            let alert = alert(
                event,
                Facts::Proc(facts.clone()),
                Kind::ProcBlocking,
                "proc:100:9200000",
            );
            let rendered = Event::render(&alert, "ci-runner-3", lang);
            for text in [&rendered.summary, &rendered.text] {
                for raw in ['\u{1b}', '\u{7}', '\u{202e}', '\u{9b}'] {
                    assert!(
                        !text.contains(raw),
                        "{lang:?} {event:?}: {raw:?} in {text:?}"
                    );
                }
                assert!(!text.contains("\nFAKE"), "{lang:?} {event:?}: {text}");
            }
            assert!(
                rendered.summary.contains(r"py\x1b[31mtest"),
                "{}",
                rendered.summary
            );
            if event != EventKind::Recovery {
                assert!(
                    rendered.text.contains(r"\x1b[2J\x0aFAKE"),
                    "{}",
                    rendered.text
                );
                assert!(rendered.text.contains(r"\u{202e}evil"), "{}", rendered.text);
            }
            if let Facts::Proc(kept) = &rendered.facts {
                assert_eq!(kept.comm, facts.comm, "the facts keep the raw value");
            }
        }
    }
}
