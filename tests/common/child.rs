//! Child processes in tests: their log lines read on a thread, ticks counted from the moment a
//! test asks, every read and every reap bounded by a deadline.

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Long enough for a loaded CI machine; a passing test waits far less.
pub const WAIT: Duration = Duration::from_secs(30);

/// The lines a child writes to one of its pipes, and how many of them said a tick was done.
pub struct Logs {
    lines: mpsc::Receiver<String>,
    ticks: Arc<(Mutex<u64>, Condvar)>,
}

impl Logs {
    /// Reads `pipe` on a thread until it closes. A line containing "tick done" counts a tick.
    pub fn follow(pipe: impl Read + Send + 'static) -> Self {
        let (tx, lines) = mpsc::channel();
        let ticks = Arc::new((Mutex::new(0u64), Condvar::new()));
        let counter = Arc::clone(&ticks);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if line.contains("tick done") {
                    let (count, changed) = &*counter;
                    *count.lock().unwrap() += 1;
                    changed.notify_all();
                }
                // The test may have stopped listening; the count above still serves it.
                let _ = tx.send(line);
            }
        });
        Self { lines, ticks }
    }

    /// Waits until `n` ticks have finished after this call; ticks logged before it do not
    /// count, so a negative check that follows really spans `n` ticks.
    pub fn ticks(&self, n: u64) {
        let (count, changed) = &*self.ticks;
        let deadline = Instant::now() + WAIT;
        let mut seen = count.lock().unwrap();
        let target = *seen + n;
        while *seen < target {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no tick for {WAIT:?}: the daemon stopped ticking"
            );
            seen = changed.wait_timeout(seen, left).unwrap().0;
        }
    }

    /// Waits for a line containing every one of `texts`, skipping others.
    pub fn line_with(&self, texts: &[&str]) -> String {
        self.line_where(&format!("{texts:?}"), |line| {
            texts.iter().all(|t| line.contains(t))
        })
    }

    /// Waits for a line for which `wanted` holds, skipping others; `what` names it on failure.
    pub fn line_where(&self, what: &str, mut wanted: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line with {what} within {WAIT:?}"));
            if wanted(&line) {
                return line;
            }
        }
    }

    /// The next line, whatever it is.
    pub fn next_line(&self) -> String {
        self.line_where("anything", |_| true)
    }

    /// The lines that have arrived so far, without waiting.
    pub fn pending(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Every line still to come, up to the close of the pipe (the child has exited), waiting
    /// [`WAIT`] at most: a check over a child's whole output must not miss its last lines.
    pub fn rest(&self) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut rest = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => rest.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return rest,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("the pipe was still open {WAIT:?} later: has the child exited?")
                }
            }
        }
    }
}

/// Waits for `child` to exit by itself within `limit`; `None` when it is still running.
pub fn exit_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills `child` and reaps it within a deadline. Never panics, so it may run in `Drop`; a
/// child that outlives the deadline (stuck in the kernel) is reported on stderr.
pub fn reap(child: &mut Child) {
    let _ = child.kill();
    if exit_within(child, Duration::from_secs(10)).is_none() {
        eprintln!("child {} was not reaped within 10 s of SIGKILL", child.id());
    }
}

/// Waits until `ready` holds, checking every 20 ms, for at most [`WAIT`].
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `command` to its end with its output piped, for at most `limit`. `Err` with the time
/// waited when it did not exit by then: it is then killed and reaped.
pub fn run_within(
    command: &mut std::process::Command,
    limit: Duration,
) -> Result<(std::process::Output, Duration), Duration> {
    use std::process::Stdio;
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    // Drained on threads, so a full pipe can never hold the child up.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let Some(status) = exit_within(&mut child, limit) else {
        let waited = started.elapsed();
        reap(&mut child);
        return Err(waited);
    };
    let took = started.elapsed();
    let output = std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    Ok((output, took))
}
