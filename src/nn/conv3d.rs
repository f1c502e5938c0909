//! 3-D convolution over video clips (PyTorch's `nn.Conv3d` without groups or dilation, any
//! kernel, stride and zero padding), with a causal mode: Open-Sora-Plan's `CausalConv3d`,
//! which pads only the past in time, by `kt − 1` copies of the first frame, so output frame
//! `t` sees input frames `≤ t` (for time stride 1). Lowered to matrix products with
//! [`vol2col`](super::vol2col), like [`Conv2d`](super::Conv2d) with `im2col`.
//!
//! Per clip and run of output frames, `cols = vol2col(x)` is `(C·kt·kh·kw, frames·OH·OW)`
//! and `Y = W · cols + b` with `W` seen as `(O, C·kt·kh·kw)`. The backward pass is three
//! more products per run: `dW += dY · colsᵀ`, `db += Σ dY` and `dx += col2vol(Wᵀ · dY)`.
//!
//! Parallelism: the batch is cut into at most [`MAX_GROUPS`] contiguous groups of clips, a
//! number that does not depend on the thread count; each group runs serially on one thread
//! with its own scratch buffers, writes only its own clips of `y`/`dx`, and (in backward)
//! returns its own partial `dW`, `db`, added in group order. With fewer groups than threads
//! each GEMM is split over the threads instead, which gives the same bits. So the result is
//! bit-identical for any thread count (unlike `Conv2d`, whose groups follow the threads).

use super::conv2d::{add_partials, product};
use super::vol2col::{col2vol, vol2col, ConvAxis, VolGeom};
use crate::param::{join, Param, Parameters};
use crate::tensor::{init, Rng};
use ndarray::{s, Array5, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

/// At most this many groups of clips run in parallel (each keeps a partial `dW`).
pub const MAX_GROUPS: usize = 8;

/// Runs of output frames are sized to about this many columns, so the column buffer stays
/// in cache when a clip is long.
const RUN_COLS: usize = 512;

/// How the time axis is padded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimePadding {
    /// `pt` zero frames before and after: $F_{out} = \lfloor (F + 2 p_t - k_t) / s_t \rfloor + 1$.
    Zeros(usize),
    /// `kt − 1` copies of the first frame before, nothing after:
    /// $F_{out} = \lfloor (F + k_t - 1 - k_t) / s_t \rfloor + 1 = \lfloor (F - 1) / s_t \rfloor + 1$.
    CausalReplicate,
}

/// Padding of a 3-D convolution: time as [`TimePadding`], height and width by zeros on both
/// sides: $OH = \lfloor (H + 2 p_h - k_h) / s_h \rfloor + 1$, the same for `OW`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Padding3d {
    pub time: TimePadding,
    pub h: usize,
    pub w: usize,
}

impl Padding3d {
    /// Zeros everywhere: `(pt, ph, pw)` as in PyTorch's `padding`.
    pub fn zeros(pt: usize, ph: usize, pw: usize) -> Self {
        Padding3d {
            time: TimePadding::Zeros(pt),
            h: ph,
            w: pw,
        }
    }

    /// Causal in time (the first frame repeated), zeros `(ph, pw)` in space.
    pub fn causal(ph: usize, pw: usize) -> Self {
        Padding3d {
            time: TimePadding::CausalReplicate,
            h: ph,
            w: pw,
        }
    }
}

/// `y = conv3d(x, W) + b`   x: (B, C, F, H, W)  W: (O, C, kt, kh, kw)  b: (O)
/// y: (B, O, OF, OH, OW)
#[derive(Clone, Debug)]
pub struct Conv3d {
    pub weight: Param,       // (O, C, kt, kh, kw)
    pub bias: Option<Param>, // (O)
    /// `(st, sh, sw)`.
    pub stride: [usize; 3],
    pub padding: Padding3d,
}

/// What backward needs from forward: the input (the columns are rebuilt, which costs far
/// less than the GEMMs and saves `kt·kh·kw` times the input's memory).
pub struct Conv3dCache {
    x: Array5<f32>, // (B, C, F, H, W)
}

impl Conv3d {
    /// PyTorch's default initialisation: `W, b ~ U(−1/√(C·kt·kh·kw), 1/√(C·kt·kh·kw))`.
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: [usize; 3],
        stride: [usize; 3],
        padding: Padding3d,
        bias: bool,
        rng: &mut Rng,
    ) -> Self {
        let [kt, kh, kw] = kernel;
        let fan_in = c_in * kt * kh * kw;
        let weight = Param::new(init::torch_default(&[c_out, c_in, kt, kh, kw], fan_in, rng));
        let bias = bias.then(|| Param::new(init::torch_default(&[c_out], fan_in, rng)));
        Conv3d {
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

    /// Kernel size `(kt, kh, kw)`.
    pub fn kernel(&self) -> [usize; 3] {
        let s = self.weight.shape();
        [s[2], s[3], s[4]]
    }

    /// The geometry for an input of shape `(B, C, F, H, W)`.
    pub fn geom(&self, shape: &[usize]) -> VolGeom {
        assert_eq!(shape.len(), 5, "Conv3d expects (B, C, F, H, W)");
        assert_eq!(
            shape[1],
            self.c_in(),
            "Conv3d expects {} input channels, got shape {shape:?}",
            self.c_in()
        );
        let ([kt, kh, kw], [st, sh, sw], p) = (self.kernel(), self.stride, self.padding);
        let (t, replicate_first) = match p.time {
            TimePadding::Zeros(pt) => (ConvAxis::new(shape[2], kt, st, pt, pt), false),
            TimePadding::CausalReplicate => (ConvAxis::new(shape[2], kt, st, kt - 1, 0), true),
        };
        VolGeom {
            c: shape[1],
            t,
            h: ConvAxis::new(shape[3], kh, sh, p.h, p.h),
            w: ConvAxis::new(shape[4], kw, sw, p.w, p.w),
            replicate_first,
        }
    }

    // ANCHOR: conv3d_forward
    /// The convolution, keeping `x` for the backward pass.
    pub fn forward(&self, x: &Array5<f32>) -> (Array5<f32>, Conv3dCache) {
        let y = self.forward_infer(x);
        let x = x.as_standard_layout().into_owned();
        (y, Conv3dCache { x })
    }

    /// The convolution without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array5<f32>) -> Array5<f32> {
        let g = self.geom(x.shape());
        let (b, o, l) = (x.shape()[0], self.c_out(), g.t.on * g.plane());
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        let w = self.weight.v_rows(o); // (O, C·kt·kh·kw)
        let bias = self.bias.as_ref().map(|p| p.v1());
        let mut y = Array5::zeros((b, o, g.t.on, g.h.on, g.w.on));
        let clip = g.c * g.t.n * g.h.n * g.w.n;
        let (group, split_gemm) = batch_groups(b);
        let ys = y.as_slice_mut().expect("fresh array");
        ys.par_chunks_mut(group * o * l)
            .enumerate()
            .for_each(|(gi, y_group)| {
                let mut cols = scratch(&g);
                for (j, yb) in y_group.chunks_exact_mut(o * l).enumerate() {
                    let xb = &xs[(gi * group + j) * clip..][..clip]; // (C, F, H, W)
                    let mut yb = ArrayViewMut2::from_shape((o, l), yb).unwrap(); // (O, OF·OH·OW)
                    if let Some(bias) = &bias {
                        // $Y = b \mathbf{1}^\top$, then the products add onto it
                        for (mut row, &bo) in yb.rows_mut().into_iter().zip(bias) {
                            row.fill(bo);
                        }
                    }
                    let beta = if bias.is_some() { 1.0 } else { 0.0 };
                    for run in runs(&g) {
                        // $Y_{run} \mathrel{+}= W \cdot \mathrm{vol2col}(x)_{run}$   (O, run·OH·OW)
                        let cb = columns(&g, xb, run, &mut cols);
                        let yr = yb.slice_mut(s![.., run.0 * g.plane()..run.1 * g.plane()]);
                        product(split_gemm, 1.0, w, cb, beta, yr);
                    }
                }
            });
        y
    }
    // ANCHOR_END: conv3d_forward

    // ANCHOR: conv3d_backward
    /// Given `dy = ∂L/∂y` `(B, O, OF, OH, OW)`, adds `∂L/∂W` and `∂L/∂b` into the gradients
    /// and returns `dx = ∂L/∂x` `(B, C, F, H, W)`.
    pub fn backward(&mut self, cache: &Conv3dCache, dy: &Array5<f32>) -> Array5<f32> {
        let x = &cache.x;
        let g = self.geom(x.shape());
        let (b, o, l) = (x.shape()[0], self.c_out(), g.t.on * g.plane());
        assert_eq!(
            dy.shape(),
            &[b, o, g.t.on, g.h.on, g.w.on],
            "Conv3d backward: dy has the wrong shape"
        );
        let dy = dy.as_standard_layout();
        let (xs, dys) = (x.as_slice().unwrap(), dy.as_slice().unwrap());
        let w = self.weight.v_rows(o); // (O, C·kt·kh·kw)
        let (clip, kk) = (g.c * g.t.n * g.h.n * g.w.n, g.rows());
        let mut dx = Array5::zeros(x.raw_dim());
        let (group, split_gemm) = batch_groups(b);
        // Each group of clips returns its own partial (dW, db); they are summed in order.
        let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
            .as_slice_mut()
            .unwrap()
            .par_chunks_mut(group * clip)
            .enumerate()
            .map(|(gi, dx_group)| {
                let mut cols = scratch(&g);
                let mut dcols = scratch(&g);
                let mut dw = vec![0.0f32; o * kk];
                let mut db = vec![0.0f32; o];
                for (j, dxb) in dx_group.chunks_exact_mut(clip).enumerate() {
                    let n = gi * group + j;
                    let xb = &xs[n * clip..][..clip]; // (C, F, H, W)
                    let dyb = ArrayView2::from_shape((o, l), &dys[n * o * l..][..o * l]).unwrap();
                    // $db \mathrel{+}= \sum_{\text{positions}} dY$   (O)
                    for (d, row) in db.iter_mut().zip(dyb.rows()) {
                        *d += row.sum();
                    }
                    for run in runs(&g) {
                        let dyr = dyb.slice(s![.., run.0 * g.plane()..run.1 * g.plane()]);
                        // $dW \mathrel{+}= dY_{run} \cdot \mathrm{cols}_{run}^\top$   (O, C·kt·kh·kw)
                        let cb = columns(&g, xb, run, &mut cols);
                        let dwv = ArrayViewMut2::from_shape((o, kk), &mut dw[..]).unwrap();
                        product(split_gemm, 1.0, dyr, cb.t(), 1.0, dwv);
                        // $dx \mathrel{+}= \mathrm{col2vol}(W^\top dY_{run})$   (C, F, H, W)
                        if g.is_pointwise() {
                            let dxv = ArrayViewMut2::from_shape((kk, l), &mut dxb[..]).unwrap();
                            product(split_gemm, 1.0, w.t(), dyr, 0.0, dxv);
                        } else {
                            let len = kk * dyr.ncols();
                            let dcv =
                                ArrayViewMut2::from_shape((kk, dyr.ncols()), &mut dcols[..len])
                                    .unwrap();
                            product(split_gemm, 1.0, w.t(), dyr, 0.0, dcv);
                            col2vol(&g, &dcols[..len], run, dxb);
                        }
                    }
                }
                (dw, db)
            })
            .collect();
        add_partials(&mut self.weight, self.bias.as_mut(), &partials);
        dx
    }
    // ANCHOR_END: conv3d_backward
}

impl Parameters for Conv3d {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        f(&join(prefix, "weight"), &mut self.weight);
        if let Some(b) = &mut self.bias {
            f(&join(prefix, "bias"), b);
        }
    }
}

/// How many clips each parallel group takes (at most [`MAX_GROUPS`] groups, whatever the
/// thread count), and whether each GEMM should itself be split over threads (when there are
/// fewer groups than threads).
fn batch_groups(b: usize) -> (usize, bool) {
    let group = b.div_ceil(MAX_GROUPS).max(1);
    let groups = b.div_ceil(group);
    (group, groups < rayon::current_num_threads())
}

/// The runs of output frames `(f0, f1)` the columns are built for: one run for a pointwise
/// conv, otherwise runs of about [`RUN_COLS`] columns.
fn runs(g: &VolGeom) -> impl Iterator<Item = (usize, usize)> {
    let of = g.t.on;
    let step = if g.is_pointwise() {
        of.max(1)
    } else {
        (RUN_COLS / g.plane().max(1)).clamp(1, of.max(1))
    };
    (0..of)
        .step_by(step)
        .map(move |f0| (f0, (f0 + step).min(of)))
}

/// A column buffer for the longest run (empty for a pointwise conv, which needs none).
fn scratch(g: &VolGeom) -> Vec<f32> {
    if g.is_pointwise() {
        return Vec::new();
    }
    let longest = runs(g).map(|(f0, f1)| f1 - f0).max().unwrap_or(0);
    vec![0.0; g.rows() * longest * g.plane()]
}

/// The `(C·kt·kh·kw, run·OH·OW)` columns of a run of output frames of one clip: the clip
/// itself for a 1×1×1 stride-1 unpadded conv, otherwise `vol2col` written into `buf`.
fn columns<'a>(
    g: &VolGeom,
    xb: &'a [f32],
    run: (usize, usize),
    buf: &'a mut [f32],
) -> ArrayView2<'a, f32> {
    let n = (run.1 - run.0) * g.plane();
    let data: &'a [f32] = if g.is_pointwise() {
        xb
    } else {
        let buf = &mut buf[..g.rows() * n];
        vol2col(g, xb, run, buf);
        buf
    };
    ArrayView2::from_shape((g.rows(), n), data).unwrap()
}
