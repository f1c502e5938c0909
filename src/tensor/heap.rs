//! Keep freed memory in the process between training steps (glibc only); the VAE and
//! diffusion trainers call [`retain_freed_memory`] when they start.
//!
//! A training step allocates every activation it caches — tens of megabytes — and frees them
//! all when the step ends. With glibc's defaults each of those blocks above a threshold is a
//! fresh `mmap` (or the freed top of the heap is handed back with `brk`), so the next step
//! touches brand-new pages and the kernel zeroes every one of them on first use: in a profile
//! of DiT-tiny/2 that page-fault work was over a tenth of the step. [`retain_freed_memory`]
//! asks glibc once, with `mallopt`, to serve blocks up to 32 MiB from its heap and never
//! trim it, so step `n + 1` reuses step `n`'s pages. It changes where memory comes from, not
//! any value computed. Elsewhere (another libc, another OS) it does nothing.

use std::sync::Once;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    fn mallopt(param: i32, value: i32) -> i32;
}

/// Makes glibc keep freed blocks for reuse (idempotent; called when a trainer starts).
pub fn retain_freed_memory() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            const M_TRIM_THRESHOLD: i32 = -1;
            const M_MMAP_THRESHOLD: i32 = -3;
            // SAFETY: mallopt only changes allocator tuning parameters; it is called before
            // any block it could affect is freed differently, and glibc makes it thread-safe.
            unsafe {
                // blocks below 32 MiB (glibc's largest allowed threshold) come from the heap …
                mallopt(M_MMAP_THRESHOLD, 32 << 20);
                // … and the heap's free top is never returned to the kernel
                mallopt(M_TRIM_THRESHOLD, i32::MAX);
            }
        }
    });
}
