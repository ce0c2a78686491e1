//! Durable state: one SQLite database, `$WATCHDOG_STATE_DIR/watchdog.db`.
//!
//! Owns the alert state (one row per entity, so a tick rewrites only what it changed), each
//! channel's outbox, the dead letters and the event history, and
//! the one thread that writes them. A tick's new state and the events it decided go in one
//! transaction ([`Store::commit`]), so `kill -9` at any instant leaves the old state with none
//! of its events, or the new state with all of them queued; an event is handed to delivery
//! only after its commit returned. Delivery outcomes are marks, one row each, committed in
//! batches (every [`MARK_BATCH`] events or [`MARK_WAIT`]), so draining n events writes O(n).
//! Nothing here blocks an async worker: the writer thread owns the connection and the async
//! side only sends it messages. Dead letters are also appended to
//! `dead-letter-<channel>.jsonl`, as the 0.1 files were. The directory and every file in it are
//! checked as [`dir`] says. It never decides anything: it keeps what it is given.

mod db;
mod dir;
mod import;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::model::{EventKind, Kind, Unix};

pub use db::{open_read_only, DB_FILE};
pub use writer::Writer;

/// The largest batch of delivery marks committed at once.
pub const MARK_BATCH: usize = 100;
/// The longest a delivery mark waits for its batch.
pub const MARK_WAIT: Duration = Duration::from_millis(100);

const STOPPED: &str = "the store's writer thread has stopped";

/// An event's number: its order of decision, and its key in the database.
pub type Seq = i64;

/// The state directory or its database could not be used.
#[derive(Debug, thiserror::Error)]
#[error("state dir {dir}: {reason}")]
pub struct StoreError {
    pub dir: PathBuf,
    pub reason: String,
}

/// One decided event with its number.
#[derive(Debug, Clone)]
pub struct Decided {
    pub seq: Seq,
    /// When it was decided, the key of history and pruning.
    pub at: Unix,
    pub event: Arc<Event>,
}

/// Where one event stands on one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Queued,
    Delivered,
    DeadLettered,
    Dropped,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Delivered => "delivered",
            Self::DeadLettered => "dead_lettered",
            Self::Dropped => "dropped",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Delivered,
            Self::DeadLettered,
            Self::Dropped,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// What happened to one event on one channel: the row of `deliveries` it updates.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub seq: Seq,
    pub channel: &'static str,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// Why the last attempt failed, masked.
    pub last_error: Option<String>,
}

/// One undelivered event of a channel, as its delivery task holds it.
#[derive(Debug, Clone)]
pub struct Queued {
    pub seq: Seq,
    pub event: Arc<Event>,
    pub attempts: u32,
}

/// What changed in the alert state since the last commit.
#[derive(Debug, Clone, Default)]
pub struct StateWrite {
    /// Everything but the entities, as JSON.
    pub rest: String,
    /// Entities whose row is (re)written: kind, entity id, JSON body.
    pub upsert: Vec<(&'static str, String, String)>,
    /// Entities whose row goes: kind, entity id.
    pub delete: Vec<(&'static str, String)>,
    /// Every other entity row goes: `upsert` is the whole set.
    pub replace_all: bool,
}

/// The alert state as stored: the rest, and one body per entity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredState {
    pub rest: String,
    pub entities: Vec<String>,
}

/// What one tick commits.
#[derive(Debug, Clone, Default)]
pub struct TickCommit {
    /// What changed in the alert state; `None` keeps the stored one.
    pub state: Option<StateWrite>,
    /// Events not yet committed, oldest first: queued on every channel.
    pub events: Vec<Decided>,
    pub channels: Vec<&'static str>,
    /// Finished events decided before this are pruned.
    pub prune_before: Unix,
}

/// One event of the history: what `history --json` prints and `/status` serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    #[serde(skip)]
    pub seq: Seq,
    pub id: String,
    pub event: EventKind,
    pub kind: Kind,
    pub entity: String,
    pub host: String,
    /// RFC 3339.
    pub at: String,
    pub summary: String,
    pub deliveries: Vec<Delivery>,
}

/// One channel's part of a [`HistoryEvent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub channel: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl HistoryEvent {
    /// `event` as just decided: queued on each of `channels`.
    pub fn decided(decided: &Decided, channels: &[&str]) -> Self {
        let event = &decided.event;
        Self {
            seq: decided.seq,
            id: event.id.clone(),
            event: event.event,
            kind: event.kind,
            entity: event.entity.clone(),
            host: event.host.clone(),
            at: event.at.clone(),
            summary: event.summary.clone(),
            deliveries: channels
                .iter()
                .map(|channel| Delivery {
                    channel: (*channel).to_string(),
                    status: DeliveryStatus::Queued,
                    attempts: 0,
                    last_error: None,
                })
                .collect(),
        }
    }

    /// Applies `mark` if it is about this event.
    pub fn apply(&mut self, mark: &Mark) {
        if mark.seq != self.seq {
            return;
        }
        if let Some(delivery) = self
            .deliveries
            .iter_mut()
            .find(|d| d.channel == mark.channel)
        {
            delivery.status = mark.status;
            delivery.attempts = mark.attempts;
            delivery.last_error.clone_from(&mark.last_error);
        }
    }
}

/// What the database held at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The alert state, if one was saved.
    pub state: Option<StoredState>,
    /// Each configured channel's undelivered events, oldest first.
    pub outboxes: Vec<(&'static str, Vec<Queued>)>,
    /// The number the next decided event gets.
    pub next_seq: Seq,
    /// The newest events, newest first, for `/status`.
    pub recent: Vec<HistoryEvent>,
}

/// The handle the daemon and its delivery tasks write through. Cheap to clone; every call
/// only sends a message to the writer thread.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<writer::Cmd>,
    dir: Arc<Path>,
}

impl Store {
    /// Prepares `dir`, opens (or creates) its database, imports 0.1 files once, and starts the
    /// writer thread. `channels` are the configured ones: queued events of any other channel
    /// are marked dropped, since nothing would ever deliver them.
    ///
    /// # Errors
    /// The directory is unsafe or cannot be written, or the database cannot be opened even
    /// fresh; the message names the directory and why.
    pub fn open(
        dir: &Path,
        channels: &[&'static str],
        recent: usize,
    ) -> Result<(Self, Loaded, Writer), StoreError> {
        let fail = |reason: String| StoreError {
            dir: dir.to_path_buf(),
            reason,
        };
        dir::prepare(dir).map_err(fail)?;
        let mut db = db::Db::open(dir).map_err(fail)?;
        import::import_v01(&mut db, dir).map_err(fail)?;
        let loaded = db.load(channels, recent).map_err(|e| fail(e.to_string()))?;
        let (tx, rx) = mpsc::channel();
        let thread = writer::spawn(db, dir.to_path_buf(), rx).map_err(|e| fail(e.to_string()))?;
        let writer = Writer::new(thread, tx.clone());
        let store = Self {
            tx,
            dir: Arc::from(dir),
        };
        Ok((store, loaded, writer))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Commits one tick: state, events and pruning in one durable transaction, with every
    /// delivery mark still waiting for its batch.
    ///
    /// # Errors
    /// The commit failed (disk full, read-only file system, the writer is gone): nothing of it
    /// is stored.
    pub async fn commit(&self, tick: TickCommit) -> Result<(), String> {
        let tx = self.tx.clone();
        // Waiting on a blocking thread, not on a future: tokio's paused test clock does not
        // jump ahead while a blocking task runs, so a test's ticks stay where it put them.
        let wait = tokio::task::spawn_blocking(move || {
            let (reply, answer) = mpsc::channel();
            tx.send(writer::Cmd::Commit(Box::new(tick), reply))
                .map_err(|_| STOPPED.to_string())?;
            answer.recv().map_err(|_| STOPPED.to_string())?
        });
        wait.await
            .map_err(|e| format!("the commit did not finish: {e}"))?
    }

    /// Records a delivery outcome; committed with its batch.
    pub fn mark(&self, mark: Mark) {
        // A writer that is gone has logged why; the mark is then lost, and its event is sent
        // again after the next start, with the same id.
        let _ = self.send(writer::Cmd::Mark(mark));
    }

    /// Records that `channel` refused `event` for good: appended to its dead-letter file and
    /// marked in the database.
    pub fn dead_letter(&self, event: Arc<Event>, mark: Mark) {
        let _ = self.send(writer::Cmd::DeadLetter(event, mark));
    }

    fn send(&self, cmd: writer::Cmd) -> Result<(), String> {
        self.tx.send(cmd).map_err(|_| STOPPED.to_string())
    }
}

/// The file that holds `channel`'s events that were refused for good.
pub fn dead_letter_path(dir: &Path, channel: &str) -> PathBuf {
    dir.join(format!("dead-letter-{channel}.jsonl"))
}

/// The events decided at or after `from`, newest first, from a connection of
/// [`open_read_only`].
///
/// # Errors
/// A statement fails.
pub fn read_history(
    conn: &rusqlite::Connection,
    from: Unix,
) -> rusqlite::Result<Vec<HistoryEvent>> {
    db::history(conn, from, None)
}

/// What an outbox had to drop to stay within its bound.
#[derive(Debug, Clone)]
pub struct Dropped<T>(pub T);

/// Adds `item` to `queue`, keeping at most `max`: when full, the oldest reminder goes first
/// (a later reminder or the recovery says the same); only a queue of nothing but fires and
/// recoveries loses its oldest.
pub fn push_bounded<T>(
    queue: &mut std::collections::VecDeque<T>,
    item: T,
    max: usize,
    kind: impl Fn(&T) -> EventKind,
) -> Vec<Dropped<T>> {
    queue.push_back(item);
    let mut dropped = Vec::new();
    while queue.len() > max.max(1) {
        let victim = queue
            .iter()
            .position(|e| kind(e) == EventKind::Reminder)
            .unwrap_or(0);
        if let Some(item) = queue.remove(victim) {
            dropped.push(Dropped(item));
        }
    }
    dropped
}

/// A thread that is kept joinable: [`Writer::stop`] flushes and waits for it.
pub(crate) type Thread = JoinHandle<()>;

#[cfg(test)]
mod tests;
