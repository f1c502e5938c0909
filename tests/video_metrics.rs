//! The clip metrics: real clips score near 1 on digit, motion and consistency with an FVD at
//! its floor; shuffled or reversed frames lose the motion, frames of different digits lose the
//! consistency, noise is far from real; the scorer survives a save and load; clips of another
//! length are refused.

use minisora::metrics::video::clips::score_clips;
use minisora::metrics::video::scorer::{scorer_path, ClipScorer};
use minisora::metrics::ClassifierTrainOptions;
use minisora::tensor::{init, rng};
use minisora::video::clip_set::ClipSet;
use minisora::video::moving_digits::MovingDigits;
use ndarray::{s, Array5, Axis, Ix5};
use std::sync::OnceLock;

/// Generated clips scored per test: 2 per class.
const N: usize = 80;

/// A scorer trained briefly (300 steps) on 800 real clips, shared by the tests; the real reference clips
/// (4 per class, another seed); and N "generated" clips that are real (a third seed).
fn setup() -> &'static (ClipScorer, ClipSet, ClipSet) {
    static SETUP: OnceLock<(ClipScorer, ClipSet, ClipSet)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let g = MovingDigits::default();
        let opts = ClassifierTrainOptions {
            steps: 300,
            batch: 64,
            verbose: true,
            ..ClassifierTrainOptions::default()
        };
        let start = std::time::Instant::now();
        let scorer = ClipScorer::train(&g.generate(800, 1).unwrap(), 5, &opts).unwrap();
        println!("scorer trained in {:.1} s", start.elapsed().as_secs_f64());
        let (digit, video) = scorer.accuracies();
        assert!(digit.unwrap() > 0.8, "frame classifier {digit:?}");
        assert!(video.unwrap() > 0.3, "clip classifier {video:?}");
        (
            scorer,
            g.generate(2 * N, 2).unwrap(),
            g.generate(N, 3).unwrap(),
        )
    })
}

#[test]
fn real_clips_score_near_one_and_at_the_floor() {
    let (scorer, real, fake) = setup();
    let r = score_clips(scorer, fake.clips.view(), &fake.labels, real, 0).unwrap();
    println!("{r}\n{}", r.to_json());
    // The briefly trained frame classifier (~85 % per frame) errs on whole glyphs, the same
    // in every frame of a clip, so the majority vote does not fix it: a loose bound.
    assert!(r.digit_accuracy >= 0.75, "{r}");
    assert_eq!(r.motion_accuracy, 1.0, "{r}");
    assert_eq!(r.tracked, N);
    assert!(r.speed_error < 1e-3, "{r}");
    assert!(r.consistency >= 0.9, "{r}");
    assert!(r.fvd < 3.0 * r.fvd_floor + 1e-3, "{r}");
    assert!(r.to_json().starts_with("{\"digit_accuracy\":"));
}

#[test]
fn shuffled_or_reversed_frames_lose_the_motion() {
    let (scorer, real, fake) = setup();
    let reversed = fake.clips.slice(s![.., .., ..;-1, .., ..]).to_owned();
    let r = score_clips(scorer, reversed.view(), &fake.labels, real, 0).unwrap();
    println!("reversed: {r}");
    assert!(r.motion_accuracy < 0.05, "{r}");
    // frames 0..8 in the order 3 6 1 7 0 5 2 4: no steady motion left
    let order = [3, 6, 1, 7, 0, 5, 2, 4];
    let shuffled = fake.clips.select(Axis(2), &order);
    let r = score_clips(scorer, shuffled.view(), &fake.labels, real, 0).unwrap();
    println!("shuffled: {r}");
    assert!(r.motion_accuracy < 0.6, "{r}");
    assert!(r.speed_error > 0.1, "{r}");
}

#[test]
fn frames_of_different_digits_lose_the_consistency() {
    let (scorer, real, fake) = setup();
    // frame t of clip n from clip n + 4t: the digit one further at every frame
    let mut mixed = fake.clips.clone();
    for n in 0..N {
        for t in 0..fake.frame_count() {
            let src = fake.clips.slice(s![(n + 4 * t) % N, .., t, .., ..]);
            mixed.slice_mut(s![n, .., t, .., ..]).assign(&src);
        }
    }
    let r = score_clips(scorer, mixed.view(), &fake.labels, real, 0).unwrap();
    println!("mixed digits: {r}");
    assert!(r.consistency < 0.5, "{r}");
    assert!(r.digit_accuracy < 0.5, "{r}");
}

#[test]
fn noise_is_far_from_real() {
    let (scorer, real, fake) = setup();
    let noise = init::uniform(&[N, 1, 8, 32, 32], 1.0, &mut rng(4))
        .into_dimensionality::<Ix5>()
        .unwrap();
    let r = score_clips(scorer, noise.view(), &fake.labels, real, 0).unwrap();
    println!("noise: {r}");
    assert!(r.fvd > 10.0 * r.fvd_floor, "{r}");
}

#[test]
fn the_scorer_survives_save_and_load() {
    let (scorer, real, fake) = setup();
    let dir = std::env::temp_dir().join(format!("minisora-video-scorer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = scorer_path(&dir, 8);
    assert!(path.ends_with("scorer-8f.safetensors"));
    scorer.clone().save(&path).unwrap();
    let back = ClipScorer::load(&path).unwrap();
    assert_eq!(back.accuracies(), scorer.accuracies());
    let a = score_clips(scorer, fake.clips.view(), &fake.labels, real, 1).unwrap();
    let b = score_clips(&back, fake.clips.view(), &fake.labels, real, 1).unwrap();
    assert_eq!(a, b);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn clips_of_another_length_or_too_few_real_ones_are_refused() {
    let (scorer, real, fake) = setup();
    let four: Array5<f32> = fake.clips.slice(s![.., .., ..4, .., ..]).to_owned();
    let e = score_clips(scorer, four.view(), &fake.labels, real, 0).unwrap_err();
    assert!(e.problem.contains("(1, 4, 32, 32)"), "{e}");
    assert!(e.fix.contains("(1, 8, 32, 32)"), "{e}");
    let e = score_clips(scorer, fake.clips.view(), &fake.labels, &real.take(N), 0).unwrap_err();
    assert!(e.fix.contains("twice as many"), "{e}");
}
