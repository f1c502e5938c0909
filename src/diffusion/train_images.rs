//! The image trainer shared by every image model (the U-Net of issue 5, DiT of issue 6):
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

use super::image_data::{check_output, load_decoder, validate, ImageSource, TrainData};
use super::sample_images::{write_figures, FigureOptions};
use super::{sample_uniform, training_losses, Diffusion, TrainableDenoiser};
use crate::data::Batcher;
use crate::error::{Error, Result};
use crate::io::checkpoint::save_checkpoint;
use crate::optim::{clip_grad_norm, AdamW, AdamWConfig, CosineSchedule, Ema};
use crate::tensor::{init, rng, Rng};
use indicatif::{ProgressBar, ProgressStyle};
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
/// model holds the EMA weights (those sampled and saved).
pub fn train_images<M: TrainableDenoiser>(
    model: &mut M,
    info: &ModelInfo,
    diffusion: &Diffusion,
    data: &TrainData,
    opts: &TrainImagesOptions,
) -> Result<TrainImagesReport> {
    let start = Instant::now();
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
    println!(
        "train {}: {} ({} samples of {c}×{h}×{w}, {} classes), {params} parameters, {gflops:.4} Gflops per forward, {} steps of batch {}",
        info.name,
        opts.data.name(),
        data.len(),
        data.num_classes(),
        opts.steps,
        opts.batch
    );
    let mut batcher = Batcher::new(data.len(), opts.batch, opts.seed ^ 0xba7c)?;
    let mut r = rng(opts.seed ^ 0x7a1e);
    let mut opt = AdamW::new(AdamWConfig {
        lr: opts.lr,
        weight_decay: opts.weight_decay,
        ..AdamWConfig::default()
    });
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
    let mut ema = Ema::new(model, opts.ema_decay).with_warmup();
    let t_max = diffusion.num_timesteps();
    let mut losses = Vec::with_capacity(opts.steps as usize);
    let bar = progress_bar(opts.steps, &info.name);
    let report_every = opts.steps.div_ceil(10);
    let train_start = Instant::now();
    for step in 0..opts.steps {
        // ANCHOR: train_step
        let idx = batcher.next_indices();
        let x0 = data.batch(&idx, &mut r); // (B, C, H, W)
        let t = sample_uniform(opts.batch, t_max, &mut r);
        let noise = init::normal(x0.shape(), 1.0, &mut r); // ε
        let x_t = diffusion.schedule.q_sample(&x0, &t, &noise);
        let y = info.null_label.map(|null| {
            let labels: Vec<usize> = idx.iter().map(|&i| data.labels[i]).collect();
            drop_labels(&labels, null, opts.label_dropout, &mut r)
        });
        let (out, cache) = model.forward_train(&x_t, &t, y.as_deref());
        if step == 0 {
            check_output(out.shape(), c, diffusion, &info.name)?;
        }
        let l = training_losses(diffusion, &x0, &x_t, &t, &noise, &out, None);
        model.zero_grad();
        model.backward_train(&cache, &l.d_out);
        if let Some(max_norm) = opts.grad_clip {
            clip_grad_norm(model, max_norm);
        }
        opt.lr = sched.lr_at(step);
        opt.step(model);
        ema.update(model);
        // ANCHOR_END: train_step
        if !l.loss.is_finite() {
            return Err(Error::new(
                format!("the loss became {} at step {step}", l.loss),
                "lower the learning rate (--lr) or clip the gradients",
            ));
        }
        losses.push(l.loss);
        let secs = train_start.elapsed().as_secs_f64();
        let img_s = (step + 1) as f64 * opts.batch as f64 / secs.max(1e-9);
        bar.set_message(format!("loss {:.4} {img_s:.0} img/s", l.loss));
        bar.inc(1);
        if (step + 1) % report_every == 0 || step + 1 == opts.steps {
            let recent = &losses[losses.len().saturating_sub(report_every as usize)..];
            let mean = recent.iter().sum::<f32>() / recent.len() as f32;
            let eta = secs / (step + 1) as f64 * (opts.steps - step - 1) as f64;
            let line = format!(
                "  step {}/{}: loss {mean:.4} (mean of the last {}), {img_s:.0} img/s, ETA {eta:.0} s",
                step + 1,
                opts.steps,
                recent.len()
            );
            if bar.is_hidden() {
                println!("{line}");
            } else {
                bar.println(line);
            }
        }
    }
    bar.finish_and_clear();
    let train_seconds = train_start.elapsed().as_secs_f64();

    // Sample and save with the averaged weights.
    ema.copy_to(model);
    let sample_start = Instant::now();
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
    write_figures(&*model, diffusion, vae.as_ref(), &fig, &losses)?;
    let sample_seconds = sample_start.elapsed().as_secs_f64();

    let checkpoint = opts.out.join(format!("{}.safetensors", info.name));
    let final_loss = losses.iter().rev().take(100).sum::<f32>() / losses.len().min(100) as f32;
    let mut meta = info.metadata.clone();
    for (k, v) in [
        ("model", info.name.clone()),
        ("weights", "ema".to_string()),
        ("train.data", opts.data.name()),
        ("train.steps", opts.steps.to_string()),
        ("train.batch", opts.batch.to_string()),
        ("train.lr", opts.lr.to_string()),
        ("train.scale_factor", data.scale.to_string()),
        ("train.final_loss", format!("{final_loss:.5}")),
        ("diffusion.timesteps", t_max.to_string()),
        (
            "diffusion.prediction",
            format!("{:?}", diffusion.prediction),
        ),
        ("diffusion.variance", format!("{:?}", diffusion.variance)),
    ] {
        meta.insert(k.to_string(), v);
    }
    save_checkpoint(&checkpoint, model, &meta)?;
    let wall_seconds = start.elapsed().as_secs_f64();
    let report = TrainImagesReport {
        params,
        gflops,
        final_loss,
        losses,
        seconds_per_step: train_seconds / opts.steps as f64,
        images_per_second: (opts.steps as f64 * opts.batch as f64) / train_seconds,
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
