//! The trainer, the checkpoints and the sampler take clips `(B, C, F, H, W)` without change: a
//! tiny denoiser over the flattened clip trains on moving-bar clips through the real trainer
//! (its figures a GIF), a run resumed from its half-way checkpoint ends bit-identical to one
//! that never stopped, and the one sampling entry point draws clips of the trained shape.

mod support;

use minisora::data::DataSource;
use minisora::diffusion::{sample_grid, Condition, Draw, Grid};
use minisora::io::checkpoint::{load_tensors, read_metadata};
use minisora::tensor::{init, rng};
use minisora::train::preview::save_samples;
use minisora::train::{train, Source, TrainData, TrainOptions};
use ndarray::{ArrayD, IxDyn};
use std::path::PathBuf;
use support::tiny::{diffusion, Tiny};
use support::TempDir;

/// (C, F, H, W) of one clip.
const SHAPE: [usize; 4] = [3, 4, 4, 4];
const STEPS: u64 = 20;

/// 24 clips of a bright column moving one pixel per frame, left to right (class 0) or right
/// to left (class 1), on noise; green is the negative of red and blue.
fn clips() -> TrainData {
    let n = 24;
    let mut x = init::normal(&[n, 3, 4, 4, 4], 0.1, &mut rng(8)); // (N, C, F, H, W)
    let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
    for (i, &y) in labels.iter().enumerate() {
        for f in 0..4 {
            let col = if y == 0 { f } else { 3 - f };
            for (c, h) in (0..3).flat_map(|c| (0..4).map(move |h| (c, h))) {
                x[IxDyn(&[i, c, f, h, col])] += if c == 1 { -0.9 } else { 0.9 };
            }
        }
    }
    TrainData::new(x, labels, vec!["right".into(), "left".into()])
}

fn opts(out: PathBuf) -> TrainOptions {
    TrainOptions {
        // Names the run in the metadata only: the data are given in memory.
        data: Source::Pixels(DataSource::Digits),
        steps: STEPS,
        batch: 6,
        lr: 2e-3,
        sample_steps: 4,
        samples_per_class: 2,
        save_every: STEPS / 2,
        seed: 3,
        out,
        ..TrainOptions::default()
    }
}

fn model() -> Tiny {
    Tiny::new(SHAPE.iter().product(), 32, 2, &mut rng(1))
}

#[test]
fn clips_train_resume_bit_identically_and_sample() {
    let tmp = TempDir::new("clips");
    let data = clips();
    assert_eq!(data.sample_shape(), &SHAPE);

    // One run of STEPS steps, a training checkpoint every STEPS/2.
    let mut whole = model();
    let info = whole.info(3);
    let one = opts(tmp.0.join("one"));
    let report = train(&mut whole, &info, &diffusion(), &data, &one).unwrap();
    assert_eq!(report.losses.len(), STEPS as usize);
    assert!(report.losses.iter().all(|l| l.is_finite()));
    for f in ["samples.gif", "denoise.png", "loss.png", "tiny.safetensors"] {
        assert!(one.out.join(f).is_file(), "{f} was not written");
    }
    let meta = read_metadata(&report.checkpoint).unwrap();
    assert_eq!(meta["train.shape"], "3,4,4,4");

    // Resumed from the half-way checkpoint: the same losses and the same bits.
    let half = one.out.join(format!("train_{}.safetensors", STEPS / 2));
    let mut resumed = model();
    let two = TrainOptions {
        resume: Some(half),
        ..opts(tmp.0.join("two"))
    };
    let again = train(&mut resumed, &info, &diffusion(), &data, &two).unwrap();
    assert_eq!(again.losses, report.losses);
    let end = format!("train_{STEPS}.safetensors");
    let (a, b) = (
        load_tensors(&one.out.join(&end)).unwrap().0,
        load_tensors(&two.out.join(&end)).unwrap().0,
    );
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        assert_eq!(Some(t), b.get(name), "{name} differs after resuming");
    }

    // The sampler draws clips of the trained shape, one row per class, as a GIF.
    let grid = Grid {
        shape: SHAPE.to_vec(),
        rows: Condition::labels(&[0, 1]),
        per_row: 3,
        draw: Draw::ddim(5, 2.0, 0),
    };
    let samples = sample_grid(&whole, &diffusion(), &grid, 1, &mut |_| {}).unwrap();
    assert_eq!(samples.x.shape(), &[6, 3, 4, 4, 4]);
    assert_eq!(samples.labels(), vec![0, 0, 0, 1, 1, 1]);
    assert!(samples.x.iter().all(|v| v.is_finite()));
    assert_eq!(samples.trajectory[0].1.shape(), &[1, 3, 4, 4, 4]);
    let pixels: ArrayD<f32> = samples.x.mapv(|v| v.clamp(-1.0, 1.0));
    let gif = save_samples(&tmp.0.join("clips.png"), &pixels, 3).unwrap();
    assert_eq!(gif.extension().unwrap(), "gif");
    let frames = gif_frames(&gif);
    assert_eq!(frames, 4, "one GIF frame per clip frame");
}

/// Frames in a GIF file.
fn gif_frames(path: &std::path::Path) -> usize {
    use image::AnimationDecoder;
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let decoder = image::codecs::gif::GifDecoder::new(file).unwrap();
    decoder.into_frames().count()
}
