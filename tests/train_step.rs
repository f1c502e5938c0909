//! The trainer's step (`diffusion::train_step`): its two micro-batches give the gradient of
//! the whole batch (also on a second step, with the model copy the first one kept), and the
//! step is bit-identical on one and two threads.

use minisora::diffusion::{training_losses, Condition, TrainableDenoiser};
use minisora::dit::{DiT, DiTConfig};
use minisora::models::dit::dit_diffusion;
use minisora::optim::{AdamW, AdamWConfig, Ema};
use minisora::param::Parameters;
use minisora::tensor::{init, rng};
use minisora::train::{train_step, StepBatch, StepOptimizer};
use ndarray::ArrayD;

struct Setup {
    model: DiT,
    x0: ArrayD<f32>,
    noise: ArrayD<f32>,
    t: Vec<usize>,
    y: Vec<usize>,
}

/// A DiT-mini/2 with every parameter non-zero (adaLN-Zero would hide most paths) and a batch.
fn setup(batch: usize) -> Setup {
    let config = DiTConfig::named("DiT-mini/2", 8, 4, 10).unwrap();
    let mut model = DiT::new(config, &mut rng(3)).unwrap();
    let mut r = rng(4);
    model.visit("", &mut |_, p| {
        p.value = init::normal(p.value.shape(), 0.05, &mut r);
    });
    Setup {
        model,
        x0: init::normal(&[batch, 4, 8, 8], 1.0, &mut r),
        noise: init::normal(&[batch, 4, 8, 8], 1.0, &mut r),
        t: (0..batch).map(|i| i * 151 % 1000).collect(),
        y: (0..batch).map(|i| i % 11).collect(),
    }
}

fn grads(model: &mut DiT) -> Vec<ArrayD<f32>> {
    let mut g = Vec::new();
    model.visit("", &mut |_, p| g.push(p.grad.clone()));
    g
}

/// What two `train_step`s on `threads` threads leave: the second step's loss and gradients,
/// the model as it was before the second step, and the final weights.
struct TwoSteps {
    loss: f32,
    grads: Vec<ArrayD<f32>>,
    before: DiT,
    weights: Vec<ArrayD<f32>>,
}

fn two_steps(threads: usize, batch: usize) -> TwoSteps {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let Setup {
            mut model,
            x0,
            noise,
            t,
            y,
        } = setup(batch);
        let mut opt = AdamW::new(AdamWConfig::default());
        let mut ema = Ema::new(&mut model, 0.999);
        let mut copy = None;
        let b = StepBatch {
            x0: &x0,
            t: &t,
            noise: &noise,
            y: &Condition::labels(&y),
            given: None,
        };
        let mut before = model.clone();
        let mut loss = 0.0;
        // the second step reuses the copy the first one made: its weights must be refreshed
        for _ in 0..2 {
            before = model.clone();
            let mut optim = StepOptimizer {
                opt: &mut opt,
                ema: &mut ema,
                grad_clip: None,
                copy: &mut copy,
            };
            loss = train_step(&mut model, &dit_diffusion(true), &b, &mut optim, "dit")
                .unwrap()
                .0;
        }
        let mut weights = Vec::new();
        model.visit("", &mut |_, p| weights.push(p.value.clone()));
        TwoSteps {
            loss,
            grads: grads(&mut model),
            before,
            weights,
        }
    })
}

#[test]
fn micro_batches_give_the_whole_batch_gradient() {
    for batch in [1, 5, 6] {
        let got = two_steps(2, batch);
        // the same gradient from one forward and backward of the whole batch, at the weights
        // the second step started from
        let Setup {
            x0, noise, t, y, ..
        } = setup(batch);
        let mut model = got.before.clone();
        model.zero_grad();
        let diffusion = dit_diffusion(true);
        let x_t = diffusion.schedule.q_sample(&x0, &t, &noise);
        let (out, cache) = model.forward_train(&x_t, &t, &Condition::labels(&y));
        let l = training_losses(&diffusion, &x0, &x_t, &t, &noise, &out, None);
        model.backward_train(&cache, &l.d_out);
        let want = grads(&mut model);
        assert!(
            (got.loss - l.loss).abs() <= 1e-6 * l.loss.abs(),
            "batch {batch}: loss {} vs {}",
            got.loss,
            l.loss
        );
        let mut worst = 0.0f32;
        for (g, w) in got.grads.iter().zip(&want) {
            let scale = w.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
            let err = (g - w).iter().fold(0.0f32, |m, v| m.max(v.abs())) / scale;
            worst = worst.max(err);
        }
        assert!(
            worst < 1e-4,
            "batch {batch}: gradients differ by {worst:e} of their scale"
        );
        assert!(
            want.iter().all(|w| w.iter().any(|&v| v != 0.0)),
            "a zero gradient"
        );
    }
}

#[test]
fn a_step_is_bit_identical_on_one_and_two_threads() {
    let (one, two) = (two_steps(1, 6), two_steps(2, 6));
    assert!(
        one.loss == two.loss,
        "losses differ: {} vs {}",
        one.loss,
        two.loss
    );
    assert!(
        one.grads == two.grads,
        "gradients differ between 1 and 2 threads"
    );
    assert!(
        one.weights == two.weights,
        "weights differ between 1 and 2 threads"
    );
}
