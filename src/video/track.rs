//! Reading motion off pixels: where the digit is in each frame (its ink's centre of mass), and
//! which way and how fast it moves over the clip. No network is involved, so the motion score
//! of generated clips cannot be fooled by a classifier's shortcuts.
//!
//! Positions are `(x, y)`: x the column, y the row (pointing down), in pixels, as
//! [`Motion::velocity`] has them.

use super::moving_digits::Motion;
use ndarray::{ArrayView2, ArrayView4, Axis};

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
    fn a_still_track_has_no_motion() {
        let still = vec![Some((3.0, 4.0)); 5];
        assert_eq!(main_motion(&still), None);
        assert_eq!(main_motion(&[Some((1.0, 1.0)), None]), None);
    }
}
