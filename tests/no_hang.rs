//! No hang: `watchdog once` over files that block. A FIFO with no writer blocks whoever opens
//! it for reading, as a `/proc/<pid>/cmdline` read blocks on a real host when the process is
//! stuck with its memory map locked. Every run has a deadline of its own and is killed and
//! reaped at it, so a regression fails the test instead of hanging the suite.

mod common;

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{copy_tree, run_within, Server};

/// A copy of a fixture tree in a temp dir.
fn host(scenario: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proc");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/proc")
            .join(scenario),
        &root,
    );
    (dir, root)
}

/// Replaces `path` with a FIFO that nobody writes to.
fn fifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

fn watchdog(args: &[&str], vars: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_watchdog"));
    command
        .args(args)
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k, v.as_str())));
    command
}

fn proc_vars(root: &Path, timeout_s: u64) -> Vec<(&'static str, String)> {
    vec![
        ("WATCHDOG_PROC_ENABLED", "true".into()),
        ("WATCHDOG_PROC_ROOT", root.display().to_string()),
        ("WATCHDOG_COLLECT_TIMEOUT_S", timeout_s.to_string()),
        ("WATCHDOG_HOST", "no-hang-host".into()),
    ]
}

/// One collector's entry of `once --json`.
fn collector(json: &serde_json::Value, name: &str) -> serde_json::Value {
    json["collectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no collector {name} in {json}"))
}

#[test]
fn once_check_reports_a_blocked_collector_as_timed_out_within_the_limit_and_exits_3() {
    let (_dir, root) = host("orphaned_pytest");
    fifo(&root.join("7/cmdline"));
    let vars = proc_vars(&root, 1);
    let (output, took) = run_within(
        &mut watchdog(&["once", "--check", "--json"], &vars),
        Duration::from_secs(2),
    )
    .unwrap_or_else(|waited| panic!("once still ran after {waited:?}: it hangs"));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    let proc = collector(&json, "proc");
    let error = proc["error"].as_str().unwrap_or_default();
    assert!(error.contains("timed out after 1 s"), "{proc}");
    assert_eq!(output.status.code(), Some(3), "collector failed: {json}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn once_check_exits_1_when_another_collector_found_an_active_signal_while_one_blocks() {
    let (_dir, root) = host("orphaned_pytest");
    // The proc collector blocks in a cmdline; the jobs collector reads only its job's stat.
    fifo(&root.join("7/cmdline"));
    let jobs = Server::start(|_, _| {
        let list = r#"[{"id": 1, "pid": 4242, "state": "running", "started_at": 1700000000}]"#;
        (200, vec![], list.to_string())
    });
    let mut vars = proc_vars(&root, 1);
    vars.extend([
        ("WATCHDOG_JOBS_ENABLED", "true".into()),
        ("WATCHDOG_JOBS_URL", format!("{}/jobs", jobs.base)),
    ]);
    let (output, _) = run_within(
        &mut watchdog(&["once", "--check", "--json"], &vars),
        Duration::from_secs(2),
    )
    .unwrap_or_else(|waited| panic!("once still ran after {waited:?}: it hangs"));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    assert!(collector(&json, "proc")["error"]
        .as_str()
        .is_some_and(|e| e.contains("timed out")));
    let active: Vec<_> = json["signals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["active"] == true)
        .collect();
    assert_eq!(active.len(), 1, "the job whose pid is gone: {json}");
    assert_eq!(active[0]["kind"], "agent_hung");
    assert_eq!(
        output.status.code(),
        Some(1),
        "an active signal wins: {json}"
    );
}

#[test]
fn a_jobs_database_that_is_not_a_regular_file_fails_the_jobs_collector_at_once_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo_db = dir.path().join("jobs-fifo.db");
    fifo(&fifo_db);
    let dir_db = dir.path().join("jobs-dir.db");
    std::fs::create_dir(&dir_db).unwrap();
    let device_db = dir.path().join("jobs-zero.db");
    std::os::unix::fs::symlink("/dev/zero", &device_db).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proc/orphaned_pytest");
    for (db, what) in [
        (&fifo_db, "a FIFO"),
        (&dir_db, "a directory"),
        (&device_db, "a character device"),
    ] {
        let vars = [
            ("WATCHDOG_JOBS_ENABLED", "true".to_string()),
            ("WATCHDOG_JOBS_SQLITE", db.display().to_string()),
            ("WATCHDOG_PROC_ROOT", root.display().to_string()),
            // Far above the deadline below: the check must not wait for the timeout.
            ("WATCHDOG_COLLECT_TIMEOUT_S", "60".to_string()),
        ];
        let (output, _) = run_within(
            &mut watchdog(&["once", "--check", "--json"], &vars),
            Duration::from_secs(5),
        )
        .unwrap_or_else(|waited| panic!("{what}: once still ran after {waited:?}"));
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{what}: {e}: {}", String::from_utf8_lossy(&output.stderr)));
        let error = collector(&json, "jobs")["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(error.contains(&db.display().to_string()), "{what}: {error}");
        assert!(
            error.contains(&format!("is {what}, not a regular file")),
            "{what}: {error}"
        );
        assert_eq!(output.status.code(), Some(3), "{what}: {json}");
    }
}

/// Runs `f` on a thread and waits at most `limit` for it; `None` when it is still running (the
/// thread is then left behind, blocked).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

#[test]
fn state_dir_files_that_are_fifos_or_devices_are_refused_without_blocking() {
    use std::sync::Arc;
    use watchdog::event::Event;
    use watchdog::model::{Alert, CollectorFacts, EventKind, Facts, Kind, Lang, Reason};
    use watchdog::store::{DeliveryStatus, Mark, Store};
    let limit = Duration::from_secs(3);
    let dir = tempfile::tempdir().unwrap();
    // 0.1 files to import, and a dead-letter file, that are not regular files.
    fifo(&dir.path().join("state.json"));
    fifo(&dir.path().join("outbox-webhook.json"));
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("outbox-slack.json")).unwrap();
    fifo(&dir.path().join("dead-letter-webhook.jsonl"));

    let path = dir.path().to_path_buf();
    let opened =
        within(limit, move || Store::open(&path, &["webhook", "slack"], 20)).expect("open returns");
    let (store, loaded, writer) = opened.expect("the bad 0.1 files are skipped, not fatal");
    assert!(loaded.state.is_none());
    assert!(loaded.outboxes.iter().all(|(_, queued)| queued.is_empty()));

    let alert = Alert {
        event: EventKind::Fire,
        kind: Kind::CollectorFailing,
        entity: "collector:proc".into(),
        since: 0,
        at: 0,
        facts: Facts::Collector(CollectorFacts {
            collector: "proc".into(),
            error: "x".into(),
            failed_ticks: 3,
        }),
        reason: Reason::First,
    };
    let event = Arc::new(Event::render(&alert, "h", Lang::En));
    store.dead_letter(
        event,
        Mark {
            seq: 1,
            channel: "webhook",
            status: DeliveryStatus::DeadLettered,
            attempts: 1,
            last_error: Some("HTTP 400".into()),
        },
    );
    within(limit, move || writer.stop()).expect("the writer does not block on a FIFO");
    assert!(
        std::fs::symlink_metadata(dir.path().join("dead-letter-webhook.jsonl"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[test]
fn a_database_that_is_a_fifo_refuses_the_start_without_blocking() {
    use watchdog::store::Store;
    let dir = tempfile::tempdir().unwrap();
    fifo(&dir.path().join("watchdog.db"));
    let path = dir.path().to_path_buf();
    let opened = within(Duration::from_secs(3), move || {
        Store::open(&path, &[], 20).map(|_| ())
    })
    .expect("open returns");
    let error = opened.expect_err("a FIFO is not a database").to_string();
    assert!(error.contains("a FIFO, not a regular file"), "{error}");
}
