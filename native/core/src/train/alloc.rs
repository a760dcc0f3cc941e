//! Allocator settings for the duration of a training run.
//!
//! Every training step allocates and frees the same activation-sized buffers (hundreds of
//! MiB). With glibc's defaults, buffers above the (dynamic) mmap threshold are mapped and
//! unmapped each time, and the heap top is trimmed back to the OS after each step, so every
//! step page-faults and zero-fills its memory again: measured on the SmolLM2-135M-shaped bench,
//! ~10 % of the time in page-fault handling and `clear_page`, and 1.2–1.6× more tokens/s with
//! the settings below (bench/train/README.md). The peak RSS does not change: freed memory is
//! kept for the next step instead of being returned and faulted in again.
//!
//! [`RetainFreedMemory`] raises the mmap threshold to glibc's maximum (32 MiB) and stops
//! trimming while it lives; dropping it restores trimming and returns the free heap to the OS
//! (`malloc_trim`), so a long-lived process (Node) does not keep a step's worth of memory after
//! training. Other allocators and platforms: a no-op.

/// Keeps freed memory in the process while it lives (see the module documentation).
#[must_use = "the settings last as long as the guard"]
pub struct RetainFreedMemory {
    _private: (),
}

/// glibc's default `M_TRIM_THRESHOLD` (128 KiB), restored on drop.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const DEFAULT_TRIM_THRESHOLD: libc::c_int = 128 * 1024;

impl RetainFreedMemory {
    pub fn new() -> Self {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator parameters; it is thread-safe in glibc.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * 1024 * 1024);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        }
        Self { _private: () }
    }
}

impl Default for RetainFreedMemory {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RetainFreedMemory {
    fn drop(&mut self) {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: as above; malloc_trim only releases free memory.
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD);
            libc::malloc_trim(0);
        }
    }
}
