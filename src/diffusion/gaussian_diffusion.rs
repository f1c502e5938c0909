//! What a network's output means: the [`Diffusion`] that pairs a schedule with the meaning of
//! the output (which target, which variance), and $p_\theta(x_{t-1} \mid x_t)$ computed from one output.
//!
//! The options and their defaults follow openai/improved-diffusion's `GaussianDiffusion`,
//! which facebookresearch/DiT uses unchanged with: linear schedule, T = 1000, ε-prediction,
//! learned-range variance and the `MSE` loss type (mse + vb, vb not rescaled).

use super::process::combine;
use super::schedule::{BetaSchedule, Schedule};
use ndarray::{concatenate, ArrayD, Axis, Slice};

/// What the network's first `C` output channels predict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prediction {
    /// The noise ε that was added (DDPM, DiT).
    Epsilon,
    /// The clean sample $x_0$ (improved-diffusion's `START_X`).
    X0,
    /// The velocity $v = \sqrt{\bar\alpha_t}\,\varepsilon - \sqrt{1-\bar\alpha_t}\,x_0$.
    V,
}

/// The variance of $p_\theta(x_{t-1} \mid x_t)$.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarianceType {
    /// $\sigma_t^2 = \tilde\beta_t$ (the posterior variance; DDPM's lower bound).
    FixedSmall,
    /// $\sigma_t^2 = \beta_t$ (with $\tilde\beta_1$ at the first step; DDPM's upper bound).
    FixedLarge,
    /// Learned: the output's second half `v` interpolates the two logs,
    /// $\log\sigma_t^2 = \frac{v+1}{2}\log\beta_t + \frac{1-v}{2}\log\tilde\beta_t$.
    LearnedRange,
}

/// The training loss (improved-diffusion's `LossType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossType {
    /// MSE on the target, plus the variational bound term when the variance is learned (DiT).
    Mse,
    /// As `Mse`, with the vb term multiplied by T/1000 (improved-diffusion's default when
    /// learning sigmas with `rescale_learned_sigmas`).
    RescaledMse,
}

/// A schedule plus the meaning of the model's output.
#[derive(Clone, Debug)]
pub struct Diffusion {
    pub schedule: Schedule,
    pub prediction: Prediction,
    pub variance: VarianceType,
    pub loss: LossType,
    /// For each step index of this (possibly respaced) schedule, the timestep the model was
    /// trained with. The identity unless made by [`Diffusion::respace`](super::respace).
    pub timestep_map: Vec<usize>,
}

/// $p_\theta(x_{t-1} \mid x_t) = \mathcal N(\mu, e^{\log\sigma^2})$ and the $x_0$ it implies.
#[derive(Clone, Debug)]
pub struct PMeanVar {
    /// $\mu_\theta(x_t, t)$   (B, C, …)
    pub mean: ArrayD<f32>,
    /// $\log\sigma^2$ element-wise   (B, C, …)
    pub log_variance: ArrayD<f32>,
    /// The predicted $\hat x_0$ (clipped to [−1, 1] if asked)   (B, C, …)
    pub pred_x0: ArrayD<f32>,
}

impl Diffusion {
    /// A diffusion with the identity timestep map.
    pub fn new(
        schedule: Schedule,
        prediction: Prediction,
        variance: VarianceType,
        loss: LossType,
    ) -> Self {
        let timestep_map = (0..schedule.num_timesteps()).collect();
        Diffusion {
            schedule,
            prediction,
            variance,
            loss,
            timestep_map,
        }
    }

    /// DiT's training diffusion: linear schedule, T = 1000, ε, learned range, MSE + vb.
    pub fn dit() -> Self {
        Diffusion::new(
            Schedule::new(BetaSchedule::Linear, 1000),
            Prediction::Epsilon,
            VarianceType::LearnedRange,
            LossType::Mse,
        )
    }

    /// Steps of this schedule.
    pub fn num_timesteps(&self) -> usize {
        self.schedule.num_timesteps()
    }

    /// True when the model outputs `2C` channels.
    pub fn learns_variance(&self) -> bool {
        self.variance == VarianceType::LearnedRange
    }

    /// The model's timesteps for step indices `t`.
    pub fn model_t(&self, t: &[usize]) -> Vec<usize> {
        t.iter().map(|&s| self.timestep_map[s]).collect()
    }

    /// Splits a model output into its first `c` channels and the rest (axis 1).
    pub fn split(out: &ArrayD<f32>, c: usize) -> (ArrayD<f32>, ArrayD<f32>) {
        let a = out.slice_axis(Axis(1), Slice::from(0..c));
        let b = out.slice_axis(Axis(1), Slice::from(c..));
        (standard(a), standard(b))
    }

    /// Joins two tensors along the channel axis.
    pub fn join(a: &ArrayD<f32>, b: &ArrayD<f32>) -> ArrayD<f32> {
        let j = concatenate(Axis(1), &[a.view(), b.view()]).expect("same shapes except channels");
        standard(j.view())
    }

    /// The predicted $x_0$ from the target part of the output.
    pub fn pred_x0(&self, x_t: &ArrayD<f32>, t: &[usize], target: &ArrayD<f32>) -> ArrayD<f32> {
        match self.prediction {
            Prediction::Epsilon => self.schedule.x0_from_eps(x_t, t, target),
            Prediction::X0 => target.clone(),
            Prediction::V => self.schedule.x0_from_v(x_t, t, target),
        }
    }

    // ANCHOR: log_variance
    /// $\log\sigma^2$ for every element: fixed, or interpolated from the variance channels
    /// `var_values` (in [−1, 1] when the model is well trained; not clamped, as in the reference).
    pub fn log_variance(
        &self,
        t: &[usize],
        var_values: Option<&ArrayD<f32>>,
        like: &ArrayD<f32>,
    ) -> ArrayD<f32> {
        let s = &self.schedule;
        match self.variance {
            VarianceType::LearnedRange => {
                let v = var_values.expect("learned variance needs the variance channels");
                // $f = (v + 1)/2$,  $\log\sigma^2 = f \log\beta_t + (1 - f)\log\tilde\beta_t$
                let max_log: Vec<f64> = s.betas.iter().map(|b| b.ln()).collect();
                let min_log = &s.posterior_log_variance_clipped;
                let half_diff: Vec<f64> = (0..max_log.len())
                    .map(|i| 0.5 * (max_log[i] - min_log[i]))
                    .collect();
                let mid: Vec<f64> = (0..max_log.len())
                    .map(|i| 0.5 * (max_log[i] + min_log[i]))
                    .collect();
                // $f\,a + (1-f)\,b = \frac{a+b}{2} + v\,\frac{a-b}{2}$
                let ones = ArrayD::ones(v.raw_dim());
                combine(&mid, &ones, &half_diff, v, t)
            }
            VarianceType::FixedSmall => per_batch(&s.posterior_log_variance_clipped, t, like),
            VarianceType::FixedLarge => {
                // $\log\beta_t$, with $\tilde\beta_1$ in place of $\beta_1$ (improved-diffusion).
                let n = s.num_timesteps();
                let logs: Vec<f64> = (0..n)
                    .map(|i| {
                        if i == 0 && n > 1 {
                            s.posterior_variance[1].ln()
                        } else {
                            s.betas[i].ln()
                        }
                    })
                    .collect();
                per_batch(&logs, t, like)
            }
        }
    }
    // ANCHOR_END: log_variance

    // ANCHOR: p_mean_variance
    /// $p_\theta(x_{t-1} \mid x_t)$ from a model output: $\hat x_0$ from the target,
    /// optionally clipped, then $\mu_\theta = \tilde\mu_t(\hat x_0, x_t)$.
    pub fn p_mean_variance(
        &self,
        out: &ArrayD<f32>,
        x_t: &ArrayD<f32>,
        t: &[usize],
        clip_x0: bool,
    ) -> PMeanVar {
        let c = x_t.shape()[1];
        let (target, var_values) = if self.learns_variance() {
            let (a, b) = Diffusion::split(out, c);
            (a, Some(b))
        } else {
            assert_eq!(out.shape(), x_t.shape(), "model output must match x_t");
            (out.clone(), None)
        };
        let log_variance = self.log_variance(t, var_values.as_ref(), x_t);
        let mut pred_x0 = self.pred_x0(x_t, t, &target);
        if clip_x0 {
            pred_x0.mapv_inplace(|v| v.clamp(-1.0, 1.0));
        }
        let (mean, _, _) = self.schedule.q_posterior(&pred_x0, x_t, t);
        PMeanVar {
            mean,
            log_variance,
            pred_x0,
        }
    }
    // ANCHOR_END: p_mean_variance
}

/// A row-major copy.
fn standard(a: ndarray::ArrayViewD<'_, f32>) -> ArrayD<f32> {
    a.as_standard_layout().into_owned()
}

/// A tensor shaped like `like` holding `v[t_b]` in every element of batch element `b`.
fn per_batch(v: &[f64], t: &[usize], like: &ArrayD<f32>) -> ArrayD<f32> {
    let mut out = ArrayD::zeros(like.raw_dim());
    for (b, mut o) in out.axis_iter_mut(Axis(0)).enumerate() {
        o.fill(v[t[b]] as f32);
    }
    out
}
