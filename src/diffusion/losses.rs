//! Training losses, forward and backward: $L_\text{simple}$ (MSE on the prediction target) and
//! the hybrid loss of improved DDPM (Nichol & Dhariwal 2021, <https://arxiv.org/abs/2102.09672>)
//! that DiT trains with when the model learns its variance: $L = L_\text{simple} + L_\text{vlb}$,
//! where $L_\text{vlb}$ sees the predicted mean through a stop-gradient, so it trains only the
//! variance channels.
//!
//! Semantics follow improved-diffusion's `training_losses` / `_vb_terms_bpd` and `losses.py`:
//! terms are averaged over every non-batch element ("mean_flat"), $L_\text{vlb}$ is in bits per
//! dimension (divided by ln 2), at t = 0 it is the discretized Gaussian decoder NLL instead of
//! a KL, and the loss of a batch is the mean over its elements (DiT's `loss.mean()`).
//! Everything is computed in `f64` and handed back as `f32`, together with the gradient of the
//! batch loss with respect to the whole model output (both halves), written by hand.

use super::gaussian_diffusion::{Diffusion, LossType, Prediction};
use ndarray::{ArrayD, Axis};

/// The loss of one batch and its gradient with respect to the model output.
#[derive(Clone, Debug)]
pub struct LossTerms {
    /// The batch loss: mean over the batch of `weight_b · (mse_b + vb_b)`.
    pub loss: f32,
    /// The same in `f64` (the gradient check differences it without `f32` rounding).
    pub loss_f64: f64,
    /// Per-sample MSE on the target.
    pub mse: Vec<f32>,
    /// Per-sample $L_\text{vlb}$ term in bits/dim (zeros when the variance is fixed).
    pub vb: Vec<f32>,
    /// $\partial\,\text{loss} / \partial\,\text{output}$, shaped like the model output.
    pub d_out: ArrayD<f32>,
}

const LN2: f64 = std::f64::consts::LN_2;

// ANCHOR: normal_kl
/// $\mathrm{KL}\big(\mathcal N(\mu_1, e^{l_1}) \,\|\, \mathcal N(\mu_2, e^{l_2})\big)
/// = \tfrac12\big(-1 + l_2 - l_1 + e^{l_1 - l_2} + (\mu_1 - \mu_2)^2 e^{-l_2}\big)$
/// and its derivative with respect to $l_2$.
pub fn normal_kl(mean1: f64, logvar1: f64, mean2: f64, logvar2: f64) -> (f64, f64) {
    let d2 = (mean1 - mean2) * (mean1 - mean2);
    let kl = 0.5 * (-1.0 + logvar2 - logvar1 + (logvar1 - logvar2).exp() + d2 * (-logvar2).exp());
    // $\partial \mathrm{KL}/\partial l_2 = \tfrac12\big(1 - e^{l_1 - l_2} - (\mu_1-\mu_2)^2 e^{-l_2}\big)$
    let dl2 = 0.5 * (1.0 - (logvar1 - logvar2).exp() - d2 * (-logvar2).exp());
    (kl, dl2)
}
// ANCHOR_END: normal_kl

const K: f64 = 0.797_884_560_802_865_4; // √(2/π)

/// The tanh approximation of the standard normal CDF used by the reference,
/// $\Phi(z) \approx \tfrac12\big(1 + \tanh(\sqrt{2/\pi}\,(z + 0.044715 z^3))\big)$:
/// returns $(\Phi, 1 - \Phi, \Phi')$. Since $\tfrac12(1 \pm \tanh u) = 1/(1 + e^{\mp 2u})$,
/// both tails are computed without cancellation (the same function, more digits in the tails).
pub fn approx_std_normal_cdf(z: f64) -> (f64, f64, f64) {
    let u = K * (z + 0.044715 * z * z * z);
    let cdf = 1.0 / (1.0 + (-2.0 * u).exp());
    let sf = 1.0 / (1.0 + (2.0 * u).exp());
    // $\Phi' = \tfrac12(1 - \tanh^2 u)\,u' = 2\,\Phi\,(1-\Phi)\,u'$
    let pdf = 2.0 * cdf * sf * K * (1.0 + 3.0 * 0.044715 * z * z);
    (cdf, sf, pdf)
}

// ANCHOR: discretized
/// $\log p(x)$ of data `x` in [−1, 1] quantised to 256 levels under $\mathcal N(\mu, e^{2s})$
/// (the probability of x's bin of width 2/255; the edge bins extend to ±∞), and its
/// derivative with respect to the log scale `s`. Probabilities are floored at 1e-12.
pub fn discretized_gaussian_log_likelihood(x: f64, mean: f64, log_scale: f64) -> (f64, f64) {
    let inv_stdv = (-log_scale).exp();
    let centered = x - mean;
    let plus_in = inv_stdv * (centered + 1.0 / 255.0);
    let min_in = inv_stdv * (centered - 1.0 / 255.0);
    let (cdf_plus, sf_plus, pdf_plus) = approx_std_normal_cdf(plus_in);
    let (cdf_min, sf_min, pdf_min) = approx_std_normal_cdf(min_in);
    // d(plus_in)/ds = −plus_in, d(min_in)/ds = −min_in.
    let (dp, dm) = (-pdf_plus * plus_in, -pdf_min * min_in);
    const FLOOR: f64 = 1e-12;
    if x < -0.999 {
        // $\log\Phi(z_+)$
        if cdf_plus > FLOOR {
            (cdf_plus.ln(), dp / cdf_plus)
        } else {
            (FLOOR.ln(), 0.0)
        }
    } else if x > 0.999 {
        // $\log(1 - \Phi(z_-))$
        let p = sf_min;
        if p > FLOOR {
            (p.ln(), -dm / p)
        } else {
            (FLOOR.ln(), 0.0)
        }
    } else {
        // $\log(\Phi(z_+) - \Phi(z_-))$
        // In the upper tail subtract the small survival probabilities instead.
        let p = if min_in > 0.0 {
            sf_min - sf_plus
        } else {
            cdf_plus - cdf_min
        };
        if p > FLOOR {
            (p.ln(), (dp - dm) / p)
        } else {
            (FLOOR.ln(), 0.0)
        }
    }
}
// ANCHOR_END: discretized

// ANCHOR: training_losses
/// The loss of a batch and its gradient w.r.t. the model output `out`.
///
/// `x0` clean data, `noise` the ε used to make `x_t = q_sample(x0, t, noise)`, `out` the model's
/// output at `(x_t, t)`; `weights` (importance sampling) multiply each sample's loss.
pub fn training_losses(
    d: &Diffusion,
    x0: &ArrayD<f32>,
    x_t: &ArrayD<f32>,
    t: &[usize],
    noise: &ArrayD<f32>,
    out: &ArrayD<f32>,
    weights: Option<&[f32]>,
) -> LossTerms {
    let frozen = out.clone();
    training_losses_frozen(d, x0, x_t, t, noise, out, &frozen, weights)
}

/// As [`training_losses`], but the vb term reads the mean channels from `frozen` (the
/// stop-gradient made explicit: the gradient check passes a constant copy here).
#[allow(clippy::too_many_arguments)]
pub fn training_losses_frozen(
    d: &Diffusion,
    x0: &ArrayD<f32>,
    x_t: &ArrayD<f32>,
    t: &[usize],
    noise: &ArrayD<f32>,
    out: &ArrayD<f32>,
    frozen: &ArrayD<f32>,
    weights: Option<&[f32]>,
) -> LossTerms {
    losses_kept(d, x0, x_t, t, noise, out, frozen, weights, None)
}

// ANCHOR: masked_losses
/// As [`training_losses`], with every term averaged over the elements where `keep`
/// (shaped like `x0`) is 1 instead of over all: the given frames of a clip
/// ([`FrameMask::keep`](super::FrameMask::keep)) add nothing to the loss nor to its
/// gradient, and a clip's loss is the mean over its other frames (Open-Sora's masked
/// `mean_flat`). A clip with nothing kept adds zero.
pub fn training_losses_masked(
    d: &Diffusion,
    x0: &ArrayD<f32>,
    x_t: &ArrayD<f32>,
    t: &[usize],
    noise: &ArrayD<f32>,
    out: &ArrayD<f32>,
    keep: &ArrayD<f32>,
) -> LossTerms {
    assert_eq!(keep.shape(), x0.shape(), "the loss mask is shaped like x0");
    let frozen = out.clone();
    losses_kept(d, x0, x_t, t, noise, out, &frozen, None, Some(keep))
}
// ANCHOR_END: masked_losses

/// The loss terms, each sample's averaged over its elements with `keep` = 1 (all, without),
/// the vb term reading the mean channels from `frozen` (as [`training_losses_frozen`]).
#[allow(clippy::too_many_arguments)]
pub fn losses_kept(
    d: &Diffusion,
    x0: &ArrayD<f32>,
    x_t: &ArrayD<f32>,
    t: &[usize],
    noise: &ArrayD<f32>,
    out: &ArrayD<f32>,
    frozen: &ArrayD<f32>,
    weights: Option<&[f32]>,
    keep: Option<&ArrayD<f32>>,
) -> LossTerms {
    let s = &d.schedule;
    let (bsz, c) = (x0.shape()[0], x0.shape()[1]);
    let all = (x0.len() / bsz) as f64; // elements per sample
                                       // the kept elements of sample b, and the weight of one element (1, or keep's 0/1)
    let per_b = |b: usize| {
        keep.map_or(all, |k| {
            k.index_axis(Axis(0), b).sum().max(1.0) as f64 // nothing kept: the terms are 0
        })
    };
    let kept = |b: usize| -> Vec<f64> {
        keep.map_or(Vec::new(), |k| {
            k.index_axis(Axis(0), b).iter().map(|&v| v as f64).collect()
        })
    };
    let w = |b: usize| weights.map_or(1.0, |w| w[b] as f64);
    let target = match d.prediction {
        Prediction::Epsilon => noise.clone(),
        Prediction::X0 => x0.clone(),
        Prediction::V => s.v_from_x0_eps(x0, t, noise),
    };
    let (pred, _) = if d.learns_variance() {
        Diffusion::split(out, c)
    } else {
        (out.clone(), ArrayD::zeros(vec![0]))
    };
    let d_out;
    let mut d_pred = ArrayD::<f32>::zeros(pred.raw_dim());
    let mut d_var = if d.learns_variance() {
        ArrayD::<f32>::zeros(pred.raw_dim())
    } else {
        ArrayD::zeros(vec![0])
    };

    // $L_\text{simple} = \text{mean}\,(\text{target} - \text{pred})^2$ per sample.
    let mut mse = vec![0.0f64; bsz];
    for (b, mse_b) in mse.iter_mut().enumerate() {
        let (tg, pr) = (target.index_axis(Axis(0), b), pred.index_axis(Axis(0), b));
        let mut dp = d_pred.index_axis_mut(Axis(0), b);
        let per = per_b(b);
        let g = 2.0 * w(b) / (per * bsz as f64);
        let k = kept(b);
        for (i, ((dv, &tv), &pv)) in dp.iter_mut().zip(tg.iter()).zip(pr.iter()).enumerate() {
            let k = k.get(i).copied().unwrap_or(1.0); // $k_i$: 0 on a given frame
            let diff = pv as f64 - tv as f64;
            *mse_b += k * diff * diff / per;
            // $\partial/\partial\,\text{pred} = 2 k (\text{pred} - \text{target}) / (n B)$
            *dv = (k * g * diff) as f32;
        }
    }

    let mut vb = vec![0.0f64; bsz];
    if d.learns_variance() {
        // The mean comes from the frozen output; only the variance channels get a gradient.
        let (frozen_pred, _) = Diffusion::split(frozen, c);
        let (_, var_values) = Diffusion::split(out, c);
        let model_in = Diffusion::join(&frozen_pred, &var_values);
        let p = d.p_mean_variance(&model_in, x_t, t, false);
        let (true_mean, _, true_logvar) = s.q_posterior(x0, x_t, t);
        let rescale = match d.loss {
            LossType::Mse => 1.0,
            LossType::RescaledMse => d.num_timesteps() as f64 / 1000.0,
        };
        for b in 0..bsz {
            let tb = t[b];
            // $\partial \log\sigma^2 / \partial v = \tfrac12(\log\beta_t - \log\tilde\beta_t)$
            let dlv_dv = 0.5 * (s.betas[tb].ln() - s.posterior_log_variance_clipped[tb]);
            let per = per_b(b);
            let g = rescale * w(b) / (per * LN2 * bsz as f64);
            let k = kept(b);
            let x0b = x0.index_axis(Axis(0), b);
            let tm = true_mean.index_axis(Axis(0), b);
            let mm = p.mean.index_axis(Axis(0), b);
            // $\log\sigma^2$ recomputed in f64 from the variance channels (as in
            // `Diffusion::log_variance`): $\tfrac12(\log\beta_t + \log\tilde\beta_t) + v\,\partial\log\sigma^2/\partial v$.
            let mid = 0.5 * (s.betas[tb].ln() + s.posterior_log_variance_clipped[tb]);
            let lv = var_values.index_axis(Axis(0), b);
            let mut dvb = d_var.index_axis_mut(Axis(0), b);
            let elems = dvb
                .iter_mut()
                .zip(x0b.iter().zip(tm.iter()).zip(mm.iter().zip(lv.iter())));
            for (i, (dv, ((&x, &tmean), (&mmean, &v)))) in elems.enumerate() {
                let k = k.get(i).copied().unwrap_or(1.0);
                let (x, tmean, mmean) = (x as f64, tmean as f64, mmean as f64);
                let lv2 = mid + dlv_dv * v as f64;
                let (term, dterm_dlv2) = if tb == 0 {
                    // Decoder NLL $-\log p(x_0 \mid x_1)$ with log scale $\tfrac12\log\sigma^2$.
                    let (lp, dlp_ds) = discretized_gaussian_log_likelihood(x, mmean, 0.5 * lv2);
                    (-lp, -0.5 * dlp_ds)
                } else {
                    normal_kl(tmean, true_logvar[b], mmean, lv2)
                };
                vb[b] += k * rescale * term / (per * LN2);
                *dv = (k * g * dterm_dlv2 * dlv_dv) as f32;
            }
        }
        d_out = Diffusion::join(&d_pred, &d_var);
    } else {
        d_out = d_pred;
    }
    let loss = (0..bsz).map(|b| w(b) * (mse[b] + vb[b])).sum::<f64>() / bsz as f64;
    LossTerms {
        loss: loss as f32,
        loss_f64: loss,
        mse: mse.iter().map(|&v| v as f32).collect(),
        vb: vb.iter().map(|&v| v as f32).collect(),
        d_out,
    }
}
// ANCHOR_END: training_losses
