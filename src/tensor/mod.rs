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

use ndarray::{concatenate, Array, Array4, Array5, ArrayView, ArrayView5, Axis, RemoveAxis};
use ndarray_rand::rand::SeedableRng;

/// The generator used everywhere: ChaCha12 from `rand`, seeded explicitly, so the same seed and
/// thread count give the same bits.
pub type Rng = ndarray_rand::rand::rngs::StdRng;

/// A generator seeded with `seed`.
pub fn rng(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// `'n c f h w -> (n f) c h w'`: every frame of a batch of clips as an image, the frames of a
/// clip consecutive (what the image VAE reads).
pub fn clips_to_frames(x: ArrayView5<f32>) -> Array4<f32> {
    let (n, c, f, h, w) = x.dim();
    x.permuted_axes([0, 2, 1, 3, 4])
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((n * f, c, h, w))
        .expect("contiguous")
}

/// `'(n f) c h w -> n c f h w'`, the inverse of [`clips_to_frames`] for clips of `frames`.
pub fn frames_to_clips(x: Array4<f32>, frames: usize) -> Array5<f32> {
    let (nf, c, h, w) = x.dim();
    x.into_shape_with_order((nf / frames, frames, c, h, w))
        .expect("whole clips")
        .permuted_axes([0, 2, 1, 3, 4])
        .as_standard_layout()
        .into_owned()
}

/// `f` applied to `x` in chunks of `n` along axis 0, the results stacked back: bounded memory
/// for encoders and decoders run over a whole dataset.
pub fn map_chunks<D: RemoveAxis>(
    x: ArrayView<f32, D>,
    n: usize,
    mut f: impl FnMut(Array<f32, D>) -> Array<f32, D>,
) -> Array<f32, D> {
    let parts: Vec<_> = x
        .axis_chunks_iter(Axis(0), n)
        .map(|c| f(c.to_owned()))
        .collect();
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    concatenate(Axis(0), &views).expect("chunks share their shape")
}
