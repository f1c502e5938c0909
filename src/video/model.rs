//! The space-time DiT: an image DiT whose tokens are spacetime patches of a latent clip.
//!
//! ```text
//! x (B, C, F, H, W) ─ x_embedder (p_t×p×p patches → D) + pos_embed per frame ─→ (B·F'·S, D)
//! t, y ─ t_embedder, y_embedder ─→ c = e_t + e_y (B, D)
//! tokens, c, temp_embed ─ blocks (the layout's) ─ final_layer ─→ (B·F'·S, p_t·p·p·C_out)
//!   ─ unpatchify ─→ (B, C_out, F, H, W)
//! ```
//!
//! The embedders, the blocks and the final layer are the image DiT's layers; what is new is
//! the token grid, the temporal table `temp_embed` (1-D sin-cos over the token frames,
//! Latte's `temp_embed`, Open-Sora's `pos_embed_temporal`) and where the layouts attend
//! ([`Stack`]). Both tables are fixed; checkpoints store them as `pos_embed (1, S, D)` and
//! `temp_embed (1, F', D)`, Latte's names and shapes. A clip of another length than the
//! trained one gets the sin-cos table of its own length (the first rows are the trained
//! table), up to [`MAX_FRAMES`](super::config::MAX_FRAMES), and frames of another size
//! (`h × w`, any multiple of the patch, square or not) the 2-D table of their own grid.

use super::caption_embed::CaptionEmbedder;
use super::config::{check_frames, check_size, VideoDiTConfig};
use super::factorized::Grid;
use super::frame_mask::{check_mask, fold, token_rows, twice, with_t0};
use super::patch::{clip_patchify, clip_unpatchify, ChannelOrder, Tubelet};
use super::stack::{Stack, StackCache};
use super::text_path::{TextPath, TextPathCache};
use crate::diffusion::{Condition, Denoiser, FrameConditioned, FrameMask, TrainableDenoiser};
use crate::dit::embed::TimestepEmbedderCache;
use crate::dit::pos_embed::{pos_embed_grid, sincos_1d};
use crate::dit::{
    pos_embed_2d, Context, FinalLayer, FinalLayerCache, LabelEmbedder, PatchEmbed, TimestepEmbedder,
};
use crate::error::Result;
use crate::nn::EmbeddingCache;
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use crate::text::encoder::TextEncoder;
use ndarray::{Array2, Array3, Array5, ArrayD, ArrayView5, Axis, Ix5};

/// A denoiser `(x_t, t, y) → output` over `(B, C, F, H, W)` latent clips.
#[derive(Clone, Debug)]
pub struct VideoDiT {
    pub config: VideoDiTConfig,
    pub x_embedder: PatchEmbed,
    pos_embed: Array2<f32>,  // (S, D), fixed
    temp_embed: Array2<f32>, // (F', D), fixed
    pub t_embedder: TimestepEmbedder,
    pub y_embedder: LabelEmbedder,
    pub blocks: Stack,
    pub final_layer: FinalLayer,
    /// A text-conditioned model's caption path ([`TextPath`]); `None`: class labels.
    pub text: Option<TextPath>,
}

/// What [`VideoDiT::backward`] needs.
pub struct VideoDiTCache {
    patches: Array2<f32>, // (B·F'·S, C·p_t·p·p), the patch embedding's input
    t_embedder: TimestepEmbedderCache,
    y_embedder: EmbeddingCache,
    blocks: StackCache,
    text: Option<TextPathCache>,
    last: FinalLayerCache,
    grid: Grid,
    shape: (usize, usize, usize, usize, usize),
    masked: bool, // conditioning rows stacked (t, then 0) for a frame mask
}

/// The 1-D sin-cos table over `frames` token frames, `(F', D)` (Latte's
/// `get_1d_sincos_temp_embed`): frame `f` gets $[\sin(f\omega_k)]_k$, $[\cos(f\omega_k)]_k$.
pub fn temp_embed_table(dim: usize, frames: usize) -> Array2<f32> {
    let positions: Vec<f64> = (0..frames).map(|f| f as f64).collect();
    sincos_1d(dim, &positions).mapv(|v| v as f32)
}

impl VideoDiT {
    // ANCHOR: video_dit_new
    /// A video DiT for `config` with DiT's initialisation (adaLN-Zero; zero final layer;
    /// factorized blocks' temporal projections at zero).
    pub fn new(config: VideoDiTConfig, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
        let c = &config.dit;
        let (d, p, pt) = (c.hidden_size, c.patch_size, config.temporal_patch);
        let x_embedder = PatchEmbed::tubelet(c.in_channels, d, pt, p, rng);
        let t_embedder = TimestepEmbedder::new(d, rng);
        let y_embedder = LabelEmbedder::new(c.num_classes, d, rng);
        let blocks = Stack::new(&config, rng);
        // the final Linear gives each token its p_t·p·p·C_out values
        let final_layer = FinalLayer::new(d, 1, pt * p * p * c.out_channels());
        let text = config.text.map(|t| TextPath {
            text_encoder: TextEncoder::new(t.encoder, rng),
            train_encoder: t.train_encoder,
            y_embedder: CaptionEmbedder::new(&t, d, rng),
        });
        Ok(VideoDiT {
            pos_embed: pos_embed_2d(d, c.grid_size()),
            temp_embed: temp_embed_table(d, config.token_frames()),
            x_embedder,
            t_embedder,
            y_embedder,
            blocks,
            final_layer,
            text,
            config,
        })
    }
    // ANCHOR_END: video_dit_new

    /// The label of "no class": `num_classes`.
    pub fn null_label(&self) -> usize {
        self.config.dit.num_classes
    }

    /// The fixed spatial table `(S, D)`.
    pub fn pos_embed(&self) -> &Array2<f32> {
        &self.pos_embed
    }

    /// The fixed temporal table `(F', D)` of the trained length.
    pub fn temp_embed(&self) -> &Array2<f32> {
        &self.temp_embed
    }

    /// Replaces the two tables (a checkpoint's, or a test's); the caller checks them.
    pub fn set_tables(&mut self, pos_embed: Array2<f32>, temp_embed: Array2<f32>) {
        assert_eq!(pos_embed.dim(), self.pos_embed.dim(), "pos_embed shape");
        assert_eq!(temp_embed.dim(), self.temp_embed.dim(), "temp_embed shape");
        self.pos_embed = pos_embed;
        self.temp_embed = temp_embed;
    }

    fn tubelet(&self) -> Tubelet {
        Tubelet {
            frames: self.config.temporal_patch,
            side: self.config.dit.patch_size,
        }
    }

    /// The token grid of `x`, after checking its shape (panics with a clear message: the
    /// commands check shapes before they get here). Any `F × H × W` in whole patches.
    fn grid(&self, x: &ArrayView5<f32>, t: &[usize]) -> Grid {
        let (b, c, f, h, w) = x.dim();
        let (cc, p) = (self.config.dit.in_channels, self.config.dit.patch_size);
        assert!(
            b > 0 && c == cc,
            "video DiT: the input is {:?}, the model takes (B, {cc}, F, H, W)",
            x.shape()
        );
        if let Err(e) = check_frames(f, self.config.temporal_patch).and(check_size(h, w, p)) {
            panic!("video DiT: {e}");
        }
        assert_eq!(t.len(), b, "video DiT: {} timesteps for {b} clips", t.len());
        Grid {
            frames: f / self.config.temporal_patch,
            tokens: (h / p) * (w / p),
        }
    }

    /// The temporal table for `frames` token frames: the stored one at the trained length.
    fn temp_table(&self, frames: usize) -> Array2<f32> {
        if frames == self.temp_embed.nrows() {
            self.temp_embed.clone()
        } else {
            temp_embed_table(self.config.dit.hidden_size, frames)
        }
    }

    // ANCHOR: pos_table
    /// The spatial table `(h·w, D)` for a grid of `h × w` tokens: the stored one at the
    /// trained size, else DiT's 2-D sin-cos computed for that grid.
    fn pos_table(&self, h: usize, w: usize) -> Array2<f32> {
        let g = self.config.dit.grid_size();
        if (h, w) == (g, g) {
            self.pos_embed.clone()
        } else {
            pos_embed_grid(self.config.dit.hidden_size, h, w)
        }
    }
    // ANCHOR_END: pos_table

    /// Patch tokens plus the spatial table of their grid, every frame the same `(S, D)` rows.
    fn embed(&self, x: ArrayView5<f32>) -> (Array2<f32>, Array2<f32>) {
        let p = self.config.dit.patch_size;
        let pos = self.pos_table(x.shape()[3] / p, x.shape()[4] / p); // (S, D)
        let patches = clip_patchify(x, self.tubelet(), ChannelOrder::First); // (B·F'·S, C·p_t·p·p)
        let mut h = self.x_embedder.project(&patches); // (B·F'·S, D)
        for mut frame in h.axis_chunks_iter_mut(Axis(0), pos.nrows()) {
            frame += &pos;
        }
        (h, patches)
    }

    /// The output `(B, C_out, F, H, W)` for clips `x`, timesteps `t` and labels `y` (`None`:
    /// the null label), keeping every cache.
    pub fn forward(
        &self,
        x: ArrayView5<f32>,
        t: &[usize],
        y: Option<&[usize]>,
    ) -> (Array5<f32>, VideoDiTCache) {
        let y = y.map_or(Condition::None, Condition::labels);
        self.forward_cond(x, t, &y)
    }

    // ANCHOR: video_dit_forward
    /// The output `(B, C_out, F, H, W)` for clips `x`, timesteps `t` and the condition `y`
    /// (class labels, or captions for a text-conditioned model), keeping every cache.
    pub fn forward_cond(
        &self,
        x: ArrayView5<f32>,
        t: &[usize],
        y: &Condition,
    ) -> (Array5<f32>, VideoDiTCache) {
        self.forward_given(x, t, y, None)
    }

    /// [`forward_cond`](Self::forward_cond) with the frames `given` by a mask: their tokens
    /// read the conditioning of t = 0 ([`frame_mask`](super::frame_mask)).
    pub fn forward_given(
        &self,
        x: ArrayView5<f32>,
        t: &[usize],
        y: &Condition,
        given: Option<&FrameMask>,
    ) -> (Array5<f32>, VideoDiTCache) {
        let grid = self.grid(&x, t);
        let b = x.shape()[0];
        let (h, patches) = self.embed(x.view()); // (B·F'·S, D)
        given.inspect(|g| check_mask(g, b, x.shape()[2]));
        let ts = given.map_or_else(|| t.to_vec(), |_| with_t0(t)); // (R): B, or 2B
        let (e_t, t_embedder) = self.t_embedder.forward(&ts);
        let ids = y.label_ids(self.null_label());
        let (e_y, y_embedder) = self.y_embedder.forward(ids.as_deref(), b);
        let rows = given.map(|g| token_rows(g, grid, self.config.temporal_patch));
        let tile = |a: &Array2<f32>| if given.is_some() { twice(a) } else { a.clone() };
        let mut c = &e_t + &tile(&e_y); // (R, D), one row per clip (and per clip at t = 0)
                                        // a caption: the blocks' context, and (pooled) a term of c
        let (ctx, text) = match &self.text {
            Some(path) => {
                let (ctx, pooled, cache) = path.forward(y, b);
                if let Some(p) = pooled {
                    c += &tile(&p);
                }
                (Some(ctx), Some(cache))
            }
            None => (None, None),
        };
        let temp = self.temp_table(grid.frames);
        let r = rows.as_deref();
        let (h, blocks) = self
            .blocks
            .forward_rows(h, &c, r, grid, &temp, ctx.as_ref());
        let (out, last) = self.final_layer.forward_rows(&h, &c, r); // (B·F'·S, p_t·p·p·C_out)
        let shape = self.out_shape(&x);
        let cache = VideoDiTCache {
            patches,
            t_embedder,
            y_embedder,
            blocks,
            text,
            last,
            grid,
            shape: x.dim(),
            masked: given.is_some(),
        };
        (
            clip_unpatchify(out.view(), shape, self.tubelet(), ChannelOrder::Last),
            cache,
        )
    }
    // ANCHOR_END: video_dit_forward

    /// The output for label embeddings `e_y` (B, D) given directly (any [`Condition`]'s
    /// rows), keeping nothing (sampling).
    pub fn forward_infer_embedded(
        &self,
        x: ArrayView5<f32>,
        t: &[usize],
        e_y: &Array2<f32>,
    ) -> Array5<f32> {
        self.forward_infer_with(x, t, e_y, None, None)
    }

    /// [`forward_infer_embedded`](Self::forward_infer_embedded) reading `text`, the captions'
    /// context and pooled term, in a text-conditioned model.
    fn forward_infer_with(
        &self,
        x: ArrayView5<f32>,
        t: &[usize],
        e_y: &Array2<f32>,
        text: Option<(Context, Option<Array2<f32>>)>,
        given: Option<&FrameMask>,
    ) -> Array5<f32> {
        let grid = self.grid(&x, t);
        let (h, _) = self.embed(x.view());
        given.inspect(|g| check_mask(g, x.shape()[0], x.shape()[2]));
        let tile = |a: &Array2<f32>| if given.is_some() { twice(a) } else { a.clone() };
        let ts = given.map_or_else(|| t.to_vec(), |_| with_t0(t));
        let mut c = &self.t_embedder.forward_infer(&ts) + &tile(e_y);
        if let Some((_, Some(pooled))) = &text {
            c += &tile(pooled);
        }
        let ctx = text.as_ref().map(|(ctx, _)| ctx);
        let rows = given.map(|g| token_rows(g, grid, self.config.temporal_patch));
        let (r, temp) = (rows.as_deref(), self.temp_table(grid.frames));
        let h = self.blocks.forward_infer_rows(h, &c, r, grid, &temp, ctx);
        let out = self.final_layer.forward_infer_rows(&h, &c, r);
        clip_unpatchify(
            out.view(),
            self.out_shape(&x),
            self.tubelet(),
            ChannelOrder::Last,
        )
    }

    /// `(B, C_out, F, H, W)` for an input `x`.
    fn out_shape(&self, x: &ArrayView5<f32>) -> (usize, usize, usize, usize, usize) {
        let (b, _, f, h, w) = x.dim();
        (b, self.config.dit.out_channels(), f, h, w)
    }

    // ANCHOR: video_dit_backward
    /// Given `d_out` (B, C_out, F, H, W), adds `∂L/∂θ` into every parameter's gradient and
    /// returns `∂L/∂x` (B, C, F, H, W).
    pub fn backward(&mut self, cache: &VideoDiTCache, d_out: ArrayView5<f32>) -> Array5<f32> {
        let t = self.tubelet();
        let dout = clip_patchify(d_out, t, ChannelOrder::Last); // (B·F'·S, p_t·p·p·C_out)
        let r = if cache.masked { 2 } else { 1 } * cache.shape.0; // B, or 2B rows of c
        let mut dc = Array2::zeros((r, self.config.dit.hidden_size)); // (R, D)
        let dh = self.final_layer.backward(&cache.last, &dout, &mut dc);
        // the captions' context gathers the gradient of every block's cross-attention
        let mut dctx = cache.text.as_ref().map(|_| {
            let l = self.config.text.expect("a text model").encoder.max_len;
            Array3::zeros((cache.shape.0, l, self.config.dit.hidden_size)) // (B, L, D)
        });
        let dh = self
            .blocks
            .backward(&cache.blocks, dh, &mut dc, cache.grid, dctx.as_mut());
        // $c = e_t + e_y\,[+ W\bar e]$: every term receives all of ∂L/∂c (with a frame
        // mask, e_y and the caption term are in both halves: they receive both)
        self.t_embedder.backward(&cache.t_embedder, &dc);
        let dc = if cache.masked { fold(&dc) } else { dc }; // (B, D)
        self.y_embedder.backward(&cache.y_embedder, &dc);
        if let (Some(path), Some(tc), Some(dctx)) = (&mut self.text, &cache.text, &dctx) {
            path.backward(tc, dctx, &dc);
        }
        // the tables are fixed: the tokens' gradient goes to the patch embedding
        let dp = self.x_embedder.project_backward(&cache.patches, &dh);
        clip_unpatchify(dp.view(), cache.shape, t, ChannelOrder::First)
    }
    // ANCHOR_END: video_dit_backward
}

/// `(B, C, F, H, W)` view of the trait's dynamic-rank array.
fn as_clips(x: &ArrayD<f32>) -> ArrayView5<'_, f32> {
    x.view().into_dimensionality::<Ix5>().unwrap_or_else(|_| {
        panic!(
            "video DiT: the input must be (B, C, F, H, W), got {:?}",
            x.shape()
        )
    })
}

impl Denoiser for VideoDiT {
    fn predict(&self, x_t: &ArrayD<f32>, t: &[usize], y: &Condition) -> ArrayD<f32> {
        let x = as_clips(x_t);
        let table = self.y_embedder.embedding_table.weight.v2();
        let b = x.shape()[0];
        let e_y = y.rows(table, self.null_label(), b); // (B, D)
        let text = self.text.as_ref().map(|path| path.forward_infer(y, b));
        self.forward_infer_with(x, t, &e_y, text, None).into_dyn()
    }
}

impl FrameConditioned for VideoDiT {
    /// [`Denoiser::predict`] with the given frames' tokens at t = 0.
    fn predict_given(
        &self,
        x_t: &ArrayD<f32>,
        t: &[usize],
        y: &Condition,
        given: &FrameMask,
    ) -> ArrayD<f32> {
        let x = as_clips(x_t);
        let table = self.y_embedder.embedding_table.weight.v2();
        let b = x.shape()[0];
        let e_y = y.rows(table, self.null_label(), b); // (B, D)
        let text = self.text.as_ref().map(|path| path.forward_infer(y, b));
        self.forward_infer_with(x, t, &e_y, text, Some(given))
            .into_dyn()
    }
}

impl TrainableDenoiser for VideoDiT {
    type Cache = VideoDiTCache;

    fn forward_train(
        &self,
        x_t: &ArrayD<f32>,
        t: &[usize],
        y: &Condition,
    ) -> (ArrayD<f32>, VideoDiTCache) {
        let (out, cache) = self.forward_cond(as_clips(x_t), t, y);
        (out.into_dyn(), cache)
    }

    fn reads_frame_masks(&self) -> bool {
        true
    }

    fn forward_train_given(
        &self,
        x_t: &ArrayD<f32>,
        t: &[usize],
        y: &Condition,
        given: &FrameMask,
    ) -> (ArrayD<f32>, VideoDiTCache) {
        let (out, cache) = self.forward_given(as_clips(x_t), t, y, Some(given));
        (out.into_dyn(), cache)
    }

    fn backward_train(&mut self, cache: &VideoDiTCache, d_out: &ArrayD<f32>) {
        self.backward(cache, as_clips(d_out));
    }
}

impl Parameters for VideoDiT {
    /// Latte's `state_dict` names, without the fixed tables.
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.x_embedder.visit(&join(prefix, "x_embedder"), f);
        self.t_embedder.visit(&join(prefix, "t_embedder"), f);
        self.y_embedder.visit(&join(prefix, "y_embedder"), f);
        if let Some(text) = &mut self.text {
            text.visit(prefix, f);
        }
        self.blocks.visit(prefix, f);
        self.final_layer.visit(&join(prefix, "final_layer"), f);
    }
}
