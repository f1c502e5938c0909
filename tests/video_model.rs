//! The video DiT as a whole: inflation from an image DiT (the image model frame by frame at
//! step 0), the Gflops counted by hand, the checkpoint (Latte's names, the two tables, the
//! errors), and a training run resumed bit-identically through the one trainer.

mod support;

use minisora::data::DataSource;
use minisora::dit::{DiT, DiTConfig};
use minisora::io::checkpoint::load_tensors;
use minisora::models::video::{train_video, video_info};
use minisora::param::Parameters;
use minisora::tensor::{init, rng};
use minisora::train::{Source, TrainData, TrainOptions};
use minisora::video::checkpoint::{load_video_dit, save_video_dit};
use minisora::video::flops::video_flops;
use minisora::video::inflate::inflate;
use minisora::video::{Layout, VideoDiT, VideoDiTConfig};
use ndarray::{s, Array2, Array4, Array5, Axis, Ix5};
use std::collections::BTreeMap;
use support::{randomise_zeros, rel_err, TempDir};

/// A small image DiT (8×8×4 latents, patch 2, D 32, depth 2, 3 classes), every weight random.
fn image_dit(seed: u64) -> DiT {
    let config = DiTConfig {
        depth: 2,
        hidden_size: 32,
        ..DiTConfig::named("dit-mini/2", 8, 4, 3).unwrap()
    };
    let mut dit = DiT::new(config, &mut rng(seed)).unwrap();
    randomise_zeros(&mut dit, &mut rng(seed + 1));
    dit
}

/// Clips (2, 4, 3, 8, 8) and the image DiT's output for each of their frames, with video
/// class `v` read by the image model as class `class_of[v]`.
fn frame_by_frame(dit: &DiT, x: &Array5<f32>, t: &[usize], y_image: &[usize]) -> Array5<f32> {
    let frames: Vec<Array4<f32>> = (0..x.dim().2)
        .map(|f| {
            let frame = x.index_axis(Axis(2), f).to_owned(); // (B, C, H, W)
            dit.forward_infer(frame.view(), t, Some(y_image))
        })
        .collect();
    let views: Vec<_> = frames.iter().map(|a| a.view()).collect();
    ndarray::stack(Axis(2), &views).unwrap()
}

fn clips(seed: u64) -> Array5<f32> {
    init::normal(&[2, 4, 3, 8, 8], 1.0, &mut rng(seed))
        .into_dimensionality::<Ix5>()
        .unwrap()
}

#[test]
fn an_inflated_model_is_the_image_model_frame_by_frame() {
    let dit = image_dit(1);
    // six video classes: (class, motion) for 3 classes × 2 motions
    let class_of = [0, 0, 1, 1, 2, 2];
    let x = clips(2);
    let (t, y) = (vec![10, 900], vec![3, 6]); // video class 3 = image class 1; 6 is the null
    let want = frame_by_frame(&dit, &x, &t, &[1, 3]);
    let video_out = |v: &VideoDiT| {
        let e_y = v.y_embedder.forward_infer(Some(&y), 2);
        v.forward_infer_embedded(x.view(), &t, &e_y)
    };

    // factorized: the temporal table enters only the silent temporal attention — exact
    let video = inflate(&dit, Layout::Factorized, 3, 1, &class_of, &mut rng(5)).unwrap();
    let err = rel_err(&video_out(&video), &want);
    assert!(
        err <= 1e-6,
        "factorized: inflated model differs from the image DiT by {err}"
    );

    // alternating: Latte's temp_embed sits in the residual stream; with it at zero, exact …
    let mut video = inflate(&dit, Layout::Alternating, 3, 1, &class_of, &mut rng(5)).unwrap();
    assert_eq!(
        video.config.dit.depth, 4,
        "one temporal block per image block"
    );
    let with_table = video_out(&video);
    let (pos, temp) = (video.pos_embed().clone(), video.temp_embed().clone());
    video.set_tables(pos, Array2::zeros(temp.raw_dim()));
    let err = rel_err(&video_out(&video), &want);
    assert!(
        err <= 1e-6,
        "alternating without its table differs by {err}"
    );
    // … and with it, frame 0 (whose table row is [0…0, 1…1]) is not the only one changed
    let moved = rel_err(&with_table, &want);
    assert!(
        moved > 1e-3,
        "the temporal table should shift the later spatial blocks ({moved})"
    );

    // the temporal layers start at zero output: their gradients still flow
    let mut video = inflate(&dit, Layout::Factorized, 3, 1, &class_of, &mut rng(5)).unwrap();
    let (out, cache) = video.forward(x.view(), &t, Some(&y));
    video.zero_grad();
    video.backward(&cache, out.view());
    let mut temporal_grad = 0.0;
    video.visit("", &mut |name, p| {
        if name.contains("attn_temp.proj.weight") {
            temporal_grad += p.grad.iter().map(|g| g.abs()).sum::<f32>();
        }
    });
    assert!(
        temporal_grad > 0.0,
        "a silent temporal projection must still learn"
    );
}

/// Tubelets inflated as I3D inflates a kernel: a clip whose frames come in equal pairs gives
/// the image model's output on each frame; a clip whose pairs differ does not.
#[test]
fn an_inflated_tubelet_model_reads_each_pair_as_its_mean_frame() {
    let dit = image_dit(1);
    let class_of = [0, 1, 2];
    let pairs = clips(2); // (2, 4, 3, 8, 8): frames 0, 1, 2
    let x = ndarray::concatenate(
        Axis(2),
        &[
            pairs.slice(s![.., .., 0..1, .., ..]),
            pairs.slice(s![.., .., 0..1, .., ..]),
            pairs.slice(s![.., .., 1..2, .., ..]),
            pairs.slice(s![.., .., 1..2, .., ..]),
        ],
    )
    .unwrap(); // frames 0, 0, 1, 1
    let (t, y) = (vec![10, 900], vec![1, 3]);
    let want = frame_by_frame(&dit, &x, &t, &[1, 3]);
    let video = inflate(&dit, Layout::Factorized, 4, 2, &class_of, &mut rng(5)).unwrap();
    let e_y = video.y_embedder.forward_infer(Some(&y), 2);
    let err = rel_err(&video.forward_infer_embedded(x.view(), &t, &e_y), &want);
    assert!(
        err <= 1e-5,
        "equal pairs: the inflated tubelet model differs by {err}"
    );
    let mut x2 = x.clone();
    x2.slice_mut(s![.., .., 1, .., ..])
        .assign(&pairs.slice(s![.., .., 2, .., ..]));
    let err = rel_err(
        &video.forward_infer_embedded(x2.view(), &t, &e_y),
        &frame_by_frame(&dit, &x2, &t, &[1, 3]),
    );
    assert!(
        err > 1e-3,
        "a tubelet mixes its frames: unequal pairs should differ ({err})"
    );
}

#[test]
fn inflation_rejects_what_it_cannot_build() {
    let dit = image_dit(1);
    let full = inflate(&dit, Layout::Full, 3, 1, &[0, 1], &mut rng(0))
        .err()
        .unwrap();
    assert!(
        full.to_string().contains("alternating or factorized"),
        "{full}"
    );
    let classes = inflate(&dit, Layout::Alternating, 3, 1, &[0, 7], &mut rng(0))
        .err()
        .unwrap();
    assert!(classes.to_string().contains("image class 7"), "{classes}");
}

/// The Gflops of a tiny config, counted by hand (D = 8, MLP 16, C = 2 in and out, 4×4
/// latents with patch 2: S = 4, F' = 2, T = 8, depth 2):
/// - patch embedding T·(C·p²)·D = 8·8·8 = 512; timestep MLP 256·8 + 8² = 2112;
///   final layer 2·8² + T·D·(p²·C) = 128 + 512 = 640 — 3264 in every layout;
/// - an attention over k sequences of n tokens: k·(n·4D² + 2n²D); the MLP T·2·D·16 = 2048;
///   the modulation 6D² = 384;
/// - full: 2 × (attention(1, 8) = 3072 + 2048 + 384) = 11008;
/// - alternating, one pair: spatial attention(2, 4) = 2560, temporal attention(4, 2) = 2304,
///   each block + 2048 + 384: 4992 + 4736 = 9728;
/// - factorized: 2 × (2560 + 2304 + 2048 + 384) = 14592.
#[test]
fn gflops_match_a_count_by_hand() {
    let config = |layout| VideoDiTConfig {
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
            learn_sigma: false,
            conditioning: Default::default(),
        },
        frames: 2,
        temporal_patch: 1,
        layout,
        text: None,
    };
    assert_eq!(video_flops(&config(Layout::Full)), 3264 + 11008);
    assert_eq!(video_flops(&config(Layout::Alternating)), 3264 + 9728);
    assert_eq!(video_flops(&config(Layout::Factorized)), 3264 + 14592);
    // tubelets of 2 frames over 4 frames: F' = 2 again, C·p_t·p² = 16 inputs and outputs per
    // token: patch 8·16·8 = 1024, final 128 + 8·8·16 = 1152, the blocks as above
    let tube = VideoDiTConfig {
        frames: 4,
        temporal_patch: 2,
        ..config(Layout::Full)
    };
    assert_eq!(video_flops(&tube), 1024 + 2112 + 1152 + 11008);
}

#[test]
fn checkpoints_round_trip_and_name_their_problems() {
    let tmp = TempDir::new("video-ckpt");
    let config = VideoDiTConfig::named("video-mini/2", Layout::Alternating, 4, 1, 8, 4, 5).unwrap();
    let mut model = VideoDiT::new(config, &mut rng(1)).unwrap();
    randomise_zeros(&mut model, &mut rng(2));
    let path = tmp.0.join("video.safetensors");
    save_video_dit(&path, &mut model, &BTreeMap::new()).unwrap();
    let back = load_video_dit(&path).unwrap();
    assert_eq!(back.config, model.config);
    let x = init::normal(&[1, 4, 4, 8, 8], 1.0, &mut rng(3))
        .into_dimensionality::<Ix5>()
        .unwrap();
    let e_y = model.y_embedder.forward_infer(Some(&[2]), 1);
    assert_eq!(
        back.forward_infer_embedded(x.view(), &[5], &e_y),
        model.forward_infer_embedded(x.view(), &[5], &e_y)
    );
    let (tensors, _) = load_tensors(&path).unwrap();
    assert_eq!(tensors["temp_embed"].shape(), &[1, 4, 64]);
    assert_eq!(tensors["pos_embed"].shape(), &[1, 16, 64]);
    assert!(
        tensors.contains_key("blocks.7.adaLN_modulation.1.weight"),
        "8 blocks, Latte's names"
    );

    // an image DiT where a video one is expected
    let image = tmp.0.join("image.safetensors");
    minisora::dit::save_dit(&image, &mut image_dit(1), &BTreeMap::new()).unwrap();
    let err = load_video_dit(&image).err().unwrap().to_string();
    assert!(
        err.contains("image DiT") && err.contains("inflate"),
        "{err}"
    );
}

#[test]
fn a_different_clip_length_uses_its_own_table() {
    let config = VideoDiTConfig::named("video-mini/2", Layout::Factorized, 4, 1, 8, 4, 5).unwrap();
    let mut model = VideoDiT::new(config, &mut rng(1)).unwrap();
    randomise_zeros(&mut model, &mut rng(2));
    let x = init::normal(&[1, 4, 6, 8, 8], 1.0, &mut rng(3))
        .into_dimensionality::<Ix5>()
        .unwrap();
    let e_y = model.y_embedder.forward_infer(Some(&[1]), 1);
    let out = model.forward_infer_embedded(x.view(), &[100], &e_y);
    assert_eq!(out.dim(), (1, 8, 6, 8, 8));
    // the same first four frames alone give another result: the frames attend to each other
    let short = model.forward_infer_embedded(x.slice(s![.., .., ..4, .., ..]), &[100], &e_y);
    assert!(rel_err(&short, &out.slice(s![.., .., ..4, .., ..]).to_owned()) > 1e-4);
}

#[test]
fn a_video_run_resumes_bit_identically() {
    let tmp = TempDir::new("video-resume");
    let mut r = rng(8);
    let x = init::normal(&[12, 1, 2, 8, 8], 1.0, &mut r); // (N, C, F, H, W), grey
    let labels: Vec<usize> = (0..12).map(|i| i % 3).collect();
    let data = TrainData::new(x, labels, vec!["a".into(), "b".into(), "c".into()]);
    let opts = |out: std::path::PathBuf, resume| TrainOptions {
        data: Source::Pixels(DataSource::Digits), // names the run only
        steps: 6,
        batch: 4,
        lr: 1e-3,
        sample_steps: 3,
        samples_per_class: 1,
        save_every: 3,
        seed: 3,
        out,
        resume,
        ..TrainOptions::default()
    };
    let config = VideoDiTConfig::named("video-mini/2", Layout::Alternating, 2, 1, 8, 1, 3).unwrap();
    let fresh = || VideoDiT::new(config.clone(), &mut rng(1)).unwrap();
    let one = opts(tmp.0.join("one"), None);
    let report = train_video(&mut fresh(), &data, &one).unwrap();
    let half = one.out.join("train_3.safetensors");
    let two = opts(tmp.0.join("two"), Some(half));
    let again = train_video(&mut fresh(), &data, &two).unwrap();
    assert_eq!(again.losses, report.losses);
    let (a, b) = (
        load_tensors(&one.out.join("train_6.safetensors"))
            .unwrap()
            .0,
        load_tensors(&two.out.join("train_6.safetensors"))
            .unwrap()
            .0,
    );
    for (name, t) in &a {
        assert_eq!(Some(t), b.get(name), "{name} differs after resuming");
    }
    assert!(one.out.join("samples.gif").is_file());
    // the model-info the trainer got carries the config and Latte's tables
    let info = video_info(&fresh());
    assert_eq!(info.metadata["video.layout"], "alternating");
    assert_eq!(info.buffers.len(), 2);
}

#[test]
fn a_text_conditioned_run_resumes_bit_identically() {
    use minisora::text::encoder::TextEncoderConfig;
    use minisora::text::tokenizer::{vocab_size, MAX_LEN};
    use minisora::video::config::CaptionConfig;
    for train_encoder in [false, true] {
        let tmp = TempDir::new("text-resume");
        let mut r = rng(9);
        let x = init::normal(&[8, 1, 2, 8, 8], 1.0, &mut r); // (N, C, F, H, W)
        let captions = ["a red 3 moving left", "a blue 7 moving up quickly"];
        let data = TrainData {
            captions: (0..8).map(|i| captions[i % 2].to_string()).collect(),
            ..TrainData::new(x, vec![0; 8], vec!["captioned".into()])
        };
        let opts = |out: std::path::PathBuf, resume| TrainOptions {
            data: Source::Pixels(DataSource::Digits), // names the run only
            steps: 4,
            batch: 4,
            lr: 1e-3,
            sample_steps: 2,
            save_every: 2,
            seed: 3,
            out,
            resume,
            ..TrainOptions::default()
        };
        let mut config =
            VideoDiTConfig::named("video-mini/2", Layout::Full, 2, 1, 8, 1, 1).unwrap();
        config.text = Some(CaptionConfig {
            encoder: TextEncoderConfig {
                vocab: vocab_size(),
                max_len: MAX_LEN,
                width: 8,
                depth: 1,
                heads: 2,
            },
            pooled: true,
            train_encoder,
        });
        let fresh = || VideoDiT::new(config.clone(), &mut rng(1)).unwrap();
        let one = opts(tmp.0.join("one"), None);
        let report = train_video(&mut fresh(), &data, &one).unwrap();
        let two = opts(tmp.0.join("two"), Some(one.out.join("train_2.safetensors")));
        let again = train_video(&mut fresh(), &data, &two).unwrap();
        assert_eq!(again.losses, report.losses, "joint {train_encoder}");
        let (a, b) = (
            load_tensors(&one.out.join("train_4.safetensors"))
                .unwrap()
                .0,
            load_tensors(&two.out.join("train_4.safetensors"))
                .unwrap()
                .0,
        );
        for (name, t) in &a {
            assert_eq!(Some(t), b.get(name), "{name} differs after resuming");
        }
        // the frozen encoder travels as fixed tensors, the joint one as parameters
        let frozen = a.keys().filter(|k| k.starts_with("text_encoder.")).count();
        let trained = a
            .keys()
            .filter(|k| k.starts_with("ema.text_encoder."))
            .count();
        // (a training state holds the weights under their names in both cases)
        assert!(frozen > 0);
        assert_eq!(trained > 0, train_encoder);
        // and the final checkpoint samples from captions
        let model = load_video_dit(&report.checkpoint).unwrap();
        assert_eq!(model.config.text.unwrap().train_encoder, train_encoder);
    }
}
