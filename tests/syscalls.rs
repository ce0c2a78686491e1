//! What `watchdog once` opens, proven with a syscall trace (strace, from Debian; `.ci/run`
//! installs it): nothing under the proc root when the collector is off, and only the files the
//! scan needs when it is on: `cgroup` of the matches whose container is shown (the oldest of each
//! process group, or every match when grouped by pid), and, for the pressure collector on a
//! calm host, the three PSI files and nothing else. Never `environ`.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `watchdog once --json` run under `strace -f -e trace=open,openat,openat2`: how it exited,
/// and the trace.
fn traced_once(vars: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let trace = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"])
        .arg(trace.path())
        .arg(env!("CARGO_BIN_EXE_watchdog"))
        .args(["once", "--json"])
        .env_clear()
        .envs(vars.iter().copied())
        .stdout(Stdio::null())
        .status()
        .expect("strace is installed (apt-get install strace; .ci/run does)");
    (status, std::fs::read_to_string(trace.path()).unwrap())
}

/// The paths `watchdog once` opened.
fn opened_paths(vars: &[(&str, &str)]) -> Vec<String> {
    let (status, text) = traced_once(vars);
    assert!(status.success(), "{status}");
    text.lines()
        .filter_map(|line| {
            let start = line.find('"')? + 1;
            let len = line[start..].find('"')?;
            Some(line[start..start + len].to_string())
        })
        .collect()
}

fn fixture(scenario: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/proc")
        .join(scenario)
}

#[test]
fn a_disabled_proc_collector_opens_nothing_under_its_root() {
    let root = fixture("process_group");
    let opened = opened_paths(&[("WATCHDOG_PROC_ROOT", root.to_str().unwrap())]);
    assert!(!opened.is_empty(), "the trace saw the binary start");
    let under_root: Vec<_> = opened
        .iter()
        .filter(|p| p.starts_with(root.to_str().unwrap()))
        .collect();
    assert!(under_root.is_empty(), "{under_root:?}");
    let under_proc: Vec<_> = opened
        .iter()
        .filter(|p| p.starts_with("/proc/") && !is_runtime_self(p))
        .collect();
    assert!(under_proc.is_empty(), "{under_proc:?}");
}

#[test]
fn a_fixture_scan_opens_only_uptime_cmdline_stat_and_the_matches_cgroup() {
    let root = fixture("process_group");
    let prefix = format!("{}/", root.to_str().unwrap());
    // Grouped by pgid (the default) a group shows its oldest member's container alone; by
    // pid, every match shows its own.
    for (group_by, expected) in [
        ("pgid", &["100", "201"][..]),
        ("pid", &["100", "101", "102", "103", "104", "201"][..]),
    ] {
        let opened = opened_paths(&[
            ("WATCHDOG_PROC_ENABLED", "true"),
            ("WATCHDOG_PROC_ROOT", root.to_str().unwrap()),
            ("WATCHDOG_PROC_GROUP_BY", group_by),
        ]);
        let under_root: Vec<&str> = opened
            .iter()
            .filter_map(|p| {
                p.strip_prefix(&prefix)
                    .or((p == root.to_str().unwrap()).then_some(""))
            })
            .collect();
        assert!(under_root.contains(&"uptime"), "{under_root:?}");
        assert!(under_root.contains(&"101/cmdline"), "{under_root:?}");
        for path in &under_root {
            assert!(allowed_under_root(path), "opened {path}");
        }
        // stat is read for matches, their parents, and a process whose command line is empty
        // (to tell a kernel thread from a zombie leader whose threads still run): kthreadd's
        // once, to learn it runs nothing.
        let kthreadd = under_root.iter().filter(|p| **p == "2/stat").count();
        assert_eq!(kthreadd, 1, "kthreadd's stat: {under_root:?}");
        // cgroup is read once for each match whose container is shown, and for nothing else:
        // not for the parents whose stat names them (tini, the orchestrator), not for kthreadd.
        let mut cgroups: Vec<&str> = under_root
            .iter()
            .filter_map(|p| p.strip_suffix("/cgroup"))
            .collect();
        cgroups.sort_unstable();
        assert_eq!(cgroups, expected, "grouped by {group_by}");
    }
}

#[test]
fn a_calm_pressure_tick_opens_the_three_psi_files_and_nothing_else() {
    let root = fixture("psi_calm");
    let prefix = format!("{}/", root.to_str().unwrap());
    let opened = opened_paths(&[
        ("WATCHDOG_PRESSURE_ENABLED", "true"),
        ("WATCHDOG_PROC_ROOT", root.to_str().unwrap()),
    ]);
    let under_root: Vec<&str> = opened
        .iter()
        .filter_map(|p| p.strip_prefix(&prefix))
        .collect();
    assert_eq!(
        under_root,
        ["pressure/cpu", "pressure/memory", "pressure/io"],
        "a calm tick reads three small files and nothing per process"
    );
    let elsewhere: Vec<&String> = opened
        .iter()
        .filter(|p| p.starts_with("/proc/") && !is_runtime_self(p))
        .collect();
    assert!(elsewhere.is_empty(), "{elsewhere:?}");
}

#[test]
fn without_psi_a_calm_pressure_tick_opens_five_files() {
    let root = fixture("psi_absent_loadavg_only");
    let prefix = format!("{}/", root.to_str().unwrap());
    let opened = opened_paths(&[
        ("WATCHDOG_PRESSURE_ENABLED", "true"),
        ("WATCHDOG_PROC_ROOT", root.to_str().unwrap()),
    ]);
    let under_root: Vec<&str> = opened
        .iter()
        .filter_map(|p| p.strip_prefix(&prefix))
        .collect();
    // The absent cpu file, then its fallback, then the absent memory and io files.
    assert_eq!(
        under_root,
        [
            "pressure/cpu",
            "loadavg",
            "stat",
            "pressure/memory",
            "pressure/io"
        ]
    );
}

#[test]
fn a_live_scan_never_opens_environ_or_status() {
    let opened = opened_paths(&[
        ("WATCHDOG_PROC_ENABLED", "true"),
        ("WATCHDOG_PROC_PATTERNS", "re:."),
    ]);
    let per_process: Vec<&String> = opened
        .iter()
        .filter(|p| p.starts_with("/proc/") && !is_runtime_self(p))
        .collect();
    assert!(
        per_process.iter().any(|p| p.ends_with("/stat")),
        "the scan read stat files"
    );
    for path in &per_process {
        let rest = &path["/proc/".len()..];
        assert!(allowed_under_root(rest), "opened {path}");
    }
    assert!(
        opened.iter().all(|p| !p.contains("environ")),
        "environ was opened"
    );
}

/// The descriptor numbers `watchdog once` got for files under `/proc/<pid>/`.
fn proc_fds(vars: &[(&str, &str)]) -> Vec<u32> {
    // `once` exits 1 when something is active: only that it ran matters here.
    let (status, text) = traced_once(vars);
    assert!(status.code().is_some(), "{status}");
    text.lines()
        .filter(|line| {
            line.split('"')
                .nth(1)
                .and_then(|p| p.strip_prefix("/proc/"))
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .filter_map(|line| line.rsplit("= ").next()?.trim().parse().ok())
        .collect()
}

#[test]
fn once_keeps_no_file_open_from_one_read_to_the_next() {
    // 100 matches of our own, so a scan that kept each match's stat open would hold over 100.
    let children: Vec<std::process::Child> = (0..100)
        .map(|_| {
            Command::new("sleep")
                .arg("60")
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let fds = proc_fds(&[
        ("WATCHDOG_PROC_ENABLED", "true"),
        ("WATCHDOG_PROC_PATTERNS", "re:."),
    ]);
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(fds.len() > 200, "the scan opened {} files", fds.len());
    // Each file is closed before the next is opened, so the numbers stay low: the descriptor
    // table never grows, and growing it costs a multi-threaded process an RCU grace period.
    let highest = fds.iter().max().copied().unwrap_or(0);
    assert!(highest < 64, "descriptor {highest} was in use");
}

/// What a scan may open under its root: the root itself, `uptime`, and a pid's dir, `cmdline`,
/// `stat` and (for matches) `cgroup`.
fn allowed_under_root(path: &str) -> bool {
    allowed(path, &["cmdline", "stat", "cgroup"])
}

fn allowed(path: &str, files: &[&str]) -> bool {
    match path.split_once('/') {
        None => path.is_empty() || path == "uptime" || path.bytes().all(|b| b.is_ascii_digit()),
        Some((pid, file)) => pid.bytes().all(|b| b.is_ascii_digit()) && files.contains(&file),
    }
}

#[test]
fn a_whole_tick_of_run_with_both_collectors_opens_only_what_it_needs() {
    let root = fixture("jobs_pid_namespace");
    let jobs = common::Server::start(|_, _| {
        (
            200,
            vec![],
            r#"[{"id": "j-1", "pid": 42, "state": "running", "started_at": 1}]"#.into(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_watchdog"))
        .arg("run")
        .env_clear()
        .env("WATCHDOG_PROC_ENABLED", "true")
        .env("WATCHDOG_PROC_ROOT", &root)
        .env("WATCHDOG_JOBS_ENABLED", "true")
        .env("WATCHDOG_JOBS_URL", format!("{}/jobs", jobs.base))
        .env("WATCHDOG_JOBS_PID_NS", "re:^/sbin/tini")
        .env("WATCHDOG_INTERVAL_S", "1")
        .env("WATCHDOG_STATE_DIR", dir.path().join("state"))
        .env("WATCHDOG_LISTEN", "off")
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("strace is installed (apt-get install strace; .ci/run does)");
    // Two ticks: each asks for the job list once.
    jobs.next();
    jobs.next();
    let group = strace.id();
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{group}")])
        .status();
    let _ = strace.wait();

    let text = std::fs::read_to_string(&trace).unwrap();
    let opened: Vec<&str> = text
        .lines()
        .filter_map(|line| {
            let start = line.find('"')? + 1;
            Some(&line[start..start + line[start..].find('"')?])
        })
        .collect();
    assert!(
        opened.iter().all(|p| !p.contains("environ")),
        "environ was opened"
    );
    let prefix = format!("{}/", root.display());
    let under_root: Vec<&str> = opened
        .iter()
        .filter_map(|p| p.strip_prefix(prefix.as_str()))
        .collect();
    assert!(
        under_root.contains(&"320/status"),
        "the namespace mapping read NSpid: {under_root:?}"
    );
    assert!(under_root.contains(&"310/cmdline"), "{under_root:?}");
    for path in &under_root {
        assert!(
            allowed(path, &["cmdline", "stat", "status", "cgroup"]),
            "opened {path}"
        );
    }
    // The jobs collector reads the cgroup of the job's own host pid (320) only, not of the
    // orchestrator's other processes it maps; the proc collector, of its one match (321,
    // pytest).
    let cgroups: std::collections::BTreeSet<&str> = under_root
        .iter()
        .filter(|p| p.ends_with("/cgroup"))
        .copied()
        .collect();
    assert_eq!(
        cgroups.into_iter().collect::<Vec<_>>(),
        ["320/cgroup", "321/cgroup"]
    );
    let elsewhere: Vec<&&str> = opened
        .iter()
        .filter(|p| p.starts_with("/proc/") && !is_runtime_self(p))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "the host's /proc beyond the runtime's own: {elsewhere:?}"
    );
}

/// Opens the Rust runtime makes of its own process at start (stack guard, allocator), and
/// the one glibc's malloc makes the first time it shrinks a thread's heap (whether it may give
/// the memory back): not a scan, and only on some runs, so a trace may or may not show it.
fn is_runtime_self(path: &str) -> bool {
    path.starts_with("/proc/self/")
        || path.starts_with("/proc/thread-self/")
        || path == "/proc/sys/vm/overcommit_memory"
}
