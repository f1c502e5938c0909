//! The whole DiT (`DiT` in facebookresearch/DiT `models.py`): a Transformer over latent
//! patches, conditioned on the timestep and the class by adaLN-Zero (or, for the paper's
//! ablation, by one of the three other mechanisms of [`Conditioning`]).
//!
//! ```text
//! x (B, C, H, W) ─ x_embedder (p×p patches → D) + pos_embed ─→ tokens (B·T, D)
//! t (B) ─ t_embedder ─→ e_t (B, D)
//! y (B) ─ y_embedder ─→ e_y (B, D)
//! tokens, e_t, e_y ─ trunk: blocks[0..depth], final_layer ─→ (B·T, p·p·C_out) ─ unpatchify ─→ (B, C_out, H, W)
//! ```
//!
//! With adaLN-Zero every block reads the same `c = e_t + e_y`, so in the backward pass their
//! gradients with respect to `c` are summed before flowing into the two embedders (the
//! [`Trunk`] holds the blocks of each mechanism). Parameter names are the reference
//! `state_dict`'s; `pos_embed` is a fixed table, not a parameter (it is saved beside them by
//! [`save_dit`](super::save_dit)).

#[cfg(doc)]
use super::conditioning::Conditioning;
use super::config::DiTConfig;
use super::embed::{LabelEmbedder, TimestepEmbedder, TimestepEmbedderCache};
use super::patch::{patchify, unpatchify, ChannelOrder, PatchEmbed, PatchEmbedCache};
use super::pos_embed::pos_embed_2d;
use super::trunk::{Trunk, TrunkCache};
use crate::diffusion::{Condition, Denoiser, TrainableDenoiser};
use crate::error::Result;
use crate::nn::EmbeddingCache;
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{Array2, Array4, ArrayD, ArrayView4, Axis, Ix4};

/// DiT: a denoiser `(x_t, t, y) → output` over `(B, C, H, W)` latents.
#[derive(Clone, Debug)]
pub struct DiT {
    pub config: DiTConfig,
    pub x_embedder: PatchEmbed,
    pos_embed: Array2<f32>, // (T, D), fixed
    pub t_embedder: TimestepEmbedder,
    pub y_embedder: LabelEmbedder,
    /// The blocks and the final layer, of the kind `config.conditioning` asks for.
    pub trunk: Trunk,
}

/// What [`DiT::backward`] needs from [`DiT::forward`].
pub struct DiTCache {
    x_embedder: PatchEmbedCache,
    t_embedder: TimestepEmbedderCache,
    y_embedder: EmbeddingCache,
    trunk: TrunkCache,
}

impl DiT {
    // ANCHOR: dit_new
    /// A DiT for `config` (validated first) with the reference's initialisation: Xavier
    /// Linears and patch embedding with zero biases, $\mathcal N(0, 0.02^2)$ label table and
    /// timestep MLP weights, and zeros in every adaLN modulation and the final Linear (the
    /// blocks of the other mechanisms: see [`Trunk::new`]).
    pub fn new(config: DiTConfig, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
        let c = &config;
        let d = c.hidden_size;
        let x_embedder = PatchEmbed::new(c.in_channels, d, c.patch_size, rng);
        let t_embedder = TimestepEmbedder::new(d, rng);
        let y_embedder = LabelEmbedder::new(c.num_classes, d, rng);
        let trunk = Trunk::new(c, rng);
        Ok(DiT {
            pos_embed: pos_embed_2d(d, c.grid_size()),
            x_embedder,
            t_embedder,
            y_embedder,
            trunk,
            config,
        })
    }
    // ANCHOR_END: dit_new

    /// The label that means "no class" (classifier-free guidance): `num_classes`.
    pub fn null_label(&self) -> usize {
        self.config.num_classes
    }

    /// The fixed position embedding `(T, D)`.
    pub fn pos_embed(&self) -> &Array2<f32> {
        &self.pos_embed
    }

    /// Replaces the position embedding (a checkpoint's); the caller checks it.
    pub(crate) fn set_pos_embed(&mut self, table: Array2<f32>) {
        assert_eq!(table.dim(), self.pos_embed.dim(), "pos_embed shape");
        self.pos_embed = table;
    }

    /// Panics with a clear message unless `x` is `(B, in_channels, I, I)` with one timestep
    /// (and label, if given) per sample.
    fn check_input(&self, x: &ArrayView4<f32>, t: &[usize], y: Option<&[usize]>) {
        let (b, c, h, w) = x.dim();
        let (cc, i) = (self.config.in_channels, self.config.input_size);
        assert!(
            c == cc && h == i && w == i && b > 0,
            "DiT: the input is {:?}, the model takes (B, {cc}, {i}, {i})",
            x.shape()
        );
        assert_eq!(t.len(), b, "DiT: {} timesteps for {b} samples", t.len());
        if let Some(y) = y {
            assert_eq!(y.len(), b, "DiT: {} labels for {b} samples", y.len());
        }
    }

    /// Tokens plus the position embedding: sample `b`'s token `n` gets row `n` of the table.
    fn add_pos_embed(&self, tokens: &mut Array2<f32>) {
        let t = self.pos_embed.nrows();
        for mut sample in tokens.axis_chunks_iter_mut(Axis(0), t) {
            sample += &self.pos_embed;
        }
    }

    // ANCHOR: dit_forward
    /// The output `(B, C_out, H, W)` for `x` (B, C, H, W), timesteps `t` and labels `y`
    /// (`None`: the null label for every sample), keeping every cache.
    pub fn forward(
        &self,
        x: ArrayView4<f32>,
        t: &[usize],
        y: Option<&[usize]>,
    ) -> (Array4<f32>, DiTCache) {
        self.check_input(&x, t, y);
        let b = x.shape()[0];
        // tokens: $\mathrm{patchify}(x) W^\top + b + E_\text{pos}$   (B·T, D)
        let (mut h, x_embedder) = self.x_embedder.forward(x);
        self.add_pos_embed(&mut h);
        // $e_t$, $e_y$   (B, D)
        let (e_t, t_embedder) = self.t_embedder.forward(t);
        let (e_y, y_embedder) = self.y_embedder.forward(y, b);
        // the blocks and the final layer; adaLN-Zero's read $c = e_t + e_y$
        let (out, trunk) = self.trunk.forward(h, &e_t, &e_y); // (B·T, p·p·C_out)
        let cache = DiTCache {
            x_embedder,
            t_embedder,
            y_embedder,
            trunk,
        };
        (self.unpatchify(&out, b), cache)
    }
    // ANCHOR_END: dit_forward

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(
        &self,
        x: ArrayView4<f32>,
        t: &[usize],
        y: Option<&[usize]>,
    ) -> Array4<f32> {
        self.check_input(&x, t, y);
        let e_y = self.y_embedder.forward_infer(y, x.shape()[0]);
        self.forward_infer_embedded(x, t, &e_y)
    }

    /// [`DiT::forward_infer`] with the label embedding $e_y$ `(B, D)` given: the rows of any
    /// [`Condition`], a blend of two classes' rows included ([`Condition::rows`]).
    pub fn forward_infer_embedded(
        &self,
        x: ArrayView4<f32>,
        t: &[usize],
        e_y: &Array2<f32>,
    ) -> Array4<f32> {
        self.check_input(&x, t, None);
        let b = x.shape()[0];
        let d = self.config.hidden_size;
        assert_eq!(e_y.dim(), (b, d), "DiT: e_y must be (B, D) = ({b}, {d})");
        let mut h = self.x_embedder.forward_infer(x);
        self.add_pos_embed(&mut h);
        let e_t = self.t_embedder.forward_infer(t);
        let out = self.trunk.forward_infer(h, &e_t, e_y);
        self.unpatchify(&out, b)
    }

    /// `(B·T, p·p·C_out)` → `(B, C_out, H, W)` in the reference's channel order.
    fn unpatchify(&self, out: &Array2<f32>, b: usize) -> Array4<f32> {
        let c = &self.config;
        let shape = (b, c.out_channels(), c.input_size, c.input_size);
        unpatchify(out.view(), shape, c.patch_size, ChannelOrder::Last)
    }

    // ANCHOR: dit_backward
    /// Given `d_out = ∂L/∂output` (B, C_out, H, W), adds `∂L/∂θ` into every parameter's
    /// gradient and returns `∂L/∂x` (B, C, H, W).
    pub fn backward(&mut self, cache: &DiTCache, d_out: ArrayView4<f32>) -> Array4<f32> {
        let p = self.config.patch_size;
        let dout = patchify(d_out, p, ChannelOrder::Last); // (B·T, p·p·C_out)

        // The blocks and the final layer; with adaLN-Zero, every block adds its share of
        // ∂L/∂c, and $c = e_t + e_y$ hands all of it to both embeddings.
        let (dh, de_t, de_y) = self.trunk.backward(&cache.trunk, &dout);
        self.t_embedder.backward(&cache.t_embedder, &de_t);
        self.y_embedder.backward(&cache.y_embedder, &de_y);
        // pos_embed is fixed: the tokens' gradient goes straight to the patch embedding
        self.x_embedder.backward(&cache.x_embedder, &dh)
    }
    // ANCHOR_END: dit_backward
}

/// `(B, C, H, W)` view of the trait's dynamic-rank array.
fn as_images(x: &ArrayD<f32>) -> ArrayView4<'_, f32> {
    x.view()
        .into_dimensionality::<Ix4>()
        .unwrap_or_else(|_| panic!("DiT: the input must be (B, C, H, W), got {:?}", x.shape()))
}

impl Denoiser for DiT {
    /// $e_y$ is each entry's row of the label table — a class's, the null one, or a blend of
    /// two classes' ([`Condition::rows`]).
    fn predict(&self, x_t: &ArrayD<f32>, t: &[usize], y: &Condition) -> ArrayD<f32> {
        let x = as_images(x_t);
        let table = self.y_embedder.embedding_table.weight.v2();
        let e_y = y.rows(table, self.null_label(), x.shape()[0]); // (B, D)
        self.forward_infer_embedded(x, t, &e_y).into_dyn()
    }
}

impl TrainableDenoiser for DiT {
    type Cache = DiTCache;

    fn forward_train(
        &self,
        x_t: &ArrayD<f32>,
        t: &[usize],
        y: &Condition,
    ) -> (ArrayD<f32>, DiTCache) {
        let (out, cache) =
            self.forward(as_images(x_t), t, y.label_ids(self.null_label()).as_deref());
        (out.into_dyn(), cache)
    }

    fn backward_train(&mut self, cache: &DiTCache, d_out: &ArrayD<f32>) {
        self.backward(cache, as_images(d_out));
    }
}

impl Parameters for DiT {
    /// The reference `state_dict` names, without `pos_embed` (not trained).
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.x_embedder.visit(&join(prefix, "x_embedder"), f);
        self.t_embedder.visit(&join(prefix, "t_embedder"), f);
        self.y_embedder.visit(&join(prefix, "y_embedder"), f);
        self.trunk.visit(prefix, f); // blocks.{i}.…, final_layer.…
    }
}
