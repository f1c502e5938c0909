//! 2-D convolution (PyTorch's `nn.Conv2d` with square kernels, zero padding, no groups or
//! dilation), lowered to matrix products with [`im2col`](super::im2col).
//!
//! Per image, `cols = im2col(x)` is `(C·k·k, OH·OW)` and the output is `Y = W · cols + b`
//! with `W` seen as `(O, C·k·k)`. The backward pass is three more products:
//! `dW += dY · colsᵀ`, `db += Σ dY` and `dx = col2im(Wᵀ · dY)`.
//!
//! Parallelism: the batch is cut into as many contiguous groups of images as rayon has
//! threads; each group runs serially on one thread with its own scratch buffer, writes only
//! its own images of `y`/`dx`, and (in backward) returns its own partial `dW`, `db`, which are
//! then added in group order. With fewer images than threads, the images run one after
//! another and each GEMM is split over the threads instead. Either way no two threads write
//! the same memory and the result is bit-identical for a given thread count.

use super::im2col::{col2im, im2col, ConvGeom};
use crate::param::{join, Param, Parameters};
use crate::tensor::{gemm, gemm_serial, init, Rng};
use ndarray::{Array4, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

/// `y = conv(x, W) + b`   x: (B, C, H, W)  W: (O, C, k, k)  b: (O)  y: (B, O, OH, OW)
#[derive(Clone, Debug)]
pub struct Conv2d {
    pub weight: Param,       // (O, C, k, k)
    pub bias: Option<Param>, // (O)
    pub stride: usize,
    pub padding: usize,
}

/// What backward needs from forward: the input (the columns are rebuilt, which costs far
/// less than the GEMMs and saves `k²` times the input's memory).
pub struct Conv2dCache {
    x: Array4<f32>, // (B, C, H, W)
}

impl Conv2d {
    /// PyTorch's default initialisation: `W, b ~ U(−1/√(C·k·k), 1/√(C·k·k))`.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        bias: bool,
        rng: &mut Rng,
    ) -> Self {
        let fan_in = c_in * kernel * kernel;
        let weight = Param::new(init::torch_default(
            &[c_out, c_in, kernel, kernel],
            fan_in,
            rng,
        ));
        let bias = bias.then(|| Param::new(init::torch_default(&[c_out], fan_in, rng)));
        Conv2d {
            weight,
            bias,
            stride,
            padding,
        }
    }

    /// Input channels.
    pub fn c_in(&self) -> usize {
        self.weight.shape()[1]
    }

    /// Output channels.
    pub fn c_out(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Kernel size.
    pub fn kernel(&self) -> usize {
        self.weight.shape()[2]
    }

    /// The geometry for an input of shape `(B, C, H, W)`.
    fn geom(&self, shape: &[usize]) -> ConvGeom {
        assert_eq!(shape.len(), 4, "Conv2d expects (B, C, H, W)");
        assert_eq!(
            shape[1],
            self.c_in(),
            "Conv2d expects {} input channels, got shape {shape:?}",
            self.c_in()
        );
        let k = self.kernel();
        ConvGeom::new(shape[1], shape[2], shape[3], k, self.stride, self.padding)
    }

    // ANCHOR: forward
    /// The convolution, keeping `x` for the backward pass.
    pub fn forward(&self, x: &Array4<f32>) -> (Array4<f32>, Conv2dCache) {
        let y = self.forward_infer(x);
        let x = x.as_standard_layout().into_owned();
        (y, Conv2dCache { x })
    }

    /// The convolution without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array4<f32>) -> Array4<f32> {
        let g = self.geom(x.shape());
        let (b, o, l) = (x.shape()[0], self.c_out(), g.cols());
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        let w = self.weight.v_rows(o); // (O, C·k·k)
        let bias = self.bias.as_ref().map(|p| p.v1());
        let mut y = Array4::zeros((b, o, g.oh, g.ow));
        let img = g.c * g.h * g.w;
        let (group, split_gemm) = batch_groups(b);
        let ys = y.as_slice_mut().expect("fresh array");
        ys.par_chunks_mut(group * o * l)
            .enumerate()
            .for_each(|(gi, y_group)| {
                let mut cols = scratch(&g);
                for (j, yb) in y_group.chunks_exact_mut(o * l).enumerate() {
                    let xb = &xs[(gi * group + j) * img..][..img];
                    let mut yb = ArrayViewMut2::from_shape((o, l), yb).unwrap(); // (O, OH·OW)
                    if let Some(bias) = &bias {
                        // $Y = b \mathbf{1}^\top$, then the product adds onto it
                        for (mut row, &bo) in yb.rows_mut().into_iter().zip(bias) {
                            row.fill(bo);
                        }
                    }
                    let beta = if bias.is_some() { 1.0 } else { 0.0 };
                    // $Y \mathrel{+}= W \cdot \mathrm{im2col}(x)$   (O, OH·OW)
                    let cb = columns(&g, xb, &mut cols);
                    product(split_gemm, 1.0, w, cb, beta, yb);
                }
            });
        y
    }
    // ANCHOR_END: forward

    // ANCHOR: backward
    /// Given `dy = ∂L/∂y` `(B, O, OH, OW)`, adds `∂L/∂W` and `∂L/∂b` into the gradients and
    /// returns `dx = ∂L/∂x` `(B, C, H, W)`.
    pub fn backward(&mut self, cache: &Conv2dCache, dy: &Array4<f32>) -> Array4<f32> {
        let x = &cache.x;
        let g = self.geom(x.shape());
        let (b, o, l) = (x.shape()[0], self.c_out(), g.cols());
        assert_eq!(
            dy.shape(),
            &[b, o, g.oh, g.ow],
            "Conv2d backward: dy has the wrong shape"
        );
        let dy = dy.as_standard_layout();
        let (xs, dys) = (x.as_slice().unwrap(), dy.as_slice().unwrap());
        let w = self.weight.v_rows(o); // (O, C·k·k)
        let (img, kk) = (g.c * g.h * g.w, g.rows());
        let mut dx = Array4::zeros(x.raw_dim());
        let (group, split_gemm) = batch_groups(b);
        // Each group of images returns its own partial (dW, db); they are summed in order.
        let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
            .as_slice_mut()
            .unwrap()
            .par_chunks_mut(group * img)
            .enumerate()
            .map(|(gi, dx_group)| {
                let mut cols = scratch(&g);
                let mut dcols = if g.is_pointwise() {
                    vec![]
                } else {
                    scratch(&g)
                };
                let mut dw = vec![0.0f32; o * kk];
                let mut db = vec![0.0f32; o];
                for (j, dxb) in dx_group.chunks_exact_mut(img).enumerate() {
                    let n = gi * group + j;
                    let xb = &xs[n * img..][..img];
                    let dyb = ArrayView2::from_shape((o, l), &dys[n * o * l..][..o * l]).unwrap();
                    // $dW \mathrel{+}= dY \cdot \mathrm{cols}^\top$   (O, C·k·k)
                    let cb = columns(&g, xb, &mut cols);
                    let dwv = ArrayViewMut2::from_shape((o, kk), &mut dw[..]).unwrap();
                    product(split_gemm, 1.0, dyb, cb.t(), 1.0, dwv);
                    // $db \mathrel{+}= \sum_{\text{positions}} dY$   (O)
                    for (d, row) in db.iter_mut().zip(dyb.rows()) {
                        *d += row.sum();
                    }
                    // $dx = \mathrm{col2im}(W^\top dY)$   (C, H, W)
                    if g.is_pointwise() {
                        let dxv = ArrayViewMut2::from_shape((kk, l), dxb).unwrap();
                        product(split_gemm, 1.0, w.t(), dyb, 0.0, dxv);
                    } else {
                        let dcv = ArrayViewMut2::from_shape((kk, l), &mut dcols[..]).unwrap();
                        product(split_gemm, 1.0, w.t(), dyb, 0.0, dcv);
                        col2im(&g, &dcols, dxb);
                    }
                }
                (dw, db)
            })
            .collect();
        add_partials(&mut self.weight, self.bias.as_mut(), &partials);
        dx
    }
    // ANCHOR_END: backward
}

impl Parameters for Conv2d {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        f(&join(prefix, "weight"), &mut self.weight);
        if let Some(b) = &mut self.bias {
            f(&join(prefix, "bias"), b);
        }
    }
}

/// How many images each parallel group takes, and whether each GEMM should itself be split
/// over threads (when there are fewer images than threads, so there is a single group).
fn batch_groups(b: usize) -> (usize, bool) {
    let threads = rayon::current_num_threads();
    if threads > 1 && b >= threads {
        (b.div_ceil(threads), false)
    } else {
        (b.max(1), true)
    }
}

/// A column buffer for one image (empty for a pointwise conv, which needs none).
fn scratch(g: &ConvGeom) -> Vec<f32> {
    if g.is_pointwise() {
        Vec::new()
    } else {
        vec![0.0; g.rows() * g.cols()]
    }
}

/// The `(C·k·k, OH·OW)` column matrix of one image: the image itself for a 1×1 stride-1
/// unpadded conv, otherwise `im2col` written into `buf`.
fn columns<'a>(g: &ConvGeom, xb: &'a [f32], buf: &'a mut [f32]) -> ArrayView2<'a, f32> {
    let data: &'a [f32] = if g.is_pointwise() {
        xb
    } else {
        im2col(g, xb, buf);
        buf
    };
    ArrayView2::from_shape((g.rows(), g.cols()), data).unwrap()
}

/// `C ← α·A·B + β·C`, split over threads or on the calling thread (shared with `Conv3d`).
pub(crate) fn product(
    split: bool,
    alpha: f32,
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    beta: f32,
    c: ArrayViewMut2<f32>,
) {
    if split {
        gemm(alpha, a, b, beta, c)
    } else {
        gemm_serial(alpha, a, b, beta, c)
    }
}

/// Adds each parallel group's partial `(dW, db)` (`dW` as `(O, K)` rows) into the weight's
/// and bias's gradients, in group order, so the sum does not depend on which thread finished
/// first (shared with `Conv3d`).
pub(crate) fn add_partials(
    weight: &mut Param,
    bias: Option<&mut Param>,
    partials: &[(Vec<f32>, Vec<f32>)],
) {
    let o = weight.value.shape()[0];
    let kk = weight.value.len() / o;
    for (dw, _) in partials {
        let mut gw = weight.g_rows(o);
        gw += &ArrayView2::from_shape((o, kk), &dw[..]).unwrap();
    }
    if let Some(bias) = bias {
        let mut gb = bias.g1();
        for (_, db) in partials {
            gb.iter_mut().zip(db).for_each(|(a, d)| *a += d);
        }
    }
}
