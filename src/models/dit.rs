//! DiT's recipe, shared by the demo, the experiments and `minisora train --model DiT-…`: load
//! the data, size the model to it (side, channels, classes), and hand both to the trainer
//! [`train`] with DiT's diffusion; and a DiT checkpoint loaded back for sampling.

use super::unet::unet_diffusion;
use super::{load_images, Family, ModelFlags, Net, Recipe};
use crate::diffusion::Diffusion;
use crate::dit::checkpoint::POS_EMBED;
use crate::dit::{load_dit, DiT, DiTConfig};
use crate::error::{Error, Result};
use crate::io::checkpoint::Tensors;
use crate::tensor::rng;
use crate::train::state::assign_weights;
use crate::train::{train, ModelInfo, TrainOptions, TrainReport};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// DiT in the registry: any config name `DiT-<size>/<patch>`.
pub const FAMILY: Family = Family {
    key: "dit",
    accepts: |name| name.starts_with("dit"),
    recipe: dit_options,
    train: train_named,
    load,
};

impl Net for DiT {
    fn null_label(&self) -> Option<usize> {
        Some(DiT::null_label(self))
    }
}

// ANCHOR: dit_recipe
/// DiT's recipes, the defaults of `minisora train --model DiT-…`.
///
/// `paper` (facebookresearch/DiT `train.py`): AdamW at a constant lr 1e-4 with no weight
/// decay, no warm-up and no clipping, EMA 0.9999, label dropout 0.1 — for batch 256 × 400k
/// steps. Here 1800 steps of batch 32 (the U-Net's run), with the EMA's warm-up so a short
/// run is usable.
///
/// `cpu` (the default), measured on the real digits (`uci-digits`) where `paper` draws no
/// recognisable class in this budget: a 60× larger peak with a warm-up, cosine decay to a
/// tenth and clipping, batch 64 × 2000 steps (89 epochs of 1,437 images, 132 s measured on
/// two cores), sampled at guidance 1.5. The DiT chapter's table shows what each change does.
pub fn dit_options(recipe: Recipe) -> TrainOptions {
    let paper = TrainOptions {
        steps: 1800,
        batch: 32,
        out: PathBuf::from("out/dit"),
        ..TrainOptions::default()
    };
    match recipe {
        Recipe::Paper => paper,
        Recipe::Cpu => TrainOptions {
            steps: 2000,
            batch: 64,
            lr: 6e-3,
            warmup_steps: 100,
            lr_decay: true,
            grad_clip: Some(1.0),
            guidance: 1.5,
            ..paper
        },
    }
}
// ANCHOR_END: dit_recipe

/// The diffusion DiT trains with: linear β, T = 1000, ε; with `learn_sigma` the learned-range
/// variance and the hybrid loss (MSE + variational bound), else the U-Net's fixed variance.
pub fn dit_diffusion(learn_sigma: bool) -> Diffusion {
    if learn_sigma {
        Diffusion::dit()
    } else {
        unet_diffusion()
    }
}

/// The registry's entry: the config `name` (sized to the data by [`train_dit`]; 8×8×4, our
/// digit latents, only to check the name) with the flags' output and conditioning.
fn train_named(name: &str, flags: &ModelFlags, opts: &TrainOptions) -> Result<TrainReport> {
    let config = DiTConfig {
        learn_sigma: flags.learn_sigma,
        conditioning: flags.conditioning,
        ..DiTConfig::named(name, 8, 4, 10)?
    };
    train_dit(&config, opts)
}

/// Loads `opts.data`, builds a DiT shaped by `config` with the data's side, channels and
/// classes (seeded with `opts.seed`), trains it, samples it and saves it (with `pos_embed`).
pub fn train_dit(config: &DiTConfig, opts: &TrainOptions) -> Result<TrainReport> {
    let (data, [c, h, w]) = load_images(opts, "image DiT")?;
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
    let info = dit_info(&model);
    let diffusion = dit_diffusion(model.config.learn_sigma);
    train(&mut model, &info, &diffusion, &data, opts)
}

/// What the trainer needs to know about a DiT: its config and its fixed `pos_embed`.
pub fn dit_info(model: &DiT) -> ModelInfo {
    let (t, d) = model.pos_embed().dim();
    let pos = model.pos_embed().to_shape((1, t, d)).expect("contiguous");
    ModelInfo {
        captions: false,
        name: "dit".into(),
        in_channels: model.config.in_channels,
        null_label: Some(model.null_label()),
        flops_per_sample: model.flops(),
        metadata: model.config.to_metadata(),
        buffers: vec![(POS_EMBED.to_string(), pos.to_owned().into_dyn())],
    }
}

/// A DiT checkpoint: the config from the metadata, the weights (or the EMA's).
fn load(
    path: &Path,
    tensors: &Tensors,
    meta: &BTreeMap<String, String>,
    training: bool,
) -> Result<Box<dyn Net>> {
    if training {
        let mut dit = DiT::new(DiTConfig::from_metadata(meta)?, &mut rng(0))?;
        assign_weights(path, &mut dit, tensors, "ema.")?;
        Ok(Box::new(dit))
    } else {
        Ok(Box::new(load_dit(path)?))
    }
}
