//! A full disk under a running daemon: the state dir is a small tmpfs, filled to ENOSPC by a
//! filler file while entities fire and recover. watchdog must keep ticking, say it is unready
//! and why, count the failed commits, and still deliver what it decides, from memory. When the
//! filler is deleted, it commits again and loses nothing it decided: `watchdog history --json`
//! shows every event, delivered, and a restart fires nothing twice.
//!
//! Mounting needs root (the tests run as root in CI); where the mount fails, the test fails
//! and says why, it never passes without a full disk.

mod common;

use common::{copy_tree, http_get, run_within, Daemon, Webhooks, SECRET, WAIT};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const HOST: &str = "full-disk-host";
const PYTEST: &str = "proc:7:9280000";

/// A tmpfs mounted on a temp dir, unmounted when dropped.
struct Tmpfs {
    at: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a `size` tmpfs, mode 0700 as watchdog wants its state dir.
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("state");
        std::fs::create_dir(&at).unwrap();
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&at)
            .output()
            .expect("mount runs");
        assert!(
            output.status.success(),
            "this test needs to mount a tmpfs (root, outside a container that forbids it): \
             mount said {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Self { at, _dir: dir }
    }

    /// Writes a file until the tmpfs has no byte left; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.at.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        for chunk in [64 * 1024, 4096, 1] {
            let bytes = vec![0u8; chunk];
            loop {
                match file.write(&bytes) {
                    Ok(n) if n == chunk => continue,
                    // A short write: this chunk no longer fits; try the next, smaller one.
                    Ok(_) => break,
                    Err(e) if e.raw_os_error() == Some(28) => break,
                    Err(e) => panic!("{}: {e}", path.display()),
                }
            }
        }
        let full = file.write(&[0]);
        assert!(
            matches!(&full, Err(e) if e.raw_os_error() == Some(28)),
            "the tmpfs is full: {full:?}"
        );
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut command = Command::new("umount");
            if lazy {
                command.arg("--lazy");
            }
            command.arg(&self.at).status().is_ok_and(|s| s.success())
        };
        if !umount(false) && !umount(true) {
            eprintln!("cannot unmount {}", self.at.display());
        }
    }
}

/// An orphaned pytest with `pid` appears in `root`, built beside it and renamed in whole.
fn start(root: &Path, pid: u32) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proc/orphaned_pytest/7");
    let staged = root.with_file_name(format!("staged-{pid}"));
    std::fs::create_dir(&staged).unwrap();
    let stat = std::fs::read_to_string(fixture.join("stat")).unwrap();
    let own = stat.replacen(
        "7 (pytest) S 1 7 7",
        &format!("{pid} (pytest) S 1 {pid} {pid}"),
        1,
    );
    assert_ne!(own, stat, "the fixture's stat starts as this test expects");
    std::fs::write(staged.join("stat"), own).unwrap();
    std::fs::copy(fixture.join("cmdline"), staged.join("cmdline")).unwrap();
    std::fs::rename(&staged, root.join(pid.to_string())).unwrap();
}

fn run(root: &Path, state: &Path, url: &str) -> Daemon {
    Daemon::run(&[
        ("WATCHDOG_PROC_ENABLED", "true".into()),
        ("WATCHDOG_PROC_ROOT", root.display().to_string()),
        ("WATCHDOG_STATE_DIR", state.display().to_string()),
        ("WATCHDOG_WEBHOOK_URL", url.into()),
        ("WATCHDOG_WEBHOOK_SECRET", SECRET.into()),
        ("WATCHDOG_HOST", HOST.into()),
        ("WATCHDOG_INTERVAL_S", "1".into()),
        ("WATCHDOG_RETRY_MAX_S", "1".into()),
        ("WATCHDOG_LOG", "watchdog=debug".into()),
        ("WATCHDOG_LISTEN", "127.0.0.1:0".into()),
    ])
}

/// `watchdog history --json` over `state`: (id, event, entity, statuses of its deliveries).
fn history(state: &Path) -> Vec<(String, String, String, Vec<String>)> {
    let (output, _) = run_within(
        Command::new(env!("CARGO_BIN_EXE_watchdog"))
            .args(["history", "--json"])
            .env_clear()
            .env("WATCHDOG_STATE_DIR", state),
        WAIT,
    )
    .unwrap_or_else(|waited| panic!("history still ran after {waited:?}"));
    assert!(
        output.status.success(),
        "history: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    json["events"]
        .as_array()
        .expect("an events array")
        .iter()
        .map(|e| {
            let statuses = e["deliveries"]
                .as_array()
                .expect("a deliveries array")
                .iter()
                .map(|d| text(&d["status"]))
                .collect();
            (
                text(&e["id"]),
                text(&e["event"]),
                text(&e["entity"]),
                statuses,
            )
        })
        .collect()
}

/// The value of the counter `name` in a /metrics text.
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{metrics}"))
}

#[test]
fn a_full_state_dir_keeps_ticks_and_deliveries_going_and_loses_no_event_once_space_is_back() {
    let tmpfs = Tmpfs::mount("1m");
    let state = tmpfs.at.clone();
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path().join("proc");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proc/orphaned_pytest"),
        &root,
    );
    let receiver = Webhooks::start(HOST, |_| 200);
    let watchdog = run(&root, &state, &receiver.url);
    let port = watchdog.port();
    let before = receiver.next();
    assert_eq!(before.what(), common::what("fire", "proc_blocking", PYTEST));
    common::wait_until("the first fire to be marked delivered", || {
        common::db::queued(&state, "webhook").is_empty()
    });
    assert_eq!(http_get(port, "/readyz").map(|r| r.0), Some(200));

    let filler = tmpfs.fill();
    // Decided while full, in two ticks: a fire and a recovery, then one more fire.
    start(&root, 41);
    let gone = tree.path().join("gone-7");
    std::fs::rename(root.join("7"), &gone).unwrap();
    let error = watchdog.logs.line_with(&["cannot commit the state"]);
    assert!(error.contains("ERROR"), "{error}");
    let mut during = Vec::new();
    let mut take = |n: usize| {
        while during.len() < n {
            let got = receiver.next();
            if got.id() != before.id() {
                during.push(got);
            }
        }
    };
    take(2);
    watchdog.logs.ticks(1);
    start(&root, 42);
    take(3);
    let mut what: Vec<_> = during.iter().map(common::Received::what).collect();
    what.sort();
    assert_eq!(
        what,
        [
            common::what("fire", "proc_blocking", "proc:41:9280000"),
            common::what("fire", "proc_blocking", "proc:42:9280000"),
            common::what("recovery", "proc_blocking", PYTEST),
        ],
        "delivered from memory while no commit works"
    );
    watchdog.logs.ticks(3);
    let (status, body) = http_get(port, "/readyz").expect("the endpoint answers");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("the state cannot be saved"), "{body}");
    assert!(
        body.contains("full"),
        "the reason says the disk is full: {body}"
    );
    let (_, metrics) = http_get(port, "/metrics").expect("the endpoint answers");
    let failed = counter(&metrics, "watchdog_state_commit_errors_total");
    assert!(failed > 0.0, "{metrics}");
    assert!(
        watchdog
            .logs
            .pending()
            .iter()
            .all(|l| !l.contains("cannot commit the state")),
        "one ERROR when commits start failing, not one per tick"
    );

    std::fs::remove_file(&filler).unwrap();
    watchdog.logs.line_with(&["the state is committed again"]);
    common::wait_until("/readyz to answer 200", || {
        http_get(port, "/readyz").is_some_and(|(status, _)| status == 200)
    });
    let mut ids: Vec<String> = during.iter().map(|r| r.id().to_string()).collect();
    ids.push(before.id().to_string());
    ids.sort();
    let mut stored = Vec::new();
    common::wait_until("history to show every event delivered", || {
        stored = history(&state);
        let mut got: Vec<String> = stored.iter().map(|e| e.0.clone()).collect();
        got.sort();
        got == ids && stored.iter().all(|e| e.3 == ["delivered"])
    });
    eprintln!("{failed} failed commits while full; history after: {stored:?}");
    watchdog.stop();

    let watchdog = run(&root, &state, &receiver.url);
    watchdog.logs.ticks(3);
    let again: Vec<_> = receiver
        .pending()
        .iter()
        .map(|r| (r.what(), r.id().to_string()))
        .filter(|(_, id)| !ids.contains(id))
        .collect();
    assert!(again.is_empty(), "nothing new after a restart: {again:?}");
    watchdog.stop();
}
