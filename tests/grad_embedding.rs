//! Gradient check for `Embedding` (the table is the only differentiable input) and its
//! scatter-add with repeated ids.

mod support;

use minisora::gradcheck::check;
use minisora::nn::Embedding;
use minisora::param::Parameters;
use minisora::tensor::rng;
use ndarray::{arr2, Array2};
use proptest::prelude::*;
use support::check_seeded;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn embedding_gradients_match_finite_differences(
        num in 1usize..8,
        dim in 1usize..6,
        raw_ids in proptest::collection::vec(0usize..1000, 1..12),
        seed in any::<u64>(),
    ) {
        let layer = Embedding::new(num, dim, &mut rng(seed ^ 0x5eed));
        // Ids repeat whenever there are more of them than rows: those rows' gradients add up.
        let ids: Vec<usize> = raw_ids.iter().map(|i| i % num).collect();
        let report = check_seeded(seed, |cfg| {
            check(
                &mut layer.clone(),
                &[],
                |l, _| l.forward_infer(&ids).into_dyn(),
                |l, _, dy| {
                    let (_, cache) = l.forward(&ids);
                    let dy: Array2<f32> = dy.clone().into_dimensionality().unwrap();
                    l.backward(&cache, &dy);
                    vec![]
                },
                cfg,
            )
        });
        prop_assert!(report.passed, "{report:?}");
    }
}

#[test]
fn lookup_and_scatter_add_by_hand() {
    let mut e = Embedding::new(3, 2, &mut rng(0));
    e.weight.value = arr2(&[[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]]).into_dyn();
    let (y, cache) = e.forward(&[2, 0, 2]);
    assert_eq!(y, arr2(&[[5.0, 6.0], [1.0, 2.0], [5.0, 6.0]]));
    e.backward(&cache, &arr2(&[[1.0, 10.0], [100.0, 1000.0], [2.0, 20.0]]));
    // Row 2 was used twice: its gradient is the sum of both dy rows; row 1 was never used.
    assert_eq!(
        e.weight.grad,
        arr2(&[[100.0, 1000.0], [0.0, 0.0], [3.0, 30.0]]).into_dyn()
    );
    let names: Vec<_> = e.param_shapes();
    assert_eq!(names, [("weight".to_string(), vec![3, 2])]);
}

#[test]
fn default_init_is_standard_normal() {
    let e = Embedding::new(200, 50, &mut rng(1));
    let n = e.weight.len() as f64;
    let mean = e.weight.value.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = e
        .weight
        .value
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    // 10 000 draws: the mean is within 4 standard errors (0.04) of 0, the variance near 1.
    assert!(
        mean.abs() < 0.04 && (var - 1.0).abs() < 0.06,
        "{mean} {var}"
    );
}

#[test]
#[should_panic(expected = "embedding id 3 out of range")]
fn out_of_range_ids_panic_with_a_clear_message() {
    Embedding::new(3, 2, &mut rng(0)).forward_infer(&[0, 3]);
}
