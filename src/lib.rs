//! # minisora
//!
//! The stack behind Sora-style generation — VAE, U-Net, attention, DiT, DDPM/DDIM, latent
//! diffusion and a space-time DiT — written from scratch for the CPU, with every backward pass
//! written by hand. Read it beside the book in `book/`.

pub mod data;
pub mod demo;
pub mod diffusion;
pub mod dit;
pub mod error;
pub mod experiments;
pub mod gradcheck;
pub mod io;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod optim;
pub mod param;
pub mod sample;
pub mod tensor;
pub mod unet;
pub mod vae;

pub use param::{Param, Parameters};
