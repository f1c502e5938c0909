//! CLIP pre-training of the text encoder: gradient checks of the video tower, the symmetric
//! InfoNCE loss (features and temperature) and the whole model; a short pre-training run on a
//! synthetic task whose retrieval rises far above chance; the text encoder's checkpoint.

mod support;

use minisora::gradcheck::{check, random_input, GradCheck};
use minisora::param::{Param, Parameters};
use minisora::tensor::{rng, Rng};
use minisora::text::clip::{Clip, ClipConfig};
use minisora::text::contrastive::{info_nce, info_nce_backward, LOGIT_SCALE_INIT, LOGIT_SCALE_MAX};
use minisora::text::encoder::TextEncoderConfig;
use minisora::text::pretrain::{
    load_text_encoder, pretrain_clip, save_text_encoder, PretrainOptions,
};
use minisora::text::video_tower::{ClipVideoConfig, ClipVideoEncoder};
use ndarray::{Array2, Array5, ArrayD, Ix2, Ix5, IxDyn};
use ndarray_rand::rand::Rng as _;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn to2(a: &ArrayD<f32>) -> Array2<f32> {
    a.clone().into_dimensionality::<Ix2>().unwrap()
}

fn to5(a: &ArrayD<f32>) -> Array5<f32> {
    a.clone().into_dimensionality::<Ix5>().unwrap()
}

fn prefix_mask(b: usize, l: usize, r: &mut Rng) -> Array2<bool> {
    let lens: Vec<usize> = (0..b).map(|_| r.random_range(1..=l)).collect();
    Array2::from_shape_fn((b, l), |(i, j)| j < lens[i])
}

/// The loss's only parameter, for checking `info_nce`.
struct Scale {
    s: Param,
}
impl Parameters for Scale {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.s
            .visit(&minisora::param::join(prefix, "logit_scale"), f);
    }
}

fn tiny_clip(r: &mut Rng) -> Clip {
    let config = ClipConfig {
        text: TextEncoderConfig {
            vocab: 6,
            max_len: 4,
            width: 8,
            depth: 1,
            heads: 2,
        },
        video: ClipVideoConfig {
            channels: 2,
            max_frames: 3,
            frame: (4, 4),
            hidden: 6,
        },
        embed: 5,
    };
    Clip::new(config, r)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn video_tower_gradients_match_finite_differences(
        b in 1usize..3, c in 1usize..3, f in 1usize..4, max_f in 0usize..2, h in 1usize..3,
        w in 1usize..3, hidden in 2usize..6, embed in 1usize..5, seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let cfg = ClipVideoConfig { channels: c, max_frames: f + max_f, frame: (2 * h, 2 * w), hidden };
        let mut tower = ClipVideoEncoder::new(cfg, embed, &mut r);
        tower.temporal_embedding.value = random_input(&[f + max_f, hidden], &mut r);
        let x = random_input(&[b, c, f, 2 * h, 2 * w], &mut r);
        let report = check(
            &mut tower,
            &[x],
            |m, xs| m.forward_infer(&to5(&xs[0])).into_dyn(),
            |m, xs, dy| {
                let (_, cache) = m.forward(&to5(&xs[0]));
                vec![m.backward(&cache, &to2(dy)).into_dyn()]
            },
            &GradCheck { seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
    }

    #[test]
    fn info_nce_gradients_match_finite_differences(
        b in 1usize..6, p in 2usize..6, s in 0.0f32..4.0, seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let mut loss = Scale { s: Param::new(ArrayD::from_elem(IxDyn(&[1]), s)) };
        let t = random_input(&[b, p], &mut r);
        let v = random_input(&[b, p], &mut r);
        let report = check(
            &mut loss,
            &[t, v],
            |m, xs| ArrayD::from_elem(IxDyn(&[1]), info_nce(&to2(&xs[0]), &to2(&xs[1]), m.s.value[0]).0),
            |m, xs, dy| {
                let (_, cache) = info_nce(&to2(&xs[0]), &to2(&xs[1]), m.s.value[0]);
                let (dt, dv, ds) = info_nce_backward(&cache, dy[0]);
                m.s.grad[0] += ds;
                vec![dt.into_dyn(), dv.into_dyn()]
            },
            &GradCheck { seed, step: 1e-3, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
    }

    #[test]
    fn whole_clip_gradients_match_finite_differences(
        b in 2usize..4, seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let mut clip = tiny_clip(&mut r);
        // Unit-scale embeddings (see tests/grad_text.rs) and a mid-range temperature.
        clip.text.token_embedding.weight.value = support::tokens(&[6, 8], &mut r);
        clip.text.positional_embedding.value = random_input(&[4, 8], &mut r);
        clip.logit_scale.value[0] = 1.0;
        let ids = Array2::from_shape_fn((b, 4), |_| r.random_range(0..6));
        let mask = prefix_mask(b, 4, &mut r);
        let x = random_input(&[b, 2, 3, 4, 4], &mut r);
        let report = check(
            &mut clip,
            &[x],
            |m, xs| ArrayD::from_elem(IxDyn(&[1]), m.forward_infer(&ids, &mask, &to5(&xs[0]))),
            |m, xs, dy| {
                let (_, cache) = m.forward(&ids, &mask, &to5(&xs[0]));
                vec![m.backward(&cache, dy[0]).into_dyn()]
            },
            // One scalar out of a long chain (normalisation, exp-scaled logits, softmax):
            // at h = 1e-2 the curvature shows in coordinates with small gradients.
            &GradCheck { seed, step: 1e-3, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
    }
}

#[test]
fn info_nce_is_ln_b_for_identical_features_and_the_clamp_stops_the_scale() {
    let t = Array2::from_elem((4, 3), 1.0f32);
    let (loss, _) = info_nce(&t, &t, LOGIT_SCALE_INIT);
    assert!((loss - 4f32.ln()).abs() < 1e-5, "{loss}");
    let mut r = rng(1);
    let t = to2(&random_input(&[3, 4], &mut r));
    let v = to2(&random_input(&[3, 4], &mut r));
    let (above, cache) = info_nce(&t, &v, LOGIT_SCALE_MAX + 1.0);
    let (at, _) = info_nce(&t, &v, LOGIT_SCALE_MAX);
    assert_eq!(above, at, "the scale is clamped to ln 100");
    assert_eq!(
        info_nce_backward(&cache, 1.0).2,
        0.0,
        "no gradient past the clamp"
    );
}

#[test]
fn clip_parameter_names() {
    let mut clip = tiny_clip(&mut rng(0));
    let names: Vec<String> = clip.param_shapes().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[0], "text.token_embedding.weight");
    assert!(names.contains(&"text.blocks.0.attn.qkv.weight".to_string()));
    let tail: Vec<&str> = names[names.len() - 9..]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "text_projection.weight",
            "video.frame_in.weight",
            "video.frame_in.bias",
            "video.temporal_embedding",
            "video.frame_mlp.weight",
            "video.frame_mlp.bias",
            "video.proj.weight",
            "video.proj.bias",
            "logit_scale",
        ]
    );
    assert_eq!(clip.logit_scale.value[0], LOGIT_SCALE_INIT);
}

/// A synthetic captioned-clip task: 1 channel, 4 frames of 8×8 at −1 (plus noise), one of
/// them bright (+1) — on one quadrant (caption `[1 + frame, 5 + quadrant]`) or on the whole
/// frame (caption `[1 + frame]`, one token and a PAD). 20 distinct captions; vocabulary 9.
/// Which frame is bright is invisible to a mean over frames: the temporal embedding must
/// carry it.
fn synthetic(n: usize, r: &mut Rng) -> (Array2<usize>, Array2<bool>, Array5<f32>) {
    let mut ids = Array2::zeros((n, 2));
    let mut mask = Array2::from_elem((n, 2), false);
    let mut clips = Array5::from_shape_fn((n, 1, 4, 8, 8), |_| -1.0 + 0.1 * r.random::<f32>());
    for i in 0..n {
        let frame = r.random_range(0..4);
        let quadrant = r.random_range(0..5); // 4 = the whole frame
        ids[[i, 0]] = 1 + frame;
        mask[[i, 0]] = true;
        if quadrant < 4 {
            ids[[i, 1]] = 5 + quadrant;
            mask[[i, 1]] = true;
        }
        for y in 0..8 {
            for x in 0..8 {
                let q = 2 * (y / 4) + x / 4;
                if quadrant == 4 || q == quadrant {
                    clips[[i, 0, frame, y, x]] = 1.0;
                }
            }
        }
    }
    (ids, mask, clips)
}

#[test]
fn pretraining_makes_retrieval_far_better_than_chance_and_the_checkpoint_loads() {
    let mut r = rng(42);
    let (train_ids, train_mask, train_clips) = synthetic(640, &mut r);
    let (eval_ids, eval_mask, eval_clips) = synthetic(100, &mut r);
    let dir = std::env::temp_dir().join(format!("minisora-text-clip-{}", std::process::id()));
    let cfg = TextEncoderConfig {
        vocab: 9,
        max_len: 2,
        width: 32,
        depth: 1,
        heads: 2,
    };
    let opts = PretrainOptions {
        steps: 300,
        batch: 32,
        lr: 3e-3,
        warmup_steps: 30,
        embed: 32,
        video_hidden: 32,
        vocab_fingerprint: "synthetic-v1".into(),
        ..PretrainOptions::new(dir.join("text.safetensors"))
    };
    let report = pretrain_clip(
        &train_ids,
        &train_mask,
        train_clips.view(),
        &eval_ids,
        &eval_mask,
        eval_clips.view(),
        cfg,
        &opts,
    )
    .unwrap();
    println!("{report:?}");
    // Chance: a random clip has the query's caption with probability ≈ 1/20.
    assert!(report.top1 > 0.5, "{report:?}");
    assert!(report.top5 > 0.8, "{report:?}");
    assert!(report.train_top1 > 0.5, "{report:?}");
    let (enc, fingerprint) = load_text_encoder(&report.checkpoint).unwrap();
    assert_eq!(fingerprint, "synthetic-v1");
    assert_eq!(enc.config, cfg);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_text_encoder_checkpoint_round_trips_bit_exactly_and_bad_files_are_errors() {
    let mut r = rng(5);
    let mut clip = tiny_clip(&mut r);
    let dir = std::env::temp_dir().join(format!("minisora-text-ckpt-{}", std::process::id()));
    let path = dir.join("enc.safetensors");
    let extra: BTreeMap<String, String> = [("note".to_string(), "hi".to_string())].into();
    save_text_encoder(&path, &mut clip.text, "abc123", &extra).unwrap();
    let (mut back, fp) = load_text_encoder(&path).unwrap();
    assert_eq!(fp, "abc123");
    let ids = Array2::from_shape_fn((3, 4), |(i, j)| (i + j) % 6);
    let mask = prefix_mask(3, 4, &mut r);
    assert!(back.forward_infer(&ids, &mask) == clip.text.forward_infer(&ids, &mask));
    let mut a = Vec::new();
    clip.text
        .visit("", &mut |n, p| a.push((n.to_string(), p.value.clone())));
    let mut b = Vec::new();
    back.visit("", &mut |n, p| b.push((n.to_string(), p.value.clone())));
    assert!(a == b, "parameters differ after the round trip");

    // a reserved key in the extra metadata
    let bad: BTreeMap<String, String> = [("model".to_string(), "x".to_string())].into();
    assert!(save_text_encoder(&path, &mut clip.text, "abc", &bad).is_err());
    // a truncated file
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_text_encoder(&cut).unwrap_err().to_string();
    assert!(e.contains("not a valid safetensors file"), "{e}");
    // another model's checkpoint
    let other = dir.join("clip.safetensors");
    minisora::io::checkpoint::save_checkpoint(&other, &mut clip, &BTreeMap::new()).unwrap();
    let e = load_text_encoder(&other).unwrap_err().to_string();
    assert!(e.contains("not a text encoder checkpoint"), "{e}");
    // a missing file
    assert!(load_text_encoder(&dir.join("none.safetensors")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
