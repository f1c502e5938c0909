//! The VAE trainer's held-out split on an image folder, seen from outside: `recon.png`'s top
//! row shows the first held-out images, and each class is painted its own colour, so the
//! classes held out can be read off the figure. Before the split was stratified the trainer
//! held out the folder's last images in sorted order, i.e. only its last class.

mod support;

use minisora::data::DataSource;
use minisora::vae::train::{train_vae, TrainVaeOptions};
use std::path::{Path, PathBuf};
use support::{tiny_vae, TempDir};

const COLOURS: [[u8; 3]; 3] = [[255, 0, 0], [0, 255, 0], [0, 0, 255]];

/// `classes × per_class` plain pictures, class `c` in `COLOURS[c]`, one sub-folder per class.
fn folder(root: &Path, classes: usize, per_class: usize) {
    for (c, rgb) in COLOURS.iter().enumerate().take(classes) {
        let dir = root.join(format!("class{c}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            image::RgbImage::from_pixel(32, 32, image::Rgb(*rgb))
                .save(dir.join(format!("{i:03}.png")))
                .unwrap();
        }
    }
}

fn tiny(data: PathBuf, out: PathBuf, n_held_out: usize) -> TrainVaeOptions {
    TrainVaeOptions {
        data: DataSource::Folder(data),
        batch: 4,
        lr: 1e-3,
        n_train: 1000,
        n_held_out,
        seed: 5,
        ..tiny_vae(out)
    }
}

/// The class of each of the first `n` originals in `recon.png` (a 16-wide grid, pad 2,
/// upscaled 3×), by the colour at the image's centre.
fn held_out_classes(recon: &Path, n: usize) -> Vec<usize> {
    let img = image::open(recon).unwrap().to_rgb8();
    (0..n)
        .map(|i| {
            let (x, y) = ((2 + i * 34 + 16) * 3, (2 + 16) * 3);
            let p = img.get_pixel(x as u32, y as u32).0;
            COLOURS
                .iter()
                .position(|c| c.iter().zip(p).all(|(&a, b)| a.abs_diff(b) < 8))
                .unwrap_or_else(|| panic!("image {i}: colour {p:?} is no class's"))
        })
        .collect()
}

#[test]
fn a_folder_of_three_classes_holds_out_each_class() {
    let t = TempDir::new("vae-split");
    folder(&t.0.join("pics"), 3, 20);
    train_vae(&tiny(t.0.join("pics"), t.0.join("out"), 15)).unwrap();
    let classes = held_out_classes(&t.0.join("out/recon.png"), 15);
    let counts: Vec<usize> = (0..3)
        .map(|c| classes.iter().filter(|&&k| k == c).count())
        .collect();
    // 15 of 60 held out, stratified: 5 of each class (and so 15 of each trained on).
    assert_eq!(counts, [5, 5, 5], "held-out classes {classes:?}");
}
