//! The metadata every checkpoint of a run carries (safetensors' string map): the model's
//! config and name, the data (its sample shape, classes, latent scale), the diffusion, and the
//! options that must not change on resume (`train.opt.*`); and the diffusion read back from it.

use super::data::TrainData;
use super::options::{ModelInfo, TrainOptions};
use crate::diffusion::schedule::betas;
use crate::diffusion::{BetaSchedule, Diffusion, LossType, Prediction, Schedule, VarianceType};
use crate::error::{Error, Result};
use crate::io::metadata::{list_text, MetaReader};
use std::collections::BTreeMap;

/// Prefix of the options that must match on resume.
pub const OPTION_PREFIX: &str = "train.opt.";

/// The name of `schedule`'s β kind if it is one of [`BetaSchedule`]'s, else `custom`.
pub fn schedule_name(schedule: &Schedule) -> &'static str {
    let t = schedule.num_timesteps();
    let kinds = [
        (BetaSchedule::Linear, "linear"),
        (BetaSchedule::Cosine, "cosine"),
        (BetaSchedule::ScaledLinear, "scaled_linear"),
    ];
    kinds
        .into_iter()
        .find(|(k, _)| betas(*k, t) == schedule.betas)
        .map_or("custom", |(_, name)| name)
}

/// The metadata of this run's checkpoints: the model's config and name, the diffusion, the
/// data, and the options that must match on resume (`train.opt.*`).
pub fn run_metadata(
    info: &ModelInfo,
    diffusion: &Diffusion,
    data: &TrainData,
    opts: &TrainOptions,
) -> BTreeMap<String, String> {
    let mut meta = info.metadata.clone();
    let clip = opts.grad_clip.map_or("none".into(), |v| v.to_string());
    let mut opt = vec![
        ("data", opts.data.name()),
        ("n_images", opts.n_images.to_string()),
        ("pixel_size", opts.pixel_size.to_string()),
        ("seed", opts.seed.to_string()),
        ("batch", opts.batch.to_string()),
        ("lr", opts.lr.to_string()),
        ("weight_decay", opts.weight_decay.to_string()),
        ("warmup_steps", opts.warmup_steps.to_string()),
        ("lr_decay", opts.lr_decay.to_string()),
        ("grad_clip", clip),
        ("ema_decay", opts.ema_decay.to_string()),
        ("label_dropout", opts.label_dropout.to_string()),
        ("latent_norm", format!("{:?}", opts.latent_norm)),
    ];
    if let Some(m) = &opts.frame_mask {
        let kinds: Vec<&str> = m.kinds.iter().map(|k| k.name()).collect();
        opt.push(("frame_mask", format!("{}:{}", m.prob, kinds.join(","))));
    }
    if opts.lr_decay {
        // The cosine schedule ends at the last step, so the length fixes every step's rate.
        opt.push(("steps", opts.steps.to_string()));
    }
    for (k, v) in opt {
        meta.insert(format!("{OPTION_PREFIX}{k}"), v);
    }
    if data.norm.is_global() {
        meta.insert("train.scale_factor".into(), data.norm.scale[0].to_string());
    }
    meta.extend(data.norm.to_metadata());
    if let Some(dataset) = &data.dataset {
        meta.insert("train.dataset".into(), dataset.clone());
    }
    for (k, v) in [
        ("model", info.name.clone()),
        ("train.data", opts.data.name()),
        ("train.latent", data.is_latent().to_string()),
        ("train.shape", list_text(data.sample_shape())),
        ("train.num_classes", data.num_classes().to_string()),
        ("train.steps", opts.steps.to_string()),
        ("train.batch", opts.batch.to_string()),
        ("train.lr", opts.lr.to_string()),
        ("train.seed", opts.seed.to_string()),
        ("train.guidance", opts.guidance.to_string()),
        (
            "diffusion.schedule",
            schedule_name(&diffusion.schedule).into(),
        ),
        ("diffusion.timesteps", diffusion.num_timesteps().to_string()),
        (
            "diffusion.prediction",
            format!("{:?}", diffusion.prediction),
        ),
        ("diffusion.variance", format!("{:?}", diffusion.variance)),
        ("diffusion.loss", format!("{:?}", diffusion.loss)),
    ] {
        meta.insert(k.to_string(), v);
    }
    meta
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
