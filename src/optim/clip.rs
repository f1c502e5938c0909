//! Global-norm gradient clipping, as PyTorch's `torch.nn.utils.clip_grad_norm_`.
//!
//! All gradients are seen as one long vector `g`. If its length $\lVert g \rVert_2$ exceeds
//! `max_norm`, every gradient is scaled by the same factor so the length becomes `max_norm`:
//! the direction of the step is kept, only a rare huge step (a bad batch, a loss spike) is
//! shortened.

use super::{flat, flat_mut, CHUNK};
use crate::param::Parameters;
use rayon::prelude::*;

/// $\lVert g \rVert_2$ over every gradient of `model`, summed in `f64` over fixed chunks in a
/// fixed order (so the same bits on any thread count).
pub fn grad_norm(model: &mut impl Parameters) -> f32 {
    let mut sum_sq = 0.0f64;
    model.visit("", &mut |_, p| {
        let partial: Vec<f64> = flat(&p.grad)
            .par_chunks(CHUNK)
            .map(|g| g.iter().map(|&x| (x as f64) * (x as f64)).sum())
            .collect();
        sum_sq += partial.iter().sum::<f64>();
    });
    sum_sq.sqrt() as f32
}

// ANCHOR: clip
/// Scales all gradients by `max_norm / (norm + 1e-6)` when that factor is below 1, and returns
/// the norm *before* clipping (log it: it is the best early warning of a diverging run).
pub fn clip_grad_norm(model: &mut impl Parameters, max_norm: f32) -> f32 {
    let norm = grad_norm(model);
    // $c = \text{max\_norm} / (\lVert g \rVert + 10^{-6})$, applied only if $c < 1$
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        model.visit("", &mut |_, p| {
            flat_mut(&mut p.grad)
                .par_chunks_mut(CHUNK)
                .for_each(|g| g.iter_mut().for_each(|x| *x *= coef));
        });
    }
    norm
}
// ANCHOR_END: clip
