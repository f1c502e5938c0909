//! AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019,
//! <https://arxiv.org/abs/1711.05101>), following PyTorch's `torch.optim.AdamW` operation by
//! operation.
//!
//! Each parameter keeps two running averages of its gradient, `exp_avg` (the first moment `m`)
//! and `exp_avg_sq` (the second moment `v`), named as in PyTorch's optimizer state. The step
//! divides `m` by `√v`, so every coordinate moves about `lr` per step whatever the scale of its
//! gradient; the weight decay shrinks the weights directly instead of being added to the
//! gradient (where Adam's division would weaken it for parameters with large gradients).

use super::{flat, flat_mut, SlotList, CHUNK};
use crate::error::Result;
use crate::param::Parameters;
use ndarray::ArrayD;
use rayon::prelude::*;

/// AdamW's hyper-parameters. `Default` is PyTorch's: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
/// weight decay 0.01.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    pub lr: f32,
    pub betas: (f32, f32),
    pub eps: f32,
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// The AdamW optimizer: hyper-parameters, the step counter and per-parameter moments.
#[derive(Clone, Debug)]
pub struct AdamW {
    /// Learning rate of the next step (set it from a schedule before each step).
    pub lr: f32,
    pub betas: (f32, f32),
    pub eps: f32,
    pub weight_decay: f32,
    /// Steps taken so far (PyTorch's `step`); the bias corrections use it.
    pub t: u64,
    state: SlotList,
}

/// Names of the two state tensors per parameter, as in PyTorch's `AdamW.state`.
const STATE: [&str; 2] = ["exp_avg", "exp_avg_sq"];

impl AdamW {
    /// A fresh optimizer; its state is created on the first step.
    pub fn new(cfg: AdamWConfig) -> Self {
        AdamW {
            lr: cfg.lr,
            betas: cfg.betas,
            eps: cfg.eps,
            weight_decay: cfg.weight_decay,
            t: 0,
            state: SlotList::default(),
        }
    }

    // ANCHOR: step
    /// One update of every parameter of `model` from its `grad` (which is left unchanged).
    pub fn step(&mut self, model: &mut impl Parameters) {
        self.t += 1;
        let (b1, b2) = self.betas;
        let (lr, eps, wd) = (self.lr, self.eps, self.weight_decay);
        // $\hat m = m / (1-\beta_1^t)$ and $\hat v = v / (1-\beta_2^t)$, folded into two scalars
        // (computed in f64 as PyTorch does with Python floats)
        let t = self.t as f64;
        let bias1 = 1.0 - (b1 as f64).powf(t);
        let bias2_sqrt = (1.0 - (b2 as f64).powf(t)).sqrt() as f32;
        let step_size = (lr as f64 / bias1) as f32;
        self.state.walk(model, "AdamW", 2, &mut |p, bufs| {
            let [m, v] = bufs else { unreachable!() };
            flat_mut(&mut p.value)
                .par_chunks_mut(CHUNK)
                .zip(flat(&p.grad).par_chunks(CHUNK))
                .zip(flat_mut(m).par_chunks_mut(CHUNK))
                .zip(flat_mut(v).par_chunks_mut(CHUNK))
                .for_each(|(((w, g), m), v)| {
                    for i in 0..w.len() {
                        // $\theta \leftarrow \theta - \eta\lambda\theta$   (decoupled weight decay)
                        w[i] *= 1.0 - lr * wd;
                        // $m \leftarrow \beta_1 m + (1-\beta_1) g$   (as PyTorch's `lerp`)
                        m[i] += (1.0 - b1) * (g[i] - m[i]);
                        // $v \leftarrow \beta_2 v + (1-\beta_2) g^2$
                        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
                        // $\theta \leftarrow \theta - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)$
                        w[i] -= step_size * m[i] / (v[i].sqrt() / bias2_sqrt + eps);
                    }
                });
        });
    }
    // ANCHOR_END: step

    /// The moments as `(name, tensor)` pairs in visiting order, named `<param>.exp_avg` and
    /// `<param>.exp_avg_sq` (empty before the first step). Save [`AdamW::t`] beside them.
    pub fn export_state(&self) -> Vec<(String, ArrayD<f32>)> {
        self.state.export(&STATE)
    }

    /// Restores moments saved by [`AdamW::export_state`] after `t` steps, checking every name
    /// and shape against `model`'s parameters.
    pub fn import_state(
        &mut self,
        model: &mut impl Parameters,
        t: u64,
        state: Vec<(String, ArrayD<f32>)>,
    ) -> Result<()> {
        self.state = SlotList::import(model, "AdamW", &STATE, state)?;
        self.t = t;
        Ok(())
    }
}
