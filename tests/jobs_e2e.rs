//! The jobs collector through the binary: `once --json` over a fixture tree with a job list
//! from a local server, and `watchdog run` on the live /proc with a real process group whose
//! job ends while its processes live on.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{exit_within, reap, run_within, Server};

fn fixture(scenario: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/proc")
        .join(scenario)
        .display()
        .to_string()
}

fn once(args: &[&str], vars: &[(&str, String)]) -> (Option<i32>, serde_json::Value) {
    let (output, _) = run_within(
        Command::new(env!("CARGO_BIN_EXE_watchdog"))
            .args(args)
            .env_clear()
            .env("WATCHDOG_HOST", "jobs-host")
            .envs(vars.iter().map(|(k, v)| (k, v))),
        Duration::from_secs(60),
    )
    .unwrap_or_else(|waited| panic!("watchdog {args:?} still ran after {waited:?}"));
    let json = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    (output.status.code(), json)
}

fn jobs_vars(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("WATCHDOG_JOBS_ENABLED", "true".into()),
        ("WATCHDOG_JOBS_URL", url.into()),
        ("WATCHDOG_PROC_ROOT", fixture("orphaned_pytest")),
    ]
}

#[test]
fn once_shows_the_jobs_collector_and_a_job_whose_agent_is_gone() {
    // j-2 started 3 h ago; pid 7 of the fixture is a pytest 2 h old: the pid was reused.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let list = format!(
        r#"[{{"id": "j-1", "pid": 99999, "state": "running", "started_at": 1795000000, "name": "fix"}},
            {{"id": "j-2", "pid": 7, "state": "running", "started_at": {}}},
            {{"id": "j-3", "state": "running"}}]"#,
        now - 3 * 3600
    );
    let server = Server::start(move |_, _| (200, vec![], list.clone()));
    let (code, report) = once(
        &["once", "--json", "--check"],
        &jobs_vars(&format!("{}/jobs", server.base)),
    );
    assert_eq!(code, Some(1), "an active signal: {report}");
    let jobs = &report["collectors"][1];
    assert_eq!(jobs["name"], "jobs");
    assert_eq!(
        (jobs["enabled"].as_bool(), jobs["ok"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        (jobs["observed"].as_u64(), jobs["unreadable"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(report["collectors"][0]["enabled"], false, "proc stays off");
    let signals = report["signals"].as_array().unwrap();
    let hung: Vec<&serde_json::Value> = signals
        .iter()
        .filter(|s| s["kind"] == "agent_hung")
        .collect();
    assert_eq!(hung.len(), 2);
    assert_eq!(hung[0]["entity"], "job:j-1");
    assert_eq!(hung[0]["active"], true);
    assert_eq!(
        hung[0]["facts"]["reasons"],
        serde_json::json!(["pid_gone", "running_too_long"])
    );
    assert_eq!(hung[1]["entity"], "job:j-2");
    assert_eq!(
        hung[1]["facts"]["reasons"],
        serde_json::json!(["pid_reused", "running_too_long"])
    );
    assert_eq!(hung[1]["facts"]["pid_comm"], "pytest");
    let would = report["would_send"].as_array().unwrap();
    assert!(
        would[0]["summary"]
            .as_str()
            .unwrap()
            .contains("job j-1 (fix) looks hung"),
        "{would:?}"
    );
}

#[test]
fn once_check_exits_3_when_the_job_source_fails() {
    let server = Server::answering(503);
    let (code, report) = once(
        &["once", "--json", "--check"],
        &jobs_vars(&format!("{}/jobs", server.base)),
    );
    assert_eq!(code, Some(3), "{report}");
    let error = report["collectors"][1]["error"].as_str().unwrap();
    assert!(error.contains("HTTP 503"), "{error}");
}

#[test]
fn jobs_need_exactly_one_source() {
    let (code, _) = once(&["once"], &[("WATCHDOG_JOBS_ENABLED", "true".into())]);
    assert_eq!(code, Some(2));
    let both = [
        ("WATCHDOG_JOBS_ENABLED", "true".to_string()),
        ("WATCHDOG_JOBS_URL", "http://127.0.0.1:1/".to_string()),
        ("WATCHDOG_JOBS_SQLITE", "/tmp/jobs.db".to_string()),
    ];
    assert_eq!(once(&["once"], &both).0, Some(2));
}

/// Kills a process group when dropped.
struct Group(u32);

/// Kills a child when dropped, so a failing assert leaves no daemon behind.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        reap(&mut self.0);
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .status();
    }
}

#[test]
fn a_job_that_ends_while_its_processes_live_on_is_a_leftover_until_they_are_gone() {
    // A job's agent: a shell leading its own group and session, with a child.
    // setsid execs in place when it is not a group leader, so the pid is the shell's.
    let agent = Command::new("setsid")
        .args(["sh", "-c", "sleep 300 & sleep 300; :"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let leader = agent.id();
    let group = Group(leader);
    let state = Arc::new(Mutex::new("running"));
    let served = Arc::clone(&state);
    let jobs = Server::start(move |_, _| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let list = format!(
            r#"[{{"id": "j-9", "pid": {leader}, "state": "{}", "started_at": {}}}]"#,
            served.lock().unwrap(),
            now - 5
        );
        (200, vec![], list)
    });
    let hook = Server::answering(200);
    let dir = tempfile::tempdir().unwrap();
    let _daemon = Reap(
        Command::new(env!("CARGO_BIN_EXE_watchdog"))
            .arg("run")
            .env_clear()
            .env("WATCHDOG_JOBS_ENABLED", "true")
            .env("WATCHDOG_JOBS_URL", format!("{}/jobs", jobs.base))
            .env("WATCHDOG_JOBS_LEFTOVER_GRACE_S", "1")
            .env("WATCHDOG_INTERVAL_S", "1")
            .env("WATCHDOG_STATE_DIR", dir.path())
            .env("WATCHDOG_WEBHOOK_URL", format!("{}/hook", hook.base))
            .env("WATCHDOG_RETRY_MAX_S", "1")
            .env("WATCHDOG_LISTEN", "off")
            .env("WATCHDOG_HOST", "jobs-host")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Two requests: the job has been seen running, so it is remembered with its group.
    jobs.next();
    jobs.next();
    *state.lock().unwrap() = "succeeded";
    let fire = hook.next().json();
    assert_eq!(
        (fire["event"].as_str(), fire["kind"].as_str()),
        (Some("fire"), Some("job_leftover")),
        "{fire}"
    );
    assert_eq!(fire["entity"], "job:j-9");
    let members: Vec<u64> = fire["facts"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.as_u64())
        .collect();
    assert!(
        members.contains(&u64::from(leader)) && members.len() >= 2,
        "the shell and its sleep: {members:?}"
    );
    assert_eq!(fire["facts"]["pgid"], leader);
    assert!(fire["text"]
        .as_str()
        .unwrap()
        .contains(&format!("kill -TERM -- -{leader}")));

    drop(group);
    let mut agent = agent;
    assert!(
        exit_within(&mut agent, Duration::from_secs(10)).is_some(),
        "the agent's group was killed"
    );
    let recovery = hook.next().json();
    assert_eq!(
        (recovery["event"].as_str(), recovery["kind"].as_str()),
        (Some("recovery"), Some("job_leftover")),
        "{recovery}"
    );
}
