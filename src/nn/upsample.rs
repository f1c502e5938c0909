//! Nearest-neighbour ×2 upsampling, `(B, C, H, W) → (B, C, 2H, 2W)`: every pixel becomes a
//! 2×2 block of copies (PyTorch's `F.interpolate(x, scale_factor=2, mode="nearest")`, the
//! U-Net and VAE decoder's `Upsample`, usually followed by a 3×3 conv).
//!
//! Backward: each input pixel fed four outputs, so its gradient is the sum of their four
//! gradients — the sum over each 2×2 block of `dy`.

use ndarray::Array4;
use rayon::prelude::*;

/// Nearest-neighbour ×2 upsampling (no parameters).
#[derive(Clone, Copy, Debug, Default)]
pub struct Upsample2x;

impl Upsample2x {
    // ANCHOR: forward
    /// `y[2i + a, 2j + b] = x[i, j]` for `a, b ∈ {0, 1}`   (B, C, H, W) → (B, C, 2H, 2W)
    pub fn forward(&self, x: &Array4<f32>) -> Array4<f32> {
        let (b, c, h, w) = x.dim();
        let x = x.as_standard_layout();
        let xs = x.as_slice().unwrap();
        let mut y = Array4::zeros((b, c, 2 * h, 2 * w));
        if y.is_empty() {
            return y;
        }
        y.as_slice_mut()
            .unwrap()
            .par_chunks_mut(4 * h * w)
            .zip(xs.par_chunks(h * w))
            .for_each(|(yp, xp)| {
                for (i, xrow) in xp.chunks_exact(w).enumerate() {
                    let (top, bottom) = yp[2 * i * 2 * w..][..4 * w].split_at_mut(2 * w);
                    for (j, &v) in xrow.iter().enumerate() {
                        top[2 * j] = v;
                        top[2 * j + 1] = v;
                    }
                    bottom.copy_from_slice(top);
                }
            });
        y
    }
    // ANCHOR_END: forward

    // ANCHOR: backward
    /// `dx[i, j] = Σ_{a,b ∈ {0,1}} dy[2i + a, 2j + b]`   (B, C, 2H, 2W) → (B, C, H, W)
    pub fn backward(&self, dy: &Array4<f32>) -> Array4<f32> {
        let (b, c, h2, w2) = dy.dim();
        assert!(
            h2 % 2 == 0 && w2 % 2 == 0,
            "Upsample2x backward: dy must have even height and width, got {:?}",
            dy.shape()
        );
        let (h, w) = (h2 / 2, w2 / 2);
        let dy = dy.as_standard_layout();
        let dys = dy.as_slice().unwrap();
        let mut dx = Array4::zeros((b, c, h, w));
        if dx.is_empty() {
            return dx;
        }
        dx.as_slice_mut()
            .unwrap()
            .par_chunks_mut(h * w)
            .zip(dys.par_chunks(4 * h * w))
            .for_each(|(xp, yp)| {
                for (i, xrow) in xp.chunks_exact_mut(w).enumerate() {
                    let (top, bottom) = yp[2 * i * w2..][..2 * w2].split_at(w2);
                    for (j, d) in xrow.iter_mut().enumerate() {
                        *d = top[2 * j] + top[2 * j + 1] + bottom[2 * j] + bottom[2 * j + 1];
                    }
                }
            });
        dx
    }
    // ANCHOR_END: backward
}

impl crate::param::Parameters for Upsample2x {
    /// No parameters.
    fn visit(&mut self, _prefix: &str, _f: &mut dyn FnMut(&str, &mut crate::param::Param)) {}
}
