//! The model registry the command line uses: a model name (`unet`, `DiT-S/2`, `dit-tiny/4`,
//! …) becomes a model sized to the data and trained by the one image trainer, and any
//! checkpoint — a final one (`<model>.safetensors`) or a training checkpoint
//! (`train_<step>.safetensors`, whose EMA weights are used) — loads back by its `model`
//! metadata key into [`AnyModel`], which denoises whatever it holds, so `minisora sample`
//! works for both.

use crate::diffusion::train_state::{assign_weights, is_train_state};
use crate::diffusion::{
    train_images, BetaSchedule, Denoiser, Diffusion, LossType, ModelInfo, Prediction, Schedule,
    TrainData, TrainImagesOptions, TrainImagesReport, VarianceType,
};
use crate::dit::checkpoint::POS_EMBED;
use crate::dit::{load_dit, Conditioning, DiT, DiTConfig};
use crate::error::{Error, Result};
use crate::io::checkpoint::{load_checkpoint, load_tensors, read_metadata};
use crate::io::metadata::MetaReader;
use crate::tensor::rng;
use crate::unet::train::{default_options, unet_diffusion};
use crate::unet::{UNet, UNetConfig};
use ndarray::ArrayD;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A model named on the command line.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelName {
    /// ADM's U-Net (its shape from [`UNetConfig`]).
    UNet,
    /// A DiT config name as [`DiTConfig::named`](crate::dit::DiTConfig::named) reads it.
    DiT(String),
}

impl ModelName {
    /// `unet`, or a DiT name (`DiT-S/2`, `dit-tiny/4`, …, case-insensitive).
    pub fn parse(name: &str) -> Result<Self> {
        let lower = name.trim().to_ascii_lowercase();
        if lower == "unet" || lower == "u-net" {
            Ok(ModelName::UNet)
        } else if lower.starts_with("dit") {
            Ok(ModelName::DiT(name.trim().to_string()))
        } else {
            Err(Error::new(
                format!("unknown model {name:?}"),
                "use --model unet or a DiT config such as --model DiT-S/2 or dit-tiny/2",
            ))
        }
    }
}

/// Any trained denoiser the registry can build or load.
pub enum AnyModel {
    UNet(Box<UNet>),
    DiT(Box<DiT>),
}

impl Denoiser for AnyModel {
    fn predict(&self, x_t: &ArrayD<f32>, t: &[usize], y: Option<&[usize]>) -> ArrayD<f32> {
        match self {
            AnyModel::UNet(m) => m.predict(x_t, t, y),
            AnyModel::DiT(m) => m.predict(x_t, t, y),
        }
    }
}

/// A checkpoint loaded for sampling, with what its metadata says about it.
pub struct Loaded {
    pub model: AnyModel,
    /// The `model` key: `unet` or `dit`.
    pub kind: String,
    pub diffusion: Diffusion,
    /// `(C, H, W)` of one sample in the model's space.
    pub shape: (usize, usize, usize),
    /// Classes (0 for an unconditional model).
    pub num_classes: usize,
    /// The label of "no class" for guidance (`None`: unconditional).
    pub null_label: Option<usize>,
    /// True when the model lives in a VAE's latent space.
    pub latent: bool,
    /// The latents' scale factor (1 in pixel space).
    pub scale: f32,
    pub metadata: BTreeMap<String, String>,
}

/// The diffusion a checkpoint was trained with, from its `diffusion.*` metadata.
pub fn diffusion_from_metadata(meta: &BTreeMap<String, String>) -> Result<Diffusion> {
    let m = MetaReader::new(
        meta,
        "diffusion",
        "sample a checkpoint written by `minisora train`",
    );
    let bad = |key: &str, v: &str| {
        Error::new(
            format!("diffusion metadata: {key} = {v:?} is not one minisora writes"),
            "the checkpoint's metadata is damaged; train the model again",
        )
    };
    let steps = m.usize("diffusion.timesteps")?;
    let schedule = match meta.get("diffusion.schedule") {
        Some(s) => BetaSchedule::parse(s)?,
        None => BetaSchedule::Linear, // checkpoints from before the key: always linear
    };
    let prediction = match m.text("diffusion.prediction")? {
        "Epsilon" => Prediction::Epsilon,
        "X0" => Prediction::X0,
        "V" => Prediction::V,
        v => return Err(bad("diffusion.prediction", v)),
    };
    let variance = match m.text("diffusion.variance")? {
        "FixedSmall" => VarianceType::FixedSmall,
        "FixedLarge" => VarianceType::FixedLarge,
        "LearnedRange" => VarianceType::LearnedRange,
        v => return Err(bad("diffusion.variance", v)),
    };
    let loss = match meta.get("diffusion.loss").map(String::as_str) {
        Some("RescaledMse") => LossType::RescaledMse,
        _ => LossType::Mse,
    };
    Ok(Diffusion::new(
        Schedule::new(schedule, steps),
        prediction,
        variance,
        loss,
    ))
}

/// What kind of model a checkpoint holds, from its `model` key.
fn kind_of(path: &Path, meta: &BTreeMap<String, String>) -> Result<String> {
    let kind = meta
        .get("model")
        .cloned()
        .or_else(|| meta.contains_key("dit.depth").then(|| "dit".to_string()))
        .or_else(|| {
            meta.contains_key("vae.z_channels")
                .then(|| "vae".to_string())
        });
    match kind.as_deref() {
        Some("unet") | Some("dit") => Ok(kind.unwrap()),
        Some(other) => Err(Error::new(
            format!(
                "{} holds a `{other}` model, not a diffusion model this command can sample",
                path.display()
            ),
            "pass a checkpoint written by `minisora train` (out/<run>/unet.safetensors, \
             dit.safetensors or a train_<step>.safetensors)",
        )),
        None => Err(Error::new(
            format!(
                "{} has no `model` metadata: it was not written by `minisora train`",
                path.display()
            ),
            "pass a checkpoint written by `minisora train`",
        )),
    }
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
    let kind = kind_of(path, &meta)?;
    let model = match kind.as_str() {
        "unet" => {
            let mut unet = UNet::new(UNetConfig::from_metadata(&meta)?, &mut rng(0))?;
            if training {
                assign_weights(path, &mut unet, &tensors, "ema.")?;
            } else {
                load_checkpoint(path, &mut unet)?;
            }
            AnyModel::UNet(Box::new(unet))
        }
        _ if training => {
            let mut dit = DiT::new(DiTConfig::from_metadata(&meta)?, &mut rng(0))?;
            assign_weights(path, &mut dit, &tensors, "ema.")?;
            AnyModel::DiT(Box::new(dit))
        }
        _ => AnyModel::DiT(Box::new(load_dit(path)?)),
    };
    let m = MetaReader::new(
        &meta,
        "training",
        "sample a checkpoint written by `minisora train`",
    );
    let shape = m.list("train.shape")?;
    let [c, h, w] = shape[..] else {
        return Err(Error::new(
            format!("{}: train.shape {shape:?} is not C,H,W", path.display()),
            "the checkpoint's metadata is damaged; train the model again",
        ));
    };
    let num_classes = m.usize("train.num_classes")?;
    let null_label = match &model {
        AnyModel::UNet(u) => u.null_label(),
        AnyModel::DiT(d) => Some(d.null_label()),
    };
    let scale: f32 = m.text("train.scale_factor")?.parse().map_err(|_| {
        Error::new(
            format!("{}: train.scale_factor is not a number", path.display()),
            "the checkpoint's metadata is damaged; train the model again",
        )
    })?;
    Ok(Loaded {
        model,
        kind,
        diffusion: diffusion_from_metadata(&meta)?,
        shape: (c, h, w),
        num_classes: if null_label.is_some() { num_classes } else { 0 },
        null_label,
        latent: m.bool("train.latent")?,
        scale,
        metadata: meta,
    })
}

/// DiT's training recipe (facebookresearch/DiT `train.py`), which is the trainer's default:
/// AdamW at a constant lr 1e-4 with no weight decay, no warm-up and no clipping, EMA 0.9999
/// (here with a warm-up, so short runs are usable), label dropout 0.1; the length and batch of
/// the U-Net's run, so the two compare at equal steps.
pub fn dit_options() -> TrainImagesOptions {
    let unet = default_options();
    TrainImagesOptions {
        steps: unet.steps,
        batch: unet.batch,
        out: PathBuf::from("out/dit"),
        ..TrainImagesOptions::default()
    }
}

/// The diffusion DiT trains with: linear β, T = 1000, ε; with `learn_sigma` the learned-range
/// variance and the hybrid loss (MSE + variational bound), else the U-Net's fixed variance.
pub fn dit_diffusion(learn_sigma: bool) -> Diffusion {
    if learn_sigma {
        Diffusion::dit()
    } else {
        unet_diffusion()
    }
}

/// Loads `opts.data`, builds a DiT shaped by `config` with the data's side, channels and
/// classes (seeded with `opts.seed`), trains it, samples it and saves it (with `pos_embed`).
pub fn train_dit(config: &DiTConfig, opts: &TrainImagesOptions) -> Result<TrainImagesReport> {
    let data = TrainData::load(opts)?;
    let (c, h, w) = data.sample_shape();
    if h != w {
        return Err(Error::new(
            format!(
                "{} has {h}×{w} samples; DiT takes square ones",
                opts.data.name()
            ),
            "use square images (--pixel-size sets the side in pixel space)",
        ));
    }
    let config = DiTConfig {
        input_size: h,
        in_channels: c,
        num_classes: data.num_classes(),
        class_dropout_prob: opts.label_dropout,
        ..config.clone()
    };
    config.validate()?;
    let mut model = DiT::new(config, &mut rng(opts.seed))?;
    let (t, d) = model.pos_embed().dim();
    let pos = model.pos_embed().to_shape((1, t, d)).expect("contiguous");
    let info = ModelInfo {
        name: "dit".into(),
        in_channels: c,
        null_label: Some(model.null_label()),
        flops_per_sample: model.flops(),
        metadata: model.config.to_metadata(),
        buffers: vec![(POS_EMBED.to_string(), pos.to_owned().into_dyn())],
    };
    let diffusion = dit_diffusion(model.config.learn_sigma);
    train_images(&mut model, &info, &diffusion, &data, opts)
}

/// Builds the named model sized to `opts.data` (its channels, side and classes), trains it
/// with the image trainer and returns the report. `unet` shapes the U-Net; `learn_sigma`
/// chooses DiT's output (ε and the variance, or ε only), `conditioning` how its blocks read
/// the timestep and class.
pub fn train_model(
    name: &ModelName,
    unet: &UNetConfig,
    learn_sigma: bool,
    conditioning: Conditioning,
    opts: &TrainImagesOptions,
) -> Result<TrainImagesReport> {
    match name {
        ModelName::UNet => crate::unet::train::train_unet(unet, opts),
        ModelName::DiT(n) => {
            // Sized to the data by train_dit; 8×8×4 (our digit latents) only to check the name.
            let config = DiTConfig {
                learn_sigma,
                conditioning,
                ..DiTConfig::named(n, 8, 4, 10)?
            };
            train_dit(&config, opts)
        }
    }
}
