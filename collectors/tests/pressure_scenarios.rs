//! The pressure collector over the `psi_*` fixture trees, over one-variable edge cases built in
//! temp dirs, on this machine's live /proc, and under strace to prove what a tick opens.
//!
//! Two samples of a changing tree: the collector's root is a symlink in a temp dir that a test
//! re-points from `psi_cpu_starved` to `psi_cpu_starved_next_sample`, and a fake clock moves time
//! instead of sleeping. In `Wait` mode the clock's `sleep` re-points the link, so the second
//! sample sees the second tree exactly as a real wait would see the processes move on.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use watchdog_collectors::cgroup::Runtime;
use watchdog_collectors::pressure::{
    Clock, PressureCollector, PressureConfig, PressureScan, Resource, ResourcePressure, Sampling,
    Source, SystemClock, Thresholds, Top, TopProcess,
};
use watchdog_collectors::CollectError;

const RUNNER_ID: &str = "e70105bb87f6ea3dc07daa379f8ebaab8505111542db8099504862ee35c2c2c9";

fn fixture(scenario: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/proc")
        .join(scenario)
}

fn config(root: PathBuf, top: usize, sampling: Sampling) -> PressureConfig {
    PressureConfig {
        root,
        thresholds: Thresholds::default(),
        top,
        sampling,
        ticks_per_second: 100,
    }
}

/// A monotonic clock that moves only when told to, or by the length of a `sleep`, and runs a
/// hook on each `sleep` (to change the tree between the two samples of `Wait` mode).
struct FakeClock {
    start: Instant,
    elapsed: Mutex<Duration>,
    /// How far a sleep moves time, when not by the duration asked for (an oversleep).
    sleep_moves: Option<Duration>,
    on_sleep: Box<dyn Fn() + Send + Sync>,
}

impl FakeClock {
    fn new() -> Arc<Self> {
        Self::with_hook(None, || {})
    }

    fn with_hook(
        sleep_moves: Option<Duration>,
        on_sleep: impl Fn() + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            elapsed: Mutex::new(Duration::ZERO),
            sleep_moves,
            on_sleep: Box::new(on_sleep),
        })
    }

    fn advance(&self, by: Duration) {
        *self.elapsed.lock().unwrap() += by;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.start + *self.elapsed.lock().unwrap()
    }

    fn sleep(&self, duration: Duration) {
        self.advance(self.sleep_moves.unwrap_or(duration));
        (self.on_sleep)();
    }
}

/// A root path that is a symlink to a fixture tree, re-pointed between samples.
struct SwitchedRoot {
    _dir: tempfile::TempDir,
    link: PathBuf,
}

impl SwitchedRoot {
    fn to(scenario: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("proc");
        std::os::unix::fs::symlink(fixture(scenario), &link).unwrap();
        Self { _dir: dir, link }
    }

    fn point_to(&self, scenario: &str) {
        point(&self.link, scenario);
    }
}

/// Re-points `link` to a fixture by renaming a new link over it: no moment without a root.
fn point(link: &Path, scenario: &str) {
    let next = link.with_extension("next");
    let _ = fs::remove_file(&next);
    std::os::unix::fs::symlink(fixture(scenario), &next).unwrap();
    fs::rename(&next, link).unwrap();
}

fn scan(scenario: &str) -> PressureScan {
    PressureCollector::with_clock(
        config(fixture(scenario), 5, Sampling::Wait(Duration::ZERO)),
        FakeClock::new(),
    )
    .scan()
    .unwrap_or_else(|e| panic!("{scenario}: {e}"))
}

fn resource(scan: &PressureScan, resource: Resource) -> &ResourcePressure {
    scan.resource(resource).unwrap()
}

/// (pid, cpu_pct, orphaned) of each top consumer, most CPU first.
fn ranking(top: &Top) -> Vec<(u32, f64, bool)> {
    top.processes()
        .iter()
        .map(|p| (p.pid, p.cpu_pct, p.orphaned))
        .collect()
}

/// The consumers between `psi_cpu_starved` and its next sample ten seconds later, at 100 ticks
/// a second: pytest's 1900 ticks are 190% of a core.
const STARVED_TOP_5: [(u32, f64, bool); 5] = [
    (4121, 190.0, true),
    (4122, 99.0, false),
    (700, 20.0, false),
    (4300, 15.0, false),
    (500, 3.0, false),
];

/// A `Wait` collector on the starved tree whose wait moves the clock by `moves` and the tree on.
fn starved_wait(top: usize, moves: Duration) -> (SwitchedRoot, PressureCollector) {
    let root = SwitchedRoot::to("psi_cpu_starved");
    let link = root.link.clone();
    let clock = FakeClock::with_hook(Some(moves), move || {
        point(&link, "psi_cpu_starved_next_sample")
    });
    let collector = PressureCollector::with_clock(
        config(
            root.link.clone(),
            top,
            Sampling::Wait(Duration::from_secs(10)),
        ),
        clock,
    );
    (root, collector)
}

#[test]
fn a_calm_host_reads_three_resources_and_samples_nothing() {
    let scan = scan("psi_calm");
    let cpu = resource(&scan, Resource::Cpu);
    assert_eq!(cpu.source, Source::Psi);
    assert_eq!(
        (cpu.some_avg10, cpu.some_avg60, cpu.some_avg300),
        (Some(1.20), Some(0.85), Some(0.60))
    );
    assert_eq!(cpu.threshold_pct, 50.0);
    let memory = resource(&scan, Resource::Memory);
    assert_eq!((memory.source, memory.full_avg60), (Source::Psi, Some(0.0)));
    let io = resource(&scan, Resource::Io);
    assert_eq!((io.some_avg60, io.full_avg60), (Some(0.30), Some(0.10)));
    assert!(scan.resources.iter().all(|r| !r.at_or_above));
    assert_eq!(scan.top, Top::BelowThreshold);
    let order: Vec<Resource> = scan.resources.iter().map(|r| r.resource).collect();
    assert_eq!(order, Resource::ALL);
}

#[test]
fn a_starved_cpu_is_at_or_above_and_its_full_line_is_never_reported() {
    let scan = scan("psi_cpu_starved");
    let cpu = resource(&scan, Resource::Cpu);
    assert!(cpu.at_or_above);
    assert_eq!(
        (cpu.some_avg10, cpu.some_avg60, cpu.some_avg300),
        (Some(88.10), Some(83.40), Some(79.02))
    );
    assert_eq!(cpu.full_avg60, None, "the kernel's zeros are not a figure");
    assert!(!resource(&scan, Resource::Memory).at_or_above);
    assert!(!resource(&scan, Resource::Io).at_or_above);
    assert_eq!(resource(&scan, Resource::Memory).full_avg60, Some(0.05));
    assert!(scan.any_at_or_above());
}

#[test]
fn wait_mode_names_the_top_consumers_over_the_wait() {
    let (_root, collector) = starved_wait(5, Duration::from_secs(10));
    let scan = collector.scan().unwrap();
    let Top::Sampled {
        interval_s,
        vanished,
        unreadable,
        ..
    } = &scan.top
    else {
        panic!("{:?}", scan.top);
    };
    assert_eq!(*interval_s, 10.0);
    assert_eq!(ranking(&scan.top), STARVED_TOP_5);
    assert_eq!(
        (*vanished, *unreadable),
        (1, 0),
        "pid 77 ended mid-sample; 900 reads in the second sample"
    );
}

#[test]
fn a_top_consumer_carries_its_masked_cmdline_start_and_container() {
    let (_root, collector) = starved_wait(5, Duration::from_secs(10));
    let scan = collector.scan().unwrap();
    let pytest: &TopProcess = &scan.top.processes()[0];
    assert_eq!((pytest.pid, pytest.ppid), (4121, 4000));
    assert_eq!(pytest.comm, "pytest");
    assert_eq!(
        pytest.cmdline,
        "/usr/bin/python3 -m pytest tests/ -n 2 --token ***"
    );
    assert_eq!(pytest.start_ticks, 1_640_000);
    assert!(pytest.orphaned, "its parent is tini, a reaper");
    let container = pytest.container.as_ref().unwrap();
    assert_eq!(container.runtime, Runtime::Docker);
    assert_eq!(container.id.as_deref(), Some(RUNNER_ID));
    assert_eq!(container.pod_uid, None);

    let cc1 = &scan.top.processes()[2];
    assert_eq!(cc1.pid, 700);
    assert_eq!(cc1.container, None, "pid 700 has no cgroup file");
    let session = scan.top.processes()[3].container.as_ref().unwrap();
    assert_eq!(
        (session.runtime, session.unit.as_deref()),
        (Runtime::Systemd, Some("session-4.scope"))
    );
}

#[test]
fn the_interval_is_measured_not_assumed() {
    // Asked to wait 10 s, the wait took 20: every rate halves.
    let (_root, collector) = starved_wait(2, Duration::from_secs(20));
    let scan = collector.scan().unwrap();
    assert_eq!(
        ranking(&scan.top),
        [(4121, 95.0, true), (4122, 49.5, false)]
    );
    assert!(matches!(scan.top, Top::Sampled { interval_s, .. } if interval_s == 20.0));
}

#[test]
fn a_reused_pid_is_counted_from_its_own_start_and_an_unread_one_is_left_out() {
    let (_root, collector) = starved_wait(50, Duration::from_secs(10));
    let scan = collector.scan().unwrap();
    let node = scan.top.processes().iter().find(|p| p.pid == 500).unwrap();
    assert_eq!(
        node.cpu_pct, 3.0,
        "30 ticks since it started, not 30 - 5000"
    );
    assert_eq!(node.start_ticks, 19_999_500);
    assert_eq!(node.cmdline, "node build.js");
    assert!(
        scan.top.processes().iter().all(|p| p.pid != 900),
        "pid 900's first stat was cut short: no starting point"
    );
    let pids: Vec<u32> = scan.top.processes().iter().map(|p| p.pid).collect();
    assert_eq!(
        pids,
        [4121, 4122, 700, 4300, 500, 35, 1, 3990],
        "everything that used CPU, nothing that used none"
    );
}

#[test]
fn top_is_cut_to_the_configured_count() {
    let (_root, collector) = starved_wait(2, Duration::from_secs(10));
    assert_eq!(ranking(&collector.scan().unwrap().top), STARVED_TOP_5[..2]);
}

#[test]
fn top_zero_never_samples_processes() {
    let scan = PressureCollector::with_clock(
        config(fixture("psi_cpu_starved"), 0, Sampling::Interval),
        FakeClock::new(),
    )
    .scan()
    .unwrap();
    assert!(resource(&scan, Resource::Cpu).at_or_above);
    assert_eq!(scan.top, Top::Off);
}

#[test]
fn interval_mode_says_sampling_on_its_first_tick_above_then_names_consumers() {
    let root = SwitchedRoot::to("psi_cpu_starved");
    let clock = FakeClock::new();
    let collector = PressureCollector::with_clock(
        config(root.link.clone(), 5, Sampling::Interval),
        clock.clone(),
    );
    let first = collector.scan().unwrap();
    assert_eq!(first.top, Top::Sampling, "no earlier sample: not an error");

    root.point_to("psi_cpu_starved_next_sample");
    clock.advance(Duration::from_secs(10));
    let second = collector.scan().unwrap();
    assert_eq!(ranking(&second.top), STARVED_TOP_5);
    assert_eq!(resource(&second, Resource::Cpu).some_avg60, Some(84.00));
}

#[test]
fn interval_mode_starts_over_after_a_tick_below_threshold() {
    let root = SwitchedRoot::to("psi_cpu_starved");
    let clock = FakeClock::new();
    let collector = PressureCollector::with_clock(
        config(root.link.clone(), 5, Sampling::Interval),
        clock.clone(),
    );
    assert_eq!(collector.scan().unwrap().top, Top::Sampling);
    root.point_to("psi_calm");
    clock.advance(Duration::from_secs(10));
    assert_eq!(collector.scan().unwrap().top, Top::BelowThreshold);
    root.point_to("psi_cpu_starved_next_sample");
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        collector.scan().unwrap().top,
        Top::Sampling,
        "a sample from two ticks ago would average over a calm tick"
    );
}

#[test]
fn interval_mode_starts_over_after_a_failed_collection() {
    let root = SwitchedRoot::to("psi_cpu_starved");
    let clock = FakeClock::new();
    let collector = PressureCollector::with_clock(
        config(root.link.clone(), 5, Sampling::Interval),
        clock.clone(),
    );
    assert_eq!(collector.scan().unwrap().top, Top::Sampling);
    root.point_to("psi_garbage");
    clock.advance(Duration::from_secs(10));
    assert!(collector.scan().is_err());
    root.point_to("psi_cpu_starved_next_sample");
    clock.advance(Duration::from_secs(10));
    assert_eq!(collector.scan().unwrap().top, Top::Sampling);
}

#[test]
fn no_time_between_samples_gives_no_rate() {
    let root = SwitchedRoot::to("psi_cpu_starved");
    let collector = PressureCollector::with_clock(
        config(root.link.clone(), 5, Sampling::Interval),
        FakeClock::new(),
    );
    collector.scan().unwrap();
    root.point_to("psi_cpu_starved_next_sample");
    assert_eq!(collector.scan().unwrap().top, Top::Sampling);
}

#[test]
fn without_psi_cpu_falls_back_to_loadavg_and_memory_and_io_are_unavailable() {
    let scan = scan("psi_absent_loadavg_only");
    let cpu = resource(&scan, Resource::Cpu);
    assert_eq!(cpu.source, Source::Loadavg);
    assert_eq!(
        (
            cpu.some_avg10,
            cpu.some_avg60,
            cpu.some_avg300,
            cpu.full_avg60
        ),
        (None, Some(50.0), Some(40.0), None),
        "load 1.00 and 0.80 on 2 CPUs"
    );
    assert_eq!(
        cpu.threshold_pct, 150.0,
        "the load threshold, not the cpu one"
    );
    assert!(!cpu.at_or_above, "a load of 0.5 per CPU is a healthy host");
    for resource_ in [Resource::Memory, Resource::Io] {
        let r = resource(&scan, resource_);
        assert_eq!(r.source, Source::Unavailable, "{resource_:?}");
        assert_eq!(
            (r.some_avg10, r.some_avg60, r.some_avg300, r.full_avg60),
            (None, None, None, None)
        );
        assert!(!r.at_or_above);
    }
    assert_eq!(scan.top, Top::BelowThreshold);
}

#[test]
fn a_high_load_is_compared_with_the_load_threshold_and_samples() {
    let collector = PressureCollector::with_clock(
        config(
            fixture("psi_absent_load_high"),
            5,
            Sampling::Wait(Duration::from_secs(1)),
        ),
        FakeClock::new(),
    );
    let scan = collector.scan().unwrap();
    let cpu = resource(&scan, Resource::Cpu);
    assert_eq!(
        (cpu.some_avg60, cpu.some_avg300),
        (Some(170.0), Some(155.0))
    );
    assert!(cpu.at_or_above);
    // The tree does not change during the wait: sampled, and nobody used CPU.
    assert_eq!(
        scan.top,
        Top::Sampled {
            interval_s: 1.0,
            processes: vec![],
            vanished: 0,
            unreadable: 0
        }
    );
}

#[test]
fn partial_psi_reads_cpu_without_full_and_the_rest_as_unavailable() {
    let scan = scan("psi_partial");
    let cpu = resource(&scan, Resource::Cpu);
    assert_eq!(
        (cpu.source, cpu.some_avg60, cpu.full_avg60),
        (Source::Psi, Some(9.50), None)
    );
    assert_eq!(
        resource(&scan, Resource::Memory).source,
        Source::Unavailable,
        "an empty file"
    );
    assert_eq!(
        resource(&scan, Resource::Io).source,
        Source::Unavailable,
        "a missing file"
    );
}

#[test]
fn garbage_psi_fails_the_collection_naming_the_file() {
    let err = PressureCollector::new(config(fixture("psi_garbage"), 5, Sampling::Interval))
        .scan()
        .unwrap_err();
    match &err {
        CollectError::Malformed { path, reason } => {
            assert!(path.ends_with("psi_garbage/pressure/cpu"), "{err}");
            assert!(reason.contains("avg60"), "{err}");
        }
        other => panic!("{other}"),
    }
}

/// A proc tree in a temp dir, for cases that differ from a scenario in one file.
struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

const CALM: &str = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";

impl Tree {
    /// Calm PSI for all three, a 2-CPU `stat`, a calm `loadavg`, and pid 1.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tree = Self {
            root: dir.path().to_path_buf(),
            _dir: dir,
        };
        for name in ["cpu", "memory", "io"] {
            tree.file(&format!("pressure/{name}"), CALM);
        }
        tree.file(
            "stat",
            "cpu  2 0 2 20 0 0 0 0 0 0\ncpu0 1 0 1 10 0 0 0 0 0 0\ncpu1 1 0 1 10 0 0 0 0 0 0\n",
        );
        tree.file("loadavg", "0.10 0.10 0.10 1/50 100\n");
        tree.file(
            "1/stat",
            "1 (init) S 0 1 1 0 -1 0 0 0 0 0 10 10 0 0 20 0 1 0 2 1000 100 0 0 0 0 0 0 0 0 0 0 \
             0 0 0 17 0 0 0 0 0 0\n",
        );
        tree
    }

    fn file(&self, path: &str, contents: impl AsRef<[u8]>) {
        let path = self.root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    fn remove(&self, path: &str) {
        let path = self.root.join(path);
        if path.is_dir() {
            fs::remove_dir_all(path).unwrap();
        } else {
            fs::remove_file(path).unwrap();
        }
    }

    fn scan(&self) -> Result<PressureScan, CollectError> {
        PressureCollector::with_clock(
            config(self.root.clone(), 5, Sampling::Wait(Duration::from_secs(1))),
            FakeClock::new(),
        )
        .scan()
    }
}

fn psi_with_avg60(avg60: &str) -> String {
    format!("some avg10=0.00 avg60={avg60} avg300=0.00 total=0\n")
}

#[test]
fn each_threshold_is_reached_at_its_value_not_before() {
    // (case, file, contents, resource, at_or_above)
    let cases: &[(&str, &str, String, Resource, bool)] = &[
        (
            "cpu 49.99 < 50",
            "pressure/cpu",
            psi_with_avg60("49.99"),
            Resource::Cpu,
            false,
        ),
        (
            "cpu 50.00 = 50",
            "pressure/cpu",
            psi_with_avg60("50.00"),
            Resource::Cpu,
            true,
        ),
        (
            "cpu 50.01 > 50",
            "pressure/cpu",
            psi_with_avg60("50.01"),
            Resource::Cpu,
            true,
        ),
        (
            "memory 9.99 < 10",
            "pressure/memory",
            psi_with_avg60("9.99"),
            Resource::Memory,
            false,
        ),
        (
            "memory 10.00 = 10",
            "pressure/memory",
            psi_with_avg60("10.00"),
            Resource::Memory,
            true,
        ),
        (
            "io 29.99 < 30",
            "pressure/io",
            psi_with_avg60("29.99"),
            Resource::Io,
            false,
        ),
        (
            "io 30.00 = 30",
            "pressure/io",
            psi_with_avg60("30.00"),
            Resource::Io,
            true,
        ),
    ];
    for (case, file, contents, resource_, expected) in cases {
        let tree = Tree::new();
        tree.file(file, contents);
        let scan = tree.scan().unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(resource(&scan, *resource_).at_or_above, *expected, "{case}");
        let sampled = matches!(scan.top, Top::Sampled { .. });
        assert_eq!(sampled, *expected, "{case}: samples exactly when above");
    }
}

#[test]
fn the_load_threshold_is_reached_at_its_value_not_before() {
    // On 2 CPUs, a 1-minute load of 2.99 is 149.5%, of 3.00 is 150%.
    for (case, load, expected) in [
        ("load 2.99 on 2 CPUs < 150%", "2.99", false),
        ("load 3.00 on 2 CPUs = 150%", "3.00", true),
        ("load 3.02 on 2 CPUs > 150%", "3.02", true),
    ] {
        let tree = Tree::new();
        tree.remove("pressure");
        tree.file("loadavg", format!("{load} 0.50 0.50 1/50 100\n"));
        let scan = tree.scan().unwrap();
        let cpu = resource(&scan, Resource::Cpu);
        assert_eq!(cpu.source, Source::Loadavg, "{case}");
        assert_eq!(cpu.at_or_above, expected, "{case}: {:?}", cpu.some_avg60);
    }
}

#[test]
fn each_broken_source_fails_the_collection_naming_its_path() {
    // (case, how the tree is broken, the file the error must name)
    type Break = fn(&Tree);
    let cases: &[(&str, Break, &str)] = &[
        (
            "memory PSI is garbage",
            |t| t.file("pressure/memory", "junk\n"),
            "pressure/memory",
        ),
        (
            "io PSI has a NaN",
            |t| t.file("pressure/io", psi_with_avg60("NaN")),
            "pressure/io",
        ),
        (
            "cpu PSI is not UTF-8",
            |t| t.file("pressure/cpu", b"some \xff\xfe\n"),
            "pressure/cpu",
        ),
        (
            "cpu PSI is too long to be PSI",
            |t| t.file("pressure/cpu", "some ".repeat(2000)),
            "pressure/cpu",
        ),
        (
            "cpu PSI is a directory",
            |t| {
                t.remove("pressure/cpu");
                fs::create_dir(t.root.join("pressure/cpu")).unwrap();
            },
            "pressure/cpu",
        ),
        (
            "pressure is a file",
            |t| {
                t.remove("pressure");
                t.file("pressure", "");
            },
            "pressure/cpu",
        ),
        (
            "no PSI, loadavg malformed",
            |t| {
                t.remove("pressure");
                t.file("loadavg", "high\n");
            },
            "loadavg",
        ),
        (
            "no PSI, stat missing",
            |t| {
                t.remove("pressure");
                t.remove("stat");
            },
            "stat",
        ),
        (
            "no PSI, stat without cpuN lines",
            |t| {
                t.remove("pressure");
                t.file("stat", "cpu  1 2 3\nintr 5\n");
            },
            "stat",
        ),
    ];
    for (case, break_tree, names) in cases {
        let tree = Tree::new();
        break_tree(&tree);
        let err = tree
            .scan()
            .err()
            .unwrap_or_else(|| panic!("{case}: collected"));
        let expected = tree.root.join(names);
        assert!(
            err.to_string().contains(expected.to_str().unwrap()),
            "{case}: {err}"
        );
    }
}

#[test]
fn no_cpu_source_at_all_is_an_error_naming_both() {
    let tree = Tree::new();
    tree.remove("pressure");
    tree.remove("loadavg");
    match tree.scan() {
        Err(CollectError::NoSource { path, fallback }) => {
            assert_eq!(path, tree.root.join("pressure/cpu"));
            assert_eq!(fallback, tree.root.join("loadavg"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_empty_cpu_file_falls_back_to_loadavg_and_the_others_stay_psi() {
    let tree = Tree::new();
    tree.file("pressure/cpu", "");
    tree.file("pressure/memory", psi_with_avg60("12.50"));
    let scan = tree.scan().unwrap();
    assert_eq!(resource(&scan, Resource::Cpu).source, Source::Loadavg);
    assert_eq!(resource(&scan, Resource::Cpu).some_avg60, Some(5.0));
    let memory = resource(&scan, Resource::Memory);
    assert_eq!((memory.source, memory.at_or_above), (Source::Psi, true));
}

#[test]
fn sampling_that_cannot_see_pid_1_is_reported_beside_the_pressure() {
    let tree = Tree::new();
    tree.file("pressure/cpu", psi_with_avg60("75.00"));
    tree.remove("1");
    tree.file(
        "4242/stat",
        "4242 (x) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 2 1 1 0 0 0 0 0",
    );
    let scan = tree.scan().unwrap();
    assert!(resource(&scan, Resource::Cpu).at_or_above);
    match &scan.top {
        Top::Failed { path, reason } => {
            assert_eq!(path, &tree.root);
            assert!(reason.contains("pid 1"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_scan_serialises_as_facts() {
    let (_root, collector) = starved_wait(1, Duration::from_secs(10));
    let json = serde_json::to_value(collector.scan().unwrap()).unwrap();
    assert_eq!(json["resources"][0]["resource"], "cpu");
    assert_eq!(json["resources"][0]["source"], "psi");
    assert_eq!(json["resources"][0]["full_avg60"], serde_json::Value::Null);
    assert_eq!(json["top"]["status"], "sampled");
    assert_eq!(json["top"]["processes"][0]["pid"], 4121);
    assert_eq!(
        json["top"]["processes"][0]["container"]["runtime"],
        "docker"
    );
    let unavailable = serde_json::to_value(scan("psi_partial")).unwrap();
    assert_eq!(unavailable["resources"][2]["source"], "unavailable");
    assert_eq!(unavailable["top"]["status"], "below_threshold");
}

/// Kills and reaps a child when dropped, so a failing assert leaves no busy loop behind.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_busy_loop_on_the_live_host_is_among_the_top_consumers() {
    let busy = ChildGuard(
        Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = busy.0.id();
    // Thresholds of 0: on this host, the sampling is what is under test, not the pressure.
    let thresholds = Thresholds {
        cpu_pct: 0.0,
        memory_pct: 0.0,
        io_pct: 0.0,
        load_pct: 0.0,
    };
    let collector = PressureCollector::with_clock(
        PressureConfig::with_system_units(
            PathBuf::from("/proc"),
            thresholds,
            50,
            Sampling::Wait(Duration::from_millis(500)),
        ),
        Arc::new(SystemClock),
    );
    let scan = collector.scan().unwrap();
    let Top::Sampled { interval_s, .. } = &scan.top else {
        panic!("{:?}", scan.top);
    };
    assert!(*interval_s >= 0.5, "{interval_s}");
    let entry = scan
        .top
        .processes()
        .iter()
        .find(|p| p.pid == pid)
        .unwrap_or_else(|| panic!("pid {pid} not in {:?}", ranking(&scan.top)));
    // One core is 100; a shared 2-core machine may give it less, never nothing.
    assert!(entry.cpu_pct >= 20.0, "{entry:?}");
    assert_eq!(entry.comm, "sh");
    assert_eq!(entry.cmdline, "sh -c while :; do :; done");
    assert!(entry.container.is_some(), "this host's cgroup file parses");
}

/// Set in the traced child: `<root>\t<ticks>\t<mode>`.
const TRACE_CHILD: &str = "PRESSURE_SCENARIOS_TRACE_CHILD";

/// In the child that strace runs, does the traced work and returns true.
fn run_as_trace_child() -> bool {
    let Ok(spec) = std::env::var(TRACE_CHILD) else {
        return false;
    };
    let mut fields = spec.split('\t');
    let root = PathBuf::from(fields.next().unwrap());
    let ticks: usize = fields.next().unwrap().parse().unwrap();
    let collector = match fields.next().unwrap() {
        "switch" => {
            let link = root.clone();
            let clock =
                FakeClock::with_hook(None, move || point(&link, "psi_cpu_starved_next_sample"));
            PressureCollector::with_clock(
                config(root, 5, Sampling::Wait(Duration::from_secs(10))),
                clock,
            )
        }
        _ => PressureCollector::new(config(root, 5, Sampling::Interval)),
    };
    for _ in 0..ticks {
        collector.scan().unwrap();
    }
    true
}

/// What the traced child opened under `root`, relative to it ("" for the root itself), in order.
fn opened_under(root: &Path, test: &str, ticks: usize, mode: &str) -> Vec<String> {
    let trace = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"])
        .arg(trace.path())
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads=1", "-q"])
        .env(
            TRACE_CHILD,
            format!("{}\t{ticks}\t{mode}", root.to_str().unwrap()),
        )
        .stdout(Stdio::null())
        .status()
        .expect("strace is installed (apt-get install strace; .ci/run does)");
    assert!(status.success(), "{status}");
    let text = fs::read_to_string(trace.path()).unwrap();
    let root = root.to_str().unwrap();
    let prefix = format!("{root}/");
    let opened: Vec<String> = text
        .lines()
        .filter_map(|line| {
            let start = line.find('"')? + 1;
            let path = &line[start..start + line[start..].find('"')?];
            if path == root {
                return Some(String::new());
            }
            path.strip_prefix(&prefix).map(str::to_owned)
        })
        .collect();
    assert!(
        text.lines().count() > opened.len(),
        "the trace saw the test binary start, not just the collector"
    );
    opened
}

#[test]
fn below_threshold_a_tick_opens_the_three_psi_files_and_nothing_else() {
    if run_as_trace_child() {
        return;
    }
    let root = fixture("psi_calm").canonicalize().unwrap();
    let opened = opened_under(
        &root,
        "below_threshold_a_tick_opens_the_three_psi_files_and_nothing_else",
        3,
        "interval",
    );
    let tick = ["pressure/cpu", "pressure/memory", "pressure/io"];
    let expected: Vec<&str> = tick.iter().cycle().take(3 * tick.len()).copied().collect();
    assert_eq!(opened, expected, "three ticks, three opens each");
}

#[test]
fn without_psi_a_calm_tick_opens_loadavg_and_stat_after_the_absent_cpu_file() {
    if run_as_trace_child() {
        return;
    }
    let root = fixture("psi_absent_loadavg_only").canonicalize().unwrap();
    let opened = opened_under(
        &root,
        "without_psi_a_calm_tick_opens_loadavg_and_stat_after_the_absent_cpu_file",
        1,
        "interval",
    );
    assert_eq!(
        opened,
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
fn above_threshold_a_tick_reads_every_stat_and_only_the_top_cmdlines_and_cgroups() {
    if run_as_trace_child() {
        return;
    }
    let root = SwitchedRoot::to("psi_cpu_starved");
    let opened = opened_under(
        &root.link,
        "above_threshold_a_tick_reads_every_stat_and_only_the_top_cmdlines_and_cgroups",
        1,
        "switch",
    );
    let count = |path: &str| opened.iter().filter(|p| *p == path).count();
    for file in ["pressure/cpu", "pressure/memory", "pressure/io"] {
        assert_eq!(count(file), 1, "{file}: {opened:?}");
    }
    assert_eq!(count(""), 2, "the root listed once per sample");
    assert_eq!(
        count("640/stat"),
        2,
        "every process's stat, in both samples"
    );
    assert_eq!(count("600/stat"), 1, "600 exits between the samples");
    let mut detailed: Vec<&str> = opened
        .iter()
        .filter_map(|p| p.strip_suffix("/cmdline"))
        .collect();
    detailed.sort_unstable();
    assert_eq!(
        detailed,
        ["4121", "4122", "4300", "500", "700"],
        "the top 5 only"
    );
    let mut cgroups: Vec<&str> = opened
        .iter()
        .filter_map(|p| p.strip_suffix("/cgroup"))
        .collect();
    cgroups.sort_unstable();
    assert_eq!(
        cgroups, detailed,
        "a cgroup file for each top consumer only"
    );
    for path in &opened {
        let allowed = path.is_empty()
            || path.starts_with("pressure/")
            || path.ends_with("/stat")
            || path.ends_with("/cmdline")
            || path.ends_with("/cgroup");
        assert!(allowed, "opened {path}");
    }
}

#[test]
fn the_collector_is_named_pressure_and_observes_a_pressure_scan() {
    use watchdog_collectors::{CollectRequest, Collector, Observation};
    let collector = PressureCollector::with_clock(
        config(fixture("psi_calm"), 5, Sampling::Interval),
        FakeClock::new(),
    );
    assert_eq!(collector.name(), "pressure");
    match collector.collect(&CollectRequest::default()).unwrap() {
        Observation::Pressure(scan) => assert_eq!(scan.top, Top::BelowThreshold),
        other => panic!("{other:?}"),
    }
}
