//! `watchdog guard` as the binary, against real process trees built by `tests/guard_tree.py`.
//!
//! Every process a test starts carries a marker unique to that test in its command line; each
//! test ends by scanning /proc for it, and a [`Cleanup`] kills whatever still carries it when
//! the test ends, pass or fail. Waits are on conditions with a deadline, never plain sleeps.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::process::{kill_process, Pid, Signal};

const WATCHDOG: &str = env!("CARGO_BIN_EXE_watchdog");

fn helper() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guard_tree.py")
}

/// A marker no other process on the host carries.
fn marker(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("wdg-{test}-{}-{nanos}", std::process::id())
}

/// One process from /proc.
#[derive(Debug, Clone)]
struct Seen {
    pid: i32,
    ppid: i32,
    state: char,
    comm: String,
}

fn stat(pid: i32) -> Option<Seen> {
    let raw = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let mut rest = text[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some(Seen {
        pid,
        ppid,
        state,
        comm: text[open + 1..close].to_string(),
    })
}

/// Alive: there, and not a zombie (this host's init may take its time to reap).
fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|s| !matches!(s.state, 'Z' | 'X'))
}

/// Every live process, other than this test, whose command line contains `marker`.
fn marked(marker: &str) -> Vec<Seen> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name != &me)
        .filter_map(|name| name.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.windows(marker.len()).any(|w| w == marker.as_bytes()))
        })
        .filter_map(stat)
        .filter(|s| !matches!(s.state, 'Z' | 'X'))
        .collect()
}

/// Kills everything that still carries the marker when dropped, so a failing test leaves no
/// process behind.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for seen in marked(&self.0) {
            if let Some(pid) = Pid::from_raw(seen.pid) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
    }
}

/// Polls `condition` every 10 ms until it holds or `limit` passes; whether it held.
fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(pid: u32, signal: Signal) {
    let pid = Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    kill_process(pid, signal).unwrap();
}

/// `watchdog guard ARGS...` with no `WATCHDOG_*` variable and its stderr in a file (a pipe
/// would stay open as long as any escapee that inherited it lives: reading it to the end could
/// hang a failing test instead of failing it).
fn guard(args: &[&str]) -> Guarded {
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let mut command = Command::new(WATCHDOG);
    command
        .arg("guard")
        .args(args)
        .stderr(stderr.reopen().unwrap());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("WATCHDOG_") {
            command.env_remove(name);
        }
    }
    Guarded { command, stderr }
}

/// A guard command line and the file its stderr goes to.
struct Guarded {
    command: Command,
    stderr: tempfile::NamedTempFile,
}

impl Guarded {
    fn spawn(mut self) -> Running {
        let child = self.command.spawn().unwrap();
        Running {
            child,
            stderr: self.stderr,
        }
    }
}

struct Running {
    child: Child,
    stderr: tempfile::NamedTempFile,
}

impl Running {
    fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for guard to exit and returns its status and stderr; kills it and
    /// fails the test when it does not.
    fn finish(mut self, limit: Duration) -> (ExitStatus, String) {
        let mut status = None;
        let exited = wait_until(limit, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        let mut stderr = String::new();
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.stderr
            .reopen()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(exited, "guard did not exit within {limit:?}: {stderr}");
        (status.unwrap(), stderr)
    }
}

/// A tree from guard_tree.py: its directory (role pid files, `ready`) and its marker.
struct Tree {
    dir: tempfile::TempDir,
    marker: String,
}

impl Tree {
    fn new(test: &str) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            marker: marker(test),
        }
    }

    /// `python3 guard_tree.py DIR MARKER EXTRA...`, as CMD's words.
    fn command(&self, extra: &[&str]) -> Vec<String> {
        let mut words = vec![
            "python3".to_string(),
            helper().to_str().unwrap().to_string(),
            self.dir.path().to_str().unwrap().to_string(),
            self.marker.clone(),
        ];
        words.extend(extra.iter().map(|s| s.to_string()));
        words
    }

    fn ready(&self) -> bool {
        self.dir.path().join("ready").exists()
    }

    fn wait_ready(&self) {
        assert!(
            wait_until(Duration::from_secs(10), || self.ready()),
            "the tree never got in place"
        );
    }

    fn pid(&self, role: &str) -> i32 {
        std::fs::read_to_string(self.dir.path().join(role))
            .unwrap_or_else(|e| panic!("no pid for {role}: {e}"))
            .parse()
            .unwrap()
    }
}

/// The kill lines of guard's stderr, by pid: (comm as shown, reason). Fails on any line that
/// is not in one of guard's fixed forms.
fn kill_lines(stderr: &str) -> BTreeMap<i32, (String, String)> {
    let mut lines = BTreeMap::new();
    for line in stderr.lines() {
        let rest = line
            .strip_prefix("watchdog guard: killed pid ")
            .or_else(|| line.strip_prefix("watchdog guard: could not kill pid "));
        let Some(rest) = rest else {
            assert!(
                line.starts_with("watchdog guard: timed out after ")
                    || line.starts_with("watchdog guard: parent pid "),
                "not a line of guard's: {line:?}"
            );
            continue;
        };
        let (pid, rest) = rest.split_once(" (").expect("pid (comm)");
        let (comm, reason) = rest.rsplit_once("): ").expect("(comm): reason");
        lines.insert(pid.parse().unwrap(), (comm.to_string(), reason.to_string()));
    }
    lines
}

#[test]
fn exit_statuses_pass_through_as_timeout_and_env_give_them() {
    let dir = tempfile::tempdir().unwrap();
    let plain_file = dir.path().join("not-executable");
    std::fs::write(&plain_file, "#!/bin/sh\nexit 0\n").unwrap();
    let plain_file = plain_file.to_str().unwrap();
    let missing = format!("/nonexistent/{}", marker("missing"));
    let cases: [(&str, Vec<&str>, i32); 10] = [
        ("clean exit", vec!["--", "true"], 0),
        ("own status", vec!["--", "sh", "-c", "exit 7"], 7),
        (
            "killed by SIGTERM",
            vec!["--", "sh", "-c", "kill -TERM $$"],
            143,
        ),
        (
            "killed by SIGKILL",
            vec!["--", "sh", "-c", "kill -KILL $$"],
            137,
        ),
        ("not found", vec!["--", &missing], 127),
        ("not executable", vec!["--", plain_file], 126),
        ("bad duration", vec!["--timeout", "5x", "--", "true"], 125),
        ("unknown option", vec!["--nope", "--", "true"], 125),
        ("no double dash", vec!["true"], 125),
        ("no command", vec![], 125),
    ];
    for (name, args, want) in cases {
        let (status, stderr) = guard(&args).spawn().finish(Duration::from_secs(10));
        assert_eq!(status.code(), Some(want), "{name}: {stderr}");
    }
}

#[test]
fn guard_s_help_is_its_own_and_the_main_help_lists_guard() {
    let help = Command::new(WATCHDOG)
        .args(["guard", "--help"])
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(text.contains("--kill-after"), "{text}");
    assert!(text.contains("124 on --timeout"), "{text}");
    let main = Command::new(WATCHDOG).arg("--help").output().unwrap();
    let text = String::from_utf8(main.stdout).unwrap();
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("guard ")),
        "{text}"
    );
}

#[test]
fn a_bad_watchdog_variable_does_not_touch_guard() {
    let mut guarded = guard(&["--", "sh", "-c", "exit 3"]);
    guarded.command.env("WATCHDOG_INTERVAL_S", "abc");
    let (status, stderr) = guarded.spawn().finish(Duration::from_secs(10));
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert_eq!(stderr, "");
    // The same variable does stop a command that reads the config.
    let once = Command::new(WATCHDOG)
        .arg("once")
        .env("WATCHDOG_INTERVAL_S", "abc")
        .output()
        .unwrap();
    assert_eq!(once.status.code(), Some(2));
}

#[test]
fn on_timeout_every_escapee_is_killed_and_named() {
    let tree = Tree::new("timeout");
    let _cleanup = Cleanup(tree.marker.clone());
    let roles = ["plain", "setsid", "daemon", "noterm", "pgrp"];
    let cmd = tree.command(&roles);
    let mut args = vec!["--timeout", "1s", "--kill-after", "1s", "--"];
    args.extend(cmd.iter().map(String::as_str));
    let started = Instant::now();
    let child = guard(&args).spawn();
    let (status, stderr) = child.finish(Duration::from_secs(30));
    let took = started.elapsed();
    assert!(
        tree.ready(),
        "the tree was not in place before the timeout: {stderr}"
    );
    assert_eq!(status.code(), Some(124), "{stderr}");
    assert!(took <= Duration::from_secs(4), "took {took:?}: {stderr}");
    let left = marked(&tree.marker);
    assert!(left.is_empty(), "left behind: {left:?}\n{stderr}");

    let lines = kill_lines(&stderr);
    let want = [
        ("setsid", "left the group"),
        ("daemon", "double-forked"),
        ("noterm", "ignored SIGTERM"),
        ("pgrp", "left the group"),
    ];
    for (role, reason) in want {
        let pid = tree.pid(role);
        let (comm, got) = lines
            .get(&pid)
            .unwrap_or_else(|| panic!("{role} ({pid}) not named:\n{stderr}"));
        assert_eq!(comm, &format!("gt-{role}"), "{role}");
        assert_eq!(got, reason, "{role}");
    }
    // The plain child was in CMD's group: the group's SIGTERM took it, nothing to tell.
    assert!(!lines.contains_key(&tree.pid("plain")), "{stderr}");
    assert_eq!(lines.len(), want.len(), "{stderr}");
    assert!(
        stderr.starts_with("watchdog guard: timed out after 1s, stopping the command\n"),
        "{stderr}"
    );
}

#[test]
fn a_clean_exit_leaves_nothing_behind_and_names_what_it_killed() {
    let tree = Tree::new("clean");
    let _cleanup = Cleanup(tree.marker.clone());
    let cmd = tree.command(&["--exit", "0", "setsid"]);
    let mut args = vec!["--"];
    args.extend(cmd.iter().map(String::as_str));
    let child = guard(&args).spawn();
    let (status, stderr) = child.finish(Duration::from_secs(30));
    assert!(tree.ready(), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    let left = marked(&tree.marker);
    assert!(left.is_empty(), "left behind: {left:?}\n{stderr}");
    let setsid = tree.pid("setsid");
    assert!(
        stderr.contains(&format!(
            "watchdog guard: killed pid {setsid} (gt-setsid): left the group\n"
        )),
        "{stderr}"
    );
    // Its parent stayed in CMD's group and outlived CMD.
    let lines = kill_lines(&stderr);
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines
            .values()
            .any(|(comm, reason)| comm == "python3" && reason == "outlived the command"),
        "{stderr}"
    );
}

#[test]
fn quiet_kills_the_same_and_says_nothing() {
    let tree = Tree::new("quiet");
    let _cleanup = Cleanup(tree.marker.clone());
    let cmd = tree.command(&["--exit", "3", "setsid"]);
    let mut args = vec!["--quiet", "--"];
    args.extend(cmd.iter().map(String::as_str));
    let child = guard(&args).spawn();
    let (status, stderr) = child.finish(Duration::from_secs(30));
    assert!(tree.ready(), "{stderr}");
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert_eq!(stderr, "");
    let left = marked(&tree.marker);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_comm_with_control_characters_is_shown_escaped() {
    let tree = Tree::new("comm");
    let _cleanup = Cleanup(tree.marker.clone());
    let cmd = tree.command(&["--exit", "0", "evilcomm"]);
    let mut args = vec!["--"];
    args.extend(cmd.iter().map(String::as_str));
    let child = guard(&args).spawn();
    let (status, stderr) = child.finish(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{stderr}");
    let pid = tree.pid("evilcomm");
    let want = format!("watchdog guard: killed pid {pid} (e\\x1b[31m\\x0avil): left the group\n");
    assert_eq!(stderr, want);
    assert!(!stderr.contains('\x1b'));
}

#[test]
fn a_parent_killed_by_sigkill_takes_the_tree_with_it() {
    let tree = Tree::new("parent");
    let _cleanup = Cleanup(tree.marker.clone());
    let cmd = tree.command(&["plain", "setsid", "daemon", "noterm", "pgrp"]);
    let script = format!(
        "'{WATCHDOG}' guard --kill-after 1s -- {} & wait",
        cmd.iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut parent = Command::new("sh")
        .args(["-c", &script])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tree.wait_ready();
    assert!(marked(&tree.marker).len() >= 8, "the whole tree runs");
    parent.kill().unwrap();
    parent.wait().unwrap();
    let gone = wait_until(Duration::from_secs(5), || marked(&tree.marker).is_empty());
    assert!(gone, "left behind: {:?}", marked(&tree.marker));
}

#[test]
fn guard_killed_by_sigkill_takes_cmd_at_once() {
    let marker = marker("guard-killed");
    let _cleanup = Cleanup(marker.clone());
    let mut child = guard(&[
        "--",
        "python3",
        "-c",
        "import time; time.sleep(300)",
        &marker,
    ])
    .spawn()
    .child;
    let me = i32::try_from(child.id()).unwrap();
    let mut cmd = None;
    let started = wait_until(Duration::from_secs(10), || {
        cmd = marked(&marker)
            .into_iter()
            .find(|s| s.ppid == me && s.comm == "python3");
        cmd.is_some()
    });
    assert!(started, "CMD never started");
    let cmd = cmd.unwrap().pid;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(1), || !alive(cmd)),
        "CMD {cmd} outlived guard"
    );
}

/// The parent starts guard from a thread that then exits: the kernel sends guard its
/// parent-death signal, but the parent process lives on, so guard must too.
#[test]
fn a_parent_thread_that_exits_is_not_a_parent_death() {
    // The thread lives until the test has seen CMD start (so guard had asked for its signal
    // before the thread went), then ends; the process waits for the test's second line.
    const PARENT: &str = r#"
import subprocess, sys, threading
watchdog, marker = sys.argv[1], sys.argv[2]
box = {}
def start():
    box["guard"] = subprocess.Popen(
        [watchdog, "guard", "--", "python3", "-c", "import time; time.sleep(300)", marker])
    print(box["guard"].pid, threading.get_native_id(), flush=True)
    sys.stdin.readline()
thread = threading.Thread(target=start)
thread.start()
thread.join()
sys.stdin.readline()
box["guard"].terminate()
sys.exit(box["guard"].wait())
"#;
    let marker = marker("thread");
    let _cleanup = Cleanup(marker.clone());
    let mut parent = Command::new("python3")
        .args(["-c", PARENT, WATCHDOG, &marker])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = parent.stdin.take().unwrap();
    let mut first = String::new();
    BufReader::new(parent.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let (guard_pid, thread) = first.trim().split_once(' ').unwrap();
    let guard_pid: i32 = guard_pid.parse().unwrap();
    let thread = format!("/proc/{}/task/{thread}", parent.id());
    assert!(Path::new(&thread).exists(), "the thread still runs");
    // CMD runs, so guard asked for its parent-death signal (it does before it spawns).
    let mut cmd = None;
    assert!(wait_until(Duration::from_secs(10), || {
        cmd = marked(&marker)
            .into_iter()
            .find(|s| s.ppid == guard_pid && s.comm == "python3");
        cmd.is_some()
    }));
    let cmd = cmd.unwrap().pid;
    stdin.write_all(b"thread, end\n").unwrap();
    // Gone from /proc means the thread has exited, and the signal was sent on its way out.
    assert!(wait_until(Duration::from_secs(10), || !Path::new(&thread).exists()));
    // Nothing is to happen now, so this watches for a while that nothing does.
    let torn_down = wait_until(Duration::from_millis(500), || {
        !alive(guard_pid) || !alive(cmd)
    });
    assert!(!torn_down, "guard took its parent's thread for its parent");
    stdin.write_all(b"process, stop guard\n").unwrap();
    let status = parent.wait().unwrap();
    // guard forwarded the parent's SIGTERM, and CMD died of it.
    assert_eq!(status.code(), Some(143));
    assert!(marked(&marker).is_empty());
}

#[test]
fn sigterm_to_guard_reaches_a_cmd_that_traps_it() {
    let dir = tempfile::tempdir().unwrap();
    let marker = marker("trap");
    let _cleanup = Cleanup(marker.clone());
    // CMD waits in `read` on a pipe the test holds open, not on a child: a shell that forks
    // while a trap is set leaves a window in which the child still runs the trap, which would
    // test the shell rather than guard.
    let script = r#"trap 'echo ran > "$1/trap"; exit 0' TERM; : > "$1/ready"; read line"#;
    let dir_arg = dir.path().to_str().unwrap();
    let mut guarded = guard(&["--", "sh", "-c", script, &marker, dir_arg]);
    guarded.command.stdin(Stdio::piped());
    let child = guarded.spawn();
    let ready = dir.path().join("ready");
    assert!(wait_until(Duration::from_secs(10), || ready.exists()));
    signal(child.id(), Signal::TERM);
    let (status, stderr) = child.finish(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{stderr}");
    let trap = std::fs::read_to_string(dir.path().join("trap")).unwrap();
    assert_eq!(trap, "ran\n");
    assert_eq!(stderr, "", "nothing was left to kill");
    assert!(marked(&marker).is_empty());
}

#[test]
fn a_forwarded_sigterm_that_cmd_ignores_is_followed_by_the_teardown() {
    let tree = Tree::new("escalate");
    let _cleanup = Cleanup(tree.marker.clone());
    let cmd = tree.command(&["--ignore-term", "plain"]);
    let mut args = vec!["--kill-after", "1s", "--"];
    args.extend(cmd.iter().map(String::as_str));
    let child = guard(&args).spawn();
    let id = child.id();
    tree.wait_ready();
    let sent = Instant::now();
    signal(id, Signal::TERM);
    let (status, stderr) = child.finish(Duration::from_secs(30));
    // 1 s for the forwarded SIGTERM to work, 1 s for the teardown's own, then SIGKILL.
    assert!(sent.elapsed() >= Duration::from_secs(2), "{stderr}");
    assert_eq!(status.code(), Some(137), "{stderr}");
    let top: i32 = std::fs::read_to_string(tree.dir.path().join("ready"))
        .unwrap()
        .parse()
        .unwrap();
    let lines = kill_lines(&stderr);
    assert_eq!(
        lines.get(&top),
        Some(&("python3".to_string(), "ignored SIGTERM".to_string())),
        "{stderr}"
    );
    assert!(marked(&tree.marker).is_empty());
}

/// The issue's last check: `watchdog once` sees the tree while it runs and nothing of it once
/// guard has torn it down.
#[test]
fn once_finds_nothing_left_of_a_tree_guard_tore_down() {
    let tree = Tree::new("once");
    let _cleanup = Cleanup(tree.marker.clone());
    let cmd = tree.command(&["plain", "setsid", "daemon", "noterm", "pgrp"]);
    let mut args = vec!["--kill-after", "1s", "--"];
    args.extend(cmd.iter().map(String::as_str));
    let child = guard(&args).spawn();
    let id = child.id();
    tree.wait_ready();
    let observed = || {
        let output = Command::new(WATCHDOG)
            .args(["once", "--json"])
            .env("WATCHDOG_PROC_ENABLED", "true")
            .env("WATCHDOG_PROC_PATTERNS", &tree.marker)
            .env("WATCHDOG_PROC_AGE_MIN", "0")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        json["collectors"][0]["observed"].as_u64().unwrap()
    };
    // CMD, the five roles and the two parents that stay, and guard itself (its argv holds CMD's).
    assert!(observed() >= 8);
    signal(id, Signal::TERM);
    let (status, stderr) = child.finish(Duration::from_secs(30));
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert_eq!(observed(), 0, "{stderr}");
    let noterm = tree.pid("noterm");
    assert_eq!(
        kill_lines(&stderr).get(&noterm).map(|(_, r)| r.as_str()),
        Some("ignored SIGTERM"),
        "{stderr}"
    );
}
