//! Every fast kernel of the DiT against the clear version it replaces, on random shapes:
//!
//! - adaLN's fused LayerNorm + modulate (`norm_modulate`) against `nn::LayerNorm` (no affine,
//!   eps 1e-6) and a broadcast, $a = \mathrm{LN}(x)(1 + \gamma) + \beta$: the output, the input
//!   gradient and the shift's and scale's;
//! - the per-sample gated residual (`gated_add`) against $x + \alpha \odot y$ with a broadcast:
//!   the output and the gradients of the branch and the gate;
//! - the DiT MLP with its f32 GELU (`Mlp::forward`) against `Linear` + `Gelu` (tanh, f64) +
//!   `Linear` with the same weights (`Mlp::forward_clear`): the output, the input gradient and
//!   every parameter gradient.
//!
//! The two sides sum in different orders (and the GELU runs in f32 against f64), so they agree
//! to a relative `1e-5` of each tensor's largest entry, not bit for bit.

mod support;

use minisora::dit::modulate::{
    gated_add, gated_add_backward, gated_add_clear, gated_add_clear_backward, norm_modulate,
    norm_modulate_backward, norm_modulate_clear, norm_modulate_clear_backward,
};
use minisora::dit::Mlp;
use minisora::gradcheck::random_input;
use minisora::tensor::rng;
use ndarray::{Array, Dimension};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::fmt::Debug;
use support::{grads, randomise_zeros, rel_err, tokens, two};

const TOL: f32 = 1e-5;

/// A tensor's name, its fast value and its clear value.
type Pair<'a, D> = (&'a str, &'a Array<f32, D>, &'a Array<f32, D>);

/// Fails the case, naming the tensor and the shape, unless every fast tensor is within `TOL`
/// (relative to its largest entry) of the clear one.
fn all_close<D: Dimension>(pairs: &[Pair<D>], shape: impl Debug) -> Result<(), TestCaseError> {
    for (name, fast, clear) in pairs {
        let e = rel_err(fast, clear);
        prop_assert!(e <= TOL, "{name}: relative error {e:e} at {shape:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn fused_modulate_matches_layernorm_and_a_broadcast(
        b in 1usize..5,
        t in 1usize..10,
        d in 3usize..40,
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let x = two(&tokens(&[b * t, d], &mut r)); // (B·T, D)
        let shift = two(&random_input(&[b, d], &mut r)); // (B, D)
        let scale = two(&random_input(&[b, d], &mut r)); // (B, D)
        let da = two(&random_input(&[b * t, d], &mut r)); // (B·T, D)
        let dx0 = two(&random_input(&[b * t, d], &mut r)); // the residual gradient added to

        let (a, cache) = norm_modulate(&x, shift.view(), scale.view());
        let mut dx = dx0.clone();
        let (d_shift, d_scale) = norm_modulate_backward(&cache, &da, scale.view(), &mut dx);

        let (a_c, cache_c) = norm_modulate_clear(&x, shift.view(), scale.view());
        let mut dx_c = dx0;
        let (d_shift_c, d_scale_c) =
            norm_modulate_clear_backward(&cache_c, &da, scale.view(), &mut dx_c);

        let pairs = [
            ("a", &a, &a_c),
            ("dx", &dx, &dx_c),
            ("dshift", &d_shift, &d_shift_c),
            ("dscale", &d_scale, &d_scale_c),
        ];
        all_close(&pairs, ("(B, T, D)", b, t, d))?;
    }

    #[test]
    fn fused_gated_residual_matches_a_broadcast(
        b in 1usize..5,
        t in 1usize..10,
        d in 1usize..40,
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let x = two(&random_input(&[b * t, d], &mut r)); // (B·T, D)
        let y = two(&random_input(&[b * t, d], &mut r)); // (B·T, D)
        let gate = two(&random_input(&[b, d], &mut r)); // (B, D)
        let dout = two(&random_input(&[b * t, d], &mut r)); // (B·T, D)

        let mut out = x.clone();
        gated_add(&mut out, gate.view(), &y);
        let (dy, d_gate) = gated_add_backward(&dout, gate.view(), &y);

        let out_c = gated_add_clear(&x, gate.view(), &y);
        let (dy_c, d_gate_c) = gated_add_clear_backward(&dout, gate.view(), &y);

        let pairs = [("out", &out, &out_c), ("dy", &dy, &dy_c), ("dgate", &d_gate, &d_gate_c)];
        all_close(&pairs, ("(B, T, D)", b, t, d))?;
    }

    #[test]
    fn dit_mlp_matches_linear_gelu_linear(
        n in 1usize..20,
        d in 1usize..16,
        hidden in 1usize..48,
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let mut fast = Mlp::new(d, hidden, &mut r);
        randomise_zeros(&mut fast, &mut r); // the zero biases
        let mut clear = fast.clone();
        let x = two(&random_input(&[n, d], &mut r)).mapv(|v| 2.0 * v); // (N, D)
        let dy = two(&random_input(&[n, d], &mut r)); // (N, D)

        let (y, cache) = fast.forward(&x);
        prop_assert_eq!(&y, &fast.forward_infer(&x));
        let dx = fast.backward(&cache, &dy);
        let (y_c, cache_c) = clear.forward_clear(&x);
        let dx_c = clear.backward_clear(&cache_c, &dy);

        let shape = ("(N, D, H)", n, d, hidden);
        all_close(&[("y", &y, &y_c), ("dx", &dx, &dx_c)], shape)?;
        let (g, g_c) = (grads(&mut fast), grads(&mut clear));
        let pairs: Vec<_> = g.iter().zip(&g_c).map(|((p, f), (_, c))| (p.as_str(), f, c)).collect();
        all_close(&pairs, shape)?;
    }
}
