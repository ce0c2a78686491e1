//! When a tick is committed to the store, and what the commit carries.
//!
//! Owns the commit policy and the events no commit has taken yet. A tick is committed when it
//! decided an event, when anything that decides one changed (an entity, a fail streak, a
//! builder's memory: [`AlertState::decision_digest`]), while earlier events still wait, and
//! otherwise at most every [`FACTS_EVERY_S`], which only refreshes the facts a recovery will
//! quote. While commits fail, every decided event is kept here, bounded by
//! `WATCHDOG_OUTBOX_MAX`, and goes with the next commit that works. It numbers events, and
//! logs one ERROR when commits start failing and one line when they work again.

use std::collections::VecDeque;
use std::path::Path;

use crate::engine::AlertState;
use crate::model::Unix;
use crate::store::{push_bounded, Decided, Seq, TickCommit};

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
    last_commit_at: Unix,
    /// Why commits fail, while they do.
    failing: Option<String>,
}

impl Commits {
    /// Starts from the state as loaded, which is the committed one.
    pub fn new(state: &AlertState, next_seq: Seq, now: Unix) -> Self {
        let digest = state.decision_digest();
        Self {
            next_seq,
            backlog: VecDeque::new(),
            committed: digest,
            committing: digest,
            last_commit_at: now,
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
        let due = force
            || !self.backlog.is_empty()
            || self.failing.is_some()
            || digest != self.committed
            || at.saturating_sub(self.last_commit_at) >= FACTS_EVERY_S;
        if !due {
            return None;
        }
        self.committing = digest;
        let body = match serde_json::to_string(state) {
            Ok(body) => Some(body),
            Err(e) => {
                tracing::error!("cannot serialize the alert state: {e}");
                None
            }
        };
        Some(TickCommit {
            state: body,
            events: self.backlog.iter().cloned().collect(),
            channels,
            prune_before: at.saturating_sub(history_s),
        })
    }

    /// Takes note of how the commit [`Commits::prepare`] made went.
    pub fn finished(&mut self, result: &Result<(), String>, at: Unix, dir: &Path) {
        match result {
            Ok(()) => {
                self.backlog.clear();
                self.committed = self.committing;
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

/// The stored state; a fresh one when there is none, or when it cannot be read (logged).
pub fn parse_state(body: Option<&str>) -> AlertState {
    let Some(body) = body else {
        return AlertState::default();
    };
    serde_json::from_str(body).unwrap_or_else(|e| {
        tracing::error!("the stored alert state cannot be read ({e}); starting fresh");
        AlertState::default()
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

    #[test]
    fn a_tick_that_changes_nothing_is_committed_only_when_the_facts_are_due() {
        let state = AlertState::default();
        let mut commits = Commits::new(&state, 1, 1_000);
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
        let mut commits = Commits::new(&state, 1, 1_000);
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
        let mut commits = Commits::new(&state, 1, 1_000);
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
