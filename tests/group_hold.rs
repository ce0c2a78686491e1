//! No false alert from a half-read process group, end to end: `watchdog run` (1 s ticks) over
//! a copy of `fixtures/proc/process_group` that the test changes between ticks, posting to a
//! local webhook receiver. A tick that reads only part of a group says nothing about it: no
//! fire under another member's name, and so no recovery when the whole group is back.

mod common;

use std::path::{Path, PathBuf};

use common::{copy_tree, what, Daemon, Webhooks, SECRET};

const HOST: &str = "group-host";

struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proc/process_group"),
            &dir.path().join("proc"),
        );
        Self { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("proc")
    }

    fn start(&self, webhooks: &Webhooks) -> Daemon {
        Daemon::run(&[
            ("WATCHDOG_PROC_ENABLED", "true".into()),
            ("WATCHDOG_PROC_ROOT", self.root().display().to_string()),
            ("WATCHDOG_PROC_GROUP_BY", "pgid".into()),
            (
                "WATCHDOG_STATE_DIR",
                self.dir.path().join("state").display().to_string(),
            ),
            ("WATCHDOG_WEBHOOK_URL", webhooks.url.clone()),
            ("WATCHDOG_WEBHOOK_SECRET", SECRET.into()),
            ("WATCHDOG_HOST", HOST.into()),
            ("WATCHDOG_INTERVAL_S", "1".into()),
            ("WATCHDOG_RETRY_MAX_S", "1".into()),
            ("WATCHDOG_LOG", "watchdog=debug".into()),
            ("WATCHDOG_LOG_FORMAT", "json".into()),
            ("WATCHDOG_LISTEN", "off".into()),
        ])
    }

    /// Cuts `<pid>/stat` short, as a read racing the kernel can see it; returns the original.
    fn truncate_stat(&self, pid: u32) -> String {
        let path = self.root().join(format!("{pid}/stat"));
        let whole = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &whole[..whole.find(')').unwrap() + 3]).unwrap();
        whole
    }

    fn restore_stat(&self, pid: u32, whole: &str) {
        std::fs::write(self.root().join(format!("{pid}/stat")), whole).unwrap();
    }

    /// The entities in the saved state.
    fn entities(&self) -> Vec<String> {
        let state = common::db::state(&self.dir.path().join("state"));
        let mut ids: Vec<String> = state["entities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["entity"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }
}

/// Runs the half-read ticks: `pid`'s stat is cut short while the daemon watches, for at least
/// three ticks, then restored for three more; nothing at all may be sent meanwhile.
fn half_read(host: &Host, daemon: &Daemon, webhooks: &Webhooks, pid: u32, held: &str) {
    let whole = host.truncate_stat(pid);
    // The engine saw the half-read group: it holds the group's entity.
    daemon
        .logs
        .line_with(&[r#""message":"decided""#, held, "HeldUnreadable"]);
    daemon.logs.ticks(2);
    host.restore_stat(pid, &whole);
    daemon.logs.ticks(3);
    let sent: Vec<_> = webhooks.pending().iter().map(|r| r.what()).collect();
    assert!(sent.is_empty(), "nothing about a half-read group: {sent:?}");
}

#[test]
fn a_group_whose_leader_is_half_read_is_held_whole_and_keeps_its_name() {
    let host = Host::new();
    let webhooks = Webhooks::start(HOST, |_| 200);
    let daemon = host.start(&webhooks);
    let mut fired = vec![webhooks.next().what(), webhooks.next().what()];
    fired.sort();
    assert_eq!(
        fired,
        [
            what("fire", "proc_blocking", "proc:100:9200000"),
            what("fire", "proc_blocking", "proc:201:9610000"),
        ]
    );
    daemon.logs.ticks(1);

    half_read(&host, &daemon, &webhooks, 100, "proc:100:9200000");
    assert_eq!(host.entities(), ["proc:100:9200000", "proc:201:9610000"]);
}

#[test]
fn a_leaderless_group_whose_oldest_member_is_half_read_is_held_whole_and_keeps_its_name() {
    let host = Host::new();
    // The leader (pgid 100) is gone: the group is named after its oldest member, pid 101.
    std::fs::remove_dir_all(host.root().join("100")).unwrap();
    let webhooks = Webhooks::start(HOST, |_| 200);
    let daemon = host.start(&webhooks);
    let mut fired = vec![webhooks.next().what(), webhooks.next().what()];
    fired.sort();
    assert_eq!(
        fired,
        [
            what("fire", "proc_blocking", "proc:101:9201000"),
            what("fire", "proc_blocking", "proc:201:9610000"),
        ]
    );
    daemon.logs.ticks(1);

    half_read(&host, &daemon, &webhooks, 101, "proc:101:9201000");
    assert_eq!(host.entities(), ["proc:101:9201000", "proc:201:9610000"]);
}
