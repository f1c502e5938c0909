//! Exponential moving average of the weights, as DiT trains it (`update_ema` in
//! <https://github.com/facebookresearch/DiT/blob/main/train.py>, decay 0.9999).
//!
//! The weights a training run ends on carry the noise of the last few hundred steps; the
//! average of the weights over the last ~`1/(1−decay)` steps does not, and it samples
//! visibly cleaner images. The shadow copy is only ever read for sampling and checkpoints.

use super::{flat, flat_mut, CHUNK};
use crate::param::Parameters;
use ndarray::ArrayD;
use rayon::prelude::*;

/// A shadow copy of a model's weights, averaged after every optimizer step.
#[derive(Clone, Debug)]
pub struct Ema {
    /// Target decay `d` of $\theta_{ema} \leftarrow d\,\theta_{ema} + (1-d)\,\theta$.
    pub decay: f32,
    /// If true, the decay of update `n` (counting from 0) is `min(decay, (1+n)/(10+n))`, so
    /// the early average is not dominated by the random initial weights.
    pub warmup: bool,
    /// Updates done so far.
    pub updates: u64,
    shadow: Vec<(String, ArrayD<f32>)>,
}

impl Ema {
    /// Starts the average at the model's current weights.
    pub fn new(model: &mut impl Parameters, decay: f32) -> Self {
        let mut shadow = Vec::new();
        model.visit("", &mut |name, p| {
            shadow.push((name.to_string(), p.value.as_standard_layout().into_owned()))
        });
        Ema {
            decay,
            warmup: false,
            updates: 0,
            shadow,
        }
    }

    /// The same, with the warm-up decay `min(decay, (1+n)/(10+n))` switched on.
    pub fn with_warmup(mut self) -> Self {
        self.warmup = true;
        self
    }

    /// The decay the next update will use.
    pub fn current_decay(&self) -> f32 {
        let n = self.updates as f32;
        if self.warmup {
            self.decay.min((1.0 + n) / (10.0 + n))
        } else {
            self.decay
        }
    }

    // ANCHOR: update
    /// Moves the shadow weights towards the model's: $\theta_{ema} \leftarrow d\,\theta_{ema} + (1-d)\,\theta$.
    pub fn update(&mut self, model: &mut impl Parameters) {
        let d = self.current_decay();
        self.updates += 1;
        self.for_each_pair(model, &mut |shadow, p| {
            flat_mut(shadow)
                .par_chunks_mut(CHUNK)
                .zip(flat(p).par_chunks(CHUNK))
                .for_each(|(s, w)| {
                    for (s, &w) in s.iter_mut().zip(w) {
                        *s = d * *s + (1.0 - d) * w;
                    }
                });
        });
    }
    // ANCHOR_END: update

    /// Overwrites the model's weights with the shadow weights (e.g. before sampling).
    pub fn copy_to(&mut self, model: &mut impl Parameters) {
        let mut i = 0;
        let shadow = &self.shadow;
        model.visit("", &mut |name, p| {
            let (s_name, s) = check(shadow, i, name, p.shape());
            debug_assert_eq!(s_name, name);
            p.value.assign(s);
            i += 1;
        });
        assert_eq!(
            i,
            shadow.len(),
            "EMA: the model has fewer parameters than the shadow"
        );
    }

    /// The shadow weights as `(name, tensor)` pairs in visiting order.
    pub fn shadow(&self) -> &[(String, ArrayD<f32>)] {
        &self.shadow
    }

    /// The shadow weight of one parameter, by its name.
    pub fn get(&self, name: &str) -> Option<&ArrayD<f32>> {
        self.shadow.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    fn for_each_pair(
        &mut self,
        model: &mut impl Parameters,
        f: &mut dyn FnMut(&mut ArrayD<f32>, &ArrayD<f32>),
    ) {
        let mut i = 0;
        let shadow = &mut self.shadow;
        model.visit("", &mut |name, p| {
            check(shadow, i, name, p.shape());
            f(&mut shadow[i].1, &p.value);
            i += 1;
        });
        assert_eq!(
            i,
            shadow.len(),
            "EMA: the model has fewer parameters than the shadow"
        );
    }
}

/// The `i`-th shadow entry, panicking if it is not the parameter `name` with `shape`.
fn check<'a>(
    shadow: &'a [(String, ArrayD<f32>)],
    i: usize,
    name: &str,
    shape: &[usize],
) -> &'a (String, ArrayD<f32>) {
    let entry = shadow
        .get(i)
        .unwrap_or_else(|| panic!("EMA: the model has a parameter `{name}` the shadow lacks"));
    assert_eq!(
        entry.0, name,
        "EMA: parameter {i} is `{name}` but the shadow holds `{}` — the parameter walk changed",
        entry.0
    );
    assert_eq!(
        entry.1.shape(),
        shape,
        "EMA: parameter `{name}` changed shape"
    );
    entry
}
