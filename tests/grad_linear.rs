//! Gradient check for `Linear` over random shapes, leading axes and seeds.

use minisora::gradcheck::{check, random_input, GradCheck};
use minisora::nn::Linear;
use minisora::tensor::rng;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn linear_gradients_match_finite_differences(
        lead in proptest::collection::vec(1usize..4, 1..3),
        d_in in 1usize..9,
        d_out in 1usize..9,
        bias in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let mut layer = Linear::new(d_in, d_out, bias, &mut r);
        let mut shape = lead.clone();
        shape.push(d_in);
        let x = random_input(&shape, &mut r);
        let report = check(
            &mut layer,
            &[x],
            |l, xs| l.forward_infer(&xs[0]),
            |l, xs, dy| {
                let (_, cache) = l.forward(&xs[0]);
                vec![l.backward(&cache, dy)]
            },
            &GradCheck { seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
    }
}
