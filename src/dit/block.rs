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

use super::mlp::{Mlp, MlpCache};
use super::modulate::NormCache;
use super::modulate::{gated_add, gated_add_backward, norm_modulate, norm_modulate_backward};
use crate::nn::{xavier_linear, zero_linear};
use crate::nn::{ActivationCache, Attention, AttentionCache, Linear, LinearCache, Silu};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{s, Array2, ArrayView2, Ix2};

/// One DiT block: adaLN(-Zero) modulation, self-attention, MLP.
#[derive(Clone, Debug)]
pub struct DiTBlock {
    pub attn: Attention,
    pub mlp: Mlp,
    /// adaLN_modulation.1: D → 6D, zero-initialised (adaLN-Zero), or D → 4D, Xavier (adaLN)
    pub ada_ln: Linear,
}

/// What [`DiTBlock::backward`] needs from [`DiTBlock::forward`].
pub struct DiTBlockCache {
    act: ActivationCache<Ix2>,
    ada_ln: LinearCache,
    m: Array2<f32>, // (B, 6D): β₁ γ₁ α₁ β₂ γ₂ α₂ (adaLN: (B, 4D), β₁ γ₁ β₂ γ₂)
    norm1: NormCache,
    attn: AttentionCache,
    o: Array2<f32>, // (B·T, D): the attention branch's output, before its gate
    norm2: NormCache,
    mlp: MlpCache,
    f: Array2<f32>, // (B·T, D): the MLP branch's output, before its gate
}

/// Chunk `k` of the modulation `(B, kD)`: column block `k·D .. (k+1)·D`, in the reference's
/// order shift, scale, gate (attention), shift, scale, gate (MLP) — adaLN: no gates.
fn chunk(m: &Array2<f32>, k: usize, d: usize) -> ArrayView2<'_, f32> {
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
        }
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
        if self.gated() {
            3
        } else {
            2
        }
    }

    // ANCHOR: adaln_branch
    /// The residual $x \mathrel{+}= \alpha \odot y$ of branch `k` (0 attention, 1 MLP), or
    /// $x \mathrel{+}= y$ without gates.
    fn add_branch(&self, x: &mut Array2<f32>, m: &Array2<f32>, k: usize, y: &Array2<f32>) {
        if self.gated() {
            gated_add(x, chunk(m, 3 * k + 2, self.dim()), y);
        } else {
            *x += y;
        }
    }

    /// Backward of [`add_branch`](Self::add_branch) through the branch: $\partial L/\partial y$
    /// and, with a gate, $\partial L/\partial\alpha$.
    fn add_branch_backward(
        &self,
        dx: &Array2<f32>,
        m: &Array2<f32>,
        k: usize,
        y: &Array2<f32>,
    ) -> (Array2<f32>, Option<Array2<f32>>) {
        if self.gated() {
            let (dy, d_gate) = gated_add_backward(dx, chunk(m, 3 * k + 2, self.dim()), y);
            (dy, Some(d_gate))
        } else {
            (dx.clone(), None)
        }
    }
    // ANCHOR_END: adaln_branch

    // ANCHOR: adaln_zero_block
    /// x: (B·T, D) tokens, c: (B, D) conditioning → (B·T, D), keeping what backward needs.
    pub fn forward(&self, x: &Array2<f32>, c: &Array2<f32>) -> (Array2<f32>, DiTBlockCache) {
        let (n, d) = x.dim();
        let b = c.nrows();
        // the MLP branch's shift: chunk 3 (adaLN: 2)
        let s2 = self.per_branch();
        // $[\beta_1, \gamma_1, \alpha_1, \beta_2, \gamma_2, \alpha_2] = W\,\mathrm{silu}(c) + b$   (B, 6D)
        let (sc, act) = Silu.forward(c);
        let (m, ada_ln) = self.ada_ln.forward(&sc);
        // $x_1 = x + \alpha_1 \odot \mathrm{Attn}(\mathrm{LN}(x)(1 + \gamma_1) + \beta_1)$
        let (a, norm1) = norm_modulate(x, chunk(&m, 0, d), chunk(&m, 1, d));
        let a = a.into_shape_with_order((b, n / b, d)).expect("B·T rows"); // (B, T, D)
        let (o, attn) = self.attn.forward(&a);
        let o = o.into_shape_with_order((n, d)).expect("contiguous"); // (B·T, D)
        let mut x1 = x.clone();
        self.add_branch(&mut x1, &m, 0, &o);
        // $x_2 = x_1 + \alpha_2 \odot \mathrm{MLP}(\mathrm{LN}(x_1)(1 + \gamma_2) + \beta_2)$
        let (h, norm2) = norm_modulate(&x1, chunk(&m, s2, d), chunk(&m, s2 + 1, d));
        let (f, mlp) = self.mlp.forward(&h);
        self.add_branch(&mut x1, &m, 1, &f);
        let cache = DiTBlockCache {
            act,
            ada_ln,
            m,
            norm1,
            attn,
            o,
            norm2,
            mlp,
            f,
        };
        (x1, cache)
    }
    // ANCHOR_END: adaln_zero_block

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array2<f32>, c: &Array2<f32>) -> Array2<f32> {
        let (n, d) = x.dim();
        let b = c.nrows();
        let s2 = self.per_branch();
        let m = self.ada_ln.forward_infer(&Silu.forward_infer(c));
        let (a, _) = norm_modulate(x, chunk(&m, 0, d), chunk(&m, 1, d));
        let a = a.into_shape_with_order((b, n / b, d)).expect("B·T rows");
        let o = self.attn.forward_infer(&a);
        let o = o.into_shape_with_order((n, d)).expect("contiguous");
        let mut x1 = x.clone();
        self.add_branch(&mut x1, &m, 0, &o);
        let (h, _) = norm_modulate(&x1, chunk(&m, s2, d), chunk(&m, s2 + 1, d));
        let f = self.mlp.forward_infer(&h);
        self.add_branch(&mut x1, &m, 1, &f);
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
        let (n, d) = dy.dim();
        let b = dc.nrows();
        let s2 = self.per_branch();
        let m = &cache.m;
        let mut dm = Array2::zeros(m.raw_dim()); // (B, 6D)

        // MLP branch: $x_2 = x_1 + \alpha_2 \odot f$
        let (df, d_alpha2) = self.add_branch_backward(dy, m, 1, &cache.f);
        let dh = self.mlp.backward(&cache.mlp, &df);
        let mut dx1 = dy.clone(); // the residual path
        let (d_beta2, d_gamma2) =
            norm_modulate_backward(&cache.norm2, &dh, chunk(m, s2 + 1, d), &mut dx1);
        // attention branch: $x_1 = x + \alpha_1 \odot o$
        let (d_o, d_alpha1) = self.add_branch_backward(&dx1, m, 0, &cache.o);
        let d_o = d_o.into_shape_with_order((b, n / b, d)).expect("B·T rows");
        let da = self.attn.backward(&cache.attn, &d_o);
        let da = da.into_shape_with_order((n, d)).expect("contiguous");
        let mut dx = dx1; // the residual path
        let (d_beta1, d_gamma1) =
            norm_modulate_backward(&cache.norm1, &da, chunk(m, 1, d), &mut dx);
        // the modulation: six chunks of $\partial L/\partial m$ (adaLN: four, no gates), then
        // the Linear and the SiLU
        let chunks = [
            Some(d_beta1),
            Some(d_gamma1),
            d_alpha1,
            Some(d_beta2),
            Some(d_gamma2),
            d_alpha2,
        ];
        for (i, g) in chunks.iter().flatten().enumerate() {
            dm.slice_mut(s![.., i * d..(i + 1) * d]).assign(g);
        }
        let dsc = self.ada_ln.backward(&cache.ada_ln, &dm);
        *dc += &Silu.backward(&cache.act, &dsc);
        dx
    }
    // ANCHOR_END: adaln_zero_block_backward
}

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
    };
    (attn, Mlp::new(dim, mlp_hidden, rng))
}

impl Parameters for DiTBlock {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.attn.visit(&join(prefix, "attn"), f);
        self.mlp.visit(&join(prefix, "mlp"), f);
        self.ada_ln.visit(&join(prefix, "adaLN_modulation.1"), f);
    }
}
