//! The DiT block with adaLN-Zero conditioning (`DiTBlock` in facebookresearch/DiT
//! `models.py`; Peebles & Xie 2023, section 3.2), and its ungated variant adaLN.
//!
//! A pre-norm Transformer block whose two LayerNorms have no parameters of their own: their
//! scale and shift, and a gate on each residual branch, are regressed from the conditioning
//! `c` (timestep + label) by one Linear, six `D`-vectors per sample:
//!
//! $$[\beta_1, \gamma_1, \alpha_1, \beta_2, \gamma_2, \alpha_2] = W\,\mathrm{silu}(c) + b$$
//! $$x \leftarrow x + \alpha_1 \odot \mathrm{Attn}\big(\mathrm{LN}(x)(1 + \gamma_1) + \beta_1\big)$$
//! $$x \leftarrow x + \alpha_2 \odot \mathrm{MLP}\big(\mathrm{LN}(x)(1 + \gamma_2) + \beta_2\big)$$
//!
//! adaLN-*Zero*: `W` and `b` start at zero, so every gate $\alpha$ is zero and the block starts
//! as the identity; training opens the branches gradually.
//!
//! adaLN (the paper's Figure 5 baseline, [`DiTBlock::adaln`]) is the same block without the
//! gates: the Linear regresses four vectors $[\beta_1, \gamma_1, \beta_2, \gamma_2]$, the
//! residuals are plain $x + \text{branch}$, and `W` is Xavier-initialised like every other
//! Linear. The width of `adaLN_modulation.1` (6D or 4D) tells the two apart.
//!
//! Tokens are `(B·T, D)` rows for the whole batch, so each Linear is one GEMM over all
//! tokens. Parameter names are the reference's: `attn.qkv`, `attn.proj`, `mlp.fc1`,
//! `mlp.fc2`, `adaLN_modulation.1` (the SiLU is `adaLN_modulation.0`).

pub use super::attention_branch::{
    attention_branch, attention_branch_backward, attention_branch_infer, AttnBranchCache,
};
use super::caption_branch::{
    caption_branch, caption_branch_backward, caption_branch_infer, caption_cross_attention,
    CaptionBranchCache, Context,
};
use super::mlp::{Mlp, MlpCache};
use super::modulate::NormCache;
use super::modulate::{gated_add, gated_add_backward, norm_modulate, norm_modulate_backward};
use crate::nn::{xavier_linear, zero_linear};
use crate::nn::{ActivationCache, Attention, CrossAttention, Linear, LinearCache, Silu};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{s, Array2, Array3, ArrayView2, Axis, Ix2};

/// One DiT block: adaLN(-Zero) modulation, self-attention, MLP.
#[derive(Clone, Debug)]
pub struct DiTBlock {
    pub attn: Attention,
    pub mlp: Mlp,
    /// adaLN_modulation.1: D → 6D, zero-initialised (adaLN-Zero), or D → 4D, Xavier (adaLN)
    pub ada_ln: Linear,
    /// A text-conditioned block's attention to the caption, after the self-attention
    /// ([`caption_branch`](super::caption_branch)); `None` in a class-conditioned DiT.
    pub cross_attn: Option<CrossAttention>,
}

/// What [`DiTBlock::backward`] needs from [`DiTBlock::forward`].
pub struct DiTBlockCache {
    modulation: ModulationCache,
    attn: AttnBranchCache,
    cross: Option<CaptionBranchCache>,
    mlp: MlpBranchCache,
}

/// The modulation's input and Linear, and its output `m` (B, 6D): β₁ γ₁ α₁ β₂ γ₂ α₂
/// (adaLN: (B, 4D), β₁ γ₁ β₂ γ₂) — or, read per token, `m` (N, 6D) whose row `n` is row
/// `rows[n]` of the Linear's output ([`DiTBlock::modulation_rows`]).
pub struct ModulationCache {
    act: ActivationCache<Ix2>,
    ada_ln: LinearCache,
    pub m: Array2<f32>,
    rows: Option<(Vec<usize>, usize)>, // each token's row of c, and c's rows R
}

// ANCHOR: gather_scatter
/// Row `rows[n]` of `m` (R, K) as row `n` of the result (N, K): a per-token copy of the
/// conditioning rows.
pub fn gather_rows(m: &Array2<f32>, rows: &[usize]) -> Array2<f32> {
    m.select(Axis(0), rows)
}

/// Backward of [`gather_rows`]: row `n` of `dm` (N, K) added into row `rows[n]` of the
/// result (R, K), in token order.
pub fn scatter_rows(dm: &Array2<f32>, rows: &[usize], r: usize) -> Array2<f32> {
    let mut out = Array2::zeros((r, dm.ncols()));
    for (row, &i) in dm.outer_iter().zip(rows) {
        let mut o = out.row_mut(i);
        o += &row;
    }
    out
}
// ANCHOR_END: gather_scatter

/// The MLP branch: its modulated LayerNorm, the MLP, its output before the gate.
pub struct MlpBranchCache {
    norm: NormCache,
    mlp: MlpCache,
    f: Array2<f32>, // (N, D)
}

/// Chunk `k` of the modulation `(B, kD)`: column block `k·D .. (k+1)·D`, in the reference's
/// order shift, scale, gate (attention), shift, scale, gate (MLP) — adaLN: no gates.
pub(crate) fn chunk(m: &Array2<f32>, k: usize, d: usize) -> ArrayView2<'_, f32> {
    m.slice(s![.., k * d..(k + 1) * d])
}

impl DiTBlock {
    /// DiT's initialisation: Xavier-uniform Linears with zero biases, and the adaLN
    /// modulation at zero (adaLN-Zero).
    pub fn new(dim: usize, heads: usize, mlp_hidden: usize, rng: &mut Rng) -> Self {
        let (attn, mlp) = attention_and_mlp(dim, heads, mlp_hidden, rng);
        DiTBlock {
            attn,
            mlp,
            ada_ln: zero_linear(dim, 6 * dim),
            cross_attn: None,
        }
    }

    /// The adaLN block: a modulation of four vectors (no gates), Xavier-initialised like the
    /// other Linears, so the block is not the identity at the start.
    pub fn adaln(dim: usize, heads: usize, mlp_hidden: usize, rng: &mut Rng) -> Self {
        let (attn, mlp) = attention_and_mlp(dim, heads, mlp_hidden, rng);
        DiTBlock {
            attn,
            mlp,
            ada_ln: xavier_linear(dim, 4 * dim, rng),
            cross_attn: None,
        }
    }

    /// The same block attending to a caption after its self-attention, the branch's
    /// projection at zero (PixArt-α): it starts as the block without it.
    pub fn with_caption(mut self, rng: &mut Rng) -> Self {
        self.cross_attn = Some(caption_cross_attention(self.dim(), self.attn.heads, rng));
        self
    }

    /// Token width `D`.
    pub fn dim(&self) -> usize {
        self.attn.dim()
    }

    /// Whether the residual branches are gated (adaLN-Zero's six vectors) or not (adaLN's four).
    pub fn gated(&self) -> bool {
        self.ada_ln.d_out() == 6 * self.dim()
    }

    /// Modulation chunks per branch: shift, scale and (adaLN-Zero) gate.
    fn per_branch(&self) -> usize {
        per_branch(self.gated())
    }

    /// $[\beta_1, \gamma_1, \alpha_1, \beta_2, \gamma_2, \alpha_2] = W\,\mathrm{silu}(c) + b$
    /// c: (B, D) → m: (B, 6D) (adaLN: (B, 4D)), with what the backward needs.
    pub fn modulation(&self, c: &Array2<f32>) -> ModulationCache {
        let (sc, act) = Silu.forward(c);
        let (m, ada_ln) = self.ada_ln.forward(&sc);
        ModulationCache {
            act,
            ada_ln,
            m,
            rows: None,
        }
    }

    /// The modulation of conditioning rows `c` (R, D) read per token: token `n` takes row
    /// `rows[n]`, `m` (N, 6D). With `None`, [`modulation`](Self::modulation).
    pub fn modulation_rows(&self, c: &Array2<f32>, rows: Option<&[usize]>) -> ModulationCache {
        let mut cache = self.modulation(c);
        if let Some(rows) = rows {
            cache.m = gather_rows(&cache.m, rows);
            cache.rows = Some((rows.to_vec(), c.nrows()));
        }
        cache
    }

    /// The modulation without a cache, read per token when `rows` is given.
    pub fn modulation_infer(&self, c: &Array2<f32>, rows: Option<&[usize]>) -> Array2<f32> {
        let m = self.ada_ln.forward_infer(&Silu.forward_infer(c));
        match rows {
            Some(rows) => gather_rows(&m, rows),
            None => m,
        }
    }

    /// Backward of [`modulation`](Self::modulation): given `dm` (B, 6D), adds into the
    /// Linear's gradients and into `dc` (B, D).
    pub fn modulation_backward(
        &mut self,
        cache: &ModulationCache,
        dm: &Array2<f32>,
        dc: &mut Array2<f32>,
    ) {
        let scattered = cache
            .rows
            .as_ref()
            .map(|(rows, r)| scatter_rows(dm, rows, *r));
        let dm = scattered.as_ref().unwrap_or(dm);
        let dsc = self.ada_ln.backward(&cache.ada_ln, dm);
        *dc += &Silu.backward(&cache.act, &dsc);
    }

    // ANCHOR: adaln_zero_block
    /// x: (B·T, D) tokens, c: (B, D) conditioning → (B·T, D), keeping what backward needs.
    pub fn forward(&self, x: &Array2<f32>, c: &Array2<f32>) -> (Array2<f32>, DiTBlockCache) {
        self.forward_seq(x, c, x.nrows() / c.nrows(), None)
    }

    /// [`forward`](Self::forward) with the attention over consecutive sequences of `seq`
    /// tokens: sample `b`'s `T` rows are read with `c[b]`, and split into `T / seq`
    /// sequences that attend within themselves (a video's frames, or its positions). A
    /// block with a caption branch reads the captions `ctx` (one per sample).
    pub fn forward_seq(
        &self,
        x: &Array2<f32>,
        c: &Array2<f32>,
        seq: usize,
        ctx: Option<&Context>,
    ) -> (Array2<f32>, DiTBlockCache) {
        self.forward_rows(x, c, None, seq, ctx)
    }

    /// [`forward_seq`](Self::forward_seq) with the conditioning read per token: token `n`
    /// is modulated by row `rows[n]` of `c` (R, D) (a clip's given frames read the row of
    /// t = 0, [`crate::video::frame_mask`]). With `None`, one row per sample.
    pub fn forward_rows(
        &self,
        x: &Array2<f32>,
        c: &Array2<f32>,
        rows: Option<&[usize]>,
        seq: usize,
        ctx: Option<&Context>,
    ) -> (Array2<f32>, DiTBlockCache) {
        let modulation = self.modulation_rows(c, rows); // (B, 6D), or (N, 6D) per token
        let m = &modulation.m;
        // $x_1 = x + \alpha_1 \odot \mathrm{Attn}(\mathrm{LN}(x)(1 + \gamma_1) + \beta_1)$
        let (x1, attn) = attention_branch(&self.attn, self.gated(), x, m, seq, None);
        // $x_1 \mathrel{+}= \mathrm{CrossAttn}(x_1, y)$ in a text-conditioned block
        let (x1, cross) = match (&self.cross_attn, ctx) {
            (Some(cross), Some(ctx)) => {
                let (x1, cache) = caption_branch(cross, x1, ctx);
                (x1, Some(cache))
            }
            _ => (x1, None),
        };
        // $x_2 = x_1 + \alpha_2 \odot \mathrm{MLP}(\mathrm{LN}(x_1)(1 + \gamma_2) + \beta_2)$
        let (x2, mlp) = self.mlp_branch(x1, m);
        let cache = DiTBlockCache {
            modulation,
            attn,
            cross,
            mlp,
        };
        (x2, cache)
    }

    /// The MLP branch: $x_1 + \alpha_2 \odot \mathrm{MLP}(\mathrm{LN}(x_1)(1 + \gamma_2) + \beta_2)$.
    pub fn mlp_branch(
        &self,
        mut x1: Array2<f32>,
        m: &Array2<f32>,
    ) -> (Array2<f32>, MlpBranchCache) {
        let (s2, d) = (self.per_branch(), self.dim());
        let (h, norm) = norm_modulate(&x1, chunk(m, s2, d), chunk(m, s2 + 1, d));
        let (f, mlp) = self.mlp.forward(&h);
        add_branch(self.gated(), &mut x1, m, 1, &f);
        (x1, MlpBranchCache { norm, mlp, f })
    }
    // ANCHOR_END: adaln_zero_block

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array2<f32>, c: &Array2<f32>) -> Array2<f32> {
        self.forward_infer_seq(x, c, x.nrows() / c.nrows(), None)
    }

    /// [`forward_seq`](Self::forward_seq) without keeping anything.
    pub fn forward_infer_seq(
        &self,
        x: &Array2<f32>,
        c: &Array2<f32>,
        seq: usize,
        ctx: Option<&Context>,
    ) -> Array2<f32> {
        self.forward_infer_rows(x, c, None, seq, ctx)
    }

    /// [`forward_rows`](Self::forward_rows) without keeping anything.
    pub fn forward_infer_rows(
        &self,
        x: &Array2<f32>,
        c: &Array2<f32>,
        rows: Option<&[usize]>,
        seq: usize,
        ctx: Option<&Context>,
    ) -> Array2<f32> {
        let m = self.modulation_infer(c, rows);
        let x1 = attention_branch_infer(&self.attn, self.gated(), x, &m, seq, None);
        let x1 = self.caption_infer(x1, ctx);
        self.mlp_branch_infer(x1, &m)
    }

    /// The caption branch, if the block has one and captions are given; else `x`.
    pub fn caption_infer(&self, x: Array2<f32>, ctx: Option<&Context>) -> Array2<f32> {
        match (&self.cross_attn, ctx) {
            (Some(cross), Some(ctx)) => caption_branch_infer(cross, x, ctx),
            _ => x,
        }
    }

    /// [`mlp_branch`](Self::mlp_branch) without keeping anything.
    pub fn mlp_branch_infer(&self, mut x1: Array2<f32>, m: &Array2<f32>) -> Array2<f32> {
        let (s2, d) = (self.per_branch(), self.dim());
        let (h, _) = norm_modulate(&x1, chunk(m, s2, d), chunk(m, s2 + 1, d));
        let f = self.mlp.forward_infer(&h);
        add_branch(self.gated(), &mut x1, m, 1, &f);
        x1
    }

    // ANCHOR: adaln_zero_block_backward
    /// Given `dy = ∂L/∂x₂` (B·T, D), adds into every parameter's gradient and into
    /// `dc = ∂L/∂c` (B, D), and returns `∂L/∂x` (B·T, D).
    pub fn backward(
        &mut self,
        cache: &DiTBlockCache,
        dy: &Array2<f32>,
        dc: &mut Array2<f32>,
    ) -> Array2<f32> {
        self.backward_seq(cache, dy, dc, None)
    }

    /// [`backward`](Self::backward) of a block that may have read captions: their gradient
    /// is added into `dctx` (B, L, D).
    pub fn backward_seq(
        &mut self,
        cache: &DiTBlockCache,
        dy: &Array2<f32>,
        dc: &mut Array2<f32>,
        dctx: Option<&mut Array3<f32>>,
    ) -> Array2<f32> {
        let m = &cache.modulation.m;
        let mut dm = Array2::zeros(m.raw_dim()); // (B, 6D): each branch adds its chunks
                                                 // MLP branch: $x_2 = x_1 + \alpha_2 \odot f$
        let dx1 = self.mlp_branch_backward(&cache.mlp, dy, m, &mut dm);
        let dx1 = self.caption_backward(cache.cross.as_ref(), dx1, dctx);
        // attention branch: $x_1 = x + \alpha_1 \odot o$
        let gated = self.gated();
        let dx = attention_branch_backward(&mut self.attn, gated, &cache.attn, dx1, m, &mut dm);
        // the modulation: the Linear and the SiLU
        self.modulation_backward(&cache.modulation, &dm, dc);
        dx
    }

    /// Backward of [`mlp_branch`](Self::mlp_branch): given `dy = ∂L/∂x₂`, adds the
    /// branch's chunks of `∂L/∂m` into `dm` and returns `∂L/∂x₁`.
    pub fn mlp_branch_backward(
        &mut self,
        cache: &MlpBranchCache,
        dy: &Array2<f32>,
        m: &Array2<f32>,
        dm: &mut Array2<f32>,
    ) -> Array2<f32> {
        let (gated, s2, d) = (self.gated(), self.per_branch(), self.dim());
        let (df, d_alpha2) = add_branch_backward(gated, dy, m, 1, &cache.f);
        let dh = self.mlp.backward(&cache.mlp, &df);
        let mut dx1 = dy.clone(); // the residual path
        let (d_beta2, d_gamma2) =
            norm_modulate_backward(&cache.norm, &dh, chunk(m, s2 + 1, d), &mut dx1);
        add_chunk(dm, s2, d, &d_beta2);
        add_chunk(dm, s2 + 1, d, &d_gamma2);
        if let Some(g) = d_alpha2 {
            add_chunk(dm, 5, d, &g);
        }
        dx1
    }
    // ANCHOR_END: adaln_zero_block_backward

    /// Backward of the caption branch, when the forward pass ran it.
    pub fn caption_backward(
        &mut self,
        cache: Option<&CaptionBranchCache>,
        dx: Array2<f32>,
        dctx: Option<&mut Array3<f32>>,
    ) -> Array2<f32> {
        match (&mut self.cross_attn, cache, dctx) {
            (Some(cross), Some(cache), Some(dctx)) => {
                caption_branch_backward(cross, cache, dx, dctx)
            }
            (_, None, _) => dx,
            _ => panic!("DiT block: the captions' gradient needs somewhere to go (dctx)"),
        }
    }
}

/// Modulation chunks per branch: shift, scale and, when gated, the gate.
fn per_branch(gated: bool) -> usize {
    if gated {
        3
    } else {
        2
    }
}

/// `dm[:, k·D .. (k+1)·D] += g`.
pub(crate) fn add_chunk(dm: &mut Array2<f32>, k: usize, d: usize, g: &Array2<f32>) {
    let mut view = dm.slice_mut(s![.., k * d..(k + 1) * d]);
    view += g;
}

// ANCHOR: adaln_branch
/// The residual $x \mathrel{+}= \alpha \odot y$ of branch `k` (0 attention, 1 MLP), or
/// $x \mathrel{+}= y$ without gates.
pub(crate) fn add_branch(
    gated: bool,
    x: &mut Array2<f32>,
    m: &Array2<f32>,
    k: usize,
    y: &Array2<f32>,
) {
    if gated {
        gated_add(x, chunk(m, 3 * k + 2, x.ncols()), y);
    } else {
        *x += y;
    }
}

/// Backward of [`add_branch`] through the branch: $\partial L/\partial y$ and, with a gate,
/// $\partial L/\partial\alpha$.
pub(crate) fn add_branch_backward(
    gated: bool,
    dx: &Array2<f32>,
    m: &Array2<f32>,
    k: usize,
    y: &Array2<f32>,
) -> (Array2<f32>, Option<Array2<f32>>) {
    if gated {
        let (dy, d_gate) = gated_add_backward(dx, chunk(m, 3 * k + 2, dx.ncols()), y);
        (dy, Some(d_gate))
    } else {
        (dx.clone(), None)
    }
}
// ANCHOR_END: adaln_branch

/// The attention and the MLP of a block, DiT's way: Xavier-uniform weights, zero biases.
fn attention_and_mlp(
    dim: usize,
    heads: usize,
    mlp_hidden: usize,
    rng: &mut Rng,
) -> (Attention, Mlp) {
    assert!(
        heads > 0 && dim % heads == 0,
        "DiT block: {dim} channels do not split into {heads} heads"
    );
    let attn = Attention {
        qkv: xavier_linear(dim, 3 * dim, rng),
        proj: xavier_linear(dim, dim, rng),
        heads,
        kernel: crate::nn::Kernel::Auto,
    };
    (attn, Mlp::new(dim, mlp_hidden, rng))
}

impl Parameters for DiTBlock {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.attn.visit(&join(prefix, "attn"), f);
        self.mlp.visit(&join(prefix, "mlp"), f);
        self.ada_ln.visit(&join(prefix, "adaLN_modulation.1"), f);
        if let Some(cross) = &mut self.cross_attn {
            cross.visit(&join(prefix, "cross_attn"), f);
        }
    }
}
