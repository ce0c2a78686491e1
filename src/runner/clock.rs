//! The tick's clock: wall time at start plus monotonic time since.
//!
//! Monotonic, so a wall-clock step never fires or recovers anything; and tokio's, so tests can
//! pause and advance it. decide() gets its `now` from here and from nowhere else.

use tokio::time::Instant;

use crate::model::{now_unix, Unix};

/// Wall time at start plus monotonic time since.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall_at_start: Unix,
    start: Instant,
}

impl Clock {
    pub fn starting_now() -> Self {
        Self::starting_at(now_unix())
    }

    pub fn starting_at(wall_at_start: Unix) -> Self {
        Self {
            wall_at_start,
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> Unix {
        let since = Unix::try_from(self.start.elapsed().as_secs()).unwrap_or(Unix::MAX);
        self.wall_at_start.saturating_add(since)
    }
}
