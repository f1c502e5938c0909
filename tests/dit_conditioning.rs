//! The four conditioning mechanisms of the DiT paper (section 3.2, Figure 5) as whole models:
//! output shapes, parameter names and shapes, initialisation (adaLN-Zero and adaLN differ only
//! in the modulation's width and zeros), that the timestep and the label reach the output of
//! every variant and samples do not mix, hand-counted Gflops, checkpoint round trips (and a
//! file of one variant refused by another, naming the tensor), and a short training run with
//! in-context conditioning through the command line's path. (One and two threads:
//! `threads.rs`.)

mod support;

use minisora::data::DataSource;
use minisora::diffusion::{Condition, Denoiser, TrainableDenoiser};
use minisora::dit::{dit_flops, load_dit, save_dit, Conditioning, DiT, DiTConfig, Trunk};
use minisora::gradcheck::random_input;
use minisora::io::checkpoint::load_tensors;
use minisora::models::{train_model, ModelFlags};
use minisora::param::Parameters;
use minisora::tensor::rng;
use minisora::train::{Source, TrainOptions};
use ndarray::ArrayD;
use std::collections::BTreeMap;
use support::small_dit as small;
use support::{randomise_normal, rewrite_checkpoint, TempDir};

fn max_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn every_variant_gives_the_output_shape_of_learn_sigma() {
    for conditioning in Conditioning::ALL {
        for (learn_sigma, out) in [(true, 8), (false, 4)] {
            let model = DiT::new(small(conditioning, learn_sigma), &mut rng(0)).unwrap();
            let x = random_input(&[3, 4, 8, 8], &mut rng(1));
            let t = [0, 500, 999];
            let y = model.predict(&x, &t, &Condition::labels(&[1, 2, 10]));
            assert_eq!(y.shape(), &[3, out, 8, 8], "{conditioning}");
            let (y2, _) = model.forward_train(&x, &t, &Condition::labels(&[1, 2, 10]));
            assert_eq!(y2, y, "{conditioning}: forward_train differs from predict");
        }
    }
}

/// The names and shapes of the blocks and the final layer (the embedders are every
/// variant's, checked in `dit_model.rs`).
fn trunk_shapes(model: &mut DiT) -> Vec<(String, Vec<usize>)> {
    let all = model.param_shapes();
    all.into_iter()
        .filter(|(n, _)| n.starts_with("blocks.") || n.starts_with("final_layer."))
        .collect()
}

#[test]
fn parameter_names_and_shapes_of_each_variant() {
    let (d, out) = (16, 2 * 2 * 8);
    let attn = |i: usize| -> Vec<(String, Vec<usize>)> {
        [
            ("attn.qkv.weight", vec![3 * d, d]),
            ("attn.qkv.bias", vec![3 * d]),
            ("attn.proj.weight", vec![d, d]),
            ("attn.proj.bias", vec![d]),
        ]
        .into_iter()
        .map(|(n, s)| (format!("blocks.{i}.{n}"), s))
        .collect()
    };
    let mlp = |i: usize| -> Vec<(String, Vec<usize>)> {
        [
            ("mlp.fc1.weight", vec![4 * d, d]),
            ("mlp.fc1.bias", vec![4 * d]),
            ("mlp.fc2.weight", vec![d, 4 * d]),
            ("mlp.fc2.bias", vec![d]),
        ]
        .into_iter()
        .map(|(n, s)| (format!("blocks.{i}.{n}"), s))
        .collect()
    };
    let norm = |i: usize, name: &str| -> Vec<(String, Vec<usize>)> {
        vec![
            (format!("blocks.{i}.{name}.weight"), vec![d]),
            (format!("blocks.{i}.{name}.bias"), vec![d]),
        ]
    };
    let plain_final = vec![
        ("final_layer.norm_final.weight".to_string(), vec![d]),
        ("final_layer.norm_final.bias".to_string(), vec![d]),
        ("final_layer.linear.weight".to_string(), vec![out, d]),
        ("final_layer.linear.bias".to_string(), vec![out]),
    ];
    // adaLN: the reference's names, a modulation of 4D
    let mut want = Vec::new();
    for i in 0..2 {
        want.extend(attn(i));
        want.extend(mlp(i));
        want.push((
            format!("blocks.{i}.adaLN_modulation.1.weight"),
            vec![4 * d, d],
        ));
        want.push((format!("blocks.{i}.adaLN_modulation.1.bias"), vec![4 * d]));
    }
    want.extend([
        ("final_layer.linear.weight".to_string(), vec![out, d]),
        ("final_layer.linear.bias".to_string(), vec![out]),
        (
            "final_layer.adaLN_modulation.1.weight".to_string(),
            vec![2 * d, d],
        ),
        (
            "final_layer.adaLN_modulation.1.bias".to_string(),
            vec![2 * d],
        ),
    ]);
    let mut adaln = DiT::new(small(Conditioning::AdaLn, true), &mut rng(0)).unwrap();
    assert_eq!(trunk_shapes(&mut adaln), want);
    // cross-attention: norm1, attn, norm_cross, cross_attn (q, kv, proj), norm2, mlp
    let mut want = Vec::new();
    for i in 0..2 {
        want.extend(norm(i, "norm1"));
        want.extend(attn(i));
        want.extend(norm(i, "norm_cross"));
        for (n, s) in [
            ("q.weight", vec![d, d]),
            ("q.bias", vec![d]),
            ("kv.weight", vec![2 * d, d]),
            ("kv.bias", vec![2 * d]),
            ("proj.weight", vec![d, d]),
            ("proj.bias", vec![d]),
        ] {
            want.push((format!("blocks.{i}.cross_attn.{n}"), s));
        }
        want.extend(norm(i, "norm2"));
        want.extend(mlp(i));
    }
    want.extend(plain_final.clone());
    let mut cross = DiT::new(small(Conditioning::CrossAttention, true), &mut rng(0)).unwrap();
    assert_eq!(trunk_shapes(&mut cross), want);
    // in-context: the plain ViT block
    let mut want = Vec::new();
    for i in 0..2 {
        want.extend(norm(i, "norm1"));
        want.extend(attn(i));
        want.extend(norm(i, "norm2"));
        want.extend(mlp(i));
    }
    want.extend(plain_final);
    let mut in_context = DiT::new(small(Conditioning::InContext, true), &mut rng(0)).unwrap();
    assert_eq!(trunk_shapes(&mut in_context), want);
    // every variant has the same embedders in front
    let mut zero = DiT::new(small(Conditioning::AdaLnZero, true), &mut rng(0)).unwrap();
    let front = |m: &mut DiT| -> Vec<(String, Vec<usize>)> {
        let n = trunk_shapes(m).len();
        let all = m.param_shapes();
        all[..all.len() - n].to_vec()
    };
    let want = front(&mut zero);
    assert_eq!(want.len(), 7);
    for m in [&mut adaln, &mut cross, &mut in_context] {
        assert_eq!(front(m), want, "{}", m.config.conditioning);
    }
}

#[test]
fn adaln_and_adaln_zero_differ_only_in_the_modulation() {
    let mut zero = DiT::new(small(Conditioning::AdaLnZero, true), &mut rng(4)).unwrap();
    let mut adaln = DiT::new(small(Conditioning::AdaLn, true), &mut rng(4)).unwrap();
    let (a, b) = (zero.param_shapes(), adaln.param_shapes());
    assert_eq!(a.len(), b.len());
    for ((name, s0), (name1, s1)) in a.iter().zip(&b) {
        assert_eq!(name, name1);
        if name.starts_with("blocks.") && name.contains("adaLN_modulation") {
            // 6D → 4D: no gates
            assert_eq!((s0[0], s1[0]), (6 * 16, 4 * 16), "{name}");
        } else {
            assert_eq!(s0, s1, "{name}");
        }
    }
    // adaLN-Zero's modulations are zero, adaLN's are Xavier (std √(2/(16 + 64)) for a block's)
    let mut mods = BTreeMap::new();
    adaln.visit("", &mut |name, p| {
        if name.ends_with("adaLN_modulation.1.weight") {
            let std = (p.value.iter().map(|v| v * v).sum::<f32>() / p.len() as f32).sqrt();
            mods.insert(name.to_string(), std);
        }
    });
    assert_eq!(mods.len(), 3);
    let want = (2.0f32 / (16.0 + 64.0)).sqrt();
    assert!((mods["blocks.0.adaLN_modulation.1.weight"] / want - 1.0).abs() < 0.15);
    assert!(mods["final_layer.adaLN_modulation.1.weight"] > 0.1);
    zero.visit("", &mut |name, p| {
        if name.contains("adaLN_modulation") {
            assert!(p.value.iter().all(|&v| v == 0.0), "{name}");
        }
    });
    // so adaLN-Zero's blocks start as the identity and adaLN's do not
    let mut r = rng(5);
    let x = random_input(&[32, 16], &mut r)
        .into_dimensionality()
        .unwrap();
    let c = random_input(&[2, 16], &mut r)
        .into_dimensionality()
        .unwrap();
    let block = |m: &DiT| m.trunk.adaln_blocks().unwrap()[0].clone();
    assert!(block(&zero).gated() && !block(&adaln).gated());
    assert_eq!(block(&zero).forward_infer(&x, &c), x);
    let moved = &block(&adaln).forward_infer(&x, &c) - &x;
    assert!(moved.iter().map(|v| v.abs()).sum::<f32>() > 1.0);
}

#[test]
fn every_variant_starts_at_zero_output_through_its_zero_final_linear() {
    for conditioning in Conditioning::ALL {
        let mut model = DiT::new(small(conditioning, true), &mut rng(6)).unwrap();
        let x = random_input(&[2, 4, 8, 8], &mut rng(7));
        let out = model.predict(&x, &[10, 900], &Condition::labels(&[3, 10]));
        assert!(out.iter().all(|&v| v == 0.0), "{conditioning}");
        // the LayerNorms of the ViT variants start at weight 1, bias 0
        model.visit("", &mut |name, p| {
            if name.contains("norm") {
                let want = if name.ends_with("weight") { 1.0 } else { 0.0 };
                assert!(p.value.iter().all(|&v| v == want), "{name}");
            }
        });
    }
}

#[test]
fn timestep_and_label_reach_the_output_of_every_variant_and_samples_do_not_mix() {
    for conditioning in Conditioning::ALL {
        let mut model = DiT::new(small(conditioning, true), &mut rng(8)).unwrap();
        randomise_normal(&mut model, 0.3, 9);
        let x = random_input(&[3, 4, 8, 8], &mut rng(10));
        let (t, y) = ([5, 400, 950], [1, 7, 10]);
        let out = model.predict(&x, &t, &Condition::labels(&y));
        let other_label = model.predict(&x, &t, &Condition::labels(&[2, 7, 10]));
        let other_time = model.predict(&x, &[6, 400, 950], &Condition::labels(&y));
        // only sample 0's conditioning changed: only sample 0's output moves
        for (what, moved) in [("label", &other_label), ("timestep", &other_time)] {
            let sample = |a: &ArrayD<f32>, b: usize| a.index_axis(ndarray::Axis(0), b).to_owned();
            assert!(
                max_diff(&sample(&out, 0), &sample(moved, 0)) > 1e-3,
                "{conditioning}: the {what} does not reach the output"
            );
            for b in 1..3 {
                assert_eq!(
                    sample(&out, b),
                    sample(moved, b),
                    "{conditioning}: sample 0's {what} changed sample {b}"
                );
            }
        }
        // each sample alone gives what it gives in the batch
        for b in 0..3 {
            let one = x
                .slice(ndarray::s![b..b + 1, .., .., ..])
                .to_owned()
                .into_dyn();
            let alone = model.predict(&one, &t[b..b + 1], &Condition::labels(&y[b..b + 1]));
            let in_batch = out
                .slice(ndarray::s![b..b + 1, .., .., ..])
                .to_owned()
                .into_dyn();
            assert!(
                max_diff(&alone, &in_batch) < 1e-4,
                "{conditioning} sample {b}"
            );
        }
    }
}

#[test]
fn the_trunk_is_the_kind_the_config_asks_for() {
    for conditioning in Conditioning::ALL {
        let model = DiT::new(small(conditioning, false), &mut rng(0)).unwrap();
        let kind = match &model.trunk {
            Trunk::AdaLn { .. } => "adaln",
            Trunk::CrossAttention { blocks, .. } => {
                assert!(blocks.iter().all(|b| b.cross.is_some()));
                "cross-attention"
            }
            Trunk::InContext { blocks, .. } => {
                assert!(blocks.iter().all(|b| b.cross.is_none()));
                "in-context"
            }
        };
        assert!(
            conditioning.name().starts_with(kind),
            "{conditioning}: {kind}"
        );
    }
}

#[test]
fn gflops_of_each_variant_match_a_hand_count() {
    // small(): T = 16 tokens, D = 16, C·p·p = 16 inputs, MLP 64, p·p·C_out = 32, depth 2.
    let patch = 16 * 16 * 16; // T · (C·p·p) · D
    let t_mlp = 256 * 16 + 16 * 16; // 256 → D → D

    // one Transformer block on n tokens: qkv + proj 4D² per token, QKᵀ and PV n²D each,
    // MLP 2·D·64 per token
    let transformer = |n: u64| n * 4 * 256 + 2 * n * n * 16 + n * 2 * 16 * 64;
    assert_eq!(transformer(16), 16384 + 8192 + 32768);
    let linear_out = 16 * 16 * 32; // the final Linear on the T image tokens
    let want = [
        // + the block's adaLN D → 6D, the final adaLN D → 2D
        (
            Conditioning::AdaLnZero,
            patch + t_mlp + 2 * (transformer(16) + 6 * 256) + 2 * 256 + linear_out,
        ),
        // D → 4D
        (
            Conditioning::AdaLn,
            patch + t_mlp + 2 * (transformer(16) + 4 * 256) + 2 * 256 + linear_out,
        ),
        // q and proj on 16 tokens (2·16·D²), kv on the 2 conditioning tokens (2·2D²),
        // QKᵀ and PV over 2 keys (2 · 16·2·D); no modulation anywhere
        (
            Conditioning::CrossAttention,
            patch
                + t_mlp
                + 2 * (transformer(16) + 2 * 16 * 256 + 2 * 2 * 256 + 2 * 16 * 2 * 16)
                + linear_out,
        ),
        // 18 tokens in every block
        (
            Conditioning::InContext,
            patch + t_mlp + 2 * transformer(18) + linear_out,
        ),
    ];
    for (conditioning, flops) in want {
        assert_eq!(
            dit_flops(&small(conditioning, true)),
            flops,
            "{conditioning}"
        );
    }
    assert_eq!(want[0].1, 134_912);
    assert_eq!(want[3].1, 147_968);
    let model = DiT::new(small(Conditioning::InContext, true), &mut rng(0)).unwrap();
    assert_eq!(model.flops(), 147_968);
    // At DiT-XL/2's size (T = 256) cross-attention costs about 15 % more than adaLN-Zero, as
    // the paper found, and in-context under 2 %.
    let xl = |conditioning| {
        let c = DiTConfig {
            conditioning,
            ..DiTConfig::named("DiT-XL/2", 32, 4, 1000).unwrap()
        };
        dit_flops(&c) as f64
    };
    let zero = xl(Conditioning::AdaLnZero);
    let cross = xl(Conditioning::CrossAttention) / zero - 1.0;
    let in_context = xl(Conditioning::InContext) / zero - 1.0;
    assert!((0.12..0.18).contains(&cross), "cross-attention +{cross}");
    assert!(
        (0.0..0.02).contains(&in_context),
        "in-context +{in_context}"
    );
}

#[test]
fn checkpoints_round_trip_each_variant_and_refuse_another_variants_tensors() {
    let tmp = TempDir::new("dit-cond");
    let path = |c: Conditioning| tmp.0.join(format!("{}.safetensors", c.name()));
    let mut models = Vec::new();
    for (k, conditioning) in Conditioning::ALL.into_iter().enumerate() {
        let mut model = DiT::new(small(conditioning, k % 2 == 0), &mut rng(11)).unwrap();
        randomise_normal(&mut model, 0.3, 12 + k as u64);
        save_dit(&path(conditioning), &mut model, &BTreeMap::new()).unwrap();
        let (_, meta) = load_tensors(&path(conditioning)).unwrap();
        assert_eq!(meta["dit.conditioning"], conditioning.name());
        let mut loaded = load_dit(&path(conditioning)).unwrap();
        assert_eq!(loaded.config, model.config);
        let mut values = Vec::new();
        model.visit("", &mut |name, p| {
            values.push((name.to_string(), p.value.clone()))
        });
        let mut k = 0;
        loaded.visit("", &mut |name, p| {
            assert_eq!((name, &p.value), (values[k].0.as_str(), &values[k].1));
            k += 1;
        });
        assert_eq!(k, values.len());
        let x = random_input(&[2, 4, 8, 8], &mut rng(13));
        let (t, y) = ([3, 600], [4, 10]);
        assert_eq!(
            loaded.predict(&x, &t, &Condition::labels(&y)),
            model.predict(&x, &t, &Condition::labels(&y))
        );
        models.push((conditioning, model.param_shapes()));
    }
    // one variant's tensors under another's metadata: an error naming a tensor that differs
    let bad = tmp.0.join("bad.safetensors");
    for (from, from_shapes) in &models {
        for (to, to_shapes) in &models {
            if from == to {
                continue;
            }
            rewrite_checkpoint(&path(*from), &path(*to), &bad, |_| {});
            let e = load_dit(&bad).map(|_| ()).unwrap_err().to_string();
            let differs = |n: &str| {
                let a = from_shapes.iter().find(|(m, _)| m == n);
                let b = to_shapes.iter().find(|(m, _)| m == n);
                a.map(|x| &x.1) != b.map(|x| &x.1)
            };
            let named = from_shapes
                .iter()
                .chain(to_shapes)
                .any(|(n, _)| differs(n) && e.contains(&format!("`{n}`")));
            assert!(named, "{from} tensors as {to}: {e}");
        }
    }
}

#[test]
fn train_with_in_context_conditioning_runs_and_its_loss_falls() {
    let tmp = TempDir::new("dit-in-context");
    // `minisora train dit-mini/2 --conditioning in-context --no-learn-sigma` on 8×8 digits
    let opts = TrainOptions {
        data: Source::Pixels(DataSource::Digits),
        n_images: 64,
        pixel_size: 8,
        steps: 60,
        batch: 16,
        lr: 1e-3,
        warmup_steps: 5,
        sample_steps: 4,
        samples_per_class: 1,
        seed: 1,
        out: tmp.0.join("run"),
        ..TrainOptions::default()
    };
    let flags = ModelFlags {
        learn_sigma: false,
        conditioning: Conditioning::InContext,
        ..ModelFlags::default()
    };
    let report = train_model("DiT-mini/2", &flags, &opts).unwrap();
    let losses = &report.losses;
    assert_eq!(losses.len(), 60);
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len() as f32;
    let (first, last) = (mean(&losses[..10]), mean(&losses[50..]));
    assert!(last < 0.7 * first, "loss {first} → {last}");
    let model = load_dit(&report.checkpoint).unwrap();
    assert_eq!(model.config.conditioning, Conditioning::InContext);
    assert!(matches!(model.trunk, Trunk::InContext { .. }));
    assert_eq!(report.gflops, model.flops() as f64 / 1e9);
}
