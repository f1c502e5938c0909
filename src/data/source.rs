//! Which images to train on, named the way the command line names them: `digits`, `shapes`,
//! `uci-digits`, `mnist:DIR` (a folder holding MNIST's IDX files) or any other text as a path
//! to an image folder. One place turns that name into an [`ImageDataset`], so `train-vae`,
//! `encode` and the later trainers all accept the same `--data` values, and one place
//! ([`DataSource::load_split`]) splits it into training and held-out images.

use super::split::{split_dataset, stratified_subset};
use super::uci_digits::{self, Part};
use super::{digits, folder, mnist, shapes, ImageDataset};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A dataset named on the command line.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSource {
    /// Procedural handwritten-looking digits, 32×32 grey.
    Digits,
    /// Coloured geometric shapes, 32×32 RGB.
    Shapes,
    /// The UCI optical handwritten digits (built in, real), upscaled from 8×8, grey.
    UciDigits,
    /// `train-images-idx3-ubyte` and `train-labels-idx1-ubyte` in this folder, padded to 32×32.
    Mnist(PathBuf),
    /// A torchvision-`ImageFolder`-style folder, resized and centre-cropped to 32×32.
    Folder(PathBuf),
}

impl DataSource {
    /// `digits`, `shapes`, `mnist:DIR`, or a folder path.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "digits" => Ok(DataSource::Digits),
            "shapes" => Ok(DataSource::Shapes),
            "uci-digits" => Ok(DataSource::UciDigits),
            "" => Err(Error::new("no dataset given", NAMES)),
            _ => match s.strip_prefix("mnist:") {
                Some(dir) => Ok(DataSource::Mnist(PathBuf::from(dir))),
                // A typo such as `digit` would otherwise surface later as a confusing error
                // about channels or an empty dataset.
                None if !Path::new(s).is_dir() => Err(Error::new(
                    format!("{s:?} is neither a built-in dataset nor an existing folder"),
                    NAMES,
                )),
                None => Ok(DataSource::Folder(PathBuf::from(s))),
            },
        }
    }

    /// A short name for logs and checkpoint metadata.
    pub fn name(&self) -> String {
        match self {
            DataSource::Digits => "digits".into(),
            DataSource::Shapes => "shapes".into(),
            DataSource::UciDigits => "uci-digits".into(),
            DataSource::Mnist(d) => format!("mnist:{}", d.display()),
            DataSource::Folder(d) => d.display().to_string(),
        }
    }

    /// Image channels: 1 for both digit sets and MNIST, 3 for shapes and folders.
    pub fn channels(&self) -> usize {
        match self {
            DataSource::Digits | DataSource::UciDigits | DataSource::Mnist(_) => 1,
            DataSource::Shapes | DataSource::Folder(_) => 3,
        }
    }

    /// Up to `n` images of `size × size`. Generated sets draw image `i` from `seed` and `i`
    /// alone, so `load(n, …, seed)` is a prefix of `load(m > n, …, seed)`. Read sets give all
    /// their images when `n` covers them, else `n` of them stratified by class and chosen with
    /// `seed` (a folder is sorted by class, so its first `n` would be whole classes);
    /// `uci-digits` gives its training part only (see [`uci_digits`]).
    pub fn load(&self, n: usize, size: usize, seed: u64) -> Result<ImageDataset> {
        let ds = match self {
            DataSource::Digits => return Ok(digits::generate_sized(n, size, seed)),
            DataSource::Shapes => return Ok(shapes::generate_sized(n, size, seed)),
            DataSource::UciDigits => uci_digits::load(Part::Train, size)?,
            DataSource::Mnist(_) | DataSource::Folder(_) => self.load_files(size)?,
        };
        Ok(ds.subset(&stratified_subset(&ds.labels, n, seed)))
    }

    /// Every image of a source read from files.
    fn load_files(&self, size: usize) -> Result<ImageDataset> {
        match self {
            DataSource::Mnist(dir) => mnist::load_mnist(
                &dir.join("train-images-idx3-ubyte"),
                &dir.join("train-labels-idx1-ubyte"),
            )?
            .pad_to(size),
            DataSource::Folder(dir) => {
                let load = folder::load_folder(
                    Path::new(dir),
                    folder::FolderOptions {
                        size,
                        channels: self.channels(),
                    },
                )?;
                load.print_skipped();
                Ok(load.dataset)
            }
            _ => unreachable!("only sources read from files"),
        }
    }

    // ANCHOR: load_split
    /// Up to `n_train` training images and `n_held_out` held-out images, never the same.
    ///
    /// - `digits`, `shapes`: `n_train + n_held_out` generated images, the last `n_held_out`
    ///   held out. They are drawn independently with labels `i mod K`, so the cut is already
    ///   random and balanced (and the demo's figures stay as they were).
    /// - `uci-digits`: its fixed split (1,437 / 360), each side cut to its count stratified.
    /// - `mnist:DIR`, folders: every image read, `n_held_out` held out by
    ///   [`stratified_split`](super::split::stratified_split) with `seed`, and the rest cut to
    ///   `n_train` stratified. Too few images, or a class with one, is an error.
    pub fn load_split(
        &self,
        n_train: usize,
        n_held_out: usize,
        size: usize,
        seed: u64,
    ) -> Result<(ImageDataset, ImageDataset)> {
        let (train, held_out) = match self {
            DataSource::Digits | DataSource::Shapes => {
                let all = self.load(n_train + n_held_out, size, seed)?;
                if all.len() <= n_held_out {
                    return Err(Error::new(
                        format!(
                            "{} has {} images, fewer than the {} held out for testing",
                            self.name(),
                            all.len(),
                            n_held_out
                        ),
                        "add images, or hold out fewer",
                    ));
                }
                let cut = all.len() - n_held_out;
                let idx: Vec<usize> = (0..all.len()).collect();
                return Ok((all.subset(&idx[..cut]), all.subset(&idx[cut..])));
            }
            DataSource::UciDigits => (
                uci_digits::load(Part::Train, size)?,
                uci_digits::load(Part::HeldOut, size)?,
            ),
            DataSource::Mnist(_) | DataSource::Folder(_) => {
                let all = self.load_files(size)?;
                split_dataset(&all, n_held_out, seed)
                    .map_err(|e| Error::new(format!("{}: {}", self.name(), e.problem), e.fix))?
            }
        };
        let cut = |ds: ImageDataset, n: usize| ds.subset(&stratified_subset(&ds.labels, n, seed));
        Ok((cut(train, n_train), cut(held_out, n_held_out)))
    }
    // ANCHOR_END: load_split
}

/// The names [`DataSource::parse`] accepts.
const NAMES: &str = "use digits, shapes, uci-digits, mnist:DIR or the path of an image folder";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert_eq!(DataSource::parse("digits").unwrap(), DataSource::Digits);
        assert_eq!(DataSource::parse("shapes").unwrap(), DataSource::Shapes);
        assert_eq!(
            DataSource::parse("uci-digits").unwrap(),
            DataSource::UciDigits
        );
        assert_eq!(
            DataSource::parse("mnist:/data/mnist").unwrap(),
            DataSource::Mnist("/data/mnist".into())
        );
        let here = env!("CARGO_MANIFEST_DIR"); // an existing folder
        assert_eq!(
            DataSource::parse(here).unwrap(),
            DataSource::Folder(here.into())
        );
        assert!(DataSource::parse("").is_err());
        // A misspelt name is refused by name, not taken for a folder that fails later.
        let e = DataSource::parse("digit").unwrap_err();
        assert!(e.problem.contains("\"digit\""), "{e}");
        assert!(e.fix.contains("digits, shapes"), "{e}");
    }

    #[test]
    fn generated_sets_are_prefixes() {
        let a = DataSource::Digits.load(3, 32, 7).unwrap();
        let b = DataSource::Digits.load(5, 32, 7).unwrap();
        assert_eq!(
            a.images,
            b.images.slice(ndarray::s![..3, .., .., ..]).to_owned()
        );
        assert_eq!(a.channels(), DataSource::Digits.channels());
    }
}
