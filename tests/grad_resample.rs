//! Gradient checks for nearest ×2 upsampling and 2×2 average pooling (including odd sizes).

use minisora::gradcheck::{check, random_input, GradCheck};
use minisora::nn::{AvgPool2x, Upsample2x};
use minisora::tensor::rng;
use ndarray::{Array4, ArrayD, Ix4};
use proptest::prelude::*;

fn four(a: &ArrayD<f32>) -> Array4<f32> {
    a.clone().into_dimensionality::<Ix4>().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn upsample_gradients_match_finite_differences(
        b in 1usize..3, c in 1usize..4, h in 1usize..6, w in 1usize..6, seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let x = random_input(&[b, c, h, w], &mut r);
        let report = check(
            &mut Upsample2x,
            &[x],
            |l, xs| l.forward(&four(&xs[0])).into_dyn(),
            |l, _xs, dy| vec![l.backward(&four(dy)).into_dyn()],
            &GradCheck { seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
    }

    #[test]
    fn avgpool_gradients_match_finite_differences(
        b in 1usize..3, c in 1usize..4, h in 2usize..8, w in 2usize..8, seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let x = random_input(&[b, c, h, w], &mut r);
        let report = check(
            &mut AvgPool2x,
            &[x],
            |l, xs| l.forward(&four(&xs[0])).into_dyn(),
            |l, _xs, dy| vec![l.backward([b, c, h, w], &four(dy)).into_dyn()],
            &GradCheck { seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
    }
}

#[test]
fn resample_values_are_exact() {
    let x = Array4::from_shape_fn((1, 1, 3, 5), |(_, _, i, j)| (i * 5 + j) as f32);
    let up = Upsample2x.forward(&x);
    assert_eq!(up.shape(), &[1, 1, 6, 10]);
    assert_eq!(up[[0, 0, 5, 9]], x[[0, 0, 2, 4]]);
    assert_eq!(up[[0, 0, 2, 3]], x[[0, 0, 1, 1]]);
    // pooling the upsampled image gives the image back
    assert_eq!(AvgPool2x.forward(&up), x);
    // odd sizes floor: 3×5 → 1×2, the last row and column are ignored
    let p = AvgPool2x.forward(&x);
    assert_eq!(p.shape(), &[1, 1, 1, 2]);
    assert_eq!(p[[0, 0, 0, 1]], (2.0 + 3.0 + 7.0 + 8.0) / 4.0);
    let dx = AvgPool2x.backward([1, 1, 3, 5], &Array4::ones((1, 1, 1, 2)));
    assert_eq!(dx.sum(), 2.0);
    assert_eq!(dx[[0, 0, 2, 0]], 0.0);
    assert_eq!(dx[[0, 0, 0, 4]], 0.0);
}
