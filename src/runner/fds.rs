//! Open-file descriptors: the soft limit raised to the hard one at start, and the endpoint's
//! connection cap fitted under it with a reserve, so that a flood of connections can never
//! take the descriptors a collection, a state save or a delivery needs.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Descriptors kept for everything but the endpoint's connections: the runtime, the listener,
/// a /proc scan, SQLite and its WAL files, state and outbox writes, and each channel's HTTP
/// connections, with room to spare.
pub const RESERVE: u64 = 128;

/// Where the hard limit is unlimited, the soft limit is raised this far (the kernel's default
/// `fs.nr_open`).
const UNLIMITED_TARGET: u64 = 1 << 20;

/// Raises the soft open-file limit to the hard one and returns the soft limit now in force
/// (`None`: unlimited). A raise that fails is logged and the old limit kept.
pub fn raise_soft_limit() -> Option<u64> {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let target = maximum.unwrap_or(UNLIMITED_TARGET);
    match current {
        // Unlimited already, or as high as it may go.
        None => return None,
        Some(soft) if soft >= target => return current,
        Some(_) => {}
    }
    let raised = Rlimit {
        current: Some(target),
        maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::debug!(from = ?current, to = target, "raised the soft open-file limit");
            Some(target)
        }
        Err(error) => {
            tracing::warn!(soft = ?current, hard = ?maximum, %error, "cannot raise the soft open-file limit");
            current
        }
    }
}

/// The connection cap that leaves [`RESERVE`] descriptors, and the `kept` files the proc
/// collector may hold open between ticks, free under `soft_limit`: the configured one, or lower
/// (at least 1) when the limit is tight.
pub fn connection_cap(configured: usize, soft_limit: Option<u64>, kept: usize) -> usize {
    let Some(soft) = soft_limit else {
        return configured;
    };
    let kept = u64::try_from(kept).unwrap_or(u64::MAX);
    let room = soft.saturating_sub(RESERVE + 1).saturating_sub(kept).max(1);
    configured.min(usize::try_from(room).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_the_reserve_free_under_the_soft_limit() {
        assert_eq!(connection_cap(64, Some(1024), 0), 64);
        assert_eq!(
            connection_cap(4096, Some(1024), 0),
            1024 - RESERVE as usize - 1
        );
        assert_eq!(connection_cap(64, Some(RESERVE + 65), 0), 64);
        assert_eq!(connection_cap(64, Some(RESERVE + 64), 0), 63);
        assert_eq!(
            connection_cap(64, Some(10), 0),
            1,
            "a tiny limit still serves one"
        );
        assert_eq!(connection_cap(64, None, 256), 64);
        // The proc collector's kept stat files come out of the room as well.
        assert_eq!(
            connection_cap(4096, Some(1024), 256),
            1024 - RESERVE as usize - 1 - 256
        );
        assert_eq!(connection_cap(64, Some(RESERVE + 65 + 256), 256), 64);
        assert_eq!(connection_cap(64, Some(RESERVE + 64 + 256), 256), 63);
    }
}
