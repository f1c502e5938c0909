//! The training loop over [`Buckets`]: the single-shape trainer's step ([`train_step`]: the
//! same loss, AdamW, warm-up and cosine decay, clipping and EMA), with each batch drawn from
//! one bucket. The single-shape trainer ([`super::train`]) is left as it is, so its runs keep
//! their bits; this one writes the EMA checkpoint and no figures (the caller samples the shapes
//! it wants).

use super::buckets::{shape_name, Buckets};
use super::metadata::run_metadata;
use super::options::{validate, ModelInfo, TrainOptions};
use super::state::{save_model, seed_for};
use super::step::{train_step, StepBatch, StepOptimizer};
use crate::diffusion::{sample_uniform, Condition, Diffusion, TrainableDenoiser};
use crate::error::{Error, Result};
use crate::io::progress::{progress, say};
use crate::optim::Ema;
use crate::tensor::{init, rng};
use std::path::PathBuf;
use std::time::Instant;

/// What a bucketed run measured.
#[derive(Clone, Debug)]
pub struct BucketReport {
    /// The loss of every step.
    pub losses: Vec<f32>,
    /// The bucket of every step.
    pub bucket_of_step: Vec<usize>,
    /// Wall seconds of every step (batch drawing included).
    pub step_seconds: Vec<f64>,
    pub train_seconds: f64,
    /// Mean loss of the last 100 steps.
    pub final_loss: f32,
    pub checkpoint: PathBuf,
}

// ANCHOR: train_buckets
/// Trains `model` on `data` for `opts.steps` steps of `opts.batch` samples, each batch from
/// one bucket; on return the model holds the EMA weights, also saved to
/// `opts.out/<name>.safetensors`.
pub fn train_buckets<M: TrainableDenoiser>(
    model: &mut M,
    info: &ModelInfo,
    diffusion: &Diffusion,
    data: &Buckets,
    opts: &TrainOptions,
) -> Result<BucketReport> {
    if opts.resume.is_some() {
        return Err(Error::new(
            "bucketed training does not resume",
            "leave out --resume",
        ));
    }
    for b in &data.buckets {
        validate(opts, info, b)?;
    }
    let mut batchers = data.batchers(opts.batch, opts.seed)?;
    // every bucket's conditions: class labels (a text model's captions are not wired here)
    let conditions: Vec<Condition> = match info.null_label {
        _ if info.captions => {
            return Err(Error::new(
                "bucketed training of a text-conditioned model",
                "train a class-conditioned model on buckets",
            ))
        }
        Some(_) => data
            .buckets
            .iter()
            .map(|b| Condition::labels(&b.labels))
            .collect(),
        None => vec![Condition::None; data.buckets.len()],
    };
    let shapes: Vec<String> = data
        .buckets
        .iter()
        .map(|b| format!("{} ({})", shape_name(b.sample_shape()), b.len()))
        .collect();
    println!(
        "train {} on {} buckets: {}; {} steps of batch {}",
        info.name,
        data.buckets.len(),
        shapes.join(", "),
        opts.steps,
        opts.batch
    );
    let mut opt = opts.optimizer();
    let mut ema = Ema::new(model, opts.ema_decay).with_warmup();
    let sched = opts.lr_schedule();
    let t_max = diffusion.num_timesteps();
    let bar = progress(opts.steps, &format!("train {} (buckets)", info.name));
    let (mut losses, mut bucket_of_step, mut step_seconds) = (vec![], vec![], vec![]);
    let mut copy = None;
    let start = Instant::now();
    for step in 0..opts.steps {
        let s0 = Instant::now();
        let mut r = rng(seed_for(opts.seed, step));
        // the bucket, then a batch of its clips   (B, C, F_k, H_k, W_k)
        let (k, idx, x0) = data.next_batch(&mut batchers, &mut r);
        let t = sample_uniform(opts.batch, t_max, &mut r);
        let noise = init::normal(x0.shape(), 1.0, &mut r); // ε
        let y = conditions[k]
            .select(&idx)
            .dropped(opts.label_dropout, &mut r);
        opt.lr = sched.lr_at(step);
        let batch = StepBatch {
            x0: &x0,
            t: &t,
            noise: &noise,
            y: &y,
            given: None, // frame masks are not drawn in bucket mode
        };
        let mut optim = StepOptimizer {
            opt: &mut opt,
            ema: &mut ema,
            copy: &mut copy,
            grad_clip: opts.grad_clip,
        };
        let (loss, _) = train_step(model, diffusion, &batch, &mut optim, &info.name)?;
        if !loss.is_finite() {
            return Err(Error::new(
                format!("the loss became {loss} at step {step}"),
                "lower the learning rate (--lr) or clip the gradients",
            ));
        }
        losses.push(loss);
        bucket_of_step.push(k);
        step_seconds.push(s0.elapsed().as_secs_f64());
        bar.set_message(format!("loss {loss:.4}"));
        bar.inc(1);
        let done = step + 1;
        if done % opts.steps.div_ceil(10) == 0 || done == opts.steps {
            let recent = &losses[losses.len().saturating_sub(100)..];
            let mean = recent.iter().sum::<f32>() / recent.len() as f32;
            say(
                &bar,
                format!("  step {done}/{}: loss {mean:.4}", opts.steps),
            );
        }
    }
    bar.finish_and_clear();
    let train_seconds = start.elapsed().as_secs_f64();
    ema.copy_to(model);
    let final_loss = losses.iter().rev().take(100).sum::<f32>() / losses.len().min(100) as f32;
    let mut meta = run_metadata(info, diffusion, &data.buckets[0], opts);
    meta.insert("weights".into(), "ema".into());
    meta.insert("train.final_loss".into(), format!("{final_loss:.5}"));
    meta.insert("train.buckets".into(), shapes.join(", "));
    let checkpoint = opts.out.join(format!("{}.safetensors", info.name));
    std::fs::create_dir_all(&opts.out).map_err(|e| {
        Error::new(
            format!("cannot create {}: {e}", opts.out.display()),
            "pass an --out folder you can write",
        )
    })?;
    save_model(&checkpoint, model, &info.buffers, &meta)?;
    Ok(BucketReport {
        losses,
        bucket_of_step,
        step_seconds,
        train_seconds,
        final_loss,
        checkpoint,
    })
}
// ANCHOR_END: train_buckets
