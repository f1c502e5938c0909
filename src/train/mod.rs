//! Training a diffusion model, for any model and any rank of data: the options, the data in
//! memory (images `(N, C, H, W)` or clips `(N, C, F, H, W)`, pixels or VAE latents), the
//! step, the loop, its checkpoints (with bit-identical resume) and its pictures. The math it
//! runs is in [`crate::diffusion`]; the models and their recipes are in [`crate::models`].

pub mod bucket_trainer;
pub mod buckets;
pub mod data;
pub mod latent_norm;
pub mod metadata;
pub mod options;
pub mod preview;
pub mod state;
pub mod step;
pub mod trainer;

pub use bucket_trainer::{train_buckets, BucketReport};
pub use buckets::Buckets;
pub use data::{Source, TrainData};
pub use latent_norm::{LatentNorm, NormKind};
pub use options::{ModelInfo, TrainOptions};
pub use step::{train_step, StepBatch, StepOptimizer, StepTimes};
pub use trainer::{train, TrainReport};
