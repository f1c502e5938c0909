//! A condition between two classes — what a model draws halfway between a dog and a ball.
//! A class-conditional model reads its class as a row $e_y$ of a learned table;
//! nothing stops us from handing it a vector between two rows, $e_a$ and $e_b$, and asking what
//! it draws there — from the same noise $x_T$, so only the condition changes.
//!
//! Two paths from $e_a$ to $e_b$, both at $s = 0$ exactly $e_a$ and at $s = 1$ exactly $e_b$:
//!
//! - linear (lerp): $e(s) = (1-s)\,e_a + s\,e_b$, a straight line, which cuts the corner: two
//!   rows of similar length at an angle $\Omega$ give a midpoint $\cos(\Omega/2)$ times as long;
//! - spherical (slerp, Shoemake 1985): the angle $\Omega$ between the two vectors is walked
//!   evenly, $\hat e(s) = \frac{\sin((1-s)\Omega)}{\sin\Omega}\,\hat e_a + \frac{\sin(s\Omega)}{\sin\Omega}\,\hat e_b$
//!   for the unit vectors $\hat e = e / \lVert e\rVert$, and the length is interpolated
//!   linearly, $\lVert e(s)\rVert = (1-s)\lVert e_a\rVert + s\lVert e_b\rVert$.
//!
//! Why the length separately: the textbook formula applied to $e_a$, $e_b$ themselves turns
//! evenly only when the two have the same length; otherwise the longer one pulls the
//! direction towards it (orthogonal rows of lengths 1 and 2 give a midpoint 63° from the
//! first, not 45°, of length 1.58, not 1.5). Splitting direction and length keeps both even,
//! and equals the textbook formula when the lengths agree.

use ndarray::{Array1, ArrayView1};

/// One sample's condition between classes `from` and `to`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Blend {
    pub from: usize,
    pub to: usize,
    /// $s$: 0 is `from`'s embedding, 1 is `to`'s.
    pub weight: f32,
    /// Along the sphere (slerp) rather than the straight line (lerp).
    pub spherical: bool,
}

/// Below this $\sin\Omega$ slerp falls back to lerp: the two vectors are (anti)parallel, and
/// $\sin((1-s)\Omega)/\sin\Omega$ would divide rounding noise by nearly zero.
const PARALLEL: f64 = 1e-6;

impl Blend {
    /// The embedding of this blend, given the two classes' rows `e_a` (of `from`) and `e_b`
    /// (of `to`).
    pub fn mix(&self, e_a: ArrayView1<f32>, e_b: ArrayView1<f32>) -> Array1<f32> {
        if self.spherical {
            slerp(e_a, e_b, self.weight)
        } else {
            lerp(e_a, e_b, self.weight)
        }
    }
}

// ANCHOR: blend
/// $e(s) = (1-s)\,a + s\,b$
pub fn lerp(a: ArrayView1<f32>, b: ArrayView1<f32>, s: f32) -> Array1<f32> {
    &a * (1.0 - s) + &b * s
}

/// The direction turned evenly through the angle $\Omega$ between `a` and `b`, the length
/// interpolated linearly; lerp when $\sin\Omega \approx 0$ (parallel, or opposite: then no
/// one great circle joins them) or either vector is zero.
pub fn slerp(a: ArrayView1<f32>, b: ArrayView1<f32>, s: f32) -> Array1<f32> {
    let dot = |u: &ArrayView1<f32>, v: &ArrayView1<f32>| -> f64 {
        u.iter().zip(v).map(|(&x, &y)| x as f64 * y as f64).sum()
    };
    // $\lVert a\rVert$, $\lVert b\rVert$, $\cos\Omega = a \cdot b / (\lVert a\rVert \lVert b\rVert)$
    let (na, nb) = (dot(&a, &a).sqrt(), dot(&b, &b).sqrt());
    if na == 0.0 || nb == 0.0 {
        return lerp(a, b, s);
    }
    let omega = (dot(&a, &b) / (na * nb)).clamp(-1.0, 1.0).acos();
    let sin = omega.sin();
    if sin < PARALLEL {
        return lerp(a, b, s);
    }
    let s = s as f64;
    // $\lVert e(s)\rVert = (1-s)\lVert a\rVert + s\lVert b\rVert$
    let norm = (1.0 - s) * na + s * nb;
    // $e(s) = c_a\,a + c_b\,b$ with
    // $c_a = \frac{\lVert e(s)\rVert}{\lVert a\rVert}\frac{\sin((1-s)\Omega)}{\sin\Omega}$,
    // $c_b = \frac{\lVert e(s)\rVert}{\lVert b\rVert}\frac{\sin(s\Omega)}{\sin\Omega}$:
    // at $s = 0$ they are exactly 1 and 0, so $e(0) = a$ to the bit (and $e(1) = b$).
    let ca = (norm / na) * (((1.0 - s) * omega).sin() / sin);
    let cb = (norm / nb) * ((s * omega).sin() / sin);
    &a * ca as f32 + &b * cb as f32
}
// ANCHOR_END: blend
