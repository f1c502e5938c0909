//! 2×2 average pooling with stride 2, `(B, C, H, W) → (B, C, ⌊H/2⌋, ⌊W/2⌋)`: the stride-2
//! downsample of the U-Net (PyTorch's `nn.AvgPool2d(2)`).
//!
//! Each output is the mean of one 2×2 block. An odd height or width is handled as PyTorch
//! does (floor mode): the last row / column has no block of its own, is ignored by the
//! forward pass and so gets zero gradient.
//!
//! Backward: each input pixel entered one mean with weight ¼, so it receives `dy / 4` of its
//! block's output.

use ndarray::Array4;
use rayon::prelude::*;

/// 2×2 average pooling with stride 2 (no parameters).
#[derive(Clone, Copy, Debug, Default)]
pub struct AvgPool2x;

impl AvgPool2x {
    // ANCHOR: forward
    /// `y[i, j] = ¼ Σ_{a,b ∈ {0,1}} x[2i + a, 2j + b]`   (B, C, H, W) → (B, C, ⌊H/2⌋, ⌊W/2⌋)
    pub fn forward(&self, x: &Array4<f32>) -> Array4<f32> {
        let (b, c, h, w) = x.dim();
        let (oh, ow) = (h / 2, w / 2);
        let x = x.as_standard_layout();
        let xs = x.as_slice().unwrap();
        let mut y = Array4::zeros((b, c, oh, ow));
        if y.is_empty() {
            return y;
        }
        y.as_slice_mut()
            .unwrap()
            .par_chunks_mut(oh * ow)
            .zip(xs.par_chunks(h * w))
            .for_each(|(yp, xp)| {
                for (i, yrow) in yp.chunks_exact_mut(ow).enumerate() {
                    let top = &xp[2 * i * w..][..w];
                    let bottom = &xp[(2 * i + 1) * w..][..w];
                    for (j, v) in yrow.iter_mut().enumerate() {
                        let s = top[2 * j] + top[2 * j + 1] + bottom[2 * j] + bottom[2 * j + 1];
                        *v = 0.25 * s;
                    }
                }
            });
        y
    }
    // ANCHOR_END: forward

    // ANCHOR: backward
    /// `dx[2i + a, 2j + b] = ¼ dy[i, j]`; a leftover odd row / column gets 0.
    /// `x_shape` is the input's shape `(B, C, H, W)` (needed to know whether H, W were odd).
    pub fn backward(&self, x_shape: [usize; 4], dy: &Array4<f32>) -> Array4<f32> {
        let [b, c, h, w] = x_shape;
        let (oh, ow) = (h / 2, w / 2);
        assert_eq!(
            dy.shape(),
            &[b, c, oh, ow],
            "AvgPool2x backward: dy has the wrong shape for input {x_shape:?}"
        );
        let dy = dy.as_standard_layout();
        let dys = dy.as_slice().unwrap();
        let mut dx = Array4::zeros((b, c, h, w));
        if dy.is_empty() {
            return dx;
        }
        dx.as_slice_mut()
            .unwrap()
            .par_chunks_mut(h * w)
            .zip(dys.par_chunks(oh * ow))
            .for_each(|(xp, yp)| {
                for (i, yrow) in yp.chunks_exact(ow).enumerate() {
                    let (top, bottom) = xp[2 * i * w..][..2 * w].split_at_mut(w);
                    for (j, &g) in yrow.iter().enumerate() {
                        let q = 0.25 * g;
                        top[2 * j] = q;
                        top[2 * j + 1] = q;
                        bottom[2 * j] = q;
                        bottom[2 * j + 1] = q;
                    }
                }
            });
        dx
    }
    // ANCHOR_END: backward
}

impl crate::param::Parameters for AvgPool2x {
    /// No parameters.
    fn visit(&mut self, _prefix: &str, _f: &mut dyn FnMut(&str, &mut crate::param::Param)) {}
}
