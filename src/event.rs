//! The event: one alert rendered for delivery, in the `watchdog.alert.v1` wire format.
//!
//! Owns the JSON object every channel is fed from (its field names are a contract), the event
//! id, and RFC 3339 times. An event is rendered once, when the engine decides it, and stored in
//! the outbox as it is: a retry, even after a restart, sends the same id and the same body.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{rfc3339, Alert, EventKind, Facts, Kind, Lang};
use crate::text;

/// The value of `schema` in every event.
pub const SCHEMA: &str = "watchdog.alert.v1";

/// One alert as channels receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub schema: String,
    /// Unique per event; a retried event keeps its id.
    pub id: String,
    pub event: EventKind,
    pub kind: Kind,
    pub entity: String,
    pub host: String,
    /// RFC 3339: when the entity became active.
    pub since: String,
    /// RFC 3339: when this event was decided.
    pub at: String,
    /// One line.
    pub summary: String,
    /// What is wrong and what to do, over a few lines.
    pub text: String,
    pub facts: Facts,
    /// How long it has been active: for a recovery, how long it lasted.
    pub duration_s: u64,
}

impl Event {
    /// Renders `alert` for `host` in `lang`.
    pub fn render(alert: &Alert, host: &str, lang: Lang) -> Self {
        let id = event_id(host, alert);
        let (summary, text) = text::render(alert, host, lang);
        Self {
            schema: SCHEMA.to_string(),
            id,
            event: alert.event,
            kind: alert.kind,
            entity: alert.entity.clone(),
            host: host.to_string(),
            since: rfc3339(alert.since),
            at: rfc3339(alert.at),
            summary,
            text,
            facts: alert.facts.clone(),
            duration_s: alert.duration_s(),
        }
    }

    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and maps with string keys always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `evt_` and 32 hex digits of a hash of what makes the event unique: its host, entity, what
/// happened and when. Deterministic, so the same decision always carries the same id.
fn event_id(host: &str, alert: &Alert) -> String {
    let mut hash = Sha256::new();
    for part in [
        host,
        alert.kind.as_str(),
        &alert.entity,
        alert.event.as_str(),
        &alert.since.to_string(),
        &alert.at.to_string(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("evt_{hex}")
}
