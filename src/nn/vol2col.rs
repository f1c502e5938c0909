//! The lowering that turns a 3-D convolution into matrix products: `vol2col` and its adjoint
//! `col2vol`, the video versions of [`im2col`](super::im2col).
//!
//! For one clip `x` of shape `(C, F, H, W)` and kernel `(kt, kh, kw)`, the output has
//! `OF·OH·OW` positions. `vol2col` writes the columns of a run of output frames `f0..f1`: a
//! matrix of shape `(C·kt·kh·kw, (f1 − f0)·OH·OW)` whose row `(c, a, i, j)` holds, for every
//! output position `(of, oy, ox)`, the input value kernel tap `(a, i, j)` of channel `c` sees
//! there: `x[c, of·st + a − pt, oy·sh + i − ph, ox·sw + j − pw]`. Outside the clip in space
//! the value is zero. In time it is zero too, except in causal mode, where the frames before
//! the first are copies of the first (Open-Sora-Plan's `CausalConv3d`), so the index is
//! clamped to frame 0. Working on a run of output frames keeps the column buffer small when a
//! clip is long; the convolution is `Y[:, run] = W · cols` with `W` seen as `(O, C·kt·kh·kw)`.
//!
//! `col2vol` is the transpose of that linear map: it adds each column entry back onto the
//! input value it was copied from — where windows overlap, and, in causal mode, all the
//! copies of the first frame onto frame 0.

/// One axis of a convolution: input length `n`, kernel `k`, stride `s`, `front` padding
/// before the input, and the output length `on`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvAxis {
    pub n: usize,
    pub k: usize,
    pub s: usize,
    pub front: usize,
    pub on: usize,
}

impl ConvAxis {
    /// An axis padded by `front` before and `back` after:
    /// $o_n = \lfloor (n + \text{front} + \text{back} - k) / s \rfloor + 1$.
    /// Panics if the padded input is shorter than the kernel (no output).
    pub fn new(n: usize, k: usize, s: usize, front: usize, back: usize) -> Self {
        assert!(
            k >= 1 && s >= 1,
            "conv3d: kernel and stride must be at least 1"
        );
        assert!(
            n + front + back >= k,
            "conv3d: an axis of length {n} padded by {front}+{back} is shorter than the kernel {k}"
        );
        let on = (n + front + back - k) / s + 1;
        ConvAxis { n, k, s, front, on }
    }

    /// The outputs `lo..hi` at which tap `t` lands inside the input (`0 ≤ o·s + t − front < n`).
    fn valid(&self, t: usize) -> (usize, usize) {
        let (s, p) = (self.s, self.front);
        let lo = if p > t { (p - t).div_ceil(s) } else { 0 };
        let hi = if self.n + p > t {
            (self.n + p - t).div_ceil(s)
        } else {
            0
        };
        let lo = lo.min(self.on);
        (lo, hi.min(self.on).max(lo))
    }
}

/// The sizes of one 3-D convolution on one clip, shared by `vol2col`, `col2vol` and the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolGeom {
    pub c: usize,
    pub t: ConvAxis,
    pub h: ConvAxis,
    pub w: ConvAxis,
    /// Time padding before frame 0 repeats frame 0 (causal) instead of being zeros.
    pub replicate_first: bool,
}

impl VolGeom {
    /// Rows of the column matrix: `C·kt·kh·kw`.
    pub fn rows(&self) -> usize {
        self.c * self.t.k * self.h.k * self.w.k
    }

    /// Output positions per output frame: `OH·OW`.
    pub fn plane(&self) -> usize {
        self.h.on * self.w.on
    }

    /// True when the lowering is the identity (1×1×1, stride 1, no padding): the clip itself,
    /// seen as `(C, F·H·W)`, already is the column matrix.
    pub fn is_pointwise(&self) -> bool {
        [self.t, self.h, self.w]
            .iter()
            .all(|a| a.k == 1 && a.s == 1 && a.on == a.n)
    }

    /// The input frame tap `a` of output frame `of` reads, or `None` for a zero frame.
    fn frame(&self, of: usize, a: usize) -> Option<usize> {
        let t = of * self.t.s + a;
        if t < self.t.front {
            self.replicate_first.then_some(0)
        } else if t - self.t.front < self.t.n {
            Some(t - self.t.front)
        } else {
            None
        }
    }
}

// ANCHOR: vol2col
/// Writes the `(C·kt·kh·kw, (f1 − f0)·OH·OW)` columns of output frames `f0..f1` of one clip
/// `x` `(C, F, H, W)` into `cols`.
pub fn vol2col(g: &VolGeom, x: &[f32], frames: (usize, usize), cols: &mut [f32]) {
    let (f0, f1) = frames;
    let (kt, kh, kw, l) = (g.t.k, g.h.k, g.w.k, g.plane());
    let hw = g.h.n * g.w.n;
    debug_assert_eq!(x.len(), g.c * g.t.n * hw);
    debug_assert_eq!(cols.len(), g.rows() * (f1 - f0) * l);
    if l == 0 || f1 == f0 {
        return;
    }
    for (row, out) in cols.chunks_exact_mut((f1 - f0) * l).enumerate() {
        let (c, a, i, j) = (
            row / (kt * kh * kw),
            row / (kh * kw) % kt,
            row / kw % kh,
            row % kw,
        );
        for (of, seg) in (f0..f1).zip(out.chunks_exact_mut(l)) {
            match g.frame(of, a) {
                Some(t) => gather(g, i, j, &x[(c * g.t.n + t) * hw..][..hw], seg),
                None => seg.fill(0.0),
            }
        }
    }
}
// ANCHOR_END: vol2col

/// The `(OH, OW)` values spatial tap `(i, j)` sees in one input frame `plane` `(H, W)`.
fn gather(g: &VolGeom, i: usize, j: usize, plane: &[f32], out: &mut [f32]) {
    let (h, w) = (&g.h, &g.w);
    let (y_lo, y_hi) = h.valid(i);
    let (x_lo, x_hi) = w.valid(j);
    for (oy, line) in out.chunks_exact_mut(w.on).enumerate() {
        if oy < y_lo || oy >= y_hi || x_lo == x_hi {
            line.fill(0.0);
            continue;
        }
        // input row iy = oy·sh + i − ph, input column ix = ox·sw + j − pw
        let src = &plane[(oy * h.s + i - h.front) * w.n..][..w.n];
        line[..x_lo].fill(0.0);
        line[x_hi..].fill(0.0);
        let start = x_lo * w.s + j - w.front;
        if w.s == 1 {
            line[x_lo..x_hi].copy_from_slice(&src[start..start + x_hi - x_lo]);
        } else {
            for (v, &s) in line[x_lo..x_hi]
                .iter_mut()
                .zip(src[start..].iter().step_by(w.s))
            {
                *v = s;
            }
        }
    }
}

// ANCHOR: col2vol
/// The adjoint of [`vol2col`]: adds every entry of `cols` `(C·kt·kh·kw, (f1 − f0)·OH·OW)`
/// onto the value of `dx` `(C, F, H, W)` it was copied from (in causal mode the padding
/// frames are frame 0, so their gradient lands there). `dx` must be zeroed by the caller (or
/// hold a sum).
pub fn col2vol(g: &VolGeom, cols: &[f32], frames: (usize, usize), dx: &mut [f32]) {
    let (f0, f1) = frames;
    let (kt, kh, kw, l) = (g.t.k, g.h.k, g.w.k, g.plane());
    let hw = g.h.n * g.w.n;
    debug_assert_eq!(dx.len(), g.c * g.t.n * hw);
    debug_assert_eq!(cols.len(), g.rows() * (f1 - f0) * l);
    if l == 0 || f1 == f0 {
        return;
    }
    for (row, src) in cols.chunks_exact((f1 - f0) * l).enumerate() {
        let (c, a, i, j) = (
            row / (kt * kh * kw),
            row / (kh * kw) % kt,
            row / kw % kh,
            row % kw,
        );
        for (of, seg) in (f0..f1).zip(src.chunks_exact(l)) {
            if let Some(t) = g.frame(of, a) {
                scatter(g, i, j, seg, &mut dx[(c * g.t.n + t) * hw..][..hw]);
            }
        }
    }
}
// ANCHOR_END: col2vol

/// The adjoint of [`gather`]: adds `seg` `(OH, OW)` onto the frame `plane` `(H, W)`.
fn scatter(g: &VolGeom, i: usize, j: usize, seg: &[f32], plane: &mut [f32]) {
    let (h, w) = (&g.h, &g.w);
    let (y_lo, y_hi) = h.valid(i);
    let (x_lo, x_hi) = w.valid(j);
    if x_lo == x_hi {
        return;
    }
    let start = x_lo * w.s + j - w.front;
    for oy in y_lo..y_hi {
        let line = &seg[oy * w.on..][x_lo..x_hi];
        let dst = &mut plane[(oy * h.s + i - h.front) * w.n..][..w.n];
        for (d, v) in dst[start..].iter_mut().step_by(w.s).zip(line) {
            *d += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `<vol2col(x), c> = <x, col2vol(c)>` over runs of output frames: col2vol is the adjoint,
    /// with zero and causal time padding.
    #[test]
    fn col2vol_is_the_adjoint_of_vol2col() {
        // (C, F, H, W, k = (kt, kh, kw), s = (st, sh, sw), time front/back, ph, pw, causal)
        for &(c, f, h, w, k, s, (tf, tb), ph, pw, causal) in &[
            (2, 4, 5, 4, (3, 3, 3), (1, 1, 1), (1, 1), 1, 1, false),
            (1, 5, 7, 6, (3, 2, 3), (2, 2, 1), (2, 0), 0, 2, true),
            (3, 3, 3, 3, (1, 1, 1), (2, 1, 2), (0, 0), 0, 0, false),
            (1, 1, 1, 1, (3, 3, 3), (1, 1, 1), (2, 0), 1, 1, true),
            (2, 6, 4, 5, (2, 3, 1), (3, 1, 2), (1, 2), 2, 0, false),
        ] {
            let g = VolGeom {
                c,
                t: ConvAxis::new(f, k.0, s.0, tf, tb),
                h: ConvAxis::new(h, k.1, s.1, ph, ph),
                w: ConvAxis::new(w, k.2, s.2, pw, pw),
                replicate_first: causal,
            };
            let x: Vec<f32> = (0..c * f * h * w)
                .map(|i| ((i * 7) % 11) as f32 - 5.0)
                .collect();
            for frames in [(0, g.t.on), (g.t.on / 2, g.t.on)] {
                let n = g.rows() * (frames.1 - frames.0) * g.plane();
                let cv: Vec<f32> = (0..n).map(|i| ((i * 5) % 13) as f32 - 6.0).collect();
                let mut cols = vec![f32::NAN; n];
                vol2col(&g, &x, frames, &mut cols);
                let mut dx = vec![0.0; x.len()];
                col2vol(&g, &cv, frames, &mut dx);
                let lhs: f32 = cols.iter().zip(&cv).map(|(a, b)| a * b).sum();
                let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
                assert_eq!(lhs, rhs, "{g:?} {frames:?}");
            }
        }
    }
}
