//! Gradient checks for the evaluation classifier (input and every parameter, over random
//! small configs) and for the softmax cross-entropy, plus the cross-entropy's value by hand.

mod support;

use minisora::gradcheck::{check, random_input, GradCheck};
use minisora::metrics::{Classifier, ClassifierConfig};
use minisora::nn::loss::cross_entropy;
use minisora::param::{Param, Parameters};
use minisora::tensor::rng;
use ndarray::{arr2, ArrayD, Ix2, IxDyn};
use ndarray_rand::rand::Rng as _;
use proptest::prelude::*;
use support::{check_seeded, four};

/// A loss has no parameters; the checker still wants a model to walk.
struct NoParams;
impl Parameters for NoParams {
    fn visit(&mut self, _prefix: &str, _f: &mut dyn FnMut(&str, &mut Param)) {}
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn classifier_gradients_match_finite_differences(
        b in 1usize..3,
        c in prop_oneof![Just(1usize), Just(3usize)],
        classes in 2usize..5,
        w1 in 1usize..4,
        w2 in 1usize..4,
        w3 in 1usize..4,
        feature_dim in 1usize..5,
        size in prop_oneof![Just(8usize), Just(16usize)],
        seed in any::<u64>(),
    ) {
        let config = ClassifierConfig {
            in_channels: c,
            num_classes: classes,
            widths: [w1, w2, w3],
            feature_dim,
            image_size: size,
        };
        let mut r = rng(seed);
        let mut model = Classifier::new(config, &mut r).unwrap();
        let x = random_input(&[b, c, size, size], &mut r);
        let report = check(
            &mut model,
            &[x],
            |m, xs| m.forward_infer(&four(&xs[0])).into_dyn(),
            |m, xs, dy| {
                let (_, cache) = m.forward(&four(&xs[0]));
                let dy = dy.clone().into_dimensionality::<Ix2>().unwrap();
                vec![m.backward(&cache, &dy).into_dyn()]
            },
            &GradCheck { seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
        // the input and all ten parameters (five layers × weight, bias) were checked
        prop_assert_eq!(model.param_shapes().len(), 10);
        prop_assert!(report.checked > 10);
    }

    #[test]
    fn cross_entropy_gradients_match_finite_differences(
        n in 1usize..6,
        k in 2usize..8,
        scale in 0.1f32..4.0,
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed ^ 0xce);
        let logits = random_input(&[n, k], &mut r).mapv(|v| v * scale);
        let labels: Vec<usize> = (0..n).map(|_| r.random_range(0..k)).collect();
        let two = |a: &ArrayD<f32>| a.clone().into_dimensionality::<Ix2>().unwrap();
        let report = check_seeded(seed, |cfg| {
            check(
                &mut NoParams,
                std::slice::from_ref(&logits),
                |_, xs| ArrayD::from_elem(IxDyn(&[1]), cross_entropy(&two(&xs[0]), &labels).0),
                |_, xs, dy| vec![(cross_entropy(&two(&xs[0]), &labels).1 * dy[0]).into_dyn()],
                cfg,
            )
        });
        prop_assert!(report.passed, "{report:?}");
    }
}

#[test]
fn cross_entropy_by_hand() {
    // Two equal logits: softmax = [½, ½], loss = ln 2, dlogits = (p − onehot)/N.
    let (l, d) = cross_entropy(&arr2(&[[0.0f32, 0.0]]), &[1]);
    assert!((l - std::f32::consts::LN_2).abs() < 1e-7, "{l}");
    assert_eq!(d, arr2(&[[0.5, -0.5]]));
    // Huge logits must not overflow: [1000, 0] with label 0 is a near-zero loss, and with
    // label 1 a loss of 1000; averaged over the two rows, 500.
    let (l, d) = cross_entropy(&arr2(&[[1000.0f32, 0.0], [1000.0, 0.0]]), &[0, 1]);
    assert!((l - 500.0).abs() < 1e-3, "{l}");
    assert_eq!(d, arr2(&[[0.0, 0.0], [0.5, -0.5]]));
}
