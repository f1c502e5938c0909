//! Parity of DiT's block with a caption branch (PixArt-α's block structure: adaLN-Zero
//! self-attention, the caption cross-attention with its padding mask, adaLN-Zero MLP) with an
//! independent PyTorch module (the reference fixture).
//!
//! `tests/reference/caption_block_reference.py` writes the block from the math with
//! minisora's parameter names, sets every weight to a random non-zero value (the
//! cross-attention's `proj` and the modulation included), runs it in float64 on tokens, a
//! conditioning, a padded caption context and its mask, and saves weights, inputs, output, a
//! random `dy` and the gradient of $L = \sum y \cdot dy$ with respect to every input and
//! parameter to `tests/fixtures/caption_block_tiny.safetensors`. Here minisora's [`DiTBlock`]
//! (`with_caption`) loads the weights by name and must reproduce the output to `1e-4` and
//! every gradient of its hand-written backward to `1e-3`, each relative to the largest
//! magnitude of that tensor.

mod support;

use minisora::dit::{Context, DiTBlock};
use minisora::param::Parameters;
use minisora::tensor::rng;
use ndarray::{Array2, Array3, Ix2, Ix3};
use support::reference::{error_table, relative_error, Fixture};

const OUTPUT_TOL: f64 = 1e-4;
const GRAD_TOL: f64 = 1e-3;

#[test]
fn caption_block_matches_pytorch_output_and_every_gradient() {
    let fx = Fixture::load("caption_block_tiny");
    let (d, heads, hidden) = (
        fx.usize("config.dim"),
        fx.usize("config.heads"),
        fx.usize("config.mlp_hidden"),
    );
    let (b, t, l) = (
        fx.usize("config.batch"),
        fx.usize("config.tokens"),
        fx.usize("config.max_len"),
    );
    let mut r = rng(0);
    let mut block = DiTBlock::new(d, heads, hidden, &mut r).with_caption(&mut r);
    let mut loaded = 0;
    block.visit("", &mut |name, p| {
        let v = fx.get(name);
        assert_eq!(v.shape(), p.shape(), "shape of {name}");
        p.value = v.clone();
        loaded += 1;
    });
    let three = |name: &str| fx.get(name).clone().into_dimensionality::<Ix3>().unwrap();
    let x = three("input.x").into_shape_with_order((b * t, d)).unwrap(); // (B·T, D) rows
    let c = fx
        .get("input.c")
        .clone()
        .into_dimensionality::<Ix2>()
        .unwrap();
    let mask: Array2<bool> = fx
        .get("input.mask")
        .clone()
        .into_dimensionality::<Ix2>()
        .unwrap()
        .mapv(|v| v == 1.0);
    let ctx = Context {
        tokens: three("input.context"),
        mask,
    };
    assert_eq!(ctx.tokens.dim(), (b, l, d));
    let dy = three("dy").into_shape_with_order((b * t, d)).unwrap();

    // one sequence of T tokens per sample, as the reference's attention
    let (y, cache) = block.forward_seq(&x, &c, t, Some(&ctx));
    assert_eq!(y, block.forward_infer_seq(&x, &c, t, Some(&ctx)));
    let y = y.into_shape_with_order((b, t, d)).unwrap().into_dyn();
    let mut errors = vec![("output".to_string(), relative_error(&y, fx.get("output")))];
    block.zero_grad();
    let mut dc = Array2::zeros(c.raw_dim());
    let mut dctx = Array3::zeros(ctx.tokens.raw_dim());
    let dx = block.backward_seq(&cache, &dy, &mut dc, Some(&mut dctx));
    let dx = dx.into_shape_with_order((b, t, d)).unwrap().into_dyn();
    for (name, got) in [
        ("x", dx),
        ("c", dc.into_dyn()),
        ("context", dctx.clone().into_dyn()),
    ] {
        let key = format!("grad.input.{name}");
        errors.push((key.clone(), relative_error(&got, fx.get(&key))));
    }
    block.visit("", &mut |name, p| {
        let want = fx.get(&format!("grad.{name}"));
        errors.push((format!("grad.{name}"), relative_error(&p.grad, want)));
    });
    // the caption's padding gets no gradient, in both
    for ((i, j), &valid) in ctx.mask.indexed_iter() {
        if !valid {
            assert!(dctx.slice(ndarray::s![i, j, ..]).iter().all(|&g| g == 0.0));
        }
    }
    let bad = errors
        .iter()
        .any(|(n, e)| *e > if n == "output" { OUTPUT_TOL } else { GRAD_TOL });
    println!("{loaded} parameters loaded\n{}", error_table(&errors));
    assert!(!bad, "differences from PyTorch:\n{}", error_table(&errors));
    // attn 4, cross_attn 6, mlp 4, adaLN 2: and the fixture holds no other weight
    assert_eq!(loaded, 16);
    let weights = fx.tensors.keys().filter(|n| {
        !(n.starts_with("grad.") || n.starts_with("input.") || *n == "dy" || *n == "output")
    });
    assert_eq!(weights.count(), loaded);
}
