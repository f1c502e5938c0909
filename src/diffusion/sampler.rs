//! Samplers: DDPM ancestral sampling (Ho et al. 2020, <https://arxiv.org/abs/2006.11239>)
//! and DDIM (Song et al. 2021, <https://arxiv.org/abs/2010.02502>), both run over any
//! (respaced) [`Diffusion`], with a callback that sees every intermediate $x_t$.
//!
//! The steps follow improved-diffusion's `p_sample` and `ddim_sample`.

use super::condition::Condition;
use super::denoiser::Denoiser;
use super::gaussian_diffusion::Diffusion;
use crate::tensor::{init, Rng};
use ndarray::{ArrayD, Axis, Zip};

/// The per-step callback of [`Diffusion::sample`]: `(t, x_{t-1}, pred_x0)`.
pub type OnStep<'a> = dyn FnMut(usize, &ArrayD<f32>, &ArrayD<f32>) + 'a;

/// Which reverse process to run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SamplerKind {
    /// Ancestral sampling from $p_\theta(x_{t-1} \mid x_t)$ with the diffusion's variance.
    Ddpm,
    /// DDIM with noise scale η (0: deterministic; 1: DDPM's posterior variance).
    Ddim { eta: f32 },
}

/// Sampling options.
#[derive(Clone, Copy, Debug)]
pub struct SampleOptions {
    pub kind: SamplerKind,
    /// Clamp the predicted $\hat x_0$ to [−1, 1] before forming the mean (for data in that range).
    pub clip_x0: bool,
}

/// One step's result.
pub struct Step {
    /// $x_{t-1}$
    pub x: ArrayD<f32>,
    /// The $\hat x_0$ the model predicted at this step.
    pub pred_x0: ArrayD<f32>,
}

/// `mean + mask·σ·noise` per batch element, where σ is element-wise `exp(½ log σ²)`.
fn add_noise(
    mean: &ArrayD<f32>,
    log_var: &ArrayD<f32>,
    noise: &ArrayD<f32>,
    t: &[usize],
) -> ArrayD<f32> {
    let mut x = mean.clone();
    for (b, mut xb) in x.axis_iter_mut(Axis(0)).enumerate() {
        if t[b] == 0 {
            continue; // no noise at the last step
        }
        Zip::from(&mut xb)
            .and(&log_var.index_axis(Axis(0), b))
            .and(&noise.index_axis(Axis(0), b))
            .for_each(|x, &lv, &n| *x += (0.5 * lv).exp() * n);
    }
    x
}

impl Diffusion {
    /// Calls the model at step indices `t` (translated to the model's timesteps).
    pub fn model_output(
        &self,
        model: &dyn Denoiser,
        x: &ArrayD<f32>,
        t: &[usize],
        y: &Condition,
    ) -> ArrayD<f32> {
        model.predict(x, &self.model_t(t), y)
    }

    // ANCHOR: p_sample
    /// One DDPM step: $x_{t-1} = \mu_\theta(x_t, t) + \sigma_t z$, $z \sim \mathcal N(0, I)$
    /// (no noise at t = 0).
    pub fn p_sample(
        &self,
        model: &dyn Denoiser,
        x: &ArrayD<f32>,
        t: &[usize],
        y: &Condition,
        clip_x0: bool,
        rng: &mut Rng,
    ) -> Step {
        let out = self.model_output(model, x, t, y);
        let p = self.p_mean_variance(&out, x, t, clip_x0);
        let noise = init::normal(x.shape(), 1.0, rng);
        Step {
            x: add_noise(&p.mean, &p.log_variance, &noise, t),
            pred_x0: p.pred_x0,
        }
    }
    // ANCHOR_END: p_sample

    // ANCHOR: ddim_sample
    /// One DDIM step:
    /// $x_{t-1} = \sqrt{\bar\alpha_{t-1}}\,\hat x_0 + \sqrt{1 - \bar\alpha_{t-1} - \sigma_t^2}\;\hat\varepsilon + \sigma_t z$,
    /// with $\sigma_t = \eta\sqrt{\frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}}\sqrt{1 - \frac{\bar\alpha_t}{\bar\alpha_{t-1}}}$.
    #[allow(clippy::too_many_arguments)]
    pub fn ddim_sample(
        &self,
        model: &dyn Denoiser,
        x: &ArrayD<f32>,
        t: &[usize],
        y: &Condition,
        clip_x0: bool,
        eta: f32,
        rng: &mut Rng,
    ) -> Step {
        let s = &self.schedule;
        let out = self.model_output(model, x, t, y);
        let p = self.p_mean_variance(&out, x, t, clip_x0);
        // ε re-derived from the (possibly clipped) $\hat x_0$, as in the reference.
        let eps = s.eps_from_x0(x, t, &p.pred_x0);
        let noise = (eta > 0.0).then(|| init::normal(x.shape(), 1.0, rng));
        let mut x_prev = ArrayD::zeros(x.raw_dim());
        for (b, mut xb) in x_prev.axis_iter_mut(Axis(0)).enumerate() {
            let (ab, ab_prev) = (s.alphas_cumprod[t[b]], s.alphas_cumprod_prev[t[b]]);
            let sigma = ddim_sigma(eta as f64, ab, ab_prev);
            let c_x0 = ab_prev.sqrt() as f32;
            let c_eps = (1.0 - ab_prev - sigma * sigma).max(0.0).sqrt() as f32;
            let sig = if t[b] == 0 { 0.0 } else { sigma as f32 };
            let x0b = p.pred_x0.index_axis(Axis(0), b);
            let eb = eps.index_axis(Axis(0), b);
            Zip::from(&mut xb)
                .and(&x0b)
                .and(&eb)
                .for_each(|o, &x0, &e| *o = c_x0 * x0 + c_eps * e);
            if let Some(n) = &noise {
                xb.scaled_add(sig, &n.index_axis(Axis(0), b));
            }
        }
        Step {
            x: x_prev,
            pred_x0: p.pred_x0,
        }
    }
    // ANCHOR_END: ddim_sample

    // ANCHOR: sample_loop
    /// Runs the reverse process from `x_T = noise` (or fresh noise of `shape`) to $x_0$,
    /// calling `on_step(t, &x_{t-1}, &pred_x0)` after every step (t counts down to 0).
    #[allow(clippy::too_many_arguments)]
    pub fn sample(
        &self,
        model: &dyn Denoiser,
        shape: &[usize],
        noise: Option<ArrayD<f32>>,
        y: &Condition,
        opts: SampleOptions,
        rng: &mut Rng,
        on_step: &mut OnStep<'_>,
    ) -> ArrayD<f32> {
        let mut x = noise.unwrap_or_else(|| init::normal(shape, 1.0, rng));
        let bsz = x.shape()[0];
        for i in (0..self.num_timesteps()).rev() {
            let t = vec![i; bsz];
            let step = match opts.kind {
                SamplerKind::Ddpm => self.p_sample(model, &x, &t, y, opts.clip_x0, rng),
                SamplerKind::Ddim { eta } => {
                    self.ddim_sample(model, &x, &t, y, opts.clip_x0, eta, rng)
                }
            };
            x = step.x;
            on_step(i, &x, &step.pred_x0);
        }
        x
    }
    // ANCHOR_END: sample_loop
}

/// DDIM's $\sigma_t(\eta)$; at η = 1 its square is the posterior variance $\tilde\beta_t$.
pub fn ddim_sigma(eta: f64, ab: f64, ab_prev: f64) -> f64 {
    eta * ((1.0 - ab_prev) / (1.0 - ab)).sqrt() * (1.0 - ab / ab_prev).max(0.0).sqrt()
}
