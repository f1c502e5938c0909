//! CLIP's second tower, made small for clips: the video encoder the text encoder is
//! pre-trained against (and then thrown away).
//!
//! Each frame is 2×2 average-pooled, flattened and embedded, `frame_in: C·(H/2)·(W/2) → D`
//! and GELU; a learned **temporal embedding** `(F_max, D)` is added so the frames' order
//! matters; a per-frame `frame_mlp: D → D` and GELU mixes the two; the frames are
//! mean-pooled and `proj: D → P` gives the clip's feature. Without the temporal embedding
//! the mean over frames would be the same for a clip and its reverse, so "moves left" and
//! "moves right" could not be told apart; with it, a frame's features depend on where it is,
//! and the GELU after the sum keeps the mean from separating again into (content + position).
//!
//! Init: the Linears keep PyTorch's default (`U(±1/√fan_in)`), the temporal embedding is
//! `N(0, 0.02²)`.

use crate::error::{Error, Result};
use crate::nn::{fast_gelu, fast_gelu_with_slope, AvgPool2x, Linear, LinearCache};
use crate::param::{join, Param, Parameters};
use crate::tensor::{init, Rng};
use ndarray::{s, Array2, Array3, Array4, Array5, Axis};

/// The video tower's sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClipVideoConfig {
    /// Channels `C` of a frame.
    pub channels: usize,
    /// Most frames `F_max` a clip may have (rows of the temporal embedding).
    pub max_frames: usize,
    /// Frame size `(H, W)`, both even (a 2×2 pool comes first).
    pub frame: (usize, usize),
    /// Feature width `D` per frame.
    pub hidden: usize,
}

impl ClipVideoConfig {
    /// Checks that the sizes make a tower.
    pub fn validate(&self) -> Result<()> {
        let (h, w) = self.frame;
        if self.channels == 0 || self.max_frames == 0 || self.hidden == 0 || h < 2 || w < 2 {
            return Err(Error::new(
                format!("CLIP video tower config {self:?} has a zero size"),
                "give channels, max_frames and hidden ≥ 1 and frames of at least 2×2",
            ));
        }
        if h % 2 != 0 || w % 2 != 0 {
            return Err(Error::new(
                format!("CLIP video tower: frames of {h}×{w} do not halve"),
                "use frames of even height and width (the tower 2×2-pools them first)",
            ));
        }
        Ok(())
    }

    /// Inputs to `frame_in`: `C·(H/2)·(W/2)`.
    pub fn frame_features(&self) -> usize {
        self.channels * (self.frame.0 / 2) * (self.frame.1 / 2)
    }
}

/// Clips `(B, C, F, H, W)` → features `(B, P)`.
#[derive(Clone, Debug)]
pub struct ClipVideoEncoder {
    pub config: ClipVideoConfig,
    pub frame_in: Linear,          // C·(H/2)·(W/2) → D
    pub temporal_embedding: Param, // (F_max, D)
    pub frame_mlp: Linear,         // D → D
    pub proj: Linear,              // D → P
}

/// What [`ClipVideoEncoder::backward`] needs.
pub struct ClipVideoCache {
    shape: [usize; 5], // (B, C, F, H, W)
    frame_in: LinearCache,
    slope_1: Array2<f32>, // (B·F, D): gelu' at frame_in's output
    frame_mlp: LinearCache,
    slope_2: Array2<f32>, // (B·F, D): gelu' at frame_mlp's output
    proj: LinearCache,
}

impl ClipVideoEncoder {
    /// A fresh tower with output width `embed` (`P`). Panics on an invalid config.
    pub fn new(config: ClipVideoConfig, embed: usize, rng: &mut Rng) -> Self {
        if let Err(e) = config.validate() {
            panic!("{e}");
        }
        let d = config.hidden;
        ClipVideoEncoder {
            config,
            frame_in: Linear::new(config.frame_features(), d, true, rng),
            temporal_embedding: Param::new(init::normal(&[config.max_frames, d], 0.02, rng)),
            frame_mlp: Linear::new(d, d, true, rng),
            proj: Linear::new(d, embed, true, rng),
        }
    }

    /// `(B, C, F, H, W)` → pooled frames as rows `(B·F, C·(H/2)·(W/2))`.
    fn frames(&self, x: &Array5<f32>) -> Array2<f32> {
        let (b, c, f, h, w) = x.dim();
        let cfg = &self.config;
        assert!(
            c == cfg.channels && (h, w) == cfg.frame && (1..=cfg.max_frames).contains(&f),
            "CLIP video tower: clips {:?} must be (B, {}, 1..={}, {}, {})",
            x.shape(),
            cfg.channels,
            cfg.max_frames,
            cfg.frame.0,
            cfg.frame.1
        );
        // (B, C, F, H, W) → (B, F, C, H, W) → (B·F, C, H, W)
        let per_frame = x
            .view()
            .permuted_axes([0, 2, 1, 3, 4])
            .as_standard_layout()
            .into_owned();
        let per_frame = per_frame
            .into_shape_with_order((b * f, c, h, w))
            .expect("fresh");
        let pooled = AvgPool2x.forward(&per_frame); // (B·F, C, H/2, W/2)
        let k = cfg.frame_features();
        pooled.into_shape_with_order((b * f, k)).expect("fresh")
    }

    // ANCHOR: video_tower_forward
    /// $u_{bf} = \mathrm{gelu}(h_{bf}) + E_f$ in place   g: (B·F, D), frames F.
    fn add_time(&self, g: &mut Array2<f32>, f: usize) {
        let te = self.temporal_embedding.v2();
        for (i, mut row) in g.outer_iter_mut().enumerate() {
            row += &te.row(i % f);
        }
    }

    /// clips: (B, C, F, H, W) → (B, P).
    pub fn forward(&self, x: &Array5<f32>) -> (Array2<f32>, ClipVideoCache) {
        let (b, c, f, h, w) = x.dim();
        let rows = self.frames(x); // (B·F, K)
        let (h1, frame_in) = self.frame_in.forward_owned(rows); // (B·F, D)
        let (mut u, slope_1) = fast_gelu_with_slope(&h1);
        self.add_time(&mut u, f);
        let (h2, frame_mlp) = self.frame_mlp.forward_owned(u);
        let (g2, slope_2) = fast_gelu_with_slope(&h2);
        let m = mean_frames(g2, b, f); // (B, D)
        let (y, proj) = self.proj.forward_owned(m);
        let cache = ClipVideoCache {
            shape: [b, c, f, h, w],
            frame_in,
            slope_1,
            frame_mlp,
            slope_2,
            proj,
        };
        (y, cache)
    }
    // ANCHOR_END: video_tower_forward

    /// The same output without keeping anything.
    pub fn forward_infer(&self, x: &Array5<f32>) -> Array2<f32> {
        let (b, f) = (x.shape()[0], x.shape()[2]);
        let mut u = fast_gelu(&self.frame_in.forward_infer(&self.frames(x)));
        self.add_time(&mut u, f);
        let g2 = fast_gelu(&self.frame_mlp.forward_infer(&u));
        self.proj.forward_infer(&mean_frames(g2, b, f))
    }

    /// Given `dy` (B, P), adds into every parameter's gradient and returns `dx`
    /// (B, C, F, H, W).
    pub fn backward(&mut self, cache: &ClipVideoCache, dy: &Array2<f32>) -> Array5<f32> {
        let [b, c, f, h, w] = cache.shape;
        let d = self.config.hidden;
        let dm = self.proj.backward(&cache.proj, dy); // (B, D)
                                                      // $dg_{2,bf} = dm_b / F$, then through the GELU
        let dm = dm / f as f32;
        let mut dh2 = dm
            .insert_axis(Axis(1))
            .broadcast((b, f, d))
            .expect("(B, 1, D) broadcasts")
            .to_owned()
            .into_shape_with_order((b * f, d))
            .expect("fresh");
        dh2 *= &cache.slope_2;
        let du = self.frame_mlp.backward(&cache.frame_mlp, &dh2); // (B·F, D)
                                                                  // $dE_f = \sum_b du_{bf}$
        let du3 = du
            .view()
            .into_shape_with_order((b, f, d))
            .expect("row-major");
        let mut dte = self.temporal_embedding.g2();
        dte.slice_mut(s![..f, ..])
            .scaled_add(1.0, &du3.sum_axis(Axis(0)));
        let dh1 = du * &cache.slope_1;
        let drows = self.frame_in.backward(&cache.frame_in, &dh1); // (B·F, K)
        let dpooled = drows
            .into_shape_with_order((b * f, c, h / 2, w / 2))
            .expect("fresh");
        let dframes: Array4<f32> = AvgPool2x.backward([b * f, c, h, w], &dpooled);
        let dframes = dframes
            .into_shape_with_order((b, f, c, h, w))
            .expect("fresh");
        dframes
            .permuted_axes([0, 2, 1, 3, 4])
            .as_standard_layout()
            .into_owned()
    }
}

/// $m_b = \frac1F \sum_f g_{bf}$   g: (B·F, D) → (B, D).
fn mean_frames(g: Array2<f32>, b: usize, f: usize) -> Array2<f32> {
    let d = g.ncols();
    let g: Array3<f32> = g.into_shape_with_order((b, f, d)).expect("fresh");
    g.mean_axis(Axis(1)).expect("at least one frame")
}

impl Parameters for ClipVideoEncoder {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.frame_in.visit(&join(prefix, "frame_in"), f);
        self.temporal_embedding
            .visit(&join(prefix, "temporal_embedding"), f);
        self.frame_mlp.visit(&join(prefix, "frame_mlp"), f);
        self.proj.visit(&join(prefix, "proj"), f);
    }
}
