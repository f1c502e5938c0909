//! The U-Net's gradients: ADM's `ResBlock` (scale-shift and additive, with and without the skip
//! conv) on its input, its embedding input and every parameter; the `AttentionBlock` (one and
//! two heads) on its input and every parameter; the down and up paths; and the whole U-Net on a
//! tiny config (with and without classes) with respect to every parameter, through
//! `forward_train` / `backward_train`.
//!
//! Zero-initialised layers (ResBlock `out_layers.3`, attention `proj_out`, the U-Net's `out.2`)
//! make the gradient of everything *before* them exactly zero at initialisation, and a check
//! of zeros against zeros passes whatever backward does. So every test first gives those
//! weights random values, and the GroupNorm affines random values too.

mod support;

use minisora::diffusion::Condition;
use minisora::gradcheck::{check, random_input, GradCheck, Report};
use minisora::param::Parameters;
use minisora::tensor::{init, rng, Rng};
use minisora::unet::{AttentionBlock, ResBlock};
use ndarray::{Array4, ArrayD};
use proptest::prelude::*;
use support::{check_x_c, four, spread_input, two};

/// Gives random values to what starts at zero or one: GroupNorm affines (β ~ N(0, 1), γ of
/// random sign with |γ| in [0.5, 1.5], so no norm silences its input) and the zero-initialised
/// convs (uniform ±1/√fan_in, PyTorch's default), so every gradient has something to check.
fn randomise(model: &mut impl Parameters, r: &mut Rng) {
    model.visit("", &mut |name, p| {
        let is_norm =
            name.contains("norm") || name.contains("layers.0") || name.starts_with("out.0");
        if is_norm && !name.contains("proj_out") {
            p.value = random_input(p.shape(), r);
            if name.ends_with("weight") {
                p.value
                    .mapv_inplace(|v| v.signum() * (0.5 + v.abs().min(1.0)));
            }
        } else if p.value.iter().all(|&v| v == 0.0) {
            let fan_in: usize = if p.shape().len() > 1 {
                p.shape()[1..].iter().product()
            } else {
                p.len()
            };
            p.value = init::torch_default(p.shape(), fan_in.max(1), r);
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20))]
    #[test]
    fn resblock_gradients_match_finite_differences(
        b in 1usize..3,
        groups in 1usize..3,
        per_in in 1usize..4,
        per_out in 1usize..4,
        emb_dim in 1usize..6,
        h in 2usize..6,
        w in 2usize..6,
        scale_shift in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let (c_in, c_out) = (groups * per_in, groups * per_out);
        let mut r = rng(seed ^ 0x5eed);
        let mut block = ResBlock::new(c_in, emb_dim, c_out, groups, scale_shift, &mut r);
        randomise(&mut block, &mut r);
        // out_layers.0 makes the block nearly invariant to in_layers.2's weight scale, so the
        // loss curves like 1/|W|² in it, and at PyTorch's initialisation the checker's step
        // 1e-2 is not small against it (the same truncation error as the VAE's ResnetBlock,
        // see grad_vae_blocks.rs). Four times larger weights help, but a norm slice of one
        // channel still curves sharply: at step 1e-2, 1 of ~275 random cases failed (c_out 2,
        // 2 groups; directional error 5e-2 on in_layers.2.weight, 1.7e-3 at 5e-3 on another
        // seed — shrinking with the step, so truncation); at step 2.5e-3 300 of 300 passed.
        block.in_conv.weight.value *= 4.0;
        let x = spread_input([b, c_in, h, w], groups, &mut r);
        let emb = random_input(&[b, emb_dim], &mut r);
        let report = check_x_c!(&mut block, x, emb, four, &GradCheck { seed, step: 2.5e-3, ..GradCheck::default() });
        prop_assert!(
            report.passed,
            "c_in {c_in} c_out {c_out} scale_shift {scale_shift}: {report:?}"
        );
    }

    #[test]
    fn attention_block_gradients_match_finite_differences(
        b in 1usize..3,
        groups in 1usize..3,
        heads in 1usize..3,
        per in 1usize..3,
        h in 1usize..5,
        w in 2usize..5,
        seed in any::<u64>(),
    ) {
        let c = groups * heads * per;
        let mut r = rng(seed ^ 0xa77);
        let mut block = AttentionBlock::new(c, heads, groups, &mut r);
        randomise(&mut block, &mut r);
        let x = spread_input([b, c, h, w], groups, &mut r);
        let report = check_one(&mut block, x, seed, |m, x| m.forward_infer(x), |m, x, dy| {
            let (_, cache) = m.forward(x);
            m.backward(&cache, dy)
        });
        prop_assert!(report.passed, "c {c} heads {heads}: {report:?}");
    }
}

/// Gradient check of a one-input block with the default tolerances.
fn check_one<M: Parameters>(
    block: &mut M,
    x: ArrayD<f32>,
    seed: u64,
    infer: impl Fn(&M, &Array4<f32>) -> Array4<f32>,
    grad: impl Fn(&mut M, &Array4<f32>, &Array4<f32>) -> Array4<f32>,
) -> Report {
    check(
        block,
        &[x],
        |m, xs| infer(m, &four(&xs[0])).into_dyn(),
        |m, xs, dy| vec![grad(m, &four(&xs[0]), &four(dy)).into_dyn()],
        &GradCheck {
            seed,
            ..GradCheck::default()
        },
    )
}

#[test]
fn resblock_names_follow_adm_and_a_fresh_block_is_its_skip() {
    let mut r = rng(1);
    let mut same = ResBlock::new(4, 6, 4, 2, true, &mut r);
    let names: Vec<String> = same.param_shapes().into_iter().map(|(n, _)| n).collect();
    let want: Vec<String> = [
        "in_layers.0",
        "in_layers.2",
        "emb_layers.1",
        "out_layers.0",
        "out_layers.3",
    ]
    .iter()
    .flat_map(|l| [format!("{l}.weight"), format!("{l}.bias")])
    .collect();
    assert_eq!(names, want);
    assert!(same
        .param_shapes()
        .contains(&("emb_layers.1.weight".into(), vec![8, 6])));
    let x = four(&random_input(&[2, 4, 3, 5], &mut r));
    let emb = two(&random_input(&[2, 6], &mut r));
    // out_layers.3 is zero: the block is the identity at initialisation
    assert_eq!(same.forward_infer(&x, &emb), x);

    let mut wider = ResBlock::new(4, 6, 8, 2, false, &mut r);
    let shapes = wider.param_shapes();
    assert!(shapes.contains(&("skip_connection.weight".into(), vec![8, 4, 1, 1])));
    assert!(shapes.contains(&("emb_layers.1.weight".into(), vec![8, 6])));
    let (y, _) = wider.forward(&x, &emb);
    assert_eq!(y.shape(), &[2, 8, 3, 5]);
    assert_eq!(y, wider.forward_infer(&x, &emb));
    let skip = wider.skip_connection.as_ref().unwrap().forward_infer(&x);
    assert_eq!(y, skip);
}

#[test]
fn scale_shift_scales_and_shifts_the_normed_features() {
    // y = x + conv₀(silu(GN(h)·(1 + s) + b)), evaluated layer by layer from the formula.
    let mut r = rng(7);
    let mut block = ResBlock::new(2, 3, 2, 1, true, &mut r);
    randomise(&mut block, &mut r);
    let x = four(&random_input(&[1, 2, 2, 2], &mut r));
    let emb = two(&random_input(&[1, 3], &mut r));
    let h = block
        .in_conv
        .forward_infer(&minisora::nn::Silu.forward_infer(&block.in_norm.forward_infer(&x)));
    let e = block
        .emb_linear
        .forward_infer(&minisora::nn::Silu.forward_infer(&emb));
    let mut g = block.out_norm.forward_infer(&h);
    for c in 0..2 {
        g.slice_mut(ndarray::s![0, c, .., ..])
            .mapv_inplace(|v| v * (1.0 + e[[0, c]]) + e[[0, 2 + c]]);
    }
    let want = &block
        .out_conv
        .forward_infer(&minisora::nn::Silu.forward_infer(&g))
        + &x;
    let got = block.forward_infer(&x, &emb);
    for (a, b) in got.iter().zip(want.iter()) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn attention_block_names_follow_adm_and_a_fresh_block_is_the_identity() {
    let mut r = rng(3);
    let mut block = AttentionBlock::new(8, 2, 4, &mut r);
    let shapes = block.param_shapes();
    let names: Vec<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "norm.weight",
            "norm.bias",
            "qkv.weight",
            "qkv.bias",
            "proj_out.weight",
            "proj_out.bias"
        ]
    );
    assert!(shapes.contains(&("qkv.weight".into(), vec![24, 8, 1, 1])));
    let x = four(&random_input(&[2, 8, 3, 2], &mut r));
    assert_eq!(block.forward_infer(&x), x);
    randomise(&mut block, &mut r);
    let (y, _) = block.forward(&x);
    assert_eq!(y, block.forward_infer(&x));
}

#[test]
fn attention_heads_read_qkv_in_adm_order() {
    // A naive f64 loop over ADM's layout: head j's q, k, v are channels 3dj.., 3dj+d..,
    // 3dj+2d.. of the qkv conv; its output goes to channels dj..dj+d.
    let mut r = rng(4);
    let (bn, c, heads, hh, ww) = (2, 4, 2, 2, 3);
    let d = c / heads;
    let mut block = AttentionBlock::new(c, heads, 2, &mut r);
    randomise(&mut block, &mut r);
    let x = four(&random_input(&[bn, c, hh, ww], &mut r));
    let qkv = block.qkv.forward_infer(&block.norm.forward_infer(&x));
    let t = hh * ww;
    let at = |b: usize, ch: usize, n: usize| qkv[[b, ch, n / ww, n % ww]] as f64;
    let mut o = Array4::<f64>::zeros((bn, c, hh, ww));
    for b in 0..bn {
        for j in 0..heads {
            let base = 3 * d * j;
            for n in 0..t {
                let s: Vec<f64> = (0..t)
                    .map(|m| {
                        (0..d)
                            .map(|i| at(b, base + i, n) * at(b, base + d + i, m))
                            .sum::<f64>()
                            / (d as f64).sqrt()
                    })
                    .collect();
                let max = s.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = s.iter().map(|a| (a - max).exp()).collect();
                let z: f64 = e.iter().sum();
                for i in 0..d {
                    o[[b, d * j + i, n / ww, n % ww]] =
                        (0..t).map(|m| e[m] / z * at(b, base + 2 * d + i, m)).sum();
                }
            }
        }
    }
    let o32 = o.mapv(|v| v as f32);
    let want = &block.proj_out.forward_infer(&o32) + &x;
    let got = block.forward_infer(&x);
    for (a, b) in got.iter().zip(want.iter()) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

// ---------------------------------------------------------------------------------------------
// The whole U-Net

use minisora::diffusion::{Denoiser, TrainableDenoiser};
use minisora::unet::{UNet, UNetConfig};

/// The smallest interesting U-Net: widths m and 2m, two groups, one ResBlock per level,
/// attention at ds 2 (and in the middle), so it has a Downsample, an Upsample, skip
/// concatenations and every kind of block.
fn tiny(
    m: usize,
    heads: usize,
    classes: Option<usize>,
    scale_shift: bool,
    learn_var: bool,
) -> UNetConfig {
    UNetConfig {
        in_channels: 2,
        out_channels: if learn_var { 4 } else { 2 },
        model_channels: m,
        channel_mult: vec![1, 2],
        num_res_blocks: 1,
        attention_ds: vec![2],
        num_heads: heads,
        groups: 2,
        num_classes: classes,
        scale_shift,
    }
}

/// The checker with the default tolerances but a finer step for the whole network.
///
/// Through a dozen GroupNorms the loss curves like $1/|W|^2$ in the weight of every conv that
/// feeds a norm, and a step of 1e-2 on each of a tensor's hundreds of coordinates (the
/// directional check moves them all at once) is no longer small: the VAE's encoder and decoder
/// failed almost every case at 1e-2 and none at 1e-3, the errors shrinking as the step's
/// square — truncation, not a wrong gradient (see `vae_model.rs`). The same holds here.
/// A U-Net has 60–90 tensors: 4 sampled coordinates each, besides the directional check
/// through all of them (which sees an error anywhere in the tensor, see the test below), keep
/// the file fast.
fn model_check(seed: u64) -> GradCheck {
    GradCheck {
        seed,
        step: 1e-3,
        max_coords: 4,
        ..GradCheck::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// Every parameter and the input, through `forward_train` / `backward_train` (the input's
    /// gradient through the inherent `backward`, which the trait's calls).
    #[test]
    fn unet_gradients_match_finite_differences(
        b in 1usize..3,
        m in prop::sample::select(vec![4usize, 6, 8]),
        heads in 1usize..3,
        side in prop::sample::select(vec![4usize, 8]),
        classes in prop::option::of(1usize..4),
        scale_shift in any::<bool>(),
        learn_var in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let config = tiny(m, heads, classes, scale_shift, learn_var);
        let mut r = rng(seed ^ 0x0e7);
        let mut net = UNet::new(config, &mut r).unwrap();
        randomise(&mut net, &mut r);
        let b = if side == 8 { 1 } else { b }; // one 8×8 sample costs as much as four 4×4
        let x = random_input(&[b, 2, side, side], &mut r);
        let t: Vec<usize> = (0..b).map(|i| 37 + 400 * i).collect();
        // the last sample uses the null label, the others a class
        let y: Option<Vec<usize>> = classes.map(|n| (0..b).map(|i| if i + 1 == b { n } else { i % n }).collect());
        let report = check(
            &mut net,
            &[x],
            |m, xs| m.predict(&xs[0], &t, &y.as_deref().map_or(Condition::None, Condition::labels)),
            |m, xs, dy| {
                let (out, cache) = m.forward_train(&xs[0], &t, &y.as_deref().map_or(Condition::None, Condition::labels));
                assert_eq!(out, m.predict(&xs[0], &t, &y.as_deref().map_or(Condition::None, Condition::labels)));
                let dx = m.backward(&cache, &four(dy));
                // the trait's backward adds the same gradients a second time
                let mut once = Vec::new();
                m.visit("", &mut |_, p| once.push(p.grad.clone()));
                m.backward_train(&cache, dy);
                let mut k = 0;
                m.visit("", &mut |name, p| {
                    let want = &once[k] * 2.0;
                    assert!(
                        p.grad.iter().zip(want.iter()).all(|(a, b)| (a - b).abs() <= 1e-5 * b.abs().max(1.0)),
                        "{name}: backward_train differs from backward"
                    );
                    p.grad.assign(&once[k]);
                    k += 1;
                });
                vec![dx.into_dyn()]
            },
            &model_check(seed),
        );
        prop_assert!(report.passed, "m {m} heads {heads} side {side} classes {classes:?}: {report:?}");
    }
}

/// The finer step still catches a gradient 3 % off in the layer farthest from the output.
#[test]
fn the_whole_unet_check_catches_a_small_error() {
    let mut caught = 0;
    for seed in 0..4u64 {
        let mut r = rng(seed);
        let mut net = UNet::new(tiny(4, 1, Some(3), true, false), &mut r).unwrap();
        randomise(&mut net, &mut r);
        let x = random_input(&[1, 2, 4, 4], &mut r);
        let (t, y) = (vec![500], vec![1]);
        let report = check(
            &mut net,
            &[x],
            |m, xs| m.predict(&xs[0], &t, &Condition::labels(&y)),
            |m, xs, dy| {
                let (_, cache) = m.forward(&four(&xs[0]), &t, Some(&y));
                let dx = m.backward(&cache, &four(dy));
                if let minisora::unet::Layer::Conv(c) = &mut m.input_blocks[0].layers[0] {
                    c.weight.grad *= 1.03;
                }
                vec![dx.into_dyn()]
            },
            &model_check(seed),
        );
        if !report.passed {
            assert_eq!(
                report.worst_direction, "input_blocks.0.0.weight",
                "{report:?}"
            );
            caught += 1;
        }
    }
    assert!(
        caught >= 3,
        "a 3 % error was caught in only {caught} of 4 cases"
    );
}
