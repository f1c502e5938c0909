//! The `minisora train` and `minisora sample` commands, run as a user runs them: a tiny
//! train → sample round trip writes the PNG grid and the GIF, and every bad input exits
//! non-zero with a message naming the problem and the fix (never a panic).

mod support;

use minisora::io::checkpoint::{load_checkpoint, read_metadata, save_checkpoint};
use minisora::nn::Linear;
use minisora::tensor::rng;
use minisora::unet::{UNet, UNetConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::cli::{fails, run};
use support::TempDir;

/// A tiny class-conditional U-Net trained 4 steps on 8×8 pixel digits in `dir/run`.
fn train_tiny(dir: &Path) -> PathBuf {
    let (ok, out, err) = run(
        dir,
        &[
            "train",
            "--model",
            "unet",
            "--pixels",
            "--data",
            "digits",
            "--pixel-size",
            "8",
            "--n",
            "40",
            "--steps",
            "4",
            "--batch",
            "8",
            "--model-channels",
            "8",
            "--num-res-blocks",
            "1",
            "--sample-steps",
            "2",
            "--save-every",
            "2",
            "--out",
            "run",
        ],
    );
    assert!(ok, "train failed: {err}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("{\"model\":\"unet\""),
        "{out}"
    );
    dir.join("run/unet.safetensors")
}

#[test]
fn train_then_sample_writes_the_grid_and_the_trajectory() {
    let tmp = TempDir::new("cli-ok");
    let dir = &tmp.0;
    train_tiny(dir);
    for f in [
        "samples.png",
        "loss.png",
        "train_2.safetensors",
        "train_4.safetensors",
    ] {
        assert!(dir.join("run").join(f).is_file(), "{f} was not written");
    }
    // Every class, 3 each, DDIM 5 steps, with the trajectory.
    let (ok, out, err) = run(
        dir,
        &[
            "sample",
            "--ckpt",
            "run/unet.safetensors",
            "--steps",
            "5",
            "--n",
            "3",
            "--out",
            "grid.png",
            "--trajectory",
            "t.gif",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("\"images\":30"), "{out}");
    // 10 rows of 3 samples of 8×8, 2 px padding, upscaled 4×.
    let grid = image::open(dir.join("grid.png")).unwrap();
    assert_eq!(
        (grid.width(), grid.height()),
        ((3 * 10 + 2) * 4, (10 * 10 + 2) * 4)
    );
    // x_T plus one frame per step, then the held last frame.
    let gif = std::fs::File::open(dir.join("t.gif")).unwrap();
    let decoder = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(gif)).unwrap();
    let frames = image::AnimationDecoder::into_frames(decoder)
        .collect_frames()
        .unwrap();
    assert!(frames.len() >= 6, "{} frames", frames.len());
    assert_eq!(frames[0].buffer().width(), grid.width());

    // One class, DDPM, from the half-way training checkpoint (its EMA weights).
    let (ok, out, err) = run(
        dir,
        &[
            "sample",
            "--ckpt",
            "run/train_2.safetensors",
            "--class",
            "3",
            "--sampler",
            "ddpm",
            "--steps",
            "4",
            "--n",
            "2",
            "--out",
            "three.png",
            "--cfg-scale",
            "1",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("\"images\":2"), "{out}");
    let grid = image::open(dir.join("three.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), ((2 * 10 + 2) * 4, 12 * 4));

    // Resuming with a changed option (the U-Net decays its lr, so the length and the decay
    // must stay) is refused, and so is resuming a finished run.
    let mut resume = vec![
        "train",
        "--model",
        "unet",
        "--pixels",
        "--data",
        "digits",
        "--pixel-size",
        "8",
        "--n",
        "40",
        "--steps",
        "6",
        "--batch",
        "8",
        "--model-channels",
        "8",
        "--num-res-blocks",
        "1",
        "--sample-steps",
        "2",
        "--out",
        "run2",
        "--resume",
        "run/train_4.safetensors",
        "--constant-lr",
    ];
    fails(dir, &resume, &["train.opt.", "--resume"]);
    resume.truncate(resume.len() - 1);
    resume[11] = "4";
    fails(dir, &resume, &["already at step 4", "--steps"]);
}

#[test]
fn sample_rejects_bad_input_with_the_fix() {
    let tmp = TempDir::new("cli-bad");
    let dir = &tmp.0;
    let ckpt = train_tiny(dir);
    let ck = "run/unet.safetensors";
    fails(
        dir,
        &["sample", "--ckpt", "missing.safetensors"],
        &["no checkpoint at missing.safetensors", "minisora train"],
    );
    fails(
        dir,
        &["sample", "--ckpt", ck, "--class", "10"],
        &[
            "--class 10 is out of range",
            "10 classes",
            "between 0 and 9",
        ],
    );
    fails(
        dir,
        &["sample", "--ckpt", ck, "--steps", "0"],
        &["--steps 0", "positive"],
    );
    fails(
        dir,
        &["sample", "--ckpt", ck, "--steps", "x"],
        &["invalid value 'x'", "--steps"],
    );
    fails(
        dir,
        &["sample", "--ckpt", ck, "--steps", "2000"],
        &["trained with 1000 steps", "between 1 and 1000"],
    );
    fails(
        dir,
        &["sample", "--ckpt", ck, "--sampler", "euler"],
        &["unknown sampler \"euler\"", "--sampler ddim"],
    );
    fails(
        dir,
        &["sample", "--ckpt", "run/samples.png"],
        &["not a valid safetensors file"],
    );
    fails(
        dir,
        &["train", "--model", "resnet"],
        &["unknown model", "--model unet"],
    );

    // A checkpoint of another kind of model.
    let meta = BTreeMap::from([("model".to_string(), "vae".to_string())]);
    let mut lin = Linear::new(2, 2, true, &mut rng(0));
    save_checkpoint(&dir.join("vae.safetensors"), &mut lin, &meta).unwrap();
    fails(
        dir,
        &["sample", "--ckpt", "vae.safetensors"],
        &["holds a `vae` model", "minisora train"],
    );
    // A checkpoint whose config does not match its tensors names the tensor.
    let mut meta = read_metadata(&ckpt).unwrap();
    let mut unet = UNet::new(UNetConfig::from_metadata(&meta).unwrap(), &mut rng(0)).unwrap();
    load_checkpoint(&ckpt, &mut unet).unwrap();
    meta.insert("unet.model_channels".into(), "16".into());
    save_checkpoint(&dir.join("wrong.safetensors"), &mut unet, &meta).unwrap();
    fails(
        dir,
        &["sample", "--ckpt", "wrong.safetensors"],
        &["parameter `", "has shape", "matching checkpoint"],
    );
    // A latent model without its VAE.
    meta.insert("unet.model_channels".into(), "8".into());
    meta.insert("train.latent".into(), "true".into());
    save_checkpoint(&dir.join("latent.safetensors"), &mut unet, &meta).unwrap();
    fails(
        dir,
        &[
            "sample",
            "--ckpt",
            "latent.safetensors",
            "--vae",
            "none.safetensors",
        ],
        &[
            "no VAE checkpoint at none.safetensors",
            "--vae",
            "minisora train-vae",
        ],
    );
    // Training on a dataset in latent space without a VAE to encode it.
    fails(
        dir,
        &["train", "--data", "digits", "--vae", "none.safetensors"],
        &["no VAE checkpoint at none.safetensors", "--pixels"],
    );
}

#[test]
fn a_dit_trains_and_samples_through_the_cli() {
    let tmp = TempDir::new("cli-dit");
    let dir = &tmp.0;
    fails(
        dir,
        &["train", "--model", "dit-huge/2"],
        &["unknown DiT config", "DiT-S/2"],
    );
    let (ok, out, err) = run(
        dir,
        &[
            "train",
            "--model",
            "DiT-mini/4",
            "--pixels",
            "--data",
            "digits",
            "--pixel-size",
            "8",
            "--n",
            "40",
            "--steps",
            "3",
            "--batch",
            "8",
            "--sample-steps",
            "2",
            "--out",
            "dit",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("{\"model\":\"dit\""),
        "{out}"
    );
    let (ok, out, err) = run(
        dir,
        &[
            "sample",
            "--ckpt",
            "dit/dit.safetensors",
            "--class",
            "7",
            "--steps",
            "3",
            "--n",
            "2",
            "--out",
            "g.png",
            "--trajectory",
            "g.gif",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("\"images\":2"), "{out}");
    assert!(dir.join("g.png").is_file() && dir.join("g.gif").is_file());
}

#[test]
fn evaluate_rejects_bad_input_with_the_fix() {
    let tmp = TempDir::new("cli-evaluate");
    let dir = &tmp.0;
    fails(
        dir,
        &["evaluate", "--ckpt", "missing.safetensors"],
        &["no checkpoint at missing.safetensors", "minisora train"],
    );
    fails(
        dir,
        &["evaluate", "--ckpt", "missing.safetensors", "--steps", "0"],
        &["--steps and --per-class must be at least 1"],
    );
    fails(
        dir,
        &[
            "evaluate",
            "--ckpt",
            "missing.safetensors",
            "--per-class",
            "0",
        ],
        &["--steps and --per-class must be at least 1"],
    );
    fails(
        dir,
        &["evaluate", "--ckpt", "x", "--cfg-scale", "two"],
        &["invalid value 'two'"],
    );
}

#[test]
fn evaluate_scores_against_the_dataset_the_checkpoint_records() {
    let tmp = TempDir::new("cli-evaluate-data");
    let dir = &tmp.0;
    let ckpt = train_tiny(dir);
    let meta = read_metadata(&ckpt).unwrap();
    assert_eq!(
        meta.get("train.dataset").map(String::as_str),
        Some("digits")
    );
    // A checkpoint without the key (written before it existed) asks for --data.
    let mut meta = read_metadata(&ckpt).unwrap();
    let mut unet = UNet::new(UNetConfig::from_metadata(&meta).unwrap(), &mut rng(0)).unwrap();
    load_checkpoint(&ckpt, &mut unet).unwrap();
    meta.remove("train.dataset");
    save_checkpoint(&dir.join("old.safetensors"), &mut unet, &meta).unwrap();
    fails(
        dir,
        &["evaluate", "--ckpt", "old.safetensors"],
        &["does not record the dataset", "--data"],
    );
}
