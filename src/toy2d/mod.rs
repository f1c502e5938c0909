//! The 2-D chapter: diffusion on points in the plane, where every step can be drawn. A small
//! MLP denoiser ([`MlpDenoiser`]) and its trainer ([`train_2d`]); the toy distributions are in
//! [`crate::data::toy2d`].

pub mod denoiser;
pub mod train;

pub use denoiser::MlpDenoiser;
pub use train::train_2d;
