//! Conditioning on frames: the video DiT with a frame mask (the given frames' tokens
//! modulated at t = 0) — its gradients on the clip and every parameter in every layout, per
//! frame and with tubelets; the path without a mask unchanged; the masked loss's gradient;
//! which tokens a mask gives; the masks the trainer draws.

mod support;

use minisora::diffusion::losses::{losses_kept, training_losses};
use minisora::diffusion::{
    training_losses_masked, BetaSchedule, Condition, Denoiser, Diffusion, FrameConditioned,
    FrameMask, FrameMaskOptions, LossType, MaskKind, Prediction, Schedule, TrainableDenoiser,
    VarianceType,
};
use minisora::dit::DiTConfig;
use minisora::gradcheck::{check, random_input, GradCheck};
use minisora::param::{Param, Parameters};
use minisora::tensor::{init, rng};
use minisora::video::factorized::Grid;
use minisora::video::frame_mask::token_rows;
use minisora::video::{Layout, VideoDiT, VideoDiTConfig};
use ndarray::{ArrayD, Axis, IxDyn};
use ndarray_rand::rand::Rng as _;
use proptest::prelude::*;
use support::randomise_zeros;

/// A tiny video DiT: 2 channels, 4×4 latents, patch 2 (S = 4), 3 classes, depth 2.
fn tiny(layout: Layout, frames: usize, pt: usize, learn_sigma: bool) -> VideoDiTConfig {
    VideoDiTConfig {
        dit: DiTConfig {
            input_size: 4,
            patch_size: 2,
            in_channels: 2,
            hidden_size: 8,
            depth: 2,
            num_heads: 2,
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

/// A mask of `b` clips whose given frames come in whole tubelets of `pt` (so some tokens are
/// at t = 0) — each tubelet given with probability ½ — and, with `partial`, one more frame
/// given alone (a tubelet only partly given).
fn mask(b: usize, frames: usize, pt: usize, partial: bool, seed: u64) -> FrameMask {
    let mut r = rng(seed ^ 0x6d);
    let mut given = Vec::new();
    for _ in 0..b {
        for _ in 0..frames / pt {
            let g = r.random::<bool>();
            given.extend(std::iter::repeat_n(g, pt));
        }
    }
    if partial && pt > 1 {
        given[0] = !given[0];
    }
    FrameMask { frames, given }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// With a frame mask: the gradient of the clip and of every parameter (the modulation
    /// Linears read twice, at t and at 0; the timestep and label embedders) matches finite
    /// differences, in every layout, ±learned σ, per-frame patches and tubelets.
    #[test]
    fn masked_video_dit_gradients_match_finite_differences(
        b in 1usize..3,
        layout in prop::sample::select(Layout::ALL.to_vec()),
        (frames, pt) in prop::sample::select(vec![(2usize, 1usize), (3, 1), (4, 2), (2, 2)]),
        learn_sigma in any::<bool>(),
        partial in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed ^ 0xf4a3);
        let mut net = VideoDiT::new(tiny(layout, frames, pt, learn_sigma), &mut r).unwrap();
        randomise_zeros(&mut net, &mut r);
        let x = random_input(&[b, 2, frames, 4, 4], &mut r);
        let t: Vec<usize> = (0..b).map(|i| (91 + 400 * i + seed as usize) % 1000).collect();
        let y = Condition::labels(&(0..b).map(|i| i % 4).collect::<Vec<_>>());
        let m = mask(b, frames, pt, partial, seed);
        let cfg = GradCheck { seed, step: 1e-3, max_coords: 4, ..GradCheck::default() };
        let report = check(
            &mut net,
            &[x],
            |net, xs| net.predict_given(&xs[0], &t, &y, &m),
            |net, xs, dy| {
                let (out, cache) = net.forward_train_given(&xs[0], &t, &y, &m);
                assert_eq!(out, net.predict_given(&xs[0], &t, &y, &m), "forward and predict differ");
                let dx = net.backward(&cache, dy.view().into_dimensionality().unwrap());
                vec![dx.into_dyn()]
            },
            &cfg,
        );
        prop_assert!(report.passed, "{} frames {frames} pt {pt} sigma {learn_sigma}: {report:?}", layout.name());
    }

    /// The masked loss: ∂loss/∂output agrees with finite differences; the output on given
    /// frames changes nothing; with nothing given it is the plain loss, bit for bit.
    #[test]
    fn masked_loss_gradient_and_mask(
        bsz in 1usize..3, frames in 2usize..5, learned in any::<bool>(), seed in 0u64..1000,
    ) {
        let var = if learned { VarianceType::LearnedRange } else { VarianceType::FixedSmall };
        let d = Diffusion::new(Schedule::new(BetaSchedule::Linear, 50), Prediction::Epsilon, var, LossType::Mse);
        let mut r = rng(seed);
        let shape = [bsz, 1, frames, 2, 2];
        let x0 = init::uniform(&shape, 1.0, &mut r);
        let noise = init::normal(&shape, 1.0, &mut r);
        let t: Vec<usize> = (0..bsz).map(|i| 1 + (seed as usize + 17 * i) % 49).collect();
        let x_t = d.schedule.q_sample(&x0, &t, &noise);
        let oc = if learned { 2 } else { 1 };
        let out = init::uniform(&[bsz, oc, frames, 2, 2], 0.9, &mut r);
        let m = FrameMask::of_kind(MaskKind::ImageHead, bsz, frames);
        let keep = m.keep(&shape);
        let base = training_losses_masked(&d, &x0, &x_t, &t, &noise, &out, &keep).loss_f64;
        let report = check(
            &mut NoParams,
            std::slice::from_ref(&out),
            |_, xs| {
                // the vb term's mean channels held at `out` (its stop-gradient)
                let l = losses_kept(&d, &x0, &x_t, &t, &noise, &xs[0], &out, None, Some(&keep));
                ArrayD::from_elem(IxDyn(&[1]), (l.loss_f64 - base) as f32)
            },
            |_, xs, dy| vec![training_losses_masked(&d, &x0, &x_t, &t, &noise, &xs[0], &keep).d_out * dy[0]],
            &GradCheck { step: 5e-3, seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
        // the given frame (frame 0) of the output is out of the loss
        let mut moved = out.clone();
        moved.index_axis_mut(Axis(2), 0).mapv_inplace(|v| v + 0.5);
        let l = training_losses_masked(&d, &x0, &x_t, &t, &noise, &moved, &keep);
        prop_assert_eq!(l.loss_f64, base);
        prop_assert!(l.d_out.index_axis(Axis(2), 0).iter().all(|&g| g == 0.0));
        // nothing given: the plain loss
        let ones = FrameMask::repeat(&vec![false; frames], bsz).keep(&shape);
        let plain = training_losses(&d, &x0, &x_t, &t, &noise, &out, None);
        let kept = training_losses_masked(&d, &x0, &x_t, &t, &noise, &out, &ones);
        prop_assert_eq!(plain.loss_f64, kept.loss_f64);
        prop_assert_eq!(plain.d_out, kept.d_out);
    }
}

/// The loss has no parameters of its own: the model output is the checked input.
struct NoParams;
impl Parameters for NoParams {
    fn visit(&mut self, _: &str, _: &mut dyn FnMut(&str, &mut Param)) {}
}

/// Without a mask the model runs as before; a mask that gives nothing, and one that gives
/// everything at t = 0, read per token, give the per-clip path's numbers bit for bit.
#[test]
fn no_mask_and_trivial_masks_match_the_unmasked_model() {
    for layout in Layout::ALL {
        for (frames, pt) in [(4usize, 1usize), (4, 2)] {
            let mut r = rng(7);
            let mut net = VideoDiT::new(tiny(layout, frames, pt, true), &mut r).unwrap();
            randomise_zeros(&mut net, &mut r);
            let x = random_input(&[2, 2, frames, 4, 4], &mut r);
            let y = Condition::labels(&[0, 2]);
            let t = [300, 800];
            let plain = net.predict(&x, &t, &y);
            let (train, _) = net.forward_train(&x, &t, &y);
            assert_eq!(plain, train);
            let none = FrameMask::repeat(&vec![false; frames], 2);
            assert_eq!(
                net.predict_given(&x, &t, &y, &none),
                plain,
                "{}",
                layout.name()
            );
            let all = FrameMask::repeat(&vec![true; frames], 2);
            let at_zero = net.predict(&x, &[0, 0], &y);
            assert_eq!(
                net.predict_given(&x, &t, &y, &all),
                at_zero,
                "{}",
                layout.name()
            );
            // and a real mask changes the output
            let head = FrameMask::of_kind(MaskKind::HalfHead, 2, frames);
            assert_ne!(net.predict_given(&x, &t, &y, &head), plain);
        }
    }
}

/// A token is given only when every frame of its tubelet is.
#[test]
fn a_token_is_given_when_all_its_frames_are() {
    let grid = Grid {
        frames: 2,
        tokens: 3,
    };
    // clip 0: frame 0 only (half of the first tubelet); clip 1: frames 0 and 1
    let m = FrameMask {
        frames: 4,
        given: vec![true, false, false, false, true, true, false, false],
    };
    let rows = token_rows(&m, grid, 2);
    assert_eq!(rows, [0, 0, 0, 0, 0, 0, 3, 3, 3, 1, 1, 1]);
    let per_frame = token_rows(
        &m,
        Grid {
            frames: 4,
            tokens: 1,
        },
        1,
    );
    assert_eq!(per_frame, [2, 0, 0, 0, 3, 3, 1, 1]);
}

/// The mask kinds, the option's parser, and the seeded draw.
#[test]
fn mask_kinds_parse_and_draw() {
    let f = |k: MaskKind| k.frames(8);
    assert_eq!(
        f(MaskKind::ImageHead),
        [true, false, false, false, false, false, false, false]
    );
    assert_eq!(
        f(MaskKind::QuarterHead),
        [true, true, false, false, false, false, false, false]
    );
    assert_eq!(
        f(MaskKind::QuarterTail),
        [false, false, false, false, false, false, true, true]
    );
    assert_eq!(
        f(MaskKind::Interpolate),
        [true, false, false, false, false, false, false, true]
    );
    assert_eq!(f(MaskKind::HalfHead).iter().filter(|&&g| g).count(), 4);
    let opts = FrameMaskOptions::parse("0.5:image_head,interpolate").unwrap();
    assert_eq!(opts.kinds, [MaskKind::ImageHead, MaskKind::Interpolate]);
    for bad in ["image_head", "2:image_head", "0.5:first", "x:image_head"] {
        let e = FrameMaskOptions::parse(bad).unwrap_err().to_string();
        assert!(
            e.contains("--frame-mask") || e.contains("frame-mask kind"),
            "{bad}: {e}"
        );
    }
    let a = opts.draw(64, 8, &mut rng(3));
    assert_eq!(a, opts.draw(64, 8, &mut rng(3)), "seeded");
    let masked = (0..64)
        .filter(|&b| (0..8).any(|f| a.is_given(b, f)))
        .count();
    assert!(
        (16..=48).contains(&masked),
        "{masked} of 64 clips masked at p = 0.5"
    );
    let never = FrameMaskOptions::parse("0:image_head").unwrap();
    assert!(!never.draw(16, 8, &mut rng(1)).any());
}

/// The masked model's check fails when the timestep embedder's gradient (which receives
/// both halves, t and 0) is 3 % off.
#[test]
fn the_masked_check_catches_a_small_error() {
    let mut caught = 0;
    for seed in 0..3u64 {
        let mut r = rng(seed);
        let mut net = VideoDiT::new(tiny(Layout::Alternating, 4, 2, true), &mut r).unwrap();
        randomise_zeros(&mut net, &mut r);
        let x = random_input(&[1, 2, 4, 4, 4], &mut r);
        let (t, y) = ([600], Condition::labels(&[1]));
        let m = FrameMask::of_kind(MaskKind::HalfHead, 1, 4);
        let cfg = GradCheck {
            seed,
            step: 1e-3,
            max_coords: 4,
            ..GradCheck::default()
        };
        let report = check(
            &mut net,
            &[x],
            |net, xs| net.predict_given(&xs[0], &t, &y, &m),
            |net, xs, dy| {
                let (_, cache) = net.forward_train_given(&xs[0], &t, &y, &m);
                let dx = net.backward(&cache, dy.view().into_dimensionality().unwrap());
                net.visit("", &mut |name, p| {
                    if name.starts_with("t_embedder") {
                        p.grad *= 1.03;
                    }
                });
                vec![dx.into_dyn()]
            },
            &cfg,
        );
        caught += usize::from(!report.passed);
    }
    assert_eq!(
        caught, 3,
        "a 3 % error in t_embedder's gradient went unnoticed"
    );
}

/// Sampling with frames held: the given frames come out exactly as given, the others are
/// generated (and differ between two different given frames).
#[test]
fn held_frames_come_out_as_given() {
    let mut r = rng(11);
    let mut net = VideoDiT::new(tiny(Layout::Factorized, 4, 2, true), &mut r).unwrap();
    randomise_zeros(&mut net, &mut r);
    let diffusion = minisora::models::dit::dit_diffusion(true);
    let how = minisora::diffusion::Draw::ddim(4, 2.0, 5);
    let y = Condition::labels(&[0, 2]);
    let sample = |x0: &ArrayD<f32>, kind: MaskKind| {
        let mask = FrameMask::of_kind(kind, 2, 4);
        let noise = how.noise(2, &[2, 4, 4, 4]);
        minisora::sample_frames::draw_given(&net, &diffusion, noise, &y, &how, x0.clone(), mask)
            .unwrap()
    };
    let x0 = random_input(&[2, 2, 4, 4, 4], &mut r);
    let out = sample(&x0, MaskKind::Interpolate);
    for f in [0, 3] {
        assert_eq!(out.index_axis(Axis(2), f), x0.index_axis(Axis(2), f));
    }
    assert_ne!(out.index_axis(Axis(2), 1), x0.index_axis(Axis(2), 1));
    let other = sample(&(&x0 * -1.0), MaskKind::Interpolate);
    assert_ne!(other.index_axis(Axis(2), 1), out.index_axis(Axis(2), 1));
}

/// A text-conditioned model with a frame mask: the pooled caption term is in both halves of
/// the conditioning rows, and its gradient (like the label's) is their sum.
#[test]
fn masked_text_video_dit_gradients_match_finite_differences() {
    use minisora::text::encoder::TextEncoderConfig;
    use minisora::text::tokenizer::{self, tokenize};
    use minisora::video::config::CaptionConfig;
    for (seed, layout) in [(1u64, Layout::Alternating), (2, Layout::Factorized)] {
        let mut r = rng(seed);
        let mut config = VideoDiTConfig::named("video-mini/2", layout, 4, 2, 4, 2, 1).unwrap();
        config.dit.hidden_size = 16;
        config.dit.num_heads = 2;
        config.dit.depth = 2;
        config.dit.mlp_ratio = 2.0;
        let len = tokenizer::MAX_LEN;
        config.text = Some(CaptionConfig {
            encoder: TextEncoderConfig {
                vocab: tokenizer::vocab_size(),
                max_len: len,
                width: 8,
                depth: 1,
                heads: 2,
            },
            pooled: true,
            train_encoder: false,
        });
        let mut net = VideoDiT::new(config, &mut r).unwrap();
        randomise_zeros(&mut net, &mut r);
        let enc = &mut net.text.as_mut().unwrap().text_encoder;
        randomise_zeros(enc, &mut r);
        let (v, e) = (enc.config.vocab, enc.config.width);
        enc.token_embedding.weight.value = random_input(&[v, e], &mut r);
        let y = Condition::Captions(vec![Some(tokenize("a red 3 moving left").unwrap()), None]);
        let x = random_input(&[2, 2, 4, 4, 4], &mut r);
        let t = [700, 200];
        let m = FrameMask {
            frames: 4,
            given: vec![true, true, false, false, false, false, true, true],
        };
        let cfg = GradCheck {
            seed,
            step: 1e-2,
            max_coords: 4,
            ..GradCheck::default()
        };
        let report = check(
            &mut net,
            &[x],
            |net, xs| net.predict_given(&xs[0], &t, &y, &m),
            |net, xs, dy| {
                let (out, cache) = net.forward_train_given(&xs[0], &t, &y, &m);
                assert_eq!(out, net.predict_given(&xs[0], &t, &y, &m));
                let dx = net.backward(&cache, dy.view().into_dimensionality().unwrap());
                vec![dx.into_dyn()]
            },
            &cfg,
        );
        assert!(report.passed, "{}: {report:?}", layout.name());
    }
}
