//! Helpers shared by the test files (gradient checks, fast-vs-clear comparisons, thread
//! determinism). Each test file uses some of them.
#![allow(dead_code)]

pub mod cli;
pub mod reference;
pub mod tiny;

use minisora::dit::{Conditioning, DiTConfig};
use minisora::gradcheck::{random_input, GradCheck, Report};
use minisora::io::checkpoint::{load_tensors, Tensors, CHECKPOINT_FORMAT};
use minisora::param::Parameters;
use minisora::tensor::{init, rng, Rng};
use minisora::vae::train::TrainVaeOptions;
use minisora::vae::{Recon, VaeConfig, VaeLoss};
use ndarray::{Array, Array2, Array3, Array4, ArrayD, Dimension, Ix2, Ix3, Ix4};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::collections::HashMap;
use std::path::Path;

/// The default tolerances with the case's own checker seed (its `dy`, sampled coordinates and
/// directions), so every proptest case draws fresh ones.
pub fn seeded(seed: u64) -> GradCheck {
    GradCheck {
        seed,
        ..GradCheck::default()
    }
}

/// Runs a gradient check with [`seeded`]'s checker.
pub fn check_seeded(seed: u64, run: impl Fn(&GradCheck) -> Report) -> Report {
    run(&seeded(seed))
}

/// `check_x_c!(layer, x, c, as_x, checker)`: the gradient check of a layer `(x, c) → y` whose
/// backward adds `∂L/∂c` into a `dc` it is handed — `forward(&x, &c)`,
/// `forward_infer(&x, &c)`, `backward(&cache, &dy, &mut dc) -> dx`, as the adaLN blocks, the
/// final layers and the U-Net's ResBlock have — with respect to `x`, `c` (B, D) and every
/// parameter. `as_x` views the dynamic-rank input (`two`, `four`); `forward` must give
/// `forward_infer`'s output.
#[allow(unused_macros)] // each test file uses some of the helpers
macro_rules! check_x_c {
    ($layer:expr, $x:expr, $c:expr, $as_x:expr, $checker:expr) => {
        minisora::gradcheck::check(
            $layer,
            &[$x, $c],
            |m, xs| {
                m.forward_infer(&$as_x(&xs[0]), &support::two(&xs[1]))
                    .into_dyn()
            },
            |m, xs, dy| {
                let (x, c) = ($as_x(&xs[0]), support::two(&xs[1]));
                let (y, cache) = m.forward(&x, &c);
                assert_eq!(
                    y,
                    m.forward_infer(&x, &c),
                    "forward and forward_infer differ"
                );
                let mut dc = ndarray::Array2::zeros(c.raw_dim());
                let dx = m.backward(&cache, &$as_x(dy), &mut dc);
                vec![dx.into_dyn(), dc.into_dyn()]
            },
            $checker,
        )
    };
}
#[allow(unused_imports)]
pub(crate) use check_x_c;

/// A dynamic-rank array seen as `(B, C, H, W)`.
pub fn four(a: &ArrayD<f32>) -> Array4<f32> {
    a.clone().into_dimensionality::<Ix4>().unwrap()
}

/// A standard-normal `(B, C, H, W)` input plus a ramp from −3 to 3 across each GroupNorm slice
/// (`C/G` channels × `H·W`). The checker's step `h = 1e-2` assumes the function is smooth at
/// that scale, but a normalised value curves like $1/\sigma^2$; the ramp keeps a slice of a few
/// nearly equal values from making the central difference itself wrong (see
/// `grad_groupnorm.rs`).
pub fn spread_input(shape: [usize; 4], groups: usize, r: &mut Rng) -> ArrayD<f32> {
    let len = shape[1] / groups * shape[2] * shape[3];
    let mut x = random_input(&shape, r);
    for (k, v) in x.iter_mut().enumerate() {
        *v += 3.0 * (2.0 * (k % len) as f32 / (len.max(2) - 1) as f32 - 1.0);
    }
    x
}

/// Writes the tensors of the checkpoint at `from` with `edit` applied, and the metadata of the
/// checkpoint at `meta_from`, to `to`.
pub fn rewrite_checkpoint(
    from: &Path,
    meta_from: &Path,
    to: &Path,
    edit: impl FnOnce(&mut Tensors),
) {
    let (mut tensors, _) = load_tensors(from).unwrap();
    let (_, meta) = load_tensors(meta_from).unwrap();
    edit(&mut tensors);
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| {
            let bytes = t.iter().flat_map(|v| v.to_le_bytes()).collect();
            (n.clone(), t.shape().to_vec(), bytes)
        })
        .collect();
    let views: Vec<(&str, TensorView)> = data
        .iter()
        .map(|(n, s, b)| {
            (
                n.as_str(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let mut meta: HashMap<String, String> = meta.into_iter().collect();
    meta.insert("format".into(), CHECKPOINT_FORMAT.into());
    std::fs::write(to, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

/// 8×8×4 latents, patch 2 (T = 16), D = 16, 2 heads, depth 2, MLP 64, 10 classes.
pub fn small_dit(conditioning: Conditioning, learn_sigma: bool) -> DiTConfig {
    DiTConfig {
        input_size: 8,
        patch_size: 2,
        in_channels: 4,
        hidden_size: 16,
        depth: 2,
        num_heads: 2,
        mlp_ratio: 4.0,
        class_dropout_prob: 0.1,
        num_classes: 10,
        learn_sigma,
        conditioning,
    }
}

/// The smallest U-Net the tests build: widths 4 and 8, two groups, one ResBlock per level,
/// attention at ds 2 with one head, one channel; unconditional (set `num_classes` over it).
pub fn tiny_unet() -> minisora::unet::UNetConfig {
    minisora::unet::UNetConfig {
        in_channels: 1,
        out_channels: 1,
        model_channels: 4,
        channel_mult: vec![1, 2],
        num_res_blocks: 1,
        attention_ds: vec![2],
        num_heads: 1,
        groups: 2,
        num_classes: None,
        scale_shift: true,
    }
}

/// A fresh temporary folder, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "minisora-{tag}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A dynamic-rank array seen as a matrix.
pub fn two(a: &ArrayD<f32>) -> Array2<f32> {
    a.clone().into_dimensionality::<Ix2>().unwrap()
}

/// A dynamic-rank array seen as `(B, T, C)`.
pub fn three(a: &ArrayD<f32>) -> Array3<f32> {
    a.clone().into_dimensionality::<Ix3>().unwrap()
}

/// Tokens of `shape` (last axis `D`): standard normal plus a ramp from −3 to 3 along each
/// row. A LayerNorm's output curves like $1/\sigma^2$ in its input; the ramp keeps every
/// row's σ away from 0 so a checker's step stays small against that curvature (see
/// `grad_layernorm.rs`).
pub fn tokens(shape: &[usize], r: &mut Rng) -> ArrayD<f32> {
    let d = *shape.last().unwrap();
    let mut x = random_input(shape, r);
    for (k, v) in x.iter_mut().enumerate() {
        *v += 3.0 * (2.0 * (k % d) as f32 / (d.max(2) - 1) as f32 - 1.0);
    }
    x
}

/// Gives every all-zero tensor (adaLN modulations, zero-initialised Linears and convs, zero
/// biases) PyTorch's default uniform ±1/√fan_in, so each gradient has something to check
/// and no gate is closed.
pub fn randomise_zeros(model: &mut impl Parameters, r: &mut Rng) {
    model.visit("", &mut |_, p| {
        if p.value.iter().all(|&v| v == 0.0) {
            let fan_in: usize = if p.shape().len() > 1 {
                p.shape()[1..].iter().product()
            } else {
                p.len()
            };
            p.value = init::torch_default(p.shape(), fan_in.max(1), r);
        }
    });
}

/// Random β, and γ of random sign with |γ| in [0.5, 1.5], for a norm's affine parameters: a γ
/// near 0 makes the output nearly independent of x, so the input gradient drowns in the f32
/// rounding of β.
pub fn randomise_affine(layer: &mut impl Parameters, r: &mut Rng) {
    layer.visit("", &mut |name, p| {
        p.value = random_input(p.shape(), r);
        if name == "weight" {
            p.value
                .mapv_inplace(|v| v.signum() * (0.5 + v.abs().min(1.0)));
        }
    });
}

/// Gives every parameter `N(0, std²)` values from `seed`, so nothing is zero and no gate is
/// closed.
pub fn randomise_normal(model: &mut impl Parameters, std: f32, seed: u64) {
    let mut r = rng(seed);
    model.visit("", &mut |_, p| {
        p.value = init::normal(p.shape(), std, &mut r);
    });
}

/// Every parameter's gradient, in the model's walk order.
pub fn grads(model: &mut impl Parameters) -> Vec<(String, ArrayD<f32>)> {
    let mut g = Vec::new();
    model.visit("", &mut |name, p| {
        g.push((name.to_string(), p.grad.clone()))
    });
    g
}

/// $\max_i |a_i - b_i| / \max_i |b_i|$: the error of `a` relative to the scale of `b`.
pub fn rel_err<D: Dimension>(a: &Array<f32, D>, b: &Array<f32, D>) -> f32 {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    let err = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f32::max);
    if err == 0.0 {
        0.0
    } else {
        err / scale.max(f32::MIN_POSITIVE)
    }
}

/// A VAE small enough to train a step in a test (widths 4, 8, 8; MSE, β = 1e-3), one step,
/// writing into `out`; each test sets its data and sizes over it.
pub fn tiny_vae(out: std::path::PathBuf) -> TrainVaeOptions {
    TrainVaeOptions {
        config: VaeConfig {
            base_channels: 4,
            channel_mult: vec![1, 2, 2],
            groups: 2,
            ..VaeConfig::default()
        },
        loss: VaeLoss {
            recon: Recon::Mse,
            kl_weight: 1e-3,
        },
        steps: 1,
        out,
        ..TrainVaeOptions::default()
    }
}
