//! Starting CMD: a new session, a parent-death SIGKILL, and a clean signal state.
//!
//! Owns the code that runs in the forked child before exec. It leaves CMD a child of guard that
//! guard alone reaps (std's `Child` is dropped without waiting, which neither kills nor reaps),
//! and it maps a failure to start to the exit statuses of `env(1)`: 127 not found, 126 found
//! but not runnable, 125 when the fork itself failed. It never touches CMD's environment,
//! working directory or file descriptors.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::process::{getppid, set_parent_process_death_signal, setsid, Pid, Signal};

use super::sys;

/// Why CMD did not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("no command after --")]
    Empty,
    #[error("cannot find '{program}': {source}")]
    NotFound { program: String, source: io::Error },
    #[error("cannot run '{program}': {source}")]
    NotRunnable { program: String, source: io::Error },
    #[error("cannot start '{program}': {source}")]
    Failed { program: String, source: io::Error },
}

/// Starts `command` (program and arguments) as a child of `guard`, the calling process, in a
/// session of its own, and returns its pid, which is also its process group and session id.
///
/// # Errors
/// [`SpawnError`]: not found, not runnable, or the fork failed.
pub fn spawn(command: &[OsString], guard: Pid) -> Result<Pid, SpawnError> {
    let (program, args) = command.split_first().ok_or(SpawnError::Empty)?;
    let max_signal = sys::max_signal();
    let mut cmd = Command::new(program);
    cmd.args(args);
    // SAFETY: the closure makes only async-signal-safe system calls and allocates nothing, as
    // the child of a fork must.
    unsafe {
        cmd.pre_exec(move || prepare_child(guard, max_signal));
    }
    match cmd.spawn() {
        // A pid is never 0 or negative; the conversion fails only if std lies.
        Ok(child) => Pid::from_raw(i32::try_from(child.id()).unwrap_or(0)).ok_or_else(|| {
            SpawnError::Failed {
                program: program.to_string_lossy().into_owned(),
                source: io::Error::from_raw_os_error(libc::ESRCH),
            }
        }),
        Err(source) => {
            let program = program.to_string_lossy().into_owned();
            Err(match source.raw_os_error() {
                Some(libc::ENOENT) => SpawnError::NotFound { program, source },
                // The fork failed, or guard died before CMD could be tied to it.
                Some(libc::EAGAIN | libc::ENOMEM | libc::ESRCH) | None => {
                    SpawnError::Failed { program, source }
                }
                Some(_) => SpawnError::NotRunnable { program, source },
            })
        }
    }
}

/// In the child, before exec.
fn prepare_child(guard: Pid, max_signal: i32) -> io::Result<()> {
    // A session of its own: CMD's group is what guard signals, apart from guard's own group.
    setsid()?;
    // When guard dies, even by SIGKILL, the kernel kills CMD.
    set_parent_process_death_signal(Some(Signal::KILL))?;
    // If guard died before the line above, no signal will ever come: do not run at all.
    if getppid() != Some(guard) {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    sys::reset_signals_for_exec(max_signal)
}
