//! The procedural datasets: shapes, ranges, balance, determinism (same seed ⇒ same bits, for any
//! thread count), and that the classes really differ.

use minisora::data::{digits, shapes, ImageDataset};

fn in_range(ds: &ImageDataset) -> bool {
    ds.images.iter().all(|&v| (-1.0..=1.0).contains(&v))
}

fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn digits_shape_range_and_balance() {
    let d = digits::generate(200, 7);
    assert_eq!(d.images.shape(), &[200, 1, 32, 32]);
    assert_eq!(d.num_classes(), 10);
    assert_eq!(d.class_counts(), vec![20; 10]);
    assert!(in_range(&d));
    // every digit has ink and background: some pixels near +1, most near −1
    for i in 0..d.len() {
        let img = d.image(i);
        let ink = img.iter().filter(|&&v| v > 0.5).count();
        let bg = img.iter().filter(|&&v| v < -0.99).count();
        assert!(ink >= 15, "digit {i} has only {ink} ink pixels");
        assert!(bg >= 600, "digit {i} has only {bg} background pixels");
        // nothing touches the border rows/columns hard (the glyph fits the canvas)
        let border_max = (0..32)
            .flat_map(|k| {
                [
                    img[[0, 0, k]],
                    img[[0, 31, k]],
                    img[[0, k, 0]],
                    img[[0, k, 31]],
                ]
            })
            .fold(-1.0f32, f32::max);
        assert!(border_max < 0.9, "digit {i} runs off the canvas");
    }
}

#[test]
fn digits_deterministic_and_thread_independent() {
    let a = on_threads(1, || digits::generate(64, 3));
    let b = on_threads(2, || digits::generate(64, 3));
    assert_eq!(a.images, b.images);
    assert_eq!(a.labels, b.labels);
    let c = digits::generate(64, 4);
    assert_ne!(
        a.images, c.images,
        "a different seed must give different digits"
    );
    // sample i does not depend on how many samples are drawn
    let short = digits::generate(10, 3);
    assert_eq!(short.images, a.take(10).images);
}

#[test]
fn no_two_digits_alike() {
    let d = digits::generate(100, 1);
    for i in 0..d.len() {
        for j in (i + 1)..d.len() {
            let diff: f32 = (&d.image(i) - &d.image(j)).mapv(f32::abs).sum();
            assert!(diff > 5.0, "digits {i} and {j} are nearly identical");
        }
    }
}

/// Mean image per class; returns the smallest distance between two class means relative to the
/// mean within-class distance to its own mean. Distinct classes ⇒ well above zero.
fn class_separation(ds: &ImageDataset) -> f32 {
    let k = ds.num_classes();
    let mut means = vec![ndarray::Array3::<f32>::zeros(ds.image(0).raw_dim()); k];
    for i in 0..ds.len() {
        means[ds.labels[i]] += &ds.image(i);
    }
    let counts = ds.class_counts();
    for (m, &c) in means.iter_mut().zip(&counts) {
        *m /= c as f32;
    }
    let mut min_between = f32::MAX;
    for a in 0..k {
        for b in (a + 1)..k {
            let d = (&means[a] - &means[b]).mapv(|v| v * v).sum().sqrt();
            min_between = min_between.min(d);
        }
    }
    min_between
}

#[test]
fn digit_classes_differ() {
    let d = digits::generate(1000, 2);
    let sep = class_separation(&d);
    assert!(
        sep > 3.0,
        "closest two digit class means are only {sep} apart"
    );
}

#[test]
fn shapes_shape_range_balance_determinism() {
    let s = shapes::generate(100, 5);
    assert_eq!(s.images.shape(), &[100, 3, 32, 32]);
    assert_eq!(
        s.class_names,
        ["circle", "square", "triangle", "ring", "cross"]
    );
    assert_eq!(s.class_counts(), vec![20; 5]);
    assert!(in_range(&s));
    let t = on_threads(1, || shapes::generate(100, 5));
    assert_eq!(s.images, t.images);
    assert_ne!(s.images, shapes::generate(100, 6).images);
}

#[test]
fn ring_has_a_hole_and_circle_does_not() {
    // the centre pixel of a ring is background colour; of a circle it is shape colour
    let s = shapes::generate(200, 9);
    // find the shape centre as the centroid of pixels that differ from the corner (background)
    for i in 0..s.len() {
        let kind = s.labels[i];
        if kind != 0 && kind != 3 {
            continue;
        }
        let img = s.image(i);
        let corner_far = |y: usize, x: usize| {
            (0..3)
                .map(|c| (img[[c, y, x]] - img[[c, 0, 0]]).abs())
                .sum::<f32>()
                > 0.3
        };
        // the corner may be covered by the shape only if the shape is huge: skip then
        if corner_far(31, 31) && corner_far(0, 31) {
            continue;
        }
        let pts: Vec<(usize, usize)> = (0..32)
            .flat_map(|y| (0..32).map(move |x| (y, x)))
            .filter(|&(y, x)| corner_far(y, x))
            .collect();
        assert!(pts.len() > 20, "shape {i} is too small");
        let cy = pts.iter().map(|p| p.0).sum::<usize>() / pts.len();
        let cx = pts.iter().map(|p| p.1).sum::<usize>() / pts.len();
        assert_eq!(
            corner_far(cy, cx),
            kind == 0,
            "shape {i} ({}) centre pixel",
            s.class_names[kind]
        );
    }
}

#[test]
fn dataset_checks_its_parts() {
    let imgs = ndarray::Array4::<f32>::zeros((3, 1, 4, 4));
    let e = ImageDataset::new(imgs.clone(), vec![0, 0], vec!["a".into()]).unwrap_err();
    assert!(e.problem.contains("3 images but 2 labels"), "{e}");
    let e = ImageDataset::new(imgs.clone(), vec![0, 1, 2], vec!["a".into()]).unwrap_err();
    assert!(e.problem.contains("label 1"), "{e}");
    let ds = ImageDataset::new(imgs, vec![0; 3], vec!["a".into()]).unwrap();
    assert!(ds.pad_to(3).is_err());
    assert_eq!(ds.pad_to(6).unwrap().images.shape(), &[3, 1, 6, 6]);
}
