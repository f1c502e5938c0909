//! What steers a denoiser: the condition $y$ of $\varepsilon_\theta(x_t, t, y)$, one entry per
//! batch element, with its "null" value — the input that means "no condition", which
//! classifier-free guidance contrasts with the real one and which training substitutes at
//! random so one network learns both $p(x \mid y)$ and $p(x)$.
//!
//! Three kinds: class labels, [`Blend`]s of two classes (sampling only: the
//! class-interpolation experiment), and captions (token ids with their padding mask). The
//! null entry is `None`: each model maps it to its own null input (DiT's `LabelEmbedder`
//! reserves the label `num_classes`; a text-conditioned model has a learned null caption).
//! The trainer, the sampler and guidance handle every variant through the methods below; a
//! model reads class labels and blends alike as rows of its label table ([`Condition::rows`]),
//! and captions through its text encoder.

use super::blend::Blend;
use crate::tensor::Rng;
use ndarray::{Array2, ArrayView2, Axis};
use ndarray_rand::rand::Rng as _;
use std::ops::Range;

/// A tokenized caption, as the tokenizer (`src/text/tokenizer.rs`) makes it: token `ids`
/// padded to a fixed length, the words in `ids[..len]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<usize>,
    pub len: usize,
}

impl Tokens {
    /// The key padding mask: true for the first `len` tokens (the words).
    pub fn mask(&self) -> Vec<bool> {
        (0..self.ids.len()).map(|i| i < self.len).collect()
    }
}

// ANCHOR: condition
/// The condition of a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// No condition: an unconditional model.
    None,
    /// One class label per sample; `None` is the null label, "no class".
    Labels(Vec<Option<usize>>),
    /// One blend of two classes' embeddings per sample; `None` is the null label.
    Blend(Vec<Option<Blend>>),
    /// One tokenized caption per sample; `None` is the null caption.
    Captions(Vec<Option<Tokens>>),
}
// ANCHOR_END: condition

impl Condition {
    /// The class labels `ids`, none of them null.
    pub fn labels(ids: &[usize]) -> Self {
        Condition::Labels(ids.iter().map(|&y| Some(y)).collect())
    }

    /// The blends `b`, none of them null.
    pub fn blends(b: &[Blend]) -> Self {
        Condition::Blend(b.iter().map(|&b| Some(b)).collect())
    }

    /// Samples it conditions (`None` for [`Condition::None`], which fits any batch).
    pub fn count(&self) -> Option<usize> {
        match self {
            Condition::None => None,
            Condition::Labels(ids) => Some(ids.len()),
            Condition::Blend(b) => Some(b.len()),
            Condition::Captions(c) => Some(c.len()),
        }
    }

    /// True for [`Condition::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, Condition::None)
    }

    /// The class labels with `null` in place of the null entries, as a label embedding
    /// takes them; `None` for [`Condition::None`].
    ///
    /// Panics on a [`Condition::Blend`], which has no label id: the models read it through
    /// [`Condition::rows`] when sampling, and nothing trains on one.
    pub fn label_ids(&self, null: usize) -> Option<Vec<usize>> {
        match self {
            Condition::None => None,
            Condition::Labels(ids) => Some(ids.iter().map(|y| y.unwrap_or(null)).collect()),
            // a text-conditioned model's label table holds only the null label
            Condition::Captions(c) => Some(vec![null; c.len()]),
            Condition::Blend(_) => {
                panic!("a blend of two classes has no label ids: sample it, do not train on it")
            }
        }
    }

    /// Each sample's row of a label `table` `(num_classes + 1, D)` whose row `null` is the
    /// null label: $E_y$ for a label, the [`Blend::mix`] of rows `from` and `to` for a blend,
    /// and row `null` for a null entry. One row per entry, `(B, D)`; [`Condition::None`] is
    /// `n` null rows. Panics on a class without a row (callers validate input).
    pub fn rows(&self, table: ArrayView2<f32>, null: usize, n: usize) -> Array2<f32> {
        let num = table.nrows();
        let row = |i: usize| {
            assert!(i < num, "class {i} out of range: the table has {num} rows");
            table.row(i)
        };
        // $E_y$ for each id: a row gather
        let gather = |ids: &[usize]| {
            ids.iter().for_each(|&i| _ = row(i));
            table.select(Axis(0), ids)
        };
        match self {
            Condition::None => gather(&vec![null; n]),
            Condition::Captions(c) => gather(&vec![null; c.len()]),
            Condition::Labels(ids) => {
                gather(&ids.iter().map(|y| y.unwrap_or(null)).collect::<Vec<_>>())
            }
            Condition::Blend(blends) => {
                let mut out = Array2::zeros((blends.len(), table.ncols()));
                for (mut e, b) in out.rows_mut().into_iter().zip(blends) {
                    match b {
                        Some(b) => e.assign(&b.mix(row(b.from), row(b.to))),
                        None => e.assign(&row(null)),
                    }
                }
                out
            }
        }
    }

    /// The same batch with every entry replaced by the null condition.
    pub fn null(&self) -> Condition {
        match self {
            Condition::None => Condition::None,
            Condition::Labels(ids) => Condition::Labels(vec![None; ids.len()]),
            Condition::Blend(b) => Condition::Blend(vec![None; b.len()]),
            Condition::Captions(c) => Condition::Captions(vec![None; c.len()]),
        }
    }

    /// The entries `r` of the batch (a micro-batch or a chunk).
    pub fn slice(&self, r: Range<usize>) -> Condition {
        match self {
            Condition::None => Condition::None,
            Condition::Labels(ids) => Condition::Labels(ids[r].to_vec()),
            Condition::Blend(b) => Condition::Blend(b[r].to_vec()),
            Condition::Captions(c) => Condition::Captions(c[r].to_vec()),
        }
    }

    /// The entries `idx` of a per-sample table (the labels of a training batch).
    pub fn select(&self, idx: &[usize]) -> Condition {
        match self {
            Condition::None => Condition::None,
            Condition::Labels(ids) => Condition::Labels(idx.iter().map(|&i| ids[i]).collect()),
            Condition::Blend(b) => Condition::Blend(idx.iter().map(|&i| b[i]).collect()),
            Condition::Captions(c) => {
                Condition::Captions(idx.iter().map(|&i| c[i].clone()).collect())
            }
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
            Condition::Blend(b) => Condition::Blend(
                b.iter()
                    .map(|&y| if r.random::<f32>() < p { None } else { y })
                    .collect(),
            ),
            // Open-Sora's caption dropout: the caption becomes the null caption
            Condition::Captions(c) => Condition::Captions(
                c.iter()
                    .map(|y| {
                        if r.random::<f32>() < p {
                            None
                        } else {
                            y.clone()
                        }
                    })
                    .collect(),
            ),
        }
    }
    // ANCHOR_END: label_dropout
}
