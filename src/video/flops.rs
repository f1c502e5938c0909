//! The Gflops of a space-time DiT, counted as the DiT paper counts (multiply-accumulates of
//! one forward pass of one clip), per layout. With $T = F'S$ tokens per clip, width $D$ and
//! an MLP of width $4D$, a block's Linears cost the same in every layout,
//! $T(4D^2 + 8D^2)$ per attention-and-MLP; what differs is the attention products
//! $QK^\top$ and $PV$:
//!
//! | layout | attention products per block |
//! |---|---|
//! | full | $2T^2D = 2F'^2S^2D$ |
//! | alternating (a spatial and a temporal block) | $2F'S^2D$ and $2SF'^2D$ |
//! | factorized (both in one block) | $2F'S^2D + 2SF'^2D$, and a second $4D^2$ per token |
//!
//! so `full` grows with $F'^2$ and the other two almost linearly in $F'$ while $F' < S$.

use super::config::{Layout, VideoDiTConfig};
use super::model::VideoDiT;
use crate::dit::embed::FREQ_DIM;

// ANCHOR: video_flops
/// Multiply-accumulates of one forward pass of ONE clip of the trained length.
pub fn video_flops(config: &VideoDiTConfig) -> u64 {
    let c = &config.dit;
    let (f, s, d) = (
        config.token_frames() as u64,
        config.tokens_per_frame() as u64,
        c.hidden_size as u64,
    );
    let (t, hidden) = (f * s, c.mlp_hidden() as u64);
    let (p, pt) = (c.patch_size as u64, config.temporal_patch as u64);
    // patch embedding: C·p_t·p·p → D on every token; timestep MLP 256 → D → D
    let patch = t * (c.in_channels as u64 * pt * p * p) * d;
    let t_mlp = FREQ_DIM as u64 * d + d * d;
    // an attention over `k` sequences of `n` tokens: qkv and proj (4D² per token), QKᵀ and PV
    let attention = |k: u64, n: u64| k * (n * 4 * d * d + 2 * n * n * d);
    // the MLP on every token, and one adaLN modulation D → 6D per clip
    let (mlp, modulation) = (t * 2 * d * hidden, 6 * d * d);
    let depth = c.depth as u64;
    let blocks = match config.layout {
        Layout::Full => depth * (attention(1, t) + mlp + modulation),
        Layout::Alternating => {
            let spatial = attention(f, s) + mlp + modulation;
            let temporal = attention(s, f) + mlp + modulation;
            depth / 2 * (spatial + temporal)
        }
        Layout::Factorized => depth * (attention(f, s) + attention(s, f) + mlp + modulation),
    };
    // final layer: its modulation D → 2D, and D → p_t·p·p·C_out per token
    let last = 2 * d * d + t * d * (pt * p * p * c.out_channels() as u64);
    patch + t_mlp + blocks + last
}
// ANCHOR_END: video_flops

impl VideoDiT {
    /// [`video_flops`] of the config.
    pub fn flops(&self) -> u64 {
        video_flops(&self.config)
    }
}
