//! The blocks of a space-time DiT in each attention [`Layout`], and where each puts the
//! temporal position table $E_t$ (F', D). Tokens arrive in `(b f s)` order with the spatial
//! table already added; `c` (B, D) is one conditioning row per clip, which every block reads
//! for all of that clip's tokens (Latte repeats it per frame and per position; reading it per
//! clip is the same numbers without the copies).
//!
//! - `full`: $E_t$ is added to every token at the input; each block is DiT's block over the
//!   whole clip, one sequence of $F'S$ tokens.
//! - `alternating` (Latte): `blocks.{2i}` attends within frames, `'(b f) s d -> (b s) f d'`,
//!   `blocks.{2i+1}` attends within positions, and back; $E_t$ is added to the residual
//!   stream just before the first temporal block, as Latte does.
//! - `factorized` (STDiT): each block does both ([`FactorizedBlock`]); the first adds $E_t$
//!   to its temporal attention's input.

use super::config::{Layout, VideoDiTConfig};
use super::factorized::{FactorizedBlock, FactorizedCache, Grid};
use super::patch::{to_spatial, to_temporal};
use crate::dit::{Context, DiTBlock, DiTBlockCache};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{Array2, Array3};

/// The blocks of one layout; parameter names `blocks.{i}.…`.
#[derive(Clone, Debug)]
pub enum Stack {
    Full(Vec<DiTBlock>),
    /// Even indices spatial, odd temporal.
    Alternating(Vec<DiTBlock>),
    Factorized(Vec<FactorizedBlock>),
}

/// What [`Stack::backward`] needs.
pub enum StackCache {
    Blocks(Vec<DiTBlockCache>),
    Factorized(Vec<FactorizedCache>),
}

impl Stack {
    /// `config.dit.depth` blocks of the layout, DiT's initialisation (adaLN-Zero); a
    /// text-conditioned config gives every block a caption branch (zero projection).
    pub fn new(config: &VideoDiTConfig, rng: &mut Rng) -> Self {
        let c = &config.dit;
        let (d, heads, hidden) = (c.hidden_size, c.num_heads, c.mlp_hidden());
        let text = config.text.is_some();
        let block = |rng: &mut Rng| {
            let b = DiTBlock::new(d, heads, hidden, rng);
            if text {
                b.with_caption(rng)
            } else {
                b
            }
        };
        let n = c.depth;
        match config.layout {
            Layout::Full => Stack::Full((0..n).map(|_| block(rng)).collect()),
            Layout::Alternating => Stack::Alternating((0..n).map(|_| block(rng)).collect()),
            Layout::Factorized => Stack::Factorized(
                (0..n)
                    .map(|_| FactorizedBlock::new(d, heads, hidden, rng).caption(text, rng))
                    .collect(),
            ),
        }
    }

    // ANCHOR: stack_forward
    /// Tokens `h` (B·F'·S, D) in `(b f s)` order, `c` (B, D), the temporal table (F', D),
    /// the captions `ctx` of a text-conditioned model → (B·F'·S, D), keeping every cache.
    pub fn forward(
        &self,
        h: Array2<f32>,
        c: &Array2<f32>,
        grid: Grid,
        temp_embed: &Array2<f32>,
        ctx: Option<&Context>,
    ) -> (Array2<f32>, StackCache) {
        self.forward_rows(h, c, None, grid, temp_embed, ctx)
    }

    /// [`forward`](Self::forward) with token `n` (in `(b f s)` order) modulated by row
    /// `rows[n]` of `c` (R, D); the temporal blocks read the rows rearranged as their tokens.
    pub fn forward_rows(
        &self,
        mut h: Array2<f32>,
        c: &Array2<f32>,
        rows: Option<&[usize]>,
        grid: Grid,
        temp_embed: &Array2<f32>,
        ctx: Option<&Context>,
    ) -> (Array2<f32>, StackCache) {
        let (f, s) = (grid.frames, grid.tokens);
        let rows_t = rows.map(|r| temporal_rows(r, f, s)); // (b s f) order
        match self {
            Stack::Full(blocks) => {
                add_per_frame(&mut h, temp_embed, s); // $E_s + E_t$ on every token
                let mut caches = Vec::with_capacity(blocks.len());
                for block in blocks {
                    let (next, cache) = block.forward_rows(&h, c, rows, f * s, ctx); // one sequence per clip
                    caches.push(cache);
                    h = next;
                }
                (h, StackCache::Blocks(caches))
            }
            Stack::Alternating(blocks) => {
                let mut caches = Vec::with_capacity(blocks.len());
                for (i, pair) in blocks.chunks(2).enumerate() {
                    // spatial: (b f) s d
                    let (x, cache) = pair[0].forward_rows(&h, c, rows, s, ctx);
                    caches.push(cache);
                    // '(b f) s d -> (b s) f d'
                    let mut x = to_temporal(&x, f, s);
                    if i == 0 {
                        add_per_frame(&mut x, temp_embed, 1); // Latte: x = x + temp_embed
                    }
                    let (x, cache) = pair[1].forward_rows(&x, c, rows_t.as_deref(), f, ctx);
                    caches.push(cache);
                    // '(b s) f d -> (b f) s d'
                    h = to_spatial(&x, f, s);
                }
                (h, StackCache::Blocks(caches))
            }
            Stack::Factorized(blocks) => {
                let mut caches = Vec::with_capacity(blocks.len());
                for (i, block) in blocks.iter().enumerate() {
                    let table = (i == 0).then_some(temp_embed);
                    let (next, cache) = block.forward_rows(&h, c, rows, grid, table, ctx);
                    caches.push(cache);
                    h = next;
                }
                (h, StackCache::Factorized(caches))
            }
        }
    }
    // ANCHOR_END: stack_forward

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(
        &self,
        h: Array2<f32>,
        c: &Array2<f32>,
        grid: Grid,
        temp_embed: &Array2<f32>,
        ctx: Option<&Context>,
    ) -> Array2<f32> {
        self.forward_infer_rows(h, c, None, grid, temp_embed, ctx)
    }

    /// [`forward_rows`](Self::forward_rows) without keeping anything.
    pub fn forward_infer_rows(
        &self,
        mut h: Array2<f32>,
        c: &Array2<f32>,
        rows: Option<&[usize]>,
        grid: Grid,
        temp_embed: &Array2<f32>,
        ctx: Option<&Context>,
    ) -> Array2<f32> {
        let (f, s) = (grid.frames, grid.tokens);
        let rows_t = rows.map(|r| temporal_rows(r, f, s));
        match self {
            Stack::Full(blocks) => {
                add_per_frame(&mut h, temp_embed, s);
                for block in blocks {
                    h = block.forward_infer_rows(&h, c, rows, f * s, ctx);
                }
            }
            Stack::Alternating(blocks) => {
                for (i, pair) in blocks.chunks(2).enumerate() {
                    let x = pair[0].forward_infer_rows(&h, c, rows, s, ctx);
                    let mut x = to_temporal(&x, f, s);
                    if i == 0 {
                        add_per_frame(&mut x, temp_embed, 1);
                    }
                    let x = pair[1].forward_infer_rows(&x, c, rows_t.as_deref(), f, ctx);
                    h = to_spatial(&x, f, s);
                }
            }
            Stack::Factorized(blocks) => {
                for (i, block) in blocks.iter().enumerate() {
                    let table = (i == 0).then_some(temp_embed);
                    h = block.forward_infer_rows(&h, c, rows, grid, table, ctx);
                }
            }
        }
        h
    }

    // ANCHOR: stack_backward
    /// Given `dh` (B·F'·S, D), adds into every parameter's gradient, into `dc` (B, D) and,
    /// with captions, into `dctx` (B, L, D), and returns the gradient of the input tokens.
    /// The tables are fixed: adding one passes the gradient through unchanged.
    pub fn backward(
        &mut self,
        cache: &StackCache,
        mut dh: Array2<f32>,
        dc: &mut Array2<f32>,
        grid: Grid,
        mut dctx: Option<&mut Array3<f32>>,
    ) -> Array2<f32> {
        let (f, s) = (grid.frames, grid.tokens);
        match (self, cache) {
            (Stack::Full(blocks), StackCache::Blocks(caches)) => {
                for (block, cache) in blocks.iter_mut().zip(caches).rev() {
                    dh = block.backward_seq(cache, &dh, dc, dctx.as_deref_mut());
                }
            }
            (Stack::Alternating(blocks), StackCache::Blocks(caches)) => {
                for (pair, cache) in blocks.chunks_mut(2).zip(caches.chunks(2)).rev() {
                    let dx = to_temporal(&dh, f, s);
                    let dx = pair[1].backward_seq(&cache[1], &dx, dc, dctx.as_deref_mut());
                    let dx = to_spatial(&dx, f, s);
                    dh = pair[0].backward_seq(&cache[0], &dx, dc, dctx.as_deref_mut());
                }
            }
            (Stack::Factorized(blocks), StackCache::Factorized(caches)) => {
                for (block, cache) in blocks.iter_mut().zip(caches).rev() {
                    dh = block.backward(cache, &dh, dc, grid, dctx.as_deref_mut());
                }
            }
            _ => panic!("video DiT: backward was given the cache of another layout"),
        }
        dh
    }
    // ANCHOR_END: stack_backward
}

/// Per-token rows in `(b f s)` order rearranged to `(b s f)`, as [`to_temporal`] moves
/// the tokens.
fn temporal_rows(rows: &[usize], f: usize, s: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(rows.len());
    for clip in rows.chunks(f * s) {
        for si in 0..s {
            out.extend((0..f).map(|fi| clip[fi * s + si]));
        }
    }
    out
}

/// Row `f` of `table` (F', D) added to each group of `s` consecutive rows in turn, cycling
/// over the clips: `s = S` on `(b f s)` tokens, `s = 1` on `(b s f)` tokens.
fn add_per_frame(h: &mut Array2<f32>, table: &Array2<f32>, s: usize) {
    let (frames, d) = table.dim();
    for mut clip in h.axis_chunks_iter_mut(ndarray::Axis(0), frames * s) {
        let mut rows = clip
            .view_mut()
            .into_shape_with_order((frames, s, d))
            .expect("whole clips");
        for (f, mut group) in rows.outer_iter_mut().enumerate() {
            group += &table.row(f);
        }
    }
}

impl Parameters for Stack {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        let prefix = join(prefix, "blocks");
        match self {
            Stack::Full(blocks) | Stack::Alternating(blocks) => blocks.visit(&prefix, f),
            Stack::Factorized(blocks) => blocks.visit(&prefix, f),
        }
    }
}
