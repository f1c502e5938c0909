//! Training the evaluation classifier, and the cache that makes it a one-time cost:
//! [`load_or_train_classifier`] loads `<cache>/<data>-<size>px.safetensors` when its stored recipe
//! (config, training options, data name, size, seed and a fingerprint of the images) matches
//! what is asked for, and otherwise trains a new one (seconds on two cores) and saves it.

use super::classifier::{Classifier, ClassifierConfig};
use crate::data::{Batcher, DataSource, ImageDataset};
use crate::error::{Error, Result};
use crate::io::checkpoint::{load_checkpoint, read_metadata, save_checkpoint};
use crate::io::progress::Progress;
use crate::nn::loss::cross_entropy;
use crate::optim::{AdamW, AdamWConfig, CosineSchedule};
use crate::tensor::rng;
use crate::Parameters;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Bumped whenever the architecture or the training code changes what a recipe produces, so
/// stale caches are retrained.
pub const RECIPE_VERSION: &str = "2";

/// Images of the data's prefix hashed into the cache's data fingerprint.
const FINGERPRINT_IMAGES: usize = 64;

/// How the classifier is trained.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassifierTrainOptions {
    pub steps: u64,
    pub batch: usize,
    pub lr: f32,
    /// Training images, at most: drawn from the dataset's training split.
    pub n_train: usize,
    /// Held-out images for the accuracy, at most: from its held-out split
    /// ([`DataSource::load_split`]; a set read from files holds out at most a fifth).
    pub n_held_out: usize,
    /// Print the progress bar and the summary line.
    pub verbose: bool,
}

impl Default for ClassifierTrainOptions {
    fn default() -> Self {
        ClassifierTrainOptions {
            steps: 300,
            batch: 64,
            lr: 3e-3,
            n_train: 20_000,
            n_held_out: 2_000,
            verbose: true,
        }
    }
}

/// Whether [`load_or_train_classifier_with`] found a usable cache.
#[derive(Clone, Debug, PartialEq)]
pub enum CacheStatus {
    /// The cached checkpoint matched and was loaded.
    Loaded,
    /// A new classifier was trained and saved; the reason (no file, or what differed).
    Trained(String),
}

// ANCHOR: train
/// Trains a classifier on `train` with AdamW (cosine schedule with warm-up, no weight decay)
/// on the softmax cross-entropy, then measures its accuracy on `held_out`.
pub fn train_classifier(
    train: &ImageDataset,
    held_out: &ImageDataset,
    opts: &ClassifierTrainOptions,
    seed: u64,
) -> Result<Classifier> {
    let start = Instant::now();
    if train.height() != train.width() {
        return Err(Error::new(
            format!("{}×{} images", train.height(), train.width()),
            "train the classifier on square images",
        ));
    }
    let config = ClassifierConfig::new(train.channels(), train.num_classes(), train.height());
    let mut model = Classifier::new(config, &mut rng(seed))?;
    let mut batcher = Batcher::new(train.len(), opts.batch.min(train.len()), seed ^ 0xc1a5)?;
    let mut opt = AdamW::new(AdamWConfig {
        lr: opts.lr,
        weight_decay: 0.0,
        ..AdamWConfig::default()
    });
    let sched = CosineSchedule {
        base_lr: opts.lr,
        min_lr: opts.lr * 0.02,
        warmup_steps: (opts.steps / 20).max(1),
        total_steps: opts.steps,
    };
    let bar = opts
        .verbose
        .then(|| Progress::new(opts.steps, "classifier"));
    for step in 0..opts.steps {
        let batch = batcher.next_batch(train); // (B, C, H, W)
        model.zero_grad();
        let (logits, cache) = model.forward(&batch.images); // (B, K)
        let (loss, dlogits) = cross_entropy(&logits, &batch.labels);
        model.backward(&cache, &dlogits);
        opt.lr = sched.lr_at(step);
        opt.step(&mut model);
        if let Some(bar) = &bar {
            bar.step(loss);
        }
    }
    if let Some(bar) = &bar {
        bar.finish();
    }
    let acc = super::evaluate::accuracy(&model.predict(held_out.images.view()), &held_out.labels);
    model.held_out_accuracy = Some(acc);
    if opts.verbose {
        println!(
            "classifier: {} steps of batch {} on {} images in {:.1} s, held-out accuracy {:.2} % ({} images)",
            opts.steps,
            opts.batch,
            train.len(),
            start.elapsed().as_secs_f64(),
            100.0 * acc,
            held_out.len()
        );
    }
    Ok(model)
}
// ANCHOR_END: train

/// `<cache>/<data>-<size>px.safetensors`, the data's name made file-safe (`mnist:/x/y` →
/// `mnist_x_y`): one classifier per dataset and image side.
pub fn classifier_path(cache: &Path, source: &DataSource, size: usize) -> PathBuf {
    let name: String = source
        .name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = name.trim_matches(|c| c == '_' || c == '.');
    let name = if name.is_empty() { "data" } else { name };
    cache.join(format!("{name}-{size}px.safetensors"))
}

/// The classifier for `source` at `size × size`: loaded from `cache` (a folder; see
/// [`classifier_path`]) if a checkpoint of the same recipe is there, else trained with the
/// default options and saved. Prints which, and the held-out accuracy.
pub fn load_or_train_classifier(
    source: &DataSource,
    size: usize,
    seed: u64,
    cache: &Path,
) -> Result<Classifier> {
    let opts = ClassifierTrainOptions::default();
    load_or_train_classifier_with(source, size, seed, cache, &opts).map(|(c, _)| c)
}

/// [`load_or_train_classifier`] with explicit training options; also says whether it loaded.
///
/// A cache file that cannot be read (corrupt, truncated, not a checkpoint) is an error naming
/// it, rather than silently overwritten: delete it to retrain. A readable checkpoint whose
/// recipe differs (another dataset, size, seed, options, architecture or data) is retrained
/// and replaced, saying which key differed.
pub fn load_or_train_classifier_with(
    source: &DataSource,
    size: usize,
    seed: u64,
    cache: &Path,
    opts: &ClassifierTrainOptions,
) -> Result<(Classifier, CacheStatus)> {
    let path = classifier_path(cache, source, size);
    let want = recipe(source, size, seed, opts)?;
    let reason = if path.exists() {
        let meta = read_metadata(&path).map_err(|e| in_cache(&path, e))?;
        let differ: Vec<String> = want
            .iter()
            .filter(|(k, v)| meta.get(*k) != Some(v))
            .map(|(k, v)| {
                let old = meta.get(k).map_or("(missing)".into(), |o| format!("{o:?}"));
                format!("{k} = {old} there, {v:?} now")
            })
            .collect();
        if differ.is_empty() {
            let mut model = ClassifierConfig::from_metadata(&meta)
                .and_then(|c| check_config(&c, source, size).map(|_| c))
                .and_then(|c| Classifier::new(c, &mut rng(0)))
                .map_err(|e| in_cache(&path, e))?;
            load_checkpoint(&path, &mut model).map_err(|e| in_cache(&path, e))?;
            model.held_out_accuracy = meta
                .get("classifier.held_out_accuracy")
                .and_then(|a| a.parse().ok());
            if opts.verbose {
                println!(
                    "classifier: loaded {} (held-out accuracy {})",
                    path.display(),
                    model
                        .held_out_accuracy
                        .map_or("unknown".into(), |a| format!("{:.2} %", 100.0 * a))
                );
            }
            return Ok((model, CacheStatus::Loaded));
        }
        format!(
            "{} is for another recipe ({})",
            path.display(),
            differ.join("; ")
        )
    } else {
        format!("no cached classifier at {}", path.display())
    };
    if opts.verbose {
        println!("classifier: {reason}: training one");
    }
    let (train, held_out) = classifier_split(source, size, seed, opts)?;
    let mut model = train_classifier(&train, &held_out, opts, seed)?;
    let mut meta = want;
    meta.extend(model.config.to_metadata());
    meta.insert(
        "classifier.held_out_accuracy".into(),
        format!("{}", model.held_out_accuracy.unwrap_or(0.0)),
    );
    save_checkpoint(&path, &mut model, &meta)?;
    Ok((model, CacheStatus::Trained(reason)))
}

/// The classifier's training and held-out images: the source's own seeded, stratified split
/// ([`DataSource::load_split`]). A set read from files holds out at most a fifth of itself.
fn classifier_split(
    source: &DataSource,
    size: usize,
    seed: u64,
    opts: &ClassifierTrainOptions,
) -> Result<(ImageDataset, ImageDataset)> {
    let n_held = match source {
        DataSource::Mnist(_) | DataSource::Folder(_) => {
            let total = source.load(usize::MAX, size, seed)?.len();
            if total < 10 {
                return Err(Error::new(
                    format!(
                        "{} has {total} images, too few to train a classifier",
                        source.name()
                    ),
                    "give a dataset with at least 10 images (ideally thousands)",
                ));
            }
            opts.n_held_out.min(total / 5).max(1)
        }
        _ => opts.n_held_out,
    };
    source.load_split(opts.n_train, n_held, size, seed)
}

/// Everything that decides what a trained classifier is, as metadata.
fn recipe(
    source: &DataSource,
    size: usize,
    seed: u64,
    opts: &ClassifierTrainOptions,
) -> Result<BTreeMap<String, String>> {
    let probe = source.load(FINGERPRINT_IMAGES, size, seed)?;
    Ok([
        ("classifier.recipe", RECIPE_VERSION.to_string()),
        ("classifier.data", source.name()),
        ("classifier.size", size.to_string()),
        ("classifier.seed", seed.to_string()),
        ("classifier.steps", opts.steps.to_string()),
        ("classifier.batch", opts.batch.to_string()),
        ("classifier.lr", opts.lr.to_string()),
        ("classifier.n_train", opts.n_train.to_string()),
        ("classifier.n_held_out", opts.n_held_out.to_string()),
        ("classifier.data_fingerprint", fingerprint(&probe)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect())
}

/// FNV-1a (64-bit) over the shape, the pixels' bits and the labels of the dataset's first
/// images: a generator or a folder that changed gives another value. (Generated sets draw
/// image `i` from the seed and `i` alone, so the prefix stands for the whole set; for a folder
/// only its first files in sorted order are seen — delete the cache after editing it.)
fn fingerprint(ds: &ImageDataset) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for &d in ds.images.shape() {
        eat(&(d as u64).to_le_bytes());
    }
    for v in ds.images.iter() {
        eat(&v.to_bits().to_le_bytes());
    }
    for &l in &ds.labels {
        eat(&(l as u64).to_le_bytes());
    }
    format!("{h:016x}")
}

/// The stored config must fit the data (channels, classes) it claims to be for.
fn check_config(c: &ClassifierConfig, source: &DataSource, size: usize) -> Result<()> {
    if c.image_size != size {
        return Err(Error::new(
            format!("it reads {0}×{0} images, not {size}×{size}", c.image_size),
            "delete it to retrain",
        ));
    }
    if c.in_channels != source.channels() {
        return Err(Error::new(
            format!(
                "it has {} input channels but {} has {}",
                c.in_channels,
                source.name(),
                source.channels()
            ),
            "delete it to retrain",
        ));
    }
    Ok(())
}

/// Prefixes an error about the cache file with its path and the fix of deleting it.
fn in_cache(path: &Path, e: Error) -> Error {
    let problem = if e.problem.contains(&path.display().to_string()) {
        e.problem
    } else {
        format!("cached classifier {}: {}", path.display(), e.problem)
    };
    Error::new(
        problem,
        format!(
            "{}; or delete {} to train a new classifier",
            e.fix,
            path.display()
        ),
    )
}
