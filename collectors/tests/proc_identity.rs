//! The proc collector's identity cache, on this machine's live /proc and on trees that are not
//! procfs: a long-lived collector catches a process that execs into a match within the rescan,
//! a reused pid is a new instance (the kernel gives it a new inode number: measured here), a
//! tree on ext4 or tmpfs is never remembered, and an strace of steady ticks shows which files a
//! tick opens. Ticks are driven by calling `scan` on one collector; nothing sleeps to
//! synchronise, waits are on a condition with a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use watchdog_collectors::pattern::PatternSet;
use watchdog_collectors::proc::{ProcCollector, ProcConfig, ProcScan};
use watchdog_collectors::proc_cache::rescan_due;
use watchdog_collectors::proc_root::list_entries;

fn collector(root: &Path, pattern: &str, rescan_ticks: u32) -> ProcCollector {
    keeping(root, pattern, rescan_ticks, 0)
}

/// As [`collector`], with at most `keep_open` matches' `stat` kept open between ticks.
fn keeping(root: &Path, pattern: &str, rescan_ticks: u32, keep_open: usize) -> ProcCollector {
    ProcCollector::new(ProcConfig {
        rescan_ticks,
        keep_open,
        ..ProcConfig::with_system_units(
            root.to_path_buf(),
            PatternSet::parse(pattern).unwrap(),
            PatternSet::default(),
        )
    })
}

fn pids(scan: &ProcScan) -> Vec<u32> {
    scan.processes.iter().map(|p| p.pid).collect()
}

/// Waits until `done` holds, for at most 10 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

fn cmdline(pid: u32) -> Vec<u8> {
    fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
}

/// Killed and reaped when dropped, so a failing assert leaves nothing behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A shell that, once a line arrives on its stdin, execs into another shell whose
/// command line holds `<a><b>` (and which waits on the same stdin). The first shell's command
/// line holds `a` and `b` apart, so a pattern `<a><b>` matches only after the exec.
const EXEC_INTO: &str = "read _; exec sh -c 'read _; :' \"$1$2\"";

fn exec_on_demand(a: &str, b: &str) -> Reaped {
    Reaped(
        Command::new("sh")
            .args(["-c", EXEC_INTO, "sh", a, b])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("sh runs"),
    )
}

#[test]
fn a_process_that_execs_into_a_match_is_caught_within_the_rescan() {
    const RESCAN: u32 = 4;
    let (a, b) = ("pytest-exec-", std::process::id().to_string());
    let pattern = format!("{a}{b}");
    let mut child = exec_on_demand(a, &b);
    let pid = child.0.id();
    // The same process instance, known since the first tick, before and after its exec.
    let watcher = collector(Path::new("/proc"), &pattern, RESCAN);
    let fresh_each_tick = || collector(Path::new("/proc"), &pattern, RESCAN);
    wait_for("the shell's exec", || cmdline(pid).starts_with(b"sh\0"));
    assert!(!pids(&watcher.scan().unwrap()).contains(&pid));

    writeln!(child.0.stdin.as_mut().unwrap()).unwrap();
    wait_for("the exec into the matching shell", || {
        cmdline(pid).ends_with(format!("{pattern}\0").as_bytes())
    });
    assert!(
        pids(&fresh_each_tick().scan().unwrap()).contains(&pid),
        "a fresh collector (as `once` builds) sees it at once"
    );
    // Ticks 1, 2, ...: the watcher remembers the shell until the pid's rescan tick.
    let caught_at = (1..=u64::from(RESCAN))
        .find(|_| pids(&watcher.scan().unwrap()).contains(&pid))
        .unwrap_or_else(|| panic!("not caught within {RESCAN} ticks"));
    let due_at = (1..).find(|&t| rescan_due(pid, t, RESCAN.into())).unwrap();
    assert_eq!(
        caught_at, due_at,
        "caught on its rescan tick, not before: the shell's command line was remembered"
    );
    let later = watcher.scan().unwrap();
    let process = later.processes.iter().find(|p| p.pid == pid).unwrap();
    assert_eq!(process.cmdline, format!("sh -c read _; : {pattern}"));
}

/// The inode number `/proc`'s listing gives `pid`, as the collector sees it.
fn listed_ino(pid: u32) -> Option<u64> {
    list_entries(Path::new("/proc"))
        .unwrap()
        .into_iter()
        .find(|e| e.pid == pid)
        .map(|e| e.ino)
}

/// Spawns `sh -c 'read _' <args>` so that it gets pid `pid`, by setting the last pid handed
/// out just below it (root only); `None` when another process took the pid first.
fn spawn_at(pid: u32, args: &[&str]) -> Option<Reaped> {
    fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
        .expect("steering pid reuse needs root (CAP_SYS_ADMIN): write ns_last_pid");
    let child = Reaped(
        Command::new("sh")
            .args(["-c", "read _"])
            .args(args)
            .stdin(Stdio::piped())
            .spawn()
            .expect("sh runs"),
    );
    (child.0.id() == pid).then_some(child)
}

#[test]
fn a_reused_pid_gets_a_new_inode_and_is_read_as_a_new_process() {
    const REUSES: usize = 50;
    let marker = format!("pytest-reuse-{}", std::process::id());
    let watcher = collector(Path::new("/proc"), &marker, 1000);
    let (mut reused, mut tries) = (Vec::new(), 0);
    while reused.len() < REUSES {
        tries += 1;
        assert!(tries < 10 * REUSES, "pids were taken by others too often");
        // A non-matching shell, remembered by the watcher...
        let first = Reaped(
            Command::new("sh")
                .args(["-c", "read _"])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let pid = first.0.id();
        let before = listed_ino(pid).expect("listed while alive");
        assert!(!pids(&watcher.scan().unwrap()).contains(&pid));
        drop(first);
        // ...then, under the same pid, a matching one: the watcher must see it at once.
        let Some(second) = spawn_at(pid, &["sh", &marker]) else {
            continue;
        };
        // Between the two halves of its exec a process's cmdline reads empty (the parent is
        // let go before the new argv is in place), and an empty one is read again next tick.
        wait_for("the exec of the second shell", || {
            cmdline(pid).ends_with(format!("{marker}\0").as_bytes())
        });
        let after = listed_ino(pid).expect("listed while alive");
        let scan = watcher.scan().unwrap();
        assert!(
            pids(&scan).contains(&pid),
            "pid {pid} reused (inode {before} -> {after}) was served from the cache after {} reuses: {:?}", reused.len(), scan
        );
        reused.push((pid, before, after));
        drop(second);
    }
    let same: Vec<_> = reused.iter().filter(|(_, b, a)| b == a).collect();
    assert!(same.is_empty(), "a reused pid kept its inode: {same:?}");
    println!("{REUSES} pids reused in {tries} tries, each with a new inode: {reused:?}");
}

/// Start time of `pid` in clock ticks, from its `stat`.
fn start_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    after_comm.split(' ').nth(19).unwrap().parse().unwrap()
}

#[test]
fn a_stat_kept_open_reads_its_own_process_or_nothing() {
    let marker = format!("pytest-kept-{}", std::process::id());
    let watcher = keeping(Path::new("/proc"), &marker, 1000, 64);
    let spawn = || {
        Reaped(
            Command::new("sh")
                .args(["-c", "read _", "sh", &marker])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    };
    let first = spawn();
    let pid = first.0.id();
    wait_for("the shell's exec", || {
        cmdline(pid).ends_with(format!("{marker}\0").as_bytes())
    });
    assert_eq!(pids(&watcher.scan().unwrap()), [pid]);
    assert_eq!(watcher.open_files(), 1, "the match's stat is kept open");
    let ticks = start_ticks(pid);
    assert_eq!(watcher.scan().unwrap().processes[0].start_ticks, ticks);

    // Reaped: the file still open reads ESRCH, and the process is gone, not unreadable.
    drop(first);
    let scan = watcher.scan().unwrap();
    assert_eq!(pids(&scan), [] as [u32; 0]);
    assert!(scan.unreadable.is_empty(), "{scan:?}");
    assert_eq!(watcher.open_files(), 0, "its file is closed");

    // The pid again, for another matching process: read as that one, with its start time.
    let mut reused = None;
    for _ in 0..50 {
        let second = spawn();
        let again = second.0.id();
        wait_for("the exec", || {
            cmdline(again).ends_with(format!("{marker}\0").as_bytes())
        });
        assert_eq!(pids(&watcher.scan().unwrap()), [again]);
        assert_eq!(watcher.open_files(), 1);
        drop(second);
        let Some(third) = spawn_at(again, &["sh", &marker]) else {
            watcher.scan().unwrap();
            continue;
        };
        wait_for("the exec of the reuser", || {
            cmdline(again).ends_with(format!("{marker}\0").as_bytes())
        });
        let scan = watcher.scan().unwrap();
        assert_eq!(pids(&scan), [again], "{scan:?}");
        assert_eq!(scan.processes[0].start_ticks, start_ticks(again));
        reused = Some(third);
        break;
    }
    assert!(reused.is_some(), "no pid could be reused in 50 tries");
}

/// A minimal tree: pid 1 and pid 42 running `argv`.
fn write_tree(root: &Path, argv: &str) {
    fs::create_dir_all(root.join("1")).unwrap();
    fs::write(root.join("uptime"), "1000.00 1.00\n").unwrap();
    fs::write(root.join("1/cmdline"), "init\0").unwrap();
    replace_pid(root, 42, argv);
}

fn replace_pid(root: &Path, pid: u32, argv: &str) {
    let dir = root.join(pid.to_string());
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("cmdline"), argv).unwrap();
    fs::write(
        dir.join("stat"),
        format!("{pid} (w) S 1 {pid} {pid} 0 -1 0 0 0 0 0 10 10 0 0 20 0 1 0 5000 1000 100 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"),
    )
    .unwrap();
}

fn a_tree_that_is_not_procfs_is_read_whole_every_tick(base: &Path) {
    let root = base.join("proc");
    write_tree(&root, "worker\0--id\x0042\0");
    let watcher = collector(&root, "pytest", 1000);
    for tick in 0..3 {
        assert_eq!(
            pids(&watcher.scan().unwrap()),
            [] as [u32; 0],
            "tick {tick}"
        );
    }
    // The directory is replaced; on ext4 and tmpfs the new one may well get the old inode.
    replace_pid(&root, 42, "python3\0-m\0pytest\0");
    assert_eq!(pids(&watcher.scan().unwrap()), [42], "{}", base.display());
    assert_eq!(watcher.footprint().0, 0, "nothing is remembered off procfs");
}

/// Writes `<root>/stat` with `count` tasks created since boot.
fn set_tasks_created(root: &Path, count: u64) {
    fs::write(
        root.join("stat"),
        format!("cpu  1 2 3 4\nctxt 10\nbtime 1700000000\nprocesses {count}\nprocs_running 1\n"),
    )
    .unwrap();
}

/// A pid directory whose `stat` names its process group.
fn add_pid(root: &Path, pid: u32, pgid: u32, argv: &str) {
    let dir = root.join(pid.to_string());
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("cmdline"), argv).unwrap();
    fs::write(
        dir.join("stat"),
        format!("{pid} (w) S 1 {pgid} {pgid} 0 -1 0 0 0 0 0 10 10 0 0 20 0 1 0 5000 1000 100 0 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"),
    )
    .unwrap();
}

#[test]
fn the_listing_is_taken_again_when_a_task_was_created_and_at_least_once_per_rescan() {
    const RESCAN: u32 = 4;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proc");
    write_tree(&root, "init\0");
    set_tasks_created(&root, 100);
    // A tree on ext4, trusted as procfs would be: the bench's way to measure the cache.
    let watcher = collector(&root, "pytest", RESCAN).trusting_inodes();
    // Tick 0 (all `once` runs) reads no count; tick 1 reads the first and lists the root.
    assert_eq!(pids(&watcher.scan().unwrap()), [] as [u32; 0], "tick 0");
    assert_eq!(pids(&watcher.scan().unwrap()), [] as [u32; 0], "tick 1");

    // A new pid directory without a new task: the count says nothing was created, so the
    // listing of tick 1 stands (a real kernel cannot do this; the tree can).
    add_pid(&root, 50, 50, "python3\0-m\0pytest\0");
    let kept = pids(&watcher.scan().unwrap());
    assert_eq!(kept, [] as [u32; 0], "tick 2: listing kept");
    set_tasks_created(&root, 101);
    let created = pids(&watcher.scan().unwrap());
    assert_eq!(created, [50], "tick 3: a task was created");

    // Without the count moving, the listing is still taken again within the rescan.
    add_pid(&root, 60, 60, "python3\0-m\0pytest\0");
    let seen_at = (4..4 + u64::from(RESCAN))
        .find(|_| pids(&watcher.scan().unwrap()) == [50, 60])
        .expect("pid 60 listed within the rescan");
    assert!(
        seen_at > 4,
        "tick {seen_at}: the listing of tick 3 was not kept at all"
    );

    // A process gone under a kept listing is gone, not unreadable; so is a group leader that
    // left without being read.
    add_pid(&root, 70, 70, "sleep\0");
    add_pid(&root, 71, 70, "python3\0-m\0pytest\0");
    set_tasks_created(&root, 102);
    let scan = watcher.scan().unwrap();
    let leader_of_71 = |scan: &ProcScan| {
        scan.processes
            .iter()
            .find(|p| p.pid == 71)
            .map(|p| p.group_leader_alive)
    };
    assert_eq!(leader_of_71(&scan), Some(true), "{scan:?}");
    fs::remove_dir_all(root.join("50")).unwrap();
    fs::remove_dir_all(root.join("70")).unwrap();
    let scan = watcher.scan().unwrap();
    assert_eq!(pids(&scan), [60, 71], "{scan:?}");
    assert!(scan.unreadable.is_empty(), "{scan:?}");
    assert_eq!(
        leader_of_71(&scan),
        Some(false),
        "the leader left: {scan:?}"
    );
}

#[test]
fn a_count_of_created_tasks_off_procfs_is_never_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proc");
    write_tree(&root, "init\0");
    set_tasks_created(&root, 100);
    let watcher = collector(&root, "pytest", 1000);
    watcher.scan().unwrap();
    add_pid(&root, 50, 50, "python3\0-m\0pytest\0");
    assert_eq!(
        pids(&watcher.scan().unwrap()),
        [50],
        "listed again every tick"
    );
}

#[test]
fn a_tree_on_a_disk_file_system_is_never_remembered() {
    a_tree_that_is_not_procfs_is_read_whole_every_tick(tempfile::tempdir().unwrap().path());
}

#[test]
fn a_tree_on_tmpfs_is_never_remembered() {
    let shm = Path::new("/dev/shm");
    assert!(
        shm.is_dir(),
        "/dev/shm (tmpfs) is where this test builds its tree"
    );
    a_tree_that_is_not_procfs_is_read_whole_every_tick(tempfile::tempdir_in(shm).unwrap().path());
}

#[test]
fn the_fixture_trees_are_never_remembered() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/proc/process_group");
    let watcher = collector(&root, "pytest", 1000);
    let first = watcher.scan().unwrap();
    assert_eq!(watcher.scan().unwrap(), first);
    assert_eq!(watcher.footprint().0, 0);
}

// --- strace of steady ticks -------------------------------------------------------------------

/// Set in the traced child: `<pattern>\t<rescan ticks>\t<keep open>\t<warm ticks>\t<traced>`.
const TRACE_CHILD: &str = "PROC_IDENTITY_TRACE_CHILD";
/// Opened (and not found) between ticks, so the trace can be cut into ticks: `<dir>/<tick>`.
const TICK_MARK: &str = "/nonexistent-proc-identity-tick";

/// In the traced child: warm ticks, then traced ticks, each announced by opening a marker.
fn run_as_trace_child() -> bool {
    let Ok(spec) = std::env::var(TRACE_CHILD) else {
        return false;
    };
    let fields: Vec<&str> = spec.split('\t').collect();
    let (rescan, keep_open, warm, traced): (u32, usize, u64, u64) = (
        fields[1].parse().unwrap(),
        fields[2].parse().unwrap(),
        fields[3].parse().unwrap(),
        fields[4].parse().unwrap(),
    );
    let watcher = keeping(Path::new("/proc"), fields[0], rescan, keep_open);
    for tick in 0..warm + traced {
        if tick >= warm {
            let _ = fs::File::open(format!("{TICK_MARK}/{tick}"));
        }
        watcher.scan().unwrap();
    }
    let _ = fs::File::open(format!("{TICK_MARK}/end"));
    true
}

/// What one traced tick did under /proc: the files it opened, `(pid, file)`, and the pids whose
/// `stat` it read again with `pread64` from a file kept open.
#[derive(Default)]
struct Traced {
    opened: Vec<(u32, String)>,
    reread: Vec<u32>,
}

/// The first quoted string of an strace line.
fn quoted(line: &str) -> Option<&str> {
    let start = line.find('"')? + 1;
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

/// What the traced child did in each traced tick.
fn traced_ticks(test: &str, spec: &str) -> BTreeMap<u64, Traced> {
    let trace = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=open,openat,openat2,pread64", "-o"])
        .arg(trace.path())
        .arg(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads=1", "-q"])
        .env(TRACE_CHILD, spec)
        .stdout(Stdio::null())
        .status()
        .expect("strace is installed (apt-get install strace; .ci/run does)");
    assert!(status.success(), "{status}");
    let text = fs::read_to_string(trace.path()).unwrap();
    let mut ticks = BTreeMap::new();
    let mut current: Option<u64> = None;
    for line in text.lines() {
        let Some(quoted) = quoted(line) else {
            continue;
        };
        if let Some(mark) = quoted.strip_prefix(&format!("{TICK_MARK}/")) {
            current = mark.parse().ok();
            if let Some(tick) = current {
                ticks.insert(tick, Traced::default());
            }
            continue;
        }
        let Some(tick) = current.and_then(|t| ticks.get_mut(&t)) else {
            continue;
        };
        if line.contains("pread64(") {
            // The text read: a `stat` starts with its pid.
            if let Some(pid) = quoted.split(' ').next().and_then(|p| p.parse().ok()) {
                tick.reread.push(pid);
            }
        } else if let Some((pid, file)) = quoted
            .strip_prefix("/proc/")
            .and_then(|rest| rest.split_once('/'))
        {
            if let Ok(pid) = pid.parse() {
                tick.opened.push((pid, file.to_string()));
            }
        }
    }
    ticks
}

/// Traces three steady ticks of a collector that keeps at most `keep_open` `stat` files open,
/// over 60 idle shells (6 matching, children of this test) and a zombie, and checks each tick.
fn steady_ticks(test: &str, keep_open: usize) {
    const RESCAN: u64 = 10;
    const WARM: u64 = 12;
    let marker = format!("pytest-steady-{keep_open}-{}", std::process::id());
    let spawn = |args: &[&str]| {
        Reaped(
            Command::new("sh")
                .args(["-c", "read _; :"])
                .args(args)
                .stdin(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    };
    let population: Vec<Reaped> = (0..60)
        .map(|i| {
            if i % 10 == 0 {
                spawn(&["sh", &marker])
            } else {
                spawn(&[])
            }
        })
        .collect();
    let matches: BTreeSet<u32> = population.iter().step_by(10).map(|c| c.0.id()).collect();
    let mut zombie = Command::new("true").spawn().unwrap();
    let zombie_pid = zombie.id();
    wait_for("the zombie", || {
        fs::read_to_string(format!("/proc/{zombie_pid}/stat")).is_ok_and(|s| s.contains(") Z "))
    });
    let mut ours: BTreeSet<u32> = population.iter().map(|c| c.0.id()).collect();
    ours.insert(zombie_pid);
    // kthreadd, pid 2 in the host's namespace: a kernel thread, remembered as one.
    let kthreadd = fs::read("/proc/2/cmdline").is_ok_and(|c| c.is_empty());
    if kthreadd {
        ours.insert(2);
    }

    let ticks = traced_ticks(test, &format!("{marker}\t{RESCAN}\t{keep_open}\t{WARM}\t3"));
    assert_eq!(ticks.len(), 3, "three traced ticks");
    let me = std::process::id();
    for (&tick, traced) in &ticks {
        let files = |name: &str| -> BTreeSet<u32> {
            traced
                .opened
                .iter()
                .filter(|(_, f)| f == name)
                .map(|(p, _)| *p)
                .collect()
        };
        let (cmdlines, stats, cgroups) = (files("cmdline"), files("stat"), files("cgroup"));
        let due: BTreeSet<u32> = ours
            .iter()
            .copied()
            .filter(|&p| rescan_due(p, tick, RESCAN))
            .collect();
        // cmdline: of our known processes, exactly those whose rescan tick this is; the zombie
        // and kthreadd too, remembered by what their `stat` said.
        let read: BTreeSet<u32> = cmdlines.intersection(&ours).copied().collect();
        assert_eq!(
            read, due,
            "tick {tick}: cmdline of known processes outside the rescan"
        );
        // stat: every match (opened, or read again from the file kept open), the zombie and
        // kthreadd only in their rescan tick, and the matches' one parent (this test).
        let rescanned: BTreeSet<u32> = due.difference(&matches).copied().collect();
        let opened: BTreeSet<u32> = stats.intersection(&ours).copied().collect();
        let reread: BTreeSet<u32> = traced.reread.iter().copied().collect();
        let rescanned_stats: BTreeSet<u32> = opened.difference(&matches).copied().collect();
        assert!(
            rescanned_stats.is_subset(&rescanned),
            "tick {tick}: stat {rescanned_stats:?} of known non-matches outside the rescan"
        );
        if keep_open >= matches.len() {
            assert_eq!(
                reread, matches,
                "tick {tick}: every match read from its open stat"
            );
            assert!(
                opened.is_disjoint(&matches),
                "tick {tick}: a match's stat opened again: {opened:?}"
            );
        } else {
            assert_eq!(
                opened
                    .intersection(&matches)
                    .copied()
                    .collect::<BTreeSet<_>>(),
                matches,
                "tick {tick}: stat of exactly the matches"
            );
            assert!(reread.is_empty(), "tick {tick}: nothing kept open");
        }
        assert!(stats.contains(&me), "tick {tick}: the matches' parent");
        // cgroup: of a match only when it is read anew, and a rescan keeps what was read.
        assert!(
            cgroups.is_disjoint(&ours),
            "tick {tick}: cgroup {cgroups:?} of a known match"
        );
        let listed = list_entries(Path::new("/proc")).unwrap().len();
        println!(
            "keep_open {keep_open}, tick {tick}: {} opens under /proc/<pid> ({} cmdline, {} stat, {} cgroup), {} stat read again, of {listed} processes",
            traced.opened.len(),
            cmdlines.len(),
            stats.len(),
            cgroups.len(),
            traced.reread.len()
        );
    }
    zombie.wait().unwrap();
    drop(population);
}

#[test]
fn a_steady_tick_opens_the_matches_stat_and_only_the_rescan_share_of_cmdlines() {
    if run_as_trace_child() {
        return;
    }
    steady_ticks(
        "a_steady_tick_opens_the_matches_stat_and_only_the_rescan_share_of_cmdlines",
        0,
    );
}

#[test]
fn a_steady_tick_reads_the_matches_stat_from_open_files_and_opens_only_the_rescan_share() {
    if run_as_trace_child() {
        return;
    }
    steady_ticks(
        "a_steady_tick_reads_the_matches_stat_from_open_files_and_opens_only_the_rescan_share",
        64,
    );
}

/// Python whose main thread waits for a line on stdin and then leaves with `pthread_exit`, while
/// a second thread keeps the process running: `ps` shows such a process as `Zl`. Its leader is a
/// zombie, so its `stat` says `Z` and its `cmdline` is empty, yet the process runs (and may be
/// the stuck job an alert was sent for: a test runner whose main thread ended while a worker
/// hangs).
const LEADER_LEAVES: &str = "import ctypes, sys, threading\n\
threading.Thread(target=threading.Event().wait).start()\n\
sys.stdin.readline()\n\
ctypes.CDLL(None).pthread_exit(None)\n";

/// A live thread of `pid` other than its leader.
fn live_threads(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter(|&tid| tid != pid)
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_match_whose_main_thread_exited_while_others_run_is_still_seen() {
    let marker = format!("pytest-zl-{}", std::process::id());
    let watcher = keeping(Path::new("/proc"), &marker, 1000, 64);
    let mut child = Reaped(
        Command::new("/usr/bin/python3")
            .args(["-c", LEADER_LEAVES, &marker])
            .stdin(Stdio::piped())
            .spawn()
            .expect("python3 runs"),
    );
    let pid = child.0.id();
    wait_for("python's second thread", || live_threads(pid) == 1);
    watcher.scan().unwrap();
    assert_eq!(pids(&watcher.scan().unwrap()), [pid], "seen while whole");

    child.0.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    wait_for("the leader to be a zombie", || {
        fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
    });
    assert_eq!(live_threads(pid), 1, "the process still runs a thread");
    let scan = watcher.scan().unwrap();
    // A process that runs is not gone: missing from a successful scan, its alert recovers.
    assert!(
        pids(&scan).contains(&pid) || scan.unreadable.contains(&pid),
        "pid {pid} runs a thread but the scan neither saw it nor held it: {scan:?}"
    );
}

// --- a tree that starts hiding processes while a kept listing stands ---------------------------

mod sys {
    use std::ffi::{c_char, c_int, c_long, c_ulong, c_void, CString};
    use std::path::Path;

    extern "C" {
        fn mount(
            source: *const c_char,
            target: *const c_char,
            fstype: *const c_char,
            flags: c_ulong,
            data: *const c_void,
        ) -> c_int;
        fn umount2(target: *const c_char, flags: c_int) -> c_int;
        fn syscall(number: c_long, ...) -> c_long;
    }

    const MS_REMOUNT: c_ulong = 32;
    const MNT_DETACH: c_int = 2;
    #[cfg(target_arch = "x86_64")]
    const SYS: [c_long; 3] = [116, 119, 117]; // setgroups, setresgid, setresuid
    #[cfg(target_arch = "aarch64")]
    const SYS: [c_long; 3] = [159, 149, 147];

    fn c(path: &Path) -> CString {
        CString::new(path.as_os_str().as_encoded_bytes()).unwrap()
    }

    /// Mounts (or, with `remount`, remounts) a procfs instance at `at` with `options`. A libc
    /// call, not `mount(8)`: a fork would move the count of created tasks.
    pub fn proc(at: &Path, options: &str, remount: bool) -> bool {
        let (at, options) = (c(at), CString::new(options).unwrap());
        let flags = if remount { MS_REMOUNT } else { 0 };
        unsafe {
            mount(
                c"proc".as_ptr(),
                at.as_ptr(),
                c"proc".as_ptr(),
                flags,
                options.as_ptr().cast(),
            ) == 0
        }
    }

    pub fn unmount(at: &Path) {
        let at = c(at);
        unsafe { umount2(at.as_ptr(), MNT_DETACH) };
    }

    /// Makes the calling thread alone `id` (uid, gid, no supplementary groups): the raw
    /// syscalls, since glibc's wrappers would change every thread's. Group 0 would still see
    /// hidden processes (`gid=` of procfs defaults to it).
    pub fn thread_ids(id: u32) -> bool {
        let [setgroups, setresgid, setresuid] = SYS;
        unsafe {
            syscall(setgroups, 0usize, std::ptr::null::<u32>()) == 0
                && syscall(setresgid, id, id, id) == 0
                && syscall(setresuid, id, id, id) == 0
        }
    }
}

/// Unmounts the procfs instance when dropped.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        sys::unmount(&self.0);
    }
}

fn tasks_created(root: &Path) -> u64 {
    let stat = fs::read_to_string(root.join("stat")).unwrap();
    stat.lines()
        .find_map(|l| l.strip_prefix("processes "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A procfs instance remounted with `hidepid=invisible` hides every other user's process from a
/// collector that is not root: a fresh listing then lacks pid 1, and the scan fails as blind. A
/// listing kept from before the remount still shows them all, and each one's files, opened by
/// path, now read as gone: the match among them must not be reported gone (a recovery) while it
/// runs. Needs root (to mount, and to run the collector's thread as `nobody`).
#[test]
fn a_tree_that_starts_hiding_processes_under_a_kept_listing_is_not_a_scan_that_saw_them_go() {
    use std::sync::mpsc;
    let marker = format!("pytest-hidden-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proc");
    fs::create_dir(&root).unwrap();
    assert!(
        sys::proc(&root, "hidepid=0", false),
        "mount proc (needs root)"
    );
    let _mounted = Mounted(root.clone());
    // Root's, so hidden from `nobody` once the tree hides processes.
    let job = Reaped(
        Command::new("sh")
            .args(["-c", "read _", "sh", &marker])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = job.0.id();
    wait_for("the shell", || {
        cmdline(pid).ends_with(format!("{marker}\0").as_bytes())
    });

    // The collector's thread runs as nobody; it is made before any counted tick, since a thread
    // is a task the kernel counts.
    let (to_scanner, orders) = mpsc::channel::<()>();
    let (results, from_scanner) = mpsc::channel();
    let scanner_root = root.clone();
    let scanner_marker = marker.clone();
    let scanner = std::thread::spawn(move || {
        assert!(sys::thread_ids(65534), "nobody's ids");
        let watcher = keeping(&scanner_root, &scanner_marker, 1000, 0);
        while orders.recv().is_ok() {
            let scan = watcher.scan();
            // What the match's alert hangs on: whether it was seen, or held as unreadable.
            let summary = scan.map(|s| (pids(&s), s.unreadable.contains(&pid)));
            results.send(format!("{summary:?}")).unwrap();
        }
    });
    let scan = || {
        to_scanner.send(()).unwrap();
        from_scanner.recv().unwrap()
    };
    let seen = format!("Ok(([{pid}], false))");
    for attempt in 0..200 {
        assert!(sys::proc(&root, "hidepid=0", true), "remount hidepid=0");
        // Ticks 0 and 1 (the first listing after a count was read), then tick 2 hiding.
        assert_eq!(scan(), seen, "tick 0");
        let before = tasks_created(&root);
        assert_eq!(scan(), seen, "tick 1");
        assert!(
            sys::proc(&root, "hidepid=invisible", true),
            "remount hidepid=2"
        );
        let hidden = scan();
        if tasks_created(&root) != before {
            // Something on the host forked: the listing was taken again. Try again.
            println!("attempt {attempt}: a task was created, inconclusive");
            continue;
        }
        // Blind (no pid 1 listed), denied, or the match held: anything but "not there".
        assert!(
            hidden != "Ok(([], false))",
            "the running match {pid} read as gone (neither seen nor held) from a tree that only hid it: {hidden}"
        );
        drop(to_scanner);
        scanner.join().unwrap();
        return;
    }
    panic!("the host forked in every attempt");
}
