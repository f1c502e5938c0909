//! Parity of the text encoder with an independent PyTorch module (the reference fixture).
//!
//! `tests/reference/text_reference.py` writes the pre-LN encoder from the math (masked keys,
//! zeroed padded outputs, minisora's parameter names), sets every weight to a random value,
//! runs it in float64 on padded captions and saves weights, ids, mask, output, a random `dy`
//! and every parameter gradient of $L = \sum y \cdot dy$ to
//! `tests/fixtures/text_encoder_tiny.safetensors`. Here minisora's [`TextEncoder`] loads the
//! weights by name and must reproduce the output to `1e-4` and every gradient of its
//! hand-written backward to `1e-3`, each relative to the largest magnitude of that tensor.

mod support;

use minisora::param::Parameters;
use minisora::tensor::rng;
use minisora::text::encoder::{TextEncoder, TextEncoderConfig};
use ndarray::{Array2, Ix2, Ix3};
use support::reference::{error_table, relative_error, Fixture};

const OUTPUT_TOL: f64 = 1e-4;
const GRAD_TOL: f64 = 1e-3;

#[test]
fn text_encoder_matches_pytorch_output_and_every_gradient() {
    let fx = Fixture::load("text_encoder_tiny");
    let cfg = TextEncoderConfig {
        vocab: fx.usize("config.vocab"),
        max_len: fx.usize("config.max_len"),
        width: fx.usize("config.width"),
        depth: fx.usize("config.depth"),
        heads: fx.usize("config.heads"),
    };
    let mut enc = TextEncoder::new(cfg, &mut rng(0));
    let mut loaded = 0;
    enc.visit("", &mut |name, p| {
        let v = fx.get(name);
        assert_eq!(v.shape(), p.shape(), "shape of {name}");
        p.value = v.clone();
        loaded += 1;
    });
    let ids = fx
        .get("input.ids")
        .clone()
        .into_dimensionality::<Ix2>()
        .unwrap();
    let (b, l) = ids.dim();
    let ids: Array2<usize> = ids.mapv(|v| v as usize);
    let mask: Array2<bool> = fx
        .get("input.mask")
        .clone()
        .into_dimensionality::<Ix2>()
        .unwrap()
        .mapv(|v| v == 1.0);
    let dy = fx.get("dy").clone().into_dimensionality::<Ix3>().unwrap();
    assert_eq!(dy.dim(), (b, l, cfg.width));

    let (y, cache) = enc.forward(&ids, &mask);
    let out_err = relative_error(&y.into_dyn(), fx.get("output"));
    enc.zero_grad();
    enc.backward(&cache, &dy);
    let mut errors = vec![("output".to_string(), out_err)];
    enc.visit("", &mut |name, p| {
        let want = fx.get(&format!("grad.{name}"));
        errors.push((format!("grad.{name}"), relative_error(&p.grad, want)));
    });
    // the id the script puts only at padded positions gets no gradient, in both
    let pad_only = fx.usize("config.vocab") - 1;
    let g = enc
        .token_embedding
        .weight
        .grad
        .view()
        .into_dimensionality::<Ix2>()
        .unwrap();
    assert!(g.row(pad_only).iter().all(|&v| v == 0.0));
    let bad = errors
        .iter()
        .any(|(n, e)| *e > if n == "output" { OUTPUT_TOL } else { GRAD_TOL });
    println!("{} parameters loaded\n{}", loaded, error_table(&errors));
    assert!(!bad, "differences from PyTorch:\n{}", error_table(&errors));
    assert_eq!(loaded, 2 + 12 * cfg.depth + 2);
}
