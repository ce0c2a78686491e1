//! `watchdog run` end to end: the binary over a fixture tree copied to a temp dir, a local HTTP
//! receiver on 127.0.0.1 that verifies every body and signature, and the state dir on disk.
//! Tests wait for events and for ticks (the daemon logs each one), never for a fixed time.

mod common;

use common::copy_tree;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Long enough for a loaded CI machine; a passing test waits far less.
const WAIT: Duration = Duration::from_secs(30);

/// What the receiver got.
#[derive(Debug)]
struct Received {
    event: serde_json::Value,
    /// The status it answered.
    status: u16,
}

impl Received {
    fn id(&self) -> &str {
        self.event["id"].as_str().unwrap()
    }
    fn what(&self) -> (String, String, String) {
        let field = |k: &str| self.event[k].as_str().unwrap_or_default().to_string();
        (field("event"), field("kind"), field("entity"))
    }
}

/// A webhook receiver on 127.0.0.1:0. `answer(n)` is the status of the n-th request (from 0).
/// Every request is checked: POST to /hook, JSON, a valid Standard Webhooks signature whose id
/// is the event id.
struct Receiver {
    url: String,
    events: mpsc::Receiver<Received>,
    server: Arc<tiny_http::Server>,
}

impl Receiver {
    fn start(answer: impl Fn(usize) -> u16 + Send + 'static) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let (tx, events) = mpsc::channel();
        let serving = Arc::clone(&server);
        std::thread::spawn(move || {
            let verifier = standardwebhooks::Webhook::new(SECRET).unwrap();
            for (n, mut request) in serving.incoming_requests().enumerate() {
                assert_eq!(request.method(), &tiny_http::Method::Post);
                assert_eq!(request.url(), "/hook");
                let mut headers = http::HeaderMap::new();
                for h in request.headers() {
                    headers.insert(
                        http::HeaderName::from_bytes(h.field.as_str().as_str().as_bytes()).unwrap(),
                        http::HeaderValue::from_str(h.value.as_str()).unwrap(),
                    );
                }
                let mut body = Vec::new();
                request.as_reader().read_to_end(&mut body).unwrap();
                verifier
                    .verify(&body, &headers)
                    .unwrap_or_else(|e| panic!("signature does not verify: {e:?}"));
                assert_eq!(headers["content-type"], "application/json");
                let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(headers["webhook-id"], event["id"].as_str().unwrap());
                assert_eq!(event["schema"], "watchdog.alert.v1");
                assert_eq!(event["host"], "e2e-host");
                let status = answer(n);
                let _ = request.respond(tiny_http::Response::empty(status));
                if tx.send(Received { event, status }).is_err() {
                    return;
                }
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            events,
            server,
        }
    }

    fn next(&self) -> Received {
        self.events.recv_timeout(WAIT).expect("an event arrives")
    }

    /// Events received so far, without waiting.
    fn pending(&self) -> Vec<Received> {
        self.events.try_iter().collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// A running `watchdog run` and its log lines.
struct Watchdog {
    child: Child,
    logs: mpsc::Receiver<String>,
}

impl Watchdog {
    fn start(root: &Path, state: &Path, url: &str, extra: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_watchdog"))
            .arg("run")
            .env_clear()
            .env("WATCHDOG_PROC_ENABLED", "true")
            .env("WATCHDOG_PROC_ROOT", root)
            .env("WATCHDOG_STATE_DIR", state)
            .env("WATCHDOG_WEBHOOK_URL", url)
            .env("WATCHDOG_WEBHOOK_SECRET", SECRET)
            .env("WATCHDOG_HOST", "e2e-host")
            .env("WATCHDOG_INTERVAL_S", "1")
            .env("WATCHDOG_RETRY_MAX_S", "1")
            .env("WATCHDOG_LOG", "watchdog=debug")
            .env("WATCHDOG_LOG_FORMAT", "json")
            .env("WATCHDOG_LISTEN", "off")
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, logs) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, logs }
    }

    /// Waits until `n` more ticks have completed.
    fn ticks(&self, n: usize) {
        let mut seen = 0;
        while seen < n {
            let line = self
                .logs
                .recv_timeout(WAIT)
                .expect("the daemon keeps ticking");
            if line.contains(r#""message":"tick done""#) {
                seen += 1;
            }
        }
    }

    /// Waits for a log line containing `text`.
    fn log(&self, text: &str) -> String {
        self.log_with(&[text])
    }

    /// Waits for a log line containing every one of `texts`.
    fn log_with(&self, texts: &[&str]) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .logs
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line with {texts:?}"));
            if texts.iter().all(|t| line.contains(t)) {
                return line;
            }
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit, for at most `limit`; returns the exit code.
    fn exit_within(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill9(mut self) {
        self.signal("-KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

fn what(event: &str, kind: &str, entity: &str) -> (String, String, String) {
    (event.into(), kind.into(), entity.into())
}

const PYTEST: &str = "proc:7:9280000";

#[test]
fn fires_once_stays_quiet_inside_the_cooldown_and_recovers_when_the_process_is_gone() {
    let host = Host::new("orphaned_pytest");
    let receiver = Receiver::start(|_| 200);
    let watchdog = Watchdog::start(&host.root(), &host.state(), &receiver.url, &[]);

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

    watchdog.ticks(3);
    assert!(
        receiver.pending().is_empty(),
        "nothing more inside the cooldown"
    );

    std::fs::remove_dir_all(host.root().join("7")).unwrap();
    let recovery = receiver.next();
    assert_eq!(recovery.what(), what("recovery", "proc_blocking", PYTEST));
    assert_eq!(recovery.event["since"], fire.event["since"]);
    assert!(recovery.event["duration_s"].as_u64().unwrap() >= 1);
    watchdog.ticks(2);
    assert!(receiver.pending().is_empty(), "one recovery, once");
}

#[test]
fn a_missing_proc_root_holds_alerts_and_says_watchdog_cannot_see() {
    let host = Host::new("orphaned_pytest");
    let receiver = Receiver::start(|_| 200);
    let watchdog = Watchdog::start(
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
    watchdog.ticks(3);
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
    watchdog.ticks(2);
    assert!(
        receiver.pending().is_empty(),
        "the process is still stuck and inside its cooldown"
    );
}

#[test]
fn state_survives_kill_9_and_what_vanished_while_down_recovers() {
    let host = Host::new("orphaned_pytest");
    let receiver = Receiver::start(|_| 200);
    let watchdog = Watchdog::start(&host.root(), &host.state(), &receiver.url, &[]);
    let fire = receiver.next();
    assert_eq!(fire.what(), what("fire", "proc_blocking", PYTEST));
    watchdog.log_with(&[r#""message":"delivered""#, fire.id()]);
    watchdog.kill9();

    let watchdog = Watchdog::start(&host.root(), &host.state(), &receiver.url, &[]);
    watchdog.ticks(3);
    let after: Vec<_> = receiver
        .pending()
        .iter()
        .map(|r| (r.what(), r.id().to_string()))
        .collect();
    assert!(
        after.is_empty(),
        "no second fire after a restart: {after:?}"
    );
    watchdog.kill9();

    std::fs::remove_dir_all(host.root().join("7")).unwrap();
    let _watchdog = Watchdog::start(&host.root(), &host.state(), &receiver.url, &[]);
    assert_eq!(
        receiver.next().what(),
        what("recovery", "proc_blocking", PYTEST)
    );
}

#[test]
fn a_receiver_that_answers_503_for_a_while_gets_every_event_in_order() {
    let host = Host::new("process_group");
    let receiver = Receiver::start(|n| if n < 4 { 503 } else { 200 });
    let watchdog = Watchdog::start(&host.root(), &host.state(), &receiver.url, &[]);
    // Two fires, then both groups go away: two recoveries.
    watchdog.ticks(1);
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
    watchdog.log_with(&[r#""message":"delivered""#, last]);
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
    let outbox = std::fs::read_to_string(host.state().join("outbox-webhook.json")).unwrap();
    assert_eq!(outbox, "[]", "every delivered event left the outbox");
}

#[test]
fn a_400_answer_lands_in_the_dead_letter_file() {
    let host = Host::new("orphaned_pytest");
    let receiver = Receiver::start(|_| 400);
    let watchdog = Watchdog::start(&host.root(), &host.state(), &receiver.url, &[]);
    let refused = receiver.next();
    assert_eq!(refused.status, 400);
    let line = watchdog.log("moved to the dead-letter file");
    assert!(line.contains("HTTP 400"), "{line}");
    let dead = std::fs::read_to_string(host.state().join("dead-letter-webhook.jsonl")).unwrap();
    let entry: serde_json::Value = serde_json::from_str(dead.lines().next().unwrap()).unwrap();
    assert_eq!(entry["event"]["id"], refused.id());
    assert_eq!(entry["reason"], "HTTP 400");
    watchdog.ticks(2);
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
    let receiver = Receiver::start(|_| 200);
    let mut watchdog = Watchdog::start(
        &host.root(),
        &host.state(),
        &receiver.url,
        &[("WATCHDOG_COLLECT_TIMEOUT_S", "60")],
    );
    watchdog.log("watchdog running");
    watchdog.signal("-TERM");
    assert_eq!(watchdog.exit_within(Duration::from_secs(5)), Some(0));
    assert!(receiver.pending().is_empty());
}

#[test]
fn a_state_dir_that_cannot_be_written_stops_run_with_status_2() {
    let host = Host::new("orphaned_pytest");
    let file = host.dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_watchdog"))
        .arg("run")
        .env_clear()
        .env("WATCHDOG_LISTEN", "off")
        .env("WATCHDOG_STATE_DIR", file.join("state"))
        .output()
        .unwrap();
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
    let receiver = Receiver::start(|_| 200);
    let _watchdog = Watchdog::start(&host.root(), &host.state(), &receiver.url, &[]);
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
    let down = Receiver::start(|_| 503);
    let watchdog = Watchdog::start(&host.root(), &host.state(), &down.url, &[]);
    let refused = down.next();
    assert_eq!(refused.status, 503);
    watchdog.kill9();
    let outbox = std::fs::read_to_string(host.state().join("outbox-webhook.json")).unwrap();
    assert!(outbox.contains(refused.id()), "{outbox}");

    let up = Receiver::start(|_| 200);
    let _watchdog = Watchdog::start(&host.root(), &host.state(), &up.url, &[]);
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
fn next_where(receiver: &Receiver, wanted: impl Fn(&Received) -> bool) -> Received {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let got = receiver
            .events
            .recv_timeout(left)
            .expect("the wanted event arrives");
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
    let receiver = Receiver::start(|_| 200);
    let watchdog = Watchdog::start(
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
    watchdog.ticks(1);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state/state.json")).unwrap())
            .unwrap();
    assert_eq!(
        state["pressure"]["resources"]["cpu"]["active"], false,
        "the memory is saved with the state: {}",
        state["pressure"]
    );
}
