//! The daemon's heap: one malloc arena, and the pages a tick freed handed back after it.
//!
//! Owns the two glibc tunings that keep a long-running daemon's resident set at what it uses,
//! not at what it once used. Elsewhere (musl, other systems) both do nothing.

/// One malloc arena for the whole daemon; call before any thread starts. glibc gives each
/// thread that allocates its own arena (the async workers, the collectors' blocking threads,
/// the store's writer), and each keeps what it freed: over a megabyte resident that a daemon
/// allocating little per tick never needs back. Its threads rarely allocate at the same moment,
/// so the one lock costs nothing measurable.
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of the allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Hands the pages a tick freed back to the kernel. A tick allocates its scan and its report,
/// then frees them; without this the allocator keeps those pages resident until the next tick
/// reuses them. It walks the free lists once: microseconds at this heap's size.
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the kernel; it touches no live block.
    unsafe {
        libc::malloc_trim(0);
    }
}
