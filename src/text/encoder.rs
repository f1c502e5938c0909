//! The text encoder: a pre-LayerNorm Transformer encoder
//! ([Vaswani et al. 2017](https://arxiv.org/abs/1706.03762)) laid out as CLIP's text tower
//! ([Radford et al. 2021](https://arxiv.org/abs/2103.00020)), without the causal mask.
//!
//! Token ids `(B, L)` are looked up in `token_embedding (V, E)`, a learned
//! `positional_embedding (L_max, E)` is added, then `depth` blocks
//! $x \mathrel{+}= \mathrm{attn}(\mathrm{ln}_1(x), \text{mask})$,
//! $x \mathrel{+}= \mathrm{mlp}(\mathrm{ln}_2(x))$, then `ln_final`.
//!
//! **Padding.** Keys at padded positions are masked in every self-attention
//! ([`Attention::forward_masked`]), and the output rows at padded positions are set to zero,
//! so nothing downstream sees them: the ids at padded positions change no output (bit for
//! bit), and an embedding row used only there gets exactly zero gradient.
//!
//! **Init.** Embeddings `N(0, 0.02²)` and the positional table `N(0, 0.01²)`, as CLIP; the
//! attention Linears keep PyTorch's default (`U(±1/√fan_in)`, [`Attention::new`]) and the MLP
//! is DiT's [`Mlp`] (Xavier-uniform, zero biases, tanh-GELU, hidden `4E`); LayerNorms are
//! affine with `eps = 1e-5`.

use crate::dit::mlp::{Mlp, MlpCache};
use crate::error::{Error, Result};
use crate::nn::{Attention, AttentionCache, Embedding, EmbeddingCache, LayerNorm, LayerNormCache};
use crate::param::{join, Param, Parameters};
use crate::tensor::{init, Rng};
use ndarray::{s, Array2, Array3, Axis, Zip};

/// The encoder's sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextEncoderConfig {
    /// Vocabulary size `V` (token ids are `0..V`, `0` being PAD for the tokenizer).
    pub vocab: usize,
    /// Longest sequence `L_max` (rows of the positional table).
    pub max_len: usize,
    /// Token width `E`.
    pub width: usize,
    /// Number of blocks.
    pub depth: usize,
    /// Attention heads (must divide `width`).
    pub heads: usize,
}

impl TextEncoderConfig {
    /// The default encoder for a vocabulary of `vocab` ids: width 64, depth 2, 4 heads,
    /// sequences of up to 24 tokens.
    pub fn new(vocab: usize) -> Self {
        TextEncoderConfig {
            vocab,
            max_len: 24,
            width: 64,
            depth: 2,
            heads: 4,
        }
    }

    /// Checks that the sizes make an encoder.
    pub fn validate(&self) -> Result<()> {
        let c = self;
        if c.vocab == 0 || c.max_len == 0 || c.width == 0 || c.heads == 0 {
            return Err(Error::new(
                format!("text encoder config {c:?} has a zero size"),
                "give vocab, max_len, width and heads of at least 1",
            ));
        }
        if c.width % c.heads != 0 {
            return Err(Error::new(
                format!(
                    "text encoder width {} does not split into {} heads",
                    c.width, c.heads
                ),
                "pick a width that is a multiple of the number of heads",
            ));
        }
        Ok(())
    }
}

/// One pre-LN block: $x \mathrel{+}= \mathrm{attn}(\mathrm{ln}_1 x)$, $x \mathrel{+}= \mathrm{mlp}(\mathrm{ln}_2 x)$.
#[derive(Clone, Debug)]
pub struct EncoderBlock {
    pub ln_1: LayerNorm,
    pub attn: Attention,
    pub ln_2: LayerNorm,
    pub mlp: Mlp, // E → 4E → E
}

/// What [`EncoderBlock::backward`] needs.
pub struct EncoderBlockCache {
    ln_1: LayerNormCache,
    attn: AttentionCache,
    ln_2: LayerNormCache,
    mlp: MlpCache,
}

impl EncoderBlock {
    /// A block of `width` channels and `heads` heads.
    pub fn new(width: usize, heads: usize, rng: &mut Rng) -> Self {
        EncoderBlock {
            ln_1: LayerNorm::new(width, 1e-5, true),
            attn: Attention::new(width, heads, rng),
            ln_2: LayerNorm::new(width, 1e-5, true),
            mlp: Mlp::new(width, 4 * width, rng),
        }
    }

    // ANCHOR: encoder_block
    /// x: (B, L, E), mask: (B, L) → y: (B, L, E).
    pub fn forward(
        &self,
        x: &Array3<f32>,
        mask: &Array2<bool>,
    ) -> (Array3<f32>, EncoderBlockCache) {
        let (b, l, e) = x.dim();
        let (h1, ln_1) = self.ln_1.forward(x); // (B, L, E)
        let (a, attn) = self.attn.forward_masked(&h1, Some(mask));
        let x1 = x + &a; // $x_1 = x + \mathrm{attn}(\mathrm{ln}_1 x)$
        let (h2, ln_2) = self.ln_2.forward(&x1);
        let h2 = h2.into_shape_with_order((b * l, e)).expect("fresh"); // (N, E)
        let (m, mlp) = self.mlp.forward(&h2);
        let y = x1 + &m.into_shape_with_order((b, l, e)).expect("fresh");
        let cache = EncoderBlockCache {
            ln_1,
            attn,
            ln_2,
            mlp,
        };
        (y, cache)
    }
    // ANCHOR_END: encoder_block

    /// The same output without keeping anything.
    pub fn forward_infer(&self, x: &Array3<f32>, mask: &Array2<bool>) -> Array3<f32> {
        let (b, l, e) = x.dim();
        let a = self
            .attn
            .forward_infer_masked(&self.ln_1.forward_infer(x), Some(mask));
        let x1 = x + &a;
        let h2 = self.ln_2.forward_infer(&x1);
        let m = self
            .mlp
            .forward_infer(&h2.into_shape_with_order((b * l, e)).expect("fresh"));
        x1 + &m.into_shape_with_order((b, l, e)).expect("fresh")
    }

    /// Given `dy` (B, L, E), adds into every parameter's gradient and returns `dx` (B, L, E).
    pub fn backward(&mut self, cache: &EncoderBlockCache, dy: &Array3<f32>) -> Array3<f32> {
        let (b, l, e) = dy.dim();
        // $dx_1 = dy + \mathrm{ln}_2^\top(\mathrm{mlp}^\top dy)$
        let dm = dy
            .view()
            .into_shape_with_order((b * l, e))
            .expect("row-major")
            .to_owned();
        let dh2 = self.mlp.backward(&cache.mlp, &dm); // (N, E)
        let dx1 = dy
            + &self
                .ln_2
                .backward(&cache.ln_2, &dh2)
                .into_shape_with_order((b, l, e))
                .expect("fresh");
        // $dx = dx_1 + \mathrm{ln}_1^\top(\mathrm{attn}^\top dx_1)$
        let dh1 = self.attn.backward(&cache.attn, &dx1);
        let dx = self.ln_1.backward(&cache.ln_1, &dh1);
        dx1 + &dx
    }
}

impl Parameters for EncoderBlock {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.ln_1.visit(&join(prefix, "ln_1"), f);
        self.attn.visit(&join(prefix, "attn"), f);
        self.ln_2.visit(&join(prefix, "ln_2"), f);
        self.mlp.visit(&join(prefix, "mlp"), f);
    }
}

/// CLIP's text tower without the causal mask: embeddings, blocks, final LayerNorm.
#[derive(Clone, Debug)]
pub struct TextEncoder {
    pub config: TextEncoderConfig,
    pub token_embedding: Embedding,  // (V, E)
    pub positional_embedding: Param, // (L_max, E)
    pub blocks: Vec<EncoderBlock>,
    pub ln_final: LayerNorm,
}

/// What [`TextEncoder::backward`] needs.
pub struct TextEncoderCache {
    mask: Array2<bool>, // (B, L)
    embedding: EmbeddingCache,
    blocks: Vec<EncoderBlockCache>,
    ln_final: LayerNormCache,
}

impl TextEncoder {
    /// A freshly initialised encoder. Panics on an invalid config (check it with
    /// [`TextEncoderConfig::validate`] first when it comes from a user).
    pub fn new(config: TextEncoderConfig, rng: &mut Rng) -> Self {
        if let Err(e) = config.validate() {
            panic!("{e}");
        }
        let (v, l, e) = (config.vocab, config.max_len, config.width);
        let token_embedding = Embedding {
            weight: Param::new(init::normal(&[v, e], 0.02, rng)),
        };
        let positional_embedding = Param::new(init::normal(&[l, e], 0.01, rng));
        let blocks = (0..config.depth)
            .map(|_| EncoderBlock::new(e, config.heads, rng))
            .collect();
        TextEncoder {
            config,
            token_embedding,
            positional_embedding,
            blocks,
            ln_final: LayerNorm::new(e, 1e-5, true),
        }
    }

    /// Token width `E`.
    pub fn width(&self) -> usize {
        self.config.width
    }

    /// $x_0 = W_{tok}[\text{ids}] + P_{0..L}$   ids: (B, L) → (B, L, E).
    fn embed(&self, ids: &Array2<usize>, mask: &Array2<bool>) -> (Array3<f32>, EmbeddingCache) {
        let (b, l) = ids.dim();
        assert!(
            mask.dim() == (b, l) && l <= self.config.max_len,
            "text encoder: ids {:?} and mask {:?} must both be (B, L) with L ≤ {}",
            ids.shape(),
            mask.shape(),
            self.config.max_len
        );
        let flat: Vec<usize> = ids.iter().copied().collect();
        let (tok, cache) = self.token_embedding.forward(&flat); // (B·L, E)
        let mut x = tok
            .into_shape_with_order((b, l, self.width()))
            .expect("fresh");
        let pos = self.positional_embedding.v2();
        x += &pos.slice(s![..l, ..]);
        (x, cache)
    }

    // ANCHOR: text_encoder_forward
    /// Sets the rows at padded positions to zero: $y_{bl} = m_{bl}\, y_{bl}$.
    fn zero_padded(y: &mut Array3<f32>, mask: &Array2<bool>) {
        Zip::from(y.lanes_mut(Axis(2)))
            .and(mask)
            .for_each(|mut row, &valid| {
                if !valid {
                    row.fill(0.0)
                }
            });
    }

    /// ids: (B, L), mask: (B, L) (true = token; every row needs one) → (B, L, E), zero at
    /// padded positions.
    pub fn forward(
        &self,
        ids: &Array2<usize>,
        mask: &Array2<bool>,
    ) -> (Array3<f32>, TextEncoderCache) {
        let (mut x, embedding) = self.embed(ids, mask);
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let (y, c) = block.forward(&x, mask);
            blocks.push(c);
            x = y;
        }
        let (mut y, ln_final) = self.ln_final.forward(&x);
        Self::zero_padded(&mut y, mask);
        let cache = TextEncoderCache {
            mask: mask.clone(),
            embedding,
            blocks,
            ln_final,
        };
        (y, cache)
    }
    // ANCHOR_END: text_encoder_forward

    /// The same output without keeping anything.
    pub fn forward_infer(&self, ids: &Array2<usize>, mask: &Array2<bool>) -> Array3<f32> {
        let (mut x, _) = self.embed(ids, mask);
        for block in &self.blocks {
            x = block.forward_infer(&x, mask);
        }
        let mut y = self.ln_final.forward_infer(&x);
        Self::zero_padded(&mut y, mask);
        y
    }

    /// Given `dy` (B, L, E), adds into every parameter's gradient. The ids are discrete, so
    /// there is no input gradient.
    pub fn backward(&mut self, cache: &TextEncoderCache, dy: &Array3<f32>) {
        let (b, l, e) = dy.dim();
        let mut dy = dy.clone();
        Self::zero_padded(&mut dy, &cache.mask); // padded outputs are constants
        let mut dx = self.ln_final.backward(&cache.ln_final, &dy);
        for (block, c) in self.blocks.iter_mut().zip(&cache.blocks).rev() {
            dx = block.backward(c, &dx);
        }
        // $dP_{0..L} = \sum_b dx_b$
        let mut dpos = self.positional_embedding.g2();
        dpos.slice_mut(s![..l, ..])
            .scaled_add(1.0, &dx.sum_axis(Axis(0)));
        let dtok = dx.into_shape_with_order((b * l, e)).expect("fresh");
        self.token_embedding.backward(&cache.embedding, &dtok);
    }
}

impl Parameters for TextEncoder {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.token_embedding
            .visit(&join(prefix, "token_embedding"), f);
        self.positional_embedding
            .visit(&join(prefix, "positional_embedding"), f);
        self.blocks.visit(&join(prefix, "blocks"), f);
        self.ln_final.visit(&join(prefix, "ln_final"), f);
    }
}

/// Mean over the valid tokens: $p_b = \frac{1}{n_b} \sum_{l : m_{bl}} h_{bl}$
/// h: (B, L, E), mask: (B, L) → (B, E).
pub fn pooled(h: &Array3<f32>, mask: &Array2<bool>) -> Array2<f32> {
    let (b, l, e) = h.dim();
    assert_eq!(mask.dim(), (b, l), "pooled: the mask must be (B, L)");
    let mut p = Array2::zeros((b, e));
    for ((mut pb, hb), mb) in p
        .outer_iter_mut()
        .zip(h.outer_iter())
        .zip(mask.outer_iter())
    {
        let n = mb.iter().filter(|&&v| v).count().max(1) as f32;
        for (hl, _) in hb.outer_iter().zip(mb).filter(|(_, &v)| v) {
            pb += &hl;
        }
        pb /= n;
    }
    p
}

/// Backward of [`pooled`]: $dh_{bl} = m_{bl}\, dp_b / n_b$   dp: (B, E) → dh: (B, L, E).
pub fn pooled_backward(dp: &Array2<f32>, mask: &Array2<bool>) -> Array3<f32> {
    let ((b, e), l) = (dp.dim(), mask.ncols());
    assert_eq!(mask.nrows(), b, "pooled_backward: the mask must be (B, L)");
    let mut dh = Array3::zeros((b, l, e));
    for ((mut dhb, dpb), mb) in dh
        .outer_iter_mut()
        .zip(dp.outer_iter())
        .zip(mask.outer_iter())
    {
        let n = mb.iter().filter(|&&v| v).count().max(1) as f32;
        for (mut row, _) in dhb.outer_iter_mut().zip(mb).filter(|(_, &v)| v) {
            row.assign(&(&dpb / n));
        }
    }
    dh
}
