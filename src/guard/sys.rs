//! The system calls of guard that rustix does not wrap safely, behind safe functions.
//!
//! Owns every `unsafe` block of guard: the signal mask, waiting for a signal with a timeout,
//! signal dispositions (in guard, and in the child between fork and exec), `waitid` with the
//! pid of the child that changed state, a parent-death signal from the real-time range, and
//! `poll` over pidfds. rustix 1 covers the rest (pidfds, `kill`, `setsid`, the subreaper
//! flag) and is used there; here, rustix either has no wrapper (`sigtimedwait`,
//! `sigprocmask`), keeps the real-time signals from safe code, or drops the child's pid from
//! `waitid`'s answer. It reads no file and keeps no state.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr;
use std::time::Duration;

/// The signal guard asks for when its parent dies: `SIGRTMIN+1`. Nobody sends it by accident,
/// so it is never confused with a real SIGTERM that guard must forward.
pub fn parent_death_signal() -> i32 {
    libc::SIGRTMIN() + 1
}

/// The highest signal number, for resetting every disposition in the child.
pub fn max_signal() -> i32 {
    libc::SIGRTMAX()
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A set of signals that guard blocks and then waits for, so that none of them ever runs a
/// handler or its default action in guard.
pub struct SignalSet(libc::sigset_t);

impl SignalSet {
    /// # Errors
    /// When a number is not a signal.
    pub fn of(signals: &[i32]) -> io::Result<Self> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set it is given; it fails only on a null pointer.
        check(unsafe { libc::sigemptyset(set.as_mut_ptr()) })?;
        // SAFETY: initialised just above.
        let mut set = unsafe { set.assume_init() };
        for &signal in signals {
            // SAFETY: `set` is a valid, initialised sigset_t.
            check(unsafe { libc::sigaddset(&mut set, signal) })?;
        }
        Ok(Self(set))
    }

    /// Blocks these signals in the calling thread, which in guard is the only thread.
    ///
    /// # Errors
    /// As `pthread_sigmask`, which fails only on bad arguments.
    pub fn block(&self) -> io::Result<()> {
        // SAFETY: a valid set and a null old-set pointer.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &self.0, ptr::null_mut()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(rc))
        }
    }

    /// Waits until one of these (blocked) signals is pending and takes it, for at most
    /// `timeout`, or for ever with `None`. `Ok(None)` when the time ran out or the wait was
    /// interrupted: the caller checks its own deadlines either way.
    ///
    /// # Errors
    /// As `sigtimedwait`, which fails only on bad arguments.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<i32>> {
        let timespec = timeout.map(|t| libc::timespec {
            tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(t.subsec_nanos()),
        });
        let timespec_ptr = timespec.as_ref().map_or(ptr::null(), ptr::from_ref);
        // SAFETY: a valid set, a null siginfo (not wanted) and a valid or null timeout.
        let rc = unsafe { libc::sigtimedwait(&self.0, ptr::null_mut(), timespec_ptr) };
        if rc > 0 {
            return Ok(Some(rc));
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EAGAIN | libc::EINTR) => Ok(None),
            _ => Err(error),
        }
    }
}

fn default_action() -> libc::sigaction {
    // SAFETY: sigaction is plain data; all-zero is SIG_DFL (0) with no flags and an empty mask.
    let mut action: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
    action.sa_sigaction = libc::SIG_DFL;
    action
}

/// Puts `signal` back to its default action in guard. A SIGCHLD that guard's own parent set to
/// SIG_IGN would have the kernel reap CMD behind guard's back, and its pid could be reused.
///
/// # Errors
/// As `sigaction`, for a number that is not a signal.
pub fn set_default(signal: i32) -> io::Result<()> {
    let action = default_action();
    // SAFETY: a valid action and a null old-action pointer.
    check(unsafe { libc::sigaction(signal, &action, ptr::null_mut()) }).map(|_| ())
}

/// In the child, between fork and exec: every signal guard's parent or the Rust runtime set
/// to SIG_IGN back to its default action (handlers reset at exec anyway), and an empty mask,
/// so CMD starts as a shell would start it, not with guard's blocked set. Only
/// async-signal-safe calls: this runs in a forked copy of guard.
///
/// # Errors
/// When the mask cannot be set.
pub fn reset_signals_for_exec(max_signal: i32) -> io::Result<()> {
    let action = default_action();
    for signal in 1..=max_signal {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // The numbers the C library keeps for itself (32, 33 in glibc) refuse with EINVAL; that
        // is fine, no program can have set them.
        // SAFETY: a valid action and a null old-action pointer.
        let _ = unsafe { libc::sigaction(signal, &action, ptr::null_mut()) };
    }
    let mut empty = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; then a valid set and a null old-set pointer.
    unsafe {
        check(libc::sigemptyset(empty.as_mut_ptr()))?;
        check(libc::sigprocmask(
            libc::SIG_SETMASK,
            empty.as_ptr(),
            ptr::null_mut(),
        ))?;
    }
    Ok(())
}

/// Asks the kernel to send `signal` to guard when the thread that created it exits.
///
/// # Errors
/// As `prctl(PR_SET_PDEATHSIG)`, for a number that is not a signal.
pub fn set_parent_death_signal(signal: i32) -> io::Result<()> {
    let signal =
        libc::c_ulong::try_from(signal).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: PR_SET_PDEATHSIG takes one integer argument; the rest are ignored zeroes.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal, 0_u64, 0_u64, 0_u64) }).map(|_| ())
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It called exit with this status.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

/// `waitid` for an exited child: `Ok(None)` when none matching has exited yet.
fn waitid(idtype: libc::idtype_t, id: libc::id_t, nowait: bool) -> io::Result<Option<(i32, Exit)>> {
    let mut options = libc::WEXITED | libc::WNOHANG;
    if nowait {
        options |= libc::WNOWAIT;
    }
    // Zeroed: with WNOHANG and nothing to report, the kernel leaves si_pid at 0.
    // SAFETY: siginfo_t is plain data.
    let mut info: libc::siginfo_t = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: a valid siginfo_t to fill.
    check(unsafe { libc::waitid(idtype, id, &mut info, options) })?;
    // SAFETY: waitid filled a SIGCHLD siginfo, whose pid and status fields these read.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    let exit = match info.si_code {
        libc::CLD_EXITED => Exit::Code(status),
        _ => Exit::Signal(status),
    };
    Ok(Some((pid, exit)))
}

fn id(pid: i32) -> io::Result<libc::id_t> {
    libc::id_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Whether child `pid` has exited, without reaping it: it stays a zombie, so its pid and
/// process group id cannot be reused while guard still signals them.
///
/// # Errors
/// ECHILD when `pid` is not an unreaped child of guard.
pub fn peek(pid: i32) -> io::Result<Option<Exit>> {
    Ok(waitid(libc::P_PID, id(pid)?, true)?.map(|(_, exit)| exit))
}

/// The pid of some exited, unreaped child of guard, without reaping it.
///
/// # Errors
/// As `waitid`; having no children at all is `Ok(None)`.
pub fn peek_any() -> io::Result<Option<i32>> {
    match waitid(libc::P_ALL, 0, true) {
        Ok(found) => Ok(found.map(|(pid, _)| pid)),
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reaps child `pid` if it has exited.
///
/// # Errors
/// ECHILD when `pid` is not an unreaped child of guard.
pub fn reap(pid: i32) -> io::Result<Option<Exit>> {
    Ok(waitid(libc::P_PID, id(pid)?, false)?.map(|(_, exit)| exit))
}

/// Whether the process behind `pidfd` has exited: a pidfd reads ready from then on.
pub fn has_exited(pidfd: BorrowedFd<'_>) -> bool {
    let mut probe = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call; a zero timeout never blocks.
    let rc = unsafe { libc::poll(&mut probe, 1, 0) };
    rc == 1 && probe.revents & libc::POLLIN != 0
}

/// Waits until one of `pidfds` is readable (its process exited) or `timeout` passes.
///
/// # Errors
/// As `poll`, which fails only on bad arguments or no memory.
pub fn wait_for_exit(pidfds: &[BorrowedFd<'_>], timeout: Duration) -> io::Result<()> {
    let mut fds: Vec<libc::pollfd> = pidfds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    let count = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
    // SAFETY: `fds` holds `count` valid pollfd entries for the duration of the call.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), count, millis) };
    if rc == -1 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EINTR) {
            return Err(error);
        }
    }
    Ok(())
}
