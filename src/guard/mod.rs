//! `watchdog guard -- CMD`: run a command so that nothing it starts can outlive it.
//!
//! Owns the command line of guard, its exit statuses and its one loop. guard makes itself a
//! child subreaper, asks for `SIGRTMIN+1` when its parent dies, starts CMD in a session of its
//! own ([`spawn`]), then sleeps in `sigtimedwait` until CMD exits, a signal comes to forward,
//! the parent dies or `--timeout` expires; while CMD runs it reads nothing at all. Then
//! [`teardown`] finds and kills what is left of the tree (found by [`tree`], reported by
//! [`report`]), and guard exits with CMD's status, 124 on timeout, 128+N for a signal, 125 when
//! it failed, 126/127 when CMD could not run. It is single-threaded (no async runtime: a
//! signal mask is per thread, and a parent-death signal follows the thread that forked),
//! reads no `WATCHDOG_*` variable and no state dir, and is dispatched before either is looked
//! at.

mod report;
mod spawn;
mod sys;
mod teardown;
mod tree;

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use rustix::process::{getpid, getppid, kill_process_group, set_child_subreaper, Pid, Signal};

use self::spawn::SpawnError;
use self::sys::Exit;
use self::teardown::{deadline, Why};
use self::tree::Tree;

/// Exit status when `--timeout` expired, as `timeout(1)`.
pub const EXIT_TIMEOUT: u8 = 124;
/// Exit status when guard itself failed, or was used wrongly, as `timeout(1)` and `env(1)`.
pub const EXIT_FAILED: u8 = 125;
/// Exit status when CMD was found but could not be run.
pub const EXIT_NOT_RUNNABLE: u8 = 126;
/// Exit status when CMD was not found.
pub const EXIT_NOT_FOUND: u8 = 127;

/// The /proc guard reads during a teardown.
const PROC: &str = "/proc";

/// The arguments of `watchdog guard`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = "\
Exit status: CMD's own; 124 on --timeout; 128+N when CMD died of signal N; 125 when guard \
failed (including a process it could not kill) or was used wrongly; 126 when CMD was found but \
could not run; 127 when it was not found.

SIGTERM, SIGINT and SIGHUP sent to guard go to CMD's process group; if the tree is not gone \
--kill-after later, it is torn down. On stderr, one line per process guard had to kill: \
\"watchdog guard: killed pid 4121 (pytest): double-forked\" (or left the group, ignored \
SIGTERM, outlived the command; \"could not kill ... : unkillable\").")]
pub struct GuardArgs {
    /// Stop CMD and its whole tree after this long: 90s, 30m, 2h, 1d, or bare seconds (0: never).
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse)]
    pub timeout: Option<Duration>,
    /// How long SIGTERM has before SIGKILL, and SIGKILL before a process is called unkillable.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = crate::duration::parse,
        default_value = "10s"
    )]
    pub kill_after: Duration,
    /// Say nothing on stderr about the processes guard had to kill.
    #[arg(long)]
    pub quiet: bool,
    /// The command to run, and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// guard's own command line, parsed before the main one so that its errors are its own.
#[derive(Debug, Parser)]
#[command(
    name = "watchdog guard",
    about = "Run CMD so that nothing it starts outlives it.",
    override_usage = "watchdog guard [--timeout DURATION] [--kill-after DURATION] [--quiet] -- CMD [ARGS...]"
)]
struct Standalone {
    #[command(flatten)]
    args: GuardArgs,
}

/// `watchdog guard ARGS...`, with `args` the words after `watchdog` (`guard` first). Usage
/// errors exit 125, not clap's 2: 1 and 2 may well be CMD's own statuses.
pub fn main(args: &[OsString]) -> ExitCode {
    let words =
        std::iter::once(OsString::from("watchdog guard")).chain(args.iter().skip(1).cloned());
    match Standalone::try_parse_from(words) {
        Ok(standalone) => run(standalone.args),
        Err(error) => {
            let _ = error.print();
            if error.use_stderr() {
                ExitCode::from(EXIT_FAILED)
            } else {
                // --help: asked for, and given.
                ExitCode::SUCCESS
            }
        }
    }
}

/// Runs guard with parsed arguments and returns its exit status.
pub fn run(args: GuardArgs) -> ExitCode {
    match guard(&args) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            say(&format!("watchdog guard: {error}"));
            ExitCode::from(match error {
                GuardError::Spawn(SpawnError::NotFound { .. }) => EXIT_NOT_FOUND,
                GuardError::Spawn(SpawnError::NotRunnable { .. }) => EXIT_NOT_RUNNABLE,
                _ => EXIT_FAILED,
            })
        }
    }
}

/// Why guard could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("cannot set up signals: {0}")]
    Signals(std::io::Error),
    #[error("cannot become a child subreaper: {0}")]
    Subreaper(std::io::Error),
    #[error("cannot ask for a parent-death signal: {0}")]
    ParentDeath(std::io::Error),
    #[error("its parent exited before the command could start")]
    ParentGone,
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("cannot wait for the command: {0}")]
    Wait(std::io::Error),
}

/// The signals guard forwards to CMD's group.
const FORWARDED: [i32; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

fn guard(args: &GuardArgs) -> Result<u8, GuardError> {
    let me = getpid();
    let parent_death = sys::parent_death_signal();
    let waited = [
        libc::SIGCHLD,
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        parent_death,
    ];
    // Blocked before anything can send them, so none is lost or acted on by default; taken one
    // at a time by sigtimedwait below. Their dispositions go back to default first: an ignored
    // SIGCHLD inherited from the parent would have the kernel reap CMD behind guard's back.
    for &signal in &waited {
        sys::set_default(signal).map_err(GuardError::Signals)?;
    }
    let signals = sys::SignalSet::of(&waited).map_err(GuardError::Signals)?;
    signals.block().map_err(GuardError::Signals)?;

    // Orphans of the tree are reparented to guard, not to init, so they stay findable.
    set_child_subreaper(Some(me)).map_err(|e| GuardError::Subreaper(e.into()))?;

    // The parent may die between reading its pid and the prctl: read it again after.
    let parent = getppid();
    sys::set_parent_death_signal(parent_death).map_err(GuardError::ParentDeath)?;
    if getppid() != parent {
        return Err(GuardError::ParentGone);
    }

    let cmd = spawn::spawn(&args.command, me)?;
    let tree = Tree {
        cmd: cmd.as_raw_nonzero().get(),
        guard: me.as_raw_nonzero().get(),
    };
    // From here on CMD runs: whatever goes wrong, the tree still comes down before guard exits.
    let (why, failure) = match watch(args, cmd, parent, &signals) {
        Ok(why) => (why, None),
        Err(error) => (Why::Failed, Some(error)),
    };
    let outcome = teardown::run(Path::new(PROC), tree, why, args.kill_after);
    if !args.quiet {
        for killed in &outcome.killed {
            say(&killed.to_string());
        }
    }
    if let Some(error) = &outcome.error {
        say(&format!(
            "watchdog guard: cannot read {PROC}: {error}; only CMD's process group was signalled"
        ));
    }
    // Only now is CMD reaped: its pid and group id were reserved until the tree was down.
    let exit = sys::reap(tree.cmd).map_err(GuardError::Wait)?;
    // Members that died after the last scan were reparented to guard: leave no zombie to init.
    while let Ok(Some(zombie)) = sys::peek_any() {
        if !matches!(sys::reap(zombie), Ok(Some(_))) {
            break;
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    if outcome.unkillable || outcome.error.is_some() {
        return Ok(EXIT_FAILED);
    }
    Ok(match (why, exit) {
        (Why::TimedOut, _) => EXIT_TIMEOUT,
        (_, Some(exit)) => status(exit),
        // CMD outlived its SIGKILL; the unkillable report above has already said so.
        (_, None) => EXIT_FAILED,
    })
}

/// Waits, costing nothing, until the tree must come down, and says why: CMD exited, the
/// timeout expired, a forwarded signal was not obeyed within `--kill-after`, or the parent died.
/// Forwards TERM, INT and HUP to CMD's group meanwhile.
fn watch(
    args: &GuardArgs,
    cmd: Pid,
    parent: Option<Pid>,
    signals: &sys::SignalSet,
) -> Result<Why, GuardError> {
    let parent_death = sys::parent_death_signal();
    let started = Instant::now();
    let timeout_at = args
        .timeout
        .filter(|t| !t.is_zero())
        .and_then(|t| started.checked_add(t));
    let mut escalate_at: Option<Instant> = None;

    loop {
        let next = match (timeout_at, escalate_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wait = next.map(|at| at.saturating_duration_since(Instant::now()));
        let signal = signals.wait(wait).map_err(GuardError::Wait)?;
        if let Some(signal) = signal {
            if FORWARDED.contains(&signal) {
                forward(cmd, signal);
                escalate_at.get_or_insert_with(|| deadline(Instant::now(), args.kill_after));
            } else if signal == parent_death && getppid() != parent {
                // A parent thread that exits fires this too, with the parent process alive:
                // only a changed parent pid means the parent is gone.
                if !args.quiet {
                    let parent = parent.map_or(0, |p| p.as_raw_nonzero().get());
                    say(&report::parent_gone(parent));
                }
                return Ok(Why::ParentGone);
            }
        }
        // Whatever woke guard, children may have exited: SIGCHLDs coalesce.
        if cmd_exited(cmd)? {
            return Ok(Why::Exited);
        }
        let now = Instant::now();
        if timeout_at.is_some_and(|at| now >= at) {
            if !args.quiet {
                say(&report::timed_out(args.timeout.unwrap_or_default()));
            }
            return Ok(Why::TimedOut);
        }
        if escalate_at.is_some_and(|at| now >= at) {
            return Ok(Why::Escalated);
        }
    }
}

/// Whether CMD has exited, after reaping every other exited child: orphans that died after
/// they were reparented to guard. CMD itself stays unreaped.
fn cmd_exited(cmd: Pid) -> Result<bool, GuardError> {
    let cmd = cmd.as_raw_nonzero().get();
    while let Some(child) = sys::peek_any().map_err(GuardError::Wait)? {
        if child == cmd {
            return Ok(true);
        }
        sys::reap(child).map_err(GuardError::Wait)?;
    }
    Ok(sys::peek(cmd).map_err(GuardError::Wait)?.is_some())
}

/// Passes `signal` on to CMD's process group. CMD is unreaped, so the group id is still its.
fn forward(cmd: Pid, signal: i32) {
    if let Some(signal) = Signal::from_named_raw(signal) {
        let _ = kill_process_group(cmd, signal);
    }
}

/// guard's exit status for how CMD ended, as a shell reports it.
fn status(exit: Exit) -> u8 {
    match exit {
        // An exit status is the low 8 bits of what CMD passed to exit.
        Exit::Code(code) => (code & 0xff) as u8,
        Exit::Signal(signal) => u8::try_from(128 + signal).unwrap_or(EXIT_FAILED),
    }
}

/// One line on stderr. A closed stderr must not stop guard from tearing the tree down.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<GuardArgs, clap::Error> {
        Standalone::try_parse_from(std::iter::once("watchdog guard").chain(words.iter().copied()))
            .map(|s| s.args)
    }

    #[test]
    fn arguments_before_the_double_dash_are_guard_s_and_after_it_cmd_s() {
        let args = parse(&[
            "--timeout",
            "30m",
            "--quiet",
            "--",
            "pytest",
            "-n",
            "4",
            "--timeout",
            "5",
        ])
        .unwrap();
        assert_eq!(args.timeout, Some(Duration::from_secs(1800)));
        assert_eq!(args.kill_after, Duration::from_secs(10), "the default");
        assert!(args.quiet);
        assert_eq!(args.command, ["pytest", "-n", "4", "--timeout", "5"]);
    }

    #[test]
    fn usage_errors_are_errors() {
        let cases: [&[&str]; 6] = [
            &[],
            &["--"],
            &["--timeout", "5x", "--", "true"],
            &["--kill-after", "-1s", "--", "true"],
            &["--nope", "--", "true"],
            &["true"],
        ];
        for words in cases {
            let error = parse(words).unwrap_err();
            assert!(error.use_stderr(), "{words:?}: {error}");
        }
    }

    #[test]
    fn exit_statuses_as_a_shell_reports_them() {
        let cases = [
            (Exit::Code(0), 0),
            (Exit::Code(7), 7),
            (Exit::Code(255), 255),
            (Exit::Code(256), 0),
            (Exit::Signal(15), 143),
            (Exit::Signal(9), 137),
            (Exit::Signal(2), 130),
            (Exit::Signal(64), 192),
        ];
        for (exit, want) in cases {
            assert_eq!(status(exit), want, "{exit:?}");
        }
    }
}
