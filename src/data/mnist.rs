//! A reader for MNIST's IDX files (LeCun et al., <http://yann.lecun.com/exdb/mnist/>), for
//! readers who already have MNIST on disk (nothing is downloaded):
//! `train-images-idx3-ubyte` and `train-labels-idx1-ubyte` (or the `t10k-` test pair).
//!
//! An IDX file is a big-endian header — magic `0x00000803` for a 3-D array of bytes (images),
//! `0x00000801` for a 1-D array of bytes (labels), then one `u32` per dimension — followed by
//! the bytes. The magic number, the sizes and the image/label counts are all checked, so a
//! wrong, truncated or still-gzipped file gives an error that says so.

use super::dataset::{byte_to_unit, ImageDataset};
use crate::error::{Error, Result};
use ndarray::{Array3, Array4};
use std::path::Path;

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

fn read(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::io(
            path,
            e,
            "give the path of an MNIST IDX file, e.g. train-images-idx3-ubyte",
        )
    })?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(Error::new(
            format!("{} is gzip-compressed", path.display()),
            format!("decompress it first: gunzip {}", path.display()),
        ));
    }
    Ok(bytes)
}

/// Parses an IDX header: checks the magic and returns the dimensions and the header length.
fn header(path: &Path, bytes: &[u8], magic: u32, what: &str) -> Result<(Vec<usize>, usize)> {
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    if bytes.len() < 4 {
        return Err(Error::new(
            format!(
                "{} is truncated: {} bytes, no IDX header",
                path.display(),
                bytes.len()
            ),
            "the file is incomplete; copy it again",
        ));
    }
    let found = be(0);
    if found != magic {
        return Err(Error::new(
            format!(
                "{} is not an IDX {what} file: magic number {found:#010x}, expected {magic:#010x}",
                path.display()
            ),
            format!(
                "give the MNIST {what} file (…-{what}-idx{}-ubyte)",
                magic & 0xff
            ),
        ));
    }
    let ndim = (magic & 0xff) as usize;
    let head = 4 + 4 * ndim;
    if bytes.len() < head {
        return Err(Error::new(
            format!("{} is truncated inside its IDX header", path.display()),
            "the file is incomplete; copy it again",
        ));
    }
    let dims: Vec<usize> = (0..ndim).map(|d| be(4 + 4 * d) as usize).collect();
    // checked: a damaged header can claim more bytes than fit in memory
    let want = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|body| body.checked_add(head))
        .unwrap_or(usize::MAX);
    if bytes.len() != want {
        let how = if bytes.len() < want {
            "truncated"
        } else {
            "too long"
        };
        return Err(Error::new(
            format!(
                "{} is {how}: header says {dims:?} ({want} bytes) but the file has {} bytes",
                path.display(),
                bytes.len()
            ),
            "the file is damaged or incomplete; copy it again",
        ));
    }
    Ok((dims, head))
}

/// Reads an IDX images file: `(N, H, W)` bytes.
pub fn read_idx_images(path: &Path) -> Result<Array3<u8>> {
    let bytes = read(path)?;
    let (dims, head) = header(path, &bytes, IMAGES_MAGIC, "images")?;
    let data = bytes[head..].to_vec();
    Ok(Array3::from_shape_vec((dims[0], dims[1], dims[2]), data).expect("size checked"))
}

/// Reads an IDX labels file: one byte per image.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read(path)?;
    let (_, head) = header(path, &bytes, LABELS_MAGIC, "labels")?;
    Ok(bytes[head..].to_vec())
}

/// Loads an MNIST images/labels pair as a grey dataset `(N, 1, 28, 28)` in `[−1, 1]`, classes
/// "0"…"9". Pad to 32×32 with [`ImageDataset::pad_to`].
pub fn load_mnist(images: &Path, labels: &Path) -> Result<ImageDataset> {
    let imgs = read_idx_images(images)?;
    let labs = read_idx_labels(labels)?;
    let (n, h, w) = imgs.dim();
    if n != labs.len() {
        return Err(Error::new(
            format!(
                "{} has {n} images but {} has {} labels",
                images.display(),
                labels.display(),
                labs.len()
            ),
            "use the matching pair (train-images with train-labels, t10k-images with t10k-labels)",
        ));
    }
    if let Some(&bad) = labs.iter().find(|&&l| l > 9) {
        return Err(Error::new(
            format!("{} has label {bad}, not a digit 0–9", labels.display()),
            "give the MNIST labels file",
        ));
    }
    let pixels: Vec<f32> = imgs.iter().map(|&b| byte_to_unit(b)).collect();
    let images4 = Array4::from_shape_vec((n, 1, h, w), pixels).expect("sizes agree");
    let names = (0..10).map(|d| d.to_string()).collect();
    ImageDataset::new(images4, labs.iter().map(|&l| l as usize).collect(), names)
}
