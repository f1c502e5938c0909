//! Captioned colour moving digits (dataset `colour-digits`): RGB clips `(N, 3, F, 32, 32)` in
//! `[−1, 1]`, background −1, one or two digits per clip, each in one pure colour — red,
//! green or blue, so it lives in one channel only — with a caption in words.
//!
//! Each digit is drawn exactly as [`MovingDigits`] draws its one digit (the same 16-pixel
//! procedural sprite, the same motion rule and bounce, 1 or 2 px/frame, the same shared
//! painter), into its colour's channel. Two digits of a clip have different colours, so
//! **channel $c$ of a clip is exactly a grayscale moving-digit clip, or empty** (all −1): the
//! clip scorer trained on grayscale moving digits reads each channel unchanged
//! ([`crate::metrics::video::captions`]). Overlapping digits do not mix.
//!
//! What a clip shows is a [`ClipSpec`] ([`super::captions`]), drawn at random with the speed
//! always given; its caption is written by [`caption`] in a phrasing drawn from the same
//! generator. A [`Split`] keeps the held-out compositions ([`super::held_out`]) out of the
//! training clips (specs are drawn until one the split admits comes up).
//!
//! Clip `i` is drawn from its own generator seeded by `(seed, i)`, so the first `k` clips of a
//! set are the same for any size of set and any number of threads.

use super::captions::{caption, random_spec, ClipSpec};
use super::config::MAX_FRAMES;
use super::held_out::Split;
use super::moving_digits::MovingDigits;
use super::patch::clips_to_frames;
use crate::data::{digits, ImageDataset};
use crate::error::{Error, Result};
use crate::tensor::{rng, Rng};
use ndarray::{Array5, ArrayView4, Axis};
use ndarray_rand::rand::Rng as _;
use rayon::prelude::*;

/// The dataset name checkpoints record.
pub const DATASET_NAME: &str = "colour-digits";

/// Colour channels of a clip: red, green, blue.
pub const CHANNELS: usize = 3;

/// The generator's settings (canvas 32, sprite 16 and speeds 1–2 are the moving digits'
/// defaults, fixed so the clip scorer applies).
#[derive(Clone, Debug, PartialEq)]
pub struct ColourDigits {
    /// Frames per clip `F`, 1 to [`MAX_FRAMES`] (default 8).
    pub frames: usize,
    /// The share of clips with two digits, in `[0, 1]` (default 0.5).
    pub two_digit_fraction: f32,
}

impl Default for ColourDigits {
    fn default() -> Self {
        ColourDigits {
            frames: 8,
            two_digit_fraction: 0.5,
        }
    }
}

/// Clips with what they show and their captions; one entry per clip in each `Vec`.
#[derive(Clone, Debug)]
pub struct CaptionedClips {
    /// `(N, 3, F, H, W)`, every value in `[−1, 1]`.
    pub clips: Array5<f32>,
    pub specs: Vec<ClipSpec>,
    pub captions: Vec<String>,
}

impl ColourDigits {
    /// Checks the settings, saying the valid range of a wrong one.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_FRAMES).contains(&self.frames) {
            return Err(Error::new(
                format!("{} frames per clip", self.frames),
                format!("use 1 to {MAX_FRAMES} frames"),
            ));
        }
        if !(0.0..=1.0).contains(&self.two_digit_fraction) {
            return Err(Error::new(
                format!("a two-digit fraction of {}", self.two_digit_fraction),
                "use a fraction between 0 and 1 (default 0.5)",
            ));
        }
        Ok(())
    }

    /// The grayscale generator each channel is drawn with.
    fn painter(&self) -> MovingDigits {
        MovingDigits {
            frames: self.frames,
            ..MovingDigits::default()
        }
    }

    /// `n` clips `(n, 3, F, 32, 32)` of `split`, with specs and captions, drawn from `seed`.
    pub fn generate(&self, n: usize, seed: u64, split: Split) -> Result<CaptionedClips> {
        self.validate()?;
        let painter = self.painter();
        let (f, side) = (self.frames, painter.canvas);
        let plane = f * side * side; // one channel (F, H, W)
        let mut pixels = vec![-1.0f32; n * CHANNELS * plane]; // (N, 3, F, H, W) flattened
        let drawn: Vec<(ClipSpec, String)> = pixels
            .par_chunks_mut(CHANNELS * plane)
            .enumerate()
            .map(|(i, clip)| {
                let mut r = rng(digits::sample_seed(seed, i as u64));
                self.draw(clip, plane, split, &painter, &mut r)
            })
            .collect();
        let clips =
            Array5::from_shape_vec((n, CHANNELS, f, side, side), pixels).expect("sizes agree");
        let (specs, captions) = drawn.into_iter().unzip();
        Ok(CaptionedClips {
            clips,
            specs,
            captions,
        })
    }

    /// Draws one clip `(3, F, H, W)` (all −1) of `split`; returns its spec and caption.
    fn draw(
        &self,
        clip: &mut [f32],
        plane: usize,
        split: Split,
        painter: &MovingDigits,
        r: &mut Rng,
    ) -> (ClipSpec, String) {
        let two = r.random::<f32>() < self.two_digit_fraction;
        // Both splits hold specs of one and of two digits with positive probability (at least
        // 1 in 12), so this ends.
        let spec = loop {
            let s = random_spec(r, two);
            if split.admits(&s) {
                break s;
            }
        };
        for d in &spec.digits {
            let speed = d.speed.expect("random specs have a speed").px_per_frame();
            let ink = digits::render_digit(d.digit, painter.sprite, r);
            let c = d.colour.channel();
            painter.paint(
                &mut clip[c * plane..(c + 1) * plane],
                &ink,
                d.motion,
                speed,
                r,
            );
        }
        let text = caption(&spec, r);
        (spec, text)
    }
}

impl CaptionedClips {
    /// Number of clips `N`.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// True when there are no clips.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Frames per clip `F`.
    pub fn frame_count(&self) -> usize {
        self.clips.shape()[2]
    }

    /// Clip `i`, `(3, F, H, W)`.
    pub fn clip(&self, i: usize) -> ArrayView4<'_, f32> {
        self.clips.index_axis(Axis(0), i)
    }

    /// The clips at `indices`, in that order, with their specs and captions.
    pub fn select(&self, indices: &[usize]) -> CaptionedClips {
        CaptionedClips {
            clips: self.clips.select(Axis(0), indices),
            specs: indices.iter().map(|&i| self.specs[i].clone()).collect(),
            captions: indices.iter().map(|&i| self.captions[i].clone()).collect(),
        }
    }

    /// Every frame as an RGB image, `(N·F, 3, H, W)`, frames of a clip consecutive (for the
    /// image VAE), labelled by the clip's first digit (`"0"`…`"9"`).
    pub fn frames(&self) -> ImageDataset {
        let f = self.clips.dim().2;
        // (N, C, F, H, W) → (N, F, C, H, W) → (N·F, C, H, W)
        let images = clips_to_frames(self.clips.view()); // (N·F, C, H, W)
        let labels = self
            .specs
            .iter()
            .flat_map(|s| std::iter::repeat_n(s.digits[0].digit, f))
            .collect();
        let names = digits::CLASS_NAMES.iter().map(|s| s.to_string()).collect();
        ImageDataset::new(images, labels, names).expect("one digit label per frame")
    }
}
