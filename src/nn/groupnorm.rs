//! Group normalisation (Wu & He 2018, <https://arxiv.org/abs/1803.08494>), as PyTorch's
//! `nn.GroupNorm`: the channels of `(B, C, …spatial)` are split into `G` groups, and each
//! (batch, group) slice — `C/G` channels × every spatial position — is normalised to zero mean
//! and unit variance, then scaled and shifted per *channel*: $y = \gamma_c \hat x + \beta_c$.
//!
//! The U-Net and the VAE use it (32 groups, `eps = 1e-6` in latent-diffusion). Because one
//! (batch, group) slice is contiguous in row-major order, it is exactly a LayerNorm "row", and
//! the same per-row kernels do the work.

use super::layernorm::{normalise_row, normalise_row_backward, PAR_GRAIN};
use crate::param::{join, Param, Parameters};
use ndarray::{Array, Array1, Array2, ArrayD, Axis, Dimension, IxDyn};
use rayon::prelude::*;

/// `GroupNorm(groups, channels, eps)` with per-channel `weight` (γ) and `bias` (β).
#[derive(Clone, Debug)]
pub struct GroupNorm {
    pub weight: Param, // γ (C)
    pub bias: Param,   // β (C)
    pub groups: usize,
    pub eps: f32,
}

/// What backward needs: the normalised slices and each slice's $1/\sqrt{\sigma^2+\epsilon}$.
pub struct GroupNormCache {
    xhat: Array2<f32>, // (B·G, C/G·S)
    rstd: Array1<f32>, // (B·G)
    batch: usize,
    spatial: usize, // S = product of the spatial axes
}

impl GroupNorm {
    /// `channels` must be divisible by `groups`; `weight = 1`, `bias = 0` as PyTorch.
    pub fn new(groups: usize, channels: usize, eps: f32) -> Self {
        assert!(
            groups > 0 && channels % groups == 0,
            "GroupNorm: {channels} channels cannot be split into {groups} groups"
        );
        GroupNorm {
            weight: Param::new(ArrayD::ones(IxDyn(&[channels]))),
            bias: Param::zeros(&[channels]),
            groups,
            eps,
        }
    }

    /// Number of channels `C`.
    pub fn channels(&self) -> usize {
        self.weight.len()
    }

    /// `(B, S)` for an input `(B, C, …spatial)`, checking rank and channel count.
    fn dims(&self, shape: &[usize]) -> (usize, usize) {
        assert!(
            shape.len() >= 2 && shape[1] == self.channels(),
            "GroupNorm expects (B, {}, …), got {shape:?}",
            self.channels()
        );
        (shape[0], shape[2..].iter().product())
    }

    // ANCHOR: forward
    /// Normalises every (batch, group) slice of `x` (B, C, …), keeping $\hat x$ and $1/\sigma$.
    pub fn forward<D: Dimension>(&self, x: &Array<f32, D>) -> (Array<f32, D>, GroupNormCache) {
        let (batch, spatial) = self.dims(x.shape());
        let (xhat, rstd) = self.normalise(x, batch, spatial);
        let y = self.affine(xhat.clone(), spatial);
        let y = y.into_shape_with_order(x.raw_dim()).expect("same size");
        let cache = GroupNormCache {
            xhat,
            rstd,
            batch,
            spatial,
        };
        (y, cache)
    }

    /// The same output without keeping anything.
    pub fn forward_infer<D: Dimension>(&self, x: &Array<f32, D>) -> Array<f32, D> {
        let (batch, spatial) = self.dims(x.shape());
        let (xhat, _) = self.normalise(x, batch, spatial);
        let y = self.affine(xhat, spatial);
        y.into_shape_with_order(x.raw_dim()).expect("same size")
    }

    /// $\hat x$ as (B·G, C/G·S) rows and their $1/\sigma$, parallel over (batch, group).
    fn normalise<D: Dimension>(
        &self,
        x: &Array<f32, D>,
        batch: usize,
        spatial: usize,
    ) -> (Array2<f32>, Array1<f32>) {
        let x = x.as_standard_layout();
        let n_rows = batch * self.groups;
        let len = (self.channels() / self.groups * spatial).max(1);
        let mut xhat = Array2::zeros((n_rows, len));
        let mut rstd = Array1::zeros(n_rows);
        xhat.as_slice_mut()
            .unwrap()
            .par_chunks_mut(len)
            .zip(x.as_slice().unwrap().par_chunks(len))
            .zip(rstd.as_slice_mut().unwrap().par_iter_mut())
            .with_min_len(PAR_GRAIN / len + 1)
            .for_each(|((h, xr), r)| *r = normalise_row(xr, self.eps, h));
        (xhat, rstd)
    }

    /// $y = \gamma_c \hat x + \beta_c$ in place, one channel (S contiguous values) at a time.
    fn affine(&self, mut xhat: Array2<f32>, spatial: usize) -> Array2<f32> {
        let (w, b) = (self.weight.v1(), self.bias.v1());
        let c = self.channels();
        xhat.as_slice_mut()
            .unwrap()
            .par_chunks_mut(spatial.max(1))
            .enumerate()
            .with_min_len(PAR_GRAIN / spatial.max(1) + 1)
            .for_each(|(i, ch)| {
                let (g, s) = (w[i % c], b[i % c]);
                ch.iter_mut().for_each(|v| *v = *v * g + s);
            });
        xhat
    }
    // ANCHOR_END: forward

    // ANCHOR: backward
    /// Given `dy`, adds $\partial L/\partial\gamma_c = \sum_{b,s} dy\,\hat x$ and
    /// $\partial L/\partial\beta_c = \sum_{b,s} dy$, and returns `dx` through the per-slice
    /// normalisation with $g = dy\,\gamma_c$.
    pub fn backward<D: Dimension>(
        &mut self,
        cache: &GroupNormCache,
        dy: &Array<f32, D>,
    ) -> Array<f32, D> {
        assert_eq!(dy.len(), cache.xhat.len(), "dy does not match forward");
        let dy_std = dy.as_standard_layout();
        let dys = dy_std.as_slice().unwrap();
        let (c, s) = (self.channels(), cache.spatial.max(1));
        let cg = c / self.groups; // channels per group
        let len = cache.xhat.ncols();
        let w = self.weight.v1();
        let mut dx = Array::zeros(dy.raw_dim());
        // Per-(batch, channel) partial sums for γ and β, written by the slice that owns them.
        let mut dw_part = Array2::<f32>::zeros((cache.batch, c)); // (B, C)
        let mut db_part = Array2::<f32>::zeros((cache.batch, c)); // (B, C)
        dx.as_slice_mut()
            .unwrap()
            .par_chunks_mut(len)
            .zip(dys.par_chunks(len))
            .zip(cache.xhat.as_slice().unwrap().par_chunks(len))
            .zip(cache.rstd.as_slice().unwrap().par_iter())
            .zip(dw_part.as_slice_mut().unwrap().par_chunks_mut(cg))
            .zip(db_part.as_slice_mut().unwrap().par_chunks_mut(cg))
            .enumerate()
            .with_min_len(PAR_GRAIN / len + 1)
            .for_each(|(row, (((((d, dyr), h), &r), dwp), dbp))| {
                let first = (row % self.groups) * cg; // first channel of this group
                let mut g = vec![0.0f32; len];
                for j in 0..cg {
                    let span = j * s..(j + 1) * s;
                    let (dyc, hc) = (&dyr[span.clone()], &h[span.clone()]);
                    dwp[j] = dyc.iter().zip(hc).map(|(&a, &b)| a * b).sum();
                    dbp[j] = dyc.iter().sum();
                    // $g = dy\,\gamma_c$
                    let gamma = w[first + j];
                    for (gi, &dv) in g[span].iter_mut().zip(dyc) {
                        *gi = dv * gamma;
                    }
                }
                normalise_row_backward(&g, h, r, d);
            });
        self.weight.g1().scaled_add(1.0, &dw_part.sum_axis(Axis(0)));
        self.bias.g1().scaled_add(1.0, &db_part.sum_axis(Axis(0)));
        dx
    }
    // ANCHOR_END: backward
}

impl Parameters for GroupNorm {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        f(&join(prefix, "weight"), &mut self.weight);
        f(&join(prefix, "bias"), &mut self.bias);
    }
}
