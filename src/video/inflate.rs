//! Inflation: a video DiT built from a trained image DiT (Tune-A-Video inflates a U-Net this
//! way; Latte and Open-Sora start their video models from image models).
//!
//! Every layer the image model has is copied — the patch embedding, the timestep embedder,
//! the final layer, and each image block becomes the video model's spatial block (`alternating`:
//! `blocks.{2i}`; `factorized`: the block around the temporal attention). What time adds
//! starts at zero output: the `alternating` temporal blocks are adaLN-Zero blocks whose
//! modulation is zero, so their gates are closed; the `factorized` temporal attentions have a
//! zero output projection. So at step 0 every token ignores the other frames, and the video
//! model is the image model applied frame by frame — exactly for `factorized`, whose temporal
//! table enters only the (silent) temporal attention. Latte adds its `temp_embed` to the
//! residual stream before the first temporal block; that offset reaches the later spatial
//! blocks, so an inflated `alternating` model equals the image model frame by frame only with
//! its temporal table at zero (the test checks both statements).
//!
//! The label table: video class `v` starts at image class `class_of[v]`'s row (for the moving
//! digits, `(digit, motion)` at its digit's row), the null row at the null row.

use super::config::{Layout, VideoDiTConfig};
use super::factorized::{zero_temporal_attention, FactorizedBlock};
use super::model::VideoDiT;
use super::stack::Stack;
use crate::dit::{Conditioning, DiT, DiTBlock};
use crate::error::{Error, Result};
use crate::tensor::Rng;

// ANCHOR: inflate
/// The video DiT for clips of `frames` latent frames, cut into patches of `temporal_patch`
/// frames, whose spatial layers are `image`'s and whose temporal layers add nothing yet.
/// `class_of[v]` is the image class video class `v` starts from.
pub fn inflate(
    image: &DiT,
    layout: Layout,
    frames: usize,
    temporal_patch: usize,
    class_of: &[usize],
    rng: &mut Rng,
) -> Result<VideoDiT> {
    check_image(image, layout, class_of)?;
    let mut dit = image.config.clone();
    dit.num_classes = class_of.len();
    if layout == Layout::Alternating {
        dit.depth *= 2;
    }
    let config = VideoDiTConfig {
        dit,
        frames,
        temporal_patch,
        layout,
        text: None,
    };
    let mut video = VideoDiT::new(config, rng)?;
    let blocks = image.trunk.adaln_blocks().expect("checked: adaLN-Zero");
    let (d, heads, hidden) = (
        image.config.hidden_size,
        image.config.num_heads,
        image.config.mlp_hidden(),
    );
    video.blocks = match layout {
        // blocks.{2i} = image block i; blocks.{2i+1}: a fresh block, gates closed
        Layout::Alternating => Stack::Alternating(
            blocks
                .iter()
                .flat_map(|b| [b.clone(), DiTBlock::new(d, heads, hidden, rng)])
                .collect(),
        ),
        Layout::Factorized => Stack::Factorized(
            blocks
                .iter()
                .map(|b| FactorizedBlock {
                    block: b.clone(),
                    attn_temp: zero_temporal_attention(d, heads, rng),
                })
                .collect(),
        ),
        Layout::Full => unreachable!("checked"),
    };
    video.t_embedder = image.t_embedder.clone();
    let final_layer = match &image.trunk {
        crate::dit::Trunk::AdaLn { final_layer, .. } => final_layer,
        _ => unreachable!("checked: adaLN-Zero"),
    };
    inflate_tubelets(&mut video, image, final_layer, temporal_patch);
    // video class v starts at image class class_of[v]; the null label at the null label
    let table = image.y_embedder.embedding_table.weight.v2();
    let rows: Vec<usize> = class_of
        .iter()
        .copied()
        .chain([image.null_label()])
        .collect();
    let mut video_table = video.y_embedder.embedding_table.weight.value.view_mut();
    for (v, &i) in rows.iter().enumerate() {
        video_table
            .index_axis_mut(ndarray::Axis(0), v)
            .assign(&table.row(i));
    }
    Ok(video)
}
// ANCHOR_END: inflate

// ANCHOR: inflate_tubelets
/// The patch embedding and the final layer for patches of `pt` frames, as I3D inflates a 2-D
/// convolution: each of the `pt` frames of the kernel is the image kernel divided by `pt` (a
/// tubelet's token is the image token of its frames' mean), and the final Linear repeats the
/// image's outputs for each of the `pt` frames. With `pt = 1` both are copies.
fn inflate_tubelets(video: &mut VideoDiT, image: &DiT, last: &crate::dit::FinalLayer, pt: usize) {
    // x_embedder: (D, C, p, p) → (D, C, p_t, p, p), weight / p_t along time
    let w = image.x_embedder.weight.value.view();
    let (d, c, p) = (w.shape()[0], w.shape()[1], w.shape()[2]);
    let mut tube = video
        .x_embedder
        .weight
        .value
        .view_mut()
        .into_shape_with_order((d, c, pt, p * p))
        .expect("contiguous");
    let flat = w.to_shape((d, c, p * p)).expect("contiguous");
    for tau in 0..pt {
        let mut slice = tube.index_axis_mut(ndarray::Axis(2), tau);
        slice.assign(&flat.mapv(|v| v / pt as f32));
    }
    video.x_embedder.bias = image.x_embedder.bias.clone();
    // final_layer.linear: D → p·p·C_out rows repeated for each frame τ (the (τ, u, v, c) order)
    video.final_layer.ada_ln = last.ada_ln.clone();
    let rows = last.linear.weight.shape()[0]; // p·p·C_out
    for tau in 0..pt {
        let span = tau * rows..(tau + 1) * rows;
        let mut w = video.final_layer.linear.weight.value.view_mut();
        let mut w = w.slice_axis_mut(ndarray::Axis(0), span.clone().into());
        w.assign(&last.linear.weight.value);
        if let (Some(b), Some(src)) = (&mut video.final_layer.linear.bias, &last.linear.bias) {
            let mut b = b.value.view_mut();
            b.slice_axis_mut(ndarray::Axis(0), span.into())
                .assign(&src.value);
        }
    }
}
// ANCHOR_END: inflate_tubelets

/// The image model can be inflated into `layout` with this class map; the error names why not.
fn check_image(image: &DiT, layout: Layout, class_of: &[usize]) -> Result<()> {
    if layout == Layout::Full {
        return Err(Error::new(
            "the full layout cannot be inflated: its blocks attend across frames from the start",
            "inflate into --layout alternating or factorized",
        ));
    }
    if image.config.conditioning != Conditioning::AdaLnZero {
        return Err(Error::new(
            format!(
                "the image DiT uses {} conditioning; a video DiT is adaLN-Zero",
                image.config.conditioning.name()
            ),
            "inflate an adaLN-Zero DiT (the default of `minisora train --model DiT-…`)",
        ));
    }
    let classes = image.config.num_classes;
    if let Some(&bad) = class_of.iter().find(|&&c| c >= classes) {
        return Err(Error::new(
            format!("video classes map to image class {bad}, but the image DiT has {classes}"),
            "check --motions: each image class becomes that many video classes",
        ));
    }
    if class_of.is_empty() {
        return Err(Error::new(
            "no video classes to inflate into",
            "use --motions 1 or more",
        ));
    }
    Ok(())
}
