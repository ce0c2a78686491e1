//! The one-time import of a 0.1 state dir: `state.json` and `outbox-<channel>.json`.
//!
//! Owns moving the old files into the database in one transaction that also records the
//! import, and then renaming them `*.imported`. An import interrupted before its commit runs
//! again from the start; one interrupted after it only renames. A file that cannot be parsed
//! is moved aside (`*.corrupt-<unix time>`) and logged, as 0.1 itself did, and the rest is
//! imported. Files are read as the rest of the state dir is: regular files only, bounded.

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::db::{self, Db};
use super::{dir, Decided, Seq};
use crate::event::Event;
use crate::model::Unix;

const STATE_FILE: &str = "state.json";
const DONE_KEY: &str = "imported_v0_1";
/// A 0.1 outbox holds at most 100,000 events of a few KiB: anything larger is not one.
const FILE_MAX: u64 = 512 << 20;

/// Imports the 0.1 files of `dir`, if any, into `db`.
///
/// # Errors
/// The transaction or a rename fails: the start is then refused, so nothing is lost.
pub fn import_v01(db: &mut Db, dir: &Path) -> Result<(), String> {
    let files = old_files(dir);
    if files.is_empty() {
        return Ok(());
    }
    let done: Option<String> = db
        .conn()
        .query_row("SELECT value FROM meta WHERE key = ?1", [DONE_KEY], |row| {
            row.get(0)
        })
        .optional()
        .map_err(|e| e.to_string())?;
    if done.is_none() {
        import(db, dir, &files).map_err(|e| format!("cannot import the 0.1 files: {e}"))?;
    }
    for (path, _) in &files {
        let mut imported = path.as_os_str().to_owned();
        imported.push(".imported");
        match fs::rename(path, &imported) {
            // Moved aside as corrupt during the import.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "cannot rename {} after its import: {e}",
                    path.display()
                ))
            }
            Ok(()) => {}
        }
    }
    Ok(())
}

/// `state.json` (channel `None`) and each `outbox-<channel>.json` present in `dir`.
fn old_files(dir: &Path) -> Vec<(PathBuf, Option<String>)> {
    let mut files = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == STATE_FILE {
            files.push((entry.path(), None));
        } else if let Some(channel) = name
            .strip_prefix("outbox-")
            .and_then(|rest| rest.strip_suffix(".json"))
        {
            files.push((entry.path(), Some(channel.to_string())));
        }
    }
    files.sort();
    files
}

fn import(db: &mut Db, dir: &Path, files: &[(PathBuf, Option<String>)]) -> rusqlite::Result<()> {
    let mut state = None;
    let mut outboxes = Vec::new();
    for (path, channel) in files {
        let Some(bytes) = read(path) else { continue };
        match channel {
            None => match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(value) => state = Some(value.to_string()),
                Err(e) => corrupt(dir, path, &e),
            },
            Some(channel) => match serde_json::from_slice::<VecDeque<Event>>(&bytes) {
                Ok(events) => outboxes.push((channel.clone(), events)),
                Err(e) => corrupt(dir, path, &e),
            },
        }
    }
    let tx = db
        .conn()
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    if let Some(body) = &state {
        db::save_state(&tx, body, crate::model::now_unix())?;
    }
    let mut next: Seq =
        tx.query_row("SELECT coalesce(max(seq), 0) + 1 FROM events", [], |row| {
            row.get(0)
        })?;
    // Numbered in the order they were decided, across every outbox: an event queued on two
    // channels is one event with two deliveries, and each channel keeps its order.
    let mut all: Vec<(&str, &Event)> = outboxes
        .iter()
        .flat_map(|(channel, events)| events.iter().map(move |e| (channel.as_str(), e)))
        .collect();
    all.sort_by_key(|(_, event)| parse_at(&event.at));
    let count = all.len();
    for (channel, event) in all {
        let known = tx
            .query_row("SELECT seq FROM events WHERE id = ?1", [&event.id], |row| {
                row.get::<_, Seq>(0)
            })
            .optional()?;
        let seq = match known {
            Some(seq) => seq,
            None => {
                let decided = Decided {
                    seq: next,
                    at: parse_at(&event.at),
                    event: Arc::new(event.clone()),
                };
                next += 1;
                db::insert_events(&tx, std::slice::from_ref(&decided), &[])?;
                decided.seq
            }
        };
        tx.execute(
            "INSERT OR IGNORE INTO deliveries (seq, channel, status) VALUES (?1, ?2, 'queued')",
            params![seq, channel],
        )?;
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
        params![DONE_KEY, crate::model::rfc3339(crate::model::now_unix())],
    )?;
    tx.commit()?;
    tracing::info!(
        dir = %dir.display(),
        state = state.is_some(),
        queued = count,
        "imported the 0.1 state and outboxes into the database"
    );
    Ok(())
}

fn read(path: &Path) -> Option<Vec<u8>> {
    let result = dir::open_regular(OpenOptions::new().read(true), path, 0o600).and_then(|file| {
        let mut bytes = Vec::new();
        file.take(FILE_MAX).read_to_end(&mut bytes).map(|_| bytes)
    });
    match result {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::error!(path = %path.display(), "cannot read a 0.1 file: {e}; not imported");
            None
        }
    }
}

fn corrupt(dir: &Path, path: &Path, error: &serde_json::Error) {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let aside = dir.join(format!("{name}.corrupt-{}", crate::model::now_unix()));
    let moved = fs::rename(path, &aside);
    tracing::error!(
        path = %path.display(),
        error = %error,
        moved_to = %aside.display(),
        moved = moved.is_ok(),
        "corrupt; moved aside, starting without it"
    );
}

/// The Unix time of an RFC 3339 `at`; now when it cannot be read.
fn parse_at(at: &str) -> Unix {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).map_or_else(
        |_| crate::model::now_unix(),
        time::OffsetDateTime::unix_timestamp,
    )
}
