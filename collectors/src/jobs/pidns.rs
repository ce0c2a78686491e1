//! Job pids in the orchestrator's pid namespace, mapped to host pids.
//!
//! Owns `WATCHDOG_JOBS_PID_NS` other than `host`: find the orchestrator's init by its command
//! line, walk its descendants by `ppid`, and read each one's `NSpid:` line, whose last value is
//! its pid inside the namespace. Reads `<pid>/cmdline` of the processes it is given and
//! `<pid>/status` of the init's descendants, nothing else; never `/proc/<pid>/ns/`, which
//! needs privileges.

use std::collections::BTreeMap;
use std::path::Path;

use super::ProcBrief;
use crate::parse::{innermost_pid, split_cmdline};
use crate::pattern::PatternSet;
use crate::proc_root::Reader;
use crate::CollectError;

/// Maps the innermost pids of the descendants of the orchestrator's init to host pids: the
/// last value of their `NSpid:`. Descent from the init is the test, since `status` names no
/// namespace; so a process entered with `docker exec` (not a descendant) is not mapped.
///
/// # Errors
/// No process matches `init_pattern`; a file denies access (the tree hides processes).
pub(crate) fn map_namespace(
    reader: &mut Reader<'_>,
    init_pattern: &PatternSet,
    processes: &BTreeMap<u32, ProcBrief>,
    root: &Path,
) -> Result<BTreeMap<u32, u32>, CollectError> {
    let mut inits = Vec::new();
    for &pid in processes.keys() {
        if let Some(raw) = reader.file(pid, "cmdline")? {
            let argv = split_cmdline(&raw);
            if !argv.is_empty() && init_pattern.is_match(&argv.join(" ")) {
                inits.push(pid);
            }
        }
    }
    if inits.is_empty() {
        return Err(CollectError::NamespaceInitMissing { root: root.into() });
    }
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for p in processes.values() {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut mapped = BTreeMap::new();
    // Each `stat` was read at its own moment, so a reused pid could close a loop of parents.
    let mut seen = std::collections::BTreeSet::new();
    let mut stack = inits;
    while let Some(pid) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        if let Some(raw) = reader.file(pid, "status")? {
            let status = String::from_utf8_lossy(&raw);
            if let Some(inner) = innermost_pid(&status) {
                mapped.insert(inner, pid);
            }
        }
        stack.extend(children.get(&pid).into_iter().flatten().copied());
    }
    Ok(mapped)
}
