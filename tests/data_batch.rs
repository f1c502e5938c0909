//! The batcher: every image once per epoch, full batches, determinism, and flips that mirror.

use minisora::data::{digits, Batcher};
use std::collections::HashSet;

#[test]
fn each_epoch_visits_every_image_once() {
    let mut b = Batcher::new(103, 10, 1).unwrap();
    assert_eq!(b.batches_per_epoch(), 10);
    for epoch in 0..3 {
        let mut seen = HashSet::new();
        for _ in 0..b.batches_per_epoch() {
            let idx = b.next_indices();
            assert_eq!(idx.len(), 10);
            for i in idx {
                assert!(i < 103);
                assert!(seen.insert(i), "index {i} twice in epoch {epoch}");
            }
        }
        assert_eq!(seen.len(), 100);
    }
    assert_eq!(b.epoch(), 2);
}

#[test]
fn shuffled_and_seeded() {
    let mut a = Batcher::new(1000, 50, 4).unwrap();
    let mut b = Batcher::new(1000, 50, 4).unwrap();
    let mut c = Batcher::new(1000, 50, 5).unwrap();
    let ia = a.next_indices();
    assert_eq!(ia, b.next_indices());
    assert_ne!(ia, c.next_indices());
    assert_ne!(ia, (0..50).collect::<Vec<_>>(), "not shuffled");
    // the next epoch is ordered differently
    let mut a2 = Batcher::new(1000, 1000, 4).unwrap();
    assert_ne!(a2.next_indices(), a2.next_indices());
}

#[test]
fn batches_carry_images_and_labels() {
    let ds = digits::generate(40, 0);
    let mut b = Batcher::new(ds.len(), 8, 2).unwrap();
    let batch = b.next_batch(&ds);
    assert_eq!(batch.images.shape(), &[8, 1, 32, 32]);
    for (k, &i) in batch.indices.iter().enumerate() {
        assert_eq!(batch.labels[k], ds.labels[i]);
        assert_eq!(batch.images.index_axis(ndarray::Axis(0), k), ds.image(i));
    }
}

#[test]
fn flip_mirrors_about_half() {
    let ds = digits::generate(400, 0);
    let mut b = Batcher::new(ds.len(), 400, 2).unwrap().with_flip(true);
    let batch = b.next_batch(&ds);
    let mut flipped = 0;
    for (k, &i) in batch.indices.iter().enumerate() {
        let got = batch.images.index_axis(ndarray::Axis(0), k);
        let orig = ds.image(i);
        let mirror = orig.slice(ndarray::s![.., .., ..;-1]);
        if got == orig {
            continue;
        }
        assert_eq!(
            got, mirror,
            "image {k} is neither the original nor its mirror"
        );
        flipped += 1;
    }
    assert!((120..=280).contains(&flipped), "{flipped} of 400 flipped");
}

#[test]
fn bad_batch_size_is_an_error() {
    assert!(Batcher::new(10, 0, 0).is_err());
    let e = Batcher::new(10, 11, 0).unwrap_err();
    assert!(e.problem.contains("batch size 11"), "{e}");
}
