//! Noise schedules: the variances $\beta_1 … \beta_T$ of the forward process and every array
//! derived from them.
//!
//! Names and constants follow the reference implementations: `linear` and `cosine` from
//! openai/improved-diffusion (`get_named_beta_schedule`, Nichol & Dhariwal 2021,
//! <https://arxiv.org/abs/2102.09672>), which facebookresearch/DiT reuses, and `scaled_linear`
//! from Stable Diffusion / latent diffusion (Rombach et al. 2022). The arrays are computed in
//! `f64`, as the references do with numpy, and read out as `f32` per timestep.
//!
//! Timesteps are 0-based: index `t = 0` is the paper's step 1 (the least noisy).

use crate::error::{Error, Result};

/// The three named schedules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BetaSchedule {
    /// DDPM's linear schedule, rescaled so any `T` spans the same total noise as `T = 1000`.
    Linear,
    /// Improved DDPM's cosine schedule for $\bar\alpha$.
    Cosine,
    /// Stable Diffusion / LDM: linear in $\sqrt\beta$ from 0.00085 to 0.012.
    ScaledLinear,
}

impl BetaSchedule {
    /// Parses `"linear"`, `"cosine"` or `"scaled_linear"`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "linear" => Ok(BetaSchedule::Linear),
            "cosine" => Ok(BetaSchedule::Cosine),
            "scaled_linear" => Ok(BetaSchedule::ScaledLinear),
            _ => Err(Error::new(
                format!("unknown noise schedule {name:?}"),
                "use linear, cosine or scaled_linear",
            )),
        }
    }
}

/// The largest β any schedule may produce (improved-diffusion's `max_beta`): β = 1 would
/// erase the signal in one step and make $\bar\alpha$ exactly zero.
pub const MAX_BETA: f64 = 0.999;

/// `n` evenly spaced values from `a` to `b` inclusive (numpy's `linspace`).
fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![a];
    }
    (0..n)
        .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
        .collect()
}

// ANCHOR: betas
/// The β of every step for `T = steps`.
pub fn betas(kind: BetaSchedule, steps: usize) -> Vec<f64> {
    assert!(steps >= 1, "a schedule needs at least one step");
    match kind {
        BetaSchedule::Linear => {
            // $\beta_t$ linear from $10^{-4}\cdot\frac{1000}{T}$ to $0.02\cdot\frac{1000}{T}$.
            // The 1000/T factor is a float division (an integer one would make every β zero
            // for T > 1000). For T < 50 the upper end would reach 1, so β is clipped at
            // MAX_BETA, as the cosine schedule is (the reference does not clip here).
            let scale = 1000.0 / steps as f64;
            linspace(scale * 1e-4, scale * 0.02, steps)
                .into_iter()
                .map(|b| b.min(MAX_BETA))
                .collect()
        }
        BetaSchedule::Cosine => {
            // $\bar\alpha(t) = \cos^2\!\big(\frac{t/T + s}{1 + s}\cdot\frac{\pi}{2}\big)$, s = 0.008,
            // $\beta_t = \min\big(1 - \bar\alpha(t+1)/\bar\alpha(t),\ 0.999\big)$.
            let s = 0.008;
            let abar = |t: f64| {
                let c = ((t / steps as f64 + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2).cos();
                c * c
            };
            (0..steps)
                .map(|i| (1.0 - abar(i as f64 + 1.0) / abar(i as f64)).min(MAX_BETA))
                .collect()
        }
        BetaSchedule::ScaledLinear => {
            // $\beta_t = \big(\text{linspace}(\sqrt{0.00085}, \sqrt{0.012})_t\big)^2$
            linspace(0.00085f64.sqrt(), 0.012f64.sqrt(), steps)
                .into_iter()
                .map(|r| r * r)
                .collect()
        }
    }
}
// ANCHOR_END: betas

// ANCHOR: schedule
/// Every array the forward process, the posterior and the samplers need, indexed by `t`.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub betas: Vec<f64>,
    /// $\alpha_t = 1 - \beta_t$
    pub alphas: Vec<f64>,
    /// $\bar\alpha_t = \prod_{s \le t} \alpha_s$
    pub alphas_cumprod: Vec<f64>,
    /// $\bar\alpha_{t-1}$, with $\bar\alpha_{-1} = 1$
    pub alphas_cumprod_prev: Vec<f64>,
    /// $\sqrt{\bar\alpha_t}$
    pub sqrt_alphas_cumprod: Vec<f64>,
    /// $\sqrt{1 - \bar\alpha_t}$
    pub sqrt_one_minus_alphas_cumprod: Vec<f64>,
    /// $1/\sqrt{\bar\alpha_t}$
    pub sqrt_recip_alphas_cumprod: Vec<f64>,
    /// $\sqrt{1/\bar\alpha_t - 1}$
    pub sqrt_recipm1_alphas_cumprod: Vec<f64>,
    /// $\tilde\beta_t = \beta_t\,\frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}$ (zero at t = 0)
    pub posterior_variance: Vec<f64>,
    /// $\log\tilde\beta_t$ with the t = 0 entry replaced by $\log\tilde\beta_1$ (it would be −∞)
    pub posterior_log_variance_clipped: Vec<f64>,
    /// $\frac{\beta_t\sqrt{\bar\alpha_{t-1}}}{1 - \bar\alpha_t}$, the weight of $x_0$ in $\tilde\mu_t$
    pub posterior_mean_coef1: Vec<f64>,
    /// $\frac{(1 - \bar\alpha_{t-1})\sqrt{\alpha_t}}{1 - \bar\alpha_t}$, the weight of $x_t$
    pub posterior_mean_coef2: Vec<f64>,
}
// ANCHOR_END: schedule

impl Schedule {
    /// The named schedule with `steps` steps.
    pub fn new(kind: BetaSchedule, steps: usize) -> Self {
        Schedule::from_betas(betas(kind, steps))
    }

    /// All derived arrays from given betas (each in (0, 1]).
    pub fn from_betas(betas: Vec<f64>) -> Self {
        assert!(!betas.is_empty(), "a schedule needs at least one step");
        assert!(
            betas.iter().all(|&b| b > 0.0 && b <= 1.0),
            "every beta must lie in (0, 1]"
        );
        let n = betas.len();
        let alphas: Vec<f64> = betas.iter().map(|b| 1.0 - b).collect();
        let mut alphas_cumprod = Vec::with_capacity(n);
        let mut acc = 1.0;
        for a in &alphas {
            acc *= a;
            alphas_cumprod.push(acc);
        }
        let mut alphas_cumprod_prev = vec![1.0];
        alphas_cumprod_prev.extend_from_slice(&alphas_cumprod[..n - 1]);
        let map = |v: &[f64], f: &dyn Fn(f64) -> f64| v.iter().map(|&x| f(x)).collect::<Vec<_>>();
        let posterior_variance: Vec<f64> = (0..n)
            .map(|t| betas[t] * (1.0 - alphas_cumprod_prev[t]) / (1.0 - alphas_cumprod[t]))
            .collect();
        let posterior_log_variance_clipped = (0..n)
            .map(|t| {
                let v = if t == 0 && n > 1 {
                    posterior_variance[1]
                } else {
                    posterior_variance[t]
                };
                v.ln()
            })
            .collect();
        let posterior_mean_coef1 = (0..n)
            .map(|t| betas[t] * alphas_cumprod_prev[t].sqrt() / (1.0 - alphas_cumprod[t]))
            .collect();
        let posterior_mean_coef2 = (0..n)
            .map(|t| (1.0 - alphas_cumprod_prev[t]) * alphas[t].sqrt() / (1.0 - alphas_cumprod[t]))
            .collect();
        Schedule {
            sqrt_alphas_cumprod: map(&alphas_cumprod, &|a| a.sqrt()),
            sqrt_one_minus_alphas_cumprod: map(&alphas_cumprod, &|a| (1.0 - a).sqrt()),
            sqrt_recip_alphas_cumprod: map(&alphas_cumprod, &|a| (1.0 / a).sqrt()),
            sqrt_recipm1_alphas_cumprod: map(&alphas_cumprod, &|a| (1.0 / a - 1.0).sqrt()),
            posterior_variance,
            posterior_log_variance_clipped,
            posterior_mean_coef1,
            posterior_mean_coef2,
            betas,
            alphas,
            alphas_cumprod,
            alphas_cumprod_prev,
        }
    }

    /// Number of steps `T`.
    pub fn num_timesteps(&self) -> usize {
        self.betas.len()
    }
}
