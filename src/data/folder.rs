//! A loader for the reader's own pictures, following torchvision's `ImageFolder` convention:
//!
//! ```text
//! root/cat/001.png        root/ (flat: every picture is one class, named after root)
//! root/cat/002.jpg          a.png
//! root/dog/xyz.webp         b.jpg
//! ```
//!
//! One sub-folder per class, labels from the sorted folder names; or a flat folder of pictures
//! for one class. Any format the `image` crate reads (PNG, JPEG, GIF, BMP, WebP). Each picture
//! is resized so its shorter side is the model's size and centre-cropped to a square
//! (torchvision's `Resize(size)` then `CenterCrop(size)`), in grey or RGB as configured, so
//! one folder may mix sizes and channel counts: a grey picture read as RGB has its value in all
//! three channels, an RGB one read as grey is converted to luma, and alpha is dropped.
//! Files that cannot be read are skipped and reported by name; the load fails only when no
//! picture is readable.

use super::dataset::{byte_to_unit, ImageDataset};
use crate::error::{Error, Result};
use crate::io::image::load_image;
use image::imageops::FilterType;
use image::DynamicImage;
use ndarray::Array4;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// What the loaded images should look like.
#[derive(Clone, Copy, Debug)]
pub struct FolderOptions {
    /// Side of the square images.
    pub size: usize,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
}

/// A loaded folder: the dataset and the files that were skipped, with the reason.
#[derive(Debug)]
pub struct FolderLoad {
    pub dataset: ImageDataset,
    /// `(file, why)` for every file that could not be read; the caller prints them.
    pub skipped: Vec<(PathBuf, String)>,
}

impl FolderLoad {
    /// Prints one line per skipped file to stderr (nothing if none were skipped).
    pub fn print_skipped(&self) {
        for (path, why) in &self.skipped {
            eprintln!("skipped {}: {why}", path.display());
        }
    }
}

/// File names that are not pictures and are silently ignored.
fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .map(|n| n.to_string_lossy().starts_with('.'))
        .unwrap_or(true)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        Error::io(
            dir,
            e,
            "give an existing folder of images (one sub-folder per class, or a flat folder)",
        )
    })?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e, "check the folder's permissions"))?;
        let p = entry.path();
        if !is_hidden(&p) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Resize the shorter side to `size` and centre-crop to `size × size`.
pub fn resize_center_crop(img: &DynamicImage, size: usize) -> DynamicImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let scale = size as f64 / w.min(h) as f64;
    let nw = ((w as f64 * scale).round() as usize).max(size);
    let nh = ((h as f64 * scale).round() as usize).max(size);
    let resized = if (nw, nh) == (w, h) {
        img.clone()
    } else {
        img.resize_exact(nw as u32, nh as u32, FilterType::Triangle)
    };
    let (x0, y0) = ((nw - size) / 2, (nh - size) / 2);
    resized.crop_imm(x0 as u32, y0 as u32, size as u32, size as u32)
}

/// Writes `img` (already `size × size`) into `out` `(C, H, W)` flattened, in `[−1, 1]`.
fn to_pixels(img: &DynamicImage, channels: usize, out: &mut [f32]) {
    let plane = out.len() / channels;
    if channels == 1 {
        for (o, p) in out.iter_mut().zip(img.to_luma8().pixels()) {
            *o = byte_to_unit(p.0[0]);
        }
    } else {
        for (i, p) in img.to_rgb8().pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = byte_to_unit(p.0[c]);
            }
        }
    }
}

/// Loads the images under `root` (see the module docs for the layout).
pub fn load_folder(root: &Path, opts: FolderOptions) -> Result<FolderLoad> {
    if opts.channels != 1 && opts.channels != 3 {
        return Err(Error::new(
            format!("{} channels requested", opts.channels),
            "use 1 (grey) or 3 (RGB)",
        ));
    }
    if opts.size == 0 {
        return Err(Error::new("image size 0 requested", "use a size ≥ 1"));
    }
    if !root.exists() {
        return Err(Error::new(
            format!("image folder {} does not exist", root.display()),
            "check the path, or create the folder and put pictures in it",
        ));
    }
    if !root.is_dir() {
        return Err(Error::new(
            format!("{} is a file, not a folder", root.display()),
            "give the folder that holds the pictures",
        ));
    }
    let entries = sorted_entries(root)?;
    let class_dirs: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
    // (file, label)
    let mut files: Vec<(PathBuf, usize)> = Vec::new();
    let class_names: Vec<String> = if class_dirs.is_empty() {
        files.extend(
            entries
                .iter()
                .filter(|p| p.is_file())
                .map(|p| (p.clone(), 0)),
        );
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "images".into());
        vec![name]
    } else {
        for (label, dir) in class_dirs.iter().enumerate() {
            for p in sorted_entries(dir)? {
                if p.is_file() {
                    files.push((p, label));
                }
            }
        }
        class_dirs
            .iter()
            .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    if files.is_empty() {
        return Err(Error::new(
            format!("image folder {} has no files", root.display()),
            "put pictures in it, directly or in one sub-folder per class",
        ));
    }

    // decode in parallel; each file's result lands in its own slot, so order is kept
    let (size, ch) = (opts.size, opts.channels);
    let decoded: Vec<std::result::Result<Vec<f32>, String>> = files
        .par_iter()
        .map(|(path, _)| {
            let img = load_image(path).map_err(|e| e.problem)?;
            let img = resize_center_crop(&img, size);
            let mut px = vec![0.0f32; ch * size * size];
            to_pixels(&img, ch, &mut px);
            Ok(px)
        })
        .collect();

    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut skipped = Vec::new();
    for ((path, label), res) in files.into_iter().zip(decoded) {
        match res {
            Ok(px) => {
                pixels.extend(px);
                labels.push(label);
            }
            Err(why) => skipped.push((path, why)),
        }
    }
    if labels.is_empty() {
        let names: Vec<String> = skipped
            .iter()
            .take(3)
            .map(|(p, _)| p.display().to_string())
            .collect();
        return Err(Error::new(
            format!(
                "image folder {} has no readable images ({} files skipped, e.g. {})",
                root.display(),
                skipped.len(),
                names.join(", ")
            ),
            "put PNG, JPEG, GIF, BMP or WebP pictures in it",
        ));
    }
    // a class folder with nothing readable keeps its label (so labels follow the sorted
    // names) but is reported, since a model cannot learn a class it never sees
    let mut counts = vec![0usize; class_names.len()];
    for &l in &labels {
        counts[l] += 1;
    }
    for (dir, _) in class_dirs.iter().zip(&counts).filter(|(_, &c)| c == 0) {
        skipped.push((
            dir.to_path_buf(),
            format!("class folder {} has no readable images", dir.display()),
        ));
    }
    let n = labels.len();
    let images = Array4::from_shape_vec((n, ch, size, size), pixels).expect("sizes agree");
    let dataset = ImageDataset::new(images, labels, class_names)?;
    Ok(FolderLoad { dataset, skipped })
}
