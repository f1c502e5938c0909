//! The attention branch of a DiT block, on its own so the video blocks can run it over any
//! grouping of the tokens:
//!
//! $$x_1 = x + \alpha_1 \odot \mathrm{Attn}(a), \qquad a = \mathrm{LN}(x)(1 + \gamma_1) + \beta_1\,[+ E]$$
//!
//! over consecutive sequences of `seq` tokens. [`DiTBlock`](super::DiTBlock) calls it with its
//! whole token sequence; the video blocks with their spatial attention (`seq = S`) and their
//! temporal one (`seq = F`, the tokens rearranged `(b f s) → (b s f)`). The modulation chunks
//! and the gated residual are the block's own ([`super::block`]).

use super::block::{add_branch, add_branch_backward, add_chunk, chunk};
use super::modulate::{norm_modulate, norm_modulate_backward, NormCache};
use crate::nn::{Attention, AttentionCache};
use ndarray::{Array2, Axis};

/// One attention branch: the modulated LayerNorm, the attention over sequences of `seq`
/// tokens, and the branch's output before its gate.
pub struct AttnBranchCache {
    norm: NormCache,
    attn: AttentionCache,
    o: Array2<f32>, // (N, D)
    seq: usize,
}

// ANCHOR: attention_branch
/// The attention branch of a block, $x + \alpha_1 \odot \mathrm{Attn}(a)$ with
/// $a = \mathrm{LN}(x)(1 + \gamma_1) + \beta_1\,[+ E]$, for any attention `attn` over
/// consecutive sequences of `seq` tokens: `x` (N, D), `m` (B, 6D) read per sample, `pos` an
/// optional fixed table (seq, D) added to every sequence's input `a`. A video block calls it
/// with its spatial attention (`seq = S`) and its temporal one (`seq = F`, tokens rearranged).
pub fn attention_branch(
    attn: &Attention,
    gated: bool,
    x: &Array2<f32>,
    m: &Array2<f32>,
    seq: usize,
    pos: Option<&Array2<f32>>,
) -> (Array2<f32>, AttnBranchCache) {
    let (n, d) = x.dim();
    let (mut a, norm) = norm_modulate(x, chunk(m, 0, d), chunk(m, 1, d));
    add_pos(&mut a, pos);
    let a = a
        .into_shape_with_order((n / seq, seq, d))
        .expect("whole sequences"); // (N/seq, seq, D)
    let (o, attn_cache) = attn.forward(&a);
    let o = o.into_shape_with_order((n, d)).expect("contiguous"); // (N, D)
    let mut x1 = x.clone();
    add_branch(gated, &mut x1, m, 0, &o);
    let cache = AttnBranchCache {
        norm,
        attn: attn_cache,
        o,
        seq,
    };
    (x1, cache)
}
// ANCHOR_END: attention_branch

/// [`attention_branch`] without keeping anything.
pub fn attention_branch_infer(
    attn: &Attention,
    gated: bool,
    x: &Array2<f32>,
    m: &Array2<f32>,
    seq: usize,
    pos: Option<&Array2<f32>>,
) -> Array2<f32> {
    let (n, d) = x.dim();
    let (mut a, _) = norm_modulate(x, chunk(m, 0, d), chunk(m, 1, d));
    add_pos(&mut a, pos);
    let a = a
        .into_shape_with_order((n / seq, seq, d))
        .expect("whole sequences");
    let o = attn
        .forward_infer(&a)
        .into_shape_with_order((n, d))
        .expect("contiguous");
    let mut x1 = x.clone();
    add_branch(gated, &mut x1, m, 0, &o);
    x1
}

/// Backward of [`attention_branch`]: given `dx1 = ∂L/∂x₁`, adds into the attention's
/// gradients and the branch's chunks of `∂L/∂m` (`dm`), and returns `∂L/∂x`. The table
/// `pos` is fixed: it changes nothing here.
pub fn attention_branch_backward(
    attn: &mut Attention,
    gated: bool,
    cache: &AttnBranchCache,
    dx1: Array2<f32>,
    m: &Array2<f32>,
    dm: &mut Array2<f32>,
) -> Array2<f32> {
    let (n, d) = dx1.dim();
    let (d_o, d_alpha1) = add_branch_backward(gated, &dx1, m, 0, &cache.o);
    let d_o = d_o
        .into_shape_with_order((n / cache.seq, cache.seq, d))
        .expect("whole sequences");
    let da = attn.backward(&cache.attn, &d_o);
    let da = da.into_shape_with_order((n, d)).expect("contiguous");
    let mut dx = dx1; // the residual path
    let (d_beta1, d_gamma1) = norm_modulate_backward(&cache.norm, &da, chunk(m, 1, d), &mut dx);
    add_chunk(dm, 0, d, &d_beta1);
    add_chunk(dm, 1, d, &d_gamma1);
    if let Some(g) = d_alpha1 {
        add_chunk(dm, 2, d, &g);
    }
    dx
}

/// Every sequence of `a` (N, D) plus the table `pos` (seq, D), if any.
fn add_pos(a: &mut Array2<f32>, pos: Option<&Array2<f32>>) {
    if let Some(pos) = pos {
        for mut sequence in a.axis_chunks_iter_mut(Axis(0), pos.nrows()) {
            sequence += pos;
        }
    }
}
