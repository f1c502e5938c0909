//! Training on clips of several shapes in one run: **buckets**, as Open-Sora 1.1 does
//! (`bucket.py`): the clips are grouped by shape `(F, H, W)`, and every batch is drawn from one
//! bucket, so a batch is one dense `(B, C, F, H, W)` array and nothing is padded.
//!
//! Each step picks a bucket with probability proportional to its clips,
//! $P(k) = N_k / \sum_j N_j$, from the step's own generator (seeded by `(seed, step)`), then
//! takes the next batch of that bucket's own shuffled order ([`Batcher`], seeded by
//! `(seed, k)`). So every clip is seen about equally often, and a run is the same bits for the
//! same seed and thread count.
//!
//! Why buckets and not packing (NaViT's "patch n' pack", several clips in one sequence with a
//! block-diagonal attention mask): here the attention of a clip is already split — the spatial
//! blocks attend within a frame, the temporal ones within a position — and every kernel takes
//! equal-length sequences. Packing would need a mask in every attention and a per-token
//! timestep and condition in adaLN; a bucket needs nothing of the model but that it take any
//! shape, and wastes nothing either. Its cost: a batch never mixes shapes, so a small bucket's
//! batches are rarer but not smaller.

use super::data::TrainData;
use crate::data::Batcher;
use crate::error::{Error, Result};
use crate::tensor::Rng;
use ndarray::ArrayD;
use ndarray_rand::rand::Rng as _;

// ANCHOR: buckets
/// Training data in buckets of one sample shape each.
#[derive(Clone, Debug)]
pub struct Buckets {
    pub buckets: Vec<TrainData>,
}

impl Buckets {
    /// Checks the buckets: at least one, none empty, each of one shape, all of the same
    /// rank, channels and space (all latents or all pixels).
    pub fn new(buckets: Vec<TrainData>) -> Result<Self> {
        let Some(first) = buckets.first() else {
            return Err(Error::new(
                "no buckets to train on",
                "give at least one bucket of clips",
            ));
        };
        let (rank, c, latent) = (
            first.sample_shape().len(),
            first.channels(),
            first.is_latent(),
        );
        for (k, b) in buckets.iter().enumerate() {
            if b.is_empty() {
                return Err(Error::new(
                    format!(
                        "bucket {k} ({}) holds no clips",
                        shape_name(b.sample_shape())
                    ),
                    "drop the empty bucket, or give it clips",
                ));
            }
            if b.sample_shape().len() != rank || b.channels() != c || b.is_latent() != latent {
                return Err(Error::new(
                    format!(
                        "bucket {k} holds {} {} samples; bucket 0 holds {} {}",
                        shape_name(b.sample_shape()),
                        if b.is_latent() { "latent" } else { "pixel" },
                        shape_name(first.sample_shape()),
                        if latent { "latent" } else { "pixel" },
                    ),
                    "put samples of one kind in every bucket: the same channels and rank, all \
                     latents (encoded by one VAE) or all pixels",
                ));
            }
        }
        Ok(Buckets { buckets })
    }

    /// Samples over all buckets.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(TrainData::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bucket of the next batch: $k$ with probability $N_k / \sum_j N_j$.
    pub fn pick(&self, r: &mut Rng) -> usize {
        let mut u = r.random_range(0..self.len());
        for (k, b) in self.buckets.iter().enumerate() {
            if u < b.len() {
                return k;
            }
            u -= b.len();
        }
        unreachable!("u < the total")
    }

    /// One shuffled order per bucket, seeded by `(seed, k)`; a batch larger than a bucket is
    /// an error that names it.
    pub fn batchers(&self, batch: usize, seed: u64) -> Result<Vec<Batcher>> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(k, b)| {
                Batcher::new(b.len(), batch, seed ^ 0xb0c7 ^ ((k as u64) << 32)).map_err(|_| {
                    Error::new(
                        format!(
                            "batch {batch} is larger than bucket {k} ({}, {} clips)",
                            shape_name(b.sample_shape()),
                            b.len()
                        ),
                        "lower --batch, or give every bucket at least a batch of clips",
                    )
                })
            })
            .collect()
    }

    /// The next batch: a bucket drawn by [`pick`](Self::pick), then its next indices; returns
    /// the bucket, the indices and the samples `(B, C, …)` in that bucket's shape.
    pub fn next_batch(
        &self,
        batchers: &mut [Batcher],
        r: &mut Rng,
    ) -> (usize, Vec<usize>, ArrayD<f32>) {
        let k = self.pick(r);
        let idx = batchers[k].next_indices();
        let x0 = self.buckets[k].batch(&idx, r);
        (k, idx, x0)
    }
}
// ANCHOR_END: buckets

/// `C×F×H×W` for a sample shape.
pub fn shape_name(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    dims.join("×")
}
