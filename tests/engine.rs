//! decide(): table tests with injected time and boundary pairs around every threshold.

use watchdog::engine::{decide, AlertState, CollectorTick, Outcome, Reason, Rules};
use watchdog::model::{CollectFailure, EventKind, Facts, Kind, ProcFacts, Signal, Stop, Unix};

const T0: Unix = 1_800_000_000;
const COOLDOWN: u64 = 1800;

fn rules() -> Rules {
    Rules {
        proc_cooldown_s: COOLDOWN,
        jobs_cooldown_s: COOLDOWN,
        pressure_cooldown_s: COOLDOWN,
        collector_fail_ticks: 3,
        collector_fail_cooldown_s: 600,
    }
}

fn facts(pid: u32, age_s: u64) -> Facts {
    Facts::Proc(ProcFacts {
        pid,
        ppid: 1,
        pgid: pid,
        session: pid,
        state: 'S',
        comm: "pytest".into(),
        age_s,
        cmdline: "pytest".into(),
        orphaned: true,
        adopted: true,
        parent: Some("tini".into()),
        group_leader_alive: true,
        cpu_pct: 0.0,
        rss_bytes: 0,
        members: None,
        group_cpu_pct: None,
        group_rss_bytes: None,
        stop: Stop::Group(pid),
        container: None,
    })
}

fn signal(entity: &str, active: bool) -> Signal {
    Signal {
        kind: Kind::ProcBlocking,
        entity: entity.into(),
        active,
        facts: facts(7, 4000),
    }
}

fn ok(signals: Vec<Signal>) -> CollectorTick {
    CollectorTick::Ok {
        signals,
        unreadable: Vec::new(),
        forget: Vec::new(),
        memory: None,
    }
}

fn failed() -> CollectorTick {
    CollectorTick::Failed {
        error: CollectFailure::Panicked("/proc: not found".into()),
    }
}

fn tick(state: &AlertState, proc: CollectorTick, now: Unix) -> Outcome {
    decide(state.clone(), vec![("proc", proc)], now, &rules())
}

fn events(outcome: &Outcome) -> Vec<(EventKind, &str)> {
    outcome
        .alerts
        .iter()
        .map(|a| (a.event, a.entity.as_str()))
        .collect()
}

fn reasons(outcome: &Outcome) -> Vec<Reason> {
    outcome.decisions.iter().map(|(_, _, r)| *r).collect()
}

/// A state in which `proc:7:1` fired at T0.
fn fired() -> AlertState {
    tick(
        &AlertState::default(),
        ok(vec![signal("proc:7:1", true)]),
        T0,
    )
    .state
}

#[test]
fn the_first_active_tick_fires() {
    let outcome = tick(
        &AlertState::default(),
        ok(vec![signal("proc:7:1", true)]),
        T0,
    );
    assert_eq!(events(&outcome), [(EventKind::Fire, "proc:7:1")]);
    assert_eq!(reasons(&outcome), [Reason::First]);
    let known = outcome.state.get(Kind::ProcBlocking, "proc:7:1").unwrap();
    assert_eq!((known.since, known.last_notified), (T0, T0));
}

#[test]
fn an_inactive_signal_never_seen_active_sends_nothing() {
    let outcome = tick(
        &AlertState::default(),
        ok(vec![signal("proc:7:1", false)]),
        T0,
    );
    assert!(outcome.alerts.is_empty());
    assert_eq!(outcome.state, AlertState::default());
}

#[test]
fn reminders_come_once_the_cooldown_has_passed_and_not_before() {
    let cases = [
        (COOLDOWN as Unix - 1, None, Reason::WithinCooldown),
        (
            COOLDOWN as Unix,
            Some(EventKind::Reminder),
            Reason::Reminder,
        ),
        (
            COOLDOWN as Unix + 1,
            Some(EventKind::Reminder),
            Reason::Reminder,
        ),
    ];
    for (after, event, reason) in cases {
        let outcome = tick(&fired(), ok(vec![signal("proc:7:1", true)]), T0 + after);
        let got: Vec<EventKind> = outcome.alerts.iter().map(|a| a.event).collect();
        assert_eq!(
            got,
            event.into_iter().collect::<Vec<_>>(),
            "{after}s after the fire"
        );
        assert_eq!(reasons(&outcome), [reason], "{after}s after the fire");
        let known = outcome.state.get(Kind::ProcBlocking, "proc:7:1").unwrap();
        assert_eq!(known.since, T0, "since never moves");
    }
}

#[test]
fn the_next_reminder_counts_from_the_last_one() {
    let reminded = tick(&fired(), ok(vec![signal("proc:7:1", true)]), T0 + 2000).state;
    let quiet = tick(
        &reminded,
        ok(vec![signal("proc:7:1", true)]),
        T0 + 2000 + 1799,
    );
    assert!(quiet.alerts.is_empty());
    let again = tick(
        &reminded,
        ok(vec![signal("proc:7:1", true)]),
        T0 + 2000 + 1800,
    );
    assert_eq!(events(&again), [(EventKind::Reminder, "proc:7:1")]);
}

#[test]
fn an_entity_seen_inactive_recovers_with_how_long_it_lasted() {
    let outcome = tick(&fired(), ok(vec![signal("proc:7:1", false)]), T0 + 600);
    assert_eq!(events(&outcome), [(EventKind::Recovery, "proc:7:1")]);
    assert_eq!(reasons(&outcome), [Reason::Recovered]);
    assert_eq!(outcome.alerts[0].duration_s(), 600);
    assert_eq!(outcome.state.entities().count(), 0);
}

#[test]
fn an_entity_absent_from_a_successful_collection_is_gone() {
    let outcome = tick(&fired(), ok(vec![]), T0 + 30);
    assert_eq!(events(&outcome), [(EventKind::Recovery, "proc:7:1")]);
    assert_eq!(reasons(&outcome), [Reason::Gone]);
}

#[test]
fn recovery_is_held_while_collection_fails() {
    let mut state = fired();
    for n in 1..=5 {
        let outcome = tick(&state, failed(), T0 + n * 30 + COOLDOWN as Unix);
        assert!(
            outcome
                .alerts
                .iter()
                .all(|a| a.kind == Kind::CollectorFailing),
            "tick {n}: no recovery and no reminder of a held entity: {:?}",
            outcome.alerts
        );
        assert!(
            reasons(&outcome).contains(&Reason::HeldCollectorFailed),
            "tick {n}"
        );
        let known = outcome.state.get(Kind::ProcBlocking, "proc:7:1").unwrap();
        assert_eq!(
            (known.since, known.last_notified),
            (T0, T0),
            "tick {n}: held as it was"
        );
        assert!(known.held);
        state = outcome.state;
    }
    // Back, and still stuck: past the cooldown since the last alert, so a reminder.
    let back = tick(
        &state,
        ok(vec![signal("proc:7:1", true)]),
        T0 + 200 + COOLDOWN as Unix,
    );
    let proc_events: Vec<_> = back
        .alerts
        .iter()
        .filter(|a| a.kind == Kind::ProcBlocking)
        .collect();
    assert_eq!(proc_events.len(), 1);
    assert_eq!(proc_events[0].event, EventKind::Reminder);
}

#[test]
fn an_unreadable_entity_is_held_not_recovered() {
    let unreadable = CollectorTick::Ok {
        signals: vec![],
        unreadable: vec!["proc:7".into()],
        forget: Vec::new(),
        memory: None,
    };
    let outcome = tick(&fired(), unreadable, T0 + 30);
    assert!(outcome.alerts.is_empty(), "{:?}", outcome.alerts);
    assert_eq!(reasons(&outcome), [Reason::HeldUnreadable]);
    assert!(
        outcome
            .state
            .get(Kind::ProcBlocking, "proc:7:1")
            .unwrap()
            .held
    );
}

#[test]
fn an_unreadable_pid_holds_only_its_own_entities() {
    let state = tick(
        &AlertState::default(),
        ok(vec![signal("proc:7:1", true), signal("proc:70:1", true)]),
        T0,
    )
    .state;
    let unreadable = CollectorTick::Ok {
        signals: vec![],
        unreadable: vec!["proc:7".into()],
        forget: Vec::new(),
        memory: None,
    };
    let outcome = tick(&state, unreadable, T0 + 30);
    assert_eq!(events(&outcome), [(EventKind::Recovery, "proc:70:1")]);
}

#[test]
fn a_reused_pid_is_a_new_entity_the_old_one_recovers() {
    let outcome = tick(&fired(), ok(vec![signal("proc:7:999", true)]), T0 + 30);
    let mut got = events(&outcome);
    got.sort_by_key(|(_, e)| e.to_string());
    assert_eq!(
        got,
        [
            (EventKind::Recovery, "proc:7:1"),
            (EventKind::Fire, "proc:7:999")
        ]
    );
}

#[test]
fn a_collector_failing_fail_ticks_in_a_row_alerts_about_itself() {
    let mut state = AlertState::default();
    let mut fired_at = None;
    for n in 1..=4u32 {
        let outcome = tick(&state, failed(), T0 + Unix::from(n));
        let own: Vec<_> = outcome
            .alerts
            .iter()
            .filter(|a| a.kind == Kind::CollectorFailing)
            .collect();
        match n {
            1 | 2 => assert!(own.is_empty(), "tick {n}: below the fail-tick count"),
            3 => {
                assert_eq!(own.len(), 1, "tick 3 reaches the count");
                assert_eq!(own[0].event, EventKind::Fire);
                assert_eq!(own[0].entity, "collector:proc");
                fired_at = Some(T0 + 3);
            }
            _ => assert!(own.is_empty(), "tick {n}: inside its cooldown"),
        }
        state = outcome.state;
    }
    assert_eq!(state.fail_streak("proc"), 4);
    // Its own cooldown (600 s), with the boundary pair.
    let fired_at = fired_at.unwrap();
    let quiet = tick(&state, failed(), fired_at + 599);
    assert!(quiet.alerts.is_empty());
    let reminder = tick(&state, failed(), fired_at + 600);
    assert_eq!(events(&reminder), [(EventKind::Reminder, "collector:proc")]);
    let Facts::Collector(f) = &reminder.alerts[0].facts else {
        panic!("collector facts")
    };
    assert_eq!((f.collector.as_str(), f.failed_ticks), ("proc", 5));

    let back = tick(&state, ok(vec![]), fired_at + 700);
    assert_eq!(events(&back), [(EventKind::Recovery, "collector:proc")]);
    assert_eq!(back.state.fail_streak("proc"), 0);
}

#[test]
fn a_success_resets_the_fail_streak() {
    let mut state = AlertState::default();
    for (n, outcome) in [failed(), failed(), ok(vec![]), failed(), failed()]
        .into_iter()
        .enumerate()
    {
        let result = tick(&state, outcome, T0 + n as Unix);
        assert!(
            result.alerts.is_empty(),
            "tick {n}: never 3 failures in a row"
        );
        state = result.state;
    }
    assert_eq!(state.fail_streak("proc"), 2);
}

#[test]
fn switching_a_collector_off_forgets_its_entities_without_recovery() {
    let mut state = fired();
    let failing = (1..=3).fold(AlertState::default(), |s, n| {
        tick(&s, failed(), T0 + n).state
    });
    assert!(failing
        .get(Kind::CollectorFailing, "collector:proc")
        .is_some());
    let dropped = state.retain_enabled(&[]);
    assert_eq!(dropped.len(), 1);
    assert_eq!(state.entities().count(), 0);
    let mut failing = failing;
    assert_eq!(failing.retain_enabled(&[]).len(), 1);
    assert_eq!(failing.fail_streak("proc"), 0);
    let mut kept = fired();
    assert!(kept.retain_enabled(&["proc"]).is_empty());
}

#[test]
fn facts_follow_the_latest_tick() {
    let mut later = signal("proc:7:1", true);
    later.facts = facts(7, 9999);
    let outcome = tick(&fired(), ok(vec![later.clone()]), T0 + 1);
    assert_eq!(
        outcome
            .state
            .get(Kind::ProcBlocking, "proc:7:1")
            .unwrap()
            .facts,
        later.facts
    );
}

#[test]
fn the_state_round_trips_through_json() {
    let state = (1..=3).fold(fired(), |s, n| tick(&s, failed(), T0 + n).state);
    let json = serde_json::to_string(&state).unwrap();
    let back: AlertState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, state);
    assert!(json.contains("\"version\":1"), "{json}");
}

#[test]
fn a_forgotten_entity_is_dropped_without_a_recovery() {
    let forget = CollectorTick::Ok {
        signals: vec![],
        unreadable: vec![],
        forget: vec!["proc:7:1".into()],
        memory: None,
    };
    let outcome = tick(&fired(), forget, T0 + 30);
    assert!(outcome.alerts.is_empty(), "{:?}", outcome.alerts);
    assert_eq!(reasons(&outcome), [Reason::Forgotten]);
    assert_eq!(outcome.state.entities().count(), 0);
}

mod host_pressure {
    //! The pressure builder and decide() together, tick by tick, as the runner drives them:
    //! the builder's memory goes into the state only through a tick that read the files.

    use watchdog::engine::{decide, AlertState, CollectorTick, Reason};
    use watchdog::model::{EventKind, Facts, Kind, Memory, Unix};
    use watchdog::signals::pressure::{build, History, PressureRules};
    use watchdog_collectors::pressure::{PressureScan, Resource, ResourcePressure, Source, Top};

    use super::{failed, rules, COOLDOWN, T0};

    const FOR_S: u64 = 300;

    /// Seconds after T0, what was read (`None`: a failed read), the events and the reasons.
    type Step = (Unix, Option<f64>, &'static [EventKind], &'static [Reason]);

    fn scan(avg60: f64) -> PressureScan {
        PressureScan {
            resources: vec![ResourcePressure {
                resource: Resource::Cpu,
                source: Source::Psi,
                some_avg10: Some(avg60),
                some_avg60: Some(avg60),
                some_avg300: Some(avg60),
                full_avg60: None,
                threshold_pct: 50.0,
                at_or_above: avg60 >= 50.0,
            }],
            top: Top::BelowThreshold,
        }
    }

    /// One tick: `Some(avg60)` read, `None` a failed read. Returns the events and reasons.
    fn tick(state: &mut AlertState, read: Option<f64>, now: Unix) -> (Vec<EventKind>, Vec<Reason>) {
        let outcome = match read {
            Some(avg60) => {
                let built = build(
                    &scan(avg60),
                    History::Kept(state.pressure()),
                    &[],
                    now,
                    &PressureRules { for_s: FOR_S },
                );
                let tick = CollectorTick::Ok {
                    signals: built.signals,
                    unreadable: Vec::new(),
                    forget: Vec::new(),
                    memory: built.memory.map(Memory::Pressure),
                };
                decide(state.clone(), vec![("pressure", tick)], now, &rules())
            }
            None => decide(state.clone(), vec![("pressure", failed())], now, &rules()),
        };
        *state = outcome.state;
        let reasons = outcome
            .decisions
            .iter()
            .filter(|(kind, _, _)| *kind == Kind::HostPressure)
            .map(|(_, _, r)| *r)
            .collect();
        (outcome.alerts.iter().map(|a| a.event).collect(), reasons)
    }

    #[test]
    fn a_failed_read_neither_starts_nor_resets_the_for_window() {
        let mut state = AlertState::default();
        assert_eq!(tick(&mut state, Some(80.0), T0).0, []);
        assert_eq!(tick(&mut state, None, T0 + 150).0, []);
        let above = state.pressure().resources.values().next().copied();
        assert_eq!(
            above.and_then(|t| t.above_since),
            Some(T0),
            "kept through the failure"
        );
        assert_eq!(tick(&mut state, Some(80.0), T0 + 300).0, [EventKind::Fire]);

        let mut calm = AlertState::default();
        tick(&mut calm, None, T0);
        assert!(
            calm.pressure().resources.is_empty(),
            "a failed read starts nothing"
        );
    }

    #[test]
    fn fire_reminder_hold_and_recovery_go_through_decide() {
        let mut state = AlertState::default();
        let steps: [Step; 8] = [
            (0, Some(80.0), &[], &[]),
            (300, Some(80.0), &[EventKind::Fire], &[Reason::First]),
            (
                300 + COOLDOWN as Unix - 1,
                Some(80.0),
                &[],
                &[Reason::WithinCooldown],
            ),
            (
                300 + COOLDOWN as Unix,
                Some(80.0),
                &[EventKind::Reminder],
                &[Reason::Reminder],
            ),
            (2200, Some(10.0), &[], &[Reason::WithinCooldown]),
            (2300, None, &[], &[Reason::HeldCollectorFailed]),
            (2499, Some(10.0), &[], &[Reason::WithinCooldown]),
            (
                2500,
                Some(10.0),
                &[EventKind::Recovery],
                &[Reason::Recovered],
            ),
        ];
        for (at, read, events, reasons) in steps {
            let got = tick(&mut state, read, T0 + at);
            assert_eq!(got.0, events, "events at +{at}s ({read:?})");
            assert_eq!(got.1, reasons, "reasons at +{at}s ({read:?})");
        }
        assert!(state.get(Kind::HostPressure, "pressure:cpu").is_none());
        assert!(state.pressure().resources.values().all(|t| !t.active));
    }

    #[test]
    fn a_pressure_alert_and_its_memory_survive_the_state_file() {
        let mut state = AlertState::default();
        tick(&mut state, Some(80.0), T0);
        tick(&mut state, Some(80.0), T0 + 300);
        let json = serde_json::to_string(&state).unwrap();
        let back: AlertState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state, "{json}");
        let known = back.get(Kind::HostPressure, "pressure:cpu").expect("fired");
        assert!(
            matches!(known.facts, Facts::Pressure(_)),
            "{:?}",
            known.facts
        );
        assert_eq!(back.pressure(), state.pressure());
    }

    #[test]
    fn switching_pressure_off_forgets_its_memory_too() {
        let mut state = AlertState::default();
        tick(&mut state, Some(80.0), T0);
        assert!(!state.pressure().resources.is_empty());
        state.retain_enabled(&["proc"]);
        assert!(state.pressure().resources.is_empty());
    }
}
