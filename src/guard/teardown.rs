//! Taking CMD's tree down: SIGTERM to every member, SIGKILL to those still there after
//! `--kill-after`, and a verdict on each.
//!
//! Owns the rounds of a teardown. It reads /proc (through [`super::tree`]) once a round, and
//! only from the moment CMD exited or must be stopped. It never signals the wrong process: a
//! member is signalled through a pidfd opened when it was found and checked against the start
//! time of the process that was found, never by pid; CMD's own pid and process group stay
//! reserved because guard reaps CMD only after the teardown, in the caller. Without pidfds
//! (Linux before 5.3) it signals only CMD's process group and guard's own unreaped children,
//! and reports every other member as unkillable. It never waits longer than twice
//! `--kill-after` (and one second for SIGKILL to land) however the tree behaves.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::{getrlimit, setrlimit, Pid, PidfdFlags, Resource, Rlimit, Signal};
use rustix::process::{kill_process, kill_process_group, pidfd_open, pidfd_send_signal};

use super::report::{Killed, Reason};
use super::sys;
use super::tree::{self, Proc, Tree, Way};

/// Why the tree comes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// CMD exited on its own: whatever is left of its tree outlived it.
    Exited,
    /// `--timeout` expired.
    TimedOut,
    /// A signal was forwarded to CMD's group and the tree was not gone `--kill-after` later.
    Escalated,
    /// guard's parent died.
    ParentGone,
    /// guard itself could not go on waiting (a system call failed).
    Failed,
}

/// What a teardown did.
#[derive(Debug)]
pub struct Outcome {
    /// One entry per process guard had to kill, or could not, in the order they were found.
    pub killed: Vec<Killed>,
    /// Some process could not be killed: guard must not claim the tree is gone.
    pub unkillable: bool,
    /// /proc could not be listed at some point: members outside CMD's group may be missed.
    pub error: Option<io::Error>,
}

/// A SIGKILL takes effect asynchronously; this is the least time it is given before a process
/// that still runs is called unkillable, whatever `--kill-after` says.
const KILL_GRACE_MIN: Duration = Duration::from_secs(1);

/// The first pause between two scans; it doubles each round up to [`ROUND_MAX`]. Any tracked
/// process that exits wakes the wait early, so a tree that dies at once costs one short round.
const ROUND_MIN: Duration = Duration::from_millis(10);
const ROUND_MAX: Duration = Duration::from_millis(250);

/// One member, from the moment it was first found.
struct Tracked {
    proc: Proc,
    way: Way,
    /// Open while the member lives: the one handle through which it is signalled on its own
    /// (the group signal reaches CMD's group as a whole).
    pidfd: Option<OwnedFd>,
    alive: bool,
    termed: bool,
    killed: bool,
    unkillable: bool,
}

impl Tracked {
    /// Still to wait for: alive and not already given up on.
    fn pending(&self) -> bool {
        self.alive && !self.unkillable
    }
}

struct Teardown<'a> {
    root: &'a Path,
    tree: Tree,
    why: Why,
    /// pidfd_open works here.
    pidfds: bool,
    /// A scan has been taken: how members got away is judged on the first one only.
    scanned: bool,
    tracked: Vec<Tracked>,
    error: Option<io::Error>,
}

/// Tears down everything of `tree` that still runs: SIGTERM now, SIGKILL `kill_after` later to
/// what is left, and after as long again (at least a second), gives up on what still runs.
/// `root` is the /proc to read.
pub fn run(root: &Path, tree: Tree, why: Why, kill_after: Duration) -> Outcome {
    // CMD is guard's unreaped child, so opening its pidfd can only fail for want of pidfds.
    let pidfds = !matches!(
        pid(tree.cmd).map(|cmd| pidfd_open(cmd, PidfdFlags::empty())),
        Some(Err(rustix::io::Errno::NOSYS))
    );
    raise_fd_limit();
    let mut teardown = Teardown {
        root,
        tree,
        why,
        pidfds,
        scanned: false,
        tracked: Vec::new(),
        error: None,
    };
    teardown.phase(Signal::TERM, deadline(Instant::now(), kill_after));
    if teardown.any_pending() {
        let kill_grace = kill_after.max(KILL_GRACE_MIN);
        teardown.phase(Signal::KILL, deadline(Instant::now(), kill_grace));
    }
    for member in teardown.tracked.iter_mut().filter(|m| m.pending()) {
        member.unkillable = true;
    }
    teardown.outcome()
}

/// Each live member holds a pidfd until it is gone: a tree of more than 1024 processes would
/// run into the usual soft limit, so guard takes the hard one. CMD started before this and
/// keeps the limit it was given.
fn raise_fd_limit() {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
}

/// `start + after`, or a day past `start` when that is not representable (`--kill-after 1000000d`):
/// a wait that long is the same as none at all.
pub fn deadline(start: Instant, after: Duration) -> Instant {
    start
        .checked_add(after)
        .or_else(|| start.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(start)
}

fn pid(raw: i32) -> Option<Pid> {
    Pid::from_raw(raw)
}

impl Teardown<'_> {
    fn any_pending(&self) -> bool {
        self.tracked.iter().any(Tracked::pending)
    }

    /// Whether `proc` is already followed. CMD is matched by pid alone: unreaped, its pid
    /// cannot have passed to another process.
    fn known(&self, proc: &Proc) -> bool {
        self.tracked.iter().any(|m| {
            m.proc.pid == proc.pid && (m.proc.start == proc.start || proc.pid == self.tree.cmd)
        })
    }

    /// One phase: `signal` to the group and to every member as it is found, until none is left
    /// or `until` passes.
    fn phase(&mut self, signal: Signal, until: Instant) {
        let mut first = true;
        let mut pause = ROUND_MIN;
        loop {
            self.round(signal, first);
            first = false;
            if !self.any_pending() {
                return;
            }
            let now = Instant::now();
            if now >= until {
                return;
            }
            self.wait(pause.min(until - now));
            pause = (pause * 2).min(ROUND_MAX);
        }
    }

    /// Scans, reaps orphans that died under guard, notes who is gone, finds newcomers, and
    /// signals the group (on a phase's first round) and every member not yet signalled in this
    /// phase.
    fn round(&mut self, signal: Signal, first: bool) {
        let cmd = self.tree.cmd;
        let cmd_running = matches!(sys::peek(cmd), Ok(None));
        let procs = match tree::scan(self.root) {
            Ok(procs) => Some(procs),
            Err(error) => {
                self.error.get_or_insert(error);
                None
            }
        };
        let live = procs
            .as_deref()
            .map(|procs| tree::members(procs, self.tree));
        if let Some(procs) = &procs {
            for zombie in tree::zombie_children(procs, self.tree) {
                let _ = sys::reap(zombie);
            }
        }
        for member in self.tracked.iter_mut().filter(|m| m.alive) {
            member.alive = if member.proc.pid == cmd {
                cmd_running
            } else if let Some(fd) = &member.pidfd {
                !sys::has_exited(fd.as_fd())
            } else if let Some(live) = &live {
                live.iter()
                    .any(|p| p.pid == member.proc.pid && p.start == member.proc.start)
            } else {
                true
            };
            if !member.alive {
                member.pidfd = None;
            }
        }
        match &live {
            Some(live) => {
                let first_scan = !self.scanned;
                self.scanned = true;
                for &proc in live {
                    if !self.known(proc) {
                        let way = tree::how(proc, self.tree, cmd_running, first_scan);
                        self.track(proc.clone(), way);
                    }
                }
            }
            // Blind: CMD, guard's own child, is the one member known without /proc.
            None if cmd_running && !self.tracked.iter().any(|m| m.proc.pid == cmd) => {
                let proc = Proc {
                    pid: cmd,
                    ppid: self.tree.guard,
                    pgrp: cmd,
                    session: cmd,
                    start: 0,
                    state: 'R',
                    comm: "?".into(),
                };
                self.track(proc, Way::Command);
            }
            None => {}
        }
        if first && self.any_pending() {
            // Who still runs is noted before the signal: a SIGKILL can land before the next
            // line, and a member that was already gone did not ignore its SIGTERM.
            let in_group: Vec<usize> = (0..self.tracked.len())
                .filter(|&i| {
                    let member = &self.tracked[i];
                    member.pending() && member.proc.pgrp == cmd && still_running(member)
                })
                .collect();
            // A group signal is atomic against fork: a member forking right now either takes
            // it or retries the fork after it. CMD is unreaped, so its group id is still CMD's.
            if let Some(group) = pid(cmd) {
                let _ = kill_process_group(group, signal);
            }
            for i in in_group {
                mark_signalled(&mut self.tracked[i], signal);
            }
        }
        let (pidfds, guard) = (self.pidfds, self.tree.guard);
        for member in self.tracked.iter_mut().filter(|m| m.pending()) {
            let done = if signal == Signal::TERM {
                member.termed
            } else {
                member.killed
            };
            if !done {
                send(member, signal, pidfds, guard, cmd);
            }
        }
    }

    /// Starts following `proc`: opens its pidfd, then checks that the pid still is the process
    /// the scan saw (same start time), not a newer one that took the pid in between. Once
    /// open, the pidfd names that process and no other, whatever happens to the pid.
    fn track(&mut self, proc: Proc, way: Way) {
        let mut member = Tracked {
            proc,
            way,
            pidfd: None,
            alive: true,
            termed: false,
            killed: false,
            unkillable: false,
        };
        if self.pidfds {
            let is_cmd = member.proc.pid == self.tree.cmd;
            match pid(member.proc.pid).map(|p| pidfd_open(p, PidfdFlags::empty())) {
                Some(Ok(fd)) => {
                    let same = is_cmd
                        || tree::read_stat(self.root, member.proc.pid)
                            .is_some_and(|now| now.start == member.proc.start && !now.exited());
                    if same {
                        member.pidfd = Some(fd);
                    } else {
                        member.alive = false;
                    }
                }
                Some(Err(rustix::io::Errno::NOSYS)) => self.pidfds = false,
                // Gone before it could be opened.
                Some(Err(rustix::io::Errno::SRCH)) | None => member.alive = false,
                // No handle (out of file descriptors, say): it cannot be signalled safely.
                Some(Err(_)) => member.unkillable = true,
            }
        }
        self.tracked.push(member);
    }

    /// Waits until some member exits or `timeout` passes.
    fn wait(&self, timeout: Duration) {
        let fds: Vec<BorrowedFd<'_>> = self
            .tracked
            .iter()
            .filter(|m| m.pending())
            .filter_map(|m| m.pidfd.as_ref().map(AsFd::as_fd))
            .collect();
        if fds.is_empty() || sys::wait_for_exit(&fds, timeout).is_err() {
            // Nothing to wait on (no pidfds here): let the time pass.
            std::thread::sleep(timeout);
        }
    }

    fn outcome(self) -> Outcome {
        let why = self.why;
        let mut unkillable = false;
        let mut killed = Vec::new();
        for member in self.tracked {
            unkillable |= member.unkillable;
            let reason = if member.unkillable {
                Some(Reason::Unkillable)
            } else if member.termed && member.killed {
                Some(Reason::IgnoredTerm)
            } else if !member.termed && !member.killed {
                // It went by itself before anything was sent to it.
                None
            } else {
                match member.way {
                    Way::Command => None,
                    Way::DoubleForked => Some(Reason::DoubleForked),
                    Way::LeftGroup => Some(Reason::LeftGroup),
                    Way::InGroup => (why == Why::Exited).then_some(Reason::OutlivedCommand),
                }
            };
            if let Some(reason) = reason {
                killed.push(Killed {
                    pid: member.proc.pid,
                    comm: member.proc.comm,
                    reason,
                });
            }
        }
        Outcome {
            killed,
            unkillable,
            error: self.error,
        }
    }
}

/// Whether `member` has not exited yet, as far as its pidfd tells (without one, it is taken as
/// running).
fn still_running(member: &Tracked) -> bool {
    !member
        .pidfd
        .as_ref()
        .is_some_and(|fd| sys::has_exited(fd.as_fd()))
}

/// Notes that `member`, still running a moment before, was sent `signal`.
fn mark_signalled(member: &mut Tracked, signal: Signal) {
    if signal == Signal::TERM {
        member.termed = true;
    } else {
        member.killed = true;
    }
}

/// Sends `signal` to one member: through its pidfd; without pidfds, by pid only when it is an
/// unreaped child of guard (its pid cannot pass to another process before guard reaps it), and
/// through CMD's group when it is in it. Anything else cannot be signalled safely: unkillable.
fn send(member: &mut Tracked, signal: Signal, pidfds: bool, guard: i32, cmd: i32) {
    if !still_running(member) {
        member.alive = false;
        member.pidfd = None;
        return;
    }
    let sent = if let Some(fd) = &member.pidfd {
        pidfd_send_signal(fd, signal)
    } else if pidfds {
        // No pidfd although pidfds work: it was gone before one could be opened.
        return;
    } else if member.proc.ppid == guard || member.proc.pid == cmd {
        match pid(member.proc.pid) {
            Some(p) => kill_process(p, signal),
            None => return,
        }
    } else if member.proc.pgrp == cmd {
        match pid(cmd) {
            Some(group) => kill_process_group(group, signal),
            None => return,
        }
    } else {
        member.unkillable = true;
        return;
    };
    match sent {
        Ok(()) => mark_signalled(member, signal),
        Err(rustix::io::Errno::SRCH) => member.alive = false,
        // EPERM: it changed its credentials (sudo, a setuid program).
        Err(_) => member.unkillable = true,
    }
}
