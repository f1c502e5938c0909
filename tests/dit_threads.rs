//! A DiT training step (forward, backward) gives bit-identical outputs and gradients on one
//! and on two threads, and on two runs with two threads: every parallel loop of the DiT
//! (GEMM blocks, per-sample adaLN, per-head attention, elementwise chunks) writes disjoint
//! outputs and sums in a fixed order.

use minisora::diffusion::Condition;
use minisora::diffusion::TrainableDenoiser;
use minisora::dit::{DiT, DiTConfig};
use minisora::param::Parameters;
use minisora::tensor::{init, rng};
use ndarray::ArrayD;

/// One forward and backward: the output and every parameter gradient.
fn step(threads: usize) -> (ArrayD<f32>, Vec<ArrayD<f32>>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let config = DiTConfig::named("DiT-mini/2", 8, 4, 10).unwrap();
        let mut model = DiT::new(config, &mut rng(3)).unwrap();
        // adaLN-Zero starts at zero: give every parameter a non-zero value so all paths count.
        let mut r = rng(4);
        model.visit("", &mut |_, p| {
            p.value = init::normal(p.value.shape(), 0.05, &mut r);
        });
        let batch = 6;
        let x = init::normal(&[batch, 4, 8, 8], 1.0, &mut r);
        let d_out = init::normal(&[batch, 8, 8, 8], 1.0, &mut r);
        let t: Vec<usize> = (0..batch).map(|i| i * 151 % 1000).collect();
        let y: Vec<usize> = (0..batch).map(|i| i % 11).collect();
        let (out, cache) = model.forward_train(&x, &t, &Condition::labels(&y));
        model.backward_train(&cache, &d_out);
        let mut grads = Vec::new();
        model.visit("", &mut |_, p| grads.push(p.grad.clone()));
        (out, grads)
    })
}

#[test]
fn training_step_is_bit_identical_for_one_and_two_threads() {
    let (one, two, again) = (step(1), step(2), step(2));
    assert!(one.0 == two.0, "outputs differ between 1 and 2 threads");
    assert!(one.1 == two.1, "gradients differ between 1 and 2 threads");
    assert!(
        two.0 == again.0 && two.1 == again.1,
        "two runs on 2 threads differ"
    );
    assert!(
        one.1.iter().any(|g| g.iter().any(|&v| v != 0.0)),
        "all gradients are zero"
    );
}
