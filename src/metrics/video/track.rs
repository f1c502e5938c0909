//! Reading motion off pixels: where the digit is in each frame (its ink's centre of mass), and
//! which way and how fast it moves over the clip. No network is involved, so the motion score
//! of generated clips cannot be fooled by a classifier's shortcuts.
//!
//! Positions are `(x, y)`: x the column, y the row (pointing down), in pixels, as
//! [`Motion::velocity`] has them.

use crate::video::moving_digits::Motion;
use ndarray::{s, Array2, Array4, ArrayView2, ArrayView4, Axis};

/// Ink below this (on the `[0, 1]` scale) counts as background, so a slightly grey or noisy
/// background does not pull the centre towards the middle of the frame.
pub const INK_THRESHOLD: f32 = 0.1;

/// The intensity-weighted centre `(x, y)` of a frame `(H, W)` in `[−1, 1]`, with weights
/// $w = \max(\frac{v+1}{2} - \tau, 0)$, $\tau$ = [`INK_THRESHOLD`]:
/// $\bar x = \sum w\,x / \sum w$. `None` when the frame has no ink.
pub fn centroid(frame: ArrayView2<f32>) -> Option<(f32, f32)> {
    let (mut sw, mut sx, mut sy) = (0.0f64, 0.0f64, 0.0f64);
    for ((y, x), &v) in frame.indexed_iter() {
        let w = ((v + 1.0) / 2.0 - INK_THRESHOLD).max(0.0) as f64;
        sw += w;
        sx += w * x as f64;
        sy += w * y as f64;
    }
    (sw > 1e-3).then(|| ((sx / sw) as f32, (sy / sw) as f32))
}

/// The centre of every frame of a clip `(C, F, H, W)` (channels averaged), in frame order.
pub fn track(clip: ArrayView4<f32>) -> Vec<Option<(f32, f32)>> {
    let grey = clip.mean_axis(Axis(0)).expect("a clip has a channel"); // (F, H, W)
    grey.outer_iter().map(centroid).collect()
}

/// The main motion of a track and its speed in pixels per frame.
///
/// The velocity on each axis is the least-squares slope of position over frame index, using
/// the frames that have a centre: $v_x = \sum (t - \bar t)(x_t - \bar x) / \sum (t - \bar t)^2$.
/// The main axis is the one with the larger $|v|$, its sign the direction (x: right/left, y:
/// down/up), and the speed that $|v|$. `None` with fewer than two tracked frames, or no motion.
pub fn main_motion(track: &[Option<(f32, f32)>]) -> Option<(Motion, f32)> {
    let points: Vec<(f64, f64, f64)> = track
        .iter()
        .enumerate()
        .filter_map(|(t, p)| p.map(|(x, y)| (t as f64, x as f64, y as f64)))
        .collect();
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mean = |f: fn(&(f64, f64, f64)) -> f64| points.iter().map(f).sum::<f64>() / n;
    let (mt, mx, my) = (mean(|p| p.0), mean(|p| p.1), mean(|p| p.2));
    let stt: f64 = points.iter().map(|p| (p.0 - mt).powi(2)).sum();
    let vx = points.iter().map(|p| (p.0 - mt) * (p.1 - mx)).sum::<f64>() / stt;
    let vy = points.iter().map(|p| (p.0 - mt) * (p.2 - my)).sum::<f64>() / stt;
    let motion = if vx.abs() >= vy.abs() {
        match vx {
            v if v > 0.0 => Motion::Right,
            v if v < 0.0 => Motion::Left,
            _ => return None,
        }
    } else if vy > 0.0 {
        Motion::Down
    } else {
        Motion::Up
    };
    Some((motion, vx.abs().max(vy.abs()) as f32))
}

/// The frame `(H, W)` moved by whole pixels `(dx, dy)`, the uncovered part background (−1).
pub fn shift(frame: ArrayView2<f32>, dx: i64, dy: i64) -> Array2<f32> {
    let (h, w) = frame.dim();
    let mut out = Array2::from_elem((h, w), -1.0f32);
    // out[y, x] = frame[y − dy, x − dx] where that is inside
    let span = |d: i64, n: usize| {
        let n = n as i64;
        let (lo, hi) = (d.max(0).min(n), (n + d).clamp(0, n));
        (
            lo as usize,
            hi as usize,
            (lo - d) as usize,
            (hi - d) as usize,
        )
    };
    let (y0, y1, sy0, sy1) = span(dy, h);
    let (x0, x1, sx0, sx1) = span(dx, w);
    out.slice_mut(s![y0..y1, x0..x1])
        .assign(&frame.slice(s![sy0..sy1, sx0..sx1]));
    out
}

/// A clip `(C, F, H, W)` moved by one whole-pixel shift so that the mean of its frames'
/// centres lies at the middle of the frame: where the digit is goes, how it moves stays.
/// (A clip with no ink is returned as it is.)
pub fn recenter_clip(clip: ArrayView4<f32>) -> Array4<f32> {
    let (_, _, h, w) = clip.dim();
    let centres: Vec<(f32, f32)> = track(clip).into_iter().flatten().collect();
    if centres.is_empty() {
        return clip.to_owned();
    }
    let k = centres.len() as f32;
    let (mx, my) = centres
        .iter()
        .fold((0.0, 0.0), |(a, b), &(x, y)| (a + x / k, b + y / k));
    // the middle of a 32-pixel frame is 15.5: move the centre there, rounded
    let dx = ((w as f32 - 1.0) / 2.0 - mx).round() as i64;
    let dy = ((h as f32 - 1.0) / 2.0 - my).round() as i64;
    let mut out = clip.to_owned();
    for mut c in out.outer_iter_mut() {
        for mut f in c.outer_iter_mut() {
            let moved = shift(f.view(), dx, dy);
            f.assign(&moved);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn centroid_of_one_pixel_is_that_pixel() {
        let mut f = Array2::from_elem((8, 8), -1.0f32);
        assert_eq!(centroid(f.view()), None);
        f[[2, 5]] = 1.0; // row 2, column 5
        assert_eq!(centroid(f.view()), Some((5.0, 2.0)));
    }

    #[test]
    fn shift_moves_by_whole_pixels() {
        let mut f = Array2::from_elem((6, 6), -1.0f32);
        f[[1, 2]] = 1.0;
        assert_eq!(centroid(shift(f.view(), 3, -1).view()), Some((5.0, 0.0)));
        assert_eq!(centroid(shift(f.view(), 4, 0).view()), None, "moved off");
    }

    #[test]
    fn a_still_track_has_no_motion() {
        let still = vec![Some((3.0, 4.0)); 5];
        assert_eq!(main_motion(&still), None);
        assert_eq!(main_motion(&[Some((1.0, 1.0)), None]), None);
    }
}
