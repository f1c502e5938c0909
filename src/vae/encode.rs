//! `minisora encode`: run a trained VAE over a dataset once and store the latents, so a
//! latent diffusion model trains on them without running the encoder at every step (DiT's
//! feature-extraction step does the same).
//!
//! The file (safetensors) holds the posterior of every image, not one sample of it:
//! `mean` and `logvar` `(N, z, h, w)` and `labels` `(N)` (as f32), with the VAE's scale factor,
//! the data name and the class names in its metadata. Clips encoded frame by frame
//! ([`crate::video::encode`]) use the same file with `(N, z, F, h, w)` tensors, and `frames`
//! and `captions` in the metadata. A trainer draws
//! $z = \mathrm{scale} \cdot (\mu + \sigma \varepsilon)$ afresh every time it visits an image.

use super::train::load_vae;
use crate::data::DataSource;
use crate::error::{Error, Result};
use crate::io::checkpoint::{load_tensors, save_tensors};
use crate::io::progress::Progress;
use ndarray::{concatenate, Array1, Array4, ArrayD, ArrayViewD, Axis, Ix1};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// The `contents` metadata of latent files.
pub const LATENT_CONTENTS: &str = "minisora-latents-v1";

/// A dataset's latents, as stored by [`encode_dataset`].
#[derive(Clone, Debug)]
pub struct LatentSet {
    /// Posterior means, unscaled: `(N, z, h, w)` for images, `(N, z, F, h, w)` for clips.
    pub mean: ArrayD<f32>,
    /// Posterior log-variances, the shape of `mean`.
    pub logvar: ArrayD<f32>,
    pub labels: Vec<usize>,
    pub class_names: Vec<String>,
    /// Multiply latents by this before diffusion (1 / std of the VAE's training latents).
    pub scale_factor: f64,
    /// The dataset the latents encode (its name for [`DataSource::parse`]), if recorded.
    pub dataset: Option<String>,
    /// One caption per clip (clips only; empty for images).
    pub captions: Vec<String>,
}

/// The metadata every latent file has: contents, scale factor, data name and class names.
pub fn latent_metadata(scale: f64, data: &str, class_names: &[String]) -> BTreeMap<String, String> {
    let mut meta = BTreeMap::new();
    meta.insert("contents".to_string(), LATENT_CONTENTS.to_string());
    meta.insert("scale_factor".to_string(), format!("{scale}"));
    meta.insert("data".to_string(), data.to_string());
    meta.insert("class_names".to_string(), class_names.join("\n"));
    meta
}

/// Writes a latent file (atomically): `mean`, `logvar` and `labels` with `meta` (see
/// [`latent_metadata`]).
pub fn write_latents(
    out: &Path,
    mean: ArrayViewD<f32>,
    logvar: ArrayViewD<f32>,
    labels: &[usize],
    meta: &BTreeMap<String, String>,
) -> Result<()> {
    let labels = Array1::from_iter(labels.iter().map(|&l| l as f32));
    save_tensors(
        out,
        &[
            ("mean", mean),
            ("logvar", logvar),
            ("labels", labels.view().into_dyn()),
        ],
        meta,
    )
}

/// Encodes the first `n` images of `data` with the VAE in `checkpoint` and writes `out`.
/// Returns the number of images and the seconds it took.
pub fn encode_dataset(
    checkpoint: &Path,
    data: &DataSource,
    n: usize,
    seed: u64,
    out: &Path,
) -> Result<(usize, f64)> {
    let start = Instant::now();
    let (model, scale) = load_vae(checkpoint)?;
    if data.channels() != model.config.in_channels {
        return Err(Error::new(
            format!(
                "{} has {} channels but the VAE in {} takes {}",
                data.name(),
                data.channels(),
                checkpoint.display(),
                model.config.in_channels
            ),
            "encode the dataset the VAE was trained on (see vae.data in its metadata)",
        ));
    }
    let ds = data.load(n, 32, seed)?;
    let chunks: Vec<_> = ds.images.axis_chunks_iter(Axis(0), 256).collect();
    let bar = Progress::new(chunks.len() as u64, "encode");
    let (mut means, mut logvars) = (Vec::new(), Vec::new());
    for c in chunks {
        let post = model.encode(&c.to_owned()); // (b, z, h, w) each
        means.push(post.mean);
        logvars.push(post.logvar);
        bar.step(0.0);
    }
    bar.finish();
    let cat = |parts: &[Array4<f32>]| {
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        concatenate(Axis(0), &views).expect("chunks share their shape")
    };
    let (mean, logvar) = (cat(&means), cat(&logvars));
    let meta = latent_metadata(scale, &data.name(), &ds.class_names);
    write_latents(
        out,
        mean.view().into_dyn(),
        logvar.view().into_dyn(),
        &ds.labels,
        &meta,
    )?;
    Ok((ds.len(), start.elapsed().as_secs_f64()))
}

/// Reads a file written by [`encode_dataset`].
pub fn load_latents(path: &Path) -> Result<LatentSet> {
    let (mut tensors, meta) = load_tensors(path)?;
    let bad = |what: String| {
        Error::new(
            format!("{}: {what}", path.display()),
            "write the file with `minisora encode`",
        )
    };
    if meta.get("contents").map(String::as_str) != Some(LATENT_CONTENTS) {
        return Err(bad(format!(
            "not a latent file (its `contents` is not {LATENT_CONTENTS})"
        )));
    }
    // images (N, z, h, w) or clips (N, z, F, h, w)
    let mut take = |name: &str| {
        tensors
            .remove(name)
            .filter(|t| matches!(t.ndim(), 4 | 5))
            .ok_or_else(|| bad(format!("no 4-D or 5-D tensor `{name}`")))
    };
    let (mean, logvar) = (take("mean")?, take("logvar")?);
    let labels = tensors
        .remove("labels")
        .and_then(|t| t.into_dimensionality::<Ix1>().ok())
        .ok_or_else(|| bad("no 1-D tensor `labels`".into()))?;
    if mean.shape() != logvar.shape() || labels.len() != mean.shape()[0] {
        return Err(bad("`mean`, `logvar` and `labels` disagree in size".into()));
    }
    let scale_factor = meta
        .get("scale_factor")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no scale_factor in the metadata".into()))?;
    Ok(LatentSet {
        mean,
        logvar,
        labels: labels.iter().map(|&l| l as usize).collect(),
        class_names: meta
            .get("class_names")
            .map(|s| s.split('\n').map(String::from).collect())
            .unwrap_or_default(),
        scale_factor,
        dataset: meta.get("data").cloned(),
        captions: meta
            .get("captions")
            .map(|s| s.split('\n').map(String::from).collect())
            .unwrap_or_default(),
    })
}
