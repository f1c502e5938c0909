//! DiT as a model: output shapes, the reference `state_dict` names and shapes, adaLN-Zero's
//! identity at initialisation, the position embedding's values and layout, patch order, the
//! named configs and their errors, the paper's Gflops, and checkpoints (bit-exact round trip,
//! and an error naming the tensor for every way a file can be wrong).

mod support;

use minisora::diffusion::Condition;
use minisora::diffusion::{Denoiser, TrainableDenoiser};
use minisora::dit::{
    dit_flops, load_dit, patchify, pos_embed_2d, save_dit, unpatchify, ChannelOrder, Conditioning,
    DiT, DiTConfig,
};
use minisora::gradcheck::random_input;
use minisora::io::checkpoint::{load_tensors, Tensors};
use minisora::param::Parameters;
use minisora::tensor::rng;
use ndarray::{Array2, ArrayD, Axis, IxDyn};
use std::collections::BTreeMap;
use support::{four, randomise_normal, rewrite_checkpoint, small_dit, TempDir};

/// A small adaLN-Zero DiT: 8×8×4 latents, patch 2 (T = 16), D = 16, 2 heads, depth 2.
fn small(learn_sigma: bool) -> DiTConfig {
    small_dit(Conditioning::AdaLnZero, learn_sigma)
}

#[test]
fn output_shapes_follow_learn_sigma() {
    for (learn_sigma, out) in [(true, 8), (false, 4)] {
        let model = DiT::new(small(learn_sigma), &mut rng(0)).unwrap();
        assert_eq!(model.config.out_channels(), out);
        let x = random_input(&[3, 4, 8, 8], &mut rng(1));
        let t = [0, 500, 999];
        let y = model.predict(&x, &t, &Condition::labels(&[1, 2, 10]));
        assert_eq!(y.shape(), &[3, out, 8, 8]);
        let (y2, _) = model.forward_train(&x, &t, &Condition::None);
        assert_eq!(y2.shape(), &[3, out, 8, 8]);
    }
}

#[test]
fn state_dict_names_and_shapes_are_the_reference() {
    let mut model = DiT::new(small(true), &mut rng(0)).unwrap();
    let (d, c, p) = (16, 4, 2);
    let mut want: Vec<(String, Vec<usize>)> = vec![
        ("x_embedder.proj.weight".into(), vec![d, c, p, p]),
        ("x_embedder.proj.bias".into(), vec![d]),
        ("t_embedder.mlp.0.weight".into(), vec![d, 256]),
        ("t_embedder.mlp.0.bias".into(), vec![d]),
        ("t_embedder.mlp.2.weight".into(), vec![d, d]),
        ("t_embedder.mlp.2.bias".into(), vec![d]),
        ("y_embedder.embedding_table.weight".into(), vec![11, d]),
    ];
    for i in 0..2 {
        for (name, shape) in [
            ("attn.qkv.weight", vec![3 * d, d]),
            ("attn.qkv.bias", vec![3 * d]),
            ("attn.proj.weight", vec![d, d]),
            ("attn.proj.bias", vec![d]),
            ("mlp.fc1.weight", vec![4 * d, d]),
            ("mlp.fc1.bias", vec![4 * d]),
            ("mlp.fc2.weight", vec![d, 4 * d]),
            ("mlp.fc2.bias", vec![d]),
            ("adaLN_modulation.1.weight", vec![6 * d, d]),
            ("adaLN_modulation.1.bias", vec![6 * d]),
        ] {
            want.push((format!("blocks.{i}.{name}"), shape));
        }
    }
    want.extend([
        ("final_layer.linear.weight".into(), vec![p * p * 2 * c, d]),
        ("final_layer.linear.bias".into(), vec![p * p * 2 * c]),
        (
            "final_layer.adaLN_modulation.1.weight".into(),
            vec![2 * d, d],
        ),
        ("final_layer.adaLN_modulation.1.bias".into(), vec![2 * d]),
    ]);
    assert_eq!(model.param_shapes(), want);
    assert_eq!(model.pos_embed().dim(), (16, d));
    let n: usize = want.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    assert_eq!(model.num_params(), n);
}

#[test]
fn initialisation_follows_the_reference() {
    let mut model = DiT::new(small(true), &mut rng(3)).unwrap();
    let mut zero = Vec::new();
    let mut std = BTreeMap::new();
    model.visit("", &mut |name, p| {
        if p.value.iter().all(|&v| v == 0.0) {
            zero.push(name.to_string());
        }
        let s = (p.value.iter().map(|v| v * v).sum::<f32>() / p.len() as f32).sqrt();
        std.insert(name.to_string(), s);
    });
    // every bias, every adaLN modulation and the final Linear start at zero
    for name in &zero {
        assert!(
            name.ends_with("bias") || name.contains("adaLN") || name.contains("final_layer"),
            "{name} is zero"
        );
    }
    assert!(zero.contains(&"blocks.1.adaLN_modulation.1.weight".to_string()));
    assert!(zero.contains(&"final_layer.linear.weight".to_string()));
    assert!(!zero.contains(&"blocks.0.attn.qkv.weight".to_string()));
    // N(0, 0.02²) for the label table and the timestep MLP
    for name in [
        "y_embedder.embedding_table.weight",
        "t_embedder.mlp.0.weight",
        "t_embedder.mlp.2.weight",
    ] {
        assert!(
            (std[name] - 0.02).abs() < 0.006,
            "{name}: std {}",
            std[name]
        );
    }
    // Xavier-uniform: std √(2 / (fan_in + fan_out)); the patch embedding on (D, C·p·p)
    for (name, fan_in, fan_out) in [
        ("blocks.0.attn.qkv.weight", 16.0, 48.0),
        ("blocks.0.mlp.fc2.weight", 64.0, 16.0),
        ("x_embedder.proj.weight", 16.0, 16.0),
    ] {
        let want = (2.0f32 / (fan_in + fan_out)).sqrt();
        assert!(
            (std[name] / want - 1.0).abs() < 0.15,
            "{name}: std {}",
            std[name]
        );
    }
}

#[test]
fn adaln_zero_makes_every_block_the_identity_and_the_output_zero() {
    let model = DiT::new(small(true), &mut rng(5)).unwrap();
    let mut r = rng(6);
    let x = random_input(&[32, 16], &mut r)
        .into_dimensionality()
        .unwrap();
    let c = random_input(&[2, 16], &mut r)
        .into_dimensionality()
        .unwrap();
    for block in model.trunk.adaln_blocks().unwrap() {
        assert_eq!(block.forward_infer(&x, &c), x);
        assert_eq!(block.forward(&x, &c).0, x);
    }
    let latents = random_input(&[2, 4, 8, 8], &mut r);
    let out = model.predict(&latents, &[10, 900], &Condition::labels(&[3, 10]));
    assert!(out.iter().all(|&v| v == 0.0));
    // and a randomised model is not the identity
    let mut model = model;
    randomise_normal(&mut model, 0.3, 7);
    assert_ne!(
        model.trunk.adaln_blocks().unwrap()[0].forward_infer(&x, &c),
        x
    );
}

#[test]
fn pos_embed_matches_hand_computed_values() {
    // D = 8, a 2×2 grid: K = 2 frequencies, ω = 1 and 10000^(−1/2) = 0.01. Token n = 2i + j
    // is [sin j, sin .01j, cos j, cos .01j, sin i, sin .01i, cos i, cos .01i]: the column j
    // first (MAE's meshgrid(grid_w, grid_h)), then the row i.
    let e = pos_embed_2d(8, 2);
    let row = |i: f64, j: f64| -> Vec<f32> {
        [
            j.sin(),
            (0.01 * j).sin(),
            j.cos(),
            (0.01 * j).cos(),
            i.sin(),
            (0.01 * i).sin(),
            i.cos(),
            (0.01 * i).cos(),
        ]
        .iter()
        .map(|&v| v as f32)
        .collect()
    };
    assert_eq!(e.dim(), (4, 8));
    for (n, (i, j)) in [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)]
        .into_iter()
        .enumerate()
    {
        assert_eq!(e.row(n).to_vec(), row(i, j), "token {n}");
    }
    // spot values on a larger grid: D = 16 (K = 4, ω_k = 10000^(−k/4)), grid 4, token 6 = (1, 2)
    let e = pos_embed_2d(16, 4);
    assert_eq!(e[[6, 1]], (2.0f64 * 0.1).sin() as f32); // sin(j·ω₁), ω₁ = 0.1
    assert_eq!(e[[6, 4 + 2]], (2.0f64 * 0.01).cos() as f32); // cos(j·ω₂)
    assert_eq!(e[[6, 8 + 3]], (1.0f64 * 0.001).sin() as f32); // sin(i·ω₃)
    assert_eq!(e[[6, 8 + 4]], 1.0f64.cos() as f32); // cos(i·ω₀)
    let model = DiT::new(small(true), &mut rng(0)).unwrap();
    assert_eq!(model.pos_embed(), &pos_embed_2d(16, 4));
}

#[test]
fn patch_orders_round_trip_and_unpatchify_is_the_reference_einsum() {
    let (b, c, h, w, p) = (2, 3, 4, 6, 2);
    let x = four(&random_input(&[b, c, h, w], &mut rng(9)));
    for order in [ChannelOrder::First, ChannelOrder::Last] {
        let tok = patchify(x.view(), p, order);
        assert_eq!(tok.dim(), (b * 6, c * p * p));
        assert_eq!(unpatchify(tok.view(), (b, c, h, w), p, order), x);
    }
    // unpatchify: reshape (N, h, w, p, p, C), einsum nhwpqc → nchpwq
    let (gh, gw) = (h / p, w / p);
    let tok: Array2<f32> =
        Array2::from_shape_fn((b * gh * gw, p * p * c), |(r, k)| (r * 100 + k) as f32);
    let img = unpatchify(tok.view(), (b, c, h, w), p, ChannelOrder::Last);
    let reference = tok
        .into_shape_with_order(IxDyn(&[b, gh, gw, p, p, c]))
        .unwrap()
        .permuted_axes(IxDyn(&[0, 5, 1, 3, 2, 4]));
    let reference = reference
        .as_standard_layout()
        .into_shape_with_order((b, c, h, w))
        .unwrap()
        .to_owned();
    assert_eq!(img, reference);
    // the patch embedding is the stride-p conv: token (i, j) of image n, channel o
    let model = DiT::new(small(true), &mut rng(2)).unwrap();
    let x = four(&random_input(&[2, 4, 8, 8], &mut rng(3)));
    let tokens = model.x_embedder.forward_infer(x.view());
    let wgt = &model.x_embedder.weight.value;
    for (n, i, j, o) in [(0, 0, 0, 0), (1, 2, 3, 5), (1, 3, 1, 15)] {
        let mut want = model.x_embedder.bias.value[o] as f64;
        for ch in 0..4 {
            for u in 0..2 {
                for v in 0..2 {
                    want += wgt[[o, ch, u, v]] as f64 * x[[n, ch, 2 * i + u, 2 * j + v]] as f64;
                }
            }
        }
        let got = tokens[[n * 16 + i * 4 + j, o]] as f64;
        assert!(
            (got - want).abs() < 1e-5,
            "({n}, {i}, {j}, {o}): {got} vs {want}"
        );
    }
}

#[test]
fn named_configs_are_all_constructible_and_case_insensitive() {
    let sizes = [
        ("S", 12, 384, 6),
        ("B", 12, 768, 12),
        ("L", 24, 1024, 16),
        ("XL", 28, 1152, 16),
        ("tiny", 6, 128, 4),
        ("mini", 4, 64, 4),
    ];
    for (size, depth, hidden, heads) in sizes {
        for p in [2, 4, 8] {
            let c = DiTConfig::named(&format!("DiT-{size}/{p}"), 32, 4, 1000).unwrap();
            assert_eq!(
                (c.depth, c.hidden_size, c.num_heads, c.patch_size),
                (depth, hidden, heads, p)
            );
            assert!(c.learn_sigma && c.mlp_ratio == 4.0 && c.class_dropout_prob == 0.1);
            assert_eq!(c.num_patches(), (32 / p) * (32 / p));
            let lower = DiTConfig::named(&format!("dit-{}/{p}", size.to_lowercase()), 32, 4, 1000);
            assert_eq!(lower.unwrap(), c);
        }
    }
    assert_eq!(DiTConfig::names().len(), 21);
    for name in DiTConfig::names() {
        DiTConfig::named(&name, 32, 4, 10).unwrap();
    }
    // only the small ones are built
    let mut m = DiT::new(
        DiTConfig::named("DiT-mini/4", 8, 4, 10).unwrap(),
        &mut rng(0),
    )
    .unwrap();
    assert_eq!(m.trunk.adaln_blocks().unwrap().len(), 4);
    assert!(m.num_params() > 0);
    let meta = m.config.to_metadata();
    assert_eq!(DiTConfig::from_metadata(&meta).unwrap(), m.config);
}

#[test]
fn bad_names_and_configs_are_errors() {
    for bad in ["DiT-M/2", "DiT-S/3", "DiT-S", "XL-2", ""] {
        let e = DiTConfig::named(bad, 32, 4, 10).unwrap_err().to_string();
        assert!(
            e.contains("unknown DiT config") && e.contains("DiT-XL/2"),
            "{e}"
        );
    }
    // patch 8 does not divide an 8×8 latent? it does (one token); 4 does not divide 6
    let e = DiTConfig::named("DiT-S/4", 6, 4, 10)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("patch_size 4 does not divide input_size 6"),
        "{e}"
    );
    let base = small(true);
    let cases: Vec<(DiTConfig, &str)> = vec![
        (
            DiTConfig {
                num_heads: 3,
                ..base.clone()
            },
            "heads do not split",
        ),
        (
            DiTConfig {
                hidden_size: 18,
                num_heads: 2,
                ..base.clone()
            },
            "multiple of 4",
        ),
        (
            DiTConfig {
                depth: 0,
                ..base.clone()
            },
            "depth is 0",
        ),
        (
            DiTConfig {
                num_classes: 0,
                ..base.clone()
            },
            "num_classes is 0",
        ),
        (
            DiTConfig {
                patch_size: 3,
                ..base.clone()
            },
            "does not divide",
        ),
        (
            DiTConfig {
                class_dropout_prob: 1.0,
                ..base.clone()
            },
            "class_dropout_prob",
        ),
        (
            DiTConfig {
                mlp_ratio: 0.0,
                ..base.clone()
            },
            "mlp_ratio",
        ),
    ];
    for (config, want) in cases {
        let e = DiT::new(config, &mut rng(0)).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn gflops_match_the_paper() {
    // Peebles & Xie 2023, Table 4 / Figure 2: 256² images = 32² × 4 latents, 1000 classes.
    for (name, paper) in [("DiT-XL/2", 118.6), ("DiT-S/2", 6.06)] {
        let config = DiTConfig::named(name, 32, 4, 1000).unwrap();
        let g = dit_flops(&config) as f64 / 1e9;
        assert!(
            (g / paper - 1.0).abs() < 0.03,
            "{name}: {g:.3} Gflops vs {paper}"
        );
    }
    let model = DiT::new(small(true), &mut rng(0)).unwrap();
    assert_eq!(model.flops(), dit_flops(&model.config));
    // halving the patch quadruples the tokens: more than 4× the compute (attention is T²)
    let p4 = dit_flops(&DiTConfig::named("DiT-S/4", 32, 4, 1000).unwrap());
    let p2 = dit_flops(&DiTConfig::named("DiT-S/2", 32, 4, 1000).unwrap());
    assert!(p2 > 4 * p4 - p4 / 10, "{p2} vs {p4}");
}

#[test]
fn save_and_load_round_trip_bit_identically() {
    let t = TempDir::new("dit-save");
    let path = t.0.join("dit.safetensors");
    let mut model = DiT::new(small(false), &mut rng(11)).unwrap();
    randomise_normal(&mut model, 0.3, 12);
    let extra: BTreeMap<String, String> = [("train.step".to_string(), "7".to_string())].into();
    save_dit(&path, &mut model, &extra).unwrap();
    let mut loaded = load_dit(&path).unwrap();
    assert_eq!(loaded.config, model.config);
    assert_eq!(loaded.param_shapes(), model.param_shapes());
    let mut a = Vec::new();
    model.visit("", &mut |_, p| a.push(p.value.clone()));
    let mut k = 0;
    loaded.visit("", &mut |name, p| {
        assert_eq!(p.value, a[k], "{name}");
        k += 1;
    });
    assert_eq!(loaded.pos_embed(), model.pos_embed());
    let x = random_input(&[2, 4, 8, 8], &mut rng(13));
    let (t_, y) = ([3, 600], [4, 10]);
    assert_eq!(
        loaded.predict(&x, &t_, &Condition::labels(&y)),
        model.predict(&x, &t_, &Condition::labels(&y))
    );
    // the file is the reference layout: pos_embed (1, T, D) beside the parameters
    let (tensors, meta) = load_tensors(&path).unwrap();
    assert_eq!(tensors["pos_embed"].shape(), &[1, 16, 16]);
    assert_eq!(tensors.len(), model.param_shapes().len() + 1);
    assert_eq!(meta["train.step"], "7");
    assert_eq!(meta["dit.learn_sigma"], "false");
    // an extra key may not shadow the config
    let clash: BTreeMap<String, String> = [("dit.depth".to_string(), "9".to_string())].into();
    assert!(save_dit(&path, &mut model, &clash).is_err());
}

#[test]
fn corrupt_or_mismatched_files_are_errors_naming_the_tensor() {
    let t = TempDir::new("dit-bad");
    let good = t.0.join("good.safetensors");
    let bad = t.0.join("bad.safetensors");
    let mut model = DiT::new(small(true), &mut rng(1)).unwrap();
    save_dit(&good, &mut model, &BTreeMap::new()).unwrap();
    let err = |edit: &dyn Fn(&mut Tensors)| {
        rewrite_checkpoint(&good, &good, &bad, edit);
        load_dit(&bad).map(|_| ()).unwrap_err().to_string()
    };
    let e = err(&|m| {
        m.remove("pos_embed");
    });
    assert!(e.contains("`pos_embed`"), "{e}");
    let e = err(&|m| {
        m.remove("blocks.1.mlp.fc2.bias");
    });
    assert!(e.contains("`blocks.1.mlp.fc2.bias`"), "{e}");
    let e = err(&|m| {
        m.insert(
            "blocks.0.attn.qkv.weight".into(),
            ArrayD::zeros(IxDyn(&[48, 17])),
        );
    });
    assert!(
        e.contains("`blocks.0.attn.qkv.weight`") && e.contains("[48, 17]"),
        "{e}"
    );
    let e = err(&|m| {
        m.insert("pos_embed".into(), ArrayD::zeros(IxDyn(&[16, 16])));
    });
    assert!(e.contains("`pos_embed`") && e.contains("shape"), "{e}");
    // the two halves swapped: rows first, then columns, is not MAE's layout
    let e = err(&|m| {
        let pe = m["pos_embed"].clone();
        let mut swapped = pe.clone();
        let (lo, hi) = pe.view().split_at(Axis(2), 8);
        swapped.slice_mut(ndarray::s![.., .., ..8]).assign(&hi);
        swapped.slice_mut(ndarray::s![.., .., 8..]).assign(&lo);
        m.insert("pos_embed".into(), swapped);
    });
    assert!(e.contains("`pos_embed`") && e.contains("sin-cos"), "{e}");
    let e = err(&|m| {
        m.insert("extra.weight".into(), ArrayD::zeros(IxDyn(&[2])));
    });
    assert!(e.contains("`extra.weight`"), "{e}");
    // a truncated file
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_dit(&bad).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("not a valid safetensors file"), "{e}");
    // another config's tensors under this config's metadata: the shapes disagree, named
    let mut other = DiT::new(
        DiTConfig {
            hidden_size: 24,
            ..small(true)
        },
        &mut rng(0),
    )
    .unwrap();
    let other_path = t.0.join("other.safetensors");
    save_dit(&other_path, &mut other, &BTreeMap::new()).unwrap();
    rewrite_checkpoint(&other_path, &good, &bad, |_| {});
    let e = load_dit(&bad).map(|_| ()).unwrap_err().to_string();
    assert!(
        e.contains("`x_embedder.proj.weight`") && e.contains("[24, 4, 2, 2]"),
        "{e}"
    );
}
