//! Mini-batches: a seeded shuffle of the dataset each epoch, cut into batches, with an optional
//! random horizontal flip (DDPM and DiT train with flips; do not flip digits, whose mirror
//! images are not digits).
//!
//! Batches always have `batch_size` images: the tail of an epoch that would make a short batch
//! is dropped and the next epoch starts with a fresh shuffle (PyTorch's `drop_last=True`), so
//! every training step has the same cost. The order and flips come from one generator seeded
//! once, so a run is reproducible.

use super::dataset::ImageDataset;
use crate::error::{Error, Result};
use crate::tensor::{rng, Rng};
use ndarray::{s, Array4};
use ndarray_rand::rand::seq::SliceRandom;
use ndarray_rand::rand::Rng as _;

/// One mini-batch.
#[derive(Clone, Debug)]
pub struct Batch {
    /// `(B, C, H, W)` in `[−1, 1]`.
    pub images: Array4<f32>,
    /// One label per image.
    pub labels: Vec<usize>,
    /// The dataset indices the images came from.
    pub indices: Vec<usize>,
}

/// An endless, seeded stream of shuffled mini-batches over a dataset of `len` images.
#[derive(Clone, Debug)]
pub struct Batcher {
    batch_size: usize,
    flip: bool,
    order: Vec<usize>,
    pos: usize,
    epoch: usize,
    rng: Rng,
}

impl Batcher {
    /// Batches of `batch_size` over `len` images, shuffled with `seed`, no flips.
    pub fn new(len: usize, batch_size: usize, seed: u64) -> Result<Self> {
        if batch_size == 0 || batch_size > len {
            return Err(Error::new(
                format!("batch size {batch_size} for a dataset of {len} images"),
                "choose a batch size between 1 and the number of images",
            ));
        }
        let mut b = Batcher {
            batch_size,
            flip: false,
            order: (0..len).collect(),
            pos: 0,
            epoch: 0,
            rng: rng(seed),
        };
        b.order.shuffle(&mut b.rng);
        Ok(b)
    }

    /// Flip each image left–right with probability ½.
    pub fn with_flip(mut self, flip: bool) -> Self {
        self.flip = flip;
        self
    }

    /// Full batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.order.len() / self.batch_size
    }

    /// Epochs completed so far.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// The next batch's dataset indices (reshuffling at the end of an epoch).
    pub fn next_indices(&mut self) -> Vec<usize> {
        if self.pos + self.batch_size > self.order.len() {
            self.order.shuffle(&mut self.rng);
            self.pos = 0;
            self.epoch += 1;
        }
        let idx = self.order[self.pos..self.pos + self.batch_size].to_vec();
        self.pos += self.batch_size;
        idx
    }

    /// The next batch of `ds` (which must have the `len` given to [`Batcher::new`]).
    pub fn next_batch(&mut self, ds: &ImageDataset) -> Batch {
        assert_eq!(
            ds.len(),
            self.order.len(),
            "Batcher built for {} images, given a dataset of {}",
            self.order.len(),
            ds.len()
        );
        let indices = self.next_indices();
        let (mut images, labels) = ds.gather(&indices); // (B, C, H, W)
        if self.flip {
            for mut img in images.outer_iter_mut() {
                if self.rng.random_bool(0.5) {
                    let flipped = img.slice(s![.., .., ..;-1]).to_owned(); // mirror along W
                    img.assign(&flipped);
                }
            }
        }
        Batch {
            images,
            labels,
            indices,
        }
    }
}
