//! The fixed 2-D sin-cos position embedding DiT adds to its patch tokens, in MAE's layout
//! (`util/pos_embed.py` of facebookresearch/mae, copied into DiT's `models.py`).
//!
//! Token `n = i·g + j` is the patch in row `i`, column `j` of a `g × g` grid. Its `D`
//! features are two 1-D embeddings side by side, `D/2` each:
//!
//! $$e_n = [\,e^{1D}(j),\; e^{1D}(i)\,], \qquad
//!   e^{1D}(x) = [\sin(x\,\omega_0), …, \sin(x\,\omega_{K-1}),\; \cos(x\,\omega_0), …, \cos(x\,\omega_{K-1})]$$
//!
//! with $K = D/4$ frequencies $\omega_k = 10000^{-k/K}$. The first half encodes the column
//! `j` — MAE builds its grid with `np.meshgrid(grid_w, grid_h)`, whose first array varies
//! along the columns, and calls that first array `grid[0]` "h" — and the second half the
//! row `i`. The table is not trained: checkpoints store it as `pos_embed (1, T, D)`, as
//! PyTorch's `state_dict` does (there it is a `Parameter` with `requires_grad=False`).
//! MAE computes it in float64 and casts to float32; so does this.

use ndarray::Array2;

// ANCHOR: pos_embed
/// One axis: positions `(M)` → `(M, dim)`, $[\sin(x\,\omega_k)]_k$ then $[\cos(x\,\omega_k)]_k$,
/// $\omega_k = 10000^{-k/(dim/2)}$, in f64.
pub fn sincos_1d(dim: usize, positions: &[f64]) -> Array2<f64> {
    assert!(
        dim % 2 == 0,
        "a 1-D sin-cos embedding needs an even width, got {dim}"
    );
    let k = dim / 2;
    let mut out = Array2::zeros((positions.len(), dim));
    for (m, &x) in positions.iter().enumerate() {
        for i in 0..k {
            // $\omega_i = 1 / 10000^{i/K}$
            let omega = 1.0 / 10000f64.powf(i as f64 / k as f64);
            out[[m, i]] = (x * omega).sin();
            out[[m, k + i]] = (x * omega).cos();
        }
    }
    out
}

/// The `(g², dim)` table for a `g × g` grid of patches: row `i·g + j` is
/// `[sincos_1d(j), sincos_1d(i)]`, `dim/2` features each.
pub fn pos_embed_2d(dim: usize, grid: usize) -> Array2<f32> {
    pos_embed_grid(dim, grid, grid)
}

/// The `(h·w, dim)` table for a grid of `h` rows and `w` columns (DiT's
/// `get_2d_sincos_pos_embed` with `grid_size = (h, w)`): row `i·w + j` is
/// `[sincos_1d(j), sincos_1d(i)]`. Each position keeps its integer coordinates, so a wider
/// grid extends the table instead of stretching it: its first `w` columns are a narrower
/// grid's.
pub fn pos_embed_grid(dim: usize, h: usize, w: usize) -> Array2<f32> {
    assert!(
        dim % 4 == 0,
        "the 2-D sin-cos embedding needs a width divisible by 4, got {dim}"
    );
    let half = dim / 2;
    let t = h * w;
    // MAE's grid[0] (its "h") is the column index j, grid[1] the row index i.
    let cols: Vec<f64> = (0..t).map(|n| (n % w) as f64).collect();
    let rows: Vec<f64> = (0..t).map(|n| (n / w) as f64).collect();
    let first = sincos_1d(half, &cols); // (T, D/2)
    let second = sincos_1d(half, &rows); // (T, D/2)
    let mut e = Array2::zeros((t, dim));
    for n in 0..t {
        for c in 0..half {
            e[[n, c]] = first[[n, c]] as f32;
            e[[n, half + c]] = second[[n, c]] as f32;
        }
    }
    e
}
// ANCHOR_END: pos_embed
