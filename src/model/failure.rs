//! Why a collector could not look, kept typed from the collector to decide() and `/status`.

use std::sync::Arc;

use serde::{Serialize, Serializer};
use watchdog_collectors::CollectError;

/// A failed collection: the collector's own error, or what the runner saw of it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CollectFailure {
    /// The collector looked and could not see.
    #[error("{0}")]
    Collector(Arc<CollectError>),
    /// It did not finish within `WATCHDOG_COLLECT_TIMEOUT_S`.
    #[error("timed out after {limit_s} s: this collection has been running for {running_s} s")]
    TimedOut { running_s: u64, limit_s: u64 },
    /// Its thread panicked: a bug, reported rather than lost.
    #[error("the collector panicked: {0}")]
    Panicked(String),
}

impl CollectFailure {
    /// A short stable name of what went wrong, for `/status` and `once --json` readers.
    pub fn kind(&self) -> &'static str {
        match self {
            CollectFailure::Collector(_) => "collector",
            CollectFailure::TimedOut { .. } => "timed_out",
            CollectFailure::Panicked(_) => "panicked",
        }
    }
}

impl From<CollectError> for CollectFailure {
    fn from(error: CollectError) -> Self {
        CollectFailure::Collector(Arc::new(error))
    }
}

impl PartialEq for CollectFailure {
    /// Two failures are the same when they say the same thing.
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.to_string() == other.to_string()
    }
}

/// Serialized as the line a person reads, as `once --json` has always shown it.
impl Serialize for CollectFailure {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
