//! The alert engine: from this tick's signals to the alerts a person should get.
//!
//! Owns [`AlertState`] (what fired and when) and [`decide`], a pure function of the previous
//! state, each collector's outcome this tick, and `now`. It reads no clock and does no I/O: the
//! tick's `now` is the only time it knows. It alerts once when something goes wrong, reminds at
//! most every cooldown while it stays wrong, and synthesises one recovery when it is over. It
//! never recovers what it could not see: an entity whose collector failed, or that was seen but
//! could not be read, is held exactly as it was.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::signals::jobs::JobsMemory;
use crate::signals::{CollectorFacts, Facts, Kind, Signal};

/// Seconds since the Unix epoch: the engine's only unit of time.
pub type Unix = i64;

/// What an alert says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// It went wrong.
    Fire,
    /// It is still wrong, a cooldown after the last alert.
    Reminder,
    /// It is over.
    Recovery,
    /// `watchdog test-alert`: proves the wiring, says nothing about the host.
    Test,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Fire => "fire",
            EventKind::Reminder => "reminder",
            EventKind::Recovery => "recovery",
            EventKind::Test => "test",
        }
    }
}

/// One alert to send, before it is rendered into text for a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub event: EventKind,
    pub kind: Kind,
    pub entity: String,
    /// When the entity became active.
    pub since: Unix,
    /// When this alert was decided.
    pub at: Unix,
    pub facts: Facts,
}

impl Alert {
    /// How long the entity has been active, up to this alert.
    pub fn duration_s(&self) -> u64 {
        u64::try_from(self.at - self.since).unwrap_or(0)
    }
}

/// Why the engine did what it did with one entity this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Became active: fire.
    First,
    /// Still active and a cooldown has passed since the last alert: remind.
    Reminder,
    /// Still active, inside the cooldown: nothing to send.
    WithinCooldown,
    /// Seen inactive after it fired: recover.
    Recovered,
    /// Absent from a successful collection after it fired: recover.
    Gone,
    /// Its collector failed this tick: hold.
    HeldCollectorFailed,
    /// Seen but unreadable this tick: hold.
    HeldUnreadable,
    /// No longer watched (a leftover watch that reached its keep): dropped, no recovery.
    Forgotten,
}

/// What the engine remembers of one entity that fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityState {
    pub kind: Kind,
    pub entity: String,
    pub since: Unix,
    pub last_notified: Unix,
    /// The facts of the last tick that saw it.
    pub facts: Facts,
    /// Whether its collector could not see it on the last tick (failed, or unreadable).
    #[serde(default)]
    pub held: bool,
    /// Set while a tick is decided, for the entities its collector saw; never stored.
    #[serde(skip)]
    seen: bool,
}

/// Everything the engine carries from one tick to the next. Persisted as the state file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "StateFile", into = "StateFile")]
pub struct AlertState {
    /// By kind, then entity id: a lookup borrows the id, with nothing allocated.
    entities: BTreeMap<Kind, HashMap<String, EntityState>>,
    /// Consecutive failed ticks, per collector name; absent means it last worked.
    fail_streaks: BTreeMap<String, u32>,
    /// What the jobs builders remember between ticks.
    jobs: JobsMemory,
}

/// The on-disk shape of [`AlertState`]: JSON maps need string keys.
#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    entities: Vec<EntityState>,
    fail_streaks: BTreeMap<String, u32>,
    #[serde(default)]
    jobs: JobsMemory,
}

const STATE_VERSION: u32 = 1;

impl From<StateFile> for AlertState {
    fn from(file: StateFile) -> Self {
        let mut entities: BTreeMap<Kind, HashMap<String, EntityState>> = BTreeMap::new();
        for e in file.entities {
            entities
                .entry(e.kind)
                .or_default()
                .insert(e.entity.clone(), e);
        }
        Self {
            entities,
            fail_streaks: file.fail_streaks,
            jobs: file.jobs,
        }
    }
}

impl From<AlertState> for StateFile {
    fn from(state: AlertState) -> Self {
        Self {
            version: STATE_VERSION,
            entities: {
                // Sorted, so the same state always writes the same file.
                let mut all: Vec<EntityState> = state
                    .entities
                    .into_values()
                    .flat_map(HashMap::into_values)
                    .collect();
                all.sort_by(|a, b| (a.kind, &a.entity).cmp(&(b.kind, &b.entity)));
                all
            },
            fail_streaks: state.fail_streaks,
            jobs: state.jobs,
        }
    }
}

impl AlertState {
    /// Every entity, in no particular order.
    pub fn entities(&self) -> impl Iterator<Item = &EntityState> {
        self.entities.values().flat_map(HashMap::values)
    }

    pub fn get(&self, kind: Kind, entity: &str) -> Option<&EntityState> {
        self.entities.get(&kind)?.get(entity)
    }

    fn get_mut(&mut self, kind: Kind, entity: &str) -> Option<&mut EntityState> {
        self.entities.get_mut(&kind)?.get_mut(entity)
    }

    fn remove(&mut self, kind: Kind, entity: &str) -> Option<EntityState> {
        let of_kind = self.entities.get_mut(&kind)?;
        let removed = of_kind.remove(entity);
        if of_kind.is_empty() {
            self.entities.remove(&kind);
        }
        removed
    }

    /// The ids of the entities of the kinds `collector` produces, sorted.
    fn ids_of(&self, collector: &str) -> Vec<(Kind, String)> {
        let mut ids: Vec<(Kind, String)> = self
            .entities
            .iter()
            .filter(|(kind, _)| kind.collector() == Some(collector))
            .flat_map(|(kind, of_kind)| of_kind.keys().map(move |id| (*kind, id.clone())))
            .collect();
        ids.sort_unstable();
        ids
    }

    pub fn jobs(&self) -> &JobsMemory {
        &self.jobs
    }

    /// Replaces what the jobs builders remember (after a successful jobs collection).
    pub fn set_jobs(&mut self, memory: JobsMemory) {
        self.jobs = memory;
    }

    pub fn fail_streak(&self, collector: &str) -> u32 {
        self.fail_streaks.get(collector).copied().unwrap_or(0)
    }

    /// Forgets the entities and failure streaks of collectors that are not enabled, and returns
    /// what it forgot. They are no longer watched; that is not a recovery.
    pub fn retain_enabled(&mut self, enabled: &[&str]) -> Vec<EntityState> {
        let watched = |kind: Kind, entity: &str| match kind.collector() {
            Some(collector) => enabled.contains(&collector),
            None => entity
                .strip_prefix(COLLECTOR_ENTITY_PREFIX)
                .is_some_and(|name| enabled.contains(&name)),
        };
        let mut dropped: Vec<(Kind, String)> = self
            .entities()
            .filter(|e| !watched(e.kind, &e.entity))
            .map(|e| (e.kind, e.entity.clone()))
            .collect();
        dropped.sort_unstable();
        self.fail_streaks
            .retain(|name, _| enabled.contains(&name.as_str()));
        dropped
            .into_iter()
            .filter_map(|(kind, entity)| self.remove(kind, &entity))
            .collect()
    }
}

/// What one collector did this tick, as the engine needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum CollectorTick {
    /// It looked: these are its signals, the entities it saw but could not read, given as id
    /// prefixes (`proc:7` holds `proc:7:<any start>`), and the entities it stopped watching
    /// (`forget`: dropped without a recovery, since nothing says they are over).
    Ok {
        signals: Vec<Signal>,
        unreadable: Vec<String>,
        forget: Vec<String>,
    },
    /// It could not look.
    Failed { error: String },
}

/// Thresholds of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub proc_cooldown_s: u64,
    pub jobs_cooldown_s: u64,
    /// Consecutive failed ticks after which a collector's blindness is itself an alert.
    pub collector_fail_ticks: u32,
    pub collector_fail_cooldown_s: u64,
}

impl Rules {
    fn cooldown_s(&self, kind: Kind) -> u64 {
        match kind {
            Kind::ProcBlocking => self.proc_cooldown_s,
            Kind::AgentHung | Kind::JobLeftover => self.jobs_cooldown_s,
            Kind::CollectorFailing => self.collector_fail_cooldown_s,
            // Test events never enter the state; a cooldown of none is as good as any.
            Kind::Test => 0,
        }
    }
}

/// The result of one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub state: AlertState,
    /// The alerts to send, in the order they were decided.
    pub alerts: Vec<Alert>,
    /// Why each entity that the engine touched ended as it did; for logs and tests.
    pub decisions: Vec<(Kind, String, Reason)>,
}

/// The entity id of a collector's own failing alert is this prefix and the collector's name.
pub const COLLECTOR_ENTITY_PREFIX: &str = "collector:";

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
            } => {
                tick.collector_worked(name);
                tick.forget(&forget);
                tick.apply_signals(name, signals, &unreadable);
            }
            CollectorTick::Failed { error } => tick.collector_failed(name, &error),
        }
    }
    Outcome {
        state: tick.state,
        alerts: tick.alerts,
        decisions: tick.decisions,
    }
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
    /// One entity active this tick: fire, remind or wait.
    fn active(&mut self, kind: Kind, entity: String, facts: Facts) {
        let now = self.now;
        let cooldown = self.rules.cooldown_s(kind);
        let reason = match self.state.get_mut(kind, &entity) {
            Some(known) => {
                known.facts = facts;
                known.held = false;
                // Only a collector's own pass marks and clears what it saw.
                known.seen = kind.collector().is_some();
                // A person was told; tell again only once the cooldown has passed, so a stuck
                // process is a reminder every cooldown and not a page every tick.
                if elapsed(known.last_notified, now) >= cooldown {
                    known.last_notified = now;
                    Reason::Reminder
                } else {
                    Reason::WithinCooldown
                }
            }
            // Not alerted yet: this is the news.
            None => {
                let known = EntityState {
                    kind,
                    entity: entity.clone(),
                    since: now,
                    last_notified: now,
                    facts,
                    held: false,
                    seen: kind.collector().is_some(),
                };
                self.state
                    .entities
                    .entry(kind)
                    .or_default()
                    .insert(entity.clone(), known);
                Reason::First
            }
        };
        let event = match reason {
            Reason::First => Some(EventKind::Fire),
            Reason::Reminder => Some(EventKind::Reminder),
            _ => None,
        };
        if let (Some(event), Some(known)) = (event, self.state.get(kind, &entity)) {
            self.alerts.push(alert(event, known, now));
        }
        self.decisions.push((kind, entity, reason));
    }

    /// One entity that fired is over: send the recovery and forget it.
    fn recover(&mut self, kind: Kind, entity: &str, facts: Option<Facts>, reason: Reason) {
        if let Some(mut known) = self.state.remove(kind, entity) {
            if let Some(facts) = facts {
                known.facts = facts;
            }
            self.alerts
                .push(alert(EventKind::Recovery, &known, self.now));
            self.decisions.push((kind, entity.to_string(), reason));
        }
    }

    /// Entities no longer watched: dropped as they are, without a recovery.
    fn forget(&mut self, entities: &[String]) {
        for entity in entities {
            for kind in self.state.entities.keys().copied().collect::<Vec<_>>() {
                if self.state.remove(kind, entity).is_some() {
                    self.decisions
                        .push((kind, entity.clone(), Reason::Forgotten));
                }
            }
        }
    }

    fn hold(&mut self, kind: Kind, entity: &str, reason: Reason) {
        if let Some(known) = self.state.get_mut(kind, entity) {
            known.held = true;
            self.decisions.push((kind, entity.to_string(), reason));
        }
    }

    fn apply_signals(&mut self, collector: &str, signals: Vec<Signal>, unreadable: &[String]) {
        for signal in signals {
            if signal.active {
                self.active(signal.kind, signal.entity, signal.facts);
            } else {
                // Seen, and no longer wrong.
                self.recover(
                    signal.kind,
                    &signal.entity,
                    Some(signal.facts),
                    Reason::Recovered,
                );
            }
        }
        // What this collector's successful look did not see, and the marks cleared for the next.
        let mut absent = Vec::new();
        for (kind, of_kind) in &mut self.state.entities {
            if kind.collector() != Some(collector) {
                continue;
            }
            for (id, known) in of_kind.iter_mut() {
                if !std::mem::take(&mut known.seen) {
                    absent.push((*kind, id.clone()));
                }
            }
        }
        // In a stable order, so the events of one tick always come out the same way.
        absent.sort_unstable();
        for (kind, entity) in absent {
            if unreadable.iter().any(|prefix| holds(prefix, &entity)) {
                // Its process is there but could not be read: unknown is not gone.
                self.hold(kind, &entity, Reason::HeldUnreadable);
            } else {
                // A collection that worked did not see it: it is gone.
                self.recover(kind, &entity, None, Reason::Gone);
            }
        }
    }

    fn collector_worked(&mut self, collector: &str) {
        self.state.fail_streaks.remove(collector);
        let entity = format!("{COLLECTOR_ENTITY_PREFIX}{collector}");
        // The watchdog can see again.
        self.recover(Kind::CollectorFailing, &entity, None, Reason::Recovered);
    }

    fn collector_failed(&mut self, collector: &str, error: &str) {
        for (kind, entity) in self.state.ids_of(collector) {
            // What a collector could not look at is unknown, never recovered.
            self.hold(kind, &entity, Reason::HeldCollectorFailed);
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
            let entity = format!("{COLLECTOR_ENTITY_PREFIX}{collector}");
            self.active(Kind::CollectorFailing, entity, facts);
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
    u64::try_from(to - from).unwrap_or(0)
}

fn alert(event: EventKind, known: &EntityState, at: Unix) -> Alert {
    Alert {
        event,
        kind: known.kind,
        entity: known.entity.clone(),
        since: known.since,
        at,
        facts: known.facts.clone(),
    }
}
