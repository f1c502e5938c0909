//! The part of a DiT that its conditioning mechanism shapes: the blocks and the final layer,
//! built for one of the four designs the DiT paper compares (Peebles & Xie 2023, section 3.2,
//! Figure 5), and fed the image tokens and the two embeddings $e_t$ (timestep) and $e_y$
//! (label).
//!
//! - **adaLN-Zero**, **adaLN**: $c = e_t + e_y$ modulates every [`DiTBlock`] and the
//!   [`FinalLayer`].
//! - **cross-attention**: $e = [e_t, e_y]$, a sequence of two tokens per sample, is the
//!   context every [`ViTBlock`] cross-attends to.
//! - **in-context**: $e_t$ and $e_y$ are appended to each sample's image tokens (after the
//!   position embedding, so they carry none), go through plain [`ViTBlock`]s with them, and
//!   are dropped before the [`PlainFinalLayer`].
//!
//! Parameter names are `blocks.{i}.…` and `final_layer.…`, as in the reference.

use super::block::{DiTBlock, DiTBlockCache};
use super::conditioning::Conditioning;
use super::config::DiTConfig;
use super::final_layer::{FinalLayer, FinalLayerCache, PlainFinalLayer, PlainFinalLayerCache};
use super::vit_block::{rows, sequences, ViTBlock, ViTBlockCache};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{s, Array2, Array3, ArrayView2, Axis};

/// The blocks and final layer of a DiT, one kind per conditioning mechanism.
#[derive(Clone, Debug)]
pub enum Trunk {
    /// adaLN-Zero (gated blocks, zero-initialised modulations) or adaLN (ungated, Xavier).
    AdaLn {
        blocks: Vec<DiTBlock>,
        final_layer: FinalLayer,
    },
    /// ViT blocks with a cross-attention to $[e_t, e_y]$.
    CrossAttention {
        blocks: Vec<ViTBlock>,
        final_layer: PlainFinalLayer,
    },
    /// ViT blocks over the image tokens and $e_t$, $e_y$ as two more tokens.
    InContext {
        blocks: Vec<ViTBlock>,
        final_layer: PlainFinalLayer,
    },
}

/// What [`Trunk::backward`] needs from [`Trunk::forward`].
pub struct TrunkCache {
    batch: usize,
    layers: LayersCache,
}

enum LayersCache {
    AdaLn(Vec<DiTBlockCache>, FinalLayerCache),
    ViT(Vec<ViTBlockCache>, PlainFinalLayerCache),
}

impl Trunk {
    /// `config.depth` blocks and a final layer for `config.conditioning`, DiT's
    /// initialisation (every Linear Xavier with zero bias, except the zeros of adaLN-Zero's
    /// modulations and of every final Linear).
    pub fn new(config: &DiTConfig, rng: &mut Rng) -> Self {
        let c = config;
        let (d, heads, hidden) = (c.hidden_size, c.num_heads, c.mlp_hidden());
        let (p, out) = (c.patch_size, c.out_channels());
        let vit = |cross: bool, rng: &mut Rng| -> Vec<ViTBlock> {
            (0..c.depth)
                .map(|_| ViTBlock::new(d, heads, hidden, cross, rng))
                .collect()
        };
        match c.conditioning {
            Conditioning::AdaLnZero => Trunk::AdaLn {
                blocks: (0..c.depth)
                    .map(|_| DiTBlock::new(d, heads, hidden, rng))
                    .collect(),
                final_layer: FinalLayer::new(d, p, out),
            },
            Conditioning::AdaLn => Trunk::AdaLn {
                blocks: (0..c.depth)
                    .map(|_| DiTBlock::adaln(d, heads, hidden, rng))
                    .collect(),
                final_layer: FinalLayer::adaln(d, p, out, rng),
            },
            Conditioning::CrossAttention => Trunk::CrossAttention {
                blocks: vit(true, rng),
                final_layer: PlainFinalLayer::new(d, p, out),
            },
            Conditioning::InContext => Trunk::InContext {
                blocks: vit(false, rng),
                final_layer: PlainFinalLayer::new(d, p, out),
            },
        }
    }

    /// The blocks, if they are adaLN(-Zero) blocks.
    pub fn adaln_blocks(&self) -> Option<&[DiTBlock]> {
        match self {
            Trunk::AdaLn { blocks, .. } => Some(blocks),
            _ => None,
        }
    }

    // ANCHOR: trunk_forward
    /// Image tokens `h` (B·T, D) and the embeddings `e_t`, `e_y` (B, D) → (B·T, p·p·C_out).
    pub fn forward(
        &self,
        mut h: Array2<f32>,
        e_t: &Array2<f32>,
        e_y: &Array2<f32>,
    ) -> (Array2<f32>, TrunkCache) {
        let batch = e_t.nrows();
        let (out, layers) = match self {
            Trunk::AdaLn {
                blocks,
                final_layer,
            } => {
                // $c = e_t + e_y$ modulates every block and the final layer   (B, D)
                let c = e_t + e_y;
                let mut caches = Vec::with_capacity(blocks.len());
                for block in blocks {
                    let (next, cache) = block.forward(&h, &c);
                    caches.push(cache);
                    h = next;
                }
                let (out, last) = final_layer.forward(&h, &c);
                (out, LayersCache::AdaLn(caches, last))
            }
            Trunk::CrossAttention {
                blocks,
                final_layer,
            } => {
                // every block attends from the image tokens to $e = [e_t, e_y]$   (B, 2, D)
                let e = context(e_t, e_y);
                let (x, caches) = vit_forward(blocks, sequences(h, batch), Some(&e));
                let (out, last) = final_layer.forward(&rows(x));
                (out, LayersCache::ViT(caches, last))
            }
            Trunk::InContext {
                blocks,
                final_layer,
            } => {
                // $[x_1 \dots x_T, e_t, e_y]$ per sample   (B, T + 2, D)
                let x = append(&h, e_t, e_y);
                let (x, caches) = vit_forward(blocks, x, None);
                // the two conditioning tokens dropped   (B·T, D)
                let (out, last) = final_layer.forward(&image_tokens(&x));
                (out, LayersCache::ViT(caches, last))
            }
        };
        (out, TrunkCache { batch, layers })
    }
    // ANCHOR_END: trunk_forward

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(
        &self,
        mut h: Array2<f32>,
        e_t: &Array2<f32>,
        e_y: &Array2<f32>,
    ) -> Array2<f32> {
        let batch = e_t.nrows();
        match self {
            Trunk::AdaLn {
                blocks,
                final_layer,
            } => {
                let c = e_t + e_y;
                for block in blocks {
                    h = block.forward_infer(&h, &c);
                }
                final_layer.forward_infer(&h, &c)
            }
            Trunk::CrossAttention {
                blocks,
                final_layer,
            } => {
                let e = context(e_t, e_y);
                let mut x = sequences(h, batch);
                for block in blocks {
                    x = block.forward_infer(&x, Some(&e));
                }
                final_layer.forward_infer(&rows(x))
            }
            Trunk::InContext {
                blocks,
                final_layer,
            } => {
                let mut x = append(&h, e_t, e_y);
                for block in blocks {
                    x = block.forward_infer(&x, None);
                }
                final_layer.forward_infer(&image_tokens(&x))
            }
        }
    }

    // ANCHOR: trunk_backward
    /// Given `d_out` (B·T, p·p·C_out), adds into every parameter's gradient and returns
    /// `(∂L/∂h, ∂L/∂e_t, ∂L/∂e_y)`: (B·T, D), (B, D), (B, D).
    pub fn backward(
        &mut self,
        cache: &TrunkCache,
        d_out: &Array2<f32>,
    ) -> (Array2<f32>, Array2<f32>, Array2<f32>) {
        let b = cache.batch;
        match (self, &cache.layers) {
            (
                Trunk::AdaLn {
                    blocks,
                    final_layer,
                },
                LayersCache::AdaLn(caches, last),
            ) => {
                // Every block and the final layer add their share of ∂L/∂c here.
                let mut dc = Array2::zeros((b, final_layer.linear.d_in()));
                let mut dh = final_layer.backward(last, d_out, &mut dc);
                for (block, c) in blocks.iter_mut().zip(caches).rev() {
                    dh = block.backward(c, &dh, &mut dc);
                }
                // $c = e_t + e_y$: both embeddings receive all of ∂L/∂c
                (dh, dc.clone(), dc)
            }
            (
                Trunk::CrossAttention {
                    blocks,
                    final_layer,
                },
                LayersCache::ViT(caches, last),
            ) => {
                let dh = final_layer.backward(last, d_out);
                // Every block adds its share of ∂L/∂e here.
                let mut de = Array3::zeros((b, 2, dh.ncols())); // (B, 2, D)
                let dx = vit_backward(blocks, caches, sequences(dh, b), Some(&mut de));
                let (de_t, de_y) = (row_of(&de, 0), row_of(&de, 1));
                (rows(dx), de_t, de_y)
            }
            (
                Trunk::InContext {
                    blocks,
                    final_layer,
                },
                LayersCache::ViT(caches, last),
            ) => {
                // the dropped tokens get no gradient from the final layer
                let dh = final_layer.backward(last, d_out); // (B·T, D)
                let t = dh.nrows() / b;
                let mut dx = Array3::zeros((b, t + 2, dh.ncols()));
                dx.slice_mut(s![.., ..t, ..]).assign(&sequences(dh, b));
                let dx = vit_backward(blocks, caches, dx, None); // (B, T + 2, D)
                (image_tokens(&dx), row_of(&dx, t), row_of(&dx, t + 1))
            }
            _ => panic!("DiT: backward was given the cache of another kind of model"),
        }
    }
    // ANCHOR_END: trunk_backward
}

/// The ViT blocks in order, keeping their caches.
fn vit_forward(
    blocks: &[ViTBlock],
    mut x: Array3<f32>,
    context: Option<&Array3<f32>>,
) -> (Array3<f32>, Vec<ViTBlockCache>) {
    let mut caches = Vec::with_capacity(blocks.len());
    for block in blocks {
        let (next, cache) = block.forward(&x, context);
        caches.push(cache);
        x = next;
    }
    (x, caches)
}

/// The ViT blocks in reverse, each adding its share of `∂L/∂context` into `d_context`.
fn vit_backward(
    blocks: &mut [ViTBlock],
    caches: &[ViTBlockCache],
    mut dx: Array3<f32>,
    mut d_context: Option<&mut Array3<f32>>,
) -> Array3<f32> {
    for (block, cache) in blocks.iter_mut().zip(caches).rev() {
        dx = block.backward(cache, &dx, d_context.as_deref_mut());
    }
    dx
}

/// $[e_t, e_y]$: two tokens per sample   (B, D), (B, D) → (B, 2, D).
fn context(e_t: &Array2<f32>, e_y: &Array2<f32>) -> Array3<f32> {
    let (b, d) = e_t.dim();
    let mut e = Array3::zeros((b, 2, d));
    e.index_axis_mut(Axis(1), 0).assign(e_t);
    e.index_axis_mut(Axis(1), 1).assign(e_y);
    e
}

/// Each sample's image tokens followed by its $e_t$ and $e_y$: (B·T, D) → (B, T + 2, D).
fn append(h: &Array2<f32>, e_t: &Array2<f32>, e_y: &Array2<f32>) -> Array3<f32> {
    let (b, d) = e_t.dim();
    let t = h.nrows() / b;
    let mut x = Array3::zeros((b, t + 2, d));
    let image = h.view().into_shape_with_order((b, t, d)).expect("B·T rows");
    x.slice_mut(s![.., ..t, ..]).assign(&image);
    x.index_axis_mut(Axis(1), t).assign(e_t);
    x.index_axis_mut(Axis(1), t + 1).assign(e_y);
    x
}

/// The first `T` tokens of each sample, without the last two: (B, T + 2, D) → (B·T, D).
fn image_tokens(x: &Array3<f32>) -> Array2<f32> {
    let (b, t2, d) = x.dim();
    let mut out = Array3::zeros((b, t2 - 2, d));
    out.assign(&x.slice(s![.., ..t2 - 2, ..]));
    rows(out)
}

/// Token `k` of every sample, (B, S, D) → (B, D).
fn row_of(x: &Array3<f32>, k: usize) -> Array2<f32> {
    owned(x.index_axis(Axis(1), k))
}

fn owned(v: ArrayView2<f32>) -> Array2<f32> {
    v.as_standard_layout().into_owned()
}

impl Parameters for Trunk {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        match self {
            Trunk::AdaLn {
                blocks,
                final_layer,
            } => {
                blocks.visit(&join(prefix, "blocks"), f);
                final_layer.visit(&join(prefix, "final_layer"), f);
            }
            Trunk::CrossAttention {
                blocks,
                final_layer,
            }
            | Trunk::InContext {
                blocks,
                final_layer,
            } => {
                blocks.visit(&join(prefix, "blocks"), f);
                final_layer.visit(&join(prefix, "final_layer"), f);
            }
        }
    }
}
