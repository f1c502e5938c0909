//! DiT checkpoints: one safetensors file laid out as the reference PyTorch `state_dict` —
//! every parameter under its name, plus `pos_embed (1, T, D)` — with the config as metadata
//! (`dit.*` keys), so a DiT saved here loads in PyTorch (`load_state_dict`) and one saved by
//! PyTorch (with the metadata added) loads here.
//!
//! `pos_embed` is not trained, but the reference stores it, and loading checks it: a table
//! that is not the 2-D sin-cos embedding of the config (another grid, another layout) would
//! silently scramble the tokens' positions, so it is an error naming the tensor.

use super::config::DiTConfig;
use super::model::DiT;
use crate::error::{Error, Result};
use crate::io::checkpoint::{load_checkpoint_with, read_metadata, save_checkpoint_with};
use crate::tensor::rng;
use ndarray::{Array2, ArrayD, Ix3};
use std::collections::BTreeMap;
use std::path::Path;

/// The position table's name in a checkpoint.
pub const POS_EMBED: &str = "pos_embed";

/// Largest difference allowed between a stored `pos_embed` and the one computed here (both
/// are the float64 table rounded to float32; different `sin`/`cos` libraries may differ in
/// the last bit).
const POS_EMBED_TOL: f32 = 1e-5;

/// Saves every parameter, `pos_embed` as `(1, T, D)` and the config (plus `extra_metadata`,
/// which may not reuse a `dit.*` key) atomically to `path`.
pub fn save_dit(
    path: &Path,
    model: &mut DiT,
    extra_metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let mut meta = model.config.to_metadata();
    add_metadata(&mut meta, extra_metadata)?;
    let (t, d) = model.pos_embed().dim();
    let pos = model
        .pos_embed()
        .view()
        .into_shape_with_order((1, t, d))
        .expect("contiguous")
        .into_dyn()
        .to_owned();
    save_checkpoint_with(path, model, &[(POS_EMBED, pos.view())], &meta)
}

/// Adds `extra` to a config's metadata `meta`; an extra key that is one of the config's own
/// is an error naming it.
pub fn add_metadata(
    meta: &mut BTreeMap<String, String>,
    extra: &BTreeMap<String, String>,
) -> Result<()> {
    for (k, v) in extra {
        if meta.insert(k.clone(), v.clone()).is_some() {
            return Err(Error::new(
                format!("metadata key {k} is the model config's own"),
                "rename the extra metadata key (dit.* and video.* keys hold the config)",
            ));
        }
    }
    Ok(())
}

/// Builds the DiT described by the file's metadata and loads every tensor into it. A
/// missing, extra or misshapen tensor, or a `pos_embed` that is not this config's table, is
/// an error naming it.
pub fn load_dit(path: &Path) -> Result<DiT> {
    let meta = read_metadata(path)?;
    if meta.contains_key("video.frames") {
        return Err(Error::new(
            format!("{} holds a video DiT, not an image DiT", path.display()),
            "pass an image DiT checkpoint (`minisora train --model DiT-…`)",
        ));
    }
    let config = DiTConfig::from_metadata(&meta)?;
    let mut model = DiT::new(config, &mut rng(0))?;
    let (mut extra, _) = load_checkpoint_with(path, &mut model, &[POS_EMBED])?;
    let stored = extra.remove(POS_EMBED).expect("requested above");
    let grid = model.config.grid_size();
    let what = format!("the 2-D sin-cos table of a {grid}×{grid} grid");
    let stored = fixed_table(path, POS_EMBED, stored, model.pos_embed(), &what)?;
    model.set_pos_embed(stored);
    Ok(model)
}

/// A fixed table stored as `(1, T, D)` (`pos_embed`, a video DiT's `temp_embed`), checked
/// against the one the config computes (`what` describes it in the error): another shape,
/// or values further than the rounding of two `sin` libraries, is an error naming it.
pub fn fixed_table(
    path: &Path,
    name: &str,
    stored: ArrayD<f32>,
    expected: &Array2<f32>,
    what: &str,
) -> Result<Array2<f32>> {
    let (t, d) = expected.dim();
    let stored = stored
        .into_dimensionality::<Ix3>()
        .ok()
        .filter(|a| a.dim() == (1, t, d))
        .ok_or_else(|| {
            Error::new(
                format!(
                    "tensor `{name}` in {} does not have the shape (1, {t}, {d}) of the config",
                    path.display()
                ),
                "the file's metadata and tensors disagree: save the model again",
            )
        })?;
    let stored: Array2<f32> = stored
        .into_shape_with_order((t, d))
        .expect("contiguous")
        .to_owned();
    let worst = stored
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(
            0.0f32,
            |m, e| if e.is_nan() { f32::INFINITY } else { m.max(e) },
        );
    if worst > POS_EMBED_TOL {
        return Err(Error::new(
            format!(
                "tensor `{name}` in {} is not {what} (differs by up to {worst:e})",
                path.display()
            ),
            "the file is corrupt or from a model with another position embedding: save it \
             again",
        ));
    }
    Ok(stored)
}
