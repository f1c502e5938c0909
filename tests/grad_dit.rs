//! DiT's gradients: the adaLN-Zero block (tokens, conditioning and every parameter), the
//! final layer, the timestep and label embedders, the patch embedding and `unpatchify`, and
//! the whole DiT on tiny configs (with and without a learned variance) through
//! `forward_train` / `backward_train`.
//!
//! adaLN-Zero starts every modulation Linear and the final Linear at zero, which makes the
//! gradients of everything before them exactly zero (or the gate's gradient the only one), and
//! a check of zeros against zeros passes whatever backward does. So every test first gives
//! each all-zero tensor random values ([`randomise_zeros`](support::randomise_zeros)).

mod support;

use minisora::diffusion::Condition;
use minisora::diffusion::{Denoiser, TrainableDenoiser};
use minisora::dit::{
    patchify, unpatchify, ChannelOrder, DiT, DiTBlock, DiTConfig, FinalLayer, LabelEmbedder,
    PatchEmbed, TimestepEmbedder,
};
use minisora::gradcheck::{check, random_input, GradCheck, Report};
use minisora::param::{Param, Parameters};
use minisora::tensor::{init, rng};
use ndarray::ArrayD;
use proptest::prelude::*;
use support::{check_x_c, four, randomise_zeros, seeded, tokens, two};

const CASES: u32 = 24;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The block — adaLN-Zero (six modulation vectors, gated residuals) or adaLN (four, plain
    /// residuals) — with respect to its tokens, the conditioning `c` and every parameter.
    #[test]
    fn dit_block_gradients_match_finite_differences(
        b in 1usize..3,
        t in 1usize..5,
        heads in 1usize..4,
        per in 2usize..5,
        ratio in 1usize..3,
        gated in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let d = heads * per;
        let mut r = rng(seed ^ 0xb10c);
        let mut block = if gated {
            DiTBlock::new(d, heads, ratio * d, &mut r)
        } else {
            DiTBlock::adaln(d, heads, ratio * d, &mut r)
        };
        prop_assert_eq!(block.gated(), gated);
        randomise_zeros(&mut block, &mut r);
        let x = tokens(&[b * t, d], &mut r);
        let c = random_input(&[b, d], &mut r);
        let report = check_x_c!(&mut block, x, c, two, &seeded(seed));
        prop_assert!(report.passed, "b {b} t {t} heads {heads} d {d} gated {gated}: {report:?}");
    }

    /// The final layer with respect to its tokens, `c` and its four parameters.
    #[test]
    fn final_layer_gradients_match_finite_differences(
        b in 1usize..3,
        t in 1usize..5,
        d in 3usize..10,
        p in 1usize..3,
        out in 1usize..4,
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed ^ 0xf1a1);
        let mut layer = FinalLayer::new(d, p, out);
        randomise_zeros(&mut layer, &mut r);
        let x = tokens(&[b * t, d], &mut r);
        let c = random_input(&[b, d], &mut r);
        let report = check_x_c!(&mut layer, x, c, two, &seeded(seed));
        prop_assert!(report.passed, "d {d} p {p} out {out}: {report:?}");
    }

    /// The timestep MLP (weights scaled up from N(0, 0.02²) so SiLU's curve matters) and the
    /// label table, with repeated labels and the null label.
    #[test]
    fn embedder_gradients_match_finite_differences(
        b in 1usize..5,
        d in 1usize..9,
        classes in 1usize..4,
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed ^ 0xe3b);
        let mut te = TimestepEmbedder::new(d, &mut r);
        // PyTorch's default uniform ±1/√fan_in for every tensor: pre-activations of order 1,
        // where SiLU curves. (At N(0, 0.02²) the MLP is nearly linear; scaled up 20× many
        // units sit deep in SiLU's flat tail, where their gradients are too small for f32.)
        te.visit("", &mut |_, p| {
            let fan_in = if p.shape().len() > 1 { p.shape()[1] } else { p.len() };
            p.value = init::torch_default(p.shape(), fan_in, &mut r);
        });
        let t: Vec<usize> = (0..b).map(|i| (i * 397 + seed as usize) % 1000).collect();
        let report = check(
            &mut te,
            &[],
            |m, _| m.forward_infer(&t).into_dyn(),
            |m, _, dy| {
                let (_, cache) = m.forward(&t);
                m.backward(&cache, &two(dy));
                vec![]
            },
            // The directional check moves all 256·D weights of mlp.0 at once, and the 256
            // sinusoids have squared norm 128, so a step h moves each pre-activation by about
            // √128·h ≈ 11h: at h = 1e-2 that is no longer small against SiLU's curve (errors
            // measured on one failing case: 8e-2, 1.5e-3, 4e-5 at steps 3e-2, 1e-2, 3e-3 —
            // falling as h⁴, the stencil's truncation). At 1e-3 the move is about 0.01.
            &GradCheck { step: 1e-3, ..seeded(seed) },
        );
        prop_assert!(report.passed, "timestep embedder d {d}: {report:?}");

        let mut le = LabelEmbedder::new(classes, d, &mut r);
        let y: Vec<usize> = (0..b).map(|i| (i * 7 + seed as usize) % (classes + 1)).collect();
        let report = check(
            &mut le,
            &[],
            |m, _| m.forward_infer(Some(&y), y.len()).into_dyn(),
            |m, _, dy| {
                let (_, cache) = m.forward(Some(&y), y.len());
                m.backward(&cache, &two(dy));
                vec![]
            },
            &seeded(seed),
        );
        prop_assert!(report.passed, "label embedder {y:?}: {report:?}");
    }

    /// The patch embedding (input and both parameters), and `unpatchify` on its own.
    #[test]
    fn patch_gradients_match_finite_differences(
        b in 1usize..3,
        c in 1usize..4,
        p in 1usize..4,
        gh in 1usize..3,
        gw in 1usize..3,
        d in 1usize..6,
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed ^ 0x9a7c);
        let mut embed = PatchEmbed::new(c, d, p, &mut r);
        randomise_zeros(&mut embed, &mut r);
        let x = random_input(&[b, c, gh * p, gw * p], &mut r);
        let report = check(
            &mut embed,
            &[x],
            |m, xs| m.forward_infer(four(&xs[0]).view()).into_dyn(),
            |m, xs, dy| {
                let (_, cache) = m.forward(four(&xs[0]).view());
                vec![m.backward(&cache, &two(dy)).into_dyn()]
            },
            &seeded(seed),
        );
        prop_assert!(report.passed, "patch embed c {c} p {p}: {report:?}");

        let shape = (b, c, gh * p, gw * p);
        let tok = random_input(&[b * gh * gw, p * p * c], &mut r);
        let mut none: Vec<Param> = Vec::new();
        let report = check(
            &mut none,
            &[tok],
            |_, xs| unpatchify(two(&xs[0]).view(), shape, p, ChannelOrder::Last).into_dyn(),
            |_, _, dy| vec![patchify(four(dy).view(), p, ChannelOrder::Last).into_dyn()],
            &seeded(seed),
        );
        prop_assert!(report.passed, "unpatchify c {c} p {p}: {report:?}");
    }
}

/// A DiT of depth 2 on an `input`² latent of 2 channels.
fn tiny(hidden: usize, heads: usize, input: usize, patch: usize, learn_sigma: bool) -> DiTConfig {
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
        conditioning: Default::default(),
    }
}

/// The checker with the default tolerances but a finer step for the whole network.
///
/// Through five LayerNorms the loss curves like $1/|W|^2$ in every weight that feeds a norm,
/// and the directional check moves all of a tensor's coordinates by the step at once, so a
/// step of 1e-2 is no longer small (the same truncation error as the U-Net's and the VAE's,
/// see `grad_unet.rs`, `vae_model.rs`). A DiT has 31 tensors here: 4 sampled coordinates each,
/// besides the directional check through all of them, keep the file fast.
fn model_check(seed: u64) -> GradCheck {
    GradCheck {
        seed,
        step: 1e-3,
        max_coords: 4,
        ..GradCheck::default()
    }
}

/// Runs the whole-DiT check, also asserting that `backward_train` adds the same gradients.
fn check_dit(net: &mut DiT, x: ArrayD<f32>, t: &[usize], y: &[usize], cfg: &GradCheck) -> Report {
    check(
        net,
        &[x],
        |m, xs| m.predict(&xs[0], t, &Condition::labels(y)),
        |m, xs, dy| {
            let (out, cache) = m.forward_train(&xs[0], t, &Condition::labels(y));
            assert_eq!(out, m.predict(&xs[0], t, &Condition::labels(y)));
            let dx = m.backward(&cache, four(dy).view());
            let mut once = Vec::new();
            m.visit("", &mut |_, p| once.push(p.grad.clone()));
            m.backward_train(&cache, dy);
            let mut k = 0;
            m.visit("", &mut |name, p| {
                let want = &once[k] * 2.0;
                assert!(
                    p.grad
                        .iter()
                        .zip(want.iter())
                        .all(|(a, b)| (a - b).abs() <= 1e-5 * b.abs().max(1.0)),
                    "{name}: backward_train differs from backward"
                );
                p.grad.assign(&once[k]);
                k += 1;
            });
            vec![dx.into_dyn()]
        },
        cfg,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// The whole DiT: the latent input and every parameter.
    #[test]
    fn dit_gradients_match_finite_differences(
        b in 1usize..3,
        hidden in prop::sample::select(vec![8usize, 16, 24]),
        heads in prop::sample::select(vec![1usize, 2, 4]),
        (input, patch) in prop::sample::select(vec![(4usize, 2usize), (4, 4), (8, 4), (6, 2)]),
        learn_sigma in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed ^ 0xd17);
        let mut net = DiT::new(tiny(hidden, heads, input, patch, learn_sigma), &mut r).unwrap();
        randomise_zeros(&mut net, &mut r);
        let x = random_input(&[b, 2, input, input], &mut r);
        let t: Vec<usize> = (0..b).map(|i| (37 + 400 * i + seed as usize) % 1000).collect();
        // the last sample uses the null label, the others a class
        let y: Vec<usize> = (0..b).map(|i| if i + 1 == b { 3 } else { i % 3 }).collect();
        let report = check_dit(&mut net, x, &t, &y, &model_check(seed));
        prop_assert!(
            report.passed,
            "hidden {hidden} heads {heads} input {input} patch {patch} sigma {learn_sigma}: {report:?}"
        );
    }
}

/// The finer step still catches a gradient 3 % off in the layer farthest from the output.
#[test]
fn the_whole_dit_check_catches_a_small_error() {
    let mut caught = 0;
    for seed in 0..4u64 {
        let mut r = rng(seed);
        let mut net = DiT::new(tiny(16, 2, 4, 2, true), &mut r).unwrap();
        randomise_zeros(&mut net, &mut r);
        let x = random_input(&[1, 2, 4, 4], &mut r);
        let (t, y) = (vec![500], vec![1]);
        let report = check(
            &mut net,
            &[x],
            |m, xs| m.predict(&xs[0], &t, &Condition::labels(&y)),
            |m, xs, dy| {
                let (_, cache) = m.forward(four(&xs[0]).view(), &t, Some(&y));
                let dx = m.backward(&cache, four(dy).view());
                m.x_embedder.weight.grad *= 1.03;
                vec![dx.into_dyn()]
            },
            &model_check(seed),
        );
        if !report.passed {
            caught += 1;
        }
    }
    assert_eq!(
        caught, 4,
        "a 3 % error in x_embedder's gradient went unnoticed"
    );
}
