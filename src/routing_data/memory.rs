//! Handing freed memory back to the kernel after a load.
//!
//! glibc keeps what a program frees in its heaps, one heap per thread that
//! allocated (an arena), and returns it to the kernel only from a heap's
//! top. A routing table outlives the thread that built it: the cold start
//! compiles on every core, so the accounts live in the workers' arenas, and
//! a reload compiles the changed file on the reload thread, in its arena.
//! Each reloaded account therefore moves from one arena to another, leaving
//! a hole where it was, and the old table's copy of what a reload rebuilds
//! (the index of every number) leaves another. Nothing is leaked, but after
//! every file has been reloaded once the process holds two copies' worth of
//! pages (issue #23 measured 2.7x to 4.6x its size after the start).
//!
//! `malloc_trim` walks every arena and gives back each whole free page, in
//! the middle of a heap too, so resident memory follows what the tables
//! hold. It is called after a bulk load, and after a reload once the new
//! table serves and the old one is dropped: off the path of the calls and
//! of the reload's own time.
//!
//! What is left after that is the tables themselves. A heap profile of the
//! growth (`bench/churn.py` under heaptrack, docs/performance.md) found
//! one more thing, which was not the allocator's: the reload thread's
//! compiled libphonenumber patterns, kept for its life, 33 MB while they
//! were compiled with Unicode classes (see `validity::compile`).

/// Large blocks (glibc: 128 KiB and up) come from their own mappings,
/// returned to the kernel whole when freed. glibc raises that threshold to
/// the size of each such block freed, up to 32 MiB, so after the first
/// reload freed the old table's index of every number (megabytes), each
/// later one is carved out of a heap instead, where it leaves a hole.
/// Setting the threshold fixes it where it starts; an operator's own
/// `MALLOC_MMAP_THRESHOLD_` is left alone. Measured (load_bench, 1M
/// contacts, every file reloaded once, with the trim above): 1.86x -> 1.68x
/// of the memory after the start.
pub fn keep_large_blocks_mapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets a glibc malloc parameter; it is called
        // before the threads that allocate are started.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
}

/// Returns the allocator's whole free pages to the kernel.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and trims glibc's own heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}
