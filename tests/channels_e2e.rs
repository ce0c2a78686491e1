//! The channels through the binary: all at once from one config, `test-alert`, the heartbeat
//! URL, and a bot token that never reaches a log line.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{run_within, Daemon, Server};

const TOKEN: &str = "987654:SECRET-token-never-logged";

fn fixture(scenario: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/proc")
        .join(scenario)
        .display()
        .to_string()
}

fn watchdog(args: &[&str], vars: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_watchdog"));
    command.args(args).env_clear().env("WATCHDOG_LISTEN", "off");
    for (name, value) in vars {
        command.env(name, value);
    }
    command
}

fn output(args: &[&str], vars: &[(&str, String)]) -> Output {
    run_within(&mut watchdog(args, vars), Duration::from_secs(60))
        .unwrap_or_else(|waited| panic!("watchdog {args:?} still ran after {waited:?}"))
        .0
}

/// `watchdog run` with `vars`, its log followed.
fn run(vars: &[(&str, String)]) -> Daemon {
    let mut vars = vars.to_vec();
    vars.push(("WATCHDOG_LISTEN", "off".to_string()));
    Daemon::run(&vars)
}

fn ok_json(_: usize, _: &common::Request) -> common::Answer {
    (200, vec![], r#"{"ok":true}"#.into())
}

#[test]
fn test_alert_sends_one_marked_event_to_every_channel() {
    let webhook = Server::start(ok_json);
    let slack = Server::start(ok_json);
    let telegram = Server::start(ok_json);
    let alertmanager = Server::start(ok_json);
    let heartbeat = Server::start(ok_json);
    let vars = [
        ("WATCHDOG_HOST", "wired-host".to_string()),
        ("WATCHDOG_WEBHOOK_URL", format!("{}/hook", webhook.base)),
        (
            "WATCHDOG_SLACK_WEBHOOK_URL",
            format!("{}/services/T/B/X", slack.base),
        ),
        ("WATCHDOG_TELEGRAM_API_URL", telegram.base.clone()),
        ("WATCHDOG_TELEGRAM_BOT_TOKEN", TOKEN.to_string()),
        ("WATCHDOG_TELEGRAM_CHAT_ID", "42".to_string()),
        ("WATCHDOG_ALERTMANAGER_URLS", alertmanager.base.clone()),
        (
            "WATCHDOG_ALERTMANAGER_BEARER_TOKEN",
            "am-SECRET".to_string(),
        ),
        (
            "WATCHDOG_HEARTBEAT_URL",
            format!("{}/ping/uuid", heartbeat.base),
        ),
    ];
    let result = output(&["test-alert"], &vars);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert_eq!(
        result.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let channels: Vec<&str> = stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        channels,
        ["webhook", "slack", "telegram", "alertmanager", "heartbeat"]
    );
    assert!(stdout.lines().all(|l| l.ends_with(" ok")), "{stdout}");
    assert!(!stdout.contains("SECRET"), "{stdout}");

    let event = webhook.next().json();
    assert_eq!(event["event"], "test");
    assert_eq!(event["kind"], "test");
    assert_eq!(event["host"], "wired-host");
    assert!(slack.next().json()["text"]
        .as_str()
        .unwrap()
        .contains("watchdog test alert"));
    let message = telegram.next();
    assert_eq!(message.path, format!("/bot{TOKEN}/sendMessage"));
    assert!(message.json()["text"]
        .as_str()
        .unwrap()
        .contains("watchdog test alert"));
    let am = alertmanager.next();
    assert_eq!(am.path, "/api/v2/alerts");
    assert_eq!(am.header("authorization"), Some("Bearer am-SECRET"));
    assert_eq!(am.json()[0]["labels"]["alertname"], "WatchdogTest");
    let ping = heartbeat.next();
    assert_eq!(
        (ping.method.as_str(), ping.path.as_str()),
        ("GET", "/ping/uuid")
    );
}

#[test]
fn test_alert_exits_1_and_says_which_channel_failed() {
    let webhook = Server::start(ok_json);
    let slack = Server::start(|_, _| (404, vec![], "no_service".into()));
    let vars = [
        ("WATCHDOG_WEBHOOK_URL", format!("{}/hook", webhook.base)),
        (
            "WATCHDOG_SLACK_WEBHOOK_URL",
            format!("{}/services/T/B/X", slack.base),
        ),
    ];
    let result = output(&["test-alert"], &vars);
    assert_eq!(result.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&result.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("webhook") && lines[0].ends_with(" ok"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("slack") && lines[1].contains("FAILED: HTTP 404"),
        "{stdout}"
    );
    assert!(lines[1].contains("no_service"), "{stdout}");
    assert!(
        !stdout.contains("/services/T/B/X"),
        "the Slack URL's token part is masked: {stdout}"
    );

    let none = output(&["test-alert"], &[]);
    assert_eq!(
        none.status.code(),
        Some(1),
        "nothing configured proves nothing"
    );
}

#[test]
fn check_config_lists_every_channel_with_secrets_masked() {
    let vars = [
        (
            "WATCHDOG_WEBHOOK_URL",
            "https://h.example/hook?token=s3kr1t1".to_string(),
        ),
        ("WATCHDOG_WEBHOOK_SECRET", "whsec_czNrcjF0Mg==".to_string()),
        (
            "WATCHDOG_SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T/B/s3kr1t3".to_string(),
        ),
        ("WATCHDOG_TELEGRAM_BOT_TOKEN", TOKEN.to_string()),
        ("WATCHDOG_TELEGRAM_CHAT_ID", "42".to_string()),
        (
            "WATCHDOG_ALERTMANAGER_URLS",
            "http://am-0:9093,http://am-1:9093".to_string(),
        ),
        (
            "WATCHDOG_ALERTMANAGER_BASIC_AUTH",
            "user:s3kr1t4".to_string(),
        ),
        (
            "WATCHDOG_HEARTBEAT_URL",
            "https://hc.example/ping/s3kr1t5".to_string(),
        ),
    ];
    let result = output(&["check-config"], &vars);
    assert_eq!(result.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        !stdout.contains("s3kr1t") && !stdout.contains("czNr") && !stdout.contains("987654"),
        "{stdout}"
    );
    insta::assert_snapshot!(stdout
        .lines()
        .filter(|l| l.starts_with("channel"))
        .collect::<Vec<_>>()
        .join("\n"));
}

/// Every log line of `daemon` up to the `times`-th that contains `what`.
fn lines_until(daemon: &Daemon, what: &str, times: usize) -> Vec<String> {
    let mut seen = Vec::new();
    daemon.logs.line_where(what, |line| {
        seen.push(line.to_string());
        seen.iter().filter(|l| l.contains(what)).count() == times
    });
    seen
}

#[test]
fn no_log_line_holds_the_bot_token() {
    // Telegram refuses everything with 500s, then the API goes away: errors of both kinds.
    let telegram = Server::start(|_, _| {
        (
            500,
            vec![],
            r#"{"ok":false,"description":"Internal"}"#.into(),
        )
    });
    let state = tempfile::tempdir().unwrap();
    let vars = [
        ("WATCHDOG_PROC_ENABLED", "true".to_string()),
        ("WATCHDOG_PROC_ROOT", fixture("orphaned_pytest")),
        ("WATCHDOG_STATE_DIR", state.path().display().to_string()),
        ("WATCHDOG_TELEGRAM_API_URL", telegram.base.clone()),
        ("WATCHDOG_TELEGRAM_BOT_TOKEN", TOKEN.to_string()),
        ("WATCHDOG_TELEGRAM_CHAT_ID", "42".to_string()),
        ("WATCHDOG_INTERVAL_S", "1".to_string()),
        ("WATCHDOG_RETRY_MAX_S", "1".to_string()),
        ("WATCHDOG_LOG", "trace".to_string()),
    ];
    // Two refused attempts, then the same against a port where nothing listens.
    let daemon = run(&vars);
    let mut seen = lines_until(&daemon, "will retry", 2);
    drop(daemon);
    assert!(seen.iter().any(|l| l.contains("HTTP 500")), "{seen:#?}");

    // Port 0: nothing ever listens there, so every connection is refused.
    let mut vars = vars.to_vec();
    vars[3].1 = "http://127.0.0.1:0".to_string();
    let daemon = run(&vars);
    seen.extend(lines_until(&daemon, "could not connect", 1));
    drop(daemon);
    for line in &seen {
        assert!(
            !line.contains("SECRET") && !line.contains("987654"),
            "a log line holds the token: {line}"
        );
    }
}

#[test]
fn the_heartbeat_is_fetched_on_successful_ticks_only() {
    let heartbeat = Server::start(ok_json);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proc");
    std::fs::create_dir_all(root.join("1")).unwrap();
    std::fs::write(root.join("uptime"), "100.0 100.0\n").unwrap();
    std::fs::write(root.join("1/cmdline"), "init\0").unwrap();
    let vars = [
        ("WATCHDOG_PROC_ENABLED", "true".to_string()),
        ("WATCHDOG_PROC_ROOT", root.display().to_string()),
        (
            "WATCHDOG_STATE_DIR",
            dir.path().join("state").display().to_string(),
        ),
        ("WATCHDOG_HEARTBEAT_URL", format!("{}/ping", heartbeat.base)),
        ("WATCHDOG_INTERVAL_S", "1".to_string()),
        ("WATCHDOG_LOG", "watchdog=debug".to_string()),
    ];
    let daemon = run(&vars);
    daemon.logs.ticks(2);
    assert_eq!(heartbeat.next().method, "GET");
    // Blind: no successful tick, no heartbeat. The first new tick may have collected before
    // the file went, and a ping of the last good tick may land late: both are let pass.
    std::fs::remove_file(root.join("uptime")).unwrap();
    daemon.logs.ticks(2);
    let _ = heartbeat.pending();
    daemon.logs.ticks(3);
    assert!(
        heartbeat.pending().is_empty(),
        "no heartbeat while the collector fails"
    );
    std::fs::write(root.join("uptime"), "100.0 100.0\n").unwrap();
    daemon.logs.ticks(2);
    assert_eq!(heartbeat.next().path, "/ping");
}
