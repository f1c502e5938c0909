//! Wider vectors for the elementwise loops, chosen at run time.
//!
//! The crate is compiled for the baseline x86-64 (SSE2, 4 floats per vector) so the binary
//! runs anywhere. [`simd`] runs a closure compiled for AVX2 (8 floats per vector) when the CPU
//! has it. The loops it wraps are `#[inline(always)]`, so they are compiled into the AVX2
//! function and vectorised with its wider registers.

/// Runs `f` (an `#[inline(always)]` elementwise loop) compiled for AVX2 when the CPU has it:
/// 8 lanes instead of SSE2's 4. Each lane does the same IEEE operations in the same order
/// (Rust never fuses a multiply and an add on its own), so the bits are the same either way.
#[inline(always)]
pub fn simd(f: impl FnOnce()) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(f: impl FnOnce()) {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { avx2(f) };
        }
    }
    f()
}
