//! The model registry: one table of model families, one recipe file each ([`unet`], [`dit`]).
//! A name on the command line (`unet`, `DiT-S/2`, `dit-tiny/4`, …) picks a family, which
//! builds a model sized to the data and trains it with [`crate::train::train`] and its own
//! recipe; any checkpoint `minisora train` wrote — a final one (`<model>.safetensors`) or a
//! training checkpoint (`train_<step>.safetensors`, whose EMA weights are used) — loads back
//! by its `model` metadata key into a [`Loaded`] model that the sampler and the evaluation
//! use. A new model is one recipe file and one line in [`FAMILIES`].

pub mod dit;
pub mod unet;
pub mod video;

use crate::diffusion::{Condition, Denoiser, Diffusion};
use crate::dit::Conditioning;
use crate::error::{Error, Result};
use crate::io::checkpoint::{load_tensors, read_metadata, Tensors};
use crate::io::metadata::MetaReader;
use crate::train::metadata::diffusion_from_metadata;
use crate::train::preview::class_rows;
use crate::train::state::is_train_state;
use crate::train::{LatentNorm, TrainData, TrainOptions, TrainReport};
use crate::unet::UNetConfig;
use std::collections::BTreeMap;
use std::path::Path;

/// A trained network, as the sampler sees it.
pub trait Net: Denoiser + Send + Sync {
    /// The label meaning "no class" (`None`: an unconditional model).
    fn null_label(&self) -> Option<usize>;
}

/// The flags of `minisora train` that shape a model, one group per family.
#[derive(Clone, Debug)]
pub struct ModelFlags {
    /// The U-Net's shape (channels, classes are set from the data).
    pub unet: UNetConfig,
    /// DiT: predict ε and the variance (2C outputs), or ε only.
    pub learn_sigma: bool,
    /// DiT: how the blocks read the timestep and the class.
    pub conditioning: Conditioning,
    /// The video DiT's layout, temporal patch and starting weights.
    pub video: video::VideoFlags,
}

impl Default for ModelFlags {
    fn default() -> Self {
        ModelFlags {
            unet: unet::default_config(),
            learn_sigma: true,
            conditioning: Conditioning::default(),
            video: video::VideoFlags::default(),
        }
    }
}

/// Which of a family's recipes a run starts from (`minisora train --recipe`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Recipe {
    /// Tuned for minutes on two cores (the default).
    #[default]
    Cpu,
    /// The paper's, for days on GPUs (DiT: facebookresearch/DiT `train.py`; the U-Net:
    /// openai/improved-diffusion).
    Paper,
}

impl Recipe {
    /// `cpu` or `paper`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Recipe::Cpu),
            "paper" => Ok(Recipe::Paper),
            _ => Err(Error::new(
                format!("unknown recipe {s:?}"),
                "use --recipe cpu (minutes on a laptop) or --recipe paper",
            )),
        }
    }
}

/// How a family loads a checkpoint: `(path, tensors, metadata, training) → model`.
pub type LoadFn = fn(&Path, &Tensors, &BTreeMap<String, String>, bool) -> Result<Box<dyn Net>>;

// ANCHOR: family
/// One family of models: how to name, train and load it.
pub struct Family {
    /// The `model` key of its checkpoints' metadata, and its output folder `out/<key>`.
    pub key: &'static str,
    /// True if `--model NAME` names this family.
    pub accepts: fn(&str) -> bool,
    /// Its training recipes.
    pub recipe: fn(Recipe) -> TrainOptions,
    /// Builds the named model sized to `opts.data`, trains it, samples it and saves it.
    pub train: fn(&str, &ModelFlags, &TrainOptions) -> Result<TrainReport>,
    /// Builds the model a checkpoint's metadata describes and fills its weights from the
    /// file's tensors (`ema.`-prefixed ones when `training`).
    pub load: LoadFn,
}

/// Every model `minisora train` knows.
pub const FAMILIES: &[Family] = &[unet::FAMILY, dit::FAMILY, video::FAMILY];
// ANCHOR_END: family

/// Loads `opts.data` for an image model (`model` names it in the error): the data and the
/// `(C, H, W)` of one sample.
fn load_images(opts: &TrainOptions, model: &str) -> Result<(TrainData, [usize; 3])> {
    let data = TrainData::load(opts)?;
    let &[c, h, w] = data.sample_shape() else {
        return Err(Error::new(
            format!("{} does not hold images (C, H, W)", opts.data.name()),
            format!("train the {model} on images"),
        ));
    };
    Ok((data, [c, h, w]))
}

/// The family `--model name` names.
pub fn family(name: &str) -> Result<&'static Family> {
    let lower = name.trim().to_ascii_lowercase();
    FAMILIES
        .iter()
        .find(|f| (f.accepts)(&lower))
        .ok_or_else(|| {
            Error::new(
                format!("unknown model {name:?}"),
                "use --model unet, a DiT config such as --model DiT-S/2 or dit-tiny/2, or a \
                 video DiT such as --model video-tiny/2",
            )
        })
}

/// Trains the model `name` with `flags` and `opts`.
pub fn train_model(name: &str, flags: &ModelFlags, opts: &TrainOptions) -> Result<TrainReport> {
    (family(name)?.train)(name.trim(), flags, opts)
}

/// A checkpoint loaded for sampling, with what its metadata says about it.
pub struct Loaded {
    pub model: Box<dyn Net>,
    /// Its family's `model` key: `unet` or `dit`.
    pub family: &'static str,
    pub diffusion: Diffusion,
    /// One sample's shape in the model's space: `(C, H, W)` or `(C, F, H, W)`.
    pub shape: Vec<usize>,
    /// Classes (0 for an unconditional model).
    pub num_classes: usize,
    /// The label of "no class" for guidance (`None`: unconditional).
    pub null_label: Option<usize>,
    /// True when the model lives in a VAE's latent space.
    pub latent: bool,
    /// How the latents were normalised (the identity in pixel space).
    pub norm: LatentNorm,
    pub metadata: BTreeMap<String, String>,
}

impl Loaded {
    /// The rows of a class grid: one per class (the first ten), or none for an
    /// unconditional model.
    pub fn class_rows(&self) -> Condition {
        class_rows(self.num_classes, self.null_label)
    }
}

/// The family of a checkpoint, from its `model` key.
fn family_of(path: &Path, meta: &BTreeMap<String, String>) -> Result<&'static Family> {
    let kind = meta
        .get("model")
        .cloned()
        .or_else(|| {
            meta.contains_key("video.frames")
                .then(|| "video".to_string())
        })
        .or_else(|| meta.contains_key("dit.depth").then(|| "dit".to_string()))
        .or_else(|| {
            meta.contains_key("vae.z_channels")
                .then(|| "vae".to_string())
        });
    let Some(kind) = kind else {
        return Err(Error::new(
            format!(
                "{} has no `model` metadata: it was not written by `minisora train`",
                path.display()
            ),
            "pass a checkpoint written by `minisora train`",
        ));
    };
    FAMILIES.iter().find(|f| f.key == kind).ok_or_else(|| {
        Error::new(
            format!(
                "{} holds a `{kind}` model, not a diffusion model this command can sample",
                path.display()
            ),
            "pass a checkpoint written by `minisora train` (out/<run>/unet.safetensors, \
             dit.safetensors or a train_<step>.safetensors)",
        )
    })
}

/// Loads any checkpoint written by `minisora train`: the final one, or a training
/// checkpoint (sampled with its EMA weights).
pub fn load_model(path: &Path) -> Result<Loaded> {
    if !path.is_file() {
        return Err(Error::new(
            format!("no checkpoint at {}", path.display()),
            "train one first (e.g. `minisora train --model unet` writes out/unet/unet.safetensors) \
             or check the --ckpt path",
        ));
    }
    let (tensors, meta) = load_tensors(path)?;
    let training = is_train_state(&meta);
    let meta = if training { meta } else { read_metadata(path)? };
    let family = family_of(path, &meta)?;
    let model = (family.load)(path, &tensors, &meta, training)?;
    let m = MetaReader::new(
        &meta,
        "training",
        "sample a checkpoint written by `minisora train`",
    );
    let shape = m.list("train.shape")?;
    if !(3..=4).contains(&shape.len()) {
        return Err(Error::new(
            format!(
                "{}: train.shape {shape:?} is neither C,H,W nor C,F,H,W",
                path.display()
            ),
            "the checkpoint's metadata is damaged; train the model again",
        ));
    }
    let num_classes = m.usize("train.num_classes")?;
    let null_label = model.null_label();
    let norm = LatentNorm::from_metadata(&meta, shape[0])?;
    Ok(Loaded {
        model,
        family: family.key,
        diffusion: diffusion_from_metadata(&meta)?,
        shape,
        num_classes: if null_label.is_some() { num_classes } else { 0 },
        null_label,
        latent: m.bool("train.latent")?,
        norm,
        metadata: meta,
    })
}
