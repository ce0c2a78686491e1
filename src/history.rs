//! `watchdog history [--since DURATION] [--json]`: what watchdog decided, and where each event
//! went, newest first.
//!
//! Owns reading the history out of `watchdog.db` and printing it: a table for people, one JSON
//! object for tools (`{"events":[...]}`, each event as `/status` serves it). It opens the
//! database read-only, so it runs beside a running daemon and never changes what it reads.
//! Everything a process or a receiver wrote (entity, summary, errors) is printed escaped.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use crate::escape::visible;
use crate::model::{cut, now_unix, Unix};
use crate::store::{self, DeliveryStatus, HistoryEvent};
use crate::EXIT_BAD_CONFIG;

/// The window `--since` has when it is not given.
pub const DEFAULT_SINCE: &str = "24h";

/// The JSON `history --json` prints.
#[derive(Debug, Serialize)]
pub struct History {
    pub events: Vec<HistoryEvent>,
}

/// Runs the command: exit 0 with the history, 2 on a bad `--since` or a missing or foreign
/// database, 1 when it cannot be read.
pub fn main(state_dir: &Path, since: &str, json: bool) -> ExitCode {
    let window = match crate::duration::parse(since) {
        Ok(window) => window,
        Err(e) => {
            eprintln!("watchdog history: --since {}: {e}", visible(since));
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let conn = match store::open_read_only(state_dir) {
        Ok(conn) => conn,
        Err(e) => {
            eprintln!("watchdog history: {e}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let now = now_unix();
    let from = now.saturating_sub(Unix::try_from(window.as_secs()).unwrap_or(Unix::MAX));
    let events = match store::read_history(&conn, from) {
        Ok(events) => events,
        Err(e) => {
            eprintln!("watchdog history: cannot read {}: {e}", state_dir.display());
            return ExitCode::FAILURE;
        }
    };
    let text = if json {
        let history = History { events };
        // Strings, numbers and enums always serialize.
        serde_json::to_string_pretty(&history).unwrap_or_default() + "\n"
    } else {
        table(&events, since)
    };
    // A reader that went away (`| head`) ends the output; that is not an error.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    ExitCode::SUCCESS
}

/// The history as a table, one event a line, newest first.
pub fn table(events: &[HistoryEvent], since: &str) -> String {
    if events.is_empty() {
        return format!("no events in the last {}\n", visible(since));
    }
    let rows: Vec<[String; 6]> = events
        .iter()
        .map(|e| {
            [
                e.at.clone(),
                e.event.as_str().to_string(),
                e.kind.as_str().to_string(),
                visible(&e.entity).into_owned(),
                cut(visible(&e.summary).into_owned(), 72),
                deliveries(e),
            ]
        })
        .collect();
    let header = ["TIME", "EVENT", "KIND", "ENTITY", "SUMMARY", "DELIVERIES"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
    };
    line(&header.map(str::to_string));
    for row in &rows {
        line(row);
    }
    out
}

/// `webhook delivered (1), slack queued (3: HTTP 503)`: each channel, its status, its attempts
/// and the last error while it has not gone out.
fn deliveries(event: &HistoryEvent) -> String {
    if event.deliveries.is_empty() {
        return "(no channel)".to_string();
    }
    event
        .deliveries
        .iter()
        .map(|d| {
            let detail = match &d.last_error {
                Some(error) if d.status != DeliveryStatus::Delivered => {
                    format!("{}: {}", d.attempts, cut(visible(error).into_owned(), 60))
                }
                _ => d.attempts.to_string(),
            };
            format!("{} {} ({detail})", d.channel, d.status.as_str())
        })
        .collect::<Vec<_>>()
        .join(", ")
}
