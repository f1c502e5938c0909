//! The tanh-approximate GELU in `f32`, fast: the clear [`Gelu`](super::Gelu) of
//! [`GeluKind::Tanh`](super::GeluKind) evaluates in `f64` for exactness, but the DiT MLP's
//! hidden layer is the largest activation of the whole model (`B·T × 4D`), and in training
//! this is the one elementwise pass that shows up in the profile. Written through the logistic
//! function, since $\tfrac12(1 + \tanh u) = \sigma(2u)$, it needs one `exp` per element:
//!
//! $$\mathrm{gelu}(x) = x\,\sigma(2u), \qquad u = \sqrt{2/\pi}\,(x + 0.044715\,x^3)$$
//!
//! which is PyTorch's `GELU(approximate="tanh")` up to float rounding. The loops are
//! [`avx2_twin!`](crate::tensor::simd) functions, so they take the AVX2 path where the CPU has
//! it, with the same bits either way.

use crate::tensor::simd::avx2_twin;
use ndarray::Array2;
use rayon::prelude::*;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

const SQRT_2_OVER_PI: f32 = 0.797_884_6; // $\sqrt{2/\pi}$
const GELU_C: f32 = 0.044_715;

/// $e^x$ in f32 without a library call, so loops over it vectorise: $x = k \ln 2 + r$ with
/// integer $k$ and $|r| \le \ln 2 / 2$, then $e^x = 2^k e^r$, $e^r$ by its Taylor series to
/// $r^7$ (relative error below $0.35^8/8! \approx 6 \cdot 10^{-9}$, so the result is within
/// a few units in the last place) and $2^k$ written straight into the exponent bits. `x` is
/// clamped to $[-80, 80]$, where $e^x$ stays a normal float: callers only use it inside
/// $\sigma$, where beyond that range it is 0 or 1 to f32 precision anyway.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75; // ln 2 split in two, so k·LN2_HI is exact
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting it rounds to an integer
    let x = x.clamp(-80.0, 80.0);
    // $x \log_2 e + 1.5 \cdot 2^{23}$ holds the integer $k$ in its low mantissa bits
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // $e^r \approx \sum_{n \le 7} r^n / n!$, by Horner's rule
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // $2^k$: the biased exponent $k + 127$ in bits 23–30, with $k$ read from the bits of
    // `shifted` by integer arithmetic (no float-to-int conversion, so the loop vectorises)
    let k_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    p * f32::from_bits(k_bits.wrapping_add(127) << 23)
}

// ANCHOR: gelu_tanh
/// $\mathrm{gelu}(x) = x\,\sigma(2u)$ and its slope
/// $\sigma(2u) + 2x\,\sigma(2u)\,(1 - \sigma(2u))\,\sqrt{2/\pi}\,(1 + 3 \cdot 0.044715\,x^2)$.
#[inline(always)]
fn gelu_and_slope(x: f32) -> (f32, f32) {
    let u = SQRT_2_OVER_PI * (x + GELU_C * x * x * x);
    let s = 1.0 / (1.0 + exp_f32(-2.0 * u)); // $\sigma(2u)$
    let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x * x);
    (x * s, s + 2.0 * x * s * (1.0 - s) * du)
}
// ANCHOR_END: gelu_tanh

/// $\mathrm{gelu}(h)$ elementwise, in parallel chunks.
pub fn fast_gelu(h: &Array2<f32>) -> Array2<f32> {
    let h_rows = h.as_slice().expect("Linear output is row-major");
    filled(h, |g| {
        g.par_chunks_mut(CHUNK)
            .zip(h_rows.par_chunks(CHUNK))
            .for_each(|(g, h)| gelu_slice(h, g))
    })
}

/// $\mathrm{gelu}(h)$ and its slope $\mathrm{gelu}'(h)$ elementwise, in parallel chunks: the
/// backward pass then needs one multiply per element instead of another `exp`.
pub fn fast_gelu_with_slope(h: &Array2<f32>) -> (Array2<f32>, Array2<f32>) {
    let h_rows = h.as_slice().expect("Linear output is row-major");
    let mut slope = None;
    let g = filled(h, |g| {
        slope = Some(filled(h, |s| {
            g.par_chunks_mut(CHUNK)
                .zip(s.par_chunks_mut(CHUNK))
                .zip(h_rows.par_chunks(CHUNK))
                .for_each(|((g, s), h)| gelu_slope_slice(h, g, s))
        }))
    });
    (g, slope.expect("filled with g"))
}

/// A fresh array of `h`'s shape written by `fill`, which assigns every element, without the
/// zero-fill that would come first otherwise (for the MLP's hidden layer, the largest
/// activation, that fill was about 3 % of an `alternating` video DiT step).
fn filled(h: &Array2<f32>, fill: impl FnOnce(&mut [f32])) -> Array2<f32> {
    let mut out = Array2::<f32>::uninit(h.raw_dim());
    // SAFETY: `out` is a fresh standard-layout array, so its buffer is `out.len()` contiguous
    // f32 slots; every caller's `fill` is a chunked loop whose kernels assign each element of
    // their chunk without reading it, so all of `out` is initialised before `assume_init`
    // (the same pattern as `tensor::matmul`).
    unsafe {
        let data = std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut f32, out.len());
        fill(data);
        out.assume_init()
    }
}

avx2_twin! {
    /// `g = gelu(h)` over a slice.
    fn gelu_slice(h: &[f32], g: &mut [f32]) {
        for (g, &x) in g.iter_mut().zip(h) {
            *g = gelu_and_slope(x).0;
        }
    }
}

avx2_twin! {
    /// `g = gelu(h)` and `slope = gelu'(h)` over a slice.
    fn gelu_slope_slice(h: &[f32], g: &mut [f32], slope: &mut [f32]) {
        for ((g, s), &x) in g.iter_mut().zip(slope.iter_mut()).zip(h) {
            (*g, *s) = gelu_and_slope(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_is_within_a_few_ulps() {
        let mut worst = 0.0f64;
        for i in -80_000..=80_000 {
            let x = i as f32 * 1e-3;
            let want = (x as f64).exp();
            worst = worst.max(((exp_f32(x) as f64 - want) / want).abs());
        }
        assert!(
            worst < 4.0 * f32::EPSILON as f64,
            "relative error {worst:e}"
        );
    }

    #[test]
    fn gelu_matches_the_f64_tanh_form_and_its_slope() {
        for i in -2_000..=2_000 {
            let x = i as f32 * 6e-3;
            let (y, dy) = gelu_and_slope(x);
            let xd = x as f64;
            let t = (0.797_884_560_802_865_4 * (xd + 0.044_715 * xd.powi(3))).tanh();
            let want = 0.5 * xd * (1.0 + t);
            assert!(
                (y as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "gelu({x})"
            );
            let h = 1e-4;
            let g = |v: f64| {
                0.5 * v * (1.0 + (0.797_884_560_802_865_4 * (v + 0.044_715 * v.powi(3))).tanh())
            };
            let slope = (g(xd + h) - g(xd - h)) / (2.0 * h);
            assert!(
                (dy as f64 - slope).abs() <= 1e-5,
                "gelu'({x}): {dy} vs {slope}"
            );
        }
    }
}
