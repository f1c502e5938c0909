//! Tensor plumbing shared by every layer: the seeded random generator, initialisers, GEMM and
//! the run-time choice of AVX2 for elementwise loops ([`simd`]).
//!
//! Tensors are `ndarray` arrays of `f32` in row-major order. Shapes are written in comments
//! with these letters: `B` batch, `T` tokens, `C` channels, `H`/`W` height/width, `N` rows of a
//! flattened batch, `K` kernel size, `h` heads, `d` head dimension.

pub mod gemm;
pub mod heap;
pub mod init;
pub mod simd;

pub use gemm::{gemm, gemm_serial, matmul};

use ndarray_rand::rand::SeedableRng;

/// The generator used everywhere: ChaCha12 from `rand`, seeded explicitly, so the same seed and
/// thread count give the same bits.
pub type Rng = ndarray_rand::rand::rngs::StdRng;

/// A generator seeded with `seed`.
pub fn rng(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}
