//! The model every stage shares: what a signal, an alert and an event are about.
//!
//! Owns the kinds of signal, their facts, the alert and its reason, the time type and its
//! formatting, the language of texts, and the string helpers that more than one stage needs
//! (the display cut, the chat-markup escape, URL masking, comma lists). It imports nothing from
//! the pipeline: collectors' readers, signal builders, decide(), delivery and the runner all
//! import it, never the other way round.

mod facts;
mod failure;
mod memory;
mod strings;

pub use facts::{
    CollectorFacts, ContainerFacts, Facts, HungReason, JobFacts, PressureFacts, PressureSource,
    ProcFacts, Resource, Stop, TestFacts, TopConsumer, TopStatus,
};
pub use failure::CollectFailure;
pub use memory::{JobsMemory, Memory, PressureMemory, PressureTrack, ProcMemory, Remembered};
pub use strings::{comma_list, cut, escape_markup, mask_text, mask_url};

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch: the only unit of time past the collectors.
pub type Unix = i64;

/// The wall clock as [`Unix`]; a clock before 1970 reads as 0.
pub fn now_unix() -> Unix {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| Unix::try_from(d.as_secs()).unwrap_or(Unix::MAX))
}

/// A Unix time as RFC 3339 in UTC, to the second.
pub fn rfc3339(unix: Unix) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// The language of alert texts (`WATCHDOG_LANG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Ru,
}

/// What a signal is about. Each kind has its own cooldown and its own alert text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A matching process (or process group) has run past the age threshold.
    ProcBlocking,
    /// A running job whose agent is gone, reused, overdue or silent.
    AgentHung,
    /// An ended job whose processes live on.
    JobLeftover,
    /// The host has been starved of a resource (cpu, memory, io) for a while.
    HostPressure,
    /// The watchdog itself: a collector has failed tick after tick, so it cannot see.
    CollectorFailing,
    /// `watchdog test-alert`: proves a channel works; says nothing about the host.
    Test,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ProcBlocking => "proc_blocking",
            Kind::AgentHung => "agent_hung",
            Kind::JobLeftover => "job_leftover",
            Kind::HostPressure => "host_pressure",
            Kind::CollectorFailing => "collector_failing",
            Kind::Test => "test",
        }
    }

    /// The collector whose observations produce this kind; `None` for the watchdog's own.
    pub fn collector(self) -> Option<&'static str> {
        match self {
            Kind::ProcBlocking => Some("proc"),
            Kind::AgentHung | Kind::JobLeftover => Some("jobs"),
            Kind::HostPressure => Some("pressure"),
            Kind::CollectorFailing | Kind::Test => None,
        }
    }
}

/// What an alert says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// It went wrong.
    Fire,
    /// It is still wrong, a cooldown after the last alert.
    Reminder,
    /// It is over.
    Recovery,
    /// `watchdog test-alert`: proves the wiring, says nothing about the host.
    Test,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Fire => "fire",
            EventKind::Reminder => "reminder",
            EventKind::Recovery => "recovery",
            EventKind::Test => "test",
        }
    }
}

/// Why the engine did what it did with one entity this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Became active: fire.
    First,
    /// Still active and a cooldown has passed since the last alert: remind.
    Reminder,
    /// Still active, inside the cooldown: nothing to send.
    WithinCooldown,
    /// Seen inactive after it fired: recover.
    Recovered,
    /// Absent from a successful collection after it fired: recover.
    Gone,
    /// Its collector failed this tick: hold.
    HeldCollectorFailed,
    /// Seen but unreadable this tick: hold.
    HeldUnreadable,
    /// No longer watched (a leftover watch that reached its keep): dropped, no recovery.
    Forgotten,
    /// Not decided by the engine: `watchdog test-alert`.
    Test,
}

/// One entity's state this tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    pub kind: Kind,
    /// Stable across ticks for the same thing, different for a different thing (`proc:<pid>:<start ticks>`).
    pub entity: String,
    /// Whether the thing is wrong now.
    pub active: bool,
    pub facts: Facts,
}

/// Sorts signals for display and output: by kind, active first, then by entity id.
pub fn sort_signals(signals: &mut [Signal]) {
    signals.sort_by(|a, b| (a.kind, !a.active, &a.entity).cmp(&(b.kind, !b.active, &b.entity)));
}

/// One alert to send, before it is rendered into text for a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub event: EventKind,
    pub kind: Kind,
    pub entity: String,
    /// When the entity became active.
    pub since: Unix,
    /// When this alert was decided.
    pub at: Unix,
    pub facts: Facts,
    /// Why the engine sent it: a recovery says whether it was seen over or went away.
    pub reason: Reason,
}

impl Alert {
    /// How long the entity has been active, up to this alert.
    pub fn duration_s(&self) -> u64 {
        u64::try_from(self.at.saturating_sub(self.since)).unwrap_or(0)
    }
}
