//! One optimisation step of an image diffusion model, as DiT's `train.py` takes it: the
//! noised batch through the model, the training loss, the backward pass, optional gradient
//! clipping, the AdamW step and the EMA update.
//!
//! The image trainer ([`super::train_images`]) calls it for every step and
//! `examples/bench_train.rs` times it, so the benchmark measures exactly the step a reader's
//! run takes, split into its three phases.
//!
//! **Two micro-batches.** The batch is cut in two halves that go through the model side by
//! side, as data-parallel training does across GPUs: the forward passes share the weights,
//! the second half's backward pass adds into a copy of the model's gradients, and the copy is
//! added into the model's own at the end (always in that order). On two cores this keeps
//! both busy through a whole pass — every small layer-norm, GELU and softmax included —
//! instead of meeting at each GEMM; for DiT-tiny/2 it measured 948 → 1042 img/s
//! (`examples/bench_train.rs`). The cut is always in two (a batch of one is not cut),
//! whatever the thread count, so 1 and 2 threads give the same bits. The loss is computed on
//! the whole batch: each sample's term depends on that sample alone.

use super::image_data::check_output;
use super::{training_losses, Diffusion, TrainableDenoiser};
use crate::error::Result;
use crate::optim::{clip_grad_norm, AdamW, Ema};
use crate::param::Parameters;
use ndarray::{concatenate, ArrayD, Axis, Slice};
use rayon::prelude::*;
use std::ops::Range;
use std::time::Instant;

/// One step's inputs: clean samples, timesteps, noise and (already dropped) labels.
pub struct StepBatch<'a> {
    pub x0: &'a ArrayD<f32>,    // (B, C, H, W)
    pub t: &'a [usize],         // (B)
    pub noise: &'a ArrayD<f32>, // (B, C, H, W), ε
    pub y: Option<&'a [usize]>, // (B), the null label where dropped
}

/// The optimiser's side of a step.
pub struct StepOptimizer<'a> {
    pub opt: &'a mut AdamW,
    pub ema: &'a mut Ema,
    /// Clip the global gradient norm to this value first.
    pub grad_clip: Option<f32>,
}

/// Wall seconds of each phase of a step.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepTimes {
    /// $x_t$, the model's forward pass and the loss with its gradient `d_out`.
    pub forward: f64,
    /// The model's backward pass (gradients zeroed first).
    pub backward: f64,
    /// Clipping, AdamW and the EMA update.
    pub optimizer: f64,
}

impl StepTimes {
    /// The whole step.
    pub fn total(&self) -> f64 {
        self.forward + self.backward + self.optimizer
    }
}

// ANCHOR: train_step
/// Trains `model` on one batch and returns the loss and the time each phase took. `name`
/// only labels the error when the model's output does not fit the diffusion.
pub fn train_step<M: TrainableDenoiser>(
    model: &mut M,
    diffusion: &Diffusion,
    batch: &StepBatch,
    optim: &mut StepOptimizer,
    name: &str,
) -> Result<(f32, StepTimes)> {
    let s0 = Instant::now();
    // $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}\,\varepsilon$
    let x_t = diffusion.schedule.q_sample(batch.x0, batch.t, batch.noise);
    // the micro-batches' forward passes, side by side   (B/2, …) each
    let b = batch.t.len();
    let cut = b.div_ceil(2);
    let parts: Vec<Range<usize>> = [0..cut, cut..b]
        .into_iter()
        .filter(|r| !r.is_empty())
        .collect();
    let forward: Vec<_> = parts
        .par_iter()
        .map(|r| {
            let y = batch.y.map(|y| &y[r.clone()]);
            model.forward_train(&rows(&x_t, r), &batch.t[r.clone()], y)
        })
        .collect();
    let outs: Vec<_> = forward.iter().map(|(out, _)| out.view()).collect();
    let out = concatenate(Axis(0), &outs).expect("same sample shape");
    check_output(out.shape(), batch.x0.shape()[1], diffusion, name)?;
    let l = training_losses(diffusion, batch.x0, &x_t, batch.t, batch.noise, &out, None);
    let s1 = Instant::now();
    // their backward passes: the first into the model, each other into a copy of it
    let mut copies = vec![model.clone(); parts.len() - 1];
    let mut models: Vec<&mut M> = std::iter::once(&mut *model).chain(&mut copies).collect();
    models
        .par_iter_mut()
        .zip(&forward)
        .zip(&parts)
        .for_each(|((m, (_, cache)), r)| {
            m.zero_grad();
            m.backward_train(cache, &rows(&l.d_out, r));
        });
    drop(forward);
    for copy in &mut copies {
        add_grads(model, copy);
    }
    let s2 = Instant::now();
    if let Some(max_norm) = optim.grad_clip {
        clip_grad_norm(model, max_norm);
    }
    optim.opt.step(model);
    optim.ema.update(model);
    let s3 = Instant::now();
    let times = StepTimes {
        forward: (s1 - s0).as_secs_f64(),
        backward: (s2 - s1).as_secs_f64(),
        optimizer: (s3 - s2).as_secs_f64(),
    };
    Ok((l.loss, times))
}
// ANCHOR_END: train_step

/// `model.grad += copy.grad` for every parameter, visited in the same order.
fn add_grads<M: Parameters>(model: &mut M, copy: &mut M) {
    let mut grads = Vec::new();
    copy.visit("", &mut |_, p| grads.push(std::mem::take(&mut p.grad)));
    let mut grads = grads.into_iter();
    model.visit("", &mut |_, p| {
        p.grad += &grads.next().expect("the same parameters")
    });
}

/// Samples `r` of a batch, as a new array.
fn rows(a: &ArrayD<f32>, r: &Range<usize>) -> ArrayD<f32> {
    a.slice_axis(Axis(0), Slice::from(r.clone())).to_owned()
}
