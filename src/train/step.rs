//! One optimisation step of a diffusion model, as DiT's `train.py` takes it: the
//! noised batch through the model, the training loss, the backward pass, optional gradient
//! clipping, the AdamW step and the EMA update.
//!
//! The trainer ([`super::trainer`]) calls it for every step and
//! `examples/bench_train.rs` times it, so the benchmark measures exactly the step a reader's
//! run takes, split into its three phases.
//!
//! **Two micro-batches.** The batch is cut in two halves that go through the model side by
//! side, as data-parallel training does across GPUs: the forward passes share the weights,
//! the second half's backward pass fills the gradients of a copy of the model (kept between
//! steps, its weights refreshed each step), and they are added into the model's own at the
//! end (always in that order). On two cores this keeps
//! both busy through a whole pass — every small layer-norm, GELU and softmax included —
//! instead of meeting at each GEMM; for DiT-tiny/2 it measured 948 → 1042 img/s
//! (`examples/bench_train.rs`). The cut is always in two (a batch of one is not cut),
//! whatever the thread count, so 1 and 2 threads give the same bits. The loss is computed on
//! the whole batch: each sample's term depends on that sample alone.

use crate::diffusion::{
    training_losses, training_losses_masked, Condition, Diffusion, FrameMask, TrainableDenoiser,
};
use crate::error::{Error, Result};
use crate::optim::{clip_grad_norm, AdamW, Ema};
use crate::param::Parameters;
use ndarray::{concatenate, ArrayD, Axis, Slice};
use rayon::prelude::*;
use std::ops::Range;
use std::time::Instant;

/// One step's inputs: clean samples, timesteps, noise and (already dropped) conditions.
pub struct StepBatch<'a> {
    pub x0: &'a ArrayD<f32>,    // (B, C, …)
    pub t: &'a [usize],         // (B)
    pub noise: &'a ArrayD<f32>, // (B, C, …), ε
    pub y: &'a Condition,       // (B), the null condition where dropped
    /// The frames each clip is given (clean, at t = 0, out of the loss), if any.
    pub given: Option<&'a FrameMask>,
}

/// The optimiser's side of a step, and the model copy kept between steps.
pub struct StepOptimizer<'a, M> {
    pub opt: &'a mut AdamW,
    pub ema: &'a mut Ema,
    /// Clip the global gradient norm to this value first.
    pub grad_clip: Option<f32>,
    /// The copy of the model whose gradients the second micro-batch fills (`None` before the
    /// first step). Kept, not made anew each step: for DiT-S/2 a fresh copy is 260 MB of new
    /// pages per step.
    pub copy: &'a mut Option<M>,
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

// ANCHOR: train_step
/// Trains `model` on one batch and returns the loss and the time each phase took. `name`
/// only labels the error when the model's output does not fit the diffusion.
pub fn train_step<M: TrainableDenoiser>(
    model: &mut M,
    diffusion: &Diffusion,
    batch: &StepBatch,
    optim: &mut StepOptimizer<M>,
    name: &str,
) -> Result<(f32, StepTimes)> {
    let s0 = Instant::now();
    // $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}\,\varepsilon$
    let mut x_t = diffusion.schedule.q_sample(batch.x0, batch.t, batch.noise);
    if let Some(g) = batch.given {
        g.write_given(&mut x_t, batch.x0); // the given frames stay clean
    }
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
            let (y, t) = (batch.y.slice(r.clone()), &batch.t[r.clone()]);
            match batch.given {
                Some(g) => model.forward_train_given(&rows(&x_t, r), t, &y, &g.slice(r.clone())),
                None => model.forward_train(&rows(&x_t, r), t, &y),
            }
        })
        .collect();
    let outs: Vec<_> = forward.iter().map(|(out, _)| out.view()).collect();
    let out = concatenate(Axis(0), &outs).expect("same sample shape");
    check_output(out.shape(), batch.x0.shape()[1], diffusion, name)?;
    let (x0, t, noise) = (batch.x0, batch.t, batch.noise);
    let l = match batch.given {
        // the given frames out of the loss and its gradient
        Some(g) => training_losses_masked(diffusion, x0, &x_t, t, noise, &out, &g.keep(x0.shape())),
        None => training_losses(diffusion, x0, &x_t, t, noise, &out, None),
    };
    let s1 = Instant::now();
    // their backward passes: the first into the model, the second into the kept copy
    let two = parts.len() == 2;
    let copy = two.then(|| {
        let copy = optim.copy.get_or_insert_with(|| model.clone());
        sync_weights(model, copy);
        copy
    });
    let mut models: Vec<&mut M> = std::iter::once(&mut *model).chain(copy).collect();
    models
        .par_iter_mut()
        .zip(&forward)
        .zip(&parts)
        .for_each(|((m, (_, cache)), r)| {
            m.zero_grad();
            m.backward_train(cache, &rows(&l.d_out, r));
        });
    drop(forward);
    if let (true, Some(copy)) = (two, optim.copy.as_mut()) {
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

/// `copy.value = model.value` for every parameter (visited in the same order), in place.
fn sync_weights<M: Parameters>(model: &mut M, copy: &mut M) {
    let mut values = Vec::new();
    copy.visit("", &mut |_, p| values.push(std::mem::take(&mut p.value)));
    let mut values = values.into_iter();
    let mut synced = Vec::new();
    model.visit("", &mut |_, p| {
        let mut v = values.next().expect("the same parameters");
        v.assign(&p.value);
        synced.push(v);
    });
    let mut synced = synced.into_iter();
    copy.visit("", &mut |_, p| {
        p.value = synced.next().expect("the same parameters")
    });
}

/// `model.grad += copy.grad` for every parameter, visited in the same order.
fn add_grads<M: Parameters>(model: &mut M, copy: &mut M) {
    let mut grads = Vec::new();
    copy.visit("", &mut |_, p| grads.push(std::mem::take(&mut p.grad)));
    let mut each = grads.iter();
    model.visit("", &mut |_, p| {
        p.grad += each.next().expect("the same parameters")
    });
    let mut grads = grads.into_iter();
    copy.visit("", &mut |_, p| {
        p.grad = grads.next().expect("the same parameters")
    });
}

/// Samples `r` of a batch, as a new array.
fn rows(a: &ArrayD<f32>, r: &Range<usize>) -> ArrayD<f32> {
    a.slice_axis(Axis(0), Slice::from(r.clone())).to_owned()
}

/// The model must output `C` channels, or `2C` when the diffusion learns the variance.
pub fn check_output(shape: &[usize], c: usize, diffusion: &Diffusion, name: &str) -> Result<()> {
    let want = if diffusion.learns_variance() {
        2 * c
    } else {
        c
    };
    if shape.len() < 2 || shape[1] != want {
        return Err(Error::new(
            format!("the model `{name}` outputs shape {shape:?}, but the diffusion needs {want} channels"),
            format!(
                "build the model with out_channels = {want} ({} the variance)",
                if diffusion.learns_variance() { "learning" } else { "not learning" }
            ),
        ));
    }
    Ok(())
}
