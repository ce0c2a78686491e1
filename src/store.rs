//! Durable state in `WATCHDOG_STATE_DIR`: alert state, per-channel outboxes, dead letters.
//!
//! Owns the files and how they are written: whole files atomically (temp file, fsync, rename,
//! fsync of the directory), so a `kill -9` at any point leaves the old or the new version,
//! never half of one. A file that cannot be parsed is moved aside with a clear error and the
//! watchdog starts fresh from it; it never crash-loops on its own state. Dead letters are
//! appended, one JSON event a line. Every file here is opened without blocking and must be a
//! regular file: a FIFO or a device put in the state dir is refused, never waited on or read
//! for ever.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::engine::AlertState;
use crate::event::Event;
use crate::model::EventKind;

const STATE_FILE: &str = "state.json";

/// The state directory could not be used.
#[derive(Debug, thiserror::Error)]
#[error("state dir {dir}: {reason}")]
pub struct StoreError {
    pub dir: PathBuf,
    pub reason: String,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens `dir`, creating it if needed, and proves it writable.
    ///
    /// # Errors
    /// The directory cannot be created or written; the message names it and its owner.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let store = Self {
            dir: dir.to_path_buf(),
        };
        let probe = fs::create_dir_all(dir)
            .and_then(|()| store.write_atomic(".write-test", b"ok\n"))
            .and_then(|()| fs::remove_file(dir.join(".write-test")));
        probe.map_err(|e| StoreError {
            dir: dir.to_path_buf(),
            reason: format!("cannot be written ({e}); {}", ownership(dir)),
        })?;
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The alert state; a fresh one when there is none or it is corrupt (moved aside, logged).
    pub fn load_state(&self) -> AlertState {
        self.load_json(STATE_FILE).unwrap_or_default()
    }

    /// # Errors
    /// The file could not be written.
    pub fn save_state(&self, state: &AlertState) -> io::Result<()> {
        self.save_json(STATE_FILE, state)
    }

    /// The undelivered events of `channel`, oldest first.
    pub fn load_outbox(&self, channel: &str) -> VecDeque<Event> {
        self.load_json(&outbox_file(channel)).unwrap_or_default()
    }

    /// # Errors
    /// The file could not be written.
    pub fn save_outbox(&self, channel: &str, events: &VecDeque<Event>) -> io::Result<()> {
        self.save_json(&outbox_file(channel), events)
    }

    /// The file that holds `channel`'s events that were refused for good.
    pub fn dead_letter_path(&self, channel: &str) -> PathBuf {
        self.dir.join(format!("dead-letter-{channel}.jsonl"))
    }

    /// Appends an event that `channel` refused for good, with why.
    ///
    /// # Errors
    /// The file could not be written.
    pub fn dead_letter(&self, channel: &str, event: &Event, reason: &str) -> io::Result<()> {
        let line = serde_json::json!({"reason": reason, "event": event});
        let mut file = open_regular(
            OpenOptions::new().create(true).append(true),
            &self.dead_letter_path(channel),
        )?;
        writeln!(file, "{line}")?;
        file.sync_data()
    }

    /// Reads `name`; `None` when it does not exist, or when it cannot be parsed, in which case
    /// it is moved aside to `<name>.corrupt-<unix time>` and the error is logged.
    fn load_json<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        let path = self.dir.join(name);
        let read = open_regular(OpenOptions::new().read(true), &path).and_then(|mut file| {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).map(|_| bytes)
        });
        let bytes = match read {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot read; starting without it");
                return None;
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(value) => Some(value),
            Err(e) => {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let aside = self.dir.join(format!("{name}.corrupt-{stamp}"));
                let moved = fs::rename(&path, &aside);
                tracing::error!(
                    path = %path.display(),
                    error = %e,
                    moved_to = %aside.display(),
                    moved = moved.is_ok(),
                    "corrupt; moved aside, starting fresh"
                );
                None
            }
        }
    }

    fn save_json<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> io::Result<()> {
        let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
        self.write_atomic(name, &bytes)
    }

    /// Writes `name` so that a crash leaves either the old or the new contents.
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.dir.join(name);
        let temp = self.dir.join(format!(".{name}.tmp"));
        // A fresh file, never an old one: whatever a crash or a person left there (a FIFO would
        // block a plain create) goes first, and O_EXCL refuses anything that comes back.
        match fs::remove_file(&temp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, &path)?;
        // The rename is durable only once the directory is.
        File::open(&self.dir)?.sync_all()
    }
}

/// Opens `path` with `options` and proves it a regular file. `O_NONBLOCK` makes a FIFO open at
/// once (or fail) instead of waiting for its other end; `fstat` on the open file then refuses
/// it, and a device such as `/dev/zero`, which would otherwise be read for ever.
///
/// # Errors
/// The open fails, or the file is not a regular file (kind `InvalidInput`, naming the path).
fn open_regular(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    let not_regular = |kind: fs::FileType| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: is {}, not a regular file",
                path.display(),
                watchdog_collectors::regular::describe(kind)
            ),
        )
    };
    let file = match options
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
    {
        Ok(file) => file,
        // A FIFO without a reader refuses a non-blocking writer (ENXIO): say what it is.
        Err(e) => {
            return Err(match fs::metadata(path) {
                Ok(meta) if !meta.is_file() => not_regular(meta.file_type()),
                _ => e,
            })
        }
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    Ok(file)
}

fn outbox_file(channel: &str) -> String {
    format!("outbox-{channel}.json")
}

/// Who owns `dir` (or its nearest existing ancestor) and who we are, for error messages.
fn ownership(dir: &Path) -> String {
    let me = format!(
        "watchdog runs as uid {} gid {}",
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw()
    );
    let existing = dir.ancestors().find(|p| p.exists());
    match existing.and_then(|p| fs::metadata(p).ok().map(|m| (p, m))) {
        Some((path, meta)) => format!(
            "{} is owned by uid {} gid {} with mode {:o}; {me}",
            path.display(),
            meta.uid(),
            meta.gid(),
            meta.mode() & 0o7777
        ),
        None => me,
    }
}

/// What the outbox had to drop to stay within its bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped(pub Event);

/// Adds `event` to `queue`, keeping at most `max` events: when full, the oldest reminder goes
/// first (a later reminder or the recovery says the same); only a queue of nothing but fires
/// and recoveries loses its oldest.
pub fn push_bounded(queue: &mut VecDeque<Event>, event: Event, max: usize) -> Vec<Dropped> {
    queue.push_back(event);
    let mut dropped = Vec::new();
    while queue.len() > max.max(1) {
        let victim = queue
            .iter()
            .position(|e| e.event == EventKind::Reminder)
            .unwrap_or(0);
        if let Some(event) = queue.remove(victim) {
            dropped.push(Dropped(event));
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Alert, CollectorFacts, Facts, Kind, Lang, Reason, Unix};

    fn event(kind: EventKind, at: Unix) -> Event {
        let facts = Facts::Collector(CollectorFacts {
            collector: "proc".into(),
            error: "x".into(),
            failed_ticks: 3,
        });
        let alert = Alert {
            event: kind,
            kind: Kind::CollectorFailing,
            entity: "collector:proc".into(),
            since: 0,
            at,
            facts,
            reason: Reason::First,
        };
        Event::render(&alert, "h", Lang::En)
    }

    fn kinds(queue: &VecDeque<Event>) -> Vec<(EventKind, Unix)> {
        queue
            .iter()
            .map(|e| (e.event, e.duration_s as Unix))
            .collect()
    }

    #[test]
    fn a_full_outbox_drops_the_oldest_reminder_first() {
        use EventKind::{Fire, Recovery, Reminder};
        let mut queue = VecDeque::new();
        for (kind, at) in [(Fire, 1), (Reminder, 2), (Reminder, 3)] {
            assert!(push_bounded(&mut queue, event(kind, at), 3).is_empty());
        }
        let dropped = push_bounded(&mut queue, event(Recovery, 4), 3);
        assert_eq!(dropped.len(), 1);
        assert_eq!((dropped[0].0.event, dropped[0].0.duration_s), (Reminder, 2));
        assert_eq!(kinds(&queue), [(Fire, 1), (Reminder, 3), (Recovery, 4)]);
    }

    #[test]
    fn an_outbox_of_fires_and_recoveries_drops_its_oldest() {
        use EventKind::{Fire, Recovery};
        let mut queue = VecDeque::new();
        for (kind, at) in [(Fire, 1), (Recovery, 2)] {
            push_bounded(&mut queue, event(kind, at), 2);
        }
        let dropped = push_bounded(&mut queue, event(Fire, 3), 2);
        assert_eq!((dropped[0].0.event, dropped[0].0.duration_s), (Fire, 1));
        assert_eq!(kinds(&queue), [(Recovery, 2), (Fire, 3)]);
    }

    #[test]
    fn files_are_replaced_whole_and_leave_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut queue = VecDeque::new();
        queue.push_back(event(EventKind::Fire, 1));
        store.save_outbox("webhook", &queue).unwrap();
        store.save_outbox("webhook", &VecDeque::new()).unwrap();
        assert!(store.load_outbox("webhook").is_empty());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["outbox-webhook.json"]);
    }

    #[test]
    fn a_corrupt_outbox_is_moved_aside_and_read_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        fs::write(dir.path().join("outbox-webhook.json"), "[{").unwrap();
        assert!(store.load_outbox("webhook").is_empty());
        let aside = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("outbox-webhook.json.corrupt-")
            })
            .count();
        assert_eq!(aside, 1);
    }
}
