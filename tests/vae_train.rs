//! The VAE's training run end to end on a tiny config: it learns, its checkpoint reloads to
//! the same model with its scale factor, `encode` writes latents that reload and match the
//! encoder, and the mistakes a user can make are clear errors.

mod support;

use minisora::data::DataSource;
use minisora::io::checkpoint::read_metadata;
use minisora::tensor::rng;
use minisora::vae::encode::{encode_dataset, load_latents};
use minisora::vae::train::{latent_std, load_vae, psnr_db, train_vae, TrainVaeOptions};
use ndarray::{s, Array4};
use std::path::PathBuf;
use support::{tiny_vae, TempDir};

fn tiny(out: PathBuf, steps: u64) -> TrainVaeOptions {
    TrainVaeOptions {
        data: DataSource::Digits,
        steps,
        batch: 8,
        lr: 3e-3,
        n_train: 64,
        n_held_out: 16,
        seed: 3,
        ..tiny_vae(out)
    }
}

#[test]
fn psnr_is_ten_log_of_one_over_mse_on_unit_pixels() {
    let a = Array4::<f32>::from_elem((2, 1, 4, 4), -1.0);
    // Every pixel off by 0.2 in [−1, 1] is 0.1 in [0, 1]: MSE 0.01, PSNR 20 dB.
    let b = &a + 0.2;
    assert!((psnr_db(a.view(), b.view()) - 20.0).abs() < 1e-4);
    // Identical images hit the 1e-12 MSE floor: 120 dB, finite.
    assert!((psnr_db(a.view(), a.view()) - 120.0).abs() < 1e-6);
}

#[test]
fn training_lowers_the_loss_and_the_checkpoint_reloads_with_its_scale() {
    let tmp = TempDir::new("train");
    let dir = tmp.0.clone();
    let short = train_vae(&tiny(dir.join("a"), 1)).unwrap();
    let report = train_vae(&tiny(dir.join("b"), 40)).unwrap();
    assert!(
        report.psnr_db > short.psnr_db + 1.0,
        "40 steps reach {:.2} dB, 1 step {:.2} dB",
        report.psnr_db,
        short.psnr_db
    );
    assert!((report.scale_factor * report.latent_std - 1.0).abs() < 1e-9);
    for f in ["recon.png", "interpolation.png", "samples.png", "loss.png"] {
        assert!(dir.join("b").join(f).is_file(), "{f} was not written");
    }

    let (model, scale) = load_vae(&report.checkpoint).unwrap();
    assert_eq!(scale, report.scale_factor);
    let meta = read_metadata(&report.checkpoint).unwrap();
    assert_eq!(meta["vae.data"], "digits");
    assert_eq!(model.config.base_channels, 4);
    // The reloaded model reproduces the run's held-out PSNR.
    let held = DataSource::Digits.load(80, 32, 3).unwrap();
    let x = held.images.slice(s![64.., .., .., ..]).to_owned();
    let rec = model.decode(&model.encode(&x).mean);
    assert!((psnr_db(x.view(), rec.view()) - report.psnr_db).abs() < 1e-9);
    // The latent std is measured, not fixed: a fresh seed gives nearly the same value.
    let train = held.images.slice(s![..64, .., .., ..]).to_owned();
    let again = latent_std(&model, train.view(), &mut rng(99));
    assert!(
        (again / report.latent_std - 1.0).abs() < 0.1,
        "{again} vs {}",
        report.latent_std
    );

    // encode: the latent file holds the encoder's posterior and the scale factor.
    let latents = dir.join("latents.safetensors");
    let (n, _) = encode_dataset(&report.checkpoint, &DataSource::Digits, 20, 3, &latents).unwrap();
    assert_eq!(n, 20);
    let set = load_latents(&latents).unwrap();
    assert_eq!(set.mean.shape(), [20, 4, 8, 8]);
    assert_eq!(set.labels, held.labels[..20].to_vec());
    assert_eq!(set.scale_factor, scale);
    assert_eq!(set.class_names.len(), 10);
    let first = held.images.slice(s![..20, .., .., ..]).to_owned();
    assert_eq!(set.mean, model.encode(&first).mean.into_dyn());

    // Mistakes: the wrong number of channels, a checkpoint read as a latent file.
    let err = encode_dataset(
        &report.checkpoint,
        &DataSource::Shapes,
        4,
        0,
        &dir.join("x"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("3 channels") && err.contains("takes 1"),
        "{err}"
    );
    assert!(
        !dir.join("x").exists(),
        "a failed encode left a file behind"
    );
    let err = load_latents(&report.checkpoint).unwrap_err().to_string();
    assert!(err.contains("not a latent file"), "{err}");
}

#[test]
fn too_few_images_is_an_error_naming_the_fix() {
    let tmp = TempDir::new("few");
    let dir = tmp.0.clone();
    let empty = dir.join("pics");
    std::fs::create_dir_all(&empty).unwrap();
    let mut opts = tiny(dir.join("out"), 1);
    opts.data = DataSource::Folder(empty.clone());
    let err = train_vae(&opts).unwrap_err().to_string();
    assert!(err.contains(&empty.display().to_string()), "{err}");
    let mut opts = tiny(dir.join("out"), 1);
    opts.n_train = 0;
    opts.n_held_out = 80;
    let err = train_vae(&opts).unwrap_err().to_string();
    assert!(err.contains("held out"), "{err}");
}
