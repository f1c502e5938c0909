//! Matrix multiplication: the one kernel almost every layer's time goes into.
//!
//! [`gemm`] computes `C ← α·A·B + β·C` with `matrixmultiply::sgemm` (packed, SIMD, cache-blocked)
//! on views of any strides, so a transpose is free: pass `a.t()`. Large products are split
//! into disjoint blocks of rows (or columns) of `C` that run on rayon's threads, so no two
//! threads write the same memory and one thread pool serves the whole crate.
//! [`gemm_serial`] is the same product on the calling thread, for use inside a loop that is
//! already parallel (e.g. over batch × heads in attention).

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};

/// Below this many multiply-adds per block a split costs more than it saves.
const MIN_BLOCK_MACS: usize = 1 << 18;

// ANCHOR: gemm
/// `C ← α·A·B + β·C`   A: (M, K)  B: (K, N)  C: (M, N); parallel over disjoint blocks of C.
pub fn gemm(alpha: f32, a: ArrayView2<f32>, b: ArrayView2<f32>, beta: f32, c: ArrayViewMut2<f32>) {
    let pieces = rayon::current_num_threads();
    gemm_split(alpha, a, b, beta, c, pieces);
}
// ANCHOR_END: gemm

fn gemm_split(
    alpha: f32,
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    beta: f32,
    mut c: ArrayViewMut2<f32>,
    pieces: usize,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    if pieces <= 1 || m * n * k < 2 * MIN_BLOCK_MACS {
        return gemm_serial(alpha, a, b, beta, c);
    }
    let left = pieces / 2;
    // Split the longer side of C so each block stays a good shape for the packed kernel.
    if m >= n && m >= 2 {
        let mid = m * left / pieces;
        let (a0, a1) = a.split_at(Axis(0), mid);
        let (c0, c1) = c.view_mut().split_at(Axis(0), mid);
        rayon::join(
            || gemm_split(alpha, a0, b, beta, c0, left),
            || gemm_split(alpha, a1, b, beta, c1, pieces - left),
        );
    } else if n >= 2 {
        let mid = n * left / pieces;
        let (b0, b1) = b.split_at(Axis(1), mid);
        let (c0, c1) = c.view_mut().split_at(Axis(1), mid);
        rayon::join(
            || gemm_split(alpha, a, b0, beta, c0, left),
            || gemm_split(alpha, a, b1, beta, c1, pieces - left),
        );
    } else {
        gemm_serial(alpha, a, b, beta, c);
    }
}

/// `C ← α·A·B + β·C` on the calling thread.
pub fn gemm_serial(
    alpha: f32,
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    beta: f32,
    mut c: ArrayViewMut2<f32>,
) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert_eq!(k, k2, "gemm: inner dimensions differ");
    assert_eq!(c.dim(), (m, n), "gemm: output has the wrong shape");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.mapv_inplace(|v| if beta == 0.0 { 0.0 } else { beta * v });
        return;
    }
    let (rsa, csa) = (a.strides()[0], a.strides()[1]);
    let (rsb, csb) = (b.strides()[0], b.strides()[1]);
    let (rsc, csc) = (c.strides()[0], c.strides()[1]);
    // SAFETY: the three views are valid for the given dims and strides, and `c` is a unique
    // mutable borrow, so the kernel's writes alias nothing it reads.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            rsc,
            csc,
        );
    }
}

/// `A·B` into a new matrix (parallel). The matrix is not zero-filled first: with $\beta = 0$
/// the product writes every element and reads none (`matrixmultiply`'s contract), so a
/// backward pass's `dx` costs no extra sweep over memory.
pub fn matmul(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
    let (m, n) = (a.nrows(), b.ncols());
    if a.ncols() == 0 {
        return Array2::zeros((m, n));
    }
    let mut c = Array2::<f32>::uninit((m, n));
    // SAFETY: the view covers exactly `c`'s (contiguous) buffer; with β = 0 and an inner
    // dimension above 0, every block of `gemm_split` goes to `matrixmultiply::sgemm`, which
    // writes each element of C without reading it, so all of `c` is initialised after.
    unsafe {
        let view = ArrayViewMut2::from_shape_ptr((m, n), c.as_mut_ptr() as *mut f32);
        gemm(1.0, a, b, 0.0, view);
        c.assume_init()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn naive(a: &Array2<f32>, b: &Array2<f32>) -> Array2<f32> {
        let mut c = Array2::zeros((a.nrows(), b.ncols()));
        for i in 0..a.nrows() {
            for j in 0..b.ncols() {
                c[[i, j]] = (0..a.ncols()).map(|p| a[[i, p]] * b[[p, j]]).sum();
            }
        }
        c
    }

    #[test]
    fn matmul_writes_every_element() {
        for &(m, k, n) in &[(1, 1, 1), (3, 0, 2), (70, 300, 90), (600, 64, 600)] {
            let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
            let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 5 + j * 2) % 13) as f32 - 6.0);
            assert_eq!(
                matmul(a.view(), b.view()),
                naive(&a, &b),
                "m={m} k={k} n={n}"
            );
        }
    }

    #[test]
    fn matches_naive_product_with_transposes_and_splits() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 0, 2),
            (70, 300, 90),
            (257, 129, 31),
            (5, 700, 400),
        ] {
            let a = Array2::from_shape_fn((k, m), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
            let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 5 + j * 2) % 13) as f32 - 6.0);
            let want = naive(&a.t().to_owned(), &b);
            let mut c = Array2::from_elem((m, n), 1.0);
            gemm(1.0, a.t(), b.view(), 2.0, c.view_mut());
            let got = c - 2.0;
            assert_eq!(got, want, "m={m} k={k} n={n}");
        }
    }
}
