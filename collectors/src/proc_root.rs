//! Reading a /proc tree: the part both collectors share.
//!
//! Owns the reads under a root it is given: the root listing, `uptime`, `self`, the kernel's
//! count of created tasks (in `stat`), and whole per-process files into one reused buffer, by
//! path or again from a `stat` kept open, with what a failed read means (the process is gone,
//! the file is unreadable, or the tree hides processes). Also owns the pid-1 check that tells a
//! tree which hides most processes from one that shows them. It parses nothing itself (see
//! [`crate::parse`]), decides nothing about what matches, and never writes.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use procfs::process::Stat;

use crate::parse::{parse_pid, parse_stat, parse_tasks_created, parse_uptime};
use crate::CollectError;

/// `ESRCH`: a /proc file whose process exited after it was opened.
const ESRCH: i32 = 3;

/// This machine's clock ticks per second (`CLK_TCK`), the unit of `starttime`.
pub fn ticks_per_second() -> u64 {
    procfs::ticks_per_second()
}

/// A numeric entry of the root: a pid and the inode number its directory entry carries
/// (`d_ino`, from the same `getdents64` that lists it, so it costs no syscall of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidEntry {
    pub pid: u32,
    pub ino: u64,
}

/// The numeric entries of the root, sorted.
///
/// # Errors
/// The root is missing, denies access or cannot be listed.
pub fn list_pids(root: &Path) -> Result<Vec<u32>, CollectError> {
    Ok(list_entries(root)?.into_iter().map(|e| e.pid).collect())
}

/// The numeric entries of the root with their inode numbers, sorted by pid. Listed with
/// `getdents64` into one buffer and parsed in place: `std::fs::read_dir` allocates a name per
/// entry, and a /proc listing is thousands of entries every tick.
///
/// # Errors
/// As [`list_pids`].
pub fn list_entries(root: &Path) -> Result<Vec<PidEntry>, CollectError> {
    use rustix::fs::{Mode, OFlags, RawDir};
    let failed = |e: rustix::io::Errno| CollectError::from_io(root.into(), e.into());
    // O_NONBLOCK as opendir(3) opens: a FIFO in its place fails on O_DIRECTORY, never blocks.
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let dir = rustix::fs::open(root, flags, Mode::empty()).map_err(failed)?;
    let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); 32 * 1024];
    let mut listing = RawDir::new(&dir, &mut buf);
    let mut pids = Vec::new();
    while let Some(entry) = listing.next() {
        let entry = entry.map_err(failed)?;
        if let Some(pid) = entry.file_name().to_str().ok().and_then(parse_pid) {
            pids.push(PidEntry {
                pid,
                ino: entry.ino(),
            });
        }
    }
    pids.sort_unstable_by_key(|e| e.pid);
    Ok(pids)
}

/// The sorted pids of the root, which must list pid 1: a tree mounted with `hidepid=2` (without
/// `gid=`) or from another pid namespace shows almost nothing, and a scan of it would pass for
/// "nothing is stuck".
///
/// # Errors
/// As [`list_pids`]; [`CollectError::Blind`] when pid 1 is not listed.
pub fn list_pids_seeing_all(root: &Path) -> Result<Vec<u32>, CollectError> {
    let pids = list_pids(root)?;
    if pids.binary_search(&1).is_err() {
        return Err(CollectError::Blind { root: root.into() });
    }
    Ok(pids)
}

/// As [`list_pids_seeing_all`], with each entry's inode number.
///
/// # Errors
/// As [`list_pids_seeing_all`].
pub fn list_entries_seeing_all(root: &Path) -> Result<Vec<PidEntry>, CollectError> {
    let entries = list_entries(root)?;
    if entries.binary_search_by_key(&1, |e| e.pid).is_err() {
        return Err(CollectError::Blind { root: root.into() });
    }
    Ok(entries)
}

/// Whether `root` is a procfs mount (`statfs` says `PROC_SUPER_MAGIC`): only there does a
/// directory entry's inode number name one instance of a process (see [`crate::proc_cache`]).
/// A fixture on ext4 or a tree on tmpfs reuses inode numbers; anything that cannot be asked
/// is not procfs.
pub fn is_procfs(root: &Path) -> bool {
    rustix::fs::statfs(root).is_ok_and(|fs| fs.f_type == rustix::fs::PROC_SUPER_MAGIC)
}

/// How many tasks the kernel has created since boot: `processes` in `<root>/stat`, the
/// `total_forks` that `copy_process()` (kernel/fork.c) counts up for every process, thread and
/// kernel thread it makes, in every pid namespace. A pid directory appears under a procfs root
/// only when a task is created, so while this count stands still no process can have been
/// added to the root's listing.
///
/// `None` when the count cannot be trusted to move: the file is not procfs's own (a tree that
/// is not procfs, or a file mounted over it, as lxcfs mounts one) unless `any_fs` says to take it
/// anyway (the bench's synthetic trees), or it is unreadable, longer than 1 MiB, or has no
/// such line.
pub fn tasks_created(root: &Path, any_fs: bool) -> Option<u64> {
    const LIMIT: u64 = 1 << 20;
    let file = File::open(root.join("stat")).ok()?;
    if !any_fs
        && !rustix::fs::fstatfs(&file).is_ok_and(|fs| fs.f_type == rustix::fs::PROC_SUPER_MAGIC)
    {
        return None;
    }
    let mut raw = Vec::new();
    file.take(LIMIT + 1).read_to_end(&mut raw).ok()?;
    if raw.len() as u64 > LIMIT {
        return None;
    }
    parse_tasks_created(&raw)
}

/// Whether `<root>/<pid>` is there.
pub(crate) fn exists(root: &Path, pid: u32) -> bool {
    std::fs::symlink_metadata(root.join(pid.to_string())).is_ok()
}

/// The tree's `uptime`, in seconds.
///
/// # Errors
/// The file cannot be read, or is not an uptime.
pub fn read_uptime(root: &Path) -> Result<f64, CollectError> {
    let path = root.join("uptime");
    let mut buf = Vec::new();
    read_file(&path, &mut buf).map_err(|e| CollectError::from_io(path.clone(), e))?;
    parse_uptime(&buf).map_err(|reason| CollectError::Malformed { path, reason })
}

/// The watchdog's own pid as this tree numbers it: `<root>/self` links to it. A fake tree has
/// no such link, and then nothing is skipped.
pub fn own_pid(root: &Path) -> Option<u32> {
    let target = std::fs::read_link(root.join("self")).ok()?;
    parse_pid(target.to_str()?)
}

/// What reading one file of a process gave.
pub(crate) enum FileRead<'a> {
    Bytes(&'a [u8]),
    /// The process exited: its directory or file is gone.
    Gone,
    /// The process is there but its file could not be read.
    Failed,
}

/// What reading one process's `stat` gave.
pub(crate) enum StatRead {
    Stat(Box<Stat>),
    Gone,
    Failed,
}

impl From<FileRead<'_>> for StatRead {
    /// A read that gave no bytes: gone or failed.
    fn from(read: FileRead<'_>) -> Self {
        match read {
            FileRead::Gone => StatRead::Gone,
            FileRead::Bytes(_) | FileRead::Failed => StatRead::Failed,
        }
    }
}

/// Reads per-process files into one reused buffer and path.
pub(crate) struct Reader<'r> {
    root: &'r Path,
    path: PathBuf,
    buf: Vec<u8>,
}

impl<'r> Reader<'r> {
    pub(crate) fn new(root: &'r Path) -> Self {
        Self {
            root,
            path: PathBuf::with_capacity(root.as_os_str().len() + 24),
            buf: Vec::with_capacity(4096),
        }
    }

    fn set_path(&mut self, pid: u32, file: &str) {
        self.path.as_mut_os_string().clear();
        self.path.push(self.root);
        self.path.push(pid.to_string());
        self.path.push(file);
    }

    /// Reads `<root>/<pid>/<file>`.
    ///
    /// # Errors
    /// Permission denied: the tree hides processes, so no part of the scan can be trusted.
    pub(crate) fn read(&mut self, pid: u32, file: &str) -> Result<FileRead<'_>, CollectError> {
        self.set_path(pid, file);
        let read = File::open(&self.path).and_then(|mut f| read_open(&mut f, &mut self.buf));
        Ok(match self.outcome(read)? {
            Ok(()) => FileRead::Bytes(&self.buf),
            Err(failed) => failed,
        })
    }

    /// What a failed read means: gone, unreadable, or (permission denied) a tree that hides
    /// processes. The path is the one last set.
    fn outcome(&self, read: io::Result<()>) -> Result<Result<(), FileRead<'static>>, CollectError> {
        match read {
            Ok(()) => Ok(Ok(())),
            Err(e) if is_gone(&e) => Ok(Err(FileRead::Gone)),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                Err(CollectError::PermissionDenied {
                    path: self.path.clone(),
                })
            }
            Err(_) => Ok(Err(FileRead::Failed)),
        }
    }

    /// `<root>/<pid>/stat`, parsed.
    ///
    /// # Errors
    /// Permission denied.
    pub(crate) fn read_stat(&mut self, pid: u32) -> Result<StatRead, CollectError> {
        Ok(self.open_stat(pid)?.0)
    }

    /// `<root>/<pid>/stat`, parsed, and the file it was read from, still open, when it read
    /// whole: [`Reader::reread_stat`] reads it again without a path walk, an open or a close.
    ///
    /// # Errors
    /// Permission denied.
    pub(crate) fn open_stat(&mut self, pid: u32) -> Result<(StatRead, Option<File>), CollectError> {
        self.set_path(pid, "stat");
        let mut opened = None;
        let read = File::open(&self.path).and_then(|mut f| {
            read_open(&mut f, &mut self.buf)?;
            opened = Some(f);
            Ok(())
        });
        Ok(match self.outcome(read)? {
            Ok(()) => match self.parsed_stat(pid) {
                StatRead::Stat(stat) => (StatRead::Stat(stat), opened),
                failed => (failed, None),
            },
            Err(failed) => (failed.into(), None),
        })
    }

    /// The `stat` of `pid` again, from the file [`Reader::open_stat`] opened. The file belongs to
    /// the process instance it was opened on, not to the pid: once that process is reaped it
    /// reads `ESRCH` (gone), whoever holds its pid now.
    ///
    /// # Errors
    /// Permission denied.
    pub(crate) fn reread_stat(&mut self, pid: u32, file: &File) -> Result<StatRead, CollectError> {
        self.set_path(pid, "stat");
        let read = reread(file, &mut self.buf);
        Ok(match self.outcome(read)? {
            Ok(()) => self.parsed_stat(pid),
            Err(failed) => failed.into(),
        })
    }

    fn parsed_stat(&self, pid: u32) -> StatRead {
        match parse_stat(&self.buf) {
            // A stat that names another pid is not this process's.
            Ok(stat) if stat.pid == pid as i32 => StatRead::Stat(Box::new(stat)),
            Ok(_) | Err(_) => StatRead::Failed,
        }
    }

    /// The raw `cmdline` of `pid` read through one of its threads other than the leader
    /// (`<root>/<pid>/task/<tid>/cmdline`; the threads share the program): for a leader that
    /// exited while they run, whose own reads empty. `None` when no such thread gives one.
    ///
    /// # Errors
    /// Permission denied.
    pub(crate) fn thread_cmdline(&mut self, pid: u32) -> Result<Option<Vec<u8>>, CollectError> {
        let task = self.root.join(pid.to_string()).join("task");
        let Ok(threads) = std::fs::read_dir(&task) else {
            return Ok(None);
        };
        let tids = threads.filter_map(|t| t.ok()?.file_name().to_str().and_then(parse_pid));
        for tid in tids.filter(|&tid| tid != pid) {
            if let Some(raw) = self.file(pid, &format!("task/{tid}/cmdline"))? {
                if !raw.is_empty() {
                    return Ok(Some(raw));
                }
            }
        }
        Ok(None)
    }

    /// `<root>/<pid>/<file>`; `None` when it is gone or unreadable.
    ///
    /// # Errors
    /// Permission denied.
    pub(crate) fn file(&mut self, pid: u32, file: &str) -> Result<Option<Vec<u8>>, CollectError> {
        Ok(match self.read(pid, file)? {
            FileRead::Bytes(bytes) => Some(bytes.to_vec()),
            FileRead::Gone | FileRead::Failed => None,
        })
    }
}

fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(ESRCH)
}

/// Reads a whole file into `buf` with plain `read` calls. `read_to_end` on a `File` first asks
/// for its size and position (a `statx` and an `lseek`), which /proc files do not have: two
/// wasted syscalls per file, on the hot path of every scan. A read that fills less than the room
/// it was given is the end for every file read here (`cmdline` fills the room until its end;
/// `stat`, `status` and `uptime` are single-record seq files, handed over whole; a regular file
/// in a fixture comes up short only at its end), which saves the last, empty read of almost
/// every file.
fn read_file(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    read_open(&mut File::open(path)?, buf)
}

/// [`read_file`]'s reading, of a file just opened.
fn read_open(file: &mut File, buf: &mut Vec<u8>) -> io::Result<()> {
    read_chunks(buf, |chunk, _| file.read(chunk))
}

/// Reads an open /proc file again from its start with `pread`, as [`read_open`] reads. A seq
/// file (`stat`) makes its text anew for a read at offset 0, so this is what opening it again
/// would give, without the path walk, the open and the close.
fn reread(file: &File, buf: &mut Vec<u8>) -> io::Result<()> {
    read_chunks(buf, |chunk, at| file.read_at(chunk, at))
}

/// Fills `buf` with `read(chunk, offset)` calls until one comes up short (see [`read_file`]).
fn read_chunks(
    buf: &mut Vec<u8>,
    mut read: impl FnMut(&mut [u8], u64) -> io::Result<usize>,
) -> io::Result<()> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        match read(&mut chunk, buf.len() as u64) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if n < chunk.len() {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads a whole small file (a PSI file, `loadavg`, `stat`, a `cgroup`) as [`read_file`] does,
/// and for the same reason. A file longer than `limit` bytes is an error of kind `InvalidData`,
/// so a file that is not what it should be cannot make a collector hold it all in memory.
pub(crate) fn read_small(path: &Path, limit: usize) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > limit {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("longer than {limit} bytes"),
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(scenario: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/proc")
            .join(scenario)
    }

    #[test]
    fn a_tree_without_pid_one_is_blind_and_one_with_it_is_listed() {
        let pids = list_pids_seeing_all(&fixture("orphaned_pytest")).unwrap();
        assert!(pids.windows(2).all(|w| w[0] < w[1]), "sorted: {pids:?}");
        assert_eq!(pids.first(), Some(&1));
        let blind = list_pids_seeing_all(&fixture("no_pid_one")).unwrap_err();
        assert!(matches!(blind, CollectError::Blind { .. }), "{blind}");
        let missing = list_pids_seeing_all(&fixture("does_not_exist")).unwrap_err();
        assert!(
            matches!(missing, CollectError::RootMissing { .. }),
            "{missing}"
        );
    }

    #[test]
    fn a_root_that_is_a_fifo_is_an_error_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("proc");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        // Listed on another thread: a listing that blocked on the FIFO would never send.
        std::thread::spawn(move || tx.send(list_entries(&fifo).map(|e| e.len())));
        let listed = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("listing a FIFO returned within 10 s");
        let error = listed.unwrap_err();
        assert!(error.to_string().contains("proc"), "{error}");
    }

    #[test]
    fn a_missing_file_of_a_process_reads_as_gone() {
        let root = fixture("orphaned_pytest");
        let mut reader = Reader::new(&root);
        assert!(matches!(reader.read(999_999, "stat"), Ok(FileRead::Gone)));
        assert!(matches!(reader.read_stat(999_999), Ok(StatRead::Gone)));
        assert_eq!(reader.file(999_999, "cmdline").unwrap(), None);
    }
}
