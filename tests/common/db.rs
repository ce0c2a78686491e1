//! Reading `watchdog.db` as an operator would with `sqlite3`: read-only, while the daemon may
//! be writing it.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

fn open(state_dir: &Path) -> Connection {
    let path = state_dir.join("watchdog.db");
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

/// The stored alert state: the state row, with `entities` filled from their rows.
pub fn state(state_dir: &Path) -> serde_json::Value {
    let conn = open(state_dir);
    let body: String = conn
        .query_row("SELECT body FROM state WHERE id = 1", [], |row| row.get(0))
        .expect("a stored state");
    let mut state: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut stmt = conn
        .prepare("SELECT body FROM entities ORDER BY kind, entity")
        .unwrap();
    let entities: Vec<serde_json::Value> = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|body| serde_json::from_str(&body.unwrap()).unwrap())
        .collect();
    state["entities"] = serde_json::Value::Array(entities);
    state
}

/// The ids of `channel`'s queued events, oldest first.
pub fn queued(state_dir: &Path, channel: &str) -> Vec<String> {
    let conn = open(state_dir);
    let mut stmt = conn
        .prepare(
            "SELECT e.id FROM deliveries d JOIN events e ON e.seq = d.seq \
             WHERE d.channel = ?1 AND d.status = 'queued' ORDER BY d.seq",
        )
        .unwrap();
    stmt.query_map([channel], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Each event's id with its status on `channel`, oldest first.
pub fn deliveries(state_dir: &Path, channel: &str) -> Vec<(String, String)> {
    let conn = open(state_dir);
    let mut stmt = conn
        .prepare(
            "SELECT e.id, d.status FROM deliveries d JOIN events e ON e.seq = d.seq \
             WHERE d.channel = ?1 ORDER BY d.seq",
        )
        .unwrap();
    stmt.query_map([channel], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The attempts of each of `channel`'s events, oldest first.
pub fn attempts(state_dir: &Path, channel: &str) -> Vec<u32> {
    let conn = open(state_dir);
    let mut stmt = conn
        .prepare("SELECT attempts FROM deliveries WHERE channel = ?1 ORDER BY seq")
        .unwrap();
    stmt.query_map([channel], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}
