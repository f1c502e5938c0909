//! The factorized space-time block (Open-Sora 1.0's `STDiTBlock`): DiT's adaLN-Zero block
//! with a temporal attention between its spatial attention and its MLP.
//!
//! $$x_1 = x + \alpha_1 \odot \mathrm{Attn}_s\big(\mathrm{LN}(x)(1 + \gamma_1) + \beta_1\big)
//!   \quad\text{over each frame's } S \text{ tokens}$$
//! $$x_2 = x_1 + \alpha_1 \odot \mathrm{Attn}_t\big(\mathrm{LN}(x_1)(1 + \gamma_1) + \beta_1\,[+ E_t]\big)
//!   \quad\text{over each position's } F' \text{ tokens}$$
//! $$x_3 = x_2 + \alpha_2 \odot \mathrm{MLP}\big(\mathrm{LN}(x_2)(1 + \gamma_2) + \beta_2\big)$$
//!
//! As in STDiT the temporal branch shares the spatial branch's modulation (one adaLN Linear
//! of $6D$ per block, gate $\alpha_1$ on both), the first block adds the temporal position
//! table $E_t$ to its temporal attention's input (not to the residual stream), and the
//! temporal attention's output projection `attn_temp.proj` starts at zero. STDiT feeds the
//! temporal attention the raw tokens; here they go through the same modulated LayerNorm as
//! the spatial attention's, so both attentions see tokens at unit scale. The spatial
//! attention, the MLP and the modulation are [`DiTBlock`]'s own code, not a copy.

use crate::dit::block::{
    attention_branch, attention_branch_backward, attention_branch_infer, AttnBranchCache,
    MlpBranchCache, ModulationCache,
};
use crate::dit::caption_branch::{caption_branch, CaptionBranchCache, Context};
use crate::dit::DiTBlock;
use crate::nn::{xavier_linear, zero_linear, Attention};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{Array2, Array3};

use super::patch::{to_spatial, to_temporal};

/// A DiT block with a temporal attention: names `attn`, `attn_temp`, `mlp`,
/// `adaLN_modulation.1`.
#[derive(Clone, Debug)]
pub struct FactorizedBlock {
    pub block: DiTBlock,
    pub attn_temp: Attention,
}

/// What [`FactorizedBlock::backward`] needs.
pub struct FactorizedCache {
    modulation: ModulationCache,
    spatial: AttnBranchCache,
    temporal: AttnBranchCache,
    cross: Option<CaptionBranchCache>,
    mlp: MlpBranchCache,
    per_token: bool, // the modulation was read per token (a frame mask)
}

/// The token grid of a batch of clips: `F'` token frames of `S` tokens.
#[derive(Clone, Copy, Debug)]
pub struct Grid {
    pub frames: usize,
    pub tokens: usize,
}

impl FactorizedBlock {
    /// DiT's block (Xavier, adaLN-Zero) and a temporal attention whose `qkv` is Xavier and
    /// whose `proj` is zero, so the block starts as the identity and, once the spatial part
    /// has trained, the temporal part starts adding nothing.
    pub fn new(dim: usize, heads: usize, mlp_hidden: usize, rng: &mut Rng) -> Self {
        let block = DiTBlock::new(dim, heads, mlp_hidden, rng);
        FactorizedBlock {
            block,
            attn_temp: zero_temporal_attention(dim, heads, rng),
        }
    }

    /// With `text`, the block also attends to a caption (a zero-projection caption branch).
    pub fn caption(mut self, text: bool, rng: &mut Rng) -> Self {
        if text {
            self.block = self.block.with_caption(rng);
        }
        self
    }

    // ANCHOR: factorized_forward
    /// x: (B·F'·S, D) tokens in `(b f s)` order, c: (B, D) → (B·F'·S, D), keeping what
    /// backward needs. `temp_embed` (F', D) is added to the temporal attention's input; a
    /// text-conditioned block reads the captions `ctx` after both attentions (STDiT's order).
    pub fn forward(
        &self,
        x: &Array2<f32>,
        c: &Array2<f32>,
        grid: Grid,
        temp_embed: Option<&Array2<f32>>,
        ctx: Option<&Context>,
    ) -> (Array2<f32>, FactorizedCache) {
        self.forward_rows(x, c, None, grid, temp_embed, ctx)
    }

    /// [`forward`](Self::forward) with token `n` (in `(b f s)` order) modulated by row
    /// `rows[n]` of `c` (R, D); with `None`, one row per clip.
    pub fn forward_rows(
        &self,
        x: &Array2<f32>,
        c: &Array2<f32>,
        rows: Option<&[usize]>,
        grid: Grid,
        temp_embed: Option<&Array2<f32>>,
        ctx: Option<&Context>,
    ) -> (Array2<f32>, FactorizedCache) {
        let (f, s, gated) = (grid.frames, grid.tokens, self.block.gated());
        let modulation = self.block.modulation_rows(c, rows); // (B, 6D) or (N, 6D)
        let m = &modulation.m;
        // spatial: each frame's S tokens, (b f) s d
        let (x1, spatial) = attention_branch(&self.block.attn, gated, x, m, s, None);
        // temporal: '(b f) s d -> (b s) f d', attention over F', and back (per-token
        // modulation rows move with their tokens)
        let xt = to_temporal(&x1, f, s);
        let mt = rows.map(|_| to_temporal(m, f, s));
        let m_t = mt.as_ref().unwrap_or(m);
        let (xt, temporal) = attention_branch(&self.attn_temp, gated, &xt, m_t, f, temp_embed);
        let x2 = to_spatial(&xt, f, s);
        // the caption: $x_2 \mathrel{+}= \mathrm{CrossAttn}(x_2, y)$
        let (x2, cross) = match (&self.block.cross_attn, ctx) {
            (Some(cross), Some(ctx)) => {
                let (x2, cache) = caption_branch(cross, x2, ctx);
                (x2, Some(cache))
            }
            _ => (x2, None),
        };
        // the MLP on every token
        let (x3, mlp) = self.block.mlp_branch(x2, m);
        let cache = FactorizedCache {
            modulation,
            spatial,
            temporal,
            cross,
            mlp,
            per_token: rows.is_some(),
        };
        (x3, cache)
    }
    // ANCHOR_END: factorized_forward

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(
        &self,
        x: &Array2<f32>,
        c: &Array2<f32>,
        grid: Grid,
        temp_embed: Option<&Array2<f32>>,
        ctx: Option<&Context>,
    ) -> Array2<f32> {
        self.forward_infer_rows(x, c, None, grid, temp_embed, ctx)
    }

    /// [`forward_rows`](Self::forward_rows) without keeping anything.
    pub fn forward_infer_rows(
        &self,
        x: &Array2<f32>,
        c: &Array2<f32>,
        rows: Option<&[usize]>,
        grid: Grid,
        temp_embed: Option<&Array2<f32>>,
        ctx: Option<&Context>,
    ) -> Array2<f32> {
        let (f, s, gated) = (grid.frames, grid.tokens, self.block.gated());
        let m = self.block.modulation_infer(c, rows);
        let x1 = attention_branch_infer(&self.block.attn, gated, x, &m, s, None);
        let xt = to_temporal(&x1, f, s);
        let mt = rows.map(|_| to_temporal(&m, f, s));
        let m_t = mt.as_ref().unwrap_or(&m);
        let xt = attention_branch_infer(&self.attn_temp, gated, &xt, m_t, f, temp_embed);
        let x2 = self.block.caption_infer(to_spatial(&xt, f, s), ctx);
        self.block.mlp_branch_infer(x2, &m)
    }

    /// Given `dy` (B·F'·S, D), adds into every parameter's gradient, into `dc` (B, D) and,
    /// if it read captions, into `dctx` (B, L, D); returns `∂L/∂x`.
    pub fn backward(
        &mut self,
        cache: &FactorizedCache,
        dy: &Array2<f32>,
        dc: &mut Array2<f32>,
        grid: Grid,
        dctx: Option<&mut Array3<f32>>,
    ) -> Array2<f32> {
        let (f, s, gated) = (grid.frames, grid.tokens, self.block.gated());
        let m = &cache.modulation.m;
        let mut dm = Array2::zeros(m.raw_dim()); // both attentions add into α₁, β₁, γ₁
        let dx2 = self.block.mlp_branch_backward(&cache.mlp, dy, m, &mut dm);
        let dx2 = self.block.caption_backward(cache.cross.as_ref(), dx2, dctx);
        // '(b f) s d -> (b s) f d' is a permutation: its backward is the inverse one
        let dxt = to_temporal(&dx2, f, s);
        let dx1 = if cache.per_token {
            // per-token rows: the temporal branch read them in (b s f) order
            let mt = to_temporal(m, f, s);
            let mut dmt = Array2::zeros(mt.raw_dim());
            let g = &cache.temporal;
            let dxt = attention_branch_backward(&mut self.attn_temp, gated, g, dxt, &mt, &mut dmt);
            dm += &to_spatial(&dmt, f, s);
            to_spatial(&dxt, f, s)
        } else {
            let g = &cache.temporal;
            let dxt = attention_branch_backward(&mut self.attn_temp, gated, g, dxt, m, &mut dm);
            to_spatial(&dxt, f, s)
        };
        let dx =
            attention_branch_backward(&mut self.block.attn, gated, &cache.spatial, dx1, m, &mut dm);
        self.block.modulation_backward(&cache.modulation, &dm, dc);
        dx
    }
}

/// A temporal attention that starts adding nothing: Xavier `qkv`, zero `proj`.
pub fn zero_temporal_attention(dim: usize, heads: usize, rng: &mut Rng) -> Attention {
    Attention {
        qkv: xavier_linear(dim, 3 * dim, rng),
        proj: zero_linear(dim, dim),
        heads,
        kernel: crate::nn::Kernel::Auto,
    }
}

impl Parameters for FactorizedBlock {
    /// `attn`, `mlp`, `adaLN_modulation.1` (the DiT block's) and `attn_temp`.
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.block.visit(prefix, f);
        self.attn_temp.visit(&join(prefix, "attn_temp"), f);
    }
}
