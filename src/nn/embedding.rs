//! Embedding table: row `i` of a learned matrix stands for token/class `i`.
//!
//! `Embedding(num, dim)` maps ids `(N)` to vectors `(N, dim)`. It is a matrix product with
//! one-hot rows, $y = \mathrm{onehot}(ids)\,W$, done as a row lookup; the backward of that
//! product is a scatter-add of `dy`'s rows into the rows of `∂L/∂W` that were looked up. DiT's
//! class-label embedding (with its extra "null" class for classifier-free guidance) is one.

use crate::param::{join, Param, Parameters};
use crate::tensor::{init, Rng};
use ndarray::{Array2, Axis};

/// A `(num, dim)` table of learned vectors.
#[derive(Clone, Debug)]
pub struct Embedding {
    pub weight: Param, // (num, dim)
}

/// What backward needs: which rows were looked up.
pub struct EmbeddingCache {
    ids: Vec<usize>, // (N)
}

impl Embedding {
    /// PyTorch's default `nn.Embedding` initialisation, `W ~ N(0, 1)` (callers may re-init).
    pub fn new(num: usize, dim: usize, rng: &mut Rng) -> Self {
        Embedding {
            weight: Param::new(init::normal(&[num, dim], 1.0, rng)),
        }
    }

    /// Number of rows (ids `0..num` are valid).
    pub fn num(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Width of each vector.
    pub fn dim(&self) -> usize {
        self.weight.shape()[1]
    }

    // ANCHOR: forward
    /// `y[n] = W[ids[n]]`   y: (N, dim), keeping the ids for backward.
    pub fn forward(&self, ids: &[usize]) -> (Array2<f32>, EmbeddingCache) {
        let y = self.forward_infer(ids);
        (y, EmbeddingCache { ids: ids.to_vec() })
    }

    /// The lookup without keeping anything. Panics on an id `>= num` (callers validate input).
    pub fn forward_infer(&self, ids: &[usize]) -> Array2<f32> {
        for &i in ids {
            assert!(
                i < self.num(),
                "embedding id {i} out of range: the table has {} rows (0..{})",
                self.num(),
                self.num()
            );
        }
        // $y = \mathrm{onehot}(ids)\, W$ is a row gather
        self.weight.v2().select(Axis(0), ids)
    }
    // ANCHOR_END: forward

    // ANCHOR: backward
    /// Adds `dy[n]` into row `ids[n]` of `∂L/∂W` (in order, so repeated ids sum
    /// deterministically). Ids are not differentiable, so nothing is returned.
    pub fn backward(&mut self, cache: &EmbeddingCache, dy: &Array2<f32>) {
        assert_eq!(
            dy.dim(),
            (cache.ids.len(), self.dim()),
            "dy must be (N, dim) as forward's output"
        );
        let mut dw = self.weight.g2();
        // $\partial L/\partial W = \mathrm{onehot}(ids)^\top dy$: a scatter-add of rows
        for (&i, row) in cache.ids.iter().zip(dy.rows()) {
            dw.row_mut(i).scaled_add(1.0, &row);
        }
    }
    // ANCHOR_END: backward
}

impl Parameters for Embedding {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        f(&join(prefix, "weight"), &mut self.weight);
    }
}
