//! The image trainer end to end on a tiny stand-in denoiser (an MLP over the flattened image
//! with a label embedding) and tiny data: it lowers the loss, drops labels at the asked rate,
//! writes its figures and a checkpoint that reloads, runs on VAE latents, and rejects bad
//! inputs with clear errors.

mod support;

use support::tiny::{diffusion, Tiny};

use minisora::data::DataSource;
use minisora::diffusion::{
    BetaSchedule, Condition, Diffusion, LossType, Prediction, Schedule, VarianceType,
};
use minisora::io::checkpoint::{load_checkpoint, read_metadata};
use minisora::param::Parameters;
use minisora::tensor::rng;
use minisora::train::{train as train_images, Source, TrainData, TrainOptions};
use minisora::vae::encode::encode_dataset;
use minisora::vae::train::{train_vae, TrainVaeOptions};
use ndarray::ArrayD;
use std::path::{Path, PathBuf};
use support::{tiny_vae, TempDir};

/// 8×8 digits in pixel space.
fn pixels(out: PathBuf, steps: u64) -> TrainOptions {
    TrainOptions {
        data: Source::Pixels(DataSource::Digits),
        n_images: 200,
        pixel_size: 8,
        steps,
        batch: 16,
        lr: 2e-3,
        guidance: 2.0,
        sample_steps: 10,
        samples_per_class: 2,
        seed: 5,
        out,
        ..TrainOptions::default()
    }
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

fn param_values(m: &mut impl Parameters) -> Vec<ArrayD<f32>> {
    let mut v = Vec::new();
    m.visit("", &mut |_, p| v.push(p.value.clone()));
    v
}

#[test]
fn training_lowers_the_loss_drops_labels_and_writes_a_reloadable_checkpoint() {
    let tmp = TempDir::new("pixels");
    let dir = tmp.0.clone();
    let opts = pixels(dir.clone(), 80);
    let data = TrainData::load(&opts).unwrap();
    assert_eq!(data.sample_shape(), &[1, 8, 8]);
    let mut model = Tiny::new(64, 64, 10, &mut rng(1));
    let info = model.info(1);
    let report = train_images(&mut model, &info, &diffusion(), &data, &opts).unwrap();

    let l = &report.losses;
    assert_eq!(l.len(), 80);
    let (first, last) = (mean(&l[..10]), mean(&l[70..]));
    assert!(last < 0.8 * first, "loss {first:.4} → {last:.4}");
    assert!(report.final_loss.is_finite() && report.seconds_per_step > 0.0);
    assert_eq!(report.gflops, 1234e-9);

    // 80 steps × 16 labels; about 10 % are the null label 10, none out of range.
    let seen = model.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 80 * 16);
    let nulls = seen.iter().filter(|&&y| y == 10).count() as f64 / seen.len() as f64;
    assert!((0.06..0.14).contains(&nulls), "null label rate {nulls}");
    assert!(seen.iter().all(|&y| y <= 10));
    assert!((0..10).all(|c| seen.contains(&c)));

    for f in ["samples.png", "denoise.png", "loss.png", "tiny.safetensors"] {
        assert!(dir.join(f).is_file(), "{f} was not written");
    }
    // 10 rows of 2 samples, 8×8 upscaled 4×, 2 px padding (before upscaling).
    let grid = image::open(dir.join("samples.png")).unwrap();
    assert_eq!(
        (grid.width(), grid.height()),
        ((2 * 10 + 2) * 4, (10 * 10 + 2) * 4)
    );

    // The checkpoint holds the EMA weights the model ends with, and its metadata.
    let mut fresh = Tiny::new(64, 64, 10, &mut rng(99));
    assert_ne!(param_values(&mut fresh), param_values(&mut model));
    let meta = load_checkpoint(&report.checkpoint, &mut fresh).unwrap();
    assert_eq!(param_values(&mut fresh), param_values(&mut model));
    assert_eq!(meta["model"], "tiny");
    assert_eq!(meta["weights"], "ema");
    assert_eq!(meta["tiny.classes"], "10");
    assert_eq!(meta["train.steps"], "80");
    assert_eq!(read_metadata(&report.checkpoint).unwrap(), meta);
}

#[test]
fn label_dropout_hits_its_rate() {
    let labels: Vec<usize> = (0..20_000).map(|i| i % 10).collect();
    for p in [0.0f32, 0.1, 0.5] {
        let out = Condition::labels(&labels).dropped(p, &mut rng(7));
        let out = out.label_ids(10).unwrap();
        let rate = out.iter().filter(|&&y| y == 10).count() as f32 / out.len() as f32;
        assert!((rate - p).abs() < 0.01, "asked {p}, got {rate}");
        // A label is either kept or nulled, never changed to another class.
        assert!(out.iter().zip(&labels).all(|(&o, &l)| o == l || o == 10));
    }
}

#[test]
fn trains_on_vae_latents_and_decodes_the_samples() {
    let tmp = TempDir::new("latents");
    let dir = tmp.0.clone();
    let vae_opts = TrainVaeOptions {
        batch: 8,
        n_train: 32,
        n_held_out: 8,
        ..tiny_vae(dir.join("vae"))
    };
    let vae = train_vae(&vae_opts).unwrap().checkpoint;
    let latents = dir.join("latents.safetensors");
    encode_dataset(&vae, &DataSource::Digits, 40, 0, &latents).unwrap();
    let opts = TrainOptions {
        data: Source::Latents(latents.clone()),
        vae: vae.clone(),
        ..pixels(dir.join("run"), 30)
    };
    let data = TrainData::load(&opts).unwrap();
    assert!(data.is_latent());
    assert_eq!(data.sample_shape(), &[4, 8, 8]);
    let mut model = Tiny::new(256, 32, 10, &mut rng(2));
    let info = model.info(4);
    train_images(&mut model, &info, &diffusion(), &data, &opts).unwrap();
    // Decoded to 32×32 pixels: 10 rows of 2, upscaled 2×.
    let grid = image::open(dir.join("run/samples.png")).unwrap();
    assert_eq!(
        (grid.width(), grid.height()),
        ((2 * 34 + 2) * 2, (10 * 34 + 2) * 2)
    );
    assert!(dir.join("run/denoise.png").is_file());

    // The VAE is checked before training: a missing one is a clear error.
    let no_vae = TrainOptions {
        vae: dir.join("nope.safetensors"),
        ..opts.clone()
    };
    let err = train_images(&mut model, &info, &diffusion(), &data, &no_vae).unwrap_err();
    assert!(err.to_string().contains("minisora train-vae"), "{err}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let tmp = TempDir::new("bad");
    let dir = tmp.0.clone();
    // A missing latent file says how to make one.
    let missing = TrainOptions {
        data: Source::Latents(dir.join("none.safetensors")),
        ..pixels(dir.clone(), 5)
    };
    let err = TrainData::load(&missing).unwrap_err().to_string();
    assert!(
        err.contains("no latent file") && err.contains("minisora encode"),
        "{err}"
    );
    assert!(Source::parse("latents:").is_err());
    assert_eq!(
        Source::parse("latents:a/b.safetensors").unwrap(),
        Source::Latents("a/b.safetensors".into())
    );
    assert_eq!(
        Source::parse("digits").unwrap(),
        Source::Pixels(DataSource::Digits)
    );

    let opts = pixels(dir.join("run"), 5);
    let data = TrainData::load(&opts).unwrap();
    // A model for 3 channels on 1-channel digits.
    let mut model = Tiny::new(64, 16, 10, &mut rng(3));
    let info = model.info(3);
    let err = train_images(&mut model, &info, &diffusion(), &data, &opts).unwrap_err();
    assert!(
        err.to_string().contains("1 channels") && err.to_string().contains("in_channels = 1"),
        "{err}"
    );
    // A model with fewer classes than the data.
    let mut small = Tiny::new(64, 16, 5, &mut rng(3));
    let info = small.info(1);
    let err = train_images(&mut small, &info, &diffusion(), &data, &opts).unwrap_err();
    assert!(err.to_string().contains("num_classes = 10"), "{err}");
    // A model whose output does not fit a learned-variance diffusion (needs 2C channels).
    let info = model.info(1);
    let learned = Diffusion::new(
        Schedule::new(BetaSchedule::Linear, 100),
        Prediction::Epsilon,
        VarianceType::LearnedRange,
        LossType::Mse,
    );
    let err = train_images(&mut model, &info, &learned, &data, &opts).unwrap_err();
    assert!(err.to_string().contains("out_channels = 2"), "{err}");
    // Zero steps.
    let zero = TrainOptions {
        steps: 0,
        ..opts.clone()
    };
    assert!(train_images(&mut model, &info, &diffusion(), &data, &zero).is_err());
    // Nothing was written by the failed runs.
    assert!(!dir.join("run").exists());
}

/// `minisora train` with the given arguments, run in `dir` (so a reader's own `out/` cannot
/// change what it finds): (exit success, stderr).
fn cli(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minisora"))
        .current_dir(dir)
        .arg("train")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_rejects_bad_arguments_with_the_fix() {
    let tmp = TempDir::new("cli");
    let dir = tmp.0.clone();
    let missing = format!("latents:{}", dir.join("none.safetensors").display());
    let (ok, err) = cli(&dir, &["--data", &missing]);
    assert!(
        !ok && err.contains("minisora train-vae") && err.contains("minisora encode"),
        "{err}"
    );
    let (ok, err) = cli(&dir, &["--model", "dit-s-2"]);
    assert!(
        !ok && err.contains("unknown DiT config") && err.contains("DiT-S/2"),
        "{err}"
    );
    let (ok, err) = cli(&dir, &["--model", "resnet"]);
    assert!(!ok && err.contains("unknown model"), "{err}");
    let (ok, err) = cli(&dir, &["--data", "digits"]);
    assert!(!ok && err.contains("--pixels"), "{err}");
    let (ok, err) = cli(
        &dir,
        &["--pixels", "--data", "digits", "--channel-mult", "1,x"],
    );
    assert!(!ok && err.contains("--channel-mult"), "{err}");
    let (ok, err) = cli(
        &dir,
        &["--pixels", "--data", "digits", "--steps", "0", "--n", "20"],
    );
    assert!(!ok && err.contains("must be positive"), "{err}");
}

#[test]
fn the_unet_trains_through_train_unet_and_its_checkpoint_rebuilds_it() {
    use minisora::models::unet::train_unet;
    use minisora::unet::{UNet, UNetConfig};
    let tmp = TempDir::new("unet");
    let dir = tmp.0.clone();
    let config = UNetConfig {
        model_channels: 8,
        groups: 2,
        num_heads: 2,
        num_res_blocks: 1,
        ..UNetConfig::default()
    };
    let opts = TrainOptions {
        n_images: 40,
        batch: 8,
        samples_per_class: 1,
        sample_steps: 5,
        ..pixels(dir.clone(), 30)
    };
    let report = train_unet(&config, &opts).unwrap();
    let l = &report.losses;
    assert!(mean(&l[25..]) < mean(&l[..5]), "{l:?}");
    assert!(report.gflops > 0.0 && report.params > 0);
    // The checkpoint's metadata rebuilds the same U-Net (1 channel, 10 classes) and loads.
    let meta = read_metadata(&report.checkpoint).unwrap();
    let cfg = UNetConfig::from_metadata(&meta).unwrap();
    assert_eq!((cfg.in_channels, cfg.num_classes), (1, Some(10)));
    let mut unet = UNet::new(cfg, &mut rng(0)).unwrap();
    load_checkpoint(&report.checkpoint, &mut unet).unwrap();
    assert_eq!(unet.num_params(), report.params);
    for f in ["samples.png", "denoise.png", "loss.png"] {
        assert!(dir.join(f).is_file(), "{f} was not written");
    }
}
