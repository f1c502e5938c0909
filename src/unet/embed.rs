//! How the U-Net is told *when* (the timestep) and *what* (the class): ADM's `time_embed` and
//! `label_emb` (openai/improved-diffusion `unet.py`).
//!
//! The timestep `t` becomes `model_channels` sinusoids ([`timestep_embedding`]), then a
//! two-layer MLP widens them to `emb_dim = 4 · model_channels`:
//!
//! $$e = W_2\,\mathrm{silu}(W_1\,\mathrm{sin\_cos}(t) + b_1) + b_2$$
//!
//! For a class-conditional model a learned row of the label table is added,
//! $e \mathrel{+}= E_y$. The table has `num_classes + 1` rows; the last is the "null" label
//! that classifier-free guidance uses for the unconditional prediction (ADM's table has no
//! null row; DiT's does). Every ResBlock reads this one vector `e`.
//!
//! Parameter names are ADM's: `time_embed.0.{weight,bias}`, `time_embed.2.{weight,bias}` (the
//! SiLU is `time_embed.1`), `label_emb.weight`.

use crate::diffusion::Condition;
use crate::nn::timestep_embedding;
use crate::nn::{ActivationCache, Embedding, EmbeddingCache, Linear, LinearCache, Silu};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{Array2, Ix2};

/// The timestep MLP `time_embed` and the optional label table `label_emb`.
#[derive(Clone, Debug)]
pub struct TimestepEmbedder {
    pub linear_0: Linear, // time_embed.0: model_channels → emb_dim
    pub linear_2: Linear, // time_embed.2: emb_dim → emb_dim
    /// `label_emb`: `(num_classes + 1, emb_dim)`, the last row the null label.
    pub label_emb: Option<Embedding>,
    /// Number of sinusoids (ADM: `model_channels`).
    pub freq_dim: usize,
}

/// What backward needs from forward.
pub struct TimestepEmbedderCache {
    linear_0: LinearCache,
    act: ActivationCache<Ix2>,
    linear_2: LinearCache,
    label: Option<EmbeddingCache>,
}

impl TimestepEmbedder {
    /// `freq_dim` sinusoids to `emb_dim` features; a table of `num_classes + 1` labels if
    /// `Some`. PyTorch's default initialisation (the table `N(0, 1)`, as `nn.Embedding`).
    pub fn new(freq_dim: usize, emb_dim: usize, num_classes: Option<usize>, rng: &mut Rng) -> Self {
        TimestepEmbedder {
            linear_0: Linear::new(freq_dim, emb_dim, true, rng),
            linear_2: Linear::new(emb_dim, emb_dim, true, rng),
            label_emb: num_classes.map(|n| Embedding::new(n + 1, emb_dim, rng)),
            freq_dim,
        }
    }

    /// The label used when `y` is not given: the null label of a conditional model.
    pub fn null_label(&self) -> Option<usize> {
        self.label_emb.as_ref().map(|e| e.num() - 1)
    }

    /// The labels to look up for a batch of `n`: `y`, or the null label for every sample when
    /// `y` is `None`. An unconditional model has no table and ignores `y`.
    fn labels(&self, y: Option<&[usize]>, n: usize) -> Option<Vec<usize>> {
        let null = self.null_label()?;
        Some(match y {
            Some(y) => {
                assert_eq!(y.len(), n, "one label per sample");
                y.to_vec()
            }
            None => vec![null; n],
        })
    }

    // ANCHOR: time_embed
    /// `e = time_embed(sin_cos(t)) + label_emb(y)`   t: (B) → e: (B, emb_dim)
    pub fn forward(
        &self,
        t: &[usize],
        y: Option<&[usize]>,
    ) -> (Array2<f32>, TimestepEmbedderCache) {
        // $\mathrm{sin\_cos}(t)$: cos then sin of t·10000^{−i/half}   (B, model_channels)
        let tf: Vec<f32> = t.iter().map(|&s| s as f32).collect();
        let freqs = timestep_embedding(&tf, self.freq_dim, 10000.0);
        // $e = W_2\,\mathrm{silu}(W_1 f + b_1) + b_2$   (B, emb_dim)
        let (h, linear_0) = self.linear_0.forward(&freqs);
        let (h, act) = Silu.forward(&h);
        let (mut e, linear_2) = self.linear_2.forward(&h);
        // $e \mathrel{+}= E_y$: the class's row of the label table (the null row if no label)
        let label = match (&self.label_emb, self.labels(y, t.len())) {
            (Some(table), Some(ids)) => {
                let (rows, cache) = table.forward(&ids);
                e += &rows;
                Some(cache)
            }
            _ => None,
        };
        let cache = TimestepEmbedderCache {
            linear_0,
            act,
            linear_2,
            label,
        };
        (e, cache)
    }
    // ANCHOR_END: time_embed

    /// The same embedding without keeping anything (sampling).
    pub fn forward_infer(&self, t: &[usize], y: Option<&[usize]>) -> Array2<f32> {
        let mut e = self.time_infer(t);
        if let (Some(table), Some(ids)) = (&self.label_emb, self.labels(y, t.len())) {
            e += &table.forward_infer(&ids);
        }
        e
    }

    /// The same for any [`Condition`], a blend of two classes included (sampling):
    /// $e \mathrel{+}=$ each entry's row of the label table ([`Condition::rows`]). An
    /// unconditional model ignores `y`.
    pub fn forward_infer_condition(&self, t: &[usize], y: &Condition) -> Array2<f32> {
        let mut e = self.time_infer(t);
        if let (Some(table), Some(null)) = (&self.label_emb, self.null_label()) {
            let rows = y.rows(table.weight.v2(), null, t.len()); // (B, emb_dim)
            assert_eq!(rows.nrows(), t.len(), "one condition per sample");
            e += &rows;
        }
        e
    }

    /// $W_2\,\mathrm{silu}(W_1\,\mathrm{sin\_cos}(t) + b_1) + b_2$ without keeping anything.
    fn time_infer(&self, t: &[usize]) -> Array2<f32> {
        let tf: Vec<f32> = t.iter().map(|&s| s as f32).collect();
        let freqs = timestep_embedding(&tf, self.freq_dim, 10000.0);
        let h = Silu.forward_infer(&self.linear_0.forward_infer(&freqs));
        self.linear_2.forward_infer(&h)
    }

    /// Given `d_emb = ∂L/∂e` (B, emb_dim), adds into the MLP's and the looked-up label rows'
    /// gradients. Timesteps and labels are not differentiable, so nothing is returned.
    pub fn backward(&mut self, cache: &TimestepEmbedderCache, d_emb: &Array2<f32>) {
        if let (Some(table), Some(c)) = (&mut self.label_emb, &cache.label) {
            table.backward(c, d_emb);
        }
        let dh = self.linear_2.backward(&cache.linear_2, d_emb);
        let dh = Silu.backward(&cache.act, &dh);
        self.linear_0.backward(&cache.linear_0, &dh);
    }
}

impl Parameters for TimestepEmbedder {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.linear_0.visit(&join(prefix, "time_embed.0"), f);
        self.linear_2.visit(&join(prefix, "time_embed.2"), f);
        self.label_emb.visit(&join(prefix, "label_emb"), f);
    }
}
