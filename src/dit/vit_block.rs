//! The plain pre-norm Transformer (ViT) block, for the two DiT conditioning mechanisms that
//! do not modulate (Peebles & Xie 2023, section 3.2, Figure 5): in-context and
//! cross-attention.
//!
//! - **in-context**: the block is ViT's, LayerNorms with their own affine (eps 1e-6), and the
//!   timestep and label embeddings ride along as two extra tokens of the sequence:
//!   $$x \leftarrow x + \mathrm{Attn}(\mathrm{LN}_1(x)), \qquad x \leftarrow x + \mathrm{MLP}(\mathrm{LN}_2(x))$$
//! - **cross-attention**: between the two, a multi-head cross-attention from the image tokens
//!   to the conditioning sequence $e = [e_t, e_y]$ (two tokens per sample):
//!   $$x \leftarrow x + \mathrm{CrossAttn}(\mathrm{LN}_c(x), e)$$
//!
//! Every Linear is Xavier-uniform with a zero bias (DiT's `_basic_init`), every LayerNorm
//! starts at weight 1, bias 0. Parameter names: `norm1`, `attn.{qkv,proj}`, `norm_cross`,
//! `cross_attn.{q,kv,proj}` (cross-attention only), `norm2`, `mlp.{fc1,fc2}`.

use super::mlp::{Mlp, MlpCache};
use super::modulate::EPS;
use crate::nn::{
    xavier_linear, Attention, AttentionCache, CrossAttention, CrossAttentionCache, LayerNorm,
    LayerNormCache,
};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{Array2, Array3};

/// A pre-norm Transformer block, with a cross-attention when `cross` is set.
#[derive(Clone, Debug)]
pub struct ViTBlock {
    pub norm1: LayerNorm,
    pub attn: Attention,
    pub cross: Option<CrossBranch>,
    pub norm2: LayerNorm,
    pub mlp: Mlp,
}

/// The cross-attention branch: its LayerNorm and the attention to the context.
#[derive(Clone, Debug)]
pub struct CrossBranch {
    pub norm_cross: LayerNorm,
    pub cross_attn: CrossAttention,
}

/// What [`ViTBlock::backward`] needs from [`ViTBlock::forward`].
pub struct ViTBlockCache {
    norm1: LayerNormCache,
    attn: AttentionCache,
    cross: Option<(LayerNormCache, CrossAttentionCache)>,
    norm2: LayerNormCache,
    mlp: MlpCache,
}

impl ViTBlock {
    /// `dim` channels, `heads` heads, an MLP of `mlp_hidden`; with `cross`, a cross-attention
    /// to a context of `dim` channels.
    pub fn new(dim: usize, heads: usize, mlp_hidden: usize, cross: bool, rng: &mut Rng) -> Self {
        assert!(
            heads > 0 && dim % heads == 0,
            "ViT block: {dim} channels do not split into {heads} heads"
        );
        let norm = || LayerNorm::new(dim, EPS, true);
        let attn = Attention {
            qkv: xavier_linear(dim, 3 * dim, rng),
            proj: xavier_linear(dim, dim, rng),
            heads,
            kernel: crate::nn::Kernel::Auto,
        };
        let cross = cross.then(|| CrossBranch {
            norm_cross: norm(),
            cross_attn: CrossAttention {
                q: xavier_linear(dim, dim, rng),
                kv: xavier_linear(dim, 2 * dim, rng),
                proj: xavier_linear(dim, dim, rng),
                heads,
                kernel: crate::nn::Kernel::Auto,
            },
        });
        ViTBlock {
            norm1: norm(),
            attn,
            cross,
            norm2: norm(),
            mlp: Mlp::new(dim, mlp_hidden, rng),
        }
    }

    /// Token width `D`.
    pub fn dim(&self) -> usize {
        self.attn.dim()
    }

    /// Panics unless a context is given exactly when the block cross-attends.
    fn check_context(&self, context: Option<&Array3<f32>>) {
        assert_eq!(
            self.cross.is_some(),
            context.is_some(),
            "ViT block: a context is needed by, and only by, a block with cross-attention"
        );
    }

    // ANCHOR: vit_block
    /// x: (B, T, D) tokens, context: (B, S, D) for cross-attention (else `None`) → (B, T, D).
    pub fn forward(
        &self,
        x: &Array3<f32>,
        context: Option<&Array3<f32>>,
    ) -> (Array3<f32>, ViTBlockCache) {
        self.check_context(context);
        // $x_1 = x + \mathrm{Attn}(\mathrm{LN}_1(x))$
        let (a, norm1) = self.norm1.forward(x);
        let (o, attn) = self.attn.forward(&a);
        let mut x1 = x + &o;
        // $x_2 = x_1 + \mathrm{CrossAttn}(\mathrm{LN}_c(x_1), e)$
        let cross = match (&self.cross, context) {
            (Some(c), Some(e)) => {
                let (a, norm) = c.norm_cross.forward(&x1);
                let (o, attn) = c.cross_attn.forward(&a, e);
                x1 += &o;
                Some((norm, attn))
            }
            _ => None,
        };
        // $x_3 = x_2 + \mathrm{MLP}(\mathrm{LN}_2(x_2))$, the MLP on (B·T, D) rows
        let (h, norm2) = self.norm2.forward(&x1);
        let (f, mlp) = self.mlp.forward(&rows(h));
        x1 += &f.into_shape_with_order(x.raw_dim()).expect("contiguous");
        let cache = ViTBlockCache {
            norm1,
            attn,
            cross,
            norm2,
            mlp,
        };
        (x1, cache)
    }
    // ANCHOR_END: vit_block

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array3<f32>, context: Option<&Array3<f32>>) -> Array3<f32> {
        self.check_context(context);
        let mut x1 = x + &self.attn.forward_infer(&self.norm1.forward_infer(x));
        if let (Some(c), Some(e)) = (&self.cross, context) {
            x1 += &c
                .cross_attn
                .forward_infer(&c.norm_cross.forward_infer(&x1), e);
        }
        let f = self.mlp.forward_infer(&rows(self.norm2.forward_infer(&x1)));
        x1 += &f.into_shape_with_order(x.raw_dim()).expect("contiguous");
        x1
    }

    // ANCHOR: vit_block_backward
    /// Given `dy = ∂L/∂x₃` (B, T, D), adds into every parameter's gradient and, with
    /// cross-attention, into `d_context = ∂L/∂e` (B, S, D); returns `∂L/∂x` (B, T, D).
    pub fn backward(
        &mut self,
        cache: &ViTBlockCache,
        dy: &Array3<f32>,
        d_context: Option<&mut Array3<f32>>,
    ) -> Array3<f32> {
        assert_eq!(
            self.cross.is_some(),
            d_context.is_some(),
            "ViT block: ∂L/∂context is needed by, and only by, a block with cross-attention"
        );
        // MLP branch: the residual passes dy through, the branch adds LN₂'s backward
        let dh = self.mlp.backward(&cache.mlp, &rows(dy.clone()));
        let dh = dh.into_shape_with_order(dy.raw_dim()).expect("contiguous");
        let mut dx = dy + &self.norm2.backward(&cache.norm2, &dh);
        // cross-attention branch: into the tokens and into the context
        if let (Some(c), Some((norm, attn)), Some(de)) = (&mut self.cross, &cache.cross, d_context)
        {
            let (da, d_e) = c.cross_attn.backward(attn, &dx);
            dx += &c.norm_cross.backward(norm, &da);
            *de += &d_e;
        }
        // self-attention branch
        let da = self.attn.backward(&cache.attn, &dx);
        dx += &self.norm1.backward(&cache.norm1, &da);
        dx
    }
    // ANCHOR_END: vit_block_backward
}

/// `(B, T, D)` → `(B·T, D)` rows, without copying.
pub(super) fn rows(x: Array3<f32>) -> Array2<f32> {
    let (b, t, d) = x.dim();
    x.into_shape_with_order((b * t, d))
        .expect("row-major tokens")
}

/// `(B·T, D)` rows → `(B, T, D)` for `B` samples, without copying.
pub(super) fn sequences(h: Array2<f32>, b: usize) -> Array3<f32> {
    let (n, d) = h.dim();
    h.into_shape_with_order((b, n / b, d)).expect("B·T rows")
}

impl Parameters for ViTBlock {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.norm1.visit(&join(prefix, "norm1"), f);
        self.attn.visit(&join(prefix, "attn"), f);
        if let Some(c) = &mut self.cross {
            c.norm_cross.visit(&join(prefix, "norm_cross"), f);
            c.cross_attn.visit(&join(prefix, "cross_attn"), f);
        }
        self.norm2.visit(&join(prefix, "norm2"), f);
        self.mlp.visit(&join(prefix, "mlp"), f);
    }
}
