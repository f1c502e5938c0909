//! Clips encoded frame by frame with a tiny image VAE: the latent file loads back as
//! `(N, z, F, h, w)` with its labels, captions and frame count, and frame `f` of clip `n` is
//! exactly the VAE's encoding of that frame alone.

mod support;

use minisora::data::DataSource;
use minisora::tensor::rng;
use minisora::train::data::{Source, TrainData};
use minisora::train::options::TrainOptions;
use minisora::vae::encode::load_latents;
use minisora::vae::train::{load_vae, train_vae, TrainVaeOptions};
use minisora::video::encode::encode_clips;
use minisora::video::moving_digits::MovingDigits;
use ndarray::s;
use support::{tiny_vae, TempDir};

#[test]
fn clips_encode_frame_by_frame_into_a_5d_latent_file() {
    let tmp = TempDir::new("video-encode");
    let report = train_vae(&TrainVaeOptions {
        data: DataSource::Digits,
        n_train: 16,
        n_held_out: 8,
        batch: 4,
        ..tiny_vae(tmp.0.join("vae"))
    })
    .unwrap();
    let clips = MovingDigits {
        frames: 5,
        ..MovingDigits::default()
    }
    .generate(3, 9)
    .unwrap();
    let out = tmp.0.join("clips.safetensors");
    let (n, _) = encode_clips(&report.checkpoint, &clips, &out, "moving-digits").unwrap();
    assert_eq!(n, 3);

    let set = load_latents(&out).unwrap();
    let (vae, scale) = load_vae(&report.checkpoint).unwrap();
    let z = vae.config.z_channels;
    assert_eq!(set.mean.shape(), [3, z, 5, 8, 8]);
    assert_eq!(set.logvar.shape(), set.mean.shape());
    assert_eq!(set.labels, clips.labels);
    assert_eq!(set.captions, clips.captions);
    assert_eq!(set.class_names.len(), 40);
    assert_eq!(set.scale_factor, scale);
    assert_eq!(set.dataset.as_deref(), Some("moving-digits"));
    for (n, f) in [(0, 0), (1, 3), (2, 4)] {
        let frame = clips.clips.slice(s![n..n + 1, .., f, .., ..]).to_owned(); // (1, 1, H, W)
        let alone = vae.encode(&frame);
        let stored = set.mean.slice(s![n, .., f, .., ..]);
        let diff = (&stored - &alone.mean.slice(s![0, .., .., ..]))
            .mapv(f32::abs)
            .fold(0.0f32, |a, &b| a.max(b));
        assert!(diff < 1e-5, "clip {n} frame {f}: {diff}");
        let lv = set.logvar.slice(s![n, .., f, .., ..]);
        assert!((&lv - &alone.logvar.slice(s![0, .., .., ..]))
            .iter()
            .all(|d| d.abs() < 1e-5));
    }

    // The trainer reads the clip latents as it reads image latents, one rank up.
    let data = TrainData::load(&TrainOptions {
        data: Source::Latents(out.clone()),
        ..TrainOptions::default()
    })
    .unwrap();
    assert_eq!(data.sample_shape(), [z, 5, 8, 8]);
    assert_eq!(data.batch(&[2, 0], &mut rng(0)).shape(), [2, z, 5, 8, 8]);
}
