//! Gaussian diffusion, the math only: noise schedules, the forward process, the losses, the
//! DDPM and DDIM samplers, timestep respacing, classifier-free guidance and the one entry
//! point that draws samples. It knows nothing of images, VAEs or any particular network:
//! every model — the toy MLP, the U-Net, DiT — plugs in through [`Denoiser`]
//! (`(x_t, t, y) → output`) and, to be trained, [`TrainableDenoiser`]; the condition `y` is a
//! [`Condition`]. The trainer that uses all this is in [`crate::train`].
//!
//! The semantics follow openai/improved-diffusion (`gaussian_diffusion.py`, `respace.py`,
//! `losses.py`) as used by facebookresearch/DiT. The book's chapters "Diffusion (DDPM)" and
//! "Sampling (DDIM)" walk through this module.

pub mod blend;
pub mod condition;
pub mod denoiser;
pub mod draw;
pub mod frames;
pub mod gaussian_diffusion;
pub mod guidance;
pub mod losses;
pub mod process;
pub mod respace;
pub mod sampler;
pub mod schedule;
pub mod timestep;

pub use blend::{lerp, slerp, Blend};
pub use condition::Condition;
pub use denoiser::{Denoiser, TrainableDenoiser};
pub use draw::{draw, draw_from, sample_grid, Draw, DrawStep, Grid, Samples};
pub use frames::{FrameConditioned, FrameMask, FrameMaskOptions, HoldFrames, MaskKind};
pub use gaussian_diffusion::{Diffusion, LossType, PMeanVar, Prediction, VarianceType};
pub use guidance::Guided;
pub use losses::{training_losses, training_losses_masked, LossTerms};
pub use respace::space_timesteps;
pub use sampler::{SampleOptions, SamplerKind};
pub use schedule::{BetaSchedule, Schedule};
pub use timestep::{sample_uniform, LossSecondMomentSampler};
