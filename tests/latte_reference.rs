//! Parity of the `alternating` video DiT with an independent PyTorch Latte (the reference
//! fixture, as `tests/dit_reference.rs` is for the image DiT).
//!
//! `tests/reference/latte_reference.py` builds a tiny class-conditional Latte with the module
//! structure of Vchitect/Latte `models/latte.py` (so its `state_dict` names are the
//! reference's: `blocks.{2i}` spatial, `blocks.{2i+1}` temporal, `pos_embed (1, S, D)`,
//! `temp_embed (1, F, D)`), sets every weight to a random non-zero value, runs forward and
//! backward on fixed inputs and saves weights, tables, inputs, output, loss and every parameter
//! gradient to `tests/fixtures/latte_tiny.safetensors`. Here minisora's [`VideoDiT`] (layout
//! `alternating`, temporal patch 1) loads those weights by name and must reproduce the output to
//! `1e-4` and every gradient of its hand-written backward to `1e-3`, each relative to the
//! largest magnitude of that tensor in the fixture. The fixture's clips are in Latte's
//! `(B, F, C, H, W)` layout (its metadata `clip_layout` says so); minisora's are
//! `(B, C, F, H, W)`, so the input, output and target are read with axes 1 and 2 swapped. The
//! loss is $L = \frac{1}{N}\sum_i (o_i - r_i)^2$ over every element, so
//! $\partial L / \partial o = 2 (o - r) / N$.

mod support;

use minisora::diffusion::{Condition, Denoiser, TrainableDenoiser};
use minisora::dit::DiTConfig;
use minisora::io::checkpoint::load_tensors;
use minisora::param::Parameters;
use minisora::tensor::rng;
use minisora::video::checkpoint::{load_video_dit, save_video_dit, tables};
use minisora::video::{Layout, VideoDiT, VideoDiTConfig};
use ndarray::{Array2, ArrayD, IxDyn};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use support::reference::{error_table, loss_and_grad, relative_error, Fixture};

/// Output tolerance, relative to the fixture output's largest magnitude.
const OUTPUT_TOL: f64 = 1e-4;
/// Gradient tolerance, relative to each gradient tensor's largest magnitude.
const GRAD_TOL: f64 = 1e-3;
/// The fixed tables Latte keeps in its `state_dict` (not parameters of minisora's model).
const TABLES: [&str; 2] = ["pos_embed", "temp_embed"];

/// Names in the fixture that are not parameters of the model.
fn is_parameter(name: &str) -> bool {
    !(name.starts_with("grad.")
        || name.starts_with("input.")
        || TABLES.contains(&name)
        || matches!(name, "output" | "target" | "loss"))
}

/// `(B, F, C, H, W)` ↔ `(B, C, F, H, W)`: Latte's clip layout and minisora's (an involution).
fn swap_frames_channels(a: &ArrayD<f32>) -> ArrayD<f32> {
    assert_eq!(a.ndim(), 5, "a clip tensor");
    a.view()
        .permuted_axes(IxDyn(&[0, 2, 1, 3, 4]))
        .as_standard_layout()
        .into_owned()
}

impl Fixture {
    /// The config the script used, read from its metadata (`config.*`): Latte is the
    /// `alternating` layout with per-frame patches, and its `depth` counts every block.
    fn config(&self) -> VideoDiTConfig {
        VideoDiTConfig {
            dit: DiTConfig {
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
            },
            frames: self.usize("config.num_frames"),
            temporal_patch: 1,
            layout: Layout::Alternating,
            text: None,
        }
    }

    /// A clip tensor in minisora's `(B, C, F, H, W)` layout.
    fn clip(&self, name: &str) -> ArrayD<f32> {
        swap_frames_channels(self.get(name))
    }

    /// `x` in minisora's layout, `t`, `y`.
    fn inputs(&self) -> (ArrayD<f32>, Vec<usize>, Vec<usize>) {
        (
            self.clip("input.x"),
            self.indices("input.t"),
            self.indices("input.y"),
        )
    }

    /// A fixed table `(1, N, D)` of the fixture as `(N, D)`.
    fn table(&self, name: &str) -> Array2<f32> {
        let t = self.get(name);
        assert_eq!(t.ndim(), 3, "`{name}` is (1, N, D)");
        let (n, d) = (t.shape()[1], t.shape()[2]);
        t.to_shape((n, d)).expect("contiguous").to_owned()
    }

    /// minisora's video DiT with every parameter taken from the fixture by its state_dict
    /// name, and the fixture's two tables.
    fn model(&self) -> VideoDiT {
        let mut model = VideoDiT::new(self.config(), &mut rng(0)).expect("a valid config");
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
            "minisora's parameter names differ from Latte's state_dict's"
        );
        model.set_tables(self.table("pos_embed"), self.table("temp_embed"));
        model
    }
}

/// Every parameter gradient's error relative to its fixture tensor, worst first.
fn gradient_errors(fx: &Fixture, model: &mut VideoDiT) -> Vec<(String, f64)> {
    let (x, t, y) = fx.inputs();
    model.zero_grad();
    let (out, cache) = model.forward_train(&x, &t, &Condition::labels(&y));
    let (_, d_out) = loss_and_grad(&out, &fx.clip("target"));
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
fn fixture_config_is_the_tiny_class_conditional_latte() {
    let fx = Fixture::load("latte_tiny");
    let c = fx.config();
    c.validate().expect("the fixture's config is valid");
    let d = &c.dit;
    // two (spatial, temporal) pairs, so temp_embed is added once and the second pair runs
    // on its output; several frames and heads; the null label among the labels
    assert!(d.learn_sigma && d.depth == 4 && d.num_heads >= 2 && c.frames >= 2);
    assert!(
        fx.meta("clip_layout").contains("(B, F, C, H, W)"),
        "the fixture's clips are in Latte's layout"
    );
    let (t, y) = (fx.indices("input.t"), fx.indices("input.y"));
    let (b, f, i) = (t.len(), c.frames, d.input_size);
    assert_eq!(fx.get("input.x").shape(), [b, f, d.in_channels, i, i]);
    assert_eq!(fx.get("output").shape(), [b, f, d.out_channels(), i, i]);
    assert!(
        y.contains(&d.num_classes),
        "the fixture exercises the null label"
    );
}

#[test]
fn parameter_names_and_shapes_are_latte_state_dict() {
    let fx = Fixture::load("latte_tiny");
    // `model()` asserts every parameter's name and shape, both ways.
    let mut model = fx.model();
    assert_eq!(
        model.param_shapes().len(),
        fx.tensors.keys().filter(|n| is_parameter(n)).count()
    );
    // and the two tables have Latte's names and shapes
    for (name, ours) in tables(&model) {
        assert!(TABLES.contains(&name.as_str()), "table `{name}`");
        assert_eq!(ours.shape(), fx.get(&name).shape(), "table `{name}` shape");
    }
}

#[test]
fn tables_are_latte_sincos() {
    let fx = Fixture::load("latte_tiny");
    // the model's own tables, computed from the config (not the fixture's)
    let model = VideoDiT::new(fx.config(), &mut rng(0)).expect("a valid config");
    for (name, ours) in tables(&model) {
        let err = relative_error(&ours, fx.get(&name));
        println!("{name}: {err:.3e} relative");
        // both are f32 roundings of the same f64 sines and cosines
        assert!(
            err < 1e-6,
            "{name} differs from Latte's by {err:.3e} (relative)"
        );
    }
}

#[test]
fn forward_matches_pytorch() {
    let fx = Fixture::load("latte_tiny");
    let model = fx.model();
    let (x, t, y) = fx.inputs();
    let want = fx.clip("output");
    let predicted = model.predict(&x, &t, &Condition::labels(&y));
    let err = relative_error(&predicted, &want);
    println!("predict: output {err:.3e} relative to max |output|");
    assert!(
        err < OUTPUT_TOL,
        "predict: output off by {err:.3e} (relative to max |output|)"
    );
    let (trained, _) = model.forward_train(&x, &t, &Condition::labels(&y));
    let err = relative_error(&trained, &want);
    println!("forward_train: output {err:.3e} relative to max |output|");
    assert!(err < OUTPUT_TOL, "forward_train: output off by {err:.3e}");

    let (loss, _) = loss_and_grad(&trained, &fx.clip("target"));
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
    let fx = Fixture::load("latte_tiny");
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

/// The comparisons can fail: a small change to one weight of a spatial block, a temporal
/// block or the final layer, or to one row of `temp_embed`, moves the output and the
/// gradients far beyond the tolerances.
#[test]
fn a_perturbed_weight_or_table_is_detected() {
    let fx = Fixture::load("latte_tiny");
    let (x, t, y) = fx.inputs();
    let check = |what: &str, model: &mut VideoDiT| {
        let out = model.predict(&x, &t, &Condition::labels(&y));
        let err = relative_error(&out, &fx.clip("output"));
        assert!(
            err > 10.0 * OUTPUT_TOL,
            "changing {what} by 0.05 moved the output by only {err:.3e}"
        );
        let errors = gradient_errors(&fx, model);
        println!(
            "{what} + 0.05: output {err:.3e}, worst gradient {:.3e}",
            errors[0].1
        );
        assert!(
            errors[0].1 > GRAD_TOL,
            "changing {what} left every gradient within tolerance:\n{}",
            error_table(&errors)
        );
    };
    for name in [
        "blocks.0.attn.qkv.weight",
        "blocks.3.attn.qkv.weight",
        "final_layer.adaLN_modulation.1.bias",
    ] {
        let mut model = fx.model();
        model.visit("", &mut |n, p| {
            if n == name {
                let v = p.value.as_slice_mut().expect("contiguous");
                // in `qkv` the first weight of v (rows [2D, 3D)): a q or k weight of a
                // 3-frame temporal attention moves the output too little to be a fair test
                let k = if name.ends_with("qkv.weight") {
                    2 * v.len() / 3
                } else {
                    0
                };
                v[k] += 0.05;
            }
        });
        check(name, &mut model);
    }
    // the last frame's row of the temporal table (row 0 is sin 0, cos 0 for every clip)
    let mut model = fx.model();
    let mut temp = model.temp_embed().clone();
    let last = temp.nrows() - 1;
    temp[[last, 0]] += 0.05;
    model.set_tables(model.pos_embed().clone(), temp);
    check("temp_embed[F-1, 0]", &mut model);
}

/// The fixture pins the layout, not only the names: the same weights in the `full` layout
/// (the same `blocks.{i}` names and shapes, every block attending over the whole clip) land
/// far from Latte's output.
#[test]
fn the_full_layout_with_the_same_weights_is_not_latte() {
    let fx = Fixture::load("latte_tiny");
    let mut config = fx.config();
    config.layout = Layout::Full;
    let mut model = VideoDiT::new(config, &mut rng(0)).expect("a valid config");
    model.visit("", &mut |name, p| p.value = fx.get(name).clone());
    model.set_tables(fx.table("pos_embed"), fx.table("temp_embed"));
    let (x, t, y) = fx.inputs();
    let out = model.predict(&x, &t, &Condition::labels(&y));
    let err = relative_error(&out, &fx.clip("output"));
    println!("full layout, Latte's weights: output {err:.3e}");
    assert!(
        err > 10.0 * OUTPUT_TOL,
        "the full layout reproduces Latte's output ({err:.3e})"
    );
}

/// The fixture's model saved by minisora is a Latte `state_dict`: exactly the fixture's
/// parameter and table names and shapes, and it loads back to the same outputs. The file
/// stays in `target/tmp` for `latte_reference.py --load`, which loads it into the PyTorch
/// Latte with `load_state_dict(strict=True)`.
#[test]
fn saved_checkpoint_is_a_latte_state_dict() {
    let fx = Fixture::load("latte_tiny");
    let mut model = fx.model();
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("latte_tiny_minisora.safetensors");
    save_video_dit(&path, &mut model, &BTreeMap::new()).expect("saved");
    println!("wrote {}", path.display());

    let (saved, meta) = load_tensors(&path).expect("readable");
    let want: BTreeMap<&str, &[usize]> = fx
        .tensors
        .iter()
        .filter(|(n, _)| is_parameter(n) || TABLES.contains(&n.as_str()))
        .map(|(n, v)| (n.as_str(), v.shape()))
        .collect();
    let got: BTreeMap<&str, &[usize]> =
        saved.iter().map(|(n, v)| (n.as_str(), v.shape())).collect();
    assert_eq!(got, want, "saved names and shapes vs Latte's state_dict");
    assert_eq!(
        meta.get("video.layout").map(String::as_str),
        Some("alternating")
    );
    assert_eq!(
        meta.get("video.temporal_patch").map(String::as_str),
        Some("1")
    );

    let loaded = load_video_dit(&path).expect("loads back");
    let (x, t, y) = fx.inputs();
    let a = model.predict(&x, &t, &Condition::labels(&y));
    let b = loaded.predict(&x, &t, &Condition::labels(&y));
    assert_eq!(a, b, "the reloaded model computes the same output");
}
