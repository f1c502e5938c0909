//! A small real dataset built into the binary: the UCI optical handwritten digits, the copy
//! scikit-learn ships (`load_digits`): 1,797 greyscale 8×8 images of ink counts 0–16, labels
//! 0–9. E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine
//! Learning Repository, DOI [10.24432/C50P49](https://doi.org/10.24432/C50P49), CC BY 4.0.
//!
//! `uci_digits.txt` beside this file holds them as text (written by
//! `tests/reference/uci_digits.py`; its header says the format), embedded with `include_str!`,
//! so nothing is read or downloaded at run time. Each image is upscaled the way the image
//! folder resizes a picture ([`resize_center_crop`]: bilinear, 8×8 → 32×32), ink bright on a
//! black background like [`digits`](super::digits) and MNIST.
//!
//! The set has one fixed split, seeded and stratified: 1,437 training images and 360 held
//! out ([`Part`]), the counts of scikit-learn's `train_test_split(stratify=y, test_size=0.2)`.
//! It does not depend on a run's seed, so a classifier scored on the held-out part never saw
//! them, whatever seed trained the models.

use super::dataset::{byte_to_unit, ImageDataset};
use super::folder::resize_center_crop;
use super::split::{stratified_split, Split};
use crate::error::{Error, Result};
use image::{DynamicImage, GrayImage};
use ndarray::Array4;

/// The fixture, as committed.
pub const FIXTURE: &str = include_str!("uci_digits.txt");
/// Images in the fixture.
pub const LEN: usize = 1797;
/// Images held out by [`split`]: ⌈0.2 · 1797⌉ as scikit-learn counts them.
pub const HELD_OUT: usize = 360;
/// The seed of the fixed split.
pub const SPLIT_SEED: u64 = 0x0c1_d161;
/// Side of the stored images.
pub const SIDE: usize = 8;
/// The largest stored value (a 4×4 block of the 32×32 bitmap, all ink).
pub const MAX_VALUE: u8 = 16;

/// Which images of the set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The 1,437 training images.
    Train,
    /// The 360 held-out images.
    HeldOut,
    /// All 1,797, in the fixture's order.
    All,
}

/// Raw images and labels as stored: `pixels[i]` is image `i`, row by row, values 0–16.
#[derive(Clone, Debug)]
pub struct Raw {
    pub pixels: Vec<[u8; SIDE * SIDE]>,
    pub labels: Vec<usize>,
}

/// Parses the fixture's format: `#` lines are comments; every other non-empty line is a
/// label digit, a space and 64 base-17 digits `0`–`9a`–`g`. Errors give the line number.
pub fn parse(text: &str) -> Result<Raw> {
    let fix = "regenerate the fixture with `python3 tests/reference/uci_digits.py`";
    let mut raw = Raw {
        pixels: Vec::new(),
        labels: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: String| Error::new(format!("UCI digits, line {}: {what}", i + 1), fix);
        let (label, px) = line
            .split_once(' ')
            .ok_or_else(|| bad("expected a label, a space and 64 pixels".into()))?;
        let label = match label.as_bytes() {
            [d @ b'0'..=b'9'] => (d - b'0') as usize,
            _ => return Err(bad(format!("label {label:?} is not a digit 0–9"))),
        };
        if px.len() != SIDE * SIDE {
            return Err(bad(format!(
                "{} pixels, expected {}",
                px.chars().count(),
                SIDE * SIDE
            )));
        }
        let mut image = [0u8; SIDE * SIDE];
        for (p, ch) in image.iter_mut().zip(px.chars()) {
            *p = ch
                .to_digit(17)
                .filter(|&v| v <= MAX_VALUE as u32)
                .ok_or_else(|| bad(format!("pixel {ch:?} is not one of 0–9, a–g")))?
                as u8;
        }
        raw.pixels.push(image);
        raw.labels.push(label);
    }
    if raw.labels.is_empty() {
        return Err(Error::new("UCI digits: no images in the text", fix));
    }
    Ok(raw)
}

/// The committed fixture, parsed.
pub fn raw() -> Result<Raw> {
    parse(FIXTURE)
}

/// The fixed split of the 1,797 images into 1,437 to train on and 360 held out.
pub fn split() -> Result<Split> {
    stratified_split(&raw()?.labels, HELD_OUT, SPLIT_SEED)
}

/// One stored image upscaled to `size × size` in `[−1, 1]`, written into `out` `(H·W)`.
fn upscale(image: &[u8; SIDE * SIDE], size: usize, out: &mut [f32]) {
    // $b = \mathrm{round}(255 v / 16)$: ink count to a byte, as a PNG export would store it
    let bytes: Vec<u8> = image
        .iter()
        .map(|&v| ((v as u32 * 255 + 8) / MAX_VALUE as u32) as u8)
        .collect();
    let img = GrayImage::from_raw(SIDE as u32, SIDE as u32, bytes).expect("8×8 bytes");
    let big = resize_center_crop(&DynamicImage::ImageLuma8(img), size).to_luma8();
    for (o, p) in out.iter_mut().zip(big.pixels()) {
        *o = byte_to_unit(p.0[0]);
    }
}

/// The images of `part` at `size × size`, 1 channel, in `[−1, 1]`, classes "0"–"9". The two
/// halves come in an order where every prefix is close to stratified.
pub fn load(part: Part, size: usize) -> Result<ImageDataset> {
    if size == 0 {
        return Err(Error::new("image size 0 requested", "use a size ≥ 1"));
    }
    let raw = raw()?;
    let idx: Vec<usize> = match part {
        Part::All => (0..raw.labels.len()).collect(),
        Part::Train => split()?.train,
        Part::HeldOut => split()?.held_out,
    };
    let mut pixels = vec![0.0f32; idx.len() * size * size]; // (N, 1, H, W) flattened
    for (chunk, &i) in pixels.chunks_mut(size * size).zip(&idx) {
        upscale(&raw.pixels[i], size, chunk);
    }
    let images = Array4::from_shape_vec((idx.len(), 1, size, size), pixels).expect("sizes agree");
    let labels = idx.iter().map(|&i| raw.labels[i]).collect();
    let names = (0..10).map(|d| d.to_string()).collect();
    ImageDataset::new(images, labels, names)
}
