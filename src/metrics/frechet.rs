//! The Fréchet distance between two sets of feature vectors, each summarised by a Gaussian
//! (the "FID" of Heusel et al. 2017, <https://arxiv.org/abs/1706.08500>, with our classifier's
//! features in place of Inception's):
//!
//! $$d^2 = \|\mu_1 - \mu_2\|^2 + \operatorname{tr}\left(\Sigma_1 + \Sigma_2
//!   - 2\,(\Sigma_1^{1/2}\,\Sigma_2\,\Sigma_1^{1/2})^{1/2}\right)$$
//!
//! the squared 2-Wasserstein distance between $N(\mu_1, \Sigma_1)$ and $N(\mu_2, \Sigma_2)$
//! (Dowson & Landau 1982). Means and covariances are accumulated in `f64`.
//!
//! **Why $\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}$ and not $\Sigma_1\Sigma_2$.** The FID code
//! usually writes the last term as $\operatorname{tr}\sqrt{\Sigma_1\Sigma_2}$ and calls a
//! general matrix square root (`scipy.linalg.sqrtm`, a complex Schur decomposition), because
//! $\Sigma_1\Sigma_2$ is not symmetric. Rounding then gives it tiny imaginary parts, and a
//! singular covariance (fewer samples than features, a dead feature) can make it fail, which
//! is why that code discards imaginary parts and retries with `eps` added to the diagonals.
//! But $\Sigma_1\Sigma_2 = S\,(S\Sigma_2)$ with $S = \Sigma_1^{1/2}$ has the same eigenvalues
//! as $(S\Sigma_2)\,S = S\Sigma_2S$ ($AB$ and $BA$ always do), and the trace of a square root
//! is the sum of the square roots of the eigenvalues. $S\Sigma_2S$ is **symmetric and
//! positive semi-definite**, so its eigenvalues are real and $\ge 0$, and the Jacobi method
//! finds them with orthogonal rotations only — unconditionally stable, no complex numbers, no
//! `eps`, and a singular covariance is no special case. Rounding can only push an eigenvalue
//! to about $-10^{-16}\|\Sigma\|$, which is clamped to 0.

use ndarray::{Array1, Array2, ArrayView2, Axis};

/// A feature set summarised as a Gaussian: the mean `(F)`, the unbiased covariance `(F, F)`
/// (divided by `N − 1`, as `numpy.cov`) and the number of vectors `N`.
#[derive(Clone, Debug)]
pub struct FeatureStats {
    pub mean: Array1<f64>,
    pub cov: Array2<f64>,
    pub n: usize,
}

impl FeatureStats {
    /// Mean and covariance of the rows of `x` `(N, F)`, in f64. Panics if `N < 2` (a covariance
    /// needs two vectors; [`super::evaluate`] checks this for its callers).
    pub fn new(x: ArrayView2<f32>) -> Self {
        let (n, _) = x.dim();
        assert!(
            n >= 2,
            "FeatureStats needs at least 2 feature vectors, got {n}"
        );
        // (N, F) in f64
        let x = x.mapv(|v| v as f64);
        // $\mu = \frac1N \sum_n x_n$
        let mean = x.sum_axis(Axis(0)) / n as f64;
        // $\Sigma = \frac{1}{N-1} \sum_n (x_n - \mu)(x_n - \mu)^\top$
        let centred = &x - &mean;
        let cov = centred.t().dot(&centred) / (n - 1) as f64;
        FeatureStats { mean, cov, n }
    }
}

// ANCHOR: frechet
/// The Fréchet distance between the Gaussians of two feature sets `(N₁, F)` and `(N₂, F)`.
pub fn frechet_distance(a: ArrayView2<f32>, b: ArrayView2<f32>) -> f64 {
    assert_eq!(
        a.ncols(),
        b.ncols(),
        "frechet_distance: feature sets of different widths"
    );
    frechet_from_stats(&FeatureStats::new(a), &FeatureStats::new(b))
}

/// The Fréchet distance between $N(\mu_1, \Sigma_1)$ and $N(\mu_2, \Sigma_2)$.
pub fn frechet_from_stats(a: &FeatureStats, b: &FeatureStats) -> f64 {
    // $\|\mu_1 - \mu_2\|^2$
    let dmu = (&a.mean - &b.mean).mapv(|v| v * v).sum();
    // $M = \Sigma_1^{1/2}\, \Sigma_2\, \Sigma_1^{1/2}$, symmetric PSD
    let s1 = sqrtm_psd(&a.cov);
    let m = s1.dot(&b.cov).dot(&s1);
    // exactly symmetric despite rounding
    let m = (&m + &m.t()) * 0.5;
    // $\operatorname{tr} M^{1/2} = \sum_i \sqrt{\lambda_i(M)}$
    let (eig, _) = symmetric_eigen(&m);
    let tr_sqrt: f64 = eig.iter().map(|&l| l.max(0.0).sqrt()).sum();
    let d = dmu + a.cov.diag().sum() + b.cov.diag().sum() - 2.0 * tr_sqrt;
    // A true distance is ≥ 0; equal sets can round to about −1e-16·tr Σ.
    d.max(0.0)
}
// ANCHOR_END: frechet

/// The square root of a symmetric positive semi-definite matrix:
/// $A = V \Lambda V^\top \Rightarrow A^{1/2} = V \Lambda^{1/2} V^\top$ (negative rounding
/// noise in $\Lambda$ clamped to 0). The result is symmetric PSD and $A^{1/2}A^{1/2} = A$.
pub fn sqrtm_psd(a: &Array2<f64>) -> Array2<f64> {
    let (eig, v) = symmetric_eigen(a);
    let root = eig.mapv(|l| l.max(0.0).sqrt());
    // $V \Lambda^{1/2} V^\top$: scale the columns of V, then multiply by Vᵀ
    let scaled = &v * &root; // column j times √λ_j
    scaled.dot(&v.t())
}

// ANCHOR: jacobi
/// Eigenvalues `(n)` and eigenvectors (the columns of an orthogonal `(n, n)`) of a symmetric
/// matrix, $A = V \operatorname{diag}(\lambda) V^\top$, by the cyclic Jacobi method (Golub & Van
/// Loan, *Matrix Computations*, §8.5): sweep over every off-diagonal pair $(p, q)$ and apply
/// the plane rotation $J$ that zeroes $a_{pq}$, $A \leftarrow J^\top A J$, $V \leftarrow VJ$.
/// Each rotation keeps $\|A\|_F$ and lowers the off-diagonal mass by $2a_{pq}^2$; the
/// convergence is quadratic, so a 64×64 covariance needs under ten sweeps. Only `A`'s upper
/// triangle is assumed equal to its lower one (the input is symmetrised first).
pub fn symmetric_eigen(a: &Array2<f64>) -> (Array1<f64>, Array2<f64>) {
    let n = a.nrows();
    assert_eq!(n, a.ncols(), "symmetric_eigen: the matrix is not square");
    let mut a = (a + &a.t()) * 0.5;
    let mut v = Array2::<f64>::eye(n);
    let total: f64 = a.iter().map(|x| x * x).sum();
    let off = |a: &Array2<f64>| -> f64 {
        let mut s = 0.0;
        for p in 0..n {
            for q in 0..n {
                if p != q {
                    s += a[[p, q]] * a[[p, q]];
                }
            }
        }
        s
    };
    for _sweep in 0..100 {
        // Stop when the off-diagonal part is at the level of f64 rounding of the whole.
        if off(&a) <= 1e-30 * total {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[[p, q]];
                if apq == 0.0 {
                    continue;
                }
                // $\theta = (a_{qq} - a_{pp}) / (2 a_{pq})$, $t = \tan$ of the rotation angle,
                // the smaller root of $t^2 + 2\theta t - 1 = 0$ (the rotation of at most 45°)
                let theta = (a[[q, q]] - a[[p, p]]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // $A \leftarrow A J$ (columns p, q), then $A \leftarrow J^\top A$ (rows p, q)
                for k in 0..n {
                    let (akp, akq) = (a[[k, p]], a[[k, q]]);
                    a[[k, p]] = c * akp - s * akq;
                    a[[k, q]] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[[p, k]], a[[q, k]]);
                    a[[p, k]] = c * apk - s * aqk;
                    a[[q, k]] = s * apk + c * aqk;
                }
                // the rotation was chosen to make these zero; store exact zeros
                a[[p, q]] = 0.0;
                a[[q, p]] = 0.0;
                // $V \leftarrow V J$
                for k in 0..n {
                    let (vkp, vkq) = (v[[k, p]], v[[k, q]]);
                    v[[k, p]] = c * vkp - s * vkq;
                    v[[k, q]] = s * vkp + c * vkq;
                }
            }
        }
    }
    (a.diag().to_owned(), v)
}
// ANCHOR_END: jacobi
