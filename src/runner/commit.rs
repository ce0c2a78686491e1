//! When a tick is committed to the store, and what the commit carries.
//!
//! Owns the commit policy and the events no commit has taken yet. A tick is committed when it
//! decided an event, when anything that decides one changed (an entity, a fail streak, a
//! builder's memory: [`AlertState::decision_digest`]), while earlier events still wait, and
//! otherwise at most every [`FACTS_EVERY_S`], which only refreshes the facts a recovery will
//! quote. While commits fail, every decided event is kept here, bounded by
//! `WATCHDOG_OUTBOX_MAX`, and goes with the next commit that works. It numbers events, and
//! logs one ERROR when commits start failing and one line when they work again.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use crate::engine::AlertState;
use crate::model::{Kind, Unix};
use crate::store::{push_bounded, Decided, Seq, StateWrite, StoredState, TickCommit};

/// Each stored entity's [`AlertState::entity_digest`], by kind and id.
type Digests = HashMap<Kind, HashMap<String, u64>>;

/// The longest the stored facts lag behind when nothing else changes, in seconds.
pub const FACTS_EVERY_S: Unix = 300;

/// The runner's side of the store: numbering, the commit policy and what waits.
pub struct Commits {
    next_seq: Seq,
    /// Decided events no commit has taken yet, oldest first.
    backlog: VecDeque<Decided>,
    /// The decision digest of the last committed state.
    committed: u64,
    /// The digest of the state being committed.
    committing: u64,
    /// The entity rows as stored, and as they will be once the commit in flight works.
    stored: Digests,
    storing: Option<(Digests, bool)>,
    last_commit_at: Unix,
    /// When every entity row was last written with fresh facts.
    last_facts_at: Unix,
    /// The next commit writes every entity row (the state came from a 0.1 file).
    rewrite: bool,
    /// Why commits fail, while they do.
    failing: Option<String>,
}

impl Commits {
    /// Starts from the state as loaded, which is the committed one; `rewrite` when its entities
    /// have no rows of their own yet.
    pub fn new(state: &AlertState, next_seq: Seq, now: Unix, rewrite: bool) -> Self {
        let digest = state.decision_digest();
        Self {
            next_seq,
            backlog: VecDeque::new(),
            committed: digest,
            committing: digest,
            stored: digests(state),
            storing: None,
            last_commit_at: now,
            last_facts_at: now,
            rewrite,
            failing: None,
        }
    }

    /// The number of the next decided event.
    pub fn number(&mut self) -> Seq {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// What to commit after a tick that decided `events` and left `state`, or `None` when the
    /// policy says this tick need not be committed (never when `force`).
    #[allow(clippy::too_many_arguments)]
    pub fn prepare(
        &mut self,
        state: &AlertState,
        events: &[Decided],
        channels: Vec<&'static str>,
        at: Unix,
        history_s: i64,
        max: usize,
        force: bool,
    ) -> Option<TickCommit> {
        for decided in events {
            for dropped in push_bounded(&mut self.backlog, decided.clone(), max, |d| d.event.event)
            {
                tracing::error!(
                    id = %dropped.0.event.id,
                    entity = %dropped.0.event.entity,
                    max,
                    "commits keep failing: an event that was never stored is forgotten by the history"
                );
            }
        }
        let digest = state.decision_digest();
        let facts_due =
            force || self.rewrite || at.saturating_sub(self.last_facts_at) >= FACTS_EVERY_S;
        let due = facts_due
            || !self.backlog.is_empty()
            || self.failing.is_some()
            || digest != self.committed;
        if !due {
            return None;
        }
        self.committing = digest;
        let (write, storing) = self.changes(state, facts_due);
        self.storing = Some(storing);
        Some(TickCommit {
            state: Some(write),
            events: self.backlog.iter().cloned().collect(),
            channels,
            prune_before: at.saturating_sub(history_s),
        })
    }

    /// The rows to write to go from what is stored to `state`: every entity when `all` (the
    /// facts are due), else those whose digest changed; and the digests once written.
    fn changes(&self, state: &AlertState, all: bool) -> (StateWrite, (Digests, bool)) {
        let mut write = StateWrite {
            rest: state.rest_json(),
            replace_all: all,
            ..StateWrite::default()
        };
        let next = digests(state);
        for entity in state.entities() {
            let digest = next[&entity.kind][entity.entity.as_str()];
            let stored = self
                .stored
                .get(&entity.kind)
                .and_then(|of_kind| of_kind.get(entity.entity.as_str()));
            if all || stored != Some(&digest) {
                // A struct of strings, numbers and maps with string keys always serializes.
                let body = serde_json::to_string(entity).unwrap_or_default();
                write
                    .upsert
                    .push((entity.kind.as_str(), entity.entity.clone(), body));
            }
        }
        let gone = if all { &Digests::new() } else { &self.stored };
        for (kind, of_kind) in gone {
            for id in of_kind.keys() {
                if state.get(*kind, id).is_none() {
                    write.delete.push((kind.as_str(), id.clone()));
                }
            }
        }
        (write, (next, all))
    }

    /// Takes note of how the commit [`Commits::prepare`] made went.
    pub fn finished(&mut self, result: &Result<(), String>, at: Unix, dir: &Path) {
        match result {
            Ok(()) => {
                self.backlog.clear();
                self.committed = self.committing;
                if let Some((storing, facts)) = self.storing.take() {
                    self.stored = storing;
                    if facts {
                        self.last_facts_at = at;
                        self.rewrite = false;
                    }
                }
                self.last_commit_at = at;
                if self.failing.take().is_some() {
                    tracing::info!(dir = %dir.display(), "the state is committed again");
                }
            }
            Err(error) => {
                if self.failing.is_none() {
                    tracing::error!(
                        dir = %dir.display(),
                        waiting = self.backlog.len(),
                        "cannot commit the state: {error}; decided events are delivered from \
                         memory, and kept for the next commit that works"
                    );
                }
                self.failing = Some(error.clone());
            }
        }
    }
}

fn digests(state: &AlertState) -> Digests {
    let mut all = Digests::new();
    for entity in state.entities() {
        all.entry(entity.kind)
            .or_default()
            .insert(entity.entity.clone(), AlertState::entity_digest(entity));
    }
    all
}

/// The stored state, and whether its entities still need rows of their own; a fresh state
/// when there is none, or when it cannot be read (logged).
pub fn parse_state(stored: Option<&StoredState>) -> (AlertState, bool) {
    let Some(stored) = stored else {
        return (AlertState::default(), false);
    };
    AlertState::from_stored(&stored.rest, &stored.entities).unwrap_or_else(|e| {
        tracing::error!("the stored alert state cannot be read ({e}); starting fresh");
        (AlertState::default(), true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{self, CollectorTick, Rules};
    use crate::event::Event;
    use crate::model::{CollectFailure, EventKind, Lang};
    use std::sync::Arc;

    const RULES: Rules = Rules {
        proc_cooldown_s: 1800,
        jobs_cooldown_s: 1800,
        pressure_cooldown_s: 1800,
        collector_fail_ticks: 3,
        collector_fail_cooldown_s: 1800,
    };

    /// `state` after one failed tick of `proc`: a fail streak, and so a new decision digest.
    fn failed_once(state: AlertState, now: Unix) -> engine::Outcome {
        let error = CollectFailure::TimedOut {
            running_s: 10,
            limit_s: 10,
        };
        engine::decide(
            state,
            vec![("proc", CollectorTick::Failed { error })],
            now,
            &RULES,
        )
    }

    fn prepare(commits: &mut Commits, state: &AlertState, events: &[Decided], at: Unix) -> bool {
        commits
            .prepare(state, events, vec!["webhook"], at, 86_400, 10, false)
            .is_some()
    }

    /// Ticks of `proc` and `jobs` failing (`true`) or working, from `state`.
    fn ticks(mut state: AlertState, from: Unix, plan: &[(bool, bool)]) -> AlertState {
        let error = || CollectFailure::TimedOut {
            running_s: 10,
            limit_s: 10,
        };
        for (i, (proc, jobs)) in plan.iter().enumerate() {
            let tick = |failed: bool| {
                if failed {
                    CollectorTick::Failed { error: error() }
                } else {
                    CollectorTick::ok(Vec::new())
                }
            };
            let collectors = vec![("proc", tick(*proc)), ("jobs", tick(*jobs))];
            state = engine::decide(state, collectors, from + i as Unix, &RULES).state;
        }
        state
    }

    fn rows(write: &StateWrite) -> (Vec<&str>, Vec<&str>, bool) {
        let mut upsert: Vec<&str> = write.upsert.iter().map(|(_, id, _)| id.as_str()).collect();
        upsert.sort_unstable();
        let delete = write.delete.iter().map(|(_, id)| id.as_str()).collect();
        (upsert, delete, write.replace_all)
    }

    #[test]
    fn only_the_entity_rows_that_changed_are_written() {
        // Both collectors blind for three ticks: two collector_failing entities.
        let both = ticks(AlertState::default(), 1, &[(true, true); 3]);
        assert_eq!(both.entities().count(), 2);
        let mut commits = Commits::new(&AlertState::default(), 1, 1_000, false);
        let first = commits
            .prepare(&both, &[], vec![], 1_001, 86_400, 10, false)
            .unwrap();
        assert_eq!(
            rows(first.state.as_ref().unwrap()),
            (vec!["collector:jobs", "collector:proc"], vec![], false)
        );
        commits.finished(&Ok(()), 1_001, Path::new("/s"));

        // proc still blind (its facts change: the failed ticks count on), jobs sees again.
        let next = ticks(both, 4, &[(true, false)]);
        let tick = commits
            .prepare(&next, &[], vec![], 1_002, 86_400, 10, false)
            .unwrap();
        assert_eq!(
            rows(tick.state.as_ref().unwrap()),
            (vec![], vec!["collector:jobs"], false),
            "proc's row keeps its older facts; jobs' row goes"
        );
        commits.finished(&Ok(()), 1_002, Path::new("/s"));

        let due = commits
            .prepare(&next, &[], vec![], 1_000 + FACTS_EVERY_S, 86_400, 10, false)
            .unwrap();
        assert_eq!(
            rows(due.state.as_ref().unwrap()),
            (vec!["collector:proc"], vec![], true),
            "facts due: every row, in place of all"
        );
    }

    #[test]
    fn a_state_from_a_0_1_file_gets_its_rows_at_the_first_tick() {
        let both = ticks(AlertState::default(), 1, &[(true, true); 3]);
        let mut commits = Commits::new(&both, 1, 1_000, true);
        let first = commits
            .prepare(&both, &[], vec![], 1_001, 86_400, 10, false)
            .expect("committed although nothing changed");
        assert_eq!(
            rows(first.state.as_ref().unwrap()),
            (vec!["collector:jobs", "collector:proc"], vec![], true)
        );
        commits.finished(&Ok(()), 1_001, Path::new("/s"));
        assert!(commits
            .prepare(&both, &[], vec![], 1_002, 86_400, 10, false)
            .is_none());
    }

    #[test]
    fn a_tick_that_changes_nothing_is_committed_only_when_the_facts_are_due() {
        let state = AlertState::default();
        let mut commits = Commits::new(&state, 1, 1_000, false);
        assert!(!prepare(&mut commits, &state, &[], 1_001));
        assert!(!prepare(
            &mut commits,
            &state,
            &[],
            1_000 + FACTS_EVERY_S - 1
        ));
        assert!(prepare(&mut commits, &state, &[], 1_000 + FACTS_EVERY_S));
        commits.finished(&Ok(()), 1_000 + FACTS_EVERY_S, Path::new("/s"));
        assert!(!prepare(
            &mut commits,
            &state,
            &[],
            1_000 + FACTS_EVERY_S + 1
        ));
    }

    #[test]
    fn a_changed_decision_is_committed_at_once() {
        let state = AlertState::default();
        let mut commits = Commits::new(&state, 1, 1_000, false);
        let next = failed_once(state, 1_001).state;
        assert!(
            prepare(&mut commits, &next, &[], 1_001),
            "a fail streak decides an alert"
        );
        commits.finished(&Ok(()), 1_001, Path::new("/s"));
        assert!(
            !prepare(&mut commits, &next, &[], 1_002),
            "and once it is stored, no more"
        );
    }

    #[test]
    fn events_are_committed_and_kept_until_a_commit_works() {
        let state = AlertState::default();
        let mut commits = Commits::new(&state, 1, 1_000, false);
        let alert = failed_once(
            failed_once(failed_once(AlertState::default(), 1).state, 2).state,
            3,
        )
        .alerts;
        assert_eq!(alert.len(), 1, "the third failed tick fires");
        let decided = Decided {
            seq: commits.number(),
            at: 3,
            event: Arc::new(Event::render(&alert[0], "h", Lang::En)),
        };
        assert_eq!(decided.event.event, EventKind::Fire);
        let tick = commits
            .prepare(
                &state,
                &[decided],
                vec!["webhook"],
                1_001,
                86_400,
                10,
                false,
            )
            .unwrap();
        assert_eq!(tick.events.len(), 1);
        commits.finished(&Err("disk full".into()), 1_001, Path::new("/s"));
        // Nothing new, but the event still waits: every tick tries again, with it.
        let again = commits
            .prepare(&state, &[], vec!["webhook"], 1_002, 86_400, 10, false)
            .unwrap();
        assert_eq!(again.events.len(), 1);
        commits.finished(&Ok(()), 1_002, Path::new("/s"));
        assert!(!prepare(&mut commits, &state, &[], 1_003));
        assert_eq!(commits.number(), 2, "numbers go on");
    }
}
