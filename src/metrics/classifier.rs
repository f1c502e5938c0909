//! The evaluation classifier: a small CNN that recognises the dataset's classes from 32×32
//! pixels in `[−1, 1]`, and whose penultimate activations serve as the features of the
//! Fréchet distance ([`super::frechet`]).
//!
//! ```text
//! x (B, C, 32, 32)
//! → conv1 3×3 C→16 → SiLU → avgpool 2×2   (B, 16, 16, 16)
//! → conv2 3×3 16→32 → SiLU → avgpool 2×2  (B, 32, 8, 8)
//! → conv3 3×3 32→64 → SiLU → avgpool 2×2  (B, 64, 4, 4)
//! → flatten → fc 1024→64 → SiLU            (B, 64)   the features
//! → head 64→classes                        (B, K)    the logits
//! ```
//!
//! The flatten keeps *where* each 4×4 cell's features are (LeNet-style). With a global mean
//! in its place the net learned far slower (42 % held-out accuracy after 200 steps, against
//! 99 % with the flatten), as it had to encode a digit's layout in features that each see
//! only 18 pixels. The widths are small because the classifier must train in seconds on two
//! cores: 300 steps of 64 digits reach about 99 %
//! held-out accuracy (`examples/classifier.rs`).
//!
//! This is the role the Inception-v3 network plays in FID (Heusel et al. 2017,
//! <https://arxiv.org/abs/1706.08500>): a network trained to tell the real classes apart, whose
//! features are sensitive to what makes a digit a digit. Ours is trained on the dataset itself,
//! in seconds ([`super::train`]). Every layer is one of `crate::nn`'s, and the backward pass
//! below runs them in reverse.

use crate::error::{Error, Result};
use crate::io::metadata::{list_text, MetaReader};
use crate::nn::{ActivationCache, AvgPool2x, Conv2d, Conv2dCache, Linear, LinearCache, Silu};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{concatenate, Array2, Array4, ArrayView4, Axis, Ix2, Ix4};
use std::collections::BTreeMap;

/// The classifier's shape: everything needed to rebuild it from a checkpoint's metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifierConfig {
    /// Image channels: 1 (digits, MNIST) or 3 (shapes, folders).
    pub in_channels: usize,
    /// Number of classes `K`.
    pub num_classes: usize,
    /// Output channels of conv1, conv2, conv3.
    pub widths: [usize; 3],
    /// Width `F` of the feature layer.
    pub feature_dim: usize,
    /// Image side `S` (a multiple of 8): the flattened `(64, S/8, S/8)` map feeds `fc`.
    pub image_size: usize,
}

impl ClassifierConfig {
    /// The default widths (16, 32, 64) and 64 features, for `image_size²` images.
    pub fn new(in_channels: usize, num_classes: usize, image_size: usize) -> Self {
        ClassifierConfig {
            in_channels,
            num_classes,
            widths: [16, 32, 64],
            feature_dim: 64,
            image_size,
        }
    }

    /// Inputs of `fc`: the last conv's channels times `(S/8)²` positions.
    pub fn flat_dim(&self) -> usize {
        self.widths[2] * (self.image_size / 8).pow(2)
    }

    /// Checks that every size is non-zero and the image side a multiple of 8.
    pub fn validate(&self) -> Result<()> {
        if self.image_size == 0 || self.image_size % 8 != 0 {
            return Err(Error::new(
                format!(
                    "classifier image size {} is not a positive multiple of 8",
                    self.image_size
                ),
                "use 32×32 images (the classifier pools three times)",
            ));
        }
        if self.in_channels == 0
            || self.num_classes == 0
            || self.feature_dim == 0
            || self.widths.contains(&0)
        {
            return Err(Error::new(
                format!("classifier config {self:?} has a zero size"),
                "give at least one channel, class and feature",
            ));
        }
        Ok(())
    }

    /// The config as checkpoint metadata, keys `classifier.*`.
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        [
            ("classifier.in_channels", self.in_channels.to_string()),
            ("classifier.num_classes", self.num_classes.to_string()),
            ("classifier.widths", list_text(&self.widths)),
            ("classifier.feature_dim", self.feature_dim.to_string()),
            ("classifier.image_size", self.image_size.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Reads back what [`ClassifierConfig::to_metadata`] wrote.
    pub fn from_metadata(meta: &BTreeMap<String, String>) -> Result<Self> {
        let m = MetaReader::new(
            meta,
            "classifier",
            "load a checkpoint written by load_or_train_classifier",
        );
        let widths = m.list("classifier.widths")?;
        let widths: [usize; 3] = widths.as_slice().try_into().map_err(|_| {
            Error::new(
                format!("classifier metadata: widths {widths:?} is not three numbers"),
                "the checkpoint's metadata is damaged; delete it to retrain",
            )
        })?;
        Ok(ClassifierConfig {
            in_channels: m.usize("classifier.in_channels")?,
            num_classes: m.usize("classifier.num_classes")?,
            widths,
            feature_dim: m.usize("classifier.feature_dim")?,
            image_size: m.usize("classifier.image_size")?,
        })
    }
}

/// The CNN. Parameter names: `conv1.weight`, `conv1.bias`, …, `fc.weight`, `head.bias`.
#[derive(Clone, Debug)]
pub struct Classifier {
    pub config: ClassifierConfig,
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub conv3: Conv2d,
    pub fc: Linear,
    pub head: Linear,
    /// Accuracy on held-out real images measured after training (kept in the checkpoint).
    pub held_out_accuracy: Option<f64>,
}

/// What backward needs from forward.
pub struct ClassifierCache {
    conv1: Conv2dCache,
    act1: ActivationCache<Ix4>,
    pool1_in: [usize; 4],
    conv2: Conv2dCache,
    act2: ActivationCache<Ix4>,
    pool2_in: [usize; 4],
    conv3: Conv2dCache,
    act3: ActivationCache<Ix4>,
    pool3_in: [usize; 4],
    fc: LinearCache,
    act_fc: ActivationCache<Ix2>,
    head: LinearCache,
}

/// Images per chunk when computing features or predictions of a large set.
const CHUNK: usize = 256;

impl Classifier {
    /// A freshly initialised classifier (PyTorch's default initialisation for every layer).
    pub fn new(config: ClassifierConfig, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
        let [w1, w2, w3] = config.widths;
        Ok(Classifier {
            conv1: Conv2d::new(config.in_channels, w1, 3, 1, 1, true, rng),
            conv2: Conv2d::new(w1, w2, 3, 1, 1, true, rng),
            conv3: Conv2d::new(w2, w3, 3, 1, 1, true, rng),
            fc: Linear::new(config.flat_dim(), config.feature_dim, true, rng),
            head: Linear::new(config.feature_dim, config.num_classes, true, rng),
            config,
            held_out_accuracy: None,
        })
    }

    // ANCHOR: forward
    /// Logits `(B, K)` and the features `(B, F)`, keeping what backward needs.
    /// `x` is `(B, C, S, S)`.
    pub fn forward(&self, x: &Array4<f32>) -> (Array2<f32>, ClassifierCache) {
        let (h1, conv1) = self.conv1.forward(x); // (B, 32, H, W)
        let (a1, act1) = Silu.forward(&h1);
        let p1 = AvgPool2x.forward(&a1); // (B, 32, H/2, W/2)
        let (h2, conv2) = self.conv2.forward(&p1); // (B, 64, H/2, W/2)
        let (a2, act2) = Silu.forward(&h2);
        let p2 = AvgPool2x.forward(&a2); // (B, 64, H/4, W/4)
        let (h3, conv3) = self.conv3.forward(&p2);
        let (a3, act3) = Silu.forward(&h3);
        let g = flatten(&AvgPool2x.forward(&a3)); // (B, 64·S/8·S/8)
        let (f, fc) = self.fc.forward(&g);
        let (feat, act_fc) = Silu.forward(&f); // (B, F)
        let (logits, head) = self.head.forward(&feat); // (B, K)
        let cache = ClassifierCache {
            conv1,
            act1,
            pool1_in: shape4(&a1),
            conv2,
            act2,
            pool2_in: shape4(&a2),
            conv3,
            act3,
            pool3_in: shape4(&a3),
            fc,
            act_fc,
            head,
        };
        (logits, cache)
    }

    /// The features `(B, F)`: the activations the last Linear reads.
    fn features_chunk(&self, x: &Array4<f32>) -> Array2<f32> {
        let a1 = Silu.forward_infer(&self.conv1.forward_infer(x));
        let a2 = Silu.forward_infer(&self.conv2.forward_infer(&AvgPool2x.forward(&a1)));
        let a3 = Silu.forward_infer(&self.conv3.forward_infer(&AvgPool2x.forward(&a2)));
        let g = flatten(&AvgPool2x.forward(&a3));
        Silu.forward_infer(&self.fc.forward_infer(&g))
    }

    /// The logits `(B, K)` without keeping anything.
    pub fn forward_infer(&self, x: &Array4<f32>) -> Array2<f32> {
        self.head.forward_infer(&self.features_chunk(x))
    }
    // ANCHOR_END: forward

    // ANCHOR: backward
    /// Given `dlogits = ∂L/∂logits` `(B, K)`, adds every parameter's gradient and returns
    /// `dx = ∂L/∂x` `(B, C, H, W)`.
    pub fn backward(&mut self, cache: &ClassifierCache, dlogits: &Array2<f32>) -> Array4<f32> {
        let dfeat = self.head.backward(&cache.head, dlogits);
        let df = Silu.backward(&cache.act_fc, &dfeat);
        let dg = self.fc.backward(&cache.fc, &df); // (B, 64·S/8·S/8)
        let [b, c, h, w] = cache.pool3_in;
        let dp3 = dg
            .into_shape_with_order((b, c, h / 2, w / 2))
            .expect("fc input is the flattened pool"); // (B, 64, S/8, S/8)
        let da3 = AvgPool2x.backward(cache.pool3_in, &dp3);
        let dh3 = Silu.backward(&cache.act3, &da3);
        let dp2 = self.conv3.backward(&cache.conv3, &dh3);
        let da2 = AvgPool2x.backward(cache.pool2_in, &dp2);
        let dh2 = Silu.backward(&cache.act2, &da2);
        let dp1 = self.conv2.backward(&cache.conv2, &dh2);
        let da1 = AvgPool2x.backward(cache.pool1_in, &dp1);
        let dh1 = Silu.backward(&cache.act1, &da1);
        self.conv1.backward(&cache.conv1, &dh1)
    }
    // ANCHOR_END: backward

    /// Features `(N, F)` of any number of images `(N, C, H, W)`, computed in chunks.
    pub fn features(&self, x: ArrayView4<f32>) -> Array2<f32> {
        self.chunked(x, self.config.feature_dim, |c, x| c.features_chunk(x))
    }

    /// Logits `(N, K)` of any number of images, computed in chunks.
    pub fn logits(&self, x: ArrayView4<f32>) -> Array2<f32> {
        self.chunked(x, self.config.num_classes, |c, x| c.forward_infer(x))
    }

    /// The most likely class of each image (the first on ties).
    pub fn predict(&self, x: ArrayView4<f32>) -> Vec<usize> {
        argmax_rows(&self.logits(x))
    }

    fn chunked(
        &self,
        x: ArrayView4<f32>,
        width: usize,
        f: impl Fn(&Self, &Array4<f32>) -> Array2<f32>,
    ) -> Array2<f32> {
        if x.dim().0 == 0 {
            return Array2::zeros((0, width));
        }
        let parts: Vec<Array2<f32>> = x
            .axis_chunks_iter(Axis(0), CHUNK)
            .map(|c| f(self, &c.to_owned()))
            .collect();
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        concatenate(Axis(0), &views).expect("chunks share their width")
    }
}

impl Parameters for Classifier {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.conv1.visit(&join(prefix, "conv1"), f);
        self.conv2.visit(&join(prefix, "conv2"), f);
        self.conv3.visit(&join(prefix, "conv3"), f);
        self.fc.visit(&join(prefix, "fc"), f);
        self.head.visit(&join(prefix, "head"), f);
    }
}

/// Index of the largest value of each row (the first on ties).
pub fn argmax_rows(logits: &Array2<f32>) -> Vec<usize> {
    logits
        .rows()
        .into_iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv {
                        (i, v)
                    } else {
                        (bi, bv)
                    }
                })
                .0
        })
        .collect()
}

fn shape4(x: &Array4<f32>) -> [usize; 4] {
    let (b, c, h, w) = x.dim();
    [b, c, h, w]
}

/// `(B, C, h, w)` → `(B, C·h·w)` in PyTorch's `flatten(1)` order.
fn flatten(x: &Array4<f32>) -> Array2<f32> {
    let (b, c, h, w) = x.dim();
    x.as_standard_layout()
        .into_owned()
        .into_shape_with_order((b, c * h * w))
        .expect("standard layout")
}
