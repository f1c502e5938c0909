//! The U-Net's recipe, shared by `examples/unet.rs` and `minisora train --model unet`: load the
//! data, size the model to it (channels, classes), and hand both to the trainer
//! [`train`] — the same trainer DiT uses, so the two are compared on equal terms.
//!
//! The diffusion is DiT's except for the variance: linear schedule, T = 1000, ε-prediction,
//! with a fixed variance ($\tilde\beta_t$), because the samples are drawn with DDIM, which
//! does not use it.

use super::{load_images, Family, Net, Recipe};
use crate::diffusion::{BetaSchedule, Diffusion, LossType, Prediction, Schedule, VarianceType};
use crate::error::{Error, Result};
use crate::io::checkpoint::{load_checkpoint, Tensors};
use crate::tensor::rng;
use crate::train::state::assign_weights;
use crate::train::{train, ModelInfo, Source, TrainOptions, TrainReport};
use crate::unet::{UNet, UNetConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The U-Net in the registry.
pub const FAMILY: Family = Family {
    key: "unet",
    accepts: |name| name == "unet" || name == "u-net",
    recipe: unet_recipe,
    train: |_, flags, opts| train_unet(&flags.unet, opts),
    load,
};

impl Net for UNet {
    fn null_label(&self) -> Option<usize> {
        UNet::null_label(self)
    }
}

/// The default latent file (`minisora encode` writes it).
pub const DEFAULT_LATENTS: &str = "out/latents/digits.safetensors";
/// The default VAE checkpoint (`minisora train-vae` writes it).
pub const DEFAULT_VAE: &str = "out/vae/vae.safetensors";

/// The diffusion the U-Net trains with: linear β, T = 1000, ε, fixed small variance, MSE.
pub fn unet_diffusion() -> Diffusion {
    Diffusion::new(
        Schedule::new(BetaSchedule::Linear, 1000),
        Prediction::Epsilon,
        VarianceType::FixedSmall,
        LossType::Mse,
    )
}

// ANCHOR: unet_train_options
/// The run of `examples/unet.rs` (and the defaults of `minisora train --model unet`):
/// class-conditional on the digit latents, sized to finish in under five minutes on two
/// cores. Measured: with the same images seen, 2000 steps of batch 32 drew clearly cleaner
/// digits than 1000 steps of batch 64 (more updates matter more than bigger batches here);
/// 1800 steps keep the run under five minutes with the cores shared. Guidance 2–6 all look
/// alike and far better than 1 (no guidance); 4 is DiT's choice.
pub fn default_options() -> TrainOptions {
    TrainOptions {
        data: Source::Latents(PathBuf::from(DEFAULT_LATENTS)),
        vae: PathBuf::from(DEFAULT_VAE),
        steps: 1800,
        batch: 32,
        lr: 1e-3,
        warmup_steps: 100,
        lr_decay: true,
        grad_clip: Some(1.0),
        ema_decay: 0.9999,
        label_dropout: 0.1,
        guidance: 4.0,
        sample_steps: 50,
        out: PathBuf::from("out/unet"),
        ..TrainOptions::default()
    }
}

/// The U-Net's recipes: [`default_options`] on the CPU; improved-diffusion's (AdamW at a
/// constant lr 1e-4, no warm-up and no clipping) as `paper`.
pub fn unet_recipe(recipe: Recipe) -> TrainOptions {
    match recipe {
        Recipe::Cpu => default_options(),
        Recipe::Paper => TrainOptions {
            lr: 1e-4,
            warmup_steps: 0,
            lr_decay: false,
            grad_clip: None,
            ..default_options()
        },
    }
}

/// The U-Net of the example: `UNetConfig::default()` at half width (32/64 channels,
/// attention at 4×4, 1.08 M parameters, 0.023 Gflops). The default width 64 (4.3 M
/// parameters, 0.092 Gflops) trains at 78 img/s against ~250 on two cores: in five minutes
/// it would see a quarter of the images, too few.
pub fn default_config() -> UNetConfig {
    UNetConfig {
        model_channels: 32,
        ..UNetConfig::default()
    }
}
// ANCHOR_END: unet_train_options

/// Loads `opts.data`, builds a U-Net shaped by `config` with the data's channels and classes
/// (seeded with `opts.seed`), trains it, samples it and saves it.
pub fn train_unet(config: &UNetConfig, opts: &TrainOptions) -> Result<TrainReport> {
    let (data, [c, h, w]) = load_images(opts, "U-Net")?;
    let config = UNetConfig {
        in_channels: c,
        out_channels: c,
        num_classes: Some(data.num_classes()),
        ..config.clone()
    };
    let f = config.downsample_factor();
    if h % f != 0 || w % f != 0 {
        return Err(Error::new(
            format!(
                "{} has {h}×{w} samples, which {} levels cannot halve {} times",
                opts.data.name(),
                config.channel_mult.len(),
                config.channel_mult.len() - 1
            ),
            "use fewer levels (--channel-mult) or a size divisible by 2^(levels − 1)",
        ));
    }
    let mut model = UNet::new(config, &mut rng(opts.seed))?;
    let info = ModelInfo {
        captions: false,
        name: "unet".into(),
        in_channels: c,
        null_label: model.null_label(),
        flops_per_sample: model.flops(h, w),
        metadata: model.config.to_metadata(),
        buffers: Vec::new(),
    };
    train(&mut model, &info, &unet_diffusion(), &data, opts)
}

/// A U-Net checkpoint: the config from the metadata, the weights (or the EMA's).
fn load(
    path: &Path,
    tensors: &Tensors,
    meta: &BTreeMap<String, String>,
    training: bool,
) -> Result<Box<dyn Net>> {
    let mut unet = UNet::new(UNetConfig::from_metadata(meta)?, &mut rng(0))?;
    if training {
        assign_weights(path, &mut unet, tensors, "ema.")?;
    } else {
        load_checkpoint(path, &mut unet)?;
    }
    Ok(Box::new(unet))
}
