//! Captioned colour moving digits: shapes and range; each digit in its colour's channel only,
//! each channel a grayscale moving-digit clip; the held-out compositions never in training and
//! only there in the held-out split, with every digit, colour and direction still trained;
//! captions parse back to their specs, prompts without speed too, bad ones with clear errors;
//! the same seed gives the same bits.

use minisora::tensor::rng;
use minisora::video::captions::{
    caption, parse_caption, random_spec, ClipSpec, Colour, DigitSpec, Speed, COLOURS,
};
use minisora::video::colour_digits::{CaptionedClips, ColourDigits, DATASET_NAME};
use minisora::video::held_out::{is_held_out, Split, HELD_OUT_PAIRS, HELD_OUT_TRIPLES};
use minisora::video::moving_digits::{Motion, MOTIONS};
use ndarray::s;
use proptest::prelude::*;
use std::collections::BTreeSet;

fn set(n: usize, seed: u64, split: Split) -> CaptionedClips {
    ColourDigits::default().generate(n, seed, split).unwrap()
}

#[test]
fn shapes_range_and_colours() {
    let c = set(40, 1, Split::Train);
    assert_eq!(c.clips.dim(), (40, 3, 8, 32, 32));
    assert_eq!((c.specs.len(), c.captions.len()), (40, 40));
    assert!(c.clips.iter().all(|v| (-1.0..=1.0).contains(v)));
    assert_eq!(DATASET_NAME, "colour-digits");
    let twos = c.specs.iter().filter(|s| s.digits.len() == 2).count();
    assert!(
        (8..=32).contains(&twos),
        "{twos} of 40 clips have two digits"
    );
    for (i, spec) in c.specs.iter().enumerate() {
        let used: BTreeSet<usize> = spec.digits.iter().map(|d| d.colour.channel()).collect();
        assert_eq!(
            used.len(),
            spec.digits.len(),
            "two digits of one colour: {spec:?}"
        );
        for ch in 0..3 {
            let plane = c.clips.slice(s![i, ch, .., .., ..]);
            let inked = plane.iter().filter(|&&v| v > -0.5).count();
            if used.contains(&ch) {
                // every frame of a used channel holds a sprite
                for t in 0..8 {
                    let frame = plane.slice(s![t, .., ..]);
                    assert!(frame.iter().any(|&v| v > 0.0), "clip {i} ch {ch} frame {t}");
                }
            } else {
                assert_eq!(inked, 0, "clip {i}: ink in channel {ch}, not in {spec:?}");
                assert!(plane.iter().all(|&v| v == -1.0));
            }
        }
    }
    let frames = c.frames();
    assert_eq!(frames.images.dim(), (40 * 8, 3, 32, 32));
    assert_eq!(frames.labels[8], c.specs[1].digits[0].digit);
}

#[test]
fn a_red_digit_lives_only_in_channel_zero() {
    let gen = ColourDigits {
        two_digit_fraction: 0.0,
        ..ColourDigits::default()
    };
    let c = gen.generate(60, 2, Split::Train).unwrap();
    let reds: Vec<usize> = (0..60)
        .filter(|&i| c.specs[i].digits[0].colour == Colour::Red)
        .collect();
    assert!(reds.len() >= 10, "{} red clips", reds.len());
    for &i in &reds {
        assert!(c.clips.slice(s![i, 0, .., .., ..]).iter().any(|&v| v > 0.5));
        assert!(c
            .clips
            .slice(s![i, 1.., .., .., ..])
            .iter()
            .all(|&v| v == -1.0));
        assert!(c.captions[i].contains("red"), "{}", c.captions[i]);
    }
}

#[test]
fn held_out_compositions_never_leak_into_training() {
    let (mut digits, mut colours, mut motions) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let (mut digit_colour, mut digit_motion, mut pairs) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for seed in 0..6 {
        let train = set(300, seed, Split::Train);
        for spec in &train.specs {
            assert!(!is_held_out(spec), "seed {seed}: {spec:?} in training");
            for d in &spec.digits {
                assert!(!HELD_OUT_TRIPLES.contains(&(d.digit, d.colour, d.motion)));
                digits.insert(d.digit);
                colours.insert(d.colour);
                motions.insert(d.motion.index());
                digit_colour.insert((d.digit, d.colour));
                digit_motion.insert((d.digit, d.motion.index()));
            }
            if let [a, b] = spec.digits.as_slice() {
                let p = (a.digit.min(b.digit), a.digit.max(b.digit));
                assert!(!HELD_OUT_PAIRS.contains(&p), "{spec:?}");
                pairs.insert(p);
            }
        }
        let held = set(100, seed, Split::HeldOut);
        assert!(held.specs.iter().all(is_held_out), "seed {seed}");
    }
    assert_eq!(digits.len(), 10);
    assert_eq!(colours.len(), 3);
    assert_eq!(motions.len(), 4);
    assert_eq!(digit_colour.len(), 30, "every digit in every colour");
    assert_eq!(digit_motion.len(), 40, "every digit in every direction");
    assert_eq!(pairs.len(), 45 - HELD_OUT_PAIRS.len(), "every other pair");
}

#[test]
fn the_held_out_split_covers_triples_and_pairs() {
    let held = set(400, 9, Split::HeldOut);
    let mut triples = BTreeSet::new();
    let mut pairs = BTreeSet::new();
    for spec in &held.specs {
        for d in &spec.digits {
            if HELD_OUT_TRIPLES.contains(&(d.digit, d.colour, d.motion)) {
                triples.insert(d.digit);
            }
        }
        if let [a, b] = spec.digits.as_slice() {
            let p = (a.digit.min(b.digit), a.digit.max(b.digit));
            if HELD_OUT_PAIRS.contains(&p) {
                pairs.insert(p);
            }
        }
    }
    assert_eq!(triples.len(), 10, "{triples:?}");
    assert_eq!(pairs.len(), 5, "{pairs:?}");
}

#[test]
fn the_same_seed_gives_the_same_bits() {
    let a = set(12, 7, Split::Train);
    let b = set(12, 7, Split::Train);
    let c = set(12, 8, Split::Train);
    assert_eq!(a.clips, b.clips);
    assert_eq!((a.specs.clone(), a.captions.clone()), (b.specs, b.captions));
    assert_ne!(a.clips, c.clips);
    // the first clips do not depend on the size of the set
    let d = set(5, 7, Split::Train);
    assert_eq!(d.clips, a.clips.slice(s![..5, .., .., .., ..]));
}

#[test]
fn generated_captions_parse_back() {
    let c = set(200, 3, Split::Train);
    let phrasings: BTreeSet<&String> = c.captions.iter().collect();
    assert!(
        phrasings.len() > 150,
        "{} different captions",
        phrasings.len()
    );
    for (spec, text) in c.specs.iter().zip(&c.captions) {
        assert_eq!(&parse_caption(text).unwrap(), spec, "{text}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// parse(caption(spec)) == spec for random specs and phrasings, speeds given or not.
    #[test]
    fn parse_inverts_caption(seed in any::<u64>(), two in any::<bool>(), drop_speed in any::<bool>()) {
        let mut r = rng(seed);
        let mut spec = random_spec(&mut r, two);
        if drop_speed {
            for d in &mut spec.digits {
                d.speed = None;
            }
        }
        let text = caption(&spec, &mut r);
        prop_assert_eq!(parse_caption(&text).unwrap(), spec, "{}", text);
    }
}

#[test]
fn short_prompts_parse() {
    let spec = parse_caption("a red 3 moving left and a blue 7 moving up").unwrap();
    let want = ClipSpec {
        digits: vec![
            DigitSpec {
                digit: 3,
                colour: Colour::Red,
                motion: Motion::Left,
                speed: None,
            },
            DigitSpec {
                digit: 7,
                colour: Colour::Blue,
                motion: Motion::Up,
                speed: None,
            },
        ],
    };
    assert_eq!(spec, want);
    let one = parse_caption("The GREEN digit 0 goes down quickly.").unwrap();
    assert_eq!(one.digits.len(), 1);
    assert_eq!(one.digits[0].speed, Some(Speed::Quickly));
    assert_eq!(one.digits[0].motion, MOTIONS[3]);
    assert_eq!(one.digits[0].colour, COLOURS[1]);
}

#[test]
fn unreadable_captions_say_why() {
    let cases = [
        ("a 3 moving left", "no colour"),
        ("a red 3 moving", "no direction"),
        ("a red digit moving left", "no digit"),
        ("a red 3 moving left and a red 7 moving up", "one colour"),
        (
            "a red 3 left and a blue 7 up and a green 1 down",
            "3 digits",
        ),
        ("a red 3 7 moving left", "two digits"),
        ("a red 3 moving left up", "two directions"),
        ("a red 3 moving left and", "no digit on one side"),
        ("a purple 3 moving left", "red, green, blue"),
    ];
    for (text, says) in cases {
        let e = parse_caption(text).unwrap_err();
        assert!(e.problem.contains(says), "{text:?}: {e}");
        assert!(!e.fix.is_empty(), "{text:?}: {e}");
    }
    let e = ColourDigits {
        frames: 0,
        ..ColourDigits::default()
    }
    .generate(1, 0, Split::Train)
    .unwrap_err();
    assert!(e.fix.contains("frames"), "{e}");
    let e = ColourDigits {
        two_digit_fraction: 1.5,
        ..ColourDigits::default()
    }
    .generate(1, 0, Split::Train)
    .unwrap_err();
    assert!(e.problem.contains("1.5"), "{e}");
}
