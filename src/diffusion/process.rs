//! The forward process $q(x_t \mid x_0)$, the posterior $q(x_{t-1} \mid x_t, x_0)$, and the
//! conversions between the three things a network may predict: the noise ε, the clean
//! sample $x_0$, or the velocity $v$ (Salimans & Ho 2022, <https://arxiv.org/abs/2202.00512>).
//!
//! Every tensor is batch-first, `(B, …)`, and `t` holds one timestep per batch element.
//! The coefficients are read from the [`Schedule`] in `f64` and applied in `f32`.

use super::schedule::Schedule;
use ndarray::{ArrayD, Axis, Zip};

/// `out[b] = a[t_b]·x[b] + c[t_b]·y[b]` for batch-first tensors.
pub fn combine(a: &[f64], x: &ArrayD<f32>, c: &[f64], y: &ArrayD<f32>, t: &[usize]) -> ArrayD<f32> {
    assert_eq!(x.shape(), y.shape(), "combine: shapes differ");
    assert_eq!(x.shape()[0], t.len(), "one timestep per batch element");
    let mut out = ArrayD::zeros(x.raw_dim());
    for (b, mut o) in out.axis_iter_mut(Axis(0)).enumerate() {
        let (ka, kc) = (a[t[b]] as f32, c[t[b]] as f32);
        Zip::from(&mut o)
            .and(&x.index_axis(Axis(0), b))
            .and(&y.index_axis(Axis(0), b))
            .for_each(|o, &xv, &yv| *o = ka * xv + kc * yv);
    }
    out
}

/// `out[b] = a[t_b]·x[b]`.
pub fn scale(a: &[f64], x: &ArrayD<f32>, t: &[usize]) -> ArrayD<f32> {
    assert_eq!(x.shape()[0], t.len(), "one timestep per batch element");
    let mut out = x.clone();
    for (b, mut o) in out.axis_iter_mut(Axis(0)).enumerate() {
        o *= a[t[b]] as f32;
    }
    out
}

impl Schedule {
    // ANCHOR: q_sample
    /// Draws $x_t \sim q(x_t \mid x_0)$ with the given noise:
    /// $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}\,\varepsilon$.
    pub fn q_sample(&self, x0: &ArrayD<f32>, t: &[usize], noise: &ArrayD<f32>) -> ArrayD<f32> {
        combine(
            &self.sqrt_alphas_cumprod,
            x0,
            &self.sqrt_one_minus_alphas_cumprod,
            noise,
            t,
        )
    }
    // ANCHOR_END: q_sample

    // ANCHOR: posterior
    /// The posterior $q(x_{t-1} \mid x_t, x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I)$:
    /// returns $\tilde\mu_t = c_1 x_0 + c_2 x_t$ and, per batch element, $\tilde\beta_t$ and
    /// its clipped log.
    pub fn q_posterior(
        &self,
        x0: &ArrayD<f32>,
        x_t: &ArrayD<f32>,
        t: &[usize],
    ) -> (ArrayD<f32>, Vec<f64>, Vec<f64>) {
        let mean = combine(
            &self.posterior_mean_coef1,
            x0,
            &self.posterior_mean_coef2,
            x_t,
            t,
        );
        let var = t.iter().map(|&s| self.posterior_variance[s]).collect();
        let log_var = t
            .iter()
            .map(|&s| self.posterior_log_variance_clipped[s])
            .collect();
        (mean, var, log_var)
    }
    // ANCHOR_END: posterior

    // ANCHOR: conversions
    /// $x_0 = \frac{1}{\sqrt{\bar\alpha_t}}\,x_t - \sqrt{\frac{1}{\bar\alpha_t} - 1}\;\varepsilon$
    pub fn x0_from_eps(&self, x_t: &ArrayD<f32>, t: &[usize], eps: &ArrayD<f32>) -> ArrayD<f32> {
        let neg: Vec<f64> = self
            .sqrt_recipm1_alphas_cumprod
            .iter()
            .map(|v| -v)
            .collect();
        combine(&self.sqrt_recip_alphas_cumprod, x_t, &neg, eps, t)
    }

    /// $\varepsilon = \big(\frac{1}{\sqrt{\bar\alpha_t}}\,x_t - x_0\big) \big/ \sqrt{\frac{1}{\bar\alpha_t} - 1}$
    pub fn eps_from_x0(&self, x_t: &ArrayD<f32>, t: &[usize], x0: &ArrayD<f32>) -> ArrayD<f32> {
        let a: Vec<f64> = (0..self.num_timesteps())
            .map(|s| self.sqrt_recip_alphas_cumprod[s] / self.sqrt_recipm1_alphas_cumprod[s])
            .collect();
        let c: Vec<f64> = self
            .sqrt_recipm1_alphas_cumprod
            .iter()
            .map(|v| -1.0 / v)
            .collect();
        combine(&a, x_t, &c, x0, t)
    }

    /// $v = \sqrt{\bar\alpha_t}\,\varepsilon - \sqrt{1 - \bar\alpha_t}\,x_0$
    pub fn v_from_x0_eps(&self, x0: &ArrayD<f32>, t: &[usize], eps: &ArrayD<f32>) -> ArrayD<f32> {
        let neg: Vec<f64> = self
            .sqrt_one_minus_alphas_cumprod
            .iter()
            .map(|v| -v)
            .collect();
        combine(&self.sqrt_alphas_cumprod, eps, &neg, x0, t)
    }

    /// $x_0 = \sqrt{\bar\alpha_t}\,x_t - \sqrt{1 - \bar\alpha_t}\,v$
    pub fn x0_from_v(&self, x_t: &ArrayD<f32>, t: &[usize], v: &ArrayD<f32>) -> ArrayD<f32> {
        let neg: Vec<f64> = self
            .sqrt_one_minus_alphas_cumprod
            .iter()
            .map(|v| -v)
            .collect();
        combine(&self.sqrt_alphas_cumprod, x_t, &neg, v, t)
    }

    /// $\varepsilon = \sqrt{1 - \bar\alpha_t}\,x_t + \sqrt{\bar\alpha_t}\,v$
    pub fn eps_from_v(&self, x_t: &ArrayD<f32>, t: &[usize], v: &ArrayD<f32>) -> ArrayD<f32> {
        combine(
            &self.sqrt_one_minus_alphas_cumprod,
            x_t,
            &self.sqrt_alphas_cumprod,
            v,
            t,
        )
    }
    // ANCHOR_END: conversions
}
