//! Once, and only once, across `kill -9`: the real binary over a fake tree of stuck pytest
//! processes, a local receiver that records every webhook, and the daemon killed at many
//! moments and restarted on the same state dir, both while entities fire and while they recover.
//!
//! Two ways of choosing the moment:
//! - strace, attached to the running daemon (`-f -p`), delivers SIGKILL at the Nth call of one
//!   of the syscalls that write or sync the database, for every N that one fire (then one
//!   recovery) makes, counted first by a run that only traces. strace counts calls per thread
//!   and per syscall name, so each name gets its own runs (`inject=fsync:...:when=N`): with the
//!   three names in one set, the Nth `pwrite64` always comes before the Nth `fsync`, and no
//!   sync would ever be hit. It attaches after start because every start writes the `-shm`
//!   file from the main thread; the tick's writes all come from the store's writer thread.
//! - a seeded loop of kills at pseudo-random delays after start.
//!
//! After each kill the daemon is started again, without strace, until it is stable: the
//! receiver holds every expected event and the store has nothing left to deliver. Sleeping only
//! chooses when to kill; every outcome is waited for as a condition with a deadline.
//!
//! What must hold at the end, among everything the receiver got: each entity has exactly one
//! distinct fire id and exactly one distinct recovery id, none missing, and the store agrees.
//! A resend of one id (its delivery mark was lost in the kill) is allowed, counted and printed.

mod common;

use common::{copy_tree, reap, Daemon, Webhooks, SECRET, WAIT};

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const HOST: &str = "crash-host";
/// Every stuck process the test starts is 2 h old in the fixture's clock: over the 60 min
/// threshold, so it fires at the first tick that sees it.
const STARTTIME: u64 = 9_280_000;
/// The syscalls with which SQLite writes and syncs the database, its WAL and its `-shm`.
const WRITES: [&str; 3] = ["pwrite64", "fdatasync", "fsync"];
/// Stuck processes per strace run: more than one, so a commit carries several events.
const GROUP: u32 = 2;

/// A fake /proc (the `orphaned_pytest` tree without its own pytest) and a state dir beside it.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&fixture(), &dir.path().join("proc"));
        // The fixture's own stuck pytest: the test starts its own, and knows each one.
        std::fs::remove_dir_all(dir.path().join("proc/7")).unwrap();
        Self { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("proc")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// An orphaned pytest with `pid` appears: built beside the tree and renamed in, so a tick
    /// sees all of it or nothing.
    fn start(&self, pid: u32) {
        let staged = self.dir.path().join(format!("staged-{pid}"));
        std::fs::create_dir(&staged).unwrap();
        let stat = std::fs::read_to_string(fixture().join("7/stat")).unwrap();
        let own = stat.replacen(
            "7 (pytest) S 1 7 7",
            &format!("{pid} (pytest) S 1 {pid} {pid}"),
            1,
        );
        assert_ne!(own, stat, "the fixture's stat starts as this test expects");
        std::fs::write(staged.join("stat"), own).unwrap();
        std::fs::copy(fixture().join("7/cmdline"), staged.join("cmdline")).unwrap();
        std::fs::rename(&staged, self.root().join(pid.to_string())).unwrap();
    }

    /// The process `pid` ends: its directory leaves the tree in one rename.
    fn end(&self, pid: u32) {
        let gone = self.dir.path().join(format!("gone-{pid}"));
        std::fs::rename(self.root().join(pid.to_string()), &gone).unwrap();
        std::fs::remove_dir_all(gone).unwrap();
    }
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proc/orphaned_pytest")
}

fn entity(pid: u32) -> String {
    format!("proc:{pid}:{STARTTIME}")
}

/// `watchdog run` over `host`, posting to `url`, with 1 s ticks and debug logs.
fn run(host: &Host, url: &str) -> Daemon {
    Daemon::run(&[
        ("WATCHDOG_PROC_ENABLED", "true".into()),
        ("WATCHDOG_PROC_ROOT", host.root().display().to_string()),
        ("WATCHDOG_STATE_DIR", host.state().display().to_string()),
        ("WATCHDOG_WEBHOOK_URL", url.into()),
        ("WATCHDOG_WEBHOOK_SECRET", SECRET.into()),
        ("WATCHDOG_HOST", HOST.into()),
        ("WATCHDOG_INTERVAL_S", "1".into()),
        ("WATCHDOG_RETRY_MAX_S", "1".into()),
        ("WATCHDOG_LOG", "watchdog=debug".into()),
        ("WATCHDOG_LISTEN", "off".into()),
    ])
}

/// Every webhook the receiver got, in order, kept across all the daemon's lives.
struct Ledger {
    hooks: Webhooks,
    /// (event, entity, id).
    got: Vec<(String, String, String)>,
}

impl Ledger {
    fn new() -> Self {
        Self {
            hooks: Webhooks::start(HOST, |_| 200),
            got: Vec::new(),
        }
    }

    fn pull(&mut self) {
        for received in self.hooks.pending() {
            let (event, _, entity) = received.what();
            self.got.push((event, entity, received.id().to_string()));
        }
    }

    fn has(&self, event: &str, pid: u32) -> bool {
        let entity = entity(pid);
        self.got.iter().any(|(e, n, _)| e == event && *n == entity)
    }
}

/// What the receiver must hold once the daemon is stable.
#[derive(Default, Clone)]
struct Expected {
    fired: Vec<u32>,
    ended: Vec<u32>,
}

impl Expected {
    fn met_by(&self, ledger: &Ledger) -> bool {
        self.fired.iter().all(|p| ledger.has("fire", *p))
            && self.ended.iter().all(|p| ledger.has("recovery", *p))
    }
}

/// Whether `daemon` is stable: the receiver holds every expected event and the store has no
/// delivery left. `false` while the daemon has not opened its database yet.
fn stable(daemon: &mut Daemon, host: &Host, ledger: &mut Ledger, expected: &Expected) -> bool {
    ledger.pull();
    let alive = daemon.child.try_wait().unwrap().is_none();
    alive && expected.met_by(ledger) && common::db::queued(&host.state(), "webhook").is_empty()
}

/// Starts the daemon without strace and waits until it is stable.
fn settle(host: &Host, ledger: &mut Ledger, expected: &Expected) -> Daemon {
    let mut daemon = run(host, &ledger.hooks.url.clone());
    daemon.logs.line_with(&["watchdog running"]);
    let deadline = Instant::now() + WAIT;
    while !stable(&mut daemon, host, ledger, expected) {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            panic!("the daemon exited while settling: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "not stable within {WAIT:?}: fired {:?}, ended {:?}, got {:?}",
            expected.fired,
            expected.ended,
            ledger.got
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon
}

/// strace attached to every thread of the running `daemon` with `args`; returns once it says
/// it is attached.
fn attach(daemon: &Daemon, args: &[String]) -> Daemon {
    let mut command = Command::new("strace");
    command
        .args(["-f", "-p", &daemon.pid().to_string()])
        .args(args);
    let strace = Daemon::spawn(&mut command, &[]);
    strace.logs.line_with(&["attached"]);
    strace
}

/// How many calls of each of [`WRITES`] the daemon makes, in its busiest thread, while `change`
/// is decided, committed, delivered and marked: strace attached, tracing only.
fn count_writes(
    daemon: &mut Daemon,
    host: &Host,
    ledger: &mut Ledger,
    expected: &Expected,
    change: impl FnOnce(),
) -> BTreeMap<&'static str, usize> {
    let trace = host.dir.path().join("trace");
    let mut strace = attach(
        daemon,
        &[
            "-e".into(),
            format!("trace={}", WRITES.join(",")),
            "-o".into(),
            trace.display().to_string(),
        ],
    );
    change();
    common::wait_until("the traced change to be stable", || {
        stable(daemon, host, ledger, expected)
    });
    // SIGINT detaches strace; the daemon goes on.
    strace.signal("-INT");
    strace.exit_within(Duration::from_secs(10));
    let text = std::fs::read_to_string(&trace).unwrap();
    // Lines are `<tid> <name>(...`; an interrupted call resumes as `<tid> <... name resumed>`.
    let mut per_thread: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(tid), Some(call)) = (words.next(), words.next()) else {
            continue;
        };
        if let Some(name) = WRITES.iter().find(|n| call.starts_with(&format!("{n}("))) {
            *per_thread.entry((tid, name)).or_default() += 1;
        }
    }
    WRITES
        .iter()
        .map(|name| {
            let most = per_thread
                .iter()
                .filter(|((_, n), _)| n == name)
                .map(|(_, count)| *count)
                .max()
                .unwrap_or(0);
            (*name, most)
        })
        .collect()
}

/// Under strace with one injection, applies `change` and waits until the daemon is killed by
/// it (`true`) or stable without being killed (`false`: this change made fewer calls than N;
/// the daemon is then killed here).
fn inject(
    daemon: &mut Daemon,
    host: &Host,
    ledger: &mut Ledger,
    expected: &Expected,
    (name, n): (&str, usize),
    change: impl FnOnce(),
) -> bool {
    let mut strace = attach(
        daemon,
        &[
            "-o".into(),
            "/dev/null".into(),
            "-e".into(),
            format!("trace={}", WRITES.join(",")),
            "-e".into(),
            format!("inject={name}:signal=SIGKILL:when={n}"),
        ],
    );
    change();
    let deadline = Instant::now() + WAIT;
    let killed = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            assert_eq!(
                status.signal(),
                Some(9),
                "{name} #{n}: the daemon ended otherwise than by the injected SIGKILL: {status}"
            );
            break true;
        }
        if stable(daemon, host, ledger, expected) {
            reap(&mut daemon.child);
            break false;
        }
        assert!(
            Instant::now() < deadline,
            "{name} #{n}: neither killed nor stable within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // strace ends with its tracee.
    strace.exit_within(Duration::from_secs(10));
    killed
}

/// Checks every entity of `pids` against what the receiver got and what the store holds, once
/// the daemon has stopped cleanly; returns the number of resends of an id already received.
fn assert_once_each(ledger: &mut Ledger, host: &Host, pids: &[u32]) -> usize {
    ledger.pull();
    let known: BTreeSet<String> = pids.iter().map(|p| entity(*p)).collect();
    let strangers: Vec<_> = ledger
        .got
        .iter()
        .filter(|(event, entity, _)| {
            !known.contains(entity) || !["fire", "recovery"].contains(&event.as_str())
        })
        .collect();
    assert!(strangers.is_empty(), "unexpected events: {strangers:?}");
    for pid in pids {
        for event in ["fire", "recovery"] {
            let ids: BTreeSet<&str> = ledger
                .got
                .iter()
                .filter(|(e, n, _)| e == event && *n == entity(*pid))
                .map(|(_, _, id)| id.as_str())
                .collect();
            assert_eq!(
                ids.len(),
                1,
                "{} has {} distinct {event} ids: {ids:?}",
                entity(*pid),
                ids.len()
            );
        }
    }
    let distinct: BTreeSet<&str> = ledger.got.iter().map(|(_, _, id)| id.as_str()).collect();
    assert_eq!(distinct.len(), pids.len() * 2);
    // The store decided exactly what the receiver got, and knows each was delivered.
    let stored = common::db::deliveries(&host.state(), "webhook");
    let stored_ids: BTreeSet<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        stored_ids, distinct,
        "the store's events are the received ones"
    );
    assert_eq!(stored.len(), distinct.len(), "{stored:?}");
    assert!(
        stored.iter().all(|(_, status)| status == "delivered"),
        "{stored:?}"
    );
    ledger.got.len() - distinct.len()
}

fn check_strace() {
    let status = Command::new("strace")
        .arg("-V")
        .output()
        .expect("strace is installed (apt-get install strace; .ci/run does)")
        .status;
    assert!(status.success(), "strace -V");
}

#[test]
fn a_kill_at_each_write_and_sync_of_a_fire_and_of_a_recovery_still_says_each_once() {
    check_strace();
    let started = Instant::now();
    let host = Host::new();
    let mut ledger = Ledger::new();
    let mut expected = Expected::default();
    let mut next_pid = 100;
    let mut group = || {
        let pids: Vec<u32> = (next_pid..next_pid + GROUP).collect();
        next_pid += GROUP;
        pids
    };
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut daemon = settle(&host, &mut ledger, &expected);

    // Phase A: fires. First count the calls one fire makes, then kill at each.
    let first = group();
    expected.fired.extend(&first);
    let counts = count_writes(&mut daemon, &host, &mut ledger, &expected, || {
        first.iter().for_each(|p| host.start(*p));
    });
    groups.push(first);
    eprintln!("one fire of {GROUP} entities, committed, delivered and marked: {counts:?}");
    assert!(
        counts["pwrite64"] > 0,
        "a fire writes the database: {counts:?}"
    );
    let points: Vec<(&str, usize)> = counts
        .iter()
        .flat_map(|(name, count)| (1..=*count).map(move |n| (*name, n)))
        .collect();
    let mut hits = (0, 0);
    for point in &points {
        let pids = group();
        expected.fired.extend(&pids);
        let killed = inject(&mut daemon, &host, &mut ledger, &expected, *point, || {
            pids.iter().for_each(|p| host.start(*p));
        });
        if killed {
            hits.0 += 1;
        } else {
            eprintln!("fire: {} #{} was not reached", point.0, point.1);
        }
        groups.push(pids);
        daemon = settle(&host, &mut ledger, &expected);
    }
    eprintln!(
        "fire: killed at {} of {} write and sync calls",
        hits.0,
        points.len()
    );

    // Phase B: recoveries, each of a group that fired above.
    let mut fired = groups.clone().into_iter();
    let first = fired.next().unwrap();
    expected.ended.extend(&first);
    let counts = count_writes(&mut daemon, &host, &mut ledger, &expected, || {
        first.iter().for_each(|p| host.end(*p));
    });
    eprintln!("one recovery of {GROUP} entities, committed, delivered and marked: {counts:?}");
    assert!(
        counts["pwrite64"] > 0,
        "a recovery writes the database: {counts:?}"
    );
    let points: Vec<(&str, usize)> = counts
        .iter()
        .flat_map(|(name, count)| (1..=*count).map(move |n| (*name, n)))
        .collect();
    for point in &points {
        let pids = match fired.next() {
            Some(pids) => pids,
            None => {
                // More calls in a recovery than in a fire: a fresh group fires first, cleanly.
                let pids = group();
                pids.iter().for_each(|p| host.start(*p));
                expected.fired.extend(&pids);
                groups.push(pids.clone());
                reap(&mut daemon.child);
                daemon = settle(&host, &mut ledger, &expected);
                pids
            }
        };
        expected.ended.extend(&pids);
        let killed = inject(&mut daemon, &host, &mut ledger, &expected, *point, || {
            pids.iter().for_each(|p| host.end(*p));
        });
        if killed {
            hits.1 += 1;
        } else {
            eprintln!("recovery: {} #{} was not reached", point.0, point.1);
        }
        daemon = settle(&host, &mut ledger, &expected);
    }
    eprintln!(
        "recovery: killed at {} of {} write and sync calls",
        hits.1,
        points.len()
    );

    // The groups no recovery point needed end in a clean run, which then stops cleanly.
    for pids in fired {
        pids.iter().for_each(|p| host.end(*p));
        expected.ended.extend(&pids);
    }
    reap(&mut daemon.child);
    let daemon = settle(&host, &mut ledger, &expected);
    daemon.stop();

    let all: Vec<u32> = groups.concat();
    let resent = assert_once_each(&mut ledger, &host, &all);
    eprintln!(
        "strace: {} entities, {} webhooks, {resent} resends of an id already received, {:.1} s",
        all.len(),
        ledger.got.len(),
        started.elapsed().as_secs_f64()
    );
    // A kill at a write of the marks after a delivery must resend: the kills did land there.
    assert!(hits.0 > 0 && hits.1 > 0, "strace killed nothing: {hits:?}");
}

/// splitmix64: a fixed seed gives the same delays on every run.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 0-300 ms, squared toward 0: a start, its first tick's commit and its deliveries all
    /// happen within about 20 ms here, the delivery marks are committed 100 ms later, and the
    /// next tick comes after 1 s. A third of the kills land in the first 30 ms.
    fn delay(&mut self) -> Duration {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        Duration::from_secs_f64(0.3 * u * u)
    }
}

/// How far the daemon got before a kill, from its own log.
fn moment(lines: &[String]) -> &'static str {
    let has = |text: &str| lines.iter().any(|l| l.contains(text));
    if has("\"delivered\"") || has(" delivered ") {
        "after a delivery"
    } else if has("tick done") {
        "after a tick, before any delivery"
    } else if has("watchdog running") {
        "running, before its first tick ended"
    } else {
        "while starting"
    }
}

#[test]
fn kills_at_seeded_random_moments_while_firing_and_recovering_still_say_each_once() {
    const KILLS_PER_PHASE: u32 = 40;
    let started = Instant::now();
    let host = Host::new();
    let mut ledger = Ledger::new();
    let mut expected = Expected::default();
    let mut seeded = Seeded(0x00c0_ffee_5eed);
    let mut moments: BTreeMap<&str, usize> = BTreeMap::new();
    let pids: Vec<u32> = (300..300 + KILLS_PER_PHASE).collect();

    let mut kill_after = |change: &dyn Fn()| {
        change();
        let mut daemon = run(&host, &ledger.hooks.url);
        std::thread::sleep(seeded.delay());
        reap(&mut daemon.child);
        *moments.entry(moment(&daemon.logs.rest())).or_default() += 1;
    };
    // Phase A: one more stuck process before each start, so every life has a fire to decide.
    for pid in &pids {
        kill_after(&|| host.start(*pid));
    }
    expected.fired.extend(&pids);
    // Phase B: one process ends before each start.
    for pid in &pids {
        kill_after(&|| host.end(*pid));
    }
    expected.ended.extend(&pids);
    let daemon = settle(&host, &mut ledger, &expected);
    daemon.stop();

    let resent = assert_once_each(&mut ledger, &host, &pids);
    eprintln!(
        "random: {} kills ({moments:?}), {} entities, {} webhooks, {resent} resends of an id \
         already received, {:.1} s",
        KILLS_PER_PHASE * 2,
        pids.len(),
        ledger.got.len(),
        started.elapsed().as_secs_f64()
    );
}
