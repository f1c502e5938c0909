//! A training checkpoint: everything needed to continue a run exactly where it stopped, in one
//! safetensors file written atomically.
//!
//! Tensors: the model's parameters under their own names (PyTorch `state_dict` names), the
//! EMA weights under `ema.<name>`, AdamW's moments under `adamw.<name>.exp_avg` and
//! `adamw.<name>.exp_avg_sq`, model buffers that are not parameters (DiT's `pos_embed`) under
//! their names, and the loss of every step so far (`train.losses`). Metadata: the model's
//! config, `train.step`, `train.seed`, AdamW's step count, the EMA's update count, and every
//! option that must not change on resume (`train.opt.*`).
//!
//! The random state. `StdRng` cannot be saved, so no generator lives across steps: every
//! random draw of step `n` (the latent sample, the timesteps, the noise, the label dropout)
//! comes from its own generator `rng(seed_for(seed, n))`, and the batch order comes from a
//! [`Batcher`](crate::data::Batcher) seeded once and rebuilt on resume by replaying it `n`
//! times (which only shuffles index lists). The whole random state is therefore `(seed, n)`,
//! and a resumed run is bit-identical to an uninterrupted one (`tests/train_resume.rs`).

use crate::error::{Error, Result};
use crate::io::checkpoint::{load_tensors, save_checkpoint_with, save_tensors, Tensors};
use crate::optim::{AdamW, Ema};
use crate::param::Parameters;
use ndarray::{Array1, ArrayD, ArrayViewD};
use std::collections::BTreeMap;
use std::path::Path;

/// The `contents` metadata of a training checkpoint.
pub const TRAIN_STATE_CONTENTS: &str = "minisora-train-state-v1";
/// Prefix of the options that must match on resume.
pub use super::metadata::OPTION_PREFIX;

// ANCHOR: seed_for
/// The seed of step `step`'s generator: SplitMix64 of `seed` and `step`, so neighbouring steps
/// and neighbouring seeds get unrelated streams.
pub fn seed_for(seed: u64, step: u64) -> u64 {
    let mut z = seed ^ step.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
// ANCHOR_END: seed_for

/// What a training checkpoint restores besides the model's weights.
#[derive(Clone, Debug)]
pub struct Resumed {
    /// Steps already taken.
    pub step: u64,
    /// The loss of each of them.
    pub losses: Vec<f32>,
    /// The checkpoint's metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Every parameter of `model` as `(prefix + name, value)`.
fn weights(model: &mut impl Parameters, prefix: &str) -> Vec<(String, ArrayD<f32>)> {
    let mut out = Vec::new();
    model.visit("", &mut |name, p| {
        out.push((format!("{prefix}{name}"), p.value.clone()))
    });
    out
}

/// Writes a training checkpoint. `metadata` holds the model config, `train.seed` and the
/// `train.opt.*` options; the step, AdamW's `t` and the EMA's update count are added here.
pub fn save_train_state(
    path: &Path,
    model: &mut impl Parameters,
    buffers: &[(String, ArrayD<f32>)],
    opt: &AdamW,
    ema: &Ema,
    losses: &[f32],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let mut tensors = weights(model, "");
    tensors.extend(buffers.iter().cloned());
    tensors.extend(
        ema.shadow()
            .iter()
            .map(|(n, t)| (format!("ema.{n}"), t.clone())),
    );
    tensors.extend(
        opt.export_state()
            .into_iter()
            .map(|(n, t)| (format!("adamw.{n}"), t)),
    );
    let loss_tensor = Array1::from_vec(losses.to_vec()).into_dyn();
    let mut views: Vec<(&str, ArrayViewD<f32>)> = tensors
        .iter()
        .map(|(n, t)| (n.as_str(), t.view()))
        .collect();
    views.push(("train.losses", loss_tensor.view()));
    let mut meta = metadata.clone();
    meta.insert("contents".into(), TRAIN_STATE_CONTENTS.into());
    meta.insert("train.step".into(), losses.len().to_string());
    meta.insert("train.adamw_t".into(), opt.t.to_string());
    meta.insert("train.ema_updates".into(), ema.updates.to_string());
    save_tensors(path, &views, &meta)
}

/// True if `meta` is a training checkpoint's metadata.
pub fn is_train_state(meta: &BTreeMap<String, String>) -> bool {
    meta.get("contents").map(String::as_str) == Some(TRAIN_STATE_CONTENTS)
}

/// Reads a training checkpoint: its tensors and metadata, or an error if it is another file.
pub fn read_train_state(path: &Path) -> Result<(Tensors, BTreeMap<String, String>)> {
    let (tensors, meta) = load_tensors(path)?;
    if !is_train_state(&meta) {
        return Err(Error::new(
            format!(
                "{} is not a training checkpoint (no contents = {TRAIN_STATE_CONTENTS})",
                path.display()
            ),
            "resume from a train_<step>.safetensors file written with --save-every",
        ));
    }
    Ok((tensors, meta))
}

/// Overwrites every parameter of `model` with `tensors[prefix + name]`; checks every name and
/// shape first, so on error the model is unchanged.
pub fn assign_weights(
    path: &Path,
    model: &mut impl Parameters,
    tensors: &Tensors,
    prefix: &str,
) -> Result<()> {
    for (name, shape) in model.param_shapes() {
        let key = format!("{prefix}{name}");
        match tensors.get(&key) {
            Some(t) if t.shape() == shape.as_slice() => {}
            Some(t) => {
                return Err(Error::new(
                    format!(
                        "tensor `{key}` has shape {:?} in {} but {shape:?} in the model",
                        t.shape(),
                        path.display()
                    ),
                    "the checkpoint is from another config: pick the matching checkpoint",
                ))
            }
            None => {
                return Err(Error::new(
                    format!("{} has no tensor `{key}`", path.display()),
                    "the checkpoint is from another model or is damaged: pick the matching one",
                ))
            }
        }
    }
    model.visit("", &mut |name, p| {
        p.value.assign(&tensors[&format!("{prefix}{name}")]);
    });
    Ok(())
}

/// The `train.opt.*` and model-config keys on which `stored` and `current` differ, as
/// `key: checkpoint X, now Y` lines.
fn mismatches(
    stored: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> Vec<String> {
    current
        .iter()
        .filter(|(k, _)| !k.starts_with("train.") || k.starts_with(OPTION_PREFIX))
        .filter_map(|(k, v)| {
            let old = stored.get(k).map_or("(missing)", String::as_str);
            (old != v).then(|| format!("{k}: checkpoint {old}, now {v}"))
        })
        .collect()
}

/// Restores a run from the checkpoint at `path` into `model`, `opt` and `ema` (made for the
/// same model). `current` is the metadata this run would save: its model config and
/// `train.opt.*` options must equal the checkpoint's, or the error lists the differences.
pub fn load_train_state(
    path: &Path,
    model: &mut impl Parameters,
    opt: &mut AdamW,
    ema: &mut Ema,
    current: &BTreeMap<String, String>,
) -> Result<Resumed> {
    if !path.exists() {
        return Err(Error::new(
            format!("no training checkpoint at {}", path.display()),
            "pass a train_<step>.safetensors file written with --save-every",
        ));
    }
    let (mut tensors, metadata) = read_train_state(path)?;
    let diff = mismatches(&metadata, current);
    if !diff.is_empty() {
        return Err(Error::new(
            format!(
                "cannot resume from {}: the run differs from the checkpoint's in {}",
                path.display(),
                diff.join("; ")
            ),
            "resume with the same model, data and options (see the checkpoint's metadata), \
             or start a new run without --resume",
        ));
    }
    let number = |key: &str| -> Result<u64> {
        metadata
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                Error::new(
                    format!("{}: {key} is missing or not a number", path.display()),
                    "the checkpoint is damaged: resume from another one",
                )
            })
    };
    let (step, adamw_t, updates) = (
        number("train.step")?,
        number("train.adamw_t")?,
        number("train.ema_updates")?,
    );
    // The EMA: its shadow is the model's weights at construction, so build it from the saved
    // EMA weights, then put the model's own weights in place.
    assign_weights(path, model, &tensors, "ema.")?;
    let (decay, warmup) = (ema.decay, ema.warmup);
    *ema = Ema::new(model, decay);
    ema.warmup = warmup;
    ema.updates = updates;
    assign_weights(path, model, &tensors, "")?;
    let losses: Vec<f32> = tensors
        .remove("train.losses")
        .map(|l| l.iter().copied().collect())
        .unwrap_or_default();
    let moments: Vec<(String, ArrayD<f32>)> = tensors
        .into_iter()
        .filter_map(|(k, t)| k.strip_prefix("adamw.").map(|n| (n.to_string(), t)))
        .collect();
    opt.import_state(model, adamw_t, moments)?;
    if losses.len() as u64 != step {
        return Err(Error::new(
            format!(
                "{} holds {} losses for {step} steps",
                path.display(),
                losses.len()
            ),
            "the checkpoint is damaged: resume from another one",
        ));
    }
    Ok(Resumed {
        step,
        losses,
        metadata,
    })
}

/// Saves the model's parameters (and its buffers, e.g. DiT's `pos_embed`) as a checkpoint.
pub fn save_model(
    path: &Path,
    model: &mut impl Parameters,
    buffers: &[(String, ArrayD<f32>)],
    meta: &BTreeMap<String, String>,
) -> Result<()> {
    let views: Vec<(&str, ArrayViewD<f32>)> = buffers
        .iter()
        .map(|(n, t)| (n.as_str(), t.view()))
        .collect();
    save_checkpoint_with(path, model, &views, meta)
}
