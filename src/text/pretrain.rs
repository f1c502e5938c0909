//! Pre-training the text encoder with a tiny CLIP, measuring caption → clip retrieval, and
//! the text encoder's own checkpoint (the frozen part the video DiT uses).
//!
//! The loop: shuffled batches of matching (caption, clip) pairs, [`Clip::forward`] /
//! [`Clip::backward`], AdamW ([`crate::optim`]) under a warm-up + cosine schedule. Captions
//! with the same content inside a batch are false negatives, as in CLIP; with a small
//! vocabulary they are common, so the loss does not reach 0.

use crate::error::{Error, Result};
use crate::io::checkpoint::{load_checkpoint, read_metadata, save_checkpoint};
use crate::io::metadata::MetaReader;
use crate::io::progress::{progress, say};
use crate::optim::{AdamW, AdamWConfig, CosineSchedule};
use crate::param::Parameters;
use crate::tensor::rng;
use crate::text::clip::{Clip, ClipConfig};
use crate::text::contrastive::cosine_similarity;
use crate::text::encoder::{TextEncoder, TextEncoderConfig};
use crate::text::video_tower::ClipVideoConfig;
use ndarray::{Array2, ArrayView5, Axis};
use ndarray_rand::rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to pre-train.
#[derive(Clone, Debug)]
pub struct PretrainOptions {
    pub steps: u64,
    /// Pairs per batch (64): every other pair of the batch is a negative.
    pub batch: usize,
    /// Peak learning rate of AdamW (1e-3), after a linear warm-up of `warmup_steps`, then a
    /// cosine down to a tenth.
    pub lr: f32,
    pub warmup_steps: u64,
    /// AdamW's decoupled weight decay (PyTorch's default 0.01, on every parameter).
    pub weight_decay: f32,
    pub seed: u64,
    /// Where the text encoder's checkpoint goes.
    pub out: PathBuf,
    /// Joint embedding width `P` (64).
    pub embed: usize,
    /// The video tower's per-frame width `D` (64).
    pub video_hidden: usize,
    /// The tokenizer's vocabulary fingerprint, stored in the checkpoint.
    pub vocab_fingerprint: String,
}

impl PretrainOptions {
    /// The defaults, writing to `out`.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        PretrainOptions {
            steps: 2000,
            batch: 64,
            lr: 1e-3,
            warmup_steps: 100,
            weight_decay: 0.01,
            seed: 0,
            out: out.into(),
            embed: 64,
            video_hidden: 64,
            vocab_fingerprint: String::new(),
        }
    }
}

/// What pre-training measured.
#[derive(Clone, Debug)]
pub struct PretrainReport {
    /// Caption → clip retrieval on the eval pairs (see [`retrieval`]).
    pub top1: f32,
    pub top5: f32,
    /// Top-1 on the first (up to) as many train pairs as there are eval pairs.
    pub train_top1: f32,
    /// Mean loss over the last tenth of the steps.
    pub final_loss: f32,
    pub seconds: f32,
    pub checkpoint: PathBuf,
}

/// Trains a CLIP on the train pairs, measures retrieval on both sets, saves the text
/// encoder to `opts.out`. ids, mask: (N, L); clips: (N, C, F, H, W), H and W even.
#[allow(clippy::too_many_arguments)]
pub fn pretrain_clip(
    train_ids: &Array2<usize>,
    train_mask: &Array2<bool>,
    train_clips: ArrayView5<f32>,
    eval_ids: &Array2<usize>,
    eval_mask: &Array2<bool>,
    eval_clips: ArrayView5<f32>,
    cfg: TextEncoderConfig,
    opts: &PretrainOptions,
) -> Result<PretrainReport> {
    let (_, c, f, h, w) = train_clips.dim();
    let config = ClipConfig {
        text: cfg,
        video: ClipVideoConfig {
            channels: c,
            max_frames: f,
            frame: (h, w),
            hidden: opts.video_hidden,
        },
        embed: opts.embed,
    };
    config.validate()?;
    check_pairs("train", train_ids, train_mask, train_clips, &cfg)?;
    check_pairs("eval", eval_ids, eval_mask, eval_clips, &cfg)?;
    if eval_clips.shape()[1..] != train_clips.shape()[1..] {
        return Err(Error::new(
            format!(
                "eval clips {:?} and train clips {:?} differ in shape",
                eval_clips.shape(),
                train_clips.shape()
            ),
            "give eval clips of the same channels, frames and size",
        ));
    }
    let n = train_ids.nrows();
    if opts.batch < 2 || opts.batch > n || opts.steps == 0 {
        return Err(Error::new(
            format!(
                "batch {} of {n} train pairs for {} steps",
                opts.batch, opts.steps
            ),
            "use a batch of at least 2 and at most the number of train pairs, and ≥ 1 step",
        ));
    }
    let start = Instant::now();
    let mut r = rng(opts.seed);
    let mut clip = Clip::new(config, &mut r);
    let mut opt = AdamW::new(AdamWConfig {
        lr: opts.lr,
        weight_decay: opts.weight_decay,
        ..AdamWConfig::default()
    });
    let sched = CosineSchedule {
        base_lr: opts.lr,
        min_lr: opts.lr * 0.1,
        warmup_steps: opts.warmup_steps.min(opts.steps / 10),
        total_steps: opts.steps,
    };
    let bar = progress(opts.steps, "pretrain CLIP");
    let report_every = opts.steps.div_ceil(10);
    let mut order: Vec<usize> = Vec::new();
    let mut losses = Vec::with_capacity(opts.steps as usize);
    for step in 0..opts.steps {
        if order.len() < opts.batch {
            order = (0..n).collect();
            order.shuffle(&mut r);
        }
        let idx = order.split_off(order.len() - opts.batch);
        let ids = train_ids.select(Axis(0), &idx); // (B, L)
        let mask = train_mask.select(Axis(0), &idx);
        let clips = train_clips.select(Axis(0), &idx); // (B, C, F, H, W)
        clip.zero_grad();
        let (loss, cache) = clip.forward(&ids, &mask, &clips);
        clip.backward(&cache, 1.0);
        opt.lr = sched.lr_at(step);
        opt.step(&mut clip);
        if !loss.is_finite() {
            return Err(Error::new(
                format!("the CLIP loss became {loss} at step {step}"),
                "lower the learning rate",
            ));
        }
        losses.push(loss);
        bar.set_message(format!("loss {loss:.4}"));
        bar.inc(1);
        if (step + 1) % report_every == 0 || step + 1 == opts.steps {
            let tail = &losses[losses.len().saturating_sub(report_every as usize)..];
            let mean = tail.iter().sum::<f32>() / tail.len() as f32;
            let t = clip.scale().exp();
            say(
                &bar,
                format!("step {:>6}: loss {mean:.4}, logit scale {t:.1}", step + 1),
            );
        }
    }
    bar.finish();
    let tail = &losses[losses.len() - (losses.len() / 10).max(1)..];
    let final_loss = tail.iter().sum::<f32>() / tail.len() as f32;
    let (top1, top5) = retrieval(&clip, eval_ids, eval_mask, eval_clips);
    let m = eval_ids.nrows().min(n);
    let (train_top1, _) = retrieval(
        &clip,
        &train_ids.slice(ndarray::s![..m, ..]).to_owned(),
        &train_mask.slice(ndarray::s![..m, ..]).to_owned(),
        train_clips.slice(ndarray::s![..m, .., .., .., ..]),
    );
    let extra: BTreeMap<String, String> = [
        ("pretrain.steps", opts.steps.to_string()),
        ("pretrain.top1", format!("{top1:.4}")),
        ("pretrain.top5", format!("{top5:.4}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    save_text_encoder(&opts.out, &mut clip.text, &opts.vocab_fingerprint, &extra)?;
    Ok(PretrainReport {
        top1,
        top5,
        train_top1,
        final_loss,
        seconds: start.elapsed().as_secs_f32(),
        checkpoint: opts.out.clone(),
    })
}

/// Caption → clip retrieval accuracy `(top-1, top-5)`: for each caption, every clip of the
/// set is ranked by cosine similarity. A hit is a clip in the top 1 (top 5) whose caption is
/// the query's caption — its own clip, **or another clip with the same caption** (same
/// valid ids): with a small vocabulary two clips often share a caption, and neither tower can
/// tell such clips apart, so counting only the query's own clip would punish nothing wrong.
pub fn retrieval(
    clip: &Clip,
    ids: &Array2<usize>,
    mask: &Array2<bool>,
    clips: ArrayView5<f32>,
) -> (f32, f32) {
    const CHUNK: usize = 256;
    let n = ids.nrows();
    let mut t = Vec::new();
    let mut v = Vec::new();
    for s in (0..n).step_by(CHUNK) {
        let e = (s + CHUNK).min(n);
        let rows = ndarray::s![s..e, ..];
        t.push(clip.encode_text(&ids.slice(rows).to_owned(), &mask.slice(rows).to_owned()));
        v.push(clip.encode_video(&clips.slice(ndarray::s![s..e, .., .., .., ..]).to_owned()));
    }
    let cat = |parts: Vec<Array2<f32>>| {
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(0), &views).expect("same widths")
    };
    let sim = cosine_similarity(&cat(t), &cat(v)); // (N, N)
    let caption = |i: usize| -> Vec<usize> {
        ids.row(i)
            .iter()
            .zip(mask.row(i))
            .filter(|(_, &m)| m)
            .map(|(&x, _)| x)
            .collect()
    };
    let captions: Vec<Vec<usize>> = (0..n).map(caption).collect();
    let (mut hit1, mut hit5) = (0usize, 0usize);
    for (i, row) in sim.outer_iter().enumerate() {
        let mut rank: Vec<usize> = (0..n).collect();
        rank.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        let hit = |j: &usize| captions[*j] == captions[i];
        hit1 += rank.iter().take(1).any(hit) as usize;
        hit5 += rank.iter().take(5).any(hit) as usize;
    }
    (hit1 as f32 / n as f32, hit5 as f32 / n as f32)
}

/// Checks a set of pairs: matching rows, a valid prefix of ≥ 1 token, ids in the vocabulary.
fn check_pairs(
    name: &str,
    ids: &Array2<usize>,
    mask: &Array2<bool>,
    clips: ArrayView5<f32>,
    cfg: &TextEncoderConfig,
) -> Result<()> {
    let (n, l) = ids.dim();
    if n == 0 || mask.dim() != (n, l) || clips.shape()[0] != n || l > cfg.max_len {
        return Err(Error::new(
            format!(
                "{name} set: ids {:?}, mask {:?} and clips {:?} do not make N ≥ 1 pairs of ≤ {} tokens",
                ids.shape(),
                mask.shape(),
                clips.shape(),
                cfg.max_len
            ),
            "give ids and mask (N, L) and clips (N, C, F, H, W) for the same N",
        ));
    }
    for (i, row) in mask.outer_iter().enumerate() {
        let len = row.iter().take_while(|&&m| m).count();
        if len == 0 || row.iter().skip(len).any(|&m| m) {
            return Err(Error::new(
                format!("{name} caption {i}: the mask is not a non-empty prefix"),
                "mark the first len ≥ 1 tokens of every caption valid (the tokenizer's batch does)",
            ));
        }
    }
    if let Some(&bad) = ids.iter().find(|&&x| x >= cfg.vocab) {
        return Err(Error::new(
            format!(
                "{name} set: token id {bad} is outside the vocabulary of {}",
                cfg.vocab
            ),
            "build the encoder with the tokenizer's vocab_size()",
        ));
    }
    Ok(())
}

/// The `model` metadata value of a text encoder checkpoint.
const MODEL: &str = "minisora-text-encoder";
const KEYS: [&str; 5] = [
    "text.vocab",
    "text.max_len",
    "text.width",
    "text.depth",
    "text.heads",
];

/// Saves the encoder's parameters with its config, the vocabulary fingerprint and `extra`
/// metadata (whose keys must not be `model`, `vocab_fingerprint` or `text.*`), atomically.
pub fn save_text_encoder(
    path: &Path,
    encoder: &mut TextEncoder,
    vocab_fingerprint: &str,
    extra_meta: &BTreeMap<String, String>,
) -> Result<()> {
    let c = encoder.config;
    let mut meta = extra_meta.clone();
    let values = [c.vocab, c.max_len, c.width, c.depth, c.heads];
    let ours = KEYS
        .iter()
        .zip(values)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([
            ("model".to_string(), MODEL.to_string()),
            (
                "vocab_fingerprint".to_string(),
                vocab_fingerprint.to_string(),
            ),
        ]);
    for (k, v) in ours {
        if meta.insert(k.clone(), v).is_some() {
            return Err(Error::new(
                format!(
                    "the extra metadata for {} has the reserved key `{k}`",
                    path.display()
                ),
                "rename that key",
            ));
        }
    }
    save_checkpoint(path, encoder, &meta)
}

/// Loads a checkpoint written by [`save_text_encoder`]: the encoder (built from the stored
/// config) and the vocabulary fingerprint.
pub fn load_text_encoder(path: &Path) -> Result<(TextEncoder, String)> {
    let meta = read_metadata(path)?;
    if meta.get("model").map(String::as_str) != Some(MODEL) {
        return Err(Error::new(
            format!(
                "{} is not a text encoder checkpoint (model = {:?})",
                path.display(),
                meta.get("model")
            ),
            "give the file written by CLIP pre-training (save_text_encoder)",
        ));
    }
    let m = MetaReader::new(&meta, "text encoder", "save the text encoder again");
    let cfg = TextEncoderConfig {
        vocab: m.usize(KEYS[0])?,
        max_len: m.usize(KEYS[1])?,
        width: m.usize(KEYS[2])?,
        depth: m.usize(KEYS[3])?,
        heads: m.usize(KEYS[4])?,
    };
    cfg.validate()?;
    let fingerprint = m.text("vocab_fingerprint")?.to_string();
    let mut encoder = TextEncoder::new(cfg, &mut rng(0));
    load_checkpoint(path, &mut encoder)?;
    Ok((encoder, fingerprint))
}
