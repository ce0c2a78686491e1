//! Which processes are CMD's tree, from one pass over a /proc root.
//!
//! Owns [`scan`] (reads `<root>/<pid>/stat` of every process, nothing else) and the pure
//! [`members`] and [`how`], which decide from that scan who belongs to the tree and how each
//! got away from a plain process-group kill. It is only ever called when CMD has stopped
//! running or must be stopped: guard never reads /proc while CMD runs. It signals nothing.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use watchdog_collectors::proc::parse_stat;

/// One process, as its `stat` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Clock ticks after boot: with the pid, names one process for the life of the system.
    pub start: u64,
    /// `R`, `S`, `D`, `Z`, ... as in `stat`.
    pub state: char,
    /// As the process set it; not escaped.
    pub comm: String,
}

impl Proc {
    /// A zombie or dead process has exited: nothing is left to signal.
    pub fn exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads and parses `<root>/<pid>/stat`; `None` when the process is gone or its line cannot be
/// read (a process that exits mid-read leaves a short or empty file).
pub fn read_stat(root: &Path, pid: i32) -> Option<Proc> {
    read_stat_into(root, pid, &mut Vec::with_capacity(512))
}

fn read_stat_into(root: &Path, pid: i32, buf: &mut Vec<u8>) -> Option<Proc> {
    read_file(&root.join(pid.to_string()).join("stat"), buf).ok()?;
    let stat = parse_stat(buf).ok()?;
    Some(Proc {
        pid: stat.pid,
        ppid: stat.ppid,
        pgrp: stat.pgrp,
        session: stat.session,
        start: stat.starttime,
        state: stat.state,
        comm: stat.comm,
    })
}

/// Reads a whole file with plain `read` calls: `std::fs::read` first asks a /proc file for a
/// size it does not have (a `statx`), then reads it in growing pieces from 32 bytes, about
/// eight syscalls for a `stat` line that one 4 KiB read returns whole.
fn read_file(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let mut file = File::open(path)?;
    let mut chunk = [0u8; 4096];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Every process under `root` whose `stat` could be read. One that vanishes between the listing
/// and the read is skipped: it is no longer anyone's to kill.
///
/// # Errors
/// When `root` cannot be listed.
pub fn scan(root: &Path) -> io::Result<Vec<Proc>> {
    let mut procs = Vec::new();
    let mut buf = Vec::with_capacity(512);
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(proc) = read_stat_into(root, pid, &mut buf) {
            procs.push(proc);
        }
    }
    Ok(procs)
}

/// Who the tree is about: CMD, whose pid is also its process group and session id, and guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tree {
    pub cmd: i32,
    pub guard: i32,
}

/// The live processes of the tree: members of CMD's process group or session, children of
/// guard (CMD, and orphans reparented to guard as subreaper), and every descendant of those by
/// ppid, which catches a process that left the group and session and still hangs below one
/// that did not. Zombies are left out: they have exited. Guard itself never is a member.
pub fn members(procs: &[Proc], tree: Tree) -> Vec<&Proc> {
    let mut children: HashMap<i32, Vec<&Proc>> = HashMap::new();
    for proc in procs {
        children.entry(proc.ppid).or_default().push(proc);
    }
    let mut found: Vec<&Proc> = procs
        .iter()
        .filter(|p| p.pid != tree.guard)
        .filter(|p| p.pgrp == tree.cmd || p.session == tree.cmd || p.ppid == tree.guard)
        .collect();
    let mut seen: HashSet<i32> = found.iter().map(|p| p.pid).collect();
    let mut next = 0;
    while next < found.len() {
        let parent = found[next].pid;
        next += 1;
        for &child in children.get(&parent).map_or(&[][..], Vec::as_slice) {
            if child.pid != tree.guard && seen.insert(child.pid) {
                found.push(child);
            }
        }
    }
    found.retain(|p| !p.exited());
    found.sort_by_key(|p| p.pid);
    found
}

/// Exited children of guard other than CMD: orphans that died after they were reparented to
/// guard, which guard must reap. CMD is reaped last, by the caller.
pub fn zombie_children(procs: &[Proc], tree: Tree) -> Vec<i32> {
    procs
        .iter()
        .filter(|p| p.ppid == tree.guard && p.pid != tree.cmd && p.exited())
        .map(|p| p.pid)
        .collect()
}

/// How a member of the tree stood apart from CMD's process group when it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// CMD itself.
    Command,
    /// Reparented to guard while CMD still ran: its parent exited under it, the mark of a
    /// double fork. After CMD exits every child of CMD is reparented too, so this is only told
    /// on the first scan while CMD runs.
    DoubleForked,
    /// In another process group (setsid, setpgid), which a `kill -- -PGID` misses.
    LeftGroup,
    /// In CMD's process group, where a group signal reaches it.
    InGroup,
}

/// How `proc` stood apart, judged on a scan taken while CMD ran (`cmd_running`) before guard
/// signalled anything (`first_scan`).
pub fn how(proc: &Proc, tree: Tree, cmd_running: bool, first_scan: bool) -> Way {
    if proc.pid == tree.cmd {
        Way::Command
    } else if first_scan && cmd_running && proc.ppid == tree.guard {
        Way::DoubleForked
    } else if proc.pgrp != tree.cmd {
        Way::LeftGroup
    } else {
        Way::InGroup
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUARD: i32 = 100;
    const CMD: i32 = 200;
    const TREE: Tree = Tree {
        cmd: CMD,
        guard: GUARD,
    };

    fn p(pid: i32, ppid: i32, pgrp: i32, session: i32) -> Proc {
        Proc {
            pid,
            ppid,
            pgrp,
            session,
            start: 1000 + u64::try_from(pid).unwrap(),
            state: 'S',
            comm: format!("p{pid}"),
        }
    }

    fn zombie(mut proc: Proc) -> Proc {
        proc.state = 'Z';
        proc
    }

    fn pids(found: &[&Proc]) -> Vec<i32> {
        found.iter().map(|p| p.pid).collect()
    }

    /// guard (100) under a shell (50) in the shell's session 40; CMD (200) leads 200/200.
    fn host() -> Vec<Proc> {
        vec![
            p(1, 0, 1, 1),
            p(40, 1, 40, 40),
            p(50, 40, 50, 40),
            p(GUARD, 50, 50, 40),
            p(CMD, GUARD, CMD, CMD),
            // An unrelated process in guard's own group and one elsewhere.
            p(60, 50, 50, 40),
            p(70, 1, 70, 70),
        ]
    }

    #[test]
    fn an_idle_command_is_the_whole_tree_and_guard_and_its_parents_are_not() {
        assert_eq!(pids(&members(&host(), TREE)), vec![CMD]);
    }

    #[test]
    fn every_way_out_of_the_group_is_still_found() {
        let mut procs = host();
        procs.extend([
            p(201, CMD, CMD, CMD),   // plain child
            p(202, 201, 202, 202),   // setsid grandchild
            p(203, GUARD, 203, 203), // double-forked daemon, reparented to guard
            p(204, 203, 203, 203),   // ... and its child
            p(205, 201, 205, CMD),   // grandchild in a new group, same session
            p(206, 205, 206, 206),   // ... whose child left the session too
            p(207, 1, CMD, CMD),     // adopted by init (a subreaper above guard would do that)
            p(208, 1, 208, 208),     // unrelated: not below the tree, not in its group
        ]);
        assert_eq!(
            pids(&members(&procs, TREE)),
            vec![CMD, 201, 202, 203, 204, 205, 206, 207]
        );
    }

    #[test]
    fn zombies_are_reaped_not_signalled() {
        let mut procs = host();
        procs.push(zombie(p(210, GUARD, 210, 210)));
        procs.push(p(211, 1, 211, 211));
        procs.push(zombie(p(212, 213, CMD, CMD)));
        assert_eq!(pids(&members(&procs, TREE)), vec![CMD]);
        assert_eq!(zombie_children(&procs, TREE), vec![210]);
    }

    #[test]
    fn a_zombie_command_is_reaped_by_the_caller_not_here() {
        let mut procs = host();
        procs.retain(|p| p.pid != CMD);
        procs.push(zombie(p(CMD, GUARD, CMD, CMD)));
        procs.push(p(201, GUARD, CMD, CMD));
        assert!(zombie_children(&procs, TREE).is_empty());
        assert_eq!(pids(&members(&procs, TREE)), vec![201]);
    }

    #[test]
    fn how_each_got_away() {
        let cases = [
            ("CMD", p(CMD, GUARD, CMD, CMD), true, true, Way::Command),
            (
                "reparented while CMD runs",
                p(203, GUARD, 203, 203),
                true,
                true,
                Way::DoubleForked,
            ),
            (
                "reparented in the group",
                p(203, GUARD, CMD, CMD),
                true,
                true,
                Way::DoubleForked,
            ),
            (
                "reparented when CMD exited",
                p(203, GUARD, 203, 203),
                false,
                true,
                Way::LeftGroup,
            ),
            (
                "reparented in a later scan",
                p(203, GUARD, 203, 203),
                true,
                false,
                Way::LeftGroup,
            ),
            (
                "CMD's child after CMD exited",
                p(201, GUARD, CMD, CMD),
                false,
                true,
                Way::InGroup,
            ),
            ("setsid", p(202, 201, 202, 202), true, true, Way::LeftGroup),
            ("setpgid", p(205, 201, 205, CMD), true, true, Way::LeftGroup),
            ("plain", p(201, CMD, CMD, CMD), true, true, Way::InGroup),
        ];
        for (name, proc, running, first, want) in cases {
            assert_eq!(how(&proc, TREE, running, first), want, "{name}");
        }
    }

    #[test]
    fn a_stat_line_with_a_hostile_comm_reads_whole() {
        let dir = tempfile::tempdir().unwrap();
        let pid_dir = dir.path().join("321");
        std::fs::create_dir(&pid_dir).unwrap();
        let mut line = b"321 (a) \x1b\n) b) S 7 8 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 4242".to_vec();
        line.extend_from_slice(&b" 0".repeat(30));
        line.push(b'\n');
        std::fs::write(pid_dir.join("stat"), &line).unwrap();
        std::fs::create_dir(dir.path().join("self")).unwrap();
        let procs = scan(dir.path()).unwrap();
        assert_eq!(procs.len(), 1);
        let proc = &procs[0];
        assert_eq!(proc.comm, "a) \x1b\n) b");
        assert_eq!(
            (
                proc.pid,
                proc.ppid,
                proc.pgrp,
                proc.session,
                proc.start,
                proc.state
            ),
            (321, 7, 8, 9, 4242, 'S')
        );
    }

    #[test]
    fn a_missing_root_is_an_error_not_an_empty_tree() {
        let dir = tempfile::tempdir().unwrap();
        assert!(scan(&dir.path().join("nope")).is_err());
    }
}
