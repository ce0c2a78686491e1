//! The alert engine: from this tick's signals to the alerts a person should get.
//!
//! Owns [`decide`], a pure function of the previous [`AlertState`], each collector's outcome
//! this tick, and `now`. It reads no clock and does no I/O: the tick's `now` is the only time it
//! knows. Each entity goes through one table, [`classify`], which names the [`Reason`] for what
//! happens to it, and one [`apply`] step, which carries that reason out. It alerts once when
//! something goes wrong, reminds at most every cooldown while it stays wrong, and synthesises
//! one recovery when it is over. It never recovers what it could not see: an entity whose
//! collector failed, or that was seen but could not be read, is held exactly as it was.

mod state;

use std::collections::HashSet;

pub use state::{AlertState, EntityState, COLLECTOR_ENTITY_PREFIX};

pub use crate::model::Reason;
use crate::model::{
    Alert, CollectFailure, CollectorFacts, EventKind, Facts, Kind, Memory, Signal, Unix,
};

/// What one collector did this tick, as the engine needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum CollectorTick {
    /// It looked: these are its signals, the entities it saw but could not read, given as id
    /// prefixes (`proc:7` holds `proc:7:<any start>`), the entities it stopped watching
    /// (`forget`: dropped without a recovery, since nothing says they are over), and what its
    /// builders remember for the next tick (jobs and pressure).
    Ok {
        signals: Vec<Signal>,
        unreadable: Vec<String>,
        forget: Vec<String>,
        memory: Option<Memory>,
    },
    /// It could not look.
    Failed { error: CollectFailure },
}

impl CollectorTick {
    /// A successful look with signals only.
    pub fn ok(signals: Vec<Signal>) -> Self {
        CollectorTick::Ok {
            signals,
            unreadable: Vec::new(),
            forget: Vec::new(),
            memory: None,
        }
    }
}

/// Thresholds of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub proc_cooldown_s: u64,
    pub jobs_cooldown_s: u64,
    pub pressure_cooldown_s: u64,
    /// Consecutive failed ticks after which a collector's blindness is itself an alert.
    pub collector_fail_ticks: u32,
    pub collector_fail_cooldown_s: u64,
}

impl Rules {
    fn cooldown_s(&self, kind: Kind) -> u64 {
        match kind {
            Kind::ProcBlocking => self.proc_cooldown_s,
            Kind::AgentHung | Kind::JobLeftover => self.jobs_cooldown_s,
            Kind::HostPressure => self.pressure_cooldown_s,
            Kind::CollectorFailing => self.collector_fail_cooldown_s,
            // Test events never enter the state; a cooldown of none is as good as any.
            Kind::Test => 0,
        }
    }
}

/// The result of one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The next state, with the builders' memory of this tick in it.
    pub state: AlertState,
    /// The alerts to send, in the order they were decided.
    pub alerts: Vec<Alert>,
    /// Why each entity that the engine touched ended as it did; for logs and tests.
    pub decisions: Vec<(Kind, String, Reason)>,
}

/// What this tick saw of one entity.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// Seen, and wrong.
    Active(Facts),
    /// Seen, and not wrong (with what was seen of it, where there is anything new).
    Inactive(Option<Facts>),
    /// Its collector looked and did not see it.
    Absent,
    /// Its collector saw it but could not read it.
    Unreadable,
    /// Its collector could not look.
    CollectorFailed,
    /// Its collector no longer watches it.
    Forgotten,
}

/// The table: what happens to an entity, from what was known of it and what this tick saw.
/// `None` means there is nothing to do (not known, and nothing wrong).
pub fn classify(
    known: Option<&EntityState>,
    seen: &Seen,
    now: Unix,
    cooldown_s: u64,
) -> Option<Reason> {
    match (known, seen) {
        // Not alerted yet: this is the news.
        (None, Seen::Active(_)) => Some(Reason::First),
        // Never alerted: its being fine, gone or unknown tells nobody anything.
        (None, _) => None,
        // A person was told; tell again only once the cooldown has passed, so a stuck process
        // is a reminder every cooldown and not a page every tick.
        (Some(k), Seen::Active(_)) if elapsed(k.last_notified, now) >= cooldown_s => {
            Some(Reason::Reminder)
        }
        // Told recently: stay quiet until the cooldown has passed.
        (Some(_), Seen::Active(_)) => Some(Reason::WithinCooldown),
        // Seen, and no longer wrong.
        (Some(_), Seen::Inactive(_)) => Some(Reason::Recovered),
        // A collection that worked did not see it: it is gone.
        (Some(_), Seen::Absent) => Some(Reason::Gone),
        // Its process is there but could not be read: unknown is not gone.
        (Some(_), Seen::Unreadable) => Some(Reason::HeldUnreadable),
        // What a collector could not look at is unknown, never recovered.
        (Some(_), Seen::CollectorFailed) => Some(Reason::HeldCollectorFailed),
        // No longer watched is not the same as over: drop it without a word.
        (Some(_), Seen::Forgotten) => Some(Reason::Forgotten),
    }
}

/// Carries out `reason` for one entity on `state`, and returns the alert it sends, if any.
pub fn apply(
    state: &mut AlertState,
    kind: Kind,
    entity: &str,
    seen: Seen,
    reason: Reason,
    now: Unix,
) -> Option<Alert> {
    let facts = facts_of(seen);
    match reason {
        Reason::First => {
            let known = EntityState {
                kind,
                entity: entity.to_string(),
                since: now,
                last_notified: now,
                facts: facts?,
                held: false,
            };
            let alert = alert(EventKind::Fire, &known, now, reason);
            state.insert(known);
            Some(alert)
        }
        Reason::Reminder | Reason::WithinCooldown => {
            let known = state.get_mut(kind, entity)?;
            refresh_facts(known, facts);
            if reason == Reason::Reminder {
                known.last_notified = now;
                return Some(alert(EventKind::Reminder, known, now, reason));
            }
            None
        }
        Reason::Recovered | Reason::Gone => {
            let mut known = state.remove(kind, entity)?;
            if let Some(facts) = facts {
                known.facts = facts;
            }
            Some(alert(EventKind::Recovery, &known, now, reason))
        }
        Reason::HeldUnreadable | Reason::HeldCollectorFailed => {
            state.get_mut(kind, entity)?.held = true;
            None
        }
        Reason::Forgotten => {
            state.remove(kind, entity);
            None
        }
        Reason::Test => None,
    }
}

/// An alerted entity seen again: its facts are this tick's, and it is no longer held.
fn refresh_facts(known: &mut EntityState, facts: Option<Facts>) {
    if let Some(facts) = facts {
        known.facts = facts;
    }
    known.held = false;
}

/// [`refresh_facts`] with what was seen.
fn refresh(known: &mut EntityState, seen: Seen) {
    refresh_facts(known, facts_of(seen));
}

/// The facts a sighting carries: an active or an inactive signal's.
fn facts_of(seen: Seen) -> Option<Facts> {
    match seen {
        Seen::Active(facts) | Seen::Inactive(Some(facts)) => Some(facts),
        _ => None,
    }
}

/// Decides one tick. `collectors` holds every enabled collector's outcome. The previous state and
/// the outcomes are taken, not borrowed: the next state is made from them in place, each
/// signal's facts moved into it, with nothing copied.
pub fn decide(
    previous: AlertState,
    collectors: Vec<(&str, CollectorTick)>,
    now: Unix,
    rules: &Rules,
) -> Outcome {
    let mut tick = Tick {
        state: previous,
        alerts: Vec::new(),
        decisions: Vec::new(),
        now,
        rules,
    };
    for (name, outcome) in collectors {
        match outcome {
            CollectorTick::Ok {
                signals,
                unreadable,
                forget,
                memory,
            } => {
                tick.state.fail_streaks.remove(name);
                // The watchdog can see again.
                tick.one(
                    Kind::CollectorFailing,
                    &collector_entity(name),
                    Seen::Inactive(None),
                );
                for entity in &forget {
                    for kind in tick.state.entities.keys().copied().collect::<Vec<_>>() {
                        tick.one(kind, entity, Seen::Forgotten);
                    }
                }
                tick.signals(name, signals, &unreadable);
                // Only a collection that worked updates what its builders remember.
                match memory {
                    Some(Memory::Jobs(memory)) => tick.state.jobs = memory,
                    Some(Memory::Proc(memory)) => tick.state.proc = memory,
                    Some(Memory::Pressure(pressure)) => tick.state.pressure = pressure,
                    None => {}
                }
            }
            CollectorTick::Failed { error } => tick.failed(name, &error),
        }
    }
    Outcome {
        state: tick.state,
        alerts: tick.alerts,
        decisions: tick.decisions,
    }
}

fn collector_entity(name: &str) -> String {
    format!("{COLLECTOR_ENTITY_PREFIX}{name}")
}

/// The state of one tick being decided.
struct Tick<'r> {
    state: AlertState,
    alerts: Vec<Alert>,
    decisions: Vec<(Kind, String, Reason)>,
    now: Unix,
    rules: &'r Rules,
}

impl Tick<'_> {
    /// Classifies and applies one entity, and records what was decided.
    fn one(&mut self, kind: Kind, entity: &str, seen: Seen) {
        let cooldown_s = self.rules.cooldown_s(kind);
        let known = self.state.get_mut(kind, entity);
        let Some(reason) = classify(known.as_deref(), &seen, self.now, cooldown_s) else {
            return;
        };
        // A steady tick's every entity: refreshed where it was just found, not looked up again.
        if let (Reason::WithinCooldown, Some(known)) = (reason, known) {
            refresh(known, seen);
            self.decisions.push((kind, entity.to_string(), reason));
            return;
        }
        if let Some(alert) = apply(&mut self.state, kind, entity, seen, reason, self.now) {
            self.alerts.push(alert);
        }
        self.decisions.push((kind, entity.to_string(), reason));
    }

    fn signals(&mut self, collector: &str, signals: Vec<Signal>, unreadable: &[String]) {
        let mut signalled: Vec<(Kind, String)> = Vec::with_capacity(signals.len());
        for signal in signals {
            let (kind, entity) = (signal.kind, signal.entity);
            let what = if signal.active {
                Seen::Active(signal.facts)
            } else {
                Seen::Inactive(Some(signal.facts))
            };
            self.one(kind, &entity, what);
            signalled.push((kind, entity));
        }
        let seen: HashSet<(Kind, &str)> = signalled
            .iter()
            .map(|(kind, entity)| (*kind, entity.as_str()))
            .collect();
        // What this collector's successful look did not see, in a stable order, so the events of
        // one tick always come out the same way. Only those ids are copied and sorted: in a
        // steady tick every known entity is seen, and there are none.
        let unseen = self
            .state
            .ids_of_where(collector, |kind, entity| !seen.contains(&(kind, entity)));
        for (kind, entity) in unseen {
            let what = if unreadable.iter().any(|prefix| holds(prefix, &entity)) {
                Seen::Unreadable
            } else {
                Seen::Absent
            };
            self.one(kind, &entity, what);
        }
    }

    fn failed(&mut self, collector: &str, error: &CollectFailure) {
        for (kind, entity) in self.state.ids_of(collector) {
            self.one(kind, &entity, Seen::CollectorFailed);
        }
        let streak = self
            .state
            .fail_streaks
            .entry(collector.to_string())
            .or_insert(0);
        *streak = streak.saturating_add(1);
        let streak = *streak;
        if streak >= self.rules.collector_fail_ticks {
            // A watchdog that cannot see must say so.
            let facts = Facts::Collector(CollectorFacts {
                collector: collector.to_string(),
                error: error.to_string(),
                failed_ticks: streak,
            });
            self.one(
                Kind::CollectorFailing,
                &collector_entity(collector),
                Seen::Active(facts),
            );
        }
    }
}

/// Whether an unreadable-entity prefix covers `entity`: equal, or followed by `:`.
fn holds(prefix: &str, entity: &str) -> bool {
    entity
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
}

fn elapsed(from: Unix, to: Unix) -> u64 {
    u64::try_from(to.saturating_sub(from)).unwrap_or(0)
}

fn alert(event: EventKind, known: &EntityState, at: Unix, reason: Reason) -> Alert {
    Alert {
        event,
        kind: known.kind,
        entity: known.entity.clone(),
        since: known.since,
        at,
        facts: known.facts.clone(),
        reason,
    }
}
