//! Parity with an independent PyTorch DiT (the reference fixture, in the spirit of llm.c's
//! `test_gpt2`).
//!
//! `tests/reference/dit_reference.py` builds a tiny DiT with the module structure of
//! facebookresearch/DiT `models.py` (so its `state_dict` names are the reference's), sets every
//! weight to a random non-zero value, runs forward and backward on fixed inputs and saves weights,
//! inputs, output, loss and every parameter gradient to `tests/fixtures/dit_tiny.safetensors`.
//! Here minisora's DiT loads those weights by name and must reproduce the output to `1e-4` and
//! every gradient of its hand-written backward to `1e-3`, each relative to the largest magnitude
//! of that tensor in the fixture. The loss is $L = \frac{1}{N}\sum_i (o_i - r_i)^2$ over every
//! element of the output `o` and the fixture's `target` `r`, so
//! $\partial L / \partial o = 2 (o - r) / N$.

mod support;

use minisora::diffusion::Condition;
use minisora::diffusion::{Denoiser, TrainableDenoiser};
use minisora::dit::{DiT, DiTConfig};
use minisora::param::Parameters;
use minisora::tensor::rng;
use ndarray::{ArrayD, IxDyn};
use std::collections::BTreeSet;
use support::reference::{error_table, loss_and_grad, relative_error, Fixture};

/// Output tolerance, relative to the fixture output's largest magnitude.
const OUTPUT_TOL: f64 = 1e-4;
/// Gradient tolerance, relative to each gradient tensor's largest magnitude.
const GRAD_TOL: f64 = 1e-3;

/// Names in the fixture that are not parameters of the model.
fn is_parameter(name: &str) -> bool {
    !(name.starts_with("grad.")
        || name.starts_with("input.")
        || matches!(name, "output" | "target" | "loss" | "pos_embed"))
}

impl Fixture {
    /// The config the script used, read from its metadata (`config.*`).
    fn config(&self) -> DiTConfig {
        DiTConfig {
            input_size: self.usize("config.input_size"),
            patch_size: self.usize("config.patch_size"),
            in_channels: self.usize("config.in_channels"),
            hidden_size: self.usize("config.hidden_size"),
            depth: self.usize("config.depth"),
            num_heads: self.usize("config.num_heads"),
            mlp_ratio: self.meta("config.mlp_ratio").parse().expect("a number"),
            class_dropout_prob: self
                .meta("config.class_dropout_prob")
                .parse()
                .expect("a number"),
            num_classes: self.usize("config.num_classes"),
            learn_sigma: self.meta("config.learn_sigma") == "true",
            conditioning: Default::default(),
        }
    }

    fn inputs(&self) -> (ArrayD<f32>, Vec<usize>, Vec<usize>) {
        (
            self.get("input.x").clone(),
            self.indices("input.t"),
            self.indices("input.y"),
        )
    }

    /// minisora's DiT with every parameter taken from the fixture by its state_dict name.
    fn model(&self) -> DiT {
        let mut model = DiT::new(self.config(), &mut rng(0)).expect("a valid config");
        let mut visited = BTreeSet::new();
        model.visit("", &mut |name, p| {
            let value = self.get(name);
            assert_eq!(
                p.shape(),
                value.shape(),
                "parameter `{name}`: shape in minisora vs the fixture"
            );
            p.value = value.clone();
            visited.insert(name.to_string());
        });
        let in_fixture: BTreeSet<String> = self
            .tensors
            .keys()
            .filter(|n| is_parameter(n))
            .cloned()
            .collect();
        assert_eq!(
            visited, in_fixture,
            "minisora's parameter names differ from the reference state_dict's"
        );
        model
    }
}

/// Every parameter gradient's error relative to its fixture tensor, worst first.
fn gradient_errors(fx: &Fixture, model: &mut DiT) -> Vec<(String, f64)> {
    let (x, t, y) = fx.inputs();
    model.zero_grad();
    let (out, cache) = model.forward_train(&x, &t, &Condition::labels(&y));
    let (_, d_out) = loss_and_grad(&out, fx.get("target"));
    model.backward_train(&cache, &d_out);
    let mut errors = Vec::new();
    model.visit("", &mut |name, p| {
        let want = fx.get(&format!("grad.{name}"));
        errors.push((name.to_string(), relative_error(&p.grad, want)));
    });
    errors.sort_by(|a, b| b.1.total_cmp(&a.1));
    errors
}

#[test]
fn fixture_config_is_the_tiny_learn_sigma_dit() {
    let fx = Fixture::load("dit_tiny");
    let c = fx.config();
    c.validate().expect("the fixture's config is valid");
    assert!(c.learn_sigma && c.depth >= 2 && c.num_heads >= 2);
    let (x, t, y) = fx.inputs();
    assert_eq!(
        x.shape(),
        [t.len(), c.in_channels, c.input_size, c.input_size]
    );
    assert!(
        y.contains(&c.num_classes),
        "the fixture exercises the null label"
    );
    assert_eq!(
        fx.get("output").shape(),
        [t.len(), c.out_channels(), c.input_size, c.input_size]
    );
}

#[test]
fn parameter_names_and_shapes_are_the_reference_state_dict() {
    let fx = Fixture::load("dit_tiny");
    // `model()` asserts every name and shape, both ways.
    let mut model = fx.model();
    assert_eq!(
        model.param_shapes().len(),
        fx.tensors.keys().filter(|n| is_parameter(n)).count()
    );
}

#[test]
fn pos_embed_is_the_mae_sincos_table() {
    let fx = Fixture::load("dit_tiny");
    let model = fx.model();
    let ours = model.pos_embed();
    let want = fx.get("pos_embed");
    let (t, d) = ours.dim();
    assert_eq!(want.shape(), [1, t, d], "pos_embed shape");
    let want = want.to_shape(IxDyn(&[t, d])).unwrap().to_owned();
    let err = relative_error(&ours.clone().into_dyn(), &want);
    // Both are f32 roundings of the same f64 sines and cosines.
    assert!(
        err < 1e-6,
        "pos_embed differs from MAE's by {err:.3e} (relative)"
    );
}

#[test]
fn forward_matches_pytorch() {
    let fx = Fixture::load("dit_tiny");
    let model = fx.model();
    let (x, t, y) = fx.inputs();
    let want = fx.get("output");
    let predicted = model.predict(&x, &t, &Condition::labels(&y));
    let err = relative_error(&predicted, want);
    assert!(
        err < OUTPUT_TOL,
        "predict: output off by {err:.3e} (relative to max |output|)"
    );
    let (trained, _) = model.forward_train(&x, &t, &Condition::labels(&y));
    let err = relative_error(&trained, want);
    println!("output: {err:.3e} relative to max |output|");
    assert!(err < OUTPUT_TOL, "forward_train: output off by {err:.3e}");

    let (loss, _) = loss_and_grad(&trained, fx.get("target"));
    let want_loss = fx.get("loss").iter().next().copied().expect("a scalar") as f64;
    let rel = (loss - want_loss).abs() / want_loss.abs();
    println!("loss: {loss} vs PyTorch {want_loss} ({rel:.3e} relative)");
    assert!(
        rel < OUTPUT_TOL,
        "loss {loss} vs PyTorch {want_loss} ({rel:.3e} relative)"
    );
}

#[test]
fn every_gradient_matches_pytorch() {
    let fx = Fixture::load("dit_tiny");
    let mut model = fx.model();
    let errors = gradient_errors(&fx, &mut model);
    println!("gradient errors, worst first:\n{}", error_table(&errors));
    let (worst, err) = &errors[0];
    assert!(
        *err < GRAD_TOL,
        "gradient of `{worst}` off by {err:.3e} (relative to its max |grad|); all:\n{}",
        error_table(&errors)
    );
}

/// The comparisons can fail: a small change to one weight moves the output and the gradients
/// far beyond the tolerances.
#[test]
fn a_perturbed_weight_is_detected() {
    let fx = Fixture::load("dit_tiny");
    let (x, t, y) = fx.inputs();
    for name in [
        "blocks.1.attn.qkv.weight",
        "y_embedder.embedding_table.weight",
        "final_layer.adaLN_modulation.1.bias",
    ] {
        let mut model = fx.model();
        model.visit("", &mut |n, p| {
            if n == name {
                // An entry the fixture's inputs use (the table row of the first label).
                let k = if name.starts_with("y_embedder") {
                    let d = p.shape()[1];
                    y[0] * d
                } else {
                    0
                };
                let v = p.value.as_slice_mut().expect("contiguous");
                v[k] += 0.05;
            }
        });
        let out = model.predict(&x, &t, &Condition::labels(&y));
        let err = relative_error(&out, fx.get("output"));
        assert!(
            err > 10.0 * OUTPUT_TOL,
            "changing {name} by 0.05 moved the output by only {err:.3e}"
        );
        let errors = gradient_errors(&fx, &mut model);
        println!(
            "{name} + 0.05: output {err:.3e}, worst gradient {:.3e}",
            errors[0].1
        );
        assert!(
            errors[0].1 > GRAD_TOL,
            "changing {name} left every gradient within tolerance:\n{}",
            error_table(&errors)
        );
    }
}
