//! CLIP's symmetric InfoNCE loss with a learned temperature
//! ([Radford et al. 2021](https://arxiv.org/abs/2103.00020), after
//! [van den Oord et al. 2018](https://arxiv.org/abs/1807.03748)), forward and backward.
//!
//! Row `i` of the text features `T (B, P)` and of the video features `V (B, P)` are a
//! matching pair; every other row of the batch is a negative. Both sets are normalised to
//! unit length, the logits are $Z = e^{s}\, \hat T \hat V^\top$ (B, B) with the learned scalar
//! $s$ (`logit_scale`, clamped to $\le \ln 100$ in the forward, as CLIP clamps it), and the
//! loss is the mean of the cross-entropies of the rows (caption → clip) and of the columns
//! (clip → caption) against the diagonal:
//! $\mathcal L = \tfrac12\,(\mathrm{CE}(Z, \mathrm{diag}) + \mathrm{CE}(Z^\top, \mathrm{diag}))$.

use ndarray::{Array1, Array2, Axis, Zip};

/// $\ln(1/0.07)$: CLIP's initial logit scale (temperature 0.07).
pub const LOGIT_SCALE_INIT: f32 = 2.659_26;
/// $\ln 100$: the largest logit scale the forward pass uses.
pub const LOGIT_SCALE_MAX: f32 = 4.605_170_2;
/// Norms below this are taken as this (as `F.normalize`'s `eps`).
const NORM_EPS: f32 = 1e-8;

/// What [`info_nce_backward`] needs.
pub struct InfoNceCache {
    text: Array2<f32>,     // (B, P): T̂
    video: Array2<f32>,    // (B, P): V̂
    t_norm: Array1<f32>,   // (B): |T_i|
    v_norm: Array1<f32>,   // (B): |V_i|
    logits: Array2<f32>,   // (B, B): Z
    d_logits: Array2<f32>, // (B, B): ∂L/∂Z
    scale: f32,            // $e^{\min(s, \ln 100)}$
    /// The scale was below the clamp, so `s` gets a gradient.
    live: bool,
}

/// Rows scaled to unit length: $\hat x_i = x_i / \max(|x_i|, \epsilon)$   (N, P) → (N, P), norms (N).
pub fn normalize_rows(x: &Array2<f32>) -> (Array2<f32>, Array1<f32>) {
    let norms = x.map_axis(Axis(1), |r| r.dot(&r).sqrt().max(NORM_EPS));
    let xhat = x / &norms.view().insert_axis(Axis(1));
    (xhat, norms)
}

/// Cosine similarities $\hat T \hat V^\top$ (Bt, Bv) — what retrieval ranks by.
pub fn cosine_similarity(text: &Array2<f32>, video: &Array2<f32>) -> Array2<f32> {
    normalize_rows(text).0.dot(&normalize_rows(video).0.t())
}

/// Softmax of every row of `z`, in f64.
fn softmax_rows(z: &Array2<f32>) -> Array2<f64> {
    let mut p = z.mapv(f64::from);
    for mut row in p.rows_mut() {
        let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - m).exp());
        let sum = row.sum();
        row /= sum;
    }
    p
}

// ANCHOR: info_nce
/// The loss and its cache. text, video: (B, P); `logit_scale` is $s$ (before the clamp).
pub fn info_nce(text: &Array2<f32>, video: &Array2<f32>, logit_scale: f32) -> (f32, InfoNceCache) {
    let b = text.nrows();
    assert!(
        b > 0 && text.dim() == video.dim(),
        "info_nce: text {:?} and video {:?} features must both be (B, P), B ≥ 1",
        text.shape(),
        video.shape()
    );
    let (t, t_norm) = normalize_rows(text);
    let (v, v_norm) = normalize_rows(video);
    // $Z = e^{\min(s, \ln 100)}\, \hat T \hat V^\top$   (B, B)
    let a = logit_scale.min(LOGIT_SCALE_MAX).exp();
    let logits = t.dot(&v.t()) * a;
    // $\mathcal L = \frac{1}{2B}\sum_i \big(\log\sum_j e^{Z_{ij}} - Z_{ii}\big)
    //   + \frac{1}{2B}\sum_j \big(\log\sum_i e^{Z_{ij}} - Z_{jj}\big)$, via the softmaxes
    let p_rows = softmax_rows(&logits); // P_ij over j
    let p_cols = softmax_rows(&logits.t().to_owned()).reversed_axes(); // P_ij over i
    let nll_rows: f64 = (0..b)
        .map(|i| -p_rows[[i, i]].max(f64::MIN_POSITIVE).ln())
        .sum();
    let nll_cols: f64 = (0..b)
        .map(|i| -p_cols[[i, i]].max(f64::MIN_POSITIVE).ln())
        .sum();
    let loss = (0.5 * (nll_rows + nll_cols) / b as f64) as f32;
    // $\partial\mathcal L/\partial Z = \frac{1}{2B}\big((P^{row} - I) + (P^{col} - I)\big)$
    let mut dz = (p_rows + p_cols).mapv(|v| (0.5 * v / b as f64) as f32);
    for i in 0..b {
        dz[[i, i]] -= 1.0 / b as f32;
    }
    let cache = InfoNceCache {
        text: t,
        video: v,
        t_norm,
        v_norm,
        logits,
        d_logits: dz,
        scale: a,
        live: logit_scale <= LOGIT_SCALE_MAX,
    };
    (loss, cache)
}
// ANCHOR_END: info_nce

// ANCHOR: info_nce_backward
/// Given `dloss` = ∂(outer loss)/∂L, returns `(d_text (B, P), d_video (B, P), d_logit_scale)`.
pub fn info_nce_backward(cache: &InfoNceCache, dloss: f32) -> (Array2<f32>, Array2<f32>, f32) {
    let dz = &cache.d_logits * dloss;
    // $ds = \sum_{ij} dZ_{ij} Z_{ij}$ (as $\partial Z / \partial s = Z$), 0 when clamped
    let ds = if cache.live {
        (&dz * &cache.logits).sum()
    } else {
        0.0
    };
    // $dG = e^{s}\, dZ$ with $G = \hat T \hat V^\top$
    let dg = dz * cache.scale;
    let dt_hat = dg.dot(&cache.video); // $d\hat T = dG\, \hat V$
    let dv_hat = dg.t().dot(&cache.text); // $d\hat V = dG^\top \hat T$
    let dt = normalize_backward(&cache.text, &cache.t_norm, dt_hat);
    let dv = normalize_backward(&cache.video, &cache.v_norm, dv_hat);
    (dt, dv, ds)
}
// ANCHOR_END: info_nce_backward

/// Backward of [`normalize_rows`]: $dx_i = (d\hat x_i - \hat x_i (\hat x_i \cdot d\hat x_i)) / |x_i|$.
fn normalize_backward(
    xhat: &Array2<f32>,
    norms: &Array1<f32>,
    mut dxhat: Array2<f32>,
) -> Array2<f32> {
    Zip::from(dxhat.rows_mut())
        .and(xhat.rows())
        .and(norms)
        .for_each(|mut d, x, &n| {
            let along = x.dot(&d);
            d.scaled_add(-along, &x);
            d /= n;
        });
    dxhat
}
