//! The database file: its schema, how it is opened, and every statement run on it.
//!
//! Owns `watchdog.db`: created 0600 before SQLite opens it (its `-wal` and `-shm` copy that
//! mode), opened with `SQLITE_OPEN_NOFOLLOW`, WAL, `synchronous=FULL`, a busy timeout and a
//! bounded page cache. A file that is not a database, fails its integrity check, or belongs
//! to another program is moved aside together with its `-wal` and `-shm`, and a fresh one is
//! made: watchdog never crash-loops on its own state. A database written by a newer watchdog
//! is refused instead: moving it aside would lose what that version kept.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{
    dir, Decided, Delivery, DeliveryStatus, HistoryEvent, Loaded, Mark, Queued, Seq, StateWrite,
    StoredState,
};
use crate::event::Event;
use crate::model::Unix;

pub const DB_FILE: &str = "watchdog.db";

/// `PRAGMA application_id`: "WDOG", so a foreign SQLite file is told apart from ours.
const APPLICATION_ID: i32 = 0x5744_4f47;
const SCHEMA_VERSION: i32 = 1;

/// How long a statement waits for a lock another connection (`history`, `sqlite3`) holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The page cache, in KiB (a negative `cache_size` is KiB): a tick touches a few pages, and the
/// daemon's memory is counted (512 KiB let its RSS creep up by 0.9 MiB over 10 minutes).
const CACHE_KIB: i64 = 256;
/// What the WAL is truncated to after a checkpoint, in bytes.
const WAL_LIMIT: i64 = 4 << 20;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL,
    saved_at INTEGER NOT NULL
);
CREATE TABLE entities (
    kind TEXT NOT NULL,
    entity TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, entity)
) WITHOUT ROWID;
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    kind TEXT NOT NULL,
    entity TEXT NOT NULL,
    at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX events_at ON events (at);
CREATE TABLE deliveries (
    seq INTEGER NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('queued', 'delivered', 'dead_lettered', 'dropped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (seq, channel)
) WITHOUT ROWID;
CREATE INDEX deliveries_queued ON deliveries (channel, seq) WHERE status = 'queued';
";

/// Why a database could not be used as it is.
enum Unusable {
    /// Not ours, or damaged: move it aside and start fresh.
    Replace(String),
    /// Keep it and stop: a newer version's file, or an error that a fresh file would not fix.
    Stop(String),
}

/// An open database.
pub struct Db {
    conn: Connection,
}

impl Db {
    /// Opens `dir/watchdog.db`, creating it, or replacing one that is damaged or foreign.
    ///
    /// # Errors
    /// It cannot be opened even fresh, or it was written by a newer watchdog.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let path = dir.join(DB_FILE);
        match Self::open_checked(&path) {
            Ok(db) => Ok(db),
            Err(Unusable::Stop(reason)) => Err(reason),
            Err(Unusable::Replace(reason)) => {
                let aside = move_aside(&path);
                tracing::error!(
                    path = %path.display(),
                    moved_to = %aside.display(),
                    "{reason}; moved aside with its -wal and -shm, starting fresh"
                );
                Self::open_checked(&path).map_err(|e| match e {
                    Unusable::Replace(reason) | Unusable::Stop(reason) => reason,
                })
            }
        }
    }

    fn open_checked(path: &Path) -> Result<Self, Unusable> {
        let stop = |what: &str, e: &dyn std::fmt::Display| {
            Unusable::Stop(format!("{}: {what}: {e}", path.display()))
        };
        // Created here, 0600, so that SQLite (and the -wal and -shm it copies the mode to)
        // never makes it with the umask's mode; and proven a regular file, not a planted link.
        dir::open_regular(
            OpenOptions::new().read(true).write(true).create(true),
            path,
            0o600,
        )
        .map_err(|e| stop("cannot open", &e))?;
        // Judged before SQLite opens it: SQLite removes the -wal and -shm of a file it cannot
        // use when it closes, and they must go aside with it.
        check_header(path)?;
        for suffix in ["-wal", "-shm"] {
            let side = sidecar(path, suffix);
            if let Ok(meta) = fs::symlink_metadata(&side) {
                if !meta.is_file() {
                    return Err(Unusable::Replace(format!(
                        "{} is {}, not a regular file",
                        side.display(),
                        watchdog_collectors::regular::describe(meta.file_type())
                    )));
                }
            }
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| stop("cannot open", &e))?;
        let db = Self { conn };
        db.prepare(path)?;
        Ok(db)
    }

    /// Settings, identity, integrity and schema, in that order.
    fn prepare(&self, path: &Path) -> Result<(), Unusable> {
        let damaged = |e: rusqlite::Error| {
            Unusable::Replace(format!("{} is not a usable database: {e}", path.display()))
        };
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| Unusable::Stop(e.to_string()))?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(damaged)?;
        if mode != "wal" {
            return Err(Unusable::Stop(format!(
                "{}: cannot use WAL mode (got {mode})",
                path.display()
            )));
        }
        self.conn
            .execute_batch(&format!(
                "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                 PRAGMA cache_size = -{CACHE_KIB}; PRAGMA journal_size_limit = {WAL_LIMIT};"
            ))
            .map_err(damaged)?;
        let check: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            .map_err(damaged)?;
        if check != "ok" {
            return Err(Unusable::Replace(format!(
                "{} failed its integrity check: {check}",
                path.display()
            )));
        }
        let (app, version, tables) = self.identity().map_err(damaged)?;
        match (app, version) {
            (0, 0) if tables == 0 => self.create().map_err(damaged),
            (APPLICATION_ID, SCHEMA_VERSION) => Ok(()),
            (APPLICATION_ID, newer) if newer > SCHEMA_VERSION => Err(Unusable::Stop(format!(
                "{} has schema {newer}, written by a newer watchdog (this one knows {}); \
                 start that version, or move the file aside to start fresh",
                path.display(),
                SCHEMA_VERSION
            ))),
            _ => Err(Unusable::Replace(format!(
                "{} belongs to another program (application_id {app:#x}, user_version \
                 {version}, {tables} tables)",
                path.display()
            ))),
        }
    }

    fn identity(&self) -> rusqlite::Result<(i32, i32, i64)> {
        let app = self
            .conn
            .query_row("PRAGMA application_id", [], |row| row.get(0))?;
        let version = self
            .conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))?;
        let tables = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))?;
        Ok((app, version, tables))
    }

    fn create(&self) -> rusqlite::Result<()> {
        self.conn.execute_batch(&format!(
            "BEGIN; {SCHEMA} PRAGMA application_id = {APPLICATION_ID}; \
             PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))
    }

    pub fn conn(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// What a starting daemon needs: state, outboxes, the next number, the newest events.
    /// Queued events of a channel not in `channels` are marked dropped, with a warning.
    ///
    /// # Errors
    /// A statement fails.
    pub fn load(&mut self, channels: &[&'static str], recent: usize) -> rusqlite::Result<Loaded> {
        let gone = self.drop_unconfigured(channels)?;
        for (channel, count) in gone {
            tracing::warn!(
                channel = %channel,
                count,
                "queued events of a channel that is no longer configured are marked dropped"
            );
        }
        let rest: Option<String> = self
            .conn
            .query_row("SELECT body FROM state WHERE id = 1", [], |row| row.get(0))
            .optional()?;
        let state = match rest {
            None => None,
            Some(rest) => {
                let mut stmt = self
                    .conn
                    .prepare("SELECT body FROM entities ORDER BY kind, entity")?;
                let entities = stmt
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<_, _>>()?;
                Some(StoredState { rest, entities })
            }
        };
        let last: Option<Seq> = self
            .conn
            .query_row("SELECT max(seq) FROM events", [], |row| row.get(0))?;
        let mut outboxes = Vec::new();
        for channel in channels {
            outboxes.push((*channel, self.queued(channel)?));
        }
        Ok(Loaded {
            state,
            outboxes,
            next_seq: last.unwrap_or(0) + 1,
            recent: history(&self.conn, Unix::MIN, Some(recent))?,
        })
    }

    fn drop_unconfigured(&self, channels: &[&str]) -> rusqlite::Result<Vec<(String, usize)>> {
        let mut stmt = self.conn.prepare(
            "SELECT channel, count(*) FROM deliveries WHERE status = 'queued' GROUP BY channel",
        )?;
        let queued: Vec<(String, usize)> = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let gone: Vec<(String, usize)> = queued
            .into_iter()
            .filter(|(channel, _)| !channels.contains(&channel.as_str()))
            .collect();
        for (channel, _) in &gone {
            self.conn.execute(
                "UPDATE deliveries SET status = 'dropped', last_error = ?2 \
                 WHERE channel = ?1 AND status = 'queued'",
                params![
                    channel,
                    format!("channel {channel} is no longer configured")
                ],
            )?;
        }
        Ok(gone)
    }

    fn queued(&self, channel: &str) -> rusqlite::Result<Vec<Queued>> {
        let mut stmt = self.conn.prepare(
            "SELECT d.seq, d.attempts, e.body FROM deliveries d JOIN events e ON e.seq = d.seq \
             WHERE d.channel = ?1 AND d.status = 'queued' ORDER BY d.seq",
        )?;
        let rows = stmt.query_map([channel], |row| {
            Ok((
                row.get::<_, Seq>(0)?,
                row.get::<_, u32>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        let mut queue = Vec::new();
        for row in rows {
            let (seq, attempts, body) = row?;
            match serde_json::from_str::<Event>(&body) {
                Ok(event) => queue.push(Queued {
                    seq,
                    event: Arc::new(event),
                    attempts,
                }),
                Err(e) => {
                    tracing::error!(seq, channel, "a queued event cannot be read ({e}); skipped")
                }
            }
        }
        Ok(queue)
    }
}

/// Inserts `events`, queued on each of `channels`. An event already stored (a commit retried
/// after its reply was lost) is left as it is.
///
/// # Errors
/// A statement fails; the caller's transaction is then rolled back.
pub fn insert_events(
    tx: &rusqlite::Transaction<'_>,
    events: &[Decided],
    channels: &[&str],
) -> rusqlite::Result<()> {
    let mut event_stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO events (seq, id, event, kind, entity, at, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut delivery_stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO deliveries (seq, channel, status) VALUES (?1, ?2, 'queued')",
    )?;
    for decided in events {
        let event = &decided.event;
        let inserted = event_stmt.execute(params![
            decided.seq,
            event.id,
            event.event.as_str(),
            event.kind.as_str(),
            event.entity,
            decided.at,
            event.to_json(),
        ])?;
        if inserted == 0 {
            continue;
        }
        for channel in channels {
            delivery_stmt.execute(params![decided.seq, channel])?;
        }
    }
    Ok(())
}

/// Applies `marks` in order; returns those whose row does not exist (yet).
///
/// # Errors
/// A statement fails.
pub fn apply_marks(tx: &rusqlite::Transaction<'_>, marks: &[Mark]) -> rusqlite::Result<Vec<Mark>> {
    let mut stmt = tx.prepare_cached(
        "UPDATE deliveries SET status = ?3, attempts = ?4, last_error = ?5 \
         WHERE seq = ?1 AND channel = ?2",
    )?;
    let mut missing = Vec::new();
    for mark in marks {
        let changed = stmt.execute(params![
            mark.seq,
            mark.channel,
            mark.status.as_str(),
            mark.attempts,
            mark.last_error
        ])?;
        if changed == 0 {
            missing.push(mark.clone());
        }
    }
    Ok(missing)
}

/// Saves the state row: the alert state less its entities (or, from a 0.1 import, all of it).
///
/// # Errors
/// A statement fails.
pub fn save_state(tx: &rusqlite::Transaction<'_>, body: &str, at: Unix) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO state (id, body, saved_at) VALUES (1, ?1, ?2) \
         ON CONFLICT (id) DO UPDATE SET body = excluded.body, saved_at = excluded.saved_at",
    )?
    .execute(params![body, at])?;
    Ok(())
}

/// Writes what changed in the alert state: the state row, and the entity rows that changed.
///
/// # Errors
/// A statement fails.
pub fn write_state(
    tx: &rusqlite::Transaction<'_>,
    write: &StateWrite,
    at: Unix,
) -> rusqlite::Result<()> {
    save_state(tx, &write.rest, at)?;
    if write.replace_all {
        tx.execute("DELETE FROM entities", [])?;
    }
    let mut upsert = tx.prepare_cached(
        "INSERT INTO entities (kind, entity, body) VALUES (?1, ?2, ?3) \
         ON CONFLICT (kind, entity) DO UPDATE SET body = excluded.body",
    )?;
    for (kind, entity, body) in &write.upsert {
        upsert.execute(params![kind, entity, body])?;
    }
    let mut delete = tx.prepare_cached("DELETE FROM entities WHERE kind = ?1 AND entity = ?2")?;
    for (kind, entity) in &write.delete {
        delete.execute(params![kind, entity])?;
    }
    Ok(())
}

/// Deletes events decided before `before` that no channel still has queued.
///
/// # Errors
/// A statement fails.
pub fn prune(tx: &rusqlite::Transaction<'_>, before: Unix) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "DELETE FROM events WHERE at < ?1 AND NOT EXISTS \
         (SELECT 1 FROM deliveries d WHERE d.seq = events.seq AND d.status = 'queued')",
    )?
    .execute([before])
}

/// Events decided at or after `since`, newest first, at most `limit`.
///
/// # Errors
/// A statement fails.
pub fn history(
    conn: &Connection,
    since: Unix,
    limit: Option<usize>,
) -> rusqlite::Result<Vec<HistoryEvent>> {
    let limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let mut events_stmt = conn
        .prepare_cached("SELECT seq, body FROM events WHERE at >= ?1 ORDER BY seq DESC LIMIT ?2")?;
    let mut deliveries_stmt = conn.prepare_cached(
        "SELECT channel, status, attempts, last_error FROM deliveries WHERE seq = ?1 \
         ORDER BY channel",
    )?;
    let rows: Vec<(Seq, String)> = events_stmt
        .query_map(params![since, limit], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (seq, body) in rows {
        let event: Event = match serde_json::from_str(&body) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(seq, "a stored event cannot be read ({e}); left out");
                continue;
            }
        };
        let deliveries = deliveries_stmt
            .query_map([seq], |row| {
                let status: String = row.get(1)?;
                Ok(Delivery {
                    channel: row.get(0)?,
                    status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Queued),
                    attempts: row.get(2)?,
                    last_error: row.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        out.push(HistoryEvent {
            seq,
            id: event.id,
            event: event.event,
            kind: event.kind,
            entity: event.entity,
            host: event.host,
            at: event.at,
            summary: event.summary,
            deliveries,
        });
    }
    Ok(out)
}

/// Opens `dir/watchdog.db` for reading only, while a daemon may be writing it.
///
/// # Errors
/// It does not exist, is not a regular file, or is not watchdog's database.
pub fn open_read_only(dir: &Path) -> Result<Connection, String> {
    let path = dir.join(DB_FILE);
    let meta = fs::symlink_metadata(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{}: no database (has `watchdog run` ever run with this WATCHDOG_STATE_DIR?)",
            path.display()
        ),
        _ => format!("{}: {e}", path.display()),
    })?;
    if !meta.is_file() {
        return Err(format!(
            "{}: is {}, not a regular file",
            path.display(),
            watchdog_collectors::regular::describe(meta.file_type())
        ));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&path, flags)
        .map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
    let app: i32 = conn
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(|e| format!("{}: not a usable database: {e}", path.display()))?;
    if app != APPLICATION_ID {
        return Err(format!(
            "{}: not watchdog's database (application_id {app:#x})",
            path.display()
        ));
    }
    Ok(conn)
}

/// An empty file (new) or one that starts as every SQLite database does.
fn check_header(path: &Path) -> Result<(), Unusable> {
    use std::io::Read;
    const MAGIC: &[u8; 16] = b"SQLite format 3\0";
    let mut head = Vec::with_capacity(16);
    dir::open_regular(OpenOptions::new().read(true), path, 0o600)
        .and_then(|file| file.take(16).read_to_end(&mut head))
        .map_err(|e| Unusable::Stop(format!("{}: cannot read: {e}", path.display())))?;
    if head.is_empty() || head == MAGIC {
        Ok(())
    } else {
        Err(Unusable::Replace(format!(
            "{} is not an SQLite database",
            path.display()
        )))
    }
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Renames `path`, its `-wal` and its `-shm` to `<name>.corrupt-<unix time>[-wal|-shm]`, so
/// they stay together for a person to look at; returns the new name of `path`.
fn move_aside(path: &Path) -> PathBuf {
    let stamp = crate::model::now_unix();
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{stamp}"));
    let aside = PathBuf::from(aside);
    for suffix in ["-wal", "-shm", ""] {
        let from = sidecar(path, suffix);
        if fs::symlink_metadata(&from).is_ok() {
            if let Err(e) = fs::rename(&from, sidecar(&aside, suffix)) {
                tracing::error!(path = %from.display(), "cannot move aside: {e}");
            }
        }
    }
    aside
}
