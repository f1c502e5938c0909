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
//!
//! The other conditioning mechanisms change the block and the final layer's modulation:
//!
//! - adaLN: a modulation of $4D^2$ per block instead of $6D^2$;
//! - cross-attention: no modulation; per block a cross-attention whose query and output
//!   Linears run on the $T$ tokens ($2TD^2$), whose key-value Linear runs on the two
//!   conditioning tokens ($2 \cdot 2D^2$), and whose products $QK^\top$, $PV$ are $T \cdot 2 \cdot D$
//!   each;
//! - in-context: no modulation; every block runs on $T + 2$ tokens.
//!
//! In-context and cross-attention end in a LayerNorm (not counted) instead of adaLN, so their
//! final layer is the Linear alone.

use super::conditioning::Conditioning;
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
    // a Transformer block on n tokens: qkv (3D²) and proj (D²) per token, QKᵀ and PV (n²D
    // each), the MLP (2·D·hidden per token)
    let transformer = |n: u64| n * (3 * d * d + d * d) + 2 * n * n * d + n * 2 * d * hidden;
    // one block with its conditioning, and the final layer's modulation (per sample)
    let (block, final_modulation) = match c.conditioning {
        // the adaLN Linear D → 6D per sample; the final adaLN D → 2D
        Conditioning::AdaLnZero => (transformer(t) + 6 * d * d, 2 * d * d),
        // D → 4D: no gates
        Conditioning::AdaLn => (transformer(t) + 4 * d * d, 2 * d * d),
        // cross-attention: q and proj on T tokens, kv (D → 2D) on the 2 conditioning tokens,
        // QKᵀ and PV (T·2·D each)
        Conditioning::CrossAttention => {
            let cross = t * 2 * d * d + 2 * (2 * d * d) + 2 * (t * 2 * d);
            (transformer(t) + cross, 0)
        }
        // every block on T + 2 tokens
        Conditioning::InContext => (transformer(t + 2), 0),
    };
    // final layer: the Linear D → p·p·C_out per image token
    let last = final_modulation + t * d * (p * p * c.out_channels() as u64);
    patch + t_mlp + c.depth as u64 * block + last
}
// ANCHOR_END: dit_flops

impl DiT {
    /// Multiply-accumulates of one forward pass of ONE sample: [`dit_flops`] of the config.
    pub fn flops(&self) -> u64 {
        dit_flops(&self.config)
    }
}
