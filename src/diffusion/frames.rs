//! Conditioning on frames (Open-Sora 1.2's `MaskGenerator` at our scale): some frames of a
//! clip are *given* — kept clean, at timestep 0, and out of the loss — and the model fills in
//! the rest. Image → video gives the first frame, continuing a clip its first frames,
//! interpolation the first and the last.
//!
//! - training: a fraction of the clips draws a [`MaskKind`]; their given frames of $x_t$ are
//!   replaced by the clean $x_0$ ([`FrameMask::write_given`]) and the loss sees only the other
//!   frames ([`FrameMask::keep`]);
//! - sampling: the given frames are written into $x_t$ before every model call
//!   ([`HoldFrames`]), so they stay what was given from the first step to the last.
//!
//! Frames are axis 2 of `(B, C, F, H, W)` clips.

use super::condition::Condition;
use super::denoiser::Denoiser;
use crate::error::{Error, Result};
use crate::tensor::Rng;
use ndarray::{ArrayD, Axis};
use ndarray_rand::rand::Rng as _;

/// Which frames a clip is given (Open-Sora 1.2's mask types, without `random`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskKind {
    /// The first frame (image → video).
    ImageHead,
    /// The last frame.
    ImageTail,
    /// The first quarter of the frames (at least one): continuing a clip.
    QuarterHead,
    /// The last quarter of the frames.
    QuarterTail,
    /// The first half: continuing a clip from more context.
    HalfHead,
    /// The first and the last frame (interpolation).
    Interpolate,
}

/// Every kind, in the order of [`MaskKind::name`]'s list.
pub const MASK_KINDS: [MaskKind; 6] = [
    MaskKind::ImageHead,
    MaskKind::ImageTail,
    MaskKind::QuarterHead,
    MaskKind::QuarterTail,
    MaskKind::HalfHead,
    MaskKind::Interpolate,
];

impl MaskKind {
    pub fn name(self) -> &'static str {
        match self {
            MaskKind::ImageHead => "image_head",
            MaskKind::ImageTail => "image_tail",
            MaskKind::QuarterHead => "quarter_head",
            MaskKind::QuarterTail => "quarter_tail",
            MaskKind::HalfHead => "half_head",
            MaskKind::Interpolate => "interpolate",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        MASK_KINDS
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = MASK_KINDS.iter().map(|k| k.name()).collect();
                Error::new(
                    format!("`{s}` is not a frame-mask kind"),
                    format!("use one or more of {}", names.join(", ")),
                )
            })
    }

    /// The given frames of a clip of `frames` frames.
    pub fn frames(self, frames: usize) -> Vec<bool> {
        let quarter = frames.div_ceil(4).max(1);
        (0..frames)
            .map(|f| match self {
                MaskKind::ImageHead => f == 0,
                MaskKind::ImageTail => f + 1 == frames,
                MaskKind::QuarterHead => f < quarter,
                MaskKind::QuarterTail => f + quarter >= frames,
                MaskKind::HalfHead => f < frames / 2,
                MaskKind::Interpolate => f == 0 || f + 1 == frames,
            })
            .collect()
    }
}

/// The training option: a fraction `prob` of the clips gets a mask of one of `kinds`.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameMaskOptions {
    pub prob: f32,
    pub kinds: Vec<MaskKind>,
}

impl FrameMaskOptions {
    /// `"0.5:image_head,quarter_head"`: the fraction, a colon, the kinds.
    pub fn parse(s: &str) -> Result<Self> {
        let fix =
            "write --frame-mask PROB:KIND,KIND…, e.g. 0.5:image_head,quarter_head,interpolate";
        let (p, kinds) = s
            .split_once(':')
            .ok_or_else(|| Error::new(format!("--frame-mask `{s}` has no `:`"), fix))?;
        let prob: f32 = p
            .parse()
            .ok()
            .filter(|p| (0.0..=1.0).contains(p))
            .ok_or_else(|| Error::new(format!("--frame-mask: `{p}` is not in [0, 1]"), fix))?;
        let kinds = kinds
            .split(',')
            .map(|k| MaskKind::parse(k.trim()))
            .collect::<Result<Vec<_>>>()?;
        Ok(FrameMaskOptions { prob, kinds })
    }

    // ANCHOR: draw_masks
    /// The masks of a batch of `b` clips of `frames` frames: each clip, with probability
    /// `prob`, is given the frames of a kind drawn uniformly; the others are given none.
    pub fn draw(&self, b: usize, frames: usize, rng: &mut Rng) -> FrameMask {
        let mut given = Vec::with_capacity(b * frames);
        for _ in 0..b {
            let masked = rng.random::<f32>() < self.prob;
            let kind = self.kinds[rng.random_range(0..self.kinds.len())];
            given.extend(kind.frames(frames).into_iter().map(|g| g && masked));
        }
        FrameMask { frames, given }
    }
    // ANCHOR_END: draw_masks
}

/// Which frames of each clip of a batch are given: `given[b·F + f]`.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameMask {
    pub frames: usize,
    pub given: Vec<bool>,
}

impl FrameMask {
    /// `b` clips, each given the frames `kind` gives.
    pub fn of_kind(kind: MaskKind, b: usize, frames: usize) -> Self {
        FrameMask::repeat(&kind.frames(frames), b)
    }

    /// `b` clips, each given the frames `given` (F).
    pub fn repeat(given: &[bool], b: usize) -> Self {
        FrameMask {
            frames: given.len(),
            given: given.repeat(b),
        }
    }

    pub fn clips(&self) -> usize {
        self.given.len() / self.frames.max(1)
    }

    pub fn is_given(&self, b: usize, f: usize) -> bool {
        self.given[b * self.frames + f]
    }

    /// Whether any frame of any clip is given.
    pub fn any(&self) -> bool {
        self.given.iter().any(|&g| g)
    }

    /// Clips `r` of the batch.
    pub fn slice(&self, r: std::ops::Range<usize>) -> FrameMask {
        let f = self.frames;
        FrameMask {
            frames: f,
            given: self.given[r.start * f..r.end * f].to_vec(),
        }
    }

    /// Writes the given frames of `x0` into `x` (both `(B, C, F, H, W)`).
    pub fn write_given(&self, x: &mut ArrayD<f32>, x0: &ArrayD<f32>) {
        assert_eq!(
            x.shape(),
            x0.shape(),
            "frame mask: x and x0 differ in shape"
        );
        for (b, (mut xb, x0b)) in x.outer_iter_mut().zip(x0.outer_iter()).enumerate() {
            for f in (0..self.frames).filter(|&f| self.is_given(b, f)) {
                xb.index_axis_mut(Axis(1), f)
                    .assign(&x0b.index_axis(Axis(1), f));
            }
        }
    }

    /// The loss's weights, `shape` `(B, C, F, H, W)`: 1 on every element of a frame that is
    /// not given, 0 on the given ones.
    pub fn keep(&self, shape: &[usize]) -> ArrayD<f32> {
        let mut keep = ArrayD::ones(shape);
        for (b, mut kb) in keep.outer_iter_mut().enumerate() {
            for f in (0..self.frames).filter(|&f| self.is_given(b, f)) {
                kb.index_axis_mut(Axis(1), f).fill(0.0);
            }
        }
        keep
    }
}

/// A model of clips that reads a frame mask: the given frames' tokens at timestep 0.
pub trait FrameConditioned: Sync {
    fn predict_given(
        &self,
        x_t: &ArrayD<f32>,
        t: &[usize],
        y: &Condition,
        given: &FrameMask,
    ) -> ArrayD<f32>;
}

// ANCHOR: hold_frames
/// A [`Denoiser`] that holds the given frames fixed: before every call, the given frames
/// of $x_t$ are replaced by `x0`'s, and the model reads the mask. Wrap it in guidance as
/// any denoiser (both the conditional and the unconditional call hold the same frames);
/// the sampler's own update of the given frames is overwritten at the next call, and by
/// [`HoldFrames::finish`] after the last.
pub struct HoldFrames<'a> {
    pub model: &'a dyn FrameConditioned,
    /// The given frames, `(B, C, F, H, W)` (the other frames are not read).
    pub x0: ArrayD<f32>,
    pub mask: FrameMask,
}

impl Denoiser for HoldFrames<'_> {
    fn predict(&self, x_t: &ArrayD<f32>, t: &[usize], y: &Condition) -> ArrayD<f32> {
        let mut x = x_t.clone();
        self.mask.write_given(&mut x, &self.x0);
        self.model.predict_given(&x, t, y, &self.mask)
    }
}

impl HoldFrames<'_> {
    /// The sample with the given frames written in.
    pub fn finish(&self, mut x: ArrayD<f32>) -> ArrayD<f32> {
        self.mask.write_given(&mut x, &self.x0);
        x
    }
}
// ANCHOR_END: hold_frames
