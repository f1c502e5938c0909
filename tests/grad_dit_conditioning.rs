//! Gradients of the three conditioning mechanisms besides adaLN-Zero (DiT paper, Figure 5):
//! the plain ViT block with and without cross-attention (tokens, context and every
//! parameter), both new final layers, and the whole DiT in each of the three variants, with
//! and without a learned variance, on the input and every parameter. (The adaLN block is
//! checked with the adaLN-Zero one in `grad_dit.rs`.)
//!
//! As in `grad_dit.rs`, every all-zero tensor (biases, the final Linear) is first given random
//! values ([`randomise_zeros`](support::randomise_zeros)), so no gradient is zero for want of a signal.

mod support;

use minisora::diffusion::{Condition, Denoiser, TrainableDenoiser};
use minisora::dit::{Conditioning, DiT, DiTConfig, FinalLayer, PlainFinalLayer, ViTBlock};
use minisora::gradcheck::{check, random_input, GradCheck, Report};
use minisora::param::Parameters;
use minisora::tensor::{init, rng};
use ndarray::{Array3, ArrayD};
use proptest::prelude::*;
use support::{check_x_c, four, randomise_zeros, seeded, three, tokens, two};

const CASES: u32 = 24;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The ViT block with respect to its tokens, the context (with cross-attention) and
    /// every parameter, the LayerNorms' affine ones included.
    #[test]
    fn vit_block_gradients_match_finite_differences(
        b in 1usize..3,
        t in 1usize..5,
        s in 1usize..4,
        heads in 1usize..4,
        per in 2usize..5,
        ratio in 1usize..3,
        cross in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let d = heads * per;
        // A LayerNorm over 2 features outputs ±1 whatever its input: a step function, not
        // something a finite difference can check.
        prop_assume!(d >= 3);
        let mut r = rng(seed ^ 0x7b10c);
        let mut block = ViTBlock::new(d, heads, ratio * d, cross, &mut r);
        randomise_zeros(&mut block, &mut r);
        // LayerNorm weights start at 1: move them off it, so a gradient using w = 1 shows
        block.visit("", &mut |name, p| {
            if name.contains("norm") && name.ends_with("weight") {
                p.value = init::uniform(p.shape(), 0.5, &mut r) + 1.0;
            }
        });
        let mut inputs = vec![tokens(&[b, t, d], &mut r)];
        if cross {
            inputs.push(random_input(&[b, s, d], &mut r));
        }
        let report = check(
            &mut block,
            &inputs,
            |m, xs| {
                let e = xs.get(1).map(three);
                m.forward_infer(&three(&xs[0]), e.as_ref()).into_dyn()
            },
            |m, xs, dy| {
                let e = xs.get(1).map(three);
                let (y, cache) = m.forward(&three(&xs[0]), e.as_ref());
                assert_eq!(y, m.forward_infer(&three(&xs[0]), e.as_ref()));
                let mut de = e.as_ref().map(|e| Array3::zeros(e.raw_dim()));
                let dx = m.backward(&cache, &three(dy), de.as_mut());
                let mut grads = vec![dx.into_dyn()];
                grads.extend(de.map(|de| de.into_dyn()));
                grads
            },
            // The ramp keeps the rows of x spread, but LN_c and LN_2 see x plus a branch, and
            // with D = 3 such a row can be nearly flat: the loss then curves at the scale of
            // the default step. Measured on such a case (CI seed, 300 cases): errors 0.67,
            // 0.026, 0.002, 0.0003 at steps 3e-2, 1e-2, 3e-3, 1e-3 — the stencil's truncation.
            &GradCheck { step: 3e-3, ..seeded(seed) },
        );
        prop_assert!(report.passed, "b {b} t {t} s {s} heads {heads} d {d} cross {cross}: {report:?}");
    }

    /// The plain final layer (LayerNorm with affine, Linear) and adaLN's final layer (its
    /// Xavier modulation) with respect to their tokens, `c` and every parameter.
    #[test]
    fn final_layer_gradients_match_finite_differences(
        b in 1usize..3,
        t in 1usize..5,
        d in 3usize..10,
        p in 1usize..3,
        out in 1usize..4,
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed ^ 0xf1a2);
        let mut plain = PlainFinalLayer::new(d, p, out);
        randomise_zeros(&mut plain, &mut r);
        plain.norm_final.weight.as_mut().unwrap().value = init::uniform(&[d], 0.5, &mut r) + 1.0;
        let x = tokens(&[b * t, d], &mut r);
        let report = check(
            &mut plain,
            std::slice::from_ref(&x),
            |m, xs| m.forward_infer(&two(&xs[0])).into_dyn(),
            |m, xs, dy| {
                let (_, cache) = m.forward(&two(&xs[0]));
                vec![m.backward(&cache, &two(dy)).into_dyn()]
            },
            &seeded(seed),
        );
        prop_assert!(report.passed, "plain d {d} p {p} out {out}: {report:?}");

        let mut adaln = FinalLayer::adaln(d, p, out, &mut r);
        randomise_zeros(&mut adaln, &mut r);
        let c = random_input(&[b, d], &mut r);
        let report = check_x_c!(&mut adaln, x, c, two, &seeded(seed));
        prop_assert!(report.passed, "adaLN d {d} p {p} out {out}: {report:?}");
    }
}

/// A DiT of depth 2 on an `input`² latent of 2 channels, 3 classes.
fn tiny(
    conditioning: Conditioning,
    hidden: usize,
    heads: usize,
    (input, patch): (usize, usize),
    learn_sigma: bool,
) -> DiTConfig {
    DiTConfig {
        input_size: input,
        patch_size: patch,
        in_channels: 2,
        hidden_size: hidden,
        depth: 2,
        num_heads: heads,
        mlp_ratio: 2.0,
        class_dropout_prob: 0.1,
        num_classes: 3,
        learn_sigma,
        conditioning,
    }
}

/// The whole-network checker of `grad_dit.rs`: a finer step (the loss curves like $1/|W|^2$
/// through the LayerNorms) and 4 sampled coordinates per tensor besides the directional
/// check through all of them.
fn model_check(seed: u64) -> GradCheck {
    GradCheck {
        seed,
        step: 1e-3,
        max_coords: 4,
        ..GradCheck::default()
    }
}

/// Runs the whole-DiT check through `forward_train` / `backward_train`, also asserting that
/// the caching forward agrees with `predict`. `tamper` may spoil the gradients afterwards.
fn check_dit(
    net: &mut DiT,
    x: ArrayD<f32>,
    t: &[usize],
    y: &[usize],
    cfg: &GradCheck,
    tamper: fn(&mut DiT),
) -> Report {
    check(
        net,
        &[x],
        |m, xs| m.predict(&xs[0], t, &Condition::labels(y)),
        |m, xs, dy| {
            let (out, cache) = m.forward_train(&xs[0], t, &Condition::labels(y));
            assert_eq!(out, m.predict(&xs[0], t, &Condition::labels(y)));
            let dx = m.backward(&cache, four(dy).view());
            tamper(m);
            vec![dx.into_dyn()]
        },
        cfg,
    )
}

/// The three mechanisms built besides adaLN-Zero.
const NEW: [Conditioning; 3] = [
    Conditioning::AdaLn,
    Conditioning::CrossAttention,
    Conditioning::InContext,
];

/// A randomised tiny DiT, its input, timesteps and labels (the last sample's the null label).
fn case(config: DiTConfig, b: usize, seed: u64) -> (DiT, ArrayD<f32>, Vec<usize>, Vec<usize>) {
    let mut r = rng(seed ^ 0xc0d);
    let mut net = DiT::new(config.clone(), &mut r).unwrap();
    randomise_zeros(&mut net, &mut r);
    // The embedders' N(0, 0.02²) weights make e_t and e_y small next to the biases they
    // meet (the cross-attention's kv bias, the modulation's), so their gradients would sit
    // near the checker's rounding floor: PyTorch's default ±1/√fan_in for the timestep MLP's
    // second Linear and N(0, 1) for the label table give them a signal. (Scaling up `mlp.0`
    // too makes the step through all 256·D of its weights, which moves every pre-activation
    // by about √128·h, too large for in-context's normalised e_t token: errors 0.05, 1.3e-3,
    // 9e-5 at steps 3e-3, 1e-3, 3e-4 on one case.)
    let w2 = &mut net.t_embedder.mlp_2.weight;
    w2.value = init::torch_default(w2.shape(), w2.shape()[1], &mut r);
    let table = &mut net.y_embedder.embedding_table.weight;
    table.value = init::normal(table.shape(), 1.0, &mut r);
    let i = config.input_size;
    let x = random_input(&[b, 2, i, i], &mut r);
    let t: Vec<usize> = (0..b)
        .map(|k| (37 + 400 * k + seed as usize) % 1000)
        .collect();
    let y: Vec<usize> = (0..b).map(|k| if k + 1 == b { 3 } else { k % 3 }).collect();
    (net, x, t, y)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]
    /// The whole DiT in each new variant: the latent input and every parameter.
    #[test]
    fn dit_gradients_match_finite_differences_in_every_variant(
        conditioning in prop::sample::select(NEW.to_vec()),
        b in 1usize..3,
        hidden in prop::sample::select(vec![8usize, 16, 24]),
        heads in prop::sample::select(vec![1usize, 2, 4]),
        shape in prop::sample::select(vec![(4usize, 2usize), (4, 4), (8, 4), (6, 2)]),
        learn_sigma in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let config = tiny(conditioning, hidden, heads, shape, learn_sigma);
        let (mut net, x, t, y) = case(config, b, seed);
        let report = check_dit(&mut net, x, &t, &y, &model_check(seed), |_| {});
        prop_assert!(
            report.passed,
            "{conditioning} hidden {hidden} heads {heads} (input, patch) {shape:?} sigma {learn_sigma}: {report:?}"
        );
    }
}

/// The check sees a gradient 10 % off in the timestep embedder, whose only path to the output
/// is the conditioning mechanism (the modulation, the cross-attention's keys and values, or
/// the appended tokens): a mechanism that lost part of ∂L/∂e_t would fail the same way.
/// (At the whole model's step of 1e-3 the directional check's rounding floor is near the
/// size of these small gradients, so a 3 % error there is not always seen.)
#[test]
fn the_whole_dit_check_catches_a_small_error_in_each_variant() {
    for conditioning in NEW {
        let mut caught = 0;
        for seed in 0..4u64 {
            let (mut net, x, t, y) = case(tiny(conditioning, 16, 2, (4, 2), true), 1, seed);
            let report = check_dit(&mut net, x, &t, &y, &model_check(seed), |m| {
                m.t_embedder.mlp_2.weight.grad *= 1.1;
            });
            if !report.passed {
                caught += 1;
            }
        }
        assert_eq!(
            caught, 4,
            "{conditioning}: a 10 % error in t_embedder went unnoticed"
        );
    }
}
