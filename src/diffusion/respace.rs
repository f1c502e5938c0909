//! Timestep respacing: sample with fewer steps than the model was trained with
//! (improved-diffusion's `respace.py`, used by DiT as `timestep_respacing="250"` and by DDIM).
//!
//! Keep a subset $S = \{s_1 < \dots < s_K\}$ of the original steps. The new schedule keeps the
//! *same* $\bar\alpha$ at the kept steps, so its betas are
//! $\beta'_k = 1 - \bar\alpha_{s_k} / \bar\alpha_{s_{k-1}}$; the model is still called with the
//! original timestep $s_k$ (the [`Diffusion::timestep_map`]).

use super::gaussian_diffusion::Diffusion;
use super::schedule::Schedule;
use crate::error::{Error, Result};

// ANCHOR: space_timesteps
/// Which of `num_timesteps` steps to keep, from a spec:
///
/// * `"ddimN"`: the evenly strided `range(0, T, stride)` with exactly N elements (the DDIM
///   paper's spacing); an error if no integer stride gives N.
/// * `"N"` or `"N1,N2,…"`: split `0..T` into as many equal sections as numbers and take
///   `Ni` evenly spaced steps (rounded, ties to even as Python's `round`) from section i.
pub fn space_timesteps(num_timesteps: usize, spec: &str) -> Result<Vec<usize>> {
    let bad = |why: String| Error::new(why, "use a spec like \"250\", \"10,20,30\" or \"ddim50\"");
    if let Some(n) = spec.strip_prefix("ddim") {
        let want: usize = n
            .parse()
            .map_err(|_| bad(format!("{spec:?}: {n:?} is not a step count")))?;
        for stride in 1..num_timesteps.max(2) {
            if num_timesteps.div_ceil(stride) == want {
                return Ok((0..num_timesteps).step_by(stride).collect());
            }
        }
        return Err(bad(format!(
            "cannot create exactly {want} steps with an integer stride from {num_timesteps}"
        )));
    }
    let counts: Vec<usize> = spec
        .split(',')
        .map(|c| c.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            bad(format!(
                "{spec:?} is not a comma-separated list of step counts"
            ))
        })?;
    let sections = counts.len();
    let (size_per, extra) = (num_timesteps / sections, num_timesteps % sections);
    let mut start = 0;
    let mut steps = Vec::new();
    for (i, &count) in counts.iter().enumerate() {
        let size = size_per + usize::from(i < extra);
        if size < count || count == 0 {
            return Err(bad(format!(
                "cannot take {count} steps from a section of {size} steps"
            )));
        }
        let stride = if count <= 1 {
            1.0
        } else {
            (size - 1) as f64 / (count - 1) as f64
        };
        let mut cur = 0.0f64;
        for _ in 0..count {
            steps.push(start + cur.round_ties_even() as usize);
            cur += stride;
        }
        start += size;
    }
    steps.sort_unstable();
    steps.dedup();
    Ok(steps)
}
// ANCHOR_END: space_timesteps

impl Diffusion {
    // ANCHOR: respace
    /// The same diffusion restricted to the kept steps `use_timesteps` (sorted, in
    /// `0..T`): new betas from the kept $\bar\alpha$, and a timestep map back to the model's
    /// original numbering.
    pub fn respace(&self, use_timesteps: &[usize]) -> Diffusion {
        assert!(!use_timesteps.is_empty(), "keep at least one step");
        let mut betas = Vec::with_capacity(use_timesteps.len());
        let mut map = Vec::with_capacity(use_timesteps.len());
        let mut last = 1.0f64;
        for (k, &s) in use_timesteps.iter().enumerate() {
            assert!(
                s < self.num_timesteps() && (k == 0 || s > use_timesteps[k - 1]),
                "kept steps must be increasing and below T"
            );
            let ac = self.schedule.alphas_cumprod[s];
            // $\beta'_k = 1 - \bar\alpha_{s_k} / \bar\alpha_{s_{k-1}}$
            betas.push(1.0 - ac / last);
            last = ac;
            map.push(self.timestep_map[s]);
        }
        Diffusion {
            schedule: Schedule::from_betas(betas),
            prediction: self.prediction,
            variance: self.variance,
            loss: self.loss,
            timestep_map: map,
        }
    }
    // ANCHOR_END: respace

    /// Respaces with a spec string (see [`space_timesteps`]).
    pub fn respace_spec(&self, spec: &str) -> Result<Diffusion> {
        Ok(self.respace(&space_timesteps(self.num_timesteps(), spec)?))
    }
}
