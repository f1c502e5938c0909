//! What every experiment shares: the VAE, the latents it encodes of the dataset (`--data`),
//! the evaluation classifier and the real images the samples are compared with.
//!
//! On the demo's digits, the demo's outputs are reused when they are there
//! (`out/demo/vae/vae.safetensors` and `out/demo/latents.safetensors`). Otherwise — another
//! dataset, or no demo — they are made once with the demo's own stages
//! ([`DemoOptions::vae_options`] on that data; the demo's 10,000 images of a generated set,
//! every training image of a read one) under `<root>/setup/` (see
//! [`results_root`](super::results_root)) and reused by the next experiment. The classifier
//! comes from the cache every scorer shares (`out/classifier/<data>.safetensors`), trained on
//! first use. The real images are the data's own, drawn as `minisora evaluate` draws them; a
//! read set holds only so many, so the samples per class may be cut to fit.

use crate::data::{stratified_subset, DataSource, ImageDataset};
use crate::demo::{DemoOptions, DEMO_IMAGES};
use crate::error::{Error, Result};
use crate::io::checkpoint::read_metadata;
use crate::metrics::{
    load_or_train_classifier_with, CacheStatus, Classifier, ClassifierTrainOptions,
};
use crate::train::preview::MAX_ROWS;
use crate::vae::encode::{encode_dataset, load_latents};
use crate::vae::train::{load_vae, train_vae, TrainVaeOptions};
use crate::vae::Codec;
use ndarray::{s, Array4, ArrayView4};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The side of the images in pixels: the VAE is trained and the classifier reads at 32×32.
pub const PIXELS: usize = 32;
/// Seed of the real images the samples are compared with — the one `minisora evaluate` uses
/// (`metrics::score`), so a checkpoint scores the same numbers here and there.
pub const REAL_SEED: u64 = 0x4e1d;

/// Where the setup comes from and how it is made when absent.
#[derive(Clone, Debug)]
pub struct SetupOptions {
    /// What the VAE, the latents, the classifier and the real images are of.
    pub data: DataSource,
    /// The demo's folder, whose VAE and latents are reused for the digits when present.
    pub demo_dir: PathBuf,
    /// Where a VAE and latents of our own go when the demo's are absent or not of `data`.
    pub dir: PathBuf,
    /// The evaluation classifier's cache folder.
    pub classifier_cache: PathBuf,
    pub seed: u64,
    /// VAE training steps (the demo's by default).
    pub vae_steps: u64,
    /// Images to train the VAE on and encode (`None`: the demo's 10,000 of a generated set,
    /// all the training images of a read one); tests use a few hundred.
    pub images: Option<usize>,
    pub classifier: ClassifierTrainOptions,
    /// Samples per class the experiment asks of every score; the real images loaded are twice
    /// the samples, so a read set may cut it (see [`fit_per_class`]).
    pub per_class: usize,
}

/// The shared pieces, ready to train and score with.
pub struct Setup {
    pub vae_path: PathBuf,
    pub latents: PathBuf,
    pub vae: Codec,
    pub classifier: Classifier,
    /// Classes every score samples: the data's, at most [`MAX_ROWS`].
    pub classes: usize,
    /// Samples per class every score draws: the one asked for, or fewer to fit the data.
    pub per_class: usize,
    /// `(2N, C, 32, 32)` real images of [`REAL_SEED`] for `N = classes · per_class` samples;
    /// the first `2n` are compared with `n ≤ N` samples (a prefix of a generated set is the
    /// smaller set).
    real: Array4<f32>,
    /// True when the VAE and latents are the demo's (then so may the DiT be).
    pub from_demo: bool,
    /// What was reused and what was made, for the report.
    pub provenance: Vec<String>,
    pub seconds: f64,
}

impl Setup {
    /// Reuses or makes the VAE and latents, loads or trains the classifier, loads the real
    /// images.
    pub fn prepare(opts: &SetupOptions) -> Result<Setup> {
        let start = Instant::now();
        let mut provenance = Vec::new();
        let data = &opts.data;
        // Every training image of a read set (the generated ones have no end).
        let pool = if is_generated(data) {
            None
        } else {
            Some(data.load(usize::MAX, PIXELS, REAL_SEED)?)
        };
        let available = pool.as_ref().map(ImageDataset::len);
        let demo = DemoOptions {
            out: opts.demo_dir.clone(),
            seed: opts.seed,
            vae_steps: opts.vae_steps,
            ..DemoOptions::default()
        };
        // The demo's VAE and latents are of the digits: no other data reuses them.
        let from_demo = *data == DataSource::Digits
            && opts.images.is_none()
            && demo.vae_checkpoint().is_file()
            && demo.latents_path().is_file();
        let (vae_path, latents) = if from_demo {
            provenance.push(format!(
                "VAE and latents reused from the demo ({}, {})",
                demo.vae_checkpoint().display(),
                demo.latents_path().display()
            ));
            (demo.vae_checkpoint(), demo.latents_path())
        } else {
            own_vae_and_latents(opts, available, &mut provenance)?
        };
        let vae = Codec::Image(Box::new(load_vae(&vae_path)?.0));
        let (classifier, status) = load_or_train_classifier_with(
            data,
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
        let classes = classifier.config.num_classes.min(MAX_ROWS);
        let (real, per_class) = real_images(
            data,
            pool.as_ref(),
            classes,
            opts.per_class,
            &mut provenance,
        )?;
        Ok(Setup {
            from_demo,
            vae_path,
            latents,
            vae,
            classifier,
            classes,
            per_class,
            real,
            provenance,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// The first `2n` real images, to judge `n` samples with.
    pub fn real_for(&self, n: usize) -> Result<ArrayView4<'_, f32>> {
        if 2 * n > self.real.dim().0 {
            return Err(Error::new(
                format!(
                    "{n} samples to score but {} real images loaded",
                    self.real.dim().0
                ),
                "report this as a bug: the setup loads twice the most samples scored",
            ));
        }
        Ok(self.real.slice(s![..2 * n, .., .., ..]))
    }
}

/// True for the sets drawn by a generator (as many images as asked for); false for the ones
/// read from the crate or from files (a fixed number).
fn is_generated(data: &DataSource) -> bool {
    matches!(data, DataSource::Digits | DataSource::Shapes)
}

/// `<dir>/vae/vae.safetensors` and `<dir>/latents.safetensors`, reused when they match the
/// request (the VAE's data and steps; the latents' data and count, encoded by that VAE), else
/// made by the demo's stages on `opts.data`. `available`: the training images of a read set.
fn own_vae_and_latents(
    opts: &SetupOptions,
    available: Option<usize>,
    provenance: &mut Vec<String>,
) -> Result<(PathBuf, PathBuf)> {
    let data = &opts.data;
    let own = DemoOptions {
        out: opts.dir.clone(),
        seed: opts.seed,
        vae_steps: opts.vae_steps,
        ..DemoOptions::default()
    };
    let (vae_path, latents) = (own.vae_checkpoint(), own.latents_path());
    let vae_ok = vae_path.is_file() && {
        let meta = read_metadata(&vae_path)?;
        meta.get("vae.steps") == Some(&opts.vae_steps.to_string())
            && meta.get("vae.data") == Some(&data.name())
    };
    if vae_ok {
        provenance.push(format!("VAE reused ({})", vae_path.display()));
    } else {
        match data {
            DataSource::Digits => println!(
                "setup: no demo VAE in {}: training one into {}",
                opts.demo_dir.display(),
                opts.dir.display()
            ),
            _ => println!(
                "setup: training a VAE on {} into {}",
                data.name(),
                opts.dir.display()
            ),
        }
        let mut vae_opts = TrainVaeOptions {
            data: data.clone(),
            ..own.vae_options()
        };
        if let Some(n) = opts.images {
            vae_opts.n_train = n;
            vae_opts.n_held_out = (n / 10).max(4);
        }
        if let (DataSource::Mnist(_) | DataSource::Folder(_), Some(total)) = (data, available) {
            // A folder holds out of itself: at most a fifth, as the classifier does.
            vae_opts.n_held_out = vae_opts.n_held_out.min(total / 5).max(2);
        }
        let r = train_vae(&vae_opts)?;
        provenance.push(format!(
            "VAE trained on {} ({} steps, {:.0} s, PSNR {:.2} dB)",
            data.name(),
            opts.vae_steps,
            r.train_seconds,
            r.psnr_db
        ));
    }
    // The demo's count of a generated set; every training image of a read one.
    let n = match (opts.images, available) {
        (Some(n), Some(total)) => n.min(total),
        (Some(n), None) => n,
        (None, Some(total)) => total,
        (None, None) => DEMO_IMAGES,
    };
    let all = if available == Some(n) {
        " (all its training images)"
    } else {
        ""
    };
    if vae_ok && latents.is_file() && latents_match(&vae_path, &latents, data, n)? {
        provenance.push(format!(
            "latents reused ({}: {n} images of {}{all})",
            latents.display(),
            data.name()
        ));
    } else {
        let (count, secs) = encode_dataset(&vae_path, data, n, opts.seed, &latents)?;
        provenance.push(format!(
            "{count} images of {} encoded{all} in {secs:.1} s",
            data.name()
        ));
    }
    Ok((vae_path, latents))
}

/// Whether the latents were encoded by this VAE (their stored scale factors agree) from `n`
/// images of `data`.
fn latents_match(vae: &Path, latents: &Path, data: &DataSource, n: usize) -> Result<bool> {
    let (_, a) = load_vae(vae)?;
    let set = load_latents(latents)?;
    Ok(set.scale_factor == a && set.dataset == Some(data.name()) && set.labels.len() == n)
}

/// `2 · classes · per_class` real images of `data` drawn with [`REAL_SEED`], as `minisora
/// evaluate` draws them, and the samples per class they judge: `per_class`, or for a read set
/// (`pool`: all its training images) the most that fit ([`fit_per_class`]), said in the
/// provenance.
fn real_images(
    data: &DataSource,
    pool: Option<&ImageDataset>,
    classes: usize,
    per_class: usize,
    provenance: &mut Vec<String>,
) -> Result<(Array4<f32>, usize)> {
    let Some(pool) = pool else {
        let real = data.load(2 * classes * per_class, PIXELS, REAL_SEED)?;
        return Ok((real.images, per_class));
    };
    let fit = fit_per_class(&data.name(), pool.len(), classes, per_class)?;
    if fit < per_class {
        let note = format!(
            "{} has {} training images: {fit} samples per class scored instead of {per_class} \
             (N samples are compared with 2N real images)",
            data.name(),
            pool.len()
        );
        println!("setup: {note}");
        provenance.push(note);
    }
    // What `data.load(n, PIXELS, REAL_SEED)` gives: n of the pool, stratified by class.
    let n = 2 * classes * fit;
    Ok((
        pool.subset(&stratified_subset(&pool.labels, n, REAL_SEED))
            .images,
        fit,
    ))
}

/// The most samples per class, up to `per_class`, that `available` real images can judge:
/// $N = \text{classes} \cdot \text{per\_class}$ samples need $2N$ of them, so at most
/// $\lfloor \text{available} / (2 \cdot \text{classes}) \rfloor$ (uci-digits: 1437 / 20 = 71).
/// None fitting is an error.
pub fn fit_per_class(
    name: &str,
    available: usize,
    classes: usize,
    per_class: usize,
) -> Result<usize> {
    let most = available / (2 * classes.max(1));
    if most == 0 {
        return Err(Error::new(
            format!(
                "{name} has {available} training images, too few to compare one sample of each of \
                 its {classes} classes with twice as many real images"
            ),
            format!("use a dataset with at least {} images", 2 * classes),
        ));
    }
    Ok(per_class.min(most))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_per_class_fit_the_real_images() {
        // uci-digits: 1437 training images, 10 classes → at most 71 per class.
        assert_eq!(fit_per_class("uci-digits", 1437, 10, 100).unwrap(), 71);
        assert_eq!(fit_per_class("uci-digits", 1437, 10, 40).unwrap(), 40);
        assert_eq!(fit_per_class("uci-digits", 1437, 10, 71).unwrap(), 71);
        let e = fit_per_class("tiny", 15, 10, 2).unwrap_err();
        assert!(e.problem.contains("15 training images"), "{e}");
        assert!(e.fix.contains("at least 20"), "{e}");
    }

    #[test]
    fn only_the_generators_are_unlimited() {
        assert!(is_generated(&DataSource::Digits) && is_generated(&DataSource::Shapes));
        assert!(!is_generated(&DataSource::UciDigits));
    }
}
