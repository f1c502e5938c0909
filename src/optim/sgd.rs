//! Stochastic gradient descent with momentum, as PyTorch's `torch.optim.SGD` with dampening 0:
//! an optional L2 weight decay added to the gradient, a momentum buffer that starts as the
//! first gradient, and optional Nesterov momentum (Sutskever et al., 2013,
//! <http://proceedings.mlr.press/v28/sutskever13.html>).

use super::{flat, flat_mut, SlotList, CHUNK};
use crate::error::Result;
use crate::param::Parameters;
use ndarray::ArrayD;
use rayon::prelude::*;

/// SGD's hyper-parameters. `Default`: lr 1e-2, momentum 0.9, no Nesterov, no weight decay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    pub lr: f32,
    pub momentum: f32,
    pub nesterov: bool,
    pub weight_decay: f32,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-2,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

/// SGD with momentum: hyper-parameters, step counter and one `momentum_buffer` per parameter.
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Learning rate of the next step.
    pub lr: f32,
    pub momentum: f32,
    pub nesterov: bool,
    pub weight_decay: f32,
    /// Steps taken so far.
    pub t: u64,
    state: SlotList,
}

const STATE: [&str; 1] = ["momentum_buffer"];

impl Sgd {
    /// A fresh optimizer; its state is created on the first step.
    pub fn new(cfg: SgdConfig) -> Self {
        Sgd {
            lr: cfg.lr,
            momentum: cfg.momentum,
            nesterov: cfg.nesterov,
            weight_decay: cfg.weight_decay,
            t: 0,
            state: SlotList::default(),
        }
    }

    // ANCHOR: step
    /// One update of every parameter of `model` from its `grad` (which is left unchanged).
    pub fn step(&mut self, model: &mut impl Parameters) {
        let (lr, mu, wd, nesterov) = (self.lr, self.momentum, self.weight_decay, self.nesterov);
        let first = self.t == 0;
        self.t += 1;
        self.state.walk(model, "SGD", 1, &mut |p, bufs| {
            flat_mut(&mut p.value)
                .par_chunks_mut(CHUNK)
                .zip(flat(&p.grad).par_chunks(CHUNK))
                .zip(flat_mut(&mut bufs[0]).par_chunks_mut(CHUNK))
                .for_each(|((w, g), buf)| {
                    for i in 0..w.len() {
                        // $g \leftarrow g + \lambda\theta$   (L2 weight decay)
                        let mut d = g[i] + wd * w[i];
                        if mu != 0.0 {
                            // $b \leftarrow \mu b + g$   ($b = g$ on the first step)
                            buf[i] = if first { d } else { mu * buf[i] + d };
                            // Nesterov looks one momentum step ahead: $g + \mu b$
                            d = if nesterov { d + mu * buf[i] } else { buf[i] };
                        }
                        // $\theta \leftarrow \theta - \eta\, d$
                        w[i] -= lr * d;
                    }
                });
        });
    }
    // ANCHOR_END: step

    /// The momentum buffers as `(<param>.momentum_buffer, tensor)` pairs in visiting order.
    pub fn export_state(&self) -> Vec<(String, ArrayD<f32>)> {
        self.state.export(&STATE)
    }

    /// Restores buffers saved by [`Sgd::export_state`] after `t` steps, checked by name and shape.
    pub fn import_state(
        &mut self,
        model: &mut impl Parameters,
        t: u64,
        state: Vec<(String, ArrayD<f32>)>,
    ) -> Result<()> {
        self.state = SlotList::import(model, "SGD", &STATE, state)?;
        self.t = t;
        Ok(())
    }
}
