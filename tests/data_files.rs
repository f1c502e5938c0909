//! Loaders that read files: the image folder, MNIST IDX, and the PNG/GIF writers. Each error a
//! user can cause is checked to name the file or folder.

mod support;

use minisora::data::folder::{load_folder, resize_center_crop, FolderOptions};
use minisora::data::mnist::{load_mnist, read_idx_images, read_idx_labels};
use minisora::data::{digits, shapes};
use minisora::io::image::{load_image, save_gif, save_grid, GridLayout};
use std::path::{Path, PathBuf};
use support::TempDir;

fn write_png(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(w, h, image::Rgb(rgb))
        .save(path)
        .unwrap();
}

const OPTS: FolderOptions = FolderOptions {
    size: 16,
    channels: 3,
};

#[test]
fn folder_classes_from_sorted_subfolders() {
    let t = TempDir::new("classes");
    write_png(&t.0.join("zebra/a.png"), 20, 10, [255, 255, 255]);
    write_png(&t.0.join("ant/b.png"), 10, 30, [0, 0, 0]);
    write_png(&t.0.join("ant/c.bmp"), 16, 16, [255, 0, 0]);
    std::fs::create_dir_all(t.0.join("empty-class")).unwrap();
    let load = load_folder(&t.0, OPTS).unwrap();
    let ds = load.dataset;
    // the empty class keeps its sorted place and is reported
    assert_eq!(load.skipped.len(), 1);
    assert!(load.skipped[0].0.ends_with("empty-class"));
    assert_eq!(ds.class_names, ["ant", "empty-class", "zebra"]);
    assert_eq!(ds.labels, [0, 0, 2]);
    assert_eq!(ds.images.shape(), &[3, 3, 16, 16]);
    // black → −1, white → +1, red → (+1, −1, −1)
    assert!(ds.image(0).iter().all(|&v| v == -1.0));
    assert!(ds.image(2).iter().all(|&v| v == 1.0));
    let red = ds.image(1);
    assert!(red
        .index_axis(ndarray::Axis(0), 0)
        .iter()
        .all(|&v| v == 1.0));
    assert!(red
        .index_axis(ndarray::Axis(0), 1)
        .iter()
        .all(|&v| v == -1.0));
}

#[test]
fn flat_folder_is_one_class_in_grey() {
    let t = TempDir::new("flat");
    write_png(&t.0.join("x.png"), 8, 8, [255, 255, 255]);
    write_png(&t.0.join("y.png"), 40, 40, [0, 0, 0]);
    let opts = FolderOptions {
        size: 8,
        channels: 1,
    };
    let ds = load_folder(&t.0, opts).unwrap().dataset;
    assert_eq!(ds.num_classes(), 1);
    assert_eq!(ds.images.shape(), &[2, 1, 8, 8]);
}

#[test]
fn resize_keeps_aspect_and_crops_centre() {
    // a 40×20 picture: left quarter black, middle half white, right quarter black; resized to
    // 10 high it is 20 wide, and the centre 10×10 crop is all white
    let mut img = image::RgbImage::new(40, 20);
    for (x, _, p) in img.enumerate_pixels_mut() {
        *p = if (10..30).contains(&x) {
            image::Rgb([255; 3])
        } else {
            image::Rgb([0; 3])
        };
    }
    let out = resize_center_crop(&image::DynamicImage::ImageRgb8(img), 10).to_rgb8();
    assert_eq!(out.dimensions(), (10, 10));
    assert!(out.pixels().all(|p| p.0[0] > 200), "{:?}", out);
}

#[test]
fn missing_folder_is_an_error_naming_it() {
    let t = TempDir::new("missing");
    let gone = t.0.join("no-such-folder");
    let e = load_folder(&gone, OPTS).unwrap_err();
    assert!(e.problem.contains("no-such-folder"), "{e}");
    assert!(e.problem.contains("does not exist"), "{e}");
    assert!(!e.fix.is_empty());
}

#[test]
fn empty_folder_is_an_error() {
    let t = TempDir::new("empty");
    let e = load_folder(&t.0, OPTS).unwrap_err();
    assert!(e.problem.contains("no files"), "{e}");
    assert!(e.problem.contains(&t.0.display().to_string()), "{e}");
}

#[test]
fn corrupt_image_is_skipped_and_named() {
    let t = TempDir::new("corrupt");
    write_png(&t.0.join("good.png"), 16, 16, [10, 20, 30]);
    std::fs::write(t.0.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let load = load_folder(&t.0, OPTS).unwrap();
    assert_eq!(load.dataset.len(), 1);
    assert_eq!(load.skipped.len(), 1);
    assert!(load.skipped[0].0.ends_with("broken.png"));
    assert!(
        load.skipped[0].1.contains("broken.png"),
        "{}",
        load.skipped[0].1
    );
}

#[test]
fn only_corrupt_images_is_an_error_naming_them() {
    let t = TempDir::new("allcorrupt");
    std::fs::write(t.0.join("a.jpg"), b"garbage").unwrap();
    std::fs::write(t.0.join("notes.txt"), b"hello").unwrap();
    let e = load_folder(&t.0, OPTS).unwrap_err();
    assert!(e.problem.contains("no readable images"), "{e}");
    assert!(e.problem.contains("a.jpg"), "{e}");
}

#[test]
fn load_image_names_the_file() {
    let t = TempDir::new("loadimg");
    let e = load_image(&t.0.join("nope.png")).unwrap_err();
    assert!(e.problem.contains("nope.png"), "{e}");
}

// ---- MNIST IDX ----

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    b.extend(data);
    b
}

fn mnist_pair(t: &TempDir, n_img: u32, n_lab: u32) -> (PathBuf, PathBuf) {
    let pixels: Vec<u8> = (0..n_img * 28 * 28).map(|i| (i % 256) as u8).collect();
    let labels: Vec<u8> = (0..n_lab).map(|i| (i % 10) as u8).collect();
    let ip = t.0.join("train-images-idx3-ubyte");
    let lp = t.0.join("train-labels-idx1-ubyte");
    std::fs::write(&ip, idx(0x803, &[n_img, 28, 28], &pixels)).unwrap();
    std::fs::write(&lp, idx(0x801, &[n_lab], &labels)).unwrap();
    (ip, lp)
}

#[test]
fn mnist_reads_a_valid_pair() {
    let t = TempDir::new("mnist-ok");
    let (ip, lp) = mnist_pair(&t, 3, 3);
    let ds = load_mnist(&ip, &lp).unwrap();
    assert_eq!(ds.images.shape(), &[3, 1, 28, 28]);
    assert_eq!(ds.labels, [0, 1, 2]);
    assert_eq!(ds.images[[0, 0, 0, 0]], -1.0); // byte 0
    assert_eq!(ds.images[[0, 0, 9, 3]], 1.0); // byte 255 (index 255 = 9·28 + 3)
    let padded = ds.pad_to(32).unwrap();
    assert_eq!(padded.images.shape(), &[3, 1, 32, 32]);
    assert_eq!(padded.images[[0, 0, 11, 5]], 1.0);
    assert_eq!(padded.images[[0, 0, 0, 0]], -1.0);
    assert_eq!(read_idx_images(&ip).unwrap().dim(), (3, 28, 28));
}

#[test]
fn mnist_bad_magic_is_an_error() {
    let t = TempDir::new("mnist-magic");
    let (ip, lp) = mnist_pair(&t, 2, 2);
    // labels file given as images and the other way round
    let e = read_idx_images(&lp).unwrap_err();
    assert!(e.problem.contains("magic number"), "{e}");
    assert!(e.problem.contains("train-labels-idx1-ubyte"), "{e}");
    assert!(read_idx_labels(&ip).is_err());
    // a gzipped file is recognised
    let gz = t.0.join("train-images-idx3-ubyte.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0]).unwrap();
    let e = read_idx_images(&gz).unwrap_err();
    assert!(
        e.problem.contains("gzip") && e.fix.contains("gunzip"),
        "{e}"
    );
}

#[test]
fn mnist_truncated_file_is_an_error() {
    let t = TempDir::new("mnist-trunc");
    let (ip, lp) = mnist_pair(&t, 4, 4);
    let bytes = std::fs::read(&ip).unwrap();
    std::fs::write(&ip, &bytes[..bytes.len() - 100]).unwrap();
    let e = load_mnist(&ip, &lp).unwrap_err();
    assert!(e.problem.contains("truncated"), "{e}");
    assert!(e.problem.contains("train-images-idx3-ubyte"), "{e}");
    // cut inside the header
    std::fs::write(&ip, &bytes[..10]).unwrap();
    let e = read_idx_images(&ip).unwrap_err();
    assert!(e.problem.contains("truncated"), "{e}");
    std::fs::write(&lp, &bytes[..2]).unwrap();
    assert!(read_idx_labels(&lp)
        .unwrap_err()
        .problem
        .contains("truncated"));
}

#[test]
fn mnist_count_mismatch_is_an_error() {
    let t = TempDir::new("mnist-count");
    let (ip, lp) = mnist_pair(&t, 3, 5);
    let e = load_mnist(&ip, &lp).unwrap_err();
    assert!(
        e.problem.contains("3 images") && e.problem.contains("5 labels"),
        "{e}"
    );
}

#[test]
fn mnist_missing_file_is_an_error_naming_it() {
    let t = TempDir::new("mnist-missing");
    let e = read_idx_images(&t.0.join("train-images-idx3-ubyte")).unwrap_err();
    assert!(e.problem.contains("train-images-idx3-ubyte"), "{e}");
}

// ---- writers ----

#[test]
fn grid_png_round_trips() {
    let t = TempDir::new("grid");
    let d = digits::generate(12, 0);
    let path = t.0.join("sub/digits.png");
    let layout = GridLayout::new(5).pad(2).upscale(2);
    save_grid(&path, d.images.view(), layout).unwrap();
    let img = image::open(&path).unwrap();
    // 5 columns × (32 + 2) + 2 = 172, 3 rows × 34 + 2 = 104, doubled
    assert_eq!((img.width(), img.height()), (344, 208));
    assert_eq!(img.color(), image::ColorType::L8);
    // first image's pixel (y=10, x=16) at ((2 + 16)·2, (2 + 10)·2)
    let want = minisora::data::dataset::unit_to_byte(d.images[[0, 0, 10, 16]]);
    assert_eq!(img.to_luma8().get_pixel(36, 24).0[0], want);

    let s = shapes::generate(4, 0);
    let p2 = t.0.join("shapes.png");
    save_grid(&p2, s.images.view(), GridLayout::new(2)).unwrap();
    assert_eq!(image::open(&p2).unwrap().color(), image::ColorType::Rgb8);
}

#[test]
fn gif_has_every_frame() {
    use image::AnimationDecoder;
    let t = TempDir::new("gif");
    let frames: Vec<_> = (0..3).map(|k| shapes::generate(4, k)).collect();
    let views: Vec<_> = frames.iter().map(|f| f.images.view()).collect();
    let path = t.0.join("anim.gif");
    save_gif(&path, &views, GridLayout::new(2), 100).unwrap();
    let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
    let dec = image::codecs::gif::GifDecoder::new(file).unwrap();
    assert_eq!(dec.into_frames().count(), 3);
    assert!(save_gif(&path, &[], GridLayout::new(2), 100).is_err());
}

#[test]
fn mnist_absurd_header_is_an_error_not_a_panic() {
    let t = TempDir::new("mnist-absurd");
    let p = t.0.join("train-images-idx3-ubyte");
    std::fs::write(&p, idx(0x803, &[u32::MAX, u32::MAX, u32::MAX], &[0; 16])).unwrap();
    let e = read_idx_images(&p).unwrap_err();
    assert!(e.problem.contains("truncated"), "{e}");
}
