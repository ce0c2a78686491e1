//! The lines guard writes on stderr: one per process it had to kill, and one per event that
//! explains an exit status (a timeout, a parent gone).
//!
//! Owns their wording, which is a stable interface: CI logs are grepped for it. Every line
//! starts `watchdog guard: ` and fits on one line whatever a process calls itself, because comm
//! goes through [`crate::escape::visible`]. It decides nothing and writes nothing itself.

use std::fmt;
use std::time::Duration;

use crate::escape::visible;

/// How a process got past what a process-group kill would have caught, or why it could not be
/// killed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// In another process group or session than CMD's.
    LeftGroup,
    /// Reparented to guard while CMD ran: its parent exited under it.
    DoubleForked,
    /// Still alive `--kill-after` after its SIGTERM: it took a SIGKILL.
    IgnoredTerm,
    /// In CMD's own group, still running after CMD exited on its own.
    OutlivedCommand,
    /// Could not be signalled (EPERM), could not be signalled safely (no pidfd), or still alive
    /// `--kill-after` after its SIGKILL.
    Unkillable,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::LeftGroup => "left the group",
            Reason::DoubleForked => "double-forked",
            Reason::IgnoredTerm => "ignored SIGTERM",
            Reason::OutlivedCommand => "outlived the command",
            Reason::Unkillable => "unkillable",
        }
    }
}

/// One process guard had to kill, or could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Killed {
    pub pid: i32,
    /// As the process set it; escaped only when shown.
    pub comm: String,
    pub reason: Reason,
}

impl fmt::Display for Killed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.reason {
            Reason::Unkillable => "could not kill",
            _ => "killed",
        };
        write!(
            f,
            "watchdog guard: {verb} pid {} ({}): {}",
            self.pid,
            visible(&self.comm),
            self.reason.as_str()
        )
    }
}

/// The line for a timeout, which explains exit status 124.
pub fn timed_out(after: Duration) -> String {
    format!(
        "watchdog guard: timed out after {}s, stopping the command",
        after.as_secs()
    )
}

/// The line for a parent that died: the tree is torn down with nobody left to ask for it.
pub fn parent_gone(parent: i32) -> String {
    format!("watchdog guard: parent pid {parent} is gone, stopping the command")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(pid: i32, comm: &str, reason: Reason) -> String {
        Killed {
            pid,
            comm: comm.into(),
            reason,
        }
        .to_string()
    }

    #[test]
    fn one_line_per_reason() {
        let cases = [
            (
                Reason::LeftGroup,
                "watchdog guard: killed pid 4121 (pytest): left the group",
            ),
            (
                Reason::DoubleForked,
                "watchdog guard: killed pid 4121 (pytest): double-forked",
            ),
            (
                Reason::IgnoredTerm,
                "watchdog guard: killed pid 4121 (pytest): ignored SIGTERM",
            ),
            (
                Reason::OutlivedCommand,
                "watchdog guard: killed pid 4121 (pytest): outlived the command",
            ),
            (
                Reason::Unkillable,
                "watchdog guard: could not kill pid 4121 (pytest): unkillable",
            ),
        ];
        for (reason, want) in cases {
            assert_eq!(line(4121, "pytest", reason), want, "{reason:?}");
        }
    }

    #[test]
    fn a_comm_cannot_break_the_line_or_fake_another() {
        let shown = line(7, "x\n::error::\x1b[2J", Reason::LeftGroup);
        assert_eq!(
            shown,
            "watchdog guard: killed pid 7 (x\\x0a::error::\\x1b[2J): left the group"
        );
        assert!(!shown.contains('\n'));
        // A comm with parentheses and a colon stays inside its own parentheses.
        assert_eq!(
            line(8, "a): killed (b", Reason::DoubleForked),
            "watchdog guard: killed pid 8 (a): killed (b): double-forked"
        );
    }

    #[test]
    fn events_name_what_explains_the_exit_status() {
        assert_eq!(
            timed_out(Duration::from_secs(1800)),
            "watchdog guard: timed out after 1800s, stopping the command"
        );
        assert_eq!(
            parent_gone(41),
            "watchdog guard: parent pid 41 is gone, stopping the command"
        );
    }
}
