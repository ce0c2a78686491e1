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
