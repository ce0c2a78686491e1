//! Whether the watchdog sees the host's processes or only its own container's.
//!
//! Read once at start by `run` and `check-config`, only when a collector that reads /proc is on:
//! `/proc/self/status` for the watchdog's own `NSpid:` and `<root>/2/stat` for kthreadd.
//! Two tests, because each misses a case: `NSpid:` lists one pid per namespace level below the
//! one that mounted the /proc it is read from, so a container reading its own /proc sees one
//! level; kernel threads, with kthreadd at pid 2, exist only in the host's pid namespace.

use std::path::Path;

/// A warning to log when `root` does not look like the host's pid namespace.
pub fn warning(root: &Path) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok();
    let levels = status.as_deref().and_then(nspid_levels);
    if let Some(levels) = levels.filter(|&n| n > 1) {
        return Some(format!(
            "watchdog runs in a nested pid namespace ({levels} levels in NSpid): it sees only \
             its container's processes; run it with pid: host (compose) or hostPID (Kubernetes)"
        ));
    }
    (!shows_kernel_threads(root)).then(|| {
        format!(
            "{} shows no kernel threads (no kthreadd at pid 2), so it is not the host's pid \
             namespace: watchdog sees only its container's processes; run it with pid: host \
             (compose) or hostPID (Kubernetes)",
            root.display()
        )
    })
}

/// Whether `root` lists kthreadd at pid 2, which only the host's pid namespace does.
pub fn shows_kernel_threads(root: &Path) -> bool {
    std::fs::read(root.join("2/stat"))
        .ok()
        .and_then(|raw| watchdog_collectors::parse::parse_stat(&raw).ok())
        .is_some_and(|stat| stat.comm == "kthreadd")
}

/// The number of pid-namespace levels in a `status` file's `NSpid:` line.
pub fn nspid_levels(status: &str) -> Option<usize> {
    watchdog_collectors::parse::parse_nspid(status).map(|pids| pids.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nspid_levels_count_the_pids_on_the_line() {
        assert_eq!(
            nspid_levels("Name:\tx\nNSpid:\t3319\nNSpgid:\t1\n"),
            Some(1)
        );
        assert_eq!(nspid_levels("NSpid:\t3319\t1\n"), Some(2));
        assert_eq!(nspid_levels("Name:\tx\n"), None);
    }

    #[test]
    fn only_a_tree_with_kthreadd_at_pid_2_is_the_host() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proc");
        assert!(shows_kernel_threads(&fixtures.join("orphaned_pytest")));
        assert!(!shows_kernel_threads(&fixtures.join("no_pid_one")));
        assert!(!shows_kernel_threads(&fixtures.join("does_not_exist")));
        assert!(warning(&fixtures.join("no_pid_one")).is_some());
    }
}
