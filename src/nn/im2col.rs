//! The lowering that turns a convolution into one matrix product: `im2col` and its adjoint
//! `col2im`.
//!
//! For one image `x` of shape `(C, H, W)`, kernel `k`, stride `s` and zero padding `p`, the
//! output has `OH·OW` positions. `im2col` writes a matrix of shape `(C·k·k, OH·OW)` whose
//! row `(c, i, j)` holds, for every output position `(oy, ox)`, the input pixel the kernel tap
//! `(i, j)` of channel `c` sees there: `x[c, oy·s + i − p, ox·s + j − p]` (zero outside the
//! image). The convolution is then `Y = W · cols` with `W` seen as `(O, C·k·k)`.
//! `col2im` is the transpose of that linear map: it scatters each column entry back onto the
//! pixel it came from, **adding** where windows overlap — exactly the backward of `im2col`.
//!
//! Rows are contiguous (length `OH·OW`), so the GEMM reads them with unit stride, and for
//! stride 1 each output row of the window is one `copy_from_slice`.

/// The sizes of one convolution, shared by `im2col`, `col2im` and the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl ConvGeom {
    /// Output size `⌊(H + 2p − k) / s⌋ + 1` as in PyTorch; panics if the padded input is
    /// smaller than the kernel (no output).
    pub fn new(c: usize, h: usize, w: usize, k: usize, stride: usize, pad: usize) -> Self {
        assert!(
            k >= 1 && stride >= 1,
            "conv: kernel and stride must be at least 1"
        );
        assert!(
            h + 2 * pad >= k && w + 2 * pad >= k,
            "conv: input {h}×{w} with padding {pad} is smaller than the {k}×{k} kernel"
        );
        let oh = (h + 2 * pad - k) / stride + 1;
        let ow = (w + 2 * pad - k) / stride + 1;
        ConvGeom {
            c,
            h,
            w,
            k,
            stride,
            pad,
            oh,
            ow,
        }
    }

    /// Rows of the column matrix: `C·k·k`.
    pub fn rows(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Columns of the column matrix (output positions): `OH·OW`.
    pub fn cols(&self) -> usize {
        self.oh * self.ow
    }

    /// True when the lowering is the identity (1×1, stride 1, no padding): the image itself,
    /// seen as `(C, H·W)`, already is the column matrix.
    pub fn is_pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == 0
    }

    /// The output positions `lo..hi` along one axis of length `n` (input) / `on` (output)
    /// at which kernel tap `t` lands inside the image; positions outside are padding.
    fn valid(&self, t: usize, n: usize, on: usize) -> (usize, usize) {
        let (s, p) = (self.stride, self.pad);
        // need 0 ≤ o·s + t − p < n
        let lo = if p > t { (p - t).div_ceil(s) } else { 0 };
        let hi = if n + p > t {
            (n + p - t).div_ceil(s)
        } else {
            0
        };
        (lo.min(on), hi.min(on).max(lo.min(on)))
    }
}

// ANCHOR: im2col
/// Writes the `(C·k·k, OH·OW)` column matrix of one image `x` `(C, H, W)` into `cols`.
pub fn im2col(g: &ConvGeom, x: &[f32], cols: &mut [f32]) {
    let (k, s, l) = (g.k, g.stride, g.cols());
    debug_assert_eq!(x.len(), g.c * g.h * g.w);
    debug_assert_eq!(cols.len(), g.rows() * l);
    for (row, out) in cols.chunks_exact_mut(l.max(1)).enumerate() {
        let (c, i, j) = (row / (k * k), (row / k) % k, row % k);
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        let (y_lo, y_hi) = g.valid(i, g.h, g.oh);
        let (x_lo, x_hi) = g.valid(j, g.w, g.ow);
        for (oy, line) in out.chunks_exact_mut(g.ow).enumerate() {
            if oy < y_lo || oy >= y_hi {
                line.fill(0.0);
                continue;
            }
            // input row iy = oy·s + i − p, input column ix = ox·s + j − p
            let src = &plane[(oy * s + i - g.pad) * g.w..][..g.w];
            line[..x_lo].fill(0.0);
            line[x_hi..].fill(0.0);
            if s == 1 {
                let start = x_lo + j - g.pad;
                line[x_lo..x_hi].copy_from_slice(&src[start..start + x_hi - x_lo]);
            } else {
                for (ox, v) in line[x_lo..x_hi].iter_mut().enumerate() {
                    *v = src[(ox + x_lo) * s + j - g.pad];
                }
            }
        }
    }
}
// ANCHOR_END: im2col

// ANCHOR: col2im
/// The adjoint of [`im2col`]: adds every entry of `cols` `(C·k·k, OH·OW)` onto the pixel of
/// `dx` `(C, H, W)` it was copied from. `dx` must be zeroed by the caller (or hold a sum).
pub fn col2im(g: &ConvGeom, cols: &[f32], dx: &mut [f32]) {
    let (k, s, l) = (g.k, g.stride, g.cols());
    debug_assert_eq!(dx.len(), g.c * g.h * g.w);
    debug_assert_eq!(cols.len(), g.rows() * l);
    for (row, src) in cols.chunks_exact(l.max(1)).enumerate() {
        let (c, i, j) = (row / (k * k), (row / k) % k, row % k);
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        let (y_lo, y_hi) = g.valid(i, g.h, g.oh);
        let (x_lo, x_hi) = g.valid(j, g.w, g.ow);
        for oy in y_lo..y_hi {
            let line = &src[oy * g.ow..][x_lo..x_hi];
            let dst = &mut plane[(oy * s + i - g.pad) * g.w..][..g.w];
            if s == 1 {
                let start = x_lo + j - g.pad;
                for (d, v) in dst[start..start + line.len()].iter_mut().zip(line) {
                    *d += v;
                }
            } else {
                for (ox, v) in line.iter().enumerate() {
                    dst[(ox + x_lo) * s + j - g.pad] += v;
                }
            }
        }
    }
}
// ANCHOR_END: col2im

#[cfg(test)]
mod tests {
    use super::*;

    /// `<im2col(x), c> = <x, col2im(c)>` for random-ish x and c: col2im is the adjoint.
    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        for &(c, h, w, k, s, p) in &[
            (2, 5, 4, 3, 1, 1),
            (1, 7, 6, 3, 2, 2),
            (3, 3, 3, 1, 2, 0),
            (1, 1, 1, 3, 1, 1),
            (2, 6, 5, 2, 2, 0),
        ] {
            let g = ConvGeom::new(c, h, w, k, s, p);
            let x: Vec<f32> = (0..c * h * w)
                .map(|i| ((i * 7) % 11) as f32 - 5.0)
                .collect();
            let cv: Vec<f32> = (0..g.rows() * g.cols())
                .map(|i| ((i * 5) % 13) as f32 - 6.0)
                .collect();
            let mut cols = vec![f32::NAN; cv.len()];
            im2col(&g, &x, &mut cols);
            let mut dx = vec![0.0; x.len()];
            col2im(&g, &cv, &mut dx);
            let lhs: f32 = cols.iter().zip(&cv).map(|(a, b)| a * b).sum();
            let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
            assert_eq!(lhs, rhs, "{g:?}");
        }
    }
}
