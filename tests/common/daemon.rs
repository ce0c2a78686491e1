//! `watchdog run` as a child process: its stderr followed by [`Logs`], its port (when it
//! listens on port 0) read from its own log line, and reaped with a deadline when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{exit_within, reap, Logs};

pub struct Daemon {
    pub child: Child,
    pub logs: Logs,
}

impl Daemon {
    /// Starts `watchdog run` with exactly `vars` in its environment.
    pub fn run(vars: &[(&str, String)]) -> Self {
        Self::spawn(
            Command::new(env!("CARGO_BIN_EXE_watchdog")).arg("run"),
            vars,
        )
    }

    /// Starts `command` with exactly `vars` in its environment and its stderr followed.
    pub fn spawn(command: &mut Command, vars: &[(&str, String)]) -> Self {
        let mut child = command
            .env_clear()
            .envs(vars.iter().map(|(k, v)| (k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the daemon starts");
        let logs = Logs::follow(child.stderr.take().expect("stderr is piped"));
        Self { child, logs }
    }

    /// The port the endpoint listens on, from the line that says so (bind 127.0.0.1:0 and
    /// read it here: no port is ever picked, released and reused).
    pub fn port(&self) -> u16 {
        port_in(&self.logs.line_with(&["serving /metrics"]))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`-TERM`, `-KILL`) to the daemon.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal}");
    }

    /// Waits for the exit, for at most `limit`; returns the exit code.
    pub fn exit_within(&mut self, limit: Duration) -> Option<i32> {
        let status = exit_within(&mut self.child, limit)
            .unwrap_or_else(|| panic!("still running after {limit:?}"));
        status.code()
    }

    /// SIGTERM, and waits for a clean exit: the state and every delivery mark are committed.
    pub fn stop(mut self) {
        self.signal("-TERM");
        assert_eq!(self.exit_within(Duration::from_secs(10)), Some(0));
    }

    /// SIGKILL, and reaped.
    pub fn kill9(mut self) {
        reap(&mut self.child);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        reap(&mut self.child);
    }
}

/// The port in the line where the daemon says it serves `/metrics` on 127.0.0.1, in either
/// log format.
pub fn port_in(line: &str) -> u16 {
    let at = line.find("127.0.0.1:").expect("the line names the address") + 10;
    line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a port number")
}
