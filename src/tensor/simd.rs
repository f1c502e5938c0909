//! Wider vectors for the elementwise loops, chosen at run time.
//!
//! The crate is compiled for the baseline x86-64 (SSE2, 4 floats per vector) so the binary
//! runs anywhere. [`avx2_twin!`](avx2_twin) wraps a function so that it runs a copy of
//! itself compiled for AVX2 (8 floats per vector) when the CPU has it. Each lane does the same
//! IEEE operations in the same order either way (Rust never fuses a multiply and an add on its
//! own), so the bits do not depend on the path taken.

/// `avx2_twin! { fn name(a: A, b: B) { body } }` defines `name`, whose body is compiled twice
/// — for the baseline and for AVX2 — and which picks the AVX2 copy when the CPU supports it.
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
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}
pub(crate) use avx2_twin;
