//! The text encoder: gradient checks of a block (input and parameters, with a padding mask)
//! and of the whole encoder (every parameter), the padding invariances (padded ids change no
//! output bit and get no gradient), mean pooling, parameter names, thread determinism.

mod support;

use minisora::gradcheck::{check, random_input, GradCheck};
use minisora::param::{Param, Parameters};
use minisora::tensor::{rng, Rng};
use minisora::text::encoder::{
    pooled, pooled_backward, EncoderBlock, TextEncoder, TextEncoderConfig,
};
use ndarray::{Array2, Array3, ArrayD, Ix2, Ix3};
use ndarray_rand::rand::Rng as _;
use proptest::prelude::*;

fn to3(a: &ArrayD<f32>) -> Array3<f32> {
    a.clone().into_dimensionality::<Ix3>().unwrap()
}

/// `(B, L)`: row `b` keeps a random prefix of length `1..=L`.
fn prefix_mask(b: usize, l: usize, r: &mut Rng) -> Array2<bool> {
    let lens: Vec<usize> = (0..b).map(|_| r.random_range(1..=l)).collect();
    Array2::from_shape_fn((b, l), |(i, j)| j < lens[i])
}

/// Random ids in `0..vocab`, `(B, L)`.
fn random_ids(b: usize, l: usize, vocab: usize, r: &mut Rng) -> Array2<usize> {
    Array2::from_shape_fn((b, l), |_| r.random_range(0..vocab))
}

fn config(vocab: usize, max_len: usize, heads: usize, d: usize, depth: usize) -> TextEncoderConfig {
    TextEncoderConfig {
        vocab,
        max_len,
        width: heads * d,
        depth,
        heads,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    // Head size d ≥ 4, so a LayerNorm has at least 4 channels: over 2 it is a sign function
    // (x̂ = ±1), far from linear at the finite-difference step.
    #[test]
    fn encoder_block_gradients_match_finite_differences(
        b in 1usize..3, l in 1usize..6, h in 1usize..3, d in 4usize..7, seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let mut block = EncoderBlock::new(h * d, h, &mut r);
        let x = support::tokens(&[b, l, h * d], &mut r); // rows with σ away from 0
        let mask = prefix_mask(b, l, &mut r);
        let report = check(
            &mut block,
            &[x],
            |m, xs| m.forward_infer(&to3(&xs[0]), &mask).into_dyn(),
            |m, xs, dy| {
                let (_, cache) = m.forward(&to3(&xs[0]), &mask);
                vec![m.backward(&cache, &to3(dy)).into_dyn()]
            },
            &GradCheck { seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
    }

    #[test]
    fn text_encoder_gradients_match_finite_differences(
        b in 1usize..3, l in 1usize..5, vocab in 2usize..8, h in 1usize..3, d in 4usize..6,
        depth in 1usize..3, seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let mut enc = TextEncoder::new(config(vocab, 6, h, d, depth), &mut r);
        // Step 5e-3, not the default 1e-2: a case drawn on a CI-like run (kept in
        // grad_text.proptest-regressions) had a directional error of 6.9e-3 at 1e-2 and passes
        // at 5e-3 and 2.5e-3 — truncation of the central difference, not a wrong gradient.
        // At CLIP's init (std 0.02) the first LayerNorm divides by that small std, so a
        // finite-difference step of 1e-2 is no longer small there; check the gradients at
        // unit-scale embeddings instead, the token table with a ramp along each row
        // (support::tokens) so no token's σ is near 0 (a LayerNorm curves like 1/σ²).
        enc.token_embedding.weight.value = support::tokens(&[vocab, h * d], &mut r);
        enc.positional_embedding.value = random_input(&[6, h * d], &mut r) * 0.3;
        let ids = random_ids(b, l, vocab, &mut r);
        let mask = prefix_mask(b, l, &mut r);
        let report = check(
            &mut enc,
            &[],
            |m, _| m.forward_infer(&ids, &mask).into_dyn(),
            |m, _, dy| {
                let (_, cache) = m.forward(&ids, &mask);
                m.backward(&cache, &to3(dy));
                vec![]
            },
            &GradCheck { seed, step: 5e-3, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
    }
}

/// No parameters: for checking `pooled`.
struct Pool;
impl Parameters for Pool {
    fn visit(&mut self, _: &str, _: &mut dyn FnMut(&str, &mut Param)) {}
}

#[test]
fn pooled_is_the_mean_over_valid_tokens_and_its_backward_matches() {
    let mut r = rng(3);
    let h = to3(&random_input(&[3, 4, 5], &mut r));
    let mask = prefix_mask(3, 4, &mut r);
    let p = pooled(&h, &mask);
    for b in 0..3 {
        let n = mask.row(b).iter().filter(|&&v| v).count();
        for e in 0..5 {
            let want: f32 = (0..n).map(|l| h[[b, l, e]]).sum::<f32>() / n as f32;
            assert!((p[[b, e]] - want).abs() < 1e-6);
        }
    }
    let report = check(
        &mut Pool,
        &[h.into_dyn()],
        |_, xs| pooled(&to3(&xs[0]), &mask).into_dyn(),
        |_, _, dy| {
            let dp = dy.clone().into_dimensionality::<Ix2>().unwrap();
            vec![pooled_backward(&dp, &mask).into_dyn()]
        },
        &GradCheck::default(),
    );
    assert!(report.passed, "{report:?}");
}

#[test]
fn padded_ids_change_no_output_bit_and_padded_rows_are_zero() {
    let mut r = rng(7);
    let enc = TextEncoder::new(config(20, 8, 2, 8, 2), &mut r);
    let (b, l) = (4, 8);
    let ids = random_ids(b, l, 20, &mut r);
    let mask = prefix_mask(b, l, &mut r);
    let mut other = ids.clone();
    for ((i, j), v) in other.indexed_iter_mut() {
        if !mask[[i, j]] {
            *v = (*v + 1 + j) % 20;
        }
    }
    let (y, _) = enc.forward(&ids, &mask);
    let y2 = enc.forward_infer(&other, &mask);
    assert!(y == y2, "a padded id changed the output");
    assert!(
        y == enc.forward_infer(&ids, &mask),
        "forward and forward_infer differ"
    );
    for ((i, j, _), v) in y.indexed_iter() {
        assert!(mask[[i, j]] || *v == 0.0, "padded output ({i}, {j}) is {v}");
    }
}

#[test]
fn embedding_rows_used_only_at_padding_get_exactly_zero_gradient() {
    let mut r = rng(8);
    let vocab = 12;
    let mut enc = TextEncoder::new(config(vocab, 6, 2, 4, 2), &mut r);
    let (b, l) = (3, 6);
    let mask = prefix_mask(b, l, &mut r);
    // valid tokens use ids 1..6, padded positions 0 (PAD) and 6..12
    let ids = Array2::from_shape_fn((b, l), |(i, j)| {
        if mask[[i, j]] {
            r.random_range(1..6)
        } else if j % 2 == 0 {
            0
        } else {
            r.random_range(6..vocab)
        }
    });
    let dy = to3(&random_input(&[b, l, 8], &mut r));
    let (_, cache) = enc.forward(&ids, &mask);
    enc.backward(&cache, &dy);
    let g = enc.token_embedding.weight.grad.clone();
    let g = g.into_dimensionality::<Ix2>().unwrap();
    let used: Vec<usize> = ids
        .iter()
        .zip(mask.iter())
        .filter(|(_, &m)| m)
        .map(|(&i, _)| i)
        .collect();
    for (row, grad) in g.outer_iter().enumerate() {
        let zero = grad.iter().all(|&v| v == 0.0);
        if used.contains(&row) {
            assert!(
                !zero,
                "row {row} is used by a valid token but got no gradient"
            );
        } else {
            assert!(zero, "row {row} is used only at padding but got {grad}");
        }
    }
}

#[test]
fn parameter_names_and_shapes_follow_clip() {
    let mut r = rng(0);
    let mut enc = TextEncoder::new(TextEncoderConfig::new(50), &mut r);
    let shapes = enc.param_shapes();
    let names: Vec<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();
    let mut want = vec!["token_embedding.weight", "positional_embedding"];
    let per_block = [
        "ln_1.weight",
        "ln_1.bias",
        "attn.qkv.weight",
        "attn.qkv.bias",
        "attn.proj.weight",
        "attn.proj.bias",
        "ln_2.weight",
        "ln_2.bias",
        "mlp.fc1.weight",
        "mlp.fc1.bias",
        "mlp.fc2.weight",
        "mlp.fc2.bias",
    ];
    let block_names: Vec<String> = (0..2)
        .flat_map(|i| per_block.iter().map(move |n| format!("blocks.{i}.{n}")))
        .collect();
    want.extend(block_names.iter().map(String::as_str));
    want.extend(["ln_final.weight", "ln_final.bias"]);
    assert_eq!(names, want);
    assert_eq!(shapes[0].1, [50, 64]);
    assert_eq!(shapes[1].1, [24, 64]);
    assert_eq!(shapes[4].1, [192, 64]);
    assert_eq!(shapes[10].1, [256, 64]);
    assert_eq!(enc.width(), 64);
    assert!(TextEncoderConfig {
        heads: 5,
        ..TextEncoderConfig::new(50)
    }
    .validate()
    .is_err());
}

#[test]
fn results_are_bit_identical_for_one_and_two_threads() {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut r = rng(9);
            let mut enc = TextEncoder::new(TextEncoderConfig::new(30), &mut r);
            let ids = random_ids(8, 24, 30, &mut r);
            let mask = prefix_mask(8, 24, &mut r);
            let dy = to3(&random_input(&[8, 24, 64], &mut r));
            let (y, cache) = enc.forward(&ids, &mask);
            enc.backward(&cache, &dy);
            let mut grads = Vec::new();
            enc.visit("", &mut |_, p| grads.push(p.grad.clone()));
            (y, grads)
        })
    };
    let (a, b) = (run(1), run(2));
    assert!(a == b, "results differ between 1 and 2 threads");
}
