//! Evaluation of generated images: a small CNN classifier trained on the dataset, the class
//! accuracy of class-conditional samples, and the Fréchet distance between the classifier's
//! features of samples and of real images, with the real-vs-real distance as its floor.
//!
//! - [`classifier`]: the CNN, its hand-written backward pass, `features` and `predict`.
//! - [`train`]: training it (AdamW, cross-entropy) and caching it as a checkpoint.
//! - [`frechet`]: means, covariances and the Fréchet distance via symmetric eigendecompositions.
//! - [`evaluate`]: accuracy, distance and floor for a set of samples, as one report.
//! - [`score`]: all of it for a trained checkpoint (`minisora evaluate`).

pub mod classifier;
pub mod evaluate;
pub mod frechet;
pub mod score;
pub mod train;
pub mod video;

pub use classifier::{Classifier, ClassifierCache, ClassifierConfig};
pub use evaluate::{accuracy, evaluate, evaluate_seeded, EvalReport};
pub use frechet::{frechet_distance, frechet_from_stats, sqrtm_psd, symmetric_eigen, FeatureStats};
pub use score::{score_checkpoint, EvaluateRequest};
pub use train::{
    classifier_path, load_or_train_classifier, load_or_train_classifier_with, train_classifier,
    CacheStatus, ClassifierTrainOptions,
};
