//! What steers a denoiser: the condition $y$ of $\varepsilon_\theta(x_t, t, y)$, one entry per
//! batch element, with its "null" value — the input that means "no condition", which
//! classifier-free guidance contrasts with the real one and which training substitutes at
//! random so one network learns both $p(x \mid y)$ and $p(x)$.
//!
//! Class labels are the only kind today. The null entry is `None`: each model maps it to its
//! own null input (DiT's `LabelEmbedder` reserves the label `num_classes`). A caption (token
//! ids and their padding mask, `None` for the empty caption) is one more variant here; the
//! trainer, the sampler and guidance handle every variant through the methods below.

use crate::tensor::Rng;
use ndarray_rand::rand::Rng as _;
use std::ops::Range;

// ANCHOR: condition
/// The condition of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// No condition: an unconditional model.
    None,
    /// One class label per sample; `None` is the null label, "no class".
    Labels(Vec<Option<usize>>),
}
// ANCHOR_END: condition

impl Condition {
    /// The class labels `ids`, none of them null.
    pub fn labels(ids: &[usize]) -> Self {
        Condition::Labels(ids.iter().map(|&y| Some(y)).collect())
    }

    /// Samples it conditions (`None` for [`Condition::None`], which fits any batch).
    pub fn count(&self) -> Option<usize> {
        match self {
            Condition::None => None,
            Condition::Labels(ids) => Some(ids.len()),
        }
    }

    /// True for [`Condition::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, Condition::None)
    }

    /// The class labels with `null` in place of the null entries, as a label embedding
    /// takes them; `None` for [`Condition::None`].
    pub fn label_ids(&self, null: usize) -> Option<Vec<usize>> {
        match self {
            Condition::None => None,
            Condition::Labels(ids) => Some(ids.iter().map(|y| y.unwrap_or(null)).collect()),
        }
    }

    /// The same batch with every entry replaced by the null condition.
    pub fn null(&self) -> Condition {
        match self {
            Condition::None => Condition::None,
            Condition::Labels(ids) => Condition::Labels(vec![None; ids.len()]),
        }
    }

    /// The entries `r` of the batch (a micro-batch or a chunk).
    pub fn slice(&self, r: Range<usize>) -> Condition {
        match self {
            Condition::None => Condition::None,
            Condition::Labels(ids) => Condition::Labels(ids[r].to_vec()),
        }
    }

    /// The entries `idx` of a per-sample table (the labels of a training batch).
    pub fn select(&self, idx: &[usize]) -> Condition {
        match self {
            Condition::None => Condition::None,
            Condition::Labels(ids) => Condition::Labels(idx.iter().map(|&i| ids[i]).collect()),
        }
    }

    // ANCHOR: label_dropout
    /// Each entry replaced by the null condition with probability `p` (DiT's `token_drop`):
    /// the model learns $p(x)$ beside $p(x \mid y)$, which classifier-free guidance
    /// extrapolates between. Draws one number per entry from `r`, in order.
    pub fn dropped(&self, p: f32, r: &mut Rng) -> Condition {
        match self {
            Condition::None => Condition::None,
            Condition::Labels(ids) => Condition::Labels(
                ids.iter()
                    .map(|&y| if r.random::<f32>() < p { None } else { y })
                    .collect(),
            ),
        }
    }
    // ANCHOR_END: label_dropout
}
