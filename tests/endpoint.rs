//! The HTTP endpoint of a running daemon: `/metrics` parsed by the OpenMetrics parser of the
//! Python prometheus-client (`.ci/run` installs it), `/healthz`, `/readyz`, `/status`, and
//! `watchdog healthcheck`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{copy_tree, http_get, run_within};

/// `watchdog run` on 127.0.0.1:0 over a copy of a fixture tree.
struct Daemon {
    run: common::Daemon,
    port: u16,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start(scenario: &str) -> Self {
        Self::start_with(scenario, &[])
    }

    fn start_with(scenario: &str, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("proc");
        copy_tree(&fixture(scenario), &root);
        let mut vars = vec![
            ("WATCHDOG_PROC_ENABLED", "true".to_string()),
            ("WATCHDOG_PROC_ROOT", root.display().to_string()),
            ("WATCHDOG_HOST", "endpoint-host".into()),
            ("WATCHDOG_LISTEN", "127.0.0.1:0".into()),
            (
                "WATCHDOG_STATE_DIR",
                dir.path().join("state").display().to_string(),
            ),
            ("WATCHDOG_INTERVAL_S", "1".into()),
            ("WATCHDOG_COLLECTOR_FAIL_TICKS", "2".into()),
            ("WATCHDOG_LOG", "watchdog=debug".into()),
        ];
        vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let run = common::Daemon::run(&vars);
        let port = run.port();
        run.logs.ticks(1);
        Self {
            run,
            port,
            root,
            _dir: dir,
        }
    }

    /// The variables `once` and `healthcheck` need to find the same tree and endpoint.
    fn vars(&self) -> Vec<(String, String)> {
        vec![
            ("WATCHDOG_PROC_ENABLED".into(), "true".into()),
            ("WATCHDOG_PROC_ROOT".into(), self.root.display().to_string()),
            ("WATCHDOG_HOST".into(), "endpoint-host".into()),
            ("WATCHDOG_LISTEN".into(), format!("127.0.0.1:{}", self.port)),
        ]
    }

    /// Waits until `n` ticks have finished after this call.
    fn wait_ticks(&self, n: u64) {
        self.run.logs.ticks(n);
    }

    fn get(&self, path: &str) -> (u16, String) {
        http_get(self.port, path).expect("the endpoint answers")
    }

    fn watchdog(&self, args: &[&str]) -> (Option<i32>, String) {
        let (output, _) = run_within(
            Command::new(env!("CARGO_BIN_EXE_watchdog"))
                .args(args)
                .env_clear()
                .envs(self.vars()),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|waited| panic!("watchdog {args:?} still ran after {waited:?}"));
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.code(), text)
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
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
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
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, text).unwrap();
    let (output, _) = run_within(
        Command::new(python).args(["-c", PARSE]).arg(&file),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|waited| panic!("python3 still ran after {waited:?}"));
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
    // The tick that first fails, then its end (published by then).
    daemon
        .run
        .logs
        .line_with(&["collection failed", "failed_ticks=1"]);
    daemon.run.logs.line_with(&["tick done"]);
    assert_eq!(
        daemon.get("/readyz").0,
        200,
        "one failed tick is below the count of 2"
    );
    daemon
        .run
        .logs
        .line_with(&["collection failed", "failed_ticks=2"]);
    daemon.run.logs.line_with(&["tick done"]);
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
    // The second tick after the move back surely collected after it.
    daemon.wait_ticks(2);
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
    let (output, _) = run_within(
        Command::new(env!("CARGO_BIN_EXE_watchdog"))
            .arg("run")
            .env_clear()
            .env("WATCHDOG_LISTEN", format!("127.0.0.1:{port}"))
            .env("WATCHDOG_STATE_DIR", dir.path()),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|waited| panic!("run still ran after {waited:?}"));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WATCHDOG_LISTEN") && stderr.contains(&port.to_string()),
        "{stderr}"
    );

    // Port 0: nothing ever listens there (a port let go of might be taken meanwhile).
    let (output, _) = run_within(
        Command::new(env!("CARGO_BIN_EXE_watchdog"))
            .arg("healthcheck")
            .env_clear()
            .env("WATCHDOG_LISTEN", "0.0.0.0:0"),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|waited| panic!("healthcheck still ran after {waited:?}"));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("http://127.0.0.1:0/healthz"), "{stderr}");
}

#[test]
fn with_a_token_status_and_metrics_need_it_and_the_probes_stay_open() {
    const TOKEN: &str = "s3cr3t-l1sten-t0ken";
    let daemon = Daemon::start_with("orphaned_pytest", &[("WATCHDOG_LISTEN_TOKEN", TOKEN)]);
    let get = |path: &str, auth: Option<&str>| {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        common::http_get_with(daemon.port, path, &headers).expect("the endpoint answers")
    };
    let bearer = format!("Bearer {TOKEN}");
    for path in ["/status", "/metrics"] {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Bearer s3cr3t-l1sten-t0ke"),
            Some(TOKEN),
            Some("Basic czNjcjN0"),
        ] {
            let (status, body) = get(path, auth);
            assert_eq!(status, 401, "{path} with {auth:?}");
            assert!(!body.contains("pytest"), "{path} with {auth:?}: {body}");
        }
        assert_eq!(get(path, Some(&bearer)).0, 200, "{path} with the token");
    }
    assert_eq!(get("/healthz", None), (200, "ok\n".into()));
    assert_eq!(get("/readyz", None), (200, "ready\n".into()));
    assert_eq!(daemon.watchdog(&["healthcheck", "--ready"]).0, Some(0));
}

#[test]
fn check_config_never_shows_the_listen_token() {
    let (output, _) = run_within(
        Command::new(env!("CARGO_BIN_EXE_watchdog"))
            .arg("check-config")
            .env_clear()
            .env("WATCHDOG_LISTEN_TOKEN", "s3cr3t-l1sten-t0ken"),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|waited| panic!("check-config still ran after {waited:?}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("WATCHDOG_LISTEN_TOKEN=***\n"), "{stdout}");
    assert!(!stdout.contains("s3cr3t"), "{stdout}");

    let (output, _) = run_within(
        Command::new(env!("CARGO_BIN_EXE_watchdog"))
            .arg("check-config")
            .env_clear()
            .env("WATCHDOG_LISTEN_TOKEN", "two words"),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|waited| panic!("check-config still ran after {waited:?}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "a token a header cannot carry"
    );
    assert!(stderr.contains("WATCHDOG_LISTEN_TOKEN"), "{stderr}");
    assert!(!stderr.contains("words"), "{stderr}");
}

/// Reads until the peer closes or `limit` passes: how long the close took, or `None`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut chunk = [0u8; 512];
    loop {
        let left = limit
            .checked_sub(started.elapsed())
            .filter(|d| !d.is_zero())?;
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut chunk) {
            // EOF, or a reset: closed. Bytes (a 408, say) are read past.
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(started.elapsed())
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn a_request_head_not_complete_within_2_s_is_closed() {
    let daemon = Daemon::start("young_pytest");
    let mut slow = TcpStream::connect(("127.0.0.1", daemon.port)).unwrap();
    slow.write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let took = closed_within(&mut slow, Duration::from_secs(10)).expect("closed at all");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_millis(3500),
        "closed after {took:?}"
    );
}

#[test]
fn at_the_cap_a_new_connection_closes_the_oldest_one_that_sent_no_head() {
    let daemon = Daemon::start_with("young_pytest", &[("WATCHDOG_LISTEN_MAX_CONN", "4")]);
    let connect = || TcpStream::connect(("127.0.0.1", daemon.port)).unwrap();
    let mut idle: Vec<TcpStream> = (0..4).map(|_| connect()).collect();
    // A fifth: a probe, served at once, and the oldest idle one makes room for it.
    let started = Instant::now();
    let (status, body) = daemon.get("/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let closed = closed_within(&mut idle[0], Duration::from_secs(1));
    assert!(
        closed.is_some(),
        "the oldest idle connection is closed long before its 2 s head timeout"
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(
        closed_within(&mut idle[1], Duration::from_millis(200)),
        None,
        "the next oldest stays open"
    );
}
