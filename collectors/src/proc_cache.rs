//! What the proc collector remembers between ticks: one entry per process instance it has read.
//!
//! Owns the identity cache: per `(pid, inode)` whether the command line matched and, for a match,
//! its masked command line, its container, its start time and (within a budget) its `stat` file
//! kept open, so that a steady tick opens no `cmdline` of a process it already knows and reads a
//! match's `stat` without opening it. Owns the rescan schedule that re-reads every
//! identity once per `rescan_ticks` ticks, spread over them. Reads nothing itself (the collector
//! hands it the listing and what it read) and never keeps anything of a root that is not procfs.
//!
//! # Why the inode names an instance
//! On procfs, `proc_pid_make_inode()` (fs/proc/base.c) gives the inode of every new `/proc/<pid>`
//! directory a number from `get_next_ino()` (fs/inode.c): a 32-bit counter, handed out per cpu
//! in batches, shared with pipes, sockets and anonymous inodes. A pid that is reused is a new
//! `struct pid` and a new directory, so it gets a new number; only after the counter wraps
//! (2^32 inodes later) could it meet an old one, and the cached entry would also have to have
//! survived all that time with its pid free. The other way round is harmless: when the dentry of
//! a living process is evicted, its next lookup makes a new inode with a new number, and the
//! process is read again as if new. That costs a read, never a miss. `proc_fill_cache()` emits
//! inode number 1 for a directory it could not instantiate; such an entry is never cached.
//! `exec` keeps the pid and the inode and changes the command line: the rescan catches it.
//!
//! A `stat` kept open is tied to the process it was opened on (the `struct pid` of its inode),
//! not to the number: once that process is reaped it reads `ESRCH`, whoever has the pid since.
//!
//! On any other file system (a fixture on ext4, a synthetic tree on tmpfs) an inode number freed
//! by a replaced directory is handed out again at once, so there nothing is remembered: every
//! tick is a full scan.

use std::fs::File;

use crate::cgroup::Container;
use crate::proc_root::PidEntry;

/// Re-read every identity's command line once per this many ticks unless configured.
pub const DEFAULT_RESCAN_TICKS: u32 = 10;

/// What the collector knows of a matching process instance.
#[derive(Debug)]
pub(crate) struct Matched {
    /// Masked and cut, as [`crate::proc::ProcessInfo::cmdline`] carries it.
    pub cmdline: String,
    /// Its container, once read (`Some(None)`: read, and in none); `None` until then.
    pub container: Option<Option<Container>>,
    /// `starttime` from its `stat`: a `stat` that shows another is another process.
    pub start_ticks: u64,
    /// Its `stat`, kept open to be read again each tick (see [`Pass::keep`] for how many are).
    pub stat: Option<File>,
}

/// One remembered process instance. A non-match is 24 bytes and nothing on the heap.
#[derive(Debug)]
struct Known {
    ino: u64,
    pid: u32,
    matched: Option<Box<Matched>>,
}

/// What the cache says about one listed process this tick.
pub(crate) enum Lookup {
    /// Read its command line: it is new, another instance of its pid, or the root is not procfs.
    Unknown,
    /// A known instance due for its rescan: read its command line again. What it was is handed
    /// back, so a match that still matches keeps its open `stat` and its container.
    Due(Option<Box<Matched>>),
    /// A known instance whose command line did not match.
    NoMatch,
    /// A known matching instance.
    Match(Box<Matched>),
}

/// The identities, sorted by pid, and the tick counter that spreads the rescan.
#[derive(Debug)]
pub(crate) struct Identities {
    known: Vec<Known>,
    tick: u64,
    rescan_ticks: u64,
    /// At most this many matches keep their `stat` open.
    open_budget: usize,
    /// The last listing of the root, less the processes found gone since; empty off procfs.
    listing: Vec<PidEntry>,
    /// The kernel's count of created tasks, read just before that listing was taken.
    tasks_created: Option<u64>,
    /// The tick that took it.
    listed_at: u64,
}

impl Identities {
    pub(crate) fn new(rescan_ticks: u32, open_budget: usize) -> Self {
        Self {
            known: Vec::new(),
            tick: 0,
            rescan_ticks: u64::from(rescan_ticks.max(1)),
            open_budget,
            listing: Vec::new(),
            tasks_created: None,
            listed_at: 0,
        }
    }

    /// Whether the next [`Identities::begin`] starts the collector's first tick.
    pub(crate) fn first_tick(&self) -> bool {
        self.tick == 0
    }

    /// The last listing, to stand for this tick's, when the kernel has created no task since it
    /// was taken (`tasks_created`, read now, is the count read before it; see
    /// [`crate::proc_root::tasks_created`]) and it was taken fewer than `rescan_ticks` ticks ago.
    /// Without a new task no pid directory can have appeared: the listing can only have lost
    /// processes, which read as gone. Refreshing it once per rescan bounds what a wrong count
    /// could ever hide by the same delay as an `exec`. `None`: list the root. Call before
    /// [`Identities::begin`]; the listing is handed out once, and a scan that fails before
    /// [`Identities::finish`] leaves none.
    pub(crate) fn reuse_listing(&mut self, tasks_created: Option<u64>) -> Option<Vec<PidEntry>> {
        let listing = std::mem::take(&mut self.listing);
        let young = self.tick.wrapping_sub(self.listed_at) < self.rescan_ticks;
        let unchanged = tasks_created.is_some() && tasks_created == self.tasks_created;
        (unchanged && young && !listing.is_empty()).then_some(listing)
    }

    /// Keeps this tick's listing (less what it found gone) for the next: `fresh` when it was
    /// listed this tick, after `tasks_created` was read.
    pub(crate) fn keep_listing(
        &mut self,
        listing: Vec<PidEntry>,
        tasks_created: Option<u64>,
        fresh: bool,
    ) {
        if tasks_created.is_none() {
            return;
        }
        if fresh {
            // begin() has moved the counter past this tick.
            self.listed_at = self.tick.wrapping_sub(1);
        }
        self.tasks_created = tasks_created;
        self.listing = listing;
    }

    /// Starts a tick. `stable` is whether the root is procfs; off it, nothing is looked up or
    /// kept. What the pass does not hand back through [`Identities::finish`] is forgotten: a
    /// scan that fails half-way starts the next tick from nothing.
    pub(crate) fn begin(&mut self, stable: bool, listed: usize) -> Pass {
        let tick = self.tick;
        self.tick = self.tick.wrapping_add(1);
        let old = std::mem::take(&mut self.known);
        let next = if stable {
            Vec::with_capacity(listed)
        } else {
            Vec::new()
        };
        Pass {
            old: old.into_iter().peekable(),
            next,
            stable,
            tick,
            rescan_ticks: self.rescan_ticks,
            open_budget: self.open_budget,
            kept_open: 0,
        }
    }

    /// Ends a tick that succeeded: what it kept is what the next one knows.
    pub(crate) fn finish(&mut self, pass: Pass) {
        let mut next = pass.next;
        // Between ticks the list holds about as many entries as the root has processes; a
        // population that shrank gives its memory back rather than holding its peak.
        if next.capacity() > 2 * next.len() + 64 {
            next.shrink_to_fit();
        }
        self.known = next;
    }

    /// Whether an instance of `pid` is remembered.
    #[cfg(test)]
    pub(crate) fn knows(&self, pid: u32) -> bool {
        self.known.binary_search_by_key(&pid, |k| k.pid).is_ok()
    }

    /// How many matches keep their `stat` open.
    pub(crate) fn open_files(&self) -> usize {
        self.known
            .iter()
            .filter(|k| k.matched.as_ref().is_some_and(|m| m.stat.is_some()))
            .count()
    }

    /// How many identities are remembered, and the heap bytes they hold.
    pub(crate) fn footprint(&self) -> (usize, usize) {
        let matched: usize = self
            .known
            .iter()
            .filter_map(|k| k.matched.as_deref())
            .map(|m| {
                std::mem::size_of::<Matched>()
                    + m.cmdline.capacity()
                    + m.container
                        .as_ref()
                        .and_then(Option::as_ref)
                        .map_or(0, |c| {
                            [&c.id, &c.pod_uid, &c.unit]
                                .iter()
                                .map(|s| s.as_ref().map_or(0, String::capacity))
                                .sum()
                        })
            })
            .sum();
        (
            self.known.len(),
            self.known.capacity() * std::mem::size_of::<Known>() + matched,
        )
    }
}

/// One tick's walk over the listing, merged with the sorted identities of the last tick: one
/// step per listed and per remembered process, so a tick is linear in both.
pub(crate) struct Pass {
    old: std::iter::Peekable<std::vec::IntoIter<Known>>,
    next: Vec<Known>,
    stable: bool,
    tick: u64,
    rescan_ticks: u64,
    open_budget: usize,
    kept_open: usize,
}

impl Pass {
    /// What is known of `entry`; call once per listed pid, in ascending order. Identities of
    /// pids below it that were not listed have vanished and are dropped here.
    pub(crate) fn lookup(&mut self, entry: PidEntry) -> Lookup {
        if !self.stable {
            return Lookup::Unknown;
        }
        while self.old.next_if(|k| k.pid < entry.pid).is_some() {}
        let Some(known) = self.old.next_if(|k| k.pid == entry.pid) else {
            return Lookup::Unknown;
        };
        // Another inode is another instance of the pid: the old one is dropped with `known`.
        if known.ino != entry.ino {
            return Lookup::Unknown;
        }
        if self.due(entry.pid) {
            return Lookup::Due(known.matched);
        }
        match known.matched {
            None => Lookup::NoMatch,
            Some(matched) => Lookup::Match(matched),
        }
    }

    fn due(&self, pid: u32) -> bool {
        rescan_due(pid, self.tick, self.rescan_ticks)
    }

    /// Records the container just read of `pid`, a match kept in this pass.
    pub(crate) fn set_container(&mut self, pid: u32, container: Option<Container>) {
        if let Ok(at) = self.next.binary_search_by_key(&pid, |k| k.pid) {
            if let Some(matched) = &mut self.next[at].matched {
                matched.container = Some(container);
            }
        }
    }

    /// Remembers `entry` for the next tick, in the same ascending order. The caller keeps only
    /// what it read whole: never an empty, unreadable or cut command line.
    ///
    /// A match keeps its `stat` open while fewer than the budget do; past it, the file is closed
    /// and the next tick opens it by path. Each open `stat` that has been read holds a page of
    /// kernel memory (its seq_file buffer) and a descriptor, so the budget bounds both.
    pub(crate) fn keep(&mut self, entry: PidEntry, mut matched: Option<Box<Matched>>) {
        if let Some(m) = matched.as_deref_mut() {
            if m.stat.is_some() {
                if self.kept_open < self.open_budget {
                    self.kept_open += 1;
                } else {
                    m.stat = None;
                }
            }
        }
        // Inode 1 is what procfs lists for a directory it could not instantiate.
        if self.stable && entry.ino > 1 {
            self.next.push(Known {
                ino: entry.ino,
                pid: entry.pid,
                matched,
            });
        }
    }
}

/// Whether tick `tick` (0 for a collector's first) re-reads the command line of a known `pid`:
/// each pid once per `rescan_ticks` ticks, in the tick its pid falls on, so one tick re-reads
/// about 1/`rescan_ticks` of the processes and none reads them all.
pub fn rescan_due(pid: u32, tick: u64, rescan_ticks: u64) -> bool {
    u64::from(pid).wrapping_add(tick) % rescan_ticks.max(1) == 0
}

/// Whether a raw `cmdline` may be remembered: it is not empty (a kernel thread, a zombie, a
/// process between the two halves of an `exec`) and ends in the NUL that closes the last
/// argument (a read that stops short of it raced a process rewriting its own argv).
pub(crate) fn cacheable(raw: &[u8]) -> bool {
    raw.last() == Some(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: u32, ino: u64) -> PidEntry {
        PidEntry { pid, ino }
    }

    fn matched() -> Box<Matched> {
        Box::new(Matched {
            cmdline: "pytest".into(),
            container: None,
            start_ticks: 7,
            stat: None,
        })
    }

    /// Runs one tick over `listed`, keeping every unknown entry as a non-match (or a match
    /// for pid 7), and returns what each lookup said.
    fn tick(ids: &mut Identities, stable: bool, listed: &[PidEntry]) -> Vec<&'static str> {
        let mut pass = ids.begin(stable, listed.len());
        let mut seen = Vec::new();
        for &e in listed {
            let (word, m) = match pass.lookup(e) {
                Lookup::Unknown => ("unknown", (e.pid == 7).then(matched)),
                Lookup::Due(m) => ("due", m),
                Lookup::NoMatch => ("no", None),
                Lookup::Match(m) => ("match", Some(m)),
            };
            seen.push(word);
            pass.keep(e, m);
        }
        ids.finish(pass);
        seen
    }

    #[test]
    fn a_known_instance_is_not_read_again_until_its_rescan_tick() {
        let mut ids = Identities::new(3, 0);
        let listed = [entry(5, 50), entry(6, 60), entry(7, 70)];
        assert_eq!(tick(&mut ids, true, &listed), ["unknown"; 3]);
        // Tick 1: pid 5 is due ((5 + 1) % 3 == 0); tick 2: pid 7; tick 3: pid 6.
        assert_eq!(tick(&mut ids, true, &listed), ["due", "no", "match"]);
        assert_eq!(tick(&mut ids, true, &listed), ["no", "no", "due"]);
        assert_eq!(tick(&mut ids, true, &listed), ["no", "due", "match"]);
    }

    #[test]
    fn a_new_inode_under_a_known_pid_is_a_new_instance() {
        let mut ids = Identities::new(1000, 0);
        tick(&mut ids, true, &[entry(5, 50), entry(7, 70)]);
        assert_eq!(
            tick(&mut ids, true, &[entry(5, 51), entry(7, 70)]),
            ["unknown", "match"]
        );
    }

    #[test]
    fn vanished_pids_are_dropped_and_inode_one_is_never_kept() {
        let mut ids = Identities::new(1000, 0);
        tick(&mut ids, true, &[entry(2, 1), entry(5, 50), entry(6, 60)]);
        assert_eq!(
            ids.footprint().0,
            2,
            "pid 2 listed with inode 1 is not kept"
        );
        assert_eq!(tick(&mut ids, true, &[entry(6, 60)]), ["no"]);
        assert_eq!(ids.footprint().0, 1, "pid 5 vanished");
    }

    #[test]
    fn off_procfs_nothing_is_looked_up_or_kept() {
        let mut ids = Identities::new(1000, 0);
        tick(&mut ids, false, &[entry(5, 50)]);
        assert_eq!(tick(&mut ids, false, &[entry(5, 50)]), ["unknown"]);
        assert_eq!(ids.footprint().0, 0);
    }

    #[test]
    fn a_pass_that_is_not_finished_leaves_nothing_known() {
        let mut ids = Identities::new(1000, 0);
        tick(&mut ids, true, &[entry(5, 50)]);
        drop(ids.begin(true, 1));
        assert_eq!(tick(&mut ids, true, &[entry(5, 50)]), ["unknown"]);
    }

    #[test]
    fn no_more_stat_files_stay_open_than_the_budget() {
        let mut ids = Identities::new(1000, 2);
        let listed = [entry(5, 50), entry(6, 60), entry(7, 70)];
        let mut pass = ids.begin(true, listed.len());
        for e in listed {
            assert!(matches!(pass.lookup(e), Lookup::Unknown));
            let mut m = matched();
            m.stat = Some(File::open("/dev/null").unwrap());
            pass.keep(e, Some(m));
        }
        ids.finish(pass);
        assert_eq!(ids.open_files(), 2, "a budget of 2");
        assert_eq!(
            ids.footprint().0,
            3,
            "the third is remembered, its file closed"
        );
        // Off procfs nothing is remembered, so nothing stays open either.
        let mut off = Identities::new(1000, 2);
        let mut pass = off.begin(false, 1);
        let mut m = matched();
        m.stat = Some(File::open("/dev/null").unwrap());
        pass.keep(entry(5, 50), Some(m));
        off.finish(pass);
        assert_eq!(off.open_files(), 0);
    }

    #[test]
    fn only_a_whole_non_empty_command_line_is_cacheable() {
        assert!(cacheable(b"sleep\x003600\x00"));
        assert!(!cacheable(b""), "kernel thread or zombie");
        assert!(!cacheable(b"sleep 3600"), "cut, or rewritten in place");
    }
}
