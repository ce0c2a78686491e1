//! A real Alertmanager HA pair (Debian's prometheus-alertmanager, which `.ci/run` installs) on
//! loopback, clustered with each other, fed by `watchdog run`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{copy_tree, http_get, reap, wait_until, Daemon, Logs};

/// One Alertmanager process, listening on ports it picked itself.
struct Alertmanager {
    child: Child,
    port: u16,
    /// Its cluster listener, `127.0.0.1:<port>`, for the next one to join.
    cluster: String,
    _logs: Logs,
}

impl Alertmanager {
    /// Starts one whose web and cluster listeners bind 127.0.0.1:0, joining `peer`'s cluster.
    /// Its ports are read back from it, so none is ever picked, let go of and reused.
    fn start(dir: &Path, name: &str, peer: Option<&Alertmanager>) -> Self {
        let config = dir.join("am.yml");
        std::fs::write(
            &config,
            "route: {receiver: \"null\"}\nreceivers: [{name: \"null\"}]\n",
        )
        .unwrap();
        let mut command = Command::new("prometheus-alertmanager");
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join(name).display()))
            .arg("--web.listen-address=127.0.0.1:0")
            .arg("--cluster.listen-address=127.0.0.1:0");
        if let Some(peer) = peer {
            command.arg(format!("--cluster.peer={}", peer.cluster));
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("prometheus-alertmanager is installed (apt-get install prometheus-alertmanager; .ci/run does)");
        let logs = Logs::follow(child.stderr.take().expect("stderr is piped"));
        let mut am = Self {
            child,
            port: 0,
            cluster: String::new(),
            _logs: logs,
        };
        // `msg="Listening on" address=127.0.0.1:<port>`: the web port it bound.
        let line = am._logs.line_with(&["Listening on", "address=127.0.0.1:"]);
        let at = line.find("address=127.0.0.1:").unwrap() + "address=127.0.0.1:".len();
        am.port = line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .expect("a port");
        let port = am.port;
        wait_until("alertmanager ready", || {
            http_get(port, "/-/ready").is_some_and(|(s, _)| s == 200)
        });
        // Its own cluster address is the peer that bears the cluster's own name.
        let (_, body) = http_get(port, "/api/v2/status").expect("the status answers");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        let own = &status["cluster"]["name"];
        am.cluster = status["cluster"]["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == *own)
            .and_then(|p| p["address"].as_str())
            .expect("its own cluster address")
            .to_string();
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
        reap(&mut self.child);
    }
}

/// `watchdog run` feeding both Alertmanagers.
fn run(root: &Path, state: &Path, urls: &str) -> Daemon {
    Daemon::run(&[
        ("WATCHDOG_PROC_ENABLED", "true".into()),
        ("WATCHDOG_PROC_ROOT", root.display().to_string()),
        ("WATCHDOG_STATE_DIR", state.display().to_string()),
        ("WATCHDOG_ALERTMANAGER_URLS", urls.into()),
        ("WATCHDOG_ALERTMANAGER_HOLD_S", "4".into()),
        ("WATCHDOG_COLLECTOR_FAIL_TICKS", "2".into()),
        ("WATCHDOG_HOST", "am-host".into()),
        ("WATCHDOG_INTERVAL_S", "1".into()),
        ("WATCHDOG_LOG", "watchdog=debug".into()),
        ("WATCHDOG_LOG_FORMAT", "json".into()),
        ("WATCHDOG_LISTEN", "off".into()),
    ])
}

/// SIGTERM, and the exit within the 5 s the README promises (plus room).
fn stop(mut daemon: Daemon) {
    daemon.signal("-TERM");
    assert_eq!(daemon.exit_within(Duration::from_secs(10)), Some(0));
}

fn stuck(am: &Alertmanager) -> Option<serde_json::Value> {
    am.active()
        .into_iter()
        .find(|a| a["labels"]["alertname"] == "WatchdogProcBlocking")
}

#[test]
fn an_alertmanager_pair_sees_the_alert_while_it_lasts_and_not_after() {
    let dir = tempfile::tempdir().unwrap();
    let am1 = Alertmanager::start(dir.path(), "am1", None);
    let am2 = Alertmanager::start(dir.path(), "am2", Some(&am1));
    wait_until("a cluster of two", || {
        http_get(am1.port, "/api/v2/status").is_some_and(|(_, body)| {
            serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|s| s["cluster"]["peers"].as_array().map(Vec::len))
                == Some(2)
        })
    });
    let root: PathBuf = dir.path().join("proc");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proc/orphaned_pytest"),
        &root,
    );
    let state = dir.path().join("state");
    let urls = format!("{}, {}/", am1.url(), am2.url());

    let watchdog = run(&root, &state, &urls);
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
    watchdog.logs.ticks(6);
    assert!(
        stuck(&am1).is_some() && stuck(&am2).is_some(),
        "still active across ticks"
    );

    // A restart: the alert keeps its start and stays active.
    stop(watchdog);
    let watchdog = run(&root, &state, &urls);
    watchdog.logs.ticks(6);
    let after_restart = stuck(&am1).expect("still active across a restart");
    assert_eq!(
        after_restart["startsAt"], first_start,
        "the same alert, not a new one"
    );

    // A failing collector: held, so still active past the hold, and watchdog says it is blind.
    let aside = dir.path().join("proc-aside");
    std::fs::rename(&root, &aside).unwrap();
    watchdog.logs.ticks(6);
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
    watchdog.logs.ticks(3);
    assert!(stuck(&am2).is_some() && am2.has("WatchdogHeartbeat"));
}
