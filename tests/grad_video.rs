//! The space-time DiT's gradients: the spacetime patches and the token rearranges (exact
//! permutations), DiT's block attending over sub-sequences (`forward_seq`), the factorized
//! block, and the whole video DiT in every layout, with and without a learned variance, with
//! per-frame and tubelet patches — on the input clip and every parameter. As for the image DiT,
//! every zero-initialised tensor gets random values first, or zeros would pass any backward.

mod support;

use minisora::diffusion::{Condition, Denoiser, TrainableDenoiser};
use minisora::dit::{DiTBlock, DiTConfig};
use minisora::gradcheck::{check, random_input, GradCheck, Report};
use minisora::param::Parameters;
use minisora::tensor::rng;
use minisora::video::factorized::{FactorizedBlock, Grid};
use minisora::video::patch::{
    clip_patchify, clip_unpatchify, to_spatial, to_temporal, ChannelOrder, Tubelet,
};
use minisora::video::{Layout, VideoDiT, VideoDiTConfig};
use ndarray::{Array2, ArrayD, Ix5};
use proptest::prelude::*;
use support::{randomise_zeros, seeded, tokens, two};

/// A tiny video DiT: 2 channels, 4×4 latents, patch 2 (S = 4 tokens per frame), 3 classes.
fn tiny(
    layout: Layout,
    hidden: usize,
    heads: usize,
    frames: usize,
    pt: usize,
    learn_sigma: bool,
) -> VideoDiTConfig {
    VideoDiTConfig {
        dit: DiTConfig {
            input_size: 4,
            patch_size: 2,
            in_channels: 2,
            hidden_size: hidden,
            depth: 2,
            num_heads: heads,
            mlp_ratio: 2.0,
            class_dropout_prob: 0.1,
            num_classes: 3,
            learn_sigma,
            conditioning: Default::default(),
        },
        frames,
        temporal_patch: pt,
        layout,
        text: None,
    }
}

/// The whole model's checker: a finer step and fewer sampled coordinates, as the image DiT's.
fn model_check(seed: u64) -> GradCheck {
    GradCheck {
        seed,
        step: 1e-3,
        max_coords: 4,
        ..GradCheck::default()
    }
}

fn check_video(
    net: &mut VideoDiT,
    x: ArrayD<f32>,
    t: &[usize],
    y: &[usize],
    cfg: &GradCheck,
) -> Report {
    check(
        net,
        &[x],
        |m, xs| m.predict(&xs[0], t, &Condition::labels(y)),
        |m, xs, dy| {
            let (out, cache) = m.forward_train(&xs[0], t, &Condition::labels(y));
            assert_eq!(
                out,
                m.predict(&xs[0], t, &Condition::labels(y)),
                "forward and predict differ"
            );
            let dx = m.backward(&cache, dy.view().into_dimensionality::<Ix5>().unwrap());
            vec![dx.into_dyn()]
        },
        cfg,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Patchify then unpatchify (same order) is the identity, for both orders and any tubelet.
    #[test]
    fn clip_patches_round_trip(
        b in 1usize..3, c in 1usize..4, pt in 1usize..3, gf in 1usize..3, p in 1usize..3,
        g in 1usize..3, first in any::<bool>(), seed in any::<u64>(),
    ) {
        let shape = (b, c, pt * gf, p * g, p * g);
        let x = random_input(&[shape.0, shape.1, shape.2, shape.3, shape.4], &mut rng(seed));
        let x = x.into_dimensionality::<Ix5>().unwrap();
        let order = if first { ChannelOrder::First } else { ChannelOrder::Last };
        let t = Tubelet { frames: pt, side: p };
        let tokens = clip_patchify(x.view(), t, order);
        prop_assert_eq!(tokens.dim(), (b * gf * g * g, c * pt * p * p));
        prop_assert_eq!(clip_unpatchify(tokens.view(), shape, t, order), x);
    }

    /// `(b f s) → (b s f)` moves row (b, f, s) to row (b, s, f), and `to_spatial` undoes it.
    #[test]
    fn rearranges_are_inverse_permutations(b in 1usize..3, f in 1usize..5, s in 1usize..5, seed in any::<u64>()) {
        let x = two(&random_input(&[b * f * s, 3], &mut rng(seed)));
        let y = to_temporal(&x, f, s);
        for (n, i, j) in (0..b).flat_map(|n| (0..f).flat_map(move |i| (0..s).map(move |j| (n, i, j)))) {
            prop_assert_eq!(y.row((n * s + j) * f + i), x.row((n * f + i) * s + j));
        }
        prop_assert_eq!(to_spatial(&y, f, s), x);
    }

    /// DiT's block attending within sub-sequences of `seq` tokens (a frame, or a position):
    /// tokens, conditioning and every parameter.
    #[test]
    fn block_over_subsequences_gradients(
        b in 1usize..3, groups in 1usize..4, seq in 1usize..4, heads in 1usize..3, seed in any::<u64>(),
    ) {
        let d = 4 * heads;
        let mut r = rng(seed ^ 0x5e9);
        let mut block = DiTBlock::new(d, heads, 2 * d, &mut r);
        randomise_zeros(&mut block, &mut r);
        let x = tokens(&[b * groups * seq, d], &mut r);
        let c = random_input(&[b, d], &mut r);
        let report = check(
            &mut block,
            &[x, c],
            |m, xs| m.forward_infer_seq(&two(&xs[0]), &two(&xs[1]), seq, None).into_dyn(),
            |m, xs, dy| {
                let (x, c) = (two(&xs[0]), two(&xs[1]));
                let (y, cache) = m.forward_seq(&x, &c, seq, None);
                assert_eq!(y, m.forward_infer_seq(&x, &c, seq, None));
                let mut dc = Array2::zeros(c.raw_dim());
                let dx = m.backward(&cache, &two(dy), &mut dc);
                vec![dx.into_dyn(), dc.into_dyn()]
            },
            &seeded(seed),
        );
        prop_assert!(report.passed, "b {b} groups {groups} seq {seq}: {report:?}");
    }

    /// The factorized block (spatial attention, temporal attention with the temporal table,
    /// MLP): tokens, conditioning and every parameter, `attn_temp` included.
    #[test]
    fn factorized_block_gradients(
        b in 1usize..3, f in 1usize..4, s in 1usize..4, heads in 1usize..3, table in any::<bool>(), seed in any::<u64>(),
    ) {
        let d = 4 * heads;
        let mut r = rng(seed ^ 0xfac7);
        let mut block = FactorizedBlock::new(d, heads, 2 * d, &mut r);
        randomise_zeros(&mut block, &mut r);
        let grid = Grid { frames: f, tokens: s };
        let temp = table.then(|| two(&random_input(&[f, d], &mut r)));
        let x = tokens(&[b * f * s, d], &mut r);
        let c = random_input(&[b, d], &mut r);
        let report = check(
            &mut block,
            &[x, c],
            |m, xs| m.forward_infer(&two(&xs[0]), &two(&xs[1]), grid, temp.as_ref(), None).into_dyn(),
            |m, xs, dy| {
                let (x, c) = (two(&xs[0]), two(&xs[1]));
                let (y, cache) = m.forward(&x, &c, grid, temp.as_ref(), None);
                assert_eq!(y, m.forward_infer(&x, &c, grid, temp.as_ref(), None));
                let mut dc = Array2::zeros(c.raw_dim());
                let dx = m.backward(&cache, &two(dy), &mut dc, grid, None);
                vec![dx.into_dyn(), dc.into_dyn()]
            },
            &seeded(seed),
        );
        prop_assert!(report.passed, "b {b} f {f} s {s} heads {heads}: {report:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// The whole video DiT: every layout, ±learned σ, per-frame and tubelet patches, the clip
    /// and every parameter.
    #[test]
    fn video_dit_gradients_match_finite_differences(
        b in 1usize..3,
        layout in prop::sample::select(Layout::ALL.to_vec()),
        hidden in prop::sample::select(vec![8usize, 16]),
        heads in prop::sample::select(vec![1usize, 2]),
        (frames, pt) in prop::sample::select(vec![(1usize, 1usize), (2, 1), (3, 1), (4, 2), (2, 2)]),
        learn_sigma in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed ^ 0x51de0);
        let mut net = VideoDiT::new(tiny(layout, hidden, heads, frames, pt, learn_sigma), &mut r).unwrap();
        randomise_zeros(&mut net, &mut r);
        let x = random_input(&[b, 2, frames, 4, 4], &mut r);
        let t: Vec<usize> = (0..b).map(|i| (37 + 400 * i + seed as usize) % 1000).collect();
        let y: Vec<usize> = (0..b).map(|i| if i + 1 == b { 3 } else { i % 3 }).collect();
        let report = check_video(&mut net, x, &t, &y, &model_check(seed));
        prop_assert!(
            report.passed,
            "{} hidden {hidden} heads {heads} frames {frames} pt {pt} sigma {learn_sigma}: {report:?}",
            layout.name()
        );
    }
}

/// The whole video DiT at frame sizes it was not built for — wider, taller, smaller than its
/// 4×4 latents — in every layout: the clip and every parameter (the 2-D table follows the grid).
#[test]
fn video_dit_gradients_at_other_frame_sizes() {
    for (k, layout) in Layout::ALL.into_iter().enumerate() {
        for (i, &(h, w)) in [(4usize, 6usize), (6, 2), (2, 4)].iter().enumerate() {
            let seed = (10 * k + i) as u64;
            let mut r = rng(seed ^ 0x5a9e);
            let mut net = VideoDiT::new(tiny(layout, 8, 2, 4, 2, true), &mut r).unwrap();
            randomise_zeros(&mut net, &mut r);
            let x = random_input(&[2, 2, 4, h, w], &mut r);
            let report = check_video(&mut net, x, &[37, 512], &[1, 3], &model_check(seed));
            assert!(report.passed, "{} at {h}×{w}: {report:?}", layout.name());
        }
    }
}

/// The whole-model check catches a gradient 3 % off in the layer farthest from the output,
/// in every layout.
#[test]
fn the_whole_video_check_catches_a_small_error() {
    for layout in Layout::ALL {
        let mut caught = 0;
        for seed in 0..3u64 {
            let mut r = rng(seed);
            let mut net = VideoDiT::new(tiny(layout, 16, 2, 2, 1, true), &mut r).unwrap();
            randomise_zeros(&mut net, &mut r);
            let x = random_input(&[1, 2, 2, 4, 4], &mut r);
            let (t, y) = (vec![500], vec![1]);
            let report = check(
                &mut net,
                &[x],
                |m, xs| m.predict(&xs[0], &t, &Condition::labels(&y)),
                |m, xs, dy| {
                    let (_, cache) =
                        m.forward(xs[0].view().into_dimensionality().unwrap(), &t, Some(&y));
                    let dx = m.backward(&cache, dy.view().into_dimensionality().unwrap());
                    m.x_embedder.weight.grad *= 1.03;
                    vec![dx.into_dyn()]
                },
                &model_check(seed),
            );
            caught += usize::from(!report.passed);
        }
        assert_eq!(
            caught,
            3,
            "{}: a 3 % error in x_embedder's gradient went unnoticed",
            layout.name()
        );
    }
}

/// Every parameter gets a gradient in every layout (nothing is left out of backward).
#[test]
fn every_parameter_is_reached() {
    for layout in Layout::ALL {
        let mut r = rng(4);
        let mut net = VideoDiT::new(tiny(layout, 8, 2, 2, 1, true), &mut r).unwrap();
        randomise_zeros(&mut net, &mut r);
        let x = random_input(&[2, 2, 2, 4, 4], &mut r);
        let (out, cache) = net.forward_train(&x, &[3, 700], &Condition::labels(&[0, 2]));
        net.zero_grad();
        net.backward_train(&cache, &out);
        net.visit("", &mut |name, p| {
            assert!(
                p.grad.iter().any(|&g| g != 0.0),
                "{}: {name} got no gradient",
                layout.name()
            );
        });
    }
}
