//! The trainer shared by every diffusion model (the U-Net, DiT) and every rank of data
//! (images, clips): class-conditional diffusion on pixels or on VAE latents, written once
//! against [`TrainableDenoiser`].
//!
//! One step, as DiT's `train.py`: draw a batch (for latents a fresh
//! $z = s\,(\mu + \sigma\varepsilon)$ from each stored posterior), a uniform timestep and noise,
//! replace 10 % of the conditions by the null condition (so the same network also learns the
//! unconditional model that classifier-free guidance needs), compute
//! [`training_losses`](crate::diffusion::training_losses), backpropagate, optionally clip, take
//! an AdamW step and update the EMA weights. After training the EMA weights are copied into
//! the model, sampled ([`super::preview`]) and saved as a safetensors checkpoint.

use super::data::TrainData;
use super::metadata::run_metadata;
use super::options::{validate, ModelInfo, TrainOptions};
use super::preview::{load_decoder, sample_with_ema, write_figures, FigureOptions};
use super::state::{load_train_state, save_model, save_train_state, seed_for};
use super::step::{train_step, StepBatch, StepOptimizer};
use crate::data::Batcher;
use crate::diffusion::{sample_uniform, Condition, Diffusion, TrainableDenoiser};
use crate::error::{Error, Result};
use crate::io::progress::{progress, say};
use crate::optim::Ema;
use crate::tensor::{init, rng};
use std::path::PathBuf;
use std::time::Instant;

/// Mixed into the seed of the frame masks' generator.
const MASK_SEED: u64 = 0x6d61_736b;

/// What a run measured.
#[derive(Clone, Debug)]
pub struct TrainReport {
    pub params: usize,
    /// `flops_per_sample` / 1e9 (the DiT paper's "Gflops", which count multiply-adds).
    pub gflops: f64,
    /// Mean loss of the last 100 steps (or all, if fewer).
    pub final_loss: f32,
    /// The loss of every step.
    pub losses: Vec<f32>,
    /// Steps this run took (fewer than the options' `steps` when it resumed a checkpoint).
    pub trained_steps: u64,
    pub seconds_per_step: f64,
    pub images_per_second: f64,
    pub train_seconds: f64,
    pub sample_seconds: f64,
    pub wall_seconds: f64,
    pub checkpoint: PathBuf,
}

/// Trains `model` on `data`, samples it, writes the figures and the checkpoint into
/// `opts.out`, and prints the figures; the last stdout line is one JSON object. On return the
/// model holds the EMA weights (those sampled and saved). With `opts.resume` it first restores
/// the weights, the EMA, AdamW and the step from a training checkpoint and continues.
pub fn train<M: TrainableDenoiser>(
    model: &mut M,
    info: &ModelInfo,
    diffusion: &Diffusion,
    data: &TrainData,
    opts: &TrainOptions,
) -> Result<TrainReport> {
    let start = Instant::now();
    crate::tensor::heap::retain_freed_memory();
    validate(opts, info, data)?;
    if opts.frame_mask.is_some() && (!model.reads_frame_masks() || data.sample_shape().len() != 4) {
        return Err(Error::new(
            format!(
                "--frame-mask: the model `{}` on {} does not take frame masks",
                info.name,
                opts.data.name()
            ),
            "frame masks train video models (--model video-…) on latent clips; drop --frame-mask",
        ));
    }
    // The decoder is needed only at the end, but a missing VAE should fail now, not later.
    let vae = if data.is_latent() {
        Some(load_decoder(&opts.vae, data.channels())?)
    } else {
        None
    };
    let shape = data.sample_shape().to_vec();
    let params = model.num_params();
    let gflops = info.flops_per_sample as f64 / 1e9;
    let mut opt = opts.optimizer();
    let mut ema = Ema::new(model, opts.ema_decay).with_warmup();
    let meta = run_metadata(info, diffusion, data, opts);
    let (first, mut losses) = match &opts.resume {
        Some(path) => {
            let r = load_train_state(path, model, &mut opt, &mut ema, &meta)?;
            if r.step >= opts.steps {
                return Err(Error::new(
                    format!(
                        "{} is already at step {} of {}",
                        path.display(),
                        r.step,
                        opts.steps
                    ),
                    "pass a larger --steps to train further (with a constant learning rate)",
                ));
            }
            println!("resumed from {} at step {}", path.display(), r.step);
            (r.step, r.losses)
        }
        None => (0, Vec::with_capacity(opts.steps as usize)),
    };
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    println!(
        "train {}: {} ({} samples of {}, {} classes), {params} parameters, {gflops:.4} Gflops per forward, {} steps of batch {}",
        info.name,
        opts.data.name(),
        data.len(),
        dims.join("×"),
        data.num_classes(),
        opts.steps,
        opts.batch
    );
    // The batch order: one shuffling generator, replayed to the resumed step.
    let mut batcher = Batcher::new(data.len(), opts.batch, opts.seed ^ 0xba7c)?;
    for _ in 0..first {
        batcher.next_indices();
    }
    let sched = opts.lr_schedule();
    let t_max = diffusion.num_timesteps();
    // Every sample's condition (its class label or caption), and the figures' rows (one per
    // class).
    let conditions = match info.null_label {
        _ if info.captions => data.caption_condition()?,
        Some(_) => Condition::labels(&data.labels),
        None => Condition::None,
    };
    // a text model's figures are unconditional: the null caption
    let fig = FigureOptions::new(opts, data, info.null_label.filter(|_| !info.captions));
    let bar = progress(opts.steps, &format!("train {}", info.name));
    bar.set_position(first);
    let report_every = opts.steps.div_ceil(10);
    let train_start = Instant::now();
    let mut copy = None; // the second micro-batch's model, made on the first step
    for step in first..opts.steps {
        // ANCHOR: train_loop
        let mut r = rng(seed_for(opts.seed, step)); // this step's randomness, from (seed, step)
        let idx = batcher.next_indices();
        let x0 = data.batch(&idx, &mut r); // (B, C, …)
        let t = sample_uniform(opts.batch, t_max, &mut r);
        let noise = init::normal(x0.shape(), 1.0, &mut r); // ε
        let y = conditions.select(&idx).dropped(opts.label_dropout, &mut r);
        // the frame masks from their own generator: runs without them draw the same batches
        let given = opts.frame_mask.as_ref().map(|m| {
            m.draw(
                opts.batch,
                shape[1],
                &mut rng(seed_for(opts.seed ^ MASK_SEED, step)),
            )
        });
        opt.lr = sched.lr_at(step);
        let batch = StepBatch {
            x0: &x0,
            t: &t,
            noise: &noise,
            y: &y,
            given: given.as_ref(),
        };
        let mut optim = StepOptimizer {
            opt: &mut opt,
            ema: &mut ema,
            copy: &mut copy,
            grad_clip: opts.grad_clip,
        };
        let (loss, _) = train_step(model, diffusion, &batch, &mut optim, &info.name)?;
        // ANCHOR_END: train_loop
        if !loss.is_finite() {
            return Err(Error::new(
                format!("the loss became {} at step {step}", loss),
                "lower the learning rate (--lr) or clip the gradients",
            ));
        }
        losses.push(loss);
        let done = step + 1;
        let secs = train_start.elapsed().as_secs_f64();
        let img_s = (done - first) as f64 * opts.batch as f64 / secs.max(1e-9);
        bar.set_message(format!("loss {:.4} {img_s:.0} img/s", loss));
        bar.inc(1);
        let say = |line: String| say(&bar, line);
        if done % report_every == 0 || done == opts.steps {
            let recent = &losses[losses.len().saturating_sub(report_every as usize)..];
            let mean = recent.iter().sum::<f32>() / recent.len() as f32;
            let eta = secs / (done - first) as f64 * (opts.steps - done) as f64;
            say(format!(
                "  step {done}/{}: loss {mean:.4} (mean of the last {}), {img_s:.0} img/s, ETA {eta:.0} s",
                opts.steps,
                recent.len()
            ));
        }
        if opts.save_every > 0 && (done % opts.save_every == 0 || done == opts.steps) {
            let path = opts.out.join(format!("train_{done}.safetensors"));
            save_train_state(&path, model, &info.buffers, &opt, &ema, &losses, &meta)?;
            say(format!("  saved {}", path.display()));
        }
        if opts.sample_every > 0 && done % opts.sample_every == 0 && done < opts.steps {
            let path = sample_with_ema(model, &mut ema, diffusion, vae.as_ref(), &fig, done)?;
            say(format!("  wrote {}", path.display()));
        }
    }
    bar.finish_and_clear();
    let train_seconds = train_start.elapsed().as_secs_f64();
    let trained = opts.steps - first;

    // Sample and save with the averaged weights.
    ema.copy_to(model);
    let sample_start = Instant::now();
    write_figures(&*model, diffusion, vae.as_ref(), &fig, &losses)?;
    let sample_seconds = sample_start.elapsed().as_secs_f64();

    let checkpoint = opts.out.join(format!("{}.safetensors", info.name));
    let final_loss = losses.iter().rev().take(100).sum::<f32>() / losses.len().min(100) as f32;
    let mut meta = meta;
    meta.insert("weights".into(), "ema".into());
    meta.insert("train.final_loss".into(), format!("{final_loss:.5}"));
    save_model(&checkpoint, model, &info.buffers, &meta)?;
    let wall_seconds = start.elapsed().as_secs_f64();
    let report = TrainReport {
        params,
        gflops,
        final_loss,
        losses,
        trained_steps: trained,
        seconds_per_step: train_seconds / trained as f64,
        images_per_second: (trained as f64 * opts.batch as f64) / train_seconds,
        train_seconds,
        sample_seconds,
        wall_seconds,
        checkpoint,
    };
    print_report(&report, info, opts);
    Ok(report)
}

fn print_report(r: &TrainReport, info: &ModelInfo, opts: &TrainOptions) {
    println!(
        "trained {} steps{} in {:.1} s ({:.3} s/step, {:.0} img/s); mean loss of the last {} steps {:.4}; sampled in {:.1} s",
        r.trained_steps,
        if r.trained_steps < opts.steps {
            format!(" (resumed at step {}, now at {})", opts.steps - r.trained_steps, opts.steps)
        } else {
            String::new()
        },
        r.train_seconds,
        r.seconds_per_step,
        r.images_per_second,
        r.losses.len().min(100),
        r.final_loss,
        r.sample_seconds
    );
    println!(
        "wrote {}/{{samples.png (.gif for clips),denoise.png,loss.png}} and {}",
        opts.out.display(),
        r.checkpoint.display()
    );
    println!(
        "{{\"model\":\"{}\",\"params\":{},\"gflops\":{:.5},\"final_loss\":{:.5},\"seconds_per_step\":{:.4},\"steps\":{},\"trained_steps\":{},\"batch\":{},\"images_per_second\":{:.1},\"train_seconds\":{:.1},\"sample_seconds\":{:.1},\"wall_seconds\":{:.1},\"guidance\":{},\"data\":\"{}\"}}",
        info.name,
        r.params,
        r.gflops,
        r.final_loss,
        r.seconds_per_step,
        opts.steps,
        r.trained_steps,
        opts.batch,
        r.images_per_second,
        r.train_seconds,
        r.sample_seconds,
        r.wall_seconds,
        opts.guidance,
        opts.data.name().replace('"', "'")
    );
}
