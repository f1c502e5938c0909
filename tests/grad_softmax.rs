//! Softmax: gradient check over random ranks and shapes, stability, and the row backward
//! against the explicit Jacobian.

use minisora::gradcheck::{check, random_input, GradCheck};
use minisora::nn::softmax::{softmax_backward_into, softmax_inplace};
use minisora::nn::Softmax;
use minisora::tensor::rng;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn softmax_gradients_match_finite_differences(
        shape in proptest::collection::vec(1usize..6, 1..4),
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let x = random_input(&shape, &mut r);
        let mut layer = Softmax;
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

#[test]
fn softmax_is_stable_for_huge_scores_and_rows_sum_to_one() {
    let mut row = [1000.0f32, 1001.0, 999.0, -1e30];
    softmax_inplace(&mut row);
    assert!(row.iter().all(|v| v.is_finite()), "{row:?}");
    assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{row:?}");
    // softmax(1000, 1001, 999) = softmax(1, 2, 0)
    let e = [1f32.exp(), 2f32.exp(), 1.0];
    let z: f32 = e.iter().sum();
    for i in 0..3 {
        assert!((row[i] - e[i] / z).abs() < 1e-6, "{row:?}");
    }
    assert_eq!(row[3], 0.0);
}

#[test]
fn row_backward_equals_the_explicit_jacobian() {
    let mut r = rng(7);
    let x = random_input(&[6], &mut r);
    let dy = random_input(&[6], &mut r);
    let mut y = x.as_slice().unwrap().to_vec();
    softmax_inplace(&mut y);
    let mut dx = vec![0.0; 6];
    softmax_backward_into(&y, dy.as_slice().unwrap(), &mut dx);
    // $J_{ij} = y_i(\delta_{ij} - y_j)$, $dx = J^\top dy$ (J is symmetric)
    for i in 0..6 {
        let want: f32 = (0..6)
            .map(|j| y[i] * (if i == j { 1.0 } else { 0.0 } - y[j]) * dy[[j]])
            .sum();
        assert!(
            (dx[i] - want).abs() < 1e-6,
            "dx[{i}] = {} want {want}",
            dx[i]
        );
    }
}

#[test]
fn large_inputs_take_the_parallel_path_and_match_row_by_row() {
    let mut r = rng(3);
    let x = random_input(&[64, 40, 17], &mut r);
    let (y, cache) = Softmax.forward(&x);
    let dy = random_input(&[64, 40, 17], &mut r);
    let dx = Softmax.backward(&cache, &dy);
    let (xs, ys, dys, dxs) = (
        x.as_slice().unwrap(),
        y.as_slice().unwrap(),
        dy.as_slice().unwrap(),
        dx.as_slice().unwrap(),
    );
    for i in 0..64 * 40 {
        let rr = i * 17..(i + 1) * 17;
        let mut want = xs[rr.clone()].to_vec();
        softmax_inplace(&mut want);
        assert_eq!(&ys[rr.clone()], &want[..]);
        let mut want_dx = vec![0.0; 17];
        softmax_backward_into(&want, &dys[rr.clone()], &mut want_dx);
        assert_eq!(&dxs[rr], &want_dx[..]);
    }
}
