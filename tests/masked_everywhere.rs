//! The README's promise that command lines are masked everywhere (issue 12 §1), end to end.
//!
//! Real processes on this machine carry secrets from the corpus
//! (`collectors/tests/data/secrets.txt`) in their argv, one process per case and every category
//! represented. `once`, `once --json` and `watchdog run` (debug logs, text and JSON) watch them,
//! with every sink on loopback: the webhook (which refuses some events, so that dead letters are
//! written), Slack, Telegram, Alertmanager, `/status` (with its events), `/metrics`, every file
//! of the state dir (the database, its WAL, the dead letters) and `watchdog history` (table and
//! JSON). Every byte each sink gets is then searched for every secret that cannot turn up there
//! by chance, as it is and in each escaping a sink applies; and each sink is shown to have seen
//! every process, so that a sink that got nothing cannot pass.

mod common;

#[path = "../collectors/tests/support/corpus.rs"]
#[allow(dead_code)]
mod corpus;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{http_get, port_in, reap, run_within, wait_until, Daemon, Request, Server, Webhooks};
use corpus::Case;
use watchdog::escape::visible;
use watchdog::model::escape_markup;
use watchdog_collectors::mask::mask_cmdline;
use watchdog_collectors::proc::split_cmdline;

const HOST: &str = "masked-host";
const BOT_TOKEN: &str = "123456:masked-everywhere-bot";

/// Cases taken from each category: enough to reach several of its rules, few enough that the
/// processes (one a case) and what the sinks get stay small.
const PER_CATEGORY: usize = 4;

/// How long one `once` may take.
const ONCE_LIMIT: Duration = Duration::from_secs(20);

/// The cases the processes carry: [`PER_CATEGORY`] spread over each category of the corpus.
fn selected() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/collectors/tests/data/secrets.txt"
    );
    let text = std::fs::read_to_string(path).expect("the corpus is checked in");
    let cases = corpus::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut by_category: BTreeMap<String, Vec<Case>> = BTreeMap::new();
    for case in cases {
        if !case.keep && case.secrets.iter().any(|s| distinctive(s)) {
            by_category
                .entry(case.category.clone())
                .or_default()
                .push(case);
        }
    }
    assert!(
        by_category.len() >= 12,
        "every category has cases: {:?}",
        by_category.keys()
    );
    let mut chosen = Vec::new();
    for cases in by_category.values() {
        let take = PER_CATEGORY.min(cases.len());
        chosen.extend((0..take).map(|i| cases[i * cases.len() / take].clone()));
    }
    // And every case with a secret that a sink would escape (`&` for Slack and Telegram, `"`
    // and `\` in JSON): it must be found in its escaped form too.
    for case in by_category.into_values().flatten() {
        let escaped = case
            .secrets
            .iter()
            .any(|s| distinctive(s) && s.contains(['&', '<', '>', '"', '\\', '\n']));
        if escaped && !chosen.iter().any(|c| c.line == case.line) {
            chosen.push(case);
        }
    }
    chosen
}

/// Whether a secret can be found in what a sink got only by having leaked. A short or
/// all-digit one (`npm publish --otp 918273`) could turn up by chance in a time, a byte count
/// or a pid, and a short run of plain words (`"key with spaces"` gives `spaces`, `value"`) in
/// any text or JSON: those are not searched for.
fn distinctive(secret: &str) -> bool {
    let plain_words = secret
        .chars()
        .all(|c| c.is_alphabetic() || matches!(c, ' ' | '"' | '\''));
    secret.chars().count() >= 6
        && !secret.bytes().all(|b| b.is_ascii_digit())
        && (!plain_words || secret.chars().count() >= 12)
}

/// Every form in which `secret` could reach a sink: as it is, and as the sinks escape text:
/// JSON (bodies, JSON logs, files), Rust's `{:?}` (text log fields), [`visible`] (tables, alert
/// texts), HTML entities (Slack, Telegram), and these combined.
fn forms(secret: &str) -> BTreeSet<String> {
    let mut forms = BTreeSet::new();
    for shown in [secret.to_owned(), visible(secret).into_owned()] {
        for marked in [shown.clone(), escape_markup(&shown)] {
            let json = serde_json::to_string(&marked).expect("a string serializes");
            let debug = format!("{marked:?}");
            forms.insert(json[1..json.len() - 1].to_owned());
            forms.insert(debug[1..debug.len() - 1].to_owned());
            forms.insert(marked);
        }
    }
    forms
}

/// One process carrying one case.
struct Sleeper {
    pid: u32,
    case: Case,
    /// Its command line as the masker masks what `/proc/<pid>/cmdline` holds.
    masked: String,
}

impl Sleeper {
    /// The prefix of its entity, `proc:<pid>:` (the start time follows).
    fn entity(&self) -> String {
        format!("proc:{}:", self.pid)
    }

    /// How alert texts name it.
    fn named(&self) -> String {
        format!("(pid {})", self.pid)
    }
}

/// The processes, one a case: `sh -c 'sleep 120; exit' pytest <argv of the case>`. The shell
/// keeps that argv, with the case's whole argv in it after `pytest` as `$1…`, for as long as
/// it waits for `sleep`. They share one process group of their own, and are killed and reaped
/// when this is dropped, even when the test fails; `sleep 120` bounds them should the test
/// itself be killed.
struct Sleepers {
    children: Vec<Child>,
    pgid: u32,
    all: Vec<Sleeper>,
}

impl Sleepers {
    fn spawn(cases: Vec<Case>) -> Self {
        let mut sleepers = Self {
            children: Vec::new(),
            pgid: 0,
            all: Vec::new(),
        };
        for case in cases {
            // `exit` after `sleep` keeps the shell from replacing itself with `sleep`; the
            // group is the first child's (0 makes it a group of its own).
            let child = Command::new("sh")
                .args(["-c", "sleep 120; exit", "pytest"])
                .args(&case.argv)
                .process_group(sleepers.pgid as i32)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("sh starts");
            let pid = child.id();
            sleepers.children.push(child);
            if sleepers.pgid == 0 {
                sleepers.pgid = pid;
            }
            sleepers.all.push(Sleeper {
                pid,
                case,
                masked: String::new(),
            });
        }
        sleepers
    }

    /// Proves that each process's argv really carries its secrets (else the test proves
    /// nothing), and notes how its command line should read once masked.
    fn read_argv(&mut self) {
        for sleeper in &mut self.all {
            let path = format!("/proc/{}/cmdline", sleeper.pid);
            let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let argv = split_cmdline(&raw);
            let joined = argv.join(" ");
            assert!(joined.contains("pytest"), "{path}: {joined}");
            for secret in &sleeper.case.secrets {
                assert!(
                    joined.contains(secret.as_str()),
                    "line {}: {path} does not carry its secret {}…",
                    sleeper.case.line,
                    head(secret)
                );
            }
            sleeper.masked = mask_cmdline(&argv);
        }
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        if self.pgid != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.pgid)])
                .status();
        }
        for child in &mut self.children {
            reap(child);
        }
    }
}

/// The first characters of a secret, enough to find it in the corpus and too few to use.
fn head(secret: &str) -> String {
    secret.chars().take(4).collect()
}

/// Everything one sink got, named for the failure message.
struct Capture {
    sink: String,
    bytes: Vec<u8>,
}

impl Capture {
    fn new(sink: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            sink: sink.into(),
            bytes: bytes.into(),
        }
    }

    fn request(sink: &str, request: &Request) -> Self {
        let mut bytes = format!("{} {}\n", request.method, request.path).into_bytes();
        for (name, value) in &request.headers {
            bytes.extend_from_slice(format!("{name}: {value}\n").as_bytes());
        }
        bytes.extend_from_slice(&request.body);
        Self::new(sink, bytes)
    }
}

/// The variables every command runs with: the proc collector on, every process of the pattern
/// its own entity, active as soon as it is a second old.
fn base_vars() -> Vec<(&'static str, String)> {
    vec![
        ("WATCHDOG_PROC_ENABLED", "true".into()),
        ("WATCHDOG_PROC_PATTERNS", "pytest".into()),
        ("WATCHDOG_PROC_AGE_MIN", "0".into()),
        ("WATCHDOG_PROC_GROUP_BY", "pid".into()),
        ("WATCHDOG_HOST", HOST.into()),
        ("WATCHDOG_LOG", "debug".into()),
    ]
}

/// `watchdog once` with `args`: stdout and stderr.
fn once(args: &[&str]) -> (String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_watchdog"));
    command
        .arg("once")
        .args(args)
        .env_clear()
        .env("WATCHDOG_LISTEN", "off")
        .envs(base_vars());
    let (output, _) = run_within(&mut command, ONCE_LIMIT)
        .unwrap_or_else(|waited| panic!("once {args:?} still ran after {waited:?}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "once {args:?}: {stderr}");
    (stdout, stderr)
}

/// The signal of `sleeper` in a report (`once --json`, `/status`).
fn signal<'a>(report: &'a serde_json::Value, sleeper: &Sleeper) -> Option<&'a serde_json::Value> {
    report["signals"].as_array()?.iter().find(|s| {
        s["entity"]
            .as_str()
            .is_some_and(|e| e.starts_with(&sleeper.entity()))
    })
}

/// `once --json`, then the table, once every process is old enough to be active.
fn once_captures(sleepers: &[Sleeper]) -> Vec<Capture> {
    let mut captures = Vec::new();
    let deadline = Instant::now() + common::WAIT;
    let report = loop {
        let (stdout, stderr) = once(&["--json"]);
        captures.push(Capture::new("once --json", stdout.clone()));
        captures.push(Capture::new("once --json (stderr)", stderr));
        let report: serde_json::Value =
            serde_json::from_str(&stdout).expect("once --json prints one JSON object");
        let waiting: Vec<u32> = sleepers
            .iter()
            .filter(|s| signal(&report, s).is_none_or(|signal| signal["active"] != true))
            .map(|s| s.pid)
            .collect();
        if waiting.is_empty() {
            break report;
        }
        assert!(
            Instant::now() < deadline,
            "once --json never showed these pids active: {waiting:?}"
        );
        // A process is active once it is a whole second old: this loop waits for that.
        std::thread::sleep(Duration::from_millis(200));
    };
    for sleeper in sleepers {
        let facts = &signal(&report, sleeper).expect("found above")["facts"];
        assert_eq!(
            facts["cmdline"], sleeper.masked,
            "once --json, line {}",
            sleeper.case.line
        );
        let would_send = report["would_send"].as_array().expect("would_send");
        assert!(
            would_send.iter().any(|e| e["entity"]
                .as_str()
                .is_some_and(|e| e.starts_with(&sleeper.entity()))),
            "once --json would send nothing for pid {}",
            sleeper.pid
        );
    }

    let (table, stderr) = once(&[]);
    for sleeper in sleepers {
        assert!(
            table.lines().any(|l| l.contains(&sleeper.entity())),
            "the once table has no row for pid {}:\n{table}",
            sleeper.pid
        );
    }
    assert!(table.contains("***"), "{table}");
    captures.push(Capture::new("once (table)", table));
    captures.push(Capture::new("once (table, stderr)", stderr));
    captures
}

/// Every file under `dir`, read as bytes, added to `files` unless its content is already
/// there: outboxes are caught while they hold events. A file replaced while it is read (every
/// write is a rename) is read at the next call.
fn snapshot(dir: &Path, files: &mut BTreeMap<String, Vec<Vec<u8>>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            snapshot(&path, files);
        } else if let Ok(bytes) = std::fs::read(&path) {
            let seen = files.entry(path.display().to_string()).or_default();
            if !seen.contains(&bytes) {
                seen.push(bytes);
            }
        }
    }
}

/// Whether some request to a chat channel names `sleeper` and shows a mask.
fn chat_saw(requests: &[Request], sleeper: &Sleeper) -> bool {
    requests.iter().any(|r| {
        let body = String::from_utf8_lossy(&r.body);
        body.contains(&sleeper.named()) && body.contains("***")
    })
}

/// Whether some alert set sent to Alertmanager has `sleeper` with a masked description.
fn alertmanager_saw(requests: &[Request], sleeper: &Sleeper) -> bool {
    requests.iter().any(|r| {
        let alerts: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap_or_default();
        alerts.iter().any(|a| {
            a["labels"]["pid"].as_str().and_then(|p| p.parse().ok()) == Some(sleeper.pid)
                && a["annotations"]["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("***"))
        })
    })
}

/// `watchdog run` with `WATCHDOG_LOG_FORMAT=format` and every sink on loopback, until each sink
/// has seen every process; then `/status` and `/metrics`, a clean stop, and the state dir.
fn run_captures(sleepers: &[Sleeper], format: &str) -> Vec<Capture> {
    let run = format!("run ({format} logs)");
    let state = tempfile::tempdir().expect("a temp dir");
    // Every third event is refused for good, so that it goes to the dead-letter file.
    let webhook = Webhooks::start(HOST, |n| if n % 3 == 0 { 400 } else { 200 });
    // Slack and Telegram fail their first request, so that events wait in their outboxes.
    let slack = Server::start(|n, _| {
        let status = if n == 0 { 500 } else { 200 };
        (status, vec![], "ok".into())
    });
    let telegram = Server::start(|n, _| {
        let status = if n == 0 { 500 } else { 200 };
        (status, vec![], r#"{"ok":true}"#.into())
    });
    let alertmanager = Server::answering(200);
    let mut vars = base_vars();
    vars.extend([
        ("WATCHDOG_LOG_FORMAT", format.to_owned()),
        ("WATCHDOG_STATE_DIR", state.path().display().to_string()),
        ("WATCHDOG_INTERVAL_S", "1".into()),
        ("WATCHDOG_RETRY_MAX_S", "1".into()),
        ("WATCHDOG_LISTEN", "127.0.0.1:0".into()),
        ("WATCHDOG_WEBHOOK_URL", webhook.url.clone()),
        ("WATCHDOG_WEBHOOK_SECRET", common::SECRET.into()),
        (
            "WATCHDOG_SLACK_WEBHOOK_URL",
            format!("{}/services/T/B/X", slack.base),
        ),
        ("WATCHDOG_TELEGRAM_API_URL", telegram.base.clone()),
        ("WATCHDOG_TELEGRAM_BOT_TOKEN", BOT_TOKEN.into()),
        ("WATCHDOG_TELEGRAM_CHAT_ID", "42".into()),
        ("WATCHDOG_ALERTMANAGER_URLS", alertmanager.base.clone()),
    ]);
    let mut daemon = Daemon::run(&vars);
    let mut lines = Vec::new();
    let serving = daemon.logs.line_where("the endpoint's address", |line| {
        lines.push(line.to_owned());
        line.contains("serving /metrics")
    });
    let port = port_in(&serving);

    let mut events = Vec::new();
    let (mut slack_got, mut telegram_got, mut alertmanager_got) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut files = BTreeMap::new();
    let dead_letters = state.path().join("dead-letter-webhook.jsonl");
    let deadline = Instant::now() + common::WAIT;
    loop {
        events.extend(webhook.pending());
        slack_got.extend(slack.pending());
        telegram_got.extend(telegram.pending());
        alertmanager_got.extend(alertmanager.pending());
        snapshot(state.path(), &mut files);
        let mut waiting = Vec::new();
        for sleeper in sleepers {
            let fired = events.iter().any(|e| {
                e.event["event"] == "fire"
                    && e.event["entity"]
                        .as_str()
                        .is_some_and(|x| x.starts_with(&sleeper.entity()))
            });
            for (sink, saw) in [
                ("webhook", fired),
                ("slack", chat_saw(&slack_got, sleeper)),
                ("telegram", chat_saw(&telegram_got, sleeper)),
                ("alertmanager", alertmanager_saw(&alertmanager_got, sleeper)),
            ] {
                if !saw {
                    waiting.push(format!("{sink} pid {}", sleeper.pid));
                }
            }
        }
        let dead = std::fs::read_to_string(&dead_letters).unwrap_or_default();
        if !sleepers.iter().any(|s| dead.contains(&s.entity())) {
            waiting.push("a dead letter".into());
        }
        if waiting.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{run}: after {:?}, still waiting for {} of them: {:?}…",
            common::WAIT,
            waiting.len(),
            &waiting[..waiting.len().min(8)]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for sleeper in sleepers {
        let event = events
            .iter()
            .find(|e| {
                e.event["entity"]
                    .as_str()
                    .is_some_and(|x| x.starts_with(&sleeper.entity()))
            })
            .expect("waited for above");
        assert_eq!(
            event.event["facts"]["cmdline"], sleeper.masked,
            "{run}: the webhook's cmdline, line {}",
            sleeper.case.line
        );
    }

    let mut captures = Vec::new();
    let (status, body) = http_get(port, "/status").expect("/status answers");
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).expect("/status is JSON");
    for sleeper in sleepers {
        let facts = &signal(&report, sleeper)
            .unwrap_or_else(|| panic!("{run}: /status has no pid {}", sleeper.pid))["facts"];
        assert_eq!(facts["cmdline"], sleeper.masked, "{run}: /status");
    }
    captures.push(Capture::new(format!("{run}: /status"), body));
    let (status, metrics) = http_get(port, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200, "{metrics}");
    // Counts only, no command line: it must count them all, and the other pytest processes
    // this host may run on top.
    let active: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"watchdog_signals{kind="proc_blocking",state="active"} "#))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{run}: /metrics counts no active proc signals:\n{metrics}"));
    assert!(active >= sleepers.len(), "{run}: /metrics counts {active}");
    captures.push(Capture::new(format!("{run}: /metrics"), metrics));

    daemon.signal("-TERM");
    assert_eq!(
        daemon.exit_within(common::WAIT),
        Some(0),
        "{run} stops cleanly"
    );
    lines.extend(daemon.logs.rest());
    for sleeper in sleepers {
        assert!(
            lines.iter().any(|l| l.contains(&sleeper.entity())),
            "{run}: no log line names pid {}",
            sleeper.pid
        );
    }
    captures.push(Capture::new(format!("{run}: log"), lines.join("\n")));

    // Late requests: the stop may have flushed some.
    events.extend(webhook.pending());
    slack_got.extend(slack.pending());
    telegram_got.extend(telegram.pending());
    alertmanager_got.extend(alertmanager.pending());
    snapshot(state.path(), &mut files);
    for event in &events {
        captures.push(Capture::new(
            format!("{run}: webhook (answered {})", event.status),
            event.body.clone(),
        ));
    }
    for (sink, requests) in [
        ("slack", &slack_got),
        ("telegram", &telegram_got),
        ("alertmanager", &alertmanager_got),
    ] {
        for request in requests {
            captures.push(Capture::request(&format!("{run}: {sink}"), request));
        }
    }
    let stored = common::db::state(state.path()).to_string();
    for sleeper in sleepers {
        assert!(
            stored.contains(&sleeper.entity()),
            "{run}: the stored state does not hold pid {}",
            sleeper.pid
        );
    }
    // Slack and Telegram refused their first request: an event waited, and was sent again.
    for channel in ["slack", "telegram"] {
        let retried = common::db::attempts(state.path(), channel);
        assert!(
            retried.iter().any(|n| *n >= 2),
            "{run}: no {channel} event waited for a second attempt: {retried:?}"
        );
    }
    for args in [
        &["history", "--since", "1d"][..],
        &["history", "--since", "1d", "--json"],
    ] {
        let (output, _) = run_within(
            Command::new(env!("CARGO_BIN_EXE_watchdog"))
                .args(args)
                .env_clear()
                .env("WATCHDOG_STATE_DIR", state.path()),
            common::WAIT,
        )
        .expect("history finishes");
        assert!(output.status.success(), "{run}: {args:?}: {output:?}");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        for sleeper in sleepers {
            assert!(
                text.contains(&sleeper.entity()),
                "{run}: {args:?} does not name pid {}",
                sleeper.pid
            );
        }
        captures.push(Capture::new(format!("{run}: {}", args.join(" ")), text));
    }
    let dir = format!("{}/", state.path().display());
    for (path, versions) in files {
        let name = path.strip_prefix(&dir).unwrap_or(&path);
        for bytes in versions {
            captures.push(Capture::new(format!("{run}: state dir {name}"), bytes));
        }
    }
    captures
}

#[test]
fn no_corpus_secret_reaches_any_sink() {
    let started = Instant::now();
    let cases = selected();
    let categories: BTreeSet<&str> = cases.iter().map(|c| c.category.as_str()).collect();
    let mut sleepers = Sleepers::spawn(cases.clone());
    wait_until("every process to run its own argv", || {
        sleepers.all.iter().all(|s| {
            std::fs::read(format!("/proc/{}/cmdline", s.pid))
                .is_ok_and(|raw| String::from_utf8_lossy(&raw).contains("pytest"))
        })
    });
    sleepers.read_argv();
    let sleepers = &sleepers;

    let mut captures = once_captures(&sleepers.all);
    captures.extend(run_captures(&sleepers.all, "text"));
    captures.extend(run_captures(&sleepers.all, "json"));

    // One line per sink and secret, however many captures of that sink hold it.
    let mut leaks = BTreeSet::new();
    let mut searched = 0;
    let texts: Vec<(&str, String)> = captures
        .iter()
        .map(|c| {
            (
                c.sink.as_str(),
                String::from_utf8_lossy(&c.bytes).into_owned(),
            )
        })
        .collect();
    for sleeper in &sleepers.all {
        for secret in sleeper.case.secrets.iter().filter(|s| distinctive(s)) {
            searched += 1;
            let forms = forms(secret);
            for (sink, text) in &texts {
                if forms.iter().any(|form| text.contains(form.as_str())) {
                    leaks.insert(format!(
                        "{sink}: the secret {}… of corpus line {} [{}] (pid {})",
                        head(secret),
                        sleeper.case.line,
                        sleeper.case.category,
                        sleeper.pid
                    ));
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} secrets in clear:\n{}",
        leaks.len(),
        leaks.into_iter().collect::<Vec<_>>().join("\n")
    );
    eprintln!(
        "{} cases over {} categories, {searched} secrets, {} captures: none in clear, in {:?}",
        cases.len(),
        categories.len(),
        captures.len(),
        started.elapsed()
    );
}
