//! The image trainer shared by every image model (the U-Net, DiT):
//! class-conditional diffusion on pixels or on VAE latents, written once against
//! [`TrainableDenoiser`].
//!
//! One step, as DiT's `train.py`: draw a batch (for latents a fresh
//! $z = s\,(\mu + \sigma\varepsilon)$ from each stored posterior), a uniform timestep and noise,
//! replace 10 % of the labels by the null label (so the same network also learns the
//! unconditional model that classifier-free guidance needs), compute
//! [`training_losses`], backpropagate, optionally clip, take an AdamW step and update the EMA
//! weights. After training the EMA weights are copied into the model, sampled with DDIM and
//! guidance ([`super::sample_images`]) and saved as a safetensors checkpoint.

use super::image_data::{load_decoder, validate, ImageSource, TrainData};
use super::sample_images::{write_figures, FigureOptions};
use super::train_state::{
    load_train_state, run_metadata, sample_with_ema, save_model, save_train_state, seed_for,
};
use super::train_step::{train_step, StepBatch, StepOptimizer};
use super::{sample_uniform, Diffusion, TrainableDenoiser};
use crate::data::Batcher;
use crate::error::{Error, Result};
use crate::optim::{AdamW, AdamWConfig, CosineSchedule, Ema};
use crate::tensor::{init, rng, Rng};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::ArrayD;
use ndarray_rand::rand::Rng as _;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// Everything a run needs besides the model and the diffusion.
#[derive(Clone, Debug)]
pub struct TrainImagesOptions {
    pub data: ImageSource,
    /// The VAE checkpoint that decodes latents for the figures (unused in pixel space).
    pub vae: PathBuf,
    /// Images to load in pixel space (generated sets make this many).
    pub n_images: usize,
    /// Side of the images in pixel space.
    pub pixel_size: usize,
    pub steps: u64,
    pub batch: usize,
    /// Peak learning rate of AdamW (DiT: 1e-4, constant).
    pub lr: f32,
    pub weight_decay: f32,
    /// Linear warm-up steps of the learning rate.
    pub warmup_steps: u64,
    /// Cosine decay of the learning rate to lr/10 at the last step (DiT: off).
    pub lr_decay: bool,
    /// Clip the global gradient norm to this (`None`: no clipping).
    pub grad_clip: Option<f32>,
    /// Target EMA decay (DiT 0.9999), with the warm-up `min(decay, (1+n)/(10+n))`.
    pub ema_decay: f32,
    /// Probability of replacing a label by the null label (DiT: 0.1).
    pub label_dropout: f32,
    /// Classifier-free guidance scale of the samples (1 = no guidance).
    pub guidance: f32,
    /// DDIM steps of the samples.
    pub sample_steps: usize,
    /// Samples per class in `samples.png` (one row per class).
    pub samples_per_class: usize,
    pub seed: u64,
    /// Figures and the checkpoint go here.
    pub out: PathBuf,
    /// Every this many steps, a small grid of EMA samples (`samples_<step>.png`; 0: never).
    pub sample_every: u64,
    /// Every this many steps and at the end, a training checkpoint
    /// (`train_<step>.safetensors`, see [`super::train_state`]; 0: never).
    pub save_every: u64,
    /// Continue from this training checkpoint (same model, data and options).
    pub resume: Option<PathBuf>,
}

impl Default for TrainImagesOptions {
    fn default() -> Self {
        TrainImagesOptions {
            data: ImageSource::Latents(PathBuf::from("out/latents/digits.safetensors")),
            vae: PathBuf::from("out/vae/vae.safetensors"),
            n_images: 10_000,
            pixel_size: 32,
            steps: 1000,
            batch: 64,
            lr: 1e-4,
            weight_decay: 0.0,
            warmup_steps: 0,
            lr_decay: false,
            grad_clip: None,
            ema_decay: 0.9999,
            label_dropout: 0.1,
            guidance: 4.0,
            sample_steps: 50,
            samples_per_class: 8,
            seed: 0,
            out: PathBuf::from("out/model"),
            sample_every: 0,
            save_every: 0,
            resume: None,
        }
    }
}

/// What the trainer needs to know about the model beyond [`TrainableDenoiser`].
#[derive(Clone, Debug)]
pub struct ModelInfo {
    /// Names the checkpoint (`<name>.safetensors`) and the logs.
    pub name: String,
    /// Channels the model takes.
    pub in_channels: usize,
    /// The label meaning "no class" (`None`: an unconditional model, trained without labels).
    pub null_label: Option<usize>,
    /// Multiply-accumulates of one forward pass of one sample at the data's size.
    pub flops_per_sample: u64,
    /// The model's config, stored in the checkpoint.
    pub metadata: BTreeMap<String, String>,
    /// Tensors the checkpoints hold beside the parameters (DiT's fixed `pos_embed`).
    pub buffers: Vec<(String, ArrayD<f32>)>,
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct TrainImagesReport {
    pub params: usize,
    /// `flops_per_sample` / 1e9 (the DiT paper's "Gflops", which count multiply-adds).
    pub gflops: f64,
    /// Mean loss of the last 100 steps (or all, if fewer).
    pub final_loss: f32,
    /// The loss of every step.
    pub losses: Vec<f32>,
    pub seconds_per_step: f64,
    pub images_per_second: f64,
    pub train_seconds: f64,
    pub sample_seconds: f64,
    pub wall_seconds: f64,
    pub checkpoint: PathBuf,
}

// ANCHOR: label_dropout
/// Each label replaced by `null` with probability `p` (DiT's `token_drop`): the model learns
/// $p(x)$ beside $p(x \mid y)$, which classifier-free guidance extrapolates between.
pub fn drop_labels(labels: &[usize], null: usize, p: f32, r: &mut Rng) -> Vec<usize> {
    labels
        .iter()
        .map(|&y| if r.random::<f32>() < p { null } else { y })
        .collect()
}
// ANCHOR_END: label_dropout

/// The progress bar: loss, images per second and time left (on stderr, hidden off a terminal).
fn progress_bar(steps: u64, name: &str) -> ProgressBar {
    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("train {name}"));
    bar
}

/// Trains `model` on `data`, samples it, writes the figures and the checkpoint into
/// `opts.out`, and prints the figures; the last stdout line is one JSON object. On return the
/// model holds the EMA weights (those sampled and saved). With `opts.resume` it first restores
/// the weights, the EMA, AdamW and the step from a training checkpoint and continues.
pub fn train_images<M: TrainableDenoiser>(
    model: &mut M,
    info: &ModelInfo,
    diffusion: &Diffusion,
    data: &TrainData,
    opts: &TrainImagesOptions,
) -> Result<TrainImagesReport> {
    let start = Instant::now();
    crate::tensor::heap::retain_freed_memory();
    validate(opts, info, data)?;
    // The decoder is needed only at the end, but a missing VAE should fail now, not later.
    let vae = if data.is_latent() {
        Some(load_decoder(&opts.vae, data)?)
    } else {
        None
    };
    let (c, h, w) = data.sample_shape();
    let params = model.num_params();
    let gflops = info.flops_per_sample as f64 / 1e9;
    let mut opt = AdamW::new(AdamWConfig {
        lr: opts.lr,
        weight_decay: opts.weight_decay,
        ..AdamWConfig::default()
    });
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
    println!(
        "train {}: {} ({} samples of {c}×{h}×{w}, {} classes), {params} parameters, {gflops:.4} Gflops per forward, {} steps of batch {}",
        info.name,
        opts.data.name(),
        data.len(),
        data.num_classes(),
        opts.steps,
        opts.batch
    );
    // The batch order: one shuffling generator, replayed to the resumed step.
    let mut batcher = Batcher::new(data.len(), opts.batch, opts.seed ^ 0xba7c)?;
    for _ in 0..first {
        batcher.next_indices();
    }
    let sched = CosineSchedule {
        base_lr: opts.lr,
        min_lr: if opts.lr_decay {
            opts.lr * 0.1
        } else {
            opts.lr
        },
        warmup_steps: opts.warmup_steps,
        total_steps: opts.steps,
    };
    let t_max = diffusion.num_timesteps();
    let fig = FigureOptions {
        shape: (c, h, w),
        classes: data.num_classes(),
        null_label: info.null_label,
        guidance: opts.guidance,
        sample_steps: opts.sample_steps,
        per_class: opts.samples_per_class,
        scale: data.scale,
        seed: opts.seed,
        out: opts.out.clone(),
    };
    let bar = progress_bar(opts.steps, &info.name);
    bar.set_position(first);
    let report_every = opts.steps.div_ceil(10);
    let train_start = Instant::now();
    let mut copy = None; // the second micro-batch's model, made on the first step
    for step in first..opts.steps {
        // ANCHOR: train_loop
        let mut r = rng(seed_for(opts.seed, step)); // this step's randomness, from (seed, step)
        let idx = batcher.next_indices();
        let x0 = data.batch(&idx, &mut r); // (B, C, H, W)
        let t = sample_uniform(opts.batch, t_max, &mut r);
        let noise = init::normal(x0.shape(), 1.0, &mut r); // ε
        let y = info.null_label.map(|null| {
            let labels: Vec<usize> = idx.iter().map(|&i| data.labels[i]).collect();
            drop_labels(&labels, null, opts.label_dropout, &mut r)
        });
        opt.lr = sched.lr_at(step);
        let batch = StepBatch {
            x0: &x0,
            t: &t,
            noise: &noise,
            y: y.as_deref(),
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
        let say = |line: String| {
            if bar.is_hidden() {
                println!("{line}");
            } else {
                bar.println(line);
            }
        };
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
            let path = opts.out.join(format!("samples_{done}.png"));
            sample_with_ema(model, &mut ema, diffusion, vae.as_ref(), &fig, &path)?;
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
    let report = TrainImagesReport {
        params,
        gflops,
        final_loss,
        losses,
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

fn print_report(r: &TrainImagesReport, info: &ModelInfo, opts: &TrainImagesOptions) {
    println!(
        "trained {} steps in {:.1} s ({:.3} s/step, {:.0} img/s); mean loss of the last {} steps {:.4}; sampled in {:.1} s",
        opts.steps,
        r.train_seconds,
        r.seconds_per_step,
        r.images_per_second,
        r.losses.len().min(100),
        r.final_loss,
        r.sample_seconds
    );
    println!(
        "wrote {}/{{samples,denoise,loss}}.png and {}",
        opts.out.display(),
        r.checkpoint.display()
    );
    println!(
        "{{\"model\":\"{}\",\"params\":{},\"gflops\":{:.5},\"final_loss\":{:.5},\"seconds_per_step\":{:.4},\"steps\":{},\"batch\":{},\"images_per_second\":{:.1},\"train_seconds\":{:.1},\"sample_seconds\":{:.1},\"wall_seconds\":{:.1},\"guidance\":{},\"data\":\"{}\"}}",
        info.name,
        r.params,
        r.gflops,
        r.final_loss,
        r.seconds_per_step,
        opts.steps,
        opts.batch,
        r.images_per_second,
        r.train_seconds,
        r.sample_seconds,
        r.wall_seconds,
        opts.guidance,
        opts.data.name().replace('"', "'")
    );
}
