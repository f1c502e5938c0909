//! The learning-rate schedule: linear warm-up, then a half cosine down to a floor
//! (SGDR, Loshchilov & Hutter, 2017, <https://arxiv.org/abs/1608.03983>, without restarts).
//!
//! Warm-up matters for Adam-type optimizers: in the first steps the second-moment estimate
//! `v` rests on a handful of gradients, so the normalised steps are large and noisy; a small
//! learning rate until the averages settle keeps them from throwing the weights far away.

/// Linear warm-up over `warmup_steps`, then cosine decay from `base_lr` to `min_lr` at
/// `total_steps` (and `min_lr` after that).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineSchedule {
    pub base_lr: f32,
    pub min_lr: f32,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

impl CosineSchedule {
    // ANCHOR: lr_at
    /// The learning rate of step `step` (counting from 0).
    pub fn lr_at(&self, step: u64) -> f32 {
        let (base, floor) = (self.base_lr as f64, self.min_lr as f64);
        if step < self.warmup_steps {
            // $\eta_s = \eta\,(s+1)/W$: the first step already learns; step $W-1$ is at full rate
            return (base * (step + 1) as f64 / self.warmup_steps as f64) as f32;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / decay_steps as f64).min(1.0);
        // $\eta_s = \eta_{min} + (\eta - \eta_{min})\,\tfrac12\,(1 + \cos \pi p)$
        (floor + (base - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())) as f32
    }
    // ANCHOR_END: lr_at
}
