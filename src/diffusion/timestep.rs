//! Timesteps for training.
//!
//! * [`sample_uniform`]: $t \sim \mathcal U\{0, …, T-1\}$ (DDPM, DiT).
//! * [`LossSecondMomentSampler`]: improved DDPM's importance sampling for $L_\text{vlb}$,
//!   $p_t \propto \sqrt{\mathbb E[L_t^2]}$ over the last 10 losses of each t, mixed with 0.1 %
//!   uniform, with weights $1/(T p_t)$ so the loss stays unbiased.

use crate::tensor::Rng;
use ndarray_rand::rand::Rng as _;

/// `n` timesteps drawn uniformly from `0..num_timesteps`.
pub fn sample_uniform(n: usize, num_timesteps: usize, rng: &mut Rng) -> Vec<usize> {
    (0..n).map(|_| rng.random_range(0..num_timesteps)).collect()
}

/// Importance sampling of timesteps by the second moment of their recent losses.
#[derive(Clone, Debug)]
pub struct LossSecondMomentSampler {
    history: Vec<Vec<f64>>, // per t, the last `per_term` losses
    per_term: usize,
    uniform_prob: f64,
}

impl LossSecondMomentSampler {
    /// The reference's settings: 10 losses per term, 0.001 uniform mixing.
    pub fn new(num_timesteps: usize) -> Self {
        LossSecondMomentSampler {
            history: vec![Vec::new(); num_timesteps],
            per_term: 10,
            uniform_prob: 0.001,
        }
    }

    /// Sampling probabilities: uniform until every t has a full history.
    pub fn probabilities(&self) -> Vec<f64> {
        let n = self.history.len();
        if self.history.iter().any(|h| h.len() < self.per_term) {
            return vec![1.0 / n as f64; n];
        }
        // $w_t = \sqrt{\text{mean}(L_t^2)}$, normalised, mixed with uniform.
        let w: Vec<f64> = self
            .history
            .iter()
            .map(|h| (h.iter().map(|l| l * l).sum::<f64>() / h.len() as f64).sqrt())
            .collect();
        let total: f64 = w.iter().sum();
        w.iter()
            .map(|&x| x / total * (1.0 - self.uniform_prob) + self.uniform_prob / n as f64)
            .collect()
    }

    /// Draws `n` timesteps and their loss weights $1/(T p_t)$.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> (Vec<usize>, Vec<f32>) {
        let p = self.probabilities();
        let t_count = p.len();
        let mut cdf = Vec::with_capacity(t_count);
        let mut acc = 0.0;
        for &q in &p {
            acc += q;
            cdf.push(acc);
        }
        let mut ts = Vec::with_capacity(n);
        let mut ws = Vec::with_capacity(n);
        for _ in 0..n {
            let u: f64 = rng.random::<f64>() * acc;
            let t = cdf.partition_point(|&c| c <= u).min(t_count - 1);
            ts.push(t);
            ws.push((1.0 / (t_count as f64 * p[t])) as f32);
        }
        (ts, ws)
    }

    /// Records the (unweighted) losses seen at timesteps `t`.
    pub fn update(&mut self, t: &[usize], losses: &[f32]) {
        for (&s, &l) in t.iter().zip(losses) {
            let h = &mut self.history[s];
            if h.len() == self.per_term {
                h.remove(0);
            }
            h.push(l as f64);
        }
    }
}
