//! What every experiment shares: the VAE, the digit latents it encodes, the evaluation
//! classifier and the real digits the samples are compared with.
//!
//! The demo's outputs are reused when they are there (`out/demo/vae/vae.safetensors` and
//! `out/demo/latents.safetensors`), otherwise made once with the demo's own stages
//! ([`DemoOptions::vae_options`], the demo's image count) under `<out>/setup/` and reused by
//! the next experiment. The classifier comes from the cache every scorer shares
//! (`out/classifier/`), trained on first use.

use crate::data::DataSource;
use crate::demo::{DemoOptions, DEMO_IMAGES};
use crate::error::{Error, Result};
use crate::io::checkpoint::read_metadata;
use crate::metrics::{
    load_or_train_classifier_with, CacheStatus, Classifier, ClassifierTrainOptions,
};
use crate::vae::encode::{encode_dataset, load_latents};
use crate::vae::train::{load_vae, train_vae};
use crate::vae::AutoencoderKL;
use ndarray::{s, Array4, ArrayView4};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The side of the digits in pixels: the VAE is trained and the classifier reads at 32×32.
pub const PIXELS: usize = 32;
/// Seed of the real digits the samples are compared with — the one `minisora evaluate` uses
/// (`metrics::score`), so a checkpoint scores the same numbers here and there.
pub const REAL_SEED: u64 = 0x4e1d;

/// Where the setup comes from and how it is made when absent.
#[derive(Clone, Debug)]
pub struct SetupOptions {
    /// The demo's folder, whose VAE and latents are reused when present.
    pub demo_dir: PathBuf,
    /// Where a VAE and latents of our own go when the demo's are absent.
    pub dir: PathBuf,
    /// The evaluation classifier's cache folder.
    pub classifier_cache: PathBuf,
    pub seed: u64,
    /// VAE training steps (the demo's by default).
    pub vae_steps: u64,
    /// Digits to train the VAE on and encode (`None`: the demo's); tests use a few hundred.
    pub images: Option<usize>,
    pub classifier: ClassifierTrainOptions,
    /// Real digits to load: twice the most samples any score of the experiment draws.
    pub real: usize,
}

/// The shared pieces, ready to train and score with.
pub struct Setup {
    pub vae_path: PathBuf,
    pub latents: PathBuf,
    pub vae: AutoencoderKL,
    pub classifier: Classifier,
    /// `(M, 1, 32, 32)` real digits of [`REAL_SEED`]; the first `2N` are compared with `N`
    /// samples (a prefix of a generated set is the smaller set).
    real: Array4<f32>,
    /// True when the VAE and latents are the demo's (then so may the DiT be).
    pub from_demo: bool,
    /// What was reused and what was made, for the report.
    pub provenance: Vec<String>,
    pub seconds: f64,
}

impl Setup {
    /// Reuses or makes the VAE and latents, loads or trains the classifier, loads the real
    /// digits.
    pub fn prepare(opts: &SetupOptions) -> Result<Setup> {
        let start = Instant::now();
        let mut provenance = Vec::new();
        let demo = DemoOptions {
            out: opts.demo_dir.clone(),
            seed: opts.seed,
            vae_steps: opts.vae_steps,
            ..DemoOptions::default()
        };
        let demo_ready = demo.vae_checkpoint().is_file() && demo.latents_path().is_file();
        let (vae_path, latents) = if demo_ready && opts.images.is_none() {
            provenance.push(format!(
                "VAE and latents reused from the demo ({}, {})",
                demo.vae_checkpoint().display(),
                demo.latents_path().display()
            ));
            (demo.vae_checkpoint(), demo.latents_path())
        } else {
            own_vae_and_latents(opts, &mut provenance)?
        };
        let (vae, _) = load_vae(&vae_path)?;
        let (classifier, status) = load_or_train_classifier_with(
            &DataSource::Digits,
            PIXELS,
            0,
            &opts.classifier_cache,
            &opts.classifier,
        )?;
        provenance.push(match status {
            CacheStatus::Loaded => format!(
                "evaluation classifier loaded from {}",
                opts.classifier_cache.display()
            ),
            CacheStatus::Trained(_) => format!(
                "evaluation classifier trained into {}",
                opts.classifier_cache.display()
            ),
        });
        let real = DataSource::Digits
            .load(opts.real, PIXELS, REAL_SEED)?
            .images;
        Ok(Setup {
            from_demo: demo_ready && opts.images.is_none(),
            vae_path,
            latents,
            vae,
            classifier,
            real,
            provenance,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// The first `2n` real digits, to judge `n` samples with.
    pub fn real_for(&self, n: usize) -> Result<ArrayView4<'_, f32>> {
        if 2 * n > self.real.dim().0 {
            return Err(Error::new(
                format!(
                    "{n} samples to score but {} real digits loaded",
                    self.real.dim().0
                ),
                "report this as a bug: the setup loads twice the most samples scored",
            ));
        }
        Ok(self.real.slice(s![..2 * n, .., .., ..]))
    }
}

/// `<dir>/vae/vae.safetensors` and `<dir>/latents.safetensors`, reused when they match the
/// request (the VAE's steps, the latents encoded by that VAE), else made by the demo's stages.
fn own_vae_and_latents(
    opts: &SetupOptions,
    provenance: &mut Vec<String>,
) -> Result<(PathBuf, PathBuf)> {
    let own = DemoOptions {
        out: opts.dir.clone(),
        seed: opts.seed,
        vae_steps: opts.vae_steps,
        ..DemoOptions::default()
    };
    let (vae_path, latents) = (own.vae_checkpoint(), own.latents_path());
    let vae_ok = vae_path.is_file()
        && read_metadata(&vae_path)?.get("vae.steps") == Some(&opts.vae_steps.to_string());
    if vae_ok {
        provenance.push(format!("VAE reused ({})", vae_path.display()));
    } else {
        println!(
            "setup: no demo VAE in {}: training one into {}",
            opts.demo_dir.display(),
            opts.dir.display()
        );
        let mut vae_opts = own.vae_options();
        if let Some(n) = opts.images {
            vae_opts.n_train = n;
            vae_opts.n_held_out = (n / 10).max(4);
        }
        let r = train_vae(&vae_opts)?;
        provenance.push(format!(
            "VAE trained ({} steps, {:.0} s, PSNR {:.2} dB)",
            opts.vae_steps, r.train_seconds, r.psnr_db
        ));
    }
    if vae_ok && latents.is_file() && same_scale(&vae_path, &latents)? {
        provenance.push(format!("latents reused ({})", latents.display()));
    } else {
        let n = opts.images.unwrap_or(DEMO_IMAGES);
        let (count, secs) = encode_dataset(&vae_path, &DataSource::Digits, n, opts.seed, &latents)?;
        provenance.push(format!("{count} digits encoded in {secs:.1} s"));
    }
    Ok((vae_path, latents))
}

/// Whether the latents were encoded by this VAE (their stored scale factors agree).
fn same_scale(vae: &Path, latents: &Path) -> Result<bool> {
    let (_, a) = load_vae(vae)?;
    Ok(load_latents(latents)?.scale_factor == a)
}
