//! Gaussian diffusion, model-agnostic: noise schedules, the forward process, the losses, the
//! DDPM and DDIM samplers, timestep respacing and classifier-free guidance. Every model —
//! the toy MLP, the U-Net, DiT, the video DiT — plugs in through one small trait,
//! [`Denoiser`]: `(x_t, t, y) → output`; the image models also share one trainer
//! ([`train_images`], with its data in [`image_data`] and its figures in [`sample_images`]).
//!
//! The semantics follow openai/improved-diffusion (`gaussian_diffusion.py`, `respace.py`,
//! `losses.py`) as used by facebookresearch/DiT. The book's chapters "Diffusion (DDPM)" and
//! "Sampling (DDIM)" walk through this module.

pub mod guidance;
pub mod image_data;
pub mod losses;
pub mod mlp_denoiser;
pub mod model;
pub mod process;
pub mod respace;
pub mod sample_images;
pub mod sampler;
pub mod schedule;
pub mod timestep;
pub mod train2d;
pub mod train_images;
pub mod train_state;
pub mod train_step;
pub mod trainable;

pub use guidance::Guided;
pub use image_data::{ImageSource, TrainData};
pub use losses::{training_losses, LossTerms};
pub use mlp_denoiser::MlpDenoiser;
pub use model::{Denoiser, Diffusion, LossType, PMeanVar, Prediction, VarianceType};
pub use respace::space_timesteps;
pub use sampler::{SampleOptions, SamplerKind};
pub use schedule::{BetaSchedule, Schedule};
pub use timestep::{sample_uniform, LossSecondMomentSampler};
pub use train_images::{train_images, ModelInfo, TrainImagesOptions, TrainImagesReport};
pub use train_step::{train_step, StepBatch, StepOptimizer, StepTimes};
pub use trainable::TrainableDenoiser;
