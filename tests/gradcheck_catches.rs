//! The checker must be able to fail: a backward with a dropped or wrong term is caught.

use minisora::gradcheck::{check, random_input, GradCheck, Report};
use minisora::nn::Linear;
use minisora::tensor::rng;
use ndarray::ArrayD;

fn report_for(broken: impl Fn(&mut Linear, &ArrayD<f32>, &ArrayD<f32>) -> ArrayD<f32>) -> Report {
    let mut r = rng(7);
    let mut layer = Linear::new(5, 4, true, &mut r);
    let x = random_input(&[3, 5], &mut r);
    check(
        &mut layer,
        &[x],
        |l, xs| l.forward_infer(&xs[0]),
        |l, xs, dy| vec![broken(l, &xs[0], dy)],
        &GradCheck::default(),
    )
}

#[test]
fn correct_backward_passes() {
    let report = report_for(|l, x, dy| {
        let (_, c) = l.forward(x);
        l.backward(&c, dy)
    });
    assert!(
        report.passed,
        "correct gradient reported as wrong: {report:?}"
    );
}

#[test]
fn dropped_bias_gradient_is_caught() {
    let report = report_for(|l, x, dy| {
        let (_, c) = l.forward(x);
        let dx = l.backward(&c, dy);
        l.bias.as_mut().unwrap().grad.fill(0.0); // the "forgotten" Σ dy term
        dx
    });
    assert!(
        !report.passed && report.max_rel_err > 0.5,
        "checker missed a dropped bias gradient: {report:?}"
    );
}

#[test]
fn wrong_input_gradient_is_caught() {
    let report = report_for(|l, x, dy| {
        let (_, c) = l.forward(x);
        l.backward(&c, dy) * 1.01 // off by one percent
    });
    // Too small for the per-coordinate tolerance; the directional derivative sees it.
    assert!(
        !report.passed && report.directional_rel_err > 1e-3,
        "checker missed a 1% error in dx: {report:?}"
    );
}
