//! The alert state: what fired and when, carried from one tick to the next and persisted.
//!
//! Owns [`AlertState`] and its on-disk shape. Everything here is meaningful between ticks:
//! nothing that only one tick needs is stored.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::model::{Facts, JobsMemory, Kind, PressureMemory, ProcMemory, Unix};

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
}

/// Everything the engine carries from one tick to the next. Persisted as the state file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "StateFile", into = "StateFile")]
pub struct AlertState {
    /// By kind, then entity id: a lookup borrows the id, with nothing allocated.
    pub(super) entities: BTreeMap<Kind, HashMap<String, EntityState>>,
    /// Consecutive failed ticks, per collector name; absent means it last worked.
    pub(super) fail_streaks: BTreeMap<String, u32>,
    /// What the jobs builders remember between ticks.
    pub(super) jobs: JobsMemory,
    /// What the proc builder remembers between ticks.
    pub(super) proc: ProcMemory,
    /// What the pressure builder remembers between ticks.
    pub(super) pressure: PressureMemory,
}

/// The on-disk shape of [`AlertState`]: JSON maps need string keys.
#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    #[serde(default)]
    entities: Vec<EntityState>,
    fail_streaks: BTreeMap<String, u32>,
    #[serde(default)]
    jobs: JobsMemory,
    #[serde(default, skip_serializing_if = "ProcMemory::is_empty")]
    proc: ProcMemory,
    #[serde(default)]
    pressure: PressureMemory,
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
            proc: file.proc,
            pressure: file.pressure,
        }
    }
}

impl From<AlertState> for StateFile {
    fn from(state: AlertState) -> Self {
        // Sorted, so the same state always writes the same file.
        let mut all: Vec<EntityState> = state
            .entities
            .into_values()
            .flat_map(HashMap::into_values)
            .collect();
        all.sort_by(|a, b| (a.kind, &a.entity).cmp(&(b.kind, &b.entity)));
        Self {
            version: STATE_VERSION,
            entities: all,
            fail_streaks: state.fail_streaks,
            jobs: state.jobs,
            proc: state.proc,
            pressure: state.pressure,
        }
    }
}

/// The entity id of a collector's own failing alert is this prefix and the collector's name.
pub const COLLECTOR_ENTITY_PREFIX: &str = "collector:";

impl AlertState {
    /// A digest of everything here that decides an alert: each entity but its facts, the fail
    /// streaks and the builders' memory. Two states with the same digest decide alike, so a
    /// tick that changed only facts need not be committed at once.
    pub fn decision_digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        // `new()` always uses the same keys: the digest is compared within one process.
        let mut hash = std::collections::hash_map::DefaultHasher::new();
        for e in self.entities_sorted() {
            (e.kind, &e.entity, e.since, e.last_notified, e.held).hash(&mut hash);
        }
        self.fail_streaks.hash(&mut hash);
        // Serializing a map of plain values to JSON cannot fail.
        let memory =
            serde_json::to_vec(&(&self.jobs, &self.proc, &self.pressure)).unwrap_or_default();
        memory.hash(&mut hash);
        hash.finish()
    }

    /// A digest of what decides `entity`'s alerts (all of it but its facts): the store rewrites
    /// an entity's row when this changes, and every row when the facts are due.
    pub fn entity_digest(entity: &EntityState) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hash = std::collections::hash_map::DefaultHasher::new();
        (entity.since, entity.last_notified, entity.held).hash(&mut hash);
        hash.finish()
    }

    /// Everything but the entities, as JSON: the one row the store keeps beside one row per
    /// entity.
    pub fn rest_json(&self) -> String {
        let rest = StateFile {
            version: STATE_VERSION,
            entities: Vec::new(),
            fail_streaks: self.fail_streaks.clone(),
            jobs: self.jobs.clone(),
            proc: self.proc.clone(),
            pressure: self.pressure.clone(),
        };
        // Maps of plain values with string keys always serialize.
        serde_json::to_string(&rest).unwrap_or_default()
    }

    /// The state from the store's rows: `rest` (which may also hold entities, as a 0.1
    /// `state.json` does) and one JSON body per entity; and whether `rest` held entities, which
    /// must then be given rows of their own.
    ///
    /// # Errors
    /// A row that cannot be read, naming what it is.
    pub fn from_stored(rest: &str, entities: &[String]) -> Result<(Self, bool), String> {
        let file: StateFile =
            serde_json::from_str(rest).map_err(|e| format!("the state row: {e}"))?;
        let embedded = !file.entities.is_empty();
        let mut state = Self::from(file);
        for body in entities {
            let entity: EntityState =
                serde_json::from_str(body).map_err(|e| format!("an entity row: {e}"))?;
            state.insert(entity);
        }
        Ok((state, embedded))
    }

    /// Every entity, in no particular order.
    pub fn entities(&self) -> impl Iterator<Item = &EntityState> {
        self.entities.values().flat_map(HashMap::values)
    }

    /// Every entity, by kind and then entity id.
    pub fn entities_sorted(&self) -> Vec<&EntityState> {
        let mut all: Vec<&EntityState> = self.entities().collect();
        all.sort_by(|a, b| (a.kind, &a.entity).cmp(&(b.kind, &b.entity)));
        all
    }

    pub fn get(&self, kind: Kind, entity: &str) -> Option<&EntityState> {
        self.entities.get(&kind)?.get(entity)
    }

    pub(super) fn get_mut(&mut self, kind: Kind, entity: &str) -> Option<&mut EntityState> {
        self.entities.get_mut(&kind)?.get_mut(entity)
    }

    pub(super) fn insert(&mut self, known: EntityState) {
        self.entities
            .entry(known.kind)
            .or_default()
            .insert(known.entity.clone(), known);
    }

    pub(super) fn remove(&mut self, kind: Kind, entity: &str) -> Option<EntityState> {
        let of_kind = self.entities.get_mut(&kind)?;
        let removed = of_kind.remove(entity);
        if of_kind.is_empty() {
            self.entities.remove(&kind);
        }
        removed
    }

    /// The ids of the entities of the kinds `collector` produces, sorted.
    pub(super) fn ids_of(&self, collector: &str) -> Vec<(Kind, String)> {
        self.ids_of_where(collector, |_, _| true)
    }

    /// As [`AlertState::ids_of`], of the entities `wanted` says yes to: only those are copied.
    pub(super) fn ids_of_where(
        &self,
        collector: &str,
        wanted: impl Fn(Kind, &str) -> bool,
    ) -> Vec<(Kind, String)> {
        let mut ids: Vec<(Kind, String)> = self
            .entities
            .iter()
            .filter(|(kind, _)| kind.collector() == Some(collector))
            .flat_map(|(kind, of_kind)| of_kind.keys().map(move |id| (*kind, id.as_str())))
            .filter(|&(kind, id)| wanted(kind, id))
            .map(|(kind, id)| (kind, id.to_string()))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// What the jobs builders remembered on the last tick that saw the job list.
    pub fn jobs(&self) -> &JobsMemory {
        &self.jobs
    }

    /// What the proc builder remembered on the last tick that saw the process list.
    pub fn proc(&self) -> &ProcMemory {
        &self.proc
    }

    /// What the pressure builder remembered on the last tick that read the pressure files.
    pub fn pressure(&self) -> &PressureMemory {
        &self.pressure
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
        if !enabled.contains(&"pressure") {
            // A run above the threshold that nobody watched is not one: start over when it is
            // switched on again, rather than fire at once on a week-old `above_since`.
            self.pressure = PressureMemory::default();
        }
        dropped
            .into_iter()
            .filter_map(|(kind, entity)| self.remove(kind, &entity))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CollectorFacts, Resource};

    fn facts(failed_ticks: u32) -> Facts {
        Facts::Collector(CollectorFacts {
            collector: "proc".into(),
            error: "x".into(),
            failed_ticks,
        })
    }

    fn entity(state: &mut AlertState) -> &mut EntityState {
        state
            .get_mut(Kind::CollectorFailing, "collector:proc")
            .unwrap()
    }

    #[test]
    fn the_decision_digest_ignores_facts_and_nothing_else() {
        let mut state = AlertState::default();
        state
            .entities
            .entry(Kind::CollectorFailing)
            .or_default()
            .insert(
                "collector:proc".into(),
                EntityState {
                    kind: Kind::CollectorFailing,
                    entity: "collector:proc".into(),
                    since: 10,
                    last_notified: 10,
                    facts: facts(3),
                    held: false,
                },
            );
        let before = state.decision_digest();
        entity(&mut state).facts = facts(4);
        assert_eq!(state.decision_digest(), before, "facts only");
        type Change = (&'static str, fn(&mut AlertState));
        let changes: [Change; 5] = [
            ("last_notified", |s| entity(s).last_notified = 11),
            ("since", |s| entity(s).since = 9),
            ("held", |s| entity(s).held = true),
            ("fail streak", |s| {
                s.fail_streaks.insert("proc".into(), 1);
            }),
            ("pressure window", |s| {
                s.pressure
                    .resources
                    .entry(Resource::Cpu)
                    .or_default()
                    .above_since = Some(5);
            }),
        ];
        for (what, change) in changes {
            let mut changed = state.clone();
            change(&mut changed);
            assert_ne!(changed.decision_digest(), before, "{what}");
        }
    }
}
