//! An in-memory labelled image dataset: images `(N, C, H, W)` as `f32` in `[−1, 1]`, one label
//! per image, and the class names.
//!
//! Diffusion models and VAEs are trained on pixels scaled to `[−1, 1]` (DDPM, §4: "we assume
//! that image data consists of integers in {0, 1, …, 255} scaled linearly to [−1, 1]"), so the
//! scaling happens once, here, and every model sees the same range.

use crate::error::{Error, Result};
use ndarray::{Array4, ArrayView3, Axis};

/// Labelled images held in memory.
#[derive(Clone, Debug)]
pub struct ImageDataset {
    /// `(N, C, H, W)`, every value in `[−1, 1]`.
    pub images: Array4<f32>,
    /// `labels[i] < class_names.len()` is the class of image `i`.
    pub labels: Vec<usize>,
    /// One name per class, indexed by label.
    pub class_names: Vec<String>,
}

/// A byte `0..=255` scaled to `[−1, 1]`: $x = 2 \cdot b / 255 - 1$.
#[inline]
pub fn byte_to_unit(b: u8) -> f32 {
    b as f32 * (2.0 / 255.0) - 1.0
}

pub use crate::io::image::unit_to_byte;

impl ImageDataset {
    /// A dataset from its parts; checks that the counts and labels agree.
    pub fn new(images: Array4<f32>, labels: Vec<usize>, class_names: Vec<String>) -> Result<Self> {
        if images.len_of(Axis(0)) != labels.len() {
            return Err(Error::new(
                format!(
                    "{} images but {} labels",
                    images.len_of(Axis(0)),
                    labels.len()
                ),
                "give exactly one label per image",
            ));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l >= class_names.len()) {
            return Err(Error::new(
                format!("label {bad} but only {} classes", class_names.len()),
                "give one class name per label value",
            ));
        }
        Ok(ImageDataset {
            images,
            labels,
            class_names,
        })
    }

    /// Number of images `N`.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Channels `C` (1 grey, 3 RGB).
    pub fn channels(&self) -> usize {
        self.images.shape()[1]
    }

    /// Height `H`.
    pub fn height(&self) -> usize {
        self.images.shape()[2]
    }

    /// Width `W`.
    pub fn width(&self) -> usize {
        self.images.shape()[3]
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Image `i`, `(C, H, W)`.
    pub fn image(&self, i: usize) -> ArrayView3<'_, f32> {
        self.images.index_axis(Axis(0), i)
    }

    /// How many images each class has.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &l in &self.labels {
            counts[l] += 1;
        }
        counts
    }

    /// The images at `indices`, in that order, `(B, C, H, W)`, with their labels.
    pub fn gather(&self, indices: &[usize]) -> (Array4<f32>, Vec<usize>) {
        let images = self.images.select(Axis(0), indices);
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        (images, labels)
    }

    /// The first `n` images (or all, if fewer), e.g. for a preview grid.
    pub fn take(&self, n: usize) -> ImageDataset {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        let (images, labels) = self.gather(&idx);
        ImageDataset {
            images,
            labels,
            class_names: self.class_names.clone(),
        }
    }

    /// Pads every image with the background value `−1` (black) on all sides to `size × size`,
    /// centred; e.g. MNIST's 28×28 to 32×32 as LeNet-5 did. Images already that size are kept.
    pub fn pad_to(&self, size: usize) -> Result<ImageDataset> {
        let (n, c, h, w) = self.images.dim();
        if h > size || w > size {
            return Err(Error::new(
                format!("cannot pad {h}×{w} images to {size}×{size}"),
                "choose a size at least as large as the images",
            ));
        }
        let (top, left) = ((size - h) / 2, (size - w) / 2);
        let mut out = Array4::from_elem((n, c, size, size), -1.0f32);
        out.slice_mut(ndarray::s![.., .., top..top + h, left..left + w])
            .assign(&self.images);
        Ok(ImageDataset {
            images: out,
            labels: self.labels.clone(),
            class_names: self.class_names.clone(),
        })
    }
}
