//! The writer thread: the one owner of the database connection.
//!
//! Owns the order of writes. A tick's commit, the delivery marks and the dead letters arrive as
//! messages; marks wait for a batch (at most [`MARK_BATCH`] marks or [`MARK_WAIT`]), and a
//! tick's commit takes every waiting mark along. A mark whose event is not stored yet (its
//! commit failed and is being retried) is kept, bounded, until the commit that stores the
//! event. A failed write loses nothing that is still in memory: the marks stay for the next
//! batch, and the tick keeps its events for its next commit.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Instant;

use rusqlite::TransactionBehavior;

use super::db::{self, Db};
use super::{dead_letter_path, dir, Mark, Thread, TickCommit, MARK_BATCH, MARK_WAIT};
use crate::event::Event;

/// Marks kept for events not stored yet, at most; beyond, the oldest are forgotten (their
/// events then show as queued and are sent again after a restart, with the same ids).
const ORPHANS_MAX: usize = 100_000;

pub enum Cmd {
    Commit(Box<TickCommit>, Sender<Result<(), String>>),
    Mark(Mark),
    DeadLetter(Arc<Event>, Mark),
    /// Flush what waits and stop.
    Stop,
}

/// The running writer thread; [`Writer::stop`] flushes it and waits for it to end.
pub struct Writer {
    thread: Option<Thread>,
    tx: Option<Sender<Cmd>>,
}

impl Writer {
    pub(super) fn new(thread: Thread, tx: Sender<Cmd>) -> Self {
        Self {
            thread: Some(thread),
            tx: Some(tx),
        }
    }

    /// Commits every waiting mark and ends the thread.
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Cmd::Stop);
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the store's writer thread panicked");
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.finish();
    }
}

pub(super) fn spawn(db: Db, dir: PathBuf, rx: Receiver<Cmd>) -> std::io::Result<Thread> {
    std::thread::Builder::new()
        .name("watchdog-store".into())
        .spawn(move || Owner::new(db, dir).run(&rx))
}

/// The thread's side: the connection and what waits to be written.
struct Owner {
    db: Db,
    dir: PathBuf,
    /// Marks waiting for their batch, and since when the oldest waits.
    pending: Vec<Mark>,
    oldest: Option<Instant>,
    /// Marks of events not stored yet.
    orphans: Vec<Mark>,
}

impl Owner {
    fn new(db: Db, dir: PathBuf) -> Self {
        Self {
            db,
            dir,
            pending: Vec::new(),
            oldest: None,
            orphans: Vec::new(),
        }
    }

    fn run(mut self, rx: &Receiver<Cmd>) {
        loop {
            let cmd = match self.oldest {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(oldest) => rx.recv_timeout(MARK_WAIT.saturating_sub(oldest.elapsed())),
            };
            match cmd {
                Ok(Cmd::Commit(tick, reply)) => {
                    let result = self.commit(&tick);
                    let _ = reply.send(result);
                }
                Ok(Cmd::Mark(mark)) => self.add(mark),
                Ok(Cmd::DeadLetter(event, mark)) => {
                    self.dead_letter(&event, &mark);
                    self.add(mark);
                }
                Err(RecvTimeoutError::Timeout) => self.flush(),
                Ok(Cmd::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    self.flush();
                    return;
                }
            }
        }
    }

    fn add(&mut self, mark: Mark) {
        self.pending.push(mark);
        self.oldest.get_or_insert_with(Instant::now);
        if self.pending.len() >= MARK_BATCH {
            self.flush();
        }
    }

    /// Commits the waiting marks. Delivery marks need not survive a power cut (a lost one
    /// resends its event with the same id), so this commit is not synced to the disk.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            self.oldest = None;
            return;
        }
        let marks = std::mem::take(&mut self.pending);
        let result = (|| {
            let conn = self.db.conn();
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let missing = db::apply_marks(&tx, &marks)?;
            tx.commit()?;
            Ok::<_, rusqlite::Error>(missing)
        })();
        let _ = self.db.conn().pragma_update(None, "synchronous", "FULL");
        match result {
            Ok(missing) => {
                self.keep_orphans(missing);
                self.oldest = None;
            }
            Err(e) => {
                tracing::warn!(marks = marks.len(), "cannot record deliveries yet: {e}");
                self.pending = marks;
                // Wait a whole batch time before trying again.
                self.oldest = Some(Instant::now());
            }
        }
    }

    /// One tick: its state, its events, every waiting mark and the pruning, in one durable
    /// transaction.
    fn commit(&mut self, tick: &TickCommit) -> Result<(), String> {
        let marks: Vec<Mark> = self
            .pending
            .iter()
            .chain(self.orphans.iter())
            .cloned()
            .collect();
        let result = (|| {
            let tx = self
                .db
                .conn()
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(state) = &tick.state {
                db::write_state(&tx, state, crate::model::now_unix())?;
            }
            db::insert_events(&tx, &tick.events, &tick.channels)?;
            let missing = db::apply_marks(&tx, &marks)?;
            let pruned = db::prune(&tx, tick.prune_before)?;
            tx.commit()?;
            Ok::<_, rusqlite::Error>((missing, pruned))
        })();
        match result {
            Ok((missing, pruned)) => {
                if pruned > 0 {
                    tracing::debug!(pruned, "old events pruned from the history");
                }
                self.pending.clear();
                self.oldest = None;
                self.orphans.clear();
                self.keep_orphans(missing);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn keep_orphans(&mut self, missing: Vec<Mark>) {
        self.orphans.extend(missing);
        if self.orphans.len() > ORPHANS_MAX {
            let excess = self.orphans.len() - ORPHANS_MAX;
            self.orphans.drain(..excess);
        }
    }

    fn dead_letter(&self, event: &Event, mark: &Mark) {
        let path = dead_letter_path(&self.dir, mark.channel);
        let reason = mark.last_error.as_deref().unwrap_or("refused");
        let line = serde_json::json!({"reason": reason, "event": event});
        match dir::append_line(&path, &line.to_string()) {
            Ok(()) => tracing::error!(
                channel = mark.channel,
                id = %event.id,
                event = event.event.as_str(),
                entity = %event.entity,
                dead_letter = %path.display(),
                "delivery refused for good: {reason}; moved to the dead-letter file"
            ),
            Err(e) => tracing::error!(
                channel = mark.channel,
                id = %event.id,
                event = event.event.as_str(),
                entity = %event.entity,
                path = %path.display(),
                "delivery refused for good: {reason}; cannot write the dead-letter file ({e}), \
                 kept in the database only"
            ),
        }
    }
}
