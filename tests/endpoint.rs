//! The HTTP endpoint of a running daemon: `/metrics` parsed by the OpenMetrics parser of the
//! Python prometheus-client (`.ci/run` installs it), `/healthz`, `/readyz`, `/status`, and
//! `watchdog healthcheck`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{copy_tree, free_port, http_get};

struct Daemon {
    child: Child,
    port: u16,
    ticks: mpsc::Receiver<()>,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start(scenario: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("proc");
        copy_tree(&fixture(scenario), &root);
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_watchdog"))
            .arg("run")
            .env_clear()
            .envs(Self::vars(&root, port))
            .env("WATCHDOG_STATE_DIR", dir.path().join("state"))
            .env("WATCHDOG_INTERVAL_S", "1")
            .env("WATCHDOG_COLLECTOR_FAIL_TICKS", "2")
            .env("WATCHDOG_LOG", "watchdog=debug")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, ticks) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("tick done") && tx.send(()).is_err() {
                    return;
                }
            }
        });
        let daemon = Self {
            child,
            port,
            ticks,
            root,
            _dir: dir,
        };
        daemon.wait_ticks(1);
        daemon
    }

    /// The variables `run`, `once` and `healthcheck` share in these tests.
    fn vars(root: &Path, port: u16) -> Vec<(String, String)> {
        vec![
            ("WATCHDOG_PROC_ENABLED".into(), "true".into()),
            ("WATCHDOG_PROC_ROOT".into(), root.display().to_string()),
            ("WATCHDOG_HOST".into(), "endpoint-host".into()),
            ("WATCHDOG_LISTEN".into(), format!("127.0.0.1:{port}")),
        ]
    }

    fn wait_ticks(&self, n: usize) {
        for _ in 0..n {
            self.ticks
                .recv_timeout(Duration::from_secs(30))
                .expect("the daemon keeps ticking");
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        http_get(self.port, path).expect("the endpoint answers")
    }

    fn watchdog(&self, args: &[&str]) -> (Option<i32>, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_watchdog"))
            .args(args)
            .env_clear()
            .envs(Self::vars(&self.root, self.port))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.code(), text)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fixture(scenario: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/proc")
        .join(scenario)
}

const PARSE: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
        print(f"{family.name}|{family.type}|{sample.name}|{labels}|{sample.value}")
"#;

/// Every sample, as the strict OpenMetrics parser reads it: (family, type, sample, labels, value).
fn parse_openmetrics(text: &str) -> Vec<(String, String, String, String, f64)> {
    // Debian's own Python, where Debian's python3-prometheus-client installs the parser; a
    // python3 earlier on PATH (pyenv, a venv) would not see it.
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let mut child = Command::new(python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "not valid OpenMetrics (apt-get install python3-prometheus-client; .ci/run does): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('|').collect();
            (
                f[0].into(),
                f[1].into(),
                f[2].into(),
                f[3].into(),
                f[4].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn metrics_are_valid_openmetrics_with_the_documented_names() {
    let daemon = Daemon::start("truncated_stat");
    daemon.wait_ticks(1);
    let (status, text) = daemon.get("/metrics");
    assert_eq!(status, 200);
    let samples = parse_openmetrics(&text);
    let families: std::collections::BTreeSet<(&str, &str)> = samples
        .iter()
        .map(|s| (s.0.as_str(), s.1.as_str()))
        .collect();
    for family in [
        ("watchdog_tick_duration_seconds", "histogram"),
        ("watchdog_collector_runs", "counter"),
        ("watchdog_collector_duration_seconds", "histogram"),
        ("watchdog_collector_observed", "gauge"),
        ("watchdog_collector_vanished", "gauge"),
        ("watchdog_collector_unreadable", "gauge"),
        ("watchdog_signals", "gauge"),
        ("watchdog_last_successful_tick_timestamp_seconds", "gauge"),
    ] {
        assert!(
            families.contains(&family),
            "{family:?} missing from {families:?}"
        );
    }
    let value = |sample: &str, labels: &str| {
        samples
            .iter()
            .find(|s| s.2 == sample && s.3 == labels)
            .map(|s| s.4)
            .unwrap_or_else(|| panic!("no sample {sample}{{{labels}}}"))
    };
    assert_eq!(value("watchdog_collector_observed", "collector=proc"), 1.0);
    assert_eq!(
        value("watchdog_collector_unreadable", "collector=proc"),
        1.0
    );
    assert_eq!(
        value("watchdog_signals", "kind=proc_blocking,state=active"),
        1.0
    );
    assert!(value("watchdog_collector_runs_total", "collector=proc,outcome=ok") >= 2.0);
    assert!(value("watchdog_last_successful_tick_timestamp_seconds", "") > 1.7e9);
}

#[test]
fn readyz_turns_503_while_the_proc_root_is_gone_and_healthz_stays_200() {
    let daemon = Daemon::start("orphaned_pytest");
    assert_eq!(daemon.get("/readyz"), (200, "ready\n".into()));
    assert_eq!(daemon.get("/healthz"), (200, "ok\n".into()));
    assert_eq!(daemon.watchdog(&["healthcheck", "--ready"]).0, Some(0));

    let aside = daemon.root.with_file_name("proc-aside");
    std::fs::rename(&daemon.root, &aside).unwrap();
    daemon.wait_ticks(1);
    assert_eq!(
        daemon.get("/readyz").0,
        200,
        "one failed tick is below the count of 2"
    );
    daemon.wait_ticks(1);
    let (status, reason) = daemon.get("/readyz");
    assert_eq!(status, 503);
    assert!(
        reason.contains("collector proc has failed 2 ticks in a row"),
        "{reason}"
    );
    assert!(reason.contains("not found"), "{reason}");
    assert_eq!(
        daemon.get("/healthz"),
        (200, "ok\n".into()),
        "the loop itself is fine"
    );
    let (code, text) = daemon.watchdog(&["healthcheck", "--ready"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("collector proc"), "{text}");
    assert_eq!(daemon.watchdog(&["healthcheck"]).0, Some(0));

    std::fs::rename(&aside, &daemon.root).unwrap();
    daemon.wait_ticks(1);
    assert_eq!(daemon.get("/readyz"), (200, "ready\n".into()));
}

#[test]
fn status_agrees_with_once_json() {
    let daemon = Daemon::start("process_group");
    let (status, body) = daemon.get("/status");
    assert_eq!(status, 200);
    let live: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (code, once) = daemon.watchdog(&["once", "--json"]);
    assert_eq!(code, Some(0));
    let once: serde_json::Value =
        serde_json::from_str(&once[..once.rfind('}').unwrap() + 1]).unwrap();
    assert_eq!(live["collectors"], once["collectors"]);
    assert_eq!(live["signals"], once["signals"]);
    assert_eq!(live["host"], "endpoint-host");
    let alerts = live["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2, "both groups fired: {alerts:?}");
    for alert in alerts {
        assert_eq!(alert["held"], false);
        assert_eq!(
            alert["since"], alert["last_notified"],
            "fired once, not reminded yet"
        );
    }
}

#[test]
fn the_endpoint_refuses_what_it_does_not_serve() {
    let daemon = Daemon::start("young_pytest");
    assert_eq!(daemon.get("/").0, 404);
    assert_eq!(daemon.get("/metrics/../status").0, 404);
}

#[test]
fn a_taken_port_stops_run_with_status_2_and_healthcheck_fails_without_a_daemon() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_watchdog"))
        .arg("run")
        .env_clear()
        .env("WATCHDOG_LISTEN", format!("127.0.0.1:{port}"))
        .env("WATCHDOG_STATE_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WATCHDOG_LISTEN") && stderr.contains(&port.to_string()),
        "{stderr}"
    );

    drop(taken);
    let output = Command::new(env!("CARGO_BIN_EXE_watchdog"))
        .arg("healthcheck")
        .env_clear()
        .env("WATCHDOG_LISTEN", format!("0.0.0.0:{port}"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("http://127.0.0.1:{port}/healthz")),
        "{stderr}"
    );
}
