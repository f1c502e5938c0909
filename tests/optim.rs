//! Optimizers, EMA, clipping and the schedule against values worked out by hand.

use minisora::optim::{clip_grad_norm, AdamW, AdamWConfig, CosineSchedule, Ema, Sgd, SgdConfig};
use minisora::param::{join, Param, Parameters};
use ndarray::{arr1, ArrayD, IxDyn};

/// A tiny model: a vector `w` and, optionally, a scalar-like `b`.
struct Model {
    w: Param,
    b: Option<Param>,
}

impl Parameters for Model {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        f(&join(prefix, "w"), &mut self.w);
        if let Some(b) = &mut self.b {
            f(&join(prefix, "b"), b);
        }
    }
}

fn model(w: &[f32]) -> Model {
    Model {
        w: Param::new(arr1(w).into_dyn()),
        b: None,
    }
}

fn set_grad(m: &mut Model, g: &[f32]) {
    m.w.grad = arr1(g).into_dyn();
}

fn assert_close(got: &ArrayD<f32>, want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "element {i}: got {g}, want {w}");
    }
}

#[test]
fn adamw_two_steps_by_hand() {
    // lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.1; θ = [1, −2].
    let mut m = model(&[1.0, -2.0]);
    let mut opt = AdamW::new(AdamWConfig {
        lr: 0.1,
        weight_decay: 0.1,
        ..AdamWConfig::default()
    });
    // Step 1, g = [0.5, −1]:
    //   decay: θ ← θ·(1 − 0.1·0.1) = [0.99, −1.98]
    //   m = 0.1·g = [0.05, −0.1]            v = 0.001·g² = [0.00025, 0.001]
    //   m̂ = m/0.1 = [0.5, −1]              v̂ = v/0.001 = [0.25, 1]   √v̂ = [0.5, 1]
    //   θ ← θ − 0.1·m̂/√v̂ = [0.99 − 0.1, −1.98 + 0.1] = [0.89, −1.88]
    set_grad(&mut m, &[0.5, -1.0]);
    opt.step(&mut m);
    assert_eq!(opt.t, 1);
    assert_close(&m.w.value, &[0.89, -1.88], 1e-6);
    // Step 2, g = [−0.5, 2]:
    //   decay: θ = [0.89·0.99, −1.88·0.99] = [0.8811, −1.8612]
    //   m = 0.9·[0.05, −0.1] + 0.1·[−0.5, 2] = [−0.005, 0.11]
    //   v = 0.999·[0.00025, 0.001] + 0.001·[0.25, 4] = [0.00049975, 0.004999]
    //   1 − β1² = 0.19, 1 − β2² = 0.001999
    //   m̂ = [−0.0263158, 0.5789474]         v̂ = [0.25, 2.5007504]  √v̂ = [0.5, 1.5813761]
    //   θ0 = 0.8811 + 0.1·0.0263158/0.5 = 0.8811 + 0.0052632 = 0.8863632
    //   θ1 = −1.8612 − 0.1·0.5789474/1.5813761 = −1.8612 − 0.0366104 = −1.8978104
    set_grad(&mut m, &[-0.5, 2.0]);
    opt.step(&mut m);
    assert_close(&m.w.value, &[0.886_363_2, -1.897_810_4], 2e-6);
    let state = opt.export_state();
    assert_eq!(state[0].0, "w.exp_avg");
    assert_eq!(state[1].0, "w.exp_avg_sq");
    assert_close(&state[0].1, &[-0.005, 0.11], 1e-7);
    // (1 − β2 is 0.00099998713 in f32, so v is off by ~1e-5 relative)
    assert_close(&state[1].1, &[0.000_499_75, 0.004_999], 1e-7);
}

#[test]
fn adamw_minimises_a_quadratic() {
    // L = ½ Σ a_i (θ_i − c_i)², gradient a_i (θ_i − c_i); curvatures span 1000×, which Adam's
    // per-coordinate scaling does not mind.
    let a = [0.01f32, 1.0, 10.0, 3.0];
    let c = [3.0f32, -1.0, 0.5, 2.0];
    let mut m = model(&[0.0; 4]);
    let mut opt = AdamW::new(AdamWConfig {
        weight_decay: 0.0,
        ..AdamWConfig::default()
    });
    let sched = CosineSchedule {
        base_lr: 0.1,
        min_lr: 1e-4,
        warmup_steps: 10,
        total_steps: 1000,
    };
    let loss = |w: &ArrayD<f32>| -> f32 {
        (0..4)
            .map(|i| 0.5 * a[i] * (w[i] - c[i]).powi(2))
            .sum::<f32>()
    };
    let start = loss(&m.w.value);
    for step in 0..1000 {
        let g: Vec<f32> = (0..4).map(|i| a[i] * (m.w.value[i] - c[i])).collect();
        set_grad(&mut m, &g);
        opt.lr = sched.lr_at(step);
        opt.step(&mut m);
    }
    let end = loss(&m.w.value);
    assert!(end < 1e-4 * start, "loss {start} -> {end}");
    assert_close(&m.w.value, &c, 1e-2);
}

#[test]
fn sgd_momentum_two_steps_by_hand() {
    // lr 0.1, μ 0.9, θ = [1, 2].
    let cfg = SgdConfig {
        lr: 0.1,
        momentum: 0.9,
        nesterov: false,
        weight_decay: 0.0,
    };
    let mut m = model(&[1.0, 2.0]);
    let mut opt = Sgd::new(cfg);
    // Step 1, g = [1, −2]: buf = g = [1, −2];  θ = [1 − 0.1, 2 + 0.2] = [0.9, 2.2]
    set_grad(&mut m, &[1.0, -2.0]);
    opt.step(&mut m);
    assert_close(&m.w.value, &[0.9, 2.2], 1e-6);
    // Step 2, g = [0.5, 0.5]: buf = 0.9·[1, −2] + [0.5, 0.5] = [1.4, −1.3]
    //   θ = [0.9 − 0.14, 2.2 + 0.13] = [0.76, 2.33]
    set_grad(&mut m, &[0.5, 0.5]);
    opt.step(&mut m);
    assert_close(&m.w.value, &[0.76, 2.33], 1e-6);
    assert_close(&opt.export_state()[0].1, &[1.4, -1.3], 1e-6);

    // Nesterov, same gradients: the step is g + μ·buf.
    let mut m = model(&[1.0, 2.0]);
    let mut opt = Sgd::new(SgdConfig {
        nesterov: true,
        ..cfg
    });
    // Step 1: buf = [1, −2];  d = [1 + 0.9, −2 − 1.8] = [1.9, −3.8];  θ = [0.81, 2.38]
    set_grad(&mut m, &[1.0, -2.0]);
    opt.step(&mut m);
    assert_close(&m.w.value, &[0.81, 2.38], 1e-6);
    // Step 2: buf = [1.4, −1.3];  d = [0.5 + 1.26, 0.5 − 1.17] = [1.76, −0.67]
    //   θ = [0.81 − 0.176, 2.38 + 0.067] = [0.634, 2.447]
    set_grad(&mut m, &[0.5, 0.5]);
    opt.step(&mut m);
    assert_close(&m.w.value, &[0.634, 2.447], 1e-6);
}

#[test]
fn sgd_weight_decay_is_added_to_the_gradient() {
    // lr 0.5, no momentum, λ 0.1, θ = [2], g = [1]: d = 1 + 0.1·2 = 1.2;  θ = 2 − 0.6 = 1.4
    let mut m = model(&[2.0]);
    let mut opt = Sgd::new(SgdConfig {
        lr: 0.5,
        momentum: 0.0,
        nesterov: false,
        weight_decay: 0.1,
    });
    set_grad(&mut m, &[1.0]);
    opt.step(&mut m);
    assert_close(&m.w.value, &[1.4], 1e-6);
}

#[test]
fn ema_after_two_updates() {
    // decay 0.5, θ_ema starts at θ = [2].
    let mut m = model(&[2.0]);
    let mut ema = Ema::new(&mut m, 0.5);
    // θ = 4: θ_ema = 0.5·2 + 0.5·4 = 3;   θ = 0: θ_ema = 0.5·3 + 0.5·0 = 1.5
    m.w.value.fill(4.0);
    ema.update(&mut m);
    assert_close(ema.get("w").unwrap(), &[3.0], 1e-6);
    m.w.value.fill(0.0);
    ema.update(&mut m);
    assert_close(ema.get("w").unwrap(), &[1.5], 1e-6);
    ema.copy_to(&mut m);
    assert_close(&m.w.value, &[1.5], 0.0);
    assert_eq!(ema.shadow()[0].0, "w");

    // With warm-up and decay 0.9999 the first decays are min(0.9999, (1+n)/(10+n)):
    //   n = 0: d = 0.1,  θ = 4: θ_ema = 0.1·2 + 0.9·4 = 3.8
    //   n = 1: d = 2/11, θ = 0: θ_ema = (2/11)·3.8 = 0.6909091
    let mut m = model(&[2.0]);
    let mut ema = Ema::new(&mut m, 0.9999).with_warmup();
    m.w.value.fill(4.0);
    ema.update(&mut m);
    assert_close(ema.get("w").unwrap(), &[3.8], 1e-6);
    m.w.value.fill(0.0);
    ema.update(&mut m);
    assert_close(ema.get("w").unwrap(), &[0.690_909_1], 1e-6);
    assert_eq!(ema.updates, 2);
}

#[test]
fn clipping_scales_to_max_norm_and_returns_the_norm_before() {
    // Gradients [3, 4] and [12]: ‖g‖ = √(9 + 16 + 144) = 13.
    let mut m = model(&[0.0, 0.0]);
    m.b = Some(Param::zeros(&[1]));
    let set = |m: &mut Model| {
        set_grad(m, &[3.0, 4.0]);
        m.b.as_mut().unwrap().grad.fill(12.0);
    };
    set(&mut m);
    // max_norm 20 > 13: untouched.
    assert_eq!(clip_grad_norm(&mut m, 20.0), 13.0);
    assert_close(&m.w.grad, &[3.0, 4.0], 0.0);
    // max_norm 6.5: factor 6.5/(13 + 1e-6) ≈ 0.5 → [1.5, 2] and [6]; the new norm is 6.5.
    let norm = clip_grad_norm(&mut m, 6.5);
    assert_eq!(norm, 13.0);
    assert_close(&m.w.grad, &[1.5, 2.0], 1e-6);
    assert_close(&m.b.as_ref().unwrap().grad, &[6.0], 1e-6);
    assert!((minisora::optim::grad_norm(&mut m) - 6.5).abs() < 1e-5);
}

#[test]
fn schedule_warmup_and_cosine() {
    let s = CosineSchedule {
        base_lr: 1e-3,
        min_lr: 1e-5,
        warmup_steps: 10,
        total_steps: 110,
    };
    let close = |a: f32, b: f32| assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    close(s.lr_at(0), 1e-4); // warm-up start: 1e-3·1/10
    close(s.lr_at(4), 5e-4); // warm-up middle: 1e-3·5/10
    close(s.lr_at(9), 1e-3); // warm-up end: 1e-3·10/10
    close(s.lr_at(10), 1e-3); // cosine start, p = 0: full rate
    close(s.lr_at(60), 5.05e-4); // p = 0.5: 1e-5 + 0.99e-3·½(1 + cos π/2) = 5.05e-4
    close(s.lr_at(35), 1e-5 + 0.99e-3 * 0.5 * (1.0 + 0.5f32.sqrt())); // p = ¼: cos π/4 = √½
    close(s.lr_at(110), 1e-5); // end: the floor
    close(s.lr_at(10_000), 1e-5); // and it stays there
}

#[test]
#[should_panic(expected = "parameter walk changed")]
fn adamw_panics_when_the_walk_changes() {
    let mut m = model(&[1.0, 2.0]);
    m.b = Some(Param::zeros(&[1]));
    let mut opt = AdamW::new(AdamWConfig::default());
    opt.step(&mut m);
    m.b = None;
    opt.step(&mut m);
}

#[test]
fn adamw_state_round_trips_by_name_and_rejects_a_mismatch() {
    let mut a = model(&[1.0, -1.0, 0.5]);
    a.b = Some(Param::zeros(&[2]));
    let mut b = Model {
        w: a.w.clone(),
        b: a.b.clone(),
    };
    let mut opt_a = AdamW::new(AdamWConfig::default());
    let grads = |m: &mut Model, k: f32| {
        m.w.grad = ArrayD::from_shape_fn(IxDyn(&[3]), |i| k * (i[0] as f32 - 1.0));
        m.b.as_mut().unwrap().grad.fill(k * 0.3);
    };
    grads(&mut a, 1.0);
    opt_a.step(&mut a);
    grads(&mut b, 1.0);
    let mut opt_b = AdamW::new(AdamWConfig::default());
    opt_b.step(&mut b);
    // Restore b's optimizer from a's exported state and continue both: same bits.
    let mut opt_c = AdamW::new(AdamWConfig::default());
    opt_c
        .import_state(&mut b, opt_a.t, opt_a.export_state())
        .unwrap();
    for k in [2.0, -0.5] {
        grads(&mut a, k);
        grads(&mut b, k);
        opt_a.step(&mut a);
        opt_c.step(&mut b);
    }
    assert_eq!(a.w.value, b.w.value);
    assert_eq!(a.b.as_ref().unwrap().value, b.b.as_ref().unwrap().value);

    let mut wrong = opt_a.export_state();
    wrong[0].0 = "v.exp_avg".into();
    let err = AdamW::new(AdamWConfig::default())
        .import_state(&mut a, 3, wrong)
        .unwrap_err();
    assert!(err.problem.contains("w.exp_avg"), "{err}");
}

#[test]
fn updates_are_bit_identical_on_one_and_two_threads() {
    // A parameter spanning several parallel chunks.
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let n = 100_000;
            let mut m = Model {
                w: Param::new(ArrayD::from_shape_fn(IxDyn(&[n]), |i| {
                    (i[0] as f32 * 0.37).sin()
                })),
                b: None,
            };
            let mut opt = AdamW::new(AdamWConfig::default());
            let mut ema = Ema::new(&mut m, 0.99);
            let mut norms = Vec::new();
            for step in 0..3 {
                m.w.grad = ArrayD::from_shape_fn(IxDyn(&[n]), |i| {
                    ((i[0] * (step + 3)) as f32 * 0.11).cos()
                });
                norms.push(clip_grad_norm(&mut m, 1.0));
                opt.step(&mut m);
                ema.update(&mut m);
            }
            (m.w.value, ema.shadow()[0].1.clone(), norms)
        })
    };
    assert_eq!(run(1), run(2));
}
