//! `watchdog history`, run as the binary: over a database the store wrote (snapshots of the
//! table and the JSON), beside a running daemon, and on bad input.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use watchdog::event::Event;
use watchdog::model::{Alert, CollectorFacts, EventKind, Facts, Kind, Lang, Reason};
use watchdog::store::{Decided, DeliveryStatus, Mark, Store, TickCommit};

fn watchdog(args: &[&str], state: &Path) -> Output {
    common::run_within(
        Command::new(env!("CARGO_BIN_EXE_watchdog"))
            .args(args)
            .env_clear()
            .env("WATCHDOG_STATE_DIR", state),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|waited| panic!("history still ran after {waited:?}"))
    .0
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn decided(seq: i64, event: EventKind, collector: &str, error: &str, at: i64) -> Decided {
    let alert = Alert {
        event,
        kind: Kind::CollectorFailing,
        entity: format!("collector:{collector}"),
        since: 1_800_000_000,
        at,
        facts: Facts::Collector(CollectorFacts {
            collector: collector.into(),
            error: error.into(),
            failed_ticks: 3,
        }),
        reason: Reason::First,
    };
    Decided {
        seq,
        at,
        event: Arc::new(Event::render(&alert, "history-host", Lang::En)),
    }
}

/// A database with four events in every state a delivery can be in, written by the store.
fn written(dir: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (store, _, writer) = Store::open(dir, &["slack", "webhook"], 20).unwrap();
    let events = vec![
        decided(
            1,
            EventKind::Fire,
            "proc",
            "no pid 1 under /proc",
            1_800_000_000,
        ),
        decided(
            2,
            EventKind::Fire,
            "jobs",
            "HTTP 502 from the job list",
            1_800_000_060,
        ),
        // An entity a process could name: escapes, a bidi override, a newline.
        decided(
            3,
            EventKind::Reminder,
            "evil\u{1b}[31m\u{202e}name\nx",
            "bad",
            1_800_000_120,
        ),
        decided(
            4,
            EventKind::Recovery,
            "proc",
            "no pid 1 under /proc",
            1_800_000_180,
        ),
    ];
    runtime
        .block_on(store.commit(TickCommit {
            state: None,
            events,
            channels: vec!["slack", "webhook"],
            prune_before: 0,
        }))
        .unwrap();
    let mark = |seq, channel, status, attempts, error: Option<&str>| Mark {
        seq,
        channel,
        status,
        attempts,
        last_error: error.map(str::to_string),
    };
    use DeliveryStatus::{DeadLettered, Delivered, Dropped, Queued};
    for m in [
        mark(1, "webhook", Delivered, 1, None),
        mark(1, "slack", Delivered, 3, Some("HTTP 503")),
        mark(2, "webhook", DeadLettered, 1, Some("HTTP 400")),
        mark(2, "slack", Delivered, 1, None),
        mark(3, "webhook", Dropped, 0, Some("outbox full (10000 events)")),
        mark(
            3,
            "slack",
            Queued,
            4,
            Some("could not connect: error sending request"),
        ),
    ] {
        store.mark(m);
    }
    writer.stop();
}

#[test]
fn the_table_shows_each_event_newest_first_with_where_it_went() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path());
    let output = watchdog(&["history", "--since", "36500d"], dir.path());
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn the_json_is_the_documented_contract() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path());
    let output = watchdog(&["history", "--since", "36500d", "--json"], dir.path());
    let text = stdout(&output);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let events = json["events"].as_array().unwrap();
    assert_eq!(events.len(), 4);
    // serde_json's map sorts its keys; the order in the output is pinned by the snapshot.
    let sorted = |value: &serde_json::Value| -> Vec<String> {
        value.as_object().unwrap().keys().cloned().collect()
    };
    for event in events {
        assert_eq!(
            sorted(event),
            [
                "at",
                "deliveries",
                "entity",
                "event",
                "host",
                "id",
                "kind",
                "summary"
            ]
        );
        for delivery in event["deliveries"].as_array().unwrap() {
            assert_eq!(
                sorted(delivery),
                ["attempts", "channel", "last_error", "status"]
            );
        }
    }
    insta::assert_snapshot!(text);
}

#[test]
fn since_leaves_out_what_is_older() {
    let dir = tempfile::tempdir().unwrap();
    let now = watchdog::model::now_unix();
    let (store, _, writer) = Store::open(dir.path(), &[], 20).unwrap();
    let events = vec![
        decided(1, EventKind::Fire, "old", "x", now - 3 * 86_400),
        decided(2, EventKind::Fire, "new", "x", now - 3_600),
    ];
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(store.commit(TickCommit {
            state: None,
            events,
            channels: vec![],
            prune_before: 0,
        }))
        .unwrap();
    writer.stop();
    for (since, expected) in [
        ("30m", vec![]),
        ("2h", vec!["collector:new"]),
        ("24h", vec!["collector:new"]),
        ("7d", vec!["collector:new", "collector:old"]),
    ] {
        let output = watchdog(&["history", "--since", since, "--json"], dir.path());
        let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        let entities: Vec<&str> = json["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["entity"].as_str().unwrap())
            .collect();
        assert_eq!(entities, expected, "--since {since}");
    }
    let output = watchdog(&["history", "--since", "30m"], dir.path());
    assert_eq!(stdout(&output), "no events in the last 30m\n");
}

#[test]
fn a_bad_since_and_a_missing_database_exit_2_with_a_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = watchdog(&["history"], dir.path());
    assert_eq!(missing.status.code(), Some(2));
    let error = String::from_utf8_lossy(&missing.stderr);
    assert!(error.contains("watchdog.db: no database"), "{error}");

    written(dir.path());
    for bad in ["5x", "-1h", "", "h", "99999999999999999999d"] {
        let output = watchdog(&["history", &format!("--since={bad}")], dir.path());
        assert_eq!(output.status.code(), Some(2), "--since {bad:?}");
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(
            error.starts_with("watchdog history: --since"),
            "{bad:?}: {error}"
        );
    }
}

#[test]
fn history_reads_beside_a_running_daemon_without_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let state = dir.path().join("state");
    common::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proc/orphaned_pytest"),
        &root,
    );
    let daemon = common::Daemon::run(&[
        ("WATCHDOG_PROC_ENABLED", "true".into()),
        ("WATCHDOG_PROC_ROOT", root.display().to_string()),
        ("WATCHDOG_STATE_DIR", state.display().to_string()),
        ("WATCHDOG_INTERVAL_S", "1".into()),
        ("WATCHDOG_LISTEN", "off".into()),
        ("WATCHDOG_LOG_FORMAT", "json".into()),
        ("WATCHDOG_LOG", "watchdog=debug".into()),
    ]);
    daemon.logs.ticks(2);
    let output = watchdog(&["history", "--json"], &state);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let events = json["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{json}");
    assert_eq!(events[0]["event"], "fire");
    assert_eq!(events[0]["entity"], "proc:7:9280000");
    assert_eq!(events[0]["deliveries"], serde_json::json!([]), "no channel");
    // The daemon goes on committing.
    daemon.logs.ticks(2);
    daemon.stop();
}

#[test]
fn run_refuses_a_state_dir_others_can_write_with_status_2() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let output = common::run_within(
        Command::new(env!("CARGO_BIN_EXE_watchdog"))
            .arg("run")
            .env_clear()
            .env("WATCHDOG_STATE_DIR", dir.path())
            .env("WATCHDOG_LISTEN", "off"),
        Duration::from_secs(30),
    )
    .unwrap()
    .0;
    assert_eq!(output.status.code(), Some(2));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("mode 0777"), "{error}");
    assert!(error.contains("owned by uid"), "{error}");
    assert!(
        !dir.path().join("watchdog.db").exists(),
        "nothing was written"
    );
}
