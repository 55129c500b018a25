//! The allocator's arenas. glibc gives a thread that finds an arena busy
//! an arena of its own, up to eight per core, and memory freed in one
//! arena cannot serve another: the start-up done on a blocking thread,
//! the probes on the runtime's worker and the store's writer thread each
//! kept their own high-water mark. One arena per runtime worker thread
//! gave 4-5 MiB less peak RSS at 10,000 checks with the same CPU per probe
//! (`probe_load`, bench/README.md): the other threads allocate little.

/// Allow as many malloc arenas as the runtime has worker threads, unless
/// `MALLOC_ARENA_MAX` says otherwise. Call before any thread is started:
/// a thread keeps the arena it was given.
pub fn limit_arenas(worker_threads: u16) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only tunes the allocator; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, libc::c_int::from(worker_threads.max(1)));
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = worker_threads;
}
