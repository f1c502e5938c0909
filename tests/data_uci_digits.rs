//! The built-in UCI digits: the committed fixture parses to scikit-learn's 1,797 images, the
//! fixed split is 1,437 / 360, disjoint, stratified and seeded, the images are 32×32 grey in
//! [−1, 1] like the procedural digits, and a corrupted line is an error naming it.

use minisora::data::dataset::byte_to_unit;
use minisora::data::uci_digits::{self, parse, Part, HELD_OUT, LEN, SPLIT_SEED};
use minisora::data::{stratified_split, DataSource};
use std::collections::BTreeSet;

/// Images per class in scikit-learn's `load_digits()`.
const SKLEARN_COUNTS: [usize; 10] = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180];

fn counts(labels: &[usize]) -> Vec<usize> {
    let mut c = vec![0; 10];
    for &l in labels {
        c[l] += 1;
    }
    c
}

#[test]
fn the_fixture_holds_sklearns_digits() {
    assert!(uci_digits::FIXTURE.contains("10.24432/C50P49"));
    assert!(uci_digits::FIXTURE.contains("CC BY 4.0"));
    let raw = uci_digits::raw().unwrap();
    assert_eq!(raw.labels.len(), LEN);
    assert_eq!(counts(&raw.labels), SKLEARN_COUNTS);
    let values: BTreeSet<u8> = raw.pixels.iter().flatten().copied().collect();
    assert_eq!(values, (0..=16).collect());
    // load_digits().images[0], first two rows: 0 0 5 13 9 1 0 0 / 0 0 13 15 10 15 5 0
    assert_eq!(raw.labels[0], 0);
    assert_eq!(
        raw.pixels[0][..16],
        [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0]
    );
}

#[test]
fn the_split_is_disjoint_stratified_and_fixed() {
    let s = uci_digits::split().unwrap();
    assert_eq!((s.train.len(), s.held_out.len()), (1437, 360));
    let train: BTreeSet<usize> = s.train.iter().copied().collect();
    let held: BTreeSet<usize> = s.held_out.iter().copied().collect();
    assert_eq!(train.len(), 1437, "an image appears twice");
    assert!(train.is_disjoint(&held));
    assert_eq!(train.union(&held).count(), LEN);

    let labels = uci_digits::raw().unwrap().labels;
    let held_counts = counts(&s.held_out.iter().map(|&i| labels[i]).collect::<Vec<_>>());
    for (c, (&h, &n)) in held_counts.iter().zip(&SKLEARN_COUNTS).enumerate() {
        // ⌊0.2·n⌋ or ⌈0.2·n⌉ of each class held out, as train_test_split(stratify=y) does
        let q = 0.2 * n as f64;
        assert!(
            h == q.floor() as usize || h == q.ceil() as usize,
            "class {c}: {h} of {n}"
        );
    }
    // The same seed gives the same split, another seed another one of the same counts.
    assert_eq!(uci_digits::split().unwrap(), s);
    assert_eq!(stratified_split(&labels, HELD_OUT, SPLIT_SEED).unwrap(), s);
    let other = stratified_split(&labels, HELD_OUT, SPLIT_SEED + 1).unwrap();
    assert_ne!(other.held_out, s.held_out);
    assert_eq!(
        counts(
            &other
                .held_out
                .iter()
                .map(|&i| labels[i])
                .collect::<Vec<_>>()
        ),
        held_counts
    );
}

#[test]
fn images_are_32_grey_in_unit_range_like_the_procedural_digits() {
    let train = uci_digits::load(Part::Train, 32).unwrap();
    let held = uci_digits::load(Part::HeldOut, 32).unwrap();
    assert_eq!(train.images.shape(), &[1437, 1, 32, 32]);
    assert_eq!(held.images.shape(), &[360, 1, 32, 32]);
    let digits = DataSource::Digits.load(10, 32, 0).unwrap();
    assert_eq!(train.channels(), digits.channels());
    assert_eq!(
        DataSource::UciDigits.channels(),
        DataSource::Digits.channels()
    );
    assert_eq!(train.class_names, digits.class_names);
    assert_eq!(
        train.class_names,
        (0..10).map(|d| d.to_string()).collect::<Vec<_>>()
    );
    let (lo, hi) = train
        .images
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert_eq!((lo, hi), (-1.0, 1.0));
    // Ink bright on black, like the procedural digits and MNIST: most of each image is dark.
    let mean = train.images.mean().unwrap();
    let corners = (0..train.len())
        .filter(|&i| train.images[[i, 0, 0, 0]] == -1.0)
        .count();
    assert!(
        mean < -0.3 && corners > 1400,
        "mean {mean}, {corners} black corners"
    );

    // At 8×8 nothing is resized: each value v is the byte round(255 v / 16).
    let raw = uci_digits::raw().unwrap();
    let all = uci_digits::load(Part::All, 8).unwrap();
    assert_eq!(all.labels, raw.labels);
    for (&got, &v) in all.image(5).iter().zip(&raw.pixels[5]) {
        let byte = ((v as u32 * 255 + 8) / 16) as u8;
        assert_eq!(got, byte_to_unit(byte));
    }
}

#[test]
fn the_source_gives_the_training_part_and_load_split_both() {
    assert_eq!(
        DataSource::parse("uci-digits").unwrap(),
        DataSource::UciDigits
    );
    assert_eq!(DataSource::UciDigits.name(), "uci-digits");
    let full = DataSource::UciDigits.load(10_000, 16, 0).unwrap();
    assert_eq!(full.len(), 1437);
    let some = DataSource::UciDigits.load(100, 16, 0).unwrap();
    assert_eq!(some.len(), 100);
    let c = counts(&some.labels);
    assert!(c.iter().all(|&k| k.abs_diff(10) <= 1), "{c:?}");

    let (train, held) = DataSource::UciDigits
        .load_split(10_000, 500, 16, 3)
        .unwrap();
    assert_eq!((train.len(), held.len()), (1437, 360));
    assert_eq!(
        held.images,
        uci_digits::load(Part::HeldOut, 16).unwrap().images
    );
    // The split is the fixture's own: another run seed holds out the same images.
    let (_, again) = DataSource::UciDigits.load_split(100, 50, 16, 9).unwrap();
    assert_eq!(again.len(), 50);
    let held_rows: Vec<Vec<f32>> = held
        .images
        .outer_iter()
        .map(|x| x.iter().copied().collect())
        .collect();
    for x in again.images.outer_iter() {
        let x: Vec<f32> = x.iter().copied().collect();
        assert!(
            held_rows.contains(&x),
            "a held-out image from outside the held-out part"
        );
    }
}

#[test]
fn a_corrupted_line_is_an_error_naming_it() {
    let good = format!("# header\n3 {}\n", "0".repeat(64));
    assert_eq!(parse(&good).unwrap().labels, [3]);
    let cases = [
        (
            format!("# h\n3 {}\n7 {}h\n", "0".repeat(64), "0".repeat(63)),
            "line 3",
            "'h'",
        ),
        (format!("3 {}\n", "0".repeat(63)), "line 1", "63 pixels"),
        (format!("x {}\n", "0".repeat(64)), "line 1", "label"),
        (format!("\n\n3{}\n", "0".repeat(64)), "line 3", "a space"),
        ("# only a header\n".to_string(), "no images", ""),
    ];
    for (text, place, what) in cases {
        let e = parse(&text).unwrap_err();
        assert!(e.problem.contains(place) && e.problem.contains(what), "{e}");
        assert!(e.fix.contains("tests/reference/uci_digits.py"), "{e}");
    }
}
