//! How much a DiT computes: the "Gflops" of the DiT paper (Peebles & Xie 2023, Table 4),
//! counted from the config alone, so the big models can be sized without being built.
//!
//! The convention (fvcore's, as the paper used it): one multiply-accumulate is one flop, and
//! only products are counted, for ONE sample —
//!
//! - every Linear: $d_\text{in} \cdot d_\text{out}$ per token it is applied to (the patch
//!   embedding is a Linear on each of the $T$ patches);
//! - attention's two products $QK^\top$ and $PV$: $T^2 D$ each;
//! - the conditioning Linears (timestep MLP, every adaLN modulation) once per sample, not
//!   per token.
//!
//! Not counted: biases, LayerNorm, the modulation's scale-shift-gate, activations, softmax,
//! the sinusoids and the label lookup. The per-block term
//! $T(12 D^2) + 2 T^2 D + 6 D^2$ (with MLP ratio 4) dominates: for DiT-XL/2 on a $32^2$
//! latent ($T = 256$, $D = 1152$, 28 blocks) the total is 118.6 G, for DiT-S/2 6.06 G, as
//! the paper reports.

use super::config::DiTConfig;
use super::embed::FREQ_DIM;
use super::model::DiT;

// ANCHOR: dit_flops
/// Multiply-accumulates of one forward pass of ONE sample (the paper's Gflops × 10⁹).
pub fn dit_flops(config: &DiTConfig) -> u64 {
    let c = config;
    let (t, d) = (c.num_patches() as u64, c.hidden_size as u64);
    let (p, hidden) = (c.patch_size as u64, c.mlp_hidden() as u64);
    // patch embedding: a Linear C·p·p → D on every token
    let patch = t * (c.in_channels as u64 * p * p) * d;
    // timestep MLP: 256 → D → D, once per sample
    let t_mlp = FREQ_DIM as u64 * d + d * d;
    // one block: qkv (3D²) and proj (D²) per token, QKᵀ and PV (T²D each), the MLP
    // (2·D·hidden per token), the adaLN Linear D → 6D per sample
    let block = t * (3 * d * d + d * d) + 2 * t * t * d + t * 2 * d * hidden + 6 * d * d;
    // final layer: adaLN D → 2D per sample, Linear D → p·p·C_out per token
    let last = 2 * d * d + t * d * (p * p * c.out_channels() as u64);
    patch + t_mlp + c.depth as u64 * block + last
}
// ANCHOR_END: dit_flops

impl DiT {
    /// Multiply-accumulates of one forward pass of ONE sample: [`dit_flops`] of the config.
    pub fn flops(&self) -> u64 {
        dit_flops(&self.config)
    }
}
