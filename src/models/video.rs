//! The video DiT's recipe: load latent clips (from `minisora encode-video`), size the model
//! to them (frames, side, channels, classes), optionally start from an inflated image DiT
//! (`minisora inflate`), and train it with the one trainer and DiT's diffusion; and a video
//! checkpoint loaded back for sampling.

use super::dit::dit_diffusion;
use super::{Family, ModelFlags, Net, Recipe};
use crate::error::{Error, Result};
use crate::io::checkpoint::Tensors;
use crate::param::Parameters;
use crate::tensor::rng;
use crate::train::state::assign_weights;
use crate::train::{
    train, train_buckets, Buckets, ModelInfo, Source, TrainData, TrainOptions, TrainReport,
};
use crate::video::checkpoint::{load_video_dit, tables};
use crate::video::{Layout, VideoDiT, VideoDiTConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The video DiT in the registry: `video-<size>/<patch>`.
pub const FAMILY: Family = Family {
    key: "video",
    accepts: |name| name.starts_with("video"),
    recipe: video_options,
    train: train_named,
    load,
};

/// The flags that shape a video DiT.
#[derive(Clone, Debug)]
pub struct VideoFlags {
    pub layout: Layout,
    /// Frames per patch (1: per-frame patches; more: tubelets).
    pub temporal_patch: usize,
    /// Start from this video checkpoint's weights (`minisora inflate` writes one).
    pub init: Option<PathBuf>,
    /// More latent clip files, each a bucket of its own shape ([`Buckets`]); the data's clips
    /// are the first bucket and size the model.
    pub buckets: Vec<PathBuf>,
}

impl Default for VideoFlags {
    /// Latte's layout with per-frame patches, from a fresh initialisation.
    fn default() -> Self {
        VideoFlags {
            layout: Layout::Alternating,
            temporal_patch: 1,
            init: None,
            buckets: Vec::new(),
        }
    }
}

impl Net for VideoDiT {
    fn null_label(&self) -> Option<usize> {
        Some(VideoDiT::null_label(self))
    }
}

// ANCHOR: video_recipe
/// The video DiT's recipes. `cpu` is DiT's CPU recipe (AdamW 6e-3 with warm-up, cosine decay,
/// clipping, learned σ, EMA, label dropout 0.1) at batch 16 for 1000 steps — each clip is
/// `F` frames, so a step costs about as much as the image DiT's batch of 64 at 8 frames × 2
/// (spatial and temporal blocks); `paper` is Latte's (and DiT's) 1e-4 constant.
pub fn video_options(recipe: Recipe) -> TrainOptions {
    let image = super::dit::dit_options(recipe);
    let out = PathBuf::from("out/video");
    match recipe {
        Recipe::Paper => TrainOptions { out, ..image },
        Recipe::Cpu => TrainOptions {
            steps: 1000,
            batch: 16,
            samples_per_class: 1,
            out,
            ..image
        },
    }
}
// ANCHOR_END: video_recipe

/// The registry's entry: `name` sized to the data's clips.
fn train_named(name: &str, flags: &ModelFlags, opts: &TrainOptions) -> Result<TrainReport> {
    let data = TrainData::load(opts)?;
    let &[c, f, h, w] = data.sample_shape() else {
        return Err(Error::new(
            format!("{} does not hold clips (C, F, H, W)", opts.data.name()),
            "train a video model on latent clips from `minisora encode-video`, or an image \
             DiT (--model dit-tiny/2) on images",
        ));
    };
    if h != w {
        return Err(Error::new(
            format!(
                "{} has {h}×{w} frames; the video DiT takes square ones",
                opts.data.name()
            ),
            "encode square frames",
        ));
    }
    let v = &flags.video;
    let mut config = VideoDiTConfig::named(
        name,
        v.layout,
        f,
        v.temporal_patch,
        h,
        c,
        data.num_classes(),
    )?;
    config.dit.learn_sigma = flags.learn_sigma;
    config.dit.class_dropout_prob = opts.label_dropout;
    let mut model = match &v.init {
        Some(path) => initial_weights(path, &config)?,
        None => VideoDiT::new(config, &mut rng(opts.seed))?,
    };
    if v.buckets.is_empty() {
        return train_video(&mut model, &data, opts);
    }
    if opts.frame_mask.is_some() {
        return Err(Error::new(
            "--frame-mask with --buckets: bucketed training does not draw frame masks",
            "train with frame masks on one latent file, or drop --frame-mask",
        ));
    }
    let mut buckets = vec![data];
    for path in &v.buckets {
        let o = TrainOptions {
            data: Source::Latents(path.clone()),
            ..opts.clone()
        };
        buckets.push(TrainData::load(&o)?);
    }
    train_video_buckets(&mut model, Buckets::new(buckets)?, opts)
}

/// [`train_buckets`] for `minisora train --buckets`, its report in the trainer's terms (no
/// figures: `minisora sample-video --frames … --size …` samples the shapes wanted).
fn train_video_buckets(
    model: &mut VideoDiT,
    data: Buckets,
    opts: &TrainOptions,
) -> Result<TrainReport> {
    let start = std::time::Instant::now();
    let info = video_info(model);
    let diffusion = dit_diffusion(model.config.dit.learn_sigma);
    let r = train_buckets(model, &info, &diffusion, &data, opts)?;
    let steps = r.losses.len();
    let report = TrainReport {
        params: model.num_params(),
        gflops: info.flops_per_sample as f64 / 1e9,
        final_loss: r.final_loss,
        trained_steps: steps as u64,
        seconds_per_step: r.train_seconds / steps as f64,
        images_per_second: (steps * opts.batch) as f64 / r.train_seconds,
        train_seconds: r.train_seconds,
        sample_seconds: 0.0,
        wall_seconds: start.elapsed().as_secs_f64(),
        checkpoint: r.checkpoint,
        losses: r.losses,
    };
    println!(
        "trained {steps} bucketed steps in {:.1} s; mean loss of the last 100 steps {:.4}; wrote {}",
        report.train_seconds,
        report.final_loss,
        report.checkpoint.display()
    );
    println!(
        "{{\"model\":\"video\",\"buckets\":{},\"final_loss\":{:.5},\"steps\":{steps},\"batch\":{},\"train_seconds\":{:.1}}}",
        data.buckets.len(),
        report.final_loss,
        opts.batch,
        report.train_seconds
    );
    Ok(report)
}

/// The model in `path` (an inflated or trained video checkpoint), which must have `config`'s
/// shape: the error names what differs.
fn initial_weights(path: &Path, config: &VideoDiTConfig) -> Result<VideoDiT> {
    let mut model = load_video_dit(path)?;
    model.config.dit.class_dropout_prob = config.dit.class_dropout_prob;
    if model.config != *config {
        return Err(Error::new(
            format!(
                "--init {}: its model ({} layout, {} frames, {} classes, depth {}, width {}, learned σ {}) \
                 is not the one asked for ({} layout, {} frames, {} classes, depth {}, width {}, learned σ {})",
                path.display(),
                model.config.layout.name(),
                model.config.frames,
                model.config.dit.num_classes,
                model.config.dit.depth,
                model.config.dit.hidden_size,
                model.config.dit.learn_sigma,
                config.layout.name(),
                config.frames,
                config.dit.num_classes,
                config.dit.depth,
                config.dit.hidden_size,
                config.dit.learn_sigma,
            ),
            "inflate the image DiT with the same --layout and --frames as the clips, and train \
             with the matching --model (video-<size>/<patch> of the image DiT's size)",
        ));
    }
    Ok(model)
}

/// Trains `model` on `data` with DiT's diffusion, the checkpoint holding Latte's two tables.
pub fn train_video(
    model: &mut VideoDiT,
    data: &TrainData,
    opts: &TrainOptions,
) -> Result<TrainReport> {
    let info = video_info(model);
    let diffusion = dit_diffusion(model.config.dit.learn_sigma);
    train(model, &info, &diffusion, data, opts)
}

/// What the trainer needs to know about a video DiT.
pub fn video_info(model: &VideoDiT) -> ModelInfo {
    ModelInfo {
        name: "video".into(),
        in_channels: model.config.dit.in_channels,
        null_label: Some(model.null_label()),
        flops_per_sample: model.flops(),
        metadata: model.config.to_metadata(),
        buffers: tables(model)
            .into_iter()
            .chain(model.text.iter().flat_map(|t| t.frozen_tensors()))
            .collect(),
        captions: model.text.is_some(),
    }
}

/// A video checkpoint: the config from the metadata, the weights (or the EMA's).
fn load(
    path: &Path,
    tensors: &Tensors,
    meta: &BTreeMap<String, String>,
    training: bool,
) -> Result<Box<dyn Net>> {
    if training {
        let mut model = VideoDiT::new(VideoDiTConfig::from_metadata(meta)?, &mut rng(0))?;
        assign_weights(path, &mut model, tensors, "ema.")?;
        if let Some(text) = &mut model.text {
            text.load_frozen(path, tensors)?;
        }
        Ok(Box::new(model))
    } else {
        Ok(Box::new(load_video_dit(path)?))
    }
}
