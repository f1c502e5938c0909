//! How DiT is told *when* and *what*: `TimestepEmbedder` and `LabelEmbedder` of
//! facebookresearch/DiT `models.py`. Their sum $c = e_t + e_y$ conditions every block.
//!
//! - The timestep: 256 sinusoids of `t` ([`timestep_embedding`], `[cos, sin]` order, max
//!   period 10000 — the function the U-Net uses too), then Linear → SiLU → Linear to `D`:
//!   $e_t = W_2\,\mathrm{silu}(W_1\,\mathrm{sin\_cos}(t) + b_1) + b_2$.
//! - The label: a row of a `(num_classes + 1, D)` table, $e_y = E_y$; the last row is the
//!   "null" label that classifier-free guidance uses for the unconditional prediction, and
//!   that training substitutes for a random 10 % of the labels.
//!
//! Parameter names: `mlp.0.{weight,bias}`, `mlp.2.{weight,bias}` (the SiLU is `mlp.1`) and
//! `embedding_table.weight`. Initialisation as the reference: the two MLP weights
//! $\mathcal N(0, 0.02^2)$ with zero biases, the table $\mathcal N(0, 0.02^2)$.

use crate::nn::timestep_embedding;
use crate::nn::{ActivationCache, Embedding, EmbeddingCache, Linear, LinearCache, Silu};
use crate::param::{join, Param, Parameters};
use crate::tensor::{init, Rng};
use ndarray::{Array2, Ix2};

/// Number of sinusoids the timestep is expanded into (`frequency_embedding_size`).
pub const FREQ_DIM: usize = 256;

/// Timesteps `(B)` → `(B, D)`: sinusoids, then `mlp.0` → SiLU → `mlp.2`.
#[derive(Clone, Debug)]
pub struct TimestepEmbedder {
    pub mlp_0: Linear, // 256 → D
    pub mlp_2: Linear, // D → D
}

/// What [`TimestepEmbedder::backward`] needs.
pub struct TimestepEmbedderCache {
    mlp_0: LinearCache,
    act: ActivationCache<Ix2>,
    mlp_2: LinearCache,
}

/// A Linear with weight $\mathcal N(0, 0.02^2)$ and zero bias.
fn normal_linear(d_in: usize, d_out: usize, rng: &mut Rng) -> Linear {
    Linear {
        weight: Param::new(init::normal(&[d_out, d_in], 0.02, rng)),
        bias: Some(Param::zeros(&[d_out])),
    }
}

impl TimestepEmbedder {
    /// The reference's initialisation: weights $\mathcal N(0, 0.02^2)$, biases 0.
    pub fn new(hidden: usize, rng: &mut Rng) -> Self {
        TimestepEmbedder {
            mlp_0: normal_linear(FREQ_DIM, hidden, rng),
            mlp_2: normal_linear(hidden, hidden, rng),
        }
    }

    // ANCHOR: timestep_embedder
    /// $e_t = W_2\,\mathrm{silu}(W_1\,\mathrm{sin\_cos}(t) + b_1) + b_2$   t: (B) → (B, D)
    pub fn forward(&self, t: &[usize]) -> (Array2<f32>, TimestepEmbedderCache) {
        let (h, mlp_0) = self.mlp_0.forward(&frequencies(t)); // (B, D)
        let (h, act) = Silu.forward(&h);
        let (e, mlp_2) = self.mlp_2.forward(&h); // (B, D)
        (e, TimestepEmbedderCache { mlp_0, act, mlp_2 })
    }
    // ANCHOR_END: timestep_embedder

    /// The same embedding without keeping anything (sampling).
    pub fn forward_infer(&self, t: &[usize]) -> Array2<f32> {
        let h = Silu.forward_infer(&self.mlp_0.forward_infer(&frequencies(t)));
        self.mlp_2.forward_infer(&h)
    }

    /// Given `de = ∂L/∂e_t` (B, D), adds into the MLP's gradients (timesteps are not
    /// differentiable, so nothing is returned).
    pub fn backward(&mut self, cache: &TimestepEmbedderCache, de: &Array2<f32>) {
        let dh = self.mlp_2.backward(&cache.mlp_2, de);
        let dh = Silu.backward(&cache.act, &dh);
        self.mlp_0.backward(&cache.mlp_0, &dh);
    }
}

/// $\mathrm{sin\_cos}(t)$: `[cos, sin]` of $t \cdot 10000^{-i/128}$   (B, 256)
fn frequencies(t: &[usize]) -> Array2<f32> {
    let tf: Vec<f32> = t.iter().map(|&s| s as f32).collect();
    timestep_embedding(&tf, FREQ_DIM, 10000.0)
}

impl Parameters for TimestepEmbedder {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.mlp_0.visit(&join(prefix, "mlp.0"), f);
        self.mlp_2.visit(&join(prefix, "mlp.2"), f);
    }
}

/// Class labels `(B)` → `(B, D)`, with the null label `num_classes` as the last row.
#[derive(Clone, Debug)]
pub struct LabelEmbedder {
    pub embedding_table: Embedding, // (num_classes + 1, D)
}

impl LabelEmbedder {
    /// A table of `num_classes + 1` rows drawn from $\mathcal N(0, 0.02^2)$.
    pub fn new(num_classes: usize, hidden: usize, rng: &mut Rng) -> Self {
        LabelEmbedder {
            embedding_table: Embedding {
                weight: Param::new(init::normal(&[num_classes + 1, hidden], 0.02, rng)),
            },
        }
    }

    /// The null label: the last row.
    pub fn null_label(&self) -> usize {
        self.embedding_table.num() - 1
    }

    // ANCHOR: label_embedder
    /// The ids to look up for a batch of `n`: `y`, or the null label for all when `None`.
    fn ids(&self, y: Option<&[usize]>, n: usize) -> Vec<usize> {
        match y {
            Some(y) => {
                assert_eq!(y.len(), n, "DiT: {} labels for {n} samples", y.len());
                y.to_vec()
            }
            None => vec![self.null_label(); n],
        }
    }

    /// $e_y = E_{y}$   (B, D), keeping the ids for backward. Panics on a label above the null.
    pub fn forward(&self, y: Option<&[usize]>, n: usize) -> (Array2<f32>, EmbeddingCache) {
        self.embedding_table.forward(&self.ids(y, n))
    }
    // ANCHOR_END: label_embedder

    /// The lookup without keeping anything.
    pub fn forward_infer(&self, y: Option<&[usize]>, n: usize) -> Array2<f32> {
        self.embedding_table.forward_infer(&self.ids(y, n))
    }

    /// Adds `de` (B, D) into the looked-up rows of the table's gradient.
    pub fn backward(&mut self, cache: &EmbeddingCache, de: &Array2<f32>) {
        self.embedding_table.backward(cache, de);
    }
}

impl Parameters for LabelEmbedder {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.embedding_table
            .visit(&join(prefix, "embedding_table"), f);
    }
}
