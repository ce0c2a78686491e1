//! The proc collector over every fixture tree in `fixtures/proc/`, and over one-variable edge
//! cases built in temp dirs.

use std::fs;
use std::path::{Path, PathBuf};

use watchdog_collectors::pattern::PatternSet;
use watchdog_collectors::proc::{Containers, ProcCollector, ProcConfig, ProcScan};
use watchdog_collectors::CollectError;

fn fixture(scenario: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/proc")
        .join(scenario)
}

fn collector(root: PathBuf, patterns: &str, exclude: &str) -> ProcCollector {
    ProcCollector::new(ProcConfig {
        root,
        patterns: PatternSet::parse(patterns).unwrap(),
        exclude: PatternSet::parse(exclude).unwrap(),
        ticks_per_second: 100,
        page_size: 4096,
        rescan_ticks: 10,
        containers: Containers::EveryMatch,
        keep_open: 0,
    })
}

fn scan(scenario: &str) -> ProcScan {
    collector(fixture(scenario), "pytest", "")
        .scan()
        .unwrap_or_else(|e| panic!("{scenario}: {e}"))
}

fn pids(scan: &ProcScan) -> Vec<u32> {
    scan.processes.iter().map(|p| p.pid).collect()
}

#[test]
fn orphaned_pytest_is_found_with_its_age_cost_and_parent() {
    let scan = scan("orphaned_pytest");
    assert_eq!(scan.uptime_s, 100_000.0);
    assert_eq!(pids(&scan), [7]);
    let p = &scan.processes[0];
    assert_eq!((p.ppid, p.pgid, p.session, p.state), (1, 7, 7, 'S'));
    assert_eq!(p.start_ticks, 9_280_000);
    assert_eq!(p.age_s, 7200);
    assert_eq!(p.cpu_ticks, 720);
    assert_eq!(p.rss_bytes, 8 * 1024 * 1024);
    assert_eq!(p.comm, "pytest");
    assert_eq!(p.cmdline, "/usr/bin/python3 -m pytest tests/ -x");
    assert_eq!(p.parent_comm.as_deref(), Some("tini"));
    assert!(p.group_leader_alive);
    assert_eq!((scan.vanished, scan.unreadable.len()), (0, 0));
}

#[test]
fn young_pytest_is_read_with_its_living_parent() {
    let scan = scan("young_pytest");
    assert_eq!(pids(&scan), [30]);
    assert_eq!(scan.processes[0].age_s, 600);
    assert_eq!(scan.processes[0].parent_comm.as_deref(), Some("python3"));
}

#[test]
fn a_comm_holding_parens_parses_whole() {
    let scan = scan("comm_with_parens");
    assert_eq!(pids(&scan), [55]);
    assert_eq!(scan.processes[0].comm, ") (evil) (");
    assert_eq!(scan.processes[0].age_s, 4000);
    assert_eq!(scan.processes[0].parent_comm.as_deref(), Some("systemd"));
}

#[test]
fn kernel_threads_and_zombies_never_match() {
    // The zombie's comm is `pytest`; only its empty command line keeps it out.
    let scan = collector(fixture("kernel_thread_and_zombie"), "re:.", "")
        .scan()
        .unwrap();
    assert_eq!(pids(&scan), [1, 10], "only processes with a command line");
}

#[test]
fn a_pid_that_vanished_mid_scan_is_counted_and_skipped() {
    let scan = scan("vanished_mid_scan");
    assert_eq!(scan.vanished, 1);
    assert!(scan.unreadable.is_empty());
    assert_eq!(pids(&scan), [78]);
}

#[test]
fn a_truncated_stat_is_unreadable_and_the_rest_is_used() {
    let scan = scan("truncated_stat");
    assert_eq!(scan.unreadable, [88]);
    assert_eq!(scan.vanished, 0);
    assert_eq!(pids(&scan), [89]);
}

#[test]
fn secrets_never_leave_the_collector() {
    let scan = scan("cmdline_with_secrets");
    for p in &scan.processes {
        assert!(!p.cmdline.contains("SECRET"), "{}", p.cmdline);
    }
    let cmdlines: Vec<&str> = scan.processes.iter().map(|p| p.cmdline.as_str()).collect();
    assert_eq!(
        cmdlines,
        [
            "env GITHUB_TOKEN=*** pytest --token *** --api-key=*** \
             --db=postgres://app:***@db:5432/test --password *** tests/",
            r#"agent-run --env {"HOME": "/root", "GITHUB_TOKEN": *** "LANG": "C"} --config={"api_key":"***","user":"ci"} -H Authorization: Bearer *** -- pytest tests/"#,
        ]
    );
}

#[test]
fn a_non_utf8_cmdline_is_decoded_lossily() {
    let scan = scan("non_utf8_cmdline");
    assert_eq!(
        scan.processes[0].cmdline,
        "pytest tests/caf\u{fffd}_\u{fffd}\u{fffd}.py -k na\u{ef}ve"
    );
}

#[test]
fn a_huge_cmdline_is_cut_to_1024_characters() {
    let scan = scan("huge_cmdline");
    let cmdline = &scan.processes[0].cmdline;
    assert_eq!(cmdline.chars().count(), 1024);
    assert!(cmdline.starts_with("pytest tests/test_mod_0000.py::"));
    assert!(cmdline.ends_with('…'));
}

#[test]
fn exclude_wins_over_a_match() {
    let scan = collector(
        fixture("excluded_match"),
        "pytest",
        "pytest-watch, re:--collect-only",
    )
    .scan()
    .unwrap();
    assert_eq!(pids(&scan), [93]);
    let unfiltered = collector(fixture("excluded_match"), "pytest", "")
        .scan()
        .unwrap();
    assert_eq!(pids(&unfiltered), [93, 94, 95]);
}

#[test]
fn a_process_group_is_read_member_by_member() {
    let scan = scan("process_group");
    assert_eq!(pids(&scan), [100, 101, 102, 103, 104, 201]);
    let by_pid = |pid| scan.processes.iter().find(|p| p.pid == pid).unwrap();
    assert!(scan
        .processes
        .iter()
        .filter(|p| p.pgid == 100)
        .all(|p| p.group_leader_alive));
    assert!(!by_pid(201).group_leader_alive, "pgid 200 has no leader");
    assert_eq!(by_pid(102).parent_comm.as_deref(), Some("pytest"));
    assert_eq!(by_pid(201).parent_comm.as_deref(), Some("python3"));
}

#[test]
fn a_root_that_lists_no_pid_1_is_blind() {
    let err = collector(fixture("no_pid_one"), "pytest", "")
        .scan()
        .unwrap_err();
    assert!(matches!(err, CollectError::Blind { .. }), "{err}");
}

#[test]
fn the_collector_skips_the_pid_that_self_points_to() {
    let tree = Tree::new();
    tree.process(1, "tini", &["tini"], 0, 99_000);
    tree.process(40, "watchdog", &["watchdog", "once", "--pytest"], 1, 9_000);
    tree.process(41, "pytest", &["pytest"], 1, 9_000);
    std::os::unix::fs::symlink("40", tree.root.join("self")).unwrap();
    let scan = collector(tree.root.clone(), "pytest", "").scan().unwrap();
    assert_eq!(pids(&scan), [41]);
}

/// A minimal /proc tree in a temp dir, for edge cases that differ from a scenario in one file.
struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Tree {
    /// A tree with `uptime` and nothing else.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        fs::write(root.join("uptime"), "100000.00 1.00\n").unwrap();
        Self { _dir: dir, root }
    }

    fn file(&self, path: &str, contents: impl AsRef<[u8]>) {
        let path = self.root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    fn process(&self, pid: u32, comm: &str, argv: &[&str], ppid: u32, age_s: u64) {
        let cmdline: String = argv.iter().map(|a| format!("{a}\0")).collect();
        self.file(&format!("{pid}/cmdline"), cmdline);
        let start = (100_000 - age_s) * 100;
        self.file(
            &format!("{pid}/stat"),
            format!(
                "{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 0 0 0 0 0 10 10 0 0 20 0 1 0 {start} \
                 1000 100 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
            ),
        );
    }
}

#[test]
fn a_process_without_a_group_has_no_leader_to_lose() {
    let tree = Tree::new();
    tree.process(1, "init", &["init", "pytest"], 0, 99_000);
    let stat = fs::read_to_string(tree.root.join("1/stat")).unwrap();
    tree.file("1/stat", stat.replacen("S 0 1 1", "S 0 0 0", 1));
    let scan = collector(tree.root.clone(), "pytest", "").scan().unwrap();
    assert_eq!(scan.processes[0].pgid, 0);
    assert!(scan.processes[0].group_leader_alive);
}

#[test]
fn a_zombie_or_kernel_thread_never_matches_even_with_a_cmdline() {
    let tree = Tree::new();
    tree.process(1, "init", &["init"], 0, 99_000);
    tree.process(5, "pytest", &["pytest"], 1, 9_000);
    tree.process(6, "pytest", &["pytest"], 1, 9_000);
    tree.process(7, "pytest", &["pytest"], 1, 9_000);
    let stat = |pid| fs::read_to_string(tree.root.join(format!("{pid}/stat"))).unwrap();
    tree.file("5/stat", stat(5).replacen(") S ", ") Z ", 1));
    tree.file("6/stat", stat(6).replacen(" -1 0 ", " -1 2097152 ", 1));
    let scan = collector(tree.root.clone(), "pytest", "").scan().unwrap();
    assert_eq!(pids(&scan), [7]);
}

#[test]
fn a_missing_root_is_an_error_naming_it() {
    let tree = Tree::new();
    let missing = tree.root.join("nope");
    let err = collector(missing.clone(), "pytest", "").scan().unwrap_err();
    assert!(
        matches!(&err, CollectError::RootMissing { path } if *path == missing),
        "{err}"
    );
    assert!(err.to_string().contains("nope"));
}

#[test]
fn a_root_that_is_a_file_is_an_error() {
    let tree = Tree::new();
    let err = collector(tree.root.join("uptime"), "pytest", "")
        .scan()
        .unwrap_err();
    assert!(matches!(err, CollectError::Io { .. }), "{err}");
}

#[test]
fn an_empty_root_is_blind_not_empty() {
    let tree = Tree::new();
    let err = collector(tree.root.clone(), "pytest", "")
        .scan()
        .unwrap_err();
    assert!(matches!(err, CollectError::Blind { .. }), "{err}");
}

#[test]
fn a_missing_or_malformed_uptime_fails_the_scan() {
    for uptime in [None, Some(""), Some("abc 1"), Some("-5 1"), Some("NaN 1")] {
        let tree = Tree::new();
        tree.process(1, "init", &["init"], 0, 99_000);
        match uptime {
            None => fs::remove_file(tree.root.join("uptime")).unwrap(),
            Some(text) => tree.file("uptime", text),
        }
        let err = collector(tree.root.clone(), "init", "").scan().unwrap_err();
        assert!(err.to_string().contains("uptime"), "{uptime:?}: {err}");
    }
}

#[test]
fn a_stat_naming_another_pid_is_unreadable() {
    let tree = Tree::new();
    tree.process(1, "init", &["init"], 0, 99_000);
    tree.process(5, "pytest", &["pytest"], 1, 9_000);
    tree.file("5/stat", fs::read(tree.root.join("1/stat")).unwrap());
    let scan = collector(tree.root.clone(), "pytest", "").scan().unwrap();
    assert_eq!(scan.unreadable, [5]);
    assert!(scan.processes.is_empty());
}

#[test]
fn a_parent_that_cannot_be_read_leaves_the_parent_unknown() {
    let tree = Tree::new();
    tree.process(1, "init", &["init"], 0, 99_000);
    tree.process(5, "pytest", &["pytest"], 4, 9_000);
    let scan = collector(tree.root.clone(), "pytest", "").scan().unwrap();
    assert_eq!(pids(&scan), [5]);
    assert_eq!(scan.processes[0].parent_comm, None);
}

#[test]
fn entries_that_are_not_pids_are_ignored() {
    let tree = Tree::new();
    tree.process(1, "init", &["init"], 0, 99_000);
    tree.file("sys/kernel/pytest", "");
    tree.file("1x/cmdline", "pytest\0");
    tree.file("0/cmdline", "pytest\0");
    let scan = collector(tree.root.clone(), "pytest", "").scan().unwrap();
    assert!(scan.processes.is_empty());
    assert_eq!((scan.vanished, scan.unreadable.len()), (0, 0));
}

#[test]
fn a_match_carries_the_container_its_cgroup_names() {
    use watchdog_collectors::cgroup::Runtime;
    let scan = scan("cgroup_v2_docker_systemd_driver");
    assert_eq!(pids(&scan), [4242]);
    let container = scan.processes[0].container.as_ref().expect("attributed");
    assert_eq!(container.runtime, Runtime::Docker);
    assert_eq!(container.short_id(), Some("e70105bb87f6"));
}

#[test]
fn a_match_without_a_readable_cgroup_is_still_reported_with_no_container() {
    let scan = scan("orphaned_pytest");
    assert_eq!(pids(&scan), [7], "no cgroup file in this tree");
    assert_eq!(scan.processes[0].container, None);
}

#[test]
fn grouped_by_pgid_only_the_oldest_match_of_each_group_has_its_container_read() {
    // process_group: pytest 100 (the group's leader and oldest) with members 101-104, and 201
    // alone; every match here has a cgroup file naming a container.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proc");
    copy_dir(&fixture("process_group"), &root);
    let docker = "0::/system.slice/docker-e70105bb87f6aa3e43bd1d9ff5b7ff3a7b27f81c1aaa8c0e1af3e1c27cd26d5b.scope\n";
    for pid in [100, 101, 102, 103, 104, 201] {
        fs::write(root.join(format!("{pid}/cgroup")), docker).unwrap();
    }
    let with = |containers| {
        ProcCollector::new(ProcConfig {
            containers,
            ..ProcConfig::with_system_units(
                root.clone(),
                PatternSet::parse("pytest").unwrap(),
                PatternSet::default(),
            )
        })
        .scan()
        .unwrap()
    };
    let shown = |scan: &ProcScan| -> Vec<u32> {
        scan.processes
            .iter()
            .filter(|p| p.container.is_some())
            .map(|p| p.pid)
            .collect()
    };
    assert_eq!(shown(&with(Containers::OldestOfEachGroup)), [100, 201]);
    assert_eq!(
        shown(&with(Containers::EveryMatch)),
        [100, 101, 102, 103, 104, 201]
    );
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}
