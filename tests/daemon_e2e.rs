//! `watchdog run` end to end: the binary over a fixture tree copied to a temp dir, a local HTTP
//! receiver on 127.0.0.1 whose every body and signature is verified in the test thread, and
//! the state dir on disk. Tests wait for events and for ticks that finish after they ask (the
//! daemon logs each one), never for a fixed time, and every wait has a deadline.

mod common;

use common::{copy_tree, run_within, what, Received, Webhooks, SECRET};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const HOST: &str = "e2e-host";

/// A webhook receiver for this file's host; `answer(n)` is the status of the n-th request.
fn receiver(answer: impl Fn(usize) -> u16 + Send + 'static) -> Webhooks {
    Webhooks::start(HOST, answer)
}

/// `watchdog run` over `root`, posting to `url`, with 1 s ticks and JSON debug logs.
fn run(root: &Path, state: &Path, url: &str, extra: &[(&str, &str)]) -> common::Daemon {
    let mut vars = vec![
        ("WATCHDOG_PROC_ENABLED", "true".to_string()),
        ("WATCHDOG_PROC_ROOT", root.display().to_string()),
        ("WATCHDOG_STATE_DIR", state.display().to_string()),
        ("WATCHDOG_WEBHOOK_URL", url.to_string()),
        ("WATCHDOG_WEBHOOK_SECRET", SECRET.to_string()),
        ("WATCHDOG_HOST", HOST.to_string()),
        ("WATCHDOG_INTERVAL_S", "1".to_string()),
        ("WATCHDOG_RETRY_MAX_S", "1".to_string()),
        ("WATCHDOG_LOG", "watchdog=debug".to_string()),
        ("WATCHDOG_LOG_FORMAT", "json".to_string()),
        ("WATCHDOG_LISTEN", "off".to_string()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    common::Daemon::run(&vars)
}

/// A copy of a fixture tree in a temp dir, and a state dir beside it.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new(scenario: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/proc")
            .join(scenario);
        copy_tree(&from, &dir.path().join("proc"));
        Self { dir }
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("proc")
    }
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
}

const PYTEST: &str = "proc:7:9280000";

#[test]
fn fires_once_stays_quiet_inside_the_cooldown_and_recovers_when_the_process_is_gone() {
    let host = Host::new("orphaned_pytest");
    let receiver = receiver(|_| 200);
    let watchdog = run(&host.root(), &host.state(), &receiver.url, &[]);

    let fire = receiver.next();
    assert_eq!(fire.what(), what("fire", "proc_blocking", PYTEST));
    assert_eq!(fire.event["facts"]["pid"], 7);
    assert_eq!(fire.event["facts"]["orphaned"], true);
    assert!(fire.event["summary"]
        .as_str()
        .unwrap()
        .contains("pytest (pid 7)"));
    assert!(fire.event["text"]
        .as_str()
        .unwrap()
        .contains("kill -TERM -- -7"));

    watchdog.logs.ticks(3);
    assert!(
        receiver.pending().is_empty(),
        "nothing more inside the cooldown"
    );

    std::fs::remove_dir_all(host.root().join("7")).unwrap();
    let recovery = receiver.next();
    assert_eq!(recovery.what(), what("recovery", "proc_blocking", PYTEST));
    assert_eq!(recovery.event["since"], fire.event["since"]);
    assert!(recovery.event["duration_s"].as_u64().unwrap() >= 1);
    watchdog.logs.ticks(2);
    assert!(receiver.pending().is_empty(), "one recovery, once");
}

#[test]
fn a_missing_proc_root_holds_alerts_and_says_watchdog_cannot_see() {
    let host = Host::new("orphaned_pytest");
    let receiver = receiver(|_| 200);
    let watchdog = run(
        &host.root(),
        &host.state(),
        &receiver.url,
        &[("WATCHDOG_COLLECTOR_FAIL_TICKS", "2")],
    );
    assert_eq!(
        receiver.next().what(),
        what("fire", "proc_blocking", PYTEST)
    );

    let aside = host.dir.path().join("proc-aside");
    std::fs::rename(host.root(), &aside).unwrap();
    let blind = receiver.next();
    assert_eq!(
        blind.what(),
        what("fire", "collector_failing", "collector:proc")
    );
    assert!(blind.event["facts"]["error"]
        .as_str()
        .unwrap()
        .contains("not found"));
    watchdog.logs.ticks(3);
    assert!(
        receiver.pending().is_empty(),
        "no recovery of the held process"
    );

    std::fs::rename(&aside, host.root()).unwrap();
    let back = receiver.next();
    assert_eq!(
        back.what(),
        what("recovery", "collector_failing", "collector:proc")
    );
    watchdog.logs.ticks(2);
    assert!(
        receiver.pending().is_empty(),
        "the process is still stuck and inside its cooldown"
    );
}

#[test]
fn state_survives_kill_9_and_what_vanished_while_down_recovers() {
    let host = Host::new("orphaned_pytest");
    let receiver = receiver(|_| 200);
    let watchdog = run(&host.root(), &host.state(), &receiver.url, &[]);
    let fire = receiver.next();
    assert_eq!(fire.what(), what("fire", "proc_blocking", PYTEST));
    watchdog
        .logs
        .line_with(&[r#""message":"delivered""#, fire.id()]);
    watchdog.kill9();

    let watchdog = run(&host.root(), &host.state(), &receiver.url, &[]);
    watchdog.logs.ticks(3);
    // A resend of the same event (its delivery mark may not have been committed before the
    // kill) is allowed: receivers deduplicate by id. A second fire, with a new id, is not.
    let after: Vec<_> = receiver
        .pending()
        .iter()
        .map(|r| (r.what(), r.id().to_string()))
        .filter(|(_, id)| id != fire.id())
        .collect();
    assert!(
        after.is_empty(),
        "no second fire after a restart: {after:?}"
    );
    watchdog.kill9();

    std::fs::remove_dir_all(host.root().join("7")).unwrap();
    let _watchdog = run(&host.root(), &host.state(), &receiver.url, &[]);
    assert_eq!(
        receiver.next().what(),
        what("recovery", "proc_blocking", PYTEST)
    );
}

#[test]
fn a_receiver_that_answers_503_for_a_while_gets_every_event_in_order() {
    let host = Host::new("process_group");
    let receiver = receiver(|n| if n < 4 { 503 } else { 200 });
    let watchdog = run(&host.root(), &host.state(), &receiver.url, &[]);
    // Two fires, then both groups go away: two recoveries.
    watchdog.logs.ticks(1);
    for pid in [100, 101, 102, 103, 104, 201] {
        std::fs::remove_dir_all(host.root().join(pid.to_string())).unwrap();
    }
    let mut delivered = Vec::new();
    let mut attempts: Vec<String> = Vec::new();
    while delivered.len() < 4 {
        let got = receiver.next();
        attempts.push(got.id().to_string());
        if got.status == 200 {
            delivered.push(got.what());
        }
    }
    let last = attempts.last().unwrap();
    watchdog.logs.line_with(&[r#""message":"delivered""#, last]);
    assert_eq!(
        delivered,
        [
            what("fire", "proc_blocking", "proc:100:9200000"),
            what("fire", "proc_blocking", "proc:201:9610000"),
            what("recovery", "proc_blocking", "proc:100:9200000"),
            what("recovery", "proc_blocking", "proc:201:9610000"),
        ]
    );
    // Four refusals of the first event, then each once: duplicates carry the same id.
    assert_eq!(attempts.len(), 8);
    assert!(
        attempts[..5].iter().all(|id| *id == attempts[0]),
        "{attempts:?}"
    );
    watchdog.stop();
    assert_eq!(
        common::db::queued(&host.state(), "webhook"),
        Vec::<String>::new(),
        "every delivered event left the outbox"
    );
    let statuses = common::db::deliveries(&host.state(), "webhook");
    assert_eq!(statuses.len(), 4, "{statuses:?}");
    assert!(
        statuses.iter().all(|(_, s)| s == "delivered"),
        "{statuses:?}"
    );
}

#[test]
fn a_400_answer_lands_in_the_dead_letter_file() {
    let host = Host::new("orphaned_pytest");
    let receiver = receiver(|_| 400);
    let watchdog = run(&host.root(), &host.state(), &receiver.url, &[]);
    let refused = receiver.next();
    assert_eq!(refused.status, 400);
    let line = watchdog.logs.line_with(&["moved to the dead-letter file"]);
    assert!(line.contains("HTTP 400"), "{line}");
    let dead = std::fs::read_to_string(host.state().join("dead-letter-webhook.jsonl")).unwrap();
    let entry: serde_json::Value = serde_json::from_str(dead.lines().next().unwrap()).unwrap();
    assert_eq!(entry["event"]["id"], refused.id());
    assert_eq!(entry["reason"], "HTTP 400");
    watchdog.logs.ticks(2);
    assert!(
        receiver.pending().is_empty(),
        "a refused event is not retried"
    );
}

#[test]
fn sigterm_exits_within_5_seconds_while_a_collector_hangs() {
    let host = Host::new("orphaned_pytest");
    // Reading a FIFO with no writer blocks: the collector hangs in its first read.
    std::fs::remove_file(host.root().join("uptime")).unwrap();
    let status = Command::new("mkfifo")
        .arg(host.root().join("uptime"))
        .status()
        .unwrap();
    assert!(status.success());
    let receiver = receiver(|_| 200);
    let mut watchdog = run(
        &host.root(),
        &host.state(),
        &receiver.url,
        &[("WATCHDOG_COLLECT_TIMEOUT_S", "60")],
    );
    watchdog.logs.line_with(&["watchdog running"]);
    watchdog.signal("-TERM");
    assert_eq!(watchdog.exit_within(Duration::from_secs(5)), Some(0));
    assert!(receiver.pending().is_empty());
}

#[test]
fn a_state_dir_that_cannot_be_written_stops_run_with_status_2() {
    let host = Host::new("orphaned_pytest");
    let file = host.dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let (output, _) = run_within(
        Command::new(env!("CARGO_BIN_EXE_watchdog"))
            .arg("run")
            .env_clear()
            .env("WATCHDOG_LISTEN", "off")
            .env("WATCHDOG_STATE_DIR", file.join("state")),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|waited| panic!("run still ran after {waited:?}"));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&file.join("state").display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("owned by uid"), "{stderr}");
}

#[test]
fn a_corrupt_state_file_is_moved_aside_and_watchdog_starts_fresh() {
    let host = Host::new("orphaned_pytest");
    std::fs::create_dir_all(host.state()).unwrap();
    std::fs::write(host.state().join("state.json"), "{not json").unwrap();
    let receiver = receiver(|_| 200);
    let _watchdog = run(&host.root(), &host.state(), &receiver.url, &[]);
    assert_eq!(
        receiver.next().what(),
        what("fire", "proc_blocking", PYTEST)
    );
    let aside: Vec<_> = std::fs::read_dir(host.state())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("state.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(
        std::fs::read_to_string(host.state().join(&aside[0])).unwrap(),
        "{not json"
    );
}

#[test]
fn undelivered_events_wait_in_the_outbox_across_a_restart() {
    let host = Host::new("orphaned_pytest");
    let down = receiver(|_| 503);
    let watchdog = run(&host.root(), &host.state(), &down.url, &[]);
    let refused = down.next();
    assert_eq!(refused.status, 503);
    watchdog.kill9();
    let queued = common::db::queued(&host.state(), "webhook");
    assert_eq!(queued, [refused.id()]);

    let up = receiver(|_| 200);
    let _watchdog = run(&host.root(), &host.state(), &up.url, &[]);
    let delivered = up.next();
    assert_eq!(
        delivered.id(),
        refused.id(),
        "the same event, with the same id"
    );
    assert_eq!(delivered.what(), what("fire", "proc_blocking", PYTEST));
}

/// Points `link` at a fixture tree, atomically: a tick sees the old tree or the new one.
fn point(link: &Path, scenario: &str) {
    let target = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/proc")
        .join(scenario);
    let next = link.with_extension("next");
    let _ = std::fs::remove_file(&next);
    std::os::unix::fs::symlink(target, &next).unwrap();
    std::fs::rename(&next, link).unwrap();
}

/// The next event that `wanted` accepts, skipping others.
fn next_where(receiver: &Webhooks, wanted: impl Fn(&Received) -> bool) -> Received {
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the wanted event arrives"
        );
        let got = receiver.next();
        if wanted(&got) {
            return got;
        }
    }
}

#[test]
fn host_pressure_fires_names_its_stuck_culprit_and_recovers_once_calm() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proc");
    point(&root, "psi_cpu_starved");
    let receiver = receiver(|_| 200);
    let watchdog = run(
        &root,
        &dir.path().join("state"),
        &receiver.url,
        &[
            ("WATCHDOG_PRESSURE_ENABLED", "true"),
            ("WATCHDOG_PRESSURE_FOR_S", "0"),
            // A reminder every tick, so each tick's top consumers reach the receiver.
            ("WATCHDOG_PRESSURE_COOLDOWN_S", "0"),
        ],
    );
    let is_cpu = |r: &Received| r.event["entity"] == "pressure:cpu";

    let fire = next_where(&receiver, is_cpu);
    assert_eq!(fire.what(), what("fire", "host_pressure", "pressure:cpu"));
    let facts = &fire.event["facts"];
    assert_eq!(facts["some_avg60"], 83.4);
    assert!(facts["above_since"].is_i64(), "run remembers it: {facts}");
    assert_eq!(
        facts["top_status"], "sampling",
        "run compares one tick with the next: the first has nothing to compare with"
    );

    // The same host ten seconds later: pytest 4121 (stuck 2 days, orphaned) used the most.
    point(&root, "psi_cpu_starved_next_sample");
    let named = next_where(&receiver, |r| {
        is_cpu(r)
            && r.event["facts"]["top"]
                .as_array()
                .is_some_and(|t| !t.is_empty())
    });
    assert_eq!(named.what().0, "reminder");
    let top = &named.event["facts"]["top"][0];
    assert_eq!(top["pid"], 4121, "{}", named.event["facts"]);
    assert_eq!(top["entity"], "proc:4121:1640000");
    assert_eq!(top["container"]["runtime"], "docker");
    assert!(!top["cmdline"].as_str().unwrap().contains("SECRET"));
    let text = named.event["text"].as_str().unwrap();
    assert!(text.contains("kill -TERM -- -4121"), "{text}");
    assert!(
        named.event["summary"]
            .as_str()
            .unwrap()
            .contains("pytest pid 4121 (orphaned, stuck 2d03h)"),
        "{}",
        named.event["summary"]
    );

    point(&root, "psi_calm");
    let recovery = next_where(&receiver, |r| is_cpu(r) && r.event["event"] == "recovery");
    assert_eq!(recovery.event["facts"]["some_avg60"], 0.85);
    watchdog.logs.ticks(1);
    let state = common::db::state(&dir.path().join("state"));
    assert_eq!(
        state["pressure"]["resources"]["cpu"]["active"], false,
        "the memory is saved with the state: {}",
        state["pressure"]
    );
}
