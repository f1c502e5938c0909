//! The sinusoidal timestep embedding, the first layer of every denoiser's timestep MLP (the
//! U-Net's, DiT's, the toy MLP's): the Transformer's position sinusoids (Vaswani et al. 2017,
//! <https://arxiv.org/abs/1706.03762>) of `t`, as in DiT's
//! `TimestepEmbedder.timestep_embedding` (`[cos, sin]` order, max period 10000). It has no
//! parameters and no backward: `t` is an input, never trained.

use ndarray::Array2;

// ANCHOR: timestep_embedding
/// Sinusoidal embedding of (possibly fractional) timesteps: `(N,) → (N, dim)`.
///
/// $\omega_i = \text{max\_period}^{-i/h}$ for $i < h = \lfloor dim/2 \rfloor$;
/// $e(t) = [\cos(t\,\omega_0), …, \cos(t\,\omega_{h-1}), \sin(t\,\omega_0), …, \sin(t\,\omega_{h-1})]$,
/// padded with one zero column when `dim` is odd.
pub fn timestep_embedding(t: &[f32], dim: usize, max_period: f32) -> Array2<f32> {
    let half = dim / 2;
    let freqs: Vec<f32> = (0..half)
        .map(|i| (-(max_period.ln()) * i as f32 / half as f32).exp())
        .collect();
    let mut e = Array2::zeros((t.len(), dim));
    for (n, &tn) in t.iter().enumerate() {
        for (i, &w) in freqs.iter().enumerate() {
            let arg = tn * w;
            e[[n, i]] = arg.cos();
            e[[n, half + i]] = arg.sin();
        }
    }
    e
}
// ANCHOR_END: timestep_embedding
