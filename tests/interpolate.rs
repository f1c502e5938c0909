//! Interpolating between classes (`minisora interpolate`): a blend of two classes' label
//! embeddings at weight 0 is exactly the `from` class, at weight 1 exactly the `to` class, for
//! DiT (every conditioning) and the U-Net, guided or not; slerp turns half the angle and
//! averages the length at s = ½; the command writes its grid, its GIF and its JSON line from
//! one shared noise; and every bad input is an error naming the fix.

mod support;

use minisora::diffusion::{lerp, slerp, Blend, Condition, Denoiser, Guided};
use minisora::dit::{save_dit, Conditioning, DiT, DiTConfig};
use minisora::error::Error;
use minisora::gradcheck::random_input;
use minisora::interpolate::{blend_rows, interpolate, InterpolateRequest};
use minisora::io::checkpoint::save_checkpoint;
use minisora::io::metadata::list_text;
use minisora::tensor::rng;
use minisora::unet::{UNet, UNetConfig};
use ndarray::{array, Array1, ArrayD, Axis};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::{randomise_normal, small_dit, tiny_unet, TempDir};

/// The tests' tiny U-Net with `num_classes`.
fn small_unet(num_classes: Option<usize>) -> UNetConfig {
    UNetConfig {
        num_classes,
        ..tiny_unet()
    }
}

fn blend(from: usize, to: usize, weight: f32, spherical: bool) -> Blend {
    Blend {
        from,
        to,
        weight,
        spherical,
    }
}

/// `model`'s predictions under blends of (3 → 8), (3 → 8) and (1 → 7), lerp and slerp, at
/// weight 0 and 1 are its predictions for the labels (3, 3, 1) and (8, 8, 7), to the bit —
/// plain and with guidance against the null label — and a blend halfway is neither.
fn endpoints_are_the_labels(model: &dyn Denoiser, x: &ArrayD<f32>) {
    let t = [10, 500, 900];
    let at = |w: f32| {
        Condition::blends(&[
            blend(3, 8, w, false),
            blend(3, 8, w, true),
            blend(1, 7, w, true),
        ])
    };
    let (from, to) = (Condition::labels(&[3, 3, 1]), Condition::labels(&[8, 8, 7]));
    let guided = Guided {
        model,
        scale: 4.0,
        channels: x.shape()[1],
    };
    for m in [model, &guided as &dyn Denoiser] {
        assert_eq!(m.predict(x, &t, &at(0.0)), m.predict(x, &t, &from));
        assert_eq!(m.predict(x, &t, &at(1.0)), m.predict(x, &t, &to));
    }
    // The null of a blend is the null label.
    assert_eq!(
        model.predict(x, &t, &at(0.5).null()),
        model.predict(x, &t, &from.null())
    );
    let mid = model.predict(x, &t, &at(0.5));
    assert_ne!(mid, model.predict(x, &t, &from));
    assert_ne!(mid, model.predict(x, &t, &to));
}

#[test]
fn dit_blends_end_on_the_labels_for_every_conditioning() {
    for c in Conditioning::ALL {
        let mut model = DiT::new(small_dit(c, true), &mut rng(1)).unwrap();
        randomise_normal(&mut model, 0.2, 2);
        let x = random_input(&[3, 4, 8, 8], &mut rng(3));
        endpoints_are_the_labels(&model, &x);
    }
}

#[test]
fn unet_blends_end_on_the_labels() {
    let mut model = UNet::new(small_unet(Some(10)), &mut rng(1)).unwrap();
    randomise_normal(&mut model, 0.2, 2);
    let x = random_input(&[3, 1, 8, 8], &mut rng(3));
    endpoints_are_the_labels(&model, &x);
}

#[test]
fn both_paths_start_and_end_on_the_rows_to_the_bit() {
    let (a, b) = (array![0.3f32, -1.7, 2.0], array![-0.9f32, 0.4, 0.05]);
    for spherical in [false, true] {
        let at = |w| blend(0, 1, w, spherical).mix(a.view(), b.view());
        assert_eq!(at(0.0), a);
        assert_eq!(at(1.0), b);
    }
}

fn norm(v: &Array1<f32>) -> f64 {
    v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt()
}

fn angle(u: &Array1<f32>, v: &Array1<f32>) -> f64 {
    let dot: f64 = u.iter().zip(v).map(|(&x, &y)| x as f64 * y as f64).sum();
    (dot / (norm(u) * norm(v))).clamp(-1.0, 1.0).acos()
}

#[test]
fn slerp_halfway_turns_half_the_angle_and_averages_the_length() {
    // Lengths 3 and 1 at 100°, in 4-D.
    let omega = 100f64.to_radians();
    let a = array![3.0f32, 0.0, 0.0, 0.0];
    let b = array![omega.cos() as f32, omega.sin() as f32, 0.0, 0.0];
    let mid = slerp(a.view(), b.view(), 0.5);
    assert!((angle(&a, &b) - omega).abs() < 1e-6);
    assert!((angle(&mid, &a) - omega / 2.0).abs() < 1e-5, "{mid}");
    assert!((angle(&mid, &b) - omega / 2.0).abs() < 1e-5, "{mid}");
    assert!((norm(&mid) - 2.0).abs() < 1e-5, "|mid| = {}", norm(&mid));
    // A quarter of the way: a quarter of the angle, the length 3·¾ + 1·¼.
    let q = slerp(a.view(), b.view(), 0.25);
    assert!((angle(&q, &a) - omega / 4.0).abs() < 1e-5);
    assert!((norm(&q) - 2.5).abs() < 1e-5);
    // Lerp halfway is the mean, shorter than either end's length would suggest.
    assert_eq!(lerp(a.view(), b.view(), 0.5), (&a + &b) / 2.0);
    // Equal lengths: the textbook formula.
    let c = &b * 3.0;
    let s = 0.3f64;
    let textbook = &a * (((1.0 - s) * omega).sin() / omega.sin()) as f32
        + &c * ((s * omega).sin() / omega.sin()) as f32;
    let ours = slerp(a.view(), c.view(), s as f32);
    assert!(ours
        .iter()
        .zip(&textbook)
        .all(|(x, y)| (x - y).abs() < 1e-5));
    // Parallel vectors (Ω = 0) and a zero vector fall back to lerp.
    let twice = &a * 2.0;
    assert_eq!(
        slerp(a.view(), twice.view(), 0.5),
        lerp(a.view(), twice.view(), 0.5)
    );
    let zero = Array1::zeros(4);
    assert_eq!(
        slerp(a.view(), zero.view(), 0.5),
        lerp(a.view(), zero.view(), 0.5)
    );
}

#[test]
fn the_grid_is_a_linear_row_then_a_spherical_row() {
    let Condition::Blend(entries) = blend_rows(3, 8, 5) else {
        panic!("not a blend")
    };
    let entries: Vec<Blend> = entries.into_iter().map(Option::unwrap).collect();
    assert_eq!(entries.len(), 10);
    let weights: Vec<f32> = entries[..5].iter().map(|b| b.weight).collect();
    assert_eq!(weights, [0.0, 0.25, 0.5, 0.75, 1.0]);
    assert!(entries[..5].iter().all(|b| !b.spherical));
    assert!(entries[5..].iter().all(|b| b.spherical));
    assert_eq!(
        entries[..5].iter().map(|b| b.weight).collect::<Vec<_>>(),
        weights
    );
    assert!(entries.iter().all(|b| (b.from, b.to) == (3, 8)));
}

/// The metadata `minisora train` writes, for a pixel-space model of 1×8×8 with `classes`.
fn train_metadata(model: &str, classes: usize, variance: &str) -> BTreeMap<String, String> {
    [
        ("model", model.to_string()),
        ("train.shape", list_text(&[1, 8, 8])),
        ("train.num_classes", classes.to_string()),
        ("train.scale_factor", "1".into()),
        ("train.latent", "false".into()),
        ("diffusion.schedule", "linear".into()),
        ("diffusion.timesteps", "1000".into()),
        ("diffusion.prediction", "Epsilon".into()),
        ("diffusion.variance", variance.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A randomised pixel-space DiT checkpoint (1×8×8, 10 classes) at `dir/dit.safetensors`.
fn dit_checkpoint(dir: &Path) -> PathBuf {
    let config = DiTConfig {
        in_channels: 1,
        ..small_dit(Conditioning::AdaLnZero, true)
    };
    let mut model = DiT::new(config, &mut rng(1)).unwrap();
    randomise_normal(&mut model, 0.2, 2);
    let path = dir.join("dit.safetensors");
    save_dit(
        &path,
        &mut model,
        &train_metadata("dit", 10, "LearnedRange"),
    )
    .unwrap();
    path
}

/// A randomised pixel-space U-Net checkpoint (1×8×8), class-conditional or not.
fn unet_checkpoint(dir: &Path, classes: Option<usize>, name: &str) -> PathBuf {
    let config = small_unet(classes);
    let mut model = UNet::new(config.clone(), &mut rng(1)).unwrap();
    randomise_normal(&mut model, 0.2, 2);
    let mut meta = train_metadata("unet", classes.unwrap_or(0), "FixedSmall");
    meta.extend(config.to_metadata());
    let path = dir.join(name);
    save_checkpoint(&path, &mut model, &meta).unwrap();
    path
}

fn request(ckpt: &Path, out: PathBuf) -> InterpolateRequest {
    InterpolateRequest {
        ckpt: ckpt.to_path_buf(),
        from: 3,
        to: 8,
        steps: 4,
        out,
        vae: PathBuf::from("no-vae.safetensors"),
        seed: 0,
        sample_steps: 3,
        cfg_scale: 2.0,
    }
}

fn gif_frames(path: &Path) -> usize {
    use image::AnimationDecoder;
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let decoder = image::codecs::gif::GifDecoder::new(file).unwrap();
    decoder.into_frames().count()
}

#[test]
fn interpolate_writes_the_grid_and_the_morph_for_both_families() {
    let tmp = TempDir::new("interpolate");
    let dir = &tmp.0;
    for (ckpt, family) in [
        (dit_checkpoint(dir), "dit"),
        (unet_checkpoint(dir, Some(10), "unet.safetensors"), "unet"),
    ] {
        let out = dir.join(format!("{family}/blend.png"));
        let done = interpolate(&request(&ckpt, out.clone())).unwrap();
        assert_eq!(done.model, family);
        assert_eq!(
            (done.png.clone(), done.gif.clone()),
            (out.clone(), out.with_extension("gif"))
        );
        assert!(done.png.is_file() && done.gif.is_file());
        let grid = image::open(&done.png).unwrap();
        // 4 columns and 2 rows of 8×8 pictures with 2 pixels of padding, 4× enlarged.
        assert_eq!(
            (grid.width(), grid.height()),
            ((4 * 10 + 2) * 4, (2 * 10 + 2) * 4)
        );
        // The spherical row there and back: 0, 1, 2, 3, 2, 1.
        assert_eq!(gif_frames(&done.gif), 6);
        // One x_T for all: both rows start on `from` and end on `to`, to the bit.
        let p = &done.pixels;
        assert_eq!(p.dim(), (8, 1, 8, 8));
        let col = |i: usize| p.index_axis(Axis(0), i).to_owned();
        assert_eq!(col(0), col(4));
        assert_eq!(col(3), col(7));
        assert_ne!(col(0), col(3));
    }
}

/// The error of `interpolate(req)`, as the user reads it.
fn error(req: &InterpolateRequest) -> String {
    let e: Error = interpolate(req).expect_err("bad input was accepted");
    e.to_string()
}

fn says(message: &str, needles: &[&str]) {
    for n in needles {
        assert!(message.contains(n), "no {n:?} in: {message}");
    }
}

#[test]
fn bad_input_is_an_error_naming_the_fix() {
    let tmp = TempDir::new("interpolate-bad");
    let dir = &tmp.0;
    let ckpt = dit_checkpoint(dir);
    let ok = request(&ckpt, dir.join("blend.png"));
    let with = |edit: &dyn Fn(&mut InterpolateRequest)| {
        let mut r = ok.clone();
        edit(&mut r);
        error(&r)
    };
    says(
        &with(&|r| r.ckpt = dir.join("missing.safetensors")),
        &["no checkpoint at", "missing.safetensors", "--ckpt"],
    );
    says(
        &with(&|r| r.from = 10),
        &[
            "--from 10 is out of range",
            "10 classes",
            "--from between 0 and 9",
        ],
    );
    says(
        &with(&|r| r.to = 12),
        &["--to 12 is out of range", "--to between 0 and 9"],
    );
    for steps in [0, 1] {
        says(
            &with(&|r| r.steps = steps),
            &[&format!("--steps {steps}"), "--steps 2 or more"],
        );
    }
    says(
        &with(&|r| r.sample_steps = 0),
        &["--sample-steps 0", "between 1 and 1000"],
    );
    says(&with(&|r| r.cfg_scale = -1.0), &["--cfg-scale -1", "≥ 0"]);
    says(
        &with(&|r| r.out = dir.join("blend.gif")),
        &["written as a PNG", "ending in .png"],
    );
    let unconditional = unet_checkpoint(dir, None, "plain.safetensors");
    says(
        &with(&|r| r.ckpt = unconditional.clone()),
        &["is unconditional", "class-conditional checkpoint"],
    );
    // A latent model whose VAE is missing.
    let latent = dir.join("latent.safetensors");
    let mut model = UNet::new(small_unet(Some(10)), &mut rng(1)).unwrap();
    let mut meta = train_metadata("unet", 10, "FixedSmall");
    meta.extend(small_unet(Some(10)).to_metadata());
    meta.insert("train.latent".into(), "true".into());
    save_checkpoint(&latent, &mut model, &meta).unwrap();
    says(
        &with(&|r| r.ckpt = latent.clone()),
        &["no VAE checkpoint at no-vae.safetensors", "--vae"],
    );
    assert!(!dir.join("blend.png").exists(), "an error wrote the grid");
}

#[test]
fn the_command_prints_one_json_line_and_never_panics() {
    let tmp = TempDir::new("interpolate-cli");
    let dir = &tmp.0;
    let ckpt = dit_checkpoint(dir);
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_minisora"))
            .current_dir(dir)
            .args(["interpolate", "--ckpt", ckpt.to_str().unwrap(), "--to", "8"])
            .args(["--steps", "3", "--sample-steps", "2", "--out", "b.png"])
            .args(extra)
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };
    let (ok, stdout, stderr) = run(&["--from", "3"]);
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.lines().last().unwrap(),
        r#"{"from":3,"to":8,"steps":3,"model":"dit","png":"b.png","gif":"b.gif"}"#
    );
    let (ok, _, stderr) = run(&["--from", "10"]);
    assert!(!ok && !stderr.contains("panicked"), "{stderr}");
    says(&stderr, &["--from 10 is out of range", "fix:"]);
}
