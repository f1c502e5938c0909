//! Wider vectors for the elementwise loops, chosen at run time.
//!
//! The crate is compiled for the baseline x86-64 (SSE2, 4 floats per vector) so the binary
//! runs anywhere. [`avx2_twin!`](avx2_twin) wraps a function so that it runs a copy of
//! itself compiled for AVX2 (8 floats per vector) when the CPU has it. Each lane does the same
//! IEEE operations in the same order either way (Rust never fuses a multiply and an add on its
//! own), so the bits do not depend on the path taken; `tests/simd.rs` runs every such kernel
//! both ways ([`force_portable`]) and compares the bits.

use std::sync::atomic::{AtomicBool, Ordering};

static FORCE_PORTABLE: AtomicBool = AtomicBool::new(false);

/// For tests: with `true`, every [`avx2_twin!`](avx2_twin) function takes its portable
/// (baseline) path even where the CPU has AVX2, until called again with `false`. It is one
/// switch for the whole process, so a test that flips it should be the only test of its binary.
pub fn force_portable(on: bool) {
    FORCE_PORTABLE.store(on, Ordering::Relaxed);
}

/// Whether the AVX2 copies run: the CPU has AVX2 and [`force_portable`] is off.
#[inline]
pub fn avx2_enabled() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && !FORCE_PORTABLE.load(Ordering::Relaxed)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `avx2_twin! { fn name(a: A, b: B) { body } }` defines `name`, whose body is compiled twice
/// — for the baseline and for AVX2 — and which picks the AVX2 copy when [`avx2_enabled`].
/// (A closure handed to a `#[target_feature]` function is not reliably inlined into it, so
/// the body is written into the AVX2 function itself.)
macro_rules! avx2_twin {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn generic($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) {
                    generic($($arg),*)
                }
                if $crate::tensor::simd::avx2_enabled() {
                    // SAFETY: the CPU supports AVX2, checked by `avx2_enabled`.
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}
pub(crate) use avx2_twin;
