//! Training the KL-VAE, shared by `examples/vae.rs` and `minisora train-vae`: AdamW on
//! reconstruction + β·KL, then the measurements the VAE chapter reports — held-out PSNR, the KL
//! per image, the latent standard deviation and the scale factor it implies — the figures in
//! `out/vae/`, and a safetensors checkpoint whose metadata holds the config and the scale.

use super::{AutoencoderKL, Recon, VaeConfig, VaeLoss};
use crate::data::ImageDataset;
use crate::data::{Batcher, DataSource};
use crate::error::{Error, Result};
use crate::io::checkpoint::{load_checkpoint, read_metadata, save_checkpoint};
use crate::io::image::{save_grid, GridLayout};
use crate::io::plot::{line_plot, Series};
use crate::io::progress::Progress;
use crate::optim::{AdamW, AdamWConfig, CosineSchedule};
use crate::tensor::{init, map_chunks, rng, Rng};
use crate::Parameters;
use ndarray::{concatenate, s, Array4, ArrayView4, Axis, Ix4};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Everything a VAE training run needs.
#[derive(Clone, Debug)]
pub struct TrainVaeOptions {
    pub data: DataSource,
    pub config: VaeConfig,
    pub loss: VaeLoss,
    pub steps: u64,
    pub batch: usize,
    pub lr: f32,
    /// Training images (at most; a folder may have fewer).
    pub n_train: usize,
    /// Held-out images, never trained on, for the PSNR: every class in proportion (see
    /// [`DataSource::load_split`]).
    pub n_held_out: usize,
    pub seed: u64,
    /// Figures and the checkpoint go here.
    pub out: PathBuf,
}

impl Default for TrainVaeOptions {
    fn default() -> Self {
        TrainVaeOptions {
            data: DataSource::Digits,
            // Half LDM-style widths (16, 32, 32): on two cores the default 32 costs ~1 s a
            // step, and 16 already reconstructs held-out digits far above 22 dB.
            config: VaeConfig {
                base_channels: 16,
                ..VaeConfig::default()
            },
            loss: VaeLoss {
                recon: Recon::L1,
                kl_weight: 1e-3,
            },
            steps: 400,
            batch: 32,
            lr: 2e-3,
            n_train: 10_000,
            n_held_out: 500,
            seed: 0,
            out: PathBuf::from("out/vae"),
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct VaeReport {
    /// Mean over held-out images of each image's PSNR (pixels in [0, 1]), decoding the mean.
    pub psnr_db: f64,
    /// KL to N(0, I) per held-out image, in nats.
    pub kl: f64,
    /// Standard deviation of the training latents z = μ + σε.
    pub latent_std: f64,
    /// 1 / latent_std: multiply latents by it before diffusion.
    pub scale_factor: f64,
    pub train_seconds: f64,
    pub checkpoint: PathBuf,
}

/// $\mathrm{PSNR} = 10 \log_{10} (1 / \mathrm{MSE})$ with pixels mapped from [−1, 1] to [0, 1],
/// per image, averaged over the images.
pub fn psnr_db(x: ArrayView4<f32>, y: ArrayView4<f32>) -> f64 {
    let per_image: Vec<f64> = x
        .outer_iter()
        .zip(y.outer_iter())
        .map(|(a, b)| {
            let mse = a
                .iter()
                .zip(b.iter())
                .map(|(&p, &q)| ((p.clamp(-1.0, 1.0) - q.clamp(-1.0, 1.0)) as f64 / 2.0).powi(2))
                .sum::<f64>()
                / a.len() as f64;
            10.0 * (1.0 / mse.max(1e-12)).log10()
        })
        .collect();
    per_image.iter().sum::<f64>() / per_image.len() as f64
}

// ANCHOR: latent_scale
/// The standard deviation of the latents $z = \mu + \sigma\varepsilon$ of `images`, over every
/// element. Diffusion wants unit-variance inputs, so its latents are multiplied by
/// `1 / std` — measured on the training data, as LDM did for Stable Diffusion's 0.18215.
pub fn latent_std(model: &AutoencoderKL, images: ArrayView4<f32>, r: &mut Rng) -> f64 {
    let z = map_chunks(images, 256, |x| {
        let post = model.encode(&x);
        let eps = init::normal(post.mean.shape(), 1.0, r);
        post.sample(&eps.into_dimensionality::<Ix4>().expect("4-D"))
    });
    let n = z.len() as f64;
    let mean = z.iter().map(|&v| v as f64).sum::<f64>() / n;
    (z.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt()
}
// ANCHOR_END: latent_scale

/// Loads a checkpoint written by [`train_vae`]: the model and its latent scale factor.
pub fn load_vae(path: &Path) -> Result<(AutoencoderKL, f64)> {
    let meta = read_metadata(path)?;
    let config = VaeConfig::from_metadata(&meta)?;
    let mut model = AutoencoderKL::new(config, &mut rng(0))?;
    load_checkpoint(path, &mut model)?;
    let scale = meta
        .get("vae.scale_factor")
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| {
            Error::new(
                format!("{} has no vae.scale_factor in its metadata", path.display()),
                "use a checkpoint written by `minisora train-vae`",
            )
        })?;
    Ok((model, scale))
}

/// Trains a VAE as `opts` says, writes the figures and checkpoint, prints the figures; the
/// last stdout line is one JSON object.
pub fn train_vae(opts: &TrainVaeOptions) -> Result<VaeReport> {
    if opts.n_held_out < 2 {
        return Err(Error::new(
            format!("{} held-out images", opts.n_held_out),
            "hold out at least 2 (the interpolation figure runs between two of them)",
        ));
    }
    // Seeded and stratified by class for folders and MNIST; see `DataSource::load_split`.
    let (train, held_out) = opts
        .data
        .load_split(opts.n_train, opts.n_held_out, 32, opts.seed)?;
    train_vae_on(opts, &opts.data.name(), train, held_out.images)
}

/// [`train_vae`] on images already in memory (32×32; the frames of clips, say), named `data`
/// in the checkpoint; `opts.data`, `n_train` and `n_held_out` are not read.
pub fn train_vae_on(
    opts: &TrainVaeOptions,
    data: &str,
    train: ImageDataset,
    held_out: Array4<f32>,
) -> Result<VaeReport> {
    let start = Instant::now();
    crate::tensor::heap::retain_freed_memory();
    let mut config = opts.config.clone();
    config.in_channels = train.channels();
    if held_out.dim().0 < 2 {
        return Err(Error::new(
            format!("{} held-out images", held_out.dim().0),
            "hold out at least 2 (the interpolation figure runs between two of them)",
        ));
    }

    let mut r = rng(opts.seed);
    let mut model = AutoencoderKL::new(config.clone(), &mut r)?;
    let f = config.downsample_factor();
    println!(
        "train-vae: {} ({} train, {} held out), {}×32×32 → {}×{}×{}, {} parameters, {} steps of batch {}",
        data,
        train.len(),
        held_out.dim().0,
        config.in_channels,
        config.z_channels,
        32 / f,
        32 / f,
        model.num_params(),
        opts.steps,
        opts.batch
    );
    let mut batcher = Batcher::new(train.len(), opts.batch, opts.seed ^ 0xba7c)?;
    let mut opt = AdamW::new(AdamWConfig {
        lr: opts.lr,
        weight_decay: 0.0,
        ..AdamWConfig::default()
    });
    let sched = CosineSchedule {
        base_lr: opts.lr,
        min_lr: opts.lr * 0.05,
        warmup_steps: 50,
        total_steps: opts.steps,
    };
    let latent = [opts.batch, config.z_channels, 32 / f, 32 / f];
    let (mut recon_curve, mut kl_curve) = (Vec::new(), Vec::new());
    let bar = Progress::new(opts.steps, "train-vae");
    for step in 0..opts.steps {
        // ANCHOR: train_step
        let batch = batcher.next_batch(&train); // (B, C, 32, 32) in [−1, 1]
        let eps = init::normal(&latent, 1.0, &mut r)
            .into_dimensionality::<Ix4>()
            .expect("4-D"); // ε ~ N(0, I)
        model.zero_grad();
        let parts = model.loss_and_backward(&batch.images, &eps, &opts.loss);
        opt.lr = sched.lr_at(step);
        opt.step(&mut model);
        // ANCHOR_END: train_step
        recon_curve.push((step as f64, parts.recon));
        kl_curve.push((step as f64, parts.kl));
        bar.step(parts.total as f32);
    }
    bar.finish();
    let train_seconds = start.elapsed().as_secs_f64();

    // Held-out reconstructions decode the posterior mean (no sampling noise).
    let post = map_chunks(held_out.view(), 256, |x| model.encode(&x).mean);
    let rec = map_chunks(post.view(), 256, |z| model.decode(&z));
    let psnr = psnr_db(held_out.view(), rec.view());
    let kl = map_chunks(held_out.view(), 256, |x| {
        let k = model.encode(&x).kl();
        Array4::from_shape_vec(
            (k.len(), 1, 1, 1),
            k.into_iter().map(|v| v as f32).collect(),
        )
        .expect("one KL per image")
    })
    .mean()
    .unwrap_or(0.0) as f64;
    let n_scale = train.len().min(2000);
    let std = latent_std(
        &model,
        train.images.slice(s![..n_scale, .., .., ..]),
        &mut rng(opts.seed ^ 0x5ca1e),
    );
    let scale = 1.0 / std;

    write_figures(opts, &model, &held_out, &rec, &recon_curve, &kl_curve)?;
    let checkpoint = opts.out.join("vae.safetensors");
    let mut meta = config.to_metadata();
    for (k, v) in [
        ("vae.scale_factor", format!("{scale}")),
        ("vae.latent_std", format!("{std}")),
        ("vae.data", data.to_string()),
        ("vae.recon", format!("{:?}", opts.loss.recon)),
        ("vae.kl_weight", format!("{}", opts.loss.kl_weight)),
        ("vae.steps", format!("{}", opts.steps)),
        ("vae.psnr_db", format!("{psnr:.3}")),
    ] {
        meta.insert(k.to_string(), v);
    }
    save_checkpoint(&checkpoint, &mut model, &meta)?;

    println!(
        "held-out PSNR {psnr:.2} dB, KL {kl:.1} nats/image, latent std {std:.4} → scale factor {scale:.4}, trained in {train_seconds:.1} s"
    );
    println!(
        "wrote {}/{{recon,interpolation,samples,loss}}.png and {}",
        opts.out.display(),
        checkpoint.display()
    );
    println!(
        "{{\"psnr_db\":{psnr:.3},\"kl\":{kl:.3},\"latent_std\":{std:.5},\"scale_factor\":{scale:.5},\"train_seconds\":{train_seconds:.1},\"steps\":{},\"data\":\"{}\"}}",
        opts.steps,
        data.replace('"', "'")
    );
    Ok(VaeReport {
        psnr_db: psnr,
        kl,
        latent_std: std,
        scale_factor: scale,
        train_seconds,
        checkpoint,
    })
}

/// `recon.png` (originals over reconstructions), `interpolation.png` (decodes along the line
/// between two images' latent means), `samples.png` (decodes of z ~ N(0, I)) and `loss.png`.
fn write_figures(
    opts: &TrainVaeOptions,
    model: &AutoencoderKL,
    held_out: &Array4<f32>,
    rec: &Array4<f32>,
    recon_curve: &[(f64, f64)],
    kl_curve: &[(f64, f64)],
) -> Result<()> {
    let out = &opts.out;
    let layout = GridLayout::new(16).pad(2).upscale(3);
    let n = held_out.dim().0.min(16);
    let pair = concatenate(
        Axis(0),
        &[
            held_out.slice(s![..n, .., .., ..]),
            rec.slice(s![..n, .., .., ..]),
        ],
    )
    .expect("same shapes");
    save_grid(&out.join("recon.png"), pair.view(), layout)?;

    // Two held-out images of different classes: a straight line between their latent means.
    let ends = held_out.slice(s![0..2, .., .., ..]).to_owned();
    let z = model.encode(&ends).mean; // (2, z, h, w)
    let steps = 10;
    let line: Vec<Array4<f32>> = (0..steps)
        .map(|i| {
            let a = i as f32 / (steps - 1) as f32;
            let zi =
                &z.slice(s![0..1, .., .., ..]) * (1.0 - a) + &z.slice(s![1..2, .., .., ..]) * a;
            model.decode(&zi)
        })
        .collect();
    let mut row = vec![ends.slice(s![0..1, .., .., ..])];
    row.extend(line.iter().map(|x| x.view()));
    row.push(ends.slice(s![1..2, .., .., ..]));
    let strip = concatenate(Axis(0), &row).expect("same shapes");
    save_grid(
        &out.join("interpolation.png"),
        strip.view(),
        GridLayout::new(row.len()).pad(2).upscale(3),
    )?;

    let (c, h, w) = (z.dim().1, z.dim().2, z.dim().3);
    let prior = init::normal(&[64, c, h, w], 1.0, &mut rng(opts.seed ^ 0x9e37))
        .into_dimensionality::<Ix4>()
        .expect("4-D");
    save_grid(
        &out.join("samples.png"),
        model.decode(&prior).view(),
        GridLayout::new(8).pad(2).upscale(3),
    )?;

    line_plot(
        &out.join("loss.png"),
        "VAE training loss (per image)",
        "step",
        "nats / summed error",
        &[
            Series {
                name: format!("reconstruction ({:?}, summed over pixels)", opts.loss.recon),
                points: recon_curve.to_vec(),
            },
            Series {
                name: "KL to N(0, I)".into(),
                points: kl_curve.to_vec(),
            },
        ],
        true,
    )
}
