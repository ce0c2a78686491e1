use std::collections::VecDeque;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;

use super::*;
use crate::model::{Alert, CollectorFacts, Facts, Lang, Reason};

fn event(kind: EventKind, entity: &str, at: Unix) -> Arc<Event> {
    let facts = Facts::Collector(CollectorFacts {
        collector: "proc".into(),
        error: "x".into(),
        failed_ticks: 3,
    });
    let alert = Alert {
        event: kind,
        kind: Kind::CollectorFailing,
        entity: entity.into(),
        since: 0,
        at,
        facts,
        reason: Reason::First,
    };
    Arc::new(Event::render(&alert, "h", Lang::En))
}

fn decided(seq: Seq, kind: EventKind, at: Unix) -> Decided {
    Decided {
        seq,
        at,
        event: event(kind, &format!("collector:e{seq}"), at),
    }
}

fn tick(state: &str, events: Vec<Decided>, channels: &[&'static str]) -> TickCommit {
    TickCommit {
        state: Some(StateWrite {
            rest: state.to_string(),
            ..StateWrite::default()
        }),
        events,
        channels: channels.to_vec(),
        prune_before: 0,
    }
}

fn sql(dir: &Path) -> Connection {
    Connection::open(dir.join(DB_FILE)).unwrap()
}

fn statuses(dir: &Path) -> Vec<(Seq, String, String, u32)> {
    let conn = sql(dir);
    let mut stmt = conn
        .prepare("SELECT seq, channel, status, attempts FROM deliveries ORDER BY seq, channel")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn mark(seq: Seq, status: DeliveryStatus, attempts: u32) -> Mark {
    Mark {
        seq,
        channel: "webhook",
        status,
        attempts,
        last_error: None,
    }
}

#[tokio::test]
async fn a_tick_commits_its_state_and_events_together_and_a_restart_sees_both() {
    let dir = tempfile::tempdir().unwrap();
    let (store, loaded, writer) = Store::open(dir.path(), &["webhook", "slack"], 20).unwrap();
    assert_eq!((loaded.state, loaded.next_seq), (None, 1));
    let events = vec![
        decided(1, EventKind::Fire, 100),
        decided(2, EventKind::Fire, 100),
    ];
    store
        .commit(tick("{\"v\":1}", events, &["webhook", "slack"]))
        .await
        .unwrap();
    writer.stop();

    let (_store, loaded, _writer) = Store::open(dir.path(), &["webhook", "slack"], 20).unwrap();
    assert_eq!(loaded.state.unwrap().rest, "{\"v\":1}");
    assert_eq!(loaded.next_seq, 3);
    for (channel, queued) in &loaded.outboxes {
        let seqs: Vec<Seq> = queued.iter().map(|q| q.seq).collect();
        assert_eq!(seqs, [1, 2], "{channel}");
    }
    let recent: Vec<Seq> = loaded.recent.iter().map(|e| e.seq).collect();
    assert_eq!(recent, [2, 1], "newest first");
}

#[tokio::test]
async fn entity_rows_are_written_deleted_and_replaced_as_told() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, writer) = Store::open(dir.path(), &[], 20).unwrap();
    let write = |upsert: &[(&str, &str)], delete: &[&str], replace_all| TickCommit {
        state: Some(StateWrite {
            rest: "{}".into(),
            upsert: upsert
                .iter()
                .map(|(id, body)| ("proc_blocking", id.to_string(), body.to_string()))
                .collect(),
            delete: delete
                .iter()
                .map(|id| ("proc_blocking", id.to_string()))
                .collect(),
            replace_all,
        }),
        ..TickCommit::default()
    };
    let rows = |dir: &Path| -> Vec<(String, String)> {
        let conn = sql(dir);
        let mut stmt = conn
            .prepare("SELECT entity, body FROM entities ORDER BY entity")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    store
        .commit(write(&[("a", "1"), ("b", "1"), ("c", "1")], &[], false))
        .await
        .unwrap();
    store
        .commit(write(&[("b", "2")], &["c"], false))
        .await
        .unwrap();
    assert_eq!(
        rows(dir.path()),
        [("a".into(), "1".into()), ("b".into(), "2".into())]
    );
    store.commit(write(&[("d", "3")], &[], true)).await.unwrap();
    assert_eq!(rows(dir.path()), [("d".into(), "3".into())]);
    writer.stop();
}

#[tokio::test]
async fn marks_wait_for_their_batch_and_stopping_flushes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, writer) = Store::open(dir.path(), &["webhook"], 20).unwrap();
    store
        .commit(tick(
            "{}",
            vec![decided(1, EventKind::Fire, 1)],
            &["webhook"],
        ))
        .await
        .unwrap();
    store.mark(Mark {
        last_error: Some("HTTP 503".into()),
        ..mark(1, DeliveryStatus::Queued, 1)
    });
    store.mark(mark(1, DeliveryStatus::Delivered, 2));
    writer.stop();
    assert_eq!(
        statuses(dir.path()),
        [(1, "webhook".into(), "delivered".into(), 2)]
    );
}

#[tokio::test]
async fn a_full_batch_is_committed_without_waiting_for_the_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, _writer) = Store::open(dir.path(), &["webhook"], 20).unwrap();
    let events: Vec<Decided> = (1..=MARK_BATCH as Seq)
        .map(|seq| decided(seq, EventKind::Fire, 1))
        .collect();
    store
        .commit(tick("{}", events, &["webhook"]))
        .await
        .unwrap();
    for seq in 1..=MARK_BATCH as Seq {
        store.mark(mark(seq, DeliveryStatus::Delivered, 1));
    }
    // A commit is answered after every message sent before it: the batch is written by then.
    store.commit(TickCommit::default()).await.unwrap();
    let delivered = statuses(dir.path())
        .iter()
        .filter(|(_, _, s, _)| s == "delivered")
        .count();
    assert_eq!(delivered, MARK_BATCH);
}

#[tokio::test]
async fn a_mark_for_an_event_not_stored_yet_lands_with_the_commit_that_stores_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, writer) = Store::open(dir.path(), &["webhook"], 20).unwrap();
    // Delivered from memory while its commit had failed...
    store.mark(mark(7, DeliveryStatus::Delivered, 1));
    store
        .commit(tick("{}", vec![], &["webhook"]))
        .await
        .unwrap();
    assert!(statuses(dir.path()).is_empty());
    // ...and stored by the next commit that works.
    store
        .commit(tick(
            "{}",
            vec![decided(7, EventKind::Fire, 1)],
            &["webhook"],
        ))
        .await
        .unwrap();
    writer.stop();
    assert_eq!(
        statuses(dir.path()),
        [(7, "webhook".into(), "delivered".into(), 1)]
    );
}

#[tokio::test]
async fn a_commit_retried_with_the_same_events_stores_them_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, writer) = Store::open(dir.path(), &["webhook"], 20).unwrap();
    let events = vec![decided(1, EventKind::Fire, 1)];
    store
        .commit(tick("{}", events.clone(), &["webhook"]))
        .await
        .unwrap();
    store.mark(mark(1, DeliveryStatus::Delivered, 1));
    store
        .commit(tick("{}", events, &["webhook"]))
        .await
        .unwrap();
    writer.stop();
    assert_eq!(
        statuses(dir.path()),
        [(1, "webhook".into(), "delivered".into(), 1)]
    );
}

#[tokio::test]
async fn finished_events_older_than_the_history_are_pruned_and_queued_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, writer) = Store::open(dir.path(), &["webhook"], 20).unwrap();
    let events = vec![
        decided(1, EventKind::Fire, 100),
        decided(2, EventKind::Fire, 100),
        decided(3, EventKind::Fire, 500),
    ];
    store
        .commit(tick("{}", events, &["webhook"]))
        .await
        .unwrap();
    store.mark(mark(1, DeliveryStatus::Delivered, 1));
    store
        .commit(TickCommit {
            prune_before: 499,
            ..tick("{}", vec![], &["webhook"])
        })
        .await
        .unwrap();
    writer.stop();
    let left: Vec<Seq> = statuses(dir.path()).iter().map(|s| s.0).collect();
    assert_eq!(
        left,
        [2, 3],
        "1 was delivered and old; 2 is old but queued; 3 is new"
    );
}

#[tokio::test]
async fn queued_events_of_a_channel_no_longer_configured_are_marked_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, writer) = Store::open(dir.path(), &["webhook", "slack"], 20).unwrap();
    store
        .commit(tick(
            "{}",
            vec![decided(1, EventKind::Fire, 1)],
            &["webhook", "slack"],
        ))
        .await
        .unwrap();
    writer.stop();
    let (_, loaded, writer) = Store::open(dir.path(), &["webhook"], 20).unwrap();
    writer.stop();
    assert_eq!(loaded.outboxes.len(), 1);
    assert_eq!(
        statuses(dir.path()),
        [
            (1, "slack".into(), "dropped".into(), 0),
            (1, "webhook".into(), "queued".into(), 0)
        ]
    );
}

#[test]
fn the_database_and_its_wal_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, _, _writer) = Store::open(dir.path(), &[], 20).unwrap();
    for name in [DB_FILE, "watchdog.db-wal", "watchdog.db-shm"] {
        let mode = fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_corrupt_database_is_moved_aside_with_its_wal_and_shm_and_a_fresh_one_made() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join(DB_FILE),
        b"this is not a database, just bytes ".repeat(200),
    )
    .unwrap();
    fs::write(dir.path().join("watchdog.db-wal"), b"wal").unwrap();
    fs::write(dir.path().join("watchdog.db-shm"), b"shm").unwrap();
    let (_store, loaded, writer) = Store::open(dir.path(), &[], 20).unwrap();
    writer.stop();
    assert_eq!(loaded.state, None);
    let names = names(dir.path());
    let aside: Vec<&String> = names.iter().filter(|n| n.contains(".corrupt-")).collect();
    assert_eq!(aside.len(), 3, "{names:?}");
    let db = aside
        .iter()
        .find(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
        .unwrap();
    assert!(names.contains(&format!("{db}-wal")), "{names:?}");
    assert!(names.contains(&format!("{db}-shm")), "{names:?}");
    assert_eq!(
        fs::read(dir.path().join(format!("{db}-wal"))).unwrap(),
        b"wal"
    );
}

#[test]
fn another_programs_sqlite_file_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    Connection::open(dir.path().join(DB_FILE))
        .unwrap()
        .execute_batch("CREATE TABLE theirs (x); INSERT INTO theirs VALUES (1);")
        .unwrap();
    let (_store, _, writer) = Store::open(dir.path(), &[], 20).unwrap();
    writer.stop();
    let names = names(dir.path());
    assert!(
        names.iter().any(|n| n.starts_with("watchdog.db.corrupt-")),
        "{names:?}"
    );
}

#[test]
fn a_database_of_a_newer_watchdog_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_store, _, writer) = Store::open(dir.path(), &[], 20).unwrap();
        writer.stop();
    }
    sql(dir.path())
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let error = Store::open(dir.path(), &[], 20).err().unwrap().to_string();
    assert!(error.contains("newer watchdog"), "{error}");
    assert!(!names(dir.path()).iter().any(|n| n.contains("corrupt")));
}

fn write_v01(dir: &Path) -> Vec<Arc<Event>> {
    let events = vec![
        event(EventKind::Fire, "collector:a", 1_800_000_000),
        event(EventKind::Reminder, "collector:a", 1_800_000_600),
    ];
    let body: VecDeque<&Event> = events.iter().map(AsRef::as_ref).collect();
    fs::write(
        dir.join("outbox-webhook.json"),
        serde_json::to_vec(&body).unwrap(),
    )
    .unwrap();
    fs::write(
        dir.join("outbox-slack.json"),
        serde_json::to_vec(&[&*events[1]]).unwrap(),
    )
    .unwrap();
    fs::write(
        dir.join("state.json"),
        br#"{"version":1,"entities":[],"fail_streaks":{}}"#,
    )
    .unwrap();
    events
}

#[test]
fn the_0_1_files_are_imported_once_in_order_and_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let events = write_v01(dir.path());
    let (_store, loaded, writer) = Store::open(dir.path(), &["webhook", "slack"], 20).unwrap();
    writer.stop();
    assert!(loaded.state.unwrap().rest.contains("fail_streaks"));
    let ids = |channel: &str| -> Vec<String> {
        loaded
            .outboxes
            .iter()
            .find(|(c, _)| *c == channel)
            .unwrap()
            .1
            .iter()
            .map(|q| q.event.id.clone())
            .collect()
    };
    assert_eq!(ids("webhook"), [events[0].id.clone(), events[1].id.clone()]);
    assert_eq!(
        ids("slack"),
        [events[1].id.clone()],
        "one event row, two deliveries"
    );
    assert_eq!(
        names(dir.path())
            .into_iter()
            .filter(|n| n.ends_with(".imported"))
            .collect::<Vec<_>>(),
        [
            "outbox-slack.json.imported",
            "outbox-webhook.json.imported",
            "state.json.imported"
        ]
    );
    assert_eq!(statuses(dir.path()).len(), 3);
}

#[test]
fn an_import_interrupted_after_its_commit_only_renames() {
    let dir = tempfile::tempdir().unwrap();
    write_v01(dir.path());
    let (_store, _, writer) = Store::open(dir.path(), &["webhook", "slack"], 20).unwrap();
    writer.stop();
    // As if killed between the commit and the renames: the files are back.
    write_v01(dir.path());
    let (_store, _, writer) = Store::open(dir.path(), &["webhook", "slack"], 20).unwrap();
    writer.stop();
    assert_eq!(statuses(dir.path()).len(), 3, "nothing imported twice");
    assert!(!dir.path().join("outbox-webhook.json").exists());
}

#[test]
fn a_corrupt_0_1_file_is_moved_aside_and_the_rest_imported() {
    let dir = tempfile::tempdir().unwrap();
    write_v01(dir.path());
    fs::write(dir.path().join("outbox-slack.json"), "[{").unwrap();
    let (_store, loaded, writer) = Store::open(dir.path(), &["webhook", "slack"], 20).unwrap();
    writer.stop();
    let webhook = &loaded
        .outboxes
        .iter()
        .find(|(c, _)| *c == "webhook")
        .unwrap()
        .1;
    assert_eq!(webhook.len(), 2);
    assert!(names(dir.path())
        .iter()
        .any(|n| n.starts_with("outbox-slack.json.corrupt-")));
}

#[test]
fn a_full_outbox_drops_the_oldest_reminder_first() {
    use EventKind::{Fire, Recovery, Reminder};
    let mut queue = VecDeque::new();
    for (kind, at) in [(Fire, 1), (Reminder, 2), (Reminder, 3)] {
        assert!(push_bounded(&mut queue, (kind, at), 3, |e| e.0).is_empty());
    }
    let dropped = push_bounded(&mut queue, (Recovery, 4), 3, |e| e.0);
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].0, (Reminder, 2));
    assert_eq!(queue, [(Fire, 1), (Reminder, 3), (Recovery, 4)]);
}

#[test]
fn an_outbox_of_fires_and_recoveries_drops_its_oldest() {
    use EventKind::{Fire, Recovery};
    let mut queue = VecDeque::new();
    for (kind, at) in [(Fire, 1), (Recovery, 2)] {
        push_bounded(&mut queue, (kind, at), 2, |e| e.0);
    }
    let dropped = push_bounded(&mut queue, (Fire, 3), 2, |e| e.0);
    assert_eq!(dropped[0].0, (Fire, 1));
    assert_eq!(queue, [(Recovery, 2), (Fire, 3)]);
}
