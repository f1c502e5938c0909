//! Drawing samples: the one entry point that the training previews, `minisora sample`,
//! `minisora evaluate` and the experiments all call. It owns the choices every caller must
//! make the same way — the respaced schedule, the seeds of $x_T$ and of the sampler's noise,
//! classifier-free guidance, and the chunks that bound the memory — so a sample of class 3 at
//! seed 0 is the same picture wherever it is drawn.
//!
//! [`draw`] samples any tensor (`(C, H, W)` images, `(C, F, H, W)` clips) under any
//! [`Condition`]; [`sample_grid`] draws the usual figure, `per_row` samples of each row's
//! condition (one row per class), and traces one sample's trajectory.

use super::condition::Condition;
use super::denoiser::Denoiser;
use super::gaussian_diffusion::Diffusion;
use super::guidance::Guided;
use super::sampler::{SampleOptions, SamplerKind};
use crate::error::{Error, Result};
use crate::tensor::{init, rng};
use ndarray::{concatenate, ArrayD, Axis};

/// Samples per sampler call (guidance doubles it): bounds the memory of large samples.
pub const CHUNK: usize = 40;
/// Rows of a grid of an unconditional model.
pub const UNCONDITIONAL_ROWS: usize = 8;
/// Points of the traced trajectory of [`sample_grid`].
pub const STRIP: usize = 10;

/// How to draw: sampler, steps, guidance, clipping and seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Draw {
    pub kind: SamplerKind,
    /// Steps, respaced from the training schedule.
    pub steps: usize,
    /// Classifier-free guidance scale (1 = none).
    pub guidance: f32,
    /// Clamp $\hat x_0$ to [−1, 1] (pixel-space models).
    pub clip_x0: bool,
    /// Seed of $x_T$ and of the sampler's noise.
    pub seed: u64,
}

impl Draw {
    /// Deterministic DDIM (η = 0) over `steps` steps with guidance `guidance`.
    pub fn ddim(steps: usize, guidance: f32, seed: u64) -> Self {
        Draw {
            kind: SamplerKind::Ddim { eta: 0.0 },
            steps,
            guidance,
            clip_x0: false,
            seed,
        }
    }

    // ANCHOR: respace_choice
    /// The schedule sampled: for DDIM the even stride when it exists ("ddim50" of 1000), else
    /// improved-diffusion's spacing ("50"), which DDPM always uses.
    pub fn respace(&self, diffusion: &Diffusion) -> Result<Diffusion> {
        let t = diffusion.num_timesteps();
        if self.steps == 0 {
            return Err(Error::new(
                "--steps 0: sampling needs at least one step",
                "pass a positive number of steps, e.g. --steps 50",
            ));
        }
        if self.steps > t {
            return Err(Error::new(
                format!(
                    "--steps {}: the model was trained with {t} steps",
                    self.steps
                ),
                format!("pass --steps between 1 and {t}"),
            ));
        }
        let n = self.steps;
        match self.kind {
            SamplerKind::Ddim { .. } => diffusion
                .respace_spec(&format!("ddim{n}"))
                .or_else(|_| diffusion.respace_spec(&n.to_string())),
            SamplerKind::Ddpm => diffusion.respace_spec(&n.to_string()),
        }
    }
    // ANCHOR_END: respace_choice

    /// $x_T$ of `n` samples of `shape` `(n, …shape)`, from the seed: sample `i` starts from
    /// the same noise whatever `n` is.
    pub fn noise(&self, n: usize, shape: &[usize]) -> ArrayD<f32> {
        let full: Vec<usize> = std::iter::once(n).chain(shape.iter().copied()).collect();
        init::normal(&full, 1.0, &mut rng(self.seed ^ 0x5a3e))
    }
}

/// What the per-step callback of [`draw`] sees.
pub struct DrawStep<'a> {
    /// Index of the chunk's first sample in the whole draw.
    pub first: usize,
    /// Step index in the respaced schedule, counting down to 0.
    pub index: usize,
    /// Steps of the respaced schedule.
    pub steps: usize,
    /// The model's own timestep at this step.
    pub t: usize,
    /// $x_T$ of the chunk, where its reverse process started.
    pub noise: &'a ArrayD<f32>,
    /// $x_{t-1}$ of the chunk `(b, C, …)`.
    pub x: &'a ArrayD<f32>,
    /// The $\hat x_0$ the model predicted for the chunk.
    pub pred_x0: &'a ArrayD<f32>,
}

// ANCHOR: draw
/// Draws `n` samples of shape `shape` (one sample, e.g. `(C, H, W)` or `(C, F, H, W)`)
/// under `y` (one entry per sample, or [`Condition::None`]): $x_T$ from the seed, then the
/// reverse process of `how`, guided when `how.guidance ≠ 1` and there is a condition, in
/// chunks of [`CHUNK`] samples. Returns `(n, …shape)` in the model's space.
pub fn draw(
    model: &dyn Denoiser,
    diffusion: &Diffusion,
    shape: &[usize],
    n: usize,
    y: &Condition,
    how: &Draw,
    on_step: &mut dyn FnMut(&DrawStep),
) -> Result<ArrayD<f32>> {
    draw_from(model, diffusion, how.noise(n, shape), y, how, on_step)
}

/// [`draw`] from a given $x_T$ `(n, …shape)` (the same noise for every sample, say, so that
/// only the condition changes); the seed still draws the sampler's own noise.
pub fn draw_from(
    model: &dyn Denoiser,
    diffusion: &Diffusion,
    noise: ArrayD<f32>,
    y: &Condition,
    how: &Draw,
    on_step: &mut dyn FnMut(&DrawStep),
) -> Result<ArrayD<f32>> {
    let n = noise.shape()[0];
    if let Some(len) = y.count().filter(|&len| len != n) {
        return Err(Error::new(
            format!("{len} conditions for {n} samples"),
            "give one condition per sample",
        ));
    }
    let spaced = how.respace(diffusion)?;
    let guided = Guided {
        model,
        scale: how.guidance,
        channels: noise.shape()[1],
    };
    let sampler: &dyn Denoiser = if how.guidance != 1.0 && !y.is_none() {
        &guided
    } else {
        model
    };
    let opts = SampleOptions {
        kind: how.kind,
        clip_x0: how.clip_x0,
    };
    let k = spaced.num_timesteps();
    let mut r = rng(how.seed ^ 0xd0d1); // the sampler's noise (DDPM, DDIM with η > 0)
    let mut parts = Vec::new();
    for first in (0..n).step_by(CHUNK) {
        let end = (first + CHUNK).min(n);
        let x_t = noise.slice_axis(Axis(0), (first..end).into()).to_owned();
        let y = y.slice(first..end);
        let x = spaced.sample(
            sampler,
            x_t.shape(),
            Some(x_t.clone()),
            &y,
            opts,
            &mut r,
            &mut |index, x, pred_x0| {
                on_step(&DrawStep {
                    first,
                    index,
                    steps: k,
                    t: spaced.timestep_map[index],
                    noise: &x_t,
                    x,
                    pred_x0,
                })
            },
        );
        parts.push(x);
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    Ok(concatenate(Axis(0), &views).expect("chunks share their shape"))
}
// ANCHOR_END: draw

/// A grid of samples: `per_row` samples of each row's condition.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// One sample's shape, e.g. `(C, H, W)`.
    pub shape: Vec<usize>,
    /// One entry per row (one class each), or [`Condition::None`] for
    /// [`UNCONDITIONAL_ROWS`] rows of an unconditional model.
    pub rows: Condition,
    pub per_row: usize,
    pub draw: Draw,
}

/// Samples drawn by [`sample_grid`] and the trajectory of one of them.
pub struct Samples {
    /// `(N, …shape)` in the model's space, row by row.
    pub x: ArrayD<f32>,
    /// The condition of each sample.
    pub y: Condition,
    /// `(t, x_t, x̂_0)` of the traced sample at [`STRIP`] points, noisiest first.
    pub trajectory: Vec<(usize, ArrayD<f32>, ArrayD<f32>)>,
}

impl Samples {
    /// The class of each sample (empty for an unconditional model; a grid has no null
    /// entries). Panics for a grid of [`Condition::Blend`]s or captions, whose samples have
    /// no one class.
    pub fn labels(&self) -> Vec<usize> {
        match &self.y {
            Condition::None => Vec::new(),
            Condition::Labels(ids) => ids.iter().map(|y| y.expect("a class per row")).collect(),
            Condition::Blend(_) => panic!("samples of blends of two classes have no one class"),
            Condition::Captions(_) => panic!("samples of captions have no class"),
        }
    }
}

/// Draws the grid through [`draw`] and traces the first sample of row `trace_row`;
/// `on_step` sees every step (for a progress bar).
pub fn sample_grid(
    model: &dyn Denoiser,
    diffusion: &Diffusion,
    grid: &Grid,
    trace_row: usize,
    on_step: &mut dyn FnMut(&DrawStep),
) -> Result<Samples> {
    let rows = grid.rows.count().unwrap_or(UNCONDITIONAL_ROWS).max(1);
    let n = rows * grid.per_row;
    let row_of: Vec<usize> = (0..n).map(|i| i / grid.per_row).collect();
    let y = grid.rows.select(&row_of);
    let trace = trace_row.min(rows - 1) * grid.per_row;
    let mut trajectory = Vec::new();
    let x = draw(
        model,
        diffusion,
        &grid.shape,
        n,
        &y,
        &grid.draw,
        &mut |s: &DrawStep| {
            on_step(s);
            let i = trace.wrapping_sub(s.first);
            // Step indices to trace: K−1 (the first, noisiest) down to 0 (the sample).
            let snap = |j: usize| {
                ((s.steps - 1) as f64 * (1.0 - j as f64 / (STRIP - 1) as f64)).round() as usize
            };
            let traced = i < s.x.shape()[0] && (0..STRIP).any(|j| snap(j) == s.index);
            if traced && trajectory.len() < STRIP {
                let one = |a: &ArrayD<f32>| a.slice_axis(Axis(0), (i..i + 1).into()).to_owned();
                trajectory.push((s.t, one(s.x), one(s.pred_x0)));
            }
        },
    )?;
    Ok(Samples { x, y, trajectory })
}
