//! Video DiT checkpoints: Latte's `state_dict` layout — every parameter under its name
//! (`x_embedder.proj`, `t_embedder.mlp`, `y_embedder.embedding_table`, `blocks.{i}`,
//! `final_layer`) plus the fixed tables `pos_embed (1, S, D)` and `temp_embed (1, F', D)` —
//! with the config as metadata (`dit.*` and `video.*`), so the `alternating` model saved here
//! loads into Latte's PyTorch module with `load_state_dict(strict=True)` after transposing
//! nothing but the clip layout (Latte's clips are `(B, F, C, H, W)`).

use super::config::VideoDiTConfig;
use super::config::VOCAB_KEY;
use super::model::VideoDiT;
use crate::dit::checkpoint::{add_metadata, fixed_table, POS_EMBED};
use crate::error::{Error, Result};
use crate::io::checkpoint::{load_checkpoint_with, read_metadata, save_checkpoint_with};
use crate::tensor::rng;
use crate::text::tokenizer::vocab_fingerprint;
use ndarray::{Array2, ArrayD};
use std::collections::BTreeMap;
use std::path::Path;

/// The temporal table's name in a checkpoint (Latte's).
pub const TEMP_EMBED: &str = "temp_embed";

/// A text-conditioned checkpoint must have been trained on this build's vocabulary: token
/// ids mean nothing with another one.
pub fn check_vocabulary(path: &Path, meta: &BTreeMap<String, String>) -> Result<()> {
    match meta.get(VOCAB_KEY) {
        Some(v) if *v != vocab_fingerprint() => Err(Error::new(
            format!(
                "{} was trained on another vocabulary ({} words) than this tokenizer's ({} words)",
                path.display(),
                v.split(' ').count(),
                crate::text::tokenizer::vocab_size()
            ),
            "use a checkpoint trained with this version's tokenizer (retrain with `minisora \
             demo-text` or `minisora train-text`)",
        )),
        _ => Ok(()),
    }
}

/// The two fixed tables as `(1, ·, D)` tensors, for the checkpoint and the trainer.
pub fn tables(model: &VideoDiT) -> Vec<(String, ArrayD<f32>)> {
    let batched = |a: &Array2<f32>| a.view().insert_axis(ndarray::Axis(0)).to_owned().into_dyn();
    vec![
        (POS_EMBED.to_string(), batched(model.pos_embed())),
        (TEMP_EMBED.to_string(), batched(model.temp_embed())),
    ]
}

/// Saves every parameter, the two tables and the config (plus `extra_metadata`, which may
/// not reuse a config key) atomically to `path`.
pub fn save_video_dit(
    path: &Path,
    model: &mut VideoDiT,
    extra_metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let mut meta = model.config.to_metadata();
    add_metadata(&mut meta, extra_metadata)?;
    let mut tables = tables(model);
    tables.extend(model.text.iter().flat_map(|t| t.frozen_tensors()));
    let views: Vec<_> = tables.iter().map(|(n, a)| (n.as_str(), a.view())).collect();
    save_checkpoint_with(path, model, &views, &meta)
}

/// Builds the video DiT the file's metadata describes and loads every tensor into it; a
/// missing, extra or misshapen tensor, or a table that is not this config's, is an error
/// naming it (an image DiT's checkpoint is an error that says how to inflate it).
pub fn load_video_dit(path: &Path) -> Result<VideoDiT> {
    let meta = read_metadata(path)?;
    let config = VideoDiTConfig::from_metadata(&meta)?;
    check_vocabulary(path, &meta)?;
    let mut model = VideoDiT::new(config, &mut rng(0))?;
    let frozen = model.text.as_mut().map_or(vec![], |t| t.frozen_names());
    let names: Vec<&str> = [POS_EMBED, TEMP_EMBED]
        .into_iter()
        .chain(frozen.iter().map(String::as_str))
        .collect();
    let (mut extra, _) = load_checkpoint_with(path, &mut model, &names)?;
    if let Some(text) = &mut model.text {
        text.load_frozen(path, &extra)?;
    }
    let g = model.config.dit.grid_size();
    let pos = fixed_table(
        path,
        POS_EMBED,
        extra.remove(POS_EMBED).expect("requested above"),
        model.pos_embed(),
        &format!("the 2-D sin-cos table of a {g}×{g} grid"),
    )?;
    let temp = fixed_table(
        path,
        TEMP_EMBED,
        extra.remove(TEMP_EMBED).expect("requested above"),
        model.temp_embed(),
        &format!(
            "the 1-D sin-cos table of {} frames",
            model.config.token_frames()
        ),
    )?;
    model.set_tables(pos, temp);
    Ok(model)
}
