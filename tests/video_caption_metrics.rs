//! Caption accuracy and the RGB FVD: real colour clips, read channel by channel by a clip
//! scorer trained only on grayscale moving digits, show their captions (≥ 95 %); a caption with
//! the wrong digit, direction, speed or colour scores 0; real is at the FVD floor and noise far
//! from it; wrong shapes and counts are refused.

use minisora::data::ImageDataset;
use minisora::metrics::video::captions::{caption_accuracy, rgb_fvd};
use minisora::metrics::video::scorer::{clip_input, frame_input, ClipScorer};
use minisora::metrics::{train_classifier, ClassifierTrainOptions};
use minisora::tensor::{init, rng};
use minisora::video::captions::{ClipSpec, Speed, COLOURS};
use minisora::video::clip_set::ClipSet;
use minisora::video::colour_digits::{CaptionedClips, ColourDigits};
use minisora::video::held_out::Split;
use minisora::video::moving_digits::{MovingDigits, MOTIONS};
use ndarray::{s, Ix5};
use std::sync::OnceLock;

/// Real colour clips scored per test.
const N: usize = 100;

/// A scorer trained briefly on grayscale moving digits — the frame classifier for 600 steps
/// (≈ 98 % per frame), the clip classifier, whose features only feed the FVD, for 100 — and
/// real colour clips of both splits.
fn setup() -> &'static (ClipScorer, CaptionedClips, CaptionedClips) {
    static SETUP: OnceLock<(ClipScorer, CaptionedClips, CaptionedClips)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let start = std::time::Instant::now();
        let grey = MovingDigits::default().generate(1000, 1).unwrap();
        let idx: Vec<usize> = (0..grey.len()).collect();
        let (train, test) = (grey.select(&idx[200..]), grey.select(&idx[..200]));
        let frames = |s: &ClipSet| {
            let plain = s.frames();
            ImageDataset::new(frame_input(s.clips.view()), plain.labels, plain.class_names).unwrap()
        };
        let clips = |s: &ClipSet| {
            ImageDataset::new(
                clip_input(s.clips.view()),
                s.labels.clone(),
                s.class_names.clone(),
            )
            .unwrap()
        };
        let opts = |steps| ClassifierTrainOptions {
            steps,
            batch: 64,
            verbose: true,
            ..ClassifierTrainOptions::default()
        };
        let scorer = ClipScorer {
            digit: train_classifier(&frames(&train), &frames(&test), &opts(600), 5).unwrap(),
            video: train_classifier(&clips(&train), &clips(&test), &opts(100), 6).unwrap(),
            frames: 8,
            size: 32,
        };
        println!("scorer trained in {:.1} s", start.elapsed().as_secs_f64());
        let gen = ColourDigits::default();
        (
            scorer,
            gen.generate(3 * N, 11, Split::Train).unwrap(),
            gen.generate(N, 12, Split::HeldOut).unwrap(),
        )
    })
}

/// The caption accuracy of clip `i` of `set` asked for `spec`: 0 or 1.
fn one(scorer: &ClipScorer, set: &CaptionedClips, i: usize, spec: ClipSpec) -> f64 {
    let clip = set.clips.slice(s![i..i + 1, .., .., .., ..]);
    caption_accuracy(scorer, clip, &[spec]).unwrap().accuracy
}

#[test]
fn real_colour_clips_show_their_captions() {
    let (scorer, train, held) = setup();
    for (name, set) in [
        ("train", train.select(&(0..N).collect::<Vec<_>>())),
        ("held-out", held.clone()),
    ] {
        let r = caption_accuracy(scorer, set.clips.view(), &set.specs).unwrap();
        println!("{name}: {r}\n{}", r.to_json());
        assert!(r.accuracy >= 0.95, "{name}: {r}");
        assert_eq!(r.motion_accuracy, 1.0, "{name}: {r}");
        assert_eq!(r.speed_accuracy, 1.0, "{name}: {r}");
        assert_eq!(r.clips, N);
        assert_eq!(r.one_digit_clips + r.two_digit_clips, N);
        assert!(r.one_digit_clips > 20 && r.two_digit_clips > 20, "{r}");
        assert!(r.to_json().starts_with("{\"accuracy\":"));
    }
}

#[test]
fn a_wrong_digit_direction_speed_or_colour_scores_zero() {
    let (scorer, train, _) = setup();
    let mut checked = 0;
    for i in 0..40 {
        let spec = &train.specs[i];
        if one(scorer, train, i, spec.clone()) < 1.0 {
            continue; // the briefly trained classifier misreads this one
        }
        checked += 1;
        let k = i % spec.digits.len(); // the digit to get wrong
        let mut wrong = spec.clone();
        wrong.digits[k].digit = (spec.digits[k].digit + 1 + i % 9) % 10;
        assert_eq!(one(scorer, train, i, wrong), 0.0, "digit, {spec:?}");
        let mut wrong = spec.clone();
        let m = spec.digits[k].motion.index();
        wrong.digits[k].motion = MOTIONS[(m + 1 + i % 3) % 4];
        assert_eq!(one(scorer, train, i, wrong), 0.0, "direction, {spec:?}");
        let mut wrong = spec.clone();
        wrong.digits[k].speed = match spec.digits[k].speed {
            Some(Speed::Slowly) => Some(Speed::Quickly),
            _ => Some(Speed::Slowly),
        };
        assert_eq!(one(scorer, train, i, wrong), 0.0, "speed, {spec:?}");
        let mut any_speed = spec.clone();
        any_speed.digits[k].speed = None;
        assert_eq!(one(scorer, train, i, any_speed), 1.0, "no speed, {spec:?}");
        let mut wrong = spec.clone();
        if let [a, b] = wrong.digits.as_mut_slice() {
            std::mem::swap(&mut a.colour, &mut b.colour); // each digit asked in the other's channel
        } else {
            let c = spec.digits[0].colour.channel();
            wrong.digits[0].colour = COLOURS[(c + 1 + i % 2) % 3]; // an empty channel
        }
        assert_eq!(one(scorer, train, i, wrong), 0.0, "colour, {spec:?}");
    }
    assert!(checked >= 35, "only {checked} of 40 clips read right");
}

#[test]
fn real_is_at_the_rgb_fvd_floor_and_noise_far() {
    let (scorer, train, _) = setup();
    let fake = train.clips.slice(s![..N, .., .., .., ..]);
    let real = train.clips.slice(s![N.., .., .., .., ..]);
    let (fvd, floor) = rgb_fvd(scorer, fake, real).unwrap();
    println!("real: FVD {fvd:.3}, floor {floor:.3}");
    assert!(floor > 0.0 && fvd < 3.0 * floor, "{fvd} vs {floor}");
    let noise = init::uniform(&[N, 3, 8, 32, 32], 1.0, &mut rng(4))
        .into_dimensionality::<Ix5>()
        .unwrap();
    let (far, floor2) = rgb_fvd(scorer, noise.view(), real).unwrap();
    println!("noise: FVD {far:.3}");
    assert_eq!(floor, floor2, "the floor depends on the real clips only");
    assert!(far > 10.0 * floor, "{far} vs {floor}");
}

#[test]
fn wrong_shapes_and_counts_are_refused() {
    let (scorer, train, _) = setup();
    let clips = train.clips.slice(s![..4, .., .., .., ..]);
    let e = caption_accuracy(scorer, clips, &train.specs[..3]).unwrap_err();
    assert!(e.problem.contains("4 clips but 3 specs"), "{e}");
    let grey = train.clips.slice(s![..4, ..1, .., .., ..]);
    let e = caption_accuracy(scorer, grey, &train.specs[..4]).unwrap_err();
    assert!(e.problem.contains("(1, 8, 32, 32)"), "{e}");
    assert!(e.fix.contains("RGB"), "{e}");
    let short = train.clips.slice(s![..4, .., ..4, .., ..]);
    let e = rgb_fvd(scorer, short, train.clips.view()).unwrap_err();
    assert!(e.fix.contains("(3, 8, 32, 32)"), "{e}");
    let e = rgb_fvd(scorer, train.clips.view(), clips).unwrap_err();
    assert!(e.fix.contains("twice as many"), "{e}");
}
