//! The evaluation metrics at work: train (or load from `out/classifier/`) the classifier of a
//! dataset, print its held-out accuracy, then show that the Fréchet distance moves the right
//! way — real images score about the real-vs-real floor, and degraded sets (noisy, blurred,
//! all one class) score far above it — and that the class accuracy sees wrong labels.
//!
//! ```text
//! cargo run --release --example classifier [-- DATA [--retrain]]
//! ```
//! DATA is digits (default), shapes, mnist:DIR or an image folder; `--retrain` deletes the
//! cached classifier first (to time the training). Writes `out/classifier/<data>.safetensors`
//! and `out/classifier/degraded.png` (rows: real, noisy, blurred, one class). The last stdout
//! line is a JSON object with the figures.

use minisora::data::DataSource;
use minisora::error::Result;
use minisora::io::image::{save_grid, GridLayout};
use minisora::metrics::{
    classifier_path, evaluate, load_or_train_classifier_with, CacheStatus, ClassifierTrainOptions,
};
use minisora::tensor::{init, rng};
use ndarray::{concatenate, s, Array4, Axis, Ix4};
use std::path::Path;
use std::time::Instant;

/// Images per evaluated set (the real pool holds twice as many, for the floor).
const N: usize = 500;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let retrain = args.iter().any(|a| a == "--retrain");
    let data = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or(Ok(DataSource::Digits), |d| DataSource::parse(d))?;
    let cache = Path::new("out/classifier");
    if retrain {
        let _ = std::fs::remove_file(classifier_path(cache, &data, 32));
    }

    let start = Instant::now();
    let opts = ClassifierTrainOptions::default();
    let (clf, status) = load_or_train_classifier_with(&data, 32, 0, cache, &opts)?;
    let train_seconds = matches!(status, CacheStatus::Trained(_)).then(|| start.elapsed());
    let held_out = clf.held_out_accuracy.unwrap_or(f64::NAN);

    // Fresh real images (seed 1: not the classifier's training set, for generated data): the
    // first N are the "samples", the next 2N the real pool.
    let real = data.load(3 * N, 32, 1)?;
    let (imgs, labels) = (&real.images, &real.labels);
    let samples = imgs.slice(s![..N, .., .., ..]).to_owned();
    let sample_labels = &labels[..N];
    let pool = imgs.slice(s![N.., .., .., ..]);

    let as_real = evaluate(&clf, samples.view(), sample_labels, pool)?;
    println!("real images:      {as_real}");
    let wrong: Vec<usize> = sample_labels
        .iter()
        .map(|&l| (l + 1) % real.num_classes())
        .collect();
    let wrong_labels = evaluate(&clf, samples.view(), &wrong, pool)?;
    println!("wrong labels:     {wrong_labels}");

    let noise = init::normal(samples.shape(), 0.5, &mut rng(2))
        .into_dimensionality::<Ix4>()
        .expect("4-D");
    let noisy = (&samples + &noise).mapv(|v| v.clamp(-1.0, 1.0));
    let noisy_r = evaluate(&clf, noisy.view(), sample_labels, pool)?;
    println!("noisy (σ = 0.5):  {noisy_r}");

    let blurred = box_blur(&box_blur(&samples));
    let blurred_r = evaluate(&clf, blurred.view(), sample_labels, pool)?;
    println!("blurred (3×3 ×2): {blurred_r}");

    // Mode collapse: every "sample" is a real image of class 0 (labelled so, so only the
    // distance can see it).
    let zeros: Vec<usize> = (0..real.len()).filter(|&i| real.labels[i] == 0).collect();
    let one = imgs.select(Axis(0), &zeros);
    let one_class_n = one.dim().0.min(N);
    let one = one.slice(s![..one_class_n, .., .., ..]).to_owned();
    let one_r = evaluate(&clf, one.view(), &vec![0; one_class_n], pool)?;
    println!("one class only:   {one_r}");

    let rows: Vec<_> = [&samples, &noisy, &blurred, &one]
        .iter()
        .map(|x| x.slice(s![..10, .., .., ..]))
        .collect();
    let grid = concatenate(Axis(0), &rows).expect("same shapes");
    save_grid(
        &cache.join("degraded.png"),
        grid.view(),
        GridLayout::new(10).pad(2).upscale(3),
    )?;
    println!(
        "wrote {} and {}",
        classifier_path(cache, &data, 32).display(),
        cache.join("degraded.png").display()
    );
    println!(
        "{{\"data\":\"{}\",\"train_seconds\":{},\"held_out_accuracy\":{held_out:.4},\"n\":{N},\"floor\":{:.4},\"real\":{:.4},\"real_accuracy\":{:.4},\"wrong_labels_accuracy\":{:.4},\"noisy\":{:.4},\"blurred\":{:.4},\"one_class\":{:.4},\"one_class_n\":{one_class_n}}}",
        data.name().replace('"', "'"),
        train_seconds.map_or("null".into(), |t| format!("{:.1}", t.as_secs_f64())),
        as_real.frechet_floor,
        as_real.frechet,
        as_real.accuracy,
        wrong_labels.accuracy,
        noisy_r.frechet,
        blurred_r.frechet,
        one_r.frechet,
    );
    Ok(())
}

/// A 3×3 box blur with edge clamping, `(N, C, H, W)` → same shape.
fn box_blur(x: &Array4<f32>) -> Array4<f32> {
    let (_, _, h, w) = x.dim();
    Array4::from_shape_fn(x.raw_dim(), |(n, c, i, j)| {
        let mut sum = 0.0;
        for di in -1i64..=1 {
            for dj in -1i64..=1 {
                let ii = (i as i64 + di).clamp(0, h as i64 - 1) as usize;
                let jj = (j as i64 + dj).clamp(0, w as i64 - 1) as usize;
                sum += x[[n, c, ii, jj]];
            }
        }
        sum / 9.0
    })
}
