//! A real Alertmanager HA pair (Debian's prometheus-alertmanager, which `.ci/run` installs) on
//! loopback, clustered with each other, fed by `watchdog run`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{copy_tree, free_port, http_get};

const WAIT: Duration = Duration::from_secs(30);

/// One Alertmanager process.
struct Alertmanager {
    child: Child,
    port: u16,
}

impl Alertmanager {
    fn start(dir: &Path, name: &str, port: u16, cluster: u16, peer: u16) -> Self {
        let config = dir.join("am.yml");
        std::fs::write(
            &config,
            "route: {receiver: \"null\"}\nreceivers: [{name: \"null\"}]\n",
        )
        .unwrap();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join(name).display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--cluster.listen-address=127.0.0.1:{cluster}"))
            .arg(format!("--cluster.peer=127.0.0.1:{peer}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager is installed (apt-get install prometheus-alertmanager; .ci/run does)");
        let am = Self { child, port };
        wait_until("alertmanager ready", || {
            http_get(port, "/-/ready").is_some_and(|(s, _)| s == 200)
        });
        am
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The active alerts' labels (the endpoint leaves out resolved ones).
    fn active(&self) -> Vec<serde_json::Value> {
        let Some((200, body)) = http_get(self.port, "/api/v2/alerts") else {
            return Vec::new();
        };
        let alerts: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
        alerts
            .into_iter()
            .filter(|a| a["status"]["state"] == "active")
            .collect()
    }

    fn has(&self, alertname: &str) -> bool {
        self.active()
            .iter()
            .any(|a| a["labels"]["alertname"] == alertname)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `watchdog run` feeding both Alertmanagers, with a log reader that counts ticks.
struct Watchdog {
    child: Child,
    ticks: std::sync::mpsc::Receiver<()>,
}

impl Watchdog {
    fn start(root: &Path, state: &Path, urls: &str) -> Self {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_watchdog"))
            .arg("run")
            .env_clear()
            .env("WATCHDOG_PROC_ENABLED", "true")
            .env("WATCHDOG_PROC_ROOT", root)
            .env("WATCHDOG_STATE_DIR", state)
            .env("WATCHDOG_ALERTMANAGER_URLS", urls)
            .env("WATCHDOG_ALERTMANAGER_HOLD_S", "4")
            .env("WATCHDOG_COLLECTOR_FAIL_TICKS", "2")
            .env("WATCHDOG_HOST", "am-host")
            .env("WATCHDOG_INTERVAL_S", "1")
            .env("WATCHDOG_LOG", "watchdog=debug")
            .env("WATCHDOG_LOG_FORMAT", "json")
            .env("WATCHDOG_LISTEN", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, ticks) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains(r#""message":"tick done""#) && tx.send(()).is_err() {
                    return;
                }
            }
        });
        Self { child, ticks }
    }

    fn wait_ticks(&self, n: usize) {
        for _ in 0..n {
            self.ticks
                .recv_timeout(WAIT)
                .expect("the daemon keeps ticking");
        }
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stuck(am: &Alertmanager) -> Option<serde_json::Value> {
    am.active()
        .into_iter()
        .find(|a| a["labels"]["alertname"] == "WatchdogProcBlocking")
}

#[test]
fn an_alertmanager_pair_sees_the_alert_while_it_lasts_and_not_after() {
    let dir = tempfile::tempdir().unwrap();
    let (p1, c1, p2, c2) = (free_port(), free_port(), free_port(), free_port());
    let am1 = Alertmanager::start(dir.path(), "am1", p1, c1, c2);
    let am2 = Alertmanager::start(dir.path(), "am2", p2, c2, c1);
    let root: PathBuf = dir.path().join("proc");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proc/orphaned_pytest"),
        &root,
    );
    let state = dir.path().join("state");
    let urls = format!("{}, {}/", am1.url(), am2.url());

    let watchdog = Watchdog::start(&root, &state, &urls);
    for am in [&am1, &am2] {
        wait_until("the alert on each instance", || stuck(am).is_some());
        let alert = stuck(am).unwrap();
        let labels = &alert["labels"];
        assert_eq!(labels["kind"], "proc_blocking");
        assert_eq!(labels["host"], "am-host");
        assert_eq!(labels["entity"], "proc:7:9280000");
        assert_eq!(labels["pid"], "7");
        let summary = alert["annotations"]["summary"].as_str().unwrap();
        assert!(summary.contains("stuck: pytest (pid 7)"), "{summary}");
        assert!(alert["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains("kill -TERM -- -7"));
        assert!(
            am.has("WatchdogHeartbeat"),
            "the dead man's switch fires too"
        );
    }
    let first_start = stuck(&am1).unwrap()["startsAt"].clone();

    // Past the 4 s hold: still active, because every tick sends it again.
    watchdog.wait_ticks(6);
    assert!(
        stuck(&am1).is_some() && stuck(&am2).is_some(),
        "still active across ticks"
    );

    // A restart: the alert keeps its start and stays active.
    watchdog.stop();
    let watchdog = Watchdog::start(&root, &state, &urls);
    watchdog.wait_ticks(6);
    let after_restart = stuck(&am1).expect("still active across a restart");
    assert_eq!(
        after_restart["startsAt"], first_start,
        "the same alert, not a new one"
    );

    // A failing collector: held, so still active past the hold, and watchdog says it is blind.
    let aside = dir.path().join("proc-aside");
    std::fs::rename(&root, &aside).unwrap();
    watchdog.wait_ticks(6);
    assert!(
        stuck(&am1).is_some() && stuck(&am2).is_some(),
        "held while the collector fails"
    );
    assert!(am1.has("WatchdogCollectorFailing") && am2.has("WatchdogCollectorFailing"));
    std::fs::rename(&aside, &root).unwrap();
    wait_until("the collector alert to resolve", || {
        !am1.has("WatchdogCollectorFailing")
    });

    // Recovery: gone from the active list of both.
    std::fs::remove_dir_all(root.join("7")).unwrap();
    wait_until("the alert to resolve on am1", || stuck(&am1).is_none());
    wait_until("the alert to resolve on am2", || stuck(&am2).is_none());
    assert!(am1.has("WatchdogHeartbeat"));

    // One instance down: the other still gets everything.
    drop(am1);
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proc/orphaned_pytest/7"),
        &root.join("7"),
    );
    wait_until("the new alert on the surviving instance", || {
        stuck(&am2).is_some()
    });
    watchdog.wait_ticks(3);
    assert!(stuck(&am2).is_some() && am2.has("WatchdogHeartbeat"));
}
