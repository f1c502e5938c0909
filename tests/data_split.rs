//! Held-out splits: seeded, random, stratified by class, the same function for every source;
//! and the bad input a folder can hold (too few images, a class of one, mixed sizes and
//! channel counts, a file that is not a picture), each a clear error or a documented outcome.

mod support;

use minisora::data::{stratified_split, stratified_subset, DataSource};
use std::collections::BTreeSet;
use std::path::Path;
use support::TempDir;

fn count(labels: &[usize], idx: &[usize], k: usize) -> Vec<usize> {
    let mut c = vec![0; k];
    for &i in idx {
        c[labels[i]] += 1;
    }
    c
}

fn png(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(w, h, image::Rgb(rgb))
        .save(path)
        .unwrap();
}

/// `classes × per_class` pictures, one sub-folder per class, sorted by class as on disk.
fn folder(root: &Path, classes: usize, per_class: usize) {
    for c in 0..classes {
        for i in 0..per_class {
            let v = (40 * c + i) as u8;
            png(&root.join(format!("c{c}/{i:03}.png")), 32, 32, [v, v, v]);
        }
    }
}

#[test]
fn the_split_is_disjoint_stratified_and_seeded() {
    // classes of 50, 30 and 20 images, sorted as a folder is
    let labels: Vec<usize> = (0..100)
        .map(|i| usize::from(i >= 50) + usize::from(i >= 80))
        .collect();
    let s = stratified_split(&labels, 20, 7).unwrap();
    let (a, b): (BTreeSet<_>, BTreeSet<_>) =
        (s.train.iter().collect(), s.held_out.iter().collect());
    assert_eq!((a.len(), b.len()), (80, 20));
    assert!(a.is_disjoint(&b));
    assert_eq!(count(&labels, &s.held_out, 3), [10, 6, 4]);
    assert_eq!(count(&labels, &s.train, 3), [40, 24, 16]);
    assert_eq!(stratified_split(&labels, 20, 7).unwrap(), s);
    assert_ne!(
        stratified_split(&labels, 20, 8).unwrap().held_out,
        s.held_out
    );
    // every class on both sides even when proportion would round one away
    let s = stratified_split(&labels, 3, 0).unwrap();
    assert_eq!(count(&labels, &s.held_out, 3), [1, 1, 1]);
    let s = stratified_split(&labels, 97, 0).unwrap();
    assert_eq!(count(&labels, &s.train, 3), [1, 1, 1]);
}

#[test]
fn impossible_splits_are_errors_not_lopsided_splits() {
    let labels = [0, 0, 0, 1, 1, 1, 2];
    let e = stratified_split(&labels, 3, 0).unwrap_err();
    assert!(
        e.problem.contains("class 2") && e.problem.contains("one image"),
        "{e}"
    );
    let labels = [0, 0, 1, 1, 2, 2, 2];
    let e = stratified_split(&labels, 2, 0).unwrap_err();
    assert!(e.fix.contains("at least 3"), "{e}");
    let e = stratified_split(&labels, 5, 0).unwrap_err();
    assert!(e.fix.contains("at most 4"), "{e}");
    assert!(stratified_split(&[], 1, 0).is_err());
}

#[test]
fn subsets_are_stratified_too() {
    let labels: Vec<usize> = (0..300).map(|i| i / 100).collect();
    let idx = stratified_subset(&labels, 30, 1);
    assert_eq!(count(&labels, &idx, 3), [10, 10, 10]);
    assert_eq!(
        stratified_subset(&labels, 500, 1),
        (0..300).collect::<Vec<_>>()
    );
}

#[test]
fn a_folder_puts_every_class_in_both_halves() {
    let t = TempDir::new("split-folder");
    folder(&t.0, 3, 20);
    let data = DataSource::Folder(t.0.clone());
    let (train, held) = data.load_split(1000, 15, 32, 0).unwrap();
    assert_eq!(train.class_counts(), [15, 15, 15]);
    assert_eq!(held.class_counts(), [5, 5, 5]);
    // fewer training images than there are: cut stratified, not the first classes
    let (train, _) = data.load_split(9, 15, 32, 0).unwrap();
    assert_eq!(train.class_counts(), [3, 3, 3]);
    // and so is a plain load of fewer images than the folder holds
    assert_eq!(data.load(6, 32, 0).unwrap().class_counts(), [2, 2, 2]);
}

#[test]
fn mnist_is_split_stratified() {
    let t = TempDir::new("split-mnist");
    let n = 40u32; // labels sorted: 0 × 10, 1 × 10, 2 × 10, 3 × 10
    let idx = |magic: u32, dims: &[u32], data: Vec<u8>| {
        let mut b = magic.to_be_bytes().to_vec();
        dims.iter().for_each(|d| b.extend(d.to_be_bytes()));
        b.extend(data);
        b
    };
    let images = idx(0x803, &[n, 28, 28], vec![7; (n * 28 * 28) as usize]);
    let labels = idx(0x801, &[n], (0..n).map(|i| (i / 10) as u8).collect());
    std::fs::write(t.0.join("train-images-idx3-ubyte"), images).unwrap();
    std::fs::write(t.0.join("train-labels-idx1-ubyte"), labels).unwrap();
    let (train, held) = DataSource::Mnist(t.0.clone())
        .load_split(100, 8, 32, 0)
        .unwrap();
    assert_eq!(held.class_counts()[..4], [2, 2, 2, 2]);
    assert_eq!(train.class_counts()[..4], [8, 8, 8, 8]);
}

// ---- bad input ----

#[test]
fn fewer_images_than_the_held_out_size_is_an_error_naming_the_folder_and_fix() {
    let t = TempDir::new("split-few");
    folder(&t.0, 2, 5);
    let e = DataSource::Folder(t.0.clone())
        .load_split(100, 500, 32, 0)
        .unwrap_err();
    assert!(e.problem.contains(&t.0.display().to_string()), "{e}");
    assert!(e.problem.contains("10 images"), "{e}");
    assert!(e.fix.contains("hold out at most 8"), "{e}");
}

#[test]
fn a_class_folder_with_one_image_is_an_error_naming_it() {
    let t = TempDir::new("split-one");
    folder(&t.0, 2, 6);
    png(&t.0.join("lonely/only.png"), 32, 32, [9, 9, 9]);
    let e = DataSource::Folder(t.0.clone())
        .load_split(100, 4, 32, 0)
        .unwrap_err();
    assert!(
        e.problem.contains("\"lonely\"") && e.problem.contains("one image"),
        "{e}"
    );
    assert!(e.fix.contains("add images"), "{e}");
}

#[test]
fn mixed_sizes_and_channel_counts_are_resized_and_converted() {
    // Documented in `data::folder`: every picture is resized (shorter side, centre crop) to the
    // model's size and converted to the source's channels; grey is copied into R, G and B,
    // alpha is dropped.
    let t = TempDir::new("split-mixed");
    let dir = t.0.join("only");
    png(&dir.join("a_rgb.png"), 50, 20, [200, 10, 10]);
    std::fs::create_dir_all(&dir).unwrap();
    image::GrayImage::from_pixel(7, 9, image::Luma([128]))
        .save(dir.join("b_grey.png"))
        .unwrap();
    image::RgbaImage::from_pixel(64, 64, image::Rgba([0, 255, 0, 10]))
        .save(dir.join("c_rgba.png"))
        .unwrap();
    let ds = DataSource::Folder(dir.clone()).load(10, 32, 0).unwrap();
    assert_eq!(ds.images.shape(), &[3, 3, 32, 32]);
    let px = |i: usize, c: usize| ds.images[[i, c, 16, 16]];
    assert!(px(0, 0) > 0.5 && px(0, 1) < -0.5, "RGB kept");
    assert!(
        (0..3).all(|c| px(1, c) == px(1, 0)) && px(1, 0).abs() < 0.01,
        "grey copied"
    );
    assert!(px(2, 1) == 1.0 && px(2, 0) == -1.0, "alpha dropped");
}

#[test]
fn a_non_image_file_in_a_class_folder_is_skipped_and_named() {
    let t = TempDir::new("split-txt");
    folder(&t.0, 2, 4);
    std::fs::write(t.0.join("c1/notes.txt"), b"not a picture").unwrap();
    let load = minisora::data::folder::load_folder(
        &t.0,
        minisora::data::folder::FolderOptions {
            size: 32,
            channels: 3,
        },
    )
    .unwrap();
    assert_eq!(load.dataset.class_counts(), [4, 4]);
    assert_eq!(load.skipped.len(), 1);
    assert!(load.skipped[0].0.ends_with("c1/notes.txt"));
    let (train, held) = DataSource::Folder(t.0.clone())
        .load_split(100, 2, 32, 0)
        .unwrap();
    assert_eq!(
        (train.class_counts(), held.class_counts()),
        (vec![3, 3], vec![1, 1])
    );
    // a class whose only other file is not a picture has one image: an error, by name
    std::fs::remove_file(t.0.join("c1/000.png")).unwrap();
    for i in 2..4 {
        std::fs::remove_file(t.0.join(format!("c1/{i:03}.png"))).unwrap();
    }
    let e = DataSource::Folder(t.0.clone())
        .load_split(100, 2, 32, 0)
        .unwrap_err();
    assert!(
        e.problem.contains("\"c1\"") && e.problem.contains("one image"),
        "{e}"
    );
}
