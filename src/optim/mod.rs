//! Optimizers and the small tools around a training step: AdamW and SGD update the weights
//! from their gradients, [`Ema`] keeps a slowly moving average of the weights (DiT samples
//! from it), [`clip_grad_norm`] bounds the size of a step, and [`CosineSchedule`] sets the
//! learning rate of each step.
//!
//! Everything here is written against the one parameter walk ([`Parameters::visit`]), so the
//! state an optimizer keeps is a list in visiting order, each entry remembering the name of the
//! parameter it belongs to. A model whose walk changed between steps is a bug and panics with
//! both names; state loaded from a file is checked by name and shape and returns an error.
//!
//! Updates are element-wise, so they run in parallel over fixed chunks of each tensor: every
//! element is computed by the same arithmetic whatever the thread count, and the results are
//! bit-identical.

pub mod adamw;
pub mod clip;
pub mod ema;
pub mod schedule;
pub mod sgd;

pub use adamw::{AdamW, AdamWConfig};
pub use clip::{clip_grad_norm, grad_norm};
pub use ema::Ema;
pub use schedule::CosineSchedule;
pub use sgd::{Sgd, SgdConfig};

use crate::error::{Error, Result};
use crate::param::{Param, Parameters};
use ndarray::ArrayD;

/// Elements per parallel work item: large enough that rayon's overhead is noise, small enough
/// that a 384×1536 weight splits into dozens of pieces for two cores.
pub(crate) const CHUNK: usize = 1 << 14;

/// A parameter's tensor as a flat slice (parameters are contiguous by construction).
pub(crate) fn flat(a: &ArrayD<f32>) -> &[f32] {
    a.as_slice_memory_order()
        .expect("optimizer: parameter tensors must be contiguous")
}

/// A parameter's tensor as a flat mutable slice.
pub(crate) fn flat_mut(a: &mut ArrayD<f32>) -> &mut [f32] {
    a.as_slice_memory_order_mut()
        .expect("optimizer: parameter tensors must be contiguous")
}

/// One tensor of per-parameter state, remembered with the parameter's name.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub name: String,
    pub shape: Vec<usize>,
    pub bufs: Vec<ArrayD<f32>>,
}

/// Per-parameter optimizer state in the walk's visiting order: `bufs.len()` zero tensors per
/// parameter (e.g. AdamW's `exp_avg` and `exp_avg_sq`), created on first use.
#[derive(Clone, Debug, Default)]
pub(crate) struct SlotList {
    pub slots: Vec<Slot>,
}

impl SlotList {
    /// Walks `model`, calling `f(param, state)` for each parameter with its state; creates
    /// `n_bufs` zero buffers per parameter on the first walk, and on later walks panics if the
    /// walk no longer visits the same names and shapes in the same order.
    pub fn walk(
        &mut self,
        model: &mut impl Parameters,
        who: &str,
        n_bufs: usize,
        f: &mut dyn FnMut(&mut Param, &mut [ArrayD<f32>]),
    ) {
        let first = self.slots.is_empty();
        let mut i = 0;
        model.visit("", &mut |name, p| {
            if first {
                let bufs = (0..n_bufs)
                    .map(|_| ArrayD::zeros(p.value.raw_dim()))
                    .collect();
                self.slots.push(Slot {
                    name: name.to_string(),
                    shape: p.shape().to_vec(),
                    bufs,
                });
            }
            let slot = self.slots.get_mut(i).unwrap_or_else(|| {
                panic!("{who}: the model has a parameter `{name}` that was not there before")
            });
            assert_eq!(
                slot.name, name,
                "{who}: parameter {i} is `{name}` but the state belongs to `{}` — the model's \
                 parameter walk changed",
                slot.name
            );
            assert_eq!(
                slot.shape,
                p.shape(),
                "{who}: parameter `{name}` changed shape"
            );
            f(p, &mut slot.bufs);
            i += 1;
        });
        assert_eq!(
            i,
            self.slots.len(),
            "{who}: the model has {i} parameters but the state has {} — the parameter walk changed",
            self.slots.len()
        );
    }

    /// The state as `(param_name.suffix, tensor)` pairs, suffixes in buffer order.
    pub fn export(&self, suffixes: &[&str]) -> Vec<(String, ArrayD<f32>)> {
        let mut out = Vec::new();
        for slot in &self.slots {
            for (suffix, buf) in suffixes.iter().zip(&slot.bufs) {
                out.push((format!("{}.{suffix}", slot.name), buf.clone()));
            }
        }
        out
    }

    /// Rebuilds the state from `(param_name.suffix, tensor)` pairs, checking that every
    /// parameter of `model` has each suffix with its shape, and that nothing is left over.
    pub fn import(
        model: &mut impl Parameters,
        who: &str,
        suffixes: &[&str],
        state: Vec<(String, ArrayD<f32>)>,
    ) -> Result<SlotList> {
        let mut by_name: std::collections::HashMap<String, ArrayD<f32>> =
            state.into_iter().collect();
        let mut slots = Vec::new();
        let mut err = None;
        model.visit("", &mut |name, p| {
            let mut bufs = Vec::new();
            for suffix in suffixes {
                let key = format!("{name}.{suffix}");
                match by_name.remove(&key) {
                    Some(t) if t.shape() == p.shape() => {
                        bufs.push(t.as_standard_layout().into_owned())
                    }
                    Some(t) => {
                        err.get_or_insert(Error::new(
                            format!(
                                "{who} state `{key}` has shape {:?} but the parameter has {:?}",
                                t.shape(),
                                p.shape()
                            ),
                            "load optimizer state saved for this model configuration",
                        ));
                    }
                    None => {
                        err.get_or_insert(Error::new(
                            format!("{who} state has no `{key}`"),
                            "load optimizer state saved for this model, or start the optimizer fresh",
                        ));
                    }
                }
            }
            slots.push(Slot {
                name: name.to_string(),
                shape: p.shape().to_vec(),
                bufs,
            });
        });
        if let Some(e) = err {
            return Err(e);
        }
        if let Some(extra) = by_name.keys().min() {
            return Err(Error::new(
                format!("{who} state has `{extra}`, which belongs to no parameter of the model"),
                "load optimizer state saved for this model configuration",
            ));
        }
        Ok(SlotList { slots })
    }
}
