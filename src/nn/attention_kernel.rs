//! Which scaled dot-product core an attention layer runs: the clear one of
//! [`crate::nn::attention`], which keeps every probability matrix for the backward pass, or the
//! tiled one of [`crate::nn::flash_attention`], which keeps one log-sum-exp per query and
//! recomputes the probabilities block by block.
//!
//! Both give the same numbers up to rounding (`tests/flash_attention.rs`). The clear core is
//! faster on short sequences — one product per head instead of many small ones, and no
//! recomputation — and the tiled one saves memory that grows with $T \cdot S$; [`Kernel::Auto`]
//! picks by the number of scores per head, at the crossover `examples/bench_video.rs` measured.
//! The environment variable `MINISORA_ATTENTION=clear` or `=tiled` overrides `Auto` for a whole
//! process, so a benchmark can compare the two on the same model.

use ndarray::{Array2, Array3, Array4, ArrayView2, ArrayView3, ArrayViewMut3};
use std::sync::OnceLock;

use crate::nn::attention::{sdpa_backward, sdpa_forward_masked};
use crate::nn::flash_attention::{flash_backward, flash_forward, Tiles};

/// The choice of core, a field of every attention layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kernel {
    /// Tiled when a head has at least [`TILED_MIN_SCORES`] scores (or as the environment says).
    #[default]
    Auto,
    /// Always the clear core.
    Clear,
    /// Always the tiled core.
    Tiled,
}

// ANCHOR: auto
/// $T \cdot S$ from which [`Kernel::Auto`] runs the tiled core: 64 queries × 64 keys. One
/// attention layer (width 64, 4 heads, forward + backward over 8192 tokens) measured clear
/// against tiled at 13.3 / 16.4 ms for sequences of 16, 13.3 / 15.3 at 32, 16.9 / 15.8 at 64
/// and 23.8 / 20.1 at 128 (`examples/bench_video.rs`): spatial attention over a frame's 16
/// tokens and temporal attention over 8–32 frames stay clear, `full` attention over a clip
/// runs tiled.
pub const TILED_MIN_SCORES: usize = 64 * 64;

impl Kernel {
    /// Whether `T` queries against `S` keys run tiled.
    pub fn tiled(self, t: usize, s: usize) -> bool {
        match self {
            Kernel::Clear => false,
            Kernel::Tiled => true,
            Kernel::Auto => match environment() {
                Kernel::Auto => t * s >= TILED_MIN_SCORES,
                forced => forced.tiled(t, s),
            },
        }
    }
}
// ANCHOR_END: auto

impl Kernel {
    /// `auto`, `clear` or `tiled`.
    pub fn parse(s: &str) -> Option<Kernel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(Kernel::Auto),
            "clear" => Some(Kernel::Clear),
            "tiled" => Some(Kernel::Tiled),
            _ => None,
        }
    }
}

/// `MINISORA_ATTENTION`, read once; `Auto` when unset. An unknown value is reported once on
/// stderr and ignored, so a typo cannot silently change what a benchmark measures.
fn environment() -> Kernel {
    static ENV: OnceLock<Kernel> = OnceLock::new();
    *ENV.get_or_init(|| match std::env::var("MINISORA_ATTENTION") {
        Err(_) => Kernel::Auto,
        Ok(v) => Kernel::parse(&v).unwrap_or_else(|| {
            eprintln!("MINISORA_ATTENTION={v:?} ignored: use auto, clear or tiled");
            Kernel::Auto
        }),
    })
}

/// What the backward pass of the core needs besides its inputs and output.
pub enum Saved {
    /// The clear core's probabilities `(B, h, T, S)`.
    Probs(Array4<f32>),
    /// The tiled core's log-sum-exp `(B·h, T)` and the mask it ran with.
    Tiled {
        lse: Array2<f32>,
        mask: Option<Array2<bool>>,
    },
}

/// The core `kernel` picks: `q: (B, T, C)`, `k, v: (B, S, C)`, `h` heads, an optional key
/// padding mask `(B, S)` → `o: (B, T, C)` and what [`sdpa_grad`] needs.
pub fn sdpa(
    q: ArrayView3<f32>,
    k: ArrayView3<f32>,
    v: ArrayView3<f32>,
    h: usize,
    mask: Option<ArrayView2<bool>>,
    kernel: Kernel,
) -> (Array3<f32>, Saved) {
    if kernel.tiled(q.shape()[1], k.shape()[1]) {
        let (o, lse) = flash_forward(q, k, v, h, mask, Tiles::default());
        let mask = mask.map(|m| m.to_owned());
        (o, Saved::Tiled { lse, mask })
    } else {
        let (o, p) = sdpa_forward_masked(q, k, v, h, mask);
        (o, Saved::Probs(p))
    }
}

/// Backward of [`sdpa`]: given its inputs, its output `o` and `d_o = ∂L/∂o`, writes
/// (overwrites) `dq`, `dk` and `dv`.
#[allow(clippy::too_many_arguments)]
pub fn sdpa_grad(
    q: ArrayView3<f32>,
    k: ArrayView3<f32>,
    v: ArrayView3<f32>,
    h: usize,
    saved: &Saved,
    o: ArrayView3<f32>,
    d_o: ArrayView3<f32>,
    dq: ArrayViewMut3<f32>,
    dk: ArrayViewMut3<f32>,
    dv: ArrayViewMut3<f32>,
) {
    match saved {
        Saved::Probs(p) => sdpa_backward(q, k, v, p, d_o, dq, dk, dv),
        Saved::Tiled { lse, mask } => {
            let mask = mask.as_ref().map(|m| m.view());
            let tiles = Tiles::default();
            flash_backward(q, k, v, h, mask, tiles, o, lse, d_o, dq, dk, dv)
        }
    }
}
