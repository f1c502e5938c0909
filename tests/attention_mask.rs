//! The key padding mask of self- and cross-attention: gradients match finite differences
//! with a mask, a masked key changes no output and receives no gradient, and a full mask is
//! the unmasked attention bit for bit.

use minisora::gradcheck::{check, random_input, GradCheck};
use minisora::nn::{Attention, CrossAttention};
use minisora::tensor::rng;
use ndarray::{s, Array2, Array3, ArrayD, Ix3};
use proptest::prelude::*;

fn to3(a: &ArrayD<f32>) -> Array3<f32> {
    a.clone().into_dimensionality::<Ix3>().unwrap()
}

/// `(B, S)`: sample `b` keeps its first `1 + (b + seed) % S` keys.
fn prefix_mask(b: usize, s: usize, seed: u64) -> Array2<bool> {
    Array2::from_shape_fn((b, s), |(i, j)| j < 1 + (i + seed as usize) % s)
}

// Heads of one channel give query gradients as small as the loss's f32 rounding (see
// tests/grad_attention.rs); d ≥ 2 keeps every checked gradient above the checker's floor.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn masked_self_attention_gradients_match_finite_differences(
        b in 1usize..3, t in 1usize..6, h in 1usize..3, d in 2usize..5, seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let mut layer = Attention::new(h * d, h, &mut r);
        let x = random_input(&[b, t, h * d], &mut r);
        let mask = prefix_mask(b, t, seed);
        let report = check(
            &mut layer,
            &[x],
            |l, xs| l.forward_infer_masked(&to3(&xs[0]), Some(&mask)).into_dyn(),
            |l, xs, dy| {
                let (_, cache) = l.forward_masked(&to3(&xs[0]), Some(&mask));
                vec![l.backward(&cache, &to3(dy)).into_dyn()]
            },
            &GradCheck { seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
    }

    #[test]
    fn masked_cross_attention_gradients_match_finite_differences(
        b in 1usize..3, t in 1usize..5, h in 1usize..3, d in 2usize..5,
        s in 1usize..6, cc in 1usize..5, seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let mut layer = CrossAttention::new(h * d, cc, h, &mut r);
        let x = random_input(&[b, t, h * d], &mut r);
        let c = random_input(&[b, s, cc], &mut r);
        let mask = prefix_mask(b, s, seed);
        let report = check(
            &mut layer,
            &[x, c],
            |l, xs| l.forward_infer_masked(&to3(&xs[0]), &to3(&xs[1]), Some(&mask)).into_dyn(),
            |l, xs, dy| {
                let (_, cache) = l.forward_masked(&to3(&xs[0]), &to3(&xs[1]), Some(&mask));
                let (dx, dc) = l.backward(&cache, &to3(dy));
                vec![dx.into_dyn(), dc.into_dyn()]
            },
            &GradCheck { seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
    }
}

#[test]
fn a_masked_context_token_changes_nothing_and_gets_no_gradient() {
    let mut r = rng(3);
    let mut layer = CrossAttention::new(8, 6, 2, &mut r);
    let x = to3(&random_input(&[2, 5, 8], &mut r));
    let c = to3(&random_input(&[2, 7, 6], &mut r));
    let mask = Array2::from_shape_fn((2, 7), |(b, j)| j < 3 + b); // 3 and 4 valid tokens
    let (y, cache) = layer.forward_masked(&x, &c, Some(&mask));
    // anything in the padding: the same output, exactly
    let mut padded = c.clone();
    padded.slice_mut(s![0, 3.., ..]).fill(100.0);
    padded.slice_mut(s![1, 4.., ..]).fill(-7.0);
    let y2 = layer.forward_infer_masked(&x, &padded, Some(&mask));
    assert_eq!(y, y2);
    // and the padding's gradient is exactly zero, the words' is not
    let dy = to3(&random_input(&[2, 5, 8], &mut r));
    let (_, dc) = layer.backward(&cache, &dy);
    assert!(dc.slice(s![0, 3.., ..]).iter().all(|&g| g == 0.0));
    assert!(dc.slice(s![1, 4.., ..]).iter().all(|&g| g == 0.0));
    assert!(dc.slice(s![0, ..3, ..]).iter().any(|&g| g != 0.0));
}

#[test]
fn an_all_true_mask_is_the_unmasked_attention() {
    let mut r = rng(4);
    let layer = Attention::new(8, 2, &mut r);
    let x = to3(&random_input(&[3, 6, 8], &mut r));
    let all = Array2::from_elem((3, 6), true);
    assert_eq!(
        layer.forward_infer(&x),
        layer.forward_infer_masked(&x, Some(&all))
    );
}

#[test]
#[should_panic(expected = "a valid key in every row")]
fn a_row_without_a_valid_key_is_refused() {
    let mut r = rng(5);
    let layer = Attention::new(4, 1, &mut r);
    let x = to3(&random_input(&[1, 3, 4], &mut r));
    layer.forward_infer_masked(&x, Some(&Array2::from_elem((1, 3), false)));
}
