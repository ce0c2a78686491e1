//! `watchdog once` and `watchdog check-config`, run as the binary over fixture trees.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proc")
}

/// Runs the binary with only the given variables (and PATH) in its environment.
fn watchdog(args: &[&str], vars: &[(&str, &str)]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_watchdog"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(vars.iter().copied()))
}

/// Runs `command` to its end, within a deadline.
fn run(command: &mut Command) -> Output {
    common::run_within(command, Duration::from_secs(60))
        .unwrap_or_else(|waited| panic!("{command:?} still ran after {waited:?}"))
        .0
}

/// `once` over a scenario with the proc collector on, plus `extra` variables.
fn once(scenario: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let root = fixtures().join(scenario);
    let root = root.to_str().unwrap();
    let mut vars = vec![
        ("WATCHDOG_PROC_ENABLED", "true"),
        ("WATCHDOG_PROC_ROOT", root),
        ("WATCHDOG_HOST", "test-host"),
    ];
    vars.extend_from_slice(extra);
    watchdog(&[&["once"], args].concat(), &vars)
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .replace(fixtures().to_str().unwrap(), "[fixtures]")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("once --json prints one JSON object")
}

const SCENARIOS: &[&str] = &[
    "orphaned_pytest",
    "young_pytest",
    "comm_with_parens",
    "kernel_thread_and_zombie",
    "vanished_mid_scan",
    "truncated_stat",
    "cmdline_with_secrets",
    "non_utf8_cmdline",
    "huge_cmdline",
    "excluded_match",
    "process_group",
    "no_pid_one",
];

#[test]
fn once_json_per_scenario() {
    for scenario in SCENARIOS {
        let exclude = [("WATCHDOG_PROC_EXCLUDE", "pytest-watch, re:--collect-only")];
        let extra: &[(&str, &str)] = if *scenario == "excluded_match" {
            &exclude
        } else {
            &[]
        };
        let output = once(scenario, &["--json"], extra);
        assert!(output.status.success(), "{scenario}: {output:?}");
        // Every secret value in the fixtures contains this word.
        assert!(
            !stdout(&output).contains("SECRET"),
            "{scenario} leaked a secret"
        );
        insta::assert_snapshot!(format!("once_json__{scenario}"), stdout(&output));
    }
}

#[test]
fn once_json_grouped_by_pid() {
    let output = once(
        "process_group",
        &["--json"],
        &[("WATCHDOG_PROC_GROUP_BY", "pid")],
    );
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn once_table_shows_active_signals_first() {
    let output = once("process_group", &[], &[("WATCHDOG_PROC_AGE_MIN", "120")]);
    assert!(output.status.success());
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn once_table_says_why_a_collector_failed() {
    let output = once("no_pid_one", &[], &[]);
    assert!(
        output.status.success(),
        "a failed collector is reported, not fatal"
    );
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn once_json_contract_fields() {
    let report = json(&once("orphaned_pytest", &["--json"], &[]));
    let collector = &report["collectors"][0];
    for (field, want) in [
        ("name", serde_json::json!("proc")),
        ("enabled", true.into()),
        ("ok", true.into()),
        ("observed", 1.into()),
        ("vanished", 0.into()),
        ("unreadable", 0.into()),
        ("error", serde_json::Value::Null),
    ] {
        assert_eq!(collector[field], want, "collectors[0].{field}");
    }
    let signal = &report["signals"][0];
    assert_eq!(signal["kind"], "proc_blocking");
    assert_eq!(signal["entity"], "proc:7:9280000");
    assert_eq!(signal["active"], true);
    let facts = &signal["facts"];
    for (field, want) in [
        ("pid", serde_json::json!(7)),
        ("ppid", 1.into()),
        ("pgid", 7.into()),
        ("age_s", 7200.into()),
        ("orphaned", true.into()),
        ("parent", "tini".into()),
        ("cpu_pct", 0.1.into()),
        ("rss_bytes", 8_388_608.into()),
        ("cmdline", "/usr/bin/python3 -m pytest tests/ -x".into()),
    ] {
        assert_eq!(facts[field], want, "facts.{field}");
    }
}

#[test]
fn once_lists_a_disabled_collector_and_opens_nothing() {
    // The root does not exist: had the collector looked, it would have failed.
    let output = watchdog(
        &["once", "--json", "--check"],
        &[("WATCHDOG_PROC_ROOT", "/nonexistent/proc")],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = json(&output);
    assert_eq!(report["collectors"][0]["name"], "proc");
    assert_eq!(report["collectors"][0]["enabled"], false);
    assert_eq!(report["signals"], serde_json::json!([]));
}

#[test]
fn once_check_exit_codes() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], i32);
    let cases: &[Case] = &[
        ("orphaned_pytest", &[], 1),
        ("young_pytest", &[], 0),
        ("orphaned_pytest", &[("WATCHDOG_PROC_AGE_MIN", "121")], 0),
        ("orphaned_pytest", &[("WATCHDOG_PROC_AGE_MIN", "119")], 1),
        ("kernel_thread_and_zombie", &[], 0),
        ("no_pid_one", &[], 3),
    ];
    for (scenario, extra, want) in cases {
        let output = once(scenario, &["--check"], extra);
        assert_eq!(
            output.status.code(),
            Some(*want),
            "{scenario} {extra:?}: {output:?}"
        );
        let plain = once(scenario, &[], extra);
        assert_eq!(
            plain.status.code(),
            Some(0),
            "without --check, {scenario} exits 0"
        );
    }
}

#[test]
fn bad_config_exits_2_with_one_line_naming_the_variable() {
    let cases: &[(&str, &str)] = &[
        ("WATCHDOG_PROC_AGE_MIN", "abc"),
        ("WATCHDOG_PROC_AGE_MIN", "-1"),
        ("WATCHDOG_INTERVAL_S", "0"),
        ("WATCHDOG_PROC_ENABLED", "maybe"),
        ("WATCHDOG_PROC_PATTERNS", "re:(["),
        ("WATCHDOG_PROC_GROUP_BY", "tree"),
        // Decimals: just outside 0.1-100 on both sides, and not a plain decimal.
        ("WATCHDOG_PRESSURE_CPU_PCT", "0.09"),
        ("WATCHDOG_PRESSURE_MEMORY_PCT", "100.1"),
        ("WATCHDOG_PRESSURE_IO_PCT", "1e1"),
        ("WATCHDOG_PRESSURE_LOAD_PCT", "0.9"),
        ("WATCHDOG_PRESSURE_TOP", "51"),
        ("WATCHDOG_PRESSURE_FOR_S", "86401"),
    ];
    for (var, value) in cases {
        for command in ["once", "check-config"] {
            let output = watchdog(&[command], &[(var, value)]);
            assert_eq!(output.status.code(), Some(2), "{command} {var}={value}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                stderr.lines().count(),
                1,
                "{command} {var}={value}: {stderr}"
            );
            assert!(stderr.contains(var), "{command} {var}={value}: {stderr}");
            assert!(output.stdout.is_empty(), "{command} {var}={value}");
        }
    }
}

#[test]
fn check_config_prints_the_effective_config() {
    let output = watchdog(&["check-config"], &[("WATCHDOG_PROC_AGE_MIN", "15")]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn an_unknown_variable_warns_in_once_and_fails_check_config() {
    let typo = [("WATCHDOG_PROC_ENABLE", "true")];
    let output = watchdog(&["once", "--json"], &typo);
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("did you mean WATCHDOG_PROC_ENABLED?"),
        "{stderr}"
    );
    assert_eq!(json(&output)["collectors"][0]["enabled"], false);

    let output = watchdog(&["check-config"], &typo);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("WATCHDOG_PROC_ENABLE "), "{stderr}");
}

#[test]
fn the_example_env_file_works_as_is() {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".env.watchdog.example"),
    )
    .unwrap();
    let vars: Vec<(String, String)> = example
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), String::new() + v))
        .collect();
    let output = run(Command::new(env!("CARGO_BIN_EXE_watchdog"))
        .arg("check-config")
        .env_clear()
        .envs(vars));
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

/// `once` over a pressure scenario with the pressure and proc collectors on.
fn once_pressure(scenario: &str, args: &[&str]) -> Output {
    once(scenario, args, &[("WATCHDOG_PRESSURE_ENABLED", "true")])
}

const PRESSURE_SCENARIOS: &[&str] = &[
    "psi_calm",
    "psi_cpu_starved",
    "psi_partial",
    "psi_absent_loadavg_only",
    "psi_absent_load_high",
];

#[test]
fn once_json_per_pressure_scenario() {
    for scenario in PRESSURE_SCENARIOS {
        let output = once_pressure(scenario, &["--json"]);
        assert!(output.status.success(), "{scenario}: {output:?}");
        assert!(
            !stdout(&output).contains("SECRET"),
            "{scenario} leaked a secret"
        );
        insta::assert_snapshot!(format!("once_json__{scenario}"), stdout(&output));
    }
}

#[test]
fn once_check_exits_1_while_the_host_is_under_pressure() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], i32);
    let cases: &[Case] = &[
        ("psi_calm", &[], 0),
        // cpu some avg60 83.40, avg300 79.02: both at or above 50.
        ("psi_cpu_starved", &[], 1),
        // avg300 79.02 against thresholds on either side of it.
        (
            "psi_cpu_starved",
            &[("WATCHDOG_PRESSURE_CPU_PCT", "79.02")],
            1,
        ),
        (
            "psi_cpu_starved",
            &[("WATCHDOG_PRESSURE_CPU_PCT", "79.03")],
            0,
        ),
        ("psi_absent_loadavg_only", &[], 0),
        // load 170 % / 155 % per CPU against the load threshold.
        ("psi_absent_load_high", &[], 1),
        (
            "psi_absent_load_high",
            &[("WATCHDOG_PRESSURE_LOAD_PCT", "155.01")],
            0,
        ),
        ("psi_partial", &[], 0),
        ("psi_garbage", &[], 3),
    ];
    for (scenario, extra, want) in cases {
        let vars = [
            &[
                ("WATCHDOG_PRESSURE_ENABLED", "true"),
                ("WATCHDOG_PROC_ENABLED", "false"),
            ],
            *extra,
        ]
        .concat();
        let output = once(scenario, &["--check", "--json"], &vars);
        assert_eq!(
            output.status.code(),
            Some(*want),
            "{scenario} {extra:?}: {output:?}"
        );
        let report = json(&output);
        let active: Vec<&str> = report["signals"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["active"] == true)
            .map(|s| s["kind"].as_str().unwrap())
            .collect();
        let want_active: &[&str] = if *want == 1 { &["host_pressure"] } else { &[] };
        assert_eq!(active, want_active, "{scenario} {extra:?}");
    }
}

#[test]
fn once_json_shows_pressure_facts_and_the_container_of_a_match() {
    let report = json(&once_pressure("psi_cpu_starved", &["--json"]));
    let pressure = report["collectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "pressure")
        .unwrap();
    assert_eq!(pressure["ok"], true);
    let signal = |entity: &str| {
        report["signals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["entity"] == entity)
            .unwrap_or_else(|| panic!("no {entity}: {report}"))
            .clone()
    };
    let cpu = signal("pressure:cpu");
    assert_eq!(cpu["kind"], "host_pressure");
    assert_eq!(cpu["active"], true);
    let facts = &cpu["facts"];
    assert_eq!(facts["resource"], "cpu");
    assert_eq!(facts["source"], "psi");
    assert_eq!(facts["some_avg60"], 83.4);
    assert_eq!(
        facts["full_avg60"],
        serde_json::Value::Null,
        "never for cpu"
    );
    assert_eq!(
        facts["above_since"],
        serde_json::Value::Null,
        "once has no history"
    );
    assert_eq!(facts["top_status"], "sampled", "sampled around a 1 s wait");
    assert!(facts["top"].is_array());
    let pytest = signal("proc:4121:1640000");
    let container = &pytest["facts"]["container"];
    assert_eq!(container["runtime"], "docker");
    assert!(
        container["id"]
            .as_str()
            .unwrap()
            .starts_with("e70105bb87f6"),
        "{container}"
    );
    assert_eq!(container["pod_uid"], serde_json::Value::Null);
}

#[test]
fn once_table_has_a_pressure_section_and_a_container_column() {
    let output = once_pressure("psi_cpu_starved", &[]);
    assert!(output.status.success(), "{output:?}");
    insta::assert_snapshot!(stdout(&output));
}

/// A process writes its own argv and comm: escape sequences, a newline that would start a forged
/// row, a right-to-left override and a backslash are shown visibly escaped, never raw.
#[test]
fn once_table_shows_a_hostile_argv_escaped() {
    let table = stdout(&once("hostile_argv", &[], &[]));
    for raw in ["\u{1b}", "\u{202e}", "\nproc:9:1"] {
        assert!(!table.contains(raw), "{raw:?} printed raw:\n{table}");
    }
    assert!(table.contains(r"\x1b[2J"), "{table}");
    assert!(table.contains(r"\u{202e}evil"), "{table}");
    insta::assert_snapshot!(table);
}

#[test]
fn once_json_keeps_a_hostile_argv_as_json_escapes_it() {
    let report = json(&once("hostile_argv", &["--json"], &[]));
    let cmdline = report["signals"][0]["facts"]["cmdline"].as_str().unwrap();
    assert!(
        cmdline.contains("\u{1b}[2J"),
        "JSON keeps its own escaping: {cmdline:?}"
    );
    let comm = report["signals"][0]["facts"]["comm"].as_str().unwrap();
    assert_eq!(comm, "py\u{1b}[31mtest");
}

/// `watchdog once | head -1` closes the pipe early: the output is cut short, with no panic.
#[test]
fn once_into_a_closed_pipe_exits_without_a_panic() {
    let root = fixtures().join("orphaned_pytest");
    let mut child = Command::new(env!("CARGO_BIN_EXE_watchdog"))
        .args(["once", "--json"])
        .env_clear()
        .env("WATCHDOG_PROC_ENABLED", "true")
        .env("WATCHDOG_PROC_ROOT", &root)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads: the pipe is closed before watchdog writes its report.
    drop(child.stdout.take());
    let status = common::exit_within(&mut child, Duration::from_secs(30)).expect("it exits");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(status.code(), Some(101), "{stderr}");
}
