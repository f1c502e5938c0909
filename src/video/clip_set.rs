//! A labelled set of clips in memory, `(N, 1, F, H, W)` in `[−1, 1]`, with what each clip
//! shows: its digit, motion, speed and caption. [`ClipSet::frames`] unrolls it into single
//! frames labelled by digit, for the image models and the frame classifier.

use super::moving_digits::{caption, class_name, unlabel, Motion, NUM_CLASSES};
use super::patch::clips_to_frames;
use crate::data::{digits, ImageDataset};
use crate::error::{Error, Result};
use ndarray::{Array5, ArrayView4, Axis};

/// Clips with their labels; every `Vec` has one entry per clip.
#[derive(Clone, Debug)]
pub struct ClipSet {
    /// `(N, 1, F, H, W)`, every value in `[−1, 1]`.
    pub clips: Array5<f32>,
    /// The (digit, motion) class, $4\,\text{digit} + \text{motion}$, of each clip.
    pub labels: Vec<usize>,
    pub digits: Vec<usize>,
    pub motions: Vec<Motion>,
    /// Pixels per frame.
    pub speeds: Vec<usize>,
    /// `"a 3 moving left"`.
    pub captions: Vec<String>,
    /// The 40 class names, `"0 left"` … `"9 down"`, indexed by label.
    pub class_names: Vec<String>,
}

impl ClipSet {
    /// A set from clips, labels and speeds; the digits, motions and captions follow from the
    /// labels. Counts that disagree, or a label of 40 or more, are errors.
    pub fn new(clips: Array5<f32>, labels: Vec<usize>, speeds: Vec<usize>) -> Result<Self> {
        let n = clips.len_of(Axis(0));
        if labels.len() != n || speeds.len() != n {
            return Err(Error::new(
                format!(
                    "{n} clips, {} labels and {} speeds",
                    labels.len(),
                    speeds.len()
                ),
                "give one label and one speed per clip",
            ));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l >= NUM_CLASSES) {
            return Err(Error::new(
                format!("label {bad}, but there are {NUM_CLASSES} (digit, motion) classes"),
                "use labels 4·digit + motion, below 40",
            ));
        }
        let (digits, motions) = labels.iter().map(|&l| unlabel(l)).unzip();
        Ok(ClipSet {
            clips,
            captions: labels.iter().map(|&l| caption(l)).collect(),
            labels,
            digits,
            motions,
            speeds,
            class_names: (0..NUM_CLASSES).map(class_name).collect(),
        })
    }

    /// Number of clips `N`.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no clips.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Frames per clip `F`.
    pub fn frame_count(&self) -> usize {
        self.clips.shape()[2]
    }

    /// Frame side `H` (= `W`).
    pub fn size(&self) -> usize {
        self.clips.shape()[3]
    }

    /// Clip `i`, `(C, F, H, W)`.
    pub fn clip(&self, i: usize) -> ArrayView4<'_, f32> {
        self.clips.index_axis(Axis(0), i)
    }

    /// The clips at `indices`, in that order, with everything known about them.
    pub fn select(&self, indices: &[usize]) -> ClipSet {
        let pick = |v: &[usize]| indices.iter().map(|&i| v[i]).collect::<Vec<usize>>();
        ClipSet {
            clips: self.clips.select(Axis(0), indices),
            labels: pick(&self.labels),
            digits: pick(&self.digits),
            motions: indices.iter().map(|&i| self.motions[i]).collect(),
            speeds: pick(&self.speeds),
            captions: indices.iter().map(|&i| self.captions[i].clone()).collect(),
            class_names: self.class_names.clone(),
        }
    }

    /// The first `n` clips (or all, if fewer).
    pub fn take(&self, n: usize) -> ClipSet {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        self.select(&idx)
    }

    /// Every frame as an image, `(N·F, C, H, W)`, frames of a clip consecutive, labelled by
    /// digit (10 classes, `"0"`…`"9"`).
    pub fn frames(&self) -> ImageDataset {
        let f = self.clips.dim().2;
        let images = clips_to_frames(self.clips.view()); // (N·F, C, H, W)
        let labels = self
            .digits
            .iter()
            .flat_map(|&d| std::iter::repeat_n(d, f))
            .collect();
        let names = digits::CLASS_NAMES.iter().map(|s| s.to_string()).collect();
        ImageDataset::new(images, labels, names).expect("one digit label per frame")
    }
}
